// Gradient rules of the einsum family (einsum, and matmul / dense / index
// notation, which lower to it) and the backward op diag_embed: float64 finite
// differences on the reference, then the generated JS and WGSL gradient
// kernels against the reference.

import { describe, expect, it } from "vitest";
import { differentiate } from "../../compiler/autodiff/reverse.ts";
import { Dim } from "../../compiler/ir/dims.ts";
import type { Value } from "../../compiler/ir/graph.ts";
import { einsumTerm } from "../../compiler/ops/einsum.ts";
import type { LowerCtx } from "../../compiler/ops/op.ts";
import { interpret } from "../../compiler/reference/interpreter.ts";
import { TestModel, randomTensor, t, type JsArg } from "../support/build.ts";
import { expectJsMatchesReference } from "../support/conformance.ts";
import { checkGradients, gradGraph, type GradGraph } from "../support/gradcheck.ts";
import { expectWgslMatchesReference } from "../support/webgpu.ts";

type Shape = readonly (number | string)[];

function concrete(shape: Shape, env: Record<string, number>): number[] {
  return shape.map((d) => (typeof d === "number" ? d : env[d]!));
}

interface Case {
  readonly name: string;
  readonly callee: string;
  readonly shapes: readonly Shape[];
  /** Arguments before the tensors (the einsum spec) or after the first (dense units). */
  readonly lead?: readonly JsArg[];
  readonly keywords?: Record<string, JsArg>;
  /** Symbol bindings; one gradient check per binding. */
  readonly envs?: readonly Record<string, number>[];
  /** Part of the WGSL subset. */
  readonly wgsl?: boolean;
}

/**
 * Builds the case's graph with inputs x0, x1, ... and returns the gradient
 * graphs (one per binding), checked against finite differences unless `fd` is
 * false (the WGSL runs, already checked).
 */
function gradCheck(c: Case, fd = true): GradGraph[] {
  const m = new TestModel();
  const xs = c.shapes.map((s, i) => m.input(`x${i}`, "f32", s));
  const args = c.callee === "dense" ? [xs[0]!, ...(c.lead ?? [])] : c.callee === "einsum" ? [...(c.lead ?? []), ...xs] : xs;
  m.output("y", m.call(c.callee, args, c.keywords ?? {}, "f1"));
  return (c.envs ?? [{}]).map((env, e) => {
    const inputs = Object.fromEntries(c.shapes.map((s, i) => [`x${i}`, randomTensor(concrete(s, env), 11 + 17 * i + 101 * e)]));
    return fd ? checkGradients(m.graph, inputs, { seed: e }) : gradGraph(m.graph, inputs, { seed: e });
  });
}

const einsum = (spec: string, shapes: Shape[], extra: Partial<Case> = {}): Case => ({ name: `einsum "${spec}" over ${JSON.stringify(shapes)}`, callee: "einsum", shapes, lead: [spec], ...extra });
const matmul = (shapes: Shape[], extra: Partial<Case> = {}): Case => ({ name: `matmul ${JSON.stringify(shapes)}`, callee: "matmul", shapes, ...extra });

const cases: Case[] = [
  // matmul / @, including NumPy's vector promotions and broadcast batch dims
  matmul([[3, 4], [4, 5]], { wgsl: true }),
  matmul([["N", 4], [4, 5]], { envs: [{ N: 1 }, { N: 3 }] }),
  matmul([[2, 3, 4], [2, 4, 5]], { wgsl: true }),
  matmul([[2, 1, 3, 4], [5, 4, 2]], { wgsl: true }),
  matmul([[3, 4], ["B", 4, 2]], { envs: [{ B: 2 }] }),
  matmul([[4], [4, 5]]),
  matmul([[3, 4], [4]]),
  matmul([[4], [4]]),
  // dense (x · Wᵀ + b): the weight and bias are parameters
  { name: "dense [N, 4] -> 3 with bias", callee: "dense", shapes: [["N", 4]], lead: [3], envs: [{ N: 1 }, { N: 5 }], wgsl: true },
  { name: "dense [N, L, 5] -> 2 with bias", callee: "dense", shapes: [["N", "L", 5]], lead: [2], envs: [{ N: 2, L: 3 }] },
  { name: "dense [3] -> 4 without bias", callee: "dense", shapes: [[3]], lead: [4], keywords: { bias: false } },
  // einsum specs
  einsum("i,j->ij", [[3], [4]]),
  einsum("ij->ji", [[3, 4]]),
  einsum("ijk->kij", [[2, 3, 4]], { wgsl: true }),
  einsum("ii->", [[4, 4]], { wgsl: true }),
  einsum("ii->i", [[4, 4]], { wgsl: true }),
  einsum("iji->ij", [[3, 2, 3]]),
  einsum("iij->j", [[3, 3, 2]]),
  einsum("ij,jk,kl->il", [[2, 3], [3, 4], [4, 5]], { wgsl: true }),
  einsum("...ij,...jk->...ik", [[2, 1, 3, 4], [1, 5, 4, 2]], { wgsl: true }),
  einsum("...ij,jk->...ik", [["N", 3, 4], [4, 2]], { envs: [{ N: 2 }] }),
  einsum("bij->", [[2, 3, 4]]),
  einsum("ij->i", [[3, 5]], { wgsl: true }),
  einsum("ij->j", [["N", 5]], { envs: [{ N: 3 }] }),
  einsum("ij,jk", [[2, 3], [3, 4]]),
  einsum("ii", [[3, 3]]),
  einsum("ba", [[2, 3]]),
  einsum("ij,ij->ij", [[2, 3], [2, 3]]),
  einsum("bn,anm,bm->ba", [[2, 3], [4, 3, 5], [2, 5]], { wgsl: true }),
  einsum("ii,ij->j", [[3, 3], [3, 4]]),
  einsum(",i->i", [[], [4]]),
  einsum("i->", [["L"]], { envs: [{ L: 1 }, { L: 6 }] }),
];

describe("einsum gradients", () => {
  it.each(cases.map((c) => [c.name, c] as const))("%s: finite differences and JS", (_name, c) => {
    for (const gg of gradCheck(c)) expectJsMatchesReference(gg.graph, gg.inputs);
  });

  it("the same tensor in two operand positions sums both contributions (d x·x = 2x)", () => {
    const m = new TestModel();
    const x = m.input("x", "f32", [5]);
    m.output("y", m.call("einsum", ["i,i->", x, x], {}, "f1"));
    const xv = randomTensor([5], 3);
    const gg = checkGradients(m.graph, { x: xv });
    const out = interpret(gg.graph, gg.inputs, {}).outputs;
    const probe = gg.inputs.__probe!.data[0]!;
    expect(Array.from(out["grad:x"]!.data)).toEqual(Array.from(xv.data).map((v) => 2 * v * probe));
  });

  it("ii->i writes the gradient on the diagonal and zeros elsewhere", () => {
    const m = new TestModel();
    const x = m.input("x", "f32", [3, 3]);
    m.output("y", m.call("einsum", ["ii->i", x], {}, "f1"));
    const y = m.graph.outputs[0]!.value;
    const seed = m.graph.addNode("input", [], { name: "dy" }, [{ dtype: "f32", shape: [Dim.of(3)] }]).outputs[0]!;
    m.graph.inputs.set("dy", seed);
    const [dx] = differentiate(m.graph, y, [x], { seed });
    m.graph.outputs.push({ name: "dx", value: dx!, kind: "output" });
    const feeds = { x: randomTensor([3, 3], 1), dy: t([1, 2, 3]) };
    expect(Array.from(interpret(m.graph, feeds, {}).outputs.dx!.data)).toEqual([1, 0, 0, 0, 2, 0, 0, 0, 3]);
    expectJsMatchesReference(m.graph, feeds);
  });
});

describe("index notation gradients (einsumTerm)", () => {
  function ctxFor(m: TestModel): LowerCtx {
    const ctx: LowerCtx = {
      graph: m.graph,
      callee: "index notation",
      layerName: () => "z",
      emit: (opName, inputs, attrs = {}) => m.s.emitOp(opName, inputs, attrs, undefined, "index notation 'z'", "z"),
      emit1: (opName, inputs, attrs = {}) => ctx.emit(opName, inputs, attrs)[0]!,
      param: () => {
        throw new Error("no params");
      },
      constant: (v, dtype) => m.s.constant(v, dtype),
      fail: (code, message, opts = {}) => m.s.fail(code, `index notation 'z': ${message}`, undefined, opts),
      describe: (v) => m.s.describe(v),
    };
    return ctx;
  }
  function check(build: (m: TestModel, ctx: LowerCtx) => Value, inputs: Record<string, ReturnType<typeof randomTensor>>) {
    const m = new TestModel();
    m.output("z", build(m, ctxFor(m)));
    const gg = checkGradients(m.graph, inputs);
    expectJsMatchesReference(gg.graph, gg.inputs);
  }

  it("z[col, row] = x[row, inner] * w[inner, col] over a symbolic row count", () => {
    check(
      (m, ctx) => {
        const x = m.input("x", "f32", ["N", 5]);
        const w = m.input("w", "f32", [5, 3]);
        return einsumTerm(ctx, [{ value: x, indices: ["row", "inner"] }, { value: w, indices: ["inner", "col"] }], ["col", "row"]);
      },
      { x: randomTensor([4, 5], 1), w: randomTensor([5, 3], 2) },
    );
  });

  it("z[col] = x[row, row] * w[row, col] (a diagonal factor)", () => {
    check(
      (m, ctx) => {
        const x = m.input("x", "f32", [4, 4]);
        const w = m.input("w", "f32", [4, 3]);
        return einsumTerm(ctx, [{ value: x, indices: ["row", "row"] }, { value: w, indices: ["row", "col"] }], ["col"]);
      },
      { x: randomTensor([4, 4], 3), w: randomTensor([4, 3], 4) },
    );
  });
});

describe("einsum gradients on WebGPU", () => {
  it.each(cases.filter((c) => c.wgsl).map((c) => [c.name, c] as const))("%s", async (_name, c) => {
    const [gg] = gradCheck({ ...c, envs: c.envs?.slice(-1) }, false);
    await expectWgslMatchesReference(gg!.graph, gg!.inputs);
  });
});

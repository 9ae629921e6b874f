// Gradient rules of the elementwise family (compiler/ops/elementwise.ts):
// binary ops with broadcasting (add sub mul div maximum minimum pow), the
// unary activations (through the `unary_grad` backward op, neg as plain IR),
// where and cast. Each rule is checked against float64 finite differences on
// the reference, and the generated gradient kernels (unary_grad, binary_grad
// and the plain IR the rules emit) against the reference on JS and WGSL.
// Kinks and ties are tested separately on hand-written inputs.

import { describe, expect, it } from "vitest";
import { differentiate } from "../../compiler/autodiff/reverse.ts";
import { CompileError } from "../../compiler/diagnostics.ts";
import type { Value } from "../../compiler/ir/graph.ts";
import type { DType } from "../../compiler/ir/types.ts";
import { interpret } from "../../compiler/reference/interpreter.ts";
import type { RefTensor } from "../../compiler/reference/tensor.ts";
import { randomTensor, t, TestModel, type JsArg } from "../support/build.ts";
import { expectJsMatchesReference } from "../support/conformance.ts";
import { checkGradients, gradGraph } from "../support/gradcheck.ts";
import { expectWgslMatchesReference } from "../support/webgpu.ts";

type Shape = (number | string)[];

/** `y = callee(inputs named in positional..., keywords)` as a graph; strings naming an input become it. */
function model(callee: string, inputs: Record<string, { dtype?: DType; shape: Shape }>, positional: JsArg[], keywords: Record<string, JsArg> = {}): TestModel {
  const m = new TestModel();
  const vals = new Map<string, Value>(Object.entries(inputs).map(([n, f]) => [n, m.input(n, f.dtype ?? "f32", f.shape)]));
  const args = positional.map((p) => (typeof p === "string" && vals.has(p) ? vals.get(p)! : p));
  m.output("y", m.call(callee, args, keywords));
  return m;
}

/** Values moved at least `gap` away from each kink in `points` (finite differences need smooth neighbourhoods). */
function awayFrom(x: RefTensor, points: readonly number[], gap = 0.05): RefTensor {
  return x.map((v) => {
    for (const p of points) if (Math.abs(v - p) < gap) return v >= p ? p + gap : p - gap;
    return v;
  });
}

/** The probe-loss gradients of `m` on the reference, the JS target and (optionally) WGSL. */
async function targets(gg: ReturnType<typeof gradGraph>, wgsl: boolean): Promise<void> {
  expectJsMatchesReference(gg.graph, gg.inputs);
  if (wgsl) await expectWgslMatchesReference(gg.graph, gg.inputs);
}

describe("binary ops", () => {
  // [name, shape a, shape b, concrete a, concrete b, WGSL too]
  const layouts: [string, Shape, Shape, number[], number[], boolean][] = [
    ["same shape [N, 4]", ["N", 4], ["N", 4], [3, 4], [3, 4], true],
    ["[N, 1] x [1, 6]", ["N", 1], [1, 6], [3, 1], [1, 6], false],
    ["[3, 1, 4] x [2, 1]", [3, 1, 4], [2, 1], [3, 1, 4], [2, 1], true],
    ["[N, C, H, W] x [C, 1, 1]", ["N", 3, 2, 2], [3, 1, 1], [2, 3, 2, 2], [3, 1, 1], false],
    ["[N, 1, W] x [1, L, 1]", ["N", 1, 4], [1, "L", 1], [2, 1, 4], [1, 3, 1], false],
    ["scalar x tensor", [], ["N", 3], [], [4, 3], false],
    ["[N, 5] x [5]", ["N", 5], [5], [2, 5], [5], false],
  ];
  const OPS = ["add", "sub", "mul", "div", "maximum", "minimum", "pow"];
  for (const op of OPS) {
    it.each(layouts)(`${op}: %s`, async (_name, sa, sb, na, nb, wgsl) => {
      const m = model(op, { a: { shape: sa }, b: { shape: sb } }, ["a", "b"]);
      let a = randomTensor(na, 3, -2, 2);
      let b = randomTensor(nb, 7, -2, 2);
      if (op === "div") b = randomTensor(nb, 7, 0.5, 2).map((v, i) => (i % 3 === 1 ? -v : v));
      if (op === "pow") {
        a = randomTensor(na, 3, 0.3, 2.5);
        b = randomTensor(nb, 7, -2, 2);
      }
      if (op === "maximum" || op === "minimum") {
        // Make every broadcast pair of values distinct by more than 1e-3: a on a 0.1 grid plus 0.05, b on it.
        a = a.map((v) => Math.round(v * 10) / 10 + 0.05);
        b = b.map((v) => Math.round(v * 10) / 10);
      }
      const gg = checkGradients(m.graph, { a, b });
      await targets(gg, wgsl && ["div", "maximum", "pow"].includes(op));
    });
  }

  it("maximum and minimum: on ties the whole gradient goes to a (the first operand)", async () => {
    for (const op of ["maximum", "minimum"]) {
      const m = model(op, { a: { shape: [5] }, b: { shape: [5] } }, ["a", "b"]);
      const inputs = { a: t([1, 2, 3, -1, 0]), b: t([1, 5, 0, -1, 0]) };
      const gg = gradGraph(m.graph, inputs);
      const out = interpret(gg.graph, gg.inputs, {}).outputs;
      const w = Array.from(gg.inputs.__probe!.data);
      const toA = op === "maximum" ? [true, false, true, true, true] : [true, true, false, true, true];
      expect(Array.from(out["grad:a"]!.data)).toEqual(w.map((v, i) => (toA[i] ? v : 0)));
      expect(Array.from(out["grad:b"]!.data)).toEqual(w.map((v, i) => (toA[i] ? 0 : v)));
      await targets(gg, true);
    }
  });

  it("maximum with a scalar literal (relu-like) sums b's share over the broadcast", async () => {
    const m = new TestModel();
    const x = m.input("x", "f32", ["N", 3]);
    const c = m.input("c", "f32", []);
    m.output("y", m.call("maximum", [m.call("mul", [x, c], {}, "xc"), 0.25]));
    const gg = checkGradients(m.graph, { x: awayFrom(randomTensor([4, 3], 5), [0.25 / 1.3], 0.05), c: t([1.3], []) });
    await targets(gg, false);
  });

  it("pow with a negative base and integral exponents (d/da only), and at a = 0", async () => {
    const m = model("pow", { a: { shape: [2, 3] }, b: { shape: [3] } }, ["a", "b"]);
    const a = t([-1.5, -0.7, 0.8, 1.2, -2, -0.4], [2, 3]);
    const gg = checkGradients(m.graph, { a, b: t([2, 3, -1]) }, { wrt: ["a"] });
    await targets(gg, true);
    // a = 0: d/da = b·0^(b−1) (0 for b = 2, 1 for b = 1, 0 for b = 0 by the rule), d/db = 0 for b >= 0.
    const z = model("pow", { a: { shape: [3] }, b: { shape: [3] } }, ["a", "b"]);
    const gz = gradGraph(z.graph, { a: t([0, 0, 0]), b: t([2, 1, 0]) });
    const out = interpret(gz.graph, gz.inputs, {}).outputs;
    const w = gz.inputs.__probe!.data;
    expect(Array.from(out["grad:a"]!.data)).toEqual([0, w[1]!, 0]);
    expect(Array.from(out["grad:b"]!.data)).toEqual([0, 0, 0]);
    await targets(gz, true);
  });

  it("pow: d/db is NaN for a negative base on every target (log of a negative number)", () => {
    const m = model("pow", { a: { shape: [2] }, b: { shape: [2] } }, ["a", "b"]);
    const gg = gradGraph(m.graph, { a: t([-2, 2]), b: t([2, 2]) }, { wrt: ["b"] });
    const ref = interpret(gg.graph, gg.inputs, {}).outputs["grad:b"]!;
    expect(Number.isNaN(ref.data[0])).toBe(true);
    expectJsMatchesReference(gg.graph, gg.inputs);
  });

  it("a binary op applied to the same value twice accumulates both shares (x / x, x ^ x)", async () => {
    for (const op of ["div", "pow", "mul"]) {
      const m = new TestModel();
      const x = m.input("x", "f32", ["N", 3]);
      m.output("y", m.call(op, [x, x]));
      const gg = checkGradients(m.graph, { x: randomTensor([2, 3], 4, 0.5, 2) });
      await targets(gg, false);
    }
  });
});

describe("unary ops", () => {
  // [op, keywords, lo, hi, kinks to stay away from, WGSL too]
  const cases: [string, Record<string, JsArg>, number, number, number[], boolean][] = [
    ["neg", {}, -3, 3, [], false],
    ["abs", {}, -3, 3, [0], true],
    ["relu", {}, -3, 3, [0], true],
    ["sigmoid", {}, -8, 8, [], true],
    ["tanh", {}, -4, 4, [], true],
    ["exp", {}, -4, 4, [], false],
    ["log", {}, 0.2, 5, [], true],
    ["sqrt", {}, 0.2, 5, [], false],
    ["softplus", {}, -20, 20, [], true],
    ["gelu", {}, -6, 6, [], true],
    ["logsigmoid", {}, -20, 20, [], false],
    ["leaky_relu", { alpha: 0.2 }, -3, 3, [0], false],
    ["elu", { alpha: 0.7 }, -4, 4, [0], true],
    ["clip", { lo: -0.5, hi: 1.25 }, -3, 3, [-0.5, 1.25], true],
    ["clip", { lo: 0 }, -3, 3, [0], false],
    ["clip", { hi: -1 }, -3, 3, [-1], false],
  ];
  it.each(cases)("%s %o over [N, 3, 5], N = 2 and 3", async (op, kw, lo, hi, kinks, wgsl) => {
    const m = model(op, { x: { shape: ["N", 3, 5] } }, ["x"], kw);
    for (const n of [2, 3]) {
      const x = awayFrom(randomTensor([n, 3, 5], 11 + n, lo, hi), kinks);
      const gg = checkGradients(m.graph, { x }, { maxElements: 30 });
      await targets(gg, wgsl && n === 2);
    }
  });

  it.each([["gelu"], ["softplus"], ["logsigmoid"], ["sigmoid"], ["tanh"]])("%s over its whole range, tails included", async (op) => {
    const m = model(op, { x: { shape: [121] } }, ["x"]);
    const x = t(Array.from({ length: 121 }, (_, i) => -15 + i * 0.25));
    const gg = checkGradients(m.graph, { x }, { maxElements: 121 });
    await targets(gg, op === "gelu");
  });

  it("kinks take PyTorch's values: abs'(0) = relu'(0) = 0, leaky_relu'(0) = elu'(0) = alpha, clip passes at its bounds", async () => {
    const x = t([0, -0.5, 1.25, 2, -3]);
    // Expected derivative (times the probe weight) per op.
    const expected: [string, Record<string, JsArg>, number[]][] = [
      ["abs", {}, [0, -1, 1, 1, -1]],
      ["relu", {}, [0, 0, 1, 1, 0]],
      ["leaky_relu", { alpha: 0.1 }, [0.1, 0.1, 1, 1, 0.1]],
      ["elu", { alpha: 0.5 }, [0.5, 0.5 * Math.exp(-0.5), 1, 1, 0.5 * Math.exp(-3)]],
      ["clip", { lo: -0.5, hi: 1.25 }, [1, 1, 1, 0, 0]],
    ];
    for (const [op, kw, d] of expected) {
      const m = model(op, { x: { shape: [5] } }, ["x"], kw);
      const gg = gradGraph(m.graph, { x });
      const got = interpret(gg.graph, gg.inputs, {}).outputs["grad:x"]!;
      const w = gg.inputs.__probe!.data;
      d.forEach((v, i) => expect(got.data[i], `${op} at ${x.data[i]}`).toBeCloseTo(v * w[i]!, 12));
      await targets(gg, op !== "abs");
    }
  });

  it("a chain of activations on a rank-0 input", async () => {
    const m = new TestModel();
    const x = m.input("x", "f32", []);
    m.output("y", m.call("gelu", [m.call("tanh", [m.call("exp", [x], {}, "e")], {}, "th")]));
    const gg = checkGradients(m.graph, { x: t([-0.3], []) });
    await targets(gg, false);
  });
});

describe("where", () => {
  it("routes dy by the condition and sums each branch over its broadcast axes: cond [N, 1], a [N, 4], b [4]", async () => {
    const m = model("where", { c: { dtype: "bool", shape: ["N", 1] }, a: { shape: ["N", 4] }, b: { shape: [4] } }, ["c", "a", "b"]);
    for (const n of [3, 4]) {
      const c = t(Array.from({ length: n }, (_, i) => i % 2), [n, 1], "bool");
      const gg = checkGradients(m.graph, { c, a: randomTensor([n, 4], 1), b: randomTensor([4], 2) });
      await targets(gg, n === 3);
    }
  });

  it("all three operands broadcast: cond [4], a [3, 1], b [1, 1]", async () => {
    const m = model("where", { c: { dtype: "bool", shape: [4] }, a: { shape: [3, 1] }, b: { shape: [1, 1] } }, ["c", "a", "b"]);
    const gg = checkGradients(m.graph, { c: t([1, 0, 0, 1], [4], "bool"), a: randomTensor([3, 1], 1), b: randomTensor([1, 1], 2) });
    await targets(gg, false);
  });

  it("a scalar literal branch gets no gradient; the condition is not differentiable (E309)", () => {
    const m = new TestModel();
    const c = m.input("c", "bool", [3]);
    const x = m.input("x", "f32", [3]);
    const y = m.call("sum", [m.call("where", [c, x, -1], {}, "w")]);
    m.output("y", y);
    checkGradients(m.graph, { c: t([1, 0, 1], [3], "bool"), x: randomTensor([3], 3) }, { wrt: ["x"] });
    try {
      differentiate(m.graph, y, [c]);
      expect.fail("expected E309");
    } catch (e) {
      expect(e).toBeInstanceOf(CompileError);
      expect((e as CompileError).diagnostics[0]!.code).toBe("E309");
    }
  });
});

describe("cast", () => {
  it("an i32 input cast to f32 carries no gradient, the f32 operand does", async () => {
    const m = new TestModel();
    const x = m.input("x", "f32", ["N", 3]);
    const k = m.input("k", "i32", ["N", 3]);
    m.output("y", m.call("mul", [x, m.call("cast", [k], { dtype: "f32" }, "kf")]));
    const gg = checkGradients(m.graph, { x: randomTensor([2, 3], 1), k: t([1, -2, 3, 0, 5, 7], [2, 3], "i32") });
    expect(gg.names).toEqual(["grad:x"]);
    await targets(gg, false);
  });

  it("f32 -> f32 is the identity (an explicit cast node)", () => {
    const m = new TestModel();
    const x = m.input("x", "f32", [4]);
    const c = m.s.graph.addNode("cast", [x], { dtype: "f32" }, [x.type]).outputs[0]!;
    m.output("y", m.call("mul", [c, c]));
    const gg = checkGradients(m.graph, { x: randomTensor([4], 2) });
    expectJsMatchesReference(gg.graph, gg.inputs);
  });

  it("a path through cast to i32 is cut (E309)", () => {
    const m = new TestModel();
    const x = m.input("x", "f32", [3]);
    const i = m.call("cast", [x], { dtype: "i32" }, "xi");
    const y = m.call("sum", [m.call("cast", [i], { dtype: "f32" }, "xf")]);
    try {
      differentiate(m.graph, y, [x]);
      expect.fail("expected E309");
    } catch (e) {
      expect(e).toBeInstanceOf(CompileError);
      const d = (e as CompileError).diagnostics[0]!;
      // (reverse.ts names the culprit only for cuts at non-differentiable inputs; here it says "a non-differentiable value".)
      expect(d.code).toBe("E309");
    }
  });
});

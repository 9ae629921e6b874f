// Gradient rules of the reduction family (compiler/ops/reduce.ts): reduce
// sum/mean/max/min/logsumexp over any axes (mean, max, min and logsumexp
// through the `reduce_grad` backward op), softmax and log_softmax (through
// `softmax_grad`), and argmax (no gradient, E309). Checked against float64
// finite differences on the reference, then the generated gradient kernels
// against the reference on JS and WGSL (both WGSL forms of softmax_grad).
// Ties of max/min are tested on hand-written inputs: the first extreme in flat
// order gets the gradient, the element argmax picks.

import { describe, expect, it } from "vitest";
import { differentiate } from "../../compiler/autodiff/reverse.ts";
import { CompileError } from "../../compiler/diagnostics.ts";
import { interpret } from "../../compiler/reference/interpreter.ts";
import { RefTensor } from "../../compiler/reference/tensor.ts";
import { randomTensor, t, TestModel, type JsArg } from "../support/build.ts";
import { expectJsMatchesReference } from "../support/conformance.ts";
import { checkGradients, gradGraph, type GradGraph } from "../support/gradcheck.ts";
import { expectWgslMatchesReference } from "../support/webgpu.ts";

type Shape = (number | string)[];

function model(callee: string, shape: Shape, keywords: Record<string, JsArg>): TestModel {
  const m = new TestModel();
  const x = m.input("x", "f32", shape);
  m.output("y", m.call(callee, [x], keywords));
  return m;
}

/** Distinct values (a shuffled grid with step 0.05, so any two differ by more than 1e-3). */
function distinct(shape: number[], seed: number): RefTensor {
  const n = shape.reduce((a, b) => a * b, 1);
  const order = Array.from(randomTensor([n], seed).data, (v, i) => [v, i] as const).sort((p, q) => p[0] - q[0]);
  const data = new Float64Array(n);
  order.forEach(([, i], rank) => (data[i] = (rank - n / 2) * 0.05));
  return new RefTensor("f32", shape, data);
}

async function targets(gg: GradGraph, wgsl: boolean): Promise<void> {
  expectJsMatchesReference(gg.graph, gg.inputs);
  if (wgsl) await expectWgslMatchesReference(gg.graph, gg.inputs);
}

describe("reduce", () => {
  const KINDS = ["sum", "mean", "max", "min", "logsumexp"];
  // Axes over [N, 3, 4, 5] as the forward tests: last, middle, first, contiguous pairs, non-contiguous sets, all.
  const AXES: (number | number[] | undefined)[] = [-1, 1, 0, [2, 3], [1, 2], [0, 2], [1, 3], [0, 1, 3], undefined];
  // WGSL on a subset: one single-block, one two-block and the all-axes case per kind.
  const WGSL_AXES = new Set(["[1,3]", "\"all\""]);
  for (const kind of KINDS) {
    for (const keepdims of [false, true]) {
      it.each(AXES.map((a) => [JSON.stringify(a ?? "all"), a] as const))(`${kind} keepdims=${keepdims} axis=%s over [N, 3, 4, 5], N = 2`, async (name, axis) => {
        const kw: Record<string, JsArg> = { keepdims };
        if (axis !== undefined) kw.axis = axis;
        const m = model(kind, ["N", 3, 4, 5], kw);
        const x = kind === "max" || kind === "min" ? distinct([2, 3, 4, 5], 3) : randomTensor([2, 3, 4, 5], 3, -2, 2);
        const gg = checkGradients(m.graph, { x });
        await targets(gg, keepdims === (kind === "mean" || kind === "min") && WGSL_AXES.has(name));
      });
    }
  }

  it.each(KINDS.map((k) => [k]))("%s over a symbolic axis: [2, L, 3] along L, L = 1, 4 and 7 (no baked count)", async (kind) => {
    const m = model(kind, [2, "L", 3], { axis: 1 });
    for (const L of [1, 4, 7]) {
      const x = kind === "max" || kind === "min" ? distinct([2, L, 3], L) : randomTensor([2, L, 3], L);
      const gg = checkGradients(m.graph, { x });
      await targets(gg, L === 4 && kind !== "sum");
    }
  });

  it("mean over every axis of [N, L] binds both symbols at run time", async () => {
    const m = model("mean", ["N", "L"], {});
    for (const [n, l] of [[2, 3], [5, 2]] as const) {
      const gg = checkGradients(m.graph, { x: randomTensor([n, l], n + l) });
      await targets(gg, n === 5);
    }
  });

  it("rank-0 input and size-1 reduced axes (each group is one element)", async () => {
    for (const kind of KINDS) {
      const m0 = model(kind, [], {});
      await targets(checkGradients(m0.graph, { x: t([0.7], []) }), false);
      const m1 = model(kind, ["N", 1, 4], { axis: 1 });
      await targets(checkGradients(m1.graph, { x: randomTensor([3, 1, 4], 2) }), kind === "max");
    }
  });

  it("logsumexp at ±50 (shifted, no overflow in the gradient)", async () => {
    const m = model("logsumexp", [3, 6], { axis: 1 });
    const gg = checkGradients(m.graph, { x: randomTensor([3, 6], 8, -50, 50) });
    await targets(gg, true);
  });

  describe("ties: the first extreme in flat order gets dy (argmax's element)", () => {
    // [kind, shape, axis, values, flat index of the winner in each group]
    const cases: [string, number[], JsArg, number[], number[]][] = [
      ["max", [2, 3], 1, [3, 1, 3, 2, 2, 2], [0, 3]],
      ["max", [2, 3], 0, [3, 1, 5, 3, 2, 5], [0, 4, 2]],
      ["min", [2, 3], 1, [1, 0, 0, 4, 4, 4], [1, 3]],
      ["max", [2, 2, 2], [0, 2], [1, 7, 0, 0, 7, 7, 0, 0], [1, 2]],
      ["min", [2, 3], null, [5, 1, 1, 2, 1, 3], [1]],
    ];
    it.each(cases)("%s over %j axis %j", async (kind, shape, axis, values, winners) => {
      const kw: Record<string, JsArg> = axis === null ? {} : { axis };
      const m = model(kind, shape, kw);
      const gg = gradGraph(m.graph, { x: t(values, shape) });
      const got = interpret(gg.graph, gg.inputs, {}).outputs["grad:x"]!;
      const w = gg.inputs.__probe!.data;
      const want = new Array<number>(values.length).fill(0);
      winners.forEach((k, g) => (want[k] = w[g]!));
      expect(Array.from(got.data)).toEqual(want);
      await targets(gg, true);
    });

    it("agrees with argmax along a single axis", () => {
      const x = t([2, 5, 5, 1, 0, 0, 0, 0, 7, 3, 7, 7], [3, 4]);
      const m = new TestModel();
      const xi = m.input("x", "f32", [3, 4]);
      m.output("y", m.call("max", [xi], { axis: 1 }));
      m.output("i", m.call("argmax", [xi], { axis: 1 }, "i"));
      const gg = gradGraph(m.graph, { x });
      const grad = interpret(gg.graph, gg.inputs, {}).outputs["grad:x"]!;
      const idx = m.run({ x }).outputs.i!;
      for (let r = 0; r < 3; r++) {
        const row = Array.from(grad.data.slice(r * 4, r * 4 + 4));
        expect(row.findIndex((v) => v !== 0)).toBe(idx.data[r]);
      }
    });
  });
});

describe("softmax and log_softmax", () => {
  for (const op of ["softmax", "log_softmax"]) {
    it.each([[0], [1], [2], [-1]])(`${op} axis %s over [N, 5, 7], N = 1 and 3`, async (axis) => {
      const m = model(op, ["N", 5, 7], { axis });
      for (const n of [1, 3]) {
        const gg = checkGradients(m.graph, { x: randomTensor([n, 5, 7], 5 + n, -3, 3) });
        await targets(gg, n === 3 && (axis === 1 || axis === -1));
      }
    });

    it(`${op}: the workgroup ("gpu") WGSL form, along the last and a middle axis`, async () => {
      for (const axis of [-1, 1]) {
        const m = model(op, ["N", 70, 3], { axis });
        const gg = gradGraph(m.graph, { x: randomTensor([2, 70, 3], 4, -3, 3) });
        await expectWgslMatchesReference(gg.graph, gg.inputs, { adapterClass: "gpu" });
      }
    });

    it(`${op} with logits of ±30 and a symbolic axis length`, async () => {
      const m = model(op, [2, "L"], { axis: -1 });
      for (const L of [2, 9]) {
        const gg = checkGradients(m.graph, { x: randomTensor([2, L], L, -30, 30) });
        await targets(gg, L === 9);
      }
    });
  }

  it("softmax followed by log and a mean (a hand-written cross entropy) matches log_softmax", async () => {
    const m = new TestModel();
    const x = m.input("x", "f32", ["N", 4]);
    const p = m.call("softmax", [x], { axis: 1 }, "p");
    m.output("y", m.call("mean", [m.call("log", [p], {}, "lp")]));
    const gg = checkGradients(m.graph, { x: randomTensor([3, 4], 2, -2, 2) });
    await targets(gg, false);
  });
});

describe("argmax", () => {
  it("has no gradient: a path only through argmax is E309, a parallel float path still differentiates", () => {
    const m = new TestModel();
    const x = m.input("x", "f32", [2, 3]);
    const i = m.call("argmax", [x], { axis: 1 }, "pred");
    const f = m.call("cast", [i], { dtype: "f32" }, "f");
    const y = m.call("sum", [f], {}, "y");
    try {
      differentiate(m.graph, y, [x]);
      expect.fail("expected E309");
    } catch (e) {
      expect(e).toBeInstanceOf(CompileError);
      const d = (e as CompileError).diagnostics[0]!;
      expect(d.code).toBe("E309");
      expect(d.message).toContain("argmax 'pred'");
    }
    // y2 = sum(x) + sum(cast(argmax(x))): the argmax branch contributes nothing.
    const m2 = new TestModel();
    const x2 = m2.input("x", "f32", [2, 3]);
    const s = m2.call("sum", [x2], {}, "s");
    const fa = m2.call("sum", [m2.call("cast", [m2.call("argmax", [x2], { axis: 1 }, "i")], { dtype: "f32" }, "f")], {}, "fa");
    m2.output("y", m2.call("add", [s, fa]));
    checkGradients(m2.graph, { x: distinct([2, 3], 1) });
  });
});

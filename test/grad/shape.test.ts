// Gradient rules of the shape family (reshape/flatten, transpose, concat,
// slice, pad, upsample, broadcast_to) and its backward ops slice_grad and
// upsample_grad: float64 finite differences on the reference, then the
// generated JS and WGSL gradient kernels against the reference.

import { describe, expect, it } from "vitest";
import { differentiate } from "../../compiler/autodiff/reverse.ts";
import { CompileError } from "../../compiler/diagnostics.ts";
import { Dim } from "../../compiler/ir/dims.ts";
import { interpret } from "../../compiler/reference/interpreter.ts";
import { TestModel, randomTensor, t, type JsArg } from "../support/build.ts";
import { expectJsMatchesReference } from "../support/conformance.ts";
import { checkGradients, gradGraph, type GradGraph } from "../support/gradcheck.ts";
import { expectWgslMatchesReference } from "../support/webgpu.ts";

type Shape = readonly (number | string)[];

interface Case {
  readonly name: string;
  readonly callee: string;
  /** Declared input shapes (x0, x1, ...); concat takes them as one list. */
  readonly shapes: readonly Shape[];
  readonly keywords?: Record<string, JsArg>;
  /** Concrete shapes per feed: one gradient check per entry. */
  readonly feeds: readonly (readonly number[][])[];
  /** The backward op the rule is expected to emit (checked in the gradient graph). */
  readonly emits?: string;
  /** Part of the WGSL subset. */
  readonly wgsl?: boolean;
}

/** The case's gradient graphs, checked against finite differences unless `fd` is false (the WGSL runs, already checked). */
function gradCheck(c: Case, fd = true): GradGraph[] {
  const m = new TestModel();
  const xs = c.shapes.map((s, i) => m.input(`x${i}`, "f32", s));
  const y = m.call(c.callee, c.callee === "concat" ? [xs] : [xs[0]!], c.keywords ?? {}, "f1");
  m.output("y", y);
  return c.feeds.map((shapes, e) => {
    const inputs = Object.fromEntries(shapes.map((s, i) => [`x${i}`, randomTensor(s, 5 + 19 * i + 101 * e)]));
    const opts = { wrt: xs.map((_, i) => `x${i}`), maxElements: 60 };
    const gg = fd ? checkGradients(m.graph, inputs, opts) : gradGraph(m.graph, inputs, opts);
    if (c.emits) expect(gg.graph.nodes.map((n) => n.op)).toContain(c.emits);
    return gg;
  });
}

const sym = (d: number | string) => (typeof d === "string" ? Dim.sym(d) : d);

const cases: Case[] = [
  // reshape / flatten
  { name: "reshape [N, 3, 4] -> [-1, 12]", callee: "reshape", shapes: [["N", 3, 4]], keywords: { shape: [-1, 12] }, feeds: [[[2, 3, 4]], [[1, 3, 4]]], wgsl: true },
  { name: "reshape [2, 3, 4] -> [4, 6]", callee: "reshape", shapes: [[2, 3, 4]], keywords: { shape: [4, 6] }, feeds: [[[2, 3, 4]]] },
  { name: "flatten [N, 2, 3, 2]", callee: "flatten", shapes: [["N", 2, 3, 2]], feeds: [[[2, 2, 3, 2]]] },
  // transpose
  ...([
    [["N", 5], [1, 0], [[3, 5]]],
    [["N", 3, 4], [0, 2, 1], [[2, 3, 4]]],
    [["N", 3, 4], [2, 0, 1], [[2, 3, 4]]],
    [["N", 3, 4, 5], [0, 2, 3, 1], [[2, 3, 4, 5]]],
    [["N", 3, 4, 5], [3, 2, 1, 0], [[1, 3, 4, 5]]],
    [["N", 3, 4, 5], [0, 1, 2, 3], [[2, 3, 4, 5]]],
    [[2, 1, "L", 3], [3, 1, 2, 0], [[2, 1, 4, 3]]],
  ] as [Shape, number[], number[][]][]).map(([shape, perm, feed], k): Case => ({
    name: `transpose ${JSON.stringify(shape)} perm ${JSON.stringify(perm)}`,
    callee: "transpose",
    shapes: [shape],
    keywords: { perm },
    feeds: [feed],
    wgsl: k === 3,
  })),
  // concat: the slices of dy start at symbolic offsets
  { name: "concat [N, 3], [M, 3] on axis 0", callee: "concat", shapes: [["N", 3], ["M", 3]], keywords: { axis: 0 }, feeds: [[[2, 3], [3, 3]], [[1, 3], [1, 3]]], wgsl: true },
  { name: "concat three [N, ., 4] on axis 1", callee: "concat", shapes: [["N", 2, 4], ["N", 5, 4], ["N", 1, 4]], keywords: { axis: 1 }, feeds: [[[2, 2, 4], [2, 5, 4], [2, 1, 4]]], wgsl: true },
  { name: "concat three on axis -1", callee: "concat", shapes: [[2, 3, 2], [2, 3, 1], [2, 3, 3]], keywords: { axis: -1 }, feeds: [[[2, 3, 2], [2, 3, 1], [2, 3, 3]]] },
  { name: "concat [N, L], [N, K], [N, L] on axis 1", callee: "concat", shapes: [["N", "L"], ["N", "K"], ["N", "L"]], keywords: { axis: 1 }, feeds: [[[2, 3], [2, 1], [2, 3]]], wgsl: true },
  { name: "concat of one tensor", callee: "concat", shapes: [["N", 3]], keywords: { axis: 1 }, feeds: [[[2, 3]]] },
  // slice: zero pad for static bounds and step 1, slice_grad otherwise
  { name: "slice a middle range of axis 1", callee: "slice", shapes: [["N", 6, 3]], keywords: { axis: 1, start: 1, end: 4 }, feeds: [[[2, 6, 3]]], emits: "pad", wgsl: true },
  { name: "slice a negative start on the last axis", callee: "slice", shapes: [["N", 6]], keywords: { axis: -1, start: -3 }, feeds: [[[2, 6]]], emits: "pad" },
  { name: "slice the whole axis", callee: "slice", shapes: [[3, 4]], keywords: { axis: 0, start: 0 }, feeds: [[[3, 4]]] },
  { name: "slice negative end with step 2", callee: "slice", shapes: [["N", 7, 2]], keywords: { axis: 1, start: 0, end: -1, step: 2 }, feeds: [[[2, 7, 2]]], emits: "slice_grad", wgsl: true },
  { name: "slice step 3 on the last axis", callee: "slice", shapes: [["N", 10]], keywords: { axis: 1, start: 1, step: 3 }, feeds: [[[2, 10]]], emits: "slice_grad", wgsl: true },
  { name: "slice out-of-range bounds clamp", callee: "slice", shapes: [[4, 5]], keywords: { axis: 1, start: -100, end: 100, step: 2 }, feeds: [[[4, 5]]], emits: "slice_grad" },
  { name: "slice the symbolic batch axis with step 2", callee: "slice", shapes: [["N", 3]], keywords: { axis: 0, start: 1, step: 2 }, feeds: [[[5, 3]], [[6, 3]]], emits: "slice_grad", wgsl: true },
  { name: "slice a symbolic axis from a negative start", callee: "slice", shapes: [[2, "L", 3]], keywords: { axis: 1, start: -2 }, feeds: [[[2, 5, 3]], [[2, 3, 3]]], emits: "slice_grad", wgsl: true },
  { name: "slice a symbolic axis between two bounds", callee: "slice", shapes: [[2, "L"]], keywords: { axis: 1, start: 1, end: -1 }, feeds: [[[2, 5]]], emits: "slice_grad" },
  { name: "slice a symbolic axis with step 2", callee: "slice", shapes: [["L", 2]], keywords: { axis: 0, start: 1, step: 2 }, feeds: [[[6, 2]], [[7, 2]]], emits: "slice_grad" },
  { name: "slice a symbolic axis up to a static end", callee: "slice", shapes: [["L", 2]], keywords: { axis: 0, start: 0, end: 3 }, feeds: [[[5, 2]]], emits: "slice_grad" },
  // pad: slices of dy
  { name: "pad asymmetric on the last two dims with a value", callee: "pad", shapes: [["N", 2, 3, 4]], keywords: { padding: [[1, 0], [2, 3]], value: -1.5 }, feeds: [[[2, 2, 3, 4]]], wgsl: true },
  { name: "pad an int on every dim", callee: "pad", shapes: [["N", 3]], keywords: { padding: 1 }, feeds: [[[2, 3]], [[4, 3]]] },
  { name: "pad only the last dim", callee: "pad", shapes: [["N", 5]], keywords: { padding: [[0, 2]], value: 7 }, feeds: [[[3, 5]]] },
  { name: "pad only a leading dim", callee: "pad", shapes: [["N", 3, 4]], keywords: { padding: [[2, 1], 0, 0] }, feeds: [[[2, 3, 4]]] },
  { name: "pad a symbolic dim", callee: "pad", shapes: [[2, "L"]], keywords: { padding: [[1, 2]] }, feeds: [[[2, 3]], [[2, 5]]], wgsl: true },
  { name: "pad nothing", callee: "pad", shapes: [["N", 3]], keywords: { padding: 0 }, feeds: [[[2, 3]]] },
  // upsample: nearest by block sums, linear by upsample_grad
  ...["nearest", "linear"].flatMap((mode) => [
    ...([
      [["N", 2, 5], [2, 2, 5]],
      [["N", 2, 3, 4], [2, 2, 3, 4]],
      [["N", 1, 2, 3, 2], [1, 1, 2, 3, 2]],
    ] as [Shape, number[]][]).flatMap(([shape, feed]) =>
      [2, 3].map((scale): Case => ({
        name: `upsample ${mode} x${scale} over ${JSON.stringify(shape)}`,
        callee: "upsample",
        shapes: [shape],
        keywords: { scale, mode },
        feeds: [[feed]],
        emits: mode === "linear" ? "upsample_grad" : "reduce",
        wgsl: mode === "linear" ? scale === 3 || shape.length === 4 : scale === 2 && shape.length === 4,
      })),
    ),
    { name: `upsample ${mode} with scales [3, 1, 2] and a size-1 dim`, callee: "upsample", shapes: [["N", 2, 1, 3, 2]], keywords: { scale: [3, 1, 2], mode }, feeds: [[[2, 2, 1, 3, 2]]], wgsl: mode === "linear" },
    { name: `upsample ${mode} x5 over a symbolic length`, callee: "upsample", shapes: [[1, 2, "L"]], keywords: { scale: 5, mode }, feeds: [[[1, 2, 3]], [[1, 2, 1]]], wgsl: true },
    { name: `upsample ${mode} x1`, callee: "upsample", shapes: [[1, 2, 4]], keywords: { scale: 1, mode }, feeds: [[[1, 2, 4]]] },
  ]),
  // broadcast_to: sums over the broadcast axes
  ...([
    [[3, 1, 5], [2, 3, 4, 5]],
    [["N", 1], ["N", 6]],
    [[], [2, 3]],
    [[4], [2, 3, 4]],
    [["N", 1, 1], ["N", 2, 3]],
  ] as [Shape, Shape][]).map(([from, to], k): Case => ({
    name: `broadcast_to ${JSON.stringify(from)} -> ${JSON.stringify(to)}`,
    callee: "broadcast_to",
    shapes: [from],
    keywords: { shape: to.map(sym) },
    feeds: [[from.map((d) => (d === "N" ? 3 : (d as number)))]],
    wgsl: k === 0 || k === 4,
  })),
];

describe("shape gradients", () => {
  it.each(cases.map((c) => [c.name, c] as const))("%s: finite differences and JS", (_name, c) => {
    for (const gg of gradCheck(c)) expectJsMatchesReference(gg.graph, gg.inputs);
  });

  it("linear upsample: an edge input gets both taps of the clamped outputs", () => {
    // One row [a, b] upsampled x2: outputs read (a), (0.75a + 0.25b), (0.25a + 0.75b), (b),
    // so with dy = 1 everywhere dx = [2, 2]; with dy = [1, 0, 0, 0] dx = [1, 0].
    const m = new TestModel();
    const x = m.input("x", "f32", [1, 1, 2]);
    const y = m.call("upsample", [x], { scale: 2, mode: "linear" }, "f1");
    const seed = m.graph.addNode("input", [], { name: "dy" }, [y.type]).outputs[0]!;
    m.graph.inputs.set("dy", seed);
    const [dx] = differentiate(m.graph, y, [x], { seed });
    m.graph.outputs.push({ name: "dx", value: dx!, kind: "output" });
    const run = (dy: number[]) => Array.from(interpret(m.graph, { x: t([1, 2], [1, 1, 2]), dy: t(dy, [1, 1, 4]) }, {}).outputs.dx!.data);
    expect(run([1, 1, 1, 1])).toEqual([2, 2]);
    expect(run([1, 0, 0, 0])).toEqual([1, 0]);
    expect(run([0, 1, 0, 0])).toEqual([0.75, 0.25]);
    expectJsMatchesReference(m.graph, { x: t([1, 2], [1, 1, 2]), dy: t([0.5, -1, 2, 3], [1, 1, 4]) });
  });

  it("no gradient flows to an i32 tensor through shape ops (E309)", () => {
    const m = new TestModel();
    const i = m.input("i", "i32", [2, 4]);
    const s = m.call("slice", [i], { axis: 1, start: 1 }, "s");
    const c = m.call("cast", [s], { dtype: "f32" }, "c");
    const y = m.call("sum", [c], {}, "y");
    try {
      differentiate(m.graph, y, [i]);
      expect.fail("expected E309");
    } catch (e) {
      expect(e).toBeInstanceOf(CompileError);
      expect((e as CompileError).diagnostics[0]!.code).toBe("E309");
    }
  });
});

describe("shape gradients on WebGPU", () => {
  it.each(cases.filter((c) => c.wgsl).map((c) => [c.name, c] as const))("%s", async (_name, c) => {
    const [gg] = gradCheck({ ...c, feeds: c.feeds.slice(-1) }, false);
    await expectWgslMatchesReference(gg!.graph, gg!.inputs);
  });
});

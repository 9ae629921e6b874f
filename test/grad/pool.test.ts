// Gradients of the pooling family: `pool` (max/avg/sum, 1-3-d, stride,
// padding, dilation, ceil_mode, count_include_pad, masks), `global_pool` and
// `kmax_pool`, checked against float64 finite differences on the reference
// interpreter, then the generated gradient kernels (pool_grad, kmax_pool_grad
// and the IR the global rules emit) on JS over the same cases and on WebGPU
// over a representative subset. Max-type pools get inputs whose values are
// distinct and at least 0.01 apart (no ties, no kinks within the finite
// difference step); the tie rule (first maximum in window order, lowest index)
// is checked on small hand-written cases.

import { describe, expect, it } from "vitest";
import { differentiate } from "../../compiler/autodiff/reverse.ts";
import { CompileError } from "../../compiler/diagnostics.ts";
import { interpret } from "../../compiler/reference/interpreter.ts";
import { RefTensor } from "../../compiler/reference/tensor.ts";
import { TestModel, randomTensor, t, type JsArg } from "../support/build.ts";
import { expectJsMatchesReference } from "../support/conformance.ts";
import { checkGradients, gradGraph, type GradGraph } from "../support/gradcheck.ts";
import { expectWgslMatchesReference } from "../support/webgpu.ts";

type Shape = readonly (number | string)[];

/** A bool tensor with roughly `density` of its cells true. */
function boolTensor(shape: readonly number[], seed: number, density = 0.6): RefTensor {
  const u = randomTensor(shape, seed, 0, 1);
  return new RefTensor("bool", shape, u.data.map((v) => (v < density ? 1 : 0)));
}

/** Distinct values 0.01 apart in a seeded random order (no ties, so max pools are smooth around them). */
function distinctTensor(shape: readonly number[], seed: number): RefTensor {
  const n = shape.reduce((a, b) => a * b, 1);
  const keys = randomTensor([n], seed).data;
  const order = Array.from({ length: n }, (_, i) => i).sort((p, q) => keys[p]! - keys[q]!);
  const data = new Float64Array(n);
  order.forEach((i, rank) => (data[i] = (rank - n / 2) * 0.01));
  return new RefTensor("f32", shape, data);
}

function poolModel(callee: string, shape: Shape, kw: Record<string, JsArg>, maskShape?: Shape) {
  const m = new TestModel();
  const x = m.input("x", "f32", shape);
  const mask = maskShape ? m.input("m", "bool", maskShape) : undefined;
  m.output("y", m.call(callee, [x], mask ? { ...kw, mask } : kw, "p"));
  return m;
}

interface CaseOpts {
  readonly mask?: Shape;
  readonly maskRuns?: readonly (readonly number[])[];
  readonly density?: number;
  /** Also check the generated JS gradient kernels (default true). */
  readonly js?: boolean;
}

/** Builds the pool once; for each run checks the gradient by finite differences and (by default) the JS kernels. */
function check(callee: string, shape: Shape, kw: Record<string, JsArg>, runs: readonly (readonly number[])[], opts: CaseOpts = {}): GradGraph[] {
  const m = poolModel(callee, shape, kw, opts.mask);
  return runs.map((s, i) => {
    const inputs: Record<string, RefTensor> = { x: distinctTensor(s, 5 + i) };
    if (opts.mask) inputs.m = boolTensor(opts.maskRuns![i]!, 11 + i, opts.density);
    const gg = checkGradients(m.graph, inputs);
    if (opts.js !== false) expectJsMatchesReference(gg.graph, gg.inputs);
    return gg;
  });
}

/** The reference gradient of x (probe weights from gradGraph) for hand-written inputs. */
function gradOf(callee: string, shape: Shape, kw: Record<string, JsArg>, x: RefTensor, mask?: RefTensor) {
  // the mask is declared with x's (symbolic) shape
  const m = poolModel(callee, shape, kw, mask ? shape : undefined);
  const gg = gradGraph(m.graph, mask ? { x, m: mask } : { x });
  const out = interpret(gg.graph, gg.inputs, {}).outputs;
  // (+ 0 turns −0, a negative weight times a zero mask, into 0)
  return { gg, dx: Array.from(out["grad:x"]!.data, (v) => v + 0), w: Array.from(gg.inputs.__probe!.data) };
}

describe("pool gradients 1-d", () => {
  const x = ["N", 3, "L"] as const;
  const runs = [[2, 3, 11], [1, 3, 8]];
  for (const kind of ["max", "avg", "sum"]) {
    const callee = `${kind}pool1d`;
    it(`${callee}: window, stride, padding, dilation, ceil_mode, symbolic N and L`, () => {
      check(callee, x, { window: 2 }, runs);
      check(callee, x, { window: 3, stride: 2 }, runs);
      check(callee, x, { window: 3, stride: 2, padding: 1 }, runs);
      check(callee, x, { window: 3, stride: 2, ceil_mode: true }, runs);
      check(callee, x, { window: 4, stride: 3, padding: [[2, 1]], ceil_mode: true }, runs);
      check(callee, x, { window: 2, dilation: 2, stride: 1, padding: 1 }, runs);
      check(callee, x, { window: 5, stride: 1 }, runs);
      check(callee, x, { window: 3, stride: 1, padding: "same" }, runs);
    });
  }
  it("avgpool1d with count_include_pad=false, with and without ceil_mode", () => {
    check("avgpool1d", x, { window: 3, stride: 2, padding: 1, count_include_pad: false }, runs);
    check("avgpool1d", x, { window: 4, stride: 3, padding: 2, ceil_mode: true, count_include_pad: false }, runs);
    check("avgpool1d", x, { window: 4, stride: 3, padding: 2, ceil_mode: true }, runs);
  });
  it("masks: broadcast [N, 1, L], full [N, C, L] and [L]", () => {
    for (const kind of ["max", "avg", "sum"]) {
      check(`${kind}pool1d`, x, { window: 3, stride: 2, padding: 1 }, runs, { mask: ["N", 1, "L"], maskRuns: [[2, 1, 11], [1, 1, 8]] });
      check(`${kind}pool1d`, x, { window: 2 }, runs, { mask: ["N", 3, "L"], maskRuns: [[2, 3, 11], [1, 3, 8]], density: 0.4 });
      check(`${kind}pool1d`, [2, 3, 7], { window: 3, stride: 2, ceil_mode: true }, [[2, 3, 7]], { mask: [7], maskRuns: [[7]] });
    }
  });
});

describe("pool gradients 2-d and 3-d", () => {
  it("LeNet-like maxpool2d window 2, symbolic N", () => check("maxpool2d", ["N", 6, 12, 12], { window: 2 }, [[2, 6, 12, 12], [1, 6, 12, 12]]));
  it("window [3, 2], stride [2, 1], padding, ceil_mode, dilation, symbolic H and W", () => {
    for (const kind of ["max", "avg", "sum"]) {
      const callee = `${kind}pool2d`;
      const runs = [[2, 2, 9, 8]];
      check(callee, ["N", 2, 9, 8], { window: [3, 2], stride: [2, 1], padding: [1, 0] }, runs);
      check(callee, ["N", 2, 9, 8], { window: 3, stride: 2, padding: 1, ceil_mode: true }, runs);
      check(callee, ["N", 2, 9, 8], { window: 2, stride: [1, 2], dilation: [2, 3] }, runs);
      check(callee, ["N", 2, "H", "W"], { window: 3, stride: 2, padding: 1, ceil_mode: true }, [[2, 2, 6, 7], [1, 2, 9, 4]]);
    }
  });
  it("avgpool2d count_include_pad=false and masks [N, 1, H, W], [N, C, H, W], [1, C, 1, W]", () => {
    const runs = [[2, 3, 7, 6]];
    check("avgpool2d", ["N", 3, 7, 6], { window: 3, stride: 2, padding: 1, count_include_pad: false, ceil_mode: true }, runs);
    check("avgpool2d", ["N", 3, 7, 6], { window: 3, stride: 2, padding: 1 }, runs, { mask: ["N", 1, 7, 6], maskRuns: [[2, 1, 7, 6]] });
    check("maxpool2d", ["N", 3, 7, 6], { window: 2 }, runs, { mask: ["N", 3, 7, 6], maskRuns: [[2, 3, 7, 6]], density: 0.3 });
    check("maxpool2d", ["N", 3, 7, 6], { window: 3, stride: 1, padding: 1 }, runs, { mask: ["N", 1, 7, 6], maskRuns: [[2, 1, 7, 6]] });
    check("sumpool2d", ["N", 3, 7, 6], { window: [2, 3], dilation: [2, 1], padding: [1, 1] }, runs, { mask: [1, 3, 1, 6], maskRuns: [[1, 3, 1, 6]] });
  });
  it("3-d pools", () => {
    const runs = [[2, 2, 4, 5, 6], [1, 2, 4, 5, 6]];
    check("maxpool3d", ["N", 2, 4, 5, 6], { window: 2 }, runs);
    check("avgpool3d", ["N", 2, 4, 5, 6], { window: 3, stride: 2, padding: 1, ceil_mode: true }, runs);
    check("sumpool3d", ["N", 2, 4, 5, 6], { window: [2, 3, 2], dilation: [1, 2, 1] }, runs, { mask: ["N", 1, 4, 5, 6], maskRuns: [[2, 1, 4, 5, 6], [1, 1, 4, 5, 6]] });
    check("maxpool3d", ["N", 2, 4, 5, 6], { window: 3, stride: 2, padding: 1 }, [[1, 2, 4, 5, 6]], { mask: ["N", 2, 4, 5, 6], maskRuns: [[1, 2, 4, 5, 6]] });
  });
});

describe("pool gradients: ties, masks and empty windows", () => {
  it("max: a tie goes to the first maximum in window order (the lowest index); overlapping windows add up", () => {
    // windows [3, 3], [3, 1], [1, 3] (stride 1): winners are cells 0, 1 and 3
    const { gg, dx, w } = gradOf("maxpool1d", ["N", 1, "L"], { window: 2, stride: 1 }, t([3, 3, 1, 3], [1, 1, 4]));
    expect(dx).toEqual([w[0]!, w[1]!, 0, w[2]!]);
    expectJsMatchesReference(gg.graph, gg.inputs);
    // window 3 stride 1 over [2, 5, 5, 1, 5]: [2, 5, 5] and [5, 5, 1] both go to cell 1, [5, 1, 5] to cell 2
    const b = gradOf("maxpool1d", ["N", 1, "L"], { window: 3, stride: 1 }, t([2, 5, 5, 1, 5], [1, 1, 5]));
    expect(b.dx).toEqual([0, b.w[0]! + b.w[1]!, b.w[2]!, 0, 0]);
    expectJsMatchesReference(b.gg.graph, b.gg.inputs);
    // 2-d: window order is row-major, so of the tied 4s the top-right one wins
    const c = gradOf("maxpool2d", ["N", 1, 2, 2], { window: 2 }, t([1, 4, 4, 4], [1, 1, 2, 2]));
    expect(c.dx).toEqual([0, c.w[0]!, 0, 0]);
    expectJsMatchesReference(c.gg.graph, c.gg.inputs);
  });
  it("max with a mask: masked cells never win; an all-masked window sends nothing", () => {
    const x = t([5, -3, -2, -7, 4, 1], [1, 1, 6]);
    const mask = t([1, 0, 0, 0, 0, 1], [1, 1, 6], "bool");
    const { gg, dx, w } = gradOf("maxpool1d", ["N", 1, "L"], { window: 2 }, x, mask);
    expect(dx).toEqual([w[0]!, 0, 0, 0, 0, w[2]!]);
    expectJsMatchesReference(gg.graph, gg.inputs);
    const a = gradOf("avgpool1d", ["N", 1, "L"], { window: 2 }, x, mask);
    expect(a.dx).toEqual([a.w[0]!, 0, 0, 0, 0, a.w[2]!]);
    expectJsMatchesReference(a.gg.graph, a.gg.inputs);
  });
  it("avg divides by the forward's count: padded extent with count_include_pad, eligible cells without", () => {
    // L = 3, window 3, stride 2, padding 1: windows [pad, x0, x1] and [x1, x2, pad]
    const x = t([1, 2, 3], [1, 1, 3]);
    const inc = gradOf("avgpool1d", ["N", 1, "L"], { window: 3, stride: 2, padding: 1 }, x);
    expect(inc.dx.map((v) => +v.toFixed(12))).toEqual([inc.w[0]! / 3, (inc.w[0]! + inc.w[1]!) / 3, inc.w[1]! / 3].map((v) => +v.toFixed(12)));
    const exc = gradOf("avgpool1d", ["N", 1, "L"], { window: 3, stride: 2, padding: 1, count_include_pad: false }, x);
    expect(exc.dx.map((v) => +v.toFixed(12))).toEqual([exc.w[0]! / 2, (exc.w[0]! + exc.w[1]!) / 2, exc.w[1]! / 2].map((v) => +v.toFixed(12)));
    expectJsMatchesReference(inc.gg.graph, inc.gg.inputs);
    expectJsMatchesReference(exc.gg.graph, exc.gg.inputs);
  });
  it("the mask carries no gradient: differentiating with respect to it is E309", () => {
    const m = poolModel("maxpool1d", ["N", 1, "L"], { window: 2 }, ["N", 1, "L"]);
    const mask = m.graph.inputs.get("m")!;
    const y = m.call("sum", [m.graph.outputs[0]!.value], {}, "s");
    try {
      differentiate(m.graph, y, [mask]);
      expect.fail("expected E309");
    } catch (e) {
      expect(e).toBeInstanceOf(CompileError);
      expect((e as CompileError).diagnostics[0]!.code).toBe("E309");
    }
  });
});

describe("global pool gradients", () => {
  for (const kind of ["max", "avg", "sum"]) {
    const callee = `global_${kind}pool`;
    it(`${callee} without and with masks, symbolic N and L`, () => {
      check(callee, ["N", 3, "L"], {}, [[2, 3, 9], [1, 3, 4]]);
      check(callee, ["N", 3, 5, 4], {}, [[2, 3, 5, 4]]);
      check(callee, ["N", 3, "H", "W"], {}, [[2, 3, 3, 4]]);
      check(callee, ["N", 2, 3, 4, 2], {}, [[2, 2, 3, 4, 2]]);
      check(callee, ["N", 3, "L"], {}, [[2, 3, 9], [3, 3, 4]], { mask: ["N", 1, "L"], maskRuns: [[2, 1, 9], [3, 1, 4]] });
      check(callee, ["N", 3, 5, 4], {}, [[2, 3, 5, 4]], { mask: ["N", 3, 5, 4], maskRuns: [[2, 3, 5, 4]] });
      check(callee, ["N", 3, 5, 4], {}, [[2, 3, 5, 4]], { mask: ["N", 1, 1, 4], maskRuns: [[2, 1, 1, 4]] });
      check(callee, ["N", 3, 5, 4], {}, [[2, 3, 5, 4]], { mask: [5, 1], maskRuns: [[5, 1]] });
    });
  }
  it("global max: ties to the lowest flat index; an all-masked row sends nothing", () => {
    const x = t([4, 7, 7, -1, 2, 2], [2, 1, 3]);
    const { gg, dx, w } = gradOf("global_maxpool", ["N", 1, "L"], {}, x);
    expect(dx).toEqual([0, w[0]!, 0, 0, w[1]!, 0]);
    expectJsMatchesReference(gg.graph, gg.inputs);
    const mask = t([0, 0, 0, 1, 0, 1], [2, 1, 3], "bool");
    const mk = gradOf("global_maxpool", ["N", 1, "L"], {}, x, mask);
    expect(mk.dx).toEqual([0, 0, 0, 0, 0, mk.w[1]!]);
    const av = gradOf("global_avgpool", ["N", 1, "L"], {}, x, mask);
    expect(av.dx).toEqual([0, 0, 0, av.w[1]! / 2, 0, av.w[1]! / 2]);
    expectJsMatchesReference(mk.gg.graph, mk.gg.inputs);
    expectJsMatchesReference(av.gg.graph, av.gg.inputs);
  });
});

describe("kmax_pool gradients", () => {
  it("k along the last axis, symbolic N and L at two sizes", () => {
    check("kmax_pool", ["N", "L"], { k: 3 }, [[4, 9], [2, 5]]);
    check("kmax_pool", ["N", 2, "L"], { k: 1 }, [[2, 2, 7], [1, 2, 1]]);
  });
  it("other axes: middle and first; k equal to the axis size", () => {
    check("kmax_pool", ["N", 6, 3], { k: 2, axis: 1 }, [[2, 6, 3], [3, 6, 3]]);
    check("kmax_pool", [5, 2, 3], { k: 4, axis: 0 }, [[5, 2, 3]]);
    check("kmax_pool", [2, 7, 3, 2], { k: 7, axis: 1 }, [[2, 7, 3, 2]]);
  });
  it("masks: full, broadcast, fewer unmasked cells than k (masked picks get nothing)", () => {
    check("kmax_pool", ["N", "L"], { k: 3 }, [[4, 9], [3, 5]], { mask: ["N", "L"], maskRuns: [[4, 9], [3, 5]] });
    check("kmax_pool", ["N", 2, "L"], { k: 4 }, [[3, 2, 8]], { mask: ["N", 1, "L"], maskRuns: [[3, 1, 8]], density: 0.3 });
    check("kmax_pool", ["N", 4, 3], { k: 2, axis: 1 }, [[2, 4, 3]], { mask: [4, 1], maskRuns: [[4, 1]] });
    // unmasked 9 and 5 (slots 1, 2), then the earliest masked cell (index 0, slot 0) whose output is the constant 0
    const { gg, dx, w } = gradOf("kmax_pool", ["N", "L"], { k: 3 }, t([3, 9, 1, 7, 5], [1, 5]), t([0, 1, 0, 0, 1], [1, 5], "bool"));
    expect(dx).toEqual([0, w[1]!, 0, 0, w[2]!]);
    expectJsMatchesReference(gg.graph, gg.inputs);
  });
  it("ties keep the earlier index", () => {
    const { gg, dx, w } = gradOf("kmax_pool", ["N", "L"], { k: 2 }, t([1, 4, 2, 4, 4], [1, 5]));
    expect(dx).toEqual([0, w[0]!, 0, w[1]!, 0]);
    expectJsMatchesReference(gg.graph, gg.inputs);
  });
});

describe("pool gradients on WebGPU", () => {
  // A representative subset: each case compiles its pipelines on the CPU Vulkan driver.
  const wgsl = async (ggs: GradGraph[]) => {
    for (const gg of ggs) await expectWgslMatchesReference(gg.graph, gg.inputs);
  };
  it("1-d max/avg/sum with padding, ceil_mode, dilation and masks, symbolic N and L", async () => {
    const x = ["N", 3, "L"] as const;
    const runs = [[2, 3, 11], [1, 3, 8]];
    await wgsl(check("maxpool1d", x, { window: 3, stride: 2, padding: 1, ceil_mode: true }, runs.slice(0, 1), { js: false }));
    await wgsl(check("avgpool1d", x, { window: 4, stride: 3, padding: 2, ceil_mode: true }, runs.slice(0, 1), { js: false }));
    await wgsl(check("avgpool1d", x, { window: 3, stride: 2, padding: 1, count_include_pad: false }, runs.slice(0, 1), { js: false }));
    await wgsl(check("sumpool1d", x, { window: 2, dilation: 2, stride: 1, padding: 1 }, runs.slice(0, 1), { js: false }));
    await wgsl(check("maxpool1d", x, { window: 3, stride: 1, padding: 1 }, runs.slice(1), { mask: ["N", 1, "L"], maskRuns: [[1, 1, 8]], js: false }));
    await wgsl(check("avgpool1d", x, { window: 2 }, runs.slice(0, 1), { mask: ["N", 3, "L"], maskRuns: [[2, 3, 11]], density: 0.4, js: false }));
  });
  it("2-d and 3-d", async () => {
    await wgsl(check("maxpool2d", ["N", 2, "H", "W"], { window: 3, stride: 2, padding: 1, ceil_mode: true }, [[2, 2, 6, 7]], { js: false }));
    await wgsl(check("avgpool2d", ["N", 3, 7, 6], { window: 3, stride: 2, padding: 1 }, [[2, 3, 7, 6]], { mask: ["N", 1, 7, 6], maskRuns: [[2, 1, 7, 6]], js: false }));
    await wgsl(check("sumpool2d", ["N", 3, 7, 6], { window: [2, 3], dilation: [2, 1], padding: [1, 1] }, [[2, 3, 7, 6]], { mask: [1, 3, 1, 6], maskRuns: [[1, 3, 1, 6]], js: false }));
    await wgsl(check("maxpool3d", ["N", 2, 4, 5, 6], { window: 2 }, [[1, 2, 4, 5, 6]], { js: false }));
    await wgsl(check("avgpool3d", ["N", 2, 4, 5, 6], { window: 3, stride: 2, padding: 1, ceil_mode: true }, [[1, 2, 4, 5, 6]], { js: false }));
  });
  it("ties and masked windows agree with the reference", async () => {
    await wgsl([gradOf("maxpool1d", ["N", 1, "L"], { window: 3, stride: 1 }, t([2, 5, 5, 1, 5], [1, 1, 5])).gg]);
    await wgsl([gradOf("maxpool2d", ["N", 1, 2, 2], { window: 2 }, t([1, 4, 4, 4], [1, 1, 2, 2])).gg]);
    await wgsl([gradOf("maxpool1d", ["N", 1, "L"], { window: 2 }, t([5, -3, -2, -7, 4, 1], [1, 1, 6]), t([1, 0, 0, 0, 0, 1], [1, 1, 6], "bool")).gg]);
    await wgsl([gradOf("kmax_pool", ["N", "L"], { k: 2 }, t([1, 4, 2, 4, 4], [1, 5])).gg]);
  });
  it("global pools and kmax_pool", async () => {
    await wgsl(check("global_maxpool", ["N", 3, "H", "W"], {}, [[2, 3, 3, 4]], { mask: ["N", 1, 1, "W"], maskRuns: [[2, 1, 1, 4]], js: false }));
    await wgsl(check("global_avgpool", ["N", 3, "L"], {}, [[2, 3, 9]], { js: false }));
    await wgsl(check("global_avgpool", ["N", 3, 5, 4], {}, [[2, 3, 5, 4]], { mask: [5, 1], maskRuns: [[5, 1]], js: false }));
    await wgsl(check("global_sumpool", ["N", 3, "L"], {}, [[2, 3, 9]], { mask: ["N", 1, "L"], maskRuns: [[2, 1, 9]], js: false }));
    await wgsl(check("kmax_pool", ["N", "L"], { k: 3 }, [[4, 9]], { mask: ["N", "L"], maskRuns: [[4, 9]], js: false }));
    await wgsl(check("kmax_pool", ["N", 6, 3], { k: 2, axis: 1 }, [[2, 6, 3]], { js: false }));
  });
});

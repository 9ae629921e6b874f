// The JS `pool`, `global_pool` and `kmax_pool` kernels against the float64
// reference: max/avg/sum in 1-d/2-d/3-d with padding, ceil_mode, dilation and
// count_include_pad=false, bool masks (broadcast and full), windows that are
// entirely padding or masked, global pools, k-max with ties and masks, and
// symbolic N/L at two sizes.

import { describe, expect, it } from "vitest";
import { jsExecutor } from "../../compiler/codegen/js/execute.ts";
import { emitProgram } from "../../compiler/codegen/js/program.ts";
import { RefTensor } from "../../compiler/reference/tensor.ts";
import { TestModel, randomTensor, t, type JsArg } from "../support/build.ts";
import { expectJsMatchesReference } from "../support/conformance.ts";

/** A bool tensor with roughly `density` of its cells true. */
function boolTensor(shape: readonly number[], seed: number, density = 0.6): RefTensor {
  const u = randomTensor(shape, seed, 0, 1);
  return new RefTensor("bool", shape, u.data.map((v) => (v < density ? 1 : 0)));
}

/** Values drawn from {0, 1, 2}: many ties. */
function tiedTensor(shape: readonly number[], seed: number): RefTensor {
  return randomTensor(shape, seed, 0, 3).map((v) => Math.floor(v));
}

type Shape = readonly (number | string)[];

function poolModel(callee: string, shape: Shape, kw: Record<string, JsArg>, maskShape?: Shape, positional: JsArg[] = []) {
  const m = new TestModel();
  const x = m.input("x", "f32", shape);
  const mask = maskShape ? m.input("m", "bool", maskShape) : undefined;
  m.output("y", m.call(callee, [x, ...positional], mask ? { ...kw, mask } : kw, "p"));
  return m;
}

/**
 * Builds the pool once and checks it for each run: concrete x shape, plus the
 * concrete mask shape when masked.
 */
function check(callee: string, shape: Shape, kw: Record<string, JsArg>, runs: readonly (readonly number[])[], opts: { mask?: Shape; maskRuns?: readonly (readonly number[])[]; ties?: boolean; density?: number } = {}): void {
  const m = poolModel(callee, shape, kw, opts.mask);
  runs.forEach((s, i) => {
    const x = opts.ties ? tiedTensor(s, 5 + i) : randomTensor(s, 5 + i);
    const inputs: Record<string, RefTensor> = { x };
    if (opts.mask) inputs.m = boolTensor(opts.maskRuns![i]!, 11 + i, opts.density);
    expectJsMatchesReference(m.graph, inputs);
  });
}

describe("js pool 1-d: conformance", () => {
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
  it("a window entirely masked gives 0 (max too); an unmasked max over only padding-free cells is unaffected", () => {
    const m = poolModel("maxpool1d", ["N", 1, "L"], { window: 2 }, ["N", 1, "L"]);
    const x = t([5, -3, -2, -7, 4, 1], [1, 1, 6]);
    const mask = t([1, 0, 0, 0, 0, 1], [1, 1, 6], "bool");
    expect(Array.from(expectJsMatchesReference(m.graph, { x, m: mask }).y!.data)).toEqual([5, 0, 1]);
    const a = poolModel("avgpool1d", ["N", 1, "L"], { window: 2 }, ["N", 1, "L"]);
    expect(Array.from(expectJsMatchesReference(a.graph, { x, m: mask }).y!.data)).toEqual([5, 0, 1]);
  });
});

describe("js pool 2-d and 3-d: conformance", () => {
  it("LeNet-like maxpool2d window 2 at two batch sizes", () => check("maxpool2d", ["N", 6, 28, 28], { window: 2 }, [[2, 6, 28, 28], [3, 6, 28, 28]]));
  it("window [3, 2], stride [2, 1], padding [1, 0], ceil_mode, dilation", () => {
    for (const kind of ["max", "avg", "sum"]) {
      const callee = `${kind}pool2d`;
      const runs = [[2, 2, 9, 8], [1, 2, 9, 8]];
      check(callee, ["N", 2, 9, 8], { window: [3, 2], stride: [2, 1], padding: [1, 0] }, runs);
      check(callee, ["N", 2, 9, 8], { window: 3, stride: 2, padding: 1, ceil_mode: true }, runs);
      check(callee, ["N", 2, 9, 8], { window: 2, stride: [1, 2], dilation: [2, 3] }, runs);
      check(callee, ["N", 2, "H", "W"], { window: 3, stride: 2, padding: 1, ceil_mode: true }, [[2, 2, 6, 7], [1, 2, 9, 4]]);
    }
  });
  it("avgpool2d count_include_pad=false and masks [N, 1, H, W] and [N, C, H, W]", () => {
    const runs = [[2, 3, 7, 6]];
    check("avgpool2d", ["N", 3, 7, 6], { window: 3, stride: 2, padding: 1, count_include_pad: false, ceil_mode: true }, runs);
    check("avgpool2d", ["N", 3, 7, 6], { window: 3, stride: 2, padding: 1 }, runs, { mask: ["N", 1, 7, 6], maskRuns: [[2, 1, 7, 6]] });
    check("maxpool2d", ["N", 3, 7, 6], { window: 2 }, runs, { mask: ["N", 3, 7, 6], maskRuns: [[2, 3, 7, 6]], density: 0.3 });
    check("sumpool2d", ["N", 3, 7, 6], { window: [2, 3], dilation: [2, 1], padding: [1, 1] }, runs, { mask: [1, 3, 1, 6], maskRuns: [[1, 3, 1, 6]] });
  });
  it("3-d pools", () => {
    const runs = [[2, 2, 5, 6, 7], [1, 2, 5, 6, 7]];
    check("maxpool3d", ["N", 2, 5, 6, 7], { window: 2 }, runs);
    check("avgpool3d", ["N", 2, 5, 6, 7], { window: 3, stride: 2, padding: 1, ceil_mode: true }, runs);
    check("sumpool3d", ["N", 2, 5, 6, 7], { window: [2, 3, 2], dilation: [1, 2, 1] }, runs, { mask: ["N", 1, 5, 6, 7], maskRuns: [[2, 1, 5, 6, 7], [1, 1, 5, 6, 7]] });
  });
});

describe("js global pools: conformance", () => {
  for (const kind of ["max", "avg", "sum"]) {
    const callee = `global_${kind}pool`;
    it(`${callee} without and with masks`, () => {
      check(callee, ["N", 3, "L"], {}, [[2, 3, 9], [1, 3, 4]]);
      check(callee, ["N", 3, 5, 4], {}, [[2, 3, 5, 4]]);
      check(callee, ["N", 2, 3, 4, 2], {}, [[2, 2, 3, 4, 2]]);
      check(callee, ["N", 3, "L"], {}, [[2, 3, 9], [3, 3, 4]], { mask: ["N", 1, "L"], maskRuns: [[2, 1, 9], [3, 1, 4]] });
      check(callee, ["N", 3, 5, 4], {}, [[2, 3, 5, 4]], { mask: ["N", 3, 5, 4], maskRuns: [[2, 3, 5, 4]] });
      // broadcast along a spatial dim: the kernel walks the dims one by one
      check(callee, ["N", 3, 5, 4], {}, [[2, 3, 5, 4]], { mask: ["N", 1, 1, 4], maskRuns: [[2, 1, 1, 4]] });
      check(callee, ["N", 3, 5, 4], {}, [[2, 3, 5, 4]], { mask: [5, 1], maskRuns: [[5, 1]] });
    });
  }
  it("a fully masked row gives 0 for max and avg", () => {
    for (const kind of ["max", "avg"]) {
      const m = poolModel(`global_${kind}pool`, ["N", 1, "L"], {}, ["N", 1, "L"]);
      const out = expectJsMatchesReference(m.graph, { x: t([-4, -2, -6, -1, -3, -5], [2, 1, 3]), m: t([0, 0, 0, 1, 0, 1], [2, 1, 3], "bool") });
      expect(Array.from(out.y!.data)).toEqual(kind === "max" ? [0, -1] : [0, -3]);
    }
  });
});

describe("js kmax_pool: conformance", () => {
  it("k along the last axis, symbolic N and L at two sizes, with ties", () => {
    check("kmax_pool", ["N", "L"], { k: 3 }, [[4, 9], [2, 5]]);
    check("kmax_pool", ["N", "L"], { k: 3 }, [[4, 9], [2, 5]], { ties: true });
    check("kmax_pool", ["N", 2, "L"], { k: 1 }, [[2, 2, 7], [1, 2, 1]], { ties: true });
  });
  it("other axes: middle and first, with ties", () => {
    check("kmax_pool", ["N", 6, 3], { k: 2, axis: 1 }, [[2, 6, 3], [3, 6, 3]], { ties: true });
    check("kmax_pool", [5, 2, 3], { k: 4, axis: 0 }, [[5, 2, 3]], { ties: true });
    check("kmax_pool", [2, 7, 3, 2], { k: 7, axis: 1 }, [[2, 7, 3, 2]]);
  });
  it("masks: full, broadcast, fewer unmasked cells than k (masked picks are 0)", () => {
    check("kmax_pool", ["N", "L"], { k: 3 }, [[4, 9], [3, 5]], { mask: ["N", "L"], maskRuns: [[4, 9], [3, 5]], ties: true });
    check("kmax_pool", ["N", 2, "L"], { k: 4 }, [[3, 2, 8]], { mask: ["N", 1, "L"], maskRuns: [[3, 1, 8]], density: 0.3 });
    check("kmax_pool", ["N", 4, 3], { k: 2, axis: 1 }, [[2, 4, 3]], { mask: [4, 1], maskRuns: [[4, 1]], ties: true });
    const m = poolModel("kmax_pool", ["N", "L"], { k: 3 }, ["N", "L"]);
    const out = expectJsMatchesReference(m.graph, { x: t([3, 9, 1, 7, 5], [1, 5]), m: t([0, 1, 0, 0, 1], [1, 5], "bool") });
    // unmasked 9 and 5 first, then the earliest masked cell (index 0) as 0, all in index order
    expect(Array.from(out.y!.data)).toEqual([0, 9, 5]);
  });
  it("ties keep the earlier index", () => {
    const m = poolModel("kmax_pool", ["N", "L"], { k: 2 });
    const out = expectJsMatchesReference(m.graph, { x: t([1, 4, 2, 4, 4], [1, 5]) });
    expect(Array.from(out.y!.data)).toEqual([4, 4]);
  });
  it("refuses k larger than a symbolic length at run time", () => {
    const m = poolModel("kmax_pool", ["N", "L"], { k: 4 });
    expect(() => jsExecutor(m.graph).run({ x: randomTensor([1, 3]) }, {}, { symbols: { N: 1, L: 3 } })).toThrow("k=4 is larger than the size 3 of axis 1");
  });
});

describe("js pool: generated code", () => {
  it("LeNet maxpool2d: window unrolled, no tables, no bounds tests (golden)", async () => {
    const src = emitProgram(poolModel("maxpool2d", ["N", 6, 28, 28], { window: 2 }).graph).kernels[0]!;
    expect(src).not.toContain("Int32Array");
    expect(src).not.toMatch(/if \(p/);
    await expect(src).toMatchFileSnapshot("__golden__/maxpool2d-lenet.js");
  });
  it("masked avgpool1d with padding and ceil_mode, symbolic L (golden)", async () => {
    const src = emitProgram(poolModel("avgpool1d", ["N", 3, "L"], { window: 3, stride: 2, padding: 1, ceil_mode: true }, ["N", 1, "L"]).graph).kernels[0]!;
    expect(src).toContain("lLo[ol]");
    await expect(src).toMatchFileSnapshot("__golden__/avgpool1d-masked.js");
  });
});

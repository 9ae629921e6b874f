// The WGSL `pool`, `global_pool` and `kmax_pool` kernels on a real WebGPU
// device (Dawn; Mesa lavapipe here) against the float64 reference: max/avg/sum
// in 1-d/2-d/3-d with padding, ceil_mode, dilation and count_include_pad=false,
// bool masks (broadcast and full), windows that are all padding or all masked,
// global pools (both the per-row "cpu" form and the workgroup-reduction "gpu"
// form), k-max with ties and masks, symbolic N/L at two sizes, and the runtime
// errors for inputs too small for k or the window.

import { describe, expect, it } from "vitest";
import { wgslExecutor } from "../../compiler/codegen/wgsl/execute.ts";
import { emitWgslProgram } from "../../compiler/codegen/wgsl/program.ts";
import { initialParams } from "../../compiler/reference/interpreter.ts";
import { RefTensor } from "../../compiler/reference/tensor.ts";
import { TestModel, randomTensor, t, type JsArg } from "../support/build.ts";
import { expectWgslMatchesReference, gpuDevice } from "../support/webgpu.ts";

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

/** Runs the model on the WebGPU target alone (the reference would refuse these inputs first). */
async function runWgsl(m: TestModel, inputs: Record<string, RefTensor>, adapterClass: "cpu" | "gpu" = "cpu"): Promise<Record<string, RefTensor>> {
  const { device } = await gpuDevice();
  const ex = await wgslExecutor(m.graph, device, adapterClass, initialParams(m.graph, 0));
  try {
    return await ex.run(inputs);
  } finally {
    ex.dispose();
  }
}

type Cls = "cpu" | "gpu";

function poolModel(callee: string, shape: Shape, kw: Record<string, JsArg>, maskShape?: Shape) {
  const m = new TestModel();
  const x = m.input("x", "f32", shape);
  const mask = maskShape ? m.input("m", "bool", maskShape) : undefined;
  m.output("y", m.call(callee, [x], mask ? { ...kw, mask } : kw, "p"));
  return m;
}

/** Builds the pool once and checks it for each run (x shape, and the mask shape when masked) and each variant. */
async function check(
  callee: string,
  shape: Shape,
  kw: Record<string, JsArg>,
  runs: readonly (readonly number[])[],
  opts: { mask?: Shape; maskRuns?: readonly (readonly number[])[]; ties?: boolean; density?: number; variants?: readonly Cls[] } = {},
): Promise<void> {
  const m = poolModel(callee, shape, kw, opts.mask);
  for (const adapterClass of opts.variants ?? ["cpu"]) {
    for (const [i, s] of runs.entries()) {
      const inputs: Record<string, RefTensor> = { x: opts.ties ? tiedTensor(s, 5 + i) : randomTensor(s, 5 + i) };
      if (opts.mask) inputs.m = boolTensor(opts.maskRuns![i]!, 11 + i, opts.density);
      await expectWgslMatchesReference(m.graph, inputs, { adapterClass });
    }
  }
}

const BOTH: readonly Cls[] = ["cpu", "gpu"];

describe("wgsl pool 1-d", () => {
  const x = ["N", 3, "L"] as const;
  const runs = [[2, 3, 11], [1, 3, 8]];
  for (const kind of ["max", "avg", "sum"]) {
    it(`${kind}pool1d: stride, padding, dilation, ceil_mode, symbolic N and L`, async () => {
      await check(`${kind}pool1d`, x, { window: 3, stride: 2, padding: 1 }, runs);
      await check(`${kind}pool1d`, x, { window: 4, stride: 3, padding: [[2, 1]], ceil_mode: true }, runs);
      await check(`${kind}pool1d`, x, { window: 2, dilation: 2, stride: 1, padding: 1 }, runs);
    });
  }
  it("avgpool1d with count_include_pad=false, with and without ceil_mode", async () => {
    await check("avgpool1d", x, { window: 3, stride: 2, padding: 1, count_include_pad: false }, runs);
    await check("avgpool1d", x, { window: 4, stride: 3, padding: 2, ceil_mode: true, count_include_pad: false }, runs);
  });
  it("masks: broadcast [N, 1, L], full [N, C, L] and [L]", async () => {
    for (const kind of ["max", "avg", "sum"]) {
      await check(`${kind}pool1d`, x, { window: 3, stride: 2, padding: 1 }, runs, { mask: ["N", 1, "L"], maskRuns: [[2, 1, 11], [1, 1, 8]] });
    }
    await check("maxpool1d", x, { window: 2 }, [[2, 3, 11]], { mask: ["N", 3, "L"], maskRuns: [[2, 3, 11]], density: 0.4 });
    await check("avgpool1d", [2, 3, 7], { window: 3, stride: 2, ceil_mode: true }, [[2, 3, 7]], { mask: [7], maskRuns: [[7]] });
  });
  it("an entirely masked window gives 0 (max too); a window of padding only gives −∞ for an unmasked max", async () => {
    const x6 = t([5, -3, -2, -7, 4, 1], [1, 1, 6]);
    const mask = t([1, 0, 0, 0, 0, 1], [1, 1, 6], "bool");
    for (const kind of ["max", "avg"]) {
      const m = poolModel(`${kind}pool1d`, ["N", 1, "L"], { window: 2 }, ["N", 1, "L"]);
      expect(Array.from((await expectWgslMatchesReference(m.graph, { x: x6, m: mask })).y!.data)).toEqual([5, 0, 1]);
    }
    // window 2 with dilation 3 and padding 2 over one cell: both windows tap only padding (−2, 1 and −1, 2)
    const max = poolModel("maxpool1d", [1, 1, 1], { window: 2, dilation: 3, padding: 2, stride: 1 });
    expect(Array.from((await expectWgslMatchesReference(max.graph, { x: t([2], [1, 1, 1]) })).y!.data)).toEqual([-Infinity, -Infinity]);
    const avg = poolModel("avgpool1d", [1, 1, 1], { window: 2, dilation: 3, padding: 2, stride: 1 });
    expect(Array.from((await expectWgslMatchesReference(avg.graph, { x: t([2], [1, 1, 1]) })).y!.data)).toEqual([0, 0]);
  });
});

describe("wgsl pool 2-d and 3-d", () => {
  it("LeNet's maxpool2d window 2 at two batch sizes", async () => {
    await check("maxpool2d", ["N", 6, 28, 28], { window: 2 }, [[2, 6, 28, 28], [3, 6, 28, 28]]);
  });
  it("window [3, 2], stride [2, 1], padding [1, 0]; ceil_mode; dilation; symbolic H and W", async () => {
    for (const kind of ["max", "avg", "sum"]) {
      await check(`${kind}pool2d`, ["N", 2, 9, 8], { window: [3, 2], stride: [2, 1], padding: [1, 0] }, [[2, 2, 9, 8]]);
      await check(`${kind}pool2d`, ["N", 2, "H", "W"], { window: 3, stride: 2, padding: 1, ceil_mode: true }, [[2, 2, 6, 7], [1, 2, 9, 4]]);
    }
    await check("maxpool2d", ["N", 2, 9, 8], { window: 2, stride: [1, 2], dilation: [2, 3] }, [[2, 2, 9, 8]]);
  });
  it("avgpool2d count_include_pad=false; masks [N, 1, H, W], [N, C, H, W] and [1, C, 1, W]", async () => {
    const runs = [[2, 3, 7, 6]];
    await check("avgpool2d", ["N", 3, 7, 6], { window: 3, stride: 2, padding: 1, count_include_pad: false, ceil_mode: true }, runs);
    await check("avgpool2d", ["N", 3, 7, 6], { window: 3, stride: 2, padding: 1 }, runs, { mask: ["N", 1, 7, 6], maskRuns: [[2, 1, 7, 6]] });
    await check("maxpool2d", ["N", 3, 7, 6], { window: 2 }, runs, { mask: ["N", 3, 7, 6], maskRuns: [[2, 3, 7, 6]], density: 0.3 });
    await check("sumpool2d", ["N", 3, 7, 6], { window: [2, 3], dilation: [2, 1], padding: [1, 1] }, runs, { mask: [1, 3, 1, 6], maskRuns: [[1, 3, 1, 6]] });
  });
  it("3-d pools", async () => {
    await check("maxpool3d", ["N", 2, 5, 6, 7], { window: 2 }, [[2, 2, 5, 6, 7], [1, 2, 5, 6, 7]]);
    await check("avgpool3d", ["N", 2, 5, 6, 7], { window: 3, stride: 2, padding: 1, ceil_mode: true }, [[1, 2, 5, 6, 7]]);
    await check("sumpool3d", ["N", 2, 5, 6, 7], { window: [2, 3, 2], dilation: [1, 2, 1] }, [[2, 2, 5, 6, 7]], { mask: ["N", 1, 5, 6, 7], maskRuns: [[2, 1, 5, 6, 7]] });
  });
  it("a symbolic input smaller than the window is reported, not read out of bounds", async () => {
    const m = poolModel("maxpool1d", ["N", 2, "L"], { window: 4 });
    await expect(runWgsl(m, { x: randomTensor([1, 2, 3], 1) })).rejects.toThrow("pool 'p': window 4 is larger than the padded input 3 along dim 2");
  });
});

describe("wgsl global pools (both variants)", () => {
  for (const kind of ["max", "avg", "sum"]) {
    it(`global_${kind}pool without and with masks`, async () => {
      const callee = `global_${kind}pool`;
      await check(callee, ["N", 3, "L"], {}, [[2, 3, 9], [1, 3, 150]], { variants: BOTH });
      await check(callee, ["N", 2, 3, 4, 2], {}, [[2, 2, 3, 4, 2]], { variants: BOTH });
      await check(callee, ["N", 3, "L"], {}, [[2, 3, 9], [3, 3, 100]], { mask: ["N", 1, "L"], maskRuns: [[2, 1, 9], [3, 1, 100]], variants: BOTH });
      // broadcast along a spatial dim: the mask offset comes from the spatial coordinates
      await check(callee, ["N", 3, 5, 4], {}, [[2, 3, 5, 4]], { mask: ["N", 1, 1, 4], maskRuns: [[2, 1, 1, 4]], variants: BOTH });
    });
  }
  it("full and trailing masks; a fully masked row gives 0 for max and avg", async () => {
    await check("global_avgpool", ["N", 3, 5, 4], {}, [[2, 3, 5, 4]], { mask: ["N", 3, 5, 4], maskRuns: [[2, 3, 5, 4]], variants: BOTH });
    await check("global_maxpool", ["N", 3, 5, 4], {}, [[2, 3, 5, 4]], { mask: [5, 1], maskRuns: [[5, 1]], variants: BOTH });
    for (const kind of ["max", "avg"]) {
      const m = poolModel(`global_${kind}pool`, ["N", 1, "L"], {}, ["N", 1, "L"]);
      for (const adapterClass of BOTH) {
        const out = await expectWgslMatchesReference(m.graph, { x: t([-4, -2, -6, -1, -3, -5], [2, 1, 3]), m: t([0, 0, 0, 1, 0, 1], [2, 1, 3], "bool") }, { adapterClass });
        expect(Array.from(out.y!.data)).toEqual(kind === "max" ? [0, -1] : [0, -3]);
      }
    }
  });
  it("the gpu form reduces in workgroup memory (golden)", async () => {
    const m = poolModel("global_avgpool", ["N", 3, "L"], {}, ["N", 1, "L"]);
    const code = emitWgslProgram(m.graph, [m.graph.outputs[0]!.value]).passes[0]!.code;
    expect(code.gpu).toContain("var<workgroup> part: array<f32, 64>");
    expect(code.cpu).not.toContain("workgroupBarrier");
    await expect(code.gpu).toMatchFileSnapshot("__golden__/global-avgpool-masked.gpu.wgsl");
  });
});

describe("wgsl kmax_pool", () => {
  it("last axis, symbolic N and L at two sizes, with ties", async () => {
    await check("kmax_pool", ["N", "L"], { k: 3 }, [[4, 9], [2, 5]], { ties: true });
    await check("kmax_pool", ["N", 2, "L"], { k: 1 }, [[2, 2, 7], [1, 2, 1]], { ties: true });
  });
  it("middle and first axes, with ties", async () => {
    await check("kmax_pool", ["N", 6, 3], { k: 2, axis: 1 }, [[2, 6, 3], [3, 6, 3]], { ties: true });
    await check("kmax_pool", [5, 2, 3], { k: 4, axis: 0 }, [[5, 2, 3]], { ties: true });
    await check("kmax_pool", [2, 7, 3, 2], { k: 7, axis: 1 }, [[2, 7, 3, 2]]);
  });
  it("masks: full, broadcast, fewer unmasked cells than k (masked picks are 0)", async () => {
    await check("kmax_pool", ["N", "L"], { k: 3 }, [[4, 9], [3, 5]], { mask: ["N", "L"], maskRuns: [[4, 9], [3, 5]], ties: true });
    await check("kmax_pool", ["N", 2, "L"], { k: 4 }, [[3, 2, 8]], { mask: ["N", 1, "L"], maskRuns: [[3, 1, 8]], density: 0.3 });
    await check("kmax_pool", ["N", 4, 3], { k: 2, axis: 1 }, [[2, 4, 3]], { mask: [4, 1], maskRuns: [[4, 1]], ties: true });
    const m = poolModel("kmax_pool", ["N", "L"], { k: 3 }, ["N", "L"]);
    const out = await expectWgslMatchesReference(m.graph, { x: t([3, 9, 1, 7, 5], [1, 5]), m: t([0, 1, 0, 0, 1], [1, 5], "bool") });
    // unmasked 9 and 5 first, then the earliest masked cell (index 0) as 0, all in index order
    expect(Array.from(out.y!.data)).toEqual([0, 9, 5]);
  });
  it("ties keep the earlier index", async () => {
    const m = poolModel("kmax_pool", ["N", "L"], { k: 2 });
    const out = await expectWgslMatchesReference(m.graph, { x: t([1, 4, 2, 4, 4], [1, 5]) });
    expect(Array.from(out.y!.data)).toEqual([4, 4]);
  });
  it("k larger than the runtime length is reported through report_error", async () => {
    const m = poolModel("kmax_pool", ["N", "L"], { k: 4 });
    await expect(runWgsl(m, { x: randomTensor([1, 3]) })).rejects.toThrow("kmax_pool 'p': k=4 is larger than the size 3 of axis 1");
  });
});

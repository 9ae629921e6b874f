// The WGSL `conv` and `conv_transpose` kernels on a real WebGPU device (Dawn;
// Mesa lavapipe here) against the float64 reference: 1-d/2-d/3-d, strides,
// dilation, every padding form, groups and depthwise, circular padding,
// flipped kernels, no bias, symbolic N (and L) at two sizes. conv ships two
// forms, register tiles ("cpu") and workgroup-memory tiles ("gpu"); both run
// here (the gpu one on most graphs). Also: the row widths the cpu form picks
// (vec4/vec2/scalar), runtime errors for symbolic inputs too small for the
// kernel, and golden files of a representative 3×3 kernel.

import { describe, expect, it } from "vitest";
import { wgslExecutor } from "../../compiler/codegen/wgsl/execute.ts";
import { emitWgslProgram } from "../../compiler/codegen/wgsl/program.ts";
import { initialParams } from "../../compiler/reference/interpreter.ts";
import type { RefTensor } from "../../compiler/reference/tensor.ts";
import { TestModel, randomTensor, type JsArg } from "../support/build.ts";
import { expectWgslMatchesReference, gpuDevice } from "../support/webgpu.ts";

const VARIANTS = ["cpu", "gpu"] as const;

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


function convModel(callee: string, shape: readonly (number | string)[], kw: Record<string, JsArg>) {
  const m = new TestModel();
  const x = m.input("x", "f32", shape);
  m.output("y", m.call(callee, [x], kw, "c1"));
  return m;
}

/** Builds `y = callee(x, ...)` once and checks both kernel variants against the reference for each input shape. */
async function check(callee: string, shape: readonly (number | string)[], kw: Record<string, JsArg>, runs: readonly (readonly number[])[], variants: readonly ("cpu" | "gpu")[] = VARIANTS): Promise<void> {
  const m = convModel(callee, shape, kw);
  for (const adapterClass of variants) {
    for (const [i, s] of runs.entries()) {
      const out = await expectWgslMatchesReference(m.graph, { x: randomTensor(s, 17 + i) }, { seed: i, adapterClass });
      expect(out.y!.shape[0]).toBe(s[0]);
    }
  }
}

/** The WGSL module of the model's one conv-family pass, for an adapter class. */
function wgslOf(m: TestModel, cls: "cpu" | "gpu" = "cpu"): string {
  return emitWgslProgram(m.graph, [m.graph.outputs[0]!.value]).passes.find((p) => /conv/.test(p.node.op))!.code[cls];
}

describe("wgsl conv1d", () => {
  const L = ["N", 3, "L"] as const;
  const runs = [[2, 3, 11], [3, 3, 8]];
  it("kernel 3, symbolic N and L at two sizes", async () => {
    await check("conv1d", L, { filters: 4, kernel: 3 }, runs);
  });
  it("stride 2, dilation 2, asymmetric padding, flipped kernel", async () => {
    await check("conv1d", L, { filters: 4, kernel: 3, stride: 2, dilation: 2, padding: [[2, 1]], flip: true }, runs);
  });
  it("padding \"same\" with groups 2; \"full\" with stride 3", async () => {
    await check("conv1d", ["N", 4, 16], { filters: 6, kernel: 4, groups: 2, padding: "same" }, [[2, 4, 16]]);
    await check("conv1d", ["N", 3, 12], { filters: 2, kernel: 3, padding: "full", stride: 3 }, [[2, 3, 12]], ["cpu"]);
  });
  it("circular padding wrapping more than once, no bias", async () => {
    await check("conv1d", ["N", 2, 3], { filters: 2, kernel: 7, padding: [[5, 4]], padding_mode: "circular", bias: false }, [[2, 2, 3]]);
  });
  it("a long kernel: the tap loop instead of an unrolled row", async () => {
    await check("conv1d", ["N", 2, "L"], { filters: 3, kernel: 30, padding: 3, flip: true, stride: 2 }, [[2, 2, 40]], ["cpu"]);
  });
});

describe("wgsl conv2d", () => {
  it("3×3 with padding 1 on 16-wide rows (vec4 rows), symbolic N at two sizes", async () => {
    await check("conv2d", ["N", 8, 12, 16], { filters: 16, kernel: 3, padding: 1 }, [[2, 8, 12, 16], [3, 8, 12, 16]]);
  });
  it("stride [2, 3], dilation [2, 1], kernel [3, 2], asymmetric padding", async () => {
    await check("conv2d", ["N", 3, 9, 8], { filters: 4, kernel: [3, 2], stride: [2, 3], dilation: [2, 1], padding: [[1, 0], [0, 2]] }, [[2, 3, 9, 8]]);
  });
  it("depthwise with a channel multiplier, full padding, dilation along the (vec4) rows", async () => {
    await check("conv2d", ["N", 4, 6, 8], { filters: 8, kernel: 2, groups: 4, padding: "full", dilation: [1, 2] }, [[2, 4, 6, 8]]);
  });
  it("circular padding, flip, no bias", async () => {
    await check("conv2d", ["N", 3, 9, 8], { filters: 4, kernel: 3, padding: [[1, 2], [2, 1]], padding_mode: "circular", flip: true, bias: false }, [[2, 3, 9, 8]]);
    // circular along H only: W unpadded, and the gpu form's 8-wide tile overhangs the 6 columns
    await check("conv2d", ["N", 2, 5, 6], { filters: 2, kernel: 3, padding: [[1, 1], [0, 0]], padding_mode: "circular" }, [[2, 2, 5, 6]]);
  });
  it("LeNet's layers: 5×5 padding 2 on 1 channel (vec4 rows), 5×5 valid on 6 channels (vec2 rows)", async () => {
    await check("conv2d", ["N", 1, 28, 28], { filters: 6, kernel: 5, padding: 2 }, [[2, 1, 28, 28]], ["cpu"]);
    await check("conv2d", ["N", 6, 14, 14], { filters: 16, kernel: 5 }, [[2, 6, 14, 14]], ["cpu"]);
  });
  it("symbolic height and width, stride [1, 2]", async () => {
    await check("conv2d", ["N", 2, "H", "W"], { filters: 4, kernel: 3, padding: 1, stride: [1, 2] }, [[2, 2, 7, 9], [1, 2, 5, 12]]);
  });
});

describe("wgsl conv3d", () => {
  it("3×3×3 with padding 1", async () => {
    await check("conv3d", ["N", 2, 5, 6, 8], { filters: 4, kernel: 3, padding: 1 }, [[2, 2, 5, 6, 8]]);
  });
  it("mixed stride, dilation and asymmetric padding; groups with circular padding", async () => {
    await check("conv3d", ["N", 2, 7, 6, 5], { filters: 3, kernel: [2, 3, 2], stride: [2, 1, 2], dilation: [2, 1, 1], padding: [[1, 0], [1, 1], [0, 1]] }, [[1, 2, 7, 6, 5]], ["cpu"]);
    await check("conv3d", ["N", 4, 4, 5, 6], { filters: 4, kernel: 3, groups: 2, padding: 1, padding_mode: "circular", bias: false }, [[2, 4, 4, 5, 6]], ["cpu"]);
  });
});

describe("wgsl conv: code shape", () => {
  it("vec4 rows for a 3×3 conv on 56-wide rows; vec2 for LeNet's c3; scalar for odd or symbolic widths", () => {
    const big = wgslOf(convModel("conv2d", ["N", 64, 56, 56], { filters: 64, kernel: 3, padding: 1 }));
    expect(big).toContain("var<storage, read> x0: array<vec4<f32>>");
    expect(big).toContain("register tiles of 4 filters × 16 columns");
    expect(wgslOf(convModel("conv2d", ["N", 6, 14, 14], { filters: 16, kernel: 5 }))).toContain("x0: array<vec2<f32>>");
    expect(wgslOf(convModel("conv2d", ["N", 3, 9, 9], { filters: 4, kernel: 3 }))).toContain("x0: array<f32>");
    expect(wgslOf(convModel("conv1d", ["N", 3, "L"], { filters: 4, kernel: 3 }))).toContain("x0: array<f32>");
  });
  it("the gpu variant stages the input patch and weights in workgroup memory", () => {
    const gpu = wgslOf(convModel("conv2d", ["N", 64, 56, 56], { filters: 64, kernel: 3, padding: 1 }), "gpu");
    expect(gpu).toContain("var<workgroup> xs: array<f32,");
    expect(gpu).toContain("workgroupBarrier();");
    expect(gpu).toContain("@workgroup_size(8, 8)");
  });
  it("golden: a 3×3 padding-1 conv, both variants", async () => {
    const m = convModel("conv2d", ["N", 2, 8, 8], { filters: 4, kernel: 3, padding: 1 });
    await expect(wgslOf(m, "cpu")).toMatchFileSnapshot("__golden__/conv2d-3x3-pad1.cpu.wgsl");
    await expect(wgslOf(m, "gpu")).toMatchFileSnapshot("__golden__/conv2d-3x3-pad1.gpu.wgsl");
  });
});

describe("wgsl conv: runtime errors", () => {
  it("a symbolic input shorter than the kernel is reported, not read out of bounds", async () => {
    const m = convModel("conv1d", ["N", 2, "L"], { filters: 2, kernel: 5 });
    for (const adapterClass of VARIANTS) {
      await expect(runWgsl(m, { x: randomTensor([1, 2, 3], 1) }, adapterClass)).rejects.toThrow("conv 'c1': kernel 5 is larger than the padded input 3 along dim 2");
    }
  });
});

describe("wgsl conv_transpose", () => {
  it("1-d: stride 2, output_padding, padding, symbolic N and L at two sizes", async () => {
    await check("conv_transpose1d", ["N", 3, "L"], { filters: 4, kernel: 3, stride: 2, output_padding: 1, padding: 1 }, [[2, 3, 7], [1, 3, 4]], ["cpu"]);
  });
  it("1-d: dilation, no bias", async () => {
    await check("conv_transpose1d", ["N", 2, "L"], { filters: 3, kernel: 4, dilation: 2, bias: false }, [[2, 2, 5]], ["cpu"]);
  });
  it("2-d: stride 2 with output_padding, groups 2, asymmetric padding; stride [3, 1]", async () => {
    await check("conv_transpose2d", ["N", 4, 5, 6], { filters: 6, kernel: 3, stride: 2, output_padding: [1, 0], groups: 2, padding: [[1, 0], [0, 1]] }, [[2, 4, 5, 6]], ["cpu"]);
    await check("conv_transpose2d", ["N", 2, 4, 4], { filters: 2, kernel: [2, 3], stride: [3, 1] }, [[2, 2, 4, 4]], ["cpu"]);
  });
  it("3-d: stride 2", async () => {
    await check("conv_transpose3d", ["N", 2, 3, 3, 4], { filters: 2, kernel: 2, stride: 2, padding: 1 }, [[1, 2, 3, 3, 4]], ["cpu"]);
  });
  it("padding that crops a symbolic input's whole output is reported", async () => {
    const m = convModel("conv_transpose1d", ["N", 2, "L"], { filters: 2, kernel: 2, padding: 1 });
    await expect(runWgsl(m, { x: randomTensor([1, 2, 1], 1) })).rejects.toThrow("conv_transpose 'c1': the output size along dim 2 would be 0");
  });
});

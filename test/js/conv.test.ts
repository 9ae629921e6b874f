// The JS `conv` and `conv_transpose` kernels against the float64 reference:
// 1-d/2-d/3-d, strides, dilation, every padding form, groups and depthwise,
// circular padding, flipped kernels, no bias, symbolic N/L at two sizes, and
// the code paths the template picks (padded copy or in place, unrolled or tap
// loops, sliding or strided rows, plane or row accumulators, filter blocks).

import { describe, expect, it } from "vitest";
import { emitProgram } from "../../compiler/codegen/js/program.ts";
import { jsExecutor } from "../../compiler/codegen/js/execute.ts";
import { initialParams } from "../../compiler/reference/interpreter.ts";
import { TestModel, randomTensor, type JsArg } from "../support/build.ts";
import { expectJsMatchesReference } from "../support/conformance.ts";

function convModel(callee: string, shape: readonly (number | string)[], kw: Record<string, JsArg>) {
  const m = new TestModel();
  const x = m.input("x", "f32", shape);
  m.output("y", m.call(callee, [x], kw, "c1"));
  return m;
}

/** Builds `y = callee(x, ...)` once and checks it against the reference for each concrete input shape. */
function check(callee: string, shape: readonly (number | string)[], kw: Record<string, JsArg>, runs: readonly (readonly number[])[]): void {
  const m = convModel(callee, shape, kw);
  runs.forEach((s, i) => {
    const out = expectJsMatchesReference(m.graph, { x: randomTensor(s, 17 + i) }, { seed: i });
    expect(out.y!.shape.slice(0, 1)).toEqual([s[0]]);
  });
}

/** The generated source of the one conv-family kernel of a model. */
function kernelSource(m: TestModel): string {
  return emitProgram(m.graph).kernels.find((k) => / = conv/.test(k))!;
}

describe("js conv1d: conformance", () => {
  const L = ["N", 3, "L"] as const;
  const runs = [[2, 3, 11], [3, 3, 8]];
  it("kernel 3, symbolic N and L at two sizes", () => check("conv1d", L, { filters: 4, kernel: 3 }, runs));
  it("strides 2 and 3", () => {
    check("conv1d", L, { filters: 4, kernel: 3, stride: 2 }, runs);
    check("conv1d", L, { filters: 2, kernel: 2, stride: 3 }, runs);
  });
  it("dilation 2 with padding", () => check("conv1d", L, { filters: 4, kernel: 3, dilation: 2, padding: 2 }, runs));
  it("symmetric, asymmetric, same and full padding", () => {
    check("conv1d", L, { filters: 4, kernel: 3, padding: 1 }, runs);
    check("conv1d", L, { filters: 4, kernel: 3, padding: [[2, 0]] }, runs);
    check("conv1d", L, { filters: 4, kernel: 4, padding: "same" }, runs);
    check("conv1d", L, { filters: 4, kernel: 3, padding: "full", stride: 2 }, runs);
  });
  it("groups 2, depthwise and depthwise with a channel multiplier", () => {
    check("conv1d", ["N", 4, "L"], { filters: 6, kernel: 3, groups: 2, padding: 1 }, [[2, 4, 9], [1, 4, 5]]);
    check("conv1d", ["N", 4, "L"], { filters: 4, kernel: 5, groups: 4, padding: "same" }, [[2, 4, 9], [1, 4, 5]]);
    check("conv1d", ["N", 4, "L"], { filters: 8, kernel: 3, groups: 4, stride: 2 }, [[2, 4, 9], [1, 4, 5]]);
  });
  it("circular padding, also wrapping more than the input once", () => {
    check("conv1d", L, { filters: 4, kernel: 3, padding: 1, padding_mode: "circular" }, runs);
    check("conv1d", ["N", 2, 3], { filters: 2, kernel: 7, padding: [[5, 4]], padding_mode: "circular" }, [[2, 2, 3]]);
  });
  it("flip (true convolution) and no bias", () => {
    check("conv1d", L, { filters: 4, kernel: 4, flip: true, padding: [[1, 2]] }, runs);
    check("conv1d", L, { filters: 4, kernel: 3, bias: false, dilation: 2 }, runs);
    check("conv1d", L, { filters: 3, kernel: 3, bias: false, flip: true, stride: 2 }, runs);
  });
  it("a long kernel (tap loop instead of unrolled taps), with flip and stride", () => {
    check("conv1d", ["N", 2, "L"], { filters: 3, kernel: 30, padding: 3, flip: true, stride: 2 }, [[2, 2, 40], [1, 2, 31]]);
  });
  it("pointwise kernel 1 and a filter count with blocks of 8", () => {
    check("conv1d", L, { filters: 16, kernel: 1 }, runs);
    check("conv1d", L, { filters: 8, kernel: 2, padding: 1 }, runs);
  });
});

describe("js conv2d: conformance", () => {
  const runs = [[2, 3, 9, 8], [1, 3, 9, 8]];
  const x = ["N", 3, 9, 8] as const;
  it("kernel 3, stride [2, 3], dilation [2, 1]", () => {
    check("conv2d", x, { filters: 4, kernel: 3 }, runs);
    check("conv2d", x, { filters: 4, kernel: 3, stride: [2, 3] }, runs);
    check("conv2d", x, { filters: 4, kernel: [3, 2], dilation: [2, 1], stride: 2 }, runs);
    check("conv2d", x, { filters: 2, kernel: 2, stride: 3, dilation: 2 }, runs);
  });
  it("padding: symmetric, asymmetric [[0, 1], [2, 0]], same and full", () => {
    check("conv2d", x, { filters: 4, kernel: 3, padding: [1, 2] }, runs);
    check("conv2d", x, { filters: 4, kernel: 3, padding: [[0, 1], [2, 0]] }, runs);
    check("conv2d", x, { filters: 4, kernel: [4, 3], padding: "same" }, runs);
    check("conv2d", x, { filters: 4, kernel: 3, padding: "full", dilation: [1, 2] }, runs);
  });
  it("groups 2, depthwise, circular, flip, no bias", () => {
    check("conv2d", ["N", 4, 7, 6], { filters: 6, kernel: 3, groups: 2, padding: 1 }, [[2, 4, 7, 6]]);
    check("conv2d", ["N", 4, 7, 6], { filters: 4, kernel: 3, groups: 4, padding: 1, stride: 2 }, [[2, 4, 7, 6]]);
    check("conv2d", x, { filters: 4, kernel: 3, padding: [1, 2], padding_mode: "circular" }, runs);
    check("conv2d", x, { filters: 4, kernel: [2, 3], padding: [[0, 1], [2, 0]], padding_mode: "circular", flip: true }, runs);
    check("conv2d", x, { filters: 4, kernel: 3, flip: true, bias: false }, runs);
  });
  it("symbolic H and W (row accumulators), two sizes", () => {
    check("conv2d", ["N", 2, "H", "W"], { filters: 4, kernel: 3, padding: 1 }, [[2, 2, 6, 9], [1, 2, 10, 4]]);
    check("conv2d", ["N", 2, "H", "W"], { filters: 3, kernel: [2, 3], stride: 2, padding_mode: "circular", padding: 1 }, [[2, 2, 6, 9], [1, 2, 5, 4]]);
  });
  it("a large static plane (row accumulators) and a 7x7 kernel (one unrolled dim)", () => {
    check("conv2d", [1, 2, 140, 130], { filters: 2, kernel: 3, padding: 1 }, [[1, 2, 140, 130]]);
    check("conv2d", ["N", 2, 12, 11], { filters: 3, kernel: 7, padding: 3, flip: true }, [[2, 2, 12, 11]]);
  });
  it("LeNet-like layers at two batch sizes", () => {
    check("conv2d", ["N", 1, 32, 32], { filters: 6, kernel: 5, padding: 2 }, [[2, 1, 32, 32], [3, 1, 32, 32]]);
    check("conv2d", ["N", 6, 14, 14], { filters: 16, kernel: 5 }, [[2, 6, 14, 14], [1, 6, 14, 14]]);
  });
});

describe("js conv3d: conformance", () => {
  const runs = [[2, 2, 5, 6, 7], [1, 2, 5, 6, 7]];
  const x = ["N", 2, 5, 6, 7] as const;
  it("kernel 3, stride 2, padding, dilation", () => {
    check("conv3d", x, { filters: 4, kernel: 3 }, runs);
    check("conv3d", x, { filters: 3, kernel: 3, stride: 2, padding: 1 }, runs);
    check("conv3d", x, { filters: 2, kernel: [2, 2, 3], dilation: [2, 1, 2], padding: [[0, 1], [1, 0], [2, 2]] }, runs);
  });
  it("a kernel too big to unroll whole, groups, circular, flip", () => {
    check("conv3d", x, { filters: 2, kernel: [3, 3, 4], padding: 1, flip: true }, runs);
    check("conv3d", x, { filters: 4, kernel: 2, groups: 2, padding_mode: "circular", padding: 1 }, runs);
  });
  it("symbolic depth", () => check("conv3d", ["N", 2, "D", 4, 5], { filters: 2, kernel: 3, padding: 1 }, [[1, 2, 3, 4, 5], [2, 2, 6, 4, 5]]));
});

describe("js conv_transpose: conformance", () => {
  const runs = [[2, 4, 7], [1, 4, 3]];
  const x = ["N", 4, "L"] as const;
  it("1-d: stride 2, output_padding, padding, dilation, groups, no bias", () => {
    check("conv_transpose1d", x, { filters: 3, kernel: 3 }, runs);
    check("conv_transpose1d", x, { filters: 3, kernel: 3, stride: 2 }, runs);
    check("conv_transpose1d", x, { filters: 3, kernel: 4, stride: 2, padding: 1, output_padding: 1 }, runs);
    check("conv_transpose1d", x, { filters: 2, kernel: 3, stride: 3, dilation: 2, padding: [[2, 1]] }, runs);
    check("conv_transpose1d", x, { filters: 6, kernel: 3, stride: 2, groups: 2, bias: false }, runs);
  });
  it("2-d: stride 2, output_padding, dilation, groups", () => {
    const r2 = [[2, 4, 5, 6], [1, 4, 5, 6]];
    check("conv_transpose2d", ["N", 4, 5, 6], { filters: 6, kernel: [3, 2], stride: 2, padding: [1, 0], output_padding: [1, 1] }, r2);
    check("conv_transpose2d", ["N", 4, 5, 6], { filters: 4, kernel: 3, stride: [2, 3], dilation: [2, 1], output_padding: [1, 2], groups: 2 }, r2);
    check("conv_transpose2d", ["N", 4, "H", "W"], { filters: 8, kernel: 2, stride: 2 }, [[2, 4, 3, 5], [1, 4, 4, 2]]);
  });
  it("3-d: stride 2", () => check("conv_transpose3d", ["N", 2, 3, 4, 3], { filters: 2, kernel: 3, stride: 2, padding: 1, output_padding: 1 }, [[2, 2, 3, 4, 3]]));
});

describe("js conv: run-time checks", () => {
  it("reports a kernel larger than a symbolic input", () => {
    const m = convModel("conv1d", ["N", 1, "L"], { filters: 1, kernel: 5, padding: 1 });
    // L = 2 gives an output length of 0: the kernel must refuse rather than return an empty tensor silently.
    expect(() => jsExecutor(m.graph).run({ x: randomTensor([1, 1, 2]) }, initialParams(m.graph, 0), { symbols: { N: 1, L: 2 } })).toThrow("kernel 5 is larger than the padded input 4 along dim 2");
  });
});

describe("js conv: generated code", () => {
  it("LeNet-like conv2d, static shapes (golden)", async () => {
    const src = kernelSource(convModel("conv2d", ["N", 6, 14, 14], { filters: 16, kernel: 5 }));
    // sizes folded, in-place reads (no padding), two filters per block, sliding rows
    expect(src.replace("const N = S.N;", "").replace(/\/\/.*\n/g, "")).not.toContain("S.");
    expect(src).not.toContain("xp");
    expect(src).toContain("acc[a1 + ow]");
    await expect(src).toMatchFileSnapshot("__golden__/conv2d-lenet.js");
  });

  it("symbolic conv1d with padding (golden)", async () => {
    const src = kernelSource(convModel("conv1d", ["N", 4, "L"], { filters: 8, kernel: 3, padding: 1 }));
    expect(src).toContain("const N = S.N;");
    expect(src).toContain("const L = S.L;");
    await expect(src).toMatchFileSnapshot("__golden__/conv1d-symbolic.js");
  });

  it("3x3 conv with 64 filters: 8 filters per block, weights hoisted, no bounds tests in the taps", () => {
    const src = kernelSource(convModel("conv2d", [8, 64, 56, 56], { filters: 64, kernel: 3, padding: 1 }));
    expect(src).toContain("fl += 8");
    expect(src).toContain("w7_8 = x1[wb7 + 8]");
    expect(src).not.toMatch(/if \(/);
  });
});

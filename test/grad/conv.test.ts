// Gradients of the convolution family: conv (1-d/2-d/3-d, strides, dilation,
// every padding form incl. circular, groups and depthwise, flip, with and
// without bias) and conv_transpose (stride, padding, output padding, dilation,
// groups), with symbolic N (and L, H, W). Each case checks the analytic
// backward IR against float64 finite differences on the reference, then the
// generated JS gradient kernels (conv_grad_input, conv_grad_weight, and the
// forward conv that conv_transpose's input gradient is) against the
// reference; a representative subset also runs the WGSL kernels on WebGPU.

import { describe, expect, it } from "vitest";
import { emitProgram } from "../../compiler/codegen/js/program.ts";
import { emitWgslProgram } from "../../compiler/codegen/wgsl/program.ts";
import { gradWeightParts } from "../../compiler/codegen/wgsl/conv.ts";
import { TestModel, randomTensor, type JsArg } from "../support/build.ts";
import { expectJsMatchesReference } from "../support/conformance.ts";
import { checkGradients, gradGraph } from "../support/gradcheck.ts";
import { expectWgslMatchesReference } from "../support/webgpu.ts";

function convModel(callee: string, shape: readonly (number | string)[], kw: Record<string, JsArg>) {
  const m = new TestModel();
  const x = m.input("x", "f32", shape);
  m.output("y", m.call(callee, [x], kw, "c1"));
  return m;
}

/** Elements of each tensor perturbed by finite differences (spread evenly over it; all of a smaller tensor). */
const FD_ELEMENTS = 16;

interface CheckOptions {
  /** Also run the WGSL gradient kernels (first run shape only). */
  readonly wgsl?: boolean;
  /** Skip finite differences (large layers: targets against the reference only). */
  readonly fd?: boolean;
}

/**
 * Builds `y = callee(x, ...)` once; checks the gradients w.r.t. x, the weight
 * and the bias by finite differences on the reference (first input shape), then
 * for each input shape the JS (and optionally, first shape, WGSL) gradient code
 * against the reference.
 */
async function check(callee: string, shape: readonly (number | string)[], kw: Record<string, JsArg>, runs: readonly (readonly number[])[], opts: CheckOptions = {}): Promise<void> {
  const m = convModel(callee, shape, kw);
  for (const [i, s] of runs.entries()) {
    const inputs = { x: randomTensor(s, 17 + i) };
    // finite differences on the first shape (the reference interpreter is slow); targets on every shape
    const gg = opts.fd === false || i > 0 ? gradGraph(m.graph, inputs) : checkGradients(m.graph, inputs, { maxElements: FD_ELEMENTS });
    expect(gg.names).toContain("grad:c1.weight");
    const js = expectJsMatchesReference(gg.graph, gg.inputs, { seed: i });
    expect(js["grad:x"]!.shape).toEqual(s);
    if (opts.wgsl && i === 0) await expectWgslMatchesReference(gg.graph, gg.inputs, { seed: i });
  }
}

describe("conv1d gradients", () => {
  const L = ["N", 3, "L"] as const;
  const runs = [[2, 3, 11], [3, 3, 8]];
  it("kernel 3, symbolic N and L at two sizes", async () => {
    await check("conv1d", L, { filters: 4, kernel: 3 }, runs, { wgsl: true });
  });
  it("strides 2 and 3", async () => {
    await check("conv1d", L, { filters: 4, kernel: 3, stride: 2 }, runs);
    await check("conv1d", L, { filters: 2, kernel: 2, stride: 3 }, runs, { wgsl: true });
  });
  it("dilation 2 with padding", async () => {
    await check("conv1d", L, { filters: 4, kernel: 3, dilation: 2, padding: 2 }, runs);
  });
  it("symmetric, asymmetric, same and full padding", async () => {
    await check("conv1d", L, { filters: 4, kernel: 3, padding: 1 }, runs);
    await check("conv1d", L, { filters: 4, kernel: 3, padding: [[2, 0]] }, runs, { wgsl: true });
    await check("conv1d", L, { filters: 4, kernel: 4, padding: "same" }, runs);
    await check("conv1d", L, { filters: 4, kernel: 3, padding: "full", stride: 2 }, runs);
  });
  it("groups 2, depthwise and depthwise with a channel multiplier", async () => {
    const r = [[2, 4, 9], [1, 4, 5]];
    await check("conv1d", ["N", 4, "L"], { filters: 6, kernel: 3, groups: 2, padding: 1 }, r, { wgsl: true });
    await check("conv1d", ["N", 4, "L"], { filters: 4, kernel: 5, groups: 4, padding: "same" }, r);
    await check("conv1d", ["N", 4, "L"], { filters: 8, kernel: 3, groups: 4, stride: 2 }, r);
  });
  it("circular padding (padded cells add their gradient back), also wrapping more than the input once", async () => {
    await check("conv1d", L, { filters: 4, kernel: 3, padding: 1, padding_mode: "circular" }, runs, { wgsl: true });
    await check("conv1d", L, { filters: 3, kernel: 4, padding: [[3, 1]], stride: 2, padding_mode: "circular" }, runs);
    await check("conv1d", ["N", 2, 3], { filters: 2, kernel: 7, padding: [[5, 4]], padding_mode: "circular" }, [[2, 2, 3]], { wgsl: true });
  });
  it("flip (true convolution) and no bias", async () => {
    await check("conv1d", L, { filters: 4, kernel: 4, flip: true, padding: [[1, 2]] }, runs, { wgsl: true });
    await check("conv1d", L, { filters: 4, kernel: 3, bias: false, dilation: 2 }, runs);
    await check("conv1d", L, { filters: 3, kernel: 3, bias: false, flip: true, stride: 2 }, runs);
  });
  it("long kernels: 12 taps (unrolled), 30 taps (tap loops) with flip and stride; pointwise kernel 1", async () => {
    await check("conv1d", ["N", 2, "L"], { filters: 3, kernel: 12, padding: 3, flip: true }, [[2, 2, 16], [1, 2, 13]]);
    await check("conv1d", ["N", 2, "L"], { filters: 3, kernel: 30, padding: 3, flip: true, stride: 2 }, [[2, 2, 40], [1, 2, 31]], { wgsl: true });
    await check("conv1d", ["N", 2, "L"], { filters: 2, kernel: 30, padding: [[1, 2]] }, [[1, 2, 33]]);
    await check("conv1d", L, { filters: 5, kernel: 1 }, runs);
  });
});

describe("conv2d gradients", () => {
  const runs = [[2, 3, 7, 6], [1, 3, 7, 6]];
  const x = ["N", 3, 7, 6] as const;
  it("kernel 3, stride [2, 3], dilation [2, 1]", async () => {
    await check("conv2d", x, { filters: 4, kernel: 3 }, runs, { wgsl: true });
    await check("conv2d", x, { filters: 4, kernel: 3, stride: [2, 3] }, runs);
    await check("conv2d", x, { filters: 3, kernel: [3, 2], dilation: [2, 1], stride: 2 }, runs, { wgsl: true });
    await check("conv2d", x, { filters: 2, kernel: 2, stride: 3, dilation: 2 }, runs);
  });
  it("padding: symmetric, asymmetric [[0, 1], [2, 0]], same and full", async () => {
    await check("conv2d", x, { filters: 4, kernel: 3, padding: [1, 2] }, runs);
    await check("conv2d", x, { filters: 4, kernel: 3, padding: [[0, 1], [2, 0]] }, runs, { wgsl: true });
    await check("conv2d", x, { filters: 3, kernel: [4, 3], padding: "same" }, runs);
    await check("conv2d", x, { filters: 3, kernel: 3, padding: "full", dilation: [1, 2] }, runs);
  });
  it("groups 2, depthwise with stride, circular, circular + flip, no bias", async () => {
    await check("conv2d", ["N", 4, 6, 5], { filters: 6, kernel: 3, groups: 2, padding: 1 }, [[2, 4, 6, 5]], { wgsl: true });
    await check("conv2d", ["N", 4, 6, 5], { filters: 4, kernel: 3, groups: 4, padding: 1, stride: 2 }, [[2, 4, 6, 5]], { wgsl: true });
    await check("conv2d", x, { filters: 3, kernel: 3, padding: [1, 2], padding_mode: "circular" }, runs, { wgsl: true });
    await check("conv2d", x, { filters: 3, kernel: [2, 3], padding: [[0, 1], [2, 0]], padding_mode: "circular", flip: true, stride: [1, 2] }, runs, { wgsl: true });
    await check("conv2d", x, { filters: 4, kernel: 3, flip: true, bias: false }, runs);
  });
  it("symbolic H and W, two sizes", async () => {
    await check("conv2d", ["N", 2, "H", "W"], { filters: 3, kernel: 3, padding: 1 }, [[2, 2, 5, 7], [1, 2, 6, 4]], { wgsl: true });
    await check("conv2d", ["N", 2, "H", "W"], { filters: 3, kernel: [2, 3], stride: 2, padding_mode: "circular", padding: 1 }, [[2, 2, 5, 7], [1, 2, 5, 4]]);
  });
  it("LeNet-like layers at two batch sizes (targets only; finite differences on a smaller twin)", async () => {
    await check("conv2d", ["N", 1, 12, 12], { filters: 6, kernel: 5, padding: 2 }, [[2, 1, 12, 12]]);
    await check("conv2d", ["N", 1, 28, 28], { filters: 6, kernel: 5, padding: 2 }, [[2, 1, 28, 28]], { fd: false, wgsl: true });
    await check("conv2d", ["N", 6, 14, 14], { filters: 16, kernel: 5 }, [[2, 6, 14, 14], [1, 6, 14, 14]], { fd: false, wgsl: true });
  });
});

describe("conv3d gradients", () => {
  const runs = [[2, 2, 4, 5, 4], [1, 2, 4, 5, 4]];
  const x = ["N", 2, 4, 5, 4] as const;
  it("kernel 3, stride 2 with padding, dilation and asymmetric padding", async () => {
    await check("conv3d", x, { filters: 2, kernel: 3 }, runs, { wgsl: true });
    await check("conv3d", x, { filters: 2, kernel: 3, stride: 2, padding: 1 }, runs);
    await check("conv3d", x, { filters: 2, kernel: [2, 2, 3], dilation: [2, 1, 2], padding: [[0, 1], [1, 0], [2, 2]] }, runs, { wgsl: true });
  });
  it("groups, circular, flip, symbolic depth", async () => {
    await check("conv3d", x, { filters: 2, kernel: [3, 2, 2], padding: 1, flip: true, bias: false }, runs);
    await check("conv3d", x, { filters: 4, kernel: 2, groups: 2, padding_mode: "circular", padding: 1 }, runs, { wgsl: true });
    await check("conv3d", ["N", 2, "D", 4, 3], { filters: 2, kernel: 3, padding: 1 }, [[1, 2, 3, 4, 3], [2, 2, 5, 4, 3]]);
  });
});

describe("conv_transpose gradients", () => {
  const runs = [[2, 4, 6], [1, 4, 3]];
  const x = ["N", 4, "L"] as const;
  it("1-d: plain and stride 2 (symbolic L: the input gradient conv is cropped to L)", async () => {
    await check("conv_transpose1d", x, { filters: 3, kernel: 3 }, runs, { wgsl: true });
    await check("conv_transpose1d", x, { filters: 3, kernel: 3, stride: 2 }, runs, { wgsl: true });
  });
  it("1-d: padding with output_padding, dilation, groups, no bias", async () => {
    await check("conv_transpose1d", x, { filters: 3, kernel: 4, stride: 2, padding: 1, output_padding: 1 }, runs, { wgsl: true });
    await check("conv_transpose1d", x, { filters: 2, kernel: 3, stride: 3, dilation: 2, padding: [[2, 1]] }, runs);
    await check("conv_transpose1d", x, { filters: 6, kernel: 3, stride: 2, groups: 2, bias: false }, runs);
  });
  it("1-d: output_padding at least the stride (allowed below the dilation), static length", async () => {
    await check("conv_transpose1d", ["N", 2, 5], { filters: 2, kernel: 3, dilation: 3, output_padding: 2 }, [[2, 2, 5]], { wgsl: true });
  });
  it("2-d: stride 2 with output_padding, dilation with groups, symbolic H and W", async () => {
    const r2 = [[2, 4, 4, 5], [1, 4, 4, 5]];
    await check("conv_transpose2d", ["N", 4, 4, 5], { filters: 6, kernel: [3, 2], stride: 2, padding: [1, 0], output_padding: [1, 1] }, r2, { wgsl: true });
    await check("conv_transpose2d", ["N", 4, 4, 5], { filters: 4, kernel: 3, stride: [2, 3], dilation: [2, 1], output_padding: [1, 2], groups: 2 }, r2, { wgsl: true });
    await check("conv_transpose2d", ["N", 4, "H", "W"], { filters: 4, kernel: 2, stride: 2 }, [[2, 4, 3, 4], [1, 4, 4, 2]]);
  });
  it("3-d: stride 2 with padding and output_padding", async () => {
    await check("conv_transpose3d", ["N", 2, 3, 3, 2], { filters: 2, kernel: 3, stride: 2, padding: 1, output_padding: 1 }, [[2, 2, 3, 3, 2]], { wgsl: true });
  });
});

describe("conv gradients: composition and generated code", () => {
  it("two stacked convs: dy of the first comes from the second's input gradient", async () => {
    const m = new TestModel();
    const x = m.input("x", "f32", ["N", 2, 9, 8]);
    const h = m.call("conv2d", [x], { filters: 3, kernel: 3, padding: 1 }, "c1");
    const y = m.call("conv2d", [h], { filters: 4, kernel: 3, stride: 2 }, "c2");
    m.output("y", y);
    const gg = checkGradients(m.graph, { x: randomTensor([2, 2, 9, 8], 3) });
    expect(gg.names).toEqual(["grad:x", "grad:c1.weight", "grad:c1.bias", "grad:c2.weight", "grad:c2.bias"]);
    expectJsMatchesReference(gg.graph, gg.inputs);
    await expectWgslMatchesReference(gg.graph, gg.inputs);
  });

  it("conv's gradient uses conv_grad_input, conv_grad_weight and a reduce; conv_transpose's a forward conv", () => {
    const ops = (callee: string, kw: Record<string, JsArg>) => {
      const m = convModel(callee, ["N", 4, 6], kw);
      const gg = gradGraph(m.graph, { x: randomTensor([2, 4, 6]) });
      const base = m.graph.nodes.length;
      return gg.graph.nodes.slice(base).map((n) => n.op);
    };
    const c = ops("conv1d", { filters: 4, kernel: 3 });
    expect(c).toContain("conv_grad_input");
    expect(c).toContain("conv_grad_weight");
    expect(c).toContain("reduce");
    const t = ops("conv_transpose1d", { filters: 4, kernel: 3, stride: 2 });
    expect(t).toContain("conv");
    expect(t).toContain("conv_grad_weight");
    expect(t).not.toContain("conv_grad_input");
  });

  it("JS kernels: no bounds tests in the inner loops", () => {
    const m = convModel("conv2d", ["N", 6, 14, 14], { filters: 16, kernel: 5, padding: 1 });
    const gg = gradGraph(m.graph, { x: randomTensor([1, 6, 14, 14]) });
    const src = emitProgram(gg.graph).kernels.filter((k) => /conv_grad/.test(k));
    expect(src).toHaveLength(2);
    for (const k of src) expect(k).not.toMatch(/if \(/);
  });

  it("WGSL weight gradient: a small weight is split over parts plus an ordered summing pass, a large one is not", () => {
    expect(gradWeightParts(150)).toBeGreaterThanOrEqual(32);
    expect(gradWeightParts(64 * 64 * 9)).toBe(1);
    const passes = (filters: number, c: number) => {
      const m = convModel("conv2d", ["N", c, 10, 10], { filters, kernel: 5 });
      const gg = gradGraph(m.graph, { x: randomTensor([1, c, 10, 10]) });
      return emitWgslProgram(gg.graph, gg.graph.outputs.map((o) => o.value)).passes.filter((p) => p.node.op === "conv_grad_weight");
    };
    const small = passes(6, 1);
    expect(small).toHaveLength(2);
    expect(small[1]!.code.gpu).toMatch(/for \(var part = 0; part < \d+; part\+\+\)/);
    expect(small[0]!.code.gpu).not.toContain("atomic");
    expect(passes(64, 64)).toHaveLength(1);
  });
});

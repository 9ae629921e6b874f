// WGSL kernels of the shape family on a real WebGPU device (Dawn on lavapipe
// here) against the float64 reference. Each graph computes several outputs;
// graphs with symbolic sizes are compiled once and run at two sizes.

import { describe, expect, it } from "vitest";
import { emitWgslProgram } from "../../compiler/codegen/wgsl/program.ts";
import { wgslExecutor } from "../../compiler/codegen/wgsl/execute.ts";
import { Dim } from "../../compiler/ir/dims.ts";
import type { DType } from "../../compiler/ir/types.ts";
import { interpret } from "../../compiler/reference/interpreter.ts";
import { RefTensor } from "../../compiler/reference/tensor.ts";
import { randomTensor, t, TestModel, type JsArg } from "../support/build.ts";
import { expectAllClose } from "../support/conformance.ts";
import { gpuDevice } from "../support/webgpu.ts";

/** Compiles `m` once and checks every output against the reference for each feed. */
async function conform(m: TestModel, feeds: Record<string, RefTensor>[]): Promise<Record<string, RefTensor>[]> {
  const { device } = await gpuDevice();
  const ex = await wgslExecutor(m.graph, device, "cpu", {});
  try {
    const results: Record<string, RefTensor>[] = [];
    for (const feed of feeds) {
      const inputs = Object.fromEntries(Object.entries(feed).map(([k, v]) => [k, v.dtype === "f32" ? v.map((x) => Math.fround(x)) : v]));
      const want = interpret(m.graph, inputs, {}).outputs;
      const got = await ex.run(inputs);
      for (const [name, w] of Object.entries(want)) expectAllClose(got[name]!, w, `output '${name}'`);
      results.push(got);
    }
    return results;
  } finally {
    ex.dispose();
  }
}

/** 0, 1, 2, ... in the given shape (every element distinct, so any misplaced read shows). */
function iota(shape: number[], dtype: DType = "f32"): RefTensor {
  const n = shape.reduce((a, b) => a * b, 1);
  return RefTensor.from(Array.from({ length: n }, (_, k) => (dtype === "bool" ? k % 3 === 0 ? 1 : 0 : k)), shape, dtype);
}

type Shape = (number | string)[];

/** One graph: input `x` of `shape`, one output per (callee, keywords) case. */
async function checkMany(shape: Shape, cases: [string, Record<string, JsArg>][], sizes: number[][], dtype: DType = "f32"): Promise<Record<string, RefTensor>[]> {
  const m = new TestModel();
  const x = m.input("x", dtype, shape);
  cases.forEach(([callee, kw], k) => m.output(`y${k}`, m.call(callee, [x], kw, `y${k}`)));
  return conform(m, sizes.map((s) => ({ x: dtype === "f32" ? randomTensor(s, s.length + s[0]!) : iota(s, dtype) })));
}

describe("transpose", () => {
  it("ranks 2 to 4 with symbolic N (merged neighbour axes, size-1 axes)", async () => {
    const m = new TestModel();
    const x2 = m.input("x2", "f32", ["N", 3]);
    const x3 = m.input("x3", "f32", ["N", 3, 4]);
    const x4 = m.input("x4", "f32", ["N", 3, 4, 5]);
    const x1 = m.input("x1", "f32", ["N", 1, 5]);
    m.output("t2", m.call("transpose", [x2], {}, "t2"));
    m.output("t3", m.call("transpose", [x3], { perm: [2, 0, 1] }, "t3"));
    m.output("t3b", m.call("transpose", [x3], { perm: [1, 0, 2] }, "t3b"));
    m.output("t4", m.call("transpose", [x4], {}, "t4"));
    m.output("nhwc", m.call("transpose", [x4], { perm: [0, 2, 3, 1] }, "nhwc"));
    m.output("t4b", m.call("transpose", [x4], { perm: [1, 0, 3, 2] }, "t4b"));
    m.output("ones", m.call("transpose", [x1], { perm: [1, 0, 2] }, "ones"));
    const feed = (n: number) => ({ x2: iota([n, 3]), x3: iota([n, 3, 4]), x4: iota([n, 3, 4, 5]), x1: iota([n, 1, 5]) });
    const [, r] = await conform(m, [feed(1), feed(3)]);
    expect(r!.nhwc!.shape).toEqual([3, 4, 5, 3]);
    expect(Array.from(r!.t2!.data.slice(0, 3))).toEqual([0, 3, 6]);
  });

  it("i32 and bool tensors", async () => {
    await checkMany(["N", 2, 3], [["transpose", { perm: [2, 1, 0] }]], [[2, 2, 3]], "i32");
    await checkMany(["N", 2, 3], [["transpose", { perm: [0, 2, 1] }]], [[2, 2, 3]], "bool");
  });

  it("the NCHW -> NHWC kernel matches its golden WGSL", async () => {
    const m = new TestModel();
    const x = m.input("x", "f32", ["N", 3, 4, 5]);
    const y = m.call("transpose", [x], { perm: [0, 2, 3, 1] }, "y");
    m.output("y", y);
    await expect(emitWgslProgram(m.graph, [y]).passes[0]!.code.cpu).toMatchFileSnapshot("__golden__/shape-transpose-nhwc.wgsl");
  });
});

describe("concat", () => {
  it("along each axis of rank-3 operands, symbolic N, up to three operands", async () => {
    const m = new TestModel();
    const a = m.input("a", "f32", ["N", 2, 3]);
    const b = m.input("b", "f32", ["N", 4, 3]);
    const c = m.input("c", "f32", ["N", 2, 1]);
    const d = m.input("d", "f32", [2, 2, 3]);
    m.output("ax0", m.call("concat", [[a, d, a]], { axis: 0 }, "ax0"));
    m.output("ax1", m.call("concat", [[a, b]], { axis: 1 }, "ax1"));
    m.output("ax2", m.call("concat", [[a, c, a]], { axis: -1 }, "ax2"));
    m.output("one", m.call("concat", [[b]], { axis: 1 }, "one"));
    const feed = (n: number, s: number) => ({ a: randomTensor([n, 2, 3], s), b: randomTensor([n, 4, 3], s + 1), c: randomTensor([n, 2, 1], s + 2), d: randomTensor([2, 2, 3], s + 3) });
    const [r] = await conform(m, [feed(1, 1), feed(3, 5)]);
    expect(r!.ax0!.shape).toEqual([4, 2, 3]);
  });

  it("i32 and bool operands", async () => {
    const m = new TestModel();
    const a = m.input("a", "i32", ["N", 2]);
    const b = m.input("b", "i32", ["N", 3]);
    const p = m.input("p", "bool", [2, "N"]);
    m.output("i", m.call("concat", [[a, b]], { axis: 1 }, "i"));
    m.output("b", m.call("concat", [[p, p]], { axis: 0 }, "b"));
    await conform(m, [{ a: iota([3, 2], "i32"), b: iota([3, 3], "i32"), p: iota([2, 3], "bool") }]);
  });
});

describe("slice", () => {
  it("static and symbolic axes: negative bounds, steps > 1, clamping", async () => {
    await checkMany(
      ["N", 7, 6],
      [
        ["slice", { axis: 1, start: 1, end: 4 }],
        ["slice", { axis: -1, start: -3 }],
        ["slice", { axis: 1, start: 0, end: -1, step: 2 }],
        ["slice", { axis: 2, start: 1, step: 3 }],
        ["slice", { axis: 2, start: -100, end: 100, step: 2 }],
        ["slice", { axis: 0, start: 1, step: 2 }],
        ["slice", { axis: 0, start: -2 }],
      ],
      [[3, 7, 6], [6, 7, 6]],
    );
  });

  it("symbolic inner axes: a negative start, two bounds, a step", async () => {
    await checkMany(
      [2, "L", 3],
      [
        ["slice", { axis: 1, start: -2 }],
        ["slice", { axis: 1, start: 1, end: -1 }],
        ["slice", { axis: 1, start: 1, step: 2 }],
        ["slice", { axis: 1, start: 1, end: Dim.sym("L").sub(1) }],
        ["slice", { axis: 1, start: 0, end: 2 }],
      ],
      [[2, 5, 3], [2, 8, 3]],
    );
  });

  it("i32", async () => {
    await checkMany(["N", 8], [["slice", { axis: 1, start: 2, end: 7, step: 2 }]], [[3, 8]], "i32");
  });

  it("fails at run time when a symbolic axis is too short for the compiled bound", async () => {
    const m = new TestModel();
    const x = m.input("x", "f32", ["L"]);
    m.output("y", m.call("slice", [x], { axis: 0, start: 0, end: 4 }));
    const [r] = await conform(m, [{ x: iota([6]) }]);
    expect(r!.y!.shape).toEqual([4]);
    const { device } = await gpuDevice();
    const ex = await wgslExecutor(m.graph, device, "cpu", {});
    try {
      await expect(ex.run({ x: iota([2]) })).rejects.toThrow("slice 0:4 of axis 0 with size 2 gives 2 elements, but the compiled shape needs 4");
    } finally {
      ex.dispose();
    }
  });
});

describe("pad", () => {
  it("asymmetric with a value, an int on every dim, leading, middle and last dims", async () => {
    const m = new TestModel();
    const x = m.input("x", "f32", ["N", 2, 3, 4]);
    const v = m.input("v", "f32", ["N", 5]);
    m.output("asym", m.call("pad", [x], { padding: [[1, 0], [2, 3]], value: -1.5 }, "asym"));
    m.output("all", m.call("pad", [v], { padding: 1 }, "all"));
    m.output("last", m.call("pad", [v], { padding: [[0, 2]], value: 7 }, "last"));
    m.output("lead", m.call("pad", [x], { padding: [[2, 1], 0, 0, 0] }, "lead"));
    m.output("mid", m.call("pad", [x], { padding: [[1, 2], 0, 0] }, "mid"));
    m.output("none", m.call("pad", [v], { padding: 0 }, "none"));
    const feed = (n: number) => ({ x: iota([n, 2, 3, 4]), v: iota([n, 5]) });
    const [r] = await conform(m, [feed(2), feed(1)]);
    expect(r!.asym!.shape).toEqual([2, 2, 4, 9]);
  });

  it("i32 with an integer value and bool", async () => {
    await checkMany(["N", 3], [["pad", { padding: [[1, 2]], value: -9 }]], [[2, 3]], "i32");
    await checkMany(["N", 3], [["pad", { padding: [[1, 0], [0, 2]], value: 1 }]], [[2, 3]], "bool");
  });
});

describe("upsample", () => {
  it.each(["nearest", "linear"])("%s: 1-d, 2-d and 3-d, scales 2, 3 and mixed, symbolic N and L", async (mode) => {
    const m = new TestModel();
    const x1 = m.input("x1", "f32", ["N", 2, "L"]);
    const x2 = m.input("x2", "f32", ["N", 2, 3, 4]);
    const x3 = m.input("x3", "f32", ["N", 2, 1, 3, 2]);
    m.output("a", m.call("upsample", [x1], { scale: 2, mode }, "a"));
    m.output("b", m.call("upsample", [x1], { scale: 5, mode }, "b"));
    m.output("c", m.call("upsample", [x2], { scale: 3, mode }, "c"));
    m.output("d", m.call("upsample", [x2], { scale: [1, 2], mode }, "d"));
    m.output("e", m.call("upsample", [x3], { scale: [3, 1, 2], mode }, "e"));
    const feed = (n: number, l: number, s: number) => ({ x1: randomTensor([n, 2, l], s), x2: randomTensor([n, 2, 3, 4], s + 1), x3: randomTensor([n, 2, 1, 3, 2], s + 2) });
    await conform(m, [feed(2, 5, 1), feed(1, 3, 7)]);
  });

  it("linear skips zero-weight taps (NaN and inf spread as in the reference) and matches PyTorch on a 2x2 input", async () => {
    const m = new TestModel();
    const a = m.input("a", "f32", [1, 1, 6]);
    const b = m.input("b", "f32", [1, 1, 3, 3]);
    const c = m.input("c", "f32", [1, 1, 2, 2]);
    for (const s of [1, 2, 3]) m.output(`a${s}`, m.call("upsample", [a], { scale: s, mode: "linear" }, `a${s}`));
    for (const s of [2, 3]) m.output(`b${s}`, m.call("upsample", [b], { scale: s, mode: "bilinear" }, `b${s}`));
    m.output("c", m.call("upsample", [c], { scale: 2, mode: "bilinear" }, "c"));
    const [r] = await conform(m, [{ a: t([Infinity, 1, 2, NaN, 3, -Infinity], [1, 1, 6]), b: t([1, 2, Infinity, 4, 5, 6, NaN, 8, 9], [1, 1, 3, 3]), c: t([1, 2, 3, 4], [1, 1, 2, 2]) }]);
    // torch.nn.functional.interpolate(x, scale_factor=2, mode="bilinear") of [[1, 2], [3, 4]]
    expect(Array.from(r!.c!.data.slice(0, 8))).toEqual([1, 1.25, 1.75, 2, 1.5, 1.75, 2.25, 2.5]);
  });
});

describe("broadcast_to", () => {
  it("leading dims, size-1 dims, scalars and symbolic N", async () => {
    const m = new TestModel();
    const a = m.input("a", "f32", [3, 1, 5]);
    const b = m.input("b", "f32", ["N", 1]);
    const c = m.input("c", "f32", []);
    const d = m.input("d", "i32", [1, 4]);
    const N = Dim.sym("N");
    m.output("a", m.call("broadcast_to", [a], { shape: [2, 3, 4, 5] }, "ba"));
    m.output("b", m.call("broadcast_to", [b], { shape: [N, 6] }, "bb"));
    m.output("c", m.call("broadcast_to", [c], { shape: [2, 3] }, "bc"));
    m.output("d", m.call("broadcast_to", [d], { shape: [N, 4] }, "bd"));
    const feed = (n: number) => ({ a: iota([3, 1, 5]), b: iota([n, 1]), c: t([2.5], []), d: iota([1, 4], "i32") });
    const [, r] = await conform(m, [feed(2), feed(5)]);
    expect(r!.d!.shape).toEqual([5, 4]);
  });
});

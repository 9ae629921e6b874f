// WGSL kernels of the reduction family on a real WebGPU device (Dawn on
// lavapipe here) against the float64 reference, in both forms: "cpu" (one
// invocation per output) and "gpu" (one workgroup per output, tree reduction).

import { describe, expect, it } from "vitest";
import { emitWgslProgram } from "../../compiler/codegen/wgsl/program.ts";
import { wgslExecutor } from "../../compiler/codegen/wgsl/execute.ts";
import { interpret } from "../../compiler/reference/interpreter.ts";
import type { RefTensor } from "../../compiler/reference/tensor.ts";
import type { AdapterClass } from "../../runtime/webgpu.ts";
import { randomTensor, t, TestModel, type JsArg } from "../support/build.ts";
import { expectAllClose } from "../support/conformance.ts";
import { gpuDevice } from "../support/webgpu.ts";

const BOTH: AdapterClass[] = ["cpu", "gpu"];

/** Compiles `m` once per adapter class and checks every output against the reference for each feed. */
async function conform(m: TestModel, feeds: Record<string, RefTensor>[], classes: AdapterClass[] = BOTH): Promise<Record<string, RefTensor>[]> {
  const { device } = await gpuDevice();
  const results: Record<string, RefTensor>[] = [];
  for (const cls of classes) {
    const ex = await wgslExecutor(m.graph, device, cls, {});
    try {
      for (const feed of feeds) {
        const inputs = Object.fromEntries(Object.entries(feed).map(([k, v]) => [k, v.dtype === "f32" ? v.map((x) => Math.fround(x)) : v]));
        const want = interpret(m.graph, inputs, {}).outputs;
        const got = await ex.run(inputs);
        for (const [name, w] of Object.entries(want)) expectAllClose(got[name]!, w, `${cls}: output '${name}'`);
        results.push(got);
      }
    } finally {
      ex.dispose();
    }
  }
  return results;
}

function ints(data: number[], shape: number[] = [data.length]): RefTensor {
  return t(data, shape, "i32");
}

const KINDS = ["sum", "mean", "max", "min", "logsumexp"];

describe("reduce", () => {
  // The gpu form (barriers) is slow to compile on lavapipe: it runs on a representative subset.
  const axesCases: [string, JsArg, AdapterClass[]][] = [
    ["axis 0", 0, ["cpu"]],
    ["axis 1", 1, BOTH],
    ["the last axis", -1, ["cpu"]],
    ["axes 1 and 3 (two blocks)", [1, 3], BOTH],
    ["axes 0 and 2", [0, 2], ["cpu"]],
    ["axes 1 and 2 (merged)", [1, 2], ["cpu"]],
    ["every axis", null, BOTH],
  ];
  it.each(axesCases)("sum mean max min logsumexp over %s of [N, 3, 4, 5], keepdims both ways, N = 1 and 3 (%j)", async (_name, axis, classes) => {
    const m = new TestModel();
    const x = m.input("x", "f32", ["N", 3, 4, 5]);
    KINDS.forEach((kind, k) => {
      const kw: Record<string, JsArg> = { keepdims: k % 2 === 0 };
      if (axis !== null) kw.axis = axis;
      m.output(kind, m.call(kind, [x], kw, kind));
    });
    const [r] = await conform(m, [{ x: randomTensor([1, 3, 4, 5], 1, -2, 2) }, { x: randomTensor([3, 3, 4, 5], 2, -2, 2) }], classes);
    const reduced = axis === null ? 4 : typeof axis === "number" ? 1 : (axis as number[]).length;
    expect(r!.sum!.shape.length).toBe(4);
    expect(r!.mean!.shape.length).toBe(4 - reduced);
  });

  it("long rows: sums over 1000 and 3000 elements (several elements per invocation, full tree)", async () => {
    const m = new TestModel();
    const x = m.input("x", "f32", ["N", 1000]);
    m.output("rows", m.call("sum", [x], { axis: 1 }, "rows"));
    m.output("cols", m.call("mean", [x], { axis: 0 }, "cols"));
    m.output("all", m.call("logsumexp", [x], {}, "all"));
    m.output("max", m.call("max", [x], { axis: 1, keepdims: true }, "mx"));
    await conform(m, [{ x: randomTensor([3, 1000], 3, 0, 1) }, { x: randomTensor([70, 1000], 4, 0, 1) }]);
  });

  it("max, min and logsumexp propagate NaN; logsumexp of -inf rows is -inf and of +inf is +inf", async () => {
    const m = new TestModel();
    const x = m.input("x", "f32", [5, 4]);
    for (const kind of ["max", "min", "logsumexp"]) m.output(kind, m.call(kind, [x], { axis: 1 }, kind));
    m.output("sum", m.call("sum", [x], { axis: 1 }, "sum"));
    const X = [1, NaN, 3, 2, NaN, 5, -1, 0, -Infinity, -Infinity, -Infinity, -Infinity, 1, Infinity, -3, 2, 1000, -1000, 999, 0];
    const [r] = await conform(m, [{ x: t(X, [5, 4]) }]);
    expect(Number.isNaN(r!.max!.data[0]!) && Number.isNaN(r!.min!.data[1]!)).toBe(true);
    expect(Array.from(r!.logsumexp!.data.slice(2, 4))).toEqual([-Infinity, Infinity]);
  });

  it("i32 sum wraps like int32; i32 max and min", async () => {
    const m = new TestModel();
    const x = m.input("x", "i32", ["N", 4]);
    for (const kind of ["sum", "max", "min"]) m.output(kind, m.call(kind, [x], { axis: 1 }, kind));
    m.output("total", m.call("sum", [x], {}, "total"));
    const [r] = await conform(m, [{ x: ints([2147483647, 1, 5, -3, -2147483648, -1, 0, 7], [2, 4]) }, { x: ints([1, 2, 3, 4], [1, 4]) }]);
    expect(r!.sum!.data[0]).toBe(-2147483646);
  });

  it("reducing only size-1 axes copies; a rank-0 sum is the value", async () => {
    const m = new TestModel();
    const x = m.input("x", "f32", ["N", 1, 3]);
    const s = m.input("s", "f32", []);
    m.output("a", m.call("sum", [x], { axis: 1 }, "a"));
    m.output("b", m.call("max", [x], { axis: 1, keepdims: true }, "b"));
    m.output("c", m.call("mean", [s], {}, "c"));
    await conform(m, [{ x: randomTensor([2, 1, 3], 5), s: t([2.5], []) }]);
  });

  it("the gpu form of a sum over the middle axis matches its golden WGSL", async () => {
    const m = new TestModel();
    const x = m.input("x", "f32", ["N", 16, "L"]);
    const y = m.call("sum", [x], { axis: 1 }, "y");
    m.output("y", y);
    const pass = emitWgslProgram(m.graph, [y]).passes[0]!;
    await expect(pass.code.gpu).toMatchFileSnapshot("__golden__/reduce-sum-middle-gpu.wgsl");
    await conform(m, [{ x: randomTensor([2, 16, 3], 6) }]);
  });
});

describe("argmax", () => {
  it("along axis 0, 1 and -1 with keepdims; ties go to the first index", async () => {
    const m = new TestModel();
    const x = m.input("x", "f32", ["N", 4, 3]);
    m.output("a0", m.call("argmax", [x], { axis: 0 }, "a0"));
    m.output("a1", m.call("argmax", [x], { axis: 1, keepdims: true }, "a1"));
    m.output("a2", m.call("argmax", [x], { axis: -1 }, "a2"));
    // Few distinct values: many ties.
    const tied = (n: number, seed: number) => randomTensor([n, 4, 3], seed, 0, 3).map((v) => Math.floor(v));
    const [r] = await conform(m, [{ x: tied(2, 1) }, { x: tied(5, 2) }]);
    expect(r!.a1!.shape).toEqual([2, 1, 3]);
  });

  it("NaN counts as the largest value and the first NaN wins; -inf rows give 0", async () => {
    const m = new TestModel();
    const x = m.input("x", "f32", [4, 5]);
    m.output("rows", m.call("argmax", [x], { axis: 1 }, "rows"));
    m.output("cols", m.call("argmax", [x], { axis: 0 }, "cols"));
    const X = [1, NaN, 3, NaN, 2, -Infinity, -Infinity, -Infinity, -Infinity, -Infinity, 5, 5, 1, 5, 0, 0, 1, NaN, 7, 7];
    const [r] = await conform(m, [{ x: t(X, [4, 5]) }]);
    expect(Array.from(r!.rows!.data)).toEqual([1, 0, 0, 2]);
  });

  it("long rows (200 and 1000 elements) in f32 and i32", async () => {
    const m = new TestModel();
    const x = m.input("x", "f32", [3, 200]);
    const i = m.input("i", "i32", [1000]);
    m.output("f", m.call("argmax", [x], { axis: 1 }, "f"));
    m.output("i", m.call("argmax", [i], { axis: 0 }, "i"));
    const big = Array.from({ length: 1000 }, (_, k) => (k * 7919) % 997);
    const [r] = await conform(m, [{ x: randomTensor([3, 200], 7), i: ints(big) }]);
    expect(r!.i!.data[0]).toBe(big.indexOf(996));
  });
});

describe("softmax and log_softmax", () => {
  it.each([
    [0, BOTH],
    [1, ["cpu"] as AdapterClass[]],
    [-1, BOTH],
  ])("along axis %i of [N, 5, 7], logits up to ±1000, N = 1 and 4 (%j)", async (axis, classes) => {
    const m = new TestModel();
    const x = m.input("x", "f32", ["N", 5, 7]);
    m.output("p", m.call("softmax", [x], { axis }, "p"));
    m.output("lp", m.call("log_softmax", [x], { axis }, "lp"));
    const logits = (n: number, seed: number) => randomTensor([n, 5, 7], seed, -1000, 1000);
    await conform(m, [{ x: logits(1, 11) }, { x: logits(4, 12) }, { x: randomTensor([4, 5, 7], 13, -3, 3) }], classes);
  });

  it("long rows of 300 elements; rows with -inf entries and NaN", async () => {
    const m = new TestModel();
    const x = m.input("x", "f32", ["N", 300]);
    const z = m.input("z", "f32", [3, 4]);
    m.output("p", m.call("softmax", [x], {}, "p"));
    m.output("lp", m.call("log_softmax", [x], {}, "lp"));
    m.output("pz", m.call("softmax", [z], {}, "pz"));
    m.output("lpz", m.call("log_softmax", [z], {}, "lpz"));
    const Z = [0, -Infinity, 1, -Infinity, NaN, 1, 2, 3, 1000, -1000, 1000, 999];
    const [r] = await conform(m, [{ x: randomTensor([2, 300], 14, -50, 50), z: t(Z, [3, 4]) }]);
    expect(r!.pz!.data[1]).toBe(0);
    expect(r!.lpz!.data[1]).toBe(-Infinity);
  });
});

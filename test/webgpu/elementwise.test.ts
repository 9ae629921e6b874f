// WGSL kernels of the elementwise family on a real WebGPU device (Dawn on
// lavapipe here) against the float64 reference. Each graph computes several
// outputs; graphs with symbolic sizes are compiled once and run at two sizes.

import { describe, expect, it } from "vitest";
import { emitWgslProgram } from "../../compiler/codegen/wgsl/program.ts";
import { wgslExecutor } from "../../compiler/codegen/wgsl/execute.ts";
import type { Value } from "../../compiler/ir/graph.ts";
import { interpret } from "../../compiler/reference/interpreter.ts";
import type { RefTensor } from "../../compiler/reference/tensor.ts";
import type { AdapterClass } from "../../runtime/webgpu.ts";
import { randomTensor, t, TestModel, type JsArg } from "../support/build.ts";
import { expectAllClose } from "../support/conformance.ts";
import { gpuDevice } from "../support/webgpu.ts";

/** Compiles `m` once per adapter class and checks every output against the reference for each feed. */
async function conform(m: TestModel, feeds: Record<string, RefTensor>[], classes: AdapterClass[] = ["cpu"]): Promise<Record<string, RefTensor>[]> {
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

/** Random values in [lo, hi) with special values spread through. */
function values(shape: number[], seed: number, lo = -3, hi = 3, specials: number[] = []): RefTensor {
  const x = randomTensor(shape, seed, lo, hi);
  specials.forEach((v, i) => {
    if (i < x.size) x.data[(i * 7) % x.size] = v;
  });
  return x;
}

function ints(data: number[], shape: number[] = [data.length]): RefTensor {
  return t(data, shape, "i32");
}

const SPECIAL = [0, -0, NaN, Infinity, -Infinity, 1e-8, -1e-8, 1e-4, -1e-4, 30, -30, 80, -80];

describe("unary ops", () => {
  it("every f32 unary op over [N, 3, 5] at N = 1 and N = 6, with 0, ±inf, NaN and tiny values", async () => {
    const m = new TestModel();
    const x = m.input("x", "f32", ["N", 3, 5]);
    const cases: [string, Record<string, JsArg>][] = [
      ["neg", {}], ["relu", {}], ["sigmoid", {}], ["tanh", {}], ["exp", {}], ["log", {}], ["sqrt", {}], ["abs", {}],
      ["softplus", {}], ["gelu", {}], ["logsigmoid", {}], ["leaky_relu", { alpha: 0.2 }], ["elu", { alpha: 0.5 }],
      ["clip", { lo: -0.5, hi: 1.25 }], ["clip", { lo: 0 }], ["clip", { hi: -1 }], ["clip", { lo: -1e30, hi: 1e21 }],
    ];
    cases.forEach(([op, kw], k) => m.output(`${op}${k}`, m.call(op, [x], kw, `${op}${k}`)));
    const [small, large] = await conform(m, [{ x: values([1, 3, 5], 3, -5, 5, SPECIAL) }, { x: values([6, 3, 5], 4, -5, 5, SPECIAL) }]);
    expect(small!.relu1!.shape).toEqual([1, 3, 5]);
    expect(large!.relu1!.shape).toEqual([6, 3, 5]);
    // NaN propagates where the reference propagates it (index 14 holds the NaN in the second feed).
    for (const name of ["relu1", "clip13", "clip14", "clip15", "leaky_relu11", "softplus8"]) expect(Number.isNaN(large![name]!.data[14]), name).toBe(true);
  });

  it("smooth activations are accurate over their whole range, tails included", async () => {
    const m = new TestModel();
    const x = m.input("x", "f32", [1201]);
    for (const op of ["gelu", "tanh", "sigmoid", "softplus", "logsigmoid", "exp", "log", "elu"]) m.output(op, m.call(op, [x], {}, op));
    const xs = Array.from({ length: 1201 }, (_, i) => -15 + i * 0.025);
    await conform(m, [{ x: t(xs) }]);
  });

  it("softplus and logsigmoid at ±1000 stay finite and exact; sigmoid and tanh saturate without NaN", async () => {
    const m = new TestModel();
    const x = m.input("x", "f32", [8]);
    for (const op of ["softplus", "logsigmoid", "sigmoid", "tanh", "gelu"]) m.output(op, m.call(op, [x], {}, op));
    const [r] = await conform(m, [{ x: t([-1000, -100, -20, 0, 20, 100, 1000, 3e38]) }]);
    expect(Array.from(r!.softplus!.data.slice(4, 7))).toEqual([20, 100, 1000]);
    expect(Array.from(r!.sigmoid!.data.slice(0, 1))).toEqual([0]);
  });
});

describe("binary ops with broadcasting", () => {
  const OPS = ["add", "sub", "mul", "div", "maximum", "minimum", "pow"];
  const shapes: [string, (number | string)[], (number | string)[], Record<string, number>[]][] = [
    ["[N, 1] x [1, M]", ["N", 1], [1, "M"], [{ N: 3, M: 5 }, { N: 7, M: 1 }]],
    ["[3, 1, 4] x [2, 1]", [3, 1, 4], [2, 1], [{}]],
    ["scalar x [N, 3]", [], ["N", 3], [{ N: 2 }, { N: 5 }]],
    ["[N, 3] x [N, 3]", ["N", 3], ["N", 3], [{ N: 1 }, { N: 4 }]],
    ["[N, C, H, W] x [C, 1, 1]", ["N", 3, 4, 5], [3, 1, 1], [{ N: 2 }]],
    ["[2, 1, 4, 1] x [3, 1, 5]", [2, 1, 4, 1], [3, 1, 5], [{}]],
  ];
  it.each(shapes)("%s: add sub mul div maximum minimum pow", async (_name, sa, sb, envs) => {
    const m = new TestModel();
    const a = m.input("a", "f32", sa);
    const b = m.input("b", "f32", sb);
    for (const op of OPS) m.output(op, m.call(op, [a, b], {}, op));
    const concrete = (s: (number | string)[], env: Record<string, number>) => s.map((d) => (typeof d === "string" ? env[d]! : d));
    await conform(
      m,
      envs.map((env, k) => ({
        a: values(concrete(sa, env), 10 + k, -3, 3, [NaN, 0]),
        b: values(concrete(sb, env), 20 + k, 0.25, 3, k === 0 ? [0, -2, NaN] : [2]),
      })),
    );
  });

  it("pow follows Math.pow: negative bases with integer exponents, zeros, infinities, NaN", async () => {
    const m = new TestModel();
    const a = m.input("a", "f32", [24]);
    const b = m.input("b", "f32", [24]);
    m.output("pow", m.call("pow", [a, b], {}, "p"));
    const A = [-2, -2, -2, -0.5, 0, -0, 0, -0, Infinity, -Infinity, -Infinity, 1, -1, 2, 0.5, NaN, NaN, 1, 10, 3, -3, 2, 1e-3, -8];
    const B = [3, 2, 0.5, -3, -1, -1, 2, 3, 2, 3, -2, NaN, Infinity, -Infinity, Infinity, 0, 1, Infinity, 30, -40, 1e9, 100, 0.25, 1 / 3];
    await conform(m, [{ a: t(A), b: t(B) }]);
  });

  it("maximum and minimum propagate NaN from either side", async () => {
    const m = new TestModel();
    const a = m.input("a", "f32", [6]);
    const b = m.input("b", "f32", [6]);
    m.output("max", m.call("maximum", [a, b], {}, "mx"));
    m.output("min", m.call("minimum", [a, b], {}, "mn"));
    const [r] = await conform(m, [{ a: t([NaN, 1, NaN, -Infinity, 0, 2]), b: t([1, NaN, NaN, 1, -0, Infinity]) }]);
    expect(Array.from(r!.max!.data.slice(0, 3)).every(Number.isNaN)).toBe(true);
    expect(Array.from(r!.min!.data.slice(0, 3)).every(Number.isNaN)).toBe(true);
  });
});

describe("i32 ops", () => {
  it("add sub mul maximum minimum wrap like int32, with broadcasting", async () => {
    const m = new TestModel();
    const a = m.input("a", "i32", ["N", 4]);
    const b = m.input("b", "i32", [4]);
    for (const op of ["add", "sub", "mul", "maximum", "minimum"]) m.output(op, m.call(op, [a, b], {}, op));
    m.output("plus1", m.call("add", [a, 1], {}, "plus1"));
    const big = 2147483647;
    const [r] = await conform(m, [
      { a: ints([big, -big - 1, 65536, -7, 3, 0, 123456789, -1], [2, 4]), b: ints([1, -1, 65536, 3]) },
      { a: ints([5, 6, 7, 8], [1, 4]), b: ints([big, 2, -3, 0]) },
    ]);
    expect(r!.add!.data[0]).toBe(-2147483648);
    expect(r!.mul!.data[2]).toBe(0);
  });

  it("neg, abs and clip on i32 (neg and abs of -2^31 wrap to -2^31)", async () => {
    const m = new TestModel();
    const x = m.input("x", "i32", [6]);
    m.output("neg", m.call("neg", [x], {}, "ng"));
    m.output("abs", m.call("abs", [x], {}, "ab"));
    m.output("clip", m.call("clip", [x], { lo: -3, hi: 100 }, "cl"));
    m.output("clipLo", m.call("clip", [x], { lo: 7 }, "cl2"));
    const [r] = await conform(m, [{ x: ints([-2147483648, 2147483647, -5, 0, 5, 1000]) }]);
    expect(r!.neg!.data[0]).toBe(-2147483648);
    expect(r!.abs!.data[0]).toBe(-2147483648);
  });
});

describe("where and cast", () => {
  it("where with a broadcast condition over f32, i32 and bool values", async () => {
    const m = new TestModel();
    const c = m.input("c", "bool", ["N", 1]);
    const a = m.input("a", "f32", [1, 4]);
    const b = m.input("b", "f32", []);
    const ia = m.input("ia", "i32", ["N", 4]);
    const ba = m.input("ba", "bool", [4]);
    m.output("f", m.call("where", [c, a, b], {}, "wf"));
    m.output("i", m.call("where", [c, ia, 7], {}, "wi"));
    m.output("b", m.call("where", [c, ba, c], {}, "wb"));
    const feed = (n: number, seed: number) => ({
      c: t(Array.from({ length: n }, (_, k) => (k * seed) % 3 === 0 ? 1 : 0), [n, 1], "bool"),
      a: values([1, 4], seed, -2, 2, [NaN]),
      b: t([0.5], []),
      ia: ints(Array.from({ length: 4 * n }, (_, k) => k * 1000 - 7), [n, 4]),
      ba: t([1, 0, 1, 0], [4], "bool"),
    });
    const [r] = await conform(m, [feed(3, 1), feed(5, 2)]);
    expect(r!.f!.shape).toEqual([3, 4]);
  });

  it("casts between f32, i32 and bool: truncation toward zero, int32 wrap, NaN and inf to 0, nonzero to true", async () => {
    const m = new TestModel();
    const x = m.input("x", "f32", [16]);
    const i = m.input("i", "i32", [6]);
    const b = m.input("b", "bool", [3]);
    m.output("f2i", m.call("cast", [x], { dtype: "i32" }, "f2i"));
    m.output("f2b", m.call("cast", [x], { dtype: "bool" }, "f2b"));
    m.output("i2f", m.call("cast", [i], { dtype: "f32" }, "i2f"));
    m.output("i2b", m.call("cast", [i], { dtype: "bool" }, "i2b"));
    m.output("b2f", m.call("cast", [b], { dtype: "f32" }, "b2f"));
    m.output("b2i", m.call("cast", [b], { dtype: "i32" }, "b2i"));
    const X = [2.7, -2.7, 0.5, -0.5, -0, NaN, Infinity, -Infinity, 3e9, -3e9, 2147483648, -2147483648, 1e10, -1e20, 16777217, 123.99];
    const [r] = await conform(m, [{ x: t(X), i: ints([0, 1, -1, 16777217, -2147483648, 2147483647]), b: t([1, 0, 1], [3], "bool") }]);
    expect(Array.from(r!.f2i!.data.slice(0, 12))).toEqual([2, -2, 0, 0, 0, 0, 0, 0, -1294967296, 1294967296, -2147483648, -2147483648]);
    expect(Array.from(r!.f2b!.data.slice(0, 8))).toEqual([1, 1, 1, 1, 0, 0, 1, 1]);
  });
});

describe("dispatch and code", () => {
  it("more than 65535 workgroups use the second dispatch dimension", async () => {
    const m = new TestModel();
    const x = m.input("x", "f32", ["N", 1024]);
    const bias = m.input("bias", "f32", [1024]);
    m.output("y", m.call("add", [x, bias], {}, "y"));
    const n = 4100; // 4100 * 1024 / 64 = 65600 workgroups
    const [r] = await conform(m, [{ x: randomTensor([n, 1024], 5), bias: randomTensor([1024], 6) }]);
    expect(r!.y!.shape).toEqual([n, 1024]);
  });

  it("the broadcast add kernel matches its golden WGSL", async () => {
    const m = new TestModel();
    const x = m.input("x", "f32", ["N", 3, 4, 5]);
    const bias = m.input("bias", "f32", [3, 1, 1]);
    const y = m.call("add", [x, bias], {}, "y");
    m.output("y", y);
    const program = emitWgslProgram(m.graph, [y as Value]);
    await expect(program.passes[0]!.code.cpu).toMatchFileSnapshot("__golden__/elementwise-add-broadcast.wgsl");
  });
});

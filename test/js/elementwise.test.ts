// JS kernels of the elementwise family against the float64 reference.

import { describe, expect, it } from "vitest";
import { emitProgram } from "../../compiler/codegen/js/program.ts";
import type { Value } from "../../compiler/ir/graph.ts";
import type { DType } from "../../compiler/ir/types.ts";
import type { RefTensor } from "../../compiler/reference/tensor.ts";
import { expectJsMatchesReference } from "../support/conformance.ts";
import { randomTensor, t, TestModel, type JsArg } from "../support/build.ts";

type Shape = (number | string)[];
type Feed = { dtype?: DType; shape: Shape };

/**
 * Builds `y = callee(...)` over named inputs (strings in `positional` that
 * name an input become that input) and checks the JS target against the
 * reference for each set of feeds.
 */
function check(callee: string, inputs: Record<string, Feed>, positional: JsArg[], keywords: Record<string, JsArg>, feeds: Record<string, RefTensor>[]): RefTensor[] {
  const m = new TestModel();
  const vals = new Map<string, Value>(Object.entries(inputs).map(([n, f]) => [n, m.input(n, f.dtype ?? "f32", f.shape)]));
  const args = positional.map((p) => (typeof p === "string" && vals.has(p) ? vals.get(p)! : p));
  m.output("y", m.call(callee, args, keywords));
  return feeds.map((f) => expectJsMatchesReference(m.graph, f).y!);
}

/** Random values in [lo, hi) with a few special values mixed in. */
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

describe("unary f32 ops", () => {
  const SPECIAL = [0, -0, NaN, Infinity, -Infinity, 1e-8, -1e-8];
  const cases: [string, Record<string, JsArg>, number, number][] = [
    ["neg", {}, -3, 3],
    ["relu", {}, -3, 3],
    ["sigmoid", {}, -20, 20],
    ["tanh", {}, -5, 5],
    ["exp", {}, -10, 10],
    ["log", {}, 0.01, 10],
    ["sqrt", {}, 0, 10],
    ["abs", {}, -3, 3],
    ["softplus", {}, -100, 100],
    ["gelu", {}, -10, 10],
    ["logsigmoid", {}, -100, 100],
    ["leaky_relu", { alpha: 0.2 }, -3, 3],
    ["elu", { alpha: 0.5 }, -5, 5],
    ["clip", { lo: -0.5, hi: 1.25 }, -3, 3],
    ["clip", { lo: 0 }, -3, 3],
    ["clip", { hi: -1 }, -3, 3],
  ];
  it.each(cases)("%s %o over [N, 3, 5] for N = 1 and N = 4, with 0, ±Infinity, NaN", (op, kw, lo, hi) => {
    const outs = check(op, { x: { shape: ["N", 3, 5] } }, ["x"], kw, [
      { x: values([1, 3, 5], 3, lo, hi, SPECIAL) },
      { x: values([4, 3, 5], 4, lo, hi, SPECIAL) },
    ]);
    expect(outs[1]!.shape).toEqual([4, 3, 5]);
  });

  it("gelu is accurate to f32 precision over its whole range, tails included", () => {
    const xs = Array.from({ length: 601 }, (_, i) => -15 + i * 0.05);
    check("gelu", { x: { shape: [601] } }, ["x"], {}, [{ x: t(xs) }]);
  });

  it("log and sqrt of negatives give NaN as the reference", () => {
    const x = t([-1, -0, 0, 2, -Infinity, Infinity]);
    const [l] = check("log", { x: { shape: [6] } }, ["x"], {}, [{ x }]);
    expect(Number.isNaN(l!.data[0])).toBe(true);
    check("sqrt", { x: { shape: [6] } }, ["x"], {}, [{ x }]);
  });

  it("softplus and logsigmoid stay finite and exact at ±1000", () => {
    const x = t([-1000, -50, -20, 0, 20, 50, 1000]);
    const [sp] = check("softplus", { x: { shape: [7] } }, ["x"], {}, [{ x }]);
    expect(sp!.data[6]).toBe(1000);
    expect(sp!.data[0]).toBe(0);
    const [ls] = check("logsigmoid", { x: { shape: [7] } }, ["x"], {}, [{ x }]);
    expect(ls!.data[0]).toBe(-1000);
  });

  it("works on a rank-0 input", () => {
    check("tanh", { x: { shape: [] } }, ["x"], {}, [{ x: t([0.3], []) }]);
  });
});

describe("unary i32 ops", () => {
  const edge = [0, 1, -1, 7, -7, 2147483647, -2147483648, 12345, -99999];
  it.each([["neg"], ["abs"]])("%s wraps like int32", (op) => {
    const [y] = check(op, { x: { dtype: "i32", shape: [9] } }, ["x"], {}, [{ x: ints(edge) }]);
    expect(y!.data[6]).toBe(-2147483648);
  });
  it("clip on i32", () => {
    const [y] = check("clip", { x: { dtype: "i32", shape: [9] } }, ["x"], { lo: -5, hi: 100 }, [{ x: ints(edge) }]);
    expect(Array.from(y!.data)).toEqual([0, 1, -1, 7, -5, 100, -5, 100, -5]);
  });
});

describe("binary ops with broadcasting", () => {
  const OPS = ["add", "sub", "mul", "div", "maximum", "minimum", "pow"];
  const layouts: [string, Shape, Shape, number[][]][] = [
    ["same shape", ["N", 4], ["N", 4], [[2, 4], [2, 4], [5, 4], [5, 4]]],
    ["[N, 1] x [1, M]", ["N", 1], [1, 6], [[3, 1], [1, 6], [7, 1], [1, 6]]],
    ["[3, 1, 4] x [2, 1]", [3, 1, 4], [2, 1], [[3, 1, 4], [2, 1], [3, 1, 4], [2, 1]]],
    ["[N, C, H, W] x [C, 1, 1]", ["N", 3, 2, 5], [3, 1, 1], [[1, 3, 2, 5], [3, 1, 1], [2, 3, 2, 5], [3, 1, 1]]],
    ["[N, 1, W] x [1, L, 1]", ["N", 1, 4], [1, "L", 1], [[2, 1, 4], [1, 3, 1], [3, 1, 4], [1, 5, 1]]],
    ["scalar x tensor", [], ["N", 3], [[], [2, 3], [], [6, 3]]],
    ["tensor x scalar", ["N", 3], [], [[2, 3], [], [6, 3]]],
    ["[N, 5] x [5]", ["N", 5], [5], [[2, 5], [5], [4, 5]]],
  ];
  for (const op of OPS) {
    it.each(layouts)(`${op}: %s, two sizes`, (_name, sa, sb, shapes) => {
      const feeds: Record<string, RefTensor>[] = [];
      for (let k = 0; k + 1 < shapes.length; k += 2) {
        // pow: positive bases so fractional exponents stay real.
        const [lo, hi] = op === "pow" ? [0.1, 3] : [-3, 3];
        feeds.push({ a: values(shapes[k]!, k + 1, lo, hi), b: values(shapes[k + 1]!, k + 11, op === "div" ? 0.5 : -3, 3) });
      }
      if (shapes.length === 3) feeds.push({ a: values(shapes[2]!, 9), b: values(shapes[1]!, 19) });
      check(op, { a: { shape: sa }, b: { shape: sb } }, ["a", "b"], {}, feeds);
    });
  }

  it("maximum and minimum propagate NaN from either side", () => {
    const a = t([NaN, 1, NaN, -Infinity, 2]);
    const b = t([1, NaN, NaN, 0, 2]);
    for (const op of ["maximum", "minimum"]) {
      const [y] = check(op, { a: { shape: [5] }, b: { shape: [5] } }, ["a", "b"], {}, [{ a, b }]);
      expect(y!.data.slice(0, 3).every(Number.isNaN)).toBe(true);
    }
  });

  it("a literal operand is a scalar constant", () => {
    check("sub", { x: { shape: ["N", 3] } }, [1.5, "x"], {}, [{ x: values([4, 3], 2) }]);
  });
});

describe("i32 arithmetic wraps like int32", () => {
  const a = ints([2147483647, -2147483648, 100000, -7, 65536, 3, 0, -1]);
  const b = ints([1, -1, 100000, 2, 65536, -5, -2147483648, 2147483647]);
  it.each([["add"], ["sub"], ["mul"], ["maximum"], ["minimum"]])("%s", (op) => {
    check(op, { a: { dtype: "i32", shape: [8] }, b: { dtype: "i32", shape: [8] } }, ["a", "b"], {}, [{ a, b }]);
  });
  it("add wraps at 2^31 and mul keeps the low 32 bits", () => {
    const [s] = check("add", { a: { dtype: "i32", shape: [8] }, b: { dtype: "i32", shape: [8] } }, ["a", "b"], {}, [{ a, b }]);
    expect(s!.data[0]).toBe(-2147483648);
    const [p] = check("mul", { a: { dtype: "i32", shape: [8] }, b: { dtype: "i32", shape: [8] } }, ["a", "b"], {}, [{ a, b }]);
    expect(p!.data[2]).toBe(Math.imul(100000, 100000));
  });
  it("broadcasts i32 with an integer literal: [N, 1] + [1, 4] + 1", () => {
    const m = new TestModel();
    const x = m.input("x", "i32", ["N", 1]);
    const y = m.input("y", "i32", [1, 4]);
    m.output("z", m.call("add", [m.call("mul", [x, y]), 1]));
    expectJsMatchesReference(m.graph, { x: ints([1, -2, 3], [3, 1]), y: ints([5, 6, 7, 2147483647], [1, 4]) });
  });
});

describe("where", () => {
  it("broadcasts the condition [N, 1] against [N, 4] and a scalar", () => {
    const m = new TestModel();
    const c = m.input("c", "bool", ["N", 1]);
    const a = m.input("a", "f32", ["N", 4]);
    m.output("y", m.call("where", [c, a, -1]));
    for (const n of [3, 5]) {
      const cond = t(Array.from({ length: n }, (_, i) => i % 2), [n, 1], "bool");
      expectJsMatchesReference(m.graph, { c: cond, a: values([n, 4], n) });
    }
  });
  it("broadcasts all three operands: [4] x [3, 1] x [1, 1]", () => {
    check("where", { c: { dtype: "bool", shape: [4] }, a: { shape: [3, 1] }, b: { shape: [1, 1] } }, ["c", "a", "b"], {}, [
      { c: t([1, 0, 0, 1], [4], "bool"), a: values([3, 1], 1), b: values([1, 1], 2) },
    ]);
  });
  it("selects i32 values with a same-shape condition", () => {
    check("where", { c: { dtype: "bool", shape: [5] }, a: { dtype: "i32", shape: [5] }, b: { dtype: "i32", shape: [5] } }, ["c", "a", "b"], {}, [
      { c: t([1, 0, 1, 0, 0], [5], "bool"), a: ints([1, 2, 3, 4, 5]), b: ints([-1, -2, -3, -4, -5]) },
    ]);
  });
});

describe("cast", () => {
  const FLOATS = [0, -0, 0.5, -0.5, 2.7, -2.7, 1e9, -1e9, 3e9, NaN, Infinity, -Infinity, 1e-30];
  it("f32 -> i32 truncates toward zero; NaN and ±Infinity give 0", () => {
    const [y] = check("cast", { x: { shape: [13] } }, ["x"], { dtype: "i32" }, [{ x: t(FLOATS) }]);
    expect(Array.from(y!.data.slice(0, 6))).toEqual([0, 0, 0, 0, 2, -2]);
    expect(y!.data[9]).toBe(0);
  });
  it("f32 -> bool is nonzero (NaN is false, as the reference)", () => {
    const [y] = check("cast", { x: { shape: [13] } }, ["x"], { dtype: "bool" }, [{ x: t(FLOATS) }]);
    expect(Array.from(y!.data)).toEqual([0, 0, 1, 1, 1, 1, 1, 1, 1, 0, 1, 1, 1]);
  });
  it.each([
    ["i32", "f32"],
    ["i32", "bool"],
    ["bool", "f32"],
    ["bool", "i32"],
  ] as [DType, DType][])("%s -> %s", (from, to) => {
    const data = from === "bool" ? [0, 1, 1, 0] : [0, -3, 16777217, 2147483647];
    check("cast", { x: { dtype: from, shape: ["N"] } }, ["x"], { dtype: to }, [{ x: t(data, [4], from) }, { x: t(data.slice(0, 2), [2], from) }]);
  });
  it("round trip f32 -> i32 -> f32 over [N, 3]", () => {
    const m = new TestModel();
    const x = m.input("x", "f32", ["N", 3]);
    m.output("y", m.call("cast", [m.call("cast", [x], { dtype: "i32" })], { dtype: "f32" }));
    expectJsMatchesReference(m.graph, { x: values([4, 3], 5, -10, 10) });
  });
});

describe("generated code", () => {
  it("broadcasting add: nested loops with hoisted offsets and a contiguous inner loop", async () => {
    const m = new TestModel();
    const a = m.input("a", "f32", ["N", 1, 4]);
    const b = m.input("b", "f32", [3, 1]);
    m.output("y", m.call("add", [a, b]));
    const [kernel] = emitProgram(m.graph).kernels;
    expect(kernel).toContain("const N = S.N;");
    await expect(`${kernel}\n`).toMatchFileSnapshot("__golden__/add_broadcast.js");
  });
  it("same-shape and scalar operands use one flat loop", () => {
    const m = new TestModel();
    const a = m.input("a", "f32", ["N", 8]);
    m.output("y", m.call("mul", [m.call("add", [a, a]), 2]));
    const kernels = emitProgram(m.graph).kernels;
    expect(kernels[0]).toContain("for (let i = 0; i < n; i++) y0[i] = x0[i] + x1[i];");
    expect(kernels[1]).toContain("const b = x1[0];");
    expect(kernels[1]).toContain("y0[i] = x0[i] * b;");
  });
});

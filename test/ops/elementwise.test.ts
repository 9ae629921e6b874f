import { describe, expect, it } from "vitest";
import { Dim, shapeToString } from "../../compiler/ir/dims.ts";
import { typeToString } from "../../compiler/ir/types.ts";
import { broadcastShapes } from "../../compiler/ops/broadcast.ts";
import { erf, erfc, gelu, logsigmoid, sigmoid, softplus } from "../../compiler/ops/elementwise.ts";
import { diagnosticsOf, expectClose, t, TestModel } from "../support/build.ts";

/** Build `y = callee(inputs..., kw)` over named inputs and run it. */
function run1(
  callee: string,
  inputs: Record<string, { dtype?: "f32" | "i32" | "bool"; shape: (number | string)[]; value: ReturnType<typeof t> }>,
  positional: (string | number | null)[],
  kw: Record<string, unknown> = {},
) {
  const m = new TestModel();
  const vals = new Map(Object.entries(inputs).map(([n, i]) => [n, m.input(n, i.dtype ?? "f32", i.shape)]));
  const args = positional.map((p) => (typeof p === "string" && vals.has(p) ? vals.get(p)! : p));
  const y = m.call(callee, args, kw as never);
  m.output("y", y);
  const feeds = Object.fromEntries(Object.entries(inputs).map(([n, i]) => [n, i.value]));
  return { y, out: m.run(feeds).outputs.y! };
}

describe("broadcasting", () => {
  const N = Dim.sym("N");
  const L = Dim.sym("L");
  it("aligns trailing dims and expands 1s, symbolic dims included", () => {
    const r = broadcastShapes([N, Dim.of(1)], [Dim.of(1), Dim.of(4)]);
    expect(r.ok && shapeToString(r.shape)).toBe("[N, 4]");
    const s = broadcastShapes([], [N, Dim.of(3)]);
    expect(s.ok && shapeToString(s.shape)).toBe("[N, 3]");
    const u = broadcastShapes([Dim.of(2), N, Dim.of(1)], [N, Dim.of(5)]);
    expect(u.ok && shapeToString(u.shape)).toBe("[2, N, 5]");
  });
  it("refuses different symbolic dims and symbolic vs constant", () => {
    expect(broadcastShapes([N], [L])).toEqual({ ok: false, dim: 0, a: N, b: L });
    expect(broadcastShapes([N, Dim.of(3)], [Dim.of(5), Dim.of(3)]).ok).toBe(false);
  });
});

describe("binary ops", () => {
  it("add/sub/mul/div broadcast [N,1] with [1,M]", () => {
    const a = t([1, 2], [2, 1]);
    const b = t([10, 20, 30], [1, 3]);
    const cases: Record<string, number[]> = {
      add: [11, 21, 31, 12, 22, 32],
      sub: [-9, -19, -29, -8, -18, -28],
      mul: [10, 20, 30, 20, 40, 60],
      div: [0.1, 0.05, 1 / 30, 0.2, 0.1, 2 / 30],
    };
    for (const [op, want] of Object.entries(cases)) {
      const { y, out } = run1(op, { a: { shape: ["N", 1], value: a }, b: { shape: [1, 3], value: b } }, ["a", "b"]);
      expect(typeToString(y.type)).toBe("f32[N, 3]");
      expect(out.shape).toEqual([2, 3]);
      expectClose(out.data, want, 1e-15);
    }
  });

  it("a number broadcasts as an f32 scalar constant, on either side", () => {
    const x = t([1, 2, 3], [3]);
    expectClose(run1("sub", { x: { shape: ["N"], value: x } }, [10, "x"]).out.data, [9, 8, 7]);
    expectClose(run1("div", { x: { shape: ["N"], value: x } }, ["x", 2]).out.data, [0.5, 1, 1.5]);
    const m = new TestModel();
    const y = m.call("mul", [m.input("x", "f32", ["N", 3]), 2]);
    expect(y.node.inputs[1]!.node.op).toBe("const");
    expect(typeToString(y.type)).toBe("f32[N, 3]");
  });

  it("maximum, minimum, pow (number or tensor exponent)", () => {
    const a = t([1, -2, 3, 0.5], [4]);
    const b = t([0, 0, 5, 0.25], [4]);
    const ins = { a: { shape: [4], value: a }, b: { shape: [4], value: b } };
    expectClose(run1("maximum", ins, ["a", "b"]).out.data, [1, 0, 5, 0.5]);
    expectClose(run1("minimum", ins, ["a", "b"]).out.data, [0, -2, 3, 0.25]);
    expectClose(run1("pow", ins, ["a", "b"]).out.data, [1, 1, 243, Math.pow(0.5, 0.25)]);
    expectClose(run1("pow", { x: { shape: [4], value: a } }, ["x", 2]).out.data, [1, 4, 9, 0.25]);
    expectClose(run1("pow", { x: { shape: [4], value: a } }, ["x"], { p: 3 }).out.data, [1, -8, 27, 0.125]);
  });

  it("i32 arithmetic wraps like int32, and integer literals next to i32 stay i32", () => {
    const x = t([2147483647, -3, 7], [3], "i32");
    const r = run1("add", { x: { dtype: "i32", shape: [3], value: x } }, ["x", 1]);
    expect(r.y.type.dtype).toBe("i32");
    expect(r.out.toArray()).toEqual([-2147483648, -2, 8]);
    const m = run1("mul", { x: { dtype: "i32", shape: [3], value: x } }, ["x", "x"]);
    expect(m.out.toArray()).toEqual([1, 9, 49]);
  });

  it("E203 names both shapes and the dim", () => {
    const m = new TestModel();
    const a = m.input("a", "f32", ["N", 10]);
    const b = m.input("b", "f32", ["N", 5]);
    const [d] = diagnosticsOf(() => m.call("add", [a, b], {}, "h"));
    expect(d!.code).toBe("E203");
    expect(d!.message).toBe("add 'h': cannot broadcast f32[N, 10] with f32[N, 5]: dim 1 is 10 vs 5");
    expect(d!.notes).toEqual(["a is f32[N, 10]", "b is f32[N, 5]"]);
  });

  it("E203 for two different symbols", () => {
    const m = new TestModel();
    const a = m.input("a", "f32", ["N"]);
    const b = m.input("b", "f32", ["L"]);
    const [d] = diagnosticsOf(() => m.call("mul", [a, b]));
    expect(d!.code).toBe("E203");
    expect(d!.message).toContain("cannot broadcast f32[N] with f32[L]: dim 0 is N vs L");
  });

  it("E213 for mixed dtypes and for ops not defined on the dtype", () => {
    const m = new TestModel();
    const f = m.input("f", "f32", ["N"]);
    const i = m.input("i", "i32", ["N"]);
    const [d1] = diagnosticsOf(() => m.call("add", [f, i]));
    expect(d1!.code).toBe("E213");
    expect(d1!.message).toContain("add needs operands of the same dtype, found f32[N] and i32[N]");
    const [d2] = diagnosticsOf(() => m.call("div", [i, i]));
    expect(d2!.code).toBe("E213");
    expect(d2!.message).toContain("div needs f32, found i32[N]");
    const [d3] = diagnosticsOf(() => m.call("relu", [i]));
    expect(d3!.code).toBe("E213");
    expect(d3!.message).toContain("relu needs f32, found i32[N]");
    const [d4] = diagnosticsOf(() => m.call("add", [i, 0.5]));
    expect(d4!.code).toBe("E213");
    expect(d4!.message).toContain("found i32[N] and f32[]");
  });
});

describe("scalar math", () => {
  it("erf matches known values to 1e-15", () => {
    const known: [number, number][] = [
      [0.5, 0.5204998778130465],
      [1, 0.8427007929497149],
      [2, 0.9953222650189527],
      [0.1, 0.1124629160182849],
      [3, 0.9999779095030014],
    ];
    for (const [x, v] of known) {
      expect(Math.abs(erf(x) - v)).toBeLessThan(1e-15);
      expect(Math.abs(erf(-x) + v)).toBeLessThan(1e-15);
    }
    expect(erf(0)).toBe(0);
  });

  it("erfc keeps relative precision in the tail", () => {
    // mpmath, 40 digits
    expect(Math.abs(erfc(5) / 1.5374597944280348502e-12 - 1)).toBeLessThan(1e-13);
    expect(Math.abs(erfc(10) / 2.0884875837625447570e-45 - 1)).toBeLessThan(1e-13);
    expect(Math.abs(erfc(1.5) / 0.033894853524689272 - 1)).toBeLessThan(1e-13);
    expect(Math.abs(erfc(-1) - 1.8427007929497149)).toBeLessThan(1e-15);
  });

  it("gelu is the exact erf form", () => {
    // torch.nn.functional.gelu in float64
    expect(Math.abs(gelu(1) - 0.8413447460685429)).toBeLessThan(1e-15);
    expect(Math.abs(gelu(-1) + 0.15865525393145707)).toBeLessThan(1e-15);
    expect(Math.abs(gelu(0.5) - 0.34573123063700656)).toBeLessThan(1e-15);
    // x·Φ(x) deep in the left tail: -10·Φ(-10) = -7.619853024160527e-23
    expect(Math.abs(gelu(-10) / -7.619853024160527e-23 - 1)).toBeLessThan(1e-12);
  });

  it("softplus, logsigmoid and sigmoid are stable at ±1000", () => {
    expect(softplus(1000)).toBe(1000);
    expect(softplus(-1000)).toBe(0);
    expect(softplus(0)).toBeCloseTo(Math.LN2, 15);
    expect(Math.abs(softplus(-30) / 9.357622968839737e-14 - 1)).toBeLessThan(1e-14);
    expect(logsigmoid(-1000)).toBe(-1000);
    expect(logsigmoid(1000) === 0).toBe(true);
    expect(logsigmoid(0)).toBeCloseTo(-Math.LN2, 15);
    expect(sigmoid(-1000)).toBe(0);
    expect(sigmoid(1000)).toBe(1);
    expect(sigmoid(0)).toBe(0.5);
  });
});

describe("unary ops", () => {
  const xs = [-1000, -2, -0.5, 0, 0.5, 2, 1000];
  const x = { x: { shape: ["N"], value: t(xs) } };
  const cases: [string, Record<string, number>, (v: number) => number][] = [
    ["relu", {}, (v) => Math.max(v, 0)],
    ["neg", {}, (v) => -v],
    ["abs", {}, (v) => Math.abs(v)],
    ["sigmoid", {}, (v) => (v > 500 ? 1 : v < -500 ? 0 : 1 / (1 + Math.exp(-v)))],
    ["tanh", {}, Math.tanh],
    ["softplus", {}, (v) => (v > 500 ? v : v < -500 ? 0 : Math.log(1 + Math.exp(v)))],
    ["logsigmoid", {}, (v) => (v > 500 ? 0 : v < -500 ? v : -Math.log(1 + Math.exp(-v)))],
    ["gelu", {}, (v) => (v > 500 ? v : v < -500 ? 0 : gelu(v))],
    ["leaky_relu", {}, (v) => (v > 0 ? v : 0.01 * v)],
    ["leaky_relu", { alpha: 0.2 }, (v) => (v > 0 ? v : 0.2 * v)],
    ["elu", {}, (v) => (v > 0 ? v : Math.exp(v) - 1)],
    ["elu", { alpha: 2 }, (v) => (v > 0 ? v : 2 * (Math.exp(v) - 1))],
  ];
  for (const [op, kw, f] of cases) {
    it(`${op} ${JSON.stringify(kw)}`, () => {
      const { y, out } = run1(op, x, ["x"], kw);
      expect(typeToString(y.type)).toBe("f32[N]");
      expectClose(out.data, xs.map(f), 1e-14);
    });
  }

  it("exp, log, sqrt", () => {
    const v = { x: { shape: [3], value: t([1, 4, 0.25]) } };
    expectClose(run1("exp", v, ["x"]).out.data, [Math.E, Math.exp(4), Math.exp(0.25)]);
    expectClose(run1("log", v, ["x"]).out.data, [0, Math.log(4), Math.log(0.25)]);
    expectClose(run1("sqrt", v, ["x"]).out.data, [1, 2, 0.5]);
  });

  it("neg and abs work on i32", () => {
    const v = { x: { dtype: "i32" as const, shape: [3], value: t([3, -4, 0], [3], "i32") } };
    expect(run1("neg", v, ["x"]).out.toArray()).toEqual([-3, 4, 0]);
    expect(run1("abs", v, ["x"]).out.toArray()).toEqual([3, 4, 0]);
  });

  it("clip with both bounds, one bound, and E404 when lo > hi", () => {
    const v = { x: { shape: [5], value: t([-3, -1, 0, 1, 3]) } };
    expectClose(run1("clip", v, ["x", -1, 2]).out.data, [-1, -1, 0, 1, 2]);
    expectClose(run1("clip", v, ["x"], { lo: 0 }).out.data, [0, 0, 0, 1, 3]);
    expectClose(run1("clip", v, ["x"], { hi: 0.5 }).out.data, [-3, -1, 0, 0.5, 0.5]);
    const m = new TestModel();
    const xin = m.input("x", "f32", ["N"]);
    const [d] = diagnosticsOf(() => m.call("clip", [xin, 2, 1], {}, "c"));
    expect(d!.code).toBe("E404");
    expect(d!.message).toBe("clip 'c': clip needs lo <= hi, found lo=2 and hi=1");
    const [d2] = diagnosticsOf(() => m.call("clip", [xin]));
    expect(d2!.code).toBe("E401");
    expect(d2!.message).toContain("clip needs lo=, hi= or both");
  });
});

describe("where and cast", () => {
  it("where broadcasts condition and both branches", () => {
    const m = new TestModel();
    const c = m.input("c", "bool", ["N", 1]);
    const a = m.input("a", "f32", [3]);
    const y = m.call("where", [c, a, 0]);
    expect(typeToString(y.type)).toBe("f32[N, 3]");
    m.output("y", y);
    const out = m.run({ c: t([1, 0], [2, 1], "bool"), a: t([1, 2, 3]) }).outputs.y!;
    expect(out.toArray()).toEqual([1, 2, 3, 0, 0, 0]);
  });

  it("where requires a bool condition (E213) and broadcastable shapes (E203)", () => {
    const m = new TestModel();
    const f = m.input("f", "f32", ["N"]);
    const c = m.input("c", "bool", [4]);
    const a = m.input("a", "f32", [3]);
    const [d1] = diagnosticsOf(() => m.call("where", [f, f, f]));
    expect(d1!.code).toBe("E213");
    expect(d1!.message).toContain("where needs a bool condition, found f32[N]");
    const [d2] = diagnosticsOf(() => m.call("where", [c, a, a]));
    expect(d2!.code).toBe("E203");
    expect(d2!.message).toContain("cannot broadcast bool[4] with f32[3]: dim 0 is 4 vs 3");
  });

  it("cast truncates toward zero and maps nonzero to true", () => {
    const v = { x: { shape: [4], value: t([1.7, -1.7, 0, 2]) } };
    const i = run1("cast", v, ["x", "i32"]);
    expect(i.y.type.dtype).toBe("i32");
    expect(i.out.toArray()).toEqual([1, -1, 0, 2]);
    expect(run1("cast", v, ["x"], { dtype: "bool" }).out.toArray()).toEqual([1, 1, 0, 1]);
    const [d] = diagnosticsOf(() => {
      const m = new TestModel();
      m.call("cast", [m.input("x", "f32", [2]), "f64"]);
    });
    expect(d!.code).toBe("E404");
    expect(d!.message).toContain(`argument 'dtype' must be one of "f32", "i32", "bool", found "f64"`);
  });
});

import { describe, expect, it } from "vitest";
import type { Value } from "../../compiler/ir/graph.ts";
import { typeToString } from "../../compiler/ir/types.ts";
import type { RefTensor } from "../../compiler/reference/tensor.ts";
import { diagnosticsOf, expectClose, t, TestModel, type JsArg } from "../support/build.ts";

/** y = callee(x, ...rest, kw) over x: f32[shape]; returns the type and the value for `value`. */
function reduce1(callee: string, shape: (number | string)[], value: RefTensor, rest: JsArg[] = [], kw: Record<string, JsArg> = {}) {
  const m = new TestModel();
  const x = m.input("x", value.dtype, shape);
  const y: Value = m.call(callee, [x, ...rest], kw);
  m.output("y", y);
  return { type: typeToString(y.type), node: y.node, out: m.run({ x: value }).outputs.y! };
}

// x = [[1, 2, 3], [4, 5, 6]]
const X = t([1, 2, 3, 4, 5, 6], [2, 3]);

describe("reductions", () => {
  it("sum over all axes by default gives a scalar", () => {
    const r = reduce1("sum", ["N", 3], X);
    expect(r.type).toBe("f32[]");
    expect(r.node.attrs).toEqual({ kind: "sum", axes: [0, 1], keepdims: false });
    expect(r.out.toArray()).toEqual([21]);
  });

  it("each kind along one axis, negative axes and keepdims", () => {
    expect(reduce1("sum", ["N", 3], X, [0]).out.toArray()).toEqual([5, 7, 9]);
    expect(reduce1("mean", ["N", 3], X, [-1]).out.toArray()).toEqual([2, 5]);
    expect(reduce1("max", ["N", 3], X, [1]).out.toArray()).toEqual([3, 6]);
    expect(reduce1("min", ["N", 3], X, [0]).out.toArray()).toEqual([1, 2, 3]);
    const lse = reduce1("logsumexp", ["N", 3], X, [1]);
    expectClose(lse.out.data, [Math.log(Math.exp(1) + Math.exp(2) + Math.exp(3)), Math.log(Math.exp(4) + Math.exp(5) + Math.exp(6))], 1e-15);
    const k = reduce1("sum", ["N", 3], X, [], { axis: -1, keepdims: true });
    expect(k.type).toBe("f32[N, 1]");
    expect(k.out.shape).toEqual([2, 1]);
    expect(k.out.toArray()).toEqual([6, 15]);
  });

  it("a list of axes, normalised and sorted in the IR", () => {
    const x = t(Array.from({ length: 24 }, (_, i) => i), [2, 3, 4]);
    const r = reduce1("sum", ["N", 3, 4], x, [[-1, 0]]);
    expect(r.node.attrs).toEqual({ kind: "sum", axes: [0, 2], keepdims: false });
    expect(r.type).toBe("f32[3]");
    // sum over n and k of n*12 + j*4 + k: 2*(0+1+2+3) + 4*(j*4)*2/... computed directly
    const want = [0, 1, 2].map((j) => {
      let s = 0;
      for (let n = 0; n < 2; n++) for (let k = 0; k < 4; k++) s += n * 12 + j * 4 + k;
      return s;
    });
    expect(r.out.toArray()).toEqual(want);
    const m = reduce1("mean", ["N", 3, 4], x, [[2, 0]], { keepdims: true });
    expect(m.type).toBe("f32[1, 3, 1]");
    expectClose(m.out.data, want.map((v) => v / 8));
  });

  it("sum and max of i32 stay i32", () => {
    const r = reduce1("sum", ["N"], t([1, 2, 3], [3], "i32"));
    expect(r.type).toBe("i32[]");
    expect(r.out.toArray()).toEqual([6]);
    expect(reduce1("max", ["N"], t([1, 7, 3], [3], "i32")).out.toArray()).toEqual([7]);
  });

  it("rank-0 input: the reduction of a scalar is itself", () => {
    const r = reduce1("sum", [], t([2.5], []));
    expect(r.type).toBe("f32[]");
    expect(r.node.attrs).toEqual({ kind: "sum", axes: [], keepdims: false });
    expect(r.out.toArray()).toEqual([2.5]);
    expect(reduce1("logsumexp", [], t([-3], [])).out.toArray()).toEqual([-3]);
  });

  it("logsumexp is stable at ±1000 and handles all -inf", () => {
    expectClose(reduce1("logsumexp", [3], t([1000, 1000, 1000])).out.data, [1000 + Math.log(3)], 1e-15);
    expectClose(reduce1("logsumexp", [2], t([-1000, -1000])).out.data, [-1000 + Math.LN2], 1e-15);
    expect(reduce1("logsumexp", [2], t([-Infinity, -Infinity])).out.toArray()).toEqual([-Infinity]);
  });

  it("E209 for an axis out of range and a repeated axis", () => {
    const m = new TestModel();
    const x = m.input("x", "f32", ["N", 3]);
    const [d1] = diagnosticsOf(() => m.call("sum", [x, 2], {}, "s"));
    expect(d1!.code).toBe("E209");
    expect(d1!.message).toBe("sum 's': axis 2 is out of range for f32[N, 3] (rank 2)");
    expect(d1!.hint).toBe("use an axis in -2..1");
    const [d2] = diagnosticsOf(() => m.call("mean", [x, [1, -1]], {}, "s"));
    expect(d2!.code).toBe("E209");
    expect(d2!.message).toBe("mean 's': axis 1 of f32[N, 3] is given twice (as 1 and -1)");
    const [d3] = diagnosticsOf(() => m.call("max", [x, -3]));
    expect(d3!.code).toBe("E209");
    const s = m.input("s", "f32", []);
    const [d4] = diagnosticsOf(() => m.call("sum", [s, 0]));
    expect(d4!.code).toBe("E209");
    expect(d4!.hint).toBe("a rank-0 tensor has no axes; leave axis out");
  });

  it("E213 for mean of i32", () => {
    const m = new TestModel();
    const x = m.input("x", "i32", ["N"]);
    const [d] = diagnosticsOf(() => m.call("mean", [x]));
    expect(d!.code).toBe("E213");
    expect(d!.message).toContain("mean needs f32, found i32[N]");
  });
});

describe("argmax", () => {
  it("returns i32 indices, first index on ties", () => {
    const x = t([1, 3, 3, 0, 2, 2, 2, 1], [2, 4]);
    const r = reduce1("argmax", ["N", 4], x, [1]);
    expect(r.type).toBe("i32[N]");
    expect(r.node.attrs).toEqual({ axis: 1, keepdims: false });
    expect(r.out.toArray()).toEqual([1, 0]);
    const c = reduce1("argmax", ["N", 4], x, [0]);
    expect(c.out.toArray()).toEqual([1, 0, 0, 1]);
    expect(reduce1("argmax", ["N", 4], x, [], { axis: -1, keepdims: true }).type).toBe("i32[N, 1]");
  });

  it("needs an axis (E401) in range (E209)", () => {
    const m = new TestModel();
    const x = m.input("x", "f32", ["N", 4]);
    expect(diagnosticsOf(() => m.call("argmax", [x]))[0]!.code).toBe("E401");
    const [d] = diagnosticsOf(() => m.call("argmax", [x, 5]));
    expect(d!.code).toBe("E209");
    expect(d!.message).toContain("axis 5 is out of range for f32[N, 4] (rank 2)");
  });
});

describe("softmax and log_softmax", () => {
  it("default to the last axis and sum to one", () => {
    const r = reduce1("softmax", ["N", 3], X);
    expect(r.type).toBe("f32[N, 3]");
    expect(r.node.attrs).toEqual({ axis: 1 });
    const e = [Math.exp(-2), Math.exp(-1), 1];
    const z = e[0]! + e[1]! + e[2]!;
    expectClose(r.out.data, [...e, ...e].map((v) => v / z), 1e-15);
  });

  it("along axis 0", () => {
    const r = reduce1("softmax", ["N", 3], X, [0]);
    const p = 1 / (1 + Math.exp(3));
    expectClose(r.out.data, [p, p, p, 1 - p, 1 - p, 1 - p], 1e-15);
  });

  it("are stable at ±1000", () => {
    const x = t([1000, 0, -1000, 1000], [4]);
    const s = reduce1("softmax", [4], x);
    expectClose(s.out.data, [0.5, 0, 0, 0.5], 1e-15);
    const l = reduce1("log_softmax", [4], x);
    expectClose(l.out.data, [-Math.LN2, -1000 - Math.LN2, -2000 - Math.LN2, -Math.LN2], 1e-15);
    expect(l.out.data.every(Number.isFinite)).toBe(true);
  });

  it("E209 for a bad axis, E213 for i32", () => {
    const m = new TestModel();
    const x = m.input("x", "f32", ["N", 3]);
    const [d] = diagnosticsOf(() => m.call("log_softmax", [x], { axis: 2 }, "p"));
    expect(d!.code).toBe("E209");
    expect(d!.message).toBe("log_softmax 'p': axis 2 is out of range for f32[N, 3] (rank 2)");
    const i = m.input("i", "i32", ["N", 3]);
    const [e] = diagnosticsOf(() => m.call("softmax", [i]));
    expect(e!.code).toBe("E213");
    expect(e!.message).toContain("softmax needs f32, found i32[N, 3]");
  });
});

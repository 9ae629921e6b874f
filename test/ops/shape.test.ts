import { describe, expect, it } from "vitest";
import { Dim } from "../../compiler/ir/dims.ts";
import type { Value } from "../../compiler/ir/graph.ts";
import { typeToString } from "../../compiler/ir/types.ts";
import type { RefTensor } from "../../compiler/reference/tensor.ts";
import { diagnosticsOf, expectClose, t, TestModel, type JsArg } from "../support/build.ts";

const N = Dim.sym("N");
const L = Dim.sym("L");
const iota = (n: number) => Array.from({ length: n }, (_, i) => i);

/** y = callee(x, ...rest, kw) over x of the given (symbolic) shape; runs it on `value` when given. */
function shape1(callee: string, shape: (number | string)[], rest: JsArg[] = [], kw: Record<string, JsArg> = {}, value?: RefTensor) {
  const m = new TestModel();
  const x = m.input("x", value?.dtype ?? "f32", shape);
  const y: Value = m.call(callee, [x, ...rest], kw);
  m.output("y", y);
  return { type: typeToString(y.type), node: y.node, out: value ? m.run({ x: value }).outputs.y! : undefined };
}

function errorOf(f: (m: TestModel) => unknown) {
  const [d] = diagnosticsOf(() => f(new TestModel()));
  return d!;
}

describe("reshape and flatten", () => {
  it("infers -1 over symbolic dims", () => {
    const r = shape1("reshape", ["N", 6, 14, 14], [[N, -1]]);
    expect(r.type).toBe("f32[N, 1176]");
    expect(r.node.op).toBe("reshape");
    expect(shape1("reshape", ["N", "L", 4], [[-1, 4]]).type).toBe("f32[L*N, 4]");
    expect(shape1("reshape", ["N", "L", 4], [[-1, L, 2, 2]]).type).toBe("f32[N, L, 2, 2]");
    expect(shape1("reshape", ["N", 12], [[N, 3, -1]]).type).toBe("f32[N, 3, 4]");
  });

  it("keeps row-major data", () => {
    const r = shape1("reshape", [2, 3], [[3, 2]], {}, t(iota(6), [2, 3]));
    expect(r.out!.shape).toEqual([3, 2]);
    expect(r.out!.toArray()).toEqual(iota(6));
  });

  it("E207 on element-count mismatch, two -1, and non-divisible -1", () => {
    const d1 = errorOf((m) => m.call("reshape", [m.input("x", "f32", ["N", 6]), [N, 5]], {}, "r"));
    expect(d1.code).toBe("E207");
    expect(d1.message).toBe("reshape 'r': cannot reshape f32[N, 6] (6*N elements) into [N, 5] (5*N elements)");
    const d2 = errorOf((m) => m.call("reshape", [m.input("x", "f32", ["N", 6]), [-1, -1]]));
    expect(d2.code).toBe("E207");
    expect(d2.message).toContain("reshape target [-1, -1] has 2 sizes of -1; at most one can be inferred");
    const d3 = errorOf((m) => m.call("reshape", [m.input("x", "f32", ["N", 6]), [-1, 4]]));
    expect(d3.code).toBe("E207");
    expect(d3.message).toContain("cannot infer -1 in reshape target [-1, 4]: 6*N elements of f32[N, 6] are not divisible by 4");
    const d4 = errorOf((m) => m.call("reshape", [m.input("x", "f32", [12]), [0, -1]]));
    expect(d4.code).toBe("E212");
  });

  it("flatten collapses dims start..end", () => {
    expect(shape1("flatten", ["N", 16, 5, 5]).type).toBe("f32[N, 400]");
    expect(shape1("flatten", ["N", "L", 3, 4], [0, 1]).type).toBe("f32[L*N, 3, 4]");
    expect(shape1("flatten", ["N", 2, 3, 4], [], { start: 1, end: -2 }).type).toBe("f32[N, 6, 4]");
    const r = shape1("flatten", [2, 2, 2], [], {}, t(iota(8), [2, 2, 2]));
    expect(r.out!.shape).toEqual([2, 4]);
    expect(r.out!.toArray()).toEqual(iota(8));
    const d = errorOf((m) => m.call("flatten", [m.input("x", "f32", ["N"])], {}, "f"));
    expect(d.code).toBe("E209");
    expect(d.message).toBe("flatten 'f': axis 1 is out of range for f32[N] (rank 1)");
  });
});

describe("transpose", () => {
  it("permutes dims and values", () => {
    const r = shape1("transpose", ["N", 2, 3], [[0, 2, 1]], {}, t(iota(12), [2, 2, 3]));
    expect(r.type).toBe("f32[N, 3, 2]");
    // x[n, i, j] = 6n + 3i + j ; y[n, j, i] = x[n, i, j]
    expect(r.out!.toArray()).toEqual([0, 3, 1, 4, 2, 5, 6, 9, 7, 10, 8, 11]);
  });

  it("defaults to reversing the axes and accepts negative entries", () => {
    const r = shape1("transpose", [2, 3], [], {}, t(iota(6), [2, 3]));
    expect(r.type).toBe("f32[3, 2]");
    expect(r.node.attrs).toEqual({ perm: [1, 0] });
    expect(r.out!.toArray()).toEqual([0, 3, 1, 4, 2, 5]);
    expect(shape1("transpose", ["N", 2, 3], [[0, -1, -2]]).type).toBe("f32[N, 3, 2]");
  });

  it("E209 when perm is not a permutation", () => {
    const d = errorOf((m) => m.call("transpose", [m.input("x", "f32", ["N", 2, 3]), [0, 0, 1]], {}, "p"));
    expect(d.code).toBe("E209");
    expect(d.message).toBe("transpose 'p': transpose perm [0, 0, 1] is not a permutation of 0..2 for f32[N, 2, 3]");
    expect(errorOf((m) => m.call("transpose", [m.input("x", "f32", ["N", 2]), [1, 0, 2]])).code).toBe("E209");
  });
});

describe("concat", () => {
  it("adds symbolic sizes along the axis and places values", () => {
    const m = new TestModel();
    const a = m.input("a", "f32", ["N", "L"]);
    const b = m.input("b", "f32", ["N", 2]);
    const y = m.call("concat", [[a, b, a]]);
    expect(typeToString(y.type)).toBe("f32[N, 2*L + 2]");
    m.output("y", y);
    const out = m.run({ a: t([1, 2], [2, 1]), b: t([10, 11, 20, 21], [2, 2]) }).outputs.y!;
    expect(out.shape).toEqual([2, 4]);
    expect(out.toArray()).toEqual([1, 10, 11, 1, 2, 20, 21, 2]);
  });

  it("along axis 0", () => {
    const m = new TestModel();
    const a = m.input("a", "f32", ["N", 2]);
    const y = m.call("concat", [[a, a]], { axis: 0 });
    expect(typeToString(y.type)).toBe("f32[2*N, 2]");
    m.output("y", y);
    expect(m.run({ a: t([1, 2], [1, 2]) }).outputs.y!.toArray()).toEqual([1, 2, 1, 2]);
  });

  it("E208 names the operand and the dim; E213 for dtypes; E209 for the axis", () => {
    const d1 = errorOf((m) => m.call("concat", [[m.input("a", "f32", ["N", 4, 4]), m.input("b", "f32", ["N", 5, 3])]], {}, "c"));
    expect(d1.code).toBe("E208");
    expect(d1.message).toBe("concat 'c': concat along axis 1: operand 1 is f32[N, 5, 3], but operand 0 is f32[N, 4, 4]: dim 2 is 3 vs 4");
    expect(d1.notes).toEqual(["a is f32[N, 4, 4]", "b is f32[N, 5, 3]"]);
    const d2 = errorOf((m) => m.call("concat", [[m.input("a", "f32", ["N", 4]), m.input("b", "f32", ["N", 4, 1])]]));
    expect(d2.code).toBe("E208");
    expect(d2.message).toContain("operand 1 is f32[N, 4, 1] (rank 3), but operand 0 is f32[N, 4] (rank 2)");
    const d3 = errorOf((m) => m.call("concat", [[m.input("a", "f32", ["N", 4]), m.input("b", "i32", ["N", 4])]]));
    expect(d3.code).toBe("E213");
    const d4 = errorOf((m) => m.call("concat", [[m.input("a", "f32", ["N"])]]));
    expect(d4.code).toBe("E209");
    const d5 = errorOf((m) => m.call("concat", [[]]));
    expect(d5.code).toBe("E404");
  });
});

describe("slice", () => {
  const x = t(iota(10), [1, 10]);
  it("Python semantics on a static axis: negatives, clamping, steps", () => {
    const cases: [JsArg[], number[]][] = [
      [[1, 2, 5], [2, 3, 4]],
      [[1, -3, null], [7, 8, 9]],
      [[1, -4, -1], [6, 7, 8]],
      [[1, 0, 100], iota(10)],
      [[-1, 1, 10, 3], [1, 4, 7]],
      [[1, -100, 2], [0, 1]],
    ];
    for (const [args, want] of cases) {
      const r = shape1("slice", ["N", 10], args, {}, x);
      expect(r.type).toBe(`f32[N, ${want.length}]`);
      expect(r.out!.toArray()).toEqual(want);
    }
    expect(shape1("slice", ["N", 10], [1, -3]).node.attrs).toEqual({ axis: 1, start: 7, end: 10, step: 1 });
  });

  it("negative indices on a symbolic axis give L - k sizes", () => {
    const m = new TestModel();
    const s = m.input("s", "f32", ["N", "L"]);
    const last3 = m.call("slice", [s, 1, -3]);
    expect(typeToString(last3.type)).toBe("f32[N, 3]");
    const dropLast = m.call("slice", [s, 1, 0, -1]);
    expect(typeToString(dropLast.type)).toBe("f32[N, L - 1]");
    const skip2 = m.call("slice", [s, 1, 2]);
    expect(typeToString(skip2.type)).toBe("f32[N, L - 2]");
    const evens = m.call("slice", [s, 1, 0, null, 2]);
    expect(typeToString(evens.type)).toBe("f32[N, floor((L + 1) / 2)]");
    m.output("a", last3);
    m.output("b", dropLast);
    m.output("c", skip2);
    m.output("d", evens);
    const o = m.run({ s: t(iota(7), [1, 7]) }).outputs;
    expect(o.a!.toArray()).toEqual([4, 5, 6]);
    expect(o.b!.toArray()).toEqual([0, 1, 2, 3, 4, 5]);
    expect(o.c!.toArray()).toEqual([2, 3, 4, 5, 6]);
    expect(o.d!.toArray()).toEqual([0, 2, 4, 6]);
  });

  it("a bound beyond a symbolic size is a runtime error, not a silent clamp", () => {
    const m = new TestModel();
    const s = m.input("s", "f32", ["L"]);
    m.output("y", m.call("slice", [s, 0, 0, 5]));
    expect(() => m.run({ s: t(iota(3)) })).toThrow(/slice 0:5 of axis 0 with size 3 gives 3 elements, but the compiled shape needs 5/);
  });

  it("E214 when empty or step <= 0; E209 for the axis", () => {
    const d1 = errorOf((m) => m.call("slice", [m.input("x", "f32", ["N", 10]), 1, 5, 3], {}, "s"));
    expect(d1.code).toBe("E214");
    expect(d1.message).toBe("slice 's': slice 5:3 of axis 1 (size 10) is empty");
    const d2 = errorOf((m) => m.call("slice", [m.input("x", "f32", ["N", 10]), 1, 0, 5, 0]));
    expect(d2.code).toBe("E214");
    expect(d2.message).toContain("slice step must be a positive integer, found 0");
    const d3 = errorOf((m) => m.call("slice", [m.input("x", "f32", ["N", 10]), 1, 20, 30]));
    expect(d3.code).toBe("E214");
    const d4 = errorOf((m) => m.call("slice", [m.input("x", "f32", ["N", 10]), 2, 0, 1]));
    expect(d4.code).toBe("E209");
  });

  it("E403 for a bound that is not an integer or a size", () => {
    const d = errorOf((m) => m.call("slice", [m.input("x", "f32", ["N", 10]), 1, 0.5, 3]));
    expect(d.code).toBe("E403");
    expect(d.message).toContain("argument 'start' must be an integer or a size, found the number 0.5");
  });

  it("symbolic bounds (a size such as L) are absolute positions", () => {
    const m = new TestModel();
    const s = m.input("s", "f32", ["L", 4]);
    const y = m.call("slice", [s, 1, 1, L]);
    // The axis is static (4) but the bound is symbolic: the size stays symbolic, checked at run time.
    expect(typeToString(y.type)).toBe("f32[L, L - 1]");
  });
});

describe("pad", () => {
  it("pairs apply to the last dims in order", () => {
    const r = shape1("pad", ["N", 1, 2, 2], [[[0, 1], [2, 0]]], { value: 9 }, t([1, 2, 3, 4], [1, 1, 2, 2]));
    expect(r.type).toBe("f32[N, 1, 3, 4]");
    expect(r.node.attrs).toEqual({ padBegin: [0, 0, 0, 2], padEnd: [0, 0, 1, 0], value: 9 });
    expect(r.out!.toArray()).toEqual([9, 9, 1, 2, 9, 9, 3, 4, 9, 9, 9, 9]);
  });

  it("an int per dim is symmetric; a bare int pads every dim", () => {
    const r = shape1("pad", ["L"], [[1]], {}, t([5, 6]));
    expect(r.type).toBe("f32[L + 2]");
    expect(r.out!.toArray()).toEqual([0, 5, 6, 0]);
    const all = shape1("pad", [1, 2], [1], {}, t([5, 6], [1, 2]));
    expect(all.type).toBe("f32[3, 4]");
    expect(all.out!.toArray()).toEqual([0, 0, 0, 0, 0, 5, 6, 0, 0, 0, 0, 0]);
  });

  it("E214 for negative pads and too many entries", () => {
    const d1 = errorOf((m) => m.call("pad", [m.input("x", "f32", ["N", 4]), [[0, -1]]], {}, "p"));
    expect(d1.code).toBe("E214");
    expect(d1.message).toBe("pad 'p': padding must be non-negative integers, found [0, -1] for dim 1");
    const d2 = errorOf((m) => m.call("pad", [m.input("x", "f32", ["N"]), [1, 1]]));
    expect(d2.code).toBe("E214");
    expect(d2.message).toContain("padding has 2 entries but f32[N] has only 1 dims");
    const d3 = errorOf((m) => m.call("pad", [m.input("x", "f32", ["N"]), [[1, 2, 3]]]));
    expect(d3.code).toBe("E403");
    expect(d3.message).toContain("padding entry 0 must be an integer or a [begin, end] pair, found a list of 3");
    const d4 = errorOf((m) => m.call("pad", [m.input("x", "f32", ["N"]), "same"]));
    expect(d4.code).toBe("E403");
  });
});

describe("upsample", () => {
  it("nearest repeats each element", () => {
    const r = shape1("upsample", ["N", 1, 2], [2], {}, t([1, 2], [1, 1, 2]));
    expect(r.type).toBe("f32[N, 1, 4]");
    expect(r.out!.toArray()).toEqual([1, 1, 2, 2]);
    const r2 = shape1("upsample", ["N", 1, "H", 2], [[2, 3]], {}, t([1, 2, 3, 4], [1, 1, 2, 2]));
    expect(r2.type).toBe("f32[N, 1, 2*H, 6]");
    expect(r2.out!.toArray()).toEqual([1, 1, 1, 2, 2, 2, 1, 1, 1, 2, 2, 2, 3, 3, 3, 4, 4, 4, 3, 3, 3, 4, 4, 4]);
  });

  it("linear matches PyTorch (align_corners=false)", () => {
    // F.interpolate(tensor([[[1., 2.]]]), scale_factor=2, mode="linear")
    expectClose(shape1("upsample", [1, 1, 2], [2], { mode: "linear" }, t([1, 2], [1, 1, 2])).out!.data, [1, 1.25, 1.75, 2]);
    // scale_factor=3: [1, 1, 1.3333, 1.6667, 2, 2]
    expectClose(shape1("upsample", [1, 1, 2], [3], { mode: "linear" }, t([1, 2], [1, 1, 2])).out!.data, [1, 1, 4 / 3, 5 / 3, 2, 2], 1e-15);
    // bilinear [[1, 2], [3, 4]], scale 2
    const b = shape1("upsample", [1, 1, 2, 2], [2], { mode: "bilinear" }, t([1, 2, 3, 4], [1, 1, 2, 2]));
    expect(b.node.attrs).toEqual({ scale: [2, 2], mode: "linear" });
    expectClose(b.out!.data, [1, 1.25, 1.75, 2, 1.5, 1.75, 2.25, 2.5, 2.5, 2.75, 3.25, 3.5, 3, 3.25, 3.75, 4]);
  });

  it("trilinear of a linear ramp stays linear inside", () => {
    // f = i + 2j + 4k on a 2x2x2 grid; interior samples of the upsampled grid interpolate it exactly.
    const x = t([0, 4, 2, 6, 1, 5, 3, 7], [1, 1, 2, 2, 2]);
    const r = shape1("upsample", [1, 1, 2, 2, 2], [2], { mode: "trilinear" }, x);
    expect(r.type).toBe("f32[1, 1, 4, 4, 4]");
    // output (1, 2, 1) maps to sources (0.25, 0.75, 0.25): 0.25 + 2*0.75 + 4*0.25
    expect(r.out!.get(0, 0, 1, 2, 1)).toBeCloseTo(0.25 + 1.5 + 1, 14);
  });

  it("E210 without spatial dims, E404 for bad scales and modes", () => {
    const d1 = errorOf((m) => m.call("upsample", [m.input("x", "f32", ["N", 3]), 2], {}, "u"));
    expect(d1.code).toBe("E210");
    expect(d1.message).toBe("upsample 'u': upsample needs [N, C, spatial...] (rank 3 to 5), found f32[N, 3]");
    const d2 = errorOf((m) => m.call("upsample", [m.input("x", "f32", ["N", 3, 4]), 0]));
    expect(d2.code).toBe("E404");
    expect(d2.message).toContain("upsample scale must be a positive integer, found 0");
    const d3 = errorOf((m) => m.call("upsample", [m.input("x", "f32", ["N", 3, 4]), 2], { mode: "cubic" }));
    expect(d3.code).toBe("E404");
    const d4 = errorOf((m) => m.call("upsample", [m.input("x", "f32", ["N", 3, 4, 4]), [2, 2, 2]]));
    expect(d4.code).toBe("E404");
    expect(d4.message).toContain("needs 2 values (one per spatial dim), found 3");
  });
});

describe("broadcast_to", () => {
  it("expands 1s and prepends dims", () => {
    const r = shape1("broadcast_to", [2, 1], [[3, 2, N]], {}, undefined);
    expect(r.type).toBe("f32[3, 2, N]");
    const v = shape1("broadcast_to", [2, 1], [[2, 3]], {}, t([1, 2], [2, 1]));
    expect(v.out!.toArray()).toEqual([1, 1, 1, 2, 2, 2]);
  });

  it("E203 when the shape is not a broadcast of the input", () => {
    const d = errorOf((m) => m.call("broadcast_to", [m.input("x", "f32", ["N", 3]), [N, 4]], {}, "b"));
    expect(d.code).toBe("E203");
    expect(d.message).toBe("broadcast_to 'b': cannot broadcast f32[N, 3] to [N, 4]: dim 1 is 3 vs 4");
    expect(errorOf((m) => m.call("broadcast_to", [m.input("x", "f32", ["N", 3]), [3]])).code).toBe("E203");
  });
});

// JS kernels of the reduction family against the float64 reference.

import { describe, expect, it } from "vitest";
import { emitProgram } from "../../compiler/codegen/js/program.ts";
import type { DType } from "../../compiler/ir/types.ts";
import type { RefTensor } from "../../compiler/reference/tensor.ts";
import { expectJsMatchesReference } from "../support/conformance.ts";
import { randomTensor, t, TestModel, type JsArg } from "../support/build.ts";

type Shape = (number | string)[];

/** `y = callee(x, ...)` on an input of `shape`, checked against the reference for every feed. */
function check(callee: string, dtype: DType, shape: Shape, keywords: Record<string, JsArg>, feeds: RefTensor[]): RefTensor[] {
  const m = new TestModel();
  const x = m.input("x", dtype, shape);
  m.output("y", m.call(callee, [x], keywords));
  return feeds.map((f) => expectJsMatchesReference(m.graph, { x: f }).y!);
}

/** Random f32 values with the given batch sizes for the leading symbolic dim. */
function batches(rest: number[], ns: number[], lo = -3, hi = 3): RefTensor[] {
  return ns.map((n, k) => randomTensor([n, ...rest], 17 + k, lo, hi));
}

function intsLike(x: RefTensor): RefTensor {
  return x.map((v) => Math.round(v * 1000), "i32");
}

describe("reduce", () => {
  const KINDS = ["sum", "mean", "max", "min", "logsumexp"];
  // Axes over [N, 3, 4, 5]: last, middle, first, contiguous pairs, non-contiguous sets, all.
  const AXES: (number | number[] | undefined)[] = [-1, 1, 0, [2, 3], [1, 2], [0, 2], [1, 3], [0, 1, 3], undefined];
  for (const kind of KINDS) {
    for (const keepdims of [false, true]) {
      it.each(AXES.map((a) => [JSON.stringify(a ?? "all"), a] as const))(`${kind} keepdims=${keepdims} axis=%s over [N, 3, 4, 5], N = 1 and 3`, (_name, axis) => {
        const kw: Record<string, JsArg> = { keepdims };
        if (axis !== undefined) kw.axis = axis;
        const outs = check(kind, "f32", ["N", 3, 4, 5], kw, batches([3, 4, 5], [1, 3]));
        if (axis === undefined) expect(outs[1]!.shape).toEqual(keepdims ? [1, 1, 1, 1] : []);
      });
    }
  }

  it.each([["sum"], ["max"], ["min"]])("%s on i32 over several layouts", (kind) => {
    for (const axis of [-1, 0, [0, 2], [1]]) {
      check(kind, "i32", ["N", 4, 3], { axis }, batches([4, 3], [2, 5]).map(intsLike));
    }
  });

  it("i32 sum wraps like int32", () => {
    const x = t([2147483647, 1, 5, -2147483648, -1, 3], [2, 3], "i32");
    const [y] = check("sum", "i32", [2, 3], { axis: 1 }, [x]);
    expect(Array.from(y!.data)).toEqual([(2147483647 + 1 + 5) | 0, (-2147483648 - 1 + 3) | 0]);
  });

  it("max and min propagate NaN; logsumexp handles ±Infinity rows", () => {
    const x = t([1, NaN, 3, 4, -Infinity, -Infinity, -Infinity, -Infinity, 2, Infinity, 0, 1, 5, 6, NaN, 7], [4, 4]);
    for (const kind of ["max", "min", "logsumexp", "sum"]) {
      check(kind, "f32", [4, 4], { axis: 1 }, [x]);
      check(kind, "f32", [4, 4], { axis: 0 }, [x]);
    }
    const [lse] = check("logsumexp", "f32", [4, 4], { axis: 1 }, [x]);
    expect(lse!.data[1]).toBe(-Infinity);
    expect(lse!.data[2]).toBe(Infinity);
  });

  it("logsumexp is stable at ±1000 along any axis", () => {
    const x = randomTensor([3, 4, 5], 5, -1000, 1000);
    for (const axis of [0, 1, 2, [0, 2]]) check("logsumexp", "f32", [3, 4, 5], { axis }, [x]);
  });

  it("reducing a size-1 axis is the identity; a rank-0 input reduces to itself", () => {
    check("max", "f32", ["N", 1, 4], { axis: 1 }, batches([1, 4], [2, 3]));
    check("mean", "f32", [], {}, [t([2.5], [])]);
  });

  it("reduces a symbolic axis", () => {
    check("mean", "f32", [2, "L", 3], { axis: 1 }, [randomTensor([2, 4, 3], 1), randomTensor([2, 9, 3], 2)]);
    check("sum", "f32", ["N", "L"], { axis: [0, 1] }, [randomTensor([2, 4], 1), randomTensor([5, 3], 2)]);
  });
});

describe("argmax", () => {
  it.each([[0], [1], [2], [-1]])("axis %s over [N, 4, 6], keepdims both ways, N = 2 and 3", (axis) => {
    for (const keepdims of [false, true]) check("argmax", "f32", ["N", 4, 6], { axis, keepdims }, batches([4, 6], [2, 3]));
  });

  it("ties go to the first index; NaN counts as the largest and the first NaN wins", () => {
    const x = t([1, 3, 3, 2, 5, 5, 5, 5, 0, NaN, 9, NaN, NaN, 1, 2, 3, -Infinity, -Infinity, -Infinity, -Infinity], [5, 4]);
    const [rows] = check("argmax", "f32", [5, 4], { axis: 1 }, [x]);
    expect(Array.from(rows!.data)).toEqual([1, 0, 1, 0, 0]);
    const [cols] = check("argmax", "f32", [5, 4], { axis: 0 }, [x]);
    expect(Array.from(cols!.data)).toEqual([3, 2, 2, 2]);
  });

  it("on i32, including ties", () => {
    const x = t([4, 7, 7, -1, 0, 0, 2, 9, 9, 9, 1, 0], [3, 4], "i32");
    const [y] = check("argmax", "i32", [3, 4], { axis: 1 }, [x]);
    expect(Array.from(y!.data)).toEqual([1, 3, 0]);
    check("argmax", "i32", [3, 4], { axis: 0 }, [x]);
  });
});

describe("softmax and log_softmax", () => {
  for (const op of ["softmax", "log_softmax"]) {
    it.each([[0], [1], [2], [-1]])(`${op} axis %s over [N, 5, 7], N = 1 and 4`, (axis) => {
      check(op, "f32", ["N", 5, 7], { axis }, batches([5, 7], [1, 4]));
    });

    it(`${op} with logits of ±1000 on axis 0, 1 and -1`, () => {
      const x = randomTensor([4, 6], 3, -1000, 1000);
      x.data[0] = 1000;
      x.data[1] = 1000;
      x.data[7] = -1000;
      for (const axis of [0, 1, -1]) {
        const [y] = check(op, "f32", [4, 6], { axis }, [x]);
        expect(y!.data.every(Number.isFinite)).toBe(true);
      }
    });

    it(`${op} rows with -Infinity, +Infinity and NaN follow the reference`, () => {
      const x = t([-Infinity, -Infinity, -Infinity, 0, -Infinity, 1, Infinity, 1, 2, NaN, 1, 2], [4, 3]);
      for (const axis of [0, 1]) check(op, "f32", [4, 3], { axis }, [x]);
    });
  }

  it("softmax rows sum to 1", () => {
    const [y] = check("softmax", "f32", [3, 8], { axis: -1 }, [randomTensor([3, 8], 9, -5, 5)]);
    for (let r = 0; r < 3; r++) expect(y!.data.slice(r * 8, r * 8 + 8).reduce((a, b) => a + b, 0)).toBeCloseTo(1, 6);
  });
});

describe("generated code", () => {
  it("softmax over the last axis: max pass, exp-and-sum pass, scale pass", async () => {
    const m = new TestModel();
    const x = m.input("x", "f32", ["N", 10]);
    m.output("p", m.call("softmax", [x], { axis: -1 }));
    const [kernel] = emitProgram(m.graph).kernels;
    expect(kernel).toContain("Math.exp(");
    await expect(`${kernel}\n`).toMatchFileSnapshot("__golden__/softmax.js");
  });

  it("a reduction over a middle axis accumulates whole rows (contiguous inner loop)", () => {
    const m = new TestModel();
    const x = m.input("x", "f32", ["N", 16, 32]);
    m.output("s", m.call("sum", [x], { axis: 1 }));
    const [kernel] = emitProgram(m.graph).kernels;
    expect(kernel).toContain("new Float64Array(32)");
    expect(kernel).toMatch(/for \(let i = 0; i < 32; i\+\+\) acc\[i\] \+= x0\[xr \+ i\];/);
  });
});

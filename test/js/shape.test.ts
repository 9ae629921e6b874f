// JS kernels of the shape family against the float64 reference.

import { describe, expect, it } from "vitest";
import { jsExecutor } from "../../compiler/codegen/js/execute.ts";
import { emitProgram } from "../../compiler/codegen/js/program.ts";
import { Dim } from "../../compiler/ir/dims.ts";
import type { Value } from "../../compiler/ir/graph.ts";
import type { DType } from "../../compiler/ir/types.ts";
import type { RefTensor } from "../../compiler/reference/tensor.ts";
import { expectJsMatchesReference } from "../support/conformance.ts";
import { randomTensor, t, TestModel, type JsArg } from "../support/build.ts";

type Shape = (number | string)[];

/** `y = callee(x, ...)` on an input of `shape`, checked against the reference for every feed. */
function check(callee: string, shape: Shape, keywords: Record<string, JsArg>, feeds: RefTensor[], dtype: DType = "f32"): RefTensor[] {
  const m = new TestModel();
  const x = m.input("x", dtype, shape);
  m.output("y", m.call(callee, [x], keywords));
  return feeds.map((f) => expectJsMatchesReference(m.graph, { x: f }).y!);
}

/** Distinct values (the flat index plus a fraction) so that any misplaced element is caught. */
function iota(shape: number[], dtype: DType = "f32"): RefTensor {
  const n = shape.reduce((a, b) => a * b, 1);
  return t(
    Array.from({ length: n }, (_, i) => (dtype === "f32" ? i + 0.25 : i)),
    shape,
    dtype,
  );
}

describe("transpose", () => {
  const cases: [Shape, number[] | undefined, number[][]][] = [
    [["N", 5], [1, 0], [[3, 5], [6, 5]]],
    [["N", 5], undefined, [[2, 5], [4, 5]]],
    [["N", 3, 4], [0, 2, 1], [[2, 3, 4], [3, 3, 4]]],
    [["N", 3, 4], [2, 0, 1], [[2, 3, 4], [1, 3, 4]]],
    [["N", 3, 4], [1, 0, 2], [[2, 3, 4], [5, 3, 4]]],
    [["N", 3, 4], [2, 1, 0], [[2, 3, 4], [3, 3, 4]]],
    [["N", 3, 4, 5], [0, 2, 3, 1], [[2, 3, 4, 5], [3, 3, 4, 5]]],
    [["N", 3, 4, 5], [0, 3, 1, 2], [[1, 3, 4, 5], [2, 3, 4, 5]]],
    [["N", 3, 4, 5], [3, 2, 1, 0], [[2, 3, 4, 5], [3, 3, 4, 5]]],
    [["N", 3, 4, 5], [1, 0, 3, 2], [[2, 3, 4, 5], [3, 3, 4, 5]]],
    [["N", 3, 4, 5], [0, 1, 2, 3], [[2, 3, 4, 5], [1, 3, 4, 5]]],
    [["N", 1, 4], [1, 0, 2], [[3, 1, 4], [2, 1, 4]]],
    [[2, 1, "L", 3], [3, 1, 2, 0], [[2, 1, 4, 3], [2, 1, 7, 3]]],
  ];
  it.each(cases)("%j perm %j", (shape, perm, feeds) => {
    check("transpose", shape, perm ? { perm } : {}, feeds.map((s) => iota(s)));
  });
  it("moves i32 and bool data", () => {
    check("transpose", ["N", 3], {}, [iota([4, 3], "i32")], "i32");
    check("transpose", [2, 3], { perm: [1, 0] }, [t([1, 0, 0, 1, 1, 0], [2, 3], "bool")], "bool");
  });
});

describe("concat", () => {
  /** concat of inputs with the given shapes along `axis`, for each set of concrete shapes. */
  function checkConcat(shapes: Shape[], axis: number, feeds: number[][][], dtype: DType = "f32") {
    const m = new TestModel();
    const xs: Value[] = shapes.map((s, k) => m.input(`x${k}`, dtype, s));
    m.output("y", m.call("concat", [xs], { axis }));
    for (const f of feeds) expectJsMatchesReference(m.graph, Object.fromEntries(f.map((s, k) => [`x${k}`, iota(s, dtype)])));
  }
  it("two operands on axis 0 (symbolic sizes N + M)", () => {
    checkConcat([["N", 3, 4], ["M", 3, 4]], 0, [[[2, 3, 4], [1, 3, 4]], [[3, 3, 4], [4, 3, 4]]]);
  });
  it.each([[1], [2], [-1]])("three operands on axis %s of [N, ., .]", (axis) => {
    const sizes = [2, 5, 1];
    const a = axis < 0 ? 2 : axis;
    const shapeFor = (n: number | string, k: number) => [n, 3, 4].map((d, i) => (i === a ? sizes[k]! : d));
    checkConcat(
      sizes.map((_, k) => shapeFor("N", k)),
      axis,
      [2, 3].map((n) => sizes.map((_, k) => shapeFor(n, k) as number[])),
    );
  });
  it("two operands on each axis of a rank-3 input", () => {
    for (const axis of [0, 1, 2]) {
      const b = [2, 3, 4].map((d, i) => (i === axis ? d + 2 : d));
      checkConcat([[2, 3, 4], b], axis, [[[2, 3, 4], b]]);
    }
  });
  it("i32 operands", () => {
    checkConcat([["N", 2], ["N", 3]], 1, [[[3, 2], [3, 3]]], "i32");
  });
});

describe("slice", () => {
  const cases: [string, Shape, Record<string, JsArg>, number[][]][] = [
    ["a middle range of axis 1", ["N", 6, 3], { axis: 1, start: 1, end: 4 }, [[2, 6, 3], [3, 6, 3]]],
    ["negative start on the last axis", ["N", 6], { axis: -1, start: -3 }, [[2, 6], [4, 6]]],
    ["negative end with step 2", ["N", 7, 2], { axis: 1, start: 0, end: -1, step: 2 }, [[2, 7, 2], [3, 7, 2]]],
    ["step 3 on the last axis", ["N", 10], { axis: 1, start: 1, step: 3 }, [[2, 10], [1, 10]]],
    ["out-of-range bounds clamp", [4, 5], { axis: 1, start: -100, end: 100, step: 2 }, [[4, 5]]],
    ["the symbolic batch axis with step 2", ["N", 3], { axis: 0, start: 1, step: 2 }, [[5, 3], [6, 3]]],
    ["a symbolic axis from a negative start", [2, "L", 3], { axis: 1, start: -2 }, [[2, 5, 3], [2, 3, 3]]],
    ["a symbolic axis between two bounds", [2, "L"], { axis: 1, start: 1, end: -1 }, [[2, 5], [2, 9]]],
    ["a symbolic axis with step 2", ["L", 2], { axis: 0, start: 1, step: 2 }, [[6, 2], [7, 2]]],
  ];
  it.each(cases)("%s", (_name, shape, kw, feeds) => {
    check("slice", shape, kw, feeds.map((s) => iota(s)));
  });
  it("slices i32", () => {
    check("slice", ["N", 8], { axis: 1, start: 2, end: 7, step: 2 }, [iota([3, 8], "i32")], "i32");
  });
  it("fails at run time when a symbolic axis is too short for the compiled bound", () => {
    const m = new TestModel();
    const x = m.input("x", "f32", ["L"]);
    m.output("y", m.call("slice", [x], { axis: 0, start: 0, end: 4 }));
    const run = (n: number) => jsExecutor(m.graph).run({ x: iota([n]) }, {}, { symbols: { L: n } });
    expect(run(6).y!.shape).toEqual([4]);
    expect(() => run(2)).toThrow("slice 0:4 of axis 0 with size 2 gives 2 elements, but the compiled shape needs 4");
  });
});

describe("pad", () => {
  const cases: [string, Shape, Record<string, JsArg>, number[][]][] = [
    ["asymmetric on the last two dims with a value", ["N", 2, 3, 4], { padding: [[1, 0], [2, 3]], value: -1.5 }, [[2, 2, 3, 4], [1, 2, 3, 4]]],
    ["an int on every dim", ["N", 3], { padding: 1 }, [[2, 3], [4, 3]]],
    ["only the last dim", ["N", 5], { padding: [[0, 2]], value: 7 }, [[3, 5]]],
    ["only a leading dim (whole rows)", ["N", 3, 4], { padding: [[2, 1], 0, 0] }, [[2, 3, 4]]],
    ["the middle dim only", [2, 3, 4], { padding: [[1, 2], 0] }, [[2, 3, 4]]],
    ["nothing", ["N", 3], { padding: 0 }, [[2, 3]]],
  ];
  it.each(cases)("%s", (_name, shape, kw, feeds) => {
    check("pad", shape, kw, feeds.map((s) => iota(s)));
  });
  it("pads i32 with an integer value", () => {
    check("pad", ["N", 3], { padding: [[1, 2]], value: -9 }, [iota([2, 3], "i32")], "i32");
  });
});

describe("upsample", () => {
  const layouts: [Shape, number[][]][] = [
    [["N", 2, 5], [[2, 2, 5], [1, 2, 5]]],
    [["N", 2, 3, 4], [[2, 2, 3, 4], [1, 2, 3, 4]]],
    [["N", 1, 2, 3, 2], [[2, 1, 2, 3, 2], [1, 1, 2, 3, 2]]],
  ];
  for (const mode of ["nearest", "linear"]) {
    for (const scale of [2, 3]) {
      it.each(layouts)(`${mode} x${scale} over %j`, (shape, feeds) => {
        check("upsample", shape, { scale, mode }, feeds.map((s, k) => randomTensor(s, 7 + k)));
      });
    }
    it(`${mode} with mixed scales [3, 1, 2] and a size-1 spatial dim`, () => {
      check("upsample", ["N", 2, 1, 3, 2], { scale: [3, 1, 2], mode }, [randomTensor([2, 2, 1, 3, 2], 3)]);
    });
    it(`${mode} x5 over a symbolic length`, () => {
      check("upsample", [1, 2, "L"], { scale: 5, mode }, [randomTensor([1, 2, 3], 1), randomTensor([1, 2, 6], 2)]);
    });
  }
  it("linear skips zero-weight taps, so NaN and Infinity spread as in the reference", () => {
    const x = t([Infinity, 1, 2, NaN, 3, -Infinity], [1, 1, 6]);
    for (const scale of [1, 2, 3]) check("upsample", [1, 1, 6], { scale, mode: "linear" }, [x]);
    const y = t([1, 2, Infinity, 4, 5, 6, NaN, 8, 9], [1, 1, 3, 3]);
    for (const scale of [2, 3]) check("upsample", [1, 1, 3, 3], { scale, mode: "linear" }, [y]);
  });
  it("bilinear matches PyTorch's align_corners=false on a 2x2 input", () => {
    // torch.nn.functional.interpolate(x, scale_factor=2, mode="bilinear") of [[1, 2], [3, 4]]
    const [y] = check("upsample", [1, 1, 2, 2], { scale: 2, mode: "bilinear" }, [t([1, 2, 3, 4], [1, 1, 2, 2])]);
    expect(Array.from(y!.data.slice(0, 4))).toEqual([1, 1.25, 1.75, 2]);
    expect(Array.from(y!.data.slice(4, 8))).toEqual([1.5, 1.75, 2.25, 2.5]);
  });
});

describe("broadcast_to", () => {
  const cases: [Shape, Shape][] = [
    [[3, 1, 5], [2, 3, 4, 5]],
    [["N", 1], ["N", 6]],
    [[1, 4], ["N", 4]],
    [[], [2, 3]],
    [[4], [2, 3, 4]],
    [["N", 1, 1], ["N", 2, 3]],
  ];
  it.each(cases)("%j -> %j for N = 2 and 3", (from, to) => {
    const m = new TestModel();
    const x = m.input("x", "f32", from);
    const n = m.input("n", "f32", ["N"]);
    m.output("y", m.call("broadcast_to", [x], { shape: to.map((d) => (typeof d === "string" ? Dim.sym(d) : d)) }));
    m.output("n", n);
    for (const batch of [2, 3]) {
      const shape = from.map((d) => (d === "N" ? batch : (d as number)));
      expectJsMatchesReference(m.graph, { x: iota(shape), n: iota([batch]) });
    }
  });
});

describe("generated code", () => {
  it("NCHW -> NHWC transpose merges H and W and writes the output in order", async () => {
    const m = new TestModel();
    const x = m.input("x", "f32", ["N", 3, 8, 8]);
    m.output("y", m.call("transpose", [x], { perm: [0, 2, 3, 1] }));
    const [kernel] = emitProgram(m.graph).kernels;
    expect(kernel).toContain("y0[o++] = x0[ix1 + i2 * 64];");
    await expect(`${kernel}\n`).toMatchFileSnapshot("__golden__/transpose_nhwc.js");
  });
  it("reshape is a view: no kernel", () => {
    const m = new TestModel();
    const x = m.input("x", "f32", ["N", 3, 4]);
    m.output("y", m.call("reshape", [x], { shape: [-1, 12] }));
    expect(emitProgram(m.graph).kernelCount).toBe(0);
    expectJsMatchesReference(m.graph, { x: iota([2, 3, 4]) });
  });
});

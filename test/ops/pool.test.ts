import { describe, expect, it } from "vitest";
import { Dim } from "../../compiler/ir/dims.ts";
import { typeToString } from "../../compiler/ir/types.ts";
import { slidingOutputDim } from "../../compiler/ops/conv.ts";
import { RunError } from "../../compiler/reference/interpreter.ts";
import type { RefTensor } from "../../compiler/reference/tensor.ts";
import { diagnosticsOf, expectClose, t, TestModel, type JsArg } from "../support/build.ts";

/** y = callee(x, ...) on a 1-row, 1-channel signal unless a shape is given; optional bool mask input. */
function pool(callee: string, x: number[] | RefTensor, opts: Record<string, JsArg> = {}, mask?: RefTensor): RefTensor {
  const xt = Array.isArray(x) ? t(x, [1, 1, x.length]) : x;
  const m = new TestModel();
  const xi = m.input("x", "f32", xt.shape);
  const mi = mask ? m.input("m", "bool", mask.shape) : undefined;
  m.output("y", m.call(callee, [xi], mi ? { ...opts, mask: mi } : opts, "p"));
  return m.run(mask ? { x: xt, m: mask } : { x: xt }).outputs.y!;
}

function typeOf(callee: string, shape: (number | string)[], opts: Record<string, JsArg>): string {
  const m = new TestModel();
  const x = m.input("x", "f32", shape);
  return typeToString(m.call(callee, [x], opts, "p").type);
}

function bool(values: number[], shape: number[]): RefTensor {
  return t(values, shape, "bool");
}

function onlyDiagnostic(f: () => unknown) {
  const ds = diagnosticsOf(f);
  expect(ds).toHaveLength(1);
  return ds[0]!;
}

/** PyTorch's pooling_output_shape_pad_lr, transcribed. */
function torchPoolSize(S: number, k: number, pl: number, pr: number, s: number, d: number, ceil: boolean): number {
  const num = S + pl + pr - d * (k - 1) - 1 + (ceil ? s - 1 : 0);
  let o = Math.floor(num / s) + 1;
  if (ceil && (o - 1) * s >= S + pl) o--;
  return o;
}

describe("pool: shapes", () => {
  it("LeNet's subsampling and PyTorch's MaxPool2d documentation example", () => {
    expect(typeOf("maxpool2d", ["N", 6, 28, 28], { window: 2 })).toBe("f32[N, 6, 14, 14]");
    // nn.MaxPool2d(3, stride=2) on [20, 16, 50, 32] → [20, 16, 24, 15]
    expect(typeOf("maxpool2d", [20, 16, 50, 32], { window: 3, stride: 2 })).toBe("f32[20, 16, 24, 15]");
    expect(typeOf("avgpool3d", ["N", 2, 8, 9, 10], { window: [2, 3, 4], padding: [1, 1, 2] })).toBe("f32[N, 2, 5, 3, 3]");
    expect(typeOf("sumpool1d", ["N", 3, "L"], { window: 2 })).toBe("f32[N, 3, floor((L) / 2)]");
  });

  it("records the IR attributes", () => {
    const m = new TestModel();
    const x = m.input("x", "f32", ["N", 1, 9]);
    const y = m.call("avgpool1d", [x], { window: 3, stride: 2, padding: 1, ceil_mode: true, count_include_pad: false }, "p");
    expect(y.node.op).toBe("pool");
    expect(y.node.attrs).toEqual({ kind: "avg", window: [3], stride: [2], padBegin: [1], padEnd: [1], dilation: [1], ceilMode: true, countIncludePad: false, hasMask: false });
  });

  it("ceil_mode follows PyTorch, including its last-window rule, for static and symbolic sizes", () => {
    // L = 5, window 2, stride 2, padding 1: rounding up gives 4 windows, but the 4th would start in the right padding.
    expect(typeOf("maxpool1d", ["N", 1, 5], { window: 2, padding: 1, ceil_mode: true })).toBe("f32[N, 1, 3]");
    expect(typeOf("maxpool1d", ["N", 1, 5], { window: 2, ceil_mode: true })).toBe("f32[N, 1, 3]");
    expect(typeOf("maxpool1d", ["N", 1, 5], { window: 2 })).toBe("f32[N, 1, 2]");
    const L = Dim.sym("L");
    const configs: [number, number, number, number, number][] = [];
    for (const k of [1, 2, 3, 4, 5]) for (const s of [1, 2, 3, 4]) for (const d of [1, 2]) for (let pl = 0; pl <= Math.floor((d * (k - 1) + 1) / 2); pl++) for (const pr of [0, pl]) configs.push([k, s, d, pl, pr]);
    for (const [k, s, d, pl, pr] of configs) {
      for (const ceil of [false, true]) {
        const o = slidingOutputDim(L, d * (k - 1) + 1, pl, pr, s, ceil);
        for (let l = 1; l <= 24; l++) {
          const want = torchPoolSize(l, k, pl, pr, s, d, ceil);
          if (want < 1) continue;
          expect([k, s, d, pl, pr, ceil, l, o.evaluate({ L: l })]).toEqual([k, s, d, pl, pr, ceil, l, want]);
        }
      }
    }
  });
});

describe("pool: values", () => {
  it("maxpool takes the largest value per window; padding is −inf", () => {
    expect(pool("maxpool1d", [1, 3, 2, 5, 4, 0], { window: 2 }).toArray()).toEqual([3, 5, 4]);
    expect(pool("maxpool1d", [1, 3, 2, 5, 4, 0], { window: 2, stride: 1 }).toArray()).toEqual([3, 3, 5, 5, 4]);
    expect(pool("maxpool1d", [-1, -3, -2, -5, -4, -6], { window: 2, padding: 1 }).toArray()).toEqual([-1, -2, -4, -6]);
    // dilation 2: windows {0, 2}, {1, 3}, {2, 4}, {3, 5}
    expect(pool("maxpool1d", [1, 3, 2, 5, 4, 0], { window: 2, stride: 1, dilation: 2 }).toArray()).toEqual([2, 5, 4, 5]);
    const x = t([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16], [1, 1, 4, 4]);
    expect(pool("maxpool2d", x, { window: 2 }).toArray()).toEqual([6, 8, 14, 16]);
  });

  it("avgpool counts padding unless count_include_pad=false (PyTorch)", () => {
    // windows [−1..1], [0..2], [1..3], [2..4] over [1, 2, 3, 4]
    expectClose(pool("avgpool1d", [1, 2, 3, 4], { window: 3, stride: 1, padding: 1 }).data, [1, 2, 3, 7 / 3]);
    expectClose(pool("avgpool1d", [1, 2, 3, 4], { window: 3, stride: 1, padding: 1, count_include_pad: false }).data, [1.5, 2, 3, 3.5]);
    const x = t([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16], [1, 1, 4, 4]);
    expectClose(pool("avgpool2d", x, { window: 2 }).data, [3.5, 5.5, 11.5, 13.5]);
  });

  it("ceil_mode windows past the padded input are clipped, as PyTorch divides them", () => {
    // [1..5], window 2, stride 2, ceil: the last window holds only 5 and divides by 1.
    expectClose(pool("avgpool1d", [1, 2, 3, 4, 5], { window: 2, ceil_mode: true }).data, [1.5, 3.5, 5]);
    // [1..4], window 3, stride 2, padding 1, ceil: windows [−1..1], [1..3], [3..5]; the last
    // is clipped to [3..4] (input plus right padding), so it divides 4 + 0 by 2.
    expectClose(pool("avgpool1d", [1, 2, 3, 4], { window: 3, stride: 2, padding: 1, ceil_mode: true }).data, [1, 3, 2]);
    expect(pool("maxpool1d", [1, 2, 3, 4, 5], { window: 2, padding: 1, ceil_mode: true }).toArray()).toEqual([1, 3, 5]);
  });

  it("sumpool adds the window", () => {
    expect(pool("sumpool1d", [1, 2, 3, 4], { window: 2 }).toArray()).toEqual([3, 7]);
    expect(pool("sumpool1d", [1, 2, 3, 4], { window: 2, stride: 1, padding: [[1, 0]] }).toArray()).toEqual([1, 3, 5, 7]);
  });

  it("masked positions never win a max nor count in a mean or sum", () => {
    // two sequences of length 4 and 2; the padding holds large values
    const x = t([1, 5, 2, 3, 4, 6, 100, 100], [2, 1, 4]);
    const mask = bool([1, 1, 1, 1, 1, 1, 0, 0], [2, 1, 4]);
    expect(pool("maxpool1d", x, { window: 2 }, mask).toArray()).toEqual([5, 3, 6, 0]);
    expect(pool("avgpool1d", x, { window: 2 }, mask).toArray()).toEqual([3, 2.5, 5, 0]);
    expect(pool("sumpool1d", x, { window: 3, stride: 1 }, mask).toArray()).toEqual([8, 10, 10, 6]);
    // a mask [L] broadcasts over batch and channels; with padding, the mean divides by unmasked real cells
    expect(pool("avgpool1d", [2, 4, 6, 8], { window: 3, stride: 1, padding: 1 }, bool([1, 0, 1, 1], [4])).toArray()).toEqual([2, 4, 7, 7]);
  });
});

describe("global pools", () => {
  const x = t([1, 2, 3, 4, 5, 6, -1, -2, -3, -4, -5, -6], [2, 2, 3]);

  it("pool every spatial dim into [N, C]", () => {
    expect(typeOf("global_avgpool", ["N", 8, "H", "W"], {})).toBe("f32[N, 8]");
    expect(pool("global_maxpool", x).toArray()).toEqual([3, 6, -1, -4]);
    expect(pool("global_avgpool", x).toArray()).toEqual([2, 5, -2, -5]);
    expect(pool("global_sumpool", x).toArray()).toEqual([6, 15, -6, -15]);
    const x3 = t([1, 2, 3, 4, 5, 6, 7, 8], [1, 1, 2, 2, 2]);
    expect(pool("global_avgpool", x3).toArray()).toEqual([4.5]);
  });

  it("take a mask (lengths 2 and 1 here); an all-masked row gives 0", () => {
    const mask = bool([1, 1, 0, 1, 0, 0], [2, 1, 3]);
    expect(pool("global_maxpool", x, {}, mask).toArray()).toEqual([2, 5, -1, -4]);
    expect(pool("global_avgpool", x, {}, mask).toArray()).toEqual([1.5, 4.5, -1, -4]);
    expect(pool("global_sumpool", x, {}, mask).toArray()).toEqual([3, 9, -1, -4]);
    expect(pool("global_avgpool", x, {}, bool([0, 0, 0], [3])).toArray()).toEqual([0, 0, 0, 0]);
    expect(pool("global_maxpool", x, {}, bool([0, 0, 0], [3])).toArray()).toEqual([0, 0, 0, 0]);
  });
});

describe("kmax_pool", () => {
  it("keeps the k largest values in their original order (Kalchbrenner et al., 2014)", () => {
    expect(pool("kmax_pool", [3, 1, 5, 2, 4], { k: 3 }).toArray()).toEqual([3, 5, 4]);
    // ties go to the lower index: of the two 2s the first is kept, so 2 comes before 5
    expect(pool("kmax_pool", [2, 5, 2], { k: 2 }).toArray()).toEqual([2, 5]);
    const x = t([1, 9, 2, 8, 3, 7], [1, 3, 2]);
    expect(pool("kmax_pool", x, { k: 2, axis: 1 }).toArray()).toEqual([2, 9, 3, 8]);
    expect(typeOf("kmax_pool", ["N", 4, "L"], { k: 3 })).toBe("f32[N, 4, 3]");
  });

  it("never picks masked positions while unmasked ones remain; masked picks read 0", () => {
    expect(pool("kmax_pool", [5, 9, 1, 7], { k: 2 }, bool([1, 0, 1, 1], [4])).toArray()).toEqual([5, 7]);
    expect(pool("kmax_pool", [5, 9, 1, 7], { k: 2 }, bool([0, 1, 0, 0], [4])).toArray()).toEqual([0, 9]);
  });

  it("checks k against symbolic sizes at run time", () => {
    const m = new TestModel();
    const x = m.input("x", "f32", [1, "L"]);
    m.output("y", m.call("kmax_pool", [x], { k: 3 }, "p"));
    expect(m.run({ x: t([4, 1, 3, 2], [1, 4]) }).outputs.y!.toArray()).toEqual([4, 3, 2]);
    expect(() => m.run({ x: t([1, 2], [1, 2]) })).toThrow("k=3 is larger than the size 2 of axis 1");
  });
});

describe("pool: errors", () => {
  function model(shape: (number | string)[], dtype: "f32" | "i32" = "f32") {
    const m = new TestModel();
    return { m, x: m.input("c1", dtype, shape) };
  }

  it("E201: window larger than the padded input", () => {
    const { m, x } = model(["N", 6, 3, 1]);
    const d = onlyDiagnostic(() => m.call("maxpool2d", [x], { window: 2 }, "s2"));
    expect(d.code).toBe("E201");
    expect(d.message).toBe("maxpool2d 's2': window 2 is larger than the padded input 1 along dim 3");
    expect(d.notes).toEqual(["input c1 is f32[N, 6, 3, 1]"]);
    expect(d.hint).toBe("add padding=1 or use a smaller window");
  });

  it("symbolic sizes too small for the window fail at run time", () => {
    const m = new TestModel();
    const x = m.input("x", "f32", ["N", 1, "L"]);
    m.output("y", m.call("avgpool1d", [x], { window: 3 }, "p"));
    expect(() => m.run({ x: t([1, 2], [1, 1, 2]) })).toThrow(RunError);
    expect(() => m.run({ x: t([1, 2], [1, 1, 2]) })).toThrow("window 3 is larger than the padded input 2 along dim 2");
  });

  it("E404: padding more than half the window", () => {
    const { m, x } = model(["N", 1, 8]);
    const d = onlyDiagnostic(() => m.call("maxpool1d", [x], { window: 2, padding: 2 }, "p"));
    expect(d.code).toBe("E404");
    expect(d.message).toBe("maxpool1d 'p': padding 2 along dim 2 is more than half the window 2");
  });

  it("E210 / E213: rank and dtype of the input", () => {
    const a = model(["N", 8]);
    const d = onlyDiagnostic(() => a.m.call("maxpool1d", [a.x], { window: 2 }, "p"));
    expect([d.code, d.message]).toEqual(["E210", "maxpool1d 'p': expected an input of rank 3 ([N, C, L]), found rank 2 (f32[N, 8])"]);
    const g = onlyDiagnostic(() => a.m.call("global_avgpool", [a.x], {}, "g"));
    expect([g.code, g.message]).toEqual(["E210", "global_avgpool 'g': expected an input of rank 3 or more ([N, C, spatial...]), found f32[N, 8]"]);
    const b = model(["N", 1, 4], "i32");
    const e = onlyDiagnostic(() => b.m.call("avgpool1d", [b.x], { window: 2 }, "p"));
    expect([e.code, e.message]).toEqual(["E213", "avgpool1d 'p': expected an f32 input, found i32[N, 1, 4]"]);
    const k = onlyDiagnostic(() => b.m.call("kmax_pool", [b.x], { k: 2 }, "k"));
    expect([k.code, k.message]).toEqual(["E213", "kmax_pool 'k': expected an f32 input, found i32[N, 1, 4]"]);
  });

  it("E213 / E203: the mask must be bool and broadcast to x", () => {
    const { m, x } = model(["N", 2, "L"]);
    const fmask = m.input("fm", "f32", ["N", 1, "L"]);
    const a = onlyDiagnostic(() => m.call("global_maxpool", [x], { mask: fmask }, "g"));
    expect([a.code, a.message]).toEqual(["E213", "global_maxpool 'g': mask must be bool, found f32[N, 1, L]"]);
    const wrong = m.input("wm", "bool", ["N", "L"]);
    const b = onlyDiagnostic(() => m.call("maxpool1d", [x], { window: 2, mask: wrong }, "p"));
    expect([b.code, b.message]).toEqual(["E203", "maxpool1d 'p': mask bool[N, L] does not broadcast to the input f32[N, 2, L]: dim 0 is N where the input has 2"]);
    const long = m.input("lm", "bool", [1, "N", 2, "L"]);
    const c = onlyDiagnostic(() => m.call("kmax_pool", [x], { k: 1, mask: long }, "k"));
    expect([c.code, c.message]).toEqual(["E203", "kmax_pool 'k': mask bool[1, N, 2, L] does not broadcast to the input f32[N, 2, L]: it has more dims than the input"]);
  });

  it("kmax_pool: E201 for k above a static size, E209 for a bad axis, E404 for k < 1", () => {
    const { m, x } = model(["N", 3, 4]);
    const a = onlyDiagnostic(() => m.call("kmax_pool", [x], { k: 5 }, "k"));
    expect([a.code, a.message, a.hint]).toEqual(["E201", "kmax_pool 'k': k=5 is larger than the size 4 of axis 2", "use k <= 4"]);
    const b = onlyDiagnostic(() => m.call("kmax_pool", [x], { k: 2, axis: 3 }, "k"));
    expect([b.code, b.message]).toEqual(["E209", "kmax_pool 'k': axis 3 is out of range for an input of rank 3"]);
    const c = onlyDiagnostic(() => m.call("kmax_pool", [x], { k: 0 }, "k"));
    expect([c.code, c.message]).toEqual(["E404", "kmax_pool 'k': argument 'k' must be a positive integer, found 0"]);
  });

  it("count_include_pad exists only on avgpool (E402)", () => {
    const { m, x } = model(["N", 1, 8]);
    const d = onlyDiagnostic(() => m.call("maxpool1d", [x], { window: 2, count_include_pad: false }, "p"));
    expect(d.code).toBe("E402");
  });
});

import { describe, expect, it } from "vitest";
import { Dim } from "../../compiler/ir/dims.ts";
import { typeToString } from "../../compiler/ir/types.ts";
import { slidingOutputDim } from "../../compiler/ops/conv.ts";
import { RunError } from "../../compiler/reference/interpreter.ts";
import { indices, RefTensor } from "../../compiler/reference/tensor.ts";
import { diagnosticsOf, expectClose, randomTensor, t, TestModel, type JsArg } from "../support/build.ts";

/** Build `y = callee(x, weight=w, ...)` with x and w as inputs and run it. */
function runConv(callee: string, x: RefTensor, w: RefTensor, opts: Record<string, JsArg> = {}, b?: RefTensor): RefTensor {
  const m = new TestModel();
  const xi = m.input("x", "f32", x.shape);
  const wi = m.input("w", "f32", w.shape);
  const bi = b ? m.input("b", "f32", b.shape) : undefined;
  const y = m.call(callee, [xi], { weight: wi, bias: bi ?? false, ...opts }, "c");
  m.output("y", y);
  return m.run(b ? { x, w, b } : { x, w }).outputs.y!;
}

function typeOf(callee: string, shape: (number | string)[], opts: Record<string, JsArg>): string {
  const m = new TestModel();
  const x = m.input("x", "f32", shape);
  return typeToString(m.call(callee, [x], opts, "c").type);
}

function onlyDiagnostic(f: () => unknown) {
  const ds = diagnosticsOf(f);
  expect(ds).toHaveLength(1);
  return ds[0]!;
}

/** Zero-pad the spatial dims of x by hand. */
function zeroPad(x: RefTensor, begin: number[], end: number[]): RefTensor {
  const shape = x.shape.map((s, i) => (i < 2 ? s : s + begin[i - 2]! + end[i - 2]!));
  const out = RefTensor.zeros(shape);
  for (const idx of indices(x.shape)) out.set(x.get(...idx), ...idx.map((v, i) => (i < 2 ? v : v + begin[i - 2]!)));
  return out;
}

/** Pad the spatial dims of x cyclically by hand. */
function circularPad(x: RefTensor, p: number[]): RefTensor {
  const shape = x.shape.map((s, i) => (i < 2 ? s : s + 2 * p[i - 2]!));
  const out = RefTensor.zeros(shape);
  for (const idx of indices(shape)) {
    const src = idx.map((v, i) => (i < 2 ? v : (((v - p[i - 2]!) % x.shape[i]!) + x.shape[i]!) % x.shape[i]!));
    out.set(x.get(...src), ...idx);
  }
  return out;
}

function sliceChannels(x: RefTensor, from: number, to: number, axis = 1): RefTensor {
  const shape = x.shape.map((s, i) => (i === axis ? to - from : s));
  const out = RefTensor.zeros(shape);
  for (const idx of indices(shape)) out.set(x.get(...idx.map((v, i) => (i === axis ? v + from : v))), ...idx);
  return out;
}

describe("conv: shapes", () => {
  it("matches PyTorch's Conv2d documentation example", () => {
    // nn.Conv2d(16, 33, (3, 5), stride=(2, 1), padding=(4, 2), dilation=(3, 1)) on [20, 16, 50, 100] → [20, 33, 26, 100]
    const m = new TestModel();
    const x = m.input("x", "f32", ["N", 16, 50, 100]);
    const y = m.call("conv2d", [x], { filters: 33, kernel: [3, 5], stride: [2, 1], padding: [4, 2], dilation: [3, 1] }, "c1");
    expect(typeToString(y.type)).toBe("f32[N, 33, 26, 100]");
    const w = m.graph.params.get("c1.weight")!;
    expect(typeToString(w.value.type)).toBe("f32[33, 16, 3, 5]");
    const bound = 1 / Math.sqrt(16 * 15);
    expect(w.init).toEqual({ kind: "uniform", lo: -bound, hi: bound });
    expect(m.graph.params.get("c1.bias")!.init).toEqual({ kind: "uniform", lo: -bound, hi: bound });
    expect(typeToString(m.graph.params.get("c1.bias")!.value.type)).toBe("f32[33]");
    const node = y.node;
    expect(node.op).toBe("conv");
    expect(node.attrs).toEqual({ stride: [2, 1], dilation: [3, 1], padBegin: [4, 2], padEnd: [4, 2], groups: 1, paddingMode: "zeros", flip: false, hasBias: true });
    expect(node.inputs).toHaveLength(3);
  });

  it("keeps symbolic batch and length symbolic, and evaluates them at run time", () => {
    expect(typeOf("conv1d", ["N", 4, "L"], { filters: 8, kernel: 3 })).toBe("f32[N, 8, L - 2]");
    expect(typeOf("conv1d", ["N", 4, "L"], { filters: 8, kernel: 3, padding: 1 })).toBe("f32[N, 8, L]");
    expect(typeOf("conv1d", ["N", 4, "L"], { filters: 8, kernel: 4, stride: 2 })).toBe("f32[N, 8, floor((L) / 2) - 1]");
    for (const L of [4, 5, 6, 9]) {
      const m = new TestModel();
      const x = m.input("x", "f32", ["N", 1, "L"]);
      m.output("y", m.call("conv1d", [x], { filters: 1, kernel: 4, stride: 2 }, "c"));
      const y = m.run({ x: randomTensor([2, 1, L]) }).outputs.y!;
      expect(y.shape).toEqual([2, 1, Math.floor((L - 4) / 2) + 1]);
    }
  });

  it("resolves named padding", () => {
    // "same", static: S = 10, stride 3, kernel 4 → O = 4, total = 3·3 + 4 − 10 = 3 → 1 before, 2 after.
    const m = new TestModel();
    const x = m.input("x", "f32", ["N", 1, 10]);
    const same = m.call("conv1d", [x], { filters: 1, kernel: 4, stride: 3, padding: "same" }, "a");
    expect(typeToString(same.type)).toBe("f32[N, 1, 4]");
    expect(same.node.attrs).toMatchObject({ padBegin: [1], padEnd: [2] });
    // "same" with a symbolic size and stride 1: total dilation·(K − 1), the odd cell at the end.
    const m2 = new TestModel();
    const xs = m2.input("x", "f32", ["N", 2, "H", "W"]);
    const s2 = m2.call("conv2d", [xs], { filters: 3, kernel: [4, 3], dilation: [1, 2], padding: "same" }, "b");
    expect(typeToString(s2.type)).toBe("f32[N, 3, H, W]");
    expect(s2.node.attrs).toMatchObject({ padBegin: [1, 2], padEnd: [2, 2] });
    // "full": dilation·(K − 1) on each side.
    const full = m.call("conv1d", [x], { filters: 1, kernel: 3, dilation: 2, padding: "full" }, "c");
    expect(full.node.attrs).toMatchObject({ padBegin: [4], padEnd: [4] });
    expect(typeToString(full.type)).toBe("f32[N, 1, 14]");
    const valid = m.call("conv1d", [x], { filters: 1, kernel: 3, padding: "valid" }, "d");
    expect(typeToString(valid.type)).toBe("f32[N, 1, 8]");
  });

  it("takes per-dim and per-side padding", () => {
    const y = typeOf("conv2d", ["N", 1, 5, 5], { filters: 1, kernel: 3, padding: [[0, 2], [1, 0]] });
    expect(y).toBe("f32[N, 1, 5, 4]");
    expect(typeOf("conv2d", ["N", 1, 5, 5], { filters: 1, kernel: 3, padding: [2, 0] })).toBe("f32[N, 1, 7, 3]");
  });

  it("computes the output rule symbolically through Dim", () => {
    const L = Dim.sym("L");
    const o = slidingOutputDim(L, 5, 1, 2, 3);
    for (const l of [2, 3, 7, 10, 11]) expect(o.evaluate({ L: l })).toBe(Math.floor((l + 3 - 5) / 3) + 1);
  });
});

describe("conv: values", () => {
  it("computes cross-correlation with bias, by hand", () => {
    // y[t] = 1·x[t] + 2·x[t+1] + 3·x[t+2] + 0.5
    const y = runConv("conv1d", t([1, 2, 3, 4, 5], [1, 1, 5]), t([1, 2, 3], [1, 1, 3]), {}, t([0.5]));
    expect(y.toArray()).toEqual([14.5, 20.5, 26.5]);
  });

  it("sums over input channels and produces one map per filter (2-d, by hand)", () => {
    // x: 2 channels of 2×3; filter 0 is [[1, 0], [0, 1]] on channel 0 and all −1 on channel 1; filter 1 picks x[c1] top-left.
    const x = t([1, 2, 3, 4, 5, 6, 10, 20, 30, 40, 50, 60], [1, 2, 2, 3]);
    const w = t([1, 0, 0, 1, -1, -1, -1, -1, 0, 0, 0, 0, 1, 0, 0, 0], [2, 2, 2, 2]);
    const y = runConv("conv2d", x, w, {}, t([0, 1]));
    expect(y.shape).toEqual([1, 2, 1, 2]);
    // filter 0 at (0,0): 1 + 5 − (10 + 20 + 40 + 50) = −114; at (0,1): 2 + 6 − (20 + 30 + 50 + 60) = −152
    expect(y.toArray()).toEqual([-114, -152, 11, 21]);
  });

  it("strides subsample the stride-1 output", () => {
    const x = randomTensor([2, 3, 9, 8], 3);
    const w = randomTensor([4, 3, 3, 2], 4);
    const dense = runConv("conv2d", x, w);
    const strided = runConv("conv2d", x, w, { stride: [2, 3] });
    expect(strided.shape).toEqual([2, 4, 4, 3]);
    for (const [n, f, i, j] of indices(strided.shape) as Iterable<number[]>) {
      expect(strided.get(n!, f!, i!, j!)).toBeCloseTo(dense.get(n!, f!, 2 * i!, 3 * j!), 12);
    }
  });

  it("dilation equals a kernel with zeros inserted", () => {
    const x = randomTensor([1, 2, 11], 5);
    const w = randomTensor([3, 2, 3], 6);
    const spread = RefTensor.zeros([3, 2, 7]);
    for (const [f, c, k] of indices(w.shape) as Iterable<number[]>) spread.set(w.get(f!, c!, k!), f!, c!, 3 * k!);
    const a = runConv("conv1d", x, w, { dilation: 3, padding: [[2, 1]] });
    const b = runConv("conv1d", x, spread, { padding: [[2, 1]] });
    expect(a.shape).toEqual([1, 3, 8]);
    expectClose(a.data, b.data, 1e-12);
  });

  it("asymmetric padding equals a valid convolution of the zero-padded input", () => {
    const x = randomTensor([2, 2, 5, 4], 7);
    const w = randomTensor([3, 2, 3, 3], 8);
    const a = runConv("conv2d", x, w, { padding: [[0, 2], [1, 3]] });
    const b = runConv("conv2d", zeroPad(x, [0, 1], [2, 3]), w);
    expect(a.shape).toEqual([2, 3, 5, 6]);
    expectClose(a.data, b.data, 1e-12);
  });

  it("circular mode wraps around", () => {
    // [1, 2, 3, 4] padded cyclically by 1 is [4, 1, 2, 3, 4, 1]; with kernel [1, 1, 1]: [7, 6, 9, 8]
    const y = runConv("conv1d", t([1, 2, 3, 4], [1, 1, 4]), t([1, 1, 1], [1, 1, 3]), { padding: 1, padding_mode: "circular" });
    expect(y.toArray()).toEqual([7, 6, 9, 8]);
    const x = randomTensor([1, 2, 4, 5], 9);
    const w = randomTensor([2, 2, 3, 3], 10);
    const a = runConv("conv2d", x, w, { padding: [1, 2], padding_mode: "circular", stride: [1, 2] });
    const b = runConv("conv2d", circularPad(x, [1, 2]), w, { stride: [1, 2] });
    expect(a.shape).toEqual([1, 2, 4, 4]);
    expectClose(a.data, b.data, 1e-12);
  });

  it("flip=true computes the true convolution h[t] = Σ x[t − τ]·k[τ]", () => {
    // With full padding this is polynomial multiplication: (1 + 2z + 3z²)(1 + 10z + 100z²).
    const y = runConv("conv1d", t([1, 2, 3], [1, 1, 3]), t([1, 10, 100], [1, 1, 3]), { padding: "full", flip: true });
    expect(y.toArray()).toEqual([1, 12, 123, 230, 300]);
    const x = randomTensor([1, 1, 4, 4], 11);
    const w = t([1, 2, 3, 4], [1, 1, 2, 2]);
    const flipped = runConv("conv2d", x, w, { flip: true });
    const reversed = runConv("conv2d", x, t([4, 3, 2, 1], [1, 1, 2, 2]));
    expectClose(flipped.data, reversed.data, 1e-12);
  });

  it("groups split channels and filters into independent convolutions", () => {
    const x = randomTensor([2, 4, 6], 12);
    const w = randomTensor([6, 2, 3], 13);
    const grouped = runConv("conv1d", x, w, { groups: 2, padding: 1 });
    expect(grouped.shape).toEqual([2, 6, 6]);
    const first = runConv("conv1d", sliceChannels(x, 0, 2), sliceChannels(w, 0, 3, 0), { padding: 1 });
    const second = runConv("conv1d", sliceChannels(x, 2, 4), sliceChannels(w, 3, 6, 0), { padding: 1 });
    expectClose(sliceChannels(grouped, 0, 3).data, first.data, 1e-12);
    expectClose(sliceChannels(grouped, 3, 6).data, second.data, 1e-12);
  });

  it("depthwise (groups = C) filters each channel on its own", () => {
    const x = t([1, 2, 3, 10, 20, 30], [1, 2, 3]);
    const w = t([1, 1, 1, -1], [2, 1, 2]);
    const y = runConv("conv1d", x, w, { groups: 2 });
    expect(y.toArray()).toEqual([3, 5, -10, -10]);
    const m = new TestModel();
    const xi = m.input("x", "f32", ["N", 8, 5, 5]);
    m.call("conv2d", [xi], { filters: 16, kernel: 3, groups: 8 }, "dw");
    expect(typeToString(m.graph.params.get("dw.weight")!.value.type)).toBe("f32[16, 1, 3, 3]");
    const bound = 1 / Math.sqrt(9);
    expect(m.graph.params.get("dw.weight")!.init).toEqual({ kind: "uniform", lo: -bound, hi: bound });
  });

  it("conv3d follows the same rule", () => {
    const x = randomTensor([1, 1, 3, 3, 3], 14);
    const w = RefTensor.filled([1, 1, 3, 3, 3], 1);
    const y = runConv("conv3d", x, w);
    expect(y.shape).toEqual([1, 1, 1, 1, 1]);
    expect(y.data[0]).toBeCloseTo(x.toArray().reduce((a, b) => a + b, 0), 12);
  });
});

describe("conv: parameters and tied tensors", () => {
  it("bias=false drops the bias; bias=<tensor> uses it", () => {
    const m = new TestModel();
    const x = m.input("x", "f32", ["N", 3, 8]);
    const b = m.input("b", "f32", [4]);
    const y1 = m.call("conv1d", [x], { filters: 4, kernel: 3, bias: false }, "c1");
    expect([...m.graph.params.keys()]).toEqual(["c1.weight"]);
    expect(y1.node.inputs).toHaveLength(2);
    expect(y1.node.attrs.hasBias).toBe(false);
    const y2 = m.call("conv1d", [x], { filters: 4, kernel: 3, bias: b }, "c2");
    expect([...m.graph.params.keys()]).toEqual(["c1.weight", "c2.weight"]);
    expect(y2.node.inputs[2]).toBe(b);
  });

  it("weight= infers filters and kernel, and its shape is checked (E216)", () => {
    const m = new TestModel();
    const x = m.input("x", "f32", ["N", 3, 8]);
    const w = m.input("w", "f32", [5, 3, 2]);
    const y = m.call("conv1d", [x], { weight: w }, "c");
    expect(typeToString(y.type)).toBe("f32[N, 5, 7]");
    expect([...m.graph.params.keys()]).toEqual(["c.bias"]);
    const d = onlyDiagnostic(() => m.call("conv1d", [x], { filters: 4, kernel: 2, weight: w }, "bad"));
    expect(d.code).toBe("E216");
    expect(d.message).toBe("conv1d 'bad': tensor passed as weight= must be f32[4, 3, 2], found f32[5, 3, 2]");
  });

  it("runs with the seeded initialisation inside PyTorch's bounds", () => {
    const m = new TestModel();
    const x = m.input("x", "f32", [1, 2, 5]);
    m.output("y", m.call("conv1d", [x], { filters: 3, kernel: 2 }, "c"));
    const y = m.run({ x: randomTensor([1, 2, 5]) }).outputs.y!;
    expect(y.shape).toEqual([1, 3, 4]);
    expect(y.toArray().every(Number.isFinite)).toBe(true);
  });
});

describe("conv_transpose", () => {
  it("scatters each input through the kernel (by hand)", () => {
    // x = [1, 2], kernel [1, 1, 1], stride 2: 1 lands on 0..2, 2 on 2..4 → [1, 1, 3, 2, 2]
    const x = t([1, 2], [1, 1, 2]);
    const w = t([1, 1, 1], [1, 1, 3]);
    expect(runConv("conv_transpose1d", x, w, { stride: 2 }).toArray()).toEqual([1, 1, 3, 2, 2]);
    expect(runConv("conv_transpose1d", x, w, { stride: 2, padding: 1 }).toArray()).toEqual([1, 3, 2]);
    expect(runConv("conv_transpose1d", x, w, { stride: 2, output_padding: 1 }).toArray()).toEqual([1, 1, 3, 2, 2, 0]);
    expect(runConv("conv_transpose1d", x, w, { stride: 2 }, t([10])).toArray()).toEqual([11, 11, 13, 12, 12]);
  });

  it("matches PyTorch's ConvTranspose2d documentation shapes and init", () => {
    // Conv2d(16, 16, 3, stride=2, padding=1) takes 12×12 to 6×6; ConvTranspose2d with output_padding=1 goes back to 12×12.
    const m = new TestModel();
    const x = m.input("x", "f32", ["N", 16, 6, 6]);
    const y = m.call("conv_transpose2d", [x], { filters: 8, kernel: 3, stride: 2, padding: 1, output_padding: 1, groups: 2 }, "up");
    expect(typeToString(y.type)).toBe("f32[N, 8, 12, 12]");
    expect(typeToString(m.graph.params.get("up.weight")!.value.type)).toBe("f32[16, 4, 3, 3]");
    const bound = 1 / Math.sqrt(4 * 9);
    expect(m.graph.params.get("up.weight")!.init).toEqual({ kind: "uniform", lo: -bound, hi: bound });
    expect(m.graph.params.get("up.bias")!.init).toEqual({ kind: "uniform", lo: -bound, hi: bound });
    expect(y.node.attrs).toEqual({ stride: [2, 2], dilation: [1, 1], padBegin: [1, 1], padEnd: [1, 1], outputPadding: [1, 1], groups: 2, hasBias: true });
    expect(typeOf("conv_transpose1d", ["N", 2, "L"], { filters: 3, kernel: 4, stride: 3, padding: [[1, 2]] })).toBe("f32[N, 3, 3*L - 2]");
  });

  it("is the adjoint of conv: <conv(x), y> = <x, conv_transpose(y)> (groups, stride, dilation, padding)", () => {
    const x = randomTensor([2, 4, 9, 8], 21);
    const w = randomTensor([6, 2, 3, 2], 22); // conv: 4 → 6 channels, groups 2
    const opts = { stride: [2, 3], dilation: [2, 1], padding: [[1, 2], [0, 1]], groups: 2 };
    const cx = runConv("conv2d", x, w, opts);
    expect(cx.shape).toEqual([2, 6, 4, 3]);
    const y = randomTensor(cx.shape, 23);
    // (4 − 1)·2 − 3 + 2·2 + 1 + op = 8 + op = 9 → op 1; (3 − 1)·3 − 1 + 1 + 1 + op = 7 + op = 8 → op 1
    const ty = runConv("conv_transpose2d", y, w, { ...opts, output_padding: [1, 1] });
    expect(ty.shape).toEqual(x.shape);
    const dot = (a: RefTensor, b: RefTensor) => a.toArray().reduce((s, v, i) => s + v * b.data[i]!, 0);
    expect(dot(cx, y)).toBeCloseTo(dot(x, ty), 10);
  });
});

describe("conv: errors", () => {
  function model(shape: (number | string)[], dtype: "f32" | "i32" = "f32") {
    const m = new TestModel();
    return { m, x: m.input("s2", dtype, shape) };
  }

  it("E201: kernel larger than the padded input, with the padding that fixes it", () => {
    const { m, x } = model(["N", 6, 4, 4]);
    const d = onlyDiagnostic(() => m.call("conv2d", [x], { filters: 16, kernel: 5 }, "c3"));
    expect(d.code).toBe("E201");
    expect(d.message).toBe("conv2d 'c3': kernel 5 is larger than the padded input 4 along dim 3");
    expect(d.notes).toEqual(["input s2 is f32[N, 6, 4, 4]"]);
    expect(d.hint).toBe("add padding=2 or use a smaller kernel");
  });

  it("E201 names dilation, the dim and existing padding", () => {
    const { m, x } = model(["N", 1, 10, 3]);
    const d = onlyDiagnostic(() => m.call("conv2d", [x], { filters: 1, kernel: 3, dilation: [1, 2], padding: [[0, 0], [0, 1]] }, "c"));
    expect(d.message).toBe("conv2d 'c': kernel 3 (dilated to 5) is larger than the padded input 4 along dim 3");
    expect(d.hint).toBe("use padding=2 or use a smaller kernel");
  });

  it("symbolic sizes that turn out too small fail at run time", () => {
    const m = new TestModel();
    const x = m.input("x", "f32", ["N", 1, "L"]);
    m.output("y", m.call("conv1d", [x], { filters: 1, kernel: 5 }, "c"));
    expect(() => m.run({ x: randomTensor([1, 1, 3]) })).toThrow(RunError);
    expect(() => m.run({ x: randomTensor([1, 1, 3]) })).toThrow("kernel 5 is larger than the padded input 3 along dim 2");
  });

  it("E210: wrong rank; E213: not f32", () => {
    const { m, x } = model(["N", 28, 28]);
    const d = onlyDiagnostic(() => m.call("conv2d", [x], { filters: 6, kernel: 5 }, "c1"));
    expect(d.code).toBe("E210");
    expect(d.message).toBe("conv2d 'c1': expected an input of rank 4 ([N, C, H, W]), found rank 3 (f32[N, 28, 28])");
    const i = model(["N", 1, 8], "i32");
    const e = onlyDiagnostic(() => i.m.call("conv1d", [i.x], { filters: 2, kernel: 3 }, "c1"));
    expect(e.code).toBe("E213");
    expect(e.message).toBe("conv1d 'c1': expected an f32 input, found i32[N, 1, 8]");
  });

  it("E211: groups must divide channels and filters", () => {
    const { m, x } = model(["N", 6, 8]);
    const a = onlyDiagnostic(() => m.call("conv1d", [x], { filters: 8, kernel: 3, groups: 4 }, "g1"));
    expect(a.code).toBe("E211");
    expect(a.message).toBe("conv1d 'g1': groups=4 does not divide the 6 input channels");
    const b = onlyDiagnostic(() => m.call("conv1d", [x], { filters: 4, kernel: 3, groups: 3 }, "g2"));
    expect(b.code).toBe("E211");
    expect(b.message).toBe("conv1d 'g2': groups=3 does not divide filters=4");
  });

  it("E212: the channel dim must be static", () => {
    const { m, x } = model(["N", "C", 8]);
    const d = onlyDiagnostic(() => m.call("conv1d", [x], { filters: 4, kernel: 3 }, "c"));
    expect(d.code).toBe("E212");
    expect(d.message).toBe("conv1d 'c': the channel dim (dim 1) must be a static size to shape the weight, found C");
  });

  it("E404: \"same\" with stride > 1 needs a static size", () => {
    const { m, x } = model(["N", 1, "L"]);
    const d = onlyDiagnostic(() => m.call("conv1d", [x], { filters: 1, kernel: 3, stride: 2, padding: "same" }, "c"));
    expect(d.code).toBe("E404");
    expect(d.message).toBe('conv1d \'c\': padding="same" needs a static size along dim 2 when the stride is 2, found L');
  });

  it("E404 / E403 / E401: bad argument values", () => {
    const cases: [Record<string, JsArg>, string, string][] = [
      [{ filters: 1, kernel: 3, padding: -1 }, "E404", "conv1d 'c': argument 'padding' must not be negative, found -1"],
      [{ filters: 1, kernel: 0 }, "E404", "conv1d 'c': argument 'kernel' must be positive, found 0"],
      [{ filters: 1, kernel: 3, stride: 0 }, "E404", "conv1d 'c': argument 'stride' must be positive, found 0"],
      [{ filters: 1, kernel: [3, 3] }, "E404", "conv1d 'c': argument 'kernel' needs 1 values (one per spatial dim), found 2"],
      [{ filters: 1, kernel: 3, padding: "half" }, "E404", 'conv1d \'c\': argument \'padding\' must be an integer, a list of 1 integers, a list of 1 [begin, end] pairs or one of "valid", "same", "full", found "half"'],
      [{ filters: 1, kernel: 3, padding: 1.5 }, "E403", 'conv1d \'c\': argument \'padding\' must be an integer, a list of 1 integers, a list of 1 [begin, end] pairs or one of "valid", "same", "full", found the number 1.5'],
      [{ filters: 1, kernel: 3, padding_mode: "reflect" }, "E404", 'conv1d \'c\': argument \'padding_mode\' must be one of "zeros", "circular", found "reflect"'],
      [{ filters: 1, kernel: 3, bias: 2 }, "E403", "conv1d 'c': argument 'bias' must be true, false or a tensor, found the integer 2"],
      [{ kernel: 3 }, "E401", "conv1d 'c': missing argument 'filters'"],
    ];
    for (const [opts, code, message] of cases) {
      const { m, x } = model(["N", 1, 8]);
      const d = onlyDiagnostic(() => m.call("conv1d", [x], opts, "c"));
      expect([d.code, d.message]).toEqual([code, message]);
    }
  });

  it("conv_transpose: output_padding must be below stride or dilation (E404), output must be positive (E212)", () => {
    const { m, x } = model(["N", 2, 3]);
    const a = onlyDiagnostic(() => m.call("conv_transpose1d", [x], { filters: 1, kernel: 3, stride: 2, output_padding: 2 }, "t"));
    expect(a.code).toBe("E404");
    expect(a.message).toBe("conv_transpose1d 't': output_padding 2 must be smaller than the stride (2) or the dilation (1) along dim 2");
    const b = onlyDiagnostic(() => m.call("conv_transpose1d", [x], { filters: 1, kernel: 1, padding: 2 }, "t2"));
    expect(b.code).toBe("E212");
    expect(b.message).toBe("conv_transpose1d 't2': the output size along dim 2 would be -1: padding 2+2 crops more than the 3 cells the transposed convolution produces");
    const c = onlyDiagnostic(() => m.call("conv_transpose1d", [x], { filters: 1, kernel: 3, padding: "same" }, "t3"));
    expect(c.code).toBe("E404");
  });
});

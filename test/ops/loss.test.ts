import { describe, expect, it } from "vitest";
import type { Value } from "../../compiler/ir/graph.ts";
import { typeToString } from "../../compiler/ir/types.ts";
import { getBuiltin, hasOp } from "../../compiler/ops/index.ts";
import { RunError } from "../../compiler/reference/interpreter.ts";
import { TestModel, diagnosticsOf, expectClose, t } from "../support/build.ts";

const lse = (xs: number[]) => Math.log(xs.reduce((a, x) => a + Math.exp(x), 0));

/** logits [[1, 2, 3], [1, 1, 1]]: per-row losses for labels 2 and 0. */
const LOGITS = t([1, 2, 3, 1, 1, 1], [2, 3]);
const ROW0 = lse([1, 2, 3]) - 3; // 0.4076
const ROW1 = Math.log(3);

function ceModel(kw: Record<string, number | Value> = {}, withMask = false, shape: (string | number)[] = ["N", 3]) {
  const m = new TestModel();
  const logits = m.input("logits", "f32", shape);
  const labels = m.input("labels", "i32", shape.filter((_, i) => i !== 1));
  const extra: Record<string, Value> = withMask ? { mask: m.input("mask", "bool", shape.filter((_, i) => i !== 1)) } : {};
  const loss = m.call("cross_entropy", [logits, labels], { ...kw, ...extra }, "xent");
  m.output("xent", loss, "loss");
  return m;
}

const labels = (xs: number[], shape = [xs.length]) => t(xs, shape, "i32");
const bools = (xs: boolean[], shape = [xs.length]) => t(xs.map(Number), shape, "bool");

describe("cross_entropy", () => {
  it("is a scalar mean of log-sum-exp minus the true logit", () => {
    const m = ceModel();
    const node = m.graph.nodes.find((n) => n.op === "cross_entropy")!;
    expect(node.attrs).toEqual({ axis: 1, ignoreIndex: -100, hasMask: false });
    expect(typeToString(m.graph.outputs[0]!.value.type)).toBe("f32[]");
    const r = m.run({ logits: LOGITS, labels: labels([2, 0]) });
    expect(r.outputs.xent!.shape).toEqual([]);
    expectClose(r.outputs.xent!.data, [(ROW0 + ROW1) / 2]);
    expect(r.outputs.xent!.data[0]).toBeCloseTo(0.75311, 5);
  });

  it("excludes masked-out positions from the mean", () => {
    const m = ceModel({}, true);
    expect(m.graph.nodes.find((n) => n.op === "cross_entropy")!.attrs).toEqual({ axis: 1, ignoreIndex: -100, hasMask: true });
    expectClose(m.run({ logits: LOGITS, labels: labels([2, 0]), mask: bools([true, false]) }).outputs.xent!.data, [ROW0]);
    expectClose(m.run({ logits: LOGITS, labels: labels([2, 0]), mask: bools([false, true]) }).outputs.xent!.data, [ROW1]);
    // a masked position may hold any label, even an invalid one
    expectClose(m.run({ logits: LOGITS, labels: labels([2, 99]), mask: bools([true, false]) }).outputs.xent!.data, [ROW0]);
  });

  it("skips ignore_index (default -100, or as given)", () => {
    expectClose(ceModel().run({ logits: LOGITS, labels: labels([2, -100]) }).outputs.xent!.data, [ROW0]);
    expectClose(ceModel({ ignore_index: 0 }).run({ logits: LOGITS, labels: labels([2, 0]) }).outputs.xent!.data, [ROW0]);
    const m = ceModel({ ignore_index: 0 });
    expect(m.graph.nodes.find((n) => n.op === "cross_entropy")!.attrs.ignoreIndex).toBe(0);
  });

  it("is 0 when no position counts (PyTorch would give NaN)", () => {
    expect(ceModel().run({ logits: LOGITS, labels: labels([-100, -100]) }).outputs.xent!.data[0]).toBe(0);
    expect(ceModel({}, true).run({ logits: LOGITS, labels: labels([1, 1]), mask: bools([false, false]) }).outputs.xent!.data[0]).toBe(0);
  });

  it("takes PyTorch's [N, C, L] layout with labels [N, L]", () => {
    const m = ceModel({}, false, ["N", 3, "L"]);
    // logits[0, :, 0] = [1, 2, 3], logits[0, :, 1] = [1, 1, 1]
    const logits = t([1, 1, 2, 1, 3, 1], [1, 3, 2]);
    expectClose(m.run({ logits, labels: labels([2, 0], [1, 2]) }).outputs.xent!.data, [(ROW0 + ROW1) / 2]);
  });

  it("takes the class axis from axis=, negative counting from the end", () => {
    const m = new TestModel();
    const logits = m.input("logits", "f32", ["N", "L", 3]);
    const lab = m.input("labels", "i32", ["N", "L"]);
    const loss = m.call("cross_entropy", [logits, lab], { axis: -1 }, "xent");
    m.output("xent", loss, "loss");
    expect(m.graph.nodes.find((n) => n.op === "cross_entropy")!.attrs.axis).toBe(2);
    const r = m.run({ logits: t([1, 2, 3, 1, 1, 1], [1, 2, 3]), labels: labels([2, 0], [1, 2]) });
    expectClose(r.outputs.xent!.data, [(ROW0 + ROW1) / 2]);
  });

  it("takes 1-D logits [C] with a scalar label (class axis 0)", () => {
    const m = new TestModel();
    const logits = m.input("logits", "f32", [3]);
    const lab = m.input("label", "i32", []);
    m.output("xent", m.call("cross_entropy", [logits, lab], {}, "xent"), "loss");
    expectClose(m.run({ logits: t([1, 2, 3]), label: t([2], [], "i32") }).outputs.xent!.data, [ROW0]);
  });

  it("is finite and exact for huge logits", () => {
    const m = ceModel();
    const logits = t([1e4, -1e4, 0, -1e4, 1e4, 1e4], [2, 3]);
    const r = m.run({ logits, labels: labels([1, 0]) });
    // row 0: lse = 1e4, loss 2e4; row 1: lse = 1e4 + log 2, loss 2e4 + log 2
    expectClose(r.outputs.xent!.data, [(2e4 + 2e4 + Math.log(2)) / 2]);
    const right = m.run({ logits, labels: labels([0, 1]) });
    expectClose(right.outputs.xent!.data, [Math.log(2) / 2]);
  });

  it("fails at run time on a label outside [0, C) that is not ignored", () => {
    const m = ceModel();
    expect(() => m.run({ logits: LOGITS, labels: labels([2, 3]) })).toThrow(RunError);
    expect(() => m.run({ logits: LOGITS, labels: labels([2, 3]) })).toThrow("label 3 at labels[1] is outside the classes [0, 3) (ignore_index is -100)");
    expect(() => m.run({ logits: LOGITS, labels: labels([-1, 0]) })).toThrow("label -1 at labels[0] is outside the classes [0, 3)");
  });

  it("reports mismatched labels, masks, dtypes and axes", () => {
    const m = new TestModel();
    const logits = m.input("logits", "f32", ["N", 10, "L"]);
    const good = m.input("good", "i32", ["N", "L"]);
    const flat = m.input("flat", "i32", ["N"]);
    const wrong = m.input("wrong", "i32", ["N", 5]);
    const onehot = m.input("onehot", "i32", ["N", 10, "L"]);
    const flabels = m.input("flabels", "f32", ["N", "L"]);
    const ilogits = m.input("ilogits", "i32", ["N", 10]);
    const fmask = m.input("fmask", "f32", ["N", "L"]);
    const smask = m.input("smask", "bool", ["N"]);
    const scalar = m.input("scalar", "f32", []);

    let d = diagnosticsOf(() => m.call("cross_entropy", [logits, flat], {}, "c1"))[0]!;
    expect(d.code).toBe("E210");
    expect(d.message).toBe("cross_entropy 'c1': labels must have shape [N, L] (logits f32[N, 10, L] without class axis 1), found i32[N]");
    expect(d.notes).toEqual(["flat is i32[N]", "logits is f32[N, 10, L]"]);

    d = diagnosticsOf(() => m.call("cross_entropy", [logits, wrong], {}, "c2"))[0]!;
    expect(d.code).toBe("E202");
    expect(d.message).toContain("labels must have shape [N, L] (logits f32[N, 10, L] without class axis 1), found i32[N, 5]");

    d = diagnosticsOf(() => m.call("cross_entropy", [logits, onehot], {}, "c3"))[0]!;
    expect(d.code).toBe("E210");
    expect(d.hint).toBe("labels are class indices, not one-hot vectors or probabilities");

    d = diagnosticsOf(() => m.call("cross_entropy", [logits, flabels], {}, "c4"))[0]!;
    expect(d.code).toBe("E213");
    expect(d.message).toContain("labels must be i32, found f32[N, L]");

    d = diagnosticsOf(() => m.call("cross_entropy", [ilogits, flat], {}, "c5"))[0]!;
    expect(d.code).toBe("E213");
    expect(d.message).toContain("logits must be f32, found i32[N, 10]");

    d = diagnosticsOf(() => m.call("cross_entropy", [logits, good], { mask: fmask }, "c6"))[0]!;
    expect(d.code).toBe("E213");
    expect(d.message).toContain("mask must be bool, found f32[N, L]");

    d = diagnosticsOf(() => m.call("cross_entropy", [logits, good], { mask: smask }, "c7"))[0]!;
    expect(d.code).toBe("E210");
    expect(d.message).toContain("mask must have shape [N, L] (the shape of labels), found bool[N]");

    d = diagnosticsOf(() => m.call("cross_entropy", [logits, good], { axis: 3 }, "c8"))[0]!;
    expect(d.code).toBe("E209");
    expect(d.message).toBe("cross_entropy 'c8': axis 3 is out of range for logits f32[N, 10, L] (valid axes are -3..2)");

    d = diagnosticsOf(() => m.call("cross_entropy", [scalar, good], {}, "c9"))[0]!;
    expect(d.code).toBe("E210");
    expect(d.message).toContain("cross_entropy needs logits with a class axis, found f32[]");

    d = diagnosticsOf(() => m.call("cross_entropy", [logits, good], { ignore_index: 0.5 }, "c10"))[0]!;
    expect(d.code).toBe("E403");
  });
});

describe("mse", () => {
  it("is the mean squared difference over all elements", () => {
    const m = new TestModel();
    const a = m.input("a", "f32", ["N", 2]);
    const b = m.input("b", "f32", ["N", 2]);
    const loss = m.call("mse", [a, b], {}, "l");
    expect(typeToString(loss.type)).toBe("f32[]");
    m.output("l", loss, "loss");
    const r = m.run({ a: t([1, 2, 3, 4], [2, 2]), b: t([1, 0, 6, 4], [2, 2]) });
    expectClose(r.outputs.l!.data, [(0 + 4 + 9 + 0) / 4]);
  });

  it("does not broadcast", () => {
    const m = new TestModel();
    const a = m.input("a", "f32", ["N", 3]);
    const b = m.input("b", "f32", ["N", 4]);
    const c = m.input("c", "f32", [3]);
    const i = m.input("i", "i32", ["N", 3]);
    let d = diagnosticsOf(() => m.call("mse", [a, b], {}, "l1"))[0]!;
    expect(d.code).toBe("E203");
    expect(d.message).toBe("mse 'l1': a and b must have the same shape (no broadcasting), found f32[N, 3] and f32[N, 4]");
    expect(d.notes).toEqual(["a is f32[N, 3]", "b is f32[N, 4]"]);
    d = diagnosticsOf(() => m.call("mse", [a, c], {}, "l2"))[0]!;
    expect(d.code).toBe("E210");
    expect(d.message).toContain("found f32[N, 3] and f32[3]");
    d = diagnosticsOf(() => m.call("mse", [a, i], {}, "l3"))[0]!;
    expect(d.code).toBe("E213");
    expect(d.message).toContain("b must be f32, found i32[N, 3]");
  });
});

describe("bce_with_logits", () => {
  const stable = (x: number, y: number) => Math.max(x, 0) - x * y + Math.log1p(Math.exp(-Math.abs(x)));

  it("matches the stable form and is exact at ±1e4", () => {
    const m = new TestModel();
    const x = m.input("x", "f32", ["N"]);
    const y = m.input("y", "f32", ["N"]);
    const loss = m.call("bce_with_logits", [x, y], {}, "l");
    m.output("l", loss, "loss");
    expect(typeToString(loss.type)).toBe("f32[]");
    // perfectly right at ±1e4 → 0; perfectly wrong → 1e4; 0 → log 2; a soft target
    const xs = [1e4, -1e4, 1e4, -1e4, 0, 2];
    const ys = [1, 0, 0, 1, 0.5, 0.25];
    const r = m.run({ x: t(xs), y: t(ys) });
    const want = (0 + 0 + 1e4 + 1e4 + Math.log(2) + (2 - 0.5 + Math.log1p(Math.exp(-2)))) / 6;
    expectClose(r.outputs.l!.data, [want]);
    expect(Number.isFinite(r.outputs.l!.data[0]!)).toBe(true);
    // and agrees with the naive formula where that is safe
    const naive = (x0: number, y0: number) => -(y0 * Math.log(1 / (1 + Math.exp(-x0))) + (1 - y0) * Math.log(1 - 1 / (1 + Math.exp(-x0))));
    expect(stable(0.7, 0.3)).toBeCloseTo(naive(0.7, 0.3), 12);
    const r2 = m.run({ x: t([0.7, -1.3]), y: t([0.3, 1]) });
    expectClose(r2.outputs.l!.data, [(naive(0.7, 0.3) + naive(-1.3, 1)) / 2]);
  });

  it("needs f32 targets of the logits' shape", () => {
    const m = new TestModel();
    const x = m.input("x", "f32", ["N", 2]);
    const yb = m.input("yb", "bool", ["N", 2]);
    const y1 = m.input("y1", "f32", ["N", 1]);
    let d = diagnosticsOf(() => m.call("bce_with_logits", [x, yb], {}, "l1"))[0]!;
    expect(d.code).toBe("E213");
    expect(d.message).toContain("targets must be f32, found bool[N, 2]");
    d = diagnosticsOf(() => m.call("bce_with_logits", [x, y1], {}, "l2"))[0]!;
    expect(d.code).toBe("E203");
    expect(d.message).toContain("logits and targets must have the same shape (no broadcasting), found f32[N, 2] and f32[N, 1]");
  });
});


describe("skip-gram negative sampling with logsigmoid (elementwise family)", () => {
  it("-mean(logsigmoid(dot)) is stable for scores of any magnitude", () => {
    const m = new TestModel();
    const dot = m.input("dot", "f32", ["N"]);
    const ls = m.call("logsigmoid", [dot], {}, "ls");
    const mean = m.call("mean", [ls], {}, "mn");
    const loss = m.s.emitOp("neg", [mean], {}, undefined, "operator '-'");
    m.output("loss", loss[0]!, "loss");
    const scores = [1e4, -1e4, 0, 2];
    const r = m.run({ dot: t(scores) });
    // −log σ(x) = log(1 + exp(−x)): 0, 1e4, log 2, log1p(e^−2)
    const want = (0 + 1e4 + Math.log(2) + Math.log1p(Math.exp(-2))) / 4;
    expectClose(r.outputs.loss!.data, [want]);
  });
});

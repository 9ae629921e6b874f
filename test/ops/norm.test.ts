import { describe, expect, it } from "vitest";
import { typeToString } from "../../compiler/ir/types.ts";
import { RunError } from "../../compiler/reference/interpreter.ts";
import { TestModel, diagnosticsOf, expectClose, randomTensor, t } from "../support/build.ts";

// x: [N=2, C=2, L=2]. Channel 0 holds 1, 2, 3, 6 (mean 3, biased var 3.5, unbiased 14/3);
// channel 1 holds 3, 5, 7, 9 (mean 6, biased var 5, unbiased 20/3).
const X = t([1, 2, 3, 5, 3, 6, 7, 9], [2, 2, 2]);
const CHANNEL = [0, 0, 1, 1, 0, 0, 1, 1];

function batchnormModel(kw: Record<string, number> = { eps: 0 }) {
  const m = new TestModel();
  const x = m.input("x", "f32", ["N", 2, 2]);
  const y = m.call("batchnorm", [x], kw, "bn");
  m.output("y", y);
  return m;
}

describe("batchnorm", () => {
  const affine = { "bn.weight": t([2, 0.5]), "bn.bias": t([1, -1]) };

  it("creates PyTorch's params and buffers and keeps the input type", () => {
    const m = batchnormModel();
    const g = m.graph;
    expect(typeToString(g.outputs[0]!.value.type)).toBe("f32[N, 2, 2]");
    expect(g.trainableParams().map((p) => `${p.name}:${typeToString(p.value.type)}:${p.init.kind}`)).toEqual(["bn.weight:f32[2]:ones", "bn.bias:f32[2]:zeros"]);
    expect(g.buffers().map((p) => `${p.name}:${typeToString(p.value.type)}:${p.init.kind}`)).toEqual(["bn.running_mean:f32[2]:zeros", "bn.running_var:f32[2]:ones"]);
    const node = g.nodes.find((n) => n.op === "batchnorm")!;
    expect(node.attrs).toEqual({ momentum: 0.1, eps: 0 });
    expect(node.outputs.length).toBe(3);
    expect(g.bufferUpdates.map((u) => u.name)).toEqual(["bn.running_mean", "bn.running_var"]);
    expect(g.bufferUpdates.map((u) => u.value)).toEqual([node.outputs[1], node.outputs[2]]);
  });

  it("normalises with batch statistics (biased variance) in training", () => {
    const r = batchnormModel().run({ x: X }, affine, { training: true });
    const mean = [3, 6];
    const std = [Math.sqrt(3.5), Math.sqrt(5)];
    const w = [2, 0.5];
    const b = [1, -1];
    const want = X.toArray().map((v, i) => ((v - mean[CHANNEL[i]!]!) / std[CHANNEL[i]!]!) * w[CHANNEL[i]!]! + b[CHANNEL[i]!]!);
    expectClose(r.outputs.y!.data, want);
    // e.g. the first element: (1 − 3)/√3.5·2 + 1
    expect(r.outputs.y!.data[0]).toBeCloseTo(-1.138, 3);
  });

  it("updates running statistics with the unbiased variance, only in training", () => {
    const r = batchnormModel().run({ x: X }, affine, { training: true });
    expectClose(r.bufferUpdates["bn.running_mean"]!.data, [0.9 * 0 + 0.1 * 3, 0.9 * 0 + 0.1 * 6]);
    expectClose(r.bufferUpdates["bn.running_var"]!.data, [0.9 * 1 + (0.1 * 14) / 3, 0.9 * 1 + (0.1 * 20) / 3]);

    const inference = batchnormModel().run({ x: X }, affine, { training: false });
    expect(inference.bufferUpdates).toEqual({});
  });

  it("uses the momentum given", () => {
    const r = batchnormModel({ momentum: 0.5, eps: 0 }).run({ x: X }, { "bn.running_mean": t([1, 1]), "bn.running_var": t([2, 2]) }, { training: true });
    expectClose(r.bufferUpdates["bn.running_mean"]!.data, [0.5 * 1 + 0.5 * 3, 0.5 * 1 + 0.5 * 6]);
    expectClose(r.bufferUpdates["bn.running_var"]!.data, [0.5 * 2 + (0.5 * 14) / 3, 0.5 * 2 + (0.5 * 20) / 3]);
  });

  it("normalises with the running statistics in inference and leaves them unchanged", () => {
    const m = batchnormModel();
    m.output("new_mean", m.graph.bufferUpdates[0]!.value);
    m.output("new_var", m.graph.bufferUpdates[1]!.value);
    const stats = { "bn.running_mean": t([1, 2]), "bn.running_var": t([4, 9]) };
    const r = m.run({ x: X }, { ...affine, ...stats });
    // channel 0: (v − 1)/2·2 + 1 = v; channel 1: (v − 2)/3·0.5 − 1
    expectClose(r.outputs.y!.data, [1, 2, (3 - 2) / 6 - 1, (5 - 2) / 6 - 1, 3, 6, (7 - 2) / 6 - 1, (9 - 2) / 6 - 1]);
    expectClose(r.outputs.new_mean!.data, [1, 2]);
    expectClose(r.outputs.new_var!.data, [4, 9]);
  });

  it("works on [N, C] and [N, C, H, W] inputs and applies eps", () => {
    const m = new TestModel();
    const x2 = m.input("a", "f32", ["N", 3]);
    const y2 = m.call("batchnorm", [x2], {}, "bn1");
    m.output("y", y2);
    const m4 = new TestModel();
    const y4 = m4.call("batchnorm", [m4.input("b", "f32", ["N", 3, "H", "W"])], {}, "bn2");
    expect(typeToString(y4.type)).toBe("f32[N, 3, H, W]");
    const r = m.run({ a: t([0, 1, 2, 2, 3, 6], [2, 3]) }, {}, { training: true });
    // per column: values ±d around the mean, biased var d², y = ±d/√(d² + 1e-5)
    const s = (d: number) => d / Math.sqrt(d * d + 1e-5);
    expectClose(r.outputs.y!.data, [-s(1), -s(1), -s(2), s(1), s(1), s(2)]);
    expect(Object.keys(r.bufferUpdates).sort()).toEqual(["bn1.running_mean", "bn1.running_var"]);
  });

  it("accepts existing tensors and only updates the buffers it created", () => {
    const m = new TestModel();
    const x = m.input("x", "f32", ["N", 2, 2]);
    const rm = m.input("rm", "f32", [2]);
    const w = m.input("w", "f32", [2]);
    const y = m.call("batchnorm", [x], { running_mean: rm, weight: w, eps: 0 }, "bn");
    m.output("y", y);
    expect([...m.graph.params.keys()]).toEqual(["bn.bias", "bn.running_var"]);
    expect(m.graph.bufferUpdates.map((u) => u.name)).toEqual(["bn.running_var"]);
    const r = m.run({ x: X, rm: t([1, 2]), w: t([2, 0.5]) }, { "bn.running_var": t([4, 9]) });
    // channel 0 with mean 1, var 4, weight 2, bias 0: (v − 1)/2·2
    expectClose(r.outputs.y!.data.slice(0, 2), [0, 1]);
  });

  it("needs more than one value per channel in training", () => {
    const m = batchnormModel();
    expect(() => m.run({ x: t([1, 2, 3, 4], [1, 2, 2]) }, {}, { training: true })).not.toThrow();
    const m2 = new TestModel();
    const x = m2.input("x", "f32", ["N", 2]);
    m2.output("y", m2.call("batchnorm", [x], {}, "bn"));
    expect(() => m2.run({ x: t([1, 2], [1, 2]) }, {}, { training: true })).toThrow(RunError);
    expect(() => m2.run({ x: t([1, 2], [1, 2]) }, {}, { training: true })).toThrow(/more than 1 value per channel/);
    expect(() => m2.run({ x: t([1, 2], [1, 2]) })).not.toThrow();
  });

  it("reports bad inputs and arguments", () => {
    const m = new TestModel();
    const v = m.input("v", "f32", ["N"]);
    const xi = m.input("xi", "i32", ["N", 2]);
    const xs = m.input("xs", "f32", ["N", "C"]);
    const x = m.input("x", "f32", ["N", 2, 4]);
    const w3 = m.input("w3", "f32", [3]);

    let d = diagnosticsOf(() => m.call("batchnorm", [v], {}, "b1"))[0]!;
    expect(d.code).toBe("E210");
    expect(d.message).toBe("batchnorm 'b1': batchnorm needs an input of rank 2 or more (channels on axis 1), found f32[N]");

    d = diagnosticsOf(() => m.call("batchnorm", [xi], {}, "b2"))[0]!;
    expect(d.code).toBe("E213");
    expect(d.message).toContain("batchnorm input must be f32, found i32[N, 2]");

    d = diagnosticsOf(() => m.call("batchnorm", [xs], {}, "b3"))[0]!;
    expect(d.code).toBe("E212");
    expect(d.message).toContain("static channel count on axis 1 for its parameters, found C");

    d = diagnosticsOf(() => m.call("batchnorm", [x], { momentum: 1.5 }, "b4"))[0]!;
    expect(d.code).toBe("E404");
    expect(d.message).toContain("argument 'momentum' must be between 0 and 1, found 1.5");

    d = diagnosticsOf(() => m.call("batchnorm", [x], { eps: -1 }, "b5"))[0]!;
    expect(d.code).toBe("E404");
    expect(d.message).toContain("argument 'eps' must be a non-negative number, found -1");

    d = diagnosticsOf(() => m.call("batchnorm", [x], { running_var: w3 }, "b6"))[0]!;
    expect(d.code).toBe("E216");
    expect(d.message).toContain("tensor passed as running_var= must be f32[2], found f32[3]");

    d = diagnosticsOf(() => m.call("batchnorm", [x], { weight: 2 }, "b7"))[0]!;
    expect(d.code).toBe("E403");
    expect(d.message).toContain("argument 'weight' must be a tensor");
  });
});

describe("layernorm", () => {
  it("normalises the last axis with the biased variance and applies weight and bias", () => {
    const m = new TestModel();
    const x = m.input("x", "f32", ["N", 3]);
    const y = m.call("layernorm", [x], { eps: 0 }, "ln");
    m.output("y", y);
    expect(typeToString(y.type)).toBe("f32[N, 3]");
    expect([...m.graph.params.values()].map((p) => `${p.name}:${typeToString(p.value.type)}:${p.init.kind}`)).toEqual(["ln.weight:f32[3]:ones", "ln.bias:f32[3]:zeros"]);
    expect(m.graph.nodes.find((n) => n.op === "layernorm")!.attrs).toEqual({ axes: [1], eps: 0 });
    // rows [1, 2, 3] (mean 2, var 2/3) and [2, 4, 6] (mean 4, var 8/3): both give [−a, 0, a], a = √1.5
    const a = Math.sqrt(1.5);
    const r = m.run({ x: t([1, 2, 3, 2, 4, 6], [2, 3]) }, { "ln.weight": t([1, 2, 3]), "ln.bias": t([0, 0, 1]) });
    expectClose(r.outputs.y!.data, [-a, 0, 3 * a + 1, -a, 0, 3 * a + 1]);
  });

  it("applies the default eps of 1e-5", () => {
    const m = new TestModel();
    const x = m.input("x", "f32", [2]);
    m.output("y", m.call("layernorm", [x], {}, "ln"));
    // [0, 2]: mean 1, var 1
    expectClose(m.run({ x: t([0, 2]) }).outputs.y!.data, [-1 / Math.sqrt(1 + 1e-5), 1 / Math.sqrt(1 + 1e-5)]);
  });

  it("normalises over several trailing axes with weight of the normalised shape", () => {
    const m = new TestModel();
    const x = m.input("x", "f32", ["N", 2, 2]);
    m.output("y", m.call("layernorm", [x], { axis: [-2, -1], eps: 0 }, "ln"));
    expect(typeToString(m.graph.params.get("ln.weight")!.value.type)).toBe("f32[2, 2]");
    // sample 0: [1, 2, 3, 5] mean 2.75, var 8.75/4; sample 1: [3, 6, 7, 9] mean 6.25, var 18.75/4
    const w = [1, 2, 3, 4];
    const r = m.run({ x: X }, { "ln.weight": t(w, [2, 2]) });
    const want = X.toArray().map((v, i) => (i < 4 ? (v - 2.75) / Math.sqrt(8.75 / 4) : (v - 6.25) / Math.sqrt(18.75 / 4)) * w[i % 4]!);
    expectClose(r.outputs.y!.data, want);
  });

  it("allows a non-trailing axis (channels of [N, C, L]) with weight broadcast over the rest", () => {
    const m = new TestModel();
    const x = m.input("x", "f32", ["N", 2, "L"]);
    const y = m.call("layernorm", [x], { axis: 1, eps: 0 }, "ln");
    m.output("y", y);
    expect(typeToString(y.type)).toBe("f32[N, 2, L]");
    expect(typeToString(m.graph.params.get("ln.weight")!.value.type)).toBe("f32[2]");
    // x[n, :, l] pairs: (1,3) (2,5) (3,7) (6,9): each becomes [−1, 1] scaled by weight [2, 3] plus bias [0, 10]
    const r = m.run({ x: X }, { "ln.weight": t([2, 3]), "ln.bias": t([0, 10]) });
    expectClose(r.outputs.y!.data, [-2, -2, 13, 13, -2, -2, 13, 13]);
  });

  it("accepts weight= and bias= tensors", () => {
    const m = new TestModel();
    const x = m.input("x", "f32", ["N", 2]);
    const w = m.input("w", "f32", [2]);
    m.output("y", m.call("layernorm", [x], { weight: w, eps: 0 }, "ln"));
    expect([...m.graph.params.keys()]).toEqual(["ln.bias"]);
    expectClose(m.run({ x: t([0, 2], [1, 2]), w: t([5, 7]) }).outputs.y!.data, [-5, 7]);
  });

  it("reports bad axes, sizes and dtypes", () => {
    const m = new TestModel();
    const x = m.input("x", "f32", ["N", "L"]);
    const xi = m.input("xi", "i32", ["N", 4]);
    const s = m.input("s", "f32", []);
    const x4 = m.input("x4", "f32", ["N", 4]);
    const w = m.input("w", "f32", [3]);

    let d = diagnosticsOf(() => m.call("layernorm", [x4], { axis: 2 }, "l1"))[0]!;
    expect(d.code).toBe("E209");
    expect(d.message).toBe("layernorm 'l1': axis 2 is out of range for f32[N, 4] (valid axes are -2..1)");

    d = diagnosticsOf(() => m.call("layernorm", [x4], { axis: [1, -1] }, "l2"))[0]!;
    expect(d.code).toBe("E404");
    expect(d.message).toContain("axis 1 is listed twice in 'axis'");

    d = diagnosticsOf(() => m.call("layernorm", [x4], { axis: [] }, "l3"))[0]!;
    expect(d.code).toBe("E404");
    expect(d.message).toContain("must name at least one axis");

    d = diagnosticsOf(() => m.call("layernorm", [x], {}, "l4"))[0]!;
    expect(d.code).toBe("E212");
    expect(d.message).toContain("normalised axis 1 has size L");

    d = diagnosticsOf(() => m.call("layernorm", [xi], {}, "l5"))[0]!;
    expect(d.code).toBe("E213");
    expect(d.message).toContain("layernorm input must be f32, found i32[N, 4]");

    d = diagnosticsOf(() => m.call("layernorm", [s], {}, "l6"))[0]!;
    expect(d.code).toBe("E210");
    expect(d.message).toContain("rank 1 or more, found f32[]");

    d = diagnosticsOf(() => m.call("layernorm", [x4], { weight: w }, "l7"))[0]!;
    expect(d.code).toBe("E216");
    expect(d.message).toContain("tensor passed as weight= must be f32[4], found f32[3]");

    d = diagnosticsOf(() => m.call("layernorm", [x4], { eps: -0.5 }, "l8"))[0]!;
    expect(d.code).toBe("E404");
  });
});

describe("dropout", () => {
  function dropoutModel(p: number) {
    const m = new TestModel();
    const x = m.input("x", "f32", ["N"]);
    const y = m.call("dropout", [x], { p }, "d");
    m.output("y", y);
    const node = m.graph.nodes.find((n) => n.op === "dropout")!;
    m.output("mask", node.outputs[1]!);
    return m;
  }

  it("emits dropout {p} with y and a mask of x's type", () => {
    const m = dropoutModel(0.25);
    const node = m.graph.nodes.find((n) => n.op === "dropout")!;
    expect(node.attrs).toEqual({ p: 0.25 });
    expect(node.outputs.map((v) => typeToString(v.type))).toEqual(["f32[N]", "f32[N]"]);
    expect(m.graph.outputs[0]!.value).toBe(node.outputs[0]);
  });

  it("is the identity in inference", () => {
    const x = randomTensor([100], 3);
    const r = dropoutModel(0.5).run({ x });
    expectClose(r.outputs.y!.data, x.data);
    expect(r.outputs.mask!.toArray().every((v) => v === 1)).toBe(true);
  });

  it("drops a fraction p and scales survivors by 1/(1 − p) in training", () => {
    const n = 20000;
    const x = randomTensor([n], 5, 1, 2); // no zeros, so a zero means dropped
    const p = 0.3;
    const r = dropoutModel(p).run({ x }, {}, { training: true, seed: 7 });
    const y = r.outputs.y!.data;
    const mask = r.outputs.mask!.data;
    let zeros = 0;
    const wrong: number[] = [];
    for (let i = 0; i < n; i++) {
      const ok = y[i] === 0 ? mask[i] === 0 : Math.abs(y[i]! - x.data[i]! / (1 - p)) < 1e-12 && Math.abs(mask[i]! - 1 / (1 - p)) < 1e-12;
      if (y[i] === 0) zeros++;
      if (!ok) wrong.push(i);
    }
    expect(wrong).toEqual([]);
    expect(Math.abs(zeros / n - p)).toBeLessThan(0.015);
  });

  it("is deterministic for a seed and differs across seeds", () => {
    const x = randomTensor([500], 9, 1, 2);
    const m = dropoutModel(0.5);
    const a = m.run({ x }, {}, { training: true, seed: 1 }).outputs.y!.toArray();
    const b = m.run({ x }, {}, { training: true, seed: 1 }).outputs.y!.toArray();
    const c = m.run({ x }, {}, { training: true, seed: 2 }).outputs.y!.toArray();
    expect(a).toEqual(b);
    expect(a).not.toEqual(c);
  });

  it("rejects p outside [0, 1) and a missing p", () => {
    const m = new TestModel();
    const x = m.input("x", "f32", ["N"]);
    let d = diagnosticsOf(() => m.call("dropout", [x], { p: 1 }, "d1"))[0]!;
    expect(d.code).toBe("E404");
    expect(d.message).toBe("dropout 'd1': argument 'p' must be a probability in [0, 1), found 1");
    d = diagnosticsOf(() => m.call("dropout", [x], { p: -0.1 }, "d2"))[0]!;
    expect(d.code).toBe("E404");
    d = diagnosticsOf(() => m.call("dropout", [x], {}, "d3"))[0]!;
    expect(d.code).toBe("E401");
    const xi = m.input("xi", "i32", ["N"]);
    d = diagnosticsOf(() => m.call("dropout", [xi, 0.5], {}, "d4"))[0]!;
    expect(d.code).toBe("E213");
    expect(d.message).toContain("dropout input must be f32, found i32[N]");
  });
});

describe("gaussian_noise", () => {
  function noiseModel(std: number) {
    const m = new TestModel();
    const x = m.input("x", "f32", ["N"]);
    const y = m.call("gaussian_noise", [x, std], {}, "g");
    m.output("y", y);
    return m;
  }

  it("is the identity in inference", () => {
    const x = randomTensor([50], 4);
    expectClose(noiseModel(2).run({ x }).outputs.y!.data, x.data);
  });

  it("adds zero-mean noise of the given std in training, deterministically per seed", () => {
    const n = 20000;
    const x = t(new Array(n).fill(3));
    const m = noiseModel(0.5);
    expect(m.graph.nodes.find((nd) => nd.op === "gaussian_noise")!.attrs).toEqual({ std: 0.5 });
    const y = m.run({ x }, {}, { training: true, seed: 11 }).outputs.y!.toArray();
    const mean = y.reduce((a, b) => a + b, 0) / n;
    const std = Math.sqrt(y.reduce((a, b) => a + (b - mean) ** 2, 0) / n);
    expect(Math.abs(mean - 3)).toBeLessThan(0.02);
    expect(Math.abs(std - 0.5)).toBeLessThan(0.02);
    expect(m.run({ x }, {}, { training: true, seed: 11 }).outputs.y!.toArray()).toEqual(y);
    expect(m.run({ x }, {}, { training: true, seed: 12 }).outputs.y!.toArray()).not.toEqual(y);
  });

  it("rejects a negative std", () => {
    const m = new TestModel();
    const x = m.input("x", "f32", ["N"]);
    const d = diagnosticsOf(() => m.call("gaussian_noise", [x], { std: -1 }, "g"))[0]!;
    expect(d.code).toBe("E404");
    expect(d.message).toBe("gaussian_noise 'g': argument 'std' must be a non-negative number, found -1");
  });
});

// Worked examples from the course notes, reproduced exactly (tolerance 1e-4
// where the notes round to four decimals).

import { describe, expect, it } from "vitest";
import { typeToString } from "../../compiler/ir/types.ts";
import { expectClose, t, TestModel, type JsArg } from "../support/build.ts";

const third = 1 / 3;

describe("course examples: 1-d moving average", () => {
  const signal = [0.1, 0.2, 0.3, 0.1, 0.1, 0.1, 0.3, 0.2, 0.1];

  function movingAverage(padding: number): number[] {
    const m = new TestModel();
    const x = m.input("x", "f32", [1, 1, 9]);
    const k = m.input("k", "f32", [1, 1, 3]);
    const y = m.call("conv1d", [x], { filters: 1, kernel: 3, padding, weight: k, bias: false }, "avg");
    m.output("y", y);
    expect(m.graph.params.size).toBe(0);
    return m.run({ x: t(signal, [1, 1, 9]), k: t([third, third, third], [1, 1, 3]) }).outputs.y!.toArray();
  }

  it("without padding gives .2 .2 .1667 .1 .1667 .2 .2", () => {
    expectClose(movingAverage(0), [0.2, 0.2, 0.1667, 0.1, 0.1667, 0.2, 0.2], 1e-4);
  });

  it("with zero padding 1 gives .1 .2 .2 .1667 .1 .1667 .2 .2 .1", () => {
    expectClose(movingAverage(1), [0.1, 0.2, 0.2, 0.1667, 0.1, 0.1667, 0.2, 0.2, 0.1], 1e-4);
  });
});

describe("course examples: output size (N − F)/S + 1", () => {
  it("N=32, F=5 gives 28 at stride 1 and 10 at stride 3", () => {
    const m = new TestModel();
    const x = m.input("x", "f32", ["B", 1, 32]);
    expect(typeToString(m.call("conv1d", [x], { filters: 1, kernel: 5 }, "s1").type)).toBe("f32[B, 1, 28]");
    expect(typeToString(m.call("conv1d", [x], { filters: 1, kernel: 5, stride: 3 }, "s3").type)).toBe("f32[B, 1, 10]");
  });
});

describe("course examples: a 4×4×3 input with a 2×2×2 filter (conv3d, one channel)", () => {
  // x[i, j, k] = 12i + 3j + k (0..47 in row-major order), w[a, b, c] = 1 + 4a + 2b + c (1..8).
  // By hand, the first output is Σ w·x over the 2×2×2 block at the origin:
  //   1·0 + 2·1 + 3·3 + 4·4 + 5·12 + 6·13 + 7·15 + 8·16 = 398,
  // and each step along the last mode adds Σw = 36, along the middle one 3·36, along the first 12·36.
  // With the last mode padded by one zero at its end, the new last column reads
  // only c = 0 of the filter on x[., ., 2]: 1·2 + 3·5 + 5·14 + 7·17 = 206.
  const x = t(Array.from({ length: 48 }, (_, i) => i), [1, 1, 4, 4, 3]);
  const w = t([1, 2, 3, 4, 5, 6, 7, 8], [1, 1, 2, 2, 2]);

  function conv3d(opts: Record<string, JsArg>) {
    const m = new TestModel();
    const xi = m.input("x", "f32", [1, 1, 4, 4, 3]);
    const wi = m.input("w", "f32", [1, 1, 2, 2, 2]);
    const y = m.call("conv3d", [xi], { filters: 1, kernel: 2, weight: wi, bias: false, ...opts }, "c");
    m.output("y", y);
    return { type: typeToString(y.type), values: m.run({ x, w }).outputs.y!.toArray() };
  }

  it("gives 3×3×2 without padding", () => {
    const r = conv3d({});
    expect(r.type).toBe("f32[1, 1, 3, 3, 2]");
    expect(r.values).toEqual([398, 434, 506, 542, 614, 650, 830, 866, 938, 974, 1046, 1082, 1262, 1298, 1370, 1406, 1478, 1514]);
  });

  it("gives 3×3×3 with the last mode padded by one at its end", () => {
    const r = conv3d({ padding: [[0, 0], [0, 0], [0, 1]] });
    expect(r.type).toBe("f32[1, 1, 3, 3, 3]");
    expect(r.values.slice(0, 3)).toEqual([398, 434, 206]);
    expect(r.values).toEqual([
      398, 434, 206, 506, 542, 254, 614, 650, 302, 830, 866, 398, 938, 974, 446, 1046, 1082, 494, 1262, 1298, 590, 1370, 1406, 638,
      1478, 1514, 686,
    ]);
  });

  it("gives 2×2×2 with strides 2, 2, 1", () => {
    const r = conv3d({ stride: [2, 2, 1] });
    expect(r.type).toBe("f32[1, 1, 2, 2, 2]");
    expect(r.values).toEqual([398, 434, 614, 650, 1262, 1298, 1478, 1514]);
  });
});

describe("course examples: the small Gaussian kernel [1, 4, 6, 4, 1] / 16", () => {
  function smooth(signal: number[], padding: number): number[] {
    const m = new TestModel();
    const x = m.input("x", "f32", [1, 1, signal.length]);
    const k = m.input("k", "f32", [1, 1, 5]);
    m.output("y", m.call("conv1d", [x], { weight: k, bias: false, padding }, "g"));
    return m.run({ x: t(signal, [1, 1, signal.length]), k: t([1 / 16, 4 / 16, 6 / 16, 4 / 16, 1 / 16], [1, 1, 5]) }).outputs.y!.toArray();
  }

  it("spreads an impulse into the kernel itself", () => {
    expectClose(smooth([0, 0, 0, 0, 1, 0, 0, 0, 0], 2), [0, 0, 0.0625, 0.25, 0.375, 0.25, 0.0625, 0, 0]);
  });

  it("keeps constants and linear ramps, smooths a spike", () => {
    expectClose(smooth([3, 3, 3, 3, 3, 3], 0), [3, 3]);
    expectClose(smooth([0, 1, 2, 3, 4, 5, 6, 7, 8], 0), [2, 3, 4, 5, 6]);
    // At the spike: (1·1 + 4·1 + 6·9 + 4·1 + 1·1) / 16 = 64 / 16 = 4; one step away
    // (1 + 4 + 6 + 4·9 + 1) / 16 = 3; two steps away (1 + 4 + 6 + 4 + 9) / 16 = 1.5.
    expectClose(smooth([1, 1, 1, 1, 9, 1, 1, 1, 1], 0), [1.5, 3, 4, 3, 1.5]);
  });
});

describe("course examples: the ones-block detector", () => {
  // x marks a block of ones at positions 5..7. The consistent reading of the notes:
  //   layer 1: z1 = conv(x, kernel (−1, 1), zero padding 1 at the end), no bias and no
  //            activation: z1[t] = x[t+1] − x[t] is +1 where the block starts (t = 4) and
  //            −1 where it ends (t = 7). (A bias −1 with relu here would zero everything.)
  //   layer 2: z2 = conv(z1, kernel (1, 0, 0, −1), zero padding 3 at the end), no bias:
  //            z2[t] = z1[t] − z1[t+3], which is 2 exactly where a start is followed by an
  //            end three steps later, i.e. at the start of a block of exactly three ones.
  //   output:  z3 = relu(z2 + b) with bias b = −1 (the second layer's bias), keeping only the 2.
  const x = [0, 0, 0, 0, 0, 1, 1, 1, 0, 0];
  const z1Want = [0, 0, 0, 0, 1, 0, 0, -1, 0, 0];
  const z2Want = [0, -1, 0, 0, 2, 0, 0, -1, 0, 0];
  const z3Want = [0, 0, 0, 0, 1, 0, 0, 0, 0, 0];

  function detector() {
    const m = new TestModel();
    const xi = m.input("x", "f32", [1, 1, 10]);
    const k1 = m.input("k1", "f32", [1, 1, 2]);
    const k2 = m.input("k2", "f32", [1, 1, 4]);
    const b2 = m.input("b2", "f32", [1]);
    const z1 = m.call("conv1d", [xi], { weight: k1, bias: false, padding: [[0, 1]] }, "z1");
    const z2 = m.call("conv1d", [z1], { weight: k2, bias: false, padding: [[0, 3]] }, "z2");
    // The same second layer with its bias, then relu.
    const pre3 = m.call("conv1d", [z1], { weight: k2, bias: b2, padding: [[0, 3]] }, "pre3");
    const z3 = m.call("relu", [pre3], {}, "z3");
    m.output("z1", z1);
    m.output("z2", z2);
    m.output("pre3", pre3);
    m.output("z3", z3);
    return m.run({ x: t(x, [1, 1, 10]), k1: t([-1, 1], [1, 1, 2]), k2: t([1, 0, 0, -1], [1, 1, 4]), b2: t([-1]) }).outputs;
  }

  it("reproduces z1, z2 and z2 + bias", () => {
    const out = detector();
    expect(out.z1!.shape).toEqual([1, 1, 10]);
    expect(out.z1!.toArray()).toEqual(z1Want);
    expect(out.z2!.toArray()).toEqual(z2Want);
    expect(out.pre3!.toArray()).toEqual(z2Want.map((v) => v - 1));
  });

  it("reproduces z3 = relu(z2 − 1)", () => {
    expect(detector().z3!.toArray()).toEqual(z3Want);
  });
});

import { describe, expect, it } from "vitest";
import { emitProgram } from "../../compiler/codegen/js/program.ts";
import { jsExecutor } from "../../compiler/codegen/js/execute.ts";
import type { Value } from "../../compiler/ir/graph.ts";
import type { RefTensor } from "../../compiler/reference/tensor.ts";
import { TestModel, randomTensor } from "../support/build.ts";
import { expectJsMatchesReference } from "../support/conformance.ts";

/** Expose every output of the node that produced `v` (e.g. batchnorm's running statistics, dropout's mask). */
function outputAll(m: TestModel, v: Value, names: readonly string[]): void {
  v.node.outputs.forEach((out, i) => m.output(names[i]!, out));
}

function kernelSource(m: TestModel, op: string): string {
  const src = emitProgram(m.graph).kernels.find((k) => k.split("\n")[0]!.includes(`= ${op}`));
  if (!src) throw new Error(`no ${op} kernel`);
  return src;
}

/** Random inputs off zero (a large common offset stresses the two-pass variance). */
const input = (shape: number[], seed: number, offset = 0) => randomTensor(shape, seed, offset - 2, offset + 2);

// ---------------------------------------------------------------- batchnorm

function batchnormModel(shape: (number | string)[], kw: Record<string, number> = {}) {
  const m = new TestModel();
  const x = m.input("x", "f32", shape);
  const y = m.call("batchnorm", [x], kw, "bn");
  outputAll(m, y, ["y", "running_mean", "running_var"]);
  return m;
}

function batchnormParams(C: number): Record<string, RefTensor> {
  return {
    "bn.weight": randomTensor([C], 11, 0.5, 2),
    "bn.bias": randomTensor([C], 12, -1, 1),
    "bn.running_mean": randomTensor([C], 13, -1, 1),
    "bn.running_var": randomTensor([C], 14, 0.5, 3),
  };
}

describe("JS batchnorm", () => {
  for (const training of [true, false]) {
    const mode = training ? "training" : "inference";

    it(`[N, C] in ${mode}, for two batch sizes`, () => {
      const m = batchnormModel(["N", 5]);
      for (const N of [2, 9]) {
        const out = expectJsMatchesReference(m.graph, { x: input([N, 5], N, 3) }, { params: batchnormParams(5), training, seed: 3 });
        expect(Object.keys(out).sort()).toEqual(["running_mean", "running_var", "y"]);
      }
    });

    it(`[N, C, H, W] in ${mode}, for two batch sizes`, () => {
      const m = batchnormModel(["N", 3, 4, 5], { momentum: 0.25, eps: 1e-3 });
      for (const N of [1, 4]) {
        expectJsMatchesReference(m.graph, { x: input([N, 3, 4, 5], 20 + N, 100) }, { params: batchnormParams(3), training, seed: 3 });
      }
    });
  }

  it("[N, C, L] with all-static shape and default params", () => {
    const m = batchnormModel([2, 4, 3]);
    expectJsMatchesReference(m.graph, { x: input([2, 4, 3], 5) }, { training: true });
  });

  it("moves the running statistics in training and copies them in inference", () => {
    const m = batchnormModel(["N", 2]);
    const params = batchnormParams(2);
    const x = input([6, 2], 8);
    const train = jsExecutor(m.graph).run({ x }, params, { training: true, symbols: { N: 6 } });
    expect(Array.from(train.running_mean!.data)).not.toEqual(Array.from(params["bn.running_mean"]!.data.map(Math.fround)));
    const infer = jsExecutor(m.graph).run({ x }, params, { training: false, symbols: { N: 6 } });
    expect(Array.from(infer.running_mean!.data)).toEqual(Array.from(params["bn.running_mean"]!.data.map(Math.fround)));
    expect(Array.from(infer.running_var!.data)).toEqual(Array.from(params["bn.running_var"]!.data.map(Math.fround)));
  });

  it("fails in training with one value per channel, as the reference", () => {
    const m = batchnormModel(["N", 3]);
    const run = () => jsExecutor(m.graph).run({ x: input([1, 3], 1) }, batchnormParams(3), { training: true, symbols: { N: 1 } });
    expect(run).toThrow("batchnorm in training needs more than 1 value per channel, found input shape [1, 3]");
    expect(() => m.run({ x: input([1, 3], 1) }, batchnormParams(3), { training: true })).toThrow("found input shape [1, 3]");
    // inference needs no batch statistics
    expect(() => jsExecutor(m.graph).run({ x: input([1, 3], 1) }, batchnormParams(3), { training: false, symbols: { N: 1 } })).not.toThrow();
  });

  it("generated kernel (golden)", async () => {
    await expect(kernelSource(batchnormModel(["N", 16, 8, 8]), "batchnorm")).toMatchFileSnapshot("__golden__/batchnorm.js");
  });
});

// ---------------------------------------------------------------- layernorm

function layernormModel(shape: (number | string)[], axis: number | number[]) {
  const m = new TestModel();
  const x = m.input("x", "f32", shape);
  m.output("y", m.call("layernorm", [x], { axis, eps: 1e-4 }, "ln"));
  return m;
}

function layernormParams(affineShape: number[]): Record<string, RefTensor> {
  return { "ln.weight": randomTensor(affineShape, 31, 0.5, 2), "ln.bias": randomTensor(affineShape, 32, -1, 1) };
}

describe("JS layernorm", () => {
  const cases: { name: string; shape: (number | string)[]; axis: number | number[]; affine: number[]; sym: (N: number) => number[] }[] = [
    { name: "last axis of [N, D]", shape: ["N", 8], axis: -1, affine: [8], sym: (N) => [N, 8] },
    { name: "last axis of [N, L, D]", shape: ["N", 3, 6], axis: 2, affine: [6], sym: (N) => [N, 3, 6] },
    { name: "two trailing axes of [N, C, L]", shape: ["N", 4, 6], axis: [1, 2], affine: [4, 6], sym: (N) => [N, 4, 6] },
    { name: "channels (axis 1) of [N, C, L]", shape: ["N", 4, 7], axis: 1, affine: [4], sym: (N) => [N, 4, 7] },
    { name: "axes 1, 2 of [N, C, H, W]", shape: ["N", 3, 4, 5], axis: [1, 2], affine: [3, 4], sym: (N) => [N, 3, 4, 5] },
    { name: "non-adjacent axes 1, 3 of [N, C, H, W]", shape: ["N", 3, 4, 5], axis: [1, 3], affine: [3, 5], sym: (N) => [N, 3, 4, 5] },
    { name: "axes 0, 2 of [2, N, 3] (batch kept in the middle)", shape: [2, "N", 3], axis: [0, 2], affine: [2, 3], sym: (N) => [2, N, 3] },
    { name: "size-1 axes [N, 1, 6] over axes 1, 2", shape: ["N", 1, 6], axis: [1, 2], affine: [1, 6], sym: (N) => [N, 1, 6] },
    { name: "all axes of a vector [8]", shape: [8], axis: 0, affine: [8], sym: () => [8] },
  ];
  for (const c of cases) {
    it(c.name, () => {
      const m = layernormModel(c.shape, c.axis);
      for (const N of [1, 5]) {
        expectJsMatchesReference(m.graph, { x: input(c.sym(N), 40 + N, 50) }, { params: layernormParams(c.affine) });
      }
    });
  }

  it("symbolic normalised axis with weight= and bias= given", () => {
    const m = new TestModel();
    const x = m.input("x", "f32", [2, "L"]);
    const w = m.input("w", "f32", ["L"]);
    const b = m.input("b", "f32", ["L"]);
    m.output("y", m.call("layernorm", [x], { axis: 1, weight: w, bias: b }, "ln"));
    for (const L of [3, 10]) {
      expectJsMatchesReference(m.graph, { x: input([2, L], L, 5), w: input([L], 2), b: input([L], 3) });
    }
  });

  it("generated kernel (golden)", async () => {
    await expect(kernelSource(layernormModel(["N", 64, 32], 1), "layernorm")).toMatchFileSnapshot("__golden__/layernorm.js");
  });
});

// ---------------------------------------------------------------- dropout and noise

function dropoutModel(p: number) {
  const m = new TestModel();
  const x = m.input("x", "f32", ["N", 7, 5]);
  outputAll(m, m.call("dropout", [x], { p }, "drop"), ["y", "mask"]);
  return m;
}

describe("JS dropout", () => {
  for (const p of [0, 0.3, 0.9]) {
    it(`p=${p} in training draws the reference's mask, for two batch sizes`, () => {
      const m = dropoutModel(p);
      for (const N of [1, 6]) {
        const out = expectJsMatchesReference(m.graph, { x: input([N, 7, 5], N) }, { training: true, seed: 17 });
        const mask = Array.from(out.mask!.data);
        const dropped = mask.filter((v) => v === 0).length;
        expect(mask.every((v) => v === 0 || Math.abs(v - 1 / (1 - p)) < 1e-6)).toBe(true);
        if (p === 0) expect(dropped).toBe(0);
        if (p > 0 && N === 6) {
          expect(dropped).toBeGreaterThan(0);
          expect(dropped).toBeLessThan(mask.length);
        }
      }
    });

    it(`p=${p} in inference is the identity with an all-ones mask`, () => {
      const out = expectJsMatchesReference(dropoutModel(p).graph, { x: input([3, 7, 5], 2) }, { training: false, seed: 17 });
      expect(Array.from(out.mask!.data).every((v) => v === 1)).toBe(true);
    });
  }

  it("a different seed draws a different mask", () => {
    const m = dropoutModel(0.5);
    const x = input([4, 7, 5], 9);
    const masks = [1, 2].map((seed) => Array.from(jsExecutor(m.graph).run({ x }, {}, { training: true, seed, symbols: { N: 4 } }).mask!.data));
    expect(masks[0]).not.toEqual(masks[1]);
  });

  it("two dropout nodes in one graph each match the reference", () => {
    const m = new TestModel();
    const x = m.input("x", "f32", ["N", 10]);
    const a = m.call("dropout", [x], { p: 0.5 }, "d1");
    const b = m.call("dropout", [a], { p: 0.2 }, "d2");
    m.output("y", b);
    m.output("mask1", a.node.outputs[1]!);
    expectJsMatchesReference(m.graph, { x: input([5, 10], 4) }, { training: true, seed: 5 });
  });
});

describe("JS gaussian_noise", () => {
  function noiseModel(std: number) {
    const m = new TestModel();
    const x = m.input("x", "f32", ["N", 4, 3]);
    m.output("y", m.call("gaussian_noise", [x], { std }, "noise"));
    return m;
  }

  it("adds the reference's normal draws in training, for two batch sizes", () => {
    const m = noiseModel(0.7);
    for (const N of [1, 5]) {
      const x = input([N, 4, 3], N);
      const out = expectJsMatchesReference(m.graph, { x }, { training: true, seed: 23 });
      // genuinely noisy: differs from the input
      expect(Array.from(out.y!.data).some((v, i) => Math.abs(v - Math.fround(x.data[i]!)) > 1e-3)).toBe(true);
    }
  });

  it("is the identity in inference and with std=0", () => {
    const x = input([2, 4, 3], 3);
    const a = expectJsMatchesReference(noiseModel(0.7).graph, { x }, { training: false, seed: 23 });
    const b = expectJsMatchesReference(noiseModel(0).graph, { x }, { training: true, seed: 23 });
    for (const out of [a, b]) expect(Array.from(out.y!.data)).toEqual(Array.from(x.data.map(Math.fround)));
  });
});

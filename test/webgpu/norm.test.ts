// WebGPU conformance of the normalisation and noise kernels
// (compiler/codegen/wgsl/norm.ts) with the float64 reference, on the real
// Dawn device. `run` is inference: batchnorm uses (and passes through) the
// running statistics, dropout and gaussian_noise are the identity. The
// training batchnorm kernel (for trainStep) is tested through the node
// attribute `training: true` against the reference in training mode.

import { describe, expect, it } from "vitest";
import { wgslExecutor } from "../../compiler/codegen/wgsl/execute.ts";
import { emitWgslProgram } from "../../compiler/codegen/wgsl/program.ts";
import type { Value } from "../../compiler/ir/graph.ts";
import { initialParams, interpret } from "../../compiler/reference/interpreter.ts";
import type { RefTensor } from "../../compiler/reference/tensor.ts";
import type { AdapterClass } from "../../runtime/webgpu.ts";
import { TestModel, randomTensor } from "../support/build.ts";
import { expectAllClose } from "../support/conformance.ts";
import { expectWgslMatchesReference, gpuDevice } from "../support/webgpu.ts";

const VARIANTS: AdapterClass[] = ["cpu", "gpu"];

/** `shape` with the symbols replaced by sizes. */
function bind(shape: readonly (number | string)[], sizes: Record<string, number>): number[] {
  return shape.map((d) => (typeof d === "number" ? d : sizes[d]!));
}

// ---------------------------------------------------------------- batchnorm

/** A batchnorm model with outputs y, the new running mean and the new running var. */
function batchnormModel(shape: (number | string)[], kw: Record<string, number> = {}) {
  const m = new TestModel();
  const x = m.input("x", "f32", shape);
  const y = m.call("batchnorm", [x], kw, "bn");
  m.output("y", y);
  m.output("mean", y.node.outputs[1]!);
  m.output("var", y.node.outputs[2]!);
  return { m, node: y.node };
}

/** Non-default statistics and affine parameters, so every input matters. */
function batchnormParams(channels: number, seed: number): Record<string, RefTensor> {
  return {
    "bn.weight": randomTensor([channels], seed, 0.5, 2),
    "bn.bias": randomTensor([channels], seed + 1, -1, 1),
    "bn.running_mean": randomTensor([channels], seed + 2, -0.5, 0.5),
    "bn.running_var": randomTensor([channels], seed + 3, 0.2, 3),
  };
}

describe("WebGPU batchnorm (inference)", () => {
  const cases: { name: string; shape: (number | string)[]; kw?: Record<string, number> }[] = [
    { name: "2-d [N, 4]", shape: ["N", 4] },
    { name: "4-d [N, 3, 4, 5]", shape: ["N", 3, 4, 5], kw: { eps: 1e-3 } },
    { name: "3-d [N, 2, L] with a symbolic spatial size", shape: ["N", 2, "L"] },
    { name: "4-d [N, 2, H, W] with symbolic spatial sizes", shape: ["N", 2, "H", "W"] },
    { name: "static [8, 3, 2] (no symbol: the kernel reads no size from P)", shape: [8, 3, 2] },
  ];
  for (const c of cases) {
    it(`${c.name}: y and the running statistics passed through, for two batch sizes`, async () => {
      const { m } = batchnormModel(c.shape, c.kw);
      const channels = c.shape[1] as number;
      const params = batchnormParams(channels, 7);
      for (const [N, L] of [[1, 3], [6, 7]] as const) {
        const x = randomTensor(bind(c.shape, { N, L, H: L, W: 8 - L }), N, -3, 3);
        const got = await expectWgslMatchesReference(m.graph, { x }, { params });
        // inference leaves the statistics as they were (f32-rounded by the harness)
        expect(Array.from(got.mean!.data)).toEqual(Array.from(params["bn.running_mean"]!.data, Math.fround));
        expect(Array.from(got.var!.data)).toEqual(Array.from(params["bn.running_var"]!.data, Math.fround));
      }
    });
  }
});

/** Runs batchnorm's training kernel (attr training) and the reference in training mode. */
async function expectTrainingMatches(shape: (number | string)[], N: number, cls: AdapterClass, kw: Record<string, number> = {}): Promise<void> {
  const { m, node } = batchnormModel(shape, kw);
  (node.attrs as Record<string, unknown>).training = true;
  const channels = shape[1] as number;
  const params = { ...initialParams(m.graph, 0), ...batchnormParams(channels, 11) };
  for (const k of Object.keys(params)) params[k] = params[k]!.map((v) => Math.fround(v));
  const x = randomTensor(bind(shape, { N }), 5 + N, -2, 4).map((v) => Math.fround(v));
  const ref = interpret(m.graph, { x }, params, { training: true });
  const { device } = await gpuDevice();
  const ex = await wgslExecutor(m.graph, device, cls, params);
  try {
    const got = await ex.run({ x });
    for (const name of ["y", "mean", "var"]) expectAllClose(got[name]!, ref.outputs[name]!, `${cls} output '${name}'`);
  } finally {
    ex.dispose();
  }
}

describe("WebGPU batchnorm (training kernel for trainStep)", () => {
  for (const cls of VARIANTS) {
    it(`${cls}: [N, 4] and [N, 3, 4, 5] with momentum, batch statistics and running-stat update`, async () => {
      await expectTrainingMatches(["N", 4], 2, cls);
      await expectTrainingMatches(["N", 4], 300, cls, { momentum: 0.25 });
      await expectTrainingMatches(["N", 3, 4, 5], 3, cls, { momentum: 0.5, eps: 1e-3 });
    });

    it(`${cls}: one value per channel is a runtime error naming the count`, async () => {
      const { m, node } = batchnormModel(["N", 4]);
      (node.attrs as Record<string, unknown>).training = true;
      const { device } = await gpuDevice();
      const ex = await wgslExecutor(m.graph, device, cls, initialParams(m.graph, 0));
      try {
        await expect(ex.run({ x: randomTensor([1, 4], 1) })).rejects.toThrow(
          /batchnorm 'bn': batchnorm in training needs more than 1 value per channel, found 1 /,
        );
        // the same module runs a valid batch afterwards
        const ok = await ex.run({ x: randomTensor([2, 4], 1) });
        expect(ok.y!.shape).toEqual([2, 4]);
      } finally {
        ex.dispose();
      }
    });
  }

  it("binds the error buffer only when the per-channel count may be below 2", () => {
    const usesError = (shape: (number | string)[]) => {
      const { m, node } = batchnormModel(shape);
      (node.attrs as Record<string, unknown>).training = true;
      return emitWgslProgram(m.graph, [node.outputs[0]!]).passes.map((p) => p.usesError);
    };
    expect(usesError(["N", 4])).toEqual([true]);
    expect(usesError(["N", 4, 2])).toEqual([false]);
    expect(usesError([8, 4])).toEqual([false]);
  });
});

// ---------------------------------------------------------------- layernorm

function layernormModel(shape: (number | string)[], axis?: number | number[]) {
  const m = new TestModel();
  const x = m.input("x", "f32", shape);
  m.output("y", m.call("layernorm", [x], axis === undefined ? {} : { axis }, "ln"));
  return m;
}

/** weight/bias shaped like the normalised axes, random so their layout matters. */
function layernormParams(affine: number[], seed: number): Record<string, RefTensor> {
  return { "ln.weight": randomTensor(affine, seed, 0.5, 2), "ln.bias": randomTensor(affine, seed + 1, -1, 1) };
}

describe("WebGPU layernorm", () => {
  const cases: { name: string; shape: (number | string)[]; axis?: number | number[]; affine: number[] }[] = [
    { name: "last axis of [N, 6]", shape: ["N", 6], affine: [6] },
    { name: "last axis of [N, L, 8] (rows over two symbols)", shape: ["N", "L", 8], affine: [8] },
    { name: "last axis of [N, 300] (rows longer than a workgroup)", shape: ["N", 300], affine: [300] },
    { name: "axes [1, 2] of [N, 3, 4]", shape: ["N", 3, 4], axis: [1, 2], affine: [3, 4] },
    { name: "axis 1 of [N, 5, L] (channels, not trailing)", shape: ["N", 5, "L"], axis: 1, affine: [5] },
    { name: "axis 1 of [N, 3, H, W] (a stride over two symbols)", shape: ["N", 3, "H", "W"], axis: 1, affine: [3] },
    { name: "axes [0, 2] of [2, N, 3, 4] (interleaved with kept axes)", shape: [2, "N", 3, 4], axis: [0, 2], affine: [2, 3] },
    { name: "axes [-2, -1] of [N, 1, 4, 3] with a size-1 kept axis", shape: ["N", 1, 4, 3], axis: [-2, -1], affine: [4, 3] },
    { name: "last axis of static [4, 10]", shape: [4, 10], affine: [10] },
  ];
  for (const c of cases) {
    for (const cls of VARIANTS) {
      it(`${cls}: ${c.name}, for two sizes`, async () => {
        const m = layernormModel(c.shape, c.axis);
        const params = layernormParams(c.affine, 4);
        for (const [N, L] of [[1, 2], [5, 3]] as const) {
          const x = randomTensor(bind(c.shape, { N, L, H: L, W: 7 - L }), 3 * N + L, -5, 7);
          await expectWgslMatchesReference(m.graph, { x }, { params, adapterClass: cls });
        }
      });
    }
  }

  it("gpu: more rows than one dispatch dimension holds (70000 workgroups)", async () => {
    const m = layernormModel(["N", 2]);
    await expectWgslMatchesReference(m.graph, { x: randomTensor([70000, 2], 9) }, { params: layernormParams([2], 1), adapterClass: "gpu" });
  });

  it("golden WGSL: layernorm over axis 1 of [N, 5, L], gpu variant", async () => {
    const m = layernormModel(["N", 5, "L"], 1);
    const pass = emitWgslProgram(m.graph, [m.graph.outputs[0]!.value]).passes[0]!;
    await expect(pass.code.gpu).toMatchFileSnapshot("__golden__/layernorm-axis1-gpu.wgsl");
  });
});

// ---------------------------------------------------------------- dropout and noise

describe("WebGPU dropout and gaussian_noise (inference)", () => {
  it("dropout is the identity with an all-ones mask, for two sizes", async () => {
    const m = new TestModel();
    const x = m.input("x", "f32", ["N", 3, 5]);
    const y: Value = m.call("dropout", [x], { p: 0.5 }, "drop");
    m.output("y", y);
    m.output("mask", y.node.outputs[1]!);
    for (const N of [1, 4]) {
      const input = randomTensor([N, 3, 5], N);
      const got = await expectWgslMatchesReference(m.graph, { x: input });
      expect(Array.from(got.y!.data)).toEqual(Array.from(input.data, Math.fround));
      expect(got.mask!.data.every((v) => v === 1)).toBe(true);
    }
  });

  it("gaussian_noise is the identity, for two sizes", async () => {
    const m = new TestModel();
    const x = m.input("x", "f32", ["N", 7]);
    m.output("y", m.call("gaussian_noise", [x], { std: 0.3 }, "noise"));
    for (const N of [2, 9]) {
      const input = randomTensor([N, 7], N);
      const got = await expectWgslMatchesReference(m.graph, { x: input });
      expect(Array.from(got.y!.data)).toEqual(Array.from(input.data, Math.fround));
    }
  });
});

// Issue 6's "fused and unfused gradients agree on both targets", WebGPU side:
// for every dsl-example with a loss, its training step (with every gradient
// and every update as an output) runs on the Dawn device as lowered
// (`--passes=none`) and after the whole pass pipeline (fusion, epilogues,
// conv algorithms, scheduling, memory plan), and the two agree to 1e-4
// relative. Both runs are on the device, so dropout draws the same pcg3d
// masks in both (random ops keep their node ids through the passes); the
// JS side and the reference are test/passes/epilogue.test.ts's.

import { describe, expect, it } from "vitest";
import { LR_INPUT, STEP_INPUT } from "../../compiler/autodiff/training.ts";
import { wgslExecutor } from "../../compiler/codegen/wgsl/execute.ts";
import type { Graph } from "../../compiler/ir/graph.ts";
import { optimize } from "../../compiler/passes/pipeline.ts";
import { RefTensor } from "../../compiler/reference/tensor.ts";
import { expectAllClose } from "../support/conformance.ts";
import { compileExample, examples, f32, f32Params, inputsFor, trainingWithGradients } from "../support/modules.ts";
import { gpuDevice } from "../support/webgpu.ts";

const SMALL = { N: 2, L: 5, H: 8, W: 8 };

async function runOnDevice(g: Graph, feeds: Record<string, RefTensor>, params: Record<string, RefTensor>): Promise<Record<string, RefTensor>> {
  const { device } = await gpuDevice();
  const ex = await wgslExecutor(g, device, "cpu", params);
  try {
    return await ex.run(feeds);
  } finally {
    ex.dispose();
  }
}

describe("every dsl-example's training step on WebGPU, fused (--passes=all) vs unfused (--passes=none)", () => {
  const withLoss = examples.filter((f) => compileExample(f).outputs.some((o) => o.kind === "loss"));

  it("covers the examples that declare a loss", () => {
    expect(withLoss.length).toBeGreaterThanOrEqual(8);
  });

  for (const file of withLoss) {
    it(`${file}: losses, every gradient and every update agree`, async () => {
      const t = trainingWithGradients(compileExample(file));
      const fused = optimize(t, "all");
      expect(fused.nodes.length).toBeLessThan(t.nodes.length);
      const feeds = { ...f32(inputsFor(t, SMALL)), [LR_INPUT]: RefTensor.scalar(0.05), [STEP_INPUT]: RefTensor.scalar(2) };
      const params = f32Params(t);
      const unfusedOut = await runOnDevice(t, feeds, params);
      const fusedOut = await runOnDevice(fused, feeds, params);
      expect(Object.keys(fusedOut).sort()).toEqual(Object.keys(unfusedOut).sort());
      for (const [name, want] of Object.entries(unfusedOut)) expectAllClose(fusedOut[name]!, want, `${file} '${name}'`);
    }, 300_000);
  }
});

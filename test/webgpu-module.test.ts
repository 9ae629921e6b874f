// The WebGPU target end to end: every dsl-example compiled by the real CLI
// (--target=webgpu) into a temporary folder, the emitted module imported and
// run on the real Dawn device (lavapipe on machines without a GPU), its
// outputs compared with the float64 reference; runtime errors reported.

import { mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import { gpuDevice } from "./support/webgpu.ts";
import { compileSource } from "../compiler/compile.ts";
import type { Graph } from "../compiler/ir/graph.ts";
import { initialParams, interpret } from "../compiler/reference/interpreter.ts";
import { RefTensor } from "../compiler/reference/tensor.ts";
import { expectAllClose } from "./support/conformance.ts";
import { compileExamplesWithCli, examples, examplesDir, feeds, inputsFor, loadFactory } from "./support/modules.ts";

const out = mkdtempSync(join(tmpdir(), "cnnc-webgpu-"));
const load = (g: Graph) => loadFactory(g, out);

beforeAll(() => compileExamplesWithCli("webgpu", out), 300_000);

// Every example. On lavapipe the first run of the convolution-heavy ones
// (resnet_block, inception, unet) takes 15–40 s with a cold shader cache: LLVM
// compiles each pipeline at its first dispatch. Hence the long timeout.
describe("WebGPU target: dsl-examples compiled by the CLI match the reference on a real device", () => {
  for (const f of examples) {
    it(f, async () => {
      const { device } = await gpuDevice();
      const r = compileSource(readFileSync(join(examplesDir, f), "utf8"), f);
      expect(r.diagnostics).toEqual([]);
      for (const g of r.graphs) {
        const m = await (await load(g))({ seed: 0, device });
        const inputs = inputsFor(g);
        const got = await m.run(feeds(inputs));
        const want = interpret(g, inputs, initialParams(g, 0)).outputs;
        expect(Object.keys(got).sort()).toEqual(Object.keys(want).sort());
        for (const [name, t] of Object.entries(want)) {
          const o = got[name]!;
          expectAllClose(new RefTensor(t.dtype, o.shape, Float64Array.from(o.data)), t, `${g.name}.${name}`);
        }
        m.dispose();
      }
    }, 300_000);
  }
});

describe("WebGPU module runtime", () => {
  it("reports an out-of-range token read on the device instead of reading out of bounds", async () => {
    const { device } = await gpuDevice();
    const g = compileSource(readFileSync(join(examplesDir, "elman_classifier.cnn"), "utf8"), "elman_classifier.cnn").graphs[0]!;
    const m = await (await load(g))({ seed: 0, device });
    const inputs = feeds(inputsFor(g));
    const tokens = inputs.tokens!.data as Int32Array;
    tokens[3] = 1_000_000;
    await expect(m.run(inputs)).rejects.toThrow(/1000000/);
    m.dispose();
  });

  it("serves two batch sizes with one module and keeps outputs equal to the JS target's", async () => {
    const { device } = await gpuDevice();
    const g = compileSource(readFileSync(join(examplesDir, "lenet5.cnn"), "utf8"), "lenet5.cnn").graphs[0]!;
    const m = await (await load(g))({ seed: 3, device });
    for (const n of [1, 4]) {
      const inputs = inputsFor(g, { N: n });
      const { probs } = await m.run({ x: feeds(inputs).x! });
      expect(probs!.shape).toEqual([n, 10]);
      const want = interpret(g, inputs, initialParams(g, 3)).outputs.probs!;
      expectAllClose(new RefTensor("f32", probs!.shape, Float64Array.from(probs!.data)), want, "probs");
    }
    m.dispose();
  });
});

// The WebGPU target end to end: every dsl-example compiled by the real CLI
// (--target=webgpu) into a temporary folder, the emitted module imported and
// run on the real Dawn device (lavapipe on machines without a GPU), its
// outputs compared with the float64 reference; runtime errors reported.

import { spawnSync } from "node:child_process";
import { mkdtempSync, readdirSync, readFileSync, writeFileSync, copyFileSync, mkdirSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { beforeAll, describe, expect, it } from "vitest";
import { gpuDevice } from "./support/webgpu.ts";
import { compileSource } from "../compiler/compile.ts";
import { moduleBase, factoryName } from "../compiler/codegen/module.ts";
import type { Graph } from "../compiler/ir/graph.ts";
import { initialParams, interpret } from "../compiler/reference/interpreter.ts";
import { RefTensor } from "../compiler/reference/tensor.ts";
import { expectAllClose } from "./support/conformance.ts";
import { randomTensor } from "./support/build.ts";

const root = join(import.meta.dirname, "..");
const examplesDir = join(root, "dsl-examples");
const examples = readdirSync(examplesDir).filter((f) => f.endsWith(".cnn")).sort();
const out = mkdtempSync(join(tmpdir(), "cnnc-webgpu-"));

type Model = {
  run(i: Record<string, { data: ArrayLike<number>; shape: number[] }>): Promise<Record<string, { data: Float32Array | Int32Array | Uint8Array; shape: number[] }>>;
  parameters(): Record<string, { shape: number[]; data: Float32Array }>;
  saveWeights(): Uint8Array;
  dispose(): void;
};
type Factory = (o?: { weights?: Uint8Array; seed?: number; device?: GPUDevice }) => Promise<Model>;

async function load(g: Graph, dir = out): Promise<Factory> {
  const mod = await import(pathToFileURL(join(dir, `${moduleBase(g.name)}.js`)).href);
  return mod[factoryName(g.name)] as Factory;
}

/** Inputs for a model at small sizes: f32 random, i32 valid for any vocab/classes (0/1), lengths full. */
function inputsFor(g: Graph, sizes: Record<string, number>): Record<string, RefTensor> {
  const out: Record<string, RefTensor> = {};
  let seed = 3;
  const env = Object.fromEntries(g.symbols.map((s) => [s, sizes[s] ?? 3]));
  for (const [name, v] of g.inputs) {
    const shape = v.type.shape.map((d) => d.evaluate(env));
    if (v.type.dtype === "f32") out[name] = randomTensor(shape, seed++);
    else if (name === "lengths") out[name] = RefTensor.filled(shape, env.L ?? 1, "i32");
    else if (v.type.dtype === "i32") out[name] = RefTensor.from(Array.from({ length: shape.reduce((a, b) => a * b, 1) }, (_, i) => i % 2), shape, "i32");
    else out[name] = RefTensor.from(Array.from({ length: shape.reduce((a, b) => a * b, 1) }, (_, i) => (i % 3 === 2 ? 0 : 1)), shape, "bool");
  }
  return out;
}

const ARRAY = { f32: Float32Array, i32: Int32Array, bool: Uint8Array } as const;
const feeds = (inputs: Record<string, RefTensor>) =>
  Object.fromEntries(Object.entries(inputs).map(([k, t]) => [k, { data: ARRAY[t.dtype].from(t.data), shape: [...t.shape] }]));

const SIZES: Record<string, Record<string, number>> = { default: { N: 2, L: 7, H: 16, W: 16 } };

beforeAll(() => {
  for (const f of examples) {
    const r = spawnSync(process.execPath, [join(root, "bin/cnnc.js"), join(examplesDir, f), "--target=webgpu", "-o", out], { encoding: "utf8" });
    if (r.status !== 0) throw new Error(`cnnc ${f} --target=webgpu failed (${r.status}):\n${r.stderr}`);
  }
}, 300_000);

describe("WebGPU target: every dsl-example compiled by the CLI matches the reference on a real device", () => {
  for (const f of examples) {
    it(f, async () => {
      const { device } = await gpuDevice();
      const r = compileSource(readFileSync(join(examplesDir, f), "utf8"), f);
      expect(r.diagnostics).toEqual([]);
      for (const g of r.graphs) {
        const m = await (await load(g))({ seed: 0, device });
        const inputs = inputsFor(g, SIZES.default!);
        const got = await m.run(feeds(inputs));
        const want = interpret(g, inputs, initialParams(g, 0)).outputs;
        expect(Object.keys(got).sort()).toEqual(Object.keys(want).sort());
        for (const [name, t] of Object.entries(want)) {
          const o = got[name]!;
          expectAllClose(new RefTensor(t.dtype, o.shape, Float64Array.from(o.data)), t, `${g.name}.${name}`);
        }
        m.dispose();
      }
    }, 120_000);
  }
});

describe("WebGPU module runtime", () => {
  it("reports an out-of-range token read on the device instead of reading out of bounds", async () => {
    const { device } = await gpuDevice();
    const g = compileSource(readFileSync(join(examplesDir, "elman_classifier.cnn"), "utf8"), "elman_classifier.cnn").graphs[0]!;
    const m = await (await load(g))({ seed: 0, device });
    const inputs = feeds(inputsFor(g, SIZES.default!));
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

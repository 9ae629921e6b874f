// Shared by the end-to-end tests of compiled modules (JS and WebGPU targets):
// the dsl-examples, compiling them with the real CLI, importing the emitted
// module, and inputs that are valid for any of the example models.

import { spawnSync } from "node:child_process";
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { factoryName, moduleBase } from "../../compiler/codegen/module.ts";
import { compileSource } from "../../compiler/compile.ts";
import { buildTrainingGraph } from "../../compiler/autodiff/training.ts";
import type { Graph } from "../../compiler/ir/graph.ts";
import { initialParams } from "../../compiler/reference/interpreter.ts";
import { RefTensor } from "../../compiler/reference/tensor.ts";
import { randomTensor } from "./build.ts";

export const root = join(import.meta.dirname, "..", "..");
export const examplesDir = join(root, "dsl-examples");
export const examples = readdirSync(examplesDir).filter((f) => f.endsWith(".cnn")).sort();

/** The first model of `source`, or a thrown error listing its diagnostics. */
export function compileModel(source: string, file = "t.cnn"): Graph {
  const r = compileSource(source, file);
  if (r.diagnostics.length) throw new Error(r.diagnostics.map((d) => d.message).join("\n"));
  return r.graphs[0]!;
}

/** The first model of a dsl-example. */
export const compileExample = (file: string): Graph => compileModel(readFileSync(join(examplesDir, file), "utf8"), file);

export type Model = {
  run(i: Record<string, { data: ArrayLike<number>; shape: number[] }>): Promise<Record<string, { data: Float32Array | Int32Array | Uint8Array; shape: number[] }>>;
  parameters(): Record<string, { shape: number[]; data: Float32Array }>;
  saveWeights(): Uint8Array;
  dispose(): void;
};
export type Factory = (o?: { weights?: Uint8Array; seed?: number; device?: GPUDevice }) => Promise<Model>;

/** `cnnc <example> --target=<target> -o <out>` for every example, with the real CLI. */
export function compileExamplesWithCli(target: "js" | "webgpu", out: string): void {
  for (const f of examples) {
    const r = spawnSync(process.execPath, [join(root, "bin/cnnc.js"), join(examplesDir, f), `--target=${target}`, "-o", out], { encoding: "utf8" });
    if (r.status !== 0) throw new Error(`cnnc ${f} --target=${target} failed (${r.status}):\n${r.stderr}`);
  }
}

export async function loadFactory(g: Graph, dir: string): Promise<Factory> {
  const mod = await import(pathToFileURL(join(dir, `${moduleBase(g.name)}.js`)).href);
  return mod[factoryName(g.name)] as Factory;
}

export const SIZES: Record<string, number> = { N: 2, L: 7, H: 16, W: 16 };

/** Inputs for a model at small sizes: f32 random, i32 valid for any vocab/classes (0/1), lengths full, masks mixed. */
export function inputsFor(g: Graph, sizes: Record<string, number> = SIZES): Record<string, RefTensor> {
  const out: Record<string, RefTensor> = {};
  let seed = 3;
  const env = Object.fromEntries(g.symbols.map((s) => [s, sizes[s] ?? 3]));
  for (const [name, v] of g.inputs) {
    const shape = v.type.shape.map((d) => d.evaluate(env));
    const n = shape.reduce((a, b) => a * b, 1);
    if (v.type.dtype === "f32") out[name] = randomTensor(shape, seed++);
    else if (name === "lengths") out[name] = RefTensor.filled(shape, env.L ?? 1, "i32");
    else if (v.type.dtype === "i32") out[name] = RefTensor.from(Array.from({ length: n }, (_, i) => i % 2), shape, "i32");
    else out[name] = RefTensor.from(Array.from({ length: n }, (_, i) => (i % 3 === 2 ? 0 : 1)), shape, "bool");
  }
  return out;
}

const ARRAY = { f32: Float32Array, i32: Int32Array, bool: Uint8Array } as const;

/** Reference tensors as the typed arrays a compiled module takes. */
export const feeds = (inputs: Record<string, RefTensor>) =>
  Object.fromEntries(Object.entries(inputs).map(([k, t]) => [k, { data: ARRAY[t.dtype].from(t.data), shape: [...t.shape] }]));

/** Inputs rounded to f32 (what the compiled targets see), so the reference reads the same numbers. */
export const f32 = (inputs: Record<string, RefTensor>): Record<string, RefTensor> =>
  Object.fromEntries(Object.entries(inputs).map(([k, t]) => [k, t.dtype === "f32" ? t.map((v) => Math.fround(v)) : t]));

/** The initial parameters of `g` (seed 0), rounded to f32. */
export function f32Params(g: Graph): Record<string, RefTensor> {
  const p = initialParams(g, 0);
  for (const k of Object.keys(p)) p[k] = p[k]!.map((v) => Math.fround(v));
  return p;
}

/** The training graph of `g` with every gradient (input 1 of each optimizer update) and every update as an output. */
export function trainingWithGradients(g: Graph): Graph {
  const t = buildTrainingGraph(g)!.graph;
  t.nodes.forEach((n, i) => {
    if (n.op === "sgd_update" || n.op === "adam_update") t.outputs.push({ name: `grad ${i} ${n.label ?? ""}`, value: n.inputs[1]!, kind: "output" });
  });
  for (const u of t.bufferUpdates) t.outputs.push({ name: `update ${u.name}`, value: u.value, kind: "output" });
  return t;
}

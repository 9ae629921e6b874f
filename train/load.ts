// Compile a .cnn model and import the emitted ES module, as a user's script
// would after `cnnc model.cnn --target=... -o out/`: the training scripts and
// tests use exactly the module users get.

import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { basename, join } from "node:path";
import { pathToFileURL } from "node:url";
import { emitModule, factoryName } from "../compiler/codegen/module.ts";
import { compileSource, formatDiagnostics } from "../compiler/compile.ts";
import type { Graph } from "../compiler/ir/graph.ts";
import { acquireDevice } from "../runtime/webgpu.ts";

export type Feed = { readonly data: Float32Array | Int32Array | Uint8Array; readonly shape: readonly number[] };
export type Feeds = Record<string, Feed>;
/** Batches as the data modules make them (interfaces such as ImageBatch, whose fields are Feeds). */
export type FeedsLike = object;

/** The module API of DSL.md §9, as the training loop uses it. */
export interface TrainableModel {
  run(inputs: FeedsLike): Promise<Record<string, { data: Float32Array | Int32Array | Uint8Array; shape: number[] }>>;
  trainStep(inputs: FeedsLike, options?: { lr?: number }): Promise<Record<string, { data: Float32Array; valueOf(): number }>>;
  parameters(): Record<string, { shape: number[]; data: Float32Array }>;
  saveWeights(): Uint8Array;
  dispose(): void;
}

export interface LoadOptions {
  readonly target: "js" | "webgpu";
  readonly seed?: number;
  readonly weights?: Uint8Array;
  readonly device?: GPUDevice;
  /** Model name when the file has several. */
  readonly model?: string;
}

export function compileFile(path: string, model?: string): Graph {
  const r = compileSource(readFileSync(path, "utf8"), basename(path));
  if (r.diagnostics.length) throw new Error(formatDiagnostics(r));
  const g = model ? r.graphs.find((x) => x.name === model) : r.graphs[0];
  if (!g) throw new Error(`${path}: no model ${model ?? ""}`);
  return g;
}

/**
 * Compile `g` for a target into a temporary folder and create the model from the emitted module.
 * WebGPU without `device`: the device is acquired here (the module in the temporary folder could
 * not resolve the `webgpu` package itself) and destroyed by the model's dispose().
 */
export async function loadModel(g: Graph, opts: LoadOptions): Promise<TrainableModel> {
  const m = emitModule(g, { target: opts.target, runtime: "inline" });
  const own = opts.target === "webgpu" && !opts.device ? (await acquireDevice()).device : undefined;
  const dir = mkdtempSync(join(tmpdir(), "cnnc-train-"));
  try {
    const path = join(dir, `${m.base}.mjs`);
    writeFileSync(path, m.js);
    const mod = (await import(pathToFileURL(path).href)) as Record<string, (o: object) => Promise<TrainableModel>>;
    const model = await mod[factoryName(g.name)]!({ seed: opts.seed, weights: opts.weights, device: opts.device ?? own });
    if (!own) return model;
    return {
      ...model,
      dispose() {
        model.dispose();
        own.destroy();
      },
    };
  } catch (e) {
    own?.destroy();
    throw e;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

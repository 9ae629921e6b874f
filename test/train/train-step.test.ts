// trainStep on both targets against the float64 reference: the compiled
// training graph (forward in training mode, backward, optimizer update) run
// step after step from the same initial parameters, for SGD (plain, momentum,
// weight decay) and Adam, with the losses and the parameters compared after
// every step. Also: lr override, errors, and parameters()/saveWeights() after
// training.

import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { afterAll, describe, expect, it } from "vitest";
import { buildTrainingGraph, LR_INPUT, STEP_INPUT } from "../../compiler/autodiff/training.ts";
import { emitModule, factoryName } from "../../compiler/codegen/module.ts";
import { compileSource } from "../../compiler/compile.ts";
import type { Graph } from "../../compiler/ir/graph.ts";
import { initialParams, interpret } from "../../compiler/reference/interpreter.ts";
import { RefTensor } from "../../compiler/reference/tensor.ts";
import { randomTensor } from "../support/build.ts";
import { expectAllClose } from "../support/conformance.ts";
import { gpuDevice } from "../support/webgpu.ts";

const dir = mkdtempSync(join(tmpdir(), "cnnc-train-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function compile(source: string): Graph {
  const r = compileSource(source, "t.cnn");
  if (r.diagnostics.length) throw new Error(r.diagnostics.map((d) => d.message).join("\n"));
  return r.graphs[0]!;
}

type Model = {
  trainStep(i: object, o?: { lr?: number }): Promise<Record<string, { data: Float32Array; shape: number[] }>>;
  run(i: object): Promise<Record<string, { data: Float32Array }>>;
  parameters(): Record<string, { shape: number[]; data: Float32Array }>;
  saveWeights(): Uint8Array;
  dispose(): void;
};

let counter = 0;
async function load(g: Graph, target: "js" | "webgpu", opts: object = {}): Promise<Model> {
  const m = emitModule(g, { target, runtime: "inline" });
  const path = join(dir, `${m.base}_${target}_${counter++}.mjs`);
  writeFileSync(path, m.js);
  const mod = await import(pathToFileURL(path).href);
  const device = target === "webgpu" ? (await gpuDevice()).device : undefined;
  return mod[factoryName(g.name)]({ ...opts, device }) as Promise<Model>;
}

const feedsOf = (inputs: Record<string, RefTensor>) =>
  Object.fromEntries(Object.entries(inputs).map(([k, t]) => [k, { data: t.dtype === "f32" ? Float32Array.from(t.data) : Int32Array.from(t.data), shape: [...t.shape] }]));

/** The reference: the training graph interpreted step after step (parameters rounded to f32 between steps, as stored). */
function referenceSteps(g: Graph, inputs: Record<string, RefTensor>, lrs: readonly number[]) {
  const t = buildTrainingGraph(g)!;
  let params: Record<string, RefTensor> = initialParams(t.graph, 0);
  for (const k of Object.keys(params)) params[k] = params[k]!.map((v) => Math.fround(v));
  const f32 = Object.fromEntries(Object.entries(inputs).map(([k, v]) => [k, v.dtype === "f32" ? v.map((x) => Math.fround(x)) : v]));
  const history: { losses: Record<string, RefTensor>; params: Record<string, RefTensor> }[] = [];
  lrs.forEach((lr, i) => {
    const feeds = { ...f32, [LR_INPUT]: RefTensor.scalar(lr), [STEP_INPUT]: RefTensor.scalar(i + 1) };
    const r = interpret(t.graph, feeds, params, { training: true, seed: i + 1, outputs: t.losses.map((l) => l.name) });
    params = { ...params };
    for (const [k, v] of Object.entries(r.bufferUpdates)) params[k] = v.map((x) => Math.fround(x));
    history.push({ losses: r.outputs, params });
  });
  return history;
}

async function expectTrainingMatches(source: string, inputs: Record<string, RefTensor>, lrs: readonly (number | undefined)[], targets: readonly ("js" | "webgpu")[] = ["js", "webgpu"]) {
  const g = compile(source);
  const t = buildTrainingGraph(g)!;
  const defaultLr = t.optimizer.options.lr!;
  const ref = referenceSteps(g, inputs, lrs.map((l) => l ?? defaultLr));
  for (const target of targets) {
    const m = await load(g, target);
    try {
      for (let s = 0; s < lrs.length; s++) {
        const losses = await m.trainStep(feedsOf(inputs), lrs[s] === undefined ? undefined : { lr: lrs[s] });
        for (const [name, want] of Object.entries(ref[s]!.losses)) {
          expectAllClose(new RefTensor("f32", [], Float64Array.from(losses[name]!.data)), want, `${target} step ${s + 1} loss '${name}'`, 1e-4, 1e-5);
          expect(Number(losses[name])).toBeCloseTo(losses[name]!.data[0]!, 6);
        }
        const ps = m.parameters();
        for (const p of g.params.keys()) {
          expectAllClose(new RefTensor("f32", ps[p]!.shape, Float64Array.from(ps[p]!.data)), ref[s]!.params[p]!, `${target} step ${s + 1} parameter '${p}'`, 1e-4, 1e-5);
        }
      }
    } finally {
      m.dispose();
    }
  }
}

const FIT = (optimizer: string) => `
model Fit {
  input x: f32[N, 3]
  input t: f32[N, 3]
  param w: f32[3] = uniform(-1, 1)
  param b: f32[3] = uniform(-1, 1)
  e = x * w + b - t
  loss l = sum(e * e)
  ${optimizer}
}
`;
const fitInputs = { x: randomTensor([5, 3], 1), t: randomTensor([5, 3], 2) };

describe("trainStep against the reference", () => {
  it("plain SGD (default lr and overridden lr)", async () => {
    await expectTrainingMatches(FIT("optimizer sgd(lr=0.05)"), fitInputs, [undefined, 0.02, undefined]);
  });
  it("SGD with momentum and weight decay", async () => {
    await expectTrainingMatches(FIT("optimizer sgd(lr=0.03, momentum=0.9, weight_decay=0.01)"), fitInputs, [undefined, undefined, undefined, undefined]);
  });
  it("Adam with weight decay (bias-corrected steps 1..4)", async () => {
    await expectTrainingMatches(FIT("optimizer adam(lr=0.01, beta1=0.8, weight_decay=0.001)"), fitInputs, [undefined, undefined, undefined, 0.05]);
  });
  it("a small CNN with batchnorm, pooling and cross-entropy: parameters and running statistics after each step", async () => {
    const source = `
model Small {
  input x: f32[N, 2, 6, 6]
  input labels: i32[N]
  c = conv2d(x, filters=3, kernel=3, padding=1) |> batchnorm |> relu
  p = maxpool2d(c, window=2)
  logits = dense(flatten(p), 4)
  loss xent = cross_entropy(logits, labels)
  optimizer sgd(lr=0.1, momentum=0.5)
}
`;
    const inputs = { x: randomTensor([3, 2, 6, 6], 5), labels: RefTensor.from([0, 3, 1], [3], "i32") };
    await expectTrainingMatches(source, inputs, [undefined, undefined, undefined]);
  });

  it("a model without an optimizer trains with SGD lr 0.01", () => {
    const t = buildTrainingGraph(compile(FIT("")))!;
    expect(t.optimizer).toEqual({ kind: "sgd", options: { lr: 0.01 } });
  });
});

describe("trainStep errors and state", () => {
  it("rejects a bad lr and a model without a loss, on both targets", async () => {
    const g = compile(FIT("optimizer sgd(lr=0.05)"));
    const noLoss = compile(`model P {\n  input x: f32[N, 3]\n  param w: f32[3] = ones\n  output y = x * w\n}\n`);
    for (const target of ["js", "webgpu"] as const) {
      const m = await load(g, target);
      await expect(m.trainStep(feedsOf(fitInputs), { lr: Number.NaN })).rejects.toThrow(/lr must be a finite non-negative number/);
      await expect(m.trainStep({ x: feedsOf(fitInputs).x })).rejects.toThrow(/missing input 't'/);
      m.dispose();
      const p = await load(noLoss, target);
      await expect(p.trainStep(feedsOf(fitInputs))).rejects.toThrow(/declares no loss/);
      p.dispose();
    }
  });

  it("saveWeights after training restores the trained parameters (optimizer state is not saved)", async () => {
    const g = compile(FIT("optimizer adam(lr=0.1)"));
    const m = await load(g, "js");
    for (let i = 0; i < 3; i++) await m.trainStep(feedsOf(fitInputs));
    const trained = m.parameters();
    const bytes = m.saveWeights();
    const text = new TextDecoder().decode(bytes);
    expect(text).not.toContain("@adam");
    const m2 = await load(g, "js", { weights: bytes });
    expect(m2.parameters()).toEqual(trained);
    m.dispose();
    m2.dispose();
  });
});

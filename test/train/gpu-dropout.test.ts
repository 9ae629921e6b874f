// Training dropout and gaussian_noise on the WebGPU target (the device RNG of
// compiler/codegen/wgsl/norm.ts): the training graph's kernels run on the real
// device (Dawn on lavapipe here) and their draws are checked statistically
// (binomial / normal tolerances of 5σ), bit for bit against a JS mirror of the
// documented hash (pcg3d of element, step, node), and through the gradient and
// the optimizer update, which must reuse the forward's own mask. Then
// trainStep of compiled modules: a small model on both targets, and the
// denoising auto-encoder (dsl-examples/denoising_ae.cnn) on MNIST for 20 steps.
//
// The WebGPU masks are not the JS/reference masks (those come from one
// sequential mulberry32 stream per node); only their distribution is shared.

import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { buildTrainingGraph, STEP_INPUT, type TrainingGraph } from "../../compiler/autodiff/training.ts";
import { entrySpec, modelSpecOf } from "../../compiler/codegen/wgsl/execute.ts";
import { emitWgslProgram } from "../../compiler/codegen/wgsl/program.ts";
import { compileSource } from "../../compiler/compile.ts";
import { neededInputs, type Graph, type Node, type Value } from "../../compiler/ir/graph.ts";
import { initialParams, interpret } from "../../compiler/reference/interpreter.ts";
import { RefTensor } from "../../compiler/reference/tensor.ts";
import { GpuEntry, uploadBuffer, watchLoss } from "../../runtime/webgpu.ts";
import { compileFile, loadModel, type TrainableModel } from "../../train/load.ts";
import { batches, loadMnist, type ImageSet } from "../../train/mnist.ts";
import { randomTensor } from "../support/build.ts";
import { expectAllClose } from "../support/conformance.ts";
import { gpuDevice } from "../support/webgpu.ts";

function compile(source: string): Graph {
  const r = compileSource(source, "t.cnn");
  if (r.diagnostics.length) throw new Error(r.diagnostics.map((d) => d.message).join("\n"));
  return r.graphs[0]!;
}

// ---------------------------------------------------------------- the documented hash, in JS

/** pcg3d (Jarzynski & Olano 2020), as the WGSL kernels compute it. */
function pcg3d(a: number, b: number, c: number): [number, number, number] {
  const M = Math.imul;
  let x = (M(a, 1664525) + 1013904223) >>> 0;
  let y = (M(b, 1664525) + 1013904223) >>> 0;
  let z = (M(c, 1664525) + 1013904223) >>> 0;
  x = (x + M(y, z)) >>> 0;
  y = (y + M(z, x)) >>> 0;
  z = (z + M(x, y)) >>> 0;
  x = (x ^ (x >>> 16)) >>> 0;
  y = (y ^ (y >>> 16)) >>> 0;
  z = (z ^ (z >>> 16)) >>> 0;
  x = (x + M(y, z)) >>> 0;
  y = (y + M(z, x)) >>> 0;
  z = (z + M(x, y)) >>> 0;
  return [x, y, z];
}
const unit = (h: number) => (h >>> 8) / 16777216;

// ---------------------------------------------------------------- running the training graph

/**
 * The training graph's values `outs` computed on the device, with `@step` fed
 * (as trainStep does, by buffer index). Parameters from seed 0.
 */
async function trainingRunner(t: TrainingGraph, outs: Record<string, Value>) {
  const { device, adapterClass } = await gpuDevice();
  const g = t.graph;
  const values = Object.values(outs);
  const program = emitWgslProgram(g, values);
  const outputs = Object.entries(outs).map(([name, v]) => ({
    name,
    buffer: program.bufferOf.get(v)!,
    spec: { name, dtype: v.type.dtype, shape: v.type.shape.map((d) => d.constValue()!) },
  }));
  const inputs = neededInputs(g, values).filter((n) => !n.startsWith("@"));
  const init = initialParams(g, 0);
  const params = new Map<string, GPUBuffer>();
  for (const b of program.buffers) {
    if (b.source.kind === "param") params.set(b.source.name, uploadBuffer(device, "f32", Float32Array.from(init[b.source.name]!.data)));
  }
  const entry = await GpuEntry.create(device, modelSpecOf(g), entrySpec(g, program, outputs, inputs), adapterClass, params, watchLoss(device, g.name));
  const stepBuffer = program.bufferOf.get(g.inputs.get(STEP_INPUT)!)!;
  return {
    async run(feeds: Record<string, Float32Array>, step: number, lr = 0.5) {
      const shaped = Object.fromEntries(Object.entries(feeds).map(([k, data]) => [k, { data, shape: [...g.inputs.get(k)!.type.shape.map((d) => d.constValue()!)] }]));
      const scalars = new Map([[stepBuffer, step]]);
      const lrValue = g.inputs.get("@lr");
      if (lrValue && program.bufferOf.has(lrValue)) scalars.set(program.bufferOf.get(lrValue)!, lr);
      const r = await entry.execute(shaped, scalars);
      return Object.fromEntries(Object.entries(r.outputs).map(([k, v]) => [k, v.data as Float32Array]));
    },
    dispose() {
      entry.dispose();
      params.forEach((b) => b.destroy());
    },
  };
}

const nodesOf = (g: Graph, op: string): Node[] => g.nodes.filter((n) => n.op === op).sort((a, b) => a.id - b.id);
const updateOf = (t: TrainingGraph, name: string) => t.updates.find((u) => u.name === name)!.value;
/** 5σ of a binomial fraction. */
const binomialTol = (p: number, n: number) => 5 * Math.sqrt((p * (1 - p)) / n);

describe("WebGPU training dropout (device RNG)", () => {
  const ROWS = 64;
  const COLS = 256; // 16,384 elements per dropout node
  const g = compile(`
model Drop {
  input x: f32[${ROWS}, ${COLS}]
  param w: f32[${ROWS}, ${COLS}] = ones
  h = x * w
  a = dropout(h, p=0.25)
  b = dropout(h, p=0.5)
  loss l = sum(a) + sum(b)
  optimizer sgd(lr=0.5)
}`);
  const t = buildTrainingGraph(g)!;
  const [da, db] = nodesOf(t.graph, "dropout") as [Node, Node];
  const x = Float32Array.from(randomTensor([ROWS, COLS], 3, 0.5, 1.5).data);
  const n = x.length;

  it("the training graph feeds @step to each dropout node (an SGD model too)", () => {
    const step = t.graph.inputs.get(STEP_INPUT)!;
    expect(step).toBeDefined();
    for (const d of [da, db]) expect(d.inputs[d.inputs.length - 1]).toBe(step);
    // The forward graph is untouched: its dropout nodes have one input.
    for (const d of nodesOf(g, "dropout")) expect(d.inputs.length).toBe(1);
  });

  it("drops a fraction p (binomial 5σ) for p = 0.25 and 0.5, keeps exactly x/(1 − p), as pcg3d of (element, step, node)", async () => {
    const r = await trainingRunner(t, { ya: da.outputs[0]!, ma: da.outputs[1]!, yb: db.outputs[0]!, mb: db.outputs[1]! });
    try {
      for (const step of [1, 2]) {
        const out = await r.run({ x }, step);
        for (const [node, p, y, m] of [[da, 0.25, out.ya!, out.ma!], [db, 0.5, out.yb!, out.mb!]] as const) {
          const keep = Math.fround(1 / (1 - p));
          let dropped = 0;
          for (let i = 0; i < n; i++) {
            const kept = unit(pcg3d(i, step, node.id)[0]) >= Math.fround(p);
            if (!kept) dropped++;
            // Bit-exact: the documented hash decides, the mask holds 0 or 1/(1 − p), y = x·mask.
            if (m[i] !== (kept ? keep : 0)) expect.fail(`p=${p} step ${step}: mask[${i}] = ${m[i]}, want ${kept ? keep : 0}`);
            if (y[i] !== (kept ? Math.fround(x[i]! * keep) : 0)) expect.fail(`p=${p} step ${step}: y[${i}] = ${y[i]}, want ${kept ? Math.fround(x[i]! * keep) : 0}`);
          }
          expect(Math.abs(dropped / n - p)).toBeLessThan(binomialTol(p, n));
        }
      }
    } finally {
      r.dispose();
    }
  });

  it("masks differ between steps and between the two dropout nodes (independent: overlap ≈ product)", async () => {
    const r = await trainingRunner(t, { ma: da.outputs[1]!, mb: db.outputs[1]! });
    try {
      const s1 = await r.run({ x }, 1);
      const s2 = await r.run({ x }, 2);
      const again = await r.run({ x }, 1);
      // Same step, same masks: the draw is a function of (element, step, node) only.
      expect(again.ma).toEqual(s1.ma);
      const bothDropped = (m1: Float32Array, m2: Float32Array) => m1.reduce((c, v, i) => c + (v === 0 && m2[i] === 0 ? 1 : 0), 0) / n;
      // Step 1 vs step 2 of the same node (p = 0.25): both dropped with probability p².
      expect(s1.ma).not.toEqual(s2.ma);
      expect(Math.abs(bothDropped(s1.ma!, s2.ma!) - 0.0625)).toBeLessThan(binomialTol(0.0625, n));
      // Node a (p = 0.25) vs node b (p = 0.5) in one step: 0.125.
      expect(Math.abs(bothDropped(s1.ma!, s1.mb!) - 0.125)).toBeLessThan(binomialTol(0.125, n));
      // Neighbouring elements of one mask are independent too.
      const m = s1.mb!;
      let adjacent = 0;
      for (let i = 1; i < n; i++) if (m[i] === 0 && m[i - 1] === 0) adjacent++;
      expect(Math.abs(adjacent / (n - 1) - 0.25)).toBeLessThan(binomialTol(0.25, n));
    } finally {
      r.dispose();
    }
  });

  it("the backward and the SGD update use the forward's own masks", async () => {
    // l = Σ dropout_a(x·w) + Σ dropout_b(x·w) → dl/dw = x·(mask_a + mask_b); w' = w − lr·dl/dw.
    const lr = 0.5;
    const r = await trainingRunner(t, { ma: da.outputs[1]!, mb: db.outputs[1]!, l: t.total, w: updateOf(t, "w") });
    try {
      // The update writes the parameter in place (memory plan), so step 7 starts from step 1's w.
      let before = new Float32Array(n).fill(1);
      for (const step of [1, 7]) {
        const out = await r.run({ x }, step, lr);
        let loss = 0;
        for (let i = 0; i < n; i++) {
          const want = before[i]! - lr * x[i]! * (out.ma![i]! + out.mb![i]!);
          if (Math.abs(out.w![i]! - want) > 1e-5 * (1 + Math.abs(want))) expect.fail(`step ${step}: w'[${i}] = ${out.w![i]}, want ${want}`);
          loss += x[i]! * before[i]! * (out.ma![i]! + out.mb![i]!);
        }
        expect(Math.abs(out.l![0]! - loss) / Math.abs(loss)).toBeLessThan(1e-5);
        before = Float32Array.from(out.w!);
      }
    } finally {
      r.dispose();
    }
  });
});

describe("WebGPU training gaussian_noise (device RNG)", () => {
  const STD = 0.7;
  const g = compile(`
model Noise {
  input x: f32[128, 256]
  param w: f32[256] = ones
  n = gaussian_noise(x * w, std=${STD})
  loss l = sum(n)
}`);
  const t = buildTrainingGraph(g)!;
  const [node] = nodesOf(t.graph, "gaussian_noise") as [Node];
  const x = Float32Array.from(randomTensor([128, 256], 5, -1, 1).data);
  const n = x.length; // 32,768

  it("adds std·N(0, 1): mean ≈ 0, std ≈ std, normal mass within 1σ and 2σ; fresh each step; Box–Muller of pcg3d", async () => {
    const r = await trainingRunner(t, { y: node.outputs[0]! });
    try {
      const zs: Float64Array[] = [];
      for (const step of [1, 2]) {
        const { y } = await r.run({ x }, step);
        const z = Float64Array.from(y!, (v, i) => (v - x[i]!) / STD);
        zs.push(z);
        const mean = z.reduce((a, b) => a + b, 0) / n;
        const sd = Math.sqrt(z.reduce((a, b) => a + (b - mean) ** 2, 0) / (n - 1));
        expect(Math.abs(mean)).toBeLessThan(5 / Math.sqrt(n));
        expect(Math.abs(sd - 1)).toBeLessThan(5 / Math.sqrt(2 * n));
        const within = (k: number) => z.reduce((c, v) => c + (Math.abs(v) < k ? 1 : 0), 0) / n;
        expect(Math.abs(within(1) - 0.6827)).toBeLessThan(binomialTol(0.6827, n));
        expect(Math.abs(within(2) - 0.9545)).toBeLessThan(binomialTol(0.9545, n));
        expect(Math.max(...z.map(Math.abs))).toBeLessThan(5.8);
        // The documented formula, to WGSL's accuracy: log near 1 has an absolute error bound (2^-21), which
        // √(−2 ln u1) turns into ≤ ~1.5e-3 where z is near 0; elsewhere f32 rounding (and of y − x).
        for (let i = 0; i < n; i++) {
          const [hx, hy] = pcg3d(i, step, node.id);
          const u1 = ((hx >>> 8) + 1) / 16777216;
          const want = Math.sqrt(-2 * Math.log(u1)) * Math.cos(Math.PI * (2 * unit(hy) - 1));
          if (Math.abs(z[i]! - want) > 2e-3 + 1e-4 * Math.abs(want)) expect.fail(`step ${step}: z[${i}] = ${z[i]}, want ${want}`);
        }
      }
      // Steps 1 and 2 draw independent noise.
      const corr = zs[0]!.reduce((a, v, i) => a + v * zs[1]![i]!, 0) / n;
      expect(Math.abs(corr)).toBeLessThan(5 / Math.sqrt(n));
    } finally {
      r.dispose();
    }
  });
});

describe("trainStep with dropout in compiled modules", () => {
  const ROWS = 8;
  const COLS = 512;
  const P = 0.5;
  const LR = 0.01;
  const g = compile(`
model M {
  input x: f32[${ROWS}, ${COLS}]
  param w: f32[${ROWS}, ${COLS}] = ones
  y = dropout(x * w, p=${P})
  loss l = sum(y)
  optimizer sgd(lr=${LR})
}`);
  const x = Float32Array.from(randomTensor([ROWS, COLS], 9, 0.5, 1.5).data);

  for (const target of ["js", "webgpu"] as const) {
    it(`${target}: each step's update applies that step's forward mask (l = Σ x·w·mask, Δw = −lr·x·mask); masks change per step`, async () => {
      const device = target === "webgpu" ? (await gpuDevice()).device : undefined;
      const m = await loadModel(g, { target, seed: 0, device });
      try {
        let w = m.parameters().w!.data.slice();
        const masks: Float64Array[] = [];
        for (let s = 0; s < 3; s++) {
          const loss = Number((await m.trainStep({ x: { data: x, shape: [ROWS, COLS] } })).l);
          const next = m.parameters().w!.data.slice();
          // The mask the backward used, recovered from the update.
          const mask = Float64Array.from(next, (v, i) => (w[i]! - v) / (LR * x[i]!));
          const rounded = mask.map((v) => (Math.abs(v) < 1e-3 ? 0 : Math.abs(v - 1 / (1 - P)) < 1e-3 ? 1 / (1 - P) : Number.NaN));
          expect(rounded.some(Number.isNaN)).toBe(false);
          const dropped = rounded.reduce((c, v) => c + (v === 0 ? 1 : 0), 0) / mask.length;
          expect(Math.abs(dropped - P)).toBeLessThan(binomialTol(P, mask.length));
          // The forward's loss is Σ x·w·mask with the backward's mask.
          const want = rounded.reduce((a, v, i) => a + x[i]! * w[i]! * v, 0);
          expect(Math.abs(loss - want) / want).toBeLessThan(1e-5);
          masks.push(rounded);
          w = next;
        }
        expect(masks[1]).not.toEqual(masks[0]);
        expect(masks[2]).not.toEqual(masks[1]);
      } finally {
        m.dispose();
      }
    });
  }
});

describe("a module holds inference and training kernels of the same nodes side by side", () => {
  // The training graph's batchnorm/dropout keep their forward node ids but have other kernels (and dropout an
  // extra input): kernel names tell them apart (`_train`), so run() stays inference before and after trainStep.
  const g = compile(`
model BD {
  input x: f32[6, 4]
  param w: f32[4] = ones
  h = batchnorm(x * w)
  y = dropout(h, p=0.5)
  output o = y
  loss l = sum(y * y)
}`);
  const x = randomTensor([6, 4], 11, -2, 3);
  for (const target of ["js", "webgpu"] as const) {
    it(`${target}: run() matches the reference in inference, before and after a trainStep`, async () => {
      const device = target === "webgpu" ? (await gpuDevice()).device : undefined;
      const m = await loadModel(g, { target, seed: 0, device });
      const feeds = { x: { data: Float32Array.from(x.data), shape: [6, 4] } };
      try {
        for (let s = 0; s < 2; s++) {
          const params = Object.fromEntries(Object.entries(m.parameters()).map(([k, v]) => [k, new RefTensor("f32", v.shape, Float64Array.from(v.data))]));
          const want = interpret(g, { x: x.map((v) => Math.fround(v)) }, params).outputs.o!;
          const got = (await m.run(feeds)).o!;
          expectAllClose(new RefTensor("f32", got.shape, Float64Array.from(got.data)), want, `${target} run after ${s} steps`);
          await m.trainStep(feeds);
        }
        // The step moved the running statistics, so the second run() checked inference with new buffers.
        expect(Array.from(m.parameters()["h.running_mean"]!.data)).not.toEqual([0, 0, 0, 0]);
      } finally {
        m.dispose();
      }
    });
  }
});

describe("the denoising auto-encoder trains on WebGPU", () => {
  function take(set: ImageSet, count: number): Float32Array {
    return set.images.slice(0, count * 784);
  }

  it("dsl-examples/denoising_ae.cnn: 20 trainSteps on MNIST lower the training loss and the held-out loss", async () => {
    const { device } = await gpuDevice();
    const g = compileFile(join(import.meta.dirname, "..", "..", "dsl-examples", "denoising_ae.cnn"));
    const model: TrainableModel = await loadModel(g, { target: "webgpu", seed: 0, device });
    try {
      const data = loadMnist({ seed: 0 });
      const held = { x: { data: take(data.test, 256), shape: [256, 784] } };
      const heldLoss = async () => Number((await model.run(held)).bce!.data[0]);
      const before = await heldLoss();
      const losses: number[] = [];
      let k = 0;
      for (const b of batches(data.train, 64, 0)) {
        if (k++ === 20) break;
        losses.push(Number((await model.trainStep({ x: { data: b.x.data, shape: [64, 784] } }, { lr: 5 })).bce));
      }
      const after = await heldLoss();
      expect(losses.every(Number.isFinite)).toBe(true);
      const mean = (a: number[]) => a.reduce((p, q) => p + q, 0) / a.length;
      // Measured on lavapipe: step losses 0.695 → 0.344, held-out 0.695 → 0.338.
      expect(mean(losses.slice(-5))).toBeLessThan(mean(losses.slice(0, 5)) - 0.1);
      expect(after).toBeLessThan(before - 0.1);
    } finally {
      model.dispose();
    }
  }, 120_000);
});

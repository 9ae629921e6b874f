// Memory planning (compiler/passes/memory.ts, runtime/memory-plan.ts):
//  * an independent aliasing checker walks each plan's schedule over the
//    memory the runtime would allocate and fails when a kernel reads a value
//    whose memory something else has overwritten since, when a node's output
//    overlaps its input (other than a declared in-place pair), or when one
//    WebGPU dispatch would bind an arena both read-only and writable; it runs
//    on every dsl-example's forward and training graph at two bindings, and
//    is shown to catch corrupted plans; and again after the passes (scheduled)
//    (the checker: test/support/aliasing.ts; WGSL scratch items:
//    test/webgpu/scratch-plan.test.ts);
//  * LeNet-5's training step at batch 64 plans at most 60% of the naive bytes;
//  * outputs and updates still match the reference with planned (and
//    in-place) buffers on the JS and WebGPU targets.

import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { buildTrainingGraph, LR_INPUT, STEP_INPUT, type TrainingGraph } from "../../compiler/autodiff/training.ts";
import { emitProgram, planProgramMemory } from "../../compiler/codegen/js/program.ts";
import { emitWgslProgram } from "../../compiler/codegen/wgsl/program.ts";
import { wgslExecutor } from "../../compiler/codegen/wgsl/execute.ts";
import { compileSource } from "../../compiler/compile.ts";
import { neededNodes, type Graph, type Value } from "../../compiler/ir/graph.ts";
import { layoutMemory, planBytes, type MemoryPlan } from "../../compiler/passes/memory.ts";
import { optimize, optimizeInPlace } from "../../compiler/passes/pipeline.ts";
import { graphStats, memoryStats, trainStats } from "../../compiler/passes/stats.ts";
import { initialParams, interpret } from "../../compiler/reference/interpreter.ts";
import { RefTensor } from "../../compiler/reference/tensor.ts";
import type { ArenaLayout } from "../../runtime/memory-plan.ts";
import { expectAllClose, expectJsMatchesReference } from "../support/conformance.ts";
import { examples, examplesDir, inputsFor } from "../support/modules.ts";
import { gpuDevice } from "../support/webgpu.ts";
import { aliasingProblems } from "../support/aliasing.ts";

function load(file: string): Graph {
  const r = compileSource(readFileSync(join(examplesDir, file), "utf8"), file);
  if (r.diagnostics.length) throw new Error(r.diagnostics.map((d) => d.message).join("\n"));
  return r.graphs[0]!;
}

const forwardRoots = (g: Graph) => [...g.outputs.map((o) => o.value), ...g.bufferUpdates.map((u) => u.value)];
const trainRoots = (t: TrainingGraph) => [...t.losses.map((o) => o.value), ...t.updates.map((u) => u.value)];

function envFor(g: Graph, sizes: Record<string, number>): Record<string, number> {
  return Object.fromEntries(g.symbols.map((s) => [s, sizes[s] ?? 3]));
}

function checkPlan(g: Graph, roots: readonly Value[], sizes: Record<string, number>): { plan: MemoryPlan; problems: string[] } {
  const plan = planProgramMemory(neededNodes(g, roots), roots);
  const env = envFor(g, sizes);
  return { plan, problems: aliasingProblems(plan, layoutMemory(plan, env), roots, env) };
}

const SMALL = { N: 2, L: 7, H: 16, W: 16 };
const LARGE = { N: 64, L: 33, H: 32, W: 32 };

describe("the planner never aliases two live values", () => {
  for (const file of examples) {
    it(`${file}: forward and training graphs at two bindings`, () => {
      const g = load(file);
      const t = buildTrainingGraph(g);
      for (const sizes of [SMALL, LARGE]) {
        const f = checkPlan(g, forwardRoots(g), sizes);
        expect(f.problems, `${file} forward ${JSON.stringify(sizes)}`).toEqual([]);
        expect(f.plan.items.length).toBeGreaterThan(0);
        if (t) expect(checkPlan(t.graph, trainRoots(t), sizes).problems, `${file} training ${JSON.stringify(sizes)}`).toEqual([]);
        // After the passes (fused, relu gradients on outputs, scheduled for memory), as modules compile them.
        const fo = optimize(g);
        expect(checkPlan(fo, forwardRoots(fo), sizes).problems, `${file} forward after the passes ${JSON.stringify(sizes)}`).toEqual([]);
        if (t) {
          const to = optimize(t.graph);
          const roots = [...to.outputs.filter((o) => o.kind === "loss").map((o) => o.value), ...to.bufferUpdates.map((u) => u.value)];
          expect(checkPlan(to, roots, sizes).problems, `${file} training after the passes ${JSON.stringify(sizes)}`).toEqual([]);
        }
      }
    });
  }

  it("the checker catches a plan whose placement puts two live values in the same memory", () => {
    const g = load("lenet5.cnn");
    const t = buildTrainingGraph(g)!;
    const roots = trainRoots(t);
    const plan = planProgramMemory(neededNodes(t.graph, roots), roots);
    const env = { N: 64 };
    const layout = layoutMemory(plan, env);
    expect(aliasingProblems(plan, layout, roots, env)).toEqual([]);
    // Two items live at the same time, moved onto each other.
    const a = 0;
    const b = plan.items.findIndex((it, j) => j > a && it.def <= plan.items[a]!.last && plan.items[a]!.def <= it.last);
    expect(b).toBeGreaterThan(0);
    const bad: ArenaLayout = { arena: [...layout.arena], offset: [...layout.offset], arenaSizes: [...layout.arenaSizes] };
    bad.arena[b] = bad.arena[a]!;
    bad.offset[b] = bad.offset[a]!;
    bad.arenaSizes[bad.arena[a]!] = Math.max(...layout.arenaSizes) * 2;
    expect(aliasingProblems(plan, bad, roots, env).length).toBeGreaterThan(0);
  });

  it("the checker catches a planner that ends a value's life too early", () => {
    const g = load("lenet5.cnn");
    const t = buildTrainingGraph(g)!;
    const roots = trainRoots(t);
    const plan = planProgramMemory(neededNodes(t.graph, roots), roots);
    // The conv output c1 is read again in the backward pass; claim it dies right after it is made.
    const k = plan.items.reduce((best, it, j) => (it.last - it.def > plan.items[best]!.last - plan.items[best]!.def ? j : best), 0);
    const wrong: MemoryPlan = { ...plan, items: plan.items.map((it, j) => (j === k ? { ...it, last: it.def } : it)) };
    const env = { N: 64 };
    const problems = aliasingProblems(wrong, layoutMemory(wrong, env), roots, env);
    expect(problems.some((p) => /whose memory was overwritten/.test(p))).toBe(true);
  });

  it("the checker catches an in-place write over an input that is read later", () => {
    const g = load("lenet5.cnn");
    const t = buildTrainingGraph(g)!;
    const roots = trainRoots(t);
    const plan = planProgramMemory(neededNodes(t.graph, roots), roots);
    // relu(c1) written over c1, which the backward pass still reads: merge their items.
    const relu = plan.schedule.find((n) => n.op === "relu")!;
    const x = plan.itemOf.get(relu.inputs[0]!)!;
    const y = plan.itemOf.get(relu.outputs[0]!)!;
    const itemOf = new Map(plan.itemOf);
    itemOf.set(relu.outputs[0]!, x);
    const items = plan.items.map((it, j) => (j === x ? { ...it, last: Math.max(it.last, plan.items[y]!.last), avoid: it.avoid.filter((a) => a !== y) } : j === y ? { ...it, members: [], def: 0, last: 0, avoid: [] } : it));
    const wrong: MemoryPlan = { ...plan, itemOf, items, inPlace: new Map([...plan.inPlace, [relu, [[0, 0]] as const]]) };
    const env = { N: 8 };
    expect(aliasingProblems(wrong, layoutMemory(wrong, env), roots, env).some((p) => /overwritten/.test(p))).toBe(true);
  });
});

describe("planned bytes", () => {
  it("LeNet-5's training step at batch 64 plans at most 60% of the naive peak (55% after the passes)", () => {
    const g = load("lenet5.cnn");
    const s = trainStats(g, { N: 64 });
    const ratio = s.trainPeakBytes! / s.trainNaivePeakBytes!;
    console.log(`LeNet-5 training step, N=64: planned ${s.trainPeakBytes!.toLocaleString("en-US")} B, naive ${s.trainNaivePeakBytes!.toLocaleString("en-US")} B (${(100 * ratio).toFixed(1)}%)`);
    expect(ratio).toBeLessThanOrEqual(0.6);
    // The same for the training graph as modules compile it (after the optimizing passes).
    const t = buildTrainingGraph(g)!;
    const opt = optimizeInPlace(t.graph);
    const m = memoryStats(opt, [...opt.outputs.map((o) => o.value), ...opt.bufferUpdates.map((u) => u.value)], { N: 64 });
    console.log(`LeNet-5 training step after the passes, N=64: planned ${m.planned.toLocaleString("en-US")} B, naive ${m.naive.toLocaleString("en-US")} B (${((100 * m.planned) / m.naive).toFixed(1)}%)`);
    // 42.5% with the schedule pass and relu's gradient reading its output (57.2% / 43.6% with one of them, 59.3%
    // with neither); the margin is for other passes that change what is stored (an epilogue fusion removes a
    // pre-activation from the naive total, not from the plan: about 51%).
    expect(m.planned / m.naive).toBeLessThanOrEqual(0.55);
    // The forward run reuses memory too.
    const f = graphStats(g, { N: 64 });
    expect(f.peakBytes / f.naivePeakBytes).toBeLessThan(0.6);
  });

  it("stats report what the emitted program's plan allocates", () => {
    const g = load("resnet_block.cnn");
    const t = buildTrainingGraph(g)!;
    const program = emitProgram(t.graph, trainRoots(t));
    const env = envFor(g, { N: 16 });
    expect(planBytes(program.plan, env).planned).toBe(trainStats(g, { N: 16 }).trainPeakBytes);
    expect(program.buffers.filter((b) => b.source.kind === "planned").length).toBeGreaterThan(10);
    // Optimizer updates are written over the parameters: their results are the parameters' buffers.
    const optimizerUpdates = t.updates.filter((u) => u.value.node.op === "sgd_update");
    expect(optimizerUpdates.length).toBeGreaterThan(0);
    for (const u of optimizerUpdates) expect(program.buffers[program.bufferOf.get(u.value)!]!.source.kind).toBe("alias");
    // The WGSL program of the same graph renames the in-place inputs (`_inplace` kernels).
    const wgsl = emitWgslProgram(t.graph, trainRoots(t));
    const inPlace = wgsl.passes.filter((p) => p.name.endsWith("_inplace"));
    expect(inPlace.length).toBeGreaterThan(0);
    for (const p of inPlace) {
      for (const [j, k] of program.plan.inPlace.get(p.node)!) {
        expect(p.code.cpu).not.toMatch(new RegExp(`\\bx${k}\\b`));
        expect(p.code.cpu).toMatch(new RegExp(`\\by${j}\\b`));
      }
    }
  });
});

// ---- conformance with planned buffers ---------------------------------------

const FORWARD = ["lenet5.cnn", "resnet_block.cnn", "unet.cnn", "char_lstm.cnn", "bigru_tagger.cnn", "depthwise_separable.cnn"];
const TRAINING = ["lenet5.cnn", "resnet_block.cnn", "elman_classifier.cnn"];

/** The training graph with its updates as outputs too (so the executors return them), and its feeds. */
function trainingCase(file: string): { g: Graph; inputs: Record<string, RefTensor> } {
  const t = buildTrainingGraph(load(file))!;
  for (const u of t.updates) t.graph.outputs.push({ name: `new ${u.name}`, value: u.value, kind: "output" });
  const inputs = inputsFor(t.graph);
  inputs[LR_INPUT] = RefTensor.scalar(t.optimizer.options.lr!);
  inputs[STEP_INPUT] = RefTensor.scalar(1);
  return { g: t.graph, inputs };
}

describe("JS target with planned buffers matches the reference", () => {
  for (const file of FORWARD) {
    it(`${file} forward`, () => {
      const g = load(file);
      expectJsMatchesReference(g, inputsFor(g));
    });
  }
  for (const file of TRAINING) {
    it(`${file} training step (losses and every update)`, () => {
      const { g, inputs } = trainingCase(file);
      const out = expectJsMatchesReference(g, inputs, { training: true, seed: 1 });
      expect(Object.keys(out).filter((k) => k.startsWith("new ")).length).toBeGreaterThan(0);
    }, 120_000);
  }
});

async function expectWgslMatches(g: Graph, inputs: Record<string, RefTensor>, training: boolean): Promise<void> {
  const params = initialParams(g, 0);
  for (const k of Object.keys(params)) params[k] = params[k]!.map((v) => Math.fround(v));
  const f32 = Object.fromEntries(Object.entries(inputs).map(([k, t]) => [k, t.dtype === "f32" ? t.map((v) => Math.fround(v)) : t]));
  const ref = interpret(g, f32, params, { training, seed: 1 });
  const { device, adapterClass } = await gpuDevice();
  const ex = await wgslExecutor(g, device, adapterClass, params, Object.keys(ref.outputs));
  try {
    const got = await ex.run(f32);
    for (const [name, want] of Object.entries(ref.outputs)) expectAllClose(got[name]!, want, `output '${name}'`);
  } finally {
    ex.dispose();
  }
}

describe("WebGPU target with planned buffers matches the reference", () => {
  for (const file of ["lenet5.cnn", "resnet_block.cnn", "char_lstm.cnn"]) {
    it(`${file} forward`, async () => {
      const g = load(file);
      await expectWgslMatches(g, inputsFor(g), false);
    });
  }
  for (const file of TRAINING) {
    it(`${file} training step (losses and every update)`, async () => {
      const { g, inputs } = trainingCase(file);
      await expectWgslMatches(g, inputs, true);
    }, 120_000);
  }
});

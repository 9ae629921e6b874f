// Memory planning (compiler/passes/memory.ts, runtime/memory-plan.ts):
//  * an independent aliasing checker walks each plan's schedule over the
//    memory the runtime would allocate and fails when a kernel reads a value
//    whose memory something else has overwritten since, when a node's output
//    overlaps its input (other than a declared in-place pair), or when one
//    WebGPU dispatch would bind an arena both read-only and writable; it runs
//    on every dsl-example's forward and training graph at two bindings, and
//    is shown to catch corrupted plans;
//  * LeNet-5's training step at batch 64 plans at most 60% of the naive bytes;
//  * outputs and updates still match the reference with planned (and
//    in-place) buffers on the JS and WebGPU targets.

import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { buildTrainingGraph, LR_INPUT, STEP_INPUT, type TrainingGraph } from "../../compiler/autodiff/training.ts";
import { emitProgram, IN_PLACE_OPS, planProgramMemory, UPDATE_IN_PLACE, VIEW_OPS } from "../../compiler/codegen/js/program.ts";
import { emitWgslProgram } from "../../compiler/codegen/wgsl/program.ts";
import { wgslExecutor } from "../../compiler/codegen/wgsl/execute.ts";
import { compileSource } from "../../compiler/compile.ts";
import { neededNodes, type Graph, type Value } from "../../compiler/ir/graph.ts";
import { elementCount, layoutMemory, planBytes, type MemoryPlan } from "../../compiler/passes/memory.ts";
import { optimizeInPlace } from "../../compiler/passes/pipeline.ts";
import { graphStats, memoryStats, trainStats } from "../../compiler/passes/stats.ts";
import { initialParams, interpret } from "../../compiler/reference/interpreter.ts";
import { RefTensor } from "../../compiler/reference/tensor.ts";
import type { ArenaLayout } from "../../runtime/memory-plan.ts";
import { expectAllClose, expectJsMatchesReference } from "../support/conformance.ts";
import { examples, examplesDir, inputsFor } from "../support/modules.ts";
import { gpuDevice } from "../support/webgpu.ts";

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

/**
 * Problems of a plan laid out at `env`, found by simulating the schedule over the memory itself (not over the
 * planner's lifetimes): every kernel input must still hold the value written to it, entry results must survive,
 * a node's outputs must not overlap each other or its inputs (except a declared in-place pair, which must be a
 * safe op on same-shaped values), and no dispatch may bind an arena read-only and writable at once.
 */
function aliasingProblems(plan: MemoryPlan, layout: ArenaLayout, roots: readonly Value[], env: Record<string, number>): string[] {
  const problems: string[] = [];
  const owner = new Map<Value, Value>();
  const own = (v: Value) => owner.get(v) ?? v;
  for (const n of plan.schedule) if (VIEW_OPS.has(n.op)) owner.set(n.outputs[0]!, own(n.inputs[0]!));
  // Where each storage owner lives: [buffer key, first element, element count]. Arenas are "a<k>".
  const where = (v: Value): [string, number, number] => {
    const item = plan.itemOf.get(v);
    if (item !== undefined) return [`a${layout.arena[item]}`, layout.offset[item]!, elementCount(v, env)];
    const p = plan.overwrites.get(v);
    return [`own%${(p ?? v).id}`, 0, elementCount(v, env)];
  };
  const overlap = (a: [string, number, number], b: [string, number, number]) => a[0] === b[0] && a[1] < b[1] + b[2] && b[1] < a[1] + a[2];
  plan.itemOf.forEach((item, v) => {
    const [, off, size] = where(v);
    if (off + size > layout.arenaSizes[layout.arena[item]!]!) problems.push(`%${v.id} runs past the end of its arena`);
  });
  const holds = new Map<Value, boolean>(); // owner → its memory still holds it
  const written: Value[] = [];
  plan.schedule.forEach((n, i) => {
    if (VIEW_OPS.has(n.op)) return;
    if (n.op === "input" || n.op === "param" || n.op === "const") {
      for (const v of n.outputs) holds.set(v, true);
      return;
    }
    const pairs = plan.inPlace.get(n) ?? [];
    for (const [j, k] of pairs) {
      const x = n.inputs[k]!;
      const y = n.outputs[j]!;
      if (!IN_PLACE_OPS.has(n.op) && !UPDATE_IN_PLACE[n.op]?.some(([a, b]) => a === j && b === k)) problems.push(`step ${i}: ${n.op} may not be written in place`);
      if (x.type.dtype !== y.type.dtype || x.type.shape.some((d, m) => !d.equals(y.type.shape[m]!)) || x.type.shape.length !== y.type.shape.length) problems.push(`step ${i}: in place over a different shape`);
      if (n.inputs.filter((z) => own(z) === own(x)).length !== 1) problems.push(`step ${i}: in-place input bound twice`);
    }
    for (const x of n.inputs) if (!holds.get(own(x))) problems.push(`step ${i} (${n.op} ${n.label ?? ""}) reads %${x.id}, whose memory was overwritten`);
    const outs = n.outputs.map((v) => where(v));
    n.outputs.forEach((y, j) => {
      n.inputs.forEach((x, k) => {
        const inPlace = pairs.some(([a, b]) => a === j && b === k);
        const wx = where(own(x));
        if (inPlace) {
          if (wx[0] !== outs[j]![0] || wx[1] !== outs[j]![1]) problems.push(`step ${i}: in-place output %${y.id} is not where its input is`);
        } else {
          if (overlap(outs[j]!, wx)) problems.push(`step ${i}: output %${y.id} overlaps input %${x.id}`);
          if (outs[j]![0] === wx[0] && outs[j]![0].startsWith("a")) problems.push(`step ${i}: arena ${wx[0]} bound read-only (%${x.id}) and writable (%${y.id}) in one dispatch`);
        }
      });
      n.outputs.forEach((z, m) => m > j && overlap(outs[j]!, outs[m]!) && problems.push(`step ${i}: outputs %${y.id} and %${z.id} overlap`));
    });
    n.outputs.forEach((y, j) => {
      for (const w of written) if (w !== y && holds.get(w) && overlap(outs[j]!, where(w))) holds.set(w, false);
      for (const [, k] of pairs.filter(([a]) => a === j)) holds.set(own(n.inputs[k]!), false);
      holds.set(y, true);
      written.push(y);
    });
  });
  for (const r of roots) if (!holds.get(own(r))) problems.push(`result %${r.id} was overwritten before the end`);
  return problems;
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
  it("LeNet-5's training step at batch 64 plans at most 60% of the naive peak", () => {
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
    expect(m.planned / m.naive).toBeLessThanOrEqual(0.6);
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

// Scheduling for memory (compiler/passes/schedule.ts) and relu's gradient
// reading its output (compiler/passes/relu-grad-output.ts):
//  * the scheduled graph is a permutation of the same nodes (same ids), in a
//    valid topological order, and computes the same results on the float64
//    reference (1e-9) for every dsl-example's forward and training graph;
//  * the JS training step of the scheduled graph equals the unscheduled one
//    (every loss and every new parameter/state value, exactly); the WebGPU
//    one (LeNet-5) matches the reference;
//  * an optimizer update (written in place over its parameter) is never
//    hoisted above a reader of the parameter's old value — a graph where the
//    eager candidate would do so without the hazard edges;
//  * LeNet-5's training step: every update still runs in place, no gradient
//    of a weight outlives its update, and the planned bytes drop.

import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { buildTrainingGraph, LR_INPUT, STEP_INPUT } from "../../compiler/autodiff/training.ts";
import { emitNode } from "../../compiler/autodiff/reverse.ts";
import { jsExecutor } from "../../compiler/codegen/js/execute.ts";
import { planProgramMemory, UPDATE_IN_PLACE } from "../../compiler/codegen/js/program.ts";
import { compileSource } from "../../compiler/compile.ts";
import { Graph, neededNodes, type Node, type Value } from "../../compiler/ir/graph.ts";
import { tensorType } from "../../compiler/ir/types.ts";
import { verifyGraph } from "../../compiler/ir/verifier.ts";
import { PASSES } from "../../compiler/passes/pipeline.ts";
import { candidateSchedules, hazardEdges, plannedBytes, schedulePass } from "../../compiler/passes/schedule.ts";
import { reluGradOutputPass } from "../../compiler/passes/relu-grad-output.ts";
import { bindSymbols, initialParams, interpret } from "../../compiler/reference/interpreter.ts";
import { RefTensor } from "../../compiler/reference/tensor.ts";
import { wgslExecutor } from "../../compiler/codegen/wgsl/execute.ts";
import { expectAllClose } from "../support/conformance.ts";
import { examples, examplesDir, inputsFor } from "../support/modules.ts";
import { gpuDevice } from "../support/webgpu.ts";

function load(file: string): Graph {
  const r = compileSource(readFileSync(join(examplesDir, file), "utf8"), file);
  if (r.diagnostics.length) throw new Error(r.diagnostics.map((d) => d.message).join("\n"));
  return r.graphs[0]!;
}

/** A copy of `g` through the pipeline, leaving out the passes named in `skip`. */
function optimizedWithout(g: Graph, skip: readonly string[]): Graph {
  const c = g.clone();
  for (const p of PASSES) {
    if (skip.includes(p.name)) continue;
    p.run(c);
    expect(verifyGraph(c), `${p.name} on ${g.name}`).toEqual([]);
  }
  return c;
}

/** The training graph of an example with every state update as an output too, and its feeds. */
function trainingCase(file: string): { g: Graph; inputs: Record<string, RefTensor> } | undefined {
  const t = buildTrainingGraph(load(file));
  if (!t) return undefined;
  for (const u of t.updates) t.graph.outputs.push({ name: `new ${u.name}`, value: u.value, kind: "output" });
  const inputs = inputsFor(t.graph);
  inputs[LR_INPUT] = RefTensor.scalar(t.optimizer.options.lr ?? 0.01);
  inputs[STEP_INPUT] = RefTensor.scalar(1);
  return { g: t.graph, inputs };
}

function isTopological(nodes: readonly Node[]): boolean {
  const seen = new Set<Node>();
  return nodes.every((n) => n.inputs.every((v) => seen.has(v.node)) && seen.add(n) !== undefined);
}

function expectSameResults(a: Record<string, RefTensor>, b: Record<string, RefTensor>, what: string, tol: number): void {
  expect(Object.keys(b).sort()).toEqual(Object.keys(a).sort());
  for (const [name, x] of Object.entries(a)) {
    const y = b[name]!;
    expect(y.shape, `${what} ${name}`).toEqual(x.shape);
    for (let i = 0; i < x.size; i++) {
      const p = x.data[i]!;
      const q = y.data[i]!;
      if (!(Number.isNaN(p) && Number.isNaN(q)) && Math.abs(p - q) > tol * (1 + Math.abs(p))) expect.fail(`${what} ${name}[${i}]: ${q}, unscheduled ${p}`);
    }
  }
}

describe("scheduling keeps every example's results", () => {
  for (const file of examples) {
    it(`${file}: forward and training graphs, reference interpreter before and after`, () => {
      const cases: { what: string; g: Graph; inputs: Record<string, RefTensor>; training: boolean }[] = [];
      const g = load(file);
      // Inception's float64 convolutions are slow at the shared sizes; one small image checks its order as well.
      cases.push({ what: "forward", g, inputs: file === "inception.cnn" ? inputsFor(g, { N: 1, H: 8, W: 8 }) : inputsFor(g), training: false });
      const t = trainingCase(file);
      if (t) cases.push({ what: "training", ...t, training: true });
      for (const c of cases) {
        const before = optimizedWithout(c.g, ["schedule", "relu-grad-output"]);
        const after = optimizedWithout(c.g, []);
        // A permutation of the same nodes (ids kept), topologically valid.
        const unscheduled = optimizedWithout(c.g, ["schedule"]);
        expect(after.nodes.map((n) => n.id).sort((x, y) => x - y)).toEqual(unscheduled.nodes.map((n) => n.id).sort((x, y) => x - y));
        expect(isTopological(after.nodes)).toBe(true);
        const params = initialParams(c.g, 0);
        const opts = { training: c.training, seed: 1 };
        expectSameResults(interpret(before, c.inputs, params, opts).outputs, interpret(after, c.inputs, params, opts).outputs, `${file} ${c.what}`, 1e-9);
      }
    }, 240_000);
  }
});

describe("the WebGPU training step of the scheduled graph matches the reference", () => {
  // Relu written in place over the conv output, unary_grad binding the relu output twice, updates hoisted.
  it("lenet5.cnn: losses and every update", async () => {
    const { g, inputs } = trainingCase("lenet5.cnn")!;
    const after = optimizedWithout(g, []);
    const params = initialParams(g, 0);
    for (const k of Object.keys(params)) params[k] = params[k]!.map((v) => Math.fround(v));
    const f32 = Object.fromEntries(Object.entries(inputs).map(([k, v]) => [k, v.dtype === "f32" ? v.map((x) => Math.fround(x)) : v]));
    const ref = interpret(g, f32, params, { training: true, seed: 1 });
    const { device, adapterClass } = await gpuDevice();
    const ex = await wgslExecutor(after, device, adapterClass, params, Object.keys(ref.outputs));
    try {
      const got = await ex.run(f32);
      for (const [name, want] of Object.entries(ref.outputs)) expectAllClose(got[name]!, want, `output '${name}'`);
    } finally {
      ex.dispose();
    }
  }, 120_000);
});

describe("the JS training step equals the unscheduled one", () => {
  for (const file of ["lenet5.cnn", "resnet_block.cnn", "char_lstm.cnn", "text_cnn.cnn"]) {
    it(`${file}: losses and every new parameter and state value`, () => {
      const { g, inputs } = trainingCase(file)!;
      const before = optimizedWithout(g, ["schedule"]);
      const after = optimizedWithout(g, []);
      expect(after.nodes.map((n) => n.id)).not.toEqual(before.nodes.map((n) => n.id));
      const params = initialParams(g, 0);
      for (const k of Object.keys(params)) params[k] = params[k]!.map((v) => Math.fround(v));
      const f32 = Object.fromEntries(Object.entries(inputs).map(([k, v]) => [k, v.dtype === "f32" ? v.map((x) => Math.fround(x)) : v]));
      const symbols = Object.fromEntries(bindSymbols(g, f32));
      const run = (h: Graph) => jsExecutor(h).run(f32, params, { training: true, seed: 1, symbols });
      const want = run(before);
      const got = run(after);
      expect(Object.keys(want).filter((k) => k.startsWith("new ")).length).toBeGreaterThan(0);
      expectSameResults(want, got, file, 0);
    }, 60_000);
  }
});

/**
 * x: f32[64], W: param f32[64]; a = x * W; grad = x * x (ready early); r = a * W (reads W's old value);
 * W' = sgd_update(W, grad, lr); output o = r * r. Nothing but the hazard keeps the update after r.
 */
function hazardGraph(readsW: boolean): { g: Graph; update: Node; reader: Node } {
  const g = new Graph("Hazard");
  const vec = tensorType("f32", [64]);
  const x = g.addNode("input", [], { name: "x", dtype: "f32", shape: vec.shape }, [vec], { label: "x" }).outputs[0]!;
  g.inputs.set("x", x);
  const W = g.addNode("param", [], { name: "W", dtype: "f32", shape: vec.shape }, [vec], { label: "W" }).outputs[0]!;
  g.params.set("W", { name: "W", value: W, init: { kind: "zeros" }, trainable: true });
  const lrType = tensorType("f32", []);
  const lr = g.addNode("input", [], { name: LR_INPUT, dtype: "f32", shape: lrType.shape }, [lrType], { label: LR_INPUT }).outputs[0]!;
  g.inputs.set(LR_INPUT, lr);
  const a = emitNode(g, "mul", [x, W], {}, { label: "a" })[0]!;
  const grad = emitNode(g, "mul", [x, x], {}, { label: "grad" })[0]!;
  const r = emitNode(g, "mul", [a, readsW ? W : a], {}, { label: "r" })[0]!;
  const out = emitNode(g, "sgd_update", [W, grad, lr], { momentum: 0, weightDecay: 0 }, { label: "W.update" })[0]!;
  // r is an intermediate (it allocates), so only the hazard orders it before the update.
  const o = emitNode(g, "mul", [r, r], {}, { label: "o" })[0]!;
  g.outputs.push({ name: "o", value: o, kind: "output" });
  g.bufferUpdates.push({ name: "W", value: out });
  expect(verifyGraph(g)).toEqual([]);
  return { g, update: out.node, reader: r.node };
}

describe("an optimizer update is never hoisted above a reader of its parameter", () => {
  it("without a later reader of W, the eager candidate runs the update as soon as its gradient is ready", () => {
    // The control case: shows the candidates do hoist updates, so the next test is not vacuous.
    const { g, update, reader } = hazardGraph(false);
    const eager = candidateSchedules(g, {}).find((c) => c.name === "eager")!.order;
    expect(eager.indexOf(update)).toBeLessThan(eager.indexOf(reader));
  });

  it("with r = a * W after the gradient, every candidate and the pass keep the update after r, in place", () => {
    const { g, update, reader } = hazardGraph(true);
    expect(hazardEdges(g.nodes).get(update)).toContain(reader);
    for (const c of candidateSchedules(g, {})) expect(c.order.indexOf(update), c.name).toBeGreaterThan(c.order.indexOf(reader));
    const x = RefTensor.from(Array.from({ length: 64 }, (_, i) => i / 7 - 3), [64]);
    const params = { W: RefTensor.from(Array.from({ length: 64 }, (_, i) => Math.fround(Math.sin(i))), [64]) };
    const inputs = { x: x.map((v) => Math.fround(v)), [LR_INPUT]: RefTensor.scalar(0.5) };
    const before = interpret(g, inputs, params).outputs;
    schedulePass.run(g);
    expect(verifyGraph(g)).toEqual([]);
    expect(g.nodes.indexOf(update)).toBeGreaterThan(g.nodes.indexOf(reader));
    // r still reads the old W (reference and JS), and the update writes over W's buffer.
    expectSameResults(before, interpret(g, inputs, params).outputs, "hazard", 0);
    const roots = [g.outputs[0]!.value, g.bufferUpdates[0]!.value];
    const plan = planProgramMemory(neededNodes(g, roots), roots);
    expect(plan.overwrites.get(g.bufferUpdates[0]!.value)).toBe(g.params.get("W")!.value);
    const js = jsExecutor(g).run(inputs, params, { symbols: {} });
    const want = interpret(g, inputs, params).outputs.o!;
    js.o!.data.forEach((v, i) => expect(Math.abs(v - want.data[i]!)).toBeLessThanOrEqual(1e-5 + 1e-4 * Math.abs(want.data[i]!)));
  });
});

describe("LeNet-5's scheduled training step", () => {
  const t = buildTrainingGraph(load("lenet5.cnn"))!;
  const g = optimizedWithout(t.graph, []);
  const rootsOf = (h: Graph) => [...h.outputs.filter((o) => o.kind === "loss").map((o) => o.value), ...h.bufferUpdates.map((u) => u.value)];
  const roots = rootsOf(g);

  it("runs every update after every reader of the storage it overwrites, and in place", () => {
    const updates = g.nodes.filter((n) => UPDATE_IN_PLACE[n.op]);
    expect(updates.length).toBe(10);
    const views = new Map<Value, Value>();
    const own = (v: Value): Value => views.get(v) ?? v;
    for (const n of g.nodes) if (n.op === "reshape") views.set(n.outputs[0]!, own(n.inputs[0]!));
    for (const u of updates) {
      for (const [, k] of UPDATE_IN_PLACE[u.op]!) {
        const p = u.inputs[k]!;
        const readers = g.nodes.filter((n) => n !== u && n.inputs.some((v) => own(v) === p));
        for (const r of readers) expect(g.nodes.indexOf(r), `${r.op} ${r.label ?? ""} reads ${u.label}'s input ${k}`).toBeLessThan(g.nodes.indexOf(u));
      }
    }
    const plan = planProgramMemory(neededNodes(g, roots), roots);
    // Parameter, m and v of each of the 10 Adam updates.
    expect(plan.overwrites.size).toBe(30);
  });

  it("updates each weight right after its gradient: no weight gradient outlives its update", () => {
    for (const u of g.nodes.filter((n) => n.op === "adam_update")) {
      const grad = u.inputs[1]!;
      const producer = g.nodes.indexOf(grad.node);
      // Between the gradient and its update only sources, views and nodes the update waits for (readers of W).
      const between = g.nodes.slice(producer + 1, g.nodes.indexOf(u)).filter((n) => !["param", "input", "const", "reshape"].includes(n.op));
      const W = u.inputs[0]!;
      for (const n of between) expect(n.inputs.some((v) => v === W) || n.op === "adam_update", `${n.op} ${n.label ?? ""} between ${u.label}'s gradient and the update`).toBe(true);
    }
  });

  it("plans fewer bytes than the unscheduled order, and relu's gradient reads the relu's output", () => {
    const env = { N: 64 };
    const unscheduled = optimizedWithout(t.graph, ["schedule"]);
    const bytes = (h: Graph) => plannedBytes(h.nodes, rootsOf(h), env);
    expect(bytes(g)).toBeLessThan(bytes(unscheduled));
    const withoutRelu = optimizedWithout(t.graph, ["relu-grad-output"]);
    expect(bytes(g)).toBeLessThan(0.8 * bytes(withoutRelu));
    // No unary_grad of relu reads a pre-activation any more: the two conv outputs die at their relus.
    const raw = t.graph.clone();
    reluGradOutputPass.run(raw);
    const reluGrads = raw.nodes.filter((n) => n.op === "unary_grad" && n.attrs.fn === "relu");
    expect(reluGrads.length).toBe(4);
    for (const n of reluGrads) expect(n.inputs[0]).toBe(n.inputs[1]);
    for (const conv of raw.nodes.filter((n) => n.op === "conv")) expect(raw.users().get(conv.outputs[0]!)!.map((n) => n.op)).toEqual(["relu"]);
  });
});

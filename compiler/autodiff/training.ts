// The training step as one IR graph: a copy of the forward graph (same node
// ids, so dropout draws the same masks), the total loss (the sum of the
// model's losses), its backward graph, and one optimizer-update node per
// trainable parameter. The graph's results are the losses and the new values
// of every piece of state: parameters, optimizer state (momentum, Adam's
// moments) and batchnorm running statistics, which replace the old values
// (in place where the memory plan allows, else copied after the step). `lr` and the step count are run-time scalars (`@lr`, `@step`), so
// they change without recompiling.
//
// Random ops (dropout, gaussian_noise) also read `@step`: it is appended as an
// extra, last input of each of them (an f32 scalar, non-differentiable), so a
// kernel that has no run context (WGSL) can seed its per-step draws from it.
// The reference and JS semantics ignore that input: they draw from the run's
// seeded streams (seed = step), as before.

import { CompileError, diag } from "../diagnostics.ts";
import type { Graph, Node, OptimizerInfo, OutputInfo, Value } from "../ir/graph.ts";
import { tensorType } from "../ir/types.ts";
import { emitNode, gradients } from "./reverse.ts";

export interface StateUpdate {
  /** Parameter, buffer or optimizer-state name. */
  readonly name: string;
  readonly value: Value;
}

export interface TrainingGraph {
  readonly graph: Graph;
  /** The model's losses, computed in training mode. */
  readonly losses: readonly OutputInfo[];
  /** The total loss that is differentiated. */
  readonly total: Value;
  /** New values of parameters, optimizer state and buffers. */
  readonly updates: readonly StateUpdate[];
  /** Optimizer state tensors (zeros at the start; not saved with the weights). */
  readonly state: readonly string[];
  readonly optimizer: OptimizerInfo;
  /** Trainable parameters that get no gradient (the losses do not depend on them). */
  readonly frozen: readonly string[];
}

/** Hidden run-time scalars of a training step; `@` keeps them apart from DSL names. */
export const LR_INPUT = "@lr";
export const STEP_INPUT = "@step";

/** Ops whose training behaviour differs from inference. */
export const TRAINING_FORM = new Set(["batchnorm", "dropout", "gaussian_noise"]);

/** Ops that draw random numbers in training; the training graph feeds them `@step` (see the header). */
export const RANDOM_OPS = new Set(["dropout", "gaussian_noise"]);

export const DEFAULT_OPTIMIZER: OptimizerInfo = { kind: "sgd", options: { lr: 0.01 } };

/** The training graph of `g`, or undefined when the model declares no loss. */
export function buildTrainingGraph(forward: Graph): TrainingGraph | undefined {
  const lossOuts = forward.outputs.filter((o) => o.kind === "loss");
  if (lossOuts.length === 0) return undefined;
  const g = forward.clone();
  const scalar = tensorType("f32", []);
  const hidden = (name: string) => {
    const v = g.addNode("input", [], { name, dtype: scalar.dtype, shape: scalar.shape }, [scalar], { label: name }).outputs[0]!;
    g.inputs.set(name, v);
    return v;
  };
  // Kernels that cannot read the run's training flag (WGSL) pick their training form by attribute.
  for (const n of g.nodes) {
    if (TRAINING_FORM.has(n.op)) (n as { attrs: Node["attrs"] }).attrs = { ...n.attrs, training: true };
  }
  // Random ops get the step number as a last input: the WGSL kernels' per-step seed.
  const random = g.nodes.filter((n) => RANDOM_OPS.has(n.op));
  let step: Value | undefined;
  if (random.length > 0) {
    step = hidden(STEP_INPUT);
    // The new input node goes first, so the node list stays in topological order (ids are unchanged).
    g.nodes.unshift(g.nodes.pop()!);
    for (const n of random) (n as { inputs: Node["inputs"] }).inputs = [...n.inputs, step];
  }
  const losses = g.outputs.filter((o) => o.kind === "loss");
  const meta = { label: "loss" };
  let total = losses[0]!.value;
  for (const l of losses.slice(1)) total = emitNode(g, "add", [total, l.value], {}, meta)[0]!;
  for (const l of losses) {
    if (l.value.type.shape.length !== 0 || l.value.type.dtype !== "f32") {
      throw new CompileError([diag("E215", `loss '${l.name}' must be an f32 scalar to train on`, l.span)]);
    }
  }

  const params = g.trainableParams();
  const grads = gradients(g, total, params.map((p) => p.value), { what: "training" });
  const optimizer = g.optimizer ?? DEFAULT_OPTIMIZER;
  const opt = optimizer.options;
  const lr = hidden(LR_INPUT);
  if (optimizer.kind === "adam") step ??= hidden(STEP_INPUT);
  const stateParam = (name: string, like: Value) => {
    const v = g.addNode("param", [], { name, dtype: like.type.dtype, shape: like.type.shape }, [like.type], { label: name }).outputs[0]!;
    g.params.set(name, { name, value: v, init: { kind: "zeros" }, trainable: false });
    state.push(name);
    return v;
  };

  const updates: StateUpdate[] = [];
  const state: string[] = [];
  const frozen: string[] = [];
  params.forEach((p, i) => {
    const grad = grads[i];
    if (!grad) {
      frozen.push(p.name);
      return;
    }
    const label = `${p.name}.update`;
    if (optimizer.kind === "sgd") {
      const momentum = opt.momentum ?? 0;
      const attrs = { momentum, weightDecay: opt.weight_decay ?? 0 };
      const inputs = momentum > 0 ? [p.value, grad, lr, stateParam(`@sgd.velocity.${p.name}`, p.value)] : [p.value, grad, lr];
      const outs = emitNode(g, "sgd_update", inputs, attrs, { label });
      updates.push({ name: p.name, value: outs[0]! });
      if (momentum > 0) updates.push({ name: `@sgd.velocity.${p.name}`, value: outs[1]! });
    } else {
      const attrs = { beta1: opt.beta1 ?? 0.9, beta2: opt.beta2 ?? 0.999, eps: opt.eps ?? 1e-8, weightDecay: opt.weight_decay ?? 0 };
      const m = stateParam(`@adam.m.${p.name}`, p.value);
      const v = stateParam(`@adam.v.${p.name}`, p.value);
      const outs = emitNode(g, "adam_update", [p.value, grad, lr, step!, m, v], attrs, { label });
      updates.push({ name: p.name, value: outs[0]! }, { name: `@adam.m.${p.name}`, value: outs[1]! }, { name: `@adam.v.${p.name}`, value: outs[2]! });
    }
  });
  for (const u of g.bufferUpdates) updates.push(u);
  // The graph's state updates are now all of them, so the printer and the interpreter show and apply them.
  g.bufferUpdates.splice(0, g.bufferUpdates.length, ...updates);
  return { graph: g, losses, total, updates, state, optimizer, frozen };
}

/** The learning rate a model trains with when trainStep is given none. */
export function defaultLearningRate(t: Pick<TrainingGraph, "optimizer">): number {
  return t.optimizer.options.lr ?? (t.optimizer.kind === "adam" ? 0.001 : 0.01);
}

// Static statistics of a graph for `cnnc ir --stats`: parameter count, kernel
// count, FLOPs and memory (the bytes the memory plan allocates — pinned
// buffers plus the shared arenas, compiler/passes/memory.ts — vs. the naive
// one buffer per value), with symbols bound to given sizes (default 1).

import type { Dim } from "../ir/dims.ts";
import { neededNodes, parameterCount, type Graph, type Node, type Value } from "../ir/graph.ts";
import { buildTrainingGraph } from "../autodiff/training.ts";
import { optimizeInPlace, type PassLevel } from "./pipeline.ts";
import { planProgramMemory } from "../codegen/js/program.ts";
import { planBytes } from "./memory.ts";

export interface GraphStats {
  params: number;
  buffers: number;
  /** Kernels launched per forward run (every compute node; reshapes are views). */
  kernels: number;
  flops: number;
  /** Bytes the memory plan allocates for a forward run: inputs, parameters, results and the shared arenas. */
  peakBytes: number;
  /** Bytes if every tensor had its own buffer for the whole run. */
  naivePeakBytes: number;
  /** Symbol sizes the numbers were computed with. */
  symbols: Record<string, number>;
}

/** Ops that produce no kernel: sources and views. */
const NO_KERNEL = new Set(["input", "param", "const", "reshape"]);

function symbolEnv(g: Graph, bind: Record<string, number>): Record<string, number> {
  const env: Record<string, number> = {};
  for (const s of g.symbols) env[s] = bind[s] ?? 1;
  return env;
}

/** Kernels launched and FLOPs for the given nodes. */
function work(nodes: readonly Node[], env: Record<string, number>): { kernels: number; flops: number } {
  const size = (v: Value) => v.type.shape.reduce((p, d: Dim) => p * d.evaluate(env), 1);
  let kernels = 0;
  let flops = 0;
  for (const n of nodes) {
    if (NO_KERNEL.has(n.op)) continue;
    kernels++;
    flops += nodeFlops(n, size, env);
  }
  return { kernels, flops };
}

/** Planned and naive bytes of the program that computes `roots` (what emitProgram allocates). */
export function memoryStats(g: Graph, roots: readonly Value[], env: Record<string, number>): { planned: number; naive: number } {
  return planBytes(planProgramMemory(neededNodes(g, roots), roots), env);
}

export interface TrainStats {
  trainKernels?: number;
  trainFlops?: number;
  trainPeakBytes?: number;
  trainNaivePeakBytes?: number;
}

/** Per training step (models with a loss): kernels, FLOPs and memory of forward + backward + update. */
export function trainStats(g: Graph, bind: Record<string, number> = {}, passes: PassLevel = "none"): TrainStats {
  const t = buildTrainingGraph(g);
  if (!t) return {};
  // With passes, the step as modules compile it: the training graph optimized, its results re-read.
  const graph = optimizeInPlace(t.graph, passes);
  const roots = [...graph.outputs.filter((o) => o.kind === "loss").map((o) => o.value), ...graph.bufferUpdates.map((u) => u.value)];
  const nodes = neededNodes(graph, roots);
  const env = symbolEnv(g, bind);
  const w = work(nodes, env);
  const m = memoryStats(graph, roots, env);
  return { trainKernels: w.kernels, trainFlops: w.flops, trainPeakBytes: m.planned, trainNaivePeakBytes: m.naive };
}

export function graphStats(g: Graph, bind: Record<string, number> = {}): GraphStats {
  const env = symbolEnv(g, bind);
  const { kernels, flops } = work(g.nodes, env);
  // The forward program's memory, as emitProgram plans it (roots: outputs and buffer updates).
  const m = memoryStats(g, [...g.outputs.map((o) => o.value), ...g.bufferUpdates.map((u) => u.value)], env);
  const { total } = parameterCount(g);
  return { params: total, buffers: g.buffers().length, kernels, flops, peakBytes: m.planned, naivePeakBytes: m.naive, symbols: env };
}

/** Multiply-adds count as two FLOPs; elementwise ops one per output element. */
function nodeFlops(n: Node, size: (v: Value) => number, env: Record<string, number>): number {
  const out = n.outputs[0]!;
  const a = n.attrs;
  switch (n.op) {
    case "conv": {
      const w = n.inputs[1]!;
      const perOut = w.type.shape.slice(1).reduce((p, d) => p * d.evaluate(env), 1);
      return 2 * size(out) * perOut;
    }
    case "conv_transpose": {
      const w = n.inputs[1]!;
      const perIn = w.type.shape.slice(1).reduce((p, d) => p * d.evaluate(env), 1);
      return 2 * size(n.inputs[0]!) * perIn;
    }
    case "einsum": {
      // One multiply-add per point of the full index space.
      const sizes = new Map<string, number>();
      (a.operands as string[][]).forEach((idx, k) => idx.forEach((ix, j) => sizes.set(ix, n.inputs[k]!.type.shape[j]!.evaluate(env))));
      const space = [...sizes.values()].reduce((p, s) => p * s, 1);
      return 2 * space * Math.max(1, n.inputs.length - 1);
    }
    case "rnn": {
      const x = n.inputs[0]!;
      const wih = n.inputs[1]!;
      const [N, L, D] = x.type.shape.map((d) => d.evaluate(env)) as [number, number, number];
      const GH = wih.type.shape[0]!.evaluate(env);
      const H = n.inputs[2]!.type.shape[1]!.evaluate(env);
      const dirs = a.direction === "bidirectional" ? 2 : 1;
      return dirs * N * L * 2 * GH * (D + H);
    }
    case "fused_elementwise":
      // Every step is evaluated once per element of the result (compiler/ops/fused.ts).
      return size(out) * (a.steps as readonly { op: string }[]).filter((s) => s.op !== "load").length;
    default:
      return Math.max(size(out), ...n.inputs.map(size));
  }
}

export function formatStats(g: Graph, s: GraphStats & TrainStats): string {
  const syms = Object.entries(s.symbols).map(([k, v]) => `${k}=${v}`).join(", ");
  return [
    `statistics of ${g.name}${syms ? ` (${syms})` : ""}:`,
    `  kernels per forward   ${s.kernels}`,
    `  FLOPs per forward     ${s.flops.toLocaleString("en-US")}`,
    `  peak bytes (planned)  ${s.peakBytes.toLocaleString("en-US")}`,
    `  naive peak bytes      ${s.naivePeakBytes.toLocaleString("en-US")}`,
    ...(s.trainKernels !== undefined
      ? [`  kernels per train step ${s.trainKernels}`, `  FLOPs per train step  ${s.trainFlops!.toLocaleString("en-US")}`]
      : []),
    ...(s.trainPeakBytes !== undefined
      ? [`  train peak bytes (planned) ${s.trainPeakBytes.toLocaleString("en-US")}`, `  train naive peak bytes     ${s.trainNaivePeakBytes!.toLocaleString("en-US")}`]
      : []),
  ].join("\n");
}

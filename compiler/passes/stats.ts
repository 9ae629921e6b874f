// Static statistics of a graph for `cnnc ir --stats`: parameter count, kernel
// count, FLOPs and memory (peak of live tensors by liveness vs. the naive sum
// of every tensor), with symbols bound to given sizes (default 1).

import type { Dim } from "../ir/dims.ts";
import { neededNodes, parameterCount, type Graph, type Node, type Value } from "../ir/graph.ts";
import { buildTrainingGraph } from "../autodiff/training.ts";

export interface GraphStats {
  params: number;
  buffers: number;
  /** Kernels launched per forward run (every compute node; reshapes are views). */
  kernels: number;
  flops: number;
  /** Peak bytes of tensors live at once, tensors freed after their last use. */
  peakBytes: number;
  /** Bytes if every tensor had its own buffer for the whole run. */
  naivePeakBytes: number;
  /** Symbol sizes the numbers were computed with. */
  symbols: Record<string, number>;
}

/** Ops that produce no kernel: sources and views. */
const NO_KERNEL = new Set(["input", "param", "const", "reshape"]);

const BYTES = { f32: 4, i32: 4, bool: 4 } as const;

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

/** Per training step (models with a loss): kernels and FLOPs of forward + backward + update. */
export function trainStats(g: Graph, bind: Record<string, number> = {}): { trainKernels?: number; trainFlops?: number } {
  const t = buildTrainingGraph(g);
  if (!t) return {};
  const nodes = neededNodes(t.graph, [...t.losses.map((o) => o.value), ...t.updates.map((u) => u.value)]);
  const w = work(nodes, symbolEnv(g, bind));
  return { trainKernels: w.kernels, trainFlops: w.flops };
}

export function graphStats(g: Graph, bind: Record<string, number> = {}): GraphStats {
  const env = symbolEnv(g, bind);
  const size = (v: Value) => v.type.shape.reduce((p, d: Dim) => p * d.evaluate(env), 1);
  const bytes = (v: Value) => size(v) * BYTES[v.type.dtype];
  const { kernels, flops } = work(g.nodes, env);

  // Liveness: a reshape aliases its input, so it extends the input's life.
  const root = new Map<Value, Value>();
  const rootOf = (v: Value): Value => root.get(v) ?? v;
  for (const n of g.nodes) if (n.op === "reshape") root.set(n.outputs[0]!, rootOf(n.inputs[0]!));
  const lastUse = new Map<Value, number>();
  g.nodes.forEach((n, i) => n.inputs.forEach((v) => lastUse.set(rootOf(v), i)));
  const end = g.nodes.length;
  for (const o of g.outputs) lastUse.set(rootOf(o.value), end);
  for (const u of g.bufferUpdates) lastUse.set(rootOf(u.value), end);
  for (const p of g.params.values()) lastUse.set(p.value, end);

  let live = 0;
  let peak = 0;
  let naive = 0;
  const dying = new Map<number, number>();
  g.nodes.forEach((n, i) => {
    for (const v of n.outputs) {
      if (root.has(v)) continue;
      const b = bytes(v);
      naive += b;
      live += b;
      const last = lastUse.get(v) ?? i; // unused values die at once
      dying.set(last, (dying.get(last) ?? 0) + b);
    }
    peak = Math.max(peak, live);
    live -= dying.get(i) ?? 0;
  });
  const { total } = parameterCount(g);
  return { params: total, buffers: g.buffers().length, kernels, flops, peakBytes: peak, naivePeakBytes: naive, symbols: env };
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
    default:
      return Math.max(size(out), ...n.inputs.map(size));
  }
}

export function formatStats(g: Graph, s: GraphStats & { trainKernels?: number; trainFlops?: number }): string {
  const syms = Object.entries(s.symbols).map(([k, v]) => `${k}=${v}`).join(", ");
  return [
    `statistics of ${g.name}${syms ? ` (${syms})` : ""}:`,
    `  kernels per forward   ${s.kernels}`,
    `  FLOPs per forward     ${s.flops.toLocaleString("en-US")}`,
    `  peak bytes (liveness) ${s.peakBytes.toLocaleString("en-US")}`,
    `  naive peak bytes      ${s.naivePeakBytes.toLocaleString("en-US")}`,
    ...(s.trainKernels !== undefined
      ? [`  kernels per train step ${s.trainKernels}`, `  FLOPs per train step  ${s.trainFlops!.toLocaleString("en-US")}`]
      : []),
  ].join("\n");
}

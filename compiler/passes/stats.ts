// Static statistics of a graph for `cnnc ir --stats`: parameter count, kernel
// count, FLOPs and memory (the bytes the memory plan allocates — pinned
// buffers plus the shared arenas, compiler/passes/memory.ts — vs. the naive
// one buffer per value), with symbols bound to given sizes (default 1). The
// WebGPU target's figures also count its kernels' scratch slots, which are
// items of the same plan there (compiler/codegen/wgsl/program.ts).

import type { Dim } from "../ir/dims.ts";
import { neededNodes, parameterCount, type Graph, type Node, type Value } from "../ir/graph.ts";
import { buildTrainingGraph } from "../autodiff/training.ts";
import { optimizeInPlace, type PassLevel } from "./pipeline.ts";
import { planProgramMemory, VIEW_OPS } from "../codegen/js/program.ts";
import { emitWgslProgram } from "../codegen/wgsl/program.ts";
import { hasWgslKernel } from "../codegen/wgsl/index.ts";
import { planBytes } from "./memory.ts";
import { convAlgorithmRows, formatEstimates, type ConvAlgorithmRow } from "./conv-algorithm.ts";
import { epilogueBaseView } from "../ops/fused.ts";

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
  /** The same on the WebGPU target, WGSL scratch included (absent when an op has no WGSL kernel). */
  webgpuPeakBytes?: number;
  webgpuNaivePeakBytes?: number;
  /** Symbol sizes the numbers were computed with. */
  symbols: Record<string, number>;
  /** Per forward convolution: the algorithm each target runs and the estimated cost of each (compiler/passes/conv-algorithm.ts). */
  convAlgorithms: ConvAlgorithmRow[];
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

/** The same on the WebGPU target (what emitWgslProgram allocates: WGSL scratch included); undefined when an op has no WGSL kernel. */
export function wgslMemoryStats(g: Graph, roots: readonly Value[], env: Record<string, number>): { planned: number; naive: number } | undefined {
  if (!neededNodes(g, roots).every((n) => SOURCES.has(n.op) || VIEW_OPS.has(n.op) || hasWgslKernel(n.op))) return undefined;
  return planBytes(emitWgslProgram(g, roots).plan, env);
}

const SOURCES = new Set(["input", "param", "const"]);

export interface TrainStats {
  trainKernels?: number;
  trainFlops?: number;
  trainPeakBytes?: number;
  trainNaivePeakBytes?: number;
  trainWebgpuPeakBytes?: number;
  trainWebgpuNaivePeakBytes?: number;
  /** The forward convolutions of the training step (with passes: as chosen there). */
  trainConvAlgorithms?: ConvAlgorithmRow[];
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
  const gpu = wgslMemoryStats(graph, roots, env);
  return {
    trainKernels: w.kernels,
    trainFlops: w.flops,
    trainPeakBytes: m.planned,
    trainNaivePeakBytes: m.naive,
    ...(gpu ? { trainWebgpuPeakBytes: gpu.planned, trainWebgpuNaivePeakBytes: gpu.naive } : {}),
    trainConvAlgorithms: convAlgorithmRows(graph),
  };
}

export function graphStats(g: Graph, bind: Record<string, number> = {}): GraphStats {
  const env = symbolEnv(g, bind);
  const { kernels, flops } = work(g.nodes, env);
  // The forward program's memory, as emitProgram plans it (roots: outputs and buffer updates).
  const roots = [...g.outputs.map((o) => o.value), ...g.bufferUpdates.map((u) => u.value)];
  const m = memoryStats(g, roots, env);
  const gpu = wgslMemoryStats(g, roots, env);
  const { total } = parameterCount(g);
  return {
    params: total,
    buffers: g.buffers().length,
    kernels,
    flops,
    peakBytes: m.planned,
    naivePeakBytes: m.naive,
    ...(gpu ? { webgpuPeakBytes: gpu.planned, webgpuNaivePeakBytes: gpu.naive } : {}),
    symbols: env,
    convAlgorithms: convAlgorithmRows(g),
  };
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
    case "fused_epilogue": {
      // The contraction's own count, then every step once per element of its result (compiler/ops/fused.ts).
      const base = epilogueBaseView(n);
      return nodeFlops(base, size, env) + size(base.outputs[0]!) * (a.steps as readonly { op: string }[]).filter((s) => s.op !== "load").length;
    }
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
    ...webgpuBytesLine("  webgpu peak bytes     ", s.webgpuPeakBytes, s.webgpuNaivePeakBytes),
    ...(s.trainKernels !== undefined
      ? [`  kernels per train step ${s.trainKernels}`, `  FLOPs per train step  ${s.trainFlops!.toLocaleString("en-US")}`]
      : []),
    ...(s.trainPeakBytes !== undefined
      ? [`  train peak bytes (planned) ${s.trainPeakBytes.toLocaleString("en-US")}`, `  train naive peak bytes     ${s.trainNaivePeakBytes!.toLocaleString("en-US")}`]
      : []),
    ...webgpuBytesLine("  train webgpu peak bytes    ", s.trainWebgpuPeakBytes, s.trainWebgpuNaivePeakBytes),
    ...convAlgorithmLines(s.convAlgorithms, s.trainConvAlgorithms),
  ].join("\n");
}

/** The WebGPU target's planned / naive bytes: the figures above plus its kernels' scratch slots. */
function webgpuBytesLine(head: string, planned: number | undefined, naive: number | undefined): string[] {
  return planned === undefined ? [] : [`${head}${planned.toLocaleString("en-US")} planned, ${naive!.toLocaleString("en-US")} naive (WGSL scratch included)`];
}

/**
 * The summary line of the convolution algorithms, one line per forward conv
 * (label, chosen per target, estimates per image), and the training step's summary.
 */
function convAlgorithmLines(rows: readonly ConvAlgorithmRow[], trainRows: readonly ConvAlgorithmRow[] | undefined): string[] {
  const count = (rs: readonly ConvAlgorithmRow[], target: "js" | "webgpu") => {
    const by = new Map<string, number>();
    for (const r of rs) by.set(r[target], (by.get(r[target]) ?? 0) + 1);
    return [...by].map(([alg, n]) => `${n} ${alg}`).join(", ");
  };
  return [
    ...(rows.length ? [`  conv algorithms       js: ${count(rows, "js")}; webgpu: ${count(rows, "webgpu")}`] : []),
    ...rows.map((r) => `    ${r.label || `%${r.node}`}: ${r.conv}: js ${r.js}, webgpu ${r.webgpu} (estimated per image: ${formatEstimates(r)})`),
    ...(trainRows?.length ? [`  conv algorithms per train step  js: ${count(trainRows, "js")}; webgpu: ${count(trainRows, "webgpu")}`] : []),
  ];
}

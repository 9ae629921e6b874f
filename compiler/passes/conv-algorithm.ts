// Convolution algorithm choice: sets `algorithm` ("direct" | "implicit_gemm" |
// "fft") in the attrs of every `conv` node, by shape, from a cost model of the
// JS kernels (compiler/codegen/js/conv.ts, conv-gemm.ts, conv-fft.ts). The
// WGSL generator runs every value but computes all three with its direct
// kernels (compiler/codegen/wgsl/conv.ts: a documented fallback), so the
// choice only changes the JS code; `--stats` shows it per target.
//
// Rules:
//  * a symbolic spatial size → "direct" (the other kernels size their tables
//    and transforms at compile time); a symbolic batch N is fine: the choice
//    is per image (costs of one image; the FFT's per-call weight transforms
//    are spread over N when N is static, charged to the one image otherwise);
//  * "fft" needs the weight spectra (float64, re + im) within
//    FFT_SPECTRA_BYTES; zero and circular padding both work (the kernel
//    transforms a padded copy of each sample);
//  * otherwise the cheapest estimate wins, but "direct" stays unless another
//    is estimated at least DIRECT_MARGIN faster (the model's error is about
//    that size; a wrong switch costs more than a missed one).
//
// Cost model: estimated nanoseconds per image on V8 (Node 20), one core.
//   direct: MACs · (DIRECT.base + DIRECT.perStore / UT) where MACs = F · C/G · ∏O · ∏K
//     and UT the taps the template unrolls per accumulator update (the trailing
//     kernel dims up to 27 taps; its sums live in a Float64Array, one load and
//     store per UT multiply-adds); ×DIRECT.strided when the last dim has stride or
//     dilation > 1 (no sliding window); a last kernel dim over 27 taps gets a tap
//     loop: DIRECT.tapLoop per MAC.
//   implicit_gemm: MACs · GEMM.mac + gathered panel cells (C · ∏K · ∏O)
//     · GEMM.gather + 4×4 register tiles (F/4 · ∏O/4) · GEMM.tile (setup and stores).
//   fft: the kernel's own plan (fftPlan in compiler/codegen/js/conv-fft.ts): for
//     each power-of-two block length along the last dim (overlap-save), blocks ·
//     ((C + F)/2 transforms · ∏M·log2 ∏M · FFT_COST.cell + F · C/G · bins ·
//     FFT_COST.cmac) + F · C/G / 2 weight transforms per call; the cheapest block.
//
// Calibration: `npx tsx bench/conv-calibrate.ts` times each kernel (minimum
// over 7 interleaved rounds; this machine: 2 cores shared with other jobs, so
// absolute times vary ±50% between runs, the ratios within a row much less).
// Run of 2026-11-28 17:02, ms per image measured (model):
//   shape                    direct        implicit_gemm   fft           chosen / fastest
//   3x3 64→64 56×56 pad 1    221 (58)      274 (97)        842 (203)     direct / direct
//   3x3 256→256 14×14 pad 1  140 (58)      218 (94)        656 (265)     direct / direct
//   3x3 512→512 7×7 pad 1    172 (58)      267 (93)        -             direct / direct
//   3x3/2 64→128 56×56       72.3 (40.9)   118 (47.8)      1057          direct / direct
//   1x1 64→256 56×56         60.1 (48.8)   50.7 (46.5)     529           direct / gemm (16%)
//   1x1 256→256 14×14        20.9 (12.2)   11.0 (10.7)     167           gemm / gemm
//   1x1 512→512 7×7          19.1 (12.2)   16.3 (10.5)     224           gemm / gemm
//   1x1 16→16 64×64          2.05 (1.00)   6.03 (1.38)     -             direct / direct
//   5x5 32→32 28×28 pad 2    13.5 (9.4)    18.7 (17.5)     26.8 (22.0)   direct / direct
//   1d k3 64→64 L4096        45.5 (31.0)   85.8 (43.5)     118 (74.5)    direct / direct
//   1d k16 16→16 L4096       6.32 (8.04)   22.1 (15.9)     11.5 (9.9)    direct / direct
//   1d k32 16→16 L4096       41.5 (36.6)   38.3 (31.2)     11.5 (11.4)   fft / fft
//   1d k64 16→16 L4096       77.8 (72.7)   76.9 (61.5)     12.1 (13.7)   fft / fft
//   1d k64 16→16 L4096, N=8  63.4 (72.7)   75.4 (61.5)     9.04 (10.6)   fft / fft
//   1d k64 64→64 L1024       435 (277)     379 (210)       69.9 (50.9)   fft / fft
//   1d k128 8→8 L16384       172 (147)     234 (141)       22.2 (20.7)   fft / fft
//   1d k256 4→4 L8192        41.4 (35.8)   50.6 (42.5)     3.55 (5.6)    fft / fft
//   2d 15×15 8→8 128×128     88.9 (90.5)   194 (197)       31.7 (49.1)   fft / fft
// (An earlier run, FFT over the whole signal without blocks, the machine less
// loaded: direct 3x3 64→64 56×56 68.5 ms, 1x1 256→256 14×14 11.6 vs GEMM 9.1,
// FFT 1d k64 16→16 L4096 31.9 and k256 10.8: the blocks made the FFT 3-6× faster.)
// So: FFT wins for long kernels on long signals (1-D kernels of 32+ taps on
// thousands of samples, 6-12×; a 15×15 2-D kernel on 128×128, 2.8×);
// implicit GEMM for 1×1 convolutions over many channels on small planes
// (15-50%); direct everywhere else (3×3, 5×5, 7×7 image convolutions and short
// 1-D kernels: its sliding window reuses each load for a whole kernel row).

import type { Attrs, Graph, Node } from "../ir/graph.ts";
import type { ConvAlgorithm, ConvAttrs } from "../ops/conv.ts";
import { epilogueBaseView } from "../ops/fused.ts";
import { convTuning } from "../codegen/js/conv.ts";
import { fftPlan } from "../codegen/js/conv-fft.ts";
import type { Pass } from "./pipeline.ts";

/** Direct kernel: ns per multiply-add (see the model above). */
export const DIRECT = { base: 0.45, perStore: 0.5, strided: 1.4, tapLoop: 1.1 };
/** GEMM kernel: ns per multiply-add, per gathered panel cell, per 4×4 register tile. */
export const GEMM = { mac: 0.8, gather: 2, tile: 100 };
/** FFT kernel: its own plan (grid and blocks) and costs, compiler/codegen/js/conv-fft.ts (FFT_COST). */
export { FFT_COST } from "../codegen/js/conv-fft.ts";
/** Most bytes the weight spectra (float64, re + im) may take. */
export const FFT_SPECTRA_BYTES = 256 * 2 ** 20;
/** Another algorithm must be estimated at least this much faster than direct (fraction). */
export const DIRECT_MARGIN = 0.1;

export interface ConvGeometry {
  n: number | undefined;
  c: number;
  f: number;
  groups: number;
  spatial: number[];
  kernel: number[];
  out: number[];
  stride: number[];
  dilation: number[];
  padBegin: number[];
  padEnd: number[];
}

/** The static geometry of a conv node, or undefined when a spatial size is symbolic. */
export function convGeometry(n: Node): ConvGeometry | undefined {
  const a = n.attrs as unknown as ConvAttrs;
  const x = n.inputs[0]!.type.shape;
  const w = n.inputs[1]!.type.shape;
  const y = n.outputs[0]!.type.shape;
  const spatial = x.slice(2).map((s) => s.constValue());
  const out = y.slice(2).map((s) => s.constValue());
  const c = x[1]!.constValue();
  if (c === undefined || spatial.some((s) => s === undefined) || out.some((s) => s === undefined)) return undefined;
  return {
    n: x[0]!.constValue(),
    c,
    f: w[0]!.constValue()!,
    groups: a.groups,
    spatial: spatial as number[],
    kernel: w.slice(2).map((k) => k.constValue()!),
    out: out as number[],
    stride: a.stride,
    dilation: a.dilation,
    padBegin: a.padBegin,
    padEnd: a.padEnd,
  };
}

const product = (xs: readonly number[]): number => xs.reduce((p, v) => p * v, 1);

/** Estimated ms per image of each algorithm that can run this geometry (fft absent where it does not apply). */
export function estimateCosts(g: ConvGeometry): Partial<Record<ConvAlgorithm, number>> {
  const d = g.kernel.length;
  const last = d - 1;
  const cg = g.c / g.groups;
  const kv = product(g.kernel);
  const p = product(g.out);
  const macs = g.f * cg * p * kv;
  // The taps the direct template unrolls: the trailing kernel dims while their product stays ≤ 27.
  let ut = 1;
  for (let i = last; i >= 0 && ut * g.kernel[i]! <= convTuning.maxUnrolledTaps; i--) ut *= g.kernel[i]!;
  const directNs =
    g.kernel[last]! > convTuning.maxUnrolledTaps
      ? DIRECT.tapLoop
      : (DIRECT.base + DIRECT.perStore / ut) * (g.stride[last] !== 1 || g.dilation[last] !== 1 ? DIRECT.strided : 1);
  const costs: Partial<Record<ConvAlgorithm, number>> = {
    direct: (macs * directNs) / 1e6,
    implicit_gemm: (macs * GEMM.mac + g.c * kv * p * GEMM.gather + (g.f / 4) * (p / 4) * GEMM.tile) / 1e6,
  };
  const plan = fftPlan({
    c: g.c,
    f: g.f,
    groups: g.groups,
    images: g.n ?? 1,
    padded: g.spatial.map((s, i) => s + g.padBegin[i]! + g.padEnd[i]!),
    out: g.out,
    kernel: g.kernel,
    dilation: g.dilation,
    stride: g.stride,
  });
  if (plan.spectraBytes <= FFT_SPECTRA_BYTES) costs.fft = plan.ns / 1e6;
  return costs;
}

/** The algorithm for a geometry: the cheapest estimate, direct unless another beats it by DIRECT_MARGIN. */
export function chooseAlgorithm(g: ConvGeometry | undefined): ConvAlgorithm {
  if (!g) return "direct";
  const costs = estimateCosts(g);
  let best: ConvAlgorithm = "direct";
  const bar = costs.direct! * (1 - DIRECT_MARGIN);
  for (const alg of ["implicit_gemm", "fft"] as const) {
    const c = costs[alg];
    if (c !== undefined && c < bar && c < (best === "direct" ? Infinity : costs[best]!)) best = alg;
  }
  return best;
}

export const convAlgorithmPass: Pass = {
  name: "conv-algorithm",
  run(g) {
    for (const n of g.nodes) {
      if (n.op !== "conv") continue;
      // A new attrs object: clones share the old one (Graph.clone copies nodes shallowly).
      (n as { attrs: Attrs }).attrs = { ...n.attrs, algorithm: chooseAlgorithm(convGeometry(n)) };
    }
  },
};

// ---------------------------------------------------------------------------
// The report of `cnnc ir --stats`

/** The algorithms the WGSL generator implements; any other value runs its direct kernels there (compiler/codegen/wgsl/conv.ts). */
export const WEBGPU_CONV_ALGORITHMS: ReadonlySet<ConvAlgorithm> = new Set(["direct"]);

export interface ConvAlgorithmRow {
  /** The conv node's id (for a conv fused into an epilogue, the fused node's). */
  node: number;
  label: string;
  /** e.g. "conv1d x[N, 16, 4096] w[16, 16, 64]". */
  conv: string;
  /** The algorithm each target runs ("direct" where the attr is unset). */
  js: ConvAlgorithm;
  webgpu: ConvAlgorithm;
  /** Estimated ms per image of each algorithm the JS target could run (empty for symbolic spatial sizes). */
  estimatedMs: Partial<Record<ConvAlgorithm, number>>;
}

/** One row per forward convolution of `g`, plain or the base of a fused_epilogue. */
export function convAlgorithmRows(g: Graph): ConvAlgorithmRow[] {
  const rows: ConvAlgorithmRow[] = [];
  for (const n of g.nodes) {
    const conv = n.op === "conv" ? n : n.op === "fused_epilogue" && n.attrs.base === "conv" ? epilogueBaseView(n) : undefined;
    if (!conv) continue;
    const a = conv.attrs as unknown as ConvAttrs;
    const chosen = a.algorithm ?? "direct";
    const geometry = convGeometry(conv);
    const shape = (v: Node["inputs"][number]) => `[${v.type.shape.map((d) => d.toString()).join(", ")}]`;
    rows.push({
      node: n.id,
      label: n.label ?? "",
      conv: `conv${a.stride.length}d x${shape(conv.inputs[0]!)} w${shape(conv.inputs[1]!)}`,
      js: chosen,
      webgpu: WEBGPU_CONV_ALGORITHMS.has(chosen) ? chosen : "direct",
      estimatedMs: geometry ? estimateCosts(geometry) : {},
    });
  }
  return rows;
}

/** `direct 1.20 ms, implicit_gemm 0.90 ms, fft —`: the estimates of a row. */
export function formatEstimates(row: ConvAlgorithmRow): string {
  const ms = (v: number | undefined) => (v === undefined ? "-" : v >= 10 ? `${v.toFixed(0)} ms` : v >= 0.1 ? `${v.toFixed(2)} ms` : `${(v * 1000).toFixed(1)} µs`);
  if (!Object.keys(row.estimatedMs).length) return "symbolic spatial size: direct only";
  return (["direct", "implicit_gemm", "fft"] as const).map((alg) => `${alg} ${ms(row.estimatedMs[alg])}`).join(", ");
}

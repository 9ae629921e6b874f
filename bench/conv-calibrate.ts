// Calibration of the conv-algorithm cost model (compiler/passes/conv-algorithm.ts):
// times the JS conv kernels — direct, implicit GEMM, FFT — on a spread of shapes
// and prints ms per image and the model's estimate. Run: npx tsx bench/conv-calibrate.ts [--quick]

import { jsExecutor } from "../compiler/codegen/js/execute.ts";
import { compileSource } from "../compiler/compile.ts";
import type { Attrs, Graph } from "../compiler/ir/graph.ts";
import type { ConvAlgorithm } from "../compiler/ops/conv.ts";
import { chooseAlgorithm, convGeometry, estimateCosts } from "../compiler/passes/conv-algorithm.ts";
import { initialParams } from "../compiler/reference/interpreter.ts";
import { RefTensor } from "../compiler/reference/tensor.ts";

export interface Shape {
  name: string;
  n: number;
  c: number;
  f: number;
  spatial: number[];
  kernel: number[];
  extra?: string;
}

export function convSource(s: Shape): string {
  const d = s.spatial.length;
  const dims = ["N", String(s.c), ...s.spatial.map(String)].join(", ");
  return `model Conv { input x: f32[${dims}]\n  output y = conv${d}d(x, filters=${s.f}, kernel=${s.kernel.length === 1 ? s.kernel[0] : `[${s.kernel.join(", ")}]`}${s.extra ? `, ${s.extra}` : ""}) }\n`;
}

export function withAlgorithm(g: Graph, alg: ConvAlgorithm): Graph {
  const c = g.clone();
  for (const n of c.nodes) if (n.op === "conv") (n as { attrs: Attrs }).attrs = { ...n.attrs, algorithm: alg };
  return c;
}

/** The fastest of several runs after a warm-up (the machine is shared: the minimum is the least disturbed run). */
export function timeIt(fn: () => void, minMs: number, warmup = 3, minReps = 5): number {
  for (let i = 0; i < warmup; i++) fn();
  let best = Infinity;
  const t0 = performance.now();
  for (let reps = 0; reps < minReps || performance.now() - t0 < minMs; reps++) {
    const t = performance.now();
    fn();
    best = Math.min(best, performance.now() - t);
  }
  return best;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const quick = process.argv.includes("--quick");
  const rounds = quick ? 3 : 7;
  const shapes: Shape[] = [
    { name: "3x3 64->64 56x56", n: 1, c: 64, f: 64, spatial: [56, 56], kernel: [3, 3], extra: "padding=1" },
    { name: "3x3 256->256 14x14", n: 1, c: 256, f: 256, spatial: [14, 14], kernel: [3, 3], extra: "padding=1" },
    { name: "3x3 512->512 7x7", n: 1, c: 512, f: 512, spatial: [7, 7], kernel: [3, 3], extra: "padding=1" },
    { name: "3x3/2 64->128 56x56", n: 1, c: 64, f: 128, spatial: [56, 56], kernel: [3, 3], extra: "padding=1, stride=2" },
    { name: "1x1 64->256 56x56", n: 1, c: 64, f: 256, spatial: [56, 56], kernel: [1, 1] },
    { name: "1x1 256->256 14x14", n: 1, c: 256, f: 256, spatial: [14, 14], kernel: [1, 1] },
    { name: "1x1 512->512 7x7", n: 1, c: 512, f: 512, spatial: [7, 7], kernel: [1, 1] },
    { name: "1x1 16->16 64x64", n: 1, c: 16, f: 16, spatial: [64, 64], kernel: [1, 1] },
    { name: "5x5 32->32 28x28", n: 1, c: 32, f: 32, spatial: [28, 28], kernel: [5, 5], extra: "padding=2" },
    { name: "1d k3 64->64 L4096", n: 1, c: 64, f: 64, spatial: [4096], kernel: [3], extra: "padding=1" },
    { name: "1d k16 16->16 L4096", n: 1, c: 16, f: 16, spatial: [4096], kernel: [16] },
    { name: "1d k32 16->16 L4096", n: 1, c: 16, f: 16, spatial: [4096], kernel: [32] },
    { name: "1d k64 16->16 L4096", n: 1, c: 16, f: 16, spatial: [4096], kernel: [64] },
    { name: "1d k64 64->64 L1024", n: 1, c: 64, f: 64, spatial: [1024], kernel: [64] },
    { name: "1d k128 8->8 L16384", n: 1, c: 8, f: 8, spatial: [16384], kernel: [128] },
    { name: "1d k256 4->4 L8192", n: 1, c: 4, f: 4, spatial: [8192], kernel: [256] },
    { name: "1d k64 16->16 L4096 N8", n: 8, c: 16, f: 16, spatial: [4096], kernel: [64] },
    { name: "2d 15x15 8->8 128x128", n: 1, c: 8, f: 8, spatial: [128, 128], kernel: [15, 15] },
  ];
  const algs = ["direct", "implicit_gemm", "fft"] as const;
  for (const s of quick ? shapes.slice(0, 4) : shapes) {
    const r = compileSource(convSource(s), "conv.cnn");
    if (r.diagnostics.length) throw new Error(r.diagnostics.map((x) => x.message).join("\n"));
    const g = r.graphs[0]!;
    const params = initialParams(g, 0);
    const xShape = [s.n, s.c, ...s.spatial];
    const x = new RefTensor("f32", xShape, Float64Array.from({ length: xShape.reduce((p, v) => p * v, 1) }, (_, i) => Math.sin(i)));
    const conv = g.nodes.find((n) => n.op === "conv")!;
    const geometry = { ...convGeometry(conv)!, n: s.n };
    const est = estimateCosts(geometry);
    // Skip what the model already rules out by far (an FFT of a 3×3 conv takes seconds).
    const tried = algs.filter((alg) => est[alg] !== undefined && est[alg]! < 8 * est.direct!);
    const runs = new Map(tried.map((alg) => [alg, jsExecutor(withAlgorithm(g, alg))]));
    const best = new Map<string, number>();
    // Rounds interleave the algorithms, so a burst of load elsewhere hits them alike; the minimum per algorithm is kept.
    for (let round = 0; round < rounds; round++) {
      for (const [alg, ex] of runs) best.set(alg, Math.min(best.get(alg) ?? Infinity, timeIt(() => ex.run({ x }, params, { symbols: { N: s.n } }), 0, round ? 0 : 2, 1)));
    }
    const macs = s.f * (s.c / 1) * conv.outputs[0]!.type.shape.slice(2).reduce((p, d) => p * d.evaluate({}), 1) * s.kernel.reduce((p, k) => p * k, 1);
    const cells = algs.map((alg) => {
      const ms = best.get(alg);
      const e = est[alg];
      return `${alg} ${ms === undefined ? "-" : (ms / s.n).toFixed(2)} (model ${e === undefined ? "-" : e.toFixed(2)})`;
    });
    const chosen = chooseAlgorithm(geometry);
    const fastest = [...best].sort((p, q) => p[1] - q[1])[0]![0];
    console.log(`${s.name.padEnd(24)} ms/image: ${cells.join("  ")}  direct ${((best.get("direct")! * 1e6) / (macs * s.n)).toFixed(2)} ns/MAC; chosen ${chosen}, fastest ${fastest}`);
  }
}

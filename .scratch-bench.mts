import { TestModel } from "./test/support/build.ts";
import { jsExecutor } from "./compiler/codegen/js/execute.ts";
function bench(title: string, build: (m: TestModel) => void, bufs: number[], S: Record<string, number>, flops: number) {
  const m = new TestModel(); build(m);
  const fwd = new Function(jsExecutor(m.graph).source)() as (S: unknown, T: unknown, B: Float32Array[]) => void;
  const B = bufs.map((n) => new Float32Array(n).map(() => Math.random() - 0.5));
  for (let i = 0; i < 20; i++) fwd(S, {}, B);
  let best = Infinity;
  for (let r = 0; r < 5; r++) { const t = performance.now(); let n = 0; while (performance.now() - t < 400) { fwd(S, {}, B); n++; } best = Math.min(best, (performance.now() - t) / n); }
  console.log(`${title}: ${best.toFixed(3)} ms, ${(flops / best / 1e6).toFixed(2)} GFLOP/s`);
}
bench("dense [64,400]x[120,400]^T", (m) => { const x = m.input("x", "f32", ["N", 400]); m.output("y", m.call("dense", [x, 120], { bias: false }, "f1")); }, [64 * 400, 120 * 400, 64 * 120], { N: 64 }, 2 * 64 * 400 * 120);
bench("matmul 256^3", (m) => { const a = m.input("a", "f32", [256, 256]); const b = m.input("b", "f32", [256, 256]); m.output("y", m.call("matmul", [a, b])); }, [65536, 65536, 65536], {}, 2 * 256 ** 3);
bench("matmul 256^3 (symbolic M)", (m) => { const a = m.input("a", "f32", ["M", 256]); const b = m.input("b", "f32", [256, 256]); m.output("y", m.call("matmul", [a, b])); }, [65536, 65536, 65536], { M: 256 }, 2 * 256 ** 3);

// npm run bench — side-by-side timings in one run, reported as ratios.
//
//   LeNet-5 forward at batch 64: cnnc JS target and WebGPU target (emitted
//   modules, imported as a user would), TensorFlow.js's pure-JS CPU backend
//   (same model, same weights, as a peer), and the float64 reference
//   interpreter; time from create…() to the first result.
//   LeNet-5 training step at batch 64 (forward, backward, Adam) on both targets
//   and TensorFlow.js (its own autodiff and tf.train.adam).
//   LeNet-5 forward and training step with and without the optimizing passes.
//   One large convolution (8×64×56×56, 64 filters 3×3, padding 1) on both
//   targets, TensorFlow.js and the reference interpreter (one image of the
//   eight), with GFLOP/s.
//   einsum 4-operand chain: the n-ary einsum as lowered (--passes=none), the
//   chain left to right, and the einsum in the order the contraction-order
//   pass picks (the n-ary nest on the JS target only: it takes seconds).
//   Convolution algorithms: a conv the algorithm pass gives to the FFT (1-D,
//   kernel 128 on 4096 samples) and one it gives to the implicit GEMM (1×1,
//   256 channels, 14×14), chosen vs direct (--passes=none), batch 8, JS.
//
// Options: --quick (fewer repetitions), --json (machine-readable summary).

import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { compileSource } from "../compiler/compile.ts";
import { emitModule, factoryName } from "../compiler/codegen/module.ts";
import type { Graph } from "../compiler/ir/graph.ts";
import { initialParams, interpret } from "../compiler/reference/interpreter.ts";
import { RefTensor } from "../compiler/reference/tensor.ts";
import { acquireDevice } from "../runtime/webgpu.ts";

process.env.XDG_RUNTIME_DIR ??= "/tmp";
const gpu = await acquireDevice().catch((e: Error) => {
  console.log(`(no WebGPU device: ${e.message}; WebGPU rows skipped)`);
  return undefined;
});
const adapterName = gpu ? ((gpu.device as unknown as { adapterInfo?: GPUAdapterInfo }).adapterInfo?.description ?? "unknown adapter") : "none";

const quick = process.argv.includes("--quick");
const asJson = process.argv.includes("--json");
const root = join(import.meta.dirname, "..");

type Model = { run(i: Record<string, { data: Float32Array | Int32Array; shape: number[] }>): Promise<Record<string, { data: Float32Array }>>; parameters(): Record<string, { shape: number[]; data: Float32Array }> };

async function compileToModule(src: string, file: string, target: "js" | "webgpu" = "js", passes: "none" | "all" = "all"): Promise<{ g: Graph; create: (o?: object) => Promise<Model & { dispose(): void }> }> {
  const r = compileSource(src, file);
  if (r.diagnostics.length) throw new Error(`${file}: ${r.diagnostics[0]!.message}`);
  const g = r.graphs[0]!;
  const m = emitModule(g, { target, runtime: "inline", sourceFile: file, passes });
  const dir = mkdtempSync(join(tmpdir(), "cnnc-bench-"));
  const path = join(dir, `${m.base}.mjs`);
  writeFileSync(path, m.js);
  const mod = await import(pathToFileURL(path).href);
  return { g, create: mod[factoryName(g.name)] };
}

/** Median wall time in ms of `reps` runs after `warmup` runs. */
async function time(fn: () => unknown, reps: number, warmup = 1): Promise<number> {
  for (let i = 0; i < warmup; i++) await fn();
  const ts: number[] = [];
  for (let i = 0; i < reps; i++) {
    const t0 = performance.now();
    await fn();
    ts.push(performance.now() - t0);
  }
  ts.sort((a, b) => a - b);
  return ts[Math.floor(ts.length / 2)]!;
}

function randomF32(n: number, seed: number): Float32Array {
  let s = seed >>> 0 || 1;
  const a = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    a[i] = s / 4294967296 - 0.5;
  }
  return a;
}

type Tf = typeof import("@tensorflow/tfjs-core");
async function loadTf(): Promise<Tf | undefined> {
  try {
    // The union package: tfjs-core, the pure-JS CPU backend, and the gradient registrations training needs.
    const tf = (await import("@tensorflow/tfjs")) as unknown as Tf;
    await tf.setBackend("cpu");
    return tf;
  } catch {
    return undefined;
  }
}

const results: Record<string, number | string> = {};
const line = (label: string, ms: number, extra = "") => console.log(`  ${label.padEnd(44)} ${ms.toFixed(2).padStart(10)} ms${extra}`);

async function lenet(tf: Tf | undefined) {
  const N = 64;
  const src = readFileSync(join(root, "dsl-examples/lenet5.cnn"), "utf8");
  const { g, create } = await compileToModule(src, "lenet5.cnn");
  const t0 = performance.now();
  const model = await create({ seed: 0 });
  const x = randomF32(N * 784, 1);
  const first = await model.run({ x: { data: x, shape: [N, 1, 28, 28] } });
  const createToFirst = performance.now() - t0;
  const reps = quick ? 5 : 20;
  const js = await time(() => model.run({ x: { data: x, shape: [N, 1, 28, 28] } }), reps);
  const params = initialParams(g, 0);
  const xr = new RefTensor("f32", [N, 1, 28, 28], Float64Array.from(x));
  const ref = await time(() => interpret(g, { x: xr }, params, { outputs: ["probs"] }), quick ? 1 : 3, 0);
  console.log(`LeNet-5 forward, batch ${N}`);
  line("cnnc JS target", js);
  results.lenetJsMs = js;
  results.lenetCreateToFirstMs = createToFirst;
  if (gpu) {
    const w = await compileToModule(src, "lenet5.cnn", "webgpu");
    const t1 = performance.now();
    const gm = await w.create({ seed: 0, device: gpu.device });
    const gFirst = await gm.run({ x: { data: x, shape: [N, 1, 28, 28] } });
    const gCreate = performance.now() - t1;
    const gMs = await time(() => gm.run({ x: { data: x, shape: [N, 1, 28, 28] } }), reps);
    const diff = Math.max(...Array.from(gFirst.probs!.data, (v, i) => Math.abs(v - first.probs!.data[i]!)));
    line(`cnnc WebGPU (${gpu.adapterClass} kernels)`, gMs, `   ${(js / gMs).toFixed(2)}x the JS target (max |Δprobs| ${diff.toExponential(1)})`);
    line("create → first result (cnnc WebGPU)", gCreate);
    results.lenetWebgpuMs = gMs;
    results.lenetWebgpuCreateToFirstMs = gCreate;
    gm.dispose();
  }
  if (tf) {
    // The same network and weights in TensorFlow.js (NHWC; weights transposed from PyTorch layout).
    const p = model.parameters();
    const conv = (name: string) => tf.transpose(tf.tensor4d(p[`${name}.weight`]!.data, p[`${name}.weight`]!.shape as [number, number, number, number]), [2, 3, 1, 0]);
    const w1 = conv("c1"), w3 = conv("c3");
    const dense = (name: string) => tf.transpose(tf.tensor2d(p[`${name}.weight`]!.data, p[`${name}.weight`]!.shape as [number, number]));
    const b = (name: string) => tf.tensor1d(p[`${name}.bias`]!.data);
    const f5 = dense("f5"), f6 = dense("f6"), fl = dense("logits");
    const xt = tf.transpose(tf.tensor4d(x, [N, 1, 28, 28]), [0, 2, 3, 1]);
    const forward = () =>
      tf.tidy(() => {
        let h = tf.relu(tf.add(tf.conv2d(xt as never, w1 as never, 1, "same"), b("c1")));
        h = tf.maxPool(h as never, 2, 2, "valid");
        h = tf.relu(tf.add(tf.conv2d(h as never, w3 as never, 1, "valid"), b("c3")));
        h = tf.maxPool(h as never, 2, 2, "valid");
        const flat = tf.reshape(tf.transpose(h, [0, 3, 1, 2]), [N, 400]);
        const a5 = tf.relu(tf.add(tf.matMul(flat, f5), b("f5")));
        const a6 = tf.relu(tf.add(tf.matMul(a5, f6), b("f6")));
        return tf.softmax(tf.add(tf.matMul(a6, fl), b("logits")));
      });
    const out = forward();
    const diff = Math.max(...Array.from(out.dataSync(), (v, i) => Math.abs(v - first.probs!.data[i]!)));
    out.dispose();
    const tfMs = await time(() => {
      const o = forward();
      o.dataSync();
      o.dispose();
    }, reps);
    line("TensorFlow.js (cpu backend, pure JS)", tfMs, `   cnnc is ${(tfMs / js).toFixed(2)}x as fast (max |Δprobs| ${diff.toExponential(1)})`);
    results.lenetTfjsMs = tfMs;
  }
  line("reference interpreter (float64)", ref, `   cnnc is ${(ref / js).toFixed(1)}x as fast`);
  results.lenetReferenceMs = ref;
  line("create → first result (cnnc JS)", createToFirst);
}

/** One LeNet-5 training step (forward, backward, Adam) at batch 64: cnnc JS and WebGPU, and TensorFlow.js with tf.train.adam. */
async function lenetTraining(tf: Tf | undefined) {
  const N = 64;
  const src = readFileSync(join(root, "dsl-examples/lenet5.cnn"), "utf8");
  const x = { data: randomF32(N * 784, 3).map((v) => v + 0.5), shape: [N, 1, 28, 28] };
  const labels = { data: Int32Array.from({ length: N }, (_, i) => i % 10), shape: [N] };
  const reps = quick ? 5 : 15;
  console.log(`LeNet-5 training step (forward, backward, Adam), batch ${N}`);
  type Trainer = Model & { trainStep(i: object): Promise<unknown>; dispose(): void };
  const { create } = await compileToModule(src, "lenet5.cnn");
  const model = (await create({ seed: 0 })) as Trainer;
  const js = await time(() => model.trainStep({ x, labels }), reps);
  line("cnnc JS target", js);
  results.lenetTrainJsMs = js;
  if (gpu) {
    const w = await compileToModule(src, "lenet5.cnn", "webgpu");
    const gm = (await w.create({ seed: 0, device: gpu.device })) as Trainer;
    const gMs = await time(() => gm.trainStep({ x, labels }), reps);
    line(`cnnc WebGPU (${gpu.adapterClass} kernels)`, gMs, `   ${(js / gMs).toFixed(2)}x the JS target`);
    results.lenetTrainWebgpuMs = gMs;
    gm.dispose();
  }
  if (tf) {
    // The same network in TensorFlow.js, trained with its own autodiff and Adam (NHWC).
    const p = model.parameters();
    const v = (name: string, perm?: number[]) => {
      const t = tf.tensor(p[name]!.data, p[name]!.shape);
      return tf.variable(perm ? tf.transpose(t, perm) : t);
    };
    const w1 = v("c1.weight", [2, 3, 1, 0]), b1 = v("c1.bias"), w3 = v("c3.weight", [2, 3, 1, 0]), b3 = v("c3.bias");
    const w5 = v("f5.weight", [1, 0]), b5 = v("f5.bias"), w6 = v("f6.weight", [1, 0]), b6 = v("f6.bias"), w7 = v("logits.weight", [1, 0]), b7 = v("logits.bias");
    const xt = tf.transpose(tf.tensor4d(x.data, [N, 1, 28, 28]), [0, 2, 3, 1]);
    const yt = tf.oneHot(tf.tensor1d(labels.data, "int32"), 10);
    const opt = tf.train.adam(0.001);
    const step = () => {
      const loss = opt.minimize(() => {
        let h = tf.relu(tf.add(tf.conv2d(xt as never, w1 as never, 1, "same"), b1));
        h = tf.maxPool(h as never, 2, 2, "valid");
        h = tf.relu(tf.add(tf.conv2d(h as never, w3 as never, 1, "valid"), b3));
        h = tf.maxPool(h as never, 2, 2, "valid");
        const flat = tf.reshape(tf.transpose(h, [0, 3, 1, 2]), [N, 400]);
        const a5 = tf.relu(tf.add(tf.matMul(flat, w5), b5));
        const a6 = tf.relu(tf.add(tf.matMul(a5, w6), b6));
        const logits = tf.add(tf.matMul(a6, w7), b7);
        return tf.mean(tf.neg(tf.sum(tf.mul(yt, tf.logSoftmax(logits)), 1))) as never;
      }, true);
      (loss as unknown as { dataSync(): unknown; dispose(): void }).dataSync();
      (loss as unknown as { dispose(): void }).dispose();
    };
    const tfMs = await time(step, reps);
    line("TensorFlow.js (cpu backend, tf.train.adam)", tfMs, `   cnnc JS is ${(tfMs / js).toFixed(2)}x as fast`);
    results.lenetTrainTfjsMs = tfMs;
  }
  model.dispose();
}

/** LeNet-5 forward and training step with the optimizing passes (fusion, simplification) and without (--passes=none). */
async function lenetPasses() {
  const N = 64;
  const src = readFileSync(join(root, "dsl-examples/lenet5.cnn"), "utf8");
  const x = { data: randomF32(N * 784, 4).map((v) => v + 0.5), shape: [N, 1, 28, 28] };
  const labels = { data: Int32Array.from({ length: N }, (_, i) => i % 10), shape: [N] };
  const reps = quick ? 5 : 15;
  console.log(`LeNet-5, batch ${N}: optimizing passes on (fused) vs --passes=none (unfused)`);
  type Trainer = Model & { trainStep(i: object): Promise<unknown>; dispose(): void };
  for (const target of gpu ? (["js", "webgpu"] as const) : (["js"] as const)) {
    const ms: Record<string, number> = {};
    for (const passes of ["all", "none"] as const) {
      const m = (await (await compileToModule(src, "lenet5.cnn", target, passes)).create({ seed: 0, device: gpu?.device })) as Trainer;
      ms[`run-${passes}`] = await time(() => m.run({ x }), reps);
      ms[`train-${passes}`] = await time(() => m.trainStep({ x, labels }), reps);
      m.dispose();
    }
    const name = target === "js" ? "cnnc JS" : `cnnc WebGPU (${gpu!.adapterClass} kernels)`;
    line(`${name} forward, fused`, ms["run-all"]!, `   unfused ${ms["run-none"]!.toFixed(2)} ms (${(ms["run-none"]! / ms["run-all"]!).toFixed(2)}x)`);
    line(`${name} training step, fused`, ms["train-all"]!, `   unfused ${ms["train-none"]!.toFixed(2)} ms (${(ms["train-none"]! / ms["train-all"]!).toFixed(2)}x)`);
    for (const [k, v] of Object.entries(ms)) results[`lenetPasses_${target}_${k}_ms`] = v;
  }
}

async function bigConv(tf: Tf | undefined) {
  const src = `model Conv { input x: f32[N, 64, 56, 56]\n  output y = conv2d(x, filters=64, kernel=3, padding=1) }\n`;
  const { g, create } = await compileToModule(src, "conv.cnn");
  const model = await create({ seed: 0 });
  const N = 8;
  const x = randomF32(N * 64 * 56 * 56, 2);
  const flops = 2 * N * 64 * 56 * 56 * 64 * 9;
  const ms = await time(() => model.run({ x: { data: x, shape: [N, 64, 56, 56] } }), quick ? 1 : 3);
  console.log(`conv2d 8×64×56×56, 64 filters 3×3, padding 1 (${(flops / 1e9).toFixed(2)} GFLOP)`);
  line("cnnc JS target", ms, `   ${(flops / ms / 1e6).toFixed(2)} GFLOP/s`);
  results.convJsMs = ms;
  results.convJsGflops = flops / ms / 1e6;
  if (gpu) {
    const w = await compileToModule(src, "conv.cnn", "webgpu");
    const gm = await w.create({ seed: 0, device: gpu.device });
    const gMs = await time(() => gm.run({ x: { data: x, shape: [N, 64, 56, 56] } }), quick ? 1 : 3);
    line(`cnnc WebGPU (${gpu.adapterClass} kernels)`, gMs, `   ${(flops / gMs / 1e6).toFixed(2)} GFLOP/s (includes upload and readback)`);
    results.convWebgpuMs = gMs;
    results.convWebgpuGflops = flops / gMs / 1e6;
    gm.dispose();
  }
  if (tf) {
    const w = model.parameters()["y.weight"]!;
    const wt = tf.transpose(tf.tensor4d(w.data, [64, 64, 3, 3]), [2, 3, 1, 0]);
    const xt = tf.transpose(tf.tensor4d(x, [N, 64, 56, 56]), [0, 2, 3, 1]);
    const tfMs = await time(() => {
      const o = tf.conv2d(xt as never, wt as never, 1, "same") as unknown as { dataSync(): unknown; dispose(): void };
      o.dataSync();
      o.dispose();
    }, quick ? 1 : 3);
    line("TensorFlow.js (cpu backend, pure JS)", tfMs, `   ${(flops / tfMs / 1e6).toFixed(2)} GFLOP/s; cnnc is ${(tfMs / ms).toFixed(2)}x as fast`);
    results.convTfjsMs = tfMs;
  }
  // The float64 interpreter on one image of the eight (the whole batch would take minutes); same work per image.
  const x1 = new RefTensor("f32", [1, 64, 56, 56], Float64Array.from(x.subarray(0, 64 * 56 * 56)));
  const refMs = await time(() => interpret(g, { x: x1 }, initialParams(g, 0), { outputs: ["y"] }), 1, 0);
  line("reference interpreter (float64), 1 of 8 images", refMs, `   ${(flops / N / refMs / 1e6).toFixed(3)} GFLOP/s; cnnc JS is ${((refMs * N) / ms).toFixed(0)}x as fast`);
  results.convReferenceGflops = flops / N / refMs / 1e6;
}

/**
 * einsum 4-operand chain A·B·C·D (64×128 · 128×4 · 4×128 · 128×64): the same
 * einsum with --passes=none (one n-ary loop nest over i, j, k, l, m, as
 * lowered), the chain written left to right ((A @ B) @ C) @ D, and the
 * einsum with the passes (the contraction-order pass picks (A·B)·(C·D)).
 * The n-ary nest runs once, on the JS target only (about a second).
 */
async function einsumChain() {
  const t0 = performance.now();
  const [I, J, K, L, M] = [64, 128, 4, 128, 64];
  const decl = `input a: f32[${I}, ${J}]\n  input b: f32[${J}, ${K}]\n  input c: f32[${K}, ${L}]\n  input d: f32[${L}, ${M}]`;
  const einsumSrc = `model Chain { ${decl}\n  output y = einsum("ij,jk,kl,lm->im", a, b, c, d) }\n`;
  const leftSrc = `model Chain { ${decl}\n  output y = ((a @ b) @ c) @ d }\n`;
  const feeds = {
    a: { data: randomF32(I * J, 3), shape: [I, J] },
    b: { data: randomF32(J * K, 4), shape: [J, K] },
    c: { data: randomF32(K * L, 5), shape: [K, L] },
    d: { data: randomF32(L * M, 6), shape: [L, M] },
  };
  const flops = { nary: 2 * I * J * K * L * M, left: 2 * (I * J * K + I * K * L + I * L * M), best: 2 * (I * J * K + K * L * M + I * K * M) };
  console.log(`einsum 4-operand chain ${I}×${J} · ${J}×${K} · ${K}×${L} · ${L}×${M} (MFLOP: n-ary ${(flops.nary / 1e6).toFixed(0)}, left-to-right ${(flops.left / 1e6).toFixed(2)}, (AB)(CD) ${(flops.best / 1e6).toFixed(2)})`);
  const targets: ("js" | "webgpu")[] = gpu ? ["js", "webgpu"] : ["js"];
  for (const target of targets) {
    const make = async (src: string, passes: "none" | "all") => (await compileToModule(src, "chain.cnn", target, passes)).create({ seed: 0, device: gpu?.device });
    const name = target === "js" ? "cnnc JS target" : `cnnc WebGPU (${gpu!.adapterClass} kernels)`;
    const key = target === "js" ? "einsumChainJs" : "einsumChainWebgpu";
    const [left, best] = [await make(leftSrc, "none"), await make(einsumSrc, "all")];
    const want = (await left.run(feeds)).y!.data;
    const maxRelDiff = (o: Record<string, { data: Float32Array }>) => Math.max(...Array.from(o.y!.data, (v, i) => Math.abs(v - want[i]!) / (Math.abs(want[i]!) + 1e-3)));
    // The n-ary nest takes seconds: one run, on the JS target only.
    let naryMs: number | undefined;
    if (target === "js") {
      const nary = await make(einsumSrc, "none");
      naryMs = await time(() => nary.run(feeds), 1, 0);
      line(`${name}, --passes=none (n-ary nest)`, naryMs);
      results[`${key}NaryMs`] = naryMs;
      nary.dispose();
    }
    const leftMs = await time(() => left.run(feeds), quick ? 20 : 100, 5);
    const bestMs = await time(() => best.run(feeds), quick ? 20 : 100, 5);
    line(`${name}, left to right ((A@B)@C)@D`, leftMs);
    const vsNary = naryMs === undefined ? "" : `${(naryMs / bestMs).toFixed(0)}x the n-ary, `;
    line(`${name}, optimized einsum (AB)(CD)`, bestMs, `   ${vsNary}${(leftMs / bestMs).toFixed(2)}x left-to-right (max rel Δ ${maxRelDiff(await best.run(feeds)).toExponential(1)})`);
    results[`${key}LeftToRightMs`] = leftMs;
    results[`${key}OptimizedMs`] = bestMs;
    left.dispose();
    best.dispose();
  }
  results.einsumChainCaseSeconds = (performance.now() - t0) / 1000;
}

/**
 * Convolution algorithms (compiler/passes/conv-algorithm.ts): a model of one
 * conv whose shape the pass gives to the FFT (1-D, 16→16 channels, signal
 * 4096, kernel 128) and one it gives to the implicit GEMM (1×1, 256→256
 * channels on 14×14), each compiled with the passes (the chosen algorithm)
 * and with --passes=none (direct; the model has nothing else to optimize).
 * WebGPU runs the direct kernels for every algorithm (a documented fallback):
 * no WebGPU rows.
 */
async function convAlgorithms() {
  const cases = [
    { what: "fft", src: `model Sig { input x: f32[N, 16, 4096]\n  output y = conv1d(x, filters=16, kernel=128) }\n`, shape: [8, 16, 4096], flops: 2 * 8 * 16 * 16 * 3969 * 128 },
    { what: "implicit_gemm", src: `model Pw { input x: f32[N, 256, 14, 14]\n  output y = conv2d(x, filters=256, kernel=1) }\n`, shape: [8, 256, 14, 14], flops: 2 * 8 * 256 * 256 * 196 },
  ];
  for (const c of cases) {
    const chosen = await (await compileToModule(c.src, "alg.cnn", "js", "all")).create({ seed: 0 });
    const direct = await (await compileToModule(c.src, "alg.cnn", "js", "none")).create({ seed: 0 });
    const x = { data: randomF32(c.shape.reduce((p, v) => p * v, 1), 7), shape: c.shape };
    const want = (await direct.run({ x })).y!.data;
    const got = (await chosen.run({ x })).y!.data;
    let maxRel = 0;
    got.forEach((v, i) => (maxRel = Math.max(maxRel, Math.abs(v - want[i]!) / (Math.abs(want[i]!) + 1e-3))));
    const reps = quick ? 2 : 5;
    const directMs = await time(() => direct.run({ x }), reps);
    const chosenMs = await time(() => chosen.run({ x }), reps);
    console.log(`conv ${c.shape.join("×")} → ${c.what} chosen (${(c.flops / 1e9).toFixed(2)} GFLOP direct)`);
    line("cnnc JS target, direct (--passes=none)", directMs, `   ${(c.flops / directMs / 1e6).toFixed(2)} GFLOP/s`);
    line(`cnnc JS target, ${c.what} (chosen)`, chosenMs, `   ${(directMs / chosenMs).toFixed(2)}x direct (max rel Δ ${maxRel.toExponential(1)})`);
    results[`convAlg_${c.what}_DirectMs`] = directMs;
    results[`convAlg_${c.what}_ChosenMs`] = chosenMs;
    chosen.dispose();
    direct.dispose();
  }
}

console.log(`machine: ${(await import("node:os")).cpus().length} CPUs; WebGPU adapter: ${adapterName}`);
const tf = await loadTf();
if (!tf) console.log("(TensorFlow.js is not installed: peer columns skipped)");
await lenet(tf);
await lenetTraining(tf);
await lenetPasses();
await bigConv(tf);
await convAlgorithms();
await einsumChain();
if (asJson) console.log(JSON.stringify(results));
gpu?.device.destroy();

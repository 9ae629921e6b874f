// WGSL kernels for normalisation and noise (compiler/ops/norm.ts): batchnorm,
// layernorm, dropout, gaussian_noise, and the backward op batchnorm_grad.
//
// Training vs inference. The WebGPU `run` is inference: the runtime's run
// context (training flag, random streams) does not exist in WGSL, so a kernel
// picks its form by the node attribute `training: true`, which the training
// graph (compiler/autodiff/training.ts, trainStep) sets on batchnorm, dropout
// and gaussian_noise. Without it (inference):
//  * batchnorm normalises with the running statistics and passes them through
//    unchanged as its second and third outputs;
//  * dropout is the identity with an all-ones mask; gaussian_noise the identity.
// With it: `emitBatchnormTraining` (batch statistics, momentum update of the
// running statistics, a runtime error for one value per channel), and dropout
// and gaussian_noise drawing from the device RNG below.
//
// Device RNG (training dropout and noise). A counter-based hash, no state:
// every element draws from pcg3d (Jarzynski & Olano, "Hash Functions for GPU
// Rendering", JCGT 2020) of the triple (flat element index, step, node id):
//  * the step is the training graph's `@step` scalar (1, 2, ... per trainStep),
//    fed as the node's last input, so every step draws fresh masks;
//  * the node id is a compile-time constant, so two dropout nodes of a model
//    draw independent masks (the training graph keeps the forward's ids);
//  * the element index makes the draw independent of the dispatch layout
//    (cpu/gpu variants, workgroup sizes): the same (step, node) gives the same
//    mask on every adapter.
// pcg3d mixes all three words into each of its three outputs. A uniform in
// [0, 1) is the top 24 bits of output .x over 2^24 (exact in f32).
//  * dropout keeps an element when u ≥ p: mask = 1/(1 − p) (the op's scaled-mask
//    convention, so the gradient dy·mask reuses the forward's own draw), else 0;
//    y = x·mask.
//  * gaussian_noise: y = x + std·z, z = √(−2 ln u1)·cos(π(2·u2 − 1)) (Box–Muller,
//    the cosine's argument kept in [−π, π), where WGSL bounds its error), with
//    u1 = (top 24 bits of .x + 1)/2^24 in (0, 1] (so ln u1 is finite, |z| ≤ 5.8)
//    and u2 the uniform of output .y.
// These draws are NOT the reference's or the JS target's: those walk one
// sequential mulberry32 stream per node in row-major order (runtime/init.ts),
// which a parallel kernel cannot reproduce without a sequential scan. Masks
// therefore differ between targets for the same step (same distribution); the
// training step is still exact for its own draw, because the backward reads
// the mask the forward kernel wrote. A dropout/noise node without the step
// input (a hand-built graph marked `training: true`) uses step 0.
//
// Statistics are computed in f32 with two passes over the data (mean, then
// squared deviations from it), as stable as the reference's float64 order
// needs for 1e-4. Variants: "cpu" (software adapters) gives each row/channel
// to one invocation and uses no workgroup memory; "gpu" gives each row/channel
// to a workgroup and reduces in workgroup memory with a tree.

import { Dim } from "../../ir/dims.ts";
import { flatDispatch, productWgsl, type WgslEmitCtx, type WgslKernel, type WgslKernelResult } from "./kernel.ts";

/**
 * Statically uses the params binding: with every size a literal the kernel
 * would not read P, and the "auto" pipeline layout would then lack binding 0
 * that the runtime always binds.
 */
const KEEP_PARAMS = "  _ = P;";
const ENTRY = "@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u";
const GROUP_ENTRY = "@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_id) lid: vec3u, @builtin(num_workgroups) nwg: vec3u";
/** Threads per workgroup of the "gpu" reductions (a power of two for the tree), unless the row is shorter. */
const GPU_GROUP = 128;

/** Threads for a row of `length` (a WGSL u32 expression): the next power of two in [32, GPU_GROUP] when constant. */
function groupThreads(length: string): number {
  const m = /^(\d+)u$/.exec(length);
  if (!m) return GPU_GROUP;
  let t = 32;
  while (t < Number(m[1]) && t < GPU_GROUP) t *= 2;
  return t;
}

/** An attribute number as a WGSL f32 literal. */
function f32(v: number): string {
  if (!Number.isFinite(v)) throw new Error(`internal: non-finite attribute ${v} in a WGSL kernel`);
  return `${Object.is(v, -0) ? 0 : v}f`;
}

/** `a * b` of WGSL u32 expressions with literal 1 folded; parenthesised when compound. */
function mul(a: string, b: string): string {
  if (a === "1u") return b;
  if (b === "1u") return a;
  return `${paren(a)} * ${paren(b)}`;
}

/** `e` parenthesised unless it is a name, a literal or one call such as `u32(i32(P.s_L))`. */
function paren(e: string): string {
  return /^[\w.]+$/.test(e) || isOneCall(e) ? e : `(${e})`;
}

function isOneCall(e: string): boolean {
  const open = /^\w+\(/.exec(e);
  if (!open || !e.endsWith(")")) return false;
  let depth = 0;
  for (let i = open[0].length - 1; i < e.length; i++) {
    if (e[i] === "(") depth++;
    else if (e[i] === ")" && --depth === 0) return i === e.length - 1;
  }
  return false;
}

/** A workgroup tree reduction of `buf` (one slot per thread) into buf[0]; `lid.x` is the thread. */
function treeReduce(buf: string, threads: number, indent = "  "): string {
  return [
    `${indent}for (var s = ${threads / 2}u; s > 0u; s = s >> 1u) {`,
    `${indent}  if (lid.x < s) { ${buf}[lid.x] += ${buf}[lid.x + s]; }`,
    `${indent}  workgroupBarrier();`,
    `${indent}}`,
  ].join("\n");
}

/** One workgroup per item of a 1-D problem of `countJs` items (≤ 65535 per dimension). */
function groupDispatch(countJs: string): [string, string] {
  return flatDispatch(countJs, 1).dispatch;
}

// ---------------------------------------------------------------- batchnorm

/** Sizes of a batchnorm input [N, C, ...]: C and the product of the spatial axes. */
function channelLayout(ctx: WgslEmitCtx): { C: string; inner: string; perChannel: string } {
  const shape = ctx.inShape(0);
  const inner = productWgsl(shape.slice(2));
  return { C: shape[1]!, inner, perChannel: productWgsl([shape[0]!, inner]) };
}

/**
 * Inference: y = (x − running_mean[c]) / sqrt(running_var[c] + eps) · weight[c] + bias[c],
 * one invocation per element; invocations c < C also copy the running
 * statistics through (the dispatch covers max(size, C): x may hold fewer
 * elements than there are channels when a spatial axis is empty).
 */
function emitBatchnormInference(ctx: WgslEmitCtx): WgslKernelResult {
  const eps = ctx.node.attrs.eps as number;
  const { C, inner } = channelLayout(ctx);
  const n = ctx.inSize(0);
  const f = flatDispatch(`Math.max(${ctx.inSizeJs(0)}, ${ctx.dimJs(ctx.node.inputs[0]!.type.shape[1]!)})`);
  const channel = inner === "1u" ? `i % ${paren(C)}` : `(i / ${paren(inner)}) % ${paren(C)}`;
  const code = `// inference: normalise with the running statistics and pass them through unchanged
@compute @workgroup_size(64) fn main(${ENTRY}) {
${KEEP_PARAMS}
  let i = ${f.index};
  if (i < ${C}) {
    y1[i] = x3[i];
    y2[i] = x4[i];
  }
  if (i >= ${n}) { return; }
  let c = ${channel};
  let scale = x1[c] / sqrt(x4[c] + ${f32(eps)});
  y0[i] = (x0[i] - x3[c]) * scale + x2[c];
}`;
  return { passes: [{ code, dispatch: f.dispatch }] };
}

const BN_TRAIN_ERROR = 1;

/**
 * Training (for trainStep): per channel c, the batch mean and biased variance
 * over every axis but 1 normalise y; the running statistics become
 * (1 − momentum)·old + momentum·batch with the UNBIASED variance. One value
 * per channel has no unbiased variance: a runtime error (checked only when the
 * count is not certainly ≥ 2; that check adds the error binding, a ninth
 * storage buffer, more than some browsers allow).
 * "cpu": one invocation per channel; "gpu": one workgroup per channel.
 */
export function emitBatchnormTraining(ctx: WgslEmitCtx): WgslKernelResult {
  const eps = ctx.node.attrs.eps as number;
  const momentum = ctx.node.attrs.momentum as number;
  const { C, inner, perChannel } = channelLayout(ctx);
  const x = ctx.node.inputs[0]!.type.shape;
  const countDim = x.slice(2).reduce((p, d) => p.mul(d), x[0]!);
  const checked = countDim.lowerBound() < 2;
  const threads = groupThreads(perChannel);
  const CJs = ctx.dimJs(x[1]!);
  // Element j of channel c: batch n = j / inner, spatial i = j % inner.
  const offset = inner === "1u" ? `j * ${paren(C)} + c` : `((j / ${paren(inner)}) * ${paren(C)} + c) * ${paren(inner)} + j % ${paren(inner)}`;
  // `first`/`step` split a channel's elements among the threads that share it; `leader` writes the statistics.
  const helpers = `fn at(c: u32, j: u32) -> u32 { return ${offset}; }

fn finish(c: u32, mean: f32, biased: f32, first: u32, step: u32, leader: bool) {
  let m = ${perChannel};
  let scale = x1[c] / sqrt(biased + ${f32(eps)});
  for (var j = first; j < m; j += step) {
    let k = at(c, j);
    y0[k] = (x0[k] - mean) * scale + x2[c];
  }
  if (leader) {
    let unbiased = biased * f32(m) / f32(m - 1u);
    y1[c] = ${f32(1 - momentum)} * x3[c] + ${f32(momentum)} * mean;
    y2[c] = ${f32(1 - momentum)} * x4[c] + ${f32(momentum)} * unbiased;
  }
}`;
  const check = checked
    ? `  if (${perChannel} < 2u) {
    report_error(${BN_TRAIN_ERROR}u, i32(${perChannel}), c);
    return;
  }\n`
    : "";
  const f = flatDispatch(CJs);

  const cpu = `${helpers}

@compute @workgroup_size(64) fn main(${ENTRY}) {
${KEEP_PARAMS}
  let c = ${f.index};
  if (c >= ${C}) { return; }
${check}  let m = ${perChannel};
  var sum = 0.0;
  for (var j = 0u; j < m; j++) { sum += x0[at(c, j)]; }
  let mean = sum / f32(m);
  var sq = 0.0;
  for (var j = 0u; j < m; j++) { let d = x0[at(c, j)] - mean; sq += d * d; }
  finish(c, mean, sq / f32(m), 0u, 1u, true);
}`;

  const gpu = `${helpers}

var<workgroup> part: array<f32, ${threads}>;

@compute @workgroup_size(${threads}) fn main(${GROUP_ENTRY}) {
${KEEP_PARAMS}
  let c = wid.x + wid.y * nwg.x;
  if (c >= ${C}) { return; }
${check}  let m = ${perChannel};
  var sum = 0.0;
  for (var j = lid.x; j < m; j += ${threads}u) { sum += x0[at(c, j)]; }
  part[lid.x] = sum;
  workgroupBarrier();
${treeReduce("part", threads)}
  let mean = part[0] / f32(m);
  workgroupBarrier();
  var sq = 0.0;
  for (var j = lid.x; j < m; j += ${threads}u) { let d = x0[at(c, j)] - mean; sq += d * d; }
  part[lid.x] = sq;
  workgroupBarrier();
${treeReduce("part", threads)}
  finish(c, mean, part[0] / f32(m), lid.x, ${threads}u, lid.x == 0u);
}`;
  return {
    passes: [{ code: cpu, dispatch: f.dispatch, usesError: checked, variants: { cpu: { code: cpu, dispatch: f.dispatch }, gpu: { code: gpu, dispatch: groupDispatch(CJs) } } }],
    errors: checked
      ? { [BN_TRAIN_ERROR]: "batchnorm in training needs more than 1 value per channel, found {a} (the batch size times the spatial size)" }
      : undefined,
  };
}

const batchnorm: WgslKernel = {
  op: "batchnorm",
  emit: (ctx) => (ctx.node.attrs.training === true ? emitBatchnormTraining(ctx) : emitBatchnormInference(ctx)),
};

// ---------------------------------------------------------------- batchnorm_grad

/**
 * batchnorm_grad(x, weight, running_mean, running_var, dy) → (dx, dweight, dbias).
 * Like the forward, the training form (differentiating through the batch
 * statistics) is selected by the node attribute `training: true`; otherwise
 * the running statistics are constants. Two passes, no atomics:
 *  1. per channel c (a gather over its M elements): mean and inv = 1/sqrt(var + eps)
 *     (batch or running), dbias[c] = Σ dy, dweight[c] = Σ dy·x̂; mean and inv go
 *     to scratch t0 for pass 2. "cpu": one invocation per channel; "gpu": one
 *     workgroup per channel with tree reductions.
 *  2. per element (one invocation each): dx = weight·inv·(dy − dbias/M − x̂·dweight/M)
 *     in training, weight·inv·dy in inference, reading pass 1's outputs.
 */
function emitBatchnormGrad(ctx: WgslEmitCtx): WgslKernelResult {
  const eps = ctx.node.attrs.eps as number;
  const training = ctx.node.attrs.training === true;
  const { C, inner, perChannel } = channelLayout(ctx);
  const x = ctx.node.inputs[0]!.type.shape;
  const threads = groupThreads(perChannel);
  const CJs = ctx.dimJs(x[1]!);
  const offset = inner === "1u" ? `j * ${paren(C)} + c` : `((j / ${paren(inner)}) * ${paren(C)} + c) * ${paren(inner)} + j % ${paren(inner)}`;
  const helpers = `fn at(c: u32, j: u32) -> u32 { return ${offset}; }

// Pass 1's results for channel c: the statistics for pass 2, the parameter gradients.
fn finish(c: u32, mean: f32, inv: f32, sum_dy: f32, sum_dy_xhat: f32) {
  t0[2u * c] = mean;
  t0[2u * c + 1u] = inv;
  y1[c] = sum_dy_xhat;
  y2[c] = sum_dy;
}`;
  const inferenceStats = `  let mean = x2[c];
  let inv = 1.0 / sqrt(x3[c] + ${f32(eps)});`;
  const f = flatDispatch(CJs);

  const cpuStats = training
    ? `  var sum = 0.0;
  for (var j = 0u; j < m; j++) { sum += x0[at(c, j)]; }
  let mean = sum / f32(m);
  var sq = 0.0;
  for (var j = 0u; j < m; j++) { let d = x0[at(c, j)] - mean; sq += d * d; }
  let inv = 1.0 / sqrt(sq / f32(m) + ${f32(eps)});`
    : inferenceStats;
  const cpu = `${helpers}

@compute @workgroup_size(64) fn main(${ENTRY}) {
${KEEP_PARAMS}
  let c = ${f.index};
  if (c >= ${C}) { return; }
  let m = ${perChannel};
${cpuStats}
  var a = 0.0;
  var b = 0.0;
  for (var j = 0u; j < m; j++) {
    let k = at(c, j);
    let g = x4[k];
    a += g;
    b += g * (x0[k] - mean) * inv;
  }
  finish(c, mean, inv, a, b);
}`;

  const gpuStats = training
    ? `  var sum = 0.0;
  for (var j = lid.x; j < m; j += ${threads}u) { sum += x0[at(c, j)]; }
  part[lid.x] = sum;
  workgroupBarrier();
${treeReduce("part", threads)}
  let mean = part[0] / f32(m);
  workgroupBarrier();
  var sq = 0.0;
  for (var j = lid.x; j < m; j += ${threads}u) { let d = x0[at(c, j)] - mean; sq += d * d; }
  part[lid.x] = sq;
  workgroupBarrier();
${treeReduce("part", threads)}
  let inv = 1.0 / sqrt(part[0] / f32(m) + ${f32(eps)});
  workgroupBarrier();`
    : inferenceStats;
  const gpu = `${helpers}

var<workgroup> part: array<f32, ${threads}>;
var<workgroup> part2: array<f32, ${threads}>;

@compute @workgroup_size(${threads}) fn main(${GROUP_ENTRY}) {
${KEEP_PARAMS}
  let c = wid.x + wid.y * nwg.x;
  if (c >= ${C}) { return; }
  let m = ${perChannel};
${gpuStats}
  var a = 0.0;
  var b = 0.0;
  for (var j = lid.x; j < m; j += ${threads}u) {
    let k = at(c, j);
    let g = x4[k];
    a += g;
    b += g * (x0[k] - mean) * inv;
  }
  part[lid.x] = a;
  part2[lid.x] = b;
  workgroupBarrier();
  for (var s = ${threads / 2}u; s > 0u; s = s >> 1u) {
    if (lid.x < s) {
      part[lid.x] += part[lid.x + s];
      part2[lid.x] += part2[lid.x + s];
    }
    workgroupBarrier();
  }
  if (lid.x == 0u) { finish(c, mean, inv, part[0], part2[0]); }
}`;

  // Pass 2: one invocation per element of x.
  const e = flatDispatch(ctx.inSizeJs(0));
  const channel = inner === "1u" ? `i % ${paren(C)}` : `(i / ${paren(inner)}) % ${paren(C)}`;
  const dx = training
    ? `  let m = f32(${perChannel});
  let xhat = (x0[i] - t0[2u * c]) * inv;
  y0[i] = x1[c] * inv * (x4[i] - y2[c] / m - xhat * y1[c] / m);`
    : `  y0[i] = x1[c] * inv * x4[i];`;
  const elementwise = `// dx from the per-channel statistics and sums of pass 1 (${training ? "training: through the batch statistics" : "inference"})
@compute @workgroup_size(64) fn main(${ENTRY}) {
${KEEP_PARAMS}
  let i = ${e.index};
  if (i >= ${ctx.inSize(0)}) { return; }
  let c = ${channel};
  let inv = t0[2u * c + 1u];
${dx}
}`;
  const scratch = [{ type: "f32", size: `2 * (${CJs})` }];
  return {
    passes: [
      { code: cpu, dispatch: f.dispatch, scratch, variants: { cpu: { code: cpu, dispatch: f.dispatch }, gpu: { code: gpu, dispatch: groupDispatch(CJs) } } },
      { code: elementwise, dispatch: e.dispatch, scratch },
    ],
  };
}

// ---------------------------------------------------------------- layernorm

interface Run {
  readonly size: string;
  readonly stride: string;
}

/**
 * The input's axes merged into runs of consecutive axes with the same role
 * (normalised or not), each with its size and element stride: rows are the
 * index over the kept runs, a row's elements the index over the normalised
 * runs (in ascending axis order, which is also weight/bias order).
 */
function layernormRuns(ctx: WgslEmitCtx): { kept: Run[]; normalised: Run[] } {
  const axes = ctx.node.attrs.axes as readonly number[];
  const shape = ctx.inShape(0);
  const merged: { norm: boolean; sizes: string[] }[] = [];
  shape.forEach((size, ax) => {
    const norm = axes.includes(ax);
    if (size === "1u") return; // size-1 axes change neither offsets nor indices
    const last = merged[merged.length - 1];
    if (last && last.norm === norm) last.sizes.push(size);
    else merged.push({ norm, sizes: [size] });
  });
  const kept: Run[] = [];
  const normalised: Run[] = [];
  merged.forEach((r, i) => {
    const run = { size: productWgsl(r.sizes), stride: productWgsl(merged.slice(i + 1).flatMap((q) => q.sizes)) };
    (r.norm ? normalised : kept).push(run);
  });
  return { kept, normalised };
}

/** WGSL offset of index `v` unravelled row-major over `runs`. */
function unravelOffset(runs: readonly Run[], v: string): string {
  if (runs.length === 0) return "0u";
  return runs
    .map((r, j) => {
      const later = productWgsl(runs.slice(j + 1).map((q) => q.size));
      const q = later === "1u" ? v : `${v} / ${paren(later)}`;
      return mul(j === 0 ? q : `${paren(q)} % ${paren(r.size)}`, r.stride);
    })
    .join(" + ");
}

function emitLayernorm(ctx: WgslEmitCtx): WgslKernelResult {
  const eps = ctx.node.attrs.eps as number;
  const axes = ctx.node.attrs.axes as readonly number[];
  const x = ctx.node.inputs[0]!.type.shape;
  const { kept, normalised } = layernormRuns(ctx);
  const G = productWgsl(normalised.map((r) => r.size));
  const rows = productWgsl(kept.map((r) => r.size));
  const threads = groupThreads(G);
  const rowsJs = ctx.dimJs(x.reduce((p, d, ax) => (axes.includes(ax) ? p : p.mul(d)), Dim.of(1)));
  const helpers = `fn row_base(r: u32) -> u32 { return ${unravelOffset(kept, "r")}; }
fn elem(k: u32) -> u32 { return ${unravelOffset(normalised, "k")}; }`;
  const f = flatDispatch(rowsJs);

  const cpu = `${helpers}

// One invocation per row: mean, biased variance, then the normalised row.
@compute @workgroup_size(64) fn main(${ENTRY}) {
${KEEP_PARAMS}
  let r = ${f.index};
  if (r >= ${rows}) { return; }
  let base = row_base(r);
  let g = ${G};
  var sum = 0.0;
  for (var k = 0u; k < g; k++) { sum += x0[base + elem(k)]; }
  let mean = sum / f32(g);
  var sq = 0.0;
  for (var k = 0u; k < g; k++) { let d = x0[base + elem(k)] - mean; sq += d * d; }
  let inv = 1.0 / sqrt(sq / f32(g) + ${f32(eps)});
  for (var k = 0u; k < g; k++) {
    let at = base + elem(k);
    y0[at] = (x0[at] - mean) * inv * x1[k] + x2[k];
  }
}`;

  const gpu = `${helpers}

var<workgroup> part: array<f32, ${threads}>;

// One workgroup per row: strided loads, tree reductions for the mean and the variance.
@compute @workgroup_size(${threads}) fn main(${GROUP_ENTRY}) {
${KEEP_PARAMS}
  let r = wid.x + wid.y * nwg.x;
  if (r >= ${rows}) { return; }
  let base = row_base(r);
  let g = ${G};
  var sum = 0.0;
  for (var k = lid.x; k < g; k += ${threads}u) { sum += x0[base + elem(k)]; }
  part[lid.x] = sum;
  workgroupBarrier();
${treeReduce("part", threads)}
  let mean = part[0] / f32(g);
  workgroupBarrier();
  var sq = 0.0;
  for (var k = lid.x; k < g; k += ${threads}u) { let d = x0[base + elem(k)] - mean; sq += d * d; }
  part[lid.x] = sq;
  workgroupBarrier();
${treeReduce("part", threads)}
  let inv = 1.0 / sqrt(part[0] / f32(g) + ${f32(eps)});
  for (var k = lid.x; k < g; k += ${threads}u) {
    let at = base + elem(k);
    y0[at] = (x0[at] - mean) * inv * x1[k] + x2[k];
  }
}`;
  return {
    passes: [{ code: cpu, dispatch: f.dispatch, variants: { cpu: { code: cpu, dispatch: f.dispatch }, gpu: { code: gpu, dispatch: groupDispatch(rowsJs) } } }],
  };
}

// ---------------------------------------------------------------- dropout and noise

/** The device RNG of the header: pcg3d, uniforms from its outputs. */
const RNG = `// pcg3d (Jarzynski & Olano 2020): a counter-based hash of (element, step, node).
fn pcg3d(seed: vec3u) -> vec3u {
  var v = seed * 1664525u + 1013904223u;
  v.x += v.y * v.z;
  v.y += v.z * v.x;
  v.z += v.x * v.y;
  v ^= v >> vec3u(16u);
  v.x += v.y * v.z;
  v.y += v.z * v.x;
  v.z += v.x * v.y;
  return v;
}

// The top 24 bits as a float in [0, 1) (exact in f32).
fn unit(h: u32) -> f32 { return f32(h >> 8u) / 16777216.0; }`;

/** The draw of element `i` (a WGSL u32) for this node: `let h = pcg3d(...)`; the step is the node's last input. */
function draw(ctx: WgslEmitCtx, i: string): string {
  // The step is an f32 scalar (exact up to 2^24 steps); absent (hand-built training graphs): 0.
  const step = ctx.node.inputs.length > 1 ? `u32(${ctx.input(ctx.node.inputs.length - 1)}[0])` : "0u";
  return `let h = pcg3d(vec3u(${i}, ${step}, ${ctx.node.id}u));`;
}

/** Dropout: in training y = x·mask with mask = 1/(1 − p) or 0 from the device RNG; in inference y = x and a mask of ones. */
function emitDropout(ctx: WgslEmitCtx): WgslKernelResult {
  const p = ctx.node.attrs.p as number;
  const f = flatDispatch(ctx.inSizeJs(0));
  if (ctx.node.attrs.training !== true || p === 0) {
    const code = `// ${ctx.node.attrs.training === true ? "training with p = 0" : "inference"}: identity, mask of ones
@compute @workgroup_size(64) fn main(${ENTRY}) {
${KEEP_PARAMS}
  let i = ${f.index};
  if (i >= ${ctx.inSize(0)}) { return; }
  y0[i] = x0[i];
  y1[i] = 1.0;
}`;
    return { passes: [{ code, dispatch: f.dispatch }] };
  }
  const code = `${RNG}

// training: drop with probability p = ${p}, survivors scaled by 1/(1 - p)
@compute @workgroup_size(64) fn main(${ENTRY}) {
${KEEP_PARAMS}
  let i = ${f.index};
  if (i >= ${ctx.inSize(0)}) { return; }
  ${draw(ctx, "i")}
  let m = select(0.0, ${f32(1 / (1 - p))}, unit(h.x) >= ${f32(p)});
  y1[i] = m;
  y0[i] = x0[i] * m;
}`;
  return { passes: [{ code, dispatch: f.dispatch }] };
}

/** gaussian_noise: in training y = x + std·N(0, 1) from the device RNG (Box–Muller); in inference the identity. */
function emitNoise(ctx: WgslEmitCtx): WgslKernelResult {
  const std = ctx.node.attrs.std as number;
  const f = flatDispatch(ctx.inSizeJs(0));
  if (ctx.node.attrs.training !== true || std === 0) {
    const code = `// ${ctx.node.attrs.training === true ? "training with std = 0" : "inference"}: identity
@compute @workgroup_size(64) fn main(${ENTRY}) {
${KEEP_PARAMS}
  let i = ${f.index};
  if (i >= ${ctx.inSize(0)}) { return; }
  y0[i] = x0[i];
}`;
    return { passes: [{ code, dispatch: f.dispatch }] };
  }
  const code = `${RNG}

// training: y = x + std * N(0, 1), Box-Muller from two uniforms of one hash
@compute @workgroup_size(64) fn main(${ENTRY}) {
${KEEP_PARAMS}
  let i = ${f.index};
  if (i >= ${ctx.inSize(0)}) { return; }
  ${draw(ctx, "i")}
  let u1 = (f32(h.x >> 8u) + 1.0) / 16777216.0; // (0, 1]: ln u1 is finite
  // cos over [-pi, pi) (where WGSL bounds its error): cos(pi (2 u2 - 1)) = -cos(2 pi u2), the same distribution.
  // max(.., 0): WGSL bounds log's error near 1 only absolutely (2^-21), so log(u1) may come out just above 0.
  let z = sqrt(max(-2.0 * log(u1), 0.0)) * cos(${f32(Math.PI)} * (2.0 * unit(h.y) - 1.0));
  y0[i] = x0[i] + ${f32(std)} * z;
}`;
  return { passes: [{ code, dispatch: f.dispatch }] };
}

export const kernels: WgslKernel[] = [
  batchnorm,
  { op: "batchnorm_grad", emit: emitBatchnormGrad },
  { op: "layernorm", emit: emitLayernorm },
  { op: "dropout", emit: emitDropout },
  { op: "gaussian_noise", emit: emitNoise },
];

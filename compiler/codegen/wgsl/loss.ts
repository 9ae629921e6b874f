// WGSL kernels for the losses (compiler/ops/loss.ts): cross_entropy, mse,
// bce_with_logits. Each is a full reduction to one f32 scalar (the mean of a
// per-position term), done in ONE dispatch of ONE workgroup: its threads
// stride over the positions, each keeping a partial sum (and, for
// cross_entropy, a count of the positions that count), then the workgroup
// combines the partials.
//  * "gpu": 256 threads, tree reduction in workgroup memory (log2 256 barriers).
//  * "cpu" (lavapipe, SwiftShader): 64 threads (one workgroup runs on one
//    core there, its threads as SIMD lanes) and a single barrier, after which
//    thread 0 adds the 64 partials in order: no tree of emulated barriers.
// Why not the two-dispatch form (one invocation per position writing a
// scratch buffer, then a summing pass), which would use every core: scratch
// buffers belong to one pass (runtime/webgpu.ts allocates them per pass), so a
// second pass cannot read the first one's; see the report for the change that
// would allow it.
//
// cross_entropy: max-shifted log-sum-exp per position (finite for logits of
// any magnitude: ±1e4 gives exp(≤ 0)); masked-out and ignore_index positions
// do not count; a label outside [0, C) that is not ignored reports an error
// with the label and its flat position in labels (the position is skipped, so
// no logit is read out of bounds); the mean over counted positions, 0 when
// none counts. bce_with_logits: max(x, 0) − x·t + log1p(exp(−|x|)).
//
// Backward ops (at the end): cross_entropy_grad counts in one workgroup
// (pass 1, scale = dloss/count into scratch) and then gives each position to
// one invocation (pass 2), which writes its C gradient entries: a gather, no
// atomics. mse_grad and bce_with_logits_grad are elementwise.

import { flatDispatch, type WgslEmitCtx, type WgslKernel, type WgslKernelResult, type WgslPass } from "./kernel.ts";

const GPU_THREADS = 256;
const CPU_THREADS = 64;
/**
 * Statically uses the params binding: with every size a literal the kernel
 * would not read P, and the "auto" pipeline layout would then lack binding 0
 * that the runtime always binds.
 */
const KEEP_PARAMS = "  _ = P;";
const ENTRY = "@builtin(local_invocation_id) lid: vec3u";

/** `a * b` of WGSL u32 expressions with literal 1 folded. */
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

/**
 * The single-workgroup reduction around a per-position function
 * `fn term(p: u32) -> vec2f` (the loss at p and 1 if p counts, else 0) over
 * `count` positions; y0[0] = Σ loss / Σ counted, or 0 when nothing counts
 * (`zeroWhenEmpty`; otherwise 0/0, the reference's NaN for an empty mean).
 */
function meanPass(term: string, count: string, zeroWhenEmpty: boolean, usesError: boolean): WgslPass {
  const result = zeroWhenEmpty ? "select(0.0, total / f32(counted), counted > 0u)" : "total / f32(counted)";
  const variant = (threads: number, combine: string) => `${term}

var<workgroup> part_sum: array<f32, ${threads}>;
var<workgroup> part_count: array<u32, ${threads}>;

@compute @workgroup_size(${threads}) fn main(${ENTRY}) {
${KEEP_PARAMS}
  let n = ${count};
  var sum = 0.0;
  var counted = 0u;
  for (var p = lid.x; p < n; p += ${threads}u) {
    let r = term(p);
    sum += r.x;
    counted += u32(r.y);
  }
  part_sum[lid.x] = sum;
  part_count[lid.x] = counted;
  workgroupBarrier();
${combine}
}`;
  const tree = `  for (var s = ${GPU_THREADS / 2}u; s > 0u; s = s >> 1u) {
    if (lid.x < s) {
      part_sum[lid.x] += part_sum[lid.x + s];
      part_count[lid.x] += part_count[lid.x + s];
    }
    workgroupBarrier();
  }
  if (lid.x == 0u) {
    let total = part_sum[0];
    let counted = part_count[0];
    y0[0] = ${result};
  }`;
  const flat = `  if (lid.x == 0u) {
    var total = 0.0;
    var counted = 0u;
    for (var t = 0u; t < ${CPU_THREADS}u; t++) {
      total += part_sum[t];
      counted += part_count[t];
    }
    y0[0] = ${result};
  }`;
  const one: [string] = ["1"];
  const cpu = { code: variant(CPU_THREADS, flat), dispatch: one };
  const gpu = { code: variant(GPU_THREADS, tree), dispatch: one };
  return { code: cpu.code, dispatch: one, usesError, variants: { cpu, gpu } };
}

// ---------------------------------------------------------------- cross entropy

const BAD_LABEL = 1;

function emitCrossEntropy(ctx: WgslEmitCtx): WgslKernelResult {
  const axis = ctx.node.attrs.axis as number;
  const ignoreIndex = ctx.node.attrs.ignoreIndex as number;
  const hasMask = ctx.node.attrs.hasMask as boolean;
  const shape = ctx.inShape(0);
  const C = shape[axis]!;
  const inner = shape.slice(axis + 1).reduce((p, s) => mul(p, s), "1u");
  // Position p = (o, i) over the logits without the class axis; its logits start at o·C·inner + i, stride inner.
  const base = inner === "1u" ? mul("p", C) : `(p / ${paren(inner)}) * ${mul(C, inner)} + p % ${paren(inner)}`;
  const logit = (k: string) => (k === "0u" ? "x0[base]" : `x0[base + ${mul(k, inner)}]`);
  const limit = /^\d+u$/.test(C) ? C.slice(0, -1) : `i32(${C})`;
  const term = `fn term(p: u32) -> vec2f {
${hasMask ? "  if (x2[p] == 0u) { return vec2f(0.0, 0.0); }\n" : ""}  let label = x1[p];
  if (label == ${ignoreIndex}) { return vec2f(0.0, 0.0); }
  if (label < 0 || label >= ${limit}) {
    report_error(${BAD_LABEL}u, label, p);
    return vec2f(0.0, 0.0);
  }
  let base = ${base};
  var top = ${logit("0u")};
  for (var k = 1u; k < ${C}; k++) { top = max(top, ${logit("k")}); }
  var sum = 0.0;
  for (var k = 0u; k < ${C}; k++) { sum += exp(${logit("k")} - top); }
  return vec2f((top - ${logit("u32(label)")}) + log(sum), 1.0);
}`;
  const classes = ctx.node.inputs[0]!.type.shape[axis]!.toString();
  return {
    passes: [meanPass(term, ctx.inSize(1), true, true)],
    errors: { [BAD_LABEL]: `label {a} at flat position {b} of labels is outside the classes [0, ${classes}) (ignore_index is ${ignoreIndex})` },
  };
}

// ---------------------------------------------------------------- elementwise losses

function emitMse(ctx: WgslEmitCtx): WgslKernelResult {
  const term = `fn term(p: u32) -> vec2f {
  let d = x0[p] - x1[p];
  return vec2f(d * d, 1.0);
}`;
  return { passes: [meanPass(term, ctx.inSize(0), false, false)] };
}

// log1p(u) for u in [0, 1] without losing the small u to 1 + u: log(w)·u/(w − 1) with w = 1 + u.
function emitBce(ctx: WgslEmitCtx): WgslKernelResult {
  const term = `fn log1p(u: f32) -> f32 {
  let w = 1.0 + u;
  return select(log(w) * u / (w - 1.0), u, w == 1.0);
}

fn term(p: u32) -> vec2f {
  let v = x0[p];
  return vec2f(max(v, 0.0) - v * x1[p] + log1p(exp(-abs(v))), 1.0);
}`;
  return { passes: [meanPass(term, ctx.inSize(0), false, false)] };
}

// ---------------------------------------------------------------- backward ops

/**
 * cross_entropy_grad(logits, labels, [mask], dloss) → dlogits.
 * Pass 1 (one workgroup, as the forward's reduction; "cpu" 64 threads with an
 * ordered final sum, "gpu" 256 with a tree): count the positions that count,
 * t0[0] = dloss / count, or 0 when none counts.
 * Pass 2 (one invocation per position): at a counted position, the
 * max-shifted softmax minus the one-hot label, times t0[0]; zeros elsewhere.
 * A counted label outside [0, C) reports the forward's error (its entries are
 * written as zeros, and no logit is read out of bounds).
 */
function emitCrossEntropyGrad(ctx: WgslEmitCtx): WgslKernelResult {
  const axis = ctx.node.attrs.axis as number;
  const ignoreIndex = ctx.node.attrs.ignoreIndex as number;
  const hasMask = ctx.node.attrs.hasMask as boolean;
  const dloss = hasMask ? "x3" : "x2";
  const shape = ctx.inShape(0);
  const C = shape[axis]!;
  const inner = shape.slice(axis + 1).reduce((p, s) => mul(p, s), "1u");
  const positions = ctx.inSize(1);
  const at = (k: string) => (k === "0u" ? "base" : `base + ${mul(k, inner)}`);
  const base = inner === "1u" ? mul("p", C) : `(p / ${paren(inner)}) * ${mul(C, inner)} + p % ${paren(inner)}`;
  const limit = /^\d+u$/.test(C) ? C.slice(0, -1) : `i32(${C})`;
  const counts = `fn counts(p: u32) -> bool {
  return ${hasMask ? "x2[p] != 0u && " : ""}x1[p] != ${ignoreIndex};
}`;
  const scratch = [{ type: "f32", size: "1" }];

  const countVariant = (threads: number, combine: string) => `${counts}

var<workgroup> part: array<u32, ${threads}>;

@compute @workgroup_size(${threads}) fn main(@builtin(local_invocation_id) lid: vec3u) {
${KEEP_PARAMS}
  var n = 0u;
  for (var p = lid.x; p < ${positions}; p += ${threads}u) {
    if (counts(p)) { n++; }
  }
  part[lid.x] = n;
  workgroupBarrier();
${combine}
}`;
  const finish = `    t0[0] = select(0.0, ${dloss}[0] / f32(counted), counted > 0u);`;
  const tree = `  for (var s = ${GPU_THREADS / 2}u; s > 0u; s = s >> 1u) {
    if (lid.x < s) { part[lid.x] += part[lid.x + s]; }
    workgroupBarrier();
  }
  if (lid.x == 0u) {
    let counted = part[0];
${finish}
  }`;
  const flat = `  if (lid.x == 0u) {
    var counted = 0u;
    for (var t = 0u; t < ${CPU_THREADS}u; t++) { counted += part[t]; }
${finish}
  }`;
  const one: [string] = ["1"];
  const cpu = { code: countVariant(CPU_THREADS, flat), dispatch: one };
  const gpu = { code: countVariant(GPU_THREADS, tree), dispatch: one };

  const f = flatDispatch(ctx.inSizeJs(1));
  const write = `${counts}

@compute @workgroup_size(64) fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
${KEEP_PARAMS}
  let p = ${f.index};
  if (p >= ${positions}) { return; }
  let base = ${base};
  let label = x1[p];
  let valid = label >= 0 && label < ${limit};
  if (!counts(p) || !valid) {
    if (counts(p)) { report_error(${BAD_LABEL}u, label, p); }
    for (var k = 0u; k < ${C}; k++) { y0[${at("k")}] = 0.0; }
    return;
  }
  var top = x0[base];
  for (var k = 1u; k < ${C}; k++) { top = max(top, x0[${at("k")}]); }
  var sum = 0.0;
  for (var k = 0u; k < ${C}; k++) { sum += exp(x0[${at("k")}] - top); }
  let scale = t0[0];
  let s = scale / sum;
  for (var k = 0u; k < ${C}; k++) {
    let onehot = select(0.0, scale, i32(k) == label);
    y0[${at("k")}] = exp(x0[${at("k")}] - top) * s - onehot;
  }
}`;
  const classes = ctx.node.inputs[0]!.type.shape[axis]!.toString();
  return {
    passes: [
      { code: cpu.code, dispatch: one, scratch, variants: { cpu, gpu } },
      { code: write, dispatch: f.dispatch, scratch, usesError: true },
    ],
    errors: { [BAD_LABEL]: `label {a} at flat position {b} of labels is outside the classes [0, ${classes}) (ignore_index is ${ignoreIndex})` },
  };
}

/** A pair loss's backward op, elementwise: y0, y1 = the two inputs' gradients, times dloss / n. */
function pairGrad(ctx: WgslEmitCtx, comment: string, body: string): WgslKernelResult {
  const f = flatDispatch(ctx.inSizeJs(0));
  const code = `// ${comment}
@compute @workgroup_size(64) fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
${KEEP_PARAMS}
  let i = ${f.index};
  let n = ${ctx.inSize(0)};
  if (i >= n) { return; }
  let scale = x2[0] / f32(n);
${body}
}`;
  return { passes: [{ code, dispatch: f.dispatch }] };
}

const emitMseGrad = (ctx: WgslEmitCtx) =>
  pairGrad(
    ctx,
    "mse_grad: d/da (a − b)² = 2(a − b), d/db = −2(a − b)",
    `  let g = 2.0 * (x0[i] - x1[i]) * scale;
  y0[i] = g;
  y1[i] = -g;`,
  );

// σ(x) from exp(−|x|) ≤ 1: no overflow at any |x|.
const emitBceGrad = (ctx: WgslEmitCtx) =>
  pairGrad(
    ctx,
    "bce_with_logits_grad: d/dx = σ(x) − t, d/dt = −x",
    `  let v = x0[i];
  let e = exp(-abs(v));
  let sig = select(e / (1.0 + e), 1.0 / (1.0 + e), v >= 0.0);
  y0[i] = (sig - x1[i]) * scale;
  y1[i] = -v * scale;`,
  );

export const kernels: WgslKernel[] = [
  { op: "cross_entropy", emit: emitCrossEntropy },
  { op: "mse", emit: emitMse },
  { op: "bce_with_logits", emit: emitBce },
  { op: "cross_entropy_grad", emit: emitCrossEntropyGrad },
  { op: "mse_grad", emit: emitMseGrad },
  { op: "bce_with_logits_grad", emit: emitBceGrad },
];

// WGSL kernels for the convolution family: `conv` and `conv_transpose`
// (compiler/ops/conv.ts holds the reference semantics these must match; the
// JS templates in ../js/conv.ts are the CPU twins).
//
// Every kernel works on three spatial dims (D, H, W): a 1-d or 2-d node gets
// leading dims of size 1 (kernel 1, stride 1, no padding), which the
// generator folds away, so one template serves conv1d/2d/3d. Symbolic sizes
// (N, L, H, W) are read from the params block; kernel, stride, dilation,
// padding, groups and channels are compile-time constants.
//
// conv, "cpu" variant (software adapters: no workgroup memory, no barriers):
// a direct convolution where each invocation accumulates a register tile of
// up to 4 filters × up to 16 consecutive output columns of one output row;
// invocations run over (sample, row, row segment). Per input channel and
// kernel row, the row's inputs are loaded once (as vec4 when rows are
// 16-byte aligned) and feed every tap of the row and every filter of the
// tile. Column positions and zero-padding tests are hoisted out of the
// channel loop. See CpuPlan for the measurements behind this shape.
//
// conv, "gpu" variant: a workgroup computes an 8×8 (or 64×1 for 1-d) output
// tile for a block of up to 8 filters; per stage of input channels it copies
// the input patch and the block's weights to workgroup memory, then each
// invocation accumulates its output pixel for every filter of the block.
//
// Both conv variants store y through storeResult (epilogue.ts): a
// fused_epilogue (bias, activation, residual add after the conv) runs in
// whichever variant the runtime picks.
//
// attrs.algorithm (set by compiler/passes/conv-algorithm.ts: "direct",
// "implicit_gemm" or "fft") is accepted and every value is computed by the
// direct variants above: a deliberate fallback on this target. The "gpu"
// variant already is a tiled implicit GEMM in workgroup memory, and the JS
// measurements behind the FFT choice do not carry over to GPUs (cnnc ir --stats
// shows the algorithm per target).
//
// conv_transpose: a gather, one output per invocation, looping over the taps
// whose input cell lands on it.
//
// conv_grad_input (conv's dx): the same kind of gather, one dx element per
// invocation, also summing the padded copies of a cell when circular.
// conv_grad_weight (conv's dw): one weight element per invocation, its
// reduction over samples and output rows split into a few parts (partial sums
// in scratch, then an ordered summing pass) when the weight is small.

import type { Dim } from "../../ir/dims.ts";
import type { ConvAttrs, ConvTransposeAttrs } from "../../ops/conv.ts";
import { Code, isLiteral, prod, range, sum } from "../js/conv.ts";
import { storeResult, type StoreSite } from "./epilogue.ts";
import { flatDispatch, type WgslEmitCtx, type WgslKernel, type WgslKernelResult } from "./kernel.ts";

// ---------------------------------------------------------------------------
// Shared helpers (pool.ts uses them too)
// ---------------------------------------------------------------------------

export { Code, isLiteral, prod, range, sum };

/** A WGSL u32 size expression (`28u`, `u32(i32(P.s_L) - 2)`) as i32: literals stay plain. */
export function i32Of(u: string): string {
  const m = /^(\d+)u$/.exec(u);
  if (m) return m[1]!;
  // dimToWgsl's `u32(<i32 expression>)`: use the i32 expression itself
  if (u.startsWith("u32(") && u.endsWith(")") && balanced(u.slice(4, -1))) return u.slice(4, -1);
  return `i32(${u})`;
}

function balanced(s: string): boolean {
  let depth = 0;
  for (const ch of s) {
    depth += ch === "(" ? 1 : ch === ")" ? -1 : 0;
    if (depth < 0) return false;
  }
  return depth === 0;
}

/** `let` bindings of size expressions at the top of a kernel: literals and names are used as they are. */
export class Lets {
  private readonly byExpr = new Map<string, string>();
  private readonly used = new Set<string>();
  constructor(private readonly code: Code) {}
  bind(expr: string, name: string): string {
    if (isLiteral(expr) || /^[A-Za-z_]\w*$/.test(expr)) return expr;
    const known = this.byExpr.get(expr);
    if (known) return known;
    let unique = name;
    for (let i = 2; this.used.has(unique); i++) unique = `${name}${i}`;
    this.used.add(unique);
    this.byExpr.set(expr, unique);
    this.code.line(`let ${unique} = ${expr};`);
    return unique;
  }
}

/** `let name = expr;` unless expr is a literal or a plain name (then it is used as is). */
export function letLocal(code: Code, name: string, expr: string): string {
  if (isLiteral(expr) || /^[A-Za-z_]\w*$/.test(expr)) return expr;
  code.line(`let ${name} = ${expr};`);
  return name;
}

/** `a / b` and `a % b` folded for literal operands and divisor 1. */
export function div(a: string, b: string): string {
  if (b === "1") return a;
  if (isLiteral(a) && isLiteral(b)) return String(Math.trunc(Number(a) / Number(b)));
  return `${paren(a)} / ${paren(b)}`;
}
export function mod(a: string, b: string): string {
  if (b === "1") return "0";
  if (isLiteral(a) && isLiteral(b)) return String(Number(a) % Number(b));
  return `${paren(a)} % ${paren(b)}`;
}
export function paren(e: string): string {
  return /^[\w.]+(\([\w.]*\))?$/.test(e) || /^-?\d+$/.test(e) ? e : `(${e})`;
}

/** Ceil division of non-negative i32 expressions. */
export function ceilDiv(a: string, b: number): string {
  if (isLiteral(a)) return String(Math.ceil(Number(a) / b));
  return b === 1 ? a : `${paren(sum(a, b - 1))} / ${b}`;
}

/** Pads a per-spatial-dim list to three dims with leading `fill`s. */
export function to3<T>(xs: readonly T[], fill: T): T[] {
  return [...new Array<T>(3 - xs.length).fill(fill), ...xs];
}

export const DIM_NAMES = ["D", "H", "W"] as const;

/** The −∞ of max pooling: WGSL has no inf literal and const-evaluation rejects one, so it is made at run time. */
export const NEG_INF_FN = `fn neg_inf() -> f32 {
  var bits = 0xff800000u;
  return bitcast<f32>(bits);
}`;

/**
 * The runtime twin of the reference's "window larger than the padded input"
 * check for symbolic sizes: error kind 1 + i for spatial dim i of the node.
 * Returns the guard lines (to put at the top of main) and the messages.
 */
export function windowGuards(
  what: string,
  kernel: readonly number[],
  dilation: readonly number[],
  inSizes: readonly string[],
  outSizes: readonly string[],
  padTotal: readonly number[],
): { lines: string[]; errors: Record<number, string> } {
  const lines: string[] = [];
  const errors: Record<number, string> = {};
  for (let i = kernel.length - 1; i >= 0; i--) {
    if (isLiteral(outSizes[i]!)) continue;
    const eff = dilation[i]! * (kernel[i]! - 1) + 1;
    const dilated = eff === kernel[i] ? "" : ` (dilated to ${eff})`;
    errors[1 + i] = `${what} ${kernel[i]}${dilated} is larger than the padded input {a} along dim ${2 + i}`;
    lines.push(`if (${outSizes[i]} < 1) { report_error(${1 + i}u, ${sum(inSizes[i]!, padTotal[i]!)}, 0u); return; }`);
  }
  return { lines, errors };
}

const list = (xs: readonly number[]): string => `[${xs.join(", ")}]`;

// ---------------------------------------------------------------------------
// conv: geometry
// ---------------------------------------------------------------------------

/** Code-shape knobs of the conv templates (measured on lavapipe; see the module comment). */
export const convTuning = {
  /** Invocations per workgroup of the cpu variant. */
  workgroup: 64,
  /** Register tile of the cpu variant: most filters per invocation, and the column counts to choose from. */
  tileFilters: 4,
  tileColumns: [4, 8, 12, 16],
  /** Read input rows as vec4/vec2 where the layout allows. */
  vectorLoads: true,
  /** Widest kernel row unrolled (its inputs loaded once for all its taps), and the most inputs that takes. */
  maxUnrolledColumns: 7,
  maxColumnLoads: 32,
  /**
   * Loops whose bound is hidden from the driver (min(n, arrayLength)): Mesa
   * unrolls loops with small constant trip counts, which for a few input
   * channels multiplied the cpu variant's compile time for no run-time gain.
   */
  opaqueLoops: "channels" as "none" | "channels" | "all",
  /** Workgroup-memory budget of the gpu variant, in floats (16 KiB is WebGPU's guaranteed minimum). */
  gpuSharedFloats: 4096,
  /** Most filters per workgroup (and per invocation) in the gpu variant. */
  gpuFilters: 8,
};

export interface ConvGeometry {
  d: number;
  C: number;
  F: number;
  G: number;
  Cg: number;
  Fg: number;
  /** Three spatial dims each (leading size-1 dims for conv1d/2d). */
  K: number[];
  s: number[];
  dl: number[];
  pb: number[];
  pe: number[];
  KV: number;
  circular: boolean;
  flip: boolean;
  hasBias: boolean;
  /** i32 size expressions (bound names or literals), valid after bindSizes. */
  N: string;
  X: string[];
  O: string[];
  inPlane: string;
  oPlane: string;
  errors: Record<number, string>;
}

export function convGeometry(ctx: WgslEmitCtx, lets: Lets, code: Code): ConvGeometry {
  const a = ctx.node.attrs as unknown as ConvAttrs;
  const d = a.stride.length;
  const wShape = ctx.node.inputs[1]!.type.shape.map((x: Dim) => x.constValue()!);
  const F = wShape[0]!;
  const Cg = wShape[1]!;
  const G = a.groups;
  const K = to3(wShape.slice(2), 1);
  const xShape = ctx.inShape(0);
  const yShape = ctx.outShape(0);
  const N = lets.bind(i32Of(xShape[0]!), "N");
  const X = to3(xShape.slice(2).map((x, i) => lets.bind(i32Of(x), `X${DIM_NAMES[3 - d + i]}`)), "1");
  const O = to3(yShape.slice(2).map((x, i) => lets.bind(i32Of(x), `O${DIM_NAMES[3 - d + i]}`)), "1");
  const pb = to3(a.padBegin, 0);
  const pe = to3(a.padEnd, 0);
  const dl = to3(a.dilation, 1);
  const guards = windowGuards("kernel", K.slice(3 - d), dl.slice(3 - d), X.slice(3 - d), O.slice(3 - d), pb.slice(3 - d).map((p, i) => p + pe[3 - d + i]!));
  for (const l of guards.lines) code.line(l);
  const circular = a.paddingMode === "circular" && (pb.some((p) => p > 0) || pe.some((p) => p > 0));
  return {
    d,
    C: Cg * G,
    F,
    G,
    Cg,
    Fg: F / G,
    K,
    s: to3(a.stride, 1),
    dl,
    pb,
    pe,
    KV: K[0]! * K[1]! * K[2]!,
    circular,
    flip: a.flip,
    hasBias: a.hasBias,
    N,
    X,
    O,
    inPlane: lets.bind(prod(...X), "inPlane"),
    oPlane: lets.bind(prod(...O), "outPlane"),
    errors: guards.errors,
  };
}

export function convHeader(ctx: WgslEmitCtx, g: ConvGeometry, what: string): string {
  const a = ctx.node.attrs as unknown as ConvAttrs;
  return (
    `// conv${g.d}d (${what}): x [${ctx.inShape(0).join(", ")}] * w [${ctx.inShape(1).join(", ")}] -> y [${ctx.outShape(0).join(", ")}]; ` +
    `stride ${list(a.stride)}, dilation ${list(a.dilation)}, padding ${list(a.padBegin)}..${list(a.padEnd)}${g.circular ? " circular" : ""}` +
    `${g.G > 1 ? `, groups ${g.G}` : ""}${g.flip ? ", flipped kernel" : ""}${g.hasBias ? "" : ", no bias"}`
  );
}

/**
 * Position along spatial dim i of tap k for output o: o·stride − pb + k·dilation,
 * as an index that is always inside the input (clamped, or wrapped when
 * circular) and, for zero padding, the test that it really is inside.
 */
export function samplePosition(g: ConvGeometry, i: number, pos: string, mayLeave: boolean, mayOverrun = false): { index: string; ok?: string } {
  const X = g.X[i]!;
  const padded = g.pb[i]! > 0 || g.pe[i]! > 0;
  if (!padded) return { index: mayOverrun ? `min(${pos}, ${sum(X, -1)})` : pos };
  if (g.circular) return { index: mayLeave || mayOverrun ? `((${pos}) % ${X} + ${X}) % ${X}` : pos };
  return { index: `clamp(${pos}, 0, ${sum(X, -1)})`, ok: `${paren(pos)} >= 0 && ${paren(pos)} < ${X}` };
}

const tapOf = (g: ConvGeometry, i: number, k: number): number => (g.flip ? g.K[i]! - 1 - k : k);

// ---------------------------------------------------------------------------
// conv: "cpu" variant, register tiles
// ---------------------------------------------------------------------------

/**
 * Shape of the cpu variant. On lavapipe every storage load, even one whose
 * index is the same for all invocations, becomes a per-lane scalar sequence
 * with a bounds test (~10 instructions and 2 branches per lane) while a
 * multiply-add is ~3 instructions per 8 lanes; and each load *site* in the
 * shader costs ~0.1–0.2 s of LLVM time when the pipeline is first used. So:
 *  * a register tile of TF filters × TW columns: every input value loaded
 *    feeds TF filters, every weight TW columns;
 *  * loops over channels and kernel rows (unrolling them multiplied the
 *    compile time by ~15 for no measurable gain), the kernel row's columns
 *    unrolled so the row's inputs are loaded once for all its taps;
 *  * input rows read as vec4 (or vec2) when rows are 16- (8-) byte aligned:
 *    4 columns per load site and per load.
 */
interface CpuPlan {
  /** Filters and output columns per invocation. */
  tf: number;
  tw: number;
  /** Input rows read as vectors of vx lanes (x0 bound as array<vec4<f32>> or array<vec2<f32>>), or 1. */
  vx: number;
  /** The kernel row's taps unrolled (else a loop over them with TW loads each). */
  colsUnrolled: boolean;
}

export function largestDivisorAtMost(n: number, max: number): number {
  for (let b = Math.min(n, max); b > 1; b--) if (n % b === 0) return b;
  return 1;
}

/** Distinct input column offsets (from the tile's first sample position) a tile of TW columns reads. */
function columnOffsets(g: ConvGeometry, TW: number): number[] {
  return [...new Set(range(TW, (i) => range(g.K[2]!, (k) => i * g.s[2]! + k * g.dl[2]!)).flat())].sort((p, q) => p - q);
}

function pickCpuPlan(g: ConvGeometry): CpuPlan {
  const t = convTuning;
  const OW = g.O[2]!;
  const XW = g.X[2]!;
  const wPadded = g.pb[2]! > 0 || g.pe[2]! > 0;
  // Rows are vector-aligned when their length is a multiple of the vector width (and no column wraps around).
  const rowVector = (g.circular && wPadded) || !t.vectorLoads || !isLiteral(XW) ? 1 : ([4, 2].find((v) => Number(XW) % v === 0) ?? 1);
  // Columns per invocation: the fewest column slots, counting a segment's fixed loads as ~6 columns.
  const candidates = t.tileColumns.filter((w) => w % rowVector === 0);
  const pool = candidates.length ? candidates : t.tileColumns;
  let tw = pool[pool.length - 1]!;
  if (isLiteral(OW)) {
    let best = Infinity;
    for (const w of pool) {
      const cost = Math.ceil(Number(OW) / w) * (w + 6);
      if (cost < best) [best, tw] = [cost, w];
    }
  }
  const colsUnrolled = g.K[2]! <= t.maxUnrolledColumns && columnOffsets(g, tw).length <= t.maxColumnLoads;
  const vx = colsUnrolled && tw % rowVector === 0 ? rowVector : 1;
  return { tf: largestDivisorAtMost(g.Fg, t.tileFilters), tw, vx, colsUnrolled };
}

function emitConvCpu(ctx: WgslEmitCtx): { code: string; dispatch: [string, string, string]; bindingTypes: Record<string, string>; errors: Record<number, string> } {
  const c = new Code();
  const g = convGeometry(ctx, new Lets(c), c);
  const plan = pickCpuPlan(g);
  const { tf: TF, tw: TW } = plan;
  const WG = convTuning.workgroup;
  const [OD, OH, OW] = g.O as [string, string, string];
  const nbW = letLocal(c, "segments", ceilDiv(OW, TW));
  // Invocations run over (sample, output row, row segment): small images still fill whole workgroups.
  const T = letLocal(c, "tiles", prod(g.N, OD, OH, nbW));
  c.line(`let f0 = ${prod("i32(wid.y)", TF)};`);
  const grp = g.G > 1 ? letLocal(c, "grp", div("i32(wid.y)", String(g.Fg / TF))) : "0";
  c.open(`for (var t = i32(wid.x) * ${WG} + i32(lid.x); t < ${T}; t += i32(nwg.x) * ${WG})`);
  emitConvTile(ctx, c, g, plan, grp, nbW);
  c.close();

  const how = [`register tiles of ${TF} filter${TF > 1 ? "s" : ""} × ${TW} columns`, plan.vx > 1 ? `vec${plan.vx} input rows` : ""];
  const code = [
    convHeader(ctx, g, how.filter((s) => s).join(", ")),
    `@compute @workgroup_size(${WG})`,
    "fn main(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_id) lid: vec3u, @builtin(num_workgroups) nwg: vec3u) {",
    indent(c.toString()),
    "}",
  ].join("\n");
  const groupsX = `Math.ceil((${ctx.dimJs(ctx.node.inputs[0]!.type.shape[0]!)}) * ${tilesJs(ctx, TW)} / ${WG})`;
  const dispatch: [string, string, string] = [`Math.max(1, Math.min(${groupsX}, 65535))`, String(g.F / TF), "1"];
  const bindingTypes: Record<string, string> = plan.vx > 1 ? { x0: `vec${plan.vx}<f32>` } : {};
  return { code, dispatch, bindingTypes, errors: g.errors };
}

export function indent(s: string): string {
  return s
    .split("\n")
    .map((l) => (l.length ? `  ${l}` : l))
    .join("\n");
}

/** Row segments of TW columns per sample, as JS over S (for the dispatch). */
function tilesJs(ctx: WgslEmitCtx, TW: number): string {
  const o = ctx.node.outputs[0]!.type.shape.slice(2).map((x) => ctx.dimJs(x));
  const w = o.pop()!;
  return [...o.map((x) => `(${x})`), `Math.ceil((${w}) / ${TW})`].join(" * ");
}

const COMPONENTS = ["x", "y", "z", "w"];

/**
 * The body for one tile t: output row (n, od, oh), columns ow0 .. ow0 + TW − 1,
 * filters f0 .. f0 + TF − 1 (of group grp).
 */
function emitConvTile(ctx: WgslEmitCtx, c: Code, g: ConvGeometry, plan: CpuPlan, grp: string, nbW: string): void {
  const { tf: TF, tw: TW, vx: VX } = plan;
  const [OD, OH, OW] = g.O as [string, string, string];
  const [, XH, XW] = g.X as [string, string, string];
  const [KD, KH, KW] = g.K as [number, number, number];
  const [sD, sH, sW] = g.s as [number, number, number];
  const [dD, dH, dW] = g.dl as [number, number, number];
  const seg = letLocal(c, "seg", mod("t", nbW));
  const row = letLocal(c, "row", div("t", nbW));
  const oh = letLocal(c, "oh", mod(row, OH));
  const plane = letLocal(c, "plane", div(row, OH));
  const od = OD === "1" ? "0" : letLocal(c, "od", mod(plane, OD));
  const n = letLocal(c, "n", div(plane, OD));
  // first input plane of the group (in vectors when rows are read as vectors)
  const xg = letLocal(c, "xg", prod(sum(prod(n, g.C), prod(grp, g.Cg)), VX > 1 ? div(g.inPlane, String(VX)) : g.inPlane));
  const ow0 = letLocal(c, "ow0", prod(seg, TW));
  const partial = !(isLiteral(OW) && Number(OW) % TW === 0);
  const wPadded = g.pb[2]! > 0 || g.pe[2]! > 0;

  // Columns: the input offsets the tile reads along W (relative to pw0), positions and tests hoisted.
  const offsets = plan.colsUnrolled ? columnOffsets(g, TW) : [];
  const pw0 = letLocal(c, "pw0", sum(prod(ow0, sW), -g.pb[2]!));
  const colIndex = new Map<number, string>();
  const colOk = new Map<number, string>();
  // vector rows: sample pw0 sits at lane `align` of vector `pq0` (pw0 ≡ −pb mod VX, as ow0·stride is a multiple of VX)
  const align = (((-g.pb[2]!) % VX) + VX) % VX;
  const rowVectors = VX > 1 ? String(Number(XW) / VX) : "";
  const vecIndex: string[] = [];
  if (plan.colsUnrolled) c.line(`// input columns read by the tile: pw0 + {${offsets.join(", ")}}`);
  if (VX > 1) {
    const nq = Math.floor((align + offsets[offsets.length - 1]!) / VX) + 1;
    const pq0 = letLocal(c, "pq0", sum(prod(seg, (TW * sW) / VX), -(g.pb[2]! + align) / VX));
    const clampQ = wPadded || partial;
    for (let q = 0; q < nq; q++) vecIndex.push(letLocal(c, `cq${q}`, clampQ ? `clamp(${sum(pq0, q)}, 0, ${Number(rowVectors) - 1})` : sum(pq0, q)));
    if (wPadded) for (const e of offsets) colOk.set(e, letLocal(c, `cok${e}`, `${paren(sum(pw0, e))} >= 0 && ${paren(sum(pw0, e))} < ${XW}`));
  } else if (plan.colsUnrolled) {
    for (const e of offsets) {
      const p = samplePosition(g, 2, sum(pw0, e), true, partial);
      colIndex.set(e, letLocal(c, `cx${e}`, p.index));
      if (p.ok) colOk.set(e, letLocal(c, `cok${e}`, p.ok));
    }
  }

  // Accumulators start at the bias.
  const acc = (j: number, i: number) => `a${j}_${i}`;
  for (let j = 0; j < TF; j++) {
    const init = g.hasBias ? letLocal(c, `b${j}`, `x2[${sum("f0", j)}]`) : "0.0";
    c.line(range(TW, (i) => `var ${acc(j, i)} = ${init};`).join(" "));
  }

  const CgKV = g.Cg * g.KV;
  const bound = (n: number, name: string) => (convTuning.opaqueLoops === "none" || (convTuning.opaqueLoops === "channels" && name !== "ch") ? String(n) : `min(${n}, opaque)`);
  if (convTuning.opaqueLoops !== "none") c.line("let opaque = i32(arrayLength(&x1));");
  c.open(`for (var ch = 0; ch < ${bound(g.Cg, "ch")}; ch++)`);
  const wc = letLocal(c, "wc", sum(prod("f0", CgKV), prod("ch", g.KV)));
  const xc = letLocal(c, "xc", sum(xg, prod("ch", VX > 1 ? div(g.inPlane, String(VX)) : g.inPlane)));
  // kernel rows (kd, kh): loops, skipped where the row falls in zero padding
  const loopD = KD > 1;
  const loopH = KH > 1;
  if (loopD) c.open(`for (var kd = 0; kd < ${bound(KD, "kd")}; kd++)`);
  if (loopH) c.open(`for (var kh = 0; kh < ${bound(KH, "kh")}; kh++)`);
  const kd = loopD ? "kd" : "0";
  const kh = loopH ? "kh" : "0";
  const pd = samplePosition(g, 0, sum(prod(od, sD), -g.pb[0]!, prod(kd, dD)), true);
  const ph = samplePosition(g, 1, sum(prod(oh, sH), -g.pb[1]!, prod(kh, dH)), true);
  const rowOk = [pd.ok, ph.ok].filter((x): x is string => x !== undefined);
  if (rowOk.length) c.line(`if (!(${rowOk.map((o) => `(${o})`).join(" && ")})) { continue; }`);
  const rowLen = VX > 1 ? rowVectors : XW;
  const zd = pd.index === "0" ? "0" : letLocal(c, "zd", pd.index);
  const zh = ph.index === "0" ? "0" : letLocal(c, "zh", ph.index);
  const xr = letLocal(c, "xr", sum(xc, prod(zd, XH, rowLen), prod(zh, rowLen)));
  const tapRow = prod(sum(prod(g.flip ? `${KD - 1} - ${kd}` : kd, KH), g.flip ? `${KH - 1} - ${kh}` : kh), KW);
  const wr = letLocal(c, "wr", sum(wc, tapRow));
  const guarded = (v: string, ok: string | undefined) => (ok ? `select(0.0, ${v}, ${ok})` : v);

  if (plan.colsUnrolled) {
    // the row's inputs, loaded once for all its taps
    const value = new Map<number, string>();
    if (VX > 1) {
      vecIndex.forEach((q, k) => c.line(`let q${k} = x0[${sum(xr, q)}];`));
      for (const e of offsets) {
        const lane = `q${Math.floor((align + e) / VX)}.${COMPONENTS[(align + e) % VX]}`;
        const ok = colOk.get(e);
        value.set(e, ok ? letLocal(c, `v${e}`, guarded(lane, ok)) : lane);
      }
    } else {
      for (const e of offsets) value.set(e, letLocal(c, `v${e}`, guarded(`x0[${sum(xr, colIndex.get(e)!)}]`, colOk.get(e))));
    }
    for (let kw = 0; kw < KW; kw++) {
      const tap = tapOf(g, 2, kw);
      for (let j = 0; j < TF; j++) {
        c.line(`let w${j}_${kw} = x1[${sum(wr, j * CgKV, tap)}];`);
        c.line(range(TW, (i) => `${acc(j, i)} = fma(w${j}_${kw}, ${value.get(i * sW + kw * dW)}, ${acc(j, i)});`).join(" "));
      }
    }
  } else {
    c.open(`for (var kw = 0; kw < ${KW}; kw++)`);
    for (let i = 0; i < TW; i++) {
      const p = samplePosition(g, 2, sum(pw0, i * sW, prod("kw", dW)), true, true);
      c.line(`let v${i} = ${guarded(`x0[${sum(xr, p.index)}]`, p.ok)};`);
    }
    const tap = g.flip ? `${KW - 1} - kw` : "kw";
    for (let j = 0; j < TF; j++) c.line(`let w${j} = x1[${sum(wr, j * CgKV, tap)}];`);
    for (let j = 0; j < TF; j++) c.line(range(TW, (i) => `${acc(j, i)} = fma(w${j}, v${i}, ${acc(j, i)});`).join(" "));
    c.close();
  }
  if (loopH) c.close();
  if (loopD) c.close();
  c.close(); // channels

  // Filters f0.. of sample n are consecutive planes of y.
  const yb = letLocal(c, "yb", sum(prod(sum(prod(n, g.F), "f0"), g.oPlane), prod(od, OH, OW), prod(oh, OW), ow0));
  for (let i = 0; i < TW; i++) {
    const at = (j: number) => resultSite(g, sum(yb, prod(j, g.oPlane), i), n, sum("f0", j), [od, oh, sum(ow0, i)]);
    const stores = range(TF, (j) => storeResult(ctx, at(j), acc(j, i)).join(" ")).join(" ");
    c.line(partial && i > 0 ? `if (${sum(ow0, i)} < ${OW}) { ${stores} }` : stores);
  }
}

// ---------------------------------------------------------------------------
// conv: "gpu" variant, workgroup-memory tiles
// ---------------------------------------------------------------------------

interface GpuTile {
  th: number;
  tw: number;
  fb: number;
  cc: number;
  patch: [number, number, number];
}

function pickGpuTile(g: ConvGeometry): GpuTile | undefined {
  const oneRow = g.O[1] === "1";
  const shapes: [number, number][] = oneRow ? [[1, 64], [1, 32]] : [[8, 8], [4, 8]];
  for (const [th, tw] of shapes) {
    for (let fb = largestDivisorAtMost(g.Fg, convTuning.gpuFilters); fb >= 1; fb = largestDivisorAtMost(g.Fg, fb - 1)) {
      const patch: [number, number, number] = [
        (g.K[0]! - 1) * g.dl[0]! + 1,
        (th - 1) * g.s[1]! + (g.K[1]! - 1) * g.dl[1]! + 1,
        (tw - 1) * g.s[2]! + (g.K[2]! - 1) * g.dl[2]! + 1,
      ];
      const per = patch[0] * patch[1] * patch[2] + fb * g.KV;
      const most = Math.min(g.Cg, Math.floor(convTuning.gpuSharedFloats / per));
      // stages of whole divisors of the channel count when that costs at most half the stage size
      const divisor = largestDivisorAtMost(g.Cg, most);
      const cc = divisor * 2 >= most ? divisor : most;
      if (cc >= 1) return { th, tw, fb, cc, patch };
      if (fb === 1) break;
    }
  }
  return undefined;
}

function emitConvGpu(ctx: WgslEmitCtx, tile: GpuTile, bindingTypes: Record<string, string>): { code: string; dispatch: [string, string, string] } {
  const c = new Code();
  const lets = new Lets(c);
  const g = convGeometry(ctx, lets, c);
  const { th: TH, tw: TWg, fb: FB, cc: CC, patch } = tile;
  const [PD, PH, PW] = patch;
  const PV = PD * PH * PW;
  const WG = TH * TWg;
  const [OD, OH, OW] = g.O as [string, string, string];
  const [XD, XH, XW] = g.X as [string, string, string];
  const KV = g.KV;
  const [KD, KH, KW] = g.K as [number, number, number];

  const tilesW = letLocal(c, "tilesW", ceilDiv(OW, TWg));
  const tilesH = letLocal(c, "tilesH", ceilDiv(OH, TH));
  const T = letLocal(c, "tiles", prod(OD, tilesH, tilesW));
  c.line("let n = i32(wid.z);");
  c.line(`let f0 = ${prod("i32(wid.y)", FB)};`);
  const grp = g.G > 1 ? letLocal(c, "grp", div("i32(wid.y)", String(g.Fg / FB))) : "0";
  const xg = letLocal(c, "xg", prod(sum(prod("n", g.C), prod(grp, g.Cg)), g.inPlane));
  c.line("let lx = i32(lid.x);");
  c.line("let ly = i32(lid.y);");
  c.line("let li = i32(lid.y * " + `${TWg}u + lid.x);`);
  c.open(`for (var t = i32(wid.x); t < ${T}; t += i32(nwg.x))`);
  const bw = letLocal(c, "bw", mod("t", tilesW));
  const r = letLocal(c, "r", div("t", tilesW));
  const bh = OD === "1" ? r : letLocal(c, "bh", mod(r, tilesH));
  const od = OD === "1" ? "0" : letLocal(c, "od", div(r, tilesH));
  const oh0 = letLocal(c, "oh0", prod(bh, TH));
  const ow0 = letLocal(c, "ow0", prod(bw, TWg));
  // patch origin in input coordinates
  const pd0 = letLocal(c, "pd0", sum(prod(od, g.s[0]!), -g.pb[0]!));
  const ph0 = letLocal(c, "ph0", sum(prod(oh0, g.s[1]!), -g.pb[1]!));
  const pw0 = letLocal(c, "pw0", sum(prod(ow0, g.s[2]!), -g.pb[2]!));
  c.line(range(FB, (j) => `var a${j} = ${g.hasBias ? `x2[${sum("f0", j)}]` : "0.0"};`).join(" "));
  c.open(`for (var c0 = 0; c0 < ${g.Cg}; c0 += ${CC})`);
  c.line("workgroupBarrier();");
  // stage the input patch: CC channels × PD × PH × PW
  c.open(`for (var e = li; e < ${CC * PV}; e += ${WG})`);
  const ce = letLocal(c, "ce", div("e", String(PV)));
  const zd = letLocal(c, "zd", mod(div("e", String(PH * PW)), String(PD)));
  const zh = letLocal(c, "zh", mod(div("e", String(PW)), String(PH)));
  const zw = letLocal(c, "zw", mod("e", String(PW)));
  const pd = samplePosition(g, 0, sum(pd0, zd), true);
  const ph = samplePosition(g, 1, sum(ph0, zh), true);
  const pw = samplePosition(g, 2, sum(pw0, zw), true);
  // zero padding: clamped index and a test; circular: wrapped index; unpadded dims: the patch may
  // still extend past the input at the far edge (partial tiles), so clamp and test there too
  const padded = (i: number) => g.pb[i]! > 0 || g.pe[i]! > 0;
  const within = (p: { index: string; ok?: string }, pos: string, X: string, i: number) => (padded(i) ? p.ok : `${paren(pos)} < ${X}`);
  const clampIdx = (p: { index: string; ok?: string }, pos: string, X: string, i: number) => (padded(i) ? p.index : `min(${pos}, ${sum(X, -1)})`);
  const conds = [`${sum("c0", ce)} < ${g.Cg}`];
  const dims = [
    { p: pd, pos: sum(pd0, zd), X: XD, i: 0 },
    { p: ph, pos: sum(ph0, zh), X: XH, i: 1 },
    { p: pw, pos: sum(pw0, zw), X: XW, i: 2 },
  ];
  const idx: string[] = [];
  for (const dm of dims) {
    if (dm.X === "1" && dm.pos === "0") {
      idx.push("0");
      continue;
    }
    const w = within(dm.p, dm.pos, dm.X, dm.i);
    if (w) conds.push(`(${w})`);
    idx.push(letLocal(c, `q${DIM_NAMES[dm.i]!.toLowerCase()}`, clampIdx(dm.p, dm.pos, dm.X, dm.i)));
  }
  const chan = `min(${sum("c0", ce)}, ${g.Cg - 1})`;
  const at = sum(xg, prod(chan, g.inPlane), prod(idx[0]!, XH, XW), prod(idx[1]!, XW), idx[2]!);
  c.line(`xs[e] = select(0.0, load_x(${at}), ${conds.join(" && ")});`);
  c.close();
  // stage the weights of the block for these channels: FB × CC × KV
  c.open(`for (var e = li; e < ${FB * CC * KV}; e += ${WG})`);
  const wj = letLocal(c, "wj", div("e", String(CC * KV)));
  const wcl = letLocal(c, "wcl", mod(div("e", String(KV)), String(CC)));
  const wt = letLocal(c, "wt", mod("e", String(KV)));
  c.line(`ws[e] = select(0.0, load_w(${sum(prod(sum("f0", wj), g.Cg * KV), prod(`min(${sum("c0", wcl)}, ${g.Cg - 1})`, KV), wt)}), ${sum("c0", wcl)} < ${g.Cg});`);
  c.close();
  c.line("workgroupBarrier();");
  // accumulate this invocation's pixel for every filter of the block
  c.open(`for (var cl = 0; cl < ${CC}; cl++)`);
  const xb = letLocal(c, "xb", sum(prod("cl", PV), prod("ly", g.s[1]!, PW), prod("lx", g.s[2]!)));
  const wb = letLocal(c, "wb", prod("cl", KV));
  // tap loops (the GPU compiler unrolls them; lavapipe compiles loops much faster)
  const loops = [0, 1, 2].filter((k) => g.K[k]! > 1);
  const kIdx = (k: number) => (g.K[k]! > 1 ? `k${DIM_NAMES[k]!.toLowerCase()}` : "0");
  for (const k of loops) c.open(`for (var ${kIdx(k)} = 0; ${kIdx(k)} < ${g.K[k]}; ${kIdx(k)}++)`);
  const f = (k: number) => (g.flip && g.K[k]! > 1 ? `(${g.K[k]! - 1} - ${kIdx(k)})` : kIdx(k));
  const tap = letLocal(c, "tap", sum(wb, prod(sum(prod(f(0), KH), f(1)), KW), f(2)));
  c.line(`let v = xs[${sum(xb, prod(kIdx(0), g.dl[0]!, PH * PW), prod(kIdx(1), g.dl[1]!, PW), prod(kIdx(2), g.dl[2]!))}];`);
  c.line(range(FB, (j) => `a${j} = fma(v, ws[${sum(tap, j * CC * KV)}], a${j});`).join(" "));
  for (const _ of loops) c.close();
  c.close(); // cl
  c.close(); // c0
  const oh = letLocal(c, "oh", sum(oh0, "ly"));
  const ow = letLocal(c, "ow", sum(ow0, "lx"));
  c.open(`if (${oh} < ${OH} && ${ow} < ${OW})`);
  const yb = letLocal(c, "yb", sum(prod(sum(prod("n", g.F), "f0"), g.oPlane), prod(od, OH, OW), prod(oh, OW), ow));
  c.line(range(FB, (j) => storeResult(ctx, resultSite(g, sum(yb, prod(j, g.oPlane)), "n", sum("f0", j), [od, oh, ow]), `a${j}`).join(" ")).join(" "));
  c.close();
  c.close(); // tiles

  const code = [
    convHeader(ctx, g, `workgroup tiles of ${TH}×${TWg} outputs × ${FB} filters, ${CC} input channel${CC > 1 ? "s" : ""} per stage`),
    loadHelper("load_x", "x0", bindingTypes.x0),
    loadHelper("load_w", "x1", bindingTypes.x1),
    `var<workgroup> xs: array<f32, ${CC * PV}>;`,
    `var<workgroup> ws: array<f32, ${FB * CC * KV}>;`,
    "",
    `@compute @workgroup_size(${TWg}, ${TH})`,
    "fn main(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_id) lid: vec3u, @builtin(num_workgroups) nwg: vec3u) {",
    indent(c.toString()),
    "}",
  ].join("\n");
  const o = ctx.node.outputs[0]!.type.shape.slice(2).map((x) => ctx.dimJs(x));
  const [oD, oH, oW] = to3(o, "1");
  const tiles = `(${oD}) * Math.ceil((${oH}) / ${TH}) * Math.ceil((${oW}) / ${TWg})`;
  return { code, dispatch: [`Math.max(1, Math.min(${tiles}, 65535))`, String(g.F / FB), ctx.dimJs(ctx.node.inputs[0]!.type.shape[0]!)] };
}

/**
 * A store site of y for an epilogue: flat offset `flat`, sample `n`, filter
 * `f` and the three spatial positions (leading ones unused for conv1d/2d).
 */
function resultSite(g: ConvGeometry, flat: string, n: string, f: string, pos: readonly string[]): StoreSite {
  return { flat, coord: (dim) => (dim === 0 ? n : dim === 1 ? f : pos[3 - g.d + dim - 2]) };
}

/** A scalar reader of a binding that the cpu variant declared as vectors. */
function loadHelper(name: string, binding: string, type: string | undefined): string {
  const width = type ? Number(/vec(\d)/.exec(type)![1]) : 1;
  const body = width === 1 ? `${binding}[i]` : `${binding}[i / ${width}][i % ${width}]`;
  return `fn ${name}(i: i32) -> f32 { return ${body}; }`;
}

function emitConv(ctx: WgslEmitCtx): WgslKernelResult {
  const cpu = emitConvCpu(ctx);
  const probe = convGeometry(ctx, new Lets(new Code()), new Code());
  const tile = pickGpuTile(probe);
  // Binding types are shared by both variants: the gpu one reads through helpers that follow them.
  const gpu = tile ? emitConvGpu(ctx, tile, cpu.bindingTypes) : cpu;
  const usesError = Object.keys(cpu.errors).length > 0;
  return {
    passes: [
      {
        code: cpu.code,
        dispatch: cpu.dispatch,
        bindingTypes: cpu.bindingTypes,
        variants: { cpu: { code: cpu.code, dispatch: cpu.dispatch }, gpu: { code: gpu.code, dispatch: gpu.dispatch } },
        usesError,
      },
    ],
    errors: cpu.errors,
  };
}

// ---------------------------------------------------------------------------
// conv_transpose: a gather, one output per invocation
// ---------------------------------------------------------------------------

function emitConvTranspose(ctx: WgslEmitCtx): WgslKernelResult {
  const a = ctx.node.attrs as unknown as ConvTransposeAttrs;
  const d = a.stride.length;
  const c = new Code();
  const lets = new Lets(c);
  const wShape = ctx.node.inputs[1]!.type.shape.map((x) => x.constValue()!);
  const C = wShape[0]!;
  const Fg = wShape[1]!;
  const G = a.groups;
  const F = Fg * G;
  const Cg = C / G;
  const K = to3(wShape.slice(2), 1);
  const KV = K[0]! * K[1]! * K[2]!;
  const s = to3(a.stride, 1);
  const dl = to3(a.dilation, 1);
  const pb = to3(a.padBegin, 0);
  const xShape = ctx.inShape(0);
  const yShape = ctx.outShape(0);
  const f = flatDispatch(ctx.outSizeJs(0));
  const errors: Record<number, string> = {};
  c.line(`let i = i32(${f.index});`);
  const X = to3(xShape.slice(2).map((x, i) => lets.bind(i32Of(x), `X${DIM_NAMES[3 - d + i]}`)), "1");
  const O = to3(yShape.slice(2).map((x, i) => lets.bind(i32Of(x), `O${DIM_NAMES[3 - d + i]}`)), "1");
  O.forEach((o, i) => {
    if (isLiteral(o)) return;
    errors[1 + i] = `the output size along dim ${2 + i - (3 - d)} would be {a}: the padding crops everything the transposed convolution produces`;
    c.line(`if (${o} < 1) { report_error(${1 + i}u, ${o}, 0u); return; }`);
  });
  const total = lets.bind(i32Of(ctx.outSize(0)), "total");
  c.line(`if (i >= ${total}) { return; }`);
  const inPlane = lets.bind(prod(...X), "inPlane");
  // output index → (n, f, od, oh, ow)
  let rest = "i";
  const o: string[] = [];
  for (let k = 2; k >= 0; k--) {
    if (O[k] === "1") {
      o[k] = "0";
      continue;
    }
    o[k] = letLocal(c, `o${DIM_NAMES[k]!.toLowerCase()}`, mod(rest, O[k]!));
    rest = letLocal(c, `r${DIM_NAMES[k]!.toLowerCase()}`, div(rest, O[k]!));
  }
  const fo = letLocal(c, "f", mod(rest, String(F)));
  const n = letLocal(c, "n", div(rest, String(F)));
  const grp = G > 1 ? letLocal(c, "grp", div(fo, String(Fg))) : "0";
  const fl = G > 1 ? letLocal(c, "fl", mod(fo, String(Fg))) : fo;
  const xg = letLocal(c, "xg", prod(sum(prod(n, C), prod(grp, Cg)), inPlane));
  c.line(`var acc = ${a.hasBias ? `x2[${fo}]` : "0.0"};`);
  c.line(`// input cell q with tap k lands on output q·stride − padBegin + k·dilation`);
  const qs: string[] = [];
  for (let k = 0; k < 3; k++) {
    if (K[k] === 1 && s[k] === 1 && pb[k] === 0 && X[k] === "1") {
      qs.push("0");
      continue;
    }
    const kv = `k${DIM_NAMES[k]!.toLowerCase()}`;
    c.open(`for (var ${kv} = 0; ${kv} < ${K[k]}; ${kv}++)`);
    const tnum = letLocal(c, `t${DIM_NAMES[k]!.toLowerCase()}`, sum(o[k]!, pb[k]!, prod(kv, -dl[k]!)));
    const q = s[k] === 1 ? tnum : letLocal(c, `q${DIM_NAMES[k]!.toLowerCase()}`, div(tnum, String(s[k])));
    const cond = [`${tnum} >= 0`, ...(s[k] === 1 ? [] : [`${mod(tnum, String(s[k]))} == 0`]), `${q} < ${X[k]}`];
    c.line(`if (!(${cond.join(" && ")})) { continue; }`);
    qs.push(q);
  }
  const kIdx = (k: number) => (K[k] === 1 ? "0" : `k${DIM_NAMES[k]!.toLowerCase()}`);
  const tap = letLocal(c, "tap", sum(prod(sum(prod(kIdx(0), K[1]!), kIdx(1)), K[2]!), kIdx(2)));
  const xo = letLocal(c, "xo", sum(xg, prod(qs[0]!, X[1]!, X[2]!), prod(qs[1]!, X[2]!), qs[2]!));
  c.open(`for (var cl = 0; cl < ${Cg}; cl++)`);
  c.line(`acc = fma(x0[${sum(xo, prod("cl", inPlane))}], x1[${sum(prod(sum(prod(sum(prod(grp, Cg), "cl"), Fg), fl), KV), tap)}], acc);`);
  c.close();
  for (let k = 0; k < 3; k++) if (!(K[k] === 1 && s[k] === 1 && pb[k] === 0 && X[k] === "1")) c.close();
  c.line("y0[i] = acc;");
  const code = [
    `// conv_transpose${d}d (gather, one output per invocation): x [${xShape.join(", ")}] * w [${ctx.inShape(1).join(", ")}] -> y [${yShape.join(", ")}]; ` +
      `stride ${list(a.stride)}, dilation ${list(a.dilation)}, padding ${list(a.padBegin)}..${list(a.padEnd)}, output padding ${list(a.outputPadding)}${G > 1 ? `, groups ${G}` : ""}${a.hasBias ? "" : ", no bias"}`,
    "@compute @workgroup_size(64)",
    "fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {",
    indent(c.toString()),
    "}",
  ].join("\n");
  const usesError = Object.keys(errors).length > 0;
  return { passes: [{ code, dispatch: f.dispatch.map((x, i) => (i === 0 && usesError ? `Math.max(1, ${x})` : x)) as [string, string], usesError }], errors };
}

// ---------------------------------------------------------------------------
// conv_grad_input: a gather, one dx element per invocation
// ---------------------------------------------------------------------------

/**
 * dx of conv. Invocation i owns dx[n, c, p] and sums its contributors: per
 * spatial dim, every raw position r that reads p (r = p, or with circular
 * padding every r ≡ p mod S inside the padded extent [−padBegin, S + padEnd),
 * since padded cells are copies of real ones), every tap k with
 * r = o·stride − padBegin + k·dilation for an output o in range, and every
 * filter of c's group: dy[n, f, o] · w[f, c − g·Cg, tap(k)]. No atomics, and
 * the order of the sum is fixed.
 */
function emitConvGradInput(ctx: WgslEmitCtx): WgslKernelResult {
  const a = ctx.node.attrs as unknown as ConvAttrs;
  const d = a.stride.length;
  const c = new Code();
  const lets = new Lets(c);
  const wShape = ctx.node.inputs[1]!.type.shape.map((x) => x.constValue()!);
  const F = wShape[0]!;
  const Cg = wShape[1]!;
  const G = a.groups;
  const Fg = F / G;
  const C = Cg * G;
  const K = to3(wShape.slice(2), 1);
  const KV = K[0]! * K[1]! * K[2]!;
  const s = to3(a.stride, 1);
  const dl = to3(a.dilation, 1);
  const pb = to3(a.padBegin, 0);
  const pe = to3(a.padEnd, 0);
  const circular = a.paddingMode === "circular" && (pb.some((p) => p > 0) || pe.some((p) => p > 0));
  const dyShape = ctx.inShape(0);
  const xShape = ctx.outShape(0);
  const f = flatDispatch(ctx.outSizeJs(0));
  c.line(`let i = i32(${f.index});`);
  const X = to3(xShape.slice(2).map((x, i) => lets.bind(i32Of(x), `X${DIM_NAMES[3 - d + i]}`)), "1");
  const O = to3(dyShape.slice(2).map((x, i) => lets.bind(i32Of(x), `O${DIM_NAMES[3 - d + i]}`)), "1");
  const total = lets.bind(i32Of(ctx.outSize(0)), "total");
  c.line(`if (i >= ${total}) { return; }`);
  const oPlane = lets.bind(prod(...O), "outPlane");
  // dx index → (n, c, pd, ph, pw)
  let rest = "i";
  const p: string[] = [];
  for (let k = 2; k >= 0; k--) {
    if (X[k] === "1") {
      p[k] = "0";
      continue;
    }
    p[k] = letLocal(c, `p${DIM_NAMES[k]!.toLowerCase()}`, mod(rest, X[k]!));
    rest = letLocal(c, `r${DIM_NAMES[k]!.toLowerCase()}`, div(rest, X[k]!));
  }
  const ch = letLocal(c, "ch", mod(rest, String(C)));
  const n = letLocal(c, "n", div(rest, String(C)));
  const grp = G > 1 ? letLocal(c, "grp", div(ch, String(Cg))) : "0";
  const cl = G > 1 ? letLocal(c, "cl", mod(ch, String(Cg))) : ch;
  // the group's first filter: its dy plane and its weights for channel cl
  const dyg = letLocal(c, "dyg", prod(sum(prod(n, F), prod(grp, Fg)), oPlane));
  const wg = letLocal(c, "wg", prod(sum(prod(grp, Fg * Cg), cl), KV));
  c.line("var acc = 0.0;");
  c.line("// raw position r (padded coordinates − padBegin) is read by tap k of output (r + padBegin − k·dilation) / stride");
  const trivial = (k: number) => K[k] === 1 && s[k] === 1 && pb[k] === 0 && pe[k] === 0 && X[k] === "1";
  const qs: string[] = [];
  let loops = 0;
  for (let k = 0; k < 3; k++) {
    if (trivial(k)) {
      qs.push("0");
      continue;
    }
    const nm = DIM_NAMES[k]!.toLowerCase();
    let r = p[k]!;
    if (circular && (pb[k]! > 0 || pe[k]! > 0)) {
      // the first image of p at or after −padBegin, then every S cells up to S + padEnd
      const r0 = letLocal(c, `${nm}0`, `${p[k]} - ${paren(div(sum(p[k]!, pb[k]!), X[k]!))} * ${X[k]}`);
      c.open(`for (var ${nm}r = ${r0}; ${nm}r < ${sum(X[k]!, pe[k]!)}; ${nm}r += ${X[k]})`);
      loops++;
      r = `${nm}r`;
    }
    const kv = `k${nm}`;
    c.open(`for (var ${kv} = 0; ${kv} < ${K[k]}; ${kv}++)`);
    loops++;
    const t = letLocal(c, `t${nm}`, `${sum(r, pb[k]!)} - ${prod(kv, dl[k]!)}`);
    const q = s[k] === 1 ? t : letLocal(c, `q${nm}`, div(t, String(s[k])));
    const cond = [`${t} >= 0`, ...(s[k] === 1 ? [] : [`${mod(t, String(s[k]))} == 0`]), `${q} < ${O[k]}`];
    c.line(`if (!(${cond.join(" && ")})) { continue; }`);
    qs.push(q);
  }
  const kIdx = (k: number) => (trivial(k) || K[k] === 1 ? "0" : a.flip ? `${K[k]! - 1} - k${DIM_NAMES[k]!.toLowerCase()}` : `k${DIM_NAMES[k]!.toLowerCase()}`);
  const tap = letLocal(c, "tap", sum(prod(sum(prod(kIdx(0), K[1]! * K[2]!), prod(kIdx(1), K[2]!)), 1), kIdx(2)));
  const oi = letLocal(c, "oi", sum(prod(qs[0]!, O[1]!, O[2]!), prod(qs[1]!, O[2]!), qs[2]!));
  const yo = letLocal(c, "yo", sum(dyg, oi));
  const wo = letLocal(c, "wo", sum(wg, tap));
  c.open(`for (var fl = 0; fl < ${Fg}; fl++)`);
  c.line(`acc = fma(x0[${sum(yo, prod("fl", oPlane))}], x1[${sum(wo, prod("fl", Cg * KV))}], acc);`);
  c.close();
  for (let k = 0; k < loops; k++) c.close();
  c.line("y0[i] = acc;");
  const code = [
    `// conv${d}d input gradient (gather, one dx element per invocation): dy [${dyShape.join(", ")}] * w [${ctx.inShape(1).join(", ")}] -> dx [${xShape.join(", ")}]; ` +
      `stride ${list(a.stride)}, dilation ${list(a.dilation)}, padding ${list(a.padBegin)}..${list(a.padEnd)}${circular ? " circular" : ""}${G > 1 ? `, groups ${G}` : ""}${a.flip ? ", flipped kernel" : ""}`,
    "@compute @workgroup_size(64)",
    "fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {",
    indent(c.toString()),
    "}",
  ].join("\n");
  return { passes: [{ code, dispatch: f.dispatch }] };
}

// ---------------------------------------------------------------------------
// conv_grad_weight: one weight element per invocation, the batch split in parts
// ---------------------------------------------------------------------------

/** Code-shape knobs of the weight gradient. */
export const gradWeightTuning = {
  /** Invocations to aim for: a 6×1×5×5 weight alone would keep 150 lanes busy. */
  targetInvocations: 8192,
  /** Most parts the (sample, row) reduction is split into. */
  maxParts: 64,
};

/** Parts of the reduction for a weight of `w` elements: a power of two, at least 1. */
export function gradWeightParts(w: number): number {
  let p = 1;
  while (p * 2 <= gradWeightTuning.maxParts && p * 2 * w <= gradWeightTuning.targetInvocations) p *= 2;
  return p;
}

/**
 * dw of conv: dw[f, c, tap(k)] = Σ over samples and output positions of
 * dy[n, f, o] · x[n, g·Cg + c, o·stride − padBegin + k·dilation]. Invocation
 * (part, e) owns weight element e and sums the output rows (n, od, oh) with
 * index ≡ part mod P, along each row over the range of columns whose position
 * is inside x (computed once: no per-element tests), into scratch t0; a second
 * pass sums the P partial sums of each element in order. P (a power of two,
 * fixed at compile time) spreads a small weight over enough invocations; with
 * P = 1 the first pass writes dw directly. Deterministic, no atomics. dy's
 * sizes are taken as given (conv_transpose's weight gradient swaps x and dy),
 * so rows test both ends of x.
 */
function emitConvGradWeight(ctx: WgslEmitCtx): WgslKernelResult {
  const a = ctx.node.attrs as unknown as ConvAttrs & { kernel: number[] };
  const d = a.stride.length;
  const wShape = ctx.node.outputs[0]!.type.shape.map((x) => x.constValue()!);
  const F = wShape[0]!;
  const Cg = wShape[1]!;
  const G = a.groups;
  const Fg = F / G;
  const C = Cg * G;
  const K = to3(a.kernel, 1);
  const KV = K[0]! * K[1]! * K[2]!;
  const W = F * Cg * KV;
  const P = gradWeightParts(W);
  const s = to3(a.stride, 1);
  const dl = to3(a.dilation, 1);
  const pb = to3(a.padBegin, 0);
  const pe = to3(a.padEnd, 0);
  const circular = a.paddingMode === "circular" && (pb.some((p) => p > 0) || pe.some((p) => p > 0));
  const wraps = (k: number) => circular && (pb[k]! > 0 || pe[k]! > 0);
  const xShape = ctx.inShape(0);
  const dyShape = ctx.inShape(1);

  const c = new Code();
  const lets = new Lets(c);
  const f1 = flatDispatch(String(P * W));
  c.line(`let i = i32(${f1.index});`);
  c.line(`if (i >= ${P * W}) { return; }`);
  const e = P > 1 ? letLocal(c, "e", mod("i", String(W))) : "i";
  const part = P > 1 ? letLocal(c, "part", div("i", String(W))) : "0";
  // e → (f, cl, tap)
  let rest = e;
  const t: string[] = [];
  for (let k = 2; k >= 0; k--) {
    if (K[k] === 1) {
      t[k] = "0";
      continue;
    }
    const nm = DIM_NAMES[k]!.toLowerCase();
    t[k] = letLocal(c, `t${nm}`, mod(rest, String(K[k])));
    rest = letLocal(c, `e${nm}`, div(rest, String(K[k])));
  }
  const cl = letLocal(c, "cl", mod(rest, String(Cg)));
  const f = letLocal(c, "f", div(rest, String(Cg)));
  const grp = G > 1 ? letLocal(c, "grp", div(f, String(Fg))) : "0";
  // the input tap: the weight's tap index, flipped back when the kernel is flipped
  const k = t.map((tk, i) => (a.flip && K[i]! > 1 ? letLocal(c, `k${DIM_NAMES[i]!.toLowerCase()}`, `${K[i]! - 1} - ${tk}`) : tk));
  const X = to3(xShape.slice(2).map((x, i) => lets.bind(i32Of(x), `X${DIM_NAMES[3 - d + i]}`)), "1");
  const O = to3(dyShape.slice(2).map((x, i) => lets.bind(i32Of(x), `O${DIM_NAMES[3 - d + i]}`)), "1");
  const N = lets.bind(i32Of(xShape[0]!), "N");
  const inPlane = lets.bind(prod(...X), "inPlane");
  const oPlane = lets.bind(prod(...O), "outPlane");
  const xc = letLocal(c, "xc", prod(sum(prod(grp, Cg), cl), inPlane));
  // column range: o·sW − pbW + kw·dlW inside [0, XW)
  const [, , OW] = O as [string, string, string];
  const off = letLocal(c, "aw", k[2] === "0" ? String(pb[2]) : `${pb[2]} - ${prod(k[2]!, dl[2]!)}`);
  let wLo = "0";
  let wHi = OW;
  if (!wraps(2)) {
    wLo = letLocal(c, "wLo", s[2] === 1 ? `max(0, ${off})` : `max(0, ${paren(sum(off, s[2]! - 1))} / ${s[2]})`);
    const bw = letLocal(c, "bw", sum(X[2]!, -1, off));
    wHi = letLocal(c, "wHi", s[2] === 1 ? `min(${OW}, ${sum(bw, 1)})` : `select(min(${OW}, ${bw} / ${s[2]} + 1), 0, ${bw} < 0)`);
  }
  const rows = lets.bind(prod(N, O[0]!, O[1]!), "rows");
  c.line("var acc = 0.0;");
  c.open(`for (var row = ${part}; row < ${rows}; row += ${P})`);
  const oh = O[1] === "1" ? "0" : letLocal(c, "oh", mod("row", O[1]!));
  const r1 = O[1] === "1" ? "row" : letLocal(c, "r1", div("row", O[1]!));
  const od = O[0] === "1" ? "0" : letLocal(c, "od", mod(r1, O[0]!));
  const n = O[0] === "1" ? r1 : letLocal(c, "n", div(r1, O[0]!));
  const pos: string[] = [];
  const ok: string[] = [];
  for (const i of [0, 1]) {
    const o = i === 0 ? od : oh;
    const raw = sum(prod(o, s[i]!), -pb[i]!, prod(k[i]!, dl[i]!));
    if (raw === "0" && X[i] === "1") {
      pos.push("0");
      continue;
    }
    const nm = DIM_NAMES[i]!.toLowerCase();
    const rp = letLocal(c, `p${nm}`, raw);
    if (wraps(i)) pos.push(letLocal(c, `z${nm}`, `(${rp} % ${X[i]} + ${X[i]}) % ${X[i]}`));
    else {
      pos.push(rp);
      ok.push(`${rp} >= 0 && ${rp} < ${X[i]}`);
    }
  }
  if (ok.length) c.line(`if (!(${ok.join(" && ")})) { continue; }`);
  const xr = letLocal(c, "xr", sum(prod(n, C, inPlane), xc, prod(pos[0]!, X[1]!, X[2]!), prod(pos[1]!, X[2]!)));
  const yr = letLocal(c, "yr", sum(prod(sum(prod(n, F), f), oPlane), prod(od, O[1]!, OW), prod(oh, OW)));
  if (wraps(2)) {
    c.open(`for (var ow = 0; ow < ${OW}; ow++)`);
    c.line(`let pw = ((${prod("ow", s[2]!)} - ${paren(off)}) % ${X[2]} + ${X[2]}) % ${X[2]};`);
    c.line(`acc = fma(x1[${sum(yr, "ow")}], x0[${sum(xr, "pw")}], acc);`);
    c.close();
  } else {
    const xw = letLocal(c, "xw", `${xr} - ${paren(off)}`);
    c.line(`for (var ow = ${wLo}; ow < ${wHi}; ow++) { acc = fma(x1[${sum(yr, "ow")}], x0[${sum(xw, prod("ow", s[2]!))}], acc); }`);
  }
  c.close(); // rows
  c.line(P > 1 ? "t0[i] = acc;" : "y0[i] = acc;");
  const head =
    `// conv${d}d weight gradient: x [${xShape.join(", ")}], dy [${dyShape.join(", ")}] -> dw [${ctx.outShape(0).join(", ")}]; ` +
    `stride ${list(a.stride)}, dilation ${list(a.dilation)}, padding ${list(a.padBegin)}..${list(a.padEnd)}${circular ? " circular" : ""}${G > 1 ? `, groups ${G}` : ""}${a.flip ? ", flipped kernel" : ""}`;
  const main = "fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {";
  const pass1 = [
    `${head}\n// one invocation per (part, weight element): rows ≡ part mod ${P}${P > 1 ? ", partial sums to t0" : ""}`,
    "@compute @workgroup_size(64)",
    main,
    indent(c.toString()),
    "}",
  ].join("\n");
  if (P === 1) return { passes: [{ code: pass1, dispatch: f1.dispatch }] };
  const f2 = flatDispatch(String(W));
  const pass2 = [
    `// conv${d}d weight gradient, pass 2: dw[e] = the ${P} partial sums of element e, in order`,
    "@compute @workgroup_size(64)",
    main,
    indent(
      [
        `let e = i32(${f2.index});`,
        `if (e >= ${W}) { return; }`,
        "var acc = 0.0;",
        `for (var part = 0; part < ${P}; part++) { acc += t0[part * ${W} + e]; }`,
        "y0[e] = acc;",
      ].join("\n"),
    ),
    "}",
  ].join("\n");
  const scratch = [{ type: "f32", size: String(P * W) }];
  return { passes: [{ code: pass1, dispatch: f1.dispatch, scratch }, { code: pass2, dispatch: f2.dispatch, scratch }] };
}

export const kernels: WgslKernel[] = [
  { op: "conv", emit: emitConv },
  { op: "conv_transpose", emit: emitConvTranspose },
  { op: "conv_grad_input", emit: emitConvGradInput },
  { op: "conv_grad_weight", emit: emitConvGradWeight },
];

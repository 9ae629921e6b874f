// WGSL kernel template for the IR op `einsum` (compiler/ops/einsum.ts), which
// also carries `dense`, `matmul`/`@` and index notation, and for its backward
// op `diag_embed` (at the end of the file).
//
// The einsum is classified as in the JS target (compiler/codegen/js/einsum.ts,
// whose analysis is private to it, so it is re-derived here):
//
//  * GEMM: two operands whose indices split into batch (both operands and the
//    output), rows M (left and output), columns N (right and output) and a
//    non-empty reduction K (both operands, not the output). Each role may be
//    several loops with any strides (transposed operands, broadcast batch
//    dims with stride 0); a flat role index is unravelled into them. Two
//    forms of one pass:
//      "cpu" (lavapipe, SwiftShader): one invocation per register tile of up
//      to 4 × 4 outputs, the K loop innermost, no workgroup memory. Loads are
//      vec4 where an operand is contiguous along K, M or N with sizes and
//      strides that keep every vec4 aligned; otherwise scalar. Rows and columns
//      past the edge are clamped for loads (always in bounds) and skipped for
//      stores.
//      "gpu": the classic shared-memory tiled matmul, 16 × 16 outputs per
//      workgroup (64 × 1 for matrix-vector products), K tiles of 16 staged in
//      workgroup memory with barriers, zero-filled past the edges. Staging
//      loads walk whichever of the tile's dims is contiguous in memory.
//    Batch runs in z (grid-stride loops keep every dimension ≤ 65535).
//  * Everything else (diagonals, traces, 3+ operands, outer products, one
//    operand transposes and sums): one invocation per output element, looping
//    over the summed indices with static strides; operands that do not depend
//    on a summed index are loaded once, outside the loops.
//
// Every path stores its results through storeResult (epilogue.ts), so a
// fused_epilogue extends any einsum.
//
// An index's stride in a tensor is the sum of the strides of the axes it
// labels (so a repeated index walks the diagonal). Indices of static size 1
// are dropped, and neighbouring loops that walk memory as one are merged
// (dense over [N, L, in] has one row loop of N·L).

import { Dim } from "../../ir/dims.ts";
import { analyse, estimate, mergeLoops, type Analysis, type Loop } from "../einsum-loops.ts";
import { add as wgslAdd, coordinates, flatPass, mul as wgslMul } from "./elementwise.ts";
import { storeResult } from "./epilogue.ts";
import { flatDispatch, type WgslEmitCtx, type WgslKernel, type WgslKernelResult, type WgslPass } from "./kernel.ts";


/** Register tile edge of the "cpu" GEMM (outputs per invocation: up to TILE × TILE). */
const TILE = 4;
/** Invocations per workgroup of the flat-dispatched kernels. */
const WORKGROUP = 64;
/** Shared-memory tile of the "gpu" GEMM: outputs per workgroup edge and the K step. */
const SHARED_TILE = 16;
/** WebGPU's limit on workgroups per dispatch dimension. */
const MAX_GROUPS = 65535;

// ---------------------------------------------------------------------------
// Analysis: indices, sizes and strides

const isOne = (d: Dim) => d.constValue() === 1;
const isZero = (d: Dim) => d.constValue() === 0;
/** True for every value of the symbols: each monomial's coefficient is a multiple of 4. */
const multipleOf4 = (d: Dim) => d.terms.every((t) => t.coeff % 4 === 0);
const product = (loops: readonly Loop[]) => loops.reduce((p, l) => p.mul(l.size), Dim.of(1));

// ---------------------------------------------------------------------------
// GEMM classification

type Role = "batch" | "rows" | "cols" | "red";

/** A (batched) matrix product; each role's loops are outermost first. Tensors: 0 = left, 1 = right, 2 = output. */
interface GemmPlan {
  readonly batch: readonly Loop[];
  readonly rows: readonly Loop[];
  readonly cols: readonly Loop[];
  /** Reduction loops, the one contiguous in most operands innermost. */
  readonly red: readonly Loop[];
}

function planGemm(a: Analysis): GemmPlan | undefined {
  if (a.operands.length !== 2) return undefined;
  const [left, right] = a.operands as [readonly string[], readonly string[]];
  const kept = (names: readonly string[]) => names.filter((n) => a.loops.has(n));
  for (const names of [left, right]) if (new Set(kept(names)).size !== kept(names).length) return undefined;
  const roleOf = (name: string): Role | undefined => {
    const l = left.includes(name);
    const r = right.includes(name);
    const o = a.output.includes(name);
    if (l && r) return o ? "batch" : "red";
    if (o) return l ? "rows" : "cols";
    return undefined; // summed within one operand
  };
  if ([...a.loops.keys()].some((n) => roleOf(n) === undefined)) return undefined;
  const byRole = (role: Role, order: readonly string[]) => mergeLoops(order.filter((n) => roleOf(n) === role).map((n) => a.loops.get(n)!));
  const batch = byRole("batch", a.outNames);
  const rows = byRole("rows", a.outNames);
  const cols = byRole("cols", a.outNames);
  let red = byRole("red", kept(left));
  if (red.length === 0 || rows.length + cols.length === 0) return undefined;
  const contiguity = (l: Loop) => (isOne(l.strides[0]!) ? 1 : 0) + (isOne(l.strides[1]!) ? 1 : 0);
  const inner = red.reduce((best, l) => (contiguity(l) > contiguity(best) ? l : best), red[red.length - 1]!);
  red = [...red.filter((l) => l !== inner), inner];
  return { batch, rows, cols, red };
}

/**
 * Operand t can be read as vec4 along the innermost loop of `along`: stride 1
 * there, a static size that is a multiple of 4 (so an aligned group of four
 * never crosses into the next outer index, and the buffer length is a multiple
 * of 4), and every other stride of t a multiple of 4 (so groups stay aligned).
 */
function vec4Along(plan: GemmPlan, t: number, along: readonly Loop[]): boolean {
  const inner = along[along.length - 1];
  if (!inner || !isOne(inner.strides[t]!)) return false;
  const n = inner.size.constValue();
  if (n === undefined || n % 4 !== 0) return false;
  return [...plan.batch, ...plan.rows, ...plan.cols, ...plan.red].every((l) => l === inner || multipleOf4(l.strides[t]!));
}

// ---------------------------------------------------------------------------
// Code-writing helpers

/** Index names for comments (names are arbitrary strings). */
function showName(name: string): string {
  return name.replace(/[^\w…~]/g, "?");
}

function showTerm(tensor: string, names: readonly string[]): string {
  return names.length ? `${tensor}[${names.map(showName).join(", ")}]` : tensor;
}

/** `y0[i, k] = Σ_j x0[i, j] · x1[j, k]` with the original index names. */
function formula(ctx: WgslEmitCtx, a: Analysis): string {
  const summed = [...new Set(a.operands.flat())].filter((n) => !a.output.includes(n));
  const sum = summed.length ? `Σ_${summed.map(showName).join(",")} ` : "";
  return `// ${showTerm(ctx.output(0), a.output)} = ${sum}${a.operands.map((o, k) => showTerm(ctx.input(k), o)).join(" · ")}`;
}

/** The body of `fn main`: sizes and strides that are not literals become `let`s at the top. */
class Body {
  private readonly lets: string[] = [];
  private readonly letOf = new Map<string, string>();
  private readonly taken = new Set<string>();
  private readonly lines: string[] = [];
  private depth = 1;
  constructor(private readonly ctx: WgslEmitCtx) {}

  /** A dim as a WGSL u32: `28u`, or a `let` read once at the top. */
  dim(d: Dim, name: string): string {
    const c = d.constValue();
    if (c !== undefined) return `${c}u`;
    const expr = this.ctx.dim(d);
    const known = this.letOf.get(expr);
    if (known) return known;
    let unique = name;
    for (let n = 2; this.taken.has(unique); n++) unique = `${name}${n}`;
    this.taken.add(unique);
    this.letOf.set(expr, unique);
    this.lets.push(`  let ${unique} = ${expr};`);
    return unique;
  }
  line(s: string): void {
    this.lines.push(`${"  ".repeat(this.depth)}${s}`);
  }
  open(s: string): void {
    this.line(s);
    this.depth++;
  }
  close(): void {
    this.depth--;
    this.line("}");
  }
  text(): string {
    return [...this.lets, ...this.lines].join("\n");
  }
}

/** `v * s` with 0 and 1 folded (undefined for a zero stride). */
function times(v: string, s: string): string | undefined {
  if (s === "0u") return undefined;
  return s === "1u" ? v : `${v} * ${s}`;
}

/** A sum of u32 terms, `0u` when empty. */
function sum(terms: readonly (string | undefined)[]): string {
  const kept = terms.filter((t): t is string => t !== undefined && t !== "0u");
  return kept.length ? kept.join(" + ") : "0u";
}

/** Parenthesise an expression unless it is a name or a literal. */
function atom(e: string): string {
  return /^\w+$/.test(e) ? e : `(${e})`;
}

/**
 * Offset in tensor t of the flat index `v` over `loops` (outermost first):
 * Σ_j ((v / inner_j) % size_j) · stride_j, with trivial divisions and the
 * outermost modulo left out.
 */
function unravelOffset(w: Body, loops: readonly Loop[], t: number, v: string, tag: string): string {
  const terms: (string | undefined)[] = [];
  let inner = Dim.of(1);
  for (let j = loops.length - 1; j >= 0; j--) {
    const l = loops[j]!;
    const stride = l.strides[t]!;
    if (!isZero(stride)) {
      let idx = atom(v);
      if (!isOne(inner)) idx = `(${idx} / ${w.dim(inner, `inner_${tag}${j}`)})`;
      if (j > 0) idx = `(${idx} % ${w.dim(l.size, `size_${tag}${j}`)})`;
      terms.unshift(times(idx, w.dim(stride, `stride${t}_${tag}${j}`)));
    }
    inner = inner.mul(l.size);
  }
  return sum(terms);
}

const LANE = ["x", "y", "z", "w"];

/**
 * For an epilogue's store sites: the coordinate along output dim `dim` when
 * the dim is a role's only loop (its index variable in `vars`), 0 when the dim
 * has static size 1, else unknown (the epilogue derives it from the flat index).
 */
function outCoord(a: Analysis, plan: GemmPlan, vars: Readonly<Record<"batch" | "rows" | "cols", string>>): (dim: number) => string | undefined {
  return (dim) => {
    const name = a.output[dim]!;
    if (!a.loops.has(name)) return "0u";
    for (const role of ["batch", "rows", "cols"] as const) {
      const loops = plan[role];
      if (loops.length === 1 && loops[0]!.names.length === 1 && loops[0]!.names[0] === name) return vars[role];
    }
    return undefined;
  };
}

// ---------------------------------------------------------------------------
// GEMM, "cpu" form: a register tile per invocation

/** How an operand's values of one K step (or four) are loaded: vec4 along K, along its own output role, or scalars. */
type LoadMode = "k4" | "own4" | "scalar";

interface CpuGemm {
  readonly code: string;
  readonly dispatch: [string, string];
  readonly bindingTypes: Record<string, string>;
}

/** Tile edge along a role: 1 when the role is absent, its static size when smaller than `max`. */
function tileEdge(loops: readonly Loop[], max: number): number {
  if (loops.length === 0) return 1;
  const n = product(loops).constValue();
  return n !== undefined && n < max ? n : max;
}

function emitCpuGemm(ctx: WgslEmitCtx, a: Analysis, plan: GemmPlan): CpuGemm {
  const w = new Body(ctx);
  const [X, Y, OUT] = [0, 1, 2];
  const M = product(plan.rows);
  const N = product(plan.cols);
  const K = product(plan.red);
  const NB = product(plan.batch);
  const TM = tileEdge(plan.rows, TILE);
  const TN = tileEdge(plan.cols, TILE);
  // vec4 along the operand's own role: whole tiles of aligned groups of four inside the innermost loop.
  const ownVec4 = (t: number, own: readonly Loop[], edge: number) =>
    edge % 4 === 0 && vec4Along(plan, t, own) && own[own.length - 1]!.size.constValue()! % edge === 0;
  const modeOf = (t: number, own: readonly Loop[], edge: number): LoadMode =>
    vec4Along(plan, t, plan.red) ? "k4" : ownVec4(t, own, edge) ? "own4" : "scalar";
  const modes = [modeOf(X, plan.rows, TM), modeOf(Y, plan.cols, TN)] as const;
  const KU = modes.includes("k4") ? 4 : 1;

  const tilesM = Dim.ceildiv(M, TM);
  const tilesN = Dim.ceildiv(N, TN);
  const count = NB.mul(tilesM).mul(tilesN);
  const flat = flatDispatch(ctx.dimJs(count), WORKGROUP);
  const sM = w.dim(M, "M");
  const sN = w.dim(N, "N");
  const sK = w.dim(K, "K");
  const sTilesN = w.dim(tilesN, "tiles_n");
  w.line(`let tile = ${flat.index};`);
  w.line(`if (tile >= ${w.dim(count, "tiles")}) { return; }`);
  const tm = tilesM.constValue() === 1 ? "0u" : sTilesN === "1u" ? "tile" : `tile / ${sTilesN}`;
  const tmExpr = NB.constValue() === 1 || tm === "0u" ? tm : `${atom(tm)} % ${w.dim(tilesM, "tiles_m")}`;
  const tnExpr = sTilesN === "1u" ? "0u" : `tile % ${sTilesN}`;
  if (plan.batch.length) w.line(`let b = tile / ${w.dim(tilesM.mul(tilesN), "tiles_mn")};`);
  w.line(`let m0 = ${TM === 1 || tmExpr === "0u" ? tmExpr : `${atom(tmExpr)} * ${TM}u`};`);
  w.line(`let n0 = ${TN === 1 || tnExpr === "0u" ? tnExpr : `${atom(tnExpr)} * ${TN}u`};`);

  const batchOffset = (t: number) => (plan.batch.length ? unravelOffset(w, plan.batch, t, "b", "b") : "0u");
  const guardRows = TM > 1 && !(M.constValue() !== undefined && M.constValue()! % TM === 0);
  const guardCols = TN > 1 && !(N.constValue() !== undefined && N.constValue()! % TN === 0);
  // Row and column indices of the tile, clamped so that loads stay in bounds.
  for (let r = 1; r < TM; r++) w.line(`let m${r} = ${guardRows ? `min(m0 + ${r}u, ${sM} - 1u)` : `m0 + ${r}u`};`);
  for (let c = 1; c < TN; c++) w.line(`let n${c} = ${guardCols ? `min(n0 + ${c}u, ${sN} - 1u)` : `n0 + ${c}u`};`);

  // Base offsets: per row of the left operand and per column of the right one (per group of four for own4).
  const bases = (t: number, own: readonly Loop[], edge: number, v: string, tag: string) => {
    const batch = batchOffset(t);
    const step = modes[t] === "own4" ? 4 : 1;
    const names: string[] = [];
    for (let i = 0; i < edge; i += step) {
      const name = `${tag}${i / step}`;
      w.line(`let ${name} = ${sum([batch === "0u" ? undefined : batch, unravelOffset(w, own, t, `${v}${i}`, v)])};`);
      names.push(name);
    }
    return names;
  };
  const baseX = bases(X, plan.rows, TM, "m", "xa");
  const baseY = bases(Y, plan.cols, TN, "n", "xb");

  const accs: string[][] = [];
  for (let r = 0; r < TM; r++) accs.push(Array.from({ length: TN }, (_, c) => `acc${r}${c}`));
  for (const row of accs) w.line(row.map((s) => `var ${s} = 0.0;`).join(" "));
  // The K loop stays inside one innermost reduction row when stepping by 4 (its size is then a multiple of 4).
  w.open(`for (var k = 0u; k < ${sK}; k += ${KU}u) {`);
  const innerRed = plan.red[plan.red.length - 1]!;
  const kOffsets = (t: number, tag: string) => {
    const base = unravelOffset(w, plan.red, t, "k", "k");
    const name = `${tag}0`;
    const offs = [name];
    w.line(`let ${name} = ${base};`);
    const step = w.dim(innerRed.strides[t]!, `stride${t}_kin`);
    for (let kk = 1; kk < KU; kk++) offs.push(`${name} + ${step === "1u" ? `${kk}u` : /^\d+u$/.test(step) ? `${kk * Number(step.slice(0, -1))}u` : `${kk}u * ${step}`}`);
    return offs;
  };
  const kx = kOffsets(X, "ka");
  const ky = kOffsets(Y, "kb");

  /** Loads operand t for this K step; returns the accessor of value (own index i, k step kk). */
  const load = (t: number, edge: number, base: readonly string[], koff: readonly string[], tag: string): ((i: number, kk: number) => string) => {
    const buf = ctx.input(t);
    if (modes[t] === "k4") {
      for (let i = 0; i < edge; i++) w.line(`let ${tag}${i} = ${buf}[(${base[i]} + ${koff[0]}) / 4u];`);
      return (i, kk) => `${tag}${i}.${LANE[kk]}`;
    }
    if (modes[t] === "own4") {
      for (let kk = 0; kk < KU; kk++) w.line(base.map((b, g) => `let ${tag}k${kk}_${g} = ${buf}[(${b} + ${koff[kk]}) / 4u];`).join(" "));
      return (i, kk) => `${tag}k${kk}_${i >> 2}.${LANE[i & 3]}`;
    }
    for (let kk = 0; kk < KU; kk++) {
      w.line(Array.from({ length: edge }, (_, i) => `let ${tag}${i}_${kk} = ${buf}[${sum([base[i], koff[kk]])}];`).join(" "));
    }
    return (i, kk) => `${tag}${i}_${kk}`;
  };
  const xv = load(X, TM, baseX, kx, "a");
  const yv = load(Y, TN, baseY, ky, "b");
  for (let r = 0; r < TM; r++) {
    for (let c = 0; c < TN; c++) {
      const terms = Array.from({ length: KU }, (_, kk) => `${xv(r, kk)} * ${yv(c, kk)}`);
      w.line(`acc${r}${c} += ${terms.join(" + ")};`);
    }
  }
  w.close();

  // Stores, skipping rows and columns past the edge.
  const outBatch = batchOffset(OUT);
  for (let c = 0; c < TN; c++) w.line(`let oc${c} = ${unravelOffset(w, plan.cols, OUT, `n${c}`, "n")};`);
  for (let r = 0; r < TM; r++) {
    const row = sum([outBatch, unravelOffset(w, plan.rows, OUT, `m${r}`, "m")]);
    if (guardRows && r > 0) w.open(`if (m0 + ${r}u < ${sM}) {`);
    w.line(`let or${r} = ${row};`);
    for (let c = 0; c < TN; c++) {
      const site = { flat: sum([`or${r}`, `oc${c}`]), coord: outCoord(a, plan, { batch: "b", rows: `m${r}`, cols: `n${c}` }) };
      const store = storeResult(ctx, site, `acc${r}${c}`).join(" ");
      w.line(guardCols && c > 0 ? `if (n0 + ${c}u < ${sN}) { ${store} }` : store);
    }
    if (guardRows && r > 0) w.close();
  }

  const how = (t: number) => (modes[t] === "k4" ? "vec4 along the reduction" : modes[t] === "own4" ? `vec4 along ${t === X ? "rows" : "columns"}` : "scalar");
  const code = [
    formula(ctx, a),
    `// GEMM (register tile): ${TM} × ${TN} outputs per invocation, K step ${KU}; ${ctx.input(0)} ${how(X)}, ${ctx.input(1)} ${how(Y)} loads`,
    `@compute @workgroup_size(${WORKGROUP})`,
    "fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {",
    w.text(),
    "}",
  ].join("\n");
  const bindingTypes: Record<string, string> = {};
  if (modes[X] !== "scalar") bindingTypes[ctx.input(0)] = "vec4<f32>";
  if (modes[Y] !== "scalar") bindingTypes[ctx.input(1)] = "vec4<f32>";
  return { code, dispatch: flat.dispatch, bindingTypes };
}

// ---------------------------------------------------------------------------
// GEMM, "gpu" form: shared-memory tiles

/**
 * `vec4` lists the operands bound as vec4<f32> for the "cpu" form (binding
 * types are per pass, not per variant); this form reads single elements of them.
 */
function emitGpuGemm(ctx: WgslEmitCtx, a: Analysis, plan: GemmPlan, vec4: Readonly<Record<string, string>>): { code: string; dispatch: [string, string, string] } {
  const w = new Body(ctx);
  const [X, Y, OUT] = [0, 1, 2];
  const M = product(plan.rows);
  const N = product(plan.cols);
  const K = product(plan.red);
  const NB = product(plan.batch);
  // Workgroup = BM × BN outputs, one per invocation (a matrix-vector product gets a 64-long strip).
  const [BM, BN] = plan.cols.length === 0 ? [WORKGROUP, 1] : plan.rows.length === 0 ? [1, WORKGROUP] : [SHARED_TILE, SHARED_TILE];
  const kStatic = K.constValue();
  const BK = kStatic !== undefined && kStatic < SHARED_TILE ? kStatic : SHARED_TILE;
  const threads = BM * BN;
  const tilesM = Dim.ceildiv(M, BM);
  const tilesN = Dim.ceildiv(N, BN);
  const sM = w.dim(M, "M");
  const sN = w.dim(N, "N");
  const sK = w.dim(K, "K");

  const batched = plan.batch.length > 0;
  if (batched) {
    w.open(`for (var b = wid.z; b < ${w.dim(NB, "NB")}; b += nwg.z) {`);
    w.line(`let xa = ${unravelOffset(w, plan.batch, X, "b", "b")};`);
    w.line(`let xb = ${unravelOffset(w, plan.batch, Y, "b", "b")};`);
    w.line(`let ob = ${unravelOffset(w, plan.batch, OUT, "b", "b")};`);
  }
  const [xa, xb, ob] = batched ? ["xa", "xb", "ob"] : ["0u", "0u", "0u"];
  w.open(`for (var tm = wid.y; tm < ${w.dim(tilesM, "tiles_m")}; tm += nwg.y) {`);
  w.open(`for (var tn = wid.x; tn < ${w.dim(tilesN, "tiles_n")}; tn += nwg.x) {`);
  w.line(`let m = tm * ${BM}u + lid.y;`);
  w.line(`let n = tn * ${BN}u + lid.x;`);
  w.line("var acc = 0.0;");
  w.open(`for (var k0 = 0u; k0 < ${sK}; k0 += ${BK}u) {`);

  /** Stage operand t's [own × BK] tile; consecutive invocations walk the dim that is contiguous in memory. */
  const stage = (t: number, own: readonly Loop[], edge: number, first: string, sOwn: string, shared: string, base: string, v: string) => {
    const ownInner = own[own.length - 1];
    const kFirst = isOne(plan.red[plan.red.length - 1]!.strides[t]!) || !(ownInner && isOne(ownInner.strides[t]!));
    const elems = edge * BK;
    w.open(`for (var e = li; e < ${elems}u; e += ${threads}u) {`);
    // Layout in workgroup memory: X as [m][k], Y as [k][n].
    if (kFirst) w.line(`let i = e / ${BK}u; let kk = e % ${BK}u;`);
    else w.line(`let kk = e / ${edge}u; let i = e % ${edge}u;`);
    w.line(`let g = ${first} * ${edge}u + i; let gk = k0 + kk;`);
    w.line("var v = 0.0;");
    const ownOff = own.length ? unravelOffset(w, own, t, "g", v) : "0u";
    const kOff = unravelOffset(w, plan.red, t, "gk", "k");
    const inBounds = [own.length ? `g < ${sOwn}` : undefined, kStatic !== undefined && kStatic % BK === 0 ? undefined : `gk < ${sK}`].filter(Boolean);
    const at = sum([base, ownOff, kOff]);
    const buf = ctx.input(t);
    const read = vec4[buf] ? `let at = ${at}; v = ${buf}[at / 4u][at % 4u];` : `v = ${buf}[${at}];`;
    w.line(inBounds.length ? `if (${inBounds.join(" && ")}) { ${read} }` : read);
    w.line(t === X ? `${shared}[i * ${BK}u + kk] = v;` : `${shared}[kk * ${edge}u + i] = v;`);
    w.close();
  };
  stage(X, plan.rows, BM, "tm", sM, "tile_x", xa, "m");
  stage(Y, plan.cols, BN, "tn", sN, "tile_y", xb, "n");
  w.line("workgroupBarrier();");
  w.open(`for (var kk = 0u; kk < ${BK}u; kk++) {`);
  w.line(`acc += tile_x[lid.y * ${BK}u + kk] * tile_y[kk * ${BN}u + lid.x];`);
  w.close();
  w.line("workgroupBarrier();");
  w.close();
  const out = sum([ob, plan.rows.length ? unravelOffset(w, plan.rows, OUT, "m", "m") : undefined, plan.cols.length ? unravelOffset(w, plan.cols, OUT, "n", "n") : undefined]);
  const guard = [plan.rows.length ? `m < ${sM}` : undefined, plan.cols.length ? `n < ${sN}` : undefined].filter(Boolean);
  const store = storeResult(ctx, { flat: out, coord: outCoord(a, plan, { batch: "b", rows: "m", cols: "n" }) }, "acc").join(" ");
  w.line(guard.length ? `if (${guard.join(" && ")}) { ${store} }` : store);
  w.close();
  w.close();
  if (batched) w.close();

  const code = [
    formula(ctx, a),
    `// GEMM (shared-memory tiles): ${BM} × ${BN} outputs per workgroup, K tiles of ${BK}`,
    `var<workgroup> tile_x: array<f32, ${BM * BK}>;`,
    `var<workgroup> tile_y: array<f32, ${BK * BN}>;`,
    `@compute @workgroup_size(${BN}, ${BM})`,
    "fn main(@builtin(local_invocation_id) lid: vec3u, @builtin(local_invocation_index) li: u32, @builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u) {",
    w.text(),
    "}",
  ].join("\n");
  const groups = (d: Dim) => {
    const c = d.constValue();
    return c !== undefined ? String(Math.min(c, MAX_GROUPS)) : `Math.min(${ctx.dimJs(d)}, ${MAX_GROUPS})`;
  };
  return { code, dispatch: [groups(tilesN), groups(tilesM), groups(NB)] };
}

// ---------------------------------------------------------------------------
// General strided loop nest: one invocation per output element

function emitGeneral(ctx: WgslEmitCtx, a: Analysis): WgslPass {
  const w = new Body(ctx);
  const K = a.operands.length;
  const outLoops = mergeLoops(a.outNames.map((n) => a.loops.get(n)!));
  // Summed loops with the largest stride outermost, so the innermost walks memory most closely.
  const weight = (l: Loop) => Math.max(...l.strides.slice(0, K).map(estimate));
  const sumLoops = mergeLoops([...a.sumNames.map((n) => a.loops.get(n)!)].sort((p, q) => weight(q) - weight(p)));
  const total = product(outLoops);
  const flat = flatDispatch(ctx.dimJs(total), WORKGROUP);

  w.line(`let i = ${flat.index};`);
  w.line(`if (i >= ${w.dim(total, "total")}) { return; }`);
  const offsets = a.operands.map((_, t) => unravelOffset(w, outLoops, t, "i", "o"));
  offsets.forEach((o, t) => {
    if (!/^\w+$/.test(o) && sumLoops.some((l) => !isZero(l.strides[t]!))) {
      w.line(`let o${t} = ${o};`);
      offsets[t] = `o${t}`;
    }
  });
  // Each operand is loaded in the deepest summed loop it depends on (-1: before the loops); partial products are hoisted there.
  const deepest = a.operands.map((_, t) => sumLoops.reduce((d, l, level) => (isZero(l.strides[t]!) ? d : level), -1));
  const load = (t: number) => `${ctx.input(t)}[${offsets[t]}]`;
  const productAt = (level: number, partial: string | undefined) =>
    [...(partial ? [partial] : []), ...a.operands.map((_, t) => t).filter((t) => deepest[t] === level).map(load)].join(" * ") || undefined;
  const before = productAt(-1, undefined);

  if (sumLoops.length === 0) {
    for (const l of storeResult(ctx, { flat: "i" }, before ?? "1.0")) w.line(l);
  } else {
    w.line("var acc = 0.0;");
    let partial: string | undefined;
    sumLoops.forEach((loop, level) => {
      const v = `s${level}`;
      w.open(`for (var ${v} = 0u; ${v} < ${w.dim(loop.size, `size_s${level}`)}; ${v}++) {`);
      const innermost = level === sumLoops.length - 1;
      a.operands.forEach((_, t) => {
        const step = times(v, w.dim(loop.strides[t]!, `stride${t}_s${level}`));
        if (!step) return;
        const expr = sum([offsets[t], step]);
        if (innermost || deepest[t] === level) offsets[t] = expr;
        else {
          w.line(`let o${t}_${level} = ${expr};`);
          offsets[t] = `o${t}_${level}`;
        }
      });
      if (innermost) return;
      const p = productAt(level, partial);
      if (p !== partial) {
        w.line(`let p${level} = ${p};`);
        partial = `p${level}`;
      }
    });
    w.line(`acc += ${productAt(sumLoops.length - 1, partial) ?? partial};`);
    for (const _ of sumLoops) w.close();
    for (const l of storeResult(ctx, { flat: "i" }, before ? `${before} * acc` : "acc")) w.line(l);
  }
  const show = (ls: readonly Loop[]) => ls.map((l) => l.names.map(showName).join(" ")).join(", ");
  const code = [
    formula(ctx, a),
    `// loop nest: one invocation per output element${outLoops.length ? ` (${show(outLoops)})` : ""}${sumLoops.length ? `, summing ${show(sumLoops)}` : ""}`,
    `@compute @workgroup_size(${WORKGROUP})`,
    "fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {",
    w.text(),
    "}",
  ].join("\n");
  return { code, dispatch: flat.dispatch };
}

// ---------------------------------------------------------------------------

export const einsumKernel: WgslKernel = {
  op: "einsum",
  emit(ctx) {
    const a = analyse(ctx.node);
    const plan = planGemm(a);
    if (!plan) return { passes: [emitGeneral(ctx, a)] };
    const cpu = emitCpuGemm(ctx, a, plan);
    const gpu = emitGpuGemm(ctx, a, plan, cpu.bindingTypes);
    return {
      passes: [
        {
          code: gpu.code,
          dispatch: gpu.dispatch,
          variants: { cpu: { code: cpu.code, dispatch: cpu.dispatch }, gpu: { code: gpu.code, dispatch: gpu.dispatch } },
          bindingTypes: cpu.bindingTypes,
        },
      ],
    };
  },
};

// ---------------------------------------------------------------------------
// diag_embed (backward of an einsum operand with a repeated index)

/**
 * y0[output names] = x0[input names] where the axes sharing a name agree, else
 * 0. A gather: one invocation per output element finds its coordinates, checks
 * that every repeated name has one coordinate, and reads the input element at
 * the first axis of each name (no scatter, no zeroing pass).
 */
function emitDiagEmbed(ctx: WgslEmitCtx): WgslKernelResult {
  const { input, output } = ctx.node.attrs as unknown as { input: readonly string[]; output: readonly string[] };
  const inShape = ctx.node.inputs[0]!.type.shape;
  const outShape = ctx.node.outputs[0]!.type.shape;
  const pass = flatPass(ctx, ctx.outSizeJs(0), (w) => w.numel(outShape, "n"), (w) => {
    const sizes = outShape.map((d, axis) => w.dim(d, `out${axis}`));
    const c = coordinates(w, sizes, "i", sizes.map(() => true));
    const first = input.map((name) => output.indexOf(name));
    const same = output.flatMap((name, axis) => (first[input.indexOf(name)] === axis ? [] : [`${c[axis]} == ${c[first[input.indexOf(name)]!]}`]));
    const inStrides = inShape.map((_, j) => w.numel(inShape.slice(j + 1), `inStride${j}`));
    const at = first.reduce((acc, axis, j) => wgslAdd(acc, wgslMul(c[axis]!, inStrides[j]!)), "0u");
    w.line(`// ${showTerm(ctx.output(0), output)} = ${showTerm(ctx.input(0), input)} on the diagonal, 0 elsewhere`);
    w.line(`y0[i] = select(0.0, x0[${at}], ${same.length ? same.join(" && ") : "true"});`);
  });
  return { passes: [pass] };
}

export const kernels: WgslKernel[] = [einsumKernel, { op: "diag_embed", emit: emitDiagEmbed }];

// JS kernels for the convolution family: `conv` and `conv_transpose`
// (compiler/ops/conv.ts holds the reference semantics these must match).
//
// conv is a direct "accumulate rows" convolution:
//  * each sample is copied once into zero- (or circularly) padded planes, so
//    no tap ever tests a bound (when there is no padding the input is read in place);
//  * a block of FB filters of one group is accumulated at once, in float64,
//    into FB output planes (or rows, when planes are large): every input value
//    loaded feeds FB filters;
//  * the trailing kernel dims are unrolled (up to convTuning.maxUnrolledTaps taps) with
//    their weights hoisted into locals, and the innermost loop runs along the
//    output row; with stride 1 and dilation 1 the row's inputs slide through
//    registers, so each input value is loaded once per kernel row.
// conv_transpose scatters each input row into the output planes, with the
// valid input range of every tap computed once per tap (no per-element tests).
// conv_grad_input and conv_grad_weight (conv's backward ops) are described at
// their templates below.

import type { ConvAttrs, ConvTransposeAttrs } from "../../ops/conv.ts";
import { pooledPlaneLines, storeResult, type StoreSite } from "./epilogue.ts";
import type { JsEmitCtx, JsKernel } from "./kernel.ts";
import { emitConvGemm } from "./conv-gemm.ts";
import { emitConvFft } from "./conv-fft.ts";

/**
 * Code-shape knobs of the conv template, measured on V8 (Node 20): for a 3×3
 * conv with 64 filters, blocks of 8 filters (72 weights in locals) ran about
 * twice as fast as single filters; row and plane accumulators were on par.
 */
export const convTuning = {
  /** Most taps unrolled into the inner loop body (3×3×3 fits). */
  maxUnrolledTaps: 27,
  /** Most weights held in locals by the inner loop (filters per block × unrolled taps). */
  maxBlockWeights: 72,
  /** Largest accumulator (in doubles) kept as whole output planes; beyond, one row per filter. */
  maxPlaneAcc: 16384,
};

// ---------------------------------------------------------------------------
// Small code-building helpers, shared with pool.ts
// ---------------------------------------------------------------------------

/** Lines of JS with indentation managed by open/close. */
export class Code {
  private readonly lines: string[] = [];
  private depth = 0;
  line(s: string): void {
    this.lines.push(s.length ? "  ".repeat(this.depth) + s : "");
  }
  open(head: string): void {
    this.line(`${head} {`);
    this.depth++;
  }
  close(): void {
    this.depth--;
    this.line("}");
  }
  toString(): string {
    return this.lines.join("\n");
  }
}

export const isLiteral = (e: string): boolean => /^-?\d+$/.test(e);
const isAtom = (e: string): boolean => /^[\w.]+(\[[\w.]+\])?$/.test(e);
const paren = (e: string): string => (isAtom(e) ? e : `(${e})`);

/** A sum of JS terms, folding the literal ones. */
export function sum(...terms: readonly (string | number)[]): string {
  let k = 0;
  const rest: string[] = [];
  for (const t of terms) {
    const s = String(t);
    if (isLiteral(s)) k += Number(s);
    else rest.push(s);
  }
  if (!rest.length) return String(k);
  const head = rest.join(" + ");
  return k > 0 ? `${head} + ${k}` : k < 0 ? `${head} - ${-k}` : head;
}

/** A product of JS factors, folding the literal ones. */
export function prod(...factors: readonly (string | number)[]): string {
  let k = 1;
  const rest: string[] = [];
  for (const f of factors) {
    const s = String(f);
    if (isLiteral(s)) k *= Number(s);
    else rest.push(paren(s));
  }
  if (k === 0) return "0";
  if (!rest.length) return String(k);
  return (k === 1 ? rest : [String(k), ...rest]).join(" * ");
}

/**
 * Size expressions bound once to local consts at the top of a kernel: a
 * literal stays a literal, an expression over S gets a name (the same
 * expression asked twice, e.g. x's and the mask's `S.L`, shares one const).
 */
export class Sizes {
  private readonly byExpr = new Map<string, string>();
  private readonly used = new Set<string>();
  constructor(private readonly code: Code) {}
  bind(expr: string, name: string): string {
    if (isLiteral(expr)) return expr;
    const known = this.byExpr.get(expr);
    if (known) return known;
    if (/^[A-Za-z_]\w*$/.test(expr)) return expr;
    let unique = name;
    for (let i = 2; this.used.has(unique); i++) unique = `${name}${i}`;
    this.used.add(unique);
    this.byExpr.set(expr, unique);
    this.code.line(`const ${unique} = ${expr};`);
    return unique;
  }
}

/** Row-major strides of a shape and its element count, as expressions (compound ones bound to consts). */
export function stridesOf(shape: readonly string[], sizes: Sizes, prefix: string, totalName: string): { strides: string[]; total: string } {
  const strides = new Array<string>(shape.length);
  let s = "1";
  for (let i = shape.length - 1; i >= 0; i--) {
    strides[i] = s;
    s = sizes.bind(prod(shape[i]!, s), i === 0 ? totalName : `${prefix}${i - 1}`);
  }
  return { strides, total: s };
}

/** Upper-case size names and lower-case loop names of the spatial dims. */
export function spatialNames(d: number): string[] {
  return d === 1 ? ["L"] : d === 2 ? ["H", "W"] : d === 3 ? ["D", "H", "W"] : Array.from({ length: d }, (_, i) => `S${i}`);
}

/** All index tuples of a static shape, row-major. */
function tuples(shape: readonly number[]): number[][] {
  let out: number[][] = [[]];
  for (const n of shape) out = out.flatMap((t) => Array.from({ length: n }, (_, i) => [...t, i]));
  return out;
}

export const list = (xs: readonly number[]): string => `[${xs.join(", ")}]`;

/** The runtime twin of the reference's "window larger than the padded input" check, for symbolic sizes. */
export function emitWindowGuard(code: Code, what: string, kernel: readonly number[], dilation: readonly number[], inSizes: readonly string[], outSizes: readonly string[], padTotal: readonly number[]): void {
  for (let i = kernel.length - 1; i >= 0; i--) {
    if (isLiteral(outSizes[i]!)) continue;
    const eff = dilation[i]! * (kernel[i]! - 1) + 1;
    const dilated = eff === kernel[i] ? "" : ` (dilated to ${eff})`;
    code.line(`if (${outSizes[i]} < 1) T.fail("${what} ${kernel[i]}${dilated} is larger than the padded input " + (${sum(inSizes[i]!, padTotal[i]!)}) + " along dim ${2 + i}");`);
  }
}

/**
 * What every kernel over conv's weight layout [F, C/G, ...K] starts from: the
 * channel and group counts, kernel sizes and strides, padding kind, the code
 * buffer and the spatial loop names. `K` defaults to the weight's spatial dims.
 */
export function convFrame(a: ConvAttrs, wShape: readonly string[], K: readonly number[] = wShape.slice(2).map(Number)) {
  const d = a.stride.length;
  const code = new Code();
  const names = spatialNames(d);
  const F = Number(wShape[0]);
  const Cg = Number(wShape[1]);
  const G = a.groups;
  const padded = a.padBegin.some((p) => p > 0) || a.padEnd.some((p) => p > 0);
  return {
    d,
    last: d - 1,
    code,
    sizes: new Sizes(code),
    names,
    low: names.map((n) => n.toLowerCase()),
    K,
    F,
    Cg,
    G,
    Fg: F / G,
    C: Cg * G,
    KV: K.reduce((p, k) => p * k, 1),
    kStride: K.map((_, i) => K.slice(i + 1).reduce((p, k) => p * k, 1)),
    padded,
    circular: padded && a.paddingMode === "circular",
  };
}

// ---------------------------------------------------------------------------
// conv
// ---------------------------------------------------------------------------

function emitConv(ctx: JsEmitCtx): string {
  const a = ctx.node.attrs as unknown as ConvAttrs;
  // The algorithm the conv-algorithm pass chose (compiler/passes/conv-algorithm.ts); unset = direct.
  // The GEMM and FFT kernels plan their tiles and transforms for static spatial sizes.
  const staticSpatial = [...ctx.inShape(0).slice(2), ...ctx.outShape(0).slice(2)].every(isLiteral);
  if (a.algorithm === "implicit_gemm" && staticSpatial) return emitConvGemm(ctx);
  if (a.algorithm === "fft" && staticSpatial) return emitConvFft(ctx);
  const wShape = ctx.inShape(1);
  const { d, last, code, sizes, names, low, K, F, Cg, G, Fg, C, KV, padded, circular } = convFrame(a, wShape);

  const xShape = ctx.inShape(0);
  const yShape = ctx.outShape(0);
  code.line(
    `// conv${d}d: x [${xShape.join(", ")}] * w [${wShape.join(", ")}] -> y [${yShape.join(", ")}]; stride ${list(a.stride)}, dilation ${list(a.dilation)}, ` +
      `padding ${list(a.padBegin)}..${list(a.padEnd)}${circular ? " circular" : ""}${G > 1 ? `, groups ${G}` : ""}${a.flip ? ", flipped kernel" : ""}`,
  );
  const N = sizes.bind(xShape[0]!, "N");
  const X = names.map((nm, i) => sizes.bind(xShape[2 + i]!, nm));
  const O = names.map((nm, i) => sizes.bind(yShape[2 + i]!, `O${nm}`));
  emitWindowGuard(code, "kernel", K, a.dilation, X, O, a.padBegin.map((p, i) => p + a.padEnd[i]!));
  const XP = padded ? names.map((nm, i) => sizes.bind(sum(X[i]!, a.padBegin[i]! + a.padEnd[i]!), `${nm}P`)) : X;
  const { strides: xStride, total: xPlane } = stridesOf(XP, sizes, "xStride", "xPlane");
  const { strides: inStride, total: inPlane } = padded ? stridesOf(X, sizes, "inStride", "inPlane") : { strides: xStride, total: xPlane };
  const { strides: oStride, total: oPlane } = stridesOf(O, sizes, "oStride", "oPlane");

  // Trailing kernel dims unrolled into the inner loop body; the others become tap loops.
  let U = 0;
  while (U < d && K.slice(d - U - 1).reduce((p, k) => p * k, 1) <= convTuning.maxUnrolledTaps) U++;
  const unrolledK = K.slice(d - U);
  const UT = unrolledK.reduce((p, k) => p * k, 1);
  const FB = [8, 4, 2, 1].find((b) => Fg % b === 0 && b * UT <= convTuning.maxBlockWeights) ?? 1;
  const byRow = d > 1 && !(isLiteral(oPlane) && FB * Number(oPlane) <= convTuning.maxPlaneAcc);
  const accLen = byRow ? O[last]! : oPlane;
  const sliding = U >= 1 && a.stride[last] === 1 && a.dilation[last] === 1 && K[last]! >= 2;
  const kStride = K.map((_, i) => K.slice(i + 1).reduce((p, k) => p * k, 1));
  const flipped = (i: number, k: string): string => (a.flip ? `${K[i]! - 1} - ${k}` : k);
  const flippedTap = (i: number, k: number): number => (a.flip ? K[i]! - 1 - k : k);

  const src = padded ? "xp" : "x0";
  if (padded) {
    code.line(`// each sample is copied once into ${circular ? "circularly" : "zero"}-padded planes, so no tap tests a bound`);
    code.line(`const xp = new Float32Array(${prod(C, xPlane)});`);
  }
  code.line(`// ${FB} filter${FB > 1 ? "s" : ""} accumulated at once, in double, one output ${byRow ? "row" : "plane"} each`);
  code.line(`const acc = new Float64Array(${prod(FB, accLen)});`);
  const accOff = range(FB, (j) => sizes.bind(prod(j, accLen), `off${j}`));

  code.open(`for (let n = 0; n < ${N}; n++)`);
  if (padded) emitPaddedCopy(code, { d, C, X, XP, xStride, xPlane, inStride, inPlane, padBegin: a.padBegin, padEnd: a.padEnd, circular, names: low });
  const xn = padded ? "0" : bindLocal(code, "xn", prod("n", C, xPlane));
  if (G > 1) code.open(`for (let g = 0; g < ${G}; g++)`);
  code.open(`for (let fl = 0; fl < ${Fg}; fl += ${FB})`);
  const f = G > 1 ? bindLocal(code, "f", sum(prod("g", Fg), "fl")) : "fl";
  if (a.hasBias) code.line(`const ${range(FB, (j) => `b${j} = x2[${sum(f, j)}]`).join(", ")};`);
  const initAcc = () => {
    code.open(`for (let i = 0; i < ${accLen}; i++)`);
    for (let j = 0; j < FB; j++) code.line(`acc[${sum(accOff[j]!, "i")}] = ${a.hasBias ? `b${j}` : "0"};`);
    code.close();
  };
  // Output loops over all but the innermost spatial dim: x offsets (stride rows) and output offsets.
  const openOutputLoops = (xBase: string): { xOut: string; aOut: string } => {
    let xb = xBase;
    let ab = "0";
    for (let i = 0; i < last; i++) {
      const o = `o${low[i]}`;
      code.open(`for (let ${o} = 0; ${o} < ${O[i]}; ${o}++)`);
      xb = bindLocal(code, `x${low[i]}`, sum(xb, prod(o, a.stride[i]!, xStride[i]!)));
      ab = bindLocal(code, `a${low[i]}`, sum(ab, prod(o, oStride[i]!)));
    }
    return { xOut: xb, aOut: ab };
  };
  const closeOutputLoops = () => {
    for (let i = 0; i < last; i++) code.close();
  };

  // By rows, the output loops enclose the channel loop (x offsets without the channel base).
  const rowLoops = byRow ? openOutputLoops("0") : undefined;
  initAcc();
  code.open(`for (let cl = 0; cl < ${Cg}; cl++)`);
  const channel = G > 1 ? sum(prod("g", Cg), "cl") : "cl";
  const xc = bindLocal(code, "xc", sum(xn, prod(channel, xPlane)));
  code.line(`const ${range(FB, (j) => `wb${j} = ${j ? sum("wb0", j * Cg * KV) : prod(sum(prod(f, Cg), "cl"), KV)}`).join(", ")};`);
  // Tap loops over the kernel dims that are not unrolled.
  let xt = xc;
  let wt = "0";
  for (let i = 0; i < d - U; i++) {
    const k = `k${low[i]}`;
    code.open(`for (let ${k} = 0; ${k} < ${K[i]}; ${k}++)`);
    xt = bindLocal(code, `xt${low[i]}`, sum(xt, prod(k, a.dilation[i]!, xStride[i]!)));
    wt = bindLocal(code, `wt${low[i]}`, sum(wt, prod(flipped(i, k), kStride[i]!)));
  }
  const taps = tuples(unrolledK);
  for (let j = 0; j < FB; j++) {
    const offsets = taps.map((t) => t.reduce((s, k, q) => s + flippedTap(d - U + q, k) * kStride[d - U + q]!, 0));
    code.line(`const ${offsets.map((off, u) => `w${j}_${u} = x1[${sum(`wb${j}`, wt, off)}]`).join(", ")};`);
  }
  const { xOut, aOut } = rowLoops ? { xOut: sum(xt, rowLoops.xOut), aOut: "0" } : openOutputLoops(xt);

  // One input row per combination of the unrolled kernel dims other than the innermost.
  const rows = tuples(U >= 1 ? unrolledK.slice(0, -1) : []);
  const KW = U >= 1 ? K[last]! : 1;
  const r = rows.map((t, ri) => {
    const off = t.reduce<string>((s, k, q) => sum(s, prod(k * a.dilation[d - U + q]!, xStride[d - U + q]!)), "0");
    return bindLocal(code, `r${ri}`, sum(xOut, off));
  });
  const accBase = range(FB, (j) => (byRow ? accOff[j]! : bindLocal(code, `a${j}`, sum(aOut, accOff[j]!))));
  const ow = `o${low[last]}`;
  const st = a.stride[last]!;
  const dl = a.dilation[last]!;
  const q = st === 1 ? ow : "q";
  if (sliding) {
    code.line(`// stride 1: each row's inputs slide through locals, one new load per row and step`);
    code.line(`let ${rows.flatMap((_, ri) => range(KW - 1, (kw) => `p${ri}_${kw} = ${src}[${sum(r[ri]!, kw)}]`)).join(", ")};`);
  }
  code.open(`for (let ${ow} = 0; ${ow} < ${O[last]}; ${ow}++)`);
  if (st !== 1) code.line(`const q = ${prod(ow, st)};`);
  if (sliding) code.line(`const ${rows.map((_, ri) => `p${ri}_${KW - 1} = ${src}[${sum(r[ri]!, ow, KW - 1)}]`).join(", ")};`);
  else code.line(`const ${rows.flatMap((_, ri) => range(KW, (kw) => `p${ri}_${kw} = ${src}[${sum(r[ri]!, q, kw * dl)}]`)).join(", ")};`);
  for (let j = 0; j < FB; j++) {
    const terms = rows.flatMap((_, ri) => range(KW, (kw) => `w${j}_${ri * KW + kw} * p${ri}_${kw}`));
    code.line(`acc[${sum(accBase[j]!, ow)}] += ${terms.join(" + ")};`);
  }
  if (sliding) code.line(rows.flatMap((_, ri) => range(KW - 1, (kw) => `p${ri}_${kw} = p${ri}_${kw + 1};`)).join(" "));
  code.close(); // innermost output loop
  if (!rowLoops) closeOutputLoops();
  for (let i = 0; i < d - U; i++) code.close(); // tap loops
  code.close(); // channels

  // Filters f..f+FB-1 of sample n are consecutive planes of y.
  const yb = bindLocal(code, "yb", sum(prod(sum(prod("n", F), f), oPlane), rowLoops ? rowLoops.aOut : "0"));
  // Stores go through the epilogue when the conv is the base of a fused_epilogue (epilogue.ts);
  // the site knows the sample n, the filter f + j and, by rows, the row's coordinates.
  const site = (flat: string, j: number, spatial: (i: number) => string | undefined): StoreSite => ({
    flat,
    coord: (dim) => (dim === 0 ? "n" : dim === 1 ? sum(f, j) : spatial(dim - 2)),
  });
  // A pooling epilogue is pooled straight from the accumulator planes (whole planes only, not rows).
  const pool = rowLoops ? undefined : ctx.epilogue?.claimPool?.();
  if (rowLoops) {
    for (let j = 0; j < FB; j++) {
      const ybj = j ? bindLocal(code, `yb${j}`, sum(yb, prod(j, oPlane))) : yb;
      const at = site(sum(ybj, "i"), j, (i) => (i === last ? "i" : `o${low[i]}`));
      loopStore(code, `for (let i = 0; i < ${accLen}; i++)`, storeResult(ctx, at, `acc[${sum(accOff[j]!, "i")}]`));
    }
    closeOutputLoops();
  } else if (pool) {
    code.line(`// ${pool.kind} pool, window ${list([...pool.window])}, of the epilogue's result: only pooled planes are stored`);
    const P = O.map((o, i) => (isLiteral(o) ? String(Math.floor(Number(o) / pool.window[i]!)) : `Math.floor(${o} / ${pool.window[i]})`));
    const pPlane = sizes.bind(prod(...P), "pPlane");
    for (let j = 0; j < FB; j++) {
      const ybj = j ? bindLocal(code, `yb${j}`, sum(yb, prod(j, oPlane))) : yb;
      const pb = bindLocal(code, `pb${j}`, prod(sum(prod("n", F), f, j), pPlane));
      const tap = (offset: string, coords: readonly string[], name: string) =>
        ctx.epilogue!.value!(site(sum(ybj, ...offset.split(" + ")), j, (i) => coords[i]), `acc[${sum(accOff[j]!, ...offset.split(" + "))}]`, name);
      for (const l of pooledPlaneLines(pool, O, "y0", pb, tap)) code.line(l);
    }
  } else if (ctx.epilogue) {
    // One loop per filter, so the epilogue sees the filter index as a constant.
    for (let j = 0; j < FB; j++) {
      const ybj = j ? bindLocal(code, `yb${j}`, sum(yb, prod(j, oPlane))) : yb;
      loopStore(code, `for (let i = 0; i < ${oPlane}; i++)`, storeResult(ctx, site(sum(ybj, "i"), j, () => undefined), `acc[${sum(accOff[j]!, "i")}]`));
    }
  } else {
    code.line(`for (let i = 0; i < ${prod(FB, oPlane)}; i++) y0[${sum(yb, "i")}] = acc[i];`);
  }
  code.close(); // filter blocks
  if (G > 1) code.close();
  code.close(); // samples
  return code.toString();
}

/** `head stmt;` for one statement, else `head { ... }` (a single block's braces become the loop's). */
export function loopStore(code: Code, head: string, lines: readonly string[]): void {
  if (lines.length === 1) return code.line(`${head} ${lines[0]}`);
  const body = lines[0] === "{" && lines[lines.length - 1] === "}" ? lines.slice(1, -1).map((l) => l.replace(/^ {2}/, "")) : lines;
  code.open(head);
  for (const l of body) code.line(l);
  code.close();
}

export function range<T>(n: number, f: (i: number) => T): T[] {
  return Array.from({ length: n }, (_, i) => f(i));
}

/** `const name = expr;` unless expr is a literal or a plain name (then it is used as is). */
export function bindLocal(code: Code, name: string, expr: string): string {
  if (isLiteral(expr) || /^[A-Za-z_]\w*$/.test(expr)) return expr;
  code.line(`const ${name} = ${expr};`);
  return name;
}

/** Copies sample n of x0 into the padded planes xp (zero padding stays zero: only the interior is written). */
export function emitPaddedCopy(
  code: Code,
  p: {
    d: number;
    C: number;
    X: string[];
    XP: string[];
    xStride: string[];
    xPlane: string;
    inStride: string[];
    inPlane: string;
    padBegin: number[];
    padEnd: number[];
    circular: boolean;
    names: string[];
  },
): void {
  const { d, C, X, XP, xStride, xPlane, inStride, inPlane, padBegin, padEnd, circular, names } = p;
  code.open(`for (let c = 0; c < ${C}; c++)`);
  let s = bindLocal(code, "sc", prod(sum(prod("n", C), "c"), inPlane));
  let t = bindLocal(code, "tc", prod("c", xPlane));
  for (let i = 0; i < d - 1; i++) {
    const v = names[i]!;
    if (circular) {
      // padded position v reads input position (v − padBegin) mod size
      code.open(`for (let ${v} = 0; ${v} < ${XP[i]}; ${v}++)`);
      code.line(`const ${v}s = (((${sum(v, -padBegin[i]!)}) % ${X[i]}) + ${X[i]}) % ${X[i]};`);
      s = bindLocal(code, `s${v}`, sum(s, prod(`${v}s`, inStride[i]!)));
      t = bindLocal(code, `t${v}`, sum(t, prod(v, xStride[i]!)));
    } else {
      code.open(`for (let ${v} = 0; ${v} < ${X[i]}; ${v}++)`);
      s = bindLocal(code, `s${v}`, sum(s, prod(v, inStride[i]!)));
      t = bindLocal(code, `t${v}`, sum(t, prod(sum(v, padBegin[i]!), xStride[i]!)));
    }
  }
  const v = names[d - 1]!;
  const pb = padBegin[d - 1]!;
  const pe = padEnd[d - 1]!;
  const W = X[d - 1]!;
  code.line(`for (let ${v} = 0; ${v} < ${W}; ${v}++) xp[${sum(t, pb, v)}] = x0[${sum(s, v)}];`);
  if (circular && pb > 0) code.line(`for (let ${v} = 0; ${v} < ${pb}; ${v}++) xp[${sum(t, v)}] = x0[${sum(s, `(((${v} - ${pb}) % ${W}) + ${W}) % ${W}`)}];`);
  if (circular && pe > 0) code.line(`for (let ${v} = 0; ${v} < ${pe}; ${v}++) xp[${sum(t, pb, W, v)}] = x0[${sum(s, `(${sum(v, W)}) % ${W}`)}];`);
  for (let i = 0; i < d; i++) code.close();
}

// ---------------------------------------------------------------------------
// conv_transpose
// ---------------------------------------------------------------------------

function emitConvTranspose(ctx: JsEmitCtx): string {
  const a = ctx.node.attrs as unknown as ConvTransposeAttrs;
  const d = a.stride.length;
  const last = d - 1;
  const code = new Code();
  const sizes = new Sizes(code);
  const names = spatialNames(d);
  const low = names.map((n) => n.toLowerCase());
  const wShape = ctx.inShape(1);
  const K = wShape.slice(2).map(Number);
  const C = Number(wShape[0]);
  const Fg = Number(wShape[1]);
  const G = a.groups;
  const F = Fg * G;
  const Cg = C / G;
  const KV = K.reduce((p, k) => p * k, 1);
  const kStride = K.map((_, i) => K.slice(i + 1).reduce((p, k) => p * k, 1));
  const xShape = ctx.inShape(0);
  const yShape = ctx.outShape(0);
  code.line(
    `// conv_transpose${d}d: x [${xShape.join(", ")}] * w [${wShape.join(", ")}] -> y [${yShape.join(", ")}]; stride ${list(a.stride)}, dilation ${list(a.dilation)}, ` +
      `padding ${list(a.padBegin)}..${list(a.padEnd)}, output padding ${list(a.outputPadding)}${G > 1 ? `, groups ${G}` : ""}`,
  );
  code.line("// input cell i with tap k lands on output i*stride - padBegin + k*dilation: each tap scatters");
  code.line("// the input rows whose landing cells are inside the output (range computed once per tap)");
  const N = sizes.bind(xShape[0]!, "N");
  const X = names.map((nm, i) => sizes.bind(xShape[2 + i]!, nm));
  const O = names.map((nm, i) => sizes.bind(yShape[2 + i]!, `O${nm}`));
  O.forEach((o, i) => {
    if (!isLiteral(o)) code.line(`if (${o} < 1) T.fail("the output size along dim ${2 + i} would be " + ${o} + ": the padding crops everything the transposed convolution produces");`);
  });
  const { strides: xStride, total: xPlane } = stridesOf(X, sizes, "xStride", "xPlane");
  const { strides: oStride, total: oPlane } = stridesOf(O, sizes, "oStride", "oPlane");
  const FB = [4, 2, 1].find((b) => Fg % b === 0)!;
  code.line(`const acc = new Float64Array(${prod(FB, oPlane)});`);
  code.open(`for (let n = 0; n < ${N}; n++)`);
  if (G > 1) code.open(`for (let g = 0; g < ${G}; g++)`);
  code.open(`for (let fl = 0; fl < ${Fg}; fl += ${FB})`);
  const f = G > 1 ? bindLocal(code, "f", sum(prod("g", Fg), "fl")) : "fl";
  if (a.hasBias) code.line(`const ${range(FB, (j) => `b${j} = x2[${sum(f, j)}]`).join(", ")};`);
  code.open(`for (let i = 0; i < ${oPlane}; i++)`);
  for (let j = 0; j < FB; j++) code.line(`acc[${sum(prod(j, oPlane), "i")}] = ${a.hasBias ? `b${j}` : "0"};`);
  code.close();
  code.open(`for (let cl = 0; cl < ${Cg}; cl++)`);
  const c = G > 1 ? bindLocal(code, "c", sum(prod("g", Cg), "cl")) : "cl";
  const xc = bindLocal(code, "xc", prod(sum(prod("n", C), c), xPlane));
  code.line(`const ${range(FB, (j) => `wb${j} = ${prod(sum(prod(c, Fg), "fl", j), KV)}`).join(", ")};`);
  // Tap loops, each with the input range that lands inside the output along its dim.
  const lo: string[] = [];
  const hi: string[] = [];
  for (let i = 0; i < d; i++) {
    const k = `k${low[i]}`;
    code.open(`for (let ${k} = 0; ${k} < ${K[i]}; ${k}++)`);
    const shiftJs = a.padBegin[i] ? `${a.padBegin[i]} - ${prod(k, a.dilation[i]!)}` : `-${prod(k, a.dilation[i]!)}`;
    const st = a.stride[i]!;
    const loJs = st === 1 ? `Math.max(0, ${shiftJs})` : `Math.max(0, Math.ceil((${shiftJs}) / ${st}))`;
    // last input cell landing inside: i*st - pb + k*dl <= O - 1
    const lastJs = `${sum(O[i]!, a.padBegin[i]! - 1)} - ${prod(k, a.dilation[i]!)}`;
    const hiJs = st === 1 ? `Math.min(${X[i]}, ${lastJs} + 1)` : `Math.min(${X[i]}, Math.floor((${lastJs}) / ${st}) + 1)`;
    lo.push(bindLocal(code, `${low[i]}Lo`, loJs));
    hi.push(bindLocal(code, `${low[i]}Hi`, hiJs));
  }
  const wOff = K.map((_, i) => prod(`k${low[i]}`, kStride[i]!));
  code.line(`const ${range(FB, (j) => `w${j} = x1[${sum(`wb${j}`, ...wOff)}]`).join(", ")};`);
  let xb = xc;
  let ab = "0";
  for (let i = 0; i < last; i++) {
    const v = `i${low[i]}`;
    code.open(`for (let ${v} = ${lo[i]}; ${v} < ${hi[i]}; ${v}++)`);
    xb = bindLocal(code, `x${low[i]}`, sum(xb, prod(v, xStride[i]!)));
    ab = bindLocal(code, `a${low[i]}`, sum(ab, prod(sum(prod(v, a.stride[i]!), prod(`k${low[i]}`, a.dilation[i]!), -a.padBegin[i]!), oStride[i]!)));
  }
  const kl = `k${low[last]}`;
  const accBase = range(FB, (j) => bindLocal(code, `a${j}`, sum(ab, prod(kl, a.dilation[last]!), -a.padBegin[last]!, prod(j, oPlane))));
  const v = `i${low[last]}`;
  code.open(`for (let ${v} = ${lo[last]}; ${v} < ${hi[last]}; ${v}++)`);
  code.line(`const v = x0[${sum(xb, v)}];`);
  const at = prod(v, a.stride[last]!);
  for (let j = 0; j < FB; j++) code.line(`acc[${sum(accBase[j]!, at)}] += w${j} * v;`);
  code.close();
  for (let i = 0; i < last; i++) code.close();
  for (let i = 0; i < d; i++) code.close(); // taps
  code.close(); // channels
  const yb = bindLocal(code, "yb", prod(sum(prod("n", F), f), oPlane));
  code.line(`for (let i = 0; i < ${prod(FB, oPlane)}; i++) y0[${sum(yb, "i")}] = acc[i];`);
  code.close();
  if (G > 1) code.close();
  code.close();
  return code.toString();
}

// ---------------------------------------------------------------------------
// conv_grad_input: d loss / d x of conv
// ---------------------------------------------------------------------------

/** Code-shape knobs of the input-gradient template. */
export const gradInputTuning = {
  /** Most weights (channels per block × taps of the last dim) held in locals by the sliding inner loop. */
  maxSlidingWeights: 32,
};

/**
 * dx of conv, per (sample, group, block of CB input channels): the block's
 * gradient is accumulated in float64 over the *padded* input planes
 * (S + padBegin + padEnd per dim), where every tap of every output lands
 * without a bounds test; then the interior is copied out (zero padding) or the
 * padded cells are folded back onto the cells they copy (circular padding:
 * padded position q is input position (q − padBegin) mod S, wrapping any
 * number of times). The planes belong to this loop iteration, so the scatter
 * of a tap's output rows into them is deterministic, and its inner loop runs
 * along a contiguous dy row with the CB weights of the tap held in locals
 * (with stride 1 and dilation 1, the whole last kernel row and its running sums).
 */
function emitConvGradInput(ctx: JsEmitCtx): string {
  const a = ctx.node.attrs as unknown as ConvAttrs;
  const wShape = ctx.inShape(1);
  const { d, last, code, sizes, names, low, K, F, Cg, G, Fg, C, KV, kStride, padded, circular } = convFrame(a, wShape);
  const dyShape = ctx.inShape(0);
  const xShape = ctx.outShape(0);
  code.line(
    `// conv${d}d input gradient: dy [${dyShape.join(", ")}] * w [${wShape.join(", ")}] -> dx [${xShape.join(", ")}]; stride ${list(a.stride)}, dilation ${list(a.dilation)}, ` +
      `padding ${list(a.padBegin)}..${list(a.padEnd)}${circular ? " circular" : ""}${G > 1 ? `, groups ${G}` : ""}${a.flip ? ", flipped kernel" : ""}`,
  );
  const N = sizes.bind(dyShape[0]!, "N");
  const X = names.map((nm, i) => sizes.bind(xShape[2 + i]!, nm));
  const O = names.map((nm, i) => sizes.bind(dyShape[2 + i]!, `O${nm}`));
  const XP = padded ? names.map((nm, i) => sizes.bind(sum(X[i]!, a.padBegin[i]! + a.padEnd[i]!), `${nm}P`)) : X;
  const { strides: aStride, total: aPlane } = stridesOf(XP, sizes, "aStride", "aPlane");
  const { strides: xStride, total: xPlane } = padded ? stridesOf(X, sizes, "xStride", "xPlane") : { strides: aStride, total: aPlane };
  const { strides: oStride, total: oPlane } = stridesOf(O, sizes, "oStride", "oPlane");
  const CB = [4, 2, 1].find((b) => Cg % b === 0)!;
  code.line(`// ${CB} input channel${CB > 1 ? "s" : ""} at once, accumulated in double over ${padded ? "padded " : ""}planes`);
  code.line(`const acc = new Float64Array(${prod(CB, aPlane)});`);
  if (circular) code.line(`const fold = new Float64Array(${xPlane});`);
  const aOff = range(CB, (j) => sizes.bind(prod(j, aPlane), `aOff${j}`));
  code.open(`for (let n = 0; n < ${N}; n++)`);
  if (G > 1) code.open(`for (let g = 0; g < ${G}; g++)`);
  code.open(`for (let cl = 0; cl < ${Cg}; cl += ${CB})`);
  code.line("acc.fill(0);");
  code.open(`for (let fl = 0; fl < ${Fg}; fl++)`);
  const f = G > 1 ? bindLocal(code, "f", sum(prod("g", Fg), "fl")) : "fl";
  const dyf = bindLocal(code, "dyf", prod(sum(prod("n", F), f), oPlane));
  code.line(`const ${range(CB, (j) => `wb${j} = ${j ? sum("wb0", j * KV) : prod(sum(prod(f, Cg), "cl"), KV)}`).join(", ")};`);
  // every tap: output o lands on padded position o·stride + k·dilation
  // With stride 1 and dilation 1 along the last dim, that dim's taps are unrolled: output ow
  // adds to positions ow .. ow + KW − 1 of the row, so KW − 1 running sums per channel ride
  // along in locals and each position is written once (when its last contribution arrives).
  const sliding = a.stride[last] === 1 && a.dilation[last] === 1 && K[last]! > 1 && K[last]! * CB <= gradInputTuning.maxSlidingWeights;
  const loopDims = sliding ? last : d;
  let wt = "0";
  let at = "0";
  for (let i = 0; i < loopDims; i++) {
    const k = `k${low[i]}`;
    code.open(`for (let ${k} = 0; ${k} < ${K[i]}; ${k}++)`);
    wt = bindLocal(code, `wt${low[i]}`, sum(wt, prod(a.flip ? `${K[i]! - 1} - ${k}` : k, kStride[i]!)));
    at = bindLocal(code, `at${low[i]}`, sum(at, prod(k, a.dilation[i]!, aStride[i]!)));
  }
  const KW = sliding ? K[last]! : 1;
  const tapW = (kw: number) => (sliding ? (a.flip ? K[last]! - 1 - kw : kw) : 0);
  code.line(`const ${range(CB, (j) => range(KW, (kw) => `w${j}_${kw} = x1[${sum(`wb${j}`, wt, tapW(kw))}]`)).flat().join(", ")};`);
  let yr = dyf;
  let ar = at;
  for (let i = 0; i < last; i++) {
    const o = `o${low[i]}`;
    code.open(`for (let ${o} = 0; ${o} < ${O[i]}; ${o}++)`);
    yr = bindLocal(code, `y${low[i]}`, sum(yr, prod(o, oStride[i]!)));
    ar = bindLocal(code, `a${low[i]}`, sum(ar, prod(o, a.stride[i]!, aStride[i]!)));
  }
  const ow = `o${low[last]}`;
  const regs = (j: number) => range(KW - 1, (m) => `r${j}_${m}`);
  if (sliding) code.line(`let ${range(CB, (j) => regs(j).map((r) => `${r} = 0`)).flat().join(", ")};`);
  code.open(`for (let ${ow} = 0; ${ow} < ${O[last]}; ${ow}++)`);
  code.line(`const v = x0[${sum(yr, ow)}];`);
  const q = bindLocal(code, "q", sum(ar, prod(ow, a.stride[last]!)));
  for (let j = 0; j < CB; j++) {
    if (!sliding) {
      code.line(`acc[${sum(aOff[j]!, q)}] += w${j}_0 * v;`);
      continue;
    }
    code.line(`acc[${sum(aOff[j]!, q)}] += r${j}_0 + w${j}_0 * v;`);
    code.line(range(KW - 1, (m) => `r${j}_${m} = ${m < KW - 2 ? `r${j}_${m + 1} + ` : ""}w${j}_${m + 1} * v;`).join(" "));
  }
  code.close();
  if (sliding) {
    const tail = bindLocal(code, "tail", sum(ar, O[last]!));
    for (let j = 0; j < CB; j++) code.line(range(KW - 1, (m) => `acc[${sum(aOff[j]!, tail, m)}] += r${j}_${m};`).join(" "));
  }
  for (let i = 0; i < last; i++) code.close();
  for (let i = 0; i < loopDims; i++) code.close(); // taps
  code.close(); // filters
  // write the block's planes out
  code.open(`for (let j = 0; j < ${CB}; j++)`);
  const xb = bindLocal(code, "xb", prod(sum(prod("n", C), G > 1 ? prod("g", Cg) : "0", "cl", "j"), xPlane));
  const ab = bindLocal(code, "ab", prod("j", aPlane));
  if (circular) {
    code.line("fold.fill(0);");
    code.line("// padded position q holds input position (q - padBegin) mod size: fold it back");
    let fb = "0";
    let pa = ab;
    for (let i = 0; i < d; i++) {
      const v = `q${low[i]}`;
      code.open(`for (let ${v} = 0; ${v} < ${XP[i]}; ${v}++)`);
      const wrapped = `((${sum(v, -a.padBegin[i]!)}) % ${X[i]} + ${X[i]}) % ${X[i]}`;
      fb = bindLocal(code, `u${low[i]}`, sum(fb, prod(a.padBegin[i] || a.padEnd[i] ? wrapped : v, xStride[i]!)));
      pa = bindLocal(code, `p${low[i]}`, sum(pa, prod(v, aStride[i]!)));
    }
    code.line(`fold[${fb}] += acc[${pa}];`);
    for (let i = 0; i < d; i++) code.close();
    code.line(`for (let i = 0; i < ${xPlane}; i++) y0[${sum(xb, "i")}] = fold[i];`);
  } else if (padded) {
    let xr = xb;
    let pa = ab;
    for (let i = 0; i < last; i++) {
      const v = `p${low[i]}`;
      code.open(`for (let ${v} = 0; ${v} < ${X[i]}; ${v}++)`);
      xr = bindLocal(code, `x${low[i]}`, sum(xr, prod(v, xStride[i]!)));
      pa = bindLocal(code, `r${low[i]}`, sum(pa, prod(sum(v, a.padBegin[i]!), aStride[i]!)));
    }
    code.line(`for (let i = 0; i < ${X[last]}; i++) y0[${sum(xr, "i")}] = acc[${sum(pa, a.padBegin[last]!, "i")}];`);
    for (let i = 0; i < last; i++) code.close();
  } else {
    code.line(`for (let i = 0; i < ${xPlane}; i++) y0[${sum(xb, "i")}] = acc[${sum(ab, "i")}];`);
  }
  code.close(); // j
  code.close(); // channel blocks
  if (G > 1) code.close();
  code.close(); // samples
  return code.toString();
}

// ---------------------------------------------------------------------------
// conv_grad_weight: d loss / d w of conv
// ---------------------------------------------------------------------------

/**
 * dw of conv: the whole weight gradient is accumulated in float64; per
 * (sample, filter, channel, tap of the leading kernel dims) one pass over the
 * filter's dy plane, each dy value multiplied with the KW input cells of the
 * last kernel dim's taps into KW running sums (with stride 1 and dilation 1
 * those cells slide through locals: one new load per step). A padded copy of
 * the sample (zero or circular, as the forward template) makes every tap read
 * inside it, so the loops carry no tests. dy's sizes are taken as given (never
 * beyond conv's output size, so still inside the padded copy): conv_transpose's
 * weight gradient calls this op with x and dy swapped. A kernel row longer than
 * convTuning.maxUnrolledTaps gets a tap loop with one running sum instead.
 */
function emitConvGradWeight(ctx: JsEmitCtx): string {
  const a = ctx.node.attrs as unknown as ConvAttrs & { kernel: number[] };
  const wShape = ctx.outShape(0);
  const { d, last, code, sizes, names, low, K, F, Cg, G, Fg, C, KV, kStride, padded, circular } = convFrame(a, wShape, a.kernel);
  const xShape = ctx.inShape(0);
  const dyShape = ctx.inShape(1);
  code.line(
    `// conv${d}d weight gradient: x [${xShape.join(", ")}], dy [${dyShape.join(", ")}] -> dw [${wShape.join(", ")}]; stride ${list(a.stride)}, dilation ${list(a.dilation)}, ` +
      `padding ${list(a.padBegin)}..${list(a.padEnd)}${circular ? " circular" : ""}${G > 1 ? `, groups ${G}` : ""}${a.flip ? ", flipped kernel" : ""}`,
  );
  const N = sizes.bind(xShape[0]!, "N");
  const X = names.map((nm, i) => sizes.bind(xShape[2 + i]!, nm));
  const O = names.map((nm, i) => sizes.bind(dyShape[2 + i]!, `O${nm}`));
  const XP = padded ? names.map((nm, i) => sizes.bind(sum(X[i]!, a.padBegin[i]! + a.padEnd[i]!), `${nm}P`)) : X;
  const { strides: xStride, total: xPlane } = stridesOf(XP, sizes, "xStride", "xPlane");
  const { strides: inStride, total: inPlane } = padded ? stridesOf(X, sizes, "inStride", "inPlane") : { strides: xStride, total: xPlane };
  const { strides: oStride, total: oPlane } = stridesOf(O, sizes, "oStride", "oPlane");
  code.line(`const acc = new Float64Array(${F * Cg * KV});`);
  if (padded) code.line(`const xp = new Float32Array(${prod(C, xPlane)});`);
  code.open(`for (let n = 0; n < ${N}; n++)`);
  if (padded) {
    code.line(`// the sample, ${circular ? "circularly" : "zero"}-padded: every tap reads inside it`);
    emitPaddedCopy(code, { d, C, X, XP, xStride, xPlane, inStride, inPlane, padBegin: a.padBegin, padEnd: a.padEnd, circular, names: low });
  }
  const src = padded ? "xp" : "x0";
  const xn = padded ? "0" : bindLocal(code, "xn", prod("n", C, xPlane));
  code.open(`for (let f = 0; f < ${F}; f++)`);
  const g = G > 1 ? bindLocal(code, "g", `Math.floor(f / ${Fg})`) : "0";
  const dyf = bindLocal(code, "dyf", prod(sum(prod("n", F), "f"), oPlane));
  code.open(`for (let cl = 0; cl < ${Cg}; cl++)`);
  const xc = bindLocal(code, "xc", sum(xn, prod(sum(prod(g, Cg), "cl"), xPlane)));
  const ab = bindLocal(code, "ab", prod(sum(prod("f", Cg), "cl"), KV));
  // taps of the leading kernel dims (and of the last one when its row is too long to unroll)
  const unrolled = K[last]! <= convTuning.maxUnrolledTaps;
  const loopDims = unrolled ? last : d;
  let wt = "0";
  let xt = xc;
  for (let i = 0; i < loopDims; i++) {
    const k = `k${low[i]}`;
    code.open(`for (let ${k} = 0; ${k} < ${K[i]}; ${k}++)`);
    wt = bindLocal(code, `wt${low[i]}`, sum(wt, prod(a.flip ? `${K[i]! - 1} - ${k}` : k, kStride[i]!)));
    xt = bindLocal(code, `xt${low[i]}`, sum(xt, prod(k, a.dilation[i]!, xStride[i]!)));
  }
  const KW = unrolled ? K[last]! : 1;
  const dl = a.dilation[last]!;
  const st = a.stride[last]!;
  const sliding = unrolled && KW > 1 && st === 1 && dl === 1;
  code.line(`let ${range(KW, (kw) => `s${kw} = 0`).join(", ")};`);
  let yr = dyf;
  let xr = xt;
  for (let i = 0; i < last; i++) {
    const o = `o${low[i]}`;
    code.open(`for (let ${o} = 0; ${o} < ${O[i]}; ${o}++)`);
    yr = bindLocal(code, `y${low[i]}`, sum(yr, prod(o, oStride[i]!)));
    xr = bindLocal(code, `x${low[i]}`, sum(xr, prod(o, a.stride[i]!, xStride[i]!)));
  }
  const ow = `o${low[last]}`;
  if (sliding) code.line(`let ${range(KW - 1, (kw) => `p${kw} = ${src}[${sum(xr, kw)}]`).join(", ")};`);
  code.open(`for (let ${ow} = 0; ${ow} < ${O[last]}; ${ow}++)`);
  code.line(`const v = x1[${sum(yr, ow)}];`);
  if (sliding) {
    code.line(`const p${KW - 1} = ${src}[${sum(xr, ow, KW - 1)}];`);
    code.line(range(KW, (kw) => `s${kw} += v * p${kw};`).join(" "));
    code.line(range(KW - 1, (kw) => `p${kw} = p${kw + 1};`).join(" "));
  } else {
    const q = bindLocal(code, "q", sum(xr, prod(ow, st)));
    code.line(range(KW, (kw) => `s${kw} += v * ${src}[${sum(q, kw * dl)}];`).join(" "));
  }
  code.close();
  for (let i = 0; i < last; i++) code.close();
  const tap = (kw: number) => (unrolled ? (a.flip ? K[last]! - 1 - kw : kw) : 0);
  code.line(range(KW, (kw) => `acc[${sum(ab, wt, tap(kw))}] += s${kw};`).join(" "));
  for (let i = 0; i < loopDims; i++) code.close(); // taps
  code.close(); // channels
  code.close(); // filters
  code.close(); // samples
  code.line(`for (let i = 0; i < ${F * Cg * KV}; i++) y0[i] = acc[i];`);
  return code.toString();
}

export const kernels: JsKernel[] = [
  { op: "conv", emit: emitConv },
  { op: "conv_transpose", emit: emitConvTranspose },
  { op: "conv_grad_input", emit: emitConvGradInput },
  { op: "conv_grad_weight", emit: emitConvGradWeight },
];

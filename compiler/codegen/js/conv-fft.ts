// JS kernel for `conv` by FFT (attrs.algorithm "fft", chosen by
// compiler/passes/conv-algorithm.ts for long kernels on long signals;
// reference semantics in compiler/ops/conv.ts).
//
// A convolution layer is a correlation: y[f, o] = Σ_c Σ_k w[f, c, k] · xp[c, o·s + k·dl]
// with xp the padded input. On a grid of M ≥ padded-length cells per dim (M a
// power of two) the circular correlation z[t] = Σ_j h[j] · xp[(t + j) mod M],
// with h the kernel spread out by the dilation (h[k·dl] = w[k]), equals the
// linear one for every t ≤ padded − window, the only t the output reads
// (t + j ≤ padded − 1 < M: nothing wraps). In frequency space it is a product,
// Z = X · conj(H), and summing over the channels of the group there first
// needs one inverse transform per filter instead of one per (filter, channel):
//   1. per call: the spectrum of every (filter, channel) kernel plane
//      (weights are parameters: transformed each call, no cache);
//   2. per (sample, block): the spectrum of every input channel;
//   3. per (sample, block, filter): Y_f = Σ_c X_c · conj(H_fc) over the group's
//      channels, an inverse transform, then y[o] = z[o·stride] (the crop).
// The transforms are radix-2 iterative FFTs over every dim in turn, in float64.
// Real signals: two real planes are transformed as one complex one
// (z = a + i·b; A[k] = (Z[k] + conj Z[−k]) / 2, B[k] = (Z[k] − conj Z[−k]) / 2i),
// the two filters of a pair go back through one inverse (z = y_f + i·y_f+1:
// real part y_f, imaginary part y_f+1), and only the half spectrum along the
// last dim (M/2 + 1 bins) is kept and multiplied: the other half is its mirror.
//
// Long signals are cut into blocks along the last dim (overlap-save): a block
// of Bo outputs reads (Bo − 1)·stride + window cells, transformed on a grid
// whose last dim is a power of two from the window's size up to the whole
// signal, whichever fftPlan's cost model finds cheapest: short grids make the
// per-call weight transforms cheap and keep the transforms in cache.
//
// Cost per sample (C channels, F filters, ∏M cells per block): per block
// (C + F)/2 transforms of ∏M·log2 ∏M and F·C/G·∏M/2 complex multiply-adds,
// independent of the kernel size; the direct kernel does F·C/G·∏O·∏K multiply-adds.
// Needs static spatial sizes; N may be symbolic. Zero or circular padding
// (the sample is copied into padded planes first, as in the direct kernel).

import type { ConvAttrs } from "../../ops/conv.ts";
import { bindLocal, convFrame, emitPaddedCopy, isLiteral, list, prod, range, Sizes, stridesOf, sum } from "./conv.ts";
import { storeResult } from "./epilogue.ts";
import type { JsEmitCtx } from "./kernel.ts";

/** The FFT grid along one dim: the smallest power of two holding the padded input. */
export function fftSize(padded: number): number {
  let m = 1;
  while (m < padded) m *= 2;
  return m;
}

/** Cost constants of this kernel in ns (fitted in compiler/passes/conv-algorithm.ts). */
export const FFT_COST = {
  /** Per ∏M·log2 ∏M unit of one transform of the grid. */
  cell: 10,
  /** Factor for 2-D/3-D grids (measured: none needed; kept as a knob). */
  multiDim: 1,
  /** Per complex multiply-add of two spectra. */
  cmac: 6,
};

export interface FftGeometry {
  c: number;
  f: number;
  groups: number;
  /** Images per call when static (spreads the weight transforms), else 1. */
  images: number;
  /** Padded input sizes, output sizes, kernel, dilation and stride per spatial dim. */
  padded: readonly number[];
  out: readonly number[];
  kernel: readonly number[];
  dilation: readonly number[];
  stride: readonly number[];
}

export interface FftPlan {
  /** The transform grid: whole padded dims, then the block along the last dim. */
  grid: number[];
  /** Outputs per block along the last dim, and the number of blocks. */
  blockOut: number;
  blocks: number;
  /** Estimated ns per image, and the bytes of the weight spectra. */
  ns: number;
  spectraBytes: number;
}

/**
 * Overlap-save along the last dim: the grid's last dim is the power of two
 * (from the window's size up to the whole padded signal) that the cost model
 * finds cheapest. A block of Bo outputs reads (Bo − 1)·stride + window input
 * cells, all inside the block's grid, so nothing wraps. Short blocks make the
 * per-call weight transforms and each transform cheaper (and cache-resident);
 * long ones waste less of each transform on the window's overlap.
 */
export function fftPlan(g: FftGeometry): FftPlan {
  const d = g.kernel.length;
  const last = d - 1;
  const lead = g.padded.slice(0, last).map(fftSize);
  const eff = g.dilation[last]! * (g.kernel[last]! - 1) + 1;
  const cg = g.c / g.groups;
  let best: FftPlan | undefined;
  for (let m = fftSize(eff); m <= fftSize(g.padded[last]!); m *= 2) {
    const blockOut = Math.min(g.out[last]!, Math.floor((m - eff) / g.stride[last]!) + 1);
    if (blockOut < 1) continue;
    const blocks = Math.ceil(g.out[last]! / blockOut);
    const grid = [...lead, m];
    const mt = grid.reduce((p, v) => p * v, 1);
    const bins = (mt / m) * (Math.floor(m / 2) + 1);
    const transform = mt * Math.log2(Math.max(mt, 2)) * FFT_COST.cell * (d > 1 ? FFT_COST.multiDim : 1);
    const ns = blocks * (((g.c + g.f) / 2) * transform + g.f * cg * bins * FFT_COST.cmac) + ((g.f * cg) / 2 / g.images) * transform;
    if (!best || ns < best.ns) best = { grid, blockOut, blocks, ns, spectraBytes: g.f * cg * bins * 16 };
  }
  return best!;
}

export function emitConvFft(ctx: JsEmitCtx): string {
  const a = ctx.node.attrs as unknown as ConvAttrs;
  const wShape = ctx.inShape(1);
  const { d, code, names, K, F, Cg, G, Fg, C, KV, padded, circular } = convFrame(a, wShape);
  const low = names.map((s) => s.toLowerCase());
  const sizes = new Sizes(code);
  const xShape = ctx.inShape(0);
  const yShape = ctx.outShape(0);
  const X = xShape.slice(2).map(Number);
  const O = yShape.slice(2).map(Number);
  const XP = X.map((s, i) => s + a.padBegin[i]! + a.padEnd[i]!);
  const images = isLiteral(xShape[0]!) ? Number(xShape[0]) : 1;
  const plan = fftPlan({ c: C, f: F, groups: G, images, padded: XP, out: O, kernel: K, dilation: a.dilation, stride: a.stride });
  const M = plan.grid;
  const MT = M.reduce((p, m) => p * m, 1);
  const NB = plan.blocks;
  const BO = plan.blockOut;
  const SL = a.stride[d - 1]!;
  const ML = M[d - 1]!;
  const HL = Math.floor(ML / 2) + 1; // half-spectrum bins along the last dim
  const rows = MT / ML; // lines along the last dim
  const MS = rows * HL; // bins kept per plane
  const mStride = M.map((_, i) => M.slice(i + 1).reduce((p, m) => p * m, 1));
  const xStride = XP.map((_, i) => XP.slice(i + 1).reduce((p, s) => p * s, 1));
  const xPlane = XP.reduce((p, s) => p * s, 1);
  const oStride = O.map((_, i) => O.slice(i + 1).reduce((p, s) => p * s, 1));
  const P = O.reduce((p, o) => p * o, 1);
  const MMAX = Math.max(...M);

  code.line(
    `// conv${d}d by FFT: x [${xShape.join(", ")}] * w [${wShape.join(", ")}] -> y [${yShape.join(", ")}]; stride ${list(a.stride)}, dilation ${list(a.dilation)}, ` +
      `padding ${list(a.padBegin)}..${list(a.padEnd)}${circular ? " circular" : ""}${G > 1 ? `, groups ${G}` : ""}${a.flip ? ", flipped kernel" : ""}`,
  );
  code.line(`// grid ${M.join("×")} (padded input ${XP.join("×")}); spectra keep ${HL} of ${ML} bins along the last dim`);
  if (NB > 1) code.line(`// overlap-save: ${NB} blocks of ${BO} outputs along the last dim, each reading ${(BO - 1) * SL + a.dilation[d - 1]! * (K[d - 1]! - 1) + 1} input cells`);
  const N = sizes.bind(xShape[0]!, "N");

  // --- the transform: per-stage twiddles, bit-reversal tables, an in-place radix-2 FFT per line, every dim in turn
  code.line(`// twiddles e^(-iπk/h) of the stage that joins halves of h cells at twRe[h + k], k < h`);
  code.line(`const twRe = new Float64Array(${MMAX}), twIm = new Float64Array(${MMAX});`);
  code.line(`for (let h = 1; h < ${MMAX}; h <<= 1) for (let k = 0; k < h; k++) { twRe[h + k] = Math.cos(Math.PI * k / h); twIm[h + k] = -Math.sin(Math.PI * k / h); }`);
  const distinct = [...new Set(M)];
  for (const m of distinct) {
    code.line(`const rev${m} = new Int32Array(${m});`);
    code.line(`for (let i = 1, j = 0; i < ${m}; i++) { let bit = ${m >> 1}; for (; j & bit; bit >>= 1) j ^= bit; j ^= bit; rev${m}[i] = j; }`);
  }
  code.line("// one line of n = 2^m cells at off, off + step, ...; inverse: conjugate twiddles (unscaled)");
  code.open("function fftLine(re, im, off, n, step, rev, inverse)");
  code.open("for (let i = 1; i < n; i++)");
  code.line("const j = rev[i];");
  code.open("if (i < j)");
  code.line("const p = off + i * step, q = off + j * step;");
  code.line("let t = re[p]; re[p] = re[q]; re[q] = t;");
  code.line("t = im[p]; im[p] = im[q]; im[q] = t;");
  code.close();
  code.close();
  code.line(`const sign = inverse ? -1 : 1;`);
  code.open("for (let h = 1; h < n; h <<= 1)");
  code.line("const hs = h * step, ls = 2 * hs, end = off + n * step;");
  code.open("for (let i = off; i < end; i += ls)");
  code.open("for (let k = 0, p = i; k < h; k++, p += step)");
  code.line("const wr = twRe[h + k], wi = sign * twIm[h + k], q = p + hs;");
  code.line("const qr = re[q], qi = im[q], xr = qr * wr - qi * wi, xi = qr * wi + qi * wr;");
  code.line("const pr = re[p], pi = im[p];");
  code.line("re[q] = pr - xr; im[q] = pi - xi; re[p] = pr + xr; im[p] = pi + xi;");
  code.close();
  code.close();
  code.close();
  code.close();
  code.open("function fftGrid(re, im, inverse)");
  for (let i = 0; i < d; i++) {
    // lines along dim i: every combination of the other dims' indices
    code.line(`for (let b = 0; b < ${MT}; b += ${M[i]! * mStride[i]!}) for (let q = 0; q < ${mStride[i]}; q++) fftLine(re, im, b + q, ${M[i]}, ${mStride[i]}, rev${M[i]}, inverse);`);
  }
  code.close();
  code.line(`// the line of the mirrored frequency −k (every leading dim negated), per line along the last dim`);
  code.line(`const negRow = new Int32Array(${rows});`);
  if (d === 1) {
    code.line("negRow[0] = 0;");
  } else {
    code.open(`for (let r = 0; r < ${rows}; r++)`);
    code.line("let rest = r, neg = 0;");
    for (let i = d - 2; i >= 0; i--) {
      const rowStride = mStride[i]! / ML;
      code.line(`{ const k = rest % ${M[i]}; rest = (rest - k) / ${M[i]}; neg += ((${M[i]} - k) % ${M[i]}) * ${rowStride}; }`);
    }
    code.line("negRow[r] = neg;");
    code.close();
  }
  code.line(`const zr = new Float64Array(${MT}), zi = new Float64Array(${MT});`);
  code.line("// the half spectra of a transformed pair of real planes a + i·b, into (ar, ai) at ao and (br, bi) at bo");
  code.open("function split(ar, ai, ao, br, bi, bo)");
  code.open(`for (let r = 0; r < ${rows}; r++)`);
  code.line(`const zo = r * ${ML}, no = negRow[r] * ${ML}, h = r * ${HL};`);
  code.open(`for (let k = 0; k < ${HL}; k++)`);
  code.line(`const p = zo + k, q = no + ((${ML} - k) & ${ML - 1});`);
  code.line("const pr = zr[p], pi = zi[p], qr = zr[q], qi = zi[q];");
  code.line("ar[ao + h + k] = 0.5 * (pr + qr); ai[ao + h + k] = 0.5 * (pi - qi);");
  code.line("if (br) { br[bo + h + k] = 0.5 * (pi + qi); bi[bo + h + k] = 0.5 * (qr - pr); }");
  code.close();
  code.close();
  code.close();

  // --- 1. kernel spectra, conjugated (correlation), two (filter, channel) planes per transform
  const WP = F * Cg;
  code.line(`// 1. conj spectra of the ${WP} kernel planes (taps spread by the dilation${a.flip ? ", reversed: flipped kernel" : ""})`);
  code.line(`const hr = new Float64Array(${WP * MS}), hi = new Float64Array(${WP * MS});`);
  const tapCell = range(KV, (t) => {
    let r = t;
    let off = 0;
    for (let i = d - 1; i >= 0; i--) {
      const k = r % K[i]!;
      off += k * a.dilation[i]! * mStride[i]!;
      r = Math.floor(r / K[i]!);
    }
    return off;
  });
  const tapOf = (t: number) => (a.flip ? KV - 1 - t : t);
  code.line(`const tapCell = [${range(KV, (t) => tapCell[tapOf(t)]).join(", ")}];`);
  code.open(`for (let q = 0; q < ${WP}; q += 2)`);
  code.line("zr.fill(0); zi.fill(0);");
  code.line(`for (let t = 0; t < ${KV}; t++) zr[tapCell[t]] = x1[q * ${KV} + t];`);
  code.line(`if (q + 1 < ${WP}) for (let t = 0; t < ${KV}; t++) zi[tapCell[t]] = x1[(q + 1) * ${KV} + t];`);
  code.line("fftGrid(zr, zi, false);");
  code.line(`split(hr, hi, q * ${MS}, q + 1 < ${WP} ? hr : null, hi, (q + 1) * ${MS});`);
  code.close();
  code.line(`for (let i = 0; i < ${WP * MS}; i++) hi[i] = -hi[i];`);

  // --- 2. per sample: input spectra
  code.line(`const xr = new Float64Array(${C * MS}), xi = new Float64Array(${C * MS});`);
  code.line(`const yr = new Float64Array(${MS}), yi = new Float64Array(${MS}), vr = new Float64Array(${MS}), vi = new Float64Array(${MS});`);
  if (padded) code.line(`const xp = new Float32Array(${C * xPlane});`);
  const src = padded ? "xp" : "x0";
  code.open(`for (let n = 0; n < ${N}; n++)`);
  if (padded) {
    const { strides: inStride, total: inPlane } = stridesOf(X.map(String), sizes, "inStride", "inPlane");
    emitPaddedCopy(code, { d, C, X: X.map(String), XP: XP.map(String), xStride: xStride.map(String), xPlane: String(xPlane), inStride, inPlane, padBegin: a.padBegin, padEnd: a.padEnd, circular, names: low });
  }
  const xn = padded ? "0" : bindLocal(code, "xn", prod("n", C * xPlane));
  if (NB > 1) code.open(`for (let blk = 0; blk < ${NB}; blk++)`);
  // the block's first output along the last dim, and the input cells it reads from there
  const ob = NB > 1 ? bindLocal(code, "ob", prod("blk", BO)) : "0";
  const segStart = NB > 1 ? bindLocal(code, "seg", prod("blk", BO * SL)) : "0";
  const segLen = NB > 1 ? bindLocal(code, "segLen", `Math.min(${ML}, ${XP[d - 1]} - ${segStart})`) : String(XP[d - 1]);
  code.line(`// 2. spectra of the ${C} ${padded ? "padded " : ""}input planes${NB > 1 ? " (this block's segment)" : ""}, two per transform`);
  code.open(`for (let c = 0; c < ${C}; c += 2)`);
  code.line("zr.fill(0); zi.fill(0);");
  const guarded = (cond: string | undefined, body: () => void) => {
    if (cond) code.open(`if (${cond})`);
    body();
    if (cond) code.close();
  };
  const copyPlane = (target: string, chan: string) => {
    // the padded plane into the corner of the grid
    let s = sum(xn, prod(chan, xPlane));
    let t = "0";
    for (let i = 0; i < d - 1; i++) {
      const v = `i${low[i]}`;
      code.open(`for (let ${v} = 0; ${v} < ${XP[i]}; ${v}++)`);
      s = bindLocal(code, `s${low[i]}`, sum(s, prod(v, xStride[i]!)));
      t = bindLocal(code, `t${low[i]}`, sum(t, prod(v, mStride[i]!)));
    }
    code.line(`for (let i = 0; i < ${segLen}; i++) ${target}[${sum(t, "i")}] = ${src}[${sum(s, segStart, "i")}];`);
    for (let i = 0; i < d - 1; i++) code.close();
  };
  copyPlane("zr", "c");
  guarded(C % 2 === 1 ? `c + 1 < ${C}` : undefined, () => copyPlane("zi", "c + 1"));
  code.line("fftGrid(zr, zi, false);");
  code.line(`split(xr, xi, c * ${MS}, c + 1 < ${C} ? xr : null, xi, (c + 1) * ${MS});`);
  code.close();

  // --- 3. per pair of filters: multiply-accumulate over the group's channels, one inverse, crop
  code.line(`// 3. per pair of filters: Σ over the group's ${Cg} channels of X_c · conj H_fc, one inverse transform, crop`);
  const scale = 1 / MT;
  code.open(`for (let f = 0; f < ${F}; f += 2)`);
  const accumulate = (fe: string, ar: string, ai: string) => {
    code.line(`${ar}.fill(0); ${ai}.fill(0);`);
    code.open(`for (let cl = 0; cl < ${Cg}; cl++)`);
    const xo = G > 1 ? `(Math.floor(${fe} / ${Fg}) * ${Cg} + cl) * ${MS}` : `cl * ${MS}`;
    code.line(`const xo = ${xo}, ho = (${fe} * ${Cg} + cl) * ${MS};`);
    code.open(`for (let k = 0; k < ${MS}; k++)`);
    code.line("const pr = xr[xo + k], pi = xi[xo + k], qr = hr[ho + k], qi = hi[ho + k];");
    code.line(`${ar}[k] += pr * qr - pi * qi; ${ai}[k] += pr * qi + pi * qr;`);
    code.close();
    code.close();
  };
  accumulate("f", "yr", "yi");
  const odd = F % 2 === 1;
  if (odd) {
    code.open(`if (f + 1 < ${F})`);
    accumulate("(f + 1)", "vr", "vi");
    code.close();
    code.line("else { vr.fill(0); vi.fill(0); }");
  } else {
    accumulate("(f + 1)", "vr", "vi");
  }
  code.line("// the full grid of Y_f + i·Y_f+1 (each half spectrum mirrored into the other half)");
  code.open(`for (let r = 0; r < ${rows}; r++)`);
  code.line(`const zo = r * ${ML}, h = r * ${HL}, hn = negRow[r] * ${HL};`);
  code.line(`for (let k = 0; k < ${HL}; k++) { zr[zo + k] = yr[h + k] - vi[h + k]; zi[zo + k] = yi[h + k] + vr[h + k]; }`);
  code.line(`for (let k = ${HL}; k < ${ML}; k++) { const m = hn + ${ML} - k; zr[zo + k] = yr[m] + vi[m]; zi[zo + k] = vr[m] - yi[m]; }`);
  code.close();
  code.line("fftGrid(zr, zi, true);");
  // crop: output o reads grid cell o·stride
  const f = "f";
  if (a.hasBias) code.line(`const b0 = x2[f]${odd ? `, b1 = f + 1 < ${F} ? x2[f + 1] : 0` : ", b1 = x2[f + 1]"};`);
  const yb = bindLocal(code, "yb", prod(sum(prod("n", F), f), P));
  let zc = "0";
  let oc = "0";
  for (let i = 0; i < d - 1; i++) {
    const o = `o${low[i]}`;
    code.open(`for (let ${o} = 0; ${o} < ${O[i]}; ${o}++)`);
    zc = bindLocal(code, `z${low[i]}`, sum(zc, prod(o, a.stride[i]! * mStride[i]!)));
    oc = bindLocal(code, `a${low[i]}`, sum(oc, prod(o, oStride[i]!)));
  }
  const ow = `o${low[d - 1]}`;
  const blockEnd = NB > 1 ? `Math.min(${BO}, ${O[d - 1]} - ${ob})` : String(O[d - 1]);
  code.open(`for (let ${ow} = 0; ${ow} < ${blockEnd}; ${ow}++)`);
  code.line(`const z = ${sum(zc, prod(ow, SL))};`);
  const oLast = sum(ob, ow);
  const coord = (fe: string) => (dim: number) => (dim === 0 ? "n" : dim === 1 ? fe : dim === d + 1 ? oLast : dim >= 2 && d > 1 ? `o${low[dim - 2]}` : undefined);
  const value = (part: string, b: string) => `${part}[z] * ${scale}${a.hasBias ? ` + ${b}` : ""}`;
  for (const l of storeResult(ctx, { flat: sum(yb, oc, oLast), coord: coord("f") }, value("zr", "b0"))) code.line(l);
  guarded(odd ? `f + 1 < ${F}` : undefined, () => {
    for (const l of storeResult(ctx, { flat: sum(yb, P, oc, oLast), coord: coord("f + 1") }, value("zi", "b1"))) code.line(l);
  });
  code.close();
  for (let i = 0; i < d - 1; i++) code.close();
  code.close(); // filter pairs
  if (NB > 1) code.close(); // blocks
  code.close(); // samples
  return code.toString();
}

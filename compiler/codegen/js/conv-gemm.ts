// JS kernel for `conv` as an implicit GEMM (attrs.algorithm "implicit_gemm",
// chosen by compiler/passes/conv-algorithm.ts; reference semantics in
// compiler/ops/conv.ts).
//
// Per (sample n, group g) the convolution is the matrix product
//   Y[f, p] = Σ_kk W[f, kk] · X̂[kk, p]      f < F/G, kk = (c, tap) < C/G·∏K, p < ∏O
// where X̂[(c, tap), p] = x_padded[c, pos(p) + tapOffset(tap)] is never built
// whole ("implicit"): each tile of PT output positions is gathered into a
// packed panel through two offset tables (one per reduction row, one per
// output position, both computed once per call), then multiplied with the
// weights (packed once per call) by a 4×4 register-tile micro-kernel: per
// reduction step 4 weights and 4 inputs are loaded for 16 multiply-adds, and
// the 16 sums live in locals until the tile is stored. The direct kernel keeps
// its sums in a Float64Array instead (a load and a store per multiply-add), so
// this wins where the reduction is long and the taps are few (1×1 convolutions,
// many channels on small planes); it loses where the direct kernel's sliding
// window reuses each loaded input for a whole kernel row.
//
// Needs static spatial sizes (the tables are sized at compile time); N may be
// symbolic. Zero and circular padding both work: the sample is copied into
// padded planes first, as the direct kernel does.

import type { ConvAttrs } from "../../ops/conv.ts";
import { bindLocal, convFrame, emitPaddedCopy, isLiteral, list, prod, range, Sizes, stridesOf, sum } from "./conv.ts";
import { storeResult } from "./epilogue.ts";
import type { JsEmitCtx } from "./kernel.ts";

/** Code-shape knobs, measured on V8 (Node 20); see compiler/passes/conv-algorithm.ts for the timings. */
export const gemmTuning = {
  /** Output positions per register tile (the unrolled lanes). */
  lanes: 4,
  /** Most filters per register tile (4 × 4 sums: 16 locals, what x64's 16 vector registers hold). */
  filters: 4,
  /** Floats per packed input panel (reduction rows × tile positions): 64 KiB, half of a typical L2 slice. */
  panelFloats: 16384,
  /**
   * Fewest positions per panel, whatever the reduction length: every panel
   * streams the whole packed weight matrix once (3×3×512 channels: 9 MiB),
   * so tiny panels would stream it once per 4 positions.
   */
  minPanelPositions: 16,
};

export function emitConvGemm(ctx: JsEmitCtx): string {
  const a = ctx.node.attrs as unknown as ConvAttrs;
  const wShape = ctx.inShape(1);
  const { d, code, names, K, F, Cg, G, Fg, C, KV, padded, circular } = convFrame(a, wShape);
  const sizes = new Sizes(code);
  const xShape = ctx.inShape(0);
  const yShape = ctx.outShape(0);
  const X = xShape.slice(2).map(Number);
  const O = yShape.slice(2).map(Number);
  const XP = X.map((s, i) => s + a.padBegin[i]! + a.padEnd[i]!);
  const P = O.reduce((p, o) => p * o, 1);
  const KK = Cg * KV;
  const PB = gemmTuning.lanes;
  const FB = [8, 4, 2, 1].find((b) => b <= gemmTuning.filters && Fg % b === 0)!;
  const PP = Math.ceil(P / PB) * PB; // positions rounded up to whole tiles
  const PT = Math.min(PP, Math.max(gemmTuning.minPanelPositions, Math.floor(gemmTuning.panelFloats / KK / PB) * PB));
  const xStride = XP.map((_, i) => XP.slice(i + 1).reduce((p, s) => p * s, 1));
  const xPlane = XP.reduce((p, s) => p * s, 1);
  const tapOff = range(KV, (t) => {
    let r = t;
    let off = 0;
    for (let i = d - 1; i >= 0; i--) {
      off += (r % K[i]!) * a.dilation[i]! * xStride[i]!;
      r = Math.floor(r / K[i]!);
    }
    return off;
  });

  code.line(
    `// conv${d}d as implicit GEMM: x [${xShape.join(", ")}] * w [${wShape.join(", ")}] -> y [${yShape.join(", ")}]; stride ${list(a.stride)}, dilation ${list(a.dilation)}, ` +
      `padding ${list(a.padBegin)}..${list(a.padEnd)}${circular ? " circular" : ""}${G > 1 ? `, groups ${G}` : ""}${a.flip ? ", flipped kernel" : ""}`,
  );
  code.line(`// per (sample, group): y[${Fg} filters, ${P} positions] = w[${Fg}, ${KK}] · x̂[${KK}, ${P}], ${FB}×${PB} register tiles, ${PT}-position panels`);
  const N = sizes.bind(xShape[0]!, "N");
  code.line(`// weights packed once per call: ${FB} filters interleaved per reduction row${a.flip ? " (taps reversed: flipped kernel)" : ""}`);
  code.line(`const wp = new Float32Array(${F * KK});`);
  code.open(`for (let fb = 0; fb < ${F / FB}; fb++)`);
  code.open(`for (let kk = 0; kk < ${KK}; kk++)`);
  const wSrc = a.flip ? `(kk - kk % ${KV}) + ${KV - 1} - kk % ${KV}` : "kk";
  code.line(range(FB, (v) => `wp[${sum(prod(sum(prod("fb", KK), "kk"), FB), v)}] = x1[${sum(prod(sum(prod("fb", FB), v), KK), wSrc)}];`).join(" "));
  code.close();
  code.close();
  code.line(`// reduction row (channel, tap) -> offset in the ${padded ? "padded " : ""}sample; output position -> offset of its window`);
  code.line(`const tapOff = [${tapOff.join(", ")}];`);
  code.line(`const kOff = new Int32Array(${KK});`);
  code.line(`for (let c = 0; c < ${Cg}; c++) for (let t = 0; t < ${KV}; t++) kOff[c * ${KV} + t] = c * ${xPlane} + tapOff[t];`);
  code.line(`// positions past the end (the last tile's spare lanes) read offset 0 and are never stored`);
  code.line(`const pOff = new Int32Array(${PP});`);
  code.open(`for (let p = 0; p < ${P}; p++)`);
  code.line("let r = p;");
  const terms: string[] = [];
  for (let i = d - 1; i >= 0; i--) {
    const o = `o${names[i]!.toLowerCase()}`;
    code.line(i > 0 ? `const ${o} = r % ${O[i]}; r = (r - ${o}) / ${O[i]};` : `const ${o} = r;`);
    terms.unshift(prod(o, a.stride[i]! * xStride[i]!));
  }
  code.line(`pOff[p] = ${sum(...terms)};`);
  code.close();
  code.line(`const panel = new Float32Array(${PT * KK});`);
  if (padded) {
    code.line(`// each sample is copied once into ${circular ? "circularly" : "zero"}-padded planes`);
    code.line(`const xp = new Float32Array(${C * xPlane});`);
  }
  const src = padded ? "xp" : "x0";

  code.open(`for (let n = 0; n < ${N}; n++)`);
  if (padded) {
    const Xs = X.map(String);
    const XPs = XP.map(String);
    const { strides: inStride, total: inPlane } = stridesOf(Xs, sizes, "inStride", "inPlane");
    emitPaddedCopy(code, { d, C, X: Xs, XP: XPs, xStride: xStride.map(String), xPlane: String(xPlane), inStride, inPlane, padBegin: a.padBegin, padEnd: a.padEnd, circular, names: names.map((s) => s.toLowerCase()) });
  }
  if (G > 1) code.open(`for (let g = 0; g < ${G}; g++)`);
  const xg = bindLocal(code, "xg", sum(padded ? "0" : prod("n", C * xPlane), G > 1 ? prod("g", Cg * xPlane) : "0"));
  code.open(`for (let p0 = 0; p0 < ${P}; p0 += ${PT})`);
  const partial = P % PT !== 0;
  if (partial) code.line(`const cnt = Math.min(${PT}, ${P} - p0);`);
  code.line(`// gather the panel: ${PB} positions interleaved per reduction row`);
  code.open(`for (let jb = 0; jb < ${partial ? `cnt` : PT}; jb += ${PB})`);
  code.line(`const ${range(PB, (u) => `q${u} = ${sum(xg, `pOff[${sum("p0", "jb", u)}]`)}`).join(", ")};`);
  code.line(`const pb = jb * ${KK};`);
  code.open(`for (let kk = 0; kk < ${KK}; kk++)`);
  code.line(`const ko = kOff[kk], at = pb + kk * ${PB};`);
  code.line(range(PB, (u) => `panel[${sum("at", u)}] = ${src}[q${u} + ko];`).join(" "));
  code.close();
  code.close();

  code.open(`for (let fb = 0; fb < ${Fg / FB}; fb++)`);
  const f = bindLocal(code, "f", sum(G > 1 ? prod("g", Fg) : "0", prod("fb", FB)));
  const wBase = bindLocal(code, "wBase", prod(G > 1 ? sum(prod("g", Fg / FB), "fb") : "fb", KK * FB));
  if (a.hasBias) code.line(`const ${range(FB, (v) => `b${v} = x2[${sum(f, v)}]`).join(", ")};`);
  const yRow = range(FB, (v) => bindLocal(code, `yRow${v}`, prod(sum(prod("n", F), f, v), P)));
  code.open(`for (let jb = 0; jb < ${partial ? "cnt" : PT}; jb += ${PB})`);
  const acc = (v: number, u: number) => `s${v}_${u}`;
  code.line(`let ${range(FB, (v) => range(PB, (u) => `${acc(v, u)} = 0`)).flat().join(", ")};`);
  code.line(`let wi = wBase, bi = jb * ${KK};`);
  code.open(`for (let kk = 0; kk < ${KK}; kk++, wi += ${FB}, bi += ${PB})`);
  code.line(`const ${range(FB, (v) => `a${v} = wp[${sum("wi", v)}]`).join(", ")};`);
  code.line(`const ${range(PB, (u) => `c${u} = panel[${sum("bi", u)}]`).join(", ")};`);
  for (let v = 0; v < FB; v++) code.line(range(PB, (u) => `${acc(v, u)} += a${v} * c${u};`).join(" "));
  code.close();
  const p = bindLocal(code, "p", sum("p0", "jb"));
  const tail = P % PB !== 0;
  for (let u = 0; u < PB; u++) {
    const lines = range(FB, (v) =>
      storeResult(ctx, { flat: sum(yRow[v]!, p, u), coord: (dim) => (dim === 0 ? "n" : dim === 1 ? sum(f, v) : undefined) }, a.hasBias ? `${acc(v, u)} + b${v}` : acc(v, u)),
    ).flat();
    if (tail && u > 0) {
      code.open(`if (${sum(p, u)} < ${P})`);
      for (const l of lines) code.line(l);
      code.close();
    } else {
      for (const l of lines) code.line(l);
    }
  }
  code.close(); // position tiles
  code.close(); // filter blocks
  code.close(); // panels
  if (G > 1) code.close();
  code.close(); // samples
  return code.toString();
}

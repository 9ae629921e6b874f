// JS kernels for the pooling family: `pool`, `global_pool` and `kmax_pool`,
// and the backward ops `pool_grad` and `kmax_pool_grad` (compiler/ops/pool.ts holds the reference semantics these must match:
// masks broadcast against x, empty windows give 0, or −inf for an unmasked max,
// avg divides by the padded-window size with count_include_pad, else by the
// eligible cells).
//
// pool: along each spatial dim a window is either always inside the input
// (decided at compile time: no begin padding and the last window fits), then
// its taps run over the whole window, or it is clipped at the edges, then the
// valid tap range of every output position comes from a small table built
// once per call, so no tap tests a bound.
//
// pool_grad: dx is zeroed, then the windows are walked in output order and
// each window's dy is added to its cells (max: to the first eligible maximum,
// found by the forward's strict `>` scan; avg: dy / divisor to every eligible
// cell; sum: dy to every eligible cell). A sequential scatter is deterministic
// and visits each window once; the WGSL twin gathers instead (no float atomics).
//
// kmax_pool_grad: the forward's selection per line, then dx along the line is
// zeroed and the slot-th chosen cell receives dy at that slot (0 for a masked pick).

import type { GlobalPoolAttrs, KMaxPoolAttrs, PoolAttrs } from "../../ops/pool.ts";
import { bindLocal, Code, emitWindowGuard, isLiteral, list, prod, range, Sizes, spatialNames, stridesOf, sum } from "./conv.ts";
import type { JsEmitCtx, JsKernel } from "./kernel.ts";

/** Innermost window dims up to this size are unrolled when they need no clipping. */
const MAX_UNROLLED_WINDOW = 4;

/** Row-major strides as unbound (but folded) expressions, so that contiguous dims can be recognised. */
function rawStrides(shape: readonly string[]): string[] {
  const out = new Array<string>(shape.length);
  let s = "1";
  for (let i = shape.length - 1; i >= 0; i--) {
    out[i] = s;
    s = prod(s, shape[i]!);
  }
  return out;
}

/** Per-dim strides of the mask (input 1) read at an index of x: 0 where the mask is broadcast (size 1 or missing dim). */
function maskStrides(ctx: JsEmitCtx, xRank: number): string[] {
  const mShape = ctx.inShape(1);
  const raw = rawStrides(mShape);
  const off = xRank - mShape.length;
  return range(xRank, (i) => (i < off || mShape[i - off] === "1" ? "0" : raw[i - off]!));
}

// ---------------------------------------------------------------------------
// pool
// ---------------------------------------------------------------------------

function emitPool(ctx: JsEmitCtx): string {
  const a = ctx.node.attrs as unknown as PoolAttrs;
  const d = a.window.length;
  const last = d - 1;
  const code = new Code();
  const sizes = new Sizes(code);
  const names = spatialNames(d);
  const low = names.map((n) => n.toLowerCase());
  const K = a.window;
  const xShape = ctx.inShape(0);
  const yShape = ctx.outShape(0);
  code.line(
    `// ${a.kind}pool${d}d: x [${xShape.join(", ")}] -> y [${yShape.join(", ")}]; window ${list(K)}, stride ${list(a.stride)}, dilation ${list(a.dilation)}, ` +
      `padding ${list(a.padBegin)}..${list(a.padEnd)}${a.ceilMode ? ", ceil_mode" : ""}${a.kind === "avg" && !a.countIncludePad ? ", count_include_pad=false" : ""}${a.hasMask ? ", masked" : ""}`,
  );
  const N = sizes.bind(xShape[0]!, "N");
  const C = sizes.bind(xShape[1]!, "C");
  const X = names.map((nm, i) => sizes.bind(xShape[2 + i]!, nm));
  const O = names.map((nm, i) => sizes.bind(yShape[2 + i]!, `O${nm}`));
  emitWindowGuard(code, "window", K, a.dilation, X, O, a.padBegin.map((p, i) => p + a.padEnd[i]!));
  const { strides: xStride, total: xPlane } = stridesOf(X, sizes, "xStride", "xPlane");
  const { strides: oStride, total: oPlane } = stridesOf(O, sizes, "oStride", "oPlane");
  const ms = a.hasMask ? maskStrides(ctx, d + 2).map((s, i) => sizes.bind(s, `mStride${i}`)) : undefined;

  // A dim needs no clipping when every window lies inside the input.
  const full = K.map((k, i) => {
    if (a.padBegin[i]! > 0) return false;
    const x = X[i]!;
    const o = O[i]!;
    if (isLiteral(x) && isLiteral(o)) return (Number(o) - 1) * a.stride[i]! + (k - 1) * a.dilation[i]! <= Number(x) - 1;
    return a.padEnd[i] === 0 && !a.ceilMode;
  });
  const divideByPadded = a.kind === "avg" && a.countIncludePad && !a.hasMask;
  for (let i = 0; i < d; i++) {
    if (full[i]) continue;
    const v = low[i]!;
    code.line(`// dim ${2 + i}: window taps inside the input are [${v}Lo[o], ${v}Hi[o])${divideByPadded ? `, ${v}Pad[o] of them inside the padded extent` : ""}`);
    code.line(`const ${v}Lo = new Int32Array(${O[i]}), ${v}Hi = new Int32Array(${O[i]})${divideByPadded ? `, ${v}Pad = new Int32Array(${O[i]})` : ""};`);
    code.open(`for (let o = 0; o < ${O[i]}; o++)`);
    code.line(`const p0 = ${sum(prod("o", a.stride[i]!), -a.padBegin[i]!)};`);
    code.line(`let lo = ${K[i]}, hi = 0${divideByPadded ? ", pad = 0" : ""};`);
    code.open(`for (let k = 0; k < ${K[i]}; k++)`);
    code.line(`const p = ${sum("p0", prod("k", a.dilation[i]!))};`);
    code.open(`if (p >= 0 && p < ${X[i]})`);
    code.line("if (k < lo) lo = k;");
    code.line("hi = k + 1;");
    code.close();
    if (divideByPadded) code.line(`if (p >= ${-a.padBegin[i]!} && p < ${sum(X[i]!, a.padEnd[i]!)}) pad++;`);
    code.close();
    code.line(`${v}Lo[o] = lo < hi ? lo : hi;`);
    code.line(`${v}Hi[o] = hi;`);
    if (divideByPadded) code.line(`${v}Pad[o] = pad;`);
    code.close();
  }

  code.open(`for (let n = 0; n < ${N}; n++)`);
  code.open(`for (let c = 0; c < ${C}; c++)`);
  const xc = bindLocal(code, "xc", prod(sum(prod("n", C), "c"), xPlane));
  const yc = bindLocal(code, "yc", prod(sum(prod("n", C), "c"), oPlane));
  const mc = ms ? bindLocal(code, "mc", sum(prod("n", ms[0]!), prod("c", ms[1]!))) : "";
  let yo = yc;
  const lo: string[] = [];
  const hi: string[] = [];
  for (let i = 0; i < d; i++) {
    const o = `o${low[i]}`;
    code.open(`for (let ${o} = 0; ${o} < ${O[i]}; ${o}++)`);
    code.line(`const p${low[i]} = ${sum(prod(o, a.stride[i]!), -a.padBegin[i]!)};`);
    if (full[i]) {
      lo.push("0");
      hi.push(String(K[i]));
    } else {
      code.line(`const k${low[i]}Lo = ${low[i]}Lo[${o}], k${low[i]}Hi = ${low[i]}Hi[${o}];`);
      lo.push(`k${low[i]}Lo`);
      hi.push(`k${low[i]}Hi`);
    }
    yo = i < last ? bindLocal(code, `y${low[i]}`, sum(yo, prod(o, oStride[i]!))) : sum(yo, `o${low[i]}`);
  }
  const track = a.kind === "max" ? "m" : "s";
  code.line(`let ${a.kind === "max" ? "m = -Infinity" : "s = 0"}${a.hasMask ? ", cnt = 0" : ""};`);
  let xo = xc;
  let mo = mc;
  const unrollLast = full[last] && K[last]! <= MAX_UNROLLED_WINDOW;
  for (let i = 0; i < d; i++) {
    const k = `k${low[i]}`;
    const at = sum(`p${low[i]}`, prod(k, a.dilation[i]!));
    if (i === last && unrollLast) break;
    code.open(`for (let ${k} = ${lo[i]}; ${k} < ${hi[i]}; ${k}++)`);
    if (i < last) {
      xo = bindLocal(code, `x${low[i]}`, sum(xo, prod(at, xStride[i]!)));
      if (ms) mo = bindLocal(code, `m${low[i]}`, sum(mo, prod(at, ms[2 + i]!)));
    }
  }
  const visit = (at: string, v: string) => {
    const update = track === "m" ? `if (${v} > m) m = ${v};` : `s += ${v};`;
    code.line(`const ${v} = x0[${sum(xo, at)}];`);
    if (ms) code.line(`if (x1[${sum(mo, prod(at, ms[2 + last]!))}] !== 0) { ${update} cnt++; }`);
    else code.line(update);
  };
  if (unrollLast) {
    for (let k = 0; k < K[last]!; k++) visit(sum(`p${low[last]}`, k * a.dilation[last]!), `v${k}`);
  } else {
    visit(sum(`p${low[last]}`, prod(`k${low[last]}`, a.dilation[last]!)), "v");
  }
  for (let i = 0; i < d - (unrollLast ? 1 : 0); i++) code.close();

  // Cells inside the input (a product of per-dim ranges) and, for avg with count_include_pad, the padded window size.
  const inside = range(d, (i) => (full[i] ? String(K[i]) : `k${low[i]}Hi - k${low[i]}Lo`));
  let result: string;
  if (a.kind === "max") result = a.hasMask ? "cnt > 0 ? m : 0" : "m";
  else if (a.kind === "sum") result = "s";
  else if (a.hasMask) result = "cnt > 0 ? s / cnt : 0";
  else {
    const count = prod(...inside);
    const divisor = a.countIncludePad ? prod(...range(d, (i) => (full[i] ? String(K[i]) : `${low[i]}Pad[o${low[i]}]`))) : count;
    result = isLiteral(count) ? (Number(count) > 0 ? `s / ${divisor}` : "0") : `${count} > 0 ? s / ${divisor.includes(" ") ? `(${divisor})` : divisor} : 0`;
  }
  code.line(`y0[${yo}] = ${result};`);
  for (let i = 0; i < d; i++) code.close();
  code.close();
  code.close();
  return code.toString();
}

// ---------------------------------------------------------------------------
// pool_grad
// ---------------------------------------------------------------------------

function emitPoolGrad(ctx: JsEmitCtx): string {
  const a = ctx.node.attrs as unknown as PoolAttrs;
  const d = a.window.length;
  const last = d - 1;
  const code = new Code();
  const sizes = new Sizes(code);
  const names = spatialNames(d);
  const low = names.map((n) => n.toLowerCase());
  const K = a.window;
  const dyIn = a.hasMask ? 2 : 1;
  const dyBuf = ctx.input(dyIn);
  const xShape = ctx.inShape(0);
  const yShape = ctx.inShape(dyIn);
  const how = a.kind === "max" ? "dy to the first eligible maximum of its window" : a.kind === "avg" ? "dy / divisor to every eligible cell of its window" : "dy to every eligible cell of its window";
  code.line(
    `// ${a.kind}pool${d}d backward: dx [${xShape.join(", ")}] from dy [${yShape.join(", ")}]; window ${list(K)}, stride ${list(a.stride)}, dilation ${list(a.dilation)}, ` +
      `padding ${list(a.padBegin)}..${list(a.padEnd)}${a.ceilMode ? ", ceil_mode" : ""}${a.kind === "avg" && !a.countIncludePad ? ", count_include_pad=false" : ""}${a.hasMask ? ", masked" : ""}`,
  );
  code.line(`// a sequential scatter over the windows in output order: each adds ${how}`);
  const N = sizes.bind(xShape[0]!, "N");
  const C = sizes.bind(xShape[1]!, "C");
  const X = names.map((nm, i) => sizes.bind(xShape[2 + i]!, nm));
  const O = names.map((nm, i) => sizes.bind(yShape[2 + i]!, `O${nm}`));
  const { strides: xStride, total: xPlane } = stridesOf(X, sizes, "xStride", "xPlane");
  const { strides: oStride, total: oPlane } = stridesOf(O, sizes, "oStride", "oPlane");
  const ms = a.hasMask ? maskStrides(ctx, d + 2).map((s, i) => sizes.bind(s, `mStride${i}`)) : undefined;
  // without padding or ceil_mode every window of an output lies inside the input
  const clipped = K.map((_, i) => a.padBegin[i]! > 0 || a.padEnd[i]! > 0 || a.ceilMode);
  const divideByPadded = a.kind === "avg" && a.countIncludePad && !a.hasMask;
  code.line(`${ctx.output(0)}.fill(0);`);

  code.open(`for (let n = 0; n < ${N}; n++)`);
  code.open(`for (let c = 0; c < ${C}; c++)`);
  const xc = bindLocal(code, "xc", prod(sum(prod("n", C), "c"), xPlane));
  const yc = bindLocal(code, "yc", prod(sum(prod("n", C), "c"), oPlane));
  const mc = ms ? bindLocal(code, "mc", sum(prod("n", ms[0]!), prod("c", ms[1]!))) : "";
  let yo = yc;
  for (let i = 0; i < d; i++) {
    const o = `o${low[i]}`;
    code.open(`for (let ${o} = 0; ${o} < ${O[i]}; ${o}++)`);
    code.line(`const p${low[i]} = ${sum(prod(o, a.stride[i]!), -a.padBegin[i]!)};`);
    yo = i < last ? bindLocal(code, `y${low[i]}`, sum(yo, prod(o, oStride[i]!))) : sum(yo, o);
  }
  code.line(`const g = ${dyBuf}[${yo}];`);

  /** Loops over the window's eligible cells; `body` gets the flat offset of the cell in x. */
  const sweep = (body: (xi: string) => void) => {
    let xo = xc;
    let mo = mc;
    for (let i = 0; i < d; i++) {
      const k = `k${low[i]}`;
      const q = `q${low[i]}`;
      code.open(`for (let ${k} = 0; ${k} < ${K[i]}; ${k}++)`);
      code.line(`const ${q} = ${sum(`p${low[i]}`, prod(k, a.dilation[i]!))};`);
      if (clipped[i]) code.line(`if (${q} < 0 || ${q} >= ${X[i]}) continue;`);
      xo = i < last ? bindLocal(code, `x${low[i]}`, sum(xo, prod(q, xStride[i]!))) : sum(xo, q);
      if (ms) mo = i < last ? bindLocal(code, `m${low[i]}`, sum(mo, prod(q, ms[2 + i]!))) : sum(mo, prod(q, ms[2 + i]!));
    }
    if (ms) code.line(`if (x1[${mo}] === 0) continue;`);
    body(xo);
    for (let i = 0; i < d; i++) code.close();
  };

  const dx = ctx.output(0);
  if (a.kind === "max") {
    code.line("let best = -Infinity, at = -1;");
    sweep((xi) => {
      code.line(`const v = x0[${xi}];`);
      code.line(`if (v > best) { best = v; at = ${xi}; }`);
    });
    code.line(`if (at >= 0) ${dx}[at] += g;`);
  } else if (a.kind === "sum") {
    sweep((xi) => code.line(`${dx}[${xi}] += g;`));
  } else {
    code.line("let cnt = 0;");
    sweep(() => code.line("cnt++;"));
    let divisor = "cnt";
    if (divideByPadded) {
      code.line("// count_include_pad: the window cells inside the padded extent [−pb, X + pe), per dim");
      for (let i = 0; i < d; i++) {
        const v = low[i]!;
        code.line(`let pad${v} = 0;`);
        code.line(`for (let k = 0; k < ${K[i]}; k++) { const q = ${sum(`p${v}`, prod("k", a.dilation[i]!))}; if (q >= ${-a.padBegin[i]!} && q < ${sum(X[i]!, a.padEnd[i]!)}) pad${v}++; }`);
      }
      divisor = low.map((v) => `pad${v}`).join(" * ");
    }
    code.open("if (cnt > 0)");
    code.line(`const share = g / ${d > 1 && divideByPadded ? `(${divisor})` : divisor};`);
    sweep((xi) => code.line(`${dx}[${xi}] += share;`));
    code.close();
  }
  for (let i = 0; i < d; i++) code.close();
  code.close();
  code.close();
  return code.toString();
}

// ---------------------------------------------------------------------------
// global_pool
// ---------------------------------------------------------------------------

function emitGlobalPool(ctx: JsEmitCtx): string {
  const a = ctx.node.attrs as unknown as GlobalPoolAttrs;
  const code = new Code();
  const sizes = new Sizes(code);
  const xShape = ctx.inShape(0);
  const r = xShape.length;
  code.line(`// global ${a.kind} pool over the spatial dims: x [${xShape.join(", ")}] -> y [${ctx.outShape(0).join(", ")}]${a.hasMask ? ", masked" : ""}`);
  const N = sizes.bind(xShape[0]!, "N");
  const C = sizes.bind(xShape[1]!, "C");
  const X = xShape.slice(2).map((s, i) => sizes.bind(s, `S${i}`));
  const P = sizes.bind(prod(...X), "P");
  const xRaw = rawStrides(X);
  const msRaw = a.hasMask ? maskStrides(ctx, r) : undefined;
  // The mask is read with the same flat spatial index when it is not broadcast along any spatial dim.
  const flat = !msRaw || msRaw.slice(2).every((s, i) => s === xRaw[i]);
  const ms = msRaw?.map((s, i) => (i < 2 || !flat ? sizes.bind(s, `mStride${i}`) : s));
  const track = a.kind === "max" ? "m" : "s";
  code.open(`for (let n = 0; n < ${N}; n++)`);
  code.open(`for (let c = 0; c < ${C}; c++)`);
  const xc = bindLocal(code, "xc", prod(sum(prod("n", C), "c"), P));
  const mc = ms ? bindLocal(code, "mc", sum(prod("n", ms[0]!), prod("c", ms[1]!))) : "";
  code.line(`let ${track === "m" ? "m = -Infinity" : "s = 0"}${ms ? ", cnt = 0" : ""};`);
  const update = track === "m" ? "if (v > m) m = v;" : "s += v;";
  if (flat) {
    code.open(`for (let i = 0; i < ${P}; i++)`);
    code.line(`const v = x0[${sum(xc, "i")}];`);
    code.line(ms ? `if (x1[${sum(mc, "i")}] !== 0) { ${update} cnt++; }` : update);
    code.close();
  } else {
    // the mask is broadcast along some spatial dims: walk them one by one
    const xs = X.map((_, i) => sizes.bind(xRaw[i]!, `xStride${i}`));
    let xo = xc;
    let mo = mc;
    X.forEach((s, i) => {
      code.open(`for (let i${i} = 0; i${i} < ${s}; i${i}++)`);
      if (i < X.length - 1) {
        xo = bindLocal(code, `xo${i}`, sum(xo, prod(`i${i}`, xs[i]!)));
        mo = bindLocal(code, `mo${i}`, sum(mo, prod(`i${i}`, ms![2 + i]!)));
      }
    });
    const li = `i${X.length - 1}`;
    code.line(`const v = x0[${sum(xo, li)}];`);
    code.line(`if (x1[${sum(mo, prod(li, ms![r - 1]!))}] !== 0) { ${update} cnt++; }`);
    X.forEach(() => code.close());
  }
  let result: string;
  if (a.kind === "max") result = ms ? "cnt > 0 ? m : 0" : "m";
  else if (a.kind === "sum") result = "s";
  else if (ms) result = "cnt > 0 ? s / cnt : 0";
  else result = isLiteral(P) ? (Number(P) > 0 ? `s / ${P}` : "0") : `${P} > 0 ? s / ${P} : 0`;
  code.line(`y0[${sum(prod("n", C), "c")}] = ${result};`);
  code.close();
  code.close();
  return code.toString();
}

// ---------------------------------------------------------------------------
// kmax_pool
// ---------------------------------------------------------------------------

/** kmax_pool, or with `backward` kmax_pool_grad (x[, mask], dy): the same selection, then dx instead of y. */
function emitKMaxPool(ctx: JsEmitCtx, backward = false): string {
  const a = ctx.node.attrs as unknown as KMaxPoolAttrs;
  const code = new Code();
  const sizes = new Sizes(code);
  const xShape = ctx.inShape(0);
  const dyIn = a.hasMask ? 2 : 1;
  const yShape = backward ? ctx.inShape(dyIn) : ctx.outShape(0);
  const r = xShape.length;
  const K = a.k;
  if (backward) {
    code.line(`// backward of the ${K} largest values along axis ${a.axis}: dx [${xShape.join(", ")}] from dy [${yShape.join(", ")}]${a.hasMask ? "; masked cells rank last" : ""}`);
    code.line("// per line: the forward's selection, then the slot-th chosen cell gets dy at that slot (0 for a masked pick), every other cell 0");
  } else {
    code.line(`// the ${K} largest values along axis ${a.axis} of x [${xShape.join(", ")}], kept in their original order -> y [${yShape.join(", ")}]${a.hasMask ? "; masked cells rank last" : ""}`);
  }
  const L = sizes.bind(xShape[a.axis]!, "L");
  if (!isLiteral(L)) code.line(`if (${L} < ${K}) T.fail("k=${K} is larger than the size " + ${L} + " of axis ${a.axis}");`);
  const xRaw = rawStrides(xShape);
  const yRaw = rawStrides(yShape);
  const mRaw = a.hasMask ? maskStrides(ctx, r) : range(r, () => "0");

  // Loops over the other dims, merging neighbours that are contiguous in x, y and the mask.
  type LoopDim = { size: string; xs: string; ys: string; ms: string };
  const loops: LoopDim[] = [];
  let prev = -2;
  for (let i = 0; i < r; i++) {
    if (i === a.axis) continue;
    const dim = { size: xShape[i]!, xs: xRaw[i]!, ys: yRaw[i]!, ms: mRaw[i]! };
    const outer = loops[loops.length - 1];
    const contiguous = (o: string, inner: string) => o === prod(inner, dim.size);
    if (outer && prev === i - 1 && contiguous(outer.xs, dim.xs) && contiguous(outer.ys, dim.ys) && contiguous(outer.ms, dim.ms)) {
      loops[loops.length - 1] = { size: prod(outer.size, dim.size), xs: dim.xs, ys: dim.ys, ms: dim.ms };
    } else {
      loops.push(dim);
    }
    prev = i;
  }
  const bound = loops.map((l, i) => ({
    size: sizes.bind(l.size, `n${i}`),
    xs: sizes.bind(l.xs, `xStride${i}`),
    ys: sizes.bind(l.ys, `yStride${i}`),
    ms: sizes.bind(l.ms, `mStride${i}`),
  }));
  const xa = sizes.bind(xRaw[a.axis]!, "xStep");
  const ya = sizes.bind(yRaw[a.axis]!, "yStep");
  const ma = a.hasMask ? sizes.bind(mRaw[a.axis]!, "mStep") : "0";
  code.line("// the best k so far, by rank: larger first, ties to the earlier index" + (a.hasMask ? ", unmasked before masked" : ""));
  code.line(`const topV = new Float64Array(${K}), topJ = new Int32Array(${K})${a.hasMask ? `, topOk = new Uint8Array(${K})` : ""};`);
  code.line(`const chosen = new Uint8Array(${L});`);
  let xo = "0";
  let yo = "0";
  let mo = "0";
  bound.forEach((l, i) => {
    code.open(`for (let i${i} = 0; i${i} < ${l.size}; i${i}++)`);
    xo = bindLocal(code, `xo${i}`, sum(xo, prod(`i${i}`, l.xs)));
    yo = bindLocal(code, `yo${i}`, sum(yo, prod(`i${i}`, l.ys)));
    if (a.hasMask) mo = bindLocal(code, `mo${i}`, sum(mo, prod(`i${i}`, l.ms)));
  });
  code.line("let filled = 0;");
  code.open(`for (let j = 0; j < ${L}; j++)`);
  code.line(`const v = x0[${sum(xo, prod("j", xa))}];`);
  const lastSlot = K - 1;
  if (a.hasMask) {
    code.line(`const ok = x1[${sum(mo, prod("j", ma))}] !== 0;`);
    code.open(`if (filled < ${K} || (ok && (topOk[${lastSlot}] === 0 || v > topV[${lastSlot}])))`);
    code.line(`let s = filled < ${K} ? filled++ : ${lastSlot};`);
    code.line("// a masked cell only ever joins at the end: every kept cell has a lower index");
    code.open("if (ok)");
    code.open("while (s > 0 && (topOk[s - 1] === 0 || v > topV[s - 1]))");
    code.line("topV[s] = topV[s - 1]; topJ[s] = topJ[s - 1]; topOk[s] = topOk[s - 1];");
    code.line("s--;");
    code.close();
    code.close();
    code.line("topV[s] = v; topJ[s] = j; topOk[s] = ok ? 1 : 0;");
    code.close();
  } else {
    code.open(`if (filled < ${K} || v > topV[${lastSlot}])`);
    code.line(`let s = filled < ${K} ? filled++ : ${lastSlot};`);
    code.open("while (s > 0 && v > topV[s - 1])");
    code.line("topV[s] = topV[s - 1]; topJ[s] = topJ[s - 1];");
    code.line("s--;");
    code.close();
    code.line("topV[s] = v; topJ[s] = j;");
    code.close();
  }
  code.close();
  if (backward) {
    code.line("// dx along the line: zero, then dy to the chosen cells in their original order");
    code.line(`for (let j = 0; j < ${L}; j++) y0[${sum(xo, prod("j", xa))}] = 0;`);
  } else {
    code.line("// write the chosen cells back in their original order");
  }
  code.line(`for (let s = 0; s < ${K}; s++) chosen[topJ[s]] = 1;`);
  code.open(`for (let j = 0, slot = 0; slot < ${K}; j++)`);
  code.open("if (chosen[j] === 1)");
  code.line("chosen[j] = 0;");
  const value = backward ? `x${dyIn}[${sum(yo, prod("slot", ya))}]` : `x0[${sum(xo, prod("j", xa))}]`;
  const target = backward ? `y0[${sum(xo, prod("j", xa))}]` : `y0[${sum(yo, prod("slot", ya))}]`;
  code.line(`${target} = ${a.hasMask ? `x1[${sum(mo, prod("j", ma))}] !== 0 ? ${value} : 0` : value};`);
  code.line("slot++;");
  code.close();
  code.close();
  bound.forEach(() => code.close());
  return code.toString();
}

export const kernels: JsKernel[] = [
  { op: "pool", emit: emitPool },
  { op: "global_pool", emit: emitGlobalPool },
  { op: "kmax_pool", emit: (ctx) => emitKMaxPool(ctx) },
  { op: "pool_grad", emit: emitPoolGrad },
  { op: "kmax_pool_grad", emit: (ctx) => emitKMaxPool(ctx, true) },
];

// WGSL kernel of a fused_epilogue with `pool`: a conv, its elementwise
// epilogue and a non-overlapping max/avg pool (stride = window, no padding,
// floor mode) in one pass, so the conv's full-size result is never stored.
//
// The register tile of conv.ts's "cpu" variant, stretched over whole pooling
// windows: one invocation per (sample, block of FB filters, pooled row
// (qd, qh), segment of TQ pooled columns). It accumulates the conv outputs of
// the windows' WR = window_d·window_h rows × TQ·window_w columns for its FB
// filters; per input channel and kernel row, each of the WR input rows is
// loaded once for all its taps (the tile's column offsets), each weight once
// for every row and column. Then each conv output runs through the epilogue
// function (epilogue.ts, which returns the program's result in this mode) and
// each window is reduced in window order as the reference pool does: max keeps
// the first largest (`v > best`: NaNs never win, an all-NaN window gives −inf),
// avg divides the sum by the window's size. Both adapter classes get this one
// form (no workgroup memory); a pooled column past the edge is not stored.

import type { EpiloguePool } from "../../ops/fused.ts";
import { ceilDiv, Code, convGeometry, convTuning, convHeader, DIM_NAMES, indent, largestDivisorAtMost, letLocal, Lets, NEG_INF_FN, paren, prod, range, samplePosition, sum, to3 } from "./conv.ts";
import type { WgslEpilogue } from "./epilogue.ts";
import { flatDispatch, type WgslEmitCtx, type WgslKernelResult } from "./kernel.ts";

/** Most filters per invocation, and most accumulators (filters × rows × columns) per invocation. */
const POOL_FILTERS = 4;
const POOL_ACCUMULATORS = 96;
/** Most pooled columns per invocation (when the pooled row length is symbolic: 4). */
const POOL_COLUMNS = 8;

/**
 * Pooled columns per invocation: the fewest conv-column slots over a pooled
 * row, counting a segment's fixed loads as ~6 columns (as pickCpuPlan in
 * conv.ts), within the accumulator budget.
 */
function pooledColumns(QW: string, FB: number, WR: number, ww: number): number {
  const most = Math.max(1, Math.min(POOL_COLUMNS, Math.floor(POOL_ACCUMULATORS / (FB * WR * ww))));
  if (!/^\d+$/.test(QW)) return Math.min(most, 4);
  let best = 1;
  let bestCost = Infinity;
  for (let t = 1; t <= Math.min(most, Number(QW)); t++) {
    const cost = Math.ceil(Number(QW) / t) * (t * ww + 6);
    if (cost < bestCost) [best, bestCost] = [t, cost];
  }
  return best;
}

/**
 * `ctx` is the base conv's view (conv-sized result); `pooledShapeJs` the
 * pooled output's dims (JS over S), for the dispatch.
 */
export function emitConvPool(ctx: WgslEmitCtx, epilogue: WgslEpilogue, pool: EpiloguePool, pooledShapeJs: readonly string[]): WgslKernelResult {
  const c = new Code();
  const lets = new Lets(c);
  const g = convGeometry(ctx, lets, c);
  const FB = largestDivisorAtMost(g.Fg, POOL_FILTERS);
  const win = to3(pool.window, 1);
  const WR = win[0]! * win[1]!;
  const [, OH, OW] = g.O as [string, string, string];
  const [, XH, XW] = g.X as [string, string, string];
  const Q = g.O.map((o, k) => (win[k] === 1 ? o : /^\d+$/.test(o) ? String(Math.floor(Number(o) / win[k]!)) : lets.bind(`${paren(o)} / ${win[k]}`, `Q${DIM_NAMES[k]}`)));
  const TQ = pooledColumns(Q[2]!, FB, WR, win[2]!);
  const CW = TQ * win[2]!;
  const blocks = g.F / FB;
  const segs = lets.bind(ceilDiv(Q[2]!, TQ), "segments");
  const [pD, pH, pW] = to3(pooledShapeJs.slice(2), "1");
  const count = `(${pooledShapeJs[0]}) * ${blocks} * (${pD}) * (${pH}) * Math.ceil((${pW}) / ${TQ})`;
  const f = flatDispatch(count);
  const total = lets.bind(prod(g.N, blocks, Q[0]!, Q[1]!, segs), "total");
  c.line(`let i = i32(${f.index});`);
  c.line(`if (i >= ${total}) { return; }`);
  // i → (n, filter block, qd, qh, segment)
  const seg = letLocal(c, "seg", segs === "1" ? "0" : `i % ${paren(segs)}`);
  let rest = letLocal(c, "rw", segs === "1" ? "i" : `i / ${paren(segs)}`);
  const q: string[] = [];
  for (const k of [1, 0]) {
    if (Q[k] === "1") {
      q[k] = "0";
      continue;
    }
    const nm = DIM_NAMES[k]!.toLowerCase();
    q[k] = letLocal(c, `q${nm}`, `${rest} % ${paren(Q[k]!)}`);
    rest = letLocal(c, `r${nm}`, `${rest} / ${paren(Q[k]!)}`);
  }
  const f0 = letLocal(c, "f0", prod(blocks === 1 ? "0" : `${rest} % ${blocks}`, FB));
  const n = letLocal(c, "n", blocks === 1 ? rest : `${rest} / ${blocks}`);
  const grp = g.G > 1 ? letLocal(c, "grp", `${f0} / ${g.Fg}`) : "0";
  const xg = letLocal(c, "xg", prod(sum(prod(n, g.C), prod(grp, g.Cg)), g.inPlane));
  // the tile's conv rows (od, oh) per window row r, and its first conv column
  const rows = range(WR, (r) => [sum(prod(q[0]!, win[0]!), Math.floor(r / win[1]!)), sum(prod(q[1]!, win[1]!), r % win[1]!)] as const);
  const ow0 = letLocal(c, "ow0", prod(seg, CW));
  const pw0 = letLocal(c, "pw0", sum(prod(ow0, g.s[2]!), -g.pb[2]!));
  // input columns read by the tile, relative to pw0 (clamped, and tested where zero padding may be hit)
  const offsets = [...new Set(range(CW, (col) => range(g.K[2]!, (k) => col * g.s[2]! + k * g.dl[2]!)).flat())].sort((a, b) => a - b);
  c.line(`// input columns read by the tile: pw0 + {${offsets.join(", ")}}`);
  const colIndex = new Map<number, string>();
  const colOk = new Map<number, string>();
  for (const e of offsets) {
    const p = samplePosition(g, 2, sum(pw0, e), true, true);
    colIndex.set(e, letLocal(c, `cx${e}`, p.index));
    if (p.ok) colOk.set(e, letLocal(c, `cok${e}`, p.ok));
  }
  const acc = (j: number, r: number, col: number) => `a${j}_${r}_${col}`;
  for (let j = 0; j < FB; j++) {
    const init = g.hasBias ? letLocal(c, `b${j}`, `x2[${sum(f0, j)}]`) : "0.0";
    for (let r = 0; r < WR; r++) c.line(range(CW, (col) => `var ${acc(j, r, col)} = ${init};`).join(" "));
  }
  // the channel loop's bound hidden from the driver as in the cpu variant (convTuning.opaqueLoops): no unrolling for few channels
  const opaque = convTuning.opaqueLoops !== "none";
  if (opaque) c.line("let opaque = i32(arrayLength(&x1));");
  c.open(`for (var ch = 0; ch < ${opaque ? `min(${g.Cg}, opaque)` : g.Cg}; ch++)`);
  const xc = letLocal(c, "xc", sum(xg, prod("ch", g.inPlane)));
  const wc = letLocal(c, "wc", sum(prod(f0, g.Cg * g.KV), prod("ch", g.KV)));
  const [KD, KH, KW] = g.K as [number, number, number];
  if (KD > 1) c.open(`for (var kd = 0; kd < ${KD}; kd++)`);
  if (KH > 1) c.open(`for (var kh = 0; kh < ${KH}; kh++)`);
  const kd = KD > 1 ? "kd" : "0";
  const kh = KH > 1 ? "kh" : "0";
  // each window row's inputs, loaded once for all its taps
  const value = (r: number, e: number) => `v${r}_${e}`;
  rows.forEach(([od, oh], r) => {
    const pd = samplePosition(g, 0, sum(prod(od, g.s[0]!), -g.pb[0]!, prod(kd, g.dl[0]!)), true);
    const ph = samplePosition(g, 1, sum(prod(oh, g.s[1]!), -g.pb[1]!, prod(kh, g.dl[1]!)), true);
    const rowOk = [pd.ok, ph.ok].filter((x): x is string => x !== undefined).map((o) => `(${o})`);
    const rowOkName = rowOk.length ? letLocal(c, `rok${r}`, rowOk.join(" && ")) : undefined;
    const xr = letLocal(c, `xr${r}`, sum(xc, prod(pd.index, XH, XW), prod(ph.index, XW)));
    for (const e of offsets) {
      const ok = [rowOkName, colOk.get(e)].filter((x): x is string => x !== undefined);
      const load = `x0[${sum(xr, colIndex.get(e)!)}]`;
      c.line(`let ${value(r, e)} = ${ok.length ? `select(0.0, ${load}, ${ok.join(" && ")})` : load};`);
    }
  });
  const tapRow = prod(sum(prod(g.flip ? `${KD - 1} - ${kd}` : kd, KH), g.flip ? `${KH - 1} - ${kh}` : kh), KW);
  const wr = letLocal(c, "wr", sum(wc, tapRow));
  for (let kw = 0; kw < KW; kw++) {
    const tap = g.flip ? KW - 1 - kw : kw;
    for (let j = 0; j < FB; j++) {
      c.line(`let w${j}_${kw} = x1[${sum(wr, j * g.Cg * g.KV, tap)}];`);
      for (let r = 0; r < WR; r++) c.line(range(CW, (col) => `${acc(j, r, col)} = fma(w${j}_${kw}, ${value(r, col * g.s[2]! + kw * g.dl[2]!)}, ${acc(j, r, col)});`).join(" "));
    }
  }
  if (KH > 1) c.close();
  if (KD > 1) c.close();
  c.close(); // channels

  // each conv output through the epilogue, each window reduced in order, one pooled value stored per filter and column
  const qPlane = prod(...Q);
  const yo = letLocal(c, "yo", sum(prod(sum(prod(n, g.F), f0), qPlane), prod(q[0]!, Q[1]!, Q[2]!), prod(q[1]!, Q[2]!), prod(seg, TQ)));
  for (let t = 0; t < TQ; t++) {
    if (t > 0) c.open(`if (${sum(prod(seg, TQ), t)} < ${Q[2]})`);
    for (let j = 0; j < FB; j++) {
      const fj = sum(f0, j);
      const best = `p${j}_${t}`;
      const sites = range(WR, (r) => range(win[2]!, (dw) => ({ r, col: t * win[2]! + dw }))).flat();
      const valueAt = ({ r, col }: { r: number; col: number }) => {
        const [od, oh] = rows[r]!;
        const ow = sum(ow0, col);
        const flat = sum(prod(sum(prod(n, g.F), fj), g.oPlane), prod(od, OH, OW), prod(oh, OW), ow);
        const pos = [od, oh, ow];
        return epilogue.value({ flat, coord: (dim) => (dim === 0 ? n : dim === 1 ? fj : pos[3 - g.d + dim - 2]) }, acc(j, r, col));
      };
      if (pool.kind === "max") {
        c.line(`var ${best} = neg_inf();`);
        for (const s of sites) c.line(`{ let e = ${valueAt(s)}; if (e > ${best}) { ${best} = e; } }`);
        c.line(`y0[${sum(yo, prod(j, qPlane), t)}] = ${best};`);
      } else {
        c.line(`var ${best} = 0.0;`);
        for (const s of sites) c.line(`${best} += ${valueAt(s)};`);
        c.line(`y0[${sum(yo, prod(j, qPlane), t)}] = ${best} / ${sites.length}.0;`);
      }
    }
    if (t > 0) c.close();
  }
  const code = [
    ...(pool.kind === "max" ? [NEG_INF_FN, ""] : []),
    convHeader(
      ctx,
      g,
      `then ${pool.kind} pool ${pool.window.join("×")}; register tiles of ${FB} filter${FB > 1 ? "s" : ""} × ${TQ} pooled column${TQ > 1 ? "s" : ""} (${WR} × ${CW} conv outputs)`,
    ),
    "@compute @workgroup_size(64)",
    "fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {",
    indent(c.toString()),
    "}",
  ].join("\n");
  const usesError = Object.keys(g.errors).length > 0;
  const dispatch = f.dispatch.map((x, k) => (k === 0 && usesError ? `Math.max(1, ${x})` : x)) as [string, string];
  return { passes: [{ code, dispatch, usesError }], errors: g.errors };
}

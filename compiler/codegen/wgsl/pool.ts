// WGSL kernels for the pooling family: `pool`, `global_pool` and `kmax_pool`,
// and the backward ops `pool_grad` and `kmax_pool_grad`
// (compiler/ops/pool.ts holds the reference semantics these must match:
// masks broadcast against x, an empty window gives 0, or −∞ for an unmasked
// max; avg divides by the padded-window size with count_include_pad, else by
// the eligible cells).
//
// pool: one invocation per output element, over three spatial dims (1-d and
// 2-d nodes get leading size-1 dims that fold away). Taps outside the input
// are skipped per dim; the count_include_pad divisor is the product of the
// per-dim counts of taps inside the padded extent.
// global_pool: "cpu", one invocation per (n, c) row; "gpu", one workgroup per
// row with a tree reduction in workgroup memory.
// kmax_pool: one invocation per line along the axis, keeping the best k by
// insertion (larger first, ties to the earlier index, masked cells last),
// then writing them back in their original order.
//
// Backward ops, deterministic without float atomics (each invocation owns the
// cells it writes): pool_grad is a gather, one cell of x per invocation over
// the windows that contain it, after a per-window pass that settles what each
// window sends (see emitPoolGrad); kmax_pool_grad redoes the selection per line
// and writes that line of dx.

import type { Dim } from "../../ir/dims.ts";
import type { GlobalPoolAttrs, KMaxPoolAttrs, PoolAttrs } from "../../ops/pool.ts";
import { Code, DIM_NAMES, div, i32Of, isLiteral, Lets, letLocal, mod, NEG_INF_FN, prod, range, sum, to3, windowGuards } from "./conv.ts";
import { flatDispatch, type WgslEmitCtx, type WgslKernel, type WgslKernelResult } from "./kernel.ts";

const list = (xs: readonly number[]): string => `[${xs.join(", ")}]`;

function indent(s: string): string {
  return s
    .split("\n")
    .map((l) => (l.length ? `  ${l}` : l))
    .join("\n");
}

function shader(header: string, helpers: string[], workgroup: string, params: string, body: Code): string {
  return [header, ...helpers, `@compute @workgroup_size(${workgroup})`, `fn main(${params}) {`, indent(body.toString()), "}"].join("\n");
}

const FLAT_PARAMS = "@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u";

/**
 * Per-dim element strides (i32 expressions) of the mask (input 1) read at an
 * index of x: 0 where the mask is broadcast (size 1 or a missing leading dim).
 */
function maskStrides(ctx: WgslEmitCtx, lets: Lets, xRank: number): string[] {
  const mDims: readonly Dim[] = ctx.node.inputs[1]!.type.shape;
  const mShape = ctx.inShape(1).map((s, i) => lets.bind(i32Of(s), `M${i}`));
  const off = xRank - mDims.length;
  const out = new Array<string>(xRank).fill("0");
  let stride = "1";
  for (let i = mDims.length - 1; i >= 0; i--) {
    const broadcast = mDims[i]!.constValue() === 1;
    out[off + i] = broadcast ? "0" : lets.bind(stride, `mStride${off + i}`);
    stride = prod(stride, mShape[i]!);
  }
  return out;
}

// ---------------------------------------------------------------------------
// pool
// ---------------------------------------------------------------------------

/**
 * One invocation per window. "forward": the pool itself. The first pass of
 * pool_grad (x[, mask], dy), one invocation per window of dy, writing scratch t0:
 * "winner", the flat index in x of the window's first eligible maximum (−1 if
 * none; the forward's strict `>` scan in window order); "share", dy / divisor
 * (0 for a window without eligible cells).
 */
function emitPool(ctx: WgslEmitCtx, mode: "forward" | "winner" | "share" = "forward"): WgslKernelResult {
  const a = ctx.node.attrs as unknown as PoolAttrs;
  const d = a.window.length;
  const c = new Code();
  const lets = new Lets(c);
  const forward = mode === "forward";
  const dyIn = a.hasMask ? 2 : 1;
  const f = flatDispatch(forward ? ctx.outSizeJs(0) : ctx.inSizeJs(dyIn));
  const xShape = ctx.inShape(0);
  const yShape = forward ? ctx.outShape(0) : ctx.inShape(dyIn);
  c.line(`let i = i32(${f.index});`);
  const C = lets.bind(i32Of(xShape[1]!), "C");
  const X = to3(xShape.slice(2).map((x, i) => lets.bind(i32Of(x), `X${DIM_NAMES[3 - d + i]}`)), "1");
  const O = to3(yShape.slice(2).map((x, i) => lets.bind(i32Of(x), `O${DIM_NAMES[3 - d + i]}`)), "1");
  const K = to3(a.window, 1);
  const s = to3(a.stride, 1);
  const dl = to3(a.dilation, 1);
  const pb = to3(a.padBegin, 0);
  const pe = to3(a.padEnd, 0);
  // (the backward needs no guard: the forward has reported a window that does not fit, and no window means no work)
  const guards = forward ? windowGuards("window", a.window, a.dilation, X.slice(3 - d), O.slice(3 - d), a.padBegin.map((p, k) => p + a.padEnd[k]!)) : { lines: [], errors: {} };
  for (const l of guards.lines) c.line(l);
  const total = lets.bind(i32Of(forward ? ctx.outSize(0) : ctx.inSize(dyIn)), "total");
  c.line(`if (i >= ${total}) { return; }`);
  const ms = a.hasMask ? to3Strides(maskStrides(ctx, lets, d + 2), d) : undefined;

  // output index → (row = n·C + c, od, oh, ow)
  let rest = "i";
  const o: string[] = ["0", "0", "0"];
  for (let k = 2; k >= 0; k--) {
    if (O[k] === "1") continue;
    o[k] = letLocal(c, `o${DIM_NAMES[k]!.toLowerCase()}`, mod(rest, O[k]!));
    rest = letLocal(c, `r${DIM_NAMES[k]!.toLowerCase()}`, div(rest, O[k]!));
  }
  const nc = rest;
  const xb = letLocal(c, "xb", prod(nc, prod(...X)));
  const mb = ms ? letLocal(c, "mb", sum(prod(div(nc, C), ms[0]!), prod(mod(nc, C), ms[1]!))) : "";
  const divideByPadded = a.kind === "avg" && a.countIncludePad && !a.hasMask;
  if (mode !== "share") c.line(`var acc = ${a.kind === "max" ? "neg_inf()" : "0.0"};`);
  if (mode === "winner") c.line("var at = -1;");
  c.line("var cnt = 0;");

  // one loop per window dim (size-1 dims fold away); taps outside the input are skipped
  const strideX = [prod(X[1]!, X[2]!), X[2]!, "1"];
  const dims = [0, 1, 2].filter((k) => !(K[k] === 1 && X[k] === "1" && O[k] === "1"));
  const base = dims.map((k) => letLocal(c, `p${DIM_NAMES[k]!.toLowerCase()}0`, sum(prod(o[k]!, s[k]!), -pb[k]!)));
  if (divideByPadded) {
    c.line("// count_include_pad: the window cells inside the padded extent [−pb, X + pe), per dim");
    dims.forEach((k, q) => {
      const v = DIM_NAMES[k]!.toLowerCase();
      c.line(`var pad${v} = 0;`);
      c.line(`for (var k = 0; k < ${K[k]}; k++) { let p = ${sum(base[q]!, prod("k", dl[k]!))}; if (p >= ${-pb[k]!} && p < ${sum(X[k]!, pe[k]!)}) { pad${v}++; } }`);
    });
    c.line(`let padded = ${dims.map((k) => `pad${DIM_NAMES[k]!.toLowerCase()}`).join(" * ") || "1"};`);
  }
  let xo = xb;
  let mo = mb;
  dims.forEach((k, q) => {
    const v = DIM_NAMES[k]!.toLowerCase();
    c.open(`for (var k${v} = 0; k${v} < ${K[k]}; k${v}++)`);
    const p = letLocal(c, `p${v}`, sum(base[q]!, prod(`k${v}`, dl[k]!)));
    // without padding or ceil_mode every window of a valid output lies inside the input
    if (pb[k]! > 0 || pe[k]! > 0 || a.ceilMode) c.line(`if (${p} < 0 || ${p} >= ${X[k]}) { continue; }`);
    xo = letLocal(c, `x${v}`, sum(xo, prod(p, strideX[k]!)));
    if (ms) mo = letLocal(c, `m${v}`, sum(mo, prod(p, ms[2 + k]!)));
  });
  if (mode !== "share") c.line(`let v = x0[${xo}];`);
  const update = mode === "share" ? "" : a.kind === "max" ? `if (v > acc) { acc = v;${mode === "winner" ? ` at = ${xo};` : ""} } ` : "acc += v; ";
  c.line(ms ? `if (x1[${mo}] != 0u) { ${update}cnt++; }` : `${update}cnt++;`);
  for (const _ of dims) c.close();

  const divisor = divideByPadded ? "padded" : "cnt";
  if (mode === "winner") c.line("t0[i] = at;");
  else if (mode === "share") c.line(`t0[i] = select(0.0, x${dyIn}[i] / f32(${divisor}), cnt > 0);`);
  else {
    let result: string;
    if (a.kind === "max") result = a.hasMask ? "select(0.0, acc, cnt > 0)" : "acc";
    else if (a.kind === "sum") result = "acc";
    else result = `select(0.0, acc / f32(${divisor}), cnt > 0)`;
    c.line(`y0[i] = ${result};`);
  }

  const what = forward
    ? `${a.kind}pool${d}d, one output per invocation: x [${xShape.join(", ")}] -> y [${yShape.join(", ")}]`
    : `${a.kind}pool${d}d backward, pass 1 of 2, one window per invocation: ${mode === "winner" ? "t0 = the flat index in x of the window's first eligible maximum (-1: none)" : "t0 = dy / divisor (0: no eligible cell)"}; x [${xShape.join(", ")}], dy [${yShape.join(", ")}]`;
  const header =
    `// ${what}; window ${list(a.window)}, stride ${list(a.stride)}, ` +
    `dilation ${list(a.dilation)}, padding ${list(a.padBegin)}..${list(a.padEnd)}${a.ceilMode ? ", ceil_mode" : ""}${a.kind === "avg" && !a.countIncludePad ? ", count_include_pad=false" : ""}${a.hasMask ? ", masked" : ""}`;
  const usesError = Object.keys(guards.errors).length > 0;
  const dispatch = f.dispatch.map((x, k) => (k === 0 && usesError ? `Math.max(1, ${x})` : x)) as [string, string];
  const helpers = a.kind === "max" ? [NEG_INF_FN] : [];
  return { passes: [{ code: shader(header, helpers, "64", FLAT_PARAMS, c), dispatch, usesError }], errors: guards.errors };
}

// ---------------------------------------------------------------------------
// pool_grad
// ---------------------------------------------------------------------------
//
// dx of pool as a gather, so that no two invocations write the same cell and
// no float atomics are needed (WGSL has none): each invocation owns one cell of
// x and sums what the windows containing it send. A window's tap k along a dim
// lands on cell p when o·stride − padBegin + k·dilation = p, i.e. for
// t = p + padBegin − k·dilation ≥ 0, t % stride = 0 and o = t / stride < O.
// Pass 1 (max and avg) settles per window what it sends (see emitPool: the
// winner's index, or dy / divisor) in scratch t0, so pass 2 reads one value per
// window instead of rescanning it: max adds dy[o] where t0[o] is this cell,
// avg adds t0[o], sum adds dy[o] (sum has no pass 1). Masked cells get 0.

function emitPoolGrad(ctx: WgslEmitCtx): WgslKernelResult {
  const a = ctx.node.attrs as unknown as PoolAttrs;
  const d = a.window.length;
  const dyIn = a.hasMask ? 2 : 1;
  const dy = `x${dyIn}`;
  const scratch = a.kind === "sum" ? [] : [{ type: a.kind === "max" ? "i32" : "f32", size: `Math.max(1, ${ctx.inSizeJs(dyIn)})` }];
  const first = a.kind === "sum" ? [] : [emitPool(ctx, a.kind === "max" ? "winner" : "share").passes[0]!];

  const c = new Code();
  const lets = new Lets(c);
  const f = flatDispatch(ctx.outSizeJs(0));
  const xShape = ctx.inShape(0);
  const yShape = ctx.inShape(dyIn);
  c.line(`let i = i32(${f.index});`);
  const C = lets.bind(i32Of(xShape[1]!), "C");
  const X = to3(xShape.slice(2).map((x, i) => lets.bind(i32Of(x), `X${DIM_NAMES[3 - d + i]}`)), "1");
  const O = to3(yShape.slice(2).map((x, i) => lets.bind(i32Of(x), `O${DIM_NAMES[3 - d + i]}`)), "1");
  const K = to3(a.window, 1);
  const s = to3(a.stride, 1);
  const dl = to3(a.dilation, 1);
  const pb = to3(a.padBegin, 0);
  const total = lets.bind(i32Of(ctx.outSize(0)), "total");
  c.line(`if (i >= ${total}) { return; }`);
  const ms = a.hasMask ? to3Strides(maskStrides(ctx, lets, d + 2), d) : undefined;

  // x index → (row = n·C + c, pd, ph, pw)
  let rest = "i";
  const p: string[] = ["0", "0", "0"];
  for (let k = 2; k >= 0; k--) {
    if (X[k] === "1") continue;
    p[k] = letLocal(c, `p${DIM_NAMES[k]!.toLowerCase()}`, mod(rest, X[k]!));
    rest = letLocal(c, `r${DIM_NAMES[k]!.toLowerCase()}`, div(rest, X[k]!));
  }
  const nc = rest;
  if (ms) {
    const at = sum(prod(div(nc, C), ms[0]!), prod(mod(nc, C), ms[1]!), ...[0, 1, 2].map((k) => prod(p[k]!, ms[2 + k]!)));
    c.line(`if (x1[${at}] == 0u) { y0[i] = 0.0; return; }`);
  }
  c.line("var acc = 0.0;");
  c.line("// the windows o whose tap k lands here: t = p + padBegin − k·dilation ≥ 0, t % stride == 0, o = t / stride < O");
  const oStride = [prod(O[1]!, O[2]!), O[2]!, "1"];
  const dims = [0, 1, 2].filter((k) => !(K[k] === 1 && X[k] === "1" && O[k] === "1"));
  let yo = letLocal(c, "yb", prod(nc, prod(...O)));
  for (const k of dims) {
    const v = DIM_NAMES[k]!.toLowerCase();
    c.open(`for (var k${v} = 0; k${v} < ${K[k]}; k${v}++)`);
    const t = letLocal(c, `t${v}`, sum(p[k]!, pb[k]!, prod(`k${v}`, -dl[k]!)));
    const o = s[k] === 1 ? t : letLocal(c, `o${v}`, div(t, String(s[k])));
    const bad = [`${t} < 0`, ...(s[k] === 1 ? [] : [`${mod(t, String(s[k]))} != 0`]), `${o} >= ${O[k]}`];
    c.line(`if (${bad.join(" || ")}) { continue; }`);
    yo = letLocal(c, `y${v}`, sum(yo, prod(o, oStride[k]!)));
  }
  if (a.kind === "max") c.line(`if (t0[${yo}] == i) { acc += ${dy}[${yo}]; }`);
  else if (a.kind === "avg") c.line(`acc += t0[${yo}];`);
  else c.line(`acc += ${dy}[${yo}];`);
  for (const _ of dims) c.close();
  c.line("y0[i] = acc;");

  const what = a.kind === "max" ? "dy of each window whose winner (t0) is this cell" : a.kind === "avg" ? "t0 (dy / divisor) of each window holding this cell" : "dy of each window holding this cell";
  const header =
    `// ${a.kind}pool${d}d backward, ${first.length ? "pass 2 of 2, " : ""}a gather, one cell of x per invocation: dx = the sum of ${what}${a.hasMask ? " (masked cells: 0)" : ""}; ` +
    `x [${xShape.join(", ")}], dy [${yShape.join(", ")}]; window ${list(a.window)}, stride ${list(a.stride)}, dilation ${list(a.dilation)}, padding ${list(a.padBegin)}..${list(a.padEnd)}${a.ceilMode ? ", ceil_mode" : ""}`;
  const gather = { code: shader(header, [], "64", FLAT_PARAMS, c), dispatch: f.dispatch };
  return { passes: [...first, gather].map((pass) => ({ ...pass, scratch })) };
}

/** Mask strides of an [N, C, spatial(d)] index padded to three spatial dims. */
function to3Strides(ms: string[], d: number): string[] {
  return [ms[0]!, ms[1]!, ...to3(ms.slice(2), "0")];
}

// ---------------------------------------------------------------------------
// global_pool
// ---------------------------------------------------------------------------

function emitGlobalPool(ctx: WgslEmitCtx): WgslKernelResult {
  const a = ctx.node.attrs as unknown as GlobalPoolAttrs;
  const xShape = ctx.inShape(0);
  const r = xShape.length;
  const header = (how: string) =>
    `// global ${a.kind} pool over the spatial dims (${how}): x [${xShape.join(", ")}] -> y [${ctx.outShape(0).join(", ")}]${a.hasMask ? ", masked" : ""}`;
  const update = a.kind === "max" ? "if (v > acc) { acc = v; }" : "acc += v;";
  const result = (acc: string, cnt: string, P: string) =>
    a.kind === "max" ? (a.hasMask ? `select(0.0, ${acc}, ${cnt} > 0)` : acc) : a.kind === "sum" ? acc : `select(0.0, ${acc} / f32(${a.hasMask ? cnt : P}), ${cnt} > 0)`;
  const helpers = a.kind === "max" ? [NEG_INF_FN] : [];

  /** Sizes, the mask strides and whether the mask follows x's flat spatial index. */
  const setup = (c: Code) => {
    const lets = new Lets(c);
    const C = lets.bind(i32Of(xShape[1]!), "C");
    const S = xShape.slice(2).map((x, i) => lets.bind(i32Of(x), `S${i}`));
    const P = lets.bind(prod(...S), "cells");
    const ms = a.hasMask ? maskStrides(ctx, lets, r) : undefined;
    // the mask is read with x's flat spatial index when it has every spatial dim at x's size
    const flat = !ms || sameStride(ctx, 2);
    return { lets, C, S, P, ms, flat };
  };
  /** The mask offset of flat spatial index `q` when the mask is broadcast along some spatial dims. */
  const maskAt = (c: Code, S: string[], ms: string[], q: string): string => {
    let rest = q;
    const terms: string[] = [];
    for (let i = S.length - 1; i >= 0; i--) {
      const coord = i === 0 ? rest : letLocal(c, `q${i}`, mod(rest, S[i]!));
      if (i > 0) rest = letLocal(c, `qr${i}`, div(rest, S[i]!));
      if (ms[2 + i] !== "0") terms.push(prod(coord, ms[2 + i]!));
    }
    return sum(...terms);
  };

  // cpu: one invocation per (n, c) row
  const cpu = new Code();
  const f = flatDispatch(ctx.outSizeJs(0));
  {
    cpu.line(`let i = i32(${f.index});`);
    const { lets, C, S, P, ms, flat } = setup(cpu);
    const rows = lets.bind(i32Of(ctx.outSize(0)), "rows");
    cpu.line(`if (i >= ${rows}) { return; }`);
    const xb = letLocal(cpu, "xb", prod("i", P));
    const mb = ms ? letLocal(cpu, "mb", sum(prod(div("i", C), ms[0]!), prod(mod("i", C), ms[1]!))) : "";
    cpu.line(`var acc = ${a.kind === "max" ? "neg_inf()" : "0.0"};`);
    cpu.line("var cnt = 0;");
    cpu.open(`for (var q = 0; q < ${P}; q++)`);
    cpu.line(`let v = x0[${sum(xb, "q")}];`);
    if (ms) cpu.line(`if (x1[${sum(mb, flat ? "q" : maskAt(cpu, S, ms, "q"))}] != 0u) { ${update} cnt++; }`);
    else cpu.line(`${update} cnt++;`);
    cpu.close();
    cpu.line(`y0[i] = ${result("acc", "cnt", P)};`);
  }
  const cpuPass = { code: shader(header("one invocation per row"), helpers, "64", FLAT_PARAMS, cpu), dispatch: f.dispatch };

  // gpu: one workgroup per row, strided partial results, then a tree reduction
  const WG = 64;
  const gpu = new Code();
  {
    gpu.line(`let row = i32(wid.x + wid.y * nwg.x);`);
    const { lets, C, S, P, ms, flat } = setup(gpu);
    const rows = lets.bind(i32Of(ctx.outSize(0)), "rows");
    gpu.line(`if (row >= ${rows}) { return; }`);
    gpu.line("let li = i32(lid.x);");
    const xb = letLocal(gpu, "xb", prod("row", P));
    const mb = ms ? letLocal(gpu, "mb", sum(prod(div("row", C), ms[0]!), prod(mod("row", C), ms[1]!))) : "";
    gpu.line(`var acc = ${a.kind === "max" ? "neg_inf()" : "0.0"};`);
    gpu.line("var cnt = 0;");
    gpu.open(`for (var q = li; q < ${P}; q += ${WG})`);
    gpu.line(`let v = x0[${sum(xb, "q")}];`);
    if (ms) gpu.line(`if (x1[${sum(mb, flat ? "q" : maskAt(gpu, S, ms, "q"))}] != 0u) { ${update} cnt++; }`);
    else gpu.line(`${update} cnt++;`);
    gpu.close();
    gpu.line("part[li] = acc;");
    gpu.line("parts[li] = cnt;");
    gpu.open(`for (var w = ${WG / 2}; w > 0; w >>= 1u)`);
    gpu.line("workgroupBarrier();");
    gpu.open("if (li < w)");
    gpu.line(a.kind === "max" ? "part[li] = select(part[li], part[li + w], part[li + w] > part[li]);" : "part[li] += part[li + w];");
    gpu.line("parts[li] += parts[li + w];");
    gpu.close();
    gpu.close();
    gpu.open("if (li == 0)");
    gpu.line(`y0[row] = ${result("part[0]", "parts[0]", P)};`);
    gpu.close();
  }
  const rowsJs = ctx.outSizeJs(0);
  const gpuPass = {
    code: shader(
      header("one workgroup per row, tree reduction"),
      [...helpers, `var<workgroup> part: array<f32, ${WG}>;`, `var<workgroup> parts: array<i32, ${WG}>;`],
      String(WG),
      "@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_id) lid: vec3u, @builtin(num_workgroups) nwg: vec3u",
      gpu,
    ),
    dispatch: [`Math.min(${rowsJs}, 65535)`, `Math.max(1, Math.ceil((${rowsJs}) / 65535))`] as [string, string],
  };
  return { passes: [{ code: cpuPass.code, dispatch: cpuPass.dispatch, variants: { cpu: cpuPass, gpu: gpuPass } }] };
}

/** Whether the mask has every dim of x from `xDim` on, at x's size (so it shares x's layout there). */
function sameStride(ctx: WgslEmitCtx, xDim: number): boolean {
  const x: readonly Dim[] = ctx.node.inputs[0]!.type.shape;
  const m: readonly Dim[] = ctx.node.inputs[1]!.type.shape;
  const off = x.length - m.length;
  for (let i = xDim; i < x.length; i++) {
    const mi = i - off;
    if (mi < 0 || !m[mi]!.equals(x[i]!)) return false;
  }
  return true;
}

// ---------------------------------------------------------------------------
// kmax_pool
// ---------------------------------------------------------------------------

/**
 * kmax_pool, or with `backward` kmax_pool_grad (x[, mask], dy): the same
 * selection, then the invocation, which owns its line of dx, zeroes it and
 * writes dy at each slot to the chosen cell (0 to a masked pick).
 */
function emitKMaxPool(ctx: WgslEmitCtx, backward = false): WgslKernelResult {
  const a = ctx.node.attrs as unknown as KMaxPoolAttrs;
  const K = a.k;
  const dyIn = a.hasMask ? 2 : 1;
  const xShape = ctx.inShape(0);
  const yShape = backward ? ctx.inShape(dyIn) : ctx.outShape(0);
  const r = xShape.length;
  const c = new Code();
  const lets = new Lets(c);
  const xDims: readonly Dim[] = ctx.node.inputs[0]!.type.shape;
  const linesJs = xDims.filter((_, i) => i !== a.axis).map((d) => `(${ctx.dimJs(d)})`).join(" * ") || "1";
  const f = flatDispatch(linesJs);
  c.line(`let line = i32(${f.index});`);
  const X = xShape.map((x, i) => lets.bind(i32Of(x), `D${i}`));
  const L = X[a.axis]!;
  const errors: Record<number, string> = {};
  if (!isLiteral(L)) {
    errors[1] = `k=${K} is larger than the size {a} of axis ${a.axis}`;
    c.line(`if (${L} < ${K}) { report_error(1u, ${L}, 0u); return; }`);
  }
  const lines = lets.bind(prod(...X.filter((_, i) => i !== a.axis)), "lines");
  c.line(`if (line >= ${lines}) { return; }`);
  const inner = lets.bind(prod(...X.slice(a.axis + 1)), "inner");
  const outer = letLocal(c, "outer", div("line", inner));
  const within = letLocal(c, "within", mod("line", inner));
  const xb = letLocal(c, "xb", sum(prod(outer, L, inner), within));
  const yb = letLocal(c, "yb", sum(prod(outer, K, inner), within));
  let mb = "";
  let mStep = "0";
  if (a.hasMask) {
    const ms = maskStrides(ctx, lets, r);
    // the line's coordinates along every other dim, for the broadcast mask
    let rest = "line";
    const terms: string[] = [];
    // walk outwards only as far as the outermost dim the mask varies along
    const varying = range(r, (i) => i).filter((i) => i !== a.axis && ms[i] !== "0");
    const outermost = varying.length ? Math.min(...varying) : r;
    for (let i = r - 1; i >= outermost; i--) {
      if (i === a.axis) continue;
      const last = !X.some((_, k) => k < i && k !== a.axis);
      if (ms[i] !== "0") terms.push(prod(last ? rest : letLocal(c, `c${i}`, mod(rest, X[i]!)), ms[i]!));
      if (!last && i > outermost) rest = letLocal(c, `cr${i}`, div(rest, X[i]!));
    }
    mb = letLocal(c, "mb", sum(...terms));
    mStep = ms[a.axis]!;
  }
  c.line("// the best k so far, by rank: larger first, ties to the earlier index" + (a.hasMask ? ", unmasked before masked" : ""));
  c.line(`var topV: array<f32, ${K}>;`);
  c.line(`var topJ: array<i32, ${K}>;`);
  if (a.hasMask) c.line(`var topOk: array<bool, ${K}>;`);
  c.line("var filled = 0;");
  c.open(`for (var j = 0; j < ${L}; j++)`);
  c.line(`let v = x0[${sum(xb, prod("j", inner))}];`);
  const last = K - 1;
  if (a.hasMask) {
    c.line(`let ok = x1[${sum(mb, prod("j", mStep))}] != 0u;`);
    c.open(`if (filled < ${K} || (ok && (!topOk[${last}] || v > topV[${last}])))`);
    c.line(`var s = select(${last}, filled, filled < ${K});`);
    c.line(`if (filled < ${K}) { filled++; }`);
    c.line("// a masked cell only ever joins at the end: every kept cell has a lower index");
    c.open("if (ok)");
    c.open("while (s > 0 && (!topOk[s - 1] || v > topV[s - 1]))");
    c.line("topV[s] = topV[s - 1]; topJ[s] = topJ[s - 1]; topOk[s] = topOk[s - 1];");
    c.line("s--;");
    c.close();
    c.close();
    c.line("topV[s] = v; topJ[s] = j; topOk[s] = ok;");
    c.close();
  } else {
    c.open(`if (filled < ${K} || v > topV[${last}])`);
    c.line(`var s = select(${last}, filled, filled < ${K});`);
    c.line(`if (filled < ${K}) { filled++; }`);
    c.open("while (s > 0 && v > topV[s - 1])");
    c.line("topV[s] = topV[s - 1]; topJ[s] = topJ[s - 1];");
    c.line("s--;");
    c.close();
    c.line("topV[s] = v; topJ[s] = j;");
    c.close();
  }
  c.close();
  c.line("// back to their original order: sort the chosen by index");
  c.open(`for (var p = 1; p < ${K}; p++)`);
  c.line(`let v = topV[p]; let j = topJ[p];${a.hasMask ? " let ok = topOk[p];" : ""}`);
  c.line("var s = p;");
  c.open("while (s > 0 && topJ[s - 1] > j)");
  c.line(`topV[s] = topV[s - 1]; topJ[s] = topJ[s - 1];${a.hasMask ? " topOk[s] = topOk[s - 1];" : ""}`);
  c.line("s--;");
  c.close();
  c.line(`topV[s] = v; topJ[s] = j;${a.hasMask ? " topOk[s] = ok;" : ""}`);
  c.close();
  if (backward) {
    c.line("// dx along the line: zero, then dy at each slot to the chosen cell");
    c.line(`for (var j = 0; j < ${L}; j++) { y0[${sum(xb, prod("j", inner))}] = 0.0; }`);
    c.open(`for (var p = 0; p < ${K}; p++)`);
    const write = `y0[${sum(xb, prod("topJ[p]", inner))}] = x${dyIn}[${sum(yb, prod("p", inner))}];`;
    c.line(a.hasMask ? `if (topOk[p]) { ${write} }` : write);
    c.close();
  } else {
    c.open(`for (var p = 0; p < ${K}; p++)`);
    c.line(`y0[${sum(yb, prod("p", inner))}] = ${a.hasMask ? "select(0.0, topV[p], topOk[p])" : "topV[p]"};`);
    c.close();
  }

  const header = backward
    ? `// backward of the ${K} largest values along axis ${a.axis}, one line per invocation (it owns that line of dx: no races): x [${xShape.join(", ")}], dy [${yShape.join(", ")}] -> dx${a.hasMask ? "; masked cells rank last and a masked pick gets 0" : ""}`
    : `// the ${K} largest values along axis ${a.axis}, one line per invocation, kept in their original order: x [${xShape.join(", ")}] -> y [${yShape.join(", ")}]${a.hasMask ? "; masked cells rank last" : ""}`;
  const usesError = Object.keys(errors).length > 0;
  const dispatch = f.dispatch.map((x, k) => (k === 0 && usesError ? `Math.max(1, ${x})` : x)) as [string, string];
  return { passes: [{ code: shader(header, [], "64", FLAT_PARAMS, c), dispatch, usesError }], errors };
}

export const kernels: WgslKernel[] = [
  { op: "pool", emit: emitPool },
  { op: "global_pool", emit: emitGlobalPool },
  { op: "kmax_pool", emit: (ctx) => emitKMaxPool(ctx) },
  { op: "pool_grad", emit: emitPoolGrad },
  { op: "kmax_pool_grad", emit: (ctx) => emitKMaxPool(ctx, true) },
];


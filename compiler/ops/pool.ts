// Pooling (DSL.md §6): windowed max/avg/sum pools, global pools over all
// spatial dims and k-max pooling (Kalchbrenner et al., 2014). PyTorch
// semantics; every pool takes an optional bool mask, broadcastable to x, so
// that the padded positions of a variable-length batch never win a max nor
// count in a mean or sum.
//
// IR ops (the mask, when present, is input 1 and carries no gradient)
//   pool        (x[, mask]) {kind, window, stride, padBegin, padEnd, dilation, ceilMode, countIncludePad, hasMask}
//   global_pool (x[, mask]) {kind, hasMask}                      [N, C, ...] → [N, C]
//   kmax_pool   (x[, mask]) {k, axis, hasMask}
//
// Backward IR ops (gradient rules below; no gradients of their own)
//   pool_grad      (x[, mask], dy) {pool's attrs}        → dx, x's shape
//   kmax_pool_grad (x[, mask], dy) {kmax_pool's attrs}   → dx, x's shape
//
// A window with no eligible cell (all padding, or everything masked) gives 0
// for avg and sum; for max it gives −inf without a mask (PyTorch's padding is
// −inf) and 0 with one, so an empty sequence does not poison what follows.

import { Dim, numel } from "../ir/dims.ts";
import type { Attrs, Value } from "../ir/graph.ts";
import { typeToString, type TensorType } from "../ir/types.ts";
import { indices, RefTensor } from "../reference/tensor.ts";
import type { Args } from "./args.ts";
import {
  checkOutputAtRunTime,
  checkSpatialInput,
  checkWindowsFit,
  effectiveWindow,
  readInts,
  readPadding,
  resolvePadding,
  slidingOutputDim,
} from "./conv.ts";
import { defineOp, type BuiltinDef, type EvalCtx, type GradCtx, type InferCtx, type LowerCtx, type OpDef } from "./op.ts";

export type PoolKind = "max" | "avg" | "sum";

// ---------------------------------------------------------------------------
// Masks
// ---------------------------------------------------------------------------

/** The mask must be bool and broadcast to x's shape (NumPy rules, aligned at the last dim). */
function checkMask(x: TensorType, mask: TensorType | undefined, ctx: InferCtx): void {
  if (!mask) return ctx.fail("E401", "missing mask input");
  if (mask.dtype !== "bool") {
    ctx.fail("E213", `mask must be bool, found ${typeToString(mask)}`, { notes: [`mask ${ctx.describeInput(1)}`], hint: "compare to make a mask, e.g. a bool input" });
  }
  const offset = x.shape.length - mask.shape.length;
  const bad = offset < 0 ? 0 : mask.shape.findIndex((d, i) => !d.equals(1) && !d.equals(x.shape[offset + i]!));
  if (offset < 0 || bad >= 0) {
    const detail = offset < 0 ? `it has more dims than the input` : `dim ${bad} is ${mask.shape[bad]!.toString()} where the input has ${x.shape[offset + bad]!.toString()}`;
    ctx.fail("E203", `mask ${typeToString(mask)} does not broadcast to the input ${typeToString(x)}: ${detail}`, {
      notes: [`input ${ctx.describeInput(0)}`, `mask ${ctx.describeInput(1)}`],
      hint: "shapes are aligned at their last dim; use size 1 for dims the mask does not vary along",
    });
  }
}

/** Reads mask[idx] for an index of x, broadcasting size-1 and missing leading dims. */
function maskReader(mask: RefTensor | undefined, xRank: number): (idx: readonly number[]) => boolean {
  if (!mask) return () => true;
  const offset = xRank - mask.rank;
  return (idx) => {
    let o = 0;
    for (let i = 0; i < mask.rank; i++) {
      if (mask.shape[i] !== 1) o += idx[offset + i]! * mask.strides[i]!;
    }
    return mask.data[o] !== 0;
  };
}

/** Folds eligible values into the pool's result. */
function reducer(kind: PoolKind, hasMask: boolean) {
  return {
    kind,
    max: -Infinity,
    sum: 0,
    count: 0,
    add(v: number) {
      if (v > this.max) this.max = v;
      this.sum += v;
      this.count++;
    },
    /** `divisor` overrides the count for avg (count_include_pad). */
    result(divisor?: number): number {
      if (this.count === 0) return kind === "max" && !hasMask ? -Infinity : 0;
      if (kind === "max") return this.max;
      if (kind === "sum") return this.sum;
      return this.sum / (divisor ?? this.count);
    },
  };
}

// ---------------------------------------------------------------------------
// pool
// ---------------------------------------------------------------------------

export type PoolAttrs = {
  kind: PoolKind;
  window: number[];
  stride: number[];
  padBegin: number[];
  padEnd: number[];
  dilation: number[];
  ceilMode: boolean;
  countIncludePad: boolean;
  hasMask: boolean;
};

const poolOp = defineOp<PoolAttrs>({
  name: "pool",
  nondifferentiable: [1],
  infer(inputs, a, ctx) {
    const x = inputs[0]!;
    const d = a.window.length;
    checkSpatialInput(x, d, ctx.fail.bind(ctx), `input ${ctx.describeInput(0)}`);
    if (a.hasMask) checkMask(x, inputs[1], ctx);
    const spatial = a.window.map((k, i) =>
      slidingOutputDim(x.shape[2 + i]!, effectiveWindow(k, a.dilation[i]!), a.padBegin[i]!, a.padEnd[i]!, a.stride[i]!, a.ceilMode),
    );
    checkWindowsFit(ctx, x, "window", a.window, a.dilation, a.padBegin, a.padEnd, spatial);
    return [{ dtype: "f32", shape: [x.shape[0]!, x.shape[1]!, ...spatial] }];
  },
  evaluate([x, mask], a, ctx) {
    const outShape = ctx.outShapes[0]!;
    checkOutputAtRunTime(ctx.fail, "window", x!.shape, outShape, a.window, a.dilation, a.padBegin, a.padEnd);
    const out = RefTensor.zeros(outShape);
    forEachWindow(x!, mask, a, outShape, (o, cells, inPaddedExtent) => {
      const acc = reducer(a.kind, a.hasMask);
      for (const c of cells) acc.add(x!.data[c]!);
      out.set(acc.result(avgDivisor(a, cells.length, inPaddedExtent)), ...o);
    });
    return [out];
  },
  grad([x, mask], _outputs, [dy], a, ctx) {
    return [ctx.emit1("pool_grad", a.hasMask ? [x!, mask!, dy!] : [x!, dy!], a), undefined];
  },
});

/**
 * Visits every window of a pool: its output index, the flat offsets into x of
 * its eligible cells (inside the input and unmasked) in window order (row-major
 * over the taps, so also increasing offsets), and the number of its cells
 * inside the padded extent [−pb, S + pe) (PyTorch's count_include_pad
 * divisor: padding or input alike). Forward and backward share it, so they
 * agree on which cells a window holds.
 */
function forEachWindow(
  x: RefTensor,
  mask: RefTensor | undefined,
  a: PoolAttrs,
  outShape: readonly number[],
  visit: (o: readonly number[], cells: readonly number[], inPaddedExtent: number) => void,
): void {
  const eligible = maskReader(a.hasMask ? mask : undefined, x.rank);
  const spatialIn = x.shape.slice(2);
  const at = new Array<number>(x.rank);
  const cells: number[] = [];
  for (const o of indices(outShape)) {
    at[0] = o[0]!;
    at[1] = o[1]!;
    cells.length = 0;
    let inPaddedExtent = 0;
    for (const k of indices(a.window)) {
      let inInput = true;
      let inPadded = true;
      for (let i = 0; i < k.length; i++) {
        const p = o[2 + i]! * a.stride[i]! - a.padBegin[i]! + k[i]! * a.dilation[i]!;
        at[2 + i] = p;
        if (p < 0 || p >= spatialIn[i]!) inInput = false;
        if (p < -a.padBegin[i]! || p >= spatialIn[i]! + a.padEnd[i]!) inPadded = false;
      }
      if (inPadded) inPaddedExtent++;
      if (inInput && eligible(at)) cells.push(x.offset(at));
    }
    visit(o, cells, inPaddedExtent);
  }
}

/** What avg divides by: the padded-window size with count_include_pad (and no mask), else the eligible cells. */
function avgDivisor(a: PoolAttrs, eligible: number, inPaddedExtent: number): number | undefined {
  return a.kind === "avg" && a.countIncludePad && !a.hasMask ? inPaddedExtent : a.kind === "avg" ? eligible : undefined;
}

/** The input types of the forward op (x and the mask) and dy, checked against the forward's output. */
function checkDy(forward: OpDef, inputs: readonly TensorType[], hasMask: boolean, attrs: Attrs, ctx: InferCtx): TensorType {
  const x = inputs[0]!;
  const dy = inputs[hasMask ? 2 : 1];
  const [y] = forward.infer(hasMask ? [x, inputs[1]!] : [x], attrs, ctx);
  if (!dy || dy.dtype !== "f32" || dy.shape.length !== y!.shape.length || dy.shape.some((d, i) => !d.equals(y!.shape[i]!))) {
    ctx.fail("E203", `the gradient ${dy ? typeToString(dy) : "(missing)"} does not match the ${forward.name} output ${typeToString(y!)}`);
  }
  return { dtype: "f32", shape: x.shape };
}

// ---------------------------------------------------------------------------
// pool_grad: dx of pool
// ---------------------------------------------------------------------------
//
// max: each window's dy goes to its winner, the first eligible cell holding
// the window's maximum (window order, as the forward's strict `>`); masked and
// padding cells never win, and a window without eligible cells sends nothing.
// avg: dy / divisor to every eligible cell of the window (the forward's
// divisor: padded-window size with count_include_pad, else eligible cells).
// sum: dy to every eligible cell. Overlapping windows add up.

const poolGradOp = defineOp<PoolAttrs>({
  name: "pool_grad",
  infer(inputs, a, ctx) {
    return [checkDy(poolOp, inputs, a.hasMask, a, ctx)];
  },
  evaluate(inputs, a, ctx) {
    const x = inputs[0]!;
    const mask = a.hasMask ? inputs[1] : undefined;
    const dy = inputs[a.hasMask ? 2 : 1]!;
    const dx = RefTensor.zeros(ctx.outShapes[0]!);
    forEachWindow(x, mask, a, dy.shape, (o, cells, inPaddedExtent) => {
      const g = dy.get(...o);
      if (a.kind === "max") {
        let best = -Infinity;
        let winner = -1;
        for (const c of cells) {
          if (x.data[c]! > best) {
            best = x.data[c]!;
            winner = c;
          }
        }
        if (winner >= 0) dx.data[winner] += g;
        return;
      }
      if (cells.length === 0) return;
      const share = a.kind === "sum" ? g : g / avgDivisor(a, cells.length, inPaddedExtent)!;
      for (const c of cells) dx.data[c] += share;
    });
    return [dx];
  },
});

// ---------------------------------------------------------------------------
// global_pool
// ---------------------------------------------------------------------------

export type GlobalPoolAttrs = { kind: PoolKind; hasMask: boolean };

const globalPoolOp = defineOp<GlobalPoolAttrs>({
  name: "global_pool",
  nondifferentiable: [1],
  infer(inputs, a, ctx) {
    const x = inputs[0]!;
    if (x.shape.length < 3) {
      ctx.fail("E210", `expected an input of rank 3 or more ([N, C, spatial...]), found ${typeToString(x)}`, {
        notes: [`input ${ctx.describeInput(0)}`],
        hint: x.shape.length === 2 ? "the input has no spatial dims; it already is [N, C]" : undefined,
      });
    }
    if (x.dtype !== "f32") ctx.fail("E213", `expected an f32 input, found ${typeToString(x)}`, { notes: [`input ${ctx.describeInput(0)}`] });
    if (a.hasMask) checkMask(x, inputs[1], ctx);
    return [{ dtype: "f32", shape: [x.shape[0]!, x.shape[1]!] }];
  },
  evaluate([x, mask], a, ctx) {
    const out = RefTensor.zeros(ctx.outShapes[0]!);
    const eligible = maskReader(a.hasMask ? mask : undefined, x!.rank);
    const spatial = x!.shape.slice(2);
    for (const [n, c] of indices(out.shape) as Iterable<[number, number]>) {
      const acc = reducer(a.kind, a.hasMask);
      for (const s of indices(spatial)) {
        const at = [n, c, ...s];
        if (eligible(at)) acc.add(x!.get(...at));
      }
      out.set(acc.result(), n, c);
    }
    return [out];
  },
  grad([x, mask], _outputs, [dy], a, ctx) {
    return [globalPoolGrad(x!, a.hasMask ? mask : undefined, dy!, a.kind, ctx), undefined];
  },
});

/**
 * dx of global_pool, in existing IR:
 *  max: the first max of each (n, c) row is k-max pooling with k = 1 over the
 *       flattened spatial dims, so dy goes through kmax_pool_grad (same tie
 *       rule: the lowest flat index; masked cells never win; an all-masked row
 *       sends nothing) on the reshaped x;
 *  sum: dy broadcast over the spatial dims (times the mask);
 *  avg: dy / count broadcast, count = the spatial size (a constant when
 *       static, else summed from ones at run time so symbols stay symbolic) or,
 *       with a mask, the eligible cells of the row (at least 1: an empty row has
 *       no cell to receive anything).
 */
function globalPoolGrad(x: Value, mask: Value | undefined, dy: Value, kind: PoolKind, ctx: GradCtx): Value {
  const shape = x.type.shape;
  const spatial = shape.slice(2);
  const axes = spatial.map((_, i) => 2 + i);
  const reshape = (v: Value, to: readonly Dim[]) => (v.type.shape.length === to.length && v.type.shape.every((d, i) => d.equals(to[i]!)) ? v : ctx.emit1("reshape", [v], { shape: to }));
  if (kind === "max") {
    const flat = [shape[0]!, shape[1]!, numel(spatial)];
    const xf = reshape(x, flat);
    const mf = mask && reshape(ctx.broadcastTo(mask, shape), flat);
    const dyf = reshape(dy, [shape[0]!, shape[1]!, Dim.of(1)]);
    const attrs: KMaxPoolAttrs = { k: 1, axis: 2, hasMask: mf !== undefined };
    return reshape(ctx.emit1("kmax_pool_grad", mf ? [xf, mf, dyf] : [xf, dyf], attrs), shape);
  }
  // dy as [N, C, 1, ...], broadcastable against x
  const dyk = reshape(dy, [shape[0]!, shape[1]!, ...spatial.map(() => Dim.of(1))]);
  const m = mask && ctx.broadcastTo(ctx.emit1("cast", [mask], { dtype: "f32" }), shape);
  if (kind === "sum") return m ? ctx.emit1("mul", [dyk, m]) : ctx.broadcastTo(dyk, shape);
  if (m) {
    const count = ctx.emit1("reduce", [m], { kind: "sum", axes, keepdims: true });
    const scale = ctx.emit1("div", [dyk, ctx.emit1("maximum", [count, ctx.constant(1)])]);
    return ctx.emit1("mul", [scale, m]);
  }
  const P = numel(spatial).constValue();
  if (P !== undefined) return ctx.broadcastTo(ctx.emit1("mul", [dyk, ctx.constant(1 / P)]), shape);
  const ones = ctx.broadcastTo(ctx.constant(1), [Dim.of(1), Dim.of(1), ...spatial]);
  const count = ctx.emit1("reduce", [ones], { kind: "sum", axes, keepdims: true });
  return ctx.broadcastTo(ctx.emit1("div", [dyk, count]), shape);
}

// ---------------------------------------------------------------------------
// kmax_pool
// ---------------------------------------------------------------------------

export type KMaxPoolAttrs = { k: number; axis: number; hasMask: boolean };

const kmaxPoolOp = defineOp<KMaxPoolAttrs>({
  name: "kmax_pool",
  nondifferentiable: [1],
  infer(inputs, a, ctx) {
    const x = inputs[0]!;
    if (x.dtype !== "f32") ctx.fail("E213", `expected an f32 input, found ${typeToString(x)}`, { notes: [`input ${ctx.describeInput(0)}`] });
    if (a.axis < 0 || a.axis >= x.shape.length) {
      ctx.fail("E209", `axis ${a.axis} is out of range for an input of rank ${x.shape.length}`, { notes: [`input ${ctx.describeInput(0)}`] });
    }
    const size = x.shape[a.axis]!.constValue();
    if (size !== undefined && a.k > size) {
      ctx.fail("E201", `k=${a.k} is larger than the size ${size} of axis ${a.axis}`, { notes: [`input ${ctx.describeInput(0)}`], hint: `use k <= ${size}` });
    }
    if (a.hasMask) checkMask(x, inputs[1], ctx);
    return [{ dtype: "f32", shape: x.shape.map((d, i) => (i === a.axis ? Dim.of(a.k) : d)) }];
  },
  evaluate([x, mask], a, ctx) {
    const out = RefTensor.zeros(ctx.outShapes[0]!);
    forEachKMaxLine(x!, a.hasMask ? mask : undefined, a, ctx, (chosen, at) => {
      chosen.forEach((c, slot) => out.set(c.ok ? c.v : 0, ...at(slot)));
    });
    return [out];
  },
  grad([x, mask], _outputs, [dy], a, ctx) {
    return [ctx.emit1("kmax_pool_grad", a.hasMask ? [x!, mask!, dy!] : [x!, dy!], a), undefined];
  },
});

/**
 * For each line of x along the axis: the k chosen cells in their original
 * order (unmasked cells first, larger values first, ties to the lower index)
 * and the index of a cell (`at(j)`) on that line.
 */
function forEachKMaxLine(
  x: RefTensor,
  mask: RefTensor | undefined,
  a: KMaxPoolAttrs,
  ctx: EvalCtx,
  visit: (chosen: readonly { j: number; ok: boolean; v: number }[], at: (j: number) => number[]) => void,
): void {
  const size = x.shape[a.axis]!;
  if (a.k > size) ctx.fail(`k=${a.k} is larger than the size ${size} of axis ${a.axis}`);
  const eligible = maskReader(mask, x.rank);
  const lines = x.shape.map((s, i) => (i === a.axis ? 1 : s));
  for (const line of indices(lines)) {
    const at = (j: number) => line.map((v, i) => (i === a.axis ? j : v));
    const candidates = Array.from({ length: size }, (_, j) => ({ j, ok: eligible(at(j)), v: x.get(...at(j)) }));
    // Unmasked cells first, larger values first, ties to the lower index;
    // the chosen k are then put back in their original order.
    candidates.sort((p, q) => (p.ok !== q.ok ? (p.ok ? -1 : 1) : p.ok && p.v !== q.v ? q.v - p.v : p.j - q.j));
    visit(
      candidates.slice(0, a.k).sort((p, q) => p.j - q.j),
      at,
    );
  }
}

// ---------------------------------------------------------------------------
// kmax_pool_grad: dx of kmax_pool
// ---------------------------------------------------------------------------
//
// The slot-th chosen cell of a line (same choice as the forward, ties to the
// lower index) receives dy at that slot; a masked pick (its output is the
// constant 0) and every cell not chosen receive 0.

const kmaxPoolGradOp = defineOp<KMaxPoolAttrs>({
  name: "kmax_pool_grad",
  infer(inputs, a, ctx) {
    return [checkDy(kmaxPoolOp, inputs, a.hasMask, a, ctx)];
  },
  evaluate(inputs, a, ctx) {
    const x = inputs[0]!;
    const dy = inputs[a.hasMask ? 2 : 1]!;
    const dx = RefTensor.zeros(ctx.outShapes[0]!);
    forEachKMaxLine(x, a.hasMask ? inputs[1] : undefined, a, ctx, (chosen, at) => {
      chosen.forEach((c, slot) => {
        if (c.ok) dx.set(dy.get(...at(slot)), ...at(c.j));
      });
    });
    return [dx];
  },
});

// ---------------------------------------------------------------------------
// Builtins
// ---------------------------------------------------------------------------

function kindOf(callee: string): PoolKind {
  return callee.startsWith("max") || callee === "global_maxpool" ? "max" : callee.startsWith("avg") || callee === "global_avgpool" ? "avg" : "sum";
}

/** The optional `mask=` tensor. */
function readMask(args: Args): Value | undefined {
  return args.optTensor("mask");
}

const poolBuiltin: BuiltinDef = {
  names: ["maxpool1d", "maxpool2d", "maxpool3d", "avgpool1d", "avgpool2d", "avgpool3d", "sumpool1d", "sumpool2d", "sumpool3d"],
  signature: (callee) =>
    callee.startsWith("avg")
      ? ["x", "window", "stride", "padding", "dilation", "ceil_mode", "count_include_pad", "mask"]
      : ["x", "window", "stride", "padding", "dilation", "ceil_mode", "mask"],
  lower(args, ctx) {
    const d = Number(/(\d)d$/.exec(ctx.callee)![1]);
    const kind = kindOf(ctx.callee);
    const x = args.tensor("x");
    checkSpatialInput(x.type, d, ctx.fail, `input ${ctx.describe(x)}`);
    const window = readInts(args, "window", d, undefined, 1);
    const stride = readInts(args, "stride", d, window, 1);
    const dilation = readInts(args, "dilation", d, 1, 1);
    const ceilMode = args.bool("ceil_mode", false);
    const countIncludePad = kind === "avg" ? args.bool("count_include_pad", true) : true;
    const spec = readPadding(args, ctx, "padding", d, ["valid", "same"]);
    const { padBegin, padEnd } = resolvePadding(spec, x.type, window, stride, dilation, ctx.fail);
    checkHalfWindow(ctx, window, dilation, padBegin, padEnd);
    const mask = readMask(args);
    const attrs: PoolAttrs = { kind, window, stride, padBegin, padEnd, dilation, ceilMode, countIncludePad, hasMask: mask !== undefined };
    return ctx.emit1("pool", mask ? [x, mask] : [x], attrs);
  },
};

/** PyTorch's rule: padding at most half the (dilated) window on each side. */
function checkHalfWindow(ctx: LowerCtx, window: readonly number[], dilation: readonly number[], padBegin: readonly number[], padEnd: readonly number[]): void {
  window.forEach((k, i) => {
    const half = Math.floor(effectiveWindow(k, dilation[i]!) / 2);
    const p = Math.max(padBegin[i]!, padEnd[i]!);
    if (p > half) {
      ctx.fail("E404", `padding ${p} along dim ${2 + i} is more than half the window ${effectiveWindow(k, dilation[i]!)}`, {
        arg: "padding",
        hint: `pools pad at most ${half} here (as PyTorch); a window of padding alone would pool nothing`,
      });
    }
  });
}

const globalPoolBuiltin: BuiltinDef = {
  names: ["global_maxpool", "global_avgpool", "global_sumpool"],
  signature: () => ["x", "mask"],
  lower(args, ctx) {
    const x = args.tensor("x");
    const mask = readMask(args);
    const attrs: GlobalPoolAttrs = { kind: kindOf(ctx.callee), hasMask: mask !== undefined };
    return ctx.emit1("global_pool", mask ? [x, mask] : [x], attrs);
  },
};

const kmaxPoolBuiltin: BuiltinDef = {
  names: ["kmax_pool"],
  signature: () => ["x", "k", "axis", "mask"],
  lower(args, ctx) {
    const x = args.tensor("x");
    const k = args.positiveInt("k");
    const rank = x.type.shape.length;
    const given = args.int("axis", -1);
    if (given < -rank || given >= rank) {
      ctx.fail("E209", `axis ${given} is out of range for an input of rank ${rank}`, { arg: "axis", notes: [`input ${ctx.describe(x)}`], hint: rank ? `use an axis in [${-rank}, ${rank - 1}]` : undefined });
    }
    const mask = readMask(args);
    const attrs: KMaxPoolAttrs = { k, axis: given < 0 ? given + rank : given, hasMask: mask !== undefined };
    return ctx.emit1("kmax_pool", mask ? [x, mask] : [x], attrs);
  },
};

export const ops: OpDef[] = [poolOp, globalPoolOp, kmaxPoolOp, poolGradOp, kmaxPoolGradOp];
export const builtins: BuiltinDef[] = [poolBuiltin, globalPoolBuiltin, kmaxPoolBuiltin];

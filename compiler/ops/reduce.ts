// Reductions: sum/mean/max/min/logsumexp over axes, argmax, softmax and
// log_softmax. Axes follow NumPy: negative counts from the end; a rank-0
// tensor has no axes, so only the default axis=all applies to it (and returns
// the scalar itself).

import { Dim } from "../ir/dims.ts";
import type { Attrs } from "../ir/graph.ts";
import { typeToString, type DType, type TensorType } from "../ir/types.ts";
import { RefTensor } from "../reference/tensor.ts";
import type { FailOptions, InferCtx, LowerCtx } from "./op.ts";
import { defineOp, type BuiltinDef, type OpDef } from "./op.ts";

export type ReduceKind = "sum" | "mean" | "max" | "min" | "logsumexp";
const KINDS: readonly ReduceKind[] = ["sum", "mean", "max", "min", "logsumexp"];

type Fail = (code: "E209", message: string, opts?: FailOptions) => never;

/** `axis` in -rank..rank-1 as a non-negative axis, or E209. */
export function normalizeAxis(axis: number, t: TensorType, fail: Fail, argName = "axis"): number {
  const rank = t.shape.length;
  if (!Number.isInteger(axis) || axis < -rank || axis >= rank) {
    fail("E209", `axis ${axis} is out of range for ${typeToString(t)} (rank ${rank})`, {
      arg: argName,
      hint: rank === 0 ? "a rank-0 tensor has no axes; leave axis out" : `use an axis in ${-rank}..${rank - 1}`,
    });
  }
  return axis < 0 ? axis + rank : axis;
}

/** Several axes, normalised and sorted; a repeated axis is E209. */
export function normalizeAxes(axes: readonly number[], t: TensorType, fail: Fail, argName = "axis"): number[] {
  const seen = new Map<number, number>();
  for (const a of axes) {
    const n = normalizeAxis(a, t, fail, argName);
    const prev = seen.get(n);
    if (prev !== undefined) {
      fail("E209", `axis ${n} of ${typeToString(t)} is given twice (as ${prev} and ${a})`, { arg: argName });
    }
    seen.set(n, a);
  }
  return [...seen.keys()].sort((x, y) => x - y);
}

function checkDtype(op: string, t: TensorType, allowed: readonly DType[], ctx: InferCtx): void {
  if (!allowed.includes(t.dtype)) {
    ctx.fail("E213", `${op} needs ${allowed.join(" or ")}, found ${typeToString(t)}`, {
      notes: [ctx.describeInput(0)],
      hint: `convert with cast(x, dtype="${allowed[0]}")`,
    });
  }
}

/** Shape after reducing `axes` (kept as 1 with keepdims). */
function reducedShape(shape: readonly Dim[], axes: readonly number[], keepdims: boolean): Dim[] {
  const out: Dim[] = [];
  shape.forEach((d, i) => {
    if (!axes.includes(i)) out.push(d);
    else if (keepdims) out.push(Dim.of(1));
  });
  return out;
}

/**
 * The values of `x` grouped by output element: entry k lists the values that
 * reduce into flat output k (row-major over the non-reduced axes).
 */
function groupsOf(x: RefTensor, axes: readonly number[]): number[][] {
  const kept = x.shape.map((s, i) => (axes.includes(i) ? 1 : s));
  const outSize = kept.reduce((p, s) => p * s, 1);
  const groups: number[][] = Array.from({ length: outSize }, () => []);
  const strides = new Array<number>(kept.length);
  let s = 1;
  for (let i = kept.length - 1; i >= 0; i--) {
    strides[i] = s;
    s *= kept[i]!;
  }
  for (let k = 0; k < x.size; k++) {
    const idx = x.unravel(k);
    let o = 0;
    for (let i = 0; i < idx.length; i++) if (!axes.includes(i)) o += idx[i]! * strides[i]!;
    groups[o]!.push(x.data[k]!);
  }
  return groups;
}

// Loops rather than Math.max(...values): spreading a large tensor overflows the stack.
function extreme(values: readonly number[], larger: boolean): number {
  let m = larger ? -Infinity : Infinity;
  for (const v of values) {
    if (Number.isNaN(v)) return NaN;
    if (larger ? v > m : v < m) m = v;
  }
  return m;
}

export function logSumExp(values: readonly number[]): number {
  const m = extreme(values, true);
  // All -inf (or +inf somewhere): the answer is m itself; subtracting would give NaN.
  if (!Number.isFinite(m)) return m;
  let s = 0;
  for (const v of values) s += Math.exp(v - m);
  return m + Math.log(s);
}

function reduceGroup(kind: ReduceKind, values: readonly number[], dtype: DType): number {
  switch (kind) {
    case "sum": {
      let s = 0;
      for (const v of values) s += v;
      return dtype === "i32" ? s | 0 : s;
    }
    case "mean": {
      let s = 0;
      for (const v of values) s += v;
      return s / values.length;
    }
    case "max":
      return extreme(values, true);
    case "min":
      return extreme(values, false);
    case "logsumexp":
      return logSumExp(values);
  }
}

type ReduceAttrs = { kind: ReduceKind; axes: readonly number[]; keepdims: boolean };

const reduceOp = defineOp<ReduceAttrs>({
  name: "reduce",
  infer(inputs, a, ctx) {
    const x = inputs[0]!;
    if (!KINDS.includes(a.kind)) ctx.fail("E404", `reduce kind must be one of ${KINDS.join(", ")}, found ${String(a.kind)}`);
    checkDtype(a.kind, x, a.kind === "mean" || a.kind === "logsumexp" ? ["f32"] : ["f32", "i32"], ctx);
    const axes = normalizeAxes(a.axes, x, ctx.fail);
    if (axes.some((v, i) => v !== a.axes[i])) {
      ctx.fail("E209", `reduce axes must be non-negative and sorted, found [${a.axes.join(", ")}]`);
    }
    return [{ dtype: x.dtype, shape: reducedShape(x.shape, axes, a.keepdims) }];
  },
  evaluate(inputs, a, ctx) {
    const x = inputs[0]!;
    const groups = groupsOf(x, a.axes);
    const out = new RefTensor(x.dtype, ctx.outShapes[0]!);
    groups.forEach((g, k) => (out.data[k] = reduceGroup(a.kind, g, x.dtype)));
    return [out];
  },
  grad(inputs, outputs, dys, a, ctx) {
    const x = inputs[0]!;
    if (a.kind !== "sum") {
      // mean: dy / count (count read from the dims at run time); max/min: dy to the first
      // extreme of each group; logsumexp: dy · exp(x − y). One reduce_grad node each.
      return [ctx.emit1("reduce_grad", [x, outputs[0]!, dys[0]!], { kind: a.kind, axes: a.axes, keepdims: a.keepdims })];
    }
    // d sum / dx = 1: dy spread back over the reduced axes.
    const kept = x.type.shape.map((d, i) => (a.axes.includes(i) ? Dim.of(1) : d));
    const dy = a.keepdims ? dys[0]! : ctx.emit1("reshape", [dys[0]!], { shape: kept });
    return [ctx.broadcastTo(dy, x.type.shape)];
  },
});

/** For each flat element of a tensor of `shape`, the flat index of its group after reducing `axes`. */
function groupIndex(shape: readonly number[], axes: readonly number[]): Int32Array {
  const size = shape.reduce((p, s) => p * s, 1);
  const strides = new Array<number>(shape.length).fill(0);
  let s = 1;
  for (let i = shape.length - 1; i >= 0; i--) {
    if (axes.includes(i)) continue;
    strides[i] = s;
    s *= shape[i]!;
  }
  const out = new Int32Array(size);
  const idx = new Array<number>(shape.length).fill(0);
  for (let k = 0; k < size; k++) {
    let g = 0;
    for (let i = 0; i < idx.length; i++) g += idx[i]! * strides[i]!;
    out[k] = g;
    for (let i = idx.length - 1; i >= 0; i--) {
      if (++idx[i]! < shape[i]!) break;
      idx[i] = 0;
    }
  }
  return out;
}

/**
 * Whether `v` replaces `best` as the running extreme of a group scanned in flat
 * order: strictly larger (smaller for min), or the first NaN. So ties go to the
 * first extreme and a NaN group sends its gradient to its first NaN, the
 * element argmax picks.
 */
export function beatsExtreme(v: number, best: number, larger: boolean): boolean {
  if (Number.isNaN(best)) return false;
  return Number.isNaN(v) || (larger ? v > best : v < best);
}

type ReduceGradAttrs = { kind: Exclude<ReduceKind, "sum">; axes: readonly number[]; keepdims: boolean };

/**
 * reduce_grad(x, y, dy, {kind, axes, keepdims}) -> dx of x's shape, for y = reduce(x):
 *  mean: dy / (number of reduced elements), max/min: dy at the first extreme of
 *  each group in flat order (0 elsewhere), logsumexp: dy · exp(x − y).
 */
const reduceGradOp = defineOp<ReduceGradAttrs>({
  name: "reduce_grad",
  infer(inputs, a, ctx) {
    const [x, y, dy] = inputs as [TensorType, TensorType, TensorType];
    if (!["mean", "max", "min", "logsumexp"].includes(a.kind)) ctx.fail("E404", `reduce_grad kind must be mean, max, min or logsumexp, found ${String(a.kind)}`);
    for (const t of [x, y, dy]) checkDtype("reduce_grad", t, ["f32"], ctx);
    const axes = normalizeAxes(a.axes, x, ctx.fail);
    const want = reducedShape(x.shape, axes, a.keepdims);
    for (const t of [y, dy]) {
      if (t.shape.length !== want.length || t.shape.some((d, i) => !d.equals(want[i]!))) {
        ctx.fail("E203", `reduce_grad needs y and dy of the reduced shape [${want.join(", ")}], found ${typeToString(t)}`);
      }
    }
    return [{ dtype: "f32", shape: x.shape }];
  },
  evaluate(inputs, a) {
    const [x, y, dy] = inputs as [RefTensor, RefTensor, RefTensor];
    const group = groupIndex(x.shape, a.axes);
    const out = new RefTensor("f32", x.shape);
    switch (a.kind) {
      case "mean": {
        const count = a.axes.reduce((p, i) => p * x.shape[i]!, 1);
        for (let k = 0; k < x.size; k++) out.data[k] = dy.data[group[k]!]! / count;
        break;
      }
      case "logsumexp":
        for (let k = 0; k < x.size; k++) out.data[k] = dy.data[group[k]!]! * Math.exp(x.data[k]! - y.data[group[k]!]!);
        break;
      case "max":
      case "min": {
        const best = new Int32Array(dy.size).fill(-1);
        for (let k = 0; k < x.size; k++) {
          const g = group[k]!;
          if (best[g] === -1 || beatsExtreme(x.data[k]!, x.data[best[g]!]!, a.kind === "max")) best[g] = k;
        }
        best.forEach((k, g) => {
          if (k >= 0) out.data[k] = dy.data[g]!;
        });
        break;
      }
    }
    return [out];
  },
});

/** Calls `f` with the flat offsets of every line of `shape` along `axis`. */
function forEachLine(shape: readonly number[], axis: number, f: (offsets: number[], line: number) => void): void {
  const len = shape[axis]!;
  const inner = shape.slice(axis + 1).reduce((p, s) => p * s, 1);
  const outer = shape.slice(0, axis).reduce((p, s) => p * s, 1);
  let line = 0;
  for (let o = 0; o < outer; o++) {
    for (let i = 0; i < inner; i++) {
      const offsets = Array.from({ length: len }, (_, j) => (o * len + j) * inner + i);
      f(offsets, line++);
    }
  }
}

type ArgmaxAttrs = { axis: number; keepdims: boolean };

const argmaxOp = defineOp<ArgmaxAttrs>({
  name: "argmax",
  infer(inputs, a, ctx) {
    const x = inputs[0]!;
    checkDtype("argmax", x, ["f32", "i32"], ctx);
    const axis = normalizeAxis(a.axis, x, ctx.fail);
    return [{ dtype: "i32", shape: reducedShape(x.shape, [axis], a.keepdims ?? false) }];
  },
  evaluate(inputs, a, ctx) {
    const x = inputs[0]!;
    const axis = a.axis < 0 ? a.axis + x.rank : a.axis;
    const out = new RefTensor("i32", ctx.outShapes[0]!);
    forEachLine(x.shape, axis, (offsets, line) => {
      // The first maximum wins; NaN counts as the largest value (as in PyTorch).
      let best = 0;
      for (let j = 1; j < offsets.length; j++) {
        const v = x.data[offsets[j]!]!;
        const b = x.data[offsets[best]!]!;
        if (Number.isNaN(b)) break;
        if (v > b || Number.isNaN(v)) best = j;
      }
      out.data[line] = best;
    });
    return [out];
  },
  noGradient: true,
});

function softmaxOp(name: "softmax" | "log_softmax"): OpDef {
  return defineOp<{ axis: number }>({
    name,
    infer(inputs, a, ctx) {
      const x = inputs[0]!;
      checkDtype(name, x, ["f32"], ctx);
      normalizeAxis(a.axis, x, ctx.fail);
      return [{ dtype: x.dtype, shape: x.shape }];
    },
    evaluate(inputs, a) {
      const x = inputs[0]!;
      const axis = a.axis < 0 ? a.axis + x.rank : a.axis;
      const out = new RefTensor(x.dtype, x.shape);
      forEachLine(x.shape, axis, (offsets) => {
        // Shift by the max so exp never overflows; keep x - max separate from
        // log(sum) so that neither loses digits to the other's magnitude.
        const m = extreme(offsets.map((o) => x.data[o]!), true);
        const shift = Number.isFinite(m) ? m : 0;
        let sum = 0;
        for (const o of offsets) sum += Math.exp(x.data[o]! - shift);
        for (const o of offsets) {
          const z = x.data[o]! - shift;
          out.data[o] = name === "softmax" ? Math.exp(z) / sum : z - Math.log(sum);
        }
      });
      return [out];
    },
    // softmax: dx = y·(dy − Σ dy·y); log_softmax: dx = dy − exp(y)·Σ dy (sums along the axis).
    grad(_inputs, outputs, dys, a, ctx) {
      return [ctx.emit1("softmax_grad", [outputs[0]!, dys[0]!], { axis: a.axis, log: name === "log_softmax" })];
    },
  });
}

/**
 * softmax_grad(y, dy, {axis, log}) -> dx, where y is the forward output:
 *  softmax (log=false): dx = y·(dy − Σⱼ dyⱼ·yⱼ); log_softmax (log=true): dx = dy − exp(y)·Σⱼ dyⱼ.
 */
const softmaxGradOp = defineOp<{ axis: number; log: boolean }>({
  name: "softmax_grad",
  infer(inputs, a, ctx) {
    const [y, dy] = inputs as [TensorType, TensorType];
    checkDtype("softmax_grad", y, ["f32"], ctx);
    normalizeAxis(a.axis, y, ctx.fail);
    if (dy.dtype !== "f32" || dy.shape.length !== y.shape.length || dy.shape.some((d, i) => !d.equals(y.shape[i]!))) {
      ctx.fail("E203", `softmax_grad needs y and dy of one f32 shape, found ${typeToString(y)} and ${typeToString(dy)}`);
    }
    return [{ dtype: "f32", shape: y.shape }];
  },
  evaluate(inputs, a) {
    const [y, dy] = inputs as [RefTensor, RefTensor];
    const axis = a.axis < 0 ? a.axis + y.rank : a.axis;
    const out = new RefTensor("f32", y.shape);
    forEachLine(y.shape, axis, (offsets) => {
      let s = 0;
      for (const o of offsets) s += a.log ? dy.data[o]! : dy.data[o]! * y.data[o]!;
      for (const o of offsets) out.data[o] = a.log ? dy.data[o]! - Math.exp(y.data[o]!) * s : y.data[o]! * (dy.data[o]! - s);
    });
    return [out];
  },
});

export const ops: OpDef[] = [reduceOp, argmaxOp, softmaxOp("softmax"), softmaxOp("log_softmax"), reduceGradOp, softmaxGradOp];

// ---------------------------------------------------------------------------
// Builtins

function failer(ctx: LowerCtx): Fail {
  return (code, message, opts) => ctx.fail(code, message, opts);
}

const reduceBuiltin: BuiltinDef = {
  names: KINDS,
  signature: () => ["x", "axis", "keepdims"],
  lower(args, ctx) {
    const x = args.tensor("x");
    const axis = args.axes("axis", "all");
    const axes = axis === "all" ? x.type.shape.map((_, i) => i) : normalizeAxes(axis, x.type, failer(ctx));
    return ctx.emit1("reduce", [x], { kind: ctx.callee as ReduceKind, axes, keepdims: args.bool("keepdims", false) } satisfies Attrs);
  },
};

const argmaxBuiltin: BuiltinDef = {
  names: ["argmax"],
  signature: () => ["x", "axis", "keepdims"],
  lower(args, ctx) {
    const x = args.tensor("x");
    const axis = normalizeAxis(args.int("axis"), x.type, failer(ctx));
    return ctx.emit1("argmax", [x], { axis, keepdims: args.bool("keepdims", false) });
  },
};

const softmaxBuiltin: BuiltinDef = {
  names: ["softmax", "log_softmax"],
  signature: () => ["x", "axis"],
  lower(args, ctx) {
    const x = args.tensor("x");
    const axis = normalizeAxis(args.int("axis", -1), x.type, failer(ctx));
    return ctx.emit1(ctx.callee, [x], { axis });
  },
};

export const builtins: BuiltinDef[] = [reduceBuiltin, argmaxBuiltin, softmaxBuiltin];

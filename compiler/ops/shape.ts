// Shape ops: reshape (and flatten, which lowers to it), transpose, concat,
// slice, pad, upsample and broadcast_to. Sizes stay symbolic: reshape infers a
// -1 by exact symbolic division, concat adds sizes, slice with negative indices
// on a symbolic axis gives `L - k`.
//
// Conventions that PyTorch does not fix for us:
//  * slice: Python semantics (negative counts from the end, out-of-range bounds
//    clamp) resolved at compile time on static axes. On a symbolic axis of size
//    L, a non-negative bound k is taken as k (the run checks that k <= L) and a
//    negative one as L - k. An empty result on a static axis is an error (E214).
//  * pad(x, padding, value=0): `padding` is an int p (p on both sides of EVERY
//    dim, as numpy.pad), or a list with one entry per dim for the LAST
//    len(padding) dims in natural order (NOT PyTorch F.pad's reversed flat
//    list): an int p pads that dim by p on both sides, a pair [begin, end] pads
//    it asymmetrically. For NCHW, pad(x, [[0, 1], [2, 2]]) pads H by 0 before
//    and 1 after, W by 2 on each side.
//  * upsample scales dims 2.. of [N, C, S...]; "linear" is linear, bilinear or
//    trilinear interpolation with PyTorch's align_corners=false.
//
// Gradients (docs/gradients.md, "## shape"): reshape, transpose and
// broadcast_to are undone by their inverses (reshape back, the inverse
// permutation, a sum over the broadcast axes); concat slices dy per operand at
// symbolic offsets; pad slices the interior back out; slice puts dy back into
// zeros (pad when the bounds are static and the step is 1, else the backward op
// `slice_grad`); nearest upsampling sums each scale block (reshape + reduce);
// linear upsampling uses the backward op `upsample_grad`, a gather over the
// outputs whose taps touch each input element.

import { Dim, numel, shapesEqual, shapeToString, type Shape } from "../ir/dims.ts";
import type { Attrs, Value } from "../ir/graph.ts";
import { typeToString, type TensorType } from "../ir/types.ts";
import { indices, RefTensor } from "../reference/tensor.ts";
import type { ArgValue } from "./args.ts";
import { broadcastShapes, forEachBroadcast } from "./broadcast.ts";
import { defineOp, type BuiltinDef, type FailOptions, type GradCtx, type InferCtx, type LowerCtx, type OpDef } from "./op.ts";
import { normalizeAxis } from "./reduce.ts";

function elements(shape: Shape): string {
  const n = numel(shape);
  return `${n.toString()} element${n.equals(1) ? "" : "s"}`;
}

// ---------------------------------------------------------------------------
// reshape

const reshapeOp = defineOp<{ shape: readonly Dim[] }>({
  name: "reshape",
  infer(inputs, a, ctx) {
    const x = inputs[0]!;
    a.shape.forEach((d, i) => {
      const c = d.constValue();
      if (c !== undefined && c < 1) ctx.fail("E212", `reshape size ${c} at position ${i} must be positive`, { arg: "shape" });
    });
    if (!numel(x.shape).equals(numel(a.shape))) {
      ctx.fail("E207", `cannot reshape ${typeToString(x)} (${elements(x.shape)}) into ${shapeToString(a.shape)} (${elements(a.shape)})`, {
        notes: [ctx.describeInput(0)],
        arg: "shape",
      });
    }
    return [{ dtype: x.dtype, shape: a.shape }];
  },
  evaluate(inputs, _a, ctx) {
    const x = inputs[0]!;
    return [new RefTensor(x.dtype, ctx.outShapes[0]!, x.data.slice())];
  },
  // The same elements in the same order: reshape dy back.
  grad: (inputs, _outputs, dys, _a, ctx) => [reshapeTo(dys[0]!, inputs[0]!.type.shape, ctx)],
});

/** `v` reshaped to `shape` (no node when it already has it). */
function reshapeTo(v: Value, shape: Shape, ctx: GradCtx): Value {
  return shapesEqual(v.type.shape, shape) ? v : ctx.emit1("reshape", [v], { shape });
}

/** The target shape with its -1 (at most one) replaced by the size that keeps the element count. */
function resolveReshape(input: Value, target: readonly (Dim | -1)[], ctx: LowerCtx): Dim[] {
  const x = input.type;
  const holes = target.filter((d) => d === -1).length;
  if (holes > 1) ctx.fail("E207", `reshape target ${targetString(target)} has ${holes} sizes of -1; at most one can be inferred`, { arg: "shape" });
  target.forEach((d, i) => {
    const c = d === -1 ? undefined : d.constValue();
    if (c !== undefined && c < 1) ctx.fail("E212", `reshape size ${c} at position ${i} must be positive (or -1 to infer it)`, { arg: "shape" });
  });
  if (holes === 0) return target as Dim[];
  const known = numel(target.filter((d): d is Dim => d !== -1));
  const inferred = numel(x.shape).divExact(known);
  if (!inferred) {
    return ctx.fail("E207", `cannot infer -1 in reshape target ${targetString(target)}: ${elements(x.shape)} of ${typeToString(x)} are not divisible by ${known.toString()}`, {
      arg: "shape",
      notes: [ctx.describe(input)],
    });
  }
  return target.map((d) => (d === -1 ? inferred : d));
}

function targetString(target: readonly (Dim | -1)[]): string {
  return `[${target.map((d) => (d === -1 ? "-1" : d.toString())).join(", ")}]`;
}

const reshapeBuiltin: BuiltinDef = {
  names: ["reshape"],
  signature: () => ["x", "shape"],
  lower(args, ctx) {
    const x = args.tensor("x");
    const shape = resolveReshape(x, args.dims("shape"), ctx);
    return ctx.emit1("reshape", [x], { shape });
  },
};

const flattenBuiltin: BuiltinDef = {
  names: ["flatten"],
  signature: () => ["x", "start", "end"],
  lower(args, ctx) {
    const x = args.tensor("x");
    const fail = (code: "E209", m: string, o?: FailOptions) => ctx.fail(code, m, o);
    const start = normalizeAxis(args.int("start", 1), x.type, fail, "start");
    const end = normalizeAxis(args.int("end", -1), x.type, fail, "end");
    if (start > end) ctx.fail("E209", `flatten start ${start} is after end ${end} for ${typeToString(x.type)}`, { arg: "start" });
    const s = x.type.shape;
    const shape = [...s.slice(0, start), numel(s.slice(start, end + 1)), ...s.slice(end + 1)];
    return start === end ? x : ctx.emit1("reshape", [x], { shape });
  },
};

// ---------------------------------------------------------------------------
// transpose

const transposeOp = defineOp<{ perm: readonly number[] }>({
  name: "transpose",
  infer(inputs, a, ctx) {
    const x = inputs[0]!;
    const rank = x.shape.length;
    const sorted = [...a.perm].sort((p, q) => p - q);
    if (a.perm.length !== rank || sorted.some((v, i) => v !== i)) {
      ctx.fail("E209", `transpose perm [${a.perm.join(", ")}] is not a permutation of 0..${rank - 1} for ${typeToString(x)}`, {
        arg: "perm",
        notes: [ctx.describeInput(0)],
        hint: `list each of the ${rank} axes exactly once`,
      });
    }
    return [{ dtype: x.dtype, shape: a.perm.map((p) => x.shape[p]!) }];
  },
  evaluate(inputs, a, ctx) {
    const x = inputs[0]!;
    const out = new RefTensor(x.dtype, ctx.outShapes[0]!);
    let k = 0;
    for (const idx of indices(out.shape)) {
      const src = new Array<number>(idx.length);
      a.perm.forEach((p, i) => (src[p] = idx[i]!));
      out.data[k++] = x.data[x.offset(src)]!;
    }
    return [out];
  },
  // Output axis i is input axis perm[i]: the inverse permutation moves dy back.
  grad(_inputs, _outputs, dys, a, ctx) {
    const inverse = new Array<number>(a.perm.length);
    a.perm.forEach((p, i) => (inverse[p] = i));
    const dy = dys[0]!;
    return [inverse.every((p, i) => p === i) ? dy : ctx.emit1("transpose", [dy], { perm: inverse })];
  },
});

const transposeBuiltin: BuiltinDef = {
  names: ["transpose"],
  signature: () => ["x", "perm"],
  lower(args, ctx) {
    const x = args.tensor("x");
    const rank = x.type.shape.length;
    // Default: reverse the axes, as numpy.transpose. Negative entries count from the end.
    const perm = args.intList("perm", [...Array(rank).keys()].reverse()).map((p) => (p < 0 && p >= -rank ? p + rank : p));
    return ctx.emit1("transpose", [x], { perm });
  },
};

// ---------------------------------------------------------------------------
// concat

const concatOp = defineOp<{ axis: number }>({
  name: "concat",
  infer(inputs, a, ctx) {
    if (inputs.length === 0) ctx.fail("E404", "concat needs at least one tensor");
    const first = inputs[0]!;
    const axis = normalizeAxis(a.axis, first, ctx.fail);
    let total = Dim.of(0);
    inputs.forEach((t, i) => {
      if (t.dtype !== first.dtype) {
        ctx.fail("E213", `concat operand ${i} is ${typeToString(t)}, but operand 0 is ${typeToString(first)}`, {
          notes: [ctx.describeInput(0), ctx.describeInput(i)],
          hint: `convert with cast(x, dtype="${first.dtype}")`,
        });
      }
      if (t.shape.length !== first.shape.length) {
        ctx.fail("E208", `concat operand ${i} is ${typeToString(t)} (rank ${t.shape.length}), but operand 0 is ${typeToString(first)} (rank ${first.shape.length})`, {
          notes: [ctx.describeInput(0), ctx.describeInput(i)],
        });
      }
      t.shape.forEach((d, k) => {
        if (k !== axis && !d.equals(first.shape[k]!)) {
          ctx.fail("E208", `concat along axis ${axis}: operand ${i} is ${typeToString(t)}, but operand 0 is ${typeToString(first)}: dim ${k} is ${d.toString()} vs ${first.shape[k]!.toString()}`, {
            notes: [ctx.describeInput(0), ctx.describeInput(i)],
            hint: `all dims except axis ${axis} must be equal`,
          });
        }
      });
      total = total.add(t.shape[axis]!);
    });
    const shape = [...first.shape];
    shape[axis] = total;
    return [{ dtype: first.dtype, shape }];
  },
  evaluate(inputs, a, ctx) {
    const shape = ctx.outShapes[0]!;
    const axis = a.axis < 0 ? a.axis + shape.length : a.axis;
    const out = new RefTensor(inputs[0]!.dtype, shape);
    let base = 0;
    for (const x of inputs) {
      let k = 0;
      for (const idx of indices(x.shape)) {
        idx[axis]! += base;
        out.data[out.offset(idx)] = x.data[k++]!;
      }
      base += x.shape[axis]!;
    }
    return [out];
  },
  // Operand k is the slab [start_k, start_k + size_k) of the axis; the offsets
  // are sums of (possibly symbolic) sizes, so the slices take Dim bounds.
  grad(inputs, _outputs, dys, a, ctx) {
    const dy = dys[0]!;
    if (inputs.length === 1) return [dy];
    const axis = a.axis < 0 ? a.axis + dy.type.shape.length : a.axis;
    let start = Dim.of(0);
    return inputs.map((x, k) => {
      const begin = start;
      start = start.add(x.type.shape[axis]!);
      if (x.type.dtype !== "f32") return undefined;
      const end = k === inputs.length - 1 ? null : dimOrNumber(start);
      return ctx.emit1("slice", [dy], { axis, start: dimOrNumber(begin), end, step: 1 } satisfies SliceAttrs);
    });
  },
});

/** A static Dim as a number (the form slice attrs store known positions in). */
function dimOrNumber(d: Dim): number | Dim {
  return d.constValue() ?? d;
}

const concatBuiltin: BuiltinDef = {
  names: ["concat"],
  signature: () => ["tensors", "axis"],
  lower(args, ctx) {
    const xs = args.tensors("tensors");
    if (xs.length === 0) ctx.fail("E404", "concat needs at least one tensor, found an empty list", { arg: "tensors" });
    const fail = (code: "E209", m: string, o?: FailOptions) => ctx.fail(code, m, o);
    const axis = normalizeAxis(args.int("axis", 1), xs[0]!.type, fail);
    return ctx.emit1("concat", xs, { axis });
  },
};

// ---------------------------------------------------------------------------
// slice

/**
 * IR attrs. `start`/`end`: a number (negative counts from the end; clamped to
 * the axis, Python-style) or a Dim (an absolute position, e.g. `L - 3`);
 * `end: null` means the end of the axis. `step` >= 1.
 */
type SliceAttrs = { axis: number; start: number | Dim; end: number | Dim | null; step: number };

/** A bound as a position on an axis of size `size` (clamped when both are static). */
function slicePosition(v: number | Dim, size: Dim): Dim {
  const n = v instanceof Dim ? v.constValue() : v;
  const s = size.constValue();
  if (n === undefined) return v as Dim;
  if (s !== undefined) return Dim.of(Math.min(Math.max(n < 0 ? n + s : n, 0), s));
  return n < 0 ? size.add(n) : Dim.of(n);
}

function sliceDescription(a: SliceAttrs): string {
  const b = (v: number | Dim | null) => (v === null ? "" : v.toString());
  return `${b(a.start)}:${b(a.end)}${a.step === 1 ? "" : `:${a.step}`}`;
}

const sliceOp = defineOp<SliceAttrs>({
  name: "slice",
  infer(inputs, a, ctx) {
    const x = inputs[0]!;
    const axis = normalizeAxis(a.axis, x, ctx.fail);
    if (!Number.isInteger(a.step) || a.step < 1) {
      ctx.fail("E214", `slice step must be a positive integer, found ${a.step}`, { arg: "step", hint: "negative steps (reversal) are not supported" });
    }
    const size = x.shape[axis]!;
    const start = slicePosition(a.start, size);
    const end = a.end === null ? size : slicePosition(a.end, size);
    const len = end.sub(start);
    const c = len.constValue();
    if (c !== undefined && c <= 0) {
      ctx.fail("E214", `slice ${sliceDescription(a)} of axis ${axis} (size ${size.toString()}) is empty`, {
        notes: [ctx.describeInput(0)],
        hint: "the end must come after the start",
      });
    }
    const shape = [...x.shape];
    shape[axis] = Dim.ceildiv(len, a.step);
    return [{ dtype: x.dtype, shape }];
  },
  evaluate(inputs, a, ctx) {
    const x = inputs[0]!;
    const axis = a.axis < 0 ? a.axis + x.rank : a.axis;
    const size = x.shape[axis]!;
    // Numbers follow Python (negative from the end); a Dim is already an absolute position.
    const resolve = (v: number | Dim) => {
      const n = v instanceof Dim ? ctx.evalDim(v) : v < 0 ? v + size : v;
      return Math.min(Math.max(n, 0), size);
    };
    const start = resolve(a.start);
    const end = a.end === null ? size : resolve(a.end);
    const count = Math.max(0, Math.ceil((end - start) / a.step));
    const shape = ctx.outShapes[0]!;
    if (count !== shape[axis]) {
      ctx.fail(`slice ${sliceDescription(a)} of axis ${axis} with size ${size} gives ${count} elements, but the compiled shape needs ${shape[axis]}`);
    }
    const out = new RefTensor(x.dtype, shape);
    let k = 0;
    for (const idx of indices(shape)) {
      idx[axis] = start + idx[axis]! * a.step;
      out.data[k++] = x.data[x.offset(idx)]!;
    }
    return [out];
  },
  // dy goes back to the positions it was read from, zeros elsewhere: a zero pad
  // when both bounds are static and the step is 1, else slice_grad (steps,
  // bounds resolved on a symbolic axis at run time).
  grad(inputs, _outputs, dys, a, ctx) {
    const x = inputs[0]!.type;
    const dy = dys[0]!;
    const axis = a.axis < 0 ? a.axis + x.shape.length : a.axis;
    const size = x.shape[axis]!;
    const n = size.constValue();
    const start = slicePosition(a.start, size).constValue();
    const end = a.end === null ? n : slicePosition(a.end, size).constValue();
    if (a.step === 1 && n !== undefined && start !== undefined && end !== undefined) {
      const padBegin = x.shape.map((_, i) => (i === axis ? start : 0));
      const padEnd = x.shape.map((_, i) => (i === axis ? n - end : 0));
      return [padBegin[axis] === 0 && padEnd[axis] === 0 ? dy : ctx.emit1("pad", [dy], { padBegin, padEnd, value: 0 } satisfies PadAttrs)];
    }
    return [ctx.emit1("slice_grad", [dy], { axis, start: a.start, end: a.end, step: a.step, size } satisfies SliceGradAttrs)];
  },
});

// ---------------------------------------------------------------------------
// slice_grad (backward of slice)

/** The forward slice's attrs, plus the size of the sliced axis of its input. */
type SliceGradAttrs = SliceAttrs & { size: Dim };

/** Start and element count of a slice on an axis of `size` elements at run time (Python rules, as the forward). */
function resolveSlice(a: SliceAttrs, size: number, evalDim: (d: Dim) => number): { start: number; count: number } {
  const resolve = (v: number | Dim) => {
    const n = v instanceof Dim ? evalDim(v) : v < 0 ? v + size : v;
    return Math.min(Math.max(n, 0), size);
  };
  const start = resolve(a.start);
  const end = a.end === null ? size : resolve(a.end);
  return { start, count: Math.max(0, Math.ceil((end - start) / a.step)) };
}

/**
 * dx of `slice`: an input of `size` elements along `axis` that is zero except
 * at positions start, start + step, ..., which hold dy's elements in order.
 * Each position is hit at most once, so there is nothing to sum.
 */
const sliceGradOp = defineOp<SliceGradAttrs>({
  name: "slice_grad",
  infer(inputs, a, ctx) {
    const dy = inputs[0]!;
    const axis = normalizeAxis(a.axis, dy, ctx.fail);
    const start = slicePosition(a.start, a.size);
    const end = a.end === null ? a.size : slicePosition(a.end, a.size);
    const count = Dim.ceildiv(end.sub(start), a.step);
    if (!count.equals(dy.shape[axis]!)) {
      ctx.fail("E214", `slice_grad of ${sliceDescription(a)} on an axis of ${a.size.toString()} needs ${count.toString()} elements along axis ${axis}, found ${typeToString(dy)}`);
    }
    const shape = [...dy.shape];
    shape[axis] = a.size;
    return [{ dtype: dy.dtype, shape }];
  },
  evaluate(inputs, a, ctx) {
    const dy = inputs[0]!;
    const shape = ctx.outShapes[0]!;
    const axis = a.axis < 0 ? a.axis + dy.rank : a.axis;
    const { start, count } = resolveSlice(a, shape[axis]!, (d) => ctx.evalDim(d));
    if (count !== dy.shape[axis]) {
      ctx.fail(`slice ${sliceDescription(a)} of axis ${axis} with size ${shape[axis]} gives ${count} elements, but the compiled shape needs ${dy.shape[axis]}`);
    }
    const out = RefTensor.zeros(shape);
    let k = 0;
    for (const idx of indices(dy.shape)) {
      idx[axis] = start + idx[axis]! * a.step;
      out.data[out.offset(idx)] = dy.data[k++]!;
    }
    return [out];
  },
});

function position(name: string, v: ArgValue | undefined, ctx: LowerCtx): number | Dim | null {
  if (!v) return null;
  if (v.kind === "number" && v.isInt) return v.value;
  if (v.kind === "dim") return v.value.constValue() ?? v.value;
  return ctx.fail("E403", `argument '${name}' must be an integer or a size, found ${v.kind === "number" ? `the number ${v.value}` : `a ${v.kind}`}`, { arg: name });
}

const sliceBuiltin: BuiltinDef = {
  names: ["slice"],
  signature: () => ["x", "axis", "start", "end", "step"],
  lower(args, ctx) {
    const x = args.tensor("x");
    const fail = (code: "E209", m: string, o?: FailOptions) => ctx.fail(code, m, o);
    const axis = normalizeAxis(args.int("axis"), x.type, fail);
    const step = args.int("step", 1);
    if (step < 1) ctx.fail("E214", `slice step must be a positive integer, found ${step}`, { arg: "step", hint: "negative steps (reversal) are not supported" });
    const size = x.type.shape[axis]!;
    // Store resolved positions: a number when known, `L - k` when symbolic.
    const norm = (v: number | Dim | null) => {
      if (v === null) return null;
      const p = slicePosition(v, size);
      return p.constValue() ?? p;
    };
    const start = norm(position("start", args.raw("start"), ctx)) ?? 0;
    const end = norm(position("end", args.raw("end"), ctx)) ?? size.constValue() ?? size;
    return ctx.emit1("slice", [x], { axis, start, end, step });
  },
};

// ---------------------------------------------------------------------------
// pad

type PadAttrs = { padBegin: readonly number[]; padEnd: readonly number[]; value: number };

const padOp = defineOp<PadAttrs>({
  name: "pad",
  infer(inputs, a, ctx) {
    const x = inputs[0]!;
    const rank = x.shape.length;
    if (a.padBegin.length !== rank || a.padEnd.length !== rank) {
      ctx.fail("E214", `pad needs ${rank} begin and end amounts for ${typeToString(x)}, found ${a.padBegin.length} and ${a.padEnd.length}`);
    }
    checkPads(a.padBegin, a.padEnd, ctx.fail);
    return [{ dtype: x.dtype, shape: x.shape.map((d, i) => d.add(a.padBegin[i]! + a.padEnd[i]!)) }];
  },
  evaluate(inputs, a, ctx) {
    const x = inputs[0]!;
    const out = RefTensor.filled(ctx.outShapes[0]!, a.value, x.dtype);
    let k = 0;
    for (const idx of indices(x.shape)) {
      out.data[out.offset(idx.map((v, i) => v + a.padBegin[i]!))] = x.data[k++]!;
    }
    return [out];
  },
  // The border holds the constant (no gradient to x); the interior is x: slice
  // it back out, one padded axis at a time. `end` counts from the end of the
  // axis (-padEnd), so a symbolic axis needs no size arithmetic.
  grad(_inputs, _outputs, dys, a, ctx) {
    let g = dys[0]!;
    a.padBegin.forEach((begin, axis) => {
      const end = a.padEnd[axis]!;
      if (begin === 0 && end === 0) return;
      g = ctx.emit1("slice", [g], { axis, start: begin, end: end === 0 ? null : -end, step: 1 } satisfies SliceAttrs);
    });
    return [g];
  },
});

function checkPads(begin: readonly number[], end: readonly number[], fail: InferCtx["fail"]): void {
  begin.forEach((b, i) => {
    const e = end[i]!;
    if (!Number.isInteger(b) || !Number.isInteger(e) || b < 0 || e < 0) {
      fail("E214", `padding must be non-negative integers, found [${b}, ${e}] for dim ${i}`, { arg: "padding", hint: "use slice to crop" });
    }
  });
}

/** The builtin's `padding` argument as full-rank begin/end lists (see the file comment). */
function padAmounts(v: ArgValue, x: TensorType, ctx: LowerCtx): { padBegin: number[]; padEnd: number[] } {
  const rank = x.shape.length;
  const intOf = (a: ArgValue): number =>
    a.kind === "number" && a.isInt
      ? a.value
      : ctx.fail("E403", "argument 'padding' must be an integer, a list of integers or a list of [begin, end] pairs", { arg: "padding" });
  if (v.kind === "number") {
    const p = intOf(v);
    return { padBegin: new Array<number>(rank).fill(p), padEnd: new Array<number>(rank).fill(p) };
  }
  if (v.kind !== "list") return ctx.fail("E403", "argument 'padding' must be an integer, a list of integers or a list of [begin, end] pairs", { arg: "padding" });
  if (v.items.length > rank) {
    ctx.fail("E214", `padding has ${v.items.length} entries but ${typeToString(x)} has only ${rank} dims`, {
      arg: "padding",
      hint: "padding lists one entry per dim, for the last dims",
    });
  }
  const padBegin = new Array<number>(rank).fill(0);
  const padEnd = new Array<number>(rank).fill(0);
  v.items.forEach((item, j) => {
    const dim = rank - v.items.length + j;
    if (item.kind === "list") {
      if (item.items.length !== 2) ctx.fail("E403", `padding entry ${j} must be an integer or a [begin, end] pair, found a list of ${item.items.length}`, { arg: "padding" });
      padBegin[dim] = intOf(item.items[0]!);
      padEnd[dim] = intOf(item.items[1]!);
    } else {
      padBegin[dim] = padEnd[dim] = intOf(item);
    }
  });
  return { padBegin, padEnd };
}

const padBuiltin: BuiltinDef = {
  names: ["pad"],
  signature: () => ["x", "padding", "value"],
  lower(args, ctx) {
    const x = args.tensor("x");
    const raw = args.raw("padding") ?? ctx.fail("E401", "missing argument 'padding'", { hint: "pass padding=..." });
    const { padBegin, padEnd } = padAmounts(raw, x.type, ctx);
    checkPads(padBegin, padEnd, (code, m, o) => ctx.fail(code, m, o));
    const value = args.number("value", 0);
    if (x.type.dtype !== "f32" && !Number.isInteger(value)) {
      ctx.fail("E404", `pad value for ${typeToString(x.type)} must be an integer, found ${value}`, { arg: "value" });
    }
    return ctx.emit1("pad", [x], { padBegin, padEnd, value } satisfies Attrs);
  },
};

// ---------------------------------------------------------------------------
// upsample

type UpsampleAttrs = { scale: readonly number[]; mode: "nearest" | "linear" };

const upsampleOp = defineOp<UpsampleAttrs>({
  name: "upsample",
  infer(inputs, a, ctx) {
    const x = inputs[0]!;
    const spatial = x.shape.length - 2;
    if (spatial < 1) {
      ctx.fail("E210", `upsample needs [N, C, spatial...] (rank 3 to 5), found ${typeToString(x)}`, { notes: [ctx.describeInput(0)] });
    }
    if (x.dtype !== "f32") ctx.fail("E213", `upsample needs f32, found ${typeToString(x)}`, { notes: [ctx.describeInput(0)] });
    if (a.scale.length !== spatial) ctx.fail("E404", `upsample needs ${spatial} scale factors (one per spatial dim), found ${a.scale.length}`, { arg: "scale" });
    a.scale.forEach((s) => {
      if (!Number.isInteger(s) || s < 1) ctx.fail("E404", `upsample scale must be a positive integer, found ${s}`, { arg: "scale" });
    });
    if (a.mode !== "nearest" && a.mode !== "linear") ctx.fail("E404", `upsample mode must be "nearest" or "linear", found "${String(a.mode)}"`, { arg: "mode" });
    return [{ dtype: x.dtype, shape: x.shape.map((d, i) => (i < 2 ? d : d.scale(a.scale[i - 2]!))) }];
  },
  evaluate(inputs, a, ctx) {
    const x = inputs[0]!;
    const out = new RefTensor(x.dtype, ctx.outShapes[0]!);
    let k = 0;
    for (const idx of indices(out.shape)) {
      // Per spatial dim: the two source taps and the weight of the second.
      const taps = idx.slice(2).map((o, j) => sourceTaps(o, a.scale[j]!, x.shape[j + 2]!, a.mode));
      let v = 0;
      for (let corner = 0; corner < 1 << taps.length; corner++) {
        let w = 1;
        const src = idx.slice(0, 2);
        taps.forEach((tp, j) => {
          const hi = (corner >> j) & 1;
          w *= hi ? tp.w : 1 - tp.w;
          src.push(hi ? tp.i1 : tp.i0);
        });
        if (w !== 0) v += w * x.data[x.offset(src)]!;
      }
      out.data[k++] = v;
    }
    return [out];
  },
  grad(inputs, _outputs, dys, a, ctx) {
    const x = inputs[0]!.type;
    const dy = dys[0]!;
    if (a.mode === "linear") return [ctx.emit1("upsample_grad", [dy], { scale: a.scale, shape: x.shape } satisfies UpsampleGradAttrs)];
    // nearest: output o along a dim reads input floor(o / s), so dx sums each
    // block of s outputs: split every scaled dim S·s into [S, s] and sum the s axes.
    if (a.scale.every((s) => s === 1)) return [dy];
    const split: Dim[] = [x.shape[0]!, x.shape[1]!];
    const axes: number[] = [];
    x.shape.slice(2).forEach((d, j) => {
      split.push(d);
      if (a.scale[j]! > 1) {
        axes.push(split.length);
        split.push(Dim.of(a.scale[j]!));
      }
    });
    const blocks = ctx.emit1("reshape", [dy], { shape: split });
    return [ctx.emit1("reduce", [blocks], { kind: "sum", axes, keepdims: false })];
  },
});

// ---------------------------------------------------------------------------
// upsample_grad (backward of linear upsample)

type UpsampleGradAttrs = { scale: readonly number[]; shape: readonly Dim[] };

/**
 * dx of linear `upsample` (align_corners=false): along each spatial dim,
 * output o reads input taps i0(o) with weight 1 - w(o) and i1(o) with weight
 * w(o) (see sourceTaps), so
 *   dx[n, c, i...] = Σ_o dy[n, c, o...] · Π_j W_j(o_j, i_j),
 *   W(o, i) = [i0(o) = i]·(1 - w(o)) + [i1(o) = i]·w(o).
 * Only outputs o in [(i - 1)·s, (i + 2)·s) can have a tap at i (the taps are
 * floor(src) and the next index, src = (o + 0.5) / s - 0.5), so the kernels
 * gather over that window per input element; there is no scatter.
 */
const upsampleGradOp = defineOp<UpsampleGradAttrs>({
  name: "upsample_grad",
  infer(inputs, a, ctx) {
    const dy = inputs[0]!;
    const ok =
      dy.dtype === "f32" &&
      dy.shape.length === a.shape.length &&
      a.scale.length === a.shape.length - 2 &&
      a.shape.every((d, i) => dy.shape[i]!.equals(i < 2 ? d : d.scale(a.scale[i - 2]!)));
    if (!ok) ctx.fail("E210", `upsample_grad to ${shapeToString(a.shape)} with scale [${a.scale.join(", ")}] does not fit ${typeToString(dy)}`);
    return [{ dtype: "f32", shape: a.shape }];
  },
  evaluate(inputs, a, ctx) {
    const dy = inputs[0]!;
    const out = RefTensor.zeros(ctx.outShapes[0]!);
    let k = 0;
    // The forward's corners, in its order, each adding its share of dy (the
    // reference runs sequentially; the kernels gather instead).
    for (const idx of indices(dy.shape)) {
      const g = dy.data[k++]!;
      const taps = idx.slice(2).map((o, j) => sourceTaps(o, a.scale[j]!, out.shape[j + 2]!, "linear"));
      for (let corner = 0; corner < 1 << taps.length; corner++) {
        let w = 1;
        const dst = idx.slice(0, 2);
        taps.forEach((tp, j) => {
          const hi = (corner >> j) & 1;
          w *= hi ? tp.w : 1 - tp.w;
          dst.push(hi ? tp.i1 : tp.i0);
        });
        if (w !== 0) out.data[out.offset(dst)]! += w * g;
      }
    }
    return [out];
  },
});

/**
 * Source positions for output index `o` along a dim of input size `size`.
 * nearest: floor(o / scale). linear (align_corners=false, as PyTorch):
 * src = (o + 0.5) / scale - 0.5, clamped at 0, between floor(src) and the next index.
 */
function sourceTaps(o: number, scale: number, size: number, mode: "nearest" | "linear"): { i0: number; i1: number; w: number } {
  if (mode === "nearest") {
    const i = Math.min(Math.floor(o / scale), size - 1);
    return { i0: i, i1: i, w: 0 };
  }
  const src = Math.max((o + 0.5) / scale - 0.5, 0);
  const i0 = Math.min(Math.floor(src), size - 1);
  const i1 = Math.min(i0 + 1, size - 1);
  return { i0, i1, w: src - i0 };
}

const upsampleBuiltin: BuiltinDef = {
  names: ["upsample"],
  signature: () => ["x", "scale", "mode"],
  lower(args, ctx) {
    const x = args.tensor("x");
    const spatial = x.type.shape.length - 2;
    if (spatial < 1) {
      ctx.fail("E210", `upsample needs [N, C, spatial...] (rank 3 to 5), found ${typeToString(x.type)}`, { notes: [ctx.describe(x)] });
    }
    const scale = args.ints("scale", spatial);
    scale.forEach((s) => {
      if (s < 1) args.fail("scale", `upsample scale must be a positive integer, found ${s}`);
    });
    const mode = args.string("mode", ["nearest", "linear", "bilinear", "trilinear"], "nearest");
    return ctx.emit1("upsample", [x], { scale, mode: mode === "nearest" ? "nearest" : "linear" });
  },
};

// ---------------------------------------------------------------------------
// broadcast_to

const broadcastToOp = defineOp<{ shape: readonly Dim[] }>({
  name: "broadcast_to",
  infer(inputs, a, ctx) {
    const x = inputs[0]!;
    const r = broadcastShapes(x.shape, a.shape);
    if (!r.ok || r.shape.length !== a.shape.length || r.shape.some((d, i) => !d.equals(a.shape[i]!))) {
      const why = r.ok ? "" : `: dim ${r.dim} is ${r.a.toString()} vs ${r.b.toString()}`;
      ctx.fail("E203", `cannot broadcast ${typeToString(x)} to ${shapeToString(a.shape)}${why}`, { notes: [ctx.describeInput(0)], arg: "shape" });
    }
    return [{ dtype: x.dtype, shape: a.shape }];
  },
  evaluate(inputs, _a, ctx) {
    const x = inputs[0]!;
    const shape = ctx.outShapes[0]!;
    const out = new RefTensor(x.dtype, shape);
    forEachBroadcast(shape, [x.shape], (k, [o]) => (out.data[k] = x.data[o!]!));
    return [out];
  },
  // Each input element is read by every output along the broadcast axes: sum them.
  grad: (inputs, _outputs, dys, _a, ctx) => [ctx.unbroadcast(dys[0]!, inputs[0]!.type)],
});

const broadcastToBuiltin: BuiltinDef = {
  names: ["broadcast_to"],
  signature: () => ["x", "shape"],
  lower(args, ctx) {
    const x = args.tensor("x");
    const shape = args.dims("shape").map((d) => (d === -1 ? ctx.fail("E404", "broadcast_to cannot infer a -1 size; give every size", { arg: "shape" }) : d));
    return ctx.emit1("broadcast_to", [x], { shape });
  },
};

export const ops: OpDef[] = [reshapeOp, transposeOp, concatOp, sliceOp, padOp, upsampleOp, broadcastToOp, sliceGradOp, upsampleGradOp];
export const builtins: BuiltinDef[] = [
  reshapeBuiltin,
  flattenBuiltin,
  transposeBuiltin,
  concatBuiltin,
  sliceBuiltin,
  padBuiltin,
  upsampleBuiltin,
  broadcastToBuiltin,
];

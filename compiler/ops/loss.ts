// Losses (DSL.md §6): scalar f32[] values, PyTorch's reduction="mean", stable
// for logits of any finite magnitude (±1e4 and beyond).
//
//  * cross_entropy(logits, labels, axis=1, mask=none, ignore_index=-100):
//    logits f32 with the class axis `axis` (PyTorch's [N, C] / [N, C, d1, ...];
//    for 1-D logits [C] the default axis is 0, as PyTorch), labels i32 shaped
//    like logits without that axis. The mean runs over the positions that are
//    neither masked out (mask bool shaped like labels, false = excluded) nor
//    equal to ignore_index. Deviation from PyTorch, on purpose: when no
//    position counts the loss is 0, not NaN, so a fully padded batch does not
//    poison training. A label outside [0, C) that is not ignored is a runtime
//    error. Computed with a max-shifted log-sum-exp.
//  * mse(a, b): mean of (a − b)² over all elements. No broadcasting: a
//    different rank is E210, a different size on some axis is E203.
//  * bce_with_logits(logits, targets): mean of the stable form
//    max(x, 0) − x·t + log(1 + exp(−|x|)). Targets f32, same-shape rule as mse;
//    both inputs are differentiable (as in PyTorch).

import { shapeToString, shapesEqual, type Shape } from "../ir/dims.ts";
import { typeToString, type TensorType } from "../ir/types.ts";
import { RefTensor, indices } from "../reference/tensor.ts";
import { defineOp, type BuiltinDef, type InferCtx, type OpDef } from "./op.ts";

const SCALAR: TensorType = { dtype: "f32", shape: [] };

function requireDtype(t: TensorType, i: number, dtype: TensorType["dtype"], what: string, ctx: InferCtx, hint?: string): void {
  if (t.dtype !== dtype) {
    ctx.fail("E213", `${what} must be ${dtype}, found ${typeToString(t)}`, { notes: [ctx.describeInput(i)], hint });
  }
}

/** Rank mismatch → E210, size mismatch → E202 (the brief's codes for "labels do not fit the logits"). */
function requireShape(t: TensorType, want: Shape, what: string, wantedAs: string, ctx: InferCtx, notes: string[], hint?: string): void {
  if (shapesEqual(t.shape, want)) return;
  const code = t.shape.length !== want.length ? "E210" : "E202";
  ctx.fail(code, `${what} must have shape ${shapeToString(want)} (${wantedAs}), found ${typeToString(t)}`, { notes, hint });
}

// ---------------------------------------------------------------- cross entropy

type CrossEntropyAttrs = { axis: number; ignoreIndex: number; hasMask: boolean };

/** The logits' shape without the class axis: the shape labels must have. */
function positionsShape(logits: Shape, axis: number): Shape {
  return logits.filter((_, i) => i !== axis);
}

const crossEntropyOp = defineOp<CrossEntropyAttrs>({
  name: "cross_entropy",
  nondifferentiable: [1, 2],
  infer(inputs, a, ctx) {
    const [logits, labels, mask] = inputs as [TensorType, TensorType, TensorType | undefined];
    requireDtype(logits, 0, "f32", "logits", ctx);
    const rank = logits.shape.length;
    if (!(a.axis >= 0 && a.axis < rank)) {
      ctx.fail("E209", `class axis ${a.axis} is out of range for logits ${typeToString(logits)}`, { notes: [ctx.describeInput(0)] });
    }
    requireDtype(labels, 1, "i32", "labels", ctx, "labels are class indices (i32)");
    const want = positionsShape(logits.shape, a.axis);
    const oneHot = shapesEqual(labels.shape, logits.shape);
    requireShape(labels, want, "labels", `logits ${typeToString(logits)} without class axis ${a.axis}`, ctx, [ctx.describeInput(1), ctx.describeInput(0)],
      oneHot ? "labels are class indices, not one-hot vectors or probabilities" : undefined);
    if (a.hasMask) {
      if (!mask) return ctx.fail("E401", "cross_entropy with hasMask needs a mask input");
      requireDtype(mask, 2, "bool", "mask", ctx);
      requireShape(mask, want, "mask", "the shape of labels", ctx, [ctx.describeInput(2), ctx.describeInput(1)]);
    }
    return [SCALAR];
  },
  evaluate(inputs, a, ctx) {
    const [logits, labels] = inputs as [RefTensor, RefTensor];
    const mask = a.hasMask ? inputs[2] : undefined;
    const classes = logits.shape[a.axis]!;
    const stride = logits.strides[a.axis]!;
    let total = 0;
    let counted = 0;
    for (const pos of indices(labels.shape)) {
      const at = labels.offset(pos);
      if (mask && mask.data[at] === 0) continue;
      const label = labels.data[at]!;
      if (label === a.ignoreIndex) continue;
      if (!(label >= 0 && label < classes)) {
        ctx.fail(`label ${label} at labels[${pos.join(", ")}] is outside the classes [0, ${classes}) (ignore_index is ${a.ignoreIndex})`);
      }
      const base = logits.offset([...pos.slice(0, a.axis), 0, ...pos.slice(a.axis)]);
      const logit = (k: number) => logits.data[base + k * stride]!;
      let max = -Infinity;
      for (let k = 0; k < classes; k++) max = Math.max(max, logit(k));
      let sum = 0;
      for (let k = 0; k < classes; k++) sum += Math.exp(logit(k) - max);
      total += max + Math.log(sum) - logit(label);
      counted++;
    }
    return [RefTensor.scalar(counted > 0 ? total / counted : 0)];
  },
});

const crossEntropyBuiltin: BuiltinDef = {
  names: ["cross_entropy"],
  signature: () => ["logits", "labels", "axis", "mask", "ignore_index"],
  lower(args, ctx) {
    const logits = args.tensor("logits");
    const labels = args.tensor("labels");
    const rank = logits.type.shape.length;
    if (rank === 0) {
      ctx.fail("E210", `cross_entropy needs logits with a class axis, found ${typeToString(logits.type)}`, { arg: "logits", notes: [ctx.describe(logits)] });
    }
    const raw = args.int("axis", rank === 1 ? 0 : 1);
    if (raw < -rank || raw >= rank) {
      ctx.fail("E209", `axis ${raw} is out of range for logits ${typeToString(logits.type)} (valid axes are ${-rank}..${rank - 1})`, {
        arg: "axis",
        notes: [ctx.describe(logits)],
      });
    }
    const axis = raw < 0 ? raw + rank : raw;
    const mask = args.optTensor("mask");
    const ignoreIndex = args.int("ignore_index", -100);
    const attrs = { axis, ignoreIndex, hasMask: mask !== undefined };
    return ctx.emit1("cross_entropy", mask ? [logits, labels, mask] : [logits, labels], attrs);
  },
};

// ---------------------------------------------------------------- elementwise losses

/** mse and bce_with_logits: two f32 tensors of exactly the same shape. */
function sameShapeF32(inputs: readonly TensorType[], names: readonly [string, string], ctx: InferCtx): TensorType[] {
  const [a, b] = inputs as [TensorType, TensorType];
  requireDtype(a, 0, "f32", names[0], ctx);
  requireDtype(b, 1, "f32", names[1], ctx);
  if (!shapesEqual(a.shape, b.shape)) {
    const code = a.shape.length !== b.shape.length ? "E210" : "E203";
    ctx.fail(code, `${names[0]} and ${names[1]} must have the same shape (no broadcasting), found ${typeToString(a)} and ${typeToString(b)}`, {
      notes: [ctx.describeInput(0), ctx.describeInput(1)],
      hint: "reshape or broadcast_to one of them explicitly",
    });
  }
  return [SCALAR];
}

function meanOf(a: RefTensor, b: RefTensor, f: (x: number, y: number) => number): RefTensor {
  let total = 0;
  for (let i = 0; i < a.size; i++) total += f(a.data[i]!, b.data[i]!);
  return RefTensor.scalar(total / a.size);
}

const mseOp = defineOp({
  name: "mse",
  infer: (inputs, _a, ctx) => sameShapeF32(inputs, ["a", "b"], ctx),
  evaluate: ([a, b]) => [meanOf(a!, b!, (x, y) => (x - y) ** 2)],
});

const bceOp = defineOp({
  name: "bce_with_logits",
  infer: (inputs, _a, ctx) => sameShapeF32(inputs, ["logits", "targets"], ctx),
  // log(1 + exp(−|x|)) never overflows, and max(x, 0) − x·t carries the large part exactly.
  evaluate: ([x, t]) => [meanOf(x!, t!, (v, target) => Math.max(v, 0) - v * target + Math.log1p(Math.exp(-Math.abs(v))))],
});

function pairLoss(name: string, params: readonly [string, string]): BuiltinDef {
  return {
    names: [name],
    signature: () => params,
    lower: (args, ctx) => ctx.emit1(name, [args.tensor(params[0]), args.tensor(params[1])]),
  };
}

export const ops: OpDef[] = [crossEntropyOp, mseOp, bceOp];
export const builtins: BuiltinDef[] = [crossEntropyBuiltin, pairLoss("mse", ["a", "b"]), pairLoss("bce_with_logits", ["logits", "targets"])];

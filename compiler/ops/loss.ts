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
//
// Gradients (compiler/autodiff; docs/gradients.md "## loss"), each a backward
// op computing every input's gradient in one kernel:
//  * cross_entropy_grad(logits, labels, [mask], dloss) → dlogits =
//    (softmax(logits) − onehot(label))·dloss/count at counted positions, 0
//    elsewhere; count is found at run time, and no counted position gives
//    zeros (the forward's 0 loss is a constant). Labels and mask carry none.
//  * mse_grad(a, b, dloss) → (da, db) = ±2(a − b)·dloss/n.
//  * bce_with_logits_grad(x, t, dloss) → (dx, dt) = ((σ(x) − t), −x)·dloss/n,
//    σ evaluated without overflow for any |x|.

import { shapeToString, shapesEqual, type Shape } from "../ir/dims.ts";
import type { Value } from "../ir/graph.ts";
import { typeToString, type TensorType } from "../ir/types.ts";
import { RefTensor, indices } from "../reference/tensor.ts";
import { defineOp, type BuiltinDef, type GradCtx, type InferCtx, type OpDef } from "./op.ts";

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
  grad(inputs, _outputs, dys, a, ctx) {
    const dloss = dys[0];
    if (!dloss) return [];
    return [ctx.emit1("cross_entropy_grad", [...inputs, dloss], a), undefined, undefined];
  },
});

/**
 * cross_entropy_grad(logits, labels, [mask], dloss) → dlogits, attributes as
 * cross_entropy's. At a counted position (mask true, label ≠ ignore_index)
 * the logits' gradient is (softmax − onehot(label))·dloss/count, with the
 * softmax max-shifted (finite at any magnitude); every other entry is 0,
 * including all of them when nothing counts. A label outside [0, C) that is
 * counted fails with the forward's message.
 */
const crossEntropyGradOp = defineOp<CrossEntropyAttrs>({
  name: "cross_entropy_grad",
  nondifferentiable: [0, 1, 2, 3],
  infer(inputs, a, ctx) {
    if (inputs.length !== (a.hasMask ? 4 : 3)) ctx.fail("E401", "cross_entropy_grad takes logits, labels, [mask], dloss");
    const dloss = inputs[inputs.length - 1]!;
    const forward = crossEntropyOp.infer(inputs.slice(0, -1), a, ctx);
    requireDtype(dloss, inputs.length - 1, "f32", "dloss", ctx);
    requireShape(dloss, forward[0]!.shape, "dloss", "a scalar", ctx, []);
    return [inputs[0]!];
  },
  evaluate(inputs, a, ctx) {
    const [logits, labels] = inputs as [RefTensor, RefTensor];
    const mask = a.hasMask ? inputs[2] : undefined;
    const dloss = inputs[inputs.length - 1]!.data[0]!;
    const classes = logits.shape[a.axis]!;
    const stride = logits.strides[a.axis]!;
    const counts = (at: number) => !(mask && mask.data[at] === 0) && labels.data[at] !== a.ignoreIndex;
    let counted = 0;
    for (const pos of indices(labels.shape)) {
      const at = labels.offset(pos);
      if (!counts(at)) continue;
      const label = labels.data[at]!;
      if (!(label >= 0 && label < classes)) {
        ctx.fail(`label ${label} at labels[${pos.join(", ")}] is outside the classes [0, ${classes}) (ignore_index is ${a.ignoreIndex})`);
      }
      counted++;
    }
    const scale = counted > 0 ? dloss / counted : 0;
    const out = RefTensor.zeros(logits.shape);
    for (const pos of indices(labels.shape)) {
      const at = labels.offset(pos);
      if (!counts(at)) continue;
      const base = logits.offset([...pos.slice(0, a.axis), 0, ...pos.slice(a.axis)]);
      const logit = (k: number) => logits.data[base + k * stride]!;
      let max = -Infinity;
      for (let k = 0; k < classes; k++) max = Math.max(max, logit(k));
      let sum = 0;
      for (let k = 0; k < classes; k++) sum += Math.exp(logit(k) - max);
      for (let k = 0; k < classes; k++) {
        out.data[base + k * stride] = (Math.exp(logit(k) - max) / sum - (k === labels.data[at] ? 1 : 0)) * scale;
      }
    }
    return [out];
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

/** The gradient of a pair loss: one backward op giving both inputs' gradients. */
function pairGrad(op: string) {
  return (inputs: readonly Value[], _outputs: readonly Value[], dys: readonly (Value | undefined)[], _a: unknown, ctx: GradCtx) =>
    dys[0] ? ctx.emit(op, [inputs[0]!, inputs[1]!, dys[0]]) : [];
}

/** A pair loss's backward op: (a, b, dloss scalar) → (da, db), elementwise `f(a, b) · dloss/n`. */
function pairGradOp(name: string, names: readonly [string, string], f: (x: number, y: number) => [number, number]): OpDef {
  return defineOp({
    name,
    infer(inputs, _a, ctx) {
      sameShapeF32(inputs, names, ctx);
      requireDtype(inputs[2]!, 2, "f32", "dloss", ctx);
      requireShape(inputs[2]!, [], "dloss", "a scalar", ctx, []);
      return [inputs[0]!, inputs[0]!];
    },
    evaluate([a, b, dloss]) {
      const scale = dloss!.data[0]! / a!.size;
      const da = a!.map((x, i) => f(x, b!.data[i]!)[0] * scale);
      const db = a!.map((x, i) => f(x, b!.data[i]!)[1] * scale);
      return [da, db];
    },
  });
}

const mseOp = defineOp({
  name: "mse",
  infer: (inputs, _a, ctx) => sameShapeF32(inputs, ["a", "b"], ctx),
  evaluate: ([a, b]) => [meanOf(a!, b!, (x, y) => (x - y) ** 2)],
  grad: pairGrad("mse_grad"),
});

// d/da (a − b)² = 2(a − b), d/db = −2(a − b).
const mseGradOp = pairGradOp("mse_grad", ["a", "b"], (x, y) => [2 * (x - y), -2 * (x - y)]);

const bceOp = defineOp({
  name: "bce_with_logits",
  infer: (inputs, _a, ctx) => sameShapeF32(inputs, ["logits", "targets"], ctx),
  // log(1 + exp(−|x|)) never overflows, and max(x, 0) − x·t carries the large part exactly.
  evaluate: ([x, t]) => [meanOf(x!, t!, (v, target) => Math.max(v, 0) - v * target + Math.log1p(Math.exp(-Math.abs(v))))],
  grad: pairGrad("bce_with_logits_grad"),
});

/** σ(x) without overflow: exp of a non-positive number only. */
function stableSigmoid(x: number): number {
  const e = Math.exp(-Math.abs(x));
  return x >= 0 ? 1 / (1 + e) : e / (1 + e);
}

// d/dx [max(x, 0) − x·t + log(1 + exp(−|x|))] = σ(x) − t; d/dt = −x.
const bceGradOp = pairGradOp("bce_with_logits_grad", ["logits", "targets"], (x, t) => [stableSigmoid(x) - t, -x]);

function pairLoss(name: string, params: readonly [string, string]): BuiltinDef {
  return {
    names: [name],
    signature: () => params,
    lower: (args, ctx) => ctx.emit1(name, [args.tensor(params[0]), args.tensor(params[1])]),
  };
}

export const ops: OpDef[] = [crossEntropyOp, crossEntropyGradOp, mseOp, mseGradOp, bceOp, bceGradOp];
export const builtins: BuiltinDef[] = [crossEntropyBuiltin, pairLoss("mse", ["a", "b"]), pairLoss("bce_with_logits", ["logits", "targets"])];

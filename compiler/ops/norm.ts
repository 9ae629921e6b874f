// Normalisation and noise (DSL.md §6): batchnorm, layernorm, dropout, gaussian_noise.
// PyTorch semantics throughout:
//
//  * batchnorm: channels on axis 1. In training, y uses the batch mean and the
//    biased variance over every axis but 1, and the running statistics move by
//    (1 − momentum)·old + momentum·batch using the UNBIASED batch variance
//    (torch.nn.BatchNorm*d). In inference y uses the running statistics and they
//    stay as they are. The IR op has three outputs (y, new running mean, new
//    running var); the builtin registers the last two in `graph.bufferUpdates`
//    for the buffers it created itself.
//  * layernorm: biased variance over `axis` (an int or a list). Deviation from
//    PyTorch, on purpose: the normalised axes need not be the trailing ones
//    (`layernorm(x, axis=1)` on [N, C, L] normalises channels, as ConvNeXt-style
//    models want). `weight` and `bias` have the sizes of the normalised axes in
//    ascending axis order and broadcast over the others; with trailing axes this
//    is exactly PyTorch's `normalized_shape` layout.
//  * dropout: the IR op has two outputs, y and the mask. The mask is f32 and
//    already scaled: 0 for a dropped element, 1/(1 − p) for a survivor (all
//    ones in inference), so y = x·mask and the backward pass is dy·mask.
//  * gaussian_noise: y = x + std·N(0, 1) in training, y = x in inference.
//  * dropout and gaussian_noise take an optional second input, an f32 scalar:
//    the training graph (compiler/autodiff/training.ts) feeds them the step
//    number `@step`, the per-step seed of the WGSL training kernels, which have
//    no run context. The reference and JS semantics ignore it (their draws come
//    from the run's seeded stream for the node); it carries no gradient.
//
// Gradients (compiler/autodiff; docs/gradients.md "## norm"):
//  * batchnorm → the backward op `batchnorm_grad` (dx, dweight, dbias), which
//    like the forward reads the run's training flag: training differentiates
//    through the batch statistics, inference treats the running statistics as
//    constants. The running-statistics outputs carry no gradient.
//  * layernorm → plain IR (reduce mean/sum, elementwise, reshape): the
//    statistics are recomputed, dx = inv·(g − mean(g) − x̂·mean(g·x̂)) with
//    g = dy·weight, dweight = Σ dy·x̂ and dbias = Σ dy over the kept axes.
//  * dropout → dy·mask (the mask output is already scaled by 1/(1 − p), and is
//    the one the forward drew); gaussian_noise → dy.

import { Dim } from "../ir/dims.ts";
import type { Attrs, Value } from "../ir/graph.ts";
import { typeToString, typesEqual, type TensorType } from "../ir/types.ts";
import { RefTensor } from "../reference/tensor.ts";
import type { Args } from "./args.ts";
import { defineOp, type BuiltinDef, type InferCtx, type LowerCtx, type OpDef } from "./op.ts";

// ---------------------------------------------------------------- helpers

function requireF32(t: TensorType, i: number, what: string, ctx: InferCtx): void {
  if (t.dtype !== "f32") {
    ctx.fail("E213", `${what} must be f32, found ${typeToString(t)}`, { notes: [ctx.describeInput(i)] });
  }
}

/** `eps=`: a non-negative number (PyTorch accepts 0). */
function epsArg(args: Args): number {
  const eps = args.number("eps", 1e-5);
  if (!(eps >= 0) || !Number.isFinite(eps)) args.fail("eps", `argument 'eps' must be a non-negative number, found ${eps}`);
  return eps;
}

/** Normalise user axes (negative from the end) to sorted, distinct, non-negative axes. */
function normaliseAxes(raw: readonly number[], x: Value, name: string, args: Args, ctx: LowerCtx): number[] {
  const rank = x.type.shape.length;
  if (raw.length === 0) args.fail(name, `argument '${name}' must name at least one axis, found an empty list`);
  const out = raw.map((a) => {
    if (a < -rank || a >= rank) {
      ctx.fail("E209", `axis ${a} is out of range for ${typeToString(x.type)} (valid axes are ${-rank}..${rank - 1})`, {
        arg: name,
        notes: [ctx.describe(x)],
      });
    }
    return a < 0 ? a + rank : a;
  });
  const sorted = [...out].sort((p, q) => p - q);
  sorted.forEach((a, i) => {
    if (i > 0 && sorted[i - 1] === a) args.fail(name, `axis ${a} is listed twice in '${name}'`);
  });
  return sorted;
}

/** A copy of a tensor (outputs never alias inputs in the reference). */
function copy(t: RefTensor): RefTensor {
  return new RefTensor(t.dtype, t.shape, Float64Array.from(t.data));
}

/**
 * Record the new value of a buffer this call created; a tensor the user passed
 * (`running_mean=other`) is not this layer's state and is left alone.
 */
function registerBufferUpdate(args: Args, ctx: LowerCtx, argName: string, old: Value, updated: Value): void {
  if (args.has(argName) || old.node.op !== "param") return;
  const name = old.node.attrs.name as string;
  if (ctx.graph.params.get(name)?.trainable !== false) return;
  ctx.graph.bufferUpdates.push({ name, value: updated });
}

// ---------------------------------------------------------------- batchnorm

type BatchnormAttrs = { momentum: number; eps: number };

const BATCHNORM_STATE = ["weight", "bias", "running_mean", "running_var"] as const;

const batchnormOp = defineOp<BatchnormAttrs>({
  name: "batchnorm",
  nondifferentiable: [3, 4],
  infer(inputs, _a, ctx) {
    const x = inputs[0]!;
    requireF32(x, 0, "batchnorm input", ctx);
    if (x.shape.length < 2) {
      ctx.fail("E210", `batchnorm needs an input of rank 2 or more (channels on axis 1), found ${typeToString(x)}`, {
        notes: [ctx.describeInput(0)],
      });
    }
    const channel: TensorType = { dtype: "f32", shape: [x.shape[1]!] };
    BATCHNORM_STATE.forEach((what, k) => {
      const t = inputs[k + 1]!;
      if (!typesEqual(t, channel)) {
        ctx.fail("E216", `${what} must be ${typeToString(channel)} (one value per channel on axis 1), found ${typeToString(t)}`, {
          notes: [ctx.describeInput(k + 1), ctx.describeInput(0)],
        });
      }
    });
    return [x, channel, channel];
  },
  evaluate(inputs, a, ctx) {
    const [x, weight, bias, runMean, runVar] = inputs as [RefTensor, RefTensor, RefTensor, RefTensor, RefTensor];
    const channels = x.shape[1]!;
    const inner = x.shape.slice(2).reduce((p, s) => p * s, 1);
    const perChannel = x.size / channels;
    const channelOf = (flat: number) => Math.floor(flat / inner) % channels;

    let mean: Float64Array;
    let variance: Float64Array;
    const newMean = copy(runMean);
    const newVar = copy(runVar);
    if (ctx.training) {
      if (perChannel < 2) {
        ctx.fail(`batchnorm in training needs more than 1 value per channel, found input shape [${x.shape.join(", ")}]`);
      }
      mean = new Float64Array(channels);
      variance = new Float64Array(channels);
      x.data.forEach((v, i) => (mean[channelOf(i)]! += v / perChannel));
      x.data.forEach((v, i) => (variance[channelOf(i)]! += (v - mean[channelOf(i)]!) ** 2 / perChannel));
      for (let c = 0; c < channels; c++) {
        const unbiased = (variance[c]! * perChannel) / (perChannel - 1);
        newMean.data[c] = (1 - a.momentum) * runMean.data[c]! + a.momentum * mean[c]!;
        newVar.data[c] = (1 - a.momentum) * runVar.data[c]! + a.momentum * unbiased;
      }
    } else {
      mean = runMean.data;
      variance = runVar.data;
    }
    const y = x.map((v, i) => {
      const c = channelOf(i);
      return ((v - mean[c]!) / Math.sqrt(variance[c]! + a.eps)) * weight.data[c]! + bias.data[c]!;
    });
    return [y, newMean, newVar];
  },
  grad(inputs, _outputs, dys, a, ctx) {
    const dy = dys[0];
    // dys[1], dys[2] (the new running statistics) carry no gradient: they are buffer updates.
    if (!dy) return [];
    const [x, weight, , runMean, runVar] = inputs as [Value, Value, Value, Value, Value];
    // The WGSL kernels pick the training form by the node attribute, as the forward's do.
    const attrs: Attrs = ctx.node.attrs.training === true ? { eps: a.eps, training: true } : { eps: a.eps };
    const [dx, dweight, dbias] = ctx.emit("batchnorm_grad", [x, weight, runMean, runVar, dy], attrs);
    return [dx, dweight, dbias, undefined, undefined];
  },
});

/**
 * batchnorm_grad(x, weight, running_mean, running_var, dy) → (dx, dweight, dbias),
 * the backward of batchnorm, reading the run's training flag as the forward does.
 * Per channel c, with M values, mean μ and variance σ² (the batch's, biased, in
 * training; the running ones in inference), inv = 1/sqrt(σ² + eps), x̂ = (x − μ)·inv:
 *   dbias[c]   = Σ dy
 *   dweight[c] = Σ dy·x̂
 *   dx = weight[c]·inv·(dy − dbias[c]/M − x̂·dweight[c]/M)   (training)
 *   dx = weight[c]·inv·dy                                     (inference)
 * The training form is the derivative through μ and σ², which depend on x.
 */
const batchnormGradOp = defineOp<{ eps: number; training?: boolean }>({
  name: "batchnorm_grad",
  infer(inputs, _a, ctx) {
    const x = inputs[0]!;
    requireF32(x, 0, "batchnorm_grad input", ctx);
    if (x.shape.length < 2) ctx.fail("E210", `batchnorm_grad needs an input of rank 2 or more, found ${typeToString(x)}`);
    const channel: TensorType = { dtype: "f32", shape: [x.shape[1]!] };
    for (let k = 1; k <= 3; k++) {
      if (!typesEqual(inputs[k]!, channel)) ctx.fail("E216", `batchnorm_grad input ${k} must be ${typeToString(channel)}, found ${typeToString(inputs[k]!)}`);
    }
    if (!typesEqual(inputs[4]!, x)) ctx.fail("E216", `batchnorm_grad dy must be ${typeToString(x)}, found ${typeToString(inputs[4]!)}`);
    return [x, channel, channel];
  },
  evaluate(inputs, a, ctx) {
    const [x, weight, runMean, runVar, dy] = inputs as [RefTensor, RefTensor, RefTensor, RefTensor, RefTensor];
    const channels = x.shape[1]!;
    const inner = x.shape.slice(2).reduce((p, s) => p * s, 1);
    const perChannel = x.size / channels;
    const channelOf = (flat: number) => Math.floor(flat / inner) % channels;
    let mean: Float64Array = runMean.data;
    let variance: Float64Array = runVar.data;
    if (ctx.training) {
      mean = new Float64Array(channels);
      variance = new Float64Array(channels);
      x.data.forEach((v, i) => (mean[channelOf(i)]! += v / perChannel));
      x.data.forEach((v, i) => (variance[channelOf(i)]! += (v - mean[channelOf(i)]!) ** 2 / perChannel));
    }
    const inv = Array.from(variance, (v) => 1 / Math.sqrt(v + a.eps));
    const xhat = (i: number) => (x.data[i]! - mean[channelOf(i)]!) * inv[channelOf(i)]!;
    const dweight = new RefTensor("f32", [channels]);
    const dbias = new RefTensor("f32", [channels]);
    dy.data.forEach((g, i) => {
      dbias.data[channelOf(i)]! += g;
      dweight.data[channelOf(i)]! += g * xhat(i);
    });
    const dx = dy.map((g, i) => {
      const c = channelOf(i);
      const centred = ctx.training ? g - dbias.data[c]! / perChannel - (xhat(i) * dweight.data[c]!) / perChannel : g;
      return weight.data[c]! * inv[c]! * centred;
    });
    return [dx, dweight, dbias];
  },
});

const batchnormBuiltin: BuiltinDef = {
  names: ["batchnorm"],
  signature: () => ["x", "momentum", "eps", ...BATCHNORM_STATE],
  ownsParams: true,
  lower(args, ctx) {
    const x = args.tensor("x");
    const momentum = args.number("momentum", 0.1);
    if (!(momentum >= 0 && momentum <= 1)) args.fail("momentum", `argument 'momentum' must be between 0 and 1, found ${momentum}`);
    const eps = epsArg(args);
    if (x.type.dtype !== "f32") ctx.fail("E213", `batchnorm input must be f32, found ${typeToString(x.type)}`, { arg: "x", notes: [ctx.describe(x)] });
    if (x.type.shape.length < 2) {
      ctx.fail("E210", `batchnorm needs an input of rank 2 or more (channels on axis 1), found ${typeToString(x.type)}`, {
        arg: "x",
        notes: [ctx.describe(x)],
        hint: "reshape a vector to [N, C] first",
      });
    }
    const c = x.type.shape[1]!;
    if (!c.isConst() && BATCHNORM_STATE.some((n) => !args.has(n))) {
      ctx.fail("E212", `batchnorm needs a static channel count on axis 1 for its parameters, found ${c.toString()}`, {
        arg: "x",
        notes: [ctx.describe(x)],
      });
    }
    const vec: TensorType = { dtype: "f32", shape: [c] };
    const weight = ctx.param("weight", vec, { kind: "ones" });
    const bias = ctx.param("bias", vec, { kind: "zeros" });
    const runMean = ctx.param("running_mean", vec, { kind: "zeros" }, { trainable: false });
    const runVar = ctx.param("running_var", vec, { kind: "ones" }, { trainable: false });
    const [y, newMean, newVar] = ctx.emit("batchnorm", [x, weight, bias, runMean, runVar], { momentum, eps });
    registerBufferUpdate(args, ctx, "running_mean", runMean, newMean!);
    registerBufferUpdate(args, ctx, "running_var", runVar, newVar!);
    return y!;
  },
};

// ---------------------------------------------------------------- layernorm

type LayernormAttrs = { axes: readonly number[]; eps: number };

const layernormOp = defineOp<LayernormAttrs>({
  name: "layernorm",
  infer(inputs, a, ctx) {
    const x = inputs[0]!;
    requireF32(x, 0, "layernorm input", ctx);
    const rank = x.shape.length;
    const bad = a.axes.find((ax) => !Number.isInteger(ax) || ax < 0 || ax >= rank);
    if (bad !== undefined) ctx.fail("E209", `axis ${bad} is out of range for ${typeToString(x)}`, { notes: [ctx.describeInput(0)] });
    const affine: TensorType = { dtype: "f32", shape: a.axes.map((ax) => x.shape[ax]!) };
    (["weight", "bias"] as const).forEach((what, k) => {
      const t = inputs[k + 1]!;
      if (!typesEqual(t, affine)) {
        ctx.fail("E216", `${what} must be ${typeToString(affine)} (the sizes of the normalised axes ${a.axes.join(", ")}), found ${typeToString(t)}`, {
          notes: [ctx.describeInput(k + 1), ctx.describeInput(0)],
        });
      }
    });
    return [x];
  },
  evaluate(inputs, a, _ctx) {
    const [x, weight, bias] = inputs as [RefTensor, RefTensor, RefTensor];
    const isNormalised = x.shape.map((_, ax) => a.axes.includes(ax));
    const groupShape = x.shape.map((s, ax) => (isNormalised[ax] ? 1 : s));
    const groupSize = a.axes.reduce((p, ax) => p * x.shape[ax]!, 1);
    const groups = new RefTensor("f32", groupShape);
    // Each element belongs to one group (its index with the normalised axes
    // zeroed) and reads weight/bias at its index along the normalised axes.
    const groupOf = (idx: number[]) => groups.offset(idx.map((i, ax) => (isNormalised[ax] ? 0 : i)));
    const affineOf = (idx: number[]) => weight.offset(a.axes.map((ax) => idx[ax]!));

    const mean = new Float64Array(groups.size);
    const variance = new Float64Array(groups.size);
    x.data.forEach((v, i) => (mean[groupOf(x.unravel(i))]! += v / groupSize));
    x.data.forEach((v, i) => {
      const g = groupOf(x.unravel(i));
      variance[g]! += (v - mean[g]!) ** 2 / groupSize;
    });
    const y = x.map((v, i) => {
      const idx = x.unravel(i);
      const g = groupOf(idx);
      const k = affineOf(idx);
      return ((v - mean[g]!) / Math.sqrt(variance[g]! + a.eps)) * weight.data[k]! + bias.data[k]!;
    });
    return [y];
  },
  // Plain IR: the statistics are recomputed (two reduce-means), then
  //   x̂ = (x − mean)·inv,  inv = 1/sqrt(var + eps),  g = dy·weight
  //   dx = inv·(g − mean(g) − x̂·mean(g·x̂))   (means over the normalised axes)
  //   dweight = Σ dy·x̂,  dbias = Σ dy        (sums over the kept axes)
  // weight reshaped to x's rank (1 on the kept axes) broadcasts in place, since
  // its layout is row-major over the normalised axes in ascending order.
  grad(inputs, _outputs, dys, a, ctx) {
    const dy = dys[0];
    if (!dy) return [];
    const [x, weight] = inputs as [Value, Value, Value];
    const shape = x.type.shape;
    const kept = shape.flatMap((_, ax) => (a.axes.includes(ax) ? [] : [ax]));
    const mean = (v: Value) => ctx.emit1("reduce", [v], { kind: "mean", axes: a.axes, keepdims: true });
    const mul = (p: Value, q: Value) => ctx.emit1("mul", [p, q]);
    const sub = (p: Value, q: Value) => ctx.emit1("sub", [p, q]);
    const xc = sub(x, mean(x));
    const variance = mean(mul(xc, xc));
    const inv = ctx.emit1("div", [ctx.constant(1), ctx.emit1("sqrt", [ctx.emit1("add", [variance, ctx.constant(a.eps)])])]);
    const xhat = mul(xc, inv);
    const w = ctx.emit1("reshape", [weight], { shape: shape.map((d, ax) => (a.axes.includes(ax) ? d : Dim.of(1))) });
    const g = mul(dy, w);
    const dx = mul(sub(sub(g, mean(g)), mul(xhat, mean(mul(g, xhat)))), inv);
    // Summing the kept axes away leaves the normalised ones in ascending order: weight's shape.
    const overKept = (v: Value) => (kept.length ? ctx.emit1("reduce", [v], { kind: "sum", axes: kept, keepdims: false }) : v);
    return [dx, overKept(mul(dy, xhat)), overKept(dy)];
  },
});

const layernormBuiltin: BuiltinDef = {
  names: ["layernorm"],
  signature: () => ["x", "axis", "eps", "weight", "bias"],
  ownsParams: true,
  lower(args, ctx) {
    const x = args.tensor("x");
    if (x.type.dtype !== "f32") ctx.fail("E213", `layernorm input must be f32, found ${typeToString(x.type)}`, { arg: "x", notes: [ctx.describe(x)] });
    if (x.type.shape.length === 0) {
      ctx.fail("E210", `layernorm needs an input of rank 1 or more, found ${typeToString(x.type)}`, { arg: "x", notes: [ctx.describe(x)] });
    }
    const axes = normaliseAxes(args.axes("axis", -1) as number[], x, "axis", args, ctx);
    const eps = epsArg(args);
    const shape = axes.map((ax) => x.type.shape[ax]!);
    const symbolic = axes.find((ax) => !x.type.shape[ax]!.isConst());
    if (symbolic !== undefined && (!args.has("weight") || !args.has("bias"))) {
      ctx.fail("E212", `layernorm's weight and bias need static sizes, but normalised axis ${symbolic} has size ${x.type.shape[symbolic]!.toString()}`, {
        arg: "axis",
        notes: [ctx.describe(x)],
        hint: "normalise over axes of static size, or pass weight= and bias=",
      });
    }
    const affine: TensorType = { dtype: "f32", shape };
    const weight = ctx.param("weight", affine, { kind: "ones" });
    const bias = ctx.param("bias", affine, { kind: "zeros" });
    return ctx.emit1("layernorm", [x, weight, bias], { axes, eps });
  },
};

// ---------------------------------------------------------------- dropout and noise

/** The optional seed input of dropout/gaussian_noise (input 1): an f32 scalar, the training step (see the header). */
function checkSeedInput(inputs: readonly TensorType[], what: string, ctx: InferCtx): void {
  if (inputs.length > 2) ctx.fail("E210", `${what} takes at most 2 inputs (x and the step seed), found ${inputs.length}`);
  const seed = inputs[1];
  if (!seed) return;
  requireF32(seed, 1, `${what} step seed`, ctx);
  if (seed.shape.length !== 0) ctx.fail("E210", `${what} step seed must be a scalar, found ${typeToString(seed)}`, { notes: [ctx.describeInput(1)] });
}

const dropoutOp = defineOp<{ p: number }>({
  name: "dropout",
  nondifferentiable: [1],
  infer(inputs, a, ctx) {
    const x = inputs[0]!;
    requireF32(x, 0, "dropout input", ctx);
    checkSeedInput(inputs, "dropout", ctx);
    if (!(a.p >= 0 && a.p < 1)) ctx.fail("E404", `dropout probability must be in [0, 1), found ${a.p}`);
    return [x, x];
  },
  evaluate(inputs, a, ctx) {
    const x = inputs[0]!;
    const keep = 1 / (1 - a.p);
    const mask = ctx.training ? x.map(() => (ctx.rng.next() < a.p ? 0 : keep)) : x.map(() => 1);
    return [x.map((v, i) => v * mask.data[i]!), mask];
  },
  // The mask output is the forward's own draw, already scaled by 1/(1 − p) (ones in inference).
  grad: (_inputs, outputs, dys, _a, ctx) => [dys[0] ? ctx.emit1("mul", [dys[0], outputs[1]!]) : undefined],
});

const noiseOp = defineOp<{ std: number }>({
  name: "gaussian_noise",
  nondifferentiable: [1],
  infer(inputs, a, ctx) {
    const x = inputs[0]!;
    requireF32(x, 0, "gaussian_noise input", ctx);
    checkSeedInput(inputs, "gaussian_noise", ctx);
    if (!(a.std >= 0)) ctx.fail("E404", `noise std must be non-negative, found ${a.std}`);
    return [x];
  },
  evaluate(inputs, a, ctx) {
    const x = inputs[0]!;
    return [ctx.training ? x.map((v) => v + a.std * ctx.rng.normal()) : copy(x)];
  },
  // Additive noise independent of x: the identity.
  grad: (_inputs, _outputs, dys) => [dys[0]],
});

const dropoutBuiltin: BuiltinDef = {
  names: ["dropout"],
  signature: () => ["x", "p"],
  lower(args, ctx) {
    const x = args.tensor("x");
    const p = args.number("p");
    if (!(p >= 0 && p < 1)) {
      args.fail("p", `argument 'p' must be a probability in [0, 1), found ${p}`);
    }
    return ctx.emit("dropout", [x], { p })[0]!;
  },
};

const noiseBuiltin: BuiltinDef = {
  names: ["gaussian_noise"],
  signature: () => ["x", "std"],
  lower(args, ctx) {
    const x = args.tensor("x");
    const std = args.number("std");
    if (!(std >= 0) || !Number.isFinite(std)) args.fail("std", `argument 'std' must be a non-negative number, found ${std}`);
    return ctx.emit1("gaussian_noise", [x], { std });
  },
};

export const ops: OpDef[] = [batchnormOp, batchnormGradOp, layernormOp, dropoutOp, noiseOp];
export const builtins: BuiltinDef[] = [batchnormBuiltin, layernormBuiltin, dropoutBuiltin, noiseBuiltin];

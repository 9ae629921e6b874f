// Optimizer updates, as IR ops so a training step (forward, backward, update)
// is one graph that both code generators compile: one kernel per parameter,
// reading the parameter, its gradient and its optimizer state, and writing the
// new values (the runtime then swaps them in). Semantics follow PyTorch's
// torch.optim.SGD and torch.optim.Adam (L2 weight decay added to the gradient,
// not AdamW's decoupled form), with state starting at zero.
//
//  * sgd_update(p, g, lr[, v]) → p' [, v']:  g' = g + wd·p;  v' = μ·v + g';  p' = p − lr·(μ ? v' : g')
//  * adam_update(p, g, lr, step, m, v) → p', m', v':
//      g' = g + wd·p;  m' = β1·m + (1−β1)·g';  v' = β2·v + (1−β2)·g'²
//      p' = p − lr · (m' / (1−β1^step)) / (√(v' / (1−β2^step)) + ε)
// `lr` and `step` are f32 scalars fed at run time, so trainStep(batch, { lr })
// can change the rate without recompiling.

import { typeToString, type TensorType } from "../ir/types.ts";
import { RefTensor } from "../reference/tensor.ts";
import { defineOp, type InferCtx, type OpDef } from "./op.ts";

export type SgdAttrs = { momentum: number; weightDecay: number };
export type AdamAttrs = { beta1: number; beta2: number; eps: number; weightDecay: number };

function checkLike(ts: readonly TensorType[], ctx: InferCtx, op: string): void {
  const p = ts[0]!;
  for (const t of ts) {
    if (t.dtype !== "f32" || t.shape.length !== p.shape.length || t.shape.some((d, i) => !d.equals(p.shape[i]!))) {
      ctx.fail("E213", `${op}: parameter, gradient and state must all be ${typeToString(p)}, found ${typeToString(t)}`);
    }
  }
}

function checkScalar(t: TensorType, ctx: InferCtx, op: string, what: string): void {
  if (t.dtype !== "f32" || t.shape.length !== 0) ctx.fail("E213", `${op}: ${what} must be an f32 scalar, found ${typeToString(t)}`);
}

const sgdUpdate = defineOp<SgdAttrs>({
  name: "sgd_update",
  infer(inputs, a, ctx) {
    const [p, g, lr, v] = inputs;
    checkLike(v ? [p!, g!, v] : [p!, g!], ctx, "sgd_update");
    checkScalar(lr!, ctx, "sgd_update", "lr");
    if ((a.momentum > 0) !== (v !== undefined)) ctx.fail("E401", "sgd_update takes a velocity input exactly when momentum > 0");
    return v ? [p!, v] : [p!];
  },
  evaluate(inputs, a) {
    const [p, g, lr, v] = inputs as [RefTensor, RefTensor, RefTensor, RefTensor?];
    const rate = lr.data[0]!;
    const np = new RefTensor("f32", p.shape);
    const nv = v ? new RefTensor("f32", p.shape) : undefined;
    for (let i = 0; i < p.size; i++) {
      let d = g.data[i]! + a.weightDecay * p.data[i]!;
      if (v && nv) {
        d = a.momentum * v.data[i]! + d;
        nv.data[i] = d;
      }
      np.data[i] = p.data[i]! - rate * d;
    }
    return nv ? [np, nv] : [np];
  },
  noGradient: true,
});

const adamUpdate = defineOp<AdamAttrs>({
  name: "adam_update",
  infer(inputs, _a, ctx) {
    const [p, g, lr, step, m, v] = inputs as TensorType[];
    checkLike([p!, g!, m!, v!], ctx, "adam_update");
    checkScalar(lr!, ctx, "adam_update", "lr");
    checkScalar(step!, ctx, "adam_update", "step");
    return [p!, p!, p!];
  },
  evaluate(inputs, a) {
    const [p, g, lr, step, m, v] = inputs as RefTensor[];
    const rate = lr!.data[0]!;
    const t = step!.data[0]!;
    const c1 = 1 - Math.pow(a.beta1, t);
    const c2 = 1 - Math.pow(a.beta2, t);
    const np = new RefTensor("f32", p!.shape);
    const nm = new RefTensor("f32", p!.shape);
    const nv = new RefTensor("f32", p!.shape);
    for (let i = 0; i < p!.size; i++) {
      const d = g!.data[i]! + a.weightDecay * p!.data[i]!;
      const mi = a.beta1 * m!.data[i]! + (1 - a.beta1) * d;
      const vi = a.beta2 * v!.data[i]! + (1 - a.beta2) * d * d;
      nm.data[i] = mi;
      nv.data[i] = vi;
      np.data[i] = p!.data[i]! - (rate * (mi / c1)) / (Math.sqrt(vi / c2) + a.eps);
    }
    return [np, nm, nv];
  },
  noGradient: true,
});

export const ops: OpDef[] = [sgdUpdate, adamUpdate];
export const builtins = [];

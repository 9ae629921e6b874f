// Single-layer recurrent networks (DSL.md §6 "Recurrent"), with PyTorch's
// weight layout so its state dicts load 1:1.
//
// IR op `rnn {cell, activation, direction, hidden, returnMode, hasBias, hasLengths, hasH0, hasC0}`.
// Inputs, in this fixed order (optional groups present exactly when their flag says so;
// `rnnLayout` gives the positions):
//   x f32[N, L, D],
//   weight_ih [G·H, D], weight_hh [G·H, H], [bias_ih [G·H], bias_hh [G·H]]        (hasBias)
//   for "bidirectional" the same group again for the reverse direction,
//   [lengths i32[N]] (hasLengths), [h0 f32[dirs, N, H]] (hasH0), [c0 f32[dirs, N, H]] (hasC0).
// Output: f32[N, L, H·dirs] ("sequence") or f32[N, H·dirs] ("last"); directions are
// concatenated on the last axis, forward first, as PyTorch does.
//
// Cells, with gi = W_ih x_t + b_ih and gh = W_hh h + b_hh split into G chunks of H rows:
//   elman (G=1): h' = act(gi + gh), act = tanh | relu.
//   lstm  (G=4, gates i, f, g, o): i = σ, f = σ, g = tanh, o = σ of (gi + gh) per chunk;
//         c' = f ⊙ c + i ⊙ g;  h' = o ⊙ tanh(c').
//   gru   (G=3, gates r, z, n; PyTorch's form, the reset gate multiplies W_hn h + b_hn):
//         r = σ(gi_r + gh_r);  z = σ(gi_z + gh_z);  n = tanh(gi_n + r ⊙ gh_n);  h' = (1 − z) ⊙ n + z ⊙ h.
//   mgu   (G=2, gates f, n; minimal gated unit, Zhou et al. 2016, with PyTorch-style split biases):
//         f = σ(W_if x + b_if + W_hf h + b_hf);  ñ = tanh(W_in x + b_in + W_hn (f ⊙ h) + b_hn);
//         h' = (1 − f) ⊙ h + f ⊙ ñ.
//
// Ragged batches (lengths): positions t ≥ ℓ of a sequence of length ℓ do not update its
// state and are zeros in the output sequence; the backward direction starts at ℓ − 1
// (as PyTorch packed sequences do). "last" is each direction's final state: the forward
// state after position ℓ − 1, the backward state after position 0 (PyTorch's h_n);
// ℓ = 0 leaves h0 (or zeros). A length outside [0, L] is a runtime error.
//
// lengths is i32 and never carries gradient; its input position depends on the attrs,
// so the static `nondifferentiable` list cannot name it (use `rnnLayout`).

import { Dim } from "../ir/dims.ts";
import type { Value } from "../ir/graph.ts";
import { tensorType, typeToString, type TensorType } from "../ir/types.ts";
import { RefTensor } from "../reference/tensor.ts";
import type { Args } from "./args.ts";
import { defineOp, type BuiltinDef, type EvalCtx, type GradCtx, type InferCtx, type LowerCtx, type OpDef } from "./op.ts";

export const CELLS = ["elman", "lstm", "gru", "mgu"] as const;
export type RnnCell = (typeof CELLS)[number];
const ACTIVATIONS = ["tanh", "relu"] as const;
const DIRECTIONS = ["forward", "backward", "bidirectional"] as const;
const RETURN_MODES = ["sequence", "last"] as const;

/** Gate count G: weight_ih has G·H rows. */
export const GATES: Record<RnnCell, number> = { elman: 1, lstm: 4, gru: 3, mgu: 2 };

export type RnnAttrs = {
  cell: RnnCell;
  activation: (typeof ACTIVATIONS)[number];
  direction: (typeof DIRECTIONS)[number];
  hidden: number;
  returnMode: (typeof RETURN_MODES)[number];
  hasBias: boolean;
  hasLengths: boolean;
  hasH0: boolean;
  hasC0: boolean;
};

export interface RnnDirectionInputs {
  readonly weightIh: number;
  readonly weightHh: number;
  readonly biasIh?: number;
  readonly biasHh?: number;
}

/** Input positions of the `rnn` op for given attrs. */
export interface RnnLayout {
  readonly x: 0;
  /** One entry per direction: [forward] or [backward] or [forward, reverse]. */
  readonly directions: readonly RnnDirectionInputs[];
  readonly lengths?: number;
  readonly h0?: number;
  readonly c0?: number;
  readonly count: number;
}

export function directionCount(a: Pick<RnnAttrs, "direction">): number {
  return a.direction === "bidirectional" ? 2 : 1;
}

/** Positions of each direction's weights (and biases), numbered from 1: after x in the inputs, after dx in rnn_grad's outputs. */
function directionSlots(a: RnnAttrs): { directions: RnnDirectionInputs[]; next: number } {
  let next = 1;
  const directions: RnnDirectionInputs[] = [];
  for (let d = 0; d < directionCount(a); d++) {
    const weightIh = next++;
    const weightHh = next++;
    directions.push(a.hasBias ? { weightIh, weightHh, biasIh: next++, biasHh: next++ } : { weightIh, weightHh });
  }
  return { directions, next };
}

export function rnnLayout(a: RnnAttrs): RnnLayout {
  const { directions, next: afterWeights } = directionSlots(a);
  let next = afterWeights;
  const lengths = a.hasLengths ? next++ : undefined;
  const h0 = a.hasH0 ? next++ : undefined;
  const c0 = a.hasC0 ? next++ : undefined;
  return { x: 0, directions, lengths, h0, c0, count: next };
}

// ---------------------------------------------------------------------------
// Shape rule

/** Two sizes that can never be equal at run time (symbolic ones that might be are checked then). */
function certainlyDifferent(a: Dim, b: Dim): boolean {
  const diff = a.sub(b).constValue();
  return diff !== undefined && diff !== 0;
}

function inferRnn(inputs: readonly TensorType[], a: RnnAttrs, ctx: InferCtx): TensorType[] {
  const layout = rnnLayout(a);
  if (inputs.length !== layout.count) throw new Error(`internal: rnn expects ${layout.count} inputs for these attributes, found ${inputs.length}`);
  const x = inputs[0]!;
  checkSequence(x, (code, message, hint) => ctx.fail(code, message, { notes: [ctx.describeInput(0)], hint }));
  const [n, l, d] = x.shape as [Dim, Dim, Dim];
  const H = a.hidden;
  const G = GATES[a.cell];
  const dirs = directionCount(a);
  const names = (i: number) => (dirs === 2 && i === 1 ? "_reverse" : "");

  const expect = (index: number, name: string, want: TensorType) => {
    const got = inputs[index]!;
    const same = got.dtype === want.dtype && got.shape.length === want.shape.length && got.shape.every((s, k) => s.equals(want.shape[k]!));
    if (!same) ctx.fail("E216", `${name} must be ${typeToString(want)}, found ${typeToString(got)}`, { notes: [ctx.describeInput(index)] });
  };
  layout.directions.forEach((w, i) => {
    expect(w.weightIh, `weight_ih${names(i)}`, tensorType("f32", [G * H, d]));
    expect(w.weightHh, `weight_hh${names(i)}`, tensorType("f32", [G * H, H]));
    if (w.biasIh !== undefined) expect(w.biasIh, `bias_ih${names(i)}`, tensorType("f32", [G * H]));
    if (w.biasHh !== undefined) expect(w.biasHh, `bias_hh${names(i)}`, tensorType("f32", [G * H]));
  });

  if (layout.lengths !== undefined) {
    const len = inputs[layout.lengths]!;
    const note = { notes: [ctx.describeInput(layout.lengths)] };
    if (len.dtype !== "i32") ctx.fail("E213", `lengths must be i32, found ${typeToString(len)}`, { ...note, hint: "declare the lengths input as i32" });
    if (len.shape.length !== 1) ctx.fail("E210", `lengths must have rank 1 [N] (one length per sequence), found ${typeToString(len)}`, note);
    if (certainlyDifferent(len.shape[0]!, n)) {
      ctx.fail("E202", `lengths has ${len.shape[0]!.toString()} entries but x has a batch of ${n.toString()} sequences`, { notes: [ctx.describeInput(layout.lengths), ctx.describeInput(0)] });
    }
  }
  for (const [which, index] of [["h0", layout.h0], ["c0", layout.c0]] as const) {
    if (index === undefined) continue;
    const s = inputs[index]!;
    const want = `[${dirs}, ${n.toString()}, ${H}] (directions, batch, hidden)`;
    const note = { notes: [ctx.describeInput(index)] };
    if (s.dtype !== "f32") ctx.fail("E213", `${which} must be f32, found ${typeToString(s)}`, note);
    if (s.shape.length !== 3) ctx.fail("E210", `${which} must have rank 3 ${want}, found ${typeToString(s)}`, note);
    const [sd, sn, sh] = s.shape as [Dim, Dim, Dim];
    if (!sd.equals(dirs) || !sh.equals(H) || certainlyDifferent(sn, n)) ctx.fail("E202", `${which} must be ${want}, found ${typeToString(s)}`, note);
  }
  const width = Dim.of(H * dirs);
  return [{ dtype: "f32", shape: a.returnMode === "sequence" ? [n, l, width] : [n, width] }];
}

/** x must be f32[N, L, D] with a static D (it sizes weight_ih). */
function checkSequence(x: TensorType, fail: (code: "E210" | "E213" | "E212", message: string, hint?: string) => never): void {
  if (x.shape.length !== 3) fail("E210", `x must have rank 3 [N, L, D] (batch, time, features), found ${typeToString(x)}`, "reshape it to [N, L, D]");
  if (x.dtype !== "f32") fail("E213", `x must be f32, found ${typeToString(x)}`);
  const d = x.shape[2]!;
  if (!d.isConst()) fail("E212", `the feature size D of x (dim 2) must be static because it sizes weight_ih, found ${d.toString()}`);
  if (d.constValue()! < 1) fail("E212", `the feature size D of x (dim 2) must be positive, found ${d.toString()}`);
}

// ---------------------------------------------------------------------------
// Reference semantics

interface DirectionWeights {
  readonly wIh: RefTensor;
  readonly wHh: RefTensor;
  readonly bIh?: RefTensor;
  readonly bHh?: RefTensor;
}

function sigmoid(v: number): number {
  return v >= 0 ? 1 / (1 + Math.exp(-v)) : Math.exp(v) / (1 + Math.exp(v));
}

/** Rows [row0, row0 + rows) of W·v + b. */
function affine(w: RefTensor, b: RefTensor | undefined, row0: number, rows: number, v: ArrayLike<number>): Float64Array {
  const cols = w.shape[1]!;
  const out = new Float64Array(rows);
  for (let r = 0; r < rows; r++) {
    let s = b ? b.data[row0 + r]! : 0;
    const base = (row0 + r) * cols;
    for (let k = 0; k < cols; k++) s += w.data[base + k]! * v[k]!;
    out[r] = s;
  }
  return out;
}

interface State {
  h: Float64Array;
  c: Float64Array;
}

function step(a: RnnAttrs, w: DirectionWeights, x: ArrayLike<number>, { h, c }: State): State {
  const H = a.hidden;
  const G = GATES[a.cell];
  const h2 = new Float64Array(H);
  const c2 = new Float64Array(H);
  switch (a.cell) {
    case "elman": {
      const gi = affine(w.wIh, w.bIh, 0, H, x);
      const gh = affine(w.wHh, w.bHh, 0, H, h);
      for (let j = 0; j < H; j++) h2[j] = a.activation === "relu" ? Math.max(0, gi[j]! + gh[j]!) : Math.tanh(gi[j]! + gh[j]!);
      break;
    }
    case "lstm": {
      const gi = affine(w.wIh, w.bIh, 0, G * H, x);
      const gh = affine(w.wHh, w.bHh, 0, G * H, h);
      const pre = (gate: number, j: number) => gi[gate * H + j]! + gh[gate * H + j]!;
      for (let j = 0; j < H; j++) {
        const i = sigmoid(pre(0, j));
        const f = sigmoid(pre(1, j));
        const g = Math.tanh(pre(2, j));
        const o = sigmoid(pre(3, j));
        c2[j] = f * c[j]! + i * g;
        h2[j] = o * Math.tanh(c2[j]!);
      }
      break;
    }
    case "gru": {
      const gi = affine(w.wIh, w.bIh, 0, G * H, x);
      const gh = affine(w.wHh, w.bHh, 0, G * H, h);
      for (let j = 0; j < H; j++) {
        const r = sigmoid(gi[j]! + gh[j]!);
        const z = sigmoid(gi[H + j]! + gh[H + j]!);
        const n = Math.tanh(gi[2 * H + j]! + r * gh[2 * H + j]!);
        h2[j] = (1 - z) * n + z * h[j]!;
      }
      break;
    }
    case "mgu": {
      const gi = affine(w.wIh, w.bIh, 0, G * H, x);
      const ghF = affine(w.wHh, w.bHh, 0, H, h);
      const f = Float64Array.from({ length: H }, (_, j) => sigmoid(gi[j]! + ghF[j]!));
      const ghN = affine(w.wHh, w.bHh, H, H, f.map((fj, j) => fj * h[j]!));
      for (let j = 0; j < H; j++) {
        const candidate = Math.tanh(gi[H + j]! + ghN[j]!);
        h2[j] = (1 - f[j]!) * h[j]! + f[j]! * candidate;
      }
      break;
    }
  }
  return { h: h2, c: c2 };
}

function evaluateRnn(inputs: readonly RefTensor[], a: RnnAttrs, ctx: EvalCtx): RefTensor[] {
  const layout = rnnLayout(a);
  const x = inputs[0]!;
  const [N, L, D] = x.shape as [number, number, number];
  const H = a.hidden;
  const dirs = directionCount(a);
  const lengths = layout.lengths !== undefined ? inputs[layout.lengths]! : undefined;
  const h0 = layout.h0 !== undefined ? inputs[layout.h0]! : undefined;
  const c0 = layout.c0 !== undefined ? inputs[layout.c0]! : undefined;
  if (lengths && lengths.shape[0] !== N) ctx.fail(`lengths has ${lengths.shape[0]} entries but x has a batch of ${N} sequences`);
  for (const [which, s] of [["h0", h0], ["c0", c0]] as const) {
    if (s && s.shape[1] !== N) ctx.fail(`${which} has a batch of ${s.shape[1]} but x has ${N} sequences`);
  }
  const lengthOf = (n: number): number => {
    if (!lengths) return L;
    const len = lengths.data[n]!;
    if (!(len >= 0 && len <= L)) ctx.fail(`length ${len} of sequence ${n} is outside [0, ${L}] (L = ${L})`);
    return len;
  };
  const initial = (s: RefTensor | undefined, d: number, n: number) =>
    s ? s.data.slice((d * N + n) * H, (d * N + n + 1) * H) : new Float64Array(H);

  const out = RefTensor.zeros(ctx.outShapes[0]!);
  const width = H * dirs;
  layout.directions.forEach((pos, d) => {
    const w: DirectionWeights = {
      wIh: inputs[pos.weightIh]!,
      wHh: inputs[pos.weightHh]!,
      bIh: pos.biasIh !== undefined ? inputs[pos.biasIh] : undefined,
      bHh: pos.biasHh !== undefined ? inputs[pos.biasHh] : undefined,
    };
    const reverse = a.direction === "backward" || d === 1;
    for (let n = 0; n < N; n++) {
      const len = lengthOf(n);
      let state: State = { h: initial(h0, d, n), c: initial(c0, d, n) };
      for (let s = 0; s < len; s++) {
        const t = reverse ? len - 1 - s : s;
        state = step(a, w, x.data.subarray((n * L + t) * D, (n * L + t + 1) * D), state);
        if (a.returnMode === "sequence") for (let j = 0; j < H; j++) out.data[(n * L + t) * width + d * H + j] = state.h[j]!;
      }
      if (a.returnMode === "last") for (let j = 0; j < H; j++) out.data[n * width + d * H + j] = state.h[j]!;
    }
  });
  return [out];
}

// ---------------------------------------------------------------------------
// Gradient: backpropagation through time, as the backward op `rnn_grad`.
//
// `rnn_grad {the rnn's attrs}` takes the rnn's inputs (same order) followed by dy, the
// gradient of its output (same shape), and returns the gradient of every f32 input in
// input order with lengths skipped (`rnnGradLayout`):
//   dx, per direction [d weight_ih, d weight_hh, (d bias_ih, d bias_hh)], (dh0), (dc0).
// Existing IR ops cannot express it: the time loop is symbolic and ragged, and each
// step's backward needs the forward state of that step.
//
// Semantics (float64 here; the JS and WGSL kernels compute the same):
//  1. Recompute the forward pass of each sequence and direction, keeping per step the
//     state it read (h_prev, c_prev) and its gate activations.
//  2. Run the steps in reverse. The state gradient dh starts as dy's row in "last" mode
//     (zeros in "sequence"), gains dy[n, t] at each step in "sequence" mode, and goes back
//     through the cell (stepBackward), which gives per step the pre-activation gradients
//     dgi of W_ih x + b_ih and dgh of W_hh h + b_hh (G·H each; equal except gru's n rows,
//     where dgh_n = dgi_n ⊙ r), and
//       dW_ih += dgi ⊗ x_t,   db_ih += dgi,   dx_t += W_ih^T dgi,
//       dW_hh += dgh ⊗ hin,   db_hh += dgh    (hin = h_prev; mgu's n rows: f ⊙ h_prev),
//       dh_prev = (direct terms) + W_hh^T dgh.
//  3. dh (and dc) left after the sequence's first step are dh0 (dc0), per direction.
// Ragged: steps at t ≥ ℓ never run, so dy there is ignored (that output is a constant
// zero) and dx there is zero; ℓ = 0 passes dy's "last" row straight to dh0.
// relu's derivative at exactly 0 is 0 (the kink is taken from the h' > 0 side).

/** Output positions of `rnn_grad` (the gradient of input i of `rnn` sits where rnnLayout puts i, lengths removed). */
export interface RnnGradLayout {
  readonly dx: 0;
  readonly directions: readonly RnnDirectionInputs[];
  readonly h0?: number;
  readonly c0?: number;
  readonly count: number;
}

export function rnnGradLayout(a: RnnAttrs): RnnGradLayout {
  const { directions, next: afterWeights } = directionSlots(a);
  let next = afterWeights;
  const h0 = a.hasH0 ? next++ : undefined;
  const c0 = a.hasC0 ? next++ : undefined;
  return { dx: 0, directions, h0, c0, count: next };
}

function inferRnnGrad(inputs: readonly TensorType[], a: RnnAttrs, ctx: InferCtx): TensorType[] {
  const layout = rnnLayout(a);
  if (inputs.length !== layout.count + 1) throw new Error(`internal: rnn_grad expects ${layout.count + 1} inputs for these attributes, found ${inputs.length}`);
  const [y] = inferRnn(inputs.slice(0, layout.count), a, ctx);
  const dy = inputs[layout.count]!;
  const same = dy.dtype === "f32" && dy.shape.length === y!.shape.length && dy.shape.every((s, k) => s.equals(y!.shape[k]!));
  if (!same) ctx.fail("E216", `dy must be ${typeToString(y!)} (the rnn's output), found ${typeToString(dy)}`, { notes: [ctx.describeInput(layout.count)] });
  const out: TensorType[] = [inputs[0]!];
  for (const pos of layout.directions) {
    out.push(inputs[pos.weightIh]!, inputs[pos.weightHh]!);
    if (pos.biasIh !== undefined) out.push(inputs[pos.biasIh]!, inputs[pos.biasHh!]!);
  }
  if (layout.h0 !== undefined) out.push(inputs[layout.h0]!);
  if (layout.c0 !== undefined) out.push(inputs[layout.c0]!);
  return out.map((t) => ({ dtype: "f32", shape: [...t.shape] }));
}

/** One forward step with what its backward needs: the new state and the gate activations. */
interface Trace {
  readonly h: Float64Array;
  readonly c: Float64Array;
  /** elman: [h']; lstm: [i, f, g, o]; gru: [r, z, n, W_hn h + b_hn]; mgu: [f, ñ] (H each). */
  readonly gates: readonly Float64Array[];
}

function stepTrace(a: RnnAttrs, w: DirectionWeights, x: ArrayLike<number>, h: Float64Array, c: Float64Array): Trace {
  const H = a.hidden;
  const G = GATES[a.cell];
  const act = (f: (j: number) => number) => Float64Array.from({ length: H }, (_, j) => f(j));
  switch (a.cell) {
    case "elman": {
      const gi = affine(w.wIh, w.bIh, 0, H, x);
      const gh = affine(w.wHh, w.bHh, 0, H, h);
      const h2 = act((j) => (a.activation === "relu" ? Math.max(0, gi[j]! + gh[j]!) : Math.tanh(gi[j]! + gh[j]!)));
      return { h: h2, c, gates: [h2] };
    }
    case "lstm": {
      const gi = affine(w.wIh, w.bIh, 0, G * H, x);
      const gh = affine(w.wHh, w.bHh, 0, G * H, h);
      const pre = (gate: number, j: number) => gi[gate * H + j]! + gh[gate * H + j]!;
      const i = act((j) => sigmoid(pre(0, j)));
      const f = act((j) => sigmoid(pre(1, j)));
      const g = act((j) => Math.tanh(pre(2, j)));
      const o = act((j) => sigmoid(pre(3, j)));
      const c2 = act((j) => f[j]! * c[j]! + i[j]! * g[j]!);
      return { h: act((j) => o[j]! * Math.tanh(c2[j]!)), c: c2, gates: [i, f, g, o] };
    }
    case "gru": {
      const gi = affine(w.wIh, w.bIh, 0, G * H, x);
      const gh = affine(w.wHh, w.bHh, 0, G * H, h);
      const r = act((j) => sigmoid(gi[j]! + gh[j]!));
      const z = act((j) => sigmoid(gi[H + j]! + gh[H + j]!));
      const ghn = gh.slice(2 * H);
      const n = act((j) => Math.tanh(gi[2 * H + j]! + r[j]! * ghn[j]!));
      return { h: act((j) => (1 - z[j]!) * n[j]! + z[j]! * h[j]!), c, gates: [r, z, n, ghn] };
    }
    case "mgu": {
      const gi = affine(w.wIh, w.bIh, 0, G * H, x);
      const ghF = affine(w.wHh, w.bHh, 0, H, h);
      const f = act((j) => sigmoid(gi[j]! + ghF[j]!));
      const ghN = affine(w.wHh, w.bHh, H, H, act((j) => f[j]! * h[j]!));
      const n = act((j) => Math.tanh(gi[H + j]! + ghN[j]!));
      return { h: act((j) => (1 - f[j]!) * h[j]! + f[j]! * n[j]!), c, gates: [f, n] };
    }
  }
}

/** Σ_r v[r]·W[row0 + r, :] over r < rows: W's rows [row0, row0 + rows) transposed, times v. */
function affineT(w: RefTensor, row0: number, rows: number, v: ArrayLike<number>): Float64Array {
  const cols = w.shape[1]!;
  const out = new Float64Array(cols);
  for (let r = 0; r < rows; r++) {
    const base = (row0 + r) * cols;
    const vr = v[r]!;
    for (let k = 0; k < cols; k++) out[k]! += w.data[base + k]! * vr;
  }
  return out;
}

interface StepGrad {
  /** d/d(W_ih x + b_ih) and d/d(W_hh hin + b_hh), G·H each. */
  readonly dgi: Float64Array;
  readonly dgh: Float64Array;
  /** The vector W_hh's rows [H, 2H) multiply: mgu's f ⊙ h_prev (h_prev for every other row and cell). */
  readonly hinN?: Float64Array;
  readonly dh: Float64Array;
  readonly dc: Float64Array;
}

/** One step backwards: dh, dc are the gradients of the step's new h and c; returns those of h_prev and c_prev. */
function stepBackward(a: RnnAttrs, w: DirectionWeights, h: Float64Array, c: Float64Array, tr: Trace, dh: Float64Array, dc: Float64Array): StepGrad {
  const H = a.hidden;
  const GH = GATES[a.cell] * H;
  const dgi = new Float64Array(GH);
  const zeros = new Float64Array(H);
  switch (a.cell) {
    case "elman": {
      // h' = act(a): da = dh ⊙ act'(a), with act' = 1 − h'² (tanh) or [h' > 0] (relu).
      const [h2] = tr.gates as [Float64Array];
      for (let j = 0; j < H; j++) dgi[j] = dh[j]! * (a.activation === "relu" ? (h2[j]! > 0 ? 1 : 0) : 1 - h2[j]! * h2[j]!);
      return { dgi, dgh: dgi, dh: affineT(w.wHh, 0, GH, dgi), dc: zeros };
    }
    case "lstm": {
      // c' = f c + i g, h' = o tanh(c'): dc' gains dh ⊙ o (1 − tanh² c'); dc_prev = dc' ⊙ f.
      const [i, f, g, o] = tr.gates as [Float64Array, Float64Array, Float64Array, Float64Array];
      const dcPrev = new Float64Array(H);
      for (let j = 0; j < H; j++) {
        const tc = Math.tanh(tr.c[j]!);
        const dct = dc[j]! + dh[j]! * o[j]! * (1 - tc * tc);
        dgi[j] = dct * g[j]! * i[j]! * (1 - i[j]!);
        dgi[H + j] = dct * c[j]! * f[j]! * (1 - f[j]!);
        dgi[2 * H + j] = dct * i[j]! * (1 - g[j]! * g[j]!);
        dgi[3 * H + j] = dh[j]! * tc * o[j]! * (1 - o[j]!);
        dcPrev[j] = dct * f[j]!;
      }
      return { dgi, dgh: dgi, dh: affineT(w.wHh, 0, GH, dgi), dc: dcPrev };
    }
    case "gru": {
      // h' = (1 − z) n + z h, n = tanh(gi_n + r ⊙ gh_n): dgh_n = dgi_n ⊙ r, dr = dgi_n ⊙ gh_n; dh_prev gains dh ⊙ z.
      const [r, z, n, ghn] = tr.gates as [Float64Array, Float64Array, Float64Array, Float64Array];
      const dgh = new Float64Array(GH);
      for (let j = 0; j < H; j++) {
        const dn = dh[j]! * (1 - z[j]!) * (1 - n[j]! * n[j]!);
        dgi[2 * H + j] = dn;
        dgh[2 * H + j] = dn * r[j]!;
        dgi[j] = dgh[j] = dn * ghn[j]! * r[j]! * (1 - r[j]!);
        dgi[H + j] = dgh[H + j] = dh[j]! * (h[j]! - n[j]!) * z[j]! * (1 - z[j]!);
      }
      const dhPrev = affineT(w.wHh, 0, GH, dgh);
      for (let j = 0; j < H; j++) dhPrev[j]! += dh[j]! * z[j]!;
      return { dgi, dgh, dh: dhPrev, dc: zeros };
    }
    case "mgu": {
      // h' = (1 − f) h + f ñ, ñ = tanh(gi_n + W_hn (f ⊙ h) + b_hn), f = σ(gi_f + W_hf h + b_hf):
      // d(f ⊙ h) = W_hn^T da_n feeds both df (⊙ h) and dh_prev (⊙ f).
      const [f, n] = tr.gates as [Float64Array, Float64Array];
      for (let j = 0; j < H; j++) dgi[H + j] = dh[j]! * f[j]! * (1 - n[j]! * n[j]!);
      const dfh = affineT(w.wHh, H, H, dgi.subarray(H));
      for (let j = 0; j < H; j++) dgi[j] = (dh[j]! * (n[j]! - h[j]!) + dfh[j]! * h[j]!) * f[j]! * (1 - f[j]!);
      const dhPrev = affineT(w.wHh, 0, H, dgi);
      for (let j = 0; j < H; j++) dhPrev[j]! += dh[j]! * (1 - f[j]!) + dfh[j]! * f[j]!;
      return { dgi, dgh: dgi, hinN: Float64Array.from(h, (hj, j) => f[j]! * hj), dh: dhPrev, dc: zeros };
    }
  }
}

function evaluateRnnGrad(inputs: readonly RefTensor[], a: RnnAttrs, ctx: EvalCtx): RefTensor[] {
  const layout = rnnLayout(a);
  const gl = rnnGradLayout(a);
  const x = inputs[0]!;
  const dy = inputs[layout.count]!;
  const [N, L, D] = x.shape as [number, number, number];
  const H = a.hidden;
  const GH = GATES[a.cell] * H;
  const width = H * directionCount(a);
  const lengths = layout.lengths !== undefined ? inputs[layout.lengths]! : undefined;
  const h0 = layout.h0 !== undefined ? inputs[layout.h0]! : undefined;
  const c0 = layout.c0 !== undefined ? inputs[layout.c0]! : undefined;
  const lengthOf = (n: number): number => {
    if (!lengths) return L;
    const len = lengths.data[n]!;
    if (!(len >= 0 && len <= L)) ctx.fail(`length ${len} of sequence ${n} is outside [0, ${L}] (L = ${L})`);
    return len;
  };
  const initial = (s: RefTensor | undefined, d: number, n: number) =>
    s ? s.data.slice((d * N + n) * H, (d * N + n + 1) * H) : new Float64Array(H);

  const outs = ctx.outShapes.map((s) => RefTensor.zeros(s));
  const dx = outs[gl.dx]!;
  layout.directions.forEach((pos, d) => {
    const w: DirectionWeights = {
      wIh: inputs[pos.weightIh]!,
      wHh: inputs[pos.weightHh]!,
      bIh: pos.biasIh !== undefined ? inputs[pos.biasIh] : undefined,
      bHh: pos.biasHh !== undefined ? inputs[pos.biasHh] : undefined,
    };
    const gp = gl.directions[d]!;
    const dWih = outs[gp.weightIh]!;
    const dWhh = outs[gp.weightHh]!;
    const dbIh = gp.biasIh !== undefined ? outs[gp.biasIh] : undefined;
    const dbHh = gp.biasHh !== undefined ? outs[gp.biasHh] : undefined;
    const reverse = a.direction === "backward" || d === 1;
    for (let n = 0; n < N; n++) {
      const len = lengthOf(n);
      // 1. The forward pass, keeping each step's input state and trace.
      const steps: { t: number; h: Float64Array; c: Float64Array; tr: Trace }[] = [];
      let h: Float64Array = initial(h0, d, n);
      let c: Float64Array = initial(c0, d, n);
      for (let s = 0; s < len; s++) {
        const t = reverse ? len - 1 - s : s;
        const tr = stepTrace(a, w, x.data.subarray((n * L + t) * D, (n * L + t + 1) * D), h, c);
        steps.push({ t, h, c, tr });
        h = tr.h;
        c = tr.c;
      }
      // 2. The steps in reverse.
      let dh: Float64Array = a.returnMode === "last" ? dy.data.slice(n * width + d * H, n * width + (d + 1) * H) : new Float64Array(H);
      let dc: Float64Array = new Float64Array(H);
      for (let s = len - 1; s >= 0; s--) {
        const st = steps[s]!;
        const row = n * L + st.t;
        if (a.returnMode === "sequence") dh = dh.map((v, j) => v + dy.data[row * width + d * H + j]!);
        const b = stepBackward(a, w, st.h, st.c, st.tr, dh, dc);
        for (let k = 0; k < GH; k++) {
          const gi = b.dgi[k]!;
          const gh = b.dgh[k]!;
          const hin = b.hinN && k >= H ? b.hinN : st.h;
          for (let e = 0; e < D; e++) {
            dWih.data[k * D + e]! += gi * x.data[row * D + e]!;
            dx.data[row * D + e]! += gi * w.wIh.data[k * D + e]!;
          }
          for (let j = 0; j < H; j++) dWhh.data[k * H + j]! += gh * hin[j]!;
          if (dbIh) dbIh.data[k]! += gi;
          if (dbHh) dbHh.data[k]! += gh;
        }
        dh = b.dh;
        dc = b.dc;
      }
      // 3. What reaches the initial state.
      if (gl.h0 !== undefined) outs[gl.h0]!.data.set(dh, (d * N + n) * H);
      if (gl.c0 !== undefined) outs[gl.c0]!.data.set(dc, (d * N + n) * H);
    }
  });
  return outs;
}

/** The rnn's gradient: one rnn_grad node; lengths (i32) gets none. */
function gradRnn(inputs: readonly Value[], _outputs: readonly Value[], dys: readonly (Value | undefined)[], a: RnnAttrs, ctx: GradCtx): (Value | undefined)[] {
  const result: (Value | undefined)[] = inputs.map(() => undefined);
  const dy = dys[0];
  if (!dy) return result;
  const layout = rnnLayout(a);
  const gl = rnnGradLayout(a);
  const g = ctx.emit("rnn_grad", [...inputs, dy], a);
  result[0] = g[gl.dx];
  layout.directions.forEach((pos, d) => {
    const gp = gl.directions[d]!;
    result[pos.weightIh] = g[gp.weightIh];
    result[pos.weightHh] = g[gp.weightHh];
    if (pos.biasIh !== undefined) result[pos.biasIh] = g[gp.biasIh!];
    if (pos.biasHh !== undefined) result[pos.biasHh] = g[gp.biasHh!];
  });
  if (layout.h0 !== undefined) result[layout.h0] = g[gl.h0!];
  if (layout.c0 !== undefined) result[layout.c0] = g[gl.c0!];
  return result;
}

const rnnOp = defineOp<RnnAttrs>({
  name: "rnn",
  infer: inferRnn,
  evaluate: evaluateRnn,
  grad: gradRnn,
  // lengths (i32) carries no gradient; its position depends on the attrs, and the dtype check excludes it.
});

const rnnGradOp = defineOp<RnnAttrs>({
  name: "rnn_grad",
  infer: inferRnnGrad,
  evaluate: evaluateRnnGrad,
});

export const ops: OpDef[] = [rnnOp, rnnGradOp];

// ---------------------------------------------------------------------------
// The builtin

const WEIGHT_NAMES = ["weight_ih", "weight_hh", "bias_ih", "bias_hh"] as const;
const REVERSE_NAMES = WEIGHT_NAMES.map((w) => `${w}_reverse`);

function lowerRnn(args: Args, ctx: LowerCtx): Value {
  const x = args.tensor("x");
  checkSequence(x.type, (code, message, hint) => ctx.fail(code, message, { arg: "x", notes: [ctx.describe(x)], hint }));
  const hidden = args.positiveInt("hidden");
  const cell = args.string("cell", CELLS, "elman");
  const activation = args.string("activation", ACTIVATIONS, "tanh");
  if (cell !== "elman" && args.has("activation")) {
    args.fail("activation", `activation applies only to cell="elman", found cell="${cell}"`, "the gates of lstm, gru and mgu use fixed sigmoid/tanh nonlinearities");
  }
  const direction = args.string("direction", DIRECTIONS, "forward");
  const returnMode = args.string("return", RETURN_MODES, "sequence");
  const hasBias = args.bool("bias", true);
  if (!hasBias) {
    for (const b of ["bias_ih", "bias_hh", "bias_ih_reverse", "bias_hh_reverse"]) {
      if (args.has(b)) args.fail(b, `${b}= is given but bias=false drops the biases`, "remove bias=false or the bias tensor");
    }
  }
  if (direction !== "bidirectional") {
    for (const r of REVERSE_NAMES) {
      if (args.has(r)) args.fail(r, `${r}= is only used with direction="bidirectional", found direction="${direction}"`);
    }
  }
  const lengths = args.optTensor("lengths");
  const h0 = args.optTensor("h0");
  const c0 = args.optTensor("c0");
  if (c0 && cell !== "lstm") args.fail("c0", `c0 is the initial cell state of cell="lstm", found cell="${cell}"`, "pass only h0 for this cell");

  const G = GATES[cell];
  const D = x.type.shape[2]!.constValue()!;
  // PyTorch initialises every RNN weight and bias as uniform(−1/√H, 1/√H).
  const k = 1 / Math.sqrt(hidden);
  const init = { kind: "uniform", lo: -k, hi: k } as const;
  const inputs: Value[] = [x];
  for (const suffix of direction === "bidirectional" ? ["", "_reverse"] : [""]) {
    inputs.push(ctx.param(`weight_ih${suffix}`, tensorType("f32", [G * hidden, D]), init));
    inputs.push(ctx.param(`weight_hh${suffix}`, tensorType("f32", [G * hidden, hidden]), init));
    if (hasBias) {
      inputs.push(ctx.param(`bias_ih${suffix}`, tensorType("f32", [G * hidden]), init));
      inputs.push(ctx.param(`bias_hh${suffix}`, tensorType("f32", [G * hidden]), init));
    }
  }
  for (const v of [lengths, h0, c0]) if (v) inputs.push(v);
  const attrs: RnnAttrs = {
    cell,
    activation,
    direction,
    hidden,
    returnMode,
    hasBias,
    hasLengths: lengths !== undefined,
    hasH0: h0 !== undefined,
    hasC0: c0 !== undefined,
  };
  return ctx.emit1("rnn", inputs, attrs);
}

export const builtins: BuiltinDef[] = [
  {
    names: ["rnn"],
    signature: () => ["x", "hidden", "cell", "activation", "direction", "lengths", "return", "h0", "c0", "bias", ...WEIGHT_NAMES, ...REVERSE_NAMES],
    ownsParams: true,
    lower: lowerRnn,
  },
];

// Elementwise ops: binary arithmetic with NumPy broadcasting, unary activations,
// `where`, `clip` and `cast`.
//
// Dtypes are strict: both operands of a binary op must have the same dtype (no
// implicit promotion), because a silent i32 -> f32 promotion hides label/index
// mix-ups. `add sub mul neg abs maximum minimum clip` work on f32 and i32 (i32
// wraps like int32); everything else is f32 only. A number written in the DSL
// (`x + 1`) becomes an f32 scalar constant, so `lengths + 1` on an i32 tensor
// is a dtype error from the operator; the builtins (`add(lengths, 1)`) instead
// give an integer literal the dtype of an i32 partner.

import type { Attrs, Value } from "../ir/graph.ts";
import { DTYPES, typeToString, type DType, type TensorType } from "../ir/types.ts";
import { RefTensor } from "../reference/tensor.ts";
import type { Args } from "./args.ts";
import { broadcastTypes, forEachBroadcast } from "./broadcast.ts";
import { defineOp, type BuiltinDef, type GradCtx, type InferCtx, type LowerCtx, type OpDef } from "./op.ts";

// ---------------------------------------------------------------------------
// Scalar math (float64), shared with other families through the exports.

const SQRT_PI = Math.sqrt(Math.PI);

/**
 * erfc for x >= 2 by its continued fraction
 * erfc(x) = exp(-x²)/√π · 1/(x + (1/2)/(x + 1/(x + (3/2)/(x + ...)))),
 * evaluated bottom-up; 80 levels reach float64 precision for x >= 2.
 */
function erfcLarge(x: number): number {
  let f = x;
  for (let n = 80; n >= 1; n--) f = x + n / 2 / f;
  return Math.exp(-x * x) / (SQRT_PI * f);
}

/**
 * erf for 0 <= x < 2 by the series erf(x) = 2/√π · exp(-x²) · Σ 2ⁿ x^(2n+1) / (1·3·…·(2n+1)),
 * whose terms are all positive (no cancellation, unlike the Taylor series).
 */
function erfSmall(x: number): number {
  const x2 = x * x;
  let term = x;
  let sum = x;
  for (let n = 1; n < 200 && term > 1e-17 * sum; n++) {
    term *= (2 * x2) / (2 * n + 1);
    sum += term;
  }
  return (2 / SQRT_PI) * Math.exp(-x2) * sum;
}

/** The error function, accurate to about 1e-15 relative in float64. */
export function erf(x: number): number {
  if (Number.isNaN(x)) return NaN;
  const a = Math.abs(x);
  const v = a < 2 ? erfSmall(a) : 1 - erfcLarge(a);
  return x < 0 ? -v : v;
}

/** 1 - erf(x), with full relative precision in the tail (x large and positive). */
export function erfc(x: number): number {
  if (Number.isNaN(x)) return NaN;
  if (x >= 2) return erfcLarge(x);
  if (x <= -2) return 2 - erfcLarge(-x);
  return 1 - (x < 0 ? -erfSmall(-x) : erfSmall(x));
}

/** Exact GELU, x·Φ(x) = x/2 · erfc(−x/√2) (PyTorch's default, not the tanh approximation). */
export function gelu(x: number): number {
  return 0.5 * x * erfc(-x / Math.SQRT2);
}

export function sigmoid(x: number): number {
  if (x >= 0) return 1 / (1 + Math.exp(-x));
  const e = Math.exp(x);
  return e / (1 + e);
}

/** log(1 + eˣ) without overflow for large x or loss of precision for very negative x. */
export function softplus(x: number): number {
  return Math.max(x, 0) + Math.log1p(Math.exp(-Math.abs(x)));
}

/** log σ(x) = −softplus(−x). */
export function logsigmoid(x: number): number {
  return Math.min(x, 0) - Math.log1p(Math.exp(-Math.abs(x)));
}

// ---------------------------------------------------------------------------
// Binary ops

interface BinaryDef {
  readonly dtypes: readonly DType[];
  /** Gradient rule (f32 only); contributions are summed back over broadcast axes by the caller. */
  readonly grad?: (a: Value, b: Value, y: Value, dy: Value, ctx: GradCtx) => [Value | undefined, Value | undefined];
  readonly f: (a: number, b: number) => number;
  /** The int32 version (wrapping), when i32 is allowed and differs from `f`. */
  readonly i32?: (a: number, b: number) => number;
}

const BINARY: Record<string, BinaryDef> = {
  add: { dtypes: ["f32", "i32"], f: (a, b) => a + b, i32: (a, b) => (a + b) | 0, grad: (_a, _b, _y, dy) => [dy, dy] },
  sub: {
    dtypes: ["f32", "i32"],
    f: (a, b) => a - b,
    i32: (a, b) => (a - b) | 0,
    grad: (_a, _b, _y, dy, ctx) => [dy, ctx.emit1("neg", [dy])],
  },
  mul: {
    dtypes: ["f32", "i32"],
    f: (a, b) => a * b,
    i32: (a, b) => Math.imul(a, b),
    grad: (a, b, _y, dy, ctx) => [ctx.emit1("mul", [dy, b]), ctx.emit1("mul", [dy, a])],
  },
  div: {
    dtypes: ["f32"],
    f: (a, b) => a / b,
    // d(a/b)/da = 1/b; d(a/b)/db = -a/b² = -(dy/b)·y.
    grad: (_a, b, y, dy, ctx) => {
      const da = ctx.emit1("div", [dy, b]);
      return [da, ctx.emit1("neg", [ctx.emit1("mul", [da, y])])];
    },
  },
  // NaN propagates, as torch.maximum/minimum do.
  maximum: {
    dtypes: ["f32", "i32"],
    f: (a, b) => (Number.isNaN(a) || Number.isNaN(b) ? NaN : Math.max(a, b)),
    grad: binaryGradRule("maximum"),
  },
  minimum: {
    dtypes: ["f32", "i32"],
    f: (a, b) => (Number.isNaN(a) || Number.isNaN(b) ? NaN : Math.min(a, b)),
    grad: binaryGradRule("minimum"),
  },
  pow: { dtypes: ["f32"], f: (a, b) => Math.pow(a, b), grad: binaryGradRule("pow") },
};

/** The rule of maximum/minimum/pow: one `binary_grad` node per operand, at the output's shape. */
function binaryGradRule(fn: BinaryGradFn): NonNullable<BinaryDef["grad"]> {
  return (a, b, _y, dy, ctx) => [
    ctx.emit1("binary_grad", [a, b, dy], { fn, wrt: 0 }),
    ctx.emit1("binary_grad", [a, b, dy], { fn, wrt: 1 }),
  ];
}

function dtypeList(dtypes: readonly DType[]): string {
  return dtypes.join(" or ");
}

function checkDtypeAllowed(op: string, t: TensorType, allowed: readonly DType[], ctx: InferCtx, input: number): void {
  if (!allowed.includes(t.dtype)) {
    ctx.fail("E213", `${op} needs ${dtypeList(allowed)}, found ${typeToString(t)}`, {
      notes: [ctx.describeInput(input)],
      hint: `convert with cast(x, dtype="${allowed[0]}")`,
    });
  }
}

function checkSameDtype(op: string, a: TensorType, b: TensorType, ctx: InferCtx, ia: number, ib: number): void {
  if (a.dtype !== b.dtype) {
    ctx.fail("E213", `${op} needs operands of the same dtype, found ${typeToString(a)} and ${typeToString(b)}`, {
      notes: [ctx.describeInput(ia), ctx.describeInput(ib)],
      hint: `convert one with cast(x, dtype="${a.dtype}")`,
    });
  }
}

/** The broadcast shape of inputs `ia` and `ib`, or E203 naming both. */
export function inferBroadcast(inputs: readonly TensorType[], ia: number, ib: number, ctx: InferCtx): TensorType {
  const r = broadcastTypes(inputs[ia]!, inputs[ib]!);
  if ("error" in r) {
    ctx.fail("E203", r.error, {
      notes: [ctx.describeInput(ia), ctx.describeInput(ib)],
      hint: "dims must be equal or 1; use reshape or broadcast_to to align them",
    });
  }
  return { dtype: inputs[ia]!.dtype, shape: r.shape };
}

function binaryOp(name: string, def: BinaryDef): OpDef {
  return defineOp<Attrs>({
    name,
    infer(inputs, _attrs, ctx) {
      const [a, b] = inputs as [TensorType, TensorType];
      checkSameDtype(name, a, b, ctx, 0, 1);
      checkDtypeAllowed(name, a, def.dtypes, ctx, 0);
      return [inferBroadcast(inputs, 0, 1, ctx)];
    },
    evaluate(inputs, _attrs, ctx) {
      const [a, b] = inputs as [RefTensor, RefTensor];
      const f = a.dtype === "i32" && def.i32 ? def.i32 : def.f;
      const shape = ctx.outShapes[0]!;
      const out = new RefTensor(a.dtype, shape);
      forEachBroadcast(shape, [a.shape, b.shape], (k, [oa, ob]) => {
        out.data[k] = f(a.data[oa!]!, b.data[ob!]!);
      });
      return [out];
    },
    grad: def.grad
      ? (inputs, outputs, dys, _attrs, ctx) => {
          const [a, b] = inputs as [Value, Value];
          const [da, db] = def.grad!(a, b, outputs[0]!, dys[0]!, ctx);
          return [da && ctx.unbroadcast(da, a.type), db && ctx.unbroadcast(db, b.type)];
        }
      : undefined,
  });
}

// ---------------------------------------------------------------------------
// Unary ops

interface UnaryDef {
  readonly dtypes: readonly DType[];
  readonly f: (x: number, attrs: Attrs) => number;
  readonly i32?: (x: number) => number;
  /** Attribute check at compile time (clip's lo <= hi). */
  readonly check?: (attrs: Attrs, t: TensorType, ctx: InferCtx) => void;
}

const F32: readonly DType[] = ["f32"];

const UNARY: Record<string, UnaryDef> = {
  neg: { dtypes: ["f32", "i32"], f: (x) => -x, i32: (x) => -x | 0 },
  abs: { dtypes: ["f32", "i32"], f: (x) => Math.abs(x), i32: (x) => Math.abs(x) | 0 },
  relu: { dtypes: F32, f: (x) => (x > 0 ? x : Number.isNaN(x) ? NaN : 0) },
  sigmoid: { dtypes: F32, f: sigmoid },
  tanh: { dtypes: F32, f: Math.tanh },
  exp: { dtypes: F32, f: Math.exp },
  log: { dtypes: F32, f: Math.log },
  sqrt: { dtypes: F32, f: Math.sqrt },
  softplus: { dtypes: F32, f: softplus },
  gelu: { dtypes: F32, f: gelu },
  logsigmoid: { dtypes: F32, f: logsigmoid },
  leaky_relu: {
    dtypes: F32,
    f: (x, a) => (x >= 0 ? x : (a.alpha as number) * x),
    check: (a, _t, ctx) => checkFinite("alpha", a.alpha, ctx),
  },
  elu: {
    dtypes: F32,
    f: (x, a) => (x > 0 ? x : (a.alpha as number) * Math.expm1(x)),
    check: (a, _t, ctx) => checkFinite("alpha", a.alpha, ctx),
  },
  clip: {
    dtypes: ["f32", "i32"],
    f: (x, a) => {
      // NaN stays NaN, as torch.clamp does.
      let v = x;
      if (a.lo !== null && a.lo !== undefined && v < (a.lo as number)) v = a.lo as number;
      if (a.hi !== null && a.hi !== undefined && v > (a.hi as number)) v = a.hi as number;
      return v;
    },
    check: checkClipBounds,
  },
};

function checkFinite(name: string, v: unknown, ctx: InferCtx): void {
  if (typeof v !== "number" || !Number.isFinite(v)) ctx.fail("E404", `${name} must be a finite number, found ${String(v)}`, { arg: name });
}

function checkClipBounds(a: Attrs, t: TensorType, ctx: InferCtx): void {
  const lo = a.lo ?? null;
  const hi = a.hi ?? null;
  for (const [name, v] of [["lo", lo], ["hi", hi]] as const) {
    if (v === null) continue;
    if (typeof v !== "number" || Number.isNaN(v)) ctx.fail("E404", `${name} must be a number, found ${String(v)}`, { arg: name });
    if (t.dtype === "i32" && !Number.isInteger(v)) {
      ctx.fail("E404", `${name} must be an integer to clip ${typeToString(t)}, found ${v}`, { arg: name, notes: [ctx.describeInput(0)] });
    }
  }
  if (typeof lo === "number" && typeof hi === "number" && lo > hi) {
    ctx.fail("E404", `clip needs lo <= hi, found lo=${lo} and hi=${hi}`, { arg: "lo", hint: "swap the bounds" });
  }
}

function unaryOp(name: string, def: UnaryDef): OpDef {
  return defineOp<Attrs>({
    name,
    infer(inputs, attrs, ctx) {
      const x = inputs[0]!;
      checkDtypeAllowed(name, x, def.dtypes, ctx, 0);
      def.check?.(attrs, x, ctx);
      return [{ dtype: x.dtype, shape: x.shape }];
    },
    evaluate(inputs, attrs) {
      const x = inputs[0]!;
      const f = x.dtype === "i32" && def.i32 ? def.i32 : (v: number) => def.f(v, attrs);
      return [x.map((v) => f(v))];
    },
    // d(-x) = -dy as plain IR; every other activation is one `unary_grad` node over (x, y, dy).
    grad:
      name === "neg"
        ? (_inputs, _outputs, dys, _attrs, ctx) => [ctx.emit1("neg", [dys[0]!])]
        : (inputs, outputs, dys, attrs, ctx) => {
            const extra = Object.fromEntries(["alpha", "lo", "hi"].filter((k) => k in attrs).map((k) => [k, attrs[k] ?? null]));
            return [ctx.emit1("unary_grad", [inputs[0]!, outputs[0]!, dys[0]!], { fn: name, ...extra })];
          },
  });
}

// ---------------------------------------------------------------------------
// Backward ops (emitted by the gradient rules above; they have no gradient themselves)

/** Φ(x), the standard normal CDF. */
function normalCdf(x: number): number {
  return 0.5 * erfc(-x / Math.SQRT2);
}

const INV_SQRT_2PI = 1 / Math.sqrt(2 * Math.PI);

/**
 * dx of one activation from x, its output y and the incoming dy. Kinks take
 * PyTorch's one-sided value: abs'(0) = 0, relu'(0) = 0, leaky_relu'(0) = alpha,
 * elu'(0) = alpha; clip passes dy where lo <= x <= hi (bounds inclusive).
 */
export function unaryGradValue(fn: string, x: number, y: number, g: number, a: Attrs): number {
  switch (fn) {
    case "abs":
      return x > 0 ? g : x < 0 ? -g : 0;
    case "relu":
      return x > 0 ? g : 0;
    case "sigmoid":
      return g * y * (1 - y);
    case "tanh":
      return g * (1 - y * y);
    case "exp":
      return g * y;
    case "log":
      return g / x;
    case "sqrt":
      return g / (2 * y);
    case "softplus":
      return g * sigmoid(x);
    case "logsigmoid":
      return g * sigmoid(-x);
    case "gelu":
      return g * (normalCdf(x) + x * INV_SQRT_2PI * Math.exp(-0.5 * x * x));
    case "leaky_relu":
      return x > 0 ? g : (a.alpha as number) * g;
    case "elu":
      return x > 0 ? g : (a.alpha as number) * Math.exp(x) * g;
    case "clip": {
      const lo = typeof a.lo === "number" ? a.lo : -Infinity;
      const hi = typeof a.hi === "number" ? a.hi : Infinity;
      return x >= lo && x <= hi ? g : 0;
    }
    default:
      throw new Error(`internal: unary_grad has no rule for ${fn}`);
  }
}

export const UNARY_GRAD_FNS = ["abs", "relu", "sigmoid", "tanh", "exp", "log", "sqrt", "softplus", "logsigmoid", "gelu", "leaky_relu", "elu", "clip"];

/** unary_grad(x, y, dy, {fn, alpha?, lo?, hi?}) -> dx: the local derivative of activation `fn` times dy. */
const unaryGradOp = defineOp<Attrs>({
  name: "unary_grad",
  infer(inputs, attrs, ctx) {
    if (!UNARY_GRAD_FNS.includes(attrs.fn as string)) ctx.fail("E404", `unary_grad has no rule for ${String(attrs.fn)}`);
    for (let i = 0; i < 3; i++) checkDtypeAllowed("unary_grad", inputs[i]!, F32, ctx, i);
    const [x, y, dy] = inputs as [TensorType, TensorType, TensorType];
    if (!sameDims(x, y) || !sameDims(x, dy)) ctx.fail("E203", `unary_grad needs x, y and dy of one shape, found ${typeToString(x)}, ${typeToString(y)}, ${typeToString(dy)}`);
    return [{ dtype: "f32", shape: x.shape }];
  },
  evaluate(inputs, attrs) {
    const [x, y, dy] = inputs as [RefTensor, RefTensor, RefTensor];
    return [x.map((v, i) => unaryGradValue(attrs.fn as string, v, y.data[i]!, dy.data[i]!, attrs))];
  },
});

function sameDims(a: TensorType, b: TensorType): boolean {
  return a.shape.length === b.shape.length && a.shape.every((d, i) => d.equals(b.shape[i]!));
}

export type BinaryGradFn = "maximum" | "minimum" | "pow";

/**
 * The part of dy owed to operand `wrt` (0: a, 1: b) of `fn(a, b)`, before
 * unbroadcasting. maximum/minimum: all of dy goes to the winner, `a` on ties
 * (a >= b for maximum, a <= b for minimum). pow: d/da = b·a^(b−1) (0 when
 * b = 0), d/db = a^b·log(a) (0 when a = 0 and b >= 0, as PyTorch; NaN for a < 0).
 */
export function binaryGradValue(fn: BinaryGradFn, wrt: number, a: number, b: number, g: number): number {
  switch (fn) {
    case "maximum":
      return (a >= b) === (wrt === 0) ? g : 0;
    case "minimum":
      return (a <= b) === (wrt === 0) ? g : 0;
    case "pow":
      if (wrt === 0) return b === 0 ? 0 : g * b * Math.pow(a, b - 1);
      return a === 0 && b >= 0 ? 0 : g * Math.pow(a, b) * Math.log(a);
  }
}

/** binary_grad(a, b, dy, {fn, wrt}) -> the gradient of operand `wrt` at the broadcast shape (unbroadcast by the rule). */
const binaryGradOp = defineOp<{ fn: BinaryGradFn; wrt: number }>({
  name: "binary_grad",
  infer(inputs, attrs, ctx) {
    if (!["maximum", "minimum", "pow"].includes(attrs.fn) || (attrs.wrt !== 0 && attrs.wrt !== 1)) {
      ctx.fail("E404", `binary_grad needs fn maximum, minimum or pow and wrt 0 or 1, found ${String(attrs.fn)}, ${String(attrs.wrt)}`);
    }
    for (let i = 0; i < 3; i++) checkDtypeAllowed("binary_grad", inputs[i]!, F32, ctx, i);
    const ab = inferBroadcast(inputs, 0, 1, ctx);
    const r = broadcastTypes(ab, inputs[2]!);
    if ("error" in r) return ctx.fail("E203", `dy: ${r.error}`);
    return [{ dtype: "f32", shape: r.shape }];
  },
  evaluate(inputs, attrs, ctx) {
    const [a, b, dy] = inputs as [RefTensor, RefTensor, RefTensor];
    const shape = ctx.outShapes[0]!;
    const out = new RefTensor("f32", shape);
    forEachBroadcast(shape, [a.shape, b.shape, dy.shape], (k, [oa, ob, og]) => {
      out.data[k] = binaryGradValue(attrs.fn, attrs.wrt, a.data[oa!]!, b.data[ob!]!, dy.data[og!]!);
    });
    return [out];
  },
});

// ---------------------------------------------------------------------------
// where, cast

const whereOp = defineOp<Attrs>({
  name: "where",
  infer(inputs, _attrs, ctx) {
    const [cond, a, b] = inputs as [TensorType, TensorType, TensorType];
    if (cond.dtype !== "bool") {
      ctx.fail("E213", `where needs a bool condition, found ${typeToString(cond)}`, {
        notes: [ctx.describeInput(0)],
        hint: "compare values to make a mask, or cast(x, dtype=\"bool\")",
      });
    }
    checkSameDtype("where", a, b, ctx, 1, 2);
    const ab = inferBroadcast(inputs, 1, 2, ctx);
    const r = broadcastTypes(cond, ab);
    if ("error" in r) {
      return ctx.fail("E203", `condition: ${r.error}`, { notes: [ctx.describeInput(0), ctx.describeInput(1), ctx.describeInput(2)] });
    }
    return [{ dtype: a.dtype, shape: r.shape }];
  },
  evaluate(inputs, _attrs, ctx) {
    const [c, a, b] = inputs as [RefTensor, RefTensor, RefTensor];
    const shape = ctx.outShapes[0]!;
    const out = new RefTensor(a.dtype, shape);
    forEachBroadcast(shape, [c.shape, a.shape, b.shape], (k, [oc, oa, ob]) => {
      out.data[k] = c.data[oc!] ? a.data[oa!]! : b.data[ob!]!;
    });
    return [out];
  },
  nondifferentiable: [0],
  // The condition routes dy: where(cond, dy, 0) to a, where(cond, 0, dy) to b, each summed back over its broadcast axes.
  grad(inputs, _outputs, dys, _attrs, ctx) {
    const [cond, a, b] = inputs as [Value, Value, Value];
    const dy = dys[0]!;
    const zero = ctx.constant(0);
    return [
      undefined,
      a.type.dtype === "f32" ? ctx.unbroadcast(ctx.emit1("where", [cond, dy, zero]), a.type) : undefined,
      b.type.dtype === "f32" ? ctx.unbroadcast(ctx.emit1("where", [cond, zero, dy]), b.type) : undefined,
    ];
  },
});

/** f32 -> i32 truncates toward zero (as PyTorch's .to(torch.int32)); anything -> bool is "nonzero". */
export function castValue(v: number, to: DType): number {
  if (to === "bool") return v !== 0 && !Number.isNaN(v) ? 1 : 0;
  if (to === "i32") return Number.isFinite(v) ? Math.trunc(v) | 0 : 0;
  return v;
}

const castOp = defineOp<{ dtype: DType }>({
  name: "cast",
  infer(inputs, attrs, ctx) {
    if (!DTYPES.includes(attrs.dtype)) ctx.fail("E404", `cast needs dtype ${DTYPES.map((d) => `"${d}"`).join(", ")}, found ${String(attrs.dtype)}`, { arg: "dtype" });
    return [{ dtype: attrs.dtype, shape: inputs[0]!.shape }];
  },
  evaluate(inputs, attrs) {
    return [inputs[0]!.map((v) => castValue(v, attrs.dtype), attrs.dtype)];
  },
  // f32 -> f32 is the identity; an i32/bool result carries no gradient (and i32/bool inputs are never asked).
  grad: (inputs, outputs, dys) => [inputs[0]!.type.dtype === "f32" && outputs[0]!.type.dtype === "f32" ? dys[0] : undefined],
});

export const ops: OpDef[] = [
  ...Object.entries(BINARY).map(([name, def]) => binaryOp(name, def)),
  ...Object.entries(UNARY).map(([name, def]) => unaryOp(name, def)),
  whereOp,
  castOp,
  unaryGradOp,
  binaryGradOp,
];

// ---------------------------------------------------------------------------
// Builtins

/**
 * Tensor operands of a call. A number becomes a scalar constant: f32, except
 * that an integer literal next to an i32 tensor becomes i32 (`add(lengths, 1)`).
 */
function operands(args: Args, ctx: LowerCtx, names: readonly string[]): Value[] {
  const tensors = names.map((n) => args.raw(n)).filter((v) => v?.kind === "tensor");
  const intPartner = tensors.some((v) => v!.kind === "tensor" && v.value.type.dtype === "i32");
  return names.map((n) => {
    const v = args.raw(n);
    if (v?.kind === "number" && v.isInt && intPartner) return ctx.constant(v.value, "i32");
    return args.tensor(n);
  });
}

const binaryBuiltin: BuiltinDef = {
  names: ["add", "sub", "mul", "div", "maximum", "minimum"],
  signature: () => ["a", "b"],
  lower(args, ctx) {
    return ctx.emit1(ctx.callee, operands(args, ctx, ["a", "b"]));
  },
};

const powBuiltin: BuiltinDef = {
  names: ["pow"],
  signature: () => ["x", "p"],
  lower(args, ctx) {
    return ctx.emit1("pow", operands(args, ctx, ["x", "p"]));
  },
};

const unaryBuiltin: BuiltinDef = {
  names: ["neg", "relu", "sigmoid", "tanh", "exp", "log", "sqrt", "abs", "softplus", "gelu", "logsigmoid"],
  signature: () => ["x"],
  lower(args, ctx) {
    return ctx.emit1(ctx.callee, [args.tensor("x")]);
  },
};

const leakyReluBuiltin: BuiltinDef = {
  names: ["leaky_relu"],
  signature: () => ["x", "alpha"],
  lower(args, ctx) {
    return ctx.emit1("leaky_relu", [args.tensor("x")], { alpha: args.number("alpha", 0.01) });
  },
};

const eluBuiltin: BuiltinDef = {
  names: ["elu"],
  signature: () => ["x", "alpha"],
  lower(args, ctx) {
    return ctx.emit1("elu", [args.tensor("x")], { alpha: args.number("alpha", 1) });
  },
};

const clipBuiltin: BuiltinDef = {
  names: ["clip"],
  signature: () => ["x", "lo", "hi"],
  lower(args, ctx) {
    if (!args.has("lo") && !args.has("hi")) ctx.fail("E401", "clip needs lo=, hi= or both", { hint: "clip(x, lo, hi)" });
    const lo = args.has("lo") ? args.number("lo") : null;
    const hi = args.has("hi") ? args.number("hi") : null;
    return ctx.emit1("clip", [args.tensor("x")], { lo, hi });
  },
};

const whereBuiltin: BuiltinDef = {
  names: ["where"],
  signature: () => ["cond", "a", "b"],
  lower(args, ctx) {
    const [a, b] = operands(args, ctx, ["a", "b"]);
    return ctx.emit1("where", [args.tensor("cond"), a!, b!]);
  },
};

const castBuiltin: BuiltinDef = {
  names: ["cast"],
  signature: () => ["x", "dtype"],
  lower(args, ctx) {
    const x = args.tensor("x");
    const dtype = args.string("dtype", DTYPES);
    return x.type.dtype === dtype ? x : ctx.emit1("cast", [x], { dtype });
  },
};

export const builtins: BuiltinDef[] = [
  binaryBuiltin,
  powBuiltin,
  unaryBuiltin,
  leakyReluBuiltin,
  eluBuiltin,
  clipBuiltin,
  whereBuiltin,
  castBuiltin,
];

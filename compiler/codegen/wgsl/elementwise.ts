// WGSL kernels for the elementwise family (compiler/ops/elementwise.ts):
// binary arithmetic with NumPy broadcasting, unary activations, `where` and
// `cast`. One invocation per output element (flatDispatch); each operand is
// read at the output's coordinates with stride 0 along its broadcast dims.
// Size-1 output dims are dropped and neighbouring dims with the same
// broadcast pattern merged, so `[N, C, H, W] + [C, 1, 1]` needs two
// coordinates, and operands with the output's shape share its flat index.
//
// Semantics follow the float64 reference where f32 allows:
//  * i32 add/sub/mul/neg/abs wrap (WGSL's i32 arithmetic does);
//  * NaN propagates through relu, maximum/minimum and clip. Compilers may
//    assume no NaNs: `v != v` is folded to false and max(NaN, 1) is 1 on
//    lavapipe, so NaN tests use the bit pattern (is_nan) and explicit selects;
//  * softplus, logsigmoid, sigmoid, tanh and elu are evaluated in forms that
//    neither overflow nor cancel (log1p/expm1 by short series near 0);
//  * gelu is exact (erf-based) with Numerical Recipes' erfc, pow follows
//    Math.pow's special cases, log/sqrt of negatives are NaN on every GPU;
//  * cast f32 -> i32 truncates toward zero and wraps modulo 2^32 (WGSL's i32()
//    saturates), NaN and ±inf give 0; to bool is "nonzero and not NaN".
//
// WgslWriter, the numeric helpers and emitMap are shared with reduce.ts and shape.ts.

import type { Dim } from "../../ir/dims.ts";
import type { Attrs } from "../../ir/graph.ts";
import type { DType } from "../../ir/types.ts";
import { flatDispatch, type WgslEmitCtx, type WgslKernel, type WgslKernelResult, type WgslPass } from "./kernel.ts";

// ---------------------------------------------------------------------------
// Literals

/** A number as a WGSL literal of `dtype` (non-finite f32 through bit patterns: WGSL has no inf/NaN literals). */
export function wgslLiteral(v: number, dtype: DType): string {
  if (dtype === "bool") return v !== 0 && !Number.isNaN(v) ? "1u" : "0u";
  if (dtype === "i32") {
    if (v === -2147483648) return "i32(-2147483648)";
    return `${v}i`;
  }
  const f = Math.fround(v);
  if (Number.isNaN(f)) return "bits_f32(0x7fc00000u)";
  if (f === Infinity) return "bits_f32(0x7f800000u)";
  if (f === -Infinity) return "bits_f32(0xff800000u)";
  if (Object.is(f, -0)) return "-0.0f";
  // The shortest text of v itself when it is in range (WGSL rounds it to the same f32).
  return `${Math.abs(v) <= 3.4028234663852886e38 ? v : f}f`;
}

/** Helper functions used by literals and templates, emitted only when referenced. */
const HELPERS: Record<string, { readonly deps?: readonly string[]; readonly code: string }> = {
  // A bit pattern as f32 at run time: inf and NaN cannot be constant expressions.
  bits_f32: { code: "fn bits_f32(b: u32) -> f32 { return bitcast<f32>(b); }" },
  is_nan: { code: "fn is_nan(v: f32) -> bool { return (bitcast<u32>(v) & 0x7fffffffu) > 0x7f800000u; }" },
  is_finite: { code: "fn is_finite(v: f32) -> bool { return (bitcast<u32>(v) & 0x7f800000u) != 0x7f800000u; }" },
  max_nan: {
    deps: ["is_nan"],
    code: "fn max_nan(a: f32, b: f32) -> f32 {\n  return select(max(a, b), a + b, is_nan(a) | is_nan(b));\n}",
  },
  min_nan: {
    deps: ["is_nan"],
    code: "fn min_nan(a: f32, b: f32) -> f32 {\n  return select(min(a, b), a + b, is_nan(a) | is_nan(b));\n}",
  },
  log_ieee: {
    deps: ["bits_f32"],
    code: `// log with IEEE results at the edges (GPU logs are undefined for v <= 0).
fn log_ieee(v: f32) -> f32 {
  if (v < 0.0) { return bits_f32(0x7fc00000u); }
  if (v == 0.0) { return bits_f32(0xff800000u); }
  return log(v);
}`,
  },
  sqrt_ieee: {
    deps: ["bits_f32"],
    code: "fn sqrt_ieee(v: f32) -> f32 {\n  if (v < 0.0) { return bits_f32(0x7fc00000u); }\n  return sqrt(v);\n}",
  },
  log1p_pos: {
    code: `// log(1 + e) for e >= 0 without losing e's digits when e is small.
fn log1p_pos(e: f32) -> f32 {
  if (e < 0.01) { return e * (1.0 - e * (0.5 - e * (0.33333334 - e * 0.25))); }
  return log(1.0 + e);
}`,
  },
  expm1: {
    code: `// e^v - 1 without cancellation near 0.
fn expm1(v: f32) -> f32 {
  if (abs(v) < 0.1) { return v * (1.0 + v * (0.5 + v * (0.16666667 + v * (0.041666668 + v * 0.008333334)))); }
  return exp(v) - 1.0;
}`,
  },
  sigmoid: {
    code: `// exp of a non-positive argument only: no overflow, no NaN at ±inf.
fn sigmoid(v: f32) -> f32 {
  let e = exp(-abs(v));
  return select(e / (1.0 + e), 1.0 / (1.0 + e), v >= 0.0);
}`,
  },
  tanh_stable: {
    code: `// GPU tanh may be (e^2v - 1) / (e^2v + 1): NaN for large |v|, no digits near 0.
fn tanh_stable(v: f32) -> f32 {
  let a = abs(v);
  if (a < 0.125) {
    let s = v * v;
    return v * (1.0 + s * (-0.33333334 + s * (0.13333334 + s * -0.053968254)));
  }
  let e = exp(-2.0 * a);
  let r = (1.0 - e) / (1.0 + e);
  return select(r, -r, v < 0.0);
}`,
  },
  softplus: {
    deps: ["log1p_pos"],
    code: "fn softplus(v: f32) -> f32 { return max(v, 0.0) + log1p_pos(exp(-abs(v))); }",
  },
  logsigmoid: {
    deps: ["log1p_pos"],
    code: "fn logsigmoid(v: f32) -> f32 { return min(v, 0.0) - log1p_pos(exp(-abs(v))); }",
  },
  gelu: {
    code: `// gelu(v) = v/2 * erfc(-v/sqrt(2)); erfc by Numerical Recipes' erfcc (relative error < 1.2e-7).
fn gelu(v: f32) -> f32 {
  let z = -0.70710677 * v;
  let az = abs(z);
  let t = 1.0 / (1.0 + 0.5 * az);
  let p = -1.26551223 + t * (1.00002368 + t * (0.37409196 + t * (0.09678418 + t * (-0.18628806 + t * (0.27886807 + t * (-1.13520398 + t * (1.48851587 + t * (-0.82215223 + t * 0.17087277))))))));
  let tail = t * exp(-az * az + p);
  return 0.5 * v * select(2.0 - tail, tail, z >= 0.0);
}`,
  },
  gelu_grad: {
    code: `// gelu'(v) = Phi(v) + v * phi(v); Phi(v) = erfc(-v/sqrt(2))/2 by Numerical Recipes' erfcc, phi the normal density.
fn gelu_grad(v: f32) -> f32 {
  let z = -0.70710677 * v;
  let az = abs(z);
  let t = 1.0 / (1.0 + 0.5 * az);
  let p = -1.26551223 + t * (1.00002368 + t * (0.37409196 + t * (0.09678418 + t * (-0.18628806 + t * (0.27886807 + t * (-1.13520398 + t * (1.48851587 + t * (-0.82215223 + t * 0.17087277))))))));
  let tail = t * exp(-az * az + p);
  return 0.5 * select(2.0 - tail, tail, z >= 0.0) + v * 0.39894229 * exp(-0.5 * v * v);
}`,
  },
  pow_js: {
    deps: ["bits_f32", "is_nan", "is_finite"],
    code: `// Math.pow, special cases included (WGSL's pow is undefined for a < 0).
fn pow_js(a: f32, b: f32) -> f32 {
  if (b == 0.0) { return 1.0; }
  if (is_nan(a) || is_nan(b)) { return bits_f32(0x7fc00000u); }
  let m = abs(a);
  if (!is_finite(b)) {
    if (m == 1.0) { return bits_f32(0x7fc00000u); }
    return select(0.0, bits_f32(0x7f800000u), (m > 1.0) == (b > 0.0));
  }
  let integral = floor(b) == b;
  let odd = integral && b - 2.0 * floor(0.5 * b) != 0.0;
  var r: f32;
  if (m == 0.0) {
    r = select(bits_f32(0x7f800000u), 0.0, b > 0.0);
  } else if (!is_finite(m)) {
    r = select(0.0, bits_f32(0x7f800000u), b > 0.0);
  } else {
    if (a < 0.0 && !integral) { return bits_f32(0x7fc00000u); }
    r = pow(m, b);
  }
  let negative = (bitcast<u32>(a) & 0x80000000u) != 0u;
  return select(r, -r, negative && odd);
}`,
  },
  f32_to_i32: {
    deps: ["is_finite"],
    code: `// ToInt32 as the reference: truncate toward zero, wrap modulo 2^32; NaN and ±inf give 0.
fn f32_to_i32(v: f32) -> i32 {
  if (!is_finite(v)) { return 0i; }
  let t = trunc(v);
  if (abs(t) < 2147483648.0) { return i32(t); }
  // |t| >= 2^31 is a multiple of 256: t mod 2^32 is exact in f32.
  return bitcast<i32>(u32(t - floor(t / 4294967296.0) * 4294967296.0));
}`,
  },
};

/**
 * The helper functions `code` calls (with their dependencies), in a fixed
 * order: for code written without a WgslWriter (the epilogue function of
 * epilogue.ts, placed next to a conv or einsum kernel).
 */
export function helpersFor(code: string): string[] {
  const used = new Set<string>();
  const use = (n: string): void => {
    if (used.has(n)) return;
    used.add(n);
    for (const d of HELPERS[n]!.deps ?? []) use(d);
  };
  for (const n of Object.keys(HELPERS)) if (new RegExp(`\\b${n}\\(`).test(code)) use(n);
  return Object.keys(HELPERS).filter((n) => used.has(n)).map((n) => HELPERS[n]!.code);
}

// ---------------------------------------------------------------------------
// Code writing

/** Names the writer never gives to hoisted sizes (body locals and WGSL words used by templates). */
const TAKEN = new Set([
  ...["i", "o", "j", "k", "r", "e", "m", "v", "a", "b", "c", "t", "s", "p", "q", "w", "lid", "gid", "wid", "nwg", "P"],
  ...["acc", "sum", "shift", "total", "logSum", "best", "bestValue", "base", "rem", "size", "first", "span", "got", "cw"],
  ...["part", "values", "indices", "beats"],
]);

/**
 * Builds one compute shader: helper functions on demand, hoisted sizes
 * (`let` at the top of main, once per distinct expression), the body.
 */
export class WgslWriter {
  private readonly head: string[] = [];
  private readonly body: string[] = [];
  private depth = 1;
  private readonly names = new Set<string>(TAKEN);
  private readonly hoisted = new Map<string, string>();
  private readonly helpers = new Set<string>();
  private readonly extra: string[] = [];

  constructor(readonly ctx: WgslEmitCtx) {}

  /** A dim as a u32 operand: `28u`, `P.s_N`, or a hoisted let. */
  dim(d: Dim, hint = "extent"): string {
    const c = d.constValue();
    if (c !== undefined) return `${c}u`;
    const syms = [...d.symbols()];
    if (syms.length === 1 && d.toString() === syms[0]) return `P.s_${syms[0]}`;
    return this.hoist(this.ctx.dim(d), hint);
  }

  /** Product of dims as a u32 operand. */
  numel(dims: readonly Dim[], hint: string): string {
    return this.product(dims.map((d) => this.dim(d)), hint);
  }

  /** Product of u32 operands, literals folded. */
  product(sizes: readonly string[], hint: string): string {
    let lit = 1;
    const rest: string[] = [];
    for (const s of sizes) {
      const m = /^(\d+)u$/.exec(s);
      if (m) lit *= Number(m[1]);
      else rest.push(s);
    }
    if (rest.length === 0 || lit === 0) return `${lit}u`;
    if (lit === 1 && rest.length === 1) return rest[0]!;
    return this.hoist([...(lit === 1 ? [] : [`${lit}u`]), ...rest].join(" * "), hint);
  }

  /** `let <hint> = expr;` at the top of main, once per distinct expression. */
  hoist(expr: string, hint: string): string {
    if (/^(?:\d+u|[A-Za-z_][\w.]*)$/.test(expr)) return expr;
    let name = this.hoisted.get(expr);
    if (!name) {
      name = this.fresh(hint);
      this.hoisted.set(expr, name);
      this.head.push(`let ${name} = ${expr};`);
    }
    return name;
  }

  /** A new name for a body local (fresh against hoisted names). */
  fresh(hint: string): string {
    let name = hint;
    for (let k = 2; this.names.has(name); k++) name = `${hint}${k}`;
    this.names.add(name);
    return name;
  }

  /** Marks helper functions as used (with their dependencies). */
  use(...names: string[]): void {
    for (const n of names) {
      if (this.helpers.has(n)) continue;
      const h = HELPERS[n];
      if (!h) throw new Error(`unknown WGSL helper ${n}`);
      this.use(...(h.deps ?? []));
      this.helpers.add(n);
    }
  }

  /** Marks the helpers referenced in `text` (by name followed by a parenthesis) as used. */
  useIn(text: string): void {
    for (const n of Object.keys(HELPERS)) if (new RegExp(`\\b${n}\\(`).test(text)) this.use(n);
  }

  /** Module-scope declarations (workgroup arrays). */
  declare(s: string): void {
    this.useIn(s);
    this.extra.push(s);
  }

  line(s: string): void {
    this.useIn(s);
    this.body.push("  ".repeat(this.depth) + s);
  }

  open(s: string): void {
    this.line(`${s} {`);
    this.depth++;
  }

  close(): void {
    this.depth--;
    this.line("}");
  }

  /** `} else {` or `} else if (cond) {` between two blocks. */
  orElse(cond?: string): void {
    this.depth--;
    this.line(cond === undefined ? "} else {" : `} else if (${cond}) {`);
    this.depth++;
  }

  /** The shader: helpers, module declarations and `fn main` with `params` (builtins). */
  shader(workgroupSize: number, params: string): string {
    const helpers = Object.keys(HELPERS).filter((n) => this.helpers.has(n)).map((n) => HELPERS[n]!.code);
    const main = [`@compute @workgroup_size(${workgroupSize})`, `fn main(${params}) {`, ...this.head.map((l) => `  ${l}`), ...this.body, "}"].join("\n");
    return [...helpers, ...this.extra, main].join("\n\n");
  }
}

export const FLAT_PARAMS = "@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u";
export const GROUP_PARAMS = "@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_index) lid: u32, @builtin(num_workgroups) nwg: vec3u";

/**
 * One invocation per element of a problem of `countJs` (JS) / `count` (WGSL)
 * elements: `body(w)` writes the statements for flat index `i`.
 */
export function flatPass(ctx: WgslEmitCtx, countJs: string, count: (w: WgslWriter) => string, body: (w: WgslWriter) => void, extra: Partial<WgslPass> = {}): WgslPass {
  const w = new WgslWriter(ctx);
  const f = flatDispatch(countJs);
  const n = count(w);
  w.line(`let i = ${f.index};`);
  w.line(`if (i >= ${n}) { return; }`);
  body(w);
  return { ...extra, code: w.shader(64, FLAT_PARAMS), dispatch: f.dispatch };
}

/** One workgroup per item (a 2-D grid of `count` groups within the 65535 limit); `wid.x + wid.y * nwg.x` is the item. */
export function groupDispatch(countJs: string): [string, string] {
  return [`Math.min(${countJs}, 65535)`, `Math.ceil((${countJs}) / 65535)`];
}

/**
 * `let c<j> = ...` for each axis j whose coordinate is needed, from the flat
 * index `index` over row-major `sizes`; returns the coordinate operands.
 */
export function coordinates(w: WgslWriter, sizes: readonly string[], index: string, needed: readonly boolean[], prefix = "c"): string[] {
  const out: string[] = [];
  const last = sizes.length - 1;
  sizes.forEach((size, j) => {
    if (!needed[j]) {
      out.push("");
      return;
    }
    const after = j === last ? "1u" : w.product(sizes.slice(j + 1), `row${j}`);
    const q = after === "1u" ? index : `${index} / ${after}`;
    const name = w.fresh(`${prefix}${j}`);
    w.line(`let ${name} = ${j === 0 ? q : `${q === index ? index : `(${q})`} % ${size}`};`);
    out.push(name);
  });
  return out;
}

/** A name, a literal or one parenthesised group: safe as an operand of any operator. */
function isAtomic(s: string): boolean {
  if (/^[\w.]+$/.test(s)) return true;
  if (!s.startsWith("(") || !s.endsWith(")")) return false;
  let depth = 0;
  for (let k = 0; k < s.length; k++) {
    if (s[k] === "(") depth++;
    else if (s[k] === ")" && --depth === 0 && k < s.length - 1) return false;
  }
  return true;
}

/** `a * b` for u32 operands with literal 0/1 folded (u32 products associate; divisions do not). */
export function mul(a: string, b: string): string {
  if (a === "0u" || b === "0u") return "0u";
  if (a === "1u") return b;
  if (b === "1u") return a;
  const left = isAtomic(a) || !/[+-]/.test(a) ? a : `(${a})`;
  const right = isAtomic(b) || !/[+\-/%]/.test(b) ? b : `(${b})`;
  return `${left} * ${right}`;
}

/** `a + b` for u32 operands with literal 0 folded. */
export function add(a: string, b: string): string {
  if (a === "0u") return b;
  if (b === "0u") return a;
  const la = /^(\d+)u$/.exec(a);
  const lb = /^(\d+)u$/.exec(b);
  if (la && lb) return `${Number(la[1]) + Number(lb[1])}u`;
  return `${a} + ${b}`;
}

// ---------------------------------------------------------------------------
// Maps with broadcasting

export interface MapOperand {
  readonly shape: readonly Dim[];
  /** Buffer (x0, ...). */
  readonly buffer: string;
  /** Local holding its value (a, b, v, ...). */
  readonly name: string;
}

/**
 * Offsets of each operand for output flat index `i`: `i` when it has the
 * output's shape, `0u` when it is a scalar, otherwise the sum of the needed
 * coordinates times its strides (0 along broadcast dims).
 */
export function broadcastOffsets(w: WgslWriter, outShape: readonly Dim[], operands: readonly { readonly shape: readonly Dim[] }[], index = "i"): string[] {
  const rank = outShape.length;
  const axes: { dims: Dim[]; broadcast: boolean[] }[] = [];
  outShape.forEach((d, i) => {
    if (d.equals(1)) return;
    const broadcast = operands.map((op) => {
      const k = i - (rank - op.shape.length);
      return k < 0 || op.shape[k]!.equals(1);
    });
    const last = axes[axes.length - 1];
    if (last && last.broadcast.every((b, j) => b === broadcast[j])) last.dims.push(d);
    else axes.push({ dims: [d], broadcast });
  });
  const isScalar = operands.map((_, k) => axes.every((a) => a.broadcast[k]));
  const isFull = operands.map((_, k) => axes.every((a) => !a.broadcast[k]));
  if (operands.every((_, k) => isScalar[k] || isFull[k])) return operands.map((_, k) => (isScalar[k] ? "0u" : index));
  const sizes = axes.map((a, j) => w.numel(a.dims, `d${j}`));
  const partial = (k: number) => !isScalar[k] && !isFull[k];
  const needed = axes.map((a) => operands.some((_, k) => partial(k) && !a.broadcast[k]));
  const c = coordinates(w, sizes, index, needed);
  return operands.map((_, k) => {
    if (!partial(k)) return isScalar[k] ? "0u" : index;
    // Stride of the operand along each of its non-broadcast axes: the product of its later sizes.
    let offset = "0u";
    let stride: string[] = [];
    for (let j = axes.length - 1; j >= 0; j--) {
      if (axes[j]!.broadcast[k]) continue;
      offset = add(mul(c[j]!, stride.length ? w.product(stride, `stride${j}`) : "1u"), offset);
      stride = [...stride, sizes[j]!];
    }
    return offset;
  });
}

/** The value stored for one output element, from the operands' value locals. */
export interface MapBody {
  readonly pre?: readonly string[];
  readonly value: string;
}

/** `y0[i] = f(operands at i)` over `outShape` with NumPy broadcasting. */
export function mapPass(ctx: WgslEmitCtx, operands: readonly MapOperand[], f: (names: readonly string[]) => MapBody, comment?: string): WgslPass {
  const outShape = ctx.node.outputs[0]!.type.shape;
  return flatPass(
    ctx,
    ctx.outSizeJs(0),
    (w) => w.numel(outShape, "n"),
    (w) => {
      if (comment) w.line(`// ${comment}`);
      const offsets = broadcastOffsets(w, outShape, operands);
      operands.forEach((op, k) => w.line(`let ${op.name} = ${op.buffer}[${offsets[k]}];`));
      const body = f(operands.map((op) => op.name));
      for (const s of body.pre ?? []) w.line(s);
      w.line(`${ctx.output(0)}[i] = ${body.value};`);
    },
  );
}

// ---------------------------------------------------------------------------
// Op templates

export type Binary = (a: string, b: string, dtype: DType) => string;

export const BINARY: Record<string, Binary> = {
  add: (a, b) => `${a} + ${b}`,
  sub: (a, b) => `${a} - ${b}`,
  mul: (a, b) => `${a} * ${b}`,
  div: (a, b) => `${a} / ${b}`,
  maximum: (a, b, t) => (t === "f32" ? `max_nan(${a}, ${b})` : `max(${a}, ${b})`),
  minimum: (a, b, t) => (t === "f32" ? `min_nan(${a}, ${b})` : `min(${a}, ${b})`),
  pow: (a, b) => `pow_js(${a}, ${b})`,
};

export type Unary = (v: string, attrs: Attrs, dtype: DType) => string;

export const UNARY: Record<string, Unary> = {
  neg: (v) => `-${v}`,
  abs: (v) => `abs(${v})`,
  // `|`, not `||`: a short-circuit is a branch, and SwiftShader's compile time explodes on dozens of
  // them in one unrolled register tile (an epilogue store per accumulator); the operands are pure.
  relu: (v) => `select(0.0, ${v}, (${v} > 0.0) | is_nan(${v}))`,
  sigmoid: (v) => `sigmoid(${v})`,
  tanh: (v) => `tanh_stable(${v})`,
  exp: (v) => `exp(${v})`,
  log: (v) => `log_ieee(${v})`,
  sqrt: (v) => `sqrt_ieee(${v})`,
  softplus: (v) => `softplus(${v})`,
  gelu: (v) => `gelu(${v})`,
  logsigmoid: (v) => `logsigmoid(${v})`,
  leaky_relu: (v, a) => `select(${wgslLiteral(a.alpha as number, "f32")} * ${v}, ${v}, ${v} >= 0.0)`,
  elu: (v, a) => `select(${wgslLiteral(a.alpha as number, "f32")} * expm1(${v}), ${v}, ${v} > 0.0)`,
  clip: (v, a, t) => {
    let r = v;
    if (typeof a.lo === "number" && !(t === "i32" && a.lo <= -2147483648)) {
      const lo = wgslLiteral(t === "i32" ? Math.min(a.lo, 2147483647) : a.lo, t);
      r = `select(${r}, ${lo}, ${v} < ${lo})`;
    }
    if (typeof a.hi === "number" && !(t === "i32" && a.hi >= 2147483647)) {
      const hi = wgslLiteral(t === "i32" ? Math.max(a.hi, -2147483648) : a.hi, t);
      r = `select(${r}, ${hi}, ${v} > ${hi})`;
    }
    // NaN stays NaN (torch.clamp); a compiler may turn the selects into min/max, which drop it.
    return t === "f32" && r !== v ? `select(${r}, ${v}, is_nan(${v}))` : r;
  },
};

export function castTemplate(from: DType, to: DType): (v: string) => string {
  if (from === to) return (v) => v;
  if (to === "bool") return from === "f32" ? (v) => `select(0u, 1u, (${v} != 0.0) & !is_nan(${v}))` : (v) => `select(0u, 1u, ${v} != ${wgslLiteral(0, from)})`;
  if (from === "bool") return (v) => `select(${wgslLiteral(0, to)}, ${wgslLiteral(1, to)}, ${v} != 0u)`;
  if (to === "i32") return (v) => `f32_to_i32(${v})`;
  return (v) => `f32(${v})`;
}

function unaryKernel(op: string, template: (ctx: WgslEmitCtx) => (v: string) => string): WgslKernel {
  return {
    op,
    emit(ctx): WgslKernelResult {
      const f = template(ctx);
      return { passes: [mapPass(ctx, [{ shape: ctx.node.inputs[0]!.type.shape, buffer: ctx.input(0), name: "v" }], ([v]) => ({ value: f(v!) }))] };
    },
  };
}

function binaryKernel(op: string, f: Binary): WgslKernel {
  return {
    op,
    emit(ctx) {
      const [a, b] = ctx.node.inputs;
      const operands = [
        { shape: a!.type.shape, buffer: ctx.input(0), name: "a" },
        { shape: b!.type.shape, buffer: ctx.input(1), name: "b" },
      ];
      return { passes: [mapPass(ctx, operands, ([va, vb]) => ({ value: f(va!, vb!, a!.type.dtype) }))] };
    },
  };
}

const whereKernel: WgslKernel = {
  op: "where",
  emit(ctx) {
    const operands = ["c", "a", "b"].map((name, i) => ({ shape: ctx.node.inputs[i]!.type.shape, buffer: ctx.input(i), name }));
    return { passes: [mapPass(ctx, operands, ([c, a, b]) => ({ value: `select(${b}, ${a}, ${c} != 0u)` }))] };
  },
};

// ---------------------------------------------------------------------------
// Backward ops: maps over (x, y, dy) and (a, b, dy), one invocation per gradient element

/** dx of each activation from x (`v`), its output `y` and dy (`g`), as the reference's unaryGradValue. */
export const UNARY_GRAD: Record<string, (v: string, y: string, g: string, a: Attrs) => string> = {
  abs: (v, _y, g) => `select(select(0.0, -${g}, ${v} < 0.0), ${g}, ${v} > 0.0)`,
  relu: (v, _y, g) => `select(0.0, ${g}, ${v} > 0.0)`,
  sigmoid: (_v, y, g) => `${g} * ${y} * (1.0 - ${y})`,
  tanh: (_v, y, g) => `${g} * (1.0 - ${y} * ${y})`,
  exp: (_v, y, g) => `${g} * ${y}`,
  log: (v, _y, g) => `${g} / ${v}`,
  sqrt: (_v, y, g) => `${g} / (2.0 * ${y})`,
  softplus: (v, _y, g) => `${g} * sigmoid(${v})`,
  logsigmoid: (v, _y, g) => `${g} * sigmoid(-${v})`,
  gelu: (v, _y, g) => `${g} * gelu_grad(${v})`,
  leaky_relu: (v, _y, g, a) => `select(${wgslLiteral(a.alpha as number, "f32")} * ${g}, ${g}, ${v} > 0.0)`,
  elu: (v, _y, g, a) => `select(${wgslLiteral(a.alpha as number, "f32")} * exp(${v}) * ${g}, ${g}, ${v} > 0.0)`,
  // Bounds inclusive (torch.clamp).
  clip: (v, _y, g, a) => {
    const tests = [
      ...(typeof a.lo === "number" ? [`${v} >= ${wgslLiteral(a.lo, "f32")}`] : []),
      ...(typeof a.hi === "number" ? [`${v} <= ${wgslLiteral(a.hi, "f32")}`] : []),
    ];
    return tests.length ? `select(0.0, ${g}, ${tests.map((t) => `(${t})`).join(" & ")})` : g;
  },
};

const unaryGradKernel: WgslKernel = {
  op: "unary_grad",
  emit(ctx) {
    const f = UNARY_GRAD[ctx.node.attrs.fn as string]!;
    const operands = ["v", "y", "g"].map((name, i) => ({ shape: ctx.node.inputs[i]!.type.shape, buffer: ctx.input(i), name }));
    return { passes: [mapPass(ctx, operands, ([v, y, g]) => ({ value: f(v!, y!, g!, ctx.node.attrs) }), `d ${String(ctx.node.attrs.fn)}(x) / dx times dy`)] };
  },
};

/** The share of dy (`g`) owed to operand `wrt` of fn(a, b), as the reference's binaryGradValue. */
export function binaryGradValueWgsl(fn: string, wrt: number, a: string, b: string, g: string): string {
  const toA = wrt === 0;
  switch (fn) {
    case "maximum":
      return toA ? `select(0.0, ${g}, ${a} >= ${b})` : `select(${g}, 0.0, ${a} >= ${b})`;
    case "minimum":
      return toA ? `select(0.0, ${g}, ${a} <= ${b})` : `select(${g}, 0.0, ${a} <= ${b})`;
    default:
      return toA
        ? `select(${g} * ${b} * pow_js(${a}, ${b} - 1.0), 0.0, ${b} == 0.0)`
        : `select(${g} * pow_js(${a}, ${b}) * log_ieee(${a}), 0.0, (${a} == 0.0) & (${b} >= 0.0))`;
  }
}

const binaryGradKernel: WgslKernel = {
  op: "binary_grad",
  emit(ctx) {
    const { fn, wrt } = ctx.node.attrs as { fn: string; wrt: number };
    const operands = ["a", "b", "g"].map((name, i) => ({ shape: ctx.node.inputs[i]!.type.shape, buffer: ctx.input(i), name }));
    const comment = fn === "pow" ? `d pow(a, b) / d${wrt === 0 ? "a" : "b"} times dy` : `dy to ${wrt === 0 ? "a" : "b"} where it is the ${fn} (ties to a)`;
    return { passes: [mapPass(ctx, operands, ([a, b, g]) => ({ value: binaryGradValueWgsl(fn, wrt, a!, b!, g!) }), comment)] };
  },
};

export const kernels: WgslKernel[] = [
  ...Object.entries(BINARY).map(([op, f]) => binaryKernel(op, f)),
  ...Object.entries(UNARY).map(([op, f]) => unaryKernel(op, (ctx) => (v) => f(v, ctx.node.attrs, ctx.node.inputs[0]!.type.dtype))),
  whereKernel,
  unaryKernel("cast", (ctx) => castTemplate(ctx.node.inputs[0]!.type.dtype, ctx.node.attrs.dtype as DType)),
  unaryGradKernel,
  binaryGradKernel,
];

// JS kernels for the elementwise family (compiler/ops/elementwise.ts): binary
// arithmetic with NumPy broadcasting, unary activations, `where` and `cast`.
//
// Every op is a map over the output: `y0[k] = f(x0[..], x1[..], ...)`. The
// loop nest is planned at compile time from the (symbolic) shapes:
//  * operands with the output's shape share its flat index, scalars are read
//    once before the loop: one flat loop when nothing else is broadcast;
//  * otherwise size-1 output dims are dropped and neighbouring dims with the
//    same broadcast pattern are merged, then one loop per remaining dim with
//    per-operand row offsets computed in the outer loops (stride 0 for a
//    broadcast dim) and a contiguous innermost loop; an operand broadcast
//    along the innermost dim is read once per row.
//
// The i32 arithmetic wraps like int32 (`| 0`, Math.imul); f32 values are
// computed in double and rounded by the Float32Array store, as the reference's
// float64 results are compared at f32 tolerance.
//
// KernelWriter and emitMap are shared with the reduce and shape kernels.

import type { Dim } from "../../ir/dims.ts";
import type { Attrs } from "../../ir/graph.ts";
import type { DType } from "../../ir/types.ts";
import { productJs, type JsEmitCtx, type JsKernel } from "./kernel.ts";

// ---------------------------------------------------------------------------
// Code writing helpers (shared by reduce.ts and shape.ts)

/** A finite or infinite attribute number as a JS literal. */
export function jsNumber(v: number): string {
  if (Number.isNaN(v)) return "NaN";
  if (v === Infinity) return "Infinity";
  if (v === -Infinity) return "-Infinity";
  return Object.is(v, -0) ? "-0" : String(v);
}

const OPERAND = /^(?:\d+|[A-Za-z_$][\w$]*)$/;
const RESERVED = new Set(["S", "T", "Math", "NaN", "Infinity", "Number", "Float32Array", "Float64Array", "Int32Array", "Uint8Array", "undefined"]);

/** `a * b` with literal 0/1 folded; sums are parenthesised. */
export function times(a: string, b: string): string {
  if (a === "0" || b === "0") return "0";
  if (a === "1") return b;
  if (b === "1") return a;
  const wrap = (s: string) => (/[+-]/.test(s) && !OPERAND.test(s) ? `(${s})` : s);
  return `${wrap(a)} * ${wrap(b)}`;
}

/** `a + b` with literal 0 (and literal sums) folded. */
export function plus(a: string, b: string): string {
  if (a === "0") return b;
  if (b === "0") return a;
  if (/^\d+$/.test(a) && /^\d+$/.test(b)) return String(Number(a) + Number(b));
  return `${a} + ${b}`;
}

/** Runs `body` inside `for (let v = 0; v < size; v++)`, or once with index 0 when size is 1. */
export function loop(w: KernelWriter, v: string, size: string, body: (index: string) => void): void {
  if (size === "1") {
    body("0");
    return;
  }
  w.open(`for (let ${v} = 0; ${v} < ${size}; ${v}++)`);
  body(v);
  w.close();
}

/** `const name = expr;` in the body unless expr is already a plain operand; returns what to use. */
export function bind(w: KernelWriter, name: string, expr: string): string {
  if (OPERAND.test(expr)) return expr;
  w.line(`const ${name} = ${expr};`);
  return name;
}

/**
 * Builds a kernel body: constants (sizes read once from S, hoisted products,
 * scalars) go to the head, statements to the body at the current nesting.
 * Names chosen by the head are descriptive words or symbols; loop locals
 * (i0, j, v, ...) are short, so the two never collide.
 */
export class KernelWriter {
  private readonly head: string[] = [];
  private readonly body: string[] = [];
  private depth = 0;
  private readonly names = new Set<string>();
  private readonly symbols = new Map<string, string>();
  private readonly hoisted = new Map<string, string>();

  constructor(readonly ctx: JsEmitCtx) {}

  /** A dim as a JS operand: a literal, a symbol read once from S, or a const computed once. */
  dim(d: Dim, hint = "size"): string {
    return this.hoist(this.ctx.dim(d), hint);
  }

  /** The product of dims as a JS operand (literals folded). */
  numel(dims: readonly Dim[], hint: string): string {
    return this.product(dims.map((d) => this.dim(d)), hint);
  }

  /** The product of operands as a JS operand. */
  product(sizes: readonly string[], hint: string): string {
    return sizes.includes("0") ? "0" : this.hoist(productJs(sizes), hint);
  }

  /**
   * An expression over S as an operand: symbols become consts, anything but a
   * literal or a name is bound to a const (once per distinct expression).
   */
  hoist(expr: string, hint: string): string {
    const e = expr.replace(/\bS\.([A-Za-z_$][\w$]*)/g, (_m, name: string) => this.symbol(name));
    if (OPERAND.test(e)) return e;
    let name = this.hoisted.get(e);
    if (!name) {
      name = this.declare(hint, e);
      this.hoisted.set(e, name);
    }
    return name;
  }

  /** `const <hint> = expr;` in the head; returns the name. */
  declare(hint: string, expr: string): string {
    const name = this.fresh(hint);
    this.head.push(`const ${name} = ${expr};`);
    return name;
  }

  /** A statement in the head (after the consts declared so far). */
  headLine(s: string): void {
    this.head.push(s);
  }

  private symbol(name: string): string {
    let local = this.symbols.get(name);
    if (!local) {
      local = this.fresh(/^[A-Z][\w$]*$/.test(name) && !RESERVED.has(name) ? name : `sym_${name.replace(/[^\w$]/g, "_")}`);
      this.symbols.set(name, local);
      this.head.push(`const ${local} = S.${name};`);
    }
    return local;
  }

  private fresh(hint: string): string {
    let name = hint;
    for (let k = 2; this.names.has(name); k++) name = `${hint}${k}`;
    this.names.add(name);
    return name;
  }

  line(s: string): void {
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

  toString(): string {
    return [...this.head, ...this.body].join("\n");
  }
}

/** A map's per-element computation: statements (over the operand variables) and the stored value. */
export interface MapBody {
  readonly pre?: readonly string[];
  readonly value: string;
  /** Printed once above the loop. */
  readonly comment?: string;
  /** Values stored at the same index into further outputs (`y1`, ...; same shape as the output). */
  readonly also?: readonly { readonly output: string; readonly value: string }[];
}

/** Produces the body given, for each operand, the JS expression of its value. */
export type MapTemplate = (operands: readonly string[]) => MapBody;

export interface MapOperand {
  readonly shape: readonly Dim[];
  /** Buffer parameter (x0, ...). */
  readonly buffer: string;
  /** Variable name for its value in the body (a, b, v, ...). */
  readonly name: string;
}

function occurrences(text: string, name: string): number {
  return text.match(new RegExp(`(?<![\\w$.])${name.replace(/\$/g, "\\$")}(?![\\w$])`, "g"))?.length ?? 0;
}

/**
 * `out[k] = f(operands at k)` over `outShape` with NumPy broadcasting (see the
 * file comment for the loop plan).
 */
export function emitMap(w: KernelWriter, outShape: readonly Dim[], output: string, operands: readonly MapOperand[], f: MapTemplate): void {
  const rank = outShape.length;
  // Output dims of size 1 drop out; neighbours with the same broadcast pattern merge.
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
  const sizes = axes.map((a, j) => w.numel(a.dims, axes.length === 1 ? "n" : `d${j}`));
  const isScalar = operands.map((_, k) => axes.every((a) => a.broadcast[k]));
  const isFull = operands.map((_, k) => axes.every((a) => !a.broadcast[k]));
  // Scalars are read once.
  const values: string[] = operands.map((op, k) => (isScalar[k] ? w.declare(op.name, `${op.buffer}[0]`) : ""));
  const template = f(operands.map((op, k) => (isScalar[k] ? values[k]! : op.name)));
  if (template.comment) w.line(`// ${template.comment}`);

  if (axes.length <= 1) {
    const access = operands.map((op, k) => (isScalar[k] ? values[k]! : `${op.buffer}[i]`));
    if (axes.length === 0) {
      emitStore(w, output, "0", operands, f, access, isScalar);
    } else {
      emitStore(w, output, "i", operands, f, access, isScalar, `for (let i = 0; i < ${sizes[0]}; i++)`);
    }
    return;
  }

  w.line(`// ${shapeText(outShape)} <- ${operands.map((op) => `${op.buffer} ${shapeText(op.shape)}`).join(", ")} (stride 0 along broadcast dims)`);
  // Stride of each operand along each merged axis (null: broadcast).
  const strides = operands.map((_, k) => {
    const s: (string | null)[] = [];
    if (isScalar[k] || isFull[k]) return axes.map((a) => (a.broadcast[k] ? null : ""));
    let acc: string[] = [];
    for (let j = axes.length - 1; j >= 0; j--) {
      if (axes[j]!.broadcast[k]) s[j] = null;
      else {
        s[j] = acc.length ? w.product(acc, `stride${operands[k]!.name.toUpperCase()}${j}`) : "1";
        acc = [...acc, sizes[j]!];
      }
    }
    return s;
  });
  const outStrides = axes.map((_, j) => (j === axes.length - 1 ? "1" : w.product(sizes.slice(j + 1), `row${j}`)));
  let outOffset = "0";
  const offsets = operands.map(() => "0");
  const last = axes.length - 1;
  for (let j = 0; j < last; j++) {
    const i = `i${j}`;
    w.open(`for (let ${i} = 0; ${i} < ${sizes[j]}; ${i}++)`);
    const o = `io${j}`;
    w.line(`const ${o} = ${plus(outOffset, times(i, outStrides[j]!))};`);
    outOffset = o;
    operands.forEach((op, k) => {
      if (isScalar[k] || strides[k]![j] === null) return;
      if (isFull[k]) {
        offsets[k] = o;
        return;
      }
      const expr = plus(offsets[k]!, times(i, strides[k]![j]!));
      if (OPERAND.test(expr)) offsets[k] = expr;
      else {
        offsets[k] = `i${op.name}${j}`;
        w.line(`const ${offsets[k]} = ${expr};`);
      }
    });
  }
  // Innermost: contiguous; operands broadcast along it are read once per row.
  const i = `i${last}`;
  const access = operands.map((op, k) => {
    if (isScalar[k]) return values[k]!;
    if (strides[k]![last] === null) {
      w.line(`const ${op.name} = ${op.buffer}[${offsets[k]}];`);
      return op.name;
    }
    return `${op.buffer}[${plus(offsets[k]!, i)}]`;
  });
  const bound = operands.map((_, k) => isScalar[k]! || strides[k]![last] === null);
  emitStore(w, output, plus(outOffset, i), operands, f, access, bound, `for (let ${i} = 0; ${i} < ${sizes[last]}; ${i}++)`);
  for (let j = 0; j < last; j++) w.close();
}

/**
 * `output[index] = value;` (and the body's further stores), inside `loop` when given. An operand read once is
 * inlined; one read several times (or by the template's statements) is
 * bound to a const first. `bound[k]`: operand k is already a variable.
 */
function emitStore(w: KernelWriter, output: string, index: string, operands: readonly MapOperand[], f: MapTemplate, access: readonly string[], bound: readonly boolean[], loop?: string): void {
  const probe = f(operands.map((op) => op.name));
  const text = [...(probe.pre ?? []), ...(probe.also ?? []).map((s) => s.value), probe.value].join("\n");
  const stmts: string[] = [];
  const args = operands.map((op, k) => {
    if (bound[k]) return access[k]!;
    if (!probe.pre?.length && occurrences(text, op.name) <= 1) return access[k]!;
    stmts.push(`const ${op.name} = ${access[k]};`);
    return op.name;
  });
  const body = f(args);
  stmts.push(...(body.pre ?? []), ...(body.also ?? []).map((s) => `${s.output}[${index}] = ${s.value};`), `${output}[${index}] = ${body.value};`);
  if (!loop) {
    for (const s of stmts) w.line(s);
  } else if (stmts.length === 1) {
    w.line(`${loop} ${stmts[0]}`);
  } else {
    w.open(loop);
    for (const s of stmts) w.line(s);
    w.close();
  }
}

function shapeText(shape: readonly Dim[]): string {
  return `[${shape.map((d) => d.toString()).join(", ")}]`;
}

// ---------------------------------------------------------------------------
// Op templates

export type Binary = (a: string, b: string, dtype: DType) => string;

export const BINARY: Record<string, Binary> = {
  add: (a, b, t) => (t === "i32" ? `(${a} + ${b}) | 0` : `${a} + ${b}`),
  sub: (a, b, t) => (t === "i32" ? `(${a} - ${b}) | 0` : `${a} - ${b}`),
  mul: (a, b, t) => (t === "i32" ? `Math.imul(${a}, ${b})` : `${a} * ${b}`),
  div: (a, b) => `${a} / ${b}`,
  // NaN propagates (torch.maximum): a NaN `a` is kept, a NaN `b` fails the comparison and is taken.
  maximum: (a, b, t) => (t === "i32" ? `${a} > ${b} ? ${a} : ${b}` : `${a} > ${b} || ${a} !== ${a} ? ${a} : ${b}`),
  minimum: (a, b, t) => (t === "i32" ? `${a} < ${b} ? ${a} : ${b}` : `${a} < ${b} || ${a} !== ${a} ? ${a} : ${b}`),
  pow: (a, b) => `Math.pow(${a}, ${b})`,
};

// Numerical Recipes' erfcc (Chebyshev fit): relative error < 1.2e-7 for every
// argument, including the tail, which is what f32 needs.
const ERFC_POLY =
  "-az * az - 1.26551223 + t * (1.00002368 + t * (0.37409196 + t * (0.09678418 + t * (-0.18628806 + t * (0.27886807 + t * (-1.13520398 + t * (1.48851587 + t * (-0.82215223 + t * 0.17087277))))))))";

export type Unary = (v: string, attrs: Attrs, dtype: DType) => MapBody;

export const UNARY: Record<string, Unary> = {
  neg: (v, _a, t) => ({ value: t === "i32" ? `-${v} | 0` : `-${v}` }),
  abs: (v, _a, t) => ({ value: t === "i32" ? `Math.abs(${v}) | 0` : `Math.abs(${v})` }),
  relu: (v) => ({ value: `${v} > 0 || ${v} !== ${v} ? ${v} : 0` }),
  // 1 / (1 + e^-v) equals e^v / (1 + e^v) and saturates to 0 without NaN when e^-v overflows.
  sigmoid: (v) => ({ value: `1 / (1 + Math.exp(-${v}))` }),
  tanh: (v) => ({ value: `Math.tanh(${v})` }),
  exp: (v) => ({ value: `Math.exp(${v})` }),
  log: (v) => ({ value: `Math.log(${v})` }),
  sqrt: (v) => ({ value: `Math.sqrt(${v})` }),
  softplus: (v) => ({ value: `(${v} > 0 ? ${v} : 0) + Math.log1p(Math.exp(-Math.abs(${v})))` }),
  logsigmoid: (v) => ({ value: `(${v} < 0 ? ${v} : 0) - Math.log1p(Math.exp(-Math.abs(${v})))` }),
  gelu: (v) => ({
    comment: "gelu(v) = v/2 * erfc(-v/√2); erfc by Numerical Recipes' erfcc (relative error < 1.2e-7)",
    pre: [`const z = -0.7071067811865476 * ${v}, az = Math.abs(z), t = 1 / (1 + 0.5 * az);`, `const tail = t * Math.exp(${ERFC_POLY});`],
    value: `0.5 * ${v} * (z >= 0 ? tail : 2 - tail)`,
  }),
  leaky_relu: (v, a) => ({ value: `${v} >= 0 ? ${v} : ${jsNumber(a.alpha as number)} * ${v}` }),
  elu: (v, a) => ({ value: `${v} > 0 ? ${v} : ${jsNumber(a.alpha as number)} * Math.expm1(${v})` }),
  // NaN fails both comparisons and stays NaN (torch.clamp).
  clip: (v, a) => {
    const lo = typeof a.lo === "number" ? jsNumber(a.lo) : null;
    const hi = typeof a.hi === "number" ? jsNumber(a.hi) : null;
    const upper = hi === null ? v : `${v} > ${hi} ? ${hi} : ${v}`;
    return { value: lo === null ? upper : `${v} < ${lo} ? ${lo} : ${upper}` };
  },
};

/** Conversion of one value, as castValue in the reference. */
export function castTemplate(from: DType, to: DType): Unary {
  if (to === "bool") return (v) => ({ value: from === "f32" ? `${v} !== 0 && ${v} === ${v} ? 1 : 0` : `${v} !== 0 ? 1 : 0` });
  // ToInt32 truncates toward zero, wraps out-of-range values and sends NaN/±Infinity to 0.
  if (to === "i32" && from === "f32") return (v) => ({ value: `${v} | 0` });
  // Widening (bool -> i32/f32) is exact; i32 -> f32 rounds in the Float32Array store.
  return (v) => ({ value: v });
}

function unaryKernel(op: string, template: (ctx: JsEmitCtx) => Unary): JsKernel {
  return {
    op,
    emit(ctx) {
      const w = new KernelWriter(ctx);
      const x = ctx.node.inputs[0]!;
      const f = template(ctx);
      emitMap(w, ctx.node.outputs[0]!.type.shape, ctx.output(0), [{ shape: x.type.shape, buffer: ctx.input(0), name: "v" }], ([v]) =>
        f(v!, ctx.node.attrs, x.type.dtype),
      );
      return w.toString();
    },
  };
}

function binaryKernel(op: string, f: Binary): JsKernel {
  return {
    op,
    emit(ctx) {
      const w = new KernelWriter(ctx);
      const [a, b] = ctx.node.inputs;
      const dtype = a!.type.dtype;
      const operands = [
        { shape: a!.type.shape, buffer: ctx.input(0), name: "a" },
        { shape: b!.type.shape, buffer: ctx.input(1), name: "b" },
      ];
      emitMap(w, ctx.node.outputs[0]!.type.shape, ctx.output(0), operands, ([va, vb]) => ({ value: f(va!, vb!, dtype) }));
      return w.toString();
    },
  };
}

const whereKernel: JsKernel = {
  op: "where",
  emit(ctx) {
    const w = new KernelWriter(ctx);
    const operands = ["c", "a", "b"].map((name, i) => ({ shape: ctx.node.inputs[i]!.type.shape, buffer: ctx.input(i), name }));
    emitMap(w, ctx.node.outputs[0]!.type.shape, ctx.output(0), operands, ([c, a, b]) => ({ value: `${c} ? ${a} : ${b}` }));
    return w.toString();
  },
};

// ---------------------------------------------------------------------------
// Backward ops: maps like the forward ones, over (x, y, dy) and (a, b, dy)

/** dx of each activation from x (`v`), its output `y` and dy (`g`), as the reference's unaryGradValue. */
export const UNARY_GRAD: Record<string, (v: string, y: string, g: string, a: Attrs) => MapBody> = {
  abs: (v, _y, g) => ({ value: `${v} > 0 ? ${g} : ${v} < 0 ? -${g} : 0` }),
  relu: (v, _y, g) => ({ value: `${v} > 0 ? ${g} : 0` }),
  sigmoid: (_v, y, g) => ({ value: `${g} * ${y} * (1 - ${y})` }),
  tanh: (_v, y, g) => ({ value: `${g} * (1 - ${y} * ${y})` }),
  exp: (_v, y, g) => ({ value: `${g} * ${y}` }),
  log: (v, _y, g) => ({ value: `${g} / ${v}` }),
  sqrt: (_v, y, g) => ({ value: `${g} / (2 * ${y})` }),
  // softplus' = σ(v), logsigmoid' = σ(-v).
  softplus: (v, _y, g) => ({ value: `${g} / (1 + Math.exp(-${v}))` }),
  logsigmoid: (v, _y, g) => ({ value: `${g} / (1 + Math.exp(${v}))` }),
  gelu: (v, _y, g) => ({
    comment: "gelu'(v) = Φ(v) + v·φ(v), Φ(v) = erfc(-v/√2)/2 by Numerical Recipes' erfcc",
    pre: [`const z = -0.7071067811865476 * ${v}, az = Math.abs(z), t = 1 / (1 + 0.5 * az);`, `const tail = t * Math.exp(${ERFC_POLY});`],
    value: `${g} * (0.5 * (z >= 0 ? tail : 2 - tail) + ${v} * 0.3989422804014327 * Math.exp(-0.5 * ${v} * ${v}))`,
  }),
  leaky_relu: (v, _y, g, a) => ({ value: `${v} > 0 ? ${g} : ${jsNumber(a.alpha as number)} * ${g}` }),
  elu: (v, _y, g, a) => ({ value: `${v} > 0 ? ${g} : ${jsNumber(a.alpha as number)} * Math.exp(${v}) * ${g}` }),
  // Bounds inclusive (torch.clamp); NaN fails both tests and gets 0.
  clip: (v, _y, g, a) => {
    const tests = [
      ...(typeof a.lo === "number" ? [`${v} >= ${jsNumber(a.lo)}`] : []),
      ...(typeof a.hi === "number" ? [`${v} <= ${jsNumber(a.hi)}`] : []),
    ];
    return { value: tests.length ? `${tests.join(" && ")} ? ${g} : 0` : g };
  },
};

const unaryGradKernel: JsKernel = {
  op: "unary_grad",
  emit(ctx) {
    const w = new KernelWriter(ctx);
    const f = UNARY_GRAD[ctx.node.attrs.fn as string]!;
    const operands = ["v", "y", "g"].map((name, i) => ({ shape: ctx.node.inputs[i]!.type.shape, buffer: ctx.input(i), name }));
    emitMap(w, ctx.node.outputs[0]!.type.shape, ctx.output(0), operands, ([v, y, g]) => f(v!, y!, g!, ctx.node.attrs));
    return w.toString();
  },
};

/** The share of dy (`g`) owed to operand `wrt` of fn(a, b), as the reference's binaryGradValue. */
export function binaryGradValueJs(fn: string, wrt: number, a: string, b: string, g: string): string {
  const toA = wrt === 0;
  switch (fn) {
    case "maximum":
      return `${a} >= ${b} ? ${toA ? g : 0} : ${toA ? 0 : g}`;
    case "minimum":
      return `${a} <= ${b} ? ${toA ? g : 0} : ${toA ? 0 : g}`;
    default:
      return toA ? `${b} === 0 ? 0 : ${g} * ${b} * Math.pow(${a}, ${b} - 1)` : `${a} === 0 && ${b} >= 0 ? 0 : ${g} * Math.pow(${a}, ${b}) * Math.log(${a})`;
  }
}

const binaryGradKernel: JsKernel = {
  op: "binary_grad",
  emit(ctx) {
    const w = new KernelWriter(ctx);
    const { fn, wrt } = ctx.node.attrs as { fn: string; wrt: number };
    const operands = ["a", "b", "g"].map((name, i) => ({ shape: ctx.node.inputs[i]!.type.shape, buffer: ctx.input(i), name }));
    emitMap(w, ctx.node.outputs[0]!.type.shape, ctx.output(0), operands, ([a, b, g]) => ({ value: binaryGradValueJs(fn, wrt, a!, b!, g!) }));
    return w.toString();
  },
};

export const kernels: JsKernel[] = [
  ...Object.entries(BINARY).map(([op, f]) => binaryKernel(op, f)),
  ...Object.entries(UNARY).map(([op, f]) => unaryKernel(op, () => f)),
  whereKernel,
  unaryKernel("cast", (ctx) => castTemplate(ctx.node.inputs[0]!.type.dtype, ctx.node.attrs.dtype as DType)),
  unaryGradKernel,
  binaryGradKernel,
];

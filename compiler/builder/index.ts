// The typed TypeScript builder: the .cnn language as a TypeScript API,
// producing the same IR as the DSL because every call goes through the same
// ModelState (builtins bound, checked and lowered by `callBuiltin`, layers
// named by DSL.md §5). Statements map one-to-one:
//
//   .cnn                                         builder
//   input x: f32[N, 1, 28, 28]                   const x = m.input("x", f32(["N", 1, 28, 28]))
//   c1 = conv2d(x, filters=6, kernel=5) |> relu  const c1 = m.let("c1", () => m.conv2d(x, { filters: 6, kernel: 5 }).relu())
//   f6: f32[N, 84] = dense(f5, 84)               const f6 = m.let("f6", f32(["N", 84]), () => m.dense(f5, 84))
//   param w: f32[4, 4] = zeros                   const w = m.param("w", f32([4, 4]), "zeros")
//   a + b, a * 2, -a, a @ b                      a.add(b), a.mul(2), a.neg(), a.matmul(b)
//   c1.weight                                    m.parameter("c1.weight")
//   output probs = softmax(logits, axis=-1)      m.output("probs", () => m.softmax(logits, { axis: -1 }))
//   loss xent = cross_entropy(logits, labels)    m.loss("xent", () => m.cross_entropy(logits, labels))
//   optimizer adam(lr=0.001)                     m.optimizer("adam", { lr: 0.001 })
//   def block(x, c) { ... }                      const block = m.def("block", (x: T, c: number) => { ... })
//
// `m.let(name, () => ...)` is the binding statement: every call inside the
// callback belongs to binding `name`, so layers that own parameters are named
// after it (`c1.weight`, `c1.1.weight` for a second owning call, or `name:`).
// Errors are the DSL's CompileErrors, located at the caller's TypeScript line.

import { CompileError, type Diagnostic, type DiagnosticCode, type Span } from "../diagnostics.ts";
import { Dim } from "../ir/dims.ts";
import type { Graph, InitSpec, Value } from "../ir/graph.ts";
import { typeToString, typesEqual, type DType, type TensorType } from "../ir/types.ts";
import { verifyGraph } from "../ir/verifier.ts";
import { annotationMismatch, closest, ModelState, type CallSite, type KeywordArg } from "../lower/model-state.ts";
import type { ArgValue } from "../ops/args.ts";
import { builtinNames, getBuiltin } from "../ops/index.ts";
import { glorotInit, heInit } from "../../runtime/init.ts";
import type * as O from "./options.ts";
import { callerSpan } from "./span.ts";

export type * from "./options.ts";
export { Dim };
export type { TensorType, DType };

// ---------------------------------------------------------------- types

const IDENT = /^[A-Za-z_][A-Za-z0-9_]*$/;

function builderError(code: DiagnosticCode, message: string, span: Span | undefined, extra: { notes?: readonly string[]; hint?: string } = {}): never {
  throw new CompileError([{ code, severity: "error", message, span, notes: extra.notes, hint: extra.hint }]);
}

function typeOf(dtype: DType, shape: readonly (number | string | Dim)[]): TensorType {
  return {
    dtype,
    shape: shape.map((d) => {
      if (d instanceof Dim) return d;
      if (typeof d === "number") {
        if (!Number.isInteger(d)) builderError("E501", `a dim must be an integer, found ${d}`, callerSpan());
        return Dim.of(d);
      }
      if (!IDENT.test(d)) {
        builderError("E501", `a dim must be an integer, a symbol name or a Dim, found "${d}"`, callerSpan(), {
          hint: 'write compound sizes with Dim, e.g. Dim.sym("L").sub(2) for L - 2',
        });
      }
      return Dim.sym(d);
    }),
  };
}

/** `f32[...]`: dims are integers, symbol names ("N") or Dims (`Dim.sym("L").sub(2)`). */
export const f32 = (shape: readonly (number | string | Dim)[]): TensorType => typeOf("f32", shape);
export const i32 = (shape: readonly (number | string | Dim)[]): TensorType => typeOf("i32", shape);
export const bool = (shape: readonly (number | string | Dim)[]): TensorType => typeOf("bool", shape);

/** Initialisers for `m.param` (besides "zeros", "ones", "glorot", "he"). */
export const normal = (mean: number, std: number): O.Init => ({ kind: "normal", mean, std });
export const uniform = (lo: number, hi: number): O.Init => ({ kind: "uniform", lo, hi });

/** A builtin argument as a JS value; integers count as ints, strings as strings. */
export type Arg = T | number | string | boolean | null | undefined | Dim | readonly Arg[];

// ---------------------------------------------------------------- tensors

/**
 * A tensor value of a model under construction: its IR value and static type,
 * with chainable methods for elementwise ops, reductions and shapes.
 */
export class T {
  /** Made by the builder only; `model` is the builder the value belongs to. */
  constructor(
    readonly model: ModelBuilder,
    readonly value: Value,
  ) {}

  get type(): TensorType {
    return this.value.type;
  }
  get dtype(): DType {
    return this.value.type.dtype;
  }
  get shape(): readonly Dim[] {
    return this.value.type.shape;
  }
  get rank(): number {
    return this.value.type.shape.length;
  }
  /** The user's name for the value (binding, input or parameter), if it has one. */
  get name(): string | undefined {
    return this.model.nameOf(this);
  }
  toString(): string {
    return typeToString(this.value.type);
  }

  // Arithmetic: the DSL's operators.
  add(other: T | number): T { return this.model.add(this, other); }
  sub(other: T | number): T { return this.model.sub(this, other); }
  mul(other: T | number): T { return this.model.mul(this, other); }
  div(other: T | number): T { return this.model.div(this, other); }
  neg(): T { return this.model.neg(this); }
  matmul(other: T): T { return this.model.matmul(this, other); }

  // Elementwise builtins.
  relu(): T { return this.model.relu(this); }
  sigmoid(): T { return this.model.sigmoid(this); }
  tanh(): T { return this.model.tanh(this); }
  exp(): T { return this.model.exp(this); }
  log(): T { return this.model.log(this); }
  sqrt(): T { return this.model.sqrt(this); }
  abs(): T { return this.model.abs(this); }
  softplus(): T { return this.model.softplus(this); }
  gelu(): T { return this.model.gelu(this); }
  logsigmoid(): T { return this.model.logsigmoid(this); }
  leaky_relu(alpha?: number): T { return this.model.leaky_relu(this, alpha); }
  elu(alpha?: number): T { return this.model.elu(this, alpha); }
  clip(lo: number, hi: number): T { return this.model.clip(this, lo, hi); }
  pow(p: T | number): T { return this.model.pow(this, p); }
  maximum(other: T | number): T { return this.model.maximum(this, other); }
  minimum(other: T | number): T { return this.model.minimum(this, other); }
  cast(dtype: DType): T { return this.model.cast(this, dtype); }

  // Reductions and normalisers.
  sum(o?: O.ReduceOptions): T { return this.model.sum(this, o); }
  mean(o?: O.ReduceOptions): T { return this.model.mean(this, o); }
  max(o?: O.ReduceOptions): T { return this.model.max(this, o); }
  min(o?: O.ReduceOptions): T { return this.model.min(this, o); }
  logsumexp(o?: O.ReduceOptions): T { return this.model.logsumexp(this, o); }
  argmax(o: O.ArgmaxOptions): T { return this.model.argmax(this, o); }
  softmax(o?: O.AxisOptions): T { return this.model.softmax(this, o); }
  log_softmax(o?: O.AxisOptions): T { return this.model.log_softmax(this, o); }

  // Shapes.
  reshape(shape: readonly O.Size[]): T { return this.model.reshape(this, shape); }
  flatten(o?: O.FlattenOptions): T { return this.model.flatten(this, o); }
  transpose(perm: readonly number[]): T { return this.model.transpose(this, perm); }
  slice(o: O.SliceOptions): T { return this.model.slice(this, o); }
  pad(padding: O.Padding, o?: O.PadOptions): T { return this.model.pad(this, padding, o); }
  upsample(scale: O.Ints, o?: O.UpsampleOptions): T { return this.model.upsample(this, scale, o); }

  // Noise.
  dropout(p: number): T { return this.model.dropout(this, p); }
  gaussian_noise(std: number): T { return this.model.gaussian_noise(this, std); }
}

// ---------------------------------------------------------------- model

/** Names visible in the model or in one call of a def, and the namespace of their parameters. */
interface Scope {
  readonly prefix: string;
  readonly names: Map<string, Value>;
  /** Set inside a def call: the def's name and where it was called (for notes). */
  readonly def?: { readonly name: string; readonly span?: Span };
}

const OPTIMIZER_ARGS: Record<string, readonly string[]> = {
  sgd: ["lr", "momentum", "weight_decay"],
  adam: ["lr", "beta1", "beta2", "eps", "weight_decay"],
};
const OPTIMIZER_DEFAULTS: Record<string, Record<string, number>> = {
  sgd: { momentum: 0, weight_decay: 0 },
  adam: { beta1: 0.9, beta2: 0.999, eps: 1e-8, weight_decay: 0 },
};

/** Start a model: `const m = model("LeNet5")`. */
export function model(name: string): ModelBuilder {
  return new ModelBuilder(name, callerSpan("model".length));
}

export class ModelBuilder {
  private readonly state: ModelState;
  private readonly scopes: Scope[] = [{ prefix: "", names: new Map() }];
  /** The binding whose callback is running (`m.let` / `m.output` / `m.loss`). */
  private binding: string | undefined;
  private built = false;

  constructor(readonly name: string, span?: Span) {
    if (!IDENT.test(name)) builderError("E501", `a model name must be an identifier, found "${name}"`, span);
    this.state = new ModelState(name, span);
  }

  /** The graph built so far (complete after `build()`). */
  get graph(): Graph {
    return this.state.graph;
  }

  /** @internal The user's name for a value. */
  nameOf(t: T): string | undefined {
    return this.state.valueNames.get(t.value);
  }

  // ------------------------------------------------------------ statements

  /** `input name: type`. */
  input(name: string, type: TensorType): T {
    const span = callerSpan("input".length);
    this.statement("input", span);
    if (this.scope.def) builderError("E306", "an input cannot be declared inside a def", span, { hint: "pass the tensor as an argument" });
    this.checkName(name, span);
    if (this.lookup(name)) builderError("E302", `'${name}' is already bound`, span);
    const v = this.state.addInput(name, type, span);
    this.scope.names.set(name, v);
    return this.wrap(v);
  }

  /** `param name: type = init` (default glorot); inside a def it is namespaced by the calling binding. */
  param(name: string, type: TensorType, init: O.Init = "glorot"): T {
    const span = callerSpan("param".length);
    this.statement("param", span);
    this.checkName(name, span);
    for (const d of type.shape) {
      if (!d.isConst()) builderError("E212", `parameter '${name}' must have a static shape, found ${typeToString(type)}`, span, { hint: "parameter shapes cannot use symbols such as N" });
    }
    const spec = resolveInit(init, type, span);
    if (this.scope.names.has(name)) builderError("E302", `'${name}' is already bound`, span);
    const v = this.state.addParam(this.scope.prefix + name, type, spec, true, span);
    this.bind(name, v, span);
    return this.wrap(v);
  }

  /**
   * `name = expr` / `name: annotation = expr`: runs `build`, whose calls all
   * belong to binding `name` (so its layers are `name.weight`, `name.1.weight`...).
   */
  let(name: string, build: () => T): T;
  let(name: string, annotation: TensorType, build: () => T): T;
  let(name: string, a: TensorType | (() => T), b?: () => T): T {
    const span = callerSpan("let".length);
    this.statement("let", span);
    this.checkName(name, span);
    const [annotation, build] = typeof a === "function" ? [undefined, a] : [a, b!];
    const t = this.underBinding(name, build, span);
    if (annotation) checkAnnotation(name, annotation, t.value, span);
    this.bind(name, t.value, span);
    return t;
  }

  /** `output name = expr` (a callback or an existing tensor), optionally annotated. */
  output(name: string, value: T | (() => T)): T;
  output(name: string, annotation: TensorType, value: T | (() => T)): T;
  output(name: string, a: TensorType | T | (() => T), b?: T | (() => T)): T {
    const span = callerSpan("output".length);
    return a instanceof T || typeof a === "function" ? this.addOutput("output", name, undefined, a, span) : this.addOutput("output", name, a, b!, span);
  }

  /** `loss name = expr`: a scalar f32 objective; the module then gets `trainStep`. */
  loss(name: string, value: T | (() => T)): T {
    return this.addOutput("loss", name, undefined, value, callerSpan("loss".length));
  }

  /** `optimizer sgd(...)` / `optimizer adam(...)`: the default optimizer of `trainStep`. */
  optimizer<K extends keyof O.OptimizerOptions>(kind: K, options: O.OptimizerOptions[K]): void {
    const span = callerSpan("optimizer".length);
    this.statement("optimizer", span);
    if (this.scope.def) builderError("E306", "an optimizer belongs in a model, not in a def", span);
    const allowed = OPTIMIZER_ARGS[kind];
    if (!allowed) builderError("E303", `unknown optimizer '${kind}'`, span, { hint: "use sgd(lr, momentum=0, weight_decay=0) or adam(lr, ...)" });
    const values: Record<string, number> = { ...OPTIMIZER_DEFAULTS[kind] };
    for (const [k, v] of Object.entries(options)) {
      if (v === undefined) continue;
      if (!allowed.includes(k)) {
        const near = closest(k, allowed);
        builderError("E402", `${kind} has no argument '${k}'`, span, { hint: near ? `did you mean '${near}'?` : `its arguments are ${allowed.join(", ")}` });
      }
      if (typeof v !== "number") builderError("E403", `expected a number, found ${typeof v}`, span);
      values[k] = v;
    }
    if (values.lr === undefined) builderError("E401", `${kind} needs a learning rate`, span, { hint: `write ${kind}(lr=0.01)` });
    for (const [k, v] of Object.entries(values)) {
      const bad = k === "lr" ? !(v > 0) : k === "beta1" || k === "beta2" ? !(v >= 0 && v < 1) : k === "eps" ? !(v > 0) : !(v >= 0);
      if (bad) builderError("E404", `${kind} ${k}=${v} is out of range`, span);
    }
    if (this.graph.optimizer) builderError("E302", "a model has at most one optimizer", span);
    this.graph.optimizer = { kind, options: values };
  }

  /**
   * `def name(...) { ... }`: a reusable block. Calling the returned function
   * inside `m.let("r1", ...)` namespaces the parameters it creates (`r1.c1.weight`);
   * calls in the block outside any `m.let` belong to its `return`.
   */
  def<A extends unknown[], R>(name: string, body: (...args: A) => R): (...args: A) => R {
    const defSpan = callerSpan("def".length);
    if (!IDENT.test(name)) builderError("E501", `a def name must be an identifier, found "${name}"`, defSpan);
    if (getBuiltin(name)) builderError("E302", `def '${name}' is the name of a builtin`, defSpan);
    return (...args: A): R => {
      const span = callerSpan(name.length);
      this.guard(span);
      const site = this.site();
      if (site.binding === "") {
        builderError("E501", `def '${name}' must be called inside m.let(...) (or m.output/m.loss), whose name namespaces its parameters`, span, {
          hint: `write m.let("b1", () => ${name}(...))`,
        });
      }
      const scope: Scope = { prefix: this.state.defNamespace(site), names: new Map(), def: { name, span } };
      const saved = this.binding;
      this.scopes.push(scope);
      this.binding = undefined;
      try {
        return body(...args);
      } catch (e) {
        if (e instanceof CompileError && span) {
          const where = `in def '${name}' called at ${span.file}:${span.line}:${span.col}`;
          throw new CompileError(e.diagnostics.map((d) => ({ ...d, notes: [...(d.notes ?? []), where] })));
        }
        throw e;
      } finally {
        this.scopes.pop();
        this.binding = saved;
      }
    };
  }

  /** `c1.weight`: a parameter or buffer created earlier (looked up in the current def's namespace first). */
  parameter(path: string): T {
    const span = callerSpan("parameter".length);
    this.guard(span);
    const params = this.graph.params;
    const found = params.get(this.scope.prefix + path) ?? params.get(path);
    if (found) return this.wrap(found.value);
    const dot = path.lastIndexOf(".");
    if (dot < 0) {
      const near = closest(path, [...params.keys()]);
      builderError("E307", `there is no parameter '${path}'`, span, { hint: near ? `did you mean '${near}'?` : undefined });
    }
    const layer = path.slice(0, dot);
    const ofLayer = [...params.keys()].filter((k) => k.startsWith(this.scope.prefix + layer + ".") || k.startsWith(layer + "."));
    return builderError("E307", `'${layer}' has no parameter or buffer '${path.slice(dot + 1)}'`, span, {
      hint: ofLayer.length ? `it has ${ofLayer.join(", ")}` : `no layer named '${layer}' has created parameters before this call`,
    });
  }

  /** Finish: verify and return the IR graph. The builder cannot be used afterwards. */
  build(): Graph {
    const span = callerSpan("build".length);
    this.statement("build", span);
    const problems = verifyGraph(this.graph);
    if (problems.length) throw new Error(`internal: IR of model ${this.name} fails verification:\n  ${problems.join("\n  ")}`);
    this.built = true;
    return this.graph;
  }

  // ------------------------------------------------------------ generic calls

  /** Call any builtin by its DSL name: `m.call("conv2d", [x], { filters: 6, kernel: 5 })`. */
  call(callee: string, positional: readonly Arg[] = [], keywords: Readonly<Record<string, Arg>> = {}): T {
    return this.invoke(callee, positional, keywords);
  }

  // ------------------------------------------------------------ operators

  /** `a + b` (NumPy broadcasting; a number becomes a scalar of the other side's type). */
  add(a: T | number, b: T | number): T { return this.operator("add", "+", a, b); }
  /** `a - b` */
  sub(a: T | number, b: T | number): T { return this.operator("sub", "-", a, b); }
  /** `a * b` */
  mul(a: T | number, b: T | number): T { return this.operator("mul", "*", a, b); }
  /** `a / b` */
  div(a: T | number, b: T | number): T { return this.operator("div", "/", a, b); }
  /** `-x` */
  neg(x: T): T {
    const span = callerSpan("neg".length);
    this.guard(span);
    const v = this.tensorOf(x, span);
    return this.wrap(this.state.emitOp("neg", [v], {}, span, "unary '-'")[0]!);
  }

  // ------------------------------------------------------------ builtins (DSL.md §6)

  conv1d(x: T, o: O.ConvOptions): T { return this.invoke("conv1d", [x], o); }
  conv2d(x: T, o: O.ConvOptions): T { return this.invoke("conv2d", [x], o); }
  conv3d(x: T, o: O.ConvOptions): T { return this.invoke("conv3d", [x], o); }
  conv_transpose1d(x: T, o: O.ConvTransposeOptions): T { return this.invoke("conv_transpose1d", [x], o); }
  conv_transpose2d(x: T, o: O.ConvTransposeOptions): T { return this.invoke("conv_transpose2d", [x], o); }
  conv_transpose3d(x: T, o: O.ConvTransposeOptions): T { return this.invoke("conv_transpose3d", [x], o); }

  maxpool1d(x: T, o: O.PoolOptions): T { return this.invoke("maxpool1d", [x], o); }
  maxpool2d(x: T, o: O.PoolOptions): T { return this.invoke("maxpool2d", [x], o); }
  maxpool3d(x: T, o: O.PoolOptions): T { return this.invoke("maxpool3d", [x], o); }
  avgpool1d(x: T, o: O.AvgPoolOptions): T { return this.invoke("avgpool1d", [x], o); }
  avgpool2d(x: T, o: O.AvgPoolOptions): T { return this.invoke("avgpool2d", [x], o); }
  avgpool3d(x: T, o: O.AvgPoolOptions): T { return this.invoke("avgpool3d", [x], o); }
  sumpool1d(x: T, o: O.PoolOptions): T { return this.invoke("sumpool1d", [x], o); }
  sumpool2d(x: T, o: O.PoolOptions): T { return this.invoke("sumpool2d", [x], o); }
  sumpool3d(x: T, o: O.PoolOptions): T { return this.invoke("sumpool3d", [x], o); }
  global_maxpool(x: T, o: O.MaskOptions = {}): T { return this.invoke("global_maxpool", [x], o); }
  global_avgpool(x: T, o: O.MaskOptions = {}): T { return this.invoke("global_avgpool", [x], o); }
  global_sumpool(x: T, o: O.MaskOptions = {}): T { return this.invoke("global_sumpool", [x], o); }
  /** The k largest values along `axis`, in their original order. */
  kmax_pool(x: T, k: number, o: O.KMaxPoolOptions = {}): T { return this.invoke("kmax_pool", [x, k], o); }

  embed(tokens: T, vocab: number, dim: number, o: O.EmbedOptions = {}): T { return this.invoke("embed", [tokens, vocab, dim], o); }
  rnn(x: T, o: O.RnnOptions): T { return this.invoke("rnn", [x], o); }

  /** NumPy einsum: `m.einsum("nij,njk->nik", a, b)`. */
  einsum(spec: string, ...operands: T[]): T { return this.invoke("einsum", [spec, ...operands]); }
  matmul(a: T, b: T): T { return this.invoke("matmul", [a, b]); }
  /** Over the last axis; weight `[units, in]` (PyTorch Linear). */
  dense(x: T, units: number, o: O.DenseOptions = {}): T { return this.invoke("dense", [x, units], o); }

  relu(x: T): T { return this.invoke("relu", [x]); }
  sigmoid(x: T): T { return this.invoke("sigmoid", [x]); }
  tanh(x: T): T { return this.invoke("tanh", [x]); }
  exp(x: T): T { return this.invoke("exp", [x]); }
  log(x: T): T { return this.invoke("log", [x]); }
  sqrt(x: T): T { return this.invoke("sqrt", [x]); }
  abs(x: T): T { return this.invoke("abs", [x]); }
  softplus(x: T): T { return this.invoke("softplus", [x]); }
  gelu(x: T): T { return this.invoke("gelu", [x]); }
  logsigmoid(x: T): T { return this.invoke("logsigmoid", [x]); }
  leaky_relu(x: T, alpha?: number): T { return this.invoke("leaky_relu", [x], { alpha }); }
  elu(x: T, alpha?: number): T { return this.invoke("elu", [x], { alpha }); }
  clip(x: T, lo: number, hi: number): T { return this.invoke("clip", [x, lo, hi]); }
  pow(x: T, p: T | number): T { return this.invoke("pow", [x, p]); }
  maximum(a: T | number, b: T | number): T { return this.invoke("maximum", [a, b]); }
  minimum(a: T | number, b: T | number): T { return this.invoke("minimum", [a, b]); }
  where(cond: T, a: T | number, b: T | number): T { return this.invoke("where", [cond, a, b]); }
  cast(x: T, dtype: DType): T { return this.invoke("cast", [x, dtype]); }

  sum(x: T, o: O.ReduceOptions = {}): T { return this.invoke("sum", [x], o); }
  mean(x: T, o: O.ReduceOptions = {}): T { return this.invoke("mean", [x], o); }
  max(x: T, o: O.ReduceOptions = {}): T { return this.invoke("max", [x], o); }
  min(x: T, o: O.ReduceOptions = {}): T { return this.invoke("min", [x], o); }
  logsumexp(x: T, o: O.ReduceOptions = {}): T { return this.invoke("logsumexp", [x], o); }
  argmax(x: T, o: O.ArgmaxOptions): T { return this.invoke("argmax", [x], o); }
  softmax(x: T, o: O.AxisOptions = {}): T { return this.invoke("softmax", [x], o); }
  log_softmax(x: T, o: O.AxisOptions = {}): T { return this.invoke("log_softmax", [x], o); }

  /** Sizes are integers, -1 (inferred once), symbol names bound by inputs ("N") or Dims. */
  reshape(x: T, shape: readonly O.Size[]): T {
    const span = callerSpan("reshape".length);
    return this.invoke("reshape", [x, shape.map((s) => (typeof s === "string" ? this.symbol(s, span) : s))]);
  }
  flatten(x: T, o: O.FlattenOptions = {}): T { return this.invoke("flatten", [x], o); }
  transpose(x: T, perm: readonly number[]): T { return this.invoke("transpose", [x, perm]); }
  concat(xs: readonly T[], o: O.AxisOptions = {}): T { return this.invoke("concat", [xs], o); }
  slice(x: T, o: O.SliceOptions): T { return this.invoke("slice", [x], o); }
  pad(x: T, padding: O.Padding, o: O.PadOptions = {}): T { return this.invoke("pad", [x, padding], o); }
  upsample(x: T, scale: O.Ints, o: O.UpsampleOptions = {}): T { return this.invoke("upsample", [x, scale], o); }
  broadcast_to(x: T, shape: readonly O.Size[]): T {
    const span = callerSpan("broadcast_to".length);
    return this.invoke("broadcast_to", [x, shape.map((s) => (typeof s === "string" ? this.symbol(s, span) : s))]);
  }

  batchnorm(x: T, o: O.BatchnormOptions = {}): T { return this.invoke("batchnorm", [x], o); }
  layernorm(x: T, o: O.LayernormOptions = {}): T { return this.invoke("layernorm", [x], o); }
  dropout(x: T, p: number): T { return this.invoke("dropout", [x, p]); }
  gaussian_noise(x: T, std: number): T { return this.invoke("gaussian_noise", [x, std]); }

  cross_entropy(logits: T, labels: T, o: O.CrossEntropyOptions = {}): T { return this.invoke("cross_entropy", [logits, labels], o); }
  mse(a: T, b: T): T { return this.invoke("mse", [a, b]); }
  bce_with_logits(logits: T, targets: T): T { return this.invoke("bce_with_logits", [logits, targets]); }

  /** The gradient of scalar `y` with respect to an input or parameter `x`, shaped like `x`. */
  grad(y: T, x: T): T { return this.invoke("grad", [y, x]); }

  // ------------------------------------------------------------ internals

  private get scope(): Scope {
    return this.scopes[this.scopes.length - 1]!;
  }

  private wrap(v: Value): T {
    return new T(this, v);
  }

  private guard(span: Span | undefined): void {
    if (this.built) builderError("E501", `model '${this.name}' is already built; start a new model() to build another`, span);
  }

  /** A statement must not run inside another statement's callback. */
  private statement(what: string, span: Span | undefined): void {
    this.guard(span);
    if (this.binding !== undefined) {
      builderError("E501", `m.${what}(...) cannot be called while building '${this.binding}'`, span, {
        hint: "statements do not nest; for a reusable block with its own bindings use m.def(...)",
      });
    }
  }

  private checkName(name: string, span: Span | undefined): void {
    if (!IDENT.test(name)) builderError("E501", `a name must be an identifier ([A-Za-z_][A-Za-z0-9_]*), found "${name}"`, span);
  }

  private lookup(name: string): Value | undefined {
    for (let i = this.scopes.length - 1; i >= 0; i--) {
      const v = this.scopes[i]!.names.get(name);
      if (v) return v;
      if (this.scopes[i]!.def) break; // a def sees its own names, not its caller's
    }
    return undefined;
  }

  /** Single assignment; the value is named after its first binding (for messages). */
  private bind(name: string, v: Value, span: Span | undefined): void {
    if (this.scope.names.has(name)) {
      builderError("E302", `'${name}' is already bound; bindings are single-assignment`, span, { hint: "choose a new name" });
    }
    this.scope.names.set(name, v);
    if (!this.state.valueNames.has(v)) this.state.valueNames.set(v, this.scope.prefix + name);
  }

  private site(): CallSite {
    return { binding: this.binding ?? (this.scope.def ? "return" : ""), prefix: this.scope.prefix };
  }

  private underBinding(name: string, build: () => T, span: Span | undefined): T {
    if (typeof build !== "function") builderError("E501", `the value of '${name}' must be given as a callback, () => ...`, span);
    this.binding = name;
    let t: unknown;
    try {
      t = build();
    } finally {
      this.binding = undefined;
    }
    return this.own(t, `the callback of '${name}'`, span);
  }

  private addOutput(kind: "output" | "loss", name: string, annotation: TensorType | undefined, value: T | (() => T), span: Span | undefined): T {
    this.statement(kind, span);
    if (this.scope.def) builderError("E306", `${kind} statements belong in a model, not in a def`, span);
    this.checkName(name, span);
    const t = typeof value === "function" ? this.underBinding(name, value, span) : this.own(value, `the value of ${kind} '${name}'`, span);
    if (annotation) checkAnnotation(name, annotation, t.value, span);
    // `output logits` (the name's own value) is not a rebinding.
    if (this.scope.names.get(name) !== t.value) this.bind(name, t.value, span);
    if (this.graph.output(name)) builderError("E302", `'${name}' is already an output or loss`, span);
    if (kind === "loss" && (t.rank !== 0 || t.dtype !== "f32")) {
      builderError("E215", `loss '${name}' must be a scalar f32[], found ${typeToString(t.type)}`, span, {
        hint: "reduce it, e.g. mean(...) or a loss builtin such as cross_entropy",
      });
    }
    this.graph.outputs.push({ name, value: t.value, kind, span });
    return t;
  }

  /** A T of this model, or a builder-misuse error. */
  private own(x: unknown, what: string, span: Span | undefined): T {
    if (!(x instanceof T)) builderError("E501", `${what} must return a tensor of model '${this.name}', found ${describeJs(x)}`, span);
    if (x.model !== this) builderError("E501", `a tensor of model '${x.model.name}' cannot be used in model '${this.name}'`, span);
    return x;
  }

  private tensorOf(x: T | number, span: Span | undefined, dtypeHint: DType = "f32"): Value {
    if (typeof x === "number") return this.state.constant(x, dtypeHint === "i32" && Number.isInteger(x) ? "i32" : "f32", span);
    return this.own(x, "an operand", span).value;
  }

  /** The DSL's arithmetic operators (emitted directly, as the DSL lowering does). */
  private operator(op: string, symbol: string, a: T | number, b: T | number): T {
    const span = callerSpan(op.length);
    this.guard(span);
    if (typeof a === "number" && typeof b === "number") builderError("E501", `${op} needs at least one tensor, found two numbers`, span, { hint: "compute numbers in TypeScript" });
    const site = this.site();
    const ta = this.tensorOf(a, span, b instanceof T ? b.dtype : "f32");
    const tb = this.tensorOf(b, span, ta.type.dtype);
    return this.wrap(this.state.emitOp(op, [ta, tb], {}, span, `operator '${symbol}'`, site.prefix + site.binding)[0]!);
  }

  private symbol(name: string, span: Span | undefined): Dim {
    if (!this.graph.symbols.includes(name)) {
      const near = closest(name, this.graph.symbols);
      builderError("E301", `unknown name '${name}'`, span, { hint: near ? `did you mean '${near}'?` : "sizes in a shape are integers, -1, or symbols bound by an input" });
    }
    return Dim.sym(name);
  }

  private arg(x: Arg, span: Span | undefined): ArgValue {
    if (x === null || x === undefined) return { kind: "none", span };
    if (x instanceof T) return { kind: "tensor", value: this.own(x, "an argument", span).value, span };
    if (x instanceof Dim) return { kind: "dim", value: x, span };
    if (Array.isArray(x)) return { kind: "list", items: (x as readonly Arg[]).map((i) => this.arg(i, span)), span };
    switch (typeof x) {
      case "number":
        return { kind: "number", value: x, isInt: Number.isInteger(x), span };
      case "string":
        return { kind: "string", value: x, span };
      case "boolean":
        return { kind: "bool", value: x, span };
      default:
        return builderError("E403", `an argument must be a tensor, number, string, boolean, Dim or list, found ${describeJs(x)}`, span);
    }
  }

  /** Bind and lower one builtin call through ModelState, located at the caller. */
  private invoke(callee: string, positional: readonly Arg[], keywords: object = {}): T {
    const span = callerSpan(callee.length);
    this.guard(span);
    const def = getBuiltin(callee);
    if (!def) {
      const near = closest(callee, builtinNames());
      builderError("E303", `unknown function '${callee}'`, span, { hint: near ? `did you mean '${near}'?` : undefined });
    }
    const site = this.site();
    const given = Object.entries(keywords as Record<string, Arg>).filter(([, v]) => v !== undefined);
    if (def.ownsParams && site.binding === "" && !given.some(([k, v]) => k === "name" && typeof v === "string")) {
      builderError("E501", `${callee} creates parameters, so it needs a name`, span, {
        hint: `call it inside m.let("c1", () => m.${callee}(...)) or pass { name: "c1" }`,
      });
    }
    const pos = positional.map((a) => this.arg(a, span));
    const kws: KeywordArg[] = given.map(([name, v]) => ({ name, value: this.arg(v, span), span }));
    try {
      return this.wrap(this.state.callBuiltin(callee, span, pos, kws, site));
    } catch (e) {
      // Outside any binding the DSL's "conv2d 'c1': " prefix has no name to show.
      if (e instanceof CompileError && site.binding === "" && site.prefix === "") {
        throw new CompileError(e.diagnostics.map((d): Diagnostic => ({ ...d, message: d.message.replace(`${callee} '': `, `${callee}: `) })));
      }
      throw e;
    }
  }
}

// ---------------------------------------------------------------- helpers

function describeJs(x: unknown): string {
  if (x === null) return "null";
  if (Array.isArray(x)) return "an array";
  if (typeof x === "object") return (x as object).constructor?.name ?? "an object";
  return typeof x;
}

/** The same check and message as the DSL's `name: T = expr`. */
function checkAnnotation(name: string, want: TensorType, v: Value, span: Span | undefined): void {
  const bad = annotationMismatch(name, want, v.type);
  if (bad) builderError("E205", bad.message, span, { notes: bad.notes });
}

/** glorot and he resolved against the parameter's fans, as the DSL's `param` does (PyTorch's definitions). */
function resolveInit(init: O.Init, type: TensorType, span: Span | undefined): InitSpec {
  const shape = type.shape.map((d) => d.constValue() ?? 1);
  if (typeof init === "string") {
    switch (init) {
      case "zeros":
      case "ones":
        return { kind: init };
      case "glorot":
        return glorotInit(shape);
      case "he":
        return heInit(shape);
    }
  }
  if (init && typeof init === "object") {
    if (init.kind === "normal") {
      if (!(init.std >= 0)) builderError("E404", `normal std must be non-negative, found ${init.std}`, span);
      return { kind: "normal", mean: init.mean, std: init.std };
    }
    if (init.kind === "uniform") {
      if (init.lo > init.hi) builderError("E404", `uniform needs lo <= hi, found ${init.lo} > ${init.hi}`, span);
      return { kind: "uniform", lo: init.lo, hi: init.hi };
    }
  }
  return builderError("E403", "init must be zeros, ones, normal(mean, std), uniform(lo, hi), glorot or he", span);
}

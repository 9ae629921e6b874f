// The contract every op family implements (one file per family, see ops/index.ts):
//
//  * IR ops (`OpDef`): the shape rule (`infer`), the float64 reference semantics
//    (`evaluate`) and, with autodiff, the gradient rule (`grad`), side by side.
//  * Builtins (`BuiltinDef`): the surface call of DSL.md §6 (`conv2d(x, filters=6, ...)`),
//    which reads its arguments, creates the layer's parameters and emits IR ops.
//    The DSL lowering and the TypeScript builder both go through builtins, so
//    they produce the same IR.

import type { DiagnosticCode, Span } from "../diagnostics.ts";
import type { Dim } from "../ir/dims.ts";
import type { Attrs, Graph, InitSpec, Node, Value } from "../ir/graph.ts";
import type { DType, TensorType } from "../ir/types.ts";
import type { RefTensor } from "../reference/tensor.ts";
import type { Rng } from "../reference/rng.ts";
import type { Args } from "./args.ts";

export interface FailOptions {
  readonly notes?: readonly string[];
  readonly hint?: string;
  /** Point the caret at this argument of the call instead of the callee. */
  readonly arg?: string;
}

/** Given to shape rules. `fail` throws a located diagnostic; the message needs no layer prefix. */
export interface InferCtx {
  fail(code: DiagnosticCode, message: string, opts?: FailOptions): never;
  /** "s2 is f32[N, 6, 4, 4]": how input i is known to the user, for notes. */
  describeInput(i: number): string;
}

/** Given to reference semantics. */
export interface EvalCtx {
  readonly node: Node;
  /** Training mode (dropout and noise active, batchnorm uses batch statistics). */
  readonly training: boolean;
  /** Seeded generator for dropout/noise; one stream per node. */
  readonly rng: Rng;
  /** The node's output shapes with every symbol bound. */
  readonly outShapes: readonly (readonly number[])[];
  evalDim(d: Dim): number;
  /** A runtime error (bad token id, ...): names the node; the run is aborted. */
  fail(message: string): never;
}

/**
 * Given to gradient rules. Everything a rule emits is ordinary IR, appended to
 * the graph being differentiated; shape rules run on every emitted node.
 */
export interface GradCtx {
  /** The forward node being differentiated. */
  readonly node: Node;
  emit(op: string, inputs: readonly Value[], attrs?: Attrs): readonly Value[];
  emit1(op: string, inputs: readonly Value[], attrs?: Attrs): Value;
  /** An f32 scalar constant. */
  constant(value: number): Value;
  /** `dy` summed over the axes NumPy broadcasting added or stretched, reshaped to `to`'s shape. */
  unbroadcast(dy: Value, to: TensorType): Value;
  /** `v` broadcast (NumPy rules) to `shape`; `v` itself when it already has that shape. */
  broadcastTo(v: Value, shape: readonly Dim[]): Value;
  /** An f32 tensor of zeros of the given shape. */
  zeros(shape: readonly Dim[]): Value;
  /** `a + b` (same shapes), the way gradient contributions are accumulated. */
  add(a: Value, b: Value): Value;
}

/**
 * A gradient rule: given the forward node's inputs and outputs and the
 * gradient of the loss with respect to each output (`undefined` where none
 * flows, e.g. batchnorm's running statistics), return the gradient with respect
 * to each input (`undefined` for inputs that carry none). Only f32 inputs not
 * listed in `nondifferentiable` are asked for.
 */
export type GradRule<A extends Attrs = Attrs> = (
  inputs: readonly Value[],
  outputs: readonly Value[],
  dys: readonly (Value | undefined)[],
  attrs: A,
  ctx: GradCtx,
) => readonly (Value | undefined)[];

export interface OpDef<A extends Attrs = Attrs> {
  readonly name: string;
  infer(inputs: readonly TensorType[], attrs: A, ctx: InferCtx): TensorType[];
  evaluate(inputs: readonly RefTensor[], attrs: A, ctx: EvalCtx): RefTensor[];
  /** Reverse-mode rule (compiler/autodiff); missing means "not differentiable yet". */
  readonly grad?: GradRule<A>;
  /** Input positions that never carry gradient (indices, masks, lengths, labels). */
  readonly nondifferentiable?: readonly number[];
  /** True for ops like argmax that have no gradient at all. */
  readonly noGradient?: boolean;
}

export function defineOp<A extends Attrs>(def: OpDef<A>): OpDef {
  return def as unknown as OpDef;
}

/** What a builtin may do while lowering one call. */
export interface LowerCtx {
  readonly graph: Graph;
  /** Span of the callee name (where shape errors point). */
  readonly span?: Span;
  /** The builtin as called, e.g. "conv2d". */
  readonly callee: string;
  /**
   * The name of the layer this call owns parameters under: the binding name,
   * `binding.1`, `binding.2` for later owning calls in the same binding, or the
   * `name=` argument; prefixed by the enclosing def's namespace.
   */
  layerName(): string;
  /** Emit one IR node; runs the op's shape rule with errors located at this call. */
  emit(op: string, inputs: readonly Value[], attrs?: Attrs): readonly Value[];
  emit1(op: string, inputs: readonly Value[], attrs?: Attrs): Value;
  /**
   * A parameter `<layer>.<local>` of the given static type, or, when the call has
   * a tensor argument named `argName` (default: `local`), that tensor instead
   * (tied weights), checked against the type.
   */
  param(local: string, type: TensorType, init: InitSpec, opts?: { readonly trainable?: boolean; readonly argName?: string }): Value;
  /** A scalar constant. */
  constant(value: number, dtype?: DType): Value;
  /** A located compile error for this call (prefixed "conv2d 'c3': "). */
  fail(code: DiagnosticCode, message: string, opts?: FailOptions): never;
  /** "s2 is f32[N, 6, 4, 4]" */
  describe(v: Value): string;
}

export interface BuiltinDef {
  /** Surface names this definition serves, e.g. ["conv1d", "conv2d", "conv3d"]. */
  readonly names: readonly string[];
  /** Parameter names in positional order (keywords may use any of them). */
  signature(callee: string): readonly string[];
  /** Whether the call creates parameters (so it takes `name=` and gets a layer name). */
  readonly ownsParams?: boolean;
  lower(args: Args, ctx: LowerCtx): Value;
}

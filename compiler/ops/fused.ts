// Fused ops: IR nodes the fusion passes (compiler/passes/) build out of
// several nodes of other families. They never come from the DSL or the
// builder, so this family has no builtins.
//
// fused_elementwise(x0, x1, ...) {steps, outputs, covers} -> y0, y1, ...
//
//   A chain (a tree, or a small DAG) of elementwise ops of compiler/ops/elementwise.ts
//   run as one map over the shape of y0. `steps` is a little program in SSA
//   form, each step one value per element:
//     {op: "load", input: i}                 the value of input i (its own shape:
//                                            broadcast dims are read with stride 0)
//     {op: "<elementwise op>", args: [j, k, ...], attrs?: {...}}
//                                            that op (add, relu, where, cast,
//                                            unary_grad, ...) applied to earlier steps
//   `outputs` lists the steps that are results: the first is the last step (the
//   chain's sink, which fixes the iteration shape); any others are
//   intermediates also used outside the chain, which must have that same shape.
//   `covers` names the IR nodes the node replaces ({node, value, op, label}, in
//   program order) for the comment of the generated kernels.
//
// The shape rule re-runs each step's own shape rule (dtype rules included) and
// checks that every step broadcasts to the iteration shape. The reference
// semantics evaluate the steps one after the other with the ops' own float64
// reference semantics, so a fused node computes exactly what its unfused
// nodes did (the i32 wrap rules included).
//
// fused_epilogue(b_0 .. b_{k-1}, e_0 .. e_{m-1}) {base, baseAttrs, baseInputs, steps, outputs, covers, pool?}
//
//   A contraction (`base`: "conv", a forward convolution, or "einsum") whose
//   result is run through an elementwise program before it is stored: bias,
//   activation, residual add, scaling (compiler/passes/fuse-epilogue.ts). The
//   first `baseInputs` (k) inputs are the base node's, `baseAttrs` its attrs.
//   `steps` is a fused_elementwise program in which load 0 is the base result
//   at the current element and load i ≥ 1 is input k+i-1 (e_{i-1}), broadcast
//   (NumPy rules) to the base result's shape; `outputs` and `covers` as above
//   (an extra output may be step 0, the raw base result, e.g. a pre-activation
//   the backward reads). `pool` ({kind: "max" | "avg", window}), when present,
//   pools outputs[0] over the trailing spatial dims of a conv result with
//   stride = window, no padding, no dilation, floor mode; then `outputs` has
//   exactly one entry (nothing unpooled is stored).
//
//   The shape rule is the base op's on the first k inputs, then the program's
//   on [base result, e...], every step broadcasting to the base result's shape;
//   the reference evaluates the base op's reference, the steps, then the pool
//   op's reference: exactly the unfused nodes' float64 results.
//
// No gradient rule: fusion runs after autodiff (emitModule builds the training
// graph from the unoptimized forward graph and optimizes the result), so no
// fused node is ever differentiated.

import type { Dim } from "../ir/dims.ts";
import type { Attrs, AttrValue, Node, Value } from "../ir/graph.ts";
import { typeToString, type TensorType } from "../ir/types.ts";
import type { RefTensor } from "../reference/tensor.ts";
import { broadcastShapes } from "./broadcast.ts";
import { ops as convOps } from "./conv.ts";
import { ops as einsumOps } from "./einsum.ts";
import { ops as elementwiseOps } from "./elementwise.ts";
import { ops as poolOps, type PoolAttrs } from "./pool.ts";
import { defineOp, type BuiltinDef, type EvalCtx, type InferCtx, type OpDef } from "./op.ts";

export type FusedStep =
  | { readonly op: "load"; readonly input: number }
  | { readonly op: string; readonly args: readonly number[]; readonly attrs?: Attrs };

export type FusedCover = {
  readonly node: number;
  readonly value: number;
  readonly op: string;
  /** The node's label, "" when it has none. */
  readonly label: string;
  /** The covered value's type as `cnnc ir` prints it (its shape no longer appears elsewhere). */
  readonly type?: string;
};

/** The cover entry of a node's (first) output. */
export function coverOf(n: Node): FusedCover {
  const v = n.outputs[0]!;
  return { node: n.id, value: v.id, op: n.op, label: n.label ?? "", type: typeToString(v.type) };
}

/** The elementwise program of a fused node (fused_elementwise's attrs, part of fused_epilogue's). */
export interface FusedProgram {
  readonly steps: readonly FusedStep[];
  readonly outputs: readonly number[];
  readonly covers: readonly FusedCover[];
}

export interface FusedAttrs extends FusedProgram {
  readonly [k: string]: AttrValue;
}

/** The elementwise ops a fused_elementwise program may apply, by name. */
export const FUSIBLE_OPS: ReadonlyMap<string, OpDef> = new Map(elementwiseOps.map((op) => [op.name, op]));

export function isLoad(s: FusedStep): s is { readonly op: "load"; readonly input: number } {
  return s.op === "load";
}

/** `%12 add (c1), %13 relu (c1)`: the covered IR nodes, as the kernels' comment says them. */
export function coversText(covers: readonly FusedCover[]): string {
  return covers.map((c) => `%${c.value} ${c.op}${c.label ? ` (${c.label.replace(/[^\w.@-]/g, "_")})` : ""}`).join(", ");
}

/** The type of every step (each op's own shape rule), or a failure through `ctx`. */
export function stepTypes(inputs: readonly TensorType[], attrs: FusedProgram, ctx: InferCtx): TensorType[] {
  const types: TensorType[] = [];
  const steps = attrs.steps;
  if (!Array.isArray(steps) || steps.length === 0) ctx.fail("E404", "fused_elementwise needs a non-empty list of steps");
  steps.forEach((s, k) => {
    if (isLoad(s)) {
      const t = inputs[s.input];
      if (!Number.isInteger(s.input) || !t) ctx.fail("E404", `fused_elementwise step ${k} loads input ${String(s.input)}, but the node has ${inputs.length}`);
      types.push(t);
      return;
    }
    const def = FUSIBLE_OPS.get(s.op);
    if (!def) ctx.fail("E404", `fused_elementwise step ${k}: '${s.op}' is not an elementwise op`);
    const args = s.args;
    if (!Array.isArray(args) || args.some((a) => !Number.isInteger(a) || a < 0 || a >= k)) {
      ctx.fail("E404", `fused_elementwise step ${k} (${s.op}) must read earlier steps, found args ${JSON.stringify(args)}`);
    }
    const argTypes = args.map((a) => types[a]!);
    const out = def.infer(argTypes, s.attrs ?? {}, {
      fail: (code, message, opts) => ctx.fail(code, `step ${k} (${s.op}): ${message}`, opts),
      describeInput: (i) => `argument ${i} of step ${k} is ${typeToString(argTypes[i]!)}`,
    });
    if (out.length !== 1) ctx.fail("E404", `fused_elementwise step ${k}: ${s.op} has ${out.length} outputs`);
    types.push(out[0]!);
  });
  return types;
}

const fusedElementwise = defineOp<FusedAttrs>({
  name: "fused_elementwise",
  infer(inputs, attrs, ctx) {
    const types = stepTypes(inputs, attrs, ctx);
    const last = types.length - 1;
    if (!Array.isArray(attrs.outputs) || attrs.outputs[0] !== last) ctx.fail("E404", "fused_elementwise: the first output must be the last step");
    return checkProgram("fused_elementwise", types, attrs, types[last]!.shape, ctx);
  },
  evaluate(inputs, attrs, ctx) {
    return runSteps(inputs, attrs, ctx);
  },
});

/**
 * Checks that every step is used and broadcasts to `shape`, and that every
 * extra output has that shape; returns the output types.
 */
function checkProgram(op: string, types: readonly TensorType[], attrs: FusedProgram, shape: readonly Dim[], ctx: InferCtx): TensorType[] {
  const outs = attrs.outputs;
  const used = new Set<number>(outs);
  for (const s of attrs.steps) if (!isLoad(s)) for (const a of s.args) used.add(a);
  types.forEach((t, k) => {
    if (!used.has(k)) ctx.fail("E404", `${op}: step ${k} is never used`);
    const r = broadcastShapes(t.shape, shape);
    if (!r.ok || r.shape.length !== shape.length || r.shape.some((d, i) => !d.equals(shape[i]!))) {
      ctx.fail("E203", `${op}: step ${k} (${typeToString(t)}) does not broadcast to the result's shape [${shape.map(String).join(", ")}]`);
    }
  });
  for (const o of outs.slice(1)) {
    const t = types[o];
    if (!t || t.shape.length !== shape.length || t.shape.some((d, i) => !d.equals(shape[i]!))) {
      ctx.fail("E404", `${op}: output step ${o} must have the result's shape [${shape.map(String).join(", ")}]`);
    }
  }
  if (!Array.isArray(attrs.covers)) ctx.fail("E404", `${op} needs covers`);
  return outs.map((o) => types[o]!);
}

/** The program's outputs, each step by its op's own float64 reference semantics. */
function runSteps(inputs: readonly RefTensor[], attrs: FusedProgram, ctx: EvalCtx): RefTensor[] {
  const values: RefTensor[] = [];
  for (const s of attrs.steps) {
    if (isLoad(s)) {
      values.push(inputs[s.input]!);
      continue;
    }
    const args = s.args.map((a) => values[a]!);
    // Every elementwise op's result has the NumPy broadcast shape of its operands.
    const shape = args.reduce<number[]>((acc, t) => broadcastConcrete(acc, t.shape), []);
    const stepCtx: EvalCtx = { ...ctx, outShapes: [shape] };
    values.push(FUSIBLE_OPS.get(s.op)!.evaluate(args, s.attrs ?? {}, stepCtx)[0]!);
  }
  return attrs.outputs.map((o) => values[o]!);
}

// ---------------------------------------------------------------------------
// fused_epilogue

/** The contractions an epilogue may extend, by name. */
export const EPILOGUE_BASES: ReadonlyMap<string, OpDef> = new Map([...convOps, ...einsumOps].filter((op) => op.name === "conv" || op.name === "einsum").map((op) => [op.name, op]));

export type EpiloguePool = {
  readonly kind: "max" | "avg";
  readonly window: readonly number[];
};

/** fused_epilogue's attrs (read through a cast: `pool` is optional, which an Attrs index signature does not allow). */
export interface EpilogueAttrs extends FusedProgram {
  readonly base: string;
  readonly baseAttrs: Attrs;
  readonly baseInputs: number;
  readonly pool?: EpiloguePool;
}

/** The pool op's attrs an epilogue's `pool` stands for: stride = window, no padding, no dilation, floor mode, no mask. */
export function epiloguePoolAttrs(p: EpiloguePool): PoolAttrs {
  const d = p.window.length;
  return {
    kind: p.kind,
    window: [...p.window],
    stride: [...p.window],
    padBegin: new Array<number>(d).fill(0),
    padEnd: new Array<number>(d).fill(0),
    dilation: new Array<number>(d).fill(1),
    ceilMode: false,
    countIncludePad: false,
    hasMask: false,
  };
}

const POOL_OP = poolOps.find((op) => op.name === "pool")!;

/** The base op's definition, after checking `base` and `baseInputs`. */
function baseOf(attrs: EpilogueAttrs, ctx: InferCtx): OpDef {
  const def = EPILOGUE_BASES.get(attrs.base);
  if (!def) ctx.fail("E404", `fused_epilogue: '${String(attrs.base)}' is not a contraction an epilogue can extend`);
  if (!Number.isInteger(attrs.baseInputs) || attrs.baseInputs < 1) ctx.fail("E404", "fused_epilogue needs baseInputs ≥ 1");
  return def;
}

/** The type of the base op's result, by the base op's own shape rule. */
export function epilogueBaseType(inputs: readonly TensorType[], attrs: EpilogueAttrs, ctx: InferCtx): TensorType {
  const def = baseOf(attrs, ctx);
  const k = attrs.baseInputs;
  const out = def.infer(inputs.slice(0, k), attrs.baseAttrs, {
    fail: (code, message, opts) => ctx.fail(code, `base ${attrs.base}: ${message}`, opts),
    describeInput: (i) => ctx.describeInput(i),
  });
  return out[0]!;
}

/** The types of the epilogue program's steps: load 0 is the base result, load i the node's input k+i-1. */
export function epilogueStepTypes(inputs: readonly TensorType[], attrs: EpilogueAttrs, ctx: InferCtx): TensorType[] {
  const r = epilogueBaseType(inputs, attrs, ctx);
  return stepTypes([r, ...inputs.slice(attrs.baseInputs)], attrs, ctx);
}

/** The base node as its own kernel (and FLOP count) sees it: op, first k inputs, attrs, one output of the base result's type. */
export function epilogueBaseView(node: Node): Node {
  const attrs = node.attrs as unknown as EpilogueAttrs;
  const type = epilogueBaseType(node.inputs.map((v) => v.type), attrs, internalCtx);
  const outputs: Value[] = [];
  const base: Node = { ...node, op: attrs.base, inputs: node.inputs.slice(0, attrs.baseInputs), attrs: attrs.baseAttrs, outputs };
  outputs.push({ id: node.outputs[0]!.id, type, node: base, index: 0 });
  return base;
}

const fusedEpilogue = defineOp<FusedAttrs>({
  name: "fused_epilogue",
  infer(inputs, fusedAttrs, ctx) {
    const attrs = fusedAttrs as unknown as EpilogueAttrs;
    const r = epilogueBaseType(inputs, attrs, ctx);
    const types = stepTypes([r, ...inputs.slice(attrs.baseInputs)], attrs, ctx);
    const last = types.length - 1;
    if (!Array.isArray(attrs.outputs) || attrs.outputs[0] !== last) ctx.fail("E404", "fused_epilogue: the first output must be the last step");
    const outs = checkProgram("fused_epilogue", types, attrs, r.shape, ctx);
    const sink = types[last]!.shape;
    if (sink.length !== r.shape.length || !sink.every((d, i) => d.equals(r.shape[i]!))) {
      ctx.fail("E404", "fused_epilogue: the program's result must have the base result's shape");
    }
    if (attrs.pool === undefined) return outs;
    const p = attrs.pool;
    if (attrs.base !== "conv") ctx.fail("E404", "fused_epilogue: only a conv epilogue can pool");
    if (outs.length !== 1) ctx.fail("E404", "fused_epilogue: a pooling epilogue stores nothing unpooled (one output)");
    if ((p.kind !== "max" && p.kind !== "avg") || !Array.isArray(p.window) || p.window.length !== r.shape.length - 2) {
      ctx.fail("E404", `fused_epilogue: bad pool ${JSON.stringify(p)}`);
    }
    const pooled = POOL_OP.infer([outs[0]!], epiloguePoolAttrs(p), {
      fail: (code, message, opts) => ctx.fail(code, `pool: ${message}`, opts),
      describeInput: () => `the epilogue's result is ${typeToString(outs[0]!)}`,
    });
    return pooled;
  },
  evaluate(inputs, fusedAttrs, ctx) {
    const attrs = fusedAttrs as unknown as EpilogueAttrs;
    const k = attrs.baseInputs;
    const base = epilogueBaseView(ctx.node);
    const baseShape = base.outputs[0]!.type.shape.map((d) => ctx.evalDim(d));
    const r = EPILOGUE_BASES.get(attrs.base)!.evaluate(inputs.slice(0, k), attrs.baseAttrs, { ...ctx, node: base, outShapes: [baseShape] })[0]!;
    const outs = runSteps([r, ...inputs.slice(k)], attrs, ctx);
    if (!attrs.pool) return outs;
    return POOL_OP.evaluate([outs[0]!], epiloguePoolAttrs(attrs.pool), ctx);
  },
});

/** Shape-rule context for code generators re-deriving types the verifier already checked: any failure is a compiler bug. */
export const internalCtx: InferCtx = {
  fail: (_code, message) => {
    throw new Error(`internal: ${message}`);
  },
  describeInput: (i) => `input ${i}`,
};

function broadcastConcrete(a: readonly number[], b: readonly number[]): number[] {
  const rank = Math.max(a.length, b.length);
  const out: number[] = [];
  for (let i = 0; i < rank; i++) {
    const da = a[i - (rank - a.length)] ?? 1;
    const db = b[i - (rank - b.length)] ?? 1;
    out.push(da === 1 ? db : da);
  }
  return out;
}

export const ops: OpDef[] = [fusedElementwise, fusedEpilogue];
export const builtins: BuiltinDef[] = [];

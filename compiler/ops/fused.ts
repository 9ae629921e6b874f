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
// No gradient rule: fusion runs after autodiff (emitModule builds the training
// graph from the unoptimized forward graph and optimizes the result), so no
// fused node is ever differentiated.

import type { Attrs, AttrValue } from "../ir/graph.ts";
import { typeToString, type TensorType } from "../ir/types.ts";
import type { RefTensor } from "../reference/tensor.ts";
import { broadcastShapes } from "./broadcast.ts";
import { ops as elementwiseOps } from "./elementwise.ts";
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
};

export interface FusedAttrs {
  readonly steps: readonly FusedStep[];
  readonly outputs: readonly number[];
  readonly covers: readonly FusedCover[];
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
export function stepTypes(inputs: readonly TensorType[], attrs: FusedAttrs, ctx: InferCtx): TensorType[] {
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
    const outs = attrs.outputs;
    const last = types.length - 1;
    if (!Array.isArray(outs) || outs[0] !== last) ctx.fail("E404", "fused_elementwise: the first output must be the last step");
    const shape = types[last]!.shape;
    const used = new Set<number>(outs);
    for (const s of attrs.steps) if (!isLoad(s)) for (const a of s.args) used.add(a);
    types.forEach((t, k) => {
      if (!used.has(k)) ctx.fail("E404", `fused_elementwise: step ${k} is never used`);
      const r = broadcastShapes(t.shape, shape);
      if (!r.ok || r.shape.length !== shape.length || r.shape.some((d, i) => !d.equals(shape[i]!))) {
        ctx.fail("E203", `fused_elementwise: step ${k} (${typeToString(t)}) does not broadcast to the result's shape [${shape.map(String).join(", ")}]`);
      }
    });
    for (const o of outs.slice(1)) {
      const t = types[o];
      if (!t || t.shape.length !== shape.length || t.shape.some((d, i) => !d.equals(shape[i]!))) {
        ctx.fail("E404", `fused_elementwise: output step ${o} must have the result's shape [${shape.map(String).join(", ")}]`);
      }
    }
    if (!Array.isArray(attrs.covers)) ctx.fail("E404", "fused_elementwise needs covers");
    return outs.map((o) => types[o]!);
  },
  evaluate(inputs, attrs, ctx) {
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
  },
});

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

export const ops: OpDef[] = [fusedElementwise];
export const builtins: BuiltinDef[] = [];

// Constant folding: a node whose inputs are all constants and whose outputs
// are small and of static shape is evaluated at compile time with its op's
// float64 reference semantics (getOp(op).evaluate) and replaced by `const`
// nodes, one per output, in its place. f32 results are rounded to f32, as
// every target stores them. The autodiff seed's `reshape(const 1)` and the
// gradient of a scalar `neg`, `neg(const 1)`, are typical.
//
// Not folded:
//  * shapes with symbols (they stay symbolic until run time);
//  * outputs of more than FOLD_MAX_ELEMENTS elements (a `broadcast_to` of a
//    scalar into a large tensor would become a large literal in the
//    generated code, for the price of one cheap kernel);
//  * random ops and ops whose training form differs (dropout, noise,
//    batchnorm): their values are only known at run time;
//  * results that are not finite or are −0 (they do not survive the JSON of
//    a module's constant table), and ops whose evaluation fails (a bad index
//    is a run-time error, reported when it happens);
//  * outputs or updates of the graph (they stay computed: see canRedirect).

import { TRAINING_FORM, RANDOM_OPS } from "../../autodiff/training.ts";
import type { Attrs, Graph, Node } from "../../ir/graph.ts";
import { getOp } from "../../ops/index.ts";
import type { EvalCtx } from "../../ops/op.ts";
import { Rng } from "../../reference/rng.ts";
import { RefTensor } from "../../reference/tensor.ts";
import type { Pass } from "../pipeline.ts";
import { SOURCE_OPS, canRedirect, redirect, removeIfUnused, staticSize, visibleValues } from "./util.ts";

/** The largest constant (in elements, per output) folding creates. */
export const FOLD_MAX_ELEMENTS = 256;

const NEVER_FOLD = new Set([...SOURCE_OPS, "grad", ...RANDOM_OPS, ...TRAINING_FORM]);

/** The value of a const node as a reference tensor. */
function constTensor(n: Node): RefTensor {
  return getOp("const").evaluate([], n.attrs, undefined as unknown as EvalCtx)[0]!;
}

/** The node's outputs, evaluated, or undefined when it must not be folded. */
function evaluateNode(n: Node): RefTensor[] | undefined {
  if (NEVER_FOLD.has(n.op) || n.inputs.length === 0) return undefined;
  if (!n.inputs.every((v) => v.node.op === "const")) return undefined;
  const shapes: number[][] = [];
  for (const v of n.outputs) {
    const size = staticSize(v.type.shape);
    if (size === undefined || size > FOLD_MAX_ELEMENTS) return undefined;
    shapes.push(v.type.shape.map((d) => d.constValue()!));
  }
  const ctx: EvalCtx = {
    node: n,
    training: false,
    rng: new Rng(() => {
      throw new Error("constant folding: op draws random numbers");
    }),
    outShapes: shapes,
    evalDim: (d) => {
      const c = d.constValue();
      if (c === undefined) throw new Error("constant folding: symbolic dim");
      return c;
    },
    fail: (message) => {
      throw new Error(message);
    },
  };
  let results: RefTensor[];
  try {
    results = getOp(n.op).evaluate(n.inputs.map((v) => constTensor(v.node)), n.attrs, ctx);
  } catch {
    return undefined;
  }
  if (results.length !== n.outputs.length) return undefined;
  for (const [i, r] of results.entries()) {
    const want = shapes[i]!;
    if (r.dtype !== n.outputs[i]!.type.dtype || r.shape.length !== want.length || r.shape.some((s, k) => s !== want[k])) return undefined;
  }
  return results.map((r) => (r.dtype === "f32" ? r.map((x) => Math.fround(x)) : r));
}

/** Const attributes in the form lowering writes them: `value` for a scalar, else `values` and `shape`. */
function constAttrs(t: RefTensor): Attrs | undefined {
  const values = [...t.data];
  if (values.some((x) => !Number.isFinite(x) || Object.is(x, -0))) return undefined;
  return t.shape.length === 0 ? { dtype: t.dtype, value: values[0]! } : { dtype: t.dtype, values, shape: [...t.shape] };
}

/** Folds constant subgraphs in one sweep (folded results feed later folds); returns how many nodes were folded. */
export function foldConstants(g: Graph): number {
  const visible = visibleValues(g);
  const result: Node[] = [];
  const orphans: Node[] = [];
  let folded = 0;
  for (const n of [...g.nodes]) {
    const values = evaluateNode(n);
    const attrs = values?.map(constAttrs);
    if (!values || !attrs || attrs.some((a) => a === undefined) || n.outputs.some((v) => visible.has(v))) {
      result.push(n);
      continue;
    }
    const consts = attrs.map((a, i) => {
      const c = g.addNode("const", [], a!, [n.outputs[i]!.type], { label: n.label, span: n.span });
      g.nodes.pop(); // placed where n was, below
      return c;
    });
    n.outputs.forEach((v, i) => {
      if (canRedirect(visible, v, consts[i]!.outputs[0]!)) redirect(g, visible, v, consts[i]!.outputs[0]!);
    });
    result.push(...consts);
    orphans.push(...n.inputs.map((v) => v.node));
    folded++;
  }
  g.nodes.splice(0, g.nodes.length, ...result);
  // The constants folded into others go when nothing else reads them.
  removeIfUnused(g, orphans);
  return folded;
}

export const foldPass: Pass = { name: "fold", run: (g) => void foldConstants(g) };

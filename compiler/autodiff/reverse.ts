// Reverse-mode automatic differentiation over the IR.
//
// `differentiate(g, y, wrt)` appends the backward graph of the scalar `y` to `g`
// as ordinary IR nodes and returns the gradient value of each `wrt`. Each op
// family supplies the local rule (`OpDef.grad`, next to its shape rule and
// reference semantics); this pass only decides which nodes lie between `wrt`
// and `y`, walks them in reverse graph order, and sums the contributions a
// value receives from each of its users.
//
// Only f32 values carry gradients. A path from `wrt` to `y` that passes through
// an op without a gradient (argmax) or a non-differentiable input (indices,
// masks, lengths, labels) is cut there; if every path is cut, asking for the
// gradient is an error (E309) rather than a silent zero.

import { CompileError, diag, type Span } from "../diagnostics.ts";
import type { Dim } from "../ir/dims.ts";
import type { Attrs, Graph, Node, Value } from "../ir/graph.ts";
import { typeToString } from "../ir/types.ts";
import { broadcastShapes } from "../ops/broadcast.ts";
import { getOp } from "../ops/index.ts";
import type { GradCtx, InferCtx } from "../ops/op.ts";

/** Emits one node with its shape rule; a failing rule is a compiler bug, not a user error. */
export function emitNode(g: Graph, op: string, inputs: readonly Value[], attrs: Attrs, meta: { label?: string; span?: Span } = {}): readonly Value[] {
  const ctx: InferCtx = {
    fail: (code, message) => {
      throw new Error(`internal: autodiff emitted an ill-typed ${op} (${code}: ${message}); inputs ${inputs.map((v) => typeToString(v.type)).join(", ")}`);
    },
    describeInput: (i) => typeToString(inputs[i]!.type),
  };
  const types = getOp(op).infer(inputs.map((v) => v.type), attrs, ctx);
  return g.addNode(op, inputs, attrs, types, meta).outputs;
}

function sameShape(a: readonly Dim[], b: readonly Dim[]): boolean {
  return a.length === b.length && a.every((d, i) => d.equals(b[i]!));
}

/** A GradCtx whose nodes are labelled after the forward node they differentiate. */
export function gradContext(g: Graph, node: Node | undefined, label?: string): GradCtx {
  const meta = { label: label ?? (node?.label ? `${node.label}.grad` : undefined), span: node?.span };
  const emit = (op: string, inputs: readonly Value[], attrs: Attrs = {}) => emitNode(g, op, inputs, attrs, meta);
  const emit1 = (op: string, inputs: readonly Value[], attrs: Attrs = {}) => emit(op, inputs, attrs)[0]!;
  const constant = (value: number) => emit1("const", [], { dtype: "f32", value });
  const ctx: GradCtx = {
    node: node!,
    emit,
    emit1,
    constant,
    unbroadcast(dy, to) {
      const R = dy.type.shape.length;
      const lead = R - to.shape.length;
      if (lead < 0) throw new Error(`internal: unbroadcast from rank ${R} to rank ${to.shape.length}`);
      const axes: number[] = [];
      dy.type.shape.forEach((d, i) => {
        if (i < lead) axes.push(i);
        else if (to.shape[i - lead]!.equals(1) && !d.equals(1)) axes.push(i);
      });
      let r = dy;
      if (axes.length) r = emit1("reduce", [dy], { kind: "sum", axes, keepdims: true });
      if (!sameShape(r.type.shape, to.shape)) r = emit1("reshape", [r], { shape: to.shape });
      return r;
    },
    broadcastTo(v, shape) {
      if (sameShape(v.type.shape, shape)) return v;
      const b = broadcastShapes(v.type.shape, shape);
      if (!b.ok) throw new Error(`internal: cannot broadcast ${typeToString(v.type)} to [${shape.join(", ")}]`);
      return emit1("broadcast_to", [v], { shape });
    },
    zeros(shape) {
      const z = constant(0);
      return shape.length ? emit1("broadcast_to", [z], { shape }) : z;
    },
    add(a, b) {
      return emit1("add", [a, b]);
    },
  };
  return ctx;
}

/** Whether input `i` of `node` can carry a gradient at all. */
export function differentiableInput(node: Node, i: number): boolean {
  const op = getOp(node.op);
  return node.inputs[i]!.type.dtype === "f32" && !(op.nondifferentiable ?? []).includes(i);
}

export interface DifferentiateOptions {
  /** The gradient flowing into `y` (default: the constant 1; `y` must then be a scalar). */
  readonly seed?: Value;
  /** Where a "no gradient path" error points (the grad() call). */
  readonly span?: Span;
  /** What the user asked for, for messages ("grad(score, x)"). */
  readonly what?: string;
}

/**
 * Appends the backward graph of `y` to `g` and returns d y / d w for each `w`
 * (zeros for a `w` that `y` does not depend on, unless only non-differentiable
 * paths connect them, which is E309).
 */
export function differentiate(g: Graph, y: Value, wrt: readonly Value[], opts: DifferentiateOptions = {}): Value[] {
  const grads = gradients(g, y, wrt, opts);
  const zeros = gradContext(g, undefined, "grad");
  return wrt.map((w, i) => grads[i] ?? zeros.zeros(w.type.shape));
}

/** As `differentiate`, but `undefined` for a `w` that `y` does not depend on. */
export function gradients(g: Graph, y: Value, wrt: readonly Value[], opts: DifferentiateOptions = {}): (Value | undefined)[] {
  // Values that depend differentiably on some w.
  const active = new Set<Value>(wrt);
  // Values that depend on some w by any path (to tell "cut" from "independent").
  const reachable = new Set<Value>(wrt);
  const cutBy = new Map<Value, Node>();
  for (const n of g.nodes) {
    let isActive = false;
    let isReachable = false;
    let cut: Node | undefined;
    n.inputs.forEach((v, i) => {
      if (reachable.has(v)) isReachable = true;
      if (cutBy.has(v)) cut ??= cutBy.get(v);
      if (active.has(v)) {
        if (differentiableInput(n, i) && !getOp(n.op).noGradient) isActive = true;
        else cut ??= n;
      }
    });
    for (const v of n.outputs) {
      if (isReachable) reachable.add(v);
      if (isActive && v.type.dtype === "f32") active.add(v);
      else if (isActive) cutBy.set(v, n); // an integer or bool result (cast, comparison) ends the path here
      else if (cut) cutBy.set(v, cut);
    }
  }
  if (!active.has(y) && reachable.has(y)) {
    const culprit = cutBy.get(y);
    const through = culprit ? `${culprit.op}${culprit.label ? ` '${culprit.label}'` : ""}` : "a non-differentiable value";
    throw new CompileError([
      diag("E309", `${opts.what ?? "the gradient"}: the value depends on its argument only through ${through}, which has no gradient`, opts.span ?? culprit?.span, {
        hint: "differentiate a value computed from floats (e.g. the logits, not argmax of them)",
      }),
    ]);
  }

  // Nodes between wrt and y.
  const needed = new Set<Node>();
  const stack: Node[] = [y.node];
  while (stack.length) {
    const n = stack.pop()!;
    if (needed.has(n)) continue;
    needed.add(n);
    for (const v of n.inputs) if (active.has(v)) stack.push(v.node);
  }
  const path = g.nodes.filter((n) => needed.has(n) && n.outputs.some((v) => active.has(v)));

  const grads = new Map<Value, Value>();
  const root = gradContext(g, undefined, "grad");
  if (opts.seed) {
    if (!sameShape(opts.seed.type.shape, y.type.shape)) throw new Error("internal: gradient seed shape differs from y");
    grads.set(y, opts.seed);
  } else {
    if (y.type.shape.length !== 0) throw new Error(`internal: differentiate needs a scalar, found ${typeToString(y.type)}`);
    grads.set(y, root.constant(1));
  }

  for (let k = path.length - 1; k >= 0; k--) {
    const node = path[k]!;
    const dys = node.outputs.map((v) => grads.get(v));
    if (dys.every((d) => d === undefined)) continue;
    const op = getOp(node.op);
    if (node.op === "input" || node.op === "param") continue;
    if (!op.grad) {
      throw new CompileError([
        diag("E309", `cannot differentiate through ${node.op}${node.label ? ` '${node.label}'` : ""}: it has no gradient rule`, node.span ?? opts.span),
      ]);
    }
    const ctx = gradContext(g, node);
    const dxs = op.grad(node.inputs, node.outputs, dys, node.attrs, ctx);
    node.inputs.forEach((x, i) => {
      if (!active.has(x) || !differentiableInput(node, i)) return;
      const dx = dxs[i];
      if (!dx) return;
      if (!sameShape(dx.type.shape, x.type.shape) || dx.type.dtype !== "f32") {
        throw new Error(`internal: gradient rule of ${node.op} gave ${typeToString(dx.type)} for input ${i} of type ${typeToString(x.type)}`);
      }
      const prev = grads.get(x);
      grads.set(x, prev ? ctx.add(prev, dx) : dx);
    });
  }
  return wrt.map((w) => grads.get(w));
}

// Algebraic identities: rewrites that remove a node or shorten a chain
// without changing any value (exactly, in IEEE arithmetic, except that
// x + 0 turns a −0 into +0):
//
//   transpose(x, identity perm)           → x
//   transpose(transpose(x, p), q)         → transpose(x, p∘q), or x when that is the identity
//   reshape(x) to x's own shape           → x
//   reshape(reshape(x))                   → reshape(x)
//   broadcast_to(x) to x's own shape      → x
//   neg(neg(x))                           → x
//   cast(x) to x's own dtype              → x
//   x·1, 1·x, x/1, x + 0, 0 + x, x − 0    → x, when the result has x's type (no broadcasting)
//   log(softmax(x, axis))                 → log_softmax(x, axis)
//   exp(log_softmax(x, axis))             → softmax(x, axis)
//
// The last two are not bit-exact: they replace two kernels (a reduction and
// a map) by the single reduction that computes the composition directly, and
// that one is also the more accurate: log(softmax(x)) is −∞ wherever softmax
// underflows (logits 104 apart in f32), log_softmax(x) = x − logsumexp(x)
// stays finite. Elsewhere the two agree to rounding.
//
// "1" and "0" are constants whose elements all equal that number, read
// through reshape/broadcast_to (so `broadcast_to(const 1)` counts). Chains
// are shortened in place (the outer node keeps its id, attributes change);
// removed nodes' readers are redirected with replaceUses, and nodes left
// without readers go at once. Outputs and updates are never redirected to an
// input, parameter or constant (see canRedirect). No new nodes are created.

import type { Attrs, Graph, Node, Value } from "../../ir/graph.ts";
import type { Pass } from "../pipeline.ts";
import { canRedirect, redirect, removeIfUnused, uniformConstant, visibleValues } from "./util.ts";

type Rewrite =
  /** The node's single output equals this existing value. */
  | { kind: "replace"; by: Value }
  /** The node stays, reading `inputs` with `attrs` instead. */
  | { kind: "rewire"; inputs: Value[]; attrs: Attrs; op?: string };

const isIdentityPerm = (p: readonly number[]) => p.every((x, i) => x === i);

/** Which operand is the neutral element `unit` (the other operand is then the result). */
function neutralOperand(n: Node, unit: number, positions: readonly number[]): Value | undefined {
  const out = n.outputs[0]!;
  for (const i of positions) {
    const other = n.inputs[1 - i]!;
    const u = uniformConstant(n.inputs[i]!);
    if (u !== undefined && u === unit && other.type.dtype === out.type.dtype && other.type.shape.length === out.type.shape.length && other.type.shape.every((d, k) => d.equals(out.type.shape[k]!))) {
      return other;
    }
  }
  return undefined;
}

function rewriteOf(n: Node): Rewrite | undefined {
  const x = n.inputs[0];
  if (!x) return undefined;
  const out = n.outputs[0]!;
  const sameShape = (v: Value) => v.type.shape.length === out.type.shape.length && v.type.shape.every((d, i) => d.equals(out.type.shape[i]!));
  switch (n.op) {
    case "transpose": {
      const q = n.attrs.perm as readonly number[];
      if (isIdentityPerm(q)) return { kind: "replace", by: x };
      if (x.node.op !== "transpose") return undefined;
      // out[i] = y[q[i]] and y[j] = src[p[j]], so out[i] = src[p[q[i]]].
      const p = x.node.attrs.perm as readonly number[];
      const composed = q.map((i) => p[i]!);
      const src = x.node.inputs[0]!;
      return isIdentityPerm(composed) ? { kind: "replace", by: src } : { kind: "rewire", inputs: [src], attrs: { ...n.attrs, perm: composed } };
    }
    case "reshape":
      if (sameShape(x)) return { kind: "replace", by: x };
      if (x.node.op === "reshape") {
        const src = x.node.inputs[0]!;
        return sameShape(src) ? { kind: "replace", by: src } : { kind: "rewire", inputs: [src], attrs: n.attrs };
      }
      return undefined;
    case "broadcast_to":
      return sameShape(x) ? { kind: "replace", by: x } : undefined;
    case "cast":
      return x.type.dtype === out.type.dtype ? { kind: "replace", by: x } : undefined;
    case "neg":
      return x.node.op === "neg" ? { kind: "replace", by: x.node.inputs[0]! } : undefined;
    case "mul": {
      const by = neutralOperand(n, 1, [0, 1]);
      return by ? { kind: "replace", by } : undefined;
    }
    case "add": {
      const by = neutralOperand(n, 0, [0, 1]);
      return by ? { kind: "replace", by } : undefined;
    }
    case "sub": {
      const by = neutralOperand(n, 0, [1]);
      return by ? { kind: "replace", by } : undefined;
    }
    case "div": {
      const by = neutralOperand(n, 1, [1]);
      return by ? { kind: "replace", by } : undefined;
    }
    case "log":
      return x.node.op === "softmax" ? { kind: "rewire", inputs: [x.node.inputs[0]!], attrs: x.node.attrs, op: "log_softmax" } : undefined;
    case "exp":
      return x.node.op === "log_softmax" ? { kind: "rewire", inputs: [x.node.inputs[0]!], attrs: x.node.attrs, op: "softmax" } : undefined;
    default:
      return undefined;
  }
}

/** Applies the identities until none applies; returns how many rewrites were made. */
export function applyIdentities(g: Graph): number {
  const visible = visibleValues(g);
  let rewrites = 0;
  for (let changed = true; changed; ) {
    changed = false;
    const orphans: Node[] = [];
    for (const n of [...g.nodes]) {
      if (n.outputs.length !== 1) continue;
      const r = rewriteOf(n);
      if (!r) continue;
      if (r.kind === "replace") {
        if (!canRedirect(visible, n.outputs[0]!, r.by)) continue;
        redirect(g, visible, n.outputs[0]!, r.by);
        orphans.push(n);
      } else {
        orphans.push(...n.inputs.map((v) => v.node));
        (n as { inputs: Node["inputs"] }).inputs = r.inputs;
        (n as { attrs: Attrs }).attrs = r.attrs;
        if (r.op) (n as { op: string }).op = r.op;
      }
      rewrites++;
      changed = true;
    }
    removeIfUnused(g, orphans);
  }
  return rewrites;
}

export const identitiesPass: Pass = { name: "identities", run: (g) => void applyIdentities(g) };

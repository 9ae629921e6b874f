// Common-subexpression elimination: a node with the same op, the same inputs
// and equal attributes as an earlier node computes the same values, so its
// readers read the earlier node's outputs instead and it goes. The earliest
// node survives (ids of survivors stay stable; kernel names and random
// streams are keyed by them). One sweep in graph order suffices: merging a
// node rewires its readers before they are looked at.
//
//  * Attributes compare structurally, dims with Dim.equals, numbers with
//    Object.is (const 0 and const −0 stay apart).
//  * add and mul are commutative (exactly, in IEEE arithmetic): add(a, b)
//    and add(b, a) merge.
//  * Random ops (dropout, gaussian_noise) never merge: two dropouts of the
//    same x draw different masks. Inputs and parameters never merge.
//  * Multi-output nodes merge output by output (all or nothing).
//  * An output or update is not redirected to a constant (see canRedirect).

import { RANDOM_OPS } from "../../autodiff/training.ts";
import type { Graph, Node, Value } from "../../ir/graph.ts";
import type { Pass } from "../pipeline.ts";
import { attrsEqual, attrsKey, canRedirect, redirect, removeNodes, visibleValues } from "./util.ts";

const NEVER_MERGE = new Set(["input", "param", "grad", ...RANDOM_OPS]);
const COMMUTATIVE = new Set(["add", "mul"]);

function operands(n: Node): readonly Value[] {
  if (!COMMUTATIVE.has(n.op) || n.inputs.length !== 2) return n.inputs;
  const [a, b] = n.inputs as [Value, Value];
  return a.id <= b.id ? [a, b] : [b, a];
}

function sameComputation(a: Node, b: Node): boolean {
  const ia = operands(a);
  const ib = operands(b);
  return (
    a.op === b.op &&
    ia.length === ib.length &&
    ia.every((v, i) => v === ib[i]) &&
    a.outputs.length === b.outputs.length &&
    attrsEqual(a.attrs, b.attrs)
  );
}

/** Merges duplicate nodes into their earliest copy; returns how many went. */
export function eliminateCommonSubexpressions(g: Graph): number {
  const visible = visibleValues(g);
  const seen = new Map<string, Node[]>();
  const dead = new Set<Node>();
  for (const n of g.nodes) {
    if (NEVER_MERGE.has(n.op)) continue;
    const key = `${n.op}(${operands(n).map((v) => v.id).join(",")})${attrsKey(n.attrs)}`;
    const bucket = seen.get(key);
    const twin = bucket?.find((m) => sameComputation(m, n) && n.outputs.every((v, i) => canRedirect(visible, v, m.outputs[i]!)));
    if (!twin) {
      if (bucket) bucket.push(n);
      else seen.set(key, [n]);
      continue;
    }
    n.outputs.forEach((v, i) => redirect(g, visible, v, twin.outputs[i]!));
    dead.add(n);
  }
  return removeNodes(g, dead);
}

export const csePass: Pass = { name: "cse", run: (g) => void eliminateCommonSubexpressions(g) };

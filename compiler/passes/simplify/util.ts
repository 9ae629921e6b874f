// Helpers shared by the simplification passes (dce, cse, fold, identities):
// which values the outside sees, safe redirection of uses, removal of nodes
// nothing reads any more, attribute equality, and reading a constant's value
// through the views (reshape, broadcast_to) that leave it unchanged.

import { replaceUses } from "../../autodiff/grad-calls.ts";
import { Dim } from "../../ir/dims.ts";
import type { AttrValue, Attrs, Graph, Node, Value } from "../../ir/graph.ts";

/** Nodes whose values come from outside the graph or from attributes. */
export const SOURCE_OPS = new Set(["input", "param", "const"]);

/** Values the outside reads: outputs, losses and buffer updates. */
export function visibleValues(g: Graph): Set<Value> {
  return new Set([...g.outputs.map((o) => o.value), ...g.bufferUpdates.map((u) => u.value)]);
}

/**
 * Whether every reader of `from` may read `to` instead. An output or update
 * is never redirected to an input, parameter or constant: the runtimes hand
 * outputs back from computed buffers and write updates over parameters, so a
 * result that *is* a parameter's or an input's buffer would alias it.
 */
export function canRedirect(visible: ReadonlySet<Value>, from: Value, to: Value): boolean {
  if (from === to) return false;
  if (from.type.dtype !== to.type.dtype || from.type.shape.length !== to.type.shape.length) return false;
  if (!from.type.shape.every((d, i) => d.equals(to.type.shape[i]!))) return false;
  return !(visible.has(from) && SOURCE_OPS.has(to.node.op));
}

/** Redirects the readers of `from` to `to` (nodes, outputs, updates); `visible` follows. */
export function redirect(g: Graph, visible: Set<Value>, from: Value, to: Value): void {
  replaceUses(g, from, to);
  if (visible.delete(from)) visible.add(to);
}

/** Removes the given nodes from the graph (order of the rest unchanged). */
export function removeNodes(g: Graph, dead: ReadonlySet<Node>): number {
  if (dead.size === 0) return 0;
  const kept = g.nodes.filter((n) => !dead.has(n));
  const removed = g.nodes.length - kept.length;
  g.nodes.splice(0, g.nodes.length, ...kept);
  return removed;
}

/**
 * Removes those of `candidates` (and, transitively, their producers among
 * the candidates' inputs) that nothing reads any more. Inputs and parameters
 * always stay: the graph's maps name them.
 */
export function removeIfUnused(g: Graph, candidates: Iterable<Node>): number {
  const uses = new Map<Value, number>();
  const count = (v: Value, k: number) => uses.set(v, (uses.get(v) ?? 0) + k);
  for (const n of g.nodes) for (const v of n.inputs) count(v, 1);
  for (const v of visibleValues(g)) count(v, 1);
  const dead = new Set<Node>();
  const stack = [...candidates];
  while (stack.length) {
    const n = stack.pop()!;
    if (dead.has(n) || n.op === "input" || n.op === "param") continue;
    if (n.outputs.some((v) => (uses.get(v) ?? 0) > 0)) continue;
    dead.add(n);
    for (const v of n.inputs) {
      count(v, -1);
      stack.push(v.node);
    }
  }
  return removeNodes(g, dead);
}

/** Structural equality of attributes; dims compare with `equals`, numbers with Object.is (0 ≠ −0). */
export function attrsEqual(a: AttrValue | Attrs, b: AttrValue | Attrs): boolean {
  if (a instanceof Dim || b instanceof Dim) return a instanceof Dim && b instanceof Dim && a.equals(b);
  if (typeof a === "number" || typeof b === "number") return Object.is(a, b);
  if (a === null || b === null || typeof a !== "object" || typeof b !== "object") return a === b;
  if (Array.isArray(a) !== Array.isArray(b)) return false;
  if (Array.isArray(a)) {
    const bb = b as readonly AttrValue[];
    return a.length === bb.length && a.every((x: AttrValue, i: number) => attrsEqual(x, bb[i]!));
  }
  const ka = Object.keys(a).filter((k) => (a as Attrs)[k] !== undefined);
  const kb = Object.keys(b).filter((k) => (b as Attrs)[k] !== undefined);
  return ka.length === kb.length && ka.every((k) => k in b && attrsEqual((a as Attrs)[k]!, (b as Attrs)[k]!));
}

/** A hash key for attributes: equal attributes give equal keys (the converse is checked with attrsEqual). */
export function attrsKey(a: AttrValue | Attrs): string {
  return JSON.stringify(a, (_k, v: unknown) => (v instanceof Dim ? `dim:${v.toString()}` : v));
}

/** Every dim of the shape is a known number. */
export function staticSize(shape: readonly Dim[]): number | undefined {
  let n = 1;
  for (const d of shape) {
    const c = d.constValue();
    if (c === undefined) return undefined;
    n *= c;
  }
  return n;
}

/**
 * The single number every element of `v` equals, when `v` is a constant (or
 * a reshape/broadcast_to of one) whose elements are all that number.
 */
export function uniformConstant(v: Value): number | undefined {
  let n = v.node;
  while (n.op === "reshape" || n.op === "broadcast_to") n = n.inputs[0]!.node;
  if (n.op !== "const") return undefined;
  const values = n.attrs.values as readonly number[] | undefined;
  if (!values) return (n.attrs.value as number | undefined) ?? 0;
  if (values.length === 0) return undefined;
  const first = values[0]!;
  return values.every((x) => Object.is(x, first)) ? first : undefined;
}

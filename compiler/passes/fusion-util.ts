// Helpers shared by the fusion passes (fuse-elementwise.ts, fuse-epilogue.ts).

import type { Node, Value } from "../ir/graph.ts";

/**
 * Whether some value the group reads from outside depends on a member (a path
 * that leaves the group and comes back in): walks back from the group's outside
 * producers, no further than the group's first node.
 */
export function createsCycle(members: ReadonlySet<Node>, pos: ReadonlyMap<Node, number>): boolean {
  let first = Infinity;
  for (const m of members) first = Math.min(first, pos.get(m)!);
  const seen = new Set<Node>();
  const stack: Node[] = [];
  for (const m of members) for (const v of m.inputs) if (!members.has(v.node)) stack.push(v.node);
  while (stack.length) {
    const n = stack.pop()!;
    if (seen.has(n) || pos.get(n)! < first) continue;
    seen.add(n);
    if (members.has(n)) return true;
    for (const v of n.inputs) stack.push(v.node);
  }
  return false;
}

/** `nodes` in their order, except that a node whose input comes later is moved after it. */
export function stableTopologicalOrder(nodes: readonly Node[]): Node[] {
  const producer = new Map<Value, Node>();
  for (const n of nodes) for (const v of n.outputs) producer.set(v, n);
  const done = new Set<Node>();
  const out: Node[] = [];
  const visit = (n: Node) => {
    if (done.has(n)) return;
    done.add(n);
    for (const v of n.inputs) {
      const p = producer.get(v);
      if (p) visit(p);
    }
    out.push(n);
  };
  for (const n of nodes) visit(n);
  return out;
}

export function sameShape(a: Value, b: Value): boolean {
  const x = a.type.shape;
  const y = b.type.shape;
  return x.length === y.length && x.every((d, i) => d.equals(y[i]!));
}

// Fusion of elementwise chains: connected groups of elementwise nodes
// (compiler/ops/elementwise.ts: binary arithmetic, activations, where, clip,
// cast, unary_grad, binary_grad) become one `fused_elementwise` node
// (compiler/ops/fused.ts), so both code generators emit one kernel, one pass
// over memory, instead of one per node.
//
// Grouping is greedy, from the end of the graph backwards: an elementwise node
// not yet in a group starts one as its sink (the root); the group then grows
// through its members' inputs, taking the producing node when it is
// elementwise and not in another group and
//  * every user of its value is in the group (an interior value: it lives in
//    registers only), or
//  * its value has exactly the root's shape: it is also stored, as an extra
//    output of the fused node, for its users outside the group (graph
//    outputs, losses and buffer updates included). `x = a + b; y = relu(x)`
//    in a training graph, where unary_grad also reads x, is one kernel with
//    two outputs instead of two kernels;
// and the group stays acyclic (no path leaves the group and comes back in)
// and within MAX_BUFFERS storage buffers (inputs plus outputs; WebGPU
// guarantees 8 per shader stage). Groups of one node are left alone.
//
// NumPy broadcasting is kept exactly: each input of the fused node keeps its
// own shape and is read with stride 0 along the dims it is broadcast over;
// an interior value of a smaller shape (an op on a bias) is recomputed per
// element of the result rather than stored.
//
// The fused node takes the place of the group's root in the node list, with a
// new id (the ids of the nodes it covers are recorded in its `covers`); a final
// stable topological sort moves the (rare) outside users of an extra output
// that came before the root after the fused node. The pass runs on forward and
// training graphs alike, after autodiff: fused nodes have no gradient rule.

import { replaceUses } from "../autodiff/grad-calls.ts";
import type { Graph, Node, Value } from "../ir/graph.ts";
import { coverOf, FUSIBLE_OPS, type FusedAttrs, type FusedCover, type FusedStep } from "../ops/fused.ts";
import { createsCycle, sameShape, stableTopologicalOrder } from "./fusion-util.ts";
import type { Pass } from "./pipeline.ts";

/** Storage buffers one fused kernel may bind (inputs + outputs). */
export const MAX_BUFFERS = 8;

function fusible(n: Node): boolean {
  return FUSIBLE_OPS.has(n.op) && n.outputs.length === 1;
}


interface Group {
  readonly root: Node;
  readonly members: Set<Node>;
}

/** Groups of two or more fusible nodes, found greedily from the end of the graph. */
export function findGroups(g: Graph): Group[] {
  const users = g.users();
  const external = new Map<Value, number>();
  for (const o of g.outputs) external.set(o.value, (external.get(o.value) ?? 0) + 1);
  for (const u of g.bufferUpdates) external.set(u.value, (external.get(u.value) ?? 0) + 1);
  const pos = new Map<Node, number>();
  g.nodes.forEach((n, i) => pos.set(n, i));
  const assigned = new Set<Node>();
  const groups: Group[] = [];

  for (let r = g.nodes.length - 1; r >= 0; r--) {
    const root = g.nodes[r]!;
    if (assigned.has(root) || !fusible(root)) continue;
    const members = new Set<Node>([root]);
    const exported = new Set<Node>();
    const queue: Node[] = [root];
    while (queue.length) {
      const m = queue.shift()!;
      for (const v of m.inputs) {
        const p = v.node;
        if (members.has(p) || assigned.has(p) || !fusible(p)) continue;
        const value = p.outputs[0]!;
        const inside = (users.get(value) ?? []).every((u) => members.has(u)) && !external.has(value);
        if (!inside && !sameShape(value, root.outputs[0]!)) continue;
        members.add(p);
        if (!inside) exported.add(p);
        if ((exported.size > 0 && createsCycle(members, pos)) || bufferCount(members, exported) > MAX_BUFFERS) {
          members.delete(p);
          exported.delete(p);
          continue;
        }
        queue.push(p);
      }
    }
    // A member whose users were all inside when it joined stays interior: later members only add users inside.
    if (members.size < 2) continue;
    for (const m of members) assigned.add(m);
    groups.push({ root, members });
  }
  return groups;
}

/** Distinct values read from outside the group plus the values it must store. */
function bufferCount(members: ReadonlySet<Node>, exported: ReadonlySet<Node>): number {
  const ins = new Set<Value>();
  for (const m of members) for (const v of m.inputs) if (!members.has(v.node)) ins.add(v);
  return ins.size + 1 + exported.size;
}


/** Rewrites each group into one fused_elementwise node (see the file comment). */
export function fuseElementwise(g: Graph): number {
  const groups = findGroups(g);
  if (groups.length === 0) return 0;
  const pos = new Map<Node, number>();
  g.nodes.forEach((n, i) => pos.set(n, i));
  const users = g.users();
  const external = new Set<Value>([...g.outputs.map((o) => o.value), ...g.bufferUpdates.map((u) => u.value)]);
  const replacement = new Map<Node, Node>();

  // New ids in graph order of the roots.
  groups.sort((a, b) => pos.get(a.root)! - pos.get(b.root)!);
  for (const { root, members } of groups) {
    const order = [...members].sort((a, b) => pos.get(a)! - pos.get(b)!);
    const inputs: Value[] = [];
    const stepOf = new Map<Value, number>();
    const steps: FusedStep[] = [];
    // Loads first, in order of first use, one per distinct outside value.
    for (const m of order) {
      for (const v of m.inputs) {
        if (members.has(v.node) || stepOf.has(v)) continue;
        stepOf.set(v, steps.length);
        steps.push({ op: "load", input: inputs.length });
        inputs.push(v);
      }
    }
    const covers: FusedCover[] = [];
    for (const m of order) {
      const step: FusedStep = Object.keys(m.attrs).length
        ? { op: m.op, args: m.inputs.map((v) => stepOf.get(v)!), attrs: m.attrs }
        : { op: m.op, args: m.inputs.map((v) => stepOf.get(v)!) };
      stepOf.set(m.outputs[0]!, steps.length);
      steps.push(step);
      covers.push(coverOf(m));
    }
    const extra = order.filter((m) => m !== root && (external.has(m.outputs[0]!) || (users.get(m.outputs[0]!) ?? []).some((u) => !members.has(u))));
    const outs = [root, ...extra];
    const attrs: FusedAttrs = { steps, outputs: outs.map((m) => stepOf.get(m.outputs[0]!)!), covers };
    const fused = g.addNode("fused_elementwise", inputs, attrs, outs.map((m) => m.outputs[0]!.type), { label: root.label, span: root.span });
    g.nodes.pop();
    replacement.set(root, fused);
    outs.forEach((m, k) => replaceUses(g, m.outputs[0]!, fused.outputs[k]!));
  }

  const removed = new Set<Node>(groups.flatMap((gr) => [...gr.members]));
  const kept = g.nodes.flatMap((n) => (replacement.has(n) ? [replacement.get(n)!] : removed.has(n) ? [] : [n]));
  g.nodes.splice(0, g.nodes.length, ...stableTopologicalOrder(kept));
  return groups.length;
}


export const fuseElementwisePass: Pass = { name: "fuse-elementwise", run: (g) => void fuseElementwise(g) };

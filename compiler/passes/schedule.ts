// Scheduling for peak memory: the order of g.nodes is the order both code
// generators run the kernels in, and the memory plan (compiler/passes/memory.ts)
// gives a value memory from its node to its last reader, so the order decides
// how much is live at once. This pass reorders the nodes (ids, inputs and
// results unchanged: only their positions move) to lower the planned bytes.
//
// Candidates, each a topological order of the graph built by one list
// scheduler (sources are placed right before their first reader, so the
// printed graph still reads top-down):
//  * the given order;
//  * the given order, but any node that allocates nothing (an optimizer
//    update, which writes over its parameter; a view; a loss) as soon as it is
//    ready: a gradient then dies right after it is complete instead of living
//    until the updates at the end of the training graph;
//  * greedy: among the ready nodes, the one that frees the most bytes net of
//    what it allocates (ties: the earlier in the given order).
// Each candidate is planned (planProgramMemory + planBytes at REFERENCE_SIZE for
// every symbol) and the one with the fewest planned bytes is kept, the given
// order on ties — so the pass never makes the plan worse at that binding.
//
// Hazard: an optimizer update writes the new parameter and optimizer state over
// the old ones in place (UPDATE_IN_PLACE; the planner does so only when the
// update is the last reader). Every scheduler therefore runs an update after
// EVERY other reader of the storage it overwrites — forward users, backward
// ops that read the weight (conv_grad_input, einsum with W), views of it — so
// hoisting an update never costs its in-place write nor reorders a read of
// the old value after the write. (A reader that itself depends on the update
// cannot precede it; then there is no constraint and the planner copies.)

import { neededNodes, type Graph, type Node, type Value } from "../ir/graph.ts";
import { planProgramMemory, UPDATE_IN_PLACE, VIEW_OPS } from "../codegen/js/program.ts";
import { elementCount, ELEMENT_BYTES, planBytes } from "./memory.ts";
import type { Pass } from "./pipeline.ts";

/** Every symbol is bound to this size when candidate schedules are compared. */
export const REFERENCE_SIZE = 32;

const SOURCE_OPS = new Set(["input", "param", "const"]);

/** What the entry of `g` returns (outputs and state updates): pinned by the plan. */
function rootsOf(g: Graph): Value[] {
  return [...g.outputs.map((o) => o.value), ...g.bufferUpdates.map((u) => u.value)];
}

/** Storage owner of each value: itself, or (through views) the value a view aliases. */
function owners(nodes: readonly Node[]): Map<Value, Value> {
  const owner = new Map<Value, Value>();
  for (const n of nodes) {
    if (VIEW_OPS.has(n.op)) owner.set(n.outputs[0]!, owner.get(n.inputs[0]!) ?? n.inputs[0]!);
    else for (const v of n.outputs) owner.set(v, v);
  }
  return owner;
}

/**
 * Extra edges reader → update: each node that overwrites an input's storage in place (an optimizer update) comes
 * after every other reader of that storage, unless that reader depends on the update.
 */
export function hazardEdges(nodes: readonly Node[]): Map<Node, Node[]> {
  const owner = owners(nodes);
  const readers = new Map<Value, Node[]>();
  const users = new Map<Node, Node[]>();
  for (const n of nodes) {
    for (const o of new Set(n.inputs.map((v) => owner.get(v)!))) readers.set(o, [...(readers.get(o) ?? []), n]);
    for (const p of new Set(n.inputs.map((v) => v.node))) users.set(p, [...(users.get(p) ?? []), n]);
  }
  const after = new Map<Node, Node[]>();
  for (const u of nodes) {
    const pairs = UPDATE_IN_PLACE[u.op];
    if (!pairs) continue;
    // Nodes that depend on u cannot come before it.
    const below = new Set<Node>();
    const stack = [u];
    while (stack.length) for (const m of users.get(stack.pop()!) ?? []) if (!below.has(m)) stack.push((below.add(m), m));
    const before = new Set<Node>();
    for (const [, k] of pairs) {
      const x = u.inputs[k];
      if (!x) continue;
      for (const r of readers.get(owner.get(x)!) ?? []) if (r !== u && !below.has(r)) before.add(r);
    }
    if (before.size) after.set(u, [...before]);
  }
  return after;
}

type Pick = (ready: readonly Node[], net: (n: Node) => { freed: number; allocated: number }) => Node;

/** A topological order of `nodes` (data and hazard edges) chosen by `pick`; sources go right before their first reader. */
function listSchedule(nodes: readonly Node[], roots: readonly Value[], env: Record<string, number>, pick: Pick): Node[] {
  const position = new Map(nodes.map((n, i) => [n, i]));
  const hazards = hazardEdges(nodes);
  const owner = owners(nodes);
  const pinned = new Set<Value>(roots.map((r) => owner.get(r) ?? r));
  const bytes = (v: Value) => elementCount(v, env) * ELEMENT_BYTES[v.type.dtype];
  // Unscheduled readers of each owner; predecessors left of each node.
  const readersLeft = new Map<Value, number>();
  const waiting = new Map<Node, number>();
  const successors = new Map<Node, Node[]>();
  const edge = (from: Node, to: Node) => {
    successors.set(from, [...(successors.get(from) ?? []), to]);
    waiting.set(to, (waiting.get(to) ?? 0) + 1);
  };
  for (const n of nodes) {
    waiting.set(n, waiting.get(n) ?? 0);
    for (const o of new Set(n.inputs.map((v) => owner.get(v)!))) readersLeft.set(o, (readersLeft.get(o) ?? 0) + 1);
    for (const p of new Set(n.inputs.map((v) => v.node))) if (!SOURCE_OPS.has(p.op)) edge(p, n);
  }
  for (const [u, before] of hazards) for (const r of before) edge(r, u);
  const net = (n: Node) => {
    let freed = 0;
    for (const o of new Set(n.inputs.map((v) => owner.get(v)!))) if (readersLeft.get(o) === 1 && !pinned.has(o) && !SOURCE_OPS.has(o.node.op)) freed += bytes(o);
    const allocated = VIEW_OPS.has(n.op) ? 0 : n.outputs.filter((v) => !pinned.has(v)).reduce((s, v) => s + bytes(v), 0);
    return { freed, allocated };
  };
  const order: Node[] = [];
  const placed = new Set<Node>();
  const ready = nodes.filter((n) => !SOURCE_OPS.has(n.op) && waiting.get(n) === 0);
  while (ready.length) {
    const n = pick(ready, net);
    ready.splice(ready.indexOf(n), 1);
    for (const v of n.inputs) if (SOURCE_OPS.has(v.node.op) && !placed.has(v.node)) order.push((placed.add(v.node), v.node));
    order.push((placed.add(n), n));
    for (const o of new Set(n.inputs.map((v) => owner.get(v)!))) readersLeft.set(o, readersLeft.get(o)! - 1);
    for (const m of successors.get(n) ?? []) {
      waiting.set(m, waiting.get(m)! - 1);
      if (waiting.get(m) === 0) {
        // Kept sorted by given position, so picks are deterministic and ties keep the given order.
        const at = ready.findIndex((r) => position.get(r)! > position.get(m)!);
        ready.splice(at < 0 ? ready.length : at, 0, m);
      }
    }
  }
  // Sources nobody reads keep their place at the end.
  for (const n of nodes) if (!placed.has(n)) order.push(n);
  if (order.length !== nodes.length || !isTopological(order)) throw new Error("internal: schedule is not a topological order");
  return order;
}

function isTopological(order: readonly Node[]): boolean {
  const seen = new Set<Node>();
  for (const n of order) {
    if (n.inputs.some((v) => !seen.has(v.node))) return false;
    seen.add(n);
  }
  return true;
}

/** The given order, except that nodes allocating nothing run as soon as they are ready. */
const eager: Pick = (ready, net) => ready.find((n) => net(n).allocated === 0) ?? ready[0]!;

/** The ready node that frees the most bytes net of what it allocates; the earliest on ties. */
const greedy: Pick = (ready, net) => {
  let best = ready[0]!;
  let bestScore = -Infinity;
  for (const n of ready) {
    const { freed, allocated } = net(n);
    if (freed - allocated > bestScore) [best, bestScore] = [n, freed - allocated];
  }
  return best;
};

/** Planned bytes of running `order` (what the code generators would allocate) at `env`. */
export function plannedBytes(order: readonly Node[], roots: readonly Value[], env: Record<string, number>): number {
  const fake = { nodes: order } as unknown as Graph;
  return planBytes(planProgramMemory(neededNodes(fake, roots), roots), env).planned;
}

/** The candidate orders of `g`'s nodes, by name, the given order first. */
export function candidateSchedules(g: Graph, env: Record<string, number>): { name: string; order: Node[] }[] {
  const roots = rootsOf(g);
  return [
    { name: "given", order: [...g.nodes] },
    { name: "eager", order: listSchedule(g.nodes, roots, env, eager) },
    { name: "greedy", order: listSchedule(g.nodes, roots, env, greedy) },
  ];
}

/** Reorders `g.nodes` in place to the candidate with the fewest planned bytes; returns its name. */
export function scheduleForMemory(g: Graph): string {
  const env = Object.fromEntries(g.symbols.map((s) => [s, REFERENCE_SIZE]));
  const roots = rootsOf(g);
  let best: { name: string; order: Node[]; bytes: number } | undefined;
  for (const c of candidateSchedules(g, env)) {
    const bytes = plannedBytes(c.order, roots, env);
    if (!best || bytes < best.bytes) best = { ...c, bytes };
  }
  g.nodes.splice(0, g.nodes.length, ...best!.order);
  return best!.name;
}

export const schedulePass: Pass = {
  name: "schedule",
  run(g) {
    scheduleForMemory(g);
  },
};

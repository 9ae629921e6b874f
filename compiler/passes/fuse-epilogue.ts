// Epilogue fusion: a contraction (a forward `conv`, or an `einsum` of one or
// two operands: dense layers, matmuls) and the elementwise nodes that follow
// it (bias, activation, residual add, scaling, an activation's gradient in a
// training graph) become one `fused_epilogue` node (compiler/ops/fused.ts):
// both code generators emit the contraction's own kernel with every result
// element run through the elementwise program before it is stored, so the
// result is written once instead of written, read and written again per
// elementwise kernel.
//
// Grouping, per base node in graph order: the group grows through the users
// of its values (the base result and its members' results), taking a user
// when it is elementwise (FUSIBLE_OPS, one output), not in another group,
// has exactly the base result's shape (its other operands broadcast to it:
// a bias, a residual, a scalar; an op whose result would be larger is left
// out), the group stays acyclic (no operand of a member depends on a member
// through a node outside) and within MAX_BUFFERS storage buffers (base inputs,
// epilogue inputs and outputs). A user may read a group value as any of its
// operands (`add(residual, conv)`, `unary_grad(relu, y, y, dy)` with dy an
// einsum's result). Values of the group read outside it (graph outputs, a
// pre-activation the backward reads) are stored as extra outputs: every
// member has the base result's shape, so any of them may be. A base with no
// fusible user is left alone.
//
// The fused node takes the place of the group's last member, with a new id;
// a stable topological sort then moves outside users of stored values that
// came before it after it. Runs after einsum-path (which makes contractions
// pairwise) and before fuse-elementwise (which takes the chains left over).

import { replaceUses } from "../autodiff/grad-calls.ts";
import type { Graph, Node, Value } from "../ir/graph.ts";
import { JS_POOL_EPILOGUE } from "../codegen/js/epilogue.ts";
import { WGSL_SUPPORTS_POOL_EPILOGUE } from "../codegen/wgsl/epilogue.ts";
import { coverOf, FUSIBLE_OPS, type EpilogueAttrs, type EpiloguePool, type FusedCover, type FusedStep } from "../ops/fused.ts";
import type { PoolAttrs } from "../ops/pool.ts";
import { MAX_BUFFERS } from "./fuse-elementwise.ts";
import { createsCycle, sameShape, stableTopologicalOrder } from "./fusion-util.ts";
import type { Pass } from "./pipeline.ts";

/** Whether the pass absorbs pools into conv epilogues: only when both code generators emit them. */
export const POOL_EPILOGUE = JS_POOL_EPILOGUE && WGSL_SUPPORTS_POOL_EPILOGUE;

/** Whether both code generators emit `n` as the base of an epilogue (its stores go through the hook). */
export function isEpilogueBase(n: Node): boolean {
  if (n.outputs.length !== 1 || n.outputs[0]!.type.dtype !== "f32") return false;
  if (n.op === "conv") return true;
  return n.op === "einsum" && n.inputs.length >= 1 && n.inputs.length <= 2;
}

function fusible(n: Node): boolean {
  return FUSIBLE_OPS.has(n.op) && n.outputs.length === 1;
}

export interface EpilogueGroup {
  readonly base: Node;
  /** The elementwise nodes, in graph order. */
  readonly members: readonly Node[];
  /** Stage 2: the pool node absorbed after the program (its result is the group's only output). */
  readonly pool?: Node;
}

export interface EpilogueOptions {
  /** Absorb a following max/avg pool into a conv's epilogue (only when both code generators can emit it). */
  readonly pool?: boolean;
}

/**
 * The pool an epilogue can absorb: max or avg, stride = window, no padding,
 * no dilation, floor mode, no mask, over all spatial dims of a conv result.
 */
function epiloguePoolOf(p: Node, base: Node): EpiloguePool | undefined {
  if (p.op !== "pool" || p.inputs.length !== 1) return undefined;
  const a = p.attrs as unknown as PoolAttrs;
  const d = base.outputs[0]!.type.shape.length - 2;
  const ok =
    (a.kind === "max" || a.kind === "avg") &&
    a.window.length === d &&
    a.window.every((k, i) => a.stride[i] === k && a.padBegin[i] === 0 && a.padEnd[i] === 0 && a.dilation[i] === 1) &&
    !a.ceilMode &&
    !a.hasMask;
  return ok ? { kind: a.kind as "max" | "avg", window: [...a.window] } : undefined;
}

/** The epilogue groups of `g` (bases with at least one member), in graph order of their bases. */
export function findEpilogueGroups(g: Graph, opts: EpilogueOptions = {}): EpilogueGroup[] {
  const users = g.users();
  const external = new Set<Value>([...g.outputs.map((o) => o.value), ...g.bufferUpdates.map((u) => u.value)]);
  const pos = new Map<Node, number>();
  g.nodes.forEach((n, i) => pos.set(n, i));
  const assigned = new Set<Node>();
  const groups: EpilogueGroup[] = [];

  for (const base of g.nodes) {
    if (!isEpilogueBase(base)) continue;
    const result = base.outputs[0]!;
    const members = new Set<Node>([base]);
    // Users in graph order, so a member's producers inside the group join before it.
    const candidates = (v: Value) => (users.get(v) ?? []).filter((u) => !members.has(u) && !assigned.has(u) && fusible(u) && sameShape(u.outputs[0]!, result));
    const queue: Node[] = [...candidates(result)];
    while (queue.length) {
      queue.sort((a, b) => pos.get(a)! - pos.get(b)!);
      const u = queue.shift()!;
      if (members.has(u)) continue;
      members.add(u);
      if (createsCycle(members, pos) || bufferCount(base, members, users, external) > MAX_BUFFERS) {
        members.delete(u);
        continue;
      }
      queue.push(...candidates(u.outputs[0]!));
    }
    const pool = opts.pool && base.op === "conv" ? absorbablePool(base, members, users, external, pos) : undefined;
    if (members.size < 2 && !pool) continue;
    members.delete(base);
    for (const m of members) assigned.add(m);
    groups.push({ base, members: [...members].sort((a, b) => pos.get(a)! - pos.get(b)!), ...(pool ? { pool } : {}) });
  }
  return groups;
}

/**
 * The pool node reading the group's sink, when it is the sink's only reader,
 * nothing else of the group is read outside (a pooled epilogue stores nothing
 * unpooled: forward graphs; in a training graph pool_grad reads the sink), and
 * its attrs are those of an epilogue's pool.
 */
function absorbablePool(base: Node, group: ReadonlySet<Node>, users: ReadonlyMap<Value, readonly Node[]>, external: ReadonlySet<Value>, pos: ReadonlyMap<Node, number>): Node | undefined {
  const sink = [...group].reduce((a, b) => (pos.get(b)! > pos.get(a)! ? b : a));
  const v = sink.outputs[0]!;
  const readers = users.get(v) ?? [];
  if (external.has(v) || readers.length !== 1 || !epiloguePoolOf(readers[0]!, base)) return undefined;
  const stored = storedValues(group, users, external);
  return stored.length === 1 && stored[0] === v ? readers[0] : undefined;
}

/** Values of the group (base included) read outside it: graph outputs or users not in the group. */
function storedValues(group: ReadonlySet<Node>, users: ReadonlyMap<Value, readonly Node[]>, external: ReadonlySet<Value>): Value[] {
  const out: Value[] = [];
  for (const m of group) {
    const v = m.outputs[0]!;
    if (external.has(v) || (users.get(v) ?? []).some((u) => !group.has(u))) out.push(v);
  }
  return out;
}

/** Storage buffers of the fused kernel: the base's inputs, the distinct values the members read from outside, the stored values. */
function bufferCount(base: Node, group: ReadonlySet<Node>, users: ReadonlyMap<Value, readonly Node[]>, external: ReadonlySet<Value>): number {
  const ins = new Set<Value>();
  for (const m of group) if (m !== base) for (const v of m.inputs) if (!group.has(v.node)) ins.add(v);
  // A conv over symbolic spatial sizes also binds its run-time error buffer (the kernel-larger-than-input guard).
  const errorBuffer = base.op === "conv" && base.inputs[0]!.type.shape.slice(2).some((d) => d.constValue() === undefined) ? 1 : 0;
  return base.inputs.length + ins.size + Math.max(1, storedValues(group, users, external).length) + errorBuffer;
}


/** Rewrites each group into one fused_epilogue node (see the file comment); returns how many. */
export function fuseEpilogues(g: Graph, opts: EpilogueOptions = { pool: POOL_EPILOGUE }): number {
  const groups = findEpilogueGroups(g, opts);
  if (groups.length === 0) return 0;
  const users = g.users();
  const external = new Set<Value>([...g.outputs.map((o) => o.value), ...g.bufferUpdates.map((u) => u.value)]);
  const replacement = new Map<Node, Node>();

  for (const { base, members, pool } of groups) {
    const group = new Set<Node>([base, ...members]);
    const result = base.outputs[0]!;
    const inputs: Value[] = [...base.inputs];
    const stepOf = new Map<Value, number>([[result, 0]]);
    const steps: FusedStep[] = [{ op: "load", input: 0 }];
    // Loads of the epilogue inputs next, in order of first use, one per distinct outside value.
    for (const m of members) {
      for (const v of m.inputs) {
        if (group.has(v.node) || stepOf.has(v)) continue;
        stepOf.set(v, steps.length);
        steps.push({ op: "load", input: inputs.length - base.inputs.length + 1 });
        inputs.push(v);
      }
    }
    const covers: FusedCover[] = [coverOf(base)];
    for (const m of members) {
      const args = m.inputs.map((v) => stepOf.get(v)!);
      stepOf.set(m.outputs[0]!, steps.length);
      steps.push(Object.keys(m.attrs).length ? { op: m.op, args, attrs: m.attrs } : { op: m.op, args });
      covers.push(coverOf(m));
    }
    const sink = members[members.length - 1] ?? base;
    const stored = [sink.outputs[0]!, ...storedValues(group, users, external).filter((v) => v !== sink.outputs[0])];
    const outputs = stored.map((v) => stepOf.get(v)!);
    const common = { base: base.op, baseAttrs: base.attrs, baseInputs: base.inputs.length, steps, outputs, covers };
    const epiloguePool = pool && epiloguePoolOf(pool, base);
    if (pool) covers.push(coverOf(pool));
    // A pooled epilogue's one output is the pool's result.
    const results = pool ? [pool.outputs[0]!] : stored;
    const attrs: EpilogueAttrs = epiloguePool ? { ...common, pool: epiloguePool } : common;
    const fused = g.addNode("fused_epilogue", inputs, attrs as unknown as Node["attrs"], results.map((v) => v.type), { label: base.label ?? sink.label, span: base.span });
    g.nodes.pop();
    replacement.set(pool ?? sink, fused);
    results.forEach((v, k) => replaceUses(g, v, fused.outputs[k]!));
  }

  const removed = new Set<Node>(groups.flatMap((gr) => [gr.base, ...gr.members, ...(gr.pool ? [gr.pool] : [])]));
  const kept = g.nodes.flatMap((n) => (replacement.has(n) ? [replacement.get(n)!] : removed.has(n) ? [] : [n]));
  g.nodes.splice(0, g.nodes.length, ...stableTopologicalOrder(kept));
  return groups.length;
}


export const fuseEpiloguePass: Pass = { name: "fuse-epilogue", run: (g) => void fuseEpilogues(g) };

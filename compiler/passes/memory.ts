// Memory planning: liveness-based buffer reuse for the kernels a program runs
// (forward and training graphs alike, both targets).
//
// Input: the schedule (the nodes a program executes, in order — what
// emitProgram / emitWgslProgram iterate) and the values the entry returns.
// Every value that owns storage (the output of a non-view node) gets a
// lifetime [def, lastUse]: the index of its node and of the last node that
// reads it or any view of it (a view — reshape — aliases its input's storage,
// so it extends the input's life). Pinned values keep a buffer of their own
// for the whole run and are never planned: inputs, parameters, constants, and
// what the entry returns (outputs, losses, buffer/parameter updates — the
// runtime reads or copies them after the run) together with whatever those
// view.
//
// Every other computed value is planned. Values are grouped into *items* —
// regions of memory occupied for the schedule steps [def, last] — and two
// items whose step ranges intersect never overlap in memory. A value's def is
// strictly after the last use of whatever occupied its memory before, so a
// kernel never reads memory that a later value overwrote, and a node's outputs
// never share memory with each other or with its inputs — except IN PLACE:
// an elementwise node (`inPlace` says which ops are safe: every output element
// depends only on the inputs at the same index) writes its output over an
// input of the same shape and dtype that dies at that node; the two values
// form one item. Likewise an optimizer update (`overwrites`) writes the new
// parameter and optimizer state over the old ones when this node is their
// last reader: the entry's update results then are the parameters' own
// buffers (nothing to copy after the step). Items also record which items must live in another arena
// (`avoid`): on WebGPU a buffer cannot be bound read-only and writable in one
// dispatch, so a node's outputs and its (other) inputs use different arenas.
//
// Scratch (`scratch` option; the WebGPU target's per-node temporaries,
// `WgslPass.scratch`): each slot of a node is an item of its own, live only
// during that node (def = last = its step), appended after the value items
// (so value items keep the indices the JS target's plan gives them). Its
// kernel writes it, so it must avoid the arenas of the node's inputs, like an
// output (symmetric `avoid`); it may share an arena with the node's outputs
// (two writable bindings of disjoint ranges of one buffer are allowed), and
// since the memory is reused, no kernel may rely on its scratch being zeroed.
//
// Symbolic sizes: lifetimes, in-place pairs and arena constraints are decided
// here, at compile time; the placement (arena and offset of each item) is
// made per bound shape at run time by runtime/memory-plan.ts, when every size
// is a number — exact for every binding with no reasoning about polynomials,
// deterministic, and the same function the runtimes, the tests and
// `cnnc ir --stats` call, so the reported peak is what is allocated.

import type { Dim } from "../ir/dims.ts";
import type { Node, Value } from "../ir/graph.ts";
import type { DType } from "../ir/types.ts";
import { planArenas, type ArenaLayout } from "../../runtime/memory-plan.ts";

const SOURCE_OPS = new Set(["input", "param", "const"]);

/** Bytes per element as planned and reported (every element is 4 bytes on the WebGPU target). */
export const ELEMENT_BYTES: Record<DType, number> = { f32: 4, i32: 4, bool: 4 };

export interface MemoryItem {
  /** The values that occupy it (several when written in place), in schedule order; none for scratch. */
  readonly members: readonly Value[];
  /** A scratch item: slot `slot` of node `node`, of `size` elements (a JS expression over `S`). */
  readonly scratch?: ScratchItem;
  /** Schedule steps during which it is occupied. */
  readonly def: number;
  readonly last: number;
  /** Items that must be placed in another arena. */
  readonly avoid: readonly number[];
}

export interface MemoryPlan {
  readonly schedule: readonly Node[];
  /** The storage owner of each value of the schedule: itself, or what a view aliases (transitively). */
  readonly owner: ReadonlyMap<Value, Value>;
  /** Owners with a buffer of their own for the whole run (sources, entry results). */
  readonly pinned: ReadonlySet<Value>;
  /** [def, lastUse] schedule indices of every owner. */
  readonly lifetimes: ReadonlyMap<Value, { readonly def: number; readonly lastUse: number }>;
  /** Item of each planned owner. */
  readonly itemOf: ReadonlyMap<Value, number>;
  readonly items: readonly MemoryItem[];
  /** Nodes that write outputs over inputs: [output index, input index] pairs. */
  readonly inPlace: ReadonlyMap<Node, readonly (readonly [number, number])[]>;
  /** Results written over a parameter's buffer (optimizer updates): the parameter's value. */
  readonly overwrites: ReadonlyMap<Value, Value>;
}

export interface ScratchItem {
  readonly node: Node;
  readonly slot: number;
  readonly size: string;
}

export interface PlanOptions {
  /** Nodes whose (single) output aliases their first input's storage. */
  readonly isView: (n: Node) => boolean;
  /** Nodes that may write their output over an input of the same shape and dtype (none when absent). */
  readonly inPlace?: (n: Node) => boolean;
  /** [output, input] pairs a node may write over a parameter it is the last to read (optimizer updates). */
  readonly overwrites?: (n: Node) => readonly (readonly [number, number])[] | undefined;
  /** Element counts (JS expressions over `S`) of the scratch slots a node's kernel writes (none when absent). */
  readonly scratch?: (n: Node) => readonly string[] | undefined;
}

export function elementCount(v: Value, env: Record<string, number>): number {
  return v.type.shape.reduce((p, d: Dim) => p * d.evaluate(env), 1);
}

function sameShape(a: Value, b: Value): boolean {
  return a.type.dtype === b.type.dtype && a.type.shape.length === b.type.shape.length && a.type.shape.every((d, i) => d.equals(b.type.shape[i]!));
}

export function planMemory(schedule: readonly Node[], roots: readonly Value[], opts: PlanOptions): MemoryPlan {
  const owner = new Map<Value, Value>();
  const lifetimes = new Map<Value, { def: number; lastUse: number }>();
  const pinned = new Set<Value>();
  const ownerOf = (v: Value) => owner.get(v) ?? v;
  schedule.forEach((n, i) => {
    for (const v of n.inputs) {
      const lt = lifetimes.get(ownerOf(v));
      if (lt) lt.lastUse = Math.max(lt.lastUse, i);
    }
    if (opts.isView(n)) {
      owner.set(n.outputs[0]!, ownerOf(n.inputs[0]!));
      return;
    }
    for (const v of n.outputs) {
      owner.set(v, v);
      lifetimes.set(v, { def: i, lastUse: i });
      if (SOURCE_OPS.has(n.op)) pinned.add(v);
    }
  });
  for (const r of roots) pinned.add(ownerOf(r));

  const items: { members: Value[]; scratch?: ScratchItem; def: number; last: number; avoid: Set<number> }[] = [];
  const itemOf = new Map<Value, number>();
  const inPlace = new Map<Node, (readonly [number, number])[]>();
  const overwrites = new Map<Value, Value>();
  // Read once by node n: on WebGPU a second (read-only) binding of it could not coexist with the writable one.
  const readOnce = (n: Node, o: Value) => n.inputs.filter((y) => ownerOf(y) === o).length === 1;
  schedule.forEach((n, i) => {
    if (opts.isView(n) || SOURCE_OPS.has(n.op)) return;
    for (const [j, k] of opts.overwrites?.(n) ?? []) {
      const out = n.outputs[j];
      const p = n.inputs[k];
      if (out && p && p.node.op === "param" && pinned.has(out) && owner.get(out) === out && lifetimes.get(p)!.lastUse === i && readOnce(n, p) && sameShape(p, out)) {
        overwrites.set(out, p);
        inPlace.set(n, [...(inPlace.get(n) ?? []), [j, k]]);
      }
    }
    const planned = n.outputs.filter((v) => !pinned.has(v));
    // In place: output 0 takes over the item of an input that dies here.
    if (!pinned.has(n.outputs[0]!) && opts.inPlace?.(n)) {
      const out = n.outputs[0]!;
      const k = n.inputs.findIndex((x) => {
        const o = ownerOf(x);
        return readOnce(n, o) && itemOf.has(o) && lifetimes.get(o)!.lastUse === i && sameShape(x, out);
      });
      if (k >= 0) {
        const item = itemOf.get(ownerOf(n.inputs[k]!))!;
        items[item]!.members.push(out);
        items[item]!.last = lifetimes.get(out)!.lastUse;
        itemOf.set(out, item);
        inPlace.set(n, [[0, k]]);
      }
    }
    for (const v of planned) {
      if (itemOf.has(v)) continue;
      itemOf.set(v, items.length);
      items.push({ members: [v], def: i, last: lifetimes.get(v)!.lastUse, avoid: new Set() });
    }
    // Outputs and inputs of one dispatch in different arenas (WebGPU usage rules).
    const outs = new Set(planned.map((v) => itemOf.get(v)!));
    const ins = new Set(n.inputs.map((x) => itemOf.get(ownerOf(x))).filter((x): x is number => x !== undefined));
    for (const o of outs) for (const x of ins) if (o !== x) {
      items[o]!.avoid.add(x);
      items[x]!.avoid.add(o);
    }
  });
  // Scratch after every value item; written by its node's kernel, so kept out of its inputs' arenas.
  schedule.forEach((n, i) => {
    if (opts.isView(n) || SOURCE_OPS.has(n.op)) return;
    const ins = new Set(n.inputs.map((x) => itemOf.get(ownerOf(x))).filter((x): x is number => x !== undefined));
    (opts.scratch?.(n) ?? []).forEach((size, slot) => {
      const t = items.length;
      items.push({ members: [], scratch: { node: n, slot, size }, def: i, last: i, avoid: new Set(ins) });
      for (const x of ins) items[x]!.avoid.add(t);
    });
  });
  return {
    schedule,
    owner,
    pinned,
    lifetimes,
    itemOf,
    items: items.map((it) => ({ members: it.members, ...(it.scratch ? { scratch: it.scratch } : {}), def: it.def, last: it.last, avoid: [...it.avoid].sort((a, b) => a - b) })),
    inPlace,
    overwrites,
  };
}

const sizeFns = new Map<string, (S: Record<string, number>) => number>();

/** A scratch size (a JS expression over `S`, as the generated code evaluates it) at a binding. */
export function scratchElements(size: string, env: Record<string, number>): number {
  let f = sizeFns.get(size);
  if (!f) sizeFns.set(size, (f = new Function("S", `return ${size};`) as (S: Record<string, number>) => number));
  return f(env);
}

/** Elements of an item at a binding: its largest member, or its scratch size. */
export function itemElements(it: MemoryItem, env: Record<string, number>): number {
  return it.scratch ? scratchElements(it.scratch.size, env) : Math.max(...it.members.map((v) => elementCount(v, env)));
}

/** The placement of a plan's items at a binding (what the runtimes allocate). */
export function layoutMemory(plan: MemoryPlan, env: Record<string, number>): ArenaLayout {
  return planArenas(plan.items.map((it) => ({ size: itemElements(it, env), def: it.def, last: it.last, avoid: it.avoid })));
}

/**
 * Bytes allocated at a binding (pinned buffers plus the arenas) and the one-buffer-per-value total; scratch items
 * (4 bytes an element, as on WebGPU) count in both: naive is one buffer per scratch slot, as before it was planned.
 */
export function planBytes(plan: MemoryPlan, env: Record<string, number>): { planned: number; naive: number } {
  const bytes = (v: Value) => elementCount(v, env) * ELEMENT_BYTES[v.type.dtype];
  let naive = 0;
  let planned = 0;
  for (const v of plan.lifetimes.keys()) {
    naive += bytes(v);
    if (plan.pinned.has(v) && !plan.overwrites.has(v)) planned += bytes(v);
  }
  for (const it of plan.items) if (it.scratch) naive += scratchElements(it.scratch.size, env) * 4;
  for (const a of layoutMemory(plan, env).arenaSizes) planned += a * 4;
  return { planned, naive };
}

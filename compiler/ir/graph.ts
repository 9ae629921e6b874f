// The IR: an SSA dataflow graph. Every value is produced by exactly one node
// and has a static type whose dims may be symbolic. Nodes are kept in a valid
// topological order (inputs before uses), which every pass preserves. The
// forward graph, backward graphs built by autodiff and fused graphs are all
// this same structure; fusion records which nodes a kernel covers in `Node.covers`.

import type { Span } from "../diagnostics.ts";
import type { Dim } from "./dims.ts";
import type { TensorType } from "./types.ts";

/** Attribute values are plain data (plus dims) so graphs print, compare and serialise. */
export type AttrValue = number | string | boolean | null | Dim | readonly AttrValue[] | { readonly [k: string]: AttrValue };
export type Attrs = { readonly [k: string]: AttrValue };

export interface Value {
  readonly id: number;
  readonly type: TensorType;
  /** The node that produces it and which of its outputs it is. */
  readonly node: Node;
  readonly index: number;
}

export interface Node {
  readonly id: number;
  readonly op: string;
  readonly inputs: readonly Value[];
  readonly attrs: Attrs;
  readonly outputs: readonly Value[];
  /** The user's name for what this node computes (binding or layer name), for printing and codegen. */
  readonly label?: string;
  readonly span?: Span;
}

/** How a parameter or buffer is initialised (resolved to numbers by runtime/init.ts). */
export type { InitSpec } from "../../runtime/init.ts";
import type { InitSpec } from "../../runtime/init.ts";

export interface ParamInfo {
  readonly name: string;
  readonly value: Value;
  readonly init: InitSpec;
  /** Buffers (batchnorm running statistics) are state but not trainable. */
  readonly trainable: boolean;
  readonly span?: Span;
}

export interface OutputInfo {
  readonly name: string;
  readonly value: Value;
  readonly kind: "output" | "loss";
  readonly span?: Span;
}

export interface OptimizerInfo {
  readonly kind: "sgd" | "adam";
  readonly options: { readonly [k: string]: number };
}

export class Graph {
  readonly nodes: Node[] = [];
  readonly inputs = new Map<string, Value>();
  readonly params = new Map<string, ParamInfo>();
  readonly outputs: OutputInfo[] = [];
  /** Buffers whose new value (computed in training mode) replaces the old after a step. */
  readonly bufferUpdates: { readonly name: string; readonly value: Value }[] = [];
  /** Symbols in the order inputs bind them. */
  readonly symbols: string[] = [];
  optimizer?: OptimizerInfo;
  private nextValue = 0;
  private nextNode = 0;

  constructor(readonly name: string, readonly span?: Span) {}

  addNode(op: string, inputs: readonly Value[], attrs: Attrs, outputTypes: readonly TensorType[], meta: { label?: string; span?: Span } = {}): Node {
    const outputs: Value[] = [];
    const node: Node = { id: this.nextNode++, op, inputs: [...inputs], attrs, outputs, label: meta.label, span: meta.span };
    outputTypes.forEach((type, index) => outputs.push({ id: this.nextValue++, type, node, index }));
    this.nodes.push(node);
    return node;
  }

  /**
   * A deep copy with the same node and value ids (random streams are keyed by
   * node id, so a training graph built on the copy draws the same masks).
   */
  clone(): Graph {
    const g = new Graph(this.name, this.span);
    const vmap = new Map<Value, Value>();
    const remap = (v: Value) => vmap.get(v) ?? v;
    for (const n of this.nodes) {
      const outputs: Value[] = [];
      const node: Node = { ...n, inputs: n.inputs.map(remap), outputs };
      for (const v of n.outputs) {
        const nv: Value = { ...v, node };
        outputs.push(nv);
        vmap.set(v, nv);
      }
      g.nodes.push(node);
    }
    for (const [k, v] of this.inputs) g.inputs.set(k, remap(v));
    for (const [k, p] of this.params) g.params.set(k, { ...p, value: remap(p.value) });
    for (const o of this.outputs) g.outputs.push({ ...o, value: remap(o.value) });
    for (const u of this.bufferUpdates) g.bufferUpdates.push({ ...u, value: remap(u.value) });
    g.symbols.push(...this.symbols);
    g.optimizer = this.optimizer;
    g.nextValue = this.nextValue;
    g.nextNode = this.nextNode;
    return g;
  }

  /** All trainable parameters, in creation order. */
  trainableParams(): ParamInfo[] {
    return [...this.params.values()].filter((p) => p.trainable);
  }

  buffers(): ParamInfo[] {
    return [...this.params.values()].filter((p) => !p.trainable);
  }

  output(name: string): OutputInfo | undefined {
    return this.outputs.find((o) => o.name === name);
  }

  /** Nodes that use each value, for passes and liveness. */
  users(): Map<Value, Node[]> {
    const m = new Map<Value, Node[]>();
    for (const n of this.nodes) for (const v of n.inputs) {
      const list = m.get(v);
      if (list) list.push(n);
      else m.set(v, [n]);
    }
    return m;
  }
}

/** The nodes `roots` depend on (themselves included), in graph order. */
export function neededNodes(g: Graph, roots: readonly Value[]): Node[] {
  const keep = new Set<Node>();
  const stack = roots.map((v) => v.node);
  while (stack.length) {
    const n = stack.pop()!;
    if (keep.has(n)) continue;
    keep.add(n);
    for (const v of n.inputs) stack.push(v.node);
  }
  return g.nodes.filter((n) => keep.has(n));
}

/** Names of the graph inputs `roots` depend on, in declaration order (the order symbols bind in). */
export function neededInputs(g: Graph, roots: readonly Value[]): string[] {
  const used = new Set(neededNodes(g, roots).filter((n) => n.op === "input").map((n) => n.attrs.name as string));
  return [...g.inputs.keys()].filter((name) => used.has(name));
}

/** Parameter counts per top-level layer (first dotted component) and in total. */
export function parameterCount(g: Graph): { total: number; perLayer: Map<string, number> } {
  const perLayer = new Map<string, number>();
  let total = 0;
  for (const p of g.trainableParams()) {
    const n = p.value.type.shape.reduce((acc, d) => acc * (d.constValue() ?? NaN), 1);
    const layer = p.name.includes(".") ? p.name.slice(0, p.name.lastIndexOf(".")) : p.name;
    perLayer.set(layer, (perLayer.get(layer) ?? 0) + n);
    total += n;
  }
  return { total, perLayer };
}

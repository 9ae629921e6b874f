// Index analysis of an `einsum` node, shared by the JS and WGSL generators:
// each kept index (static size ≠ 1) becomes a loop with its stride in every
// tensor (the sum of the strides of the axes it labels, so a repeated index
// walks the diagonal), and neighbouring loops that walk memory as one merge.

import { Dim } from "../ir/dims.ts";
import type { Node } from "../ir/graph.ts";

export type EinsumAttrs = { operands: readonly (readonly string[])[]; output: readonly string[] };

/** Value given to every symbol when loop orders are compared by estimated stride. */
export const SYMBOL_ESTIMATE = 64;

/** One loop: an einsum index (or several merged ones) with its stride in every tensor. */
export interface Loop {
  /** Original index names, outermost first (several after merging). */
  readonly names: readonly string[];
  readonly size: Dim;
  /** Stride per tensor: operands in order, then the output; 0 where the loop's indices do not appear. */
  readonly strides: readonly Dim[];
}

export interface Analysis {
  readonly operands: readonly (readonly string[])[];
  readonly output: readonly string[];
  /** Loops of the kept indices (size not statically 1), keyed by index name. */
  readonly loops: ReadonlyMap<string, Loop>;
  /** Kept output indices, in output order. */
  readonly outNames: readonly string[];
  /** Kept summed indices, in order of first appearance. */
  readonly sumNames: readonly string[];
}

export function analyse(node: Node): Analysis {
  const { operands, output } = node.attrs as unknown as EinsumAttrs;
  const shapes = [...node.inputs.map((v) => v.type.shape), node.outputs[0]!.type.shape];
  const labels = [...operands, output];
  const sizes = new Map<string, Dim>();
  operands.forEach((names, k) => names.forEach((name, axis) => sizes.has(name) || sizes.set(name, shapes[k]![axis]!)));
  const kept = (name: string) => sizes.get(name)!.constValue() !== 1;

  const strides = new Map<string, Dim[]>();
  for (const name of sizes.keys()) if (kept(name)) strides.set(name, labels.map(() => Dim.of(0)));
  labels.forEach((names, t) => {
    const shape = shapes[t]!;
    let axisStride = Dim.of(1);
    for (let axis = shape.length - 1; axis >= 0; axis--) {
      const s = strides.get(names[axis]!);
      if (s) s[t] = s[t]!.add(axisStride);
      axisStride = axisStride.mul(shape[axis]!);
    }
  });
  const loops = new Map<string, Loop>();
  for (const [name, s] of strides) loops.set(name, { names: [name], size: sizes.get(name)!, strides: s });
  const outNames = output.filter(kept);
  const sumNames = [...sizes.keys()].filter((name) => kept(name) && !output.includes(name));
  return { operands, output, loops, outNames, sumNames };
}

/** Merge neighbours (outer p, inner q) that address every tensor as one loop: stride(p) = stride(q)·size(q) everywhere. */
export function mergeLoops(loops: readonly Loop[]): Loop[] {
  const out: Loop[] = [];
  for (const q of loops) {
    const p = out[out.length - 1];
    if (p && p.strides.every((s, t) => s.equals(q.strides[t]!.mul(q.size)))) {
      out[out.length - 1] = { names: [...p.names, ...q.names], size: p.size.mul(q.size), strides: q.strides };
    } else {
      out.push(q);
    }
  }
  return out;
}

export function estimate(d: Dim): number {
  const env: Record<string, number> = {};
  for (const s of d.symbols()) env[s] = SYMBOL_ESTIMATE;
  return d.evaluate(env);
}

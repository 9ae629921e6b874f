// Einsum contraction order: every `einsum` with three or more operands becomes
// a sequence of pairwise einsums (which both code generators turn into
// blocked GEMM kernels) in the order that needs the fewest FLOPs, as
// opt_einsum does. An n-ary einsum as lowered is one strided loop nest over
// the product of all its index sizes; a chain A·B·C·D contracted pairwise in a
// good order can be orders of magnitude cheaper.
//
// Steps, per einsum of n ≥ 3 operands:
//  1. Single-operand reductions first: an operand that repeats an index
//     (diagonal) or has an index that no other operand nor the output uses
//     (summed within it) is first reduced by a one-operand einsum to the
//     indices the others need, each once. (Indices of static size 1 are left
//     alone: the kernels drop them.) The remaining pairwise einsums are then
//     plain (batched) matrix products, outer products or inner products.
//  2. The order: a binary contraction tree over the operands.
//      * n ≤ OPTIMAL_LIMIT (8): exhaustive, by dynamic programming over the
//        subsets of operands (opt_einsum's 'dp' / 'optimal', outer products
//        included): best(S) = min over splits S = A ∪ B of best(A) + best(B)
//        + cost(A, B). Exact: it finds the minimum over all trees.
//      * beyond: greedy, contracting next the pair of current terms with the
//        smallest cost (ties: the smaller result, then the earlier pair).
//  3. Emission: one pairwise einsum per tree node, in place of the original
//     node; the last produces the original output indices in their order and
//     takes over the original's uses (replaceUses). Every new node carries the
//     original's label and span.
//
// Cost model. The result of contracting a set S of operands keeps only the
// indices of S that are still needed: used by an operand outside S or by the
// output. Contracting A with B costs 2 × the product of the sizes of every
// index of A's and B's results (a multiply and an add per point of the joint
// index space): the FLOPs. Ties are broken by the total size (elements) of
// the intermediates. Symbolic sizes are evaluated with every symbol = 64
// (REPRESENTATIVE_SIZE), as the kernels' loop-order heuristics do; the order
// chosen is correct for any binding, just FLOP-optimal for that one.
//
// Ellipsis ("...") needs nothing here: lowering already expanded it into
// ordinary named indices (a broadcast size-1 batch dim is a private index of
// size 1, summed over its single element). Two-operand einsums are left to
// the kernels.

import { replaceUses } from "../autodiff/grad-calls.ts";
import type { Dim } from "../ir/dims.ts";
import type { Graph, Node, Value } from "../ir/graph.ts";
import type { Pass } from "./pipeline.ts";

type EinsumAttrs = { operands: readonly (readonly string[])[]; output: readonly string[] };

/** Operand counts up to this are ordered exhaustively (dynamic programming over 3^n splits); larger ones greedily. */
export const OPTIMAL_LIMIT = 8;
/** The size every symbol takes when costs are compared. */
export const REPRESENTATIVE_SIZE = 64;

// ---------------------------------------------------------------------------
// Planning (pure: index lists and numeric sizes in, contraction steps out)

/** One pairwise contraction: terms `a` and `b` (ids: operands 0..n-1, then each step's result n, n+1, …) give `result`. */
export interface ContractionStep {
  readonly a: number;
  readonly b: number;
  /** Index names of the result, in order (the output's order for the last step). */
  readonly result: readonly string[];
  readonly flops: number;
}

export interface ContractionPlan {
  readonly steps: readonly ContractionStep[];
  /** Sum of the steps' FLOPs. */
  readonly flops: number;
  /** Sum of the sizes (elements) of every step's result. */
  readonly intermediateSize: number;
  readonly method: "optimal" | "greedy";
}

/** 2 × the product of the sizes of all indices involved: one multiply and one add per point. */
export function pairFlops(a: Iterable<string>, b: Iterable<string>, sizes: ReadonlyMap<string, number>): number {
  let p = 2;
  for (const name of new Set([...a, ...b])) p *= sizes.get(name)!;
  return p;
}

function product(names: Iterable<string>, sizes: ReadonlyMap<string, number>): number {
  let p = 1;
  for (const name of names) p *= sizes.get(name)!;
  return p;
}

/**
 * The cheapest pairwise contraction order of `terms` (index names per operand;
 * a repeated name counts once) producing `output`. `terms` must number at least two.
 */
export function planContraction(
  terms: readonly (readonly string[])[],
  output: readonly string[],
  sizes: ReadonlyMap<string, number>,
  optimalLimit = OPTIMAL_LIMIT,
): ContractionPlan {
  if (terms.length < 2) throw new Error("internal: planContraction needs two or more terms");
  return terms.length <= optimalLimit ? planOptimal(terms, output, sizes) : planGreedy(terms, output, sizes);
}

/** Result names of a pair in a stable order: the first term's, then the second's new ones, those in `keep`. */
function orderedResult(a: readonly string[], b: readonly string[], keep: (name: string) => boolean): string[] {
  return [...new Set([...a, ...b])].filter(keep);
}

interface Best {
  flops: number;
  size: number;
  /** The split (A containing the lowest operand of S); 0 for a single operand. */
  left: number;
}

function planOptimal(terms: readonly (readonly string[])[], output: readonly string[], sizes: ReadonlyMap<string, number>): ContractionPlan {
  const n = terms.length;
  const full = (1 << n) - 1;
  const names = [...new Set(terms.flat())];
  const termMask = new Map<string, number>();
  terms.forEach((t, k) => t.forEach((name) => termMask.set(name, (termMask.get(name) ?? 0) | (1 << k))));
  const inOutput = new Set(output);

  // Index names of the result of contracting subset S: those still needed outside it.
  const kept: string[][] = new Array(full + 1);
  for (let s = 1; s <= full; s++) {
    if ((s & (s - 1)) === 0) {
      kept[s] = [...new Set(terms[31 - Math.clz32(s)]!)];
      continue;
    }
    kept[s] = names.filter((name) => {
      const m = termMask.get(name)!;
      return (m & s) !== 0 && ((m & ~s & full) !== 0 || inOutput.has(name));
    });
  }

  const best: Best[] = new Array(full + 1);
  // Subsets in increasing order: every proper subset of s is smaller than s.
  for (let s = 1; s <= full; s++) {
    if ((s & (s - 1)) === 0) {
      best[s] = { flops: 0, size: 0, left: 0 };
      continue;
    }
    const low = s & -s;
    const resultSize = product(kept[s]!, sizes);
    let choice: Best | undefined;
    // Submasks a of s that contain s's lowest operand; b = s \ a non-empty.
    for (let a = (s - 1) & s; a > 0; a = (a - 1) & s) {
      if ((a & low) === 0) continue;
      const b = s & ~a;
      const ba = best[a]!;
      const bb = best[b]!;
      const flops = ba.flops + bb.flops + pairFlops(kept[a]!, kept[b]!, sizes);
      const size = ba.size + bb.size + resultSize;
      if (!choice || flops < choice.flops || (flops === choice.flops && size < choice.size)) choice = { flops, size, left: a };
    }
    best[s] = choice!;
  }

  // Emit the tree in post order: left subtree, right subtree, then their contraction.
  const steps: ContractionStep[] = [];
  const emit = (s: number): { id: number; names: readonly string[] } => {
    if ((s & (s - 1)) === 0) {
      const k = 31 - Math.clz32(s);
      return { id: k, names: kept[s]! };
    }
    const l = emit(best[s]!.left);
    const r = emit(s & ~best[s]!.left);
    const keep = new Set(kept[s]);
    const result = s === full ? [...output] : orderedResult(l.names, r.names, (name) => keep.has(name));
    steps.push({ a: l.id, b: r.id, result, flops: pairFlops(l.names, r.names, sizes) });
    return { id: n + steps.length - 1, names: result };
  };
  emit(full);
  return { steps, flops: best[full]!.flops, intermediateSize: best[full]!.size, method: "optimal" };
}

function planGreedy(terms: readonly (readonly string[])[], output: readonly string[], sizes: ReadonlyMap<string, number>): ContractionPlan {
  const n = terms.length;
  let live = terms.map((t, k) => ({ id: k, names: [...new Set(t)] as readonly string[] }));
  const steps: ContractionStep[] = [];
  let flops = 0;
  let intermediateSize = 0;
  while (live.length > 1) {
    let pick: { i: number; j: number; result: string[]; flops: number; size: number } | undefined;
    for (let i = 0; i < live.length; i++) {
      for (let j = i + 1; j < live.length; j++) {
        const [x, y] = [live[i]!, live[j]!];
        let result: string[];
        if (live.length === 2) result = [...output];
        else {
          const needed = new Set(output);
          live.forEach((t, k) => k !== i && k !== j && t.names.forEach((name) => needed.add(name)));
          result = orderedResult(x.names, y.names, (name) => needed.has(name));
        }
        const f = pairFlops(x.names, y.names, sizes);
        const size = product(result, sizes);
        if (!pick || f < pick.flops || (f === pick.flops && size < pick.size)) pick = { i, j, result, flops: f, size };
      }
    }
    const { i, j, result } = pick!;
    steps.push({ a: live[i]!.id, b: live[j]!.id, result, flops: pick!.flops });
    flops += pick!.flops;
    intermediateSize += pick!.size;
    live = [...live.filter((_, k) => k !== i && k !== j), { id: n + steps.length - 1, names: result }];
  }
  return { steps, flops, intermediateSize, method: "greedy" };
}

// ---------------------------------------------------------------------------
// The pass

function representative(d: Dim): number {
  const env: Record<string, number> = {};
  for (const s of d.symbols()) env[s] = REPRESENTATIVE_SIZE;
  return d.evaluate(env);
}

/** Appends the pairwise einsums for one n-ary einsum (n ≥ 3) to the end of `g` (the caller places them); returns the final value. */
function expand(g: Graph, node: Node): Value {
  const { operands, output } = node.attrs as unknown as EinsumAttrs;
  const dims = new Map<string, Dim>();
  node.inputs.forEach((v, k) => operands[k]!.forEach((name, axis) => dims.has(name) || dims.set(name, v.type.shape[axis]!)));
  const sizes = new Map([...dims].map(([name, d]) => [name, representative(d)]));
  const meta = { label: node.label, span: node.span };
  const einsum = (inputs: readonly Value[], labels: readonly (readonly string[])[], out: readonly string[]): Value =>
    g.addNode("einsum", inputs, { operands: labels.map((l) => [...l]), output: [...out] } satisfies EinsumAttrs, [
      { dtype: "f32", shape: out.map((name) => dims.get(name)!) },
    ], meta).outputs[0]!;

  // 1. Single-operand reductions: diagonals and indices summed within one operand.
  const values: Value[] = [];
  const labels: (readonly string[])[] = [];
  operands.forEach((names, k) => {
    const elsewhere = new Set([...output, ...operands.filter((_, j) => j !== k).flat()]);
    const big = (name: string) => dims.get(name)!.constValue() !== 1;
    const distinct = [...new Set(names)];
    const diagonal = distinct.some((name) => big(name) && names.indexOf(name) !== names.lastIndexOf(name));
    const private_ = distinct.some((name) => big(name) && !elsewhere.has(name));
    if (diagonal || private_) {
      const keep = distinct.filter((name) => elsewhere.has(name));
      values.push(einsum([node.inputs[k]!], [names], keep));
      labels.push(keep);
    } else {
      values.push(node.inputs[k]!);
      labels.push(names);
    }
  });

  // 2. The order, 3. one einsum per step.
  const plan = planContraction(labels, output, sizes);
  const terms = values.map((v, k) => ({ value: v, names: labels[k]! }));
  for (const step of plan.steps) {
    const [a, b] = [terms[step.a]!, terms[step.b]!];
    terms.push({ value: einsum([a.value, b.value], [a.names, b.names], step.result), names: step.result });
  }
  return terms[terms.length - 1]!.value;
}

/** Rewrites every einsum of three or more operands in `g` into pairwise einsums in the FLOP-optimal order. */
export function orderEinsums(g: Graph): void {
  for (let i = 0; i < g.nodes.length; i++) {
    const node = g.nodes[i]!;
    if (node.op !== "einsum" || node.inputs.length < 3) continue;
    const end = g.nodes.length;
    const result = expand(g, node);
    // The new nodes read only what the original read: put them in its place.
    const fresh = g.nodes.splice(end);
    g.nodes.splice(i, 1, ...fresh);
    replaceUses(g, node.outputs[0]!, result);
    i += fresh.length - 1;
  }
}

export const einsumPathPass: Pass = { name: "einsum-path", run: orderEinsums };

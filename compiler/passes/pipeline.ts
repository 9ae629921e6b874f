// The optimizing pipeline: graph-to-graph passes run before code generation,
// on forward and training graphs alike (`cnnc ir --passes=none|all` shows the
// graph before/after; `--passes=none` on the compile command turns them off).
//
// Contract of a pass: it rewrites the graph IN PLACE (callers hand it a copy
// when the original must survive), keeps the ids of the nodes it leaves alone
// (random streams are keyed by node id), keeps every name the outside sees
// (inputs, params, outputs, buffer updates — redirect them with replaceUses),
// and leaves the graph verifiable: every node's shape rule still holds.

import type { Graph } from "../ir/graph.ts";
import { verifyGraph } from "../ir/verifier.ts";
import { einsumPathPass } from "./einsum-path.ts";
import { convAlgorithmPass } from "./conv-algorithm.ts";
import { SIMPLIFY_PASSES } from "./simplify/index.ts";
import { fuseElementwisePass } from "./fuse-elementwise.ts";
import { fuseEpiloguePass } from "./fuse-epilogue.ts";
import { reluGradOutputPass } from "./relu-grad-output.ts";
import { schedulePass } from "./schedule.ts";

export type PassLevel = "none" | "all";

export interface Pass {
  readonly name: string;
  run(g: Graph): void;
}

/** The passes, in the order they run. */
export const PASSES: Pass[] = [
  ...SIMPLIFY_PASSES, // fold, identities, cse, dce (compiler/passes/simplify)
  reluGradOutputPass, // relu's gradient reads y, not x: the pre-activation dies at the relu (before fusion)
  einsumPathPass, // n-ary einsums → pairwise, FLOP-optimal order (before fusion: it fuses into the contractions)
  convAlgorithmPass, // each conv's algorithm (direct, implicit GEMM, FFT) by shape (before fusion: fused convs keep it)
  fuseEpiloguePass, // bias/activation/residual/scale after a conv or einsum → one fused_epilogue node (before fuse-elementwise)
  fuseElementwisePass, // elementwise chains → one fused_elementwise node each (last: sees the simplified graph)
  schedulePass, // reorders the nodes for the fewest planned bytes (last: plans the final graph)
];

/** Runs the pipeline on `g` in place (a no-op for "none") and verifies the result. */
export function optimizeInPlace(g: Graph, level: PassLevel = "all"): Graph {
  if (level === "none") return g;
  for (const p of PASSES) {
    p.run(g);
    const problems = verifyGraph(g);
    if (problems.length) throw new Error(`internal: pass ${p.name} left ${g.name} invalid:\n  ${problems.join("\n  ")}`);
  }
  return g;
}

/** An optimized copy of `g` ("none": `g` itself). */
export function optimize(g: Graph, level: PassLevel = "all"): Graph {
  return level === "none" ? g : optimizeInPlace(g.clone(), level);
}

// Dead-code elimination: removes every node that no output, loss or buffer
// update needs. The backward graph leaves such nodes behind (the gradient of
// an input nobody asked for, e.g. conv_grad_input of a network's first
// layer); rewrites by the other passes leave more.
//
// Inputs and parameters always stay (graph.inputs / graph.params name them,
// and a module's spec lists them whether used or not). A random op
// (dropout, gaussian_noise) stays whenever any of its outputs is needed; one
// nobody reads may go, since random streams are keyed by node id and label,
// so removing one changes no other node's draws.

import { neededNodes, type Graph } from "../../ir/graph.ts";
import type { Pass } from "../pipeline.ts";
import { removeNodes, visibleValues } from "./util.ts";

/** Removes dead nodes; returns how many. */
export function eliminateDeadCode(g: Graph): number {
  const live = new Set(neededNodes(g, [...visibleValues(g)]));
  return removeNodes(g, new Set(g.nodes.filter((n) => !live.has(n) && n.op !== "input" && n.op !== "param")));
}

export const dcePass: Pass = { name: "dce", run: (g) => void eliminateDeadCode(g) };

// Shorter lives for activations in training graphs: relu's gradient
// `unary_grad(x, y, dy) {fn=relu}` is dy where x > 0, and y = relu(x) > 0
// exactly where x > 0 (NaN included: both tests are false), so it can read y
// in x's place: `unary_grad(y, y, dy)`. Leaky relu with alpha >= 0 likewise
// (y > 0 exactly where x > 0). Then nothing in the backward pass reads the
// pre-activation x (typically a conv or dense output) any more: it dies at the
// relu, which the memory plan writes in place over it — one activation-sized
// buffer less per layer for the whole backward pass (on LeNet-5 that is the
// largest saving of the memory plan: the relu inputs are what is live at the
// peak), and an epilogue fusion may fold the relu into its producer.
//
// Runs before fusion (it rewrites plain unary_grad nodes); keeps node ids.

import type { Node, Value } from "../ir/graph.ts";
import type { Pass } from "./pipeline.ts";

/** Activations whose derivative depends only on the sign of x, and y > 0 exactly where x > 0. */
function readsOutputInstead(n: Node): boolean {
  if (n.op !== "unary_grad") return false;
  const [x, y] = n.inputs as [Value, Value];
  const fn = n.attrs.fn;
  const producer = y.node;
  // y must be this very activation of x (the gradient rule's form).
  if (producer.op !== fn || producer.inputs[0] !== x || y.index !== 0) return false;
  if (fn === "relu") return true;
  return fn === "leaky_relu" && typeof n.attrs.alpha === "number" && n.attrs.alpha >= 0 && producer.attrs.alpha === n.attrs.alpha;
}

export const reluGradOutputPass: Pass = {
  name: "relu-grad-output",
  run(g) {
    for (const n of g.nodes) if (readsOutputInstead(n)) (n.inputs as Value[])[0] = n.inputs[1]!;
  },
};

// `grad(y, x)` in a model: each `grad` node recorded by lowering is replaced,
// in place, by the backward graph that computes it, so every later stage (the
// interpreter, both code generators) sees plain IR.

import type { Graph, Value } from "../ir/graph.ts";
import { differentiate } from "./reverse.ts";

export function expandGradCalls(g: Graph): void {
  for (;;) {
    const at = g.nodes.findIndex((n) => n.op === "grad");
    if (at < 0) return;
    const node = g.nodes[at]!;
    const [y, x] = node.inputs as [Value, Value];
    const end = g.nodes.length;
    const [dx] = differentiate(g, y, [x], { span: node.span, what: `grad(${node.label ?? "y"}, …)` }) as [Value];
    // The backward nodes only read values defined before the grad node: move them to its place.
    const backward = g.nodes.splice(end);
    g.nodes.splice(at, 1, ...backward);
    replaceUses(g, node.outputs[0]!, dx);
  }
}

/** Makes every reader of `from` read `to` instead (nodes, outputs, buffer updates, params). */
export function replaceUses(g: Graph, from: Value, to: Value): void {
  for (const n of g.nodes) {
    const inputs = n.inputs as Value[];
    for (let i = 0; i < inputs.length; i++) if (inputs[i] === from) inputs[i] = to;
  }
  g.outputs.forEach((o, i) => {
    if (o.value === from) g.outputs[i] = { ...o, value: to };
  });
  g.bufferUpdates.forEach((u, i) => {
    if (u.value === from) g.bufferUpdates[i] = { ...u, value: to };
  });
}

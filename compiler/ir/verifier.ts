// The IR verifier: structural invariants every pass must preserve. It
// re-runs each op's shape rule, so a pass that rewires a node with the wrong
// types is caught where it happens, not in a kernel much later.

import { CompileError } from "../diagnostics.ts";
import { getOp, hasOp } from "../ops/index.ts";
import type { Graph, Value } from "./graph.ts";
import { typesEqual, typeToString } from "./types.ts";

export function verifyGraph(g: Graph): string[] {
  const problems: string[] = [];
  const defined = new Set<Value>();
  const nodeIds = new Set<number>();
  for (const n of g.nodes) {
    if (nodeIds.has(n.id)) problems.push(`node ${n.id} appears twice`);
    nodeIds.add(n.id);
    if (!hasOp(n.op)) {
      problems.push(`node ${n.id}: unknown op '${n.op}'`);
      continue;
    }
    n.inputs.forEach((v, i) => {
      if (!defined.has(v)) problems.push(`node ${n.id} (${n.op}): input ${i} (%${v.id}) is used before it is defined`);
    });
    n.outputs.forEach((v, i) => {
      if (v.node !== n || v.index !== i) problems.push(`node ${n.id}: output ${i} does not point back to its node`);
      defined.add(v);
    });
    try {
      const types = getOp(n.op).infer(n.inputs.map((v) => v.type), n.attrs, {
        fail: (_code, message) => {
          throw new Error(message);
        },
        describeInput: (i) => `input ${i}`,
      });
      if (types.length !== n.outputs.length) problems.push(`node ${n.id} (${n.op}): shape rule gives ${types.length} outputs, node has ${n.outputs.length}`);
      types.forEach((t, i) => {
        const have = n.outputs[i];
        if (have && !typesEqual(t, have.type)) problems.push(`node ${n.id} (${n.op}): output ${i} is ${typeToString(have.type)} but the shape rule gives ${typeToString(t)}`);
      });
    } catch (e) {
      if (e instanceof CompileError || e instanceof Error) problems.push(`node ${n.id} (${n.op}): shape rule fails: ${e.message}`);
    }
  }
  for (const o of g.outputs) if (!defined.has(o.value)) problems.push(`${o.kind} '${o.name}' refers to an undefined value`);
  for (const u of g.bufferUpdates) {
    if (!defined.has(u.value)) problems.push(`update of '${u.name}' refers to an undefined value`);
    const p = g.params.get(u.name);
    // Forward graphs update buffers; training graphs (autodiff/training.ts) also parameters and optimizer state.
    if (!p) problems.push(`update of '${u.name}' is not a parameter or buffer of the graph`);
    else if (!typesEqual(p.value.type, u.value.type)) problems.push(`update of '${u.name}' has type ${typeToString(u.value.type)}, buffer is ${typeToString(p.value.type)}`);
  }
  for (const [name, p] of g.params) if (!defined.has(p.value) || p.value.node.op !== "param" || p.value.node.attrs.name !== name) problems.push(`param '${name}' is not a param node of the graph`);
  for (const [name, v] of g.inputs) if (!defined.has(v) || v.node.op !== "input" || v.node.attrs.name !== name) problems.push(`input '${name}' is not an input node of the graph`);
  return problems;
}

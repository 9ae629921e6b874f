// Text and JSON forms of the IR (what `cnnc ir` prints). The text form is
// stable and line-oriented so golden tests and reviews can diff it.

import { Dim } from "./dims.ts";
import { parameterCount, type AttrValue, type Graph, type Node, type Value } from "./graph.ts";
import { typeToString } from "./types.ts";
import type { InitSpec } from "../../runtime/init.ts";

function attrToString(v: AttrValue): string {
  if (v === null) return "none";
  if (v instanceof Dim) return v.toString();
  if (Array.isArray(v)) return `[${v.map(attrToString).join(", ")}]`;
  if (typeof v === "object") return `{${Object.entries(v).map(([k, x]) => `${k}=${attrToString(x as AttrValue)}`).join(", ")}}`;
  if (typeof v === "string") return JSON.stringify(v);
  return String(v);
}

export function initToString(init: InitSpec): string {
  switch (init.kind) {
    case "zeros":
    case "ones":
      return init.kind;
    case "uniform":
      return `uniform(${fmt(init.lo)}, ${fmt(init.hi)})`;
    case "normal":
      return `normal(${fmt(init.mean)}, ${fmt(init.std)})`;
  }
}

function fmt(x: number): string {
  return Number.isInteger(x) ? String(x) : x.toPrecision(6).replace(/0+$/, "").replace(/\.$/, "");
}

const ref = (v: Value) => `%${v.id}`;

function nodeLine(g: Graph, n: Node): string {
  const outs = n.outputs.map(ref).join(", ");
  const types = n.outputs.map((v) => typeToString(v.type)).join(", ");
  if (n.op === "input") return `${outs} = input ${JSON.stringify(n.attrs.name)} : ${types}`;
  if (n.op === "param") {
    const info = g.params.get(n.attrs.name as string)!;
    return `${outs} = ${info.trainable ? "param" : "buffer"} ${JSON.stringify(info.name)} : ${types} = ${initToString(info.init)}`;
  }
  if (n.op === "const") return `${outs} = const ${attrToString(n.attrs.values ?? n.attrs.value ?? 0)} : ${types}`;
  const attrs = Object.entries(n.attrs);
  const attrText = attrs.length ? ` {${attrs.map(([k, v]) => `${k}=${attrToString(v)}`).join(", ")}}` : "";
  const label = n.label ? `  # ${n.label}` : "";
  return `${outs} = ${n.op}(${n.inputs.map(ref).join(", ")})${attrText} : ${types}${label}`;
}

export function printGraph(g: Graph): string {
  const lines = [`model ${g.name}${g.symbols.length ? ` (symbols ${g.symbols.join(", ")})` : ""} {`];
  for (const n of g.nodes) lines.push(`  ${nodeLine(g, n)}`);
  for (const o of g.outputs) lines.push(`  ${o.kind} ${o.name} = ${ref(o.value)} : ${typeToString(o.value.type)}`);
  for (const u of g.bufferUpdates) lines.push(`  update ${u.name} = ${ref(u.value)}`);
  if (g.optimizer) {
    lines.push(`  optimizer ${g.optimizer.kind}(${Object.entries(g.optimizer.options).map(([k, v]) => `${k}=${v}`).join(", ")})`);
  }
  lines.push("}");
  return lines.join("\n");
}

/** Parameter counts per layer, as a table for `cnnc ir`. */
export function printParamSummary(g: Graph): string {
  const { total, perLayer } = parameterCount(g);
  const width = Math.max(5, ...[...perLayer.keys()].map((k) => k.length));
  const lines = [`parameters of ${g.name}:`];
  for (const [layer, n] of perLayer) lines.push(`  ${layer.padEnd(width)}  ${n.toLocaleString("en-US").padStart(12)}`);
  lines.push(`  ${"total".padEnd(width)}  ${total.toLocaleString("en-US").padStart(12)}`);
  const buffers = g.buffers();
  if (buffers.length) lines.push(`  (${buffers.length} buffer${buffers.length > 1 ? "s" : ""} not counted: ${buffers.map((b) => b.name).join(", ")})`);
  return lines.join("\n");
}

function attrToJson(v: AttrValue): unknown {
  if (v instanceof Dim) return v.toJSON();
  if (Array.isArray(v)) return v.map(attrToJson);
  if (v !== null && typeof v === "object") return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, attrToJson(x as AttrValue)]));
  return v;
}

const typeJson = (v: Value) => ({ dtype: v.type.dtype, shape: v.type.shape.map((d) => d.toJSON()) });

export function graphToJson(g: Graph): Record<string, unknown> {
  return {
    name: g.name,
    symbols: g.symbols,
    inputs: [...g.inputs].map(([name, v]) => ({ name, ...typeJson(v) })),
    params: [...g.params.values()].map((p) => ({ name: p.name, ...typeJson(p.value), trainable: p.trainable, init: p.init })),
    nodes: g.nodes.map((n) => ({
      id: n.id,
      op: n.op,
      label: n.label ?? null,
      inputs: n.inputs.map((v) => v.id),
      outputs: n.outputs.map((v) => ({ id: v.id, ...typeJson(v) })),
      attrs: Object.fromEntries(Object.entries(n.attrs).map(([k, v]) => [k, attrToJson(v)])),
      span: n.span ? { line: n.span.line, col: n.span.col } : null,
    })),
    outputs: g.outputs.map((o) => ({ name: o.name, kind: o.kind, value: o.value.id, ...typeJson(o.value) })),
    bufferUpdates: g.bufferUpdates.map((u) => ({ name: u.name, value: u.value.id })),
    optimizer: g.optimizer ?? null,
  };
}

// Graph → JS program: one kernel function per compute node (from the op
// family's template), a buffer table (sizes as expressions over the bound
// symbols) and a `forward` that calls the kernels in order. The module
// emitter wraps this in an ES module; tests run it in-process.

import { neededNodes, type Graph, type Node, type Value } from "../../ir/graph.ts";
import type { DType } from "../../ir/types.ts";
import { getJsKernel } from "./index.ts";
import { dimToJs, productJs, type JsEmitCtx } from "./kernel.ts";

/** Ops that produce no kernel: their output shares the input's buffer. */
export const VIEW_OPS = new Set(["reshape"]);

export interface BufferSpec {
  readonly value: Value;
  readonly dtype: DType;
  /** Element count as a JS expression over `S`. */
  readonly size: string;
  /** Where the data comes from: a computed value, an input, a parameter, a constant, or another buffer (views). */
  readonly source: { kind: "computed" } | { kind: "input"; name: string } | { kind: "param"; name: string } | { kind: "const"; values: readonly number[] } | { kind: "alias"; of: number };
}

export interface JsProgram {
  /** Kernel function declarations, in call order. */
  readonly kernels: string[];
  /** `function forward(S, T, B) { ... }` */
  readonly forward: string;
  readonly buffers: BufferSpec[];
  /** Buffer index of each value. */
  readonly bufferOf: ReadonlyMap<Value, number>;
  /** Kernel calls made per forward (for stats and tests). */
  readonly kernelCount: number;
}

export const ARRAY_TYPE: Record<DType, string> = { f32: "Float32Array", i32: "Int32Array", bool: "Uint8Array" };

/** A readable, safe identifier fragment from a user label. */
export function mangle(label: string): string {
  const s = label.replace(/[^A-Za-z0-9_]/g, "_").replace(/_+/g, "_").replace(/^_|_$/g, "");
  return s.slice(0, 40) || "node";
}

function emitCtx(node: Node): JsEmitCtx {
  const shape = (v: Value) => v.type.shape.map((d) => dimToJs(d));
  return {
    node,
    dim: (d) => dimToJs(d),
    inShape: (i) => shape(node.inputs[i]!),
    outShape: (i) => shape(node.outputs[i]!),
    inSize: (i) => productJs(shape(node.inputs[i]!)),
    outSize: (i) => productJs(shape(node.outputs[i]!)),
    input: (i) => `x${i}`,
    output: (i) => `y${i}`,
    rngKey: `${node.label ?? ""}#${node.id}`,
  };
}

/**
 * `k<node>_<op>_<label>`, plus `_train` for a node in training form (attribute
 * `training: true`, set by the training graph): the training graph's copy of a
 * forward node keeps its id but may differ (dropout/noise gain the `@step`
 * input), and a module holds the run's and the training step's kernels side by
 * side, by name.
 */
export function kernelName(node: Node): string {
  return `k${node.id}_${node.op}${node.label ? `_${mangle(node.label)}` : ""}${node.attrs.training === true ? "_train" : ""}`;
}

export function emitProgram(g: Graph, roots: readonly Value[] = [...g.outputs.map((o) => o.value), ...g.bufferUpdates.map((u) => u.value)]): JsProgram {
  const nodes = neededNodes(g, roots);
  const buffers: BufferSpec[] = [];
  const bufferOf = new Map<Value, number>();
  const kernels: string[] = [];
  const calls: string[] = [];
  const add = (value: Value, source: BufferSpec["source"]) => {
    bufferOf.set(value, buffers.length);
    buffers.push({ value, dtype: value.type.dtype, size: productJs(value.type.shape.map((d) => dimToJs(d))), source });
  };
  for (const node of nodes) {
    if (node.op === "input") {
      add(node.outputs[0]!, { kind: "input", name: node.attrs.name as string });
      continue;
    }
    if (node.op === "param") {
      add(node.outputs[0]!, { kind: "param", name: node.attrs.name as string });
      continue;
    }
    if (node.op === "const") {
      const values = (node.attrs.values as number[] | undefined) ?? [node.attrs.value as number];
      add(node.outputs[0]!, { kind: "const", values });
      continue;
    }
    if (VIEW_OPS.has(node.op)) {
      add(node.outputs[0]!, { kind: "alias", of: bufferOf.get(node.inputs[0]!)! });
      continue;
    }
    for (const v of node.outputs) add(v, { kind: "computed" });
    const name = kernelName(node);
    const params = ["S", "T", ...node.inputs.map((_, i) => `x${i}`), ...node.outputs.map((_, i) => `y${i}`)];
    const body = getJsKernel(node.op).emit(emitCtx(node)).trim();
    const covers = `// IR node %${node.outputs.map((v) => v.id).join(", %")} = ${node.op}${node.label ? ` (${node.label})` : ""}`;
    kernels.push(`${covers}\nfunction ${name}(${params.join(", ")}) {\n${indent(body)}\n}`);
    const args = [...node.inputs, ...node.outputs].map((v) => `B[${bufferOf.get(v)}]`);
    calls.push(`${name}(S, T, ${args.join(", ")});`);
  }
  const forward = `function forward(S, T, B) {\n${indent(calls.join("\n"))}\n}`;
  return { kernels, forward, buffers, bufferOf, kernelCount: calls.length };
}

function indent(s: string): string {
  return s
    .split("\n")
    .map((l) => (l.length ? `  ${l}` : l))
    .join("\n");
}

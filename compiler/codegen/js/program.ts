// Graph → JS program: one kernel function per compute node (from the op
// family's template), a buffer table (sizes as expressions over the bound
// symbols) and a `forward` that calls the kernels in order. The module
// emitter wraps this in an ES module; tests run it in-process.
// Intermediate values live in shared arenas by liveness (the memory plan,
// compiler/passes/memory.ts; placed per bound shape by runtime/memory-plan.ts);
// a value's buffer is a view of exactly its tensor's length, so kernels see
// buffers of their tensors' sizes. Elementwise kernels in IN_PLACE_OPS may get
// the same buffer as an input and their output (they read element i before
// writing it). Optimizer updates (UPDATE_IN_PLACE) write the new parameter
// and state over the old: their results are views of the parameters' buffers.

import { neededNodes, type Graph, type Node, type Value } from "../../ir/graph.ts";
import type { DType } from "../../ir/types.ts";
import { getJsKernel } from "./index.ts";
import { dimToJs, productJs, type JsEmitCtx } from "./kernel.ts";
import { planMemory, type MemoryPlan } from "../../passes/memory.ts";
import { BINARY, UNARY } from "./elementwise.ts";

/** Ops that produce no kernel: their output shares the input's buffer. */
export const VIEW_OPS = new Set(["reshape"]);

export interface BufferSpec {
  readonly value: Value;
  readonly dtype: DType;
  /** Element count as a JS expression over `S`. */
  readonly size: string;
  /**
   * Where the data comes from: a computed value with a buffer of its own (what the entry returns), a computed
   * value placed by the memory plan (item `item` of `JsProgram.memory`), an input, a parameter, a constant, or
   * another buffer (views).
   */
  readonly source:
    | { kind: "computed" }
    | { kind: "planned"; item: number }
    | { kind: "input"; name: string }
    | { kind: "param"; name: string }
    | { kind: "const"; values: readonly number[] }
    | { kind: "alias"; of: number };
}

/**
 * Ops whose kernels (JS and WGSL) may write their output over an input of the same shape and dtype:
 * maps where output element i depends only on the inputs' elements i (read before it is written). Output 0 only
 * (a fused_elementwise node stores its further outputs, same-shaped intermediates, before it).
 */
export const IN_PLACE_OPS = new Set([...Object.keys(BINARY), ...Object.keys(UNARY), "where", "unary_grad", "binary_grad", "fused_elementwise"]);

/**
 * Optimizer updates that may write output j over input k ([j, k]): the parameter and its optimizer state, read at
 * element i before element i is written (compiler/codegen/{js,wgsl}/optim.ts).
 */
export const UPDATE_IN_PLACE: Readonly<Record<string, readonly (readonly [number, number])[]>> = {
  sgd_update: [[0, 0], [1, 3]],
  adam_update: [[0, 0], [1, 4], [2, 5]],
};

/**
 * A region of the memory plan: the values in it occupy it for schedule steps [def, last]; `avoid`: items that
 * must be in another arena. The runtime places items per bound shape (runtime/memory-plan.ts).
 */
export interface MemoryItemSpec {
  /** Element count as a JS expression over `S` (the largest member's). */
  readonly size: string;
  readonly def: number;
  readonly last: number;
  readonly avoid: readonly number[];
  /** A WGSL scratch slot: which (`t0 of %12`), for the generated code's comments. */
  readonly scratch?: string;
}

/**
 * The memory plan of a schedule, with `VIEW_OPS` as the views and `IN_PLACE_OPS` written in place; `scratch`: the
 * WebGPU target's per-node scratch slots (compiler/codegen/wgsl/program.ts), none on the JS target.
 */
export function planProgramMemory(nodes: readonly Node[], roots: readonly Value[], scratch?: (n: Node) => readonly string[] | undefined): MemoryPlan {
  return planMemory(nodes, roots, { isView: (n) => VIEW_OPS.has(n.op), inPlace: (n) => IN_PLACE_OPS.has(n.op), overwrites: (n) => UPDATE_IN_PLACE[n.op], scratch });
}

export function memoryItemSpecs(plan: MemoryPlan): MemoryItemSpec[] {
  return plan.items.map((it) => {
    if (it.scratch) return { size: it.scratch.size, def: it.def, last: it.last, avoid: it.avoid, scratch: `t${it.scratch.slot} of %${it.scratch.node.outputs[0]!.id}` };
    const sizes = [...new Set(it.members.map((v) => productJs(v.type.shape.map((d) => dimToJs(d)))))];
    return { size: sizes.length === 1 ? sizes[0]! : `Math.max(${sizes.join(", ")})`, def: it.def, last: it.last, avoid: it.avoid };
  });
}

export interface JsProgram {
  /** Kernel function declarations, in call order. */
  readonly kernels: string[];
  /** `function forward(S, T, B) { ... }` */
  readonly forward: string;
  readonly buffers: BufferSpec[];
  /** Items of the `planned` buffers (the memory plan). */
  readonly memory: MemoryItemSpec[];
  readonly plan: MemoryPlan;
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

/** Where a computed value lives: the memory plan, the parameter it overwrites, or a buffer of its own. */
export function bufferSource(plan: MemoryPlan, bufferOf: ReadonlyMap<Value, number>, v: Value): BufferSpec["source"] {
  if (plan.itemOf.has(v)) return { kind: "planned", item: plan.itemOf.get(v)! };
  if (plan.overwrites.has(v)) return { kind: "alias", of: bufferOf.get(plan.overwrites.get(v)!)! };
  return { kind: "computed" };
}

export function emitProgram(g: Graph, roots: readonly Value[] = [...g.outputs.map((o) => o.value), ...g.bufferUpdates.map((u) => u.value)]): JsProgram {
  const nodes = neededNodes(g, roots);
  const plan = planProgramMemory(nodes, roots);
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
    for (const v of node.outputs) add(v, bufferSource(plan, bufferOf, v));
    const name = kernelName(node);
    const params = ["S", "T", ...node.inputs.map((_, i) => `x${i}`), ...node.outputs.map((_, i) => `y${i}`)];
    const body = getJsKernel(node.op).emit(emitCtx(node)).trim();
    const covers = `// IR node %${node.outputs.map((v) => v.id).join(", %")} = ${node.op}${node.label ? ` (${node.label})` : ""}`;
    kernels.push(`${covers}\nfunction ${name}(${params.join(", ")}) {\n${indent(body)}\n}`);
    const args = [...node.inputs, ...node.outputs].map((v) => `B[${bufferOf.get(v)}]`);
    calls.push(`${name}(S, T, ${args.join(", ")});`);
  }
  const forward = `function forward(S, T, B) {\n${indent(calls.join("\n"))}\n}`;
  return { kernels, forward, buffers, memory: memoryItemSpecs(plan), plan, bufferOf, kernelCount: calls.length };
}

function indent(s: string): string {
  return s
    .split("\n")
    .map((l) => (l.length ? `  ${l}` : l))
    .join("\n");
}

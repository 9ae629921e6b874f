// Graph → WebGPU program: per compute node, the passes of its WGSL template
// with the binding declarations added; a buffer table shared with the JS
// target's layout (reshape is a view); and, per pass, which buffers it binds
// and how many workgroups it dispatches. The runtime (runtime/webgpu.ts) turns
// this into pipelines, bind groups and one command encoder per run.
// Intermediate values share arenas by liveness (compiler/passes/memory.ts),
// the same plan as the JS target; a pass binds exactly its value's range. A
// node written in place (its output over a dying input, IN_PLACE_OPS, or an
// optimizer update over its parameter) reads and writes `y<j>`: the input's
// binding is renamed, since one buffer range
// cannot be bound read-only and writable in one dispatch (`_inplace` kernels).
// Scratch slots (`WgslPass.scratch`) are items of the same plan, appended
// after the values' (so those keep the JS target's item indices): slot i of a
// node is one item, as large as its largest use by the node's passes, live
// only during the node; a pass binds its range of the arena (`item`).

import { neededNodes, type Graph, type Node, type Value } from "../../ir/graph.ts";
import { bufferSource, mangle, memoryItemSpecs, planProgramMemory, VIEW_OPS, type BufferSpec, type MemoryItemSpec } from "../js/program.ts";
import type { MemoryPlan } from "../../passes/memory.ts";
import { dimToJs, productJs } from "../js/kernel.ts";
import { getWgslKernel } from "./index.ts";
import { dimToWgsl, productWgsl, WGSL_TYPE, type AdapterClass, type WgslEmitCtx, type WgslKernelResult, type WgslPass } from "./kernel.ts";

export interface WgslPassPlan {
  /** Kernel name: `k<node>_<op>_<label>[_<pass>]`. */
  readonly name: string;
  readonly node: Node;
  /** Full WGSL module text per adapter class. */
  readonly code: Readonly<Record<AdapterClass, string>>;
  readonly dispatch: Readonly<Record<AdapterClass, readonly [string, string?, string?]>>;
  /** Buffer indices bound at 1.. (inputs, outputs, then the scratch slots t0, t1, ...). */
  readonly inputs: readonly number[];
  readonly outputs: readonly number[];
  /** Scratch slot i: element type, elements this pass binds (JS over S), and its memory plan item. */
  readonly scratch: readonly { readonly type: string; readonly size: string; readonly item: number }[];
  /** Passes of one node share a group: their scratch slots are the same plan items. */
  readonly group: number;
  readonly usesError: boolean;
  /** Error messages by kind, for this node. */
  readonly errors: Readonly<Record<number, string>>;
}

export interface WgslProgram {
  readonly symbols: readonly string[];
  readonly buffers: BufferSpec[];
  /** Items of the `planned` buffers and of the passes' scratch (the memory plan). */
  readonly memory: MemoryItemSpec[];
  readonly plan: MemoryPlan;
  readonly bufferOf: ReadonlyMap<Value, number>;
  readonly passes: WgslPassPlan[];
}

function emitCtx(node: Node): WgslEmitCtx {
  const shape = (v: Value) => v.type.shape.map((d) => dimToWgsl(d));
  const shapeJs = (v: Value) => v.type.shape.map((d) => dimToJs(d));
  return {
    node,
    dim: (d) => dimToWgsl(d),
    dimJs: (d) => dimToJs(d),
    inShape: (i) => shape(node.inputs[i]!),
    outShape: (i) => shape(node.outputs[i]!),
    inSize: (i) => productWgsl(shape(node.inputs[i]!)),
    outSize: (i) => productWgsl(shape(node.outputs[i]!)),
    inSizeJs: (i) => productJs(shapeJs(node.inputs[i]!)),
    outSizeJs: (i) => productJs(shapeJs(node.outputs[i]!)),
    inType: (i) => WGSL_TYPE[node.inputs[i]!.type.dtype],
    outType: (i) => WGSL_TYPE[node.outputs[i]!.type.dtype],
    input: (i) => `x${i}`,
    output: (i) => `y${i}`,
  };
}

/** The error reporter of a node's passes: the first error wins; the host reads [count, kind, a, b, node] back. */
function errorFn(node: Node): string {
  return `fn report_error(kind: u32, a: i32, b: u32) {
  if (atomicAdd(&err[0], 1u) == 0u) {
    atomicStore(&err[1], kind);
    atomicStore(&err[2], bitcast<u32>(a));
    atomicStore(&err[3], b);
    atomicStore(&err[4], ${node.id}u);
  }
}`;
}

/**
 * The inputs and outputs a pass's code refers to (x0, y1, ...), in either variant. Only
 * those are declared and bound: unused bindings count against the 8-storage-buffer limit
 * of many adapters and cost compile time on lavapipe.
 */
function referenced(codes: readonly string[], prefix: "x" | "y", count: number): number[] {
  const used = new Set<number>();
  for (const code of codes) for (const m of code.matchAll(new RegExp(`\\b${prefix}(\\d+)\\b`, "g"))) used.add(Number(m[1]));
  return [...Array(count).keys()].filter((i) => used.has(i));
}

function declarations(g: Graph, node: Node, pass: WgslPass, inputs: readonly number[], outputs: readonly number[]): string {
  const fields = g.symbols.length ? g.symbols.map((s) => `s_${s}: u32`).join(", ") : "unused: u32";
  const lines = [`struct Params { ${fields} }`, "@group(0) @binding(0) var<uniform> P: Params;"];
  let b = 1;
  const elem = (name: string, t: string) => pass.bindingTypes?.[name] ?? t;
  for (const i of inputs) lines.push(`@group(0) @binding(${b++}) var<storage, read> x${i}: array<${elem(`x${i}`, WGSL_TYPE[node.inputs[i]!.type.dtype])}>;`);
  for (const i of outputs) lines.push(`@group(0) @binding(${b++}) var<storage, read_write> y${i}: array<${elem(`y${i}`, WGSL_TYPE[node.outputs[i]!.type.dtype])}>;`);
  (pass.scratch ?? []).forEach((s, i) => lines.push(`@group(0) @binding(${b++}) var<storage, read_write> t${i}: array<${s.type}>;`));
  if (pass.usesError) lines.push(`@group(0) @binding(${b++}) var<storage, read_write> err: array<atomic<u32>, 5>;`, errorFn(node));
  return lines.join("\n");
}

/**
 * `k<node>_<op>_<label>[_train][_p<pass>]`. `_train` marks a node in training
 * form (attribute `training: true`, set by the training graph): it keeps the
 * forward node's id but has another kernel (batchnorm on batch statistics,
 * dropout/noise drawing), and a module holds the run's and the training step's
 * kernels side by side, by name.
 */
export function kernelName(node: Node, pass: number, passes: number): string {
  return `k${node.id}_${node.op}${node.label ? `_${mangle(node.label)}` : ""}${node.attrs.training === true ? "_train" : ""}${passes > 1 ? `_p${pass}` : ""}`;
}

/** Element counts (JS over S) of a node's scratch slots: slot i as large as its largest use by any pass. */
function scratchSizes(result: WgslKernelResult): string[] {
  const sizes: Set<string>[] = [];
  for (const pass of result.passes) (pass.scratch ?? []).forEach((t, i) => (sizes[i] ??= new Set()).add(t.size));
  return sizes.map((s) => (s.size === 1 ? [...s][0]! : `Math.max(${[...s].join(", ")})`));
}

export function emitWgslProgram(g: Graph, roots: readonly Value[]): WgslProgram {
  const nodes = neededNodes(g, roots);
  // Kernels first: their scratch slots are items of the memory plan.
  const kernels = new Map<Node, WgslKernelResult>();
  for (const node of nodes) if (!["input", "param", "const"].includes(node.op) && !VIEW_OPS.has(node.op)) kernels.set(node, getWgslKernel(node.op).emit(emitCtx(node)));
  const plan = planProgramMemory(nodes, roots, (n) => (kernels.has(n) ? scratchSizes(kernels.get(n)!) : undefined));
  const scratchItem = new Map<Node, number[]>();
  plan.items.forEach((it, k) => {
    if (it.scratch) (scratchItem.get(it.scratch.node) ?? scratchItem.set(it.scratch.node, []).get(it.scratch.node)!)[it.scratch.slot] = k;
  });
  const buffers: BufferSpec[] = [];
  const bufferOf = new Map<Value, number>();
  const passes: WgslPassPlan[] = [];
  const add = (value: Value, source: BufferSpec["source"]) => {
    bufferOf.set(value, buffers.length);
    buffers.push({ value, dtype: value.type.dtype, size: productJs(value.type.shape.map((d) => dimToJs(d))), source });
  };
  for (const node of nodes) {
    if (node.op === "input") add(node.outputs[0]!, { kind: "input", name: node.attrs.name as string });
    else if (node.op === "param") add(node.outputs[0]!, { kind: "param", name: node.attrs.name as string });
    else if (node.op === "const") add(node.outputs[0]!, { kind: "const", values: (node.attrs.values as number[] | undefined) ?? [node.attrs.value as number] });
    else if (VIEW_OPS.has(node.op)) add(node.outputs[0]!, { kind: "alias", of: bufferOf.get(node.inputs[0]!)! });
    else {
      for (const v of node.outputs) add(v, bufferSource(plan, bufferOf, v));
      const result = kernels.get(node)!;
      const inPlace = plan.inPlace.get(node);
      const alias = (code: string) => (inPlace ?? []).reduce((c, [j, k]) => c.replace(new RegExp(`\\bx${k}\\b`, "g"), `y${j}`), code);
      result.passes.forEach((pass, k) => {
        const name = kernelName(node, k, result.passes.length) + (inPlace === undefined ? "" : "_inplace");
        const header = `// ${name}: IR node %${node.outputs.map((v) => v.id).join(", %")} = ${node.op}${node.label ? ` (${node.label.replace(/[^\w.]/g, "_")})` : ""}`;
        const bodies = [pass.variants?.cpu?.code ?? pass.code, pass.variants?.gpu?.code ?? pass.code].map(alias);
        const ins = referenced(bodies, "x", node.inputs.length);
        const outs = referenced(bodies, "y", node.outputs.length);
        const full = (code: string) => `${header}\n${declarations(g, node, pass, ins, outs)}\n\n${code.trim()}\n`;
        const code = { cpu: full(bodies[0]!), gpu: full(bodies[1]!) };
        const dispatch = { cpu: pass.variants?.cpu?.dispatch ?? pass.dispatch, gpu: pass.variants?.gpu?.dispatch ?? pass.dispatch };
        passes.push({
          name,
          node,
          code,
          dispatch,
          inputs: ins.map((i) => bufferOf.get(node.inputs[i]!)!),
          outputs: outs.map((i) => bufferOf.get(node.outputs[i]!)!),
          scratch: (pass.scratch ?? []).map((t, i) => ({ ...t, item: scratchItem.get(node)![i]! })),
          group: node.id,
          usesError: pass.usesError ?? false,
          errors: result.errors ?? {},
        });
      });
    }
  }
  return { symbols: g.symbols, buffers, memory: memoryItemSpecs(plan), plan, bufferOf, passes };
}

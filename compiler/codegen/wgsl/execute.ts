// Run a graph's generated WGSL on a real WebGPU device in this process
// (conformance tests against the reference, `cnnc run --target=webgpu`).

import { neededInputs, type Graph } from "../../ir/graph.ts";
import { RefTensor } from "../../reference/tensor.ts";
import type { BufferSpecRt, DimSpec, ModelSpec, TensorSpec } from "../../../runtime/model.ts";
import { GpuEntry, uploadBuffer, watchLoss, type AdapterClass, type GpuEntrySpec } from "../../../runtime/webgpu.ts";
import type { BufferSpec } from "../js/program.ts";
import type { Dim } from "../../ir/dims.ts";
import { dimToJs } from "../js/kernel.ts";
import { emitWgslProgram, type WgslProgram } from "./program.ts";

const jsFn = (expr: string) => new Function("S", `return ${expr};`) as (S: Record<string, number>) => number;

function dimSpec(d: Dim): DimSpec {
  const c = d.constValue();
  if (c !== undefined) return c;
  const syms = [...d.symbols()];
  if (syms.length === 1 && d.toString() === syms[0]) return syms[0]!;
  return { text: d.toString(), eval: jsFn(dimToJs(d)) };
}

function bufferRt(b: BufferSpec): BufferSpecRt {
  const s = b.source;
  const source =
    s.kind === "computed" ? "computed" : s.kind === "planned" ? { planned: s.item } : s.kind === "input" ? { input: s.name } : s.kind === "param" ? { param: s.name } : s.kind === "const" ? { const: s.values } : { alias: s.of };
  return { dtype: b.dtype, size: jsFn(b.size), source } as BufferSpecRt;
}

/** The in-process form of a program: dispatch sizes and buffer sizes as functions. */
export function entrySpec(g: Graph, program: WgslProgram, outputs: readonly { name: string; buffer: number; spec: TensorSpec }[], inputs: readonly string[]): GpuEntrySpec {
  return {
    inputs,
    outputs,
    buffers: program.buffers.map(bufferRt),
    memory: program.memory.map((it) => ({ size: jsFn(it.size), def: it.def, last: it.last, avoid: it.avoid })),
    passes: program.passes.map((p) => ({
      name: p.name,
      implements: `${p.node.op}${p.node.label ? ` '${p.node.label}'` : ""}`,
      code: p.code,
      dispatch: { cpu: p.dispatch.cpu.filter((x): x is string => x !== undefined).map(jsFn), gpu: p.dispatch.gpu.filter((x): x is string => x !== undefined).map(jsFn) },
      inputs: p.inputs,
      outputs: p.outputs,
      scratch: p.scratch.map((t) => ({ size: jsFn(t.size), item: t.item })),
      group: p.group,
      usesError: p.usesError,
      errors: p.errors,
    })),
  };
}

export function modelSpecOf(g: Graph): Omit<ModelSpec, "run"> {
  return {
    name: g.name,
    symbols: g.symbols,
    inputs: [...g.inputs].map(([name, v]) => ({ name, dtype: v.type.dtype, shape: v.type.shape.map(dimSpec) })),
    params: [...g.params.values()].map((p) => ({ name: p.name, dtype: p.value.type.dtype, shape: p.value.type.shape.map(dimSpec), init: p.init, trainable: p.trainable })),
  };
}

const ARRAY = { f32: Float32Array, i32: Int32Array, bool: Uint8Array } as const;

export interface WgslExecutor {
  readonly program: WgslProgram;
  run(inputs: Record<string, RefTensor>): Promise<Record<string, RefTensor>>;
  dispose(): void;
}

/** Compile the graph's outputs (default: all) for `device` and return a runner. */
export async function wgslExecutor(g: Graph, device: GPUDevice, cls: AdapterClass, params: Record<string, RefTensor>, outputNames?: readonly string[]): Promise<WgslExecutor> {
  const outs = outputNames ? g.outputs.filter((o) => outputNames.includes(o.name)) : g.outputs;
  const program = emitWgslProgram(g, outs.map((o) => o.value));
  const inputs = neededInputs(g, outs.map((o) => o.value));
  const outputs = outs.map((o) => ({ name: o.name, buffer: program.bufferOf.get(o.value)!, spec: { name: o.name, dtype: o.value.type.dtype, shape: o.value.type.shape.map(dimSpec) } }));
  const spec = modelSpecOf(g);
  const paramBuffers = new Map<string, GPUBuffer>();
  for (const b of program.buffers) {
    if (b.source.kind !== "param") continue;
    const t = params[b.source.name]!;
    paramBuffers.set(b.source.name, uploadBuffer(device, t.dtype, ARRAY[t.dtype].from(t.data)));
  }
  const entry = await GpuEntry.create(device, spec, entrySpec(g, program, outputs, inputs), cls, paramBuffers, watchLoss(device, g.name));
  return {
    program,
    async run(feeds) {
      const typed = Object.fromEntries(Object.entries(feeds).map(([k, t]) => [k, { data: ARRAY[t.dtype].from(t.data), shape: [...t.shape] }]));
      // Hidden run-time scalars (`@lr`, `@step` of training graphs) go in as scalars, as the training runtime passes them.
      const scalars = new Map<number, number>();
      program.buffers.forEach((b, i) => {
        if (b.source.kind === "input" && b.source.name.startsWith("@") && feeds[b.source.name]) scalars.set(i, feeds[b.source.name]!.data[0]!);
      });
      const out = (await entry.execute(typed, scalars)).outputs;
      return Object.fromEntries(outs.map((o) => [o.name, new RefTensor(o.value.type.dtype, out[o.name]!.shape, Float64Array.from(out[o.name]!.data))]));
    },
    dispose() {
      entry.dispose();
      paramBuffers.forEach((b) => b.destroy());
    },
  };
}

// One WebGPU device (Dawn on lavapipe here; a real GPU elsewhere) per test
// file, and conformance of generated WGSL with the float64 reference.
// A missing adapter fails the tests: in CI it must never silently skip.

import { afterAll, expect } from "vitest";
import type { Graph } from "../../compiler/ir/graph.ts";
import { wgslExecutor } from "../../compiler/codegen/wgsl/execute.ts";
import { initialParams, interpret } from "../../compiler/reference/interpreter.ts";
import type { RefTensor } from "../../compiler/reference/tensor.ts";
import { acquireDevice, type AdapterClass } from "../../runtime/webgpu.ts";
import { expectAllClose, type ConformanceOptions } from "./conformance.ts";

let shared: Promise<{ device: GPUDevice; adapterClass: AdapterClass }> | undefined;

// Destroy the device when the file's tests end: Dawn's threads must stop before the worker exits.
afterAll(async () => {
  if (shared) (await shared).device.destroy();
  shared = undefined;
});

export function gpuDevice(): Promise<{ device: GPUDevice; adapterClass: AdapterClass }> {
  process.env.XDG_RUNTIME_DIR ??= "/tmp";
  shared ??= acquireDevice();
  return shared;
}

/** Runs `g` on the WebGPU target and the reference; returns the WebGPU outputs after checking them. */
export async function expectWgslMatchesReference(g: Graph, inputs: Record<string, RefTensor>, opts: ConformanceOptions & { adapterClass?: AdapterClass } = {}): Promise<Record<string, RefTensor>> {
  const params = { ...initialParams(g, opts.seed ?? 0), ...(opts.params ?? {}) };
  for (const k of Object.keys(params)) params[k] = params[k]!.map((v) => Math.fround(v));
  const f32Inputs = Object.fromEntries(Object.entries(inputs).map(([k, t]) => [k, t.dtype === "f32" ? t.map((v) => Math.fround(v)) : t]));
  const ref = interpret(g, f32Inputs, params, { seed: opts.seed });
  const { device, adapterClass } = await gpuDevice();
  const ex = await wgslExecutor(g, device, opts.adapterClass ?? adapterClass, params, Object.keys(ref.outputs));
  try {
    const got = await ex.run(f32Inputs);
    for (const [name, want] of Object.entries(ref.outputs)) expectAllClose(got[name]!, want, `output '${name}'`, opts.rtol, opts.atol);
    return got;
  } finally {
    ex.dispose();
  }
}

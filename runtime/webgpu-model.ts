// A compiled WebGPU-target model (DSL.md §9): the same API as the JS target,
// with parameters resident on the device, pipelines compiled asynchronously
// during create…() (so the first run does not stall on shader compilation),
// and one submit per run.

import { CnncRunError } from "./run-context.ts";
import { loadParams, saveParams, snapshotParams, type CompiledModel, type CreateOptions, type ModelSpec, type TensorValue } from "./model.ts";
import { acquireDevice, GpuEntry, uploadBuffer, watchLoss, type GpuEntrySpec } from "./webgpu.ts";

export interface GpuModelSpec extends Omit<ModelSpec, "run" | "evaluate"> {
  readonly run: GpuEntrySpec;
  /** Outputs and losses; run() uses it when the losses' inputs are given. */
  readonly evaluate?: GpuEntrySpec;
}

export interface GpuCreateOptions extends CreateOptions {
  /** Use this device instead of navigator.gpu / Dawn. */
  readonly device?: GPUDevice;
}

export async function createGpuModel(spec: GpuModelSpec, options: GpuCreateOptions = {}): Promise<CompiledModel & { readonly device: GPUDevice }> {
  const values = loadParams(spec, options);
  const { device, adapterClass, owned } = await acquireDevice(options.device);
  const lost = watchLoss(device, spec.name);
  const buffers = new Map<string, GPUBuffer>();
  for (const p of spec.params) buffers.set(p.name, uploadBuffer(device, p.dtype, values.get(p.name)!));
  // Every pipeline of every entry is compiled now, concurrently.
  const [run, evaluate] = await Promise.all([
    GpuEntry.create(device, spec, spec.run, adapterClass, buffers, lost),
    spec.evaluate ? GpuEntry.create(device, spec, spec.evaluate, adapterClass, buffers, lost) : undefined,
  ]);
  let disposed = false;
  const live = () => {
    if (disposed) throw new CnncRunError(`${spec.name}: the model was disposed`);
  };
  return {
    device,
    async run(inputs: Record<string, TensorValue | undefined>) {
      live();
      const feeds = inputs ?? {};
      const useEvaluate = evaluate && spec.evaluate!.inputs.every((n) => feeds[n] !== undefined);
      return (useEvaluate ? evaluate : run).run(feeds);
    },
    parameters() {
      live();
      return snapshotParams(spec, values);
    },
    saveWeights() {
      live();
      return saveParams(spec, values);
    },
    dispose() {
      if (disposed) return;
      disposed = true;
      run.dispose();
      evaluate?.dispose();
      buffers.forEach((b) => b.destroy());
      if (owned) device.destroy();
    },
  };
}

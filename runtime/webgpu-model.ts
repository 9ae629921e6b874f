// A compiled WebGPU-target model (DSL.md §9): the same API as the JS target,
// with parameters resident on the device, pipelines compiled asynchronously
// during create…() (so the first run does not stall on shader compilation),
// and one submit per run.

import { CnncRunError } from "./run-context.ts";
import {
  addOptimizerState,
  loadParams,
  lossValue,
  saveParams,
  snapshotParams,
  stepLearningRate,
  type CompiledModel,
  type CreateOptions,
  type LossValue,
  type ModelSpec,
  type TensorValue,
  type TrainEntrySpec,
} from "./model.ts";
import { acquireDevice, GpuEntry, uploadBuffer, watchLoss, type GpuEntrySpec } from "./webgpu.ts";

export interface GpuModelSpec extends Omit<ModelSpec, "run" | "evaluate" | "train"> {
  readonly run: GpuEntrySpec;
  /** Training step (models with a loss); see TrainEntrySpec. */
  readonly train?: GpuEntrySpec & Omit<TrainEntrySpec, "forward">;
  /** Outputs and losses; run() uses it when the losses' inputs are given. */
  readonly evaluate?: GpuEntrySpec;
}

export interface GpuCreateOptions extends CreateOptions {
  /** Use this device instead of navigator.gpu / Dawn. */
  readonly device?: GPUDevice;
}

export async function createGpuModel(spec: GpuModelSpec, options: GpuCreateOptions = {}): Promise<CompiledModel & { readonly device: GPUDevice }> {
  const values = loadParams(spec, options);
  addOptimizerState(spec, values);
  const { device, adapterClass, owned } = await acquireDevice(options.device);
  const lost = watchLoss(device, spec.name);
  const buffers = new Map<string, GPUBuffer>();
  for (const p of spec.params) buffers.set(p.name, uploadBuffer(device, p.dtype, values.get(p.name)!));
  for (const st of spec.train?.state ?? []) buffers.set(st.name, uploadBuffer(device, "f32", values.get(st.name)!));
  // Every pipeline of every entry is compiled now, concurrently.
  // The training step's pipelines compile in the background from here on; the first trainStep awaits them.
  const trainReady = spec.train ? GpuEntry.create(device, spec, spec.train, adapterClass, buffers, lost) : undefined;
  trainReady?.catch(() => undefined); // reported by the trainStep that awaits it
  const [run, evaluate] = await Promise.all([
    GpuEntry.create(device, spec, spec.run, adapterClass, buffers, lost),
    spec.evaluate ? GpuEntry.create(device, spec, spec.evaluate, adapterClass, buffers, lost) : undefined,
  ]);
  let steps = 0;
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
    async trainStep(inputs: Record<string, TensorValue | undefined>, options?: { lr?: number }) {
      live();
      const train = await trainReady;
      if (!spec.train || !train) {
        throw new CnncRunError(`${spec.name}: the model declares no loss, so it has no trainStep`);
      }
      const lr = stepLearningRate(spec.name, spec.train, options);
      const scalars = new Map<number, number>();
      if (spec.train.hyper.lr !== null) scalars.set(spec.train.hyper.lr, lr);
      if (spec.train.hyper.step !== null) scalars.set(spec.train.hyper.step, steps + 1);
      const r = await train.execute(inputs ?? {}, scalars);
      steps++;
      // Parameters and running statistics come back with the losses so parameters()/saveWeights() stay current.
      for (const [name, data] of Object.entries(r.updates)) (values.get(name) as Float32Array).set(data as Float32Array);
      const out: Record<string, LossValue> = {};
      for (const [name, t] of Object.entries(r.outputs)) out[name] = lossValue(t.data as Float32Array);
      return out;
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
      trainReady?.then((t) => t.dispose(), () => undefined);
      buffers.forEach((b) => b.destroy());
      if (owned) device.destroy();
    },
  };
}

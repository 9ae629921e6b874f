// The character-level LSTM language model (dsl-examples/char_lstm.cnn) on
// "Persuasion": the 64 most frequent characters plus one id for the rest
// (the model's 65), sequences of 64 characters, Adam as declared. The last
// 10% of the text is held out; its loss is compared with the text's unigram
// entropy (the best context-free model) in nats.
//
//   npm run train:char-lstm -- --epochs=1 [--target=js|webgpu] [--steps=300]

import { join } from "node:path";
import { parseArgs } from "node:util";
import { runIfMain } from "./cli-main.ts";
import { compileFile, loadModel, type TrainableModel } from "./load.ts";
import { fit } from "./loop.ts";
import type { EpochSummary } from "./progress.ts";
import { buildCharVocab, charLmBatches, encodeChars, loadCorpus, splitSequence, unigramEntropy } from "./text.ts";

export interface CharLstmOptions {
  readonly target: "js" | "webgpu";
  readonly epochs: number;
  /** Stop each epoch after this many steps (default: the whole text). */
  readonly steps?: number;
  readonly batchSize?: number;
  readonly seqLen?: number;
  readonly lr?: number;
  readonly seed?: number;
  readonly device?: GPUDevice;
  readonly quiet?: boolean;
}

export interface CharLstmResult {
  readonly model: TrainableModel;
  readonly epochs: EpochSummary[];
  /** Mean held-out cross-entropy (nats per character). */
  readonly heldOutLoss: number;
  /** Unigram entropy of the training text (nats per character). */
  readonly unigramEntropy: number;
}

function* limit<T>(it: Iterable<T>, n: number | undefined): Generator<T> {
  let i = 0;
  for (const x of it) {
    if (n !== undefined && i++ >= n) return;
    yield x;
  }
}

export async function trainCharLstm(opts: CharLstmOptions): Promise<CharLstmResult> {
  const text = loadCorpus();
  const vocab = buildCharVocab(text, { size: 65 });
  const { train, val } = splitSequence(encodeChars(text, vocab), 0.1);
  const N = opts.batchSize ?? 32;
  const L = opts.seqLen ?? 64;
  const g = compileFile(join(import.meta.dirname, "..", "dsl-examples", "char_lstm.cnn"));
  const model = await loadModel(g, { target: opts.target, seed: opts.seed ?? 0, device: opts.device });
  const epochs = await fit(model, {
    epochs: opts.epochs,
    batches: (epoch) => limit(charLmBatches(train, { batchSize: N, seqLen: L, seed: opts.seed ?? 0, epoch }), opts.steps),
    lr: opts.lr,
    progress: opts.quiet ? false : `char-lstm (${opts.target})`,
  });
  let sum = 0;
  let count = 0;
  for (const b of limit(charLmBatches(val, { batchSize: N, seqLen: L, seed: 0, ordered: true }), 8)) {
    const out = await model.run(b);
    sum += Number(out.xent!.data[0]) * b.chars.shape[0];
    count += b.chars.shape[0];
  }
  return { model, epochs, heldOutLoss: sum / count, unigramEntropy: unigramEntropy(train) };
}

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { target: { type: "string", default: "js" }, epochs: { type: "string", default: "1" }, steps: { type: "string" }, seed: { type: "string", default: "0" } } });
  const r = await trainCharLstm({ target: values.target as "js" | "webgpu", epochs: Number(values.epochs), steps: values.steps === undefined ? undefined : Number(values.steps), seed: Number(values.seed) });
  process.stderr.write(`char-lstm: held-out loss ${r.heldOutLoss.toFixed(3)} nats/char; unigram entropy ${r.unigramEntropy.toFixed(3)}\n`);
  r.model.dispose();
}

runIfMain(import.meta.filename, main);

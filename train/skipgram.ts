// Skip-gram with negative sampling (dsl-examples/skipgram.cnn) on Jane
// Austen's "Persuasion" (public domain, train/data): the 5,000 most frequent
// words, window 5, K = 5 negatives per pair, frequent words subsampled,
// SGD as the model declares.
//
//   npm run train:skipgram -- --epochs=3 [--target=js|webgpu]
//
// Prints per-epoch loss and, at the end, the nearest neighbours of a few
// words by cosine similarity of the input vectors (in_embed.weight).

import { parseArgs } from "node:util";
import { join } from "node:path";
import { runIfMain } from "./cli-main.ts";
import { compileFile, loadModel, type TrainableModel } from "./load.ts";
import { fit } from "./loop.ts";
import type { EpochSummary } from "./progress.ts";
import { buildVocab, encodeWords, loadCorpus, nearestNeighbours, skipGramEpoch, tokenize, type Vocab } from "./text.ts";

export const SKIPGRAM_VOCAB = 5000;
export const SKIPGRAM_DIM = 100;

export interface SkipGramOptions {
  readonly target: "js" | "webgpu";
  readonly epochs: number;
  readonly batchSize?: number;
  readonly negatives?: number;
  /** Use only the first `tokens` tokens of the text (default: all). */
  readonly tokens?: number;
  readonly lr?: number;
  readonly seed?: number;
  readonly device?: GPUDevice;
  readonly quiet?: boolean;
}

export interface SkipGramResult {
  readonly model: TrainableModel;
  readonly vocab: Vocab;
  readonly epochs: EpochSummary[];
  /** Cosine similarity of two words' input vectors. */
  similarity(a: string, b: string): number;
  neighbours(word: string, k: number): string[];
}

export async function trainSkipGram(opts: SkipGramOptions): Promise<SkipGramResult> {
  const tokens = tokenize(loadCorpus());
  const used = opts.tokens ? tokens.slice(0, opts.tokens) : tokens;
  const vocab = buildVocab(used, SKIPGRAM_VOCAB);
  const ids = encodeWords(used, vocab);
  const g = compileFile(join(import.meta.dirname, "..", "dsl-examples", "skipgram.cnn"));
  const model = await loadModel(g, { target: opts.target, seed: opts.seed ?? 0, device: opts.device });
  const epochOf = (epoch: number) =>
    skipGramEpoch(ids, vocab, { batchSize: opts.batchSize ?? 256, window: 5, negatives: opts.negatives ?? 5, seed: opts.seed ?? 0, epoch, subsample: 1e-3 });
  const epochs = await fit(model, {
    epochs: opts.epochs,
    batches: epochOf,
    stepsPerEpoch: epochOf(1).steps,
    lr: opts.lr,
    progress: opts.quiet ? false : `skipgram (${opts.target})`,
  });
  const table = () => model.parameters()["in_embed.weight"]!.data;
  const id = (w: string) => {
    const i = vocab.index.get(w);
    if (i === undefined) throw new Error(`'${w}' is not in the vocabulary`);
    return i;
  };
  return {
    model,
    vocab,
    epochs,
    similarity(a, b) {
      const t = table();
      const [ia, ib] = [id(a), id(b)];
      let dot = 0;
      let na = 0;
      let nb = 0;
      for (let d = 0; d < SKIPGRAM_DIM; d++) {
        const x = t[ia * SKIPGRAM_DIM + d]!;
        const y = t[ib * SKIPGRAM_DIM + d]!;
        dot += x * y;
        na += x * x;
        nb += y * y;
      }
      return dot / Math.sqrt(na * nb);
    },
    neighbours(word, k) {
      return nearestNeighbours(table(), SKIPGRAM_DIM, id(word), k).map((n) => vocab.words[n.id]!);
    },
  };
}

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { target: { type: "string", default: "js" }, epochs: { type: "string", default: "3" }, seed: { type: "string", default: "0" }, lr: { type: "string" } } });
  const r = await trainSkipGram({ target: values.target as "js" | "webgpu", epochs: Number(values.epochs), seed: Number(values.seed), lr: values.lr === undefined ? undefined : Number(values.lr) });
  for (const w of ["captain", "sister", "bath", "letter", "happy"]) process.stderr.write(`  ${w}: ${r.neighbours(w, 6).join(", ")}\n`);
  r.model.dispose();
}

runIfMain(import.meta.filename, main);

// Text pipelines for the language examples: word tokens and vocabularies,
// skip-gram-with-negative-sampling batches (dsl-examples/skipgram.cnn),
// character-level language-model batches (dsl-examples/char_lstm.cnn), and
// entropy baselines in nats (the unit of the models' losses: cross_entropy and
// logsigmoid use natural logarithms).
//
// Every random choice (subsampling, window sizes, shuffles, negatives, window
// offsets) comes from mulberry32 streams derived from (seed, epoch), so a seed
// fixes every batch of every epoch. The shipped corpus is loadCorpus()
// (train/data/persuasion.txt, see train/data/README.md).

import { readFileSync } from "node:fs";
import { join } from "node:path";
import type { Tensor } from "./mnist.ts";
import { deriveSeed, mulberry32, permutation, shuffleInPlace, type Rng } from "./rng.ts";

// ---------------------------------------------------------------------------
// Corpus

/** Names of the texts in train/data (without `.txt`). */
export type CorpusName = "persuasion";

/** A text shipped in train/data: Jane Austen's "Persuasion" (1818), public domain, 466,853 ASCII characters. */
export function loadCorpus(name: CorpusName = "persuasion"): string {
  return readFileSync(join(import.meta.dirname, "data", `${name}.txt`), "utf8");
}

// ---------------------------------------------------------------------------
// Words

/**
 * Word tokens: the text lowercased, then each maximal run of letters a–z,
 * with apostrophes allowed between letters ("elliot's", "don't"); digits,
 * punctuation and quote marks separate tokens and are dropped.
 */
export function tokenize(text: string): string[] {
  return text.toLowerCase().match(/[a-z]+(?:'[a-z]+)*/g) ?? [];
}

/** A word vocabulary: ids 0..size-1, most frequent first. */
export interface Vocab {
  /** The word of each id. */
  readonly words: readonly string[];
  /** Occurrences of each id's word in the tokens it was built from (the unknown id counts every out-of-vocabulary token). */
  readonly counts: Int32Array;
  readonly index: ReadonlyMap<string, number>;
  /** The id that out-of-vocabulary words map to, or -1 when they are dropped. */
  readonly unknownId: number;
  /** Number of tokens the vocabulary was built from. */
  readonly tokens: number;
}

export interface VocabOptions {
  /**
   * A token for out-of-vocabulary words (e.g. "<unk>"): it takes id
   * size − 1 and the count of all the words left out. Default none: words
   * outside the vocabulary are dropped by encodeWords (as word2vec does).
   */
  readonly unknown?: string;
  /** Leave out words seen fewer times (default 1). */
  readonly minCount?: number;
}

/**
 * The `size` most frequent words of `tokens` (ties broken alphabetically, so
 * the result is deterministic), fewer if the text has fewer distinct words
 * (or fewer with minCount occurrences). With `unknown`, size − 1 words plus
 * the unknown token as the last id.
 */
export function buildVocab(tokens: readonly string[], size: number, opts: VocabOptions = {}): Vocab {
  if (!Number.isInteger(size) || size < 1) throw new Error(`buildVocab: size must be a positive integer, got ${size}`);
  const freq = new Map<string, number>();
  for (const t of tokens) freq.set(t, (freq.get(t) ?? 0) + 1);
  if (opts.unknown !== undefined) freq.delete(opts.unknown);
  const minCount = opts.minCount ?? 1;
  const ranked = [...freq.entries()]
    .filter(([, c]) => c >= minCount)
    .sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
  const keep = ranked.slice(0, opts.unknown !== undefined ? size - 1 : size);
  const words = keep.map(([w]) => w);
  const counts: number[] = keep.map(([, c]) => c);
  let unknownId = -1;
  if (opts.unknown !== undefined) {
    const inVocab = counts.reduce((a, b) => a + b, 0);
    unknownId = words.length;
    words.push(opts.unknown);
    counts.push(tokens.length - inVocab);
  }
  return { words, counts: Int32Array.from(counts), index: new Map(words.map((w, i) => [w, i])), unknownId, tokens: tokens.length };
}

/** Word ids of `tokens`: out-of-vocabulary words become vocab.unknownId, or are dropped when it is -1. */
export function encodeWords(tokens: readonly string[], vocab: Vocab): Int32Array {
  const out = new Int32Array(tokens.length);
  let n = 0;
  for (const t of tokens) {
    const id = vocab.index.get(t) ?? vocab.unknownId;
    if (id >= 0) out[n++] = id;
  }
  return out.slice(0, n);
}

/**
 * Probability of keeping each word under frequent-word subsampling (Mikolov
 * et al. 2013, §2.3), in word2vec's released form:
 * keep(w) = min(1, (√(f/t) + 1) · t/f), f = count(w) / Σ counts; threshold t
 * (default 1e-3, word2vec's). Rare words are always kept; "the" much less often.
 */
export function keepProbabilities(vocab: Vocab, t = 1e-3): Float64Array {
  const total = vocab.counts.reduce((a, b) => a + b, 0);
  const out = new Float64Array(vocab.counts.length);
  for (let i = 0; i < out.length; i++) {
    const f = vocab.counts[i]! / total;
    out[i] = f === 0 ? 1 : Math.min(1, (Math.sqrt(f / t) + 1) * (t / f));
  }
  return out;
}

/** `ids` with each occurrence kept independently with probability keep[id]. */
export function subsample(ids: Int32Array, keep: Float64Array, rng: Rng): Int32Array {
  const out = new Int32Array(ids.length);
  let n = 0;
  for (const id of ids) if (rng() < keep[id]!) out[n++] = id;
  return out.slice(0, n);
}

/**
 * Draws ids with probability ∝ count^power (Walker's alias method: O(1) per
 * draw). power 0.75 is the noise distribution of negative sampling.
 */
export class UnigramSampler {
  /** The normalised distribution drawn from. */
  readonly probabilities: Float64Array;
  private readonly prob: Float64Array;
  private readonly alias: Int32Array;

  constructor(counts: ArrayLike<number>, power = 0.75) {
    const n = counts.length;
    if (n === 0) throw new Error("UnigramSampler: no counts");
    const w = Float64Array.from({ length: n }, (_, i) => Math.pow(Math.max(0, counts[i]!), power));
    const sum = w.reduce((a, b) => a + b, 0);
    if (!(sum > 0)) throw new Error("UnigramSampler: all counts are zero");
    this.probabilities = w.map((v) => v / sum);
    // Vose's alias table.
    this.prob = new Float64Array(n);
    this.alias = new Int32Array(n);
    const scaled = this.probabilities.map((p) => p * n);
    const small: number[] = [];
    const large: number[] = [];
    scaled.forEach((p, i) => (p < 1 ? small : large).push(i));
    while (small.length && large.length) {
      const s = small.pop()!;
      const l = large.pop()!;
      this.prob[s] = scaled[s]!;
      this.alias[s] = l;
      scaled[l] = scaled[l]! + scaled[s]! - 1;
      (scaled[l]! < 1 ? small : large).push(l);
    }
    for (const i of large) this.prob[i] = 1;
    for (const i of small) this.prob[i] = 1;
  }

  sample(rng: Rng): number {
    const i = Math.floor(rng() * this.prob.length);
    return rng() < this.prob[i]! ? i : this.alias[i]!;
  }
}

// ---------------------------------------------------------------------------
// Skip-gram with negative sampling

/**
 * All (center, context) pairs of `ids` within the window: for each position
 * i, every j ≠ i with |i − j| ≤ b, where b = `window`, or with dynamicWindow
 * a size drawn uniformly from 1..window for each center (word2vec's way of
 * weighting near words more). Pairs come out in text order.
 */
export function skipGramPairs(ids: Int32Array, window: number, rng: Rng, dynamicWindow = true): { center: Int32Array; context: Int32Array } {
  if (!Number.isInteger(window) || window < 1) throw new Error(`skipGramPairs: window must be a positive integer, got ${window}`);
  const n = ids.length;
  const center = new Int32Array(n * 2 * window);
  const context = new Int32Array(n * 2 * window);
  let m = 0;
  for (let i = 0; i < n; i++) {
    const b = dynamicWindow ? 1 + Math.floor(rng() * window) : window;
    for (let j = Math.max(0, i - b); j <= Math.min(n - 1, i + b); j++) {
      if (j === i) continue;
      center[m] = ids[i]!;
      context[m++] = ids[j]!;
    }
  }
  return { center: center.slice(0, m), context: context.slice(0, m) };
}

export interface SkipGramOptions {
  /** Pairs per batch: N of the model. */
  readonly batchSize: number;
  /** Maximum distance between center and context (word2vec's default 5). */
  readonly window: number;
  /** Noise words per pair: K of the model (5–20 for small data, Mikolov et al.). */
  readonly negatives: number;
  readonly seed: number;
  /** Epoch number: each epoch has its own subsample, window sizes, order and negatives. Default 0. */
  readonly epoch?: number;
  /** Draw each center's window size from 1..window (default true), or always use `window`. */
  readonly dynamicWindow?: boolean;
  /** Subsampling threshold t for frequent words (see keepProbabilities); 0 or absent: no subsampling. */
  readonly subsample?: number;
  /** Exponent of the noise distribution, counts^power (default 0.75). */
  readonly power?: number;
  /** Drop the last batch when it is smaller than batchSize (default true). */
  readonly dropLast?: boolean;
}

/**
 * One batch of skip-gram feeds, named and shaped as dsl-examples/skipgram.cnn's
 * inputs: `center: i32[N]`, `context: i32[N]`, `negatives: i32[N, K]`.
 */
export type SkipGramBatch = {
  readonly center: Tensor<Int32Array, [number]>;
  readonly context: Tensor<Int32Array, [number]>;
  readonly negatives: Tensor<Int32Array, [number, number]>;
};

/** One epoch of skip-gram batches: iterable, with its size known up front. */
export interface SkipGramEpoch extends Iterable<SkipGramBatch> {
  /** Pairs this epoch (after subsampling and windowing). */
  readonly pairs: number;
  /** Batches it yields. */
  readonly steps: number;
}

/**
 * One epoch of skip-gram-with-negative-sampling batches over the word ids
 * `ids` (from encodeWords): optionally subsample frequent words, form the
 * window pairs, shuffle them, and cut batches; each pair gets K negatives
 * drawn from counts^0.75 of `vocab`, redrawn when a draw equals that pair's
 * true context word (word2vec skips such a draw instead; a fixed K needs a
 * redraw). Negatives may repeat and may equal the center word.
 */
export function skipGramEpoch(ids: Int32Array, vocab: Vocab, opts: SkipGramOptions): SkipGramEpoch {
  const { batchSize, negatives: k } = opts;
  if (!Number.isInteger(batchSize) || batchSize < 1) throw new Error(`skipGramEpoch: batchSize must be a positive integer, got ${batchSize}`);
  if (!Number.isInteger(k) || k < 1) throw new Error(`skipGramEpoch: negatives must be a positive integer, got ${k}`);
  const epoch = opts.epoch ?? 0;
  const rng = mulberry32(deriveSeed(opts.seed, 0x7367, epoch));
  const words = opts.subsample ? subsample(ids, keepProbabilities(vocab, opts.subsample), rng) : ids;
  const pairs = skipGramPairs(words, opts.window, rng, opts.dynamicWindow ?? true);
  const order = permutation(pairs.center.length, rng);
  const sampler = new UnigramSampler(vocab.counts, opts.power ?? 0.75);
  if (sampler.probabilities.filter((p) => p > 0).length < 2) throw new Error("skipGramEpoch: the noise distribution needs at least two words");
  const m = pairs.center.length;
  const dropLast = opts.dropLast ?? true;
  const steps = dropLast ? Math.floor(m / batchSize) : Math.ceil(m / batchSize);
  const noiseSeed = deriveSeed(opts.seed, 0x6e65, epoch);
  return {
    pairs: m,
    steps,
    *[Symbol.iterator]() {
      const noise = mulberry32(noiseSeed);
      for (let step = 0; step < steps; step++) {
        const s = step * batchSize;
        const b = Math.min(batchSize, m - s);
        const center = new Int32Array(b);
        const context = new Int32Array(b);
        const neg = new Int32Array(b * k);
        for (let i = 0; i < b; i++) {
          const p = order[s + i]!;
          center[i] = pairs.center[p]!;
          const ctx = (context[i] = pairs.context[p]!);
          for (let j = 0; j < k; j++) {
            let w = sampler.sample(noise);
            while (w === ctx) w = sampler.sample(noise);
            neg[i * k + j] = w;
          }
        }
        yield { center: { data: center, shape: [b] }, context: { data: context, shape: [b] }, negatives: { data: neg, shape: [b, k] } };
      }
    },
  };
}

/**
 * The k rows of an embedding table [vocab, dim] most cosine-similar to row
 * `id` (itself excluded), best first: for inspecting trained word vectors
 * (e.g. in_embed.weight of skipgram.cnn).
 */
export function nearestNeighbours(table: Float32Array, dim: number, id: number, k: number): Array<{ id: number; cosine: number }> {
  const rows = table.length / dim;
  const norm = (r: number): number => {
    let s = 0;
    for (let d = 0; d < dim; d++) s += table[r * dim + d]! ** 2;
    return Math.sqrt(s);
  };
  const n0 = norm(id);
  const scored: Array<{ id: number; cosine: number }> = [];
  for (let r = 0; r < rows; r++) {
    if (r === id) continue;
    let dot = 0;
    for (let d = 0; d < dim; d++) dot += table[id * dim + d]! * table[r * dim + d]!;
    const nr = norm(r);
    scored.push({ id: r, cosine: n0 > 0 && nr > 0 ? dot / (n0 * nr) : 0 });
  }
  return scored.sort((a, b) => b.cosine - a.cosine || a.id - b.id).slice(0, k);
}

// ---------------------------------------------------------------------------
// Characters

/** A character vocabulary: ids 0..chars.length-1 (characters in code-point order, then the unknown symbol if any). */
export interface CharVocab {
  readonly chars: readonly string[];
  readonly index: ReadonlyMap<string, number>;
  /** Occurrences of each id's character in the text it was built from (the unknown id counts all characters left out). */
  readonly counts: Int32Array;
  /** The id that characters outside the vocabulary map to, or -1 when every character of the text has its own id. */
  readonly unknownId: number;
}

export interface CharVocabOptions {
  /**
   * At most this many ids (e.g. 65, char_lstm.cnn's vocab). When the text has
   * more distinct characters, the size − 1 most frequent keep their own id
   * and the rest share the unknown id, the last one. Default: no limit.
   */
  readonly size?: number;
  /** How the unknown id decodes (default U+FFFD). */
  readonly unknown?: string;
}

/** The characters (code points) of `text` as a vocabulary; see CharVocabOptions for a size limit. */
export function buildCharVocab(text: string, opts: CharVocabOptions = {}): CharVocab {
  const freq = new Map<string, number>();
  for (const ch of text) freq.set(ch, (freq.get(ch) ?? 0) + 1);
  const size = opts.size ?? Infinity;
  if (!(size >= 2)) throw new Error(`buildCharVocab: size must be at least 2, got ${size}`);
  let kept = [...freq.entries()];
  let unknownCount = -1;
  if (kept.length > size) {
    kept.sort((a, b) => b[1] - a[1] || a[0].codePointAt(0)! - b[0].codePointAt(0)!);
    unknownCount = kept.slice(size - 1).reduce((s, [, c]) => s + c, 0);
    kept = kept.slice(0, size - 1);
  }
  kept.sort((a, b) => a[0].codePointAt(0)! - b[0].codePointAt(0)!);
  const chars = kept.map(([c]) => c);
  const counts = kept.map(([, c]) => c);
  let unknownId = -1;
  if (unknownCount >= 0) {
    unknownId = chars.length;
    chars.push(opts.unknown ?? "\uFFFD");
    counts.push(unknownCount);
  }
  const index = new Map<string, number>(kept.map(([c], i) => [c, i]));
  return { chars, index, counts: Int32Array.from(counts), unknownId };
}

/** Character ids of `text` (one per code point); characters outside the vocabulary get unknownId (an error when it is -1). */
export function encodeChars(text: string, vocab: CharVocab): Int32Array {
  const out = new Int32Array(text.length);
  let n = 0;
  for (const ch of text) {
    const id = vocab.index.get(ch) ?? vocab.unknownId;
    if (id < 0) throw new Error(`encodeChars: character ${JSON.stringify(ch)} is not in the vocabulary`);
    out[n++] = id;
  }
  return out.slice(0, n);
}

/** The text of character ids. */
export function decodeChars(ids: ArrayLike<number>, vocab: CharVocab): string {
  let s = "";
  for (let i = 0; i < ids.length; i++) s += vocab.chars[ids[i]!] ?? "";
  return s;
}

/** A sequence split in two contiguous parts: the first (1 − heldOut) for training, the tail held out. */
export function splitSequence(ids: Int32Array, heldOut = 0.1): { train: Int32Array; val: Int32Array } {
  if (!(heldOut > 0 && heldOut < 1)) throw new Error(`splitSequence: heldOut must be in (0, 1), got ${heldOut}`);
  const cut = Math.round(ids.length * (1 - heldOut));
  return { train: ids.subarray(0, cut), val: ids.subarray(cut) };
}

export interface CharLmOptions {
  /** Sequences per batch: N of the model. */
  readonly batchSize: number;
  /** Characters per sequence: L of the model. */
  readonly seqLen: number;
  readonly seed: number;
  /** Epoch number: each epoch has its own window offset and order. Default 0. */
  readonly epoch?: number;
  /**
   * Evaluation mode: windows start at 0, L, 2L, ... and come in text order
   * (no random offset, no shuffle). Default false.
   */
  readonly ordered?: boolean;
  /** Drop the last batch when it is smaller than batchSize (default true). */
  readonly dropLast?: boolean;
}

/** One batch of char_lstm.cnn's feeds: `chars: i32[N, L]` and `next_chars: i32[N, L]`, next_chars[n, t] = chars[n, t + 1] within the text. */
export type CharLmBatch = {
  readonly chars: Tensor<Int32Array, [number, number]>;
  readonly next_chars: Tensor<Int32Array, [number, number]>;
};

/**
 * Windows per epoch: floor(n / L) − 1. Each window needs L + 1 characters;
 * with this count every offset in [0, L) fits, so every epoch has the same
 * number of windows.
 */
export function charLmWindowCount(n: number, seqLen: number): number {
  return Math.max(0, Math.floor(n / seqLen) - 1);
}

/** Batches per epoch of charLmBatches. */
export function charLmBatchCount(n: number, opts: Pick<CharLmOptions, "batchSize" | "seqLen" | "dropLast">): number {
  const w = charLmWindowCount(n, opts.seqLen);
  return (opts.dropLast ?? true) ? Math.floor(w / opts.batchSize) : Math.ceil(w / opts.batchSize);
}

/**
 * One epoch of teacher-forcing batches over the character ids `ids`: the text
 * is cut into non-overlapping windows of L + 1 characters starting at
 * offset + i·L (offset drawn from [0, L) per epoch, so window boundaries move
 * between epochs), the windows are shuffled, and each gives a row of `chars`
 * (its first L ids) and of `next_chars` (its last L ids).
 */
export function* charLmBatches(ids: Int32Array, opts: CharLmOptions): Generator<CharLmBatch> {
  const { batchSize: N, seqLen: L } = opts;
  if (!Number.isInteger(L) || L < 1) throw new Error(`charLmBatches: seqLen must be a positive integer, got ${L}`);
  if (!Number.isInteger(N) || N < 1) throw new Error(`charLmBatches: batchSize must be a positive integer, got ${N}`);
  const windows = charLmWindowCount(ids.length, L);
  const rng = mulberry32(deriveSeed(opts.seed, 0x636c, opts.epoch ?? 0));
  const offset = opts.ordered ? 0 : Math.floor(rng() * L);
  const order = opts.ordered ? Int32Array.from({ length: windows }, (_, i) => i) : shuffleInPlace(Int32Array.from({ length: windows }, (_, i) => i), rng);
  const steps = charLmBatchCount(ids.length, opts);
  for (let step = 0; step < steps; step++) {
    const b = Math.min(N, windows - step * N);
    const x = new Int32Array(b * L);
    const y = new Int32Array(b * L);
    for (let r = 0; r < b; r++) {
      const start = offset + order[step * N + r]! * L;
      x.set(ids.subarray(start, start + L), r * L);
      y.set(ids.subarray(start + 1, start + L + 1), r * L);
    }
    yield { chars: { data: x, shape: [b, L] }, next_chars: { data: y, shape: [b, L] } };
  }
}

// ---------------------------------------------------------------------------
// Entropy baselines (nats)

function symbols(seq: string | ArrayLike<number>): ArrayLike<string | number> {
  return typeof seq === "string" ? Array.from(seq) : seq;
}

/**
 * Empirical entropy −Σ p ln p of the symbols of `seq` (code points of a
 * string, or ids), in nats: the cross-entropy of the best model that ignores
 * context. A character LM whose held-out loss is below it has learnt
 * something beyond letter frequencies.
 */
export function unigramEntropy(seq: string | ArrayLike<number>): number {
  const s = symbols(seq);
  const freq = new Map<string | number, number>();
  for (let i = 0; i < s.length; i++) freq.set(s[i]!, (freq.get(s[i]!) ?? 0) + 1);
  let h = 0;
  for (const c of freq.values()) {
    const p = c / s.length;
    h -= p * Math.log(p);
  }
  return h;
}

/**
 * Empirical conditional entropy H(next | current) in nats over consecutive
 * symbol pairs of `seq`: the in-sample loss of the best bigram model (a
 * stronger baseline than unigramEntropy).
 */
export function bigramEntropy(seq: string | ArrayLike<number>): number {
  const s = symbols(seq);
  const pairs = new Map<string | number, Map<string | number, number>>();
  for (let i = 0; i + 1 < s.length; i++) {
    let row = pairs.get(s[i]!);
    if (!row) pairs.set(s[i]!, (row = new Map()));
    row.set(s[i + 1]!, (row.get(s[i + 1]!) ?? 0) + 1);
  }
  const total = Math.max(0, s.length - 1);
  let h = 0;
  for (const row of pairs.values()) {
    let rowTotal = 0;
    for (const c of row.values()) rowTotal += c;
    for (const c of row.values()) h -= (c / total) * Math.log(c / rowTotal);
  }
  return h;
}

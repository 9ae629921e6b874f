// The data side of training (train/): MNIST loading, splitting and batching;
// the shipped corpus; word vocabularies, subsampling, skip-gram batches with
// negative sampling; character LM batches and entropy baselines; the progress
// printer. Batches are also fed to the dsl-examples models they are made for
// (reference interpreter, tiny N), so names, dtypes and shapes are checked
// against the models themselves.

import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import { beforeAll, describe, expect, it } from "vitest";
import { compileSource } from "../../compiler/compile.ts";
import type { Graph } from "../../compiler/ir/graph.ts";
import { initialParams, interpret } from "../../compiler/reference/interpreter.ts";
import { RefTensor } from "../../compiler/reference/tensor.ts";
import { join } from "node:path";
import { batchCount, batches, denoisingBatches, loadMnist, mnistDigitsDir, MNIST_PIXELS, parseDataArray, type MnistSplit } from "../../train/mnist.ts";
import { Progress, type ProgressSink } from "../../train/progress.ts";
import { deriveSeed, mulberry32, permutation } from "../../train/rng.ts";
import {
  bigramEntropy,
  buildCharVocab,
  buildVocab,
  charLmBatchCount,
  charLmBatches,
  decodeChars,
  encodeChars,
  encodeWords,
  keepProbabilities,
  loadCorpus,
  nearestNeighbours,
  skipGramEpoch,
  skipGramPairs,
  splitSequence,
  subsample,
  tokenize,
  UnigramSampler,
  unigramEntropy,
} from "../../train/text.ts";

// ----- helpers ---------------------------------------------------------------

type Feed = { data: Float32Array | Int32Array; shape: readonly number[] };

function compileExample(file: string): Graph {
  const source = readFileSync(new URL(`../../dsl-examples/${file}`, import.meta.url), "utf8");
  const { graphs, diagnostics } = compileSource(source, file);
  expect(diagnostics).toEqual([]);
  return graphs[0]!;
}

/** The feeds are exactly the graph's inputs: same names, dtypes, ranks, static dims, and one size per symbol. */
function expectFeedsMatch(g: Graph, feeds: Record<string, Feed>): void {
  expect(Object.keys(feeds).sort()).toEqual([...g.inputs.keys()].sort());
  const symbols = new Map<string, number>();
  for (const [name, v] of g.inputs) {
    const f = feeds[name]!;
    expect(f.data instanceof Float32Array ? "f32" : "i32", name).toBe(v.type.dtype);
    expect(f.shape.length, name).toBe(v.type.shape.length);
    expect(f.data.length, name).toBe(f.shape.reduce((a, b) => a * b, 1));
    v.type.shape.forEach((d, i) => {
      const c = d.constValue();
      if (c !== undefined) expect(f.shape[i], `${name} dim ${i}`).toBe(c);
      else {
        const key = d.toString();
        if (symbols.has(key)) expect(f.shape[i], `${name} dim ${i} (${key})`).toBe(symbols.get(key));
        else symbols.set(key, f.shape[i]!);
      }
    });
  }
}

function toRef(feeds: Record<string, Feed>): Record<string, RefTensor> {
  return Object.fromEntries(
    Object.entries(feeds).map(([k, f]) => [k, RefTensor.from(f.data, f.shape, f.data instanceof Float32Array ? "f32" : "i32")]),
  );
}

function first<T>(it: Iterable<T>): T {
  for (const v of it) return v;
  throw new Error("empty");
}

/** Same type and same bytes (vitest's toEqual is slow on arrays of millions of elements). */
function sameArray(a: Float32Array | Int32Array, b: Float32Array | Int32Array): boolean {
  return a.constructor === b.constructor && a.length === b.length && Buffer.compare(new Uint8Array(a.buffer, a.byteOffset, a.byteLength), new Uint8Array(b.buffer, b.byteOffset, b.byteLength)) === 0;
}

function imageHash(images: Float32Array, i: number): string {
  return createHash("sha1").update(new Uint8Array(images.buffer, images.byteOffset + i * MNIST_PIXELS * 4, MNIST_PIXELS * 4)).digest("hex");
}

// ----- rng ---------------------------------------------------------------------

describe("rng", () => {
  it("mulberry32 is deterministic, uniform-looking and seed-dependent", () => {
    const a = mulberry32(42);
    const b = mulberry32(42);
    const xs = Array.from({ length: 10_000 }, () => a());
    expect(xs.slice(0, 5)).toEqual(Array.from({ length: 5 }, () => b()));
    expect(Math.min(...xs)).toBeGreaterThanOrEqual(0);
    expect(Math.max(...xs)).toBeLessThan(1);
    expect(xs.reduce((s, x) => s + x, 0) / xs.length).toBeCloseTo(0.5, 1);
    expect(mulberry32(43)()).not.toBe(mulberry32(42)());
    expect(deriveSeed(1, 2)).not.toBe(deriveSeed(1, 3));
    expect(deriveSeed(1, 2)).toBe(deriveSeed(1, 2));
  });

  it("permutation is a permutation", () => {
    const p = permutation(1000, mulberry32(7));
    expect([...p].sort((x, y) => x - y)).toEqual(Array.from({ length: 1000 }, (_, i) => i));
    expect([...p]).not.toEqual(Array.from({ length: 1000 }, (_, i) => i));
  });
});

// ----- MNIST -------------------------------------------------------------------

describe("MNIST", () => {
  let split: MnistSplit;
  let loadCpuMs = 0;
  beforeAll(() => {
    // CPU time, not wall time: the first load (read + parse + split) must cost
    // under 2 s even when the machine is busy with other work.
    const c0 = process.cpuUsage();
    split = loadMnist();
    const c = process.cpuUsage(c0);
    loadCpuMs = (c.user + c.system) / 1000;
  });

  it("loads the package's 10,000 digits in under 2 s, split 8,000 / 2,000 per class", () => {
    expect(loadCpuMs).toBeLessThan(2000);
    expect(split.train.count).toBe(8000);
    expect(split.test.count).toBe(2000);
    for (const s of [split.train, split.test]) {
      expect(s.images.length).toBe(s.count * 784);
      expect(s.labels.length).toBe(s.count);
      expect(s.sourceIndex.length).toBe(s.count);
    }
  });

  it("parses the package's JSON exactly as JSON.parse does", () => {
    const bytes = readFileSync(join(mnistDigitsDir(), "5.json"));
    const fast = parseDataArray(bytes)!;
    const slow = Float32Array.from((JSON.parse(bytes.toString("utf8")) as { data: number[] }).data);
    expect(fast.length).toBe(863 * 784);
    expect(sameArray(fast, slow)).toBe(true);
    const enc = (s: string): Uint8Array => new TextEncoder().encode(s);
    expect(parseDataArray(enc('{ "data": [0,1,0.5,0.992] }'))).toEqual(Float32Array.from([0, 1, 0.5, 0.992]));
    // Anything but plain unsigned decimals is left to JSON.parse.
    for (const bad of ['{"data":[1e-3]}', '{"data":[-1]}', '{"data":[]}', '{"data":[1, 2]}', '{"data":[1,'])
      expect(parseDataArray(enc(bad))).toBeUndefined();
  });

  it("has pixels in [0, 1], ink in every image, and MNIST's mean intensity", () => {
    for (const s of [split.train, split.test]) {
      let min = Infinity;
      let max = -Infinity;
      let sum = 0;
      for (const v of s.images) {
        if (v < min) min = v;
        if (v > max) max = v;
        sum += v;
      }
      expect(min).toBe(0);
      expect(max).toBeLessThanOrEqual(1);
      expect(max).toBeGreaterThan(0.99);
      expect(sum / s.images.length).toBeGreaterThan(0.1); // MNIST's mean pixel is about 0.13
      expect(sum / s.images.length).toBeLessThan(0.16);
      for (let i = 0; i < s.count; i += 97) {
        const img = s.images.subarray(i * 784, (i + 1) * 784);
        expect(img.filter((v) => v > 0.5).length).toBeGreaterThan(20);
        expect(img[0]).toBe(0); // corners are background
      }
    }
  });

  it("has every digit at roughly a tenth in both sets, stratified", () => {
    for (const s of [split.train, split.test]) {
      const hist = new Array<number>(10).fill(0);
      for (const l of s.labels) hist[l]!++;
      expect(hist.reduce((a, b) => a + b, 0)).toBe(s.count);
      for (const h of hist) {
        expect(h / s.count).toBeGreaterThan(0.08);
        expect(h / s.count).toBeLessThan(0.12);
      }
    }
    // Stratified: each class's train share is 0.8 up to rounding.
    const tr = new Array<number>(10).fill(0);
    const te = new Array<number>(10).fill(0);
    for (const l of split.train.labels) tr[l]!++;
    for (const l of split.test.labels) te[l]!++;
    for (let d = 0; d < 10; d++) expect(Math.abs(tr[d]! - 0.8 * (tr[d]! + te[d]!))).toBeLessThanOrEqual(0.5);
    // Classes are interleaved, not in blocks.
    expect(new Set(split.train.labels.subarray(0, 50)).size).toBeGreaterThan(5);
  });

  it("holds the test set out: disjoint by index and by image content, together the whole package", () => {
    const trainIdx = new Set(split.train.sourceIndex);
    expect(trainIdx.size).toBe(8000);
    expect(split.test.sourceIndex.filter((i) => trainIdx.has(i)).length).toBe(0);
    expect(new Set([...split.train.sourceIndex, ...split.test.sourceIndex]).size).toBe(10_000);
    const trainHashes = new Set(Array.from({ length: split.train.count }, (_, i) => imageHash(split.train.images, i)));
    expect(trainHashes.size).toBe(8000);
    let shared = 0;
    for (let i = 0; i < split.test.count; i++) if (trainHashes.has(imageHash(split.test.images, i))) shared++;
    expect(shared).toBe(0);
  });

  it("is deterministic in its seed and honours trainFraction", () => {
    const again = loadMnist();
    expect(sameArray(again.train.sourceIndex, split.train.sourceIndex)).toBe(true);
    expect(sameArray(again.test.images, split.test.images)).toBe(true);
    const other = loadMnist({ seed: 1 });
    expect(sameArray(other.train.sourceIndex, split.train.sourceIndex)).toBe(false);
    const half = loadMnist({ trainFraction: 0.5, seed: 3 });
    expect(Math.abs(half.train.count - 5000)).toBeLessThanOrEqual(5);
    expect(half.train.count + half.test.count).toBe(10_000);
    expect(() => loadMnist({ trainFraction: 1 })).toThrow(/trainFraction/);
  });

  it("batches an epoch in a seeded order, [B, 1, 28, 28] and [B], dropping the partial batch by default", () => {
    const set = split.test; // 2000 images
    const all = [...batches(set, 64, 5)];
    expect(all).toHaveLength(batchCount(2000, 64)); // 31, the last 16 images dropped
    expect(all).toHaveLength(31);
    for (const b of all) {
      expect(b.x.shape).toEqual([64, 1, 28, 28]);
      expect(b.x.data.length).toBe(64 * 784);
      expect(b.labels.shape).toEqual([64]);
    }
    // Each batch's label matches its image: find image 0 of batch 3 in the set.
    const b3 = all[3]!;
    const h = createHash("sha1").update(new Uint8Array(b3.x.data.buffer, 0, 784 * 4)).digest("hex");
    const at = Array.from({ length: set.count }, (_, i) => imageHash(set.images, i)).indexOf(h);
    expect(at).toBeGreaterThanOrEqual(0);
    expect(b3.labels.data[0]).toBe(set.labels[at]);

    const kept = [...batches(set, 64, 5, { dropLast: false })];
    expect(kept).toHaveLength(32);
    expect(kept[31]!.x.shape).toEqual([16, 1, 28, 28]);
    const seen = new Set<string>();
    for (const b of kept) for (let i = 0; i < b.labels.data.length; i++) seen.add(imageHash(b.x.data, i));
    expect(seen.size).toBe(2000); // every image exactly once

    // Same (seed, epoch): same batches; another epoch or seed: another order.
    expect(first(batches(set, 64, 5)).labels.data).toEqual(all[0]!.labels.data);
    expect(sameArray(first(batches(set, 64, 5, { epoch: 1 })).x.data, all[0]!.x.data)).toBe(false);
    expect(sameArray(first(batches(set, 64, 6)).x.data, all[0]!.x.data)).toBe(false);
    // ordered: the stored order.
    expect(first(batches(set, 8, 0, { ordered: true })).labels.data).toEqual(set.labels.subarray(0, 8));
  });

  it("feeds LeNet-5 (x f32[N, 1, 28, 28], labels i32[N])", () => {
    const g = compileExample("lenet5.cnn");
    const b = first(batches(split.train, 2, 0));
    expectFeedsMatch(g, b);
    const { outputs } = interpret(g, toRef(b), initialParams(g, 0));
    const loss = Object.values(outputs).find((t) => t.shape.length === 0)!;
    expect(Number.isFinite(loss.data[0])).toBe(true);
  });

  it("makes denoising batches: flattened [B, 784], masking noise on the clean images", () => {
    const set = split.test;
    const den = [...denoisingBatches(set, 100, 9)];
    const plain = [...batches(set, 100, 9)];
    expect(den).toHaveLength(20);
    let ink = 0;
    let masked = 0;
    for (let k = 0; k < den.length; k++) {
      const { noisy, clean } = den[k]!;
      expect(noisy.shape).toEqual([100, 784]);
      expect(clean.shape).toEqual([100, 784]);
      expect(sameArray(clean.data, plain[k]!.x.data)).toBe(true); // same order as batches()
      let bad = 0;
      for (let i = 0; i < clean.data.length; i++) {
        if (!(noisy.data[i] === 0 || noisy.data[i] === clean.data[i])) bad++;
        if (clean.data[i]! > 0) {
          ink++;
          if (noisy.data[i] === 0) masked++;
        }
      }
      expect(bad).toBe(0);
    }
    expect(masked / ink).toBeGreaterThan(0.23);
    expect(masked / ink).toBeLessThan(0.27);
    const scaled = first(denoisingBatches(set, 10, 9, { maskFraction: 0.5, rescale: true }));
    let off = 0;
    for (let i = 0; i < scaled.clean.data.length; i++) {
      const n = scaled.noisy.data[i]!;
      if (n !== 0 && Math.abs(n - 2 * scaled.clean.data[i]!) > 1e-6) off++;
    }
    expect(off).toBe(0);
    // Deterministic per (seed, epoch); another epoch masks other pixels.
    expect(sameArray(first(denoisingBatches(set, 100, 9)).noisy.data, den[0]!.noisy.data)).toBe(true);
    expect(sameArray(first(denoisingBatches(set, 100, 9, { epoch: 1 })).noisy.data, den[0]!.noisy.data)).toBe(false);
  });

  it("feeds DenoisingAE (x f32[N, 784]) with the clean images", () => {
    const g = compileExample("denoising_ae.cnn");
    const b = first(denoisingBatches(split.train, 2, 0));
    expectFeedsMatch(g, { x: b.clean });
    expectFeedsMatch(g, { x: b.noisy });
    const { outputs } = interpret(g, toRef({ x: b.noisy }), initialParams(g, 0));
    expect(outputs.recon!.shape).toEqual([2, 784]);
    expect(Number.isFinite(outputs.bce!.data[0])).toBe(true);
  });
});

// ----- corpus and words --------------------------------------------------------

describe("corpus", () => {
  it("ships Persuasion as documented in train/data/README.md", () => {
    const text = loadCorpus();
    expect(text.length).toBe(466_854);
    expect(createHash("sha256").update(text).digest("hex")).toBe("8061549557aebd2fd6e353d18d9197cb707029112bd52d4d8b174583a925848a");
    expect(text.startsWith("Persuasion\n")).toBe(true);
    expect(text.trimEnd().endsWith("Finis")).toBe(true);
    expect(/[^\x00-\x7f]/.test(text)).toBe(false);
    expect(/gutenberg/i.test(text)).toBe(false); // no licence boilerplate
    const readme = readFileSync(new URL("../../train/data/README.md", import.meta.url), "utf8");
    expect(readme).toContain("8061549557aebd2fd6e353d18d9197cb707029112bd52d4d8b174583a925848a");
  });
});

describe("words", () => {
  const tokens = tokenize(loadCorpus());

  it("tokenizes to lowercase letters with inner apostrophes", () => {
    expect(tokenize(`"Sir Walter's vanity--it was TOO much!" 1814, don't 'quoted'`)).toEqual([
      "sir", "walter's", "vanity", "it", "was", "too", "much", "don't", "quoted",
    ]);
    expect(tokens.length).toBeGreaterThan(80_000);
    expect(tokens.length).toBeLessThan(90_000);
    expect(tokens.filter((t) => !/^[a-z]+('[a-z]+)*$/.test(t))).toEqual([]);
  });

  it("builds a top-V vocabulary sorted by count, ties alphabetical", () => {
    const vocab = buildVocab(tokens, 5000);
    expect(vocab.words).toHaveLength(5000);
    expect(vocab.unknownId).toBe(-1);
    expect(vocab.tokens).toBe(tokens.length);
    expect(vocab.words.slice(0, 3)).toEqual(expect.arrayContaining(["the", "to"]));
    let unordered = 0;
    for (let i = 1; i < 5000; i++) {
      if (vocab.counts[i]! > vocab.counts[i - 1]!) unordered++;
      if (vocab.counts[i] === vocab.counts[i - 1] && !(vocab.words[i]! > vocab.words[i - 1]!)) unordered++;
    }
    expect(unordered).toBe(0);
    expect(vocab.counts[vocab.index.get("anne")!]).toBe(tokens.filter((t) => t === "anne").length);
    const ids = encodeWords(tokens, vocab);
    expect(ids.length).toBe(vocab.counts.reduce((a, b) => a + b, 0)); // out-of-vocabulary words dropped
    expect(ids.reduce((m, v) => Math.max(m, v), 0)).toBe(4999);

    const withUnk = buildVocab(tokens, 5000, { unknown: "<unk>" });
    expect(withUnk.unknownId).toBe(4999);
    expect(withUnk.words[4999]).toBe("<unk>");
    expect(withUnk.counts.reduce((a, b) => a + b, 0)).toBe(tokens.length);
    expect(encodeWords(["anne", "zzzz"], withUnk)).toEqual(Int32Array.from([withUnk.index.get("anne")!, 4999]));
    expect(buildVocab(["a", "b", "b"], 10).words).toEqual(["b", "a"]);
    expect(buildVocab(tokens, 100_000, { minCount: 5 }).counts.every((c) => c >= 5)).toBe(true);
  });

  it("subsamples frequent words with word2vec's keep probability", () => {
    const vocab = buildVocab(tokens, 5000);
    const keep = keepProbabilities(vocab, 1e-3);
    const total = vocab.counts.reduce((a, b) => a + b, 0);
    const f0 = vocab.counts[0]! / total;
    expect(keep[0]).toBeCloseTo((Math.sqrt(f0 / 1e-3) + 1) * (1e-3 / f0), 12);
    expect(keep[0]).toBeLessThan(0.3);
    expect(keep[4999]).toBe(1);
    const ids = encodeWords(tokens, vocab);
    const kept = subsample(ids, keep, mulberry32(1));
    const count0 = kept.filter((i) => i === 0).length;
    expect(count0 / vocab.counts[0]!).toBeCloseTo(keep[0]!, 1);
    expect(kept.filter((i) => i === 4999).length).toBe(vocab.counts[4999]);
  });

  it("draws negatives ∝ count^0.75 (alias method)", () => {
    const s = new UnigramSampler([1, 16, 81, 0]);
    expect([...s.probabilities]).toEqual([1 / 36, 8 / 36, 27 / 36, 0].map((p) => expect.closeTo(p, 12)));
    const rng = mulberry32(3);
    const hist = [0, 0, 0, 0];
    const n = 200_000;
    for (let i = 0; i < n; i++) hist[s.sample(rng)]!++;
    expect(hist[3]).toBe(0);
    hist.slice(0, 3).forEach((h, i) => expect(h / n).toBeCloseTo(s.probabilities[i]!, 2));
  });

  it("forms window pairs", () => {
    const ids = Int32Array.from([0, 1, 2, 3, 4, 5]);
    const fixed = skipGramPairs(ids, 2, mulberry32(0), false);
    expect(fixed.center.length).toBe(2 + 3 + 4 + 4 + 3 + 2);
    expect([...fixed.center.subarray(0, 5)]).toEqual([0, 0, 1, 1, 1]);
    expect([...fixed.context.subarray(0, 5)]).toEqual([1, 2, 0, 2, 3]);
    const dyn = skipGramPairs(Int32Array.from({ length: 1000 }, (_, i) => i), 5, mulberry32(0));
    let outside = 0;
    for (let i = 0; i < dyn.center.length; i++) {
      const d = Math.abs(dyn.center[i]! - dyn.context[i]!);
      if (d < 1 || d > 5) outside++;
    }
    expect(outside).toBe(0);
    // Dynamic windows average (1 + 5)/2 = 3 on each side: about 6 pairs per word.
    expect(dyn.center.length / 1000).toBeGreaterThan(5.5);
    expect(dyn.center.length / 1000).toBeLessThan(6.5);
  });

  it("makes skip-gram batches: center [B], context [B], negatives [B, K], seeded per epoch", () => {
    const vocab = buildVocab(tokens, 5000);
    const ids = encodeWords(tokens, vocab);
    const opts = { batchSize: 256, window: 5, negatives: 5, seed: 1, subsample: 1e-3 };
    const epoch = skipGramEpoch(ids, vocab, opts);
    expect(epoch.steps).toBe(Math.floor(epoch.pairs / 256));
    expect(epoch.pairs).toBeGreaterThan(100_000);
    let steps = 0;
    const negHist = new Float64Array(5000);
    let negTotal = 0;
    let badShape = 0;
    let negIsContext = 0;
    let outOfRange = 0;
    for (const b of epoch) {
      steps++;
      if (b.center.shape.join() !== "256" || b.context.shape.join() !== "256" || b.negatives.shape.join() !== "256,5") badShape++;
      if (b.center.data.length !== 256 || b.context.data.length !== 256 || b.negatives.data.length !== 256 * 5) badShape++;
      for (let i = 0; i < 256; i++) {
        for (let k = 0; k < 5; k++) {
          const w = b.negatives.data[i * 5 + k]!;
          if (w === b.context.data[i]) negIsContext++;
          negHist[w]!++;
          negTotal++;
        }
      }
      for (const a of [b.center.data, b.context.data, b.negatives.data]) for (const v of a) if (!(v >= 0 && v < 5000)) outOfRange++;
    }
    expect(steps).toBe(epoch.steps);
    expect([badShape, negIsContext, outOfRange]).toEqual([0, 0, 0]);
    // Noise distribution: the most frequent word's share is near its count^0.75 probability.
    const p = new UnigramSampler(vocab.counts).probabilities;
    expect(negHist[0]! / negTotal).toBeCloseTo(p[0]!, 2);
    // Deterministic per (seed, epoch); other epochs differ.
    const again = first(skipGramEpoch(ids, vocab, opts));
    const b0 = first(epoch);
    expect(again.center.data).toEqual(b0.center.data);
    expect(again.negatives.data).toEqual(b0.negatives.data);
    expect(first(skipGramEpoch(ids, vocab, { ...opts, epoch: 1 })).center.data).not.toEqual(b0.center.data);
    // Without subsampling or dynamic windows the pair count is exact.
    const full = skipGramEpoch(ids, vocab, { batchSize: 1000, window: 2, negatives: 3, seed: 0, dynamicWindow: false, dropLast: false });
    expect(full.pairs).toBe(4 * ids.length - 6);
    expect(full.steps).toBe(Math.ceil(full.pairs / 1000));
  });

  it("feeds SkipGram (center i32[N], context i32[N], negatives i32[N, K])", () => {
    const g = compileExample("skipgram.cnn");
    const vocab = buildVocab(tokens, 5000);
    const b = first(skipGramEpoch(encodeWords(tokens, vocab), vocab, { batchSize: 2, window: 5, negatives: 4, seed: 0 }));
    expectFeedsMatch(g, b);
    const { outputs } = interpret(g, toRef(b), initialParams(g, 0));
    expect(outputs.similarity!.shape).toEqual([2]);
    expect(Number.isFinite(outputs.sgns!.data[0])).toBe(true);
  });

  it("finds nearest neighbours by cosine", () => {
    const table = Float32Array.from([1, 0, 0.9, 0.1, -1, 0, 0, 1]);
    expect(nearestNeighbours(table, 2, 0, 2).map((r) => r.id)).toEqual([1, 3]);
    expect(nearestNeighbours(table, 2, 0, 3)[2]).toEqual({ id: 2, cosine: -1 });
  });
});

// ----- characters ---------------------------------------------------------------

describe("characters", () => {
  const text = loadCorpus();

  it("builds a character vocabulary, capped at the model's 65 with an unknown id", () => {
    const full = buildCharVocab(text);
    expect(full.chars).toHaveLength(75);
    expect(full.unknownId).toBe(-1);
    const ids = encodeChars(text, full);
    expect(decodeChars(ids, full)).toBe(text);
    expect([...full.chars]).toEqual([...full.chars].sort());

    const v65 = buildCharVocab(text, { size: 65 });
    expect(v65.chars).toHaveLength(65);
    expect(v65.unknownId).toBe(64);
    expect(v65.counts.reduce((a, b) => a + b, 0)).toBe(text.length);
    const ids65 = encodeChars(text, v65);
    expect(ids65.reduce((m, v) => Math.max(m, v), 0)).toBe(64);
    expect(ids65.filter((i) => i === 64).length).toBe(v65.counts[64]);
    expect(v65.counts[64]).toBeLessThan(200); // only rare characters (digits, 'X', ...) share it
    for (const c of "abcxyzABW .,;'\"\n") expect(v65.index.has(c)).toBe(true);
    expect(() => encodeChars("é", full)).toThrow(/not in the vocabulary/);
  });

  it("makes teacher-forcing batches chars [N, L] / next_chars [N, L] from windows of the text", () => {
    const vocab = buildCharVocab(text, { size: 65 });
    const ids = encodeChars(text, vocab);
    const { train, val } = splitSequence(ids, 0.1);
    expect(train.length + val.length).toBe(ids.length);
    expect(val[0]).toBe(ids[train.length]);
    const opts = { batchSize: 32, seqLen: 64, seed: 2 };
    const all = [...charLmBatches(train, opts)];
    expect(all).toHaveLength(charLmBatchCount(train.length, opts));
    expect(all).toHaveLength(Math.floor((Math.floor(train.length / 64) - 1) / 32));
    const trainText = text.slice(0, train.length);
    for (const b of all.slice(0, 3)) {
      expect(b.chars.shape).toEqual([32, 64]);
      expect(b.next_chars.shape).toEqual([32, 64]);
      for (let n = 0; n < 32; n++) {
        const x = b.chars.data.subarray(n * 64, (n + 1) * 64);
        const y = b.next_chars.data.subarray(n * 64, (n + 1) * 64);
        expect([...y.subarray(0, 63)]).toEqual([...x.subarray(1)]);
        const row = decodeChars(x, vocab) + decodeChars(y.subarray(63), vocab);
        if (!row.includes("\uFFFD")) expect(trainText.includes(row)).toBe(true);
      }
    }
    expect(first(charLmBatches(train, opts)).chars.data).toEqual(all[0]!.chars.data);
    expect(first(charLmBatches(train, { ...opts, epoch: 1 })).chars.data).not.toEqual(all[0]!.chars.data);
    const ordered = first(charLmBatches(val, { ...opts, ordered: true }));
    expect([...ordered.chars.data.subarray(64, 128)]).toEqual([...val.subarray(64, 128)]);
    expect([...charLmBatches(val, { ...opts, dropLast: false })].reduce((s, b) => s + b.chars.shape[0], 0)).toBe(Math.floor(val.length / 64) - 1);
  });

  it("feeds CharLSTM (chars i32[N, L], next_chars i32[N, L])", () => {
    const g = compileExample("char_lstm.cnn");
    const vocab = buildCharVocab(text, { size: 65 });
    const b = first(charLmBatches(encodeChars(text.slice(0, 2000), vocab), { batchSize: 2, seqLen: 6, seed: 0 }));
    expectFeedsMatch(g, b);
    const { outputs } = interpret(g, toRef(b), initialParams(g, 0));
    // An untrained model is close to uniform over 65 classes.
    expect(outputs.xent!.data[0]).toBeGreaterThan(3.5);
    expect(outputs.xent!.data[0]).toBeLessThan(5);
  });

  it("computes entropies in nats", () => {
    expect(unigramEntropy("aabb")).toBeCloseTo(Math.log(2), 12);
    expect(unigramEntropy("abcd")).toBeCloseTo(Math.log(4), 12);
    expect(unigramEntropy([7, 7, 7])).toBe(0);
    expect(bigramEntropy("abababab")).toBeCloseTo(0, 12);
    expect(bigramEntropy("aab")).toBeCloseTo(Math.log(2) , 12); // after 'a': 'a' or 'b'
    const vocab = buildCharVocab(text);
    const h1 = unigramEntropy(text);
    expect(unigramEntropy(encodeChars(text, vocab))).toBeCloseTo(h1, 12);
    // English text: about 4.1 bits (2.85 nats) per character with case and punctuation.
    expect(h1).toBeGreaterThan(2.8);
    expect(h1).toBeLessThan(3.3);
    const h2 = bigramEntropy(text);
    expect(h2).toBeLessThan(h1 - 0.5);
  });
});

// ----- progress ---------------------------------------------------------------

describe("progress", () => {
  function sink(isTTY: boolean): ProgressSink & { out: string } {
    const s = { out: "", isTTY, write(t: string) { s.out += t; return true; } };
    return s;
  }

  it("writes one summary line per epoch when not a terminal", () => {
    const stream = sink(false);
    let t = 0;
    const p = new Progress({ epochs: 2, label: "lenet5", stream, now: () => t });
    p.startEpoch(1, 3);
    for (const [loss, n] of [[2, 10], [1, 10], [0.5, 20]] as const) {
      t += 500;
      p.step(loss, n);
    }
    expect(stream.out).toBe("");
    expect(p.meanLoss).toBeCloseTo((20 + 10 + 10) / 40, 12);
    const s = p.endEpoch({ test_acc: 0.9765 });
    expect(s).toMatchObject({ epoch: 1, steps: 3, plannedSteps: 3, examples: 40, loss: 1, seconds: 1.5 });
    expect(s.examplesPerSecond).toBeCloseTo(40 / 1.5, 9);
    expect(stream.out).toBe("lenet5 epoch 1/2  step 3/3  loss 1  27 ex/s  1.5s  test_acc=0.9765\n");
    p.startEpoch(2, 1);
    t += 2000;
    p.step(0.123456, 1000);
    p.endEpoch();
    expect(stream.out.split("\n")).toHaveLength(3);
    expect(stream.out.split("\n")[1]).toBe("lenet5 epoch 2/2  step 1/1  loss 0.1235  500 ex/s  2.0s");
    expect(p.history.map((h) => h.epoch)).toEqual([1, 2]);
    p.log("done");
    expect(stream.out.endsWith("lenet5 done\n")).toBe(true);
  });

  it("redraws in place on a terminal, throttled", () => {
    const stream = sink(true);
    let t = 0;
    const p = new Progress({ stream, now: () => t, minIntervalMs: 100 });
    p.startEpoch(1, 10);
    for (let i = 0; i < 10; i++) {
      t += 30;
      p.step(1, 1);
    }
    const redraws = stream.out.split("\r").length - 1;
    expect(redraws).toBeGreaterThanOrEqual(3);
    expect(redraws).toBeLessThanOrEqual(5);
    p.endEpoch();
    expect(stream.out.endsWith("\x1b[K\n")).toBe(true);
    expect(stream.out).toContain("\repoch 1  step 10/10  loss 1");
    expect(() => p.step(1, 1)).toThrow(/before startEpoch/);
  });
});

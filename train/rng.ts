// Small seeded pseudo-random generator for the data pipeline: every shuffle,
// split, window size and noise draw in train/ comes from here, so a seed fixes
// every batch exactly (on any machine: only 32-bit integer arithmetic).
//
// mulberry32 (Tommy Ettinger's 32-bit generator, as in runtime/init.ts): one
// uint32 of state, period 2^32, good enough statistically for shuffling and
// sampling; not cryptographic.

/** A stream of uniform numbers in [0, 1). */
export type Rng = () => number;

/** mulberry32 seeded with `seed` (any number; only its low 32 bits count). */
export function mulberry32(seed: number): Rng {
  let state = seed >>> 0;
  return () => {
    let t = (state = (state + 0x6d2b79f5) >>> 0);
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/**
 * A seed derived from `seed` and some integers (e.g. an epoch number, a
 * stream tag), so that independent streams come from one user seed:
 * `mulberry32(deriveSeed(seed, epoch))`. FNV-1a over the 32-bit words, then a
 * murmur3 finaliser.
 */
export function deriveSeed(seed: number, ...salt: number[]): number {
  let h = 0x811c9dc5;
  for (const w of [seed, ...salt]) {
    const v = w >>> 0;
    for (let b = 0; b < 32; b += 8) {
      h ^= (v >>> b) & 0xff;
      h = Math.imul(h, 0x01000193);
    }
  }
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

/** A uniform integer in [0, n). */
export function randInt(rng: Rng, n: number): number {
  return Math.floor(rng() * n);
}

/** Fisher–Yates shuffle in place; returns `a`. */
export function shuffleInPlace<T extends { length: number; [i: number]: unknown }>(a: T, rng: Rng): T {
  for (let i = a.length - 1; i > 0; i--) {
    const j = Math.floor(rng() * (i + 1));
    const t = a[i];
    a[i] = a[j];
    a[j] = t;
  }
  return a;
}

/** A uniformly random permutation of 0..n-1. */
export function permutation(n: number, rng: Rng): Int32Array {
  const p = new Int32Array(n);
  for (let i = 0; i < n; i++) p[i] = i;
  return shuffleInPlace(p, rng);
}

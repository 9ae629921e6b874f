// The reference interpreter's seeded generator for dropout and noise. It is
// the same mulberry32 stream as runtime/init.ts (and the generated kernels'
// T.rng), so every target draws identical masks for the same seed.

import { initStream } from "../../runtime/init.ts";

export class Rng {
  constructor(private readonly draw: () => number) {}

  /** Uniform in [0, 1). */
  next(): number {
    return this.draw();
  }

  uniform(lo: number, hi: number): number {
    return lo + (hi - lo) * this.next();
  }

  /** Standard normal by Box–Muller (one value per call; simple and deterministic). */
  normal(mean = 0, std = 1): number {
    const u1 = 1 - this.next();
    const u2 = this.next();
    return mean + std * Math.sqrt(-2 * Math.log(u1)) * Math.cos(2 * Math.PI * u2);
  }
}

/** A generator for one named stream under a seed: independent of creation order. */
export function streamRng(seed: number, name: string): Rng {
  return new Rng(initStream(seed, name));
}

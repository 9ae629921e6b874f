// The run context generated JS kernels receive as `T`: training flag, seeded
// random streams (identical to the reference interpreter's, draw for draw) and
// the runtime error. Kept free of Node APIs: it is inlined into modules that
// run in browsers too.

import { initStream } from "./init.ts";

export class CnncRunError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "CnncRunError";
  }
}

export interface RunContext {
  readonly training: boolean;
  /** A uniform [0, 1) stream for a node, keyed `${label}#${nodeId}`. */
  rng(key: string): () => number;
  /** One standard normal draw from a stream (Box–Muller, as the reference). */
  normal(next: () => number): number;
  fail(message: string): never;
}

export function makeRunContext(training: boolean, seed: number): RunContext {
  return {
    training,
    rng: (key) => initStream(seed, key),
    normal: (next) => {
      const u1 = 1 - next();
      const u2 = next();
      return Math.sqrt(-2 * Math.log(u1)) * Math.cos(2 * Math.PI * u2);
    },
    fail: (message) => {
      throw new CnncRunError(message);
    },
  };
}

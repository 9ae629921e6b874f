// Deterministic parameter initialisation, shared by every target so that a
// model created with the same seed starts from the same numbers everywhere.
// Each parameter draws from its own stream, derived from the seed and its
// name, so adding a layer does not change the others' values. Values are
// rounded to float32 (what the device stores) on every target.

export type InitSpec =
  | { readonly kind: "zeros" }
  | { readonly kind: "ones" }
  | { readonly kind: "uniform"; readonly lo: number; readonly hi: number }
  | { readonly kind: "normal"; readonly mean: number; readonly std: number };

/** mulberry32 over a seed derived from (seed, name). */
export function initStream(seed: number, name: string): () => number {
  let h = 0x811c9dc5;
  for (let i = 0; i < name.length; i++) {
    h ^= name.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  let state = (h ^ Math.imul(seed >>> 0, 0x9e3779b1)) >>> 0;
  return () => {
    let t = (state = (state + 0x6d2b79f5) >>> 0);
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export function initParam(name: string, size: number, init: InitSpec, seed: number): Float32Array {
  const out = new Float32Array(size);
  switch (init.kind) {
    case "zeros":
      return out;
    case "ones":
      return out.fill(1);
    case "uniform": {
      const next = initStream(seed, name);
      for (let i = 0; i < size; i++) out[i] = init.lo + (init.hi - init.lo) * next();
      return out;
    }
    case "normal": {
      const next = initStream(seed, name);
      for (let i = 0; i < size; i++) {
        const u1 = 1 - next();
        const u2 = next();
        out[i] = init.mean + init.std * Math.sqrt(-2 * Math.log(u1)) * Math.cos(2 * Math.PI * u2);
      }
      return out;
    }
  }
}

/** PyTorch's fan computation: dim 1 is fan-in, dim 0 fan-out, times the receptive field. */
export function fans(shape: readonly number[]): { fanIn: number; fanOut: number } {
  if (shape.length === 0) return { fanIn: 1, fanOut: 1 };
  if (shape.length === 1) return { fanIn: shape[0]!, fanOut: shape[0]! };
  const receptive = shape.slice(2).reduce((a, b) => a * b, 1);
  return { fanIn: shape[1]! * receptive, fanOut: shape[0]! * receptive };
}

/** Xavier/Glorot uniform (PyTorch's xavier_uniform_): U(±sqrt(6 / (fan_in + fan_out))). */
export function glorotInit(shape: readonly number[]): InitSpec {
  const { fanIn, fanOut } = fans(shape);
  const a = Math.sqrt(6 / (fanIn + fanOut));
  return { kind: "uniform", lo: -a, hi: a };
}

/** He/Kaiming normal (PyTorch's kaiming_normal_, fan_in, relu gain): N(0, sqrt(2 / fan_in)). */
export function heInit(shape: readonly number[]): InitSpec {
  return { kind: "normal", mean: 0, std: Math.sqrt(2 / fans(shape).fanIn) };
}

// NumPy broadcasting over symbolic shapes, shared by every op family.
//
// Shapes are aligned at their last dim. Two dims broadcast when they are equal
// (symbolically, so `N` with `N`) or when one of them is the constant 1. Two
// different dims, symbolic or not (`N` vs `5`, `N` vs `L`), do not: the compiler
// would otherwise have to guess, and a wrong guess becomes a silent runtime
// broadcast of the wrong axis.

import { Dim, type Shape } from "../ir/dims.ts";
import { typeToString, type TensorType } from "../ir/types.ts";

export type BroadcastResult =
  | { readonly ok: true; readonly shape: Dim[] }
  /** `dim` counts in the broadcast result (equal to the longer operand's index). */
  | { readonly ok: false; readonly dim: number; readonly a: Dim; readonly b: Dim };

export function broadcastShapes(a: Shape, b: Shape): BroadcastResult {
  const rank = Math.max(a.length, b.length);
  const out: Dim[] = [];
  for (let i = 0; i < rank; i++) {
    const da = a[i - (rank - a.length)] ?? Dim.of(1);
    const db = b[i - (rank - b.length)] ?? Dim.of(1);
    if (da.equals(db) || db.equals(1)) out.push(da);
    else if (da.equals(1)) out.push(db);
    else return { ok: false, dim: i, a: da, b: db };
  }
  return { ok: true, shape: out };
}

/** "cannot broadcast f32[N, 10] with f32[N, 5]: dim 1 is 10 vs 5", or the broadcast shape. */
export function broadcastTypes(a: TensorType, b: TensorType): { shape: Dim[] } | { error: string } {
  const r = broadcastShapes(a.shape, b.shape);
  if (r.ok) return { shape: r.shape };
  return { error: `cannot broadcast ${typeToString(a)} with ${typeToString(b)}: dim ${r.dim} is ${r.a.toString()} vs ${r.b.toString()}` };
}

/**
 * Strides that read an input of shape `inShape` at an index of the broadcast
 * shape `outShape` (both concrete): 0 where the input is broadcast.
 */
export function broadcastStrides(inShape: readonly number[], outShape: readonly number[]): number[] {
  const strides = new Array<number>(outShape.length).fill(0);
  let s = 1;
  for (let i = inShape.length - 1; i >= 0; i--) {
    const o = i + outShape.length - inShape.length;
    strides[o] = inShape[i] === 1 && outShape[o] !== 1 ? 0 : s;
    s *= inShape[i]!;
  }
  return strides;
}

/**
 * For every element of `outShape` in row-major order, the flat offsets into each
 * input (broadcast). Calls `f(outFlat, offsets)`.
 */
export function forEachBroadcast(
  outShape: readonly number[],
  inShapes: readonly (readonly number[])[],
  f: (outFlat: number, offsets: readonly number[]) => void,
): void {
  const n = outShape.reduce((p, d) => p * d, 1);
  if (n === 0) return;
  const strides = inShapes.map((s) => broadcastStrides(s, outShape));
  const idx = new Array<number>(outShape.length).fill(0);
  const offsets = new Array<number>(inShapes.length).fill(0);
  for (let k = 0; k < n; k++) {
    f(k, offsets);
    // Advance the multi-index and the offsets together (odometer).
    for (let d = outShape.length - 1; d >= 0; d--) {
      idx[d]++;
      for (let j = 0; j < offsets.length; j++) offsets[j] += strides[j]![d]!;
      if (idx[d]! < outShape[d]!) break;
      for (let j = 0; j < offsets.length; j++) offsets[j] -= strides[j]![d]! * outShape[d]!;
      idx[d] = 0;
    }
  }
}

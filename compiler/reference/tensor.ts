// Tensors of the float64 reference interpreter. Written for clarity, not speed:
// every dtype is stored as float64 (i32 as integers, bool as 0/1), row-major.

import type { DType } from "../ir/types.ts";

export class RefTensor {
  readonly strides: readonly number[];
  constructor(
    readonly dtype: DType,
    readonly shape: readonly number[],
    readonly data: Float64Array = new Float64Array(shape.reduce((a, b) => a * b, 1)),
  ) {
    const n = shape.reduce((a, b) => a * b, 1);
    if (data.length !== n) throw new Error(`tensor data has ${data.length} elements, shape [${shape.join(", ")}] needs ${n}`);
    const strides: number[] = new Array(shape.length);
    let s = 1;
    for (let i = shape.length - 1; i >= 0; i--) {
      strides[i] = s;
      s *= shape[i]!;
    }
    this.strides = strides;
  }

  static zeros(shape: readonly number[], dtype: DType = "f32"): RefTensor {
    return new RefTensor(dtype, shape);
  }

  static filled(shape: readonly number[], value: number, dtype: DType = "f32"): RefTensor {
    const t = new RefTensor(dtype, shape);
    t.data.fill(value);
    return t;
  }

  static from(values: ArrayLike<number>, shape: readonly number[] = [values.length], dtype: DType = "f32"): RefTensor {
    return new RefTensor(dtype, shape, Float64Array.from(values));
  }

  static scalar(v: number, dtype: DType = "f32"): RefTensor {
    return new RefTensor(dtype, [], Float64Array.of(v));
  }

  get size(): number {
    return this.data.length;
  }

  get rank(): number {
    return this.shape.length;
  }

  /** Flat offset of a multi-index. */
  offset(index: readonly number[]): number {
    let o = 0;
    for (let i = 0; i < index.length; i++) o += index[i]! * this.strides[i]!;
    return o;
  }

  get(...index: number[]): number {
    return this.data[this.offset(index)]!;
  }

  set(value: number, ...index: number[]): void {
    this.data[this.offset(index)] = value;
  }

  /** Multi-index of a flat offset. */
  unravel(flat: number): number[] {
    const idx = new Array<number>(this.shape.length);
    for (let i = 0; i < this.shape.length; i++) {
      idx[i] = Math.floor(flat / this.strides[i]!) % this.shape[i]!;
    }
    return idx;
  }

  map(f: (v: number, i: number) => number, dtype: DType = this.dtype): RefTensor {
    return new RefTensor(dtype, this.shape, this.data.map(f));
  }

  reshape(shape: readonly number[]): RefTensor {
    return new RefTensor(this.dtype, shape, this.data);
  }

  toArray(): number[] {
    return Array.from(this.data);
  }
}

/** Iterate every multi-index of a shape in row-major order. */
export function* indices(shape: readonly number[]): Generator<number[]> {
  const n = shape.reduce((a, b) => a * b, 1);
  if (n === 0) return;
  const idx = new Array<number>(shape.length).fill(0);
  for (let k = 0; k < n; k++) {
    yield idx.slice();
    for (let i = shape.length - 1; i >= 0; i--) {
      if (++idx[i]! < shape[i]!) break;
      idx[i] = 0;
    }
  }
}

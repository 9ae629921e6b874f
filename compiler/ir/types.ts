import { Dim, shapeToString, shapesEqual, type Shape } from "./dims.ts";

export type DType = "f32" | "i32" | "bool";
export const DTYPES: readonly DType[] = ["f32", "i32", "bool"];

export interface TensorType {
  readonly dtype: DType;
  readonly shape: Shape;
}

export function tensorType(dtype: DType, shape: readonly (Dim | number | string)[]): TensorType {
  return { dtype, shape: shape.map((d) => (d instanceof Dim ? d : typeof d === "number" ? Dim.of(d) : Dim.sym(d))) };
}

export function typeToString(t: TensorType): string {
  return `${t.dtype}${shapeToString(t.shape)}`;
}

export function typesEqual(a: TensorType, b: TensorType): boolean {
  return a.dtype === b.dtype && shapesEqual(a.shape, b.shape);
}

export function rank(t: TensorType): number {
  return t.shape.length;
}

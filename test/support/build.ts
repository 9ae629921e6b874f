// Small helpers to build and run graphs in tests without going through the
// .cnn parser: call builtins by name with JS values as arguments.

import { CompileError, type Diagnostic } from "../../compiler/diagnostics.ts";
import { Dim } from "../../compiler/ir/dims.ts";
import type { Value } from "../../compiler/ir/graph.ts";
import { tensorType, type DType } from "../../compiler/ir/types.ts";
import { ModelState } from "../../compiler/lower/model-state.ts";
import type { ArgValue } from "../../compiler/ops/args.ts";
import { initialParams, interpret, type InterpretOptions } from "../../compiler/reference/interpreter.ts";
import { RefTensor } from "../../compiler/reference/tensor.ts";

export type JsArg = Value | number | string | boolean | null | Dim | readonly JsArg[];

/** A JS value as a builtin argument; numbers written as integers count as ints. */
export function arg(x: JsArg): ArgValue {
  if (x === null) return { kind: "none" };
  if (x instanceof Dim) return { kind: "dim", value: x };
  if (Array.isArray(x)) return { kind: "list", items: x.map(arg) };
  if (typeof x === "number") return { kind: "number", value: x, isInt: Number.isInteger(x) };
  if (typeof x === "string") return { kind: "string", value: x };
  if (typeof x === "boolean") return { kind: "bool", value: x };
  return { kind: "tensor", value: x as Value };
}

export class TestModel {
  readonly s: ModelState;
  constructor(name = "T") {
    this.s = new ModelState(name);
  }
  get graph() {
    return this.s.graph;
  }
  input(name: string, dtype: DType, shape: readonly (number | string)[]): Value {
    return this.s.addInput(name, tensorType(dtype, shape));
  }
  /** Call a builtin as `binding = callee(positional..., k=v...)`. */
  call(callee: string, positional: readonly JsArg[], keywords: Record<string, JsArg> = {}, binding = "y"): Value {
    const v = this.s.callBuiltin(
      callee,
      undefined,
      positional.map(arg),
      Object.entries(keywords).map(([name, value]) => ({ name, value: arg(value) })),
      { binding, prefix: "" },
    );
    if (!this.s.valueNames.has(v)) this.s.valueNames.set(v, binding);
    return v;
  }
  output(name: string, v: Value, kind: "output" | "loss" = "output"): void {
    this.graph.outputs.push({ name, value: v, kind });
  }
  /** Run in float64; params default to the seeded initialisation, overridden by `params`. */
  run(inputs: Record<string, RefTensor>, params: Record<string, RefTensor> = {}, opts: InterpretOptions = {}) {
    return interpret(this.graph, inputs, { ...initialParams(this.graph, 0), ...params }, opts);
  }
}

/** The diagnostics a function throws (fails the test if it throws none). */
export function diagnosticsOf(f: () => unknown): Diagnostic[] {
  try {
    f();
  } catch (e) {
    if (e instanceof CompileError) return [...e.diagnostics];
    throw e;
  }
  throw new Error("expected a compile error, but none was raised");
}

export function t(values: ArrayLike<number>, shape: readonly number[] = [values.length], dtype: DType = "f32"): RefTensor {
  return RefTensor.from(values, shape, dtype);
}

/** Deterministic pseudo-random tensor for tests. */
export function randomTensor(shape: readonly number[], seed = 1, lo = -1, hi = 1): RefTensor {
  let s = seed >>> 0 || 1;
  const n = shape.reduce((a, b) => a * b, 1);
  const data = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    s ^= s << 13; s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5; s >>>= 0;
    data[i] = lo + ((s >>> 0) / 4294967296) * (hi - lo);
  }
  return new RefTensor("f32", shape, data);
}

export function expectClose(actual: ArrayLike<number>, expected: ArrayLike<number>, tol = 1e-9): void {
  if (actual.length !== expected.length) throw new Error(`length ${actual.length} != ${expected.length}`);
  for (let i = 0; i < actual.length; i++) {
    const a = actual[i]!;
    const e = expected[i]!;
    if (!(Math.abs(a - e) <= tol * Math.max(1, Math.abs(e)))) {
      throw new Error(`element ${i}: got ${a}, expected ${e} (tolerance ${tol})\n got: [${Array.from(actual).slice(0, 32).join(", ")}]\nwant: [${Array.from(expected).slice(0, 32).join(", ")}]`);
    }
  }
}

// Conformance of generated code with the float64 reference interpreter:
// run the same graph, inputs and parameters through both and compare every
// output within 1e-4 relative and 1e-5 absolute (the targets compute in f32).

import { expect } from "vitest";
import type { Graph } from "../../compiler/ir/graph.ts";
import { jsExecutor } from "../../compiler/codegen/js/execute.ts";
import { bindSymbols, initialParams, interpret } from "../../compiler/reference/interpreter.ts";
import type { RefTensor } from "../../compiler/reference/tensor.ts";

export interface ConformanceOptions {
  readonly params?: Record<string, RefTensor>;
  readonly training?: boolean;
  readonly seed?: number;
  readonly rtol?: number;
  readonly atol?: number;
}

export function expectAllClose(actual: RefTensor, expected: RefTensor, what: string, rtol = 1e-4, atol = 1e-5): void {
  expect(actual.shape, `${what}: shape`).toEqual(expected.shape);
  for (let i = 0; i < expected.size; i++) {
    const a = actual.data[i]!;
    const e = expected.data[i]!;
    const ok = (Number.isNaN(a) && Number.isNaN(e)) || a === e || Math.abs(a - e) <= atol + rtol * Math.abs(e);
    if (!ok) {
      expect.fail(`${what}: element ${i} (index [${expected.unravel(i).join(", ")}]) is ${a}, reference ${e} (|diff| ${Math.abs(a - e)})`);
    }
  }
}

/** Runs `g` on the JS target and the reference; returns the JS outputs after checking them. */
export function expectJsMatchesReference(g: Graph, inputs: Record<string, RefTensor>, opts: ConformanceOptions = {}): Record<string, RefTensor> {
  // Parameters are rounded to f32 (as the targets store them) so both sides see the same numbers.
  const params = { ...initialParams(g, opts.seed ?? 0), ...(opts.params ?? {}) };
  for (const k of Object.keys(params)) params[k] = params[k]!.map((v) => Math.fround(v));
  const f32Inputs = Object.fromEntries(Object.entries(inputs).map(([k, t]) => [k, t.dtype === "f32" ? t.map((v) => Math.fround(v)) : t]));
  const ref = interpret(g, f32Inputs, params, { training: opts.training, seed: opts.seed });
  const symbols = Object.fromEntries(bindSymbols(g, f32Inputs));
  const js = jsExecutor(g, Object.keys(ref.outputs)).run(f32Inputs, params, { training: opts.training, seed: opts.seed, symbols });
  for (const [name, want] of Object.entries(ref.outputs)) expectAllClose(js[name]!, want, `output '${name}'`, opts.rtol, opts.atol);
  return js;
}

// Run a graph's generated JS in this process (tests, `cnnc run --target=js`
// before the module emitter, conformance checks against the reference).

import type { Graph } from "../../ir/graph.ts";
import { RefTensor } from "../../reference/tensor.ts";
import { makeRunContext } from "../../../runtime/run-context.ts";
import { ARRAY_TYPE, emitProgram, type JsProgram } from "./program.ts";
import { planArenas } from "../../../runtime/memory-plan.ts";

type TypedArray = Float32Array | Int32Array | Uint8Array;

export interface JsExecutor {
  readonly program: JsProgram;
  readonly source: string;
  run(inputs: Record<string, RefTensor>, params: Record<string, RefTensor>, opts?: { training?: boolean; seed?: number; symbols?: Record<string, number> }): Record<string, RefTensor>;
}

/** Compile the program for the given outputs (default: all) and return a runner. Symbols must be passed or derivable by the caller. */
export function jsExecutor(g: Graph, outputNames?: readonly string[]): JsExecutor {
  const outs = outputNames ? g.outputs.filter((o) => outputNames.includes(o.name)) : g.outputs;
  const program = emitProgram(g, outs.map((o) => o.value));
  const source = `${program.kernels.join("\n\n")}\n\n${program.forward}\nreturn forward;`;
  const forward = new Function(source)() as (S: Record<string, number>, T: unknown, B: TypedArray[]) => void;
  return {
    program,
    source,
    run(inputs, params, opts = {}) {
      const S = opts.symbols ?? {};
      const sizeOf = (expr: string) => new Function("S", `return ${expr};`)(S) as number;
      const ctorOf = (dtype: keyof typeof ARRAY_TYPE) =>
        globalThis[ARRAY_TYPE[dtype] as "Float32Array"] as unknown as { new (n: number | ArrayLike<number>): TypedArray; new (b: ArrayBuffer, offset: number, n: number): TypedArray };
      // Poison fresh buffers so a kernel that skips an element is caught by tests.
      const poisoned = (dtype: keyof typeof ARRAY_TYPE, n: number) => {
        const a = new (ctorOf(dtype))(n);
        if (dtype === "f32") (a as Float32Array).fill(NaN);
        else (a as Int32Array).fill(dtype === "i32" ? -123456789 : 77);
        return a;
      };
      // The memory plan, placed for these sizes; arenas poisoned too (as f32 NaN).
      const layout = planArenas(program.memory.map((it) => ({ size: sizeOf(it.size), def: it.def, last: it.last, avoid: it.avoid })));
      const arenas = layout.arenaSizes.map((n) => new Float32Array(n).fill(NaN).buffer);
      const B: TypedArray[] = [];
      program.buffers.forEach((b, i) => {
        const Ctor = ctorOf(b.dtype);
        switch (b.source.kind) {
          case "input":
            B[i] = new Ctor(inputs[b.source.name]!.data);
            break;
          case "param":
            B[i] = new Ctor(params[b.source.name]!.data);
            break;
          case "const":
            B[i] = new Ctor(b.source.values);
            break;
          case "alias":
            B[i] = B[b.source.of]!;
            break;
          case "computed":
            B[i] = poisoned(b.dtype, sizeOf(b.size));
            break;
          case "planned": {
            // Exactly the value's length, at its item's place.
            const item = b.source.item;
            B[i] = new Ctor(arenas[layout.arena[item]!]!, layout.offset[item]! * 4, sizeOf(b.size));
            break;
          }
        }
      });
      forward(S, makeRunContext(opts.training ?? false, opts.seed ?? 0), B);
      const result: Record<string, RefTensor> = {};
      for (const o of outs) {
        const i = program.bufferOf.get(o.value)!;
        const shape = o.value.type.shape.map((d) => d.evaluate(S));
        result[o.name] = new RefTensor(o.value.type.dtype, shape, Float64Array.from(B[i]!));
      }
      return result;
    },
  };
}

// Source nodes: runtime inputs, parameters/buffers and constants. Their values
// come from outside the graph (feeds, weights) or from attributes.

import { CompileError } from "../diagnostics.ts";
import type { DType, TensorType } from "../ir/types.ts";
import { Dim } from "../ir/dims.ts";
import { RefTensor } from "../reference/tensor.ts";
import { defineOp, type BuiltinDef, type OpDef } from "./op.ts";

type SourceAttrs = { name: string; dtype: DType; shape: readonly Dim[] };

function sourceOp(name: "input" | "param"): OpDef {
  return defineOp<SourceAttrs>({
    name,
    infer: (_inputs, a) => [{ dtype: a.dtype, shape: a.shape }],
    evaluate: () => {
      // The interpreter feeds sources directly; reaching this is a bug.
      throw new CompileError([]);
    },
  });
}

/** A constant: a scalar `value`, or `values` of a static `shape`. */
type ConstAttrs = { dtype: DType; value?: number; values?: readonly number[]; shape?: readonly number[] };

const constOp = defineOp<ConstAttrs>({
  name: "const",
  infer: (_inputs, a): TensorType[] => [{ dtype: a.dtype, shape: (a.shape ?? []).map((n) => Dim.of(n)) }],
  evaluate: (_inputs, a) => [
    a.values ? RefTensor.from(a.values, a.shape ?? [a.values.length], a.dtype) : RefTensor.scalar(a.value ?? 0, a.dtype),
  ],
});

export const ops: OpDef[] = [sourceOp("input"), sourceOp("param"), constOp];
export const builtins: BuiltinDef[] = [];

// JS kernels for fused ops (compiler/ops/fused.ts).
//
// fused_elementwise: one map over the result's shape (emitMap of the
// elementwise family: the same loop plan, stride 0 along broadcast dims, scalars
// read once), whose body evaluates the node's steps one const per step, with
// the elementwise family's own templates, so the arithmetic (i32 wrapping,
// NaN rules) is the unfused kernels'. Intermediates stay in doubles instead of
// being rounded to f32 by a store, which only brings the result closer to the
// float64 reference. The first line of the kernel lists the IR nodes it covers.

import type { Attrs } from "../../ir/graph.ts";
import type { DType } from "../../ir/types.ts";
import { coversText, isLoad, stepTypes, type FusedAttrs } from "../../ops/fused.ts";
import { BINARY, binaryGradValueJs, castTemplate, emitMap, KernelWriter, UNARY, UNARY_GRAD, type MapBody, type MapOperand } from "./elementwise.ts";
import type { JsEmitCtx, JsKernel } from "./kernel.ts";

/** One step's value from its argument names (the elementwise templates). */
function stepBody(op: string, args: readonly string[], argTypes: readonly DType[], attrs: Attrs, outType: DType): MapBody {
  const [a, b, c] = args as [string, string, string];
  if (op in BINARY) return { value: BINARY[op]!(a, b, argTypes[0]!) };
  if (op in UNARY) return UNARY[op]!(a, attrs, argTypes[0]!);
  switch (op) {
    case "cast":
      return castTemplate(argTypes[0]!, outType)(a, attrs, argTypes[0]!);
    case "where":
      return { value: `${a} ? ${b} : ${c}` };
    case "unary_grad":
      return UNARY_GRAD[attrs.fn as string]!(a, b, c, attrs);
    case "binary_grad":
      return { value: binaryGradValueJs(attrs.fn as string, attrs.wrt as number, a, b, c) };
  }
  throw new Error(`internal: no JS template for fused step ${op}`);
}

const fusedElementwiseKernel: JsKernel = {
  op: "fused_elementwise",
  emit(ctx: JsEmitCtx) {
    const node = ctx.node;
    const attrs = node.attrs as FusedAttrs;
    const types = stepTypes(node.inputs.map((v) => v.type), attrs, {
      fail: (_code, message) => {
        throw new Error(`internal: ${message}`);
      },
      describeInput: (i) => `input ${i}`,
    });
    const w = new KernelWriter(ctx);
    w.headLine(`// fuses ${coversText(attrs.covers)}`);
    // Each input is loaded by exactly one step; its operand name is v<input>.
    const operands: MapOperand[] = node.inputs.map((v, i) => ({ shape: v.type.shape, buffer: ctx.input(i), name: `v${i}` }));
    const last = attrs.steps.length - 1;
    emitMap(w, node.outputs[0]!.type.shape, ctx.output(0), operands, (loaded) => {
      const names: string[] = [];
      const pre: string[] = [];
      let value = "";
      attrs.steps.forEach((s, k) => {
        if (isLoad(s)) {
          names.push(loaded[s.input]!);
          return;
        }
        const body = stepBody(s.op, s.args.map((a) => names[a]!), s.args.map((a) => types[a]!.dtype), s.attrs ?? {}, types[k]!.dtype);
        if (k === last && !body.pre?.length) {
          value = body.value;
          return;
        }
        const name = `t${k}`;
        if (body.pre?.length) {
          // Template locals (gelu's z, t, tail) get a block of their own.
          pre.push(`let ${name};`, "{", ...body.pre.map((l) => `  ${l}`), `  ${name} = ${body.value};`, "}");
        } else {
          pre.push(`const ${name} = ${body.value};`);
        }
        names.push(name);
        if (k === last) value = name;
      });
      const also = attrs.outputs.slice(1).map((o, j) => ({ output: ctx.output(j + 1), value: names[o]! }));
      return { pre, value, also };
    });
    return w.toString();
  },
};

export const kernels: JsKernel[] = [fusedElementwiseKernel];

// WGSL kernels for fused ops (compiler/ops/fused.ts).
//
// fused_elementwise: one invocation per element of the result (flatPass);
// each input is read at the result's coordinates with stride 0 along its
// broadcast dims (broadcastOffsets of the elementwise family), then the steps
// run as one `let` each with the elementwise family's own templates (and
// helpers), and every output is stored at the flat index (extra outputs have
// the result's shape). A comment above `main` lists the IR nodes it covers.

import type { Attrs } from "../../ir/graph.ts";
import type { DType } from "../../ir/types.ts";
import { coversText, isLoad, stepTypes, type FusedAttrs } from "../../ops/fused.ts";
import { BINARY, binaryGradValueWgsl, broadcastOffsets, castTemplate, flatPass, UNARY, UNARY_GRAD } from "./elementwise.ts";
import type { WgslEmitCtx, WgslKernel } from "./kernel.ts";

/** One step's value from its argument names (the elementwise templates). */
function stepValue(op: string, args: readonly string[], argTypes: readonly DType[], attrs: Attrs, outType: DType): string {
  const [a, b, c] = args as [string, string, string];
  if (op in BINARY) return BINARY[op]!(a, b, argTypes[0]!);
  if (op in UNARY) return UNARY[op]!(a, attrs, argTypes[0]!);
  switch (op) {
    case "cast":
      return castTemplate(argTypes[0]!, outType)(a);
    case "where":
      return `select(${c}, ${b}, ${a} != 0u)`;
    case "unary_grad":
      return UNARY_GRAD[attrs.fn as string]!(a, b, c, attrs);
    case "binary_grad":
      return binaryGradValueWgsl(attrs.fn as string, attrs.wrt as number, a, b, c);
  }
  throw new Error(`internal: no WGSL template for fused step ${op}`);
}

const fusedElementwiseKernel: WgslKernel = {
  op: "fused_elementwise",
  emit(ctx: WgslEmitCtx) {
    const node = ctx.node;
    const attrs = node.attrs as FusedAttrs;
    const types = stepTypes(node.inputs.map((v) => v.type), attrs, {
      fail: (_code, message) => {
        throw new Error(`internal: ${message}`);
      },
      describeInput: (i) => `input ${i}`,
    });
    const outShape = node.outputs[0]!.type.shape;
    const operands = node.inputs.map((v) => ({ shape: v.type.shape }));
    const pass = flatPass(
      ctx,
      ctx.outSizeJs(0),
      (w) => w.numel(outShape, "n"),
      (w) => {
        w.declare(`// fuses ${coversText(attrs.covers)}`);
        const offsets = broadcastOffsets(w, outShape, operands);
        const loaded = node.inputs.map((_, i) => {
          const name = w.fresh(`v${i}`);
          w.line(`let ${name} = ${ctx.input(i)}[${offsets[i]}];`);
          return name;
        });
        const names: string[] = [];
        attrs.steps.forEach((s, k) => {
          if (isLoad(s)) {
            names.push(loaded[s.input]!);
            return;
          }
          const name = w.fresh(`t${k}`);
          const value = stepValue(s.op, s.args.map((a) => names[a]!), s.args.map((a) => types[a]!.dtype), s.attrs ?? {}, types[k]!.dtype);
          w.line(`let ${name} = ${value};`);
          names.push(name);
        });
        attrs.outputs.forEach((o, j) => w.line(`${ctx.output(j)}[i] = ${names[o]};`));
      },
    );
    return { passes: [pass] };
  },
};

export const kernels: WgslKernel[] = [fusedElementwiseKernel];

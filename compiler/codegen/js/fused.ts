// JS kernels for fused ops (compiler/ops/fused.ts).
//
// fused_elementwise: one map over the result's shape (emitMap of the
// elementwise family: the same loop plan, stride 0 along broadcast dims, scalars
// read once), whose body evaluates the node's steps one const per step, with
// the elementwise family's own templates, so the arithmetic (i32 wrapping,
// NaN rules) is the unfused kernels'. Intermediates stay in doubles instead of
// being rounded to f32 by a store, which only brings the result closer to the
// float64 reference. The first line of the kernel lists the IR nodes it covers.
//
// fused_epilogue: the base op's own kernel (conv or einsum), emitted for a
// view of the base node with the epilogue of ./epilogue.ts on its context, so
// every element the contraction produces runs through the program on its way
// to memory (one pass instead of the contraction's store plus a map's load
// and store per elementwise kernel).

import { coversText, epilogueBaseView, internalCtx, stepTypes, type EpilogueAttrs, type FusedAttrs } from "../../ops/fused.ts";
import { emitMap, KernelWriter, type MapOperand } from "./elementwise.ts";
import { jsEpilogue, jsPoolScratch, stepLines } from "./epilogue.ts";
import { getJsKernel } from "./index.ts";
import { productJs, type JsEmitCtx, type JsKernel } from "./kernel.ts";

const fusedElementwiseKernel: JsKernel = {
  op: "fused_elementwise",
  emit(ctx: JsEmitCtx) {
    const node = ctx.node;
    const attrs = node.attrs as FusedAttrs;
    const types = stepTypes(node.inputs.map((v) => v.type), attrs, internalCtx);
    const w = new KernelWriter(ctx);
    w.headLine(`// fuses ${coversText(attrs.covers)}`);
    // Each input is loaded by exactly one step; its operand name is v<input>.
    const operands: MapOperand[] = node.inputs.map((v, i) => ({ shape: v.type.shape, buffer: ctx.input(i), name: `v${i}` }));
    emitMap(w, node.outputs[0]!.type.shape, ctx.output(0), operands, (loaded) => {
      const { lines: pre, names, value } = stepLines(attrs.steps, types, "t", (input) => ({ value: loaded[input]!, bind: false }));
      const also = attrs.outputs.slice(1).map((o, j) => ({ output: ctx.output(j + 1), value: names[o]! }));
      return { pre, value, also };
    });
    return w.toString();
  },
};

const fusedEpilogueKernel: JsKernel = {
  op: "fused_epilogue",
  emit(ctx: JsEmitCtx) {
    const node = ctx.node;
    const attrs = node.attrs as unknown as EpilogueAttrs;
    const base = epilogueBaseView(node);
    const epilogue = jsEpilogue(node, ctx);
    const baseCtx: JsEmitCtx = {
      ...ctx,
      node: base,
      outShape: () => base.outputs[0]!.type.shape.map((d) => ctx.dim(d)),
      outSize: () => productJs(base.outputs[0]!.type.shape.map((d) => ctx.dim(d))),
      epilogue,
    };
    const body = getJsKernel(attrs.base).emit(baseCtx);
    const head = `// fuses ${coversText(attrs.covers)}`;
    if (!attrs.pool || epilogue.claimed()) return `${head}\n${body}`;
    // The base kernel stored the program's result to a scratch array: pool it here.
    const { before, after } = jsPoolScratch(node, ctx);
    return [head, ...before, body, ...after].join("\n");
  },
};

export const kernels: JsKernel[] = [fusedElementwiseKernel, fusedEpilogueKernel];

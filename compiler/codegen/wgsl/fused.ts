// WGSL kernels for fused ops (compiler/ops/fused.ts).
//
// fused_elementwise: one invocation per element of the result (flatPass);
// each input is read at the result's coordinates with stride 0 along its
// broadcast dims (broadcastOffsets of the elementwise family), then the steps
// run as one `let` each with the elementwise family's own templates (and
// helpers), and every output is stored at the flat index (extra outputs have
// the result's shape). A comment above `main` lists the IR nodes it covers.
//
// fused_epilogue: the base op's kernel (conv or einsum, both adapter variants)
// emitted for a view of the base node, with every result store routed through
// the epilogue (epilogue.ts); the epilogue function, its helpers and the
// covers comment go in front of the base kernel's code. With `pool`, the
// conv + epilogue + pool kernel of conv-pool.ts instead.

import { coversText, epilogueBaseView, internalCtx, isLoad, stepTypes, type EpilogueAttrs, type FusedAttrs } from "../../ops/fused.ts";
import { kernels as convKernels } from "./conv.ts";
import { emitConvPool } from "./conv-pool.ts";
import { einsumKernel } from "./einsum.ts";
import { broadcastOffsets, flatPass } from "./elementwise.ts";
import { stepValue, viewCtx, WgslEpilogue } from "./epilogue.ts";
import type { WgslEmitCtx, WgslKernel, WgslPass } from "./kernel.ts";

const fusedElementwiseKernel: WgslKernel = {
  op: "fused_elementwise",
  emit(ctx: WgslEmitCtx) {
    const node = ctx.node;
    const attrs = node.attrs as FusedAttrs;
    const types = stepTypes(node.inputs.map((v) => v.type), attrs, internalCtx);
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

/** The kernels an epilogue can extend; each routes its result stores through storeResult. */
const BASES: ReadonlyMap<string, WgslKernel> = new Map([...convKernels.filter((k) => k.op === "conv"), einsumKernel].map((k) => [k.op, k]));

const fusedEpilogueKernel: WgslKernel = {
  op: "fused_epilogue",
  emit(ctx: WgslEmitCtx) {
    const attrs = ctx.node.attrs as unknown as EpilogueAttrs;
    const base = BASES.get(attrs.base);
    if (!base) throw new Error(`internal: the WebGPU target cannot fuse an epilogue into '${attrs.base}'`);
    const epilogue = new WgslEpilogue(ctx);
    const view = viewCtx(ctx, epilogueBaseView(ctx.node), epilogue);
    const result = attrs.pool ? emitConvPool(view, epilogue, attrs.pool, ctx.node.outputs[0]!.type.shape.map((d) => ctx.dimJs(d))) : base.emit(view);
    // Every variant the runtime may pick must store through the epilogue: one that does not would silently drop it.
    for (const cls of ["cpu", "gpu"] as const) {
      if (!result.passes.some((p) => /\bepilogue\(/.test(p.variants?.[cls]?.code ?? p.code))) {
        throw new Error(`internal: the WGSL ${attrs.base} kernel's "${cls}" variant stores its result without the epilogue`);
      }
    }
    const head = epilogue.declarations();
    const withHead = (code: string) => `${head}\n\n${code}`;
    const passes = result.passes.map(
      (p): WgslPass => ({
        ...p,
        code: withHead(p.code),
        variants: p.variants && Object.fromEntries(Object.entries(p.variants).map(([cls, v]) => [cls, v && { ...v, code: withHead(v.code) }])),
      }),
    );
    return { ...result, passes };
  },
};

export const kernels: WgslKernel[] = [fusedElementwiseKernel, fusedEpilogueKernel];

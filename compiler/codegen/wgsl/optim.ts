// WGSL kernels for the optimizer updates (compiler/ops/optim.ts): one
// invocation per parameter element; lr and step are read from 1-element buffers.

import type { AdamAttrs, SgdAttrs } from "../../ops/optim.ts";
import { flatDispatch, type WgslKernel } from "./kernel.ts";

/** A WGSL f32 literal (always with a decimal point or exponent). */
function f(v: number): string {
  const s = String(Math.fround(v));
  return /[.eE]/.test(s) ? s : `${s}.0`;
}

function entry(index: string, size: string, body: string[]): string[] {
  return [
    `@compute @workgroup_size(64)`,
    `fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {`,
    `  let i = ${index};`,
    `  if (i >= ${size}) { return; }`,
    ...body.map((l) => `  ${l}`),
    `}`,
  ];
}

export const kernels: WgslKernel[] = [
  {
    op: "sgd_update",
    emit(ctx) {
      const a = ctx.node.attrs as unknown as SgdAttrs;
      const momentum = ctx.node.inputs.length === 4;
      const fd = flatDispatch(ctx.outSizeJs(0));
      const body = [`var d = x1[i]${a.weightDecay ? ` + ${f(a.weightDecay)} * x0[i]` : ""};`];
      if (momentum) body.push(`d = ${f(a.momentum)} * x3[i] + d;`, `y1[i] = d;`);
      body.push(`y0[i] = x0[i] - x2[0] * d;`);
      const code = [`// SGD${momentum ? ` with momentum ${a.momentum}` : ""}${a.weightDecay ? `, weight decay ${a.weightDecay}` : ""}.`, ...entry(fd.index, ctx.outSize(0), body)].join("\n");
      return { passes: [{ code, dispatch: fd.dispatch }] };
    },
  },
  {
    op: "adam_update",
    emit(ctx) {
      const a = ctx.node.attrs as unknown as AdamAttrs;
      const fd = flatDispatch(ctx.outSizeJs(0));
      const body = [
        `let c1 = 1.0 - pow(${f(a.beta1)}, x3[0]);`,
        `let c2 = 1.0 - pow(${f(a.beta2)}, x3[0]);`,
        `let d = x1[i]${a.weightDecay ? ` + ${f(a.weightDecay)} * x0[i]` : ""};`,
        `let m = ${f(a.beta1)} * x4[i] + ${f(1 - a.beta1)} * d;`,
        `let v = ${f(a.beta2)} * x5[i] + ${f(1 - a.beta2)} * d * d;`,
        `y1[i] = m;`,
        `y2[i] = v;`,
        `y0[i] = x0[i] - (x2[0] * (m / c1)) / (sqrt(v / c2) + ${f(a.eps)});`,
      ];
      const code = [`// Adam (beta1 ${a.beta1}, beta2 ${a.beta2}, eps ${a.eps}${a.weightDecay ? `, weight decay ${a.weightDecay}` : ""}) with bias correction at step x3[0].`, ...entry(fd.index, ctx.outSize(0), body)].join("\n");
      return { passes: [{ code, dispatch: fd.dispatch }] };
    },
  },
];

// JS kernels for the optimizer updates (compiler/ops/optim.ts): one loop over
// the parameter's elements, arithmetic in float64, results stored as f32.

import type { AdamAttrs, SgdAttrs } from "../../ops/optim.ts";
import type { JsKernel } from "./kernel.ts";

const num = (v: number) => (Number.isInteger(v) ? `${v}` : `${v}`);

export const kernels: JsKernel[] = [
  {
    op: "sgd_update",
    emit(ctx) {
      const a = ctx.node.attrs as unknown as SgdAttrs;
      const momentum = ctx.node.inputs.length === 4;
      const lines = [
        `// SGD${momentum ? ` with momentum ${num(a.momentum)}` : ""}${a.weightDecay ? `, weight decay ${num(a.weightDecay)}` : ""}: p' = p - lr * ${momentum ? "v'" : "g'"}.`,
        `const lr = x2[0];`,
        `for (let i = 0; i < ${ctx.outSize(0)}; i++) {`,
        `  let d = x1[i]${a.weightDecay ? ` + ${num(a.weightDecay)} * x0[i]` : ""};`,
      ];
      if (momentum) lines.push(`  d = ${num(a.momentum)} * x3[i] + d;`, `  y1[i] = d;`);
      lines.push(`  y0[i] = x0[i] - lr * d;`, `}`);
      return lines.join("\n");
    },
  },
  {
    op: "adam_update",
    emit(ctx) {
      const a = ctx.node.attrs as unknown as AdamAttrs;
      return [
        `// Adam (beta1 ${num(a.beta1)}, beta2 ${num(a.beta2)}, eps ${num(a.eps)}${a.weightDecay ? `, weight decay ${num(a.weightDecay)}` : ""}) with bias correction at step x3[0].`,
        `const lr = x2[0];`,
        `const c1 = 1 - Math.pow(${num(a.beta1)}, x3[0]);`,
        `const c2 = 1 - Math.pow(${num(a.beta2)}, x3[0]);`,
        `for (let i = 0; i < ${ctx.outSize(0)}; i++) {`,
        `  const d = x1[i]${a.weightDecay ? ` + ${num(a.weightDecay)} * x0[i]` : ""};`,
        `  const m = ${num(a.beta1)} * x4[i] + ${num(1 - a.beta1)} * d;`,
        `  const v = ${num(a.beta2)} * x5[i] + ${num(1 - a.beta2)} * d * d;`,
        `  y1[i] = m;`,
        `  y2[i] = v;`,
        `  y0[i] = x0[i] - (lr * (m / c1)) / (Math.sqrt(v / c2) + ${num(a.eps)});`,
        `}`,
      ].join("\n");
    },
  },
];

// placeholder: being written
import type { JsKernel } from "./kernel.ts";
export const kernels: JsKernel[] = [
  { op: "relu", emit: (c) => `const n = ${c.outSize(0)};\nfor (let i = 0; i < n; i++) { const v = x0[i]; y0[i] = v > 0 ? v : 0; }` },
];

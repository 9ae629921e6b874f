// placeholder: being written
import type { JsKernel } from "./kernel.ts";
export const kernels: JsKernel[] = [];

// placeholder: being written
import type { WgslKernel } from "./kernel.ts";
export const kernels: WgslKernel[] = [];

// placeholder: being written
import { flatDispatch, type WgslKernel } from "./kernel.ts";
export const kernels: WgslKernel[] = [
  {
    op: "relu",
    emit(c) {
      const f = flatDispatch(c.outSizeJs(0));
      return { passes: [{ dispatch: f.dispatch, code: `@compute @workgroup_size(64) fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = ${f.index};
  if (i >= ${c.outSize(0)}) { return; }
  y0[i] = max(x0[i], 0.0);
}` }] };
    },
  },
];

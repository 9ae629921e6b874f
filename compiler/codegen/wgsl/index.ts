// Registry of WGSL kernel templates, one file per op family (mirroring compiler/ops/).

import type { WgslKernel } from "./kernel.ts";
import * as conv from "./conv.ts";
import * as pool from "./pool.ts";
import * as embed from "./embed.ts";
import * as rnn from "./rnn.ts";
import * as einsum from "./einsum.ts";
import * as elementwise from "./elementwise.ts";
import * as reduce from "./reduce.ts";
import * as shape from "./shape.ts";
import * as norm from "./norm.ts";
import * as loss from "./loss.ts";
import * as optim from "./optim.ts";
import * as fused from "./fused.ts";

const table = new Map<string, WgslKernel>();
for (const f of [conv, pool, embed, rnn, einsum, elementwise, reduce, shape, norm, loss, optim, fused]) {
  for (const k of f.kernels) {
    if (table.has(k.op)) throw new Error(`WGSL kernel for ${k.op} registered twice`);
    table.set(k.op, k);
  }
}

export function getWgslKernel(op: string): WgslKernel {
  const k = table.get(op);
  if (!k) throw new Error(`the WebGPU target has no kernel for op '${op}'`);
  return k;
}

export function hasWgslKernel(op: string): boolean {
  return table.has(op);
}

// The op registry: every op family contributes its IR ops and surface builtins.

import type { BuiltinDef, OpDef } from "./op.ts";
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
import * as source from "./source.ts";
import * as gradient from "./grad.ts";
import * as optim from "./optim.ts";
import * as fused from "./fused.ts";

const families = [source, conv, pool, embed, rnn, einsum, elementwise, reduce, shape, norm, loss, gradient, optim, fused];

const opTable = new Map<string, OpDef>();
const builtinTable = new Map<string, BuiltinDef>();
for (const f of families) {
  for (const op of f.ops) {
    if (opTable.has(op.name)) throw new Error(`op ${op.name} registered twice`);
    opTable.set(op.name, op);
  }
  for (const b of f.builtins) {
    for (const n of b.names) {
      if (builtinTable.has(n)) throw new Error(`builtin ${n} registered twice`);
      builtinTable.set(n, b);
    }
  }
}

export function getOp(name: string): OpDef {
  const op = opTable.get(name);
  if (!op) throw new Error(`internal: no IR op '${name}'`);
  return op;
}

export function hasOp(name: string): boolean {
  return opTable.has(name);
}

export function getBuiltin(name: string): BuiltinDef | undefined {
  return builtinTable.get(name);
}

export function builtinNames(): string[] {
  return [...builtinTable.keys()].sort();
}

export function opNames(): string[] {
  return [...opTable.keys()].sort();
}

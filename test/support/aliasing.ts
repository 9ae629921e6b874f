// The independent aliasing checker of memory plans (compiler/passes/memory.ts):
// it simulates a plan's schedule over the memory the runtime would allocate,
// not over the planner's lifetimes. Used by test/passes/memory.test.ts (values,
// both targets) and test/webgpu/scratch-plan.test.ts (WGSL scratch items).

import { IN_PLACE_OPS, UPDATE_IN_PLACE, VIEW_OPS } from "../../compiler/codegen/js/program.ts";
import type { Node, Value } from "../../compiler/ir/graph.ts";
import { elementCount, scratchElements, type MemoryPlan } from "../../compiler/passes/memory.ts";
import type { ArenaLayout } from "../../runtime/memory-plan.ts";

/**
 * Problems of a plan laid out at `env`, found by simulating the schedule over the memory itself (not over the
 * planner's lifetimes): every kernel input must still hold the value written to it, entry results must survive,
 * a node's outputs must not overlap each other or its inputs (except a declared in-place pair, which must be a
 * safe op on same-shaped values), and no dispatch may bind an arena read-only and writable at once.
 * Scratch items (WebGPU) are written by their node: they may not overlap its inputs, outputs or each other, nor
 * share an arena with its inputs, and they clobber whatever else lies under them (read later: a problem).
 */
export function aliasingProblems(plan: MemoryPlan, layout: ArenaLayout, roots: readonly Value[], env: Record<string, number>): string[] {
  const problems: string[] = [];
  const owner = new Map<Value, Value>();
  const own = (v: Value) => owner.get(v) ?? v;
  for (const n of plan.schedule) if (VIEW_OPS.has(n.op)) owner.set(n.outputs[0]!, own(n.inputs[0]!));
  // Where each storage owner lives: [buffer key, first element, element count]. Arenas are "a<k>".
  const where = (v: Value): [string, number, number] => {
    const item = plan.itemOf.get(v);
    if (item !== undefined) return [`a${layout.arena[item]}`, layout.offset[item]!, elementCount(v, env)];
    const p = plan.overwrites.get(v);
    return [`own%${(p ?? v).id}`, 0, elementCount(v, env)];
  };
  const overlap = (a: [string, number, number], b: [string, number, number]) => a[0] === b[0] && a[1] < b[1] + b[2] && b[1] < a[1] + a[2];
  plan.itemOf.forEach((item, v) => {
    const [, off, size] = where(v);
    if (off + size > layout.arenaSizes[layout.arena[item]!]!) problems.push(`%${v.id} runs past the end of its arena`);
  });
  // Scratch regions by node: [buffer key, first element, element count] of each slot.
  const scratchOf = new Map<Node, [string, number, number][]>();
  plan.items.forEach((it, k) => {
    if (!it.scratch) return;
    const region: [string, number, number] = [`a${layout.arena[k]}`, layout.offset[k]!, scratchElements(it.scratch.size, env)];
    if (region[1] + region[2] > layout.arenaSizes[layout.arena[k]!]!) problems.push(`scratch t${it.scratch.slot} of %${it.scratch.node.outputs[0]!.id} runs past the end of its arena`);
    if (plan.schedule[it.def] !== it.scratch.node || it.last !== it.def) problems.push(`scratch t${it.scratch.slot} of %${it.scratch.node.outputs[0]!.id} is not live exactly at its node's step`);
    (scratchOf.get(it.scratch.node) ?? scratchOf.set(it.scratch.node, []).get(it.scratch.node)!)[it.scratch.slot] = region;
  });
  const holds = new Map<Value, boolean>(); // owner → its memory still holds it
  const written: Value[] = [];
  plan.schedule.forEach((n, i) => {
    if (VIEW_OPS.has(n.op)) return;
    if (n.op === "input" || n.op === "param" || n.op === "const") {
      for (const v of n.outputs) holds.set(v, true);
      return;
    }
    const pairs = plan.inPlace.get(n) ?? [];
    for (const [j, k] of pairs) {
      const x = n.inputs[k]!;
      const y = n.outputs[j]!;
      if (!IN_PLACE_OPS.has(n.op) && !UPDATE_IN_PLACE[n.op]?.some(([a, b]) => a === j && b === k)) problems.push(`step ${i}: ${n.op} may not be written in place`);
      if (x.type.dtype !== y.type.dtype || x.type.shape.some((d, m) => !d.equals(y.type.shape[m]!)) || x.type.shape.length !== y.type.shape.length) problems.push(`step ${i}: in place over a different shape`);
      if (n.inputs.filter((z) => own(z) === own(x)).length !== 1) problems.push(`step ${i}: in-place input bound twice`);
    }
    for (const x of n.inputs) if (!holds.get(own(x))) problems.push(`step ${i} (${n.op} ${n.label ?? ""}) reads %${x.id}, whose memory was overwritten`);
    const outs = n.outputs.map((v) => where(v));
    n.outputs.forEach((y, j) => {
      n.inputs.forEach((x, k) => {
        const inPlace = pairs.some(([a, b]) => a === j && b === k);
        const wx = where(own(x));
        if (inPlace) {
          if (wx[0] !== outs[j]![0] || wx[1] !== outs[j]![1]) problems.push(`step ${i}: in-place output %${y.id} is not where its input is`);
        } else {
          if (overlap(outs[j]!, wx)) problems.push(`step ${i}: output %${y.id} overlaps input %${x.id}`);
          if (outs[j]![0] === wx[0] && outs[j]![0].startsWith("a")) problems.push(`step ${i}: arena ${wx[0]} bound read-only (%${x.id}) and writable (%${y.id}) in one dispatch`);
        }
      });
      n.outputs.forEach((z, m) => m > j && overlap(outs[j]!, outs[m]!) && problems.push(`step ${i}: outputs %${y.id} and %${z.id} overlap`));
    });
    const scratch = scratchOf.get(n) ?? [];
    scratch.forEach((t, s) => {
      for (const x of n.inputs) {
        const wx = where(own(x));
        if (overlap(t, wx)) problems.push(`step ${i}: scratch t${s} overlaps input %${x.id}`);
        if (t[0] === wx[0]) problems.push(`step ${i}: arena ${t[0]} bound read-only (%${x.id}) and writable (scratch t${s}) in one dispatch`);
      }
      n.outputs.forEach((y, j) => overlap(t, outs[j]!) && problems.push(`step ${i}: scratch t${s} overlaps output %${y.id}`));
      scratch.forEach((u, r) => r > s && overlap(t, u) && problems.push(`step ${i}: scratch t${s} and t${r} overlap`));
      for (const w of written) if (holds.get(w) && overlap(t, where(w))) holds.set(w, false);
    });
    n.outputs.forEach((y, j) => {
      for (const w of written) if (w !== y && holds.get(w) && overlap(outs[j]!, where(w))) holds.set(w, false);
      for (const [, k] of pairs.filter(([a]) => a === j)) holds.set(own(n.inputs[k]!), false);
      holds.set(y, true);
      written.push(y);
    });
  });
  for (const r of roots) if (!holds.get(own(r))) problems.push(`result %${r.id} was overwritten before the end`);
  return problems;
}

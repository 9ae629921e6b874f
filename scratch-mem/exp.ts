import { readFileSync } from "node:fs";
import { compileSource } from "../compiler/compile.ts";
import { buildTrainingGraph } from "../compiler/autodiff/training.ts";
import { neededNodes } from "../compiler/ir/graph.ts";
import { planProgramMemory } from "../compiler/codegen/js/program.ts";
import { elementCount } from "../compiler/passes/memory.ts";
type It = { size: number; def: number; last: number; avoid: readonly number[] };
function place(items: It[], order: number[], choose: "growth" | "first" | "offset") {
  const A = 64;
  const reserve = items.map((it) => Math.ceil(Math.max(it.size, 1) / A) * A);
  const arena = new Array(items.length).fill(-1), offset = new Array(items.length).fill(0), sizes: number[] = [], members: number[][] = [];
  for (const i of order) {
    const it = items[i]!;
    let best: any;
    for (let a = 0; a < sizes.length; a++) {
      if (it.avoid.some((j) => arena[j] === a)) continue;
      const busy = members[a]!.filter((j) => items[j]!.def <= it.last && it.def <= items[j]!.last).sort((x, y) => offset[x] - offset[y]);
      let off = 0;
      for (const j of busy) { if (offset[j] - off >= reserve[i]!) break; off = Math.max(off, offset[j] + reserve[j]!); }
      const growth = Math.max(0, off + reserve[i]! - sizes[a]!);
      const key = choose === "growth" ? growth : choose === "offset" ? off + growth * 1e6 : growth > 0 ? 1 : 0;
      if (!best || key < best.key) best = { a, off, key };
    }
    if (!best) { sizes.push(0); members.push([]); best = { a: sizes.length - 1, off: 0 }; }
    arena[i] = best.a; offset[i] = best.off; members[best.a]!.push(i); sizes[best.a] = Math.max(sizes[best.a]!, best.off + reserve[i]!);
  }
  return sizes.reduce((p, s) => p + s, 0);
}
for (const f of ["lenet5", "resnet_block", "unet", "char_lstm", "text_cnn", "dcnn"]) {
  const g = compileSource(readFileSync(`dsl-examples/${f}.cnn`, "utf8"), "l.cnn").graphs[0]!;
  const t = buildTrainingGraph(g)!;
  if (!t) continue;
  const roots = [...t.losses.map((o) => o.value), ...t.updates.map((u) => u.value)];
  const plan = planProgramMemory(neededNodes(t.graph, roots), roots);
  const env = { N: 64, L: 32, H: 32, W: 32 };
  const items = plan.items.map((it) => ({ size: Math.max(...it.members.map((v) => elementCount(v, env))), def: it.def, last: it.last, avoid: it.avoid }));
  // true peak
  let peak = 0;
  for (let s = 0; s < plan.schedule.length; s++) peak = Math.max(peak, items.filter((it) => it.def <= s && s <= it.last).reduce((p, it) => p + Math.ceil(Math.max(it.size, 1) / 64) * 64, 0));
  const idx = [...items.keys()];
  const orders: Record<string, number[]> = {
    size: [...idx].sort((a, b) => items[b]!.size - items[a]!.size || items[a]!.def - items[b]!.def),
    def: idx,
    area: [...idx].sort((a, b) => items[b]!.size * (items[b]!.last - items[b]!.def + 1) - items[a]!.size * (items[a]!.last - items[a]!.def + 1)),
    conflicts: [...idx].sort((a, b) => items[b]!.avoid.length - items[a]!.avoid.length || items[b]!.size - items[a]!.size),
  };
  const res: string[] = [];
  for (const [k, o] of Object.entries(orders)) for (const c of ["growth", "first", "offset"] as const) {
    res.push(`${k}/${c}=${place(items, o, c)}`);
    res.push(`${k}/${c}/free=${place(items.map((it) => ({ ...it, avoid: [] })), o, c)}`);
  }
  console.log(f, "peak", peak, res.join(" "));
}
console.log("random search");
for (const f of ["lenet5", "dcnn", "text_cnn", "resnet_block"]) {
  const g = compileSource(readFileSync(`dsl-examples/${f}.cnn`, "utf8"), "l.cnn").graphs[0]!;
  const t = buildTrainingGraph(g)!;
  const roots = [...t.losses.map((o) => o.value), ...t.updates.map((u) => u.value)];
  const plan = planProgramMemory(neededNodes(t.graph, roots), roots);
  const env = { N: 64, L: 32, H: 32, W: 32 };
  const items = plan.items.map((it) => ({ size: Math.max(...it.members.map((v) => elementCount(v, env))), def: it.def, last: it.last, avoid: it.avoid }));
  let s = 12345;
  const rnd = () => ((s = (Math.imul(s, 1103515245) + 12345) >>> 0) / 4294967296);
  let best = Infinity;
  const t0 = Date.now();
  for (let r = 0; r < 64; r++) {
    // size order with random jitter
    const key = items.map((it) => it.size * (0.5 + rnd()));
    const o = [...items.keys()].sort((a, b) => key[b]! - key[a]!);
    best = Math.min(best, place(items, o, "growth"));
  }
  console.log(f, best, Date.now() - t0, "ms", items.length);
}

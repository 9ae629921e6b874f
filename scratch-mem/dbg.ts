import { readFileSync } from "node:fs";
import { compileSource } from "../compiler/compile.ts";
import { buildTrainingGraph } from "../compiler/autodiff/training.ts";
import { neededNodes } from "../compiler/ir/graph.ts";
import { planProgramMemory } from "../compiler/codegen/js/program.ts";
import { planBytes, elementCount } from "../compiler/passes/memory.ts";
const g = compileSource(readFileSync("/work/main/dsl-examples/lenet5.cnn", "utf8"), "l.cnn").graphs[0]!;
const t = buildTrainingGraph(g)!;
const roots = [...t.losses.map((o) => o.value), ...t.updates.map((u) => u.value)];
const nodes = neededNodes(t.graph, roots);
const plan = planProgramMemory(nodes, roots);
const env = { N: 64 };
console.log(planBytes(plan, env));
nodes.forEach((n, i) => {
  const outs = n.outputs.map((v) => { const lt = plan.lifetimes.get(v); return `%${v.id}[${elementCount(v, env)}]${plan.pinned.has(v) ? "P" : ""}${plan.slotOf.has(v) ? "s" + plan.slotOf.get(v) : ""}${lt ? ` ->${lt.lastUse}` : ""}`; });
  console.log(i, n.op, n.label ?? "", outs.join(" "), "<-", n.inputs.map((v) => "%" + v.id).join(","));
});
plan.slots.forEach((s, k) => console.log("slot", k, s.dtype, Math.max(...s.members.map((v) => elementCount(v, env))), s.members.map((v) => `%${v.id}:${elementCount(v, env)}`).join(" ")));
// true live peak among planned values
let peak = 0, at = -1;
nodes.forEach((n, i) => {
  let live = 0;
  for (const [v, lt] of plan.lifetimes) if (!plan.pinned.has(v) && lt.def <= i && lt.lastUse >= i) live += elementCount(v, env);
  if (live > peak) { peak = live; at = i; }
});
let pinned = 0, upd = 0;
for (const v of plan.pinned) pinned += elementCount(v, env);
for (const u of t.updates) upd += elementCount(u.value, env);
const naive = [...plan.lifetimes.keys()].reduce((p, v) => p + elementCount(v, env), 0);
console.log({ peak, at, pinned, upd, naive, slotTotal: plan.slots.reduce((p, s) => p + Math.max(...s.members.map((v) => elementCount(v, env))), 0) });

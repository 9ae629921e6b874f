// The einsum contraction-order pass (compiler/passes/einsum-path.ts):
//  * the planner's order costs exactly the brute-force minimum over every
//    pairwise contraction tree (random chains and networks of 3–5 operands);
//  * a 4-operand matrix chain where left-to-right is much worse gets (AB)(CD);
//  * rewritten graphs compute what the n-ary einsum did: float64 reference
//    before vs after, then the JS and WGSL targets on the rewritten graph
//    (chains, networks, diagonals, indices summed within one operand, scalars,
//    ellipsis with broadcasting, symbolic sizes, 7 operands (optimal) and 10
//    (greedy));
//  * gradients: autodiff of an n-ary einsum emits n-ary gradient einsums, which
//    the pass rewrites too; gradient graphs and a whole training step give the
//    same results with and without it.

import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { describe, expect, it } from "vitest";
import { buildTrainingGraph, LR_INPUT, STEP_INPUT } from "../../compiler/autodiff/training.ts";
import { emitModule, factoryName } from "../../compiler/codegen/module.ts";
import { compileSource } from "../../compiler/compile.ts";
import type { Graph } from "../../compiler/ir/graph.ts";
import { verifyGraph } from "../../compiler/ir/verifier.ts";
import { orderEinsums, pairFlops, planContraction, type ContractionPlan } from "../../compiler/passes/einsum-path.ts";
import { optimize, PASSES } from "../../compiler/passes/pipeline.ts";
import { initialParams, interpret } from "../../compiler/reference/interpreter.ts";
import { RefTensor } from "../../compiler/reference/tensor.ts";
import { TestModel, randomTensor } from "../support/build.ts";
import { expectAllClose, expectJsMatchesReference } from "../support/conformance.ts";
import { gradGraph } from "../support/gradcheck.ts";
import { expectWgslMatchesReference, gpuDevice } from "../support/webgpu.ts";

// ---------------------------------------------------------------------------
// Brute force, independent of the planner: every sequence of pairwise merges.

type Term = readonly string[];

/** Names of `a` and `b` still needed by `rest` or the output. */
function resultOf(a: Term, b: Term, rest: readonly Term[], output: Term): string[] {
  const needed = new Set([...output, ...rest.flat()]);
  return [...new Set([...a, ...b])].filter((n) => needed.has(n));
}

interface Cost {
  readonly flops: number;
  /** Total elements of every step's result. */
  readonly size: number;
}

/** The least (FLOPs, then intermediate size) over all contraction trees. */
function bruteForce(terms: readonly Term[], output: Term, sizes: ReadonlyMap<string, number>): Cost {
  const prod = (names: Iterable<string>) => [...new Set(names)].reduce((p, n) => p * sizes.get(n)!, 1);
  const go = (live: readonly Term[]): Cost => {
    if (live.length === 1) return { flops: 0, size: 0 };
    let best: Cost = { flops: Infinity, size: Infinity };
    for (let i = 0; i < live.length; i++) {
      for (let j = i + 1; j < live.length; j++) {
        const rest = live.filter((_, k) => k !== i && k !== j);
        const r = resultOf(live[i]!, live[j]!, rest, output);
        const after = go([...rest, r]);
        const c = { flops: 2 * prod([...live[i]!, ...live[j]!]) + after.flops, size: prod(r) + after.size };
        if (c.flops < best.flops || (c.flops === best.flops && c.size < best.size)) best = c;
      }
    }
    return best;
  };
  return go(terms.map((t) => [...new Set(t)]));
}

const bruteForceMin = (terms: readonly Term[], output: Term, sizes: ReadonlyMap<string, number>) => bruteForce(terms, output, sizes).flops;

/** Replays a plan's steps with the test's own bookkeeping; checks its shape and returns its FLOPs. */
function replay(plan: ContractionPlan, terms: readonly Term[], output: Term, sizes: ReadonlyMap<string, number>): Cost {
  const live = new Map<number, Term>(terms.map((t, k) => [k, [...new Set(t)]]));
  let total = 0;
  let size = 0;
  plan.steps.forEach((s, i) => {
    const a = live.get(s.a);
    const b = live.get(s.b);
    expect(a && b && s.a !== s.b, `step ${i} reads live terms`).toBeTruthy();
    live.delete(s.a);
    live.delete(s.b);
    const want = resultOf(a!, b!, [...live.values()], output);
    expect(new Set(s.result), `step ${i} keeps exactly the indices still needed`).toEqual(new Set(want));
    total += pairFlops(a!, b!, sizes);
    size += s.result.reduce((p, n) => p * sizes.get(n)!, 1);
    live.set(terms.length + i, s.result);
  });
  expect(plan.steps.length).toBe(terms.length - 1);
  expect([...live.values()]).toEqual([output]);
  expect(total).toBe(plan.flops);
  expect(size).toBe(plan.intermediateSize);
  return { flops: total, size };
}

/** xorshift32 for reproducible random networks. */
function rng(seed: number) {
  let s = seed >>> 0 || 1;
  return () => {
    s ^= s << 13; s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5; s >>>= 0;
    return s / 4294967296;
  };
}

const SIZES = [1, 2, 3, 5, 8, 16, 32, 64, 100, 128, 512];

/** A random tensor network: each index in 1–3 operands (in the output when only in one), sizes from SIZES. */
function randomNetwork(seed: number, n: number): { terms: string[][]; output: string[]; sizes: Map<string, number> } {
  const r = rng(seed);
  const pick = <T>(xs: readonly T[]) => xs[Math.floor(r() * xs.length)]!;
  const terms: string[][] = Array.from({ length: n }, () => []);
  const output: string[] = [];
  const sizes = new Map<string, number>();
  const count = n + 1 + Math.floor(r() * (n + 2));
  for (let i = 0; i < count; i++) {
    const name = String.fromCharCode(97 + i);
    sizes.set(name, pick(SIZES));
    const k = r() < 0.15 ? 1 : r() < 0.85 ? 2 : 3;
    const owners = new Set<number>();
    while (owners.size < Math.min(k, n)) owners.add(Math.floor(r() * n));
    for (const o of owners) terms[o]!.push(name);
    if (owners.size === 1 || r() < 0.2) output.push(name);
  }
  return { terms, output, sizes };
}

/** A matrix chain A0[i0,i1] · A1[i1,i2] · … with random sizes. */
function randomChain(seed: number, n: number) {
  const r = rng(seed);
  const dims = Array.from({ length: n + 1 }, () => SIZES[1 + Math.floor(r() * (SIZES.length - 1))]!);
  const name = (i: number) => String.fromCharCode(97 + i);
  const terms = Array.from({ length: n }, (_, k) => [name(k), name(k + 1)]);
  return { terms, output: [name(0), name(n)], sizes: new Map(dims.map((d, i) => [name(i), d])) };
}

describe("einsum path: planning", () => {
  it("the chosen order of 3–5-operand chains and networks costs the brute-force minimum (FLOPs, then intermediate size)", () => {
    for (let seed = 1; seed <= 240; seed++) {
      const n = 3 + (seed % 3);
      const { terms, output, sizes } = seed % 2 ? randomNetwork(seed * 7919, n) : randomChain(seed * 104729, n);
      const plan = planContraction(terms, output, sizes);
      expect(plan.method).toBe("optimal");
      const what = `seed ${seed}: ${terms.map((t) => t.join("")).join(",")}->${output.join("")} sizes ${JSON.stringify([...sizes])}`;
      expect(replay(plan, terms, output, sizes), what).toEqual(bruteForce(terms, output, sizes));
    }
  });

  it("the greedy order (beyond the exhaustive limit) is a valid tree", () => {
    for (let seed = 1; seed <= 40; seed++) {
      const n = 3 + (seed % 8);
      const { terms, output, sizes } = seed % 2 ? randomNetwork(seed * 31, n) : randomChain(seed * 37, n);
      const plan = planContraction(terms, output, sizes, 0);
      expect(plan.method).toBe("greedy");
      const { flops } = replay(plan, terms, output, sizes);
      if (n <= 6) expect(flops).toBeGreaterThanOrEqual(bruteForceMin(terms, output, sizes));
    }
    // A 10-matrix chain: greedy by default; the exhaustive search (forced) is at least as good.
    const { terms, output, sizes } = randomChain(5, 10);
    const greedy = planContraction(terms, output, sizes);
    expect(greedy.method).toBe("greedy");
    expect(planContraction(terms, output, sizes, 10).flops).toBeLessThanOrEqual(greedy.flops);
  });

  it("equal FLOPs: the tree with the smaller intermediates wins", () => {
    // bd,ab,cd->: (bd·ab)→[d] then ·cd costs 48 + 8 FLOPs; (bd·cd)→[b] then ·ab costs 32 + 24.
    // Same 56 FLOPs; the first keeps 2 + 1 elements, the second 4 + 1.
    const terms = [["b", "d"], ["a", "b"], ["c", "d"]];
    const sizes = new Map([["a", 3], ["b", 4], ["c", 2], ["d", 2]]);
    const plan = planContraction(terms, [], sizes);
    expect(plan.flops).toBe(56);
    expect(plan.intermediateSize).toBe(3);
    expect(plan.steps.map((s) => [s.a, s.b, s.result])).toEqual([
      [0, 1, ["d"]],
      [3, 2, []],
    ]);
    expect(bruteForce(terms, [], sizes)).toEqual({ flops: 56, size: 3 });
  });

  it("a 4-operand matrix chain where left-to-right is much worse gets (AB)(CD)", () => {
    // A 64×512 · B 512×16 · C 16×512 · D 512×64.
    const terms = [["i", "j"], ["j", "k"], ["k", "l"], ["l", "m"]];
    const sizes = new Map([["i", 64], ["j", 512], ["k", 16], ["l", 512], ["m", 64]]);
    const plan = planContraction(terms, ["i", "m"], sizes);
    const leftToRight = 2 * (64 * 512 * 16 + 64 * 16 * 512 + 64 * 512 * 64);
    const best = 2 * (64 * 512 * 16 + 16 * 512 * 64 + 64 * 16 * 64);
    expect(plan.flops).toBe(best);
    expect(plan.flops).toBe(bruteForceMin(terms, ["i", "m"], sizes));
    expect(leftToRight / plan.flops).toBeGreaterThan(2.8);
    expect(plan.steps.map((s) => [s.a, s.b, s.result])).toEqual([
      [0, 1, ["i", "k"]],
      [2, 3, ["k", "m"]],
      [4, 5, ["i", "m"]],
    ]);
  });
});

// ---------------------------------------------------------------------------
// The pass on graphs

function naryCount(g: Graph): number {
  return g.nodes.filter((n) => n.op === "einsum" && n.inputs.length >= 3).length;
}

/** The pass on a copy; checks it removed every n-ary einsum, kept the graph valid and the other node ids. */
function rewritten(g: Graph): Graph {
  const before = new Map(g.nodes.map((n) => [n.id, n.op]));
  const h = g.clone();
  orderEinsums(h);
  expect(verifyGraph(h)).toEqual(verifyGraph(g)); // gradGraph's probe input has no shape attribute: same complaint before and after
  expect(naryCount(h)).toBe(0);
  for (const n of g.nodes) if (!(n.op === "einsum" && n.inputs.length >= 3)) expect(h.nodes.some((m) => m.id === n.id && m.op === before.get(n.id))).toBe(true);
  return h;
}

/** Float64 reference results of `g` and `h` agree (only the summation order differs). */
function expectSameResults(g: Graph, h: Graph, inputs: Record<string, RefTensor>, opts: { training?: boolean; seed?: number } = {}) {
  const params = initialParams(g, 0);
  const a = interpret(g, inputs, params, opts);
  const b = interpret(h, inputs, params, opts);
  for (const [name, want] of Object.entries(a.outputs)) expectAllClose(b.outputs[name]!, want, `output '${name}'`, 1e-10, 1e-12);
  for (const [name, want] of Object.entries(a.bufferUpdates)) expectAllClose(b.bufferUpdates[name]!, want, `update '${name}'`, 1e-10, 1e-12);
}

interface Case {
  readonly name: string;
  readonly spec: string;
  readonly shapes: readonly (readonly (number | string)[])[];
  /** Feeds' concrete shapes when the case is symbolic. */
  readonly concrete?: readonly (readonly number[])[];
  /** The same input for every operand (shapes[0]). */
  readonly shared?: boolean;
}

const chain = (n: number, d: number[]): Case => {
  const names = "abcdefghijklmnop";
  return {
    name: `${n}-matrix chain`,
    spec: `${Array.from({ length: n }, (_, k) => names[k]! + names[k + 1]!).join(",")}->${names[0]}${names[n]}`,
    shapes: Array.from({ length: n }, (_, k) => [d[k % d.length]!, d[(k + 1) % d.length]!]),
  };
};

const cases: Case[] = [
  { name: "4-matrix chain", spec: "ij,jk,kl,lm->im", shapes: [[6, 20], [20, 3], [3, 20], [20, 5]] },
  { name: "network with a batch index and a hyperedge", spec: "bij,bjk,bkl,jl->bil", shapes: [[2, 3, 4], [2, 4, 5], [2, 5, 6], [4, 6]] },
  { name: "diagonal in one operand", spec: "iij,jk,kl->il", shapes: [[4, 4, 3], [3, 5], [5, 2]] },
  { name: "trace-like repeated index also used elsewhere", spec: "ii,ij,jk->k", shapes: [[4, 4], [4, 3], [3, 5]] },
  { name: "index summed within one operand", spec: "ij,jkz,kl->il", shapes: [[3, 4], [4, 5, 6], [5, 2]] },
  { name: "scalar operand and outer product", spec: ",ij,k->ijk", shapes: [[], [3, 4], [5]] },
  { name: "ellipsis with broadcast batch dims", spec: "...ij,jk,...kl->...il", shapes: [[3, 1, 4, 5], [5, 6], [2, 6, 7]] },
  { name: "symbolic sizes", spec: "ni,ij,jk,nk->n", shapes: [["N", 6], [6, 7], [7, 8], ["N", 8]], concrete: [[5, 6], [6, 7], [7, 8], [5, 8]] },
  { name: "the same tensor three times", spec: "ij,jk,kl->il", shapes: [[5, 5], [5, 5], [5, 5]], shared: true },
  { ...chain(7, [3, 8, 2, 6, 4]), name: "7-matrix chain (exhaustive)" },
  { ...chain(10, [3, 7, 2, 5, 4, 6]), name: "10-matrix chain (greedy)" },
];

function build(c: Case): { g: Graph; inputs: Record<string, RefTensor> } {
  const m = new TestModel();
  const xs = c.shared ? [m.input("x0", "f32", c.shapes[0]!)] : c.shapes.map((s, i) => m.input(`x${i}`, "f32", s));
  const operands = c.shared ? c.shapes.map(() => xs[0]!) : xs;
  m.output("y", m.call("einsum", [c.spec, ...operands]));
  const shapes = c.concrete ?? (c.shapes as number[][]);
  const inputs = Object.fromEntries(xs.map((_, i) => [`x${i}`, randomTensor(shapes[i]!, 17 + 31 * i)]));
  return { g: m.graph, inputs };
}

describe("einsum path: rewritten graphs compute the same", () => {
  it("the pass is in the pipeline", () => {
    expect(PASSES.map((p) => p.name)).toContain("einsum-path");
    const { g } = build(cases[0]!);
    expect(naryCount(optimize(g))).toBe(0);
    expect(naryCount(optimize(g, "none"))).toBe(1);
  });

  it.each(cases.map((c) => [c.name, c] as const))("%s: reference, then JS", (_name, c) => {
    const { g, inputs } = build(c);
    expect(naryCount(g)).toBe(1);
    const h = rewritten(g);
    const einsums = h.nodes.filter((n) => n.op === "einsum");
    expect(einsums.every((n) => n.inputs.length <= 2)).toBe(true);
    expect(einsums.every((n) => n.label === "y")).toBe(true);
    expectSameResults(g, h, inputs);
    expectJsMatchesReference(h, inputs);
  });

  it("pairwise steps are plain products: no diagonal nor index summed within one operand", () => {
    for (const c of cases) {
      const h = rewritten(build(c).g);
      for (const n of h.nodes.filter((n) => n.op === "einsum" && n.inputs.length === 2)) {
        const { operands, output } = n.attrs as unknown as { operands: string[][]; output: string[] };
        const sizeOf = (name: string) => n.inputs.flatMap((v, k) => operands[k]!.map((x, axis) => (x === name ? v.type.shape[axis]!.constValue() : undefined))).find((s) => s !== undefined);
        for (const [k, names] of operands.entries()) {
          const other = new Set([...operands[1 - k]!, ...output]);
          for (const name of names) if (sizeOf(name) !== 1) expect(other.has(name), `${c.name}: ${names.join("")} in ${operands.map((o) => o.join("")).join(",")}->${output.join("")}`).toBe(true);
          expect(new Set(names).size).toBe(names.length);
        }
      }
    }
  });
});

describe("einsum path: rewritten graphs on WebGPU", () => {
  it.each(cases.filter((c) => !c.name.includes("10-")).map((c) => [c.name, c] as const))("%s", async (_name, c) => {
    const { g, inputs } = build(c);
    await expectWgslMatchesReference(rewritten(g), inputs);
  });
});

describe("einsum path: gradients", () => {
  const gradCases = cases.filter((c) => ["4-matrix chain", "diagonal in one operand", "index summed within one operand", "ellipsis with broadcast batch dims", "symbolic sizes"].includes(c.name));

  it.each(gradCases.map((c) => [c.name, c] as const))("%s: gradient einsums are n-ary and get rewritten, results unchanged", async (_name, c) => {
    const { g, inputs } = build(c);
    const gg = gradGraph(g, inputs);
    // The forward einsum plus one n-ary gradient einsum per operand.
    expect(naryCount(gg.graph)).toBe(1 + c.shapes.length);
    const h = rewritten(gg.graph);
    expectSameResults(gg.graph, h, gg.inputs);
    expectJsMatchesReference(h, gg.inputs);
    await expectWgslMatchesReference(h, gg.inputs);
  });

  it("a training graph (forward, backward, SGD update) gives the same losses and parameters; so do trainStep modules on both targets", async () => {
    const src = `model Chain {
  input x: f32[N, 6]
  input t: f32[N, 3]
  param a: f32[6, 5]
  param b: f32[5, 4]
  param c: f32[4, 3]
  output y = einsum("ni,ij,jk,kl->nl", x, a, b, c)
  loss l = mse(y, t)
  optimizer sgd(lr=0.1)
}
`;
    const r = compileSource(src, "chain.cnn");
    expect(r.diagnostics).toEqual([]);
    const g = r.graphs[0]!;
    const tg = buildTrainingGraph(g)!;
    expect(naryCount(tg.graph)).toBe(1 + 4); // forward; the gradients of x (unused, left for dead-code elimination), a, b and c
    const h = rewritten(tg.graph);
    const x = randomTensor([7, 6], 3);
    const t = randomTensor([7, 3], 4);
    const f32 = (v: RefTensor) => v.map((e) => Math.fround(e));
    expectSameResults(tg.graph, h, { x, t, [LR_INPUT]: RefTensor.scalar(0.1), [STEP_INPUT]: RefTensor.scalar(1) }, { training: true, seed: 1 });

    // The emitted modules (passes on: the training graph is optimized) against the reference, three steps.
    let params: Record<string, RefTensor> = Object.fromEntries(Object.entries(initialParams(tg.graph, 0)).map(([k, v]) => [k, f32(v)]));
    const ref: { loss: RefTensor; params: Record<string, RefTensor> }[] = [];
    for (let step = 1; step <= 3; step++) {
      const feeds = { x: f32(x), t: f32(t), [LR_INPUT]: RefTensor.scalar(0.1), [STEP_INPUT]: RefTensor.scalar(step) };
      const out = interpret(tg.graph, feeds, params, { training: true, seed: step, outputs: ["l"] });
      params = { ...params, ...Object.fromEntries(Object.entries(out.bufferUpdates).map(([k, v]) => [k, f32(v)])) };
      ref.push({ loss: out.outputs.l!, params });
    }
    const dir = mkdtempSync(join(tmpdir(), "cnnc-einsum-path-"));
    try {
      for (const target of ["js", "webgpu"] as const) {
        const m = emitModule(g, { target, runtime: "inline" });
        const path = join(dir, `chain_${target}.mjs`);
        writeFileSync(path, m.js);
        const mod = await import(pathToFileURL(path).href);
        const device = target === "webgpu" ? (await gpuDevice()).device : undefined;
        const model = await mod[factoryName(g.name)]({ seed: 0, device });
        try {
          for (let s = 0; s < 3; s++) {
            const losses = await model.trainStep({ x: { data: Float32Array.from(x.data), shape: [7, 6] }, t: { data: Float32Array.from(t.data), shape: [7, 3] } });
            expectAllClose(new RefTensor("f32", [], Float64Array.from(losses.l.data)), ref[s]!.loss, `${target} step ${s + 1} loss`);
            const ps = model.parameters();
            for (const p of ["a", "b", "c"]) expectAllClose(new RefTensor("f32", ps[p].shape, Float64Array.from(ps[p].data)), ref[s]!.params[p]!, `${target} step ${s + 1} parameter '${p}'`);
          }
        } finally {
          model.dispose();
        }
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

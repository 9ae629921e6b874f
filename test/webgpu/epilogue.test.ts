// Epilogue fusion on the WebGPU target (kernel fused_epilogue of
// compiler/codegen/wgsl/fused.ts, hook compiler/codegen/wgsl/epilogue.ts):
//  * hand-fused graphs (the node the pass builds, made here so each case is
//    exactly the one named): conv + bias (per-channel coordinate) + relu, conv
//    + residual add (either argument order), scaling by a scalar and by a
//    per-sample factor (coordinates derived from the flat index), an exported
//    pre-activation (step 0 as an extra output), dense einsum + add + relu, an
//    einsum on the strided-loop path; each on both kernel variants ("cpu"
//    register tiles, "gpu" workgroup tiles) with the fused result checked
//    against the float64 reference and against the unfused graph on WebGPU;
//  * the generated kernel names the IR nodes it covers and both variants call
//    the epilogue;
//  * pooling epilogues (conv-pool.ts): max and avg windows, floor mode, a
//    partial column segment, symbolic W, groups, conv1d; LeNet-5's forward with
//    both pools absorbed by the pass (stage 2), against the reference;
//  * with the pass (compiler/passes/fuse-epilogue.ts): LeNet-5's training step
//    on both variants, updated parameters fused vs the reference (and vs
//    unfused on WebGPU for the cpu variant). Every dsl-example's forward runs
//    fused on WebGPU in test/webgpu-module.test.ts (the CLI's default passes).

import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { buildTrainingGraph, LR_INPUT, STEP_INPUT } from "../../compiler/autodiff/training.ts";
import { wgslExecutor } from "../../compiler/codegen/wgsl/execute.ts";
import { emitWgslProgram } from "../../compiler/codegen/wgsl/program.ts";
import { compileSource } from "../../compiler/compile.ts";
import { fuseEpilogues } from "../../compiler/passes/fuse-epilogue.ts";
import { initialParams, interpret } from "../../compiler/reference/interpreter.ts";
import { RefTensor } from "../../compiler/reference/tensor.ts";
import { examplesDir, inputsFor } from "../support/modules.ts";
import type { Attrs, Graph, Node, Value } from "../../compiler/ir/graph.ts";
import { verifyGraph } from "../../compiler/ir/verifier.ts";
import type { FusedStep } from "../../compiler/ops/fused.ts";
import { getOp } from "../../compiler/ops/index.ts";
import { replaceUses } from "../../compiler/autodiff/grad-calls.ts";
import { TestModel, randomTensor, type JsArg } from "../support/build.ts";
import { expectAllClose } from "../support/conformance.ts";
import { expectWgslMatchesReference, gpuDevice } from "../support/webgpu.ts";

const VARIANTS = ["cpu", "gpu"] as const;

/**
 * Replaces `base` and its elementwise users `chain` (in graph order) by one
 * fused_epilogue node, as compiler/passes/fuse-epilogue.ts does; `exported`
 * values (the base result or chain values) become extra outputs. Returns the node.
 */
function fuseByHand(g: Graph, base: Node, chain: readonly Node[], exported: readonly Value[] = [], pool?: Node): Node {
  const stepOf = new Map<Value, number>([[base.outputs[0]!, 0]]);
  const steps: FusedStep[] = [{ op: "load", input: 0 }];
  const extra: Value[] = [];
  const argOf = (v: Value) => {
    let s = stepOf.get(v);
    if (s === undefined) {
      extra.push(v);
      steps.push({ op: "load", input: extra.length });
      s = steps.length - 1;
      stepOf.set(v, s);
    }
    return s;
  };
  for (const n of chain) {
    const args = n.inputs.map(argOf);
    steps.push({ op: n.op, args, attrs: n.attrs });
    stepOf.set(n.outputs[0]!, steps.length - 1);
  }
  const sink = chain[chain.length - 1]!.outputs[0]!;
  const outputs = [stepOf.get(sink)!, ...exported.map((v) => stepOf.get(v)!)];
  const covers = [base, ...chain].map((n) => ({ node: n.id, value: n.outputs[0]!.id, op: n.op, label: n.label ?? "" }));
  const poolAttrs = pool ? { pool: { kind: pool.attrs.kind as string, window: pool.attrs.window as number[] } } : {};
  if (pool) covers.push({ node: pool.id, value: pool.outputs[0]!.id, op: pool.op, label: pool.label ?? "" });
  const attrs = { base: base.op, baseAttrs: base.attrs, baseInputs: base.inputs.length, steps, outputs, covers, ...poolAttrs } as unknown as Attrs;
  const inputs = [...base.inputs, ...extra];
  const types = getOp("fused_epilogue").infer(
    inputs.map((v) => v.type),
    attrs,
    {
      fail: (_c, m) => {
        throw new Error(m);
      },
      describeInput: (i) => `input ${i}`,
    },
  );
  const node = g.addNode("fused_epilogue", inputs, attrs, types, { label: base.label });
  g.nodes.pop();
  const last = pool ?? chain[chain.length - 1]!;
  g.nodes.splice(g.nodes.indexOf(last) + 1, 0, node);
  [pool ? pool.outputs[0]! : sink, ...exported].forEach((v, j) => replaceUses(g, v, node.outputs[j]!));
  for (const n of [base, ...chain, ...(pool ? [pool] : [])]) g.nodes.splice(g.nodes.indexOf(n), 1);
  expect(verifyGraph(g)).toEqual([]);
  return node;
}

/** The fused node's WGSL for each adapter class. */
function fusedCode(g: Graph): { cpu: string; gpu: string } {
  const pass = emitWgslProgram(g, g.outputs.map((o) => o.value)).passes.find((p) => p.node.op === "fused_epilogue");
  expect(pass, "a fused_epilogue pass").toBeDefined();
  return { cpu: pass!.code.cpu, gpu: pass!.code.gpu };
}

/**
 * Builds the model twice, fuses one copy with `fuse`, and checks on each kernel
 * variant: the fused graph against the reference (1e-4 relative) and against
 * the unfused graph on WebGPU. Returns the fused kernels' code.
 */
async function checkFused(
  build: () => TestModel,
  fuse: (g: Graph) => void,
  inputs: Record<string, RefTensor>,
  variants: readonly ("cpu" | "gpu")[] = VARIANTS,
): Promise<{ cpu: string; gpu: string }> {
  const unfused = build().graph;
  const fused = build().graph;
  fuse(fused);
  const code = fusedCode(fused);
  for (const cls of variants) {
    expect(code[cls]).toMatch(/\n\/\/ fuses %\d+ /);
    expect(code[cls]).toMatch(/\bepilogue\(u32\(/);
    const got = await expectWgslMatchesReference(fused, inputs, { adapterClass: cls });
    const want = await expectWgslMatchesReference(unfused, inputs, { adapterClass: cls });
    for (const name of Object.keys(want)) expectAllClose(got[name]!, want[name]!, `${cls}: output '${name}' fused vs unfused`);
  }
  return code;
}

const nodeOf = (v: Value) => v.node;

describe("wgsl fused_epilogue over conv", () => {
  it("conv + per-channel bias + relu: the bias read at the filter index the kernel has", async () => {
    let nodes: Node[] = [];
    const build = () => {
      const m = new TestModel();
      const x = m.input("x", "f32", ["N", 3, 9, 10]);
      const b = m.input("b", "f32", [4, 1, 1]);
      const c = m.call("conv2d", [x], { filters: 4, kernel: 3, padding: "same", bias: false }, "c1");
      const s = m.call("add", [c, b], {}, "z");
      const r = m.call("relu", [s], {}, "h");
      m.output("h", r);
      nodes = [c, s, r].map(nodeOf);
      return m;
    };
    const code = await checkFused(build, (g) => fuseByHand(g, nodes[0]!, nodes.slice(1)), { x: randomTensor([2, 3, 9, 10], 1), b: randomTensor([4, 1, 1], 2) });
    // the bias index is the filter coordinate passed by the store site, not a division of the flat index
    for (const cls of VARIANTS) {
      expect(code[cls]).toMatch(/fn epilogue\(i: u32, c1: u32, v: f32\)/);
      expect(code[cls]).toMatch(/let e0 = x\d\[c1\];/);
    }
    expect(code.cpu).toMatch(/register tiles/);
    expect(code.gpu).toMatch(/workgroup tiles/);
  }, 180_000);

  it("conv + residual add + relu, the conv as either argument of the add", async () => {
    for (const convFirst of [true, false]) {
      let nodes: Node[] = [];
      const build = () => {
        const m = new TestModel();
        const x = m.input("x", "f32", ["N", 4, 7, 8]);
        const c = m.call("conv2d", [x], { filters: 4, kernel: 3, padding: "same" }, "c1");
        const s = m.call("add", convFirst ? [c, x] : [x, c], {}, "z");
        const r = m.call("relu", [s], {}, "h");
        m.output("h", r);
        nodes = [c, s, r].map(nodeOf);
        return m;
      };
      const code = await checkFused(build, (g) => fuseByHand(g, nodes[0]!, nodes.slice(1)), { x: randomTensor([2, 4, 7, 8], 3) });
      expect(code.cpu).toMatch(/let e0 = x\d\[i\];/);
    }
  }, 180_000);

  it("scaling by a scalar and by a per-sample factor (coordinates from the flat index)", async () => {
    let nodes: Node[] = [];
    const build = () => {
      const m = new TestModel();
      const x = m.input("x", "f32", ["N", 2, 6, 9]);
      const k = m.input("k", "f32", ["N", 1, 1, 1]);
      const c = m.call("conv2d", [x], { filters: 6, kernel: 3, stride: 2 }, "c1");
      const s = m.call("mul", [c, 0.5], {}, "half");
      const t = m.call("mul", [s, k], {}, "scaled");
      m.output("y", t);
      nodes = [c, s, t].map(nodeOf);
      return m;
    };
    const code = await checkFused(build, (g) => fuseByHand(g, nodes[0]!, nodes.slice(1)), { x: randomTensor([3, 2, 6, 9], 4), k: randomTensor([3, 1, 1, 1], 5) });
    expect(code.cpu).toMatch(/fn epilogue\(i: u32, c0: u32, v: f32\)/);
  }, 180_000);

  it("an exported pre-activation: the raw conv result as a second output", async () => {
    let nodes: Node[] = [];
    const build = () => {
      const m = new TestModel();
      const x = m.input("x", "f32", ["N", 1, 8, 8]);
      const c = m.call("conv2d", [x], { filters: 3, kernel: 5, padding: 2 }, "c1");
      const r = m.call("tanh", [c], {}, "h");
      m.output("h", r);
      m.output("pre", c);
      nodes = [c, r].map(nodeOf);
      return m;
    };
    const code = await checkFused(build, (g) => fuseByHand(g, nodes[0]!, nodes.slice(1), [nodes[0]!.outputs[0]!]), { x: randomTensor([2, 1, 8, 8], 6) });
    expect(code.cpu).toMatch(/y1\[i\] = v;/);
    expect(code.cpu).toMatch(/tanh_stable/);
  }, 180_000);

  it("conv1d with a bias over the channel axis of [N, C, L]", async () => {
    let nodes: Node[] = [];
    const build = () => {
      const m = new TestModel();
      const x = m.input("x", "f32", ["N", 2, "L"]);
      const b = m.input("b", "f32", [5, 1]);
      const c = m.call("conv1d", [x], { filters: 5, kernel: 3, bias: false }, "c1");
      const s = m.call("sub", [b, c], {}, "z");
      const h = m.call("sigmoid", [s], {}, "h");
      m.output("h", h);
      nodes = [c, s, h].map(nodeOf);
      return m;
    };
    await checkFused(build, (g) => fuseByHand(g, nodes[0]!, nodes.slice(1)), { x: randomTensor([2, 2, 13], 7), b: randomTensor([5, 1], 8) });
  }, 180_000);
});

describe("wgsl fused_epilogue over einsum", () => {
  it("dense + bias add + relu on the GEMM kernels (both forms)", async () => {
    let nodes: Node[] = [];
    const build = () => {
      const m = new TestModel();
      const x = m.input("x", "f32", ["N", 12]);
      const b = m.input("b", "f32", [6]);
      const d = m.call("dense", [x, 6], { bias: false }, "f1");
      const s = m.call("add", [d, b], {}, "z");
      const r = m.call("relu", [s], {}, "h");
      m.output("h", r);
      nodes = [d, s, r].map(nodeOf);
      return m;
    };
    const code = await checkFused(build, (g) => fuseByHand(g, nodes[0]!, nodes.slice(1)), { x: randomTensor([5, 12], 9), b: randomTensor([6], 10) });
    for (const cls of VARIANTS) expect(code[cls]).toMatch(/fn epilogue\(i: u32, c1: u32, v: f32\)/);
    expect(code.cpu).toMatch(/GEMM \(register tile\)/);
    expect(code.gpu).toMatch(/GEMM \(shared-memory tiles\)/);
  }, 180_000);

  it("dense over [N, L, in] (merged rows) + a residual and a per-feature scale", async () => {
    let nodes: Node[] = [];
    const build = () => {
      const m = new TestModel();
      const x = m.input("x", "f32", ["N", 3, 8]);
      const g = m.input("g", "f32", [8]);
      const d = m.call("dense", [x, 8], { bias: false }, "f1");
      const s = m.call("add", [x, d], {}, "res");
      const t = m.call("mul", [s, g], {}, "scaled");
      m.output("y", t);
      nodes = [d, s, t].map(nodeOf);
      return m;
    };
    await checkFused(build, (g) => fuseByHand(g, nodes[0]!, nodes.slice(1)), { x: randomTensor([2, 3, 8], 11), g: randomTensor([8], 12) });
  }, 180_000);

  it("an einsum on the strided loop path (a row sum) + bias + relu", async () => {
    let nodes: Node[] = [];
    const build = () => {
      const m = new TestModel();
      const x = m.input("x", "f32", ["N", 5, 7]);
      const b = m.input("b", "f32", [5]);
      const e = m.call("einsum", ["nij->ni", x], {}, "rows");
      const s = m.call("add", [e, b], {}, "z");
      const r = m.call("relu", [s], {}, "h");
      m.output("h", r);
      nodes = [e, s, r].map(nodeOf);
      return m;
    };
    const code = await checkFused(build, (g) => fuseByHand(g, nodes[0]!, nodes.slice(1)), { x: randomTensor([3, 5, 7], 13), b: randomTensor([5], 14) }, ["cpu"]);
    expect(code.cpu).toMatch(/loop nest/);
  }, 180_000);
});

describe("wgsl fused_epilogue from the pass: LeNet-5's training step", () => {
  const f32 = (t: RefTensor) => (t.dtype === "f32" ? t.map((v) => Math.fround(v)) : t);

  /** The training graph with every parameter update as an output. */
  function training(): Graph {
    const r = compileSource(readFileSync(join(examplesDir, "lenet5.cnn"), "utf8"), "lenet5.cnn");
    expect(r.diagnostics).toEqual([]);
    const t = buildTrainingGraph(r.graphs[0]!)!.graph;
    t.nodes.forEach((n, i) => {
      if (n.op === "sgd_update" || n.op === "adam_update") t.outputs.push({ name: `update ${i} ${n.label ?? ""}`, value: n.outputs[0]!, kind: "output" });
    });
    return t;
  }

  async function run(g: Graph, cls: "cpu" | "gpu", feeds: Record<string, RefTensor>, params: Record<string, RefTensor>): Promise<Record<string, RefTensor>> {
    const { device } = await gpuDevice();
    const ex = await wgslExecutor(g, device, cls, params);
    try {
      return await ex.run(feeds);
    } finally {
      ex.dispose();
    }
  }

  for (const cls of VARIANTS) {
    it(`updated parameters, fused vs the reference${cls === "cpu" ? " and vs unfused" : ""} (${cls} kernels)`, async () => {
      const unfused = training();
      const fused = training();
      expect(fuseEpilogues(fused)).toBeGreaterThan(0);
      expect(verifyGraph(fused)).toEqual([]);
      const epilogues = fused.nodes.filter((n) => n.op === "fused_epilogue");
      // the convolutions' pre-activations, read by relu's gradient, are stored as second outputs
      expect(epilogues.filter((n) => (n.attrs.base as string) === "conv" && n.outputs.length === 2).length).toBeGreaterThan(0);
      const params = Object.fromEntries(Object.entries(initialParams(unfused, 0)).map(([k, t]) => [k, f32(t)]));
      const inputs = Object.fromEntries(Object.entries(inputsFor(unfused, { N: 2 })).map(([k, t]) => [k, f32(t)]));
      const feeds = { ...inputs, [LR_INPUT]: RefTensor.scalar(0.05), [STEP_INPUT]: RefTensor.scalar(1) };
      const want = interpret(unfused, feeds, params, { training: true, seed: 1 }).outputs;
      const got = await run(fused, cls, feeds, params);
      // lavapipe compiles each pipeline at first use: the unfused graph runs on one variant only
      const base = cls === "cpu" ? await run(unfused, cls, feeds, params) : undefined;
      const updates = Object.keys(want).filter((k) => k.startsWith("update "));
      expect(updates.length).toBeGreaterThan(0);
      for (const name of Object.keys(want)) {
        if (base) expectAllClose(got[name]!, base[name]!, `${cls}: '${name}' fused vs unfused`);
        expectAllClose(got[name]!, want[name]!, `${cls}: '${name}' fused vs reference`);
      }
    }, 300_000);
  }
});

describe("wgsl fused_epilogue with a pool (conv + epilogue + non-overlapping pool in one kernel)", () => {
  const cases: { name: string; pool: string; shape: number[]; symbolic?: boolean; kw: Record<string, JsArg> & { filters: number }; window?: number }[] = [
    { name: "conv2d + bias + relu + 2×2 max pool, odd sizes (floor mode drops the last row), a partial column segment", pool: "maxpool2d", shape: [2, 3, 11, 16], kw: { filters: 4, kernel: 3 } },
    { name: "conv2d (padding, stride 2) + bias + tanh + 3×3 avg pool, symbolic W", pool: "avgpool2d", shape: [2, 2, 14, 13], symbolic: true, kw: { filters: 4, kernel: 3, padding: 1, stride: 2 }, window: 3 },
    { name: "conv2d + bias + relu + 2×2 max pool, 6 filters (blocks of 3), 5×5 kernel with padding 2", pool: "maxpool2d", shape: [2, 1, 12, 12], kw: { filters: 6, kernel: 5, padding: 2 } },
    { name: "conv1d, 2 groups, + bias + relu + max pool 2", pool: "maxpool1d", shape: [2, 4, 12], kw: { filters: 6, kernel: 3, groups: 2 } },
  ];
  for (const k of cases) {
    it(k.name, async () => {
      let nodes: Node[] = [];
      const build = () => {
        const m = new TestModel();
        const x = m.input("x", "f32", ["N", ...k.shape.slice(1, -1), k.symbolic ? "W" : k.shape.at(-1)!]);
        const conv = k.pool.endsWith("1d") ? "conv1d" : "conv2d";
        const cv = m.call(conv, [x], { ...k.kw, bias: false }, "c1");
        const b = m.input("b", "f32", [k.kw.filters, ...k.shape.slice(2).map(() => 1)]);
        const s = m.call("add", [cv, b], {}, "z");
        const r = m.call(k.pool.startsWith("avg") ? "tanh" : "relu", [s], {}, "h");
        const p = m.call(k.pool, [r], { window: k.window ?? 2 }, "p1");
        m.output("p", p);
        nodes = [cv, s, r, p].map(nodeOf);
        return m;
      };
      const inputs = { x: randomTensor(k.shape, 21), b: randomTensor([k.kw.filters, ...k.shape.slice(2).map(() => 1)], 22) };
      // one form for both adapter classes: run once
      const code = await checkFused(build, (g) => fuseByHand(g, nodes[0]!, nodes.slice(1, 3), [], nodes[3]), inputs, ["cpu"]);
      expect(code.gpu).toBe(code.cpu);
      expect(code.cpu).toMatch(/pool .*register tiles of/);
      expect(code.cpu).toMatch(/-> f32 \{/);
      expect(code.cpu).not.toMatch(/y1/);
    }, 180_000);
  }
});

describe("wgsl fused_epilogue with a pool, from the pass (stage 2)", () => {
  it("a pool straight after a conv (no elementwise step between), against the reference (both classes)", async () => {
    const r = compileSource("model P {\n  input x: f32[N, 2, 8, 8]\n  output y = maxpool2d(conv2d(x, filters=3, kernel=3, padding=1), window=2)\n}\n", "p.cnn");
    const g = r.graphs[0]!;
    fuseEpilogues(g, { pool: true });
    expect(verifyGraph(g)).toEqual([]);
    expect(g.nodes.filter((n) => n.op === "fused_epilogue" && n.attrs.pool !== undefined).length).toBe(1);
    const inputs = Object.fromEntries(Object.entries(inputsFor(g, { N: 2 })).map(([k, t]) => [k, t.map((v) => Math.fround(v))]));
    for (const cls of VARIANTS) await expectWgslMatchesReference(g, inputs, { adapterClass: cls });
  }, 300_000);

  it("LeNet-5 forward: conv + relu + max pool twice as pooled epilogues, against the reference (both classes)", async () => {
    const r = compileSource(readFileSync(join(examplesDir, "lenet5.cnn"), "utf8"), "lenet5.cnn");
    const g = r.graphs[0]!;
    fuseEpilogues(g, { pool: true });
    expect(verifyGraph(g)).toEqual([]);
    expect(g.nodes.filter((n) => n.op === "fused_epilogue" && n.attrs.pool !== undefined).length).toBe(2);
    expect(g.nodes.some((n) => n.op === "pool")).toBe(false);
    const inputs = Object.fromEntries(Object.entries(inputsFor(g, { N: 3 })).map(([k, t]) => [k, t.map((v) => Math.fround(v))]));
    for (const cls of VARIANTS) await expectWgslMatchesReference(g, inputs, { adapterClass: cls });
  }, 300_000);
});

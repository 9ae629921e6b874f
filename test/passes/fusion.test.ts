// Fusion of elementwise chains (compiler/passes/fuse-elementwise.ts, op
// fused_elementwise in compiler/ops/fused.ts, kernels in codegen/{js,wgsl}/fused.ts):
//  * kernel counts of LeNet-5, forward and training step, fused vs unfused;
//  * every dsl-example: the float64 reference gives identical outputs fused and
//    unfused, and the JS and WebGPU targets give the same outputs fused and
//    unfused (1e-4 relative); the training graphs' gradients and updates agree
//    fused vs unfused on JS (every example) and WebGPU (LeNet-5);
//  * hand-written chains against the reference on both targets: broadcasting
//    (a [C, 1, 1] bias over [N, C, H, W], scalars), i32 chains that wrap,
//    where/clip/cast, an intermediate also used outside (an extra output), a
//    would-be cycle, the storage-buffer cap;
//  * the generated kernels name the IR nodes they cover.

import { describe, expect, it } from "vitest";
import { buildTrainingGraph, LR_INPUT, STEP_INPUT } from "../../compiler/autodiff/training.ts";
import { jsExecutor } from "../../compiler/codegen/js/execute.ts";
import { emitProgram } from "../../compiler/codegen/js/program.ts";
import { emitModule } from "../../compiler/codegen/module.ts";
import { wgslExecutor } from "../../compiler/codegen/wgsl/execute.ts";
import { emitWgslProgram } from "../../compiler/codegen/wgsl/program.ts";
import type { Graph } from "../../compiler/ir/graph.ts";
import { printGraph } from "../../compiler/ir/printer.ts";
import { verifyGraph } from "../../compiler/ir/verifier.ts";
import type { FusedAttrs } from "../../compiler/ops/fused.ts";
import { fuseElementwise, fuseElementwisePass, MAX_BUFFERS } from "../../compiler/passes/fuse-elementwise.ts";
import { PASSES } from "../../compiler/passes/pipeline.ts";
import { bindSymbols, interpret } from "../../compiler/reference/interpreter.ts";
import { RefTensor } from "../../compiler/reference/tensor.ts";
import { randomTensor } from "../support/build.ts";
import { expectAllClose, expectJsMatchesReference } from "../support/conformance.ts";
import { compileExample, compileModel, examples, f32, f32Params, inputsFor, trainingWithGradients } from "../support/modules.ts";
import { expectWgslMatchesReference, gpuDevice } from "../support/webgpu.ts";

const compile = compileModel;
const example = compileExample;

/** A fused copy of `g` (this pass alone), verified. */
function fused(g: Graph): Graph {
  const f = g.clone();
  fuseElementwise(f);
  expect(verifyGraph(f)).toEqual([]);
  return f;
}

const fusedNodes = (g: Graph) => g.nodes.filter((n) => n.op === "fused_elementwise");

/** Small sizes: the float64 reference is slow on inception at 16×16. */
const SMALL = { N: 2, L: 5, H: 8, W: 8 };

function trainingFeeds(g: Graph): Record<string, RefTensor> {
  return { ...f32(inputsFor(g, SMALL)), [LR_INPUT]: RefTensor.scalar(0.05), [STEP_INPUT]: RefTensor.scalar(1) };
}

function expectSame(a: Record<string, RefTensor>, b: Record<string, RefTensor>, what: string): void {
  expect(Object.keys(b).sort()).toEqual(Object.keys(a).sort());
  for (const [name, want] of Object.entries(a)) expectAllClose(b[name]!, want, `${what} '${name}'`, 1e-4, 1e-5);
}

function runJs(g: Graph, inputs: Record<string, RefTensor>, training = false): Record<string, RefTensor> {
  const symbols = Object.fromEntries(bindSymbols(g, inputs));
  return jsExecutor(g).run(inputs, f32Params(g), { training, seed: 1, symbols });
}

async function runGpu(g: Graph, inputs: Record<string, RefTensor>): Promise<Record<string, RefTensor>> {
  const { device, adapterClass } = await gpuDevice();
  const ex = await wgslExecutor(g, device, adapterClass, f32Params(g));
  try {
    return await ex.run(inputs);
  } finally {
    ex.dispose();
  }
}

// ---------------------------------------------------------------- kernel counts

describe("kernel counts of LeNet-5", () => {
  const g = example("lenet5.cnn");
  const trainCount = (tg: Graph) => emitProgram(tg, [...tg.outputs.filter((o) => o.kind === "loss").map((o) => o.value), ...tg.bufferUpdates.map((u) => u.value)]).kernelCount;

  it("forward: 16 unfused, 14 fused (bias + relu of f5 and f6)", () => {
    const unfused = emitProgram(g).kernelCount;
    const fusedCount = emitProgram(fused(g)).kernelCount;
    console.log(`LeNet-5 kernels per forward: unfused ${unfused}, fused ${fusedCount}`);
    expect(fusedCount).toBeLessThan(unfused);
    expect([unfused, fusedCount]).toEqual([16, 14]);
  });

  it("training step: 46 unfused, 44 fused (bias + relu with the pre-activation as a second output)", () => {
    const t = buildTrainingGraph(g)!.graph;
    const unfused = trainCount(t);
    const f = fused(t);
    const fusedCount = trainCount(f);
    console.log(`LeNet-5 kernels per training step: unfused ${unfused}, fused ${fusedCount}`);
    expect(fusedCount).toBeLessThan(unfused);
    expect([unfused, fusedCount]).toEqual([46, 44]);
    // The pre-activation is read by relu's gradient: it is the fused node's second output.
    expect(fusedNodes(f).map((n) => n.outputs.length)).toEqual([2, 2]);
  });

  it("the emitted module: --passes=all launches fewer kernels than --passes=none, and only it has fused kernels", () => {
    const none = emitModule(g, { target: "js", runtime: "import", passes: "none" });
    const all = emitModule(g, { target: "js", runtime: "import", passes: "all" });
    console.log(`LeNet-5 module kernels: run ${none.kernelCount} -> ${all.kernelCount}, train step ${none.trainKernelCount} -> ${all.trainKernelCount}`);
    expect(all.kernelCount).toBeLessThan(none.kernelCount);
    expect(all.trainKernelCount!).toBeLessThan(none.trainKernelCount!);
    expect(none.js).not.toContain("fused_elementwise");
    // f5's bias and relu are an epilogue of its einsum (compiler/passes/fuse-epilogue.ts, before this pass).
    expect(all.js).toContain("// fuses %14 einsum (f5), %16 add (f5), %17 relu (f5)");
  });

  it("is registered as the last rewriting pass of the pipeline (only the node order is changed after it)", () => {
    expect(PASSES.filter((p) => p.name !== "schedule").at(-1)).toBe(fuseElementwisePass);
  });
});

// ---------------------------------------------------------------- every dsl-example

describe("every dsl-example, fused vs unfused", () => {
  let total = 0;
  for (const file of examples) {
    it(`${file}: reference identical, JS and WebGPU agree (forward)`, async () => {
      const g = example(file);
      const f = fused(g);
      total += fusedNodes(f).length;
      // Nothing to fuse (inception: every activation follows a convolution): the graph is untouched.
      if (fusedNodes(f).length === 0) return void expect(printGraph(f)).toBe(printGraph(g));
      const inputs = f32(inputsFor(g, SMALL));
      const params = f32Params(g);
      const refU = interpret(g, inputs, params).outputs;
      const refF = interpret(f, inputs, params).outputs;
      for (const [name, t] of Object.entries(refU)) expect(Array.from(refF[name]!.data), `reference '${name}'`).toEqual(Array.from(t.data));
      expectSame(runJs(g, inputs), runJs(f, inputs), "JS fused vs unfused, output");
      expectSame(await runGpu(g, inputs), await runGpu(f, inputs), "WebGPU fused vs unfused, output");
    }, 120_000);
  }
  it("fuses something in the examples", () => {
    expect(total).toBeGreaterThan(0);
  });

  // WebGPU training graphs compile ~100 pipelines each on lavapipe (minutes for unet): LeNet-5 stands for them there.
  const gpuTraining = new Set(["lenet5.cnn"]);
  for (const file of examples) {
    it(`${file}: training graph gradients and updates agree (JS${gpuTraining.has(file) ? " and WebGPU" : ""})`, async () => {
      const g = example(file);
      if (!g.outputs.some((o) => o.kind === "loss")) return;
      const t = trainingWithGradients(g);
      const f = fused(t);
      if (fusedNodes(f).length === 0) return void expect(printGraph(f)).toBe(printGraph(t));
      const feeds = trainingFeeds(g);
      expectSame(runJs(t, feeds, true), runJs(f, feeds, true), "JS training, fused vs unfused:");
      if (gpuTraining.has(file)) expectSame(await runGpu(t, feeds), await runGpu(f, feeds), "WebGPU training, fused vs unfused:");
    }, 120_000);
  }
});

// ---------------------------------------------------------------- hand-written chains

/** Fuses, checks the fused node count, the reference (identical) and both targets against it. */
async function check(source: string, inputs: Record<string, RefTensor>, expectFused: number): Promise<Graph> {
  const g = compile(source);
  const f = fused(g);
  expect(fusedNodes(f).length).toBe(expectFused);
  const params = f32Params(g);
  const feeds = f32(inputs);
  const refU = interpret(g, feeds, params).outputs;
  const refF = interpret(f, feeds, params).outputs;
  for (const [name, t] of Object.entries(refU)) expect(Array.from(refF[name]!.data), `reference '${name}'`).toEqual(Array.from(t.data));
  expectJsMatchesReference(f, inputs);
  await expectWgslMatchesReference(f, inputs);
  return f;
}

describe("chains", () => {
  it("broadcasting: a [C, 1, 1] bias over [N, C, H, W], scalars, a [W] row", async () => {
    const f = await check(
      `model B {
        input x: f32[N, 3, 4, 5]
        input r: f32[5]
        param bias: f32[3, 1, 1] = uniform(-1, 1)
        output y = relu(x + bias) * 0.5 - r / 3
      }`,
      { x: randomTensor([2, 3, 4, 5], 1), r: randomTensor([5], 2) },
      1,
    );
    const n = fusedNodes(f)[0]!;
    expect((n.attrs as FusedAttrs).covers.map((c) => c.op)).toEqual(["add", "relu", "mul", "div", "sub"]);
    // x, bias, the two scalar constants and r: each read with its own shape.
    expect(n.inputs.map((v) => v.type.shape.map(String))).toEqual([["N", "3", "4", "5"], ["3", "1", "1"], [], ["5"], []]);
  });

  it("an interior value of a smaller shape is recomputed per element (exp of a bias)", async () => {
    await check(
      `model S {
        input x: f32[N, 4]
        param b: f32[4] = uniform(-1, 1)
        output y = x * exp(b) + sigmoid(b)
      }`,
      { x: randomTensor([3, 4], 3) },
      1,
    );
  });

  it("i32 chains wrap like int32 (add, mul, neg, abs, maximum, clip) and cast both ways", async () => {
    const big = RefTensor.from([2147483000, -2147483000, 123456789, -5, 0, 2147483647, -2147483648, 77], [2, 4], "i32");
    const f = await check(
      `model I {
        input a: i32[N, 4]
        input b: i32[4]
        input x: f32[N, 4]
        s = clip(maximum(abs(neg(mul(add(a, b), 65599))), 3), lo=-1000000, hi=2000000000)
        output y = cast(s, dtype="f32") * x + cast(cast(x * 1000, dtype="i32"), dtype="f32")
        output k = sub(add(a, 7), b)
      }`,
      { a: big, b: RefTensor.from([1000, 2000, -3000, 2147483647], [4], "i32"), x: randomTensor([2, 4], 4) },
      2,
    );
    expect(fusedNodes(f).map((n) => n.outputs[0]!.type.dtype).sort()).toEqual(["f32", "i32"]);
  });

  it("where with a mask input and a cast condition, clip, exp, sigmoid", async () => {
    const mask = RefTensor.from([1, 0, 0, 1, 1, 0, 1, 1, 0, 0, 0, 1], [2, 6], "bool");
    await check(
      `model W {
        input x: f32[N, 6]
        input m: bool[N, 6]
        input z: f32[6]
        a = where(m, clip(x * 2, lo=-0.5, hi=0.7), sigmoid(z)) + exp(x)
        output y = where(cast(relu(x), dtype="bool"), a, 0 - a)
      }`,
      { x: randomTensor([2, 6], 5), m: mask, z: randomTensor([6], 6) },
      1,
    );
  });

  it("an intermediate also used outside the chain becomes a second output (graph output and reduce user)", async () => {
    const f = await check(
      `model M {
        input x: f32[N, 5]
        input b: f32[5]
        h = x + b
        output t = sum(h)
        output hh = h
        output y = tanh(h) * 2
      }`,
      { x: randomTensor([3, 5], 7), b: randomTensor([5], 8) },
      1,
    );
    const n = fusedNodes(f)[0]!;
    expect(n.outputs.length).toBe(2);
    expect(f.output("hh")!.value).toBe(n.outputs[1]);
  });

  it("no cycle: a value whose outside user feeds the chain back stays out of the group", async () => {
    const f = await check(
      `model C {
        input x: f32[N, 5]
        input b: f32[5]
        h = x + b
        s = sum(h, axis=1, keepdims=true)
        output y = relu(h) - s
      }`,
      { x: randomTensor([3, 5], 9), b: randomTensor([5], 10) },
      1,
    );
    expect((fusedNodes(f)[0]!.attrs as FusedAttrs).covers.map((c) => c.op)).toEqual(["relu", "sub"]);
  });

  it(`a chain over many inputs is split to stay within ${MAX_BUFFERS} storage buffers per kernel`, async () => {
    const names = Array.from({ length: 10 }, (_, i) => `x${i}`);
    const f = await check(
      `model Many {
        ${names.map((n) => `input ${n}: f32[N, 3]`).join("\n        ")}
        output y = ${names.join(" * ")}
      }`,
      Object.fromEntries(names.map((n, i) => [n, randomTensor([2, 3], 20 + i)])),
      2,
    );
    for (const n of fusedNodes(f)) expect(n.inputs.length + n.outputs.length).toBeLessThanOrEqual(MAX_BUFFERS);
  });

  it("a singleton is left alone; values feeding a non-elementwise op end chains", () => {
    const g = compile(`model One {
      input x: f32[N, 4]
      output y = softmax(relu(x), axis=-1)
    }`);
    expect(fusedNodes(fused(g)).length).toBe(0);
  });
});

// ---------------------------------------------------------------- generated code

describe("generated kernels name the IR nodes they cover", () => {
  it("JS and WGSL (two gelus in one kernel, checked against the reference)", async () => {
    const f = await check(
      `model K {
        input x: f32[N, 3, 2, 2]
        param bias: f32[3, 1, 1] = uniform(-1, 1)
        output y = gelu(x + bias) * gelu(x)
      }`,
      { x: randomTensor([2, 3, 2, 2], 30, -3, 3) },
      1,
    );
    const n = fusedNodes(f)[0]!;
    const ids = (n.attrs as FusedAttrs).covers.map((c) => `%${c.value} ${c.op} (y)`).join(", ");
    expect(ids).toMatch(/^%\d+ add \(y\), %\d+ gelu \(y\), %\d+ gelu \(y\), %\d+ mul \(y\)$/);
    const js = emitProgram(f).kernels.join("\n");
    expect(js).toContain(`// fuses ${ids}`);
    const wgsl = emitWgslProgram(f, f.outputs.map((o) => o.value)).passes.map((p) => p.code.cpu).join("\n");
    expect(wgsl).toContain(`// fuses ${ids}`);
    // Two gelus in one kernel: their locals live in blocks of their own.
    expect(js.match(/const z = /g)?.length).toBe(2);
  });
});

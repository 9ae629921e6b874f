// Epilogue fusion (compiler/passes/fuse-epilogue.ts, op fused_epilogue in
// compiler/ops/fused.ts, JS kernel in compiler/codegen/js/{fused,epilogue}.ts):
//  * grouping: conv + bias add + relu, dense (einsum + add) + relu, a residual
//    add reading the conv as its second operand, scaling by a constant, the
//    pre-activation a training graph's backward reads stored as an extra
//    output, an activation gradient on an einsum's result; refusals: a cycle,
//    the storage-buffer cap, an operand the result would broadcast to;
//  * every dsl-example, forward and training graph: the float64 reference
//    gives the same results before and after the pass (1e-9), and the JS
//    executor fused agrees with unfused and with the reference (1e-4 relative);
//  * kernel counts of LeNet-5, forward and training step, fused vs unfused;
//  * the generated kernels name the IR nodes they cover; bias per channel
//    reads the filter index the conv kernel knows, no division per element.

import { describe, expect, it } from "vitest";
import { buildTrainingGraph, LR_INPUT, STEP_INPUT } from "../../compiler/autodiff/training.ts";
import { jsExecutor } from "../../compiler/codegen/js/execute.ts";
import { emitProgram } from "../../compiler/codegen/js/program.ts";
import { emitModule } from "../../compiler/codegen/module.ts";
import type { Graph, Node } from "../../compiler/ir/graph.ts";
import { verifyGraph } from "../../compiler/ir/verifier.ts";
import type { EpilogueAttrs } from "../../compiler/ops/fused.ts";
import { fuseElementwise, MAX_BUFFERS } from "../../compiler/passes/fuse-elementwise.ts";
import { fuseEpiloguePass, fuseEpilogues, POOL_EPILOGUE } from "../../compiler/passes/fuse-epilogue.ts";
import { PASSES } from "../../compiler/passes/pipeline.ts";
import { bindSymbols, interpret } from "../../compiler/reference/interpreter.ts";
import { RefTensor } from "../../compiler/reference/tensor.ts";
import { randomTensor } from "../support/build.ts";
import { expectAllClose, expectJsMatchesReference } from "../support/conformance.ts";
import { compileExample, compileModel, examples, f32, f32Params, inputsFor, trainingWithGradients } from "../support/modules.ts";

const compile = compileModel;
const example = compileExample;

/** A copy of `g` with this pass alone applied, verified. */
function fused(g: Graph): Graph {
  const f = g.clone();
  fuseEpilogues(f);
  expect(verifyGraph(f)).toEqual([]);
  return f;
}

const epilogues = (g: Graph) => g.nodes.filter((n) => n.op === "fused_epilogue");
const attrsOf = (n: Node) => n.attrs as unknown as EpilogueAttrs;
const coveredOps = (n: Node) => attrsOf(n).covers.map((c) => c.op);

/** Lets the test worker report between long synchronous phases (the reference on inception takes seconds). */
const tick = () => new Promise<void>((resolve) => setImmediate(resolve));

/** Small sizes: the float64 reference is slow on inception at 16×16. */
const SMALL = { N: 2, L: 5, H: 8, W: 8 };

function runJs(g: Graph, inputs: Record<string, RefTensor>, training = false): Record<string, RefTensor> {
  const symbols = Object.fromEntries(bindSymbols(g, inputs));
  return jsExecutor(g).run(inputs, f32Params(g), { training, seed: 1, symbols });
}

function expectSame(want: Record<string, RefTensor>, got: Record<string, RefTensor>, what: string, rtol = 1e-4, atol = 1e-5): void {
  expect(Object.keys(got).sort()).toEqual(Object.keys(want).sort());
  for (const [name, t] of Object.entries(want)) expectAllClose(got[name]!, t, `${what} '${name}'`, rtol, atol);
}

/** Fuses `source`'s graph, checks the epilogue count, the reference before/after and the JS target against it. */
function check(source: string, inputs: Record<string, RefTensor>, expectFused: number): Graph {
  const g = compile(source);
  const f = fused(g);
  expect(epilogues(f).length).toBe(expectFused);
  const params = f32Params(g);
  const feeds = f32(inputs);
  expectSame(interpret(g, feeds, params).outputs, interpret(f, feeds, params).outputs, "reference fused vs unfused:", 1e-9, 1e-12);
  expectJsMatchesReference(f, inputs);
  return f;
}

// ---------------------------------------------------------------- grouping

describe("grouping", () => {
  it("conv + bias add + relu: one node over [x, w, bias] whose program adds and activates", () => {
    const f = check(
      `model C {
        input x: f32[N, 2, 6, 6]
        param b: f32[3, 1, 1] = uniform(-1, 1)
        output y = relu(conv2d(x, filters=3, kernel=3, bias=false) + b)
      }`,
      { x: randomTensor([2, 2, 6, 6], 1) },
      1,
    );
    const n = epilogues(f)[0]!;
    expect(coveredOps(n)).toEqual(["conv", "add", "relu"]);
    expect(attrsOf(n).base).toBe("conv");
    expect(attrsOf(n).baseInputs).toBe(2);
    expect(n.inputs.map((v) => v.type.shape.map(String))).toEqual([["N", "2", "6", "6"], ["3", "2", "3", "3"], ["3", "1", "1"]]);
    expect(f.nodes.some((m) => m.op === "conv" || m.op === "relu" || m.op === "add")).toBe(false);
  });

  it("dense (einsum + add bias) + relu, and a chain of two dense layers", () => {
    const f = check(
      `model D {
        input x: f32[N, 7]
        h = dense(x, 5) |> relu
        output y = dense(h, 3) |> tanh
      }`,
      { x: randomTensor([3, 7], 2) },
      2,
    );
    expect(epilogues(f).map(coveredOps)).toEqual([
      ["einsum", "add", "relu"],
      ["einsum", "add", "tanh"],
    ]);
    // The second layer reads the first's fused result.
    expect(epilogues(f)[1]!.inputs[0]!.node).toBe(epilogues(f)[0]);
  });

  it("residual add: the conv may be any operand (add(x, conv)), and the activation after it", () => {
    const f = check(
      `model R {
        input x: f32[N, 3, 5, 5]
        c = conv2d(x, filters=3, kernel=3, padding=1)
        output y = relu(x + c)
      }`,
      { x: randomTensor([2, 3, 5, 5], 3) },
      1,
    );
    const n = epilogues(f)[0]!;
    expect(coveredOps(n)).toEqual(["conv", "add", "relu"]);
    // x is both the conv's input and the residual: read twice, once as each.
    expect(n.inputs.length).toBe(4);
    expect(n.inputs[3]).toBe(n.inputs[0]);
    const add = attrsOf(n).steps[2]!;
    expect(add).toEqual({ op: "add", args: [1, 0] });
  });

  it("scaling by a constant (matmul * 0.5, then minus a row)", () => {
    const f = check(
      `model S {
        input a: f32[N, 4]
        input b: f32[4, 6]
        input r: f32[6]
        output y = (a @ b) * 0.5 - r
      }`,
      { a: randomTensor([3, 4], 4), b: randomTensor([4, 6], 5), r: randomTensor([6], 6) },
      1,
    );
    expect(coveredOps(epilogues(f)[0]!)).toEqual(["einsum", "mul", "sub"]);
  });

  it("a training graph: the pre-activation the backward reads is stored as a second output (step 0 of a conv with bias)", () => {
    const g = compile(`model T {
      input x: f32[N, 1, 6, 6]
      input labels: i32[N]
      c = conv2d(x, filters=2, kernel=3) |> relu
      logits = dense(flatten(c), 3)
      loss l = cross_entropy(logits, labels)
      optimizer sgd(lr=0.1)
    }`);
    const t = buildTrainingGraph(g)!.graph;
    const f = fused(t);
    const conv = epilogues(f).find((n) => attrsOf(n).base === "conv")!;
    expect(coveredOps(conv)).toEqual(["conv", "relu"]);
    // relu's output, then the raw conv result (unary_grad reads it).
    expect(attrsOf(conv).outputs).toEqual([1, 0]);
    expect(conv.outputs.length).toBe(2);
    const reluGrad = f.nodes.find((n) => n.op === "unary_grad")!;
    expect(reluGrad.inputs).toContain(conv.outputs[1]);
    // The logits' weight-gradient einsum carries no epilogue; the relu gradient's dy is an einsum result (dx of the dense).
    const onGradient = epilogues(f).find((n) => coveredOps(n).includes("unary_grad"));
    expect(onGradient === undefined || attrsOf(onGradient).base === "einsum").toBe(true);
    const feeds = { ...f32({ x: randomTensor([2, 1, 6, 6], 7) }), labels: RefTensor.from([0, 2], [2], "i32"), [LR_INPUT]: RefTensor.scalar(0.1), [STEP_INPUT]: RefTensor.scalar(1) };
    const params = f32Params(t);
    expectSame(interpret(t, feeds, params, { training: true }).outputs, interpret(f, feeds, params, { training: true }).outputs, "reference:", 1e-9, 1e-12);
    expectSame(runJs(t, feeds, true), runJs(f, feeds, true), "JS training:");
  });

  it("an activation gradient on an einsum's result: unary_grad(relu, x, y, dy) with dy = dx of the next dense", () => {
    const g = compile(`model G {
      input x: f32[N, 6]
      input labels: i32[N]
      h = dense(x, 5) |> relu
      loss l = cross_entropy(dense(h, 3), labels)
      optimizer sgd(lr=0.1)
    }`);
    const t = trainingWithGradients(g);
    const f = fused(t);
    const grad = epilogues(f).find((n) => coveredOps(n).includes("unary_grad"))!;
    expect(attrsOf(grad).base).toBe("einsum");
    // dy is the base result, unary_grad's third operand.
    const step = attrsOf(grad).steps.find((s) => s.op === "unary_grad") as { args: readonly number[] };
    expect(step.args[2]).toBe(0);
    const feeds = { ...f32({ x: randomTensor([3, 6], 8) }), labels: RefTensor.from([0, 2, 1], [3], "i32"), [LR_INPUT]: RefTensor.scalar(0.1), [STEP_INPUT]: RefTensor.scalar(1) };
    expectSame(runJs(t, feeds, true), runJs(f, feeds, true), "JS training:");
    expectJsMatchesReference(f, feeds, { training: true, seed: 1 });
  });

  it("refuses a cycle: a user also reading a value computed outside from the base result", () => {
    const f = check(
      `model Cy {
        input x: f32[N, 5]
        h = dense(x, 4)
        s = sum(h, axis=1, keepdims=true)
        output y = relu(h) - s
      }`,
      { x: randomTensor([3, 5], 9) },
      1,
    );
    const n = epilogues(f)[0]!;
    // add (bias) and relu join; sub reads s = sum(h): h is stored for it, sub stays out.
    expect(coveredOps(n)).toEqual(["einsum", "add", "relu"]);
    expect(n.outputs.length).toBe(2);
    expect(f.nodes.some((m) => m.op === "sub")).toBe(true);
  });

  it(`refuses members beyond ${MAX_BUFFERS} storage buffers per kernel`, () => {
    const names = Array.from({ length: 8 }, (_, i) => `r${i}`);
    const f = check(
      `model Many {
        input x: f32[N, 3]
        input w: f32[3, 3]
        ${names.map((n) => `input ${n}: f32[N, 3]`).join("\n        ")}
        output y = (x @ w) + ${names.join(" + ")}
      }`,
      Object.fromEntries([["x", randomTensor([2, 3], 10)], ["w", randomTensor([3, 3], 11)], ...names.map((n, i) => [n, randomTensor([2, 3], 20 + i)])]),
      1,
    );
    const n = epilogues(f)[0]!;
    expect(n.inputs.length + n.outputs.length).toBe(MAX_BUFFERS);
    // x, w, r0..r4 and y: five adds fused, three left.
    expect(coveredOps(n)).toEqual(["einsum", "add", "add", "add", "add", "add"]);
    expect(f.nodes.filter((m) => m.op === "add").length).toBe(3);
  });

  it("counts the run-time error buffer a conv over symbolic spatial sizes binds", () => {
    const names = Array.from({ length: 6 }, (_, i) => `r${i}`);
    const source = (size: string) => `model E {
        input x: f32[N, 2, ${size}, ${size}]
        ${names.map((n) => `input ${n}: f32[N, 2, ${size}, ${size}]`).join("\n        ")}
        output y = conv2d(x, filters=2, kernel=3, padding=1) + ${names.join(" + ")}
      }`;
    const staticSizes = epilogues(fused(compile(source("5"))))[0]!;
    const symbolic = epilogues(fused(compile(source("H"))))[0]!;
    // x, w, bias, r0..r4 and y: 8 buffers with static sizes; the error buffer leaves room for one add less.
    expect(staticSizes.inputs.length + staticSizes.outputs.length).toBe(MAX_BUFFERS);
    expect(symbolic.inputs.length + symbolic.outputs.length).toBe(MAX_BUFFERS - 1);
    expect(coveredOps(staticSizes).length - coveredOps(symbolic).length).toBe(1);
  });

  it("refuses an operand the result would broadcast to (a larger result than the contraction's)", () => {
    const g = compile(`model B {
      input x: f32[N, 4]
      input z: f32[N, 5]
      output y = relu(dense(x, 1, bias=false) + z)
    }`);
    expect(epilogues(fused(g)).length).toBe(0);
  });

  it("leaves alone what is not a contraction an epilogue extends (conv_transpose, 3-operand einsum)", () => {
    const g = compile(`model N {
      input x: f32[N, 2, 4, 4]
      input a: f32[N, 3]
      input b: f32[3, 4]
      input c: f32[4, 2]
      output y = relu(conv_transpose2d(x, filters=2, kernel=2, stride=2))
      output z = relu(einsum("ij,jk,kl->il", a, b, c))
    }`);
    expect(epilogues(fused(g)).length).toBe(0);
  });

  it("runs after einsum-path and before fuse-elementwise in the pipeline", () => {
    const names = PASSES.map((p) => p.name);
    expect(names.indexOf("fuse-epilogue")).toBeGreaterThan(names.indexOf("einsum-path"));
    expect(names.indexOf("fuse-epilogue")).toBeLessThan(names.indexOf("fuse-elementwise"));
    expect(PASSES).toContain(fuseEpiloguePass);
  });
});

// ---------------------------------------------------------------- stage 2: pooling epilogues

describe("pooling epilogues (stage 2)", () => {
  /** This pass with pools absorbed, verified. */
  function pooled(g: Graph): Graph {
    const f = g.clone();
    fuseEpilogues(f, { pool: true });
    expect(verifyGraph(f)).toEqual([]);
    return f;
  }
  const poolOf = (n: Node) => attrsOf(n).pool;

  function checkPooled(source: string, inputs: Record<string, RefTensor>, expectPooled: number): { g: Graph; f: Graph; js: string } {
    const g = compile(source);
    const f = pooled(g);
    expect(epilogues(f).filter((n) => poolOf(n)).length).toBe(expectPooled);
    const params = f32Params(g);
    const feeds = f32(inputs);
    expectSame(interpret(g, feeds, params).outputs, interpret(f, feeds, params).outputs, "reference pooled vs unfused:", 1e-9, 1e-12);
    expectJsMatchesReference(f, inputs);
    return { g, f, js: emitProgram(f).kernels.join("\n") };
  }

  it("a pool straight after a conv (no elementwise step between) is absorbed alone and still runs", () => {
    const { f, js } = checkPooled(
      `model P {
        input x: f32[N, 2, 8, 8]
        output y = maxpool2d(conv2d(x, filters=3, kernel=3, padding=1), window=2)
      }`,
      { x: randomTensor([2, 2, 8, 8], 41) },
      1,
    );
    expect(coveredOps(epilogues(f)[0]!)).toEqual(["conv", "pool"]);
    expect(attrsOf(epilogues(f)[0]!).steps).toEqual([{ op: "load", input: 0 }]);
    expect(js).not.toMatch(/= ;/);
  });

  it("LeNet-5: conv + relu + maxpool twice, 9 -> 7 kernels, pooled straight from the conv's accumulator planes", () => {
    const g = example("lenet5.cnn");
    const f = pooled(g);
    const convs = epilogues(f).filter((n) => attrsOf(n).base === "conv");
    expect(convs.map(coveredOps)).toEqual([
      ["conv", "relu", "pool"],
      ["conv", "relu", "pool"],
    ]);
    expect(convs.map(poolOf)).toEqual([
      { kind: "max", window: [2, 2] },
      { kind: "max", window: [2, 2] },
    ]);
    expect(convs[0]!.outputs[0]!.type.shape.map(String)).toEqual(["N", "6", "14", "14"]);
    const count = emitProgram(f).kernelCount;
    console.log(`LeNet-5 kernels per forward with pooling epilogues: ${count}`);
    expect(count).toBe(7);
    const inputs = f32(inputsFor(g, SMALL));
    const params = f32Params(g);
    const ref = interpret(g, inputs, params).outputs;
    expectSame(ref, interpret(f, inputs, params).outputs, "reference:", 1e-9, 1e-12);
    expectSame(ref, runJs(f, inputs), "JS pooled vs reference:");
    const js = emitProgram(f).kernels.join("\n");
    expect(js).toMatch(/\/\/ fuses %\d+ conv \(c1\), %\d+ relu \(c1\), %\d+ pool \(s2\)/);
    expect(js).not.toContain("ep_full");
  });

  it("avg pool of a 1-d conv with a per-channel bias add and sigmoid; floor mode drops the odd tail", () => {
    const { js } = checkPooled(
      `model A {
        input x: f32[N, 2, 9]
        param b: f32[3, 1] = uniform(-1, 1)
        output y = avgpool1d(sigmoid(conv1d(x, filters=3, kernel=2, bias=false) + b), window=3)
      }`,
      { x: randomTensor([2, 2, 9], 40) },
      1,
    );
    expect(js).toContain("ep_sum / 3");
  });

  it("a conv accumulated by rows (large planes) pools through a scratch copy of the epilogue's result", () => {
    const { js } = checkPooled(
      `model Big {
        input x: f32[N, 1, 66, 66]
        output y = maxpool2d(relu(conv2d(x, filters=8, kernel=3)), window=2)
      }`,
      { x: randomTensor([1, 1, 66, 66], 41) },
      1,
    );
    expect(js).toContain("const ep_full = new Float32Array(");
  });

  it("a residual read at the element's flat index inside the pooled windows", () => {
    checkPooled(
      `model Res {
        input x: f32[N, 2, 6, 6]
        output y = maxpool2d(x + conv2d(x, filters=2, kernel=3, padding=1), window=[2, 3])
      }`,
      { x: randomTensor([2, 2, 6, 6], 42) },
      1,
    );
  });

  it("refuses pools it cannot absorb: overlapping windows, ceil mode, a pre-pool value read elsewhere, training graphs", () => {
    for (const pool of ["maxpool2d(c, window=2, stride=1)", "maxpool2d(c, window=2, ceil_mode=true)", "sumpool2d(c, window=2)"]) {
      const g = compile(`model P {
        input x: f32[N, 1, 7, 7]
        c = conv2d(x, filters=2, kernel=2) |> relu
        output y = ${pool}
      }`);
      expect(epilogues(pooled(g)).filter(poolOf).length, pool).toBe(0);
    }
    const read = compile(`model Q {
      input x: f32[N, 1, 6, 6]
      c = conv2d(x, filters=2, kernel=3) |> relu
      output y = maxpool2d(c, window=2)
      output s = sum(c)
    }`);
    expect(epilogues(pooled(read)).filter(poolOf).length).toBe(0);
    const t = buildTrainingGraph(example("lenet5.cnn"))!.graph;
    const ft = t.clone();
    fuseEpilogues(ft, { pool: true });
    expect(epilogues(ft).filter(poolOf).length).toBe(0);
  });
});

// ---------------------------------------------------------------- every dsl-example

describe("every dsl-example, fused vs unfused", () => {
  let total = 0;
  for (const file of examples) {
    it(`${file}: forward: reference identical (1e-9), JS fused = unfused = reference (1e-4)`, async () => {
      const g = example(file);
      const f = fused(g);
      total += epilogues(f).length;
      const inputs = f32(inputsFor(g, SMALL));
      const params = f32Params(g);
      const ref = interpret(g, inputs, params).outputs;
      await tick();
      expectSame(ref, interpret(f, inputs, params).outputs, "reference fused vs unfused:", 1e-9, 1e-12);
      await tick();
      const jsU = runJs(g, inputs);
      const jsF = runJs(f, inputs);
      expectSame(jsU, jsF, "JS fused vs unfused:");
      expectSame(ref, jsF, "JS fused vs reference:");
    }, 120_000);
  }
  it("fuses something in the examples", () => {
    expect(total).toBeGreaterThan(0);
  });

  for (const file of examples) {
    it(`${file}: training step: reference identical (1e-9), JS fused = unfused = reference (1e-4), gradients and updates`, async () => {
      const g = example(file);
      if (!g.outputs.some((o) => o.kind === "loss")) return;
      const t = trainingWithGradients(g);
      const f = fused(t);
      const feeds = { ...f32(inputsFor(g, SMALL)), [LR_INPUT]: RefTensor.scalar(0.05), [STEP_INPUT]: RefTensor.scalar(1) };
      const params = f32Params(t);
      const ref = interpret(t, feeds, params, { training: true, seed: 1 }).outputs;
      await tick();
      expectSame(ref, interpret(f, feeds, params, { training: true, seed: 1 }).outputs, "reference fused vs unfused:", 1e-9, 1e-12);
      await tick();
      const jsU = runJs(t, feeds, true);
      const jsF = runJs(f, feeds, true);
      expectSame(jsU, jsF, "JS training, fused vs unfused:");
      expectSame(ref, jsF, "JS training, fused vs reference:");
    }, 180_000);
  }
});

// ---------------------------------------------------------------- kernel counts

describe("kernel counts of LeNet-5", () => {
  const g = example("lenet5.cnn");
  const trainRoots = (tg: Graph) => [...tg.outputs.filter((o) => o.kind === "loss").map((o) => o.value), ...tg.bufferUpdates.map((u) => u.value)];
  const bothFusions = (x: Graph, pool = false) => {
    const c = x.clone();
    fuseEpilogues(c, { pool });
    fuseElementwise(c);
    expect(verifyGraph(c)).toEqual([]);
    return c;
  };

  it("forward: 16 unfused, 14 with elementwise fusion, 9 with epilogues (conv+relu ×2, dense+bias(+relu) ×3), 7 with pooling epilogues", () => {
    const unfused = emitProgram(g).kernelCount;
    const elementwiseOnly = g.clone();
    fuseElementwise(elementwiseOnly);
    const counts = [unfused, emitProgram(elementwiseOnly).kernelCount, emitProgram(bothFusions(g)).kernelCount, emitProgram(bothFusions(g, true)).kernelCount];
    console.log(`LeNet-5 kernels per forward: unfused ${counts[0]}, elementwise fusion ${counts[1]}, + epilogues ${counts[2]}, + pooling epilogues ${counts[3]}`);
    expect(counts).toEqual([16, 14, 9, 7]);
  });

  it("training step: 46 unfused, 44 with elementwise fusion, 37 with epilogues (5 forward, 2 relu gradients on dense dx)", () => {
    const t = buildTrainingGraph(g)!.graph;
    const unfused = emitProgram(t, trainRoots(t)).kernelCount;
    const elementwiseOnly = t.clone();
    fuseElementwise(elementwiseOnly);
    // Pools are never absorbed in a training graph (pool_grad reads the pre-pool value).
    const both = bothFusions(t, true);
    const counts = [unfused, emitProgram(elementwiseOnly, trainRoots(elementwiseOnly)).kernelCount, emitProgram(both, trainRoots(both)).kernelCount];
    console.log(`LeNet-5 kernels per training step: unfused ${counts[0]}, elementwise fusion ${counts[1]}, + epilogues ${counts[2]}`);
    expect(counts[2]).toBeLessThan(counts[1]!);
    expect(counts).toEqual([46, 44, 37]);
  });
});

describe("the emitted module", () => {
  it("--passes=none has no epilogue kernels, --passes=all fuses LeNet-5's convs and dense layers (pools only when both targets can)", () => {
    const g = example("lenet5.cnn");
    const none = emitModule(g, { target: "js", runtime: "import", passes: "none" });
    const all = emitModule(g, { target: "js", runtime: "import", passes: "all" });
    expect(none.js).not.toContain("fused_epilogue");
    expect(all.js).toMatch(/\/\/ fuses %4 conv \(c1\), %5 relu \(c1\)(, %6 pool \(s2\))?\n/);
    expect(all.js).toContain("// fuses %14 einsum (f5), %16 add (f5), %17 relu (f5)");
    expect(all.js.includes("%6 pool (s2)")).toBe(POOL_EPILOGUE);
    expect(all.kernelCount).toBeLessThan(none.kernelCount);
  });
});

// ---------------------------------------------------------------- generated code

describe("generated kernels", () => {
  it("name the IR nodes they cover; a per-channel bias reads the conv's filter index (no division per element)", () => {
    const f = check(
      `model K {
        input x: f32[N, 2, 5, 5]
        param b: f32[4, 1, 1] = uniform(-1, 1)
        output y = gelu(conv2d(x, filters=4, kernel=3, bias=false) + b)
      }`,
      { x: randomTensor([2, 2, 5, 5], 30, -3, 3) },
      1,
    );
    const n = epilogues(f)[0]!;
    const js = emitProgram(f).kernels.join("\n");
    const ids = attrsOf(n).covers.map((c) => `%${c.value} ${c.op} (y)`).join(", ");
    expect(ids).toMatch(/^%\d+ conv \(y\), %\d+ add \(y\), %\d+ gelu \(y\)$/);
    expect(js).toContain(`// fuses ${ids}`);
    expect(js).toMatch(/x2\[fl( \+ \d)?\]/);
    expect(js).not.toMatch(/Math\.floor\(/);
  });

  it("a conv accumulated by rows gives the epilogue the row's coordinates (inputs varying along H or W)", () => {
    const f = check(
      `model Rows {
        input x: f32[N, 1, 66, 66]
        input rw: f32[64]
        input rh: f32[64, 1]
        param b: f32[8, 1, 1] = uniform(-1, 1)
        output y = relu((conv2d(x, filters=8, kernel=3, bias=false) + b + rw) * rh)
      }`,
      { x: randomTensor([1, 1, 66, 66], 50), rw: randomTensor([64], 51), rh: randomTensor([64, 1], 52) },
      1,
    );
    const js = emitProgram(f).kernels.join("\n");
    expect(js).toContain("one output row each");
    // rw at the row's column i, rh at the row index oh: no division of the flat index.
    expect(js).toMatch(/x3\[i\]/);
    expect(js).toMatch(/x4\[oh\]/);
    expect(js).not.toMatch(/Math\.floor\(/);
  });

  it("a dense bias reads the GEMM's column index; unfused kernels are unchanged (no epilogue code)", () => {
    const g = compile(`model E {
      input x: f32[N, 6]
      output y = dense(x, 8) |> relu
    }`);
    const plain = emitProgram(g).kernels.join("\n");
    expect(plain).not.toContain("ep_");
    const js = emitProgram(fused(g)).kernels.join("\n");
    expect(js).toContain("x2[n + 3]");
    expect(js).not.toMatch(/Math\.floor\(| % /);
  });
});

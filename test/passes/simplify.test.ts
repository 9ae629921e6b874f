// The simplification passes (compiler/passes/simplify): each on small
// hand-built graphs (printed IR or node counts), then semantic safety on every
// dsl-example, forward and training graph: the float64 reference gives the
// same outputs and updates before and after (1e-9 relative), and the JS
// target still matches the reference on the simplified graphs. Also the
// node/kernel counts of LeNet-5 before and after.

import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { buildTrainingGraph, LR_INPUT, STEP_INPUT } from "../../compiler/autodiff/training.ts";
import { emitNode } from "../../compiler/autodiff/reverse.ts";
import { emitProgram } from "../../compiler/codegen/js/program.ts";
import { emitModule } from "../../compiler/codegen/module.ts";
import { compileSource } from "../../compiler/compile.ts";
import { Dim } from "../../compiler/ir/dims.ts";
import { Graph, type Attrs, type Value } from "../../compiler/ir/graph.ts";
import { printGraph } from "../../compiler/ir/printer.ts";
import { tensorType, type DType } from "../../compiler/ir/types.ts";
import { verifyGraph } from "../../compiler/ir/verifier.ts";
import { PASSES } from "../../compiler/passes/pipeline.ts";
import { graphStats } from "../../compiler/passes/stats.ts";
import { SIMPLIFY_PASSES, applyIdentities, eliminateCommonSubexpressions, eliminateDeadCode, FOLD_MAX_ELEMENTS, foldConstants } from "../../compiler/passes/simplify/index.ts";
import { initialParams, interpret } from "../../compiler/reference/interpreter.ts";
import { RefTensor } from "../../compiler/reference/tensor.ts";
import { randomTensor } from "../support/build.ts";
import { expectJsMatchesReference } from "../support/conformance.ts";
import { examples, examplesDir, inputsFor as inputsAt } from "../support/modules.ts";

// ---------------------------------------------------------------- hand-built graphs

/** A tiny graph builder over raw IR ops (shape rules run on every node). */
class G {
  readonly g = new Graph("T");
  input(name: string, shape: readonly (number | string)[], dtype: DType = "f32"): Value {
    const t = tensorType(dtype, shape);
    for (const d of shape) if (typeof d === "string" && !this.g.symbols.includes(d)) this.g.symbols.push(d);
    const v = this.g.addNode("input", [], { name, dtype, shape: t.shape }, [t], { label: name }).outputs[0]!;
    this.g.inputs.set(name, v);
    return v;
  }
  param(name: string, shape: readonly number[], trainable = true): Value {
    const t = tensorType("f32", shape);
    const v = this.g.addNode("param", [], { name, dtype: "f32", shape: t.shape }, [t], { label: name }).outputs[0]!;
    this.g.params.set(name, { name, value: v, init: { kind: "uniform", lo: -1, hi: 1 }, trainable });
    return v;
  }
  const(value: number | readonly number[], shape?: readonly number[], dtype: DType = "f32"): Value {
    return this.op("const", [], typeof value === "number" ? { dtype, value } : { dtype, values: value, shape: shape ?? [value.length] });
  }
  op(op: string, inputs: readonly Value[], attrs: Attrs = {}, label?: string): Value {
    return this.outs(op, inputs, attrs, label)[0]!;
  }
  outs(op: string, inputs: readonly Value[], attrs: Attrs = {}, label?: string): readonly Value[] {
    return emitNode(this.g, op, inputs, attrs, { label });
  }
  output(name: string, v: Value, kind: "output" | "loss" = "output"): void {
    this.g.outputs.push({ name, value: v, kind });
  }
  ops(): string[] {
    return this.g.nodes.map((n) => n.op);
  }
  /** The printed IR without the model's header and closing line. */
  body(): string {
    return printGraph(this.g).split("\n").slice(1, -1).map((l) => l.trim()).join("\n");
  }
  verified(): void {
    expect(verifyGraph(this.g)).toEqual([]);
  }
}

const ones = (shape: readonly number[], v = 1) => RefTensor.filled(shape, v);

/** Reference outputs of `g` for the inputs, in inference unless `training`. */
function run(g: Graph, inputs: Record<string, RefTensor>, opts: { training?: boolean; seed?: number } = {}) {
  return interpret(g, inputs, initialParams(g, 0), opts);
}

describe("dead-code elimination", () => {
  it("removes nodes no output needs, keeps every input and parameter", () => {
    const b = new G();
    const x = b.input("x", [2, 3]);
    const unusedIn = b.input("unused", [4]);
    const w = b.param("w", [3]);
    const y = b.op("mul", [x, w]);
    const dead = b.op("exp", [y]);
    b.op("neg", [dead]);
    b.op("relu", [unusedIn]);
    b.output("y", b.op("relu", [y]));
    expect(eliminateDeadCode(b.g)).toBe(3);
    expect(b.ops()).toEqual(["input", "input", "param", "mul", "relu"]);
    expect([...b.g.inputs.keys()]).toEqual(["x", "unused"]);
    b.verified();
  });

  it("keeps what losses and buffer updates need, and a multi-output node when any output is needed", () => {
    const b = new G();
    const p = b.param("p", [3]);
    const gr = b.input("g", [3]);
    const lr = b.input("lr", []);
    const v = b.param("v", [3], false);
    const [np, nv] = b.outs("sgd_update", [p, gr, lr, v], { momentum: 0.9, weightDecay: 0 });
    b.g.bufferUpdates.push({ name: "v", value: nv! });
    b.output("loss", b.op("reduce", [gr], { kind: "sum", axes: [0], keepdims: false }), "loss");
    b.op("exp", [np!]); // p' itself is read by nobody else
    eliminateDeadCode(b.g);
    expect(b.ops()).toEqual(["param", "input", "input", "param", "sgd_update", "reduce"]);
    b.verified();
  });

  it("keeps random ops whose outputs are needed and drops one nobody reads", () => {
    const b = new G();
    const x = b.input("x", ["N", 4]);
    const kept = b.outs("dropout", [x], { p: 0.5 });
    b.outs("dropout", [x], { p: 0.5 });
    b.op("gaussian_noise", [x], { std: 1 });
    b.output("y", b.op("mul", [kept[0]!, kept[1]!]));
    const before = run(b.g, { x: randomTensor([2, 4], 1) }, { training: true, seed: 5 });
    eliminateDeadCode(b.g);
    expect(b.ops()).toEqual(["input", "dropout", "mul"]);
    // Streams are keyed by node id: the surviving dropout draws the same mask.
    const after = run(b.g, { x: randomTensor([2, 4], 1) }, { training: true, seed: 5 });
    expect([...after.outputs.y!.data]).toEqual([...before.outputs.y!.data]);
  });

  it("removes the unused gradients of a training graph (LeNet-5: the gradient of the image)", () => {
    const t = buildTrainingGraph(compileExample("lenet5.cnn")[0]!)!;
    const count = (op: string) => t.graph.nodes.filter((n) => n.op === op).length;
    expect(count("conv_grad_input")).toBe(2);
    expect(eliminateDeadCode(t.graph)).toBe(1);
    expect(count("conv_grad_input")).toBe(1); // c3's, which c1's gradient needs; c1's (d loss / d x) went
    expect(t.graph.inputs.has(LR_INPUT) && t.graph.inputs.has(STEP_INPUT)).toBe(true);
    expect(verifyGraph(t.graph)).toEqual([]);
  });
});

describe("common-subexpression elimination", () => {
  it("merges nodes with the same op, inputs and attributes into the earliest, whose id survives", () => {
    const b = new G();
    const x = b.input("x", ["N", 3]);
    const a1 = b.op("exp", [x]);
    const a2 = b.op("exp", [x]);
    const s1 = b.op("add", [a1, x]);
    const s2 = b.op("add", [a2, x]); // the same once a2 is a1
    const s3 = b.op("add", [x, a1]); // commutative
    b.output("y", b.op("mul", [b.op("mul", [s1, s2]), s3]));
    const firstExp = a1.node.id;
    expect(eliminateCommonSubexpressions(b.g)).toBe(3);
    expect(b.ops()).toEqual(["input", "exp", "add", "mul", "mul"]);
    expect(b.g.nodes[1]!.id).toBe(firstExp);
    b.verified();
  });

  it("compares dims with equals and numbers exactly; different attributes stay apart", () => {
    const b = new G();
    const x = b.input("x", ["N", 6]);
    const r1 = b.op("reshape", [x], { shape: [Dim.sym("N"), Dim.of(2), Dim.of(3)] });
    const r2 = b.op("reshape", [x], { shape: [Dim.sym("N").mul(1), Dim.of(2), Dim.of(3)] });
    const r3 = b.op("reshape", [x], { shape: [Dim.sym("N"), Dim.of(3), Dim.of(2)] });
    const c0 = b.const(0);
    const cneg0 = b.const(-0);
    const c0b = b.const(0);
    b.output("a", b.op("add", [b.op("reduce", [r1], { kind: "sum", axes: [1, 2], keepdims: false }), b.op("reduce", [r2], { kind: "sum", axes: [1, 2], keepdims: false })]));
    b.output("b", b.op("reduce", [r3], { kind: "sum", axes: [1, 2], keepdims: false }));
    b.output("c", b.op("add", [b.op("add", [x, c0]), b.op("add", [b.op("add", [x, cneg0]), b.op("add", [x, c0b])])]));
    eliminateCommonSubexpressions(b.g);
    const count = (op: string) => b.g.nodes.filter((n) => n.op === op).length;
    expect(count("reshape")).toBe(2); // r1 = r2, r3 differs
    expect(count("const")).toBe(2); // 0 and −0
    expect(count("reduce")).toBe(2);
    b.verified();
  });

  it("never merges random ops", () => {
    const b = new G();
    const x = b.input("x", [4]);
    const d1 = b.op("dropout", [x], { p: 0.5 });
    const d2 = b.op("dropout", [x], { p: 0.5 });
    const n1 = b.op("gaussian_noise", [x], { std: 1 });
    const n2 = b.op("gaussian_noise", [x], { std: 1 });
    b.output("y", b.op("add", [b.op("add", [d1, d2]), b.op("add", [n1, n2])]));
    expect(eliminateCommonSubexpressions(b.g)).toBe(0);
    expect(b.g.nodes.filter((n) => n.op === "dropout" || n.op === "gaussian_noise")).toHaveLength(4);
  });

  it("merges multi-output nodes output by output, updates included", () => {
    const b = new G();
    const p = b.param("p", [3]);
    const gr = b.input("g", [3]);
    const lr = b.input("lr", []);
    const v = b.param("v", [3], false);
    const first = b.outs("sgd_update", [p, gr, lr, v], { momentum: 0.9, weightDecay: 0 });
    const second = b.outs("sgd_update", [p, gr, lr, v], { momentum: 0.9, weightDecay: 0 });
    b.output("a", b.op("add", [first[0]!, second[0]!]));
    b.g.bufferUpdates.push({ name: "v", value: second[1]! });
    expect(eliminateCommonSubexpressions(b.g)).toBe(1);
    expect(b.g.bufferUpdates[0]!.value).toBe(first[1]);
    expect(b.g.nodes.filter((n) => n.op === "sgd_update")).toHaveLength(1);
    b.verified();
  });

  it("points two outputs of the same computation at one value; they still read the same numbers", () => {
    const b = new G();
    const x = b.input("x", [2, 3]);
    b.output("a", b.op("tanh", [x]));
    b.output("b", b.op("tanh", [x]));
    eliminateCommonSubexpressions(b.g);
    expect(b.g.outputs[0]!.value).toBe(b.g.outputs[1]!.value);
    const r = run(b.g, { x: randomTensor([2, 3], 2) });
    expect([...r.outputs.a!.data]).toEqual([...r.outputs.b!.data]);
  });
});

describe("constant folding", () => {
  it("folds the autodiff seed's reshape(const 1) and chains of constant ops, f32-rounded", () => {
    const b = new G();
    const x = b.input("x", [1, 1]);
    const seed = b.op("reshape", [b.const(1)], { shape: [Dim.of(1), Dim.of(1)] });
    const e = b.op("exp", [b.op("neg", [b.const(0.1)])]);
    b.output("y", b.op("mul", [b.op("mul", [x, seed]), e]));
    expect(foldConstants(b.g)).toBe(3);
    expect(b.body()).toBe(
      [
        '%0 = input "x" : f32[1, 1]',
        "%8 = const [1] : f32[1, 1]",
        `%10 = const ${Math.fround(Math.exp(-0.1))} : f32[]`,
        "%6 = mul(%0, %8) : f32[1, 1]",
        "%7 = mul(%6, %10) : f32[1, 1]",
        "output y = %7 : f32[1, 1]",
      ].join("\n"),
    );
    b.verified();
  });

  it("folds small static broadcasts, not large ones, symbolic ones, random ops or graph outputs", () => {
    const b = new G();
    const x = b.input("x", ["N", 4]);
    const small = b.op("broadcast_to", [b.const(0)], { shape: [Dim.of(4)] });
    const large = b.op("broadcast_to", [b.const(0)], { shape: [Dim.of(FOLD_MAX_ELEMENTS + 1)] });
    const symbolic = b.op("broadcast_to", [b.const(2)], { shape: [Dim.sym("N"), Dim.of(4)] });
    const random = b.op("dropout", [b.const([1, 2, 3, 4])], { p: 0.5 });
    const visible = b.op("neg", [b.const(3)]);
    b.output("a", b.op("add", [b.op("add", [x, small]), b.op("mul", [symbolic, random])]));
    b.output("b", b.op("reduce", [large], { kind: "sum", axes: [0], keepdims: false }));
    b.output("c", visible);
    expect(foldConstants(b.g)).toBe(1);
    expect(b.g.nodes.filter((n) => n.op === "broadcast_to")).toHaveLength(2);
    expect(b.g.nodes.some((n) => n.op === "dropout") && b.g.nodes.some((n) => n.op === "neg")).toBe(true);
    expect(b.g.nodes.find((n) => n.op === "const" && n.attrs.shape)!.attrs).toEqual({ dtype: "f32", values: [0, 0, 0, 0], shape: [4] });
    b.verified();
  });

  it("leaves an op whose evaluation fails for run time (a token out of range)", () => {
    const b = new G();
    const table = b.const([1, 2, 3, 4, 5, 6], [3, 2]);
    const idx = b.const([5], [1], "i32");
    b.output("y", b.op("exp", [b.op("embedding", [idx, table], { paddingIdx: null })]));
    const ids = b.op("cast", [b.const([7.9, -1], [2])], { dtype: "i32" });
    b.output("z", b.op("cast", [ids], { dtype: "f32" }));
    expect(foldConstants(b.g)).toBe(1); // the inner cast; the outer is an output
    expect(b.g.nodes.some((n) => n.op === "embedding")).toBe(true);
    expect(b.g.nodes.find((n) => n.op === "const" && n.attrs.dtype === "i32" && (n.attrs.values as number[]).length === 2)!.attrs.values).toEqual([7, -1]);
    b.verified();
  });
});

describe("algebraic identities", () => {
  it("transpose of transpose: composed into one, or removed when it is the identity", () => {
    const b = new G();
    const x = b.input("x", [2, 3, 4]);
    const t1 = b.op("transpose", [x], { perm: [1, 2, 0] }); // [3, 4, 2]
    const back = b.op("transpose", [t1], { perm: [2, 0, 1] }); // [2, 3, 4]
    const t2 = b.op("transpose", [x], { perm: [2, 0, 1] }); // [4, 2, 3]
    const t3 = b.op("transpose", [t2], { perm: [0, 2, 1] }); // [4, 3, 2]
    b.output("a", b.op("exp", [back]));
    b.output("b", b.op("exp", [t3]));
    const before = run(b.g, { x: randomTensor([2, 3, 4], 3) });
    applyIdentities(b.g);
    expect(b.body()).toBe(
      [
        '%0 = input "x" : f32[2, 3, 4]',
        "%4 = transpose(%0) {perm=[2, 1, 0]} : f32[4, 3, 2]",
        "%5 = exp(%0) : f32[2, 3, 4]",
        "%6 = exp(%4) : f32[4, 3, 2]",
        "output a = %5 : f32[2, 3, 4]",
        "output b = %6 : f32[4, 3, 2]",
      ].join("\n"),
    );
    expect(t3.node.id).toBe(b.g.nodes[1]!.id); // rewritten in place, id kept
    const after = run(b.g, { x: randomTensor([2, 3, 4], 3) });
    for (const k of ["a", "b"]) expect([...after.outputs[k]!.data]).toEqual([...before.outputs[k]!.data]);
    b.verified();
  });

  it("reshape chains become one reshape, a reshape to the same shape none, and broadcast_to/cast to the same type none", () => {
    const b = new G();
    const x = b.input("x", ["N", 12]);
    const r = b.op("reshape", [b.op("reshape", [b.op("reshape", [x], { shape: [Dim.sym("N"), Dim.of(3), Dim.of(4)] })], { shape: [Dim.sym("N"), Dim.of(2), Dim.of(6)] })], { shape: [Dim.sym("N").mul(12)] });
    const same = b.op("reshape", [b.op("reshape", [x], { shape: [Dim.sym("N"), Dim.of(4), Dim.of(3)] })], { shape: [Dim.sym("N"), Dim.of(12)] });
    const bc = b.op("broadcast_to", [same], { shape: [Dim.sym("N"), Dim.of(12)] });
    const cs = b.op("cast", [bc], { dtype: "f32" });
    b.output("a", b.op("exp", [r]));
    b.output("b", b.op("exp", [cs]));
    applyIdentities(b.g);
    expect(b.body()).toBe(
      [
        '%0 = input "x" : f32[N, 12]',
        "%3 = reshape(%0) {shape=[12*N]} : f32[12*N]",
        "%8 = exp(%3) : f32[12*N]",
        "%9 = exp(%0) : f32[N, 12]",
        "output a = %8 : f32[12*N]",
        "output b = %9 : f32[N, 12]",
      ].join("\n"),
    );
    b.verified();
  });

  it("x·1, x/1, x + 0, x − 0 and neg(neg(x)) become x; not when the constant broadcasts x", () => {
    const b = new G();
    const x = b.input("x", [2, 3]);
    const one = b.op("broadcast_to", [b.const(1)], { shape: [Dim.of(3)] });
    let y = b.op("mul", [one, x]);
    y = b.op("div", [y, b.const(1)]);
    y = b.op("add", [b.const([0, 0, 0], [1, 3]), y]);
    y = b.op("sub", [y, b.const(0)]);
    y = b.op("neg", [b.op("neg", [y])]);
    const widened = b.op("mul", [x, b.op("broadcast_to", [b.const(1)], { shape: [Dim.of(4), Dim.of(2), Dim.of(3)] })]);
    const notOne = b.op("mul", [x, b.const(2)]);
    const zeroMinus = b.op("sub", [b.const(0), x]);
    b.output("y", b.op("exp", [y]));
    b.output("w", widened);
    b.output("n", b.op("add", [notOne, zeroMinus]));
    applyIdentities(b.g);
    expect(b.g.nodes.filter((n) => n.op === "exp")[0]!.inputs[0]).toBe(x);
    expect(b.ops().filter((o) => o !== "const" && o !== "input")).toEqual(["broadcast_to", "mul", "mul", "sub", "exp", "add"]);
    b.verified();
  });

  it("never turns an output into an input, parameter or constant", () => {
    const b = new G();
    const x = b.input("x", [3]);
    b.output("y", b.op("mul", [x, b.const(1)]));
    b.output("z", b.op("reshape", [x], { shape: [Dim.of(3)] }));
    expect(applyIdentities(b.g)).toBe(0);
    expect(b.g.outputs.map((o) => o.value.node.op)).toEqual(["mul", "reshape"]);
  });

  it("log(softmax(x)) becomes the single reduction log_softmax(x), exp(log_softmax(x)) softmax(x): equal, and finite where softmax underflows", () => {
    const b = new G();
    const x = b.input("x", [2, 4]);
    b.output("ls", b.op("log", [b.op("softmax", [x], { axis: 1 })]));
    b.output("sm", b.op("exp", [b.op("log_softmax", [x], { axis: 0 })]));
    const inputs = { x: RefTensor.from([0.5, -1, 2, 0.25, 3, -2, 1, 0], [2, 4]) };
    const before = run(b.g, inputs).outputs;
    expect(applyIdentities(b.g)).toBe(2);
    b.verified();
    expect(b.ops()).toEqual(["input", "log_softmax", "softmax"]);
    expect(b.g.nodes.map((n) => n.attrs.axis ?? null)).toEqual([null, 1, 0]);
    const after = run(b.g, inputs).outputs;
    for (const k of ["ls", "sm"]) {
      after[k]!.data.forEach((v, i) => expect(v).toBeCloseTo(before[k]!.data[i]!, 12));
    }
    // logits 800 apart: softmax underflows to 0 in float64 and log gives −∞; log_softmax gives −800.
    const far = run(b.g, { x: RefTensor.from([0, -800, 0, 0, 0, 0, 0, 0], [2, 4]) }).outputs.ls!;
    expect(far.data[1]).toBeCloseTo(-800 - Math.log(1 + 2 * Math.exp(0) + 0), 9);
    expect(far.data.every(Number.isFinite)).toBe(true);
  });
});

// ---------------------------------------------------------------- the pipeline and the examples

function compileExample(file: string): Graph[] {
  const r = compileSource(readFileSync(join(examplesDir, file), "utf8"), file);
  if (r.diagnostics.length) throw new Error(r.diagnostics.map((d) => d.message).join("\n"));
  return r.graphs;
}

/** The simplification passes alone, verified after each (as the pipeline does). */
function simplified(g: Graph): Graph {
  const h = g.clone();
  for (const p of SIMPLIFY_PASSES) {
    p.run(h);
    expect(verifyGraph(h), `${p.name} on ${h.name}`).toEqual([]);
  }
  return h;
}

/** Equal within 1e-9 relative (the reference computes in float64; only folding rounds to f32). */
function expectSame(after: Record<string, RefTensor>, before: Record<string, RefTensor>, what: string): void {
  expect(Object.keys(after).sort(), what).toEqual(Object.keys(before).sort());
  for (const [name, want] of Object.entries(before)) {
    const got = after[name]!;
    expect(got.shape, `${what} ${name}`).toEqual(want.shape);
    want.data.forEach((e, i) => {
      const a = got.data[i]!;
      if (!(Object.is(a, e) || (Number.isNaN(a) && Number.isNaN(e)) || Math.abs(a - e) <= 1e-9 * Math.abs(e) + 1e-300)) {
        expect.fail(`${what} '${name}' element ${i}: ${a} after simplification, ${e} before`);
      }
    });
  }
}

/** Example inputs at small sizes (the reference is slow on Inception's 192 channels). */
const inputsFor = (g: Graph) => inputsAt(g, { N: 1, L: 5, H: 8, W: 8 });

/** Lets the test worker answer its runner between long synchronous interpreter runs. */
const breather = () => new Promise<void>((resolve) => setTimeout(resolve, 0));

/** Inputs for the training graph: the forward's, plus the hidden learning rate and step. */
function trainingInputs(forward: Graph): Record<string, RefTensor> {
  return { ...inputsFor(forward), [LR_INPUT]: RefTensor.scalar(0.05), [STEP_INPUT]: RefTensor.scalar(3) };
}

describe("the simplification passes in the pipeline", () => {
  it("run first, in the order fold → identities → cse → dce", () => {
    expect(SIMPLIFY_PASSES.map((p) => p.name)).toEqual(["fold", "identities", "cse", "dce"]);
    expect(PASSES.slice(0, 4)).toEqual([...SIMPLIFY_PASSES]);
  });

  for (const file of examples) {
    it(`${file}: forward and training graphs compute the same in the reference before and after`, async () => {
      for (const g of compileExample(file)) {
        const inputs = inputsFor(g);
        const h = simplified(g);
        // A graph the passes left as it was (same printed IR: ops, attributes, wiring, labels, ids) computes the
        // same by construction; the interpreter runs where something changed.
        if (printGraph(h) !== printGraph(g)) {
          expectSame(run(h, inputs).outputs, run(g, inputs).outputs, `${g.name} inference`);
          await breather();
          const trainBefore = run(g, inputs, { training: true, seed: 7 });
          const trainAfter = run(h, inputs, { training: true, seed: 7 });
          expectSame(trainAfter.outputs, trainBefore.outputs, `${g.name} training-mode forward`);
          expectSame(trainAfter.bufferUpdates, trainBefore.bufferUpdates, `${g.name} training-mode buffers`);
        }
        const t = buildTrainingGraph(g);
        if (!t) continue;
        const ht = simplified(t.graph);
        expect(ht.nodes.length).toBeLessThanOrEqual(t.graph.nodes.length);
        if (printGraph(ht) === printGraph(t.graph)) continue;
        const tin = trainingInputs(g);
        const before = run(t.graph, tin, { training: true, seed: 7 });
        await breather();
        const after = run(ht, tin, { training: true, seed: 7 });
        expectSame(after.outputs, before.outputs, `${g.name} training step losses`);
        expectSame(after.bufferUpdates, before.bufferUpdates, `${g.name} training step updates`);
        expect(Object.keys(after.bufferUpdates).length).toBe(t.updates.length);
      }
    });
  }

  for (const file of ["lenet5.cnn", "skipgram.cnn", "resnet_block.cnn", "denoising_ae.cnn"]) {
    it(`${file}: the JS target matches the reference on the simplified forward and training graphs`, async () => {
      const g = compileExample(file)[0]!;
      const inputs = inputsFor(g);
      expectJsMatchesReference(simplified(g), inputs);
      await breather();
      const t = buildTrainingGraph(g)!;
      const ht = simplified(t.graph);
      // The updates as outputs too, so both sides compute and compare them.
      for (const u of [...ht.bufferUpdates]) ht.outputs.push({ name: `update ${u.name}`, value: u.value, kind: "output" });
      const js = expectJsMatchesReference(ht, trainingInputs(g), { training: true, seed: 3 });
      expect(Object.keys(js).filter((k) => k.startsWith("update ")).length).toBe(t.updates.length);
    });
  }

  it("LeNet-5: nodes and kernels per forward and per training step, before and after", () => {
    const g = compileExample("lenet5.cnn")[0]!;
    const t = buildTrainingGraph(g)!;
    const forwardRoots = (h: Graph) => h.outputs.map((o) => o.value);
    const trainRoots = (h: Graph) => [...h.outputs.filter((o) => o.kind === "loss").map((o) => o.value), ...h.bufferUpdates.map((u) => u.value)];
    const h = simplified(g);
    const ht = simplified(t.graph);
    const counts = {
      forward: { nodes: [g.nodes.length, h.nodes.length], kernels: [emitProgram(g, forwardRoots(g)).kernelCount, emitProgram(h, forwardRoots(h)).kernelCount] },
      train: {
        nodes: [t.graph.nodes.length, ht.nodes.length],
        kernels: [emitProgram(t.graph, trainRoots(t.graph)).kernelCount, emitProgram(ht, trainRoots(ht)).kernelCount],
        statsKernels: [graphStats(t.graph).kernels, graphStats(ht).kernels],
      },
    };
    console.log(`LeNet-5 simplification (before → after): ${JSON.stringify(counts)}`);
    // The forward graph has nothing to simplify; the training graph loses d loss / d x (one conv_grad_input),
    // which code generation already skipped (it emits only what the roots need) but the graph carried.
    expect(counts.forward).toEqual({ nodes: [29, 29], kernels: [16, 16] });
    expect(counts.train.nodes).toEqual([88, 87]);
    expect(counts.train.kernels[1]).toBe(counts.train.kernels[0]);
    expect(counts.train.statsKernels[1]).toBe(counts.train.statsKernels[0]! - 1);
  });

  it("SkipGram's training step: the two neg(const 1) of the backward graph fold into one constant", () => {
    const g = compileExample("skipgram.cnn")[0]!;
    const t = buildTrainingGraph(g)!;
    const ht = simplified(t.graph);
    expect(t.graph.nodes.filter((n) => n.op === "neg")).toHaveLength(5);
    expect(ht.nodes.filter((n) => n.op === "neg")).toHaveLength(3);
    expect(ht.nodes.filter((n) => n.op === "const").map((n) => n.attrs.value)).toEqual([-1]);
    expect(ht.nodes.length).toBe(t.graph.nodes.length - 2);
  });
});

describe("a model written with every redundancy the passes remove", () => {
  // Transposes and reshapes that undo each other, ·1, +0, −0, /1, a duplicated branch (CSE),
  // two dropouts of the same value (never merged), neg(neg(·)), and grad() of the loss with
  // respect to the input, whose backward graph also differentiates the constants (dead code).
  const source = `model Redundant {
  input x: f32[N, 4, 6]
  input labels: i32[N]
  t = transpose(transpose(x, [0, 2, 1]), [0, 2, 1])
  r = reshape(reshape(t, [N, 24]), [N, 4, 6])
  a = tanh(r * 1 + 0) - 0
  b = tanh(r * 1 + 0) / 1
  d = dropout(a, 0.3)
  e = dropout(a, 0.3)
  h = dense(flatten(d + e + b), 5)
  s = -(-h)
  output probs = softmax(s)
  loss xent = cross_entropy(s, labels)
  output sal = grad(xent, x)
  optimizer sgd(0.1, momentum=0.9)
}`;
  const compile = () => {
    const r = compileSource(source, "redundant.cnn");
    if (r.diagnostics.length) throw new Error(r.diagnostics.map((d) => d.message).join("\n"));
    return r.graphs[0]!;
  };
  const inputs = { x: randomTensor([3, 4, 6], 11), labels: RefTensor.from([0, 4, 2], [3], "i32") };

  it("shrinks to the computation that matters, keeping both dropouts", () => {
    const g = compile();
    const h = simplified(g);
    const ops = (x: Graph) => x.nodes.filter((n) => !["input", "param", "const"].includes(n.op)).map((n) => n.op);
    expect(ops(g).length).toBeGreaterThan(60);
    expect(ops(h)).toEqual(["tanh", "dropout", "dropout", "add", "add", "reshape", "einsum", "add", "softmax", "cross_entropy", "cross_entropy_grad", "einsum", "reshape", "mul", "mul", "add", "unary_grad", "unary_grad", "add"]);
  });

  it("computes the same in the reference (inference, training mode, training step) and on the JS target", () => {
    const g = compile();
    const h = simplified(g);
    expectSame(run(h, inputs).outputs, run(g, inputs).outputs, "inference");
    expectSame(run(h, inputs, { training: true, seed: 4 }).outputs, run(g, inputs, { training: true, seed: 4 }).outputs, "training mode");
    const t = buildTrainingGraph(g)!;
    const ht = simplified(t.graph);
    const tin = { ...inputs, [LR_INPUT]: RefTensor.scalar(0.1) };
    const before = run(t.graph, tin, { training: true, seed: 4 });
    const after = run(ht, tin, { training: true, seed: 4 });
    expectSame(after.outputs, before.outputs, "training step outputs");
    expectSame(after.bufferUpdates, before.bufferUpdates, "training step updates");
    expectJsMatchesReference(h, inputs);
    expectJsMatchesReference(h, inputs, { training: true, seed: 4 });
    for (const u of [...ht.bufferUpdates]) ht.outputs.push({ name: `update ${u.name}`, value: u.value, kind: "output" });
    expectJsMatchesReference(ht, tin, { training: true, seed: 4 });
  });

  it("compiles to modules with fewer kernels per run and per training step", () => {
    const g = compile();
    for (const target of ["js", "webgpu"] as const) {
      const none = emitModule(g, { target, runtime: "inline", passes: "none" });
      const all = emitModule(g, { target, runtime: "inline", passes: "all" });
      expect(all.kernelCount, target).toBeLessThan(none.kernelCount);
      expect(all.trainKernelCount!, target).toBeLessThan(none.trainKernelCount!);
    }
  });
});

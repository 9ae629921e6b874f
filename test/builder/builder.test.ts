// The typed TypeScript builder: same IR as the DSL, parameter names of
// DSL.md §5, diagnostics located at the caller's TypeScript line, typed options.

import { existsSync, readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { bool, Dim, f32, i32, model, normal, type ModelBuilder, type T } from "../../compiler/builder/index.ts";
import { framesOf, parseFrame } from "../../compiler/builder/span.ts";
import { CompileError, renderDiagnostic, type Diagnostic, type Span } from "../../compiler/diagnostics.ts";
import type { CallExpr, Expr, Ident, Stmt, TypeExpr } from "../../compiler/dsl/ast.ts";
import { parameterCount, type Graph } from "../../compiler/ir/graph.ts";
import { printGraph } from "../../compiler/ir/printer.ts";
import { typeToString } from "../../compiler/ir/types.ts";
import { verifyGraph } from "../../compiler/ir/verifier.ts";
import { lowerProgram } from "../../compiler/lower/lower.ts";
import { initialParams, interpret } from "../../compiler/reference/interpreter.ts";
import { RefTensor } from "../../compiler/reference/tensor.ts";
import { diagnosticsOf, randomTensor } from "../support/build.ts";

const THIS_FILE = fileURLToPath(import.meta.url);

/** Line of the caller of an Error made in this file, parsed independently of the builder. */
function lineOf(e: Error): number {
  const frame = e.stack!.split("\n").find((l) => l.includes("builder.test.ts"))!;
  return Number(/:(\d+):\d+\)?$/.exec(frame)![1]);
}

function only(ds: Diagnostic[]): Diagnostic {
  expect(ds).toHaveLength(1);
  return ds[0]!;
}

/** LeNet-5 exactly as DSL.md §1. */
function lenet5(): Graph {
  const m = model("LeNet5");
  const x = m.input("x", f32(["N", 1, 28, 28]));
  const labels = m.input("labels", i32(["N"]));
  const c1 = m.let("c1", () => m.conv2d(x, { filters: 6, kernel: 5, padding: 2 }).relu());
  const s2 = m.let("s2", () => m.maxpool2d(c1, { window: 2 }));
  const c3 = m.let("c3", () => m.conv2d(s2, { filters: 16, kernel: 5 }).relu());
  const s4 = m.let("s4", () => m.maxpool2d(c3, { window: 2 }));
  const f5 = m.let("f5", () => m.dense(m.flatten(s4), 120).relu());
  const f6 = m.let("f6", f32(["N", 84]), () => m.dense(f5, 84).relu());
  const logits = m.let("logits", () => m.dense(f6, 10));
  m.output("probs", () => m.softmax(logits, { axis: -1 }));
  m.loss("xent", () => m.cross_entropy(logits, labels));
  m.optimizer("adam", { lr: 0.001 });
  return m.build();
}

const paramShapes = (g: Graph) => Object.fromEntries([...g.params.values()].map((p) => [p.name, typeToString(p.value.type)]));

describe("builder: LeNet-5", () => {
  it("builds the IR of DSL.md §1: inputs, PyTorch-named parameters, 61,706 of them, outputs", () => {
    const g = lenet5();
    expect(verifyGraph(g)).toEqual([]);
    expect(g.name).toBe("LeNet5");
    expect([...g.inputs].map(([n, v]) => [n, typeToString(v.type)])).toEqual([
      ["x", "f32[N, 1, 28, 28]"],
      ["labels", "i32[N]"],
    ]);
    expect(g.symbols).toEqual(["N"]);
    expect(paramShapes(g)).toEqual({
      "c1.weight": "f32[6, 1, 5, 5]",
      "c1.bias": "f32[6]",
      "c3.weight": "f32[16, 6, 5, 5]",
      "c3.bias": "f32[16]",
      "f5.weight": "f32[120, 400]",
      "f5.bias": "f32[120]",
      "f6.weight": "f32[84, 120]",
      "f6.bias": "f32[84]",
      "logits.weight": "f32[10, 84]",
      "logits.bias": "f32[10]",
    });
    expect(parameterCount(g).total).toBe(61706);
    expect(parameterCount(g).perLayer.get("c3")).toBe(16 * 6 * 25 + 16);
    expect(g.outputs.map((o) => [o.kind, o.name, typeToString(o.value.type)])).toEqual([
      ["output", "probs", "f32[N, 10]"],
      ["loss", "xent", "f32[]"],
    ]);
    expect(g.optimizer).toEqual({ kind: "adam", options: { beta1: 0.9, beta2: 0.999, eps: 1e-8, weight_decay: 0, lr: 0.001 } });
  });

  it("labels nodes after their binding, as the DSL does", () => {
    const g = lenet5();
    const labelled = g.nodes.filter((n) => !["input", "param", "const"].includes(n.op)).map((n) => `${n.op}:${n.label}`);
    expect(labelled[0]).toBe("conv:c1");
    expect(labelled).toContain("relu:c1");
    expect(labelled.filter((l) => l.endsWith(":s2"))).toHaveLength(1);
    expect(labelled.at(-2)!.endsWith(":probs")).toBe(true);
    expect(labelled.at(-1)!.endsWith(":xent")).toBe(true);
  });

  it("runs in the reference interpreter: probabilities per row", () => {
    const g = lenet5();
    const x = randomTensor([2, 1, 28, 28], 7);
    const labels = RefTensor.from([3, 9], [2], "i32");
    const out = interpret(g, { x, labels }, initialParams(g, 0)).outputs;
    const probs = out.probs!;
    expect(probs.shape).toEqual([2, 10]);
    for (let n = 0; n < 2; n++) {
      let s = 0;
      for (let k = 0; k < 10; k++) s += probs.data[n * 10 + k]!;
      expect(s).toBeCloseTo(1, 12);
    }
    expect(out.xent!.shape).toEqual([]);
    expect(out.xent!.data[0]!).toBeGreaterThan(0);
  });

  it("prints identically to the DSL lowering of the same program (AST built by hand)", () => {
    const span: Span = { file: "lenet5.cnn", line: 1, col: 1, endLine: 1, endCol: 1 };
    const id = (name: string): Ident => ({ kind: "ident", name, span });
    const num = (value: number): Expr => ({ kind: "number", value, isInt: Number.isInteger(value), span });
    const ref = (n: string): Expr => ({ kind: "name", parts: [id(n)], span });
    const call = (callee: string, args: Expr[], kwargs: Record<string, Expr> = {}, piped = false): CallExpr => ({
      kind: "call", callee: id(callee), args, kwargs: Object.entries(kwargs).map(([k, value]) => ({ name: id(k), value })), piped, span,
    });
    const pipe = (arg: Expr, callee: string): Expr => call(callee, [arg], {}, true);
    const type = (dtype: string, dims: (string | number)[]): TypeExpr => ({
      kind: "type", dtype: id(dtype), dims: dims.map((d) => (typeof d === "number" ? num(d) : ref(d))), span,
    });
    const bind = (n: string, value: Expr, annotation?: TypeExpr): Stmt => ({ kind: "bind", name: id(n), value, annotation, span });
    const body: Stmt[] = [
      { kind: "input", name: id("x"), type: type("f32", ["N", 1, 28, 28]), span },
      { kind: "input", name: id("labels"), type: type("i32", ["N"]), span },
      bind("c1", pipe(call("conv2d", [ref("x")], { filters: num(6), kernel: num(5), padding: num(2) }), "relu")),
      bind("s2", call("maxpool2d", [ref("c1")], { window: num(2) })),
      bind("c3", pipe(call("conv2d", [ref("s2")], { filters: num(16), kernel: num(5) }), "relu")),
      bind("s4", call("maxpool2d", [ref("c3")], { window: num(2) })),
      bind("f5", pipe(call("dense", [call("flatten", [ref("s4")]), num(120)]), "relu")),
      bind("f6", pipe(call("dense", [ref("f5"), num(84)]), "relu"), type("f32", ["N", 84])),
      bind("logits", call("dense", [ref("f6"), num(10)])),
      { kind: "output", name: id("probs"), value: call("softmax", [ref("logits")], { axis: num(-1) }), span },
      { kind: "loss", name: id("xent"), value: call("cross_entropy", [ref("logits"), ref("labels")]), span },
      { kind: "optimizer", call: call("adam", [], { lr: num(0.001) }), span },
    ];
    const lowered = lowerProgram({ file: "lenet5.cnn", models: [{ kind: "model", name: id("LeNet5"), body, span }], defs: [] });
    expect(lowered.diagnostics).toEqual([]);
    expect(printGraph(lenet5())).toBe(printGraph(lowered.graphs[0]!));
  });

  const DSL_LENET = new URL("../../dsl-examples/lenet5.cnn", import.meta.url);
  it("prints identically to the DSL's LeNet-5", async () => {
    const { compileSource, formatDiagnostics } = await import("../../compiler/compile.ts");
    const source = readFileSync(fileURLToPath(DSL_LENET), "utf8");
    const r = compileSource(source, "lenet5.cnn");
    if (r.diagnostics.length) throw new Error(formatDiagnostics(r));
    expect(printGraph(lenet5())).toBe(printGraph(r.graphs[0]!));
  });
});

describe("builder: diagnostics at the caller's line", () => {
  function smallModel(): { m: ModelBuilder; s2: T } {
    const m = model("Small");
    const s2 = m.input("s2", f32(["N", 6, 4, 4]));
    return { m, s2 };
  }

  it("a shape error in a layer points at the call in this file, with the DSL's message", () => {
    const { m, s2 } = smallModel();
    let here!: Error;
    const d = only(diagnosticsOf(() => m.let("c3", () => ((here = new Error()), m.conv2d(s2, { filters: 16, kernel: 5 })))));
    expect(d.code).toBe("E201");
    expect(d.message).toBe("conv2d 'c3': kernel 5 is larger than the padded input 4 along dim 3");
    expect(d.notes).toContain("input s2 is f32[N, 6, 4, 4]");
    expect(d.span!.file).toBe(THIS_FILE);
    expect(d.span!.line).toBe(lineOf(here));
    // The caret sits under the callee name.
    const line = readFileSync(THIS_FILE, "utf8").split("\n")[d.span!.line - 1]!;
    expect(line.slice(d.span!.col - 1, d.span!.endCol)).toBe("conv2d");
    expect(renderDiagnostic(d, readFileSync(THIS_FILE, "utf8"))).toContain(`${THIS_FILE}:${d.span!.line}:${d.span!.col}: error[E201]`);
  });

  it("an error in a chained method points at that method's line", () => {
    const m = model("Chain");
    const a = m.input("a", f32(["N", 3]));
    const b = m.input("b", f32(["N", 4]));
    let here!: Error;
    const d = only(
      diagnosticsOf(() =>
        m.let("y", () =>
          m
            .relu(a)
            .sigmoid()
            // the next line is the offending call
            .add((here = new Error(), b)),
        ),
      ),
    );
    expect(d.code).toBe("E203");
    expect(d.message).toMatch(/^operator '\+': /);
    expect(d.span!.file).toBe(THIS_FILE);
    expect(d.span!.line).toBe(lineOf(here));
  });

  it("annotations, losses and misuse are located too", () => {
    const m = model("M");
    const x = m.input("x", f32(["N", 3]));
    let here!: Error;
    let d = only(diagnosticsOf(() => ((here = new Error()), m.let("h", f32(["N", 4]), () => m.relu(x)))));
    expect(d).toMatchObject({ code: "E205", message: "'h' is annotated f32[N, 4] but its value is f32[N, 3]", notes: ["dim 1 differs"] });
    expect(d.span!.line).toBe(lineOf(here));

    d = only(diagnosticsOf(() => m.loss("l", () => m.relu(x))));
    expect(d).toMatchObject({ code: "E215", message: "loss 'l' must be a scalar f32[], found f32[N, 3]" });

    d = only(diagnosticsOf(() => ((here = new Error()), m.dense(x, 4))));
    expect(d.code).toBe("E501");
    expect(d.message).toBe("dense creates parameters, so it needs a name");
    expect(d.span!.line).toBe(lineOf(here));
  });

  it("the stack parser reads V8 and Firefox frames and file URLs", () => {
    expect(parseFrame("    at Object.<anonymous> (/a/b.ts:12:5)")).toEqual({ file: "/a/b.ts", line: 12, col: 5 });
    expect(parseFrame("    at file:///a/my%20dir/b.ts:3:9")).toEqual({ file: "/a/my dir/b.ts", line: 3, col: 9 });
    expect(parseFrame("    at async run (file:///C:/x/y.ts:1:2)")).toEqual({ file: "C:/x/y.ts", line: 1, col: 2 });
    expect(parseFrame("build@http://localhost:5173/src/model.ts:40:11")).toEqual({ file: "http://localhost:5173/src/model.ts", line: 40, col: 11 });
    expect(parseFrame("    at node:internal/main:1:1")).toBeUndefined();
    expect(parseFrame("Error: boom")).toBeUndefined();
    expect(framesOf(new Error().stack)[0]!.file).toBe(THIS_FILE);
  });
});

describe("builder: bindings and layer names", () => {
  it("a second owning call in one binding gets .1; name: overrides; m.parameter finds them", () => {
    const m = model("Names");
    const x = m.input("x", f32(["N", 8]));
    const h = m.let("h", () => m.dense(m.dense(x, 4).tanh(), 2));
    const e = m.let("e", () => m.dense(x, 3, { name: "enc" }));
    m.output("y", () => h.add(e.sum({ axis: -1, keepdims: true })));
    const g = m.build();
    expect(Object.keys(paramShapes(g))).toEqual(["h.weight", "h.bias", "h.1.weight", "h.1.bias", "enc.weight", "enc.bias"]);
    expect(paramShapes(g)["h.1.weight"]).toBe("f32[2, 4]");
  });

  it("tied weights: weight: takes any tensor, e.g. the encoder's weight transposed", () => {
    const m = model("AE");
    const x = m.input("x", f32(["N", 8]));
    const code = m.let("enc", () => m.dense(x, 3, { bias: false }).relu());
    const dec = m.let("dec", () => m.dense(code, 8, { weight: m.parameter("enc.weight").transpose([1, 0]) }));
    m.output("y", dec);
    const g = m.build();
    expect(paramShapes(g)).toEqual({ "enc.weight": "f32[3, 8]", "dec.bias": "f32[8]" });
    expect(dec.type).toEqual(f32(["N", 8]));
    expect(dec.name).toBe("dec");
  });

  it("explicit params, operators with numbers, einsum and generic calls", () => {
    const m = model("P");
    const x = m.input("x", f32(["N", 4]));
    const w = m.param("w", f32([4, 2]), normal(0, 0.1));
    const b = m.param("b", f32([2]), "zeros");
    const y = m.let("y", () => m.einsum("nk,kj->nj", x, w).add(b).mul(2).sub(1).neg());
    const z = m.let("z", () => m.call("leaky_relu", [y], { alpha: 0.2 }));
    m.output("z", z);
    const g = m.build();
    expect(g.params.get("w")!.init).toEqual({ kind: "normal", mean: 0, std: 0.1 });
    expect(g.params.get("b")!.init).toEqual({ kind: "zeros" });
    expect(typeToString(z.type)).toBe("f32[N, 2]");
    expect(g.nodes.filter((n) => n.op === "const").map((n) => n.attrs.value)).toEqual([2, 1]);
    expect(g.output("z")!.value).toBe(z.value);
  });

  it("glorot is the default init, resolved against the parameter's fans", () => {
    const m = model("G");
    m.param("w", f32([6, 4]));
    const a = Math.sqrt(6 / 10);
    expect(m.graph.params.get("w")!.init).toEqual({ kind: "uniform", lo: -a, hi: a });
  });

  it("defs namespace their parameters by the calling binding", () => {
    const m = model("R");
    const x = m.input("x", f32(["N", 2, 8, 8]));
    const block = m.def("block", (t: T, channels: number) => {
      const c1 = m.let("c1", () => m.conv2d(t, { filters: channels, kernel: 3, padding: 1 }).relu());
      return m.conv2d(c1, { filters: channels, kernel: 3, padding: 1 }).add(t);
    });
    const r1 = m.let("r1", () => block(x, 2));
    const r2 = m.let("r2", () => block(r1, 2));
    m.output("y", r2);
    const g = m.build();
    expect(Object.keys(paramShapes(g))).toEqual([
      "r1.c1.weight", "r1.c1.bias", "r1.return.weight", "r1.return.bias",
      "r2.c1.weight", "r2.c1.bias", "r2.return.weight", "r2.return.bias",
    ]);
  });

  it("an error inside a def notes where the def was called", () => {
    const m = model("R");
    const x = m.input("x", f32(["N", 2, 3, 3]));
    const block = m.def("block", (t: T) => m.let("c1", () => m.conv2d(t, { filters: 2, kernel: 5 })));
    let here!: Error;
    const d = only(diagnosticsOf(() => m.let("r1", () => ((here = new Error()), block(x)))));
    expect(d.code).toBe("E201");
    expect(d.message).toMatch(/^conv2d 'r1\.c1': kernel 5 is larger/);
    expect(d.notes!.at(-1)).toBe(`in def 'block' called at ${THIS_FILE}:${lineOf(here)}:${d.notes!.at(-1)!.split(":").at(-1)}`);
  });

  it("rejects rebinding, nesting, foreign tensors, use after build and bad names", () => {
    const m = model("M");
    const x = m.input("x", f32(["N", 3]));
    m.let("a", () => x.relu());
    expect(only(diagnosticsOf(() => m.let("a", () => x.tanh())))).toMatchObject({ code: "E302", message: "'a' is already bound; bindings are single-assignment" });
    expect(only(diagnosticsOf(() => m.input("x", f32([1]))))).toMatchObject({ code: "E302", message: "'x' is already bound" });
    expect(only(diagnosticsOf(() => m.let("b", () => m.let("c", () => x.relu()))))).toMatchObject({ code: "E501", message: "m.let(...) cannot be called while building 'b'" });
    expect(only(diagnosticsOf(() => m.let("a b", () => x)))).toMatchObject({ code: "E501" });
    const other = model("Other");
    const y = other.input("y", f32(["N", 3]));
    expect(only(diagnosticsOf(() => m.let("d", () => x.add(y))))).toMatchObject({ code: "E501", message: "a tensor of model 'Other' cannot be used in model 'M'" });
    // @ts-expect-error -- the callback must return a tensor
    expect(only(diagnosticsOf(() => m.let("e", () => 3)))).toMatchObject({ code: "E501", message: "the callback of 'e' must return a tensor of model 'M', found number" });
    m.output("x", x);
    m.build();
    expect(only(diagnosticsOf(() => x.relu()))).toMatchObject({ code: "E501", message: "model 'M' is already built; start a new model() to build another" });
  });

  it("outputs: an existing binding by name, duplicates rejected; anonymous calls have no empty label in messages", () => {
    const m = model("O");
    const x = m.input("x", f32(["N", 3]));
    const mask = m.input("mask", bool(["N", 3]));
    const h = m.let("h", () => m.where(mask, x, 0));
    m.output("h", h);
    expect(only(diagnosticsOf(() => m.output("h", h)))).toMatchObject({ code: "E302", message: "'h' is already an output or loss" });
    const d = only(diagnosticsOf(() => m.softmax(x, { axis: 5 })));
    expect(d.code).toBe("E209");
    expect(d.message).toMatch(/^softmax: /);
  });

  it("the optimizer: defaults, range checks, one per model", () => {
    const m = model("Opt");
    expect(only(diagnosticsOf(() => m.optimizer("sgd", { lr: -1 })))).toMatchObject({ code: "E404", message: "sgd lr=-1 is out of range" });
    m.optimizer("sgd", { lr: 0.1, momentum: 0.9 });
    expect(m.graph.optimizer).toEqual({ kind: "sgd", options: { momentum: 0.9, weight_decay: 0, lr: 0.1 } });
    expect(only(diagnosticsOf(() => m.optimizer("adam", { lr: 0.1 })))).toMatchObject({ code: "E302" });
  });

  it("reshape takes symbol names, which must be bound", () => {
    const m = model("S");
    const x = m.input("x", f32(["N", "L", 4]));
    const y = m.let("y", () => x.reshape(["N", -1]));
    expect(typeToString(y.type)).toBe("f32[N, 4*L]");
    const z = m.let("z", () => m.reshape(x, [Dim.sym("N").mul(Dim.sym("L")), 4]));
    expect(typeToString(z.type)).toBe("f32[L*N, 4]");
    expect(only(diagnosticsOf(() => m.let("w", () => x.reshape(["M", -1]))))).toMatchObject({ code: "E301", message: "unknown name 'M'" });
  });
});

describe("builder: typed options", () => {
  it("rejects wrong keys at compile time, and at run time for untyped callers", () => {
    const m = model("Typed");
    const x = m.input("x", f32(["N", 1, 8, 8]));
    const typeErrors = () => {
      // @ts-expect-error -- misspelt option
      m.conv2d(x, { filter: 6, kernel: 5 });
      // @ts-expect-error -- kernel is required
      m.conv2d(x, { filters: 6 });
      // @ts-expect-error -- not a padding mode of conv2d
      m.conv2d(x, { filters: 6, kernel: 3, padding_mode: "reflect" });
      // @ts-expect-error -- pools have no padding "full"
      m.maxpool2d(x, { window: 2, padding: "full" });
      // @ts-expect-error -- units is a number
      m.dense(x, "10");
      // @ts-expect-error -- softmax takes axis, not dim
      m.softmax(x, { dim: 1 });
      // @ts-expect-error -- adam has no momentum
      m.optimizer("adam", { lr: 0.1, momentum: 0.9 });
      // @ts-expect-error -- no such optimizer
      m.optimizer("rmsprop", { lr: 0.1 });
      // @ts-expect-error -- name is only for layers that own parameters
      m.relu(x, { name: "r" });
    };
    expect(typeof typeErrors).toBe("function");
    const untyped = m as unknown as { conv2d(x: T, o: object): T };
    const d = only(diagnosticsOf(() => m.let("c", () => untyped.conv2d(x, { filter: 6, kernel: 5 }))));
    expect(d).toMatchObject({ code: "E402", message: "conv2d has no argument 'filter'", hint: "did you mean 'filters'?" });
  });

  it("m.call reaches any builtin and suggests close names", () => {
    const m = model("Call");
    const x = m.input("x", f32(["N", 4]));
    expect(typeToString(m.call("sum", [x], { axis: 1 }).type)).toBe("f32[N]");
    expect(only(diagnosticsOf(() => m.call("softmx", [x])))).toMatchObject({ code: "E303", message: "unknown function 'softmx'", hint: "did you mean 'softmax'?" });
  });

  it("errors are CompileErrors", () => {
    const m = model("E");
    const x = m.input("x", f32(["N", 4]));
    expect(() => m.let("y", () => m.conv2d(x, { filters: 1, kernel: 1 }))).toThrow(CompileError);
  });
});

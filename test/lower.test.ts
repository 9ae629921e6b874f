// Lowering AST → IR: names and namespaces of parameters, defs, tied weights,
// index notation, symbols and annotations, outputs, losses and the optimizer.

import { describe, expect, it } from "vitest";
import { compileSource, formatDiagnostics } from "../compiler/compile.ts";
import { parameterCount, type Graph } from "../compiler/ir/graph.ts";
import { printGraph } from "../compiler/ir/printer.ts";
import { typeToString } from "../compiler/ir/types.ts";
import { verifyGraph } from "../compiler/ir/verifier.ts";
import { initialParams, interpret } from "../compiler/reference/interpreter.ts";
import { RefTensor } from "../compiler/reference/tensor.ts";
import { expectClose, randomTensor } from "./support/build.ts";

function compile(src: string): Graph {
  const r = compileSource(src, "t.cnn");
  if (r.diagnostics.length) throw new Error(formatDiagnostics(r));
  expect(verifyGraph(r.graphs[0]!)).toEqual([]);
  return r.graphs[0]!;
}

const shapes = (g: Graph) => Object.fromEntries([...g.params.values()].map((p) => [p.name, typeToString(p.value.type)]));

const LENET = `
# LeNet-5 (LeCun et al., 1998), NCHW layout, PyTorch semantics
model LeNet5 {
  input x: f32[N, 1, 28, 28]
  input labels: i32[N]

  c1 = conv2d(x, filters=6, kernel=5, padding=2) |> relu   # f32[N, 6, 28, 28]
  s2 = maxpool2d(c1, window=2)                              # f32[N, 6, 14, 14]
  c3 = conv2d(s2, filters=16, kernel=5) |> relu             # f32[N, 16, 10, 10]
  s4 = maxpool2d(c3, window=2)                              # f32[N, 16, 5, 5]
  f5 = dense(flatten(s4), 120) |> relu
  f6: f32[N, 84] = dense(f5, 84) |> relu                    # annotation is checked
  logits = dense(f6, 10)

  output probs = softmax(logits, axis=-1)
  loss xent = cross_entropy(logits, labels)
  optimizer adam(lr=0.001)
}
`;

describe("lowering", () => {
  it("lowers LeNet-5 of DSL.md §1 with PyTorch parameter names and 61,706 parameters", () => {
    const g = compile(LENET);
    expect(shapes(g)).toEqual({
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
    expect(g.symbols).toEqual(["N"]);
    expect(g.outputs.map((o) => [o.kind, o.name, typeToString(o.value.type)])).toEqual([
      ["output", "probs", "f32[N, 10]"],
      ["loss", "xent", "f32[]"],
    ]);
    expect(g.optimizer).toEqual({ kind: "adam", options: { lr: 0.001, beta1: 0.9, beta2: 0.999, eps: 1e-8, weight_decay: 0 } });
    const text = printGraph(g);
    expect(text).toMatch(/= param "c1.weight" : f32\[6, 1, 5, 5\] = uniform\(-0\.2, 0\.2\)/);
    expect(text).toMatch(/conv\(.*\) .*: f32\[N, 6, 28, 28\]  # c1/);
  });

  it("runs LeNet-5 in the reference interpreter: probabilities sum to one for any batch size", () => {
    const g = compile(LENET);
    const params = initialParams(g, 0);
    for (const n of [1, 3]) {
      const x = randomTensor([n, 1, 28, 28], 7);
      const labels = RefTensor.from([...Array(n).keys()].map((i) => i % 10), [n], "i32");
      const r = interpret(g, { x, labels }, params);
      expect(r.outputs.probs!.shape).toEqual([n, 10]);
      for (let i = 0; i < n; i++) expectClose([r.outputs.probs!.data.slice(i * 10, i * 10 + 10).reduce((a, b) => a + b, 0)], [1], 1e-12);
      expect(r.outputs.xent!.shape).toEqual([]);
      expect(r.outputs.xent!.data[0]).toBeGreaterThan(0);
    }
  });

  it("names a second owning call in one binding .1 and honours name=", () => {
    const g = compile(`model M {
  input x: f32[N, 8]
  h = dense(x, 4) |> relu |> dense(3)
  k = dense(x, 5, name="enc")
  output y = concat([h, k], axis=1)
}`);
    expect(Object.keys(shapes(g))).toEqual(["h.weight", "h.bias", "h.1.weight", "h.1.bias", "enc.weight", "enc.bias"]);
    expect(typeToString(g.outputs[0]!.value.type)).toBe("f32[N, 8]");
  });

  it("inlines defs with parameters namespaced by the calling binding", () => {
    const g = compile(`
def block(x, c) {
  h = conv2d(x, filters=c, kernel=3, padding=1) |> relu
  o = conv2d(h, filters=c, kernel=3, padding=1)
  return relu(o + x)
}
model M {
  input x: f32[N, 4, 8, 8]
  r1 = block(x, 4)
  r2 = block(r1, 4)
  output y = r2
}`);
    expect(Object.keys(shapes(g))).toEqual([
      "r1.h.weight", "r1.h.bias", "r1.o.weight", "r1.o.bias",
      "r2.h.weight", "r2.h.bias", "r2.o.weight", "r2.o.bias",
    ]);
  });

  it("ties weights: a decoder uses the encoder's weight transposed, and no new parameter is created", () => {
    const g = compile(`model AE {
  input x: f32[N, 6]
  enc = dense(x, 3) |> sigmoid
  dec = dense(enc, 6, weight=transpose(enc.weight, [1, 0]))
  output y = dec
}`);
    expect(Object.keys(shapes(g))).toEqual(["enc.weight", "enc.bias", "dec.bias"]);
  });

  it("index notation equals the dense layer it spells out", () => {
    const g = compile(`model M {
  input x: f32[N, 3]
  param w: f32[3, 2]
  param b: f32[2] = normal(0, 1)
  y[i, k] = x[i, j] * w[j, k] + b[k]
  z[i, k] = 2 * x[i, j] * w[j, k] - b[k]
  output y
  output z
}`);
    const params = initialParams(g, 3);
    const x = randomTensor([2, 3], 5);
    const r = interpret(g, { x }, params);
    const w = params.w!;
    const b = params.b!;
    const want = (sign: number, scale: number) => {
      const out: number[] = [];
      for (let i = 0; i < 2; i++) for (let k = 0; k < 2; k++) {
        let s = 0;
        for (let j = 0; j < 3; j++) s += x.get(i, j) * w.get(j, k);
        out.push(scale * s + sign * b.get(k));
      }
      return out;
    };
    expectClose(r.outputs.y!.data, want(1, 1), 1e-12);
    expectClose(r.outputs.z!.data, want(-1, 2), 1e-12);
  });

  it("checks annotations with affine dims and binds symbols from inputs", () => {
    const g = compile(`model M {
  input x: f32[N, 1, L]
  c: f32[N, 2, L - 2] = conv1d(x, filters=2, kernel=3)
  s: f32[N, 2, floor((L - 2) / 2)] = maxpool1d(c, window=2)
  output y = s
}`);
    expect(g.symbols).toEqual(["N", "L"]);
    expect(typeToString(g.outputs[0]!.value.type)).toMatch(/^f32\[N, 2, /);
    const r = interpret(g, { x: randomTensor([2, 1, 11]) }, initialParams(g));
    expect(r.outputs.y!.shape).toEqual([2, 2, 4]);
  });

  it("explicit params get the requested initialisation (glorot by default, he, normal, zeros)", () => {
    const g = compile(`model M {
  input x: f32[N, 4]
  param a: f32[4, 6]
  param b: f32[4, 6] = he
  param c: f32[6] = zeros
  param d: f32[6] = uniform(-0.5, 0.25)
  output y = x @ (a + b) + c + d
}`);
    const inits = Object.fromEntries([...g.params.values()].map((p) => [p.name, p.init]));
    expect(inits.a).toEqual({ kind: "uniform", lo: -Math.sqrt(6 / 10), hi: Math.sqrt(6 / 10) });
    expect(inits.b).toEqual({ kind: "normal", mean: 0, std: Math.sqrt(2 / 6) });
    expect(inits.c).toEqual({ kind: "zeros" });
    expect(inits.d).toEqual({ kind: "uniform", lo: -0.5, hi: 0.25 });
  });

  it("compiles several models in one file, sharing defs", () => {
    const r = compileSource(`
def mlp(x, h) {
  return dense(x, h) |> relu
}
model A {
  input x: f32[N, 3]
  output y = mlp(x, 4)
}
model B {
  input x: f32[N, 5]
  output y = mlp(x, 2)
}`, "two.cnn");
    expect(r.diagnostics).toEqual([]);
    expect(r.graphs.map((g) => [g.name, parameterCount(g).total])).toEqual([
      ["A", 16],
      ["B", 12],
    ]);
  });

  it("interpreter rejects inputs whose sizes disagree with a bound symbol, naming both sizes", () => {
    const g = compile(`model M {
  input a: f32[N, 3]
  input b: f32[N, 3]
  output y = a + b
}`);
    expect(() => interpret(g, { a: randomTensor([2, 3]), b: randomTensor([4, 3]) }, {})).toThrow(/symbol N is 2 \(bound by input 'a'\), but dim 0 of 'b' is 4/);
    expect(() => interpret(g, { a: randomTensor([2, 4]), b: randomTensor([2, 3]) }, {})).toThrow(/input 'a': dim 1 must be 3/);
    expect(() => interpret(g, { a: randomTensor([2, 3]), b: RefTensor.zeros([2, 3], "i32") }, {})).toThrow(/input 'b': expected dtype f32, found i32/);
  });
});

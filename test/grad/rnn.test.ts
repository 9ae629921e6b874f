// Gradients of the `rnn` op (backpropagation through time, the backward op
// `rnn_grad`): finite differences on the float64 reference for every cell ×
// direction × return mode, with ragged lengths (0, 1, ⌈L/2⌉ and L) and initial
// states, and without either; bias=false, tied weights, static and symbolic
// (N, L). The generated JS gradient kernel is checked against the reference on
// every case, the WGSL one on a representative subset.

import { describe, expect, it } from "vitest";
import { differentiate } from "../../compiler/autodiff/reverse.ts";
import { CompileError } from "../../compiler/diagnostics.ts";
import type { RefTensor } from "../../compiler/reference/tensor.ts";
import { TestModel, randomTensor, t, type JsArg } from "../support/build.ts";
import { expectJsMatchesReference } from "../support/conformance.ts";
import { checkGradients, gradGraph } from "../support/gradcheck.ts";
import { expectWgslMatchesReference } from "../support/webgpu.ts";

type Direction = "forward" | "backward" | "bidirectional";
type Ret = "sequence" | "last";

const CELLS = [
  { cell: "elman", activation: "tanh" },
  { cell: "elman", activation: "relu" },
  { cell: "lstm" },
  { cell: "gru" },
  { cell: "mgu" },
] as const;
const DIRECTIONS: Direction[] = ["forward", "backward", "bidirectional"];
const RETURNS: Ret[] = ["sequence", "last"];

interface Spec {
  cell: string;
  activation?: string;
  direction: Direction;
  ret: Ret;
  H: number;
  D: number;
  lengths?: boolean;
  h0?: boolean;
  c0?: boolean;
  bias?: boolean;
  /** x's leading dims; default symbolic ["N", "L"]. */
  batch?: [number | string, number | string];
}

function build(s: Spec) {
  const m = new TestModel();
  const [nDim, lDim] = s.batch ?? ["N", "L"];
  const x = m.input("x", "f32", [nDim, lDim, s.D]);
  const dirs = s.direction === "bidirectional" ? 2 : 1;
  const kw: Record<string, JsArg> = { hidden: s.H, cell: s.cell, direction: s.direction, return: s.ret };
  if (s.activation) kw.activation = s.activation;
  if (s.bias === false) kw.bias = false;
  if (s.lengths) kw.lengths = m.input("len", "i32", [nDim]);
  if (s.h0) kw.h0 = m.input("h0", "f32", [dirs, nDim, s.H]);
  if (s.c0) kw.c0 = m.input("c0", "f32", [dirs, nDim, s.H]);
  m.output("y", m.call("rnn", [x], kw, "lm"));
  return { m, dirs };
}

/** Ragged lengths: full length, 0, a middle one, 1, then again. */
function raggedLengths(N: number, L: number): number[] {
  const pattern = [L, 0, Math.ceil(L / 2), 1];
  return Array.from({ length: N }, (_, n) => pattern[n % pattern.length]!);
}

function inputsFor(s: Spec, dirs: number, N: number, L: number, seed: number): Record<string, RefTensor> {
  const inputs: Record<string, RefTensor> = { x: randomTensor([N, L, s.D], seed, -1.5, 1.5) };
  if (s.lengths) inputs.len = t(raggedLengths(N, L), [N], "i32");
  if (s.h0) inputs.h0 = randomTensor([dirs, N, s.H], seed + 1);
  if (s.c0) inputs.c0 = randomTensor([dirs, N, s.H], seed + 2);
  return inputs;
}

const label = (c: { cell: string; activation?: string }) => (c.activation ? `${c.cell}/${c.activation}` : c.cell);

/** Finite differences on the reference, then the JS gradient kernels against the reference. */
function expectGradients(s: Spec, seed: number, [N, L]: readonly [number, number] = [4, 4]) {
  const { m, dirs } = build(s);
  const gg = checkGradients(m.graph, inputsFor(s, dirs, N, L, seed), { seed });
  expectJsMatchesReference(gg.graph, gg.inputs, { seed });
  return gg;
}

describe("rnn gradients: every cell × direction × return, ragged lengths with h0/c0, and plain", () => {
  let seed = 1;
  for (const c of CELLS) {
    for (const direction of DIRECTIONS) {
      for (const ret of RETURNS) {
        const lstm = c.cell === "lstm";
        const s1 = seed++;
        it(`${label(c)} ${direction} ${ret}: ragged (ℓ = 4, 0, 2, 1), h0${lstm ? ", c0" : ""}`, () => {
          expectGradients({ ...c, direction, ret, H: 3, D: 2, lengths: true, h0: true, c0: lstm }, s1);
        });
        const s2 = seed++;
        it(`${label(c)} ${direction} ${ret}: full length, zero initial state`, () => {
          expectGradients({ ...c, direction, ret, H: 2, D: 3 }, s2, [2, 3]);
        });
      }
    }
  }
});

describe("rnn gradients: options", () => {
  let seed = 100;
  for (const c of CELLS) {
    const s1 = seed++;
    it(`${label(c)} bidirectional without biases, ragged`, () => {
      expectGradients({ ...c, direction: "bidirectional", ret: "sequence", H: 2, D: 3, lengths: true, bias: false }, s1, [4, 3]);
    });
    const s2 = seed++;
    it(`${label(c)} H = 9, D = 10 (the JS kernel's unrolled dot products), ragged with h0`, () => {
      expectGradients({ ...c, direction: "forward", ret: "last", H: 9, D: 10, lengths: true, h0: true, c0: c.cell === "lstm" }, s2, [3, 3]);
    });
  }

  it("lstm with only c0 (h0 zeros)", () => {
    expectGradients({ cell: "lstm", direction: "bidirectional", ret: "last", H: 3, D: 2, c0: true }, 150, [3, 3]);
  });

  it("static N and L (folded into literals)", () => {
    expectGradients({ cell: "gru", direction: "bidirectional", ret: "sequence", H: 3, D: 2, lengths: true, h0: true, batch: [4, 3] }, 151, [4, 3]);
  });

  it("one graph, two symbolic (N, L) bindings", () => {
    const s: Spec = { cell: "lstm", direction: "backward", ret: "sequence", H: 3, D: 2, lengths: true, h0: true, c0: true };
    const { m, dirs } = build(s);
    for (const [N, L] of [[4, 5], [2, 1]] as const) {
      const gg = checkGradients(m.graph, inputsFor(s, dirs, N, L, 152 + N), { seed: 152 });
      expectJsMatchesReference(gg.graph, gg.inputs, { seed: 152 });
    }
  });

  it("'last' with ℓ = 0 passes dy straight to dh0; x there gets zeros", () => {
    const s: Spec = { cell: "gru", direction: "bidirectional", ret: "last", H: 2, D: 1, lengths: true, h0: true };
    const { m } = build(s);
    const inputs = { x: randomTensor([2, 3, 1], 4), len: t([0, 3], [2], "i32"), h0: randomTensor([2, 2, 2], 5) };
    const gg = checkGradients(m.graph, inputs);
    const out = expectJsMatchesReference(gg.graph, gg.inputs);
    const probe = gg.inputs.__probe!; // dy: [N, 2H]
    const dh0 = out["grad:h0"]!; // [2, N, H]
    for (const [d, j] of [[0, 0], [0, 1], [1, 0], [1, 1]]) expect(dh0.data[(d * 2 + 0) * 2 + j]).toBeCloseTo(probe.data[0 * 4 + d * 2 + j]!, 6);
    expect(Array.from(out["grad:x"]!.data.subarray(0, 3))).toEqual([0, 0, 0]);
  });

  it("tied weights: one tensor as weight_ih of both directions and as weight_hh", () => {
    const m = new TestModel();
    const x = m.input("x", "f32", ["N", "L", 3]);
    const W = m.input("W", "f32", [3, 3]);
    const len = m.input("len", "i32", ["N"]);
    m.output("y", m.call("rnn", [x], { hidden: 3, direction: "bidirectional", lengths: len, weight_ih: W, weight_ih_reverse: W, weight_hh: W }, "lm"));
    const gg = checkGradients(m.graph, { x: randomTensor([3, 4, 3], 7), W: randomTensor([3, 3], 8, -0.8, 0.8), len: t([4, 2, 1], [3], "i32") });
    expect(gg.names).toContain("grad:W");
    expectJsMatchesReference(gg.graph, gg.inputs);
  });

  it("relu at exactly 0: the derivative is 0 (h' > 0 side), on every target", async () => {
    // H = D = 1, W_ih = 1, b_ih = −1, W_hh = 0.5, b_hh = 0, x = [1, 2]: step 0's
    // pre-activation is exactly 0 (h = 0, no gradient through it), step 1's is 1.
    const m = new TestModel();
    const x = m.input("x", "f32", [1, 2, 1]);
    m.output("y", m.call("rnn", [x], { hidden: 1, activation: "relu" }, "lm"));
    const params = { "lm.weight_ih": t([1], [1, 1]), "lm.weight_hh": t([0.5], [1, 1]), "lm.bias_ih": t([-1]), "lm.bias_hh": t([0]) };
    const gg = gradGraph(m.graph, { x: t([1, 2], [1, 2, 1]) }, { params });
    const out = expectJsMatchesReference(gg.graph, gg.inputs, { params });
    const dy = gg.inputs.__probe!.data; // [1, 2, 1]
    // Only step 1 passes gradient: d/dW_ih = dy1·x1, d/db_ih = dy1, d/dW_hh = dy1·h0 = 0, dx = [0, dy1].
    expect(out["grad:lm.weight_ih"]!.data[0]).toBeCloseTo(2 * dy[1]!, 6);
    expect(out["grad:lm.bias_ih"]!.data[0]).toBeCloseTo(dy[1]!, 6);
    expect(out["grad:lm.weight_hh"]!.data[0]).toBe(0);
    expect(Array.from(out["grad:x"]!.data)).toEqual([0, Math.fround(dy[1]!)]);
    await expectWgslMatchesReference(gg.graph, gg.inputs, { params });
  });

  it("lengths carries no gradient: asking for it is E309", () => {
    const { m } = build({ cell: "lstm", direction: "forward", ret: "last", H: 2, D: 1, lengths: true });
    const g = m.graph.clone();
    const y = g.outputs[0]!.value;
    const loss = g.addNode("reduce", [y], { kind: "sum", axes: [0, 1], keepdims: false }, [{ dtype: "f32", shape: [] }]).outputs[0]!;
    try {
      differentiate(g, loss, [g.inputs.get("len")!]);
      expect.fail("expected E309");
    } catch (e) {
      expect(e).toBeInstanceOf(CompileError);
      expect((e as CompileError).diagnostics[0]!.code).toBe("E309");
    }
  });
});

describe("rnn gradients on WebGPU (representative subset)", () => {
  const cases: [string, Spec, [number, number]][] = [
    ["elman/tanh forward sequence, ragged, h0", { cell: "elman", activation: "tanh", direction: "forward", ret: "sequence", H: 3, D: 2, lengths: true, h0: true }, [4, 4]],
    ["elman/relu backward last", { cell: "elman", activation: "relu", direction: "backward", ret: "last", H: 3, D: 2 }, [3, 3]],
    ["lstm bidirectional sequence, ragged, h0 and c0", { cell: "lstm", direction: "bidirectional", ret: "sequence", H: 3, D: 2, lengths: true, h0: true, c0: true }, [4, 4]],
    ["gru forward last, ragged, h0", { cell: "gru", direction: "forward", ret: "last", H: 4, D: 3, lengths: true, h0: true }, [4, 3]],
    ["mgu bidirectional last, ragged, h0", { cell: "mgu", direction: "bidirectional", ret: "last", H: 3, D: 2, lengths: true, h0: true }, [4, 4]],
    ["lstm backward sequence without biases", { cell: "lstm", direction: "backward", ret: "sequence", H: 2, D: 3, bias: false }, [2, 3]],
  ];
  let seed = 400;
  for (const [name, s, [N, L]] of cases) {
    const caseSeed = seed++;
    it(name, async () => {
      const { m, dirs } = build(s);
      const gg = gradGraph(m.graph, inputsFor(s, dirs, N, L, caseSeed), { seed: caseSeed });
      await expectWgslMatchesReference(gg.graph, gg.inputs, { seed: caseSeed });
    });
  }

  it("gru and mgu with H = 70: several units per invocation (64 per workgroup)", async () => {
    for (const cell of ["gru", "mgu"]) {
      const s: Spec = { cell, direction: "forward", ret: "sequence", H: 70, D: 3, lengths: true };
      const { m, dirs } = build(s);
      const gg = gradGraph(m.graph, inputsFor(s, dirs, 3, 3, 450), { seed: 450 });
      await expectWgslMatchesReference(gg.graph, gg.inputs, { seed: 450 });
    }
  });
});

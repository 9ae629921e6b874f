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

/**
 * Builds the graph once and checks it against the reference at both sizes, with the
 * "cpu" layout (what lavapipe picks) and, when `gpu`, the "gpu" layout too.
 */
async function expectConforms(s: Spec, seed: number, { sizes = SIZES, gpu = false }: { sizes?: readonly (readonly [number, number])[]; gpu?: boolean } = {}): Promise<void> {
  const { m, dirs } = build(s);
  for (const adapterClass of gpu ? (["cpu", "gpu"] as const) : (["cpu"] as const)) {
    for (const [N, L] of sizes) {
      const out = await expectWgslMatchesReference(m.graph, inputsFor(s, dirs, N, L, seed + 10 * N + L), { seed, adapterClass });
      expect(out.y!.shape).toEqual(s.ret === "sequence" ? [N, L, s.H * dirs] : [N, s.H * dirs]);
    }
  }
}

const label = (c: (typeof CELLS)[number]) => ("activation" in c ? `${c.cell}/${c.activation}` : c.cell);

describe("webgpu rnn: every cell × direction × return, ragged and not", () => {
  // Every cell × direction × return runs with ragged lengths; without lengths, every cell ×
  // direction runs one return mode, alternating so each direction meets both across the
  // cells (the length-free path differs only in its step count and the missing zero fill).
  // Within a cell H ∈ {1, 3, 8} and D ∈ {1, 5} rotate so every pair occurs;
  // initial states and bias=false alternate. One ragged bidirectional case per cell (the
  // return mode alternating between cells) also runs the "gpu" layout.
  let seed = 1;
  CELLS.forEach((c, ci) => {
    let i = 0;
    DIRECTIONS.forEach((direction, di) => {
      RETURNS.forEach((ret, ri) => {
        for (const lengths of [false, true]) {
          if (!lengths && (ci + di + ri) % 2 === 1) continue;
          const H = [1, 3, 8][i % 3]!;
          const D = [1, 5][(i + ci) % 2]!;
          const h0 = i % 2 === 1;
          const bias = i % 4 !== 2;
          const c0 = c.cell === "lstm" && (h0 || i % 4 === 0);
          const gpu = lengths && direction === "bidirectional" && (ret === "sequence") === (ci % 2 === 0);
          const caseSeed = seed++;
          i++;
          const opts = [lengths ? "ragged" : "", h0 ? "h0" : "", c0 ? "c0" : "", bias ? "" : "no bias", gpu ? "both layouts" : ""].filter(Boolean).join(", ");
          it(`${label(c)} ${direction} ${ret} H=${H} D=${D}${opts ? ` (${opts})` : ""}`, async () => {
            await expectConforms({ ...c, direction, ret, H, D, lengths, h0, c0, bias }, caseSeed, { gpu });
          });
        }
      });
    });
  });

  it("'last' with ℓ = 0 returns h0 exactly in both directions, in both layouts", async () => {
    const { m } = build({ cell: "gru", direction: "bidirectional", ret: "last", H: 2, D: 1, lengths: true, h0: true });
    const h0 = t([1, 2, 3, 4, 5, 6, 7, 8], [2, 2, 2]);
    for (const adapterClass of ["cpu", "gpu"] as const) {
      const out = await expectWgslMatchesReference(m.graph, { x: randomTensor([2, 3, 1], 4), len: t([0, 3], [2], "i32"), h0 }, { adapterClass });
      expect(Array.from(out.y!.data.subarray(0, 4))).toEqual([1, 2, 5, 6]);
    }
  });
});

describe("webgpu rnn: work layouts", () => {
  const passesOf = (s: Spec) => {
    const { m } = build(s);
    return emitWgslProgram(m.graph, [m.graph.outputs[0]!.value]).passes;
  };

  it("H = 300 lstm: two units per invocation (\"gpu\"), 4 lanes per workgroup (\"cpu\"), vec4 rows (D = 8)", async () => {
    const s: Spec = { cell: "lstm", direction: "bidirectional", ret: "sequence", H: 300, D: 8, lengths: true, h0: true, c0: true };
    const [projections, recurrence] = passesOf(s);
    expect(projections!.code.cpu).toContain("array<vec4<f32>>"); // x and W_ih rows as vec4
    expect(recurrence!.code.gpu).toContain("@workgroup_size(256)");
    expect(recurrence!.code.cpu).toContain("@workgroup_size(4)"); // 4 lanes × 900 floats fill 14.4 KB
    await expectConforms(s, 400, { sizes: [[5, 4], [2, 2]], gpu: true });
  });

  it("H = 1400 mgu: the state outgrows workgroup memory and lives in scratch (both adapter classes)", async () => {
    const s: Spec = { cell: "mgu", direction: "backward", ret: "last", H: 1400, D: 4, lengths: true };
    const recurrence = passesOf(s)[1]!;
    expect(recurrence.scratch.length).toBe(2); // t0 projections, t1 state
    expect(recurrence.code.cpu).toBe(recurrence.code.gpu);
    expect(recurrence.code.gpu).not.toContain("var<workgroup>");
    await expectConforms(s, 401, { sizes: [[3, 3], [2, 1]] });
  });

  it("gru H = 12, D = 16, no bias: vec4 rows in both weights, more sequences than one workgroup's lanes", async () => {
    await expectConforms({ cell: "gru", direction: "bidirectional", ret: "sequence", H: 12, D: 16, h0: true, lengths: true, bias: false }, 402, { sizes: [[11, 3], [9, 2]], gpu: true });
  });
});

describe("webgpu rnn: runtime errors reject the run", () => {
  async function executor(m: TestModel, adapterClass: "cpu" | "gpu") {
    const { device } = await gpuDevice();
    return wgslExecutor(m.graph, device, adapterClass, initialParams(m.graph, 0));
  }

  it.each(["cpu", "gpu"] as const)("a length outside [0, L] names the length and the sequence; valid lengths then run (%s layout)", async (adapterClass) => {
    const { m } = build({ cell: "gru", direction: "bidirectional", ret: "sequence", H: 2, D: 1, lengths: true });
    const ex = await executor(m, adapterClass);
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

  it.each(["cpu", "gpu"] as const)("a lengths or h0 batch that differs from x's at run time is an error (%s layout)", async (adapterClass) => {
    const m = new TestModel();
    const x = m.input("x", "f32", ["N", "L", 1]);
    const len = m.input("len", "i32", ["B"]);
    const h0 = m.input("h0", "f32", [1, "M", 2]);
    m.output("y", m.call("rnn", [x], { hidden: 2, lengths: len, h0 }, "lm"));
    const ex = await executor(m, adapterClass);
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
    const [projections, recurrence] = emitWgslProgram(m.graph, [m.graph.outputs[0]!.value]).passes;
    expect(projections!.code.gpu).toBe(projections!.code.cpu);
    const text = [projections!.code.cpu, `// ---- "cpu" layout\n${recurrence!.code.cpu}`, `// ---- "gpu" layout\n${recurrence!.code.gpu}`].join("\n");
    await expect(text).toMatchFileSnapshot("__golden__/rnn-lstm-bidirectional.wgsl");
  });
});

// Gradient of `embedding` with respect to its table: a scatter-add of the dy
// rows by token id (repeated tokens add up), zero for the padding_idx row and
// for rows no token names, none for the token ids. Checked against float64
// finite differences on the reference interpreter, then the generated
// `embedding_grad` kernels: the JS sequential scatter and the WGSL counting
// sort + per-row gather.

import { describe, expect, it } from "vitest";
import { jsExecutor } from "../../compiler/codegen/js/execute.ts";
import { wgslExecutor } from "../../compiler/codegen/wgsl/execute.ts";
import { CompileError } from "../../compiler/diagnostics.ts";
import { initialParams, interpret } from "../../compiler/reference/interpreter.ts";
import { RefTensor } from "../../compiler/reference/tensor.ts";
import { TestModel, randomTensor, t } from "../support/build.ts";
import { expectJsMatchesReference } from "../support/conformance.ts";
import { checkGradients, gradGraph } from "../support/gradcheck.ts";
import { expectWgslMatchesReference, gpuDevice } from "../support/webgpu.ts";

/** Deterministic token ids in [0, vocab). */
function tokens(shape: number[], vocab: number, seed: number): RefTensor {
  const u = randomTensor(shape, seed, 0, 1);
  return new RefTensor("i32", shape, u.data.map((v) => Math.min(vocab - 1, Math.floor(v * vocab))));
}

function embedModel(shape: (number | string)[], vocab: number, dim: number, paddingIdx?: number) {
  const m = new TestModel();
  const tok = m.input("tok", "i32", shape);
  const kw: Record<string, number> = { vocab, dim };
  if (paddingIdx !== undefined) kw.padding_idx = paddingIdx;
  m.output("e", m.call("embed", [tok], kw, "emb"));
  return m;
}

/** The table gradient by hand: dw[tok[k], :] += w[k, :], nothing for padding tokens. */
function expectedGrad(tok: RefTensor, w: RefTensor, vocab: number, dim: number, paddingIdx?: number): number[] {
  const dw = new Array<number>(vocab * dim).fill(0);
  for (let k = 0; k < tok.size; k++) {
    const id = tok.data[k]!;
    if (id === paddingIdx) continue;
    for (let j = 0; j < dim; j++) dw[id * dim + j] += w.data[k * dim + j]!;
  }
  return dw;
}

/** The gradient check, the hand-computed table gradient and the JS kernels, for one run. */
function check(shape: (number | string)[], vocab: number, dim: number, tok: RefTensor, paddingIdx?: number) {
  const m = embedModel(shape, vocab, dim, paddingIdx);
  const gg = checkGradients(m.graph, { tok });
  expect(gg.names).toEqual(["grad:emb.weight"]);
  const dw = interpret(gg.graph, gg.inputs, initialParams(gg.graph, 0)).outputs["grad:emb.weight"]!;
  const want = expectedGrad(tok, gg.inputs.__probe!, vocab, dim, paddingIdx);
  Array.from(dw.data).forEach((v, i) => expect(v).toBeCloseTo(want[i]!, 12));
  expectJsMatchesReference(gg.graph, gg.inputs);
  return gg;
}

describe("embedding gradient", () => {
  it("rank-1 tokens [L] at two lengths, with repeated tokens", () => {
    for (const L of [6, 1]) check(["L"], 4, 3, tokens([L], 4, L));
    check(["L"], 5, 2, t([3, 1, 3, 3, 0, 1], [6], "i32"));
  });
  it("rank-2 tokens [N, L] at two sizes; more tokens than rows", () => {
    for (const [N, L] of [[2, 3], [4, 5]] as const) check(["N", "L"], 5, 3, tokens([N, L], 5, N * 10 + L));
  });
  it("rank-0 and rank-3 tokens, dim 1, static sizes", () => {
    check([], 4, 6, t([3], [], "i32"));
    check(["N", 2, "L"], 9, 1, tokens([3, 2, 4], 9, 5));
    check([2, 3], 5, 2, tokens([2, 3], 5, 6));
  });
  it("padding_idx: that row gets exactly zero, even when its token repeats; other rows add up", () => {
    const tok = t([2, 1, 2, 0, 4, 2, 1, 3], [2, 4], "i32");
    const gg = check(["N", "L"], 5, 3, tok, 2);
    const dw = interpret(gg.graph, gg.inputs, initialParams(gg.graph, 0)).outputs["grad:emb.weight"]!;
    expect(Array.from(dw.data.subarray(6, 9))).toEqual([0, 0, 0]);
    check(["N", "L"], 5, 3, tokens([3, 4], 5, 8), 0);
    check(["L"], 3, 2, t([1, 1, 1], [3], "i32"), 1); // only padding: all zeros
  });
  it("token ids carry no gradient: asking for one is E309", () => {
    const m = embedModel(["N", "L"], 5, 3);
    try {
      checkGradients(m.graph, { tok: tokens([2, 3], 5, 1) }, { wrt: ["tok"] });
      expect.fail("expected E309");
    } catch (e) {
      expect(e).toBeInstanceOf(CompileError);
      expect((e as CompileError).diagnostics[0]!.code).toBe("E309");
    }
  });
  it("an out-of-range token fails the backward too, on the reference and JS (never an out-of-bounds access)", () => {
    const m = embedModel(["N", "L"], 5, 3, 0);
    const gg = gradGraph(m.graph, { tok: tokens([2, 3], 5, 1) });
    // only the gradient output, so the forward embedding is not run at all
    const bad = { ...gg.inputs, tok: t([0, 1, 2, 3, 4, 9], [2, 3], "i32") };
    const message = "token 9 at position [1, 2] is outside the vocabulary [0, 5)";
    expect(() => interpret(gg.graph, bad, {}, { outputs: ["grad:emb.weight"] })).toThrow(message);
    expect(() => jsExecutor(gg.graph, ["grad:emb.weight"]).run(bad, { "emb.weight": randomTensor([5, 3], 1) }, { symbols: { N: 2, L: 3 } })).toThrow(message);
  });
});

describe("embedding gradient on WebGPU", () => {
  it("repeated tokens, symbolic N and L at two sizes, rank 1 and 3, dim 1", async () => {
    const m = embedModel(["N", "L"], 5, 3);
    for (const [N, L] of [[2, 3], [4, 5]] as const) {
      const gg = checkGradients(m.graph, { tok: tokens([N, L], 5, N * 10 + L) });
      await expectWgslMatchesReference(gg.graph, gg.inputs);
    }
    const r1 = checkGradients(embedModel(["L"], 5, 2).graph, { tok: t([3, 1, 3, 3, 0, 1], [6], "i32") });
    await expectWgslMatchesReference(r1.graph, r1.inputs);
    const r3 = checkGradients(embedModel(["N", 2, "L"], 9, 1).graph, { tok: tokens([3, 2, 4], 9, 5) });
    await expectWgslMatchesReference(r3.graph, r3.inputs);
  });
  it("padding_idx row is zero", async () => {
    const gg = checkGradients(embedModel(["N", "L"], 5, 3, 2).graph, { tok: t([2, 1, 2, 0, 4, 2, 1, 3], [2, 4], "i32") });
    const got = await expectWgslMatchesReference(gg.graph, gg.inputs);
    expect(Array.from(got["grad:emb.weight"]!.data.subarray(6, 9))).toEqual([0, 0, 0]);
  });
  it("an out-of-range token is reported by the backward's sort pass, which never uses it", async () => {
    const m = embedModel(["N", "L"], 5, 3, 0);
    const gg = gradGraph(m.graph, { tok: tokens([2, 3], 5, 1) });
    const { device, adapterClass } = await gpuDevice();
    // only the gradient output, so the forward embedding is not run at all
    const ex = await wgslExecutor(gg.graph, device, adapterClass, { "emb.weight": randomTensor([5, 3], 1) }, ["grad:emb.weight"]);
    try {
      const bad = { ...gg.inputs, tok: t([0, 1, 2, 3, 4, 9], [2, 3], "i32") };
      await expect(ex.run(bad)).rejects.toThrow("token 9 at flat position 5 is outside the vocabulary [0, 5)");
      // the same executor still computes the gradient for valid tokens afterwards
      const ok = await ex.run({ ...gg.inputs, tok: t([1, 1, 2, 3, 4, 1], [2, 3], "i32") });
      const w = gg.inputs.__probe!.data.map(Math.fround);
      const row1 = [0, 1, 2].map((j) => w[j]! + w[3 + j]! + w[15 + j]!);
      Array.from(ok["grad:emb.weight"]!.data.subarray(3, 6)).forEach((v, j) => expect(v).toBeCloseTo(row1[j]!, 5));
    } finally {
      ex.dispose();
    }
  });
});

// The JS `embedding` kernel against the float64 reference: rank-0/1/2/3 token
// tensors, symbolic and static sizes, padding_idx, and out-of-range tokens.

import { describe, expect, it } from "vitest";
import { jsExecutor } from "../../compiler/codegen/js/execute.ts";
import { emitProgram } from "../../compiler/codegen/js/program.ts";
import { RefTensor } from "../../compiler/reference/tensor.ts";
import { TestModel, randomTensor, t } from "../support/build.ts";
import { expectJsMatchesReference } from "../support/conformance.ts";

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

describe("js embedding: conformance", () => {
  it("rank-1 tokens [L] at two lengths", () => {
    const m = embedModel(["L"], 7, 4);
    for (const L of [5, 1]) {
      const out = expectJsMatchesReference(m.graph, { tok: tokens([L], 7, L) });
      expect(out.e!.shape).toEqual([L, 4]);
    }
  });

  it("rank-2 tokens [N, L] at two sizes", () => {
    const m = embedModel(["N", "L"], 5, 3);
    for (const [N, L] of [[2, 3], [4, 1]] as const) {
      const out = expectJsMatchesReference(m.graph, { tok: tokens([N, L], 5, N * 10 + L) }, { seed: 3 });
      expect(out.e!.shape).toEqual([N, L, 3]);
    }
  });

  it("rank-0 and rank-3 tokens, dim 1, static sizes", () => {
    expectJsMatchesReference(embedModel([], 4, 6).graph, { tok: t([3], [], "i32") });
    expectJsMatchesReference(embedModel(["N", 2, "L"], 9, 1).graph, { tok: tokens([3, 2, 4], 9, 5) });
    expectJsMatchesReference(embedModel([2, 3], 5, 2).graph, { tok: tokens([2, 3], 5, 6) });
  });

  it("padding_idx rows are zeros (the stored row is not), every other row is looked up", () => {
    const m = embedModel(["N", "L"], 5, 3, 2);
    const table = t(Array.from({ length: 15 }, (_, k) => 10 * Math.floor(k / 3) + (k % 3) + 1), [5, 3]);
    for (const [N, L] of [[1, 4], [2, 3]] as const) {
      const tok = t(Array.from({ length: N * L }, (_, k) => [2, 1, 2, 0, 4, 3][k % 6]!), [N, L], "i32");
      const out = expectJsMatchesReference(m.graph, { tok }, { params: { "emb.weight": table } });
      for (let k = 0; k < N * L; k++) {
        const row = Array.from(out.e!.data.subarray(k * 3, k * 3 + 3));
        const id = tok.data[k]!;
        expect(row).toEqual(id === 2 ? [0, 0, 0] : [10 * id + 1, 10 * id + 2, 10 * id + 3]);
      }
    }
  });
});

describe("js embedding: out-of-range tokens", () => {
  const cases: [string, (number | string)[], RefTensor, Record<string, number>, string][] = [
    ["too large, rank 2", ["N", "L"], t([0, 1, 2, 3, 4, 9], [2, 3], "i32"), { N: 2, L: 3 }, "token 9 at position [1, 2] is outside the vocabulary [0, 5)"],
    ["negative, rank 2", ["N", "L"], t([0, 1, -1, 3], [2, 2], "i32"), { N: 2, L: 2 }, "token -1 at position [1, 0] is outside the vocabulary [0, 5)"],
    ["equal to vocab, rank 1", ["L"], t([1, 5], [2], "i32"), { L: 2 }, "token 5 at position [1] is outside the vocabulary [0, 5)"],
    ["rank 3 position", ["N", 2, "L"], t([0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 7, 0], [2, 2, 3], "i32"), { N: 2, L: 3 }, "token 7 at position [1, 1, 1] is outside the vocabulary [0, 5)"],
    ["rank 0", [], t([6], [], "i32"), {}, "token 6 at position [] is outside the vocabulary [0, 5)"],
  ];
  for (const [name, shape, tok, symbols, message] of cases) {
    it(`${name}: the JS run throws naming the token and its position`, () => {
      const m = embedModel(shape, 5, 3, 0);
      const weight = randomTensor([5, 3], 1);
      expect(() => jsExecutor(m.graph).run({ tok }, { "emb.weight": weight }, { symbols })).toThrow(message);
      // The reference agrees on the error.
      expect(() => m.run({ tok }, { "emb.weight": weight })).toThrow(message);
    });
  }
});

describe("js embedding: generated code", () => {
  it("tokens [N, L], padding_idx (golden)", async () => {
    const src = emitProgram(embedModel(["N", "L"], 5, 3, 2).graph).kernels.find((k) => k.includes("_embedding_"))!;
    expect(src).not.toContain("new ");
    await expect(src).toMatchFileSnapshot("__golden__/embedding-padding.js");
  });
});

// The WGSL `embedding` kernel on a real WebGPU device (Dawn; lavapipe here)
// against the float64 reference: rank-0/1/2 token tensors at two symbolic sizes,
// padding_idx, and out-of-range tokens (the run rejects naming the token).

import { describe, expect, it } from "vitest";
import { emitWgslProgram } from "../../compiler/codegen/wgsl/program.ts";
import { wgslExecutor } from "../../compiler/codegen/wgsl/execute.ts";
import { RefTensor } from "../../compiler/reference/tensor.ts";
import { TestModel, randomTensor, t } from "../support/build.ts";
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

describe("webgpu embedding: conformance", () => {
  it("rank-1 tokens [L] at two lengths", async () => {
    const m = embedModel(["L"], 7, 4);
    for (const L of [5, 1]) {
      const out = await expectWgslMatchesReference(m.graph, { tok: tokens([L], 7, L) });
      expect(out.e!.shape).toEqual([L, 4]);
    }
  });

  it("rank-2 tokens [N, L] at two sizes, a table wider than one workgroup", async () => {
    const m = embedModel(["N", "L"], 11, 67);
    for (const [N, L] of [[2, 3], [5, 7]] as const) {
      const out = await expectWgslMatchesReference(m.graph, { tok: tokens([N, L], 11, N * 10 + L) }, { seed: 3 });
      expect(out.e!.shape).toEqual([N, L, 67]);
    }
  });

  it("rank-0 and static rank-3 tokens, dim 1", async () => {
    await expectWgslMatchesReference(embedModel([], 4, 6).graph, { tok: t([3], [], "i32") });
    await expectWgslMatchesReference(embedModel([3, 2, 4], 9, 1).graph, { tok: tokens([3, 2, 4], 9, 5) });
  });

  it("padding_idx rows are zeros, every other row is looked up", async () => {
    const m = embedModel(["N", "L"], 5, 3, 2);
    const table = t(Array.from({ length: 15 }, (_, k) => 10 * Math.floor(k / 3) + (k % 3) + 1), [5, 3]);
    for (const [N, L] of [[1, 4], [2, 3]] as const) {
      const tok = t(Array.from({ length: N * L }, (_, k) => [2, 1, 2, 0, 4, 3][k % 6]!), [N, L], "i32");
      const out = await expectWgslMatchesReference(m.graph, { tok }, { params: { "emb.weight": table } });
      for (let k = 0; k < N * L; k++) {
        const id = tok.data[k]!;
        expect(Array.from(out.e!.data.subarray(k * 3, k * 3 + 3))).toEqual(id === 2 ? [0, 0, 0] : [10 * id + 1, 10 * id + 2, 10 * id + 3]);
      }
    }
  });
});

describe("webgpu embedding: out-of-range tokens reject the run", () => {
  const cases: [string, (number | string)[], RefTensor, string][] = [
    ["too large, rank 2", ["N", "L"], t([0, 1, 2, 3, 4, 9], [2, 3], "i32"), "token 9 at flat position 5 is outside the vocabulary [0, 5)"],
    ["negative, rank 2", ["N", "L"], t([0, 1, -1, 3], [2, 2], "i32"), "token -1 at flat position 2 is outside the vocabulary [0, 5)"],
    ["equal to vocab, rank 1", ["L"], t([1, 5], [2], "i32"), "token 5 at flat position 1 is outside the vocabulary [0, 5)"],
  ];
  for (const [name, shape, tok, message] of cases) {
    it(`${name}: the message names the token and its flat position`, async () => {
      const m = embedModel(shape, 5, 3, 0);
      const weight = randomTensor([5, 3], 1);
      const { device, adapterClass } = await gpuDevice();
      const ex = await wgslExecutor(m.graph, device, adapterClass, { "emb.weight": weight });
      try {
        await expect(ex.run({ tok })).rejects.toThrow(message);
        // The same executor still runs valid tokens afterwards (the error state is reset per run).
        const ok = await ex.run({ tok: new RefTensor("i32", tok.shape, tok.data.map(() => 1)) });
        expect(Array.from(ok.e!.data.subarray(0, 3))).toEqual(Array.from(weight.data.subarray(3, 6)).map(Math.fround));
      } finally {
        ex.dispose();
      }
    });
  }
});

describe("webgpu embedding: generated WGSL", () => {
  it("matches the golden kernel (rank-2 symbolic tokens, padding_idx)", async () => {
    const m = embedModel(["N", "L"], 100, 16, 0);
    const program = emitWgslProgram(m.graph, m.graph.outputs.map((o) => o.value));
    const pass = program.passes.find((p) => p.node.op === "embedding")!;
    await expect(pass.code.cpu).toMatchFileSnapshot("__golden__/embedding.wgsl");
    expect(pass.code.gpu).toBe(pass.code.cpu);
  });
});

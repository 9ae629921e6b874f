import { describe, expect, it } from "vitest";
import { typeToString } from "../../compiler/ir/types.ts";
import { RunError } from "../../compiler/reference/interpreter.ts";
import { TestModel, diagnosticsOf, expectClose, t } from "../support/build.ts";

// A 5 x 3 table whose row r is [10r, 10r + 1, 10r + 2]: every lookup is recognisable.
const table = t(Array.from({ length: 15 }, (_, k) => 10 * Math.floor(k / 3) + (k % 3)), [5, 3]);

function tokenModel(keywords: Record<string, number> = {}) {
  const m = new TestModel();
  const tok = m.input("tok", "i32", ["N", "L"]);
  const e = m.call("embed", [tok], { vocab: 5, dim: 3, ...keywords }, "emb");
  m.output("e", e);
  return { m, e };
}

describe("embed", () => {
  it("looks up rows, keeping symbolic leading dims", () => {
    const { m, e } = tokenModel();
    expect(typeToString(e.type)).toBe("f32[N, L, 3]");
    const p = m.graph.params.get("emb.weight")!;
    expect(typeToString(p.value.type)).toBe("f32[5, 3]");
    expect(p.init).toEqual({ kind: "normal", mean: 0, std: 1 });
    const r = m.run({ tok: t([4, 0, 2, 2, 1, 3], [2, 3], "i32") }, { "emb.weight": table });
    expect(r.outputs.e!.shape).toEqual([2, 3, 3]);
    expectClose(r.outputs.e!.data, [40, 41, 42, 0, 1, 2, 20, 21, 22, 20, 21, 22, 10, 11, 12, 30, 31, 32]);
  });

  it("accepts rank-0 and rank-1 token tensors", () => {
    const m = new TestModel();
    const s = m.input("s", "i32", []);
    const y = m.call("embed", [s, 5, 3], {}, "emb");
    expect(typeToString(y.type)).toBe("f32[3]");
    m.output("y", y);
    expectClose(m.run({ s: t([3], [], "i32") }, { "emb.weight": table }).outputs.y!.data, [30, 31, 32]);
  });

  it("embeds padding_idx tokens as zeros even when the stored row is not zero", () => {
    const { m } = tokenModel({ padding_idx: 2 });
    const node = m.graph.nodes.find((n) => n.op === "embedding")!;
    expect(node.attrs.paddingIdx).toBe(2);
    const r = m.run({ tok: t([2, 1, 2, 0], [1, 4], "i32") }, { "emb.weight": table });
    expectClose(r.outputs.e!.data, [0, 0, 0, 10, 11, 12, 0, 0, 0, 0, 1, 2]);
  });

  it("treats padding_idx=-1 (the default) as no padding index, not the last row", () => {
    const { m } = tokenModel({ padding_idx: -1 });
    expect(m.graph.nodes.find((n) => n.op === "embedding")!.attrs.paddingIdx).toBeNull();
    const r = m.run({ tok: t([4], [1, 1], "i32") }, { "emb.weight": table });
    expectClose(r.outputs.e!.data, [40, 41, 42]);
  });

  it("fails at run time on a token outside [0, vocab), naming the token and its position", () => {
    const { m } = tokenModel();
    const run = (tokens: number[]) => m.run({ tok: t(tokens, [2, 2], "i32") }, { "emb.weight": table });
    expect(() => run([0, 1, 5, 2])).toThrow(RunError);
    expect(() => run([0, 1, 5, 2])).toThrow("token 5 at position [1, 0] is outside the vocabulary [0, 5)");
    expect(() => run([0, -1, 3, 2])).toThrow("token -1 at position [0, 1] is outside the vocabulary [0, 5)");
    // A padding index gives no exemption from the range check.
    const padded = tokenModel({ padding_idx: 0 }).m;
    expect(() => padded.run({ tok: t([0, 7], [1, 2], "i32") }, { "emb.weight": table })).toThrow("token 7 at position [0, 1]");
  });

  it("uses an existing tensor as a tied table, reading vocab and dim from it", () => {
    const m = new TestModel();
    const tok = m.input("tok", "i32", ["N"]);
    const w = m.input("w", "f32", [5, 3]);
    const y = m.call("embed", [tok], { weight: w }, "emb");
    m.output("y", y);
    expect(m.graph.params.size).toBe(0);
    expect(typeToString(y.type)).toBe("f32[N, 3]");
    expectClose(m.run({ tok: t([1, 4], [2], "i32"), w: table }).outputs.y!.data, [10, 11, 12, 40, 41, 42]);
  });

  it("rejects non-i32 tokens (E213)", () => {
    const m = new TestModel();
    const x = m.input("x", "f32", ["N"]);
    const [d] = diagnosticsOf(() => m.call("embed", [x], { vocab: 5, dim: 3 }, "emb"));
    expect(d!.code).toBe("E213");
    expect(d!.message).toBe("embed 'emb': tokens must be i32 token ids, found f32[N]");
    expect(d!.notes).toEqual(["x is f32[N]"]);
  });

  it("rejects a padding_idx outside [0, vocab) other than -1 (E404)", () => {
    for (const [idx, msg] of [
      [5, "embed 'emb': padding_idx must be in [0, 5) or -1 for none, found 5"],
      [-2, "embed 'emb': padding_idx must be in [0, 5) or -1 for none, found -2"],
    ] as const) {
      const m = new TestModel();
      const tok = m.input("tok", "i32", ["N"]);
      const [d] = diagnosticsOf(() => m.call("embed", [tok], { vocab: 5, dim: 3, padding_idx: idx }, "emb"));
      expect(d!.code).toBe("E404");
      expect(d!.message).toBe(msg);
    }
  });

  it("rejects a non-positive vocab or dim (E404) and a missing one (E401)", () => {
    const m = new TestModel();
    const tok = m.input("tok", "i32", ["N"]);
    const [d] = diagnosticsOf(() => m.call("embed", [tok], { vocab: 0, dim: 3 }, "emb"));
    expect(d!.code).toBe("E404");
    expect(d!.message).toBe("embed 'emb': argument 'vocab' must be a positive integer, found 0");
    const [e] = diagnosticsOf(() => m.call("embed", [tok], { vocab: 4 }, "emb2"));
    expect(e!.code).toBe("E401");
    expect(e!.message).toBe("embed 'emb2': missing argument 'dim'");
  });

  it("rejects a tied table of the wrong shape (E216)", () => {
    const m = new TestModel();
    const tok = m.input("tok", "i32", ["N"]);
    const w = m.input("w", "f32", [4, 3]);
    const [d] = diagnosticsOf(() => m.call("embed", [tok], { vocab: 5, dim: 3, weight: w }, "emb"));
    expect(d!.code).toBe("E216");
    expect(d!.message).toBe("embed 'emb': tensor passed as weight= must be f32[5, 3], found f32[4, 3]");
    const w3 = m.input("w3", "f32", [2, 3, 4]);
    const [e] = diagnosticsOf(() => m.call("embed", [tok], { weight: w3 }, "emb2"));
    expect(e!.code).toBe("E216");
    expect(e!.message).toBe("embed 'emb2': tensor passed as weight= must be a static f32[vocab, dim] table, found f32[2, 3, 4]");
  });
});

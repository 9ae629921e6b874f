// Conformance of the JS einsum kernels (GEMM and general loop nest) with the
// float64 reference, over dense, matmul, einsum specs and index notation.

import { describe, expect, it } from "vitest";
import { hasJsKernel } from "../../compiler/codegen/js/index.ts";
import { jsExecutor } from "../../compiler/codegen/js/execute.ts";
import type { Graph, Value } from "../../compiler/ir/graph.ts";
import { einsumTerm } from "../../compiler/ops/einsum.ts";
import type { LowerCtx } from "../../compiler/ops/op.ts";
import { RefTensor } from "../../compiler/reference/tensor.ts";
import { TestModel, randomTensor, t } from "../support/build.ts";
import { expectJsMatchesReference } from "../support/conformance.ts";

type Shape = readonly (number | string)[];

/** Concrete shape for a declared one, with the given symbol values. */
function concrete(shape: Shape, env: Record<string, number>): number[] {
  return shape.map((d) => (typeof d === "number" ? d : env[d]!));
}

/** The generated source of the graph's only einsum kernel. */
function einsumSource(g: Graph): string {
  const ks = jsExecutor(g).program.kernels.filter((k) => /function k\d+_einsum/.test(k));
  expect(ks).toHaveLength(1);
  return ks[0]!;
}

/**
 * Builds `callee(inputs..., extra...)` over inputs with declared (possibly
 * symbolic) shapes and checks the JS target against the reference for each
 * binding of the symbols. Returns the kernel source.
 */
function check(callee: string, shapes: readonly Shape[], envs: readonly Record<string, number>[], lead: readonly (string | number)[] = [], keywords: Record<string, string | number | boolean> = {}): string {
  const m = new TestModel();
  const xs = shapes.map((s, i) => m.input(`x${i}`, "f32", s));
  const y = m.call(callee, callee === "dense" ? [xs[0]!, ...lead] : [...lead, ...xs], keywords, "f1");
  m.output("y", y);
  envs.forEach((env, e) => {
    const inputs = Object.fromEntries(shapes.map((s, i) => [`x${i}`, randomTensor(concrete(s, env), 7 + 13 * i + 101 * e)]));
    expectJsMatchesReference(m.graph, inputs, { seed: e });
  });
  return einsumSource(m.graph);
}

describe("dense (x · Wᵀ) on the JS target", () => {
  const layers: [number, number][] = [[1, 1], [1, 3], [3, 1], [3, 2], [5, 4], [7, 9], [16, 8], [13, 6], [400, 120]];
  it.each(layers)("[N, %i] -> [N, %i] for N = 1 and 5", (fanIn, units) => {
    const src = check("dense", [["N", fanIn]], [{ N: 1 }, { N: 5 }], [units], { bias: false });
    // A fan-in of 1 leaves nothing to sum: an outer product, done by the general nest.
    expect(src).toContain(fanIn > 1 ? "GEMM" : "loop nest");
    if (fanIn > 1) expect(src).toContain("const size_m = S.N;");
  });

  it.each([[4, 3], [10, 7], [9, 1]])("[N, L, %i] -> [N, L, %i] merges N·L into one row loop", (fanIn, units) => {
    const src = check("dense", [["N", "L", fanIn]], [{ N: 2, L: 3 }, { N: 1, L: 5 }], [units], { bias: false });
    expect(src).toContain("const size_m = S.L * S.N;");
  });

  it("runs on a static batch with no symbols", () => {
    check("dense", [[3, 6]], [{}], [5], { bias: false });
  });

  it("adds the bias (with the elementwise add kernel)", () => {
    check("dense", [["N", 12]], [{ N: 2 }, { N: 3 }], [5]);
  });
});

describe("matmul on the JS target", () => {
  const sizes: [number, number, number][] = [[1, 1, 1], [1, 5, 1], [2, 3, 4], [5, 7, 3], [4, 4, 8], [9, 13, 6], [3, 1, 10], [6, 2, 1]];
  it.each(sizes)("[%i, k=%i] @ [k, %i] (2-D)", (mm, k, n) => {
    expect(check("matmul", [[mm, k], [k, n]], [{}])).toContain(k > 1 && mm * n > 1 ? "GEMM" : "loop nest");
  });

  it("batched [N, m, k] @ [N, k, n] for two N", () => {
    check("matmul", [["N", 5, 6], ["N", 6, 7]], [{ N: 1 }, { N: 3 }]);
  });

  it("broadcasts a rank-2 right operand over the batch: [N, m, k] @ [k, n]", () => {
    const src = check("matmul", [["N", 5, 6], [6, 9]], [{ N: 1 }, { N: 4 }]);
    expect(src).toContain("const size_m = 5 * S.N;"); // the batch merges into the rows
  });

  it("broadcasts a size-1 batch: [1, m, k] @ [N, k, n]", () => {
    check("matmul", [[1, 3, 4], ["N", 4, 5]], [{ N: 1 }, { N: 3 }]);
  });

  it("broadcasts batch dims both ways: [N, 1, m, k] @ [3, k, n] and [2, 1, m, k] @ [1, 3, k, n]", () => {
    check("matmul", [["N", 1, 2, 3], [3, 3, 4]], [{ N: 1 }, { N: 2 }]);
    check("matmul", [[2, 1, 3, 5], [1, 3, 5, 2]], [{}]);
  });

  it("handles symbolic inner and outer sizes", () => {
    check("matmul", [["M", "K"], ["K", "P"]], [{ M: 3, K: 5, P: 7 }, { M: 1, K: 1, P: 1 }, { M: 6, K: 2, P: 9 }]);
  });

  it("promotes 1-D operands: [k] @ [k], [k] @ [k, n], [m, k] @ [k], [N, m, k] @ [k], [k] @ [N, k, n]", () => {
    check("matmul", [[7], [7]], [{}]);
    check("matmul", [[5], [5, 6]], [{}]);
    check("matmul", [[6, 5], [5]], [{}]);
    check("matmul", [["N", 3, 5], [5]], [{ N: 1 }, { N: 2 }]);
    check("matmul", [[4], ["N", 4, 6]], [{ N: 2 }, { N: 3 }]);
  });

  it("blocks the rows of the matrix in a matrix-vector product", () => {
    const src = check("matmul", [[9, 5], [5]], [{}]);
    expect(src).toContain("GEMM: blocks of 4 m outputs");
  });
});

describe("einsum specs on the JS target", () => {
  const es = (spec: string, shapes: readonly Shape[], envs: readonly Record<string, number>[] = [{}]) => check("einsum", shapes, envs, [spec]);

  it.each([
    ["ij,jk->ik", [[5, 6], [6, 7]]],
    ["ji,jk->ik", [[6, 5], [6, 7]]],
    ["ij,kj->ik", [[5, 6], [7, 6]]],
    ["ji,kj->ik", [[6, 5], [7, 6]]],
    ["ij,jk->ki", [[5, 6], [6, 7]]],
    ["jk,ij->ik", [[6, 7], [5, 6]]],
  ] as const)("%s with transposed layouts is a GEMM", (spec, shapes) => {
    expect(es(spec, shapes)).toContain("GEMM");
  });

  it("batched nij,njk->nik for two N, and the batch in other positions", () => {
    expect(es("nij,njk->nik", [["N", 3, 5], ["N", 5, 6]], [{ N: 1 }, { N: 4 }])).toContain("GEMM");
    es("inj,jnk->nki", [[3, "N", 5], [5, "N", 6]], [{ N: 2 }, { N: 3 }]);
  });

  it("contracts several reduction indices at once (ijk,jkl->il)", () => {
    const src = es("ijk,jkl->il", [[3, 4, 5], [4, 5, 6]]);
    expect(src).toContain("summing over (j k)"); // merged into one reduction loop of 20
  });

  it("expands ellipses", () => {
    es("...ij,...jk->...ik", [["N", "L", 2, 3], ["N", "L", 3, 4]], [{ N: 2, L: 3 }, { N: 1, L: 1 }]);
    es("...i,i->...", [["N", 2, 5], [5]], [{ N: 3 }]);
    es("i...,i...->...", [[4, "N", 3], [4, "N", 3]], [{ N: 2 }]);
  });

  it("takes diagonals and traces with the general kernel", () => {
    const diag = es("ii->i", [[5, 5]]);
    expect(diag).toContain("loop nest");
    expect(diag).toContain("x0[i * 6]");
    expect(es("ii->", [[4, 4]])).toContain("acc += x0[i * 5];");
    es("ijj->ij", [[3, 4, 4]]);
    es("iij,jk->ik", [[3, 3, 4], [4, 5]]);
  });

  it("dot products, outer products and elementwise products", () => {
    es("i,i->", [[1], [1]]);
    es("i,i->", [[13], [13]]);
    es("i,i->", [["L"], ["L"]], [{ L: 5 }, { L: 1 }]);
    expect(es("i,j->ij", [[3], ["N"]], [{ N: 4 }, { N: 1 }])).toContain("loop nest");
    es("bi,bj->bij", [["N", 3], ["N", 2]], [{ N: 2 }]);
    es("bi,bi->b", [["N", 7], ["N", 7]], [{ N: 3 }]);
    es("i,i,i->i", [[6], [6], [6]]);
  });

  it("three operands ij,jk,kl->il and ij,jk,kl->", () => {
    expect(es("ij,jk,kl->il", [[2, 3], [3, 4], [4, 5]])).toContain("loop nest");
    es("ij,jk,kl->", [[2, 3], [3, 1], [1, 5]]);
    es("ij,jk,kl->li", [["N", 3], [3, 4], [4, 5]], [{ N: 2 }, { N: 3 }]);
  });

  it("single-operand transposes and sums", () => {
    es("ij->ji", [[3, 5]]);
    es("ijk->kij", [["N", 3, 4]], [{ N: 2 }]);
    es("ij->i", [[3, 5]]);
    es("ij->j", [["N", 5]], [{ N: 3 }]);
    es("ijk->", [[2, 3, 4]]);
    es("ij->ij", [[3, 4]]);
  });

  it("sums an index present in one operand only (ij,jk->k)", () => {
    expect(es("ij,jk->k", [[3, 4], [4, 5]])).toContain("loop nest");
  });

  it("handles size-1 and zero-rank corners", () => {
    es("ij,jk->ik", [[1, 1], [1, 1]]);
    es("ij,jk->ik", [[1, 5], [5, 1]]);
    es("ij,jk->ik", [[4, 1], [1, 4]]); // an outer product after the size-1 k is dropped
    es(",ij->ij", [[], [2, 3]]);
    es("i->", [[1]]);
  });

  it("computes hand-worked values", () => {
    const m = new TestModel();
    const a = m.input("a", "f32", [2, 3]);
    const b = m.input("b", "f32", [3, 2]);
    m.output("y", m.call("einsum", ["ij,jk->ik", a, b]));
    const out = expectJsMatchesReference(m.graph, { a: t([1, 2, 3, 4, 5, 6], [2, 3]), b: t([7, 8, 9, 10, 11, 12], [3, 2]) });
    expect(out.y!.toArray()).toEqual([58, 64, 139, 154]);
  });
});

describe("random einsum specs on the JS target", () => {
  let state = 12345;
  const rand = (n: number) => {
    state = (state * 1103515245 + 12345) % 2147483648;
    return state % n;
  };
  const shuffle = (xs: string[]) => {
    for (let i = xs.length - 1; i > 0; i--) {
      const j = rand(i + 1);
      [xs[i], xs[j]] = [xs[j]!, xs[i]!];
    }
    return xs;
  };
  const sizes = [1, 2, 3, 4, 5, 7, 9];
  const sizeOf = (letters: string) => Object.fromEntries([...letters].map((l) => [l, sizes[rand(sizes.length)]!]));

  it("matches the reference on 40 random contractions with permuted layouts", () => {
    let gemms = 0;
    for (let c = 0; c < 40; c++) {
      // Roles: batch b/c, rows i/j, columns k/l, reduction p/q, each present or not.
      const pick = (pair: string) => [...pair].filter(() => rand(3) > 0);
      const [batch, rows, cols, red] = [pick("bc"), pick("ij"), pick("kl"), ["p", ...pick("q")]];
      const size = sizeOf("bcijklpq");
      const left = shuffle([...batch, ...rows, ...red]).join("");
      const right = shuffle([...batch, ...cols, ...red]).join("");
      const out = shuffle([...batch, ...rows, ...cols]).join("");
      const src = check("einsum", [[...left].map((l) => size[l]!), [...right].map((l) => size[l]!)], [{}], [`${left},${right}->${out}`]);
      if (src.includes("GEMM")) gemms++;
    }
    expect(gemms).toBeGreaterThan(20);
  });

  it("matches the reference on 60 random specs (repeats, sums, 1-3 operands)", () => {
    for (let c = 0; c < 60; c++) {
      const size = sizeOf("abcd");
      const terms = Array.from({ length: 1 + rand(3) }, () => Array.from({ length: rand(4) }, () => "abcd"[rand(4)]!).join(""));
      const output = shuffle([...new Set(terms.join(""))].filter(() => rand(2) === 0)).join("");
      check("einsum", terms.map((tm) => [...tm].map((l) => size[l]!)), [{}], [`${terms.join(",")}->${output}`]);
    }
  });
});

describe("index notation (einsumTerm) on the JS target", () => {
  function ctxFor(m: TestModel): LowerCtx {
    const ctx: LowerCtx = {
      graph: m.graph,
      callee: "index notation",
      layerName: () => "z",
      emit: (opName, inputs, attrs = {}) => m.s.emitOp(opName, inputs, attrs, undefined, "index notation 'z'", "z"),
      emit1: (opName, inputs, attrs = {}) => ctx.emit(opName, inputs, attrs)[0]!,
      param: () => {
        throw new Error("no params");
      },
      constant: (v, dtype) => m.s.constant(v, dtype),
      fail: (code, message, opts = {}) => m.s.fail(code, `index notation 'z': ${message}`, undefined, opts),
      describe: (v) => m.s.describe(v),
    };
    return ctx;
  }

  function run(build: (m: TestModel, ctx: LowerCtx) => Value, inputs: Record<string, RefTensor>[]) {
    const m = new TestModel();
    m.output("z", build(m, ctxFor(m)));
    for (const feed of inputs) expectJsMatchesReference(m.graph, feed);
    return einsumSource(m.graph);
  }

  it("multi-letter index names: z[col, row] = x[row, inner] * w[inner, col]", () => {
    const src = run(
      (m, ctx) => {
        const x = m.input("x", "f32", ["N", 5]);
        const w = m.input("w", "f32", [5, 3]);
        return einsumTerm(ctx, [{ value: x, indices: ["row", "inner"] }, { value: w, indices: ["inner", "col"] }], ["col", "row"]);
      },
      [
        { x: randomTensor([2, 5], 1), w: randomTensor([5, 3], 2) },
        { x: randomTensor([6, 5], 3), w: randomTensor([5, 3], 4) },
      ],
    );
    expect(src).toContain("x0[row, inner]");
  });

  it("names that are not identifiers or clash with kernel locals", () => {
    run(
      (m, ctx) => {
        const x = m.input("x", "f32", [3, 4]);
        const w = m.input("w", "f32", [4, 4]);
        const v = m.input("v", "f32", [4]);
        return einsumTerm(
          ctx,
          [
            { value: x, indices: ["S", "acc"] },
            { value: w, indices: ["acc", "x0"] },
            { value: v, indices: ["x0"] },
          ],
          ["S"],
        );
      },
      [{ x: randomTensor([3, 4], 5), w: randomTensor([4, 4], 6), v: randomTensor([4], 7) }],
    );
    run(
      (m, ctx) => {
        const x = m.input("x", "f32", [3, 3]);
        return einsumTerm(ctx, [{ value: x, indices: ["a b", "a b"] }], ["a b"]);
      },
      [{ x: randomTensor([3, 3], 8) }],
    );
    run(
      (m, ctx) => {
        const x = m.input("x", "f32", [2, 3, 4]);
        const w = m.input("w", "f32", [4, 3, 5]);
        return einsumTerm(ctx, [{ value: x, indices: ["av", "p", "s"] }, { value: w, indices: ["s", "p", "bv"] }], ["bv", "av"]);
      },
      [{ x: randomTensor([2, 3, 4], 9), w: randomTensor([4, 3, 5], 10) }],
    );
    run(
      (m, ctx) => {
        const x = m.input("x", "f32", [2, 3]);
        return einsumTerm(ctx, [{ value: x, indices: ["av", "p0"] }], ["p0", "av"]);
      },
      [{ x: randomTensor([2, 3], 11) }],
    );
  });
});

describe("generated einsum kernels (golden)", () => {
  it("dense [N, 400] -> [N, 120] (LeNet-5 f1)", async () => {
    const m = new TestModel();
    const x = m.input("x", "f32", ["N", 400]);
    m.output("y", m.call("dense", [x, 120], { bias: false }, "f1"));
    await expect(einsumSource(m.graph)).toMatchFileSnapshot("__golden__/einsum-dense-400-120.js");
  });

  it("matmul [M, 256] @ [256, 256]", async () => {
    const m = new TestModel();
    const a = m.input("a", "f32", ["M", 256]);
    const b = m.input("b", "f32", [256, 256]);
    m.output("y", m.call("matmul", [a, b], {}, "mm"));
    await expect(einsumSource(m.graph)).toMatchFileSnapshot("__golden__/einsum-matmul-256.js");
  });

  it("general kernel: ij,jk,kl->il", async () => {
    const m = new TestModel();
    const xs = [m.input("a", "f32", ["N", 3]), m.input("b", "f32", [3, 4]), m.input("c", "f32", [4, 5])];
    m.output("y", m.call("einsum", ["ij,jk,kl->il", ...xs], {}, "chain"));
    await expect(einsumSource(m.graph)).toMatchFileSnapshot("__golden__/einsum-general-chain.js");
  });
});

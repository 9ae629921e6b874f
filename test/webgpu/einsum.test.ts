// Conformance of the WGSL einsum kernels with the float64 reference on the
// real WebGPU device (Dawn on lavapipe here): GEMMs in both forms (register
// tiles for software adapters, shared-memory tiles for GPUs) and the general
// strided loop nest, over dense, matmul and einsum specs.

import { describe, expect, it } from "vitest";
import { emitWgslProgram } from "../../compiler/codegen/wgsl/program.ts";
import type { Graph } from "../../compiler/ir/graph.ts";
import { TestModel, randomTensor, t } from "../support/build.ts";
import { expectWgslMatchesReference } from "../support/webgpu.ts";

type Shape = readonly (number | string)[];

function concrete(shape: Shape, env: Record<string, number>): number[] {
  return shape.map((d) => (typeof d === "number" ? d : env[d]!));
}

/** The "cpu" and "gpu" WGSL of the graph's only einsum pass. */
function einsumCode(g: Graph): { cpu: string; gpu: string } {
  const passes = emitWgslProgram(g, g.outputs.map((o) => o.value)).passes.filter((p) => p.node.op === "einsum");
  expect(passes).toHaveLength(1);
  return passes[0]!.code;
}

/**
 * Builds `callee(inputs..., extra...)` over inputs with declared (possibly
 * symbolic) shapes and checks the WebGPU target against the reference for
 * each binding of the symbols, with both kernel forms when the einsum is a
 * GEMM. Returns the generated code.
 */
async function check(callee: string, shapes: readonly Shape[], envs: readonly Record<string, number>[], lead: readonly (string | number)[] = []): Promise<{ cpu: string; gpu: string }> {
  const m = new TestModel();
  const xs = shapes.map((s, i) => m.input(`x${i}`, "f32", s));
  const y = m.call(callee, callee === "dense" ? [xs[0]!, ...lead] : [...lead, ...xs], callee === "dense" ? { bias: false } : {}, "f1");
  m.output("y", y);
  const code = einsumCode(m.graph);
  const classes = code.cpu === code.gpu ? (["cpu"] as const) : (["cpu", "gpu"] as const);
  for (const [e, env] of envs.entries()) {
    const inputs = Object.fromEntries(shapes.map((s, i) => [`x${i}`, randomTensor(concrete(s, env), 7 + 13 * i + 101 * e)]));
    for (const adapterClass of classes) await expectWgslMatchesReference(m.graph, inputs, { adapterClass });
  }
  return code;
}

const isGemm = (code: { cpu: string; gpu: string }) => code.cpu.includes("GEMM (register tile)") && code.gpu.includes("GEMM (shared-memory tiles)");

describe("dense (x · Wᵀ) on WebGPU", () => {
  it.each([
    [400, 120],
    [17, 33],
    [33, 3],
    [3, 17],
  ])("[N, %i] -> [N, %i] for N = 1 and 5", async (fanIn, units) => {
    const code = await check("dense", [["N", fanIn]], [{ N: 1 }, { N: 5 }], [units]);
    expect(isGemm(code)).toBe(true);
  });

  it("reads both operands as vec4 along the reduction when the fan-in is a multiple of 4", async () => {
    const code = await check("dense", [["N", 16]], [{ N: 3 }], [8]);
    expect(code.cpu).toContain("x0 vec4 along the reduction, x1 vec4 along the reduction");
    expect(code.cpu).toContain("var<storage, read> x0: array<vec4<f32>>");
    // The shared-memory form reads single elements of the vec4 bindings.
    expect(code.gpu).toContain("v = x0[at / 4u][at % 4u];");
  });

  it("[N, L, in] merges N·L into one row loop", async () => {
    const code = await check("dense", [["N", "L", 12]], [{ N: 2, L: 3 }, { N: 1, L: 5 }], [5]);
    expect(code.cpu).toContain("let M = u32(i32(P.s_L) * i32(P.s_N));");
    await check("dense", [["N", "L", 33]], [{ N: 3, L: 7 }], [17]);
  });

  it("a fan-in of 1 is an outer product (general kernel)", async () => {
    const code = await check("dense", [["N", 1]], [{ N: 3 }], [5]);
    expect(code.cpu).toContain("loop nest");
  });
});

describe("matmul on WebGPU", () => {
  it.each([
    [1, 1, 1],
    [3, 17, 1],
    [17, 33, 3],
    [33, 17, 33],
    [17, 40, 33],
    [16, 32, 8],
  ])("[%i, k=%i] @ [k, %i] (2-D)", async (mm, k, n) => {
    const code = await check("matmul", [[mm, k], [k, n]], [{}]);
    expect(isGemm(code)).toBe(k > 1 && mm * n > 1);
  });

  it("uses vec4 along the rows of A·B's right operand", async () => {
    const code = await check("matmul", [[8, 12], [12, 16]], [{}]);
    expect(code.cpu).toContain("x0 vec4 along the reduction, x1 vec4 along columns");
  });

  it("handles symbolic inner and outer sizes", async () => {
    await check("matmul", [["M", "K"], ["K", "P"]], [{ M: 3, K: 5, P: 7 }, { M: 17, K: 33, P: 18 }]);
  });

  it("batched [N, m, k] @ [N, k, n] for two N", async () => {
    const code = await check("matmul", [["N", 5, 6], ["N", 6, 7]], [{ N: 1 }, { N: 3 }]);
    expect(code.gpu).toContain("for (var b = wid.z; b < NB; b += nwg.z)");
  });

  it("broadcasts batch dims: [N, m, k] @ [k, n], [1, m, k] @ [N, k, n], [N, 1, m, k] @ [3, k, n], [2, 1, m, k] @ [1, 3, k, n]", async () => {
    await check("matmul", [["N", 5, 6], [6, 9]], [{ N: 1 }, { N: 4 }]);
    await check("matmul", [[1, 3, 4], ["N", 4, 5]], [{ N: 3 }]);
    await check("matmul", [["N", 1, 2, 3], [3, 3, 4]], [{ N: 2 }]);
    await check("matmul", [[2, 1, 3, 8], [1, 3, 8, 4]], [{}]);
  });

  it("promotes 1-D operands: [k] @ [k], [k] @ [k, n], [m, k] @ [k], [N, m, k] @ [k], [k] @ [N, k, n]", async () => {
    await check("matmul", [[7], [7]], [{}]);
    expect(isGemm(await check("matmul", [[33], [33, 17]], [{}]))).toBe(true);
    expect((await check("matmul", [[17, 33], [33]], [{}])).gpu).toContain("64 × 1 outputs per workgroup");
    await check("matmul", [["N", 3, 5], [5]], [{ N: 2 }]);
    await check("matmul", [[4], ["N", 4, 6]], [{ N: 3 }]);
  });
});

describe("einsum specs on WebGPU", () => {
  const es = (spec: string, shapes: readonly Shape[], envs: readonly Record<string, number>[] = [{}]) => check("einsum", shapes, envs, [spec]);

  it.each([
    ["ji,jk->ik", [[6, 5], [6, 7]]],
    ["ij,kj->ik", [[5, 6], [7, 6]]],
    ["ji,kj->ik", [[17, 3], [33, 17]]],
    ["ij,jk->ki", [[5, 6], [6, 7]]],
    ["ji,jk->ik", [[8, 16], [8, 12]]],
    ["ji,kj->ik", [[12, 8], [16, 12]]],
  ] as const)("%s with transposed layouts is a GEMM", async (spec, shapes) => {
    expect(isGemm(await es(spec, shapes))).toBe(true);
  });

  it("batched nij,njk->nik for two N, and the batch in other positions", async () => {
    expect(isGemm(await es("nij,njk->nik", [["N", 3, 5], ["N", 5, 6]], [{ N: 1 }, { N: 4 }]))).toBe(true);
    await es("inj,jnk->nki", [[3, "N", 5], [5, "N", 6]], [{ N: 2 }]);
  });

  it("several reduction indices: ijk,jkl->il (merged) and ijk,kjl->il (unravelled)", async () => {
    await es("ijk,jkl->il", [[3, 4, 5], [4, 5, 6]]);
    await es("ijk,kjl->il", [[3, 4, 5], [5, 4, 6]]);
  });

  it("expands ellipses", async () => {
    await es("...ij,...jk->...ik", [["N", "L", 2, 3], ["N", "L", 3, 4]], [{ N: 2, L: 3 }]);
    await es("...i,i->...", [["N", 2, 5], [5]], [{ N: 3 }]);
    await es("i...,i...->...", [[4, "N", 3], [4, "N", 3]], [{ N: 2 }]);
  });

  it("takes diagonals and traces with the general kernel", async () => {
    const diag = await es("ii->i", [[5, 5]]);
    expect(diag.cpu).toContain("loop nest");
    expect(diag.cpu).toContain("y0[i] = x0[i * 6u];");
    expect((await es("ii->", [[17, 17]])).cpu).toContain("acc += x0[s0 * 18u];");
    await es("ijj->ij", [[3, 4, 4]]);
    await es("iij,jk->ik", [[3, 3, 4], [4, 5]]);
  });

  it("dot, outer and elementwise products", async () => {
    await es("i,i->", [[33], [33]]);
    await es("i,i->", [["L"], ["L"]], [{ L: 5 }, { L: 1 }]);
    expect((await es("i,j->ij", [[3], ["N"]], [{ N: 17 }])).cpu).toContain("loop nest");
    await es("bi,bj->bij", [["N", 3], ["N", 2]], [{ N: 2 }]);
    await es("i,i,i->i", [[6], [6], [6]]);
  });

  it("three operands ij,jk,kl->il, ij,jk,kl-> and ij,jk,kl->li", async () => {
    expect((await es("ij,jk,kl->il", [[2, 3], [3, 4], [4, 5]])).cpu).toContain("loop nest");
    await es("ij,jk,kl->", [[2, 3], [3, 1], [1, 5]]);
    // x2 depends on the outer summed loop only: loaded there, not in the inner loop.
    expect((await es("ij,jk,kl->li", [["N", 3], [3, 4], [4, 5]], [{ N: 2 }, { N: 3 }])).cpu).toContain("let p0 = x2[o2 + s0 * 5u];");
  });

  it("single-operand transposes and sums; sums within one operand", async () => {
    await es("ijk->kij", [["N", 3, 4]], [{ N: 2 }]);
    await es("ij->j", [["N", 5]], [{ N: 3 }]);
    await es("ij,jk->k", [[3, 4], [4, 5]]);
    await es(",ij->ij", [[], [2, 3]]);
  });

  it("computes hand-worked values", async () => {
    const m = new TestModel();
    const a = m.input("a", "f32", [2, 3]);
    const b = m.input("b", "f32", [3, 2]);
    m.output("y", m.call("einsum", ["ij,jk->ik", a, b]));
    for (const adapterClass of ["cpu", "gpu"] as const) {
      const out = await expectWgslMatchesReference(m.graph, { a: t([1, 2, 3, 4, 5, 6], [2, 3]), b: t([7, 8, 9, 10, 11, 12], [3, 2]) }, { adapterClass });
      expect(out.y!.toArray()).toEqual([58, 64, 139, 154]);
    }
  });
});

describe("random contractions on WebGPU", () => {
  let state = 2024;
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
  const sizes = [1, 2, 3, 4, 5, 8, 17];

  it("matches the reference on 12 random contractions with permuted layouts (both forms)", async () => {
    let gemms = 0;
    for (let c = 0; c < 12; c++) {
      const pick = (pair: string) => [...pair].filter(() => rand(3) > 0);
      const [batch, rows, cols, red] = [pick("bc"), pick("ij"), pick("kl"), ["p", ...pick("q")]];
      const size = Object.fromEntries([..."bcijklpq"].map((l) => [l, sizes[rand(sizes.length)]!]));
      const left = shuffle([...batch, ...rows, ...red]).join("");
      const right = shuffle([...batch, ...cols, ...red]).join("");
      const out = shuffle([...batch, ...rows, ...cols]).join("");
      const code = await check("einsum", [[...left].map((l) => size[l]!), [...right].map((l) => size[l]!)], [{}], [`${left},${right}->${out}`]);
      if (isGemm(code)) gemms++;
    }
    expect(gemms).toBeGreaterThan(6);
  });
});

describe("generated einsum kernels (golden)", () => {
  it("dense [N, 400] -> [N, 120] (LeNet-5 f1), both forms", async () => {
    const m = new TestModel();
    const x = m.input("x", "f32", ["N", 400]);
    m.output("y", m.call("dense", [x, 120], { bias: false }, "f1"));
    const code = einsumCode(m.graph);
    await expect(code.cpu).toMatchFileSnapshot("__golden__/einsum-dense-400-120.cpu.wgsl");
    await expect(code.gpu).toMatchFileSnapshot("__golden__/einsum-dense-400-120.gpu.wgsl");
  });
});

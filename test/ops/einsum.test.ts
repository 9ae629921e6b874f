import { describe, expect, it } from "vitest";
import { Dim } from "../../compiler/ir/dims.ts";
import type { Value } from "../../compiler/ir/graph.ts";
import { typeToString } from "../../compiler/ir/types.ts";
import { einsumTerm, parseSpec } from "../../compiler/ops/einsum.ts";
import type { LowerCtx } from "../../compiler/ops/op.ts";
import { RefTensor } from "../../compiler/reference/tensor.ts";
import { TestModel, diagnosticsOf, expectClose, randomTensor, t } from "../support/build.ts";

/** Batched matmul by plain loops over row-major data: a [B, m, k], b [B, k, n]. */
function batchedMatmul(a: RefTensor, b: RefTensor, B: number, m: number, k: number, n: number): number[] {
  const out = new Array<number>(B * m * n).fill(0);
  for (let z = 0; z < B; z++)
    for (let i = 0; i < m; i++)
      for (let j = 0; j < n; j++) {
        let s = 0;
        for (let q = 0; q < k; q++) s += a.data[z * m * k + i * k + q]! * b.data[z * k * n + q * n + j]!;
        out[z * m * n + i * n + j] = s;
      }
  return out;
}

/** Run `callee(positional...)` on the given inputs and return output y. */
function run1(callee: string, inputs: Record<string, [readonly (number | string)[], RefTensor]>, positional: (m: TestModel, v: Record<string, Value>) => (Value | string | number)[], keywords: Record<string, unknown> = {}) {
  const m = new TestModel();
  const vals: Record<string, Value> = {};
  for (const [name, [shape]] of Object.entries(inputs)) vals[name] = m.input(name, "f32", shape);
  const y = m.call(callee, positional(m, vals), keywords as never);
  m.output("y", y);
  const feeds = Object.fromEntries(Object.entries(inputs).map(([k, [, v]]) => [k, v]));
  return { m, y, out: m.run(feeds).outputs.y! };
}

function einsum(spec: string, ...operands: { shape: readonly (number | string)[]; value: RefTensor }[]) {
  const inputs = Object.fromEntries(operands.map((o, i) => [`x${i}`, [o.shape, o.value] as [readonly (number | string)[], RefTensor]]));
  return run1("einsum", inputs, (_m, v) => [spec, ...operands.map((_, i) => v[`x${i}`]!)]);
}

const op = (value: RefTensor, shape: readonly (number | string)[] = value.shape) => ({ shape, value });

describe("einsum builtin", () => {
  it("contracts ij,jk->ik like a matmul", () => {
    const a = t([1, 2, 3, 4, 5, 6], [2, 3]);
    const b = t([7, 8, 9, 10, 11, 12], [3, 2]);
    const { y, out } = einsum("ij,jk->ik", op(a), op(b));
    expect(typeToString(y.type)).toBe("f32[2, 2]");
    // [[1*7+2*9+3*11, 1*8+2*10+3*12], [4*7+5*9+6*11, 4*8+5*10+6*12]]
    expect(out.toArray()).toEqual([58, 64, 139, 154]);
    expect(y.node.attrs).toEqual({ operands: [["i", "j"], ["j", "k"]], output: ["i", "k"] });
  });

  it("batches nij,njk->nik over a symbolic N", () => {
    const a = randomTensor([3, 2, 4], 1);
    const b = randomTensor([3, 4, 5], 2);
    const { y, out } = einsum("nij,njk->nik", op(a, ["N", 2, 4]), op(b, ["N", 4, 5]));
    expect(typeToString(y.type)).toBe("f32[N, 2, 5]");
    expect(out.shape).toEqual([3, 2, 5]);
    expectClose(out.data, batchedMatmul(a, b, 3, 2, 4, 5));
  });

  it("broadcasts ellipsis batch dims ...ij,...jk->...ik", () => {
    const a = randomTensor([2, 1, 3, 4], 3);
    const b = randomTensor([5, 4, 2], 4);
    const { y, out } = einsum("...ij,...jk->...ik", op(a), op(b));
    expect(typeToString(y.type)).toBe("f32[2, 5, 3, 2]");
    const want: number[] = [];
    for (let p = 0; p < 2; p++)
      for (let q = 0; q < 5; q++)
        for (let i = 0; i < 3; i++)
          for (let k = 0; k < 2; k++) {
            let s = 0;
            for (let j = 0; j < 4; j++) s += a.get(p, 0, i, j) * b.get(q, j, k);
            want.push(s);
          }
    expectClose(out.data, want);
  });

  it("broadcasts a symbolic batch against a missing one", () => {
    const a = randomTensor([3, 2, 4], 5);
    const b = randomTensor([4, 2], 6);
    const { y, out } = einsum("...ij,jk->...ik", op(a, ["N", 2, 4]), op(b));
    expect(typeToString(y.type)).toBe("f32[N, 2, 2]");
    const bb = RefTensor.from([...b.data, ...b.data, ...b.data], [3, 4, 2]);
    expectClose(out.data, batchedMatmul(a, bb, 3, 2, 4, 2));
  });

  it("takes the diagonal (ii->i) and the trace (ii->, implicit ii)", () => {
    const a = t([1, 2, 3, 4, 5, 6, 7, 8, 9], [3, 3]);
    expect(einsum("ii->i", op(a)).out.toArray()).toEqual([1, 5, 9]);
    const trace = einsum("ii->", op(a));
    expect(trace.y.type.shape).toEqual([]);
    expect(trace.out.toArray()).toEqual([15]);
    expect(einsum("ii", op(a)).out.toArray()).toEqual([15]);
  });

  it("infers the implicit output: ij,jk -> ik, ba -> ab (a transpose)", () => {
    const a = t([1, 2, 3, 4, 5, 6], [2, 3]);
    const b = t([7, 8, 9, 10, 11, 12], [3, 2]);
    const mm = einsum("ij,jk", op(a), op(b));
    expect(mm.y.node.attrs.output).toEqual(["i", "k"]);
    expect(mm.out.toArray()).toEqual([58, 64, 139, 154]);
    const tr = einsum("ba", op(a));
    expect(typeToString(tr.y.type)).toBe("f32[3, 2]");
    expect(tr.out.toArray()).toEqual([1, 4, 2, 5, 3, 6]);
    // Character-code order: upper case sorts before lower case, as in NumPy.
    expect(einsum("aB", op(a)).out.shape).toEqual([3, 2]);
    // Implicit output keeps the ellipsis first.
    expect(einsum("i...", op(a)).y.node.attrs.output).toEqual(["…0", "i"]);
  });

  it("computes outer products, dot products and accepts whitespace", () => {
    const u = t([1, 2, 3]);
    const v = t([4, 5]);
    const outer = einsum(" i , j -> i j ", op(u), op(v));
    expect(typeToString(outer.y.type)).toBe("f32[3, 2]");
    expect(outer.out.toArray()).toEqual([4, 5, 8, 10, 12, 15]);
    const dot = einsum("i,i->", op(u), op(t([4, 5, 6])));
    expect(dot.y.type.shape).toEqual([]);
    expect(dot.out.toArray()).toEqual([32]);
  });

  it("handles three operands and a scalar operand", () => {
    const a = t([1, 2], [2]);
    const b = t([1, 2, 3, 4], [2, 2]);
    const c = t([5, 6], [2]);
    // sum_ij a_i b_ij c_j = 1*(1*5+2*6) + 2*(3*5+4*6) = 17 + 78
    expect(einsum("i,ij,j->", op(a), op(b), op(c)).out.toArray()).toEqual([95]);
    expect(einsum(",i->i", op(RefTensor.scalar(3)), op(a)).out.toArray()).toEqual([3, 6]);
  });
});

describe("einsum spec parser", () => {
  it("marks the ellipsis and leaves the output undefined when implicit", () => {
    expect(parseSpec("...ij,jk")).toEqual({ inputs: [["...", "i", "j"], ["j", "k"]], output: undefined });
    expect(parseSpec("ij->")).toEqual({ inputs: [["i", "j"]], output: [] });
  });
});

describe("matmul", () => {
  const a = t([1, 2, 3, 4, 5, 6], [2, 3]);
  const b = t([7, 8, 9, 10, 11, 12], [3, 2]);

  it("multiplies matrices", () => {
    const { y, out } = run1("matmul", { a: [[2, 3], a], b: [[3, 2], b] }, (_m, v) => [v.a!, v.b!]);
    expect(typeToString(y.type)).toBe("f32[2, 2]");
    expect(out.toArray()).toEqual([58, 64, 139, 154]);
  });

  it("promotes 1-D operands and drops the promoted dim", () => {
    const v3 = t([1, 0, -1]);
    const vm = run1("matmul", { v: [[3], v3], b: [[3, 2], b] }, (_m, v) => [v.v!, v.b!]);
    expect(typeToString(vm.y.type)).toBe("f32[2]");
    expect(vm.out.toArray()).toEqual([7 - 11, 8 - 12]);
    const mv = run1("matmul", { a: [[2, 3], a], v: [[3], v3] }, (_m, v) => [v.a!, v.v!]);
    expect(typeToString(mv.y.type)).toBe("f32[2]");
    expect(mv.out.toArray()).toEqual([1 - 3, 4 - 6]);
    const vv = run1("matmul", { u: [[3], v3], v: [[3], t([2, 5, 7])] }, (_m, v) => [v.u!, v.v!]);
    expect(vv.y.type.shape).toEqual([]);
    expect(vv.out.toArray()).toEqual([2 - 7]);
  });

  it("broadcasts batch dims, including a symbolic N", () => {
    const x = randomTensor([4, 2, 3], 7);
    const r = run1("matmul", { x: [["N", 2, 3], x], w: [[3, 2], b] }, (_m, v) => [v.x!, v.w!]);
    expect(typeToString(r.y.type)).toBe("f32[N, 2, 2]");
    const bb = RefTensor.from([...b.data, ...b.data, ...b.data, ...b.data], [4, 3, 2]);
    expectClose(r.out.data, batchedMatmul(x, bb, 4, 2, 3, 2));

    const p = randomTensor([2, 1, 2, 3], 8);
    const q = randomTensor([5, 3, 4], 9);
    const s = run1("matmul", { p: [[2, 1, 2, 3], p], q: [[5, 3, 4], q] }, (_m, v) => [v.p!, v.q!]);
    expect(typeToString(s.y.type)).toBe("f32[2, 5, 2, 4]");
    const want: number[] = [];
    for (let z = 0; z < 2; z++)
      for (let w = 0; w < 5; w++)
        for (let i = 0; i < 2; i++)
          for (let k = 0; k < 4; k++) {
            let acc = 0;
            for (let j = 0; j < 3; j++) acc += p.get(z, 0, i, j) * q.get(w, j, k);
            want.push(acc);
          }
    expectClose(s.out.data, want);
  });

  it("broadcasts a batched vector against a batched matrix", () => {
    const r = run1("matmul", { v: [[3], t([1, 1, 1])], b: [["N", 3, 2], randomTensor([2, 3, 2], 3)] }, (_m, v) => [v.v!, v.b!]);
    expect(typeToString(r.y.type)).toBe("f32[N, 2]");
  });
});

describe("dense", () => {
  it("is x @ weight^T + bias over the last axis with a symbolic batch", () => {
    const m = new TestModel();
    const x = m.input("x", "f32", ["N", 3]);
    const y = m.call("dense", [x, 2], {}, "fc");
    m.output("y", y);
    expect(typeToString(y.type)).toBe("f32[N, 2]");
    expect([...m.graph.params.keys()]).toEqual(["fc.weight", "fc.bias"]);
    expect(typeToString(m.graph.params.get("fc.weight")!.value.type)).toBe("f32[2, 3]");
    expect(m.graph.params.get("fc.weight")!.init).toEqual({ kind: "uniform", lo: -1 / Math.sqrt(3), hi: 1 / Math.sqrt(3) });
    expect(m.graph.params.get("fc.bias")!.init).toEqual({ kind: "uniform", lo: -1 / Math.sqrt(3), hi: 1 / Math.sqrt(3) });
    const out = m.run({ x: t([1, 2, 3, -1, 0, 1], [2, 3]) }, { "fc.weight": t([1, 0, 1, 2, -1, 0], [2, 3]), "fc.bias": t([10, 20]) }).outputs.y!;
    // row 0: [1+3, 2-2] + b; row 1: [-1+1, -2] + b
    expect(out.toArray()).toEqual([14, 20, 10, 18]);
  });

  it("applies to rank-3 input and bias=false drops the bias", () => {
    const m = new TestModel();
    const x = m.input("x", "f32", ["N", "L", 2]);
    const y = m.call("dense", [x, 3], { bias: false }, "proj");
    m.output("y", y);
    expect(typeToString(y.type)).toBe("f32[N, L, 3]");
    expect([...m.graph.params.keys()]).toEqual(["proj.weight"]);
    const xv = randomTensor([2, 4, 2], 11);
    const w = t([1, 2, 3, 4, 5, 6], [3, 2]);
    const out = m.run({ x: xv }, { "proj.weight": w }).outputs.y!;
    const want: number[] = [];
    for (let r = 0; r < 8; r++) for (let o = 0; o < 3; o++) want.push(xv.data[2 * r]! * w.get(o, 0) + xv.data[2 * r + 1]! * w.get(o, 1));
    expectClose(out.data, want);
  });

  it("uses a tied weight= tensor (auto-encoder) and creates only the bias", () => {
    const m = new TestModel();
    const x = m.input("x", "f32", ["N", 4]);
    const enc = m.call("dense", [x, 2], { bias: false }, "enc");
    const encW = m.graph.params.get("enc.weight")!.value;
    // The transpose as an einsum keeps this test within the family (transpose(enc.weight, [1, 0]) in the DSL).
    const wT = m.call("einsum", ["ij->ji", encW], {}, "wT");
    const dec = m.call("dense", [enc, 4], { weight: wT }, "dec");
    m.output("y", dec);
    expect([...m.graph.params.keys()]).toEqual(["enc.weight", "dec.bias"]);
    expect(dec.node.op).toBe("add");
    expect(dec.node.inputs[0]!.node.inputs[1]).toBe(wT);
    expect(typeToString(dec.type)).toBe("f32[N, 4]");
    const W = t([1, 0, 2, 0, 0, 1, 0, -1], [2, 4]);
    const out = m.run({ x: t([1, 2, 3, 4], [1, 4]) }, { "enc.weight": W, "dec.bias": t([0, 0, 0, 1]) }).outputs.y!;
    // h = W x = [7, -2]; y = W^T h + b = [7, -2, 14, 2 + 1]
    expect(out.toArray()).toEqual([7, -2, 14, 3]);
  });

  it("takes an existing bias tensor and infers units from a tied weight", () => {
    const m = new TestModel();
    const x = m.input("x", "f32", ["N", 3]);
    const w = m.input("w", "f32", [2, 3]);
    const b = m.input("b", "f32", [2]);
    const y = m.call("dense", [x], { weight: w, bias: b }, "fc");
    m.output("y", y);
    expect(m.graph.params.size).toBe(0);
    const out = m.run({ x: t([1, 2, 3], [1, 3]), w: t([1, 1, 1, 0, 0, 1], [2, 3]), b: t([0.5, -1]) }).outputs.y!;
    expect(out.toArray()).toEqual([6.5, 2]);
  });
});

describe("einsumTerm (index notation)", () => {
  function ctxFor(m: TestModel): LowerCtx {
    const ctx: LowerCtx = {
      graph: m.graph,
      callee: "index notation",
      layerName: () => "y",
      emit: (opName, inputs, attrs = {}) => m.s.emitOp(opName, inputs, attrs, undefined, "index notation 'y'", "y"),
      emit1: (opName, inputs, attrs = {}) => ctx.emit(opName, inputs, attrs)[0]!,
      param: () => {
        throw new Error("no params");
      },
      constant: (v, dtype) => m.s.constant(v, dtype),
      fail: (code, message, opts = {}) => m.s.fail(code, `index notation 'y': ${message}`, undefined, opts),
      describe: (v) => m.s.describe(v),
    };
    return ctx;
  }

  it("emits one einsum producing the requested index order", () => {
    const m = new TestModel();
    const x = m.input("x", "f32", ["N", 3]);
    const w = m.input("w", "f32", [3, 2]);
    const y = einsumTerm(ctxFor(m), [{ value: x, indices: ["i", "j"] }, { value: w, indices: ["j", "k"] }], ["k", "i"]);
    expect(typeToString(y.type)).toBe("f32[2, N]");
    m.output("y", y);
    const out = m.run({ x: t([1, 2, 3, 4, 5, 6], [2, 3]), w: t([7, 8, 9, 10, 11, 12], [3, 2]) }).outputs.y!;
    expect(out.toArray()).toEqual([58, 139, 64, 154]);
  });

  it("returns a lone factor unchanged when nothing is summed or permuted", () => {
    const m = new TestModel();
    const b = m.input("b", "f32", [4]);
    expect(einsumTerm(ctxFor(m), [{ value: b, indices: ["k"] }], ["k"])).toBe(b);
  });

  it("reports inconsistent sizes (E206) and ranks (E210) at the factor", () => {
    const m = new TestModel();
    const x = m.input("x", "f32", ["N", 3]);
    const w = m.input("w", "f32", [4, 2]);
    const span = { file: "m.cnn", line: 3, col: 20, endLine: 3, endCol: 26 };
    const [d] = diagnosticsOf(() => einsumTerm(ctxFor(m), [{ value: x, indices: ["i", "j"] }, { value: w, indices: ["j", "k"], span }], ["i", "k"]));
    expect(d!.code).toBe("E206");
    expect(d!.message).toBe("index 'j' is 3 in x[i, j] but 4 in w[j, k]");
    expect(d!.span).toEqual(span);
    const [r] = diagnosticsOf(() => einsumTerm(ctxFor(m), [{ value: x, indices: ["i"] }], ["i"]));
    expect(r!.code).toBe("E210");
    expect(r!.message).toBe("index notation 'y': x[i] has rank 2 but 1 index");
    const [o] = diagnosticsOf(() => einsumTerm(ctxFor(m), [{ value: x, indices: ["i", "j"] }], ["k"]));
    expect(o!.code).toBe("E206");
    expect(o!.message).toContain("index 'k' of the result does not appear in this term");
  });
});

describe("einsum IR op", () => {
  it("rejects an index bound to two sizes, constant or symbolic (E206)", () => {
    const m = new TestModel();
    const a = m.input("a", "f32", [3, 4]);
    const b = m.input("b", "f32", [5, 2]);
    const [d] = diagnosticsOf(() => m.s.emitOp("einsum", [a, b], { operands: [["i", "j"], ["j", "k"]], output: ["i", "k"] }, undefined, "einsum 'y'"));
    expect(d!.code).toBe("E206");
    expect(d!.message).toBe("einsum 'y': index 'j' is 4 in operand 1 but 5 in operand 2");
    expect(d!.notes).toEqual(["a is f32[3, 4]", "b is f32[5, 2]"]);

    const p = m.input("p", "f32", ["N", 2]);
    const q = m.input("q", "f32", ["M", 2]);
    const [s] = diagnosticsOf(() => m.s.emitOp("einsum", [p, q], { operands: [["n", "i"], ["n", "i"]], output: ["n"] }, undefined, "einsum 'y'"));
    expect(s!.message).toBe("einsum 'y': index 'n' is N in operand 1 but M in operand 2");
    const [g] = diagnosticsOf(() => m.s.emitOp("einsum", [b], { operands: [["i", "i"]], output: ["i"] }, undefined, "einsum 'y'"));
    expect(g!.message).toBe("einsum 'y': index 'i' is 5 at axis 0 but 2 at axis 1 of operand 1");
  });

  it("accepts equal symbolic sizes", () => {
    const m = new TestModel();
    const p = m.input("p", "f32", ["N", 2]);
    const v = m.s.emitOp("einsum", [p, p], { operands: [["n", "i"], ["n", "i"]], output: ["n"] }, undefined, "einsum")[0]!;
    expect(v.type.shape[0]!.equals(Dim.sym("N"))).toBe(true);
  });
});

describe("einsum family errors", () => {
  function errorOf(callee: string, build: (m: TestModel) => unknown[], keywords: Record<string, unknown> = {}) {
    const m = new TestModel();
    const ds = diagnosticsOf(() => m.call(callee, build(m) as never, keywords as never));
    expect(ds).toHaveLength(1);
    return ds[0]!;
  }
  const mat = (m: TestModel, name: string, shape: (number | string)[], dtype: "f32" | "i32" = "f32") => m.input(name, dtype, shape);

  it.each([
    ["ij%,jk->ik", `'%' at character 3 is not an index letter`],
    ["i.j->ij", `'.' at character 2 is not part of '...'`],
    ["...i...->i", `a term has a second '...' at character 5`],
    ["ij-ik", `'-' at character 3 must be followed by '>'`],
    ["ij>i", `'>' at character 3 must follow '-'`],
    ["ij->i->j", `a second '->' at character 6`],
    ["ij->i,j", `',' at character 6 is in the output, which is a single term`],
    ["ij->ii", `output index 'i' appears twice`],
    ["ij->k", `output index 'k' does not appear in any input term`],
  ])("rejects the malformed spec %s (E404)", (spec, why) => {
    const d = errorOf("einsum", (m) => [spec, mat(m, "a", [2, 2])]);
    expect(d.code).toBe("E404");
    expect(d.message).toBe(`einsum 'y': bad spec "${spec}": ${why}`);
  });

  it("rejects an output without '...' when the operands broadcast dims (E404)", () => {
    const d = errorOf("einsum", (m) => ["...ij->ij", mat(m, "a", [5, 2, 2])]);
    expect(d.code).toBe("E404");
    expect(d.message).toBe(`einsum 'y': bad spec "...ij->ij": the operands have 1 '...' dim but the output has no '...'`);
  });

  it("rejects a spec that is not a string (E403)", () => {
    const d = errorOf("einsum", (m) => [3, mat(m, "a", [2])]);
    expect(d.code).toBe("E403");
    expect(d.message).toBe(`einsum 'y': argument 'spec' must be a string such as "ij,jk->ik", found the integer 3`);
  });

  it("counts operands against the spec (E401 too few, E405 too many)", () => {
    const few = errorOf("einsum", (m) => ["ij,jk->ik", mat(m, "a", [2, 2])]);
    expect(few.code).toBe("E401");
    expect(few.message).toBe(`einsum 'y': spec "ij,jk->ik" has 2 operand terms, found 1 tensor`);
    const many = errorOf("einsum", (m) => ["ij->i", mat(m, "a", [2, 2]), mat(m, "b", [2, 2])]);
    expect(many.code).toBe("E405");
    expect(many.message).toBe(`einsum 'y': spec "ij->i" has 1 operand term, found 2 tensors`);
  });

  it("checks each operand's rank against its term (E210)", () => {
    const d = errorOf("einsum", (m) => ["ij,jk->ik", mat(m, "a", [2, 3]), mat(m, "b", [3, 4, 5])]);
    expect(d.code).toBe("E210");
    expect(d.message).toBe(`einsum 'y': operand 2 has rank 3 but its term "jk" has 2 indices`);
    expect(d.notes).toEqual(["b is f32[3, 4, 5]"]);
    const e = errorOf("einsum", (m) => ["...ijk->...", mat(m, "a", [2, 3])]);
    expect(e.code).toBe("E210");
    expect(e.message).toBe(`einsum 'y': operand 1 has rank 2 but its term "...ijk" needs at least 3 dims`);
  });

  it("names the index and both sizes when they differ (E206)", () => {
    const d = errorOf("einsum", (m) => ["ij,jk->ik", mat(m, "a", [3, 4]), mat(m, "b", [5, 2])]);
    expect(d.code).toBe("E206");
    expect(d.message).toBe("einsum 'y': index 'j' is 4 in operand 1 but 5 in operand 2");
    // A named index does not broadcast 1 against n (only '...' dims do).
    const one = errorOf("einsum", (m) => ["ij,jk->ik", mat(m, "a", [3, 1]), mat(m, "b", [5, 2])]);
    expect(one.message).toBe("einsum 'y': index 'j' is 1 in operand 1 but 5 in operand 2");
  });

  it("rejects '...' dims that do not broadcast (E203)", () => {
    const d = errorOf("einsum", (m) => ["...i,...i->...", mat(m, "a", [2, 3]), mat(m, "b", [4, 3])]);
    expect(d.code).toBe("E203");
    expect(d.message).toBe("einsum 'y': the '...' dims cannot be broadcast: operand 1 has [2] and operand 2 has [4] (2 vs 4)");
    const s = errorOf("einsum", (m) => ["...i,...i->...", mat(m, "a", ["N", 3]), mat(m, "b", ["M", 3])]);
    expect(s.message).toContain("(N vs M)");
  });

  it("requires f32 operands (E213)", () => {
    const d = errorOf("einsum", (m) => ["i->", mat(m, "a", [3], "i32")]);
    expect(d.code).toBe("E213");
    expect(d.message).toBe("einsum 'y': operand 1 must be f32, found i32");
  });

  it("matmul: contraction sizes (E204), batch broadcast (E203), scalars (E210), dtype (E213)", () => {
    const c = errorOf("matmul", (m) => [mat(m, "a", [2, 4]), mat(m, "b", [5, 3])]);
    expect(c.code).toBe("E204");
    expect(c.message).toBe("matmul 'y': contraction sizes do not match: a has 4 columns, b has 5 rows");
    expect(c.notes).toEqual(["a is f32[2, 4]", "b is f32[5, 3]"]);
    const v = errorOf("matmul", (m) => [mat(m, "a", [4]), mat(m, "b", [5])]);
    expect(v.message).toBe("matmul 'y': contraction sizes do not match: a has 4 elements, b has 5 elements");
    const sym = errorOf("matmul", (m) => [mat(m, "a", [2, "L"]), mat(m, "b", [3, 2])]);
    expect(sym.message).toBe("matmul 'y': contraction sizes do not match: a has L columns, b has 3 rows");
    const bc = errorOf("matmul", (m) => [mat(m, "a", [2, 3, 4]), mat(m, "b", [5, 4, 2])]);
    expect(bc.code).toBe("E203");
    expect(bc.message).toBe("matmul 'y': batch dims cannot be broadcast: a has [2] and b has [5] (2 vs 5)");
    const sc = errorOf("matmul", (m) => [mat(m, "a", []), mat(m, "b", [2])]);
    expect(sc.code).toBe("E210");
    expect(sc.message).toBe("matmul 'y': matmul needs operands of rank 1 or more, a is a scalar");
    const dt = errorOf("matmul", (m) => [mat(m, "a", [2, 2]), mat(m, "b", [2, 2], "i32")]);
    expect(dt.code).toBe("E213");
    expect(dt.message).toBe("matmul 'y': matmul needs f32 operands, b is i32");
  });

  it("dense: symbolic last dim (E212), scalar input (E210), dtype (E213)", () => {
    const s = errorOf("dense", (m) => [mat(m, "x", ["N", "L"]), 4]);
    expect(s.code).toBe("E212");
    expect(s.message).toBe("dense 'y': dense needs a static last dim to size its weight, found L");
    const r = errorOf("dense", (m) => [mat(m, "x", []), 4]);
    expect(r.code).toBe("E210");
    expect(r.message).toBe("dense 'y': dense needs an input of rank 1 or more, found a scalar");
    const d = errorOf("dense", (m) => [mat(m, "x", ["N", 3], "i32"), 4]);
    expect(d.code).toBe("E213");
    expect(d.message).toBe("dense 'y': dense needs an f32 input, found i32");
  });
});

describe("dense argument errors", () => {
  it("checks tied tensors, the bias flag and units", () => {
    const m = new TestModel();
    const x = m.input("x", "f32", ["N", 3]);
    const w = m.input("w", "f32", [3, 4]);
    const [tied] = diagnosticsOf(() => m.call("dense", [x, 4], { weight: w }, "dec"));
    expect(tied!.code).toBe("E216");
    expect(tied!.message).toBe("dense 'dec': tensor passed as weight= must be f32[4, 3], found f32[3, 4]");
    const [bias] = diagnosticsOf(() => m.call("dense", [x, 4], { bias: 1 }, "d2"));
    expect(bias!.code).toBe("E403");
    expect(bias!.message).toBe("dense 'd2': argument 'bias' must be true, false or a tensor, found the integer 1");
    const [units] = diagnosticsOf(() => m.call("dense", [x, 0], {}, "d3"));
    expect(units!.code).toBe("E404");
    expect(units!.message).toBe("dense 'd3': argument 'units' must be a positive integer, found 0");
  });
});

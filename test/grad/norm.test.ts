// Gradient rules of the normalisation family (compiler/ops/norm.ts):
// batchnorm (backward op batchnorm_grad, in training AND inference),
// layernorm (plain IR), dropout (dy·mask, the forward's own mask) and
// gaussian_noise (identity). Each case: float64 finite differences against
// the analytic backward IR on the reference, then the generated JS (and, for
// a subset, WGSL) gradient kernels against the reference.
//
// WGSL: `run` is inference, so the WGSL checks of batchnorm's training
// gradient set the node attribute `training: true` on batchnorm and
// batchnorm_grad (what trainStep will do) and compare with the reference in
// training mode. WGSL training dropout draws its masks from a device RNG that
// differs from the reference's streams, so here dropout's gradient is checked in
// training on the reference and JS, and in inference on WGSL; the WGSL training
// form is checked through its own masks in test/train/gpu-dropout.test.ts.

import { describe, expect, it } from "vitest";
import { differentiate } from "../../compiler/autodiff/reverse.ts";
import { wgslExecutor } from "../../compiler/codegen/wgsl/execute.ts";
import { CompileError } from "../../compiler/diagnostics.ts";
import type { Graph } from "../../compiler/ir/graph.ts";
import { initialParams, interpret } from "../../compiler/reference/interpreter.ts";
import type { RefTensor } from "../../compiler/reference/tensor.ts";
import type { AdapterClass } from "../../runtime/webgpu.ts";
import { TestModel, randomTensor } from "../support/build.ts";
import { expectAllClose, expectJsMatchesReference } from "../support/conformance.ts";
import { checkGradients } from "../support/gradcheck.ts";
import { expectWgslMatchesReference, gpuDevice } from "../support/webgpu.ts";

/** `shape` with the symbols replaced by sizes. */
function bind(shape: readonly (number | string)[], sizes: Record<string, number>): number[] {
  return shape.map((d) => (typeof d === "number" ? d : sizes[d]!));
}

/** Random inputs around `offset` (an offset stresses the two-pass statistics). */
const input = (shape: number[], seed: number, offset = 0) => randomTensor(shape, seed, offset - 2, offset + 2);

/** Sets `training: true` on every node of `ops` (what trainStep does for the WGSL training kernels). */
function markTraining(g: Graph, ops: readonly string[]): void {
  for (const n of g.nodes) if (ops.includes(n.op)) (n.attrs as Record<string, unknown>).training = true;
}

/** WGSL (both kernel variants, nodes marked for training) against the reference in training mode. */
async function expectWgslTrainingMatches(g: Graph, inputs: Record<string, RefTensor>, params0: Record<string, RefTensor>): Promise<void> {
  const params = { ...initialParams(g, 0), ...params0 };
  for (const k of Object.keys(params)) params[k] = params[k]!.map((v) => Math.fround(v));
  const feeds = Object.fromEntries(Object.entries(inputs).map(([k, t]) => [k, t.dtype === "f32" ? t.map((v) => Math.fround(v)) : t]));
  const ref = interpret(g, feeds, params, { training: true });
  const { device } = await gpuDevice();
  for (const cls of ["cpu", "gpu"] as AdapterClass[]) {
    const ex = await wgslExecutor(g, device, cls, params, Object.keys(ref.outputs));
    try {
      const got = await ex.run(feeds);
      for (const [name, want] of Object.entries(ref.outputs)) expectAllClose(got[name]!, want, `${cls}: output '${name}'`);
    } finally {
      ex.dispose();
    }
  }
}

// ---------------------------------------------------------------- batchnorm

function batchnormModel(shape: (number | string)[], kw: Record<string, number> = {}) {
  const m = new TestModel();
  const x = m.input("x", "f32", shape);
  const y = m.call("batchnorm", [x], kw, "bn");
  m.output("y", y);
  m.output("running_mean", y.node.outputs[1]!);
  m.output("running_var", y.node.outputs[2]!);
  return m;
}

function batchnormParams(C: number): Record<string, RefTensor> {
  return {
    "bn.weight": randomTensor([C], 11, 0.5, 2),
    "bn.bias": randomTensor([C], 12, -1, 1),
    "bn.running_mean": randomTensor([C], 13, -1, 1),
    "bn.running_var": randomTensor([C], 14, 0.5, 3),
  };
}

describe("batchnorm gradient", () => {
  const cases: { name: string; shape: (number | string)[]; C: number; kw?: Record<string, number>; Ns: number[]; offset?: number }[] = [
    { name: "2-d [N, 5]", shape: ["N", 5], C: 5, Ns: [2, 7] },
    { name: "3-d [N, 3, L]", shape: ["N", 3, "L"], C: 3, Ns: [1, 3] },
    { name: "4-d [N, 3, 4, 5] with momentum and eps", shape: ["N", 3, 4, 5], C: 3, kw: { momentum: 0.25, eps: 1e-3 }, Ns: [1, 2], offset: 20 },
    { name: "static [2, 4, 3]", shape: [2, 4, 3], C: 4, Ns: [2] },
  ];
  for (const training of [true, false]) {
    const mode = training ? "training" : "inference";
    for (const c of cases) {
      it(`${c.name} in ${mode}: x, weight, bias on the reference and JS`, () => {
        const m = batchnormModel(c.shape, c.kw);
        const params = batchnormParams(c.C);
        for (const N of c.Ns) {
          const x = input(bind(c.shape, { N, L: 4 }), 3 + N, c.offset ?? 0);
          const gg = checkGradients(m.graph, { x }, { params, training, seed: 3 });
          expect(gg.names).toEqual(["grad:x", "grad:bn.weight", "grad:bn.bias"]);
          expectJsMatchesReference(gg.graph, gg.inputs, { params, training, seed: 3 });
        }
      });
    }
  }

  it("training and inference gradients differ (the batch statistics depend on x)", () => {
    const m = batchnormModel(["N", 3]);
    const params = batchnormParams(3);
    const x = input([4, 3], 1);
    const a = checkGradients(m.graph, { x }, { params, training: true });
    checkGradients(m.graph, { x }, { params, training: false });
    const run = (training: boolean) => interpret(a.graph, a.inputs, { ...initialParams(m.graph, 0), ...params }, { training }).outputs["grad:x"]!;
    expect(Array.from(run(true).data)).not.toEqual(Array.from(run(false).data));
    // in training Σ_n dx[n, c] = 0 per channel (shifting x by a constant changes nothing)
    const dx = run(true);
    for (let c = 0; c < 3; c++) expect(Math.abs(dx.get(0, c) + dx.get(1, c) + dx.get(2, c) + dx.get(3, c))).toBeLessThan(1e-12);
  });

  it("running_mean / running_var passed as inputs carry no gradient (E309)", () => {
    const m = new TestModel();
    const x = m.input("x", "f32", ["N", 2]);
    const rm = m.input("rm", "f32", [2]);
    const y = m.call("batchnorm", [x], { running_mean: rm }, "bn");
    const s = m.call("sum", [y], {}, "s");
    try {
      differentiate(m.graph, s, [rm]);
      expect.fail("expected E309");
    } catch (e) {
      expect(e).toBeInstanceOf(CompileError);
      expect((e as CompileError).diagnostics[0]!.code).toBe("E309");
    }
  });

  it("WGSL in inference: [N, 3, L] and [N, 4]", async () => {
    for (const [shape, C] of [[["N", 3, "L"], 3], [["N", 4], 4]] as const) {
      const m = batchnormModel([...shape]);
      const params = batchnormParams(C);
      for (const N of [1, 5]) {
        const gg = checkGradients(m.graph, { x: input(bind(shape, { N, L: 6 }), N, 5) }, { params, maxElements: 8 });
        await expectWgslMatchesReference(gg.graph, gg.inputs, { params });
      }
    }
  });

  it("WGSL in training (kernels marked training, both variants): [N, 3, 4, 5] and [N, 6]", async () => {
    for (const [shape, C] of [[["N", 3, 4, 5], 3], [["N", 6], 6]] as const) {
      const m = batchnormModel([...shape], { eps: 1e-3 });
      // marked before differentiation: the rule gives batchnorm_grad the forward's `training` attribute
      markTraining(m.graph, ["batchnorm"]);
      const params = batchnormParams(C);
      const gg = checkGradients(m.graph, { x: input(bind(shape, { N: 3 }), 9, 10) }, { params, training: true, maxElements: 8 });
      expect(gg.graph.nodes.filter((n) => n.op === "batchnorm_grad").map((n) => n.attrs.training)).toEqual([true]);
      await expectWgslTrainingMatches(gg.graph, gg.inputs, params);
    }
  });
});

// ---------------------------------------------------------------- layernorm

function layernormModel(shape: (number | string)[], axis: number | number[]) {
  const m = new TestModel();
  const x = m.input("x", "f32", shape);
  m.output("y", m.call("layernorm", [x], { axis, eps: 1e-4 }, "ln"));
  return m;
}

function layernormParams(affineShape: number[]): Record<string, RefTensor> {
  return { "ln.weight": randomTensor(affineShape, 31, 0.5, 2), "ln.bias": randomTensor(affineShape, 32, -1, 1) };
}

describe("layernorm gradient", () => {
  const cases: { name: string; shape: (number | string)[]; axis: number | number[]; affine: number[]; wgsl?: boolean }[] = [
    { name: "last axis of [N, D]", shape: ["N", 8], axis: -1, affine: [8], wgsl: true },
    { name: "last axis of [N, L, D]", shape: ["N", 3, 6], axis: 2, affine: [6] },
    { name: "two trailing axes of [N, C, L]", shape: ["N", 4, 6], axis: [1, 2], affine: [4, 6] },
    { name: "channels (axis 1) of [N, C, L]", shape: ["N", 4, 7], axis: 1, affine: [4], wgsl: true },
    { name: "axes 1, 2 of [N, C, H, W]", shape: ["N", 3, 4, 5], axis: [1, 2], affine: [3, 4] },
    { name: "non-adjacent axes 1, 3 of [N, C, H, W]", shape: ["N", 3, 4, 5], axis: [1, 3], affine: [3, 5], wgsl: true },
    { name: "axes 0, 2 of [2, N, 3] (batch kept in the middle)", shape: [2, "N", 3], axis: [0, 2], affine: [2, 3] },
    { name: "size-1 axes [N, 1, 6] over axes 1, 2", shape: ["N", 1, 6], axis: [1, 2], affine: [1, 6] },
    { name: "all axes of a vector [8]", shape: [8], axis: 0, affine: [8] },
  ];
  for (const c of cases) {
    it(`${c.name}: reference and JS${c.wgsl ? " and WGSL" : ""}`, async () => {
      const m = layernormModel(c.shape, c.axis);
      const params = layernormParams(c.affine);
      for (const N of [1, 4]) {
        const gg = checkGradients(m.graph, { x: input(bind(c.shape, { N }), 40 + N, 5) }, { params });
        expectJsMatchesReference(gg.graph, gg.inputs, { params });
        if (c.wgsl && N === 4) await expectWgslMatchesReference(gg.graph, gg.inputs, { params });
      }
    });
  }

  it("symbolic normalised axis with weight= and bias= given as inputs", async () => {
    const m = new TestModel();
    const x = m.input("x", "f32", [2, "L"]);
    const w = m.input("w", "f32", ["L"]);
    const b = m.input("b", "f32", ["L"]);
    m.output("y", m.call("layernorm", [x], { axis: 1, weight: w, bias: b }, "ln"));
    for (const L of [3, 10]) {
      const gg = checkGradients(m.graph, { x: input([2, L], L, 5), w: input([L], 2), b: input([L], 3) });
      expect(gg.names).toEqual(["grad:x", "grad:w", "grad:b"]);
      expectJsMatchesReference(gg.graph, gg.inputs);
      if (L === 10) await expectWgslMatchesReference(gg.graph, gg.inputs);
    }
  });

  it("Σ dx over each normalised group is 0 (a constant shift of a group changes nothing)", () => {
    const m = layernormModel(["N", 5], -1);
    const params = layernormParams([5]);
    const gg = checkGradients(m.graph, { x: input([3, 5], 7) }, { params });
    const dx = interpret(gg.graph, gg.inputs, { ...initialParams(m.graph, 0), ...params }).outputs["grad:x"]!;
    for (let r = 0; r < 3; r++) {
      let s = 0;
      for (let k = 0; k < 5; k++) s += dx.get(r, k);
      expect(Math.abs(s)).toBeLessThan(1e-12);
    }
  });
});

// ---------------------------------------------------------------- dropout and noise

function dropoutModel(p: number, shape: (number | string)[] = ["N", 7, 5]) {
  const m = new TestModel();
  const x = m.input("x", "f32", shape);
  const y = m.call("dropout", [x], { p }, "drop");
  m.output("y", y);
  m.output("mask", y.node.outputs[1]!);
  return m;
}

describe("dropout gradient", () => {
  for (const p of [0, 0.3, 0.9]) {
    it(`p=${p} in training (seeded mask): reference and JS, for two batch sizes`, () => {
      const m = dropoutModel(p);
      for (const N of [1, 6]) {
        const x = input([N, 7, 5], N);
        const gg = checkGradients(m.graph, { x }, { training: true, seed: 17, maxElements: 60 });
        const js = expectJsMatchesReference(gg.graph, gg.inputs, { training: true, seed: 17 });
        // dx = probe·mask exactly, with the mask the forward drew (same stream: same node, same seed)
        const mask = m.run({ x }, {}, { training: true, seed: 17 }).outputs.mask!;
        const want = gg.inputs.__probe!.map((v, i) => v * mask.data[i]!);
        expectAllClose(js["grad:x"]!, want, "grad:x = probe·mask");
        if (p > 0 && N === 6) expect(mask.data.some((v) => v === 0)).toBe(true);
      }
    });
  }

  it("in inference the gradient is dy (mask of ones): reference, JS and WGSL", async () => {
    const m = dropoutModel(0.5, ["N", 4]);
    const gg = checkGradients(m.graph, { x: input([3, 4], 2) }, { training: false });
    const js = expectJsMatchesReference(gg.graph, gg.inputs);
    expectAllClose(js["grad:x"]!, gg.inputs.__probe!, "grad:x = probe");
    await expectWgslMatchesReference(gg.graph, gg.inputs);
  });

  it("two stacked dropouts use their own masks", () => {
    const m = new TestModel();
    const x = m.input("x", "f32", ["N", 10]);
    const a = m.call("dropout", [x], { p: 0.5 }, "d1");
    m.output("y", m.call("dropout", [a], { p: 0.2 }, "d2"));
    const gg = checkGradients(m.graph, { x: input([5, 10], 4) }, { training: true, seed: 5 });
    expectJsMatchesReference(gg.graph, gg.inputs, { training: true, seed: 5 });
  });
});

describe("gaussian_noise gradient", () => {
  for (const training of [true, false]) {
    it(`is the identity in ${training ? "training" : "inference"}: reference, JS${training ? "" : " and WGSL"}`, async () => {
      const m = new TestModel();
      const x = m.input("x", "f32", ["N", 4, 3]);
      m.output("y", m.call("gaussian_noise", [x], { std: 0.5 }, "noise"));
      const gg = checkGradients(m.graph, { x: input([2, 4, 3], 6) }, { training, seed: 2 });
      const js = expectJsMatchesReference(gg.graph, gg.inputs, { training, seed: 2 });
      expectAllClose(js["grad:x"]!, gg.inputs.__probe!, "grad:x = probe");
      if (!training) await expectWgslMatchesReference(gg.graph, gg.inputs);
    });
  }
});

describe("norm family composed", () => {
  it("batchnorm → dropout → layernorm in training: reference and JS", () => {
    const m = new TestModel();
    const x = m.input("x", "f32", ["N", 4, 3]);
    const bn = m.call("batchnorm", [x], {}, "bn");
    const d = m.call("dropout", [bn], { p: 0.25 }, "drop");
    const ln = m.call("layernorm", [d], { axis: [1, 2] }, "ln");
    m.output("y", m.call("gaussian_noise", [ln], { std: 0.1 }, "noise"));
    const params = { ...batchnormParams(4), ...layernormParams([4, 3]) };
    const gg = checkGradients(m.graph, { x: input([3, 4, 3], 8) }, { params, training: true, seed: 9 });
    expect(gg.names).toEqual(["grad:x", "grad:bn.weight", "grad:bn.bias", "grad:ln.weight", "grad:ln.bias"]);
    expectJsMatchesReference(gg.graph, gg.inputs, { params, training: true, seed: 9 });
  });
});

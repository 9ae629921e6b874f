// Gradient rules of the losses (compiler/ops/loss.ts): cross_entropy
// (backward op cross_entropy_grad: axis, mask, ignore_index, the count of
// counted positions at run time, zero gradient when nothing counts), mse
// (mse_grad) and bce_with_logits (bce_with_logits_grad). Each case: float64
// finite differences against the analytic backward IR on the reference, then
// the generated JS (and, for a subset, WGSL) gradient kernels against the
// reference. Labels and masks carry no gradient.

import { describe, expect, it } from "vitest";
import { differentiate } from "../../compiler/autodiff/reverse.ts";
import { CompileError } from "../../compiler/diagnostics.ts";
import type { Value } from "../../compiler/ir/graph.ts";
import { interpret } from "../../compiler/reference/interpreter.ts";
import { RefTensor } from "../../compiler/reference/tensor.ts";
import { TestModel, randomTensor } from "../support/build.ts";
import { expectAllClose, expectJsMatchesReference } from "../support/conformance.ts";
import { checkGradients } from "../support/gradcheck.ts";
import { expectWgslMatchesReference } from "../support/webgpu.ts";

/** Deterministic labels in [0, classes); every `every`-th one set to `value`. */
function labels(shape: number[], classes: number, seed: number, ignore?: { every: number; value: number }): RefTensor {
  const u = randomTensor(shape, seed, 0, 1);
  return u.map((v, i) => (ignore && i % ignore.every === ignore.every - 1 ? ignore.value : Math.min(classes - 1, Math.floor(v * classes))), "i32");
}

/** Deterministic mask with roughly a third of the positions excluded. */
function mask(shape: number[], seed: number): RefTensor {
  return randomTensor(shape, seed, 0, 1).map((v) => (v < 0.33 ? 0 : 1), "bool");
}

/** Logits in ±`scale`, the first few pinned to ±scale exactly. */
function logits(shape: number[], seed: number, scale = 3): RefTensor {
  const x = randomTensor(shape, seed, -scale, scale);
  x.data[0] = scale;
  if (x.size > 1) x.data[1] = -scale;
  return x;
}

interface CeCase {
  name: string;
  logits: (number | string)[];
  axis?: number;
  kw?: Record<string, number>;
  withMask?: boolean;
  wgsl?: boolean;
}

function ceModel(c: CeCase) {
  const m = new TestModel();
  const x = m.input("logits", "f32", c.logits);
  const rank = c.logits.length;
  const axis = c.axis === undefined ? (rank === 1 ? 0 : 1) : c.axis < 0 ? c.axis + rank : c.axis;
  const positions = c.logits.filter((_, i) => i !== axis);
  const y = m.input("labels", "i32", positions);
  const extra: Record<string, Value> = c.withMask ? { mask: m.input("mask", "bool", positions) } : {};
  const kw: Record<string, number | Value> = { ...(c.kw ?? {}), ...extra, ...(c.axis === undefined ? {} : { axis: c.axis }) };
  m.output("loss", m.call("cross_entropy", [x, y], kw, "xent"), "loss");
  return { m, axis };
}

describe("cross_entropy gradient", () => {
  const cases: CeCase[] = [
    { name: "[N, C]", logits: ["N", 5], wgsl: true },
    { name: "[N, C] with mask", logits: ["N", 5], withMask: true },
    { name: "[N, C] with ignore_index=2", logits: ["N", 5], kw: { ignore_index: 2 } },
    { name: "[N, C, L]", logits: ["N", 4, 6] },
    { name: "[N, C, L] with mask and ignore_index", logits: ["N", 4, 6], withMask: true, kw: { ignore_index: -1 }, wgsl: true },
    { name: "[N, C, H, W]", logits: ["N", 3, 2, 5], withMask: true },
    { name: "[N, L, C] with axis=-1", logits: ["N", 6, 7], axis: -1, withMask: true },
    { name: "[N, L, C] with axis=2 and a size-1 trailing axis", logits: ["N", 6, 7, 1], axis: 2 },
    { name: "[C] (1-D, axis 0)", logits: [9] },
    { name: "[N, V] with a symbolic class count", logits: ["N", "V"], withMask: true, wgsl: true },
  ];
  for (const c of cases) {
    for (const scale of [3, 1e4]) {
      const wgsl = c.wgsl && (scale === 3 || c.name === "[N, C]");
      it(`${c.name}, logits ±${scale}: reference and JS${wgsl ? " and WGSL" : ""}, for two batch sizes`, async () => {
        const { m, axis } = ceModel(c);
        for (const N of [1, 5]) {
          const shape = c.logits.map((d) => (d === "N" ? N : d === "V" ? 3 + N : (d as number)));
          const positions = shape.filter((_, i) => i !== axis);
          const ignoreValue = c.kw?.ignore_index ?? -100;
          const inputs: Record<string, RefTensor> = {
            logits: logits(shape, 10 + N, scale),
            labels: labels(positions, shape[axis]!, 20 + N, { every: 4, value: ignoreValue }),
          };
          if (c.withMask) inputs.mask = mask(positions, 30 + N);
          // at ±1e4 the loss is piecewise linear in the logits (softmax saturated): a larger step is exact there
          const gg = checkGradients(m.graph, inputs, { eps: scale > 100 ? 1e-3 : 1e-6, maxElements: 60 });
          expect(gg.names).toEqual(["grad:logits"]);
          const js = expectJsMatchesReference(gg.graph, gg.inputs);
          expect(Array.from(js["grad:logits"]!.data).every(Number.isFinite)).toBe(true);
          if (wgsl && N === 5) await expectWgslMatchesReference(gg.graph, gg.inputs);
        }
      });
    }
  }

  it("is (softmax − onehot)·dloss/count on a hand-written case", () => {
    const { m } = ceModel({ name: "", logits: ["N", 3], withMask: true });
    const x = RefTensor.from([0, 0, 0, 1, 2, 3, 5, 5, 5], [3, 3]);
    const inputs = { logits: x, labels: RefTensor.from([2, 0, 1], [3], "i32"), mask: RefTensor.from([1, 1, 0], [3], "bool") };
    const gg = checkGradients(m.graph, inputs);
    const probe = gg.inputs.__probe!.data[0]!;
    const js = expectJsMatchesReference(gg.graph, gg.inputs);
    const e = [1, Math.E, Math.E ** 2];
    const z = e[0]! + e[1]! + e[2]!;
    const want = [1 / 3, 1 / 3, 1 / 3 - 1, e[0]! / z - 1, e[1]! / z, e[2]! / z, 0, 0, 0].map((v) => (v * probe) / 2);
    expectAllClose(js["grad:logits"]!, RefTensor.from(want, [3, 3]), "grad:logits");
  });

  it("gives 0 loss and a zero gradient when every position is masked or ignored (reference, JS, WGSL)", async () => {
    const { m } = ceModel({ name: "", logits: ["N", 3, 2], withMask: true });
    const inputs = {
      logits: logits([2, 3, 2], 1, 1e4),
      labels: RefTensor.from([-100, 1, 99, -100], [2, 2], "i32"),
      mask: RefTensor.from([1, 0, 0, 0], [2, 2], "bool"),
    };
    const gg = checkGradients(m.graph, inputs);
    const js = expectJsMatchesReference(gg.graph, gg.inputs);
    expect(js.loss!.data[0]).toBe(0);
    expect(Array.from(js["grad:logits"]!.data)).toEqual(new Array(12).fill(0));
    const gpu = await expectWgslMatchesReference(gg.graph, gg.inputs);
    expect(Array.from(gpu["grad:logits"]!.data)).toEqual(new Array(12).fill(0));
  });

  it("the gradient alone (no forward output) still fails on an out-of-range counted label", () => {
    const { m } = ceModel({ name: "", logits: ["N", 4] });
    const inputs = { logits: logits([3, 4], 2), labels: RefTensor.from([0, 4, 1], [3], "i32") };
    const gg = checkGradients(m.graph, { ...inputs, labels: RefTensor.from([0, 3, 1], [3], "i32") });
    gg.graph.outputs.splice(0, 1); // keep only grad:logits: the forward cross_entropy node is not run
    const feeds = { ...gg.inputs, ...inputs };
    expect(() => interpret(gg.graph, feeds, {})).toThrow("label 4 at labels[1] is outside the classes [0, 4) (ignore_index is -100)");
    expect(() => expectJsMatchesReference(gg.graph, feeds)).toThrow("label 4 at labels[1] is outside the classes [0, 4)");
  });

  it("labels and mask carry no gradient (E309)", () => {
    const m = new TestModel();
    const x = m.input("logits", "f32", ["N", 3]);
    const lab = m.input("labels", "i32", ["N"]);
    const f = m.input("f", "f32", ["N"]);
    const msk = m.call("cast", [f], { dtype: "bool" }, "msk");
    const loss = m.call("cross_entropy", [x, lab], { mask: msk }, "xent");
    for (const wrt of [lab, f]) {
      try {
        differentiate(m.graph, loss, [wrt]);
        expect.fail("expected E309");
      } catch (e) {
        expect(e).toBeInstanceOf(CompileError);
        expect((e as CompileError).diagnostics[0]!.code).toBe("E309");
      }
    }
  });
});

function pairModel(op: string, shape: (number | string)[]) {
  const m = new TestModel();
  const a = m.input("a", "f32", shape);
  const b = m.input("b", "f32", shape);
  m.output("loss", m.call(op, [a, b], {}, op), "loss");
  return m;
}

describe("mse gradient", () => {
  it("[N, 3, 4] for two batch sizes: both inputs, reference, JS and WGSL", async () => {
    const m = pairModel("mse", ["N", 3, 4]);
    for (const N of [1, 6]) {
      const gg = checkGradients(m.graph, { a: randomTensor([N, 3, 4], N, -5, 5), b: randomTensor([N, 3, 4], 50 + N, -5, 5) });
      expect(gg.names).toEqual(["grad:a", "grad:b"]);
      expectJsMatchesReference(gg.graph, gg.inputs);
      if (N === 6) await expectWgslMatchesReference(gg.graph, gg.inputs);
    }
  });

  it("a static vector, by hand: 2(a − b)/n", () => {
    const gg = checkGradients(pairModel("mse", [3]).graph, { a: RefTensor.from([1, 2, 3]), b: RefTensor.from([1, 0, 6]) });
    const p = gg.inputs.__probe!.data[0]!;
    const js = expectJsMatchesReference(gg.graph, gg.inputs);
    expectAllClose(js["grad:a"]!, RefTensor.from([0, (4 / 3) * p, -2 * p]), "grad:a");
    expectAllClose(js["grad:b"]!, RefTensor.from([0, (-4 / 3) * p, 2 * p]), "grad:b");
  });
});

describe("bce_with_logits gradient", () => {
  for (const scale of [4, 1e4]) {
    it(`logits ±${scale}, for two batch sizes: both inputs, reference, JS and WGSL`, async () => {
      const m = pairModel("bce_with_logits", ["N", 7]);
      for (const N of [1, 4]) {
        const gg = checkGradients(m.graph, { a: logits([N, 7], N, scale), b: randomTensor([N, 7], 60 + N, 0, 1) }, { eps: scale > 100 ? 1e-3 : 1e-6 });
        const js = expectJsMatchesReference(gg.graph, gg.inputs);
        expect(Array.from(js["grad:a"]!.data).every(Number.isFinite)).toBe(true);
        if (N === 4) await expectWgslMatchesReference(gg.graph, gg.inputs);
      }
    });
  }

  it("saturates to (1 − t) and −t at ±1e4 with hard targets", () => {
    const gg = checkGradients(pairModel("bce_with_logits", [4]).graph, { a: RefTensor.from([1e4, -1e4, 1e4, -1e4]), b: RefTensor.from([0, 1, 1, 0]) }, { eps: 1e-3 });
    const p = gg.inputs.__probe!.data[0]!;
    const js = expectJsMatchesReference(gg.graph, gg.inputs);
    expectAllClose(js["grad:a"]!, RefTensor.from([p / 4, -p / 4, 0, 0]), "grad:a");
  });
});

// WebGPU conformance of the loss kernels (compiler/codegen/wgsl/loss.ts) with
// the float64 reference on the real Dawn device, for both kernel variants
// ("cpu": flat combine of 64 partials; "gpu": 256-thread tree reduction).

import { describe, expect, it } from "vitest";
import { wgslExecutor } from "../../compiler/codegen/wgsl/execute.ts";
import { emitWgslProgram } from "../../compiler/codegen/wgsl/program.ts";
import type { Value } from "../../compiler/ir/graph.ts";
import { initialParams } from "../../compiler/reference/interpreter.ts";
import { RefTensor } from "../../compiler/reference/tensor.ts";
import type { AdapterClass } from "../../runtime/webgpu.ts";
import { TestModel, randomTensor } from "../support/build.ts";
import { expectWgslMatchesReference, gpuDevice } from "../support/webgpu.ts";

const VARIANTS: AdapterClass[] = ["cpu", "gpu"];

/** Deterministic labels in [0, classes); every `every`-th one set to `ignore`. */
function labels(shape: number[], classes: number, seed: number, ignore?: { every: number; value: number }): RefTensor {
  const u = randomTensor(shape, seed, 0, 1);
  return u.map((v, i) => (ignore && i % ignore.every === ignore.every - 1 ? ignore.value : Math.min(classes - 1, Math.floor(v * classes))), "i32");
}

/** Deterministic mask with roughly a third of the positions excluded. */
function mask(shape: number[], seed: number): RefTensor {
  return randomTensor(shape, seed, 0, 1).map((v) => (v < 0.33 ? 0 : 1), "bool");
}

/** Values in ±`scale`, the first two pinned to +scale and −scale exactly. */
function spread(shape: number[], seed: number, scale: number): RefTensor {
  const x = randomTensor(shape, seed, -scale, scale);
  x.data[0] = scale;
  if (x.size > 1) x.data[1] = -scale;
  return x;
}

// ---------------------------------------------------------------- cross entropy

interface CeCase {
  name: string;
  logits: (number | string)[];
  axis?: number;
  ignoreIndex?: number;
  withMask?: boolean;
}

function ceModel(c: CeCase) {
  const m = new TestModel();
  const x = m.input("logits", "f32", c.logits);
  const rank = c.logits.length;
  const axis = c.axis === undefined ? (rank === 1 ? 0 : 1) : c.axis < 0 ? c.axis + rank : c.axis;
  const positions = c.logits.filter((_, i) => i !== axis);
  const y = m.input("labels", "i32", positions);
  const kw: Record<string, number | Value> = {};
  if (c.withMask) kw.mask = m.input("mask", "bool", positions);
  if (c.ignoreIndex !== undefined) kw.ignore_index = c.ignoreIndex;
  if (c.axis !== undefined) kw.axis = c.axis;
  m.output("loss", m.call("cross_entropy", [x, y], kw, "xent"), "loss");
  return { m, axis };
}

/** Inputs for a case at sizes N (batch) and V (symbolic classes). */
function ceInputs(c: CeCase, axis: number, N: number, scale: number): Record<string, RefTensor> {
  const sizes: Record<string, number> = { N, V: 3 + N, H: 2 + (N % 3), W: 5 - (N % 3) };
  const shape = c.logits.map((d) => (typeof d === "string" ? sizes[d]! : d));
  const positions = shape.filter((_, i) => i !== axis);
  const inputs: Record<string, RefTensor> = {
    logits: spread(shape, 10 + N, scale),
    labels: labels(positions, shape[axis]!, 20 + N, { every: 4, value: c.ignoreIndex ?? -100 }),
  };
  if (c.withMask) inputs.mask = mask(positions, 30 + N);
  return inputs;
}

describe("WebGPU cross_entropy", () => {
  const cases: CeCase[] = [
    { name: "[N, C]", logits: ["N", 5] },
    { name: "[N, C] with mask and ignore_index=2", logits: ["N", 5], withMask: true, ignoreIndex: 2 },
    { name: "[N, C, L] with mask and ignore_index=-1", logits: ["N", 4, 6], withMask: true, ignoreIndex: -1 },
    { name: "[N, C, H, W] with mask and symbolic H, W", logits: ["N", 3, "H", "W"], withMask: true },
    { name: "[N, L, C] with axis=-1 and mask", logits: ["N", 6, 7], axis: -1, withMask: true },
    { name: "[C] (1-D, axis 0)", logits: [9] },
    { name: "[N, V] with a symbolic class count", logits: ["N", "V"], withMask: true },
  ];
  for (const c of cases) {
    for (const cls of VARIANTS) {
      it(`${cls}: ${c.name}, logits ±3 and ±1e4, for two batch sizes`, async () => {
        const { m, axis } = ceModel(c);
        for (const [N, scale] of [[2, 3], [7, 1e4]] as const) {
          await expectWgslMatchesReference(m.graph, ceInputs(c, axis, N, scale), { adapterClass: cls });
        }
      });
    }
  }

  for (const cls of VARIANTS) {
    it(`${cls}: more positions than threads ([N, C] with N = 1000, [N, C, L] with N·L = 700)`, async () => {
      const rows = ceModel({ name: "", logits: ["N", 5], withMask: true });
      await expectWgslMatchesReference(rows.m.graph, ceInputs({ name: "", logits: ["N", 5], withMask: true }, 1, 1000, 5), { adapterClass: cls });
      const seq = ceModel({ name: "", logits: ["N", 3, 100], ignoreIndex: 0 });
      await expectWgslMatchesReference(seq.m.graph, ceInputs({ name: "", logits: ["N", 3, 100], ignoreIndex: 0 }, 1, 7, 10), { adapterClass: cls });
    });

    it(`${cls}: no counted position gives 0 (all masked, or all ignored)`, async () => {
      const { m } = ceModel({ name: "", logits: ["N", 4], withMask: true });
      const logits = spread([3, 4], 1, 2);
      const got = await expectWgslMatchesReference(m.graph, { logits, labels: RefTensor.from([0, 1, 2], [3], "i32"), mask: RefTensor.from([0, 0, 0], [3], "bool") }, { adapterClass: cls });
      expect(got.loss!.data[0]).toBe(0);
      const allIgnored = await expectWgslMatchesReference(m.graph, { logits, labels: RefTensor.from([-100, -100, -100], [3], "i32"), mask: RefTensor.from([1, 1, 1], [3], "bool") }, { adapterClass: cls });
      expect(allIgnored.loss!.data[0]).toBe(0);
    });

    it(`${cls}: a label outside [0, C) is rejected with its value and flat position; masked or ignored ones are not`, async () => {
      const { m } = ceModel({ name: "", logits: ["N", 4, 3], withMask: true, ignoreIndex: -1 });
      const { device } = await gpuDevice();
      const ex = await wgslExecutor(m.graph, device, cls, initialParams(m.graph, 0));
      try {
        const logits = spread([2, 4, 3], 1, 2);
        const ones = RefTensor.from([1, 1, 1, 1, 1, 1], [2, 3], "bool");
        await expect(ex.run({ logits, labels: RefTensor.from([0, 1, 2, 3, 7, 1], [2, 3], "i32"), mask: ones })).rejects.toThrow(
          "cross_entropy 'xent': label 7 at flat position 4 of labels is outside the classes [0, 4) (ignore_index is -1)",
        );
        await expect(ex.run({ logits, labels: RefTensor.from([0, -5, 2, 3, 0, 1], [2, 3], "i32"), mask: ones })).rejects.toThrow(
          "label -5 at flat position 1 of labels is outside the classes [0, 4)",
        );
        // out-of-range labels that are masked out or equal to ignore_index do not count and do not fail
        const fine = await ex.run({
          logits,
          labels: RefTensor.from([0, 99, 2, -1, 0, 1], [2, 3], "i32"),
          mask: RefTensor.from([1, 0, 1, 1, 1, 1], [2, 3], "bool"),
        });
        expect(Number.isFinite(fine.loss!.data[0])).toBe(true);
      } finally {
        ex.dispose();
      }
    });
  }

  it("golden WGSL: cross_entropy on [N, C, L] with mask, gpu variant", async () => {
    const { m } = ceModel({ name: "", logits: ["N", 4, "L"], withMask: true });
    const pass = emitWgslProgram(m.graph, [m.graph.outputs[0]!.value]).passes[0]!;
    await expect(pass.code.gpu).toMatchFileSnapshot("__golden__/cross_entropy-ncl-gpu.wgsl");
  });
});

// ---------------------------------------------------------------- mse and bce_with_logits

function pairModel(op: "mse" | "bce_with_logits", shape: (number | string)[]) {
  const m = new TestModel();
  const a = m.input("a", "f32", shape);
  const b = m.input("b", "f32", shape);
  m.output("loss", m.call(op, [a, b], {}, op), "loss");
  return m;
}

describe("WebGPU mse and bce_with_logits", () => {
  for (const cls of VARIANTS) {
    it(`${cls}: mse over [N, 3, 4] for two sizes, and over 10000 elements`, async () => {
      const m = pairModel("mse", ["N", 3, 4]);
      for (const N of [1, 6]) {
        await expectWgslMatchesReference(m.graph, { a: randomTensor([N, 3, 4], N, -2, 2), b: randomTensor([N, 3, 4], 50 + N, -2, 2) }, { adapterClass: cls });
      }
      await expectWgslMatchesReference(m.graph, { a: randomTensor([834, 3, 4], 1, -2, 2), b: randomTensor([834, 3, 4], 2, -2, 2) }, { adapterClass: cls });
    });

    it(`${cls}: bce_with_logits with logits at ±1e4 and small ones, for two sizes`, async () => {
      const m = pairModel("bce_with_logits", ["N", 5]);
      for (const N of [1, 40]) {
        const logits = spread([N, 5], 3 + N, 1e4);
        // a spread of magnitudes: ±1e4, moderate, and tiny (where log1p matters)
        for (let i = 2; i < logits.size; i++) logits.data[i] = logits.data[i]! * 10 ** -(i % 9);
        const targets = randomTensor([N, 5], 70 + N, 0, 1);
        await expectWgslMatchesReference(m.graph, { a: logits, b: targets }, { adapterClass: cls });
      }
    });
  }
});

import { describe, expect, it } from "vitest";
import { emitProgram } from "../../compiler/codegen/js/program.ts";
import { jsExecutor } from "../../compiler/codegen/js/execute.ts";
import type { Value } from "../../compiler/ir/graph.ts";
import { bindSymbols } from "../../compiler/reference/interpreter.ts";
import { RefTensor } from "../../compiler/reference/tensor.ts";
import { TestModel, randomTensor } from "../support/build.ts";
import { expectJsMatchesReference } from "../support/conformance.ts";

function kernelSource(m: TestModel, op: string): string {
  const src = emitProgram(m.graph).kernels.find((k) => k.split("\n")[0]!.includes(`= ${op}`));
  if (!src) throw new Error(`no ${op} kernel`);
  return src;
}

/** Deterministic labels in [0, classes); every `ignoreEvery`-th one set to `ignore`. */
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

describe("JS cross_entropy", () => {
  const cases: CeCase[] = [
    { name: "[N, C]", logits: ["N", 5] },
    { name: "[N, C] with mask", logits: ["N", 5], withMask: true },
    { name: "[N, C] with ignore_index=2", logits: ["N", 5], kw: { ignore_index: 2 } },
    { name: "[N, C, L]", logits: ["N", 4, 6] },
    { name: "[N, C, L] with mask and ignore_index", logits: ["N", 4, 6], withMask: true, kw: { ignore_index: -1 } },
    { name: "[N, C, H, W]", logits: ["N", 3, 2, 5], withMask: true },
    { name: "[N, L, C] with axis=-1", logits: ["N", 6, 7], axis: -1, withMask: true },
    { name: "[N, L, C] with axis=2 and a size-1 trailing axis", logits: ["N", 6, 7, 1], axis: 2 },
    { name: "[C] (1-D, axis 0)", logits: [9] },
    { name: "[N, V] with a symbolic class count", logits: ["N", "V"], withMask: true },
  ];
  for (const c of cases) {
    for (const scale of [3, 1e4]) {
      it(`${c.name}, logits ±${scale}, for two batch sizes`, () => {
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
          const out = expectJsMatchesReference(m.graph, inputs);
          expect(Number.isFinite(out.loss!.data[0]!)).toBe(true);
        }
      });
    }
  }

  it("gives 0 when every position is masked or ignored", () => {
    const { m } = ceModel({ name: "", logits: ["N", 3], withMask: true });
    const out = expectJsMatchesReference(m.graph, {
      logits: logits([2, 3], 1),
      labels: RefTensor.from([-100, 1], [2], "i32"),
      mask: RefTensor.from([1, 0], [2], "bool"),
    });
    expect(out.loss!.data[0]).toBe(0);
  });

  it("ignores any label at a masked-out or ignored position, even out of range", () => {
    const { m } = ceModel({ name: "", logits: ["N", 3, 2], withMask: true });
    expectJsMatchesReference(m.graph, {
      logits: logits([2, 3, 2], 1),
      labels: RefTensor.from([99, 1, -100, 0], [2, 2], "i32"),
      mask: RefTensor.from([0, 1, 1, 1], [2, 2], "bool"),
    });
  });

  /** Runs both sides on inputs with a bad label; returns [reference message, JS message]. */
  function failureMessages(m: TestModel, inputs: Record<string, RefTensor>): [string, string] {
    const caught = (f: () => unknown) => {
      try {
        f();
      } catch (e) {
        return (e as Error).message;
      }
      throw new Error("expected a failure");
    };
    const symbols = Object.fromEntries(bindSymbols(m.graph, inputs));
    return [caught(() => m.run(inputs)), caught(() => jsExecutor(m.graph).run(inputs, {}, { symbols }))];
  }

  it("fails on an out-of-range label with the reference's message ([N, C, L])", () => {
    const { m } = ceModel({ name: "", logits: ["N", 5, 3] });
    const lab = labels([2, 3], 5, 1);
    lab.data[4] = 7; // labels[1, 1]
    lab.data[5] = -3; // a later bad label: the first one is reported
    const [ref, js] = failureMessages(m, { logits: logits([2, 5, 3], 1), labels: lab });
    expect(js).toBe("label 7 at labels[1, 1] is outside the classes [0, 5) (ignore_index is -100)");
    expect(ref.endsWith(js)).toBe(true);
  });

  it("fails on a negative label that is not ignore_index ([N, V], symbolic classes)", () => {
    const { m } = ceModel({ name: "", logits: ["N", "V"], kw: { ignore_index: -1 } });
    const [ref, js] = failureMessages(m, { logits: logits([3, 4], 2), labels: RefTensor.from([0, -1, -2], [3], "i32") });
    expect(js).toBe("label -2 at labels[2] is outside the classes [0, 4) (ignore_index is -1)");
    expect(ref.endsWith(js)).toBe(true);
  });

  it("fails on an out-of-range label with axis=-1 and 1-D logits", () => {
    const a = ceModel({ name: "", logits: [2, "L", 4], axis: -1 }).m;
    const lab = RefTensor.from([0, 1, 2, 3, 4, 0], [2, 3], "i32");
    const [ref, js] = failureMessages(a, { logits: logits([2, 3, 4], 3), labels: lab });
    expect(js).toBe("label 4 at labels[1, 1] is outside the classes [0, 4) (ignore_index is -100)");
    expect(ref.endsWith(js)).toBe(true);

    const b = ceModel({ name: "", logits: [4] }).m;
    const [ref1, js1] = failureMessages(b, { logits: logits([4], 3), labels: RefTensor.from([4], [], "i32") });
    expect(js1).toBe("label 4 at labels[] is outside the classes [0, 4) (ignore_index is -100)");
    expect(ref1.endsWith(js1)).toBe(true);
  });

  it("generated kernels (golden)", async () => {
    const lanes = ceModel({ name: "", logits: ["N", 10, "L"], withMask: true }).m;
    await expect(kernelSource(lanes, "cross_entropy")).toMatchFileSnapshot("__golden__/cross_entropy.js");
    const rows = ceModel({ name: "", logits: ["N", 10] }).m;
    await expect(kernelSource(rows, "cross_entropy")).toMatchFileSnapshot("__golden__/cross_entropy_rows.js");
  });
});

function pairModel(op: string, shape: (number | string)[]) {
  const m = new TestModel();
  const a = m.input("a", "f32", shape);
  const b = m.input("b", "f32", shape);
  m.output("loss", m.call(op, [a, b], {}, op), "loss");
  return m;
}

describe("JS mse", () => {
  it("[N, 3, 4] for two batch sizes", () => {
    const m = pairModel("mse", ["N", 3, 4]);
    for (const N of [1, 6]) expectJsMatchesReference(m.graph, { a: randomTensor([N, 3, 4], N, -5, 5), b: randomTensor([N, 3, 4], 50 + N, -5, 5) });
  });

  it("a static vector, by hand", () => {
    const out = expectJsMatchesReference(pairModel("mse", [3]).graph, { a: RefTensor.from([1, 2, 3]), b: RefTensor.from([1, 0, 6]) });
    expect(out.loss!.data[0]).toBeCloseTo((0 + 4 + 9) / 3, 6);
  });
});

describe("JS bce_with_logits", () => {
  for (const scale of [4, 1e4]) {
    it(`logits ±${scale}, for two batch sizes`, () => {
      const m = pairModel("bce_with_logits", ["N", 7]);
      for (const N of [1, 4]) {
        const out = expectJsMatchesReference(m.graph, { a: logits([N, 7], N, scale), b: randomTensor([N, 7], 60 + N, 0, 1) });
        expect(Number.isFinite(out.loss!.data[0]!)).toBe(true);
      }
    });
  }

  it("is finite and exact at ±1e4 with hard targets", () => {
    // x = 1e4, t = 0 costs 1e4; x = −1e4, t = 1 costs 1e4; the matching targets cost ~0.
    const out = expectJsMatchesReference(pairModel("bce_with_logits", [4]).graph, { a: RefTensor.from([1e4, -1e4, 1e4, -1e4]), b: RefTensor.from([0, 1, 1, 0]) });
    expect(out.loss!.data[0]).toBeCloseTo(5000, 3);
  });
});

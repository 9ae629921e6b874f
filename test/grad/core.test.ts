// The reverse-mode pass itself: accumulation over several users, broadcasting,
// symbolic dims, zeros for independent values, E309 for cut paths, and the
// generated gradient code on both targets for a small graph.

import { describe, expect, it } from "vitest";
import { differentiate } from "../../compiler/autodiff/reverse.ts";
import { CompileError } from "../../compiler/diagnostics.ts";
import { TestModel, randomTensor } from "../support/build.ts";
import { expectJsMatchesReference } from "../support/conformance.ts";
import { checkGradients } from "../support/gradcheck.ts";
import { expectWgslMatchesReference } from "../support/webgpu.ts";

describe("reverse mode", () => {
  it("sums contributions from several users and undoes broadcasting", async () => {
    const m = new TestModel();
    const x = m.input("x", "f32", ["N", 3]);
    const b = m.input("b", "f32", [3]);
    const xx = m.call("mul", [x, x], {}, "xx");
    const xb = m.call("mul", [x, b], {}, "xb");
    const s = m.call("sub", [xx, xb], {}, "s");
    m.output("y", m.call("add", [s, b], {}, "y"));
    const inputs = { x: randomTensor([4, 3], 1), b: randomTensor([3], 2) };
    const gg = checkGradients(m.graph, inputs);
    expectJsMatchesReference(gg.graph, gg.inputs);
    await expectWgslMatchesReference(gg.graph, gg.inputs);
  });

  it("gives zeros for a value the loss does not depend on", () => {
    const m = new TestModel();
    const x = m.input("x", "f32", [2]);
    const z = m.input("z", "f32", [2]);
    m.output("y", m.call("mul", [x, x], {}, "y"));
    void z;
    const gg = checkGradients(m.graph, { x: randomTensor([2], 3), z: randomTensor([2], 4) });
    expect(gg.names).toContain("grad:z");
  });

  it("rejects a gradient whose only path is through argmax (E309)", () => {
    const m = new TestModel();
    const x = m.input("x", "f32", [2, 3]);
    const i = m.call("argmax", [x], { axis: 1 }, "pred");
    const f = m.call("cast", [i], { dtype: "f32" }, "f");
    const y = m.call("sum", [f], {}, "y");
    try {
      differentiate(m.graph, y, [x]);
      expect.fail("expected E309");
    } catch (e) {
      expect(e).toBeInstanceOf(CompileError);
      const d = (e as CompileError).diagnostics[0]!;
      expect(d.code).toBe("E309");
      expect(d.message).toContain("argmax 'pred'");
    }
  });
});

import { it } from "vitest";
import { jsExecutor } from "../../compiler/codegen/js/execute.ts";
import { initialParams } from "../../compiler/reference/interpreter.ts";
import { TestModel, randomTensor } from "../support/build.ts";
import { gradGraph } from "../support/gradcheck.ts";
it("bench", () => {
  const m = new TestModel();
  const x = m.input("x", "f32", ["N", "L", 64]);
  m.output("y", m.call("rnn", [x], { hidden: 128, cell: "lstm" }, "lm"));
  const inputs = { x: randomTensor([32, 64, 64]) };
  const params = initialParams(m.graph, 0);
  const ef = jsExecutor(m.graph);
  for (let i = 0; i < 3; i++) {
    const t0 = performance.now();
    ef.run(inputs, params, { symbols: { N: 32, L: 64 } });
    console.log(`fwd ${i}: ${(performance.now() - t0).toFixed(0)} ms`);
  }
  const gg = gradGraph(m.graph, inputs);
  const ex = jsExecutor(gg.graph, ["grad:x"]);
  for (let i = 0; i < 3; i++) {
    const t0 = performance.now();
    ex.run(gg.inputs, params, { symbols: { N: 32, L: 64 } });
    console.log(`grad ${i}: ${(performance.now() - t0).toFixed(0)} ms`);
  }
});

import { it } from "vitest";
import { randomTensor, TestModel } from "../support/build.ts";
import { expectWgslMatchesReference } from "../support/webgpu.ts";
it("smoke", async () => {
  const m = new TestModel();
  const x = m.input("x", "f32", ["N", 3]);
  m.output("y", m.call("relu", [x]));
  await expectWgslMatchesReference(m.graph, { x: randomTensor([4, 3]) });
});

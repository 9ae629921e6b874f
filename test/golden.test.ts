// Golden files pin the generated code of every dsl-example: a change to a
// code generator shows up in review as a diff of these files. Regenerate
// them with `npm run golden:update` and read the diff before committing.

import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { compileSource } from "../compiler/compile.ts";
import { emitModule } from "../compiler/codegen/module.ts";

const examplesDir = join(import.meta.dirname, "..", "dsl-examples");
const examples = readdirSync(examplesDir).filter((f) => f.endsWith(".cnn")).sort();

describe("golden: generated JS, .d.ts and WGSL of every dsl-example", () => {
  for (const f of examples) {
    it(f, async () => {
      const r = compileSource(readFileSync(join(examplesDir, f), "utf8"), f);
      expect(r.diagnostics).toEqual([]);
      for (const g of r.graphs) {
        // The runtime is imported, not inlined, so the golden files show the model's own code.
        const m = emitModule(g, { runtime: "import", sourceFile: f });
        await expect(m.js).toMatchFileSnapshot(join("golden", "js", `${m.base}.js`));
        await expect(m.dts).toMatchFileSnapshot(join("golden", "js", `${m.base}.d.ts`));
        // The WebGPU module carries its WGSL kernels inline.
        const w = emitModule(g, { target: "webgpu", runtime: "import", sourceFile: f });
        await expect(w.js).toMatchFileSnapshot(join("golden", "webgpu", `${w.base}.js`));
      }
    });
  }

  it("is deterministic: emitting twice gives the same text", () => {
    const src = readFileSync(join(examplesDir, "lenet5.cnn"), "utf8");
    const a = emitModule(compileSource(src, "lenet5.cnn").graphs[0]!, { runtime: "inline" });
    const b = emitModule(compileSource(src, "lenet5.cnn").graphs[0]!, { runtime: "inline" });
    expect(a.js).toBe(b.js);
    expect(a.dts).toBe(b.dts);
  });
});

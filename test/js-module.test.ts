// The JS target end to end: every dsl-example compiled by the real CLI into a
// temporary folder, the emitted module imported and run, its outputs compared
// with the float64 reference; the .d.ts type-checked against a consumer;
// weights saved and restored bit-exactly; bad inputs rejected clearly.

import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import ts from "typescript";
import { beforeAll, describe, expect, it } from "vitest";
import { compileSource } from "../compiler/compile.ts";
import type { Graph } from "../compiler/ir/graph.ts";
import { initialParams, interpret } from "../compiler/reference/interpreter.ts";
import { RefTensor } from "../compiler/reference/tensor.ts";
import { expectAllClose } from "./support/conformance.ts";
import { compileExamplesWithCli, examples, examplesDir, feeds, inputsFor, loadFactory } from "./support/modules.ts";

const out = mkdtempSync(join(tmpdir(), "cnnc-js-"));
const load = (g: Graph) => loadFactory(g, out);

beforeAll(() => compileExamplesWithCli("js", out), 300_000);

describe("JS target: every dsl-example compiled by the CLI matches the reference", () => {
  for (const f of examples) {
    it(f, async () => {
      const src = readFileSync(join(examplesDir, f), "utf8");
      const r = compileSource(src, f);
      expect(r.diagnostics).toEqual([]);
      for (const g of r.graphs) {
        const create = await load(g);
        const m = await create({ seed: 0 });
        const inputs = inputsFor(g);
        const got = await m.run(feeds(inputs));
        const params = initialParams(g, 0);
        const want = interpret(g, inputs, params).outputs;
        expect(Object.keys(got).sort()).toEqual(Object.keys(want).sort());
        for (const [name, t] of Object.entries(want)) {
          const o = got[name]!;
          expectAllClose(new RefTensor(t.dtype, o.shape, Float64Array.from(o.data)), t, `${g.name}.${name}`);
        }
        m.dispose();
      }
    });
  }
});

describe("compiled module API (DSL.md §9)", () => {
  const lenet = () => compileSource(readFileSync(join(examplesDir, "lenet5.cnn"), "utf8"), "lenet5.cnn").graphs[0]!;

  it("serves every batch size with one module and returns the loss when labels are given", async () => {
    const g = lenet();
    const m = await (await load(g))({ seed: 1 });
    for (const n of [1, 5]) {
      const inputs = inputsFor(g, { N: n });
      const { probs } = await m.run({ x: feeds(inputs).x! });
      expect(probs!.shape).toEqual([n, 10]);
      const withLoss = await m.run(feeds(inputs));
      expect(withLoss.xent!.shape).toEqual([]);
      const want = interpret(g, inputs, initialParams(g, 1)).outputs.xent!;
      expectAllClose(RefTensor.from(withLoss.xent!.data, []), want, "xent");
    }
  });

  it("saveWeights → create({ weights }) round-trips bit-exactly and gives identical outputs", async () => {
    const g = lenet();
    const create = await load(g);
    const a = await create({ seed: 7 });
    const bytes = a.saveWeights();
    const b = await create({ weights: bytes });
    const pa = a.parameters();
    const pb = b.parameters();
    expect(Object.keys(pb)).toEqual(Object.keys(pa));
    for (const k of Object.keys(pa)) expect(Buffer.from(pb[k]!.data.buffer)).toEqual(Buffer.from(pa[k]!.data.buffer));
    expect(b.saveWeights()).toEqual(bytes);
    const x = feeds(inputsFor(g, { N: 3 })).x!;
    expect((await b.run({ x })).probs!.data).toEqual((await a.run({ x })).probs!.data);
    // The seed changes the initial weights.
    const c = await create({ seed: 8 });
    expect(c.parameters()["c1.weight"]!.data).not.toEqual(pa["c1.weight"]!.data);
  });

  it("rejects wrong inputs with messages naming the input, the symbol and both sizes", async () => {
    const g = lenet();
    const m = await (await load(g))({});
    const x = { data: new Float32Array(2 * 784), shape: [2, 1, 28, 28] };
    await expect(m.run({})).rejects.toThrow(/missing input 'x' \(f32\[N, 1, 28, 28\]\)/);
    await expect(m.run({ x: { data: new Float32Array(2 * 756), shape: [2, 1, 28, 27] } })).rejects.toThrow(/input 'x' dim 3 must be 28 .*found 27/);
    await expect(m.run({ x: { data: new Int32Array(2 * 784), shape: [2, 1, 28, 28] } })).rejects.toThrow(/input 'x' must be f32 \(Float32Array\), found Int32Array/);
    await expect(m.run({ x, labels: { data: new Int32Array(3), shape: [3] } })).rejects.toThrow(/symbol N is 2 \(bound by input 'x'\), but dim 0 of input 'labels' is 3/);
    await expect(m.run({ x: { data: new Float32Array(5), shape: [2, 1, 28, 28] } })).rejects.toThrow(/has 5 elements, but its shape \[2,1,28,28\] needs 1568/);
    m.dispose();
    await expect(m.run({ x })).rejects.toThrow(/disposed/);
  });

  it("rejects malformed or mismatched weights", async () => {
    const g = lenet();
    const create = await load(g);
    await expect(create({ weights: new Uint8Array([1, 2, 3]) })).rejects.toThrow(/3 bytes long, shorter than/);
    const a = await create({});
    const bytes = a.saveWeights();
    await expect(create({ weights: bytes.slice(0, bytes.length - 10) })).rejects.toThrow(/./);
  });
});

describe("typed .d.ts", () => {
  it("types inputs, outputs, params, symbols and trainStep: a correct consumer compiles, a wrong input name or a missing input does not", () => {
    const dir = join(out, "typecheck");
    mkdirSync(dir, { recursive: true });
    copyFileSync(join(out, "lenet5.js"), join(dir, "lenet5.js"));
    copyFileSync(join(out, "lenet5.d.ts"), join(dir, "lenet5.d.ts"));
    const good = join(dir, "good.ts");
    writeFileSync(
      good,
      `import { createLeNet5, type LeNet5Symbols } from "./lenet5.js";
const m = await createLeNet5({ seed: 1 });
const { probs } = await m.run({ x: { data: new Float32Array(784), shape: [1, 1, 28, 28] } });
const rows: number = probs.shape[0];
const cols: 10 = probs.shape[1];
const w: readonly [6, 1, 5, 5] = m.parameters()["c1.weight"].shape;
const s: LeNet5Symbols = { N: 3 };
const { xent } = await m.trainStep({ x: { data: new Float32Array(784), shape: [1, 1, 28, 28] }, labels: { data: new Int32Array(1), shape: [1] } }, { lr: 0.01 });
const loss: number = +xent;
export { rows, cols, w, s, loss };
`,
    );
    const bad = join(dir, "bad.ts");
    writeFileSync(
      bad,
      `import { createLeNet5 } from "./lenet5.js";
const m = await createLeNet5();
await m.run({ xx: { data: new Float32Array(784), shape: [1, 1, 28, 28] } });
await m.run({});
await m.run({ x: { data: new Int32Array(784), shape: [1, 1, 28, 28] } });
await m.run({ x: { data: new Float32Array(784), shape: [1, 3, 28, 28] } });
m.parameters()["c9.weight"];
await m.trainStep({ x: { data: new Float32Array(784), shape: [1, 1, 28, 28] } });
`,
    );
    const options: ts.CompilerOptions = { strict: true, noEmit: true, target: ts.ScriptTarget.ES2022, module: ts.ModuleKind.NodeNext, moduleResolution: ts.ModuleResolutionKind.NodeNext, skipLibCheck: false, types: [] };
    const diagnosticsOf = (file: string) => {
      const program = ts.createProgram([file], options);
      return ts.getPreEmitDiagnostics(program).filter((d) => d.file?.fileName === file || !d.file).map((d) => {
        const line = d.file ? d.file.getLineAndCharacterOfPosition(d.start!).line + 1 : 0;
        return { line, text: ts.flattenDiagnosticMessageText(d.messageText, "\n") };
      });
    };
    writeFileSync(join(dir, "package.json"), JSON.stringify({ type: "module" }));
    expect(diagnosticsOf(good).map((d) => `${d.line}: ${d.text}`)).toEqual([]);
    const errs = diagnosticsOf(bad);
    expect(errs.map((e) => e.line).sort()).toEqual([3, 4, 5, 6, 7, 8]);
    expect(errs.find((e) => e.line === 8)!.text).toMatch(/Property '"?labels"?' is missing/);
    expect(errs.find((e) => e.line === 3)!.text).toMatch(/'xx' does not exist/);
    expect(errs.find((e) => e.line === 4)!.text).toMatch(/Property '"?x"?' is missing/);
  });
});

// No input crashes the front end: random and mutated programs go through the
// whole pipeline (parse, lower, shape-check, verify) and every run ends in
// graphs or diagnostics, never an exception. Mutations start from the real
// dsl-examples so they reach deep into lowering and the shape rules.

import fc from "fast-check";
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { compileSource } from "../compiler/compile.ts";

const examplesDir = join(import.meta.dirname, "..", "dsl-examples");
const seeds = readdirSync(examplesDir)
  .filter((f) => f.endsWith(".cnn"))
  .sort()
  .map((f) => readFileSync(join(examplesDir, f), "utf8"));

const vocabulary = [
  "model", "def", "input", "param", "output", "loss", "optimizer", "return", "true", "false", "none",
  "{", "}", "(", ")", "[", "]", ",", "=", ":", ".", "|>", "+", "-", "*", "/", "@", "\n", " ",
  "x", "y", "N", "L", "f32", "i32", "bool", "0", "1", "2", "-1", "3", "28", "0.5", "1e-3", '"ij,jk->ik"', '"same"',
  "conv2d", "conv1d", "dense", "relu", "maxpool2d", "softmax", "einsum", "rnn", "embed", "reshape", "concat",
  "filters=", "kernel=", "padding=", "stride=", "axis=", "weight=", "groups=", "cell=", "hidden=", "window=",
];

function mustNotThrow(src: string): void {
  let result;
  try {
    result = compileSource(src, "fuzz.cnn");
  } catch (e) {
    throw new Error(`front end threw on:\n-----\n${src}\n-----\n${(e as Error).stack}`);
  }
  // Either a clean compile or at least one located diagnostic.
  if (result.diagnostics.length === 0) expect(result.graphs.length).toBeGreaterThan(0);
  for (const d of result.diagnostics) expect(d.code).toMatch(/^E\d{3}$/);
}

/** Edit a program: delete, duplicate, replace or insert a token-sized piece. */
const mutation = fc.record({
  seed: fc.nat({ max: Math.max(0, seeds.length - 1) }),
  edits: fc.array(
    fc.record({ kind: fc.constantFrom("delete", "dup", "replace", "insert", "swapline"), at: fc.double({ min: 0, max: 1, noNaN: true }), len: fc.integer({ min: 1, max: 12 }), word: fc.constantFrom(...vocabulary) }),
    { minLength: 1, maxLength: 4 },
  ),
});

function applyEdits(src: string, edits: { kind: string; at: number; len: number; word: string }[]): string {
  let s = src;
  for (const e of edits) {
    const i = Math.floor(e.at * s.length);
    switch (e.kind) {
      case "delete":
        s = s.slice(0, i) + s.slice(i + e.len);
        break;
      case "dup":
        s = s.slice(0, i) + s.slice(i, i + e.len) + s.slice(i);
        break;
      case "replace":
        s = s.slice(0, i) + e.word + s.slice(i + e.len);
        break;
      case "insert":
        s = s.slice(0, i) + e.word + s.slice(i);
        break;
      case "swapline": {
        const lines = s.split("\n");
        const a = Math.floor(e.at * lines.length);
        const b = (a + e.len) % lines.length;
        [lines[a], lines[b]] = [lines[b]!, lines[a]!];
        s = lines.join("\n");
      }
    }
  }
  return s;
}

describe("front end never crashes", () => {
  it("has example programs to mutate", () => {
    expect(seeds.length).toBeGreaterThanOrEqual(10);
  });

  it("survives mutated example programs", () => {
    fc.assert(fc.property(mutation, ({ seed, edits }) => mustNotThrow(applyEdits(seeds[seed]!, edits))), { numRuns: 400, seed: 20261128 });
  });

  it("survives token soups and random text", () => {
    const soup = fc.array(fc.constantFrom(...vocabulary), { maxLength: 80 }).map((ws) => `model M {\n${ws.join(" ")}\n}`);
    fc.assert(fc.property(soup, mustNotThrow), { numRuns: 300, seed: 7 });
    fc.assert(fc.property(fc.string({ maxLength: 200 }), mustNotThrow), { numRuns: 200, seed: 11 });
  });

  it("survives pathological nesting and size", () => {
    mustNotThrow(`model M {\n  input x: f32[N]\n  y = ${"(".repeat(5000)}x${")".repeat(5000)}\n}`);
    mustNotThrow(`model M {\n  input x: f32[N]\n  y = ${"relu(".repeat(3000)}x${")".repeat(3000)}\n}`);
    mustNotThrow(`model M {\n  input x: f32[N]\n${Array.from({ length: 3000 }, (_, i) => `  y${i + 1} = ${i ? `y${i}` : "x"} + 1`).join("\n")}\n  output o = y3000\n}`);
  });
});

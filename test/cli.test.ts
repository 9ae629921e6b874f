// End-to-end runs of the real `cnnc` command (bin/cnnc.js): exit codes,
// stdout/stderr, and files written by `run` (DSL.md §8).

import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { decodeSafetensors, encodeSafetensors } from "../runtime/safetensors.ts";

const root = join(import.meta.dirname, "..");
const dir = mkdtempSync(join(tmpdir(), "cnnc-cli-"));

function cnnc(...args: string[]) {
  const r = spawnSync(process.execPath, [join(root, "bin/cnnc.js"), ...args], { encoding: "utf8", cwd: dir, timeout: 60_000 });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

const lenet = join(root, "dsl-examples/lenet5.cnn");

function write(name: string, text: string): string {
  const p = join(dir, name);
  writeFileSync(p, text);
  return p;
}

describe("cnnc CLI", () => {
  it("check: exits 0 on a valid model and 1 with a located diagnostic on a broken one", () => {
    const ok = cnnc("check", lenet);
    expect(ok.code, ok.stderr).toBe(0);
    const bad = write("bad.cnn", "model M {\n  input x: f32[N, 1, 4, 4]\n  c3 = conv2d(x, filters=16, kernel=5)\n  output y = c3\n}\n");
    const r = cnnc("check", bad);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain("bad.cnn:3:8: error[E201]: conv2d 'c3': kernel 5 is larger than the padded input 4");
    expect(r.stderr).toContain("       ^^^^^^");
    expect(r.stdout).toBe("");
  });

  it("bad usage exits 2: unknown option, missing file, unknown model", () => {
    expect(cnnc("check", join(dir, "nope.cnn")).code).toBe(2);
    expect(cnnc("ir", lenet, "--frobnicate").code).toBe(2);
    expect(cnnc("ir", lenet, "--model", "Nope").code).toBe(2);
    expect(cnnc("run", lenet, "--target=reference").code).toBe(2);
  });

  it("--help lists the commands and exits 0", () => {
    const r = cnnc("--help");
    expect(r.code).toBe(0);
    for (const word of ["check", "ir", "run", "--target", "webgpu", "Exit codes"]) expect(r.stdout).toContain(word);
  });

  it("ir --stats --json prints one JSON object with params, kernels, flops and memory", () => {
    const r = cnnc("ir", lenet, "--stats", "--json");
    expect(r.code, r.stderr).toBe(0);
    const s = JSON.parse(r.stdout);
    expect(s.params).toBe(61706);
    for (const k of ["kernels", "flops", "peakBytes", "naivePeakBytes"]) expect(typeof s[k]).toBe("number");
    expect(s.peakBytes).toBeLessThanOrEqual(s.naivePeakBytes);
  });

  it("ir prints shapes and the parameter table", () => {
    const r = cnnc("ir", lenet);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain("f32[N, 6, 28, 28]");
    expect(r.stdout).toMatch(/total\s+61,706/);
  });

  it("run --target=reference reads inputs by name and writes every output and loss", () => {
    const n = 2;
    const x = new Float32Array(n * 784).map((_, i) => Math.sin(i));
    const inputs = write("in.safetensors", "");
    writeFileSync(inputs, encodeSafetensors({ x: { dtype: "F32", shape: [n, 1, 28, 28], data: x }, labels: { dtype: "I32", shape: [n], data: Int32Array.from([3, 4]) } }));
    const out = join(dir, "out.safetensors");
    const r = cnnc("run", lenet, "--target=reference", "--inputs", inputs, "--out", out);
    expect(r.code, r.stderr).toBe(0);
    const t = decodeSafetensors(new Uint8Array(readFileSync(out)));
    expect(Object.keys(t).sort()).toEqual(["probs", "xent"]);
    expect(t.probs!.shape).toEqual([n, 10]);
    expect(t.xent!.shape).toEqual([]);
    const sum = Array.from(t.probs!.data as Float32Array).slice(0, 10).reduce((a, b) => a + b, 0);
    expect(Math.abs(sum - 1)).toBeLessThan(1e-5);
    // Same seed, same numbers; another seed, other numbers.
    const out2 = join(dir, "out2.safetensors");
    expect(cnnc("run", lenet, "--target=reference", "--inputs", inputs, "--out", out2, "--seed", "0").code).toBe(0);
    expect(readFileSync(out2)).toEqual(readFileSync(out));
    const out3 = join(dir, "out3.safetensors");
    expect(cnnc("run", lenet, "--target=reference", "--inputs", inputs, "--out", out3, "--seed", "5").code).toBe(0);
    expect(readFileSync(out3)).not.toEqual(readFileSync(out));
  });

  it("compiles to an ES module and .d.ts; run --target=js gives the reference's numbers", () => {
    const outDir = join(dir, "mod");
    const c = cnnc(lenet, "--target=js", "-o", outDir);
    expect(c.code, c.stderr).toBe(0);
    expect(readFileSync(join(outDir, "lenet5.js"), "utf8")).toContain("export async function createLeNet5(");
    expect(readFileSync(join(outDir, "lenet5.d.ts"), "utf8")).toContain("export interface LeNet5Inputs");
    const imp = cnnc(lenet, "--target=js", "--runtime=import", "-o", join(dir, "mod-import"));
    expect(imp.code, imp.stderr).toBe(0);
    expect(readFileSync(join(dir, "mod-import", "lenet5.js"), "utf8")).toMatch(/^import \{ createModel \} from "\.\/cnnc-runtime\.js";$/m);
    expect(existsSync(join(dir, "mod-import", "cnnc-runtime.js"))).toBe(true);

    const inputs = join(dir, "in-js.safetensors");
    writeFileSync(inputs, encodeSafetensors({ x: { dtype: "F32", shape: [3, 1, 28, 28], data: new Float32Array(3 * 784).map((_, i) => Math.cos(i)) }, labels: { dtype: "I32", shape: [3], data: Int32Array.from([1, 2, 3]) } }));
    const ref = join(dir, "ref.safetensors");
    const js = join(dir, "js.safetensors");
    expect(cnnc("run", lenet, "--target=reference", "--inputs", inputs, "--out", ref).code).toBe(0);
    const r = cnnc("run", lenet, "--target=js", "--inputs", inputs, "--out", js);
    expect(r.code, r.stderr).toBe(0);
    const a = decodeSafetensors(new Uint8Array(readFileSync(js)));
    const b = decodeSafetensors(new Uint8Array(readFileSync(ref)));
    expect(Object.keys(a).sort()).toEqual(["probs", "xent"]);
    for (const k of ["probs", "xent"]) {
      const x = Array.from(a[k]!.data as Float32Array);
      const y = Array.from(b[k]!.data as Float32Array);
      x.forEach((v, i) => expect(Math.abs(v - y[i]!)).toBeLessThan(1e-5 + 1e-4 * Math.abs(y[i]!)));
    }
  });

  it("run exits 3 on a wrong input shape, naming input, symbol and sizes, and writes no file", () => {
    const bad = write("bad-in.safetensors", "");
    writeFileSync(bad, encodeSafetensors({ x: { dtype: "F32", shape: [2, 1, 28, 27], data: new Float32Array(2 * 28 * 27) } }));
    const out = join(dir, "never.safetensors");
    const r = cnnc("run", lenet, "--target=reference", "--inputs", bad, "--out", out);
    expect(r.code).toBe(3);
    expect(r.stderr).toMatch(/input 'x': dim 3 must be 28.*found 27/);
    expect(existsSync(out)).toBe(false);
    const garbage = write("garbage.safetensors", "not a safetensors file at all");
    const g = cnnc("run", lenet, "--target=reference", "--inputs", garbage, "--out", out);
    expect(g.code).toBe(3);
    expect(existsSync(out)).toBe(false);
  });
});

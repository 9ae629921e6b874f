// Convolution algorithm choice (compiler/passes/conv-algorithm.ts) and the JS
// kernels it chooses between (compiler/codegen/js/conv.ts direct,
// conv-gemm.ts implicit GEMM, conv-fft.ts FFT):
//  * every algorithm against the float64 reference (1e-4 rel / 1e-5 abs) over
//    1-D/2-D/3-D, stride, dilation, asymmetric and circular padding, groups,
//    bias or none, flipped kernels, odd and even lengths and channel counts,
//    batch sizes 1 and 3; the generated kernel is checked to be the one asked
//    for (a dispatch that fell back to direct would pass the numbers);
//  * the same with an epilogue (fused_epilogue: bias, relu, residual add) and
//    inside a training step (the forward conv of the training graph);
//  * the pass's choices on known shapes (a broken cost model fails), that it
//    sets the attr on every forward conv of forward and training graphs and
//    `--passes=none` leaves it unset, and that the verifier rejects unknown values;
//  * WebGPU: every value runs (the direct kernels: a documented fallback), the
//    WGSL identical for all three, both kernel variants against the reference;
//  * `--stats` (text and JSON) and an end-to-end `cnnc ir --stats` run.

import { spawnSync } from "node:child_process";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { buildTrainingGraph, LR_INPUT, STEP_INPUT } from "../../compiler/autodiff/training.ts";
import { jsExecutor } from "../../compiler/codegen/js/execute.ts";
import { emitWgslProgram } from "../../compiler/codegen/wgsl/program.ts";
import { compileSource } from "../../compiler/compile.ts";
import type { Attrs, Graph, Node } from "../../compiler/ir/graph.ts";
import { printGraph } from "../../compiler/ir/printer.ts";
import { verifyGraph } from "../../compiler/ir/verifier.ts";
import type { ConvAlgorithm } from "../../compiler/ops/conv.ts";
import { chooseAlgorithm, convAlgorithmPass, convGeometry, estimateCosts } from "../../compiler/passes/conv-algorithm.ts";
import { POOL_EPILOGUE } from "../../compiler/passes/fuse-epilogue.ts";
import { optimize, PASSES } from "../../compiler/passes/pipeline.ts";
import { formatStats, graphStats, trainStats } from "../../compiler/passes/stats.ts";
import { initialParams, interpret } from "../../compiler/reference/interpreter.ts";
import { RefTensor } from "../../compiler/reference/tensor.ts";
import { randomTensor } from "../support/build.ts";
import { expectAllClose, expectJsMatchesReference } from "../support/conformance.ts";
import { expectWgslMatchesReference } from "../support/webgpu.ts";

const ALGORITHMS: ConvAlgorithm[] = ["direct", "implicit_gemm", "fft"];
/** The first comment line of each kernel (what conv.ts, conv-gemm.ts and conv-fft.ts emit). */
const KERNEL_MARK: Record<ConvAlgorithm, RegExp> = { direct: /\/\/ conv\dd: x/, implicit_gemm: /\/\/ conv\dd as implicit GEMM/, fft: /\/\/ conv\dd by FFT/ };

function compile(source: string): Graph {
  const r = compileSource(source, "t.cnn");
  if (r.diagnostics.length) throw new Error(r.diagnostics.map((d) => d.message).join("\n"));
  return r.graphs[0]!;
}

/** A copy of `g` whose forward convs (plain or fused) use `alg`. */
function withAlgorithm(g: Graph, alg: ConvAlgorithm): Graph {
  const c = g.clone();
  for (const n of c.nodes) {
    const node = n as { attrs: Attrs };
    if (n.op === "conv") node.attrs = { ...n.attrs, algorithm: alg };
    if (n.op === "fused_epilogue" && n.attrs.base === "conv") node.attrs = { ...n.attrs, baseAttrs: { ...(n.attrs.baseAttrs as Attrs), algorithm: alg } };
  }
  return c;
}

interface Case {
  name: string;
  x: number[]; // [C, spatial...], N is symbolic
  args: string;
}

const CASES: Case[] = [
  { name: "1-d, odd length, bias", x: [3, 37], args: "filters=5, kernel=6" },
  { name: "1-d, even length, no bias", x: [4, 64], args: "filters=4, kernel=9, bias=false" },
  { name: "1-d, stride 2, dilation 3, asymmetric padding", x: [4, 40], args: "filters=4, kernel=7, stride=2, dilation=3, padding=[[3, 1]]" },
  { name: "1-d, groups 3, odd channels per group", x: [9, 33], args: "filters=6, kernel=5, groups=3, padding=2" },
  { name: "1-d, depthwise, flipped kernel, stride 3", x: [4, 29], args: "filters=4, kernel=4, groups=4, flip=true, stride=3" },
  { name: "1-d, circular padding", x: [3, 21], args: "filters=3, kernel=5, padding=2, padding_mode=\"circular\"" },
  { name: "1-d, padding 'same', long kernel", x: [2, 130], args: "filters=3, kernel=40, padding=\"same\"" },
  { name: "1-d, kernel as long as the signal, padded", x: [3, 16], args: "filters=2, kernel=16, padding=[[1, 2]]" },
  { name: "2-d, stride, dilation, asymmetric padding", x: [3, 9, 11], args: "filters=4, kernel=[3, 2], stride=[2, 1], dilation=[1, 2], padding=[[1, 0], [2, 1]]" },
  { name: "2-d, groups, flipped, odd filters", x: [4, 8, 7], args: "filters=6, kernel=3, groups=2, padding=1, flip=true" },
  { name: "2-d, 1x1, many channels", x: [12, 5, 6], args: "filters=10, kernel=1" },
  { name: "2-d, circular padding", x: [3, 6, 7], args: "filters=5, kernel=3, padding=2, padding_mode=\"circular\"" },
  { name: "3-d", x: [2, 5, 6, 7], args: "filters=3, kernel=[2, 3, 2], padding=1, stride=[1, 2, 1]" },
];

function caseSource(c: Case): string {
  const d = c.x.length - 1;
  return `model M {\n  input x: f32[N, ${c.x.join(", ")}]\n  output y = conv${d}d(x, ${c.args})\n}\n`;
}

describe("JS conv kernels: every algorithm matches the reference", () => {
  for (const c of CASES) {
    for (const alg of ALGORITHMS) {
      it(`${c.name}: ${alg}`, () => {
        const g = withAlgorithm(compile(caseSource(c)), alg);
        expect(jsExecutor(g).source).toMatch(KERNEL_MARK[alg]);
        for (const n of [1, 3]) expectJsMatchesReference(g, { x: randomTensor([n, ...c.x], 11 + n) }, { seed: n });
      });
    }
  }
});

describe("JS FFT kernel: overlap-save blocks", () => {
  it("the cases above cover both one whole-signal grid and several blocks along the last dim", () => {
    const blocked = CASES.map((c) => /overlap-save: \d+ blocks/.test(jsExecutor(withAlgorithm(compile(caseSource(c)), "fft")).source));
    expect(blocked).toContain(true);
    expect(blocked).toContain(false);
  });

  it("a long signal is cut into blocks whose grid is far smaller than the signal", () => {
    const g = compile(`model M {\n  input x: f32[N, 2, 2000]\n  output y = conv1d(x, filters=3, kernel=33, dilation=2, stride=3, padding=[[5, 2]])\n}\n`);
    const src = jsExecutor(withAlgorithm(g, "fft")).source;
    const grid = Number(/grid (\d+) \(padded input 2007\)/.exec(src)![1]);
    expect(grid).toBeLessThan(1024);
    expect(src).toMatch(/overlap-save: \d+ blocks/);
    expectJsMatchesReference(withAlgorithm(g, "fft"), { x: randomTensor([2, 2, 2000], 21) });
  });
});

describe("JS conv kernels with an epilogue and in a training step", () => {
  const residual = `model R {
  input x: f32[N, 4, 50]
  h = conv1d(x, filters=4, kernel=7, padding=3)
  output y = relu(h) + x
}
`;
  for (const alg of ALGORITHMS) {
    it(`conv + bias + relu + residual add fused into one kernel: ${alg}`, () => {
      const g = compile(residual);
      // The pipeline without the choice, so the forced algorithm reaches the fused node.
      const passes = PASSES.filter((p) => p !== convAlgorithmPass);
      const opt = withAlgorithm(g.clone(), alg);
      for (const p of passes) p.run(opt);
      expect(verifyGraph(opt)).toEqual([]);
      expect(opt.nodes.some((n) => n.op === "fused_epilogue")).toBe(true);
      expect(jsExecutor(opt).source).toMatch(KERNEL_MARK[alg]);
      const x = randomTensor([2, 4, 50], 5);
      const params = initialParams(g, 0);
      for (const k of Object.keys(params)) params[k] = params[k]!.map((v) => Math.fround(v));
      const want = interpret(g, { x }, params).outputs;
      const got = jsExecutor(opt).run({ x }, params, { symbols: { N: 2 } });
      expectAllClose(got.y!, want.y!, `${alg} fused`);
    });

    it(`conv + relu + max pool fused into one kernel (pooling epilogue): ${alg}`, () => {
      const g = compile(`model P {\n  input x: f32[N, 3, 12, 10]\n  output y = maxpool2d(relu(conv2d(x, filters=4, kernel=3, padding=1)), 2)\n}\n`);
      const opt = withAlgorithm(g.clone(), alg);
      for (const p of PASSES.filter((q) => q !== convAlgorithmPass)) p.run(opt);
      expect(verifyGraph(opt)).toEqual([]);
      const fused = opt.nodes.filter((n) => n.op === "fused_epilogue");
      expect(fused.length).toBe(1);
      expect((fused[0]!.attrs.baseAttrs as Attrs).algorithm).toBe(alg);
      // the pool is absorbed whenever both generators can emit it (fuse-epilogue.ts)
      expect(fused[0]!.attrs.pool !== undefined).toBe(POOL_EPILOGUE);
      expect(jsExecutor(opt).source).toMatch(KERNEL_MARK[alg]);
      const x = randomTensor([2, 3, 12, 10], 6);
      const params = initialParams(g, 0);
      for (const k of Object.keys(params)) params[k] = params[k]!.map((v) => Math.fround(v));
      expectAllClose(jsExecutor(opt).run({ x }, params, { symbols: { N: 2 } }).y!, interpret(g, { x }, params).outputs.y!, `${alg} pooled`);
    });

    it(`training step (forward conv ${alg}): loss, gradients and updates`, () => {
      const g = compile(`model T {
  input x: f32[N, 3, 41]
  input t: f32[N, 5, 19]
  y = conv1d(x, filters=5, kernel=6, stride=2, padding=[[1, 0]])
  loss l = mse(y, t)
  optimizer sgd(lr=0.1)
}
`);
      const t = buildTrainingGraph(g)!.graph;
      for (const u of t.bufferUpdates) t.outputs.push({ name: `update ${u.name}`, value: u.value, kind: "output" });
      const forced = withAlgorithm(t, alg);
      expect(forced.nodes.filter((n) => n.op === "conv").length).toBe(1);
      expectJsMatchesReference(forced, { x: randomTensor([2, 3, 41], 3), t: randomTensor([2, 5, 19], 4), [LR_INPUT]: RefTensor.scalar(0.1), [STEP_INPUT]: RefTensor.scalar(1) }, { training: true });
    });
  }
});

describe("WebGPU: every algorithm value runs, on the direct kernels", () => {
  const byName = (prefix: string) => CASES.find((c) => c.name.startsWith(prefix))!;
  const small: Case[] = [byName("1-d, stride 2"), byName("2-d, groups")];
  for (const c of small) {
    it(`${c.name}: the same WGSL for every value, matching the reference`, async () => {
      const g = compile(caseSource(c));
      const wgsl = (alg: ConvAlgorithm) => {
        const h = withAlgorithm(g, alg);
        return JSON.stringify(emitWgslProgram(h, h.outputs.map((o) => o.value)).passes.map((p) => p.code));
      };
      expect(wgsl("implicit_gemm")).toBe(wgsl("direct"));
      expect(wgsl("fft")).toBe(wgsl("direct"));
      // lavapipe is slow: both variants for the 2-d case only
      for (const adapterClass of c === small[1] ? (["cpu", "gpu"] as const) : (["cpu"] as const)) {
        await expectWgslMatchesReference(withAlgorithm(g, "fft"), { x: randomTensor([2, ...c.x], 9) }, { adapterClass });
      }
    });
  }
});

/** The algorithm the pass picks for conv{d}d over input [N, ...x]. */
function chosen(x: string, args: string): ConvAlgorithm {
  const d = x.split(",").length - 2;
  const g = compile(`model M {\n  input x: f32[${x}]\n  output y = conv${d}d(x, ${args})\n}\n`);
  convAlgorithmPass.run(g);
  const conv = g.nodes.find((n) => n.op === "conv")!;
  return conv.attrs.algorithm as ConvAlgorithm;
}

describe("the conv-algorithm pass", () => {
  it("chooses by shape: FFT for long kernels on long signals, GEMM for 1x1 with many channels, direct otherwise", () => {
    // FFT: 1-D, signal 4096+, kernel 32+ (measured 3.6-12x faster than direct, bench/conv-calibrate.ts)
    expect(chosen("N, 16, 4096", "filters=16, kernel=64")).toBe("fft");
    expect(chosen("N, 16, 4096", "filters=16, kernel=32")).toBe("fft");
    expect(chosen("N, 8, 128, 128", "filters=8, kernel=15")).toBe("fft");
    expect(chosen("N, 8, 16384", "filters=8, kernel=128")).toBe("fft");
    expect(chosen("N, 4, 8192", "filters=4, kernel=256, padding=\"same\"")).toBe("fft");
    expect(chosen("8, 16, 4096", "filters=16, kernel=64")).toBe("fft");
    // implicit GEMM: 1x1 convolutions over many channels on small planes
    expect(chosen("N, 256, 14, 14", "filters=256, kernel=1")).toBe("implicit_gemm");
    expect(chosen("N, 512, 7, 7", "filters=512, kernel=1")).toBe("implicit_gemm");
    // direct: 3x3 and 5x5 image convolutions, short 1-D kernels, small kernels on long signals
    expect(chosen("N, 64, 56, 56", "filters=64, kernel=3, padding=1")).toBe("direct");
    expect(chosen("N, 256, 14, 14", "filters=256, kernel=3, padding=1")).toBe("direct");
    expect(chosen("N, 64, 56, 56", "filters=128, kernel=3, padding=1, stride=2")).toBe("direct");
    expect(chosen("N, 32, 28, 28", "filters=32, kernel=5, padding=2")).toBe("direct");
    expect(chosen("N, 1, 28, 28", "filters=6, kernel=5, padding=2")).toBe("direct");
    expect(chosen("N, 16, 4096", "filters=16, kernel=16")).toBe("direct");
    expect(chosen("N, 64, 4096", "filters=64, kernel=3, padding=1")).toBe("direct");
    // symbolic spatial sizes: direct whatever the kernel
    expect(chosen("N, 16, L", "filters=16, kernel=128")).toBe("direct");
  });

  it("estimates reflect the measured ordering on the calibration shapes", () => {
    const costs = (x: string, args: string) => {
      const g = compile(`model M {\n  input x: f32[${x}]\n  output y = conv${x.split(",").length - 2}d(x, ${args})\n}\n`);
      return estimateCosts(convGeometry(g.nodes.find((n) => n.op === "conv")!)!);
    };
    const long = costs("1, 4, 8192", "filters=4, kernel=256");
    expect(long.fft! * 4).toBeLessThan(long.direct!); // measured 3.55 vs 41.4 ms
    const img = costs("1, 64, 56, 56", "filters=64, kernel=3, padding=1");
    expect(img.direct!).toBeLessThan(img.implicit_gemm!); // measured 221 vs 274 ms
    expect(img.direct! * 3).toBeLessThan(img.fft!); // measured 221 vs 842 ms
    // A batch spreads the FFT's weight transforms: cheaper per image.
    expect(costs("8, 16, 4096", "filters=16, kernel=64").fft!).toBeLessThan(costs("1, 16, 4096", "filters=16, kernel=64").fft!);
    expect(chooseAlgorithm(undefined)).toBe("direct");
  });

  it("sets the attr on every forward conv of forward and training graphs; --passes=none leaves it unset", () => {
    const g = compile(`model T {
  input x: f32[N, 8, 4096]
  input t: f32[N, 8, 4032]
  h = conv1d(x, filters=8, kernel=64)
  y = conv1d(h, filters=8, kernel=64, padding=31)
  loss l = mse(relu(y), t)
  optimizer sgd(lr=0.1)
}
`);
    const convsOf = (gr: Graph): Attrs[] =>
      gr.nodes.flatMap((n: Node) => (n.op === "conv" ? [n.attrs] : n.op === "fused_epilogue" && n.attrs.base === "conv" ? [n.attrs.baseAttrs as Attrs] : []));
    expect(convsOf(optimize(g, "none")).map((a) => a.algorithm)).toEqual([undefined, undefined]);
    expect(convsOf(g).map((a) => a.algorithm)).toEqual([undefined, undefined]); // optimize works on a copy
    expect(convsOf(optimize(g, "all")).map((a) => a.algorithm)).toEqual(["fft", "fft"]);
    const t = buildTrainingGraph(g)!.graph;
    const ot = optimize(t, "all");
    expect(convsOf(ot).map((a) => a.algorithm)).toEqual(["fft", "fft"]);
    // the backward ops are not convs: no attr
    for (const n of ot.nodes) if (n.op === "conv_grad_input" || n.op === "conv_grad_weight") expect(n.attrs.algorithm).toBeUndefined();
    // --stats of the training step
    const ts = trainStats(g, {}, "all");
    expect(ts.trainConvAlgorithms!.map((r) => `${r.label}:${r.js}/${r.webgpu}`)).toEqual(["h:fft/direct", "y:fft/direct"]);
    expect(formatStats(optimize(g, "all"), { ...graphStats(optimize(g, "all")), ...ts })).toContain("conv algorithms per train step  js: 2 fft; webgpu: 2 direct");
    expect(trainStats(g, {}, "none").trainConvAlgorithms!.map((r) => r.js)).toEqual(["direct", "direct"]);
    expect(printGraph(optimize(g, "all"))).toContain('algorithm="fft"');
    expect(printGraph(optimize(g, "none"))).not.toContain("algorithm");
  });

  it("the verifier accepts the three values and rejects others", () => {
    const g = compile(`model M {\n  input x: f32[N, 2, 30]\n  output y = conv1d(x, filters=2, kernel=3)\n}\n`);
    for (const alg of ALGORITHMS) expect(verifyGraph(withAlgorithm(g, alg))).toEqual([]);
    const bad = withAlgorithm(g, "winograd" as ConvAlgorithm);
    expect(verifyGraph(bad).join("\n")).toMatch(/unknown algorithm "winograd"/);
  });
});

describe("--stats", () => {
  const source = `model Sig {
  input x: f32[N, 16, 4096]
  a = conv1d(x, filters=16, kernel=128)
  b = conv1d(a, filters=16, kernel=3, padding=1)
  output y = conv2d(reshape(b, [N, 16, 3969, 1]), filters=16, kernel=1)
}
`;

  it("lists each conv: label, algorithm per target, estimates of the alternatives", () => {
    const g = optimize(compile(source), "all");
    const s = graphStats(g, { N: 4 });
    expect(s.convAlgorithms.map((r) => [r.label, r.js, r.webgpu])).toEqual([
      ["a", "fft", "direct"],
      ["b", "direct", "direct"],
      ["y", "direct", "direct"],
    ]);
    const a = s.convAlgorithms[0]!;
    expect(a.conv).toBe("conv1d x[N, 16, 4096] w[16, 16, 128]");
    expect(a.estimatedMs.fft!).toBeLessThan(a.estimatedMs.direct!);
    expect(Object.keys(a.estimatedMs).sort()).toEqual(["direct", "fft", "implicit_gemm"]);
    const text = formatStats(g, s);
    expect(text).toContain("conv algorithms       js: 1 fft, 2 direct; webgpu: 3 direct");
    expect(text).toMatch(/ {4}a: conv1d x\[N, 16, 4096\] w\[16, 16, 128\]: js fft, webgpu direct \(estimated per image: direct [\d.]+ ms, implicit_gemm [\d.]+ ms, fft [\d.]+ ms\)/);
    // unoptimized: nothing chosen, everything direct
    expect(graphStats(compile(source)).convAlgorithms.map((r) => r.js)).toEqual(["direct", "direct", "direct"]);
  });

  it("end to end: cnnc ir --stats, --json, and the IR printout", () => {
    const dir = mkdtempSync(join(tmpdir(), "cnnc-conv-alg-"));
    const file = join(dir, "sig.cnn");
    writeFileSync(file, source);
    const root = join(import.meta.dirname, "../..");
    const run = (...args: string[]) => spawnSync(process.execPath, [join(root, "bin/cnnc.js"), "ir", file, ...args], { encoding: "utf8", timeout: 60_000 });
    const text = run("--stats", "--bind", "N=8");
    expect(text.status, text.stderr).toBe(0);
    expect(text.stdout).toContain("conv algorithms       js: 1 fft, 2 direct; webgpu: 3 direct");
    expect(text.stdout).toMatch(/a: conv1d x\[N, 16, 4096\] w\[16, 16, 128\]: js fft, webgpu direct/);
    const json = run("--stats", "--json");
    expect(json.status, json.stderr).toBe(0);
    const rows = JSON.parse(json.stdout).convAlgorithms as { label: string; js: string; webgpu: string; estimatedMs: Record<string, number> }[];
    expect(rows.map((r) => `${r.label}:${r.js}/${r.webgpu}`)).toEqual(["a:fft/direct", "b:direct/direct", "y:direct/direct"]);
    expect(rows[0]!.estimatedMs.fft).toBeGreaterThan(0);
    const ir = run();
    expect(ir.status, ir.stderr).toBe(0);
    expect(ir.stdout).toContain('algorithm="fft"');
    expect(run("--passes=none").stdout).not.toContain("algorithm=");
  });
});

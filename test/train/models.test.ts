// Real models trained by the compiled trainStep, shortened versions of the
// training scripts (train/*.ts; `npm run train:<model>` runs the full ones).
// Each has a fixed seed and a threshold that a broken gradient would miss.
//
//  * LeNet-5 on MNIST digits, JS target: well above chance on held-out digits.
//  * LeNet-5 on WebGPU, same data and seed: the same accuracy as JS within 3 points
//    (a wrong WGSL gradient anywhere in the net would show).
//  * grad(score, x) on the trained LeNet-5 (a saliency map) equals central
//    finite differences of the score in float64.
//  * Skip-gram on "Persuasion": the loss falls, and "captain" is nearer
//    "wentworth" than "walter", "sir" nearer "walter" than "russell".
//  * Char-LSTM: held-out loss falls well below the text's unigram entropy.
//  * Denoising auto-encoder: reconstruction error of noisy held-out digits falls.

import { describe, expect, it } from "vitest";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { compileSource } from "../../compiler/compile.ts";
import { initialParams, interpret } from "../../compiler/reference/interpreter.ts";
import { RefTensor } from "../../compiler/reference/tensor.ts";
import { decodeSafetensors } from "../../runtime/safetensors.ts";
import { loadModel } from "../../train/load.ts";
import { trainCharLstm } from "../../train/char-lstm.ts";
import { trainDae } from "../../train/dae.ts";
import { trainLenet5 } from "../../train/lenet5.ts";
import { loadMnist } from "../../train/mnist.ts";
import { trainSkipGram } from "../../train/skipgram.ts";
import { expectAllClose } from "../support/conformance.ts";
import { gpuDevice } from "../support/webgpu.ts";

const root = join(import.meta.dirname, "..", "..");
let trainedLenet: Uint8Array | undefined;
let jsShortAccuracy = NaN;

describe("LeNet-5 on MNIST", () => {
  it("JS target: 2 epochs on 3,000 digits reach > 80% on 2,000 held-out digits", async () => {
    const r = await trainLenet5({ target: "js", epochs: 2, trainImages: 3000, quiet: true });
    expect(r.epochs[1]!.loss).toBeLessThan(r.epochs[0]!.loss);
    expect(r.testAccuracy).toBeGreaterThan(0.8);
    trainedLenet = r.model.saveWeights();
    r.model.dispose();
    const short = await trainLenet5({ target: "js", epochs: 1, trainImages: 1000, quiet: true });
    jsShortAccuracy = short.testAccuracy;
    short.model.dispose();
  }, 600_000);

  it("WebGPU target: the same run (1 epoch, 1,000 digits) reaches the JS accuracy within 3 points", async () => {
    const { device } = await gpuDevice();
    const r = await trainLenet5({ target: "webgpu", epochs: 1, trainImages: 1000, quiet: true, device });
    expect(r.testAccuracy).toBeGreaterThan(0.3);
    expect(Math.abs(r.testAccuracy - jsShortAccuracy)).toBeLessThan(0.03);
    r.model.dispose();
  }, 600_000);

  it("grad(score, x) on the trained LeNet-5 equals finite differences (saliency map)", async () => {
    expect(trainedLenet).toBeDefined();
    const lenet = readFileSync(join(root, "dsl-examples", "lenet5.cnn"), "utf8");
    // The same layers (so the trained weights load by name) and a saliency output.
    const source = lenet
      .replace("model LeNet5 {", "model LeNet5Saliency {\n  input target: f32[N, 10]")
      .replace(/  output probs[\s\S]*\}\s*$/, "  s = sum(logits * target)\n  output score = s\n  output saliency = grad(s, x)\n}\n");
    const r = compileSource(source, "saliency.cnn");
    expect(r.diagnostics).toEqual([]);
    const g = r.graphs[0]!;
    const files = decodeSafetensors(trainedLenet!);
    const params: Record<string, RefTensor> = { ...initialParams(g) };
    for (const [k, t] of Object.entries(files)) params[k] = new RefTensor("f32", t.shape, Float64Array.from(t.data as Float32Array));
    const digits = loadMnist().test;
    const x = new RefTensor("f32", [1, 1, 28, 28], Float64Array.from(digits.images.subarray(0, 784)));
    const target = new RefTensor("f32", [1, 10]);
    target.data[digits.labels[0]!] = 1;
    const sal = interpret(g, { x, target }, params).outputs.saliency!;
    // Central differences of the score in float64 at 60 pixels spread over the image.
    const scoreOf = (img: RefTensor) => interpret(g, { x: img, target }, params, { outputs: ["score"] }).outputs.score!.data[0]!;
    // Pixels on the digit's strokes: in the blank background neighbouring activations are equal, so
    // max pooling sits on a tie there, where the function has one-sided derivatives only (finite
    // differences then average the two, while the gradient routes to the first maximum).
    const strokes = Array.from({ length: 784 }, (_, k) => k).filter((k) => x.data[k]! > 0.2);
    let checked = 0;
    for (const k of strokes.filter((_, i) => i % 2 === 0)) {
      const at = (d: number) => scoreOf(x.map((v, i) => (i === k ? v + d : v)));
      const fd = (at(1e-5) - at(-1e-5)) / 2e-5;
      expect(Math.abs(sal.data[k]! - fd), `pixel ${k}: saliency ${sal.data[k]} vs finite difference ${fd}`).toBeLessThanOrEqual(1e-6 + 1e-4 * Math.abs(fd));
      checked++;
    }
    expect(checked).toBeGreaterThan(40);
    expect(Math.max(...Array.from(sal.data, Math.abs))).toBeGreaterThan(1e-3); // not trivially zero
    // The compiled JS module computes the same map.
    const m = await loadModel(g, { target: "js", weights: trainedLenet });
    const out = await m.run({ x: { data: Float32Array.from(x.data), shape: [1, 1, 28, 28] }, target: { data: Float32Array.from(target.data), shape: [1, 10] } });
    expectAllClose(new RefTensor("f32", [1, 1, 28, 28], Float64Array.from(out.saliency!.data)), sal, "saliency (JS)", 1e-3, 1e-5);
    m.dispose();
  }, 600_000);
});

describe("language and auto-encoder models", () => {
  it("skip-gram: the loss falls and related words end up nearer than unrelated ones", async () => {
    const r = await trainSkipGram({ target: "js", epochs: 2, tokens: 30000, quiet: true });
    expect(r.epochs[1]!.loss).toBeLessThan(0.7 * r.epochs[0]!.loss);
    expect(r.neighbours("captain", 3)).toContain("wentworth");
    expect(r.similarity("captain", "wentworth")).toBeGreaterThan(r.similarity("captain", "walter"));
    expect(r.similarity("sir", "walter")).toBeGreaterThan(r.similarity("sir", "russell"));
    r.model.dispose();
  }, 600_000);

  it("char-LSTM: held-out loss falls well below the unigram entropy", async () => {
    const r = await trainCharLstm({ target: "js", epochs: 1, steps: 50, batchSize: 16, seqLen: 32, lr: 0.01, quiet: true });
    expect(r.heldOutLoss).toBeLessThan(r.unigramEntropy - 0.5);
    r.model.dispose();
  }, 600_000);

  it("denoising auto-encoder: reconstruction error of noisy held-out digits falls by a third", async () => {
    const r = await trainDae({ epochs: 1, trainImages: 2000, quiet: true });
    expect(r.errorAfter).toBeLessThan((2 / 3) * r.errorBefore);
    r.model.dispose();
  }, 600_000);
});

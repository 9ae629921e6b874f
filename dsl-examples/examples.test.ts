// The models of dsl-examples/ compile without diagnostics, create exactly the
// parameters (names, PyTorch layouts, counts) worked out by hand below, give
// their outputs the documented types, and run once through the float64
// reference interpreter with N = 2 and small sequence/spatial sizes.
//
// Parameter counting rules (PyTorch): conv weight filters·(C/groups)·ΠK plus
// `filters` biases; conv_transpose weight C·(filters/groups)·ΠK plus `filters`;
// dense in·units + units; embed vocab·dim; batchnorm 2·C trainable (running
// statistics are buffers, not counted); rnn per direction G·H·D + G·H·H + 2·G·H
// with G = 1 (elman), 4 (lstm), 3 (gru).

import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { compileSource } from "../compiler/compile.ts";
import { renderDiagnostic } from "../compiler/diagnostics.ts";
import { parameterCount, type Graph } from "../compiler/ir/graph.ts";
import { typeToString } from "../compiler/ir/types.ts";
import { initialParams, interpret } from "../compiler/reference/interpreter.ts";
import { RefTensor } from "../compiler/reference/tensor.ts";
import { randomTensor } from "../test/support/build.ts";

type Feeds = Record<string, RefTensor>;

interface Example {
  readonly file: string;
  /** Model name (one model per file). */
  readonly model: string;
  /** Trainable parameter count, worked out by hand in the comment above each entry. */
  readonly total: number;
  /** Every trainable parameter with its (PyTorch) shape. */
  readonly params: Record<string, number[]>;
  /** Buffers (batchnorm running statistics). */
  readonly buffers?: Record<string, number[]>;
  /** Type of every output and loss, as typeToString prints it. */
  readonly types: Record<string, string>;
  /** Small concrete inputs (N = 2) and the shapes the outputs must then have. */
  readonly feeds: () => Feeds;
  readonly shapes: Record<string, number[]>;
}

// ----- deterministic inputs ------------------------------------------------

function uniform(shape: number[], seed: number, lo = -1, hi = 1): RefTensor {
  return randomTensor(shape, seed, lo, hi);
}

/** Integers in [0, hi) (token ids, labels). */
function ints(shape: number[], hi: number, seed: number): RefTensor {
  const r = randomTensor(shape, seed, 0, 1);
  return new RefTensor("i32", shape, r.data.map((v) => Math.min(hi - 1, Math.floor(v * hi))));
}

function i32(values: number[], shape: number[] = [values.length]): RefTensor {
  return RefTensor.from(values, shape, "i32");
}

/** mask[n, t] = t < lengths[n]. */
function lengthMask(lengths: number[], L: number): RefTensor {
  const t = new RefTensor("bool", [lengths.length, L]);
  lengths.forEach((len, n) => {
    for (let i = 0; i < len; i++) t.set(1, n, i);
  });
  return t;
}

function batchnormBuffers(layers: Record<string, number>): Record<string, number[]> {
  const out: Record<string, number[]> = {};
  for (const [layer, c] of Object.entries(layers)) {
    out[`${layer}.running_mean`] = [c];
    out[`${layer}.running_var`] = [c];
  }
  return out;
}

// ----- the models ----------------------------------------------------------

const examples: Example[] = [
  // LeNet-5 (DSL.md §1):
  //   c1 6·1·5·5 + 6 = 156;  c3 16·6·5·5 + 16 = 2,416;  f5 400·120 + 120 = 48,120
  //   (400 = 16·5·5);  f6 120·84 + 84 = 10,164;  logits 84·10 + 10 = 850
  //   156 + 2,416 + 48,120 + 10,164 + 850 = 61,706
  {
    file: "lenet5.cnn",
    model: "LeNet5",
    total: 61_706,
    params: {
      "c1.weight": [6, 1, 5, 5], "c1.bias": [6], "c3.weight": [16, 6, 5, 5], "c3.bias": [16],
      "f5.weight": [120, 400], "f5.bias": [120], "f6.weight": [84, 120], "f6.bias": [84],
      "logits.weight": [10, 84], "logits.bias": [10],
    },
    types: { probs: "f32[N, 10]", xent: "f32[]" },
    feeds: () => ({ x: uniform([2, 1, 28, 28], 1, 0, 1), labels: i32([3, 7]) }),
    shapes: { probs: [2, 10], xent: [] },
  },

  // Text CNN (Kim, 2014):
  //   words 5000·64 = 320,000
  //   tri  conv 32·64·3 + 32 = 6,176;  quad 32·64·4 + 32 = 8,224;  five 32·64·5 + 32 = 10,272
  //   logits (3·32 = 96 features) 96·5 + 5 = 485
  //   320,000 + 6,176 + 8,224 + 10,272 + 485 = 345,157
  {
    file: "text_cnn.cnn",
    model: "TextCNN",
    total: 345_157,
    params: {
      "words.weight": [5000, 64],
      "tri.conv.weight": [32, 64, 3], "tri.conv.bias": [32],
      "quad.conv.weight": [32, 64, 4], "quad.conv.bias": [32],
      "five.conv.weight": [32, 64, 5], "five.conv.bias": [32],
      "logits.weight": [5, 96], "logits.bias": [5],
    },
    types: { probs: "f32[N, 5]", xent: "f32[]" },
    feeds: () => ({ tokens: ints([2, 7], 5000, 2), labels: i32([0, 4]) }),
    shapes: { probs: [2, 5], xent: [] },
  },

  // DCNN (Kalchbrenner et al., 2014), row-wise convolutions as groups = 48:
  //   words 5000·48 = 240,000
  //   c1 288·(48/48 = 1)·7 + 288 = 2,016 + 288 = 2,304
  //   c2 672·(288/48 = 6)·5 + 672 = 20,160 + 672 = 20,832
  //   logits (24 folded rows · 14 maps · k 4 = 1,344 features) 1,344·5 + 5 = 6,725
  //   240,000 + 2,304 + 20,832 + 6,725 = 269,861
  {
    file: "dcnn.cnn",
    model: "DCNN",
    total: 269_861,
    params: {
      "words.weight": [5000, 48], "c1.weight": [288, 1, 7], "c1.bias": [288],
      "c2.weight": [672, 6, 5], "c2.bias": [672], "logits.weight": [5, 1344], "logits.bias": [5],
    },
    types: { probs: "f32[N, 5]", xent: "f32[]" },
    // L = 3: shorter than both kernels, which wide convolution allows.
    feeds: () => ({ tokens: ints([2, 3], 5000, 3), labels: i32([1, 2]) }),
    shapes: { probs: [2, 5], xent: [] },
  },

  // Char-level LSTM (G = 4, H = 128, D = 32):
  //   x (embed) 65·32 = 2,080
  //   h: weight_ih 4·128·32 = 16,384;  weight_hh 4·128·128 = 65,536;  biases 2·4·128 = 1,024 → 82,944
  //   logits 128·65 + 65 = 8,385
  //   2,080 + 82,944 + 8,385 = 93,409
  {
    file: "char_lstm.cnn",
    model: "CharLSTM",
    total: 93_409,
    params: {
      "x.weight": [65, 32], "h.weight_ih": [512, 32], "h.weight_hh": [512, 128], "h.bias_ih": [512],
      "h.bias_hh": [512], "logits.weight": [65, 128], "logits.bias": [65],
    },
    types: { probs: "f32[N, L, 65]", xent: "f32[]" },
    feeds: () => ({ chars: ints([2, 5], 65, 4), next_chars: ints([2, 5], 65, 5) }),
    shapes: { probs: [2, 5, 65], xent: [] },
  },

  // Bidirectional GRU tagger (G = 3, H = 64, D = 64, two directions):
  //   x (embed) 5000·64 = 320,000
  //   per direction 3·64·64 + 3·64·64 + 2·3·64 = 12,288 + 12,288 + 384 = 24,960; ×2 = 49,920
  //   logits (2·64 = 128 features) 128·17 + 17 = 2,193
  //   320,000 + 49,920 + 2,193 = 372,113
  {
    file: "bigru_tagger.cnn",
    model: "BiGRUTagger",
    total: 372_113,
    params: {
      "x.weight": [5000, 64],
      "states.weight_ih": [192, 64], "states.weight_hh": [192, 64], "states.bias_ih": [192], "states.bias_hh": [192],
      "states.weight_ih_reverse": [192, 64], "states.weight_hh_reverse": [192, 64],
      "states.bias_ih_reverse": [192], "states.bias_hh_reverse": [192],
      "logits.weight": [17, 128], "logits.bias": [17],
    },
    types: { predicted: "i32[N, L]", xent: "f32[]" },
    feeds: () => ({
      words: ints([2, 5], 5000, 6),
      lengths: i32([5, 3]),
      mask: lengthMask([5, 3], 5),
      tags: ints([2, 5], 17, 7),
    }),
    shapes: { predicted: [2, 5], xent: [] },
  },

  // Skip-gram with negative sampling: two tables, the negatives reuse the output table:
  //   in_embed 5000·100 = 500,000;  out_embed 5000·100 = 500,000  → 1,000,000
  {
    file: "skipgram.cnn",
    model: "SkipGram",
    total: 1_000_000,
    params: { "in_embed.weight": [5000, 100], "out_embed.weight": [5000, 100] },
    types: { similarity: "f32[N]", sgns: "f32[]" },
    feeds: () => ({ center: i32([10, 4999]), context: i32([11, 0]), negatives: ints([2, 3], 5000, 8) }),
    shapes: { similarity: [2], sgns: [] },
  },

  // Denoising auto-encoder with tied weights:
  //   enc 784·256 + 256 = 200,960;  dec_b 784 (the decoder reuses enc.weight)
  //   200,960 + 784 = 201,744
  {
    file: "denoising_ae.cnn",
    model: "DenoisingAE",
    total: 201_744,
    params: { "enc.weight": [256, 784], "enc.bias": [256], dec_b: [784] },
    types: { recon: "f32[N, 784]", bce: "f32[]" },
    feeds: () => ({ x: uniform([2, 784], 9, 0, 1) }),
    shapes: { recon: [2, 784], bce: [] },
  },

  // ResNet basic blocks (convolutions without bias, batchnorm 2·C each):
  //   stem conv 16·3·3·3 = 432;  stem bn 2·16 = 32                                  →    464
  //   r1: conv1 16·16·3·3 = 2,304;  bn1 32;  conv2 2,304;  bn2 32                  →  4,672
  //   proj conv 32·16·1·1 = 512;  bn 2·32 = 64                                     →    576
  //   r2: conv1 32·16·3·3 = 4,608;  bn1 64;  conv2 32·32·3·3 = 9,216;  bn2 64      → 13,952
  //   logits 32·10 + 10 = 330
  //   464 + 4,672 + 576 + 13,952 + 330 = 19,994
  {
    file: "resnet_block.cnn",
    model: "ResNetBlocks",
    total: 19_994,
    params: {
      "stem.weight": [16, 3, 3, 3], "stem.1.weight": [16], "stem.1.bias": [16],
      "r1.conv1.weight": [16, 16, 3, 3], "r1.bn1.weight": [16], "r1.bn1.bias": [16],
      "r1.conv2.weight": [16, 16, 3, 3], "r1.bn2.weight": [16], "r1.bn2.bias": [16],
      "proj.weight": [32, 16, 1, 1], "proj.1.weight": [32], "proj.1.bias": [32],
      "r2.conv1.weight": [32, 16, 3, 3], "r2.bn1.weight": [32], "r2.bn1.bias": [32],
      "r2.conv2.weight": [32, 32, 3, 3], "r2.bn2.weight": [32], "r2.bn2.bias": [32],
      "logits.weight": [10, 32], "logits.bias": [10],
    },
    buffers: batchnormBuffers({ "stem.1": 16, "r1.bn1": 16, "r1.bn2": 16, "proj.1": 32, "r2.bn1": 32, "r2.bn2": 32 }),
    types: { probs: "f32[N, 10]", xent: "f32[]" },
    feeds: () => ({ x: uniform([2, 3, 32, 32], 10), labels: i32([0, 9]) }),
    shapes: { probs: [2, 10], xent: [] },
  },

  // Inception (3a) and (3b) (every conv has a bias):
  //   3a (in 192): 1×1 64·192 + 64 = 12,352;  3×3 reduce 96·192 + 96 = 18,528;
  //     3×3 128·96·9 + 128 = 110,720;  5×5 reduce 16·192 + 16 = 3,088;
  //     5×5 32·16·25 + 32 = 12,832;  pool proj 32·192 + 32 = 6,176          → 163,696
  //   3b (in 256): 1×1 128·256 + 128 = 32,896;  3×3 reduce 128·256 + 128 = 32,896;
  //     3×3 192·128·9 + 192 = 221,376;  5×5 reduce 32·256 + 32 = 8,224;
  //     5×5 96·32·25 + 96 = 76,896;  pool proj 64·256 + 64 = 16,448         → 388,736
  //   163,696 + 388,736 = 552,432
  {
    file: "inception.cnn",
    model: "InceptionModules",
    total: 552_432,
    params: {
      "i3a.b1.weight": [64, 192, 1, 1], "i3a.b1.bias": [64], "i3a.r3.weight": [96, 192, 1, 1], "i3a.r3.bias": [96],
      "i3a.b3.weight": [128, 96, 3, 3], "i3a.b3.bias": [128], "i3a.r5.weight": [16, 192, 1, 1], "i3a.r5.bias": [16],
      "i3a.b5.weight": [32, 16, 5, 5], "i3a.b5.bias": [32], "i3a.bp.weight": [32, 192, 1, 1], "i3a.bp.bias": [32],
      "i3b.b1.weight": [128, 256, 1, 1], "i3b.b1.bias": [128], "i3b.r3.weight": [128, 256, 1, 1], "i3b.r3.bias": [128],
      "i3b.b3.weight": [192, 128, 3, 3], "i3b.b3.bias": [192], "i3b.r5.weight": [32, 256, 1, 1], "i3b.r5.bias": [32],
      "i3b.b5.weight": [96, 32, 5, 5], "i3b.b5.bias": [96], "i3b.bp.weight": [64, 256, 1, 1], "i3b.bp.bias": [64],
    },
    // 3×3 max-pooling, stride 2, padding 1: floor((H + 2 − 3) / 2) + 1 = floor((H + 1) / 2).
    types: { features: "f32[N, 480, floor((H + 1) / 2), floor((W + 1) / 2)]" },
    feeds: () => ({ x: uniform([2, 192, 4, 3], 11) }),
    shapes: { features: [2, 480, 2, 2] },
  },

  // U-Net (every conv has a bias):
  //   enc1: 16·1·9 + 16 = 160;  16·16·9 + 16 = 2,320                  →  2,480
  //   enc2: 32·16·9 + 32 = 4,640;  32·32·9 + 32 = 9,248               → 13,888
  //   mid:  64·32·9 + 64 = 18,496;  64·64·9 + 64 = 36,928             → 55,424
  //   up2 (transposed, weight [C_in, filters, 2, 2]): 64·32·4 + 32    →  8,224
  //   dec2 (in 32 + 32): 32·64·9 + 32 = 18,464;  32·32·9 + 32 = 9,248 → 27,712
  //   up1: 32·16·4 + 16                                               →  2,064
  //   dec1 (in 16 + 16): 16·32·9 + 16 = 4,624;  16·16·9 + 16 = 2,320  →  6,944
  //   logits 2·16·1·1 + 2                                             →     34
  //   2,480 + 13,888 + 55,424 + 8,224 + 27,712 + 2,064 + 6,944 + 34 = 116,770
  {
    file: "unet.cnn",
    model: "UNet",
    total: 116_770,
    params: {
      "enc1.a.weight": [16, 1, 3, 3], "enc1.a.bias": [16], "enc1.b.weight": [16, 16, 3, 3], "enc1.b.bias": [16],
      "enc2.a.weight": [32, 16, 3, 3], "enc2.a.bias": [32], "enc2.b.weight": [32, 32, 3, 3], "enc2.b.bias": [32],
      "mid.a.weight": [64, 32, 3, 3], "mid.a.bias": [64], "mid.b.weight": [64, 64, 3, 3], "mid.b.bias": [64],
      "up2.weight": [64, 32, 2, 2], "up2.bias": [32],
      "dec2.a.weight": [32, 64, 3, 3], "dec2.a.bias": [32], "dec2.b.weight": [32, 32, 3, 3], "dec2.b.bias": [32],
      "up1.weight": [32, 16, 2, 2], "up1.bias": [16],
      "dec1.a.weight": [16, 32, 3, 3], "dec1.a.bias": [16], "dec1.b.weight": [16, 16, 3, 3], "dec1.b.bias": [16],
      "logits.weight": [2, 16, 1, 1], "logits.bias": [2],
    },
    types: { segmentation: "i32[N, 16, 16]", xent: "f32[]" },
    feeds: () => ({ x: uniform([2, 1, 16, 16], 12, 0, 1), target: ints([2, 16, 16], 2, 13) }),
    shapes: { segmentation: [2, 16, 16], xent: [] },
  },

  // Ones block detector: the kernels are inputs, so nothing is trainable → 0.
  {
    file: "ones_block.cnn",
    model: "OnesBlock",
    total: 0,
    params: {},
    types: { edges: "f32[N, 1, 10]", block: "f32[N, 1, 10]" },
    feeds: () => ({ x: uniform([2, 1, 10], 14), k1: RefTensor.from([-1, 1], [1, 1, 2]), k2: RefTensor.from([1, 0, 0, -1], [1, 1, 4]) }),
    shapes: { edges: [2, 1, 10], block: [2, 1, 10] },
  },

  // Depthwise-separable blocks (no conv biases, batchnorm 2·C):
  //   s1: dw 32·(32/32 = 1)·3·3 = 288;  bn 64;  pw 64·32·1·1 = 2,048;  bn 128  →  2,528
  //   s2: dw 64·1·3·3 = 576;  bn 128;  pw 128·64·1·1 = 8,192;  bn 256          →  9,152
  //   2,528 + 9,152 = 11,680
  {
    file: "depthwise_separable.cnn",
    model: "MobileNetBlocks",
    total: 11_680,
    params: {
      "s1.dw.weight": [32, 1, 3, 3], "s1.dw_bn.weight": [32], "s1.dw_bn.bias": [32],
      "s1.pw.weight": [64, 32, 1, 1], "s1.pw_bn.weight": [64], "s1.pw_bn.bias": [64],
      "s2.dw.weight": [64, 1, 3, 3], "s2.dw_bn.weight": [64], "s2.dw_bn.bias": [64],
      "s2.pw.weight": [128, 64, 1, 1], "s2.pw_bn.weight": [128], "s2.pw_bn.bias": [128],
    },
    buffers: batchnormBuffers({ "s1.dw_bn": 32, "s1.pw_bn": 64, "s2.dw_bn": 64, "s2.pw_bn": 128 }),
    // Stride 2, kernel 3, padding 1: floor((H − 1) / 2) + 1 = floor((H + 1) / 2) = ceil(H / 2).
    types: { features: "f32[N, 128, floor((H + 1) / 2), floor((W + 1) / 2)]" },
    feeds: () => ({ x: uniform([2, 32, 6, 7], 15) }),
    shapes: { features: [2, 128, 3, 4] },
  },

  // Elman classifier (G = 1, H = 64, D = 32):
  //   x (embed) 1000·32 = 32,000
  //   last: weight_ih 64·32 = 2,048;  weight_hh 64·64 = 4,096;  biases 2·64 = 128  → 6,272
  //   logits 64·2 + 2 = 130
  //   32,000 + 6,272 + 130 = 38,402
  {
    file: "elman_classifier.cnn",
    model: "ElmanClassifier",
    total: 38_402,
    params: {
      "x.weight": [1000, 32], "last.weight_ih": [64, 32], "last.weight_hh": [64, 64], "last.bias_ih": [64],
      "last.bias_hh": [64], "logits.weight": [2, 64], "logits.bias": [2],
    },
    types: { probs: "f32[N, 2]", xent: "f32[]" },
    feeds: () => ({ tokens: ints([2, 5], 1000, 16), lengths: i32([5, 2]), labels: i32([1, 0]) }),
    shapes: { probs: [2, 2], xent: [] },
  },
];

// ----- helpers -------------------------------------------------------------

const here = new URL(".", import.meta.url);

function compileExample(file: string): Graph {
  const source = readFileSync(new URL(file, here), "utf8");
  const { graphs, diagnostics } = compileSource(source, file);
  // Rendered, so a failure shows the message, the line and the caret.
  expect(diagnostics.map((d) => renderDiagnostic(d, source))).toEqual([]);
  expect(graphs).toHaveLength(1);
  return graphs[0]!;
}

function shapesOf(params: readonly { name: string; value: { type: { shape: readonly { constValue(): number | undefined }[] } } }[]): Record<string, number[]> {
  return Object.fromEntries(params.map((p) => [p.name, p.value.type.shape.map((d) => d.constValue() ?? NaN)]));
}

// ----- tests ---------------------------------------------------------------

describe.each(examples)("dsl-examples/$file", (ex) => {
  it("compiles to the documented parameters, buffers and output types", () => {
    const g = compileExample(ex.file);
    expect(g.name).toBe(ex.model);
    expect(shapesOf(g.trainableParams())).toEqual(ex.params);
    expect(shapesOf(g.buffers())).toEqual(ex.buffers ?? {});
    expect(parameterCount(g).total).toBe(ex.total);
    const types = Object.fromEntries(g.outputs.map((o) => [o.name, typeToString(o.value.type)]));
    expect(types).toEqual(ex.types);
    for (const o of g.outputs) if (o.kind === "loss") expect(o.value.type.shape).toHaveLength(0);
  });

  it("runs in the reference interpreter with N = 2, giving finite outputs of the right shapes", () => {
    const g = compileExample(ex.file);
    const result = interpret(g, ex.feeds(), initialParams(g, 0));
    expect(Object.keys(result.outputs).sort()).toEqual(Object.keys(ex.shapes).sort());
    expect(result.symbols.get("N")).toBe(2);
    for (const o of g.outputs) {
      const t = result.outputs[o.name]!;
      expect([...t.shape], o.name).toEqual(ex.shapes[o.name]);
      // The concrete shape is the symbolic type with the run's symbols substituted.
      expect([...t.shape], o.name).toEqual(o.value.type.shape.map((d) => d.evaluate(result.symbols)));
      expect(t.dtype, o.name).toBe(o.value.type.dtype);
      const bad = t.toArray().findIndex((v) => !Number.isFinite(v));
      expect(bad, `${o.name}: first non-finite element`).toBe(-1);
    }
  });
});

describe("model semantics", () => {
  it("ones_block marks the block of three ones: z3 = 0 0 0 0 1 0 0 0 0 0", () => {
    const g = compileExample("ones_block.cnn");
    const x = RefTensor.from([0, 0, 0, 0, 0, 1, 1, 1, 0, 0], [1, 1, 10]);
    const k1 = RefTensor.from([-1, 1], [1, 1, 2]);
    const k2 = RefTensor.from([1, 0, 0, -1], [1, 1, 4]);
    const { outputs } = interpret(g, { x, k1, k2 }, initialParams(g, 0));
    expect(outputs.edges!.toArray()).toEqual([0, 0, 0, 0, 1, 0, 0, -1, 0, 0]);
    expect(outputs.block!.toArray()).toEqual([0, 0, 0, 0, 1, 0, 0, 0, 0, 0]);
  });

  it("ones_block: a block of two or four ones is not marked", () => {
    const g = compileExample("ones_block.cnn");
    // A block of two ones at 1–2 and one of four at 6–9: z2 peaks at 1, never 2.
    const x = RefTensor.from([0, 1, 1, 0, 0, 0, 1, 1, 1, 1], [1, 1, 10]);
    const k1 = RefTensor.from([-1, 1], [1, 1, 2]);
    const k2 = RefTensor.from([1, 0, 0, -1], [1, 1, 4]);
    const { outputs } = interpret(g, { x, k1, k2 }, initialParams(g, 0));
    expect(outputs.block!.toArray()).toEqual([0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
  });

  it("skipgram's negatives read the output table (tied through weight=)", () => {
    const g = compileExample("skipgram.cnn");
    const params = initialParams(g, 0);
    // Zero the output table: every score is 0, so the loss is −log σ(0)·(1 + K) = (1 + K)·log 2.
    const zeroed = { ...params, "out_embed.weight": RefTensor.zeros([5000, 100]) };
    const feeds = { center: i32([1, 2]), context: i32([3, 4]), negatives: i32([5, 6, 7, 8, 9, 10], [2, 3]) };
    const { outputs } = interpret(g, feeds, zeroed);
    expect(outputs.sgns!.data[0]).toBeCloseTo(4 * Math.log(2), 12);
  });

  it("denoising_ae decodes with the encoder's weight transposed (index notation)", () => {
    const g = compileExample("denoising_ae.cnn");
    const params = initialParams(g, 0);
    const x = uniform([2, 784], 21, 0, 1);
    const { outputs } = interpret(g, { x }, params); // inference: no corruption
    const w = params["enc.weight"]!;
    const b = params["enc.bias"]!;
    const db = params.dec_b!;
    for (const n of [0, 1]) {
      const h = new Array<number>(256);
      for (let j = 0; j < 256; j++) {
        let s = b.get(j);
        for (let i = 0; i < 784; i++) s += w.get(j, i) * x.get(n, i);
        h[j] = 1 / (1 + Math.exp(-s));
      }
      for (const i of [0, 100, 783]) {
        let r = db.get(i);
        for (let j = 0; j < 256; j++) r += h[j]! * w.get(j, i);
        expect(outputs.recon!.get(n, i)).toBeCloseTo(1 / (1 + Math.exp(-r)), 10);
      }
    }
  });
});

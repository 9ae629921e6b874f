// JS kernels for the losses (compiler/ops/loss.ts): cross_entropy, mse,
// bce_with_logits. Each writes one f32 scalar; sums run in JS numbers
// (double) and in the reference's element order. Their backward ops
// (cross_entropy_grad, mse_grad, bce_with_logits_grad) are at the end.
//
// cross_entropy uses a max-shifted log-sum-exp per position. With classes on
// the last axis (or followed only by size-1 axes) each position's logits are
// contiguous; otherwise the positions that share an outer index ("lanes",
// e.g. the L positions of [N, C, L]) are processed side by side so the inner
// loop stays contiguous. Labels are checked in the reference's order, so the
// first bad label reported is the same.

import type { JsEmitCtx, JsKernel } from "./kernel.ts";
import { productJs } from "./kernel.ts";

const isLiteral = (s: string) => /^\d+$/.test(s);

function sizeConst(lines: string[], name: string, expr: string): string {
  if (isLiteral(expr)) return expr;
  lines.push(`const ${name} = ${expr};`);
  return name;
}

/** `a * b` with literal 1 folded. */
function times(a: string, b: string): string {
  if (a === "1") return b;
  if (b === "1") return a;
  return `${a} * ${b}`;
}

/** A JS string expression: `parts` alternates literal text and JS expressions. */
function concat(parts: readonly (string | { js: string })[]): string {
  return parts
    .map((p) => (typeof p === "string" ? JSON.stringify(p) : /^[\w.]+$/.test(p.js) ? p.js : `(${p.js})`))
    .join(" + ");
}

// ---------------------------------------------------------------- cross entropy

/**
 * The reference's message for a label outside [0, C): `label 7 at labels[1, 2]
 * is outside the classes [0, 5) (ignore_index is -100)`. The multi-index is
 * recovered from the flat position `p` (cold path: only on failure).
 */
function badLabelFail(labelShape: readonly string[], classes: string, ignoreIndex: number, p: string): string {
  const index: { js: string }[] = labelShape.map((size, j) => {
    const stride = productJs(labelShape.slice(j + 1));
    const q = stride === "1" ? p : `Math.floor(${p} / ${/^[\w.]+$/.test(stride) ? stride : `(${stride})`})`;
    return { js: j === 0 ? q : `${q} % ${/^[\w.]+$/.test(size) ? size : `(${size})`}` };
  });
  const parts: (string | { js: string })[] = ["label ", { js: "label" }, " at labels["];
  index.forEach((ix, j) => parts.push(...(j > 0 ? [", "] : []), ix));
  parts.push("] is outside the classes [0, ");
  parts.push(isLiteral(classes) ? classes : { js: classes });
  parts.push(`) (ignore_index is ${ignoreIndex})`);
  // merge adjacent literal pieces for a readable message expression
  const merged: (string | { js: string })[] = [];
  for (const part of parts) {
    const last = merged[merged.length - 1];
    if (typeof part === "string" && typeof last === "string") merged[merged.length - 1] = last + part;
    else merged.push(part);
  }
  return `T.fail(${concat(merged)});`;
}

function emitCrossEntropy(ctx: JsEmitCtx): string {
  const axis = ctx.node.attrs.axis as number;
  const ignoreIndex = ctx.node.attrs.ignoreIndex as number;
  const hasMask = ctx.node.attrs.hasMask as boolean;
  const shape = ctx.inShape(0);
  const [logits, labels, out] = [ctx.input(0), ctx.input(1), ctx.output(0)];
  const mask = hasMask ? ctx.input(2) : undefined;
  const labelShape = ctx.inShape(1);
  const lines: string[] = [];
  const outer = sizeConst(lines, "outer", productJs(shape.slice(0, axis)));
  const C = sizeConst(lines, "C", shape[axis]!);
  const inner = sizeConst(lines, "inner", productJs(shape.slice(axis + 1)));
  const fail = (p: string) => badLabelFail(labelShape, C, ignoreIndex, p);
  // Skip masked-out and ignored positions; fail on any other label outside [0, C).
  const admit = (p: string): string[] => [
    ...(mask ? [`if (${mask}[${p}] === 0) continue;`] : []),
    `const label = ${labels}[${p}];`,
    `if (label === ${ignoreIndex}) continue;`,
    `if (!(label >= 0 && label < ${C})) ${fail(p)}`,
  ];
  lines.push("let total = 0;", "let counted = 0;");

  if (inner === "1") {
    lines.push(
      `for (let p = 0; p < ${outer}; p++) {`,
      ...admit("p").map((l) => `  ${l}`),
      `  const row = ${times("p", C)};`,
      `  let max = ${logits}[row];`,
      `  for (let k = 1; k < ${C}; k++) if (${logits}[row + k] > max) max = ${logits}[row + k];`,
      "  let sum = 0;",
      `  for (let k = 0; k < ${C}; k++) sum += Math.exp(${logits}[row + k] - max);`,
      `  total += max + Math.log(sum) - ${logits}[row + label];`,
      "  counted++;",
      "}",
    );
  } else {
    lines.push(
      `// Log-sum-exp of the ${inner} positions of one outer index side by side.`,
      `const lseMax = new Float64Array(${inner});`,
      `const lseSum = new Float64Array(${inner});`,
      `for (let o = 0; o < ${outer}; o++) {`,
      `  const base = ${productJs([C, inner, "o"])};`,
      `  const positions = ${productJs([inner, "o"])};`,
      `  for (let i = 0; i < ${inner}; i++) { lseMax[i] = ${logits}[base + i]; lseSum[i] = 0; }`,
      `  for (let k = 1; k < ${C}; k++) {`,
      `    const row = base + k * ${inner};`,
      `    for (let i = 0; i < ${inner}; i++) if (${logits}[row + i] > lseMax[i]) lseMax[i] = ${logits}[row + i];`,
      "  }",
      `  for (let k = 0; k < ${C}; k++) {`,
      `    const row = base + k * ${inner};`,
      `    for (let i = 0; i < ${inner}; i++) lseSum[i] += Math.exp(${logits}[row + i] - lseMax[i]);`,
      "  }",
      `  for (let i = 0; i < ${inner}; i++) {`,
      "    const p = positions + i;",
      ...admit("p").map((l) => `    ${l}`),
      `    total += lseMax[i] + Math.log(lseSum[i]) - ${logits}[base + label * ${inner} + i];`,
      "    counted++;",
      "  }",
      "}",
    );
  }
  lines.push(`// no counted position gives 0, not NaN (as the reference)`, `${out}[0] = counted > 0 ? total / counted : 0;`);
  return lines.join("\n");
}

// ---------------------------------------------------------------- elementwise losses

function emitMeanOver(ctx: JsEmitCtx, term: (a: string, b: string) => string[]): string {
  const lines: string[] = [];
  const n = sizeConst(lines, "n", ctx.inSize(0));
  lines.push(
    "let total = 0;",
    `for (let i = 0; i < ${n}; i++) {`,
    ...term(`${ctx.input(0)}[i]`, `${ctx.input(1)}[i]`).map((l) => `  ${l}`),
    "}",
    `${ctx.output(0)}[0] = total / ${n};`,
  );
  return lines.join("\n");
}

const emitMse = (ctx: JsEmitCtx) => emitMeanOver(ctx, (a, b) => [`const d = ${a} - ${b};`, "total += d * d;"]);

// max(x, 0) − x·t + log(1 + exp(−|x|)): exp never overflows, the large part is exact.
const emitBce = (ctx: JsEmitCtx) =>
  emitMeanOver(ctx, (a, b) => [`const v = ${a};`, `total += (v > 0 ? v : 0) - v * ${b} + Math.log1p(Math.exp(-Math.abs(v)));`]);

// ---------------------------------------------------------------- backward ops

// dlogits: a first pass counts the positions that count (and checks their
// labels, in the reference's order, as the forward does), giving
// scale = dloss / count (0 when none counts); the second writes
// (softmax − onehot)·scale at counted positions and 0 elsewhere. With several
// positions per outer index ("lanes"), they are processed side by side so the
// inner loop stays contiguous, as in the forward.
function emitCrossEntropyGrad(ctx: JsEmitCtx): string {
  const axis = ctx.node.attrs.axis as number;
  const ignoreIndex = ctx.node.attrs.ignoreIndex as number;
  const hasMask = ctx.node.attrs.hasMask as boolean;
  const shape = ctx.inShape(0);
  const [logits, labels, out] = [ctx.input(0), ctx.input(1), ctx.output(0)];
  const mask = hasMask ? ctx.input(2) : undefined;
  const dloss = ctx.input(hasMask ? 3 : 2);
  const labelShape = ctx.inShape(1);
  const lines: string[] = [];
  const outer = sizeConst(lines, "outer", productJs(shape.slice(0, axis)));
  const C = sizeConst(lines, "C", shape[axis]!);
  const inner = sizeConst(lines, "inner", productJs(shape.slice(axis + 1)));
  const positions = sizeConst(lines, "positions", ctx.inSize(1));
  // `label` of position p if it counts, else -1 (masked out or ignore_index).
  const labelOf = (p: string) => `${mask ? `${mask}[${p}] === 0 || ` : ""}${labels}[${p}] === ${ignoreIndex} ? -1 : ${labels}[${p}]`;
  lines.push(
    "let counted = 0;",
    `for (let p = 0; p < ${positions}; p++) {`,
    `  const label = ${labelOf("p")};`,
    "  if (label === -1) continue;",
    `  if (!(label >= 0 && label < ${C})) ${badLabelFail(labelShape, C, ignoreIndex, "p")}`,
    "  counted++;",
    "}",
    `// no counted position: every gradient is 0 (the loss is the constant 0)`,
    `const scale = counted > 0 ? ${dloss}[0] / counted : 0;`,
  );
  if (inner === "1") {
    lines.push(
      `for (let p = 0; p < ${outer}; p++) {`,
      `  const row = ${times("p", C)};`,
      `  const label = ${labelOf("p")};`,
      "  if (label === -1) {",
      `    for (let k = 0; k < ${C}; k++) ${out}[row + k] = 0;`,
      "    continue;",
      "  }",
      `  let max = ${logits}[row];`,
      `  for (let k = 1; k < ${C}; k++) if (${logits}[row + k] > max) max = ${logits}[row + k];`,
      "  let sum = 0;",
      `  for (let k = 0; k < ${C}; k++) sum += Math.exp(${logits}[row + k] - max);`,
      "  const s = scale / sum;",
      `  for (let k = 0; k < ${C}; k++) ${out}[row + k] = Math.exp(${logits}[row + k] - max) * s;`,
      `  ${out}[row + label] -= scale;`,
      "}",
    );
  } else {
    lines.push(
      `// The ${inner} positions of one outer index side by side: per-lane max, 1/sum and label.`,
      `const lseMax = new Float64Array(${inner});`,
      `const lseScale = new Float64Array(${inner});`,
      `const laneLabel = new Int32Array(${inner});`,
      `for (let o = 0; o < ${outer}; o++) {`,
      `  const base = ${productJs([C, inner, "o"])};`,
      `  const first = ${productJs([inner, "o"])};`,
      `  for (let i = 0; i < ${inner}; i++) { lseMax[i] = ${logits}[base + i]; lseScale[i] = 0; laneLabel[i] = ${labelOf("first + i")}; }`,
      `  for (let k = 1; k < ${C}; k++) {`,
      `    const row = base + k * ${inner};`,
      `    for (let i = 0; i < ${inner}; i++) if (${logits}[row + i] > lseMax[i]) lseMax[i] = ${logits}[row + i];`,
      "  }",
      `  for (let k = 0; k < ${C}; k++) {`,
      `    const row = base + k * ${inner};`,
      `    for (let i = 0; i < ${inner}; i++) lseScale[i] += Math.exp(${logits}[row + i] - lseMax[i]);`,
      "  }",
      `  for (let i = 0; i < ${inner}; i++) lseScale[i] = laneLabel[i] === -1 ? 0 : scale / lseScale[i];`,
      `  for (let k = 0; k < ${C}; k++) {`,
      `    const row = base + k * ${inner};`,
      `    for (let i = 0; i < ${inner}; i++) ${out}[row + i] = Math.exp(${logits}[row + i] - lseMax[i]) * lseScale[i] - (laneLabel[i] === k ? scale : 0);`,
      "  }",
      "}",
    );
  }
  return lines.join("\n");
}

/** A pair loss's backward op: y0, y1 = the gradients of the two inputs, scaled by dloss / n. */
function emitPairGrad(ctx: JsEmitCtx, comment: string, body: (a: string, b: string) => string[]): string {
  const lines: string[] = [];
  const n = sizeConst(lines, "n", ctx.inSize(0));
  lines.push(
    `// ${comment}`,
    `const scale = ${ctx.input(2)}[0] / ${n};`,
    `for (let i = 0; i < ${n}; i++) {`,
    ...body(`${ctx.input(0)}[i]`, `${ctx.input(1)}[i]`).map((l) => `  ${l}`),
    "}",
  );
  return lines.join("\n");
}

const emitMseGrad = (ctx: JsEmitCtx) =>
  emitPairGrad(ctx, "d/da (a − b)² = 2(a − b), d/db = −2(a − b)", (a, b) => [
    `const g = 2 * (${a} - ${b}) * scale;`,
    `${ctx.output(0)}[i] = g;`,
    `${ctx.output(1)}[i] = -g;`,
  ]);

// σ(x) − t and −x; σ from exp(−|x|) so it never overflows.
const emitBceGrad = (ctx: JsEmitCtx) =>
  emitPairGrad(ctx, "d/dx = σ(x) − t, d/dt = −x (σ through exp(−|x|): no overflow)", (a, b) => [
    `const v = ${a};`,
    "const e = Math.exp(-Math.abs(v));",
    "const sig = v >= 0 ? 1 / (1 + e) : e / (1 + e);",
    `${ctx.output(0)}[i] = (sig - ${b}) * scale;`,
    `${ctx.output(1)}[i] = -v * scale;`,
  ]);

export const kernels: JsKernel[] = [
  { op: "cross_entropy", emit: emitCrossEntropy },
  { op: "mse", emit: emitMse },
  { op: "bce_with_logits", emit: emitBce },
  { op: "cross_entropy_grad", emit: emitCrossEntropyGrad },
  { op: "mse_grad", emit: emitMseGrad },
  { op: "bce_with_logits_grad", emit: emitBceGrad },
];

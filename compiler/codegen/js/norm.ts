// JS kernels for normalisation and noise (compiler/ops/norm.ts): batchnorm,
// layernorm, dropout, gaussian_noise, and the backward op batchnorm_grad
// (layernorm's, dropout's and noise's gradients are plain IR).
//
// Statistics are accumulated in JS numbers (double) with two passes (mean,
// then squared deviations), as the reference does. Loops are arranged so the
// innermost one walks memory contiguously: per-channel / per-lane scratch
// arrays (Float64Array, allocated once per call) collect sums when the
// reduced axes are not the trailing ones. Random draws follow the reference
// exactly: one stream per node (T.rng(key)), elements in row-major order.

import type { JsEmitCtx, JsKernel } from "./kernel.ts";
import { productJs } from "./kernel.ts";

const isLiteral = (s: string) => /^\d+$/.test(s);

/** A finite attribute number as a JS literal. */
function num(v: number): string {
  return Object.is(v, -0) ? "0" : String(v);
}

/** `const name = expr;` when expr is not a literal, so sizes are read from S once; returns what to use. */
function sizeConst(lines: string[], name: string, expr: string): string {
  if (isLiteral(expr)) return expr;
  lines.push(`const ${name} = ${expr};`);
  return name;
}

/** `a * b` with literal 0/1 folded, as a JS expression. */
function times(a: string, b: string): string {
  if (a === "0" || b === "0") return "0";
  if (a === "1") return b;
  if (b === "1") return a;
  return `${a} * ${b}`;
}

/** `a + b` with literal 0 folded. */
function plus(a: string, b: string): string {
  if (a === "0") return b;
  if (b === "0") return a;
  return `${a} + ${b}`;
}

// ---------------------------------------------------------------- batchnorm

// y0 = normalised x, y1 / y2 = new running mean / var. In inference the
// running statistics are copied through unchanged.
function emitBatchnorm(ctx: JsEmitCtx): string {
  const momentum = ctx.node.attrs.momentum as number;
  const eps = ctx.node.attrs.eps as number;
  const shape = ctx.inShape(0);
  const lines: string[] = [];
  const batch = sizeConst(lines, "batch", shape[0]!);
  const C = sizeConst(lines, "C", shape[1]!);
  const inner = sizeConst(lines, "inner", productJs(shape.slice(2)));
  const count = productJs(shape.filter((_, i) => i !== 1));
  const countName = count === shape[0] ? batch : sizeConst(lines, "count", count);
  const [x, w, b, rm, rv] = [0, 1, 2, 3, 4].map((i) => ctx.input(i));
  const [y, newMean, newVar] = [0, 1, 2].map((i) => ctx.output(i));

  // One pass over every (n, c, i); `body(at)` gets the element's offset. The
  // innermost loop runs over the contiguous spatial positions of row (n, c).
  const sweep = (prelude: string[], body: (at: string) => string[], epilogue: string[] = []): string => {
    const rowBase = inner === "1" ? `n * ${C} + c` : `(n * ${C} + c) * ${inner}`;
    const inRow =
      inner === "1"
        ? [`const at = ${rowBase};`, ...body("at")]
        : [`const row = ${rowBase};`, `for (let i = 0; i < ${inner}; i++) {`, ...body("row + i").map((l) => `  ${l}`), "}"];
    return [
      `for (let n = 0; n < ${batch}; n++) {`,
      `  for (let c = 0; c < ${C}; c++) {`,
      ...[...prelude, ...inRow, ...epilogue].map((l) => `    ${l}`),
      "  }",
      "}",
    ].join("\n");
  };
  // Sums a per-element term into `target[c]`, through a local accumulator when a row has several elements.
  const sumInto = (target: string, prelude: string[], term: (at: string) => string[]): string =>
    inner === "1"
      ? sweep(prelude, (at) => [...term(at).slice(0, -1), `${target}[c] += ${term(at).at(-1)!};`])
      : sweep([...prelude, "let acc = 0;"], (at) => [...term(at).slice(0, -1), `acc += ${term(at).at(-1)!};`], [`${target}[c] += acc;`]);

  const shapeText = shape.map((s) => (isLiteral(s) ? s : /^[\w.]+$/.test(s) ? `" + ${s} + "` : `" + (${s}) + "`)).join(", ");
  const needsCountCheck = !(isLiteral(count) && Number(count) >= 2);
  lines.push(
    `// Per-channel statistics: mean and scale = weight / sqrt(var + eps).`,
    `const mean = new Float64Array(${C});`,
    `const scale = new Float64Array(${C});`,
    `if (T.training) {`,
    ...(needsCountCheck
      ? [`  if (${countName} < 2) T.fail("batchnorm in training needs more than 1 value per channel, found input shape [${shapeText}]");`]
      : []),
    `  const sq = new Float64Array(${C}); // sums of squared deviations`,
    `  for (let c = 0; c < ${C}; c++) mean[c] = 0;`,
    indentBy(sumInto("mean", [], (at) => [`${x}[${at}]`]), 2),
    `  for (let c = 0; c < ${C}; c++) mean[c] /= ${countName};`,
    indentBy(sumInto("sq", ["const m = mean[c];"], (at) => [`const d = ${x}[${at}] - m;`, "d * d"]), 2),
    `  for (let c = 0; c < ${C}; c++) {`,
    `    const variance = sq[c] / ${countName};`,
    `    // running statistics move towards the batch's, with the unbiased variance`,
    `    ${newMean}[c] = ${num(1 - momentum)} * ${rm}[c] + ${num(momentum)} * mean[c];`,
    `    ${newVar}[c] = ${num(1 - momentum)} * ${rv}[c] + ${num(momentum)} * (sq[c] / (${countName} - 1));`,
    `    scale[c] = ${w}[c] / Math.sqrt(variance + ${num(eps)});`,
    `  }`,
    `} else {`,
    `  for (let c = 0; c < ${C}; c++) {`,
    `    mean[c] = ${rm}[c];`,
    `    scale[c] = ${w}[c] / Math.sqrt(${rv}[c] + ${num(eps)});`,
    `    ${newMean}[c] = ${rm}[c];`,
    `    ${newVar}[c] = ${rv}[c];`,
    `  }`,
    `}`,
    sweep([`const m = mean[c], s = scale[c], shift = ${b}[c];`], (at) => [`${y}[${at}] = (${x}[${at}] - m) * s + shift;`]),
  );
  return lines.join("\n");
}

// ---------------------------------------------------------------- batchnorm_grad

// y0 = dx, y1 = dweight, y2 = dbias; inputs x, weight, running_mean, running_var, dy.
// Same loop layout as the forward (rows (n, c) of contiguous spatial positions,
// per-channel sums in Float64Array scratch). Training (T.training, as the
// forward) differentiates through the batch statistics:
//   dx = weight·inv·(dy − Σdy/M − x̂·Σ(dy·x̂)/M);
// inference uses the running statistics as constants: dx = weight·inv·dy.
function emitBatchnormGrad(ctx: JsEmitCtx): string {
  const eps = ctx.node.attrs.eps as number;
  const shape = ctx.inShape(0);
  const lines: string[] = [];
  const batch = sizeConst(lines, "batch", shape[0]!);
  const C = sizeConst(lines, "C", shape[1]!);
  const inner = sizeConst(lines, "inner", productJs(shape.slice(2)));
  const count = productJs(shape.filter((_, i) => i !== 1));
  const countName = count === shape[0] ? batch : sizeConst(lines, "count", count);
  const [x, w, rm, rv, dy] = [0, 1, 2, 3, 4].map((i) => ctx.input(i));
  const [dx, dw, db] = [0, 1, 2].map((i) => ctx.output(i));

  // One pass over every (n, c) row; the innermost loop walks its contiguous spatial positions.
  const sweep = (prelude: string[], body: string[], epilogue: string[] = []): string[] => {
    const row = inner === "1" ? `n * ${C} + c` : `(n * ${C} + c) * ${inner}`;
    const inRow =
      inner === "1" ? [`const at = ${row};`, ...body] : [`const row = ${row};`, `for (let i = 0; i < ${inner}; i++) {`, "  const at = row + i;", ...body.map((l) => `  ${l}`), "}"];
    return [`for (let n = 0; n < ${batch}; n++) {`, `  for (let c = 0; c < ${C}; c++) {`, ...[...prelude, ...inRow, ...epilogue].map((l) => `    ${l}`), "  }", "}"];
  };
  lines.push(
    `// Per-channel mean and inv = 1 / sqrt(var + eps): the batch's in training, the running ones in inference.`,
    `const mean = new Float64Array(${C});`,
    `const inv = new Float64Array(${C});`,
    `if (T.training) {`,
    `  const sq = new Float64Array(${C}); // sums of squared deviations`,
    `  for (let c = 0; c < ${C}; c++) mean[c] = 0;`,
    ...sweep(["let acc = 0;"], [`acc += ${x}[at];`], ["mean[c] += acc;"]).map((l) => `  ${l}`),
    `  for (let c = 0; c < ${C}; c++) mean[c] /= ${countName};`,
    ...sweep(["const m = mean[c];", "let acc = 0;"], [`const d = ${x}[at] - m;`, "acc += d * d;"], ["sq[c] += acc;"]).map((l) => `  ${l}`),
    `  for (let c = 0; c < ${C}; c++) inv[c] = 1 / Math.sqrt(sq[c] / ${countName} + ${num(eps)});`,
    `} else {`,
    `  for (let c = 0; c < ${C}; c++) {`,
    `    mean[c] = ${rm}[c];`,
    `    inv[c] = 1 / Math.sqrt(${rv}[c] + ${num(eps)});`,
    `  }`,
    `}`,
    `// dbias = Σ dy, dweight = Σ dy·x̂ per channel (accumulated in doubles).`,
    `const sumDy = new Float64Array(${C});`,
    `const sumDyXhat = new Float64Array(${C});`,
    ...sweep(
      ["const m = mean[c], s = inv[c];", "let a = 0, b = 0;"],
      [`const g = ${dy}[at];`, "a += g;", `b += g * (${x}[at] - m) * s;`],
      ["sumDy[c] += a;", "sumDyXhat[c] += b;"],
    ),
    `for (let c = 0; c < ${C}; c++) {`,
    `  ${db}[c] = sumDy[c];`,
    `  ${dw}[c] = sumDyXhat[c];`,
    `}`,
    `// dx; in training the batch statistics' own dependence on x removes the mean of dy and of dy·x̂.`,
    `const centre = T.training ? 1 : 0;`,
    ...sweep(
      [
        `const m = mean[c], s = inv[c], k = ${w}[c] * s;`,
        `const meanDy = centre * sumDy[c] / ${countName}, meanDyXhat = centre * sumDyXhat[c] / ${countName};`,
      ],
      [`const xhat = (${x}[at] - m) * s;`, `${dx}[at] = k * (${dy}[at] - meanDy - xhat * meanDyXhat);`],
    ),
  );
  return lines.join("\n");
}

function indentBy(s: string, n: number): string {
  const pad = " ".repeat(n);
  return s
    .split("\n")
    .map((l) => (l.length ? pad + l : l))
    .join("\n");
}

// ---------------------------------------------------------------- layernorm

interface Block {
  size: string;
  reduced: boolean;
}

/**
 * The input viewed as runs of adjacent axes that are all normalised or all
 * kept (size-1 axes dropped): [N, C, H, W] over axes 2, 3 is [N·C kept, H·W
 * reduced]. Offsets and the weight's index (row-major over the normalised
 * axes in ascending order) are unchanged by the merge.
 */
function layernormBlocks(shape: readonly string[], axes: readonly number[]): Block[] {
  const blocks: { sizes: string[]; reduced: boolean }[] = [];
  shape.forEach((size, ax) => {
    if (size === "1") return;
    const reduced = axes.includes(ax);
    const last = blocks[blocks.length - 1];
    if (last && last.reduced === reduced) last.sizes.push(size);
    else blocks.push({ sizes: [size], reduced });
  });
  if (!blocks.some((bl) => bl.reduced)) blocks.push({ sizes: ["1"], reduced: true });
  return blocks.map((bl) => ({ size: productJs(bl.sizes), reduced: bl.reduced }));
}

function emitLayernorm(ctx: JsEmitCtx): string {
  const axes = ctx.node.attrs.axes as number[];
  const eps = num(ctx.node.attrs.eps as number);
  const [x, w, b, y] = [ctx.input(0), ctx.input(1), ctx.input(2), ctx.output(0)];
  const lines: string[] = [];
  const blocks = layernormBlocks(ctx.inShape(0), axes);
  const sizes = blocks.map((bl, j) => sizeConst(lines, `size${j}`, bl.size));
  const strides = blocks.map((_, j) => productJs(sizes.slice(j + 1)));
  const reducedIdx = blocks.flatMap((bl, j) => (bl.reduced ? [j] : []));
  const groupSize = sizeConst(lines, "groupSize", productJs(reducedIdx.map((j) => sizes[j]!)));
  const lanes = !blocks[blocks.length - 1]!.reduced;
  const keptIdx = blocks.flatMap((bl, j) => (!bl.reduced && !(lanes && j === blocks.length - 1) ? [j] : []));

  // Nested loops over the kept blocks (the groups); `base` = offset of the group's first element.
  const groupLoops = (inner: string[]): string[] => {
    let body = inner;
    let base = "0";
    const heads: string[] = [];
    for (const j of keptIdx) {
      heads.push(`for (let g${j} = 0; g${j} < ${sizes[j]}; g${j}++) {`);
      base = plus(base, times(`g${j}`, strides[j]!));
    }
    body = [`const base = ${base};`, ...body];
    for (let k = heads.length - 1; k >= 0; k--) body = [heads[k]!, ...body.map((l) => `  ${l}`), "}"];
    return body;
  };

  // Nested loops over the reduced blocks of one group. `at` = offset of the
  // element (or of lane 0), `k` = index into weight/bias. The last loop
  // visits consecutive memory when no lane block follows.
  const reducedLoops = (withAffine: boolean, body: (at: string, k: string) => string[]): string[] => {
    let at = "base";
    let k = "0";
    let affineStride = "1";
    const affineStrides = new Map<number, string>();
    for (let r = reducedIdx.length - 1; r >= 0; r--) {
      affineStrides.set(reducedIdx[r]!, affineStride);
      affineStride = times(affineStride, sizes[reducedIdx[r]!]!);
    }
    const out: string[] = [];
    let depth = 0;
    reducedIdx.forEach((j, r) => {
      const pad = "  ".repeat(depth);
      const last = r === reducedIdx.length - 1;
      out.push(`${pad}for (let r${j} = 0; r${j} < ${sizes[j]}; r${j}++) {`);
      depth++;
      const atNext = plus(at, times(`r${j}`, strides[j]!));
      const kNext = plus(k, times(`r${j}`, affineStrides.get(j)!));
      if (last) {
        at = atNext;
        k = kNext;
      } else {
        // hoist the partial offsets of the outer reduced loops
        out.push(`${"  ".repeat(depth)}const at${j} = ${atNext};`);
        at = `at${j}`;
        if (withAffine) {
          out.push(`${"  ".repeat(depth)}const k${j} = ${kNext};`);
          k = `k${j}`;
        }
      }
    });
    out.push(...body(at, k).map((l) => `${"  ".repeat(depth)}${l}`));
    for (let d = depth - 1; d >= 0; d--) out.push(`${"  ".repeat(d)}}`);
    return out;
  };

  if (!lanes) {
    // Each group is reduced with scalar accumulators.
    lines.push(
      ...groupLoops([
        "let sum = 0;",
        ...reducedLoops(false, (at) => [`sum += ${x}[${at}];`]),
        `const mean = sum / ${groupSize};`,
        "let sq = 0;",
        ...reducedLoops(false, (at) => [`const d = ${x}[${at}] - mean;`, "sq += d * d;"]),
        `const invStd = 1 / Math.sqrt(sq / ${groupSize} + ${eps});`,
        ...reducedLoops(true, (at, k) => [`${y}[${at}] = (${x}[${at}] - mean) * invStd * ${w}[${k}] + ${b}[${k}];`]),
      ]),
    );
    return lines.join("\n");
  }

  // The last axes are kept ("lanes"): every lane is its own group, so the
  // statistics of a row of lanes are accumulated side by side with the lane
  // loop innermost (contiguous).
  const L = sizes[sizes.length - 1]!;
  const lane = (stmt: string) => [`for (let l = 0; l < ${L}; l++) ${stmt}`];
  lines.push(
    `const mean = new Float64Array(${L});`,
    `const invStd = new Float64Array(${L}); // sum of squared deviations until the second pass ends`,
    ...groupLoops([
      ...lane("{ mean[l] = 0; invStd[l] = 0; }"),
      ...reducedLoops(false, (at) => [`const row = ${at};`, ...lane(`mean[l] += ${x}[row + l];`)]),
      ...lane(`mean[l] /= ${groupSize};`),
      ...reducedLoops(false, (at) => [`const row = ${at};`, ...lane(`{ const d = ${x}[row + l] - mean[l]; invStd[l] += d * d; }`)]),
      ...lane(`invStd[l] = 1 / Math.sqrt(invStd[l] / ${groupSize} + ${eps});`),
      ...reducedLoops(true, (at, k) => [
        `const row = ${at};`,
        `const wk = ${w}[${k}], bk = ${b}[${k}];`,
        ...lane(`${y}[row + l] = (${x}[row + l] - mean[l]) * invStd[l] * wk + bk;`),
      ]),
    ]),
  );
  return lines.join("\n");
}

// ---------------------------------------------------------------- dropout and noise

// y0 = x · mask, y1 = mask (0 or 1/(1 − p), all ones in inference). One draw per
// element in row-major order, as the reference's x.map.
function emitDropout(ctx: JsEmitCtx): string {
  const p = ctx.node.attrs.p as number;
  const [x, y, mask] = [ctx.input(0), ctx.output(0), ctx.output(1)];
  const lines: string[] = [];
  const n = sizeConst(lines, "n", ctx.inSize(0));
  const passThrough = [`for (let i = 0; i < ${n}; i++) {`, `  ${mask}[i] = 1;`, `  ${y}[i] = ${x}[i];`, "}"];
  if (p === 0) {
    // Nothing is ever dropped; skipping this node's own stream changes no other draw.
    lines.push(...passThrough);
    return lines.join("\n");
  }
  lines.push(
    "if (T.training) {",
    `  const next = T.rng(${JSON.stringify(ctx.rngKey)});`,
    `  const keep = ${num(1 / (1 - p))}; // 1 / (1 - p)`,
    `  for (let i = 0; i < ${n}; i++) {`,
    `    const m = next() < ${num(p)} ? 0 : keep;`,
    `    ${mask}[i] = m;`,
    `    ${y}[i] = ${x}[i] * m;`,
    "  }",
    "} else {",
    ...passThrough.map((l) => `  ${l}`),
    "}",
  );
  return lines.join("\n");
}

// y = x + std · N(0, 1) in training: one Box–Muller value (two uniform draws) per
// element, in row-major order, through T.normal so the formula is the reference's.
function emitGaussianNoise(ctx: JsEmitCtx): string {
  const std = ctx.node.attrs.std as number;
  const [x, y] = [ctx.input(0), ctx.output(0)];
  const lines: string[] = [];
  const n = sizeConst(lines, "n", ctx.inSize(0));
  const copy = `for (let i = 0; i < ${n}; i++) ${y}[i] = ${x}[i];`;
  if (std === 0) {
    lines.push(copy);
    return lines.join("\n");
  }
  lines.push(
    "if (T.training) {",
    `  const next = T.rng(${JSON.stringify(ctx.rngKey)});`,
    `  for (let i = 0; i < ${n}; i++) ${y}[i] = ${x}[i] + ${num(std)} * T.normal(next);`,
    "} else {",
    `  ${copy}`,
    "}",
  );
  return lines.join("\n");
}

export const kernels: JsKernel[] = [
  { op: "batchnorm", emit: emitBatchnorm },
  { op: "batchnorm_grad", emit: emitBatchnormGrad },
  { op: "layernorm", emit: emitLayernorm },
  { op: "dropout", emit: emitDropout },
  { op: "gaussian_noise", emit: emitGaussianNoise },
];

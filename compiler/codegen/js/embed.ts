// JS kernel for the `embedding` op (compiler/ops/embed.ts): a row gather
// y[k, :] = weight[tokens[k], :] over the flattened token tensor. Every token
// is range-checked before its row is read (T.fail names the token and its
// position, never an out-of-bounds read); padding_idx tokens give zero rows,
// as the reference does.
//
// `embedding_grad` (tokens, dy) -> dw [vocab, dim]: the table's gradient as a
// sequential scatter-add in position order (dw[tokens[k], :] += dy[k, :]),
// deterministic and the order the WGSL twin's per-row sums follow; padding_idx
// tokens add nothing, out-of-range tokens fail as in the forward.

import type { Dim } from "../../ir/dims.ts";
import { typeToString } from "../../ir/types.ts";
import type { JsEmitCtx, JsKernel } from "./kernel.ts";

const isLiteral = (s: string) => /^\d+$/.test(s);

/** A value inside a generated template literal: literals inline, expressions interpolated. */
const interp = (js: string) => (isLiteral(js) ? js : `\${${js}}`);

/** A size as JS: the literal, or a local read once from S. */
function sizeLocal(ctx: JsEmitCtx, d: Dim | string, name: string, decls: string[]): string {
  const js = typeof d === "string" ? d : ctx.dim(d);
  if (isLiteral(js)) return js;
  decls.push(`const ${name} = ${js};`);
  return name;
}

/** `a * b`, folding 1 and literal products. */
function mulJs(a: string, b: string): string {
  if (a === "1") return b;
  if (b === "1") return a;
  if (isLiteral(a) && isLiteral(b)) return String(Number(a) * Number(b));
  return `${a} * ${b}`;
}

/**
 * The multi-index of flat position `k` in a row-major shape, as template-literal
 * pieces (for the error message only: divisions are fine off the hot path).
 */
function unravelJs(shape: readonly string[], k: string): string {
  const paren = (s: string) => (/^[\w.]+$/.test(s) ? s : `(${s})`);
  const parts = shape.map((_, i) => {
    const inner = shape.slice(i + 1).map(paren);
    const stride = inner.length ? inner.join(" * ") : "1";
    const quotient = stride === "1" ? k : `Math.floor(${k} / ${inner.length > 1 ? `(${stride})` : stride})`;
    return i === 0 ? quotient : `${quotient} % ${paren(shape[i]!)}`;
  });
  return parts.map(interp).join(", ");
}

function emitEmbedding(ctx: JsEmitCtx): string {
  const paddingIdx = ctx.node.attrs.paddingIdx as number | null;
  const tokenShape = ctx.inShape(0);
  const [vocabJs, dimJs] = ctx.inShape(1) as [string, string];
  const decls: string[] = [];
  const count = sizeLocal(ctx, ctx.inSize(0), "count", decls);
  const vocab = sizeLocal(ctx, vocabJs, "vocab", decls);
  const dim = sizeLocal(ctx, dimJs, "dim", decls);
  const tokens = ctx.input(0);
  const weight = ctx.input(1);
  const y = ctx.output(0);

  const copyRow = (target: string, value: string) =>
    dim === "1" ? `${y}[${target}] = ${value === "0" ? "0" : `${weight}[row]`};` : `for (let j = 0; j < ${dim}; j++) ${y}[${target} + j] = ${value === "0" ? "0" : `${weight}[row + j]`};`;
  const lines = [
    `// Row gather: y[k, :] = weight[tokens[k], :] for every token of ${typeToString(ctx.node.inputs[0]!.type)} (table ${typeToString(ctx.node.inputs[1]!.type)})${paddingIdx !== null ? `; padding_idx ${paddingIdx} gives zeros` : ""}.`,
    ...decls,
    `for (let k = 0; k < ${count}; k++) {`,
    `  const token = ${tokens}[k];`,
    `  if (!(token >= 0 && token < ${vocab})) {`,
    `    T.fail(\`token \${token} at position [${unravelJs(tokenShape, "k")}] is outside the vocabulary [0, ${interp(vocab)})\`);`,
    `  }`,
    `  const out = ${mulJs("k", dim)};`,
  ];
  if (paddingIdx !== null) {
    lines.push(`  if (token === ${paddingIdx}) {`, `    ${copyRow("out", "0")}`, `    continue;`, `  }`);
  }
  lines.push(`  const row = ${mulJs("token", dim)};`, `  ${copyRow("out", "row")}`, `}`);
  return lines.join("\n");
}

function emitEmbeddingGrad(ctx: JsEmitCtx): string {
  const paddingIdx = ctx.node.attrs.paddingIdx as number | null;
  const tokenShape = ctx.inShape(0);
  const [vocabJs, dimJs] = ctx.outShape(0) as [string, string];
  const decls: string[] = [];
  const count = sizeLocal(ctx, ctx.inSize(0), "count", decls);
  const vocab = sizeLocal(ctx, vocabJs, "vocab", decls);
  const dim = sizeLocal(ctx, dimJs, "dim", decls);
  const tokens = ctx.input(0);
  const dy = ctx.input(1);
  const dw = ctx.output(0);
  const lines = [
    `// Table gradient, a scatter-add in position order: dw[tokens[k], :] += dy[k, :] for every token of ${typeToString(ctx.node.inputs[0]!.type)} (table [${ctx.node.outputs[0]!.type.shape.join(", ")}])${paddingIdx !== null ? `; padding_idx ${paddingIdx} adds nothing` : ""}.`,
    ...decls,
    `${dw}.fill(0);`,
    `for (let k = 0; k < ${count}; k++) {`,
    `  const token = ${tokens}[k];`,
    `  if (!(token >= 0 && token < ${vocab})) {`,
    `    T.fail(\`token \${token} at position [${unravelJs(tokenShape, "k")}] is outside the vocabulary [0, ${interp(vocab)})\`);`,
    `  }`,
  ];
  if (paddingIdx !== null) lines.push(`  if (token === ${paddingIdx}) continue;`);
  lines.push(
    `  const row = ${mulJs("token", dim)}, at = ${mulJs("k", dim)};`,
    dim === "1" ? `  ${dw}[row] += ${dy}[at];` : `  for (let j = 0; j < ${dim}; j++) ${dw}[row + j] += ${dy}[at + j];`,
    `}`,
  );
  return lines.join("\n");
}

export const kernels: JsKernel[] = [
  { op: "embedding", emit: emitEmbedding },
  { op: "embedding_grad", emit: emitEmbeddingGrad },
];

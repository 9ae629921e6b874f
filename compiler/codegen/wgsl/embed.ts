// WGSL kernel for the `embedding` op (compiler/ops/embed.ts): a row gather
// y[k, :] = weight[tokens[k], :], one invocation per output element. Adjacent
// invocations copy adjacent elements of a row, so reads and writes are
// contiguous on a GPU and vectorise across lanes on a CPU adapter; the token is
// re-read per element, which is a broadcast load within a row.
//
// A token outside [0, vocab) is never used as an index: the invocation reports it
// (with the token's flat position in the token tensor) and writes a zero instead,
// and the run rejects. padding_idx tokens give zero rows, as the reference does.
//
// `embedding_grad` (tokens, dy) -> dw [vocab, dim], the table's gradient, a
// scatter-add of dy rows by token id. WGSL has no float atomics, and racing
// read-modify-writes would lose updates, so it is two deterministic passes
// sharing an i32 scratch t0 of vocab + 1 + tokens entries:
//  1. one invocation (the whole pass is sequential, O(vocab + tokens)) does a
//     counting sort of the token positions by id: t0[v] ends up as the end of
//     row v's bucket, and t0[vocab + 1 + q] holds the positions, increasing
//     within each bucket. Out-of-range tokens are reported (as the forward
//     does) and left out; padding_idx tokens are left out (zero gradient row).
//  2. one invocation per (row, feature) sums its bucket's dy in position order,
//     the order of the sequential scatter (JS target, reference), and writes
//     every element of dw (0 for rows no token names).

import { typeToString } from "../../ir/types.ts";
import { i32Of } from "./conv.ts";
import { flatDispatch, type WgslKernel, type WgslKernelResult } from "./kernel.ts";

const ERR_TOKEN = 1;

export const kernels: WgslKernel[] = [
  {
    op: "embedding",
    emit(ctx) {
      const paddingIdx = ctx.node.attrs.paddingIdx as number | null;
      const [vocabU32, dim] = ctx.inShape(1) as [string, string];
      const vocab = /^\d+u$/.test(vocabU32) ? vocabU32.slice(0, -1) : `i32(${vocabU32})`;
      const f = flatDispatch(ctx.outSizeJs(0));
      const outside = `token < 0 || token >= ${vocab}`;
      const zero = paddingIdx === null ? outside : `${outside} || token == ${paddingIdx}`;
      const code = [
        `// Row gather over ${typeToString(ctx.node.inputs[0]!.type)} tokens from a ${typeToString(ctx.node.inputs[1]!.type)} table${paddingIdx !== null ? `; padding_idx ${paddingIdx} gives zeros` : ""}.`,
        `@compute @workgroup_size(64)`,
        `fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {`,
        `  let i = ${f.index};`,
        `  if (i >= ${ctx.outSize(0)}) { return; }`,
        `  let k = i / ${dim};`,
        `  let j = i - k * ${dim};`,
        `  let token = x0[k];`,
        `  if (${zero}) {`,
        `    // Out of range: report once per token (from its first element), never read.`,
        `    if (j == 0u && (${outside})) { report_error(${ERR_TOKEN}u, token, k); }`,
        `    y0[i] = 0.0;`,
        `    return;`,
        `  }`,
        `  y0[i] = x1[u32(token) * ${dim} + j];`,
        `}`,
      ].join("\n");
      return {
        passes: [{ code, dispatch: f.dispatch, usesError: true }],
        errors: { [ERR_TOKEN]: `token {a} at flat position {b} is outside the vocabulary [0, ${ctx.node.inputs[1]!.type.shape[0]!.toString()})` },
      };
    },
  },
  { op: "embedding_grad", emit: emitEmbeddingGrad },
];

function emitEmbeddingGrad(ctx: Parameters<WgslKernel["emit"]>[0]): WgslKernelResult {
  const paddingIdx = ctx.node.attrs.paddingIdx as number | null;
  const [vocabU32, dimU32] = ctx.outShape(0) as [string, string];
  const vocab = i32Of(vocabU32);
  const dim = i32Of(dimU32);
  const count = i32Of(ctx.inSize(0));
  const vocabJs = ctx.dimJs(ctx.node.outputs[0]!.type.shape[0]!);
  const scratch = [{ type: "i32", size: `(${vocabJs}) + 1 + (${ctx.inSizeJs(0)})` }];
  const tokens = `tokens ${typeToString(ctx.node.inputs[0]!.type)}, dy ${typeToString(ctx.node.inputs[1]!.type)}`;
  const skip = paddingIdx === null ? `token < 0 || token >= V` : `token < 0 || token >= V || token == ${paddingIdx}`;
  const sort = [
    `// embedding backward, pass 1 of 2, a single invocation: counting sort of the token positions by id (${tokens})${paddingIdx !== null ? `; padding_idx ${paddingIdx} is left out (zero gradient row)` : ""}.`,
    `// t0[0..V]: bucket ends per row (t0[v - 1] .. t0[v] is row v); t0[V + 1 + q]: positions, increasing within a bucket.`,
    `@compute @workgroup_size(1)`,
    `fn main() {`,
    `  let V = ${vocab};`,
    `  let T = ${count};`,
    `  for (var v = 0; v <= V; v++) { t0[v] = 0; }`,
    `  // count the tokens of each id into t0[id + 1]; an out-of-range token is reported and never used`,
    `  for (var k = 0; k < T; k++) {`,
    `    let token = x0[k];`,
    `    if (token < 0 || token >= V) { report_error(${ERR_TOKEN}u, token, u32(k)); continue; }`,
    ...(paddingIdx === null ? [] : [`    if (token == ${paddingIdx}) { continue; }`]),
    `    t0[token + 1] += 1;`,
    `  }`,
    `  // prefix sums: t0[v] = where row v's bucket starts`,
    `  for (var v = 1; v <= V; v++) { t0[v] += t0[v - 1]; }`,
    `  // place the positions in increasing order; t0[v] advances to the end of row v's bucket`,
    `  for (var k = 0; k < T; k++) {`,
    `    let token = x0[k];`,
    `    if (${skip}) { continue; }`,
    `    t0[V + 1 + t0[token]] = k;`,
    `    t0[token] += 1;`,
    `  }`,
    `}`,
  ].join("\n");
  const f = flatDispatch(ctx.outSizeJs(0));
  const gather = [
    `// embedding backward, pass 2 of 2, one invocation per element of dw [${ctx.node.outputs[0]!.type.shape.join(", ")}]: dw[v, j] = the sum of dy[k, j] over row v's bucket, in position order (no atomics, deterministic).`,
    `@compute @workgroup_size(64)`,
    `fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {`,
    `  let i = i32(${f.index});`,
    `  let D = ${dim};`,
    `  let V = ${vocab};`,
    `  if (i >= V * D) { return; }`,
    `  let v = i / D;`,
    `  let j = i - v * D;`,
    `  var begin = 0;`,
    `  if (v > 0) { begin = t0[v - 1]; }`,
    `  let end = t0[v];`,
    `  var acc = 0.0;`,
    `  for (var q = begin; q < end; q++) { acc += x1[t0[V + 1 + q] * D + j]; }`,
    `  y0[i] = acc;`,
    `}`,
  ].join("\n");
  return {
    passes: [
      { code: sort, dispatch: ["1"], scratch, usesError: true },
      { code: gather, dispatch: f.dispatch, scratch },
    ],
    errors: { [ERR_TOKEN]: `token {a} at flat position {b} is outside the vocabulary [0, ${ctx.node.outputs[0]!.type.shape[0]!.toString()})` },
  };
}

// WGSL kernel for the `embedding` op (compiler/ops/embed.ts): a row gather
// y[k, :] = weight[tokens[k], :], one invocation per output element. Adjacent
// invocations copy adjacent elements of a row, so reads and writes are
// contiguous on a GPU and vectorise across lanes on a CPU adapter; the token is
// re-read per element, which is a broadcast load within a row.
//
// A token outside [0, vocab) is never used as an index: the invocation reports it
// (with the token's flat position in the token tensor) and writes a zero instead,
// and the run rejects. padding_idx tokens give zero rows, as the reference does.

import { typeToString } from "../../ir/types.ts";
import { flatDispatch, type WgslKernel } from "./kernel.ts";

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
];

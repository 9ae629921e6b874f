// Embedding lookup (DSL.md §6 "Embedding"): token ids index the rows of a
// [vocab, dim] table, as PyTorch's nn.Embedding.
//
// IR op `embedding {paddingIdx: number | null}`, inputs (tokens: i32[...], weight: f32[V, D])
// → f32[..., D]. A token outside [0, V) is a runtime error, never a silent read.
//
// padding_idx. In the DSL the default -1 means "no padding index" (PyTorch would read
// -1 as the last row); any other negative value is rejected rather than guessed at.
// PyTorch zero-initialises the padding row and never gives it gradient, so its lookups
// are zero for the whole life of a model trained there. An InitSpec cannot zero a
// single row, so instead the op itself returns zeros for padding tokens (and the
// gradient rule will give that row zero gradient): every output equals PyTorch's in
// every state PyTorch can reach. The deviation: our stored row keeps its normal(0, 1)
// initial values (never read), so a freshly initialised model exported to PyTorch
// would see them; weights loaded from PyTorch behave identically.
//
// Gradient: d weight is a scatter-add of the dy rows by token id (rows of tokens
// that repeat add up, in position order), the padding_idx row gets zero, and the
// token ids carry none. It is the backward IR op
//   embedding_grad (tokens: i32[...], dy: f32[..., D]) {paddingIdx, vocab: Dim} → f32[vocab, D]
// whose kernels are deterministic (see codegen/wgsl/embed.ts: a counting sort of
// the positions by token, then one invocation per table element summing its
// bucket, with no float atomics).

import type { Dim } from "../ir/dims.ts";
import { tensorType, typeToString, type TensorType } from "../ir/types.ts";
import { RefTensor } from "../reference/tensor.ts";
import { defineOp, type BuiltinDef, type OpDef } from "./op.ts";

type EmbeddingAttrs = { paddingIdx: number | null };

const embeddingOp = defineOp<EmbeddingAttrs>({
  name: "embedding",
  nondifferentiable: [0],
  infer(inputs, _a, ctx) {
    const [tokens, weight] = inputs as [TensorType, TensorType];
    if (tokens.dtype !== "i32") {
      ctx.fail("E213", `tokens must be i32 token ids, found ${typeToString(tokens)}`, {
        notes: [ctx.describeInput(0)],
        hint: "declare the token input as i32",
      });
    }
    if (weight.dtype !== "f32") ctx.fail("E213", `the embedding table must be f32, found ${typeToString(weight)}`, { notes: [ctx.describeInput(1)] });
    if (weight.shape.length !== 2) {
      ctx.fail("E210", `the embedding table must have rank 2 [vocab, dim], found ${typeToString(weight)}`, { notes: [ctx.describeInput(1)] });
    }
    return [{ dtype: "f32", shape: [...tokens.shape, weight.shape[1]!] }];
  },
  evaluate([tokens, weight], a, ctx) {
    const [vocab, dim] = weight!.shape as [number, number];
    const out = RefTensor.zeros([...tokens!.shape, dim]);
    for (let k = 0; k < tokens!.size; k++) {
      const token = tokens!.data[k]!;
      if (!(token >= 0 && token < vocab)) {
        ctx.fail(`token ${token} at position [${tokens!.unravel(k).join(", ")}] is outside the vocabulary [0, ${vocab})`);
      }
      if (token === a.paddingIdx) continue;
      for (let j = 0; j < dim; j++) out.data[k * dim + j] = weight!.data[token * dim + j]!;
    }
    return [out];
  },
  grad([tokens, weight], _outputs, [dy], a, ctx) {
    const attrs: EmbeddingGradAttrs = { paddingIdx: a.paddingIdx, vocab: weight!.type.shape[0]! };
    return [undefined, ctx.emit1("embedding_grad", [tokens!, dy!], attrs)];
  },
});

type EmbeddingGradAttrs = { paddingIdx: number | null; vocab: Dim };

/**
 * d weight of `embedding`: dw[v, :] = Σ dy[k, :] over the positions k (in
 * increasing order) whose token is v; zero for the padding_idx row and for
 * rows no token names. A token outside [0, vocab) is the same runtime error
 * as in the forward (the forward may be pruned from a gradient-only run).
 */
const embeddingGradOp = defineOp<EmbeddingGradAttrs>({
  name: "embedding_grad",
  infer(inputs, a, ctx) {
    const [tokens, dy] = inputs as [TensorType, TensorType];
    const r = tokens.shape.length;
    if (tokens.dtype !== "i32" || dy.dtype !== "f32" || dy.shape.length !== r + 1 || tokens.shape.some((d, i) => !d.equals(dy.shape[i]!))) {
      ctx.fail("E203", `embedding_grad needs i32 tokens [...] and an f32 gradient [..., dim], found ${typeToString(tokens)} and ${typeToString(dy)}`);
    }
    return [{ dtype: "f32", shape: [a.vocab, dy.shape[r]!] }];
  },
  evaluate([tokens, dy], a, ctx) {
    const [vocab, dim] = ctx.outShapes[0]! as [number, number];
    const dw = RefTensor.zeros([vocab, dim]);
    for (let k = 0; k < tokens!.size; k++) {
      const token = tokens!.data[k]!;
      if (!(token >= 0 && token < vocab)) {
        ctx.fail(`token ${token} at position [${tokens!.unravel(k).join(", ")}] is outside the vocabulary [0, ${vocab})`);
      }
      if (token === a.paddingIdx) continue;
      for (let j = 0; j < dim; j++) dw.data[token * dim + j] += dy!.data[k * dim + j]!;
    }
    return [dw];
  },
});

export const ops: OpDef[] = [embeddingOp, embeddingGradOp];

export const builtins: BuiltinDef[] = [
  {
    names: ["embed"],
    signature: () => ["tokens", "vocab", "dim", "padding_idx", "weight"],
    ownsParams: true,
    lower(args, ctx) {
      const tokens = args.tensor("tokens");
      // With a tied table (weight=t), vocab and dim may be left out and are read from t.
      const given = args.raw("weight");
      const tiedValue = given?.kind === "tensor" ? given.value : undefined;
      const tied = tiedValue?.type;
      const staticSize = (axis: number, name: string): number => {
        if (!tied || args.has(name)) return args.positiveInt(name);
        const n = tied.shape.length === 2 ? tied.shape[axis]!.constValue() : undefined;
        if (n === undefined) {
          return ctx.fail("E216", `tensor passed as weight= must be a static f32[vocab, dim] table, found ${typeToString(tied)}`, { arg: "weight", notes: [ctx.describe(tiedValue!)] });
        }
        return n;
      };
      const vocab = staticSize(0, "vocab");
      const dim = staticSize(1, "dim");
      const paddingIdx = args.int("padding_idx", -1);
      if (paddingIdx !== -1 && !(paddingIdx >= 0 && paddingIdx < vocab)) {
        args.fail("padding_idx", `padding_idx must be in [0, ${vocab}) or -1 for none, found ${paddingIdx}`, "negative values do not count from the end here; -1 means no padding index");
      }
      const weight = ctx.param("weight", tensorType("f32", [vocab, dim]), { kind: "normal", mean: 0, std: 1 });
      return ctx.emit1("embedding", [tokens, weight], { paddingIdx: paddingIdx === -1 ? null : paddingIdx });
    },
  },
];

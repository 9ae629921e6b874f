// IR node %2 = embedding (emb)
function k2_embedding_emb(S, T, x0, x1, y0) {
  // Row gather: y[k, :] = weight[tokens[k], :] for every token of i32[N, L] (table f32[5, 3]); padding_idx 2 gives zeros.
  const count = S.N * S.L;
  for (let k = 0; k < count; k++) {
    const token = x0[k];
    if (!(token >= 0 && token < 5)) {
      T.fail(`token ${token} at position [${Math.floor(k / S.L)}, ${k % S.L}] is outside the vocabulary [0, 5)`);
    }
    const out = k * 3;
    if (token === 2) {
      for (let j = 0; j < 3; j++) y0[out + j] = 0;
      continue;
    }
    const row = token * 3;
    for (let j = 0; j < 3; j++) y0[out + j] = x1[row + j];
  }
}
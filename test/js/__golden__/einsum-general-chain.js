// IR node %3 = einsum (chain)
function k3_einsum_chain(S, T, x0, x1, x2, y0) {
  // y0[i, l] = Σ_j,k x0[i, j] · x1[j, k] · x2[k, l]
  // loop nest: output i, l, then summing k, j (accumulated in a double)
  const size_i = S.N;
  for (let i = 0; i < size_i; i++) {
    const x0_i = i * 3;
    const y0_i = i * 5;
    for (let l = 0; l < 5; l++) {
      const y0_l = y0_i + l;
      let acc = 0;
      for (let k = 0; k < 4; k++) {
        const x2_k = l + k * 5;
        const p_k = x2[x2_k];
        for (let j = 0; j < 3; j++) {
          acc += p_k * x0[x0_i + j] * x1[k + j * 4];
        }
      }
      y0[y0_l] = acc;
    }
  }
}
// IR node %2 = einsum (f1)
function k2_einsum_f1(S, T, x0, x1, y0) {
  // y0[…0, o] = Σ_i x0[…0, i] · x1[o, i]
  // GEMM: 4 outputs per step along o (lanes of x1), summing over i innermost (contiguous in x0 and x1)
  const size_m = S.N;
  for (let m = 0; m < size_m; m++) {
    const a_m = m * 400;
    const o_m = m * 120;
    for (let n = 0; n < 120; n += 4) {
      const b_n = n * 400;
      const o_n = o_m + n;
      let s0 = 0, s1 = 0, s2 = 0, s3 = 0;
      for (let k = 0; k < 400; k++) {
        const b_k = b_n + k;
        const av = x0[a_m + k];
        s0 += av * x1[b_k];
        s1 += av * x1[b_k + 400];
        s2 += av * x1[b_k + 800];
        s3 += av * x1[b_k + 1200];
      }
      y0[o_n] = s0;
      y0[o_n + 1] = s1;
      y0[o_n + 2] = s2;
      y0[o_n + 3] = s3;
    }
  }
}
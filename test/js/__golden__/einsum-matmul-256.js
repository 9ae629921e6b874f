// IR node %2 = einsum (mm)
function k2_einsum_mm(S, T, x0, x1, y0) {
  // y0[m, n] = Σ_k x0[m, k] · x1[k, n]
  // GEMM: 4 outputs per step along n (lanes of x1), summing over k innermost (contiguous in x0)
  const size_m = S.M;
  for (let m = 0; m < size_m; m++) {
    const a_m = m * 256;
    const o_m = m * 256;
    for (let n = 0; n < 256; n += 4) {
      const o_n = o_m + n;
      let s0 = 0, s1 = 0, s2 = 0, s3 = 0;
      for (let k = 0; k < 256; k++) {
        const b_k = n + k * 256;
        const av = x0[a_m + k];
        s0 += av * x1[b_k];
        s1 += av * x1[b_k + 1];
        s2 += av * x1[b_k + 2];
        s3 += av * x1[b_k + 3];
      }
      y0[o_n] = s0;
      y0[o_n + 1] = s1;
      y0[o_n + 2] = s2;
      y0[o_n + 3] = s3;
    }
  }
}
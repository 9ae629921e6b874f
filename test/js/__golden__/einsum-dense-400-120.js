// IR node %2 = einsum (f1)
function k2_einsum_f1(S, T, x0, x1, y0) {
  // y0[…0, o] = Σ_i x0[…0, i] · x1[o, i]
  // GEMM: blocks of 2 …0 × 4 o outputs, summing over i innermost (contiguous in x0 and x1)
  const size_m = S.N;
  let m = 0;
  for (; m < size_m - 1; m += 2) {
    const a_m = m * 400;
    const o_m = m * 120;
    for (let n = 0; n < 120; n += 4) {
      const b_n = n * 400;
      const o_n = o_m + n;
      let s00 = 0, s01 = 0, s02 = 0, s03 = 0, s10 = 0, s11 = 0, s12 = 0, s13 = 0;
      for (let k = 0; k < 400; k++) {
        const a_k = a_m + k;
        const b_k = b_n + k;
        const av0 = x0[a_k], av1 = x0[a_k + 400];
        const bv0 = x1[b_k], bv1 = x1[b_k + 400], bv2 = x1[b_k + 800], bv3 = x1[b_k + 1200];
        s00 += av0 * bv0; s01 += av0 * bv1; s02 += av0 * bv2; s03 += av0 * bv3;
        s10 += av1 * bv0; s11 += av1 * bv1; s12 += av1 * bv2; s13 += av1 * bv3;
      }
      y0[o_n] = s00; y0[o_n + 1] = s01; y0[o_n + 2] = s02; y0[o_n + 3] = s03;
      y0[o_n + 120] = s10; y0[o_n + 121] = s11; y0[o_n + 122] = s12; y0[o_n + 123] = s13;
    }
  }
  for (; m < size_m; m++) {
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
      y0[o_n] = s0; y0[o_n + 1] = s1; y0[o_n + 2] = s2; y0[o_n + 3] = s3;
    }
  }
}
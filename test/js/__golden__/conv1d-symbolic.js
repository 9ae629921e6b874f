// IR node %3 = conv (c1)
function k3_conv_c1(S, T, x0, x1, x2, y0) {
  // conv1d: x [S.N, 4, S.L] * w [8, 4, 3] -> y [S.N, 8, S.L]; stride [1], dilation [1], padding [1]..[1]
  const N = S.N;
  const L = S.L;
  if (L < 1) T.fail("kernel 3 is larger than the padded input " + (L + 2) + " along dim 2");
  const LP = L + 2;
  // each sample is copied once into zero-padded planes, so no tap tests a bound
  const xp = new Float32Array(4 * LP);
  // 8 filters accumulated at once, in double, one output plane each
  const acc = new Float64Array(8 * L);
  const off2 = 2 * L;
  const off3 = 3 * L;
  const off4 = 4 * L;
  const off5 = 5 * L;
  const off6 = 6 * L;
  const off7 = 7 * L;
  for (let n = 0; n < N; n++) {
    for (let c = 0; c < 4; c++) {
      const sc = (4 * n + c) * L;
      const tc = c * LP;
      for (let l = 0; l < L; l++) xp[tc + l + 1] = x0[sc + l];
    }
    for (let fl = 0; fl < 8; fl += 8) {
      const b0 = x2[fl], b1 = x2[fl + 1], b2 = x2[fl + 2], b3 = x2[fl + 3], b4 = x2[fl + 4], b5 = x2[fl + 5], b6 = x2[fl + 6], b7 = x2[fl + 7];
      for (let i = 0; i < L; i++) {
        acc[i] = b0;
        acc[L + i] = b1;
        acc[off2 + i] = b2;
        acc[off3 + i] = b3;
        acc[off4 + i] = b4;
        acc[off5 + i] = b5;
        acc[off6 + i] = b6;
        acc[off7 + i] = b7;
      }
      for (let cl = 0; cl < 4; cl++) {
        const xc = cl * LP;
        const wb0 = 3 * (4 * fl + cl), wb1 = wb0 + 12, wb2 = wb0 + 24, wb3 = wb0 + 36, wb4 = wb0 + 48, wb5 = wb0 + 60, wb6 = wb0 + 72, wb7 = wb0 + 84;
        const w0_0 = x1[wb0], w0_1 = x1[wb0 + 1], w0_2 = x1[wb0 + 2];
        const w1_0 = x1[wb1], w1_1 = x1[wb1 + 1], w1_2 = x1[wb1 + 2];
        const w2_0 = x1[wb2], w2_1 = x1[wb2 + 1], w2_2 = x1[wb2 + 2];
        const w3_0 = x1[wb3], w3_1 = x1[wb3 + 1], w3_2 = x1[wb3 + 2];
        const w4_0 = x1[wb4], w4_1 = x1[wb4 + 1], w4_2 = x1[wb4 + 2];
        const w5_0 = x1[wb5], w5_1 = x1[wb5 + 1], w5_2 = x1[wb5 + 2];
        const w6_0 = x1[wb6], w6_1 = x1[wb6 + 1], w6_2 = x1[wb6 + 2];
        const w7_0 = x1[wb7], w7_1 = x1[wb7 + 1], w7_2 = x1[wb7 + 2];
        // stride 1: each row's inputs slide through locals, one new load per row and step
        let p0_0 = xp[xc], p0_1 = xp[xc + 1];
        for (let ol = 0; ol < L; ol++) {
          const p0_2 = xp[xc + ol + 2];
          acc[ol] += w0_0 * p0_0 + w0_1 * p0_1 + w0_2 * p0_2;
          acc[L + ol] += w1_0 * p0_0 + w1_1 * p0_1 + w1_2 * p0_2;
          acc[off2 + ol] += w2_0 * p0_0 + w2_1 * p0_1 + w2_2 * p0_2;
          acc[off3 + ol] += w3_0 * p0_0 + w3_1 * p0_1 + w3_2 * p0_2;
          acc[off4 + ol] += w4_0 * p0_0 + w4_1 * p0_1 + w4_2 * p0_2;
          acc[off5 + ol] += w5_0 * p0_0 + w5_1 * p0_1 + w5_2 * p0_2;
          acc[off6 + ol] += w6_0 * p0_0 + w6_1 * p0_1 + w6_2 * p0_2;
          acc[off7 + ol] += w7_0 * p0_0 + w7_1 * p0_1 + w7_2 * p0_2;
          p0_0 = p0_1; p0_1 = p0_2;
        }
      }
      const yb = (8 * n + fl) * L;
      for (let i = 0; i < 8 * L; i++) y0[yb + i] = acc[i];
    }
  }
}
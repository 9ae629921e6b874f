// IR node %3 = conv (c1)
function k3_conv_c1(S, T, x0, x1, x2, y0) {
  // conv2d: x [S.N, 6, 14, 14] * w [16, 6, 5, 5] -> y [S.N, 16, 10, 10]; stride [1, 1], dilation [1, 1], padding [0, 0]..[0, 0]
  const N = S.N;
  // 2 filters accumulated at once, in double, one output plane each
  const acc = new Float64Array(200);
  for (let n = 0; n < N; n++) {
    const xn = 1176 * n;
    for (let fl = 0; fl < 16; fl += 2) {
      const b0 = x2[fl], b1 = x2[fl + 1];
      for (let i = 0; i < 100; i++) {
        acc[i] = b0;
        acc[i + 100] = b1;
      }
      for (let cl = 0; cl < 6; cl++) {
        const xc = xn + 196 * cl;
        const wb0 = 25 * (6 * fl + cl), wb1 = wb0 + 150;
        const w0_0 = x1[wb0], w0_1 = x1[wb0 + 1], w0_2 = x1[wb0 + 2], w0_3 = x1[wb0 + 3], w0_4 = x1[wb0 + 4], w0_5 = x1[wb0 + 5], w0_6 = x1[wb0 + 6], w0_7 = x1[wb0 + 7], w0_8 = x1[wb0 + 8], w0_9 = x1[wb0 + 9], w0_10 = x1[wb0 + 10], w0_11 = x1[wb0 + 11], w0_12 = x1[wb0 + 12], w0_13 = x1[wb0 + 13], w0_14 = x1[wb0 + 14], w0_15 = x1[wb0 + 15], w0_16 = x1[wb0 + 16], w0_17 = x1[wb0 + 17], w0_18 = x1[wb0 + 18], w0_19 = x1[wb0 + 19], w0_20 = x1[wb0 + 20], w0_21 = x1[wb0 + 21], w0_22 = x1[wb0 + 22], w0_23 = x1[wb0 + 23], w0_24 = x1[wb0 + 24];
        const w1_0 = x1[wb1], w1_1 = x1[wb1 + 1], w1_2 = x1[wb1 + 2], w1_3 = x1[wb1 + 3], w1_4 = x1[wb1 + 4], w1_5 = x1[wb1 + 5], w1_6 = x1[wb1 + 6], w1_7 = x1[wb1 + 7], w1_8 = x1[wb1 + 8], w1_9 = x1[wb1 + 9], w1_10 = x1[wb1 + 10], w1_11 = x1[wb1 + 11], w1_12 = x1[wb1 + 12], w1_13 = x1[wb1 + 13], w1_14 = x1[wb1 + 14], w1_15 = x1[wb1 + 15], w1_16 = x1[wb1 + 16], w1_17 = x1[wb1 + 17], w1_18 = x1[wb1 + 18], w1_19 = x1[wb1 + 19], w1_20 = x1[wb1 + 20], w1_21 = x1[wb1 + 21], w1_22 = x1[wb1 + 22], w1_23 = x1[wb1 + 23], w1_24 = x1[wb1 + 24];
        for (let oh = 0; oh < 10; oh++) {
          const xh = xc + 14 * oh;
          const ah = 10 * oh;
          const r1 = xh + 14;
          const r2 = xh + 28;
          const r3 = xh + 42;
          const r4 = xh + 56;
          const a1 = ah + 100;
          // stride 1: each row's inputs slide through locals, one new load per row and step
          let p0_0 = x0[xh], p0_1 = x0[xh + 1], p0_2 = x0[xh + 2], p0_3 = x0[xh + 3], p1_0 = x0[r1], p1_1 = x0[r1 + 1], p1_2 = x0[r1 + 2], p1_3 = x0[r1 + 3], p2_0 = x0[r2], p2_1 = x0[r2 + 1], p2_2 = x0[r2 + 2], p2_3 = x0[r2 + 3], p3_0 = x0[r3], p3_1 = x0[r3 + 1], p3_2 = x0[r3 + 2], p3_3 = x0[r3 + 3], p4_0 = x0[r4], p4_1 = x0[r4 + 1], p4_2 = x0[r4 + 2], p4_3 = x0[r4 + 3];
          for (let ow = 0; ow < 10; ow++) {
            const p0_4 = x0[xh + ow + 4], p1_4 = x0[r1 + ow + 4], p2_4 = x0[r2 + ow + 4], p3_4 = x0[r3 + ow + 4], p4_4 = x0[r4 + ow + 4];
            acc[ah + ow] += w0_0 * p0_0 + w0_1 * p0_1 + w0_2 * p0_2 + w0_3 * p0_3 + w0_4 * p0_4 + w0_5 * p1_0 + w0_6 * p1_1 + w0_7 * p1_2 + w0_8 * p1_3 + w0_9 * p1_4 + w0_10 * p2_0 + w0_11 * p2_1 + w0_12 * p2_2 + w0_13 * p2_3 + w0_14 * p2_4 + w0_15 * p3_0 + w0_16 * p3_1 + w0_17 * p3_2 + w0_18 * p3_3 + w0_19 * p3_4 + w0_20 * p4_0 + w0_21 * p4_1 + w0_22 * p4_2 + w0_23 * p4_3 + w0_24 * p4_4;
            acc[a1 + ow] += w1_0 * p0_0 + w1_1 * p0_1 + w1_2 * p0_2 + w1_3 * p0_3 + w1_4 * p0_4 + w1_5 * p1_0 + w1_6 * p1_1 + w1_7 * p1_2 + w1_8 * p1_3 + w1_9 * p1_4 + w1_10 * p2_0 + w1_11 * p2_1 + w1_12 * p2_2 + w1_13 * p2_3 + w1_14 * p2_4 + w1_15 * p3_0 + w1_16 * p3_1 + w1_17 * p3_2 + w1_18 * p3_3 + w1_19 * p3_4 + w1_20 * p4_0 + w1_21 * p4_1 + w1_22 * p4_2 + w1_23 * p4_3 + w1_24 * p4_4;
            p0_0 = p0_1; p0_1 = p0_2; p0_2 = p0_3; p0_3 = p0_4; p1_0 = p1_1; p1_1 = p1_2; p1_2 = p1_3; p1_3 = p1_4; p2_0 = p2_1; p2_1 = p2_2; p2_2 = p2_3; p2_3 = p2_4; p3_0 = p3_1; p3_1 = p3_2; p3_2 = p3_3; p3_3 = p3_4; p4_0 = p4_1; p4_1 = p4_2; p4_2 = p4_3; p4_3 = p4_4;
          }
        }
      }
      const yb = 100 * (16 * n + fl);
      for (let i = 0; i < 200; i++) y0[yb + i] = acc[i];
    }
  }
}
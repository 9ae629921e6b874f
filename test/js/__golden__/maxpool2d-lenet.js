// IR node %1 = pool (p)
function k1_pool_p(S, T, x0, y0) {
  // maxpool2d: x [S.N, 6, 28, 28] -> y [S.N, 6, 14, 14]; window [2, 2], stride [2, 2], dilation [1, 1], padding [0, 0]..[0, 0]
  const N = S.N;
  for (let n = 0; n < N; n++) {
    for (let c = 0; c < 6; c++) {
      const xc = 784 * (6 * n + c);
      const yc = 196 * (6 * n + c);
      for (let oh = 0; oh < 14; oh++) {
        const ph = 2 * oh;
        const yh = yc + 14 * oh;
        for (let ow = 0; ow < 14; ow++) {
          const pw = 2 * ow;
          let m = -Infinity;
          for (let kh = 0; kh < 2; kh++) {
            const xh = xc + 28 * (ph + kh);
            const v0 = x0[xh + pw];
            if (v0 > m) m = v0;
            const v1 = x0[xh + pw + 1];
            if (v1 > m) m = v1;
          }
          y0[yh + ow] = m;
        }
      }
    }
  }
}
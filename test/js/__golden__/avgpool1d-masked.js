// IR node %2 = pool (p)
function k2_pool_p(S, T, x0, x1, y0) {
  // avgpool1d: x [S.N, 3, S.L] -> y [S.N, 3, Math.floor((S.L) / 2) + 1]; window [3], stride [2], dilation [1], padding [1]..[1], ceil_mode, masked
  const N = S.N;
  const L = S.L;
  const OL = Math.floor((S.L) / 2) + 1;
  if (OL < 1) T.fail("window 3 is larger than the padded input " + (L + 2) + " along dim 2");
  // dim 2: window taps inside the input are [lLo[o], lHi[o])
  const lLo = new Int32Array(OL), lHi = new Int32Array(OL);
  for (let o = 0; o < OL; o++) {
    const p0 = 2 * o - 1;
    let lo = 3, hi = 0;
    for (let k = 0; k < 3; k++) {
      const p = p0 + k;
      if (p >= 0 && p < L) {
        if (k < lo) lo = k;
        hi = k + 1;
      }
    }
    lLo[o] = lo < hi ? lo : hi;
    lHi[o] = hi;
  }
  for (let n = 0; n < N; n++) {
    for (let c = 0; c < 3; c++) {
      const xc = (3 * n + c) * L;
      const yc = (3 * n + c) * OL;
      const mc = n * L;
      for (let ol = 0; ol < OL; ol++) {
        const pl = 2 * ol - 1;
        const klLo = lLo[ol], klHi = lHi[ol];
        let s = 0, cnt = 0;
        for (let kl = klLo; kl < klHi; kl++) {
          const v = x0[xc + pl + kl];
          if (x1[mc + (pl + kl)] !== 0) { s += v; cnt++; }
        }
        y0[yc + ol] = cnt > 0 ? s / cnt : 0;
      }
    }
  }
}
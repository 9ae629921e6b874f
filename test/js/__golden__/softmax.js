// IR node %1 = softmax (y)
function k1_softmax_y(S, T, x0, y0) {
  const N = S.N;
  for (let o = 0; o < N; o++) {
    const xo = o * 10;
    let m = -Infinity;
    for (let j = 0; j < 10; j++) { const v = x0[xo + j]; if (v > m || v !== v) m = v; }
    // shift by the max so exp cannot overflow (by 0 when the max is not finite, as the reference)
    const shift = m - m === 0 ? m : 0;
    let sum = 0;
    for (let j = 0; j < 10; j++) { const e = Math.exp(x0[xo + j] - shift); y0[xo + j] = e; sum += e; }
    const inv = 1 / sum;
    for (let j = 0; j < 10; j++) y0[xo + j] *= inv;
  }
}

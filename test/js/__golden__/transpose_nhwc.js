// IR node %1 = transpose (y)
function k1_transpose_y(S, T, x0, y0) {
  const N = S.N;
  // output order of the input axes: [0, 2, 3, 1]; the output is written in order
  let o = 0;
  for (let i0 = 0; i0 < N; i0++) {
    const ix0 = i0 * 192;
    for (let i1 = 0; i1 < 64; i1++) {
      const ix1 = ix0 + i1;
      for (let i2 = 0; i2 < 3; i2++) y0[o++] = x0[ix1 + i2 * 64];
    }
  }
}

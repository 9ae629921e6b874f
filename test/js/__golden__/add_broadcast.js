// IR node %2 = add (y)
function k2_add_y(S, T, x0, x1, y0) {
  const N = S.N;
  // [N, 3, 4] <- x0 [N, 1, 4], x1 [3, 1] (stride 0 along broadcast dims)
  for (let i0 = 0; i0 < N; i0++) {
    const io0 = i0 * 12;
    const ia0 = i0 * 4;
    for (let i1 = 0; i1 < 3; i1++) {
      const io1 = io0 + i1 * 4;
      const b = x1[i1];
      for (let i2 = 0; i2 < 4; i2++) y0[io1 + i2] = x0[ia0 + i2] + b;
    }
  }
}

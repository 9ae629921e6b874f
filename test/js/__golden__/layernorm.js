// IR node %3 = layernorm (ln)
function k3_layernorm_ln(S, T, x0, x1, x2, y0) {
  const size0 = S.N;
  const mean = new Float64Array(32);
  const invStd = new Float64Array(32); // sum of squared deviations until the second pass ends
  for (let g0 = 0; g0 < size0; g0++) {
    const base = g0 * 2048;
    for (let l = 0; l < 32; l++) { mean[l] = 0; invStd[l] = 0; }
    for (let r1 = 0; r1 < 64; r1++) {
      const row = base + r1 * 32;
      for (let l = 0; l < 32; l++) mean[l] += x0[row + l];
    }
    for (let l = 0; l < 32; l++) mean[l] /= 64;
    for (let r1 = 0; r1 < 64; r1++) {
      const row = base + r1 * 32;
      for (let l = 0; l < 32; l++) { const d = x0[row + l] - mean[l]; invStd[l] += d * d; }
    }
    for (let l = 0; l < 32; l++) invStd[l] = 1 / Math.sqrt(invStd[l] / 64 + 0.0001);
    for (let r1 = 0; r1 < 64; r1++) {
      const row = base + r1 * 32;
      const wk = x1[r1], bk = x2[r1];
      for (let l = 0; l < 32; l++) y0[row + l] = (x0[row + l] - mean[l]) * invStd[l] * wk + bk;
    }
  }
}
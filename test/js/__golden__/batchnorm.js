// IR node %5, %6, %7 = batchnorm (bn)
function k5_batchnorm_bn(S, T, x0, x1, x2, x3, x4, y0, y1, y2) {
  const batch = S.N;
  const count = 64 * S.N;
  // Per-channel statistics: mean and scale = weight / sqrt(var + eps).
  const mean = new Float64Array(16);
  const scale = new Float64Array(16);
  if (T.training) {
    if (count < 2) T.fail("batchnorm in training needs more than 1 value per channel, found input shape [" + S.N + ", 16, 8, 8]");
    const sq = new Float64Array(16); // sums of squared deviations
    for (let c = 0; c < 16; c++) mean[c] = 0;
    for (let n = 0; n < batch; n++) {
      for (let c = 0; c < 16; c++) {
        let acc = 0;
        const row = (n * 16 + c) * 64;
        for (let i = 0; i < 64; i++) {
          acc += x0[row + i];
        }
        mean[c] += acc;
      }
    }
    for (let c = 0; c < 16; c++) mean[c] /= count;
    for (let n = 0; n < batch; n++) {
      for (let c = 0; c < 16; c++) {
        const m = mean[c];
        let acc = 0;
        const row = (n * 16 + c) * 64;
        for (let i = 0; i < 64; i++) {
          const d = x0[row + i] - m;
          acc += d * d;
        }
        sq[c] += acc;
      }
    }
    for (let c = 0; c < 16; c++) {
      const variance = sq[c] / count;
      // running statistics move towards the batch's, with the unbiased variance
      y1[c] = 0.9 * x3[c] + 0.1 * mean[c];
      y2[c] = 0.9 * x4[c] + 0.1 * (sq[c] / (count - 1));
      scale[c] = x1[c] / Math.sqrt(variance + 0.00001);
    }
  } else {
    for (let c = 0; c < 16; c++) {
      mean[c] = x3[c];
      scale[c] = x1[c] / Math.sqrt(x4[c] + 0.00001);
      y1[c] = x3[c];
      y2[c] = x4[c];
    }
  }
  for (let n = 0; n < batch; n++) {
    for (let c = 0; c < 16; c++) {
      const m = mean[c], s = scale[c], shift = x2[c];
      const row = (n * 16 + c) * 64;
      for (let i = 0; i < 64; i++) {
        y0[row + i] = (x0[row + i] - m) * s + shift;
      }
    }
  }
}
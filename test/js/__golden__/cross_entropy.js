// IR node %3 = cross_entropy (xent)
function k3_cross_entropy_xent(S, T, x0, x1, x2, y0) {
  const outer = S.N;
  const inner = S.L;
  let total = 0;
  let counted = 0;
  // Log-sum-exp of the inner positions of one outer index side by side.
  const lseMax = new Float64Array(inner);
  const lseSum = new Float64Array(inner);
  for (let o = 0; o < outer; o++) {
    const base = 10 * inner * o;
    const positions = inner * o;
    for (let i = 0; i < inner; i++) { lseMax[i] = x0[base + i]; lseSum[i] = 0; }
    for (let k = 1; k < 10; k++) {
      const row = base + k * inner;
      for (let i = 0; i < inner; i++) if (x0[row + i] > lseMax[i]) lseMax[i] = x0[row + i];
    }
    for (let k = 0; k < 10; k++) {
      const row = base + k * inner;
      for (let i = 0; i < inner; i++) lseSum[i] += Math.exp(x0[row + i] - lseMax[i]);
    }
    for (let i = 0; i < inner; i++) {
      const p = positions + i;
      if (x2[p] === 0) continue;
      const label = x1[p];
      if (label === -100) continue;
      if (!(label >= 0 && label < 10)) T.fail("label " + label + " at labels[" + (Math.floor(p / S.L)) + ", " + (p % S.L) + "] is outside the classes [0, 10) (ignore_index is -100)");
      total += lseMax[i] + Math.log(lseSum[i]) - x0[base + label * inner + i];
      counted++;
    }
  }
  // no counted position gives 0, not NaN (as the reference)
  y0[0] = counted > 0 ? total / counted : 0;
}
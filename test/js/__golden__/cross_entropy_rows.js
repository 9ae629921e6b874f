// IR node %2 = cross_entropy (xent)
function k2_cross_entropy_xent(S, T, x0, x1, y0) {
  const outer = S.N;
  let total = 0;
  let counted = 0;
  for (let p = 0; p < outer; p++) {
    const label = x1[p];
    if (label === -100) continue;
    if (!(label >= 0 && label < 10)) T.fail("label " + label + " at labels[" + p + "] is outside the classes [0, 10) (ignore_index is -100)");
    const row = p * 10;
    let max = x0[row];
    for (let k = 1; k < 10; k++) if (x0[row + k] > max) max = x0[row + k];
    let sum = 0;
    for (let k = 0; k < 10; k++) sum += Math.exp(x0[row + k] - max);
    total += max + Math.log(sum) - x0[row + label];
    counted++;
  }
  // no counted position gives 0, not NaN (as the reference)
  y0[0] = counted > 0 ? total / counted : 0;
}
// IR node %12 = rnn (lm)
function k12_rnn_lm(S, T, x0, x1, x2, x3, x4, x5, x6, x7, x8, x9, x10, x11, y0) {
  // lstm, bidirectional, hidden 8, return sequence: x f32[N, L, 5] → y f32[N, L, 16].
  const N = S.N;
  const L = S.L;
  const x = x0, wIh = x1, wHh = x2, bIh = x3, bHh = x4, wIhRev = x5, wHhRev = x6, bIhRev = x7, bHhRev = x8, lengths = x9, h0 = x10, c0 = x11, y = y0;
  for (let n = 0; n < N; n++) {
    const len = lengths[n];
    if (!(len >= 0 && len <= L)) T.fail(`length ${len} of sequence ${n} is outside [0, ${L}] (L = ${L})`);
  }
  // Scratch, allocated once: input projections of every step, recurrent projections, state.
  const xp = new Float32Array(N * L * 32);
  const hp = new Float64Array(32);
  const h = new Float64Array(8);
  const c = new Float64Array(8);

  // ---- forward direction: output columns [0, 8)
  // Input projections W_ih·x_t + b_ih of every step read below: [N·L, 5] × [5, 32].
  for (let n = 0; n < N; n++) {
    const len = lengths[n];
    const seqRow = n * L;
    for (let t = 0; t < len; t++) {
      const row = seqRow + t;
      const xRow = row * 5;
      const pRow = row * 32;
      for (let k = 0; k < 32; k++) {
        const wRow = k * 5;
        let s = bIh[k];
        for (let d = 0; d < 5; d++) s += wIh[wRow + d] * x[xRow + d];
        xp[pRow + k] = s;
      }
    }
  }
  for (let n = 0; n < N; n++) {
    const len = lengths[n];
    const seqRow = n * L;
    const h0Row = n * 8;
    for (let j = 0; j < 8; j++) { h[j] = h0[h0Row + j]; c[j] = c0[h0Row + j]; }
    for (let t = 0; t < len; t++) {
      const row = seqRow + t;
      const pRow = row * 32;
      const yRow = row * 16;
      // Recurrent projections W_hh·h + b_hh of the gates i, f, g, o.
      for (let k = 0; k < 32; k++) {
        const wRow = k * 8;
        let s0 = bHh[k], s1 = 0, s2 = 0, s3 = 0; // four partial sums: independent adds pipeline
        for (let j = 0; j < 8; j += 4) {
          s0 += wHh[wRow + j] * h[j];
          s1 += wHh[wRow + j + 1] * h[j + 1];
          s2 += wHh[wRow + j + 2] * h[j + 2];
          s3 += wHh[wRow + j + 3] * h[j + 3];
        }
        hp[k] = s0 + s1 + s2 + s3;
      }
      for (let j = 0; j < 8; j++) {
        const i = 1 / (1 + Math.exp(-(xp[pRow + j] + hp[j])));
        const f = 1 / (1 + Math.exp(-(xp[pRow + 8 + j] + hp[j + 8])));
        const g = Math.tanh(xp[pRow + 16 + j] + hp[j + 16]);
        const o = 1 / (1 + Math.exp(-(xp[pRow + 24 + j] + hp[j + 24])));
        const cj = f * c[j] + i * g;
        const hj = o * Math.tanh(cj);
        c[j] = cj;
        h[j] = hj;
        y[yRow + j] = hj;
      }
    }
    // Positions past the sequence's length are zeros.
    for (let t = len; t < L; t++) {
      const yRow = (seqRow + t) * 16;
      for (let j = 0; j < 8; j++) y[yRow + j] = 0;
    }
  }

  // ---- backward direction: output columns [8, 16)
  // Input projections W_ih·x_t + b_ih of every step read below: [N·L, 5] × [5, 32].
  for (let n = 0; n < N; n++) {
    const len = lengths[n];
    const seqRow = n * L;
    for (let t = 0; t < len; t++) {
      const row = seqRow + t;
      const xRow = row * 5;
      const pRow = row * 32;
      for (let k = 0; k < 32; k++) {
        const wRow = k * 5;
        let s = bIhRev[k];
        for (let d = 0; d < 5; d++) s += wIhRev[wRow + d] * x[xRow + d];
        xp[pRow + k] = s;
      }
    }
  }
  for (let n = 0; n < N; n++) {
    const len = lengths[n];
    const seqRow = n * L;
    const h0Row = (N + n) * 8;
    for (let j = 0; j < 8; j++) { h[j] = h0[h0Row + j]; c[j] = c0[h0Row + j]; }
    for (let t = len - 1; t >= 0; t--) {
      const row = seqRow + t;
      const pRow = row * 32;
      const yRow = row * 16 + 8;
      // Recurrent projections W_hh·h + b_hh of the gates i, f, g, o.
      for (let k = 0; k < 32; k++) {
        const wRow = k * 8;
        let s0 = bHhRev[k], s1 = 0, s2 = 0, s3 = 0; // four partial sums: independent adds pipeline
        for (let j = 0; j < 8; j += 4) {
          s0 += wHhRev[wRow + j] * h[j];
          s1 += wHhRev[wRow + j + 1] * h[j + 1];
          s2 += wHhRev[wRow + j + 2] * h[j + 2];
          s3 += wHhRev[wRow + j + 3] * h[j + 3];
        }
        hp[k] = s0 + s1 + s2 + s3;
      }
      for (let j = 0; j < 8; j++) {
        const i = 1 / (1 + Math.exp(-(xp[pRow + j] + hp[j])));
        const f = 1 / (1 + Math.exp(-(xp[pRow + 8 + j] + hp[j + 8])));
        const g = Math.tanh(xp[pRow + 16 + j] + hp[j + 16]);
        const o = 1 / (1 + Math.exp(-(xp[pRow + 24 + j] + hp[j + 24])));
        const cj = f * c[j] + i * g;
        const hj = o * Math.tanh(cj);
        c[j] = cj;
        h[j] = hj;
        y[yRow + j] = hj;
      }
    }
    // Positions past the sequence's length are zeros.
    for (let t = len; t < L; t++) {
      const yRow = (seqRow + t) * 16 + 8;
      for (let j = 0; j < 8; j++) y[yRow + j] = 0;
    }
  }
}
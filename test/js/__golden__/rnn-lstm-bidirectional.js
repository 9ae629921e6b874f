// IR node %12 = rnn (lm)
function k12_rnn_lm(S, T, x0, x1, x2, x3, x4, x5, x6, x7, x8, x9, x10, x11, y0) {
  // lstm, bidirectional, hidden 4, return sequence: x f32[N, L, 5] → y f32[N, L, 8].
  const N = S.N;
  const L = S.L;
  const x = x0, wIh = x1, wHh = x2, bIh = x3, bHh = x4, wIhRev = x5, wHhRev = x6, bIhRev = x7, bHhRev = x8, lengths = x9, h0 = x10, c0 = x11, y = y0;
  for (let n = 0; n < N; n++) {
    const len = lengths[n];
    if (!(len >= 0 && len <= L)) T.fail(`length ${len} of sequence ${n} is outside [0, ${L}] (L = ${L})`);
  }
  // Scratch, allocated once: input projections of every step, recurrent projections, state.
  const xp = new Float32Array(N * L * 16);
  const hp = new Float64Array(16);
  const h = new Float64Array(4);
  const c = new Float64Array(4);

  // ---- forward direction: output columns [0, 4)
  // Input projections W_ih·x_t + b_ih of every step read below: [N·L, 5] × [5, 16].
  for (let n = 0; n < N; n++) {
    const len = lengths[n];
    const seqRow = n * L;
    for (let t = 0; t < len; t++) {
      const row = seqRow + t;
      const xRow = row * 5;
      const pRow = row * 16;
      for (let k = 0; k < 16; k++) {
        const wRow = k * 5;
        let s = bIh[k];
        for (let d = 0; d < 5; d++) s += x[xRow + d] * wIh[wRow + d];
        xp[pRow + k] = s;
      }
    }
  }
  for (let n = 0; n < N; n++) {
    const len = lengths[n];
    const seqRow = n * L;
    const s0 = n * 4;
    for (let j = 0; j < 4; j++) { h[j] = h0[s0 + j]; c[j] = c0[s0 + j]; }
    for (let t = 0; t < len; t++) {
      const row = seqRow + t;
      const pRow = row * 16;
      const yRow = row * 8;
      // Recurrent projections W_hh·h + b_hh of the gates i, f, g, o.
      for (let k = 0; k < 16; k++) {
        const wRow = k * 4;
        let s = bHh[k];
        for (let j = 0; j < 4; j++) s += wHh[wRow + j] * h[j];
        hp[k] = s;
      }
      for (let j = 0; j < 4; j++) {
        const i = 1 / (1 + Math.exp(-(xp[pRow + j] + hp[j])));
        const f = 1 / (1 + Math.exp(-(xp[pRow + 4 + j] + hp[j + 4])));
        const g = Math.tanh(xp[pRow + 8 + j] + hp[j + 8]);
        const o = 1 / (1 + Math.exp(-(xp[pRow + 12 + j] + hp[j + 12])));
        const cj = f * c[j] + i * g;
        const hj = o * Math.tanh(cj);
        c[j] = cj;
        h[j] = hj;
        y[yRow + j] = hj;
      }
    }
    // Positions past the sequence's length are zeros.
    for (let t = len; t < L; t++) {
      const yRow = (seqRow + t) * 8;
      for (let j = 0; j < 4; j++) y[yRow + j] = 0;
    }
  }

  // ---- backward direction: output columns [4, 8)
  // Input projections W_ih·x_t + b_ih of every step read below: [N·L, 5] × [5, 16].
  for (let n = 0; n < N; n++) {
    const len = lengths[n];
    const seqRow = n * L;
    for (let t = 0; t < len; t++) {
      const row = seqRow + t;
      const xRow = row * 5;
      const pRow = row * 16;
      for (let k = 0; k < 16; k++) {
        const wRow = k * 5;
        let s = bIhRev[k];
        for (let d = 0; d < 5; d++) s += x[xRow + d] * wIhRev[wRow + d];
        xp[pRow + k] = s;
      }
    }
  }
  for (let n = 0; n < N; n++) {
    const len = lengths[n];
    const seqRow = n * L;
    const s0 = (N + n) * 4;
    for (let j = 0; j < 4; j++) { h[j] = h0[s0 + j]; c[j] = c0[s0 + j]; }
    for (let t = len - 1; t >= 0; t--) {
      const row = seqRow + t;
      const pRow = row * 16;
      const yRow = row * 8 + 4;
      // Recurrent projections W_hh·h + b_hh of the gates i, f, g, o.
      for (let k = 0; k < 16; k++) {
        const wRow = k * 4;
        let s = bHhRev[k];
        for (let j = 0; j < 4; j++) s += wHhRev[wRow + j] * h[j];
        hp[k] = s;
      }
      for (let j = 0; j < 4; j++) {
        const i = 1 / (1 + Math.exp(-(xp[pRow + j] + hp[j])));
        const f = 1 / (1 + Math.exp(-(xp[pRow + 4 + j] + hp[j + 4])));
        const g = Math.tanh(xp[pRow + 8 + j] + hp[j + 8]);
        const o = 1 / (1 + Math.exp(-(xp[pRow + 12 + j] + hp[j + 12])));
        const cj = f * c[j] + i * g;
        const hj = o * Math.tanh(cj);
        c[j] = cj;
        h[j] = hj;
        y[yRow + j] = hj;
      }
    }
    // Positions past the sequence's length are zeros.
    for (let t = len; t < L; t++) {
      const yRow = (seqRow + t) * 8 + 4;
      for (let j = 0; j < 4; j++) y[yRow + j] = 0;
    }
  }
}
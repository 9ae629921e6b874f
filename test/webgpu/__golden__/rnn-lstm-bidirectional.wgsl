// k12_rnn_lm_p0: IR node %12 = rnn (lm)
struct Params { s_N: u32, s_L: u32 }
@group(0) @binding(0) var<uniform> P: Params;
@group(0) @binding(1) var<storage, read> x0: array<f32>;
@group(0) @binding(2) var<storage, read> x1: array<f32>;
@group(0) @binding(3) var<storage, read> x3: array<f32>;
@group(0) @binding(4) var<storage, read> x5: array<f32>;
@group(0) @binding(5) var<storage, read> x7: array<f32>;
@group(0) @binding(6) var<storage, read_write> t0: array<f32>;

// Input projections of lstm, bidirectional: [N·L, 5] × [5, 32] per direction into t0 (row stride 32), 2 × 4 tiles.

var<private> LOOP0: u32; // 0 at run time; a loop start the compiler cannot see keeps loops rolled

fn tile0(r0: u32, c0: u32, rows: u32) {
  // Rows past N·L are read clamped; only the rows are guarded at the write (t0 rows are padded).
  let xr0 = min(r0 + 0u, rows - 1u) * 5u;
  let xr1 = min(r0 + 1u, rows - 1u) * 5u;
  let wr0 = (c0 + 0u) * 5u;
  let wr1 = (c0 + 1u) * 5u;
  let wr2 = (c0 + 2u) * 5u;
  let wr3 = (c0 + 3u) * 5u;
  var s0 = vec4<f32>(0.0); // columns c0..c0+3 of row r0 + 0
  var s1 = vec4<f32>(0.0); // columns c0..c0+3 of row r0 + 1
  for (var k = LOOP0; k < 5u; k++) {
    let wb0 = x1[wr0 + k];
    let wb1 = x1[wr1 + k];
    let wb2 = x1[wr2 + k];
    let wb3 = x1[wr3 + k];
    let xa0 = x0[xr0 + k];
    s0 += vec4<f32>(xa0 * wb0, xa0 * wb1, xa0 * wb2, xa0 * wb3);
    let xa1 = x0[xr1 + k];
    s1 += vec4<f32>(xa1 * wb0, xa1 * wb1, xa1 * wb2, xa1 * wb3);
  }
  let bias = vec4<f32>(x3[c0 + 0u], x3[c0 + 1u], x3[c0 + 2u], x3[c0 + 3u]);
  let base = r0 * 32u + c0;
  if (r0 + 0u < rows) {
    let v0 = s0 + bias;
    t0[base + 0u] = v0.x; t0[base + 1u] = v0.y; t0[base + 2u] = v0.z; t0[base + 3u] = v0.w;
  }
  if (r0 + 1u < rows) {
    let v1 = s1 + bias;
    t0[base + 32u] = v1.x; t0[base + 33u] = v1.y; t0[base + 34u] = v1.z; t0[base + 35u] = v1.w;
  }
}

fn tile1(r0: u32, c0: u32, rows: u32) {
  // Rows past N·L are read clamped; only the rows are guarded at the write (t0 rows are padded).
  let xr0 = min(r0 + 0u, rows - 1u) * 5u;
  let xr1 = min(r0 + 1u, rows - 1u) * 5u;
  let wr0 = (c0 + 0u) * 5u;
  let wr1 = (c0 + 1u) * 5u;
  let wr2 = (c0 + 2u) * 5u;
  let wr3 = (c0 + 3u) * 5u;
  var s0 = vec4<f32>(0.0); // columns c0..c0+3 of row r0 + 0
  var s1 = vec4<f32>(0.0); // columns c0..c0+3 of row r0 + 1
  for (var k = LOOP0; k < 5u; k++) {
    let wb0 = x5[wr0 + k];
    let wb1 = x5[wr1 + k];
    let wb2 = x5[wr2 + k];
    let wb3 = x5[wr3 + k];
    let xa0 = x0[xr0 + k];
    s0 += vec4<f32>(xa0 * wb0, xa0 * wb1, xa0 * wb2, xa0 * wb3);
    let xa1 = x0[xr1 + k];
    s1 += vec4<f32>(xa1 * wb0, xa1 * wb1, xa1 * wb2, xa1 * wb3);
  }
  let bias = vec4<f32>(x7[c0 + 0u], x7[c0 + 1u], x7[c0 + 2u], x7[c0 + 3u]);
  let base = rows * 32u + r0 * 32u + c0;
  if (r0 + 0u < rows) {
    let v0 = s0 + bias;
    t0[base + 0u] = v0.x; t0[base + 1u] = v0.y; t0[base + 2u] = v0.z; t0[base + 3u] = v0.w;
  }
  if (r0 + 1u < rows) {
    let v1 = s1 + bias;
    t0[base + 32u] = v1.x; t0[base + 33u] = v1.y; t0[base + 34u] = v1.z; t0[base + 35u] = v1.w;
  }
}

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  LOOP0 = nwg.x >> 16u;
  let i = gid.x + gid.y * (nwg.x * 64u);
  let rows = u32(i32(P.s_N)) * u32(i32(P.s_L));
  let tilesR = (rows + 1u) / 2u;
  if (i >= tilesR * 16u) { return; }
  let tc = i % 8u;
  let tr = i / 8u;
  if (tr < tilesR) { tile0(tr * 2u, tc * 4u, rows); } else { tile1((tr - tilesR) * 2u, tc * 4u, rows); }
}

// ---- "cpu" layout
// k12_rnn_lm_p1: IR node %12 = rnn (lm)
struct Params { s_N: u32, s_L: u32 }
@group(0) @binding(0) var<uniform> P: Params;
@group(0) @binding(1) var<storage, read> x2: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> x4: array<f32>;
@group(0) @binding(3) var<storage, read> x6: array<vec4<f32>>;
@group(0) @binding(4) var<storage, read> x8: array<f32>;
@group(0) @binding(5) var<storage, read> x9: array<i32>;
@group(0) @binding(6) var<storage, read> x10: array<f32>;
@group(0) @binding(7) var<storage, read> x11: array<f32>;
@group(0) @binding(8) var<storage, read_write> y0: array<f32>;
@group(0) @binding(9) var<storage, read_write> t0: array<f32>;
@group(0) @binding(10) var<storage, read_write> err: array<atomic<u32>, 5>;
fn report_error(kind: u32, a: i32, b: u32) {
  if (atomicAdd(&err[0], 1u) == 0u) {
    atomicStore(&err[1], kind);
    atomicStore(&err[2], bitcast<u32>(a));
    atomicStore(&err[3], b);
    atomicStore(&err[4], 12u);
  }
}

// lstm, bidirectional, hidden 8, return sequence: x f32[N, L, 5] → y f32[N, L, 16].

// One invocation per (sequence, direction) runs every unit, without barriers; the 8 invocations of a workgroup are neighbouring sequences of one direction.

var<private> LOOP0: u32; // 0 at run time; a loop start the compiler cannot see keeps loops rolled
var<workgroup> st: array<f32, 192>; // per sequence: h_{t−1} | h_t | c, lane-interleaved
var<private> lane: u32;

fn sigmoid(v: f32) -> f32 { return 1.0 / (1.0 + exp(-clamp(v, -80.0, 80.0))); }
// Clamped: tanh(±15) is ±1 in f32, and some backends' tanh overflows to NaN for large |v|.
fn tanh_c(v: f32) -> f32 { return tanh(clamp(v, -15.0, 15.0)); }

fn hh0(j: u32, base: u32) -> vec4<f32> {
  let r = j * 2u;
  var a0 = vec4<f32>(0.0);
  var a1 = vec4<f32>(0.0);
  var a2 = vec4<f32>(0.0);
  var a3 = vec4<f32>(0.0);
  for (var k = LOOP0; k < 2u; k++) {
    let i = base + 4u * k;
    let v = vec4<f32>(st[(i) * 8u + lane], st[(i + 1u) * 8u + lane], st[(i + 2u) * 8u + lane], st[(i + 3u) * 8u + lane]);
    a0 += x2[r + k] * v;
    a1 += x2[r + 16u + k] * v;
    a2 += x2[r + 32u + k] * v;
    a3 += x2[r + 48u + k] * v;
  }
  return vec4<f32>(x4[j] + dot(a0, vec4<f32>(1.0)), x4[8u + j] + dot(a1, vec4<f32>(1.0)), x4[16u + j] + dot(a2, vec4<f32>(1.0)), x4[24u + j] + dot(a3, vec4<f32>(1.0)));
}

fn hh1(j: u32, base: u32) -> vec4<f32> {
  let r = j * 2u;
  var a0 = vec4<f32>(0.0);
  var a1 = vec4<f32>(0.0);
  var a2 = vec4<f32>(0.0);
  var a3 = vec4<f32>(0.0);
  for (var k = LOOP0; k < 2u; k++) {
    let i = base + 4u * k;
    let v = vec4<f32>(st[(i) * 8u + lane], st[(i + 1u) * 8u + lane], st[(i + 2u) * 8u + lane], st[(i + 3u) * 8u + lane]);
    a0 += x6[r + k] * v;
    a1 += x6[r + 16u + k] * v;
    a2 += x6[r + 32u + k] * v;
    a3 += x6[r + 48u + k] * v;
  }
  return vec4<f32>(x8[j] + dot(a0, vec4<f32>(1.0)), x8[8u + j] + dot(a1, vec4<f32>(1.0)), x8[16u + j] + dot(a2, vec4<f32>(1.0)), x8[24u + j] + dot(a3, vec4<f32>(1.0)));
}

fn run0(n: u32, live: bool, len: u32, steps: u32) {
  for (var j = LOOP0; j < 8u; j++) {
    st[(j) * 8u + lane] = x10[n * 8u + j];
    st[(16u + j) * 8u + lane] = x11[n * 8u + j];
  }
  var cur = 0u; // which half of the state holds h_{t−1}
  for (var s = 0u; s < steps; s++) {
    let on = s < len;
    let t = select(0u, s, on);
    let xrow = (n * u32(i32(P.s_L)) + t) * 32u; // this step's projections in t0
    let yrow = (n * u32(i32(P.s_L)) + t) * 16u + 0u;
    let hin = cur * 8u;
    let hout = (1u - cur) * 8u;
    for (var j = LOOP0; j < 8u; j++) {
      let g = vec4<f32>(t0[xrow + j], t0[xrow + 8u + j], t0[xrow + 16u + j], t0[xrow + 24u + j]) + hh0(j, hin); // gates i, f, g, o
      let cn = sigmoid(g.y) * st[(16u + j) * 8u + lane] + sigmoid(g.x) * tanh_c(g.z);
      st[(16u + j) * 8u + lane] = select(st[(16u + j) * 8u + lane], cn, on);
      let hn = sigmoid(g.w) * tanh_c(cn);
      st[(hout + j) * 8u + lane] = select(st[(hin + j) * 8u + lane], hn, on);
      if (on) { y0[yrow + j] = hn; }
    }
    cur = 1u - cur;
  }
  // Positions past the sequence's length are zeros.
  for (var t = select(u32(i32(P.s_L)), len, live); t < u32(i32(P.s_L)); t++) {
    let yrow = (n * u32(i32(P.s_L)) + t) * 16u + 0u;
    for (var j = LOOP0; j < 8u; j++) {
      y0[yrow + j] = 0.0;
    }
  }
}

fn run1(n: u32, live: bool, len: u32, steps: u32) {
  for (var j = LOOP0; j < 8u; j++) {
    st[(j) * 8u + lane] = x10[(u32(i32(P.s_N)) + n) * 8u + j];
    st[(16u + j) * 8u + lane] = x11[(u32(i32(P.s_N)) + n) * 8u + j];
  }
  var cur = 0u; // which half of the state holds h_{t−1}
  for (var s = 0u; s < steps; s++) {
    let on = s < len;
    let t = select(0u, len - 1u - s, on);
    let xrow = u32(i32(P.s_N)) * u32(i32(P.s_L)) * 32u + (n * u32(i32(P.s_L)) + t) * 32u; // this step's projections in t0
    let yrow = (n * u32(i32(P.s_L)) + t) * 16u + 8u;
    let hin = cur * 8u;
    let hout = (1u - cur) * 8u;
    for (var j = LOOP0; j < 8u; j++) {
      let g = vec4<f32>(t0[xrow + j], t0[xrow + 8u + j], t0[xrow + 16u + j], t0[xrow + 24u + j]) + hh1(j, hin); // gates i, f, g, o
      let cn = sigmoid(g.y) * st[(16u + j) * 8u + lane] + sigmoid(g.x) * tanh_c(g.z);
      st[(16u + j) * 8u + lane] = select(st[(16u + j) * 8u + lane], cn, on);
      let hn = sigmoid(g.w) * tanh_c(cn);
      st[(hout + j) * 8u + lane] = select(st[(hin + j) * 8u + lane], hn, on);
      if (on) { y0[yrow + j] = hn; }
    }
    cur = 1u - cur;
  }
  // Positions past the sequence's length are zeros.
  for (var t = select(u32(i32(P.s_L)), len, live); t < u32(i32(P.s_L)); t++) {
    let yrow = (n * u32(i32(P.s_L)) + t) * 16u + 8u;
    for (var j = LOOP0; j < 8u; j++) {
      y0[yrow + j] = 0.0;
    }
  }
}

@compute @workgroup_size(8)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) lid: u32) {
  LOOP0 = nwg.x >> 16u;
  lane = lid;
  let n0 = (wid.x + wid.z * nwg.x) * 8u; // this workgroup's first sequence
  if (n0 >= u32(i32(P.s_N))) { return; }
  let live = n0 + lid < u32(i32(P.s_N));
  let n = min(n0 + lid, u32(i32(P.s_N)) - 1u);
  let d = wid.y;
  let lenI = x9[n];
  if (live && (lenI < 0 || lenI > i32(u32(i32(P.s_L))))) {
    if (d == 0u) { report_error(1u, lenI, n); }
  }
  let len = select(0u, u32(clamp(lenI, 0, i32(u32(i32(P.s_L))))), live);
  // The longest length among this workgroup's sequences: the step count all its lanes share.
  var steps = 0u;
  for (var i = 0u; i < 8u; i++) {
    if (n0 + i < u32(i32(P.s_N))) { steps = max(steps, u32(clamp(x9[n0 + i], 0, i32(u32(i32(P.s_L)))))); }
  }
  if (d == 0u) { run0(n, live, len, steps); } else { run1(n, live, len, steps); }
}

// ---- "gpu" layout
// k12_rnn_lm_p1: IR node %12 = rnn (lm)
struct Params { s_N: u32, s_L: u32 }
@group(0) @binding(0) var<uniform> P: Params;
@group(0) @binding(1) var<storage, read> x2: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> x4: array<f32>;
@group(0) @binding(3) var<storage, read> x6: array<vec4<f32>>;
@group(0) @binding(4) var<storage, read> x8: array<f32>;
@group(0) @binding(5) var<storage, read> x9: array<i32>;
@group(0) @binding(6) var<storage, read> x10: array<f32>;
@group(0) @binding(7) var<storage, read> x11: array<f32>;
@group(0) @binding(8) var<storage, read_write> y0: array<f32>;
@group(0) @binding(9) var<storage, read_write> t0: array<f32>;
@group(0) @binding(10) var<storage, read_write> err: array<atomic<u32>, 5>;
fn report_error(kind: u32, a: i32, b: u32) {
  if (atomicAdd(&err[0], 1u) == 0u) {
    atomicStore(&err[1], kind);
    atomicStore(&err[2], bitcast<u32>(a));
    atomicStore(&err[3], b);
    atomicStore(&err[4], 12u);
  }
}

// lstm, bidirectional, hidden 8, return sequence: x f32[N, L, 5] → y f32[N, L, 16].

// One workgroup per (sequence, direction); invocation lid owns units lid + k·8 (k < 1).

var<private> LOOP0: u32; // 0 at run time; a loop start the compiler cannot see keeps loops rolled
var<workgroup> st: array<f32, 16>; // h_{t−1} | h_t

fn sigmoid(v: f32) -> f32 { return 1.0 / (1.0 + exp(-clamp(v, -80.0, 80.0))); }
// Clamped: tanh(±15) is ±1 in f32, and some backends' tanh overflows to NaN for large |v|.
fn tanh_c(v: f32) -> f32 { return tanh(clamp(v, -15.0, 15.0)); }

fn hh0(j: u32, base: u32) -> vec4<f32> {
  let r = j * 2u;
  var a0 = vec4<f32>(0.0);
  var a1 = vec4<f32>(0.0);
  var a2 = vec4<f32>(0.0);
  var a3 = vec4<f32>(0.0);
  for (var k = LOOP0; k < 2u; k++) {
    let i = base + 4u * k;
    let v = vec4<f32>(st[i], st[i + 1u], st[i + 2u], st[i + 3u]);
    a0 += x2[r + k] * v;
    a1 += x2[r + 16u + k] * v;
    a2 += x2[r + 32u + k] * v;
    a3 += x2[r + 48u + k] * v;
  }
  return vec4<f32>(x4[j] + dot(a0, vec4<f32>(1.0)), x4[8u + j] + dot(a1, vec4<f32>(1.0)), x4[16u + j] + dot(a2, vec4<f32>(1.0)), x4[24u + j] + dot(a3, vec4<f32>(1.0)));
}

fn hh1(j: u32, base: u32) -> vec4<f32> {
  let r = j * 2u;
  var a0 = vec4<f32>(0.0);
  var a1 = vec4<f32>(0.0);
  var a2 = vec4<f32>(0.0);
  var a3 = vec4<f32>(0.0);
  for (var k = LOOP0; k < 2u; k++) {
    let i = base + 4u * k;
    let v = vec4<f32>(st[i], st[i + 1u], st[i + 2u], st[i + 3u]);
    a0 += x6[r + k] * v;
    a1 += x6[r + 16u + k] * v;
    a2 += x6[r + 32u + k] * v;
    a3 += x6[r + 48u + k] * v;
  }
  return vec4<f32>(x8[j] + dot(a0, vec4<f32>(1.0)), x8[8u + j] + dot(a1, vec4<f32>(1.0)), x8[16u + j] + dot(a2, vec4<f32>(1.0)), x8[24u + j] + dot(a3, vec4<f32>(1.0)));
}

fn run0(n: u32, lid: u32, len: u32) {
  var cs: array<f32, 1>;
  {
    let k = 0u;
    let j = lid;
    st[j] = x10[n * 8u + j];
    cs[k] = x11[n * 8u + j];
  }
  workgroupBarrier();
  var cur = 0u; // which half of the state holds h_{t−1}
  for (var s = 0u; s < len; s++) {
    let t = s;
    let xrow = (n * u32(i32(P.s_L)) + t) * 32u; // this step's projections in t0
    let yrow = (n * u32(i32(P.s_L)) + t) * 16u + 0u;
    let hin = cur * 8u;
    let hout = (1u - cur) * 8u;
    {
      let k = 0u;
      let j = lid;
      let g = vec4<f32>(t0[xrow + j], t0[xrow + 8u + j], t0[xrow + 16u + j], t0[xrow + 24u + j]) + hh0(j, hin); // gates i, f, g, o
      let cn = sigmoid(g.y) * cs[k] + sigmoid(g.x) * tanh_c(g.z);
      cs[k] = cn;
      let hn = sigmoid(g.w) * tanh_c(cn);
      st[hout + j] = hn;
      y0[yrow + j] = hn;
    }
    workgroupBarrier();
    cur = 1u - cur;
  }
  // Positions past the sequence's length are zeros.
  for (var t = len; t < u32(i32(P.s_L)); t++) {
    let yrow = (n * u32(i32(P.s_L)) + t) * 16u + 0u;
    {
      let k = 0u;
      let j = lid;
      y0[yrow + j] = 0.0;
    }
  }
}

fn run1(n: u32, lid: u32, len: u32) {
  var cs: array<f32, 1>;
  {
    let k = 0u;
    let j = lid;
    st[j] = x10[(u32(i32(P.s_N)) + n) * 8u + j];
    cs[k] = x11[(u32(i32(P.s_N)) + n) * 8u + j];
  }
  workgroupBarrier();
  var cur = 0u; // which half of the state holds h_{t−1}
  for (var s = 0u; s < len; s++) {
    let t = len - 1u - s;
    let xrow = u32(i32(P.s_N)) * u32(i32(P.s_L)) * 32u + (n * u32(i32(P.s_L)) + t) * 32u; // this step's projections in t0
    let yrow = (n * u32(i32(P.s_L)) + t) * 16u + 8u;
    let hin = cur * 8u;
    let hout = (1u - cur) * 8u;
    {
      let k = 0u;
      let j = lid;
      let g = vec4<f32>(t0[xrow + j], t0[xrow + 8u + j], t0[xrow + 16u + j], t0[xrow + 24u + j]) + hh1(j, hin); // gates i, f, g, o
      let cn = sigmoid(g.y) * cs[k] + sigmoid(g.x) * tanh_c(g.z);
      cs[k] = cn;
      let hn = sigmoid(g.w) * tanh_c(cn);
      st[hout + j] = hn;
      y0[yrow + j] = hn;
    }
    workgroupBarrier();
    cur = 1u - cur;
  }
  // Positions past the sequence's length are zeros.
  for (var t = len; t < u32(i32(P.s_L)); t++) {
    let yrow = (n * u32(i32(P.s_L)) + t) * 16u + 8u;
    {
      let k = 0u;
      let j = lid;
      y0[yrow + j] = 0.0;
    }
  }
}

@compute @workgroup_size(8)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) lid: u32) {
  LOOP0 = nwg.x >> 16u;
  let w = wid.x + wid.y * nwg.x;
  if (w >= u32(i32(P.s_N)) * 2u) { return; }
  let n = w / 2u;
  let lenI = x9[n];
  if (lenI < 0 || lenI > i32(u32(i32(P.s_L)))) {
    if (lid == 0u) { report_error(1u, lenI, n); }
    return;
  }
  let len = u32(lenI);
  if (w % 2u == 0u) { run0(n, lid, len); } else { run1(n, lid, len); }
}

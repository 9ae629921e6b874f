// k12_rnn_lm: IR node %12 = rnn (lm)
struct Params { s_N: u32, s_L: u32 }
@group(0) @binding(0) var<uniform> P: Params;
@group(0) @binding(1) var<storage, read> x0: array<f32>;
@group(0) @binding(2) var<storage, read> x1: array<f32>;
@group(0) @binding(3) var<storage, read> x2: array<vec4<f32>>;
@group(0) @binding(4) var<storage, read> x3: array<f32>;
@group(0) @binding(5) var<storage, read> x4: array<f32>;
@group(0) @binding(6) var<storage, read> x5: array<f32>;
@group(0) @binding(7) var<storage, read> x6: array<vec4<f32>>;
@group(0) @binding(8) var<storage, read> x7: array<f32>;
@group(0) @binding(9) var<storage, read> x8: array<f32>;
@group(0) @binding(10) var<storage, read> x9: array<i32>;
@group(0) @binding(11) var<storage, read> x10: array<f32>;
@group(0) @binding(12) var<storage, read> x11: array<f32>;
@group(0) @binding(13) var<storage, read_write> y0: array<f32>;
@group(0) @binding(14) var<storage, read_write> err: array<atomic<u32>, 4>;
fn report_error(kind: u32, a: i32, b: u32) {
  // The first error wins; the host reads [count, kind, a, b] back after the run.
  if (atomicAdd(&err[0], 1u) == 0u) {
    atomicStore(&err[1], kind);
    atomicStore(&err[2], bitcast<u32>(a));
    atomicStore(&err[3], b);
  }
}

// lstm, bidirectional, hidden 8, return sequence: x f32[N, L, 5] → y f32[N, L, 16].

// One workgroup per (sequence, direction); invocation lid owns units lid + k·8 (k < 1).

var<workgroup> st: array<f32, 16>; // h_{t−1} | h_t

fn sigmoid(v: f32) -> f32 { return 1.0 / (1.0 + exp(-clamp(v, -80.0, 80.0))); }

// Clamped: tanh(±15) is ±1 in f32, and some backends' tanh overflows to NaN for large |v|.

fn tanh_c(v: f32) -> f32 { return tanh(clamp(v, -15.0, 15.0)); }

fn ih0(r: u32, base: u32) -> f32 {
  var acc = x3[r];
  let row = r * 5u;
  for (var k = 0u; k < 5u; k++) {
    acc += x1[row + k] * x0[base + k];
  }
  return acc;
}

fn hh0(r: u32, base: u32) -> f32 {
  var acc = vec4<f32>(0.0);
  let row = r * 2u;
  for (var k = 0u; k < 2u; k++) {
    let i = base + 4u * k;
    acc += x2[row + k] * vec4<f32>(st[i], st[i + 1u], st[i + 2u], st[i + 3u]);
  }
  return x4[r] + ((acc.x + acc.y) + (acc.z + acc.w));
}

fn ih1(r: u32, base: u32) -> f32 {
  var acc = x7[r];
  let row = r * 5u;
  for (var k = 0u; k < 5u; k++) {
    acc += x5[row + k] * x0[base + k];
  }
  return acc;
}

fn hh1(r: u32, base: u32) -> f32 {
  var acc = vec4<f32>(0.0);
  let row = r * 2u;
  for (var k = 0u; k < 2u; k++) {
    let i = base + 4u * k;
    acc += x6[row + k] * vec4<f32>(st[i], st[i + 1u], st[i + 2u], st[i + 3u]);
  }
  return x8[r] + ((acc.x + acc.y) + (acc.z + acc.w));
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
    let xrow = (n * u32(i32(P.s_L)) + t) * 5u;
    let yrow = (n * u32(i32(P.s_L)) + t) * 16u + 0u;
    let hin = cur * 8u;
    let hout = (1u - cur) * 8u;
    {
      let k = 0u;
      let j = lid;
      let ig = sigmoid(ih0(j, xrow) + hh0(j, hin));
      let fg = sigmoid(ih0(8u + j, xrow) + hh0(8u + j, hin));
      let gg = tanh_c(ih0(16u + j, xrow) + hh0(16u + j, hin));
      let og = sigmoid(ih0(24u + j, xrow) + hh0(24u + j, hin));
      let cn = fg * cs[k] + ig * gg;
      cs[k] = cn;
      let hn = og * tanh_c(cn);
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
    let xrow = (n * u32(i32(P.s_L)) + t) * 5u;
    let yrow = (n * u32(i32(P.s_L)) + t) * 16u + 8u;
    let hin = cur * 8u;
    let hout = (1u - cur) * 8u;
    {
      let k = 0u;
      let j = lid;
      let ig = sigmoid(ih1(j, xrow) + hh1(j, hin));
      let fg = sigmoid(ih1(8u + j, xrow) + hh1(8u + j, hin));
      let gg = tanh_c(ih1(16u + j, xrow) + hh1(16u + j, hin));
      let og = sigmoid(ih1(24u + j, xrow) + hh1(24u + j, hin));
      let cn = fg * cs[k] + ig * gg;
      cs[k] = cn;
      let hn = og * tanh_c(cn);
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

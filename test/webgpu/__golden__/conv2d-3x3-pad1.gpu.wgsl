// k3_conv_c1: IR node %3 = conv (c1)
struct Params { s_N: u32 }
@group(0) @binding(0) var<uniform> P: Params;
@group(0) @binding(1) var<storage, read> x0: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> x1: array<f32>;
@group(0) @binding(3) var<storage, read> x2: array<f32>;
@group(0) @binding(4) var<storage, read_write> y0: array<f32>;

// conv2d (workgroup tiles of 8×8 outputs × 4 filters, 2 input channels per stage): x [u32(i32(P.s_N)), 2u, 8u, 8u] * w [4u, 2u, 3u, 3u] -> y [u32(i32(P.s_N)), 4u, 8u, 8u]; stride [1, 1], dilation [1, 1], padding [1, 1]..[1, 1]
fn load_x(i: i32) -> f32 { return x0[i / 4][i % 4]; }
fn load_w(i: i32) -> f32 { return x1[i]; }
var<workgroup> xs: array<f32, 200>;
var<workgroup> ws: array<f32, 72>;

@compute @workgroup_size(8, 8)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_id) lid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let N = i32(P.s_N);
  let n = i32(wid.z);
  let f0 = 4 * (i32(wid.y));
  let xg = 64 * (2 * n);
  let lx = i32(lid.x);
  let ly = i32(lid.y);
  let li = i32(lid.y * 8u + lid.x);
  for (var t = i32(wid.x); t < 1; t += i32(nwg.x)) {
    let oh0 = 8 * t;
    let ph0 = oh0 - 1;
    var a0 = x2[f0]; var a1 = x2[f0 + 1]; var a2 = x2[f0 + 2]; var a3 = x2[f0 + 3];
    for (var c0 = 0; c0 < 2; c0 += 2) {
      workgroupBarrier();
      for (var e = li; e < 200; e += 64) {
        let ce = e / 100;
        let zh = (e / 10) % 10;
        let zw = e % 10;
        let qh = clamp(ph0 + zh, 0, 7);
        let qw = clamp(zw - 1, 0, 7);
        xs[e] = select(0.0, load_x(xg + 64 * (min(c0 + ce, 1)) + 8 * qh + qw), c0 + ce < 2 && ((ph0 + zh) >= 0 && (ph0 + zh) < 8) && ((zw - 1) >= 0 && (zw - 1) < 8));
      }
      for (var e = li; e < 72; e += 64) {
        let wj = e / 18;
        let wcl = (e / 9) % 2;
        let wt = e % 9;
        ws[e] = select(0.0, load_w(18 * (f0 + wj) + 9 * (min(c0 + wcl, 1)) + wt), c0 + wcl < 2);
      }
      workgroupBarrier();
      for (var cl = 0; cl < 2; cl++) {
        let xb = 100 * cl + 10 * ly + lx;
        let wb = 9 * cl;
        for (var kh = 0; kh < 3; kh++) {
          for (var kw = 0; kw < 3; kw++) {
            let tap = wb + 3 * kh + kw;
            let v = xs[xb + 10 * kh + kw];
            a0 = fma(v, ws[tap], a0); a1 = fma(v, ws[tap + 18], a1); a2 = fma(v, ws[tap + 36], a2); a3 = fma(v, ws[tap + 54], a3);
          }
        }
      }
    }
    let oh = oh0 + ly;
    if (oh < 8 && lx < 8) {
      let yb = 64 * (4 * n + f0) + 8 * oh + lx;
      y0[yb] = a0; y0[yb + 64] = a1; y0[yb + 128] = a2; y0[yb + 192] = a3;
    }
  }
}

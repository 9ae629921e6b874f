// k3_conv_c1: IR node %3 = conv (c1)
struct Params { s_N: u32 }
@group(0) @binding(0) var<uniform> P: Params;
@group(0) @binding(1) var<storage, read> x0: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> x1: array<f32>;
@group(0) @binding(3) var<storage, read> x2: array<f32>;
@group(0) @binding(4) var<storage, read_write> y0: array<f32>;

// conv2d (register tiles of 4 filters × 8 columns, vec4 input rows): x [u32(i32(P.s_N)), 2u, 8u, 8u] * w [4u, 2u, 3u, 3u] -> y [u32(i32(P.s_N)), 4u, 8u, 8u]; stride [1, 1], dilation [1, 1], padding [1, 1]..[1, 1]
@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_id) lid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let N = i32(P.s_N);
  let tiles = 8 * N;
  let f0 = 4 * (i32(wid.y));
  for (var t = i32(wid.x) * 64 + i32(lid.x); t < tiles; t += i32(nwg.x) * 64) {
    let oh = t % 8;
    let plane = t / 8;
    let xg = 16 * (2 * plane);
    // input columns read by the tile: pw0 + {0, 1, 2, 3, 4, 5, 6, 7, 8, 9}
    let cq0 = clamp(-1, 0, 1);
    let cq1 = clamp(0, 0, 1);
    let cq2 = clamp(1, 0, 1);
    let cq3 = clamp(2, 0, 1);
    let cok0 = -1 >= 0 && -1 < 8;
    let cok1 = 0 >= 0 && 0 < 8;
    let cok2 = 1 >= 0 && 1 < 8;
    let cok3 = 2 >= 0 && 2 < 8;
    let cok4 = 3 >= 0 && 3 < 8;
    let cok5 = 4 >= 0 && 4 < 8;
    let cok6 = 5 >= 0 && 5 < 8;
    let cok7 = 6 >= 0 && 6 < 8;
    let cok8 = 7 >= 0 && 7 < 8;
    let cok9 = 8 >= 0 && 8 < 8;
    let b0 = x2[f0];
    var a0_0 = b0; var a0_1 = b0; var a0_2 = b0; var a0_3 = b0; var a0_4 = b0; var a0_5 = b0; var a0_6 = b0; var a0_7 = b0;
    let b1 = x2[f0 + 1];
    var a1_0 = b1; var a1_1 = b1; var a1_2 = b1; var a1_3 = b1; var a1_4 = b1; var a1_5 = b1; var a1_6 = b1; var a1_7 = b1;
    let b2 = x2[f0 + 2];
    var a2_0 = b2; var a2_1 = b2; var a2_2 = b2; var a2_3 = b2; var a2_4 = b2; var a2_5 = b2; var a2_6 = b2; var a2_7 = b2;
    let b3 = x2[f0 + 3];
    var a3_0 = b3; var a3_1 = b3; var a3_2 = b3; var a3_3 = b3; var a3_4 = b3; var a3_5 = b3; var a3_6 = b3; var a3_7 = b3;
    let opaque = i32(arrayLength(&x1));
    for (var ch = 0; ch < min(2, opaque); ch++) {
      let wc = 18 * f0 + 9 * ch;
      let xc = xg + 16 * ch;
      for (var kh = 0; kh < 3; kh++) {
        if (!(((oh + kh - 1) >= 0 && (oh + kh - 1) < 8))) { continue; }
        let zh = clamp(oh + kh - 1, 0, 7);
        let xr = xc + 2 * zh;
        let wr = wc + 3 * kh;
        let q0 = x0[xr + cq0];
        let q1 = x0[xr + cq1];
        let q2 = x0[xr + cq2];
        let q3 = x0[xr + cq3];
        let v0 = select(0.0, q0.w, cok0);
        let v1 = select(0.0, q1.x, cok1);
        let v2 = select(0.0, q1.y, cok2);
        let v3 = select(0.0, q1.z, cok3);
        let v4 = select(0.0, q1.w, cok4);
        let v5 = select(0.0, q2.x, cok5);
        let v6 = select(0.0, q2.y, cok6);
        let v7 = select(0.0, q2.z, cok7);
        let v8 = select(0.0, q2.w, cok8);
        let v9 = select(0.0, q3.x, cok9);
        let w0_0 = x1[wr];
        a0_0 = fma(w0_0, v0, a0_0); a0_1 = fma(w0_0, v1, a0_1); a0_2 = fma(w0_0, v2, a0_2); a0_3 = fma(w0_0, v3, a0_3); a0_4 = fma(w0_0, v4, a0_4); a0_5 = fma(w0_0, v5, a0_5); a0_6 = fma(w0_0, v6, a0_6); a0_7 = fma(w0_0, v7, a0_7);
        let w1_0 = x1[wr + 18];
        a1_0 = fma(w1_0, v0, a1_0); a1_1 = fma(w1_0, v1, a1_1); a1_2 = fma(w1_0, v2, a1_2); a1_3 = fma(w1_0, v3, a1_3); a1_4 = fma(w1_0, v4, a1_4); a1_5 = fma(w1_0, v5, a1_5); a1_6 = fma(w1_0, v6, a1_6); a1_7 = fma(w1_0, v7, a1_7);
        let w2_0 = x1[wr + 36];
        a2_0 = fma(w2_0, v0, a2_0); a2_1 = fma(w2_0, v1, a2_1); a2_2 = fma(w2_0, v2, a2_2); a2_3 = fma(w2_0, v3, a2_3); a2_4 = fma(w2_0, v4, a2_4); a2_5 = fma(w2_0, v5, a2_5); a2_6 = fma(w2_0, v6, a2_6); a2_7 = fma(w2_0, v7, a2_7);
        let w3_0 = x1[wr + 54];
        a3_0 = fma(w3_0, v0, a3_0); a3_1 = fma(w3_0, v1, a3_1); a3_2 = fma(w3_0, v2, a3_2); a3_3 = fma(w3_0, v3, a3_3); a3_4 = fma(w3_0, v4, a3_4); a3_5 = fma(w3_0, v5, a3_5); a3_6 = fma(w3_0, v6, a3_6); a3_7 = fma(w3_0, v7, a3_7);
        let w0_1 = x1[wr + 1];
        a0_0 = fma(w0_1, v1, a0_0); a0_1 = fma(w0_1, v2, a0_1); a0_2 = fma(w0_1, v3, a0_2); a0_3 = fma(w0_1, v4, a0_3); a0_4 = fma(w0_1, v5, a0_4); a0_5 = fma(w0_1, v6, a0_5); a0_6 = fma(w0_1, v7, a0_6); a0_7 = fma(w0_1, v8, a0_7);
        let w1_1 = x1[wr + 19];
        a1_0 = fma(w1_1, v1, a1_0); a1_1 = fma(w1_1, v2, a1_1); a1_2 = fma(w1_1, v3, a1_2); a1_3 = fma(w1_1, v4, a1_3); a1_4 = fma(w1_1, v5, a1_4); a1_5 = fma(w1_1, v6, a1_5); a1_6 = fma(w1_1, v7, a1_6); a1_7 = fma(w1_1, v8, a1_7);
        let w2_1 = x1[wr + 37];
        a2_0 = fma(w2_1, v1, a2_0); a2_1 = fma(w2_1, v2, a2_1); a2_2 = fma(w2_1, v3, a2_2); a2_3 = fma(w2_1, v4, a2_3); a2_4 = fma(w2_1, v5, a2_4); a2_5 = fma(w2_1, v6, a2_5); a2_6 = fma(w2_1, v7, a2_6); a2_7 = fma(w2_1, v8, a2_7);
        let w3_1 = x1[wr + 55];
        a3_0 = fma(w3_1, v1, a3_0); a3_1 = fma(w3_1, v2, a3_1); a3_2 = fma(w3_1, v3, a3_2); a3_3 = fma(w3_1, v4, a3_3); a3_4 = fma(w3_1, v5, a3_4); a3_5 = fma(w3_1, v6, a3_5); a3_6 = fma(w3_1, v7, a3_6); a3_7 = fma(w3_1, v8, a3_7);
        let w0_2 = x1[wr + 2];
        a0_0 = fma(w0_2, v2, a0_0); a0_1 = fma(w0_2, v3, a0_1); a0_2 = fma(w0_2, v4, a0_2); a0_3 = fma(w0_2, v5, a0_3); a0_4 = fma(w0_2, v6, a0_4); a0_5 = fma(w0_2, v7, a0_5); a0_6 = fma(w0_2, v8, a0_6); a0_7 = fma(w0_2, v9, a0_7);
        let w1_2 = x1[wr + 20];
        a1_0 = fma(w1_2, v2, a1_0); a1_1 = fma(w1_2, v3, a1_1); a1_2 = fma(w1_2, v4, a1_2); a1_3 = fma(w1_2, v5, a1_3); a1_4 = fma(w1_2, v6, a1_4); a1_5 = fma(w1_2, v7, a1_5); a1_6 = fma(w1_2, v8, a1_6); a1_7 = fma(w1_2, v9, a1_7);
        let w2_2 = x1[wr + 38];
        a2_0 = fma(w2_2, v2, a2_0); a2_1 = fma(w2_2, v3, a2_1); a2_2 = fma(w2_2, v4, a2_2); a2_3 = fma(w2_2, v5, a2_3); a2_4 = fma(w2_2, v6, a2_4); a2_5 = fma(w2_2, v7, a2_5); a2_6 = fma(w2_2, v8, a2_6); a2_7 = fma(w2_2, v9, a2_7);
        let w3_2 = x1[wr + 56];
        a3_0 = fma(w3_2, v2, a3_0); a3_1 = fma(w3_2, v3, a3_1); a3_2 = fma(w3_2, v4, a3_2); a3_3 = fma(w3_2, v5, a3_3); a3_4 = fma(w3_2, v6, a3_4); a3_5 = fma(w3_2, v7, a3_5); a3_6 = fma(w3_2, v8, a3_6); a3_7 = fma(w3_2, v9, a3_7);
      }
    }
    let yb = 64 * (4 * plane + f0) + 8 * oh;
    y0[yb] = a0_0; y0[yb + 64] = a1_0; y0[yb + 128] = a2_0; y0[yb + 192] = a3_0;
    y0[yb + 1] = a0_1; y0[yb + 65] = a1_1; y0[yb + 129] = a2_1; y0[yb + 193] = a3_1;
    y0[yb + 2] = a0_2; y0[yb + 66] = a1_2; y0[yb + 130] = a2_2; y0[yb + 194] = a3_2;
    y0[yb + 3] = a0_3; y0[yb + 67] = a1_3; y0[yb + 131] = a2_3; y0[yb + 195] = a3_3;
    y0[yb + 4] = a0_4; y0[yb + 68] = a1_4; y0[yb + 132] = a2_4; y0[yb + 196] = a3_4;
    y0[yb + 5] = a0_5; y0[yb + 69] = a1_5; y0[yb + 133] = a2_5; y0[yb + 197] = a3_5;
    y0[yb + 6] = a0_6; y0[yb + 70] = a1_6; y0[yb + 134] = a2_6; y0[yb + 198] = a3_6;
    y0[yb + 7] = a0_7; y0[yb + 71] = a1_7; y0[yb + 135] = a2_7; y0[yb + 199] = a3_7;
  }
}

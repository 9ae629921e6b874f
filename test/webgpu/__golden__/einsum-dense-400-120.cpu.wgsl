// k2_einsum_f1: IR node %2 = einsum (f1)
struct Params { s_N: u32 }
@group(0) @binding(0) var<uniform> P: Params;
@group(0) @binding(1) var<storage, read> x0: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> x1: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read_write> y0: array<f32>;

// y0[…0, o] = Σ_i x0[…0, i] · x1[o, i]
// GEMM (register tile): 4 × 4 outputs per invocation, K step 4; x0 vec4 along the reduction, x1 vec4 along the reduction loads
@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let M = u32(i32(P.s_N));
  let tiles = u32(30 * ((i32(u32(i32(P.s_N) + 3))) / 4));
  let tile = gid.x + gid.y * (nwg.x * 64u);
  if (tile >= tiles) { return; }
  let m0 = (tile / 30u) * 4u;
  let n0 = (tile % 30u) * 4u;
  let m1 = min(m0 + 1u, M - 1u);
  let m2 = min(m0 + 2u, M - 1u);
  let m3 = min(m0 + 3u, M - 1u);
  let n1 = n0 + 1u;
  let n2 = n0 + 2u;
  let n3 = n0 + 3u;
  let xa0 = m0 * 400u;
  let xa1 = m1 * 400u;
  let xa2 = m2 * 400u;
  let xa3 = m3 * 400u;
  let xb0 = n0 * 400u;
  let xb1 = n1 * 400u;
  let xb2 = n2 * 400u;
  let xb3 = n3 * 400u;
  var acc00 = 0.0; var acc01 = 0.0; var acc02 = 0.0; var acc03 = 0.0;
  var acc10 = 0.0; var acc11 = 0.0; var acc12 = 0.0; var acc13 = 0.0;
  var acc20 = 0.0; var acc21 = 0.0; var acc22 = 0.0; var acc23 = 0.0;
  var acc30 = 0.0; var acc31 = 0.0; var acc32 = 0.0; var acc33 = 0.0;
  for (var k = 0u; k < 400u; k += 4u) {
    let ka0 = k;
    let kb0 = k;
    let a0 = x0[(xa0 + ka0) / 4u];
    let a1 = x0[(xa1 + ka0) / 4u];
    let a2 = x0[(xa2 + ka0) / 4u];
    let a3 = x0[(xa3 + ka0) / 4u];
    let b0 = x1[(xb0 + kb0) / 4u];
    let b1 = x1[(xb1 + kb0) / 4u];
    let b2 = x1[(xb2 + kb0) / 4u];
    let b3 = x1[(xb3 + kb0) / 4u];
    acc00 += a0.x * b0.x + a0.y * b0.y + a0.z * b0.z + a0.w * b0.w;
    acc01 += a0.x * b1.x + a0.y * b1.y + a0.z * b1.z + a0.w * b1.w;
    acc02 += a0.x * b2.x + a0.y * b2.y + a0.z * b2.z + a0.w * b2.w;
    acc03 += a0.x * b3.x + a0.y * b3.y + a0.z * b3.z + a0.w * b3.w;
    acc10 += a1.x * b0.x + a1.y * b0.y + a1.z * b0.z + a1.w * b0.w;
    acc11 += a1.x * b1.x + a1.y * b1.y + a1.z * b1.z + a1.w * b1.w;
    acc12 += a1.x * b2.x + a1.y * b2.y + a1.z * b2.z + a1.w * b2.w;
    acc13 += a1.x * b3.x + a1.y * b3.y + a1.z * b3.z + a1.w * b3.w;
    acc20 += a2.x * b0.x + a2.y * b0.y + a2.z * b0.z + a2.w * b0.w;
    acc21 += a2.x * b1.x + a2.y * b1.y + a2.z * b1.z + a2.w * b1.w;
    acc22 += a2.x * b2.x + a2.y * b2.y + a2.z * b2.z + a2.w * b2.w;
    acc23 += a2.x * b3.x + a2.y * b3.y + a2.z * b3.z + a2.w * b3.w;
    acc30 += a3.x * b0.x + a3.y * b0.y + a3.z * b0.z + a3.w * b0.w;
    acc31 += a3.x * b1.x + a3.y * b1.y + a3.z * b1.z + a3.w * b1.w;
    acc32 += a3.x * b2.x + a3.y * b2.y + a3.z * b2.z + a3.w * b2.w;
    acc33 += a3.x * b3.x + a3.y * b3.y + a3.z * b3.z + a3.w * b3.w;
  }
  let oc0 = n0;
  let oc1 = n1;
  let oc2 = n2;
  let oc3 = n3;
  let or0 = m0 * 120u;
  y0[or0 + oc0] = acc00;
  y0[or0 + oc1] = acc01;
  y0[or0 + oc2] = acc02;
  y0[or0 + oc3] = acc03;
  if (m0 + 1u < M) {
    let or1 = m1 * 120u;
    y0[or1 + oc0] = acc10;
    y0[or1 + oc1] = acc11;
    y0[or1 + oc2] = acc12;
    y0[or1 + oc3] = acc13;
  }
  if (m0 + 2u < M) {
    let or2 = m2 * 120u;
    y0[or2 + oc0] = acc20;
    y0[or2 + oc1] = acc21;
    y0[or2 + oc2] = acc22;
    y0[or2 + oc3] = acc23;
  }
  if (m0 + 3u < M) {
    let or3 = m3 * 120u;
    y0[or3 + oc0] = acc30;
    y0[or3 + oc1] = acc31;
    y0[or3 + oc2] = acc32;
    y0[or3 + oc3] = acc33;
  }
}

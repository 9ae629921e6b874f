// k2_einsum_f1: IR node %2 = einsum (f1)
struct Params { s_N: u32 }
@group(0) @binding(0) var<uniform> P: Params;
@group(0) @binding(1) var<storage, read> x0: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> x1: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read_write> y0: array<f32>;

// y0[…0, o] = Σ_i x0[…0, i] · x1[o, i]
// GEMM (shared-memory tiles): 16 × 16 outputs per workgroup, K tiles of 16
var<workgroup> tile_x: array<f32, 256>;
var<workgroup> tile_y: array<f32, 256>;
@compute @workgroup_size(16, 16)
fn main(@builtin(local_invocation_id) lid: vec3u, @builtin(local_invocation_index) li: u32, @builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let M = u32(i32(P.s_N));
  let tiles_m = u32(((i32(u32(i32(P.s_N) + 15))) / 16));
  for (var tm = wid.y; tm < tiles_m; tm += nwg.y) {
    for (var tn = wid.x; tn < 8u; tn += nwg.x) {
      let m = tm * 16u + lid.y;
      let n = tn * 16u + lid.x;
      var acc = 0.0;
      for (var k0 = 0u; k0 < 400u; k0 += 16u) {
        for (var e = li; e < 256u; e += 256u) {
          let i = e / 16u; let kk = e % 16u;
          let g = tm * 16u + i; let gk = k0 + kk;
          var v = 0.0;
          if (g < M) { let at = g * 400u + gk; v = x0[at / 4u][at % 4u]; }
          tile_x[i * 16u + kk] = v;
        }
        for (var e = li; e < 256u; e += 256u) {
          let i = e / 16u; let kk = e % 16u;
          let g = tn * 16u + i; let gk = k0 + kk;
          var v = 0.0;
          if (g < 120u) { let at = g * 400u + gk; v = x1[at / 4u][at % 4u]; }
          tile_y[kk * 16u + i] = v;
        }
        workgroupBarrier();
        for (var kk = 0u; kk < 16u; kk++) {
          acc += tile_x[lid.y * 16u + kk] * tile_y[kk * 16u + lid.x];
        }
        workgroupBarrier();
      }
      if (m < M && n < 120u) { y0[m * 120u + n] = acc; }
    }
  }
}

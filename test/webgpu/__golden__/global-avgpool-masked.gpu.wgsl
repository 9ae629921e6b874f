// k2_global_pool_p: IR node %2 = global_pool (p)
struct Params { s_N: u32, s_L: u32 }
@group(0) @binding(0) var<uniform> P: Params;
@group(0) @binding(1) var<storage, read> x0: array<f32>;
@group(0) @binding(2) var<storage, read> x1: array<u32>;
@group(0) @binding(3) var<storage, read_write> y0: array<f32>;

// global avg pool over the spatial dims (one workgroup per row, tree reduction): x [u32(i32(P.s_N)), 3u, u32(i32(P.s_L))] -> y [u32(i32(P.s_N)), 3u], masked
var<workgroup> part: array<f32, 64>;
var<workgroup> parts: array<i32, 64>;
@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_id) lid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let row = i32(wid.x + wid.y * nwg.x);
  let S0 = i32(P.s_L);
  let M0 = i32(P.s_N);
  let rows = i32(3u * u32(i32(P.s_N)));
  if (row >= rows) { return; }
  let li = i32(lid.x);
  let xb = row * S0;
  let mb = (row / 3) * S0;
  var acc = 0.0;
  var cnt = 0;
  for (var q = li; q < S0; q += 64) {
    let v = x0[xb + q];
    if (x1[mb + q] != 0u) { acc += v; cnt++; }
  }
  part[li] = acc;
  parts[li] = cnt;
  for (var w = 32; w > 0; w >>= 1u) {
    workgroupBarrier();
    if (li < w) {
      part[li] += part[li + w];
      parts[li] += parts[li + w];
    }
  }
  if (li == 0) {
    y0[row] = select(0.0, part[0] / f32(parts[0]), parts[0] > 0);
  }
}

// k1_reduce_y: IR node %1 = reduce (y)
struct Params { s_N: u32, s_L: u32 }
@group(0) @binding(0) var<uniform> P: Params;
@group(0) @binding(1) var<storage, read> x0: array<f32>;
@group(0) @binding(2) var<storage, read_write> y0: array<f32>;

var<workgroup> part: array<f32, 64>;

@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_index) lid: u32, @builtin(num_workgroups) nwg: vec3u) {
  let outputs = P.s_N * P.s_L;
  let stride0 = 16u * P.s_L;
  let o = wid.x + wid.y * nwg.x;
  if (o >= outputs) { return; }
  let k0 = o / P.s_L;
  let k1 = o % P.s_L;
  let base = k0 * stride0 + k1;
  var acc = 0f;
  for (var r = lid; r < 16u; r += 64u) {
    let v = x0[base + r * P.s_L];
    acc += v;
  }
  part[lid] = acc;
  workgroupBarrier();
  for (var s = 32u; s > 0u; s >>= 1u) {
    if (lid < s) { part[lid] = part[lid] + part[lid + s]; }
    workgroupBarrier();
  }
  if (lid == 0u) { y0[o] = part[0]; }
}

// k3_layernorm_ln: IR node %3 = layernorm (ln)
struct Params { s_N: u32, s_L: u32 }
@group(0) @binding(0) var<uniform> P: Params;
@group(0) @binding(1) var<storage, read> x0: array<f32>;
@group(0) @binding(2) var<storage, read> x1: array<f32>;
@group(0) @binding(3) var<storage, read> x2: array<f32>;
@group(0) @binding(4) var<storage, read_write> y0: array<f32>;

fn row_base(r: u32) -> u32 { return (r / u32(i32(P.s_L))) * (5u * u32(i32(P.s_L))) + r % u32(i32(P.s_L)); }
fn elem(k: u32) -> u32 { return k * u32(i32(P.s_L)); }

var<workgroup> part: array<f32, 32>;

// One workgroup per row: strided loads, tree reductions for the mean and the variance.
@compute @workgroup_size(32) fn main(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_id) lid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  _ = P;
  let r = wid.x + wid.y * nwg.x;
  if (r >= u32(i32(P.s_N)) * u32(i32(P.s_L))) { return; }
  let base = row_base(r);
  let g = 5u;
  var sum = 0.0;
  for (var k = lid.x; k < g; k += 32u) { sum += x0[base + elem(k)]; }
  part[lid.x] = sum;
  workgroupBarrier();
  for (var s = 16u; s > 0u; s = s >> 1u) {
    if (lid.x < s) { part[lid.x] += part[lid.x + s]; }
    workgroupBarrier();
  }
  let mean = part[0] / f32(g);
  workgroupBarrier();
  var sq = 0.0;
  for (var k = lid.x; k < g; k += 32u) { let d = x0[base + elem(k)] - mean; sq += d * d; }
  part[lid.x] = sq;
  workgroupBarrier();
  for (var s = 16u; s > 0u; s = s >> 1u) {
    if (lid.x < s) { part[lid.x] += part[lid.x + s]; }
    workgroupBarrier();
  }
  let inv = 1.0 / sqrt(part[0] / f32(g) + 0.00001f);
  for (var k = lid.x; k < g; k += 32u) {
    let at = base + elem(k);
    y0[at] = (x0[at] - mean) * inv * x1[k] + x2[k];
  }
}

// k1_transpose_y: IR node %1 = transpose (y)
struct Params { s_N: u32 }
@group(0) @binding(0) var<uniform> P: Params;
@group(0) @binding(1) var<storage, read> x0: array<f32>;
@group(0) @binding(2) var<storage, read_write> y0: array<f32>;

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let n = 60u * P.s_N;
  let i = gid.x + gid.y * (nwg.x * 64u);
  if (i >= n) { return; }
  // output order of the input axes: [0, 2, 3, 1]
  let c0 = i / 60u;
  let c1 = (i / 3u) % 20u;
  let c2 = i % 3u;
  y0[i] = x0[c0 * 60u + c1 + c2 * 20u];
}

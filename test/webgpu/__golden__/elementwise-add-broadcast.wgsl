// k2_add_y: IR node %2 = add (y)
struct Params { s_N: u32 }
@group(0) @binding(0) var<uniform> P: Params;
@group(0) @binding(1) var<storage, read> x0: array<f32>;
@group(0) @binding(2) var<storage, read> x1: array<f32>;
@group(0) @binding(3) var<storage, read_write> y0: array<f32>;

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let n = 60u * P.s_N;
  let i = gid.x + gid.y * (nwg.x * 64u);
  if (i >= n) { return; }
  let c1 = (i / 20u) % 3u;
  let a = x0[i];
  let b = x1[c1];
  y0[i] = a + b;
}

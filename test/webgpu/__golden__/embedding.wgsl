// k2_embedding_emb: IR node %2 = embedding (emb)
struct Params { s_N: u32, s_L: u32 }
@group(0) @binding(0) var<uniform> P: Params;
@group(0) @binding(1) var<storage, read> x0: array<i32>;
@group(0) @binding(2) var<storage, read> x1: array<f32>;
@group(0) @binding(3) var<storage, read_write> y0: array<f32>;
@group(0) @binding(4) var<storage, read_write> err: array<atomic<u32>, 5>;
fn report_error(kind: u32, a: i32, b: u32) {
  if (atomicAdd(&err[0], 1u) == 0u) {
    atomicStore(&err[1], kind);
    atomicStore(&err[2], bitcast<u32>(a));
    atomicStore(&err[3], b);
    atomicStore(&err[4], 2u);
  }
}

// Row gather over i32[N, L] tokens from a f32[100, 16] table; padding_idx 0 gives zeros.
@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = gid.x + gid.y * (nwg.x * 64u);
  if (i >= 16u * u32(i32(P.s_N)) * u32(i32(P.s_L))) { return; }
  let k = i / 16u;
  let j = i - k * 16u;
  let token = x0[k];
  if (token < 0 || token >= 100 || token == 0) {
    // Out of range: report once per token (from its first element), never read.
    if (j == 0u && (token < 0 || token >= 100)) { report_error(1u, token, k); }
    y0[i] = 0.0;
    return;
  }
  y0[i] = x1[u32(token) * 16u + j];
}

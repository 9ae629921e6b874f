// k3_cross_entropy_xent: IR node %3 = cross_entropy (xent)
struct Params { s_N: u32, s_L: u32 }
@group(0) @binding(0) var<uniform> P: Params;
@group(0) @binding(1) var<storage, read> x0: array<f32>;
@group(0) @binding(2) var<storage, read> x1: array<i32>;
@group(0) @binding(3) var<storage, read> x2: array<u32>;
@group(0) @binding(4) var<storage, read_write> y0: array<f32>;
@group(0) @binding(5) var<storage, read_write> err: array<atomic<u32>, 5>;
fn report_error(kind: u32, a: i32, b: u32) {
  if (atomicAdd(&err[0], 1u) == 0u) {
    atomicStore(&err[1], kind);
    atomicStore(&err[2], bitcast<u32>(a));
    atomicStore(&err[3], b);
    atomicStore(&err[4], 3u);
  }
}

fn term(p: u32) -> vec2f {
  if (x2[p] == 0u) { return vec2f(0.0, 0.0); }
  let label = x1[p];
  if (label == -100) { return vec2f(0.0, 0.0); }
  if (label < 0 || label >= 4) {
    report_error(1u, label, p);
    return vec2f(0.0, 0.0);
  }
  let base = (p / u32(i32(P.s_L))) * 4u * u32(i32(P.s_L)) + p % u32(i32(P.s_L));
  var top = x0[base];
  for (var k = 1u; k < 4u; k++) { top = max(top, x0[base + k * u32(i32(P.s_L))]); }
  var sum = 0.0;
  for (var k = 0u; k < 4u; k++) { sum += exp(x0[base + k * u32(i32(P.s_L))] - top); }
  return vec2f((top - x0[base + u32(label) * u32(i32(P.s_L))]) + log(sum), 1.0);
}

var<workgroup> part_sum: array<f32, 256>;
var<workgroup> part_count: array<u32, 256>;

@compute @workgroup_size(256) fn main(@builtin(local_invocation_id) lid: vec3u) {
  _ = P;
  let n = u32(i32(P.s_N)) * u32(i32(P.s_L));
  var sum = 0.0;
  var counted = 0u;
  for (var p = lid.x; p < n; p += 256u) {
    let r = term(p);
    sum += r.x;
    counted += u32(r.y);
  }
  part_sum[lid.x] = sum;
  part_count[lid.x] = counted;
  workgroupBarrier();
  for (var s = 128u; s > 0u; s = s >> 1u) {
    if (lid.x < s) {
      part_sum[lid.x] += part_sum[lid.x + s];
      part_count[lid.x] += part_count[lid.x + s];
    }
    workgroupBarrier();
  }
  if (lid.x == 0u) {
    let total = part_sum[0];
    let counted = part_count[0];
    y0[0] = select(0.0, total / f32(counted), counted > 0u);
  }
}

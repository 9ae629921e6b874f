// WGSL kernel for the `rnn` op (compiler/ops/rnn.ts): one persistent compute
// pass runs the whole recurrence, in one of two layouts.
//
// "gpu" (real GPUs): one workgroup per (sequence n, direction d) runs that
// sequence's time loop; each invocation owns hidden units j = lid + k·WG (k < U)
// and, per step, computes the G gate rows of its units (the input projection
// W_ih[r]·x_t + b_ih[r] and the recurrent projection W_hh[r]·h_{t−1} + b_hh[r]),
// the gate arithmetic, and writes h_t into workgroup memory. h is double
// buffered (h_{t−1} read, h_t written), so one barrier per step separates the
// steps; mgu needs a second because its candidate multiplies W_hn by f ⊙ h,
// which mixes every unit's forget gate. c (lstm) and f (mgu) stay in the owning
// invocation's registers. State that outgrows the portable 16 KiB of workgroup
// memory ((2 or 3)·H floats: H > 1365) lives in a scratch slice per workgroup,
// with storage barriers.
//
// "cpu" (lavapipe, SwiftShader): one invocation per (sequence, direction) runs
// every unit itself, with the state in private arrays, and no barrier at all.
// The invocations of a workgroup are neighbouring sequences of one direction,
// so a CPU adapter runs them as SIMD lanes in lockstep: every weight load has
// the same address in all lanes (one broadcast load per 8 multiply-adds) and
// private arrays are lane-interleaved (contiguous vector loads). The "gpu"
// layout is the opposite there: lanes are units, each reading its own weight
// row (a gather per multiply-add), and barriers become coroutine switches whose
// code LLVM takes minutes to compile at H = 128. Measured on lavapipe (2 loaded
// cores), LSTM N=16 L=100 D=64 H=128 forward: "cpu" ≈ 0.1 s per run vs ≈ 2 s for
// "gpu", and ≈ 0.8 s for the JS kernel. Large H keeps the "gpu" layout (private
// arrays of that size would live on the CPU thread's stack).
//
// Why not a separate pass for the input projections (a GEMM over all (n, t) rows,
// then the recurrence reading them): scratch buffers belong to one pass in the
// runtime, so a projection pass cannot hand its results to the next pass; and the
// total work is the same either way. What a hoisted GEMM would add is parallelism
// across time when N·dirs does not fill the device. One dispatch per step was not
// chosen either: L is symbolic (a pass list is static) and the state would
// round-trip through global memory between dispatches.
//
// Weight rows whose length is a multiple of 4 are read as vec4 (a quarter of the
// loads; rows have static sizes, so the binding is never under 16 bytes).
//
// Ragged lengths: each sequence checks its own ℓ (outside [0, L] → report_error and
// return, the run rejects), runs ℓ steps (backward from ℓ − 1), writes zeros at
// t ≥ ℓ in "sequence" mode, and its final state (h0 or zeros for ℓ = 0) in "last".

import type { Dim } from "../../ir/dims.ts";
import { typeToString } from "../../ir/types.ts";
import { GATES, directionCount, rnnLayout, type RnnAttrs, type RnnDirectionInputs } from "../../ops/rnn.ts";
import type { WgslEmitCtx, WgslKernel, WgslKernelResult } from "./kernel.ts";

/** "gpu": most invocations per workgroup (units beyond are looped over). */
const MAX_WORKGROUP = 256;
/** WebGPU's default maxComputeWorkgroupStorageSize, in f32 elements. */
const WORKGROUP_FLOATS = 16384 / 4;
/** "cpu": sequences per workgroup (SIMD lanes on a CPU adapter). */
const CPU_LANES = 8;
/** "cpu": most private floats per invocation before falling back to the "gpu" layout. */
const CPU_PRIVATE_FLOATS = 4096;

/** Error kinds this kernel reports. */
const ERR_LENGTH = 1;
const ERR_LENGTHS_BATCH = 2;
const ERR_H0_BATCH = 3;
const ERR_C0_BATCH = 4;

interface Plan {
  readonly a: RnnAttrs;
  readonly H: number;
  readonly D: number;
  readonly dirs: number;
  /** WGSL u32 expressions for N and L. */
  readonly N: string;
  readonly L: string;
  readonly layout: "gpu" | "cpu";
  /** "gpu": invocations per workgroup and units per invocation. "cpu": 1 and H. */
  readonly WG: number;
  readonly U: number;
  /** The state array (`st`: workgroup or private; `t0`: scratch) and the barrier between steps ("" for none). */
  readonly state: "st" | "t0";
  readonly barrier: string;
  readonly stateLen: number;
  /** Offset of this sequence's slice of the state: "" unless in scratch ("sbase + "). */
  readonly stateBase: string;
  readonly h0?: string;
  readonly c0?: string;
  readonly hasLengths: boolean;
  readonly vecIh: boolean;
  readonly vecHh: boolean;
}

interface DirNames {
  readonly wIh: string;
  readonly wHh: string;
  readonly bIh?: string;
  readonly bHh?: string;
}

const indent = (lines: readonly string[], n: number) => lines.map((l) => (l ? " ".repeat(n) + l : l));

/**
 * `fn <name>(r, base) -> f32`: bias[r] + Σ_k w[r, k]·v[base + k] over a row of length K,
 * with vec4 weight loads when the row length allows it.
 */
function emitRowDot(name: string, w: string, bias: string | undefined, v: (i: string) => string, K: number, vec: boolean): string {
  const init = bias ? `${bias}[r]` : "0.0";
  if (vec) {
    const q = K / 4;
    return [
      `fn ${name}(r: u32, base: u32) -> f32 {`,
      `  var acc = vec4<f32>(0.0);`,
      `  let row = r * ${q}u;`,
      `  for (var k = 0u; k < ${q}u; k++) {`,
      `    let i = base + 4u * k;`,
      `    acc += ${w}[row + k] * vec4<f32>(${v("i")}, ${v("i + 1u")}, ${v("i + 2u")}, ${v("i + 3u")});`,
      `  }`,
      `  return ${init} + ((acc.x + acc.y) + (acc.z + acc.w));`,
      `}`,
    ].join("\n");
  }
  return [
    `fn ${name}(r: u32, base: u32) -> f32 {`,
    `  var acc = ${init};`,
    `  let row = r * ${K}u;`,
    `  for (var k = 0u; k < ${K}u; k++) {`,
    `    acc += ${w}[row + k] * ${v("base + k")};`,
    `  }`,
    `  return acc;`,
    `}`,
  ].join("\n");
}

/** The loop over this invocation's units: `j` is the unit, `k` its slot in private arrays. */
function forUnits(p: Plan, body: readonly string[]): string[] {
  if (p.layout === "cpu") return [`for (var j = 0u; j < ${p.H}u; j++) {`, `  let k = j;`, ...indent(body, 2), `}`];
  if (p.U === 1 && p.WG === p.H) return [`{`, `  let k = 0u;`, `  let j = lid;`, ...indent(body, 2), `}`];
  return [`for (var k = 0u; k < ${p.U}u; k++) {`, `  let j = lid + k * ${p.WG}u;`, `  if (j < ${p.H}u) {`, ...indent(body, 4), `  }`, `}`];
}

const barrier = (p: Plan) => (p.barrier ? [`${p.barrier};`] : []);

/** The step body for one unit j: reads h_{t−1} at `hin`, writes h_t at `hout` (offsets into the state). */
function emitCell(p: Plan, d: number, sequence: boolean): string[] {
  const { a, H } = p;
  const ih = (g: number) => `ih${d}(${g === 0 ? "j" : `${g * H}u + j`}, xrow)`;
  const hh = (g: number, base = "hin") => `hh${d}(${g === 0 ? "j" : `${g * H}u + j`}, ${base})`;
  const S = (i: string) => `${p.state}[${i}]`;
  const store = [`${S("hout + j")} = hn;`, ...(sequence ? [`y0[yrow + j] = hn;`] : [])];
  switch (a.cell) {
    case "elman":
      return [`let v = ${ih(0)} + ${hh(0)};`, a.activation === "relu" ? `let hn = max(v, 0.0);` : `let hn = tanh_c(v);`, ...store];
    case "lstm":
      return [
        `let ig = sigmoid(${ih(0)} + ${hh(0)});`,
        `let fg = sigmoid(${ih(1)} + ${hh(1)});`,
        `let gg = tanh_c(${ih(2)} + ${hh(2)});`,
        `let og = sigmoid(${ih(3)} + ${hh(3)});`,
        `let cn = fg * cs[k] + ig * gg;`,
        `cs[k] = cn;`,
        `let hn = og * tanh_c(cn);`,
        ...store,
      ];
    case "gru":
      return [
        `let rg = sigmoid(${ih(0)} + ${hh(0)});`,
        `let zg = sigmoid(${ih(1)} + ${hh(1)});`,
        `// PyTorch's form: the reset gate scales W_hn·h + b_hn.`,
        `let ng = tanh_c(${ih(2)} + rg * ${hh(2)});`,
        `let hn = (1.0 - zg) * ng + zg * ${S("hin + j")};`,
        ...store,
      ];
    case "mgu":
      // The candidate half; the forget gates and f ⊙ h come first (emitStep).
      return [`let fg = fs[k];`, `let hn = (1.0 - fg) * ${S("hin + j")} + fg * tanh_c(${ih(1)} + ${hh(1, `${p.stateBase}${2 * H}u`)});`, ...store];
  }
}

function emitStep(p: Plan, d: number, sequence: boolean): string[] {
  const lines: string[] = [];
  if (p.a.cell === "mgu") {
    lines.push(`// Forget gates first: the candidate's W_hn multiplies f ⊙ h of every unit.`);
    lines.push(
      ...forUnits(p, [
        `let fg = sigmoid(ih${d}(j, xrow) + hh${d}(j, hin));`,
        `fs[k] = fg;`,
        `${p.state}[${p.stateBase}${2 * p.H}u + j] = fg * ${p.state}[hin + j];`,
      ]),
    );
    lines.push(...barrier(p));
  }
  lines.push(...forUnits(p, emitCell(p, d, sequence)));
  return lines;
}

/** `fn run<d>(...)`: the whole time loop of sequence n in direction d. */
function emitDirection(p: Plan, d: number, reverse: boolean): string {
  const { a, H, dirs } = p;
  const sequence = a.returnMode === "sequence";
  const width = H * dirs;
  const lstm = a.cell === "lstm";
  const params = ["n: u32", ...(p.layout === "gpu" ? ["lid: u32"] : []), "len: u32", ...(p.state === "t0" ? ["sbase: u32"] : [])];
  const body: string[] = [];
  const privateLen = p.layout === "cpu" ? H : p.U;
  if (lstm) body.push(`var cs: array<f32, ${privateLen}>;`);
  if (a.cell === "mgu") body.push(`var fs: array<f32, ${privateLen}>;`);
  // Initial state: h0/c0 are [dirs, N, H]; this sequence's row is d·N + n.
  const initRow = d === 0 ? `n * ${H}u` : `(${p.N} + n) * ${H}u`;
  body.push(
    ...forUnits(p, [
      `${p.state}[${p.stateBase}j] = ${p.h0 ? `${p.h0}[${initRow} + j]` : "0.0"};`,
      ...(lstm ? [`cs[k] = ${p.c0 ? `${p.c0}[${initRow} + j]` : "0.0"};`] : []),
    ]),
  );
  body.push(...barrier(p));
  body.push(`var cur = 0u; // which half of the state holds h_{t−1}`);
  body.push(`for (var s = 0u; s < len; s++) {`);
  body.push(`  let t = ${reverse ? "len - 1u - s" : "s"};`);
  body.push(`  let xrow = (n * ${p.L} + t) * ${p.D}u;`);
  if (sequence) body.push(`  let yrow = (n * ${p.L} + t) * ${width}u + ${d * H}u;`);
  body.push(`  let hin = ${p.stateBase}cur * ${H}u;`);
  body.push(`  let hout = ${p.stateBase}(1u - cur) * ${H}u;`);
  body.push(...indent(emitStep(p, d, sequence), 2));
  body.push(...indent(barrier(p), 2));
  body.push(`  cur = 1u - cur;`);
  body.push(`}`);
  if (sequence && p.hasLengths) {
    body.push(`// Positions past the sequence's length are zeros.`);
    body.push(`for (var t = len; t < ${p.L}; t++) {`);
    body.push(`  let yrow = (n * ${p.L} + t) * ${width}u + ${d * H}u;`);
    body.push(...indent(forUnits(p, [`y0[yrow + j] = 0.0;`]), 2));
    body.push(`}`);
  }
  if (!sequence) {
    body.push(`// The final state: after position ${reverse ? "0" : "ℓ − 1"} (h0 or zeros when ℓ = 0).`);
    body.push(...forUnits(p, [`y0[n * ${width}u + ${d * H}u + j] = ${p.state}[${p.stateBase}cur * ${H}u + j];`]));
  }
  return [`fn run${d}(${params.join(", ")}) {`, ...indent(body, 2), `}`].join("\n");
}

interface Checks {
  /** Statements that bind `len` (after validating it) or return. */
  readonly lines: string[];
  readonly errors: Record<number, string>;
}

/** Run-time checks: batch sizes of lengths/h0/c0 that may differ from x's, each length in [0, L]. */
function emitChecks(ctx: WgslEmitCtx, p: Plan, reporter: { once: string; perSequence: string }): Checks {
  const a = p.a;
  const layout = rnnLayout(a);
  const xShape = ctx.node.inputs[0]!.type.shape;
  const batch = xShape[0]!;
  const lines: string[] = [];
  const errors: Record<number, string> = {};
  const checkBatch = (index: number | undefined, axis: number, kind: number, what: string) => {
    if (index === undefined) return;
    const got: Dim = ctx.node.inputs[index]!.type.shape[axis]!;
    if (got.equals(batch)) return;
    lines.push(`if (${ctx.dim(got)} != ${p.N}) {`, `  if (${reporter.once}) { report_error(${kind}u, i32(${ctx.dim(got)}), ${p.N}); }`, `  return;`, `}`);
    errors[kind] = what;
  };
  checkBatch(layout.lengths, 0, ERR_LENGTHS_BATCH, "lengths has {a} entries but x has a batch of {b} sequences");
  checkBatch(layout.h0, 1, ERR_H0_BATCH, "h0 has a batch of {a} but x has {b} sequences");
  checkBatch(layout.c0, 1, ERR_C0_BATCH, "c0 has a batch of {a} but x has {b} sequences");
  if (layout.lengths !== undefined) {
    lines.push(
      `let lenI = ${ctx.input(layout.lengths)}[n];`,
      `if (lenI < 0 || lenI > i32(${p.L})) {`,
      `  if (${reporter.perSequence}) { report_error(${ERR_LENGTH}u, lenI, n); }`,
      `  return;`,
      `}`,
      `let len = u32(lenI);`,
    );
    errors[ERR_LENGTH] = `length {a} of sequence {b} is outside [0, ${xShape[1]!.toString()}] (L = x's dim 1)`;
  } else {
    lines.push(`let len = ${p.L};`);
  }
  return { lines, errors };
}

const HELPERS = [
  `fn sigmoid(v: f32) -> f32 { return 1.0 / (1.0 + exp(-clamp(v, -80.0, 80.0))); }`,
  `// Clamped: tanh(±15) is ±1 in f32, and some backends' tanh overflows to NaN for large |v|.`,
  `fn tanh_c(v: f32) -> f32 { return tanh(clamp(v, -15.0, 15.0)); }`,
];

/** The module body for one layout: state declaration, helpers, direction loops, main. */
function emitLayout(ctx: WgslEmitCtx, p: Plan, names: readonly DirNames[]): { code: string; errors: Record<number, string> } {
  const { a, H, dirs } = p;
  const out: string[] = [];
  out.push(`// ${a.cell}${a.cell === "elman" ? ` (${a.activation})` : ""}, ${a.direction}, hidden ${H}, return ${a.returnMode}${a.hasBias ? "" : ", no bias"}: x ${typeToString(ctx.node.inputs[0]!.type)} → y ${typeToString(ctx.node.outputs[0]!.type)}.`);
  const stateWhat = `h_{t−1} | h_t${a.cell === "mgu" ? " | f ⊙ h" : ""}`;
  if (p.layout === "cpu") {
    out.push(`// One invocation per (sequence, direction), every unit, no barrier; ${CPU_LANES} sequences of one direction per workgroup.`);
    out.push(`var<private> st: array<f32, ${p.stateLen}>; // ${stateWhat}`);
  } else {
    out.push(`// One workgroup per (sequence, direction); invocation lid owns units lid + k·${p.WG} (k < ${p.U}).`);
    if (p.state === "st") out.push(`var<workgroup> st: array<f32, ${p.stateLen}>; // ${stateWhat}`);
  }
  out.push(HELPERS.join("\n"));
  const stateRead = (i: string) => `${p.state}[${i}]`;
  const xRead = (i: string) => `x0[${i}]`;
  names.forEach((w, d) => {
    out.push(emitRowDot(`ih${d}`, w.wIh, w.bIh, xRead, p.D, p.vecIh));
    out.push(emitRowDot(`hh${d}`, w.wHh, w.bHh, stateRead, H, p.vecHh));
  });
  names.forEach((_, d) => out.push(emitDirection(p, d, a.direction === "backward" || d === 1)));

  let main: string[];
  let errors: Record<number, string>;
  if (p.layout === "cpu") {
    // x: groups of CPU_LANES sequences (wrapped into z past 65535), y: the direction.
    const checks = emitChecks(ctx, p, { once: "n == 0u && d == 0u", perSequence: "d == 0u" });
    errors = checks.errors;
    main = [
      `@compute @workgroup_size(${CPU_LANES})`,
      `fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) lid: u32) {`,
      `  _ = &P; // bound by the runtime even when every size is static`,
      `  let n = (wid.x + wid.z * nwg.x) * ${CPU_LANES}u + lid;`,
      `  let d = wid.y;`,
      `  if (n >= ${p.N}) { return; }`,
      ...indent(checks.lines, 2),
      dirs === 1 ? `  run0(n, len);` : `  if (d == 0u) { run0(n, len); } else { run1(n, len); }`,
      `}`,
    ];
  } else {
    // Workgroup w runs sequence w / dirs in direction w % dirs.
    const checks = emitChecks(ctx, p, { once: "lid == 0u && w == 0u", perSequence: "lid == 0u" });
    errors = checks.errors;
    const sbase = p.state === "t0" ? `, w * ${p.stateLen}u` : "";
    main = [
      `@compute @workgroup_size(${p.WG})`,
      `fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) lid: u32) {`,
      `  _ = &P; // bound by the runtime even when every size is static`,
      `  let w = wid.x + wid.y * nwg.x;`,
      `  if (w >= ${p.N} * ${dirs}u) { return; }`,
      `  let n = w / ${dirs}u;`,
      ...indent(checks.lines, 2),
      dirs === 1 ? `  run0(n, lid, len${sbase});` : `  if (w % 2u == 0u) { run0(n, lid, len${sbase}); } else { run1(n, lid, len${sbase}); }`,
      `}`,
    ];
  }
  out.push(main.join("\n"));
  return { code: out.join("\n\n"), errors };
}

function emitRnn(ctx: WgslEmitCtx): WgslKernelResult {
  const a = ctx.node.attrs as unknown as RnnAttrs;
  const layout = rnnLayout(a);
  const dirs = directionCount(a);
  const H = a.hidden;
  const xShape = ctx.node.inputs[0]!.type.shape;
  const D = xShape[2]!.constValue()!;
  const stateLen = (a.cell === "mgu" ? 3 : 2) * H;
  const inWorkgroup = stateLen <= WORKGROUP_FLOATS;
  const common = {
    a,
    H,
    D,
    dirs,
    N: ctx.dim(xShape[0]!),
    L: ctx.dim(xShape[1]!),
    stateLen,
    h0: layout.h0 !== undefined ? ctx.input(layout.h0) : undefined,
    c0: layout.c0 !== undefined ? ctx.input(layout.c0) : undefined,
    hasLengths: layout.lengths !== undefined,
    vecIh: D % 4 === 0,
    vecHh: H % 4 === 0,
  };
  const WG = Math.min(H, MAX_WORKGROUP);
  const gpu: Plan = {
    ...common,
    layout: "gpu",
    WG,
    U: Math.ceil(H / WG),
    state: inWorkgroup ? "st" : "t0",
    barrier: inWorkgroup ? "workgroupBarrier()" : "storageBarrier()",
    stateBase: inWorkgroup ? "" : "sbase + ",
  };
  // Private state (plus c or f) per invocation; beyond CPU_PRIVATE_FLOATS the CPU adapter runs the "gpu" layout.
  const privateFloats = stateLen + (a.cell === "lstm" || a.cell === "mgu" ? H : 0);
  const cpu: Plan | undefined = privateFloats <= CPU_PRIVATE_FLOATS ? { ...common, layout: "cpu", WG: 1, U: H, state: "st", barrier: "", stateBase: "" } : undefined;

  const names: DirNames[] = layout.directions.map((pos: RnnDirectionInputs) => ({
    wIh: ctx.input(pos.weightIh),
    wHh: ctx.input(pos.weightHh),
    ...(pos.biasIh !== undefined ? { bIh: ctx.input(pos.biasIh), bHh: ctx.input(pos.biasHh!) } : {}),
  }));
  const bindingTypes: Record<string, string> = {};
  for (const w of names) {
    if (common.vecIh) bindingTypes[w.wIh] = "vec4<f32>";
    if (common.vecHh) bindingTypes[w.wHh] = "vec4<f32>";
  }

  const N = ctx.dimJs(xShape[0]!);
  const gpuBody = emitLayout(ctx, gpu, names);
  const gpuCount = `(${N}) * ${dirs}`;
  const gpuDispatch: [string, string] = [`Math.min(${gpuCount}, 65535)`, `Math.max(1, Math.ceil(${gpuCount} / 65535))`];
  const variants: { gpu: { code: string; dispatch: readonly [string, string?, string?] }; cpu?: { code: string; dispatch: readonly [string, string?, string?] } } = {
    gpu: { code: gpuBody.code, dispatch: gpuDispatch },
  };
  if (cpu) {
    const groups = `Math.ceil((${N}) / ${CPU_LANES})`;
    variants.cpu = { code: emitLayout(ctx, cpu, names).code, dispatch: [`Math.min(${groups}, 65535)`, `${dirs}`, `Math.max(1, Math.ceil(${groups} / 65535))`] };
  }
  const errors = gpuBody.errors;
  const usesError = Object.keys(errors).length > 0;
  return {
    passes: [
      {
        code: gpuBody.code,
        dispatch: gpuDispatch,
        variants,
        bindingTypes,
        // State in scratch only when the "cpu" layout is off too (its private arrays would be larger still).
        ...(inWorkgroup ? {} : { scratch: [{ type: "f32", size: `${gpuCount} * ${stateLen}` }] }),
        ...(usesError ? { usesError } : {}),
      },
    ],
    ...(usesError ? { errors } : {}),
  };
}

export const kernels: WgslKernel[] = [{ op: "rnn", emit: emitRnn }];

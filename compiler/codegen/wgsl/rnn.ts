// WGSL kernel for the `rnn` op (compiler/ops/rnn.ts): two passes per node.
//
// Pass 1, the input projections: xp[d, n·L + t, :] = W_ih·x[n, t, :] + b_ih for every
// (n, t) and direction, into scratch t0. No step depends on another, so this is one
// parallel GEMM ([N·L, D] × [D, G·H]) in 2 × 4 register tiles, and it takes D/(D + H)
// of the work out of the sequential part. (Scratch is shared by the passes of a node.)
//
// Pass 2, the recurrence, a persistent kernel that runs the time loop itself (L is
// symbolic, so one dispatch per step would need a pass list of unknown length, and the
// state would round-trip through memory between dispatches). Per step and unit j it
// computes the G recurrent projections W_hh[g·H + j]·h_{t−1} + b_hh in one pass over h
// (each h element loaded once, used G times), adds xp, and applies the cell (elman
// tanh/relu, lstm i f g o, gru r z n in PyTorch's form, mgu). Two layouts:
//
//  "gpu" (real GPUs): one workgroup per (sequence, direction); invocation lid owns units
//  j = lid + k·WG (WG = min(H, 256), k < ⌈H/WG⌉). h is double buffered in workgroup
//  memory (read h_{t−1}, write h_t), so one barrier per step separates the steps; mgu
//  needs a second, as its candidate multiplies W_hn by f ⊙ h of every unit. c (lstm) and
//  f (mgu) stay in the owning invocation's registers. State beyond the portable 16 KiB
//  of workgroup memory ((2 or 3)·H floats: H > 1365) lives in scratch t1 instead, one
//  slice per workgroup, with storage barriers.
//
//  "cpu" (lavapipe, SwiftShader): one invocation per (sequence, direction) runs every
//  unit, with no barrier; the up to 8 invocations of a workgroup are neighbouring
//  sequences of one direction, i.e. the SIMD lanes of a CPU adapter, and their state is
//  lane-interleaved in workgroup memory. All lanes run the same number of steps (the
//  workgroup's longest length; shorter sequences carry their state forward with
//  `select`), so the loops stay in uniform control flow. When even one lane's state
//  does not fit, CPU adapters run the "gpu" layout.
//
// Measured on lavapipe (2 cores shared with other jobs, so ±50 %), LSTM N=16 L=100 D=64
// H=128 forward, per run (min / median of 10): "cpu" 0.15 / 0.25 s (pass 1 ≈ 0.05 s),
// "gpu" layout 0.29 / 0.39 s, the JS kernel 0.29 / 0.52 s; first run (JIT) 0.9 s. The
// first design (one pass, units across invocations, constant-bound loops) took 2 s per
// run and 275 s to JIT: NIR unrolled every constant-trip loop. Loops here start at LOOP0,
// 0 at run time but unknown to the compiler, which keeps them rolled.
//
// Weight rows whose length is a multiple of 4 are read as vec4 (a quarter of the loads;
// rows have static sizes, so a binding is never under 16 bytes).
//
// Ragged lengths: each sequence checks its own ℓ (outside [0, L] → report_error; the run
// rejects), runs ℓ steps (backward from ℓ − 1), writes zeros at t ≥ ℓ in "sequence" mode
// and its final state (h0 or zeros for ℓ = 0) in "last".

import type { Dim } from "../../ir/dims.ts";
import { typeToString } from "../../ir/types.ts";
import { GATES, directionCount, rnnGradLayout, rnnLayout, type RnnAttrs, type RnnDirectionInputs } from "../../ops/rnn.ts";
import { flatDispatch, type WgslEmitCtx, type WgslKernel, type WgslKernelResult, type WgslPass } from "./kernel.ts";

/** "gpu": most invocations per workgroup (units beyond are looped over). */
const MAX_WORKGROUP = 256;
/** WebGPU's default maxComputeWorkgroupStorageSize, in f32 elements. */
const WORKGROUP_FLOATS = 16384 / 4;
/** "cpu": most sequences per workgroup (SIMD lanes on a CPU adapter). */
const CPU_LANES = 8;

/** Error kinds this kernel reports. */
const ERR_LENGTH = 1;
const ERR_LENGTHS_BATCH = 2;
const ERR_H0_BATCH = 3;
const ERR_C0_BATCH = 4;

interface Plan {
  readonly a: RnnAttrs;
  readonly H: number;
  readonly G: number;
  readonly D: number;
  readonly dirs: number;
  /** WGSL u32 expressions for N and L. */
  readonly N: string;
  readonly L: string;
  readonly layout: "gpu" | "cpu";
  /** "gpu": invocations per workgroup and units per invocation. "cpu": sequences per workgroup, and H. */
  readonly WG: number;
  readonly U: number;
  /**
   * Floats of state per sequence: h_{t−1} | h_t, then for mgu f ⊙ h; "cpu" keeps the
   * per-unit c (lstm) or f (mgu) there too, which "gpu" keeps in registers.
   */
  readonly stateLen: number;
  /** "gpu": the state in scratch (`t1`, one slice per workgroup) rather than workgroup memory. */
  readonly inScratch: boolean;
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

/** Element `i` (a u32 expression relative to this sequence's slice) of the state. */
function stateAt(p: Plan, i: string): string {
  if (p.layout === "cpu") return `st[(${i}) * ${p.WG}u + lane]`; // lane-interleaved
  return p.inScratch ? `t1[sbase + ${i}]` : `st[${i}]`;
}

/** Offset of the mgu f ⊙ h vector, and of the "cpu" per-unit slot (c or f), in the state. */
const FH_OFFSET = (p: Plan) => 2 * p.H;
const UNIT_OFFSET = (p: Plan) => (p.a.cell === "mgu" ? 3 : 2) * p.H;

/** This unit's c (lstm) or f (mgu): a register slot on "gpu", a state slot on "cpu". */
function unitSlot(p: Plan, name: string): string {
  return p.layout === "cpu" ? stateAt(p, `${UNIT_OFFSET(p)}u + j`) : `${name}[k]`;
}

const VEC = ["f32", "f32", "vec2<f32>", "vec3<f32>", "vec4<f32>"];

/**
 * `fn <name>(j, base) -> f32|vecG`: for each gate g of `gates`, bias[g·H + j] + W[g·H + j, :]·v[base..],
 * one pass over v for all gates (each v element is loaded once and used G times),
 * with vec4 weight loads when the row length K allows. Loops start at LOOP0 (0 at run
 * time) so shader compilers cannot unroll them fully: lavapipe took minutes otherwise.
 */
function emitProjection(name: string, w: string, bias: string | undefined, v: (i: string) => string, K: number, H: number, gates: readonly number[], vec: boolean): string {
  const q = vec ? K / 4 : K;
  const zero = vec ? "vec4<f32>(0.0)" : "0.0";
  const lines = [`fn ${name}(j: u32, base: u32) -> ${VEC[gates.length]} {`, `  let r = j * ${q}u;`];
  gates.forEach((_, i) => lines.push(`  var a${i} = ${zero};`));
  lines.push(`  for (var k = LOOP0; k < ${q}u; k++) {`);
  lines.push(vec ? `    let i = base + 4u * k;` : `    let i = base + k;`);
  lines.push(vec ? `    let v = vec4<f32>(${v("i")}, ${v("i + 1u")}, ${v("i + 2u")}, ${v("i + 3u")});` : `    let v = ${v("i")};`);
  gates.forEach((g, i) => lines.push(`    a${i} += ${w}[r${g === 0 ? "" : ` + ${g * H * q}u`} + k] * v;`));
  lines.push(`  }`);
  const sums = gates.map((g, i) => {
    const s = vec ? `dot(a${i}, vec4<f32>(1.0))` : `a${i}`;
    return bias ? `${bias}[${g === 0 ? "j" : `${g * H}u + j`}] + ${s}` : s;
  });
  lines.push(`  return ${gates.length === 1 ? sums[0] : `${VEC[gates.length]}(${sums.join(", ")})`};`, `}`);
  return lines.join("\n");
}

/** The loop over this invocation's units: `j` is the unit, `k` its slot in register arrays. */
function forUnits(p: Plan, body: readonly string[]): string[] {
  if (p.layout === "cpu") return [`for (var j = LOOP0; j < ${p.H}u; j++) {`, ...indent(body, 2), `}`];
  if (p.U === 1 && p.WG === p.H) return [`{`, `  let k = 0u;`, `  let j = lid;`, ...indent(body, 2), `}`];
  return [`for (var k = 0u; k < ${p.U}u; k++) {`, `  let j = lid + k * ${p.WG}u;`, `  if (j < ${p.H}u) {`, ...indent(body, 4), `  }`, `}`];
}

function barrier(p: Plan): string[] {
  if (p.layout === "cpu") return [];
  return [p.inScratch ? "storageBarrier();" : "workgroupBarrier();"];
}

/** Gate g's input projection W_ih·x_t + b_ih for unit j, computed by the first pass. */
function xp(p: Plan, g: number): string {
  return `t0[xrow${g === 0 ? "" : ` + ${g * p.H}u`} + j]`;
}

/** One step for unit j: reads h_{t−1} at `hin`, writes h_t at `hout` (and y when the sequence is returned). */
function emitStep(p: Plan, d: number, sequence: boolean): string[] {
  const { a } = p;
  const S = (i: string) => stateAt(p, i);
  // "cpu": a lane past its sequence's end (or past N) carries its state forward and writes nothing.
  const cpu = p.layout === "cpu";
  const update = (target: string, value: string) => `${target} = ${cpu ? `select(${target === S("hout + j") ? S("hin + j") : target}, ${value}, on)` : value};`;
  const store = [update(S("hout + j"), "hn"), ...(sequence ? [cpu ? `if (on) { y0[yrow + j] = hn; }` : `y0[yrow + j] = hn;`] : [])];
  switch (a.cell) {
    case "elman":
      return forUnits(p, [`let v = ${xp(p, 0)} + hh${d}(j, hin);`, a.activation === "relu" ? `let hn = max(v, 0.0);` : `let hn = tanh_c(v);`, ...store]);
    case "lstm": {
      const c = unitSlot(p, "cs");
      return forUnits(p, [
        `let g = vec4<f32>(${[0, 1, 2, 3].map((g) => xp(p, g)).join(", ")}) + hh${d}(j, hin); // gates i, f, g, o`,
        `let cn = sigmoid(g.y) * ${c} + sigmoid(g.x) * tanh_c(g.z);`,
        update(c, "cn"),
        `let hn = sigmoid(g.w) * tanh_c(cn);`,
        ...store,
      ]);
    }
    case "gru":
      return forUnits(p, [
        `let gh = hh${d}(j, hin); // gates r, z, n`,
        `let rg = sigmoid(${xp(p, 0)} + gh.x);`,
        `let zg = sigmoid(${xp(p, 1)} + gh.y);`,
        `// PyTorch's form: the reset gate scales W_hn·h + b_hn.`,
        `let ng = tanh_c(${xp(p, 2)} + rg * gh.z);`,
        `let hn = (1.0 - zg) * ng + zg * ${S("hin + j")};`,
        ...store,
      ]);
    case "mgu": {
      const f = unitSlot(p, "fs");
      return [
        `// Forget gates first: the candidate's W_hn multiplies f ⊙ h of every unit.`,
        ...forUnits(p, [`let fg = sigmoid(${xp(p, 0)} + hh${d}_0(j, hin));`, `${f} = fg;`, `${S(`${FH_OFFSET(p)}u + j`)} = fg * ${S("hin + j")};`]),
        ...barrier(p),
        ...forUnits(p, [`let fg = ${f};`, `let hn = (1.0 - fg) * ${S("hin + j")} + fg * tanh_c(${xp(p, 1)} + hh${d}_1(j, ${FH_OFFSET(p)}u));`, ...store]),
      ];
    }
  }
}

/** `fn run<d>(...)`: the whole time loop of sequence n in direction d. */
function emitDirection(p: Plan, d: number, reverse: boolean): string {
  const { a, H, dirs } = p;
  const sequence = a.returnMode === "sequence";
  const width = H * dirs;
  const lstm = a.cell === "lstm";
  const cpu = p.layout === "cpu";
  // "cpu" runs `steps` (the longest length among the workgroup's lanes, a uniform bound) so
  // that the dot-product loops stay in uniform control flow (lavapipe: the benchmark's
  // recurrence in 0.14 s instead of 0.23 s with per-lane loop bounds).
  // Lanes past N (`live` false) run along with n clamped to N − 1 and len 0, writing nothing.
  const params = cpu ? ["n: u32", "live: bool", "len: u32", "steps: u32"] : ["n: u32", "lid: u32", "len: u32"];
  const body: string[] = [];
  if (p.layout === "gpu" && lstm) body.push(`var cs: array<f32, ${p.U}>;`);
  if (p.layout === "gpu" && a.cell === "mgu") body.push(`var fs: array<f32, ${p.U}>;`);
  // Initial state: h0/c0 are [dirs, N, H]; this sequence's row is d·N + n.
  const initRow = d === 0 ? `n * ${H}u` : `(${p.N} + n) * ${H}u`;
  body.push(
    ...forUnits(p, [
      `${stateAt(p, "j")} = ${p.h0 ? `${p.h0}[${initRow} + j]` : "0.0"};`,
      ...(lstm ? [`${unitSlot(p, "cs")} = ${p.c0 ? `${p.c0}[${initRow} + j]` : "0.0"};`] : []),
    ]),
  );
  body.push(...barrier(p));
  body.push(`var cur = 0u; // which half of the state holds h_{t−1}`);
  body.push(`for (var s = 0u; s < ${cpu ? "steps" : "len"}; s++) {`);
  if (cpu) {
    body.push(`  let on = s < len;`);
    body.push(`  let t = ${reverse ? "select(0u, len - 1u - s, on)" : "select(0u, s, on)"};`);
  } else {
    body.push(`  let t = ${reverse ? "len - 1u - s" : "s"};`);
  }
  body.push(`  let xrow = ${d === 0 ? "" : `${p.N} * ${p.L} * ${projStride(p)}u + `}(n * ${p.L} + t) * ${projStride(p)}u; // this step's projections in t0`);
  if (sequence) body.push(`  let yrow = (n * ${p.L} + t) * ${width}u + ${d * H}u;`);
  body.push(`  let hin = cur * ${H}u;`);
  body.push(`  let hout = (1u - cur) * ${H}u;`);
  body.push(...indent(emitStep(p, d, sequence), 2));
  body.push(...indent(barrier(p), 2));
  body.push(`  cur = 1u - cur;`);
  body.push(`}`);
  if (sequence && p.hasLengths) {
    body.push(`// Positions past the sequence's length are zeros.`);
    body.push(`for (var t = ${cpu ? `select(${p.L}, len, live)` : "len"}; t < ${p.L}; t++) {`);
    body.push(`  let yrow = (n * ${p.L} + t) * ${width}u + ${d * H}u;`);
    body.push(...indent(forUnits(p, [`y0[yrow + j] = 0.0;`]), 2));
    body.push(`}`);
  }
  if (!sequence) {
    body.push(`// The final state: after position ${reverse ? "0" : "ℓ − 1"} (h0 or zeros when ℓ = 0).`);
    const write = `y0[n * ${width}u + ${d * H}u + j] = ${stateAt(p, `cur * ${H}u + j`)};`;
    body.push(...(cpu ? [`if (live) {`, ...indent(forUnits(p, [write]), 2), `}`] : forUnits(p, [write])));
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
  const layout = rnnLayout(p.a);
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
  const Lexpr = p.L;
  if (layout.lengths !== undefined) {
    const lengths = ctx.input(layout.lengths);
    errors[ERR_LENGTH] = `length {a} of sequence {b} is outside [0, ${xShape[1]!.toString()}] (L = x's dim 1)`;
    if (p.layout === "gpu") {
      lines.push(
        `let lenI = ${lengths}[n];`,
        `if (lenI < 0 || lenI > i32(${Lexpr})) {`,
        `  if (${reporter.perSequence}) { report_error(${ERR_LENGTH}u, lenI, n); }`,
        `  return;`,
        `}`,
        `let len = u32(lenI);`,
      );
    } else {
      // No early return here (it would make the lanes diverge): a bad length is reported and
      // clamped, and the run rejects.
      lines.push(
        `let lenI = ${lengths}[n];`,
        `if (live && (lenI < 0 || lenI > i32(${Lexpr}))) {`,
        `  if (${reporter.perSequence}) { report_error(${ERR_LENGTH}u, lenI, n); }`,
        `}`,
        `let len = select(0u, u32(clamp(lenI, 0, i32(${Lexpr}))), live);`,
        `// The longest length among this workgroup's sequences: the step count all its lanes share.`,
        `var steps = 0u;`,
        `for (var i = 0u; i < ${p.WG}u; i++) {`,
        `  if (n0 + i < ${p.N}) { steps = max(steps, u32(clamp(${lengths}[n0 + i], 0, i32(${Lexpr})))); }`,
        `}`,
      );
    }
  } else if (p.layout === "gpu") {
    lines.push(`let len = ${Lexpr};`);
  } else {
    lines.push(`let len = select(0u, ${Lexpr}, live);`, `let steps = ${Lexpr};`);
  }
  return { lines, errors };
}

const HELPERS = [
  `fn sigmoid(v: f32) -> f32 { return 1.0 / (1.0 + exp(-clamp(v, -80.0, 80.0))); }`,
  `// Clamped: tanh(±15) is ±1 in f32, and some backends' tanh overflows to NaN for large |v|.`,
  `fn tanh_c(v: f32) -> f32 { return tanh(clamp(v, -15.0, 15.0)); }`,
];

/** The module body for one layout: state, helpers, projections, direction loops, main. */
function emitLayout(ctx: WgslEmitCtx, p: Plan, names: readonly DirNames[]): { code: string; errors: Record<number, string> } {
  const { a, H, G, dirs } = p;
  const out: string[] = [];
  out.push(`// ${a.cell}${a.cell === "elman" ? ` (${a.activation})` : ""}, ${a.direction}, hidden ${H}, return ${a.returnMode}${a.hasBias ? "" : ", no bias"}: x ${typeToString(ctx.node.inputs[0]!.type)} → y ${typeToString(ctx.node.outputs[0]!.type)}.`);
  const regions = `h_{t−1} | h_t${a.cell === "mgu" ? " | f ⊙ h" : ""}`;
  const decls = [`var<private> LOOP0: u32; // 0 at run time; a loop start the compiler cannot see keeps loops rolled`];
  if (p.layout === "cpu") {
    out.push(`// One invocation per (sequence, direction) runs every unit, without barriers; the ${p.WG} invocations of a workgroup are neighbouring sequences of one direction.`);
    decls.push(`var<workgroup> st: array<f32, ${p.stateLen * p.WG}>; // per sequence: ${regions}${a.cell === "lstm" ? " | c" : a.cell === "mgu" ? " | f" : ""}, lane-interleaved`);
    decls.push(`var<private> lane: u32;`);
  } else {
    out.push(`// One workgroup per (sequence, direction); invocation lid owns units lid + k·${p.WG} (k < ${p.U}).`);
    if (p.inScratch) decls.push(`var<private> sbase: u32; // this workgroup's slice of the state in t1: ${regions}`);
    else decls.push(`var<workgroup> st: array<f32, ${p.stateLen}>; // ${regions}`);
  }
  out.push(decls.join("\n"));
  out.push(HELPERS.join("\n"));
  const stateRead = (i: string) => stateAt(p, i);
  const allGates = Array.from({ length: G }, (_, g) => g);
  names.forEach((w, d) => {
    if (a.cell === "mgu") {
      // The candidate's recurrent projection reads f ⊙ h, not h: one function per gate.
      for (const g of allGates) out.push(emitProjection(`hh${d}_${g}`, w.wHh, w.bHh, stateRead, H, H, [g], p.vecHh));
    } else {
      out.push(emitProjection(`hh${d}`, w.wHh, w.bHh, stateRead, H, H, allGates, p.vecHh));
    }
  });
  names.forEach((_, d) => out.push(emitDirection(p, d, a.direction === "backward" || d === 1)));

  let main: string[];
  let errors: Record<number, string>;
  const entry = `fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) lid: u32) {`;
  if (p.layout === "cpu") {
    // x: groups of WG sequences (wrapped into z past 65535 groups), y: the direction.
    const checks = emitChecks(ctx, p, { once: "n == 0u && d == 0u", perSequence: "d == 0u" });
    errors = checks.errors;
    main = [
      `@compute @workgroup_size(${p.WG})`,
      entry,
      `  LOOP0 = nwg.x >> 16u;`,
      `  lane = lid;`,
      `  let n0 = (wid.x + wid.z * nwg.x) * ${p.WG}u; // this workgroup's first sequence`,
      `  if (n0 >= ${p.N}) { return; }`,
      `  let live = n0 + lid < ${p.N};`,
      `  let n = min(n0 + lid, ${p.N} - 1u);`,
      `  let d = wid.y;`,
      ...indent(checks.lines, 2),
      dirs === 1 ? `  run0(n, live, len, steps);` : `  if (d == 0u) { run0(n, live, len, steps); } else { run1(n, live, len, steps); }`,
      `}`,
    ];
  } else {
    // Workgroup w runs sequence w / dirs in direction w % dirs.
    const checks = emitChecks(ctx, p, { once: "lid == 0u && w == 0u", perSequence: "lid == 0u" });
    errors = checks.errors;
    main = [
      `@compute @workgroup_size(${p.WG})`,
      entry,
      `  LOOP0 = nwg.x >> 16u;`,
      `  let w = wid.x + wid.y * nwg.x;`,
      `  if (w >= ${p.N} * ${dirs}u) { return; }`,
      `  let n = w / ${dirs}u;`,
      ...(p.inScratch ? [`  sbase = w * ${p.stateLen}u;`] : []),
      ...indent(checks.lines, 2),
      dirs === 1 ? `  run0(n, lid, len);` : `  if (w % 2u == 0u) { run0(n, lid, len); } else { run1(n, lid, len); }`,
      `}`,
    ];
  }
  out.push(main.join("\n"));
  return { code: out.join("\n\n"), errors };
}

/** Rows of x per invocation in the first pass (each computes TILE_ROWS × 4 outputs). */
const TILE_ROWS = 2;

/** Row stride of the projections in t0: G·H rounded up to whole vec4 tiles (the padding is never read). */
const projStride = (p: Plan) => Math.ceil((p.G * p.H) / 4) * 4;

/**
 * Pass 1: the input projections xp[d, row, c] = b_ih[c] + W_ih[c, :]·x[row, :] of every row
 * (n, t) of x and every gate row c < G·H, into t0. No step depends on another here, so this
 * is one parallel GEMM per direction, in TILE_ROWS × 4 register tiles (each loaded x row is
 * used 4 times, each weight row TILE_ROWS times); rows are vec4 when D allows.
 */
function emitInputProjections(ctx: WgslEmitCtx, p: Plan, names: readonly DirNames[]): WgslPass {
  const { D, G, H, dirs } = p;
  const GH = G * H;
  const stride = projStride(p);
  const vec = p.vecIh;
  const q = vec ? D / 4 : D;
  const tilesC = stride / 4;
  const R = Array.from({ length: TILE_ROWS }, (_, i) => i);
  const C = [0, 1, 2, 3];
  const xShape = ctx.node.inputs[0]!.type.shape;
  const rowsJs = `(${ctx.dimJs(xShape[0]!)}) * (${ctx.dimJs(xShape[1]!)})`;
  const f = flatDispatch(`Math.ceil(${rowsJs} / ${TILE_ROWS}) * ${tilesC * dirs}`);
  const out: string[] = [];
  out.push(`// Input projections of ${p.a.cell}, ${p.a.direction}: [N·L, ${D}] × [${D}, ${GH}]${dirs === 2 ? " per direction" : ""} into t0 (row stride ${stride}), ${TILE_ROWS} × 4 tiles.`);
  out.push(`var<private> LOOP0: u32; // 0 at run time; a loop start the compiler cannot see keeps loops rolled`);
  const col = (b: number) => (GH % 4 === 0 ? `c0 + ${b}u` : `min(c0 + ${b}u, ${GH - 1}u)`);
  names.forEach((w, d) => {
    const lines = [`fn tile${d}(r0: u32, c0: u32, rows: u32) {`];
    lines.push(`  // Rows past N·L${GH % 4 === 0 ? "" : " and columns past G·H"} are read clamped; only the rows are guarded at the write (t0 rows are padded).`);
    for (const a of R) lines.push(`  let xr${a} = min(r0 + ${a}u, rows - 1u) * ${q}u;`);
    for (const b of C) lines.push(`  let wr${b} = ${GH % 4 === 0 ? `(c0 + ${b}u)` : col(b)} * ${q}u;`);
    for (const a of R) lines.push(`  var s${a} = vec4<f32>(0.0); // columns c0..c0+3 of row r0 + ${a}`);
    lines.push(`  for (var k = LOOP0; k < ${q}u; k++) {`);
    for (const b of C) lines.push(`    let wb${b} = ${w.wIh}[wr${b} + k];`);
    for (const a of R) {
      lines.push(`    let xa${a} = x0[xr${a} + k];`);
      lines.push(`    s${a} += vec4<f32>(${C.map((b) => (vec ? `dot(xa${a}, wb${b})` : `xa${a} * wb${b}`)).join(", ")});`);
    }
    lines.push(`  }`);
    lines.push(w.bIh ? `  let bias = vec4<f32>(${C.map((b) => `${w.bIh}[${col(b)}]`).join(", ")});` : `  let bias = vec4<f32>(0.0);`);
    lines.push(`  let base = ${d === 0 ? "" : `rows * ${stride}u + `}r0 * ${stride}u + c0;`);
    for (const a of R) {
      const store = (b: number) => `t0[base + ${a * stride + b}u] = v${a}.${"xyzw"[b]};`;
      lines.push(`  if (r0 + ${a}u < rows) {`, `    let v${a} = s${a} + bias;`, `    ${C.map(store).join(" ")}`, `  }`);
    }
    lines.push(`}`);
    out.push(lines.join("\n"));
  });
  out.push(
    [
      `@compute @workgroup_size(64)`,
      `fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {`,
      `  LOOP0 = nwg.x >> 16u;`,
      `  let i = ${f.index};`,
      `  let rows = ${p.N} * ${p.L};`,
      `  let tilesR = (rows + ${TILE_ROWS - 1}u) / ${TILE_ROWS}u;`,
      `  if (i >= tilesR * ${tilesC * dirs}u) { return; }`,
      `  let tc = i % ${tilesC}u;`,
      `  let tr = i / ${tilesC}u;`,
      dirs === 1
        ? `  tile0(tr * ${TILE_ROWS}u, tc * 4u, rows);`
        : `  if (tr < tilesR) { tile0(tr * ${TILE_ROWS}u, tc * 4u, rows); } else { tile1((tr - tilesR) * ${TILE_ROWS}u, tc * 4u, rows); }`,
      `}`,
    ].join("\n"),
  );
  const bindingTypes: Record<string, string> = vec ? { x0: "vec4<f32>" } : {};
  for (const w of names) if (vec) bindingTypes[w.wIh] = "vec4<f32>";
  return { code: out.join("\n\n"), dispatch: f.dispatch, bindingTypes, scratch: [{ type: "f32", size: `${rowsJs} * ${stride * dirs}` }] };
}

type Variant = { readonly code: string; readonly dispatch: readonly [string, string?, string?] };

function emitRnn(ctx: WgslEmitCtx): WgslKernelResult {
  const a = ctx.node.attrs as unknown as RnnAttrs;
  const layout = rnnLayout(a);
  const dirs = directionCount(a);
  const H = a.hidden;
  const xShape = ctx.node.inputs[0]!.type.shape;
  const D = xShape[2]!.constValue()!;
  const common = {
    a,
    H,
    G: GATES[a.cell],
    D,
    dirs,
    N: ctx.dim(xShape[0]!),
    L: ctx.dim(xShape[1]!),
    h0: layout.h0 !== undefined ? ctx.input(layout.h0) : undefined,
    c0: layout.c0 !== undefined ? ctx.input(layout.c0) : undefined,
    hasLengths: layout.lengths !== undefined,
    vecIh: D % 4 === 0,
    vecHh: H % 4 === 0,
  };
  const gpuState = (a.cell === "mgu" ? 3 : 2) * H;
  const WG = Math.min(H, MAX_WORKGROUP);
  const gpu: Plan = { ...common, layout: "gpu", WG, U: Math.ceil(H / WG), stateLen: gpuState, inScratch: gpuState > WORKGROUP_FLOATS };
  // "cpu" needs its lanes' state in workgroup memory: the most lanes (a power of two ≤ 8) that fit.
  const cpuState = (a.cell === "mgu" ? 4 : a.cell === "lstm" ? 3 : 2) * H;
  let lanes = CPU_LANES;
  while (lanes >= 1 && lanes * cpuState > WORKGROUP_FLOATS) lanes /= 2;
  const cpu: Plan | undefined = lanes >= 1 ? { ...common, layout: "cpu", WG: lanes, U: H, stateLen: cpuState, inScratch: false } : undefined;

  const names: DirNames[] = layout.directions.map((pos: RnnDirectionInputs) => ({
    wIh: ctx.input(pos.weightIh),
    wHh: ctx.input(pos.weightHh),
    ...(pos.biasIh !== undefined ? { bIh: ctx.input(pos.biasIh), bHh: ctx.input(pos.biasHh!) } : {}),
  }));
  const bindingTypes: Record<string, string> = {};
  if (common.vecHh) for (const w of names) bindingTypes[w.wHh] = "vec4<f32>";

  const projections = emitInputProjections(ctx, gpu, names);
  const N = ctx.dimJs(xShape[0]!);
  const gpuBody = emitLayout(ctx, gpu, names);
  const gpuCount = `(${N}) * ${dirs}`;
  const gpuVariant: Variant = { code: gpuBody.code, dispatch: [`Math.min(${gpuCount}, 65535)`, `Math.max(1, Math.ceil(${gpuCount} / 65535))`] };
  let cpuVariant = gpuVariant; // beyond the workgroup memory of one lane, CPU adapters run the "gpu" layout
  if (cpu) {
    const groups = `Math.ceil((${N}) / ${cpu.WG})`;
    cpuVariant = { code: emitLayout(ctx, cpu, names).code, dispatch: [`Math.min(${groups}, 65535)`, `${dirs}`, `Math.max(1, Math.ceil(${groups} / 65535))`] };
  }
  const errors = gpuBody.errors;
  const usesError = Object.keys(errors).length > 0;
  return {
    passes: [
      projections,
      {
        ...gpuVariant,
        variants: { gpu: gpuVariant, cpu: cpuVariant },
        bindingTypes,
        // t0: the projections (shared with pass 1). t1: the state, when "gpu" keeps it in scratch;
        // then "cpu" runs the "gpu" layout too (its lanes would need even more).
        scratch: [projections.scratch![0]!, ...(gpu.inScratch ? [{ type: "f32", size: `${gpuCount} * ${gpuState}` }] : [])],
        ...(usesError ? { usesError } : {}),
      },
    ],
    ...(usesError ? { errors } : {}),
  };
}


// ---------------------------------------------------------------------------
// WGSL kernel for `rnn_grad` (backpropagation through time; compiler/ops/rnn.ts).
//
// Passes, per direction d where marked, all sharing one scratch buffer t0 with three
// regions, each [dirs, N, L, ·] and indexed by time step:
//   hs: h_prev of each step;  gs: its gates (elman h'; lstm i f g o c' c_prev;
//   gru r z n and W_hn·h + b_hn; mgu f ñ);  dg: its pre-activation gradients dA
//   (G·H; gru adds dgh_n = dA_n·r, H more).
//  A_d "trace": the forward pass again. One workgroup per sequence; invocation lid owns
//      units lid + k·WG. Each step reads h_prev from hs (row t) and writes h' into hs of
//      the next step's row, so the rows double as the double buffer: one storageBarrier
//      per step (mgu two: its candidate reads f ⊙ h of every unit). lstm's c stays in
//      the owning invocation's registers.
//  B_d "reverse": the steps in reverse, same layout. dh (and dc) live in registers: unit
//      j's dA needs only its own dh[j]; dA goes to dg, a storageBarrier, then each unit
//      gathers dh_prev[j] = direct + Σ_r W_hh[r, j]·dgh[r] over the whole dg row. Rows
//      are never rewritten, so one barrier per step suffices (mgu: two). Writes dh0, dc0.
//  C_d "weights": one invocation per element of dW_ih, dW_hh, db_ih, db_hh, summing its
//      contributions over every (n, t < ℓ) in a fixed order: dW_ih[k, c] = Σ dA[k]·x[c],
//      dW_hh[k, j] = Σ dgh[k]·hin[j], db = Σ dA / Σ dgh. A gather with no atomics, so
//      the result is deterministic.
//  D "dx": one invocation per element of dx: Σ_d Σ_k W_ih_d[k, c]·dA_d[n, t, k] for
//      t < ℓ, else 0.
// Loops start at LOOP0 (0 at run time, unknown to the compiler) so they stay rolled:
// small shaders, quick to compile on lavapipe. Lengths are clamped to [0, L]; an
// out-of-range one is reported by A_0 (the forward may not have run).

/** Floats of gs per step, in units of H. */
const TRACE_WIDTH: Record<RnnAttrs["cell"], number> = { elman: 1, lstm: 6, gru: 4, mgu: 2 };

interface GradPlan {
  readonly a: RnnAttrs;
  readonly H: number;
  readonly GH: number;
  readonly D: number;
  readonly dirs: number;
  readonly N: string;
  readonly L: string;
  /** Invocations per workgroup of passes A and B, and units per invocation. */
  readonly WG: number;
  readonly U: number;
  /** Floats per step in gs and dg. */
  readonly GS: number;
  readonly GD: number;
  readonly lengths?: string;
}

/** The unit loop of passes A and B: `j` the unit, `k` its slot in register arrays. */
function gradUnits(p: GradPlan, body: readonly string[]): string[] {
  if (p.U === 1 && p.WG === p.H) return [`{`, `  let k = 0u;`, `  let j = lid;`, ...indent(body, 2), `}`];
  return [`for (var k = 0u; k < ${p.U}u; k++) {`, `  let j = lid + k * ${p.WG}u;`, `  if (j < ${p.H}u) {`, ...indent(body, 4), `  }`, `}`];
}

/** `let` lines for the scratch regions of direction d (needs `nl` = N·L). */
function regionBases(p: GradPlan, d: number): string[] {
  const { H, GS, GD, dirs } = p;
  return [
    `let hsB = ${d === 0 ? "0u" : `${d}u * nl * ${H}u`}; // hs: h_prev by step`,
    `let gsB = ${dirs * H}u * nl${d === 0 ? "" : ` + ${d * GS}u * nl`}; // gs: gates by step`,
    `let dgB = ${dirs * (H + GS)}u * nl${d === 0 ? "" : ` + ${d * GD}u * nl`}; // dg: pre-activation gradients by step`,
  ];
}

/** The length of sequence `n` as u32, clamped to [0, L]. */
function gradLength(p: GradPlan, n: string): string {
  return p.lengths ? `u32(clamp(${p.lengths}[${n}], 0, i32(${p.L})))` : p.L;
}

const GRAD_ENTRY = `fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) lid: u32) {`;

/** Pass A_d: the forward pass, saving h_prev and the gates of each step. */
function emitTracePass(ctx: WgslEmitCtx, p: GradPlan, d: number, w: DirNames, report: boolean): WgslPass {
  const { a, H, D, GS } = p;
  const layout = rnnLayout(a);
  const reverse = a.direction === "backward" || d === 1;
  const lstm = a.cell === "lstm";
  const out: string[] = [];
  out.push(`// rnn_grad pass A (${reverse ? "backward" : "forward"} direction): ${a.cell} forward pass again, saving h_prev (hs) and the gates (gs) of every step.`);
  out.push(`var<private> LOOP0: u32; // 0 at run time; a loop start the compiler cannot see keeps loops rolled`);
  out.push(HELPERS.join("\n"));
  out.push(
    [
      `// b_ih[row] + W_ih[row, :]·x[xb..]`,
      `fn ih(row: u32, xb: u32) -> f32 {`,
      `  var s = ${w.bIh ? `${w.bIh}[row]` : "0.0"};`,
      `  for (var k = LOOP0; k < ${D}u; k++) { s += ${w.wIh}[row * ${D}u + k] * x0[xb + k]; }`,
      `  return s;`,
      `}`,
      `// b_hh[row] + W_hh[row, :]·h_prev (hs at hb)`,
      `fn hh(row: u32, hb: u32) -> f32 {`,
      `  var s = ${w.bHh ? `${w.bHh}[row]` : "0.0"};`,
      `  for (var k = LOOP0; k < ${H}u; k++) { s += ${w.wHh}[row * ${H}u + k] * t0[hb + k]; }`,
      `  return s;`,
      `}`,
      ...(a.cell === "mgu"
        ? [
            `// b_hh[row] + W_hh[row, :]·(f ⊙ h_prev): f in gs at fb`,
            `fn hfh(row: u32, hb: u32, fb: u32) -> f32 {`,
            `  var s = ${w.bHh ? `${w.bHh}[row]` : "0.0"};`,
            `  for (var k = LOOP0; k < ${H}u; k++) { s += ${w.wHh}[row * ${H}u + k] * t0[fb + k] * t0[hb + k]; }`,
            `  return s;`,
            `}`,
          ]
        : []),
    ].join("\n"),
  );
  const next = `if (more) { t0[hnext + j] = hn; }`;
  const G = (g: number, j = "j") => (g === 0 ? j : `${g * H}u + ${j}`);
  const step: string[] = [];
  switch (a.cell) {
    case "elman":
      step.push(...gradUnits(p, [`let v = ih(j, xb) + hh(j, hb);`, a.activation === "relu" ? `let hn = max(v, 0.0);` : `let hn = tanh_c(v);`, `t0[gb + j] = hn;`, next]));
      break;
    case "lstm":
      step.push(
        ...gradUnits(p, [
          `let ig = sigmoid(ih(j, xb) + hh(j, hb));`,
          `let fg = sigmoid(ih(${G(1)}, xb) + hh(${G(1)}, hb));`,
          `let gg = tanh_c(ih(${G(2)}, xb) + hh(${G(2)}, hb));`,
          `let og = sigmoid(ih(${G(3)}, xb) + hh(${G(3)}, hb));`,
          `let cp = cs[k];`,
          `let cn = fg * cp + ig * gg;`,
          `cs[k] = cn;`,
          `let hn = og * tanh_c(cn);`,
          `t0[gb + j] = ig; t0[gb + ${G(1)}] = fg; t0[gb + ${G(2)}] = gg; t0[gb + ${G(3)}] = og; t0[gb + ${G(4)}] = cn; t0[gb + ${G(5)}] = cp;`,
          next,
        ]),
      );
      break;
    case "gru":
      step.push(
        ...gradUnits(p, [
          `let rg = sigmoid(ih(j, xb) + hh(j, hb));`,
          `let zg = sigmoid(ih(${G(1)}, xb) + hh(${G(1)}, hb));`,
          `let ghn = hh(${G(2)}, hb);`,
          `let ng = tanh_c(ih(${G(2)}, xb) + rg * ghn);`,
          `let hn = (1.0 - zg) * ng + zg * t0[hb + j];`,
          `t0[gb + j] = rg; t0[gb + ${G(1)}] = zg; t0[gb + ${G(2)}] = ng; t0[gb + ${G(3)}] = ghn;`,
          next,
        ]),
      );
      break;
    case "mgu":
      step.push(...gradUnits(p, [`t0[gb + j] = sigmoid(ih(j, xb) + hh(j, hb));`]));
      step.push(`storageBarrier(); // the candidate reads f ⊙ h of every unit`);
      step.push(
        ...gradUnits(p, [
          `let fg = t0[gb + j];`,
          `let ng = tanh_c(ih(${G(1)}, xb) + hfh(${G(1)}, hb, gb));`,
          `t0[gb + ${G(1)}] = ng;`,
          `let hn = (1.0 - fg) * t0[hb + j] + fg * ng;`,
          next,
        ]),
      );
      break;
  }
  const initRow = `(${d === 0 ? "" : `${p.N} + `}n) * ${H}u`;
  const body: string[] = [
    `LOOP0 = nwg.x >> 16u;`,
    `let n = wid.x + wid.y * nwg.x;`,
    `if (n >= ${p.N}) { return; }`,
    `let nl = ${p.N} * ${p.L};`,
    ...regionBases(p, d).slice(0, 2),
  ];
  if (p.lengths && report) {
    body.push(`let lenI = ${p.lengths}[n];`, `if ((lenI < 0 || lenI > i32(${p.L})) && lid == 0u) { report_error(${ERR_LENGTH}u, lenI, n); }`);
  }
  body.push(`let len = ${gradLength(p, "n")};`, `let seq = n * ${p.L};`);
  if (lstm) body.push(`var cs: array<f32, ${p.U}>; // this invocation's units' c`);
  const h0 = layout.h0 !== undefined ? ctx.input(layout.h0) : undefined;
  const c0 = layout.c0 !== undefined ? ctx.input(layout.c0) : undefined;
  body.push(`// The initial state: h_prev of the first step.`);
  body.push(`let first = hsB + (seq + ${reverse ? "len - 1u" : "0u"}) * ${H}u;`);
  body.push(
    ...gradUnits(p, [
      `if (len > 0u) { t0[first + j] = ${h0 ? `${h0}[${initRow} + j]` : "0.0"}; }`,
      ...(lstm ? [`cs[k] = ${c0 ? `${c0}[${initRow} + j]` : "0.0"};`] : []),
    ]),
  );
  body.push(`storageBarrier();`);
  body.push(`for (var s = 0u; s < len; s++) {`);
  body.push(
    ...indent(
      [
        `let t = ${reverse ? "len - 1u - s" : "s"};`,
        `let row = seq + t;`,
        `let xb = row * ${D}u;`,
        `let hb = hsB + row * ${H}u;`,
        `let gb = gsB + row * ${GS}u;`,
        `let more = s + 1u < len;`,
        `let hnext = hsB + (row ${reverse ? "- 1u" : "+ 1u"}) * ${H}u; // the next step's h_prev (used when more)`,
        ...step,
        `storageBarrier();`,
      ],
      2,
    ),
  );
  body.push(`}`);
  out.push([`@compute @workgroup_size(${p.WG})`, GRAD_ENTRY, ...indent(body, 2), `}`].join("\n"));
  const Njs = ctx.dimJs(ctx.node.inputs[0]!.type.shape[0]!);
  return {
    code: out.join("\n\n"),
    dispatch: [`Math.min(${Njs}, 65535)`, `Math.max(1, Math.ceil((${Njs}) / 65535))`],
    scratch: [gradScratch(ctx, p)],
    ...(report && p.lengths ? { usesError: true } : {}),
  };
}

function gradScratch(ctx: WgslEmitCtx, p: GradPlan): { type: string; size: string } {
  const xShape = ctx.node.inputs[0]!.type.shape;
  return { type: "f32", size: `(${ctx.dimJs(xShape[0]!)}) * (${ctx.dimJs(xShape[1]!)}) * ${p.dirs * (p.H + p.GS + p.GD)}` };
}

/** Pass B_d: the steps in reverse; dA into dg, dh and dc in registers; dh0, dc0 at the end. */
function emitReversePass(ctx: WgslEmitCtx, p: GradPlan, d: number, w: DirNames): WgslPass {
  const { a, H, GH, GS, GD, dirs } = p;
  const layout = rnnLayout(a);
  const gl = rnnGradLayout(a);
  const reverse = a.direction === "backward" || d === 1;
  const lstm = a.cell === "lstm";
  const sequence = a.returnMode === "sequence";
  const width = H * dirs;
  const dy = ctx.input(layout.count);
  const G = (g: number, j = "j") => (g === 0 ? j : `${g * H}u + ${j}`);
  const cell: string[] = [];
  switch (a.cell) {
    case "elman":
      cell.push(`let hv = t0[gb + j];`, a.activation === "relu" ? `t0[db + j] = select(0.0, dh[k], hv > 0.0); // relu' taken as 0 at the kink` : `t0[db + j] = dh[k] * (1.0 - hv * hv);`, `dd[k] = 0.0;`);
      break;
    case "lstm":
      cell.push(
        `let ig = t0[gb + j]; let fg = t0[gb + ${G(1)}]; let gg = t0[gb + ${G(2)}]; let og = t0[gb + ${G(3)}];`,
        `let tc = tanh_c(t0[gb + ${G(4)}]);`,
        `let dct = dc[k] + dh[k] * og * (1.0 - tc * tc); // through h' = o·tanh(c')`,
        `t0[db + j] = dct * gg * ig * (1.0 - ig);`,
        `t0[db + ${G(1)}] = dct * t0[gb + ${G(5)}] * fg * (1.0 - fg);`,
        `t0[db + ${G(2)}] = dct * ig * (1.0 - gg * gg);`,
        `t0[db + ${G(3)}] = dh[k] * tc * og * (1.0 - og);`,
        `dc[k] = dct * fg;`,
        `dd[k] = 0.0;`,
      );
      break;
    case "gru":
      cell.push(
        `let rg = t0[gb + j]; let zg = t0[gb + ${G(1)}]; let ng = t0[gb + ${G(2)}];`,
        `let dn = dh[k] * (1.0 - zg) * (1.0 - ng * ng);`,
        `t0[db + j] = dn * t0[gb + ${G(3)}] * rg * (1.0 - rg); // n = tanh(gi_n + r·gh_n)`,
        `t0[db + ${G(1)}] = dh[k] * (t0[hb + j] - ng) * zg * (1.0 - zg);`,
        `t0[db + ${G(2)}] = dn;`,
        `t0[db + ${G(3)}] = dn * rg; // dgh_n`,
        `dd[k] = dh[k] * zg;`,
      );
      break;
    case "mgu":
      cell.push(`let ng = t0[gb + ${G(1)}];`, `t0[db + ${G(1)}] = dh[k] * t0[gb + j] * (1.0 - ng * ng);`);
      break;
  }
  // dh_prev[j] = dd[j] + Σ_r W_hh[r, j]·dgh[r], rows [from, to) of dgh at dg offset r + shift.
  const gather = (from: number, to: number, shift: number) =>
    `for (var r = LOOP0 + ${from}u; r < ${to}u; r++) { acc += ${w.wHh}[r * ${H}u + j] * t0[db + r${shift ? ` + ${shift}u` : ""}]; }`;
  const back: string[] = [`var acc = dd[k];`];
  if (a.cell === "gru") back.push(gather(0, 2 * H, 0), gather(2 * H, GH, H));
  else back.push(gather(0, a.cell === "mgu" ? H : GH, 0));
  back.push(`dh[k] = acc;`);

  const body: string[] = [
    `LOOP0 = nwg.x >> 16u;`,
    `let n = wid.x + wid.y * nwg.x;`,
    `if (n >= ${p.N}) { return; }`,
    `let nl = ${p.N} * ${p.L};`,
    ...regionBases(p, d),
    `let len = ${gradLength(p, "n")};`,
    `let seq = n * ${p.L};`,
    `var dh: array<f32, ${p.U}>; // this invocation's units' dh`,
    `var dd: array<f32, ${p.U}>; // dh_prev's terms not through W_hh`,
    ...(lstm ? [`var dc: array<f32, ${p.U}>;`] : []),
    ...gradUnits(p, [sequence ? `dh[k] = 0.0;` : `dh[k] = ${dy}[n * ${width}u + ${G(d, "j")}];`, ...(lstm ? [`dc[k] = 0.0;`] : [])]),
    `for (var s = 0u; s < len; s++) {`,
    ...indent(
      [
        `let t = ${reverse ? "s" : "len - 1u - s"};`,
        `let row = seq + t;`,
        `let hb = hsB + row * ${H}u;`,
        `let gb = gsB + row * ${GS}u;`,
        `let db = dgB + row * ${GD}u;`,
        ...gradUnits(p, [...(sequence ? [`dh[k] += ${dy}[row * ${width}u + ${G(d, "j")}];`] : []), ...cell]),
        `storageBarrier();`,
        ...(a.cell === "mgu"
          ? [
              ...gradUnits(p, [
                `// d(f ⊙ h)[j] = Σ_r W_hn[r, j]·dA_n[r], then the forget gate`,
                `var dfh = 0.0;`,
                `for (var r = LOOP0; r < ${H}u; r++) { dfh += ${w.wHh}[(${H}u + r) * ${H}u + j] * t0[db + ${H}u + r]; }`,
                `let fg = t0[gb + j]; let hp = t0[hb + j]; let ng = t0[gb + ${G(1)}];`,
                `t0[db + j] = (dh[k] * (ng - hp) + dfh * hp) * fg * (1.0 - fg);`,
                `dd[k] = dh[k] * (1.0 - fg) + dfh * fg;`,
              ]),
              `storageBarrier();`,
            ]
          : []),
        ...gradUnits(p, back),
      ],
      2,
    ),
    `}`,
  ];
  const initRow = `(${d === 0 ? "" : `${p.N} + `}n) * ${H}u`;
  const writes: string[] = [];
  if (gl.h0 !== undefined) writes.push(`${ctx.output(gl.h0)}[${initRow} + j] = dh[k];`);
  if (gl.c0 !== undefined) writes.push(`${ctx.output(gl.c0)}[${initRow} + j] = ${lstm ? "dc[k]" : "0.0"};`);
  if (writes.length) body.push(`// What reaches the initial state.`, ...gradUnits(p, writes));
  const code = [
    `// rnn_grad pass B (${reverse ? "backward" : "forward"} direction): ${a.cell} steps in reverse; dA into dg, dh${lstm ? " and dc" : ""} in registers.`,
    `var<private> LOOP0: u32; // 0 at run time; a loop start the compiler cannot see keeps loops rolled`,
    HELPERS.join("\n"),
    [`@compute @workgroup_size(${p.WG})`, GRAD_ENTRY, ...indent(body, 2), `}`].join("\n"),
  ].join("\n\n");
  const Njs = ctx.dimJs(ctx.node.inputs[0]!.type.shape[0]!);
  return { code, dispatch: [`Math.min(${Njs}, 65535)`, `Math.max(1, Math.ceil((${Njs}) / 65535))`], scratch: [gradScratch(ctx, p)] };
}

/** Pass C_d: every weight and bias gradient element as a fixed-order sum over (n, t < ℓ). */
function emitWeightPass(ctx: WgslEmitCtx, p: GradPlan, d: number): WgslPass {
  const { a, H, GH, D, GS, GD } = p;
  const gp = rnnGradLayout(a).directions[d]!;
  const ends = [GH * D, GH * D + GH * H, GH * D + GH * H + GH, GH * D + GH * H + 2 * GH];
  const total = a.hasBias ? ends[3]! : ends[1]!;
  const f = flatDispatch(String(total));
  // dg column of dgh row k (gru's n rows keep dgh_n H further on).
  const dghCol = a.cell === "gru" ? `select(kk, kk + ${H}u, kk >= ${2 * H}u)` : "kk";
  const hinKind = a.cell === "mgu" ? `select(1u, 2u, kk >= ${H}u)` : "1u";
  const body = [
    `LOOP0 = nwg.x >> 16u;`,
    `let i = ${f.index};`,
    `if (i >= ${total}u) { return; }`,
    `let nl = ${p.N} * ${p.L};`,
    ...regionBases(p, d),
    `// Which gradient element: its dg column, the operand kind, and the operand's column.`,
    `var col = 0u; var kind = 0u; var c = 0u;`,
    `if (i < ${ends[0]}u) { col = i / ${D}u; c = i % ${D}u; kind = 0u; }`,
    `else if (i < ${ends[1]}u) { let kk = (i - ${ends[0]}u) / ${H}u; col = ${dghCol}; c = (i - ${ends[0]}u) % ${H}u; kind = ${hinKind}; }`,
    ...(a.hasBias ? [`else if (i < ${ends[2]}u) { col = i - ${ends[1]}u; kind = 3u; }`, `else { let kk = i - ${ends[2]}u; col = ${dghCol}; kind = 3u; }`] : []),
    `var s = 0.0;`,
    `for (var n = LOOP0; n < ${p.N}; n++) {`,
    `  let len = ${gradLength(p, "n")};`,
    `  for (var t = 0u; t < len; t++) {`,
    `    let row = n * ${p.L} + t;`,
    `    s += t0[dgB + row * ${GD}u + col] * operand(kind, row, c, hsB, gsB);`,
    `  }`,
    `}`,
    `if (i < ${ends[0]}u) { ${ctx.output(gp.weightIh)}[i] = s; }`,
    `else if (i < ${ends[1]}u) { ${ctx.output(gp.weightHh)}[i - ${ends[0]}u] = s; }`,
    ...(a.hasBias ? [`else if (i < ${ends[2]}u) { ${ctx.output(gp.biasIh!)}[i - ${ends[1]}u] = s; }`, `else { ${ctx.output(gp.biasHh!)}[i - ${ends[2]}u] = s; }`] : []),
  ];
  const code = [
    `// rnn_grad pass C (direction ${d}): dW_ih = Σ dA ⊗ x, dW_hh = Σ dgh ⊗ hin${a.hasBias ? ", db_ih = Σ dA, db_hh = Σ dgh" : ""} over (n, t < ℓ); one invocation per element, no atomics.`,
    `var<private> LOOP0: u32; // 0 at run time; a loop start the compiler cannot see keeps loops rolled`,
    [
      `// What dg column col multiplies at step row: x (0), h_prev (1), f ⊙ h_prev (2, mgu's n rows), 1 (3, biases).`,
      `fn operand(kind: u32, row: u32, c: u32, hsB: u32, gsB: u32) -> f32 {`,
      `  if (kind == 0u) { return x0[row * ${D}u + c]; }`,
      `  if (kind == 1u) { return t0[hsB + row * ${H}u + c]; }`,
      ...(a.cell === "mgu" ? [`  if (kind == 2u) { return t0[gsB + row * ${GS}u + c] * t0[hsB + row * ${H}u + c]; }`] : []),
      `  return 1.0;`,
      `}`,
    ].join("\n"),
    [`@compute @workgroup_size(64)`, `fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {`, ...indent(body, 2), `}`].join("\n"),
  ].join("\n\n");
  return { code, dispatch: f.dispatch, scratch: [gradScratch(ctx, p)] };
}

/** Pass D: dx[n, t, c] = Σ_d Σ_k W_ih_d[k, c]·dA_d[n, t, k] for t < ℓ, else 0. */
function emitDxPass(ctx: WgslEmitCtx, p: GradPlan, names: readonly DirNames[]): WgslPass {
  const { H, GH, D, GS, GD, dirs } = p;
  const xShape = ctx.node.inputs[0]!.type.shape;
  const f = flatDispatch(`(${ctx.dimJs(xShape[0]!)}) * (${ctx.dimJs(xShape[1]!)}) * ${D}`);
  const sums = names.map((w, d) => {
    const dgB = `${dirs * (H + GS)}u * nl${d === 0 ? "" : ` + ${d * GD}u * nl`}`;
    return `  for (var k = LOOP0; k < ${GH}u; k++) { s += ${w.wIh}[k * ${D}u + c] * t0[${dgB} + row * ${GD}u + k]; }`;
  });
  const body = [
    `LOOP0 = nwg.x >> 16u;`,
    `let i = ${f.index};`,
    `let nl = ${p.N} * ${p.L};`,
    `if (i >= nl * ${D}u) { return; }`,
    `let row = i / ${D}u;`,
    `let c = i % ${D}u;`,
    `let n = row / ${p.L};`,
    `var s = 0.0;`,
    `if (row - n * ${p.L} < ${gradLength(p, "n")}) {`,
    ...sums,
    `}`,
    `${ctx.output(0)}[i] = s;`,
  ];
  const code = [
    `// rnn_grad pass D: dx = Σ over directions of dA·W_ih at steps t < ℓ (zeros past the length).`,
    `var<private> LOOP0: u32; // 0 at run time; a loop start the compiler cannot see keeps loops rolled`,
    [`@compute @workgroup_size(64)`, `fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {`, ...indent(body, 2), `}`].join("\n"),
  ].join("\n\n");
  return { code, dispatch: f.dispatch, scratch: [gradScratch(ctx, p)] };
}

function emitRnnGrad(ctx: WgslEmitCtx): WgslKernelResult {
  const a = ctx.node.attrs as unknown as RnnAttrs;
  const layout = rnnLayout(a);
  const H = a.hidden;
  const xShape = ctx.node.inputs[0]!.type.shape;
  const WG = Math.min(H, 64);
  const p: GradPlan = {
    a,
    H,
    GH: GATES[a.cell] * H,
    D: xShape[2]!.constValue()!,
    dirs: directionCount(a),
    N: ctx.dim(xShape[0]!),
    L: ctx.dim(xShape[1]!),
    WG,
    U: Math.ceil(H / WG),
    GS: TRACE_WIDTH[a.cell] * H,
    GD: (GATES[a.cell] + (a.cell === "gru" ? 1 : 0)) * H,
    lengths: layout.lengths !== undefined ? ctx.input(layout.lengths) : undefined,
  };
  const names: DirNames[] = layout.directions.map((pos: RnnDirectionInputs) => ({
    wIh: ctx.input(pos.weightIh),
    wHh: ctx.input(pos.weightHh),
    ...(pos.biasIh !== undefined ? { bIh: ctx.input(pos.biasIh), bHh: ctx.input(pos.biasHh!) } : {}),
  }));
  const passes: WgslPass[] = [];
  names.forEach((w, d) => passes.push(emitTracePass(ctx, p, d, w, d === 0), emitReversePass(ctx, p, d, w), emitWeightPass(ctx, p, d)));
  passes.push(emitDxPass(ctx, p, names));
  const errors = p.lengths ? { [ERR_LENGTH]: `length {a} of sequence {b} is outside [0, ${xShape[1]!.toString()}] (L = x's dim 1)` } : undefined;
  return { passes, ...(errors ? { errors } : {}) };
}

export const kernels: WgslKernel[] = [
  { op: "rnn", emit: emitRnn },
  { op: "rnn_grad", emit: emitRnnGrad },
];

// JS kernel for the `rnn` op (compiler/ops/rnn.ts): one function runs the
// whole sequence for every direction.
//
// Per direction, two phases:
//  1. Input projections xp[n, t, :] = W_ih·x[n, t, :] + b_ih for every step that
//     will be read (t < ℓ), in one contiguous GEMM-like pass over [N·L, D] × [D, G·H]:
//     it has no dependency between steps, so it is hoisted out of the time loop.
//  2. The time loop per sequence: the recurrent matvec hp = W_hh·h + b_hh (rows of
//     W_hh are contiguous, dot products accumulate in a double), then the gate
//     arithmetic fused into one loop over the hidden units, updating h (and c) in
//     place: every unit's new value depends only on hp and its own old h[j], c[j].
// Bidirectional emits the two phases twice, with the reverse weights and a
// descending time loop, writing the second half of each output row.
//
// Scratch buffers are allocated once per call at the top of the kernel: the input
// projections are stored in f32 (as an intermediate tensor would be), the per-step
// state and recurrent projections in doubles. H, G and D are static (the shape rule
// requires D static), so only N and L stay symbolic.

import type { Dim } from "../../ir/dims.ts";
import { typeToString } from "../../ir/types.ts";
import { GATES, directionCount, rnnGradLayout, rnnLayout, type RnnAttrs, type RnnDirectionInputs, type RnnLayout } from "../../ops/rnn.ts";
import type { JsEmitCtx, JsKernel } from "./kernel.ts";

/** `a * k`, folding k = 1 and literal operands. */
function times(a: string, k: number): string {
  if (/^\d+$/.test(a)) return String(Number(a) * k);
  return k === 1 ? a : `${a} * ${k}`;
}

/** `base + k`, folding 0 and literal operands. */
function plus(base: string, k: number): string {
  if (/^\d+$/.test(base)) return String(Number(base) + k);
  return k === 0 ? base : `${base} + ${k}`;
}

/** The product of two size expressions, folding literals (`n * L`, `n * 7`, `n`). */
function mulJs(a: string, b: string): string {
  if (a === "1") return b;
  if (b === "1") return a;
  if (/^\d+$/.test(a) && /^\d+$/.test(b)) return String(Number(a) * Number(b));
  return `${a} * ${b}`;
}

/** A value inside a generated template literal: literals inline, expressions interpolated. */
const interp = (js: string) => (/^\d+$/.test(js) ? js : `\${${js}}`);

const sigmoid = (v: string) => `1 / (1 + Math.exp(-(${v})))`;

interface Plan {
  readonly a: RnnAttrs;
  readonly H: number;
  /** G·H: rows of W_ih and W_hh. */
  readonly GH: number;
  readonly D: number;
  /** Output row width H·dirs. */
  readonly width: number;
  /** N and L as JS (a literal, or the local read from S at the top). */
  readonly N: string;
  readonly L: string;
  readonly hasLengths: boolean;
}

interface DirectionNames {
  readonly wIh: string;
  readonly wHh: string;
  readonly bIh?: string;
  readonly bHh?: string;
}

/** `row + i` for an index into a row starting at `row` ("" for row 0). */
const at = (row: string, i: string) => (row ? `${row} + ${i}` : i);

interface DotOperands {
  /** a[aRow + i] · b[bRow + i] for i < n (n static). */
  readonly a: string;
  readonly aRow: string;
  readonly b: string;
  readonly bRow: string;
  readonly i: string;
  readonly n: number;
}

/**
 * `target = init + Σ_i a[aRow + i]·b[bRow + i]`, accumulated in doubles. From 8 terms on,
 * four partial sums: a single accumulator serialises on the add latency, four
 * independent ones pipeline (the sum differs from the serial one only by rounding).
 */
function emitDot(init: string, target: string, { a, aRow, b, bRow, i, n }: DotOperands): string[] {
  const term = (off: string) => `${a}[${at(aRow, off)}] * ${b}[${at(bRow, off)}]`;
  if (n === 1) return [`${target} = ${init === "0" ? "" : `${init} + `}${term("0")};`];
  if (n < 8) return [`let s = ${init};`, `for (let ${i} = 0; ${i} < ${n}; ${i}++) s += ${term(i)};`, `${target} = s;`];
  const main = n - (n % 4);
  return [
    `let s0 = ${init}, s1 = 0, s2 = 0, s3 = 0; // four partial sums: independent adds pipeline`,
    `for (let ${i} = 0; ${i} < ${main}; ${i} += 4) {`,
    ...[0, 1, 2, 3].map((u) => `  s${u} += ${term(u === 0 ? i : `${i} + ${u}`)};`),
    `}`,
    ...Array.from({ length: n - main }, (_, r) => `s${r} += ${term(String(main + r))};`),
    `${target} = s0 + s1 + s2 + s3;`,
  ];
}

/** The sequence length of `n` as JS: the lengths entry or L. */
function lengthOf(p: Plan): string {
  return p.hasLengths ? "lengths[n]" : p.L;
}

/** Phase 1: xp[row, k] = b_ih[k] + Σ_d x[row, d]·W_ih[k, d] for every row (n, t) with t < ℓ. */
function emitInputProjection(p: Plan, w: DirectionNames): string {
  const { D, GH } = p;
  return [
    `// Input projections W_ih·x_t${w.bIh ? " + b_ih" : ""} of every step read below: [N·L, ${D}] × [${D}, ${GH}].`,
    `for (let n = 0; n < ${p.N}; n++) {`,
    `  const len = ${lengthOf(p)};`,
    `  const seqRow = ${mulJs("n", p.L)};`,
    `  for (let t = 0; t < len; t++) {`,
    `    const row = seqRow + t;`,
    `    const xRow = ${times("row", D)};`,
    `    const pRow = ${times("row", GH)};`,
    `    for (let k = 0; k < ${GH}; k++) {`,
    `      const wRow = ${times("k", D)};`,
    ...emitDot(w.bIh ? `${w.bIh}[k]` : "0", "xp[pRow + k]", { a: w.wIh, aRow: "wRow", b: "x", bRow: "xRow", i: "d", n: D }).map((l) => `      ${l}`),
    `    }`,
    `  }`,
    `}`,
  ].join("\n");
}

/** hp[k] = b_hh[k] + Σ_j W_hh[k, j]·v[j] for rows [from, to). */
function emitRecurrentMatvec(p: Plan, w: DirectionNames, v: string, from: number, to: number, what: string): string {
  const { H } = p;
  return [
    `// ${what}`,
    `for (let k = ${from}; k < ${to}; k++) {`,
    `  const wRow = ${times("k", H)};`,
    ...emitDot(w.bHh ? `${w.bHh}[k]` : "0", "hp[k]", { a: w.wHh, aRow: "wRow", b: v, bRow: "", i: "j", n: H }).map((l) => `  ${l}`),
    `}`,
  ].join("\n");
}

/** Pre-activation of gate `g` for unit j: input projection + recurrent projection. */
function pre(p: Plan, g: number): string {
  return `xp[${plus("pRow", g * p.H)} + j] + hp[${plus("j", g * p.H)}]`;
}

/**
 * One step of the cell for one sequence: reads xp at pRow and h (and c), updates them in
 * place and stores h into the output at `yRow` when the whole sequence is returned.
 */
function emitStep(p: Plan, w: DirectionNames, store: string | undefined): string {
  const { a, H, GH } = p;
  const storeLine = store ? [`  ${store} = hj;`] : [];
  const lines: string[] = [];
  switch (a.cell) {
    case "elman":
      lines.push(emitRecurrentMatvec(p, w, "h", 0, GH, `Recurrent projection W_hh·h${w.bHh ? " + b_hh" : ""}.`));
      lines.push(`for (let j = 0; j < ${H}; j++) {`);
      lines.push(`  const v = ${pre(p, 0)};`);
      lines.push(a.activation === "relu" ? `  const hj = v < 0 ? 0 : v;` : `  const hj = Math.tanh(v);`);
      lines.push(`  h[j] = hj;`, ...storeLine, `}`);
      break;
    case "lstm":
      lines.push(emitRecurrentMatvec(p, w, "h", 0, GH, `Recurrent projections W_hh·h${w.bHh ? " + b_hh" : ""} of the gates i, f, g, o.`));
      lines.push(`for (let j = 0; j < ${H}; j++) {`);
      lines.push(`  const i = ${sigmoid(pre(p, 0))};`);
      lines.push(`  const f = ${sigmoid(pre(p, 1))};`);
      lines.push(`  const g = Math.tanh(${pre(p, 2)});`);
      lines.push(`  const o = ${sigmoid(pre(p, 3))};`);
      lines.push(`  const cj = f * c[j] + i * g;`);
      lines.push(`  const hj = o * Math.tanh(cj);`);
      lines.push(`  c[j] = cj;`, `  h[j] = hj;`, ...storeLine, `}`);
      break;
    case "gru":
      lines.push(emitRecurrentMatvec(p, w, "h", 0, GH, `Recurrent projections W_hh·h${w.bHh ? " + b_hh" : ""} of the gates r, z, n.`));
      lines.push(`for (let j = 0; j < ${H}; j++) {`);
      lines.push(`  const r = ${sigmoid(pre(p, 0))};`);
      lines.push(`  const z = ${sigmoid(pre(p, 1))};`);
      lines.push(`  // PyTorch's form: the reset gate scales W_hn·h + b_hn.`);
      lines.push(`  const nj = Math.tanh(xp[${plus("pRow", 2 * H)} + j] + r * hp[${plus("j", 2 * H)}]);`);
      lines.push(`  const hj = (1 - z) * nj + z * h[j];`);
      lines.push(`  h[j] = hj;`, ...storeLine, `}`);
      break;
    case "mgu":
      lines.push(emitRecurrentMatvec(p, w, "h", 0, H, `Forget gate's recurrent projection W_hf·h${w.bHh ? " + b_hf" : ""}.`));
      lines.push(`for (let j = 0; j < ${H}; j++) {`);
      lines.push(`  const fj = ${sigmoid(pre(p, 0))};`);
      lines.push(`  f[j] = fj;`);
      lines.push(`  fh[j] = fj * h[j];`);
      lines.push(`}`);
      lines.push(emitRecurrentMatvec(p, w, "fh", H, 2 * H, `Candidate's recurrent projection W_hn·(f ⊙ h)${w.bHh ? " + b_hn" : ""}.`));
      lines.push(`for (let j = 0; j < ${H}; j++) {`);
      lines.push(`  const fj = f[j];`);
      lines.push(`  const hj = (1 - fj) * h[j] + fj * Math.tanh(${pre(p, 1)});`);
      lines.push(`  h[j] = hj;`, ...storeLine, `}`);
      break;
  }
  return lines.join("\n");
}

/** Phase 2 for direction d: the time loop of every sequence, then its output. */
function emitTimeLoop(p: Plan, w: DirectionNames, d: number, reverse: boolean, h0?: string, c0?: string): string {
  const { a, H, GH, width } = p;
  const sequence = a.returnMode === "sequence";
  const lstm = a.cell === "lstm";
  const dOff = d * H; // this direction's slice of each output row
  const out: string[] = [];
  out.push(`for (let n = 0; n < ${p.N}; n++) {`);
  out.push(`  const len = ${lengthOf(p)};`);
  out.push(`  const seqRow = ${mulJs("n", p.L)};`);
  // Initial state: h0/c0 are [dirs, N, H]; this sequence's row is (d·N + n).
  if (h0 || (lstm && c0)) out.push(`  const h0Row = ${d === 0 ? times("n", H) : times(`(${times(p.N, d)} + n)`, H)};`);
  const init = [`h[j] = ${h0 ? `${h0}[h0Row + j]` : "0"};`, ...(lstm ? [`c[j] = ${c0 ? `${c0}[h0Row + j]` : "0"};`] : [])];
  out.push(`  for (let j = 0; j < ${H}; j++) { ${init.join(" ")} }`);
  out.push(reverse ? `  for (let t = len - 1; t >= 0; t--) {` : `  for (let t = 0; t < len; t++) {`);
  out.push(`    const row = seqRow + t;`);
  out.push(`    const pRow = ${times("row", GH)};`);
  if (sequence) out.push(`    const yRow = ${plus(times("row", width), dOff)};`);
  out.push(indent(emitStep(p, w, sequence ? "y[yRow + j]" : undefined), 4));
  out.push(`  }`);
  if (sequence && p.hasLengths) {
    out.push(`  // Positions past the sequence's length are zeros.`);
    out.push(`  for (let t = len; t < ${p.L}; t++) {`);
    out.push(`    const yRow = ${plus(times("(seqRow + t)", width), dOff)};`);
    out.push(`    for (let j = 0; j < ${H}; j++) y[yRow + j] = 0;`);
    out.push(`  }`);
  }
  if (!sequence) {
    out.push(`  // The final state: after position ${reverse ? "0" : "ℓ − 1"} (h0 or zeros when ℓ = 0).`);
    out.push(`  const yRow = ${plus(times("n", width), dOff)};`);
    out.push(`  for (let j = 0; j < ${H}; j++) y[yRow + j] = h[j];`);
  }
  out.push(`}`);
  return out.join("\n");
}

function indent(s: string, n: number): string {
  const pad = " ".repeat(n);
  return s
    .split("\n")
    .map((l) => (l.length ? pad + l : l))
    .join("\n");
}

/** A size as JS: the literal, or a local read once from S. */
function sizeLocal(ctx: JsEmitCtx, d: Dim, name: string, decls: string[]): string {
  const js = ctx.dim(d);
  if (/^\d+$/.test(js)) return js;
  decls.push(`const ${name} = ${js};`);
  return name;
}

/** Local names of the rnn inputs (x, per-direction weights and biases, lengths, h0, c0) and their `name = xK` aliases. */
function inputAliases(ctx: JsEmitCtx, layout: RnnLayout, dirs: number): { names: DirectionNames[]; aliases: string[] } {
  const reverseSuffix = (i: number) => (dirs === 2 && i === 1 ? "Rev" : "");
  const names: DirectionNames[] = layout.directions.map((pos: RnnDirectionInputs, i) => ({
    wIh: `wIh${reverseSuffix(i)}`,
    wHh: `wHh${reverseSuffix(i)}`,
    ...(pos.biasIh !== undefined ? { bIh: `bIh${reverseSuffix(i)}`, bHh: `bHh${reverseSuffix(i)}` } : {}),
  }));
  const aliases = [`x = ${ctx.input(0)}`];
  layout.directions.forEach((pos, i) => {
    const nm = names[i]!;
    aliases.push(`${nm.wIh} = ${ctx.input(pos.weightIh)}`, `${nm.wHh} = ${ctx.input(pos.weightHh)}`);
    if (pos.biasIh !== undefined) aliases.push(`${nm.bIh} = ${ctx.input(pos.biasIh)}`, `${nm.bHh} = ${ctx.input(pos.biasHh!)}`);
  });
  if (layout.lengths !== undefined) aliases.push(`lengths = ${ctx.input(layout.lengths)}`);
  if (layout.h0 !== undefined) aliases.push(`h0 = ${ctx.input(layout.h0)}`);
  if (layout.c0 !== undefined) aliases.push(`c0 = ${ctx.input(layout.c0)}`);
  return { names, aliases };
}

function emitRnn(ctx: JsEmitCtx): string {
  const a = ctx.node.attrs as unknown as RnnAttrs;
  const layout = rnnLayout(a);
  const dirs = directionCount(a);
  const H = a.hidden;
  const GH = GATES[a.cell] * H;
  const xShape = ctx.node.inputs[0]!.type.shape;
  const D = xShape[2]!.constValue()!;
  const width = H * dirs;
  const decls: string[] = [];
  const N = sizeLocal(ctx, xShape[0]!, "N", decls);
  const L = sizeLocal(ctx, xShape[1]!, "L", decls);
  const p: Plan = { a, H, GH, D, width, N, L, hasLengths: layout.lengths !== undefined };

  const lines: string[] = [];
  lines.push(`// ${a.cell}${a.cell === "elman" ? ` (${a.activation})` : ""}, ${a.direction}, hidden ${H}, return ${a.returnMode}${a.hasBias ? "" : ", no bias"}: x ${typeToString(ctx.node.inputs[0]!.type)} → y ${typeToString(ctx.node.outputs[0]!.type)}.`);
  lines.push(...decls);

  const { names, aliases } = inputAliases(ctx, layout, dirs);
  aliases.push(`y = ${ctx.output(0)}`);
  lines.push(`const ${aliases.join(", ")};`);

  // Batch sizes of lengths/h0/c0 are separate dims in the IR; check them when they may differ.
  const batch = xShape[0]!;
  const checkBatch = (index: number | undefined, axis: number, what: (got: string) => string) => {
    if (index === undefined) return;
    const got = ctx.node.inputs[index]!.type.shape[axis]!;
    if (got.equals(batch)) return;
    const gotJs = ctx.dim(got);
    lines.push(`if (${gotJs} !== ${N}) T.fail(\`${what(interp(gotJs))}\`);`);
  };
  checkBatch(layout.lengths, 0, (got) => `lengths has ${got} entries but x has a batch of ${interp(N)} sequences`);
  checkBatch(layout.h0, 1, (got) => `h0 has a batch of ${got} but x has ${interp(N)} sequences`);
  checkBatch(layout.c0, 1, (got) => `c0 has a batch of ${got} but x has ${interp(N)} sequences`);
  if (p.hasLengths) {
    lines.push(
      `for (let n = 0; n < ${N}; n++) {`,
      `  const len = lengths[n];`,
      `  if (!(len >= 0 && len <= ${L})) T.fail(\`length \${len} of sequence \${n} is outside [0, ${interp(L)}] (L = ${interp(L)})\`);`,
      `}`,
    );
  }

  lines.push(`// Scratch, allocated once: input projections of every step, recurrent projections, state.`);
  lines.push(`const xp = new Float32Array(${times(mulJs(N, L), GH)});`);
  lines.push(`const hp = new Float64Array(${GH});`);
  lines.push(`const h = new Float64Array(${H});`);
  if (a.cell === "lstm") lines.push(`const c = new Float64Array(${H});`);
  if (a.cell === "mgu") lines.push(`const f = new Float64Array(${H});`, `const fh = new Float64Array(${H});`);

  const h0 = layout.h0 !== undefined ? "h0" : undefined;
  const c0 = layout.c0 !== undefined ? "c0" : undefined;
  names.forEach((w, d) => {
    const reverse = a.direction === "backward" || d === 1;
    lines.push("");
    lines.push(`// ---- ${reverse ? "backward" : "forward"} direction${dirs === 2 ? `: output columns [${d * H}, ${(d + 1) * H})` : ""}`);
    lines.push(emitInputProjection(p, w));
    lines.push(emitTimeLoop(p, w, d, reverse, h0, c0));
  });
  return lines.join("\n");
}


// ---------------------------------------------------------------------------
// JS kernel for `rnn_grad` (backpropagation through time; compiler/ops/rnn.ts).
//
// Per direction and sequence, two loops:
//  1. The forward pass again, keeping per time step the state it read (hs: h_prev,
//     cs: lstm's c_prev) and its gate activations (gs: elman h'; lstm i f g o c';
//     gru r z n and W_hn·h + b_hn; mgu f ñ), in scratch sized for one sequence.
//  2. The steps in reverse: dh gains dy at the step ("sequence"), the cell's backward
//     gives the pre-activation gradients dA (= dgi; gru's dgh differs in its n rows and
//     lives in dG), then one pass over the rows k of W_ih and one over the rows of W_hh
//     accumulate  dW_ih[k,:] += dA[k]·x_t,  dx_t += dA[k]·W_ih[k,:],
//                 dW_hh[k,:] += dG[k]·hin,  dh_prev += dG[k]·W_hh[k,:]
//     with contiguous inner loops (row-major weights: the transposed products W^T·v are
//     done as sums of scaled rows rather than strided column dots).
// Weight and bias gradients accumulate in doubles and are written once per direction;
// dx accumulates in doubles over both directions (rows past a sequence's length stay 0).
// The forward's checks are repeated: when only gradients are asked for, the forward
// node may not run at all.

/** Forward step for the gradient: h (and c) updated in place, gates saved at gs[gRow..]. */
function emitTraceStep(p: Plan, w: DirectionNames): string {
  const { a, H, GH, D } = p;
  const lines: string[] = [];
  lines.push(`// Pre-activations: gi = W_ih·x_t${w.bIh ? " + b_ih" : ""}, gh = W_hh·h${w.bHh ? " + b_hh" : ""}.`);
  lines.push(`for (let k = 0; k < ${GH}; k++) {`, `  const wRow = ${times("k", D)};`);
  lines.push(...emitDot(w.bIh ? `${w.bIh}[k]` : "0", "gi[k]", { a: w.wIh, aRow: "wRow", b: "x", bRow: "xRow", i: "e", n: D }).map((l) => `  ${l}`), `}`);
  const recurrent = (rows: number, v: string) => [
    `for (let k = 0; k < ${rows}; k++) {`,
    `  const wRow = ${times("k", H)};`,
    ...emitDot(w.bHh ? `${w.bHh}[k]` : "0", "gh[k]", { a: w.wHh, aRow: "wRow", b: v, bRow: "", i: "j", n: H }).map((l) => `  ${l}`),
    `}`,
  ];
  switch (a.cell) {
    case "elman":
      lines.push(...recurrent(H, "h"));
      lines.push(`for (let j = 0; j < ${H}; j++) {`, `  const v = gi[j] + gh[j];`);
      lines.push(a.activation === "relu" ? `  const hj = v < 0 ? 0 : v;` : `  const hj = Math.tanh(v);`);
      lines.push(`  gs[gRow + j] = hj;`, `  h[j] = hj;`, `}`);
      break;
    case "lstm":
      lines.push(...recurrent(GH, "h"));
      lines.push(`for (let j = 0; j < ${H}; j++) {`);
      lines.push(`  const i = ${sigmoid(`gi[j] + gh[j]`)};`);
      lines.push(`  const f = ${sigmoid(`gi[${H} + j] + gh[${H} + j]`)};`);
      lines.push(`  const g = Math.tanh(gi[${2 * H} + j] + gh[${2 * H} + j]);`);
      lines.push(`  const o = ${sigmoid(`gi[${3 * H} + j] + gh[${3 * H} + j]`)};`);
      lines.push(`  const cj = f * c[j] + i * g;`);
      lines.push(`  gs[gRow + j] = i; gs[gRow + ${H} + j] = f; gs[gRow + ${2 * H} + j] = g; gs[gRow + ${3 * H} + j] = o; gs[gRow + ${4 * H} + j] = cj;`);
      lines.push(`  c[j] = cj;`, `  h[j] = o * Math.tanh(cj);`, `}`);
      break;
    case "gru":
      lines.push(...recurrent(GH, "h"));
      lines.push(`for (let j = 0; j < ${H}; j++) {`);
      lines.push(`  const r = ${sigmoid(`gi[j] + gh[j]`)};`);
      lines.push(`  const z = ${sigmoid(`gi[${H} + j] + gh[${H} + j]`)};`);
      lines.push(`  const ghn = gh[${2 * H} + j];`);
      lines.push(`  const nj = Math.tanh(gi[${2 * H} + j] + r * ghn);`);
      lines.push(`  gs[gRow + j] = r; gs[gRow + ${H} + j] = z; gs[gRow + ${2 * H} + j] = nj; gs[gRow + ${3 * H} + j] = ghn;`);
      lines.push(`  h[j] = (1 - z) * nj + z * h[j];`, `}`);
      break;
    case "mgu":
      lines.push(...recurrent(H, "h"));
      lines.push(`for (let j = 0; j < ${H}; j++) {`, `  const fj = ${sigmoid(`gi[j] + gh[j]`)};`, `  gs[gRow + j] = fj;`, `  fh[j] = fj * h[j];`, `}`);
      lines.push(`// The candidate's recurrent projection W_hn·(f ⊙ h)${w.bHh ? " + b_hn" : ""}.`);
      lines.push(`for (let k = ${H}; k < ${2 * H}; k++) {`, `  const wRow = ${times("k", H)};`);
      lines.push(...emitDot(w.bHh ? `${w.bHh}[k]` : "0", "gh[k]", { a: w.wHh, aRow: "wRow", b: "fh", bRow: "", i: "j", n: H }).map((l) => `  ${l}`), `}`);
      lines.push(`for (let j = 0; j < ${H}; j++) {`, `  const fj = gs[gRow + j];`, `  const nj = Math.tanh(gi[${H} + j] + gh[${H} + j]);`);
      lines.push(`  gs[gRow + ${H} + j] = nj;`, `  h[j] = (1 - fj) * h[j] + fj * nj;`, `}`);
      break;
  }
  return lines.join("\n");
}

/**
 * Backward step: from dh (and dc) of the step's output, the pre-activation gradients dA
 * (and gru's dG) and the direct part of dh_prev in dhn (the W_hh^T·dG part is added by
 * the accumulation that follows; mgu adds its n rows' part here, through d(f ⊙ h)).
 */
function emitBackStep(p: Plan, w: DirectionNames): string {
  const { a, H } = p;
  const lines: string[] = [];
  switch (a.cell) {
    case "elman":
      lines.push(`for (let j = 0; j < ${H}; j++) {`, `  const hj = gs[gRow + j];`);
      lines.push(a.activation === "relu" ? `  dA[j] = hj > 0 ? dh[j] : 0; // relu' taken as 0 at the kink` : `  dA[j] = dh[j] * (1 - hj * hj);`);
      lines.push(`  dhn[j] = 0;`, `}`);
      break;
    case "lstm":
      lines.push(`for (let j = 0; j < ${H}; j++) {`);
      lines.push(`  const i = gs[gRow + j], f = gs[gRow + ${H} + j], g = gs[gRow + ${2 * H} + j], o = gs[gRow + ${3 * H} + j];`);
      lines.push(`  const tc = Math.tanh(gs[gRow + ${4 * H} + j]);`);
      lines.push(`  const dct = dc[j] + dh[j] * o * (1 - tc * tc); // through h' = o·tanh(c')`);
      lines.push(`  dA[j] = dct * g * i * (1 - i);`);
      lines.push(`  dA[${H} + j] = dct * cs[hRow + j] * f * (1 - f);`);
      lines.push(`  dA[${2 * H} + j] = dct * i * (1 - g * g);`);
      lines.push(`  dA[${3 * H} + j] = dh[j] * tc * o * (1 - o);`);
      lines.push(`  dc[j] = dct * f;`, `  dhn[j] = 0;`, `}`);
      break;
    case "gru":
      lines.push(`for (let j = 0; j < ${H}; j++) {`);
      lines.push(`  const r = gs[gRow + j], z = gs[gRow + ${H} + j], nj = gs[gRow + ${2 * H} + j];`);
      lines.push(`  const dn = dh[j] * (1 - z) * (1 - nj * nj);`);
      lines.push(`  const dr = dn * gs[gRow + ${3 * H} + j] * r * (1 - r); // n = tanh(gi_n + r·gh_n)`);
      lines.push(`  const dz = dh[j] * (hs[hRow + j] - nj) * z * (1 - z);`);
      lines.push(`  dA[j] = dr; dA[${H} + j] = dz; dA[${2 * H} + j] = dn;`);
      lines.push(`  dG[j] = dr; dG[${H} + j] = dz; dG[${2 * H} + j] = dn * r;`);
      lines.push(`  dhn[j] = dh[j] * z;`, `}`);
      break;
    case "mgu":
      lines.push(`for (let j = 0; j < ${H}; j++) {`, `  const nj = gs[gRow + ${H} + j];`, `  dA[${H} + j] = dh[j] * gs[gRow + j] * (1 - nj * nj);`, `  dfh[j] = 0;`, `}`);
      lines.push(`// d(f ⊙ h) = W_hn^T·dA_n, as a sum of W_hn's rows.`);
      lines.push(`for (let k = 0; k < ${H}; k++) {`, `  const g = dA[${H} + k];`, `  const wRow = ${times(`(${H} + k)`, H)};`);
      lines.push(`  for (let j = 0; j < ${H}; j++) dfh[j] += g * ${w.wHh}[wRow + j];`, `}`);
      lines.push(`for (let j = 0; j < ${H}; j++) {`, `  const fj = gs[gRow + j], hp = hs[hRow + j], nj = gs[gRow + ${H} + j];`);
      lines.push(`  dA[j] = (dh[j] * (nj - hp) + dfh[j] * hp) * fj * (1 - fj);`);
      lines.push(`  dhn[j] = dh[j] * (1 - fj) + dfh[j] * fj;`, `  fh[j] = fj * hp; // W_hn's input, for its gradient`, `}`);
      break;
  }
  return lines.join("\n");
}

/** Accumulation of one step into the weight, bias and x gradients, and W_hh^T·dG into dhn. */
function emitAccumulate(p: Plan, w: DirectionNames, gw: { bIh: boolean }): string {
  const { a, H, GH, D } = p;
  const dG = a.cell === "gru" ? "dG" : "dA";
  const lines: string[] = [];
  lines.push(`// W_ih rows: dW_ih[k,:] += dA[k]·x_t, dx_t += dA[k]·W_ih[k,:].`);
  lines.push(`for (let k = 0; k < ${GH}; k++) {`, `  const g = dA[k];`);
  if (gw.bIh) lines.push(`  aBih[k] += g;`);
  lines.push(`  const wRow = ${times("k", D)};`);
  lines.push(`  for (let e = 0; e < ${D}; e++) {`, `    aWih[wRow + e] += g * x[xRow + e];`, `    ax[xRow + e] += g * ${w.wIh}[wRow + e];`, `  }`, `}`);
  const hhRows = (from: number, to: number, hin: string, back: boolean) => {
    lines.push(`for (let k = ${from}; k < ${to}; k++) {`, `  const g = ${dG}[k];`);
    if (gw.bIh) lines.push(`  aBhh[k] += g;`);
    lines.push(`  const wRow = ${times("k", H)};`);
    lines.push(`  for (let j = 0; j < ${H}; j++) {`, `    aWhh[wRow + j] += g * ${hin};`);
    if (back) lines.push(`    dhn[j] += g * ${w.wHh}[wRow + j];`);
    lines.push(`  }`, `}`);
  };
  if (a.cell === "mgu") {
    lines.push(`// W_hh rows: dW_hh[k,:] += dA[k]·hin (h_prev for f, f ⊙ h_prev for n), dh_prev += dA_f[k]·W_hf[k,:].`);
    hhRows(0, H, "hs[hRow + j]", true);
    hhRows(H, 2 * H, "fh[j]", false);
  } else {
    lines.push(`// W_hh rows: dW_hh[k,:] += ${dG}[k]·h_prev, dh_prev += ${dG}[k]·W_hh[k,:].`);
    hhRows(0, GH, "hs[hRow + j]", true);
  }
  return lines.join("\n");
}

function emitRnnGrad(ctx: JsEmitCtx): string {
  const a = ctx.node.attrs as unknown as RnnAttrs;
  const layout = rnnLayout(a);
  const gl = rnnGradLayout(a);
  const dirs = directionCount(a);
  const H = a.hidden;
  const GH = GATES[a.cell] * H;
  const xShape = ctx.node.inputs[0]!.type.shape;
  const D = xShape[2]!.constValue()!;
  const width = H * dirs;
  const decls: string[] = [];
  const N = sizeLocal(ctx, xShape[0]!, "N", decls);
  const L = sizeLocal(ctx, xShape[1]!, "L", decls);
  const p: Plan = { a, H, GH, D, width, N, L, hasLengths: layout.lengths !== undefined };
  const sequence = a.returnMode === "sequence";
  const lstm = a.cell === "lstm";
  const GS = { elman: 1, lstm: 5, gru: 4, mgu: 2 }[a.cell] * H;

  const lines: string[] = [];
  lines.push(`// Gradient of ${a.cell}${a.cell === "elman" ? ` (${a.activation})` : ""}, ${a.direction}, hidden ${H}, return ${a.returnMode}${a.hasBias ? "" : ", no bias"}: x ${typeToString(ctx.node.inputs[0]!.type)}, dy ${typeToString(ctx.node.inputs[layout.count]!.type)}.`);
  lines.push(...decls);
  const { names, aliases } = inputAliases(ctx, layout, dirs);
  aliases.push(`dy = ${ctx.input(layout.count)}`, `dx = ${ctx.output(gl.dx)}`);
  if (gl.h0 !== undefined) aliases.push(`dh0 = ${ctx.output(gl.h0)}`);
  if (gl.c0 !== undefined) aliases.push(`dc0 = ${ctx.output(gl.c0)}`);
  lines.push(`const ${aliases.join(", ")};`);
  if (p.hasLengths) {
    lines.push(
      `for (let n = 0; n < ${N}; n++) {`,
      `  const len = lengths[n];`,
      `  if (!(len >= 0 && len <= ${L})) T.fail(\`length \${len} of sequence \${n} is outside [0, ${interp(L)}] (L = ${interp(L)})\`);`,
      `}`,
    );
  }

  lines.push(`// Scratch, allocated once. Per sequence, by time step: hs (h_prev), ${lstm ? "cs (c_prev), " : ""}gs (gate activations).`);
  lines.push(`const hs = new Float64Array(${times(L, H)});`);
  if (lstm) lines.push(`const cs = new Float64Array(${times(L, H)});`);
  lines.push(`const gs = new Float64Array(${times(L, GS)});`);
  lines.push(`const gi = new Float64Array(${GH}), gh = new Float64Array(${GH}), h = new Float64Array(${H});`);
  if (lstm) lines.push(`const c = new Float64Array(${H}), dc = new Float64Array(${H});`);
  if (a.cell === "mgu") lines.push(`const fh = new Float64Array(${H}), dfh = new Float64Array(${H});`);
  lines.push(`const dA = new Float64Array(${GH});`);
  if (a.cell === "gru") lines.push(`const dG = new Float64Array(${GH}); // gru: dgh (its n rows are dA_n·r)`);
  lines.push(`let dh = new Float64Array(${H}), dhn = new Float64Array(${H});`);
  lines.push(`// Accumulators in doubles: dx over both directions, weights and biases per direction.`);
  lines.push(`const ax = new Float64Array(${times(mulJs(N, L), D)});`);
  lines.push(`const aWih = new Float64Array(${GH * D}), aWhh = new Float64Array(${GH * H});`);
  if (a.hasBias) lines.push(`const aBih = new Float64Array(${GH}), aBhh = new Float64Array(${GH});`);

  names.forEach((w, d) => {
    const reverse = a.direction === "backward" || d === 1;
    const gp = gl.directions[d]!;
    const dOff = d * H;
    lines.push("");
    lines.push(`// ---- ${reverse ? "backward" : "forward"} direction${dirs === 2 ? `: dy columns [${dOff}, ${dOff + H})` : ""}`);
    if (d > 0) lines.push(`aWih.fill(0); aWhh.fill(0);${a.hasBias ? " aBih.fill(0); aBhh.fill(0);" : ""}`);
    const body: string[] = [];
    body.push(`const len = ${lengthOf(p)};`, `const seqRow = ${mulJs("n", p.L)};`);
    const hasInit = layout.h0 !== undefined || (lstm && layout.c0 !== undefined);
    const stateRow = d === 0 ? times("n", H) : times(`(${times(N, d)} + n)`, H);
    if (hasInit || gl.h0 !== undefined || gl.c0 !== undefined) body.push(`const h0Row = ${stateRow};`);
    const init = [`h[j] = ${layout.h0 !== undefined ? "h0[h0Row + j]" : "0"};`, ...(lstm ? [`c[j] = ${layout.c0 !== undefined ? "c0[h0Row + j]" : "0"};`] : [])];
    body.push(`for (let j = 0; j < ${H}; j++) { ${init.join(" ")} }`);
    body.push(`// 1. The forward pass again, saving h_prev${lstm ? ", c_prev" : ""} and the gates of each step.`);
    body.push(reverse ? `for (let t = len - 1; t >= 0; t--) {` : `for (let t = 0; t < len; t++) {`);
    body.push(`  const xRow = ${times("(seqRow + t)", D)};`, `  const hRow = ${times("t", H)};`, `  const gRow = ${times("t", GS)};`);
    body.push(`  for (let j = 0; j < ${H}; j++) { hs[hRow + j] = h[j];${lstm ? " cs[hRow + j] = c[j];" : ""} }`);
    body.push(indent(emitTraceStep(p, w), 2));
    body.push(`}`);
    body.push(`// 2. The steps in reverse.`);
    body.push(sequence ? `dh.fill(0);` : `for (let j = 0; j < ${H}; j++) dh[j] = dy[${plus(times("n", width), dOff)} + j];`);
    if (lstm) body.push(`dc.fill(0);`);
    body.push(reverse ? `for (let t = 0; t < len; t++) {` : `for (let t = len - 1; t >= 0; t--) {`);
    body.push(`  const row = seqRow + t;`, `  const xRow = ${times("row", D)};`, `  const hRow = ${times("t", H)};`, `  const gRow = ${times("t", GS)};`);
    if (sequence) body.push(`  const yRow = ${plus(times("row", width), dOff)};`, `  for (let j = 0; j < ${H}; j++) dh[j] += dy[yRow + j];`);
    body.push(indent(emitBackStep(p, w), 2));
    body.push(indent(emitAccumulate(p, w, { bIh: a.hasBias }), 2));
    body.push(`  const swap = dh; dh = dhn; dhn = swap;`);
    body.push(`}`);
    if (gl.h0 !== undefined || gl.c0 !== undefined) {
      body.push(`// 3. What reaches the initial state.`);
      const w0 = [...(gl.h0 !== undefined ? [`dh0[h0Row + j] = dh[j];`] : []), ...(gl.c0 !== undefined ? [`dc0[h0Row + j] = ${lstm ? "dc[j]" : "0"};`] : [])];
      body.push(`for (let j = 0; j < ${H}; j++) { ${w0.join(" ")} }`);
    }
    lines.push(`for (let n = 0; n < ${N}; n++) {`, indent(body.join("\n"), 2), `}`);
    lines.push(`${ctx.output(gp.weightIh)}.set(aWih);`, `${ctx.output(gp.weightHh)}.set(aWhh);`);
    if (gp.biasIh !== undefined) lines.push(`${ctx.output(gp.biasIh)}.set(aBih);`, `${ctx.output(gp.biasHh!)}.set(aBhh);`);
  });
  lines.push(`dx.set(ax);`);
  return lines.join("\n");
}

export const kernels: JsKernel[] = [
  { op: "rnn", emit: emitRnn },
  { op: "rnn_grad", emit: emitRnnGrad },
];

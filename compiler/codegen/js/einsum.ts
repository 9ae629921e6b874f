// JS kernel template for the IR op `einsum` (compiler/ops/einsum.ts), which
// also carries `dense`, `matmul`/`@` and index notation, and for its backward
// op `diag_embed` (at the end of the file).
//
// The einsum is classified at codegen time:
//
//  * GEMM: two operands whose indices split into batch (both operands and the
//    output), rows M (left and output), columns N (right and output) and a
//    non-empty reduction K (both operands, not the output). The output loops
//    run over batch, M and N, register-blocked 2 × 4: two indices of the
//    "shared" operand times four "lanes" of the other, eight sums held in
//    local doubles, with the reduction innermost (each step loads 2 + 4 values
//    for 8 multiply-adds; odd tails run 1 × 4, then 1 × 1). Which operand
//    gives the lanes, and which K index runs innermost, is chosen from the
//    strides: for dense x·Wᵀ (W [o, i]) the reduction is contiguous in both
//    operands; for A·B (B [k, n]) it is contiguous in A and the lanes are
//    adjacent columns of B. (Measured faster than the i-k-j order, which must
//    accumulate in memory.)
//  * Everything else (diagonals, traces, 3+ operands, outer products, one
//    operand transposes and sums, indices summed within one operand): a plain
//    loop nest over the output indices then the summed ones, accumulating in a
//    local, with each operand's load hoisted to the shallowest loop it depends on.
//
// Both work on static strides: an index's stride in a tensor is the sum of the
// strides of the axes it labels (so a repeated index walks the diagonal).
// Indices of static size 1 are dropped (they always sit at 0, and broadcasting
// produces them), and neighbouring loops that walk memory as one are merged
// (dense over [N, L, in] runs one row loop of N·L), so every permutation of
// operand layouts works and the common ones get one flat loop per role.

import { Dim } from "../../ir/dims.ts";
import { bind, KernelWriter, loop, plus as sumOf, times } from "./elementwise.ts";
import { storeResult } from "./epilogue.ts";
import type { JsEmitCtx, JsKernel } from "./kernel.ts";
import { analyse, estimate, mergeLoops, type Analysis, type Loop } from "../einsum-loops.ts";


/** Outputs per register block in the GEMM kernel. */
const LANES = 4;

// ---------------------------------------------------------------------------
// Analysis: indices, sizes and strides

const isOne = (d: Dim) => d.constValue() === 1;
const isZero = (d: Dim) => d.constValue() === 0;

// ---------------------------------------------------------------------------
// Code-writing helpers

/** Sanitised index names for comments (names are arbitrary strings). */
function showName(name: string): string {
  return name.replace(/[^\w…~]/g, "?");
}

function showTerm(tensor: string, names: readonly string[]): string {
  return names.length ? `${tensor}[${names.map(showName).join(", ")}]` : tensor;
}

/** Allocates loop variable names: readable, unique, and never clashing with the fixed locals (which all contain `_` or are reserved). */
class Names {
  private readonly used = new Set(["S", "T", "acc", "av", "bv"]);
  take(preferred: string): string {
    let base = /^[A-Za-z][A-Za-z0-9]*$/.test(preferred) && !/^([xysp]|av|bv)\d+$/.test(preferred) ? preferred : "ix";
    if (base.length > 12) base = "ix";
    let name = base;
    for (let n = 2; this.used.has(name) || /^([xysp]|av|bv)\d+$/.test(name); n++) name = /^([xysp]|av|bv)$/.test(base) ? `${base}v${n}` : `${base}${n}`;
    this.used.add(name);
    return name;
  }
}

/** A readable loop variable for an index: letters as they are, batch names `…p` as `e<p>`. */
function preferredVar(names: readonly string[]): string {
  return names.map((n) => (/^…\d+$/.test(n) ? `e${n.slice(1)}` : n)).join("");
}

/** Collects the kernel's body: hoisted size/stride constants on top, then the loop nest. */
class Writer {
  private readonly consts: string[] = [];
  private readonly constOf = new Map<string, string>();
  private readonly lines: string[] = [];
  private depth = 0;
  constructor(private readonly ctx: JsEmitCtx) {}

  /** A dim as JS: a literal when static, else a constant read once at the top. */
  value(d: Dim, name: string): string {
    const c = d.constValue();
    if (c !== undefined) return String(c);
    const expr = this.ctx.dim(d);
    const known = this.constOf.get(expr);
    if (known) return known;
    this.constOf.set(expr, name);
    this.consts.push(`const ${name} = ${expr};`);
    return name;
  }
  line(s: string): void {
    this.lines.push(`${"  ".repeat(this.depth)}${s}`);
  }
  open(s: string): void {
    this.line(s);
    this.depth++;
  }
  close(): void {
    this.depth--;
    this.line("}");
  }
  text(comment: readonly string[]): string {
    return [...comment, ...this.consts, ...this.lines].join("\n");
  }
}

/** `base + v·stride`, folding zeros and ones. */
function offsetExpr(base: string, v: string, stride: string): string {
  const term = stride === "1" ? v : `${v} * ${stride}`;
  return base === "0" ? term : `${base} + ${term}`;
}

/** `base + k` for a literal or symbolic lane offset. */
function plus(base: string, k: string): string {
  if (k === "0") return base;
  if (base === "0") return k;
  return `${base} + ${k}`;
}

/** The sum of two offsets, folded when both are literals. */
function addOffsets(p: string, q: string): string {
  if (/^\d+$/.test(p) && /^\d+$/.test(q)) return String(Number(p) + Number(q));
  return plus(p, q);
}

/** Lane c's offset from lane 0 for a stride expression. */
function laneOffset(c: number, stride: string): string {
  if (c === 0) return "0";
  if (/^\d+$/.test(stride)) return String(c * Number(stride));
  return c === 1 ? stride : `${c} * ${stride}`;
}

// ---------------------------------------------------------------------------
// GEMM kernel

type Role = "batch" | "rows" | "cols" | "red";

interface GemmPlan {
  /** Operand whose load per reduction step is shared by the lanes, and the operand that supplies the lanes. */
  readonly shared: number;
  readonly lanes: number;
  /** Output loops outside the register block (batch, rows, columns). */
  readonly outer: readonly { loop: Loop; role: Role }[];
  /** An index of the shared operand only, blocked by 2 (absent when the shared operand has none). */
  readonly pair?: Loop;
  /** An index of the lanes operand only, blocked by LANES. */
  readonly block: Loop;
  /** Reduction loops, innermost last. */
  readonly red: readonly Loop[];
}

/** A GEMM plan when the einsum is a (batched) matrix product, else undefined. */
function planGemm(a: Analysis): GemmPlan | undefined {
  if (a.operands.length !== 2) return undefined;
  const [left, right] = a.operands as [readonly string[], readonly string[]];
  const kept = (names: readonly string[]) => names.filter((n) => a.loops.has(n));
  for (const names of [left, right]) if (new Set(kept(names)).size !== kept(names).length) return undefined;
  const roleOf = (name: string): Role | undefined => {
    const l = left.includes(name);
    const r = right.includes(name);
    const o = a.output.includes(name);
    if (l && r) return o ? "batch" : "red";
    if (o) return l ? "rows" : "cols";
    return undefined; // summed within one operand
  };
  const byRole = (role: Role, order: readonly string[]) => mergeLoops(order.filter((n) => roleOf(n) === role).map((n) => a.loops.get(n)!));
  if ([...a.loops.keys()].some((n) => roleOf(n) === undefined)) return undefined;
  const batch = byRole("batch", a.outNames);
  const rows = byRole("rows", a.outNames);
  const cols = byRole("cols", a.outNames);
  let red = byRole("red", kept(left));
  if (red.length === 0 || rows.length + cols.length === 0) return undefined;

  // The innermost reduction loop: contiguous in both operands if possible, else in one.
  const contiguity = (l: Loop) => (isOne(l.strides[0]!) ? 1 : 0) + (isOne(l.strides[1]!) ? 1 : 0);
  const inner = red.reduce((best, l) => (contiguity(l) > contiguity(best) ? l : best), red[red.length - 1]!);
  red = [...red.filter((l) => l !== inner), inner];

  // Lanes from the right operand's last column loop, or from the left's last row loop.
  const candidates: GemmPlan[] = [];
  const make = (shared: number, lanes: number, blocked: Loop[], other: Loop[], blockedRole: Role, otherRole: Role) => {
    const block = blocked[blocked.length - 1];
    if (!block) return;
    const outer = [
      ...batch.map((loop) => ({ loop, role: "batch" as Role })),
      ...other.slice(0, -1).map((loop) => ({ loop, role: otherRole })),
      ...blocked.slice(0, -1).map((loop) => ({ loop, role: blockedRole })),
    ];
    candidates.push({ shared, lanes, outer, pair: other[other.length - 1], block, red });
  };
  make(0, 1, cols, rows, "cols", "rows");
  make(1, 0, rows, cols, "rows", "cols");
  const score = (p: GemmPlan) => {
    const sharedContiguous = isOne(inner.strides[p.shared]!) ? 2 : 0;
    const lanesContiguous = isOne(inner.strides[p.lanes]!) ? 2 : isOne(p.block.strides[p.lanes]!) ? 1 : 0;
    const blockSize = p.block.size.constValue();
    const narrow = blockSize !== undefined && blockSize < LANES ? 1 : 0;
    return sharedContiguous + lanesContiguous - narrow;
  };
  return candidates.reduce((best, p) => (score(p) > score(best) ? p : best));
}

function emitGemm(ctx: JsEmitCtx, a: Analysis, plan: GemmPlan): string {
  const w = new Writer(ctx);
  const names = new Names();
  const tensors = [ctx.input(0), ctx.input(1), ctx.output(0)];
  const OUT = 2;
  const { shared: SH, lanes: LN } = plan;
  const prefix = ["a", "b", "o"];
  const roleVar: Record<Role, string> = { batch: "b", rows: "m", cols: "n", red: "k" };
  const offsets = ["0", "0", "0"];
  /** The loop variable of each blocked loop while it is open ("0" when one block covers the index, no loop). */
  const blockStart = new Map<Loop, string>();

  /** Declares the offset of tensor t after a step of loop variable v (or inlines it when used once). */
  const advance = (t: number, v: string, stride: Dim, inline = false) => {
    if (isZero(stride)) return;
    const expr = offsetExpr(offsets[t]!, v, w.value(stride, `stride_${tensors[t]}_${v}`));
    if (inline || /^\w+$/.test(expr)) {
      offsets[t] = expr;
      return;
    }
    offsets[t] = `${prefix[t]}_${v}`;
    w.line(`const ${offsets[t]} = ${expr};`);
  };

  // Name every loop and read its size first, so that strides equal to a size reuse its name.
  const outerVars = plan.outer.map(({ role }) => names.take(roleVar[role]));
  const pairVar = names.take(roleVar[LN === 1 ? "rows" : "cols"]);
  const blockVar = names.take(roleVar[LN === 1 ? "cols" : "rows"]);
  const redVars = plan.red.map(() => names.take("k"));
  const outerSizes = plan.outer.map(({ loop }, i) => w.value(loop.size, `size_${outerVars[i]}`));
  const pairSize = plan.pair && w.value(plan.pair.size, `size_${pairVar}`);
  const blockSize = w.value(plan.block.size, `size_${blockVar}`);
  const redSizes = plan.red.map((loop, i) => w.value(loop.size, `size_${redVars[i]}`));
  const rowStride = plan.pair ? w.value(plan.pair.strides[SH]!, `stride_${tensors[SH]}_${pairVar}`) : "0";
  const outRowStride = plan.pair ? w.value(plan.pair.strides[OUT]!, `stride_${tensors[OUT]}_${pairVar}`) : "0";
  const laneStride = w.value(plan.block.strides[LN]!, `stride_${tensors[LN]}_${blockVar}`);
  const outLaneStride = w.value(plan.block.strides[OUT]!, `stride_${tensors[OUT]}_${blockVar}`);

  plan.outer.forEach(({ loop }, i) => {
    const v = outerVars[i]!;
    w.open(`for (let ${v} = 0; ${v} < ${outerSizes[i]}; ${v}++) {`);
    for (const t of [0, 1, OUT]) advance(t, v, loop.strides[t]!);
  });

  /** One register block: `rows` rows of the shared operand times `lanes` lanes, summed over the reduction. */
  const micro = (rows: number, lanes: number) => {
    const saved = [...offsets];
    const acc = (r: number, c: number) => (rows === 1 ? `s${c}` : `s${r}${c}`);
    const all: string[] = [];
    for (let r = 0; r < rows; r++) for (let c = 0; c < lanes; c++) all.push(acc(r, c));
    w.line(`let ${all.map((s) => `${s} = 0`).join(", ")};`);
    plan.red.forEach((loop, level) => {
      const v = redVars[level]!;
      w.open(`for (let ${v} = 0; ${v} < ${redSizes[level]}; ${v}++) {`);
      const innermost = level === plan.red.length - 1;
      advance(SH, v, loop.strides[SH]!, innermost && rows === 1);
      advance(LN, v, loop.strides[LN]!, innermost && lanes === 1);
    });
    const sharedLoad = (r: number) => `${tensors[SH]}[${plus(offsets[SH]!, laneOffset(r, rowStride))}]`;
    const laneLoad = (c: number) => `${tensors[LN]}[${plus(offsets[LN]!, laneOffset(c, laneStride))}]`;
    if (rows === 1 && lanes === 1) {
      w.line(`s0 += ${sharedLoad(0)} * ${laneLoad(0)};`);
    } else if (rows === 1) {
      w.line(`const av = ${sharedLoad(0)};`);
      for (let c = 0; c < lanes; c++) w.line(`s${c} += av * ${laneLoad(c)};`);
    } else {
      w.line(`const ${Array.from({ length: rows }, (_, r) => `av${r} = ${sharedLoad(r)}`).join(", ")};`);
      w.line(`const ${Array.from({ length: lanes }, (_, c) => `bv${c} = ${laneLoad(c)}`).join(", ")};`);
      for (let r = 0; r < rows; r++) w.line(Array.from({ length: lanes }, (_, c) => `${acc(r, c)} += av${r} * bv${c};`).join(" "));
    }
    for (const _ of plan.red) w.close();
    offsets.splice(0, offsets.length, ...saved);
    for (let r = 0; r < rows; r++) {
      const at = (c: number) => plus(offsets[OUT]!, addOffsets(laneOffset(r, outRowStride), laneOffset(c, outLaneStride)));
      // Through the epilogue of a fused_epilogue node (epilogue.ts); the site knows the coordinates of unmerged loops.
      const coord = (dim: number, c: number): string | undefined => {
        const name = a.output[dim]!;
        if (!a.loops.has(name)) return "0";
        const outer = plan.outer.findIndex(({ loop }) => loop.names.length === 1 && loop.names[0] === name);
        if (outer >= 0) return outerVars[outer];
        for (const [loop, lane] of [[plan.pair, r], [plan.block, c]] as const) {
          if (loop && loop.names.length === 1 && loop.names[0] === name) return plus(blockStart.get(loop) ?? "0", String(lane));
        }
        return undefined;
      };
      const stores = Array.from({ length: lanes }, (_, c) => storeResult(ctx, { flat: at(c), coord: (dim) => coord(dim, c) }, acc(r, c)));
      if (stores.every((l) => l.length === 1)) w.line(stores.map((l) => l[0]).join(" "));
      else for (const l of stores.flat()) w.line(l);
    }
  };

  /** Loops over `loop` in steps of `step` (moving the offsets of tensors `which`), then one at a time. */
  const stepped = (loop: Loop, v: string, size: string, step: number, which: readonly number[], body: (count: number) => void) => {
    const n = loop.size.constValue();
    const enter = (count: number) => {
      const saved = [...offsets];
      for (const t of which) advance(t, v, loop.strides[t]!);
      blockStart.set(loop, v);
      body(count);
      blockStart.delete(loop);
      offsets.splice(0, offsets.length, ...saved);
      w.close();
    };
    if (n !== undefined && n <= step) return body(n); // one block covers the whole index
    if (n !== undefined && n % step === 0) {
      w.open(`for (let ${v} = 0; ${v} < ${n}; ${v} += ${step}) {`);
      return enter(step);
    }
    w.line(`let ${v} = 0;`);
    w.open(`for (; ${v} < ${n !== undefined ? n - (n % step) : `${size} - ${step - 1}`}; ${v} += ${step}) {`);
    enter(step);
    w.open(`for (; ${v} < ${size}; ${v}++) {`);
    enter(1);
  };

  const lanesLoop = (rows: number) => stepped(plan.block, blockVar, blockSize, LANES, [LN, OUT], (lanes) => micro(rows, lanes));
  if (plan.pair) stepped(plan.pair, pairVar, pairSize!, 2, [SH, OUT], lanesLoop);
  else lanesLoop(1);
  for (const _ of plan.outer) w.close();
  return w.text(gemmComment(ctx, a, plan));
}

/** `y0[i, k] = Σ_j x0[i, j] · x1[j, k]` with the original index names. */
function formula(ctx: JsEmitCtx, a: Analysis): string {
  const summed = [...new Set(a.operands.flat())].filter((n) => !a.output.includes(n));
  const sum = summed.length ? `Σ_${summed.map(showName).join(",")} ` : "";
  return `// ${showTerm(ctx.output(0), a.output)} = ${sum}${a.operands.map((o, k) => showTerm(ctx.input(k), o)).join(" · ")}`;
}

function gemmComment(ctx: JsEmitCtx, a: Analysis, plan: GemmPlan): string[] {
  const tensors = [ctx.input(0), ctx.input(1), ctx.output(0)];
  const show = (l: Loop) => (l.names.length === 1 ? showName(l.names[0]!) : `(${l.names.map(showName).join(" ")})`);
  const inner = plan.red[plan.red.length - 1]!;
  const contiguousIn = [0, 1].filter((t) => isOne(inner.strides[t]!)).map((t) => tensors[t]);
  return [
    formula(ctx, a),
    `// GEMM: blocks of ${plan.pair ? `2 ${show(plan.pair)} × ` : ""}${LANES} ${show(plan.block)} outputs, summing over ${plan.red.map(show).join(", ")} innermost` +
      (contiguousIn.length ? ` (contiguous in ${contiguousIn.join(" and ")})` : ""),
  ];
}

// ---------------------------------------------------------------------------
// General loop nest

function loopsComment(outLoops: readonly Loop[], sumLoops: readonly Loop[]): string {
  const show = (ls: readonly Loop[]) => ls.map((l) => l.names.map(showName).join(" ")).join(", ");
  return [outLoops.length ? `output ${show(outLoops)}` : "", sumLoops.length ? `summing ${show(sumLoops)} (accumulated in a double)` : ""].filter(Boolean).join(", then ");
}

function emitGeneral(ctx: JsEmitCtx, a: Analysis): string {
  const w = new Writer(ctx);
  const names = new Names();
  const K = a.operands.length;
  const tensors = [...a.operands.map((_, k) => ctx.input(k)), ctx.output(0)];
  const OUT = K;

  // Output loops in output order (writes walk the output); summed loops with the smallest stride innermost.
  const outLoops = mergeLoops(a.outNames.map((n) => a.loops.get(n)!));
  const weight = (l: Loop) => Math.max(...l.strides.slice(0, K).map(estimate));
  const sumLoops = mergeLoops([...a.sumNames.map((n) => a.loops.get(n)!)].sort((p, q) => weight(q) - weight(p)));
  const loops = [...outLoops, ...sumLoops];
  const nOut = outLoops.length;

  // Each operand is loaded in the deepest loop it depends on; partial products are hoisted there.
  const lastLevel = a.operands.map((_, k) => {
    let last = -1;
    loops.forEach((l, level) => isZero(l.strides[k]!) || (last = level));
    return last;
  });
  const load = (k: number, offsets: readonly string[]) => `${tensors[k]}[${offsets[k]}]`;
  const productAt = (level: number, partial: string | undefined, offsets: readonly string[]) => {
    const loads = a.operands.map((_, k) => k).filter((k) => lastLevel[k] === level).map((k) => load(k, offsets));
    return [...(partial ? [partial] : []), ...loads].join(" * ") || undefined;
  };

  const comment = [formula(ctx, a), `// loop nest: ${[...outLoops, ...sumLoops].length ? loopsComment(outLoops, sumLoops) : "scalars"}`];
  const offsets = tensors.map(() => "0");
  let partial = productAt(-1, undefined, offsets);
  if (partial && loops.length > 0 && !/^\w+\[0\]$/.test(partial)) {
    w.line(`const p0 = ${partial};`);
    partial = "p0";
  }
  const saved: string[][] = [];
  // Name every loop and read its size first, so that strides equal to a size reuse its name.
  const vars = loops.map((loop) => names.take(preferredVar(loop.names)));
  const sizes = loops.map((loop, level) => w.value(loop.size, `size_${vars[level]}`));
  loops.forEach((loop, level) => {
    if (level === nOut) w.line("let acc = 0;");
    const innermost = level === loops.length - 1;
    const v = vars[level]!;
    saved.push([...offsets]);
    w.open(`for (let ${v} = 0; ${v} < ${sizes[level]}; ${v}++) {`);
    loop.strides.forEach((s, t) => {
      if (isZero(s)) return;
      const expr = offsetExpr(offsets[t]!, v, w.value(s, `stride_${tensors[t]}_${v}`));
      // Offsets used once (the innermost loop's) are inlined.
      if (innermost || /^\w+$/.test(expr)) offsets[t] = expr;
      else {
        offsets[t] = `${tensors[t]}_${v}`;
        w.line(`const ${offsets[t]} = ${expr};`);
      }
    });
    if (!innermost) {
      const p = productAt(level, partial, offsets);
      if (p !== partial && p !== undefined) {
        w.line(`const p_${v} = ${p};`);
        partial = `p_${v}`;
      }
    }
  });
  const product = (loops.length ? productAt(loops.length - 1, partial, offsets) : partial) ?? "1";
  // Through the epilogue of a fused_epilogue node (epilogue.ts); the site knows the coordinates of unmerged output loops.
  const coord = (dim: number): string | undefined => {
    const name = a.output[dim]!;
    if (!a.loops.has(name)) return "0";
    const level = outLoops.findIndex((l) => l.names.length === 1 && l.names[0] === name);
    return level >= 0 ? vars[level] : undefined;
  };
  if (nOut === loops.length) {
    for (const l of storeResult(ctx, { flat: offsets[OUT]!, coord }, product)) w.line(l);
    for (let i = 0; i < loops.length; i++) w.close();
  } else {
    w.line(`acc += ${product};`);
    for (let level = loops.length - 1; level >= nOut; level--) w.close();
    const outOffsets = saved[nOut]!;
    for (const l of storeResult(ctx, { flat: outOffsets[OUT]!, coord }, "acc")) w.line(l);
    for (let level = nOut - 1; level >= 0; level--) w.close();
  }
  return w.text(comment);
}

// ---------------------------------------------------------------------------

export const einsumKernel: JsKernel = {
  op: "einsum",
  emit(ctx) {
    const a = analyse(ctx.node);
    const plan = planGemm(a);
    return plan ? emitGemm(ctx, a, plan) : emitGeneral(ctx, a);
  },
};

// ---------------------------------------------------------------------------
// diag_embed (backward of an einsum operand with a repeated index)

/**
 * y0[output names] = x0[input names] where the axes sharing a name agree, else
 * 0: zero the output, then walk x0 in order and store each element at its
 * diagonal position, whose stride per input name is the sum of the output
 * strides of the axes that name labels (each position is written once).
 */
function emitDiagEmbed(ctx: JsEmitCtx): string {
  const w = new KernelWriter(ctx);
  const { input, output } = ctx.node.attrs as unknown as { input: readonly string[]; output: readonly string[] };
  const inShape = ctx.node.inputs[0]!.type.shape;
  const outShape = ctx.node.outputs[0]!.type.shape;
  const outStrides = outShape.map((_, axis) => w.numel(outShape.slice(axis + 1), `outStride${axis}`));
  const strides = input.map((name, j) => w.hoist(output.reduce((acc, m, axis) => (m === name ? sumOf(acc, outStrides[axis]!) : acc), "0"), `stride${j}`));
  w.line(`// ${showTerm("y0", output)} = ${showTerm("x0", input)} on the diagonal, 0 elsewhere`);
  w.line(`y0.fill(0);`);
  w.line("let k = 0;");
  const level = (j: number, base: string): void => {
    if (j === input.length) {
      w.line(`y0[${base}] = x0[k++];`);
      return;
    }
    loop(w, `i${j}`, w.dim(inShape[j]!, `size${j}`), (i) => {
      const at = sumOf(base, times(i, strides[j]!));
      level(j + 1, j === input.length - 1 ? at : bind(w, `at${j}`, at));
    });
  };
  level(0, "0");
  return w.toString();
}

export const kernels: JsKernel[] = [einsumKernel, { op: "diag_embed", emit: emitDiagEmbed }];

// The einsum family: the IR op `einsum` (a sum of products over named
// indices) and the surface calls that lower to it: `einsum(spec, ...)`,
// `matmul(a, b)` / `a @ b`, `dense(x, units)`, and index notation through
// `einsumTerm`.
//
// The IR op is strict: an index name has exactly one size everywhere it
// appears. Broadcasting of batch ("...") dims is resolved while lowering: an
// operand whose batch dim is 1 where another operand's is n gets a private
// name for that dim, which then appears nowhere else and is summed away (a
// sum over one element, i.e. the value itself). So `…0` is a real batch index
// of size n for the operands that have it, and the size-1 operands simply do
// not depend on it, which is exactly what broadcasting means. No extra
// broadcast or reshape op is needed, and the op's shape rule stays simple.

import { CompileError, diag, type Span } from "../diagnostics.ts";
import { Dim, shapesEqual, shapeToString } from "../ir/dims.ts";
import type { Value } from "../ir/graph.ts";
import type { TensorType } from "../ir/types.ts";
import { indices, RefTensor } from "../reference/tensor.ts";
import { describeArg, type Args } from "./args.ts";
import { defineOp, type BuiltinDef, type GradCtx, type LowerCtx, type OpDef } from "./op.ts";

// ---------------------------------------------------------------------------
// IR op

type EinsumAttrs = {
  /** Index names of each operand, one per dim; a name repeated within one operand takes the diagonal. */
  operands: readonly (readonly string[])[];
  /** Index names of the result, unique; names absent here are summed. */
  output: readonly string[];
};

/** Where an index first appears: operand and axis (0-based) and its size. */
interface Binding {
  readonly operand: number;
  readonly axis: number;
  readonly size: Dim;
}

const einsumOp = defineOp<EinsumAttrs>({
  name: "einsum",
  infer(inputs, a, ctx) {
    if (a.operands.length !== inputs.length) {
      ctx.fail("E404", `einsum has index lists for ${a.operands.length} operands but ${inputs.length} inputs`);
    }
    const bound = new Map<string, Binding>();
    inputs.forEach((t, k) => {
      const names = a.operands[k]!;
      if (t.dtype !== "f32") ctx.fail("E213", `einsum operand ${k + 1} must be f32, found ${t.dtype}`, { notes: [ctx.describeInput(k)] });
      if (names.length !== t.shape.length) {
        ctx.fail("E210", `operand ${k + 1} has rank ${t.shape.length} but ${names.length} ind${names.length === 1 ? "ex" : "ices"} [${names.join(", ")}]`, {
          notes: [ctx.describeInput(k)],
        });
      }
      names.forEach((name, axis) => {
        const size = t.shape[axis]!;
        const prev = bound.get(name);
        if (!prev) {
          bound.set(name, { operand: k, axis, size });
          return;
        }
        if (prev.size.equals(size)) return;
        const where =
          prev.operand === k
            ? `index '${name}' is ${prev.size.toString()} at axis ${prev.axis} but ${size.toString()} at axis ${axis} of operand ${k + 1}`
            : `index '${name}' is ${prev.size.toString()} in operand ${prev.operand + 1} but ${size.toString()} in operand ${k + 1}`;
        const notes = prev.operand === k ? [ctx.describeInput(k)] : [ctx.describeInput(prev.operand), ctx.describeInput(k)];
        ctx.fail("E206", where, { notes, hint: "an index stands for one size everywhere it appears" });
      });
    });
    a.output.forEach((name, i) => {
      if (a.output.indexOf(name) !== i) ctx.fail("E404", `einsum output index '${name}' appears twice`);
      if (!bound.has(name)) ctx.fail("E404", `einsum output index '${name}' does not appear in any operand`);
    });
    return [{ dtype: "f32", shape: a.output.map((name) => bound.get(name)!.size) }];
  },
  evaluate(inputs, a, ctx) {
    const sizes = new Map<string, number>();
    inputs.forEach((t, k) =>
      a.operands[k]!.forEach((name, axis) => {
        const n = t.shape[axis]!;
        const prev = sizes.get(name);
        if (prev !== undefined && prev !== n) ctx.fail(`index '${name}' is ${prev} in one place but ${n} at axis ${axis} of operand ${k + 1}`);
        sizes.set(name, n);
      }),
    );
    // Loop over every combination of output indices followed by summed indices.
    // A name's stride in an operand is the sum of the strides of the axes it
    // labels, so a repeated name walks the diagonal.
    const summed = [...sizes.keys()].filter((name) => !a.output.includes(name));
    const loopNames = [...a.output, ...summed];
    const loopSizes = loopNames.map((name) => sizes.get(name)!);
    const out = RefTensor.zeros(a.output.map((name) => sizes.get(name)!));
    const stridesOf = (names: readonly string[], strides: readonly number[]) => {
      const s = new Array<number>(loopNames.length).fill(0);
      names.forEach((name, axis) => (s[loopNames.indexOf(name)]! += strides[axis]!));
      return s;
    };
    const inStrides = inputs.map((t, k) => stridesOf(a.operands[k]!, t.strides));
    const outStrides = stridesOf(a.output, out.strides);
    const offsets = new Array<number>(inputs.length).fill(0);
    let outOffset = 0;
    const idx = new Array<number>(loopNames.length).fill(0);
    const total = loopSizes.reduce((p, n) => p * n, 1);
    for (let step = 0; step < total; step++) {
      let product = 1;
      for (let k = 0; k < inputs.length; k++) product *= inputs[k]!.data[offsets[k]!]!;
      out.data[outOffset]! += product;
      // Advance the multi-index and every offset together (odometer).
      for (let d = loopNames.length - 1; d >= 0; d--) {
        idx[d]!++;
        for (let k = 0; k < inputs.length; k++) offsets[k]! += inStrides[k]![d]!;
        outOffset += outStrides[d]!;
        if (idx[d]! < loopSizes[d]!) break;
        for (let k = 0; k < inputs.length; k++) offsets[k]! -= inStrides[k]![d]! * loopSizes[d]!;
        outOffset -= outStrides[d]! * loopSizes[d]!;
        idx[d] = 0;
      }
    }
    return [out];
  },
  grad(inputs, _outputs, dys, a, ctx) {
    const dy = dys[0]!;
    return inputs.map((_, k) => einsumOperandGrad(inputs, k, dy, a, ctx));
  },
});

/**
 * d/d operand k of Σ Π operands: the einsum of dy (over the output indices)
 * and the other operands, producing operand k's indices. Two cases need more
 * than one einsum:
 *  * an index of operand k that appears nowhere else (summed within it, e.g. j
 *    in "ij->i" or i in "ii->"): the product does not depend on which element
 *    of that index was taken, so the gradient is broadcast along it;
 *  * an index repeated within operand k ("ii->i"): only its diagonal is read,
 *    so the gradient over the distinct indices is placed on the diagonal and
 *    zero elsewhere (diag_embed; an einsum cannot output a repeated index).
 * Broadcast "..." batch dims need nothing extra: lowering gave a size-1 batch
 * dim a private index, which the gradient sums over like any other.
 */
function einsumOperandGrad(inputs: readonly Value[], k: number, dy: Value, a: EinsumAttrs, ctx: GradCtx): Value {
  const x = inputs[k]!;
  const names = a.operands[k]!;
  const distinct = [...new Set(names)];
  const sizeOf = (name: string) => x.type.shape[names.indexOf(name)]!;
  const factors = [dy, ...inputs.filter((_, j) => j !== k)];
  const labels = [a.output, ...a.operands.filter((_, j) => j !== k)];
  const elsewhere = new Set(labels.flat());
  const kept = distinct.filter((n) => elsewhere.has(n));
  let g = contract(factors, labels, kept, ctx);
  if (kept.length < distinct.length) {
    const withOnes = distinct.map((n) => (elsewhere.has(n) ? sizeOf(n) : Dim.of(1)));
    if (!shapesEqual(g.type.shape, withOnes)) g = ctx.emit1("reshape", [g], { shape: withOnes });
    g = ctx.broadcastTo(g, distinct.map(sizeOf));
  }
  if (distinct.length < names.length) g = ctx.emit1("diag_embed", [g], { input: distinct, output: [...names] } satisfies DiagEmbedAttrs);
  return g;
}

/** Σ Π factors producing `output`; a lone factor that is only permuted becomes a transpose (or nothing). */
function contract(factors: readonly Value[], labels: readonly (readonly string[])[], output: readonly string[], ctx: GradCtx): Value {
  const only = labels[0]!;
  if (factors.length === 1 && only.length === output.length && new Set(only).size === only.length && output.every((n) => only.includes(n))) {
    const perm = output.map((n) => only.indexOf(n));
    return perm.every((p, i) => p === i) ? factors[0]! : ctx.emit1("transpose", [factors[0]!], { perm });
  }
  return ctx.emit1("einsum", factors, { operands: labels.map((l) => [...l]), output: [...output] } satisfies EinsumAttrs);
}

// ---------------------------------------------------------------------------
// diag_embed (backward of einsum operands with a repeated index)

type DiagEmbedAttrs = {
  /** Index names of the input, distinct. */
  input: readonly string[];
  /** Index names of the output: the input's, some repeated (each input name at least once). */
  output: readonly string[];
};

/**
 * y[output indices] = x[input indices] where all axes labelled by the same
 * name hold the same coordinate, else 0. For input [i] and output [i, i] this
 * is the diagonal matrix of x; [i, j] → [i, j, i] puts each row of x on the
 * diagonal of a plane.
 */
const diagEmbedOp = defineOp<DiagEmbedAttrs>({
  name: "diag_embed",
  infer(inputs, a, ctx) {
    const x = inputs[0]!;
    const ok =
      x.shape.length === a.input.length &&
      new Set(a.input).size === a.input.length &&
      a.output.every((n) => a.input.includes(n)) &&
      a.input.every((n) => a.output.includes(n));
    if (!ok) ctx.fail("E404", `diag_embed from [${a.input.join(", ")}] to [${a.output.join(", ")}] does not fit ${ctx.describeInput(0)}`);
    return [{ dtype: x.dtype, shape: a.output.map((n) => x.shape[a.input.indexOf(n)]!) }];
  },
  evaluate(inputs, a, ctx) {
    const x = inputs[0]!;
    const out = RefTensor.zeros(ctx.outShapes[0]!, x.dtype);
    // The output offset of an input element: each name's coordinate times the
    // sum of the strides of the output axes it labels.
    const strides = a.input.map((n) => a.output.reduce((s, m, axis) => (m === n ? s + out.strides[axis]! : s), 0));
    let k = 0;
    for (const idx of indices(x.shape)) out.data[idx.reduce((o, c, j) => o + c * strides[j]!, 0)] = x.data[k++]!;
    return [out];
  },
});

export const ops: OpDef[] = [einsumOp, diagEmbedOp];

// ---------------------------------------------------------------------------
// Batch ("...") dims: NumPy broadcasting, aligned from the right

/** The name of broadcast batch position p (0 = leftmost of the broadcast batch shape). */
function batchName(p: number): string {
  return `…${p}`;
}

interface BatchPlan {
  /** Per operand, the names of its batch dims. */
  readonly names: string[][];
  /** Names of the broadcast batch dims, for the output. */
  readonly outNames: string[];
}

interface BatchConflict {
  /** Operand indices and their full batch shapes. */
  readonly first: number;
  readonly second: number;
  readonly a: Dim;
  readonly b: Dim;
}

/**
 * Name the batch dims of several operands so that one einsum broadcasts them:
 * equal dims share a name; a 1 facing a larger dim gets a private name (summed
 * over its single element); two different dims that are not 1 conflict. Two
 * different symbolic dims conflict too: the compiler cannot know they agree.
 */
function planBatch(batches: readonly (readonly Dim[])[]): BatchPlan | BatchConflict {
  const rank = Math.max(0, ...batches.map((b) => b.length));
  const names = batches.map(() => [] as string[]);
  for (let p = 0; p < rank; p++) {
    let target: { operand: number; size: Dim } | undefined;
    for (let k = 0; k < batches.length; k++) {
      const d = batches[k]![p - (rank - batches[k]!.length)];
      if (d === undefined || d.equals(1)) continue;
      if (!target) target = { operand: k, size: d };
      else if (!target.size.equals(d)) return { first: target.operand, second: k, a: target.size, b: d };
    }
    batches.forEach((b, k) => {
      const d = b[p - (rank - b.length)];
      if (d === undefined) return;
      names[k]!.push(target && d.equals(1) ? `${batchName(p)}~${k}` : batchName(p));
    });
  }
  return { names, outNames: Array.from({ length: rank }, (_, p) => batchName(p)) };
}

function isConflict(r: BatchPlan | BatchConflict): r is BatchConflict {
  return "first" in r;
}

// ---------------------------------------------------------------------------
// einsum(spec, a0, a1, ...)

/** NumPy's operand limit (NPY_MAXARGS in NumPy 1.x). */
const MAX_OPERANDS = 32;
const OPERAND_ARGS = Array.from({ length: MAX_OPERANDS }, (_, i) => `a${i}`);
const ELLIPSIS = "...";

export interface ParsedSpec {
  /** Per input term: single-letter indices, with "..." marking the ellipsis. */
  readonly inputs: string[][];
  /** The output term, or undefined when `->` is omitted (implicit output). */
  readonly output?: string[];
}

export class SpecError extends Error {
  constructor(message: string, readonly hint?: string) {
    super(message);
  }
}

/** Parse a NumPy einsum spec; positions in messages are 1-based characters. */
export function parseSpec(spec: string): ParsedSpec {
  const inputs: string[][] = [[]];
  let output: string[] | undefined;
  let cur = inputs[0]!;
  let i = 0;
  while (i < spec.length) {
    const c = spec[i]!;
    const at = `character ${i + 1}`;
    if (/\s/.test(c)) {
      i++;
    } else if (/[A-Za-z]/.test(c)) {
      cur.push(c);
      i++;
    } else if (c === ".") {
      if (spec.slice(i, i + 3) !== ELLIPSIS) throw new SpecError(`'.' at ${at} is not part of '...'`, "write the ellipsis as exactly three dots");
      if (cur.includes(ELLIPSIS)) throw new SpecError(`a term has a second '...' at ${at}`, "each term may contain one ellipsis");
      cur.push(ELLIPSIS);
      i += 3;
    } else if (c === ",") {
      if (output) throw new SpecError(`',' at ${at} is in the output, which is a single term`);
      cur = [];
      inputs.push(cur);
      i++;
    } else if (c === "-") {
      if (spec[i + 1] !== ">") throw new SpecError(`'-' at ${at} must be followed by '>'`);
      if (output) throw new SpecError(`a second '->' at ${at}`, "a spec has one '->' at most");
      output = [];
      cur = output;
      i += 2;
    } else if (c === ">") {
      throw new SpecError(`'>' at ${at} must follow '-'`);
    } else {
      throw new SpecError(`'${c}' at ${at} is not an index letter`, "indices are single letters a-z or A-Z, and '...' broadcasts");
    }
  }
  if (output) {
    const seen = new Set(inputs.flat());
    output.forEach((l, k) => {
      if (output!.indexOf(l) !== k) throw new SpecError(`output index '${l}' appears twice`, "each output index appears once; repeat it in an input to take a diagonal");
      if (l !== ELLIPSIS && !seen.has(l)) throw new SpecError(`output index '${l}' does not appear in any input term`);
    });
  }
  return { inputs, output };
}

/** NumPy's implicit output: indices that appear exactly once, in character-code order, after the ellipsis. */
function implicitOutput(inputs: readonly string[][]): string[] {
  const count = new Map<string, number>();
  for (const l of inputs.flat()) if (l !== ELLIPSIS) count.set(l, (count.get(l) ?? 0) + 1);
  const once = [...count.keys()].filter((l) => count.get(l) === 1).sort((x, y) => (x < y ? -1 : x > y ? 1 : 0));
  return inputs.some((t) => t.includes(ELLIPSIS)) ? [ELLIPSIS, ...once] : once;
}

function plural(n: number, word: string, many = `${word}s`): string {
  return `${n} ${n === 1 ? word : many}`;
}

function specArg(args: Args, ctx: LowerCtx): string {
  const v = args.raw("spec");
  if (!v) return ctx.fail("E401", `missing argument 'spec'`, { hint: `pass a spec such as "ij,jk->ik"` });
  if (v.kind !== "string") return ctx.fail("E403", `argument 'spec' must be a string such as "ij,jk->ik", found ${describeArg(v)}`, { arg: "spec" });
  return v.value;
}

/** The operand tensors a0..aK, checked against the number of terms in the spec. */
function operandArgs(args: Args, ctx: LowerCtx, spec: string, terms: number): Value[] {
  const given = OPERAND_ARGS.filter((n) => args.has(n));
  const count = given.length ? OPERAND_ARGS.indexOf(given[given.length - 1]!) + 1 : 0;
  if (count < terms) {
    const missing = OPERAND_ARGS.slice(0, count).find((n) => !args.has(n));
    if (missing) return ctx.fail("E401", `missing argument '${missing}'`);
    return ctx.fail("E401", `spec "${spec}" has ${plural(terms, "operand term")}, found ${plural(count, "tensor")}`, {
      arg: "spec",
      hint: "pass one tensor per comma-separated term",
    });
  }
  if (count > terms) {
    return ctx.fail("E405", `spec "${spec}" has ${plural(terms, "operand term")}, found ${plural(count, "tensor")}`, {
      arg: OPERAND_ARGS[terms],
      hint: "pass one tensor per comma-separated term",
    });
  }
  return OPERAND_ARGS.slice(0, count).map((n) => args.tensor(n));
}

function lowerEinsum(args: Args, ctx: LowerCtx): Value {
  const spec = specArg(args, ctx);
  let parsed: ParsedSpec;
  try {
    parsed = parseSpec(spec);
  } catch (e) {
    if (e instanceof SpecError) return args.fail("spec", `bad spec "${spec}": ${e.message}`, e.hint);
    throw e;
  }
  const tensors = operandArgs(args, ctx, spec, parsed.inputs.length);

  // Check every operand against its term and split off its ellipsis dims.
  const batches: Dim[][] = [];
  tensors.forEach((t, k) => {
    const term = parsed.inputs[k]!;
    const arg = OPERAND_ARGS[k]!;
    if (t.type.dtype !== "f32") ctx.fail("E213", `operand ${k + 1} must be f32, found ${t.type.dtype}`, { arg, notes: [ctx.describe(t)] });
    const letters = term.filter((l) => l !== ELLIPSIS).length;
    const rank = t.type.shape.length;
    const e = term.indexOf(ELLIPSIS);
    if (e < 0 && rank !== letters) {
      ctx.fail("E210", `operand ${k + 1} has rank ${rank} but its term "${term.join("")}" has ${plural(letters, "index", "indices")}`, {
        arg,
        notes: [ctx.describe(t)],
      });
    }
    if (e >= 0 && rank < letters) {
      ctx.fail("E210", `operand ${k + 1} has rank ${rank} but its term "${term.join("")}" needs at least ${letters} dims`, { arg, notes: [ctx.describe(t)] });
    }
    batches.push(e < 0 ? [] : t.type.shape.slice(e, e + rank - letters));
  });

  const plan = planBatch(batches);
  if (isConflict(plan)) {
    const [x, y] = [tensors[plan.first]!, tensors[plan.second]!];
    ctx.fail(
      "E203",
      `the '...' dims cannot be broadcast: operand ${plan.first + 1} has ${shapeToString(batches[plan.first]!)} and operand ${plan.second + 1} has ${shapeToString(batches[plan.second]!)} (${plan.a.toString()} vs ${plan.b.toString()})`,
      { arg: OPERAND_ARGS[plan.second], notes: [ctx.describe(x), ctx.describe(y)], hint: "batch dims broadcast when they are equal or one of them is 1" },
    );
  }

  let output = parsed.output ?? implicitOutput(parsed.inputs);
  if (!output.includes(ELLIPSIS) && plan.outNames.length > 0) {
    args.fail(
      "spec",
      `bad spec "${spec}": the operands have ${plural(plan.outNames.length, "'...' dim")} but the output has no '...'`,
      "add '...' to the output, or sum those dims first",
    );
  }
  const expand = (term: readonly string[], batch: readonly string[]) => term.flatMap((l) => (l === ELLIPSIS ? batch : [l]));
  const operands = parsed.inputs.map((term, k) => expand(term, plan.names[k]!));
  output = expand(output, plan.outNames);
  return ctx.emit1("einsum", tensors, { operands, output });
}

// ---------------------------------------------------------------------------
// matmul(a, b) and `a @ b`

function lowerMatmul(args: Args, ctx: LowerCtx): Value {
  const a = args.tensor("a");
  const b = args.tensor("b");
  for (const [name, v] of [["a", a], ["b", b]] as const) {
    if (v.type.dtype !== "f32") ctx.fail("E213", `matmul needs f32 operands, ${name} is ${v.type.dtype}`, { arg: name, notes: [ctx.describe(v)] });
    if (v.type.shape.length === 0) {
      ctx.fail("E210", `matmul needs operands of rank 1 or more, ${name} is a scalar`, { arg: name, notes: [ctx.describe(v)], hint: "multiply by a scalar with '*'" });
    }
  }
  const sa = a.type.shape;
  const sb = b.type.shape;
  // A 1-D a is a row vector [1, k] and a 1-D b a column vector [k, 1]; the promoted dims are dropped again.
  const aRows = sa.length >= 2;
  const bCols = sb.length >= 2;
  const ka = sa[sa.length - 1]!;
  const kb = bCols ? sb[sb.length - 2]! : sb[0]!;
  if (!ka.equals(kb)) {
    const what = `a has ${ka.toString()} ${aRows ? "columns" : "elements"}, b has ${kb.toString()} ${bCols ? "rows" : "elements"}`;
    ctx.fail("E204", `contraction sizes do not match: ${what}`, {
      arg: "b",
      notes: [ctx.describe(a), ctx.describe(b)],
      hint: aRows || bCols ? "the last dim of a must equal the second-to-last dim of b (transpose one of them?)" : "both vectors need the same length",
    });
  }
  const batchA = aRows ? sa.slice(0, -2) : [];
  const batchB = bCols ? sb.slice(0, -2) : [];
  const plan = planBatch([batchA, batchB]);
  if (isConflict(plan)) {
    ctx.fail("E203", `batch dims cannot be broadcast: a has ${shapeToString(batchA)} and b has ${shapeToString(batchB)} (${plan.a.toString()} vs ${plan.b.toString()})`, {
      arg: "b",
      notes: [ctx.describe(a), ctx.describe(b)],
      hint: "batch dims broadcast when they are equal or one of them is 1",
    });
  }
  const opA = [...plan.names[0]!, ...(aRows ? ["m"] : []), "k"];
  const opB = [...plan.names[1]!, "k", ...(bCols ? ["n"] : [])];
  const output = [...plan.outNames, ...(aRows ? ["m"] : []), ...(bCols ? ["n"] : [])];
  return ctx.emit1("einsum", [a, b], { operands: [opA, opB], output });
}

// ---------------------------------------------------------------------------
// dense(x, units, bias=true): PyTorch Linear over the last axis

function lowerDense(args: Args, ctx: LowerCtx): Value {
  const x = args.tensor("x");
  if (x.type.dtype !== "f32") ctx.fail("E213", `dense needs an f32 input, found ${x.type.dtype}`, { arg: "x", notes: [ctx.describe(x)] });
  const rank = x.type.shape.length;
  if (rank === 0) ctx.fail("E210", "dense needs an input of rank 1 or more, found a scalar", { arg: "x", notes: [ctx.describe(x)] });
  const last = x.type.shape[rank - 1]!;
  const fanIn = last.constValue();
  if (fanIn === undefined) {
    ctx.fail("E212", `dense needs a static last dim to size its weight, found ${last.toString()}`, {
      arg: "x",
      notes: [ctx.describe(x)],
      hint: "reshape so that the features are on the last axis with a fixed size",
    });
  }
  if (fanIn < 1) ctx.fail("E212", `dense needs a last dim of at least 1, found ${fanIn}`, { arg: "x", notes: [ctx.describe(x)] });
  const units = denseUnits(args);
  const bound = 1 / Math.sqrt(fanIn);
  const init = { kind: "uniform", lo: -bound, hi: bound } as const;
  const w = ctx.param("weight", { dtype: "f32", shape: [Dim.of(units), Dim.of(fanIn)] }, init);

  const batch = Array.from({ length: rank - 1 }, (_, p) => batchName(p));
  let y = ctx.emit1("einsum", [x, w], { operands: [[...batch, "i"], ["o", "i"]], output: [...batch, "o"] });

  const biasArg = args.raw("bias");
  if (biasArg && biasArg.kind !== "bool" && biasArg.kind !== "tensor") {
    ctx.fail("E403", `argument 'bias' must be true, false or a tensor, found ${describeArg(biasArg)}`, { arg: "bias" });
  }
  if (biasArg?.kind === "bool" && !biasArg.value) return y;
  const biasType: TensorType = { dtype: "f32", shape: [Dim.of(units)] };
  const b = ctx.param("bias", biasType, init);
  y = ctx.emit1("add", [y, b]);
  return y;
}

/** `units`, or the rows of a tied `weight=` when units is omitted. */
function denseUnits(args: Args): number {
  const w = args.raw("weight");
  if (!args.has("units") && w?.kind === "tensor" && w.value.type.shape.length === 2) {
    const rows = w.value.type.shape[0]!.constValue();
    if (rows !== undefined && rows >= 1) return rows;
  }
  return args.positiveInt("units");
}

export const builtins: BuiltinDef[] = [
  { names: ["einsum"], signature: () => ["spec", ...OPERAND_ARGS], lower: lowerEinsum },
  { names: ["matmul"], signature: () => ["a", "b"], lower: lowerMatmul },
  { names: ["dense"], signature: () => ["x", "units", "bias", "weight"], ownsParams: true, lower: lowerDense },
];

// ---------------------------------------------------------------------------
// Index notation

export interface EinsumFactor {
  readonly value: Value;
  readonly indices: readonly string[];
  readonly span?: Span;
}

/**
 * One product term of index notation, `x[i, j] * w[j, k]`, as a single einsum
 * producing `outIndices` (in that order) and summing the factors' other
 * indices. Errors point at the offending factor when it has a span.
 */
export function einsumTerm(ctx: LowerCtx, factors: readonly EinsumFactor[], outIndices: readonly string[]): Value {
  const fail = (f: EinsumFactor, code: "E206" | "E210" | "E213", message: string, notes: string[]): never => {
    if (f.span) throw new CompileError([diag(code, message, f.span, { notes })]);
    return ctx.fail(code, message, { notes });
  };
  if (factors.length === 0) throw new Error("internal: einsumTerm needs at least one factor");
  const sizes = new Map<string, { size: Dim; factor: EinsumFactor }>();
  for (const f of factors) {
    const label = factorLabel(ctx, f);
    if (f.value.type.dtype !== "f32") fail(f, "E213", `${label} must be f32, found ${f.value.type.dtype}`, [ctx.describe(f.value)]);
    if (f.indices.length !== f.value.type.shape.length) {
      fail(f, "E210", `${label} has rank ${f.value.type.shape.length} but ${plural(f.indices.length, "index", "indices")}`, [ctx.describe(f.value)]);
    }
    f.indices.forEach((ix, axis) => {
      const size = f.value.type.shape[axis]!;
      const prev = sizes.get(ix);
      if (!prev) sizes.set(ix, { size, factor: f });
      else if (!prev.size.equals(size)) {
        const first = prev.factor === f ? "" : ` in ${factorLabel(ctx, prev.factor)}`;
        fail(f, "E206", `index '${ix}' is ${prev.size.toString()}${first} but ${size.toString()} in ${label}`, [...new Set([ctx.describe(prev.factor.value), ctx.describe(f.value)])]);
      }
    });
  }
  outIndices.forEach((ix, k) => {
    if (outIndices.indexOf(ix) !== k) ctx.fail("E206", `index '${ix}' appears twice in the result`);
    if (!sizes.has(ix)) ctx.fail("E206", `index '${ix}' of the result does not appear in this term, so its size is unknown`);
  });
  const only = factors[0]!;
  const isIdentity =
    factors.length === 1 && only.indices.length === outIndices.length && only.indices.every((ix, k) => ix === outIndices[k]);
  if (isIdentity) return only.value;
  return ctx.emit1("einsum", factors.map((f) => f.value), { operands: factors.map((f) => [...f.indices]), output: [...outIndices] });
}

/** "x[i, j]" when the factor's value has a user name, else "factor [i, j]". */
function factorLabel(ctx: LowerCtx, f: EinsumFactor): string {
  const described = ctx.describe(f.value);
  const name = described.slice(0, described.indexOf(" is "));
  const known = /^[A-Za-z_][A-Za-z0-9_.]*$/.test(name);
  return `${known ? name : "factor "}[${f.indices.join(", ")}]`;
}

// JS kernels for the shape family (compiler/ops/shape.ts): transpose, concat,
// slice, pad, upsample and broadcast_to. `reshape` has no kernel: the program
// emitter makes its output a view of the input buffer.
//
// Every kernel writes its output in order (contiguous stores) and copies
// contiguous runs of the input where the layout allows: transpose merges
// input axes that stay neighbours, concat and slice copy whole rows, pad
// fills the borders and copies rows, nearest upsampling writes each input
// row once and duplicates it, linear upsampling reads precomputed per-axis
// tap tables (offsets and weights, PyTorch's align_corners=false).
//
// Backward ops (compiler/ops/shape.ts): slice_grad zeroes dx and copies dy's
// rows back; upsample_grad gathers, for each input element, the outputs whose
// interpolation taps touch it (no scatter, one double accumulator each).

import { Dim } from "../../ir/dims.ts";
import { bind, emitMap, jsNumber, KernelWriter, loop, plus, times } from "./elementwise.ts";
import type { JsEmitCtx, JsKernel } from "./kernel.ts";

function shapes(ctx: JsEmitCtx): { input: readonly Dim[]; output: readonly Dim[] } {
  return { input: ctx.node.inputs[0]!.type.shape, output: ctx.node.outputs[0]!.type.shape };
}

function normAxis(axis: number, rank: number): number {
  return axis < 0 ? axis + rank : axis;
}

// ---------------------------------------------------------------------------
// transpose

function emitTranspose(ctx: JsEmitCtx): string {
  const w = new KernelWriter(ctx);
  const { input } = shapes(ctx);
  const perm = ctx.node.attrs.perm as number[];
  // Size-1 axes do not move any data; the rest are renumbered 0..m-1 in input order.
  const kept = input.map((_, i) => i).filter((i) => !input[i]!.equals(1));
  const rankOf = new Map(kept.map((axis, r) => [axis, r]));
  const order = perm.filter((p) => rankOf.has(p)).map((p) => rankOf.get(p)!);
  // Output axes that are also neighbours, in the same order, in the input move together.
  const groups: number[][] = [];
  for (const r of order) {
    const last = groups[groups.length - 1];
    if (last && last[last.length - 1] === r - 1) last.push(r);
    else groups.push([r]);
  }
  if (groups.length <= 1) {
    // Only size-1 axes move: the data keeps its flat order.
    emitMap(w, input, "y0", [{ shape: input, buffer: "x0", name: "v" }], ([v]) => ({ value: v! }));
    return w.toString();
  }
  const keptDims = kept.map((i) => input[i]!);
  const sizes = groups.map((g, j) => w.numel(g.map((r) => keptDims[r]!), `d${j}`));
  // Input stride of a group: the element count of the kept input axes after its last one.
  const strides = groups.map((g, j) => w.numel(keptDims.slice(g[g.length - 1]! + 1), `stride${j}`));
  w.line(`// output order of the input axes: [${perm.join(", ")}]; the output is written in order`);
  w.line("let o = 0;");
  const level = (j: number, base: string): void => {
    const i = `i${j}`;
    if (j === groups.length - 1) {
      w.line(`for (let ${i} = 0; ${i} < ${sizes[j]}; ${i}++) y0[o++] = x0[${plus(base, times(i, strides[j]!))}];`);
      return;
    }
    w.open(`for (let ${i} = 0; ${i} < ${sizes[j]}; ${i}++)`);
    level(j + 1, bind(w, `ix${j}`, plus(base, times(i, strides[j]!))));
    w.close();
  };
  level(0, "0");
  return w.toString();
}

// ---------------------------------------------------------------------------
// concat

function emitConcat(ctx: JsEmitCtx): string {
  const w = new KernelWriter(ctx);
  const out = ctx.node.outputs[0]!.type.shape;
  const axis = normAxis(ctx.node.attrs.axis as number, out.length);
  const outer = w.numel(out.slice(0, axis), "outer");
  const inner = w.numel(out.slice(axis + 1), "inner");
  // Per outer index, each operand fills a contiguous run of the output row.
  const rows = ctx.node.inputs.map((v, k) => w.product([w.dim(v.type.shape[axis]!), inner], `row${k}`));
  // Where operand k starts within an output row.
  const columns: string[] = ["0"];
  for (let k = 1; k < rows.length; k++) columns.push(w.hoist(plus(columns[k - 1]!, rows[k - 1]!), `col${k}`));
  if (outer === "1") {
    ctx.node.inputs.forEach((_, k) => w.line(`y0.set(${ctx.input(k)}, ${columns[k]});`));
    return w.toString();
  }
  const rowOut = w.product([w.dim(out[axis]!), inner], "rowOut");
  w.open(`for (let o = 0; o < ${outer}; o++)`);
  w.line(`const yo = o * ${rowOut};`);
  ctx.node.inputs.forEach((_, k) => {
    w.line(`// ${ctx.input(k)} fills [${columns[k]}, ${plus(columns[k]!, rows[k]!)}) of the output row`);
    const xo = bind(w, `xo${k}`, times("o", rows[k]!));
    const yo = bind(w, `yo${k}`, plus("yo", columns[k]!));
    w.line(`for (let j = 0; j < ${rows[k]}; j++) y0[${plus(yo, "j")}] = ${ctx.input(k)}[${plus(xo, "j")}];`);
  });
  w.close();
  return w.toString();
}

// ---------------------------------------------------------------------------
// slice

type Bound = number | Dim | null;

function boundText(v: Bound): string {
  return v === null ? "" : v.toString();
}

type SliceAttrs = { axis: number; start: number | Dim; end: Bound; step: number };

/**
 * The first position of a slice of `sizeDim` elements giving `count` (a JS
 * operand for `countDim`) elements, as a JS operand: folded when everything is
 * static, else resolved at run time with Python's rules, the element count
 * checked against the compiled shape.
 */
function sliceStart(w: KernelWriter, ctx: JsEmitCtx, a: SliceAttrs, axis: number, sizeDim: Dim, countDim: Dim, count: string): string {
  const step = a.step;
  const staticSize = sizeDim.constValue();
  const constOf = (v: number | Dim) => (v instanceof Dim ? v.constValue() : v);
  const startC = constOf(a.start);
  const endC = a.end === null ? staticSize : constOf(a.end);
  let start: string;
  if (staticSize !== undefined && startC !== undefined && endC !== undefined && countDim.constValue() !== undefined) {
    // Everything static: Python's negative indices and clamping resolved here.
    const resolve = (n: number) => Math.min(Math.max(n < 0 ? n + staticSize : n, 0), staticSize);
    start = String(resolve(startC));
  } else {
    const size = w.dim(sizeDim, "size");
    // Python's rules at run time: negative counts from the end, then clamp to [0, size].
    const position = (v: number | Dim, name: string): string => {
      if (v instanceof Dim) return v.equals(sizeDim) ? size : w.declare(name, `Math.min(Math.max(${w.hoist(ctx.dim(v), `${name}At`)}, 0), ${size})`);
      return v < 0 ? w.declare(name, `Math.max(${size} - ${-v}, 0)`) : w.declare(name, `Math.min(${v}, ${size})`);
    };
    start = position(a.start, "start");
    const end = a.end === null ? size : position(a.end, "end");
    const got = w.declare("got", `Math.max(0, Math.ceil((${end} - ${start}) / ${step}))`);
    const what = `slice ${boundText(a.start)}:${boundText(a.end)}${step === 1 ? "" : `:${step}`} of axis ${axis} with size `;
    w.headLine(`if (${got} !== ${count}) T.fail(${JSON.stringify(what)} + ${size} + " gives " + ${got} + " elements, but the compiled shape needs " + ${count});`);
  }
  return start;
}

function emitSlice(ctx: JsEmitCtx): string {
  const w = new KernelWriter(ctx);
  const { input, output } = shapes(ctx);
  const a = ctx.node.attrs as SliceAttrs;
  const axis = normAxis(a.axis, input.length);
  const step = a.step;
  const sizeDim = input[axis]!;
  const countDim = output[axis]!;
  const count = w.dim(countDim, "count");
  const start = sliceStart(w, ctx, a, axis, sizeDim, countDim, count);
  const outer = w.numel(input.slice(0, axis), "outer");
  const inner = w.numel(input.slice(axis + 1), "inner");
  const first = w.product([start, inner], "first");
  const outPlane = w.product([count, inner], "outPlane");
  loop(w, "o", outer, (o) => {
    const xo = bind(w, "xo", plus(o === "0" ? "0" : times(o, w.product([w.dim(sizeDim, "size"), inner], "plane")), first));
    const yo = bind(w, "yo", times(o, outPlane));
    if (step === 1) {
      w.line(`for (let j = 0; j < ${outPlane}; j++) y0[${plus(yo, "j")}] = x0[${plus(xo, "j")}];`);
    } else if (inner === "1") {
      w.line(`for (let j = 0; j < ${count}; j++) y0[${plus(yo, "j")}] = x0[${plus(xo, times("j", String(step)))}];`);
    } else {
      const jump = w.product([String(step), inner], "jump");
      w.open(`for (let j = 0; j < ${count}; j++)`);
      const xj = bind(w, "xj", plus(xo, times("j", jump)));
      const yj = bind(w, "yj", plus(yo, times("j", inner)));
      w.line(`for (let i = 0; i < ${inner}; i++) y0[${plus(yj, "i")}] = x0[${plus(xj, "i")}];`);
      w.close();
    }
  });
  return w.toString();
}

// ---------------------------------------------------------------------------
// slice_grad (backward of slice)

/**
 * dx of slice: zero the output, then copy each row of dy back to positions
 * start, start + step, ... of the sliced axis (the forward's loops with the
 * roles of the buffers swapped; every position is written at most once).
 */
function emitSliceGrad(ctx: JsEmitCtx): string {
  const w = new KernelWriter(ctx);
  const { input, output } = shapes(ctx);
  const a = ctx.node.attrs as SliceAttrs;
  const axis = normAxis(a.axis, input.length);
  const step = a.step;
  const sizeDim = output[axis]!;
  const countDim = input[axis]!;
  const count = w.dim(countDim, "count");
  const start = sliceStart(w, ctx, a, axis, sizeDim, countDim, count);
  const outer = w.numel(input.slice(0, axis), "outer");
  const inner = w.numel(input.slice(axis + 1), "inner");
  const first = w.product([start, inner], "first");
  const inPlane = w.product([count, inner], "inPlane");
  w.line(`// dy back at ${boundText(a.start)}:${boundText(a.end)}${step === 1 ? "" : `:${step}`} of axis ${axis}, zeros elsewhere`);
  w.line("y0.fill(0);");
  loop(w, "o", outer, (o) => {
    const yo = bind(w, "yo", plus(o === "0" ? "0" : times(o, w.product([w.dim(sizeDim, "size"), inner], "plane")), first));
    const xo = bind(w, "xo", times(o, inPlane));
    if (step === 1) {
      w.line(`for (let j = 0; j < ${inPlane}; j++) y0[${plus(yo, "j")}] = x0[${plus(xo, "j")}];`);
    } else if (inner === "1") {
      w.line(`for (let j = 0; j < ${count}; j++) y0[${plus(yo, times("j", String(step)))}] = x0[${plus(xo, "j")}];`);
    } else {
      const jump = w.product([String(step), inner], "jump");
      w.open(`for (let j = 0; j < ${count}; j++)`);
      const yj = bind(w, "yj", plus(yo, times("j", jump)));
      const xj = bind(w, "xj", plus(xo, times("j", inner)));
      w.line(`for (let i = 0; i < ${inner}; i++) y0[${plus(yj, "i")}] = x0[${plus(xj, "i")}];`);
      w.close();
    }
  });
  return w.toString();
}

// ---------------------------------------------------------------------------
// pad

function emitPad(ctx: JsEmitCtx): string {
  const w = new KernelWriter(ctx);
  const { input, output } = shapes(ctx);
  const a = ctx.node.attrs as { padBegin: number[]; padEnd: number[]; value: number };
  const value = jsNumber(a.value);
  // Dims after the last padded one are copied as whole blocks.
  let p = input.length - 1;
  while (p >= 0 && a.padBegin[p] === 0 && a.padEnd[p] === 0) p--;
  if (p < 0) {
    emitMap(w, output, "y0", [{ shape: input, buffer: "x0", name: "v" }], ([v]) => ({ value: v! }));
    return w.toString();
  }
  const inner = w.numel(input.slice(p + 1), "inner");
  const inSizes = input.slice(0, p + 1).map((d, i) => w.dim(d, `in${i}`));
  const outSizes = output.slice(0, p + 1).map((d, i) => w.dim(d, `out${i}`));
  const inStrides = inSizes.map((_, d) => w.product([...inSizes.slice(d + 1), inner], `inStride${d}`));
  const outStrides = outSizes.map((_, d) => w.product([...outSizes.slice(d + 1), inner], `outStride${d}`));
  const fill = (from: string, to: string) => w.line(`for (let k = ${from}; k < ${to}; k++) y0[k] = ${value};`);
  w.line(`// every output element is written once: the borders with ${value}, the interior from x0`);
  const level = (d: number, yo: string, xo: string): void => {
    const before = w.product([String(a.padBegin[d]), outStrides[d]!], `before${d}`);
    if (a.padBegin[d]! > 0) fill(yo, plus(yo, before));
    if (d === p) {
      const to = bind(w, "to", plus(yo, before));
      const row = w.product([inSizes[d]!, outStrides[d]!], "row");
      w.line(`for (let j = 0; j < ${row}; j++) y0[${plus(to, "j")}] = x0[${plus(xo, "j")}];`);
    } else {
      const i = `i${d}`;
      loop(w, i, inSizes[d]!, (idx) => {
        const yi = bind(w, `yo${d}`, plus(plus(yo, before), times(idx, outStrides[d]!)));
        const xi = bind(w, `xo${d}`, plus(xo, times(idx, inStrides[d]!)));
        level(d + 1, yi, xi);
      });
    }
    if (a.padEnd[d]! > 0) {
      const interior = w.product([inSizes[d]!, outStrides[d]!], `interior${d}`);
      const afterStart = w.hoist(plus(before, interior), `afterStart${d}`);
      const slab = w.product([outSizes[d]!, outStrides[d]!], `slab${d}`);
      fill(plus(yo, afterStart), plus(yo, slab));
    }
  };
  level(0, "0", "0");
  return w.toString();
}

// ---------------------------------------------------------------------------
// upsample

function emitUpsample(ctx: JsEmitCtx): string {
  const w = new KernelWriter(ctx);
  const { input, output } = shapes(ctx);
  const scale = ctx.node.attrs.scale as number[];
  const mode = ctx.node.attrs.mode as "nearest" | "linear";
  const planes = w.numel(input.slice(0, 2), "planes");
  const inSizes = input.slice(2).map((d, j) => w.dim(d, `in${j}`));
  const outSizes = output.slice(2).map((d, j) => w.dim(d, `out${j}`));
  const inStrides = inSizes.map((_, j) => w.product(inSizes.slice(j + 1), `inStride${j}`));
  const outStrides = outSizes.map((_, j) => w.product(outSizes.slice(j + 1), `outStride${j}`));
  const inPlane = w.product(inSizes, "inPlane");
  const outPlane = w.product(outSizes, "outPlane");
  if (mode === "nearest") emitNearest(w, scale, planes, inSizes, inStrides, outStrides, inPlane, outPlane);
  else emitLinear(w, scale, planes, inSizes, outSizes, inStrides, inPlane);
  return w.toString();
}

/**
 * Output index o reads input floor(o / scale): each input row is written once
 * (every value `scale` times) and then copied to the next scale - 1 rows.
 */
function emitNearest(w: KernelWriter, scale: readonly number[], planes: string, inSizes: string[], inStrides: string[], outStrides: string[], inPlane: string, outPlane: string): void {
  const last = inSizes.length - 1;
  const level = (j: number, xo: string, yo: string): void => {
    const s = scale[j]!;
    const i = `i${j}`;
    if (j === last) {
      if (s === 1) {
        w.line(`for (let ${i} = 0; ${i} < ${inSizes[j]}; ${i}++) y0[${plus(yo, i)}] = x0[${plus(xo, i)}];`);
        return;
      }
      w.open(`for (let ${i} = 0; ${i} < ${inSizes[j]}; ${i}++)`);
      w.line(`const v = x0[${plus(xo, i)}], at = ${plus(yo, times(i, String(s)))};`);
      if (s <= 4) w.line(Array.from({ length: s }, (_, r) => `y0[${plus("at", String(r))}] = v;`).join(" "));
      else w.line(`for (let r = 0; r < ${s}; r++) y0[at + r] = v;`);
      w.close();
      return;
    }
    const block = w.product([String(s), outStrides[j]!], `block${j}`);
    w.open(`for (let ${i} = 0; ${i} < ${inSizes[j]}; ${i}++)`);
    const xi = bind(w, `xo${j}`, plus(xo, times(i, inStrides[j]!)));
    const yi = bind(w, `yo${j}`, plus(yo, times(i, block)));
    level(j + 1, xi, yi);
    if (s > 1) {
      w.line(`// repeat the slab just written ${s - 1} more time${s > 2 ? "s" : ""}`);
      if (s === 2) w.line(`y0.copyWithin(${plus(yi, outStrides[j]!)}, ${yi}, ${plus(yi, outStrides[j]!)});`);
      else w.line(`for (let r = 1; r < ${s}; r++) y0.copyWithin(${plus(yi, times("r", outStrides[j]!))}, ${yi}, ${plus(yi, outStrides[j]!)});`);
    }
    w.close();
  };
  loop(w, "p", planes, (p) => level(0, bind(w, "xp", times(p, inPlane)), bind(w, "yp", times(p, outPlane))));
}

/**
 * Per spatial axis, a table of the two source offsets and the weight of the
 * second for each output index: src = max((o + 0.5) / scale - 0.5, 0), taps
 * floor(src) and the next index (clamped). The value is the nested linear
 * interpolation of the 2^d taps.
 */
function emitLinear(w: KernelWriter, scale: readonly number[], planes: string, inSizes: string[], outSizes: string[], inStrides: string[], inPlane: string): void {
  const d = inSizes.length;
  for (let j = 0; j < d; j++) {
    const n = outSizes[j]!;
    w.line(`const lo${j} = new Int32Array(${n}), hi${j} = new Int32Array(${n}), wt${j} = new Float64Array(${n});`);
    w.open(`for (let o = 0; o < ${n}; o++)`);
    w.line(`const src = Math.max((o + 0.5) / ${scale[j]} - 0.5, 0);`);
    const lastIndex = /^\d+$/.test(inSizes[j]!) ? String(Number(inSizes[j]) - 1) : `${inSizes[j]} - 1`;
    w.line(`const i = Math.min(Math.floor(src), ${lastIndex});`);
    w.line(`lo${j}[o] = ${times("i", inStrides[j]!)}; hi${j}[o] = ${times(`Math.min(i + 1, ${lastIndex})`, inStrides[j]!)}; wt${j}[o] = src - i;`);
    w.close();
  }
  w.line("let o = 0;");
  // Row base offsets: "xp" (the plane), then at0/at1 (after axis 0's taps), at00..at11, ...
  // A tap of weight 0 is skipped, as in the reference, so a NaN or Infinity
  // there does not leak into the result through 0 * x.
  const base = (bits: string) => (bits === "" ? "xp" : `at${bits}`);
  const value = (j: number, bits: string): string => {
    if (j === d - 1) return `x0[${base(bits)} + a${j}] * u${j} + (w${j} === 0 ? 0 : x0[${base(bits)} + b${j}] * w${j})`;
    return `(${value(j + 1, `${bits}0`)}) * u${j} + (w${j} === 0 ? 0 : (${value(j + 1, `${bits}1`)}) * w${j})`;
  };
  const level = (j: number, rows: string[]): void => {
    const q = `q${j}`;
    w.open(`for (let ${q} = 0; ${q} < ${outSizes[j]}; ${q}++)`);
    w.line(`const a${j} = lo${j}[${q}], b${j} = hi${j}[${q}], w${j} = wt${j}[${q}], u${j} = 1 - w${j};`);
    if (j === d - 1) {
      w.line(`y0[o++] = ${value(0, "")};`);
    } else {
      for (const bits of rows) w.line(`const at${bits}0 = ${base(bits)} + a${j}, at${bits}1 = ${base(bits)} + b${j};`);
      level(
        j + 1,
        rows.flatMap((bits) => [`${bits}0`, `${bits}1`]),
      );
    }
    w.close();
  };
  loop(w, "p", planes, (p) => {
    w.line(`const xp = ${times(p, inPlane)};`);
    level(0, [""]);
  });
}

// ---------------------------------------------------------------------------
// upsample_grad (backward of linear upsample)

/**
 * dx of linear upsampling, as a gather: per spatial axis a table of each
 * output's two taps (input indices) and the weight of the second, as the
 * forward; then for every input element the outputs whose taps can touch it,
 * o in [(i - 1)·s, (i + 2)·s), each weighted per axis by
 * W(o, i) = [lo(o) = i]·(1 - w(o)) + [hi(o) = i]·w(o) (both at a clamped edge),
 * summed in a double. Zero-weight terms are skipped, as the forward skips
 * zero-weight taps.
 */
function emitUpsampleGrad(ctx: JsEmitCtx): string {
  const w = new KernelWriter(ctx);
  const { input, output } = shapes(ctx);
  const scale = ctx.node.attrs.scale as number[];
  const d = scale.length;
  const planes = w.numel(output.slice(0, 2), "planes");
  const inSizes = output.slice(2).map((dim, j) => w.dim(dim, `in${j}`));
  const outSizes = input.slice(2).map((dim, j) => w.dim(dim, `out${j}`));
  const outStrides = outSizes.map((_, j) => w.product(outSizes.slice(j + 1), `outStride${j}`));
  const outPlane = w.product(outSizes, "outPlane");
  for (let j = 0; j < d; j++) {
    const n = outSizes[j]!;
    const lastIndex = /^\d+$/.test(inSizes[j]!) ? String(Number(inSizes[j]) - 1) : `${inSizes[j]} - 1`;
    w.line(`const lo${j} = new Int32Array(${n}), hi${j} = new Int32Array(${n}), wt${j} = new Float64Array(${n});`);
    w.open(`for (let o = 0; o < ${n}; o++)`);
    w.line(`const src = Math.max((o + 0.5) / ${scale[j]} - 0.5, 0);`);
    w.line(`const i = Math.min(Math.floor(src), ${lastIndex});`);
    w.line(`lo${j}[o] = i; hi${j}[o] = Math.min(i + 1, ${lastIndex}); wt${j}[o] = src - i;`);
    w.close();
  }
  w.line("let k = 0;");
  loop(w, "p", planes, (p) => {
    const xp = bind(w, "xp", times(p, outPlane));
    const inputLevel = (j: number): void => {
      const i = `i${j}`;
      w.open(`for (let ${i} = 0; ${i} < ${inSizes[j]}; ${i}++)`);
      const s = scale[j] === 1 ? "" : ` * ${scale[j]}`;
      w.line(`const from${j} = ${i} > 0 ? (${i} - 1)${s} : 0, to${j} = Math.min((${i} + 2)${s}, ${outSizes[j]});`);
      if (j < d - 1) inputLevel(j + 1);
      else {
        w.line("let acc = 0;");
        outputLevel(0, xp, "");
        w.line("y0[k++] = acc;");
      }
      w.close();
    };
    const outputLevel = (j: number, base: string, weight: string): void => {
      const o = `o${j}`;
      w.open(`for (let ${o} = from${j}; ${o} < to${j}; ${o}++)`);
      w.line(`const w${j} = (lo${j}[${o}] === i${j} ? 1 - wt${j}[${o}] : 0) + (hi${j}[${o}] === i${j} ? wt${j}[${o}] : 0);`);
      w.line(`if (w${j} === 0) continue;`);
      const at = plus(base, times(o, outStrides[j]!));
      const wt = weight ? `${weight} * w${j}` : `w${j}`;
      if (j === d - 1) w.line(`acc += ${wt} * x0[${at}];`);
      else outputLevel(j + 1, bind(w, `r${j}`, at), wt);
      w.close();
    };
    inputLevel(0);
  });
  return w.toString();
}

// ---------------------------------------------------------------------------
// broadcast_to

function emitBroadcastTo(ctx: JsEmitCtx): string {
  const w = new KernelWriter(ctx);
  const { input, output } = shapes(ctx);
  emitMap(w, output, "y0", [{ shape: input, buffer: "x0", name: "v" }], ([v]) => ({ value: v! }));
  return w.toString();
}

export const kernels: JsKernel[] = [
  { op: "transpose", emit: emitTranspose },
  { op: "concat", emit: emitConcat },
  { op: "slice", emit: emitSlice },
  { op: "pad", emit: emitPad },
  { op: "upsample", emit: emitUpsample },
  { op: "broadcast_to", emit: emitBroadcastTo },
  { op: "slice_grad", emit: emitSliceGrad },
  { op: "upsample_grad", emit: emitUpsampleGrad },
];

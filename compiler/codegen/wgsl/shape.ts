// WGSL kernels for the shape family (compiler/ops/shape.ts): transpose,
// concat, slice, pad, upsample and broadcast_to. `reshape` has no kernel: the
// program emitter makes its output a view of the input buffer.
//
// Every kernel is a gather: one invocation per output element (flatDispatch)
// computes the element's coordinates by u32 division by static or P sizes
// and reads the input element it comes from (writes are contiguous across
// invocations). Layouts are simplified first as in the JS kernels: transpose
// merges input axes that stay neighbours, concat and slice work on
// [outer, axis, inner] rows, pad merges the trailing unpadded dims.
//
// Slice bounds on a symbolic axis are resolved at run time with Python's
// rules, as the reference; when they give a different length than the
// compiled shape, the kernel reports the error instead of reading out of range.
//
// Backward ops (compiler/ops/shape.ts) are gathers too: slice_grad reads the dy
// element an output position came from (or writes 0), upsample_grad sums, per
// input element, the outputs whose interpolation taps touch it. No atomics.

import { Dim } from "../../ir/dims.ts";
import { add, coordinates, flatPass, mapPass, mul, wgslLiteral, type WgslWriter } from "./elementwise.ts";
import type { WgslEmitCtx, WgslKernel, WgslKernelResult } from "./kernel.ts";

function normAxis(axis: number, rank: number): number {
  return axis < 0 ? axis + rank : axis;
}

function inShape(ctx: WgslEmitCtx): readonly Dim[] {
  return ctx.node.inputs[0]!.type.shape;
}

function outShape(ctx: WgslEmitCtx): readonly Dim[] {
  return ctx.node.outputs[0]!.type.shape;
}

/** One invocation per output element; `body` reads/writes for flat index `i`. */
function gather(ctx: WgslEmitCtx, body: (w: WgslWriter) => void, extra = {}): WgslKernelResult {
  return { passes: [flatPass(ctx, ctx.outSizeJs(0), (w) => w.numel(outShape(ctx), "n"), body, extra)] };
}

/** A copy in flat order (layouts that do not move data). */
function copy(ctx: WgslEmitCtx): WgslKernelResult {
  return gather(ctx, (w) => w.line("y0[i] = x0[i];"));
}

// ---------------------------------------------------------------------------
// transpose

function emitTranspose(ctx: WgslEmitCtx): WgslKernelResult {
  const input = inShape(ctx);
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
  if (groups.length <= 1) return copy(ctx);
  const keptDims = kept.map((i) => input[i]!);
  return gather(ctx, (w) => {
    const sizes = groups.map((g, j) => w.numel(g.map((r) => keptDims[r]!), `d${j}`));
    // Input stride of a group: the element count of the kept input axes after its last one.
    const strides = groups.map((g, j) => w.numel(keptDims.slice(g[g.length - 1]! + 1), `stride${j}`));
    w.line(`// output order of the input axes: [${perm.join(", ")}]`);
    const c = coordinates(w, sizes, "i", sizes.map(() => true));
    w.line(`y0[i] = x0[${c.reduce((acc, cj, j) => add(acc, mul(cj, strides[j]!)), "0u")}];`);
  });
}

// ---------------------------------------------------------------------------
// concat

function emitConcat(ctx: WgslEmitCtx): WgslKernelResult {
  const out = outShape(ctx);
  const axis = normAxis(ctx.node.attrs.axis as number, out.length);
  return gather(ctx, (w) => {
    const inner = w.numel(out.slice(axis + 1), "inner");
    // Per outer index, operand k fills a contiguous run [col_k, col_k + row_k) of the output row.
    const rows = ctx.node.inputs.map((v, k) => w.product([w.dim(v.type.shape[axis]!), inner], `row${k}`));
    const cols: string[] = ["0u"];
    for (let k = 1; k < rows.length; k++) cols.push(w.hoist(add(cols[k - 1]!, rows[k - 1]!), `col${k}`));
    let o = "0u";
    let rem = "i";
    if (!out.slice(0, axis).every((d) => d.equals(1))) {
      const rowOut = w.product([w.dim(out[axis]!), inner], "rowOut");
      w.line(`let o = i / ${rowOut};`);
      w.line(`let rem = i - o * ${rowOut};`);
      o = "o";
      rem = "rem";
    }
    const read = (k: number) => `y0[i] = ${ctx.input(k)}[${add(mul(o, rows[k]!), k === 0 ? rem : `${rem} - ${cols[k]}`)}];`;
    const last = rows.length - 1;
    if (last === 0) {
      w.line(read(0));
      return;
    }
    rows.forEach((_, k) => {
      if (k === 0) w.open(`if (${rem} < ${cols[1]})`);
      else w.orElse(k < last ? `${rem} < ${cols[k + 1]}` : undefined);
      w.line(read(k));
    });
    w.close();
  });
}

// ---------------------------------------------------------------------------
// slice

type Bound = number | Dim | null;

function boundText(v: Bound): string {
  return v === null ? "" : v.toString();
}

type SliceAttrs = { axis: number; start: number | Dim; end: Bound; step: number };

/** Whether a slice's bounds and length are all known at compile time. */
function staticSlice(a: SliceAttrs, sizeDim: Dim, countDim: Dim): boolean {
  const constOf = (v: number | Dim) => (v instanceof Dim ? v.constValue() : v);
  return sizeDim.constValue() !== undefined && constOf(a.start) !== undefined && (a.end === null || constOf(a.end) !== undefined) && countDim.constValue() !== undefined;
}

/**
 * The first position (u32) of a slice of `sizeDim` elements giving `count`:
 * folded when static, else resolved at run time with Python's rules, and the
 * length checked against the compiled shape (error kind 1; the invocation returns).
 */
function sliceStart(w: WgslWriter, ctx: WgslEmitCtx, a: SliceAttrs, sizeDim: Dim, count: string, isStatic: boolean): string {
  const step = a.step;
  if (isStatic) {
    // Python's negative indices and clamping resolved here.
    const n = sizeDim.constValue()!;
    const resolve = (v: number | Dim) => {
      const k = v instanceof Dim ? v.constValue()! : v;
      return Math.min(Math.max(k < 0 ? k + n : k, 0), n);
    };
    return `${resolve(a.start)}u`;
  }
  // Python's rules at run time: negative counts from the end, then clamp to [0, size].
  w.line(`let size = i32(${w.dim(sizeDim, "axisSize")});`);
  const position = (v: number | Dim): string => {
    if (v instanceof Dim) return v.equals(sizeDim) ? "size" : `clamp(i32(${ctx.dim(v)}), 0i, size)`;
    return v < 0 ? `max(size - ${-v}i, 0i)` : `min(${v}i, size)`;
  };
  w.line(`let first = ${position(a.start)};`);
  w.line(`let span = ${a.end === null ? "size" : position(a.end)} - first;`);
  w.line(`let got = select(0i, ${step === 1 ? "span" : `(span + ${step - 1}i) / ${step}i`}, span > 0i);`);
  w.line(`if (got != i32(${count})) { report_error(1u, got, u32(size)); return; }`);
  return "u32(first)";
}

/**
 * A slice's axis and step, the extent of the sliced axis in the full tensor
 * (`full`: slice's input, slice_grad's output) and in the sliced one, and its description.
 */
function sliceGeometry(ctx: WgslEmitCtx, full: readonly Dim[], sliced: readonly Dim[]) {
  const a = ctx.node.attrs as SliceAttrs;
  const axis = normAxis(a.axis, full.length);
  const step = a.step;
  const sizeDim = full[axis]!;
  const countDim = sliced[axis]!;
  const isStatic = staticSlice(a, sizeDim, countDim);
  const what = `slice ${boundText(a.start)}:${boundText(a.end)}${step === 1 ? "" : `:${step}`} of axis ${axis}`;
  return { a, axis, step, sizeDim, countDim, isStatic, what };
}

function emitSlice(ctx: WgslEmitCtx): WgslKernelResult {
  const input = inShape(ctx);
  const output = outShape(ctx);
  const { a, axis, step, sizeDim, countDim, isStatic, what } = sliceGeometry(ctx, input, output);
  const body = (w: WgslWriter) => {
    const count = w.dim(countDim, "count");
    const start = sliceStart(w, ctx, a, sizeDim, count, isStatic);
    const inner = w.numel(input.slice(axis + 1), "inner");
    const plane = w.product([w.dim(sizeDim, "axisSize"), inner], "plane");
    const outPlane = w.product([count, inner], "outPlane");
    let o = "0u";
    let rem = "i";
    if (!input.slice(0, axis).every((d) => d.equals(1))) {
      w.line(`let o = i / ${outPlane};`);
      w.line(`let rem = i - o * ${outPlane};`);
      o = "o";
      rem = "rem";
    }
    const rowStart = add(mul(o, plane), start === "0u" ? "0u" : mul(start, inner));
    if (step === 1) {
      w.line(`y0[i] = x0[${add(rowStart, rem)}];`);
    } else if (inner === "1u") {
      w.line(`y0[i] = x0[${add(rowStart, mul(rem, `${step}u`))}];`);
    } else {
      w.line(`let j = ${rem} / ${inner};`);
      w.line(`y0[i] = x0[${add(add(rowStart, mul("j", w.product([`${step}u`, inner], "jump"))), `${rem} % ${inner}`)}];`);
    }
  };
  if (isStatic) return gather(ctx, body);
  const result = gather(ctx, body, { usesError: true });
  return { ...result, errors: { 1: `${what} with size {b} gives {a} elements, but the compiled shape needs ${countDim.toString()}` } };
}

// ---------------------------------------------------------------------------
// slice_grad (backward of slice)

/**
 * dx of slice as a gather: each output (dx) element at position c of the
 * sliced axis is dy's element (c - start) / step when c - start is a
 * non-negative multiple of step below the count, else 0.
 */
function emitSliceGrad(ctx: WgslEmitCtx): WgslKernelResult {
  const input = inShape(ctx);
  const output = outShape(ctx);
  const { a, axis, step, sizeDim, countDim, isStatic, what } = sliceGeometry(ctx, output, input);
  const body = (w: WgslWriter) => {
    const count = w.dim(countDim, "count");
    const start = sliceStart(w, ctx, a, sizeDim, count, isStatic);
    const inner = w.numel(input.slice(axis + 1), "inner");
    const sizes = ["", w.dim(sizeDim, "axisSize"), inner];
    const c = coordinates(w, sizes, "i", [!input.slice(0, axis).every((d) => d.equals(1)), true, inner !== "1u"]);
    w.line(`// dy back at ${what.slice("slice ".length)}, zeros elsewhere`);
    w.line(`let r = i32(${c[1]}) - i32(${start});`);
    const j = step === 1 ? "r" : `r / ${step}i`;
    const inside = [`r >= 0i`, ...(step === 1 ? [] : [`r % ${step}i == 0i`]), `${j} < i32(${count})`];
    const at = add(add(c[0] ? mul(c[0], w.product([count, inner], "inPlane")) : "0u", mul(`u32(${j})`, inner)), c[2] || "0u");
    w.open(`if (${inside.join(" && ")})`);
    w.line(`y0[i] = x0[${at}];`);
    w.orElse();
    w.line("y0[i] = 0.0;");
    w.close();
  };
  if (isStatic) return gather(ctx, body);
  const result = gather(ctx, body, { usesError: true });
  return { ...result, errors: { 1: `${what} with size {b} gives {a} elements, but the compiled shape needs ${countDim.toString()}` } };
}

// ---------------------------------------------------------------------------
// pad

function emitPad(ctx: WgslEmitCtx): WgslKernelResult {
  const input = inShape(ctx);
  const output = outShape(ctx);
  const a = ctx.node.attrs as { padBegin: number[]; padEnd: number[]; value: number };
  // Dims after the last padded one are one contiguous block.
  let p = input.length - 1;
  while (p >= 0 && a.padBegin[p] === 0 && a.padEnd[p] === 0) p--;
  if (p < 0) return copy(ctx);
  const value = wgslLiteral(a.value, ctx.node.inputs[0]!.type.dtype);
  return gather(ctx, (w) => {
    const inner = w.numel(input.slice(p + 1), "inner");
    const inSizes = input.slice(0, p + 1).map((d, j) => w.dim(d, `in${j}`));
    const outSizes = output.slice(0, p + 1).map((d, j) => w.dim(d, `out${j}`));
    let q = "i";
    if (inner !== "1u") {
      w.line(`let q = i / ${inner};`);
      w.line(`let e = i % ${inner};`);
      q = "q";
    }
    const c = coordinates(w, outSizes, q, outSizes.map(() => true));
    // Input coordinates; below the begin padding they wrap to large u32 values and fail the bound check.
    const src = c.map((cj, j) => (a.padBegin[j] ? `(${cj} - ${a.padBegin[j]}u)` : cj));
    const inside = src.flatMap((s, j) => (a.padBegin[j] || a.padEnd[j] ? [`${s} < ${inSizes[j]}`] : []));
    let offset = src.reduce((acc, s, j) => (j === 0 ? s : add(mul(acc, inSizes[j]!), s)), "0u");
    if (inner !== "1u") offset = add(mul(offset, inner), "e");
    w.open(`if (${inside.join(" && ")})`);
    w.line(`y0[i] = x0[${offset}];`);
    w.orElse();
    w.line(`y0[i] = ${value};`);
    w.close();
  });
}

// ---------------------------------------------------------------------------
// upsample

/**
 * Output index o along a dim scaled by s reads input floor(o / s) (nearest),
 * or (linear, PyTorch's align_corners=false) src = max((o + 0.5) / s - 0.5, 0)
 * between floor(src) and the next index (clamped), with the weight of the
 * second src - floor(src). Taps of weight 0 are skipped, as in the reference,
 * so a NaN or inf there does not leak into the result through 0 * x.
 */
function emitUpsample(ctx: WgslEmitCtx): WgslKernelResult {
  const input = inShape(ctx);
  const output = outShape(ctx);
  const scale = ctx.node.attrs.scale as number[];
  const linear = ctx.node.attrs.mode === "linear";
  return gather(ctx, (w) => {
    const d = input.length - 2;
    const inSizes = input.slice(2).map((dim, j) => w.dim(dim, `in${j}`));
    const outSizes = output.slice(2).map((dim, j) => w.dim(dim, `out${j}`));
    const inStrides = inSizes.map((_, j) => w.product(inSizes.slice(j + 1), `inStride${j}`));
    const inPlane = w.product(inSizes, "inPlane");
    // The plane index is the outermost coordinate: its own size is never needed.
    const onePlane = input.slice(0, 2).every((dim) => dim.equals(1));
    const c = coordinates(w, ["", ...outSizes], "i", [!onePlane, ...outSizes.map(() => true)]);
    const plane = onePlane ? "0u" : mul(c[0]!, inPlane);
    const o = c.slice(1);
    if (!linear) {
      const at = o.reduce((acc, oj, j) => add(acc, mul(scale[j] === 1 ? oj : `(${oj} / ${scale[j]}u)`, inStrides[j]!)), plane);
      w.line(`y0[i] = x0[${at}];`);
      return;
    }
    for (let j = 0; j < d; j++) {
      const last = inSizes[j] === "1u" ? "0u" : /^\d+u$/.test(inSizes[j]!) ? `${Number(inSizes[j]!.slice(0, -1)) - 1}u` : `${inSizes[j]} - 1u`;
      w.line(`let src${j} = max((f32(${o[j]}) + 0.5) / ${scale[j]}.0 - 0.5, 0.0);`);
      w.line(`let lo${j} = min(u32(floor(src${j})), ${last});`);
      w.line(`let hi${j} = min(lo${j} + 1u, ${last});`);
      w.line(`let w${j} = src${j} - f32(lo${j});`);
    }
    w.line("var acc = 0.0;");
    // Corners in the reference's order: bit j of the corner picks the high tap along dim j.
    for (let corner = 0; corner < 1 << d; corner++) {
      const weight: string[] = [];
      let at = plane;
      for (let j = 0; j < d; j++) {
        const hi = (corner >> j) & 1;
        weight.push(hi ? `w${j}` : `(1.0 - w${j})`);
        at = add(at, mul(hi ? `hi${j}` : `lo${j}`, inStrides[j]!));
      }
      w.line(`{ let cw = ${weight.join(" * ")}; if (cw != 0.0) { acc += cw * x0[${at}]; } }`);
    }
    w.line("y0[i] = acc;");
  });
}

// ---------------------------------------------------------------------------
// upsample_grad (backward of linear upsample)

/**
 * dx of linear upsampling as a gather: one invocation per input element i
 * loops over the outputs o in [(i - 1)·s, (i + 2)·s) of each spatial axis
 * (only those can have a tap at i), recomputes their taps as the forward
 * does (f32), and sums dy[o] · Π_j W_j with
 * W(o, i) = [lo(o) = i]·(1 - w(o)) + [hi(o) = i]·w(o); zero weights are
 * skipped. No atomics, no scatter: the sum order is fixed.
 */
function emitUpsampleGrad(ctx: WgslEmitCtx): WgslKernelResult {
  const input = inShape(ctx);
  const output = outShape(ctx);
  const scale = ctx.node.attrs.scale as number[];
  const d = scale.length;
  return gather(ctx, (w) => {
    const inSizes = output.slice(2).map((dim, j) => w.dim(dim, `in${j}`));
    const outSizes = input.slice(2).map((dim, j) => w.dim(dim, `out${j}`));
    const outStrides = outSizes.map((_, j) => w.product(outSizes.slice(j + 1), `outStride${j}`));
    const outPlane = w.product(outSizes, "outPlane");
    const onePlane = output.slice(0, 2).every((dim) => dim.equals(1));
    const c = coordinates(w, ["", ...inSizes], "i", [!onePlane, ...inSizes.map(() => true)]);
    const plane = onePlane ? "0u" : mul(c[0]!, outPlane);
    const at = c.slice(1);
    const lastOf = (j: number) => (inSizes[j] === "1u" ? "0u" : /^\d+u$/.test(inSizes[j]!) ? `${Number(inSizes[j]!.slice(0, -1)) - 1}u` : `${inSizes[j]} - 1u`);
    for (let j = 0; j < d; j++) {
      const s = scale[j] === 1 ? "" : ` * ${scale[j]}u`;
      w.line(`let from${j} = select(0u, (${at[j]} - 1u)${s}, ${at[j]} > 0u);`);
      w.line(`let to${j} = min((${at[j]} + 2u)${s}, ${outSizes[j]});`);
    }
    w.line("var acc = 0.0;");
    const level = (j: number, base: string, weight: string): void => {
      const o = `o${j}`;
      w.open(`for (var ${o} = from${j}; ${o} < to${j}; ${o}++)`);
      w.line(`let src${j} = max((f32(${o}) + 0.5) / ${scale[j]}.0 - 0.5, 0.0);`);
      w.line(`let lo${j} = min(u32(floor(src${j})), ${lastOf(j)});`);
      w.line(`let hi${j} = min(lo${j} + 1u, ${lastOf(j)});`);
      w.line(`let f${j} = src${j} - f32(lo${j});`);
      w.line(`let w${j} = select(0.0, 1.0 - f${j}, lo${j} == ${at[j]}) + select(0.0, f${j}, hi${j} == ${at[j]});`);
      w.line(`if (w${j} == 0.0) { continue; }`);
      const next = add(base, mul(o, outStrides[j]!));
      const wt = weight ? `${weight} * w${j}` : `w${j}`;
      if (j === d - 1) w.line(`acc += ${wt} * x0[${next}];`);
      else {
        w.line(`let r${j} = ${next};`);
        level(j + 1, `r${j}`, wt);
      }
      w.close();
    };
    level(0, plane, "");
    w.line("y0[i] = acc;");
  });
}

// ---------------------------------------------------------------------------
// broadcast_to

function emitBroadcastTo(ctx: WgslEmitCtx): WgslKernelResult {
  return { passes: [mapPass(ctx, [{ shape: inShape(ctx), buffer: "x0", name: "v" }], ([v]) => ({ value: v! }))] };
}

export const kernels: WgslKernel[] = [
  { op: "transpose", emit: emitTranspose },
  { op: "concat", emit: emitConcat },
  { op: "slice", emit: emitSlice },
  { op: "pad", emit: emitPad },
  { op: "upsample", emit: emitUpsample },
  { op: "broadcast_to", emit: emitBroadcastTo },
  { op: "slice_grad", emit: emitSliceGrad },
  { op: "upsample_grad", emit: emitUpsampleGrad },
];

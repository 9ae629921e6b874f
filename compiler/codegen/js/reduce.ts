// JS kernels for reductions (compiler/ops/reduce.ts): reduce (sum, mean, max,
// min, logsumexp over any axes), argmax, softmax and log_softmax.
//
// The input is viewed as blocks of kept and reduced dims (size-1 dims dropped,
// neighbours of the same kind merged). The common layouts get loops whose
// innermost walks memory contiguously:
//  * [outer, reduced]: one accumulator (a double) per output, summed along the row;
//  * [outer, reduced, inner]: a row of `inner` accumulators (a Float64Array
//    scratch, or the output row itself for max/min, which are exact), updated
//    row by row of the input.
// Other axis sets (several reduced blocks) use strided loops per output.
//
// Semantics follow the reference: max/min/argmax propagate NaN (the first
// NaN wins argmax), ties go to the first index, logsumexp and softmax shift by
// the max (by 0 when the max is ±Infinity or NaN), i32 sums wrap like int32.

import { Dim } from "../../ir/dims.ts";
import type { DType } from "../../ir/types.ts";
import type { ReduceKind } from "../../ops/reduce.ts";
import { bind, emitMap, KernelWriter, loop, plus, times } from "./elementwise.ts";
import type { JsEmitCtx, JsKernel } from "./kernel.ts";

/** A dims list as [outer, len, inner] around `axis`. */
function lineView(w: KernelWriter, shape: readonly Dim[], axis: number): { outer: string; len: string; inner: string } {
  return {
    outer: w.numel(shape.slice(0, axis), "outer"),
    len: w.dim(shape[axis]!, "len"),
    inner: w.numel(shape.slice(axis + 1), "inner"),
  };
}

/** Keeps `v` as the running max (NaN sticks: once m is NaN no comparison succeeds). */
function maxStep(m: string, v: string, dtype: DType, larger = true): string {
  const op = larger ? ">" : "<";
  return dtype === "f32" ? `if (${v} ${op} ${m} || ${v} !== ${v}) ${m} = ${v};` : `if (${v} ${op} ${m}) ${m} = ${v};`;
}

// ---------------------------------------------------------------------------
// reduce

interface Block {
  readonly dims: Dim[];
  readonly reduced: boolean;
}

function blocksOf(shape: readonly Dim[], axes: readonly number[]): Block[] {
  const blocks: Block[] = [];
  shape.forEach((d, i) => {
    if (d.equals(1)) return;
    const reduced = axes.includes(i);
    const last = blocks[blocks.length - 1];
    if (last && last.reduced === reduced) last.dims.push(d);
    else blocks.push({ dims: [d], reduced });
  });
  return blocks;
}

function emitReduce(ctx: JsEmitCtx): string {
  const w = new KernelWriter(ctx);
  const kind = ctx.node.attrs.kind as ReduceKind;
  const axes = ctx.node.attrs.axes as number[];
  const x = ctx.node.inputs[0]!.type;
  const blocks = blocksOf(x.shape, axes);
  if (!blocks.some((b) => b.reduced)) {
    // Every reduced dim has size 1: each output is the reduction of one value, i.e. the value
    // itself, in the same flat order (the output shape only lacks size-1 dims).
    emitMap(w, x.shape, "y0", [{ shape: x.shape, buffer: "x0", name: "v" }], ([v]) => ({ value: v! }));
    return w.toString();
  }
  const sizes = blocks.map((b, j) => w.numel(b.dims, b.reduced ? `red${j}` : `kept${j}`));
  const reducedBlocks = blocks.filter((b) => b.reduced).length;
  const lastKept = !blocks[blocks.length - 1]!.reduced;
  if (reducedBlocks === 1 && lastKept) {
    const r = blocks.findIndex((b) => b.reduced);
    emitRowReduce(w, kind, x.dtype, r === 0 ? "1" : sizes[0]!, sizes[r]!, sizes[r + 1]!);
  } else {
    const count = kind === "mean" ? w.product(sizes.filter((_, j) => blocks[j]!.reduced), "count") : "";
    emitScalarReduce(w, kind, x.dtype, blocks, sizes, count);
  }
  return w.toString();
}

/** The value stored for an accumulated sum. */
function finishSum(kind: ReduceKind, dtype: DType, acc: string, count: string): string {
  if (kind === "mean") return `${acc} / ${count}`;
  return dtype === "i32" ? `${acc} | 0` : acc;
}

/**
 * One accumulator per output: loops over the kept blocks (outputs in
 * row-major order), then over the reduced blocks (strided unless last).
 */
function emitScalarReduce(w: KernelWriter, kind: ReduceKind, dtype: DType, blocks: readonly Block[], sizes: readonly string[], count: string): void {
  // Input stride of each block.
  const strides = blocks.map((_, j) => (j === blocks.length - 1 ? "1" : w.product(sizes.slice(j + 1), `stride${j}`)));
  const kept = blocks.map((b, j) => j).filter((j) => !blocks[j]!.reduced);
  const reduced = blocks.map((b, j) => j).filter((j) => blocks[j]!.reduced);
  if (kept.length) w.line("let o = 0;");
  const keptLoops = (k: number, base: string): void => {
    if (k === kept.length) {
      emitOneOutput(w, kind, dtype, reduced, sizes, strides, base, count, kept.length ? "y0[o++]" : "y0[0]");
      return;
    }
    const j = kept[k]!;
    loop(w, `k${k}`, sizes[j]!, (i) => keptLoops(k + 1, bind(w, `xk${k}`, plus(base, times(i, strides[j]!)))));
  };
  keptLoops(0, "0");
}

function emitOneOutput(
  w: KernelWriter,
  kind: ReduceKind,
  dtype: DType,
  reduced: readonly number[],
  sizes: readonly string[],
  strides: readonly string[],
  base: string,
  count: string,
  target: string,
): void {
  // Nested loops over the reduced blocks; `stmt` gets the value's offset.
  const reducedLoops = (stmt: (at: string) => string): void => {
    const rec = (k: number, at: string): void => {
      if (k === reduced.length) {
        w.line(stmt(at));
        return;
      }
      const j = reduced[k]!;
      const r = `r${k}`;
      const next = plus(at, times(r, strides[j]!));
      if (k === reduced.length - 1) {
        w.line(`for (let ${r} = 0; ${r} < ${sizes[j]}; ${r}++) ${stmt(next)}`);
        return;
      }
      w.open(`for (let ${r} = 0; ${r} < ${sizes[j]}; ${r}++)`);
      rec(k + 1, bind(w, `xr${k}`, next));
      w.close();
    };
    rec(0, base);
  };
  switch (kind) {
    case "sum":
    case "mean":
      w.line("let acc = 0;");
      reducedLoops((at) => `acc += x0[${at}];`);
      w.line(`${target} = ${finishSum(kind, dtype, "acc", count)};`);
      return;
    case "max":
    case "min":
      w.line(`let m = ${kind === "max" ? "-Infinity" : "Infinity"};`);
      reducedLoops((at) => `{ const v = x0[${at}]; ${maxStep("m", "v", dtype, kind === "max")} }`);
      w.line(`${target} = m;`);
      return;
    case "logsumexp":
      w.line("let m = -Infinity;");
      reducedLoops((at) => `{ const v = x0[${at}]; ${maxStep("m", "v", dtype)} }`);
      w.line("let lse = m;");
      w.open("if (m - m === 0)");
      w.line("// finite max: shift by it so exp cannot overflow (else the max itself is the answer)");
      w.line("let sum = 0;");
      reducedLoops((at) => `sum += Math.exp(x0[${at}] - m);`);
      w.line("lse = m + Math.log(sum);");
      w.close();
      w.line(`${target} = lse;`);
      return;
  }
}

/**
 * [outer, red, inner] with inner > 1: a row of `inner` accumulators per outer
 * index, initialised from the first input row and updated row by row, so
 * every inner loop is contiguous.
 */
function emitRowReduce(w: KernelWriter, kind: ReduceKind, dtype: DType, outer: string, red: string, inner: string): void {
  const plane = w.product([red, inner], "plane");
  const usesScratch = kind === "sum" || kind === "mean" || kind === "logsumexp";
  if (usesScratch) w.headLine(`const acc = new Float64Array(${inner}); // ${kind === "logsumexp" ? "sums of exp" : "sums"} for one output row`);
  loop(w, "o", outer, (o) => {
    const xo = bind(w, "xo", times(o, plane));
    const yo = bind(w, "yo", times(o, inner));
    const row = (r: string, body: (xr: string) => void) => {
      w.open(`for (let ${r} = 1; ${r} < ${red}; ${r}++)`);
      body(bind(w, "xr", plus(xo, times(r, inner))));
      w.close();
    };
    const at = (base: string) => plus(base, "i");
    const forInner = `for (let i = 0; i < ${inner}; i++)`;
    switch (kind) {
      case "sum":
      case "mean":
        w.line(`${forInner} acc[i] = x0[${at(xo)}];`);
        row("r", (xr) => w.line(`${forInner} acc[i] += x0[${at(xr)}];`));
        w.line(`${forInner} y0[${at(yo)}] = ${finishSum(kind, dtype, "acc[i]", red)};`);
        return;
      case "max":
      case "min":
      case "logsumexp": {
        // The running max/min lives in the output row (exact: it is one of the inputs).
        const larger = kind !== "min";
        w.line(`${forInner} y0[${at(yo)}] = x0[${at(xo)}];`);
        row("r", (xr) => {
          w.open(forInner);
          w.line(`const v = x0[${at(xr)}];`);
          w.line(
            dtype === "f32"
              ? `if (v ${larger ? ">" : "<"} y0[${at(yo)}] || v !== v) y0[${at(yo)}] = v;`
              : `if (v ${larger ? ">" : "<"} y0[${at(yo)}]) y0[${at(yo)}] = v;`,
          );
          w.close();
        });
        if (kind !== "logsumexp") return;
        w.line(`${forInner} acc[i] = 0;`);
        w.open(`for (let r = 0; r < ${red}; r++)`);
        const xr = bind(w, "xr", plus(xo, times("r", inner)));
        w.line(`${forInner} acc[i] += Math.exp(x0[${at(xr)}] - y0[${at(yo)}]);`);
        w.close();
        w.open(forInner);
        w.line(`const m = y0[${at(yo)}];`);
        w.line("// a non-finite max is the answer itself (its sums above are meaningless)");
        w.line(`if (m - m === 0) y0[${at(yo)}] = m + Math.log(acc[i]);`);
        w.close();
        return;
      }
    }
  });
}

// ---------------------------------------------------------------------------
// argmax

function emitArgmax(ctx: JsEmitCtx): string {
  const w = new KernelWriter(ctx);
  const x = ctx.node.inputs[0]!.type;
  const axis = (ctx.node.attrs.axis as number) < 0 ? (ctx.node.attrs.axis as number) + x.shape.length : (ctx.node.attrs.axis as number);
  const { outer, len, inner } = lineView(w, x.shape, axis);
  // A later value wins when it is larger, or when it is the first NaN (NaN counts as the largest).
  const better = (v: string, b: string) => (x.dtype === "f32" ? `${v} > ${b} || (${v} !== ${v} && ${b} === ${b})` : `${v} > ${b}`);
  if (inner === "1") {
    loop(w, "o", outer, (o) => {
      const xo = bind(w, "xo", times(o, len));
      w.line(`let best = 0, bestValue = x0[${xo}];`);
      w.open(`for (let j = 1; j < ${len}; j++)`);
      w.line(`const v = x0[${plus(xo, "j")}];`);
      w.line(`if (${better("v", "bestValue")}) { best = j; bestValue = v; }`);
      w.close();
      w.line(`y0[${o}] = best;`);
    });
    return w.toString();
  }
  // Rows of `inner` candidates: indices in the output row, values in a scratch row.
  w.headLine(`const bestValue = new Float64Array(${inner});`);
  const plane = w.product([len, inner], "plane");
  loop(w, "o", outer, (o) => {
    const xo = bind(w, "xo", times(o, plane));
    const yo = bind(w, "yo", times(o, inner));
    w.line(`for (let i = 0; i < ${inner}; i++) { y0[${plus(yo, "i")}] = 0; bestValue[i] = x0[${plus(xo, "i")}]; }`);
    w.open(`for (let j = 1; j < ${len}; j++)`);
    const xr = bind(w, "xr", plus(xo, times("j", inner)));
    w.open(`for (let i = 0; i < ${inner}; i++)`);
    w.line(`const v = x0[${plus(xr, "i")}], b = bestValue[i];`);
    w.line(`if (${better("v", "b")}) { bestValue[i] = v; y0[${plus(yo, "i")}] = j; }`);
    w.close();
    w.close();
  });
  return w.toString();
}

// ---------------------------------------------------------------------------
// softmax, log_softmax

function emitSoftmax(ctx: JsEmitCtx, log: boolean): string {
  const w = new KernelWriter(ctx);
  const x = ctx.node.inputs[0]!.type;
  const rawAxis = ctx.node.attrs.axis as number;
  const axis = rawAxis < 0 ? rawAxis + x.shape.length : rawAxis;
  const { outer, len, inner } = lineView(w, x.shape, axis);
  if (inner === "1") {
    loop(w, "o", outer, (o) => {
      const xo = bind(w, "xo", times(o, len));
      const at = plus(xo, "j");
      w.line("let m = -Infinity;");
      w.line(`for (let j = 0; j < ${len}; j++) { const v = x0[${at}]; ${maxStep("m", "v", "f32")} }`);
      w.line("// shift by the max so exp cannot overflow (by 0 when the max is not finite, as the reference)");
      w.line("const shift = m - m === 0 ? m : 0;");
      w.line("let sum = 0;");
      if (log) {
        w.line(`for (let j = 0; j < ${len}; j++) sum += Math.exp(x0[${at}] - shift);`);
        w.line("const logSum = Math.log(sum);");
        w.line(`for (let j = 0; j < ${len}; j++) y0[${at}] = x0[${at}] - shift - logSum;`);
      } else {
        w.line(`for (let j = 0; j < ${len}; j++) { const e = Math.exp(x0[${at}] - shift); y0[${at}] = e; sum += e; }`);
        w.line("const inv = 1 / sum;");
        w.line(`for (let j = 0; j < ${len}; j++) y0[${at}] *= inv;`);
      }
    });
    return w.toString();
  }
  // Along a non-last axis: rows of `inner` maxima and sums, contiguous inner loops.
  w.headLine(`const shift = new Float64Array(${inner}), sum = new Float64Array(${inner});`);
  const plane = w.product([len, inner], "plane");
  const forInner = `for (let i = 0; i < ${inner}; i++)`;
  loop(w, "o", outer, (o) => {
    const xo = bind(w, "xo", times(o, plane));
    const rows = (first: string, body: (xr: string) => void) => {
      w.open(`for (let j = ${first}; j < ${len}; j++)`);
      body(bind(w, "xr", plus(xo, times("j", inner))));
      w.close();
    };
    w.line(`${forInner} shift[i] = x0[${plus(xo, "i")}];`);
    rows("1", (xr) => w.line(`${forInner} { const v = x0[${plus(xr, "i")}]; ${maxStep("shift[i]", "v", "f32")} }`));
    w.line("// shift by the max so exp cannot overflow (by 0 when the max is not finite, as the reference)");
    w.line(`${forInner} { const m = shift[i]; shift[i] = m - m === 0 ? m : 0; sum[i] = 0; }`);
    if (log) {
      rows("0", (xr) => w.line(`${forInner} sum[i] += Math.exp(x0[${plus(xr, "i")}] - shift[i]);`));
      w.line(`${forInner} sum[i] = Math.log(sum[i]);`);
      rows("0", (xr) => w.line(`${forInner} y0[${plus(xr, "i")}] = x0[${plus(xr, "i")}] - shift[i] - sum[i];`));
    } else {
      rows("0", (xr) => w.line(`${forInner} { const e = Math.exp(x0[${plus(xr, "i")}] - shift[i]); y0[${plus(xr, "i")}] = e; sum[i] += e; }`));
      w.line(`${forInner} sum[i] = 1 / sum[i];`);
      rows("0", (xr) => w.line(`${forInner} y0[${plus(xr, "i")}] *= sum[i];`));
    }
  });
  return w.toString();
}

// ---------------------------------------------------------------------------
// Backward ops: reduce_grad, softmax_grad

/** x's shape with the reduced axes kept as 1: the layout of y and dy (keepdims or not, same flat order). */
function keptShape(shape: readonly Dim[], axes: readonly number[]): Dim[] {
  return shape.map((d, i) => (axes.includes(i) ? Dim.of(1) : d));
}

/**
 * reduce_grad(x, y, dy) -> dx. mean and logsumexp are maps over x with y and
 * dy broadcast along the reduced axes (dx = dy / count, dy · exp(x − y)).
 * max/min: dx is zeroed, then each group (outputs in row-major order, loops
 * as in emitScalarReduce) is scanned in flat order for its first extreme
 * (strictly better replaces, the first NaN wins, as the reference's
 * beatsExtreme), which receives the group's dy.
 */
function emitReduceGrad(ctx: JsEmitCtx): string {
  const w = new KernelWriter(ctx);
  const kind = ctx.node.attrs.kind as ReduceKind;
  const axes = ctx.node.attrs.axes as number[];
  const x = ctx.node.inputs[0]!.type;
  const [X, Y, G, DX] = [ctx.input(0), ctx.input(1), ctx.input(2), ctx.output(0)];
  const kept = keptShape(x.shape, axes);
  const blocks = blocksOf(x.shape, axes);
  if (kind === "mean" || kind === "logsumexp" || !blocks.some((b) => b.reduced)) {
    const count = w.numel(axes.map((i) => x.shape[i]!), "count");
    const operands = [
      { shape: x.shape, buffer: X, name: "v" },
      { shape: kept, buffer: Y, name: "m" },
      { shape: kept, buffer: G, name: "g" },
    ];
    emitMap(w, x.shape, DX, operands, ([v, m, g]) => {
      if (kind === "logsumexp") return { value: `${g} * Math.exp(${v} - ${m})`, comment: "d logsumexp / dx = exp(x - y)" };
      // max/min over size-1 axes only: every element is its group's extreme.
      return { value: kind === "mean" ? `${g} / ${count}` : g };
    });
    return w.toString();
  }
  const sizes = blocks.map((b, j) => w.numel(b.dims, b.reduced ? `red${j}` : `kept${j}`));
  const strides = blocks.map((_, j) => (j === blocks.length - 1 ? "1" : w.product(sizes.slice(j + 1), `stride${j}`)));
  const keptBlocks = blocks.flatMap((b, j) => (b.reduced ? [] : [j]));
  const reducedBlocks = blocks.flatMap((b, j) => (b.reduced ? [j] : []));
  const op = kind === "max" ? ">" : "<";
  w.line(`${DX}.fill(0);`);
  w.line(`// dy goes to the first ${kind} of each group (a later value must be strictly ${kind === "max" ? "larger" : "smaller"}; the first NaN wins)`);
  if (keptBlocks.length) w.line("let o = 0;");
  const group = (base: string): void => {
    w.line(`let best = ${base}, bestValue = ${X}[${base}];`);
    const rec = (k: number, at: string): void => {
      if (k === reducedBlocks.length) {
        w.line(`const v = ${X}[${at}];`);
        w.line(`if ((v ${op} bestValue || v !== v) && bestValue === bestValue) { best = ${at}; bestValue = v; }`);
        return;
      }
      const j = reducedBlocks[k]!;
      const r = `r${k}`;
      w.open(`for (let ${r} = 0; ${r} < ${sizes[j]}; ${r}++)`);
      rec(k + 1, bind(w, `xr${k}`, plus(at, times(r, strides[j]!))));
      w.close();
    };
    rec(0, base);
    w.line(`${DX}[best] = ${G}[${keptBlocks.length ? "o++" : "0"}];`);
  };
  const keptLoops = (k: number, base: string): void => {
    if (k === keptBlocks.length) return group(base);
    const j = keptBlocks[k]!;
    loop(w, `k${k}`, sizes[j]!, (i) => keptLoops(k + 1, bind(w, `xk${k}`, plus(base, times(i, strides[j]!)))));
  };
  keptLoops(0, "0");
  return w.toString();
}

/**
 * softmax_grad(y, dy) -> dx along one axis, line by line (as emitSoftmax):
 * s = Σ dy·y (softmax) or Σ dy (log_softmax) in a double, then
 * dx = y·(dy − s) or dy − exp(y)·s.
 */
function emitSoftmaxGrad(ctx: JsEmitCtx): string {
  const w = new KernelWriter(ctx);
  const y = ctx.node.inputs[0]!.type;
  const log = ctx.node.attrs.log as boolean;
  const rawAxis = ctx.node.attrs.axis as number;
  const axis = rawAxis < 0 ? rawAxis + y.shape.length : rawAxis;
  const [Y, G, DX] = [ctx.input(0), ctx.input(1), ctx.output(0)];
  const { outer, len, inner } = lineView(w, y.shape, axis);
  const term = (at: string) => (log ? `${G}[${at}]` : `${G}[${at}] * ${Y}[${at}]`);
  const result = (at: string, s: string) => (log ? `${G}[${at}] - Math.exp(${Y}[${at}]) * ${s}` : `${Y}[${at}] * (${G}[${at}] - ${s})`);
  w.line(`// ${log ? "dx = dy - exp(y) * Σ dy" : "dx = y * (dy - Σ dy * y)"} along the axis`);
  if (inner === "1") {
    loop(w, "o", outer, (o) => {
      const at = plus(bind(w, "xo", times(o, len)), "j");
      w.line("let s = 0;");
      w.line(`for (let j = 0; j < ${len}; j++) s += ${term(at)};`);
      w.line(`for (let j = 0; j < ${len}; j++) ${DX}[${at}] = ${result(at, "s")};`);
    });
    return w.toString();
  }
  // Along a non-last axis: a row of `inner` sums, contiguous inner loops.
  w.headLine(`const sum = new Float64Array(${inner});`);
  const plane = w.product([len, inner], "plane");
  const forInner = `for (let i = 0; i < ${inner}; i++)`;
  loop(w, "o", outer, (o) => {
    const xo = bind(w, "xo", times(o, plane));
    const rows = (body: (at: string) => void) => {
      w.open(`for (let j = 0; j < ${len}; j++)`);
      body(plus(bind(w, "xr", plus(xo, times("j", inner))), "i"));
      w.close();
    };
    w.line(`${forInner} sum[i] = 0;`);
    rows((at) => w.line(`${forInner} sum[i] += ${term(at)};`));
    rows((at) => w.line(`${forInner} ${DX}[${at}] = ${result(at, "sum[i]")};`));
  });
  return w.toString();
}

export const kernels: JsKernel[] = [
  { op: "reduce_grad", emit: emitReduceGrad },
  { op: "softmax_grad", emit: emitSoftmaxGrad },
  { op: "reduce", emit: emitReduce },
  { op: "argmax", emit: emitArgmax },
  { op: "softmax", emit: (ctx) => emitSoftmax(ctx, false) },
  { op: "log_softmax", emit: (ctx) => emitSoftmax(ctx, true) },
];

// WGSL kernels for reductions (compiler/ops/reduce.ts): reduce (sum, mean,
// max, min, logsumexp over any axes), argmax, softmax and log_softmax.
//
// Two forms per op:
//  * "cpu" (software adapters): one invocation per output (per line for
//    softmax), looping over the reduced elements; neighbouring invocations
//    read neighbouring addresses when the reduced axes are not the last;
//  * "gpu": one workgroup of 64 per output (per line), each invocation
//    accumulating a strided share, then a tree reduction in workgroup memory.
// The input is viewed as blocks of kept and reduced dims (size-1 dims
// dropped, neighbours of the same kind merged), as in the JS kernels.
//
// Semantics follow the reference: max/min propagate NaN, argmax takes the
// first maximum and counts NaN as the largest value (the first NaN wins),
// logsumexp and softmax shift by the max (by 0 when it is ±inf or NaN),
// i32 sums wrap. NaN tests use the bit pattern (is_nan): compilers may fold
// `v != v` to false.

import { Dim } from "../../ir/dims.ts";
import type { DType } from "../../ir/types.ts";
import type { ReduceKind } from "../../ops/reduce.ts";
import { add, broadcastOffsets, coordinates, flatPass, GROUP_PARAMS, groupDispatch, mul, wgslLiteral, WgslWriter } from "./elementwise.ts";
import { WGSL_TYPE, type WgslEmitCtx, type WgslKernel, type WgslKernelResult, type WgslPass } from "./kernel.ts";

const WG = 64;

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

/** `axis` as a non-negative axis. */
function normAxis(axis: number, rank: number): number {
  return axis < 0 ? axis + rank : axis;
}

/** The starting value of a running max/min/sum. */
function identity(kind: "sum" | "max" | "min", dtype: DType): string {
  if (kind === "sum") return wgslLiteral(0, dtype);
  if (dtype === "i32") return wgslLiteral(kind === "max" ? -2147483648 : 2147483647, "i32");
  return wgslLiteral(kind === "max" ? -Infinity : Infinity, "f32");
}

/** Statement folding value `v` into the running `acc`. */
function step(kind: "sum" | "max" | "min", dtype: DType, acc: string, v: string): string {
  if (kind === "sum") return `${acc} += ${v};`;
  const op = kind === "max" ? ">" : "<";
  // Once acc is NaN no comparison succeeds, so the first NaN sticks.
  return dtype === "f32" ? `if (${v} ${op} ${acc} || is_nan(${v})) { ${acc} = ${v}; }` : `if (${v} ${op} ${acc}) { ${acc} = ${v}; }`;
}

/** Expression combining two partial results in the workgroup tree. */
function combine(kind: "sum" | "max" | "min", dtype: DType, a: string, b: string): string {
  if (kind === "sum") return `${a} + ${b}`;
  return dtype === "f32" ? `${kind}_nan(${a}, ${b})` : `${kind}(${a}, ${b})`;
}

/**
 * Tree reduction of `local` over the workgroup in `arr`; afterwards every
 * invocation may read the result from `arr[0]` (call `w.line("workgroupBarrier();")`
 * before writing `arr` again).
 */
function treeReduce(w: WgslWriter, arr: string, local: string, f: (a: string, b: string) => string): void {
  w.line(`${arr}[lid] = ${local};`);
  w.line("workgroupBarrier();");
  w.open(`for (var s = ${WG / 2}u; s > 0u; s >>= 1u)`);
  w.line(`if (lid < s) { ${arr}[lid] = ${f(`${arr}[lid]`, `${arr}[lid + s]`)}; }`);
  w.line("workgroupBarrier();");
  w.close();
}

/** A pass with one workgroup per item: `o` is the item; `body` runs for o < count. */
function groupPass(ctx: WgslEmitCtx, countJs: string, count: (w: WgslWriter) => string, body: (w: WgslWriter) => void): { code: string; dispatch: [string, string] } {
  const w = new WgslWriter(ctx);
  const n = count(w);
  w.line("let o = wid.x + wid.y * nwg.x;");
  w.line(`if (o >= ${n}) { return; }`);
  body(w);
  return { code: w.shader(WG, GROUP_PARAMS), dispatch: groupDispatch(countJs) };
}

/** A pass with "cpu" (flat) and "gpu" (workgroup) forms; the cpu form is also the default. */
function twoForms(cpu: WgslPass, gpu: { code: string; dispatch: [string, string] }): WgslPass {
  return { ...cpu, variants: { cpu: { code: cpu.code, dispatch: cpu.dispatch }, gpu } };
}

// ---------------------------------------------------------------------------
// reduce

function emitReduce(ctx: WgslEmitCtx): WgslKernelResult {
  const kind = ctx.node.attrs.kind as ReduceKind;
  const axes = ctx.node.attrs.axes as number[];
  const x = ctx.node.inputs[0]!.type;
  const dtype = x.dtype;
  const blocks = blocksOf(x.shape, axes);
  const countJs = ctx.outSizeJs(0);
  if (!blocks.some((b) => b.reduced)) {
    // Every reduced dim has size 1: each output is its single input, in the same flat order.
    const pass = flatPass(ctx, countJs, (w) => w.numel(x.shape, "n"), (w) => w.line("y0[i] = x0[i];"));
    return { passes: [pass] };
  }

  /** Sizes, input strides and the kept/reduced block lists, as operands of `w`. */
  const layout = (w: WgslWriter) => {
    const sizes = blocks.map((b, j) => w.numel(b.dims, b.reduced ? `red${j}` : `kept${j}`));
    const strides = blocks.map((_, j) => w.product(sizes.slice(j + 1), `stride${j}`));
    const kept = blocks.flatMap((b, j) => (b.reduced ? [] : [j]));
    const reduced = blocks.flatMap((b, j) => (b.reduced ? [j] : []));
    const total = w.product(reduced.map((j) => sizes[j]!), "count");
    return { sizes, strides, kept, reduced, total };
  };
  /** `let base = ...;`: the input offset of output `o`'s first reduced element. */
  const baseOf = (w: WgslWriter, L: ReturnType<typeof layout>, o: string): string => {
    const c = coordinates(w, L.kept.map((j) => L.sizes[j]!), o, L.kept.map(() => true), "k");
    const base = L.kept.reduce((acc, j, n) => add(acc, mul(c[n]!, L.strides[j]!)), "0u");
    w.line(`let base = ${base};`);
    return "base";
  };
  const outCount = (w: WgslWriter) => w.numel(ctx.node.outputs[0]!.type.shape, "outputs");
  const ty = WGSL_TYPE[dtype];
  const accKind = kind === "mean" || kind === "logsumexp" ? (kind === "mean" ? "sum" : "max") : kind;

  const finish = (acc: string, total: string): string => (kind === "mean" ? `${acc} / f32(${total})` : acc);

  const cpu = flatPass(ctx, countJs, outCount, (w) => {
    const L = layout(w);
    const base = baseOf(w, L, "i");
    // Nested loops over the reduced blocks; `stmt` gets the element's offset.
    const loops = (stmt: (at: string) => string): void => {
      const rec = (k: number, at: string): void => {
        if (k === L.reduced.length) {
          w.line(stmt(at));
          return;
        }
        const j = L.reduced[k]!;
        const r = `r${k}`;
        w.open(`for (var ${r} = 0u; ${r} < ${L.sizes[j]}; ${r}++)`);
        const next = add(at, mul(r, L.strides[j]!));
        if (k === L.reduced.length - 1) rec(k + 1, next);
        else {
          w.line(`let at${k} = ${next};`);
          rec(k + 1, `at${k}`);
        }
        w.close();
      };
      rec(0, base);
    };
    w.line(`var acc = ${identity(accKind, dtype)};`);
    loops((at) => (accKind === "sum" ? step("sum", dtype, "acc", `x0[${at}]`) : `let v = x0[${at}]; ${step(accKind, dtype, "acc", "v")}`));
    if (kind === "logsumexp") {
      w.line("// a finite max shifts the exponentials; ±inf or NaN is the answer itself");
      w.line("var sum = 0.0;");
      loops((at) => `sum += exp(x0[${at}] - acc);`);
      w.line("y0[i] = select(acc, acc + log(sum), is_finite(acc));");
    } else {
      w.line(`y0[i] = ${finish("acc", L.total)};`);
    }
  });

  const gpu = groupPass(ctx, countJs, outCount, (w) => {
    w.declare(`var<workgroup> part: array<${ty}, ${WG}>;`);
    const L = layout(w);
    const base = baseOf(w, L, "o");
    // Flat index r over the reduced elements, decomposed over the reduced blocks.
    const offsetOf = (r: string): string => {
      if (L.reduced.length === 1) return add(base, mul(r, L.strides[L.reduced[0]!]!));
      const c = coordinates(w, L.reduced.map((j) => L.sizes[j]!), r, L.reduced.map(() => true), "q");
      return L.reduced.reduce((acc, j, n) => add(acc, mul(c[n]!, L.strides[j]!)), base);
    };
    const strided = (body: (v: string) => void) => {
      w.open(`for (var r = lid; r < ${L.total}; r += ${WG}u)`);
      w.line(`let v = x0[${offsetOf("r")}];`);
      body("v");
      w.close();
    };
    w.line(`var acc = ${identity(accKind, dtype)};`);
    strided((v) => w.line(step(accKind, dtype, "acc", v)));
    treeReduce(w, "part", "acc", (a, b) => combine(accKind, dtype, a, b));
    if (kind === "logsumexp") {
      w.line("let m = part[0];");
      w.line("workgroupBarrier();");
      w.line("var sum = 0.0;");
      strided((v) => w.line(`sum += exp(${v} - m);`));
      treeReduce(w, "part", "sum", (a, b) => `${a} + ${b}`);
      w.line("// a finite max shifts the exponentials; ±inf or NaN is the answer itself");
      w.line("if (lid == 0u) { y0[o] = select(m, m + log(part[0]), is_finite(m)); }");
    } else {
      w.line(`if (lid == 0u) { y0[o] = ${finish("part[0]", L.total)}; }`);
    }
  });
  return { passes: [twoForms(cpu, gpu)] };
}

// ---------------------------------------------------------------------------
// Lines along one axis: argmax, softmax, log_softmax

/** [outer, len, inner] around the axis, and the offset of line `o`'s first element. */
function lineLayout(w: WgslWriter, shape: readonly Dim[], axis: number, o: string): { len: string; inner: string; base: string } {
  const len = w.dim(shape[axis]!, "len");
  const inner = w.numel(shape.slice(axis + 1), "inner");
  if (inner === "1u") {
    w.line(`let base = ${mul(o, len)};`);
  } else {
    const plane = w.product([len, inner], "plane");
    w.line(`let base = ${mul(`(${o} / ${inner})`, plane)} + ${o} % ${inner};`);
  }
  return { len, inner, base: "base" };
}

function linesCount(ctx: WgslEmitCtx, axis: number): { js: string; wgsl: (w: WgslWriter) => string } {
  const shape = ctx.node.inputs[0]!.type.shape;
  const rest = shape.filter((_, i) => i !== axis);
  return {
    js: rest.length ? rest.map((d) => `(${ctx.dimJs(d)})`).join(" * ") : "1",
    wgsl: (w) => w.numel(rest, "lines"),
  };
}

function emitArgmax(ctx: WgslEmitCtx): WgslKernelResult {
  const x = ctx.node.inputs[0]!.type;
  const axis = normAxis(ctx.node.attrs.axis as number, x.shape.length);
  const lines = linesCount(ctx, axis);
  const f32 = x.dtype === "f32";
  const cpu = flatPass(ctx, lines.js, lines.wgsl, (w) => {
    const { len, inner, base } = lineLayout(w, x.shape, axis, "i");
    const at = (j: string) => add(base, mul(j, inner));
    w.line("var best = 0u;");
    w.line(`var bestValue = x0[${base}];`);
    w.open(`for (var j = 1u; j < ${len}; j++)`);
    if (f32) w.line("if (is_nan(bestValue)) { break; }");
    w.line(`let v = x0[${at("j")}];`);
    w.line(f32 ? "// the first maximum wins; NaN counts as the largest value" : "// the first maximum wins");
    w.line(`if (v > bestValue${f32 ? " || is_nan(v)" : ""}) { best = j; bestValue = v; }`);
    w.close();
    w.line("y0[i] = i32(best);");
  });
  const gpu = groupPass(ctx, lines.js, lines.wgsl, (w) => {
    const ty = WGSL_TYPE[x.dtype];
    w.declare(`var<workgroup> values: array<${ty}, ${WG}>;\nvar<workgroup> indices: array<u32, ${WG}>;`);
    w.declare(
      f32
        ? `// (v, j) beats (b, k): NaN counts as the largest value; ties go to the smaller index.
fn beats(v: f32, j: u32, b: f32, k: u32) -> bool {
  if (is_nan(v) || is_nan(b)) { return is_nan(v) && (!is_nan(b) || j < k); }
  return v > b || (v == b && j < k);
}`
        : `// (v, j) beats (b, k): ties go to the smaller index.
fn beats(v: i32, j: u32, b: i32, k: u32) -> bool { return v > b || (v == b && j < k); }`,
    );
    const { len, inner, base } = lineLayout(w, x.shape, axis, "o");
    w.line(`var best = 0xffffffffu;`);
    w.line(`var bestValue = ${identity("max", x.dtype)};`);
    w.open(`for (var j = lid; j < ${len}; j += ${WG}u)`);
    w.line(`let v = x0[${add(base, mul("j", inner))}];`);
    w.line("if (beats(v, j, bestValue, best)) { best = j; bestValue = v; }");
    w.close();
    w.line("values[lid] = bestValue;");
    w.line("indices[lid] = best;");
    w.line("workgroupBarrier();");
    w.open(`for (var s = ${WG / 2}u; s > 0u; s >>= 1u)`);
    w.open("if (lid < s && beats(values[lid + s], indices[lid + s], values[lid], indices[lid]))");
    w.line("values[lid] = values[lid + s];");
    w.line("indices[lid] = indices[lid + s];");
    w.close();
    w.line("workgroupBarrier();");
    w.close();
    w.line("if (lid == 0u) { y0[o] = i32(indices[0]); }");
  });
  return { passes: [twoForms(cpu, gpu)] };
}

function emitSoftmax(ctx: WgslEmitCtx, log: boolean): WgslKernelResult {
  const x = ctx.node.inputs[0]!.type;
  const axis = normAxis(ctx.node.attrs.axis as number, x.shape.length);
  const lines = linesCount(ctx, axis);
  const write = (w: WgslWriter, at: string, total: string) => {
    if (log) w.line(`y0[${at}] = x0[${at}] - shift - ${total};`);
    else w.line(`y0[${at}] = exp(x0[${at}] - shift) / ${total};`);
  };
  const shiftComment = "// shift by the max so exp cannot overflow (by 0 when the max is ±inf or NaN, as the reference)";
  const cpu = flatPass(ctx, lines.js, lines.wgsl, (w) => {
    const { len, inner, base } = lineLayout(w, x.shape, axis, "i");
    const at = add(base, mul("j", inner));
    w.line(`var m = ${identity("max", "f32")};`);
    w.line(`for (var j = 0u; j < ${len}; j++) { let v = x0[${at}]; ${step("max", "f32", "m", "v")} }`);
    w.line(shiftComment);
    w.line("let shift = select(0.0, m, is_finite(m));");
    w.line("var sum = 0.0;");
    w.line(`for (var j = 0u; j < ${len}; j++) { sum += exp(x0[${at}] - shift); }`);
    if (log) w.line("let logSum = log(sum);");
    w.open(`for (var j = 0u; j < ${len}; j++)`);
    write(w, at, log ? "logSum" : "sum");
    w.close();
  });
  const gpu = groupPass(ctx, lines.js, lines.wgsl, (w) => {
    w.declare(`var<workgroup> part: array<f32, ${WG}>;`);
    const { len, inner, base } = lineLayout(w, x.shape, axis, "o");
    const at = add(base, mul("j", inner));
    const strided = `for (var j = lid; j < ${len}; j += ${WG}u)`;
    w.line(`var m = ${identity("max", "f32")};`);
    w.line(`${strided} { let v = x0[${at}]; ${step("max", "f32", "m", "v")} }`);
    treeReduce(w, "part", "m", (a, b) => combine("max", "f32", a, b));
    w.line(shiftComment);
    w.line("let shift = select(0.0, part[0], is_finite(part[0]));");
    w.line("workgroupBarrier();");
    w.line("var sum = 0.0;");
    w.line(`${strided} { sum += exp(x0[${at}] - shift); }`);
    treeReduce(w, "part", "sum", (a, b) => `${a} + ${b}`);
    w.line(log ? "let total = log(part[0]);" : "let total = part[0];");
    w.open(strided);
    write(w, at, "total");
    w.close();
  });
  return { passes: [twoForms(cpu, gpu)] };
}

// ---------------------------------------------------------------------------
// Backward ops: reduce_grad, softmax_grad

/**
 * reduce_grad(x, y, dy) -> dx. Every pass is a gather: each invocation owns
 * one element it writes, so no atomics are needed.
 *  * mean, logsumexp: one pass over x, y and dy read at the element's group
 *    (stride 0 along the reduced axes): dx = dy / count, dy · exp(x − y).
 *  * max, min: pass 1, one invocation per group, scans the group in flat
 *    order for its first extreme (strictly better replaces, the first NaN wins)
 *    and stores its flat offset in scratch t0; pass 2, one invocation per
 *    element of x, writes its group's dy if it is that element, else 0.
 */
function emitReduceGrad(ctx: WgslEmitCtx): WgslKernelResult {
  const kind = ctx.node.attrs.kind as ReduceKind;
  const axes = ctx.node.attrs.axes as number[];
  const x = ctx.node.inputs[0]!.type;
  const kept = x.shape.map((d, i) => (axes.includes(i) ? Dim.of(1) : d));
  const blocks = blocksOf(x.shape, axes);
  const [X, Y, G, DX] = [ctx.input(0), ctx.input(1), ctx.input(2), ctx.output(0)];
  const elementwise = kind === "mean" || kind === "logsumexp" || !blocks.some((b) => b.reduced);
  const elements = (w: WgslWriter) => w.numel(x.shape, "n");
  if (elementwise) {
    const pass = flatPass(ctx, ctx.inSizeJs(0), elements, (w) => {
      const [at, g] = broadcastOffsets(w, x.shape, [{ shape: x.shape }, { shape: kept }]);
      if (kind === "logsumexp") {
        w.line("// d logsumexp / dx = exp(x - y)");
        w.line(`${DX}[i] = ${G}[${g}] * exp(${X}[${at}] - ${Y}[${g}]);`);
      } else if (kind === "mean") {
        w.line(`${DX}[i] = ${G}[${g}] / f32(${w.numel(axes.map((k) => x.shape[k]!), "count")});`);
      } else {
        w.line("// max/min over size-1 axes only: every element is its group's extreme");
        w.line(`${DX}[i] = ${G}[${g}];`);
      }
    });
    return { passes: [pass] };
  }
  const groupsJs = ctx.inSizeJs(2);
  const find = flatPass(
    ctx,
    groupsJs,
    (w) => w.numel(kept, "groups"),
    (w) => {
      const sizes = blocks.map((b, j) => w.numel(b.dims, b.reduced ? `red${j}` : `kept${j}`));
      const strides = blocks.map((_, j) => w.product(sizes.slice(j + 1), `stride${j}`));
      const keptBlocks = blocks.flatMap((b, j) => (b.reduced ? [] : [j]));
      const reducedBlocks = blocks.flatMap((b, j) => (b.reduced ? [j] : []));
      const c = coordinates(w, keptBlocks.map((j) => sizes[j]!), "i", keptBlocks.map(() => true), "k");
      w.line(`let base = ${keptBlocks.reduce((acc, j, n) => add(acc, mul(c[n]!, strides[j]!)), "0u")};`);
      w.line(`// the first ${kind} of the group in flat order: a later value must be strictly ${kind === "max" ? "larger" : "smaller"}; the first NaN wins`);
      w.line("var best = base;");
      w.line(`var bestValue = ${X}[base];`);
      const rec = (k: number, at: string): void => {
        if (k === reducedBlocks.length) {
          w.line(`let v = ${X}[${at}];`);
          w.line(`if ((v ${kind === "max" ? ">" : "<"} bestValue || is_nan(v)) && !is_nan(bestValue)) { best = ${at}; bestValue = v; }`);
          return;
        }
        const j = reducedBlocks[k]!;
        const r = `r${k}`;
        w.open(`for (var ${r} = 0u; ${r} < ${sizes[j]}; ${r}++)`);
        const next = add(at, mul(r, strides[j]!));
        if (k === reducedBlocks.length - 1) rec(k + 1, next);
        else {
          w.line(`let at${k} = ${next};`);
          rec(k + 1, `at${k}`);
        }
        w.close();
      };
      rec(0, "base");
      w.line("t0[i] = best;");
    },
    { scratch: [{ type: "u32", size: groupsJs }] },
  );
  const scatter = flatPass(
    ctx,
    ctx.inSizeJs(0),
    elements,
    (w) => {
      const [g] = broadcastOffsets(w, x.shape, [{ shape: kept }]);
      w.line(`let g = ${g};`);
      w.line(`${DX}[i] = select(0.0, ${G}[g], t0[g] == i);`);
    },
    { scratch: [{ type: "u32", size: groupsJs }] },
  );
  return { passes: [find, scatter] };
}

/**
 * softmax_grad(y, dy) -> dx along one axis: s = Σ dy·y (softmax) or Σ dy
 * (log_softmax), then dx = y·(dy − s) or dy − exp(y)·s. "cpu": one invocation
 * per line; "gpu": one workgroup per line, the sum by a tree in workgroup
 * memory. Each line's outputs are written by its own invocation(s) only.
 */
function emitSoftmaxGrad(ctx: WgslEmitCtx): WgslKernelResult {
  const y = ctx.node.inputs[0]!.type;
  const log = ctx.node.attrs.log as boolean;
  const axis = normAxis(ctx.node.attrs.axis as number, y.shape.length);
  const lines = linesCount(ctx, axis);
  const [Y, G, DX] = [ctx.input(0), ctx.input(1), ctx.output(0)];
  const term = (at: string) => (log ? `${G}[${at}]` : `${G}[${at}] * ${Y}[${at}]`);
  const write = (w: WgslWriter, at: string, s: string) =>
    w.line(log ? `${DX}[${at}] = ${G}[${at}] - exp(${Y}[${at}]) * ${s};` : `${DX}[${at}] = ${Y}[${at}] * (${G}[${at}] - ${s});`);
  const comment = `// ${log ? "dx = dy - exp(y) * sum(dy)" : "dx = y * (dy - sum(dy * y))"} along the axis`;
  const cpu = flatPass(ctx, lines.js, lines.wgsl, (w) => {
    const { len, inner, base } = lineLayout(w, y.shape, axis, "i");
    const at = add(base, mul("j", inner));
    w.line(comment);
    w.line("var sum = 0.0;");
    w.line(`for (var j = 0u; j < ${len}; j++) { sum += ${term(at)}; }`);
    w.open(`for (var j = 0u; j < ${len}; j++)`);
    write(w, at, "sum");
    w.close();
  });
  const gpu = groupPass(ctx, lines.js, lines.wgsl, (w) => {
    w.declare(`var<workgroup> part: array<f32, ${WG}>;`);
    const { len, inner, base } = lineLayout(w, y.shape, axis, "o");
    const at = add(base, mul("j", inner));
    const strided = `for (var j = lid; j < ${len}; j += ${WG}u)`;
    w.line(comment);
    w.line("var sum = 0.0;");
    w.line(`${strided} { sum += ${term(at)}; }`);
    treeReduce(w, "part", "sum", (a, b) => `${a} + ${b}`);
    w.line("let total = part[0];");
    w.open(strided);
    write(w, at, "total");
    w.close();
  });
  return { passes: [twoForms(cpu, gpu)] };
}

export const kernels: WgslKernel[] = [
  { op: "reduce_grad", emit: emitReduceGrad },
  { op: "softmax_grad", emit: emitSoftmaxGrad },
  { op: "reduce", emit: emitReduce },
  { op: "argmax", emit: emitArgmax },
  { op: "softmax", emit: (ctx) => emitSoftmax(ctx, false) },
  { op: "log_softmax", emit: (ctx) => emitSoftmax(ctx, true) },
];

// Convolutions: conv1d/2d/3d and conv_transpose1d/2d/3d (DSL.md §6), PyTorch
// layouts and semantics. Also the sliding-window geometry (padding forms, the
// output-size rule, the "window larger than the padded input" check) that the
// pooling family shares.
//
// IR ops
//   conv              (x, w[, b]) {stride, dilation, padBegin, padEnd, groups, paddingMode, flip, hasBias}
//   conv_transpose    (x, w[, b]) {stride, dilation, padBegin, padEnd, outputPadding, groups, hasBias}
//   conv_grad_input   (dy, w)     conv's attrs + {inSpatial}: d loss / d x of conv (backward only)
//   conv_grad_weight  (x, dy)     conv's attrs + {kernel}:    d loss / d w of conv (backward only)
// All per-dim attributes are plain number arrays, one entry per spatial dim.
//
// Gradients (the rules sit next to each op; docs/gradients.md "## conv"):
//  * conv: dx = conv_grad_input(dy, w), dw = conv_grad_weight(x, dy),
//    db = Σ dy over batch and spatial axes (reduce sum).
//  * conv_transpose is the adjoint of conv in x: its forward pass *is* conv's
//    input gradient. So its dx is a plain forward `conv` of dy with the same
//    weight, stride, dilation, padding and groups (the fast forward kernels;
//    cropped by a slice when output_padding or a symbolic size make that conv's
//    output longer than x), and its dw is conv_grad_weight with the roles of x
//    and dy swapped (dw_t[c, f, k] = Σ x_t[n, c, i] · dy_t[n, f, i·s − pb + k·dl],
//    exactly conv's weight gradient with input dy_t and output gradient x_t).
//    No dedicated conv_transpose backward ops are needed.
// The two backward ops take the forward attrs unchanged; their reference
// semantics are the forward loops with the multiply-add turned into a scatter
// (obviously the adjoint), while the JS and WGSL kernels are gathers or
// owned-accumulator loops (no atomics).

import type { DiagnosticCode } from "../diagnostics.ts";
import { Dim } from "../ir/dims.ts";
import type { Value } from "../ir/graph.ts";
import { typeToString, type TensorType } from "../ir/types.ts";
import { indices, RefTensor } from "../reference/tensor.ts";
import type { ArgValue, Args } from "./args.ts";
import { defineOp, type BuiltinDef, type FailOptions, type GradCtx, type InferCtx, type LowerCtx, type OpDef } from "./op.ts";

type Fail = (code: DiagnosticCode, message: string, opts?: FailOptions) => never;

// ---------------------------------------------------------------------------
// Sliding-window geometry, shared with ops/pool.ts
// ---------------------------------------------------------------------------

/** The span a dilated window covers: dilation·(K − 1) + 1. */
export function effectiveWindow(k: number, dilation: number): number {
  return dilation * (k - 1) + 1;
}

/**
 * Output size of a sliding window along one dim:
 * floor((S + pb + pe − eff) / stride) + 1, or with ceil_mode PyTorch's rule:
 * round up, but drop a last window that would start inside the right padding.
 * That correction has a closed form (so symbolic S stays symbolic): the last
 * window start is bounded by S + pb − 1, i.e. O ≤ ceil((S + pb) / stride), and
 * both bounds fold into one floor division whose constant is
 * min(eff − pe, stride) − 1 instead of stride − 1.
 */
export function slidingOutputDim(s: Dim, eff: number, pb: number, pe: number, stride: number, ceilMode = false): Dim {
  const round = ceilMode ? Math.max(Math.min(eff - pe, stride), 1) - 1 : 0;
  return Dim.floordiv(s.add(pb + pe - eff + round), stride).add(1);
}

/**
 * Fails with E201 when the window is certainly larger than the padded input
 * (constant size, output < 1). Symbolic sizes are checked at run time.
 * Dims are 0-based axes of x; when several fail, the innermost is named.
 */
export function checkWindowsFit(
  ctx: InferCtx,
  x: TensorType,
  what: "kernel" | "window",
  kernel: readonly number[],
  dilation: readonly number[],
  padBegin: readonly number[],
  padEnd: readonly number[],
  out: readonly Dim[],
): void {
  for (let i = kernel.length - 1; i >= 0; i--) {
    const o = out[i]!.constValue();
    if (o === undefined || o >= 1) continue;
    const s = x.shape[2 + i]!.constValue()!;
    ctx.fail("E201", windowTooLargeMessage(what, kernel[i]!, dilation[i]!, s + padBegin[i]! + padEnd[i]!, 2 + i), {
      notes: [`input ${ctx.describeInput(0)}`],
      hint: windowTooLargeHint(what, kernel[i]!, dilation[i]!, s, padBegin[i]! + padEnd[i]! > 0),
    });
  }
}

export function windowTooLargeMessage(what: string, k: number, dilation: number, padded: number, axis: number): string {
  const eff = effectiveWindow(k, dilation);
  const dilated = eff === k ? "" : ` (dilated to ${eff})`;
  return `${what} ${k}${dilated} is larger than the padded input ${padded} along dim ${axis}`;
}

/**
 * The symmetric padding to suggest: enough for the window to fit, and for a
 * convolution kernel at least the size-preserving (K − 1)/2, which is what
 * users usually meant (kernel 5 on input 4: padding=2).
 */
function windowTooLargeHint(what: "kernel" | "window", k: number, dilation: number, s: number, hadPadding: boolean): string {
  const eff = effectiveWindow(k, dilation);
  const fits = Math.ceil((eff - s) / 2);
  const p = what === "kernel" ? Math.max(fits, Math.floor((eff - 1) / 2)) : fits;
  return `${hadPadding ? "use" : "add"} padding=${p} or use a smaller ${what}`;
}

/** A runtime guard for symbolic sizes: every output dim must be at least 1. */
export function checkOutputAtRunTime(
  fail: (message: string) => never,
  what: string,
  xShape: readonly number[],
  outShape: readonly number[],
  kernel: readonly number[],
  dilation: readonly number[],
  padBegin: readonly number[],
  padEnd: readonly number[],
): void {
  for (let i = kernel.length - 1; i >= 0; i--) {
    if (outShape[2 + i]! >= 1) continue;
    fail(windowTooLargeMessage(what, kernel[i]!, dilation[i]!, xShape[2 + i]! + padBegin[i]! + padEnd[i]!, 2 + i));
  }
}

export type PaddingName = "valid" | "same" | "full";

/** Padding as written; "same" and "full" are resolved once the input shape is known. */
export type PaddingSpec =
  | { readonly kind: "explicit"; readonly begin: number[]; readonly end: number[] }
  | { readonly kind: "same" }
  | { readonly kind: "full" };

/**
 * Reads `padding`: an int, a per-dim list, per-dim [begin, end] pairs or one
 * of the `names` allowed for this builtin.
 */
export function readPadding(args: Args, ctx: LowerCtx, name: string, d: number, names: readonly PaddingName[]): PaddingSpec {
  const v = args.raw(name);
  const expected = `an integer, a list of ${d} integers, a list of ${d} [begin, end] pairs${names.length ? ` or one of ${names.map((n) => `"${n}"`).join(", ")}` : ""}`;
  const wrong = (): never => ctx.fail("E403", `argument '${name}' must be ${expected}, found ${v ? describe(v) : "nothing"}`, { arg: name });
  const checked = (p: number): number => {
    if (p < 0) args.fail(name, `argument '${name}' must not be negative, found ${p}`);
    return p;
  };
  if (!v) return { kind: "explicit", begin: new Array<number>(d).fill(0), end: new Array<number>(d).fill(0) };
  if (v.kind === "number") {
    if (!v.isInt) return wrong();
    const p = checked(v.value);
    return { kind: "explicit", begin: new Array<number>(d).fill(p), end: new Array<number>(d).fill(p) };
  }
  if (v.kind === "string") {
    if (v.value === "valid" && names.includes("valid")) return readPaddingZero(d);
    if ((v.value === "same" || v.value === "full") && names.includes(v.value)) return { kind: v.value };
    return args.fail(name, `argument '${name}' must be ${expected}, found "${v.value}"`);
  }
  if (v.kind !== "list") return wrong();
  if (v.items.length !== d) args.fail(name, `argument '${name}' needs ${d} entries (one per spatial dim), found ${v.items.length}`);
  const begin: number[] = [];
  const end: number[] = [];
  for (const item of v.items) {
    if (item.kind === "number" && item.isInt) {
      begin.push(checked(item.value));
      end.push(item.value);
    } else if (item.kind === "list" && item.items.length === 2 && item.items.every((x) => x.kind === "number" && x.isInt)) {
      begin.push(checked((item.items[0] as { value: number }).value));
      end.push(checked((item.items[1] as { value: number }).value));
    } else {
      return wrong();
    }
  }
  return { kind: "explicit", begin, end };
}

function readPaddingZero(d: number): PaddingSpec {
  return { kind: "explicit", begin: new Array<number>(d).fill(0), end: new Array<number>(d).fill(0) };
}

function describe(v: ArgValue): string {
  switch (v.kind) {
    case "tensor":
      return "a tensor";
    case "number":
      return v.isInt ? `the integer ${v.value}` : `the number ${v.value}`;
    case "string":
      return `the string "${v.value}"`;
    case "list":
      return `a list of ${v.items.length}`;
    case "dim":
      return `the size ${v.value.toString()}`;
    case "bool":
      return `${v.value}`;
    case "none":
      return "none";
  }
}

/**
 * Concrete per-side padding. "same": output ceil(S / stride), total padding
 * max((O − 1)·stride + eff − S, 0), the odd cell at the end (as PyTorch and
 * TensorFlow). For a symbolic S the total only stays static with stride 1.
 * "full": eff − 1 on each side.
 */
export function resolvePadding(
  spec: PaddingSpec,
  x: TensorType,
  kernel: readonly number[],
  stride: readonly number[],
  dilation: readonly number[],
  fail: Fail,
): { padBegin: number[]; padEnd: number[] } {
  if (spec.kind === "explicit") return { padBegin: [...spec.begin], padEnd: [...spec.end] };
  const padBegin: number[] = [];
  const padEnd: number[] = [];
  kernel.forEach((k, i) => {
    const eff = effectiveWindow(k, dilation[i]!);
    let total: number;
    if (spec.kind === "full") {
      padBegin.push(eff - 1);
      padEnd.push(eff - 1);
      return;
    }
    const s = x.shape[2 + i]!;
    const sc = s.constValue();
    if (sc !== undefined) {
      const o = Math.ceil(sc / stride[i]!);
      total = Math.max((o - 1) * stride[i]! + eff - sc, 0);
    } else if (stride[i] === 1) {
      total = eff - 1;
    } else {
      return fail("E404", `padding="same" needs a static size along dim ${2 + i} when the stride is ${stride[i]}, found ${s.toString()}`, {
        arg: "padding",
        notes: [`with stride > 1 the padding "same" needs depends on the input size, but parameters and padding are fixed at compile time`],
        hint: "give explicit padding, or use stride=1",
      });
    }
    padBegin.push(Math.floor(total / 2));
    padEnd.push(total - Math.floor(total / 2));
  });
  return { padBegin, padEnd };
}

/** Reads an int-or-list argument whose entries must all be at least `min`. */
export function readInts(args: Args, name: string, d: number, dflt: number | readonly number[] | undefined, min: number): number[] {
  const v = args.ints(name, d, dflt);
  for (const n of v) {
    if (n < min) args.fail(name, `argument '${name}' must be ${min === 1 ? "positive" : `at least ${min}`}, found ${n}`);
  }
  return v;
}

/** x must be f32[N, C, S1..Sd]. */
export function checkSpatialInput(x: TensorType, d: number, fail: Fail, note: string): void {
  if (x.shape.length !== d + 2) {
    fail("E210", `expected an input of rank ${d + 2} ([N, C, ${spatialNames(d)}]), found rank ${x.shape.length} (${typeToString(x)})`, {
      notes: [note],
      hint: x.shape.length === d + 1 ? "add a channel axis, e.g. reshape(x, [N, 1, ...])" : undefined,
    });
  }
  if (x.dtype !== "f32") fail("E213", `expected an f32 input, found ${typeToString(x)}`, { notes: [note], hint: "cast it with cast(x, \"f32\")" });
}

function spatialNames(d: number): string {
  return d === 1 ? "L" : d === 2 ? "H, W" : "D, H, W";
}

// ---------------------------------------------------------------------------
// conv
// ---------------------------------------------------------------------------

export type ConvAttrs = {
  stride: number[];
  dilation: number[];
  padBegin: number[];
  padEnd: number[];
  groups: number;
  paddingMode: "zeros" | "circular";
  flip: boolean;
  hasBias: boolean;
  /**
   * How the code generators compute it, set by the conv-algorithm pass
   * (compiler/passes/conv-algorithm.ts); absent = "direct". It never changes
   * the result beyond float rounding, so the reference ignores it.
   */
  algorithm?: ConvAlgorithm;
};

export const CONV_ALGORITHMS = ["direct", "implicit_gemm", "fft"] as const;
export type ConvAlgorithm = (typeof CONV_ALGORITHMS)[number];

function checkWeights(inputs: readonly TensorType[], hasBias: boolean, want: { w: Dim[]; b: Dim }, ctx: InferCtx): void {
  const w = inputs[1];
  if (!w) ctx.fail("E401", "missing weight input");
  const wantW: TensorType = { dtype: "f32", shape: want.w };
  if (w.dtype !== "f32" || w.shape.length !== want.w.length || w.shape.some((d, i) => !d.equals(want.w[i]!))) {
    ctx.fail("E202", `weight must be ${typeToString(wantW)} for this input, found ${typeToString(w)}`, { notes: [`input ${ctx.describeInput(0)}`, `weight ${ctx.describeInput(1)}`] });
  }
  if (hasBias) {
    const b = inputs[2];
    if (!b) ctx.fail("E401", "missing bias input");
    if (b.dtype !== "f32" || b.shape.length !== 1 || !b.shape[0]!.equals(want.b)) {
      ctx.fail("E202", `bias must be f32[${want.b.toString()}], found ${typeToString(b)}`, { notes: [`bias ${ctx.describeInput(2)}`] });
    }
  }
}

function checkGroups(c: Dim, f: number, groups: number, fail: Fail, note: string): void {
  const cc = c.constValue();
  if (cc !== undefined && cc % groups !== 0) {
    fail("E211", `groups=${groups} does not divide the ${cc} input channels`, { arg: "groups", notes: [note], hint: `use a divisor of ${cc}` });
  }
  if (f % groups !== 0) fail("E211", `groups=${groups} does not divide filters=${f}`, { arg: "groups", hint: `use a multiple of ${groups} filters` });
}

const convOp = defineOp<ConvAttrs>({
  name: "conv",
  infer(inputs, a, ctx) {
    const x = inputs[0]!;
    const d = a.stride.length;
    const note = `input ${ctx.describeInput(0)}`;
    checkSpatialInput(x, d, ctx.fail.bind(ctx), note);
    const w = inputs[1];
    const f = w?.shape[0]?.constValue();
    if (!w || f === undefined || w.shape.length !== d + 2) {
      return ctx.fail("E202", `weight must be a static f32[filters, C/groups, ${"K, ".repeat(d).slice(0, -2)}], found ${w ? typeToString(w) : "nothing"}`);
    }
    checkGroups(x.shape[1]!, f, a.groups, ctx.fail.bind(ctx), note);
    if (a.algorithm !== undefined && !CONV_ALGORITHMS.includes(a.algorithm)) {
      ctx.fail("E202", `conv: unknown algorithm "${String(a.algorithm)}" (expected ${CONV_ALGORITHMS.map((n) => `"${n}"`).join(", ")})`);
    }
    const kernel = w.shape.slice(2).map((k) => k.constValue() ?? 0);
    checkWeights(inputs, a.hasBias, { w: [Dim.of(f), Dim.floordiv(x.shape[1]!, a.groups), ...kernel.map((k) => Dim.of(k))], b: Dim.of(f) }, ctx);
    const spatial = kernel.map((k, i) => slidingOutputDim(x.shape[2 + i]!, effectiveWindow(k, a.dilation[i]!), a.padBegin[i]!, a.padEnd[i]!, a.stride[i]!));
    checkWindowsFit(ctx, x, "kernel", kernel, a.dilation, a.padBegin, a.padEnd, spatial);
    return [{ dtype: "f32", shape: [x.shape[0]!, Dim.of(f), ...spatial] }];
  },
  evaluate([x, w, b], a, ctx) {
    const outShape = ctx.outShapes[0]!;
    const kernel = w!.shape.slice(2);
    checkOutputAtRunTime(ctx.fail, "kernel", x!.shape, outShape, kernel, a.dilation, a.padBegin, a.padEnd);
    const out = RefTensor.zeros(outShape);
    const filtersPerGroup = w!.shape[0]! / a.groups;
    const channelsPerGroup = w!.shape[1]!;
    const spatialIn = x!.shape.slice(2);
    const pos = new Array<number>(kernel.length);
    for (const o of indices(outShape)) {
      const [n, f] = o as [number, number];
      const firstChannel = Math.floor(f / filtersPerGroup) * channelsPerGroup;
      let acc = a.hasBias ? b!.get(f) : 0;
      for (const k of indices(kernel)) {
        if (!samplePosition(o, k, a, spatialIn, pos)) continue;
        const wk = a.flip ? k.map((ki, i) => kernel[i]! - 1 - ki) : k;
        for (let c = 0; c < channelsPerGroup; c++) {
          acc += x!.get(n, firstChannel + c, ...pos) * w!.get(f, c, ...wk);
        }
      }
      out.set(acc, ...o);
    }
    return [out];
  },
  grad([x, w], _outs, [dy], a, ctx) {
    if (!dy) return [];
    const d = a.stride.length;
    const dx = ctx.emit1("conv_grad_input", [dy, w!], { ...a, inSpatial: x!.type.shape.slice(2) });
    const kernel = w!.type.shape.slice(2).map((k) => k.constValue()!);
    const dw = ctx.emit1("conv_grad_weight", [x!, dy], { ...a, kernel });
    return a.hasBias ? [dx, dw, biasGrad(dy, d, ctx)] : [dx, dw];
  },
});

/** d loss / d bias of a convolution: dy summed over the batch and spatial axes. */
function biasGrad(dy: Value, d: number, ctx: GradCtx): Value {
  return ctx.emit1("reduce", [dy], { kind: "sum", axes: [0, ...range(d, (i) => 2 + i)], keepdims: false });
}

function range(n: number, f: (i: number) => number): number[] {
  return Array.from({ length: n }, (_, i) => f(i));
}

/**
 * The input position window offset `k` of output `o` reads, written to `pos`;
 * false when it falls in zero padding. Circular mode wraps around (PyTorch's
 * circular pad followed by a valid convolution; wrapping more than once is
 * allowed here where PyTorch refuses).
 */
function samplePosition(o: readonly number[], k: readonly number[], a: ConvAttrs, spatialIn: readonly number[], pos: number[]): boolean {
  for (let i = 0; i < k.length; i++) {
    let p = o[2 + i]! * a.stride[i]! - a.padBegin[i]! + k[i]! * a.dilation[i]!;
    const s = spatialIn[i]!;
    if (p < 0 || p >= s) {
      if (a.paddingMode !== "circular") return false;
      p = ((p % s) + s) % s;
    }
    pos[i] = p;
  }
  return true;
}

// ---------------------------------------------------------------------------
// conv_transpose
// ---------------------------------------------------------------------------

export type ConvTransposeAttrs = {
  stride: number[];
  dilation: number[];
  padBegin: number[];
  padEnd: number[];
  outputPadding: number[];
  groups: number;
  hasBias: boolean;
};

/** O = (S − 1)·stride − pb − pe + dilation·(K − 1) + output_padding + 1. */
function transposedOutputDim(s: Dim, k: number, a: ConvTransposeAttrs, i: number): Dim {
  return s.sub(1).scale(a.stride[i]!).add(effectiveWindow(k, a.dilation[i]!) - a.padBegin[i]! - a.padEnd[i]! + a.outputPadding[i]!);
}

const convTransposeOp = defineOp<ConvTransposeAttrs>({
  name: "conv_transpose",
  infer(inputs, a, ctx) {
    const x = inputs[0]!;
    const d = a.stride.length;
    const note = `input ${ctx.describeInput(0)}`;
    checkSpatialInput(x, d, ctx.fail.bind(ctx), note);
    const w = inputs[1];
    const fg = w?.shape[1]?.constValue();
    if (!w || fg === undefined || w.shape.length !== d + 2) {
      return ctx.fail("E202", `weight must be a static f32[C, filters/groups, ${"K, ".repeat(d).slice(0, -2)}], found ${w ? typeToString(w) : "nothing"}`);
    }
    const f = fg * a.groups;
    checkGroups(x.shape[1]!, f, a.groups, ctx.fail.bind(ctx), note);
    const kernel = w.shape.slice(2).map((k) => k.constValue() ?? 0);
    checkWeights(inputs, a.hasBias, { w: [x.shape[1]!, Dim.of(fg), ...kernel.map((k) => Dim.of(k))], b: Dim.of(f) }, ctx);
    const spatial = kernel.map((k, i) => transposedOutputDim(x.shape[2 + i]!, k, a, i));
    spatial.forEach((o, i) => {
      const c = o.constValue();
      if (c !== undefined && c < 1) {
        ctx.fail("E212", `the output size along dim ${2 + i} would be ${c}: padding ${a.padBegin[i]}+${a.padEnd[i]} crops more than the ${c + a.padBegin[i]! + a.padEnd[i]!} cells the transposed convolution produces`, {
          notes: [note],
          hint: "use less padding",
        });
      }
    });
    return [{ dtype: "f32", shape: [x.shape[0]!, Dim.of(f), ...spatial] }];
  },
  evaluate([x, w, b], a, ctx) {
    const outShape = ctx.outShapes[0]!;
    const kernel = w!.shape.slice(2);
    outShape.slice(2).forEach((o, i) => {
      if (o < 1) ctx.fail(`the output size along dim ${2 + i} would be ${o}: the padding crops everything the transposed convolution produces`);
    });
    const out = RefTensor.zeros(outShape);
    const filtersPerGroup = w!.shape[1]!;
    const channelsPerGroup = x!.shape[1]! / a.groups;
    if (a.hasBias) for (const o of indices(outShape)) out.set(b!.get(o[1]!), ...o);
    const spatialOut = outShape.slice(2);
    const pos = new Array<number>(kernel.length);
    // Scatter: input cell i, kernel offset k lands at i·stride − pb + k·dilation,
    // the exact adjoint of conv's gather.
    for (const xi of indices(x!.shape)) {
      const [n, c] = xi as [number, number];
      const v = x!.get(...xi);
      const firstFilter = Math.floor(c / channelsPerGroup) * filtersPerGroup;
      for (const k of indices(kernel)) {
        let inside = true;
        for (let i = 0; i < k.length; i++) {
          pos[i] = xi[2 + i]! * a.stride[i]! - a.padBegin[i]! + k[i]! * a.dilation[i]!;
          if (pos[i]! < 0 || pos[i]! >= spatialOut[i]!) inside = false;
        }
        if (!inside) continue;
        for (let fl = 0; fl < filtersPerGroup; fl++) {
          const at = [n, firstFilter + fl, ...pos];
          out.set(out.get(...at) + v * w!.get(c, fl, ...k), ...at);
        }
      }
    }
    return [out];
  },
  grad([x, w], _outs, [dy], a, ctx) {
    if (!dy) return [];
    const d = a.stride.length;
    // conv_transpose(·, w) is the adjoint of conv(·, w) with the same geometry (no flip, zero padding).
    const asConv: ConvAttrs = { stride: a.stride, dilation: a.dilation, padBegin: a.padBegin, padEnd: a.padEnd, groups: a.groups, paddingMode: "zeros", flip: false, hasBias: false };
    // dx: the forward conv of dy. Its natural output length is
    // floor(((S − 1)·s + op − pe + pe′) / s) + 1, so the padding at the end is chosen as
    // pe′ = max(pe − op, 0): exactly S when op − pe + pe′ < s; otherwise (output_padding ≥
    // stride, allowed when dilation > output_padding) the few extra cells are cropped,
    // as they are where the shape rule cannot see it is S (symbolic S with stride > 1).
    const padEnd = a.padEnd.map((pe, i) => Math.max(pe - a.outputPadding[i]!, 0));
    let dx = ctx.emit1("conv", [dy, w!], { ...asConv, padEnd });
    x!.type.shape.slice(2).forEach((s, i) => {
      if (dx.type.shape[2 + i]!.equals(s)) return;
      dx = ctx.emit1("slice", [dx], { axis: 2 + i, start: 0, end: s.constValue() ?? s, step: 1 });
    });
    // dw: conv's weight gradient with input dy and output gradient x.
    const kernel = w!.type.shape.slice(2).map((k) => k.constValue()!);
    const dw = ctx.emit1("conv_grad_weight", [dy, x!], { ...asConv, kernel });
    return a.hasBias ? [dx, dw, biasGrad(dy, d, ctx)] : [dx, dw];
  },
});

// ---------------------------------------------------------------------------
// Backward ops
// ---------------------------------------------------------------------------

export type ConvGradInputAttrs = ConvAttrs & {
  /** The spatial sizes of conv's input x (the output's; they cannot be recovered from dy's). */
  inSpatial: Dim[];
};

/**
 * conv_grad_input(dy, w) = d loss / d x of conv(x, w) given dy = d loss / d y:
 * dx[n, c, p] = Σ dy[n, f, o] · w[f, c − g·Cg, tap(k)] over the filters f of c's group
 * and the (o, k) whose sample position is p, wrapping around when circular (so the
 * padded cells, which are copies of real ones, add their gradient back to them).
 */
const convGradInputOp = defineOp<ConvGradInputAttrs>({
  name: "conv_grad_input",
  infer(inputs, a, ctx) {
    const [dy, w] = inputs as [TensorType, TensorType];
    const d = a.stride.length;
    const kernel = w.shape.slice(2).map((k) => k.constValue());
    if (dy.shape.length !== d + 2 || w.shape.length !== d + 2 || a.inSpatial.length !== d || kernel.some((k) => k === undefined)) {
      ctx.fail("E202", `conv_grad_input needs dy and w of rank ${d + 2} and ${d} input sizes, found ${typeToString(dy)}, ${typeToString(w)}`);
    }
    const f = w.shape[0]!;
    if (!dy.shape[1]!.equals(f)) ctx.fail("E202", `conv_grad_input: dy has ${dy.shape[1]!.toString()} channels, the weight ${f.toString()} filters`);
    a.inSpatial.forEach((s, i) => {
      const o = slidingOutputDim(s, effectiveWindow(kernel[i]!, a.dilation[i]!), a.padBegin[i]!, a.padEnd[i]!, a.stride[i]!);
      if (!o.equals(dy.shape[2 + i]!)) ctx.fail("E202", `conv_grad_input: dy's size ${dy.shape[2 + i]!.toString()} along dim ${2 + i} is not conv's output size ${o.toString()}`);
    });
    return [{ dtype: "f32", shape: [dy.shape[0]!, w.shape[1]!.scale(a.groups), ...a.inSpatial] }];
  },
  evaluate([dy, w], a, ctx) {
    const outShape = ctx.outShapes[0]!;
    const out = RefTensor.zeros(outShape);
    const kernel = w!.shape.slice(2);
    const filtersPerGroup = w!.shape[0]! / a.groups;
    const channelsPerGroup = w!.shape[1]!;
    const spatialIn = outShape.slice(2);
    const pos = new Array<number>(kernel.length);
    // conv's loops, with y[o] += x[pos]·w turned into dx[pos] += dy[o]·w.
    for (const o of indices(dy!.shape)) {
      const [n, f] = o as [number, number];
      const firstChannel = Math.floor(f / filtersPerGroup) * channelsPerGroup;
      const g = dy!.get(...o);
      for (const k of indices(kernel)) {
        if (!samplePosition(o, k, a, spatialIn, pos)) continue;
        const wk = a.flip ? k.map((ki, i) => kernel[i]! - 1 - ki) : k;
        for (let c = 0; c < channelsPerGroup; c++) {
          const at = [n, firstChannel + c, ...pos];
          out.set(out.get(...at) + g * w!.get(f, c, ...wk), ...at);
        }
      }
    }
    return [out];
  },
});

export type ConvGradWeightAttrs = ConvAttrs & {
  /** The kernel sizes (the weight's spatial dims). */
  kernel: number[];
};

/**
 * conv_grad_weight(x, dy) = d loss / d w of conv(x, w) given dy = d loss / d y:
 * dw[f, c, tap(k)] = Σ over n and every output position o of dy[n, f, o] · x[n, g·Cg + c, pos(o, k)].
 * dy's spatial sizes are taken as they are (not checked against conv's output
 * size): conv_transpose's weight gradient uses this op with x and dy swapped,
 * where dy's positions may reach past x (those are skipped, zero padding).
 */
const convGradWeightOp = defineOp<ConvGradWeightAttrs>({
  name: "conv_grad_weight",
  infer(inputs, a, ctx) {
    const [x, dy] = inputs as [TensorType, TensorType];
    const d = a.stride.length;
    if (x.shape.length !== d + 2 || dy.shape.length !== d + 2 || a.kernel.length !== d) {
      ctx.fail("E202", `conv_grad_weight needs x and dy of rank ${d + 2} and ${d} kernel sizes, found ${typeToString(x)}, ${typeToString(dy)}`);
    }
    const f = dy.shape[1]!.constValue();
    const c = x.shape[1]!.constValue();
    if (f === undefined || c === undefined || f % a.groups !== 0 || c % a.groups !== 0) {
      return ctx.fail("E202", `conv_grad_weight needs static channel counts divisible by groups=${a.groups}, found ${typeToString(x)}, ${typeToString(dy)}`);
    }
    return [{ dtype: "f32", shape: [Dim.of(f), Dim.of(c / a.groups), ...a.kernel.map((k) => Dim.of(k))] }];
  },
  evaluate([x, dy], a, ctx) {
    const outShape = ctx.outShapes[0]!;
    const out = RefTensor.zeros(outShape);
    const kernel = a.kernel;
    const filtersPerGroup = outShape[0]! / a.groups;
    const channelsPerGroup = outShape[1]!;
    const spatialIn = x!.shape.slice(2);
    const pos = new Array<number>(kernel.length);
    // conv's loops, with y[o] += x[pos]·w turned into dw += dy[o]·x[pos].
    for (const o of indices(dy!.shape)) {
      const [n, f] = o as [number, number];
      const firstChannel = Math.floor(f / filtersPerGroup) * channelsPerGroup;
      const g = dy!.get(...o);
      for (const k of indices(kernel)) {
        if (!samplePosition(o, k, a, spatialIn, pos)) continue;
        const wk = a.flip ? k.map((ki, i) => kernel[i]! - 1 - ki) : k;
        for (let c = 0; c < channelsPerGroup; c++) {
          const at = [f, c, ...wk];
          out.set(out.get(...at) + g * x!.get(n, firstChannel + c, ...pos), ...at);
        }
      }
    }
    return [out];
  },
});

// ---------------------------------------------------------------------------
// Builtins
// ---------------------------------------------------------------------------

function spatialRank(callee: string): number {
  return Number(/(\d)d$/.exec(callee)![1]);
}

/** `bias=true|false|<tensor>`: whether the layer has a bias, and whether it was given. */
function readBias(args: Args, ctx: LowerCtx): "param" | "tensor" | "none" {
  const v = args.raw("bias");
  if (!v) return "param";
  if (v.kind === "bool") return v.value ? "param" : "none";
  if (v.kind === "tensor") return "tensor";
  return ctx.fail("E403", `argument 'bias' must be true, false or a tensor, found ${describe(v)}`, { arg: "bias" });
}

/** A static dim of a tied weight, for defaults of filters and kernel. */
function givenWeightDims(args: Args): number[] | undefined {
  const v = args.raw("weight");
  if (v?.kind !== "tensor") return undefined;
  const dims = v.value.type.shape.map((d) => d.constValue());
  return dims.every((d) => d !== undefined) ? (dims as number[]) : undefined;
}

/** PyTorch's default for conv weights and biases: U(−1/√fan_in, 1/√fan_in). */
function uniformInit(fanIn: number) {
  const bound = 1 / Math.sqrt(fanIn);
  return { kind: "uniform" as const, lo: -bound, hi: bound };
}

/** C of x as a static number: the weight shape needs it. */
function staticChannels(x: Value, ctx: LowerCtx): number {
  const c = x.type.shape[1]!.constValue();
  if (c === undefined) {
    ctx.fail("E212", `the channel dim (dim 1) must be a static size to shape the weight, found ${x.type.shape[1]!.toString()}`, {
      notes: [`input ${ctx.describe(x)}`],
      hint: "parameter shapes cannot depend on symbols such as N or L",
    });
  }
  return c;
}

const convBuiltin: BuiltinDef = {
  names: ["conv1d", "conv2d", "conv3d"],
  ownsParams: true,
  signature: () => ["x", "filters", "kernel", "stride", "padding", "dilation", "groups", "bias", "padding_mode", "flip", "weight"],
  lower(args, ctx) {
    const d = spatialRank(ctx.callee);
    const x = args.tensor("x");
    checkSpatialInput(x.type, d, ctx.fail, `input ${ctx.describe(x)}`);
    const given = givenWeightDims(args);
    const filters = args.positiveInt("filters", given?.[0]);
    const kernel = readInts(args, "kernel", d, given && given.length === d + 2 ? given.slice(2) : undefined, 1);
    const stride = readInts(args, "stride", d, 1, 1);
    const dilation = readInts(args, "dilation", d, 1, 1);
    const groups = args.positiveInt("groups", 1);
    const paddingMode = args.string("padding_mode", ["zeros", "circular"] as const, "zeros");
    const flip = args.bool("flip", false);
    const spec = readPadding(args, ctx, "padding", d, ["valid", "same", "full"]);
    const { padBegin, padEnd } = resolvePadding(spec, x.type, kernel, stride, dilation, ctx.fail);
    const c = staticChannels(x, ctx);
    checkGroups(Dim.of(c), filters, groups, ctx.fail, `input ${ctx.describe(x)}`);

    const fanIn = (c / groups) * kernel.reduce((p, k) => p * k, 1);
    const w = ctx.param("weight", { dtype: "f32", shape: [filters, c / groups, ...kernel].map((n) => Dim.of(n)) }, uniformInit(fanIn));
    const bias = readBias(args, ctx);
    const inputs = [x, w];
    if (bias !== "none") {
      inputs.push(ctx.param("bias", { dtype: "f32", shape: [Dim.of(filters)] }, uniformInit(fanIn), { argName: bias === "tensor" ? "bias" : "" }));
    }
    const attrs: ConvAttrs = { stride, dilation, padBegin, padEnd, groups, paddingMode, flip, hasBias: bias !== "none" };
    return ctx.emit1("conv", inputs, attrs);
  },
};

const convTransposeBuiltin: BuiltinDef = {
  names: ["conv_transpose1d", "conv_transpose2d", "conv_transpose3d"],
  ownsParams: true,
  signature: () => ["x", "filters", "kernel", "stride", "padding", "output_padding", "dilation", "groups", "bias", "weight"],
  lower(args, ctx) {
    const d = spatialRank(ctx.callee);
    const x = args.tensor("x");
    checkSpatialInput(x.type, d, ctx.fail, `input ${ctx.describe(x)}`);
    const given = givenWeightDims(args);
    const groups = args.positiveInt("groups", 1);
    const filters = args.positiveInt("filters", given ? given[1]! * groups : undefined);
    const kernel = readInts(args, "kernel", d, given && given.length === d + 2 ? given.slice(2) : undefined, 1);
    const stride = readInts(args, "stride", d, 1, 1);
    const dilation = readInts(args, "dilation", d, 1, 1);
    const outputPadding = readInts(args, "output_padding", d, 0, 0);
    outputPadding.forEach((op, i) => {
      if (op >= stride[i]! && op >= dilation[i]!) {
        args.fail("output_padding", `output_padding ${op} must be smaller than the stride (${stride[i]}) or the dilation (${dilation[i]}) along dim ${2 + i}`, "as in PyTorch: output_padding only picks among the output sizes that the stride makes ambiguous");
      }
    });
    const spec = readPadding(args, ctx, "padding", d, ["valid"]);
    const { padBegin, padEnd } = resolvePadding(spec, x.type, kernel, stride, dilation, ctx.fail);
    const c = staticChannels(x, ctx);
    checkGroups(Dim.of(c), filters, groups, ctx.fail, `input ${ctx.describe(x)}`);

    // PyTorch computes ConvTranspose's fan-in from weight dim 1: filters/groups · ∏K.
    const fanIn = (filters / groups) * kernel.reduce((p, k) => p * k, 1);
    const w = ctx.param("weight", { dtype: "f32", shape: [c, filters / groups, ...kernel].map((n) => Dim.of(n)) }, uniformInit(fanIn));
    const bias = readBias(args, ctx);
    const inputs = [x, w];
    if (bias !== "none") {
      inputs.push(ctx.param("bias", { dtype: "f32", shape: [Dim.of(filters)] }, uniformInit(fanIn), { argName: bias === "tensor" ? "bias" : "" }));
    }
    const attrs: ConvTransposeAttrs = { stride, dilation, padBegin, padEnd, outputPadding, groups, hasBias: bias !== "none" };
    return ctx.emit1("conv_transpose", inputs, attrs);
  },
};

export const ops: OpDef[] = [convOp, convTransposeOp, convGradInputOp, convGradWeightOp];
export const builtins: BuiltinDef[] = [convBuiltin, convTransposeBuiltin];

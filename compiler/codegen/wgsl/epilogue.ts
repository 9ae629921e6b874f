// The WGSL side of epilogue fusion (op fused_epilogue, compiler/ops/fused.ts;
// the pass is compiler/passes/fuse-epilogue.ts, the JS twin ../js/epilogue.ts).
//
// A fused_epilogue node is emitted by the base op's own kernel (conv or
// einsum) given a view of the base node and an `epilogue` on its context.
// Every place a base kernel stores a result element goes through
// `storeResult`: without an epilogue it is the plain `y0[i] = v;`, with one
// it is a call of a module-scope function
//
//   fn epilogue(i: u32, c1: u32, v: f32) { ... }
//
// that runs the node's elementwise program on v (the fused_elementwise
// templates, stepValue), reading each extra input e_j at its broadcast offset,
// and stores outputs[0] to y0[i] and the extra outputs to y1.. at i. One
// function instead of inline code at each site keeps a 4 × 16 register tile's
// 64 stores readable; drivers inline it. Coordinates a store site knows
// cheaply (a conv's filter index for a per-channel bias) are passed as
// arguments c<dim>; other coordinates are derived from the flat index i with
// one division and one modulo per group of neighbouring dims that broadcast
// alike (as broadcastOffsets does for elementwise maps).
//
// With `pool` (stage 2: a conv, then a non-overlapping max/avg pool), the
// function returns outputs[0] instead of storing it, and conv-pool.ts reduces
// each window's values (WgslEpilogue.value) and stores the pooled result.
//
// The extra inputs and outputs are the fused node's own (x<k+j>, y1, ...), so
// program.ts declares and binds them like any other binding the code names.

import type { Dim } from "../../ir/dims.ts";
import type { Attrs, Node, Value } from "../../ir/graph.ts";
import type { DType, TensorType } from "../../ir/types.ts";
import { coversText, epilogueBaseType, epilogueStepTypes, internalCtx, isLoad, type EpilogueAttrs } from "../../ops/fused.ts";
import { BINARY, binaryGradValueWgsl, castTemplate, helpersFor, UNARY, UNARY_GRAD } from "./elementwise.ts";
import { dimToJs, productJs, productWgsl, WGSL_TYPE, type WgslEmitCtx } from "./kernel.ts";

/**
 * The WebGPU target emits fused_epilogue nodes with `pool` (conv + epilogue +
 * non-overlapping max/avg pool, conv-pool.ts; tested in test/webgpu/epilogue.test.ts).
 */
export const WGSL_SUPPORTS_POOL_EPILOGUE = true;

/** Where a base kernel stores one element of its result. */
export interface StoreSite {
  /** Flat row-major offset of the element in the base result (an i32 or u32 expression). */
  readonly flat: string;
  /** The element's coordinate along `dim` of the base result, when the site knows it cheaply. */
  coord?(dim: number): string | undefined;
}

export interface Epilogue {
  /** Code lines that store `value` (the base result at `site`) through the epilogue. */
  store(site: StoreSite, value: string): string[];
}

/** The lines storing one result element: through the context's epilogue, or `y0[flat] = value;`. */
export function storeResult(ctx: WgslEmitCtx, site: StoreSite, value: string): string[] {
  return ctx.epilogue ? ctx.epilogue.store(site, value) : [`${ctx.output(0)}[${site.flat}] = ${value};`];
}

/** One step's value from its argument names (the elementwise family's templates; shared with fused_elementwise). */
export function stepValue(op: string, args: readonly string[], argTypes: readonly DType[], attrs: Attrs, outType: DType): string {
  const [a, b, c] = args as [string, string, string];
  if (op in BINARY) return BINARY[op]!(a, b, argTypes[0]!);
  if (op in UNARY) return UNARY[op]!(a, attrs, argTypes[0]!);
  switch (op) {
    case "cast":
      return castTemplate(argTypes[0]!, outType)(a);
    case "where":
      return `select(${c}, ${b}, ${a} != 0u)`;
    case "unary_grad":
      return UNARY_GRAD[attrs.fn as string]!(a, b, c, attrs);
    case "binary_grad":
      return binaryGradValueWgsl(attrs.fn as string, attrs.wrt as number, a, b, c);
  }
  throw new Error(`internal: no WGSL template for fused step ${op}`);
}

/** The emit context of the base kernel: sizes and types of the view, binding names and dims as the fused node's. */
export function viewCtx(ctx: WgslEmitCtx, view: Node, epilogue: Epilogue): WgslEmitCtx {
  const shape = (v: Value) => v.type.shape.map((d) => ctx.dim(d));
  const shapeJs = (v: Value) => v.type.shape.map((d) => dimToJs(d));
  return {
    ...ctx,
    node: view,
    inShape: (i) => shape(view.inputs[i]!),
    outShape: (i) => shape(view.outputs[i]!),
    inSize: (i) => productWgsl(shape(view.inputs[i]!)),
    outSize: (i) => productWgsl(shape(view.outputs[i]!)),
    inSizeJs: (i) => productJs(shapeJs(view.inputs[i]!)),
    outSizeJs: (i) => productJs(shapeJs(view.outputs[i]!)),
    inType: (i) => WGSL_TYPE[view.inputs[i]!.type.dtype],
    outType: (i) => WGSL_TYPE[view.outputs[i]!.type.dtype],
    epilogue,
  };
}

/** How extra input j is read: the whole result's index, one element, or a sum of coordinate terms. */
type Access = { kind: "full" } | { kind: "scalar" } | { kind: "partial"; groups: { dims: number[]; stride: string }[] };

/**
 * The epilogue of one fused_epilogue node: `store` writes a call of `fn
 * epilogue`, whose signature (the coordinates passed) is fixed by the first
 * store site; `declarations()` gives the function, the helpers it calls and
 * the comment naming the covered IR nodes, to put in front of the base
 * kernel's code.
 */
export class WgslEpilogue implements Epilogue {
  private readonly attrs: EpilogueAttrs;
  private readonly result: TensorType;
  private readonly types: TensorType[];
  /** Size of every dim of the base result (WGSL u32). */
  private readonly sizes: string[];
  private readonly access: Access[];
  /** Dims whose coordinate is a parameter of `fn epilogue` (set by the first store site). */
  private params?: number[];

  constructor(private readonly ctx: WgslEmitCtx) {
    this.attrs = ctx.node.attrs as unknown as EpilogueAttrs;
    const inputs = ctx.node.inputs.map((v) => v.type);
    this.result = epilogueBaseType(inputs, this.attrs, internalCtx);
    this.types = epilogueStepTypes(inputs, this.attrs, internalCtx);
    this.sizes = this.result.shape.map((d) => ctx.dim(d));
    this.access = ctx.node.inputs.slice(this.attrs.baseInputs).map((v) => this.accessOf(v.type.shape));
  }

  private accessOf(shape: readonly Dim[]): Access {
    const out = this.result.shape;
    const rank = out.length;
    const groups: { dims: number[]; broadcast: boolean }[] = [];
    out.forEach((d, i) => {
      if (d.equals(1)) return;
      const k = i - (rank - shape.length);
      const broadcast = k < 0 || shape[k]!.equals(1);
      const last = groups[groups.length - 1];
      if (last && last.broadcast === broadcast) last.dims.push(i);
      else groups.push({ dims: [i], broadcast });
    });
    if (groups.every((g) => g.broadcast)) return { kind: "scalar" };
    if (groups.every((g) => !g.broadcast)) return { kind: "full" };
    // Stride of a kept group in the input: the product of the later kept dims' sizes.
    const kept: { dims: number[]; stride: string }[] = [];
    let after: string[] = [];
    for (let j = groups.length - 1; j >= 0; j--) {
      const g = groups[j]!;
      if (g.broadcast) continue;
      kept.unshift({ dims: g.dims, stride: productWgsl(after) });
      after = [...after, ...g.dims.map((d) => this.sizes[d]!)];
    }
    return { kind: "partial", groups: kept };
  }

  /** Dims whose coordinate a store site could pass: the single-dim groups of partially broadcast inputs. */
  private wanted(): number[] {
    const dims = new Set<number>();
    for (const a of this.access) if (a.kind === "partial") for (const g of a.groups) if (g.dims.length === 1) dims.add(g.dims[0]!);
    return [...dims].sort((p, q) => p - q);
  }

  /** The coordinate along dims `dims` (neighbours) of flat index `i`: (i / after) % size, trivial parts left out. */
  private derived(i: string, dims: readonly number[]): string {
    const last = dims[dims.length - 1]!;
    const after = productWgsl(this.sizes.slice(last + 1));
    const outermost = this.result.shape.slice(0, dims[0]).every((d) => d.equals(1));
    const q = after === "1u" ? i : `${paren(i)} / ${paren(after)}`;
    return outermost ? q : `(${q}) % ${paren(productWgsl(dims.map((d) => this.sizes[d]!)))}`;
  }

  store(site: StoreSite, value: string): string[] {
    if (this.attrs.pool) throw new Error("internal: a pooling epilogue stores pooled values (conv-pool.ts), not the base result");
    return [`${this.call(site, value)};`];
  }

  /** With `pool`: the program's result (outputs[0]) at a site of the base result, as an expression. */
  value(site: StoreSite, value: string): string {
    if (!this.attrs.pool) throw new Error("internal: an epilogue without pool stores its results");
    return this.call(site, value);
  }

  private call(site: StoreSite, value: string): string {
    this.params ??= this.wanted().filter((d) => site.coord?.(d) !== undefined);
    const flat = `u32(${site.flat})`;
    const coords = this.params.map((d) => {
      const c = site.coord?.(d);
      return c !== undefined ? `u32(${c})` : this.derived(flat, [d]);
    });
    return `epilogue(${[flat, ...coords, value].join(", ")})`;
  }

  /** Module-scope code for the kernel: the covers comment, the helpers the program calls, and `fn epilogue`. */
  declarations(): string {
    const params = this.params ?? [];
    const k = this.attrs.baseInputs;
    const lines: string[] = [];
    const loaded = this.access.map((a, j) => {
      const name = `e${j}`;
      const at = a.kind === "full" ? "i" : a.kind === "scalar" ? "0u" : this.offset(a.groups, params);
      lines.push(`let ${name} = ${this.ctx.input(k + j)}[${at}];`);
      return name;
    });
    const names: string[] = [];
    this.attrs.steps.forEach((s, n) => {
      if (isLoad(s)) {
        names.push(s.input === 0 ? "v" : loaded[s.input - 1]!);
        return;
      }
      const value = stepValue(s.op, s.args.map((a) => names[a]!), s.args.map((a) => this.types[a]!.dtype), s.attrs ?? {}, this.types[n]!.dtype);
      lines.push(`let t${n} = ${value};`);
      names.push(`t${n}`);
    });
    const pool = this.attrs.pool;
    if (pool) lines.push(`return ${names[this.attrs.outputs[0]!]};`);
    else this.attrs.outputs.forEach((o, j) => lines.push(`${this.ctx.output(j)}[i] = ${names[o]};`));
    const signature = ["i: u32", ...params.map((d) => `c${d}: u32`), `v: ${WGSL_TYPE[this.result.dtype]}`].join(", ");
    const returns = pool ? ` -> ${WGSL_TYPE[this.types[this.attrs.outputs[0]!]!.dtype]}` : "";
    const what = pool ? `the value ${pool.kind}-pooled` : "stored";
    const fn = [
      `// the epilogue at element i (c<d>: its coordinate along dim d) of the ${this.attrs.base} result v: ${what}`,
      `fn epilogue(${signature})${returns} {`,
      ...lines.map((l) => `  ${l}`),
      "}",
    ].join("\n");
    return [`// fuses ${coversText(this.attrs.covers)}`, ...helpersFor(fn), fn].join("\n\n");
  }

  /** Offset of a partially broadcast input: Σ coordinate · stride over its kept groups. */
  private offset(groups: readonly { dims: number[]; stride: string }[], params: readonly number[]): string {
    return groups
      .map((g) => {
        const c = g.dims.length === 1 && params.includes(g.dims[0]!) ? `c${g.dims[0]}` : this.derived("i", g.dims);
        return g.stride === "1u" ? c : `${paren(c)} * ${paren(g.stride)}`;
      })
      .join(" + ");
  }
}

function paren(e: string): string {
  return /^[\w.]+$/.test(e) ? e : `(${e})`;
}

// The JS side of epilogue fusion (op fused_epilogue, compiler/ops/fused.ts;
// the pass is compiler/passes/fuse-epilogue.ts, the WGSL twin ../wgsl/epilogue.ts).
//
// A fused_epilogue node is emitted by the base op's own kernel (conv or
// einsum) given a view of the base node and an `epilogue` on its context
// (the fused_epilogue kernel in fused.ts). Every place a base kernel stores a
// result element goes through `storeResult`: without an epilogue it is the
// plain `y0[i] = v;`, with one it is a block that runs the node's elementwise
// program on v (the elementwise family's templates, as fused_elementwise
// does), reads each extra input e_j at its broadcast offset, and stores
// outputs[0] to y0[i] and the extra outputs to y1.. at i:
//
//   { const ep_0 = acc[i]; const ep_2 = ep_0 + x2[f + j]; y0[yb + i] = ep_2 > 0 || ... ; }
//
// The block keeps its locals (named ep_<step>: never a base kernel's name)
// private to one store, so a site may store several elements in one scope
// (a GEMM's register tile). An e_j's offset is computed from the element's
// coordinates: those the site knows cheaply (`coord`, e.g. a conv's filter
// index f + j for a per-channel bias), else one division and one modulo of
// the flat index per dim, except that an e_j varying only along a trailing
// run of dims (a dense layer's bias) is read at `flat % size`, and one with
// the result's own shape at `flat`. Sizes come from the symbols object S
// when they are symbolic (the base kernel's own consts are not known here).

import type { Dim } from "../../ir/dims.ts";
import type { Attrs, Node } from "../../ir/graph.ts";
import type { DType, TensorType } from "../../ir/types.ts";
import { epilogueStepTypes, internalCtx, isLoad, type EpilogueAttrs, type EpiloguePool, type FusedStep } from "../../ops/fused.ts";
import { BINARY, binaryGradValueJs, castTemplate, UNARY, UNARY_GRAD, type MapBody } from "./elementwise.ts";
import { dimToJs, productJs, type JsEmitCtx } from "./kernel.ts";

/** Where a base kernel stores one element of its result. */
export interface StoreSite {
  /** Flat row-major offset of the element in the base result. */
  readonly flat: string;
  /** The element's coordinate along `dim` of the base result, when the site knows it cheaply. */
  coord?(dim: number): string | undefined;
}

export interface Epilogue {
  /** Code lines that store `value` (the base result at `site`) through the epilogue. */
  store(site: StoreSite, value: string): string[];
  /**
   * Stage 2, a pooling epilogue: a conv kernel that holds whole output planes
   * calls this before its stores; when it returns the pool, the kernel stores
   * pooled windows itself (pooledPlaneLines with `value`), else every `store`
   * goes to a scratch copy of the program's result that the fused kernel pools
   * after the base kernel (jsPoolScratch). Absent or undefined: no pool.
   */
  claimPool?(): EpiloguePool | undefined;
  /** With a claimed pool: lines declaring `name` = the program's result for `value` (the base result at `site`). */
  value?(site: StoreSite, value: string, name: string): string[];
}

/** The lines storing one result element: through the context's epilogue, or `y0[flat] = value;`. */
export function storeResult(ctx: JsEmitCtx, site: StoreSite, value: string): string[] {
  return ctx.epilogue ? ctx.epilogue.store(site, value) : [`${ctx.output(0)}[${site.flat}] = ${value};`];
}

/** One step's value from its argument names (the elementwise templates; shared with fused_elementwise). */
export function stepBody(op: string, args: readonly string[], argTypes: readonly DType[], attrs: Attrs, outType: DType): MapBody {
  const [a, b, c] = args as [string, string, string];
  if (op in BINARY) return { value: BINARY[op]!(a, b, argTypes[0]!) };
  if (op in UNARY) return UNARY[op]!(a, attrs, argTypes[0]!);
  switch (op) {
    case "cast":
      return castTemplate(argTypes[0]!, outType)(a, attrs, argTypes[0]!);
    case "where":
      return { value: `${a} ? ${b} : ${c}` };
    case "unary_grad":
      return UNARY_GRAD[attrs.fn as string]!(a, b, c, attrs);
    case "binary_grad":
      return { value: binaryGradValueJs(attrs.fn as string, attrs.wrt as number, a, b, c) };
  }
  throw new Error(`internal: no JS template for fused step ${op}`);
}

/**
 * A fused program as JS lines: each step a const `<prefix><k>` from the
 * elementwise templates (a template with locals in a block of its own),
 * except the last step, returned as an expression when it needs no lines.
 * A load is `load(input)`'s value, bound to a const when `bind` says so.
 * `names[k]` is what later lines call step k (the stored extra outputs).
 */
export function stepLines(
  steps: readonly FusedStep[],
  types: readonly TensorType[],
  prefix: string,
  load: (input: number) => { value: string; bind: boolean },
): { lines: string[]; names: string[]; value: string } {
  const lines: string[] = [];
  const names: string[] = [];
  const last = steps.length - 1;
  steps.forEach((s, k) => {
    const name = `${prefix}${k}`;
    if (isLoad(s)) {
      const l = load(s.input);
      if (l.bind) lines.push(`const ${name} = ${l.value};`);
      names.push(l.bind ? name : l.value);
      return;
    }
    const body = stepBody(s.op, s.args.map((a) => names[a]!), s.args.map((a) => types[a]!.dtype), s.attrs ?? {}, types[k]!.dtype);
    if (k === last && !body.pre?.length) {
      names.push(body.value);
      return;
    }
    if (body.pre?.length) {
      // Template locals (gelu's z, t, tail) get a block of their own.
      lines.push(`let ${name};`, "{", ...body.pre.map((l) => `  ${l}`), `  ${name} = ${body.value};`, "}");
    } else {
      lines.push(`const ${name} = ${body.value};`);
    }
    names.push(name);
  });
  // The last step's value (a load, when a pooled epilogue has no elementwise step).
  return { lines, names, value: names[last]! };
}

/** `(expr)` unless it is a name, a literal or an indexed name. */
const atom = (e: string): string => (/^[\w.$]+(\[[^\]]*\])?$/.test(e) ? e : `(${e})`);

/** The JS kernels emit pooling epilogues (stage 2): a conv holding whole planes pools them itself, any other through a scratch copy. */
export const JS_POOL_EPILOGUE = true;

/** The scratch array an unclaimed pooling epilogue stores the program's result to (jsPoolScratch pools it). */
export const POOL_SCRATCH = "ep_full";

/**
 * The epilogue of fused_epilogue `node` for its base kernel, `ctx` being the
 * fused node's context (its input and output names). With `pool`, `claimed()`
 * tells afterwards whether the base kernel pooled itself.
 */
export function jsEpilogue(node: Node, ctx: JsEmitCtx): Epilogue & { claimed(): boolean } {
  const attrs = node.attrs as unknown as EpilogueAttrs;
  const k = attrs.baseInputs;
  const types = epilogueStepTypes(node.inputs.map((v) => v.type), attrs, internalCtx);
  const R = types[0]!.shape;
  const rank = R.length;
  const dim = (d: Dim) => dimToJs(d);
  // Row-major strides of the base result, as expressions.
  const rStride = R.map((_, i) => productJs(R.slice(i + 1).map(dim)));
  const last = attrs.steps.length - 1;

  /** The offset of e_j (node input k + j) for the element at `site`. */
  const offsetOf = (j: number, site: StoreSite): string => {
    const shape = node.inputs[k + j]!.type.shape;
    const lead = rank - shape.length;
    const varies = R.map((_, i) => i >= lead && !shape[i - lead]!.equals(1));
    if (!varies.some(Boolean)) return "0";
    if (varies.every(Boolean)) return site.flat;
    const first = varies.indexOf(true);
    const coords = R.map((_, i) => (varies[i] ? site.coord?.(i) : undefined));
    // A trailing run of varying dims nobody knows the coordinates of: one modulo of the flat index.
    if (varies.slice(first).every(Boolean) && coords.every((c) => c === undefined)) {
      return `${atom(site.flat)} % ${atom(productJs(R.slice(first).map(dim)))}`;
    }
    const terms: string[] = [];
    let stride: string[] = [];
    for (let i = rank - 1; i >= 0; i--) {
      if (!varies[i]) continue;
      const c = coords[i] ?? coordFromFlat(site.flat, i);
      const s = productJs(stride);
      terms.unshift(s === "1" ? c : `${atom(c)} * ${atom(s)}`);
      stride = [...stride, dim(shape[i - lead]!)];
    }
    return terms.join(" + ");
  };
  const coordFromFlat = (flat: string, i: number): string => {
    const q = rStride[i] === "1" ? atom(flat) : `Math.floor(${flat} / ${atom(rStride[i]!)})`;
    return i === 0 ? q : `${q} % ${atom(dim(R[i]!))}`;
  };

  /** The program's lines for the element at `site` and the expression of its result (outputs[0]). */
  const program = (site: StoreSite, value: string): { lines: string[]; names: string[]; result: string } => {
    // Loads are bound to consts (inlineLoads puts back those read once) so an extra input read by several steps is read once.
    const { lines, names, value: result } = stepLines(attrs.steps, types, "ep_", (input) => ({
      value: input === 0 ? value : `${ctx.input(k + input - 1)}[${offsetOf(input - 1, site)}]`,
      bind: true,
    }));
    return { lines, names, result };
  };

  let claimed = false;
  return {
    store(site, value) {
      const { lines, names, result } = program(site, value);
      attrs.outputs.slice(1).forEach((o, j) => lines.push(`${ctx.output(j + 1)}[${site.flat}] = ${names[o]!};`));
      lines.push(`${attrs.pool ? POOL_SCRATCH : ctx.output(0)}[${site.flat}] = ${result};`);
      return ["{", ...inlineLoads(lines).map((l) => `  ${l}`), "}"];
    },
    claimPool() {
      claimed = attrs.pool !== undefined;
      return attrs.pool;
    },
    value(site, value, name) {
      const { lines, result } = program(site, value);
      const body = inlineLoads([...lines, `const ${name} = ${result};`]);
      if (body.length === 1) return body;
      // The program's locals stay in a block; the result leaves it in `name`.
      return [`let ${name};`, "{", ...body.slice(0, -1).map((l) => `  ${l}`), `  ${body[body.length - 1]!.replace(/^const /, "")}`, "}"];
    },
    claimed: () => claimed,
  };
}

/**
 * Lines pooling planes with windows of `pool.window` (stride = window, no
 * padding, floor): for each pooled position, the taps' values by `tap` (lines
 * declaring the given name from the tap's offset within the plane and its
 * spatial coordinates), reduced, stored to `out[outBase + pooled offset]`. Planes are
 * `O` (size expressions) in row-major order; loop locals are `ep_`-prefixed.
 */
export function pooledPlaneLines(
  pool: EpiloguePool,
  O: readonly string[],
  out: string,
  outBase: string,
  tap: (offset: string, coords: readonly string[], name: string) => string[],
): string[] {
  const d = O.length;
  const w = pool.window;
  const P = O.map((o, i) => (/^\d+$/.test(o) ? String(Math.floor(Number(o) / w[i]!)) : `Math.floor(${atom(o)} / ${w[i]})`));
  const oStride = O.map((_, i) => productJs(O.slice(i + 1)));
  const pStride = P.map((_, i) => productJs(P.slice(i + 1)));
  const lines: string[] = [];
  let depth = 0;
  const line = (l: string) => lines.push("  ".repeat(depth) + l);
  const scaled = (v: string, s: string) => (s === "1" ? v : /^\d+$/.test(s) && /^\d+$/.test(v) ? String(Number(v) * Number(s)) : `${atom(v)} * ${atom(s)}`);
  const plus = (...terms: string[]) => {
    const lit = terms.filter((t) => /^\d+$/.test(t)).reduce((a, t) => a + Number(t), 0);
    const rest = terms.filter((t) => !/^\d+$/.test(t));
    return [...rest, ...(lit || !rest.length ? [String(lit)] : [])].join(" + ");
  };
  const p = O.map((_, i) => `ep_p${i}`);
  for (let i = 0; i < d; i++) {
    line(`for (let ${p[i]} = 0; ${p[i]} < ${P[i]}; ${p[i]}++) {`);
    depth++;
  }
  // The window's first cell in the plane, and the pooled cell.
  const step = (i: number) => (/^\d+$/.test(oStride[i]!) ? String(w[i]! * Number(oStride[i])) : `${w[i]} * ${atom(oStride[i]!)}`);
  const first = plus(...p.map((v, i) => scaled(v, step(i))));
  line(`const ep_at = ${first};`);
  const taps: number[][] = [];
  const walk = (i: number, t: number[]): void => {
    if (i === d) taps.push(t);
    else for (let k = 0; k < w[i]!; k++) walk(i + 1, [...t, k]);
  };
  walk(0, []);
  const acc = pool.kind === "max" ? "ep_max" : "ep_sum";
  line(`let ${acc} = ${pool.kind === "max" ? "-Infinity" : "0"};`);
  taps.forEach((t, n) => {
    const offset = plus("ep_at", ...t.map((k, i) => scaled(String(k), oStride[i]!)).filter((x) => x !== "0"));
    const coords = t.map((k, i) => plus(scaled(p[i]!, String(w[i])), String(k)));
    const name = `ep_v${n}`;
    for (const l of tap(offset, coords, name)) line(l);
    // As the reference's max: NaN never wins; an all-NaN window stays -Infinity.
    line(pool.kind === "max" ? `if (${name} > ${acc}) ${acc} = ${name};` : `${acc} += ${name};`);
  });
  const count = w.reduce((a, b) => a * b, 1);
  line(`${out}[${plus(outBase, ...p.map((v, i) => scaled(v, pStride[i]!)))}] = ${pool.kind === "max" ? acc : `${acc} / ${count}`};`);
  for (let i = 0; i < d; i++) {
    depth--;
    line("}");
  }
  return lines;
}

/**
 * The pooling an unclaimed pooling epilogue leaves to the fused kernel: the
 * base kernel stored the program's result to the scratch array (declared by
 * the first returned part); the second part pools it into y0, plane by plane.
 */
export function jsPoolScratch(node: Node, ctx: JsEmitCtx): { before: string[]; after: string[] } {
  const attrs = node.attrs as unknown as EpilogueAttrs;
  const types = epilogueStepTypes(node.inputs.map((v) => v.type), attrs, internalCtx);
  const R = types[0]!.shape.map((d) => dimToJs(d));
  const O = R.slice(2);
  const planes = productJs(R.slice(0, 2));
  const plane = productJs(O);
  const pooledPlane = productJs(O.map((o, i) => (/^\d+$/.test(o) ? String(Math.floor(Number(o) / attrs.pool!.window[i]!)) : `Math.floor(${atom(o)} / ${attrs.pool!.window[i]})`)));
  const body = pooledPlaneLines(attrs.pool!, O, ctx.output(0), `ep_nc * ${atom(pooledPlane)}`, (offset, _coords, name) => [`const ${name} = ${POOL_SCRATCH}[ep_plane + ${offset}];`]);
  return {
    before: [`// the epilogue's result, pooled after the contraction (its kernel does not hold whole planes)`, `const ${POOL_SCRATCH} = new Float32Array(${productJs(R)});`],
    after: [
      `// ${attrs.pool!.kind} pool, window [${attrs.pool!.window.join(", ")}], of each plane of ${POOL_SCRATCH}`,
      `for (let ep_nc = 0; ep_nc < ${planes}; ep_nc++) {`,
      `  const ep_plane = ep_nc * ${atom(plane)};`,
      ...body.map((l) => `  ${l}`),
      "}",
    ],
  };
}

/**
 * Drops the step consts read once, or whose value is a plain name (the base
 * kernel's register `s00`), putting the value where the name was (every
 * step is pure, so reading it where it is used changes nothing).
 */
function inlineLoads(lines: readonly string[]): string[] {
  let out = [...lines];
  // Lines inside a template's block (gelu's z, t, tail): nothing is inlined there, where its locals could shadow a name.
  const inBlock = () => {
    let depth = 0;
    return out.map((l) => (l === "{" ? (depth++, true) : l === "}" ? (depth--, true) : depth > 0));
  };
  for (;;) {
    const blocked = inBlock();
    const at = out.findIndex((l) => {
      const m = /^const (ep_\d+) = (.*);$/.exec(l);
      if (!m) return false;
      const use = new RegExp(`\\b${m[1]}\\b`);
      if (out.some((u, i) => blocked[i] && use.test(u))) return false;
      const uses = out.join("\n").match(new RegExp(use.source, "g"))!.length - 1;
      return uses <= 1 || /^[A-Za-z_$][\w$]*$/.test(m[2]!);
    });
    if (at < 0) return out;
    const [, name, value] = /^const (ep_\d+) = (.*);$/.exec(out[at]!)!;
    const simple = /^[\w$.]+(\[[^\]]*\])?$/.test(value!);
    out = out.filter((_, i) => i !== at).map((l) => l.replace(new RegExp(`\\b${name}\\b`, "g"), simple ? value! : `(${value})`));
  }
}

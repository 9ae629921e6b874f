// The contract between the JS code generator and each op family's kernel
// template (compiler/codegen/js/<family>.ts). A template turns one IR node
// into the body of a plain JS function over typed arrays:
//
//   function k7_conv_c1(S, T, x0, x1, x2, y0) { ...loops... }
//
//  * S: the bound symbols, e.g. { N: 64, L: 100 }. Static sizes are folded
//    into literals; symbolic ones are read from S (one module serves every size).
//  * T: the run context: T.training (boolean), T.rng(key) → () => number in [0, 1)
//    (the same mulberry32 streams as the reference interpreter: key is
//    `${label}#${nodeId}`, so dropout masks match it draw for draw), T.normal(next)
//    (Box–Muller, one value per call, as the reference), and T.fail(message) which
//    throws the runtime error (message should name what is wrong; the node is added).
//  * x0, x1, ...: input buffers; y0, y1, ...: output buffers, preallocated but NOT
//    zeroed (buffers are reused): a kernel must write every output element.
//    Float32Array for f32, Int32Array for i32, Uint8Array for bool. Each is a view
//    of exactly its tensor's length into a shared arena (the memory plan,
//    compiler/passes/memory.ts); for ops in IN_PLACE_OPS (program.ts) y0 may be the
//    same memory as an input of the same shape: read element i before writing it.
//
// Templates must emit readable, deterministic code: hoisted index arithmetic,
// no closures or allocation inside loops, contiguous inner loops.

import { Dim } from "../../ir/dims.ts";
import type { Node } from "../../ir/graph.ts";
import type { Epilogue } from "./epilogue.ts";

export interface JsEmitCtx {
  readonly node: Node;
  /** A dim as JS: a literal when static, else an expression over S (e.g. `S.N`, `Math.floor((S.L + 1) / 2)`). */
  dim(d: Dim): string;
  /** Size expressions of each dim of input i / output i. */
  inShape(i: number): string[];
  outShape(i: number): string[];
  /** Element count of input i / output i as a JS expression (folded when static). */
  inSize(i: number): string;
  outSize(i: number): string;
  /** The function's parameter names for input i and output i. */
  input(i: number): string;
  output(i: number): string;
  /** The RNG stream key of this node (for T.rng). */
  readonly rngKey: string;
  /** Set when the node is the base of a fused_epilogue: every result element is stored through it (storeResult, epilogue.ts). */
  readonly epilogue?: Epilogue;
}

export interface JsKernel {
  readonly op: string;
  /** Statements of the kernel function's body. */
  emit(ctx: JsEmitCtx): string;
}

/** A dim as a JS expression over the symbol object `S`. */
export function dimToJs(d: Dim, symbols = "S"): string {
  const c = d.constValue();
  if (c !== undefined) return String(c);
  const parts: string[] = [];
  for (const t of d.terms) {
    const factors = t.atoms.map((a) => (a.kind === "sym" ? `${symbols}.${a.name}` : `Math.floor((${dimToJs(a.num, symbols)}) / ${a.den})`));
    const abs = Math.abs(t.coeff);
    const body = factors.length === 0 ? String(abs) : [...(abs === 1 ? [] : [String(abs)]), ...factors].join(" * ");
    parts.push(parts.length === 0 ? (t.coeff < 0 ? `-${body}` : body) : `${t.coeff < 0 ? " - " : " + "}${body}`);
  }
  return parts.join("");
}

/** Product of size expressions, folding literals. */
export function productJs(sizes: readonly string[]): string {
  let lit = 1;
  const syms: string[] = [];
  for (const s of sizes) {
    if (/^\d+$/.test(s)) lit *= Number(s);
    else syms.push(/^[\w.]+$/.test(s) ? s : `(${s})`);
  }
  if (syms.length === 0) return String(lit);
  return [...(lit === 1 ? [] : [String(lit)]), ...syms].join(" * ");
}

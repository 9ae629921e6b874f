// The contract between the WGSL code generator and each op family's kernel
// template (compiler/codegen/wgsl/<family>.ts). A template turns one IR node
// into one or more compute passes. For each pass the emitter declares:
//
//   struct Params { s_N: u32, s_L: u32, ... }          // bound symbols (`s_` + name)
//   @group(0) @binding(0) var<uniform> P: Params;
//   @group(0) @binding(1..) var<storage, read> x0: array<f32>;        // inputs
//   @group(0) @binding(..) var<storage, read_write> y0: array<f32>;   // outputs
//   @group(0) @binding(..) var<storage, read_write> t0: array<f32>;   // scratch (if requested)
//   @group(0) @binding(..) var<storage, read_write> err: array<atomic<u32>, 4>; // if usesError
//
// and the template writes everything else (helpers and `@compute ... fn main`).
// Element types: f32 → f32, i32 → i32, bool → u32 (0/1; WGSL has no bool storage).
// Symbolic sizes are read from P (`ctx.dim(d)` gives `P.s_N` or a literal `28u`),
// so one module serves every batch size. Dispatch sizes are JS expressions over
// the bound symbols `S` (`ctx.dimJs(d)`), evaluated by the runtime before each run.
//
// Outputs are not zeroed: a kernel must write every element. Buffers are ranges of
// shared arenas (the memory plan); a node written in place (IN_PLACE_OPS of
// js/program.ts) has the input's name rewritten to `y0`, so a template for such
// an op must read element i before it writes element i.

import type { Dim } from "../../ir/dims.ts";
import type { Node } from "../../ir/graph.ts";
import type { DType } from "../../ir/types.ts";
import { dimToJs, productJs } from "../js/kernel.ts";
import type { Epilogue } from "./epilogue.ts";

export interface WgslPass {
  /** Shader body: helper functions and the entry point `fn main`, with its @compute @workgroup_size attribute. */
  readonly code: string;
  /** Workgroup counts per dimension as JS expressions over `S` (each must stay ≤ 65535; see flatDispatch). */
  readonly dispatch: readonly [string, string?, string?];
  /**
   * Alternative shader bodies by adapter class: "cpu" for software adapters
   * (lavapipe, SwiftShader: register tiles win, barriers are emulated) and
   * "gpu" for real GPUs (workgroup shared-memory tiles win). The runtime picks
   * one at create(); `code` is used when absent. Dispatch may differ too.
   */
  readonly variants?: { readonly [cls in AdapterClass]?: { readonly code: string; readonly dispatch: readonly [string, string?, string?] } };
  /** Override the declared element type of a binding, e.g. { x0: "vec4<f32>" }. */
  readonly bindingTypes?: Readonly<Record<string, string>>;
  /**
   * Scratch buffers (read_write) t0, t1, ...: element type and element count (JS over S).
   * All passes of one node share them (t0 of pass 2 is t0 of pass 1), so a pass can
   * read what an earlier pass of the same node wrote. They are memory plan items
   * (arena ranges other values use before and after the node): never zeroed, so a
   * kernel writes every element before it reads it.
   */
  readonly scratch?: readonly { readonly type: string; readonly size: string }[];
  /** The pass may call `report_error(kind, a, b)` (declared by the emitter). */
  readonly usesError?: boolean;
}

export type AdapterClass = "cpu" | "gpu";

export interface WgslKernelResult {
  readonly passes: readonly WgslPass[];
  /**
   * Messages for error kinds this node may report, as JS template text with
   * `{a}` (an i32) and `{b}` (a u32, typically a flat position), e.g.
   * { 1: "token {a} at flat position {b} is outside the vocabulary [0, 5)" }.
   */
  readonly errors?: Readonly<Record<number, string>>;
}

export interface WgslEmitCtx {
  readonly node: Node;
  /** A dim as WGSL u32: `28u` or an expression over P such as `(P.s_L - 2u)`. */
  dim(d: Dim): string;
  /** A dim as a JS expression over S (for dispatch sizes). */
  dimJs(d: Dim): string;
  inShape(i: number): string[];
  outShape(i: number): string[];
  inSize(i: number): string;
  outSize(i: number): string;
  /** Element counts as JS expressions over S. */
  inSizeJs(i: number): string;
  outSizeJs(i: number): string;
  /** WGSL element type of input/output i (f32, i32, or u32 for bool). */
  inType(i: number): string;
  outType(i: number): string;
  input(i: number): string;
  output(i: number): string;
  /** Set when the node is the base of a fused_epilogue: every result element is stored through it (storeResult, epilogue.ts). */
  readonly epilogue?: Epilogue;
}

export interface WgslKernel {
  readonly op: string;
  emit(ctx: WgslEmitCtx): WgslKernelResult;
}

export const WGSL_TYPE: Record<DType, string> = { f32: "f32", i32: "i32", bool: "u32" };

/** A dim as a WGSL u32 expression over the params struct `P`. */
export function dimToWgsl(d: Dim): string {
  const c = d.constValue();
  if (c !== undefined) return `${c}u`;
  // Evaluate in i32 so intermediate negatives (L - 2 before adding) are safe, then convert.
  const parts: string[] = [];
  for (const t of d.terms) {
    const factors = t.atoms.map((a) => (a.kind === "sym" ? `i32(P.s_${a.name})` : `((${dimToWgslI32(a.num)}) / ${a.den})`));
    const abs = Math.abs(t.coeff);
    const body = factors.length === 0 ? `${abs}` : [...(abs === 1 ? [] : [`${abs}`]), ...factors].join(" * ");
    parts.push(parts.length === 0 ? (t.coeff < 0 ? `-${body}` : body) : `${t.coeff < 0 ? " - " : " + "}${body}`);
  }
  return `u32(${parts.join("")})`;
}

/** i32 form used inside floor divisions; sizes are non-negative there, so i32 division floors. */
function dimToWgslI32(d: Dim): string {
  return `i32(${dimToWgsl(d)})`;
}

/** Product of WGSL u32 size expressions, folding literals. */
export function productWgsl(sizes: readonly string[]): string {
  let lit = 1;
  const rest: string[] = [];
  for (const s of sizes) {
    const m = /^(\d+)u$/.exec(s);
    if (m) lit *= Number(m[1]);
    else rest.push(s);
  }
  if (rest.length === 0) return `${lit}u`;
  return [...(lit === 1 ? [] : [`${lit}u`]), ...rest].join(" * ");
}

/**
 * A 1-D problem of `countJs` invocations as a dispatch that respects the 65535
 * workgroups-per-dimension limit, and the WGSL line computing the flat index:
 *   `let i = gid.x + gid.y * (nwg.x * WG);`
 * The entry point must declare `@builtin(global_invocation_id) gid: vec3u` and
 * `@builtin(num_workgroups) nwg: vec3u`.
 */
export function flatDispatch(countJs: string, workgroupSize = 64): { dispatch: [string, string]; index: string } {
  const groups = `Math.ceil((${countJs}) / ${workgroupSize})`;
  return {
    dispatch: [`Math.min(${groups}, 65535)`, `Math.max(1, Math.ceil(${groups} / 65535))`],
    index: `gid.x + gid.y * (nwg.x * ${workgroupSize}u)`,
  };
}

export { dimToJs, productJs };

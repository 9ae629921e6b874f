// Arguments of a builtin call, bound by name, with typed accessors that turn
// wrong kinds and missing values into located diagnostics (E401–E406).

import type { Span } from "../diagnostics.ts";
import { Dim } from "../ir/dims.ts";
import type { Value } from "../ir/graph.ts";
import type { LowerCtx } from "./op.ts";

export type ArgValue =
  | { readonly kind: "tensor"; readonly value: Value; readonly span?: Span }
  | { readonly kind: "number"; readonly value: number; readonly isInt: boolean; readonly span?: Span }
  /** A symbolic size used as a compile-time value, e.g. `N` in reshape(x, [N, -1]). */
  | { readonly kind: "dim"; readonly value: Dim; readonly span?: Span }
  | { readonly kind: "string"; readonly value: string; readonly span?: Span }
  | { readonly kind: "bool"; readonly value: boolean; readonly span?: Span }
  | { readonly kind: "none"; readonly span?: Span }
  | { readonly kind: "list"; readonly items: readonly ArgValue[]; readonly span?: Span };

export function describeArg(a: ArgValue): string {
  switch (a.kind) {
    case "tensor":
      return "a tensor";
    case "number":
      return a.isInt ? `the integer ${a.value}` : `the number ${a.value}`;
    case "dim":
      return `the size ${a.value.toString()}`;
    case "string":
      return `the string "${a.value}"`;
    case "bool":
      return `${a.value}`;
    case "none":
      return "none";
    case "list":
      return `a list of ${a.items.length}`;
  }
}

export class Args {
  constructor(
    private readonly values: ReadonlyMap<string, ArgValue>,
    private readonly ctx: LowerCtx,
  ) {}

  /** Present and not `none`. */
  has(name: string): boolean {
    const v = this.values.get(name);
    return v !== undefined && v.kind !== "none";
  }

  raw(name: string): ArgValue | undefined {
    const v = this.values.get(name);
    return v && v.kind !== "none" ? v : undefined;
  }

  span(name: string): Span | undefined {
    return this.values.get(name)?.span ?? this.ctx.span;
  }

  names(): string[] {
    return [...this.values.keys()];
  }

  private required(name: string): ArgValue {
    const v = this.raw(name);
    if (!v) this.ctx.fail("E401", `missing argument '${name}'`, { hint: `pass ${name}=...` });
    return v;
  }

  private wrongKind(name: string, expected: string, got: ArgValue): never {
    return this.ctx.fail("E403", `argument '${name}' must be ${expected}, found ${describeArg(got)}`, { arg: name });
  }

  fail(name: string, message: string, hint?: string): never {
    return this.ctx.fail("E404", message, { arg: name, hint });
  }

  /** A tensor; a number becomes an f32 scalar constant. */
  tensor(name: string): Value {
    return this.toTensor(name, this.required(name));
  }

  optTensor(name: string): Value | undefined {
    const v = this.raw(name);
    return v ? this.toTensor(name, v) : undefined;
  }

  private toTensor(name: string, v: ArgValue): Value {
    if (v.kind === "tensor") return v.value;
    if (v.kind === "number") return this.ctx.constant(v.value);
    return this.wrongKind(name, "a tensor", v);
  }

  /** A list of tensors, e.g. concat([a, b]). */
  tensors(name: string): Value[] {
    const v = this.required(name);
    if (v.kind !== "list") return this.wrongKind(name, "a list of tensors", v);
    return v.items.map((item) => this.toTensor(name, item));
  }

  number(name: string, dflt?: number): number {
    const v = this.raw(name);
    if (!v) return dflt ?? this.required(name) as never;
    if (v.kind !== "number") return this.wrongKind(name, "a number", v);
    return v.value;
  }

  int(name: string, dflt?: number): number {
    const v = this.raw(name);
    if (!v) return dflt ?? this.required(name) as never;
    if (v.kind === "dim") {
      const c = v.value.constValue();
      if (c !== undefined) return c;
    }
    if (v.kind !== "number" || !v.isInt) return this.wrongKind(name, "an integer", v);
    return v.value;
  }

  /** A positive integer (filters, units, window, ...). */
  positiveInt(name: string, dflt?: number): number {
    const n = this.int(name, dflt);
    if (n < 1) this.fail(name, `argument '${name}' must be a positive integer, found ${n}`);
    return n;
  }

  bool(name: string, dflt?: boolean): boolean {
    const v = this.raw(name);
    if (!v) return dflt ?? this.required(name) as never;
    if (v.kind !== "bool") return this.wrongKind(name, "true or false", v);
    return v.value;
  }

  string<T extends string>(name: string, choices: readonly T[], dflt?: T): T {
    const v = this.raw(name);
    if (!v) return dflt ?? (this.required(name) as never);
    if (v.kind !== "string") return this.wrongKind(name, `one of ${choices.map((c) => `"${c}"`).join(", ")}`, v);
    if (!choices.includes(v.value as T)) {
      this.fail(name, `argument '${name}' must be one of ${choices.map((c) => `"${c}"`).join(", ")}, found "${v.value}"`);
    }
    return v.value as T;
  }

  /** An int or a list of `count` ints (kernel, stride, dilation per spatial dim). */
  ints(name: string, count: number, dflt?: number | readonly number[]): number[] {
    const v = this.raw(name);
    if (!v) {
      if (dflt === undefined) this.required(name);
      return typeof dflt === "number" ? new Array<number>(count).fill(dflt) : [...dflt!];
    }
    if (v.kind === "number" && v.isInt) return new Array<number>(count).fill(v.value);
    if (v.kind === "list") {
      const out = v.items.map((it) => (it.kind === "number" && it.isInt ? it.value : this.wrongKind(name, "an integer or a list of integers", v)));
      if (out.length !== count) this.fail(name, `argument '${name}' needs ${count} values (one per spatial dim), found ${out.length}`);
      return out;
    }
    return this.wrongKind(name, `an integer or a list of ${count} integers`, v);
  }

  /** A list of ints of any length (transpose permutation). */
  intList(name: string, dflt?: readonly number[]): number[] {
    const v = this.raw(name);
    if (!v) return dflt ? [...dflt] : (this.required(name) as never);
    if (v.kind !== "list") return this.wrongKind(name, "a list of integers", v);
    return v.items.map((it) => (it.kind === "number" && it.isInt ? it.value : this.wrongKind(name, "a list of integers", v)));
  }

  /** `axis=` as an int or list of ints, or "all" when absent and the default is all. */
  axes(name: string, dflt: "all" | number): "all" | number[] {
    const v = this.raw(name);
    if (!v) return dflt === "all" ? "all" : [dflt];
    if (v.kind === "number" && v.isInt) return [v.value];
    if (v.kind === "list") return this.intList(name);
    return this.wrongKind(name, "an integer or a list of integers", v);
  }

  /** A list of sizes: integers, -1, or symbolic sizes (reshape). */
  dims(name: string): (Dim | -1)[] {
    const v = this.required(name);
    if (v.kind !== "list") return this.wrongKind(name, "a list of sizes", v);
    return v.items.map((it) => {
      if (it.kind === "number" && it.isInt) return it.value === -1 ? -1 : Dim.of(it.value);
      if (it.kind === "dim") return it.value;
      return this.wrongKind(name, "a list of sizes (integers, -1 or symbols)", v);
    });
  }
}

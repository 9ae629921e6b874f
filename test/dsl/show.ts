// A compact, span-free rendering of AST expressions for parser tests:
// `relu|(conv2d(x, filters=6))`, `(a + (b * c))`.

import type { Expr, TypeExpr } from "../../compiler/dsl/ast.ts";

export function show(e: Expr | undefined): string {
  if (e === undefined) return "<none>";
  switch (e.kind) {
    case "number":
      return `${e.value}${e.isInt ? "" : "f"}`;
    case "string":
      return JSON.stringify(e.value);
    case "bool":
      return String(e.value);
    case "name":
      return e.parts.map((p) => p.name).join(".");
    case "call": {
      const args = [...e.args.map(show), ...e.kwargs.map((k) => `${k.name.name}=${show(k.value)}`)];
      return `${e.callee.name}${e.piped ? "|" : ""}(${args.join(", ")})`;
    }
    case "binary":
      return `(${show(e.left)} ${e.op} ${show(e.right)})`;
    case "unary":
      return `(-${show(e.operand)})`;
    case "list":
      return `[${e.items.map(show).join(", ")}]`;
    case "indexed":
      return `${show(e.target)}[${e.indices.map((i) => i.name).join(", ")}]`;
    default:
      return e satisfies never;
  }
}

export function showType(t: TypeExpr | undefined): string {
  return t === undefined ? "<none>" : `${t.dtype.name}[${t.dims.map(show).join(", ")}]`;
}

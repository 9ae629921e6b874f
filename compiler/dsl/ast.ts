// The AST of a .cnn file. Every node carries the span of the source it came
// from; the lowering (compiler/lower/) turns it into IR, and diagnostics point
// back through these spans.

import type { Span } from "../diagnostics.ts";

export interface Ident {
  readonly kind: "ident";
  readonly name: string;
  readonly span: Span;
}

export interface Program {
  readonly file: string;
  readonly models: readonly ModelDecl[];
  readonly defs: readonly DefDecl[];
}

export interface ModelDecl {
  readonly kind: "model";
  readonly name: Ident;
  readonly body: readonly Stmt[];
  readonly span: Span;
}

export interface DefDecl {
  readonly kind: "def";
  readonly name: Ident;
  readonly params: readonly Ident[];
  /** Statements; the last meaningful one is a ReturnStmt. */
  readonly body: readonly Stmt[];
  readonly span: Span;
}

/** `f32[N, 1, 28, 28]`: dims are expressions (ints, symbols, affine forms). */
export interface TypeExpr {
  readonly kind: "type";
  readonly dtype: Ident;
  readonly dims: readonly Expr[];
  readonly span: Span;
}

export type Stmt = InputStmt | ParamStmt | BindStmt | IndexStmt | OutputStmt | LossStmt | OptimizerStmt | ReturnStmt;

export interface InputStmt {
  readonly kind: "input";
  readonly name: Ident;
  readonly type: TypeExpr;
  readonly span: Span;
}

export interface ParamStmt {
  readonly kind: "param";
  readonly name: Ident;
  readonly type: TypeExpr;
  /** `zeros`, `normal(0, 0.1)`, ...; absent means glorot. */
  readonly init?: Expr;
  readonly span: Span;
}

/** `name = expr` or `name: T = expr`. */
export interface BindStmt {
  readonly kind: "bind";
  readonly name: Ident;
  readonly annotation?: TypeExpr;
  readonly value: Expr;
  readonly span: Span;
}

/** `y[i, k] = x[i, j] * w[j, k] + b[k]` (index notation, DSL.md §6). */
export interface IndexStmt {
  readonly kind: "index";
  readonly name: Ident;
  readonly indices: readonly Ident[];
  readonly annotation?: TypeExpr;
  readonly value: Expr;
  readonly span: Span;
}

/** `output name = expr` or `output name` (an existing binding). */
export interface OutputStmt {
  readonly kind: "output";
  readonly name: Ident;
  readonly annotation?: TypeExpr;
  readonly value?: Expr;
  readonly span: Span;
}

export interface LossStmt {
  readonly kind: "loss";
  readonly name: Ident;
  readonly value: Expr;
  readonly span: Span;
}

/** `optimizer adam(lr=0.001)`. */
export interface OptimizerStmt {
  readonly kind: "optimizer";
  readonly call: CallExpr;
  readonly span: Span;
}

export interface ReturnStmt {
  readonly kind: "return";
  readonly value: Expr;
  readonly span: Span;
}

export type Expr = NumberLit | StringLit | BoolLit | NameExpr | CallExpr | BinaryExpr | UnaryExpr | ListExpr | IndexedExpr;

export interface NumberLit {
  readonly kind: "number";
  readonly value: number;
  /** Written without a fraction or exponent (`12`, `-2`). */
  readonly isInt: boolean;
  readonly span: Span;
}

export interface StringLit {
  readonly kind: "string";
  readonly value: string;
  readonly span: Span;
}

export interface BoolLit {
  readonly kind: "bool";
  readonly value: boolean;
  readonly span: Span;
}

/** `x`, `N`, or a dotted path `c1.weight`, `r1.c1.weight`. */
export interface NameExpr {
  readonly kind: "name";
  readonly parts: readonly Ident[];
  readonly span: Span;
}

export interface KeywordArgExpr {
  readonly name: Ident;
  readonly value: Expr;
}

/** `f(a, b, k=1)`; a pipe `a |> f(k=1)` is parsed to `f(a, k=1)` with `piped` set. */
export interface CallExpr {
  readonly kind: "call";
  readonly callee: Ident;
  readonly args: readonly Expr[];
  readonly kwargs: readonly KeywordArgExpr[];
  readonly piped: boolean;
  readonly span: Span;
}

export interface BinaryExpr {
  readonly kind: "binary";
  readonly op: "+" | "-" | "*" | "/" | "@";
  readonly left: Expr;
  readonly right: Expr;
  /** Span of the operator token (where shape errors point). */
  readonly opSpan: Span;
  readonly span: Span;
}

export interface UnaryExpr {
  readonly kind: "unary";
  readonly op: "-";
  readonly operand: Expr;
  readonly span: Span;
}

export interface ListExpr {
  readonly kind: "list";
  readonly items: readonly Expr[];
  readonly span: Span;
}

/** `x[i, j]` on the right-hand side of index notation. */
export interface IndexedExpr {
  readonly kind: "indexed";
  readonly target: NameExpr;
  readonly indices: readonly Ident[];
  readonly span: Span;
}

/** Span covering two spans (from the start of a to the end of b). */
export function joinSpans(a: Span, b: Span): Span {
  return { file: a.file, line: a.line, col: a.col, endLine: b.endLine, endCol: b.endCol };
}

// Diagnostics are data: a stable code, a span, a message that says what was
// expected and what was found, and notes/hints. They are rendered once, by
// `renderDiagnostic`, in the format of DSL.md §7.

export interface Span {
  readonly file: string;
  /** 1-based line and column of the first character. */
  readonly line: number;
  readonly col: number;
  /** 1-based line and column of the last character (inclusive). */
  readonly endLine: number;
  readonly endCol: number;
}

export type Severity = "error" | "warning";

export interface Diagnostic {
  readonly code: DiagnosticCode;
  readonly severity: Severity;
  readonly message: string;
  readonly span?: Span;
  /** Context lines: "input s2 is f32[N, 6, 4, 4]". */
  readonly notes?: readonly string[];
  /** What to do about it: "add padding=2 or use a smaller kernel". */
  readonly hint?: string;
}

/**
 * The catalogue of error codes. Codes are stable: tests and users key on them.
 * E1xx: lexical and syntax. E2xx: shapes. E3xx: names and program structure.
 * E4xx: arguments and types of builtin calls. E5xx: TypeScript builder misuse.
 */
export const DIAGNOSTIC_CODES = {
  E101: "unexpected character",
  E102: "syntax error",
  E103: "unterminated string",
  E201: "convolution or pooling window larger than the padded input",
  E202: "sizes of related tensors do not match (channels, labels, states)",
  E203: "shapes cannot be broadcast together",
  E204: "contraction sizes do not match",
  E205: "annotation does not match the inferred type",
  E206: "einsum or index notation index bound to two different sizes",
  E207: "reshape sizes do not match",
  E208: "concat shapes do not match",
  E209: "axis out of range",
  E210: "rank does not match",
  E211: "groups do not divide the channels",
  E212: "size must be positive",
  E213: "dtype does not match",
  E214: "slice or pad out of range",
  E215: "loss is not a scalar",
  E216: "tensor passed as a weight has the wrong shape",
  E301: "unknown name",
  E302: "name bound twice",
  E303: "unknown builtin or def",
  E304: "no model in file",
  E305: "recursive def",
  E306: "misplaced statement",
  E307: "unknown parameter reference",
  E308: "symbol used before an input binds it",
  E309: "gradient through a non-differentiable value",
  E310: "unknown element type",
  E401: "missing argument",
  E402: "unknown keyword argument",
  E403: "argument has the wrong kind",
  E404: "argument value out of range",
  E405: "too many positional arguments",
  E406: "argument given twice",
  E501: "builder misuse",
} as const;

export type DiagnosticCode = keyof typeof DIAGNOSTIC_CODES;

/** Thrown by shape rules and lowering; carries one or more diagnostics. */
export class CompileError extends Error {
  constructor(readonly diagnostics: readonly Diagnostic[]) {
    super(diagnostics.map((d) => `error[${d.code}]: ${d.message}`).join("\n"));
    this.name = "CompileError";
  }
}

export function diag(
  code: DiagnosticCode,
  message: string,
  span?: Span,
  extra: { notes?: readonly string[]; hint?: string; severity?: Severity } = {},
): Diagnostic {
  return { code, severity: extra.severity ?? "error", message, span, notes: extra.notes, hint: extra.hint };
}

/** Render one diagnostic: `file:line:col: error[E201]: message`, the quoted line, a caret, notes. */
export function renderDiagnostic(d: Diagnostic, source?: string): string {
  const where = d.span ? `${d.span.file}:${d.span.line}:${d.span.col}: ` : "";
  const lines = [`${where}${d.severity}[${d.code}]: ${d.message}`];
  if (d.span && source !== undefined) {
    const text = source.split(/\r?\n/)[d.span.line - 1];
    if (text !== undefined) {
      const shown = text.replace(/\t/g, " ");
      const width = d.span.endLine === d.span.line ? Math.max(1, d.span.endCol - d.span.col + 1) : Math.max(1, shown.length - d.span.col + 1);
      lines.push(`  ${shown}`);
      lines.push(`  ${" ".repeat(Math.max(0, d.span.col - 1))}${"^".repeat(width)}`);
    }
  }
  for (const n of d.notes ?? []) lines.push(`  = note: ${n}`);
  if (d.hint) lines.push(`  = hint: ${d.hint}`);
  return lines.join("\n");
}

export function renderDiagnostics(ds: readonly Diagnostic[], sources: ReadonlyMap<string, string>): string {
  return ds.map((d) => renderDiagnostic(d, d.span ? sources.get(d.span.file) : undefined)).join("\n\n");
}

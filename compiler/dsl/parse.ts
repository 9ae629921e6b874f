// Entry point of the .cnn front end: source text -> Program + diagnostics.
//
// The block structure (`model Name { ... }`, `def f(a) { ... }`) is walked
// here; each header and each statement is handed to the chevrotain parser on
// its own. A broken statement is reported and skipped, so one run reports
// every broken statement (up to MAX_DIAGNOSTICS), each at its own line.

import type { IRecognitionException, IToken } from "chevrotain";
import { diag, type Diagnostic, type Span } from "../diagnostics.ts";
import { joinSpans, type DefDecl, type ModelDecl, type Program, type Stmt } from "./ast.ts";
import { Def, LBracket, LCurly, lex, LParen, Model, Newline, RBracket, RCurly, RParen, Semicolon, StringLit, tokenSpan } from "./lexer.ts";
import { AstBuilder, cnnParser, SyntaxIssue } from "./parser.ts";

export const MAX_DIAGNOSTICS = 20;
/** Bracket nesting beyond this is reported instead of parsed (the parser recurses per bracket). */
export const MAX_BRACKET_DEPTH = 100;

export function parseProgram(source: string, file: string): { program: Program; diagnostics: Diagnostic[] } {
  const models: ModelDecl[] = [];
  const defs: DefDecl[] = [];
  let diagnostics: Diagnostic[];
  try {
    const run = new ProgramParser(source, file);
    run.parse(models, defs);
    diagnostics = [...run.lexDiagnostics, ...run.diagnostics];
  } catch (e) {
    // Not expected; the contract is "never throws", so report it instead.
    const what = e instanceof RangeError ? "the program is nested too deeply to parse" : `internal parser error: ${String(e)}`;
    diagnostics = [diag("E102", what, endOfSourceSpan(source, file))];
  } finally {
    cnnParser.input = []; // do not keep the last file's tokens alive
  }
  diagnostics.sort((a, b) => (a.span?.line ?? 0) - (b.span?.line ?? 0) || (a.span?.col ?? 0) - (b.span?.col ?? 0));
  return { program: { file, models, defs }, diagnostics: diagnostics.slice(0, MAX_DIAGNOSTICS) };
}

class ProgramParser {
  /** Syntax errors, in source order; parsing stops after MAX_DIAGNOSTICS of them. */
  readonly diagnostics: Diagnostic[] = [];
  readonly lexDiagnostics: Diagnostic[];
  private readonly tokens: IToken[];
  private readonly errorSpans: Span[];
  private readonly builder: AstBuilder;
  private i = 0;

  constructor(
    private readonly source: string,
    private readonly file: string,
  ) {
    const lexed = lex(source, file);
    this.tokens = lexed.tokens;
    this.errorSpans = lexed.errorSpans;
    this.lexDiagnostics = lexed.diagnostics;
    this.builder = new AstBuilder(file);
  }

  private get full(): boolean {
    return this.diagnostics.length >= MAX_DIAGNOSTICS;
  }

  private peek(k = 0): IToken | undefined {
    return this.tokens[this.i + k];
  }

  parse(models: ModelDecl[], defs: DefDecl[]): void {
    while (this.i < this.tokens.length && !this.full) {
      const t = this.tokens[this.i]!;
      if (isSep(t)) {
        this.i++;
      } else if (t.tokenType === Model) {
        const m = this.block("model");
        if (m) models.push(m as ModelDecl);
      } else if (t.tokenType === Def) {
        const d = this.block("def");
        if (d) defs.push(d as DefDecl);
      } else {
        this.error(`expected 'model' or 'def' at the top level but found ${describe(t)}`, this.span(t), {
          hint: t.tokenType === RCurly ? "this '}' closes nothing" : "statements belong inside a 'model Name { ... }' or 'def name(...) { ... }' block",
        });
        this.i++;
        while (this.i < this.tokens.length && this.tokens[this.i]!.tokenType !== Model && this.tokens[this.i]!.tokenType !== Def) this.i++;
      }
    }
  }

  /** A model or def block; undefined when its header is broken (its body is still checked). */
  private block(kind: "model" | "def"): ModelDecl | DefDecl | undefined {
    const start = this.i;
    let end = start + 1;
    while (end < this.tokens.length && !endsHeader(this.tokens[end]!)) end++;
    const open = this.tokens[end];
    const hasBrace = open?.tokenType === LCurly;
    const headerTokens = this.tokens.slice(start, hasBrace ? end + 1 : end);
    const header = this.runRule(kind === "model" ? "modelHeader" : "defHeader", headerTokens, hasBrace ? undefined : open);
    this.i = hasBrace ? end + 1 : end;
    // Without '{' but followed by a new line, assume the body starts there (a forgotten '{').
    const hasBody = hasBrace || (open !== undefined && isSep(open));
    const body: Stmt[] = [];
    let last = headerTokens[headerTokens.length - 1]!;
    if (hasBody) last = this.body(kind, header ? headerName(header, this.builder) : undefined, open ?? last, body) ?? last;
    if (!header) return undefined;
    const span = joinSpans(this.span(this.tokens[start]!), this.span(last));
    if (kind === "model") return { kind: "model", name: this.builder.modelHeader(header).name, body, span };
    const { name, params } = this.builder.defHeader(header);
    return { kind: "def", name, params, body, span };
  }

  /** Statements up to the closing '}'; returns the last token that belongs to the block. */
  private body(kind: string, name: string | undefined, open: IToken, out: Stmt[]): IToken | undefined {
    const what = name ? `${kind} '${name}'` : kind;
    let last: IToken | undefined;
    while (!this.full) {
      const t = this.peek();
      if (t === undefined) {
        this.error(`${what} is not closed: expected '}' before the end of the file`, this.span(open));
        return last;
      }
      if (t.tokenType === RCurly) {
        this.i++;
        return t;
      }
      if (t.tokenType === Model || t.tokenType === Def) {
        this.error(`expected '}' to close ${what} but found ${describe(t)}`, this.span(t));
        return last;
      }
      if (isSep(t)) {
        this.i++;
        continue;
      }
      let end = this.i;
      while (end < this.tokens.length && !endsStatement(this.tokens[end]!)) end++;
      const stmtTokens = this.tokens.slice(this.i, end);
      this.i = end;
      last = stmtTokens[stmtTokens.length - 1]!;
      const stmt = this.statement(stmtTokens, this.tokens[end]);
      if (stmt) out.push(stmt);
    }
    return last;
  }

  private statement(tokens: IToken[], terminator: IToken | undefined): Stmt | undefined {
    const tooDeep = firstTooDeep(tokens);
    if (tooDeep) {
      this.error(`expression is nested too deeply (more than ${MAX_BRACKET_DEPTH} levels of brackets); split it into several bindings`, this.span(tooDeep));
      return undefined;
    }
    const cst = this.runRule("statement", tokens, terminator);
    if (!cst) return undefined;
    try {
      return this.builder.statement(cst, tokens[0]!, tokens[tokens.length - 1]!);
    } catch (e) {
      if (!(e instanceof SyntaxIssue)) throw e;
      this.error(e.message, e.span);
      return undefined;
    }
  }

  /**
   * Runs one parser rule over `tokens`, which end where `terminator` (a
   * separator, '}', a keyword or the end of file) begins. On a syntax error
   * records one diagnostic (unless a lexical error already covers these
   * tokens) and returns undefined.
   */
  private runRule(rule: "statement" | "modelHeader" | "defHeader", tokens: IToken[], terminator: IToken | undefined) {
    cnnParser.input = tokens;
    let cst;
    try {
      cst = cnnParser[rule]();
    } catch (e) {
      if (!(e instanceof RangeError)) throw e;
      this.error("expression is nested too deeply to parse; split it into several bindings", this.span(tokens[0]!));
      return undefined;
    }
    const errors = cnnParser.errors;
    if (errors.length === 0 && cst) return cst;
    if (errors.length > 0 && !this.coveredByLexError(tokens)) this.syntaxError(errors[0]!, terminator);
    return undefined;
  }

  private syntaxError(e: IRecognitionException, terminator: IToken | undefined): void {
    const found = e.token;
    if (found.tokenType !== undefined && found.image !== "" && !Number.isNaN(found.startOffset)) {
      this.error(`${e.message} but found ${describe(found)}`, this.span(found), { hint: hintFor(e.message, found) });
    } else if (terminator) {
      // The statement ran out: point at what ended it (the line break, '}', ...).
      this.error(`${e.message} but found ${describe(terminator)}`, this.span(terminator));
    } else {
      this.error(`${e.message} but found the end of the file`, endOfSourceSpan(this.source, this.file));
    }
  }

  private coveredByLexError(tokens: IToken[]): boolean {
    if (this.errorSpans.length === 0) return false;
    const first = this.span(tokens[0]!);
    const last = this.span(tokens[tokens.length - 1]!);
    return this.errorSpans.some((s) => !before(s, first) && !before(last, s));
  }

  private error(message: string, span: Span, extra: { hint?: string } = {}): void {
    if (!this.full) this.diagnostics.push(diag("E102", message, span, extra));
  }

  private span(t: IToken): Span {
    return tokenSpan(t, this.file);
  }
}

function headerName(header: { children: Record<string, unknown> }, builder: AstBuilder): string | undefined {
  const name = (header.children.name as IToken[] | undefined)?.[0];
  return name ? builder.ident(name).name : undefined;
}

function isSep(t: IToken): boolean {
  return t.tokenType === Newline || t.tokenType === Semicolon;
}

function endsHeader(t: IToken): boolean {
  return t.tokenType === LCurly || t.tokenType === RCurly || t.tokenType === Model || t.tokenType === Def || isSep(t);
}

function endsStatement(t: IToken): boolean {
  return t.tokenType === RCurly || t.tokenType === Model || t.tokenType === Def || isSep(t);
}

/** The first bracket that opens beyond MAX_BRACKET_DEPTH, if any. */
function firstTooDeep(tokens: readonly IToken[]): IToken | undefined {
  let depth = 0;
  for (const t of tokens) {
    if (t.tokenType === LParen || t.tokenType === LBracket) {
      if (++depth > MAX_BRACKET_DEPTH) return t;
    } else if (t.tokenType === RParen || t.tokenType === RBracket) {
      depth = Math.max(0, depth - 1);
    }
  }
  return undefined;
}

/** Whether span a ends before span b starts. */
function before(a: Span, b: Span): boolean {
  return a.endLine < b.line || (a.endLine === b.line && a.endCol < b.col);
}

/** How a token reads in a message: `'filters'`, `end of line`. */
function describe(t: IToken): string {
  if (t.tokenType === Newline) return "end of line";
  if (t.tokenType === StringLit) return `string ${t.image.length > 24 ? `${t.image.slice(0, 24)}..."` : t.image}`;
  const image = t.image.length > 24 ? `${t.image.slice(0, 24)}...` : t.image;
  return `'${image}'`;
}

function hintFor(message: string, found: IToken): string | undefined {
  if (message.startsWith("expected ')'") && found.tokenType.name === "Ident") return "a ',' may be missing between arguments";
  return undefined;
}

/** The last character of the source (line 1, column 1 for an empty one). */
function endOfSourceSpan(source: string, file: string): Span {
  const lines = source.split("\n");
  let line = lines.length;
  while (line > 1 && lines[line - 1]!.length === 0) line--;
  const col = Math.max(1, lines[line - 1]!.length);
  return { file, line, col, endLine: line, endCol: col };
}

// The .cnn lexer (DSL.md §2) and the newline filter that decides which line
// breaks end a statement. Chevrotain does the scanning; this file turns its
// errors into E101/E103 diagnostics and its token stream into one where every
// surviving Newline or Semicolon is a statement separator.

import { createToken, Lexer, type IToken, type TokenType } from "chevrotain";
import { diag, type Diagnostic, type Span } from "../diagnostics.ts";

// ---------------------------------------------------------------------------
// Token types. `label` is what messages show ("expected ')' but found ...").

const WhiteSpace = createToken({ name: "WhiteSpace", pattern: /[ \t\r\f\v\uFEFF]+/, group: Lexer.SKIPPED });
const HashComment = createToken({ name: "HashComment", pattern: /#[^\n]*/, group: Lexer.SKIPPED });
const SlashComment = createToken({ name: "SlashComment", pattern: /\/\/[^\n]*/, group: Lexer.SKIPPED });

export const Newline = createToken({ name: "Newline", pattern: /\n/, line_breaks: true, label: "end of line" });
export const Semicolon = createToken({ name: "Semicolon", pattern: /;/, label: "';'" });

export const Ident = createToken({ name: "Ident", pattern: /[A-Za-z_][A-Za-z0-9_]*/, label: "a name" });

function keyword(word: string): TokenType {
  return createToken({ name: word[0]!.toUpperCase() + word.slice(1), pattern: new RegExp(word), longer_alt: Ident, label: `'${word}'` });
}
export const Model = keyword("model");
export const Def = keyword("def");
export const Input = keyword("input");
export const Param = keyword("param");
export const Output = keyword("output");
export const Loss = keyword("loss");
export const Optimizer = keyword("optimizer");
export const Return = keyword("return");
export const True = keyword("true");
export const False = keyword("false");

const NUMBER = /\d+(?:\.\d+)?(?:[eE][+-]?\d+)?/y;
const DIGITS = /\d+/y;
/**
 * Numbers. Right after a '.', only digits are taken, so that the generated
 * layer path `c1.1.weight` lexes as c1 . 1 . weight rather than c1 . 1.0 ...
 */
export const NumberLit = createToken({
  name: "Number",
  pattern: {
    exec(text: string, offset: number): RegExpExecArray | null {
      const re = offset > 0 && text[offset - 1] === "." ? DIGITS : NUMBER;
      re.lastIndex = offset;
      return re.exec(text);
    },
  },
  line_breaks: false,
  start_chars_hint: ["0", "1", "2", "3", "4", "5", "6", "7", "8", "9"],
  label: "a number",
});

export const StringLit = createToken({ name: "String", pattern: /"(?:[^"\\\n]|\\[^\n])*"/, label: "a string" });
/** A string that reaches the end of its line: reported as E103, then parsed as if closed. */
const UnterminatedString = createToken({ name: "UnterminatedString", pattern: /"(?:[^"\\\n]|\\[^\n])*\\?/ });

export const Pipe = createToken({ name: "Pipe", pattern: /\|>/, label: "'|>'" });
export const AddOp = createToken({ name: "AddOp", pattern: Lexer.NA, label: "'+' or '-'" });
export const MulOp = createToken({ name: "MulOp", pattern: Lexer.NA, label: "'*', '/' or '@'" });
export const Plus = createToken({ name: "Plus", pattern: /\+/, categories: [AddOp], label: "'+'" });
export const Minus = createToken({ name: "Minus", pattern: /-/, categories: [AddOp], label: "'-'" });
export const Star = createToken({ name: "Star", pattern: /\*/, categories: [MulOp], label: "'*'" });
export const Slash = createToken({ name: "Slash", pattern: /\//, categories: [MulOp], label: "'/'" });
export const At = createToken({ name: "At", pattern: /@/, categories: [MulOp], label: "'@'" });
export const Equals = createToken({ name: "Equals", pattern: /=/, label: "'='" });
export const Colon = createToken({ name: "Colon", pattern: /:/, label: "':'" });
export const Comma = createToken({ name: "Comma", pattern: /,/, label: "','" });
export const Dot = createToken({ name: "Dot", pattern: /\./, label: "'.'" });
export const LParen = createToken({ name: "LParen", pattern: /\(/, label: "'('" });
export const RParen = createToken({ name: "RParen", pattern: /\)/, label: "')'" });
export const LBracket = createToken({ name: "LBracket", pattern: /\[/, label: "'['" });
export const RBracket = createToken({ name: "RBracket", pattern: /\]/, label: "']'" });
export const LCurly = createToken({ name: "LCurly", pattern: /\{/, label: "'{'" });
export const RCurly = createToken({ name: "RCurly", pattern: /\}/, label: "'}'" });

/** Every token type the parser sees (order matters for the lexer: comments before '/', keywords before names). */
export const parserTokens: TokenType[] = [
  Newline, Semicolon,
  Model, Def, Input, Param, Output, Loss, Optimizer, Return, True, False,
  Ident, NumberLit, StringLit,
  Pipe, AddOp, MulOp, Plus, Minus, Star, Slash, At,
  Equals, Colon, Comma, Dot, LParen, RParen, LBracket, RBracket, LCurly, RCurly,
];

/** Statement-only keywords: nothing inside brackets can start with them. */
export const STATEMENT_KEYWORDS: ReadonlySet<TokenType> = new Set([Model, Def, Input, Param, Output, Loss, Optimizer, Return]);
const KEYWORDS: ReadonlySet<TokenType> = new Set([...STATEMENT_KEYWORDS, True, False]);

const chevLexer = new Lexer(
  // Comments before '/', keywords before names, the unterminated string after the closed one.
  [WhiteSpace, HashComment, SlashComment, ...parserTokens.slice(0, parserTokens.indexOf(StringLit) + 1), UnterminatedString, ...parserTokens.slice(parserTokens.indexOf(StringLit) + 1)],
  {
    positionTracking: "full",
    // Only '\n' ends a line, as in renderDiagnostic; a stray '\r' is whitespace.
    lineTerminatorsPattern: /\n/g,
    lineTerminatorCharacters: ["\n"],
    ensureOptimizations: false,
  },
);

// ---------------------------------------------------------------------------

export function tokenSpan(t: IToken, file: string): Span {
  return {
    file,
    line: t.startLine ?? 1,
    col: t.startColumn ?? 1,
    endLine: t.endLine ?? t.startLine ?? 1,
    endCol: t.endColumn ?? t.startColumn ?? 1,
  };
}

export interface LexResult {
  /** Significant tokens; every Newline and Semicolon left in is a statement separator. */
  readonly tokens: IToken[];
  readonly diagnostics: Diagnostic[];
  /** Spans with a lexical error, so the parser does not report a second error for the same mistake. */
  readonly errorSpans: Span[];
}

export function lex(source: string, file: string): LexResult {
  const result = chevLexer.tokenize(source);
  const diagnostics: Diagnostic[] = [];
  const errorSpans: Span[] = [];
  for (const e of result.errors) {
    const text = source.slice(e.offset, e.offset + e.length);
    const line = e.line ?? 1;
    const col = e.column ?? 1;
    const span: Span = { file, line, col, endLine: line, endCol: col + Math.max(1, e.length) - 1 };
    const shown = text.length > 20 ? `${text.slice(0, 20)}...` : text;
    const message = text.length === 1 ? `unexpected character '${shown}'` : `unexpected characters '${shown}'`;
    diagnostics.push(diag("E101", message, span, { hint: hintFor(text) }));
    errorSpans.push(span);
  }
  const tokens: IToken[] = [];
  for (const t of result.tokens) {
    if (t.tokenType === UnterminatedString) {
      const span = tokenSpan(t, file);
      diagnostics.push(diag("E103", "unterminated string: expected a closing '\"' before the end of the line", span));
      errorSpans.push(span);
      // Parse on as if the string were closed.
      t.tokenType = StringLit;
      t.tokenTypeIdx = StringLit.tokenTypeIdx!;
    }
    tokens.push(t);
  }
  return { tokens: filterNewlines(tokens), diagnostics, errorSpans };
}

function hintFor(text: string): string | undefined {
  if (text.startsWith("'")) return "strings use double quotes: \"...\"";
  if (text.startsWith("|")) return "the pipe operator is '|>'";
  return undefined;
}

// ---------------------------------------------------------------------------
// Newlines. A line break ends a statement unless the expression obviously
// goes on: inside () or [], after an operator, '|>', ',' or '=', or before a
// line that starts with '|>', an operator, ')' , ']' or ','.

const CONTINUES_AFTER: ReadonlySet<TokenType> = new Set([Comma, LParen, LBracket, Plus, Minus, Star, Slash, At, Pipe, Equals, Colon, Dot, LCurly]);
const CONTINUES_BEFORE: ReadonlySet<TokenType> = new Set([Pipe, Plus, Minus, Star, Slash, At, RParen, RBracket, Comma, Dot, LCurly]);

function isSeparator(t: IToken | undefined): boolean {
  return t !== undefined && (t.tokenType === Newline || t.tokenType === Semicolon);
}

/**
 * Drops the line breaks that do not end a statement. Bracket depth is reset
 * by braces, ';' and statement keywords, and a line break inside an unclosed
 * bracket still ends the statement when the next line plainly starts a new
 * one, so one missing ')' does not swallow the rest of the model.
 *
 * Inside brackets a keyword followed by '=' is a keyword argument's name
 * (`rnn(x, 8, return="last")`) and becomes an identifier here.
 */
function filterNewlines(raw: readonly IToken[]): IToken[] {
  const out: IToken[] = [];
  let depth = 0;
  for (let i = 0; i < raw.length; i++) {
    const t = raw[i]!;
    const type = t.tokenType;
    if (type !== Newline) {
      if (depth > 0 && KEYWORDS.has(type) && raw[i + 1]?.tokenType === Equals) {
        t.tokenType = Ident;
        t.tokenTypeIdx = Ident.tokenTypeIdx!;
        out.push(t);
        continue;
      }
      if (type === LParen || type === LBracket) depth++;
      else if (type === RParen || type === RBracket) depth = Math.max(0, depth - 1);
      else if (type === LCurly || type === RCurly || type === Semicolon || STATEMENT_KEYWORDS.has(type)) depth = 0;
      out.push(t);
      continue;
    }
    let k = i + 1;
    while (k < raw.length && raw[k]!.tokenType === Newline) k++;
    const prev = out[out.length - 1];
    const next = raw[k];
    i = k - 1;
    if (prev === undefined || next === undefined || isSeparator(prev)) continue;
    if (CONTINUES_AFTER.has(prev.tokenType) || CONTINUES_BEFORE.has(next.tokenType)) continue;
    if (depth > 0) {
      if (!startsStatement(raw, k)) continue;
      depth = 0;
    }
    out.push(t);
  }
  return out;
}

/** Whether the line starting at raw[k] starts a statement (used only inside an unclosed bracket). */
function startsStatement(raw: readonly IToken[], k: number): boolean {
  const first = raw[k]!.tokenType;
  const second = raw[k + 1]?.tokenType;
  if (first === RCurly || first === LCurly || (STATEMENT_KEYWORDS.has(first) && second !== Equals)) return true;
  if ((first !== Ident && !KEYWORDS.has(first)) || (second !== Equals && second !== Colon)) return false;
  // `name = ...` inside a call is a keyword argument; a line that closes the
  // enclosing bracket (`filters=6)`) continues the call.
  let balance = 0;
  for (let j = k; j < raw.length && raw[j]!.tokenType !== Newline; j++) {
    const type = raw[j]!.tokenType;
    if (type === LParen || type === LBracket) balance++;
    else if (type === RParen || type === RBracket) balance--;
    if (balance < 0) return false;
  }
  return true;
}

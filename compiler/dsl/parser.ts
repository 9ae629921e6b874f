// The .cnn grammar (DSL.md §2–§5) as a chevrotain CstParser, and the
// conversion of its concrete syntax trees into the AST of ast.ts.
//
// The parser is used one statement (or one block header) at a time: parse.ts
// splits the token stream at separators, so a syntax error costs only its own
// statement and every broken statement gets its own diagnostic. See README.md.

import { CstParser, EOF, type CstElement, type CstNode, type IOrAlt, type IParserErrorMessageProvider, type IToken, type TokenType } from "chevrotain";
import type { Span } from "../diagnostics.ts";
import {
  joinSpans,
  type BinaryExpr,
  type CallExpr,
  type Expr,
  type Ident as IdentNode,
  type KeywordArgExpr,
  type NameExpr,
  type Stmt,
  type TypeExpr,
} from "./ast.ts";
import {
  AddOp, Colon, Comma, Def, Dot, Equals, False, Ident, Input, LBracket, LCurly, Loss, LParen, Minus, Model, MulOp, NumberLit,
  Optimizer, Output, Param, parserTokens, Pipe, RBracket, Return, RParen, StringLit, True, tokenSpan,
} from "./lexer.ts";

// ---------------------------------------------------------------------------
// Messages. Each one is the "expected ..." half; parse.ts appends "but found ...".

/** What a rule expects when it wants a name, in the user's words. */
const NAME_IN_RULE: Record<string, string> = {
  modelHeader: "a model name",
  defHeader: "a name",
  pipeTarget: "a function name after '|>'",
  typeExpr: "an element type (f32, i32 or bool)",
  indexList: "an index name",
  argument: "an expression",
};

function label(t: TokenType): string {
  if (t === EOF) return "end of statement";
  return t.LABEL ?? t.name;
}

const messages: IParserErrorMessageProvider = {
  buildMismatchTokenMessage({ expected, ruleName }) {
    if (expected === Ident) return `expected ${NAME_IN_RULE[ruleName] ?? "a name"}`;
    return `expected ${label(expected)}`;
  },
  buildNotAllInputParsedMessage() {
    return "expected end of statement (a new line or ';')";
  },
  buildNoViableAltMessage({ expectedPathsPerAlt, customUserDescription }) {
    if (customUserDescription) return `expected ${customUserDescription}`;
    const firsts = new Set<string>();
    for (const alt of expectedPathsPerAlt) for (const path of alt) if (path[0]) firsts.add(label(path[0]));
    return `expected ${[...firsts].join(" or ")}`;
  },
  buildEarlyExitMessage({ expectedIterationPaths, customUserDescription }) {
    if (customUserDescription) return `expected ${customUserDescription}`;
    const firsts = new Set<string>();
    for (const path of expectedIterationPaths) if (path[0]) firsts.add(label(path[0]));
    return `expected ${[...firsts].join(" or ")}`;
  },
};

// ---------------------------------------------------------------------------
// Grammar. Labels keep interleaved children in source order in the CST.

class CnnParser extends CstParser {
  constructor() {
    super(parserTokens, { recoveryEnabled: false, maxLookahead: 3, errorMessageProvider: messages });
    this.performSelfAnalysis();
  }

  /** `model Name {` */
  modelHeader = this.RULE("modelHeader", () => {
    this.CONSUME(Model);
    this.CONSUME(Ident, { LABEL: "name" });
    this.CONSUME(LCurly);
  });

  /** `def name(a, b, c) {` */
  defHeader = this.RULE("defHeader", () => {
    this.CONSUME(Def);
    this.CONSUME(Ident, { LABEL: "name" });
    this.CONSUME(LParen);
    this.OPTION(() => {
      this.CONSUME2(Ident, { LABEL: "param" });
      this.MANY(() => {
        this.CONSUME(Comma);
        this.CONSUME3(Ident, { LABEL: "param" });
      });
      this.OPTION2(() => this.CONSUME2(Comma));
    });
    this.CONSUME(RParen);
    this.CONSUME(LCurly);
  });

  // The alternatives of OR are built once and reused (chevrotain's advice;
  // it also saves a closure per alternative per call).
  private statementAlts?: IOrAlt<unknown>[];
  private atomAlts?: IOrAlt<unknown>[];
  private pathPartAlts?: IOrAlt<unknown>[];
  private suffixAlts?: IOrAlt<unknown>[];

  statement = this.RULE("statement", () => {
    this.OR({
      DEF: (this.statementAlts ??= [
        { ALT: () => this.SUBRULE(this.inputStmt) },
        { ALT: () => this.SUBRULE(this.paramStmt) },
        { ALT: () => this.SUBRULE(this.outputStmt) },
        { ALT: () => this.SUBRULE(this.lossStmt) },
        { ALT: () => this.SUBRULE(this.optimizerStmt) },
        { ALT: () => this.SUBRULE(this.returnStmt) },
        { ALT: () => this.SUBRULE(this.bindStmt) },
      ]),
      ERR_MSG: "a statement (a binding 'name = ...', or input, param, output, loss, optimizer, return)",
    });
  });

  inputStmt = this.RULE("inputStmt", () => {
    this.CONSUME(Input);
    this.CONSUME(Ident, { LABEL: "name" });
    this.CONSUME(Colon);
    this.SUBRULE(this.typeExpr);
  });

  paramStmt = this.RULE("paramStmt", () => {
    this.CONSUME(Param);
    this.CONSUME(Ident, { LABEL: "name" });
    this.CONSUME(Colon);
    this.SUBRULE(this.typeExpr);
    this.OPTION(() => {
      this.CONSUME(Equals);
      this.SUBRULE(this.expression);
    });
  });

  outputStmt = this.RULE("outputStmt", () => {
    this.CONSUME(Output);
    this.CONSUME(Ident, { LABEL: "name" });
    this.OPTION(() => {
      this.CONSUME(Colon);
      this.SUBRULE(this.typeExpr);
    });
    this.OPTION2(() => {
      this.CONSUME(Equals);
      this.SUBRULE(this.expression);
    });
  });

  lossStmt = this.RULE("lossStmt", () => {
    this.CONSUME(Loss);
    this.CONSUME(Ident, { LABEL: "name" });
    this.CONSUME(Equals);
    this.SUBRULE(this.expression);
  });

  optimizerStmt = this.RULE("optimizerStmt", () => {
    this.CONSUME(Optimizer);
    this.SUBRULE(this.pipeTarget);
  });

  returnStmt = this.RULE("returnStmt", () => {
    this.CONSUME(Return);
    this.SUBRULE(this.expression);
  });

  /** `name = e`, `name: T = e`, `name[i, j] = e`, `name[i, j]: T = e`. */
  bindStmt = this.RULE("bindStmt", () => {
    this.CONSUME(Ident, { LABEL: "name" });
    this.OPTION(() => this.SUBRULE(this.indexList));
    this.OPTION2(() => {
      this.CONSUME(Colon);
      this.SUBRULE(this.typeExpr);
    });
    this.CONSUME(Equals);
    this.SUBRULE(this.expression);
  });

  /** `f32[N, 1, 28, 28]`; `f32[]` and a bare `f32` are scalars. */
  typeExpr = this.RULE("typeExpr", () => {
    this.CONSUME(Ident, { LABEL: "dtype" });
    this.OPTION(() => {
      this.CONSUME(LBracket);
      this.OPTION2(() => {
        this.SUBRULE(this.expression, { LABEL: "dim" });
        this.MANY(() => {
          this.CONSUME(Comma);
          this.SUBRULE2(this.expression, { LABEL: "dim" });
        });
        this.OPTION3(() => this.CONSUME2(Comma));
      });
      this.CONSUME(RBracket);
    });
  });

  /** `[i, j]` in index notation. */
  indexList = this.RULE("indexList", () => {
    this.CONSUME(LBracket);
    this.OPTION(() => {
      this.CONSUME(Ident, { LABEL: "index" });
      this.MANY(() => {
        this.CONSUME(Comma);
        this.CONSUME2(Ident, { LABEL: "index" });
      });
      this.OPTION2(() => this.CONSUME2(Comma));
    });
    this.CONSUME(RBracket);
  });

  /** Lowest precedence: `a |> f |> g(k=1)`. */
  expression = this.RULE("expression", () => {
    this.SUBRULE(this.additive, { LABEL: "head" });
    this.MANY(() => {
      this.CONSUME(Pipe);
      this.SUBRULE(this.pipeTarget, { LABEL: "target" });
    });
  });

  /** `relu` or `f(args)`: the right side of '|>', and the optimizer. */
  pipeTarget = this.RULE("pipeTarget", () => {
    this.CONSUME(Ident, { LABEL: "callee" });
    this.OPTION(() => {
      this.CONSUME(LParen);
      this.SUBRULE(this.argList);
      this.CONSUME(RParen);
    });
  });

  additive = this.RULE("additive", () => {
    this.SUBRULE(this.multiplicative, { LABEL: "operand" });
    this.MANY(() => {
      this.CONSUME(AddOp, { LABEL: "op" });
      this.SUBRULE2(this.multiplicative, { LABEL: "operand" });
    });
  });

  multiplicative = this.RULE("multiplicative", () => {
    this.SUBRULE(this.unary, { LABEL: "operand" });
    this.MANY(() => {
      this.CONSUME(MulOp, { LABEL: "op" });
      this.SUBRULE2(this.unary, { LABEL: "operand" });
    });
  });

  /** A run of unary minus is a loop, not recursion: `- - - x` costs no stack. */
  unary = this.RULE("unary", () => {
    this.MANY(() => this.CONSUME(Minus, { LABEL: "minus" }));
    this.SUBRULE(this.atom);
  });

  atom = this.RULE("atom", () => {
    this.OR({
      DEF: (this.atomAlts ??= [
        { ALT: () => this.CONSUME(NumberLit, { LABEL: "number" }) },
        { ALT: () => this.CONSUME(StringLit, { LABEL: "string" }) },
        { ALT: () => this.CONSUME(True, { LABEL: "bool" }) },
        { ALT: () => this.CONSUME(False, { LABEL: "bool" }) },
        { ALT: () => this.SUBRULE(this.parenExpr) },
        { ALT: () => this.SUBRULE(this.listExpr) },
        { ALT: () => this.SUBRULE(this.nameExpr) },
      ]),
      ERR_MSG: "an expression",
    });
  });

  parenExpr = this.RULE("parenExpr", () => {
    this.CONSUME(LParen);
    this.SUBRULE(this.expression);
    this.CONSUME(RParen);
  });

  listExpr = this.RULE("listExpr", () => {
    this.CONSUME(LBracket);
    this.OPTION(() => {
      this.SUBRULE(this.expression, { LABEL: "item" });
      this.MANY(() => {
        this.CONSUME(Comma);
        this.SUBRULE2(this.expression, { LABEL: "item" });
      });
      this.OPTION2(() => this.CONSUME2(Comma));
    });
    this.CONSUME(RBracket);
  });

  /** `x`, `c1.weight`, `r1.c1.1.weight`, a call `f(...)`, or `x[i, j]`. */
  nameExpr = this.RULE("nameExpr", () => {
    this.CONSUME(Ident, { LABEL: "part" });
    this.MANY(() => {
      this.CONSUME(Dot);
      this.OR(
        (this.pathPartAlts ??= [
          { ALT: () => this.CONSUME2(Ident, { LABEL: "part" }) },
          { ALT: () => this.CONSUME(NumberLit, { LABEL: "part" }) },
        ]),
      );
    });
    this.OPTION(() => {
      this.OR2(
        (this.suffixAlts ??= [
          {
            ALT: () => {
              this.CONSUME(LParen);
              this.SUBRULE(this.argList);
              this.CONSUME(RParen);
            },
          },
          { ALT: () => this.SUBRULE(this.indexList) },
        ]),
      );
    });
  });

  /** Positional then keyword arguments, trailing comma allowed; the order is checked when building the AST. */
  argList = this.RULE("argList", () => {
    this.OPTION(() => {
      this.SUBRULE(this.argument, { LABEL: "arg" });
      this.MANY(() => {
        this.CONSUME(Comma);
        this.SUBRULE2(this.argument, { LABEL: "arg" });
      });
      this.OPTION2(() => this.CONSUME2(Comma));
    });
  });

  argument = this.RULE("argument", () => {
    this.OPTION(() => {
      this.CONSUME(Ident, { LABEL: "key" });
      this.CONSUME(Equals);
    });
    this.SUBRULE(this.expression);
  });
}

/** One parser for the process: building it analyses the grammar, which is the slow part. */
export const cnnParser = new CnnParser();

// ---------------------------------------------------------------------------
// CST -> AST.

/** A syntax error found while building the AST (ordering of arguments, limits). */
export class SyntaxIssue extends Error {
  constructor(message: string, readonly span: Span) {
    super(message);
  }
}

/** Deeper expressions are rejected so that no later recursive pass can overflow the stack. */
export const MAX_EXPR_DEPTH = 500;

type Children = Record<string, CstElement[] | undefined>;

function isToken(e: CstElement): e is IToken {
  return (e as IToken).image !== undefined;
}

export class AstBuilder {
  /** Depth of each expression node of the statement being built (cleared per statement; a WeakMap costs GC time). */
  private readonly depth = new Map<object, number>();

  constructor(private readonly file: string) {}

  span(t: IToken): Span {
    return tokenSpan(t, this.file);
  }

  ident(t: IToken): IdentNode {
    return { kind: "ident", name: t.image, span: this.span(t) };
  }

  modelHeader(node: CstNode): { name: IdentNode } {
    return { name: this.ident(tok(node.children, "name")) };
  }

  defHeader(node: CstNode): { name: IdentNode; params: IdentNode[] } {
    return { name: this.ident(tok(node.children, "name")), params: toks(node.children, "param").map((t) => this.ident(t)) };
  }

  /** `first`/`last`: the statement's first and last tokens. */
  statement(node: CstNode, first: IToken, last: IToken): Stmt {
    this.depth.clear();
    try {
      return this.statementOf(node, first, last);
    } finally {
      this.depth.clear();
    }
  }

  private statementOf(node: CstNode, first: IToken, last: IToken): Stmt {
    const inner = sub(node.children, firstKey(node.children));
    const c = inner.children;
    const span = joinSpans(this.span(first), this.span(last));
    switch (inner.name) {
      case "inputStmt":
        return { kind: "input", name: this.ident(tok(c, "name")), type: this.typeExpr(sub(c, "typeExpr")), span };
      case "paramStmt": {
        const init = c.expression ? this.expression(sub(c, "expression")) : undefined;
        return { kind: "param", name: this.ident(tok(c, "name")), type: this.typeExpr(sub(c, "typeExpr")), ...(init ? { init } : {}), span };
      }
      case "outputStmt": {
        const annotation = c.typeExpr ? this.typeExpr(sub(c, "typeExpr")) : undefined;
        const value = c.expression ? this.expression(sub(c, "expression")) : undefined;
        return { kind: "output", name: this.ident(tok(c, "name")), ...(annotation ? { annotation } : {}), ...(value ? { value } : {}), span };
      }
      case "lossStmt":
        return { kind: "loss", name: this.ident(tok(c, "name")), value: this.expression(sub(c, "expression")), span };
      case "optimizerStmt":
        return { kind: "optimizer", call: this.pipeTarget(sub(c, "pipeTarget"), undefined), span };
      case "returnStmt":
        return { kind: "return", value: this.expression(sub(c, "expression")), span };
      case "bindStmt": {
        const name = this.ident(tok(c, "name"));
        const annotation = c.typeExpr ? this.typeExpr(sub(c, "typeExpr")) : undefined;
        const value = this.expression(sub(c, "expression"));
        if (c.indexList) {
          const indices = this.indexList(sub(c, "indexList"));
          return { kind: "index", name, indices, ...(annotation ? { annotation } : {}), value, span };
        }
        return { kind: "bind", name, ...(annotation ? { annotation } : {}), value, span };
      }
      default:
        throw new Error(`unknown statement rule ${inner.name}`);
    }
  }

  typeExpr(node: CstNode): TypeExpr {
    const c = node.children;
    const dtype = this.ident(tok(c, "dtype"));
    const dims = subs(c, "dim").map((d) => this.expression(d));
    const close = c.RBracket ? tok(c, "RBracket") : undefined;
    return { kind: "type", dtype, dims, span: close ? joinSpans(dtype.span, this.span(close)) : dtype.span };
  }

  indexList(node: CstNode): IdentNode[] {
    return toks(node.children, "index").map((t) => this.ident(t));
  }

  expression(node: CstNode): Expr {
    const c = node.children;
    let acc = this.additive(sub(c, "head"));
    for (const target of subs(c, "target")) acc = this.pipeTarget(target, acc);
    return acc;
  }

  /** `f(args)` or a bare `f`; with `piped`, the piped value becomes the first positional argument. */
  pipeTarget(node: CstNode, piped: Expr | undefined): CallExpr {
    const c = node.children;
    const callee = this.ident(tok(c, "callee"));
    const { args, kwargs } = c.argList ? this.argList(sub(c, "argList")) : { args: [], kwargs: [] };
    const end = c.RParen ? this.span(tok(c, "RParen")) : callee.span;
    const call: CallExpr = {
      kind: "call",
      callee,
      args: piped ? [piped, ...args] : args,
      kwargs,
      piped: piped !== undefined,
      span: joinSpans(piped ? piped.span : callee.span, end),
    };
    return this.track(call, [...call.args, ...kwargs.map((k) => k.value)]);
  }

  private binaryChain(node: CstNode, operand: (n: CstNode) => Expr): Expr {
    const operands = subs(node.children, "operand");
    const ops = toks(node.children, "op");
    let acc = operand(operands[0]!);
    for (let i = 0; i < ops.length; i++) {
      const right = operand(operands[i + 1]!);
      const bin: BinaryExpr = {
        kind: "binary",
        op: ops[i]!.image as BinaryExpr["op"],
        left: acc,
        right,
        opSpan: this.span(ops[i]!),
        span: joinSpans(acc.span, right.span),
      };
      acc = this.track(bin, [acc, right]);
    }
    return acc;
  }

  additive(node: CstNode): Expr {
    return this.binaryChain(node, (n) => this.multiplicative(n));
  }

  multiplicative(node: CstNode): Expr {
    return this.binaryChain(node, (n) => this.unary(n));
  }

  /** Minus applied to a number literal folds into the literal: `-2` is the number -2. */
  unary(node: CstNode): Expr {
    const minuses = toks(node.children, "minus");
    let acc = this.atom(sub(node.children, "atom"));
    for (let i = minuses.length - 1; i >= 0; i--) {
      const span = joinSpans(this.span(minuses[i]!), acc.span);
      if (acc.kind === "number") acc = { ...acc, value: -acc.value, span };
      else acc = this.track({ kind: "unary", op: "-", operand: acc, span }, [acc]);
    }
    return acc;
  }

  atom(node: CstNode): Expr {
    const c = node.children;
    if (c.number) return this.number(tok(c, "number"));
    if (c.string) {
      const t = tok(c, "string");
      return { kind: "string", value: unescape(t.image), span: this.span(t) };
    }
    if (c.bool) {
      const t = tok(c, "bool");
      return { kind: "bool", value: t.image === "true", span: this.span(t) };
    }
    if (c.parenExpr) {
      const p = sub(c, "parenExpr");
      const inner = this.expression(sub(p.children, "expression"));
      // The parentheses belong to the expression's extent (carets under `(a + b)`).
      const widened = { ...inner, span: joinSpans(this.span(tok(p.children, "LParen")), this.span(tok(p.children, "RParen"))) };
      return this.track(widened, [inner], 0);
    }
    if (c.listExpr) {
      const l = sub(c, "listExpr");
      const items = subs(l.children, "item").map((i) => this.expression(i));
      const span = joinSpans(this.span(tok(l.children, "LBracket")), this.span(tok(l.children, "RBracket")));
      return this.track({ kind: "list", items, span }, items);
    }
    return this.nameExpr(sub(c, "nameExpr"));
  }

  number(t: IToken): Expr {
    const value = Number(t.image);
    if (!Number.isFinite(value)) throw new SyntaxIssue(`number ${t.image} is too large`, this.span(t));
    return { kind: "number", value, isInt: /^\d+$/.test(t.image), span: this.span(t) };
  }

  nameExpr(node: CstNode): Expr {
    const c = node.children;
    const parts = toks(c, "part").map((t) => this.ident(t));
    const name: NameExpr = { kind: "name", parts, span: joinSpans(parts[0]!.span, parts[parts.length - 1]!.span) };
    if (c.LParen) {
      if (parts.length > 1) {
        throw new SyntaxIssue(
          `expected a builtin or def name before '(' but found the dotted name '${parts.map((p) => p.name).join(".")}'`,
          name.span,
        );
      }
      const { args, kwargs } = this.argList(sub(c, "argList"));
      const call: CallExpr = { kind: "call", callee: parts[0]!, args, kwargs, piped: false, span: joinSpans(name.span, this.span(tok(c, "RParen"))) };
      return this.track(call, [...args, ...kwargs.map((k) => k.value)]);
    }
    if (c.indexList) {
      const list = sub(c, "indexList");
      const indices = this.indexList(list);
      return { kind: "indexed", target: name, indices, span: joinSpans(name.span, this.span(tok(list.children, "RBracket"))) };
    }
    return name;
  }

  argList(node: CstNode): { args: Expr[]; kwargs: KeywordArgExpr[] } {
    const args: Expr[] = [];
    const kwargs: KeywordArgExpr[] = [];
    for (const a of subs(node.children, "arg")) {
      const value = this.expression(sub(a.children, "expression"));
      if (a.children.key) {
        kwargs.push({ name: this.ident(tok(a.children, "key")), value });
      } else if (kwargs.length > 0) {
        const last = kwargs[kwargs.length - 1]!.name.name;
        throw new SyntaxIssue(`expected a keyword argument after '${last}=' but found a positional argument`, value.span);
      } else {
        args.push(value);
      }
    }
    return { args, kwargs };
  }

  /** Records the depth of a new node; `extra` is 1 for a real node, 0 for a re-spanned copy. */
  private track<T extends Expr>(node: T, children: readonly Expr[], extra = 1): T {
    let d = 0;
    for (const ch of children) d = Math.max(d, this.depth.get(ch) ?? 1);
    d += extra;
    if (d > MAX_EXPR_DEPTH) {
      throw new SyntaxIssue(`expression is nested too deeply (more than ${MAX_EXPR_DEPTH} levels); split it into several bindings`, node.span);
    }
    this.depth.set(node, d);
    return node;
  }
}

function unescape(image: string): string {
  // The lexer's token includes the quotes (an unterminated one only the opening quote).
  const closed = image.length >= 2 && image.endsWith('"') && !isEscaped(image, image.length - 1);
  const body = image.slice(1, closed ? -1 : undefined);
  return body.replace(/\\(.?)/gs, (_, ch: string) => (ch === "n" ? "\n" : ch === "t" ? "\t" : ch));
}

function isEscaped(s: string, i: number): boolean {
  let n = 0;
  for (let j = i - 1; j >= 0 && s[j] === "\\"; j--) n++;
  return n % 2 === 1;
}

// CST accessors: the grammar guarantees the presence of what they read.

function firstKey(c: Children): string {
  return Object.keys(c)[0]!;
}

function tok(c: Children, key: string): IToken {
  const e = c[key]?.[0];
  if (e === undefined || !isToken(e)) throw new Error(`CST: missing token ${key}`);
  return e;
}

function toks(c: Children, key: string): IToken[] {
  return (c[key] ?? []).filter(isToken);
}

function sub(c: Children, key: string): CstNode {
  const e = c[key]?.[0];
  if (e === undefined || isToken(e)) throw new Error(`CST: missing node ${key}`);
  return e;
}

function subs(c: Children, key: string): CstNode[] {
  return (c[key] ?? []).filter((e): e is CstNode => !isToken(e));
}

// Property tests of the front end: whatever the input, parseProgram returns,
// never throws, and every span it produces (diagnostics and AST) lies inside
// the source. Plus a round trip: random expressions printed with minimal
// parentheses parse back to the same tree.

import fc from "fast-check";
import { describe, expect, it } from "vitest";
import type { Span } from "../../compiler/diagnostics.ts";
import type { BindStmt } from "../../compiler/dsl/ast.ts";
import { MAX_DIAGNOSTICS, parseProgram } from "../../compiler/dsl/parse.ts";
import { show } from "./show.ts";

const RUNS = 400;
const FILE = "fuzz.cnn";

const VALID_PROGRAMS = [
  `# LeNet-5
model LeNet5 {
  input x: f32[N, 1, 28, 28]
  input labels: i32[N]
  c1 = conv2d(x, filters=6, kernel=5, padding=2) |> relu
  s2 = maxpool2d(c1, window=2)
  f6: f32[N, 84] = dense(flatten(s2), 84) |> relu
  output probs = softmax(f6, axis=-1)
  loss xent = cross_entropy(f6, labels)
  optimizer adam(lr=0.001)
}
`,
  `def block(x, ch) {
  h = conv2d(x, filters=ch, kernel=3, padding=[[1, 1], [1, 1]])
    |> batchnorm
    |> relu
  return h + x  // residual
}
model Res {
  input x: f32[N, 8, L - 2, 2*L]
  r1 = block(x, 8)
  y = transpose(r1.c1.weight, [1, 0]) @ r1 - -0.5 * 1e-3
  output y
}
`,
  `model Idx {
  input x: f32[N, 4]; param w: f32[4, 3] = normal(0, 0.1)
  param b: f32[3] = zeros
  y[i, k]: f32[N, 3] = x[i, j] * w[j, k] + b[k]
  e = einsum("ni,ik->nk", x, w, name="e\\"q")
  r = rnn(e, 8, cell="lstm", return="last", bias=true)
  output out: f32[N, 3] = y
}
`,
];

const VOCAB = [
  "model", "def", "input", "param", "output", "loss", "optimizer", "return", "true", "false",
  "x", "N", "f32", "relu", "conv2d", "c1", "weight", "filters", "k", "0", "12", "0.5", "1e-3", "-2",
  '"s"', '"', "\\", "|>", "+", "-", "*", "/", "@", "=", ":", ",", ".", "(", ")", "[", "]", "{", "}", ";",
  "\n", "\n", " ", "#", "//", "$", "'", "|", "\t", "\r",
];

function checkSpan(span: Span | undefined, lines: readonly string[], what: string): void {
  if (span === undefined) throw new Error(`${what} has no span`);
  const ok =
    span.file === FILE &&
    Number.isInteger(span.line) && Number.isInteger(span.col) && Number.isInteger(span.endLine) && Number.isInteger(span.endCol) &&
    span.line >= 1 && span.line <= lines.length && span.col >= 1 && span.col <= lines[span.line - 1]!.length + 1 &&
    span.endLine >= span.line && span.endLine <= lines.length && span.endCol >= 1 && span.endCol <= lines[span.endLine - 1]!.length + 1 &&
    (span.endLine > span.line || span.endCol >= span.col);
  if (!ok) throw new Error(`${what} has a span outside the source: ${JSON.stringify(span)}`);
}

/** Parses and checks the invariants; returns the result for further checks. */
function check(source: string) {
  const result = parseProgram(source, FILE);
  const lines = source.split("\n");
  expect(result.program.file).toBe(FILE);
  expect(result.diagnostics.length).toBeLessThanOrEqual(MAX_DIAGNOSTICS);
  for (const d of result.diagnostics) {
    expect(["E101", "E102", "E103"]).toContain(d.code);
    expect(d.message).toMatch(/^(expected|unexpected|unterminated|model|def|expression|number)/);
    expect(d.message).not.toMatch(/undefined|NaN|-->|Expecting|<EOF>/);
    checkSpan(d.span, lines, `diagnostic '${d.message}'`);
  }
  // Every span in the AST, walked without recursion.
  const stack: unknown[] = [result.program];
  while (stack.length > 0) {
    const node = stack.pop();
    if (node === null || typeof node !== "object") continue;
    if (Array.isArray(node)) {
      stack.push(...node);
      continue;
    }
    for (const [key, value] of Object.entries(node)) {
      if (key === "span" || key === "opSpan") checkSpan(value as Span, lines, `${(node as { kind?: string }).kind} ${key}`);
      else stack.push(value);
    }
  }
  return result;
}

type Mutation =
  | { kind: "delete"; at: number; length: number }
  | { kind: "insert"; at: number; text: string }
  | { kind: "duplicate"; at: number; length: number }
  | { kind: "swap"; at: number };

const mutation: fc.Arbitrary<Mutation> = fc.oneof(
  fc.record({ kind: fc.constant("delete" as const), at: fc.nat(), length: fc.integer({ min: 1, max: 8 }) }),
  fc.record({ kind: fc.constant("insert" as const), at: fc.nat(), text: fc.oneof(fc.constantFrom(...VOCAB), fc.string({ maxLength: 3 })) }),
  fc.record({ kind: fc.constant("duplicate" as const), at: fc.nat(), length: fc.integer({ min: 1, max: 30 }) }),
  fc.record({ kind: fc.constant("swap" as const), at: fc.nat() }),
);

/** Applies mutations to a list of units (characters or tokens). */
function mutate(units: string[], mutations: readonly Mutation[]): string {
  const u = [...units];
  for (const m of mutations) {
    const at = u.length === 0 ? 0 : m.at % u.length;
    if (m.kind === "delete") u.splice(at, m.length);
    else if (m.kind === "insert") u.splice(at, 0, m.text);
    else if (m.kind === "duplicate") u.splice(at, 0, ...u.slice(at, at + m.length));
    else if (at + 1 < u.length) [u[at], u[at + 1]] = [u[at + 1]!, u[at]!];
  }
  return u.join("");
}

function tokensOf(source: string): string[] {
  return source.match(/\s+|[A-Za-z_][A-Za-z0-9_]*|\d+(?:\.\d+)?(?:e-?\d+)?|"(?:[^"\\\n]|\\.)*"|\|>|\/\/[^\n]*|#[^\n]*|./g) ?? [];
}

describe("parser fuzzing: never throws, spans inside the source", () => {
  it("the valid seeds parse cleanly", () => {
    for (const p of VALID_PROGRAMS) expect(check(p).diagnostics).toEqual([]);
  });

  it("random strings", () => {
    fc.assert(
      fc.property(fc.oneof(fc.string({ unit: "binary", maxLength: 200 }), fc.string({ unit: fc.constantFrom(..."model{}()[]=,:|>-+*/@\"\\#\n x1.;"), maxLength: 200 })), (s) => {
        check(s);
      }),
      { numRuns: RUNS },
    );
  });

  it("token soups from the language's vocabulary", () => {
    const soup = fc.array(fc.constantFrom(...VOCAB), { maxLength: 80 }).map((ts) => ts.join(" "));
    const inModel = soup.map((s) => `model M {\n${s}\n}\n`);
    fc.assert(
      fc.property(fc.oneof(soup, inModel), (s) => {
        check(s);
      }),
      { numRuns: RUNS },
    );
  });

  it("character mutations of valid programs", () => {
    fc.assert(
      fc.property(fc.constantFrom(...VALID_PROGRAMS), fc.array(mutation, { minLength: 1, maxLength: 5 }), (p, ms) => {
        check(mutate([...p], ms));
      }),
      { numRuns: RUNS },
    );
  });

  it("token mutations of valid programs", () => {
    fc.assert(
      fc.property(fc.constantFrom(...VALID_PROGRAMS), fc.array(mutation, { minLength: 1, maxLength: 5 }), (p, ms) => {
        check(mutate(tokensOf(p), ms));
      }),
      { numRuns: RUNS },
    );
  });
});

// ---------------------------------------------------------------------------
// Round trip: an expression generated with its expected tree, printed with
// the fewest parentheses the precedence rules allow, optionally broken over
// lines where a line break continues the expression.

interface Gen {
  readonly src: string;
  readonly tree: string;
  /** 0 pipe, 1 additive, 2 multiplicative, 3 unary, 4 atom. */
  readonly prec: number;
  /** A number literal, possibly behind unary minus: `-` before it would fold into the literal. */
  readonly numeric: boolean;
}

const wrap = (g: Gen, prec: number): string => (g.prec < prec ? `(${g.src})` : g.src);
const brk = fc.constantFrom(" ", " ", "\n      ");

const NUMBERS: [string, string][] = [["0", "0"], ["12", "12"], ["0.5", "0.5f"], ["1e-3", "0.001f"], ["2.0", "2f"]];
const NAMES = ["x", "y", "N", "c1.weight", "r1.c1.1.weight"];

const { expr } = fc.letrec<{ expr: Gen; atom: Gen; compound: Gen }>((tie) => ({
  expr: fc.oneof({ maxDepth: 4, depthIdentifier: "expr" }, tie("atom"), tie("compound"), tie("compound")),
  atom: fc.oneof(
    fc.constantFrom(...NUMBERS).map(([src, tree]): Gen => ({ src, tree, prec: 4, numeric: true })),
    fc.constantFrom(...NAMES).map((n): Gen => ({ src: n, tree: n, prec: 4, numeric: false })),
    fc.constantFrom('"ij->ji"', "true", "false").map((s): Gen => ({ src: s, tree: s, prec: 4, numeric: false })),
  ),
  compound: fc.oneof(
    // binary
    fc.tuple(fc.constantFrom("+", "-", "*", "/", "@"), tie("expr"), tie("expr"), brk).map(([op, l, r, b]): Gen => {
      const p = op === "+" || op === "-" ? 1 : 2;
      return { src: `${wrap(l, p)} ${op}${b}${wrap(r, p + 1)}`, tree: `(${l.tree} ${op} ${r.tree})`, prec: p, numeric: false };
    }),
    // unary minus (not of a number literal, which would fold)
    tie("expr").map((e): Gen =>
      e.numeric ? e : { src: `-${wrap(e, 3)}`, tree: `(-${e.tree})`, prec: 3, numeric: false },
    ),
    // call with positional and keyword arguments
    fc.tuple(fc.constantFrom("f", "conv2d", "relu"), fc.array(tie("expr"), { maxLength: 3 }), fc.array(tie("expr"), { maxLength: 2 }), brk).map(
      ([f, args, kws, b]): Gen => {
        const src = [...args.map((a) => a.src), ...kws.map((k, i) => `k${i}=${k.src}`)].join(`,${b}`);
        const tree = [...args.map((a) => a.tree), ...kws.map((k, i) => `k${i}=${k.tree}`)].join(", ");
        return { src: `${f}(${src})`, tree: `${f}(${tree})`, prec: 4, numeric: false };
      },
    ),
    // pipe, with or without arguments, possibly starting a new line
    fc.tuple(tie("expr"), fc.constantFrom("g", "relu"), fc.array(tie("expr"), { maxLength: 2 }), fc.boolean(), fc.constantFrom(" ", "\n    ")).map(
      ([e, f, args, parens, lead]): Gen => {
        const call = parens || args.length > 0 ? `${f}(${args.map((a) => a.src).join(", ")})` : f;
        return { src: `${wrap(e, 0)}${lead}|> ${call}`, tree: `${f}|(${[e.tree, ...args.map((a) => a.tree)].join(", ")})`, prec: 0, numeric: false };
      },
    ),
    // list
    fc.array(tie("expr"), { maxLength: 3 }).map((items): Gen => ({
      src: `[${items.map((i) => i.src).join(", ")}]`,
      tree: `[${items.map((i) => i.tree).join(", ")}]`,
      prec: 4,
      numeric: false,
    })),
  ),
}));

describe("parser round trip", () => {
  it("expressions printed with minimal parentheses parse back to the same tree", () => {
    fc.assert(
      fc.property(expr, (g) => {
        const source = `model M {\n  x = ${g.src}\n  y = 1\n}\n`;
        const { program, diagnostics } = check(source);
        expect(diagnostics).toEqual([]);
        const [x, y] = program.models[0]!.body as BindStmt[];
        expect(show(x!.value)).toBe(g.tree);
        expect(y!.name.name).toBe("y");
      }),
      { numRuns: RUNS },
    );
  });
});

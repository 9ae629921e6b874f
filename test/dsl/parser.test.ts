import { describe, expect, it } from "vitest";
import type { BindStmt, CallExpr, Expr, IndexStmt, Stmt } from "../../compiler/dsl/ast.ts";
import { MAX_DIAGNOSTICS, parseProgram } from "../../compiler/dsl/parse.ts";
import { show, showType } from "./show.ts";

const LENET = `# LeNet-5 (LeCun et al., 1998), NCHW layout, PyTorch semantics
model LeNet5 {
  input x: f32[N, 1, 28, 28]
  input labels: i32[N]

  c1 = conv2d(x, filters=6, kernel=5, padding=2) |> relu   # f32[N, 6, 28, 28]
  s2 = maxpool2d(c1, window=2)                              # f32[N, 6, 14, 14]
  c3 = conv2d(s2, filters=16, kernel=5) |> relu             # f32[N, 16, 10, 10]
  s4 = maxpool2d(c3, window=2)                              # f32[N, 16, 5, 5]
  f5 = dense(flatten(s4), 120) |> relu
  f6: f32[N, 84] = dense(f5, 84) |> relu                    # annotation is checked
  logits = dense(f6, 10)

  output probs = softmax(logits, axis=-1)
  loss xent = cross_entropy(logits, labels)
  optimizer adam(lr=0.001)
}
`;

function parseOk(source: string) {
  const { program, diagnostics } = parseProgram(source, "t.cnn");
  expect(diagnostics.map((d) => `${d.span?.line}:${d.span?.col} ${d.message}`)).toEqual([]);
  return program;
}

/** The statements of `model M { <body> }`. */
function body(lines: string): Stmt[] {
  return [...parseOk(`model M {\n${lines}\n}\n`).models[0]!.body];
}

/** The value of `x = <source>` (line 2 of the file, the expression starting at column 5). */
function expr(source: string): Expr {
  const [s] = body(`x = ${source}`);
  expect(s!.kind).toBe("bind");
  return (s as BindStmt).value;
}

function errors(source: string): string[] {
  return parseProgram(source, "e.cnn").diagnostics.map((d) => `${d.code} ${d.span?.line}:${d.span?.col} ${d.message}`);
}

describe("LeNet-5 (DSL.md §1)", () => {
  const program = parseOk(LENET);
  const model = program.models[0]!;
  const stmts = model.body;

  it("has one model with every statement, in order", () => {
    expect(program.file).toBe("t.cnn");
    expect(program.defs).toEqual([]);
    expect(model.name.name).toBe("LeNet5");
    expect(model.span).toMatchObject({ line: 2, col: 1, endLine: 17, endCol: 1 });
    expect(stmts.map((s) => s.kind)).toEqual([
      "input", "input", "bind", "bind", "bind", "bind", "bind", "bind", "bind", "output", "loss", "optimizer",
    ]);
  });

  it("parses input types", () => {
    const x = stmts[0]!;
    if (x.kind !== "input") throw new Error("not an input");
    expect(x.name.name).toBe("x");
    expect(showType(x.type)).toBe("f32[N, 1, 28, 28]");
    expect(x.type.span).toMatchObject({ line: 3, col: 12, endLine: 3, endCol: 28 });
    expect(x.span).toMatchObject({ line: 3, col: 3, endLine: 3, endCol: 28 });
    expect(stmts[1]!.kind === "input" && showType(stmts[1]!.type)).toBe("i32[N]");
  });

  it("desugars the pipe and keeps callee and keyword spans", () => {
    const c1 = stmts[2] as BindStmt;
    expect(c1.name.name).toBe("c1");
    expect(show(c1.value)).toBe("relu|(conv2d(x, filters=6, kernel=5, padding=2))");
    const relu = c1.value as CallExpr;
    expect(relu.piped).toBe(true);
    expect(relu.callee.span).toEqual({ file: "t.cnn", line: 6, col: 53, endLine: 6, endCol: 56 });
    expect(relu.span).toMatchObject({ line: 6, col: 8, endLine: 6, endCol: 56 });
    const conv = relu.args[0] as CallExpr;
    expect(conv.piped).toBe(false);
    expect(conv.callee.span).toEqual({ file: "t.cnn", line: 6, col: 8, endLine: 6, endCol: 13 });
    expect(conv.span).toMatchObject({ line: 6, col: 8, endLine: 6, endCol: 48 });
    expect(conv.kwargs.map((k) => k.name.name)).toEqual(["filters", "kernel", "padding"]);
    expect(conv.kwargs[0]!.name.span).toMatchObject({ line: 6, col: 18, endCol: 24 });
    expect(conv.kwargs[2]!.value).toMatchObject({ kind: "number", value: 2, isInt: true, span: { line: 6, col: 47, endCol: 47 } });
  });

  it("parses nested calls, the annotation, output, loss and optimizer", () => {
    expect(show((stmts[6] as BindStmt).value)).toBe("relu|(dense(flatten(s4), 120))");
    const f6 = stmts[7] as BindStmt;
    expect(f6.name.name).toBe("f6");
    expect(showType(f6.annotation)).toBe("f32[N, 84]");
    expect(f6.annotation!.span).toMatchObject({ line: 11, col: 7, endCol: 16 });
    const probs = stmts[9]!;
    if (probs.kind !== "output") throw new Error("not an output");
    expect(probs.name.name).toBe("probs");
    expect(show(probs.value)).toBe("softmax(logits, axis=-1)");
    expect((probs.value as CallExpr).kwargs[0]!.value).toMatchObject({ kind: "number", value: -1, isInt: true, span: { col: 39, endCol: 40 } });
    const xent = stmts[10]!;
    expect(xent.kind === "loss" && `${xent.name.name} = ${show(xent.value)}`).toBe("xent = cross_entropy(logits, labels)");
    const opt = stmts[11]!;
    expect(opt.kind === "optimizer" && show(opt.call)).toBe("adam(lr=0.001f)");
    expect(opt.span).toMatchObject({ line: 16, col: 3, endLine: 16, endCol: 26 });
  });
});

describe("statements", () => {
  it("input, with a scalar and affine dims", () => {
    const [a, b, c] = body("input x: f32[N, L - 2, 2*N]\ninput s: f32[]\ninput m: bool");
    expect(a!.kind === "input" && showType(a!.type)).toBe("f32[N, (L - 2), (2 * N)]");
    expect(b!.kind === "input" && showType(b!.type)).toBe("f32[]");
    expect(c!.kind === "input" && showType(c!.type)).toBe("bool[]");
  });

  it("param with and without init", () => {
    const [w, b, z] = body("param w: f32[784, 10] = normal(0, 0.1)\nparam b: f32[10]\nparam z: f32[3] = zeros");
    if (w!.kind !== "param" || b!.kind !== "param" || z!.kind !== "param") throw new Error("not params");
    expect(w.name.name).toBe("w");
    expect(showType(w.type)).toBe("f32[784, 10]");
    expect(show(w.init)).toBe("normal(0, 0.1f)");
    expect(b.init).toBeUndefined();
    expect(show(z.init)).toBe("zeros");
  });

  it("bindings with and without annotation", () => {
    const [a, b] = body("h = relu(x)\nh2: f32[N, 84] = h");
    expect(a).toMatchObject({ kind: "bind", name: { name: "h" } });
    expect((a as BindStmt).annotation).toBeUndefined();
    expect(showType((b as BindStmt).annotation)).toBe("f32[N, 84]");
    expect(show((b as BindStmt).value)).toBe("h");
  });

  it("index notation, with and without annotation", () => {
    const [y, z, s] = body("y[i, k] = x[i, j] * w[j, k] + b[k]\nz[i,k]: f32[N, 10] = x[i, k]\ns[] = v[i] * v[i]");
    const yi = y as IndexStmt;
    expect(yi.kind).toBe("index");
    expect(yi.name.name).toBe("y");
    expect(yi.indices.map((i) => i.name)).toEqual(["i", "k"]);
    expect(yi.indices[1]!.span).toMatchObject({ line: 2, col: 6, endCol: 6 });
    expect(yi.annotation).toBeUndefined();
    expect(show(yi.value)).toBe("((x[i, j] * w[j, k]) + b[k])");
    const xij = ((yi.value as { left: { left: Expr } }).left.left);
    expect(xij).toMatchObject({ kind: "indexed", target: { parts: [{ name: "x" }] }, span: { line: 2, col: 11, endCol: 17 } });
    expect(z).toMatchObject({ kind: "index", indices: [{ name: "i" }, { name: "k" }] });
    expect(showType((z as IndexStmt).annotation)).toBe("f32[N, 10]");
    expect((s as IndexStmt).indices).toEqual([]);
  });

  it("output in its three forms, loss, optimizer with and without arguments", () => {
    const [o1, o2, o3, l, opt1, opt2] = body(
      "output probs = softmax(z)\noutput q: f32[N] = sum(y, axis=1)\noutput h\nloss l = mse(a, b)\noptimizer sgd(0.1, momentum=0.9)\noptimizer adam",
    );
    expect(o1).toMatchObject({ kind: "output", name: { name: "probs" } });
    expect(show((o1 as { value?: Expr }).value)).toBe("softmax(z)");
    expect(o2!.kind === "output" && `${showType(o2!.annotation)} ${show(o2!.value)}`).toBe("f32[N] sum(y, axis=1)");
    expect(o3).toMatchObject({ kind: "output", name: { name: "h" } });
    expect(o3!.kind === "output" && o3!.value === undefined && o3!.annotation === undefined).toBe(true);
    expect(l!.kind === "loss" && show(l!.value)).toBe("mse(a, b)");
    expect(opt1!.kind === "optimizer" && show(opt1!.call)).toBe("sgd(0.1f, momentum=0.9f)");
    expect(opt1!.kind === "optimizer" && opt1!.call.callee.span).toMatchObject({ line: 6, col: 11, endCol: 13 });
    expect(opt2!.kind === "optimizer" && show(opt2!.call)).toBe("adam()");
  });

  it("def with parameters and return; several blocks in one file", () => {
    const program = parseOk(`def block(x, ch) {
  h = conv2d(x, filters=ch, kernel=3, padding=1) |> relu
  return h + x
}
def unit() { return 1 }
model A { input x: f32[N, 4]; output y = block(x, 4) }
model B {
  input x: f32[N]
  output y = x
}
`);
    expect(program.defs.map((d) => d.name.name)).toEqual(["block", "unit"]);
    const block = program.defs[0]!;
    expect(block.params.map((p) => p.name)).toEqual(["x", "ch"]);
    expect(block.params[1]!.span).toMatchObject({ line: 1, col: 14, endCol: 15 });
    expect(block.body.map((s) => s.kind)).toEqual(["bind", "return"]);
    const ret = block.body[1]!;
    expect(ret.kind === "return" && show(ret.value)).toBe("(h + x)");
    expect(ret.span).toMatchObject({ line: 3, col: 3, endLine: 3, endCol: 14 });
    expect(block.span).toMatchObject({ line: 1, col: 1, endLine: 4, endCol: 1 });
    expect(program.defs[1]!.params).toEqual([]);
    expect(program.models.map((m) => `${m.name.name}:${m.body.map((s) => s.kind).join(",")}`)).toEqual(["A:input,output", "B:input,output"]);
  });

  it("accepts ';' as a separator, blank lines and a brace on the next line", () => {
    const program = parseOk("\n\nmodel M\n{\n  a = 1; b = 2;;\n\n  c = 3;\n}\n\n");
    expect(program.models[0]!.body.map((s) => (s as BindStmt).name.name)).toEqual(["a", "b", "c"]);
  });
});

describe("expressions", () => {
  it("binary precedence and associativity", () => {
    expect(show(expr("a + b * c"))).toBe("(a + (b * c))");
    expect(show(expr("a * b + c"))).toBe("((a * b) + c)");
    expect(show(expr("a - b - c"))).toBe("((a - b) - c)");
    expect(show(expr("a / b @ c * d"))).toBe("(((a / b) @ c) * d)");
    expect(show(expr("a @ b + c @ d"))).toBe("((a @ b) + (c @ d))");
    expect(show(expr("(a + b) * c"))).toBe("((a + b) * c)");
    expect(show(expr("-a * b"))).toBe("((-a) * b)");
    expect(show(expr("a * -b"))).toBe("(a * (-b))");
    expect(show(expr("- - a"))).toBe("(-(-a))");
  });

  it("records the operator span and the extent of parenthesised operands", () => {
    const e = expr("(a + b) * c");
    if (e.kind !== "binary") throw new Error("not binary");
    expect(e.opSpan).toEqual({ file: "t.cnn", line: 2, col: 13, endLine: 2, endCol: 13 });
    expect(e.span).toMatchObject({ line: 2, col: 5, endCol: 15 });
    expect(e.left.span).toMatchObject({ col: 5, endCol: 11 });
    if (e.left.kind !== "binary") throw new Error("not binary");
    expect(e.left.opSpan).toMatchObject({ col: 8, endCol: 8 });
  });

  it("the pipe binds loosest and associates to the left", () => {
    expect(show(expr("a + b |> relu"))).toBe("relu|((a + b))");
    expect(show(expr("x |> f |> g"))).toBe("g|(f|(x))");
    expect(show(expr("x |> f(k=1)"))).toBe("f|(x, k=1)");
    expect(show(expr("x |> f(2, k=1) |> g()"))).toBe("g|(f|(x, 2, k=1))");
    expect(show(expr("f(x |> relu, k=y |> g)"))).toBe("f(relu|(x), k=g|(y))");
    const e = expr("x |> f |> g") as CallExpr;
    expect(e.callee.span).toMatchObject({ col: 15, endCol: 15 });
    expect(e.span).toMatchObject({ col: 5, endCol: 15 });
  });

  it("calls: positional then keyword arguments, trailing comma, keywords as argument names", () => {
    expect(show(expr('f(a, b, k=1, m="x")'))).toBe('f(a, b, k=1, m="x")');
    expect(show(expr("f()"))).toBe("f()");
    expect(show(expr("f(a, b,)"))).toBe("f(a, b)");
    expect(show(expr('rnn(x, 8, return="last", input=1)'))).toBe('rnn(x, 8, return="last", input=1)');
  });

  it("dotted names", () => {
    const e = expr("grad(l, c1.weight) + r1.c1.weight + c1.1.weight");
    expect(show(e)).toBe("((grad(l, c1.weight) + r1.c1.weight) + c1.1.weight)");
    const name = expr("r1.c1.weight");
    expect(name).toMatchObject({ kind: "name", parts: [{ name: "r1" }, { name: "c1" }, { name: "weight" }], span: { col: 5, endCol: 16 } });
    expect(name.kind === "name" && name.parts[2]!.span).toMatchObject({ col: 11, endCol: 16 });
    expect(show(expr("enc.weight[i, j]"))).toBe("enc.weight[i, j]");
  });

  it("lists, nested and empty", () => {
    expect(show(expr("[1, 2]"))).toBe("[1, 2]");
    expect(show(expr("[[0, 0], [0, 1]]"))).toBe("[[0, 0], [0, 1]]");
    expect(show(expr("[]"))).toBe("[]");
    expect(show(expr("[a, -1,]"))).toBe("[a, -1]");
    expect(expr("[[0, 0], [0, 1]]").span).toMatchObject({ col: 5, endCol: 20 });
  });

  it("numbers: integers, decimals, exponents, negative literals", () => {
    expect(expr("12")).toMatchObject({ kind: "number", value: 12, isInt: true });
    expect(expr("0.5")).toMatchObject({ kind: "number", value: 0.5, isInt: false });
    expect(expr("1e-3")).toMatchObject({ kind: "number", value: 0.001, isInt: false });
    expect(expr("2E+2")).toMatchObject({ kind: "number", value: 200, isInt: false });
    expect(expr("2.0")).toMatchObject({ kind: "number", value: 2, isInt: false });
    expect(expr("-2")).toMatchObject({ kind: "number", value: -2, isInt: true, span: { col: 5, endCol: 6 } });
    expect(expr("- 0.25")).toMatchObject({ kind: "number", value: -0.25, isInt: false, span: { col: 5, endCol: 10 } });
    expect(show(expr("a - 2"))).toBe("(a - 2)");
    expect(show(expr("a - -2"))).toBe("(a - -2)");
    expect(show(expr("-x"))).toBe("(-x)");
  });

  it("strings with escapes, booleans", () => {
    expect(expr('"nij,njk->nik"')).toMatchObject({ kind: "string", value: "nij,njk->nik", span: { col: 5, endCol: 18 } });
    expect(expr('"a\\"b\\\\c"')).toMatchObject({ kind: "string", value: 'a"b\\c' });
    expect(expr('""')).toMatchObject({ kind: "string", value: "" });
    expect(expr("true")).toMatchObject({ kind: "bool", value: true });
    expect(expr("false")).toMatchObject({ kind: "bool", value: false });
  });
});

describe("lexical structure and lines", () => {
  it("skips comments of both styles", () => {
    const stmts = body("# a comment\n  a = 1 # trailing\n// another\n  b = a / 2 // trailing // more\n  c = \"# not a comment\"");
    expect(stmts.map((s) => show((s as BindStmt).value))).toEqual(["1", "(a / 2)", '"# not a comment"']);
  });

  it("continues an expression over lines: leading and trailing pipes, open brackets, operators", () => {
    const stmts = body(`h = conv2d(x, filters=6, kernel=5)
    |> batchnorm
    |> relu
  g = x |>
    relu
  d = dense(
    x,
    units=10,
  )
  s = a +
    b
  t = a
    * b
  u = [[0, 0],
       [0, 1]]
  v = 1`);
    expect(stmts.map((s) => show((s as BindStmt).value))).toEqual([
      "relu|(batchnorm|(conv2d(x, filters=6, kernel=5)))",
      "relu|(x)",
      "dense(x, units=10)",
      "(a + b)",
      "(a * b)",
      "[[0, 0], [0, 1]]",
      "1",
    ]);
    expect(stmts[0]!.span).toMatchObject({ line: 2, col: 1, endLine: 4, endCol: 11 });
    expect(stmts.map((s) => s.span.line)).toEqual([2, 5, 7, 11, 13, 15, 17]);
  });
});

describe("syntax errors", () => {
  it("reports several broken statements in one run, each at its line and column", () => {
    const source = `model A {
  input x: f32[N, 3]
  y = conv2d(x filters=6)
  z = relu(y)
  w = a + * b
  output z
  o = f(k=1, x)
  p = relu(y
  q = 1
}
`;
    const { program, diagnostics } = parseProgram(source, "e.cnn");
    expect(diagnostics.map((d) => `${d.code} ${d.span?.line}:${d.span?.col} ${d.message}`)).toEqual([
      "E102 3:16 expected ')' but found 'filters'",
      "E102 5:11 expected an expression but found '*'",
      "E102 7:14 expected a keyword argument after 'k=' but found a positional argument",
      "E102 8:13 expected ')' but found end of line",
    ]);
    expect(diagnostics[0]!.span).toEqual({ file: "e.cnn", line: 3, col: 16, endLine: 3, endCol: 22 });
    expect(diagnostics[0]!.hint).toMatch(/','/);
    // The good statements are kept.
    expect(program.models[0]!.body.map((s) => `${s.kind}@${s.span.line}`)).toEqual(["input@2", "bind@4", "output@6", "bind@9"]);
  });

  it("E101: unexpected character, with line and column", () => {
    const { diagnostics } = parseProgram("model A {\n  x = a $ b\n  y = 'c'\n}", "e.cnn");
    expect(diagnostics.map((d) => `${d.code} ${d.span?.line}:${d.span?.col}-${d.span?.endCol} ${d.message}`)).toEqual([
      "E101 2:9-9 unexpected character '$'",
      "E101 3:7-7 unexpected character '''",
      "E101 3:9-9 unexpected character '''",
    ]);
    expect(diagnostics[1]!.hint).toMatch(/double quotes/);
    expect(errors("model A {\n  x = a ?? b\n}")).toEqual(["E101 2:9 unexpected characters '??'"]);
  });

  it("E103: unterminated string, then parsing goes on", () => {
    const { program, diagnostics } = parseProgram('model A {\n  e = einsum("ij,jk->ik, a, b)\n  y = x x\n}', "e.cnn");
    expect(diagnostics.map((d) => `${d.code} ${d.span?.line}:${d.span?.col}-${d.span?.endCol} ${d.message}`)).toEqual([
      "E103 2:14-30 unterminated string: expected a closing '\"' before the end of the line",
      "E102 3:9-9 expected end of statement (a new line or ';') but found 'x'",
    ]);
    expect(program.models[0]!.body).toEqual([]);
  });

  it("E102 messages say what was expected and what was found", () => {
    expect(errors("model A {\n  x = f(a) relu\n}")).toEqual(["E102 2:12 expected end of statement (a new line or ';') but found 'relu'"]);
    expect(errors("model A {\n  x y\n}")).toEqual(["E102 2:5 expected '=' but found 'y'"]);
    expect(errors("model A {\n  x = \n}")).toEqual(["E102 3:1 expected an expression but found '}'"]);
    expect(errors("model A {\n  = 3\n}")).toEqual([expect.stringMatching(/^E102 2:3 expected a statement .* but found '='$/)]);
    expect(errors("model A {\n  y = x |> (relu)\n}")).toEqual(["E102 2:12 expected a function name after '|>' but found '('"]);
    expect(errors("model A {\n  input x: [N]\n}")).toEqual(["E102 2:12 expected an element type (f32, i32 or bool) but found '['"]);
    expect(errors("model A {\n  y = a.b(x)\n}")).toEqual(["E102 2:7 expected a builtin or def name before '(' but found the dotted name 'a.b'"]);
    expect(errors("model A {\n  y = 1e999\n}")).toEqual(["E102 2:7 number 1e999 is too large"]);
    expect(errors("model {\n}")).toEqual(["E102 1:7 expected a model name but found '{'"]);
    expect(errors("def f(a b) {\n  return a\n}")).toEqual(["E102 1:9 expected ')' but found 'b'"]);
    expect(errors("model A {\n  y = f(\n")).toEqual([
      "E102 1:9 model 'A' is not closed: expected '}' before the end of the file",
      "E102 2:8 expected ')' but found the end of the file",
    ]);
    expect(errors("x = 1\nmodel A {\n}\n}")).toEqual([
      "E102 1:1 expected 'model' or 'def' at the top level but found 'x'",
      "E102 4:1 expected 'model' or 'def' at the top level but found '}'",
    ]);
    expect(errors("model A {\n  x = 1\nmodel B {\n}")).toEqual(["E102 3:1 expected '}' to close model 'A' but found 'model'"]);
  });

  it("a missing ')' does not swallow the following statements", () => {
    const { program, diagnostics } = parseProgram("model A {\n  y = f(x, g(1)\n  z = relu(y)\n  w = z\n}", "e.cnn");
    expect(diagnostics.map((d) => `${d.span?.line}:${d.span?.col} ${d.message}`)).toEqual(["2:16 expected ')' but found end of line"]);
    expect(program.models[0]!.body.map((s) => (s as BindStmt).name.name)).toEqual(["z", "w"]);
  });

  it("keeps a model whose header is fine when statements are broken, drops the broken statements", () => {
    const { program, diagnostics } = parseProgram("model A {\n  input x: f32[N]\n  y = = x\n  output x\n}", "e.cnn");
    expect(diagnostics).toHaveLength(1);
    expect(program.models[0]!.body.map((s) => s.kind)).toEqual(["input", "output"]);
  });

  it(`stops at ${MAX_DIAGNOSTICS} diagnostics`, () => {
    const source = `model A {\n${"  x = = 1\n".repeat(50)}}`;
    const { diagnostics } = parseProgram(source, "e.cnn");
    expect(diagnostics).toHaveLength(MAX_DIAGNOSTICS);
    expect(diagnostics.map((d) => d.span!.line)).toEqual(Array.from({ length: MAX_DIAGNOSTICS }, (_, i) => i + 2));
  });
});

describe("limits: never throws, never overflows", () => {
  it("10,000 nested parentheses give a diagnostic, not a crash", () => {
    const source = `model A {\n  x = ${"(".repeat(10_000)}1${")".repeat(10_000)}\n  y = 2\n}`;
    const { program, diagnostics } = parseProgram(source, "e.cnn");
    expect(diagnostics).toHaveLength(1);
    expect(diagnostics[0]!).toMatchObject({ code: "E102", span: { line: 2, col: 107 } });
    expect(diagnostics[0]!.message).toMatch(/nested too deeply/);
    expect(program.models[0]!.body.map((s) => (s as BindStmt).name.name)).toEqual(["y"]);
  });

  it("moderate nesting still parses", () => {
    expect(show(expr(`${"(".repeat(50)}a${")".repeat(50)}`))).toBe("a");
    expect(show(expr(`${"[".repeat(50)}${"]".repeat(50)}`))).toBe(`${"[".repeat(50)}${"]".repeat(50)}`);
  });

  it("long operator chains and unary runs are reported, not recursed into", () => {
    const sum = parseProgram(`model A {\n  x = ${"a + ".repeat(20_000)}a\n}`, "e.cnn");
    expect(sum.diagnostics.map((d) => d.message)).toEqual([expect.stringMatching(/nested too deeply/)]);
    const neg = parseProgram(`model A {\n  x = ${"-".repeat(20_000)}y\n}`, "e.cnn");
    expect(neg.diagnostics.map((d) => d.code)).toEqual(["E102"]);
    const pipes = parseProgram(`model A {\n  x = y${" |> relu".repeat(20_000)}\n}`, "e.cnn");
    expect(pipes.diagnostics.map((d) => d.code)).toEqual(["E102"]);
  });

  it("parses a 1 MB program", () => {
    const line = "  c1 = conv2d(x, filters=6, kernel=5, padding=2) |> relu   # comment\n";
    const count = Math.ceil(1_000_000 / line.length);
    const { program, diagnostics } = parseProgram(`model A {\n${line.repeat(count)}}\n`, "big.cnn");
    expect(diagnostics).toEqual([]);
    expect(program.models[0]!.body).toHaveLength(count);
  });

  it("handles degenerate input", () => {
    for (const source of ["", "\n\n", "{", "}", "(((((", "model", "def", '"', "\r\n\r\n", "\u0000", "model A {"]) {
      expect(() => parseProgram(source, "e.cnn")).not.toThrow();
    }
    expect(parseProgram("", "e.cnn")).toEqual({ program: { file: "e.cnn", models: [], defs: [] }, diagnostics: [] });
  });
});

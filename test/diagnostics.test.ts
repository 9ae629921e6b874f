// Every diagnostic code the front end can raise, triggered from real .cnn
// source, with the message, line and column checked, and the rendering of
// DSL.md §7 (quoted line, caret, notes) pinned.

import { describe, expect, it } from "vitest";
import { compileSource, formatDiagnostics } from "../compiler/compile.ts";
import { DIAGNOSTIC_CODES } from "../compiler/diagnostics.ts";

interface Case {
  code: keyof typeof DIAGNOSTIC_CODES;
  /** Model body lines (wrapped in `model M { ... }` unless `raw`). */
  src: string;
  raw?: boolean;
  line: number;
  col: number;
  message: RegExp;
}

const wrap = (body: string) => `model M {\n${body}\n}\n`;

const cases: Case[] = [
  { code: "E101", raw: true, src: "model M {\n  input x: f32[N, 3]\n  y = x $ 2\n}\n", line: 3, col: 9, message: /unexpected character '\$'/ },
  { code: "E102", raw: true, src: "model M {\n  input x: f32[N, 3]\n  y = relu(x\n}\n", line: 3, col: 13, message: /expected '\)' but found end of line/ },
  { code: "E103", raw: true, src: 'model M {\n  input x: f32[N, 3]\n  y = einsum("ij->i, x)\n}\n', line: 3, col: 14, message: /unterminated string/ },
  {
    code: "E201",
    src: "  input x: f32[N, 1, 4, 4]\n  c3 = conv2d(x, filters=16, kernel=5) |> relu",
    line: 3,
    col: 8,
    message: /^conv2d 'c3': kernel 5 is larger than the padded input 4 along dim 3$/,
  },
  { code: "E202", src: "  input l: f32[N, 5, 7]\n  input t: i32[N, 6]\n  loss x = cross_entropy(l, t)", line: 4, col: 12, message: /labels/ },
  { code: "E203", src: "  input a: f32[N, 10]\n  input b: f32[N, 5]\n  y = a + b", line: 4, col: 9, message: /^operator '\+': .*10.*5/ },
  { code: "E204", src: "  input a: f32[N, 4]\n  input b: f32[5, 3]\n  y = a @ b", line: 4, col: 9, message: /^matmul 'y': contraction sizes do not match: a has 4 columns, b has 5 rows$/ },
  { code: "E205", src: "  input x: f32[N, 120]\n  h: f32[N, 84] = relu(x)", line: 3, col: 6, message: /'h' is annotated f32\[N, 84\] but its value is f32\[N, 120\]/ },
  { code: "E206", src: '  input a: f32[3, 4]\n  input b: f32[5, 6]\n  y = einsum("ij,jk->ik", a, b)', line: 4, col: 7, message: /'j'.*4.*5|'j'.*5.*4/ },
  { code: "E207", src: "  input x: f32[N, 6, 5, 5]\n  y = reshape(x, [N, 7, -1])", line: 3, col: 18, message: /cannot infer -1 .* 150\*N elements .* not divisible by 7\*N/ },
  { code: "E208", src: "  input a: f32[N, 3, 8]\n  input b: f32[N, 4, 9]\n  y = concat([a, b], axis=1)", line: 4, col: 7, message: /./ },
  { code: "E209", src: "  input x: f32[N, 3]\n  y = sum(x, axis=2)", line: 3, col: 19, message: /^sum 'y': axis 2 is out of range for f32\[N, 3\] \(rank 2\)$/ },
  { code: "E210", src: "  input x: f32[N, 28, 28]\n  y = conv2d(x, filters=6, kernel=5)", line: 3, col: 7, message: /rank|dims/ },
  { code: "E211", src: "  input x: f32[N, 6, 8, 8]\n  y = conv2d(x, filters=4, kernel=3, groups=4)", line: 3, col: 45, message: /groups=4 does not divide the 6 input channels/ },
  { code: "E212", src: "  input x: f32[N, 3]\n  param w: f32[N, 3] = zeros\n  y = x * w", line: 3, col: 12, message: /parameter 'w' must have a static shape, found f32\[N, 3\]/ },
  { code: "E213", src: "  input t: f32[N, 5]\n  y = embed(t, vocab=10, dim=4)", line: 3, col: 7, message: /i32/ },
  { code: "E214", src: "  input x: f32[N, 5]\n  y = slice(x, axis=1, start=4, end=2)", line: 3, col: 7, message: /./ },
  { code: "E215", src: "  input x: f32[N, 5]\n  loss l = relu(x)", line: 3, col: 8, message: /loss 'l' must be a scalar f32\[\], found f32\[N, 5\]/ },
  { code: "E216", src: "  input x: f32[N, 8]\n  input w: f32[8, 8]\n  y = dense(x, 4, weight=w)", line: 4, col: 26, message: /weight= must be f32\[4, 8\], found f32\[8, 8\]/ },
  { code: "E301", src: "  input x: f32[N, 5]\n  y = relu(xx)", line: 3, col: 12, message: /unknown name 'xx'/ },
  { code: "E302", src: "  input x: f32[N, 5]\n  y = relu(x)\n  y = sigmoid(x)", line: 4, col: 3, message: /'y' is already bound/ },
  { code: "E303", src: "  input x: f32[N, 5]\n  y = rellu(x)", line: 3, col: 7, message: /unknown function 'rellu'/ },
  { code: "E304", raw: true, src: "# nothing here\n", line: 1, col: 1, message: /no model/ },
  { code: "E305", raw: true, src: "def f(x) {\n  return f(x)\n}\nmodel M {\n  input x: f32[N, 5]\n  output y = f(x)\n}\n", line: 2, col: 10, message: /def 'f' calls itself/ },
  { code: "E306", src: "  input x: f32[N, 5]\n  return x", line: 3, col: 3, message: /return is only allowed inside a def/ },
  { code: "E307", src: "  input x: f32[N, 5]\n  c1 = dense(x, 3)\n  y = c1.wieght", line: 4, col: 7, message: /'c1' has no parameter or buffer 'wieght'/ },
  { code: "E308", src: "  input x: f32[L - 2]", line: 2, col: 12, message: /uses symbol 'L' before an input binds it/ },
  { code: "E309", src: "  input x: f32[N, 5]\n  h = relu(x)\n  g = grad(sum(h), h)", line: 4, col: 20, message: /grad is taken with respect to an input or a parameter, found a computed value/ },
  { code: "E310", src: "  input x: f64[N, 5]", line: 2, col: 12, message: /unknown element type 'f64'/ },
  { code: "E401", src: "  input x: f32[N, 5]\n  y = dense(x)", line: 3, col: 7, message: /missing argument 'units'/ },
  { code: "E402", src: "  input x: f32[N, 5]\n  y = dense(x, 3, unit=4)", line: 3, col: 19, message: /dense has no argument 'unit'/ },
  { code: "E403", src: "  input x: f32[N, 5]\n  y = dense(x, \"three\")", line: 3, col: 16, message: /argument 'units' must be an integer, found the string "three"/ },
  { code: "E404", src: "  input x: f32[N, 5]\n  y = leaky_relu(x) |> dropout(p=1.5)", line: 3, col: 34, message: /argument 'p' must be a probability in \[0, 1\), found 1\.5/ },
  { code: "E405", src: "  input x: f32[N, 5]\n  y = relu(x, 1, 2)", line: 3, col: 15, message: /relu takes at most 1 positional argument, found 3/ },
  { code: "E406", src: "  input x: f32[N, 5]\n  y = dense(x, 3, units=4)", line: 3, col: 19, message: /argument 'units' of dense is given twice/ },
];

describe("diagnostics: every code, with message, line and column", () => {
  for (const c of cases) {
    it(`${c.code}: ${DIAGNOSTIC_CODES[c.code]}`, () => {
      const src = c.raw ? c.src : wrap(c.src);
      const r = compileSource(src, "case.cnn");
      expect(r.diagnostics.length, formatDiagnostics(r)).toBeGreaterThan(0);
      const d = r.diagnostics[0]!;
      expect(d.code, formatDiagnostics(r)).toBe(c.code);
      expect(d.message).toMatch(c.message);
      expect([d.span?.line, d.span?.col], formatDiagnostics(r)).toEqual([c.line, c.col]);
    });
  }

  it("covers every shape, name and argument code in the catalogue", () => {
    const tested = new Set(cases.map((c) => c.code));
    const untested = Object.keys(DIAGNOSTIC_CODES).filter((k) => /^E[1-4]/.test(k) && !tested.has(k as Case["code"]));
    expect(untested).toEqual([]);
  });
});

describe("rendering (DSL.md §7)", () => {
  it("quotes the line with a caret under the culprit and adds notes and a hint", () => {
    const src = wrap("  input x: f32[N, 1, 4, 4]\n  s2 = relu(x)\n    c3 = conv2d(s2, filters=16, kernel=5) |> relu");
    const r = compileSource(src, "lenet.cnn");
    const text = formatDiagnostics(r);
    expect(text).toMatch(/^lenet\.cnn:4:10: error\[E201\]: conv2d 'c3': kernel 5 is larger than the padded input 4 along dim 3\n/);
    const lines = text.split("\n");
    expect(lines[1]).toBe("      c3 = conv2d(s2, filters=16, kernel=5) |> relu");
    expect(lines[2]).toBe("           ^^^^^^");
    expect(lines[3]).toBe("  = note: input s2 is f32[N, 1, 4, 4]");
    expect(lines[4]).toBe("  = hint: add padding=2 or use a smaller kernel");
  });

  it("reports independent errors of one file together, without cascades", () => {
    const src = wrap(["  input x: f32[N, 5]", "  a = relu(xx)", "  b = a + 1", "  c = sigmoid(zz)", "  output o = c"].join("\n"));
    const r = compileSource(src, "m.cnn");
    expect(r.diagnostics.map((d) => [d.code, d.span?.line])).toEqual([
      ["E301", 3],
      ["E301", 5],
    ]);
  });

  it("points into a def body and says where it was called from", () => {
    const src = "def block(x, c) {\n  h = conv2d(x, filters=c, kernel=9)\n  return h\n}\nmodel M {\n  input x: f32[N, 3, 4, 4]\n  output y = block(x, 8)\n}\n";
    const r = compileSource(src, "d.cnn");
    expect(r.diagnostics[0]!.code).toBe("E201");
    expect(r.diagnostics[0]!.span?.line).toBe(2);
    expect(r.diagnostics[0]!.message).toMatch(/conv2d 'y\.h'/);
    expect(r.diagnostics[0]!.notes?.join("\n")).toMatch(/in def 'block' called at d\.cnn:7:14/);
  });
});

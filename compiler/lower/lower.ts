// Lowering: AST → IR. Walks each model's statements in order, resolving
// names through lexical scopes, inlining `def` calls (parameters namespaced
// by the calling binding), and sending every builtin call through
// ModelState.callBuiltin, which the TypeScript builder shares.
//
// Error strategy: each statement is lowered on its own; a failing statement
// reports its diagnostics and poisons the name it would bind, and later uses
// of a poisoned name are skipped silently, so one mistake gives one error,
// not a cascade, while independent mistakes are all reported.

import type {
  BindStmt, CallExpr, DefDecl, Expr, Ident, IndexStmt, ModelDecl, NameExpr, Program, Stmt, TypeExpr,
} from "../dsl/ast.ts";
import { CompileError, diag, type Diagnostic, type Span } from "../diagnostics.ts";
import { Dim } from "../ir/dims.ts";
import type { Graph, InitSpec, Value } from "../ir/graph.ts";
import { DTYPES, typeToString, typesEqual, type DType, type TensorType } from "../ir/types.ts";
import { describeArg, type ArgValue } from "../ops/args.ts";
import { einsumTerm } from "../ops/einsum.ts";
import { builtinNames, getBuiltin } from "../ops/index.ts";
import type { LowerCtx } from "../ops/op.ts";
import { glorotInit, heInit } from "../../runtime/init.ts";
import { annotationMismatch, closest, ModelState, type CallSite, type KeywordArg } from "./model-state.ts";

/** Thrown when an expression uses a name whose statement already failed. */
class Poisoned extends Error {}

type Binding = ArgValue | { readonly kind: "poison" };

class Scope {
  private readonly names = new Map<string, Binding>();
  constructor(readonly parent?: Scope) {}
  get(name: string): Binding | undefined {
    return this.names.get(name) ?? this.parent?.get(name);
  }
  hasOwn(name: string): boolean {
    return this.names.has(name);
  }
  set(name: string, b: Binding): void {
    this.names.set(name, b);
  }
  allNames(): string[] {
    return [...this.names.keys(), ...(this.parent?.allNames() ?? [])];
  }
}

interface Frame {
  readonly scope: Scope;
  /** Namespace for parameters created here: "" in the model, "r1." inside a def called from r1. */
  readonly prefix: string;
  /** Defs being inlined, outermost first, to reject recursion. */
  readonly defStack: readonly string[];
}

export interface LowerResult {
  readonly graphs: Graph[];
  readonly diagnostics: Diagnostic[];
}

const OPTIMIZERS: Record<string, readonly string[]> = {
  sgd: ["lr", "momentum", "weight_decay"],
  adam: ["lr", "beta1", "beta2", "eps", "weight_decay"],
};
const OPTIMIZER_DEFAULTS: Record<string, Record<string, number>> = {
  sgd: { momentum: 0, weight_decay: 0 },
  adam: { beta1: 0.9, beta2: 0.999, eps: 1e-8, weight_decay: 0 },
};

export function lowerProgram(program: Program): LowerResult {
  const diagnostics: Diagnostic[] = [];
  const defs = new Map<string, DefDecl>();
  for (const d of program.defs) {
    if (defs.has(d.name.name) || getBuiltin(d.name.name)) {
      diagnostics.push(diag("E302", `def '${d.name.name}' is ${defs.has(d.name.name) ? "defined twice" : "the name of a builtin"}`, d.name.span));
      continue;
    }
    defs.set(d.name.name, d);
  }
  if (program.models.length === 0) {
    diagnostics.push(diag("E304", "no model in this file", { file: program.file, line: 1, col: 1, endLine: 1, endCol: 1 }, { hint: "write `model Name { ... }`" }));
  }
  const graphs: Graph[] = [];
  const seen = new Set<string>();
  for (const m of program.models) {
    if (seen.has(m.name.name)) diagnostics.push(diag("E302", `model '${m.name.name}' is defined twice`, m.name.span));
    seen.add(m.name.name);
    const lowering = new ModelLowering(m, defs);
    graphs.push(lowering.run());
    diagnostics.push(...lowering.diagnostics);
  }
  return { graphs, diagnostics };
}

class ModelLowering {
  readonly diagnostics: Diagnostic[] = [];
  private readonly state: ModelState;

  constructor(
    private readonly model: ModelDecl,
    private readonly defs: ReadonlyMap<string, DefDecl>,
  ) {
    this.state = new ModelState(model.name.name, model.name.span);
  }

  run(): Graph {
    const frame: Frame = { scope: new Scope(), prefix: "", defStack: [] };
    for (const stmt of this.model.body) {
      try {
        this.statement(stmt, frame);
      } catch (e) {
        this.poison(stmt, frame);
        if (e instanceof Poisoned) continue;
        if (e instanceof CompileError) this.diagnostics.push(...e.diagnostics);
        else throw e;
      }
    }
    return this.state.graph;
  }

  private poison(stmt: Stmt, frame: Frame): void {
    if ("name" in stmt && stmt.name && !frame.scope.hasOwn(stmt.name.name)) frame.scope.set(stmt.name.name, { kind: "poison" });
  }

  private fail(code: Parameters<ModelState["fail"]>[0], message: string, span?: Span, opts?: { notes?: readonly string[]; hint?: string }): never {
    return this.state.fail(code, message, span, opts);
  }

  private bindName(name: Ident, value: ArgValue, frame: Frame): void {
    if (frame.scope.hasOwn(name.name)) {
      this.fail("E302", `'${name.name}' is already bound; bindings are single-assignment`, name.span, { hint: "choose a new name" });
    }
    frame.scope.set(name.name, value);
    if (value.kind === "tensor") {
      const qualified = frame.prefix + name.name;
      // Name the value after its first binding, so messages say "s2 is f32[...]".
      if (!this.state.valueNames.has(value.value)) this.state.valueNames.set(value.value, qualified);
    }
  }

  /** Statements allowed in a model body and (a subset) in a def body. */
  private statement(stmt: Stmt, frame: Frame): ArgValue | undefined {
    const inDef = frame.defStack.length > 0;
    switch (stmt.kind) {
      case "input": {
        if (inDef) this.fail("E306", "an input cannot be declared inside a def", stmt.span, { hint: "pass the tensor as an argument" });
        const type = this.typeExpr(stmt.type, frame);
        if (frame.scope.get(stmt.name.name)) this.fail("E302", `'${stmt.name.name}' is already bound`, stmt.name.span);
        const v = this.state.addInput(stmt.name.name, type, stmt.name.span, stmt.type.span);
        frame.scope.set(stmt.name.name, { kind: "tensor", value: v, span: stmt.name.span });
        return undefined;
      }
      case "param": {
        const type = this.typeExpr(stmt.type, frame);
        for (const d of type.shape) {
          if (!d.isConst()) this.fail("E212", `parameter '${stmt.name.name}' must have a static shape, found ${typeToString(type)}`, stmt.type.span, { hint: "parameter shapes cannot use symbols such as N" });
        }
        const init = this.initExpr(stmt.init, type, frame);
        if (frame.scope.hasOwn(stmt.name.name)) this.fail("E302", `'${stmt.name.name}' is already bound`, stmt.name.span);
        const v = this.state.addParam(frame.prefix + stmt.name.name, type, init, true, stmt.name.span);
        this.bindName(stmt.name, { kind: "tensor", value: v, span: stmt.name.span }, frame);
        return undefined;
      }
      case "bind":
        this.bindStmt(stmt, frame);
        return undefined;
      case "index": {
        const v = this.indexStmt(stmt, frame);
        this.checkAnnotation(stmt.annotation, v, frame, stmt.name);
        this.bindName(stmt.name, { kind: "tensor", value: v, span: stmt.name.span }, frame);
        return undefined;
      }
      case "output":
      case "loss": {
        if (inDef) this.fail("E306", `${stmt.kind} statements belong in a model, not in a def`, stmt.span);
        let value: Value;
        if (stmt.value) {
          value = this.tensorOf(this.expr(stmt.value, frame, { binding: stmt.name.name, prefix: "" }), stmt.value.span);
          if (stmt.kind === "output") this.checkAnnotation(stmt.annotation, value, frame, stmt.name);
          this.bindName(stmt.name, { kind: "tensor", value, span: stmt.name.span }, frame);
        } else {
          const b = frame.scope.get(stmt.name.name);
          if (!b) this.unknownName(stmt.name, frame);
          if (b.kind === "poison") throw new Poisoned();
          value = this.tensorOf(b, stmt.name.span);
        }
        if (this.state.graph.output(stmt.name.name)) this.fail("E302", `'${stmt.name.name}' is already an output or loss`, stmt.name.span);
        if (stmt.kind === "loss" && (value.type.shape.length !== 0 || value.type.dtype !== "f32")) {
          this.fail("E215", `loss '${stmt.name.name}' must be a scalar f32[], found ${typeToString(value.type)}`, stmt.name.span, {
            hint: "reduce it, e.g. mean(...) or a loss builtin such as cross_entropy",
          });
        }
        this.state.graph.outputs.push({ name: stmt.name.name, value, kind: stmt.kind, span: stmt.name.span });
        return undefined;
      }
      case "optimizer":
        if (inDef) this.fail("E306", "an optimizer belongs in a model, not in a def", stmt.span);
        this.optimizer(stmt.call, frame);
        return undefined;
      case "return":
        if (!inDef) this.fail("E306", "return is only allowed inside a def", stmt.span);
        return this.expr(stmt.value, frame, { binding: "return", prefix: frame.prefix });
    }
  }

  private bindStmt(stmt: BindStmt, frame: Frame): void {
    const value = this.expr(stmt.value, frame, { binding: stmt.name.name, prefix: frame.prefix });
    if (value.kind === "tensor") this.checkAnnotation(stmt.annotation, value.value, frame, stmt.name);
    else if (stmt.annotation) this.fail("E205", `'${stmt.name.name}' is annotated as a tensor but is ${describeArg(value)}`, stmt.annotation.span);
    this.bindName(stmt.name, { ...value, span: stmt.name.span } as ArgValue, frame);
  }

  private checkAnnotation(ann: TypeExpr | undefined, v: Value, frame: Frame, name: Ident): void {
    if (!ann) return;
    const bad = annotationMismatch(name.name, this.typeExpr(ann, frame), v.type);
    if (bad) this.fail("E205", bad.message, ann.span, { notes: bad.notes });
  }

  private typeExpr(t: TypeExpr, frame: Frame): TensorType {
    const dtype = t.dtype.name;
    if (!DTYPES.includes(dtype as DType)) {
      const near = closest(dtype, DTYPES);
      this.fail("E310", `unknown element type '${dtype}'`, t.dtype.span, { hint: near ? `did you mean '${near}'?` : "use f32, i32 or bool" });
    }
    return { dtype: dtype as DType, shape: t.dims.map((d) => this.dimExpr(d, frame)) };
  }

  /** A dim in a type: integers, symbols (new ones allowed), def int arguments, + - * and floor-division by an integer. */
  private dimExpr(e: Expr, frame: Frame): Dim {
    switch (e.kind) {
      case "number":
        if (!e.isInt) this.fail("E403", `a dim must be an integer, found ${e.value}`, e.span);
        return Dim.of(e.value);
      case "name": {
        if (e.parts.length !== 1) this.fail("E403", "a dim must be an integer or a symbol", e.span);
        const b = frame.scope.get(e.parts[0]!.name);
        if (b?.kind === "number" && b.isInt) return Dim.of(b.value);
        if (b?.kind === "dim") return b.value;
        if (b && b.kind !== "poison") this.fail("E403", `'${e.parts[0]!.name}' is ${describeArg(b)}, not a size`, e.span);
        return Dim.sym(e.parts[0]!.name);
      }
      case "unary":
        return this.dimExpr(e.operand, frame).scale(-1);
      case "call":
        // `floor(x / k)` is accepted for readability; `/` in a dim already floors.
        if (e.callee.name === "floor" && e.args.length === 1 && e.kwargs.length === 0) return this.dimExpr(e.args[0]!, frame);
        return this.fail("E403", "the only function allowed in a dim is floor(...)", e.callee.span);
      case "binary": {
        const a = this.dimExpr(e.left, frame);
        const b = this.dimExpr(e.right, frame);
        if (e.op === "+") return a.add(b);
        if (e.op === "-") return a.sub(b);
        if (e.op === "*") return a.mul(b);
        if (e.op === "/") {
          const k = b.constValue();
          if (k === undefined || k <= 0) this.fail("E403", "a dim can only be divided by a positive integer", e.right.span);
          return Dim.floordiv(a, k);
        }
        return this.fail("E403", `operator '${e.op}' is not allowed in a dim`, e.opSpan);
      }
      default:
        return this.fail("E403", "a dim must be an integer, a symbol or an expression of them", e.span);
    }
  }

  /** `param w: T = init`: resolve glorot/he against the parameter's fans (PyTorch's definitions). */
  private initExpr(e: Expr | undefined, type: TensorType, frame: Frame): InitSpec {
    const shape = type.shape.map((d) => d.constValue() ?? 1);
    const glorot = () => glorotInit(shape);
    if (!e) return glorot();
    const name = e.kind === "name" && e.parts.length === 1 ? e.parts[0]!.name : e.kind === "call" ? e.callee.name : undefined;
    const args = e.kind === "call" ? e.args.map((a) => this.numberOf(this.expr(a, frame, { binding: "init", prefix: "" }), a.span)) : [];
    const expectArgs = (n: number, what: string) => {
      if (e.kind !== "call" || args.length !== n || e.kwargs.length) this.fail("E403", `init ${name} takes ${what}`, e.span);
    };
    switch (name) {
      case "zeros":
      case "ones":
        if (e.kind === "call" && args.length) this.fail("E405", `init ${name} takes no arguments`, e.span);
        return { kind: name };
      case "glorot":
        return glorot();
      case "he":
        return heInit(shape);
      case "normal":
        expectArgs(2, "two numbers: normal(mean, std)");
        if (args[1]! < 0) this.fail("E404", `normal std must be non-negative, found ${args[1]}`, e.span);
        return { kind: "normal", mean: args[0]!, std: args[1]! };
      case "uniform":
        expectArgs(2, "two numbers: uniform(lo, hi)");
        if (args[0]! > args[1]!) this.fail("E404", `uniform needs lo <= hi, found ${args[0]} > ${args[1]}`, e.span);
        return { kind: "uniform", lo: args[0]!, hi: args[1]! };
      default:
        return this.fail("E403", "init must be zeros, ones, normal(mean, std), uniform(lo, hi), glorot or he", e.span);
    }
  }

  private optimizer(call: CallExpr, frame: Frame): void {
    const kind = call.callee.name;
    const allowed = OPTIMIZERS[kind];
    if (!allowed) this.fail("E303", `unknown optimizer '${kind}'`, call.callee.span, { hint: "use sgd(lr, momentum=0, weight_decay=0) or adam(lr, ...)" });
    if (call.args.length > allowed.length) this.fail("E405", `${kind} takes at most ${allowed.length} positional arguments`, call.args[allowed.length]!.span);
    const options: Record<string, number> = { ...OPTIMIZER_DEFAULTS[kind] };
    const given = new Set<string>();
    call.args.forEach((a, i) => {
      options[allowed[i]!] = this.numberOf(this.expr(a, frame, { binding: "optimizer", prefix: "" }), a.span);
      given.add(allowed[i]!);
    });
    for (const k of call.kwargs) {
      if (!allowed.includes(k.name.name)) {
        const near = closest(k.name.name, allowed);
        this.fail("E402", `${kind} has no argument '${k.name.name}'`, k.name.span, { hint: near ? `did you mean '${near}'?` : `its arguments are ${allowed.join(", ")}` });
      }
      if (given.has(k.name.name)) this.fail("E406", `argument '${k.name.name}' of ${kind} is given twice`, k.name.span);
      given.add(k.name.name);
      options[k.name.name] = this.numberOf(this.expr(k.value, frame, { binding: "optimizer", prefix: "" }), k.value.span);
    }
    if (!given.has("lr")) this.fail("E401", `${kind} needs a learning rate`, call.callee.span, { hint: `write ${kind}(lr=0.01)` });
    for (const [k, v] of Object.entries(options)) {
      const bad = k === "lr" ? !(v > 0) : k === "beta1" || k === "beta2" ? !(v >= 0 && v < 1) : k === "eps" ? !(v > 0) : !(v >= 0);
      if (bad) this.fail("E404", `${kind} ${k}=${v} is out of range`, call.callee.span);
    }
    if (this.state.graph.optimizer) this.fail("E302", "a model has at most one optimizer", call.callee.span);
    this.state.graph.optimizer = { kind: kind as "sgd" | "adam", options };
  }

  // ----- expressions -------------------------------------------------------

  private numberOf(v: ArgValue, span: Span): number {
    if (v.kind === "number") return v.value;
    if (v.kind === "dim" && v.value.isConst()) return v.value.constValue()!;
    return this.fail("E403", `expected a number, found ${describeArg(v)}`, span);
  }

  private tensorOf(v: ArgValue | { kind: "poison" }, span: Span | undefined, dtypeHint: DType = "f32"): Value {
    if (v.kind === "poison") throw new Poisoned();
    if (v.kind === "tensor") return v.value;
    if (v.kind === "number") return this.state.constant(v.value, dtypeHint === "i32" && v.isInt ? "i32" : "f32", span);
    return this.fail("E403", `expected a tensor, found ${describeArg(v)}`, span);
  }

  private unknownName(id: Ident, frame: Frame): never {
    const candidates = [...frame.scope.allNames(), ...this.defs.keys()];
    const near = closest(id.name, candidates);
    return this.fail("E301", `unknown name '${id.name}'`, id.span, { hint: near ? `did you mean '${near}'?` : undefined });
  }

  expr(e: Expr, frame: Frame, site: CallSite): ArgValue {
    switch (e.kind) {
      case "number":
        return { kind: "number", value: e.value, isInt: e.isInt, span: e.span };
      case "string":
        return { kind: "string", value: e.value, span: e.span };
      case "bool":
        return { kind: "bool", value: e.value, span: e.span };
      case "list":
        return { kind: "list", items: e.items.map((i) => this.expr(i, frame, site)), span: e.span };
      case "name":
        return this.nameExpr(e, frame);
      case "unary": {
        const v = this.expr(e.operand, frame, site);
        if (v.kind === "number") return { ...v, value: -v.value, span: e.span };
        if (v.kind === "dim") return { kind: "dim", value: v.value.scale(-1), span: e.span };
        const t = this.tensorOf(v, e.operand.span);
        return { kind: "tensor", value: this.state.emitOp("neg", [t], {}, e.span, "unary '-'")[0]!, span: e.span };
      }
      case "binary":
        return this.binary(e, frame, site);
      case "call":
        return this.call(e, frame, site);
      case "indexed":
        return this.fail("E306", "indexed tensors such as x[i, j] only appear on the right of index notation (y[i] = ...)", e.span);
    }
  }

  private nameExpr(e: NameExpr, frame: Frame): ArgValue {
    const first = e.parts[0]!;
    if (e.parts.length === 1) {
      const b = frame.scope.get(first.name);
      if (b?.kind === "poison") throw new Poisoned();
      if (b) return { ...b, span: e.span } as ArgValue;
      if (first.name === "none") return { kind: "none", span: e.span };
      if (this.state.graph.symbols.includes(first.name)) return { kind: "dim", value: Dim.sym(first.name), span: e.span };
      return this.unknownName(first, frame);
    }
    // A dotted path names a parameter or buffer created by a layer: c1.weight, r1.c1.weight.
    const path = e.parts.map((p) => p.name).join(".");
    const params = this.state.graph.params;
    const found = params.get(frame.prefix + path) ?? params.get(path);
    if (found) return { kind: "tensor", value: found.value, span: e.span };
    const layer = e.parts.slice(0, -1).map((p) => p.name).join(".");
    const b = frame.scope.get(first.name);
    if (b?.kind === "poison") throw new Poisoned();
    const ofLayer = [...params.keys()].filter((k) => k.startsWith(frame.prefix + layer + ".") || k.startsWith(layer + "."));
    return this.fail("E307", `'${layer}' has no parameter or buffer '${e.parts[e.parts.length - 1]!.name}'`, e.span, {
      hint: ofLayer.length ? `it has ${ofLayer.join(", ")}` : `no layer named '${layer}' has created parameters before this line`,
    });
  }

  private binary(e: Extract<Expr, { kind: "binary" }>, frame: Frame, site: CallSite): ArgValue {
    const a = this.expr(e.left, frame, site);
    const b = this.expr(e.right, frame, site);
    if (e.op === "@") {
      // Errors of `a @ b` point at the operator, not at an operand.
      const operands = [a, b].map((v) => ({ ...v, span: undefined }) as ArgValue);
      return { kind: "tensor", value: this.state.callBuiltin("matmul", e.opSpan, operands, [], site), span: e.span };
    }
    // Compile-time arithmetic on numbers and sizes (e.g. kernel=2*k+1, reshape(x, [N*L, -1])).
    const isStatic = (v: ArgValue) => v.kind === "number" || v.kind === "dim";
    if (isStatic(a) && isStatic(b)) return this.staticArith(e, a, b);
    const ta = this.tensorOf(a, e.left.span, b.kind === "tensor" ? b.value.type.dtype : "f32");
    const tb = this.tensorOf(b, e.right.span, ta.type.dtype);
    const op = { "+": "add", "-": "sub", "*": "mul", "/": "div" }[e.op];
    return { kind: "tensor", value: this.state.emitOp(op, [ta, tb], {}, e.opSpan, `operator '${e.op}'`, site.prefix + site.binding)[0]!, span: e.span };
  }

  private staticArith(e: Extract<Expr, { kind: "binary" }>, a: ArgValue, b: ArgValue): ArgValue {
    if (a.kind === "number" && b.kind === "number") {
      const value = e.op === "+" ? a.value + b.value : e.op === "-" ? a.value - b.value : e.op === "*" ? a.value * b.value : a.value / b.value;
      // Division of numbers is real division (1/3 is a weight, not 0).
      return { kind: "number", value, isInt: a.isInt && b.isInt && e.op !== "/", span: e.span };
    }
    const toDim = (v: ArgValue, span: Span): Dim => {
      if (v.kind === "dim") return v.value;
      if (v.kind === "number" && v.isInt) return Dim.of(v.value);
      return this.fail("E403", `sizes can only be combined with integers, found ${describeArg(v)}`, span);
    };
    const x = toDim(a, e.left.span);
    const y = toDim(b, e.right.span);
    if (e.op === "/") {
      const k = y.constValue();
      if (k === undefined || k <= 0) this.fail("E403", "a size can only be divided by a positive integer", e.right.span);
      return { kind: "dim", value: Dim.floordiv(x, k), span: e.span };
    }
    return { kind: "dim", value: e.op === "+" ? x.add(y) : e.op === "-" ? x.sub(y) : x.mul(y), span: e.span };
  }

  private call(e: CallExpr, frame: Frame, site: CallSite): ArgValue {
    const def = this.defs.get(e.callee.name);
    if (def) return this.inlineDef(def, e, frame, site);
    if (!getBuiltin(e.callee.name)) {
      const near = closest(e.callee.name, [...this.defs.keys(), ...builtinNames()]);
      this.fail("E303", `unknown function '${e.callee.name}'`, e.callee.span, { hint: near ? `did you mean '${near}'?` : undefined });
    }
    const positional = e.args.map((a) => this.expr(a, frame, site));
    const keywords: KeywordArg[] = e.kwargs.map((k) => ({ name: k.name.name, value: this.expr(k.value, frame, site), span: k.name.span }));
    return { kind: "tensor", value: this.state.callBuiltin(e.callee.name, e.callee.span, positional, keywords, site), span: e.span };
  }

  private inlineDef(def: DefDecl, call: CallExpr, frame: Frame, site: CallSite): ArgValue {
    const name = def.name.name;
    if (frame.defStack.includes(name)) {
      this.fail("E305", `def '${name}' calls itself (${[...frame.defStack, name].join(" → ")}); defs are inlined, so recursion is not allowed`, call.callee.span);
    }
    const params = def.params.map((p) => p.name);
    if (call.args.length > params.length) {
      this.fail("E405", `def '${name}' takes ${params.length} argument${params.length === 1 ? "" : "s"}, found ${call.args.length}`, call.args[params.length]!.span);
    }
    const bound = new Map<string, ArgValue>();
    call.args.forEach((a, i) => bound.set(params[i]!, this.expr(a, frame, site)));
    for (const k of call.kwargs) {
      if (!params.includes(k.name.name)) {
        this.fail("E402", `def '${name}' has no parameter '${k.name.name}'`, k.name.span, { hint: `its parameters are ${params.join(", ")}` });
      }
      if (bound.has(k.name.name)) this.fail("E406", `argument '${k.name.name}' of def '${name}' is given twice`, k.name.span);
      bound.set(k.name.name, this.expr(k.value, frame, site));
    }
    for (const p of params) if (!bound.has(p)) this.fail("E401", `def '${name}' is missing argument '${p}'`, call.callee.span);

    // A def sees its arguments and the model's symbols, not the caller's bindings.
    const scope = new Scope();
    for (const [k, v] of bound) scope.set(k, v);
    const inner: Frame = { scope, prefix: this.state.defNamespace(site), defStack: [...frame.defStack, name] };
    let result: ArgValue | undefined;
    for (const stmt of def.body) {
      try {
        const r = this.statement(stmt, inner);
        if (stmt.kind === "return") {
          result = r;
          break;
        }
      } catch (e) {
        if (e instanceof CompileError) {
          // Point at the line inside the def and say where it was called from.
          const where = call.callee.span;
          throw new CompileError(e.diagnostics.map((d) => ({ ...d, notes: [...(d.notes ?? []), `in def '${name}' called at ${where.file}:${where.line}:${where.col}`] })));
        }
        throw e;
      }
    }
    if (!result) this.fail("E306", `def '${name}' has no return statement`, def.name.span);
    return { ...result, span: call.span } as ArgValue;
  }

  /**
   * Index notation: `y[i, k] = x[i, j] * w[j, k] + b[k]`. Each additive term is
   * a product of indexed tensors (and numbers); it becomes one einsum summing the
   * indices absent from the left side; terms then broadcast to the left side's
   * index order and are added.
   */
  private indexStmt(stmt: IndexStmt, frame: Frame): Value {
    const lhs = stmt.indices.map((i) => i.name);
    const dup = lhs.find((n, i) => lhs.indexOf(n) !== i);
    if (dup) this.fail("E206", `index '${dup}' appears twice on the left of index notation`, stmt.span);
    const terms = this.additiveTerms(stmt.value, 1);
    const site: CallSite = { binding: stmt.name.name, prefix: frame.prefix };
    let acc: Value | undefined;
    const sizes = new Map<string, Dim>();
    for (const term of terms) {
      let scale = term.sign;
      const factors: { value: Value; indices: string[]; span?: Span }[] = [];
      for (const f of term.factors) {
        if (f.kind === "indexed") {
          const v = this.tensorOf(this.nameExpr(f.target, frame), f.span);
          const indices = f.indices.map((i) => i.name);
          if (indices.length !== v.type.shape.length) {
            this.fail("E210", `'${f.target.parts.map((p) => p.name).join(".")}' has rank ${v.type.shape.length} but is indexed with ${indices.length} ind${indices.length === 1 ? "ex" : "ices"}`, f.span, { notes: [this.state.describe(v)] });
          }
          indices.forEach((ix, k) => {
            const d = v.type.shape[k]!;
            const prev = sizes.get(ix);
            if (prev && !prev.equals(d)) {
              this.fail("E206", `index '${ix}' is ${prev.toString()} in one factor but ${d.toString()} in '${f.target.parts.map((p) => p.name).join(".")}'`, f.span);
            }
            sizes.set(ix, d);
          });
          factors.push({ value: v, indices, span: f.span });
        } else {
          const v = this.expr(f, frame, site);
          if (v.kind === "number") scale *= v.value;
          else if (v.kind === "tensor" && v.value.type.shape.length === 0) factors.push({ value: v.value, indices: [], span: f.span });
          else this.fail("E403", `a factor in index notation must be an indexed tensor (x[i, j]) or a number, found ${describeArg(v)}`, f.span);
        }
      }
      // Indices absent from the left side are summed within the term by its einsum.
      const present = new Set(factors.flatMap((f) => f.indices));
      const outIdx = lhs.filter((i) => present.has(i));
      const ctx = this.lowerCtxFor(stmt, site);
      let v = factors.length ? einsumTerm(ctx, factors, outIdx) : this.state.constant(1, "f32", stmt.span);
      if (scale !== 1) v = this.state.emitOp("mul", [v, this.state.constant(scale, "f32", stmt.span)], {}, stmt.name.span, "index notation", stmt.name.name)[0]!;
      // Broadcast to the left side: size-1 dims where the term lacks an index.
      if (outIdx.length !== lhs.length && outIdx.length > 0) {
        const shape = lhs.map((i) => (present.has(i) ? sizes.get(i)! : Dim.of(1)));
        v = this.state.emitOp("reshape", [v], { shape }, stmt.name.span, "index notation", stmt.name.name)[0]!;
      }
      acc = acc ? this.state.emitOp("add", [acc, v], {}, stmt.name.span, "index notation", stmt.name.name)[0]! : v;
    }
    const missing = lhs.filter((i) => !sizes.has(i));
    if (missing.length) this.fail("E206", `index '${missing[0]}' on the left does not appear on the right, so its size is unknown`, stmt.span);
    const full = lhs.map((i) => sizes.get(i)!);
    if (acc!.type.shape.length !== full.length || acc!.type.shape.some((d, k) => !d.equals(full[k]!))) {
      acc = this.state.emitOp("broadcast_to", [acc!], { shape: full }, stmt.name.span, "index notation", stmt.name.name)[0]!;
    }
    return acc!;
  }

  private additiveTerms(e: Expr, sign: number): { sign: number; factors: Expr[] }[] {
    if (e.kind === "binary" && (e.op === "+" || e.op === "-")) {
      return [...this.additiveTerms(e.left, sign), ...this.additiveTerms(e.right, e.op === "-" ? -sign : sign)];
    }
    if (e.kind === "unary") return this.additiveTerms(e.operand, -sign);
    return [{ sign, factors: this.productFactors(e) }];
  }

  private productFactors(e: Expr): Expr[] {
    if (e.kind === "binary" && e.op === "*") return [...this.productFactors(e.left), ...this.productFactors(e.right)];
    if (e.kind === "binary") this.fail("E403", `index notation supports sums of products; '${e.op}' is not allowed inside a term`, e.opSpan);
    if (e.kind === "indexed" || e.kind === "number" || e.kind === "name") return [e];
    return this.fail("E403", "a term of index notation must be a product of indexed tensors such as x[i, j]", e.span);
  }

  /** A LowerCtx for ops emitted directly by index notation (errors at the statement). */
  private lowerCtxFor(stmt: IndexStmt, site: CallSite): LowerCtx {
    const state = this.state;
    const label = site.prefix + site.binding;
    const what = `index notation '${label}'`;
    const ctx: LowerCtx = {
      graph: state.graph,
      span: stmt.name.span,
      callee: "index notation",
      layerName: () => label,
      emit: (op, inputs, attrs = {}) => state.emitOp(op, inputs, attrs, stmt.name.span, what, label),
      emit1: (op, inputs, attrs = {}) => ctx.emit(op, inputs, attrs)[0]!,
      param: () => state.fail("E306", "index notation cannot create parameters", stmt.span),
      constant: (v, dtype) => state.constant(v, dtype, stmt.span),
      fail: (code, message, opts = {}) => state.fail(code, `${what}: ${message}`, stmt.span, opts),
      describe: (v) => state.describe(v),
    };
    return ctx;
  }
}

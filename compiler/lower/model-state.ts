// The state of one model under construction, shared by the DSL lowering and
// the TypeScript builder: the graph, the user's names for values (for
// messages), layer naming (DSL.md §5 "Parameters of layers"), and the one
// place where builtin calls are bound, checked and lowered.

import { CompileError, diag, type DiagnosticCode, type Span } from "../diagnostics.ts";
import { Dim } from "../ir/dims.ts";
import { Graph, type Attrs, type InitSpec, type Value } from "../ir/graph.ts";
import { typeToString, typesEqual, type DType, type TensorType } from "../ir/types.ts";
import { Args, describeArg, type ArgValue } from "../ops/args.ts";
import { getBuiltin, getOp } from "../ops/index.ts";
import type { FailOptions, InferCtx, LowerCtx } from "../ops/op.ts";

export interface KeywordArg {
  readonly name: string;
  readonly value: ArgValue;
  /** Span of the keyword's name. */
  readonly span?: Span;
}

/** Where a call sits: the binding it belongs to and the namespace of enclosing defs. */
export interface CallSite {
  readonly binding: string;
  /** "r1." inside a def called from binding r1; "" at model level. */
  readonly prefix: string;
}

export class ModelState {
  readonly graph: Graph;
  /** The user's name for values, used in notes ("s2 is f32[N, 6, 4, 4]"). */
  readonly valueNames = new Map<Value, string>();
  /** Owning calls made so far under each (prefixed) binding, for `.1`, `.2` suffixes. */
  private readonly ownerCounts = new Map<string, number>();

  constructor(name: string, span?: Span) {
    this.graph = new Graph(name, span);
  }

  fail(code: DiagnosticCode, message: string, span?: Span, opts: { notes?: readonly string[]; hint?: string } = {}): never {
    throw new CompileError([diag(code, message, span, opts)]);
  }

  addInput(name: string, type: TensorType, span?: Span, typeSpan: Span | undefined = span): Value {
    if (this.graph.inputs.has(name)) this.fail("E302", `input '${name}' is declared twice`, span);
    for (const d of type.shape) {
      // A plain symbol is bound here if new; compound dims may only use bound symbols.
      const syms = [...d.symbols()];
      const isPlain = syms.length === 1 && d.equals(Dim.sym(syms[0]!));
      for (const s of syms) {
        if (this.graph.symbols.includes(s)) continue;
        if (isPlain) this.graph.symbols.push(s);
        else this.fail("E308", `size ${d.toString()} uses symbol '${s}' before an input binds it`, typeSpan, { hint: `declare an input with ${s} as a plain dim first` });
      }
    }
    const node = this.graph.addNode("input", [], { name, dtype: type.dtype, shape: type.shape }, [type], { label: name, span });
    const v = node.outputs[0]!;
    this.graph.inputs.set(name, v);
    this.valueNames.set(v, name);
    return v;
  }

  addParam(name: string, type: TensorType, init: InitSpec, trainable: boolean, span?: Span): Value {
    if (this.graph.params.has(name)) this.fail("E302", `parameter '${name}' is created twice`, span, { hint: "give the layer a distinct name with name=..." });
    for (const d of type.shape) {
      if (!d.isConst()) this.fail("E212", `parameter '${name}' must have a static shape, found ${typeToString(type)}`, span, { hint: "parameter shapes cannot depend on symbols such as N or L" });
      if ((d.constValue() ?? 0) < 1) this.fail("E212", `parameter '${name}' has a non-positive size in ${typeToString(type)}`, span);
    }
    const node = this.graph.addNode("param", [], { name, dtype: type.dtype, shape: type.shape }, [type], { label: name, span });
    const v = node.outputs[0]!;
    this.graph.params.set(name, { name, value: v, init, trainable, span });
    this.valueNames.set(v, name);
    return v;
  }

  constant(value: number, dtype: DType = "f32", span?: Span): Value {
    return this.graph.addNode("const", [], { dtype, value }, [{ dtype, shape: [] }], { span }).outputs[0]!;
  }

  describe(v: Value): string {
    const name = this.valueNames.get(v);
    return `${name ?? (v.node.op === "const" ? "the constant" : "the value")} is ${typeToString(v.type)}`;
  }

  /**
   * Emit an IR op outside any builtin call (e.g. `+` in the DSL), with shape
   * errors located at `span` and described as `what` ("operator '+'").
   */
  emitOp(op: string, inputs: readonly Value[], attrs: Attrs, span: Span | undefined, what: string, label?: string): readonly Value[] {
    const ctx: InferCtx = {
      fail: (code, message, opts) => this.fail(code, `${what}: ${message}`, span, opts),
      describeInput: (i) => this.describe(inputs[i]!),
    };
    const types = getOp(op).infer(inputs.map((v) => v.type), attrs, ctx);
    return this.graph.addNode(op, inputs, attrs, types, { label, span }).outputs;
  }

  /** The namespace a def body called from `site` will use (counts as an owning call). */
  defNamespace(site: CallSite): string {
    return this.nextOwnerName(site.prefix + site.binding) + ".";
  }

  private nextOwnerName(base: string): string {
    const n = this.ownerCounts.get(base) ?? 0;
    this.ownerCounts.set(base, n + 1);
    return n === 0 ? base : `${base}.${n}`;
  }

  /** Bind, check and lower one builtin call. */
  callBuiltin(callee: string, calleeSpan: Span | undefined, positional: readonly ArgValue[], keywords: readonly KeywordArg[], site: CallSite): Value {
    const def = getBuiltin(callee);
    if (!def) this.fail("E303", `unknown function '${callee}'`, calleeSpan);
    const signature = def.signature(callee);
    const allowed = def.ownsParams ? [...signature, "name"] : [...signature];
    const bound = new Map<string, ArgValue>();
    if (positional.length > signature.length) {
      this.fail("E405", `${callee} takes at most ${signature.length} positional argument${signature.length === 1 ? "" : "s"}, found ${positional.length}`, positional[signature.length]!.span ?? calleeSpan, {
        hint: `its parameters are ${signature.join(", ")}`,
      });
    }
    positional.forEach((v, i) => bound.set(signature[i]!, v));
    for (const k of keywords) {
      if (!allowed.includes(k.name)) {
        const near = closest(k.name, allowed);
        this.fail("E402", `${callee} has no argument '${k.name}'`, k.span ?? calleeSpan, {
          hint: near ? `did you mean '${near}'?` : `its arguments are ${allowed.join(", ")}`,
        });
      }
      if (bound.has(k.name)) this.fail("E406", `argument '${k.name}' of ${callee} is given twice`, k.span ?? calleeSpan);
      bound.set(k.name, k.value);
    }

    let layer: string | undefined;
    const nameArg = bound.get("name");
    const state = this;
    const ctx: LowerCtx = {
      graph: this.graph,
      span: calleeSpan,
      callee,
      layerName() {
        if (layer !== undefined) return layer;
        if (nameArg && nameArg.kind !== "none" && nameArg.kind !== "string") {
          state.fail("E403", `argument 'name' must be a string, found ${describeArg(nameArg)}`, nameArg.span ?? calleeSpan);
        }
        const chosen = nameArg?.kind === "string" ? site.prefix + nameArg.value : state.nextOwnerName(site.prefix + site.binding);
        layer = chosen;
        return chosen;
      },
      emit(op, inputs, attrs = {}) {
        return state.emitOp(op, inputs, attrs, calleeSpan, `${callee} '${label()}'`, label());
      },
      emit1(op, inputs, attrs = {}) {
        return ctx.emit(op, inputs, attrs)[0]!;
      },
      param(local, type, init, opts = {}) {
        const argName = opts.argName ?? local;
        const given = bound.get(argName);
        // `bias=true` is a flag, not a tensor: the layer creates its own.
        if (given && given.kind !== "none" && given.kind !== "bool") {
          if (given.kind !== "tensor") return ctx.fail("E403", `argument '${argName}' must be a tensor, found ${describeArg(given)}`, { arg: argName });
          if (!typesEqual(given.value.type, type)) {
            ctx.fail("E216", `tensor passed as ${argName}= must be ${typeToString(type)}, found ${typeToString(given.value.type)}`, {
              arg: argName,
              notes: [state.describe(given.value)],
            });
          }
          return given.value;
        }
        return state.addParam(`${ctx.layerName()}.${local}`, type, init, opts.trainable ?? true, calleeSpan);
      },
      constant: (value, dtype) => state.constant(value, dtype, calleeSpan),
      fail(code, message, opts: FailOptions = {}) {
        const span = (opts.arg ? bound.get(opts.arg)?.span : undefined) ?? calleeSpan;
        return state.fail(code, `${callee} '${label()}': ${message}`, span, opts);
      },
      describe: (v) => state.describe(v),
    };
    // Messages name the layer when the call owns parameters, else the binding.
    const label = () => layer ?? site.prefix + site.binding;
    const args = new Args(bound, ctx);
    if (def.ownsParams) ctx.layerName();
    return def.lower(args, ctx);
  }
}

/** The E205 diagnostic text when an annotation disagrees with a value's type, or undefined when they agree. */
export function annotationMismatch(name: string, want: TensorType, got: TensorType): { message: string; notes: string[] } | undefined {
  if (typesEqual(want, got)) return undefined;
  const dims = want.shape.length === got.shape.length ? want.shape.map((d, i) => (d.equals(got.shape[i]!) ? undefined : i)).filter((i) => i !== undefined) : [];
  return {
    message: `'${name}' is annotated ${typeToString(want)} but its value is ${typeToString(got)}`,
    notes: dims.length
      ? [`dim ${dims.join(", ")} differ${dims.length === 1 ? "s" : ""}`]
      : want.dtype !== got.dtype
        ? [`element type ${want.dtype} vs ${got.dtype}`]
        : [`rank ${want.shape.length} vs ${got.shape.length}`],
  };
}

/** The closest name by edit distance, when it is close enough to be a likely typo. */
export function closest(name: string, candidates: readonly string[]): string | undefined {
  let best: string | undefined;
  let bestD = Infinity;
  for (const c of candidates) {
    const d = editDistance(name, c);
    if (d < bestD) {
      bestD = d;
      best = c;
    }
  }
  return bestD <= Math.max(1, Math.floor(name.length / 3)) ? best : undefined;
}

function editDistance(a: string, b: string): number {
  const dp = Array.from({ length: a.length + 1 }, (_, i) => [i, ...new Array<number>(b.length).fill(0)]);
  for (let j = 1; j <= b.length; j++) dp[0]![j] = j;
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      dp[i]![j] = Math.min(dp[i - 1]![j]! + 1, dp[i]![j - 1]! + 1, dp[i - 1]![j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1));
    }
  }
  return dp[a.length]![b.length]!;
}

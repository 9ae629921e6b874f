// The float64 reference interpreter: the oracle every target is checked
// against. It binds symbols from the input shapes (checking every input's
// dtype, rank and sizes), evaluates only the nodes the requested outputs need,
// in graph order, by each op's `evaluate`.

import type { Dim } from "../ir/dims.ts";
import { neededInputs, neededNodes, type Graph, type Value } from "../ir/graph.ts";
import { typeToString } from "../ir/types.ts";
import { getOp } from "../ops/index.ts";
import type { EvalCtx } from "../ops/op.ts";
import { initParam } from "../../runtime/init.ts";
import { streamRng } from "./rng.ts";
import { RefTensor } from "./tensor.ts";

/** A runtime failure (bad input shape, token out of range): exit code 3 in the CLI. */
export class RunError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "RunError";
  }
}

export interface InterpretOptions {
  /** Training mode: dropout/noise active, batchnorm uses batch statistics. */
  readonly training?: boolean;
  /** Seed for dropout and noise streams. */
  readonly seed?: number;
  /** Names of outputs/losses to compute; default: all whose inputs are fed. */
  readonly outputs?: readonly string[];
}

export interface InterpretResult {
  readonly outputs: Record<string, RefTensor>;
  /** New values of buffers (batchnorm running statistics) after a training run. */
  readonly bufferUpdates: Record<string, RefTensor>;
  readonly symbols: ReadonlyMap<string, number>;
  readonly values: ReadonlyMap<Value, RefTensor>;
}

/** Bind the graph's symbols from the fed inputs, checking every dim. */
export function bindSymbols(g: Graph, inputs: Readonly<Record<string, RefTensor>>): Map<string, number> {
  const env = new Map<string, number>();
  const boundBy = new Map<string, string>();
  const deferred: [string, number, Dim, number][] = [];
  for (const [name, v] of g.inputs) {
    const t = inputs[name];
    if (!t) continue;
    const want = v.type;
    if (t.dtype !== want.dtype) throw new RunError(`input '${name}': expected dtype ${want.dtype}, found ${t.dtype}`);
    if (t.rank !== want.shape.length) {
      throw new RunError(`input '${name}': expected rank ${want.shape.length} (${typeToString(want)}), found shape [${t.shape.join(", ")}]`);
    }
    want.shape.forEach((d, i) => {
      const got = t.shape[i]!;
      const c = d.constValue();
      if (c !== undefined) {
        if (c !== got) throw new RunError(`input '${name}': dim ${i} must be ${c} (${typeToString(want)}), found ${got}`);
        return;
      }
      const syms = [...d.symbols()];
      if (syms.length === 1 && d.toString() === syms[0]) {
        const s = syms[0]!;
        const prev = env.get(s);
        if (prev === undefined) {
          if (got < 1) throw new RunError(`input '${name}': symbol ${s} (dim ${i}) must be at least 1, found ${got}`);
          env.set(s, got);
          boundBy.set(s, name);
        } else if (prev !== got) {
          throw new RunError(`input '${name}': symbol ${s} is ${prev} (bound by input '${boundBy.get(s)}'), but dim ${i} of '${name}' is ${got}`);
        }
      } else {
        deferred.push([name, i, d, got]);
      }
    });
  }
  for (const [name, i, d, got] of deferred) {
    let want: number;
    try {
      want = d.evaluate(env);
    } catch {
      continue; // a symbol of another (unfed) input; checked when that input is fed
    }
    if (want !== got) throw new RunError(`input '${name}': dim ${i} must be ${d.toString()} = ${want}, found ${got}`);
  }
  return env;
}

/** Initial parameter and buffer values for a seed (float32-rounded, as on every target). */
export function initialParams(g: Graph, seed = 0): Record<string, RefTensor> {
  const out: Record<string, RefTensor> = {};
  for (const p of g.params.values()) {
    const shape = p.value.type.shape.map((d) => d.constValue()!);
    const size = shape.reduce((a, b) => a * b, 1);
    out[p.name] = new RefTensor(p.value.type.dtype, shape, Float64Array.from(initParam(p.name, size, p.init, seed)));
  }
  return out;
}

export function interpret(
  g: Graph,
  inputs: Readonly<Record<string, RefTensor>>,
  params: Readonly<Record<string, RefTensor>>,
  opts: InterpretOptions = {},
): InterpretResult {
  const env = bindSymbols(g, inputs);
  const wanted = opts.outputs
    ? opts.outputs.map((name) => {
        const o = g.output(name);
        if (!o) throw new RunError(`model ${g.name} has no output or loss named '${name}'`);
        return o;
      })
    : g.outputs.filter((o) => neededInputs(g, [o.value]).every((n) => n in inputs));
  if (opts.outputs) {
    for (const o of wanted) {
      const missing = neededInputs(g, [o.value]).filter((n) => !(n in inputs));
      if (missing.length) throw new RunError(`${o.kind} '${o.name}' needs input${missing.length > 1 ? "s" : ""} ${missing.map((m) => `'${m}'`).join(", ")}, which ${missing.length > 1 ? "were" : "was"} not given`);
    }
  }
  // Buffer updates are computed in training, for the branches whose inputs were fed.
  const updates = opts.training ? g.bufferUpdates.filter((u) => neededInputs(g, [u.value]).every((n) => n in inputs)) : [];
  const keep = new Set(neededNodes(g, [...wanted.map((o) => o.value), ...updates.map((u) => u.value)]));

  const values = new Map<Value, RefTensor>();
  const seed = opts.seed ?? 0;
  for (const node of g.nodes) {
    if (!keep.has(node)) continue;
    if (node.op === "input") {
      values.set(node.outputs[0]!, inputs[node.attrs.name as string]!);
      continue;
    }
    if (node.op === "param") {
      const name = node.attrs.name as string;
      const t = params[name];
      if (!t) throw new RunError(`parameter '${name}' has no value`);
      const want = node.outputs[0]!.type.shape.map((d) => d.constValue()!);
      if (t.shape.length !== want.length || t.shape.some((s, i) => s !== want[i])) {
        throw new RunError(`parameter '${name}': expected shape [${want.join(", ")}], found [${t.shape.join(", ")}]`);
      }
      values.set(node.outputs[0]!, t);
      continue;
    }
    const ctx: EvalCtx = {
      node,
      training: opts.training ?? false,
      rng: streamRng(seed, `${node.label ?? ""}#${node.id}`),
      outShapes: node.outputs.map((v) => v.type.shape.map((d) => d.evaluate(env))),
      evalDim: (d) => d.evaluate(env),
      fail: (message) => {
        throw new RunError(`${node.label ? `'${node.label}' ` : ""}(${node.op}): ${message}`);
      },
    };
    const results = getOp(node.op).evaluate(node.inputs.map((v) => values.get(v)!), node.attrs, ctx);
    node.outputs.forEach((v, i) => {
      const r = results[i];
      if (!r) throw new Error(`internal: ${node.op} returned ${results.length} results, expected ${node.outputs.length}`);
      const want = ctx.outShapes[i]!;
      if (r.shape.length !== want.length || r.shape.some((s, k) => s !== want[k])) {
        throw new Error(`internal: ${node.op} produced shape [${r.shape.join(", ")}] but its shape rule says [${want.join(", ")}]`);
      }
      values.set(v, r);
    });
  }
  const outputs: Record<string, RefTensor> = {};
  for (const o of wanted) outputs[o.name] = values.get(o.value)!;
  const bufferUpdates: Record<string, RefTensor> = {};
  for (const u of updates) bufferUpdates[u.name] = values.get(u.value)!;
  return { outputs, bufferUpdates, symbols: env, values };
}

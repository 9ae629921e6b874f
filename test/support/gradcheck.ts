// Gradient checks. `gradGraph` turns a test graph into one whose outputs are
// the gradients of a probe loss  L = Σ y ⊙ w  (w a random "__probe" input of
// y's shape, so every element of y matters with a different weight) with
// respect to the chosen inputs and parameters, built by the real autodiff pass.
// `checkGradients` compares those analytic gradients, evaluated by the float64
// reference interpreter, with central finite differences of L; the returned
// graph and feeds then go to expectJsMatchesReference / expectWgslMatchesReference
// to check the generated gradient kernels on each target.

import { expect } from "vitest";
import { differentiate, emitNode } from "../../compiler/autodiff/reverse.ts";
import type { Graph, Value } from "../../compiler/ir/graph.ts";
import { initialParams, interpret, bindSymbols } from "../../compiler/reference/interpreter.ts";
import type { RefTensor } from "../../compiler/reference/tensor.ts";
import { randomTensor } from "./build.ts";

export interface GradCheckOptions {
  /** The output to differentiate (default: the graph's first output). */
  readonly output?: string;
  /** Inputs and parameters to differentiate with respect to (default: every f32 input and trainable parameter). */
  readonly wrt?: readonly string[];
  readonly params?: Record<string, RefTensor>;
  readonly training?: boolean;
  readonly seed?: number;
  /** Finite-difference step (default 1e-6; float64 central differences). */
  readonly eps?: number;
  readonly rtol?: number;
  readonly atol?: number;
  /** At most this many elements of each tensor are perturbed (spread evenly; default 40). */
  readonly maxElements?: number;
}

export interface GradGraph {
  readonly graph: Graph;
  /** The feeds: the given inputs plus the probe weights. */
  readonly inputs: Record<string, RefTensor>;
  /** Output names `grad:<name>` for each differentiated tensor. */
  readonly names: readonly string[];
}

function valueOf(g: Graph, name: string): Value {
  const v = g.inputs.get(name) ?? g.params.get(name)?.value;
  if (!v) throw new Error(`gradcheck: no input or parameter '${name}'`);
  return v;
}

/** A copy of `g` whose outputs are the probe loss and its gradients. */
export function gradGraph(g0: Graph, inputs: Record<string, RefTensor>, opts: GradCheckOptions = {}): GradGraph {
  const g = g0.clone();
  const out = opts.output ? g.output(opts.output) : g.outputs[0];
  if (!out) throw new Error("gradcheck: the graph has no output");
  const y = out.value;
  // Probe weights: an input of y's type, so symbolic dims bind from the other inputs.
  const probe = g.addNode("input", [], { name: "__probe" }, [y.type]).outputs[0]!;
  g.inputs.set("__probe", probe);
  const env = bindSymbols(g0, inputs);
  const probeShape = y.type.shape.map((d) => d.evaluate(env));
  const prod = emitNode(g, "mul", [y, probe], {})[0]!;
  const loss = y.type.shape.length ? emitNode(g, "reduce", [prod], { kind: "sum", axes: y.type.shape.map((_, i) => i), keepdims: false })[0]! : prod;
  const names = opts.wrt ?? [
    ...[...g0.inputs].filter(([, v]) => v.type.dtype === "f32").map(([n]) => n),
    ...g0.trainableParams().map((p) => p.name),
  ];
  const grads = differentiate(g, loss, names.map((n) => valueOf(g, n)));
  g.outputs.length = 0;
  g.outputs.push({ name: "loss", value: loss, kind: "output" });
  names.forEach((n, i) => g.outputs.push({ name: `grad:${n}`, value: grads[i]!, kind: "output" }));
  return { graph: g, inputs: { ...inputs, __probe: randomTensor(probeShape, 9173) }, names: names.map((n) => `grad:${n}`) };
}

/**
 * Analytic gradients (reference interpreter on the backward IR) against central
 * finite differences of the forward pass, in float64. Returns the grad graph for
 * target checks.
 */
export function checkGradients(g0: Graph, inputs: Record<string, RefTensor>, opts: GradCheckOptions = {}): GradGraph {
  const gg = gradGraph(g0, inputs, opts);
  const params = { ...initialParams(g0, opts.seed ?? 0), ...(opts.params ?? {}) };
  const run = (feeds: Record<string, RefTensor>, ps: Record<string, RefTensor>, outputs?: string[]) =>
    interpret(gg.graph, feeds, ps, { training: opts.training, seed: opts.seed, outputs }).outputs;
  const analytic = run(gg.inputs, params);
  const eps = opts.eps ?? 1e-6;
  const rtol = opts.rtol ?? 1e-5;
  const atol = opts.atol ?? 1e-6;
  const lossAt = (feeds: Record<string, RefTensor>, ps: Record<string, RefTensor>) => run(feeds, ps, ["loss"]).loss!.data[0]!;
  for (const gname of gg.names) {
    const name = gname.slice("grad:".length);
    const isInput = name in gg.inputs;
    const base = isInput ? gg.inputs[name]! : params[name]!;
    const got = analytic[gname]!;
    expect(got.shape, `${gname}: shape`).toEqual(base.shape);
    const n = base.size;
    const limit = Math.min(n, opts.maxElements ?? 40);
    for (let s = 0; s < limit; s++) {
      const k = limit === n ? s : Math.floor((s * n) / limit);
      const at = (delta: number) => {
        const t = base.map((v, i) => (i === k ? v + delta : v));
        return isInput ? lossAt({ ...gg.inputs, [name]: t }, params) : lossAt(gg.inputs, { ...params, [name]: t });
      };
      const fd = (at(eps) - at(-eps)) / (2 * eps);
      const a = got.data[k]!;
      if (!(Math.abs(a - fd) <= atol + rtol * Math.abs(fd))) {
        expect.fail(`${gname}: element ${k} (index [${base.unravel(k).join(", ")}]) analytic ${a}, finite difference ${fd} (|diff| ${Math.abs(a - fd)})`);
      }
    }
  }
  return gg;
}

// The module emitter: one IR graph → `<model>.js` (an ES module exporting
// `create<Model>()`, DSL.md §9) and `<model>.d.ts` typing every input,
// output, parameter and symbol by name. The JS is assembled from the kernel
// program (codegen/js/program.ts) and the runtime, inlined by default so the
// file works wherever it is copied; the .d.ts is built with ts-morph.
//
// No user string reaches the output unescaped: names appear only inside
// JSON.stringify'd literals and comments are sanitised; identifiers come from
// `mangle`.

import { Project, type SourceFile } from "ts-morph";
import type { Dim } from "../ir/dims.ts";
import { neededInputs, type Graph, type Value } from "../ir/graph.ts";
import type { TensorType } from "../ir/types.ts";
import { dimToJs } from "./js/kernel.ts";
import { emitProgram, type BufferSpec, type MemoryItemSpec } from "./js/program.ts";
import { emitWgslProgram } from "./wgsl/program.ts";
import { runtimeBundle } from "./runtime-bundle.ts";
import { optimize, optimizeInPlace, type PassLevel } from "../passes/pipeline.ts";
import { buildTrainingGraph, defaultLearningRate, LR_INPUT, STEP_INPUT, type TrainingGraph } from "../autodiff/training.ts";

export interface EmitOptions {
  readonly target?: "js" | "webgpu";
  /** Optimizing passes (default "all"; "none" emits the graph as lowered). */
  readonly passes?: PassLevel;
  readonly runtime: "inline" | "import";
  /** The .cnn file, for the header comment. */
  readonly sourceFile?: string;
  /** Module path of the shared runtime in `import` mode. */
  readonly runtimeImport?: string;
}

export interface EmittedModule {
  /** File base name: the model name in lower case (`lenet5`). */
  readonly base: string;
  readonly js: string;
  readonly dts: string;
  readonly kernelCount: number;
  /** Kernels per training step (models with a loss). */
  readonly trainKernelCount?: number;
}

/** The shared runtime file of `--runtime=import`, per target. */
export function runtimeFileName(target: "js" | "webgpu"): string {
  return target === "js" ? "cnnc-runtime.js" : "cnnc-runtime-webgpu.js";
}

/** `LeNet5` → `createLeNet5`; a name that is not a safe identifier is mangled. */
export function factoryName(model: string): string {
  const safe = model.replace(/[^A-Za-z0-9_]/g, "_");
  return `create${safe.charAt(0).toUpperCase()}${safe.slice(1)}`;
}

export function moduleBase(model: string): string {
  return model.replace(/[^A-Za-z0-9_-]/g, "_").toLowerCase();
}

/** A comment-safe rendering of user text (no comment terminators, no newlines). */
function commentSafe(s: string): string {
  return s.replace(/\*\//g, "* /").replace(/[\r\n\u2028\u2029]/g, " ");
}

function dimSpecJs(d: Dim): string {
  const c = d.constValue();
  if (c !== undefined) return String(c);
  const syms = [...d.symbols()];
  if (syms.length === 1 && d.toString() === syms[0]) return JSON.stringify(syms[0]);
  return `{ text: ${JSON.stringify(d.toString())}, eval: (S) => ${dimToJs(d)} }`;
}

function tensorSpecJs(name: string, t: TensorType): string {
  return `{ name: ${JSON.stringify(name)}, dtype: ${JSON.stringify(t.dtype)}, shape: [${t.shape.map(dimSpecJs).join(", ")}] }`;
}

function buffersJs(buffers: readonly BufferSpec[]): string {
  return buffers
    .map((b) => {
      const src = b.source;
      const source =
        src.kind === "computed" ? '"computed"'
        : src.kind === "planned" ? `{ planned: ${src.item} }`
        : src.kind === "input" ? `{ input: ${JSON.stringify(src.name)} }`
        : src.kind === "param" ? `{ param: ${JSON.stringify(src.name)} }`
        : src.kind === "const" ? `{ const: [${src.values.map((v) => JSON.stringify(v)).join(", ")}] }`
        : `{ alias: ${src.of} }`;
      return `      { dtype: ${JSON.stringify(b.dtype)}, size: (S) => ${b.size}, source: ${source} },`;
    })
    .join("\n");
}

interface Entry {
  /** The entry's object literal inside SPEC. */
  readonly text: string;
  /**
   * Top-level declarations it refers to (JS kernels and the forward function, or WGSL
   * strings), by name. A kernel depends only on its IR node, so entries that share
   * nodes share declarations: the module writes each name once.
   */
  readonly decls: ReadonlyMap<string, string>;
  readonly kernelCount: number;
}

/** The memory plan's items (a `{ planned: k }` buffer lives in item k), placed per bound shape by the runtime. */
function memoryJs(items: readonly MemoryItemSpec[]): string {
  return items.map((it, k) => `      { size: (S) => ${it.size}, def: ${it.def}, last: ${it.last}, avoid: ${JSON.stringify(it.avoid)} }, // ${k}${it.scratch ? `: scratch ${it.scratch}` : ""}`).join("\n");
}

function entryHead(g: Graph, name: string, values: readonly { name: string; value: Value }[], bufferOf: ReadonlyMap<Value, number>, buffers: readonly BufferSpec[], memory: readonly MemoryItemSpec[]): string[] {
  return [
    `  ${name}: {`,
    `    inputs: ${JSON.stringify(neededInputs(g, values.map((o) => o.value)).filter((n) => !n.startsWith("@")))},`,
    `    outputs: [\n${values.map((o) => `      { name: ${JSON.stringify(o.name)}, buffer: ${bufferOf.get(o.value)}, spec: ${tensorSpecJs(o.name, o.value.type)} },`).join("\n")}\n    ],`,
    `    buffers: [\n${buffersJs(buffers)}\n    ],`,
    `    memory: [${memory.length ? `\n${memoryJs(memory)}\n    ` : ""}],`,
  ];
}

/** The training entry's extra fields: where updates land, the hidden scalars, the optimizer state. */
function trainFields(t: TrainingGraph, bufferOf: ReadonlyMap<Value, number>): string[] {
  const forward = new Set(t.graph.params.keys());
  const hidden = (n: string) => (t.graph.inputs.has(n) && bufferOf.has(t.graph.inputs.get(n)!) ? bufferOf.get(t.graph.inputs.get(n)!)! : null);
  return [
    `    updates: [\n${t.updates.map((u) => `      { name: ${JSON.stringify(u.name)}, buffer: ${bufferOf.get(u.value)}, state: ${t.state.includes(u.name)} },`).join("\n")}\n    ],`,
    `    state: [${t.state.map((n) => `{ name: ${JSON.stringify(n)}, size: ${t.graph.params.get(n)!.value.type.shape.reduce((p, d) => p * d.constValue()!, 1)} }`).join(", ")}],`,
    `    hyper: { lr: ${hidden(LR_INPUT)}, step: ${hidden(STEP_INPUT)} },`,
    `    defaultLr: ${JSON.stringify(defaultLearningRate(t))},`,
    `    frozen: ${JSON.stringify(t.frozen.filter((n) => forward.has(n)))},`,
  ];
}

type Named = readonly { name: string; value: Value }[];

function jsEntry(g: Graph, name: string, values: Named, train?: TrainingGraph): Entry {
  const roots = [...values, ...(train?.updates ?? [])].map((o) => o.value);
  const program = emitProgram(g, roots);
  const decls = new Map(program.kernels.map((k) => [/function (\w+)\(/.exec(k)![1]!, k]));
  decls.set(`${name}_forward`, program.forward.replace(/\bfunction forward\(/, `function ${name}_forward(`));
  const text = [
    ...entryHead(g, name, values, program.bufferOf, program.buffers, program.memory),
    ...(train ? trainFields(train, program.bufferOf) : []),
    `    forward: ${name}_forward,`,
    "  },",
  ].join("\n");
  return { text, decls, kernelCount: program.kernelCount };
}

/** WGSL goes into the module as template literals, readable as written; the generator never emits ` or ${ or \\. */
function wgslLiteral(code: string): string {
  if (/[`\\]|\$\{/.test(code)) throw new Error("internal: WGSL text contains a character that cannot be embedded in a template literal");
  return `\`${code}\``;
}

function wgslEntry(g: Graph, name: string, values: Named, train?: TrainingGraph): Entry {
  const program = emitWgslProgram(g, [...values, ...(train?.updates ?? [])].map((o) => o.value));
  const decls = new Map<string, string>();
  const passes = program.passes.map((p) => {
    const id = p.name;
    decls.set(id, `const ${id} = ${wgslLiteral(p.code.cpu)};`);
    const gpuId = p.code.gpu === p.code.cpu ? id : `${id}_gpu`;
    if (gpuId !== id) decls.set(gpuId, `const ${gpuId} = ${wgslLiteral(p.code.gpu)};`);
    const dispatch = (d: readonly (string | undefined)[]) => `[${d.filter((x) => x !== undefined).map((x) => `(S) => ${x}`).join(", ")}]`;
    return [
      "      {",
      `        name: ${JSON.stringify(p.name)},`,
      `        implements: ${JSON.stringify(`${p.node.op}${p.node.label ? ` '${p.node.label}'` : ""}`)},`,
      `        code: { cpu: ${id}, gpu: ${gpuId} },`,
      `        dispatch: { cpu: ${dispatch(p.dispatch.cpu)}, gpu: ${dispatch(p.dispatch.gpu)} },`,
      `        inputs: ${JSON.stringify(p.inputs)}, outputs: ${JSON.stringify(p.outputs)},`,
      `        scratch: [${p.scratch.map((t) => `{ size: (S) => ${t.size}, item: ${t.item} }`).join(", ")}], group: ${p.group},`,
      `        usesError: ${p.usesError}, errors: ${JSON.stringify(p.errors)},`,
      "      },",
    ].join("\n");
  });
  const text = [
    ...entryHead(g, name, values, program.bufferOf, program.buffers, program.memory),
    ...(train ? trainFields(train, program.bufferOf) : []),
    `    passes: [\n${passes.join("\n")}\n    ],`,
    "  },",
  ].join("\n");
  return { text, decls, kernelCount: program.passes.length };
}

export function emitModule(source: Graph, opts: EmitOptions): EmittedModule {
  const target = opts.target ?? "js";
  const g = optimize(source, opts.passes);
  const entry = target === "js" ? jsEntry : wgslEntry;
  const outputs = g.outputs.filter((o) => o.kind === "output");
  const run = entry(g, "run", outputs);
  // `evaluate` also computes the losses; run() uses it when the loss inputs (labels) are given.
  const evaluate = g.outputs.some((o) => o.kind === "loss") ? entry(g, "evaluate", g.outputs) : undefined;
  // `train`: forward in training mode, backward and optimizer update, as one graph.
  const training = optimizeTraining(buildTrainingGraph(source), opts.passes);
  const train = training ? entry(training.graph, "train", training.losses, training) : undefined;
  const factory = factoryName(g.name);
  const create = target === "js" ? "createModel" : "createGpuModel";
  const runtimeModule = target === "js" ? "model" : "webgpu-model";
  const lines: string[] = [];
  lines.push(`// Generated by cnnc from ${commentSafe(opts.sourceFile ?? "a builder graph")} (model ${commentSafe(g.name)}) for ${target === "js" ? "the JS target" : "WebGPU"}. Do not edit.`);
  lines.push(`// Kernels: ${run.kernelCount} per run${train ? `, ${train.kernelCount} per training step` : ""}. Runtime: ${opts.runtime === "inline" ? "inlined (self-contained)" : "imported"}.`);
  lines.push("");
  if (opts.runtime === "inline") {
    lines.push("// ---- runtime (inlined; only the pieces this module uses) ----");
    lines.push(runtimeBundle([runtimeModule]));
    lines.push(`const { ${create} } = rt_${runtimeModule.replace(/-/g, "_")};`);
  } else {
    lines.push(`import { ${create} } from ${JSON.stringify(opts.runtimeImport ?? `./${runtimeFileName(target)}`)};`);
  }
  lines.push("");
  lines.push(`// ---- ${target === "js" ? "kernels" : "WGSL kernels"} ----`);
  const decls = mergeDecls([run, evaluate, train]);
  lines.push([...decls.values()].join("\n\n"));
  lines.push("");
  lines.push("const SPEC = {");
  lines.push(`  name: ${JSON.stringify(g.name)},`);
  lines.push(`  symbols: ${JSON.stringify(g.symbols)},`);
  lines.push(`  inputs: [\n${[...g.inputs].map(([n, v]) => `    ${tensorSpecJs(n, v.type)},`).join("\n")}\n  ],`);
  lines.push(
    `  params: [\n${[...g.params.values()]
      .map((p) => `    { ...${tensorSpecJs(p.name, p.value.type)}, init: ${JSON.stringify(p.init)}, trainable: ${p.trainable} },`)
      .join("\n")}\n  ],`,
  );
  lines.push(run.text);
  if (evaluate) lines.push(evaluate.text);
  if (train) lines.push(train.text);
  lines.push("};");
  lines.push("");
  lines.push(`/** Create a ${commentSafe(g.name)} model: parameters from \`weights\` (safetensors) or initialised from \`seed\`${target === "webgpu" ? "; \`device\` to use your own GPUDevice" : ""}. */`);
  lines.push(`export async function ${factory}(options = {}) {`);
  lines.push(`  return ${create}(SPEC, options);`);
  lines.push("}");
  lines.push("");
  lines.push(`export const spec = SPEC;`);
  lines.push(`export default ${factory};`);
  return { base: moduleBase(g.name), js: lines.join("\n") + "\n", dts: emitDts(g, factory, target, training), kernelCount: run.kernelCount, trainKernelCount: train?.kernelCount };
}

/**
 * The entries' declarations by name, each once. Entries share a declaration
 * only when they share the IR node (the same text); kernel names tell a node's
 * training form apart (`_train`, see kernelName), so a name with two texts is a bug.
 */
function mergeDecls(entries: readonly (Entry | undefined)[]): Map<string, string> {
  const decls = new Map<string, string>();
  for (const e of entries) {
    for (const [name, text] of e?.decls ?? []) {
      if (decls.has(name) && decls.get(name) !== text) throw new Error(`internal: two different declarations named ${name}`);
      decls.set(name, text);
    }
  }
  return decls;
}

/** The training graph after the passes, with its losses and updates re-read from the rewritten graph. */
function optimizeTraining(t: TrainingGraph | undefined, level: PassLevel | undefined): TrainingGraph | undefined {
  if (!t || level === "none") return t;
  const graph = optimizeInPlace(t.graph, level);
  return { ...t, graph, losses: graph.outputs.filter((o) => o.kind === "loss"), updates: [...graph.bufferUpdates] };
}

/** The shared runtime file for `--runtime=import`. */
export function runtimeFile(target: "js" | "webgpu" = "js"): string {
  const mod = target === "js" ? "model" : "webgpu-model";
  const create = target === "js" ? "createModel" : "createGpuModel";
  return `// cnnc runtime, shared by the modules in this folder. Generated; do not edit.\n${runtimeBundle([mod])}\nexport const { ${create} } = rt_${mod.replace(/-/g, "_")};\n`;
}

/** A tuple type for a shape: literal sizes where static, `number` where symbolic. */
function shapeType(t: TensorType): string {
  return `readonly [${t.shape.map((d) => (d.constValue() !== undefined ? String(d.constValue()) : `number /* ${commentSafe(d.toString())} */`)).join(", ")}]`;
}

const ARRAY_OF = { f32: "Float32Array", i32: "Int32Array", bool: "Uint8Array" } as const;

function emitDts(g: Graph, factory: string, target: "js" | "webgpu", training?: TrainingGraph): string {
  const project = new Project({ useInMemoryFileSystem: true });
  const f: SourceFile = project.createSourceFile("model.d.ts", "", { overwrite: true });
  const prefix = factory.slice("create".length);
  const prop = (name: string) => JSON.stringify(name);
  const outputs = g.outputs.filter((o) => o.kind === "output");
  const runInputs = new Set(neededInputs(g, outputs.map((o) => o.value)));
  f.addStatements(`// Generated by cnnc for model ${commentSafe(g.name)}. Do not edit.`);
  f.addInterface({
    name: `${prefix}Inputs`,
    isExported: true,
    docs: ["Inputs of `run`, by name; symbolic sizes are bound from their shapes."],
    properties: [...g.inputs].map(([name, v]) => ({
      name: prop(name),
      hasQuestionToken: !runInputs.has(name),
      type: `{ readonly data: ${ARRAY_OF[v.type.dtype]}; readonly shape: ${shapeType(v.type)} }`,
    })),
  });
  f.addInterface({
    name: `${prefix}Outputs`,
    isExported: true,
    properties: outputs.map((o) => ({ name: prop(o.name), type: `{ readonly data: ${ARRAY_OF[o.value.type.dtype]}; readonly shape: ${shapeType(o.value.type)} }` })),
  });
  const losses = g.outputs.filter((o) => o.kind === "loss");
  if (training) {
    const trainInputs = new Set(neededInputs(training.graph, training.losses.map((o) => o.value)));
    f.addInterface({
      name: `${prefix}TrainInputs`,
      isExported: true,
      docs: ["Inputs of `trainStep`: everything the losses need."],
      properties: [...g.inputs].filter(([name]) => trainInputs.has(name)).map(([name, v]) => ({
        name: prop(name),
        type: `{ readonly data: ${ARRAY_OF[v.type.dtype]}; readonly shape: ${shapeType(v.type)} }`,
      })),
    });
    f.addInterface({
      name: `${prefix}Losses`,
      isExported: true,
      docs: ["The losses of one training step (computed before the update), as scalars; each also converts to a number."],
      properties: losses.map((o) => ({ name: prop(o.name), type: "{ readonly data: Float32Array; readonly shape: readonly []; valueOf(): number }" })),
    });
  }
  f.addInterface({
    name: `${prefix}Parameters`,
    isExported: true,
    docs: ["Trainable parameters and buffers, by their DSL names."],
    properties: [...g.params.values()].map((p) => ({ name: prop(p.name), type: `{ shape: ${shapeType(p.value.type)}; data: ${ARRAY_OF[p.value.type.dtype]} }` })),
  });
  f.addInterface({
    name: `${prefix}Symbols`,
    isExported: true,
    docs: ["Symbolic sizes, bound at run time from the inputs' shapes."],
    properties: g.symbols.map((s) => ({ name: prop(s), type: "number" })),
  });
  f.addInterface({
    name: `${prefix}Model`,
    isExported: true,
    methods: [
      { name: "run", parameters: [{ name: "inputs", type: `${prefix}Inputs` }], returnType: `Promise<${prefix}Outputs>` },
      ...(training
        ? [{
            name: "trainStep",
            parameters: [{ name: "inputs", type: `${prefix}TrainInputs` }, { name: "options", hasQuestionToken: true, type: "{ lr?: number }" }],
            returnType: `Promise<${prefix}Losses>`,
            docs: [`One training step: forward (training mode), backward and ${training.optimizer.kind === "adam" ? "an" : "a"} ${training.optimizer.kind} update of every parameter; returns the losses. lr defaults to ${defaultLearningRate(training)}.`],
          }]
        : []),
      { name: "parameters", returnType: `${prefix}Parameters` },
      { name: "saveWeights", returnType: "Uint8Array", docs: ["All parameters and buffers as a safetensors file."] },
      { name: "dispose", returnType: "void" },
    ],
  });
  f.addInterface({
    name: `${prefix}Options`,
    isExported: true,
    properties: [
      { name: "weights", hasQuestionToken: true, type: "Uint8Array", docs: ["Parameters as safetensors (what saveWeights returns)."] },
      { name: "seed", hasQuestionToken: true, type: "number", docs: ["Initialisation seed when no weights are given (default 0)."] },
      ...(target === "webgpu" ? [{ name: "device", hasQuestionToken: true, type: "object", docs: ["A GPUDevice to run on (default: navigator.gpu in browsers, the 'webgpu' package in Node)."] }] : []),
    ],
  });
  f.addFunction({ name: factory, isExported: true, hasDeclareKeyword: true, parameters: [{ name: "options", hasQuestionToken: true, type: `${prefix}Options` }], returnType: `Promise<${prefix}Model>` });
  f.addStatements(`export declare const spec: unknown;\nexport default ${factory};`);
  f.formatText({ indentSize: 2 });
  return f.getFullText();
}

// cnnc — the command line (DSL.md §8). Exit codes: 0 success, 1 diagnostics,
// 2 bad usage, 3 runtime error (then no output file is written).

import { Command, CommanderError, Option } from "commander";
import { existsSync, readFileSync, renameSync, writeFileSync, mkdirSync, rmSync } from "node:fs";
import { basename, dirname, join } from "node:path";
import { pathToFileURL } from "node:url";
import { tmpdir } from "node:os";
import { mkdtempSync } from "node:fs";
import { compileSource, formatDiagnostics, type CompileResult } from "./compile.ts";
import { neededInputs, type Graph } from "./ir/graph.ts";
import { graphToJson, printGraph, printParamSummary } from "./ir/printer.ts";
import { graphStats, formatStats, trainStats } from "./passes/stats.ts";
import { buildTrainingGraph } from "./autodiff/training.ts";
import { optimize, type PassLevel } from "./passes/pipeline.ts";
import { initialParams, interpret, RunError } from "./reference/interpreter.ts";
import { RefTensor } from "./reference/tensor.ts";
import { decodeSafetensors, encodeSafetensors, SafetensorsError } from "../runtime/safetensors.ts";
import { typeToString, type DType } from "./ir/types.ts";

export const EXIT = { ok: 0, diagnostics: 1, usage: 2, runtime: 3 } as const;

/** An error that ends the command with a given exit code and message. */
class Exit extends Error {
  constructor(readonly code: number, message: string) {
    super(message);
  }
}

interface Io {
  stdout(s: string): void;
  stderr(s: string): void;
}

function readSource(file: string): string {
  if (!existsSync(file)) throw new Exit(EXIT.usage, `cnnc: no such file: ${file}`);
  try {
    return readFileSync(file, "utf8");
  } catch (e) {
    throw new Exit(EXIT.usage, `cnnc: cannot read ${file}: ${(e as Error).message}`);
  }
}

function compileOrExit(file: string, io: Io): CompileResult {
  const result = compileSource(readSource(file), file);
  if (result.diagnostics.length) {
    io.stderr(formatDiagnostics(result) + "\n");
    const n = result.diagnostics.length;
    throw new Exit(EXIT.diagnostics, `${n} error${n > 1 ? "s" : ""} in ${file}`);
  }
  return result;
}

/** The training graph of a model for `ir --grad`; a model without a loss has none (exit 2). */
function trainingOrExit(g: Graph, io: Io): Graph {
  void io;
  const t = buildTrainingGraph(g);
  if (!t) throw new Exit(EXIT.usage, `cnnc ir --grad: model ${g.name} declares no loss, so it has no backward graph (use grad(y, x) in the model for a gradient value)`);
  return t.graph;
}

function pickModel(r: CompileResult, name: string | undefined): Graph {
  if (name) {
    const g = r.graphs.find((x) => x.name === name);
    if (!g) throw new Exit(EXIT.usage, `cnnc: no model named '${name}' in ${r.file}; it has ${r.graphs.map((x) => x.name).join(", ")}`);
    return g;
  }
  if (r.graphs.length !== 1) throw new Exit(EXIT.usage, `cnnc: ${r.file} has ${r.graphs.length} models (${r.graphs.map((x) => x.name).join(", ")}); choose one with --model`);
  return r.graphs[0]!;
}

const FILE_DTYPES: Record<string, DType> = { F32: "f32", I32: "i32", BOOL: "bool" };

function readTensors(path: string, what: string): Record<string, RefTensor> {
  if (!existsSync(path)) throw new Exit(EXIT.usage, `cnnc: no such ${what} file: ${path}`);
  let decoded;
  try {
    decoded = decodeSafetensors(new Uint8Array(readFileSync(path)));
  } catch (e) {
    if (e instanceof SafetensorsError) throw new Exit(EXIT.runtime, `cnnc: ${what} file ${path}: ${e.message}`);
    throw e;
  }
  const out: Record<string, RefTensor> = {};
  for (const [name, t] of Object.entries(decoded)) {
    out[name] = new RefTensor(FILE_DTYPES[t.dtype]!, t.shape, Float64Array.from(t.data as ArrayLike<number>));
  }
  return out;
}

function toFileTensor(t: RefTensor) {
  const shape = [...t.shape];
  if (t.dtype === "i32") return { dtype: "I32" as const, shape, data: Int32Array.from(t.data) };
  if (t.dtype === "bool") return { dtype: "BOOL" as const, shape, data: Uint8Array.from(t.data, (v) => (v ? 1 : 0)) };
  return { dtype: "F32" as const, shape, data: Float32Array.from(t.data) };
}

/** Write atomically: a partial file never appears under the final name. */
function writeAtomically(path: string, bytes: Uint8Array | string): void {
  mkdirSync(dirname(path) || ".", { recursive: true });
  const tmp = `${path}.${process.pid}.tmp`;
  try {
    writeFileSync(tmp, bytes);
    renameSync(tmp, path);
  } catch (e) {
    rmSync(tmp, { force: true });
    throw e;
  }
}

type RunOpts = { target: string; inputs: string; weights?: string; model?: string; out: string; seed: string };

async function runCommand(file: string, opts: RunOpts, io: Io): Promise<void> {
  const seed = Number(opts.seed);
  if (!Number.isInteger(seed) || seed < 0) throw new Exit(EXIT.usage, `cnnc run: --seed must be a non-negative integer, found '${opts.seed}'`);
  const r = compileOrExit(file, io);
  const g = pickModel(r, opts.model);
  const inputs = readTensors(opts.inputs, "inputs");
  for (const name of Object.keys(inputs)) {
    if (!g.inputs.has(name)) io.stderr(`cnnc run: note: ignoring '${name}' in the inputs file: ${g.name} has no such input\n`);
  }
  const outputs = opts.target === "reference" ? runOnReference(g, inputs, opts, seed, io) : await runModule(g, opts.target as "js" | "webgpu", inputs, opts, seed);
  const tensors = Object.fromEntries(Object.entries(outputs).map(([k, t]) => [k, toFileTensor(t)]));
  writeAtomically(opts.out, encodeSafetensors(tensors));
  io.stderr(`wrote ${Object.keys(tensors).join(", ")} to ${opts.out}\n`);
}

/** Every `output` is required; a loss is computed when its inputs (labels) are given. */
function runOnReference(g: Graph, inputs: Record<string, RefTensor>, opts: RunOpts, seed: number, io: Io): Record<string, RefTensor> {
  const params = initialParams(g, seed);
  if (opts.weights) {
    const given = readTensors(opts.weights, "weights");
    for (const [name, t] of Object.entries(given)) {
      if (!(name in params)) throw new Exit(EXIT.runtime, `cnnc run: weights file has '${name}', which is not a parameter of ${g.name}`);
      const want = g.params.get(name)!.value.type;
      if (t.dtype !== want.dtype || t.shape.length !== want.shape.length || t.shape.some((d, i) => d !== want.shape[i]!.constValue())) {
        throw new Exit(EXIT.runtime, `cnnc run: weights '${name}' must be ${typeToString(want)}, found ${t.dtype}[${t.shape.join(", ")}]`);
      }
      params[name] = t;
    }
    const missing = g.trainableParams().map((p) => p.name).filter((n) => !(n in given));
    if (missing.length) throw new Exit(EXIT.runtime, `cnnc run: the weights file has no ${missing.map((m) => `'${m}'`).join(", ")}`);
  }
  const required = g.outputs.filter((o) => o.kind === "output").map((o) => o.name);
  const losses = g.outputs.filter((o) => o.kind === "loss" && neededInputs(g, [o.value]).every((n) => n in inputs));
  try {
    return interpret(g, inputs, params, { outputs: [...required, ...losses.map((l) => l.name)] }).outputs;
  } catch (e) {
    if (e instanceof RunError) throw new Exit(EXIT.runtime, `cnnc run: ${e.message}`);
    throw e;
  }
}

const ARRAY_FOR = { f32: Float32Array, i32: Int32Array, bool: Uint8Array } as const;

/** Compile to a self-contained module in a temporary folder, import it and run it, as a user would. */
async function runModule(g: Graph, target: "js" | "webgpu", inputs: Record<string, RefTensor>, opts: RunOpts, seed: number): Promise<Record<string, RefTensor>> {
  const { emitModule, factoryName } = await import("./codegen/module.ts");
  const m = emitModule(g, { target, runtime: "inline", sourceFile: basename(opts.inputs) });
  const dir = mkdtempSync(join(tmpdir(), "cnnc-run-"));
  // .mjs: an ES module wherever the temporary folder is (no package.json there says "type": "module").
  const path = join(dir, `${m.base}.mjs`);
  writeFileSync(path, m.js);
  try {
    const mod = (await import(pathToFileURL(path).href)) as Record<string, (o: object) => Promise<{ run(i: object): Promise<Record<string, { data: ArrayLike<number>; shape: number[] }>>; dispose(): void }>>;
    const weights = opts.weights ? new Uint8Array(readFileSync(opts.weights)) : undefined;
    // The module sits in a temporary folder where the `webgpu` package does not resolve: hand it our device.
    const gpu = target === "webgpu" ? await (await import("../runtime/webgpu.ts")).acquireDevice() : undefined;
    const model = await mod[factoryName(g.name)]!({ weights, seed, device: gpu?.device });
    const feeds = Object.fromEntries(Object.entries(inputs).map(([k, t]) => [k, { data: ARRAY_FOR[t.dtype].from(t.data), shape: [...t.shape] }]));
    let out;
    try {
      out = await model.run(feeds);
    } finally {
      model.dispose();
      gpu?.device.destroy();
    }
    return Object.fromEntries(
      Object.entries(out).map(([k, v]) => [k, new RefTensor(g.output(k)!.value.type.dtype, v.shape, Float64Array.from(v.data))]),
    );
  } catch (e) {
    const name = (e as Error).name;
    if (name === "CnncRunError" || name === "SafetensorsError") throw new Exit(EXIT.runtime, `cnnc run: ${(e as Error).message}`);
    throw e;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}


export function buildProgram(io: Io): Command {
  const program = new Command("cnnc");
  program
    .description("Compile .cnn neural-network models (DSL.md) to WebGPU or JS modules; check, inspect and run them.")
    .version("0.1.0")
    .exitOverride()
    .enablePositionalOptions()
    .configureOutput({ writeOut: (s) => io.stdout(s), writeErr: (s) => io.stderr(s) })
    .showHelpAfterError("(run cnnc --help for usage)")
    .argument("[file]", "the .cnn file to compile")
    .addOption(new Option("--target <target>", "code generator").choices(["webgpu", "js"]).default("js"))
    .option("-o, --out-dir <dir>", "output folder", ".")
    .addOption(new Option("--runtime <mode>", "inline the runtime (self-contained module) or import it from the package").choices(["inline", "import"]).default("inline"))
    .addOption(new Option("--passes <which>", "optimizing passes (fusion, simplification); none emits the graph as lowered").choices(["none", "all"]).default("all"))
    .addHelpText(
      "after",
      `
Usage:
  cnnc model.cnn --target=js|webgpu [-o outdir] [--runtime=inline|import] [--passes=all|none]
                                             compile: writes <model>.js (ES module) and <model>.d.ts per model
  cnnc check model.cnn                       parse and type-check only
  cnnc ir model.cnn [--grad] [--passes=all|none] [--stats] [--json] [--bind N=64]
                                             print the IR, shapes and parameter counts; --grad: the training
                                             step's graph (backward and optimizer updates in IR); --stats:
                                             kernels, FLOPs, planned/naive peak bytes, conv algorithms
  cnnc run model.cnn --target=reference|js|webgpu --inputs in.safetensors --out out.safetensors
                     [--weights w.safetensors] [--model Name] [--seed 0]

Exit codes: 0 success, 1 compile errors (diagnostics on stderr), 2 bad usage, 3 runtime error.
`,
    )
    .action(async (file: string | undefined, opts: { target: string; outDir: string; runtime: "inline" | "import"; passes: PassLevel }) => {
      if (!file) {
        program.outputHelp();
        throw new Exit(EXIT.usage, "");
      }
      const target = opts.target as "js" | "webgpu";
      const r = compileOrExit(file, io);
      // Code generation (and ts-morph) is loaded only when compiling, keeping check/ir fast.
      const { emitModule, runtimeFile, runtimeFileName } = await import("./codegen/module.ts");
      // Emit everything first, then write: a failure leaves no partial output.
      const files = r.graphs.map((g) => emitModule(g, { target, runtime: opts.runtime, passes: opts.passes, sourceFile: basename(file) }));
      for (const m of files) {
        writeAtomically(join(opts.outDir, `${m.base}.js`), m.js);
        writeAtomically(join(opts.outDir, `${m.base}.d.ts`), m.dts);
        io.stderr(`wrote ${join(opts.outDir, m.base)}.js and .d.ts (${m.kernelCount} kernels)\n`);
      }
      if (opts.runtime === "import") writeAtomically(join(opts.outDir, runtimeFileName(target)), runtimeFile(target));
    });

  program
    .command("check")
    .description("parse and type-check a .cnn file")
    .argument("<file>")
    .action((file: string) => {
      const r = compileOrExit(file, io);
      io.stdout(`${file}: ok (${r.graphs.map((g) => g.name).join(", ")})\n`);
    });

  program
    .command("ir")
    .description("print the IR with shapes and parameter counts")
    .argument("<file>")
    .option("--model <name>", "only this model")
    .option("--grad", "include the backward graph (autodiff)")
    .addOption(new Option("--passes <which>", "optimizing passes").choices(["none", "all"]).default("all"))
    .option("--stats", "print statistics (kernels, FLOPs, memory)")
    .option("--json", "print JSON")
    .option("--bind <sym=n...>", "symbol sizes for --stats (default 1 each)")
    .action((file: string, opts: { model?: string; grad?: boolean; passes: PassLevel; stats?: boolean; json?: boolean; bind?: string[] }) => {
      const r = compileOrExit(file, io);
      const chosen = opts.model ? [pickModel(r, opts.model)] : r.graphs;
      // --grad: the training step's graph (forward in training mode, backward, optimizer updates).
      const graphs = (opts.grad ? chosen.map((g) => trainingOrExit(g, io)) : chosen).map((g) => optimize(g, opts.passes));
      const bind = parseBindings(opts.bind ?? []);
      const pick = <T>(items: T[]): T | T[] => (items.length === 1 ? items[0]! : items);
      if (opts.json) {
        const items = graphs.map((g, i) => (opts.stats ? { model: g.name, ...graphStats(g, bind), ...trainStats(chosen[i]!, bind, opts.passes) } : graphToJson(g)));
        io.stdout(JSON.stringify(pick(items), null, 2) + "\n");
        return;
      }
      graphs.forEach((g, i) => {
        if (!opts.stats) io.stdout(printGraph(g) + "\n\n");
        io.stdout(printParamSummary(chosen[i]!) + "\n");
        if (opts.stats) io.stdout(formatStats(g, { ...graphStats(g, bind), ...trainStats(chosen[i]!, bind, opts.passes) }) + "\n");
      });
    });

  program
    .command("run")
    .description("compile and execute once in inference mode")
    .argument("<file>")
    .addOption(new Option("--target <target>", "where to run").choices(["reference", "js", "webgpu"]).makeOptionMandatory())
    .requiredOption("--inputs <file>", "safetensors file with the inputs, by name")
    .option("--weights <file>", "safetensors file with parameters (default: initialised from --seed)")
    .option("--model <name>", "the model to run when the file has several")
    .requiredOption("--out <file>", "safetensors file to write every output and loss to")
    .option("--seed <n>", "initialisation seed when --weights is absent", "0")
    .action((file: string, opts: RunOpts) => runCommand(file, opts, io));

  return program;
}

function parseBindings(items: readonly string[]): Record<string, number> {
  const out: Record<string, number> = {};
  for (const item of items.flatMap((s) => s.split(","))) {
    const m = /^([A-Za-z_][A-Za-z0-9_]*)=(\d+)$/.exec(item.trim());
    if (!m) throw new Exit(EXIT.usage, `cnnc: --bind expects SYMBOL=N, found '${item}'`);
    out[m[1]!] = Number(m[2]);
  }
  return out;
}

/** Run the CLI; returns the exit code (never calls process.exit, so tests can call it). */
export async function main(argv: readonly string[], io: Io = { stdout: (s) => process.stdout.write(s), stderr: (s) => process.stderr.write(s) }): Promise<number> {
  const program = buildProgram(io);
  try {
    await program.parseAsync([...argv], { from: "user" });
    return EXIT.ok;
  } catch (e) {
    if (e instanceof Exit) {
      if (e.message) io.stderr(e.message + "\n");
      return e.code;
    }
    if (e instanceof CommanderError) {
      // help and version exit 0; everything commander rejects is bad usage.
      return e.code === "commander.helpDisplayed" || e.code === "commander.version" || e.code === "commander.help" ? EXIT.ok : EXIT.usage;
    }
    io.stderr(`cnnc: internal error: ${(e as Error).stack ?? String(e)}\n`);
    return 70;
  }
}

const isMain = process.argv[1] !== undefined && /compiler[\\/]cli\.ts$/.test(process.argv[1]);
if (isMain) process.exitCode = await main(process.argv.slice(2));

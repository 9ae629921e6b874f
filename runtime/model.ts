// The runtime of a compiled JS-target module (DSL.md §9): input validation and
// symbol binding, parameter initialisation or loading, buffers allocated once
// per bound shape and reused, and the run / parameters / saveWeights / dispose API.
// It is inlined into self-contained modules, so it uses no Node APIs.

import { initParam, type InitSpec } from "./init.ts";
import { CnncRunError, makeRunContext } from "./run-context.ts";
import { decodeSafetensors, encodeSafetensors, type SafeTensor } from "./safetensors.ts";
import { planArenas } from "./memory-plan.ts";

export type DTypeName = "f32" | "i32" | "bool";
type TypedArray = Float32Array | Int32Array | Uint8Array;

/** A dim in a compiled spec: a size, a symbol, or a compound size with its text and evaluator. */
export type DimSpec = number | string | { readonly text: string; readonly eval: (S: Record<string, number>) => number };

export interface TensorSpec {
  readonly name: string;
  readonly dtype: DTypeName;
  readonly shape: readonly DimSpec[];
}

export interface ParamSpec extends TensorSpec {
  readonly init: InitSpec;
  readonly trainable: boolean;
}

export interface BufferSpecRt {
  readonly dtype: DTypeName;
  /** Element count for the bound symbols. */
  readonly size: (S: Record<string, number>) => number;
  /** `planned`: placed by the memory plan (item k of the entry's `memory`); "computed": a buffer of its own. */
  readonly source: "computed" | { planned: number } | { input: string } | { param: string } | { const: readonly number[] } | { alias: number };
}

/** A region of the memory plan: occupied for schedule steps [def, last], in another arena than the items in `avoid`. */
export interface MemoryItemRt {
  readonly size: (S: Record<string, number>) => number;
  readonly def: number;
  readonly last: number;
  readonly avoid: readonly number[];
}

/** The memory plan placed for bound sizes (runtime/memory-plan.ts). */
export function placeMemory(items: readonly MemoryItemRt[] | undefined, S: Record<string, number>) {
  return planArenas((items ?? []).map((it) => ({ size: it.size(S), def: it.def, last: it.last, avoid: it.avoid })));
}

/** One compiled entry point (the forward pass for `run`; later `trainStep`). */
export interface EntrySpec {
  readonly inputs: readonly string[];
  readonly outputs: readonly { readonly name: string; readonly buffer: number; readonly spec: TensorSpec }[];
  readonly buffers: readonly BufferSpecRt[];
  readonly memory?: readonly MemoryItemRt[];
  readonly forward: (S: Record<string, number>, T: unknown, B: TypedArray[]) => void;
}

/** The training step: forward in training mode, backward, optimizer update (compiler/autodiff/training.ts). */
export interface TrainEntrySpec extends EntrySpec {
  /** New values to copy into parameters, buffers and optimizer state after the step. */
  readonly updates: readonly { readonly name: string; readonly buffer: number; readonly state: boolean }[];
  /** Optimizer state tensors, zero at creation. */
  readonly state: readonly { readonly name: string; readonly size: number }[];
  /** Buffers of the hidden scalars (null when unused). */
  readonly hyper: { readonly lr: number | null; readonly step: number | null };
  readonly defaultLr: number;
  /** Trainable parameters no loss depends on (never updated). */
  readonly frozen: readonly string[];
}

export interface TrainOptions {
  /** Learning rate for this step (default: the model's optimizer's lr). */
  readonly lr?: number;
}

/** A loss value: a scalar tensor that also converts to a number (`+xent`, `xent.toFixed` via Number). */
export interface LossValue extends TensorValue {
  valueOf(): number;
}

export function lossValue(data: Float32Array): LossValue {
  return { data, shape: [], valueOf: () => data[0]! };
}

/** The learning rate of a step, checked. */
export function stepLearningRate(name: string, entry: Pick<TrainEntrySpec, "defaultLr">, options: TrainOptions | undefined): number {
  const lr = options?.lr ?? entry.defaultLr;
  if (typeof lr !== "number" || !Number.isFinite(lr) || lr < 0) throw new CnncRunError(`${name}: trainStep lr must be a finite non-negative number, found ${String(lr)}`);
  return lr;
}

export interface ModelSpec {
  readonly name: string;
  readonly symbols: readonly string[];
  readonly inputs: readonly TensorSpec[];
  readonly params: readonly ParamSpec[];
  readonly run: EntrySpec;
  /** Outputs and losses; run() uses it when the losses' inputs are given. */
  readonly evaluate?: EntrySpec;
  /** Present when the model declares a loss. */
  readonly train?: TrainEntrySpec;
}

export interface TensorValue {
  readonly data: Float32Array | Int32Array | Uint8Array;
  readonly shape: readonly number[];
}

export interface CreateOptions {
  /** Parameters as a safetensors file (what saveWeights() returns). */
  readonly weights?: Uint8Array;
  /** Initialisation seed when no weights are given (default 0). */
  readonly seed?: number;
}

const ARRAYS = { f32: Float32Array, i32: Int32Array, bool: Uint8Array } as const;
const FILE_DTYPE = { f32: "F32", i32: "I32", bool: "BOOL" } as const;

function dimText(d: DimSpec): string {
  return typeof d === "number" ? String(d) : typeof d === "string" ? d : d.text;
}

function typeText(t: TensorSpec): string {
  return `${t.dtype}[${t.shape.map(dimText).join(", ")}]`;
}

function staticSize(shape: readonly DimSpec[]): number {
  return shape.reduce<number>((p, d) => p * (d as number), 1);
}

/** Check the given inputs against their specs and bind the symbols (errors name input, symbol and sizes). */
export function bindInputs(spec: Pick<ModelSpec, "name" | "inputs">, names: readonly string[], feeds: Record<string, TensorValue | undefined>): Record<string, number> {
  const S: Record<string, number> = {};
  const boundBy: Record<string, string> = {};
  const deferred: [TensorSpec, number, Exclude<DimSpec, number | string>, number][] = [];
  for (const name of names) {
    const t = spec.inputs.find((i) => i.name === name)!;
    const v = feeds[name];
    if (!v) throw new CnncRunError(`${spec.name}: missing input '${name}' (${typeText(t)})`);
    if (!(v.data instanceof ARRAYS[t.dtype])) {
      throw new CnncRunError(`${spec.name}: input '${name}' must be ${t.dtype} (${ARRAYS[t.dtype].name}), found ${v.data?.constructor?.name ?? typeof v.data}`);
    }
    if (!Array.isArray(v.shape) || v.shape.length !== t.shape.length) {
      throw new CnncRunError(`${spec.name}: input '${name}' must have rank ${t.shape.length} (${typeText(t)}), found shape [${v.shape}]`);
    }
    t.shape.forEach((d, i) => {
      const got = v.shape[i]!;
      if (!Number.isInteger(got) || got < 0) throw new CnncRunError(`${spec.name}: input '${name}' has an invalid size ${got} in dim ${i}`);
      if (typeof d === "number") {
        if (got !== d) throw new CnncRunError(`${spec.name}: input '${name}' dim ${i} must be ${d} (${typeText(t)}), found ${got}`);
      } else if (typeof d === "string") {
        if (S[d] === undefined) {
          if (got < 1) throw new CnncRunError(`${spec.name}: symbol ${d} (input '${name}' dim ${i}) must be at least 1, found ${got}`);
          S[d] = got;
          boundBy[d] = name;
        } else if (S[d] !== got) {
          throw new CnncRunError(`${spec.name}: symbol ${d} is ${S[d]} (bound by input '${boundBy[d]}'), but dim ${i} of input '${name}' is ${got}`);
        }
      } else {
        deferred.push([t, i, d, got]);
      }
    });
    const n = v.shape.reduce((p, s) => p * s, 1);
    if (v.data.length !== n) throw new CnncRunError(`${spec.name}: input '${name}' has ${v.data.length} elements, but its shape [${v.shape}] needs ${n}`);
  }
  for (const [t, i, d, got] of deferred) {
    const want = d.eval(S);
    if (want !== got) throw new CnncRunError(`${spec.name}: input '${t.name}' dim ${i} must be ${d.text} = ${want}, found ${got}`);
  }
  return S;
}

export interface CompiledModel {
  run(inputs: Record<string, TensorValue | undefined>): Promise<Record<string, TensorValue>>;
  /** One training step; returns the losses (computed before the update). */
  trainStep(inputs: Record<string, TensorValue | undefined>, options?: TrainOptions): Promise<Record<string, LossValue>>;
  parameters(): Record<string, { shape: number[]; data: Float32Array | Int32Array | Uint8Array }>;
  saveWeights(): Uint8Array;
  dispose(): void;
}

/** Parameter values from `weights` (checked name by name) or initialised from `seed`. */
export function loadParams(spec: Pick<ModelSpec, "name" | "params">, options: CreateOptions): Map<string, TypedArray> {
  const values = new Map<string, TypedArray>();
  const seed = options.seed ?? 0;
  if (!Number.isInteger(seed) || seed < 0) throw new CnncRunError(`${spec.name}: seed must be a non-negative integer, found ${seed}`);
  const given = options.weights ? decodeSafetensors(options.weights) : {};
  for (const name of Object.keys(given)) {
    if (!spec.params.some((p) => p.name === name)) throw new CnncRunError(`${spec.name}: the weights have '${name}', which is not a parameter of this model`);
  }
  for (const p of spec.params) {
    const t: SafeTensor | undefined = given[p.name];
    if (t) {
      const shape = p.shape as readonly number[];
      if (t.dtype !== FILE_DTYPE[p.dtype] || t.shape.length !== shape.length || t.shape.some((s, i) => s !== shape[i])) {
        throw new CnncRunError(`${spec.name}: weights '${p.name}' must be ${FILE_DTYPE[p.dtype]}[${shape}], found ${t.dtype}[${t.shape}]`);
      }
      values.set(p.name, t.data.slice());
    } else if (options.weights && p.trainable) {
      throw new CnncRunError(`${spec.name}: the weights have no '${p.name}'`);
    } else {
      values.set(p.name, initParam(p.name, staticSize(p.shape), p.init, seed));
    }
  }
  return values;
}

/** All parameters and buffers as a safetensors file. */
export function saveParams(spec: Pick<ModelSpec, "name" | "params">, values: ReadonlyMap<string, TypedArray>): Uint8Array {
  const tensors: Record<string, SafeTensor> = {};
  for (const p of spec.params) {
    tensors[p.name] = { dtype: FILE_DTYPE[p.dtype], shape: p.shape as number[], data: values.get(p.name)! } as SafeTensor;
  }
  return encodeSafetensors(tensors, { model: spec.name, producer: "cnnc" });
}

/** A snapshot of every parameter: name → { shape, data } (copies). */
export function snapshotParams(spec: Pick<ModelSpec, "params">, values: ReadonlyMap<string, TypedArray>): Record<string, { shape: number[]; data: TypedArray }> {
  const out: Record<string, { shape: number[]; data: TypedArray }> = {};
  for (const p of spec.params) out[p.name] = { shape: p.shape as number[], data: values.get(p.name)!.slice() };
  return out;
}

/** Zeroed optimizer state (momentum, Adam moments): kept with the parameters, never saved. */
export function addOptimizerState(spec: { readonly train?: Pick<TrainEntrySpec, "state"> }, values: Map<string, TypedArray>): void {
  for (const s of spec.train?.state ?? []) values.set(s.name, new Float32Array(s.size));
}

export function createModel(spec: ModelSpec, options: CreateOptions = {}): CompiledModel {
  let params: Map<string, TypedArray> | undefined = loadParams(spec, options);
  addOptimizerState(spec, params);
  let steps = 0;
  // Buffers are allocated once per bound shape and reused across runs.
  const cache = new Map<string, TypedArray[]>();
  const live = () => {
    if (!params) throw new CnncRunError(`${spec.name}: the model was disposed`);
    return params;
  };

  function buffersFor(entry: EntrySpec, S: Record<string, number>): TypedArray[] {
    const key = `${entry === spec.run ? "run" : entry === spec.train ? "train" : "evaluate"}:${spec.symbols.map((s) => S[s]).join(",")}`;
    const hit = cache.get(key);
    if (hit) return hit;
    // Intermediate values: views of exactly their size into the arenas of the memory plan.
    const layout = placeMemory(entry.memory, S);
    const arenas = layout.arenaSizes.map((n) => new ArrayBuffer(n * 4));
    const B: TypedArray[] = [];
    entry.buffers.forEach((b, i) => {
      const src = b.source;
      if (typeof src === "object" && "alias" in src) B[i] = B[src.alias]!;
      else if (typeof src === "object" && "planned" in src) B[i] = new ARRAYS[b.dtype](arenas[layout.arena[src.planned]!]!, layout.offset[src.planned]! * 4, b.size(S));
      else if (typeof src === "object" && "param" in src) B[i] = live().get(src.param)!;
      else if (typeof src === "object" && "const" in src) B[i] = ARRAYS[b.dtype].from(src.const);
      else B[i] = new ARRAYS[b.dtype](b.size(S));
    });
    // A few shapes stay cached (say, training and evaluation batch sizes); more is a leak.
    if (cache.size >= 6) cache.delete(cache.keys().next().value!);
    cache.set(key, B);
    return B;
  }

  return {
    async run(inputs) {
      live();
      const feeds = inputs ?? {};
      const entry = spec.evaluate && spec.evaluate.inputs.every((n) => feeds[n] !== undefined) ? spec.evaluate : spec.run;
      const S = bindInputs(spec, entry.inputs, feeds);
      const B = buffersFor(entry, S);
      entry.buffers.forEach((b, i) => {
        if (typeof b.source === "object" && "input" in b.source) B[i] = feeds[b.source.input]!.data;
      });
      entry.forward(S, makeRunContext(false, 0), B);
      const out: Record<string, TensorValue> = {};
      for (const o of entry.outputs) {
        out[o.name] = { data: B[o.buffer]!.slice(), shape: o.spec.shape.map((d) => (typeof d === "number" ? d : typeof d === "string" ? S[d]! : d.eval(S))) };
      }
      return out;
    },
    async trainStep(inputs, options) {
      live();
      const entry = spec.train;
      if (!entry) throw new CnncRunError(`${spec.name}: the model declares no loss, so it has no trainStep`);
      const lr = stepLearningRate(spec.name, entry, options);
      const feeds = inputs ?? {};
      const S = bindInputs(spec, entry.inputs, feeds);
      const B = buffersFor(entry, S);
      entry.buffers.forEach((b, i) => {
        if (typeof b.source === "object" && "input" in b.source && !b.source.input.startsWith("@")) B[i] = feeds[b.source.input]!.data;
      });
      steps++;
      if (entry.hyper.lr !== null) B[entry.hyper.lr] = Float32Array.of(lr);
      if (entry.hyper.step !== null) B[entry.hyper.step] = Float32Array.of(steps);
      // Step k draws its dropout masks from seed k (the reference interpreter's `seed`).
      entry.forward(S, makeRunContext(true, steps), B);
      const values = live();
      for (const u of entry.updates) (values.get(u.name) as Float32Array).set(B[u.buffer] as Float32Array);
      const out: Record<string, LossValue> = {};
      for (const o of entry.outputs) out[o.name] = lossValue(Float32Array.from(B[o.buffer] as Float32Array));
      return out;
    },
    parameters() {
      return snapshotParams(spec, live());
    },
    saveWeights() {
      return saveParams(spec, live());
    },
    dispose() {
      params = undefined;
      cache.clear();
    },
  };
}

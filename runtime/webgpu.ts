// The WebGPU runtime of compiled modules: device acquisition (a passed-in
// device, navigator.gpu in browsers, the `webgpu` package (Dawn) in Node),
// pipelines compiled asynchronously at create() and cached, buffers allocated
// once per bound shape and reused, one command encoder and one submit per run,
// readback of the requested outputs only, validation/compilation errors mapped
// to the kernel and its IR node, device loss reported instead of hanging.
// No Node APIs are used directly (Dawn is loaded by dynamic import), so it is
// inlined into modules that run in browsers too.

import { bindInputs, placeMemory, type BufferSpecRt, type DTypeName, type MemoryItemRt, type ModelSpec, type TensorSpec, type TensorValue } from "./model.ts";
import { CnncRunError } from "./run-context.ts";

export type AdapterClass = "cpu" | "gpu";

/** What an entry needs to know of its model. */
type SpecHead = Pick<ModelSpec, "name" | "symbols" | "inputs">;

// Numeric GPUBufferUsage / GPUMapMode flags, so no globals are needed in Node.
const USAGE = { MAP_READ: 0x1, COPY_SRC: 0x4, COPY_DST: 0x8, UNIFORM: 0x40, STORAGE: 0x80 } as const;
const MAP_READ = 0x1;
const COMPUTE = 0x4; // GPUShaderStage.COMPUTE

export interface GpuPassSpec {
  readonly name: string;
  /** "conv 'c1'": what the kernel implements, for messages. */
  readonly implements: string;
  readonly code: Readonly<Record<AdapterClass, string>>;
  readonly dispatch: Readonly<Record<AdapterClass, readonly ((S: Record<string, number>) => number)[]>>;
  readonly inputs: readonly number[];
  readonly outputs: readonly number[];
  /**
   * Scratch slots t0, t1, ...: elements this pass binds, and the memory plan item (`memory`) holding the slot. The
   * passes of one node (one `group`) share the items, so a pass can read what an earlier one wrote; the arena
   * memory is reused, so it is never zeroed.
   */
  readonly scratch: readonly { readonly size: (S: Record<string, number>) => number; readonly item: number }[];
  readonly group: number;
  readonly usesError: boolean;
  readonly errors: Readonly<Record<number, string>>;
}

export interface GpuEntrySpec {
  readonly inputs: readonly string[];
  readonly outputs: readonly { readonly name: string; readonly buffer: number; readonly spec: TensorSpec }[];
  readonly buffers: readonly BufferSpecRt[];
  /** The memory plan's items (`planned` buffers, scratch slots); placed in arenas per bound shape, a pass binds exactly its value's range. */
  readonly memory?: readonly MemoryItemRt[];
  readonly passes: readonly GpuPassSpec[];
  /** Training entries: new values copied over parameters/state after the passes (in the same submit). */
  readonly updates?: readonly { readonly name: string; readonly buffer: number; readonly state: boolean }[];
}

export interface GpuRunResult {
  readonly outputs: Record<string, TensorValue>;
  /** New host values of updated parameters and buffers (not optimizer state, which stays on the device). */
  readonly updates: Record<string, Float32Array | Int32Array | Uint8Array>;
}

interface GpuLike {
  requestAdapter(o?: GPURequestAdapterOptions): Promise<GPUAdapter | null>;
}

/**
 * Dawn's GPU instance in Node. It must outlive every device made from it: if
 * it is garbage-collected, Dawn tears down under live devices and the process
 * aborts on the next submit. One per process, kept here.
 */
let dawnInstance: GpuLike | undefined;

/** A WebGPU device: the given one, the browser's, or Dawn's in Node. */
export async function acquireDevice(given?: GPUDevice): Promise<{ device: GPUDevice; adapterClass: AdapterClass; owned: boolean }> {
  if (given) return { device: given, adapterClass: classify((given as unknown as { adapterInfo?: GPUAdapterInfo }).adapterInfo), owned: false };
  let gpu: GpuLike | undefined = (globalThis as { navigator?: { gpu?: GpuLike } }).navigator?.gpu;
  if (!gpu) {
    try {
      if (!dawnInstance) {
        const dawn = (await import(/* @vite-ignore */ "webgpu" as string)) as { create(o: string[]): GpuLike };
        dawnInstance = dawn.create([]);
      }
      gpu = dawnInstance;
    } catch (e) {
      throw new CnncRunError(`no WebGPU available: not a browser with navigator.gpu, and the 'webgpu' package could not be loaded (${(e as Error).message}); pass { device } to use your own`);
    }
  }
  const adapter = await gpu.requestAdapter({ powerPreference: "high-performance" });
  if (!adapter) throw new CnncRunError("no WebGPU adapter found (on a machine without a GPU, install Mesa's lavapipe Vulkan driver)");
  const limits = adapter.limits;
  const device = await adapter.requestDevice({
    requiredLimits: { maxStorageBuffersPerShaderStage: limits.maxStorageBuffersPerShaderStage, maxStorageBufferBindingSize: limits.maxStorageBufferBindingSize, maxBufferSize: limits.maxBufferSize },
  });
  return { device, adapterClass: classify(adapter.info), owned: true };
}

/** Software adapters (lavapipe/llvmpipe, SwiftShader) prefer register tiles; real GPUs shared-memory tiles. */
export function classify(info: GPUAdapterInfo | undefined): AdapterClass {
  if (!info) return "gpu";
  const text = `${info.vendor} ${info.architecture} ${info.device} ${info.description}`.toLowerCase();
  return /llvmpipe|lavapipe|swiftshader|software|cpu/.test(text) ? "cpu" : "gpu";
}

/** Every element is 4 bytes on the device (bool as u32); WebGPU refuses empty buffers and vec4 bindings need 16 bytes. */
function bytesOf(n: number): number {
  return Math.max(16, n * 4); // 16: an array<vec4<f32>> binding needs at least one vec4
}

/** Host array → bytes for upload (bool is u32 on the device). */
function toDevice(dtype: DTypeName, data: Float32Array | Int32Array | Uint8Array): ArrayBufferView {
  return dtype === "bool" ? Uint32Array.from(data) : data;
}

function fromDevice(dtype: DTypeName, bytes: ArrayBuffer, n: number): Float32Array | Int32Array | Uint8Array {
  if (dtype === "f32") return new Float32Array(bytes, 0, n).slice();
  if (dtype === "i32") return new Int32Array(bytes, 0, n).slice();
  return Uint8Array.from(new Uint32Array(bytes, 0, n));
}

/** Compile every pass's pipeline asynchronously; errors name the kernel, its IR node and the WGSL line. */
async function compilePipelines(device: GPUDevice, passes: readonly GpuPassSpec[], cls: AdapterClass): Promise<GPUComputePipeline[]> {
  return Promise.all(
    passes.map(async (p) => {
      const code = p.code[cls];
      device.pushErrorScope("validation");
      const module = device.createShaderModule({ code, label: p.name });
      const info = await module.getCompilationInfo();
      const scopeError = await device.popErrorScope();
      const errors = info.messages.filter((m) => m.type === "error");
      if (errors.length || scopeError) {
        const lines = code.split("\n");
        const detail = errors.length
          ? errors.map((m) => `line ${m.lineNum}: ${m.message}\n    ${lines[m.lineNum - 1]?.trim() ?? ""}`).join("\n  ")
          : scopeError!.message;
        throw new CnncRunError(`WGSL kernel ${p.name} (implements ${p.implements}) does not compile:\n  ${detail}`);
      }
      // An explicit layout: every declared binding is bound even when the shader does not use it
      // ("auto" layouts drop unused bindings, and then the bind group would not match).
      const entries: GPUBindGroupLayoutEntry[] = [{ binding: 0, visibility: COMPUTE, buffer: { type: "uniform" } }];
      const add = (type: GPUBufferBindingType) => entries.push({ binding: entries.length, visibility: COMPUTE, buffer: { type } });
      p.inputs.forEach(() => add("read-only-storage"));
      p.outputs.forEach(() => add("storage"));
      p.scratch.forEach(() => add("storage"));
      if (p.usesError) add("storage");
      const layout = device.createPipelineLayout({ bindGroupLayouts: [device.createBindGroupLayout({ entries, label: p.name })], label: p.name });
      try {
        return await device.createComputePipelineAsync({ layout, compute: { module, entryPoint: "main" }, label: p.name });
      } catch (e) {
        throw new CnncRunError(`WGSL kernel ${p.name} (implements ${p.implements}): pipeline creation failed: ${(e as Error).message}`);
      }
    }),
  );
}

interface Bound {
  readonly buffers: GPUBuffer[];
  /** Byte range to bind of each buffer that lives in an arena (undefined: the whole buffer). */
  readonly ranges: ({ offset: number; size: number } | undefined)[];
  readonly arenas: GPUBuffer[];
  readonly uniform: GPUBuffer;
  readonly bindGroups: GPUBindGroup[];
  readonly readback: Map<number, GPUBuffer>;
  readonly dispatch: number[][];
  readonly sizes: number[];
}

export class GpuEntry {
  private readonly cache = new Map<string, Bound>();
  private readonly errBuffer: GPUBuffer;
  private readonly errReadback: GPUBuffer;
  private constructor(
    private readonly device: GPUDevice,
    private readonly spec: SpecHead,
    private readonly entry: GpuEntrySpec,
    private readonly cls: AdapterClass,
    private readonly pipelines: GPUComputePipeline[],
    private readonly params: ReadonlyMap<string, GPUBuffer>,
    private readonly lost: Promise<never>,
  ) {
    // [count, kind, a, b, node id] written by the first report_error of a run.
    this.errBuffer = device.createBuffer({ size: 32, usage: USAGE.STORAGE | USAGE.COPY_SRC | USAGE.COPY_DST });
    this.errReadback = device.createBuffer({ size: 32, usage: USAGE.MAP_READ | USAGE.COPY_DST });
  }

  static async create(device: GPUDevice, spec: SpecHead, entry: GpuEntrySpec, cls: AdapterClass, params: ReadonlyMap<string, GPUBuffer>, lost: Promise<never>): Promise<GpuEntry> {
    return new GpuEntry(device, spec, entry, cls, await compilePipelines(device, entry.passes, cls), params, lost);
  }

  /** Buffers, bind groups and dispatch sizes for one binding of the symbols, created once and reused. */
  private bind(S: Record<string, number>): Bound {
    const key = this.spec.symbols.map((s) => S[s]).join(",");
    const hit = this.cache.get(key);
    if (hit) return hit;
    const d = this.device;
    const sizes = this.entry.buffers.map((b) => b.size(S));
    const layout = placeMemory(this.entry.memory, S);
    const arenas = layout.arenaSizes.map((n) => d.createBuffer({ size: n * 4, usage: USAGE.STORAGE | USAGE.COPY_SRC | USAGE.COPY_DST }));
    const buffers: GPUBuffer[] = [];
    const ranges: ({ offset: number; size: number } | undefined)[] = [];
    this.entry.buffers.forEach((b, i) => {
      const src = b.source;
      if (typeof src === "object" && "alias" in src) {
        buffers[i] = buffers[src.alias]!;
        ranges[i] = ranges[src.alias];
      } else if (typeof src === "object" && "planned" in src) {
        // Items are reserved in whole 256-byte blocks, so bytesOf (at least 16) fits.
        buffers[i] = arenas[layout.arena[src.planned]!]!;
        ranges[i] = { offset: layout.offset[src.planned]! * 4, size: bytesOf(sizes[i]!) };
      } else if (typeof src === "object" && "param" in src) buffers[i] = this.params.get(src.param)!;
      else {
        buffers[i] = d.createBuffer({ size: bytesOf(sizes[i]!), usage: USAGE.STORAGE | USAGE.COPY_SRC | USAGE.COPY_DST });
        if (typeof src === "object" && "const" in src) {
          const data = b.dtype === "f32" ? Float32Array.from(src.const) : b.dtype === "i32" ? Int32Array.from(src.const) : Uint32Array.from(src.const);
          d.queue.writeBuffer(buffers[i]!, 0, data);
        }
      }
    });
    const uniformData = new Uint32Array(Math.max(4, Math.ceil(this.spec.symbols.length / 4) * 4));
    this.spec.symbols.forEach((s, i) => (uniformData[i] = S[s]!));
    const uniform = d.createBuffer({ size: uniformData.byteLength, usage: USAGE.UNIFORM | USAGE.COPY_DST });
    d.queue.writeBuffer(uniform, 0, uniformData);
    const bindGroups = this.entry.passes.map((p, k) => {
      const entries: GPUBindGroupEntry[] = [{ binding: 0, resource: { buffer: uniform } }];
      for (const i of [...p.inputs, ...p.outputs]) entries.push({ binding: entries.length, resource: { buffer: buffers[i]!, ...ranges[i] } });
      // Scratch: the slot's item, like a planned value (the item is as large as the slot's largest use).
      for (const t of p.scratch) entries.push({ binding: entries.length, resource: { buffer: arenas[layout.arena[t.item]!]!, offset: layout.offset[t.item]! * 4, size: bytesOf(t.size(S)) } });
      if (p.usesError) entries.push({ binding: entries.length, resource: { buffer: this.errBuffer } });
      return d.createBindGroup({ layout: this.pipelines[k]!.getBindGroupLayout(0), entries, label: p.name });
    });
    const readback = new Map<number, GPUBuffer>();
    const wanted = [...this.entry.outputs.map((o) => o.buffer), ...(this.entry.updates ?? []).filter((u) => !u.state).map((u) => u.buffer)];
    for (const i of wanted) {
      if (!readback.has(i)) readback.set(i, d.createBuffer({ size: bytesOf(sizes[i]!), usage: USAGE.MAP_READ | USAGE.COPY_DST }));
    }
    const dispatch = this.entry.passes.map((p) => p.dispatch[this.cls].map((f) => f(S)));
    const bound = { buffers, ranges, arenas, uniform, bindGroups, readback, dispatch, sizes };
    if (this.cache.size >= 4) {
      const [oldKey, old] = this.cache.entries().next().value!;
      this.cache.delete(oldKey);
      this.release(old);
    }
    this.cache.set(key, bound);
    return bound;
  }

  private release(b: Bound): void {
    b.buffers.forEach((buf, i) => {
      const src = this.entry.buffers[i]!.source;
      if (!(typeof src === "object" && ("alias" in src || "param" in src || "planned" in src))) buf.destroy();
    });
    b.arenas.forEach((a) => a.destroy());
    b.readback.forEach((r) => r.destroy());
    b.uniform.destroy();
  }

  async run(feeds: Record<string, TensorValue | undefined>): Promise<Record<string, TensorValue>> {
    return (await this.execute(feeds)).outputs;
  }

  /** One submit: inputs and hidden scalars (`scalars`, by buffer index) in, passes, update copies, readback. */
  async execute(feeds: Record<string, TensorValue | undefined>, scalars: ReadonlyMap<number, number> = new Map()): Promise<GpuRunResult> {
    const S = bindInputs(this.spec, this.entry.inputs, feeds);
    const b = this.bind(S);
    const d = this.device;
    this.entry.buffers.forEach((spec, i) => {
      const src = spec.source;
      if (typeof src === "object" && "input" in src) {
        if (scalars.has(i)) d.queue.writeBuffer(b.buffers[i]!, 0, Float32Array.of(scalars.get(i)!));
        else if (!src.input.startsWith("@")) d.queue.writeBuffer(b.buffers[i]!, 0, toDevice(spec.dtype, feeds[src.input]!.data));
      }
    });
    const usesError = this.entry.passes.some((p) => p.usesError);
    if (usesError) d.queue.writeBuffer(this.errBuffer, 0, new Uint32Array(8));
    const encoder = d.createCommandEncoder();
    const pass = encoder.beginComputePass();
    this.entry.passes.forEach((p, k) => {
      const [x, y = 1, z = 1] = b.dispatch[k]!;
      if (x === 0 || y === 0 || z === 0) return;
      pass.setPipeline(this.pipelines[k]!);
      pass.setBindGroup(0, b.bindGroups[k]!);
      pass.dispatchWorkgroups(x, y, z);
    });
    pass.end();
    // The step's new parameter/state values replace the old ones on the device.
    // (Updates written in place are the parameter's own buffer: nothing to copy.)
    for (const u of this.entry.updates ?? []) {
      const target = this.params.get(u.name)!;
      if (b.buffers[u.buffer] !== target) encoder.copyBufferToBuffer(b.buffers[u.buffer]!, 0, target, 0, bytesOf(b.sizes[u.buffer]!));
    }
    for (const [i, rb] of b.readback) encoder.copyBufferToBuffer(b.buffers[i]!, 0, rb, 0, rb.size);
    if (usesError) encoder.copyBufferToBuffer(this.errBuffer, 0, this.errReadback, 0, 32);
    d.pushErrorScope("validation");
    d.queue.submit([encoder.finish()]);
    const submitError = await d.popErrorScope();
    if (submitError) throw new CnncRunError(`${this.spec.name}: WebGPU rejected the run: ${submitError.message}`);
    const maps = [...b.readback.values(), ...(usesError ? [this.errReadback] : [])].map((r) => r.mapAsync(MAP_READ));
    // A lost device never resolves its maps: race them against the loss.
    await Promise.race([Promise.all(maps), this.lost]);
    try {
      if (usesError) {
        const [count, kind, a, pos, node] = new Uint32Array(this.errReadback.getMappedRange().slice(0));
        if (count) {
          // The node that reported it, so its own message is used (kinds are per node).
          const p = this.entry.passes.find((q) => q.usesError && q.group === node && q.errors[kind!] !== undefined);
          const text = (p?.errors[kind!] ?? `error ${kind}`).replace("{a}", String(a! | 0)).replace("{b}", String(pos));
          throw new CnncRunError(`${this.spec.name}: ${p ? `${p.implements}: ` : ""}${text}`);
        }
      }
      const read = (i: number) => fromDevice(this.entry.buffers[i]!.dtype, b.readback.get(i)!.getMappedRange(), b.sizes[i]!);
      const outputs: Record<string, TensorValue> = {};
      for (const o of this.entry.outputs) {
        outputs[o.name] = { data: read(o.buffer), shape: o.spec.shape.map((dim) => (typeof dim === "number" ? dim : typeof dim === "string" ? S[dim]! : dim.eval(S))) };
      }
      const updates: Record<string, Float32Array | Int32Array | Uint8Array> = {};
      for (const u of this.entry.updates ?? []) if (!u.state) updates[u.name] = read(u.buffer);
      return { outputs, updates };
    } finally {
      for (const r of b.readback.values()) r.unmap();
      if (usesError) this.errReadback.unmap();
    }
  }

  dispose(): void {
    for (const b of this.cache.values()) this.release(b);
    this.cache.clear();
    this.errBuffer.destroy();
    this.errReadback.destroy();
  }
}

/** Upload a host array into a new storage buffer (parameters). */
export function uploadBuffer(device: GPUDevice, dtype: DTypeName, data: Float32Array | Int32Array | Uint8Array): GPUBuffer {
  const buf = device.createBuffer({ size: bytesOf(data.length), usage: USAGE.STORAGE | USAGE.COPY_SRC | USAGE.COPY_DST });
  device.queue.writeBuffer(buf, 0, toDevice(dtype, data));
  return buf;
}

/** A promise that rejects with a clear error when the device is lost (and never otherwise). */
export function watchLoss(device: GPUDevice, model: string): Promise<never> {
  const lost = device.lost.then((info) => {
    throw new CnncRunError(`${model}: the WebGPU device was lost (${info.reason}): ${info.message || "no details"}`);
  });
  lost.catch(() => undefined); // handled where it is raced; never an unhandled rejection
  return lost;
}

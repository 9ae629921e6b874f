// Safetensors reading and writing (https://github.com/huggingface/safetensors),
// the tensor file format of `cnnc run` and of compiled modules' weights.
//
// Layout: an 8-byte little-endian u64 N, N bytes of UTF-8 JSON header, then the
// byte buffer. The header maps each tensor name to
// `{"dtype", "shape", "data_offsets": [begin, end]}` (offsets relative to the
// buffer) and may hold `"__metadata__": {string: string}`. The buffer must be
// covered exactly by the tensors: no holes, no overlaps, nothing after the last.
//
// Only plain Uint8Array / DataView / TextEncoder are used, so this module runs
// unchanged in Node and in browsers. Decoding copies every tensor into its own
// freshly allocated (hence aligned) typed array; bytes are copied, never read
// through floats, so NaN payloads survive bit for bit.

export type SafetensorsDType = "F32" | "I32" | "BOOL";

export type SafeTensor =
  | { readonly dtype: "F32"; readonly shape: readonly number[]; readonly data: Float32Array }
  | { readonly dtype: "I32"; readonly shape: readonly number[]; readonly data: Int32Array }
  | { readonly dtype: "BOOL"; readonly shape: readonly number[]; readonly data: Uint8Array };

export const SUPPORTED_DTYPES: readonly SafetensorsDType[] = ["F32", "I32", "BOOL"];

/** The same limit as the reference implementation: larger headers are refused, not parsed. */
export const MAX_HEADER_BYTES = 100_000_000;

const ELEMENT_BYTES: Record<SafetensorsDType, number> = { F32: 4, I32: 4, BOOL: 1 };
/** The reference implementation's dtype order (its enum order), which the writer sorts by, descending. */
const DTYPE_RANK: Record<SafetensorsDType, number> = { BOOL: 0, I32: 1, F32: 2 };
const METADATA_KEY = "__metadata__";

/** Any problem with a safetensors file or with tensors given to the encoder. */
export class SafetensorsError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "SafetensorsError";
  }
}

function fail(message: string): never {
  throw new SafetensorsError(message);
}

const LITTLE_ENDIAN_HOST = new Uint8Array(new Uint32Array([1]).buffer)[0] === 1;

/** Reverse each `width`-byte group in place (only used on big-endian hosts). */
function swapBytes(bytes: Uint8Array, width: number): void {
  if (width === 1) return;
  for (let i = 0; i + width <= bytes.length; i += width) {
    for (let a = i, b = i + width - 1; a < b; a++, b--) {
      const t = bytes[a]!;
      bytes[a] = bytes[b]!;
      bytes[b] = t;
    }
  }
}

function describeShape(shape: readonly number[]): string {
  return `[${shape.join(", ")}]`;
}

function isSupported(dtype: unknown): dtype is SafetensorsDType {
  return typeof dtype === "string" && (SUPPORTED_DTYPES as readonly string[]).includes(dtype);
}

function unsupportedDtype(name: string, dtype: unknown): never {
  return fail(`tensor '${name}' has unsupported dtype ${JSON.stringify(dtype)}; supported dtypes are ${SUPPORTED_DTYPES.join(", ")}`);
}

/** Element count of a checked shape ([] is a scalar: one element). */
function checkedNumel(name: string, shape: unknown): number {
  if (!Array.isArray(shape)) return fail(`tensor '${name}': shape must be a list of sizes, found ${JSON.stringify(shape)}`);
  let n = 1;
  for (const d of shape) {
    if (typeof d !== "number" || !Number.isSafeInteger(d) || d < 0) {
      fail(`tensor '${name}': shape ${JSON.stringify(shape)} has the size ${JSON.stringify(d)}; sizes must be non-negative integers`);
    }
    n *= d;
  }
  if (!Number.isSafeInteger(n)) fail(`tensor '${name}': shape ${JSON.stringify(shape)} has too many elements`);
  return n;
}

// ---------------------------------------------------------------- encoding

/**
 * Serialise tensors (and optional string metadata) to safetensors bytes,
 * byte for byte as the reference implementation writes them: compact JSON
 * with `__metadata__` first, tensors ordered by dtype (F32, then I32, then
 * BOOL: the reference's descending dtype order, which keeps every 4-byte
 * tensor 4-byte aligned in the file) and then by name (UTF-8 byte order).
 * With only F32 tensors this is simply name order.
 */
export function encodeSafetensors(
  tensors: Readonly<Record<string, SafeTensor>>,
  metadata?: Readonly<Record<string, string>>,
): Uint8Array {
  const names = Object.keys(tensors);
  for (const name of names) checkEncodable(name, tensors[name]!);
  const utf8 = new Map(names.map((n) => [n, new TextEncoder().encode(n)]));
  names.sort((a, b) => DTYPE_RANK[tensors[b]!.dtype] - DTYPE_RANK[tensors[a]!.dtype] || compareBytes(utf8.get(a)!, utf8.get(b)!));

  // No prototype, so a tensor named "__proto__" is an ordinary key.
  const header: Record<string, unknown> = Object.create(null);
  if (metadata !== undefined) {
    for (const [k, v] of Object.entries(metadata)) {
      if (typeof v !== "string") fail(`metadata '${k}' must be a string, found ${typeof v}`);
    }
    header[METADATA_KEY] = { ...metadata };
  }
  let offset = 0;
  for (const name of names) {
    const t = tensors[name]!;
    const end = offset + t.data.byteLength;
    header[name] = { dtype: t.dtype, shape: [...t.shape], data_offsets: [offset, end] };
    offset = end;
  }

  const json = new TextEncoder().encode(JSON.stringify(header));
  const headerLength = Math.ceil(json.length / 8) * 8;
  const out = new Uint8Array(8 + headerLength + offset);
  const view = new DataView(out.buffer);
  view.setUint32(0, headerLength, true);
  view.setUint32(4, Math.floor(headerLength / 2 ** 32), true);
  out.set(json, 8);
  out.fill(0x20, 8 + json.length, 8 + headerLength);

  let at = 8 + headerLength;
  for (const name of names) {
    const t = tensors[name]!;
    const src = new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength);
    out.set(src, at);
    if (!LITTLE_ENDIAN_HOST) swapBytes(out.subarray(at, at + src.length), ELEMENT_BYTES[t.dtype]);
    at += src.length;
  }
  return out;
}

function compareBytes(a: Uint8Array, b: Uint8Array): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) if (a[i] !== b[i]) return a[i]! - b[i]!;
  return a.length - b.length;
}

function checkEncodable(name: string, t: SafeTensor): void {
  if (name === METADATA_KEY) fail(`'${METADATA_KEY}' is reserved for metadata and cannot name a tensor`);
  if (name === "") fail("a tensor name must not be empty");
  if (!isSupported(t.dtype)) unsupportedDtype(name, t.dtype);
  const n = checkedNumel(name, t.shape);
  const expected = t.dtype === "F32" ? Float32Array : t.dtype === "I32" ? Int32Array : Uint8Array;
  if (!(t.data instanceof expected)) {
    fail(`tensor '${name}' has dtype ${t.dtype}, so its data must be a ${expected.name}, found ${describeData(t.data)}`);
  }
  if (t.data.length !== n) {
    fail(`tensor '${name}' has shape ${describeShape(t.shape)} (${n} elements) but its data holds ${t.data.length}`);
  }
  if (t.dtype === "BOOL") {
    const i = t.data.findIndex((b) => b > 1);
    if (i >= 0) fail(`tensor '${name}' is BOOL but element ${i} is ${t.data[i]}; BOOL elements must be 0 or 1`);
  }
}

function describeData(data: unknown): string {
  return data !== null && typeof data === "object" ? (data.constructor?.name ?? "an object") : typeof data;
}

// ---------------------------------------------------------------- decoding

/** Tensors and metadata of a safetensors file. */
export interface SafetensorsFile {
  readonly tensors: Record<string, SafeTensor>;
  readonly metadata: Record<string, string>;
}

/** Decode safetensors bytes to tensors by name (see `parseSafetensors` for the metadata too). */
export function decodeSafetensors(bytes: Uint8Array): Record<string, SafeTensor> {
  return parseSafetensors(bytes).tensors;
}

export function parseSafetensors(bytes: Uint8Array): SafetensorsFile {
  if (!(bytes instanceof Uint8Array)) fail(`expected the file's bytes as a Uint8Array, found ${describeData(bytes)}`);
  if (bytes.length < 8) fail(`file is ${bytes.length} bytes long, shorter than the 8-byte header length`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const headerLength = view.getUint32(0, true) + view.getUint32(4, true) * 2 ** 32;
  if (headerLength > MAX_HEADER_BYTES) {
    fail(`header length ${headerLength} is larger than the ${MAX_HEADER_BYTES}-byte limit; this is not a safetensors file or it is corrupt`);
  }
  if (8 + headerLength > bytes.length) {
    fail(`header length ${headerLength} runs past the end of the file (${bytes.length} bytes, ${bytes.length - 8} after the length)`);
  }

  const header = parseHeader(bytes.subarray(8, 8 + headerLength));
  const buffer = bytes.subarray(8 + headerLength);
  const metadata = readMetadata(header[METADATA_KEY]);

  const entries: { name: string; dtype: SafetensorsDType; shape: number[]; begin: number; end: number }[] = [];
  for (const [name, info] of Object.entries(header)) {
    if (name === METADATA_KEY) continue;
    entries.push({ name, ...readEntry(name, info) });
  }
  checkCoverage(entries, buffer.length);

  const tensors: Record<string, SafeTensor> = Object.create(null);
  for (const e of entries) tensors[e.name] = copyTensor(e.name, e.dtype, e.shape, buffer.subarray(e.begin, e.end));
  return { tensors, metadata };
}

function parseHeader(raw: Uint8Array): Record<string, unknown> {
  let text: string;
  try {
    text = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true }).decode(raw);
  } catch {
    return fail("header is not valid UTF-8");
  }
  if (!text.startsWith("{")) fail(`header must be a JSON object starting with '{', found ${JSON.stringify(text.slice(0, 20))}`);
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (e) {
    return fail(`header is not valid JSON: ${(e as Error).message}`);
  }
  if (parsed === null || typeof parsed !== "object" || Array.isArray(parsed)) fail("header must be a JSON object");
  const duplicate = firstDuplicateKey(text);
  if (duplicate !== undefined) fail(`header names '${duplicate}' more than once`);
  return parsed as Record<string, unknown>;
}

/**
 * JSON.parse keeps the last of repeated keys silently; the format forbids
 * repeated tensor names, so scan the (already valid) JSON for repeated keys of
 * the top-level object.
 */
function firstDuplicateKey(json: string): string | undefined {
  const seen = new Set<string>();
  let depth = 0;
  for (let i = 0; i < json.length; i++) {
    const c = json[i];
    if (c === "{" || c === "[") depth++;
    else if (c === "}" || c === "]") depth--;
    else if (c === '"') {
      const start = i;
      for (i++; json[i] !== '"'; i++) if (json[i] === "\\") i++;
      if (depth !== 1) continue;
      let j = i + 1;
      while (json[j] === " " || json[j] === "\t" || json[j] === "\n" || json[j] === "\r") j++;
      if (json[j] !== ":") continue;
      const key = JSON.parse(json.slice(start, i + 1)) as string;
      if (seen.has(key)) return key;
      seen.add(key);
    }
  }
  return undefined;
}

function readMetadata(raw: unknown): Record<string, string> {
  const metadata: Record<string, string> = Object.create(null);
  if (raw === undefined || raw === null) return metadata;
  if (typeof raw !== "object" || Array.isArray(raw)) fail(`'${METADATA_KEY}' must be an object of strings, found ${JSON.stringify(raw)}`);
  for (const [k, v] of Object.entries(raw)) {
    if (typeof v !== "string") fail(`metadata '${k}' must be a string, found ${JSON.stringify(v)}`);
    metadata[k] = v;
  }
  return metadata;
}

function readEntry(name: string, info: unknown): { dtype: SafetensorsDType; shape: number[]; begin: number; end: number } {
  if (info === null || typeof info !== "object" || Array.isArray(info)) fail(`tensor '${name}': entry must be an object, found ${JSON.stringify(info)}`);
  const entry = info as Record<string, unknown>;
  for (const key of ["dtype", "shape", "data_offsets"]) {
    if (!(key in entry)) fail(`tensor '${name}': entry is missing '${key}'`);
  }
  for (const key of Object.keys(entry)) {
    if (key !== "dtype" && key !== "shape" && key !== "data_offsets") fail(`tensor '${name}': unexpected key '${key}' in its entry`);
  }
  if (!isSupported(entry.dtype)) unsupportedDtype(name, entry.dtype);
  const dtype = entry.dtype;
  const n = checkedNumel(name, entry.shape);
  const shape = entry.shape as number[];

  const offsets = entry.data_offsets;
  if (!Array.isArray(offsets) || offsets.length !== 2 || !offsets.every((o) => typeof o === "number" && Number.isSafeInteger(o) && o >= 0)) {
    fail(`tensor '${name}': data_offsets must be two non-negative integers [begin, end], found ${JSON.stringify(offsets)}`);
  }
  const [begin, end] = offsets as [number, number];
  if (end < begin) fail(`tensor '${name}': data_offsets [${begin}, ${end}] end before they begin`);
  const expectedBytes = n * ELEMENT_BYTES[dtype];
  if (end - begin !== expectedBytes) {
    fail(`tensor '${name}': data_offsets [${begin}, ${end}] span ${end - begin} bytes, but ${dtype} ${describeShape(shape)} needs ${expectedBytes}`);
  }
  return { dtype, shape: [...shape], begin, end };
}

/** Tensors must tile the buffer exactly: in offset order each begins where the previous ended. */
function checkCoverage(entries: readonly { name: string; begin: number; end: number }[], bufferLength: number): void {
  const sorted = [...entries].sort((a, b) => a.begin - b.begin || a.end - b.end);
  let cursor = 0;
  let previous: string | undefined;
  for (const e of sorted) {
    if (e.end > bufferLength) {
      fail(`tensor '${e.name}': data_offsets [${e.begin}, ${e.end}] run past the end of the data buffer (${bufferLength} bytes)`);
    }
    if (e.begin < cursor) fail(`tensor '${e.name}': data_offsets [${e.begin}, ${e.end}] overlap tensor '${previous}', which ends at ${cursor}`);
    if (e.begin > cursor) fail(`bytes ${cursor}..${e.begin} of the data buffer belong to no tensor (a hole before tensor '${e.name}')`);
    cursor = e.end;
    if (e.end > e.begin) previous = e.name;
  }
  if (cursor < bufferLength) {
    fail(`${bufferLength - cursor} trailing bytes after the last tensor (the data buffer is ${bufferLength} bytes, tensors cover ${cursor})`);
  }
}

function copyTensor(name: string, dtype: SafetensorsDType, shape: number[], src: Uint8Array): SafeTensor {
  const bytes = new Uint8Array(src); // a copy in a fresh, aligned buffer
  if (!LITTLE_ENDIAN_HOST) swapBytes(bytes, ELEMENT_BYTES[dtype]);
  switch (dtype) {
    case "F32":
      return { dtype, shape, data: new Float32Array(bytes.buffer, 0, bytes.length / 4) };
    case "I32":
      return { dtype, shape, data: new Int32Array(bytes.buffer, 0, bytes.length / 4) };
    case "BOOL": {
      const i = bytes.findIndex((b) => b > 1);
      if (i >= 0) fail(`tensor '${name}' is BOOL but element ${i} is ${bytes[i]}; BOOL elements must be 0 or 1`);
      return { dtype, shape, data: bytes };
    }
  }
}

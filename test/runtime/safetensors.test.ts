import { describe, expect, it } from "vitest";
import {
  decodeSafetensors,
  encodeSafetensors,
  parseSafetensors,
  SafetensorsError,
  type SafeTensor,
} from "../../runtime/safetensors.ts";

const enc = new TextEncoder();

/** Bytes of a file with the given header text (padded to 8 with spaces unless `raw`) and buffer. */
function file(header: string, buffer: ArrayLike<number> = [], opts: { raw?: boolean; length?: number } = {}): Uint8Array {
  let h = enc.encode(header);
  if (!opts.raw) {
    const padded = new Uint8Array(Math.ceil(h.length / 8) * 8).fill(0x20);
    padded.set(h);
    h = padded;
  }
  const out = new Uint8Array(8 + h.length + buffer.length);
  new DataView(out.buffer).setUint32(0, opts.length ?? h.length, true);
  out.set(h, 8);
  out.set(Array.from(buffer), 8 + h.length);
  return out;
}

function f32Bits(values: readonly number[]): Float32Array {
  return new Float32Array(new Uint32Array(values).buffer);
}

function bitsOf(a: Float32Array | Int32Array | Uint8Array): number[] {
  return Array.from(new Uint8Array(a.buffer, a.byteOffset, a.byteLength));
}

function errorOf(f: () => unknown): SafetensorsError {
  try {
    f();
  } catch (e) {
    expect(e).toBeInstanceOf(SafetensorsError);
    return e as SafetensorsError;
  }
  throw new Error("expected a SafetensorsError, none was thrown");
}

const entry = (dtype: string, shape: unknown, offsets: unknown) => ({ dtype, shape, data_offsets: offsets });

describe("safetensors layout", () => {
  // Written out by hand from the format description, so the format is pinned,
  // not merely self-consistent: u64 LE header length 200, compact JSON with
  // metadata first, 6 spaces of padding to a multiple of 8, then the buffer:
  // 4-byte tensors by name (a, b), then the 1-byte BOOL tensor (m).
  const header =
    '{"__metadata__":{"format":"pt"},' +
    '"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},' +
    '"b":{"dtype":"I32","shape":[],"data_offsets":[8,12]},' +
    '"m":{"dtype":"BOOL","shape":[3],"data_offsets":[12,15]}}';
  const expected = new Uint8Array([
    0xc8, 0, 0, 0, 0, 0, 0, 0,
    ...enc.encode(header), 0x20, 0x20, 0x20, 0x20, 0x20, 0x20,
    0x00, 0x00, 0x80, 0x3f, // a[0] = 1.0
    0x00, 0x00, 0x00, 0xc0, // a[1] = -2.0
    0x07, 0x00, 0x00, 0x00, // b = 7
    0x01, 0x00, 0x01, // m
  ]);

  it("encodes a tiny file byte for byte", () => {
    expect(header.length).toBe(194);
    const bytes = encodeSafetensors(
      {
        m: { dtype: "BOOL", shape: [3], data: new Uint8Array([1, 0, 1]) },
        b: { dtype: "I32", shape: [], data: new Int32Array([7]) },
        a: { dtype: "F32", shape: [2], data: new Float32Array([1, -2]) },
      },
      { format: "pt" },
    );
    expect(Array.from(bytes)).toEqual(Array.from(expected));
  });

  it("decodes the hand-written file", () => {
    const { tensors, metadata } = parseSafetensors(expected);
    expect({ ...metadata }).toEqual({ format: "pt" });
    expect(Object.keys(tensors).sort()).toEqual(["a", "b", "m"]);
    expect(tensors.a).toEqual({ dtype: "F32", shape: [2], data: new Float32Array([1, -2]) });
    expect(tensors.b).toEqual({ dtype: "I32", shape: [], data: new Int32Array([7]) });
    expect(tensors.m).toEqual({ dtype: "BOOL", shape: [3], data: new Uint8Array([1, 0, 1]) });
  });

  it("pads the header to a multiple of 8 and writes no metadata when none is given", () => {
    const bytes = encodeSafetensors({});
    expect(Array.from(bytes)).toEqual([8, 0, 0, 0, 0, 0, 0, 0, ...enc.encode("{}      ")]);
    expect(decodeSafetensors(bytes)).toEqual({});
  });

  it("orders tensors as the reference writer does: F32, then I32, then BOOL, each by UTF-8 name", () => {
    const bytes = encodeSafetensors({
      a_mask: { dtype: "BOOL", shape: [1], data: new Uint8Array([1]) },
      a_ids: { dtype: "I32", shape: [1], data: new Int32Array([2]) },
      "\u{1F600}": { dtype: "F32", shape: [1], data: new Float32Array([4]) },
      "\uFF21": { dtype: "F32", shape: [1], data: new Float32Array([5]) },
      b_w: { dtype: "F32", shape: [1], data: new Float32Array([3]) },
    });
    const n = new DataView(bytes.buffer).getUint32(0, true);
    const h = JSON.parse(new TextDecoder().decode(bytes.subarray(8, 8 + n)));
    // U+FF21 (EF BC A1) sorts before U+1F600 (F0 9F 98 80) in UTF-8, though not in UTF-16.
    expect(Object.keys(h)).toEqual(["b_w", "\uFF21", "\u{1F600}", "a_ids", "a_mask"]);
    expect(h.b_w.data_offsets).toEqual([0, 4]);
    expect(h["\uFF21"].data_offsets).toEqual([4, 8]);
    expect(h["\u{1F600}"].data_offsets).toEqual([8, 12]);
    expect(h.a_ids.data_offsets).toEqual([12, 16]);
    expect(h.a_mask.data_offsets).toEqual([16, 17]);
    expect((8 + n) % 8).toBe(0);
  });

  it("matches the reference implementation's own serialisation vectors", () => {
    // A single F32 tensor [1, 2, 3] holding 0..5, header exactly 64 bytes (no padding).
    const header = '{"attn.0":{"dtype":"F32","shape":[1,2,3],"data_offsets":[0,24]}}';
    expect(header.length).toBe(64);
    const bytes = encodeSafetensors({ "attn.0": { dtype: "F32", shape: [1, 2, 3], data: new Float32Array([0, 1, 2, 3, 4, 5]) } });
    expect(Array.from(bytes)).toEqual([
      64, 0, 0, 0, 0, 0, 0, 0, ...enc.encode(header),
      0, 0, 0, 0, 0, 0, 0x80, 0x3f, 0, 0, 0, 0x40, 0, 0, 0x40, 0x40, 0, 0, 0x80, 0x40, 0, 0, 0xa0, 0x40,
    ]);
    // Metadata only: 35 bytes of JSON padded to 40.
    expect(Array.from(encodeSafetensors({}, { framework: "pt" }))).toEqual([
      40, 0, 0, 0, 0, 0, 0, 0, ...enc.encode('{"__metadata__":{"framework":"pt"}}'), 32, 32, 32, 32, 32,
    ]);
  });
});

describe("safetensors round trip", () => {
  it("is bit-exact for NaN payloads, -0, infinities and denormals", () => {
    const data = f32Bits([0x7fc00000, 0x7fa00001, 0xffc12345, 0x80000000, 0x00000001, 0x007fffff, 0x7f800000, 0xff800000, 0x3f800000]);
    const out = decodeSafetensors(encodeSafetensors({ x: { dtype: "F32", shape: [3, 3], data } }));
    const x = out.x!;
    expect(x.dtype).toBe("F32");
    expect(x.shape).toEqual([3, 3]);
    expect(bitsOf(x.data)).toEqual(bitsOf(data));
    expect(Object.is((x.data as Float32Array)[3], -0)).toBe(true);
  });

  it("keeps I32 extremes, BOOL, scalars and empty tensors", () => {
    const tensors: Record<string, SafeTensor> = {
      i: { dtype: "I32", shape: [4], data: new Int32Array([0, -1, 2147483647, -2147483648]) },
      s: { dtype: "F32", shape: [], data: new Float32Array([0.5]) },
      e: { dtype: "F32", shape: [0, 3], data: new Float32Array(0) },
      e2: { dtype: "I32", shape: [2, 0], data: new Int32Array(0) },
      b: { dtype: "BOOL", shape: [2, 2], data: new Uint8Array([1, 0, 0, 1]) },
      ["__proto__"]: { dtype: "F32", shape: [1], data: new Float32Array([9]) },
    };
    const out = decodeSafetensors(encodeSafetensors(tensors, { note: "é ✓" }));
    expect(Object.keys(tensors)).toContain("__proto__");
    expect(Object.keys(out).sort()).toEqual(Object.keys(tensors).sort());
    for (const [name, t] of Object.entries(tensors)) {
      const o = out[name]!;
      expect(o.dtype).toBe(t.dtype);
      expect(o.shape).toEqual(t.shape);
      expect(o.data.constructor).toBe(t.data.constructor);
      expect(bitsOf(o.data)).toEqual(bitsOf(t.data));
    }
    expect(parseSafetensors(encodeSafetensors(tensors, { note: "é ✓" })).metadata.note).toBe("é ✓");
  });

  it("copies from an unaligned input into aligned arrays that do not alias it", () => {
    const bytes = encodeSafetensors({
      a: { dtype: "F32", shape: [2], data: new Float32Array([1.5, 2.5]) },
      m: { dtype: "BOOL", shape: [1], data: new Uint8Array([1]) },
    });
    const shifted = new Uint8Array(bytes.length + 3);
    shifted.set(bytes, 3);
    const view = shifted.subarray(3);
    const out = decodeSafetensors(view);
    expect(Array.from(out.a!.data)).toEqual([1.5, 2.5]);
    expect(out.a!.data.byteOffset % 4).toBe(0);
    shifted.fill(0);
    expect(Array.from(out.a!.data)).toEqual([1.5, 2.5]);
    expect(Array.from(out.m!.data)).toEqual([1]);
  });

  it("reads a header padded with spaces and a subarray of a larger buffer", () => {
    const bytes = file('{"t":{"dtype":"I32","shape":[1],"data_offsets":[0,4]}}', [5, 0, 0, 0]);
    expect(Array.from(decodeSafetensors(bytes).t!.data)).toEqual([5]);
  });
});

describe("safetensors rejects malformed files", () => {
  const t1 = (header: Record<string, unknown>, buffer: ArrayLike<number> = [0, 0, 0, 0]) => file(JSON.stringify(header), buffer);

  it("a file shorter than 8 bytes", () => {
    expect(errorOf(() => decodeSafetensors(new Uint8Array(5))).message).toBe("file is 5 bytes long, shorter than the 8-byte header length");
  });

  it("a header length past the end of the file", () => {
    const bytes = file("{}", [], { length: 64 });
    expect(errorOf(() => decodeSafetensors(bytes)).message).toMatch(/^header length 64 runs past the end of the file \(16 bytes/);
  });

  it("an absurd header length", () => {
    const bytes = new Uint8Array(16);
    new DataView(bytes.buffer).setUint32(4, 1, true); // 2^32
    expect(errorOf(() => decodeSafetensors(bytes)).message).toMatch(/^header length 4294967296 is larger than the 100000000-byte limit/);
  });

  it("a header that is not UTF-8", () => {
    const bytes = file("{}");
    bytes[9] = 0xff;
    expect(errorOf(() => decodeSafetensors(bytes)).message).toBe("header is not valid UTF-8");
  });

  it("a header that is not JSON", () => {
    expect(errorOf(() => decodeSafetensors(file('{"a": '))).message).toMatch(/^header is not valid JSON/);
  });

  it("a header that is not an object", () => {
    expect(errorOf(() => decodeSafetensors(file("[1, 2]"))).message).toMatch(/^header must be a JSON object starting with '\{'/);
  });

  it("an entry that is not an object", () => {
    expect(errorOf(() => decodeSafetensors(t1({ w: 3 }))).message).toBe("tensor 'w': entry must be an object, found 3");
  });

  it.each(["dtype", "shape", "data_offsets"])("an entry missing %s", (key) => {
    const e: Record<string, unknown> = entry("F32", [1], [0, 4]);
    delete e[key];
    expect(errorOf(() => decodeSafetensors(t1({ w: e }))).message).toBe(`tensor 'w': entry is missing '${key}'`);
  });

  it("an entry with an unknown key", () => {
    expect(errorOf(() => decodeSafetensors(t1({ w: { ...entry("F32", [1], [0, 4]), extra: 1 } }))).message).toBe("tensor 'w': unexpected key 'extra' in its entry");
  });

  it.each(["F16", "F64", "I64", "BF16", "U8"])("the unsupported dtype %s, listing the supported ones", (dtype) => {
    expect(errorOf(() => decodeSafetensors(t1({ w: entry(dtype, [1], [0, 4]) }))).message).toBe(
      `tensor 'w' has unsupported dtype "${dtype}"; supported dtypes are F32, I32, BOOL`,
    );
  });

  it("a negative dim", () => {
    expect(errorOf(() => decodeSafetensors(t1({ w: entry("F32", [2, -1], [0, 4]) }))).message).toBe(
      "tensor 'w': shape [2,-1] has the size -1; sizes must be non-negative integers",
    );
  });

  it("a non-integer dim", () => {
    expect(errorOf(() => decodeSafetensors(t1({ w: entry("F32", [1.5], [0, 4]) }))).message).toBe(
      "tensor 'w': shape [1.5] has the size 1.5; sizes must be non-negative integers",
    );
  });

  it("a shape that is not a list", () => {
    expect(errorOf(() => decodeSafetensors(t1({ w: entry("F32", 4, [0, 4]) }))).message).toBe("tensor 'w': shape must be a list of sizes, found 4");
  });

  it("malformed data_offsets", () => {
    expect(errorOf(() => decodeSafetensors(t1({ w: entry("F32", [1], [0]) }))).message).toBe(
      "tensor 'w': data_offsets must be two non-negative integers [begin, end], found [0]",
    );
    expect(errorOf(() => decodeSafetensors(t1({ w: entry("F32", [1], [4, 0]) }))).message).toBe("tensor 'w': data_offsets [4, 0] end before they begin");
  });

  it("data_offsets inconsistent with shape and dtype", () => {
    expect(errorOf(() => decodeSafetensors(t1({ w: entry("F32", [2], [0, 4]) }))).message).toBe(
      "tensor 'w': data_offsets [0, 4] span 4 bytes, but F32 [2] needs 8",
    );
  });

  it("data_offsets past the end of the buffer", () => {
    expect(errorOf(() => decodeSafetensors(t1({ w: entry("F32", [2], [0, 8]) }))).message).toBe(
      "tensor 'w': data_offsets [0, 8] run past the end of the data buffer (4 bytes)",
    );
  });

  it("overlapping tensors", () => {
    const h = { a: entry("F32", [2], [0, 8]), b: entry("F32", [1], [4, 8]) };
    expect(errorOf(() => decodeSafetensors(t1(h, new Array(8).fill(0)))).message).toBe(
      "tensor 'b': data_offsets [4, 8] overlap tensor 'a', which ends at 8",
    );
  });

  it("a hole between tensors", () => {
    const h = { a: entry("F32", [1], [0, 4]), b: entry("F32", [1], [8, 12]) };
    expect(errorOf(() => decodeSafetensors(t1(h, new Array(12).fill(0)))).message).toBe(
      "bytes 4..8 of the data buffer belong to no tensor (a hole before tensor 'b')",
    );
  });

  it("trailing bytes after the last tensor", () => {
    expect(errorOf(() => decodeSafetensors(t1({ w: entry("F32", [1], [0, 4]) }, [0, 0, 0, 0, 9, 9]))).message).toBe(
      "2 trailing bytes after the last tensor (the data buffer is 6 bytes, tensors cover 4)",
    );
  });

  it("BOOL bytes other than 0 and 1", () => {
    expect(errorOf(() => decodeSafetensors(t1({ m: entry("BOOL", [3], [0, 3]) }, [1, 2, 0]))).message).toBe(
      "tensor 'm' is BOOL but element 1 is 2; BOOL elements must be 0 or 1",
    );
  });

  it("duplicate names", () => {
    const header = '{"w":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"w":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}';
    expect(errorOf(() => decodeSafetensors(file(header, [0, 0, 0, 0]))).message).toBe("header names 'w' more than once");
  });

  it("keys repeated only inside entries are not mistaken for duplicates", () => {
    const header = '{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"b\\"a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}';
    expect(Object.keys(decodeSafetensors(file(header, new Array(8).fill(0)))).sort()).toEqual(["a", 'b"a']);
  });

  it("metadata that is not strings", () => {
    expect(errorOf(() => decodeSafetensors(t1({ __metadata__: { epoch: 3 } }, []))).message).toBe("metadata 'epoch' must be a string, found 3");
  });
});

describe("safetensors rejects bad tensors when encoding", () => {
  it("data of the wrong array type", () => {
    const bad = { w: { dtype: "F32", shape: [1], data: new Int32Array(1) } } as unknown as Record<string, SafeTensor>;
    expect(errorOf(() => encodeSafetensors(bad)).message).toBe("tensor 'w' has dtype F32, so its data must be a Float32Array, found Int32Array");
  });

  it("data whose length does not match the shape", () => {
    expect(errorOf(() => encodeSafetensors({ w: { dtype: "F32", shape: [2, 2], data: new Float32Array(3) } })).message).toBe(
      "tensor 'w' has shape [2, 2] (4 elements) but its data holds 3",
    );
  });

  it("unsupported dtypes, bad shapes, BOOL values and reserved names", () => {
    const f16 = { w: { dtype: "F16", shape: [1], data: new Uint8Array(2) } } as unknown as Record<string, SafeTensor>;
    expect(errorOf(() => encodeSafetensors(f16)).message).toBe('tensor \'w\' has unsupported dtype "F16"; supported dtypes are F32, I32, BOOL');
    expect(errorOf(() => encodeSafetensors({ w: { dtype: "F32", shape: [-1], data: new Float32Array(0) } })).message).toMatch(/sizes must be non-negative integers/);
    expect(errorOf(() => encodeSafetensors({ m: { dtype: "BOOL", shape: [2], data: new Uint8Array([0, 255]) } })).message).toBe(
      "tensor 'm' is BOOL but element 1 is 255; BOOL elements must be 0 or 1",
    );
    expect(errorOf(() => encodeSafetensors({ __metadata__: { dtype: "F32", shape: [], data: new Float32Array(1) } })).message).toMatch(/reserved/);
  });
});

import { describe, expect, it } from "vitest";
import type { Value } from "../../compiler/ir/graph.ts";
import { typeToString } from "../../compiler/ir/types.ts";
import { RunError } from "../../compiler/reference/interpreter.ts";
import type { RefTensor } from "../../compiler/reference/tensor.ts";
import { TestModel, diagnosticsOf, expectClose, randomTensor, t, type JsArg } from "../support/build.ts";

// ---------------------------------------------------------------------------
// An independent per-step reference, written gate by gate from the PyTorch docs
// (nn.RNN, nn.LSTM, nn.GRU) and Zhou et al. 2016 (MGU), on plain arrays.

type Vec = number[];
type Mat = number[][];
type Cell = "elman" | "lstm" | "gru" | "mgu";
interface DirParams { wih: Mat; whh: Mat; bih: Vec; bhh: Vec }

const G: Record<Cell, number> = { elman: 1, lstm: 4, gru: 3, mgu: 2 };
const mv = (m: Mat, v: Vec): Vec => m.map((row) => row.reduce((s, w, k) => s + w * v[k]!, 0));
const add = (...vs: Vec[]): Vec => vs[0]!.map((_, i) => vs.reduce((s, v) => s + v[i]!, 0));
const mul = (a: Vec, b: Vec): Vec => a.map((x, i) => x * b[i]!);
const sig = (v: Vec): Vec => v.map((x) => 1 / (1 + Math.exp(-x)));
const tanh = (v: Vec): Vec => v.map(Math.tanh);
const oneMinus = (v: Vec): Vec => v.map((x) => 1 - x);

function toMat(tensor: RefTensor): Mat {
  const [r, c] = tensor.shape as [number, number];
  return Array.from({ length: r }, (_, i) => Array.from(tensor.data.subarray(i * c, (i + 1) * c)));
}

/** Gate k's blocks: W_i·, W_h·, b_i·, b_h· (rows k·H .. (k+1)·H). */
function gate(p: DirParams, k: number, H: number) {
  return { Wi: p.wih.slice(k * H, (k + 1) * H), Wh: p.whh.slice(k * H, (k + 1) * H), bi: p.bih.slice(k * H, (k + 1) * H), bh: p.bhh.slice(k * H, (k + 1) * H) };
}

function refStep(cell: Cell, act: "tanh" | "relu", p: DirParams, H: number, x: Vec, h: Vec, c: Vec): [Vec, Vec] {
  switch (cell) {
    case "elman": {
      const pre = add(mv(p.wih, x), p.bih, mv(p.whh, h), p.bhh);
      return [act === "tanh" ? tanh(pre) : pre.map((v) => Math.max(0, v)), c];
    }
    case "lstm": {
      const [I, F, Gg, O] = [0, 1, 2, 3].map((k) => gate(p, k, H));
      const i = sig(add(mv(I!.Wi, x), I!.bi, mv(I!.Wh, h), I!.bh));
      const f = sig(add(mv(F!.Wi, x), F!.bi, mv(F!.Wh, h), F!.bh));
      const g = tanh(add(mv(Gg!.Wi, x), Gg!.bi, mv(Gg!.Wh, h), Gg!.bh));
      const o = sig(add(mv(O!.Wi, x), O!.bi, mv(O!.Wh, h), O!.bh));
      const c2 = add(mul(f, c), mul(i, g));
      return [mul(o, tanh(c2)), c2];
    }
    case "gru": {
      const [R, Z, Nn] = [0, 1, 2].map((k) => gate(p, k, H));
      const r = sig(add(mv(R!.Wi, x), R!.bi, mv(R!.Wh, h), R!.bh));
      const z = sig(add(mv(Z!.Wi, x), Z!.bi, mv(Z!.Wh, h), Z!.bh));
      const n = tanh(add(mv(Nn!.Wi, x), Nn!.bi, mul(r, add(mv(Nn!.Wh, h), Nn!.bh))));
      return [add(mul(oneMinus(z), n), mul(z, h)), c];
    }
    case "mgu": {
      const [F, Nn] = [0, 1].map((k) => gate(p, k, H));
      const f = sig(add(mv(F!.Wi, x), F!.bi, mv(F!.Wh, h), F!.bh));
      const n = tanh(add(mv(Nn!.Wi, x), Nn!.bi, mv(Nn!.Wh, mul(f, h)), Nn!.bh));
      return [add(mul(oneMinus(f), h), mul(f, n)), c];
    }
  }
}

interface RefConfig {
  cell: Cell;
  act?: "tanh" | "relu";
  direction: "forward" | "backward" | "bidirectional";
  H: number;
  ret: "sequence" | "last";
}

/** The expected rnn output: every sequence run separately, reversed for the backward direction. */
function refRnn(cfg: RefConfig, x: RefTensor, dirs: DirParams[], lengths?: number[], h0?: RefTensor, c0?: RefTensor): number[] {
  const [N, L, D] = x.shape as [number, number, number];
  const { H } = cfg;
  const nd = dirs.length;
  const seq = Array.from({ length: N }, () => Array.from({ length: L }, () => new Array<number>(nd * H).fill(0)));
  const last = Array.from({ length: N }, () => new Array<number>(nd * H).fill(0));
  for (let n = 0; n < N; n++) {
    const len = lengths ? lengths[n]! : L;
    const xs = Array.from({ length: len }, (_, t) => Array.from(x.data.subarray((n * L + t) * D, (n * L + t + 1) * D)));
    dirs.forEach((p, d) => {
      const reverse = cfg.direction === "backward" || d === 1;
      const start = (s?: RefTensor) => (s ? Array.from(s.data.subarray((d * N + n) * H, (d * N + n + 1) * H)) : new Array<number>(H).fill(0));
      let h = start(h0);
      let c = start(c0);
      const order = xs.map((_, t) => t);
      if (reverse) order.reverse();
      for (const t of order) {
        [h, c] = refStep(cfg.cell, cfg.act ?? "tanh", p, H, xs[t]!, h, c);
        seq[n]![t]!.splice(d * H, H, ...h);
      }
      last[n]!.splice(d * H, H, ...h);
    });
  }
  return cfg.ret === "sequence" ? seq.flat(2) : last.flat();
}

// ---------------------------------------------------------------------------
// Building models

interface Built {
  m: TestModel;
  y: Value;
  params: Record<string, RefTensor>;
  dirs: DirParams[];
}

/** rnn over x f32[N, L, D] (symbolic N, L) with random weights named lm.*. */
function build(D: number, keywords: Record<string, JsArg>, extraInputs: (m: TestModel) => Record<string, JsArg> = () => ({})): Built {
  const m = new TestModel();
  const x = m.input("x", "f32", ["N", "L", D]);
  const y = m.call("rnn", [x], { ...keywords, ...extraInputs(m) }, "lm");
  m.output("y", y);
  const params: Record<string, RefTensor> = {};
  let seed = 11;
  for (const [name, p] of m.graph.params) params[name] = randomTensor(p.value.type.shape.map((d) => d.constValue()!), seed++, -0.8, 0.8);
  const names = keywords.direction === "bidirectional" ? ["", "_reverse"] : [""];
  const zeros = (n: number) => new Array<number>(n).fill(0);
  const dirs = names.map((s) => {
    // A tied weight is not a param here; the test fills it in.
    const mat = (name: string) => (params[name] ? toMat(params[name]) : []);
    const wih = mat(`lm.weight_ih${s}`);
    const rows = GATES_OF(keywords) * (keywords.hidden as number);
    return {
      wih,
      whh: mat(`lm.weight_hh${s}`),
      bih: params[`lm.bias_ih${s}`] ? Array.from(params[`lm.bias_ih${s}`]!.data) : zeros(rows),
      bhh: params[`lm.bias_hh${s}`] ? Array.from(params[`lm.bias_hh${s}`]!.data) : zeros(rows),
    };
  });
  return { m, y, params, dirs };
}

const GATES_OF = (keywords: Record<string, JsArg>) => G[(keywords.cell as Cell | undefined) ?? "elman"];

const scalarParams = (wih: number, whh: number, bih: number, bhh: number) => ({
  "lm.weight_ih": t([wih], [1, 1]),
  "lm.weight_hh": t([whh], [1, 1]),
  "lm.bias_ih": t([bih], [1]),
  "lm.bias_hh": t([bhh], [1]),
});

// ---------------------------------------------------------------------------

describe("rnn: hand-worked elman", () => {
  // H = D = 1, relu, W_ih = 2, W_hh = 0.5, b_ih = 1, b_hh = -1 (the biases cancel), x = [1, 2, 3].
  const p = scalarParams(2, 0.5, 1, -1);
  const x = t([1, 2, 3], [1, 3, 1]);

  it("forward: h_t = relu(2 x_t + 1 + 0.5 h_{t-1} - 1)", () => {
    const { m, y } = build(1, { hidden: 1, activation: "relu" });
    expect(typeToString(y.type)).toBe("f32[N, L, 1]");
    // h1 = relu(2 + 0) = 2; h2 = relu(4 + 1) = 5; h3 = relu(6 + 2.5) = 8.5
    expectClose(m.run({ x }, p).outputs.y!.data, [2, 5, 8.5]);
  });

  it("backward: runs from the last position to the first", () => {
    const { m } = build(1, { hidden: 1, activation: "relu", direction: "backward" });
    // t=2: relu(6) = 6; t=1: relu(4 + 3) = 7; t=0: relu(2 + 3.5) = 5.5
    expectClose(m.run({ x }, p).outputs.y!.data, [5.5, 7, 6]);
  });

  it("h0 starts the recurrence", () => {
    const { m } = build(1, { hidden: 1, activation: "relu" }, (mm) => ({ h0: mm.input("h0", "f32", [1, "N", 1]) }));
    // h1 = relu(2 + 0.5·1) = 2.5; h2 = relu(4 + 1.25) = 5.25; h3 = relu(6 + 2.625) = 8.625
    expectClose(m.run({ x, h0: t([1], [1, 1, 1]) }, p).outputs.y!.data, [2.5, 5.25, 8.625]);
  });

  it("H = 2, tanh, bias=false: W_ih = [1, -1]ᵀ, W_hh swaps the two units", () => {
    const { m } = build(1, { hidden: 2, bias: false });
    expect([...m.graph.params.keys()]).toEqual(["lm.weight_ih", "lm.weight_hh"]);
    const r = m.run({ x: t([0.5, 0.25], [1, 2, 1]) }, { "lm.weight_ih": t([1, -1], [2, 1]), "lm.weight_hh": t([0, 1, 1, 0], [2, 2]) });
    // h1 = tanh([0.5, -0.5]) = [a, -a]; h2 = tanh([0.25 - a, -0.25 + a])
    const a = Math.tanh(0.5);
    expectClose(r.outputs.y!.data, [a, -a, Math.tanh(0.25 - a), Math.tanh(a - 0.25)]);
  });

  it("ragged lengths: zeros past the length, backward starts at ℓ - 1, last is each sequence's own", () => {
    const xs = t([1, 2, 3, 1, 2, 3, 1, 2, 3], [3, 3, 1]);
    const lengths = t([3, 2, 0], [3], "i32");
    const seqModel = (direction: string, ret: string) =>
      build(1, { hidden: 1, activation: "relu", direction, return: ret }, (mm) => ({ lengths: mm.input("len", "i32", ["N"]) })).m;
    // The reverse direction gets the same weights, so both directions follow the hand-worked rule.
    const reverse = Object.fromEntries(Object.entries(p).map(([k, v]) => [`${k}_reverse`, v]));
    const run = (direction: string, ret: string) => seqModel(direction, ret).run({ x: xs, len: lengths }, { ...p, ...reverse }).outputs.y!.data;
    // forward, ℓ = 2: [2, 5, 0]; backward, ℓ = 2: t=1: relu(4 + 0) = 4, t=0: relu(2 + 2) = 4 → [4, 4, 0]
    expectClose(run("forward", "sequence"), [2, 5, 8.5, 2, 5, 0, 0, 0, 0]);
    expectClose(run("backward", "sequence"), [5.5, 7, 6, 4, 4, 0, 0, 0, 0]);
    expectClose(run("forward", "last"), [8.5, 5, 0]);
    expectClose(run("backward", "last"), [5.5, 4, 0]);
    // bidirectional last: [forward last, backward last] per sequence
    expectClose(run("bidirectional", "last"), [8.5, 5.5, 5, 4, 0, 0]);
  });
});

describe("rnn: each cell against a per-step reference", () => {
  const cases: [Cell, "tanh" | "relu"][] = [["elman", "tanh"], ["elman", "relu"], ["lstm", "tanh"], ["gru", "tanh"], ["mgu", "tanh"]];
  for (const [cell, act] of cases) {
    for (const direction of ["forward", "backward", "bidirectional"] as const) {
      for (const ret of ["sequence", "last"] as const) {
        it(`${cell}${cell === "elman" ? `/${act}` : ""} ${direction} ${ret}`, () => {
          const H = 3;
          const kw: Record<string, JsArg> = { hidden: H, cell, direction, return: ret };
          if (cell === "elman") kw.activation = act;
          const { m, y, params, dirs } = build(2, kw);
          const nd = direction === "bidirectional" ? 2 : 1;
          expect(typeToString(y.type)).toBe(ret === "sequence" ? `f32[N, L, ${H * nd}]` : `f32[N, ${H * nd}]`);
          const x = randomTensor([2, 4, 2], 7, -1.5, 1.5);
          const got = m.run({ x }, params).outputs.y!;
          expect(got.shape).toEqual(ret === "sequence" ? [2, 4, H * nd] : [2, H * nd]);
          expectClose(got.data, refRnn({ cell, act, direction, H, ret }, x, dirs), 1e-12);
        });
      }
    }
  }
});

describe("rnn: directions, lengths and initial states", () => {
  it("bidirectional concatenates forward then backward on the last axis", () => {
    const { m, params } = build(2, { hidden: 2, cell: "gru", direction: "bidirectional" });
    const fwd = build(2, { hidden: 2, cell: "gru" }).m;
    const bwd = build(2, { hidden: 2, cell: "gru", direction: "backward" }).m;
    const x = randomTensor([1, 3, 2], 3);
    const both = m.run({ x }, params).outputs.y!;
    const f = fwd.run({ x }, { "lm.weight_ih": params["lm.weight_ih"]!, "lm.weight_hh": params["lm.weight_hh"]!, "lm.bias_ih": params["lm.bias_ih"]!, "lm.bias_hh": params["lm.bias_hh"]! }).outputs.y!;
    const b = bwd.run({ x }, { "lm.weight_ih": params["lm.weight_ih_reverse"]!, "lm.weight_hh": params["lm.weight_hh_reverse"]!, "lm.bias_ih": params["lm.bias_ih_reverse"]!, "lm.bias_hh": params["lm.bias_hh_reverse"]! }).outputs.y!;
    const expected: number[] = [];
    for (let t0 = 0; t0 < 3; t0++) expected.push(...f.data.subarray(t0 * 2, t0 * 2 + 2), ...b.data.subarray(t0 * 2, t0 * 2 + 2));
    expectClose(both.data, expected, 1e-12);
  });

  for (const cell of ["elman", "lstm", "gru", "mgu"] as const) {
    it(`${cell}: ragged lengths in a bidirectional batch, sequence and last`, () => {
      const lengths = [4, 2, 0, 1];
      for (const ret of ["sequence", "last"] as const) {
        const { m, params, dirs } = build(3, { hidden: 2, cell, direction: "bidirectional", return: ret }, (mm) => ({ lengths: mm.input("len", "i32", ["N"]) }));
        const x = randomTensor([4, 4, 3], 5);
        const got = m.run({ x, len: t(lengths, [4], "i32") }, params).outputs.y!;
        expectClose(got.data, refRnn({ cell, direction: "bidirectional", H: 2, ret }, x, dirs, lengths), 1e-12);
        if (ret === "sequence") {
          // sequence 1 (ℓ = 2): positions 2 and 3 are exactly zero in both directions
          expect(Array.from(got.data.subarray(1 * 16 + 2 * 4, 2 * 16))).toEqual(new Array(8).fill(0));
          // sequence 2 (ℓ = 0): all zeros
          expect(Array.from(got.data.subarray(2 * 16, 3 * 16))).toEqual(new Array(16).fill(0));
        }
      }
    });
  }

  it("lstm with h0 and c0 in both directions", () => {
    const { m, params, dirs } = build(2, { hidden: 3, cell: "lstm", direction: "bidirectional" }, (mm) => ({
      h0: mm.input("h0", "f32", [2, "N", 3]),
      c0: mm.input("c0", "f32", [2, "N", 3]),
    }));
    const x = randomTensor([2, 3, 2], 9);
    const h0 = randomTensor([2, 2, 3], 21);
    const c0 = randomTensor([2, 2, 3], 22);
    const got = m.run({ x, h0, c0 }, params).outputs.y!;
    expectClose(got.data, refRnn({ cell: "lstm", direction: "bidirectional", H: 3, ret: "sequence" }, x, dirs, undefined, h0, c0), 1e-12);
    // c0 matters: the same run with zero c0 differs
    const zeroC = m.run({ x, h0, c0: randomTensor([2, 2, 3], 22, 0, 0) }, params).outputs.y!;
    expect(Math.abs(zeroC.data[0]! - got.data[0]!)).toBeGreaterThan(1e-6);
  });

  it("length 0 returns h0 as the last state", () => {
    const { m, params } = build(2, { hidden: 2, cell: "gru", direction: "bidirectional", return: "last" }, (mm) => ({
      lengths: mm.input("len", "i32", ["N"]),
      h0: mm.input("h0", "f32", [2, "N", 2]),
    }));
    const h0 = t([1, 2, 3, 4, 5, 6, 7, 8], [2, 2, 2]);
    const got = m.run({ x: randomTensor([2, 3, 2], 4), len: t([0, 3], [2], "i32"), h0 }, params).outputs.y!;
    // sequence 0: forward h0[0, 0] = [1, 2], backward h0[1, 0] = [5, 6]
    expectClose(got.data.subarray(0, 4), [1, 2, 5, 6]);
  });

  it("symbolic N and L: one graph serves several sizes", () => {
    const { m, y, params, dirs } = build(2, { hidden: 2, cell: "mgu", direction: "bidirectional" });
    expect(typeToString(y.type)).toBe("f32[N, L, 4]");
    for (const [n, l] of [[1, 1], [3, 5]] as const) {
      const x = randomTensor([n, l, 2], n * 10 + l);
      const got = m.run({ x }, params);
      expect(got.outputs.y!.shape).toEqual([n, l, 4]);
      expect(got.symbols.get("L")).toBe(l);
      expectClose(got.outputs.y!.data, refRnn({ cell: "mgu", direction: "bidirectional", H: 2, ret: "sequence" }, x, dirs), 1e-12);
    }
  });
});

describe("rnn: parameters", () => {
  it("creates PyTorch-shaped, PyTorch-initialised parameters named under the layer", () => {
    const { m } = build(5, { hidden: 4, cell: "lstm", direction: "bidirectional" });
    const shapes = [...m.graph.params.values()].map((p) => `${p.name} ${typeToString(p.value.type)}`);
    expect(shapes).toEqual([
      "lm.weight_ih f32[16, 5]",
      "lm.weight_hh f32[16, 4]",
      "lm.bias_ih f32[16]",
      "lm.bias_hh f32[16]",
      "lm.weight_ih_reverse f32[16, 5]",
      "lm.weight_hh_reverse f32[16, 4]",
      "lm.bias_ih_reverse f32[16]",
      "lm.bias_hh_reverse f32[16]",
    ]);
    for (const p of m.graph.params.values()) expect(p.init).toEqual({ kind: "uniform", lo: -0.5, hi: 0.5 });
    const node = m.graph.nodes.find((n) => n.op === "rnn")!;
    expect(node.attrs).toEqual({ cell: "lstm", activation: "tanh", direction: "bidirectional", hidden: 4, returnMode: "sequence", hasBias: true, hasLengths: false, hasH0: false, hasC0: false });
  });

  it("gate counts: gru has 3H rows, mgu 2H, elman H", () => {
    for (const [cell, rows] of [["gru", 9], ["mgu", 6], ["elman", 3]] as const) {
      const { m } = build(2, { hidden: 3, cell });
      expect(typeToString(m.graph.params.get("lm.weight_ih")!.value.type)).toBe(`f32[${rows}, 2]`);
    }
  });

  it("uses existing tensors given as weight_ih= and weight_hh_reverse= (tied weights)", () => {
    const { m, params, dirs } = build(2, { hidden: 2, cell: "gru", direction: "bidirectional" }, (mm) => ({
      weight_ih: mm.input("wih", "f32", [6, 2]),
      weight_hh_reverse: mm.input("whr", "f32", [6, 2]),
    }));
    expect(m.graph.params.has("lm.weight_ih")).toBe(false);
    expect(m.graph.params.has("lm.weight_hh_reverse")).toBe(false);
    expect(m.graph.params.has("lm.weight_hh")).toBe(true);
    const wih = randomTensor([6, 2], 31);
    const whr = randomTensor([6, 2], 32);
    dirs[0]!.wih = toMat(wih);
    dirs[1]!.whh = toMat(whr);
    const x = randomTensor([2, 3, 2], 33);
    const got = m.run({ x, wih, whr }, params).outputs.y!;
    expectClose(got.data, refRnn({ cell: "gru", direction: "bidirectional", H: 2, ret: "sequence" }, x, dirs), 1e-12);
  });
});

describe("rnn: diagnostics", () => {
  function fails(D: number | string, keywords: Record<string, JsArg>, extra: (m: TestModel) => Record<string, JsArg> = () => ({}), xType: [string, (number | string)[]] = ["f32", ["N", "L", D]]) {
    const m = new TestModel();
    const x = m.input("x", xType[0] as "f32", xType[1]);
    const ds = diagnosticsOf(() => m.call("rnn", [x], { ...keywords, ...extra(m) }, "lm"));
    expect(ds).toHaveLength(1);
    return ds[0]!;
  }

  it("E210: x of the wrong rank", () => {
    const d = fails(0, { hidden: 2 }, undefined, ["f32", ["L", 3]]);
    expect(d.code).toBe("E210");
    expect(d.message).toBe("rnn 'lm': x must have rank 3 [N, L, D] (batch, time, features), found f32[L, 3]");
    expect(d.notes).toEqual(["x is f32[L, 3]"]);
  });

  it("E213: x not f32", () => {
    const d = fails(0, { hidden: 2 }, undefined, ["i32", ["N", "L", 3]]);
    expect(d.code).toBe("E213");
    expect(d.message).toBe("rnn 'lm': x must be f32, found i32[N, L, 3]");
  });

  it("E212: a symbolic feature size", () => {
    const d = fails("D", { hidden: 2 });
    expect(d.code).toBe("E212");
    expect(d.message).toBe("rnn 'lm': the feature size D of x (dim 2) must be static because it sizes weight_ih, found D");
  });

  it("E404: bad hidden, cell, direction, return", () => {
    expect(fails(3, { hidden: 0 }).message).toBe("rnn 'lm': argument 'hidden' must be a positive integer, found 0");
    const cell = fails(3, { hidden: 2, cell: "rnn_tanh" });
    expect(cell.code).toBe("E404");
    expect(cell.message).toBe(`rnn 'lm': argument 'cell' must be one of "elman", "lstm", "gru", "mgu", found "rnn_tanh"`);
    expect(fails(3, { hidden: 2, direction: "both" }).code).toBe("E404");
    expect(fails(3, { hidden: 2, return: "all" }).code).toBe("E404");
    expect(fails(3, { hidden: 2, activation: "sigmoid" }).code).toBe("E404");
  });

  it("E404: activation with a gated cell", () => {
    const d = fails(3, { hidden: 2, cell: "lstm", activation: "relu" });
    expect(d.code).toBe("E404");
    expect(d.message).toBe(`rnn 'lm': activation applies only to cell="elman", found cell="lstm"`);
  });

  it("E404: c0 for a cell other than lstm", () => {
    const d = fails(3, { hidden: 2, cell: "gru" }, (m) => ({ c0: m.input("c0", "f32", [1, "N", 2]) }));
    expect(d.code).toBe("E404");
    expect(d.message).toBe(`rnn 'lm': c0 is the initial cell state of cell="lstm", found cell="gru"`);
  });

  it("E404: a bias tensor with bias=false, a reverse tensor without bidirectional", () => {
    const b = fails(3, { hidden: 2, bias: false }, (m) => ({ bias_ih: m.input("b", "f32", [2]) }));
    expect(b.code).toBe("E404");
    expect(b.message).toBe("rnn 'lm': bias_ih= is given but bias=false drops the biases");
    const r = fails(3, { hidden: 2, direction: "backward" }, (m) => ({ weight_ih_reverse: m.input("w", "f32", [2, 3]) }));
    expect(r.code).toBe("E404");
    expect(r.message).toBe(`rnn 'lm': weight_ih_reverse= is only used with direction="bidirectional", found direction="backward"`);
  });

  it("E216: a tied weight of the wrong shape", () => {
    const d = fails(3, { hidden: 2, cell: "lstm" }, (m) => ({ weight_hh: m.input("w", "f32", [8, 3]) }));
    expect(d.code).toBe("E216");
    expect(d.message).toBe("rnn 'lm': tensor passed as weight_hh= must be f32[8, 2], found f32[8, 3]");
  });

  it("E213 / E210 / E202: lengths of the wrong dtype, rank or batch", () => {
    const dt = fails(3, { hidden: 2 }, (m) => ({ lengths: m.input("len", "f32", ["N"]) }));
    expect(dt.code).toBe("E213");
    expect(dt.message).toBe("rnn 'lm': lengths must be i32, found f32[N]");
    expect(dt.notes).toEqual(["len is f32[N]"]);
    const rk = fails(3, { hidden: 2 }, (m) => ({ lengths: m.input("len", "i32", ["N", 1]) }));
    expect(rk.code).toBe("E210");
    expect(rk.message).toBe("rnn 'lm': lengths must have rank 1 [N] (one length per sequence), found i32[N, 1]");
    const m = new TestModel();
    const x = m.input("x", "f32", [2, "L", 3]);
    const len = m.input("len", "i32", [3]);
    const [bt] = diagnosticsOf(() => m.call("rnn", [x], { hidden: 2, lengths: len }, "lm"));
    expect(bt!.code).toBe("E202");
    expect(bt!.message).toBe("rnn 'lm': lengths has 3 entries but x has a batch of 2 sequences");
  });

  it("E213 / E210 / E202: h0 or c0 of the wrong dtype, rank or shape", () => {
    const dt = fails(3, { hidden: 2 }, (m) => ({ h0: m.input("h0", "i32", [1, "N", 2]) }));
    expect(dt.code).toBe("E213");
    expect(dt.message).toBe("rnn 'lm': h0 must be f32, found i32[1, N, 2]");
    const rk = fails(3, { hidden: 2 }, (m) => ({ h0: m.input("h0", "f32", ["N", 2]) }));
    expect(rk.code).toBe("E210");
    expect(rk.message).toBe("rnn 'lm': h0 must have rank 3 [1, N, 2] (directions, batch, hidden), found f32[N, 2]");
    const dirs = fails(3, { hidden: 2, direction: "bidirectional" }, (m) => ({ h0: m.input("h0", "f32", [1, "N", 2]) }));
    expect(dirs.code).toBe("E202");
    expect(dirs.message).toBe("rnn 'lm': h0 must be [2, N, 2] (directions, batch, hidden), found f32[1, N, 2]");
    const hid = fails(3, { hidden: 2, cell: "lstm" }, (m) => ({ c0: m.input("c0", "f32", [1, "N", 4]) }));
    expect(hid.code).toBe("E202");
    expect(hid.message).toBe("rnn 'lm': c0 must be [1, N, 2] (directions, batch, hidden), found f32[1, N, 4]");
  });

  it("runtime: a length outside [0, L]", () => {
    const { m, params } = build(1, { hidden: 1 }, (mm) => ({ lengths: mm.input("len", "i32", ["N"]) }));
    const x = randomTensor([2, 3, 1], 1);
    expect(() => m.run({ x, len: t([3, 4], [2], "i32") }, params)).toThrow(RunError);
    expect(() => m.run({ x, len: t([3, 4], [2], "i32") }, params)).toThrow("length 4 of sequence 1 is outside [0, 3]");
    expect(() => m.run({ x, len: t([-1, 2], [2], "i32") }, params)).toThrow("length -1 of sequence 0 is outside [0, 3]");
  });

  it("runtime: a lengths batch bound to another symbol that disagrees", () => {
    const m = new TestModel();
    const x = m.input("x", "f32", ["N", "L", 1]);
    const len = m.input("len", "i32", ["M"]);
    const y = m.call("rnn", [x], { hidden: 1, lengths: len }, "lm");
    m.output("y", y);
    const run = () => m.run({ x: randomTensor([2, 3, 1], 1), len: t([1, 2, 3], [3], "i32") });
    expect(run).toThrow(RunError);
    expect(run).toThrow("lengths has 3 entries but x has a batch of 2 sequences");
  });
});

// Placement of a compiled entry's intermediate tensors in shared arenas, per
// bound shape (compiler/passes/memory.ts computes what is placed; this runs
// at run time, when the sizes are known, in both targets' runtimes and in
// `cnnc ir --stats`). Pure and dependency-free: it is inlined into modules.
//
// Each item is a region some values occupy for the schedule steps
// [def, last]; two items whose step ranges intersect never overlap in memory.
// `avoid` lists items that must live in another arena: on WebGPU one buffer
// cannot be bound both read-only (a kernel's input) and writable (its output)
// in one dispatch, so a node's inputs and outputs go to different arenas.
// Greedy: items in a given order each take the lowest free offset, in the
// arena it grows least; a new arena only when every arena holds something the
// item must avoid. Several deterministic orders are tried — largest first,
// most constrained first, largest size × lifetime first, schedule order, and
// (for up to JITTER_LIMIT items) largest first with sizes jittered by a fixed
// pseudo-random stream — and the layout with the fewest bytes is kept. Offsets
// are multiples of ARENA_ALIGN elements (256 bytes: WebGPU's minimum
// storage-binding offset alignment).

export const ARENA_ALIGN = 64;
const JITTER_LIMIT = 400;
const JITTER_ROUNDS = 24;

export interface ArenaItem {
  /** Elements (4 bytes each on WebGPU; the JS runtime views its arenas as any typed array). */
  readonly size: number;
  readonly def: number;
  readonly last: number;
  readonly avoid: readonly number[];
}

export interface ArenaLayout {
  /** Arena and element offset of each item. */
  readonly arena: number[];
  readonly offset: number[];
  /** Elements of each arena. */
  readonly arenaSizes: number[];
}

export function planArenas(items: readonly ArenaItem[]): ArenaLayout {
  const reserve = items.map((it) => Math.ceil(Math.max(it.size, 1) / ARENA_ALIGN) * ARENA_ALIGN);
  const span = (i: number) => items[i]!.last - items[i]!.def + 1;
  const keys: ((a: number, b: number) => number)[] = [
    (a, b) => reserve[b]! - reserve[a]!,
    (a, b) => items[b]!.avoid.length - items[a]!.avoid.length || reserve[b]! - reserve[a]!,
    (a, b) => reserve[b]! * span(b) - reserve[a]! * span(a),
    (a, b) => items[a]!.def - items[b]!.def,
  ];
  if (items.length <= JITTER_LIMIT) {
    let seed = 12345;
    for (let r = 0; r < JITTER_ROUNDS; r++) {
      const jittered = reserve.map((n) => n * (0.5 + (seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) / 4294967296));
      keys.push((a, b) => jittered[b]! - jittered[a]!);
    }
  }
  let best: ArenaLayout | undefined;
  let bestTotal = Infinity;
  for (const key of keys) {
    const order = [...items.keys()].sort((a, b) => key(a, b) || items[a]!.def - items[b]!.def || a - b);
    const layout = placeInOrder(items, reserve, order);
    const total = layout.arenaSizes.reduce((p, n) => p + n, 0);
    if (total < bestTotal) {
      best = layout;
      bestTotal = total;
    }
  }
  return best ?? { arena: [], offset: [], arenaSizes: [] };
}

function placeInOrder(items: readonly ArenaItem[], reserve: readonly number[], order: readonly number[]): ArenaLayout {
  const n = items.length;
  const arena: number[] = new Array(n).fill(-1);
  const offset: number[] = new Array(n).fill(0);
  const arenaSizes: number[] = [];
  const members: number[][] = [];
  for (const i of order) {
    const it = items[i]!;
    let best: { a: number; off: number; growth: number } | undefined;
    for (let a = 0; a < arenaSizes.length; a++) {
      if (it.avoid.some((j) => arena[j] === a)) continue;
      // Regions in this arena that are live at the same time, by offset; take the first gap that fits.
      const busy = members[a]!.filter((j) => items[j]!.def <= it.last && it.def <= items[j]!.last).sort((x, y) => offset[x]! - offset[y]!);
      let off = 0;
      for (const j of busy) {
        if (offset[j]! - off >= reserve[i]!) break;
        off = Math.max(off, offset[j]! + reserve[j]!);
      }
      const growth = Math.max(0, off + reserve[i]! - arenaSizes[a]!);
      if (!best || growth < best.growth) best = { a, off, growth };
    }
    if (!best) {
      arenaSizes.push(0);
      members.push([]);
      best = { a: arenaSizes.length - 1, off: 0, growth: reserve[i]! };
    }
    arena[i] = best.a;
    offset[i] = best.off;
    members[best.a]!.push(i);
    arenaSizes[best.a] = Math.max(arenaSizes[best.a]!, best.off + reserve[i]!);
  }
  return { arena, offset, arenaSizes };
}

// Symbolic dimensions.
//
// A dim is a polynomial with integer coefficients over *atoms*; an atom is a
// symbol (`N`, `L`) or an exact floor division `floor(p / k)` of another dim
// polynomial by a positive integer (what strided convolutions produce). The
// polynomial is kept in a canonical form (sorted monomials, merged terms), so
// two dims are equal exactly when their printed forms are equal. This covers
// every size the language can produce: affine annotations (`L - 2`), products
// from reshape/flatten (`N*L`) and stride arithmetic (`floor((L - 1) / 2) + 1`).

export type Atom =
  | { readonly kind: "sym"; readonly name: string }
  | { readonly kind: "floordiv"; readonly num: Dim; readonly den: number };

/** A monomial: coefficient times a product of atoms (sorted by key, repeats allowed). */
interface Monomial {
  readonly coeff: number;
  readonly atoms: readonly Atom[];
}

export class Dim {
  private constructor(
    /** Canonical: no zero coefficients, at most one monomial per atom list, sorted. */
    readonly terms: readonly Monomial[],
  ) {}

  static of(n: number): Dim {
    if (!Number.isInteger(n)) throw new Error(`dim must be an integer, got ${n}`);
    return n === 0 ? new Dim([]) : new Dim([{ coeff: n, atoms: [] }]);
  }

  static sym(name: string): Dim {
    return new Dim([{ coeff: 1, atoms: [{ kind: "sym", name }] }]);
  }

  /** floor(num / den) for a positive integer den; folded when the division is exact or constant. */
  static floordiv(num: Dim, den: number): Dim {
    if (!Number.isInteger(den) || den <= 0) throw new Error(`floordiv by ${den}`);
    if (den === 1) return num;
    const c = num.constValue();
    if (c !== undefined) return Dim.of(Math.floor(c / den));
    // Exact when every coefficient is divisible.
    if (num.terms.every((t) => t.coeff % den === 0)) {
      return normalize(num.terms.map((t) => ({ coeff: t.coeff / den, atoms: t.atoms })));
    }
    // Pull out the whole multiples of den from the constant part:
    // floor((p + q*den) / den) = floor(p / den) + q for integer q.
    const k = num.constPart();
    const q = Math.floor(k / den);
    const rest = num.sub(Dim.of(q * den));
    return normalize([{ coeff: 1, atoms: [{ kind: "floordiv", num: rest, den }] }]).add(Dim.of(q));
  }

  /** ceil(num / den) = floor((num + den - 1) / den). */
  static ceildiv(num: Dim, den: number): Dim {
    return Dim.floordiv(num.add(Dim.of(den - 1)), den);
  }

  isConst(): boolean {
    return this.terms.every((t) => t.atoms.length === 0);
  }

  /** The integer value when the dim has no symbols. */
  constValue(): number | undefined {
    if (!this.isConst()) return undefined;
    return this.terms.length === 0 ? 0 : this.terms[0]!.coeff;
  }

  constPart(): number {
    const t = this.terms.find((m) => m.atoms.length === 0);
    return t ? t.coeff : 0;
  }

  add(o: Dim | number): Dim {
    const b = typeof o === "number" ? Dim.of(o) : o;
    return normalize([...this.terms, ...b.terms]);
  }

  sub(o: Dim | number): Dim {
    const b = typeof o === "number" ? Dim.of(o) : o;
    return this.add(b.scale(-1));
  }

  scale(k: number): Dim {
    return normalize(this.terms.map((t) => ({ coeff: t.coeff * k, atoms: t.atoms })));
  }

  mul(o: Dim | number): Dim {
    const b = typeof o === "number" ? Dim.of(o) : o;
    const out: Monomial[] = [];
    for (const x of this.terms) {
      for (const y of b.terms) {
        out.push({ coeff: x.coeff * y.coeff, atoms: [...x.atoms, ...y.atoms].sort(atomOrder) });
      }
    }
    return normalize(out);
  }

  /**
   * Exact division by another dim, or undefined when it is not exact
   * symbolically (e.g. reshape(x[N*L*4], [-1, 4]) gives N*L; [N, L] / L gives N).
   */
  divExact(o: Dim): Dim | undefined {
    if (o.terms.length === 0) return undefined;
    if (o.terms.length !== 1) {
      // Only a polynomial that is a constant multiple of `o` divides exactly here.
      const first = this.terms[0];
      if (!first) return Dim.of(0);
      const lead = o.terms[0]!;
      const k = first.coeff / lead.coeff;
      if (Number.isInteger(k) && this.equals(o.scale(k))) return Dim.of(k);
      return undefined;
    }
    const d = o.terms[0]!;
    const out: Monomial[] = [];
    for (const t of this.terms) {
      if (t.coeff % d.coeff !== 0) return undefined;
      const rest = removeAtoms(t.atoms, d.atoms);
      if (!rest) return undefined;
      out.push({ coeff: t.coeff / d.coeff, atoms: rest });
    }
    return normalize(out);
  }

  equals(o: Dim | number): boolean {
    const b = typeof o === "number" ? Dim.of(o) : o;
    return this.toString() === b.toString();
  }

  /** Symbols mentioned anywhere in this dim (including inside floor divisions). */
  symbols(out: Set<string> = new Set()): Set<string> {
    for (const t of this.terms) for (const a of t.atoms) collectAtomSymbols(a, out);
    return out;
  }

  /** Evaluate with concrete symbol values; throws if a symbol is unbound. */
  evaluate(env: ReadonlyMap<string, number> | Record<string, number>): number {
    const get = (name: string): number => {
      const v = env instanceof Map ? env.get(name) : (env as Record<string, number>)[name];
      if (v === undefined) throw new Error(`symbol ${name} is not bound`);
      return v;
    };
    let s = 0;
    for (const t of this.terms) {
      let p = t.coeff;
      for (const a of t.atoms) p *= a.kind === "sym" ? get(a.name) : Math.floor(a.num.evaluate(env) / a.den);
      s += p;
    }
    return s;
  }

  /** Substitute symbols by dims (used when inlining `def` blocks and binding shapes). */
  substitute(env: ReadonlyMap<string, Dim>): Dim {
    let acc = Dim.of(0);
    for (const t of this.terms) {
      let p = Dim.of(t.coeff);
      for (const a of t.atoms) {
        if (a.kind === "sym") p = p.mul(env.get(a.name) ?? Dim.sym(a.name));
        else p = p.mul(Dim.floordiv(a.num.substitute(env), a.den));
      }
      acc = acc.add(p);
    }
    return acc;
  }

  /**
   * Whether the dim is certainly >= k for every binding of its symbols to
   * values >= 1. Used to reject impossible sizes at compile time without
   * rejecting sizes that merely depend on a symbol.
   */
  lowerBound(): number {
    // Every atom is >= 0 when symbols are >= 1 and numerators are >= 0; a
    // sound but simple bound: symbols at 1 for positive monomials.
    let s = 0;
    for (const t of this.terms) {
      if (t.atoms.length === 0) s += t.coeff;
      else if (t.coeff > 0) s += t.coeff * t.atoms.reduce((p, a) => p * atomLowerBound(a), 1);
      else return -Infinity;
    }
    return s;
  }

  toString(): string {
    if (this.terms.length === 0) return "0";
    let out = "";
    // Print symbol terms first and the constant last: `L - 2`, `2*N + 1`.
    const ordered = [...this.terms.filter((t) => t.atoms.length > 0), ...this.terms.filter((t) => t.atoms.length === 0)];
    ordered.forEach((t, i) => {
      const neg = t.coeff < 0;
      const abs = Math.abs(t.coeff);
      const body =
        t.atoms.length === 0
          ? String(abs)
          : (abs === 1 ? "" : `${abs}*`) + t.atoms.map(atomToString).join("*");
      if (i === 0) out += (neg ? "-" : "") + body;
      else out += (neg ? " - " : " + ") + body;
    });
    return out;
  }

  toJSON(): number | string {
    return this.constValue() ?? this.toString();
  }
}

function atomLowerBound(a: Atom): number {
  if (a.kind === "sym") return 1;
  return Math.max(0, Math.floor(a.num.lowerBound() / a.den));
}

function collectAtomSymbols(a: Atom, out: Set<string>): void {
  if (a.kind === "sym") out.add(a.name);
  else a.num.symbols(out);
}

function atomToString(a: Atom): string {
  return a.kind === "sym" ? a.name : `floor((${a.num.toString()}) / ${a.den})`;
}

function atomOrder(a: Atom, b: Atom): number {
  const x = atomToString(a);
  const y = atomToString(b);
  return x < y ? -1 : x > y ? 1 : 0;
}

function monoKey(atoms: readonly Atom[]): string {
  return atoms.map(atomToString).join("*");
}

function removeAtoms(from: readonly Atom[], remove: readonly Atom[]): Atom[] | undefined {
  const rest = [...from];
  for (const r of remove) {
    const key = atomToString(r);
    const i = rest.findIndex((a) => atomToString(a) === key);
    if (i < 0) return undefined;
    rest.splice(i, 1);
  }
  return rest;
}

function normalize(terms: readonly Monomial[]): Dim {
  const merged = new Map<string, Monomial>();
  for (const t of terms) {
    const atoms = [...t.atoms].sort(atomOrder);
    const key = monoKey(atoms);
    const prev = merged.get(key);
    merged.set(key, { coeff: (prev?.coeff ?? 0) + t.coeff, atoms });
  }
  const out = [...merged.entries()]
    .filter(([, m]) => m.coeff !== 0)
    .sort(([a], [b]) => {
      // Higher-degree first, then lexicographic; constants last.
      if (a === "" || b === "") return a === "" ? 1 : -1;
      return a < b ? -1 : a > b ? 1 : 0;
    })
    .map(([, m]) => m);
  // Construct through the private constructor.
  return new (Dim as unknown as new (t: Monomial[]) => Dim)(out);
}

export type Shape = readonly Dim[];

export function shapeOf(dims: readonly (number | string | Dim)[]): Dim[] {
  return dims.map((d) => (d instanceof Dim ? d : typeof d === "number" ? Dim.of(d) : Dim.sym(d)));
}

export function shapeToString(shape: Shape): string {
  return `[${shape.map((d) => d.toString()).join(", ")}]`;
}

export function shapesEqual(a: Shape, b: Shape): boolean {
  return a.length === b.length && a.every((d, i) => d.equals(b[i]!));
}

/** Product of dims (element count). */
export function numel(shape: Shape): Dim {
  return shape.reduce((p, d) => p.mul(d), Dim.of(1));
}

export function evalShape(shape: Shape, env: ReadonlyMap<string, number> | Record<string, number>): number[] {
  return shape.map((d) => d.evaluate(env));
}

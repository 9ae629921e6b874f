// Extracts one novel of the R package janeaustenr (Debian: r-cran-janeaustenr)
// as plain text, with no R installation: reads the package's lazy-load data
// base (data/Rdata.rdx: gzip'd serialized index of name -> (offset, length);
// data/Rdata.rdb: per object a 4-byte big-endian length and a zlib stream of
// the serialized object) and decodes the character vector, one element a line.
//
//   apt-get download r-cran-janeaustenr
//   dpkg-deb -x r-cran-janeaustenr_1.0.0-1_all.deb ./janeaustenr-deb
//   npx tsx train/data/extract-janeaustenr.ts ./janeaustenr-deb/usr/lib/R/site-library/janeaustenr/data persuasion > train/data/persuasion.txt
//
// Only the R serialization (XDR, versions 2 and 3) needed for these objects is
// implemented: lists, pairlists, symbols, strings, integers, logicals, reals.

import { readFileSync } from "node:fs";
import { join } from "node:path";
import { gunzipSync, inflateSync } from "node:zlib";

type RValue = null | string | string[] | number[] | RValue[] | { sym: string } | { attr: RValue; value: RValue };

class Reader {
  private p = 0;
  private readonly refs: RValue[] = [];
  constructor(private readonly b: Buffer) {}

  int(): number {
    const v = this.b.readInt32BE(this.p);
    this.p += 4;
    return v;
  }

  header(): void {
    if (this.b.toString("latin1", 0, 2) !== "X\n") throw new Error("not an XDR R serialization");
    this.p = 2;
    const version = this.int();
    this.int();
    this.int();
    if (version === 3) {
      const n = this.int(); // native encoding name
      this.p += n;
    }
  }

  item(): RValue {
    const flags = this.int();
    const type = flags & 0xff;
    const hasAttr = (flags & (1 << 9)) !== 0;
    const hasTag = (flags & (1 << 10)) !== 0;
    switch (type) {
      case 254: // NILVALUE_SXP
        return null;
      case 255: // REFSXP
        return this.refs[(flags >> 8) - 1] ?? null;
      case 1: {
        // SYMSXP
        const sym = { sym: this.item() as string };
        this.refs.push(sym);
        return sym;
      }
      case 9: {
        // CHARSXP
        const n = this.int();
        if (n === -1) return null;
        const s = this.b.toString("utf8", this.p, this.p + n);
        this.p += n;
        return s;
      }
      case 2: {
        // LISTSXP: attributes, tag, car, cdr
        const attr = hasAttr ? this.item() : null;
        const tag = hasTag ? this.item() : null;
        const car = this.item();
        const cdr = this.item();
        return { attr, value: [tag, car, cdr] };
      }
      case 10:
      case 13: {
        // LGLSXP, INTSXP
        const n = this.int();
        const v = Array.from({ length: n }, () => this.int());
        return hasAttr ? { attr: this.item(), value: v } : v;
      }
      case 14: {
        // REALSXP
        const n = this.int();
        const v = Array.from({ length: n }, (_, i) => this.b.readDoubleBE(this.p + 8 * i));
        this.p += 8 * n;
        return hasAttr ? { attr: this.item(), value: v } : v;
      }
      case 16:
      case 19: {
        // STRSXP, VECSXP
        const n = this.int();
        const v = Array.from({ length: n }, () => this.item());
        return hasAttr ? { attr: this.item(), value: v as RValue[] } : (v as RValue[]);
      }
      default:
        throw new Error(`unsupported R type ${type}`);
    }
  }
}

function unserialize(b: Buffer): RValue {
  const r = new Reader(b);
  r.header();
  return r.item();
}

/** The `names` attribute of a value, from its attribute pairlist. */
function names(v: RValue): string[] {
  let a = v && typeof v === "object" && "attr" in v ? v.attr : null;
  while (a && typeof a === "object" && "value" in a) {
    const [tag, car, cdr] = a.value as RValue[];
    if (tag && typeof tag === "object" && "sym" in tag && tag.sym === "names") return car as string[];
    a = cdr ?? null;
  }
  return [];
}

function valueOf(v: RValue): RValue {
  return v && typeof v === "object" && "attr" in v ? v.value : v;
}

/** The lines of janeaustenr's object `name` (e.g. "persuasion") from its data directory. */
export function extractNovel(dataDir: string, name: string): string[] {
  const index = unserialize(gunzipSync(readFileSync(join(dataDir, "Rdata.rdx"))));
  const top = valueOf(index) as RValue[];
  const variables = top[names(index).indexOf("variables")]!;
  const at = names(variables).indexOf(name);
  if (at < 0) throw new Error(`no object ${name}; the package has ${names(variables).join(", ")}`);
  const [offset, length] = (valueOf(variables) as RValue[])[at] as number[];
  const block = readFileSync(join(dataDir, "Rdata.rdb")).subarray(offset!, offset! + length!);
  const raw = inflateSync(block.subarray(4));
  if (raw.length !== block.readUInt32BE(0)) throw new Error("length mismatch in Rdata.rdb");
  const lines = valueOf(unserialize(raw));
  if (!Array.isArray(lines) || !lines.every((l) => l === null || typeof l === "string")) throw new Error(`${name} is not a character vector`);
  return lines.map((l) => (l as string | null) ?? "");
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const [dir, name] = process.argv.slice(2);
  if (!dir || !name) {
    process.stderr.write("usage: tsx train/data/extract-janeaustenr.ts <janeaustenr/data dir> <object name>\n");
    process.exit(2);
  }
  process.stdout.write(extractNovel(dir, name).join("\n") + "\n");
}

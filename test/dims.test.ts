import { describe, expect, it } from "vitest";
import { Dim } from "../compiler/ir/dims.ts";

const N = Dim.sym("N");
const L = Dim.sym("L");

describe("symbolic dims", () => {
  it("keeps affine forms canonical", () => {
    expect(L.sub(2).toString()).toBe("L - 2");
    expect(L.sub(2).add(2).equals(L)).toBe(true);
    expect(N.mul(2).add(L).toString()).toBe(L.add(N.scale(2)).toString());
    expect(Dim.of(3).add(Dim.of(4)).constValue()).toBe(7);
  });

  it("multiplies and divides exactly", () => {
    const nl = N.mul(L).mul(4);
    expect(nl.toString()).toBe("4*L*N");
    expect(nl.divExact(Dim.of(4))!.equals(N.mul(L))).toBe(true);
    expect(nl.divExact(L)!.equals(N.mul(4))).toBe(true);
    expect(N.divExact(Dim.of(3))).toBeUndefined();
    expect(L.add(1).scale(2).divExact(L.add(1))!.constValue()).toBe(2);
  });

  it("folds floor division where it can and evaluates where it cannot", () => {
    expect(Dim.floordiv(Dim.of(31), 3).constValue()).toBe(10);
    expect(Dim.floordiv(L.scale(4).add(8), 4).equals(L.add(2))).toBe(true);
    const o = Dim.floordiv(L.sub(3), 2).add(1); // stride-2 conv, kernel 4
    // The constant inside is normalised to [0, den): floor((L - 3)/2) + 1 = floor((L + 1)/2) - 1.
    expect(o.toString()).toBe("floor((L + 1) / 2) - 1");
    expect(o.evaluate({ L: 10 })).toBe(4);
    expect(o.symbols()).toEqual(new Set(["L"]));
    expect(Dim.ceildiv(L, 2).evaluate({ L: 7 })).toBe(4);
  });

  it("substitutes and bounds", () => {
    const d = L.sub(2);
    expect(d.substitute(new Map([["L", Dim.of(10)]])).constValue()).toBe(8);
    expect(L.add(3).lowerBound()).toBe(4);
    expect(L.sub(5).lowerBound()).toBe(-4);
    expect(() => N.evaluate({})).toThrow(/N is not bound/);
  });
});

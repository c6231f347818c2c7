import { describe, expect, it } from "vitest";
import { mergeQuotes } from "./quotes";
import type { Quote } from "./types";

function quote(id: string, price: number, ts: number): Quote {
  return {
    id,
    price,
    prev_close: null,
    change: null,
    change_rate: null,
    volume: 0,
    day_volume: null,
    ts,
    ingest_ts: ts,
    source: "sim",
    stale: false,
    market: "sim",
  };
}

describe("mergeQuotes", () => {
  it("adds and replaces by id, keeping the newest ts", () => {
    const a = mergeQuotes({}, [quote("x", 1, 10), quote("y", 2, 10)]);
    expect(a.x?.price).toBe(1);
    const b = mergeQuotes(a, [quote("x", 3, 20), quote("y", 9, 5)]);
    expect(b.x?.price).toBe(3);
    expect(b.y?.price).toBe(2);
  });
  it("returns the same map when nothing is newer", () => {
    const a = mergeQuotes({}, [quote("x", 1, 10)]);
    expect(mergeQuotes(a, [quote("x", 0, 9)])).toBe(a);
  });
});

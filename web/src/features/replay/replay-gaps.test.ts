import { describe, expect, it } from "vitest";
import { emptiness, gapAt, jumpEnd, shortKst, withScanned, withTicks, type Coverages } from "./replay-gaps";

const A = "crypto.upbit.KRW-BTC";
const B = "stock.krx.068270";
const T = Date.parse("2026-12-07T17:00:00+09:00");
const NONE: Coverages = new Map();

describe("replay gaps", () => {
  it("records each instrument's first tick at or after the start, and what was looked at", () => {
    let c = withTicks(NONE, [{ id: A, ts: T - 5 }, { id: A, ts: T + 20 }, { id: A, ts: T + 10 }], T);
    expect(c.get(A)).toEqual({ first: T + 10, scannedTo: null });
    // Nothing new: the same map (no re-render).
    expect(withTicks(c, [{ id: A, ts: T + 50 }], T)).toBe(c);
    c = withScanned(c, [A, B], T + 300_000);
    expect(c.get(A)).toEqual({ first: T + 10, scannedTo: T + 300_000 });
    expect(c.get(B)).toEqual({ first: null, scannedTo: T + 300_000 });
    expect(withScanned(c, [B], T + 100).get(B)?.scannedTo).toBe(T + 300_000);
  });

  it("an instrument has a gap until its first tick's time, or while finished windows found nothing", () => {
    expect(gapAt(undefined, T)).toBeNull();
    expect(gapAt({ first: null, scannedTo: null }, T)).toBeNull();
    expect(gapAt({ first: null, scannedTo: T + 300_000 }, T)).toEqual({ next: null });
    expect(gapAt({ first: T + 3600_000, scannedTo: null }, T)).toEqual({ next: T + 3600_000 });
    expect(gapAt({ first: T + 3600_000, scannedTo: null }, T + 3600_000)).toBeNull();
  });

  it("decides what the banner says", () => {
    const ids = [A, B];
    // Nothing known yet (first window still running).
    expect(emptiness(ids, NONE, T, "playing")).toBeNull();
    expect(emptiness([], NONE, T, "ended")).toBeNull();
    // The first window found nothing for either.
    const scanned = withScanned(NONE, ids, T + 300_000);
    expect(emptiness(ids, scanned, T, "playing")).toEqual({ kind: "all", next: null });
    // Later windows found records beginning an hour on: the earliest is offered.
    const later = withTicks(scanned, [{ id: B, ts: T + 3900_000 }, { id: A, ts: T + 3600_000 }], T);
    expect(emptiness(ids, later, T, "playing")).toEqual({ kind: "all", next: T + 3600_000 });
    // The clock reached A's records: only B is without, and A plays on.
    expect(emptiness(ids, later, T + 3600_000, "playing")).toEqual({ kind: "some", ids: [B] });
    expect(emptiness(ids, later, T + 3900_000, "playing")).toBeNull();
    // Over, and nothing found at all.
    expect(emptiness(ids, scanned, T + 300_000, "ended")).toEqual({ kind: "nothing" });
    expect(emptiness(ids, later, T + 3900_000, "ended")).toBeNull();
  });

  it("formats short KST times for a row", () => {
    expect(shortKst(T + 3600_000 + 5_000, T)).toBe("18:00:05");
    expect(shortKst(T + 86_400_000, T)).toBe("12-08 17:00");
  });

  it("a jump to where records begin keeps the end when it is still ahead", () => {
    expect(jumpEnd(null, T)).toBeNull();
    expect(jumpEnd(T + 60_000, T)).toBe(T + 60_000);
    expect(jumpEnd(T - 60_000, T)).toBeNull();
  });
});

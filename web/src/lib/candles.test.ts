import { describe, expect, it } from "vitest";
import { applyTick, candleAt, fromChartTime, mergePages, toChartTime } from "./candles";
import type { Candle } from "./types";

const c = (t: number, p: number, v = 1): Candle => ({ t, o: p, h: p, l: p, c: p, v });
const M = 60_000;

describe("KST chart time", () => {
  it("shifts by nine hours and back", () => {
    const t = Date.UTC(2026, 0, 2, 0, 30); // 09:30 KST
    expect(new Date(toChartTime(t) * 1000).getUTCHours()).toBe(9);
    expect(fromChartTime(toChartTime(t))).toBe(t);
  });
});

describe("mergePages", () => {
  it("joins pages ascending, newer pages winning duplicates", () => {
    const newest = [c(3 * M, 30), c(4 * M, 40)];
    const older = [c(1 * M, 10), c(2 * M, 20), c(3 * M, 99)];
    expect(mergePages([newest, older]).map((x) => [x.t / M, x.c])).toEqual([
      [1, 10],
      [2, 20],
      [3, 30],
      [4, 40],
    ]);
  });
});

describe("applyTick", () => {
  it("updates the open candle, then opens the next one", () => {
    const cs = [c(0, 100, 2)];
    expect(applyTick(cs, { price: 105, volume: 1, ts: 30_000 }, "1m")).toEqual({ t: 0, o: 100, h: 105, l: 100, c: 105, v: 3 });
    applyTick(cs, { price: 95, volume: 1, ts: 59_999 }, "1m");
    expect(cs[0]).toMatchObject({ l: 95, c: 95, v: 4 });
    const next = applyTick(cs, { price: 96, volume: 2, ts: 3 * M + 5 }, "1m");
    expect(next).toEqual({ t: 3 * M, o: 96, h: 96, l: 96, c: 96, v: 2 });
    expect(applyTick(cs, { price: 1, volume: 1, ts: 2 * M }, "1m")).toBeNull();
    expect(cs).toHaveLength(2);
  });
  it("aligns a first daily candle to KST midnight", () => {
    const cs: Candle[] = [];
    applyTick(cs, { price: 1, volume: 1, ts: Date.UTC(2026, 0, 2, 3) }, "1d");
    expect(cs[0]!.t).toBe(Date.UTC(2026, 0, 1, 15));
  });
});

describe("candleAt", () => {
  it("finds the candle containing a time", () => {
    const cs = [c(0, 1), c(5 * M, 1), c(10 * M, 1)];
    expect(candleAt(cs, 7 * M, "5m")).toBe(5 * M);
    expect(candleAt(cs, 15 * M, "5m")).toBeNull();
    expect(candleAt(cs, -1, "5m")).toBeNull();
  });
});

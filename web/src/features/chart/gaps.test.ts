import { describe, expect, it } from "vitest";
import type { Candle } from "@/lib/types";
import { GapCalendar, gapsBetween, isGap, MAX_GAP_BARS, withGaps, type CalendarSource } from "./gaps";

const MIN = 60_000;
const HOUR = 60 * MIN;
const DAY = 24 * HOUR;

/** Epoch ms of a KST wall-clock time. */
const kst = (iso: string) => Date.parse(`${iso}+09:00`);
const c = (t: number, p = 100): Candle => ({ t, o: p, h: p, l: p, c: p, v: 1 });
const gapTimes = (bars: ReturnType<typeof withGaps>) => bars.filter(isGap).map((b) => b.t);

// 2026-11-24 is a Tuesday: KRX trades 09:00–15:30 KST.
describe("withGaps with the market calendar", () => {
  it("1m: a minute without ticks while KRX is open is a gap, with no invented values", () => {
    const a = kst("2026-11-24T10:00:00");
    const bars = withGaps([c(a), c(a + 3 * MIN, 101)], "1m", "krx");
    expect(bars).toEqual([c(a), { t: a + MIN, gap: true }, { t: a + 2 * MIN, gap: true }, c(a + 3 * MIN, 101)]);
  });

  it("1m: the night and the weekend between two sessions are not gaps", () => {
    const close = kst("2026-11-24T15:29:00");
    const nextOpen = kst("2026-11-25T09:00:00");
    expect(gapTimes(withGaps([c(close), c(nextOpen)], "1m", "krx"))).toEqual([]);
    const friday = kst("2026-11-27T15:29:00");
    const monday = kst("2026-11-30T09:00:00");
    expect(gapTimes(withGaps([c(friday), c(monday)], "1m", "krx"))).toEqual([]);
  });

  it("1m: only the open part of a hole is a gap (close at 15:30, reopen at 09:00)", () => {
    const a = kst("2026-11-24T15:27:00");
    const b = kst("2026-11-25T09:02:00");
    expect(gapTimes(withGaps([c(a), c(b)], "1m", "krx"))).toEqual([
      kst("2026-11-24T15:28:00"),
      kst("2026-11-24T15:29:00"),
      kst("2026-11-25T09:00:00"),
      kst("2026-11-25T09:01:00"),
    ]);
  });

  it("1m: crypto never closes, so every missing minute is a gap", () => {
    const a = kst("2026-11-28T03:00:00"); // a Saturday night
    expect(gapTimes(withGaps([c(a), c(a + 4 * MIN)], "1m", "crypto"))).toEqual([a + MIN, a + 2 * MIN, a + 3 * MIN]);
  });

  it("5m: missing buckets during the session are gaps", () => {
    const a = kst("2026-11-24T10:00:00");
    expect(gapTimes(withGaps([c(a), c(a + 15 * MIN)], "5m", "krx"))).toEqual([a + 5 * MIN, a + 10 * MIN]);
  });

  it("1h: an hour the market was open for part of is a gap; hours after the close are not", () => {
    const a = kst("2026-11-24T14:00:00");
    const b = kst("2026-11-24T18:00:00");
    // 15:00–16:00 holds the last half hour of the session; 16:00 and 17:00 are after the close.
    expect(gapTimes(withGaps([c(a), c(b)], "1h", "krx"))).toEqual([kst("2026-11-24T15:00:00")]);
  });

  it("1d: a missing weekday is a gap, the weekend is not", () => {
    const fri = kst("2026-11-20T00:00:00");
    const tue = kst("2026-11-24T00:00:00");
    expect(gapTimes(withGaps([c(fri), c(tue)], "1d", "krx"))).toEqual([kst("2026-11-23T00:00:00")]);
  });

  it("1d: a market holiday is not a gap (Christmas 2026 on KRX)", () => {
    const thu = kst("2026-12-24T00:00:00");
    const mon = kst("2026-12-28T00:00:00");
    expect(gapTimes(withGaps([c(thu), c(mon)], "1d", "krx"))).toEqual([]);
  });

  it("leaves a series without holes as it is, and an empty one empty", () => {
    const a = kst("2026-11-24T10:00:00");
    const series = [c(a), c(a + MIN), c(a + 2 * MIN)];
    expect(withGaps(series, "1m", "krx")).toEqual(series);
    expect(withGaps([], "1m", "krx")).toEqual([]);
  });
});

/** A stand-in market in UTC, open on weekdays from `open` to `close` (minutes of the day). */
function fakeMarket(open: number, close: number, counter?: { calls: number }): CalendarSource {
  const isOpen = (t: number) => {
    if (counter) counter.calls++;
    const d = new Date(t);
    const m = d.getUTCHours() * 60 + d.getUTCMinutes();
    const wd = d.getUTCDay();
    return wd >= 1 && wd <= 5 && m >= open && m < close;
  };
  return {
    open: (_m, t) => isOpen(t),
    tradingDay: (_m, date) => {
      const wd = new Date(`${date}T00:00:00Z`).getUTCDay();
      return wd >= 1 && wd <= 5;
    },
    timeZone: () => "UTC",
    alwaysOpen: () => false,
  };
}

describe("gap helpers", () => {
  it("a bucket is open if the market was open at any time within it", () => {
    const cal = new GapCalendar(fakeMarket(0, 6 * 60));
    const day = Date.UTC(2026, 0, 5); // Monday
    expect(cal.bucketOpen("x", day + 5 * HOUR, HOUR)).toBe(true);
    expect(cal.bucketOpen("x", day + 6 * HOUR, HOUR)).toBe(false);
    expect(cal.bucketOpen("x", day + 5 * HOUR + 59 * MIN, MIN)).toBe(true);
    expect(cal.bucketOpen("x", day + 6 * HOUR, MIN)).toBe(false);
    expect(cal.bucketOpen("x", day, DAY)).toBe(true);
    expect(cal.bucketOpen("x", day - DAY, DAY)).toBe(false); // Sunday
  });

  it("finds a session edge that is not on the quarter hour", () => {
    const cal = new GapCalendar(fakeMarket(9 * 60 + 7, 15 * 60 + 30));
    const day = Date.UTC(2026, 0, 5);
    expect(cal.bucketOpen("x", day + 9 * HOUR + 6 * MIN, MIN)).toBe(false);
    expect(cal.bucketOpen("x", day + 9 * HOUR + 7 * MIN, MIN)).toBe(true);
    expect(cal.bucketOpen("x", day + 9 * HOUR, 5 * MIN)).toBe(false);
    expect(cal.bucketOpen("x", day + 9 * HOUR + 5 * MIN, 5 * MIN)).toBe(true);
  });

  it("gapsBetween lists the open buckets strictly between two candles", () => {
    const t0 = Date.UTC(2026, 0, 5, 5, 57);
    const cal = new GapCalendar(fakeMarket(0, 6 * 60));
    expect(gapsBetween(t0, t0 + 5 * MIN, "1m", "x", cal).map((g) => g.t)).toEqual([t0 + MIN, t0 + 2 * MIN]);
  });

  it("caps one hole at MAX_GAP_BARS points", () => {
    const bars = withGaps([c(0), c((MAX_GAP_BARS + 500) * MIN)], "1m", "crypto");
    expect(bars.filter(isGap)).toHaveLength(MAX_GAP_BARS);
    expect(bars[0]).toEqual(c(0));
    expect(bars[bars.length - 1]).toEqual(c((MAX_GAP_BARS + 500) * MIN));
  });

  it("answers every minute of four days like the calendar, asking it far less", () => {
    const counter = { calls: 0 };
    const cal = new GapCalendar(fakeMarket(9 * 60 + 7, 15 * 60 + 30, counter));
    const exact = fakeMarket(9 * 60 + 7, 15 * 60 + 30);
    const start = Date.UTC(2026, 10, 20); // Friday
    const minutes = 4 * 24 * 60;
    for (let i = 0; i < minutes; i++) expect(cal.bucketOpen("x", start + i * MIN, MIN)).toBe(exact.open("x", start + i * MIN));
    expect(counter.calls).toBeLessThan(minutes / 20);
  });
});

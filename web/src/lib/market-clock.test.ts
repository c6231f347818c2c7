import { describe, expect, it } from "vitest";
import { clockText, daySessions, isTradingDay, localTime, MARKET_CALENDAR, marketSession, nextChange } from "./market-clock";

// An instant given as a UTC wall time, and as a KST wall time.
const utc = (y: number, mo: number, d: number, h: number, mi = 0) => Date.UTC(y, mo - 1, d, h, mi);
const kst = (y: number, mo: number, d: number, h: number, mi = 0) => utc(y, mo, d, h, mi) - 9 * 3_600_000;
const state = (market: string, t: number) => marketSession(market, t).state;

describe("the calendar file", () => {
  it("is the shared version-2 file with every market", () => {
    expect(MARKET_CALENDAR.version).toBe(2);
    expect(Object.keys(MARKET_CALENDAR.markets).sort()).toEqual(["crypto", "fx", "krx", "metal", "us"]);
    for (const [key, m] of Object.entries(MARKET_CALENDAR.markets)) {
      expect(() => new Intl.DateTimeFormat("en-US", { timeZone: m.timeZone }), key).not.toThrow();
      for (const date of [...Object.keys(m.holidays ?? {}), ...Object.keys(m.special ?? {})]) {
        expect(date, key).toMatch(/^\d{4}-\d{2}-\d{2}$/);
        expect(new Date(`${date}T00:00:00Z`).toISOString().slice(0, 10), key).toBe(date);
      }
    }
  });
});

describe("KRX (NXT pre 08:00–08:50, regular 09:00–15:30, NXT after 15:30–20:00 KST)", () => {
  it("walks through a regular day", () => {
    // Tue 2026-11-24
    expect(state("krx", kst(2026, 11, 24, 7, 59))).toBe("closed");
    expect(state("krx", kst(2026, 11, 24, 8, 0))).toBe("pre");
    expect(state("krx", kst(2026, 11, 24, 8, 55))).toBe("closed");
    expect(state("krx", kst(2026, 11, 24, 9, 0))).toBe("open");
    expect(state("krx", kst(2026, 11, 24, 15, 29))).toBe("open");
    expect(state("krx", kst(2026, 11, 24, 15, 30))).toBe("post");
    expect(marketSession("krx", kst(2026, 11, 24, 20, 0))).toEqual({ state: "closed", reason: "hours", note: null });
  });
  it("is closed on weekends and every 2026 holiday, incl. substitutes, 6/3 and the year-end close", () => {
    expect(marketSession("krx", kst(2026, 11, 28, 10)).reason).toBe("weekend");
    const holidays = ["01-01", "02-16", "02-17", "02-18", "03-02", "05-01", "05-05", "05-25", "06-03", "07-17", "08-17", "09-24", "09-25", "10-05", "10-09", "12-25", "12-31"];
    for (const md of holidays) {
      const [m, d] = md.split("-").map(Number) as [number, number];
      expect(marketSession("krx", kst(2026, m, d, 10)).reason, md).toBe("holiday");
      expect(isTradingDay("krx", `2026-${md}`), md).toBe(false);
    }
    expect(marketSession("krx", kst(2026, 12, 31, 10)).note).toBe("연말 휴장일");
    expect(isTradingDay("krx", "2026-12-30")).toBe(true);
    // From the 12-30 after-market, the next change is the 2027-01-04 10:00 open.
    expect(nextChange("krx", kst(2026, 12, 30, 21))).toBe(kst(2027, 1, 4, 10));
  });
  it("opens at 10:00 on the first trading days (no NXT pre-market)", () => {
    for (const [y, m, d] of [[2026, 1, 2], [2027, 1, 4]] as const) {
      expect(state("krx", kst(y, m, d, 8, 10))).toBe("closed");
      expect(state("krx", kst(y, m, d, 9, 30))).toBe("closed");
      expect(state("krx", kst(y, m, d, 10))).toBe("open");
    }
  });
  it("shifts the 수능 day 2026-11-19: 10:00–16:30, after-market from 16:30", () => {
    expect(state("krx", kst(2026, 11, 19, 9, 30))).toBe("closed");
    expect(marketSession("krx", kst(2026, 11, 19, 10)).note).toBe("수능일 (10시 개장)");
    expect(state("krx", kst(2026, 11, 19, 10))).toBe("open");
    expect(state("krx", kst(2026, 11, 19, 16))).toBe("open");
    expect(state("krx", kst(2026, 11, 19, 16, 31))).toBe("post");
    expect(nextChange("krx", kst(2026, 11, 19, 10))).toBe(kst(2026, 11, 19, 16, 30));
  });
});

describe("US (New York time with DST)", () => {
  it("opens at 14:30 UTC before the 2026-03-08 switch and 13:30 UTC after it", () => {
    expect(state("us", utc(2026, 3, 6, 14, 29))).toBe("pre");
    expect(state("us", utc(2026, 3, 6, 14, 30))).toBe("open");
    expect(marketSession("us", utc(2026, 3, 8, 14, 30)).reason).toBe("weekend");
    expect(state("us", utc(2026, 3, 9, 13, 29))).toBe("pre");
    expect(state("us", utc(2026, 3, 9, 13, 30))).toBe("open");
    expect(nextChange("us", utc(2026, 3, 8, 12))).toBe(utc(2026, 3, 9, 8));
  });
  it("opens at 13:30 UTC before the 2026-11-01 switch and 14:30 UTC after it", () => {
    expect(state("us", utc(2026, 10, 30, 13, 30))).toBe("open");
    expect(state("us", utc(2026, 11, 2, 13, 30))).toBe("pre");
    expect(state("us", utc(2026, 11, 2, 14, 30))).toBe("open");
    expect(state("us", utc(2026, 11, 2, 21))).toBe("post");
  });
  it("knows the NYSE 2026 holidays and the 13:00 early closes", () => {
    for (const md of ["01-01", "01-19", "02-16", "04-03", "05-25", "06-19", "07-03", "09-07", "11-26", "12-25"]) {
      const [m, d] = md.split("-").map(Number) as [number, number];
      expect(marketSession("us", utc(2026, m, d, 16, 30)).reason, md).toBe("holiday");
    }
    expect(state("us", utc(2026, 11, 27, 17, 59))).toBe("open");
    expect(state("us", utc(2026, 11, 27, 18))).toBe("post");
    expect(state("us", utc(2026, 11, 27, 22))).toBe("closed");
    expect(state("us", utc(2026, 12, 24, 18, 30))).toBe("post");
  });
});

describe("crypto, metal, fx and unknown markets", () => {
  it("keeps crypto always open", () => {
    expect(state("crypto", utc(2026, 11, 28, 3))).toBe("open");
    expect(state("crypto", utc(2026, 12, 25, 3))).toBe("open");
    expect(nextChange("crypto", utc(2026, 11, 28, 3))).toBeNull();
  });
  it("runs metals overnight Sunday evening to Friday 17:00 New York", () => {
    expect(state("metal", utc(2026, 11, 25, 8))).toBe("open");
    expect(state("metal", utc(2026, 11, 25, 22, 30))).toBe("closed");
    expect(marketSession("metal", utc(2026, 11, 28, 17)).reason).toBe("weekend");
    expect(state("metal", utc(2026, 11, 29, 23, 30))).toBe("open");
    expect(state("metal", utc(2026, 11, 30, 7))).toBe("open");
  });
  it("follows bank business days for fx (open on the KRX-only year-end close)", () => {
    expect(isTradingDay("fx", "2026-12-31")).toBe(true);
    expect(isTradingDay("fx", "2026-09-25")).toBe(false);
    expect(state("fx", kst(2026, 11, 19, 10, 30))).toBe("open");
  });
  it("treats an unknown market as closed", () => {
    expect(state("mars", 0)).toBe("closed");
    expect(isTradingDay("mars", "2026-11-24")).toBe(false);
    expect(nextChange("mars", 0)).toBeNull();
  });
});

describe("daySessions", () => {
  it("lists a day's sessions as epoch ms, special days included", () => {
    expect(daySessions("krx", "2026-11-19")).toEqual([
      { phase: "open", start: kst(2026, 11, 19, 10), end: kst(2026, 11, 19, 16, 30) },
      { phase: "post", start: kst(2026, 11, 19, 16, 30), end: kst(2026, 11, 19, 20) },
    ]);
    expect(daySessions("us", "2026-11-27").map((s) => s.phase)).toEqual(["pre", "open", "post"]);
    expect(daySessions("us", "2026-11-26")).toEqual([]);
    // Sunday's metal session runs into Monday.
    expect(daySessions("metal", "2026-11-29")).toEqual([{ phase: "open", start: utc(2026, 11, 29, 23), end: utc(2026, 11, 30, 22) }]);
    expect(daySessions("crypto", "2026-11-29")).toEqual([]);
    expect(daySessions("mars", "2026-11-29")).toEqual([]);
  });
});

describe("clock helpers", () => {
  it("gives wall-clock parts and text", () => {
    expect(localTime(utc(2026, 11, 24, 15, 5), "Asia/Seoul")).toMatchObject({ date: "2026-11-25", weekday: 3 });
    expect(clockText(utc(2026, 11, 24, 15, 5), "Asia/Seoul")).toBe("00:05:00");
  });
});

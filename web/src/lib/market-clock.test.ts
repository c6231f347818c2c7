import { describe, expect, it } from "vitest";
import { clockText, localTime, marketSession } from "./market-clock";

// Helpers: an instant given as a UTC wall time.
const utc = (y: number, mo: number, d: number, h: number, mi = 0) => Date.UTC(y, mo - 1, d, h, mi);

describe("marketSession: KRX (09:00–15:30 KST, Mon–Fri)", () => {
  it("is open during the session and closed after it", () => {
    // Tue 2026-11-24 10:00 KST = 01:00 UTC
    expect(marketSession("krx", utc(2026, 11, 24, 1)).state).toBe("open");
    // 15:29 KST open, 15:30 KST closes into the post session
    expect(marketSession("krx", utc(2026, 11, 24, 6, 29)).state).toBe("open");
    expect(marketSession("krx", utc(2026, 11, 24, 6, 30)).state).toBe("post");
    // 08:45 KST pre-market
    expect(marketSession("krx", utc(2026, 11, 23, 23, 45)).state).toBe("pre");
    // 20:00 KST closed
    expect(marketSession("krx", utc(2026, 11, 24, 11))).toEqual({ state: "closed", reason: "hours" });
  });
  it("is closed on weekends and holidays", () => {
    // Sat 2026-11-28 10:00 KST
    expect(marketSession("krx", utc(2026, 11, 28, 1))).toEqual({ state: "closed", reason: "weekend" });
    // Fri 2026-12-25 10:00 KST
    expect(marketSession("krx", utc(2026, 12, 25, 1))).toEqual({ state: "closed", reason: "holiday" });
  });
});

describe("marketSession: US (09:30–16:00 New York, DST via Intl)", () => {
  it("follows daylight saving time", () => {
    // Summer (EDT, UTC-4): 09:30 NY = 13:30 UTC
    expect(marketSession("us", utc(2026, 7, 15, 13, 29)).state).toBe("pre");
    expect(marketSession("us", utc(2026, 7, 15, 13, 30)).state).toBe("open");
    // Winter (EST, UTC-5): 09:30 NY = 14:30 UTC
    expect(marketSession("us", utc(2026, 11, 24, 14, 29)).state).toBe("pre");
    expect(marketSession("us", utc(2026, 11, 24, 14, 30)).state).toBe("open");
    expect(marketSession("us", utc(2026, 11, 24, 21, 0)).state).toBe("post");
  });
  it("knows holidays and early closes", () => {
    // Thanksgiving 2026-11-26 noon NY
    expect(marketSession("us", utc(2026, 11, 26, 17)).reason).toBe("holiday");
    // 2026-11-27 closes at 13:00 NY (18:00 UTC)
    expect(marketSession("us", utc(2026, 11, 27, 17, 59)).state).toBe("open");
    expect(marketSession("us", utc(2026, 11, 27, 18, 0)).state).toBe("post");
  });
});

describe("marketSession: crypto and metal", () => {
  it("keeps crypto always open", () => {
    expect(marketSession("crypto", utc(2026, 11, 28, 3)).state).toBe("open");
  });
  it("runs metals overnight Sunday evening to Friday 17:00 New York", () => {
    // Wed 03:00 NY (08:00 UTC) open
    expect(marketSession("metal", utc(2026, 11, 25, 8)).state).toBe("open");
    // Wed 17:30 NY daily break
    expect(marketSession("metal", utc(2026, 11, 25, 22, 30)).state).toBe("closed");
    // Sat noon NY closed
    expect(marketSession("metal", utc(2026, 11, 28, 17)).reason).toBe("weekend");
    // Sun 18:30 NY open
    expect(marketSession("metal", utc(2026, 11, 29, 23, 30)).state).toBe("open");
  });
  it("treats an unknown market as open", () => {
    expect(marketSession("mars", 0).state).toBe("open");
  });
});

describe("clock helpers", () => {
  it("gives wall-clock parts and text", () => {
    expect(localTime(utc(2026, 11, 24, 15, 5), "Asia/Seoul")).toMatchObject({ date: "2026-11-25", weekday: 3 });
    expect(clockText(utc(2026, 11, 24, 15, 5), "Asia/Seoul")).toBe("00:05:00");
  });
});

import { describe, expect, it } from "vitest";
import {
  currencyLabel,
  direction,
  formatKstDateTime,
  formatTimeAgo,
  formatVolume,
  formatChange,
  formatKoreanUnit,
  formatKstTime,
  formatPrice,
  formatRate,
} from "./format";

describe("formatPrice", () => {
  it("formats KRW with thousands separators and no decimals", () => {
    expect(formatPrice(130250000, "KRW", 0)).toBe("130,250,000");
    expect(formatPrice(72400.6, "KRW", 0)).toBe("72,401");
    expect(formatPrice(1385.2, "KRW", 2)).toBe("1,385");
  });
  it("keeps decimals for a KRW price under 100", () => {
    expect(formatPrice(0.4521, "KRW", 4)).toBe("0.4521");
    expect(formatPrice(0.4521, "KRW", 0)).toBe("0");
  });
  it("uses the instrument's decimals for other currencies", () => {
    expect(formatPrice(171.5, "USD", 2)).toBe("171.50");
    expect(formatPrice(44950.123, "USD", 2)).toBe("44,950.12");
    expect(formatPrice(2650.4, "USD", 0)).toBe("2,650");
  });
  it("shows a dash for missing values", () => {
    expect(formatPrice(null, "KRW", 0)).toBe("—");
    expect(formatPrice(Number.NaN, "USD", 2)).toBe("—");
  });
});

describe("formatChange", () => {
  it("signs the change in price units", () => {
    expect(formatChange(1250, "KRW", 0)).toBe("+1,250");
    expect(formatChange(-1250000, "KRW", 0)).toBe("-1,250,000");
    expect(formatChange(-3.2, "USD", 2)).toBe("-3.20");
    expect(formatChange(0, "KRW", 0)).toBe("0");
  });
  it("does not sign a change that rounds to zero", () => {
    expect(formatChange(0.3, "KRW", 0)).toBe("0");
    expect(formatChange(-0.001, "USD", 2)).toBe("0.00");
  });
  it("shows a dash for null", () => {
    expect(formatChange(null, "KRW", 0)).toBe("—");
  });
});

describe("formatRate", () => {
  it("formats a fraction as a signed percentage", () => {
    expect(formatRate(0.010473)).toBe("+1.05%");
    expect(formatRate(-0.0123)).toBe("-1.23%");
    expect(formatRate(0.3)).toBe("+30.00%");
    expect(formatRate(0)).toBe("0.00%");
  });
  it("does not sign a rate that rounds to zero", () => {
    expect(formatRate(-0.00001)).toBe("0.00%");
  });
  it("shows a dash for null", () => {
    expect(formatRate(null)).toBe("—");
  });
});

describe("formatKstTime", () => {
  it("formats epoch ms as HH:mm:ss in KST", () => {
    // 2025-01-02T00:30:05Z is 09:30:05 in Seoul.
    expect(formatKstTime(Date.UTC(2025, 0, 2, 0, 30, 5))).toBe("09:30:05");
    // 2025-06-30T15:00:00Z is already 00:00:00 the next day in Seoul.
    expect(formatKstTime(Date.UTC(2025, 5, 30, 15, 0, 0))).toBe("00:00:00");
    expect(formatKstTime(Date.UTC(2025, 5, 30, 14, 59, 59, 999))).toBe("23:59:59");
  });
  it("shows a dash for null", () => {
    expect(formatKstTime(null)).toBe("—");
  });
});

describe("formatKoreanUnit", () => {
  it("uses 만/억/조", () => {
    expect(formatKoreanUnit(9999)).toBe("9,999");
    expect(formatKoreanUnit(12345)).toBe("1.23만");
    expect(formatKoreanUnit(123456789)).toBe("1.23억");
    expect(formatKoreanUnit(2.5e12)).toBe("2.5조");
    expect(formatKoreanUnit(100000000)).toBe("1억");
  });
});

describe("direction", () => {
  it("classifies up, down and flat", () => {
    expect(direction(1)).toBe("up");
    expect(direction(-0.5)).toBe("down");
    expect(direction(0)).toBe("flat");
    expect(direction(null)).toBe("flat");
    expect(direction(Number.NaN)).toBe("flat");
  });
});

describe("formatTimeAgo", () => {
  const now = Date.UTC(2026, 0, 2, 3, 0, 0);
  it("counts seconds, minutes, hours and days in Korean", () => {
    expect(formatTimeAgo(now, now)).toBe("방금");
    expect(formatTimeAgo(now + 500, now)).toBe("방금");
    expect(formatTimeAgo(now - 3_000, now)).toBe("3초 전");
    expect(formatTimeAgo(now - 59_999, now)).toBe("59초 전");
    expect(formatTimeAgo(now - 5 * 60_000, now)).toBe("5분 전");
    expect(formatTimeAgo(now - 2 * 3_600_000, now)).toBe("2시간 전");
    expect(formatTimeAgo(now - 3 * 86_400_000, now)).toBe("3일 전");
  });
  it("has an English form and a dash for null", () => {
    expect(formatTimeAgo(now - 3_000, now, "en")).toBe("3s ago");
    expect(formatTimeAgo(now - 90 * 60_000, now, "en")).toBe("1h ago");
    expect(formatTimeAgo(null, now)).toBe("—");
  });
});

describe("formatKstDateTime", () => {
  it("formats the KST date, crossing midnight", () => {
    expect(formatKstDateTime(Date.UTC(2025, 11, 31, 15, 30))).toBe("2026-01-01 00:30");
  });
});

describe("formatVolume", () => {
  it("uses Korean units in Korean and K/M/B in English", () => {
    expect(formatVolume(123456789, "ko")).toBe("1.23억");
    expect(formatVolume(123456789, "en")).toBe("123.46M");
    expect(formatVolume(999, "en")).toBe("999");
    expect(formatVolume(2.5e12, "ko")).toBe("2.5조");
  });
});

describe("currencyLabel", () => {
  it("labels KRW and USD", () => {
    expect(currencyLabel("KRW")).toBe("원");
    expect(currencyLabel("USD", "en")).toBe("$");
  });
});

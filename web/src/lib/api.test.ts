import { describe, expect, it } from "vitest";
import { ApiError, CANDLE_PAGE, candleQueries, candlesPath, retryDelay, shouldRetry } from "./api";

describe("shouldRetry", () => {
  it("retries network errors, 5xx and 429 up to three times", () => {
    expect(shouldRetry(0, new TypeError("Failed to fetch"))).toBe(true);
    expect(shouldRetry(1, new ApiError(503, "unavailable", "x"))).toBe(true);
    expect(shouldRetry(2, new ApiError(429, "rate_limited", "x"))).toBe(true);
    expect(shouldRetry(3, new ApiError(503, "unavailable", "x"))).toBe(false);
  });
  it("never retries other 4xx", () => {
    expect(shouldRetry(0, new ApiError(400, "bad_request", "x"))).toBe(false);
    expect(shouldRetry(0, new ApiError(404, "unknown_instrument", "x"))).toBe(false);
  });
});

describe("retryDelay", () => {
  it("honours Retry-After, else backs off exponentially up to 30 s", () => {
    expect(retryDelay(0, new ApiError(429, "rate_limited", "x", 2000))).toBe(2000);
    expect(retryDelay(0, new TypeError("x"))).toBe(1000);
    expect(retryDelay(2, new ApiError(503, "unavailable", "x"))).toBe(4000);
    expect(retryDelay(10, new TypeError("x"))).toBe(30_000);
  });
});

describe("candlesPath", () => {
  it("encodes the id and passes the range", () => {
    expect(candlesPath("crypto.upbit.KRW-BTC", "5m", { to: 1000, limit: 500 })).toBe(
      "/api/v1/candles/crypto.upbit.KRW-BTC?interval=5m&to=1000&limit=500",
    );
  });
});

describe("candle history paging", () => {
  const opts = candleQueries.history("crypto.upbit.KRW-BTC", "1m");
  const page = (n: number, t0: number) => Array.from({ length: n }, (_, i) => ({ t: t0 + i * 60_000, o: 1, h: 1, l: 1, c: 1, v: 1 }));
  it("asks for the page before the oldest loaded candle while pages are full", () => {
    const full = page(CANDLE_PAGE, 1_000_000);
    expect(opts.getNextPageParam(full, [full], undefined, [undefined])).toBe(1_000_000);
  });
  it("stops at a short page (the start of history)", () => {
    expect(opts.getNextPageParam(page(10, 5), [page(10, 5)], undefined, [undefined])).toBeUndefined();
  });
});

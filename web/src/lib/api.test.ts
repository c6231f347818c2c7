import { describe, expect, it } from "vitest";
import { ApiError, shouldRetry } from "./api";

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

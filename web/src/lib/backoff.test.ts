import { describe, expect, it } from "vitest";
import { backoffDelay } from "./backoff";

const opts = { baseMs: 500, maxMs: 30_000 };

describe("backoffDelay", () => {
  it("doubles the cap each attempt, jittered within [cap/2, cap]", () => {
    expect(backoffDelay(0, opts, () => 0)).toBe(250);
    expect(backoffDelay(0, opts, () => 0.999999)).toBe(500);
    expect(backoffDelay(3, opts, () => 0)).toBe(2000);
    expect(backoffDelay(3, opts, () => 0.5)).toBe(3000);
  });
  it("never exceeds the maximum", () => {
    expect(backoffDelay(10, opts, () => 0.999999)).toBe(30_000);
    expect(backoffDelay(1000, opts, () => 0)).toBe(15_000);
  });
});

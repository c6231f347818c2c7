import { describe, expect, it } from "vitest";
import { freshness, looksLive, type FreshnessInput } from "./freshness";
import type { Quote } from "./types";

const NOW = 1_800_000_000_000;

function q(patch: Partial<Quote> = {}): Quote {
  return { id: "stock.krx.068270", price: 1, prev_close: 1, change: 0, change_rate: 0, volume: 0, day_volume: 0, ts: NOW - 1000, ingest_ts: NOW - 900, source: "kis", stale: false, market: "open", ...patch };
}

function input(patch: Partial<FreshnessInput> = {}): FreshnessInput {
  return { quote: q(), market: "krx", session: "open", sourceState: "up", connected: true, now: NOW, ...patch };
}

describe("freshness", () => {
  it("is live for a recent real quote in an open market", () => {
    expect(freshness(input())).toBe("live");
    expect(looksLive("live")).toBe(true);
  });
  it("labels the simulated source as sim, never live", () => {
    expect(freshness(input({ quote: q({ source: "sim", market: "sim" }), session: "closed" }))).toBe("sim");
    expect(freshness(input({ quote: q({ source: "sim", market: "sim", ts: NOW - 60_000 }) }))).toBe("stale");
  });
  it("is stale when the socket, the source or the edge says so", () => {
    expect(freshness(input({ connected: false }))).toBe("stale");
    expect(freshness(input({ sourceState: "down" }))).toBe("stale");
    expect(freshness(input({ quote: q({ stale: true }) }))).toBe("stale");
    expect(freshness(input({ quote: q({ ts: NOW - 5 * 60_000 }) }))).toBe("stale");
    expect(looksLive("stale")).toBe(false);
  });
  it("is closed outside the session, pre/post in extended hours", () => {
    expect(freshness(input({ session: "closed" }))).toBe("closed");
    expect(freshness(input({ quote: q({ market: "closed", ts: NOW - 3_600_000 }) }))).toBe("closed");
    expect(freshness(input({ quote: q({ market: "pre" }) }))).toBe("pre");
    // 17:00 in the NXT after-market with the 15:30 close as the last price: 시간외, not 지연.
    expect(freshness(input({ session: "post", quote: q({ market: "open", ts: NOW - 90 * 60_000 }) }))).toBe("post");
    expect(freshness(input({ session: "post", quote: q({ market: "post", stale: true }) }))).toBe("stale");
  });
  it("has no data without a quote", () => {
    expect(freshness(input({ quote: null }))).toBe("nodata");
  });
});

import { describe, expect, it } from "vitest";
import { minuteOf, parseReplayLine } from "./replay-api";

describe("replay NDJSON lines", () => {
  const tick = { id: "crypto.upbit.KRW-BTC", price: 1, prev_close: 1, change: 0, change_rate: 0, volume: 0, day_volume: null, ts: 5, ingest_ts: 6, source: "sim", stale: false, market: "sim" };
  it("reads tick lines", () => {
    expect(parseReplayLine(JSON.stringify({ type: "tick", seq: 3, tick }))).toEqual(tick);
  });
  it("skips news, errors, blanks and junk", () => {
    expect(parseReplayLine(JSON.stringify({ type: "news", seq: 4, news: {} }))).toBeNull();
    expect(parseReplayLine(JSON.stringify({ type: "error", code: "replay_interrupted", message: "x" }))).toBeNull();
    expect(parseReplayLine("")).toBeNull();
    expect(parseReplayLine("{not json")).toBeNull();
    expect(parseReplayLine(JSON.stringify({ type: "tick", tick: { id: "a", price: "1", ts: 1 } }))).toBeNull();
  });
  it("floors to the minute", () => {
    expect(minuteOf(125_000)).toBe(120_000);
  });
});

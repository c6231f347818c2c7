import { describe, expect, it } from "vitest";
import {
  DEFAULT_SPEED,
  fromKstInput,
  kstIso,
  kstText,
  parseReplaySearch,
  parseReplayTime,
  parseSpeed,
  REPLAY_SPEEDS,
  replayLink,
  toKstInput,
  withReplaySearch,
} from "./replay-url";

const T = Date.parse("2026-11-24T14:05:00+09:00"); // 05:05 UTC
const NOW = Date.parse("2026-11-25T02:00:00Z");

describe("speeds", () => {
  it("offers 1×, 10× and 60×", () => {
    expect(REPLAY_SPEEDS).toEqual([1, 10, 60]);
    expect(DEFAULT_SPEED).toBe(1);
  });
  it("parses the offered speeds in any spelling and nothing else", () => {
    expect(parseSpeed("10")).toBe(10);
    expect(parseSpeed("60x")).toBe(60);
    expect(parseSpeed("10×")).toBe(10);
    expect(parseSpeed(1)).toBe(1);
    for (const bad of ["0", "2", "-1", "1.5", "", "fast", "1e1", null, undefined, "600"]) expect(parseSpeed(bad)).toBeNull();
  });
});

describe("replay times", () => {
  it("reads epoch ms", () => {
    expect(parseReplayTime(String(T))).toBe(T);
  });
  it("reads ISO without a zone as KST", () => {
    expect(parseReplayTime("2026-11-24T14:05")).toBe(T);
    expect(parseReplayTime("2026-11-24 14:05:00")).toBe(T);
    expect(parseReplayTime("2026-11-24T14:05:00.250")).toBe(T + 250);
  });
  it("reads ISO with a zone as written", () => {
    expect(parseReplayTime("2026-11-24T05:05:00Z")).toBe(T);
    expect(parseReplayTime("2026-11-24T14:05:00+09:00")).toBe(T);
    expect(parseReplayTime("2026-11-24T00:05:00-0500")).toBe(T);
    // A typed `+` arrives as a space after query decoding.
    expect(parseReplayTime("2026-11-24T14:05:00 09:00")).toBe(T);
  });
  it("rejects junk and impossible dates", () => {
    for (const bad of ["", "yesterday", "2026-02-31T10:00", "2026-13-01T00:00", "2026-11-24T25:00", "123", "2026-11-24"]) {
      expect(parseReplayTime(bad)).toBeNull();
    }
  });
  it("prints KST both ways", () => {
    expect(kstText(T)).toBe("2026-11-24 14:05:00");
    expect(kstIso(T)).toBe("2026-11-24T14:05:00+09:00");
    expect(kstIso(T + 5)).toBe("2026-11-24T14:05:00.005+09:00");
    expect(toKstInput(T)).toBe("2026-11-24T14:05:00");
    expect(fromKstInput(toKstInput(T))).toBe(T);
    expect(fromKstInput("")).toBeNull();
  });
});

describe("replay links", () => {
  it("is none without a replay parameter", () => {
    expect(parseReplaySearch("?layout=abc", NOW)).toEqual({ kind: "none" });
  });
  it("reads start, speed and an optional end", () => {
    expect(parseReplaySearch(`?replay=${T}&speed=10`, NOW)).toEqual({ kind: "ok", params: { from: T, to: null, speed: 10 } });
    expect(parseReplaySearch("?replay=2026-11-24T14:05&speed=60&until=2026-11-24T15:05", NOW)).toEqual({
      kind: "ok",
      params: { from: T, to: T + 3600_000, speed: 60 },
    });
  });
  it("defaults an unsupported or missing speed to 1×", () => {
    expect(parseReplaySearch(`?replay=${T}&speed=7`, NOW)).toMatchObject({ params: { speed: 1 } });
    expect(parseReplaySearch(`?replay=${T}`, NOW)).toMatchObject({ params: { speed: 1 } });
  });
  it("refuses unreadable times, a start in the future, an end before the start", () => {
    expect(parseReplaySearch("?replay=soon", NOW)).toEqual({ kind: "invalid", reason: "time" });
    expect(parseReplaySearch(`?replay=${NOW + 1000}`, NOW)).toEqual({ kind: "invalid", reason: "future" });
    expect(parseReplaySearch(`?replay=${T}&until=${T - 1}`, NOW)).toEqual({ kind: "invalid", reason: "range" });
    expect(parseReplaySearch(`?replay=${T}&until=later`, NOW)).toEqual({ kind: "invalid", reason: "time" });
  });
  it("round-trips through the link it writes, keeping other parameters", () => {
    const params = { from: T, to: T + 600_000, speed: 60 as const };
    const search = withReplaySearch("?layout=L1&replay=old&speed=1", params);
    expect(new URLSearchParams(search).get("layout")).toBe("L1");
    expect(parseReplaySearch(search, NOW)).toEqual({ kind: "ok", params });
    expect(withReplaySearch(search, null)).toBe("?layout=L1");
    expect(withReplaySearch("?replay=x&speed=10", null)).toBe("");
  });
  it("makes an absolute link to the same replay", () => {
    const link = replayLink("http://host:8080/?layout=L1#top", { from: T, to: null, speed: 10 });
    const url = new URL(link);
    expect(url.origin + url.pathname).toBe("http://host:8080/");
    expect(url.hash).toBe("");
    expect(parseReplaySearch(url.search, NOW)).toEqual({ kind: "ok", params: { from: T, to: null, speed: 10 } });
    expect(url.searchParams.get("layout")).toBe("L1");
  });
});

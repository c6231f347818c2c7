import { describe, expect, it } from "vitest";
import { diffIds, parseServerFrame, socketUrl } from "./ws-protocol";

const q = {
  id: "crypto.upbit.KRW-BTC",
  price: 130250000,
  prev_close: 128900000,
  change: 1350000,
  change_rate: 0.010473,
  volume: 0.01,
  day_volume: 1234.5,
  ts: 1735777805000,
  ingest_ts: 1735777805012,
  source: "sim",
  stale: false,
  market: "sim",
};

describe("parseServerFrame", () => {
  it("parses a snapshot", () => {
    expect(parseServerFrame(JSON.stringify({ type: "snapshot", quotes: [q] }))).toEqual({
      type: "snapshot",
      quotes: [q],
    });
  });
  it("normalises a single tick to ticks", () => {
    expect(parseServerFrame(JSON.stringify({ type: "tick", ...q }))).toEqual({ type: "ticks", ticks: [q] });
  });
  it("parses a batch of ticks, dropping malformed ones", () => {
    const f = parseServerFrame(JSON.stringify({ type: "ticks", ticks: [q, { id: 1 }] }));
    expect(f).toEqual({ type: "ticks", ticks: [q] });
  });
  it("keeps replayed ticks apart from live ones", () => {
    expect(parseServerFrame(JSON.stringify({ type: "tick", replay: true, ...q }))).toEqual({ type: "replay", ticks: [q] });
    expect(parseServerFrame(JSON.stringify({ type: "ticks", replay: true, ticks: [q, { id: 1 }] }))).toEqual({ type: "replay", ticks: [q] });
    expect(parseServerFrame(JSON.stringify({ type: "ticks", ticks: [{ ...q, replay: true }] }))).toMatchObject({ type: "replay" });
    // A mixed batch: only the live ticks are live.
    const mixed = parseServerFrame(JSON.stringify({ type: "ticks", ticks: [{ ...q, replay: true }, { ...q, ts: 9 }] }));
    expect(mixed).toEqual({ type: "ticks", ticks: [{ ...q, ts: 9 }] });
  });
  it("parses replay_end", () => {
    expect(parseServerFrame('{"type":"replay_end","ids":["a",3],"count":12}')).toEqual({ type: "replay_end", ids: ["a"], count: 12 });
    expect(parseServerFrame('{"type":"replay_end"}')).toEqual({ type: "replay_end", ids: [], count: 0 });
  });
  it("keeps an error's code", () => {
    expect(parseServerFrame('{"type":"error","code":"not_supported","message":"no"}')).toEqual({ type: "error", code: "not_supported", message: "no" });
  });
  it("parses status and error", () => {
    expect(
      parseServerFrame(JSON.stringify({ type: "status", source: "upbit", state: "down", detail: "timeout", ts: 5 })),
    ).toEqual({ type: "status", status: { source: "upbit", state: "down", detail: "timeout", ts: 5 } });
    expect(parseServerFrame('{"type":"error","message":"unknown id"}')).toEqual({
      type: "error",
      message: "unknown id",
    });
  });
  it("returns null for junk", () => {
    expect(parseServerFrame("not json")).toBeNull();
    expect(parseServerFrame('{"type":"mystery"}')).toBeNull();
    expect(parseServerFrame("42")).toBeNull();
  });
});

describe("socketUrl", () => {
  it("follows the page protocol", () => {
    expect(socketUrl({ protocol: "http:", host: "localhost:8080" })).toBe("ws://localhost:8080/ws");
    expect(socketUrl({ protocol: "https:", host: "sise.example" })).toBe("wss://sise.example/ws");
  });
});

describe("news frames", () => {
  it("parses a news event and fills optional fields", () => {
    const f = parseServerFrame(
      JSON.stringify({ type: "news", id: "n1", source: "sim", title: "T", url: "https://x", published: 9, instruments: ["a.b.c", 3] }),
    );
    expect(f).toEqual({
      type: "news",
      news: { id: "n1", source: "sim", title: "T", summary: null, url: "https://x", image: null, published: 9, language: null, instruments: ["a.b.c"] },
    });
    expect(parseServerFrame('{"type":"news","id":"x"}')).toBeNull();
  });
});

describe("diffIds", () => {
  it("lists additions and removals in order, ignoring duplicates", () => {
    expect(diffIds(["a", "b", "c"], ["b", "d", "d", "a"])).toEqual({ add: ["d"], remove: ["c"] });
    expect(diffIds([], ["x"])).toEqual({ add: ["x"], remove: [] });
    expect(diffIds(["x"], ["x"])).toEqual({ add: [], remove: [] });
  });
});

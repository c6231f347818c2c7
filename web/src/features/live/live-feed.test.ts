import { QueryClient } from "@tanstack/react-query";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { newsQueries, quoteQueries, sourceQueries } from "@/lib/api";
import type { Quote } from "@/lib/types";
import { FakeSocket } from "./fake-socket";
import { LiveFeed } from "./live-feed";

function quote(id: string, price: number, ts: number): Quote {
  return { id, price, prev_close: 1, change: price - 1, change_rate: 0, volume: 1, day_volume: 10, ts, ingest_ts: ts, source: "sim", stale: false, market: "sim" };
}

const flushMicrotasks = () => new Promise<void>((r) => queueMicrotask(r));

describe("LiveFeed", () => {
  let frames: Array<() => void>;
  let qc: QueryClient;
  let loads: string[][];

  const makeFeed = () =>
    new LiveFeed({
      queryClient: qc,
      url: "ws://x/ws",
      schedule: (cb) => frames.push(cb),
      cancel: () => {},
      loadQuotes: async (ids) => {
        loads.push([...ids]);
        return [];
      },
    });

  beforeEach(() => {
    FakeSocket.all = [];
    vi.stubGlobal("WebSocket", FakeSocket);
    frames = [];
    qc = new QueryClient();
    loads = [];
  });
  afterEach(() => {
    vi.useRealTimers();
    vi.unstubAllGlobals();
  });

  it("subscribes what is retained, diffs on changes and unsubscribes on release", async () => {
    const feed = makeFeed();
    const releaseA = feed.retain(["a.b.1", "a.b.2"]);
    feed.start();
    const ws = FakeSocket.all[0]!;
    ws.serverOpen();
    expect(ws.ops()).toEqual([{ op: "subscribe", ids: ["a.b.1", "a.b.2"] }]);
    expect(loads).toEqual([["a.b.1", "a.b.2"]]);

    // A second component shows a.b.2 and a.b.3: only a.b.3 is new.
    const releaseB = feed.retain(["a.b.2", "a.b.3"]);
    await flushMicrotasks();
    expect(ws.ops().slice(1)).toEqual([{ op: "subscribe", ids: ["a.b.3"] }]);
    expect(loads.at(-1)).toEqual(["a.b.3"]);

    // The first goes away: a.b.2 is still shown by the second, so only a.b.1 is dropped.
    releaseA();
    releaseA();
    await flushMicrotasks();
    expect(ws.ops().slice(2)).toEqual([{ op: "unsubscribe", ids: ["a.b.1"] }]);
    releaseB();
    await flushMicrotasks();
    expect(ws.ops().slice(3)).toEqual([{ op: "unsubscribe", ids: ["a.b.2", "a.b.3"] }]);
    expect(feed.ids).toEqual([]);
    feed.stop();
  });

  it("writes snapshot and ticks into the query cache once per frame, newest wins", () => {
    const feed = makeFeed();
    feed.retain(["a.b.1"]);
    feed.start();
    const ws = FakeSocket.all[0]!;
    ws.serverOpen();
    const seen: number[][] = [];
    feed.onTicks("a.b.1", (ticks) => seen.push(ticks.map((t) => t.price)));

    ws.serverSend(JSON.stringify({ type: "snapshot", quotes: [quote("a.b.1", 100, 10)] }));
    ws.serverSend(JSON.stringify({ type: "ticks", ticks: [quote("a.b.1", 101, 11), quote("a.b.1", 102, 12)] }));
    ws.serverSend(JSON.stringify({ type: "tick", ...quote("a.b.1", 99, 9) }));
    expect(qc.getQueryData(quoteQueries.live("a.b.1").queryKey)).toBeUndefined();
    expect(frames).toHaveLength(1);
    frames.shift()!();
    expect(qc.getQueryData(quoteQueries.live("a.b.1").queryKey)?.price).toBe(102);
    expect(seen).toEqual([[101, 102], [99]]);

    // An older quote arriving later (e.g. a REST answer) never rolls the price back.
    ws.serverSend(JSON.stringify({ type: "snapshot", quotes: [quote("a.b.1", 50, 5)] }));
    frames.shift()!();
    expect(qc.getQueryData(quoteQueries.live("a.b.1").queryKey)?.price).toBe(102);
    feed.stop();
  });

  it("re-subscribes after a reconnect and fills the gap from REST", async () => {
    vi.useFakeTimers();
    const feed = makeFeed();
    feed.retain(["a.b.1", "a.b.2"]);
    feed.start();
    FakeSocket.all[0]!.serverOpen();
    const invalidate = vi.spyOn(qc, "invalidateQueries");
    const states: string[] = [];
    feed.subscribeState(() => states.push(feed.getState().status));

    FakeSocket.all[0]!.serverClose();
    expect(feed.getState().status).toBe("reconnecting");
    vi.advanceTimersByTime(60_000);
    const again = FakeSocket.all[1]!;
    again.serverOpen();
    expect(again.ops()).toEqual([{ op: "subscribe", ids: ["a.b.1", "a.b.2"] }]);
    expect(loads).toHaveLength(2);
    expect(invalidate).toHaveBeenCalledWith({ queryKey: ["candles"] });
    expect(states).toEqual(["reconnecting", "reconnecting", "open"]);
    feed.stop();
  });

  it("merges status and news events into their queries and keeps error frames", () => {
    const feed = makeFeed();
    feed.start();
    const ws = FakeSocket.all[0]!;
    ws.serverOpen();
    qc.setQueryData(newsQueries.list(null).queryKey, []);
    ws.serverSend(JSON.stringify({ type: "status", source: "sim", state: "degraded", detail: "slow", ts: 1 }));
    ws.serverSend(JSON.stringify({ type: "news", id: "n1", source: "sim", title: "T", url: "https://x", published: 5, instruments: ["a.b.1"] }));
    ws.serverSend(JSON.stringify({ type: "news", id: "n1", source: "sim", title: "T", url: "https://x", published: 5, instruments: [] }));
    ws.serverSend(JSON.stringify({ type: "error", code: "bad", message: "nope" }));
    expect(qc.getQueryData(sourceQueries.all().queryKey)).toMatchObject([{ source: "sim", state: "degraded" }]);
    expect(qc.getQueryData(newsQueries.list(null).queryKey)?.map((n) => n.id)).toEqual(["n1"]);
    expect(qc.getQueryData(newsQueries.list("a.b.1").queryKey)).toBeUndefined();
    expect(feed.getState().lastError).toBe("nope");
    feed.stop();
  });
});

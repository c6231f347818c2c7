// The replay against the real LiveFeed and LiveSocket, over the test WebSocket stand-in: what
// goes on the wire, what reaches the quote cache and the chart's tick listeners, and when.
import { QueryClient } from "@tanstack/react-query";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { FakeSocket } from "@/features/live/fake-socket";
import { LiveFeed } from "@/features/live/live-feed";
import { newsQueries, quoteQueries } from "@/lib/api";
import type { Quote } from "@/lib/types";
import { MAX_REPLAY_IDS, ReplayController, socketChannels } from "./replay-controller";
import { replayNewsQueries } from "./replay-news";
import { WINDOW_REAL_MS } from "./replay-session";

const A = "crypto.upbit.KRW-BTC";
const B = "stock.krx.005930";
const T0 = Date.parse("2026-11-24T14:05:00+09:00");
const WALL = T0 + 6 * 3600_000;

function quote(id: string, price: number, ts: number): Quote {
  return { id, price, prev_close: 1, change: price - 1, change_rate: 0, volume: 2, day_volume: 10, ts, ingest_ts: ts, source: "sim", stale: false, market: "sim" };
}
const tickFrame = (q: Quote, replay = false) => JSON.stringify({ type: "tick", ...q, ...(replay ? { replay: true } : {}) });
const flushMicrotasks = () => new Promise<void>((r) => queueMicrotask(r));

describe("ReplayController", () => {
  let frames: Array<() => void>;
  let qc: QueryClient;
  let now: number;
  let release: (() => void) | null;
  let feed: LiveFeed;
  let live: FakeSocket;

  const flush = () => {
    for (const f of frames.splice(0)) f();
  };
  const cached = (id: string) => qc.getQueryData(quoteQueries.live(id).queryKey) ?? null;
  const makeController = () =>
    new ReplayController({
      feed,
      channels: socketChannels("ws://x/ws"),
      now: () => now,
      setInterval: (cb) => {
        release = cb;
        return 1;
      },
      clearInterval: () => {
        release = null;
      },
    });
  /** Wall time passes; the controller's release timer fires; the feed draws its frame. */
  const advance = (ms: number) => {
    now += ms;
    release?.();
    flush();
  };

  beforeEach(async () => {
    FakeSocket.all = [];
    vi.stubGlobal("WebSocket", FakeSocket);
    frames = [];
    qc = new QueryClient();
    now = WALL;
    release = null;
    feed = new LiveFeed({ queryClient: qc, url: "ws://x/ws", schedule: (cb) => frames.push(cb), cancel: () => {}, loadQuotes: async () => [] });
    feed.retain([A, B]);
    feed.start();
    live = FakeSocket.all[0]!;
    live.serverOpen();
    await flushMicrotasks();
  });
  afterEach(() => {
    feed.stop();
    vi.useRealTimers();
    vi.unstubAllGlobals();
  });

  it("shows only replayed ticks, when their time comes, and keeps live ones for the way back", () => {
    live.serverSend(tickFrame(quote(A, 100, WALL - 5)));
    flush();
    expect(cached(A)?.price).toBe(100);
    const seen: number[] = [];
    feed.onTicks(A, (ts) => seen.push(...ts.map((t) => t.price)));

    const c = makeController();
    c.start({ from: T0, to: null, speed: 10 });
    expect(c.getSnapshot().view).toMatchObject({ status: "starting", params: { from: T0, speed: 10 } });
    // The screen no longer shows the live price.
    expect(cached(A)).toBeNull();

    // The replay has a socket of its own and asks for the first window on it.
    const rs = FakeSocket.all[1]!;
    rs.serverOpen();
    expect(rs.ops()).toEqual([{ op: "replay", ids: [A, B], from: T0, to: T0 + 10 * WINDOW_REAL_MS, speed: 10 }]);

    // Live frames keep coming on the live socket but change nothing on screen.
    live.serverSend(tickFrame(quote(A, 200, WALL + 10)));
    live.serverSend(JSON.stringify({ type: "snapshot", quotes: [quote(B, 70, WALL + 10)] }));
    flush();
    expect(cached(A)).toBeNull();
    expect(cached(B)).toBeNull();
    expect(seen).toEqual([]);

    // Replayed ticks wait for the replay clock (10× real time), then show.
    rs.serverSend(JSON.stringify({ type: "ticks", ticks: [{ ...quote(A, 150, T0 + 5_000), replay: true }, { ...quote(B, 60, T0 + 30_000), replay: true }] }));
    advance(0);
    expect(cached(A)).toBeNull();
    advance(600); // clock T0 + 6 s
    expect(cached(A)?.price).toBe(150);
    expect(cached(B)).toBeNull();
    expect(seen).toEqual([150]);
    advance(2_500); // clock T0 + 31 s
    expect(cached(B)?.price).toBe(60);
    expect(c.getSnapshot().view).toMatchObject({ status: "playing" });
    expect(c.clock()).toBe(T0 + 31_000);

    // A live frame flagged as replay on the LIVE socket is not replay data either.
    live.serverSend(tickFrame(quote(A, 999, T0 + 20_000), true));
    advance(0);
    expect(cached(A)?.price).toBe(150);

    // Back to live: the newest live quotes are on screen at once, the replay socket is closed.
    c.exit();
    expect(cached(A)?.price).toBe(200);
    expect(cached(B)?.price).toBe(70);
    expect(rs.readyState).toBe(3);
    expect(c.getSnapshot().view).toBeNull();
    live.serverSend(tickFrame(quote(A, 201, WALL + 20)));
    flush();
    expect(cached(A)?.price).toBe(201);
    expect(seen).toEqual([150, 201]);
  });

  it("asks for the next window on replay_end and ends at the chosen end", () => {
    const c = makeController();
    const span = 60 * WINDOW_REAL_MS;
    c.start({ from: T0, to: T0 + span + 60_000, speed: 60 });
    const rs = FakeSocket.all[1]!;
    rs.serverOpen();
    rs.serverSend(tickFrame({ ...quote(A, 5, T0 + 1000) }, true));
    // A replay the edge cancelled is not an end.
    rs.serverSend(JSON.stringify({ type: "replay_end", ids: [A, B], count: 0, cancelled: true }));
    expect(rs.ops()).toHaveLength(1);
    now += WINDOW_REAL_MS;
    rs.serverSend(JSON.stringify({ type: "replay_end", ids: [A, B], count: 1 }));
    expect(rs.ops()[1]).toEqual({ op: "replay", ids: [A, B], from: T0 + span, to: T0 + span + 60_000, speed: 60 });
    rs.serverSend(tickFrame(quote(A, 6, T0 + span + 5_000), true));
    now += 1000;
    rs.serverSend(JSON.stringify({ type: "replay_end", ids: [A, B], count: 1 }));
    flush();
    const view = c.getSnapshot().view!;
    expect(view).toMatchObject({ status: "ended", endedAt: "end", count: 2 });
    // Everything received is on screen, the clock stands at the end, the socket is closed.
    expect(cached(A)?.price).toBe(6);
    expect(c.clock()).toBe(T0 + span + 60_000);
    expect(rs.readyState).toBe(3);
  });

  it("splits many instruments over several sockets and waits for all before the next window", async () => {
    const many = Array.from({ length: 25 }, (_, i) => `crypto.upbit.KRW-C${i}`);
    feed.retain(many);
    await flushMicrotasks();
    const c = makeController();
    c.start({ from: T0, to: null, speed: 1 });
    expect(c.channelIds.map((ids) => ids.length)).toEqual([MAX_REPLAY_IDS, 27 - MAX_REPLAY_IDS]);
    const [r1, r2] = [FakeSocket.all[1]!, FakeSocket.all[2]!];
    r1.serverOpen();
    r2.serverOpen();
    now += WINDOW_REAL_MS;
    r1.serverSend(JSON.stringify({ type: "replay_end", ids: [], count: 0 }));
    expect(r1.ops()).toHaveLength(1);
    r2.serverSend(JSON.stringify({ type: "replay_end", ids: [], count: 0 }));
    expect(r1.ops()).toHaveLength(2);
    expect(r2.ops()).toHaveLength(2);
    expect((r2.ops()[1] as { from: number }).from).toBe(T0 + WINDOW_REAL_MS);
  });

  it("resumes after its last tick when its socket reconnects", () => {
    vi.useFakeTimers();
    const c = makeController();
    c.start({ from: T0, to: null, speed: 1 });
    const rs = FakeSocket.all[1]!;
    rs.serverOpen();
    rs.serverSend(tickFrame(quote(A, 5, T0 + 4000), true));
    rs.serverClose();
    vi.advanceTimersByTime(60_000);
    const again = FakeSocket.all[2]!;
    again.serverOpen();
    expect(again.ops()).toEqual([{ op: "replay", ids: [A, B], from: T0 + 4001, to: T0 + WINDOW_REAL_MS, speed: 1 }]);
    expect(c.getSnapshot().view?.status).toBe("playing");
  });

  it("gives an instrument shown mid-replay its own request from the replay time", async () => {
    const c = makeController();
    c.start({ from: T0, to: null, speed: 10 });
    FakeSocket.all[1]!.serverOpen();
    now += 3_000;
    feed.retain(["crypto.upbit.KRW-SOL"]);
    await flushMicrotasks();
    const extra = FakeSocket.all[2]!;
    extra.serverOpen();
    expect(extra.ops()).toEqual([{ op: "replay", ids: ["crypto.upbit.KRW-SOL"], from: T0 + 30_000, to: T0 + 10 * WINDOW_REAL_MS, speed: 10 }]);
  });

  it("reports an edge that refuses the replay, and ignores unknown ids", () => {
    const c = makeController();
    c.start({ from: T0, to: null, speed: 1 });
    const rs = FakeSocket.all[1]!;
    rs.serverOpen();
    rs.serverSend(JSON.stringify({ type: "error", code: "unknown_instrument", message: "unknown instruments: x" }));
    expect(c.getSnapshot().view?.status).toBe("starting");
    rs.serverSend(JSON.stringify({ type: "error", code: "not_supported", message: "replay is not available in this version yet" }));
    expect(c.getSnapshot().view).toMatchObject({ status: "error", error: "replay is not available in this version yet" });
    expect(rs.readyState).toBe(3);
  });

  it("opens a replay from a link, and says when a link cannot be used", () => {
    const c = makeController();
    expect(c.openLink("?layout=x")).toBe(false);
    expect(c.getSnapshot()).toMatchObject({ view: null, invalidLink: null });
    expect(c.openLink(`?replay=${WALL + 60_000}`)).toBe(false);
    expect(c.getSnapshot().invalidLink).toBe("future");
    expect(c.openLink(`?replay=${T0}&speed=60`)).toBe(true);
    expect(c.getSnapshot()).toMatchObject({ view: { params: { from: T0, to: null, speed: 60 } }, invalidLink: null });
  });

  it("a new replay replaces the running one (its sockets close)", () => {
    const c = makeController();
    c.start({ from: T0, to: null, speed: 1 });
    const first = FakeSocket.all[1]!;
    first.serverOpen();
    c.start({ from: T0 + 60_000, to: null, speed: 10 });
    expect(first.readyState).toBe(3);
    const second = FakeSocket.all[2]!;
    second.serverOpen();
    expect(second.ops()[0]).toMatchObject({ from: T0 + 60_000, speed: 10 });
    // A late frame from the first replay's socket changes nothing.
    first.serverSend(tickFrame(quote(A, 1, T0 + 70_000), true));
    advance(10_000);
    expect(cached(A)).toBeNull();
  });

  it("records where a replay starting before any data finds its first ticks (for the empty notice)", () => {
    const c = makeController();
    c.start({ from: T0, to: null, speed: 1 });
    const rs = FakeSocket.all[1]!;
    rs.serverOpen();
    expect(c.getSnapshot().ids).toEqual([A, B]);
    expect(c.getSnapshot().coverage.size).toBe(0);
    // The first window holds nothing: both are known to be empty up to its end, and the next is asked for.
    rs.serverSend(JSON.stringify({ type: "replay_end", ids: [A, B], count: 0 }));
    const w1 = T0 + WINDOW_REAL_MS;
    expect(c.getSnapshot().coverage.get(A)).toEqual({ first: null, scannedTo: w1 });
    expect(c.getSnapshot().coverage.get(B)).toEqual({ first: null, scannedTo: w1 });
    expect(rs.ops()).toHaveLength(2);
    // The next window has A's first tick, far ahead of the clock: it is recorded at once, shown later.
    rs.serverSend(tickFrame(quote(A, 7, w1 + 120_000), true));
    expect(c.getSnapshot().coverage.get(A)).toEqual({ first: w1 + 120_000, scannedTo: w1 });
    advance(1_000);
    expect(cached(A)).toBeNull();
    // A new replay forgets all that.
    c.start({ from: T0 + 1, to: null, speed: 1 });
    expect(c.getSnapshot().coverage.size).toBe(0);
    c.exit();
    expect(c.getSnapshot().ids).toEqual([]);
  });

  it("keeps live news out of the replay's news, and the live list current for the way back", () => {
    const c = makeController();
    c.start({ from: T0, to: null, speed: 1 });
    const past = replayNewsQueries.asOf(null, T0 + 60_000).queryKey;
    const old = { id: "old", source: "sim", title: "old", summary: null, url: "https://x/old", image: null, published: T0 - 60_000, language: "ko", instruments: [A] };
    qc.setQueryData(past, [old]);
    qc.setQueryData(newsQueries.list(null).queryKey, [old]);
    live.serverSend(JSON.stringify({ type: "news", id: "fresh", source: "sim", title: "fresh", url: "https://x/fresh", published: WALL, instruments: [A] }));
    expect(qc.getQueryData(past)?.map((n) => n.id)).toEqual(["old"]);
    expect(qc.getQueryData(newsQueries.list(null).queryKey)?.map((n) => n.id)).toEqual(["fresh", "old"]);
    c.exit();
  });
});

describe("ReplayController before the page shows anything", () => {
  beforeEach(() => {
    FakeSocket.all = [];
    vi.stubGlobal("WebSocket", FakeSocket);
  });
  afterEach(() => vi.unstubAllGlobals());

  it("waits for the first instruments on screen and starts its clock then", async () => {
    const qc = new QueryClient();
    let now = WALL;
    const feed = new LiveFeed({ queryClient: qc, url: "ws://x/ws", schedule: () => 0, cancel: () => {}, loadQuotes: async () => [] });
    const c = new ReplayController({ feed, channels: socketChannels("ws://x/ws"), now: () => now, setInterval: () => 1, clearInterval: () => {} });
    // A replay link: the controller starts before the feed and before any widget.
    c.start({ from: T0, to: null, speed: 60 });
    feed.start();
    FakeSocket.all[0]!.serverOpen();
    expect(c.channelIds).toEqual([]);
    now += 2_000; // the layout loads
    feed.retain([A]);
    await flushMicrotasks();
    expect(c.channelIds).toEqual([[A]]);
    expect(c.clock()).toBe(T0);
    const rs = FakeSocket.all[1]!;
    rs.serverOpen();
    expect(rs.ops()).toEqual([{ op: "replay", ids: [A], from: T0, to: T0 + 60 * WINDOW_REAL_MS, speed: 60 }]);
    feed.stop();
    c.exit();
  });
});

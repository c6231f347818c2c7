import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import type { ServerFrame } from "@/lib/ws-protocol";
import { FakeSocket } from "./fake-socket";
import { LiveSocket, type ConnectionState } from "./live-socket";

describe("LiveSocket", () => {
  beforeEach(() => {
    FakeSocket.all = [];
    vi.stubGlobal("WebSocket", FakeSocket);
    vi.useFakeTimers();
  });
  afterEach(() => {
    vi.useRealTimers();
    vi.unstubAllGlobals();
  });

  it("subscribes on open, parses frames, reconnects with backoff and re-subscribes", () => {
    const frames: ServerFrame[] = [];
    const states: ConnectionState[] = [];
    const socket = new LiveSocket({
      url: "ws://localhost:8080/ws",
      ids: ["stock.krx.068270", "crypto.upbit.KRW-BTC"],
      onFrame: (f) => frames.push(f),
      onState: (s) => states.push(s),
      backoff: { baseMs: 1000, maxMs: 8000 },
    });
    socket.start();
    expect(FakeSocket.all).toHaveLength(1);
    const first = FakeSocket.all[0]!;
    expect(first.url).toBe("ws://localhost:8080/ws");
    expect(states.at(-1)?.status).toBe("connecting");

    first.serverOpen();
    expect(states.at(-1)?.status).toBe("open");
    expect(JSON.parse(first.sent[0]!)).toEqual({
      op: "subscribe",
      ids: ["stock.krx.068270", "crypto.upbit.KRW-BTC"],
    });

    first.serverSend('{"type":"error","message":"nope"}');
    expect(frames).toEqual([{ type: "error", message: "nope" }]);

    first.serverClose();
    expect(states.at(-1)).toMatchObject({ status: "reconnecting", failures: 1 });
    // First retry is jittered within [base/2, base] = [500, 1000] ms.
    vi.advanceTimersByTime(499);
    expect(FakeSocket.all).toHaveLength(1);
    vi.advanceTimersByTime(501);
    expect(FakeSocket.all).toHaveLength(2);

    const second = FakeSocket.all[1]!;
    second.serverOpen();
    expect(JSON.parse(second.sent[0]!).op).toBe("subscribe");
    expect(states.at(-1)).toMatchObject({ status: "open", failures: 0 });

    socket.stop();
    second.serverClose();
    vi.advanceTimersByTime(60_000);
    expect(FakeSocket.all).toHaveLength(2);
  });
});

describe("LiveSocket.setIds", () => {
  beforeEach(() => {
    FakeSocket.all = [];
    vi.stubGlobal("WebSocket", FakeSocket);
    vi.useFakeTimers();
  });
  afterEach(() => {
    vi.useRealTimers();
    vi.unstubAllGlobals();
  });

  it("sends only the difference while open and the whole set after a reconnect", () => {
    const socket = new LiveSocket({ url: "ws://x/ws", ids: ["a.b.1", "a.b.2"], onFrame: () => {}, onState: () => {}, random: () => 0 });
    socket.start();
    const first = FakeSocket.all[0]!;
    // Changes before the socket opens are not sent; the open subscribes the current set.
    socket.setIds(["a.b.1", "a.b.3"]);
    expect(first.sent).toEqual([]);
    first.serverOpen();
    expect(first.ops()).toEqual([{ op: "subscribe", ids: ["a.b.1", "a.b.3"] }]);

    socket.setIds(["a.b.3", "a.b.4", "a.b.4"]);
    expect(first.ops().slice(1)).toEqual([
      { op: "unsubscribe", ids: ["a.b.1"] },
      { op: "subscribe", ids: ["a.b.4"] },
    ]);
    socket.setIds(["a.b.4", "a.b.3"]);
    expect(first.sent).toHaveLength(3);

    first.serverClose();
    vi.advanceTimersByTime(250);
    const second = FakeSocket.all[1]!;
    second.serverOpen();
    expect(second.ops()).toEqual([{ op: "subscribe", ids: ["a.b.4", "a.b.3"] }]);
    socket.stop();
  });

  it("caps the set at 200 ids and backs off longer after each failure", () => {
    const states: ConnectionState[] = [];
    const ids = Array.from({ length: 250 }, (_, i) => `a.b.${i}`);
    const socket = new LiveSocket({ url: "ws://x/ws", ids, onFrame: () => {}, onState: (s) => states.push(s), random: () => 0.999999, backoff: { baseMs: 100, maxMs: 1000 } });
    expect(socket.subscribed).toHaveLength(200);
    socket.start();
    const delays: number[] = [];
    for (let i = 0; i < 6; i++) {
      const now = Date.now();
      FakeSocket.all.at(-1)!.serverClose();
      const s = states.at(-1)!;
      delays.push(s.retryAt! - now);
      vi.advanceTimersByTime(s.retryAt! - now);
    }
    expect(delays).toEqual([100, 200, 400, 800, 1000, 1000]);
    expect(FakeSocket.all).toHaveLength(7);
    socket.stop();
  });
});

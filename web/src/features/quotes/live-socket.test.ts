import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import type { ServerFrame } from "@/lib/ws-protocol";
import { LiveSocket, type ConnectionState } from "./live-socket";

/** A stand-in for the browser WebSocket: records sends, lets the test open, message and close it. */
class FakeSocket {
  static readonly OPEN = 1;
  static all: FakeSocket[] = [];
  readyState = 0;
  sent: string[] = [];
  onopen: (() => void) | null = null;
  onmessage: ((ev: { data: unknown }) => void) | null = null;
  onclose: (() => void) | null = null;
  onerror: (() => void) | null = null;
  constructor(readonly url: string) {
    FakeSocket.all.push(this);
  }
  send(data: string) {
    this.sent.push(data);
  }
  close() {
    this.readyState = 3;
  }
  serverOpen() {
    this.readyState = 1;
    this.onopen?.();
  }
  serverSend(data: string) {
    this.onmessage?.({ data });
  }
  serverClose() {
    this.readyState = 3;
    this.onclose?.();
  }
}

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

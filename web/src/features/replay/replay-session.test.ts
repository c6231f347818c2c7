import { describe, expect, it } from "vitest";
import type { Quote } from "@/lib/types";
import { PRESENT_SLACK_MS, ReplaySession, WINDOW_REAL_MS } from "./replay-session";

const T0 = Date.parse("2026-11-24T14:05:00+09:00");
const q = (id: string, price: number, ts: number): Quote => ({
  id, price, prev_close: 1, change: price - 1, change_rate: 0, volume: 1, day_volume: 10, ts, ingest_ts: ts, source: "sim", stale: false, market: "sim",
});

describe("ReplaySession", () => {
  it("asks for a window of a few real minutes at its speed, never past the present or the end", () => {
    const now = T0 + 10 * 3600_000;
    expect(new ReplaySession({ from: T0, to: null, speed: 1 }, now).request(["a"])).toEqual({ op: "replay", ids: ["a"], from: T0, to: T0 + WINDOW_REAL_MS, speed: 1 });
    expect(new ReplaySession({ from: T0, to: null, speed: 60 }, now).state.windowTo).toBe(T0 + 60 * WINDOW_REAL_MS);
    expect(new ReplaySession({ from: T0, to: null, speed: 60 }, T0 + 120_000).state.windowTo).toBe(T0 + 120_000);
    expect(new ReplaySession({ from: T0, to: T0 + 60_000, speed: 10 }, now).state.windowTo).toBe(T0 + 60_000);
  });

  it("runs its clock at the speed, from the start, capped at the window's end", () => {
    const w = T0 + 86_400_000; // wall time: a day later
    const s = new ReplaySession({ from: T0, to: null, speed: 10 }, w);
    expect(s.clock(w)).toBe(T0);
    expect(s.clock(w + 1_000)).toBe(T0 + 10_000);
    expect(s.clock(w + 10 * WINDOW_REAL_MS)).toBe(s.state.windowTo);
  });

  it("holds replayed ticks until the clock reaches them, drops ticks outside the window", () => {
    const w = T0 + 86_400_000;
    const s = new ReplaySession({ from: T0, to: null, speed: 1 }, w);
    expect(s.state.status).toBe("starting");
    s.receive([q("a", 1, T0 + 500), q("a", 2, T0 + 3000), q("a", 9, T0 - 1), q("a", 9, s.state.windowTo)]);
    expect(s.state.status).toBe("playing");
    expect(s.heldCount).toBe(2);
    expect(s.due(w)).toEqual([]);
    expect(s.due(w + 1000).map((t) => t.price)).toEqual([1]);
    expect(s.state.count).toBe(1);
    expect(s.state.cursor).toBe(T0 + 500);
    expect(s.due(w + 3000).map((t) => t.price)).toEqual([2]);
    expect(s.state).toMatchObject({ count: 2, cursor: T0 + 3000 });
  });

  it("moves window by window with a continuous clock, then ends at the chosen end", () => {
    const span = 10 * WINDOW_REAL_MS;
    const s = new ReplaySession({ from: T0, to: T0 + span + 60_000, speed: 10 }, 0);
    expect(s.state.windowTo).toBe(T0 + span);
    // The edge finished a little early: the clock goes on from where it was.
    const at = WINDOW_REAL_MS - 2000;
    const before = s.clock(at);
    expect(s.onEnd(at)).toBe(true);
    expect(s.state).toMatchObject({ windowFrom: T0 + span, windowTo: T0 + span + 60_000 });
    expect(s.clock(at)).toBe(before);
    expect(s.clock(at + 1000)).toBe(before + 10_000);
    expect(s.onEnd(at + 7000)).toBe(false);
    expect(s.state).toMatchObject({ status: "ended", endedAt: "end" });
    expect(s.clock(at + 99_000)).toBe(T0 + span + 60_000);
  });

  it("ends when it catches up with the present", () => {
    const now = T0 + 30_000;
    const s = new ReplaySession({ from: T0, to: null, speed: 60 }, now);
    expect(s.state.windowTo).toBe(now);
    expect(s.onEnd(now + PRESENT_SLACK_MS / 2)).toBe(false);
    expect(s.state).toMatchObject({ status: "ended", endedAt: "present" });
  });

  it("asks a resumed channel from a later point inside the window only", () => {
    const s = new ReplaySession({ from: T0, to: null, speed: 1 }, T0 + 3600_000);
    expect(s.request(["a"], T0 + 1234).from).toBe(T0 + 1234);
    expect(s.request(["a"], T0 - 5).from).toBe(T0);
    expect(s.request(["a"], T0 + 10 * WINDOW_REAL_MS).from).toBe(s.state.windowTo);
  });

  it("stops on failure and forgets what it held", () => {
    const s = new ReplaySession({ from: T0, to: null, speed: 1 }, 0);
    s.receive([q("a", 1, T0 + 10)]);
    s.fail("replay is not available");
    expect(s.state).toMatchObject({ status: "error", error: "replay is not available" });
    expect(s.active).toBe(false);
    expect(s.due(1e9)).toEqual([]);
    s.receive([q("a", 1, T0 + 10)]);
    expect(s.heldCount).toBe(0);
  });
});

// The state of one 시점 재생 (replay), as pure logic: which window of the past to ask the edge for
// next, what the replay clock reads, which replayed ticks are due on screen, and when it is over.
//
// The edge paces a replay server-side (`{"op":"replay","ids","from","to","speed"}` → tick frames
// with `"replay":true`, then `replay_end`), relative to the first tick it finds, so a tick may
// come a little before its time. The session keeps its own clock (start + elapsed × speed) and
// holds every tick until the clock reaches its exchange time: the screen never shows a price
// from the replay's future, whichever way the edge's pacing drifts. A long replay is asked for
// window by window: each covers a few minutes of real time at the chosen speed, and the next is
// asked for when every channel says the last one ended. A replay without an end runs until it
// reaches the present (at 1× it stays the same distance behind, like a delayed broadcast).
import type { Quote } from "@/lib/types";
import type { ReplayParams } from "./replay-url";

/** Real time one requested window lasts when played at its speed. */
export const WINDOW_REAL_MS = 5 * 60_000;
/** A replay this close to the present has caught up with live. */
export const PRESENT_SLACK_MS = 1_000;
/** Most ticks held back waiting for the clock (the edge's backpressure keeps it far below). */
export const MAX_HELD = 50_000;

export type ReplayStatus = "starting" | "playing" | "ended" | "error";

export interface ReplayRequest {
  op: "replay";
  ids: string[];
  from: number;
  to: number;
  speed: number;
}

/** What the UI shows of a replay. */
export interface ReplayView {
  params: ReplayParams;
  status: ReplayStatus;
  /** Replayed ticks shown so far. */
  count: number;
  /** Exchange time of the newest replayed tick shown, if any. */
  cursor: number | null;
  /** The window being played, epoch ms, `[from, to)`. */
  windowFrom: number;
  windowTo: number;
  /** Why it ended: the chosen end was reached, or it caught up with the present. */
  endedAt: "end" | "present" | null;
  error: string | null;
}

export class ReplaySession {
  private view: ReplayView;
  /** Clock anchor: replay time `anchorReplay` was current at wall time `anchorWall`. */
  private anchorWall: number;
  private anchorReplay: number;
  /** Received ticks not yet due, in arrival order. */
  private held: Quote[] = [];

  constructor(
    readonly params: ReplayParams,
    now: number,
  ) {
    const to = this.windowEnd(params.from, now);
    this.view = { params, status: "starting", count: 0, cursor: null, windowFrom: params.from, windowTo: to, endedAt: null, error: null };
    this.anchorWall = now;
    this.anchorReplay = params.from;
  }

  get state(): ReplayView {
    return this.view;
  }

  get active(): boolean {
    return this.view.status === "starting" || this.view.status === "playing";
  }

  /** Ticks received and waiting for the clock. */
  get heldCount(): number {
    return this.held.length;
  }

  /** The op that asks for the current window, from `from` (a resumed channel) or its start. */
  request(ids: readonly string[], from = this.view.windowFrom): ReplayRequest {
    const f = Math.min(Math.max(from, this.view.windowFrom), this.view.windowTo);
    return { op: "replay", ids: [...ids], from: f, to: this.view.windowTo, speed: this.params.speed };
  }

  /** How much of the past one window covers at this speed. */
  static span(speed: number): number {
    return WINDOW_REAL_MS * Math.max(1, speed);
  }

  private windowEnd(from: number, now: number): number {
    const end = this.params.to ?? now;
    return Math.max(from + 1, Math.min(from + ReplaySession.span(this.params.speed), end));
  }

  /** The replay clock at wall time `now`: start + elapsed × speed, never past the current window. */
  clock(now: number): number {
    const v = this.view;
    if (v.status === "ended") return v.windowTo;
    if (v.status === "error") return v.cursor ?? v.params.from;
    const t = this.anchorReplay + Math.max(0, now - this.anchorWall) * this.params.speed;
    return Math.min(t, v.windowTo);
  }

  /** Takes replayed ticks from the edge; those of the current window wait for `due`. */
  receive(ticks: readonly Quote[]): void {
    if (!this.active) return;
    const v = this.view;
    for (const t of ticks) if (t.ts >= v.windowFrom && t.ts < v.windowTo) this.held.push(t);
    // Never grow without bound: past the cap, the oldest are shown at once.
    if (this.held.length > MAX_HELD) this.held.sort((a, b) => a.ts - b.ts);
    if (v.status === "starting") this.view = { ...v, status: "playing" };
  }

  /** The held ticks whose time has come at wall time `now`, oldest first. */
  due(now: number): Quote[] {
    if (this.held.length === 0) return [];
    const clock = this.clock(now);
    const out: Quote[] = [];
    const keep: Quote[] = [];
    const overflow = this.held.length - MAX_HELD;
    this.held.forEach((t, i) => (t.ts <= clock || i < overflow ? out : keep).push(t));
    if (out.length === 0) return out;
    this.held = keep;
    out.sort((a, b) => a.ts - b.ts);
    const v = this.view;
    const cursor = Math.max(v.cursor ?? -Infinity, out[out.length - 1]!.ts);
    this.view = { ...v, count: v.count + out.length, cursor };
    return out;
  }

  /**
   * Every channel finished the window: moves to the next one and returns true (ask for it), or
   * returns false when the replay is over. Ticks still held stay and come due as the clock moves.
   */
  onEnd(now: number): boolean {
    if (!this.active) return false;
    const v = this.view;
    const end = this.params.to;
    const shown = this.clock(now);
    if (end !== null && v.windowTo >= end) {
      this.view = { ...v, status: "ended", endedAt: "end" };
      return false;
    }
    if (end === null && v.windowTo >= now - PRESENT_SLACK_MS) {
      this.view = { ...v, status: "ended", endedAt: "present" };
      return false;
    }
    const from = v.windowTo;
    const to = this.windowEnd(from, now);
    // The clock goes on from where it is (it waited at the window's end if the edge was slow).
    this.anchorWall = now;
    this.anchorReplay = shown;
    this.view = { ...v, status: v.status === "starting" ? "playing" : v.status, windowFrom: from, windowTo: to };
    return true;
  }

  /** What is left on screen to show once the replay is over (everything held). */
  drain(): Quote[] {
    const out = this.held.sort((a, b) => a.ts - b.ts);
    this.held = [];
    if (out.length > 0) {
      const v = this.view;
      this.view = { ...v, count: v.count + out.length, cursor: Math.max(v.cursor ?? -Infinity, out[out.length - 1]!.ts) };
    }
    return out;
  }

  /**
   * Starts the clock over from the window's start (nothing was asked for yet: the page had no
   * instruments on screen when the replay began).
   */
  restartClock(now: number): void {
    if (!this.active || this.view.count > 0 || this.held.length > 0) return;
    this.anchorWall = now;
    this.anchorReplay = this.view.windowFrom;
  }

  /** The edge refused the replay or could not read it. */
  fail(message: string): void {
    if (!this.active) return;
    this.held = [];
    this.view = { ...this.view, status: "error", error: message };
  }
}

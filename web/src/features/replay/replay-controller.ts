// Runs a 시점 재생 beside the page's live feed. The live socket is left alone (its subscription
// keeps flowing, parked by the feed, so going back to live is instant); the replay has sockets of
// its own, one per group of at most `MAX_REPLAY_IDS` instruments (the edge's limit per replay),
// each asking for the same window. Replayed ticks go through the session's clock into the feed
// (`applyReplayTicks`), so the quotes and charts show the past as it happened. When every channel
// has ended a window the next is asked for; a channel that reconnects resumes after its last
// tick; instruments that appear on screen mid-replay get a channel from the current replay time.
// A small external store (subscribe / getSnapshot) for React; no globals.
import type { ReplayHook } from "@/features/live/live-feed";
import { LiveSocket } from "@/features/live/live-socket";
import type { Quote } from "@/lib/types";
import type { ClientOp, ServerFrame } from "@/lib/ws-protocol";
import { withScanned, withTicks, type Coverages } from "./replay-gaps";
import { ReplaySession, type ReplayView } from "./replay-session";
import { parseReplaySearch, type ReplayParams } from "./replay-url";

/** Most instruments the edge replays in one op. */
export const MAX_REPLAY_IDS = 20;
/** How often held ticks are checked against the replay clock. */
export const RELEASE_MS = 100;

/** What React renders: the replay (null while live) and a replay link that could not be used. */
export interface ReplaySnapshot {
  view: ReplayView | null;
  invalidLink: "time" | "future" | "range" | null;
  /** The instruments this replay was asked for (kept after it ends). */
  ids: readonly string[];
  /** Per instrument: its first replayed tick and how far finished windows looked (replay-gaps). */
  coverage: Coverages;
}

const NO_COVERAGE: Coverages = new Map();

/** The part of the LiveFeed a replay needs. */
export interface ReplayFeed {
  readonly ids: string[];
  enterReplay(hook: ReplayHook): void;
  exitReplay(): void;
  applyReplayTicks(ticks: readonly Quote[]): void;
}

/** One replay connection: opened by the controller, closed for good by `close`. */
export interface ReplayChannelSocket {
  send(op: ClientOp): boolean;
  close(): void;
}

export type ChannelFactory = (handlers: {
  onFrame: (frame: ServerFrame) => void;
  /** Called on every (re)open. */
  onOpen: () => void;
}) => ReplayChannelSocket;

/** A channel over the edge's `/ws` (reconnecting with the live socket's backoff). */
export function socketChannels(url: string): ChannelFactory {
  return ({ onFrame, onOpen }) => {
    const s = new LiveSocket({ url, ids: [], onFrame, onState: () => {}, onOpen: () => onOpen() });
    s.start();
    return { send: (op) => s.send(op), close: () => s.stop() };
  };
}

interface Channel {
  ids: string[];
  socket: ReplayChannelSocket;
  /** The window request is out and its `replay_end` has not come yet. */
  running: boolean;
  /** It has ended the current window. */
  done: boolean;
  /** Newest tick time received on this channel (to resume after a reconnect). */
  cursor: number | null;
  /** Start the next request here (a channel added mid-window starts at the replay clock). */
  startAt: number | null;
}

export interface ReplayControllerOptions {
  feed: ReplayFeed;
  channels: ChannelFactory;
  now?: () => number;
  /** Timer for releasing held ticks (tests pass fakes). */
  setInterval?: (cb: () => void, ms: number) => unknown;
  clearInterval?: (h: unknown) => void;
}

export class ReplayController implements ReplayHook {
  private session: ReplaySession | null = null;
  private channels: Channel[] = [];
  private timer: unknown = null;
  private snapshot: ReplaySnapshot = { view: null, invalidLink: null, ids: [], coverage: NO_COVERAGE };
  private coverage: Coverages = NO_COVERAGE;
  private replayIds: readonly string[] = [];
  private readonly listeners = new Set<() => void>();
  private readonly now: () => number;

  constructor(private readonly opts: ReplayControllerOptions) {
    this.now = opts.now ?? Date.now;
  }

  subscribe = (l: () => void): (() => void) => {
    this.listeners.add(l);
    return () => this.listeners.delete(l);
  };

  getSnapshot = (): ReplaySnapshot => this.snapshot;

  /** The replay clock (epoch ms), or null while live. */
  clock(): number | null {
    return this.session ? this.session.clock(this.now()) : null;
  }

  /** The instruments each replay channel carries (for tests and diagnostics). */
  get channelIds(): string[][] {
    return this.channels.map((c) => [...c.ids]);
  }

  /** Starts the replay a page link asks for (`?replay=…&speed=…`); returns whether it did. */
  openLink(search: string): boolean {
    const r = parseReplaySearch(search, this.now());
    if (r.kind === "none") return false;
    if (r.kind === "invalid") {
      this.snapshot = { ...this.snapshot, invalidLink: r.reason };
      this.emit();
      return false;
    }
    this.start(r.params);
    return true;
  }

  /** Forgets a bad-link notice. */
  dismissInvalidLink(): void {
    this.snapshot = { ...this.snapshot, invalidLink: null };
    this.emit();
  }

  start(params: ReplayParams): void {
    this.closeChannels();
    this.snapshot = { ...this.snapshot, invalidLink: null };
    this.session = new ReplaySession(params, this.now());
    this.coverage = NO_COVERAGE;
    this.replayIds = [];
    this.opts.feed.enterReplay(this);
    this.addChannels(this.opts.feed.ids);
    if (this.timer === null) {
      const set = this.opts.setInterval ?? ((cb: () => void, ms: number) => setInterval(cb, ms));
      this.timer = set(() => this.release(), RELEASE_MS);
    }
    this.emit();
  }

  /** Back to live: the replay's sockets close (the edge stops reading), the feed shows live. */
  exit(): void {
    if (!this.session) return;
    this.closeChannels();
    this.stopTimer();
    this.session = null;
    this.opts.feed.exitReplay();
    this.emit();
  }

  onIdsChange(ids: readonly string[]): void {
    const s = this.session;
    if (!s?.active) return;
    if (this.channels.length === 0) {
      // The first instruments on screen (a replay link opens before the layout has loaded): the
      // replay begins now, from its start.
      if (ids.length === 0) return;
      s.restartClock(this.now());
      this.addChannels(ids);
      this.emit();
      return;
    }
    const have = new Set(this.channels.flatMap((c) => c.ids));
    const fresh = ids.filter((id) => !have.has(id));
    if (fresh.length > 0) this.addChannels(fresh, Math.floor(s.clock(this.now())));
  }

  /** Releases the ticks whose time has come to the feed. */
  release(): void {
    const s = this.session;
    if (!s) return;
    const due = s.due(this.now());
    if (due.length === 0) return;
    this.opts.feed.applyReplayTicks(due);
    // The banner's tick count: a few updates a second are plenty.
    const now = this.now();
    if (now - this.lastEmit >= 500) this.emit();
  }

  private lastEmit = 0;

  private addChannels(ids: readonly string[], startAt: number | null = null): void {
    const unique = [...new Set(ids)];
    for (let i = 0; i < unique.length; i += MAX_REPLAY_IDS) {
      const ch: Channel = { ids: unique.slice(i, i + MAX_REPLAY_IDS), socket: null as unknown as ReplayChannelSocket, running: false, done: false, cursor: null, startAt };
      ch.socket = this.opts.channels({
        onFrame: (f) => this.onFrame(ch, f),
        onOpen: () => this.onOpen(ch),
      });
      this.channels.push(ch);
    }
    const known = new Set(this.replayIds);
    const added = unique.filter((id) => !known.has(id));
    if (added.length > 0) this.replayIds = [...this.replayIds, ...added];
  }

  private closeChannels(): void {
    const old = this.channels;
    this.channels = [];
    for (const c of old) c.socket.close();
  }

  private stopTimer(): void {
    if (this.timer === null) return;
    (this.opts.clearInterval ?? ((h: unknown) => clearInterval(h as ReturnType<typeof setInterval>)))(this.timer);
    this.timer = null;
  }

  private request(ch: Channel): void {
    const s = this.session;
    if (!s?.active || ch.done) return;
    const from = ch.cursor !== null ? ch.cursor + 1 : (ch.startAt ?? s.state.windowFrom);
    ch.running = ch.socket.send(s.request(ch.ids, from));
  }

  private onOpen(ch: Channel): void {
    if (!this.channels.includes(ch)) return;
    // A new connection: whatever the edge was replaying on the old one is gone.
    ch.running = false;
    this.request(ch);
  }

  private onFrame(ch: Channel, frame: ServerFrame): void {
    const s = this.session;
    if (!s || !this.channels.includes(ch)) return;
    switch (frame.type) {
      case "replay": {
        if (!ch.running) return;
        for (const t of frame.ticks) if (ch.cursor === null || t.ts > ch.cursor) ch.cursor = t.ts;
        const before = s.state.status;
        s.receive(frame.ticks);
        const coverage = withTicks(this.coverage, frame.ticks, s.params.from);
        const changed = coverage !== this.coverage;
        this.coverage = coverage;
        if (s.state.status !== before || changed) this.emit();
        return;
      }
      case "replay_end": {
        // A replay the edge stopped because a newer op replaced it is not the end of anything.
        if (frame.cancelled || !ch.running) return;
        if (frame.error) {
          this.fail(frame.error);
          return;
        }
        ch.running = false;
        ch.done = true;
        this.coverage = withScanned(this.coverage, ch.ids, s.state.windowTo);
        this.maybeNextWindow();
        return;
      }
      case "error":
        // Unknown ids are dropped by the edge and the rest replayed; anything else is the end.
        if (frame.code === "unknown_instrument") return;
        this.fail(frame.message);
        return;
      default:
        return;
    }
  }

  private maybeNextWindow(): void {
    const s = this.session;
    if (!s || this.channels.some((c) => !c.done)) return;
    const next = s.onEnd(this.now());
    for (const c of this.channels) {
      c.done = false;
      c.cursor = null;
      c.startAt = null;
    }
    if (next) for (const c of this.channels) this.request(c);
    else {
      this.closeChannels();
      const rest = s.due(this.now());
      if (rest.length > 0) this.opts.feed.applyReplayTicks(rest);
    }
    this.emit();
  }

  private fail(message: string): void {
    const s = this.session;
    if (!s?.active) return;
    s.fail(message);
    this.closeChannels();
    this.emit();
  }

  private emit(): void {
    this.lastEmit = this.now();
    const view = this.session ? this.session.state : null;
    const coverage = this.session ? this.coverage : NO_COVERAGE;
    const ids = this.session ? this.replayIds : [];
    if (view !== this.snapshot.view || coverage !== this.snapshot.coverage || ids !== this.snapshot.ids) {
      this.snapshot = { ...this.snapshot, view, coverage, ids };
    }
    for (const l of this.listeners) l();
  }
}

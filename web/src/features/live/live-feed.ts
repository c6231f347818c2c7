// The page's one live-data manager. Components `retain` the instruments they show (reference
// counted); the feed keeps the socket's subscription set equal to what is on screen, writes
// snapshots and ticks into the TanStack Query cache through the `quoteQueries` factory, batched
// once per animation frame (latest tick per instrument wins), merges source status and news
// events into their queries, and after a reconnect fills the gap from REST (quotes, and candles
// by invalidating them). Raw ticks are also handed to per-instrument listeners (the chart's live
// candle needs every trade's volume, not just the latest quote).
//
// Replay mode (시점 재생, driven by features/replay on sockets of its own): while a `ReplayHook` is
// set, the cache and the tick listeners are fed only by replayed ticks (`applyReplayTicks`); live
// snapshots, ticks and REST quotes keep arriving on this socket's subscription but are parked in a
// shadow map, so leaving replay puts the live state back at once.
import type { QueryClient } from "@tanstack/react-query";
import { getQuotes, newsQueries, quoteQueries, sourceQueries } from "@/lib/api";
import type { NewsItem, Quote, SourceInfo, SourceStatus } from "@/lib/types";
import type { ServerFrame } from "@/lib/ws-protocol";
import { LiveSocket, type ConnectionState } from "./live-socket";

export interface FeedState extends ConnectionState {
  /** The last error frame from the edge, if any. */
  lastError: string | null;
}

export interface LiveFeedOptions {
  queryClient: QueryClient;
  url: string;
  /** Frame scheduler; `requestAnimationFrame` in the browser. */
  schedule?: (cb: () => void) => number;
  cancel?: (handle: number) => void;
  /** REST quote loader (first load and gap fill); `getQuotes` by default. */
  loadQuotes?: (ids: readonly string[]) => Promise<Quote[]>;
  /** Socket factory, for tests. */
  createSocket?: (opts: ConstructorParameters<typeof LiveSocket>[0]) => LiveSocket;
}

type TickListener = (ticks: readonly Quote[]) => void;

/** The replay owner, told what it needs to know while in replay mode. */
export interface ReplayHook {
  /** The retained ids changed (a widget or symbol appeared or went away). */
  onIdsChange(ids: readonly string[]): void;
}

export class LiveFeed {
  private readonly refs = new Map<string, number>();
  private readonly listeners = new Map<string, Set<TickListener>>();
  private readonly stateListeners = new Set<() => void>();
  private pending = new Map<string, Quote>();
  private frame: number | null = null;
  private syncQueued = false;
  /** Newly shown ids whose first quote is fetched over REST with the next sync. */
  private readonly restPending = new Set<string>();
  private socket: LiveSocket | null = null;
  private state: FeedState = { status: "connecting", failures: 0, retryAt: null, lastError: null };
  private replay: ReplayHook | null = null;
  /** Live quotes that arrived during replay mode, latest per id. */
  private shadow = new Map<string, Quote>();

  constructor(private readonly opts: LiveFeedOptions) {}

  start(): void {
    if (this.socket) return;
    const make = this.opts.createSocket ?? ((o) => new LiveSocket(o));
    this.socket = make({
      url: this.opts.url,
      ids: [...this.refs.keys()],
      onFrame: (f) => this.onFrame(f),
      onState: (s) => this.setState({ ...s }),
      onOpen: (reconnected) => {
        if (reconnected) this.fillGap();
      },
    });
    this.socket.start();
    if (this.refs.size > 0) void this.loadRest([...this.refs.keys()]);
  }

  stop(): void {
    this.socket?.stop();
    this.socket = null;
    if (this.frame !== null) this.opts.cancel?.(this.frame);
    this.frame = null;
  }

  retryNow(): void {
    this.socket?.retryNow();
  }

  /** Shows `ids` on screen: subscribes them until the returned release is called. */
  retain(ids: readonly string[]): () => void {
    const added: string[] = [];
    for (const id of ids) {
      const n = this.refs.get(id) ?? 0;
      this.refs.set(id, n + 1);
      if (n === 0) added.push(id);
    }
    if (added.length > 0) {
      if (this.socket) for (const id of added) this.restPending.add(id);
      this.queueSync();
    }
    let released = false;
    return () => {
      if (released) return;
      released = true;
      for (const id of ids) {
        const n = this.refs.get(id) ?? 0;
        if (n <= 1) this.refs.delete(id);
        else this.refs.set(id, n - 1);
      }
      this.queueSync();
    };
  }

  /** The ids currently retained (what the socket is, or will be, subscribed to). */
  get ids(): string[] {
    return [...this.refs.keys()];
  }

  /** Every raw tick of `id`, as it arrives. */
  onTicks(id: string, listener: TickListener): () => void {
    let set = this.listeners.get(id);
    if (!set) this.listeners.set(id, (set = new Set()));
    set.add(listener);
    return () => {
      set.delete(listener);
      if (set.size === 0) this.listeners.delete(id);
    };
  }

  getState = (): FeedState => this.state;

  /** Whether replay mode is on. */
  get replaying(): boolean {
    return this.replay !== null;
  }

  /**
   * Enters replay mode: the quotes on screen are cleared (the replay fills them) after being
   * parked with the live ones, and from now on only `applyReplayTicks` writes quotes and candles.
   */
  enterReplay(hook: ReplayHook): void {
    const qc = this.opts.queryClient;
    if (this.replay === null) {
      for (const [key, q] of qc.getQueriesData<Quote | null>({ queryKey: ["quotes", "live"] })) {
        const id = key[2];
        if (q && typeof id === "string") this.park(q);
      }
      for (const q of this.pending.values()) this.park(q);
    }
    this.pending = new Map();
    this.replay = hook;
    qc.setQueriesData<Quote | null>({ queryKey: ["quotes", "live"] }, null);
  }

  /** Back to live: the parked live quotes go on screen now, and candles are fetched afresh. */
  exitReplay(): void {
    if (this.replay === null) return;
    this.replay = null;
    const qc = this.opts.queryClient;
    const parked = this.shadow;
    this.shadow = new Map();
    this.pending = new Map();
    qc.setQueriesData<Quote | null>({ queryKey: ["quotes", "live"] }, null);
    for (const [id, q] of parked) qc.setQueryData(quoteQueries.live(id).queryKey, q);
    const missing = [...this.refs.keys()].filter((id) => !parked.has(id));
    if (missing.length > 0) void this.loadRest(missing);
    void qc.invalidateQueries({ queryKey: ["candles"] });
  }

  /** Replayed ticks → the cache and the tick listeners (only in replay mode). */
  applyReplayTicks(ticks: readonly Quote[]): void {
    if (this.replay === null || ticks.length === 0) return;
    this.queue(ticks);
    this.notify(ticks);
  }

  private park(q: Quote): void {
    const have = this.shadow.get(q.id);
    if (!have || have.ts <= q.ts) this.shadow.set(q.id, q);
  }

  subscribeState = (listener: () => void): (() => void) => {
    this.stateListeners.add(listener);
    return () => this.stateListeners.delete(listener);
  };

  private setState(patch: Partial<FeedState>): void {
    this.state = { ...this.state, ...patch };
    for (const l of this.stateListeners) l();
  }

  /**
   * Subscription changes are coalesced: many retains/releases in one render become one diff,
   * and one REST request for the first quotes of what became visible.
   */
  private queueSync(): void {
    if (this.syncQueued) return;
    this.syncQueued = true;
    queueMicrotask(() => {
      this.syncQueued = false;
      if (!this.socket) return;
      this.socket.setIds([...this.refs.keys()]);
      this.replay?.onIdsChange([...this.refs.keys()]);
      const fresh = [...this.restPending].filter((id) => this.refs.has(id));
      this.restPending.clear();
      if (fresh.length > 0) void this.loadRest(fresh);
    });
  }

  private async loadRest(ids: readonly string[]): Promise<void> {
    try {
      const quotes = await (this.opts.loadQuotes ?? getQuotes)(ids);
      this.enqueue(quotes);
    } catch {
      // the socket's snapshot or the connection banner covers this
    }
  }

  private fillGap(): void {
    void this.loadRest([...this.refs.keys()]);
    void this.opts.queryClient.invalidateQueries({ queryKey: ["candles"] });
    void this.opts.queryClient.invalidateQueries({ queryKey: ["sources"] });
  }

  private onFrame(frame: ServerFrame): void {
    switch (frame.type) {
      case "snapshot":
        this.enqueue(frame.quotes);
        break;
      case "ticks":
        this.enqueue(frame.ticks);
        if (this.replay === null) this.notify(frame.ticks);
        break;
      case "replay":
      case "replay_end":
        // Replays run on sockets of their own (features/replay); never mixed into live data.
        break;
      case "status":
        this.applyStatus(frame.status);
        break;
      case "news":
        this.applyNews(frame.news);
        break;
      case "error":
        this.setState({ lastError: frame.message });
        break;
    }
  }

  private notify(ticks: readonly Quote[]): void {
    if (this.listeners.size === 0) return;
    const byId = new Map<string, Quote[]>();
    for (const t of ticks) {
      if (!this.listeners.has(t.id)) continue;
      let list = byId.get(t.id);
      if (!list) byId.set(t.id, (list = []));
      list.push(t);
    }
    for (const [id, list] of byId) for (const l of this.listeners.get(id) ?? []) l(list);
  }

  /** Live quotes: to the screen, or parked while replaying. */
  private enqueue(quotes: readonly Quote[]): void {
    if (this.replay !== null) {
      for (const q of quotes) this.park(q);
      return;
    }
    this.queue(quotes);
  }

  private queue(quotes: readonly Quote[]): void {
    for (const q of quotes) {
      const have = this.pending.get(q.id);
      if (!have || have.ts <= q.ts) this.pending.set(q.id, q);
    }
    if (this.pending.size > 0 && this.frame === null) {
      const schedule = this.opts.schedule ?? ((cb: () => void) => setTimeout(cb, 16) as unknown as number);
      this.frame = schedule(() => this.flush());
    }
  }

  /** Writes the batch into the cache; an older quote never replaces a newer one. */
  flush(): void {
    this.frame = null;
    const batch = this.pending;
    this.pending = new Map();
    const qc = this.opts.queryClient;
    for (const [id, q] of batch) {
      qc.setQueryData(quoteQueries.live(id).queryKey, (prev) => (prev && prev.ts > q.ts ? prev : q));
    }
  }

  private applyStatus(s: SourceStatus): void {
    this.opts.queryClient.setQueryData(sourceQueries.all().queryKey, (prev: SourceInfo[] | undefined) => {
      const list = prev ? [...prev] : [];
      const i = list.findIndex((x) => x.source === s.source);
      const next: SourceInfo = {
        source: s.source,
        state: s.state,
        detail: s.detail,
        last_event_ts: i >= 0 ? (list[i]!.last_event_ts ?? null) : null,
        last_error: s.state === "up" ? null : s.detail,
      };
      if (i >= 0) list[i] = { ...list[i]!, ...next, last_event_ts: list[i]!.last_event_ts };
      else list.push(next);
      return list;
    });
  }

  private applyNews(n: NewsItem): void {
    const qc = this.opts.queryClient;
    const keys = [null, ...n.instruments];
    for (const k of keys) {
      const { queryKey } = newsQueries.list(k);
      if (qc.getQueryData(queryKey) === undefined) continue;
      qc.setQueryData(queryKey, (prev: NewsItem[] | undefined) =>
        prev && !prev.some((x) => x.id === n.id) ? [n, ...prev].slice(0, 50) : prev,
      );
    }
  }
}

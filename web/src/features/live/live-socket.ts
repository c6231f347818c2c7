// One WebSocket to the edge's `/ws`: keeps a subscription set, sends only the difference when it
// changes (subscribe / unsubscribe), hands parsed frames to its owner, and reconnects with capped,
// jittered backoff whenever it closes, re-subscribing the whole set on each open. It holds no
// global state: the owner creates it, and `stop()` ends it for good.
import { backoffDelay, DEFAULT_BACKOFF, type BackoffOptions } from "@/lib/backoff";
import { diffIds, MAX_SOCKET_IDS, parseServerFrame, type ClientOp, type ServerFrame } from "@/lib/ws-protocol";

export type ConnectionStatus = "connecting" | "open" | "reconnecting";

export interface ConnectionState {
  status: ConnectionStatus;
  /** Failed or closed connections since the last successful open. */
  failures: number;
  /** When the next attempt starts (epoch ms), while reconnecting. */
  retryAt: number | null;
}

export interface LiveSocketOptions {
  url: string;
  ids: readonly string[];
  onFrame: (frame: ServerFrame) => void;
  onState: (state: ConnectionState) => void;
  /** Called after every successful open; `reconnected` is false only for the first. */
  onOpen?: (reconnected: boolean) => void;
  backoff?: BackoffOptions;
  random?: () => number;
}

export class LiveSocket {
  private ws: WebSocket | null = null;
  private timer: ReturnType<typeof setTimeout> | null = null;
  private failures = 0;
  private opened = false;
  private stopped = false;
  private ids: string[];

  constructor(private readonly opts: LiveSocketOptions) {
    this.ids = [...new Set(opts.ids)].slice(0, MAX_SOCKET_IDS);
  }

  /** The current subscription set. */
  get subscribed(): readonly string[] {
    return this.ids;
  }

  start(): void {
    this.stopped = false;
    this.connect();
  }

  stop(): void {
    this.stopped = true;
    if (this.timer !== null) clearTimeout(this.timer);
    this.timer = null;
    const ws = this.ws;
    this.ws = null;
    if (ws) {
      ws.onopen = ws.onmessage = ws.onclose = ws.onerror = null;
      ws.close(1000, "bye");
    }
  }

  /**
   * Changes the subscription set (capped at the edge's 200). While open, sends only the
   * difference; while closed, the next open subscribes the whole set.
   */
  setIds(next: readonly string[]): void {
    const capped = [...new Set(next)].slice(0, MAX_SOCKET_IDS);
    const { add, remove } = diffIds(this.ids, capped);
    this.ids = capped;
    if (remove.length > 0) this.send({ op: "unsubscribe", ids: remove });
    if (add.length > 0) this.send({ op: "subscribe", ids: add });
  }

  /** Reconnect now instead of waiting out the backoff (e.g. the browser came back online). */
  retryNow(): void {
    if (this.stopped || this.ws !== null) return;
    if (this.timer !== null) clearTimeout(this.timer);
    this.timer = null;
    this.connect();
  }

  /** Sends an op now if the socket is open; false when it is not (nothing is queued). */
  send(op: ClientOp): boolean {
    if (this.ws?.readyState !== WebSocket.OPEN) return false;
    this.ws.send(JSON.stringify(op));
    return true;
  }

  private connect(): void {
    this.opts.onState({
      status: this.failures === 0 && !this.opened ? "connecting" : "reconnecting",
      failures: this.failures,
      retryAt: null,
    });
    let ws: WebSocket;
    try {
      ws = new WebSocket(this.opts.url);
    } catch {
      this.scheduleReconnect();
      return;
    }
    this.ws = ws;
    ws.onopen = () => {
      const reconnected = this.opened;
      this.opened = true;
      this.failures = 0;
      this.opts.onState({ status: "open", failures: 0, retryAt: null });
      if (this.ids.length > 0) this.send({ op: "subscribe", ids: [...this.ids] });
      this.opts.onOpen?.(reconnected);
    };
    ws.onmessage = (ev: MessageEvent) => {
      if (typeof ev.data !== "string") return;
      const frame = parseServerFrame(ev.data);
      if (frame) this.opts.onFrame(frame);
    };
    // `error` is always followed by `close`; reconnect from one place.
    ws.onclose = () => {
      if (this.ws !== ws) return;
      this.ws = null;
      this.scheduleReconnect();
    };
  }

  private scheduleReconnect(): void {
    if (this.stopped) return;
    const delay = backoffDelay(this.failures, this.opts.backoff ?? DEFAULT_BACKOFF, this.opts.random);
    this.failures += 1;
    this.opts.onState({ status: "reconnecting", failures: this.failures, retryAt: Date.now() + delay });
    this.timer = setTimeout(() => {
      this.timer = null;
      this.connect();
    }, delay);
  }
}

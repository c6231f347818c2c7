// One WebSocket to the edge's `/ws` per tab: subscribes to the given ids, hands parsed frames to
// its owner, and reconnects with capped, jittered backoff (re-subscribing) whenever it closes.
// It holds no global state: the owner creates it, and `stop()` ends it for good.
import { backoffDelay, DEFAULT_BACKOFF, type BackoffOptions } from "@/lib/backoff";
import { parseServerFrame, type ClientOp, type ServerFrame } from "@/lib/ws-protocol";

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
  backoff?: BackoffOptions;
}

export class LiveSocket {
  private ws: WebSocket | null = null;
  private timer: ReturnType<typeof setTimeout> | null = null;
  private failures = 0;
  private stopped = false;
  private ids: readonly string[];

  constructor(private readonly opts: LiveSocketOptions) {
    this.ids = opts.ids;
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

  /** Reconnect now instead of waiting out the backoff (e.g. the browser came back online). */
  retryNow(): void {
    if (this.stopped || this.ws !== null) return;
    if (this.timer !== null) clearTimeout(this.timer);
    this.timer = null;
    this.connect();
  }

  private send(op: ClientOp): void {
    if (this.ws?.readyState === WebSocket.OPEN) this.ws.send(JSON.stringify(op));
  }

  private connect(): void {
    this.opts.onState({
      status: this.failures === 0 ? "connecting" : "reconnecting",
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
      this.failures = 0;
      this.opts.onState({ status: "open", failures: 0, retryAt: null });
      if (this.ids.length > 0) this.send({ op: "subscribe", ids: [...this.ids] });
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
    const delay = backoffDelay(this.failures, this.opts.backoff ?? DEFAULT_BACKOFF);
    this.failures += 1;
    this.opts.onState({ status: "reconnecting", failures: this.failures, retryAt: Date.now() + delay });
    this.timer = setTimeout(() => {
      this.timer = null;
      this.connect();
    }, delay);
  }
}

// The `/ws` wire protocol (DESIGN.md): client ops out, server frames in, parsed defensively.
import type { NewsItem, Quote, SourceStatus } from "./types";

export type ClientOp =
  | { op: "subscribe"; ids: string[] }
  | { op: "unsubscribe"; ids: string[] }
  /** 시점 재생: the past ticks of `ids` in `[from, to)`, paced at `speed` × real time. */
  | { op: "replay"; ids: string[]; from: number; to: number; speed: number };

/** Most ids one socket may subscribe to (the edge's cap). */
export const MAX_SOCKET_IDS = 200;

/** What to send to go from subscription set `prev` to `next`: ids to add and to remove, in order. */
export function diffIds(prev: readonly string[], next: readonly string[]): { add: string[]; remove: string[] } {
  const p = new Set(prev);
  const n = new Set(next);
  return { add: [...n].filter((id) => !p.has(id)), remove: [...p].filter((id) => !n.has(id)) };
}

export type ServerFrame =
  | { type: "snapshot"; quotes: Quote[] }
  | { type: "ticks"; ticks: Quote[] }
  | { type: "status"; status: SourceStatus }
  | { type: "news"; news: NewsItem }
  | { type: "error"; message: string; code?: string }
  /** Replayed ticks (`"replay": true`), kept apart from live ones. */
  | { type: "replay"; ticks: Quote[] }
  /** A replay finished (`cancelled`: a newer replay op replaced it; `error`: it was cut short). */
  | { type: "replay_end"; ids: string[]; count: number; cancelled?: boolean; error?: string };

function isQuote(v: unknown): v is Quote {
  if (typeof v !== "object" || v === null) return false;
  const q = v as Record<string, unknown>;
  return typeof q.id === "string" && typeof q.price === "number" && typeof q.ts === "number";
}

/**
 * Parses one server text frame. `tick` is normalised to a one-element `ticks`; replayed ticks
 * (`"replay": true`) become a `replay` frame, never a live one; unknown or malformed frames give
 * `null`.
 */
export function parseServerFrame(text: string): ServerFrame | null {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch {
    return null;
  }
  if (typeof raw !== "object" || raw === null) return null;
  const f = raw as Record<string, unknown>;
  switch (f.type) {
    case "snapshot":
      return Array.isArray(f.quotes) ? { type: "snapshot", quotes: f.quotes.filter(isQuote) } : null;
    case "tick": {
      const quote: Record<string, unknown> = { ...f };
      delete quote.type;
      delete quote.replay;
      if (!isQuote(quote)) return null;
      return f.replay === true ? { type: "replay", ticks: [quote] } : { type: "ticks", ticks: [quote] };
    }
    case "ticks": {
      if (!Array.isArray(f.ticks)) return null;
      const replayed = (t: unknown) => (t as { replay?: unknown }).replay === true;
      if (f.replay === true || (f.ticks.length > 0 && f.ticks.every(replayed))) {
        return { type: "replay", ticks: f.ticks.filter(isQuote) };
      }
      return { type: "ticks", ticks: f.ticks.filter((t) => isQuote(t) && !replayed(t)) };
    }
    case "replay_end":
      return {
        type: "replay_end",
        ids: Array.isArray(f.ids) ? f.ids.filter((x): x is string => typeof x === "string") : [],
        count: typeof f.count === "number" ? f.count : 0,
        ...(f.cancelled === true ? { cancelled: true } : {}),
        ...(typeof f.error === "string" ? { error: f.error } : {}),
      };
    case "status":
      return typeof f.source === "string"
        ? {
            type: "status",
            status: {
              source: f.source,
              state: f.state === "up" || f.state === "degraded" || f.state === "down" ? f.state : "down",
              detail: typeof f.detail === "string" ? f.detail : null,
              ts: typeof f.ts === "number" ? f.ts : 0,
            },
          }
        : null;
    case "news": {
      const n: Record<string, unknown> = { ...f };
      delete n.type;
      if (typeof n.id !== "string" || typeof n.title !== "string" || typeof n.url !== "string") return null;
      return {
        type: "news",
        news: {
          id: n.id,
          source: typeof n.source === "string" ? n.source : "",
          title: n.title,
          summary: typeof n.summary === "string" ? n.summary : null,
          url: n.url,
          image: typeof n.image === "string" ? n.image : null,
          published: typeof n.published === "number" ? n.published : 0,
          language: typeof n.language === "string" ? n.language : null,
          instruments: Array.isArray(n.instruments) ? n.instruments.filter((x): x is string => typeof x === "string") : [],
        },
      };
    }
    case "error":
      return {
        type: "error",
        message: typeof f.message === "string" ? f.message : "unknown error",
        ...(typeof f.code === "string" ? { code: f.code } : {}),
      };
    default:
      return null;
  }
}

/** `ws://host/ws` or `wss://host/ws`, following the page's protocol. */
export function socketUrl(location: Pick<Location, "protocol" | "host">, path = "/ws"): string {
  const scheme = location.protocol === "https:" ? "wss:" : "ws:";
  return `${scheme}//${location.host}${path}`;
}

// The `/ws` wire protocol (DESIGN.md): client ops out, server frames in, parsed defensively.
import type { NewsItem, Quote, SourceStatus } from "./types";

export type ClientOp =
  | { op: "subscribe"; ids: string[] }
  | { op: "unsubscribe"; ids: string[] };

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
  | { type: "error"; message: string };

function isQuote(v: unknown): v is Quote {
  if (typeof v !== "object" || v === null) return false;
  const q = v as Record<string, unknown>;
  return typeof q.id === "string" && typeof q.price === "number" && typeof q.ts === "number";
}

/**
 * Parses one server text frame. `tick` is normalised to a one-element `ticks`; replayed ticks
 * (`"replay": true`) and unknown or malformed frames give `null`.
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
      if (f.replay === true) return null;
      const quote: Record<string, unknown> = { ...f };
      delete quote.type;
      return isQuote(quote) ? { type: "ticks", ticks: [quote] } : null;
    }
    case "ticks":
      if (f.replay === true) return null;
      return Array.isArray(f.ticks)
        ? { type: "ticks", ticks: f.ticks.filter((t) => isQuote(t) && (t as { replay?: unknown }).replay !== true) }
        : null;
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
      return { type: "error", message: typeof f.message === "string" ? f.message : "unknown error" };
    default:
      return null;
  }
}

/** `ws://host/ws` or `wss://host/ws`, following the page's protocol. */
export function socketUrl(location: Pick<Location, "protocol" | "host">, path = "/ws"): string {
  const scheme = location.protocol === "https:" ? "wss:" : "ws:";
  return `${scheme}//${location.host}${path}`;
}

// Whether a number on screen is live, and if not, why: the rule behind every quote row's mark.
// A number that is not live must never look live (ISSUE 4), so everything that can make a price
// old is checked: the socket, the source's status, the edge's `stale` flag, the market's
// session, and the price's own age.
import type { SessionState } from "./market-clock";
import type { Quote, SourceState } from "./types";

export type FreshnessKind = "live" | "sim" | "pre" | "post" | "closed" | "stale" | "nodata";

export interface FreshnessInput {
  quote: Quote | null;
  /** The instrument's market (`krx`, `us`, `crypto`, …). */
  market: string;
  /** The calendar's session for that market now. */
  session: SessionState;
  /** The quote source's state from `/api/v1/sources` and status events, if known. */
  sourceState: SourceState | null;
  /** Whether the live socket is open. */
  connected: boolean;
  now: number;
}

/** How old a price may get while its market is open before it counts as late. */
export function maxAgeMs(market: string, source: string): number {
  if (source === "sim" || market === "crypto") return 30_000;
  if (market === "fx" || market === "metal") return 10 * 60_000;
  return 2 * 60_000;
}

export function freshness(input: FreshnessInput): FreshnessKind {
  const { quote: q } = input;
  if (!q) return "nodata";
  if (!input.connected) return "stale";
  if (input.sourceState === "down" || input.sourceState === "degraded") return "stale";
  const simulated = q.source === "sim" || q.market === "sim";
  const tooOld = input.now > 0 && input.now - q.ts > maxAgeMs(input.market, q.source);
  if (simulated) return q.stale || tooOld ? "stale" : "sim";
  if (q.market === "closed" || (input.session === "closed" && input.market !== "crypto")) return "closed";
  // Extended hours (NXT, US pre/after-market) trade thinly: an old price is the session's nature,
  // not lateness; the edge's `stale` still says when the source is down or a session was missed.
  const extended = input.session === "pre" || input.session === "post" ? input.session : null;
  if (q.stale || (tooOld && !extended)) return "stale";
  if (extended) return extended;
  if (q.market === "pre" || q.market === "post") return q.market;
  return "live";
}

/** Only these kinds may use the live colours and flash. */
export function looksLive(kind: FreshnessKind): boolean {
  return kind === "live" || kind === "sim";
}

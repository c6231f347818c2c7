import type { Quote, QuoteMap } from "./types";

/**
 * Merges quotes into the latest-per-instrument map, keeping the newer of two by exchange time
 * `ts` (a late snapshot never rolls a price back). Returns the same map when nothing changed.
 */
export function mergeQuotes(current: QuoteMap, incoming: readonly Quote[]): QuoteMap {
  let next: Record<string, Quote> | null = null;
  for (const q of incoming) {
    const have = (next ?? current)[q.id];
    if (have && have.ts > q.ts) continue;
    next ??= { ...current };
    next[q.id] = q;
  }
  return next ?? current;
}

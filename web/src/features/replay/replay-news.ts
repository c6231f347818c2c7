// The news as it stood at a replay's clock. The edge lists articles newest first and strictly
// before `before` (`GET /api/v1/news?instrument=&limit=&before=`); the page asks for the list up to
// the end of the replayed minute the clock is in (one request per replayed minute, never one per
// frame), and shows only what was published by the clock itself, so a headline appears at the
// replayed moment it was published and never earlier. Live news pushed over the socket is
// written into `newsQueries.list` (features/live), a different key, so it cannot leak in.
import { queryOptions } from "@tanstack/react-query";
import { getNews } from "@/lib/api";
import type { NewsItem } from "@/lib/types";

/** Headlines a news list shows (the live list's size). */
export const NEWS_LIMIT = 30;
/** Extra articles fetched past the limit: those published later in the same replayed minute. */
export const NEWS_MARGIN = 20;
/** The replayed time one news request covers. */
export const NEWS_STEP_MS = 60_000;

/** The exclusive end of the replayed minute `clock` is in: the `before` of its news request. */
export function newsBefore(clock: number): number {
  return Math.floor(clock / NEWS_STEP_MS) * NEWS_STEP_MS + NEWS_STEP_MS;
}

/** The articles published by `clock` (inclusive), newest first, at most `limit`. */
export function newsAsOf(items: readonly NewsItem[], clock: number, limit = NEWS_LIMIT): NewsItem[] {
  return items
    .filter((n) => n.published <= clock)
    .sort((a, b) => b.published - a.published || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0))
    .slice(0, limit);
}

/**
 * The newest publication time at or before `clock` (-Infinity when none): `newsAsOf` at this cut
 * equals `newsAsOf` at `clock`, and the cut moves only when the clock passes a headline.
 */
export function asOfCut(items: readonly NewsItem[] | undefined, clock: number): number {
  let cut = -Infinity;
  for (const x of items ?? []) if (x.published <= clock && x.published > cut) cut = x.published;
  return cut;
}

export const replayNewsQueries = {
  /**
   * The news of `instrument` (null: all) published before `before` (a `newsBefore` minute end).
   * The past does not change, so it never goes stale; a new replayed minute is a new key.
   */
  asOf: (instrument: string | null, before: number) =>
    queryOptions({
      queryKey: ["replay", "news", instrument ?? "all", before] as const,
      queryFn: ({ signal }) => getNews({ instrument: instrument ?? undefined, limit: NEWS_LIMIT + NEWS_MARGIN, before }, signal),
      staleTime: Infinity,
      gcTime: 60_000,
    }),
};

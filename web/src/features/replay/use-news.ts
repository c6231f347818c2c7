"use client";

// The news a widget shows: the live list (kept observed during a replay, so the socket keeps it
// current and going back to live shows it at once), or, while a replay runs, the list as it stood
// at the replay clock (replay-news).
import { useQuery } from "@tanstack/react-query";
import { useMemo } from "react";
import { newsQueries } from "@/lib/api";
import type { NewsItem } from "@/lib/types";
import { useNow } from "@/lib/use-now";
import { useReplayView } from "./replay-context";
import { asOfCut, newsAsOf, newsBefore, replayNewsQueries } from "./replay-news";

export interface NewsView {
  items: NewsItem[] | undefined;
  pending: boolean;
  error: Error | null;
  /** The replay clock the list stands at, or null while live. */
  asOf: number | null;
}

export function useNews(instrument: string | null): NewsView {
  const inReplay = useReplayView() !== null;
  const now = useNow();
  const clock = inReplay && now > 0 ? now : null;
  const live = useQuery(newsQueries.list(instrument));
  const key = instrument ?? "all";
  const past = useQuery({
    ...replayNewsQueries.asOf(instrument, newsBefore(clock ?? 0)),
    enabled: clock !== null,
    // The previous replayed minute's list stays up while the next loads (same filter only).
    placeholderData: (prev, prevQuery) => (prevQuery?.queryKey[2] === key ? prev : undefined),
  });
  const replaying = clock !== null;
  const cut = clock === null ? -Infinity : asOfCut(past.data, clock);
  // Recomputed when a headline's time comes, not on every tick of the replay clock.
  const items = useMemo(() => (!replaying ? live.data : past.data ? newsAsOf(past.data, cut) : undefined), [replaying, live.data, past.data, cut]);
  if (clock === null) return { items, pending: live.isPending, error: live.error, asOf: null };
  return { items, pending: past.isPending, error: past.error, asOf: clock };
}

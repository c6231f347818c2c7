"use client";

// Makes the page's one LiveFeed available to components, and the hooks they use: retain the ids
// they show, read one instrument's live quote (a per-id query, so a tick re-renders only its
// rows), and read the connection state.
import { useQuery, useQueryClient } from "@tanstack/react-query";
import { createContext, useContext, useEffect, useState, useSyncExternalStore, type ReactNode } from "react";
import { quoteQueries } from "@/lib/api";
import type { Quote } from "@/lib/types";
import { socketUrl } from "@/lib/ws-protocol";
import { LiveFeed, type FeedState } from "./live-feed";

const FeedContext = createContext<LiveFeed | null>(null);

export function FeedProvider({ children }: { children: ReactNode }) {
  const queryClient = useQueryClient();
  const [feed] = useState(
    () =>
      new LiveFeed({
        queryClient,
        url: typeof window === "undefined" ? "" : socketUrl(window.location),
        schedule: (cb) => requestAnimationFrame(cb),
        cancel: (h) => cancelAnimationFrame(h),
      }),
  );
  useEffect(() => {
    feed.start();
    const online = () => feed.retryNow();
    window.addEventListener("online", online);
    return () => {
      window.removeEventListener("online", online);
      feed.stop();
    };
  }, [feed]);
  return <FeedContext.Provider value={feed}>{children}</FeedContext.Provider>;
}

export function useFeed(): LiveFeed {
  const f = useContext(FeedContext);
  if (!f) throw new Error("useFeed outside FeedProvider");
  return f;
}

const SERVER_STATE: FeedState = { status: "connecting", failures: 0, retryAt: null, lastError: null };

export function useFeedState(): FeedState {
  const feed = useFeed();
  return useSyncExternalStore(feed.subscribeState, feed.getState, () => SERVER_STATE);
}

/** Subscribes `ids` while the calling component is mounted. */
export function useRetain(ids: readonly string[]): void {
  const feed = useFeed();
  const key = ids.join(",");
  useEffect(() => {
    if (key === "") return;
    return feed.retain(key.split(","));
  }, [feed, key]);
}

/** One instrument's live quote from the cache. */
export function useQuote(id: string): Quote | null {
  return useQuery(quoteQueries.live(id)).data ?? null;
}

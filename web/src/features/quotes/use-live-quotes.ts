"use client";

// Wires a LiveSocket to the query cache: snapshot and tick frames are merged into
// `quoteQueries.live()` with `setQueryData`, at most once per animation frame.
import { useQueryClient } from "@tanstack/react-query";
import { useEffect, useState } from "react";
import { quoteQueries } from "@/lib/api";
import { mergeQuotes } from "@/lib/quotes";
import type { Quote, SourceStatus } from "@/lib/types";
import { socketUrl } from "@/lib/ws-protocol";
import { LiveSocket, type ConnectionState } from "./live-socket";

export interface LiveQuotes {
  connection: ConnectionState;
  statuses: Readonly<Record<string, SourceStatus>>;
  lastError: string | null;
}

const INITIAL: ConnectionState = { status: "connecting", failures: 0, retryAt: null };

export function useLiveQuotes(ids: readonly string[]): LiveQuotes {
  const queryClient = useQueryClient();
  const [connection, setConnection] = useState<ConnectionState>(INITIAL);
  const [statuses, setStatuses] = useState<Record<string, SourceStatus>>({});
  const [lastError, setLastError] = useState<string | null>(null);
  const idsKey = ids.join(",");

  useEffect(() => {
    if (idsKey === "") return;
    const { queryKey } = quoteQueries.live();
    let pending: Quote[] = [];
    let raf: number | null = null;
    const flush = () => {
      raf = null;
      const batch = pending;
      pending = [];
      queryClient.setQueryData(queryKey, (prev) => mergeQuotes(prev ?? {}, batch));
    };
    const enqueue = (quotes: readonly Quote[]) => {
      pending.push(...quotes);
      raf ??= requestAnimationFrame(flush);
    };

    const socket = new LiveSocket({
      url: socketUrl(window.location),
      ids: idsKey.split(","),
      onState: setConnection,
      onFrame: (frame) => {
        switch (frame.type) {
          case "snapshot":
            enqueue(frame.quotes);
            break;
          case "ticks":
            enqueue(frame.ticks);
            break;
          case "status":
            setStatuses((s) => ({ ...s, [frame.status.source]: frame.status }));
            break;
          case "error":
            setLastError(frame.message);
            break;
        }
      },
    });
    const online = () => socket.retryNow();
    window.addEventListener("online", online);
    socket.start();
    return () => {
      window.removeEventListener("online", online);
      socket.stop();
      if (raf !== null) cancelAnimationFrame(raf);
    };
  }, [idsKey, queryClient]);

  return { connection, statuses, lastError };
}

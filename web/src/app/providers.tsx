"use client";

import { QueryClientProvider } from "@tanstack/react-query";
import { useState, type ReactNode } from "react";
import { FeedProvider } from "@/features/live/feed-context";
import { PrefsProvider } from "@/features/prefs/prefs";
import { ReplayProvider } from "@/features/replay/replay-context";
import { makeQueryClient } from "@/lib/query-client";
import { ClockProvider } from "@/lib/use-now";

export function Providers({ children }: { children: ReactNode }) {
  const [queryClient] = useState(makeQueryClient);
  return (
    <QueryClientProvider client={queryClient}>
      <PrefsProvider>
        <ClockProvider>
          <FeedProvider>
            <ReplayProvider>{children}</ReplayProvider>
          </FeedProvider>
        </ClockProvider>
      </PrefsProvider>
    </QueryClientProvider>
  );
}

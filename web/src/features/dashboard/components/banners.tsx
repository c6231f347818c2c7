"use client";

import { useQuery, useQueryClient } from "@tanstack/react-query";
import { useFeed, useFeedState } from "@/features/live/feed-context";
import { usePrefs } from "@/features/prefs/prefs";
import { instrumentQueries, sourceQueries } from "@/lib/api";

/** The edge is unreachable: say so, offer a retry, and (via freshness) grey every number. */
export function ConnectionBanner() {
  const { t } = usePrefs();
  const feed = useFeed();
  const state = useFeedState();
  const queryClient = useQueryClient();
  const instruments = useQuery(instrumentQueries.all());
  const down = state.status === "reconnecting" || instruments.isError;
  if (!down) return null;
  return (
    <div role="alert" data-testid="edge-banner" className="flex flex-wrap items-center gap-3 rounded-lg border border-orange-300 bg-orange-50 px-4 py-2 text-sm text-orange-900 dark:border-orange-500/40 dark:bg-orange-500/10 dark:text-orange-200">
      <span className="flex-1">
        {t("bannerDown")} {state.status === "reconnecting" ? <span className="text-xs opacity-80">({t("bannerRetrying")} · {state.failures})</span> : null}
      </span>
      <button
        type="button"
        data-testid="retry"
        onClick={() => {
          feed.retryNow();
          void queryClient.refetchQueries({ type: "active" });
        }}
        className="rounded-md bg-orange-600 px-3 py-1 text-xs font-semibold text-white outline-none hover:bg-orange-700 focus-visible:ring-2 focus-visible:ring-orange-400"
      >
        {t("retry")}
      </button>
    </div>
  );
}

/** Sources that are not up (from `/api/v1/sources` and status events). */
export function SourceNotice() {
  const { t } = usePrefs();
  const sources = useQuery(sourceQueries.all()).data ?? [];
  const bad = sources.filter((s) => s.state !== "up");
  const sim = sources.some((s) => s.source === "sim");
  return (
    <>
      {sim ? (
        <p data-testid="sim-notice" className="rounded-lg border border-amber-300 bg-amber-50 px-3 py-1.5 text-xs text-amber-900 dark:border-amber-500/40 dark:bg-amber-500/10 dark:text-amber-200">
          <span className="mr-1 rounded border border-amber-400 px-1 font-semibold">{t("sim")}</span>
          {t("simNotice")}
        </p>
      ) : null}
      {bad.length > 0 ? (
        <p data-testid="source-notice" role="status" className="rounded-lg border border-orange-300 bg-orange-50 px-3 py-1.5 text-xs text-orange-900 dark:border-orange-500/40 dark:bg-orange-500/10 dark:text-orange-200">
          {t("sourceDown")}: {bad.map((s) => `${s.source} (${s.state}${s.detail ? `: ${s.detail}` : ""})`).join(", ")}
        </p>
      ) : null}
    </>
  );
}

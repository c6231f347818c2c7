"use client";

// The unmissable "this is a replay" banner: where the replay started, its speed, the replayed
// time now, its progress, a link that reopens it, and the way back to live. Also the notice for
// a replay link that could not be used.
import { useQueries } from "@tanstack/react-query";
import { useState } from "react";
import { usePrefs } from "@/features/prefs/prefs";
import { useNow } from "@/lib/use-now";
import { dataFromText, replayText, type ReplayMessageKey } from "../messages";
import { replayDataQueries } from "../replay-api";
import { emptiness, jumpEnd } from "../replay-gaps";
import { useReplayApi, useReplaySnapshot } from "../replay-context";
import { kstText, replayLink } from "../replay-url";
import { SpeedPicker } from "./replay-control";
import { ReplayIcon } from "./replay-icon";

/** Instruments asked where their records begin when a replay found nothing. */
const LOOKUP_IDS = 4;

const BAD_LINK: Record<"time" | "future" | "range", ReplayMessageKey> = { time: "badTime", future: "badFuture", range: "badRange" };

export function ReplayBanner() {
  const { lang } = usePrefs();
  const t = (k: ReplayMessageKey) => replayText(lang, k);
  const api = useReplayApi();
  const { view, invalidLink, ids, coverage } = useReplaySnapshot();
  const now = useNow();
  const [copied, setCopied] = useState(false);
  const empty = view && now > 0 ? emptiness(ids, coverage, now, view.status) : null;
  // A replay that found nothing at all: where do the records begin after it? (A few instruments'
  // candles, two small reads each.)
  const lookups = useQueries({
    queries: (empty?.kind === "nothing" && view ? ids.slice(0, LOOKUP_IDS) : []).map((id) => replayDataQueries.firstAfter(id, view!.windowTo)),
  });
  const found = lookups.map((q) => q.data).filter((x): x is number => typeof x === "number");
  const next = empty?.kind === "all" ? empty.next : empty?.kind === "nothing" && found.length > 0 ? Math.min(...found) : null;

  if (!view) {
    if (!invalidLink) return null;
    return (
      <div role="alert" data-testid="replay-bad-link" className="flex items-center gap-3 rounded-lg border border-orange-300 bg-orange-50 px-4 py-2 text-sm text-orange-900 dark:border-orange-500/40 dark:bg-orange-500/10 dark:text-orange-200">
        <span className="flex flex-1 items-center gap-2">
          <ReplayIcon />
          {t(BAD_LINK[invalidLink])}
        </span>
        <button type="button" onClick={api.dismissInvalidLink} className="rounded-md px-2 py-1 text-xs hover:bg-orange-100 dark:hover:bg-orange-500/20">
          {t("dismiss")}
        </button>
      </div>
    );
  }

  const { params, status } = view;
  const ended = status === "ended";
  const failed = status === "error";
  const head = ended ? (view.endedAt === "present" ? t("endedPresent") : t("ended")) : failed ? t("failed") : t("playing");
  const summary =
    lang === "ko"
      ? `${head} · ${kstText(params.from)} KST${t("since")} · ${params.speed}× — ${t("notLive")}`
      : `${head} · ${t("since")} ${kstText(params.from)} KST · ${params.speed}× — ${t("notLive")}`;
  const link = () => replayLink(window.location.href, params);

  return (
    <div
      role="status"
      aria-live="polite"
      data-testid="replay-banner"
      data-status={status}
      data-from={params.from}
      data-speed={params.speed}
      className={`sticky top-[4.5rem] z-20 sm:top-[3.25rem] flex flex-wrap items-center gap-x-4 gap-y-2 rounded-lg border-2 px-4 py-2.5 text-sm shadow-md ${failed ? "border-orange-500 bg-orange-50 text-orange-950 dark:bg-orange-950 dark:text-orange-100" : "border-violet-600 bg-violet-700 text-white dark:border-violet-400 dark:bg-violet-800"}`}
    >
      <div className="flex min-w-0 flex-1 basis-full flex-col gap-0.5 sm:basis-0">
        <p data-testid="replay-summary" className="flex items-center gap-2 font-bold">
          <ReplayIcon className="h-4 w-4" />
          {summary}
        </p>
        <p className="flex flex-wrap items-center gap-x-3 text-xs opacity-90">
          <span>
            {t("now")}: <span data-testid="replay-clock" className="font-mono font-semibold tabular-nums">{now > 0 ? kstText(now) : "—"}</span> KST
          </span>
          {params.to !== null ? <span>→ {kstText(params.to)} KST</span> : null}
          <span data-testid="replay-count" className="tabular-nums">
            {status === "starting" ? t("loading") : `${view.count.toLocaleString(lang === "ko" ? "ko-KR" : "en-US")} ${t("ticks")}`}
          </span>
          {failed && view.error ? <span data-testid="replay-error">{view.error}</span> : null}
        </p>
        {empty ? (
          <p data-testid="replay-empty" data-kind={empty.kind} data-next={next ?? undefined} className="flex flex-wrap items-center gap-x-2 gap-y-1 text-xs font-semibold">
            <span className="rounded bg-amber-300 px-1.5 py-0.5 text-amber-950">
              {empty.kind === "nothing" ? t("noDataRange") : empty.kind === "all" ? t("noDataAt") : `${t("someNoData")} (${empty.ids.length})`}
            </span>
            {empty.kind !== "some" && next !== null ? <span data-testid="replay-data-from">{dataFromText(lang, kstText(next))}</span> : null}
            {empty.kind !== "some" && next !== null ? (
              <button
                type="button"
                data-testid="replay-jump"
                onClick={() => api.start({ from: next, to: jumpEnd(params.to, next), speed: params.speed })}
                className="rounded-md border border-white/70 px-2 py-0.5 text-xs font-bold outline-none hover:bg-white/15 focus-visible:ring-2 focus-visible:ring-white"
              >
                {t("jumpToData")}
              </button>
            ) : null}
          </p>
        ) : null}
      </div>
      {!ended && !failed ? (
        <SpeedPicker
          value={params.speed}
          testid="replay-banner-speed"
          onChange={(speed) => {
            const at = api.clock() ?? params.from;
            api.start({ from: Math.floor(at), to: params.to, speed });
          }}
        />
      ) : null}
      <button
        type="button"
        data-testid="replay-copy-link"
        onClick={() => {
          void navigator.clipboard?.writeText(link()).then(() => {
            setCopied(true);
            setTimeout(() => setCopied(false), 1500);
          });
        }}
        className={`rounded-md border px-2 py-1 text-xs outline-none focus-visible:ring-2 focus-visible:ring-white ${failed ? "border-orange-400 hover:bg-orange-100" : "border-white/60 hover:bg-white/15"}`}
      >
        {copied ? t("copied") : t("copyLink")}
      </button>
      <button
        type="button"
        data-testid="replay-exit"
        onClick={api.exit}
        className={`rounded-md px-3 py-1 text-xs font-bold outline-none focus-visible:ring-2 focus-visible:ring-white ${failed ? "bg-orange-600 text-white hover:bg-orange-700" : ended ? "bg-white text-violet-800 ring-2 ring-white ring-offset-2 ring-offset-violet-700 hover:bg-violet-50" : "bg-white text-violet-800 hover:bg-violet-50"}`}
      >
        {t("goLive")}
      </button>
    </div>
  );
}

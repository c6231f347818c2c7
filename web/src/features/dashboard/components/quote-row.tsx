"use client";

// One instrument's row. It reads its own quote from the cache (a per-id query), so a tick
// re-renders only the rows showing that instrument, never the grid.
import { useQuery } from "@tanstack/react-query";
import { memo, useState } from "react";
import { useFeedState, useQuote } from "@/features/live/feed-context";
import { usePrefs } from "@/features/prefs/prefs";
import { replayText, rowFromText } from "@/features/replay/messages";
import { useReplayGap } from "@/features/replay/replay-context";
import { shortKst } from "@/features/replay/replay-gaps";
import { sourceQueries } from "@/lib/api";
import { direction, formatChange, formatPrice, formatRate, formatTimeAgo, formatVolume } from "@/lib/format";
import { freshness, looksLive, type FreshnessKind } from "@/lib/freshness";
import type { MessageKey } from "@/lib/i18n";
import { marketSession } from "@/lib/market-clock";
import type { Instrument, SourceInfo, SourceState } from "@/lib/types";
import { useNow } from "@/lib/use-now";
import { KimchiBadge } from "./kimchi-badge";
import { Sparkline } from "./sparkline";

const DIR_TEXT = { up: "text-[var(--color-up)]", down: "text-[var(--color-down)]", flat: "text-[var(--color-flat)]" } as const;

const MARK: Record<FreshnessKind, { key: MessageKey; cls: string } | null> = {
  live: null,
  sim: { key: "sim", cls: "border-amber-400 bg-amber-100 text-amber-900 dark:border-amber-500/60 dark:bg-amber-500/15 dark:text-amber-300" },
  pre: { key: "pre", cls: "border-slate-300 text-slate-600 dark:border-slate-600 dark:text-slate-300" },
  post: { key: "post", cls: "border-slate-300 text-slate-600 dark:border-slate-600 dark:text-slate-300" },
  closed: { key: "closed", cls: "border-slate-300 bg-slate-100 text-slate-600 dark:border-slate-600 dark:bg-slate-800 dark:text-slate-300" },
  stale: { key: "stale", cls: "border-orange-400 bg-orange-50 text-orange-800 dark:border-orange-500/60 dark:bg-orange-500/15 dark:text-orange-300" },
  nodata: { key: "noData", cls: "border-slate-300 text-slate-500 dark:border-slate-600" },
};

function sourceStateOf(list: SourceInfo[] | undefined, source: string | undefined): SourceState | null {
  if (!list || !source) return null;
  return list.find((s) => s.source === source)?.state ?? null;
}

export interface RowControls {
  onUp: () => void;
  onDown: () => void;
  onSwap: () => void;
  onRemove: () => void;
}

export const QuoteRow = memo(function QuoteRow({
  id,
  instrument,
  selected,
  onSelect,
  controls,
}: {
  id: string;
  instrument: Instrument | undefined;
  selected: boolean;
  onSelect: (id: string) => void;
  controls: RowControls | null;
}) {
  const { t, lang } = usePrefs();
  const quote = useQuote(id);
  const now = useNow();
  // During a replay: no recorded price of this instrument at the replay clock (and when it begins).
  const gap = useReplayGap(id);
  const connected = useFeedState().status === "open";
  const sourceState = useQuery({ ...sourceQueries.all(), select: (l: SourceInfo[]) => sourceStateOf(l, quote?.source) }).data ?? null;
  const market = instrument?.market ?? "crypto";
  const session = now > 0 ? marketSession(market, now).state : "open";
  const kind = freshness({ quote, market, session, sourceState, connected, now });
  const live = looksLive(kind);

  const price = quote?.price ?? null;
  const [track, setTrack] = useState<{ price: number | null; move: "up" | "down" | null; n: number }>({ price, move: null, n: 0 });
  if (price !== track.price) {
    setTrack({ price, move: track.price === null || price === null ? null : price > track.price ? "up" : price < track.price ? "down" : null, n: track.n + 1 });
  }

  const dir = live || kind === "closed" || kind === "pre" || kind === "post" ? direction(quote?.change ?? quote?.change_rate) : "flat";
  const currency = instrument?.currency ?? "KRW";
  const decimals = instrument?.decimals ?? 0;
  const name = instrument ? (lang === "ko" ? instrument.name_ko : instrument.name_en) : id;
  const other = instrument ? (lang === "ko" ? instrument.name_en : instrument.name_ko) : id;
  const code = id.split(".").slice(2).join(".");
  const mark = MARK[kind];

  return (
    <li
      data-testid="quote-row"
      data-id={id}
      data-fresh={kind}
      data-direction={dir}
      data-sim={quote?.source === "sim" || quote?.market === "sim" ? "true" : "false"}
      aria-current={selected ? "true" : undefined}
      className={`group flex items-center gap-2 border-b border-slate-100 px-3 py-2 last:border-0 dark:border-slate-800 ${selected ? "bg-sky-50/70 dark:bg-sky-950/40" : "hover:bg-slate-50 dark:hover:bg-slate-800/40"}`}
    >
      <button
        type="button"
        onClick={() => onSelect(id)}
        title={`${other} · ${code} — ${t("selectForChart")}`}
        className="min-w-0 flex-1 cursor-pointer rounded text-left outline-none focus-visible:ring-2 focus-visible:ring-sky-500"
      >
        <div className="truncate text-sm font-medium" data-testid="name">
          {name}
        </div>
        <div className="flex items-center gap-1.5 text-[11px] text-slate-500 dark:text-slate-400">
          {gap && !quote ? null : mark ? (
            <span data-testid="fresh-mark" className={`rounded border px-1 leading-4 font-semibold ${mark.cls}`}>
              {t(mark.key)}
            </span>
          ) : (
            <span className="inline-block h-1.5 w-1.5 rounded-full bg-emerald-500" aria-label={t("live")} />
          )}
          {gap && !quote ? (
            <span data-testid="replay-gap" data-next={gap.next ?? undefined} title={replayText(lang, "noDataAt")} className="truncate font-semibold text-violet-700 dark:text-violet-300">
              {replayText(lang, "noDataRow")}
              {gap.next !== null ? ` · ${rowFromText(lang, shortKst(gap.next, now))}` : ""}
            </span>
          ) : (
            <span data-testid="age" className="tabular-nums">{quote ? formatTimeAgo(quote.ts, now || quote.ts, lang) : code}</span>
          )}
          {quote?.day_volume ? <span className="hidden tabular-nums sm:inline">· {formatVolume(quote.day_volume, lang)}</span> : null}
          <KimchiBadge id={id} />
        </div>
      </button>
      {controls ? (
        <div className="flex shrink-0 items-center gap-0.5" data-testid="row-controls">
          <IconButton label={t("moveUp")} onClick={controls.onUp}>▲</IconButton>
          <IconButton label={t("moveDown")} onClick={controls.onDown}>▼</IconButton>
          <IconButton label={`${t("swap")} ${name}`} onClick={controls.onSwap} testId="swap">⇄</IconButton>
          <IconButton label={`${t("remove")} ${name}`} onClick={controls.onRemove} testId="remove">✕</IconButton>
        </div>
      ) : (
        <Sparkline id={id} last={price} live={live} />
      )}
      <div className="w-[7.5rem] shrink-0 text-right sm:w-32">
        <div
          key={track.n}
          data-testid="price"
          title={kind === "sim" ? "모의 시세 (simulated, not a market price)" : undefined}
          className={`inline-block rounded px-0.5 text-[15px] font-semibold tabular-nums ${live ? DIR_TEXT[dir] : "text-slate-400 dark:text-slate-500"} ${live && track.move ? `flash-${track.move}` : ""}`}
        >
          {formatPrice(price, currency, decimals)}
        </div>
        <div className={`text-[11px] tabular-nums ${live ? DIR_TEXT[dir] : "text-slate-400 dark:text-slate-500"}`}>
          <span data-testid="change-rate">{formatRate(quote?.change_rate)}</span>{" "}
          <span data-testid="change" className="hidden min-[420px]:inline">
            {formatChange(quote?.change, currency, decimals)}
          </span>
        </div>
      </div>
    </li>
  );
});

export function IconButton({
  label,
  onClick,
  children,
  testId,
  pressed,
}: {
  label: string;
  onClick: () => void;
  children: React.ReactNode;
  testId?: string;
  pressed?: boolean;
}) {
  return (
    <button
      type="button"
      aria-label={label}
      title={label}
      aria-pressed={pressed}
      data-testid={testId}
      onClick={onClick}
      className="inline-flex h-7 min-w-7 items-center justify-center rounded px-1 text-xs text-slate-500 outline-none hover:bg-slate-200 hover:text-slate-900 focus-visible:ring-2 focus-visible:ring-sky-500 dark:text-slate-400 dark:hover:bg-slate-700 dark:hover:text-white"
    >
      {children}
    </button>
  );
}

"use client";

import { useQuery } from "@tanstack/react-query";
import dynamic from "next/dynamic";
import { useState } from "react";
import { InstrumentSearch } from "@/features/dashboard/components/instrument-search";
import { WidgetFrame } from "@/features/dashboard/components/widget-frame";
import { useFeedState, useQuote, useRetain } from "@/features/live/feed-context";
import { usePrefs } from "@/features/prefs/prefs";
import { instrumentQueries } from "@/lib/api";
import { direction, formatPrice, formatRate } from "@/lib/format";
import { cycleWidgetSize, INTERVALS, moveWidget, setChart, type Layout, type Widget } from "@/lib/layout";

// The chart library loads after the first prices are on screen.
const PriceChart = dynamic(() => import("./price-chart"), { ssr: false });

const DIR_TEXT = { up: "text-[var(--color-up)]", down: "text-[var(--color-down)]", flat: "text-[var(--color-flat)]" } as const;

export function ChartWidget({
  widget,
  layout,
  editable,
  update,
}: {
  widget: Widget;
  layout: Layout;
  editable: boolean;
  update: (f: (l: Layout) => Layout) => void;
}) {
  const { t, lang } = usePrefs();
  const { id, interval, style } = layout.chart;
  useRetain([id]);
  const instrument = useQuery({ ...instrumentQueries.all(), select: (l) => l.find((i) => i.id === id) }).data;
  const quote = useQuote(id);
  const [editing, setEditing] = useState(false);
  const [searching, setSearching] = useState(false);
  const name = instrument ? (lang === "ko" ? instrument.name_ko : instrument.name_en) : id;
  const connected = useFeedState().status === "open";
  const live = connected && quote !== null && !quote.stale;
  const dir = live ? direction(quote?.change) : "flat";
  const sim = quote?.source === "sim" || quote?.market === "sim";

  return (
    <WidgetFrame
      widget={widget}
      editing={editing && editable}
      onToggleEdit={editable ? () => setEditing((e) => !e) : null}
      onMove={(d) => update((l) => moveWidget(l, widget.id, d))}
      onResize={() => update((l) => cycleWidgetSize(l, widget.id))}
    >
      <div className="flex flex-wrap items-center gap-x-3 gap-y-1 px-3 pt-2">
        <button
          type="button"
          data-testid="chart-title"
          data-id={id}
          onClick={() => setSearching((s) => !s)}
          title={t("swap")}
          className="rounded text-base font-bold outline-none hover:underline focus-visible:ring-2 focus-visible:ring-sky-500"
        >
          {name} ▾
        </button>
        <span data-testid="chart-price" className={`text-sm font-semibold tabular-nums ${live ? DIR_TEXT[dir] : "text-slate-400 dark:text-slate-500"}`}>
          {formatPrice(quote?.price, instrument?.currency ?? "KRW", instrument?.decimals ?? 0)}{" "}
          <span className="text-xs">{formatRate(quote?.change_rate)}</span>
        </span>
        {quote && !live ? (
          <span className="rounded border border-orange-400 bg-orange-50 px-1 text-[11px] font-semibold text-orange-800 dark:border-orange-500/60 dark:bg-orange-500/15 dark:text-orange-300">
            {t("stale")}
          </span>
        ) : null}
        {sim ? (
          <span className="rounded border border-amber-400 bg-amber-100 px-1 text-[11px] font-semibold text-amber-900 dark:border-amber-500/60 dark:bg-amber-500/15 dark:text-amber-300">
            {t("sim")}
          </span>
        ) : null}
        <div className="ml-auto flex items-center gap-2">
          <div role="group" aria-label="interval" className="flex overflow-hidden rounded-md border border-slate-200 text-xs dark:border-slate-700">
            {INTERVALS.map((iv) => (
              <button
                key={iv}
                type="button"
                data-testid={`interval-${iv}`}
                aria-pressed={iv === interval}
                onClick={() => update((l) => setChart(l, { interval: iv }))}
                className={`px-2 py-1 outline-none focus-visible:ring-2 focus-visible:ring-sky-500 focus-visible:ring-inset ${iv === interval ? "bg-slate-800 text-white dark:bg-slate-200 dark:text-slate-900" : "hover:bg-slate-100 dark:hover:bg-slate-800"}`}
              >
                {iv}
              </button>
            ))}
          </div>
          <div role="group" aria-label={t("candle") + "/" + t("line")} className="flex overflow-hidden rounded-md border border-slate-200 text-xs dark:border-slate-700">
            {(["candle", "line"] as const).map((st) => (
              <button
                key={st}
                type="button"
                data-testid={`style-${st}`}
                aria-pressed={st === style}
                onClick={() => update((l) => setChart(l, { style: st }))}
                className={`px-2 py-1 outline-none focus-visible:ring-2 focus-visible:ring-sky-500 focus-visible:ring-inset ${st === style ? "bg-slate-800 text-white dark:bg-slate-200 dark:text-slate-900" : "hover:bg-slate-100 dark:hover:bg-slate-800"}`}
              >
                {t(st)}
              </button>
            ))}
          </div>
        </div>
      </div>
      {searching ? (
        <div className="px-3 pt-2">
          <InstrumentSearch
            label={t("chartOf")}
            exclude={[id]}
            onPick={(next) => {
              update((l) => setChart(l, { id: next }));
              setSearching(false);
            }}
            onCancel={() => setSearching(false)}
          />
        </div>
      ) : null}
      <div className="relative h-[300px] w-full px-1 pt-1 sm:h-[380px] xl:h-[440px] 3xl:h-[520px]">
        <PriceChart id={id} interval={interval} style={style} instrument={instrument} />
      </div>
      <div className="flex justify-end px-3 pb-1.5 text-[10px] text-slate-400">
        <a href="https://www.tradingview.com/" target="_blank" rel="noopener noreferrer" className="hover:underline">
          {t("attribution")}
        </a>
      </div>
    </WidgetFrame>
  );
}

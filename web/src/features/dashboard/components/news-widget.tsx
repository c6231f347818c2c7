"use client";

import { useQuery } from "@tanstack/react-query";
import { useState } from "react";
import { usePrefs } from "@/features/prefs/prefs";
import { ReplayIcon } from "@/features/replay/components/replay-icon";
import { asOfText, replayText } from "@/features/replay/messages";
import { kstText } from "@/features/replay/replay-url";
import { useNews } from "@/features/replay/use-news";
import { instrumentQueries } from "@/lib/api";
import { formatTimeAgo } from "@/lib/format";
import { cycleWidgetSize, moveWidget, type Layout, type Widget } from "@/lib/layout";
import { useNow } from "@/lib/use-now";
import { WidgetFrame } from "./widget-frame";

/** Only http(s) links are rendered as links. */
function safeUrl(url: string): string | null {
  try {
    const u = new URL(url);
    return u.protocol === "https:" || u.protocol === "http:" ? u.toString() : null;
  } catch {
    return null;
  }
}

export function NewsWidget({
  widget,
  editable,
  selectedId,
  update,
}: {
  widget: Widget;
  editable: boolean;
  selectedId: string;
  update: (f: (l: Layout) => Layout) => void;
}) {
  const { t, lang } = usePrefs();
  const now = useNow();
  const [filtered, setFiltered] = useState(true);
  const [editing, setEditing] = useState(false);
  const instrument = useQuery({ ...instrumentQueries.all(), select: (l) => l.find((i) => i.id === selectedId) }).data;
  // Live, or as it stood at the replay clock during a 시점 재생.
  const news = useNews(filtered ? selectedId : null);
  const asOf = news.asOf;
  const name = instrument ? (lang === "ko" ? instrument.name_ko : instrument.name_en) : selectedId.split(".").pop();

  return (
    <WidgetFrame
      widget={widget}
      editing={editing && editable}
      onToggleEdit={editable ? () => setEditing((e) => !e) : null}
      onMove={(d) => update((l) => moveWidget(l, widget.id, d))}
      onResize={() => update((l) => cycleWidgetSize(l, widget.id))}
      actions={
        <div role="group" className="flex overflow-hidden rounded-md border border-slate-200 text-xs dark:border-slate-700">
          <button type="button" aria-pressed={filtered} onClick={() => setFiltered(true)} className={`max-w-28 truncate px-2 py-0.5 ${filtered ? "bg-slate-800 text-white dark:bg-slate-200 dark:text-slate-900" : ""}`}>
            {name}
          </button>
          <button type="button" aria-pressed={!filtered} onClick={() => setFiltered(false)} className={`px-2 py-0.5 ${!filtered ? "bg-slate-800 text-white dark:bg-slate-200 dark:text-slate-900" : ""}`}>
            {t("allNews")}
          </button>
        </div>
      }
    >
      {asOf !== null ? (
        <p
          data-testid="news-replay-mark"
          className="flex items-center gap-1.5 bg-violet-700 px-3 py-1 text-[11px] font-semibold text-white dark:bg-violet-800"
        >
          <ReplayIcon />
          <span className="min-w-0 truncate">
            {replayText(lang, "newsAsOf")} · <span className="tabular-nums">{asOfText(lang, kstText(asOf))}</span> — {replayText(lang, "notLive")}
          </span>
        </p>
      ) : null}
      <ul
        className={`flex max-h-[26rem] flex-col overflow-y-auto ${asOf !== null ? "border-l-4 border-violet-600 dark:border-violet-400" : ""}`}
        data-testid="news-list"
        data-replay={asOf !== null ? "true" : "false"}
        data-as-of={asOf ?? undefined}
      >
        {news.pending && !news.error ? <li className="px-3 py-4 text-sm text-slate-500">…</li> : null}
        {news.error ? <li className="px-3 py-4 text-sm text-orange-700 dark:text-orange-300">{news.error.message}</li> : null}
        {news.items?.length === 0 ? (
          <li data-testid="news-empty" className="px-3 py-4 text-sm text-slate-500">
            {asOf !== null ? replayText(lang, "newsNone") : t("noNews")}
          </li>
        ) : null}
        {news.items?.map((n) => {
          const href = safeUrl(n.url);
          return (
            <li key={n.id} data-testid="news-item" data-published={n.published} className="border-b border-slate-100 px-3 py-2 last:border-0 dark:border-slate-800">
              {href ? (
                <a href={href} target="_blank" rel="noopener noreferrer" className="line-clamp-2 text-sm font-medium hover:underline focus-visible:underline">
                  {n.title}
                </a>
              ) : (
                <span className="line-clamp-2 text-sm font-medium">{n.title}</span>
              )}
              <div className="mt-0.5 text-[11px] text-slate-500 dark:text-slate-400">
                {n.source} · <time dateTime={new Date(n.published).toISOString()}>{formatTimeAgo(n.published, now || n.published, lang)}</time>
              </div>
            </li>
          );
        })}
      </ul>
    </WidgetFrame>
  );
}

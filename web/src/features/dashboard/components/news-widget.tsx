"use client";

import { useQuery } from "@tanstack/react-query";
import { useState } from "react";
import { usePrefs } from "@/features/prefs/prefs";
import { instrumentQueries, newsQueries } from "@/lib/api";
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
  const news = useQuery(newsQueries.list(filtered ? selectedId : null));
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
      <ul className="flex max-h-[26rem] flex-col overflow-y-auto" data-testid="news-list">
        {news.isPending ? <li className="px-3 py-4 text-sm text-slate-500">…</li> : null}
        {news.isError ? <li className="px-3 py-4 text-sm text-orange-700 dark:text-orange-300">{news.error.message}</li> : null}
        {news.data?.length === 0 ? <li className="px-3 py-4 text-sm text-slate-500">{t("noNews")}</li> : null}
        {news.data?.map((n) => {
          const href = safeUrl(n.url);
          return (
            <li key={n.id} data-testid="news-item" className="border-b border-slate-100 px-3 py-2 last:border-0 dark:border-slate-800">
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

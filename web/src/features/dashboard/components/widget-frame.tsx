"use client";

import { useEffect, useRef, type ReactNode } from "react";
import { usePrefs } from "@/features/prefs/prefs";
import type { Widget } from "@/lib/layout";
import { IconButton } from "./quote-row";

// Grid spans per size: `s` one column, `m` two from the tablet width, `l` two, and three on the
// widest screens.
const SPAN: Record<Widget["size"], string> = {
  s: "col-span-1",
  m: "col-span-1 sm:col-span-2",
  l: "col-span-1 sm:col-span-2 3xl:col-span-3",
};

/** Grid row unit and gap of the dashboard grid (see LiveDashboard): widgets span whole units. */
export const GRID_ROW_PX = 4;
export const GRID_GAP_PX = 12;

/**
 * Masonry without a library: each widget spans as many small grid rows as its height needs, so
 * the dense grid packs short widgets under each other instead of leaving holes.
 */
function useRowSpan() {
  const ref = useRef<HTMLElement>(null);
  useEffect(() => {
    const el = ref.current;
    if (!el || typeof ResizeObserver === "undefined") return;
    const set = () => {
      const span = Math.ceil((el.getBoundingClientRect().height + GRID_GAP_PX) / GRID_ROW_PX);
      const next = `span ${span}`;
      if (el.style.gridRowEnd !== next) el.style.gridRowEnd = next;
    };
    const ro = new ResizeObserver(set);
    ro.observe(el);
    set();
    return () => ro.disconnect();
  }, []);
  return ref;
}

export function WidgetFrame({
  widget,
  editing,
  onToggleEdit,
  onMove,
  onResize,
  actions,
  children,
}: {
  widget: Widget;
  editing: boolean;
  /** Absent when the layout is read-only. */
  onToggleEdit: (() => void) | null;
  onMove: (delta: number) => void;
  onResize: () => void;
  actions?: ReactNode;
  children: ReactNode;
}) {
  const { t, lang } = usePrefs();
  const title = lang === "ko" ? widget.title_ko : widget.title_en;
  const ref = useRowSpan();
  return (
    <section
      ref={ref}
      data-testid="widget"
      data-widget={widget.id}
      data-kind={widget.kind}
      aria-label={title}
      className={`${SPAN[widget.size]} flex min-w-0 flex-col rounded-xl border border-slate-200 bg-white shadow-sm dark:border-slate-800 dark:bg-slate-900/70`}
    >
      <header className="flex items-center gap-2 border-b border-slate-100 px-3 py-2 dark:border-slate-800">
        <h2 className="min-w-0 flex-1 truncate text-sm font-bold" data-testid="widget-title">
          {title}
        </h2>
        {actions}
        {editing ? (
          <>
            <IconButton label={t("moveLeft")} onClick={() => onMove(-1)}>◀</IconButton>
            <IconButton label={t("moveRight")} onClick={() => onMove(1)}>▶</IconButton>
            <IconButton label={`${t("resize")} (${widget.size.toUpperCase()})`} onClick={onResize}>⤢</IconButton>
          </>
        ) : null}
        {onToggleEdit ? (
          <button
            type="button"
            data-testid="edit-widget"
            aria-pressed={editing}
            onClick={onToggleEdit}
            className={`rounded-md px-2 py-0.5 text-xs font-medium outline-none focus-visible:ring-2 focus-visible:ring-sky-500 ${editing ? "bg-sky-600 text-white" : "text-slate-500 hover:bg-slate-100 dark:text-slate-400 dark:hover:bg-slate-800"}`}
          >
            {editing ? t("done") : t("edit")}
          </button>
        ) : null}
      </header>
      {children}
    </section>
  );
}

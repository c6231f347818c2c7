// The dashboard layout: widgets, their order, size and instruments, and the chart's instrument,
// interval and style. Stored as JSON through `/api/v1/layouts` (JSONB); parsed defensively on the
// way in, since a stored layout may come from an older or foreign client. Pure functions only.
import type { Interval } from "./types";

export type WidgetKind = "quotes" | "chart" | "news";
export type WidgetSize = "s" | "m" | "l";
export type ChartStyle = "candle" | "line";

export interface Widget {
  /** Stable within a layout (`w1`, `w2`, …). */
  id: string;
  kind: WidgetKind;
  title_ko: string;
  title_en: string;
  size: WidgetSize;
  /** Instruments of a quotes widget, in display order. */
  ids: string[];
}

export interface ChartSettings {
  id: string;
  interval: Interval;
  style: ChartStyle;
}

export interface Layout {
  version: 1;
  widgets: Widget[];
  chart: ChartSettings;
}

export const INTERVALS: readonly Interval[] = ["1m", "5m", "15m", "1h", "1d", "1w"];
/** Largest number of instruments in one widget, and on the page (the socket's cap is 200). */
export const MAX_IDS_PER_WIDGET = 40;
export const MAX_WIDGETS = 24;

export function defaultLayout(): Layout {
  return {
    version: 1,
    widgets: [
      { id: "w1", kind: "quotes", title_ko: "국내주식", title_en: "Korean stocks", size: "s", ids: ["stock.krx.058610", "stock.krx.086520", "stock.krx.068270"] },
      { id: "w2", kind: "quotes", title_ko: "지수", title_en: "Indices", size: "s", ids: ["index.krx.KOSPI", "index.krx.KOSDAQ", "index.us.DJI", "index.us.IXIC"] },
      { id: "w5", kind: "quotes", title_ko: "해외주식", title_en: "US stocks", size: "s", ids: ["stock.us.BMNR", "stock.us.GOOG", "stock.us.FIG"] },
      { id: "w3", kind: "chart", title_ko: "차트", title_en: "Chart", size: "l", ids: [] },
      { id: "w4", kind: "quotes", title_ko: "암호화폐", title_en: "Crypto", size: "s", ids: ["crypto.upbit.KRW-BTC", "crypto.upbit.KRW-ETH", "crypto.upbit.KRW-SOL", "crypto.upbit.KRW-XRP", "crypto.upbit.KRW-LINK", "crypto.upbit.KRW-SUI", "crypto.upbit.KRW-ONDO"] },
      { id: "w6", kind: "quotes", title_ko: "금/은", title_en: "Gold/Silver", size: "s", ids: ["metal.spot.XAU", "metal.spot.XAG", "derived.metal.XAUKRW-G", "derived.metal.XAUKRW-DON"] },
      { id: "w7", kind: "quotes", title_ko: "환율", title_en: "FX", size: "s", ids: ["fx.spot.USDKRW"] },
      { id: "w8", kind: "news", title_ko: "뉴스", title_en: "News", size: "m", ids: [] },
    ],
    chart: { id: "crypto.upbit.KRW-BTC", interval: "1m", style: "candle" },
  };
}

const ID_RE = /^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+){2,}$/;

function str(v: unknown, fallback: string, max = 40): string {
  return typeof v === "string" && v.length > 0 ? v.slice(0, max) : fallback;
}

/** Parses a stored layout; anything malformed falls back to the default's values. */
export function parseLayout(raw: unknown): Layout {
  const base = defaultLayout();
  if (typeof raw !== "object" || raw === null) return base;
  const r = raw as Record<string, unknown>;
  const widgets: Widget[] = [];
  const seen = new Set<string>();
  if (Array.isArray(r.widgets)) {
    for (const w of r.widgets.slice(0, MAX_WIDGETS)) {
      if (typeof w !== "object" || w === null) continue;
      const o = w as Record<string, unknown>;
      const kind = o.kind === "quotes" || o.kind === "chart" || o.kind === "news" ? o.kind : null;
      if (!kind) continue;
      let id = str(o.id, `w${widgets.length + 1}`);
      while (seen.has(id)) id = `${id}_`;
      seen.add(id);
      const ids = Array.isArray(o.ids)
        ? [...new Set(o.ids.filter((x): x is string => typeof x === "string" && ID_RE.test(x)))].slice(0, MAX_IDS_PER_WIDGET)
        : [];
      widgets.push({
        id,
        kind,
        title_ko: str(o.title_ko, kind),
        title_en: str(o.title_en, kind),
        size: o.size === "s" || o.size === "m" || o.size === "l" ? o.size : "s",
        ids: kind === "quotes" ? ids : [],
      });
    }
  } else {
    widgets.push(...base.widgets);
  }
  const c = (typeof r.chart === "object" && r.chart !== null ? r.chart : {}) as Record<string, unknown>;
  const chart: ChartSettings = {
    id: typeof c.id === "string" && ID_RE.test(c.id) ? c.id : base.chart.id,
    interval: INTERVALS.includes(c.interval as Interval) ? (c.interval as Interval) : base.chart.interval,
    style: c.style === "line" ? "line" : "candle",
  };
  return { version: 1, widgets, chart };
}

/** Every instrument on screen: the quotes widgets' ids and the chart's, deduplicated, in order. */
export function layoutIds(layout: Layout): string[] {
  const ids = new Set<string>();
  for (const w of layout.widgets) for (const id of w.ids) ids.add(id);
  if (layout.widgets.some((w) => w.kind === "chart")) ids.add(layout.chart.id);
  return [...ids];
}

function mapWidget(layout: Layout, widgetId: string, f: (w: Widget) => Widget): Layout {
  let changed = false;
  const widgets = layout.widgets.map((w) => {
    if (w.id !== widgetId) return w;
    const next = f(w);
    if (next !== w) changed = true;
    return next;
  });
  return changed ? { ...layout, widgets } : layout;
}

/** Appends an instrument to a widget (no-op if present or full). */
export function addInstrument(layout: Layout, widgetId: string, id: string): Layout {
  return mapWidget(layout, widgetId, (w) =>
    w.ids.includes(id) || w.ids.length >= MAX_IDS_PER_WIDGET ? w : { ...w, ids: [...w.ids, id] },
  );
}

export function removeInstrument(layout: Layout, widgetId: string, id: string): Layout {
  return mapWidget(layout, widgetId, (w) => (w.ids.includes(id) ? { ...w, ids: w.ids.filter((x) => x !== id) } : w));
}

/** Replaces `from` with `to` at the same position; if `to` is already in the widget, the two trade places. */
export function swapInstrument(layout: Layout, widgetId: string, from: string, to: string): Layout {
  if (from === to) return layout;
  return mapWidget(layout, widgetId, (w) => {
    const i = w.ids.indexOf(from);
    if (i < 0) return w;
    const j = w.ids.indexOf(to);
    const ids = [...w.ids];
    ids[i] = to;
    if (j >= 0) ids[j] = from;
    return { ...w, ids };
  });
}

/** Moves an instrument by `delta` places within its widget, clamped to the ends. */
export function moveInstrument(layout: Layout, widgetId: string, id: string, delta: number): Layout {
  return mapWidget(layout, widgetId, (w) => {
    const i = w.ids.indexOf(id);
    const j = Math.min(Math.max(i + delta, 0), w.ids.length - 1);
    if (i < 0 || i === j) return w;
    const ids = [...w.ids];
    ids.splice(i, 1);
    ids.splice(j, 0, id);
    return { ...w, ids };
  });
}

/** Moves a whole widget by `delta` places in the grid. */
export function moveWidget(layout: Layout, widgetId: string, delta: number): Layout {
  const i = layout.widgets.findIndex((w) => w.id === widgetId);
  const j = Math.min(Math.max(i + delta, 0), layout.widgets.length - 1);
  if (i < 0 || i === j) return layout;
  const widgets = [...layout.widgets];
  const [w] = widgets.splice(i, 1);
  widgets.splice(j, 0, w!);
  return { ...layout, widgets };
}

const NEXT_SIZE: Record<WidgetSize, WidgetSize> = { s: "m", m: "l", l: "s" };

export function cycleWidgetSize(layout: Layout, widgetId: string): Layout {
  return mapWidget(layout, widgetId, (w) => ({ ...w, size: NEXT_SIZE[w.size] }));
}

export function setChart(layout: Layout, patch: Partial<ChartSettings>): Layout {
  const chart = { ...layout.chart, ...patch };
  if (chart.id === layout.chart.id && chart.interval === layout.chart.interval && chart.style === layout.chart.style) {
    return layout;
  }
  return { ...layout, chart };
}

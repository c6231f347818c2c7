"use client";

// The chart: a Lightweight Charts v5 instance owned by this component (made in an effect,
// removed in its cleanup). History comes page by page from REST (`candleQueries.history`,
// older pages when the user scrolls left); the live last candle is folded from raw WebSocket
// ticks and drawn once per animation frame; news about the instrument are markers. Times are
// shifted to KST wall clock (see lib/candles). A bucket with no trade while the market was open
// is drawn as a hole (whitespace points, see ./gaps), never bridged. During a 시점 재생 the
// history is the one at the replay's start and the last candle grows from replayed ticks only.
import { useInfiniteQuery } from "@tanstack/react-query";
import {
  CandlestickSeries,
  ColorType,
  createChart,
  createSeriesMarkers,
  CrosshairMode,
  HistogramSeries,
  LineSeries,
  type IChartApi,
  type ISeriesApi,
  type ISeriesMarkersPluginApi,
  type MouseEventParams,
  type SeriesMarker,
  type Time,
  type UTCTimestamp,
} from "lightweight-charts";
import { useEffect, useRef, useState } from "react";
import { useFeed } from "@/features/live/feed-context";
import { usePrefs } from "@/features/prefs/prefs";
import { replayCandleQueries } from "@/features/replay/replay-api";
import { dataFromText, replayText } from "@/features/replay/messages";
import { useReplayGap, useReplayView } from "@/features/replay/replay-context";
import { kstText } from "@/features/replay/replay-url";
import { useNews } from "@/features/replay/use-news";
import { candleQueries } from "@/lib/api";
import { applyTick, candleAt, INTERVAL_MS, mergePages, toChartTime } from "@/lib/candles";
import { formatPrice, formatVolume, priceDigits } from "@/lib/format";
import type { ChartStyle } from "@/lib/layout";
import type { Candle, Instrument, Interval, Quote } from "@/lib/types";
import { GapCalendar, gapsBetween, isGap, withGaps } from "./gaps";

const UP = { light: "#e5383b", dark: "#ff5a5f" };
const DOWN = { light: "#1e6fe8", dark: "#4c8dff" };

interface Series {
  candle: ISeriesApi<"Candlestick">;
  line: ISeriesApi<"Line">;
  volume: ISeriesApi<"Histogram">;
  markers: ISeriesMarkersPluginApi<Time>;
}

const time = (t: number) => toChartTime(t) as UTCTimestamp;

function palette(dark: boolean) {
  return { up: dark ? UP.dark : UP.light, down: dark ? DOWN.dark : DOWN.light };
}

/**
 * History pages are fetched at different times: the newest page may be older than the candles
 * built from ticks since. Keep the live candles at or after the last REST candle (for the same
 * `t`, the one with more volume, since a candle's volume only grows).
 */
function keepLive(rest: Candle[], live: readonly Candle[]): Candle[] {
  const lastT = rest[rest.length - 1]?.t;
  if (lastT === undefined) return [...live];
  const out = [...rest];
  for (const c of live) {
    if (c.t < lastT) continue;
    if (c.t === lastT) {
      if (c.v > out[out.length - 1]!.v) out[out.length - 1] = c;
    } else out.push(c);
  }
  return out;
}

function volumeColor(c: Candle, dark: boolean): string {
  const p = palette(dark);
  return `${c.c >= c.o ? p.up : p.down}55`;
}

/** Ticks kept while the history is still loading (folded in once it arrives). */
const MAX_EARLY_TICKS = 5_000;

export default function PriceChart({
  id,
  interval,
  style,
  instrument,
}: {
  id: string;
  interval: Interval;
  style: ChartStyle;
  instrument: Instrument | undefined;
}) {
  const { dark, lang, t } = usePrefs();
  const feed = useFeed();
  const container = useRef<HTMLDivElement>(null);
  const legend = useRef<HTMLDivElement>(null);
  const chartRef = useRef<IChartApi | null>(null);
  const seriesRef = useRef<Series | null>(null);
  const bars = useRef<Candle[]>([]);
  const barsKey = useRef("");
  const darkRef = useRef(dark);
  const fmt = useRef({ currency: "KRW", decimals: 0, lang });
  const replayFrom = useReplayView()?.params.from ?? null;
  const history = useInfiniteQuery(
    (replayFrom === null ? candleQueries.history(id, interval) : replayCandleQueries.history(id, interval, replayFrom)) as ReturnType<
      typeof candleQueries.history
    >,
  );
  const market = instrument?.market ?? "crypto";
  const marketRef = useRef(market);
  const early = useRef<Quote[]>([]);
  /** The series whose history has arrived (`id|interval|replay`); ticks wait until then. */
  const loadedKey = useRef("");
  // Calendar answers behind the gaps, kept for the life of the chart (redraws cost ~nothing).
  const [gapCal] = useState(() => new GapCalendar());
  // During a replay only the headlines published by the replay clock are marked.
  const news = useNews(id).items;
  // A replay at a time without records of this instrument: say so rather than draw a blank.
  const gap = useReplayGap(id);
  const paging = useRef({ hasNext: false, fetching: false, fetchNext: () => {} });

  useEffect(() => {
    darkRef.current = dark;
    marketRef.current = market;
    fmt.current = { currency: instrument?.currency ?? "KRW", decimals: instrument?.decimals ?? 0, lang };
    paging.current = {
      hasNext: history.hasNextPage,
      fetching: history.isFetchingNextPage || history.isFetching,
      fetchNext: () => void history.fetchNextPage(),
    };
  });

  const writeLegend = (c: Candle | undefined) => {
    const el = legend.current;
    if (!el) return;
    if (!c) {
      el.textContent = "";
      return;
    }
    const { currency, decimals, lang: l } = fmt.current;
    const f = (v: number) => formatPrice(v, currency, decimals);
    const up = c.c >= c.o;
    el.dataset.direction = up ? "up" : "down";
    el.textContent = `O ${f(c.o)}  H ${f(c.h)}  L ${f(c.l)}  C ${f(c.c)}  V ${formatVolume(c.v, l)}`;
  };

  /** All bars → the three series, with holes where the market was open but nothing traded. */
  const redraw = (iv: Interval) => {
    const s = seriesRef.current;
    if (!s) return;
    const d = darkRef.current;
    const bars2 = withGaps(bars.current, iv, marketRef.current, gapCal);
    s.candle.setData(bars2.map((c) => (isGap(c) ? { time: time(c.t) } : { time: time(c.t), open: c.o, high: c.h, low: c.l, close: c.c })));
    s.line.setData(bars2.map((c) => (isGap(c) ? { time: time(c.t) } : { time: time(c.t), value: c.c })));
    s.volume.setData(bars2.map((c) => (isGap(c) ? { time: time(c.t) } : { time: time(c.t), value: c.v, color: volumeColor(c, d) })));
    if (container.current) {
      container.current.dataset.bars = String(bars.current.length);
      container.current.dataset.gaps = String(bars2.length - bars.current.length);
    }
  };

  // Create the chart once; remove it on unmount.
  useEffect(() => {
    const el = container.current;
    if (!el) return;
    const chart = createChart(el, {
      autoSize: true,
      layout: { attributionLogo: true, fontFamily: "inherit", fontSize: 11, background: { type: ColorType.Solid, color: "transparent" } },
      crosshair: { mode: CrosshairMode.Normal },
      rightPriceScale: { borderVisible: false },
      timeScale: { borderVisible: false, timeVisible: true, secondsVisible: false, rightOffset: 4 },
      localization: {
        locale: "ko-KR",
        // Times are already shifted to KST; print them as UTC wall clock.
        timeFormatter: (tm: Time) => {
          const d = new Date((tm as number) * 1000);
          const p = (n: number) => String(n).padStart(2, "0");
          return `${d.getUTCFullYear()}-${p(d.getUTCMonth() + 1)}-${p(d.getUTCDate())} ${p(d.getUTCHours())}:${p(d.getUTCMinutes())} KST`;
        },
      },
    });
    const candle = chart.addSeries(CandlestickSeries, { borderVisible: false, priceLineVisible: true });
    const line = chart.addSeries(LineSeries, { lineWidth: 2, visible: false });
    const volume = chart.addSeries(HistogramSeries, { priceFormat: { type: "volume" }, priceScaleId: "", lastValueVisible: false, priceLineVisible: false });
    volume.priceScale().applyOptions({ scaleMargins: { top: 0.8, bottom: 0 } });
    const markers = createSeriesMarkers(candle, []);
    chartRef.current = chart;
    seriesRef.current = { candle, line, volume, markers };

    const onMove = (p: MouseEventParams<Time>) => {
      if (p.time === undefined) {
        writeLegend(bars.current[bars.current.length - 1]);
        return;
      }
      const ms = (p.time as number) * 1000 - 9 * 3600_000;
      writeLegend(bars.current.find((b) => b.t === ms));
    };
    chart.subscribeCrosshairMove(onMove);
    const onRange = (r: { from: number; to: number } | null) => {
      const pg = paging.current;
      if (r && r.from < 30 && pg.hasNext && !pg.fetching && bars.current.length > 0) pg.fetchNext();
    };
    chart.timeScale().subscribeVisibleLogicalRangeChange(onRange);
    return () => {
      chart.unsubscribeCrosshairMove(onMove);
      chart.timeScale().unsubscribeVisibleLogicalRangeChange(onRange);
      chart.remove();
      chartRef.current = null;
      seriesRef.current = null;
    };
  }, []);

  // Theme and colours.
  useEffect(() => {
    const chart = chartRef.current;
    const s = seriesRef.current;
    if (!chart || !s) return;
    const p = palette(dark);
    const grid = dark ? "#1e293b" : "#eef2f7";
    chart.applyOptions({
      layout: { textColor: dark ? "#cbd5e1" : "#334155" },
      grid: { vertLines: { color: grid }, horzLines: { color: grid } },
    });
    s.candle.applyOptions({ upColor: p.up, downColor: p.down, wickUpColor: p.up, wickDownColor: p.down });
    s.line.applyOptions({ color: dark ? "#38bdf8" : "#0369a1" });
    redraw(interval);
    // eslint-disable-next-line react-hooks/exhaustive-deps -- colours only; data effects redraw on their own
  }, [dark]);

  // Candles or line.
  useEffect(() => {
    const s = seriesRef.current;
    if (!s) return;
    s.candle.applyOptions({ visible: style === "candle" });
    s.line.applyOptions({ visible: style === "line" });
  }, [style]);

  // Price precision of the instrument.
  useEffect(() => {
    const s = seriesRef.current;
    if (!s || !instrument) return;
    const last = bars.current[bars.current.length - 1]?.c ?? 1000;
    const precision = priceDigits(last, instrument.currency, instrument.decimals);
    const priceFormat = { type: "price" as const, precision, minMove: 1 / 10 ** precision };
    s.candle.applyOptions({ priceFormat });
    s.line.applyOptions({ priceFormat });
    // Thousands separators on the axis and crosshair label.
    chartRef.current?.applyOptions({ localization: { priceFormatter: (p: number) => formatPrice(p, instrument.currency, precision) } });
  }, [instrument, history.data]);

  // History → series (first page, older pages, or a refetch after a reconnect).
  const pages = history.data?.pages;
  const key = `${id}|${interval}|${replayFrom ?? "live"}`;
  useEffect(() => {
    const s = seriesRef.current;
    if (!s) return;
    if (barsKey.current !== key) {
      // Another instrument, interval, or replay: nothing of the old series carries over.
      barsKey.current = key;
      bars.current = [];
      if (!pages) early.current = [];
    }
    const merged = keepLive(pages ? mergePages(pages) : [], bars.current);
    if (pages) {
      // History is here (possibly empty: nothing before a replay's start): fold in what waited.
      loadedKey.current = key;
      for (const tk of early.current) applyTick(merged, tk, interval);
      early.current = [];
    }
    bars.current = merged;
    redraw(interval);
    writeLegend(merged[merged.length - 1]);
    // eslint-disable-next-line react-hooks/exhaustive-deps -- `key` covers id, interval and the replay
  }, [pages, key]);

  // Live ticks → the last candle, drawn at most once per frame.
  useEffect(() => {
    let raf: number | null = null;
    let dirty: Candle | null = null;
    let added = false;
    const draw = () => {
      raf = null;
      const s = seriesRef.current;
      const c = dirty;
      dirty = null;
      if (!s || !c) return;
      const tm = time(c.t);
      s.candle.update({ time: tm, open: c.o, high: c.h, low: c.l, close: c.c });
      s.line.update({ time: tm, value: c.c });
      s.volume.update({ time: tm, value: c.v, color: volumeColor(c, darkRef.current) });
      writeLegend(c);
      if (container.current) {
        container.current.dataset.last = String(c.c);
        if (added) container.current.dataset.bars = String(bars.current.length);
      }
      added = false;
    };
    const off = feed.onTicks(id, (ticks) => {
      if (loadedKey.current !== key) {
        // History not here yet: keep the ticks to fold in when it comes.
        if (early.current.length < MAX_EARLY_TICKS) early.current.push(...ticks);
        return;
      }
      for (const tk of ticks) {
        const before = bars.current.length;
        const prevT = bars.current[before - 1]?.t;
        const c = applyTick(bars.current, tk, interval);
        if (!c) continue;
        if (bars.current.length !== before && prevT !== undefined && c.t > prevT + INTERVAL_MS[interval] && gapsBetween(prevT, c.t, interval, marketRef.current, gapCal).length > 0) {
          // The new candle skipped buckets while the market was open: redraw with the hole.
          if (dirty && dirty !== c) draw();
          dirty = null;
          redraw(interval);
          writeLegend(c);
          if (container.current) container.current.dataset.last = String(c.c);
          continue;
        }
        if (dirty && dirty !== c) draw();
        dirty = c;
        if (bars.current.length !== before) added = true;
      }
      if (dirty && raf === null) raf = requestAnimationFrame(draw);
    });
    return () => {
      off();
      if (raf !== null) cancelAnimationFrame(raf);
    };
    // eslint-disable-next-line react-hooks/exhaustive-deps -- redraw reads refs and the chart's own GapCalendar
  }, [feed, id, interval, key]);

  // News headlines about this instrument as markers on their candles.
  useEffect(() => {
    const s = seriesRef.current;
    if (!s) return;
    const markers: SeriesMarker<Time>[] = [];
    const seen = new Set<number>();
    for (const n of news ?? []) {
      const t0 = candleAt(bars.current, n.published, interval);
      if (t0 === null || seen.has(t0)) continue;
      seen.add(t0);
      markers.push({ time: time(t0), position: "aboveBar", shape: "circle", color: "#f59e0b", text: lang === "ko" ? "뉴스" : "News", id: n.id });
    }
    markers.sort((a, b) => (a.time as number) - (b.time as number));
    s.markers.setMarkers(markers);
  }, [news, pages, interval, lang]);

  return (
    <div className="relative h-full w-full">
      <div ref={container} data-testid="chart" data-id={id} data-interval={interval} data-style={style} className="absolute inset-0" />
      <div
        ref={legend}
        data-testid="chart-legend"
        aria-live="off"
        className="pointer-events-none absolute top-1 left-2 z-10 rounded bg-white/70 px-1 text-[11px] tabular-nums text-slate-700 data-[direction=down]:text-[var(--color-down)] data-[direction=up]:text-[var(--color-up)] dark:bg-slate-900/60"
      />
      {history.isPending ? (
        <div className="absolute inset-0 flex items-center justify-center text-sm text-slate-500">{t("chartLoading")}</div>
      ) : null}
      {gap && history.isSuccess && history.data.pages.every((p) => p.length === 0) ? (
        <div data-testid="chart-replay-gap" role="status" className="absolute inset-0 flex flex-col items-center justify-center gap-1 text-sm font-semibold text-violet-700 dark:text-violet-300">
          <span>{replayText(lang, "noDataAt")}</span>
          {gap.next !== null ? <span className="text-xs font-normal">{dataFromText(lang, kstText(gap.next))}</span> : null}
        </div>
      ) : null}
      {history.isError ? (
        <div role="alert" className="absolute inset-0 flex items-center justify-center text-sm text-orange-700 dark:text-orange-300">
          {history.error.message}
        </div>
      ) : null}
    </div>
  );
}

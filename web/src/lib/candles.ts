// Candle helpers for the chart: interval lengths, merging history pages, folding live ticks
// into the last (open) candle, and the KST time axis (Lightweight Charts draws times as UTC, so
// times are shifted by +9 h: the axis and crosshair then read Korean wall-clock time).
import type { Candle, Interval } from "./types";

const MIN = 60_000;
export const INTERVAL_MS: Record<Interval, number> = {
  "1m": MIN,
  "5m": 5 * MIN,
  "15m": 15 * MIN,
  "1h": 60 * MIN,
  "1d": 1440 * MIN,
  "1w": 7 * 1440 * MIN,
};

export const KST_OFFSET_MS = 9 * 3600_000;

/** Epoch ms → the chart's time (seconds, shifted to KST wall clock). */
export function toChartTime(epochMs: number): number {
  return Math.floor((epochMs + KST_OFFSET_MS) / 1000);
}

/** The chart's time → epoch ms. */
export function fromChartTime(chartTime: number): number {
  return chartTime * 1000 - KST_OFFSET_MS;
}

/**
 * Joins history pages (any order, each ascending) into one ascending series without duplicate
 * `t`; for a duplicate the later page in `pages` order wins unless it came from an older page.
 */
export function mergePages(pages: readonly (readonly Candle[])[]): Candle[] {
  const byT = new Map<number, Candle>();
  // pages[0] is the newest page (first fetched); older pages must not overwrite newer candles.
  for (let i = pages.length - 1; i >= 0; i--) for (const c of pages[i] ?? []) byT.set(c.t, { ...c });
  return [...byT.values()].sort((a, b) => a.t - b.t);
}

export interface TickLike {
  price: number;
  volume: number;
  ts: number;
}

/**
 * Folds a tick into the series in place: into the last candle if it falls in its bucket, or a
 * new candle after it (buckets aligned to the last candle's `t`). Ticks older than the last
 * candle are ignored. Returns the candle that changed, or null.
 */
export function applyTick(candles: Candle[], tick: TickLike, interval: Interval): Candle | null {
  const step = INTERVAL_MS[interval];
  const last = candles[candles.length - 1];
  if (!last) {
    const t = interval === "1d" || interval === "1w"
      ? Math.floor((tick.ts + KST_OFFSET_MS) / step) * step - KST_OFFSET_MS
      : Math.floor(tick.ts / step) * step;
    const c = { t, o: tick.price, h: tick.price, l: tick.price, c: tick.price, v: tick.volume };
    candles.push(c);
    return c;
  }
  if (tick.ts < last.t) return null;
  if (tick.ts < last.t + step) {
    last.h = Math.max(last.h, tick.price);
    last.l = Math.min(last.l, tick.price);
    last.c = tick.price;
    last.v += tick.volume;
    return last;
  }
  const t = last.t + Math.floor((tick.ts - last.t) / step) * step;
  const c = { t, o: tick.price, h: tick.price, l: tick.price, c: tick.price, v: tick.volume };
  candles.push(c);
  return c;
}

/** The `t` of the candle containing `epochMs`, or null when outside the loaded range. */
export function candleAt(candles: readonly Candle[], epochMs: number, interval: Interval): number | null {
  const step = INTERVAL_MS[interval];
  let lo = 0;
  let hi = candles.length - 1;
  while (lo <= hi) {
    const mid = (lo + hi) >> 1;
    const c = candles[mid]!;
    if (epochMs < c.t) hi = mid - 1;
    else if (epochMs >= c.t + step) lo = mid + 1;
    else return c.t;
  }
  return null;
}

// Gaps in a candle series. The edge returns only buckets that had ticks, so a bucket missing
// between two candles is either a quiet market (night, weekend, holiday: nothing to draw) or a
// gap while the market was open (no data: the chart must show a hole, never a line drawn across
// it or an invented bar). `withGaps` puts an explicit gap point (Lightweight Charts' whitespace
// data `{ time }`) at each missing bucket during which the market's calendar says it was open.
import { marketSession } from "@/lib/market-clock";
import { INTERVAL_MS } from "@/lib/candles";
import type { Candle, Interval } from "@/lib/types";

/** A bucket with no data while the market was open. */
export interface Gap {
  t: number;
  gap: true;
}

export type Bar = Candle | Gap;

export const isGap = (b: Bar): b is Gap => "gap" in b;

/** Whether `market` is open at `epochMs` (the calendar's regular session). */
export type OpenAt = (market: string, epochMs: number) => boolean;

export const calendarOpen: OpenAt = (market, epochMs) => marketSession(market, epochMs).state === "open";

/** Points sampled inside a bucket longer than this (sessions start and end on the quarter hour). */
const SAMPLE_MS = 15 * 60_000;

/**
 * `open`, asked once per quarter hour: a time inside a quarter whose start and end agree gets
 * their answer, and only a quarter in which the session changes is asked minute by minute. A
 * calendar lookup costs ~0.1 ms (Intl), so a weekend of missing minutes would otherwise cost
 * thousands of them.
 */
export function quarterHourly(open: OpenAt): OpenAt {
  const slots = new Map<string, boolean>();
  const at = (market: string, slot: number) => {
    const k = `${market}|${slot}`;
    let v = slots.get(k);
    if (v === undefined) {
      v = open(market, slot * SAMPLE_MS);
      slots.set(k, v);
    }
    return v;
  };
  return (market, t) => {
    const slot = Math.floor(t / SAMPLE_MS);
    const start = at(market, slot);
    if (t === slot * SAMPLE_MS) return start;
    return start === at(market, slot + 1) ? start : open(market, t);
  };
}
/** Most gap points put into one hole (a long outage stays a hole, just not wider than this). */
export const MAX_GAP_BARS = 2_000;

/** Whether the market was open at any time within the bucket `[t, t + step)`. */
export function bucketOpen(market: string, t: number, step: number, open: OpenAt = calendarOpen): boolean {
  if (step <= SAMPLE_MS) return open(market, t);
  for (let s = t; s < t + step; s += SAMPLE_MS) if (open(market, s)) return true;
  return false;
}

/**
 * The candles with a gap point at every missing bucket between two candles during which the
 * market was open. Buckets before the first or after the last candle are not gaps (no history
 * yet, or the present). `candles` must be ascending by `t` and aligned to `interval`.
 */
export function withGaps(candles: readonly Candle[], interval: Interval, market: string, openAt: OpenAt = calendarOpen): Bar[] {
  const step = INTERVAL_MS[interval];
  const open = quarterHourly(openAt);
  const out: Bar[] = [];
  let prev: Candle | undefined;
  for (const c of candles) {
    if (prev) {
      let added = 0;
      for (let t = prev.t + step; t < c.t && added < MAX_GAP_BARS; t += step) {
        if (bucketOpen(market, t, step, open)) {
          out.push({ t, gap: true });
          added++;
        }
      }
    }
    out.push(c);
    prev = c;
  }
  return out;
}

/** Gap points for the buckets strictly between `fromT` and `toT` (a live candle that skipped some). */
export function gapsBetween(fromT: number, toT: number, interval: Interval, market: string, openAt: OpenAt = calendarOpen): Gap[] {
  const step = INTERVAL_MS[interval];
  const open = quarterHourly(openAt);
  const out: Gap[] = [];
  for (let t = fromT + step; t < toT && out.length < MAX_GAP_BARS; t += step) {
    if (bucketOpen(market, t, step, open)) out.push({ t, gap: true });
  }
  return out;
}

// Gaps in a candle series. The edge returns only buckets that had ticks, so a bucket missing
// between two candles is either a quiet market (night, weekend, holiday: nothing to draw) or a
// gap while the market was open (no data: the chart must show a hole, never a line drawn across
// it or an invented bar). `withGaps` puts an explicit gap point (Lightweight Charts' whitespace
// data `{ time }`) at each missing bucket during which the market's calendar says it was open.
//
// The calendar (lib/market-clock) answers one instant at a time through Intl, ~0.05–0.2 ms a
// question, so a weekend of missing minutes must not be asked minute by minute: `GapCalendar`
// works with whole local days and each day's session, and remembers its answers for the life
// of the chart.
import { INTERVAL_MS } from "@/lib/candles";
import { isTradingDay, localTime, MARKET_CALENDAR, marketSession } from "@/lib/market-clock";
import type { Candle, Interval } from "@/lib/types";

/** A bucket with no data while the market was open. */
export interface Gap {
  t: number;
  gap: true;
}

export type Bar = Candle | Gap;

export const isGap = (b: Bar): b is Gap => "gap" in b;

/** Whether `market` is in its regular session at `epochMs`. */
export type OpenAt = (market: string, epochMs: number) => boolean;

/** What the gap finder needs to know about a market (the calendar, or a test's stand-in). */
export interface CalendarSource {
  open: OpenAt;
  /** Whether a regular session starts on local `date` (`YYYY-MM-DD`). */
  tradingDay: (market: string, date: string) => boolean;
  /** The market's time zone. */
  timeZone: (market: string) => string;
  /** Whether the market never closes. */
  alwaysOpen: (market: string) => boolean;
}

export const CALENDAR: CalendarSource = {
  open: (market, t) => marketSession(market, t).state === "open",
  tradingDay: (market, date) => isTradingDay(market, date),
  timeZone: (market) => MARKET_CALENDAR.markets[market]?.timeZone ?? "Asia/Seoul",
  alwaysOpen: (market) => MARKET_CALENDAR.markets[market]?.alwaysOpen === true,
};

const MIN = 60_000;
const HOUR = 60 * MIN;
const DAY = 24 * HOUR;

/** Most gap points put into one hole (a long outage stays a hole, just not wider than this). */
export const MAX_GAP_BARS = 2_000;

/** The regular session that starts on a local day, as epoch ms `[start, end)`. */
export interface Session {
  start: number;
  end: number;
}

/**
 * Remembered calendar answers for the buckets of one chart. Intraday holes are walked local day
 * by local day: a day with no regular session is skipped whole; a trading day's session is found
 * once per market and UTC offset (probing by hour, then by minute) and, on every other day, only
 * confirmed at its four edges — a special day (late open, early close) fails that check and is
 * probed on its own. A market is assumed to have one regular session a day (true of KRX, the US
 * exchanges, and the FX/metal rates; a lunch break would count as open).
 */
export class GapCalendar {
  private readonly opens = new Map<string, boolean>();
  private readonly days = new Map<string, Session | null>();
  private readonly patterns = new Map<string, { s: number; e: number } | null>();

  constructor(private readonly cal: CalendarSource = CALENDAR) {}

  /** Whether the market never closes. */
  alwaysOpen(market: string): boolean {
    return this.cal.alwaysOpen(market);
  }

  private openAt(market: string, t: number): boolean {
    const k = `${market}|${t}`;
    let v = this.opens.get(k);
    if (v === undefined) {
      v = this.cal.open(market, t);
      this.opens.set(k, v);
    }
    return v;
  }

  /** The local day containing `t`: its date and the epoch ms of its midnight. */
  private dayOf(market: string, t: number): { date: string; midnight: number } {
    const k = `${market}|${t}`;
    let v = this.dayCache.get(k);
    if (!v) {
      const lt = localTime(t, this.cal.timeZone(market));
      const sinceMidnight = lt.minutes * MIN + Number(lt.ss) * 1000 + (t % 1000);
      v = { date: lt.date, midnight: t - sinceMidnight };
      this.dayCache.set(k, v);
    }
    return v;
  }

  private readonly dayCache = new Map<string, { date: string; midnight: number }>();

  /** Probes one day for its open session: the first open hour, then minute-exact edges. */
  private probe(market: string, midnight: number): Session | null {
    let first: number | null = null;
    for (let h = 0; h < 24; h++) {
      if (this.openAt(market, midnight + h * HOUR)) {
        first = midnight + h * HOUR;
        break;
      }
    }
    if (first === null) return null;
    // Start: the first open minute after the last closed hour before `first`.
    let lo = Math.max(midnight, first - HOUR);
    let hi = first;
    if (lo < hi && this.openAt(market, lo)) hi = lo;
    while (hi - lo > MIN) {
      const mid = lo + Math.floor((hi - lo) / 2 / MIN) * MIN;
      if (this.openAt(market, mid)) hi = mid;
      else lo = mid;
    }
    const start = this.openAt(market, lo) ? lo : hi;
    // End: walk by hours while open (up to two days), then the first closed minute.
    let last = first;
    while (last + HOUR <= midnight + 2 * DAY && this.openAt(market, last + HOUR)) last += HOUR;
    lo = last;
    hi = last + HOUR;
    while (hi - lo > MIN) {
      const mid = lo + Math.floor((hi - lo) / 2 / MIN) * MIN;
      if (this.openAt(market, mid)) lo = mid;
      else hi = mid;
    }
    return { start, end: hi };
  }

  /** The open session that starts on the local day `date` (midnight at `midnight`), if any. */
  session(market: string, date: string, midnight: number): Session | null {
    const k = `${market}|${date}`;
    const known = this.days.get(k);
    if (known !== undefined) return known;
    let found: Session | null = null;
    if (this.cal.tradingDay(market, date)) {
      const offset = Date.parse(`${date}T00:00:00Z`) - midnight;
      const pk = `${market}|${offset}`;
      const p = this.patterns.get(pk);
      if (p) {
        const s = midnight + p.s;
        const e = midnight + p.e;
        const same = this.openAt(market, s) && !this.openAt(market, s - MIN) && this.openAt(market, e - MIN) && !this.openAt(market, e);
        found = same ? { start: s, end: e } : this.probe(market, midnight);
      } else {
        found = this.probe(market, midnight);
        this.patterns.set(pk, found ? { s: found.start - midnight, e: found.end - midnight } : null);
      }
    }
    this.days.set(k, found);
    return found;
  }

  /** The open sessions that may overlap `[from, to)`, walking local days (and the day before). */
  sessionsIn(market: string, from: number, to: number): Session[] {
    const out: Session[] = [];
    let day = this.dayOf(market, from - DAY);
    for (let guard = 0; guard < 4000 && day.midnight < to; guard++) {
      const sess = this.session(market, day.date, day.midnight);
      if (sess && sess.end > from && sess.start < to) out.push(sess);
      // The next local day: 24 h on, corrected by the zone (a daylight-saving day is 23 or 25 h).
      day = this.dayOf(market, day.midnight + DAY + 2 * HOUR);
    }
    return out;
  }

  private readonly dayOpens = new Map<string, boolean>();

  /**
   * Whether a regular session runs during any part of the local day containing `t`: one starts
   * on it, or the previous trading day's runs past midnight into it (open at its midnight).
   */
  private dayOpen(market: string, t: number): boolean {
    const day = this.dayOf(market, t);
    const k = `${market}|${day.date}`;
    let v = this.dayOpens.get(k);
    if (v === undefined) {
      if (this.cal.tradingDay(market, day.date)) v = true;
      else {
        const prev = this.dayOf(market, day.midnight - HOUR);
        v = this.cal.tradingDay(market, prev.date) && this.openAt(market, day.midnight);
      }
      this.dayOpens.set(k, v);
    }
    return v;
  }

  /** Whether `market` was open at any time within the bucket `[t, t + step)`. */
  bucketOpen(market: string, t: number, step: number): boolean {
    if (this.cal.alwaysOpen(market)) return true;
    if (step >= DAY) {
      for (let d = t; d < t + step; d += DAY) if (this.dayOpen(market, d + 12 * HOUR)) return true;
      return false;
    }
    return this.sessionsIn(market, t, t + step).length > 0;
  }
}

/**
 * The candles with a gap point at every missing bucket between two candles during which the
 * market was open. Buckets before the first or after the last candle are not gaps (no history
 * yet, or the present). `candles` must be ascending by `t` and aligned to `interval`.
 */
export function withGaps(candles: readonly Candle[], interval: Interval, market: string, cal: GapCalendar = new GapCalendar()): Bar[] {
  const step = INTERVAL_MS[interval];
  const out: Bar[] = [];
  let prev: Candle | undefined;
  for (const c of candles) {
    if (prev && c.t > prev.t + step) out.push(...gapsBetween(prev.t, c.t, interval, market, cal));
    out.push(c);
    prev = c;
  }
  return out;
}

/** Gap points for the buckets strictly between `fromT` and `toT` (a live candle that skipped some). */
export function gapsBetween(fromT: number, toT: number, interval: Interval, market: string, cal: GapCalendar = new GapCalendar()): Gap[] {
  const step = INTERVAL_MS[interval];
  const out: Gap[] = [];
  if (toT <= fromT + step) return out;
  if (step >= DAY || cal.alwaysOpen(market)) {
    for (let t = fromT + step; t < toT && out.length < MAX_GAP_BARS; t += step) {
      if (cal.bucketOpen(market, t, step)) out.push({ t, gap: true });
    }
    return out;
  }
  // Intraday: the buckets that overlap an open session, found session by session.
  let next = fromT + step;
  for (const s of cal.sessionsIn(market, fromT + step, toT)) {
    // First bucket ending after the session starts, last one starting before it ends.
    const k0 = Math.max(Math.floor((s.start - fromT) / step), 1);
    for (let t = Math.max(fromT + k0 * step, next); t < toT && t < s.end && out.length < MAX_GAP_BARS; t += step) {
      if (t + step > s.start) out.push({ t, gap: true });
      next = t + step;
    }
    if (out.length >= MAX_GAP_BARS) break;
  }
  return out;
}

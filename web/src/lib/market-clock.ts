// Market sessions from the calendar data file (`market-calendar.json`): is a market open, in its
// pre/post session, or closed (weekend, holiday) at a given instant. Time zones and daylight saving
// come from Intl, so New York's DST needs no table. Pure functions; the header clocks and the
// quote rows' "장 마감" marks use them.
import calendarData from "./market-calendar.json";

export type SessionState = "open" | "pre" | "post" | "closed";
export type ClosedReason = "weekend" | "holiday" | "hours";

export interface MarketSession {
  state: SessionState;
  /** Why it is closed, when it is. */
  reason: ClosedReason | null;
}

interface SessionRule {
  timeZone: string;
  alwaysOpen?: boolean;
  weekdays?: number[];
  pre?: string;
  open?: string;
  close?: string;
  post?: string;
  /** The session opens at `open` on a listed weekday and closes at `close` the next day. */
  overnight?: boolean;
  holidays?: string[];
  earlyCloses?: Record<string, string>;
  lateOpens?: Record<string, string>;
}

export interface MarketCalendar {
  version: number;
  markets: Record<string, SessionRule>;
}

export const MARKET_CALENDAR = calendarData as unknown as MarketCalendar;

const partFormatters = new Map<string, Intl.DateTimeFormat>();

function formatterFor(timeZone: string): Intl.DateTimeFormat {
  let f = partFormatters.get(timeZone);
  if (!f) {
    f = new Intl.DateTimeFormat("en-US", {
      timeZone,
      year: "numeric",
      month: "2-digit",
      day: "2-digit",
      weekday: "short",
      hour: "2-digit",
      minute: "2-digit",
      second: "2-digit",
      hourCycle: "h23",
    });
    partFormatters.set(timeZone, f);
  }
  return f;
}

const WEEKDAY: Record<string, number> = { Mon: 1, Tue: 2, Wed: 3, Thu: 4, Fri: 5, Sat: 6, Sun: 7 };

export interface LocalTime {
  /** `YYYY-MM-DD` in the zone. */
  date: string;
  /** 1 = Monday … 7 = Sunday. */
  weekday: number;
  /** Minutes since local midnight. */
  minutes: number;
  hh: string;
  mm: string;
  ss: string;
}

/** Wall-clock parts of an instant in a time zone. */
export function localTime(epochMs: number, timeZone: string): LocalTime {
  const parts: Record<string, string> = {};
  for (const p of formatterFor(timeZone).formatToParts(new Date(epochMs))) parts[p.type] = p.value;
  const hh = parts.hour === "24" ? "00" : (parts.hour ?? "00");
  const mm = parts.minute ?? "00";
  return {
    date: `${parts.year}-${parts.month}-${parts.day}`,
    weekday: WEEKDAY[parts.weekday ?? "Mon"] ?? 1,
    minutes: Number(hh) * 60 + Number(mm),
    hh,
    mm,
    ss: parts.second ?? "00",
  };
}

function toMinutes(hhmm: string | undefined, fallback: number): number {
  if (!hhmm) return fallback;
  const [h, m] = hhmm.split(":");
  return Number(h) * 60 + Number(m ?? 0);
}

function previousDate(date: string): string {
  const d = new Date(`${date}T00:00:00Z`);
  d.setUTCDate(d.getUTCDate() - 1);
  return d.toISOString().slice(0, 10);
}

/** The session state of `market` (`krx`, `us`, `crypto`, `metal`, `fx`) at `epochMs`. */
export function marketSession(
  market: string,
  epochMs: number,
  calendar: MarketCalendar = MARKET_CALENDAR,
): MarketSession {
  const rule = calendar.markets[market];
  if (!rule || rule.alwaysOpen) return { state: "open", reason: null };
  const t = localTime(epochMs, rule.timeZone);
  const weekdays = rule.weekdays ?? [1, 2, 3, 4, 5];
  const holidays = rule.holidays ?? [];

  if (rule.overnight) {
    const open = toMinutes(rule.open, 0);
    const close = toMinutes(rule.close, 24 * 60);
    const prevWeekday = t.weekday === 1 ? 7 : t.weekday - 1;
    const openedToday = t.minutes >= open && weekdays.includes(t.weekday) && !holidays.includes(t.date);
    const openedYesterday =
      t.minutes < close && weekdays.includes(prevWeekday) && !holidays.includes(previousDate(t.date));
    if (openedToday || openedYesterday) return { state: "open", reason: null };
    const weekend = !weekdays.includes(t.weekday) && !weekdays.includes(prevWeekday);
    return { state: "closed", reason: weekend || t.weekday === 6 ? "weekend" : "hours" };
  }

  if (!weekdays.includes(t.weekday)) return { state: "closed", reason: "weekend" };
  if (holidays.includes(t.date)) return { state: "closed", reason: "holiday" };
  const open = toMinutes(rule.lateOpens?.[t.date] ?? rule.open, 0);
  const close = toMinutes(rule.earlyCloses?.[t.date] ?? rule.close, 24 * 60);
  if (t.minutes >= open && t.minutes < close) return { state: "open", reason: null };
  if (rule.pre && t.minutes >= toMinutes(rule.pre, open) && t.minutes < open) return { state: "pre", reason: null };
  if (rule.post && t.minutes >= close && t.minutes < toMinutes(rule.post, close)) return { state: "post", reason: null };
  return { state: "closed", reason: "hours" };
}

/** `HH:mm:ss` of an instant in a zone (the header's KST and New York clocks). */
export function clockText(epochMs: number, timeZone: string): string {
  const t = localTime(epochMs, timeZone);
  return `${t.hh}:${t.mm}:${t.ss}`;
}

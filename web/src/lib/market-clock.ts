// Market sessions from THE calendar data file (`market-calendar.json`, version 2), the same file
// the Rust scheduler and edge embed (pipelines/src/calendar.rs): is a market in its regular
// session, its pre/post extended hours, or closed (night, weekend, holiday) at an instant.
// The rules mirror the Rust module: a session belongs to the local date it starts on, one whose
// end is not after its start runs past midnight, a holiday closes the day, a special day replaces
// the day's sessions, an unknown market is closed. Time zones and daylight saving come from Intl.
import calendarData from "./market-calendar.json";

export type SessionState = "open" | "pre" | "post" | "closed";
export type ClosedReason = "weekend" | "holiday" | "hours";

export interface MarketSession {
  state: SessionState;
  /** Why it is closed, when it is. */
  reason: ClosedReason | null;
  /** The holiday's or special day's name from the calendar (e.g. "수능일 (10시 개장)"), if any. */
  note: string | null;
}

type Range = [string, string];

interface Sessions {
  pre?: Range;
  open?: Range;
  post?: Range;
}

interface MarketRule {
  name?: string;
  timeZone: string;
  alwaysOpen?: boolean;
  /** ISO weekdays (1 = Monday … 7 = Sunday) on which sessions start. */
  weekdays?: number[];
  sessions?: Sessions;
  holidaysThrough?: string;
  holidays?: Record<string, string>;
  special?: Record<string, { name?: string; sessions: Sessions }>;
}

export interface MarketCalendar {
  version: number;
  markets: Record<string, MarketRule>;
}

export const MARKET_CALENDAR = calendarData as unknown as MarketCalendar;

const PHASES = ["pre", "open", "post"] as const;
type Phase = (typeof PHASES)[number];
const RANK: Record<SessionState, number> = { open: 3, pre: 2, post: 1, closed: 0 };

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

/** The zone's offset from UTC at an instant, in ms (Seoul: +9 h). */
function offsetMs(epochMs: number, timeZone: string): number {
  const t = localTime(epochMs, timeZone);
  const wall = Date.parse(`${t.date}T${t.hh}:${t.mm}:${t.ss}Z`);
  return wall - Math.floor(epochMs / 1000) * 1000;
}

/** A local wall-clock time (`YYYY-MM-DD`, `HH:MM`) in a zone as epoch ms. */
function localToEpoch(date: string, hhmm: string, timeZone: string): number {
  const wall = Date.parse(`${date}T${hhmm}:00Z`);
  let t = wall - offsetMs(wall, timeZone);
  // Once more with the offset at the guess, for days on which the offset changes.
  t = wall - offsetMs(t, timeZone);
  return t;
}

function addDays(date: string, days: number): string {
  const d = new Date(`${date}T00:00:00Z`);
  d.setUTCDate(d.getUTCDate() + days);
  return d.toISOString().slice(0, 10);
}

function isoWeekday(date: string): number {
  const w = new Date(`${date}T00:00:00Z`).getUTCDay();
  return w === 0 ? 7 : w;
}

interface Interval {
  phase: Phase;
  start: number;
  end: number;
}

/** The sessions that start on local `date` (none on a weekend or holiday). */
function sessionsOn(rule: MarketRule, date: string): Sessions {
  if (rule.holidays?.[date] !== undefined) return {};
  const special = rule.special?.[date];
  if (special) return special.sessions;
  if (!(rule.weekdays ?? [1, 2, 3, 4, 5]).includes(isoWeekday(date))) return {};
  return rule.sessions ?? {};
}

/** Session intervals per rule and local date: Intl is slow (~10 µs a call), a day's answer never changes. */
const intervalCache = new WeakMap<MarketRule, Map<string, Interval[]>>();
const CACHE_DAYS = 4_000;

function intervalsOn(rule: MarketRule, date: string): Interval[] {
  let byDate = intervalCache.get(rule);
  if (!byDate) {
    byDate = new Map();
    intervalCache.set(rule, byDate);
  }
  let out = byDate.get(date);
  if (!out) {
    if (byDate.size >= CACHE_DAYS) byDate.clear();
    out = computeIntervalsOn(rule, date);
    byDate.set(date, out);
  }
  return out;
}

function computeIntervalsOn(rule: MarketRule, date: string): Interval[] {
  const out: Interval[] = [];
  const s = sessionsOn(rule, date);
  for (const phase of PHASES) {
    const r = s[phase];
    if (!r) continue;
    const [from, to] = r;
    const start = localToEpoch(date, from, rule.timeZone);
    const end = localToEpoch(to <= from ? addDays(date, 1) : date, to, rule.timeZone);
    if (end > start) out.push({ phase, start, end });
  }
  return out;
}

function phaseAt(rule: MarketRule, epochMs: number, today = localTime(epochMs, rule.timeZone).date): SessionState {
  let best: SessionState = "closed";
  for (const d of [addDays(today, -1), today]) {
    for (const i of intervalsOn(rule, d)) {
      if (i.start <= epochMs && epochMs < i.end && RANK[i.phase] > RANK[best]) best = i.phase;
    }
  }
  return best;
}

/** The session state of `market` (`krx`, `us`, `crypto`, `metal`, `fx`) at `epochMs`. */
export function marketSession(
  market: string,
  epochMs: number,
  calendar: MarketCalendar = MARKET_CALENDAR,
): MarketSession {
  const rule = calendar.markets[market];
  if (!rule) return { state: "closed", reason: "hours", note: null };
  if (rule.alwaysOpen) return { state: "open", reason: null, note: null };
  const t = localTime(epochMs, rule.timeZone);
  const holiday = rule.holidays?.[t.date];
  const special = rule.special?.[t.date]?.name ?? null;
  const state = phaseAt(rule, epochMs, t.date);
  if (state !== "closed") return { state, reason: null, note: special };
  if (holiday !== undefined) return { state, reason: "holiday", note: holiday };
  const weekend = t.weekday >= 6 && rule.special?.[t.date] === undefined;
  return { state, reason: weekend ? "weekend" : "hours", note: special };
}

/** Whether a regular session runs on local `date` (`YYYY-MM-DD` in the market's own zone). */
export function isTradingDay(market: string, date: string, calendar: MarketCalendar = MARKET_CALENDAR): boolean {
  const rule = calendar.markets[market];
  if (!rule) return false;
  if (rule.alwaysOpen) return true;
  return sessionsOn(rule, date).open !== undefined;
}

/** The sessions that start on local `date` (`YYYY-MM-DD` in the market's zone) as epoch ms
 *  `[start, end)`, in pre/open/post order (empty on a weekend, holiday, or unknown market). */
export function daySessions(
  market: string,
  date: string,
  calendar: MarketCalendar = MARKET_CALENDAR,
): { phase: "pre" | "open" | "post"; start: number; end: number }[] {
  const rule = calendar.markets[market];
  if (!rule || rule.alwaysOpen) return [];
  return intervalsOn(rule, date).map((i) => ({ ...i }));
}

/** The next instant after `epochMs` at which the market's state changes (null: never, unknown). */
export function nextChange(market: string, epochMs: number, calendar: MarketCalendar = MARKET_CALENDAR): number | null {
  const rule = calendar.markets[market];
  if (!rule || rule.alwaysOpen) return null;
  const now = phaseAt(rule, epochMs);
  const today = localTime(epochMs, rule.timeZone).date;
  const edges: number[] = [];
  for (let k = -1; k <= 21; k++) {
    for (const i of intervalsOn(rule, addDays(today, k))) edges.push(i.start, i.end);
  }
  edges.sort((a, b) => a - b);
  for (const e of edges) if (e > epochMs && phaseAt(rule, e) !== now) return e;
  return null;
}

/** `HH:mm:ss` of an instant in a zone (the header's KST and New York clocks). */
export function clockText(epochMs: number, timeZone: string): string {
  const t = localTime(epochMs, timeZone);
  return `${t.hh}:${t.mm}:${t.ss}`;
}

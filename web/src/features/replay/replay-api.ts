// REST for a replay: the past ticks of one instrument (`GET /api/v1/replay`, NDJSON), and the
// chart's history as it stood at the replay's start (query factory). Candles are asked for up
// to the start's minute (the edge builds every interval from complete 1-minute rows before
// `to`, so nothing after the start leaks in); the started minute is folded from the replayed
// ticks before the start, and the replay's own ticks carry it on from there.
import { infiniteQueryOptions, queryOptions } from "@tanstack/react-query";
import { ApiError, CANDLE_PAGE, getCandles } from "@/lib/api";
import { applyTick } from "@/lib/candles";
import type { Candle, Interval, Quote } from "@/lib/types";

/** One line of the replay NDJSON; null for news, errors and anything malformed. */
export function parseReplayLine(line: string): Quote | null {
  if (!line.trim()) return null;
  let raw: unknown;
  try {
    raw = JSON.parse(line);
  } catch {
    return null;
  }
  if (typeof raw !== "object" || raw === null) return null;
  const r = raw as { type?: unknown; tick?: unknown };
  if (r.type !== "tick" || typeof r.tick !== "object" || r.tick === null) return null;
  const t = r.tick as Record<string, unknown>;
  return typeof t.id === "string" && typeof t.price === "number" && typeof t.ts === "number" ? (t as unknown as Quote) : null;
}

/** The ticks of `id` in `[from, to)` from the log, oldest first. */
export async function getReplayTicks(id: string, from: number, to: number, signal?: AbortSignal): Promise<Quote[]> {
  const q = new URLSearchParams({ instrument: id, from: String(from), to: String(to) });
  const res = await fetch(`/api/v1/replay?${q.toString()}`, { signal, headers: { Accept: "application/x-ndjson" } });
  if (!res.ok) {
    let code = `http_${res.status}`;
    let message = res.statusText || code;
    try {
      const body = (await res.json()) as { error?: { code?: string; message?: string } };
      code = body.error?.code ?? code;
      message = body.error?.message ?? message;
    } catch {
      // keep the status line
    }
    throw new ApiError(res.status, code, message);
  }
  const out: Quote[] = [];
  for (const line of (await res.text()).split("\n")) {
    const t = parseReplayLine(line);
    if (t) out.push(t);
  }
  return out.sort((a, b) => a.ts - b.ts);
}

/** The minute `epochMs` falls in. */
export const minuteOf = (epochMs: number) => Math.floor(epochMs / 60_000) * 60_000;

/**
 * Candles before `at`, newest page: complete minutes from the edge, then the started minute's
 * ticks before `at` folded in.
 */
export async function candlesAt(id: string, interval: Interval, at: number, signal?: AbortSignal): Promise<Candle[]> {
  const minute = minuteOf(at);
  const [candles, ticks] = await Promise.all([
    getCandles(id, interval, { to: minute, limit: CANDLE_PAGE }, signal),
    at > minute ? getReplayTicks(id, minute, at, signal).catch(() => [] as Quote[]) : Promise.resolve([] as Quote[]),
  ]);
  for (const t of ticks) applyTick(candles, t, interval);
  return candles;
}

export const replayCandleQueries = {
  /** The chart's history at replay start `at`: same paging as the live chart, older pages by `to`. */
  history: (id: string, interval: Interval, at: number) =>
    infiniteQueryOptions({
      queryKey: ["replay", "candles", id, interval, at] as const,
      queryFn: ({ pageParam, signal }) =>
        pageParam === undefined
          ? candlesAt(id, interval, at, signal)
          : getCandles(id, interval, { to: pageParam, limit: CANDLE_PAGE }, signal),
      initialPageParam: undefined as number | undefined,
      getNextPageParam: (last: Candle[]) => (last.length < CANDLE_PAGE ? undefined : last[0]?.t),
      staleTime: Infinity,
      gcTime: 60_000,
    }),
};

/**
 * A row's sparkline as it stood at replay start `at`: 5-minute closes over the 24 hours before,
 * or 1-minute closes over the two hours before when there is too little history for that.
 */
export const replaySparkQueries = {
  spark: (id: string, at: number) =>
    queryOptions({
      queryKey: ["replay", "spark", id, at] as const,
      queryFn: async ({ signal }) => {
        const to = minuteOf(at);
        const day = await getCandles(id, "5m", { from: to - 24 * 3600_000, to, limit: 288 }, signal);
        if (day.length >= 3) return day;
        return getCandles(id, "1m", { from: to - 2 * 3600_000, to, limit: 120 }, signal);
      },
      staleTime: Infinity,
      gcTime: 60_000,
    }),
};

/** A day and a bit: the 1-minute rows of one KST day, DST included. */
const DAY_MINUTES = 1500;

/**
 * When the stored minutes of `id` begin at or after `at` (epoch ms of that minute), or null when
 * there are none: the first day from the daily candles, then its first minute. Two small reads.
 */
export async function firstMinuteAfter(id: string, at: number, signal?: AbortSignal): Promise<number | null> {
  const days = await getCandles(id, "1d", { from: at, limit: 5000 }, signal);
  // The first day may be `at`'s own, with all its minutes before `at`: then the next one has them.
  for (const day of days.slice(0, 2)) {
    const from = Math.max(at, day.t);
    const minutes = await getCandles(id, "1m", { from, to: day.t + 86_400_000 + 3600_000, limit: DAY_MINUTES }, signal);
    const first = minutes.find((c) => c.t + 60_000 > at);
    if (first) return Math.max(first.t, at);
  }
  return null;
}

export const replayDataQueries = {
  /** Where the records of `id` begin at or after `at` (for "이 구간에는 기록된 시세가 없습니다"). */
  firstAfter: (id: string, at: number) =>
    queryOptions({
      queryKey: ["replay", "first", id, at] as const,
      queryFn: ({ signal }) => firstMinuteAfter(id, at, signal),
      staleTime: 60_000,
      gcTime: 60_000,
    }),
};

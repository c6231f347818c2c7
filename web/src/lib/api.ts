// REST client for the edge (same origin, relative URLs) and the TanStack Query factories that
// own every query key. Components take options from here and add only `select`; the socket
// manager writes live data through the same factories' keys.
import { infiniteQueryOptions, queryOptions, skipToken } from "@tanstack/react-query";
import type { Candle, Instrument, Interval, NewsItem, Quote, SourceInfo } from "./types";

/** An error answer from the edge: `{"error": {"code", "message"}}` with a 4xx/5xx status. */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    /** From a 429's `Retry-After`, in ms. */
    readonly retryAfterMs: number | null = null,
  ) {
    super(message);
    this.name = "ApiError";
  }
}

async function request<T>(path: string, init: RequestInit = {}): Promise<T> {
  const headers = new Headers(init.headers);
  headers.set("Accept", "application/json");
  if (init.body !== undefined) headers.set("Content-Type", "application/json");
  const res = await fetch(path, { ...init, headers });
  if (!res.ok) {
    let code = `http_${res.status}`;
    let message = res.statusText || code;
    try {
      const body = (await res.json()) as { error?: { code?: string; message?: string } };
      code = body.error?.code ?? code;
      message = body.error?.message ?? message;
    } catch {
      // not JSON: keep the status line
    }
    const retryAfter = Number(res.headers.get("Retry-After"));
    throw new ApiError(res.status, code, message, Number.isFinite(retryAfter) && retryAfter > 0 ? retryAfter * 1000 : null);
  }
  return (await res.json()) as T;
}

function getJson<T>(path: string, signal?: AbortSignal): Promise<T> {
  return request<T>(path, { signal });
}

export async function getInstruments(signal?: AbortSignal): Promise<Instrument[]> {
  const body = await getJson<{ instruments: Instrument[] }>("/api/v1/instruments", signal);
  return body.instruments;
}

/** The edge takes at most 200 ids per request. */
export const MAX_QUOTE_IDS = 200;

export async function getQuotes(ids: readonly string[], signal?: AbortSignal): Promise<Quote[]> {
  const out: Quote[] = [];
  for (let i = 0; i < ids.length; i += MAX_QUOTE_IDS) {
    const chunk = ids.slice(i, i + MAX_QUOTE_IDS).map(encodeURIComponent).join(",");
    const body = await getJson<{ quotes: Quote[] }>(`/api/v1/quotes?ids=${chunk}`, signal);
    out.push(...body.quotes);
  }
  return out;
}

export interface CandleRange {
  from?: number;
  /** Exclusive upper bound, epoch ms. */
  to?: number;
  limit?: number;
}

export function candlesPath(id: string, interval: Interval, range: CandleRange = {}): string {
  const q = new URLSearchParams({ interval });
  if (range.from !== undefined) q.set("from", String(range.from));
  if (range.to !== undefined) q.set("to", String(range.to));
  if (range.limit !== undefined) q.set("limit", String(range.limit));
  return `/api/v1/candles/${encodeURIComponent(id)}?${q.toString()}`;
}

export async function getCandles(
  id: string,
  interval: Interval,
  range: CandleRange = {},
  signal?: AbortSignal,
): Promise<Candle[]> {
  const body = await getJson<{ candles: Candle[] }>(candlesPath(id, interval, range), signal);
  return body.candles;
}

export async function getNews(
  params: { instrument?: string; limit?: number; before?: number },
  signal?: AbortSignal,
): Promise<NewsItem[]> {
  const q = new URLSearchParams();
  if (params.instrument) q.set("instrument", params.instrument);
  if (params.limit !== undefined) q.set("limit", String(params.limit));
  if (params.before !== undefined) q.set("before", String(params.before));
  const body = await getJson<{ news: NewsItem[] }>(`/api/v1/news?${q.toString()}`, signal);
  return body.news;
}

export async function getSources(signal?: AbortSignal): Promise<SourceInfo[]> {
  const body = await getJson<{ sources: SourceInfo[] }>("/api/v1/sources", signal);
  return body.sources;
}

export interface StoredLayout {
  id: string;
  layout: unknown;
  updated: number | string;
}

export async function getLayout(id: string, signal?: AbortSignal): Promise<StoredLayout> {
  return getJson<StoredLayout>(`/api/v1/layouts/${encodeURIComponent(id)}`, signal);
}

export async function createLayout(layout: unknown): Promise<StoredLayout & { secret: string }> {
  return request<StoredLayout & { secret: string }>("/api/v1/layouts", {
    method: "POST",
    body: JSON.stringify({ layout }),
  });
}

export async function updateLayout(id: string, secret: string, layout: unknown): Promise<StoredLayout> {
  return request<StoredLayout>(`/api/v1/layouts/${encodeURIComponent(id)}`, {
    method: "PUT",
    headers: { Authorization: `Bearer ${secret}` },
    body: JSON.stringify({ layout }),
  });
}

/** Retry only what can heal: network errors, 5xx and 429, at most three times; never other 4xx. */
export function shouldRetry(failureCount: number, error: unknown): boolean {
  if (failureCount >= 3) return false;
  if (error instanceof ApiError) {
    return error.status >= 500 || error.status === 429;
  }
  return true;
}

/** Waits what a 429 asked for, else capped exponential backoff (1 s, 2 s, 4 s … 30 s). */
export function retryDelay(failureCount: number, error: unknown): number {
  if (error instanceof ApiError && error.retryAfterMs !== null) return Math.min(error.retryAfterMs, 60_000);
  return Math.min(1000 * 2 ** failureCount, 30_000);
}

export const instrumentQueries = {
  all: () =>
    queryOptions({
      queryKey: ["instruments"] as const,
      queryFn: ({ signal }) => getInstruments(signal),
      staleTime: 5 * 60 * 1000,
    }),
};

export const quoteQueries = {
  /**
   * The live quote of one instrument, written only by the socket manager with `setQueryData`
   * (REST first load, snapshot, ticks); never fetched by the component, never stale. One query per
   * id, so a tick re-renders only the rows showing that instrument.
   */
  live: (id: string) =>
    queryOptions<Quote | null>({
      queryKey: ["quotes", "live", id] as const,
      queryFn: skipToken,
      initialData: null,
      staleTime: Infinity,
      gcTime: Infinity,
    }),
};

/** Candles per page of history; the chart loads older pages with `to` = the oldest loaded `t`. */
export const CANDLE_PAGE = 500;

export const candleQueries = {
  /** History pages, newest first in `pages`; each page ascending. */
  history: (id: string, interval: Interval) =>
    infiniteQueryOptions({
      queryKey: ["candles", id, interval] as const,
      queryFn: ({ pageParam, signal }) =>
        getCandles(id, interval, { to: pageParam, limit: CANDLE_PAGE }, signal),
      initialPageParam: undefined as number | undefined,
      getNextPageParam: (last: Candle[]) => (last.length < CANDLE_PAGE ? undefined : last[0]?.t),
      staleTime: Infinity,
      gcTime: 5 * 60 * 1000,
    }),
  /**
   * The day's shape for a row's sparkline: 5-minute closes over the last 24 hours, or the last
   * two hours of 1-minute closes while there is too little history for that (a fresh start).
   */
  spark: (id: string) =>
    queryOptions({
      queryKey: ["candles", id, "spark"] as const,
      queryFn: async ({ signal }) => {
        const day = await getCandles(id, "5m", { from: Date.now() - 24 * 3600_000, limit: 288 }, signal);
        if (day.length >= 3) return day;
        return getCandles(id, "1m", { from: Date.now() - 2 * 3600_000, limit: 120 }, signal);
      },
      staleTime: 5 * 60 * 1000,
      refetchInterval: 5 * 60 * 1000,
    }),
};

export const newsQueries = {
  list: (instrument: string | null) =>
    queryOptions({
      queryKey: ["news", instrument ?? "all"] as const,
      queryFn: ({ signal }) => getNews({ instrument: instrument ?? undefined, limit: 30 }, signal),
      staleTime: 60_000,
      refetchInterval: 120_000,
    }),
};

export const sourceQueries = {
  all: () =>
    queryOptions({
      queryKey: ["sources"] as const,
      queryFn: ({ signal }) => getSources(signal),
      staleTime: 15_000,
      refetchInterval: 30_000,
    }),
};

export const layoutQueries = {
  byId: (id: string) =>
    queryOptions({
      queryKey: ["layouts", id] as const,
      queryFn: ({ signal }) => getLayout(id, signal),
      staleTime: Infinity,
      refetchOnWindowFocus: false,
    }),
};

// REST client for the edge (same origin, relative URLs) and the TanStack Query factories that
// own every query key. Components take options from here and add only `select`.
import { queryOptions, skipToken } from "@tanstack/react-query";
import type { Instrument, QuoteMap } from "./types";

/** An error answer from the edge: `{"error": {"code", "message"}}` with a 4xx/5xx status. */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
    this.name = "ApiError";
  }
}

async function getJson<T>(path: string, signal?: AbortSignal): Promise<T> {
  const res = await fetch(path, { signal, headers: { Accept: "application/json" } });
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
    throw new ApiError(res.status, code, message);
  }
  return (await res.json()) as T;
}

export async function getInstruments(signal?: AbortSignal): Promise<Instrument[]> {
  const body = await getJson<{ instruments: Instrument[] }>("/api/v1/instruments", signal);
  return body.instruments;
}

/** Retry only what can heal: network errors, 5xx and 429, at most three times; never other 4xx. */
export function shouldRetry(failureCount: number, error: unknown): boolean {
  if (failureCount >= 3) return false;
  if (error instanceof ApiError) {
    return error.status >= 500 || error.status === 429;
  }
  return true;
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
   * Live quotes, written only by the socket manager with `setQueryData` (snapshot, tick, ticks);
   * never fetched, never stale.
   */
  live: () =>
    queryOptions({
      queryKey: ["quotes", "live"] as const,
      queryFn: skipToken,
      initialData: {} as QuoteMap,
      staleTime: Infinity,
      gcTime: Infinity,
    }),
};

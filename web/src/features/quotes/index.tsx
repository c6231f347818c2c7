"use client";

// Placeholder board: every registry instrument with its live quote. The full widget dashboard
// replaces this page later; the socket hook, query factories and helpers stay.
import { useQuery } from "@tanstack/react-query";
import { useMemo } from "react";
import { instrumentQueries, quoteQueries } from "@/lib/api";
import type { QuoteMap } from "@/lib/types";
import { ConnectionBanner } from "./components/connection-banner";
import { QuoteTable } from "./components/quote-table";
import { SourceStatusBar } from "./components/source-status-bar";
import { useLiveQuotes } from "./use-live-quotes";

const NO_QUOTES: QuoteMap = {};

export function QuoteBoard() {
  const instruments = useQuery(instrumentQueries.all());
  const quotes = useQuery(quoteQueries.live()).data ?? NO_QUOTES;
  const ids = useMemo(() => instruments.data?.map((i) => i.id) ?? [], [instruments.data]);
  const { connection, statuses, lastError } = useLiveQuotes(ids);
  const anySim = useMemo(
    () => Object.values(quotes).some((q) => q.source === "sim" || q.market === "sim"),
    [quotes],
  );

  return (
    <section className="flex flex-col gap-3">
      <div className="flex flex-wrap items-center justify-between gap-2">
        <span
          data-testid="ws-state"
          data-state={connection.status}
          className="text-xs text-gray-500"
        >
          {connection.status === "open" ? "● 실시간" : connection.status === "connecting" ? "○ 연결 중" : "○ 끊김"}
        </span>
        <SourceStatusBar statuses={statuses} />
      </div>
      <ConnectionBanner connection={connection} />
      {anySim ? (
        <p data-testid="sim-notice" className="text-xs text-amber-800">
          모의 시세가 포함되어 있습니다. 실제 시장 가격이 아닙니다. (Simulated prices, not market data.)
        </p>
      ) : null}
      {lastError ? (
        <p data-testid="ws-error" className="text-xs text-red-700">
          서버 오류: {lastError}
        </p>
      ) : null}
      {instruments.isPending ? (
        <p className="text-sm text-gray-500">종목을 불러오는 중…</p>
      ) : instruments.isError ? (
        <p data-testid="instruments-error" role="alert" className="text-sm text-red-700">
          종목 목록을 불러오지 못했습니다: {instruments.error.message}
        </p>
      ) : (
        <QuoteTable instruments={instruments.data} quotes={quotes} />
      )}
    </section>
  );
}

"use client";

import { useQuery } from "@tanstack/react-query";
import { memo } from "react";
import { replaySparkQueries } from "@/features/replay/replay-api";
import { useReplayView } from "@/features/replay/replay-context";
import { candleQueries } from "@/lib/api";
import type { Candle } from "@/lib/types";

const W = 64;
const H = 24;
const selectCloses = (cs: Candle[]) => cs.map((c) => c.c);

/** The day's shape (15-minute closes) with the live price as its last point. */
export const Sparkline = memo(function Sparkline({ id, last, live }: { id: string; last: number | null; live: boolean }) {
  // During a 시점 재생: the shape as it stood at the replay's start.
  const replayAt = useReplayView()?.params.from ?? null;
  const spark = (replayAt === null ? candleQueries.spark(id) : replaySparkQueries.spark(id, replayAt)) as ReturnType<typeof candleQueries.spark>;
  const closes = useQuery({ ...spark, select: selectCloses }).data;
  const points = closes && closes.length > 0 ? (last !== null ? [...closes.slice(0, -1), last] : closes) : last !== null ? [last] : [];
  if (points.length < 2) return <svg aria-hidden width={W} height={H} className="shrink-0" />;
  let min = Infinity;
  let max = -Infinity;
  for (const p of points) {
    if (p < min) min = p;
    if (p > max) max = p;
  }
  const span = max - min || 1;
  const d = points
    .map((p, i) => `${((i / (points.length - 1)) * W).toFixed(1)},${(H - 2 - ((p - min) / span) * (H - 4)).toFixed(1)}`)
    .join(" ");
  const first = points[0]!;
  const end = points[points.length - 1]!;
  const color = !live ? "var(--color-flat)" : end > first ? "var(--color-up)" : end < first ? "var(--color-down)" : "var(--color-flat)";
  return (
    <svg aria-hidden width={W} height={H} viewBox={`0 0 ${W} ${H}`} className="shrink-0" data-testid="sparkline">
      <polyline points={d} fill="none" stroke={color} strokeWidth={1.4} strokeLinejoin="round" strokeLinecap="round" />
    </svg>
  );
});

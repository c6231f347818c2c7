import type { SourceState, SourceStatus } from "@/lib/types";

const STATE_CLASS: Record<SourceState, string> = {
  up: "bg-green-100 text-green-800 border-green-300",
  degraded: "bg-amber-100 text-amber-800 border-amber-300",
  down: "bg-gray-200 text-gray-700 border-gray-400",
};

export function SourceStatusBar({ statuses }: { statuses: Readonly<Record<string, SourceStatus>> }) {
  const list = Object.values(statuses).sort((a, b) => a.source.localeCompare(b.source));
  if (list.length === 0) return null;
  return (
    <ul data-testid="source-status" className="flex flex-wrap gap-2 text-xs">
      {list.map((s) => (
        <li
          key={s.source}
          data-source={s.source}
          data-state={s.state}
          title={s.detail ?? undefined}
          className={`rounded border px-2 py-0.5 ${STATE_CLASS[s.state]}`}
        >
          {s.source}: {s.state}
        </li>
      ))}
    </ul>
  );
}

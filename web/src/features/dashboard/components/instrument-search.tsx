"use client";

// A combobox over `/api/v1/instruments`: type a Korean or English name or a code, pick with
// the arrow keys and Enter (or a click); Escape cancels.
import { useQuery } from "@tanstack/react-query";
import { useId, useMemo, useState } from "react";
import { instrumentQueries } from "@/lib/api";
import type { Instrument } from "@/lib/types";
import { usePrefs } from "@/features/prefs/prefs";

export function matchInstruments(all: readonly Instrument[], query: string, exclude: readonly string[] = []): Instrument[] {
  const q = query.trim().toLowerCase();
  const out = all.filter((i) => !exclude.includes(i.id));
  if (q === "") return out;
  return out
    .map((i) => {
      const code = i.id.split(".").slice(2).join(".").toLowerCase();
      const hay = [i.name_ko.toLowerCase(), i.name_en.toLowerCase(), code, i.id.toLowerCase()];
      const score = hay[2] === q || hay[0] === q ? 0 : hay.some((h) => h.startsWith(q)) ? 1 : hay.some((h) => h.includes(q)) ? 2 : 9;
      return { i, score };
    })
    .filter((x) => x.score < 9)
    .sort((a, b) => a.score - b.score)
    .map((x) => x.i);
}

export function InstrumentSearch({
  exclude,
  onPick,
  onCancel,
  label,
}: {
  exclude: readonly string[];
  onPick: (id: string) => void;
  onCancel: () => void;
  label: string;
}) {
  const { t, lang } = usePrefs();
  const instruments = useQuery(instrumentQueries.all()).data;
  const [query, setQuery] = useState("");
  const [active, setActive] = useState(0);
  const listId = useId();
  const results = useMemo(() => matchInstruments(instruments ?? [], query, exclude).slice(0, 12), [instruments, query, exclude]);
  const current = Math.min(active, Math.max(results.length - 1, 0));

  return (
    <div className="relative" data-testid="instrument-search">
      <input
        autoFocus
        type="search"
        role="combobox"
        aria-label={label}
        aria-expanded
        aria-controls={listId}
        aria-activedescendant={results[current] ? `${listId}-${current}` : undefined}
        placeholder={t("search")}
        value={query}
        onChange={(e) => {
          setQuery(e.target.value);
          setActive(0);
        }}
        onKeyDown={(e) => {
          if (e.key === "ArrowDown") {
            e.preventDefault();
            setActive((a) => Math.min(a + 1, results.length - 1));
          } else if (e.key === "ArrowUp") {
            e.preventDefault();
            setActive((a) => Math.max(a - 1, 0));
          } else if (e.key === "Enter") {
            e.preventDefault();
            const pick = results[current];
            if (pick) onPick(pick.id);
          } else if (e.key === "Escape") {
            e.preventDefault();
            onCancel();
          }
        }}
        className="w-full rounded-md border border-slate-300 bg-white px-2 py-1.5 text-sm outline-none focus:border-sky-500 focus:ring-2 focus:ring-sky-500/30 dark:border-slate-600 dark:bg-slate-900"
      />
      <ul
        id={listId}
        role="listbox"
        className="absolute z-20 mt-1 max-h-64 w-full overflow-auto rounded-md border border-slate-200 bg-white py-1 text-sm shadow-lg dark:border-slate-700 dark:bg-slate-900"
      >
        {results.length === 0 ? <li className="px-2 py-1.5 text-slate-500">{t("noMatch")}</li> : null}
        {results.map((i, n) => (
          <li
            key={i.id}
            id={`${listId}-${n}`}
            role="option"
            aria-selected={n === current}
            data-testid="search-option"
            data-id={i.id}
            onMouseDown={(e) => {
              e.preventDefault();
              onPick(i.id);
            }}
            onMouseEnter={() => setActive(n)}
            className={`flex cursor-pointer items-baseline justify-between gap-2 px-2 py-1.5 ${n === current ? "bg-sky-50 dark:bg-sky-900/40" : ""}`}
          >
            <span className="truncate">{lang === "ko" ? i.name_ko : i.name_en}</span>
            <span className="shrink-0 text-xs text-slate-500">{i.id.split(".").slice(2).join(".")}</span>
          </li>
        ))}
      </ul>
    </div>
  );
}

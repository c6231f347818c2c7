"use client";

// A combobox over `/api/v1/instruments`: type a Korean or English name or a code, pick with
// the arrow keys and Enter (or a click); Escape cancels. A 6-digit KRX code or an uppercase US
// ticker that nothing lists yet is offered too ("005930 추가 (KRX)"): the server checks it with
// KIS when it is subscribed, and its quote appears once KIS has a price for it.
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

/** A code typed in full that no instrument lists: a 6-digit KRX code or a US ticker (1–5
 * uppercase letters), as the id the server checks with KIS (`stock.krx.005930`, `stock.us.TSLA`). */
export function addableCode(
  all: readonly Instrument[],
  query: string,
  exclude: readonly string[] = [],
): { id: string; code: string; venue: "KRX" | "US" } | null {
  const q = query.trim();
  const pick = /^\d{6}$/.test(q)
    ? { id: `stock.krx.${q}`, code: q, venue: "KRX" as const }
    : /^[A-Z]{1,5}$/.test(q)
      ? { id: `stock.us.${q}`, code: q, venue: "US" as const }
      : null;
  if (pick === null || exclude.includes(pick.id) || all.some((i) => i.id === pick.id)) return null;
  return pick;
}

interface Option {
  id: string;
  label: string;
  code: string;
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
  const results = useMemo((): Option[] => {
    const found: Option[] = matchInstruments(instruments ?? [], query, exclude)
      .slice(0, 12)
      .map((i) => ({ id: i.id, label: lang === "ko" ? i.name_ko : i.name_en, code: i.id.split(".").slice(2).join(".") }));
    const add = addableCode(instruments ?? [], query, exclude);
    if (add) found.push({ id: add.id, label: lang === "ko" ? `${add.code} 추가 (${add.venue})` : `Add ${add.code} (${add.venue})`, code: add.venue });
    return found;
  }, [instruments, query, exclude, lang]);
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
            <span className="truncate">{i.label}</span>
            <span className="shrink-0 text-xs text-slate-500">{i.code}</span>
          </li>
        ))}
      </ul>
    </div>
  );
}

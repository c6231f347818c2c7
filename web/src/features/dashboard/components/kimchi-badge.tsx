"use client";

// 김프 beside an Upbit crypto quote in the crypto widget: the premium of the Upbit KRW price
// over the USD reference × USD/KRW (`derived.kimchi.<BASE>`), red when Upbit is dearer, blue
// when cheaper, with the inputs' ages in the tooltip. Renders nothing for other instruments
// or before the premium has a value.
import { useQuery } from "@tanstack/react-query";
import { useRetain, useQuote } from "@/features/live/feed-context";
import { usePrefs } from "@/features/prefs/prefs";
import { instrumentQueries } from "@/lib/api";
import { formatPremium, kimchiIdFor, premiumDirection, premiumTooltip } from "@/lib/kimchi";
import type { Instrument } from "@/lib/types";
import { useNow } from "@/lib/use-now";

const DIR_TEXT = { up: "text-[var(--color-up)]", down: "text-[var(--color-down)]", flat: "text-[var(--color-flat)]" } as const;

const NONE: readonly string[] = [];

export function KimchiBadge({ id }: { id: string }) {
  const candidate = kimchiIdFor(id);
  // Only the markets sise computes a premium for (the registry lists them: BTC, ETH).
  const known =
    useQuery({
      ...instrumentQueries.all(),
      select: (list: Instrument[]) => candidate !== null && list.some((i) => i.id === candidate),
    }).data ?? false;
  const kid = known ? candidate : null;
  useRetain(kid ? [kid] : NONE);
  return kid ? <Premium kid={kid} /> : null;
}

function Premium({ kid }: { kid: string }) {
  const { lang } = usePrefs();
  const quote = useQuote(kid);
  const now = useNow();
  if (!quote) return null;
  const dir = premiumDirection(quote.price);
  const label = lang === "ko" ? "김프" : "Kimchi";
  return (
    <span
      data-testid="kimchi"
      data-id={kid}
      data-direction={dir}
      title={premiumTooltip(quote.inputs, now || quote.ts, lang)}
      className={`shrink-0 rounded border border-current/30 px-1 leading-4 font-semibold tabular-nums ${DIR_TEXT[dir]}`}
    >
      {label} {formatPremium(quote.price)}
    </span>
  );
}

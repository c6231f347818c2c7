// The kimchi premium (김프) beside a crypto quote: which derived instrument holds it, how to
// show it (+2.13%, red up / blue down, like every Korean price), and the ages of its inputs
// for the tooltip. The premium's price is already in percent (2.13 means +2.13 %).
import { formatTimeAgo, type Direction, type Lang } from "./format";
import type { QuoteInput } from "./types";

/** `crypto.upbit.KRW-BTC` → `derived.kimchi.BTC`; null for anything else. */
export function kimchiIdFor(id: string): string | null {
  const m = /^crypto\.upbit\.KRW-([A-Za-z0-9_]+)$/.exec(id);
  return m ? `derived.kimchi.${m[1]}` : null;
}

/** `+2.13%`, `-0.35%`, `0.00%`; `—` when unknown. */
export function formatPremium(percent: number | null | undefined): string {
  if (typeof percent !== "number" || !Number.isFinite(percent)) return "—";
  const text = Math.abs(percent).toFixed(2);
  if (text === "0.00") return "0.00%";
  return `${percent > 0 ? "+" : "-"}${text}%`;
}

/** Up (Upbit dearer, red), down (cheaper, blue) or flat. */
export function premiumDirection(percent: number | null | undefined): Direction {
  if (typeof percent !== "number" || !Number.isFinite(percent) || Math.abs(percent) < 0.005) return "flat";
  return percent > 0 ? "up" : "down";
}

const INPUT_LABEL: Record<string, { ko: string; en: string }> = {
  upbit: { ko: "업비트", en: "Upbit" },
  coinbase: { ko: "코인베이스", en: "Coinbase" },
  spot: { ko: "환율", en: "FX" },
};

/** A short name of an input: `업비트 KRW-BTC`, `코인베이스 BTC-USD`, `환율 USDKRW`. */
export function inputLabel(id: string, lang: Lang): string {
  const [, venue = "", symbol = id] = id.split(".");
  const v = INPUT_LABEL[venue];
  return v ? `${v[lang]} ${symbol}` : symbol;
}

/** The tooltip: the premium's meaning, then each input and its age, one a line. */
export function premiumTooltip(inputs: readonly QuoteInput[] | undefined, now: number, lang: Lang): string {
  const head =
    lang === "ko"
      ? "김치 프리미엄: 업비트 원화 가격 ÷ (해외 달러 가격 × 원/달러) − 1"
      : "Kimchi premium: Upbit KRW price ÷ (USD price × USD/KRW) − 1";
  const lines = (inputs ?? []).map((i) => `${inputLabel(i.id, lang)} · ${formatTimeAgo(i.ts, now, lang)}`);
  return [head, ...lines].join("\n");
}

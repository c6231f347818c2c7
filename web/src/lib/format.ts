// Pure display helpers for Korean investors: KRW without decimals, signed changes and rates,
// 만/억/조 units, KST clock times, and the up/down/flat direction (up red, down blue, flat grey).

export type Direction = "up" | "down" | "flat";

const EMPTY = "—";
const KST_OFFSET_MS = 9 * 60 * 60 * 1000; // Korea has no daylight saving time.

const formatters = new Map<number, Intl.NumberFormat>();

function numberFormat(fractionDigits: number): Intl.NumberFormat {
  let f = formatters.get(fractionDigits);
  if (!f) {
    f = new Intl.NumberFormat("en-US", {
      minimumFractionDigits: fractionDigits,
      maximumFractionDigits: fractionDigits,
    });
    formatters.set(fractionDigits, f);
  }
  return f;
}

function isNum(value: number | null | undefined): value is number {
  return typeof value === "number" && Number.isFinite(value);
}

function clampDigits(decimals: number): number {
  return Number.isInteger(decimals) ? Math.min(Math.max(decimals, 0), 10) : 0;
}

/**
 * Fraction digits used for a price. KRW shows no decimals; the one exception is a KRW price
 * under 100 (a low-priced Upbit coin), which keeps the instrument's decimals so it never reads 0.
 */
export function priceDigits(value: number, currency: string, decimals: number): number {
  if (currency === "KRW") {
    return Math.abs(value) < 100 ? clampDigits(decimals) : 0;
  }
  return clampDigits(decimals);
}

/** `formatPrice(130250000, 'KRW', 0)` → `'130,250,000'`; `formatPrice(171.5, 'USD', 2)` → `'171.50'`. */
export function formatPrice(
  value: number | null | undefined,
  currency: string,
  decimals: number,
): string {
  if (!isNum(value)) return EMPTY;
  return numberFormat(priceDigits(value, currency, decimals)).format(value);
}

/** Signed change in price units: `'+1,250'`, `'-3.20'`, `'0'`. Null is `'—'`. */
export function formatChange(
  value: number | null | undefined,
  currency: string,
  decimals: number,
): string {
  if (!isNum(value)) return EMPTY;
  const digits = priceDigits(value, currency, decimals);
  const text = numberFormat(digits).format(Math.abs(value));
  if (Number(text.replace(/,/g, "")) === 0) return numberFormat(digits).format(0);
  return (value > 0 ? "+" : "-") + text;
}

/** A fraction as a signed percentage with two decimals: `0.010473` → `'+1.05%'`. */
export function formatRate(fraction: number | null | undefined): string {
  if (!isNum(fraction)) return EMPTY;
  const pct = fraction * 100;
  const text = numberFormat(2).format(Math.abs(pct));
  if (text === "0.00") return "0.00%";
  return `${pct > 0 ? "+" : "-"}${text}%`;
}

/** Epoch milliseconds as `HH:mm:ss` in KST (Asia/Seoul, UTC+9). */
export function formatKstTime(epochMs: number | null | undefined): string {
  if (!isNum(epochMs)) return EMPTY;
  const d = new Date(epochMs + KST_OFFSET_MS);
  const pad = (n: number) => String(n).padStart(2, "0");
  return `${pad(d.getUTCHours())}:${pad(d.getUTCMinutes())}:${pad(d.getUTCSeconds())}`;
}

const UNITS: ReadonlyArray<readonly [number, string]> = [
  [1e12, "조"],
  [1e8, "억"],
  [1e4, "만"],
];

/** Large numbers in Korean units, up to two decimals: `123456789` → `'1.23억'`, `9999` → `'9,999'`. */
export function formatKoreanUnit(value: number | null | undefined): string {
  if (!isNum(value)) return EMPTY;
  const abs = Math.abs(value);
  for (const [size, unit] of UNITS) {
    if (abs >= size) {
      const scaled = Math.round((value / size) * 100) / 100;
      return `${new Intl.NumberFormat("en-US", { maximumFractionDigits: 2 }).format(scaled)}${unit}`;
    }
  }
  return new Intl.NumberFormat("en-US", { maximumFractionDigits: 2 }).format(value);
}

/** Sign of a change: null, zero and NaN are flat. */
export function direction(value: number | null | undefined): Direction {
  if (!isNum(value) || value === 0) return "flat";
  return value > 0 ? "up" : "down";
}

export type Lang = "ko" | "en";

/**
 * Age of a time relative to `now`, for freshness marks and news: `'3초 전'`, `'5분 전'`,
 * `'2시간 전'`, `'3일 전'` (Korean) or `'3s ago'`, `'5m ago'`, `'2h ago'`, `'3d ago'` (English).
 * A time up to 1 s in the future (clock skew) reads as now.
 */
export function formatTimeAgo(epochMs: number | null | undefined, now: number, lang: Lang = "ko"): string {
  if (!isNum(epochMs)) return EMPTY;
  const s = Math.max(0, Math.floor((now - epochMs) / 1000));
  const ko = lang === "ko";
  if (s < 1) return ko ? "방금" : "now";
  if (s < 60) return ko ? `${s}초 전` : `${s}s ago`;
  const m = Math.floor(s / 60);
  if (m < 60) return ko ? `${m}분 전` : `${m}m ago`;
  const h = Math.floor(m / 60);
  if (h < 24) return ko ? `${h}시간 전` : `${h}h ago`;
  const d = Math.floor(h / 24);
  return ko ? `${d}일 전` : `${d}d ago`;
}

/** Epoch ms as `YYYY-MM-DD HH:mm` in KST. */
export function formatKstDateTime(epochMs: number | null | undefined): string {
  if (!isNum(epochMs)) return EMPTY;
  const d = new Date(epochMs + KST_OFFSET_MS);
  const pad = (n: number) => String(n).padStart(2, "0");
  return `${d.getUTCFullYear()}-${pad(d.getUTCMonth() + 1)}-${pad(d.getUTCDate())} ${pad(d.getUTCHours())}:${pad(d.getUTCMinutes())}`;
}

/** Volume in the UI language: 만/억/조 in Korean, K/M/B/T in English. */
export function formatVolume(value: number | null | undefined, lang: Lang = "ko"): string {
  if (lang === "ko") return formatKoreanUnit(value);
  if (!isNum(value)) return EMPTY;
  const abs = Math.abs(value);
  const units: ReadonlyArray<readonly [number, string]> = [
    [1e12, "T"],
    [1e9, "B"],
    [1e6, "M"],
    [1e3, "K"],
  ];
  for (const [size, unit] of units) {
    if (abs >= size) {
      return `${new Intl.NumberFormat("en-US", { maximumFractionDigits: 2 }).format(Math.round((value / size) * 100) / 100)}${unit}`;
    }
  }
  return new Intl.NumberFormat("en-US", { maximumFractionDigits: 2 }).format(value);
}

/** Currency symbol or unit shown beside a price. */
export function currencyLabel(currency: string, lang: Lang = "ko"): string {
  if (currency === "KRW") return lang === "ko" ? "원" : "KRW";
  if (currency === "USD") return "$";
  return currency;
}

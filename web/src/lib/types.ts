// Wire types of the public contract (DESIGN.md, "Public contract"). Times are epoch ms,
// prices/changes/rates/volumes are JSON numbers; `change_rate` is a fraction (0.0123 = +1.23 %).

/** A quote's market state (`sim` = the built-in simulated source, never a real market price). */
export type MarketState = "open" | "closed" | "pre" | "post" | "sim";
/** @deprecated use MarketState */
export type Market = MarketState;

/** Which market's clock and calendar an instrument follows. */
export type MarketId = "krx" | "us" | "crypto" | "metal" | "fx";

export type InstrumentClass = "stock" | "index" | "crypto" | "metal" | "fx" | "derived";

export interface Instrument {
  id: string;
  name_ko: string;
  name_en: string;
  class: InstrumentClass | string;
  venue: string;
  currency: string;
  decimals: number;
  market: MarketId | string;
}

export interface Quote {
  id: string;
  price: number;
  prev_close: number | null;
  change: number | null;
  change_rate: number | null;
  volume: number;
  day_volume: number | null;
  ts: number;
  ingest_ts: number;
  source: string;
  stale: boolean;
  market: MarketState;
  /** Only on derived instruments: the inputs and their exchange times (for their ages). */
  inputs?: QuoteInput[];
}

/** One input of a derived quote. */
export interface QuoteInput {
  id: string;
  ts: number;
}

export type SourceState = "up" | "degraded" | "down";

/** A `status` WebSocket event. */
export interface SourceStatus {
  source: string;
  state: SourceState;
  detail: string | null;
  ts: number;
}

/** A row of `GET /api/v1/sources`. */
export interface SourceInfo {
  source: string;
  state: SourceState;
  detail: string | null;
  last_event_ts: number | null;
  last_error: string | null;
}

export type Interval = "1m" | "5m" | "15m" | "1h" | "1d" | "1w";

export interface Candle {
  /** Bucket start, epoch ms. */
  t: number;
  o: number;
  h: number;
  l: number;
  c: number;
  v: number;
}

export interface NewsItem {
  id: string;
  source: string;
  title: string;
  summary: string | null;
  url: string;
  image: string | null;
  published: number;
  language: string | null;
  instruments: string[];
}

/** Latest quote per instrument id. */
export type QuoteMap = Readonly<Record<string, Quote>>;

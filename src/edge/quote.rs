//! The quote as the API and the WebSocket show it: the stored tick plus `stale` and `market`.

use serde::Serialize;
use sise_bus::Tick;
use sise_projections::latest::LatestQuote;

use super::market::MarketState;

#[derive(Debug, Serialize)]
pub struct QuoteView<'a> {
    pub id: &'a str,
    pub price: f64,
    pub prev_close: Option<f64>,
    pub change: Option<f64>,
    pub change_rate: Option<f64>,
    pub volume: f64,
    pub day_volume: Option<f64>,
    pub ts: i64,
    pub ingest_ts: i64,
    pub source: &'a str,
    pub stale: bool,
    pub market: &'static str,
    /// Only on replayed ticks.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub replay: bool,
}

impl<'a> QuoteView<'a> {
    pub fn from_latest(q: &'a LatestQuote, stale: bool, market: MarketState) -> Self {
        QuoteView {
            id: q.id.as_str(),
            price: q.price,
            prev_close: q.prev_close,
            change: q.change,
            change_rate: q.change_rate,
            volume: q.volume,
            day_volume: q.day_volume,
            ts: q.ts,
            ingest_ts: q.ingest_ts,
            source: &q.source,
            stale,
            market: market.as_str(),
            replay: false,
        }
    }

    pub fn from_tick(t: &'a Tick, stale: bool, market: MarketState) -> Self {
        QuoteView {
            id: t.instrument.as_str(),
            price: t.price,
            prev_close: t.prev_close,
            change: t.change,
            change_rate: t.change_rate,
            volume: t.volume,
            day_volume: t.day_volume,
            ts: t.ts,
            ingest_ts: t.ingest_ts,
            source: t.source.as_str(),
            stale,
            market: market.as_str(),
            replay: false,
        }
    }
}

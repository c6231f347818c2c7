//! The quote as the API and the WebSocket show it: the stored quote plus `stale` and `market`.

use std::borrow::Cow;

use serde::Serialize;
use sise_bus::Tick;
use sise_projections::latest::{LatestQuote, Quote};

use super::market::MarketState;

#[derive(Debug, Serialize)]
pub struct QuoteView<'a> {
    #[serde(flatten)]
    pub quote: Cow<'a, Quote>,
    pub stale: bool,
    pub market: &'static str,
    /// Only on replayed ticks.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub replay: bool,
}

impl<'a> QuoteView<'a> {
    pub fn from_latest(q: &'a LatestQuote, stale: bool, market: MarketState) -> Self {
        QuoteView {
            quote: Cow::Borrowed(&q.quote),
            stale,
            market: market.as_str(),
            replay: false,
        }
    }

    pub fn from_tick(t: &Tick, stale: bool, market: MarketState) -> Self {
        QuoteView {
            quote: Cow::Owned(Quote::from_tick(t)),
            stale,
            market: market.as_str(),
            replay: false,
        }
    }
}

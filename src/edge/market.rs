//! Market state and staleness of a quote: `market` (`open`, `closed`, `pre`, `post`, `sim`) and
//! `stale` (the price is older than its market and source allow, or its source is down).
//!
//! The session rules here are the regular sessions of each market on weekdays in the market's
//! own time zone (KRX 09:00–15:30 KST, US 09:30–16:00 New York with DST). Holidays and special
//! days come with the market calendar data file; until then a holiday reads as `open` and an
//! old price on it is marked stale (never shown as live).

use chrono::{Datelike, NaiveTime, TimeZone, Utc, Weekday};
use sise_bus::SourceState;
use sise_pipelines::Instrument;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MarketState {
    Open,
    Closed,
    Pre,
    Post,
    /// A simulated price (모의), whatever the real market does.
    Sim,
}

impl MarketState {
    pub fn as_str(self) -> &'static str {
        match self {
            MarketState::Open => "open",
            MarketState::Closed => "closed",
            MarketState::Pre => "pre",
            MarketState::Post => "post",
            MarketState::Sim => "sim",
        }
    }
}

fn hm(h: u32, m: u32) -> NaiveTime {
    NaiveTime::from_hms_opt(h, m, 0).unwrap_or_default()
}

/// The state of a market (`krx`, `us`, `crypto`, `metal`, `fx`) at `now_ms`.
pub fn market_state(market: &str, now_ms: i64) -> MarketState {
    let Some(now) = Utc.timestamp_millis_opt(now_ms).single() else {
        return MarketState::Closed;
    };
    let (tz, pre, open, close, post) = match market {
        "crypto" => return MarketState::Open,
        "krx" => (
            chrono_tz::Asia::Seoul,
            hm(8, 0),
            hm(9, 0),
            hm(15, 30),
            hm(20, 0),
        ),
        "us" => (
            chrono_tz::America::New_York,
            hm(4, 0),
            hm(9, 30),
            hm(16, 0),
            hm(20, 0),
        ),
        // Spot metals trade nearly around the clock on weekdays (New York time).
        "metal" => (
            chrono_tz::America::New_York,
            hm(0, 0),
            hm(0, 0),
            hm(23, 59),
            hm(23, 59),
        ),
        // Eximbank publishes once per business day (KST).
        "fx" => (
            chrono_tz::Asia::Seoul,
            hm(0, 0),
            hm(0, 0),
            hm(23, 59),
            hm(23, 59),
        ),
        _ => return MarketState::Open,
    };
    let local = now.with_timezone(&tz);
    if matches!(local.weekday(), Weekday::Sat | Weekday::Sun) {
        return MarketState::Closed;
    }
    let t = local.time();
    if t >= open && t < close {
        MarketState::Open
    } else if t >= pre && t < open {
        MarketState::Pre
    } else if t >= close && t < post {
        MarketState::Post
    } else {
        MarketState::Closed
    }
}

/// Longest a price may go without a tick while its market is open, per market.
fn max_age_ms(market: &str) -> i64 {
    match market {
        "crypto" => 30_000,
        "krx" | "us" => 60_000,
        "metal" => 15 * 60_000,
        "fx" => 4 * 86_400_000,
        _ => 60_000,
    }
}

/// Simulated ticks come at least once a second.
const SIM_MAX_AGE_MS: i64 = 10_000;

/// `(stale, market)` of a price from `source` with exchange time `ts`.
pub fn freshness(
    inst: Option<&Instrument>,
    source: &str,
    ts: i64,
    now_ms: i64,
    source_state: Option<SourceState>,
) -> (bool, MarketState) {
    let age = now_ms - ts;
    let down = source_state == Some(SourceState::Down);
    if source == "sim" {
        return (down || age > SIM_MAX_AGE_MS, MarketState::Sim);
    }
    let market = inst.map(|i| i.market.as_str()).unwrap_or("");
    let state = market_state(market, now_ms);
    let stale = match state {
        // Live sessions: late is stale, and so is anything from a source that is down.
        MarketState::Open | MarketState::Pre | MarketState::Post => {
            down || age > max_age_ms(market)
        }
        // A closed market's last price is its close, not a stale quote (unless days old).
        _ => age > 4 * 86_400_000,
    };
    (stale, state)
}

#[cfg(test)]
mod tests {
    use super::*;

    // 2026-03-12 (Thursday) 14:30:15 KST = 05:30:15 UTC.
    const THU_1430_KST: i64 = 1_773_293_415_000;
    const HOUR: i64 = 3_600_000;

    #[test]
    fn krx_sessions() {
        assert_eq!(market_state("krx", THU_1430_KST), MarketState::Open);
        assert_eq!(
            market_state("krx", THU_1430_KST + 2 * HOUR),
            MarketState::Post
        ); // 16:30
        assert_eq!(
            market_state("krx", THU_1430_KST - 6 * HOUR),
            MarketState::Pre
        ); // 08:30
        assert_eq!(
            market_state("krx", THU_1430_KST + 8 * HOUR),
            MarketState::Closed
        ); // 22:30
        assert_eq!(
            market_state("krx", THU_1430_KST + 48 * HOUR),
            MarketState::Closed
        ); // Saturday
    }

    #[test]
    fn us_sessions_follow_new_york_time_with_dst() {
        // 2026-03-12 is after the DST switch (2026-03-08): 10:00 EDT = 14:00 UTC.
        let ten_edt = 1_773_324_000_000;
        assert_eq!(market_state("us", ten_edt), MarketState::Open);
        // 2026-03-05 (before DST): 14:00 UTC = 09:00 EST, pre-market.
        let nine_est = ten_edt - 7 * 24 * HOUR;
        assert_eq!(market_state("us", nine_est), MarketState::Pre);
    }

    #[test]
    fn sim_is_sim_and_stale_when_late_or_down() {
        assert_eq!(
            freshness(None, "sim", 1_000, 2_000, None),
            (false, MarketState::Sim)
        );
        assert_eq!(
            freshness(None, "sim", 1_000, 20_000, None),
            (true, MarketState::Sim)
        );
        assert_eq!(
            freshness(None, "sim", 1_000, 2_000, Some(SourceState::Down)),
            (true, MarketState::Sim)
        );
    }
}

//! Market state and staleness of a quote: `market` (`open`, `closed`, `pre`, `post`, `sim`) and
//! `stale` (the price is older than its market and source allow, or its source is down).
//!
//! The market's phase comes from the one market calendar ([`sise_pipelines::calendar`], the data
//! file the web reads too): sessions in each market's own time zone, holidays and special days
//! (the 수능 day's 10:00 open, the NYSE's 13:00 early closes). A closed market's last price is its
//! close (장 마감), not a stale quote; it is stale only when it misses a whole session.

use chrono::{TimeZone, Utc};
use sise_bus::SourceState;
use sise_pipelines::calendar::{Calendar, Phase};
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

impl From<Phase> for MarketState {
    fn from(p: Phase) -> Self {
        match p {
            Phase::Pre => MarketState::Pre,
            Phase::Open => MarketState::Open,
            Phase::Post => MarketState::Post,
            Phase::Closed => MarketState::Closed,
        }
    }
}

/// The state of a market (`krx`, `us`, `crypto`, `metal`, `fx`) at `now_ms`, from the calendar.
/// An unknown market is closed.
pub fn market_state(market: &str, now_ms: i64) -> MarketState {
    Calendar::embedded().phase_ms(market, now_ms).into()
}

/// Longest a price may go without a tick while its market's regular session runs, per market.
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

/// With no calendar to say otherwise, a price older than this is stale even in a closed market.
const CLOSED_MAX_AGE_MS: i64 = 4 * 86_400_000;

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
    let Some(now) = Utc.timestamp_millis_opt(now_ms).single() else {
        return (true, MarketState::Closed);
    };
    let cal = Calendar::embedded();
    let phase = cal.phase(market, now);
    let max_age = max_age_ms(market);
    // A price from before the most recent trading day's first session missed that whole day.
    let missed_session = || match cal.last_session_start(market, now) {
        Some(start) => ts < start.timestamp_millis() - max_age,
        None => age > CLOSED_MAX_AGE_MS,
    };
    let stale = match phase {
        // The regular session: late is stale, and so is anything from a source that is down.
        Phase::Open => down || age > max_age,
        // Extended hours trade thinly (most KRX names are not on NXT): no tick for a while is the
        // session's nature, not staleness, but a down source or a missed day is.
        Phase::Pre | Phase::Post => down || missed_session(),
        // A closed market's last price is its close (장 마감), unless it missed a whole session.
        Phase::Closed => missed_session(),
    };
    (stale, phase.into())
}

#[cfg(test)]
mod tests {
    use super::*;

    // 2026-03-12 (Thursday) 14:30:15 KST = 05:30:15 UTC.
    const THU_1430_KST: i64 = 1_773_293_415_000;
    const HOUR: i64 = 3_600_000;
    const MIN: i64 = 60_000;

    fn inst(market: &str) -> Instrument {
        let reg = sise_pipelines::Registry::builtin().expect("registry");
        let found = reg
            .instruments()
            .iter()
            .find(|i| i.market == market)
            .unwrap_or_else(|| panic!("an instrument of {market}"));
        Instrument::clone(found)
    }

    /// A KST wall time as Unix ms.
    fn kst(y: i32, mo: u32, d: u32, h: u32, mi: u32) -> i64 {
        Utc.with_ymd_and_hms(y, mo, d, h, mi, 0)
            .unwrap()
            .timestamp_millis()
            - 9 * HOUR
    }

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
    fn krx_holidays_and_the_suneung_day_come_from_the_calendar() {
        // 2026-06-03 (Wednesday, local elections), 10:00 KST: closed.
        assert_eq!(
            market_state("krx", kst(2026, 6, 3, 10, 0)),
            MarketState::Closed
        );
        // 2026-11-19 (수능): 09:30 not yet open, 16:00 still open.
        assert_eq!(
            market_state("krx", kst(2026, 11, 19, 9, 30)),
            MarketState::Closed
        );
        assert_eq!(
            market_state("krx", kst(2026, 11, 19, 16, 0)),
            MarketState::Open
        );
        assert_eq!(
            market_state("krx", kst(2026, 12, 31, 10, 0)),
            MarketState::Closed
        );
        assert_eq!(
            market_state("mars", kst(2026, 11, 24, 10, 0)),
            MarketState::Closed
        );
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
    fn a_closed_markets_close_is_not_stale() {
        let krx = inst("krx");
        // Friday 2026-11-27 15:30 close, seen on Saturday: closed, not stale.
        let close = kst(2026, 11, 27, 15, 29);
        let sat = kst(2026, 11, 28, 11, 0);
        assert_eq!(
            freshness(Some(&krx), "kis", close, sat, Some(SourceState::Down)),
            (false, MarketState::Closed)
        );
        // Over the year-end close and New Year: 12-30's close is still the price on 2027-01-01.
        assert_eq!(
            freshness(
                Some(&krx),
                "kis",
                kst(2026, 12, 30, 15, 30),
                kst(2027, 1, 1, 12, 0),
                None
            ),
            (false, MarketState::Closed)
        );
        // A price from Thursday on Saturday missed Friday's whole session: stale.
        assert_eq!(
            freshness(Some(&krx), "kis", kst(2026, 11, 26, 15, 30), sat, None),
            (true, MarketState::Closed)
        );
    }

    #[test]
    fn open_sessions_are_stale_when_late_or_down_and_extended_hours_when_down() {
        let krx = inst("krx");
        let open = kst(2026, 11, 25, 10, 0);
        assert_eq!(
            freshness(Some(&krx), "kis", open - 10_000, open, None),
            (false, MarketState::Open)
        );
        assert_eq!(
            freshness(Some(&krx), "kis", open - 2 * MIN, open, None),
            (true, MarketState::Open)
        );
        assert_eq!(
            freshness(
                Some(&krx),
                "kis",
                open - 10_000,
                open,
                Some(SourceState::Down)
            ),
            (true, MarketState::Open)
        );
        // NXT after-market at 17:00 with the 15:30 close as the last price: not stale.
        let post = kst(2026, 11, 25, 17, 0);
        assert_eq!(
            freshness(Some(&krx), "kis", kst(2026, 11, 25, 15, 30), post, None),
            (false, MarketState::Post)
        );
        assert_eq!(
            freshness(
                Some(&krx),
                "kis",
                kst(2026, 11, 25, 15, 30),
                post,
                Some(SourceState::Down)
            ),
            (true, MarketState::Post)
        );
        // Crypto never closes: a minute-old price is stale.
        let btc = inst("crypto");
        assert_eq!(
            freshness(Some(&btc), "upbit", open - MIN, open, None),
            (true, MarketState::Open)
        );
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

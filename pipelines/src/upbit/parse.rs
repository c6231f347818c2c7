//! Upbit's wire formats → sise observations, without a panic on any input.
//!
//! - WebSocket frames (`DEFAULT` and `SIMPLE` names, one object or a `*_LIST` array): `ticker`
//!   and `trade` become [`Observation`]s; `{"status":"UP"}`, error frames and other types
//!   (orderbook) are recognised and reported as such; anything else is a parse error.
//! - REST answers: `/ticker`, `/trades/ticks`, `/market/all` and the error shape.
//!
//! Numbers: every price and volume accepts any JSON number form (`0`, `130250000.0`,
//! `5.0E-5`); `sequential_id` is deserialized straight into `u64` (serde_json hands an integer
//! token to `visit_u64` exactly; it never goes through `f64`), so ids above 2^53 keep every digit.

use std::borrow::Cow;

use serde::Deserialize;
use sise_bus::{InstrumentId, SourceName, Tick, SCHEMA_VERSION};

/// The venue part of every Upbit instrument id (`crypto.upbit.KRW-BTC`).
pub const ID_PREFIX: &str = "crypto.upbit.";

/// One WebSocket frame object, in either naming (`DEFAULT` or `SIMPLE`). Unknown fields are
/// ignored; strings borrow from the frame when they can.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct RawFrame<'a> {
    #[serde(alias = "ty", borrow)]
    pub r#type: Option<Cow<'a, str>>,
    #[serde(alias = "cd", borrow)]
    pub code: Option<Cow<'a, str>>,
    #[serde(alias = "tp")]
    pub trade_price: Option<f64>,
    #[serde(alias = "pcp")]
    pub prev_closing_price: Option<f64>,
    #[serde(alias = "c", borrow)]
    pub change: Option<Cow<'a, str>>,
    #[serde(alias = "cp")]
    pub change_price: Option<f64>,
    #[serde(alias = "scp")]
    pub signed_change_price: Option<f64>,
    #[serde(alias = "scr")]
    pub signed_change_rate: Option<f64>,
    #[serde(alias = "tv")]
    pub trade_volume: Option<f64>,
    #[serde(alias = "atv")]
    pub acc_trade_volume: Option<f64>,
    #[serde(alias = "ttms")]
    pub trade_timestamp: Option<i64>,
    #[serde(alias = "tms")]
    pub timestamp: Option<i64>,
    #[serde(alias = "sid")]
    pub sequential_id: Option<u64>,
    #[serde(alias = "st", borrow)]
    pub stream_type: Option<Cow<'a, str>>,
    #[serde(borrow)]
    pub status: Option<Cow<'a, str>>,
    pub error: Option<ErrorBody>,
}

/// Upbit's error shape: `{"error":{"name":…,"message":…}}`; `name` is a string or a number.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(default)]
pub struct ErrorBody {
    pub name: Option<NameOrNumber>,
    pub message: Option<String>,
}

/// `name` of an error: usually a string, a number for 404.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum NameOrNumber {
    Name(String),
    Number(i64),
}

impl std::fmt::Display for NameOrNumber {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            NameOrNumber::Name(s) => f.write_str(s),
            NameOrNumber::Number(n) => write!(f, "{n}"),
        }
    }
}

impl std::fmt::Display for ErrorBody {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let name = self
            .name
            .as_ref()
            .map(|n| n.to_string())
            .unwrap_or_else(|| "?".into());
        write!(f, "{name}: {}", self.message.as_deref().unwrap_or(""))
    }
}

/// The sign of a change, from Upbit's `change` field.
fn sign_of(change: Option<&str>) -> Option<f64> {
    match change? {
        "RISE" => Some(1.0),
        "FALL" => Some(-1.0),
        "EVEN" => Some(0.0),
        _ => None,
    }
}

/// What kind of market observation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A quote update (`ticker`): price and the day's fields, no trade size of its own.
    Ticker,
    /// One trade, with its size and `sequential_id`.
    Trade,
}

/// A ticker or trade, parsed and checked, not yet tied to an instrument id.
#[derive(Debug, Clone, PartialEq)]
pub struct Observation {
    pub kind: Kind,
    pub market: String,
    pub price: f64,
    pub prev_close: Option<f64>,
    /// Signed change against Upbit's previous close (the day resets at 09:00 KST).
    pub change: Option<f64>,
    /// Signed change rate, a fraction.
    pub change_rate: Option<f64>,
    /// Size of this trade (0 for a ticker: its trade comes as a `trade` frame).
    pub volume: f64,
    /// The Upbit day's cumulative volume (tickers only).
    pub day_volume: Option<f64>,
    /// Exchange time: the trade's timestamp, ms.
    pub ts: i64,
    /// Trade: `sequential_id`. Ticker: the frame's `timestamp` (so `(code, trade_timestamp,
    /// timestamp)` is the dedup key, as the API notes advise).
    pub seq: u64,
    pub snapshot: bool,
}

impl Observation {
    /// The sise tick of this observation.
    pub fn to_tick(&self, instrument: InstrumentId, source: SourceName, ingest_ts: i64) -> Tick {
        Tick {
            v: SCHEMA_VERSION,
            instrument,
            price: self.price,
            prev_close: self.prev_close,
            change: self.change,
            change_rate: self.change_rate,
            volume: self.volume,
            day_volume: self.day_volume,
            ts: self.ts,
            ingest_ts,
            source,
            seq: self.seq,
            backfill: false,
            inputs: Vec::new(),
        }
    }
}

/// What one frame object turned out to be.
#[derive(Debug, Clone, PartialEq)]
pub enum Parsed {
    Obs(Observation),
    /// `{"status":"UP"}`: the answer to a text `PING`; not market data.
    Status,
    /// An error frame from Upbit (logged and counted, never fatal).
    Error(String),
    /// A valid frame of a type we do not use (orderbook, candle…).
    Ignored(String),
}

/// Why a frame was rejected.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ParseError {
    #[error("not JSON: {0}")]
    Json(String),
    #[error("{0} frame without {1}")]
    Missing(&'static str, &'static str),
    #[error("{0} frame with a bad value: {1}")]
    Bad(&'static str, &'static str),
    #[error("frame of no known shape")]
    Unknown,
}

fn finite_pos(x: Option<f64>) -> Option<f64> {
    x.filter(|v| v.is_finite() && *v > 0.0)
}

fn finite(x: Option<f64>) -> Option<f64> {
    x.filter(|v| v.is_finite())
}

impl RawFrame<'_> {
    /// Classify and check one frame object.
    pub fn into_parsed(self) -> Result<Parsed, ParseError> {
        if let Some(err) = self.error {
            return Ok(Parsed::Error(err.to_string()));
        }
        let Some(kind) = self.r#type.as_deref() else {
            return match self.status {
                Some(_) => Ok(Parsed::Status),
                None => Err(ParseError::Unknown),
            };
        };
        let kind = match kind {
            "ticker" => Kind::Ticker,
            "trade" => Kind::Trade,
            other => return Ok(Parsed::Ignored(other.chars().take(32).collect())),
        };
        let what = match kind {
            Kind::Ticker => "ticker",
            Kind::Trade => "trade",
        };
        let market = self
            .code
            .as_deref()
            .ok_or(ParseError::Missing(what, "code"))?
            .to_owned();
        let price = self
            .trade_price
            .ok_or(ParseError::Missing(what, "trade_price"))?;
        let price = finite_pos(Some(price)).ok_or(ParseError::Bad(what, "trade_price"))?;
        let ts = self
            .trade_timestamp
            .or(self.timestamp)
            .ok_or(ParseError::Missing(what, "trade_timestamp"))?;
        if ts <= 0 {
            return Err(ParseError::Bad(what, "trade_timestamp"));
        }
        let prev_close = finite_pos(self.prev_closing_price);
        let sign = sign_of(self.change.as_deref());
        let snapshot = self.stream_type.as_deref() == Some("SNAPSHOT");
        let obs = match kind {
            Kind::Ticker => {
                let change = finite(self.signed_change_price)
                    .or_else(|| Some(sign? * finite(self.change_price)?));
                let change_rate =
                    finite(self.signed_change_rate).or_else(|| Some(change? / prev_close?));
                let day_volume = finite(self.acc_trade_volume).filter(|v| *v >= 0.0);
                Observation {
                    kind,
                    market,
                    price,
                    prev_close,
                    change,
                    change_rate,
                    volume: 0.0,
                    day_volume,
                    ts,
                    seq: self
                        .timestamp
                        .and_then(|t| u64::try_from(t).ok())
                        .unwrap_or(0),
                    snapshot,
                }
            }
            Kind::Trade => {
                let volume = self
                    .trade_volume
                    .ok_or(ParseError::Missing(what, "trade_volume"))?;
                if !(volume.is_finite() && volume >= 0.0) {
                    return Err(ParseError::Bad(what, "trade_volume"));
                }
                let seq = self
                    .sequential_id
                    .ok_or(ParseError::Missing(what, "sequential_id"))?;
                let change = sign
                    .zip(finite(self.change_price))
                    .map(|(s, c)| s * c.abs());
                let change_rate = change.zip(prev_close).map(|(c, p)| c / p);
                Observation {
                    kind,
                    market,
                    price,
                    prev_close,
                    change,
                    change_rate,
                    volume,
                    day_volume: None,
                    ts,
                    seq,
                    snapshot,
                }
            }
        };
        Ok(Parsed::Obs(obs))
    }
}

/// Parse one WebSocket payload (binary or text): one object, or an array of them (`*_LIST`
/// formats). Each element is classified on its own, so one bad element spoils only itself.
pub fn parse_frame(payload: &[u8]) -> Vec<Result<Parsed, ParseError>> {
    let first = payload.iter().find(|b| !b.is_ascii_whitespace()).copied();
    if first == Some(b'[') {
        return match serde_json::from_slice::<Vec<RawFrame<'_>>>(payload) {
            Ok(list) => list.into_iter().map(RawFrame::into_parsed).collect(),
            Err(e) => vec![Err(ParseError::Json(short(&e)))],
        };
    }
    vec![parse_one(payload)]
}

/// Parse one frame object.
pub fn parse_one(payload: &[u8]) -> Result<Parsed, ParseError> {
    serde_json::from_slice::<RawFrame<'_>>(payload)
        .map_err(|e| ParseError::Json(short(&e)))?
        .into_parsed()
}

fn short(e: &serde_json::Error) -> String {
    // The category and position only: never echo outside bytes into logs at length.
    format!(
        "{:?} at line {} column {}",
        e.classify(),
        e.line(),
        e.column()
    )
}

/// The market code of an instrument id, if it is an Upbit one (`crypto.upbit.KRW-BTC` → `KRW-BTC`).
pub fn market_of(id: &InstrumentId) -> Option<&str> {
    id.as_str().strip_prefix(ID_PREFIX)
}

/// The instrument id of a market code, if the code is a well-formed market (`KRW-BTC`).
pub fn instrument_of(market: &str) -> Option<InstrumentId> {
    if !is_market_code(market) {
        return None;
    }
    InstrumentId::parse(&format!("{ID_PREFIX}{market}")).ok()
}

/// `QUOTE-BASE`, uppercase letters and digits, as Upbit writes codes.
pub fn is_market_code(s: &str) -> bool {
    let Some((quote, base)) = s.split_once('-') else {
        return false;
    };
    let part = |p: &str| {
        !p.is_empty()
            && p.len() <= 15
            && p.bytes()
                .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit())
    };
    part(quote) && part(base)
}

// ---- REST ---------------------------------------------------------------------------------

/// One element of `GET /v1/ticker`.
#[derive(Debug, Clone, Deserialize)]
pub struct RestTicker {
    pub market: String,
    pub trade_price: f64,
    pub prev_closing_price: Option<f64>,
    pub change: Option<String>,
    pub change_price: Option<f64>,
    pub signed_change_price: Option<f64>,
    pub signed_change_rate: Option<f64>,
    pub acc_trade_volume: Option<f64>,
    pub trade_timestamp: Option<i64>,
    pub timestamp: Option<i64>,
}

impl RestTicker {
    pub fn to_observation(&self) -> Result<Observation, ParseError> {
        RawFrame {
            r#type: Some(Cow::Borrowed("ticker")),
            code: Some(Cow::Borrowed(&self.market)),
            trade_price: Some(self.trade_price),
            prev_closing_price: self.prev_closing_price,
            change: self.change.as_deref().map(Cow::Borrowed),
            change_price: self.change_price,
            signed_change_price: self.signed_change_price,
            signed_change_rate: self.signed_change_rate,
            acc_trade_volume: self.acc_trade_volume,
            trade_timestamp: self.trade_timestamp,
            timestamp: self.timestamp,
            stream_type: Some(Cow::Borrowed("SNAPSHOT")),
            ..RawFrame::default()
        }
        .into_parsed()
        .and_then(|p| match p {
            Parsed::Obs(o) => Ok(o),
            _ => Err(ParseError::Unknown),
        })
    }
}

/// One element of `GET /v1/trades/ticks` (newest first).
#[derive(Debug, Clone, Deserialize)]
pub struct RestTrade {
    pub market: String,
    pub timestamp: i64,
    pub trade_price: f64,
    pub trade_volume: f64,
    pub prev_closing_price: Option<f64>,
    /// Signed change against the previous close.
    pub change_price: Option<f64>,
    pub sequential_id: u64,
}

impl RestTrade {
    pub fn to_observation(&self) -> Result<Observation, ParseError> {
        let price =
            finite_pos(Some(self.trade_price)).ok_or(ParseError::Bad("trade", "trade_price"))?;
        if !(self.trade_volume.is_finite() && self.trade_volume >= 0.0) {
            return Err(ParseError::Bad("trade", "trade_volume"));
        }
        if self.timestamp <= 0 {
            return Err(ParseError::Bad("trade", "timestamp"));
        }
        let prev_close = finite_pos(self.prev_closing_price);
        let change = finite(self.change_price);
        Ok(Observation {
            kind: Kind::Trade,
            market: self.market.clone(),
            price,
            prev_close,
            change,
            change_rate: change.zip(prev_close).map(|(c, p)| c / p),
            volume: self.trade_volume,
            day_volume: None,
            ts: self.timestamp,
            seq: self.sequential_id,
            snapshot: false,
        })
    }
}

/// One element of `GET /v1/candles/minutes/{unit}` (newest first).
#[derive(Debug, Clone, Deserialize)]
pub struct RestCandle {
    pub market: String,
    /// Candle start, UTC, `yyyy-MM-ddTHH:mm:ss` (no zone suffix).
    pub candle_date_time_utc: String,
    pub opening_price: f64,
    pub high_price: f64,
    pub low_price: f64,
    pub trade_price: f64,
    /// Time of the candle's last trade, ms.
    pub timestamp: i64,
    pub candle_acc_trade_volume: f64,
}

/// `yyyy-MM-ddTHH:mm:ss` read as UTC → epoch ms.
pub fn utc_ms(text: &str) -> Option<i64> {
    chrono::NaiveDateTime::parse_from_str(text, "%Y-%m-%dT%H:%M:%S")
        .ok()
        .map(|t| t.and_utc().timestamp_millis())
}

/// Epoch ms → `yyyy-MM-ddTHH:mm:ssZ`, the `to` of a candles request.
pub fn iso_utc(ms: i64) -> Option<String> {
    chrono::DateTime::from_timestamp_millis(ms).map(|t| t.format("%Y-%m-%dT%H:%M:%SZ").to_string())
}

impl RestCandle {
    /// Candle start, epoch ms.
    pub fn start(&self) -> Option<i64> {
        utc_ms(&self.candle_date_time_utc)
    }

    /// A 1-minute candle as ticks that rebuild exactly its OHLCV in the `history` projection:
    /// open at the minute's start, high, low, then the close at the last trade's time carrying
    /// the candle's whole volume. `seq` = start × 10 + k: distinct from trade ids
    /// (`sequential_id`, ~10^16) and ticker frame times (~10^12), and the same for the same
    /// candle, so a re-sent backfill is a duplicate.
    pub fn to_observations(&self) -> Result<Vec<Observation>, ParseError> {
        self.observations(0)
    }

    /// A day candle as the same four ticks, in the day's first minute, with `seq` =
    /// start × 10 + 5 + k, so they never collide with the 1-minute candle of that minute. The history's
    /// daily and weekly candles (and the day's first minute) then carry the Upbit day's OHLCV.
    pub fn to_day_observations(&self) -> Result<Vec<Observation>, ParseError> {
        let mut o = self.observations(5)?;
        let t0 = o[0].ts;
        o[3].ts = t0 + 3;
        Ok(o)
    }

    fn observations(&self, seq_offset: u64) -> Result<Vec<Observation>, ParseError> {
        let t0 = self
            .start()
            .ok_or(ParseError::Bad("candle", "candle_date_time_utc"))?;
        let prices = [
            self.opening_price,
            self.high_price,
            self.low_price,
            self.trade_price,
        ];
        if t0 <= 0 || prices.iter().any(|p| !(p.is_finite() && *p > 0.0)) {
            return Err(ParseError::Bad("candle", "price"));
        }
        let v = self.candle_acc_trade_volume;
        if !(v.is_finite() && v >= 0.0) {
            return Err(ParseError::Bad("candle", "candle_acc_trade_volume"));
        }
        let close_ts = self.timestamp.clamp(t0 + 3, t0 + 59_999);
        let base = u64::try_from(t0).map_err(|_| ParseError::Bad("candle", "time"))? * 10;
        let at = [t0, t0 + 1, t0 + 2, close_ts];
        Ok((0..4)
            .map(|k| Observation {
                kind: Kind::Trade,
                market: self.market.clone(),
                price: prices[k],
                prev_close: None,
                change: None,
                change_rate: None,
                volume: if k == 3 { v } else { 0.0 },
                day_volume: None,
                ts: at[k],
                seq: base + seq_offset + k as u64,
                snapshot: false,
            })
            .collect())
    }
}

/// One element of `GET /v1/market/all`.
#[derive(Debug, Clone, Deserialize)]
pub struct RestMarket {
    pub market: String,
    pub korean_name: Option<String>,
    pub english_name: Option<String>,
}

/// The `Remaining-Req` header: `group=ticker; min=600; sec=9` (`min` is deprecated, ignored).
pub fn parse_remaining_req(value: &str) -> Option<(String, u32)> {
    let mut group = None;
    let mut sec = None;
    for part in value.split(';') {
        let Some((k, v)) = part.split_once('=') else {
            continue;
        };
        match k.trim() {
            "group" => group = Some(v.trim().to_owned()),
            "sec" => sec = v.trim().parse().ok(),
            _ => {}
        }
    }
    Some((group?, sec?))
}

/// Seconds of an IP block named in a 418 message ("… blocked for 60 seconds."), if any.
pub fn block_seconds(message: &str) -> Option<u64> {
    let words: Vec<&str> = message.split_whitespace().collect();
    words.windows(2).find_map(|w| {
        w[1].trim_end_matches(['.', ','])
            .starts_with("second")
            .then(|| w[0].parse().ok())
            .flatten()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    macro_rules! fixture {
        ($name:literal) => {
            include_bytes!(concat!("fixtures/", $name)).as_slice()
        };
    }

    fn obs(bytes: &[u8]) -> Observation {
        match parse_one(bytes).unwrap() {
            Parsed::Obs(o) => o,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn ticker_default_snapshot_and_realtime() {
        let s = obs(fixture!("ws_ticker_snapshot_krw_btc.json"));
        assert_eq!(s.kind, Kind::Ticker);
        assert_eq!(s.market, "KRW-BTC");
        assert_eq!(s.price, 130_250_000.0);
        assert_eq!(s.prev_close, Some(128_900_000.0));
        assert_eq!(s.change, Some(1_350_000.0));
        assert_eq!(s.change_rate, Some(0.0104732351));
        assert_eq!(s.volume, 0.0, "a ticker's trade comes as a trade frame");
        assert_eq!(s.day_volume, Some(1850.21457731));
        assert_eq!(s.ts, 1_773_293_414_000);
        assert_eq!(s.seq, 1_773_293_414_700);
        assert!(s.snapshot);
        let r = obs(fixture!("ws_ticker_realtime_krw_btc.json"));
        assert!(!r.snapshot);
        assert_eq!(r.price, 130_260_000.0);
    }

    #[test]
    fn ticker_simple_format_and_even_with_integer_zeros() {
        let e = obs(fixture!("ws_ticker_simple_krw_eth.json"));
        assert_eq!(e.market, "KRW-ETH");
        assert_eq!(e.change, Some(-85_000.0));
        assert_eq!(e.change_rate, Some(-0.0173292559));
        assert_eq!(e.ts, 1_773_293_413_000);
        let l = obs(fixture!("ws_ticker_even_krw_link.json"));
        assert_eq!(l.change, Some(0.0));
        assert_eq!(l.change_rate, Some(0.0));
    }

    #[test]
    fn trade_with_exponent_volume_and_big_id() {
        let t = obs(fixture!("ws_trade_realtime_krw_btc.json"));
        assert_eq!(t.kind, Kind::Trade);
        assert_eq!(t.volume, 5.0e-5);
        assert_eq!(t.seq, 17_732_934_162_100_001);
        assert_eq!(t.ts, 1_773_293_416_210);
        assert_eq!(t.change, Some(1_360_000.0));
        let d = obs(fixture!("ws_trade_duplicate_krw_btc.json"));
        assert_eq!(t, d);
        let old = obs(fixture!("ws_trade_no_best_krw_eth.json"));
        assert_eq!(old.change, Some(-85_000.0));
        assert_eq!(old.seq, 17_732_934_130_000_000);
    }

    #[test]
    fn sequential_id_above_2_pow_53_keeps_every_digit() {
        // 2^53 + 1 is not an f64; a path through f64 would give ...992.
        let frame = br#"{"type":"trade","code":"KRW-BTC","trade_price":1.0,"trade_volume":2.5E-8,"trade_timestamp":1,"sequential_id":9007199254740993}"#;
        let t = obs(frame);
        assert_eq!(t.seq, 9_007_199_254_740_993);
        assert_eq!(t.volume, 2.5e-8);
        let max =
            br#"{"ty":"trade","cd":"KRW-BTC","tp":1,"tv":1,"ttms":1,"sid":18446744073709551615}"#;
        assert_eq!(obs(max).seq, u64::MAX);
        // Not an integer: refused, never rounded.
        let float = br#"{"type":"trade","code":"KRW-BTC","trade_price":1.0,"trade_volume":1,"trade_timestamp":1,"sequential_id":1.7E16}"#;
        assert!(parse_one(float).is_err());
    }

    #[test]
    fn status_error_orderbook_and_malformed() {
        assert_eq!(parse_one(fixture!("ws_status_up.json")), Ok(Parsed::Status));
        match parse_one(fixture!("ws_error_wrong_format.json")) {
            Ok(Parsed::Error(m)) => assert!(m.starts_with("WRONG_FORMAT"), "{m}"),
            other => panic!("{other:?}"),
        }
        assert_eq!(
            parse_one(fixture!("ws_orderbook_krw_xrp.json")),
            Ok(Parsed::Ignored("orderbook".into()))
        );
        assert!(matches!(
            parse_one(fixture!("ws_malformed_frame.bin.txt")),
            Err(ParseError::Json(_))
        ));
        for bad in [
            &b""[..],
            b"null",
            b"[]x",
            b"{}",
            b"{\"type\":\"ticker\"}",
            b"{\"type\":\"trade\",\"code\":\"KRW-BTC\",\"trade_price\":-1,\"trade_volume\":1,\"trade_timestamp\":1,\"sequential_id\":1}",
            b"{\"type\":\"trade\",\"code\":\"KRW-BTC\",\"trade_price\":1,\"trade_volume\":1,\"trade_timestamp\":1}",
            &[0xff, 0xfe, 0x00],
        ] {
            assert!(
                !matches!(parse_one(bad), Ok(Parsed::Obs(_))),
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
    }

    #[test]
    fn list_format_parses_each_element() {
        let list =
            br#"[{"ty":"trade","cd":"KRW-BTC","tp":1,"tv":1,"ttms":1,"sid":7},{"ty":"trade"}]"#;
        let out = parse_frame(list);
        assert_eq!(out.len(), 2);
        assert!(matches!(out[0], Ok(Parsed::Obs(_))));
        assert!(out[1].is_err());
    }

    #[test]
    fn rest_answers() {
        let tickers: Vec<RestTicker> =
            serde_json::from_slice(fixture!("ticker_krw_all7.json")).unwrap();
        assert_eq!(tickers.len(), 7);
        for t in &tickers {
            let o = t.to_observation().unwrap();
            assert!(o.price > 0.0 && o.ts > 0 && o.day_volume.is_some());
        }
        let link = tickers.iter().find(|t| t.market == "KRW-LINK").unwrap();
        assert_eq!(link.to_observation().unwrap().change, Some(0.0));
        let trades: Vec<RestTrade> =
            serde_json::from_slice(fixture!("trades_ticks_krw_btc.json")).unwrap();
        assert_eq!(trades[0].sequential_id, 17_732_934_140_000_003);
        assert_eq!(trades[1].to_observation().unwrap().volume, 5.0e-5);
        let markets: Vec<RestMarket> =
            serde_json::from_slice(fixture!("market_all_krw.json")).unwrap();
        assert_eq!(markets.len(), 8);
        assert_eq!(markets[0].korean_name.as_deref(), Some("비트코인"));
        let e404: serde_json::Value =
            serde_json::from_slice(fixture!("error_404_code_not_found.json")).unwrap();
        let body: ErrorBody = serde_json::from_value(e404["error"].clone()).unwrap();
        assert_eq!(body.to_string(), "404: Code not found");
    }

    #[test]
    fn minute_candles_become_ticks_of_the_same_ohlcv() {
        let candles: Vec<RestCandle> =
            serde_json::from_slice(fixture!("candles_minutes_1_krw_btc.json")).unwrap();
        let c = &candles[2];
        assert_eq!(c.start(), Some(1_773_293_220_000));
        let obs = c.to_observations().unwrap();
        assert_eq!(obs.len(), 4);
        let prices: Vec<f64> = obs.iter().map(|o| o.price).collect();
        assert_eq!(
            prices,
            [130_120_000.0, 130_190_000.0, 130_100_000.0, 130_180_000.0]
        );
        assert_eq!(obs.iter().map(|o| o.volume).sum::<f64>(), 2.0e-5);
        assert!(obs
            .iter()
            .all(|o| o.ts / 60_000 == 1_773_293_220_000 / 60_000));
        assert_eq!(obs[3].ts, 1_773_293_278_001);
        assert_eq!(
            iso_utc(1_773_293_400_000).as_deref(),
            Some("2026-03-12T05:30:00Z")
        );
    }

    #[test]
    fn headers_and_block_time() {
        assert_eq!(
            parse_remaining_req("group=ticker; min=600; sec=9"),
            Some(("ticker".into(), 9))
        );
        assert_eq!(
            parse_remaining_req("group=candles;sec=0"),
            Some(("candles".into(), 0))
        );
        assert_eq!(parse_remaining_req("garbage"), None);
        assert_eq!(
            block_seconds(
                "Too many requests were sent after 429. This IP is blocked for 60 seconds."
            ),
            Some(60)
        );
        assert_eq!(block_seconds("blocked"), None);
    }

    #[test]
    fn market_codes_and_ids() {
        assert!(is_market_code("KRW-BTC"));
        assert!(is_market_code("KRW-1INCH"));
        assert!(!is_market_code("krw-btc"));
        assert!(!is_market_code("KRW-BTC.5"));
        assert!(!is_market_code("KRWBTC"));
        let id = instrument_of("KRW-ONDO").unwrap();
        assert_eq!(id.as_str(), "crypto.upbit.KRW-ONDO");
        assert_eq!(market_of(&id), Some("KRW-ONDO"));
    }
}

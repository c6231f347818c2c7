//! The gold and silver source (`SISE_SOURCES=gold`): `metal.spot.XAU` and `metal.spot.XAG` in
//! USD per troy ounce (`shared/apis/gold.md`).
//!
//! Two providers, one source:
//! - **GoldAPI.io** (`SISE_GOLDAPI_URL`, header `x-access-token: GOLDAPI_KEY`), the reference:
//!   its answer carries the previous close, the change and the change rate. Its free plan allows
//!   about 100 requests a month and one round costs two (XAU, XAG), so it is polled every
//!   [`goldapi_interval`]`(100, 2, 0.2)` = 31 days × 24 h / 40 rounds = **18.6 h** (a fifth of
//!   the quota is kept for restarts; a restart within the interval of the last GoldAPI tick in
//!   the log does not spend a round).
//! - **gold-api.com** (`SISE_GOLD_FALLBACK_URL`, no key), polled every **60 s** between GoldAPI
//!   rounds, and the whole time when there is no key or GoldAPI answers 403/429/5xx, garbage,
//!   or nothing within the timeout ("late"). It has no previous close: its ticks take the last
//!   GoldAPI previous close when there is one, and otherwise carry none.
//!
//! The tick's `source` says which provider served it (`goldapi` or `goldapicom`); the
//! `SourceStatus` (source `gold`) says "fallback in use" and why. One status row for one
//! configured source keeps `/api/v1/sources` simple, while every quote still shows its provider.
//!
//! Rounds are driven by an interval job of tokio-cron-scheduler ([`crate::schedule`], every
//! 60 s) and by GoldAPI coming due. Every request has a timeout; failures back off exponentially with jitter (GoldAPI: from
//! 1 min to 6 h, never faster than the quota for 403/429; gold-api.com: from 60 s to 15 min).
//! Bad answers are skipped and counted. The key is only read at the request
//! (`ExposeSecret`) and never appears in a log line, an error or a status.

use std::collections::HashMap;
use std::time::Duration;

use chrono::DateTime;
use futures::future::BoxFuture;
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use sise_bus::{now_ms, InstrumentId, SourceName, SourceState, Tick, SCHEMA_VERSION};
use tokio::time::Instant;

use crate::poll::{self, Backoff, Failure};
use crate::schedule::Schedule;
use crate::source::{Source, SourceContext, StatusBoard};
use crate::PipelineError;

/// GoldAPI.io's base, as documented.
pub const DEFAULT_GOLDAPI_URL: &str = "https://www.goldapi.io/api";
/// gold-api.com's base, as documented.
pub const DEFAULT_FALLBACK_URL: &str = "https://api.gold-api.com";
/// GoldAPI.io's free plan, requests per month (unconfirmed; plan numbers change).
pub const GOLDAPI_FREE_QUOTA_PER_MONTH: u32 = 100;
/// The metals polled, each one request per round.
pub const METALS: [&str; 2] = ["XAU", "XAG"];

/// The interval between GoldAPI rounds that keeps a month (31 days) within `quota_per_month`
/// requests, each round costing `requests_per_round`, with a `reserve` fraction of the quota
/// left for restarts and retries.
pub fn goldapi_interval(quota_per_month: u32, requests_per_round: u32, reserve: f64) -> Duration {
    let usable = (f64::from(quota_per_month) * (1.0 - reserve.clamp(0.0, 0.9))).floor();
    let rounds = (usable / f64::from(requests_per_round.max(1)))
        .floor()
        .max(1.0);
    Duration::from_secs_f64(31.0 * 86_400.0 / rounds)
}

/// How the gold source runs.
#[derive(Debug, Clone)]
pub struct GoldSettings {
    pub goldapi_url: String,
    pub fallback_url: String,
    /// `GOLDAPI_KEY`; without it only the fallback runs.
    pub key: Option<SecretString>,
    /// Between GoldAPI rounds (quota-derived, see [`goldapi_interval`]).
    pub goldapi_interval: Duration,
    /// Between gold-api.com polls.
    pub fallback_interval: Duration,
    /// Of every request; an answer later than this is "late" and the fallback serves.
    pub timeout: Duration,
    /// GoldAPI retry after a transient failure: first delay and cap.
    pub retry_min: Duration,
    pub retry_max: Duration,
}

impl GoldSettings {
    pub fn new(goldapi_url: &str, fallback_url: &str, key: Option<SecretString>) -> Self {
        GoldSettings {
            goldapi_url: goldapi_url.trim_end_matches('/').to_owned(),
            fallback_url: fallback_url.trim_end_matches('/').to_owned(),
            key: key.filter(|k| !k.expose_secret().trim().is_empty()),
            goldapi_interval: goldapi_interval(GOLDAPI_FREE_QUOTA_PER_MONTH, 2, 0.2),
            fallback_interval: Duration::from_secs(60),
            timeout: Duration::from_secs(5),
            retry_min: Duration::from_secs(60),
            retry_max: Duration::from_secs(6 * 3600),
        }
    }
}

/// The gold and silver source.
pub struct Gold {
    settings: GoldSettings,
}

impl Gold {
    pub fn new(settings: GoldSettings) -> Self {
        Gold { settings }
    }
}

fn name_of(s: &'static str) -> SourceName {
    SourceName::parse(s).unwrap_or_else(|_| unreachable!("{s:?} is a valid source name"))
}

/// The configured source (`SISE_SOURCES=gold`) and its status rows.
pub fn source_name() -> SourceName {
    name_of("gold")
}
/// The `source` of ticks GoldAPI.io served.
pub fn goldapi_name() -> SourceName {
    name_of("goldapi")
}
/// The `source` of ticks gold-api.com served.
pub fn fallback_name() -> SourceName {
    name_of("goldapicom")
}

impl Source for Gold {
    fn name(&self) -> SourceName {
        source_name()
    }

    fn run(self: Box<Self>, ctx: SourceContext) -> BoxFuture<'static, Result<(), PipelineError>> {
        Box::pin(run(self.settings, ctx))
    }
}

/// One metal price as a provider reported it.
#[derive(Debug, Clone, PartialEq)]
pub struct MetalQuote {
    pub metal: &'static str,
    pub price: f64,
    pub prev_close: Option<f64>,
    pub change: Option<f64>,
    /// Fraction (0.0068 = +0.68 %).
    pub change_rate: Option<f64>,
    /// Epoch ms.
    pub ts: i64,
}

#[derive(Deserialize)]
struct GoldApiAnswer {
    timestamp: Option<i64>,
    metal: Option<String>,
    currency: Option<String>,
    price: f64,
    prev_close_price: Option<f64>,
    ch: Option<f64>,
    chp: Option<f64>,
}

/// Parse a GoldAPI.io `/{metal}/USD` answer.
pub fn parse_goldapi(metal: &'static str, body: &[u8], now: i64) -> Result<MetalQuote, Failure> {
    let a: GoldApiAnswer = serde_json::from_slice(body)
        .map_err(|e| Failure::Parse(poll::shorten(&e.to_string(), 120)))?;
    if let Some(m) = &a.metal {
        if !m.eq_ignore_ascii_case(metal) {
            return Err(Failure::Parse(format!("asked for {metal}, got {m}")));
        }
    }
    if let Some(c) = &a.currency {
        if !c.eq_ignore_ascii_case("USD") {
            return Err(Failure::Parse(format!("currency {c}, not USD")));
        }
    }
    if !(a.price.is_finite() && a.price > 0.0) {
        return Err(Failure::Parse("price is not a positive number".into()));
    }
    let finite = |x: Option<f64>| x.filter(|v| v.is_finite());
    // Seconds in live answers, milliseconds in historical ones.
    let ts = match a.timestamp {
        Some(t) if t > 100_000_000_000 => t,
        Some(t) if t > 0 => t * 1000,
        _ => now,
    };
    Ok(MetalQuote {
        metal,
        price: a.price,
        prev_close: finite(a.prev_close_price).filter(|p| *p > 0.0),
        change: finite(a.ch),
        // Percent → fraction through the decimal text: 0.68 → 0.0068 exactly as written.
        change_rate: finite(a.chp).map(|p| format!("{p}e-2").parse().unwrap_or(p / 100.0)),
        ts,
    })
}

#[derive(Deserialize)]
struct FallbackAnswer {
    price: f64,
    symbol: Option<String>,
    #[serde(rename = "updatedAt")]
    updated_at: Option<String>,
}

/// Parse a gold-api.com `/price/{metal}` answer. `price` carries float noise
/// (`4012.350098`): it is rounded to 3 decimals so noise is not a price move.
pub fn parse_fallback(metal: &'static str, body: &[u8], now: i64) -> Result<MetalQuote, Failure> {
    let a: FallbackAnswer = serde_json::from_slice(body)
        .map_err(|e| Failure::Parse(poll::shorten(&e.to_string(), 120)))?;
    if let Some(s) = &a.symbol {
        if !s.eq_ignore_ascii_case(metal) {
            return Err(Failure::Parse(format!("asked for {metal}, got {s}")));
        }
    }
    if !(a.price.is_finite() && a.price > 0.0) {
        return Err(Failure::Parse("price is not a positive number".into()));
    }
    let ts = a
        .updated_at
        .as_deref()
        .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
        .map(|t| t.timestamp_millis())
        .filter(|t| *t > 0)
        .unwrap_or(now);
    Ok(MetalQuote {
        metal,
        price: (a.price * 1000.0).round() / 1000.0,
        prev_close: None,
        change: None,
        change_rate: None,
        ts,
    })
}

/// The instrument of a metal.
pub fn instrument_of(metal: &str) -> Option<InstrumentId> {
    InstrumentId::parse(&format!("metal.spot.{metal}")).ok()
}

fn to_tick(q: &MetalQuote, source: &SourceName) -> Option<Tick> {
    Some(Tick {
        v: SCHEMA_VERSION,
        instrument: instrument_of(q.metal)?,
        price: q.price,
        prev_close: q.prev_close,
        change: q.change,
        change_rate: q.change_rate,
        volume: 0.0,
        day_volume: None,
        ts: q.ts,
        ingest_ts: now_ms(),
        source: source.clone(),
        seq: u64::try_from(q.ts).unwrap_or(0),
        backfill: false,
        inputs: Vec::new(),
    })
}

/// The server's `{"error": "..."}` text, if any, short.
fn error_text(body: &[u8]) -> String {
    #[derive(Deserialize)]
    struct E {
        error: serde_json::Value,
    }
    match serde_json::from_slice::<E>(body) {
        Ok(E {
            error: serde_json::Value::String(s),
        }) => poll::shorten(&s, 120),
        Ok(E { error }) => poll::shorten(&error.to_string(), 120),
        Err(_) => String::new(),
    }
}

struct Client {
    http: reqwest::Client,
    s: GoldSettings,
}

impl Client {
    async fn get(&self, url: String, key: Option<&SecretString>) -> Result<Vec<u8>, Failure> {
        let mut req = self.http.get(url);
        if let Some(k) = key {
            req = req
                .header("x-access-token", k.expose_secret())
                .header("Content-Type", "application/json");
        }
        let resp = req.send().await.map_err(Failure::from_reqwest)?;
        let status = resp.status().as_u16();
        let body = resp.bytes().await.map_err(Failure::from_reqwest)?;
        if status != 200 {
            let mut message = error_text(&body);
            if let Some(k) = key {
                message = poll::redact(&message, k.expose_secret());
            }
            return Err(Failure::Status {
                code: status,
                message,
            });
        }
        Ok(body.to_vec())
    }

    async fn goldapi(
        &self,
        key: &SecretString,
        metal: &'static str,
    ) -> Result<MetalQuote, Failure> {
        let body = self
            .get(format!("{}/{metal}/USD", self.s.goldapi_url), Some(key))
            .await?;
        parse_goldapi(metal, &body, now_ms())
    }

    async fn fallback(&self, metal: &'static str) -> Result<MetalQuote, Failure> {
        let body = self
            .get(format!("{}/price/{metal}", self.s.fallback_url), None)
            .await?;
        parse_fallback(metal, &body, now_ms())
    }
}

/// The `up` status text: both providers on their normal schedule.
fn up_detail(s: &GoldSettings) -> String {
    format!(
        "GoldAPI.io every {} (free quota), gold-api.com every {} s between",
        hours(s.goldapi_interval),
        s.fallback_interval.as_secs()
    )
}

fn hours(d: Duration) -> String {
    format!("{:.1} h", d.as_secs_f64() / 3600.0)
}

fn count_failure(ctx: &SourceContext, f: &Failure) {
    ctx.metrics
        .errors
        .with_label_values(&["gold", f.kind()])
        .inc();
    if matches!(f, Failure::Parse(_)) {
        ctx.metrics.parse_errors.with_label_values(&["gold"]).inc();
    }
}

async fn run(s: GoldSettings, ctx: SourceContext) -> Result<(), PipelineError> {
    let http = poll::client(s.timeout).map_err(|message| PipelineError::Config {
        source_name: "gold".into(),
        message,
    })?;
    let client = Client { http, s: s.clone() };
    let mut board = StatusBoard::new(source_name());
    // The last GoldAPI previous close per metal (gold-api.com has none).
    let mut prev_close: HashMap<&'static str, f64> = HashMap::new();
    let mut next_goldapi = Instant::now();
    let mut goldapi_backoff = Backoff::new(s.retry_min, s.retry_max);
    let mut fallback_backoff = Backoff::new(s.fallback_interval, Duration::from_secs(15 * 60));
    // After a gold-api.com failure, no request before this.
    let mut fallback_not_before = Instant::now();
    let mut schedule = Schedule::every(s.fallback_interval)
        .await
        .map_err(|message| PipelineError::Config {
            source_name: "gold".into(),
            message,
        })?;
    // Why GoldAPI is not serving (None while it is healthy).
    let mut goldapi_trouble: Option<String> = None;

    // A restart within the interval of the last GoldAPI round does not spend another round.
    if s.key.is_some() {
        for metal in METALS {
            let Some(id) = instrument_of(metal) else {
                continue;
            };
            if let Ok(Some(last)) = ctx.bus.last_tick(&id).await {
                if last.source == goldapi_name() {
                    if let Some(pc) = last.prev_close {
                        prev_close.insert(metal, pc);
                    }
                    let age = Duration::from_millis((now_ms() - last.ingest_ts).max(0) as u64);
                    if let Some(left) = s.goldapi_interval.checked_sub(age) {
                        next_goldapi = next_goldapi.max(Instant::now() + left);
                    }
                }
            }
        }
    }
    tracing::info!(
        source = "gold",
        goldapi = s.key.is_some(),
        goldapi_every = %hours(s.goldapi_interval),
        fallback_every_s = s.fallback_interval.as_secs(),
        "gold and silver source starting"
    );

    loop {
        let mut served = false;
        if let Some(key) = s.key.as_ref().filter(|_| Instant::now() >= next_goldapi) {
            let mut ticks = Vec::new();
            let mut failure = None;
            for metal in METALS {
                match poll::or_cancel(&ctx.cancel, client.goldapi(key, metal)).await {
                    None => return board.stopped(&ctx, schedule).await,
                    Some(Ok(q)) => {
                        if let Some(pc) = q.prev_close {
                            prev_close.insert(metal, pc);
                        }
                        ticks.extend(to_tick(&q, &goldapi_name()));
                    }
                    Some(Err(f)) => {
                        count_failure(&ctx, &f);
                        tracing::warn!(source = "gold", provider = "goldapi", metal, error = %f, "GoldAPI.io request failed");
                        failure = Some(f);
                        // Do not spend more quota on this round.
                        break;
                    }
                }
            }
            ctx.publish_ticks("gold", &ticks).await;
            match failure {
                None => {
                    served = true;
                    goldapi_trouble = None;
                    goldapi_backoff.reset();
                    next_goldapi = Instant::now() + s.goldapi_interval;
                    board.set(&ctx, SourceState::Up, up_detail(&s)).await;
                }
                Some(f) => {
                    let quota_or_key = matches!(
                        f,
                        Failure::Status {
                            code: 403 | 429,
                            ..
                        }
                    );
                    let retry = goldapi_backoff.next_delay();
                    // 403/429 (bad key or quota used up): retrying sooner only burns quota.
                    let wait = if quota_or_key {
                        retry.max(s.goldapi_interval)
                    } else {
                        retry
                    };
                    next_goldapi = Instant::now() + wait;
                    goldapi_trouble = Some(match &f {
                        Failure::Status { code: 403, .. } => {
                            format!("GoldAPI.io refused the key or the quota is used up: {f}")
                        }
                        Failure::Status { code: 429, .. } => {
                            format!("GoldAPI.io quota exceeded: {f}")
                        }
                        Failure::Timeout => format!("GoldAPI.io is late: {f}"),
                        _ => format!("GoldAPI.io failed: {f}"),
                    });
                }
            }
        }

        if !served && Instant::now() >= fallback_not_before {
            let mut ticks = Vec::new();
            let mut failure = None;
            for metal in METALS {
                match poll::or_cancel(&ctx.cancel, client.fallback(metal)).await {
                    None => return board.stopped(&ctx, schedule).await,
                    Some(Ok(mut q)) => {
                        if let Some(pc) = prev_close.get(metal).copied() {
                            let change = ((q.price - pc) * 1000.0).round() / 1000.0;
                            q.prev_close = Some(pc);
                            q.change = Some(change);
                            q.change_rate = Some(change / pc);
                        }
                        ticks.extend(to_tick(&q, &fallback_name()));
                    }
                    Some(Err(f)) => {
                        count_failure(&ctx, &f);
                        tracing::warn!(source = "gold", provider = "goldapicom", metal, error = %f, "gold-api.com request failed");
                        failure = Some(f);
                    }
                }
            }
            ctx.publish_ticks("gold", &ticks).await;
            let why = match (&s.key, &goldapi_trouble) {
                (None, _) => Some("no GOLDAPI_KEY set".to_owned()),
                (Some(_), Some(t)) => Some(t.clone()),
                (Some(_), None) => None,
            };
            match (failure, why) {
                (None, None) => {
                    fallback_backoff.reset();
                    board.set(&ctx, SourceState::Up, up_detail(&s)).await;
                }
                (None, Some(why)) => {
                    fallback_backoff.reset();
                    let state = if s.key.is_none() {
                        SourceState::Up
                    } else {
                        SourceState::Degraded
                    };
                    board
                        .set(
                            &ctx,
                            state,
                            format!("fallback in use: gold-api.com ({why})"),
                        )
                        .await;
                }
                (Some(f), why) => {
                    fallback_not_before = Instant::now() + fallback_backoff.next_delay();
                    let state = if ticks.is_empty() {
                        SourceState::Down
                    } else {
                        SourceState::Degraded
                    };
                    let detail = match why {
                        Some(why) => format!("gold-api.com failed: {f}; {why}"),
                        None => format!("gold-api.com failed: {f}"),
                    };
                    board.set(&ctx, state, detail).await;
                }
            }
        }

        // The next round: the fallback's interval job, or GoldAPI coming due.
        tokio::select! {
            _ = ctx.cancel.cancelled() => return board.stopped(&ctx, schedule).await,
            _ = schedule.fired() => {}
            _ = tokio::time::sleep_until(next_goldapi), if s.key.is_some() => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    macro_rules! fixture {
        ($name:literal) => {
            include_bytes!(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/fixtures/gold/",
                $name
            ))
            .as_slice()
        };
    }

    const NOW: i64 = 1_780_000_000_000;

    #[test]
    fn interval_from_the_free_quota() {
        let d = goldapi_interval(100, 2, 0.2);
        assert_eq!(d.as_secs(), 31 * 86_400 / 40);
        assert!((d.as_secs_f64() / 3600.0 - 18.6).abs() < 0.01);
        // Never zero rounds.
        assert_eq!(goldapi_interval(1, 2, 0.2).as_secs(), 31 * 86_400);
    }

    #[test]
    fn goldapi_answers() {
        let q = parse_goldapi("XAU", fixture!("goldapi_xau_usd_ok.json"), NOW).unwrap();
        assert_eq!(q.price, 4012.35);
        assert_eq!(q.prev_close, Some(3985.1));
        assert_eq!(q.change, Some(27.25));
        assert_eq!(q.change_rate, Some(0.0068));
        assert_eq!(q.ts, 1_773_293_402_000);
        let q = parse_goldapi("XAG", fixture!("goldapi_xag_usd_ok.json"), NOW).unwrap();
        assert_eq!((q.price, q.prev_close), (49.12, Some(48.45)));
        let q = parse_goldapi("XAG", fixture!("goldapi_xag_usd_grams_24k_18k.json"), NOW).unwrap();
        assert_eq!(q.price, 49.12);
        let q = parse_goldapi("XAU", fixture!("goldapi_xau_usd_weekend.json"), NOW).unwrap();
        assert_eq!((q.price, q.ts), (4031.6, 1_773_466_215_000));
        // The wrong metal, an error body, a truncated body.
        assert!(parse_goldapi("XAG", fixture!("goldapi_xau_usd_ok.json"), NOW).is_err());
        assert!(parse_goldapi("XAU", fixture!("goldapi_error_403_invalid_key.json"), NOW).is_err());
        assert!(parse_goldapi("XAU", &fixture!("goldapi_xau_usd_ok.json")[..100], NOW).is_err());
        assert_eq!(
            error_text(fixture!("goldapi_error_quota_exceeded.json")),
            "You have exceeded your monthly request quota. Please upgrade your plan."
        );
    }

    #[test]
    fn fallback_answers() {
        let q = parse_fallback("XAU", fixture!("goldapicom_xau_ok.json"), NOW).unwrap();
        assert_eq!((q.price, q.prev_close), (4012.4, None));
        assert_eq!(q.ts, 1_773_293_402_000);
        let q = parse_fallback("XAU", fixture!("goldapicom_xau_ok_8fields.json"), NOW).unwrap();
        assert_eq!(q.price, 4012.35, "float noise rounded away");
        let q = parse_fallback("XAG", fixture!("goldapicom_xag_ok.json"), NOW).unwrap();
        assert_eq!(q.price, 49.121);
        assert!(
            parse_fallback("XAU", fixture!("goldapicom_error_unknown_symbol.json"), NOW).is_err()
        );
        assert!(parse_fallback("XAU", br#"{"price":"4012.4"}"#, NOW).is_err());
        assert!(parse_fallback("XAU", br#"{"price":-1}"#, NOW).is_err());
        let q = parse_fallback("XAU", br#"{"price":1.5}"#, NOW).unwrap();
        assert_eq!(q.ts, NOW);
    }

    #[test]
    fn ticks_name_their_provider() {
        let q = parse_goldapi("XAU", fixture!("goldapi_xau_usd_ok.json"), NOW).unwrap();
        let t = to_tick(&q, &goldapi_name()).unwrap();
        assert_eq!(t.instrument.as_str(), "metal.spot.XAU");
        assert_eq!(t.source.as_str(), "goldapi");
        assert!(t.validate().is_ok());
    }

    #[test]
    fn settings_never_show_the_key() {
        let s = GoldSettings::new(
            DEFAULT_GOLDAPI_URL,
            DEFAULT_FALLBACK_URL,
            Some(SecretString::from("GOLD-SECRET-KEY-1")),
        );
        assert!(!format!("{s:?}").contains("GOLD-SECRET-KEY-1"));
        let blank = GoldSettings::new(DEFAULT_GOLDAPI_URL, DEFAULT_FALLBACK_URL, Some("  ".into()));
        assert!(blank.key.is_none());
    }
}

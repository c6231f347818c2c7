//! The USD reference of the kimchi premium (`SISE_SOURCES=coinbase`): Coinbase Exchange's
//! public, keyless `GET /products/{BTC-USD,ETH-USD}/ticker` (`docs/apis/coinbase.md`) →
//! `crypto.coinbase.BTC-USD`, `crypto.coinbase.ETH-USD` ticks (every registry instrument of
//! venue `coinbase`; the product id is its symbol).
//!
//! - Polled every 2 s per product by an interval job of tokio-cron-scheduler
//!   ([`crate::schedule`]): 2 products = 1 request/s, a tenth of the documented public limit
//!   (10/s per IP). A product whose last trade did not change is not published again.
//! - Numbers are strings and parse as decimals; the exchange time is the last trade's `time`;
//!   the sequence is its `trade_id`. There is no previous close (a 24 h market), so none is
//!   invented.
//! - 429 (`Public rate limit exceeded`) and 5xx/timeouts (5 s) back off from 2 s to 60 s with
//!   jitter; a 404 (unknown product) says so in the status; a malformed answer is skipped and
//!   counted. Each state change is a `SourceStatus`.

use std::collections::HashMap;
use std::time::Duration;

use chrono::DateTime;
use futures::future::BoxFuture;
use serde::Deserialize;
use sise_bus::{now_ms, InstrumentId, SourceName, SourceState, Tick, SCHEMA_VERSION};
use tokio::time::Instant;

use crate::poll::{self, Backoff, Failure};
use crate::schedule::Schedule;
use crate::source::{Source, SourceContext};
use crate::PipelineError;

/// Coinbase Exchange's documented REST base.
pub const DEFAULT_URL: &str = "https://api.exchange.coinbase.com";
/// The venue of the instruments this source serves.
pub const VENUE: &str = "coinbase";

/// How the source runs.
#[derive(Debug, Clone)]
pub struct CoinbaseSettings {
    /// Base (`SISE_COINBASE_URL`).
    pub url: String,
    /// Between polls of each product.
    pub interval: Duration,
    /// Of every request.
    pub timeout: Duration,
    /// Retry after a failure: first delay and cap.
    pub retry_min: Duration,
    pub retry_max: Duration,
}

impl CoinbaseSettings {
    pub fn new(url: &str) -> Self {
        CoinbaseSettings {
            url: url.trim_end_matches('/').to_owned(),
            interval: Duration::from_secs(2),
            timeout: Duration::from_secs(5),
            retry_min: Duration::from_secs(2),
            retry_max: Duration::from_secs(60),
        }
    }
}

/// The Coinbase source.
pub struct Coinbase {
    settings: CoinbaseSettings,
}

impl Coinbase {
    pub fn new(settings: CoinbaseSettings) -> Self {
        Coinbase { settings }
    }
}

pub fn source_name() -> SourceName {
    SourceName::parse("coinbase")
        .unwrap_or_else(|_| unreachable!("\"coinbase\" is a valid source name"))
}

impl Source for Coinbase {
    fn name(&self) -> SourceName {
        source_name()
    }

    fn run(self: Box<Self>, ctx: SourceContext) -> BoxFuture<'static, Result<(), PipelineError>> {
        Box::pin(run(self.settings, ctx))
    }
}

#[derive(Deserialize)]
struct RawTicker {
    price: String,
    size: Option<String>,
    volume: Option<String>,
    trade_id: u64,
    time: String,
}

/// Parse a decimal string (`"88350.12"`) into a finite, non-negative number.
fn decimal(s: &str) -> Option<f64> {
    let t = s.trim();
    let ok = !t.is_empty()
        && t.bytes().all(|b| b.is_ascii_digit() || b == b'.')
        && t.bytes().filter(|b| *b == b'.').count() <= 1;
    ok.then(|| t.parse::<f64>().ok())
        .flatten()
        .filter(|x| x.is_finite())
}

/// A ticker answer → the tick of `instrument`.
pub fn parse_ticker(instrument: &InstrumentId, body: &[u8], now: i64) -> Result<Tick, Failure> {
    let r: RawTicker = serde_json::from_slice(body)
        .map_err(|e| Failure::Parse(poll::shorten(&e.to_string(), 120)))?;
    let price = decimal(&r.price)
        .filter(|p| *p > 0.0)
        .ok_or_else(|| Failure::Parse("price is not a positive decimal".into()))?;
    let ts = DateTime::parse_from_rfc3339(r.time.trim())
        .map_err(|_| Failure::Parse("time is not RFC 3339".into()))?
        .timestamp_millis();
    if ts <= 0 {
        return Err(Failure::Parse("time before 1970".into()));
    }
    Ok(Tick {
        v: SCHEMA_VERSION,
        instrument: instrument.clone(),
        price,
        prev_close: None,
        change: None,
        change_rate: None,
        volume: r.size.as_deref().and_then(decimal).unwrap_or(0.0),
        // Coinbase's volume is a rolling 24 h one, the closest it has to a day's volume.
        day_volume: r.volume.as_deref().and_then(decimal),
        ts,
        ingest_ts: now,
        source: source_name(),
        seq: r.trade_id,
        backfill: false,
        inputs: Vec::new(),
    })
}

fn error_text(body: &[u8]) -> String {
    #[derive(Deserialize)]
    struct E {
        message: String,
    }
    serde_json::from_slice::<E>(body)
        .map(|e| poll::shorten(&e.message, 120))
        .unwrap_or_default()
}

async fn fetch(
    http: &reqwest::Client,
    base: &str,
    instrument: &InstrumentId,
) -> Result<Tick, Failure> {
    let resp = http
        .get(format!("{base}/products/{}/ticker", instrument.symbol()))
        .header("Accept", "application/json")
        .send()
        .await
        .map_err(Failure::from_reqwest)?;
    let status = resp.status().as_u16();
    let body = resp.bytes().await.map_err(Failure::from_reqwest)?;
    if status != 200 {
        return Err(Failure::Status {
            code: status,
            message: error_text(&body),
        });
    }
    parse_ticker(instrument, &body, now_ms())
}

async fn run(s: CoinbaseSettings, ctx: SourceContext) -> Result<(), PipelineError> {
    let config = |message| PipelineError::Config {
        source_name: "coinbase".into(),
        message,
    };
    let http = poll::client(s.timeout).map_err(config)?;
    let products: Vec<InstrumentId> = ctx
        .registry
        .instruments()
        .iter()
        .filter(|i| i.venue == VENUE)
        .map(|i| i.id.clone())
        .collect();
    let name = source_name();
    if products.is_empty() {
        ctx.status(
            &name,
            SourceState::Down,
            "no coinbase instruments in the registry",
        )
        .await;
        ctx.cancel.cancelled().await;
        return Ok(());
    }
    let mut schedule = Schedule::every(s.interval).await.map_err(config)?;
    let symbols: Vec<&str> = products.iter().map(|p| p.symbol()).collect();
    let up = format!(
        "Coinbase Exchange every {} s ({})",
        s.interval.as_secs_f64(),
        symbols.join(", ")
    );
    let mut last_trade: HashMap<InstrumentId, u64> = HashMap::new();
    let mut backoff = Backoff::new(s.retry_min, s.retry_max);
    let mut not_before = Instant::now();
    let mut last_status: Option<(SourceState, String)> = None;
    tracing::info!(source = "coinbase", products = %symbols.join(","), "Coinbase USD reference starting");
    loop {
        if Instant::now() >= not_before {
            let mut ticks = Vec::new();
            let mut failure: Option<(InstrumentId, Failure)> = None;
            for p in &products {
                match poll::or_cancel(&ctx.cancel, fetch(&http, &s.url, p)).await {
                    None => break,
                    Some(Ok(t)) => {
                        if last_trade.get(p) != Some(&t.seq) {
                            last_trade.insert(p.clone(), t.seq);
                            ticks.push(t);
                        }
                    }
                    Some(Err(f)) => {
                        ctx.metrics
                            .errors
                            .with_label_values(&["coinbase", f.kind()])
                            .inc();
                        if matches!(f, Failure::Parse(_)) {
                            ctx.metrics
                                .parse_errors
                                .with_label_values(&["coinbase"])
                                .inc();
                        }
                        tracing::warn!(source = "coinbase", product = p.symbol(), error = %f, "Coinbase request failed");
                        let stop_round = matches!(f, Failure::Status { code: 429, .. });
                        failure = Some((p.clone(), f));
                        if stop_round {
                            break;
                        }
                    }
                }
            }
            ctx.publish_ticks("coinbase", &ticks).await;
            let status = match &failure {
                None => {
                    backoff.reset();
                    (SourceState::Up, up.clone())
                }
                Some((p, f)) => {
                    let transient = !matches!(f, Failure::Status { code: 404, .. });
                    if transient {
                        not_before = Instant::now() + backoff.next_delay();
                    }
                    let what = match f {
                        Failure::Status { code: 429, .. } => "rate limited",
                        Failure::Status { code: 404, .. } => "unknown product",
                        _ => "failed",
                    };
                    (
                        SourceState::Degraded,
                        format!("Coinbase {what} for {}: {f}", p.symbol()),
                    )
                }
            };
            if last_status.as_ref() != Some(&status) {
                tracing::info!(source = "coinbase", state = status.0.as_str(), detail = %status.1, "source status");
                ctx.status(&name, status.0, status.1.clone()).await;
                last_status = Some(status);
            }
        }
        tokio::select! {
            _ = ctx.cancel.cancelled() => break,
            _ = schedule.fired() => {}
        }
    }
    schedule.stop().await;
    ctx.status(&name, SourceState::Down, "stopped").await;
    Ok(())
}

/// A fake Coinbase Exchange on 127.0.0.1 (feature `fake`): `GET /products/{id}/ticker` with the
/// fixtures of `docs/apis/fixtures/coinbase/` (BTC-USD, ETH-USD; prices settable), 404 for
/// other products, 400 without a `User-Agent`, 429 over 10 requests per second, and forced
/// answers (429, 502, a truncated body).
#[cfg(any(test, feature = "fake"))]
pub mod fake {
    use std::collections::HashMap;
    use std::sync::{Arc, Mutex};

    use tokio::net::{TcpListener, TcpStream};
    use tokio::task::JoinHandle;

    use crate::fake_http::{read_request, write_response};

    macro_rules! fixture {
        ($name:literal) => {
            include_bytes!(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/../docs/apis/fixtures/coinbase/",
                $name
            ))
            .as_slice()
        };
    }

    /// A forced answer.
    #[derive(Debug, Clone, Copy, PartialEq)]
    pub enum Forced {
        RateLimited,
        BadGateway,
        Truncated,
    }

    struct State {
        /// product → (price, trade id, time) once a test sets it; the fixture until then.
        set: HashMap<String, (String, u64, String)>,
        forced: Vec<Forced>,
        per_second: (i64, u32),
        calls: u32,
    }

    pub struct FakeCoinbase {
        pub url: String,
        state: Arc<Mutex<State>>,
        handle: JoinHandle<()>,
    }

    impl Drop for FakeCoinbase {
        fn drop(&mut self) {
            self.handle.abort();
        }
    }

    impl FakeCoinbase {
        pub async fn start() -> std::io::Result<FakeCoinbase> {
            let listener = TcpListener::bind("127.0.0.1:0").await?;
            let url = format!("http://{}", listener.local_addr()?);
            let state = Arc::new(Mutex::new(State {
                set: HashMap::new(),
                forced: Vec::new(),
                per_second: (0, 0),
                calls: 0,
            }));
            let st = state.clone();
            let handle = tokio::spawn(async move {
                while let Ok((s, _)) = listener.accept().await {
                    tokio::spawn(serve(st.clone(), s));
                }
            });
            Ok(FakeCoinbase { url, state, handle })
        }

        fn lock(&self) -> std::sync::MutexGuard<'_, State> {
            self.state.lock().unwrap_or_else(|e| e.into_inner())
        }

        /// A new last trade of `product` at `price` (a new trade id, now).
        pub fn trade(&self, product: &str, price: &str) {
            let mut st = self.lock();
            let next = st
                .set
                .get(product)
                .map_or(1_000_000_000, |(_, id, _)| id + 1);
            let time = chrono::Utc::now()
                .format("%Y-%m-%dT%H:%M:%S%.6fZ")
                .to_string();
            st.set
                .insert(product.to_owned(), (price.to_owned(), next, time));
        }

        pub fn force(&self, answers: &[Forced]) {
            self.lock().forced.extend_from_slice(answers);
        }

        pub fn calls(&self) -> u32 {
            self.lock().calls
        }
    }

    fn answer(st: &mut State, path: &str, has_ua: bool) -> (u16, Vec<u8>) {
        st.calls += 1;
        let now_s = sise_bus::now_ms().div_euclid(1000);
        if st.per_second.0 != now_s {
            st.per_second = (now_s, 0);
        }
        st.per_second.1 += 1;
        if st.per_second.1 > 10 {
            return (429, fixture!("error_429_rate_limit.json").to_vec());
        }
        if !has_ua {
            return (400, fixture!("error_400_user_agent.json").to_vec());
        }
        if !st.forced.is_empty() {
            return match st.forced.remove(0) {
                Forced::RateLimited => (429, fixture!("error_429_rate_limit.json").to_vec()),
                Forced::BadGateway => (502, b"<html>502 Bad Gateway</html>".to_vec()),
                Forced::Truncated => (200, fixture!("ticker_malformed_truncated.txt").to_vec()),
            };
        }
        let product = path
            .strip_prefix("/products/")
            .and_then(|p| p.strip_suffix("/ticker"))
            .unwrap_or("");
        if let Some((price, id, time)) = st.set.get(product) {
            let body = format!(
                r#"{{"ask":"{price}","bid":"{price}","volume":"1000.00000000","trade_id":{id},"price":"{price}","size":"0.01000000","time":"{time}","rfq_volume":"0"}}"#
            );
            return (200, body.into_bytes());
        }
        match product {
            "BTC-USD" => (200, fixture!("ticker_btc_usd.json").to_vec()),
            "ETH-USD" => (200, fixture!("ticker_eth_usd.json").to_vec()),
            _ => (404, fixture!("error_404_notfound.json").to_vec()),
        }
    }

    async fn serve(state: Arc<Mutex<State>>, mut s: TcpStream) {
        let mut buf = Vec::with_capacity(1024);
        while let Some(req) = read_request(&mut s, &mut buf).await {
            let path = req.path;
            let has_ua = req.headers.contains_key("user-agent");
            let (status, body) = {
                let mut st = state.lock().unwrap_or_else(|e| e.into_inner());
                answer(&mut st, &path, has_ua)
            };
            if !write_response(&mut s, status, "application/json; charset=utf-8", "", &body).await {
                return;
            }
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
                "/../docs/apis/fixtures/coinbase/",
                $name
            ))
            .as_slice()
        };
    }

    fn btc() -> InstrumentId {
        InstrumentId::parse("crypto.coinbase.BTC-USD").unwrap()
    }

    #[test]
    fn ticker_answers() {
        let t = parse_ticker(&btc(), fixture!("ticker_btc_usd.json"), 1).unwrap();
        assert_eq!(t.price, 88350.12);
        assert_eq!(t.seq, 912_345_678);
        assert_eq!(t.ts, 1_773_293_414_123);
        assert_eq!(t.volume, 0.00125);
        assert_eq!(t.day_volume, Some(8123.45678912));
        assert_eq!(t.prev_close, None);
        assert_eq!(t.source.as_str(), "coinbase");
        assert!(t.validate().is_ok());
        assert!(parse_ticker(&btc(), fixture!("ticker_malformed_truncated.txt"), 1).is_err());
        assert!(parse_ticker(&btc(), fixture!("error_404_notfound.json"), 1).is_err());
        let bad = br#"{"price":"-1","trade_id":1,"time":"2026-03-12T05:30:14Z"}"#;
        assert!(parse_ticker(&btc(), bad, 1).is_err());
        let exp = br#"{"price":"1e5","trade_id":1,"time":"2026-03-12T05:30:14Z"}"#;
        assert!(parse_ticker(&btc(), exp, 1).is_err(), "not a plain decimal");
        let num = br#"{"price":88350.12,"trade_id":1,"time":"2026-03-12T05:30:14Z"}"#;
        assert!(
            parse_ticker(&btc(), num, 1).is_err(),
            "a number, not a string"
        );
        assert_eq!(
            error_text(fixture!("error_429_rate_limit.json")),
            "Public rate limit exceeded"
        );
    }

    #[tokio::test]
    async fn fake_answers_and_limits() {
        let fake = fake::FakeCoinbase::start().await.unwrap();
        let http = poll::client(Duration::from_secs(2)).unwrap();
        let t = fetch(&http, &fake.url, &btc()).await.unwrap();
        assert_eq!(t.price, 88350.12);
        fake.trade("BTC-USD", "90000.5");
        let t2 = fetch(&http, &fake.url, &btc()).await.unwrap();
        assert_eq!(t2.price, 90000.5);
        assert_ne!(t2.seq, t.seq);
        let unknown = InstrumentId::parse("crypto.coinbase.DOGE-KRW").unwrap();
        let e = fetch(&http, &fake.url, &unknown).await.unwrap_err();
        assert_eq!(e.to_string(), "HTTP 404 (NotFound)");
        fake.force(&[fake::Forced::RateLimited, fake::Forced::Truncated]);
        assert_eq!(
            fetch(&http, &fake.url, &btc()).await.unwrap_err().kind(),
            "http_429"
        );
        assert_eq!(
            fetch(&http, &fake.url, &btc()).await.unwrap_err().kind(),
            "parse"
        );
        // Over 10 requests in a second: 429 from the fake's own limit.
        let mut limited = false;
        for _ in 0..15 {
            if let Err(Failure::Status { code: 429, .. }) = fetch(&http, &fake.url, &btc()).await {
                limited = true;
            }
        }
        assert!(limited);
    }
}

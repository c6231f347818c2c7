//! The Upbit source (`SISE_SOURCES=upbit`): live KRW crypto from Upbit's public quotation API.
//!
//! On start: the market list (`/market/all`, to drop codes Upbit does not list), one snapshot
//! tick per market from REST (`/ticker`), then the WebSocket: `ticker` (with its snapshot) and
//! `trade` (realtime only) for every `crypto.upbit.*` instrument of the registry plus any market
//! added at run time ([`UpbitSettings::markets`]). After each (re)subscription the trades the
//! log is missing are backfilled from REST (`/trades/ticks`, paged back to the last trade seen,
//! or to the last tick in the log at start), so a disconnect leaves no hole the source could
//! fill.
//!
//! Ticks: a `trade` is a tick with the trade's size as `volume` and `sequential_id` as `seq`; a
//! `ticker` is a quote update (`volume` 0, the day's `acc_trade_volume` as `day_volume`, the
//! frame's `timestamp` as `seq`). The exchange time is the trade's timestamp. Previous close
//! and change are Upbit's own (its day resets at 09:00 KST). The `Nats-Msg-Id` built from
//! source, instrument, time and seq makes a re-sent frame (or a backfilled trade the socket
//! already delivered) a duplicate the stream drops, so candle volume is the sum of distinct
//! trades.
//!
//! Resilience: a ping control frame every `ping_interval` (Upbit closes a connection idle for
//! ~120 s); no frame at all for two intervals means a dead link; reconnect with capped
//! exponential backoff and jitter (never faster than Upbit's 5 connections per second);
//! subscription messages spaced ≥ 250 ms (5 per second per connection). Malformed frames,
//! unknown markets and error frames are logged, counted and skipped. `SourceStatus`: up when
//! subscribed, degraded while reconnecting or rate limited, down when stopped or unreachable.

pub mod parse;
pub mod rest;

#[cfg(any(test, feature = "fake"))]
pub mod fake;

#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use futures::{SinkExt, StreamExt};
use sise_bus::{now_ms, InstrumentId, SourceName, SourceState};
use tokio::net::TcpStream;
use tokio::sync::watch;
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::{client::IntoClientRequest, Message};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use self::parse::{instrument_of, is_market_code, market_of, Kind, Observation, Parsed};
use self::rest::{Rest, RestError};
use crate::poll::Backoff;
use crate::source::{Source, SourceContext, StatusBoard};
use crate::PipelineError;

/// Upbit's REST base, as documented.
pub const DEFAULT_REST_URL: &str = "https://api.upbit.com/v1";
/// Upbit's public quotation WebSocket.
pub const DEFAULT_WS_URL: &str = "wss://api.upbit.com/websocket/v1";

/// Spacing of subscription messages on one connection (Upbit allows 5 per second).
const SUBSCRIBE_SPACING: Duration = Duration::from_millis(250);
/// Consecutive failed connection attempts after which the source reports `down`.
const DOWN_AFTER_FAILURES: u32 = 5;

/// How the Upbit source runs.
#[derive(Debug, Clone)]
pub struct UpbitSettings {
    pub rest_url: String,
    pub ws_url: String,
    /// Ping control frame interval (Upbit's idle timeout is ~120 s; docs advise 30–60 s).
    pub ping_interval: Duration,
    /// Reconnect backoff: first delay and cap (jitter is added).
    pub backoff_min: Duration,
    pub backoff_max: Duration,
    /// Trades per backfill request (1–500) and most pages per market per backfill.
    pub backfill_count: u32,
    pub backfill_pages: u32,
    /// Markets added at run time (`KRW-DOGE`…), on top of the registry's; a change
    /// re-subscribes the whole list on the open connection.
    pub markets: Option<watch::Receiver<BTreeSet<String>>>,
}

impl UpbitSettings {
    pub fn new(rest_url: &str, ws_url: &str) -> Self {
        UpbitSettings {
            rest_url: rest_url.to_owned(),
            ws_url: ws_url.to_owned(),
            ping_interval: Duration::from_secs(30),
            backoff_min: Duration::from_millis(500),
            backoff_max: Duration::from_secs(30),
            backfill_count: 200,
            backfill_pages: 5,
            markets: None,
        }
    }
}

/// The Upbit source.
pub struct Upbit {
    settings: UpbitSettings,
}

impl Upbit {
    pub fn new(settings: UpbitSettings) -> Self {
        Upbit { settings }
    }
}

pub fn source_name() -> SourceName {
    SourceName::parse("upbit").unwrap_or_else(|_| unreachable!("\"upbit\" is a valid source name"))
}

impl Source for Upbit {
    fn name(&self) -> SourceName {
        source_name()
    }

    fn run(self: Box<Self>, ctx: SourceContext) -> BoxFuture<'static, Result<(), PipelineError>> {
        Box::pin(run(self.settings, ctx))
    }
}

/// The subscription message, exactly as Upbit documents it (one text frame).
pub fn subscribe_message(ticket: &str, codes: &[&str]) -> String {
    let codes = serde_json::to_string(codes).unwrap_or_else(|_| "[]".into());
    let ticket = serde_json::to_string(ticket).unwrap_or_else(|_| "\"sise\"".into());
    format!(
        r#"[{{"ticket":{ticket}}},{{"type":"ticker","codes":{codes}}},{{"type":"trade","codes":{codes},"is_only_realtime":true}},{{"format":"DEFAULT"}}]"#
    )
}

type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// Where a market's trades are known up to: `(exchange time, trade id if known)`.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Since {
    ts: i64,
    seq: Option<u64>,
}

impl Since {
    fn is_before(&self, o: &Observation) -> bool {
        o.ts > self.ts || (o.ts == self.ts && self.seq.is_some_and(|s| o.seq > s))
    }
}

/// How a session ended.
enum End {
    Cancelled,
    Lost(String),
}

struct Runner {
    s: UpbitSettings,
    ctx: SourceContext,
    name: SourceName,
    rest: Rest,
    /// Subscribed markets and their instrument ids.
    markets: BTreeMap<String, InstrumentId>,
    /// Markets Upbit lists (when the list could be fetched).
    listed: Option<BTreeSet<String>>,
    /// Trades known up to, per market (backfill starts after it).
    since: HashMap<String, Option<Since>>,
    /// The Upbit day's volume per market from the last ticker: (UTC day, volume).
    day_volume: HashMap<String, (i64, f64)>,
    status: StatusBoard,
    tls: Option<Arc<rustls::ClientConfig>>,
}

/// Run `work` (a REST backfill, which can take seconds under Upbit's rate limits) while the
/// socket keeps sending its pings, so Upbit does not close it as idle meanwhile. Frames that
/// arrive wait in the socket and are read right after.
async fn keep_alive<F: std::future::Future>(
    ws: &mut Ws,
    ping_every: Duration,
    work: F,
) -> Result<F::Output, String> {
    let mut work = std::pin::pin!(work);
    let mut ping = tokio::time::interval_at(Instant::now() + ping_every, ping_every);
    ping.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            out = &mut work => return Ok(out),
            _ = ping.tick() => {
                if let Err(e) = ws.send(Message::Ping(bytes::Bytes::new())).await {
                    return Err(format!("ping: {e}"));
                }
            }
        }
    }
}

/// The Upbit markets users added (`crypto.upbit.*` ids of the watched bucket), as market codes.
fn follow_user_markets(ctx: &SourceContext) -> watch::Receiver<BTreeSet<String>> {
    let mut ids = crate::catalog::follow_watched(ctx.bus.clone(), ctx.cancel.clone());
    let (tx, rx) = watch::channel(BTreeSet::new());
    tokio::spawn(async move {
        loop {
            let codes: BTreeSet<String> = ids
                .borrow_and_update()
                .iter()
                .filter_map(|id| market_of(id).map(str::to_owned))
                .collect();
            tx.send_if_modified(|old| {
                let changed = *old != codes;
                *old = codes;
                changed
            });
            if ids.changed().await.is_err() {
                return;
            }
        }
    });
    rx
}

/// A KRW market Upbit lists, as the instrument the edge lists and searches (`crypto.upbit.KRW-…`).
/// Decimals are the finest Upbit KRW tick for low-priced coins; the UI shows KRW over 100
/// without decimals anyway.
pub fn listing(m: &self::parse::RestMarket) -> Option<crate::Instrument> {
    let id = instrument_of(&m.market)?;
    if !m.market.starts_with("KRW-") {
        return None;
    }
    let code = m.market.trim_start_matches("KRW-");
    let name_en = m
        .english_name
        .clone()
        .filter(|s| !s.trim().is_empty())
        .unwrap_or_else(|| code.to_owned());
    let name_ko = m
        .korean_name
        .clone()
        .filter(|s| !s.trim().is_empty())
        .unwrap_or_else(|| name_en.clone());
    Some(crate::Instrument {
        class: id.class(),
        venue: id.venue().to_owned(),
        id,
        name_ko,
        name_en,
        currency: "KRW".into(),
        decimals: 4,
        market: "crypto".into(),
        sim: None,
    })
}

async fn run(s: UpbitSettings, ctx: SourceContext) -> Result<(), PipelineError> {
    let rest = Rest::new(&s.rest_url).map_err(|message| PipelineError::Config {
        source_name: "upbit".into(),
        message,
    })?;
    let mut r = Runner {
        name: source_name(),
        rest,
        markets: BTreeMap::new(),
        listed: None,
        since: HashMap::new(),
        day_volume: HashMap::new(),
        status: StatusBoard::new(source_name()),
        tls: None,
        ctx,
        s,
    };
    if r.s.markets.is_none() {
        r.s.markets = Some(follow_user_markets(&r.ctx));
    }
    let cancel = r.ctx.cancel.clone();
    // REST calls are bounded by timeouts; a stop does not wait for them.
    tokio::select! {
        _ = cancel.cancelled() => {}
        _ = r.start() => r.live().await,
    }
    r.set_status(SourceState::Down, "stopped").await;
    Ok(())
}

impl Runner {
    fn label(&self) -> &str {
        self.name.as_str()
    }

    async fn set_status(&mut self, state: SourceState, detail: &str) {
        self.status.set(&self.ctx, state, detail).await;
    }

    /// Count a frame, answer or row that could not be used (skipped, logged by the caller).
    fn count_parse_error(&self) {
        self.ctx
            .metrics
            .parse_errors
            .with_label_values(&[self.label()])
            .inc();
    }

    fn count_error(&self, kind: &str) {
        self.ctx
            .metrics
            .errors
            .with_label_values(&[self.label(), kind])
            .inc();
    }

    /// The markets wanted now: the registry's `crypto.upbit.*` plus the run-time additions,
    /// minus what Upbit does not list (when known).
    fn wanted(&self) -> BTreeSet<String> {
        let mut out: BTreeSet<String> = self
            .ctx
            .registry
            .instruments()
            .iter()
            .filter_map(|i| market_of(&i.id).map(str::to_owned))
            .collect();
        if let Some(rx) = &self.s.markets {
            out.extend(rx.borrow().iter().cloned());
        }
        out.retain(|m| {
            let ok = is_market_code(m) && self.listed.as_ref().is_none_or(|l| l.contains(m));
            if !ok {
                self.count_error("unknown_market");
                tracing::warn!(source = "upbit", market = %m, "not an Upbit market; skipped");
            }
            ok
        });
        out
    }

    /// Market list, REST snapshot, and where each market's trades stand in the log.
    async fn start(&mut self) {
        self.refresh_listed().await;
        let wanted = self.wanted();
        self.add_markets(wanted).await;
    }

    /// Fetch the markets Upbit lists (`/market/all`); on failure keep what we knew.
    async fn refresh_listed(&mut self) {
        match self.rest.markets().await {
            Ok(list) => {
                let listed: BTreeSet<String> = list
                    .iter()
                    .map(|m| m.market.clone())
                    .filter(|m| is_market_code(m))
                    .collect();
                tracing::info!(
                    source = "upbit",
                    markets = listed.len(),
                    "Upbit market list"
                );
                self.listed = Some(listed);
                let items: Vec<_> = list
                    .iter()
                    .filter_map(listing)
                    .map(|i| (i.id.clone(), crate::catalog::listing_json(&i)))
                    .collect();
                match self.ctx.bus.put_listed_all(&items).await {
                    Ok(n) if n > 0 => {
                        tracing::info!(source = "upbit", written = n, "listed instruments updated")
                    }
                    Ok(_) => {}
                    Err(e) => {
                        tracing::warn!(source = "upbit", error = %e, "could not write the listed instruments")
                    }
                }
            }
            Err(e) => self.rest_failed("market list", &e).await,
        }
    }

    /// Take new markets in: their snapshot from REST and where their trades stand in the log.
    async fn add_markets(&mut self, new: BTreeSet<String>) {
        let new: Vec<String> = new
            .into_iter()
            .filter(|m| !self.markets.contains_key(m))
            .collect();
        if new.is_empty() {
            return;
        }
        for m in &new {
            let Some(id) = instrument_of(m) else { continue };
            let since = match self.ctx.bus.last_tick(&id).await {
                Ok(Some(t)) if t.source == self.name => Some(Since {
                    ts: t.ts,
                    seq: None,
                }),
                Ok(_) => None,
                Err(e) => {
                    tracing::warn!(source = "upbit", market = %m, error = %e, "could not read the last tick");
                    None
                }
            };
            self.since.insert(m.clone(), since);
            self.markets.insert(m.clone(), id);
        }
        match self.rest.tickers(&new).await {
            Ok(list) => {
                let mut obs = Vec::with_capacity(list.len());
                for t in &list {
                    match t.to_observation() {
                        Ok(o) => obs.push(o),
                        Err(e) => {
                            self.count_parse_error();
                            tracing::warn!(source = "upbit", market = %t.market, error = %e, "bad REST ticker skipped");
                        }
                    }
                }
                self.publish(obs, false).await;
            }
            Err(e) => self.rest_failed("ticker snapshot", &e).await,
        }
    }

    async fn rest_failed(&mut self, what: &str, e: &RestError) {
        self.count_error(e.kind());
        tracing::warn!(source = "upbit", what, error = %e, "Upbit REST failed");
        match e {
            RestError::RateLimited { .. } => {
                self.set_status(
                    SourceState::Degraded,
                    "rate limited by Upbit REST (429); backing off",
                )
                .await;
            }
            RestError::Blocked(d) => {
                let detail = format!(
                    "Upbit REST blocked this IP (418) for {} s; REST paused, WebSocket continues",
                    d.as_secs()
                );
                self.set_status(SourceState::Degraded, &detail).await;
            }
            _ => {}
        }
    }

    /// Publish observations as ticks (unknown markets counted and skipped).
    async fn publish(&mut self, obs: Vec<Observation>, live: bool) {
        if obs.is_empty() {
            return;
        }
        let ingest = now_ms();
        let mut ticks = Vec::with_capacity(obs.len());
        for mut o in obs {
            let Some(id) = self.markets.get(&o.market).cloned() else {
                self.count_error("unknown_market");
                tracing::warn!(source = "upbit", market = %o.market.chars().take(32).collect::<String>(), "frame of a market not subscribed; skipped");
                continue;
            };
            let day = o.ts.div_euclid(86_400_000);
            match o.kind {
                Kind::Ticker => {
                    if let Some(v) = o.day_volume {
                        self.day_volume.insert(o.market.clone(), (day, v));
                    }
                }
                Kind::Trade => {
                    // A live trade carries no day volume; use the last ticker's of the same
                    // Upbit day (backfilled ones keep none rather than a later figure).
                    if live {
                        o.day_volume = self
                            .day_volume
                            .get(&o.market)
                            .filter(|(d, _)| *d == day)
                            .map(|(_, v)| *v);
                    }
                    let entry = self.since.entry(o.market.clone()).or_insert(None);
                    if entry.is_none_or(|s| s.is_before(&o)) {
                        *entry = Some(Since {
                            ts: o.ts,
                            seq: Some(o.seq),
                        });
                    }
                }
            }
            let mut tick = o.to_tick(id, self.name.clone(), ingest);
            // Trades (and candle minutes) fetched from REST after the fact are backfill; the
            // same trade seen live has the same `msg_id`, so the stream keeps one of them.
            tick.backfill = !live && matches!(o.kind, Kind::Trade);
            if let Err(e) = tick.validate() {
                self.count_parse_error();
                tracing::warn!(source = "upbit", market = %o.market, error = %e, "implausible tick skipped");
                continue;
            }
            ticks.push(tick);
        }
        if ticks.is_empty() {
            return;
        }
        match self.ctx.bus.publish_ticks(&ticks).await {
            Ok(stored) => {
                let fresh = stored.iter().filter(|s| !s.duplicate).count();
                self.ctx
                    .metrics
                    .ticks
                    .with_label_values(&[self.label()])
                    .inc_by(fresh as u64);
                if live {
                    let now = now_ms();
                    let lag = self.ctx.metrics.lag.with_label_values(&[self.label()]);
                    for t in &ticks {
                        lag.observe(((now - t.ts).max(0) as f64) / 1000.0);
                    }
                }
            }
            Err(e) => {
                self.count_error("publish");
                tracing::warn!(source = "upbit", error = %e, ticks = ticks.len(), "publish failed; these ticks are dropped");
                self.set_status(SourceState::Degraded, "cannot publish to the log")
                    .await;
            }
        }
    }

    /// Fill each market's trades from REST since the last one known.
    async fn backfill(&mut self, markets: Vec<String>) {
        for m in markets {
            if self.ctx.cancel.is_cancelled() || !self.rest.blocked_for().is_zero() {
                return;
            }
            let since = self.since.get(&m).copied().flatten();
            let mut cursor = None;
            let mut got: Vec<Observation> = Vec::new();
            let pages = if since.is_some() {
                self.s.backfill_pages.max(1)
            } else {
                1
            };
            let mut retried = false;
            let mut page = 0;
            // True when every trade since `since` (or every trade Upbit still has) was read.
            let mut complete = false;
            while page < pages {
                let trades = match self.rest.trades(&m, self.s.backfill_count, cursor).await {
                    Ok(t) => t,
                    Err(e @ RestError::RateLimited { .. }) if !retried => {
                        retried = true;
                        if !self.back_off(&e).await {
                            return;
                        }
                        continue;
                    }
                    Err(e) => {
                        self.rest_failed("trade backfill", &e).await;
                        break;
                    }
                };
                page += 1;
                let n = trades.len();
                for t in &trades {
                    if t.market != m {
                        self.count_error("unknown_market");
                        continue;
                    }
                    match t.to_observation() {
                        Ok(o) => {
                            if since.is_some_and(|s| !s.is_before(&o)) {
                                complete = true;
                                break;
                            }
                            got.push(o);
                        }
                        Err(e) => {
                            self.count_parse_error();
                            tracing::warn!(source = "upbit", market = %m, error = %e, "bad REST trade skipped");
                        }
                    }
                }
                cursor = trades.last().map(|t| t.sequential_id);
                if n < self.s.backfill_count as usize || cursor.is_none() {
                    complete = true;
                }
                if complete {
                    break;
                }
            }
            // Older than the trades reached: whole minutes from 1-minute candles, back to the
            // minute after the last tick the log has (or one page of candles when first seen).
            if !complete || since.is_none() {
                if let Some(oldest) = got.last().map(|o| o.ts) {
                    let end = oldest - oldest.rem_euclid(60_000);
                    let start = since.map(|s| s.ts - s.ts.rem_euclid(60_000) + 60_000);
                    let candle_pages = if since.is_some() { pages } else { 1 };
                    let reached = self.backfill_candles(&m, start, end, candle_pages).await;
                    if since.is_none() {
                        // First seen: the days before the minutes reached, from day candles,
                        // so daily and weekly charts have the market's history.
                        self.backfill_days(&m, reached.unwrap_or(end)).await;
                    }
                }
            }
            if !got.is_empty() {
                tracing::info!(source = "upbit", market = %m, trades = got.len(), "backfilled trades from REST");
                got.reverse();
                self.publish(got, false).await;
            }
        }
    }

    /// On 429: report, wait ≥ 1 s (or `Retry-After`) with jitter. False when cancelled.
    async fn back_off(&mut self, e: &RestError) -> bool {
        self.rest_failed("backfill", e).await;
        let wait = match e {
            RestError::RateLimited {
                retry_after: Some(d),
                ..
            } => *d,
            _ => Duration::from_millis(1_000),
        };
        let jitter: f64 = rand::random_range(1.0..1.5);
        let cancel = self.ctx.cancel.clone();
        tokio::select! {
            _ = cancel.cancelled() => false,
            _ = tokio::time::sleep(wait.max(Duration::from_secs(1)).mul_f64(jitter)) => true,
        }
    }

    /// Publish the 1-minute candles of `[start, end)` (start open when `None`) as ticks that
    /// rebuild the same OHLCV in `history`. Only minutes the log has nothing of are asked for,
    /// so no volume is counted twice.
    /// Returns the start of the oldest minute published (None when none was).
    async fn backfill_candles(
        &mut self,
        m: &str,
        start: Option<i64>,
        end: i64,
        pages: u32,
    ) -> Option<i64> {
        if start.is_some_and(|s| s >= end) {
            return None;
        }
        let mut to = end;
        let mut obs: Vec<Observation> = Vec::new();
        let mut retried = false;
        let mut page = 0;
        while page < pages {
            let candles = match self.rest.minute_candles(m, to, 200).await {
                Ok(c) => c,
                Err(e @ RestError::RateLimited { .. }) if !retried => {
                    retried = true;
                    if !self.back_off(&e).await {
                        return None;
                    }
                    continue;
                }
                Err(e) => {
                    self.rest_failed("candle backfill", &e).await;
                    break;
                }
            };
            page += 1;
            let n = candles.len();
            let mut done = n < 200;
            for c in &candles {
                let Some(t0) = c.start() else {
                    self.count_parse_error();
                    continue;
                };
                to = to.min(t0);
                if start.is_some_and(|s| t0 < s) {
                    done = true;
                    continue;
                }
                if t0 >= end || c.market != m {
                    continue;
                }
                match c.to_observations() {
                    Ok(mut o) => {
                        o.reverse();
                        obs.extend(o);
                    }
                    Err(e) => {
                        self.count_parse_error();
                        tracing::warn!(source = "upbit", market = %m, error = %e, "bad REST candle skipped");
                    }
                }
            }
            if done || n == 0 {
                break;
            }
        }
        if obs.is_empty() {
            return None;
        }
        tracing::info!(source = "upbit", market = %m, ticks = obs.len(), "backfilled 1-minute candles from REST");
        obs.reverse();
        let oldest = obs.first().map(|o| o.ts - o.ts.rem_euclid(60_000));
        self.publish(obs, false).await;
        oldest
    }

    /// Publish the Upbit days that ended by `before` (the oldest minute already backfilled)
    /// from `/candles/days`, as four ticks each ([`parse::RestCandle::to_day_observations`]).
    /// Days overlapping the minutes are left out, so no volume is counted twice.
    async fn backfill_days(&mut self, m: &str, before: i64) {
        let candles = match self.rest.day_candles(m, 200).await {
            Ok(c) => c,
            Err(e) => {
                self.rest_failed("day candle backfill", &e).await;
                return;
            }
        };
        let mut obs = Vec::new();
        for c in candles.iter().filter(|c| c.market == m) {
            let Some(t0) = c.start() else {
                self.count_parse_error();
                continue;
            };
            if t0 + 86_400_000 > before {
                continue;
            }
            match c.to_day_observations() {
                Ok(o) => obs.extend(o),
                Err(e) => {
                    self.count_parse_error();
                    tracing::warn!(source = "upbit", market = %m, error = %e, "bad REST day candle skipped");
                }
            }
        }
        if obs.is_empty() {
            return;
        }
        obs.sort_by_key(|o| (o.ts, o.seq));
        tracing::info!(source = "upbit", market = %m, days = obs.len() / 4, "backfilled day candles from REST");
        self.publish(obs, false).await;
    }

    fn tls(&mut self) -> Result<Option<Arc<rustls::ClientConfig>>, String> {
        if !self.s.ws_url.starts_with("wss://") {
            return Ok(None);
        }
        if self.tls.is_none() {
            use rustls_platform_verifier::BuilderVerifierExt;
            let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
            let cfg = rustls::ClientConfig::builder_with_provider(provider)
                .with_safe_default_protocol_versions()
                .map_err(|e| e.to_string())?
                .with_platform_verifier()
                .map_err(|e| e.to_string())?
                .with_no_client_auth();
            self.tls = Some(Arc::new(cfg));
        }
        Ok(self.tls.clone())
    }

    async fn connect(&mut self) -> Result<Ws, String> {
        let tls = self.tls()?;
        // No Origin header: Upbit limits requests that carry one far more strictly.
        let request = self
            .s
            .ws_url
            .as_str()
            .into_client_request()
            .map_err(|e| format!("bad WebSocket URL: {e}"))?;
        let connector = tls.map(tokio_tungstenite::Connector::Rustls);
        let connect =
            tokio_tungstenite::connect_async_tls_with_config(request, None, true, connector);
        match tokio::time::timeout(Duration::from_secs(10), connect).await {
            Ok(Ok((ws, _))) => Ok(ws),
            Ok(Err(e)) => Err(format!("connect: {e}")),
            Err(_) => Err("connect timed out after 10 s".into()),
        }
    }

    fn codes(&self) -> Vec<&str> {
        self.markets.keys().map(String::as_str).collect()
    }

    async fn subscribe(
        &mut self,
        ws: &mut Ws,
        last_sent: &mut Option<Instant>,
    ) -> Result<(), String> {
        if let Some(t) = *last_sent {
            tokio::time::sleep_until(t + SUBSCRIBE_SPACING).await;
        }
        let ticket = format!("sise-{:016x}", rand::random::<u64>());
        let msg = subscribe_message(&ticket, &self.codes());
        *last_sent = Some(Instant::now());
        ws.send(Message::Text(msg.into()))
            .await
            .map_err(|e| format!("subscribe: {e}"))
    }

    /// Connect, subscribe, backfill, stream; reconnect on loss until cancelled.
    async fn live(&mut self) {
        let cancel = self.ctx.cancel.clone();
        // Floor 270 ms: even with jitter (×0.75) never faster than Upbit's 5 connections a second.
        let mut backoff = Backoff::new(
            self.s.backoff_min.max(Duration::from_millis(270)),
            self.s.backoff_max,
        );
        let mut failures = 0u32;
        let mut attempts = 0u64;
        loop {
            if self.ctx.cancel.is_cancelled() {
                return;
            }
            if attempts > 0 {
                self.ctx
                    .metrics
                    .reconnects
                    .with_label_values(&[self.label()])
                    .inc();
            }
            attempts += 1;
            let connected = tokio::select! {
                _ = cancel.cancelled() => return,
                c = self.connect() => c,
            };
            let reason = match connected {
                Ok(mut ws) => {
                    failures = 0;
                    match self.session(&mut ws, &mut backoff).await {
                        End::Cancelled => {
                            let _ = ws.close(None).await;
                            return;
                        }
                        End::Lost(reason) => reason,
                    }
                }
                Err(reason) => {
                    failures += 1;
                    reason
                }
            };
            tracing::warn!(source = "upbit", reason = %reason, "WebSocket lost; reconnecting");
            let (state, detail) = if failures >= DOWN_AFTER_FAILURES {
                (
                    SourceState::Down,
                    format!("cannot reach the Upbit WebSocket: {reason}"),
                )
            } else {
                (
                    SourceState::Degraded,
                    format!("reconnecting to the Upbit WebSocket: {reason}"),
                )
            };
            self.set_status(state, &detail).await;
            let delay = backoff.next_delay();
            tokio::select! {
                _ = cancel.cancelled() => return,
                _ = tokio::time::sleep(delay) => {}
            }
        }
    }

    async fn session(&mut self, ws: &mut Ws, backoff: &mut Backoff) -> End {
        let mut last_sent = None;
        if let Err(e) = self.subscribe(ws, &mut last_sent).await {
            return End::Lost(e);
        }
        // Whatever the log is missing since the last trade seen (or since the last run).
        let markets: Vec<String> = self.markets.keys().cloned().collect();
        let cancel = self.ctx.cancel.clone();
        let ping_every = self.s.ping_interval.max(Duration::from_millis(100));
        let backfill = self.backfill(markets);
        tokio::select! {
            _ = cancel.cancelled() => return End::Cancelled,
            r = keep_alive(ws, ping_every, backfill) => if let Err(e) = r { return End::Lost(e) },
        }
        let detail = format!("live: {} markets over WebSocket", self.markets.len());
        self.set_status(SourceState::Up, &detail).await;

        let mut ping = tokio::time::interval_at(Instant::now() + ping_every, ping_every);
        ping.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut last_rx = Instant::now();
        let mut markets_rx = self.s.markets.clone();
        let mut good_frames = 0u64;
        let cancel = self.ctx.cancel.clone();
        loop {
            let changed = async {
                match markets_rx.as_mut() {
                    Some(rx) => rx.changed().await.is_ok(),
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                _ = cancel.cancelled() => return End::Cancelled,
                _ = ping.tick() => {
                    if last_rx.elapsed() > ping_every * 2 {
                        return End::Lost(format!("no frame for {} ms", last_rx.elapsed().as_millis()));
                    }
                    if let Err(e) = ws.send(Message::Ping(bytes::Bytes::new())).await {
                        return End::Lost(format!("ping: {e}"));
                    }
                }
                ok = changed => {
                    if !ok {
                        markets_rx = None;
                        continue;
                    }
                    self.refresh_listed().await;
                    let wanted = self.wanted();
                    let removed: Vec<String> = self.markets.keys().filter(|m| !wanted.contains(*m)).cloned().collect();
                    let added: Vec<String> = wanted.iter().filter(|m| !self.markets.contains_key(*m)).cloned().collect();
                    if added.is_empty() && removed.is_empty() {
                        continue;
                    }
                    for m in &removed {
                        self.markets.remove(m);
                    }
                    self.add_markets(added.iter().cloned().collect()).await;
                    tracing::info!(source = "upbit", added = ?added, removed = ?removed, "market set changed; re-subscribing");
                    if let Err(e) = self.subscribe(ws, &mut last_sent).await {
                        return End::Lost(e);
                    }
                    let backfill = self.backfill(added);
                    if let Err(e) = keep_alive(ws, ping_every, backfill).await {
                        return End::Lost(e);
                    }
                    let detail = format!("live: {} markets over WebSocket", self.markets.len());
                    self.set_status(SourceState::Up, &detail).await;
                }
                msg = ws.next() => {
                    last_rx = Instant::now();
                    let payload = match msg {
                        None => return End::Lost("connection ended".into()),
                        Some(Err(e)) => return End::Lost(format!("read: {e}")),
                        Some(Ok(Message::Binary(b))) => b,
                        Some(Ok(Message::Text(t))) => bytes::Bytes::from(t),
                        Some(Ok(Message::Close(frame))) => {
                            let why = frame.map(|f| format!("{} {}", u16::from(f.code), f.reason)).unwrap_or_default();
                            return End::Lost(format!("closed by Upbit {why}").trim().to_owned());
                        }
                        Some(Ok(_)) => continue, // ping, pong: alive
                    };
                    self.ctx.metrics.frames.with_label_values(&[self.label()]).inc();
                    if self.handle(&payload).await {
                        good_frames += 1;
                        if good_frames == 1 {
                            backoff.reset();
                        }
                    }
                }
            }
        }
    }

    /// Handle one data frame; true when it carried market data.
    async fn handle(&mut self, payload: &[u8]) -> bool {
        let mut obs = Vec::new();
        for p in parse::parse_frame(payload) {
            match p {
                Ok(Parsed::Obs(o)) => obs.push(o),
                Ok(Parsed::Status) => {}
                Ok(Parsed::Ignored(kind)) => {
                    tracing::debug!(source = "upbit", kind = %kind, "frame type not used");
                }
                Ok(Parsed::Error(msg)) => {
                    self.count_error("error_frame");
                    tracing::warn!(source = "upbit", error = %msg.chars().take(200).collect::<String>(), "error frame from Upbit");
                }
                Err(e) => {
                    self.count_parse_error();
                    tracing::warn!(source = "upbit", error = %e, bytes = payload.len(), "malformed frame skipped");
                }
            }
        }
        let any = !obs.is_empty();
        self.publish(obs, true).await;
        any
    }
}

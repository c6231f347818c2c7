//! The KIS source (`SISE_SOURCES=kis`, with `KIS_APP_KEY`/`KIS_APP_SECRET`): KRX stocks and
//! indices, US stocks and indices from the Korea Investment & Securities Open API
//! (`shared/apis/kis.md`).
//!
//! - Credentials ([`token`]): the access token and the WebSocket approval key are cached in
//!   Redis under the namespace, shared by every process and restart, issued at most once per
//!   61 s per app key (KIS: 1 per minute), refreshed an hour before expiry; an expired-token
//!   answer causes one refresh and one retry.
//! - Realtime ([`ws`]): KRX stock trades (H0STCNT0) over the KIS WebSocket, one subscription per
//!   code, at most `ws_max_subscriptions` (41) per session, one session per app key; PINGPONG
//!   echoed. What does not fit, or everything while the socket is down or held by another
//!   process, is polled over REST instead — and the source status says so.
//! - REST ([`rest`]): KRX indices, US stocks and US indices are polled (and KRX stocks the
//!   socket does not carry), through one governor rate limiter (`rps`), on a
//!   tokio-cron-scheduler interval, only while the market's calendar
//!   ([`crate::calendar::Calendar`]) has a session, plus one snapshot after it ends. On start,
//!   one snapshot of every instrument whatever the market state.
//! - User-added ([`users`]): a `stock.krx.<6 digits>` or `stock.us.<ticker>` id a user
//!   subscribed to (the `watched` bucket, [`crate::catalog`]) is checked against KIS REST (the
//!   current price; a US ticker on NAS, NYS, AMS in turn), then listed with its name and
//!   served like the others (KRX: on the socket while under the cap, else polled; US: polled),
//!   with its history backfilled — or, when KIS has no such code, rejected, so every edge
//!   answers `unknown_instrument` for it. No restart.
//! - History: an instrument first seen gets its daily bars (up to `backfill_days`) and today's
//!   minute bars (KRX stocks); after a restart or a WebSocket drop, only what the log is
//!   missing since its last tick. Bars become ticks with `backfill: true` (open, high, low,
//!   close; the bar's volume on the close), so `history` rebuilds the same candles.
//!
//! Ticks: KRW prices are integers, USD prices the venue's decimals; previous close, change and
//! rate are KIS's own fields, their direction from the sign code (checked against the signed
//! fields). A WebSocket trade's time is `BSOP_DATE` + `STCK_CNTG_HOUR` in Seoul, an overseas
//! trade's the New York local time; a REST snapshot carries no time: it is stamped with the
//! poll time while the market is open, else with the market's last close (so repeated
//! snapshots of a closed market are one tick). `seq` is the day's accumulated volume (trades,
//! snapshots) or the bar's tick index, so a re-sent frame is a duplicate the stream drops.

pub mod parse;
pub mod rest;
pub mod token;
pub mod users;
pub mod ws;

#[cfg(any(test, feature = "fake"))]
pub mod fake;

#[cfg(test)]
mod tests;

use std::collections::{BTreeSet, HashMap};
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Datelike, NaiveDate, TimeZone, Utc};
use futures::future::BoxFuture;
use secrecy::SecretString;
use sise_bus::{now_ms, Class, InstrumentId, SourceName, SourceState, Tick, SCHEMA_VERSION};

use self::parse::{Bars, Obs, ParseError};
use self::rest::{Rest, RestError};
use self::token::{Credentials, TokenStore};
use crate::calendar::Calendar;
use crate::source::{Source, SourceContext, StatusBoard};
use crate::{Instrument, PipelineError};

/// KIS's real-account REST base.
pub const DEFAULT_REST_URL: &str = "https://openapi.koreainvestment.com:9443";
/// KIS's real-account WebSocket (plain ws).
pub const DEFAULT_WS_URL: &str = "ws://ops.koreainvestment.com:21000";
/// The instrument → KIS code map (indices, US venues).
pub const VENUES_TOML: &str = include_str!("venues.toml");
/// US venues tried, in order, for a symbol the map does not list.
const PROBE_VENUES: [&str; 3] = ["NAS", "NYS", "AMS"];

/// The calendar markets KIS instruments follow.
const MARKETS: [&str; 2] = ["krx", "us"];

/// When each market is polled, given the time (injected, so tests drive a clock): while the
/// market calendar has a session, then once after it ends (the close snapshot), then not until
/// the next one; always when `market_hours` is off. The start snapshot counts as a poll.
#[derive(Debug, Clone)]
pub(crate) struct PollGate {
    market_hours: bool,
    last: HashMap<&'static str, DateTime<Utc>>,
}

impl PollGate {
    /// After the start snapshot of every market at `now`.
    pub(crate) fn started(market_hours: bool, now: DateTime<Utc>) -> Self {
        PollGate {
            market_hours,
            last: MARKETS.iter().map(|m| (*m, now)).collect(),
        }
    }

    /// Whether `market` is due a poll at `now`.
    pub(crate) fn due(&self, market: &str, now: DateTime<Utc>) -> bool {
        !self.market_hours
            || Calendar::embedded().should_poll(market, now, self.last.get(market).copied())
    }

    /// `market` was polled (at least one answer) at `now`.
    pub(crate) fn polled(&mut self, market: &'static str, now: DateTime<Utc>) {
        self.last.insert(market, now);
    }
}

/// A user-added id KIS can check ([`crate::catalog::candidate`]): `stock.krx.` and a 6-digit
/// code, or `stock.us.` and a ticker of 1–5 uppercase letters; as its provisional instrument,
/// named by its code, until the check lists it ([`users`]).
pub fn candidate(id: &InstrumentId) -> Option<Instrument> {
    let sym = id.symbol();
    let (currency, decimals, market) = match (id.class(), id.venue()) {
        (Class::Stock, "krx") if sym.len() == 6 && sym.bytes().all(|b| b.is_ascii_digit()) => {
            ("KRW", 0, "krx")
        }
        (Class::Stock, "us")
            if (1..=5).contains(&sym.len()) && sym.bytes().all(|b| b.is_ascii_uppercase()) =>
        {
            ("USD", 2, "us")
        }
        _ => return None,
    };
    Some(Instrument {
        id: id.clone(),
        name_ko: sym.to_owned(),
        name_en: sym.to_owned(),
        class: Class::Stock,
        venue: id.venue().to_owned(),
        currency: currency.to_owned(),
        decimals,
        market: market.to_owned(),
        sim: None,
    })
}

pub fn source_name() -> SourceName {
    SourceName::parse("kis").unwrap_or_else(|_| unreachable!("\"kis\" is a valid source name"))
}

/// How the KIS source runs (every knob from the environment, see `src/config.rs`).
#[derive(Clone)]
pub struct KisSettings {
    pub rest_url: String,
    pub ws_url: String,
    pub credentials: Option<Credentials>,
    /// Redis for the shared token cache (`SISE_REDIS_URL`); `None`: per process.
    pub redis_url: Option<String>,
    /// REST requests per second, all endpoints together (`SISE_KIS_RPS`; KIS: 20 real, ~2 paper).
    pub rps: u32,
    /// Registrations per WebSocket session (`SISE_KIS_WS_MAX_SUBSCRIPTIONS`; measured 41).
    pub ws_max_subscriptions: usize,
    /// Use the WebSocket at all (`false`: every KRX stock over REST).
    pub ws_enabled: bool,
    /// REST poll interval (`SISE_KIS_POLL_MS`).
    pub poll_interval: Duration,
    /// Poll only while the market calendar has a session (plus a close snapshot); `false`
    /// polls around the clock (`SISE_KIS_MARKET_HOURS=false`, for demos and tests).
    pub market_hours: bool,
    /// Spacing of subscribe messages (samples: 0.05–0.5 s).
    pub subscribe_spacing: Duration,
    /// No frame at all for this long: the session is dead (PINGPONG cadence is unconfirmed,
    /// 20–110 s reported; default 3 × 110 s).
    pub ws_idle_timeout: Duration,
    /// Wait before retrying after `ALREADY IN USE appkey` (another process holds the session).
    pub in_use_retry: Duration,
    pub backoff_min: Duration,
    pub backoff_max: Duration,
    /// Smallest spacing of two token issues of one key (KIS: 1 per minute).
    pub token_issue_spacing: Duration,
    /// Refresh this long before a token expires.
    pub token_refresh_margin: Duration,
    /// Daily bars fetched for an instrument first seen (≤ 100: one request).
    pub backfill_days: u32,
    /// Most minute-chart pages (30 rows each) per KRX stock per backfill (13 = a whole day).
    pub backfill_minute_pages: u32,
    /// Instruments added on top of the registry (`SISE_KIS_SYMBOLS`): `005930` (KRX), `TSLA`
    /// or `TSLA:NAS` (US, with its REST exchange code).
    pub extra_symbols: Vec<String>,
}

impl std::fmt::Debug for KisSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KisSettings")
            .field("rest_url", &self.rest_url)
            .field("ws_url", &self.ws_url)
            .field("credentials", &self.credentials.as_ref().map(|_| "set"))
            .field("rps", &self.rps)
            .field("ws_max_subscriptions", &self.ws_max_subscriptions)
            .finish_non_exhaustive()
    }
}

impl KisSettings {
    pub fn new(rest_url: &str, ws_url: &str) -> Self {
        KisSettings {
            rest_url: rest_url.trim_end_matches('/').to_owned(),
            ws_url: ws_url.to_owned(),
            credentials: None,
            redis_url: None,
            rps: 18,
            ws_max_subscriptions: 41,
            ws_enabled: true,
            poll_interval: Duration::from_secs(3),
            market_hours: true,
            subscribe_spacing: Duration::from_millis(100),
            ws_idle_timeout: Duration::from_secs(330),
            in_use_retry: Duration::from_secs(60),
            backoff_min: Duration::from_millis(500),
            backoff_max: Duration::from_secs(30),
            token_issue_spacing: Duration::from_secs(61),
            token_refresh_margin: Duration::from_secs(3600),
            backfill_days: 100,
            backfill_minute_pages: 13,
            extra_symbols: Vec::new(),
        }
    }

    pub fn with_credentials(mut self, key: SecretString, secret: SecretString) -> Self {
        self.credentials = Some(Credentials {
            app_key: key,
            app_secret: secret,
        });
        self
    }
}

/// What KIS calls an instrument.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// A KRX stock: its 6-digit code (REST `J`, WebSocket H0STCNT0).
    KrxStock(String),
    /// A KRX index: its `U` code (`0001`).
    KrxIndex(String),
    /// A US stock: its ticker and REST exchange code (unknown until probed).
    UsStock {
        symbol: String,
        excd: Option<String>,
    },
    /// A US index: its `N` code (`.DJI`, `COMP`).
    UsIndex(String),
}

impl Target {
    /// The calendar market.
    pub fn market(&self) -> &'static str {
        match self {
            Target::KrxStock(_) | Target::KrxIndex(_) => "krx",
            Target::UsStock { .. } | Target::UsIndex(_) => "us",
        }
    }
    pub fn key(&self) -> &str {
        match self {
            Target::KrxStock(k) | Target::KrxIndex(k) | Target::UsIndex(k) => k,
            Target::UsStock { symbol, .. } => symbol,
        }
    }
}

/// The instrument map kept as data ([`VENUES_TOML`]).
#[derive(Debug, Clone, Default, serde::Deserialize)]
pub struct Venues {
    #[serde(default)]
    pub indices: HashMap<String, String>,
    #[serde(default)]
    pub us_venues: HashMap<String, String>,
}

impl Venues {
    pub fn builtin() -> Venues {
        toml::from_str(VENUES_TOML).unwrap_or_else(|e| {
            tracing::error!(source = "kis", error = %e, "venues.toml is invalid; no index or venue known");
            Venues::default()
        })
    }

    /// What KIS calls `id`, if KIS serves it.
    pub fn target(&self, id: &InstrumentId) -> Option<Target> {
        match (id.class(), id.venue()) {
            (Class::Stock, "krx") => {
                let c = id.symbol();
                (c.len() == 6 && c.bytes().all(|b| b.is_ascii_alphanumeric()))
                    .then(|| Target::KrxStock(c.to_owned()))
            }
            (Class::Stock, "us") => Some(Target::UsStock {
                symbol: id.symbol().to_owned(),
                excd: self.us_venues.get(id.symbol()).cloned(),
            }),
            (Class::Index, "krx") => self
                .indices
                .get(id.as_str())
                .map(|c| Target::KrxIndex(c.clone())),
            (Class::Index, "us") => self
                .indices
                .get(id.as_str())
                .map(|c| Target::UsIndex(c.clone())),
            _ => None,
        }
    }

    /// An instrument from a `SISE_KIS_SYMBOLS` entry: `005930`, `TSLA`, `TSLA:NAS`.
    pub fn extra(&self, entry: &str) -> Option<(InstrumentId, Target)> {
        let e = entry.trim();
        let (sym, excd) = match e.split_once(':') {
            Some((s, x)) => (s.trim(), Some(x.trim().to_ascii_uppercase())),
            None => (e, None),
        };
        if sym.len() == 6 && sym.bytes().all(|b| b.is_ascii_digit()) && excd.is_none() {
            let id = InstrumentId::parse(&format!("stock.krx.{sym}")).ok()?;
            return Some((id, Target::KrxStock(sym.to_owned())));
        }
        let sym = sym.to_ascii_uppercase();
        if sym.is_empty() || sym.len() > 12 {
            return None;
        }
        let id = InstrumentId::parse(&format!("stock.us.{sym}")).ok()?;
        let excd = excd.or_else(|| self.us_venues.get(&sym).cloned());
        Some((id, Target::UsStock { symbol: sym, excd }))
    }
}

/// One instrument the source serves.
#[derive(Debug, Clone)]
pub struct Inst {
    pub id: InstrumentId,
    pub target: Target,
}

/// The KIS source.
pub struct Kis {
    settings: KisSettings,
}

impl Kis {
    pub fn new(settings: KisSettings) -> Self {
        Kis { settings }
    }
}

impl Source for Kis {
    fn name(&self) -> SourceName {
        source_name()
    }

    fn run(self: Box<Self>, ctx: SourceContext) -> BoxFuture<'static, Result<(), PipelineError>> {
        Box::pin(run(self.settings, ctx))
    }
}

/// The WebSocket's part of the status.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum WsState {
    /// Not used (disabled, or no KRX stock).
    Off,
    Connecting,
    /// Live: how many codes are subscribed, how many did not fit.
    Live,
    /// Down: why (the stocks are polled over REST meanwhile).
    Down(String),
}

/// State shared by the poller and the WebSocket task.
pub(crate) struct Shared {
    pub ctx: SourceContext,
    pub s: KisSettings,
    pub name: SourceName,
    pub rest: Rest,
    /// Every instrument served: the registry's, `extra_symbols`, and the user-added ones that
    /// KIS knows (appended at run time by [`users`]).
    insts: Mutex<Vec<Inst>>,
    /// KRX codes → instrument ids (WebSocket records).
    by_code: Mutex<HashMap<String, InstrumentId>>,
    /// A KRX code was added at run time: the WebSocket session subscribes it if it fits.
    pub ws_added: tokio::sync::Notify,
    /// The WebSocket task runs (started with the first KRX stock).
    ws_started: AtomicBool,
    /// KRX codes whose trades come over the WebSocket right now (not polled).
    pub ws_live: Mutex<BTreeSet<String>>,
    /// KRX codes refused by the socket (over the cap, or a failed subscribe): REST.
    pub ws_refused: Mutex<BTreeSet<String>>,
    pub ws_state: Mutex<WsState>,
    /// US venues found by probing.
    pub excd: Mutex<HashMap<String, String>>,
    /// Last published (price, day volume) per instrument, to skip unchanged snapshots.
    last_pub: Mutex<HashMap<InstrumentId, (f64, Option<f64>)>>,
    /// Last live trade time per KRX code (gap backfill after a WebSocket drop).
    pub last_trade: Mutex<HashMap<String, i64>>,
    /// Consecutive poll rounds in which every request failed, and the last failure.
    rest_failing: AtomicU32,
    rest_error: Mutex<Option<String>>,
    status: tokio::sync::Mutex<StatusBoard>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

async fn run(s: KisSettings, ctx: SourceContext) -> Result<(), PipelineError> {
    let config_err = |message: String| PipelineError::Config {
        source_name: "kis".into(),
        message,
    };
    let Some(creds) = s.credentials.clone() else {
        return Err(config_err(
            "KIS_APP_KEY and KIS_APP_SECRET are required for the kis source".into(),
        ));
    };
    let http = rest::http_client().map_err(config_err)?;
    let redis = match &s.redis_url {
        Some(url) => match connect_redis(url).await {
            Ok(r) => Some(r),
            Err(e) => {
                tracing::warn!(source = "kis", error = %e, "Redis unreachable: the KIS token is cached in this process only");
                None
            }
        },
        None => None,
    };
    let prefix = ctx.bus.ns.redis_source_key("kis", "cred");
    let tokens = Arc::new(TokenStore::new(
        http.clone(),
        &s.rest_url,
        creds,
        redis,
        &prefix,
        s.token_issue_spacing,
        s.token_refresh_margin,
    ));
    let rest = Rest::new(http, &s.rest_url, tokens, s.rps);
    let insts = instruments(&ctx, &s);
    let by_code = insts
        .iter()
        .filter_map(|i| match &i.target {
            Target::KrxStock(c) => Some((c.clone(), i.id.clone())),
            _ => None,
        })
        .collect();
    let shared = Arc::new(Shared {
        name: source_name(),
        rest,
        insts: Mutex::new(insts),
        by_code: Mutex::new(by_code),
        ws_added: tokio::sync::Notify::new(),
        ws_started: AtomicBool::new(false),
        ws_live: Mutex::new(BTreeSet::new()),
        ws_refused: Mutex::new(BTreeSet::new()),
        ws_state: Mutex::new(WsState::Off),
        excd: Mutex::new(HashMap::new()),
        last_pub: Mutex::new(HashMap::new()),
        last_trade: Mutex::new(HashMap::new()),
        rest_failing: AtomicU32::new(0),
        rest_error: Mutex::new(None),
        status: tokio::sync::Mutex::new(StatusBoard::new(source_name())),
        ctx,
        s,
    });
    let cancel = shared.ctx.cancel.clone();
    tokio::select! {
        _ = cancel.cancelled() => {}
        r = shared.clone().main() => {
            if let Err(e) = r {
                shared.set_status(SourceState::Down, &e).await;
                cancel.cancelled().await;
            }
        }
    }
    shared.set_status(SourceState::Down, "stopped").await;
    Ok(())
}

async fn connect_redis(url: &str) -> Result<redis::aio::ConnectionManager, String> {
    let client = redis::Client::open(url).map_err(|e| e.to_string())?;
    let cfg = redis::aio::ConnectionManagerConfig::new()
        .set_connection_timeout(Some(Duration::from_secs(5)))
        .set_response_timeout(Some(Duration::from_secs(5)));
    tokio::time::timeout(
        Duration::from_secs(6),
        client.get_connection_manager_with_config(cfg),
    )
    .await
    .map_err(|_| "timed out".to_owned())?
    .map_err(|e| e.to_string())
}

/// The registry's instruments KIS serves, plus `extra_symbols`.
fn instruments(ctx: &SourceContext, s: &KisSettings) -> Vec<Inst> {
    let venues = Venues::builtin();
    let mut out: Vec<Inst> = Vec::new();
    for i in ctx.registry.instruments() {
        if let Some(target) = venues.target(&i.id) {
            out.push(Inst {
                id: i.id.clone(),
                target,
            });
        }
    }
    for e in &s.extra_symbols {
        match venues.extra(e) {
            Some((id, target)) if !out.iter().any(|i| i.id == id) => out.push(Inst { id, target }),
            Some(_) => {}
            None => {
                tracing::warn!(source = "kis", entry = %e.chars().take(24).collect::<String>(), "not a KRX code or US symbol; skipped")
            }
        }
    }
    out
}

fn fmt_date(d: NaiveDate) -> String {
    format!("{:04}{:02}{:02}", d.year(), d.month(), d.day())
}

fn utc(ms: i64) -> DateTime<Utc> {
    Utc.timestamp_millis_opt(ms)
        .single()
        .unwrap_or(DateTime::<Utc>::UNIX_EPOCH)
}

fn tz_of(market: &str) -> chrono_tz::Tz {
    if market == "us" {
        chrono_tz::America::New_York
    } else {
        chrono_tz::Asia::Seoul
    }
}

fn local_date(market: &str, ms: i64) -> NaiveDate {
    utc(ms).with_timezone(&tz_of(market)).date_naive()
}

fn local_midnight_ms(market: &str, d: NaiveDate) -> i64 {
    tz_of(market)
        .from_local_datetime(&d.and_time(chrono::NaiveTime::MIN))
        .earliest()
        .map(|t| t.timestamp_millis())
        .unwrap_or(0)
}

impl Shared {
    fn label(&self) -> &str {
        self.name.as_str()
    }

    /// The instruments served right now.
    pub(crate) fn insts(&self) -> Vec<Inst> {
        lock(&self.insts).clone()
    }

    /// The KRX codes served (sorted).
    pub(crate) fn codes(&self) -> Vec<String> {
        let mut c: Vec<String> = lock(&self.by_code).keys().cloned().collect();
        c.sort();
        c
    }

    /// The instrument of a KRX code, if served.
    pub(crate) fn id_of_code(&self, code: &str) -> Option<InstrumentId> {
        lock(&self.by_code).get(code).cloned()
    }

    /// Serve one more instrument (a user added it); false when it is served already. A KRX
    /// stock goes to the WebSocket (started now if it was not running) if it fits.
    pub(crate) fn add_inst(self: &Arc<Self>, inst: Inst) -> bool {
        {
            let mut insts = lock(&self.insts);
            if insts.iter().any(|i| i.id == inst.id) {
                return false;
            }
            insts.push(inst.clone());
        }
        if let Target::KrxStock(code) = &inst.target {
            lock(&self.by_code).insert(code.clone(), inst.id.clone());
            self.start_ws();
            self.ws_added.notify_one();
        }
        true
    }

    /// Start the WebSocket task once, if it is enabled and there is a KRX stock.
    fn start_ws(self: &Arc<Self>) {
        if !self.s.ws_enabled || lock(&self.by_code).is_empty() {
            return;
        }
        if !self.ws_started.swap(true, Ordering::SeqCst) {
            *lock(&self.ws_state) = WsState::Connecting;
            tokio::spawn(ws::run(self.clone()));
        }
    }

    pub(crate) fn count_error(&self, kind: &str) {
        self.ctx
            .metrics
            .errors
            .with_label_values(&[self.label(), kind])
            .inc();
    }

    pub(crate) fn count_parse_errors(&self, n: usize) {
        if n > 0 {
            self.ctx
                .metrics
                .parse_errors
                .with_label_values(&[self.label()])
                .inc_by(n as u64);
        }
    }

    pub(crate) async fn set_status(&self, state: SourceState, detail: &str) {
        self.status.lock().await.set(&self.ctx, state, detail).await;
    }

    /// Compose the status from the WebSocket's and REST's states.
    pub(crate) async fn report(&self) {
        let stocks = lock(&self.by_code).len();
        let live = lock(&self.ws_live).len();
        let refused = lock(&self.ws_refused).len();
        let polled = lock(&self.insts).len().saturating_sub(live);
        let ws = lock(&self.ws_state).clone();
        let failing = self.rest_failing.load(Ordering::Relaxed);
        let rest_err = lock(&self.rest_error).clone();
        let every = self.s.poll_interval.as_millis() as f64 / 1000.0;
        let mut parts = Vec::new();
        let mut state = SourceState::Up;
        match &ws {
            WsState::Off => {}
            WsState::Connecting => {
                parts.push(format!(
                    "WebSocket connecting: {stocks} KRX stocks polled over REST meanwhile"
                ));
                state = SourceState::Degraded;
            }
            WsState::Live => {
                parts.push(format!("live: {live} KRX stocks over WebSocket"));
                if refused > 0 {
                    parts.push(format!(
                        "{refused} KRX stocks the WebSocket did not take (limit {} subscriptions) polled over REST instead",
                        self.s.ws_max_subscriptions
                    ));
                }
            }
            WsState::Down(why) => {
                parts.push(format!(
                    "WebSocket down ({why}): {stocks} KRX stocks polled over REST instead"
                ));
                state = SourceState::Degraded;
            }
        }
        parts.push(format!(
            "{polled} instruments polled over REST every {every} s"
        ));
        if failing > 0 {
            parts.push(format!(
                "REST failing: {}",
                rest_err.unwrap_or_else(|| "errors".into())
            ));
            let ws_ok = matches!(ws, WsState::Live) && live > 0;
            state = if ws_ok || failing < 3 {
                SourceState::Degraded
            } else {
                SourceState::Down
            };
        }
        self.set_status(state, &parts.join("; ")).await;
    }

    /// Publish observations as ticks of the instruments they belong to.
    pub(crate) async fn publish(&self, items: Vec<(InstrumentId, Obs)>, backfill: bool) {
        if items.is_empty() {
            return;
        }
        let ingest = now_ms();
        let mut ticks = Vec::with_capacity(items.len());
        for (id, o) in items {
            let tick = Tick {
                v: SCHEMA_VERSION,
                instrument: id,
                price: o.price,
                prev_close: o.prev_close,
                change: o.change,
                change_rate: o.change_rate,
                volume: o.volume,
                day_volume: o.day_volume,
                ts: o.ts,
                ingest_ts: ingest,
                source: self.name.clone(),
                seq: o.seq,
                backfill,
                inputs: Vec::new(),
            };
            if let Err(e) = tick.validate() {
                self.count_parse_errors(1);
                tracing::warn!(source = "kis", instrument = %tick.instrument, error = %e, "invalid tick skipped");
                continue;
            }
            if !backfill {
                lock(&self.last_pub).insert(tick.instrument.clone(), (tick.price, tick.day_volume));
            }
            ticks.push(tick);
        }
        self.ctx.publish_ticks(self.label(), &ticks).await;
    }

    /// The time a REST snapshot is stamped with, and whether the market is in session: now
    /// (to the second, like the exchange's own trade times, so a trade of the same second with
    /// a larger accumulated volume sorts after it) while the regular session runs, else its
    /// last close (so polls of a closed market repeat one tick). With market hours off
    /// (`SISE_KIS_MARKET_HOURS=false`: a paper or demo host that trades around the clock, and the
    /// tests) every market counts as in session, as it does for the poll gate.
    fn stamp(&self, market: &str, now: i64) -> (i64, bool) {
        let cal = Calendar::embedded();
        let at = utc(now);
        let second = now - now.rem_euclid(1000);
        if !self.s.market_hours || cal.phase(market, at) == crate::calendar::Phase::Open {
            return (second, true);
        }
        match cal
            .last_close(market, at)
            .map(|t| t.timestamp_millis())
            .filter(|t| *t <= now)
        {
            Some(t) => (t, false),
            None => (second, true),
        }
    }

    fn excd_of(&self, symbol: &str, known: &Option<String>) -> Option<String> {
        known
            .clone()
            .or_else(|| lock(&self.excd).get(symbol).cloned())
    }

    /// One REST snapshot of an instrument.
    async fn snapshot(&self, inst: &Inst) -> Result<Option<Obs>, RestError> {
        let parse_err = |path: &'static str| move |err: ParseError| RestError::Parse { path, err };
        let obs = match &inst.target {
            Target::KrxStock(code) => {
                let v = self.rest.domestic_price(code).await?;
                parse::domestic_price(&v).map_err(parse_err(rest::PATH_PRICE))?
            }
            Target::KrxIndex(code) => {
                let v = self.rest.domestic_index(code).await?;
                parse::domestic_index(&v, code).map_err(parse_err(rest::PATH_INDEX))?
            }
            Target::UsIndex(code) => {
                let today = local_date("us", now_ms());
                let from = fmt_date(today - chrono::Duration::days(7));
                let v = self
                    .rest
                    .overseas_index(code, &from, &fmt_date(today))
                    .await?;
                parse::overseas_index(&v, code).map_err(parse_err(rest::PATH_US_INDEX))?
            }
            Target::UsStock { symbol, excd } => match self.excd_of(symbol, excd) {
                Some(x) => {
                    let v = self.rest.overseas_price(&x, symbol).await?;
                    parse::overseas_price(&v, symbol).map_err(parse_err(rest::PATH_US_PRICE))?
                }
                None => {
                    let mut found = None;
                    for x in PROBE_VENUES {
                        let v = self.rest.overseas_price(x, symbol).await?;
                        match parse::overseas_price(&v, symbol) {
                            Ok(o) => {
                                tracing::info!(source = "kis", symbol = %symbol, excd = x, "US venue found");
                                lock(&self.excd).insert(symbol.clone(), x.to_owned());
                                found = Some(o);
                                break;
                            }
                            Err(ParseError::Empty) => continue,
                            Err(err) => {
                                return Err(RestError::Parse {
                                    path: rest::PATH_US_PRICE,
                                    err,
                                })
                            }
                        }
                    }
                    match found {
                        Some(o) => o,
                        None => {
                            return Err(RestError::Parse {
                                path: rest::PATH_US_PRICE,
                                err: ParseError::Empty,
                            })
                        }
                    }
                }
            },
        };
        let now = now_ms();
        let (ts, in_session) = self.stamp(inst.target.market(), now);
        let unchanged = lock(&self.last_pub)
            .get(&inst.id)
            .is_some_and(|(p, v)| *p == obs.price && *v == obs.day_volume);
        if unchanged && in_session {
            return Ok(None);
        }
        Ok(Some(Obs { ts, ..obs }))
    }

    /// Poll `insts` once over REST; publish what changed. True when at least one answered.
    pub(crate) async fn poll(&self, insts: &[&Inst]) -> bool {
        if insts.is_empty() {
            return true;
        }
        let mut out = Vec::new();
        let mut ok = 0;
        let mut last_err = None;
        for inst in insts {
            if self.ctx.cancel.is_cancelled() {
                break;
            }
            match self.snapshot(inst).await {
                Ok(o) => {
                    ok += 1;
                    if let Some(o) = o {
                        out.push((inst.id.clone(), o));
                    }
                }
                Err(e) => {
                    self.count_error(e.kind());
                    if matches!(e, RestError::Parse { .. }) {
                        self.count_parse_errors(1);
                    }
                    tracing::warn!(source = "kis", instrument = %inst.id, error = %e, "KIS REST poll failed");
                    last_err = Some(e.to_string());
                }
            }
        }
        self.publish(out, false).await;
        if ok == 0 {
            self.rest_failing.fetch_add(1, Ordering::Relaxed);
            *lock(&self.rest_error) = last_err;
        } else {
            self.rest_failing.store(0, Ordering::Relaxed);
            *lock(&self.rest_error) = None;
        }
        self.report().await;
        ok > 0
    }

    /// Where the log stands for each instrument (its last KIS tick's time).
    async fn log_since(&self) -> HashMap<InstrumentId, Option<i64>> {
        let mut out = HashMap::new();
        for i in &self.insts() {
            let since = match self.ctx.bus.last_tick(&i.id).await {
                Ok(Some(t)) if t.source == self.name => Some(t.ts),
                Ok(_) => None,
                Err(e) => {
                    tracing::warn!(source = "kis", instrument = %i.id, error = %e, "could not read the last tick");
                    None
                }
            };
            out.insert(i.id.clone(), since);
        }
        out
    }

    async fn main(self: Arc<Self>) -> Result<(), String> {
        let since = self.log_since().await;
        // Realtime KRX trades.
        self.start_ws();
        // The start snapshot of every instrument, whatever the market state.
        let start = self.insts();
        let all: Vec<&Inst> = start.iter().collect();
        self.poll(&all).await;
        let mut gate = PollGate::started(self.s.market_hours, Utc::now());
        // Instruments users add from now on.
        tokio::spawn(users::run(self.clone()));
        // History the log is missing.
        for inst in &start {
            if self.ctx.cancel.is_cancelled() {
                return Ok(());
            }
            let s = since.get(&inst.id).copied().flatten();
            self.backfill(inst, s).await;
        }
        self.report().await;
        // The poll schedule.
        let mut sched = crate::schedule::Schedule::every(self.s.poll_interval).await?;
        loop {
            sched.fired().await;
            let now = Utc::now();
            let live = lock(&self.ws_live).clone();
            let served = self.insts();
            for market in MARKETS {
                if !gate.due(market, now) {
                    continue;
                }
                let insts: Vec<&Inst> = served
                    .iter()
                    .filter(|i| i.target.market() == market)
                    .filter(|i| !matches!(&i.target, Target::KrxStock(c) if live.contains(c)))
                    .collect();
                if self.poll(&insts).await {
                    gate.polled(market, now);
                }
            }
        }
    }

    /// Backfill what the log is missing of `inst` since `since` (its last tick; `None`: first
    /// seen): daily bars of the days before today, and today's minute bars of KRX stocks.
    pub(crate) async fn backfill(&self, inst: &Inst, since: Option<i64>) {
        let market = inst.target.market();
        let now = now_ms();
        let today = local_date(market, now);
        let today_start = local_midnight_ms(market, today);
        let first = match since {
            Some(ts) => local_date(market, ts) + chrono::Duration::days(1),
            None => today - chrono::Duration::days(i64::from(self.s.backfill_days.clamp(1, 100))),
        };
        let last = today - chrono::Duration::days(1);
        if first <= last {
            let (from, to) = (fmt_date(first), fmt_date(last));
            let got: Result<Result<Bars, ParseError>, RestError> = match &inst.target {
                Target::KrxStock(c) => self
                    .rest
                    .domestic_daily(c, &from, &to)
                    .await
                    .map(|v| parse::domestic_daily(&v)),
                Target::KrxIndex(c) => self
                    .rest
                    .domestic_index_daily(c, &from, &to)
                    .await
                    .map(|v| parse::domestic_index_daily(&v)),
                Target::UsIndex(c) => self
                    .rest
                    .overseas_index(c, &from, &to)
                    .await
                    .map(|v| parse::overseas_index_daily(&v)),
                Target::UsStock { symbol, excd } => match self.excd_of(symbol, excd) {
                    Some(x) => self
                        .rest
                        .overseas_daily(&x, symbol, &to)
                        .await
                        .map(|v| parse::overseas_daily(&v)),
                    None => Ok(Ok((Vec::new(), 0))),
                },
            };
            let lower = local_midnight_ms(market, first);
            self.publish_bars(inst, got, |b| b.start >= lower && b.end <= today_start)
                .await;
        }
        if let Target::KrxStock(code) = &inst.target {
            let lower = since
                .map(|t| t - t.rem_euclid(60_000) + 60_000)
                .unwrap_or(today_start)
                .max(today_start);
            self.backfill_minutes(inst, code, lower, now - now.rem_euclid(60_000))
                .await;
        }
    }

    async fn publish_bars(
        &self,
        inst: &Inst,
        got: Result<Result<Bars, ParseError>, RestError>,
        keep: impl Fn(&parse::Bar) -> bool,
    ) {
        match got {
            Ok(Ok((bars, bad))) => {
                self.count_parse_errors(bad);
                let mut obs: Vec<(InstrumentId, Obs)> = bars
                    .iter()
                    .rev()
                    .filter(|b| keep(b))
                    .flat_map(|b| b.to_obs(inst.target.key()))
                    .map(|o| (inst.id.clone(), o))
                    .collect();
                obs.sort_by_key(|(_, o)| o.ts);
                if !obs.is_empty() {
                    tracing::info!(source = "kis", instrument = %inst.id, bars = obs.len() / 4, "backfilled bars from REST");
                }
                self.publish(obs, true).await;
            }
            Ok(Err(e)) => {
                self.count_parse_errors(1);
                tracing::warn!(source = "kis", instrument = %inst.id, error = %e, "bad chart answer skipped");
            }
            Err(e) => {
                self.count_error(e.kind());
                tracing::warn!(source = "kis", instrument = %inst.id, error = %e, "KIS chart request failed");
            }
        }
    }

    /// Today's minute bars of a KRX stock with `lower <= start < upper`, paged back 30 rows
    /// at a time from `upper`.
    pub(crate) async fn backfill_minutes(&self, inst: &Inst, code: &str, lower: i64, upper: i64) {
        if lower >= upper {
            return;
        }
        let mut bars: Vec<parse::Bar> = Vec::new();
        let mut hour_ms = upper - 1;
        for _ in 0..self.s.backfill_minute_pages.max(1) {
            let hour = utc(hour_ms)
                .with_timezone(&parse::kst())
                .format("%H%M%S")
                .to_string();
            let page = match self.rest.domestic_minutes(code, &hour).await {
                Ok(v) => match parse::domestic_minutes(&v) {
                    Ok((b, bad)) => {
                        self.count_parse_errors(bad);
                        b
                    }
                    Err(e) => {
                        self.count_parse_errors(1);
                        tracing::warn!(source = "kis", code, error = %e, "bad minute chart skipped");
                        break;
                    }
                },
                Err(e) => {
                    self.count_error(e.kind());
                    tracing::warn!(source = "kis", code, error = %e, "KIS minute chart request failed");
                    break;
                }
            };
            let n = page.len();
            let oldest = page.iter().map(|b| b.start).min();
            bars.extend(
                page.into_iter()
                    .filter(|b| b.start >= lower && b.start < upper),
            );
            match oldest {
                Some(o) if n >= 30 && o > lower => hour_ms = o - 60_000,
                _ => break,
            }
            // Local midnight: no earlier rows today.
            if local_date("krx", hour_ms) != local_date("krx", upper - 1) {
                break;
            }
        }
        bars.sort_by_key(|b| b.start);
        bars.dedup_by_key(|b| b.start);
        self.publish_bars(inst, Ok(Ok((bars.into_iter().rev().collect(), 0))), |_| {
            true
        })
        .await;
    }
}

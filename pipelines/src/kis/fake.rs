//! A fake KIS (REST + WebSocket) on 127.0.0.1, speaking the protocol as `shared/apis/kis.md`
//! documents it, for tests and benches (feature `fake`).
//!
//! REST (`rest_url`):
//! - `POST /oauth2/tokenP` (`appkey`/`appsecret`): a token valid 24 h with its KST expiry; a
//!   second request within `token_window` (60 s) → 403 EGW00133; within 6 h → the same token;
//!   a wrong key pair → 403 EGW00103. `POST /oauth2/Approval` (`appkey`/`secretkey`).
//! - The quotation GETs sise uses, each checking `appkey`/`appsecret`, `tr_id` and the bearer
//!   token: an expired one → EGW00123 (HTTP 500 by default), an unknown one → EGW00121; more
//!   than `rest_per_second` requests per app key in one wall-clock second → EGW00201 (HTTP 500
//!   by default). Answers are the fixtures (`fixtures/`), with prices moved by the test;
//!   chart answers are generated in the fixtures' shape for the dates asked (weekdays), minute
//!   bars are what the test sets. Response header `tr_cont: D`.
//! - Wrong `EXCD` for a US symbol → the all-empty answer; an unknown KRX code → `rt_cd` 1.
//!
//! WebSocket (`ws_url`, any path, plain ws): subscribe/unsubscribe messages with a known
//! approval key; acks and errors as the fixtures (`SUBSCRIBE SUCCESS`, `ALREADY IN SUBSCRIBE`,
//! `MAX SUBSCRIBE OVER` past `max_subscriptions`, `ALREADY IN USE appkey` + close for a second
//! session of one key); H0STCNT0 frames (several records per frame when the test trades
//! several at once) to the sessions subscribed; PINGPONG every `pingpong_interval`, and a close
//! when neither the echoed text nor a pong carrying it comes back within `pingpong_timeout`.
//! Tests can also drop every session (no close frame) and send raw text.

use std::collections::{BTreeSet, HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::Router;
use chrono::{Datelike, NaiveDate, TimeZone, Utc};
use futures::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::Message;

use super::rest::*;

macro_rules! fixture {
    ($name:literal) => {
        include_str!(concat!("fixtures/", $name))
    };
}

fn fx(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or(Value::Null)
}

/// Knobs of the fake.
#[derive(Debug, Clone)]
pub struct FakeOptions {
    pub app_key: String,
    pub app_secret: String,
    /// Requests per app key per wall-clock second before EGW00201 (real: 20).
    pub rest_per_second: u32,
    /// HTTP status of the EGW00201 and EGW00123 answers (field reports: 500, some 200).
    pub error_status: u16,
    /// One token issue per this window per app key (KIS: 1 minute).
    pub token_window: Duration,
    /// Registrations per WebSocket session (measured: 41).
    pub max_subscriptions: usize,
    pub pingpong_interval: Duration,
    /// Close a session whose PINGPONG is not answered within this.
    pub pingpong_timeout: Duration,
    /// HDFSCNT0 in KIS's newest 25-field layout (no RSYM) instead of 26.
    pub overseas_25_fields: bool,
}

impl Default for FakeOptions {
    fn default() -> Self {
        FakeOptions {
            app_key: "FAKE-APPKEY-PSxxxxxxxxxxxxxxxxxxxxxxxxxxx".into(),
            app_secret: "FAKE-APPSECRET-yyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyy".into(),
            rest_per_second: 20,
            error_status: 500,
            token_window: Duration::from_secs(60),
            max_subscriptions: 41,
            pingpong_interval: Duration::from_secs(60),
            pingpong_timeout: Duration::from_secs(30),
            overseas_25_fields: false,
        }
    }
}

/// What the fake saw.
#[derive(Debug, Clone, Default)]
pub struct FakeStats {
    /// tokenP requests, tokens newly issued (a same-token answer is not one), EGW00133 answers.
    pub token_requests: u32,
    pub tokens_issued: u32,
    pub token_rate_rejected: u32,
    pub approvals_issued: u32,
    /// Every data request: (path, tr_id).
    pub rest_requests: Vec<(String, String)>,
    pub rate_limited: u32,
    pub expired_answers: u32,
    /// Most data requests answered (not rate limited) in one wall-clock second.
    pub peak_per_second: u32,
    pub ws_sessions: u32,
    pub ws_in_use_rejected: u32,
    pub pingpong_sent: u32,
    pub pingpong_answered: u32,
    pub pingpong_timeouts: u32,
    pub subscribe_messages: u32,
}

struct Session {
    id: u64,
    app_key: Option<String>,
    subs: BTreeSet<(String, String)>,
    tx: mpsc::UnboundedSender<Out>,
}

enum Out {
    Text(String),
    Drop,
}

#[derive(Default)]
struct St {
    token: Option<(String, Instant, i64)>,
    token_expired: bool,
    old_tokens: Vec<String>,
    last_issue: Option<Instant>,
    approvals: HashMap<String, String>,
    stocks: HashMap<String, Value>,
    /// Korean names of the stocks (the daily chart's `hts_kor_isnm`).
    names: HashMap<String, String>,
    indices: HashMap<String, Value>,
    us: HashMap<(String, String), Value>,
    us_index: HashMap<String, Value>,
    minutes: HashMap<String, Vec<Value>>,
    rate: HashMap<String, (i64, u32)>,
    per_second: HashMap<i64, u32>,
    force_rate: u32,
    stats: FakeStats,
    sessions: Vec<Session>,
    next_session: u64,
}

struct Inner {
    opts: FakeOptions,
    /// Refuse WebSocket connections (the TCP connection is dropped at once).
    refuse_ws: std::sync::atomic::AtomicBool,
    st: Mutex<St>,
}

impl Inner {
    fn lock(&self) -> std::sync::MutexGuard<'_, St> {
        self.st.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// A running fake KIS. Dropping it stops it.
pub struct FakeKis {
    pub rest_url: String,
    pub ws_url: String,
    inner: Arc<Inner>,
    tasks: Vec<JoinHandle<()>>,
}

impl Drop for FakeKis {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

fn seed() -> St {
    let mut st = St::default();
    for text in [
        fixture!("inquire_price_068270.json"),
        fixture!("inquire_price_058610.json"),
        fixture!("inquire_price_086520.json"),
    ] {
        let v = fx(text);
        if let Some(code) = v["output"]["stck_shrn_iscd"].as_str() {
            st.stocks.insert(code.to_owned(), v["output"].clone());
        }
    }
    for (code, name) in [
        ("068270", "셀트리온"),
        ("058610", "에스피지"),
        ("086520", "에코프로"),
    ] {
        st.names.insert(code.into(), name.into());
    }
    st.indices.insert(
        "0001".into(),
        fx(fixture!("index_price_0001_kospi.json"))["output"].clone(),
    );
    st.indices.insert(
        "1001".into(),
        fx(fixture!("index_price_1001_kosdaq.json"))["output"].clone(),
    );
    for (excd, sym, text) in [
        ("NAS", "GOOG", fixture!("overseas_price_goog_nas.json")),
        ("AMS", "BMNR", fixture!("overseas_price_bmnr_ams.json")),
        ("NYS", "FIG", fixture!("overseas_price_fig_nys.json")),
    ] {
        st.us
            .insert((excd.into(), sym.into()), fx(text)["output"].clone());
    }
    st.us_index.insert(
        ".DJI".into(),
        fx(fixture!("overseas_index_daily_dji.json"))["output1"].clone(),
    );
    st.us_index.insert(
        "COMP".into(),
        fx(fixture!("overseas_index_daily_comp.json"))["output1"].clone(),
    );
    st
}

fn kst_now() -> chrono::DateTime<chrono::FixedOffset> {
    Utc::now().with_timezone(&super::parse::kst())
}

fn hex_id() -> String {
    format!(
        "{:016x}{:016x}",
        rand::random::<u64>(),
        rand::random::<u64>()
    )
}

fn s(v: &Value, k: &str) -> String {
    v.get(k).and_then(Value::as_str).unwrap_or("").to_owned()
}

fn n(v: &Value, k: &str) -> f64 {
    v.get(k)
        .and_then(Value::as_str)
        .and_then(|x| x.trim_start_matches('+').parse().ok())
        .unwrap_or(0.0)
}

fn sign_code(d: f64) -> &'static str {
    if d > 0.0 {
        "2"
    } else if d < 0.0 {
        "5"
    } else {
        "3"
    }
}

/// One H0STCNT0 record (46 fields) in the field order of the fixtures.
fn trade_record(code: &str, o: &Value, time: &str, date: &str, volume: u64) -> String {
    let template = fixture!("ws_h0stcnt0_068270_single.txt").trim_end();
    let payload = template.splitn(4, '|').nth(3).unwrap_or("");
    let mut f: Vec<String> = payload.split('^').map(str::to_owned).collect();
    f.resize(46, String::new());
    let price = n(o, "stck_prpr");
    let prev = n(o, "stck_sdpr");
    let d = price - prev;
    f[0] = code.to_owned();
    f[1] = time.to_owned();
    f[2] = format!("{price:.0}");
    f[3] = sign_code(d).to_owned();
    f[4] = format!("{d:.0}");
    f[5] = format!("{:.2}", if prev > 0.0 { d / prev * 100.0 } else { 0.0 });
    f[7] = s(o, "stck_oprc");
    f[8] = s(o, "stck_hgpr");
    f[9] = s(o, "stck_lwpr");
    f[12] = volume.to_string();
    f[13] = s(o, "acml_vol");
    f[14] = s(o, "acml_tr_pbmn");
    f[33] = date.to_owned();
    f.join("^")
}

impl FakeKis {
    /// Start on two ephemeral ports (REST, WebSocket).
    pub async fn start(opts: FakeOptions) -> std::io::Result<FakeKis> {
        let rest = TcpListener::bind("127.0.0.1:0").await?;
        let ws = TcpListener::bind("127.0.0.1:0").await?;
        let rest_url = format!("http://{}", rest.local_addr()?);
        let ws_url = format!("ws://{}/tryitout", ws.local_addr()?);
        let inner = Arc::new(Inner {
            refuse_ws: std::sync::atomic::AtomicBool::new(false),
            opts,
            st: Mutex::new(seed()),
        });
        let app = Router::new()
            .route("/oauth2/tokenP", post(token))
            .route("/oauth2/Approval", post(approval))
            .fallback(data)
            .with_state(inner.clone());
        let rest_task = tokio::spawn(async move {
            let _ = axum::serve(rest, app).await;
        });
        let i = inner.clone();
        let ws_task = tokio::spawn(async move {
            let mut conns = tokio::task::JoinSet::new();
            while let Ok((s, _)) = ws.accept().await {
                if i.refuse_ws.load(std::sync::atomic::Ordering::Relaxed) {
                    drop(s);
                    continue;
                }
                conns.spawn(serve_ws(i.clone(), s));
                while conns.try_join_next().is_some() {}
            }
        });
        Ok(FakeKis {
            rest_url,
            ws_url,
            inner,
            tasks: vec![rest_task, ws_task],
        })
    }

    pub fn options(&self) -> &FakeOptions {
        &self.inner.opts
    }

    pub fn stats(&self) -> FakeStats {
        self.inner.lock().stats.clone()
    }

    /// The current token, if any was issued.
    pub fn current_token(&self) -> Option<String> {
        self.inner.lock().token.as_ref().map(|t| t.0.clone())
    }

    /// Open WebSocket sessions and their (tr_id, tr_key) registrations.
    pub fn sessions(&self) -> Vec<Vec<(String, String)>> {
        self.inner
            .lock()
            .sessions
            .iter()
            .map(|s| s.subs.iter().cloned().collect())
            .collect()
    }

    /// The current token now counts as expired: data calls answer EGW00123 and the next
    /// tokenP issues a new one (still one per `token_window`).
    pub fn expire_token(&self) {
        self.inner.lock().token_expired = true;
    }

    /// The next `n` data requests answer EGW00201.
    pub fn force_rate_limit(&self, n: u32) {
        self.inner.lock().force_rate = n;
    }

    /// Add a KRX stock (a copy of 셀트리온's answer with this code and price).
    pub fn add_stock(&self, code: &str, price: i64) {
        let mut st = self.inner.lock();
        let mut o = st.stocks.get("068270").cloned().unwrap_or(Value::Null);
        o["stck_shrn_iscd"] = json!(code);
        o["stck_prpr"] = json!(price.to_string());
        o["stck_sdpr"] = json!(price.to_string());
        o["prdy_vrss"] = json!("0");
        o["prdy_vrss_sign"] = json!("3");
        o["prdy_ctrt"] = json!("0.00");
        st.stocks.insert(code.to_owned(), o);
    }

    /// Add a KRX stock with its Korean name (the daily chart's `hts_kor_isnm`), its previous
    /// close and price (a copy of 셀트리온's answer with these fields).
    pub fn add_named_stock(&self, code: &str, name: &str, prev_close: i64, price: i64) {
        self.add_stock(code, price);
        let mut st = self.inner.lock();
        let d = price - prev_close;
        if let Some(o) = st.stocks.get_mut(code) {
            o["stck_sdpr"] = json!(prev_close.to_string());
            o["prdy_vrss"] = json!(d.to_string());
            o["prdy_vrss_sign"] = json!(sign_code(d as f64));
            o["prdy_ctrt"] = json!(format!("{:.2}", d as f64 / prev_close as f64 * 100.0));
        }
        st.names.insert(code.to_owned(), name.to_owned());
    }

    /// List a US stock on venue `excd` (`NAS`, `NYS`, `AMS`): a copy of GOOG's answer with
    /// this symbol, realtime key, previous close and last price.
    pub fn add_us_stock(&self, excd: &str, symbol: &str, base: f64, last: f64) {
        let mut st = self.inner.lock();
        let mut o = st
            .us
            .get(&("NAS".to_owned(), "GOOG".to_owned()))
            .cloned()
            .unwrap_or(Value::Null);
        o["rsym"] = json!(format!("D{excd}{symbol}"));
        o["base"] = json!(format!("{base:.4}"));
        st.us.insert((excd.to_owned(), symbol.to_owned()), o);
        drop(st);
        self.set_us_last(symbol, last);
    }

    /// Set a US stock's last price (REST `price`).
    pub fn set_us_last(&self, symbol: &str, last: f64) {
        let mut st = self.inner.lock();
        for ((_, sym), o) in st.us.iter_mut() {
            if sym == symbol {
                let base = n(o, "base");
                let d = last - base;
                o["last"] = json!(format!("{last:.4}"));
                o["diff"] = json!(format!("{:.4}", d.abs()));
                o["sign"] = json!(sign_code(d));
                o["rate"] = json!(format!("{:+.2}", d / base * 100.0));
            }
        }
    }

    /// Set today's minute bars of a KRX stock: (HHmmss, open, high, low, close, volume).
    pub fn set_minutes(&self, code: &str, bars: &[(&str, i64, i64, i64, i64, u64)]) {
        let date = kst_now().format("%Y%m%d").to_string();
        let rows: Vec<Value> = bars
            .iter()
            .map(|(h, o, hi, lo, c, v)| {
                json!({
                    "stck_bsop_date": date, "stck_cntg_hour": h, "stck_prpr": c.to_string(),
                    "stck_oprc": o.to_string(), "stck_hgpr": hi.to_string(), "stck_lwpr": lo.to_string(),
                    "cntg_vol": v.to_string(), "acml_tr_pbmn": "0"
                })
            })
            .collect();
        self.inner.lock().minutes.insert(code.to_owned(), rows);
    }

    /// Trades, one frame: each (code, price, volume) moves the stock's REST state too. Returns
    /// the frame sent (to every session subscribed to one of the codes).
    pub fn trades(&self, trades: &[(&str, i64, u64)]) -> String {
        let now = kst_now();
        let time = now.format("%H%M%S").to_string();
        let date = now.format("%Y%m%d").to_string();
        let mut st = self.inner.lock();
        let mut records = Vec::new();
        for (code, price, vol) in trades {
            let Some(o) = st.stocks.get_mut(*code) else {
                continue;
            };
            let prev = n(o, "stck_sdpr");
            let acml = n(o, "acml_vol") as u64 + vol;
            let d = *price as f64 - prev;
            o["stck_prpr"] = json!(price.to_string());
            o["prdy_vrss"] = json!(format!("{d:.0}"));
            o["prdy_vrss_sign"] = json!(sign_code(d));
            o["prdy_ctrt"] = json!(format!("{:.2}", d / prev * 100.0));
            o["acml_vol"] = json!(acml.to_string());
            if (*price as f64) > n(o, "stck_hgpr") {
                o["stck_hgpr"] = json!(price.to_string());
            }
            records.push(trade_record(code, o, &time, &date, *vol));
        }
        let frame = format!("0|H0STCNT0|{:03}|{}", records.len(), records.join("^"));
        let codes: BTreeSet<(String, String)> = trades
            .iter()
            .map(|(c, _, _)| ("H0STCNT0".to_owned(), (*c).to_owned()))
            .collect();
        for sess in &st.sessions {
            if sess.subs.iter().any(|k| codes.contains(k)) {
                let _ = sess.tx.send(Out::Text(frame.clone()));
            }
        }
        frame
    }

    /// Change a stock's REST state only (a trade the socket did not deliver).
    pub fn trade_unheard(&self, code: &str, price: i64, vol: u64) {
        let mut st = self.inner.lock();
        if let Some(o) = st.stocks.get_mut(code) {
            let prev = n(o, "stck_sdpr");
            let d = price as f64 - prev;
            o["stck_prpr"] = json!(price.to_string());
            o["prdy_vrss"] = json!(format!("{d:.0}"));
            o["prdy_vrss_sign"] = json!(sign_code(d));
            o["prdy_ctrt"] = json!(format!("{:.2}", d / prev * 100.0));
            let acml = n(o, "acml_vol") as u64 + vol;
            o["acml_vol"] = json!(acml.to_string());
        }
    }

    /// An HDFSCNT0 frame of a US trade in the fixture's shape (26 fields, or 25 without RSYM
    /// when `overseas_25_fields`), New York time now; sent to every session.
    pub fn overseas_trade(&self, symbol: &str, last: f64, volume: u64) -> String {
        let ny = Utc::now().with_timezone(&chrono_tz::America::New_York);
        let kst = kst_now();
        let template = fixture!("ws_hdfscnt0_dnasgoog.txt").trim_end();
        let payload = template.splitn(4, '|').nth(3).unwrap_or("");
        let mut f: Vec<String> = payload.split('^').map(str::to_owned).collect();
        f.resize(26, String::new());
        let base = 298.12;
        let d = last - base;
        f[0] = format!("DNAS{symbol}");
        f[1] = symbol.to_owned();
        f[3] = ny.format("%Y%m%d").to_string();
        f[4] = ny.format("%Y%m%d").to_string();
        f[5] = ny.format("%H%M%S").to_string();
        f[6] = kst.format("%Y%m%d").to_string();
        f[7] = kst.format("%H%M%S").to_string();
        f[11] = format!("{last:.4}");
        f[12] = sign_code(d).to_owned();
        f[13] = format!("{:.4}", d.abs());
        f[14] = format!("{:.2}", d / base * 100.0);
        f[19] = volume.to_string();
        if self.inner.opts.overseas_25_fields {
            f.remove(0);
        }
        let frame = format!("0|HDFSCNT0|001|{}", f.join("^"));
        self.send_raw(&frame);
        frame
    }

    /// Send a text frame to every session.
    pub fn send_raw(&self, text: &str) {
        for sess in &self.inner.lock().sessions {
            let _ = sess.tx.send(Out::Text(text.to_owned()));
        }
    }

    /// Refuse (`true`) or accept again (`false`) WebSocket connections.
    pub fn refuse_ws(&self, refuse: bool) {
        self.inner
            .refuse_ws
            .store(refuse, std::sync::atomic::Ordering::Relaxed);
    }

    /// Drop every session's TCP connection without a close frame.
    pub fn drop_sessions(&self) {
        for sess in &self.inner.lock().sessions {
            let _ = sess.tx.send(Out::Drop);
        }
    }
}

// ---- REST -----------------------------------------------------------------------------------

fn answer(status: u16, body: Value) -> Response {
    let code = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    (
        code,
        [
            ("content-type", "application/json;charset=UTF-8"),
            ("tr_cont", "D"),
        ],
        body.to_string(),
    )
        .into_response()
}

async fn token(State(inner): State<Arc<Inner>>, body: Bytes) -> Response {
    let b: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let mut st = inner.lock();
    st.stats.token_requests += 1;
    if s(&b, "grant_type") != "client_credentials"
        || s(&b, "appkey") != inner.opts.app_key
        || s(&b, "appsecret") != inner.opts.app_secret
    {
        return answer(403, fx(fixture!("token_error_invalid_appkey.json")));
    }
    if st
        .last_issue
        .is_some_and(|t| t.elapsed() < inner.opts.token_window)
    {
        st.stats.token_rate_rejected += 1;
        return answer(403, fx(fixture!("token_error_egw00133_rate.json")));
    }
    st.last_issue = Some(Instant::now());
    let same = match &st.token {
        Some((_, issued, _)) if !st.token_expired => {
            issued.elapsed() < Duration::from_secs(6 * 3600)
        }
        _ => false,
    };
    if !same {
        if let Some((old, _, _)) = st.token.take() {
            st.old_tokens.push(old);
        }
        let tok = format!("FAKE-eyJ0eXAiOiJKV1QiLCJhbGciOiJIUzUxMiJ9.{}", hex_id());
        let exp = sise_bus::now_ms() + 86_400_000;
        st.token = Some((tok, Instant::now(), exp));
        st.token_expired = false;
        st.stats.tokens_issued += 1;
    }
    let (tok, exp) = st
        .token
        .as_ref()
        .map(|(t, _, e)| (t.clone(), *e))
        .unwrap_or_default();
    let exp_kst = Utc
        .timestamp_millis_opt(exp)
        .single()
        .map(|t| {
            t.with_timezone(&super::parse::kst())
                .format("%Y-%m-%d %H:%M:%S")
                .to_string()
        })
        .unwrap_or_default();
    answer(
        200,
        json!({"access_token": tok, "access_token_token_expired": exp_kst, "token_type": "Bearer", "expires_in": 86400}),
    )
}

async fn approval(State(inner): State<Arc<Inner>>, body: Bytes) -> Response {
    let b: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let mut st = inner.lock();
    if s(&b, "appkey") != inner.opts.app_key || s(&b, "secretkey") != inner.opts.app_secret {
        return answer(403, fx(fixture!("token_error_invalid_appkey.json")));
    }
    let key = format!("FAKE-{}-{}", &hex_id()[..8], uuid_like(&hex_id()));
    st.approvals.insert(key.clone(), inner.opts.app_key.clone());
    st.stats.approvals_issued += 1;
    answer(200, json!({ "approval_key": key }))
}

fn uuid_like(h: &str) -> String {
    format!("{}-{}-{}-{}", &h[0..4], &h[4..8], &h[8..12], &h[12..24])
}

fn err(code: &str, msg: &str) -> Value {
    json!({"rt_cd": "1", "msg_cd": code, "msg1": msg})
}

fn ymd(d: NaiveDate) -> String {
    format!("{:04}{:02}{:02}", d.year(), d.month(), d.day())
}

/// Weekdays in `[from, to]`, newest first, at most 100.
fn weekdays(from: &str, to: &str) -> Vec<NaiveDate> {
    let p = |x: &str| NaiveDate::parse_from_str(x, "%Y%m%d").ok();
    let (Some(a), Some(mut d)) = (p(from), p(to)) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    while d >= a && out.len() < 100 {
        if d.weekday().number_from_monday() <= 5 {
            out.push(d);
        }
        d -= chrono::Duration::days(1);
    }
    out
}

/// A deterministic bar around `base` for a date: (open, high, low, close).
fn bar_of(base: f64, d: NaiveDate, decimals: usize) -> [String; 4] {
    let k = f64::from(d.ordinal() % 7) - 3.0;
    let c = base * (1.0 + k * 0.004);
    let o = base * (1.0 - k * 0.002);
    let h = c.max(o) * 1.006;
    let l = c.min(o) * 0.994;
    [o, h, l, c].map(|x| format!("{x:.decimals$}"))
}

async fn data(
    State(inner): State<Arc<Inner>>,
    uri: Uri,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let h = |k: &str| {
        headers
            .get(k)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_owned()
    };
    let path = uri.path().to_owned();
    let tr_id = h("tr_id");
    let app_key = h("appkey");
    let status_err = inner.opts.error_status;
    let mut st = inner.lock();
    st.stats.rest_requests.push((path.clone(), tr_id.clone()));
    if app_key != inner.opts.app_key || h("appsecret") != inner.opts.app_secret {
        return answer(403, fx(fixture!("token_error_invalid_appkey.json")));
    }
    let sec = sise_bus::now_ms().div_euclid(1000);
    let e = st.rate.entry(app_key).or_insert((sec, 0));
    if e.0 != sec {
        *e = (sec, 0);
    }
    e.1 += 1;
    let used = e.1;
    if used > inner.opts.rest_per_second || st.force_rate > 0 {
        st.force_rate = st.force_rate.saturating_sub(1);
        st.stats.rate_limited += 1;
        return answer(status_err, fx(fixture!("error_egw00201_rate_limit.json")));
    }
    let bearer = h("authorization");
    let tok = bearer.strip_prefix("Bearer ").unwrap_or("");
    match &st.token {
        Some((t, _, _)) if t == tok && !st.token_expired => {}
        Some((t, _, _)) if t == tok => {
            st.stats.expired_answers += 1;
            return answer(
                status_err,
                fx(fixture!("error_egw00123_expired_token.json")),
            );
        }
        _ if st.old_tokens.iter().any(|o| o == tok) => {
            st.stats.expired_answers += 1;
            return answer(
                status_err,
                fx(fixture!("error_egw00123_expired_token.json")),
            );
        }
        _ => {
            return answer(status_err, err("EGW00121", "유효하지 않은 token 입니다."));
        }
    }
    let c = st.per_second.entry(sec).or_insert(0);
    *c += 1;
    let c = *c;
    st.stats.peak_per_second = st.stats.peak_per_second.max(c);
    st.per_second.retain(|k, _| *k >= sec - 5);
    let qv = |k: &str| q.get(k).cloned().unwrap_or_default();
    let want_tr = match path.as_str() {
        PATH_PRICE => TR_PRICE,
        PATH_DAILY => TR_DAILY,
        PATH_MINUTES => TR_MINUTES,
        PATH_INDEX => TR_INDEX,
        PATH_INDEX_DAILY => TR_INDEX_DAILY,
        PATH_US_PRICE => TR_US_PRICE,
        PATH_US_DAILY => TR_US_DAILY,
        PATH_US_INDEX => TR_US_INDEX,
        _ => return answer(404, err("EGW00002", "존재하지 않는 서비스입니다.")),
    };
    if tr_id != want_tr {
        return answer(500, err("EGW00002", "tr_id가 올바르지 않습니다."));
    }
    let ok = |mut v: Value| {
        v["rt_cd"] = json!("0");
        v["msg_cd"] = json!("MCA00000");
        v["msg1"] = json!("정상처리 되었습니다.");
        answer(200, v)
    };
    let unknown = || answer(200, fx(fixture!("error_domestic_unknown_code.json")));
    let code = qv("FID_INPUT_ISCD");
    match path.as_str() {
        PATH_PRICE => match st.stocks.get(&code) {
            Some(o) if qv("FID_COND_MRKT_DIV_CODE") == "J" => ok(json!({ "output": o })),
            _ => unknown(),
        },
        PATH_DAILY => {
            let Some(o) = st.stocks.get(&code) else {
                return unknown();
            };
            let base = n(o, "stck_sdpr");
            let rows: Vec<Value> = weekdays(&qv("FID_INPUT_DATE_1"), &qv("FID_INPUT_DATE_2"))
                .into_iter()
                .map(|d| {
                    let [op, hi, lo, cl] = bar_of(base, d, 0);
                    json!({"stck_bsop_date": ymd(d), "stck_clpr": cl, "stck_oprc": op, "stck_hgpr": hi,
                        "stck_lwpr": lo, "acml_vol": "812345", "acml_tr_pbmn": "146587655250",
                        "flng_cls_code": "00", "prtt_rate": "0.00", "mod_yn": "N",
                        "prdy_vrss_sign": "3", "prdy_vrss": "0", "revl_issu_reas": ""})
                })
                .collect();
            let mut out1 = fx(fixture!("daily_itemchartprice_068270.json"))["output1"].clone();
            out1["stck_shrn_iscd"] = json!(code);
            out1["hts_kor_isnm"] = json!(st.names.get(&code).cloned().unwrap_or_default());
            out1["stck_prpr"] = o["stck_prpr"].clone();
            ok(json!({"output1": out1, "output2": rows}))
        }
        PATH_MINUTES => {
            let Some(o) = st.stocks.get(&code) else {
                return unknown();
            };
            let upto = qv("FID_INPUT_HOUR_1");
            let mut rows: Vec<Value> = st
                .minutes
                .get(&code)
                .cloned()
                .unwrap_or_default()
                .into_iter()
                .filter(|r| s(r, "stck_cntg_hour") <= upto)
                .collect();
            rows.sort_by_key(|r| std::cmp::Reverse(s(r, "stck_cntg_hour")));
            rows.truncate(30);
            let out1 = json!({"prdy_vrss": o["prdy_vrss"], "prdy_vrss_sign": o["prdy_vrss_sign"],
                "prdy_ctrt": o["prdy_ctrt"], "stck_prdy_clpr": o["stck_sdpr"], "acml_vol": o["acml_vol"],
                "acml_tr_pbmn": o["acml_tr_pbmn"], "hts_kor_isnm": "", "stck_prpr": o["stck_prpr"]});
            ok(json!({"output1": out1, "output2": rows}))
        }
        PATH_INDEX => match st.indices.get(&code) {
            Some(o) if qv("FID_COND_MRKT_DIV_CODE") == "U" => ok(json!({ "output": o })),
            _ => unknown(),
        },
        PATH_INDEX_DAILY => {
            let Some(o) = st.indices.get(&code) else {
                return unknown();
            };
            let base = n(o, "bstp_nmix_prpr") - n(o, "bstp_nmix_prdy_vrss");
            let rows: Vec<Value> = weekdays(&qv("FID_INPUT_DATE_1"), &qv("FID_INPUT_DATE_2"))
                .into_iter()
                .map(|d| {
                    let [op, hi, lo, cl] = bar_of(base, d, 2);
                    json!({"stck_bsop_date": ymd(d), "bstp_nmix_prpr": cl, "bstp_nmix_oprc": op,
                        "bstp_nmix_hgpr": hi, "bstp_nmix_lwpr": lo, "acml_vol": "498112",
                        "acml_tr_pbmn": "14120377", "mod_yn": "N"})
                })
                .collect();
            ok(json!({"output1": {"bstp_nmix_prpr": o["bstp_nmix_prpr"]}, "output2": rows}))
        }
        PATH_US_PRICE => match st.us.get(&(qv("EXCD"), qv("SYMB"))) {
            Some(o) => ok(json!({ "output": o })),
            None => answer(200, fx(fixture!("overseas_price_wrong_excd_empty.json"))),
        },
        PATH_US_DAILY => {
            let Some(o) = st.us.get(&(qv("EXCD"), qv("SYMB"))) else {
                return ok(
                    json!({"output1": {"rsym": "", "zdiv": "0", "nrec": "0"}, "output2": []}),
                );
            };
            let base = n(o, "base");
            let to = match qv("BYMD") {
                b if b.is_empty() => ymd(Utc::now().date_naive()),
                b => b,
            };
            let from = NaiveDate::parse_from_str(&to, "%Y%m%d")
                .map(|d| ymd(d - chrono::Duration::days(150)))
                .unwrap_or_default();
            let rows: Vec<Value> = weekdays(&from, &to)
                .into_iter()
                .map(|d| {
                    let [op, hi, lo, cl] = bar_of(base, d, 4);
                    json!({"xymd": ymd(d), "clos": cl, "sign": "3", "diff": "0.0000", "rate": "0.00",
                        "open": op, "high": hi, "low": lo, "tvol": "24120331", "tamt": "7190753077",
                        "pbid": "0.0000", "vbid": "0", "pask": "0.0000", "vask": "0"})
                })
                .collect();
            ok(
                json!({"output1": {"rsym": o["rsym"], "zdiv": "4", "nrec": rows.len().to_string()}, "output2": rows}),
            )
        }
        PATH_US_INDEX => match st.us_index.get(&code) {
            Some(o) if qv("FID_COND_MRKT_DIV_CODE") == "N" => {
                let base = n(o, "ovrs_nmix_prdy_clpr");
                let rows: Vec<Value> =
                    weekdays(&qv("FID_INPUT_DATE_1"), &qv("FID_INPUT_DATE_2"))
                        .into_iter()
                        .map(|d| {
                            let [op, hi, lo, cl] = bar_of(base, d, 2);
                            json!({"stck_bsop_date": ymd(d), "ovrs_nmix_prpr": cl, "ovrs_nmix_oprc": op,
                                "ovrs_nmix_hgpr": hi, "ovrs_nmix_lwpr": lo, "acml_vol": "312004551", "mod_yn": "N"})
                        })
                        .collect();
                ok(json!({"output1": o, "output2": rows}))
            }
            _ => unknown(),
        },
        _ => unknown(),
    }
}

// ---- WebSocket ------------------------------------------------------------------------------

fn control(tr_id: &str, tr_key: &str, rt: &str, cd: &str, msg: &str) -> String {
    json!({"header": {"tr_id": tr_id, "tr_key": tr_key, "encrypt": "N"},
        "body": {"rt_cd": rt, "msg_cd": cd, "msg1": msg}})
    .to_string()
}

async fn serve_ws(inner: Arc<Inner>, stream: TcpStream) {
    let Ok(mut ws) = tokio_tungstenite::accept_async(stream).await else {
        return;
    };
    let (tx, mut rx) = mpsc::unbounded_channel();
    let id = {
        let mut st = inner.lock();
        st.next_session += 1;
        st.stats.ws_sessions += 1;
        let id = st.next_session;
        st.sessions.push(Session {
            id,
            app_key: None,
            subs: BTreeSet::new(),
            tx,
        });
        id
    };
    let every = inner.opts.pingpong_interval.max(Duration::from_millis(50));
    let mut ping = tokio::time::interval_at(Instant::now() + every, every);
    let mut waiting: VecDeque<(String, Instant)> = VecDeque::new();
    let end_session = |inner: &Inner| {
        inner.lock().sessions.retain(|s| s.id != id);
    };
    loop {
        let deadline = waiting
            .front()
            .map(|(_, t)| *t + inner.opts.pingpong_timeout);
        tokio::select! {
            _ = async { match deadline { Some(d) => tokio::time::sleep_until(d).await, None => std::future::pending().await } } => {
                inner.lock().stats.pingpong_timeouts += 1;
                let _ = ws.close(None).await;
                break;
            }
            _ = ping.tick() => {
                let text = json!({"header": {"tr_id": "PINGPONG", "datetime": kst_now().format("%Y%m%d%H%M%S").to_string()}}).to_string();
                inner.lock().stats.pingpong_sent += 1;
                if ws.send(Message::Text(text.clone().into())).await.is_err() {
                    break;
                }
                waiting.push_back((text, Instant::now()));
            }
            out = rx.recv() => match out {
                Some(Out::Text(t)) => {
                    if ws.send(Message::Text(t.into())).await.is_err() {
                        break;
                    }
                }
                Some(Out::Drop) | None => {
                    end_session(&inner);
                    return; // TCP dropped, no close frame
                }
            },
            msg = ws.next() => {
                let text = match msg {
                    Some(Ok(Message::Text(t))) => t.to_string(),
                    Some(Ok(Message::Pong(p))) => {
                        let p = String::from_utf8_lossy(&p).into_owned();
                        if let Some(i) = waiting.iter().position(|(t, _)| *t == p) {
                            waiting.drain(..=i);
                            inner.lock().stats.pingpong_answered += 1;
                        }
                        continue;
                    }
                    Some(Ok(Message::Close(_))) | None | Some(Err(_)) => break,
                    Some(Ok(_)) => continue,
                };
                if let Some(i) = waiting.iter().position(|(t, _)| *t == text) {
                    waiting.drain(..=i);
                    inner.lock().stats.pingpong_answered += 1;
                    continue;
                }
                let reply = handle_request(&inner, id, &text);
                let mut close = false;
                for (r, c) in reply {
                    close |= c;
                    if ws.send(Message::Text(r.into())).await.is_err() {
                        close = true;
                        break;
                    }
                }
                if close {
                    let _ = ws.close(None).await;
                    break;
                }
            }
        }
    }
    end_session(&inner);
}

/// Answer one client message: (text, close after).
fn handle_request(inner: &Inner, id: u64, text: &str) -> Vec<(String, bool)> {
    let Ok(v) = serde_json::from_str::<Value>(text) else {
        return vec![(
            control("", "", "9", "OPSP9999", "JSON PARSING ERROR : invalid json"),
            false,
        )];
    };
    let Some(header) = v.get("header") else {
        return vec![(
            control(
                "",
                "",
                "9",
                "OPSP9999",
                "JSON PARSING ERROR : header not found",
            ),
            false,
        )];
    };
    let input = &v["body"]["input"];
    let tr_id = s(input, "tr_id");
    let tr_key = s(input, "tr_key");
    let mut st = inner.lock();
    st.stats.subscribe_messages += 1;
    let Some(app_key) = st.approvals.get(&s(header, "approval_key")).cloned() else {
        return vec![(
            control(
                &tr_id,
                &tr_key,
                "9",
                "OPSP8997",
                "invalid approval : NOT FOUND",
            ),
            false,
        )];
    };
    let in_use = st
        .sessions
        .iter()
        .any(|s| s.id != id && s.app_key.as_deref() == Some(app_key.as_str()));
    if in_use {
        st.stats.ws_in_use_rejected += 1;
        return vec![(
            fixture!("ws_ack_already_in_use_appkey.json")
                .trim()
                .to_owned(),
            true,
        )];
    }
    let max = inner.opts.max_subscriptions;
    let Some(sess) = st.sessions.iter_mut().find(|s| s.id == id) else {
        return Vec::new();
    };
    sess.app_key = Some(app_key);
    if tr_id.is_empty() || tr_key.is_empty() {
        return vec![(
            control(&tr_id, &tr_key, "9", "OPSP9999", "invalid tr_key"),
            false,
        )];
    }
    let key = (tr_id.clone(), tr_key.clone());
    let reply = match s(header, "tr_type").as_str() {
        "1" if sess.subs.contains(&key) => {
            control(&tr_id, &tr_key, "1", "OPSP0002", "ALREADY IN SUBSCRIBE")
        }
        "1" if sess.subs.len() >= max => {
            control(&tr_id, &tr_key, "1", "OPSP0008", "MAX SUBSCRIBE OVER")
        }
        "1" => {
            sess.subs.insert(key);
            json!({"header": {"tr_id": tr_id, "tr_key": tr_key, "encrypt": "N"},
                "body": {"rt_cd": "0", "msg_cd": "OPSP0000", "msg1": "SUBSCRIBE SUCCESS",
                    "output": {"iv": "FAKEIV0123456789", "key": "FAKEKEY0123456789abcdefghijklmnop"}}})
            .to_string()
        }
        "2" => {
            sess.subs.remove(&key);
            control(&tr_id, &tr_key, "0", "OPSP0001", "UNSUBSCRIBE SUCCESS")
        }
        _ => control(
            &tr_id,
            &tr_key,
            "9",
            "OPSP9999",
            "JSON PARSING ERROR : tr_type",
        ),
    };
    vec![(reply, false)]
}

//! Fake GoldAPI.io, gold-api.com and Korea Eximbank servers on 127.0.0.1:0, speaking the
//! protocols of `shared/apis/gold.md` and `shared/apis/exim.md` with the recorded fixtures
//! (`pipelines/fixtures/`) byte for byte, switchable per test: normal answers, each documented
//! error, quota exceeded, empty days, malformed bodies, slow answers.
#![allow(dead_code)]

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use tokio::task::JoinHandle;

macro_rules! gold_fixture {
    ($name:literal) => {
        include_bytes!(concat!("../../pipelines/fixtures/gold/", $name)).as_slice()
    };
}
macro_rules! exim_fixture {
    ($name:literal) => {
        include_bytes!(concat!("../../pipelines/fixtures/exim/", $name)).as_slice()
    };
}

fn json(status: StatusCode, body: &'static [u8]) -> Response {
    (status, [(header::CONTENT_TYPE, "application/json")], body).into_response()
}

async fn serve(router: Router) -> (String, JoinHandle<()>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind fake");
    let addr = listener.local_addr().expect("fake addr");
    let handle = tokio::spawn(async move {
        let _ = axum::serve(listener, router).await;
    });
    (format!("http://{addr}"), handle)
}

// ---- gold ---------------------------------------------------------------------------------

/// How the fake GoldAPI.io answers.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum GoldApiMode {
    /// The fixtures (and 403 `Invalid API Key` for a wrong or missing key).
    Normal,
    /// Over the monthly quota, answered with this status (429 or 403; unconfirmed which).
    QuotaExceeded(u16),
    /// An outage: 502 with an HTML page.
    ServerError,
    /// 200 with a truncated body.
    Malformed,
    /// The normal answer after this delay.
    Slow(Duration),
}

/// How the fake gold-api.com answers.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum FallbackMode {
    /// The current 8-field XAU answer (float-noise price) and the 5-field XAG answer.
    Normal,
    ServerError,
}

struct GoldState {
    key: String,
    mode: Mutex<GoldApiMode>,
    fallback: Mutex<FallbackMode>,
    goldapi_calls: AtomicU32,
    fallback_calls: AtomicU32,
}

/// GoldAPI.io (`goldapi_url`, `…/api`) and gold-api.com (`fallback_url`) on one port.
pub struct FakeGold {
    pub goldapi_url: String,
    pub fallback_url: String,
    state: Arc<GoldState>,
    handle: JoinHandle<()>,
}

impl FakeGold {
    pub async fn start(key: &str, mode: GoldApiMode) -> FakeGold {
        let state = Arc::new(GoldState {
            key: key.to_owned(),
            mode: Mutex::new(mode),
            fallback: Mutex::new(FallbackMode::Normal),
            goldapi_calls: AtomicU32::new(0),
            fallback_calls: AtomicU32::new(0),
        });
        let router = Router::new()
            .route("/api/{metal}/{currency}", get(goldapi))
            .route("/price/{symbol}", get(gold_api_com))
            .with_state(state.clone());
        let (base, handle) = serve(router).await;
        FakeGold {
            goldapi_url: format!("{base}/api"),
            fallback_url: base,
            state,
            handle,
        }
    }
    pub fn set_mode(&self, mode: GoldApiMode) {
        *self.state.mode.lock().expect("lock") = mode;
    }
    pub fn set_fallback(&self, mode: FallbackMode) {
        *self.state.fallback.lock().expect("lock") = mode;
    }
    pub fn goldapi_calls(&self) -> u32 {
        self.state.goldapi_calls.load(Ordering::SeqCst)
    }
    pub fn fallback_calls(&self) -> u32 {
        self.state.fallback_calls.load(Ordering::SeqCst)
    }
}

impl Drop for FakeGold {
    fn drop(&mut self) {
        self.handle.abort();
    }
}

async fn goldapi(
    State(st): State<Arc<GoldState>>,
    Path((metal, currency)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    st.goldapi_calls.fetch_add(1, Ordering::SeqCst);
    let key_ok = headers
        .get("x-access-token")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|k| k == st.key);
    if !key_ok {
        return json(
            StatusCode::FORBIDDEN,
            gold_fixture!("goldapi_error_403_invalid_key.json"),
        );
    }
    let mode = *st.mode.lock().expect("lock");
    let ok = match (metal.as_str(), currency.as_str()) {
        ("XAU", "USD") => gold_fixture!("goldapi_xau_usd_ok.json"),
        ("XAG", "USD") => gold_fixture!("goldapi_xag_usd_ok.json"),
        _ => return json(StatusCode::BAD_REQUEST, br#"{"error":"Invalid symbol"}"#),
    };
    match mode {
        GoldApiMode::Normal => json(StatusCode::OK, ok),
        GoldApiMode::QuotaExceeded(code) => json(
            StatusCode::from_u16(code).unwrap_or(StatusCode::TOO_MANY_REQUESTS),
            gold_fixture!("goldapi_error_quota_exceeded.json"),
        ),
        GoldApiMode::ServerError => (
            StatusCode::BAD_GATEWAY,
            [(header::CONTENT_TYPE, "text/html")],
            "<html><body><h1>502 Bad Gateway</h1></body></html>",
        )
            .into_response(),
        GoldApiMode::Malformed => json(StatusCode::OK, &ok[..120]),
        GoldApiMode::Slow(d) => {
            tokio::time::sleep(d).await;
            json(StatusCode::OK, ok)
        }
    }
}

async fn gold_api_com(State(st): State<Arc<GoldState>>, Path(symbol): Path<String>) -> Response {
    st.fallback_calls.fetch_add(1, Ordering::SeqCst);
    if *st.fallback.lock().expect("lock") == FallbackMode::ServerError {
        return (StatusCode::SERVICE_UNAVAILABLE, "<html>503</html>").into_response();
    }
    match symbol.as_str() {
        "XAU" => json(
            StatusCode::OK,
            gold_fixture!("goldapicom_xau_ok_8fields.json"),
        ),
        "XAG" => json(StatusCode::OK, gold_fixture!("goldapicom_xag_ok.json")),
        _ => json(
            StatusCode::NOT_FOUND,
            gold_fixture!("goldapicom_error_unknown_symbol.json"),
        ),
    }
}

// ---- Eximbank -----------------------------------------------------------------------------

struct EximState {
    key: String,
    /// `searchdate`s answered with the business-day fixture; every other date is `[]`.
    ok_dates: Mutex<HashSet<String>>,
    /// `searchdate`s answered with the truncated body.
    malformed_dates: Mutex<HashSet<String>>,
    /// Answer every call with this result code's error (2, 3, 4).
    force_code: Mutex<Option<i64>>,
    daily_limit: u32,
    /// Calls per (key, KST day).
    calls: Mutex<HashMap<(String, String), u32>>,
    /// Every `searchdate` asked, in order.
    asked: Mutex<Vec<String>>,
}

/// The Eximbank AP01 endpoint (`url`, full path up to `exchangeJSON`).
pub struct FakeExim {
    pub url: String,
    state: Arc<EximState>,
    handle: JoinHandle<()>,
}

impl FakeExim {
    pub async fn start(key: &str, daily_limit: u32) -> FakeExim {
        let state = Arc::new(EximState {
            key: key.to_owned(),
            ok_dates: Mutex::new(HashSet::new()),
            malformed_dates: Mutex::new(HashSet::new()),
            force_code: Mutex::new(None),
            daily_limit,
            calls: Mutex::new(HashMap::new()),
            asked: Mutex::new(Vec::new()),
        });
        let router = Router::new()
            .route("/site/program/financial/exchangeJSON", get(exim))
            .with_state(state.clone());
        let (base, handle) = serve(router).await;
        FakeExim {
            url: format!("{base}/site/program/financial/exchangeJSON"),
            state,
            handle,
        }
    }
    pub fn ok_on(&self, yyyymmdd: &str) {
        self.state
            .ok_dates
            .lock()
            .expect("lock")
            .insert(yyyymmdd.to_owned());
    }
    pub fn malformed_on(&self, yyyymmdd: &str) {
        self.state
            .malformed_dates
            .lock()
            .expect("lock")
            .insert(yyyymmdd.to_owned());
    }
    pub fn force_code(&self, code: Option<i64>) {
        *self.state.force_code.lock().expect("lock") = code;
    }
    pub fn asked(&self) -> Vec<String> {
        self.state.asked.lock().expect("lock").clone()
    }
}

impl Drop for FakeExim {
    fn drop(&mut self) {
        self.handle.abort();
    }
}

fn exim_json(body: &'static [u8]) -> Response {
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "application/json;charset=UTF-8")],
        body,
    )
        .into_response()
}

fn kst_today() -> String {
    sise_pipelines::exim::kst_today(chrono::Utc::now())
        .format("%Y%m%d")
        .to_string()
}

async fn exim(
    State(st): State<Arc<EximState>>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let key = q.get("authkey").cloned().unwrap_or_default();
    let date = q.get("searchdate").cloned().unwrap_or_else(kst_today);
    st.asked.lock().expect("lock").push(date.clone());
    if key != st.key {
        return exim_json(exim_fixture!("ap01_result3_auth_error.json"));
    }
    if q.get("data").map(String::as_str) != Some("AP01") {
        return exim_json(exim_fixture!("ap01_result2_data_code_error.json"));
    }
    let used = {
        let mut calls = st.calls.lock().expect("lock");
        let n = calls.entry((key, kst_today())).or_insert(0);
        *n += 1;
        *n
    };
    if used > st.daily_limit {
        return exim_json(exim_fixture!("ap01_result4_daily_limit.json"));
    }
    match *st.force_code.lock().expect("lock") {
        Some(2) => return exim_json(exim_fixture!("ap01_result2_data_code_error.json")),
        Some(3) => return exim_json(exim_fixture!("ap01_result3_auth_error.json")),
        Some(4) => return exim_json(exim_fixture!("ap01_result4_daily_limit.json")),
        _ => {}
    }
    if st.malformed_dates.lock().expect("lock").contains(&date) {
        return exim_json(exim_fixture!("ap01_malformed_truncated.txt"));
    }
    if st.ok_dates.lock().expect("lock").contains(&date) {
        return exim_json(exim_fixture!("ap01_20260312_ok.json"));
    }
    exim_json(exim_fixture!("ap01_weekend_empty.json"))
}

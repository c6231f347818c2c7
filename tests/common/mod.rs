//! Test support: start a real sise on port 0 in its own namespace (`test_<uuid>`: its own
//! streams, Redis keys and PostgreSQL schema) against the machine's NATS, Redis and PostgreSQL,
//! and clean everything up afterwards, even when the test fails.
#![allow(dead_code)]

use std::future::Future;
use std::time::Duration;

use futures::{SinkExt, StreamExt};
use serde_json::Value;
use sise::{App, Config, Stages};
use sise_bus::{Bus, InstrumentId, Namespace, SourceName, Tick, SCHEMA_VERSION};
use tokio::task::JoinHandle;
use tokio_tungstenite::tungstenite::Message;
use tokio_util::sync::CancellationToken;

pub fn test_config(sources: &[&str]) -> Config {
    let mut c = Config::defaults();
    let ns = format!("test_{}", uuid::Uuid::new_v4().simple());
    c.namespace = Namespace::parse(&ns[..31]).expect("namespace");
    c.http_addr = "127.0.0.1:0".parse().expect("addr");
    c.sources = sources
        .iter()
        .map(|s| SourceName::parse(s).expect("source"))
        .collect();
    c.rate_limit = 0;
    c.web_dir = std::env::temp_dir().join("sise-test-no-web");
    if let Ok(url) = std::env::var("SISE_NATS_URL") {
        c.nats_url = url;
    }
    if let Ok(url) = std::env::var("SISE_REDIS_URL") {
        c.redis_url = url;
    }
    if let Ok(url) = std::env::var("SISE_DATABASE_URL") {
        c.database_url = url.into();
    }
    c
}

/// A running sise and the handles to stop and clean it.
pub struct TestApp {
    pub config: Config,
    pub base: String,
    pub ws_url: String,
    pub bus: Bus,
    pub app_state: Option<sise::edge::AppState>,
    pub metrics: sise_bus::ConsumerMetrics,
    cancel: CancellationToken,
    pub handle: Option<JoinHandle<anyhow::Result<()>>>,
}

pub async fn spawn_app(config: Config, stages: Stages) -> TestApp {
    if std::env::var_os("TEST_LOG").is_some() {
        sise::telemetry::init();
    }
    let app = App::build(config.clone(), stages).await.expect("build app");
    let port = app.port();
    let bus = app.bus().clone();
    let app_state = app.edge();
    let metrics = app.consumer_metrics().clone();
    let cancel = CancellationToken::new();
    let c = cancel.clone();
    let handle = tokio::spawn(app.run_until(async move { c.cancelled().await }));
    TestApp {
        base: format!("http://127.0.0.1:{port}"),
        ws_url: format!("ws://127.0.0.1:{port}/ws"),
        config,
        bus,
        app_state,
        metrics,
        cancel,
        handle: Some(handle),
    }
}

impl TestApp {
    pub fn ns(&self) -> &Namespace {
        &self.config.namespace
    }

    /// Graceful stop.
    pub async fn stop(&mut self) {
        self.cancel.cancel();
        if let Some(h) = self.handle.take() {
            let _ = tokio::time::timeout(Duration::from_secs(15), h).await;
        }
    }

    /// Stop without any grace (like `kill -9` of the stage): every task is dropped mid-flight.
    pub fn kill(&mut self) {
        if let Some(h) = self.handle.take() {
            h.abort();
        }
    }

    pub async fn get(&self, path: &str) -> (u16, Value) {
        let resp = reqwest::get(format!("{}{}", self.base, path))
            .await
            .expect("http");
        let status = resp.status().as_u16();
        let body = resp.json::<Value>().await.unwrap_or(Value::Null);
        (status, body)
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        self.cancel.cancel();
        if let Some(h) = self.handle.take() {
            h.abort();
        }
        cleanup(&self.config);
    }
}

/// Delete a namespace's streams, Redis keys and schema (on its own runtime, so it also runs
/// from `Drop` after a failed assertion).
pub fn cleanup(config: &Config) {
    let config = config.clone();
    let _ = std::thread::spawn(move || {
        let Ok(rt) = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
        else {
            return;
        };
        rt.block_on(async move {
            if let Ok(bus) = Bus::connect(&config.nats_url, config.namespace.clone()).await {
                let _ = sise_bus::stream::delete_streams(&bus.js, &config.namespace).await;
            }
            if let Ok(mut r) = sise::app::connect_redis(&config.redis_url).await {
                let _ = sise_projections::latest::delete_namespace(&mut r, &config.namespace).await;
            }
            let _ =
                sise_projections::db::drop_schema(config.database_url(), &config.namespace).await;
        });
    })
    .join();
}

/// Wait (bounded) until `check` returns `Some`.
pub async fn wait_for<T, F, Fut>(what: &str, timeout: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        if let Some(v) = check().await {
            return v;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

pub fn id(s: &str) -> InstrumentId {
    InstrumentId::parse(s).expect("id")
}

/// A tick from a test source.
pub fn tick(instrument: &str, ts: i64, price: f64, volume: f64, seq: u64) -> Tick {
    Tick {
        v: SCHEMA_VERSION,
        instrument: id(instrument),
        price,
        prev_close: Some(100.0),
        change: Some(price - 100.0),
        change_rate: Some((price - 100.0) / 100.0),
        volume,
        day_volume: Some(volume * seq as f64),
        ts,
        ingest_ts: ts + 3,
        source: SourceName::parse("testsrc").expect("source"),
        seq,
        backfill: false,
        inputs: Vec::new(),
    }
}

pub type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

pub async fn ws_connect(app: &TestApp) -> Ws {
    let (ws, _) = tokio_tungstenite::connect_async(app.ws_url.as_str())
        .await
        .expect("ws connect");
    ws
}

pub async fn ws_send(ws: &mut Ws, v: Value) {
    ws.send(Message::Text(v.to_string().into()))
        .await
        .expect("ws send");
}

/// The next JSON text frame (pings and pongs skipped), or `None` on close / timeout.
pub async fn ws_next(ws: &mut Ws, timeout: Duration) -> Option<Value> {
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        match tokio::time::timeout(left, ws.next()).await {
            Ok(Some(Ok(Message::Text(t)))) => return serde_json::from_str(t.as_str()).ok(),
            Ok(Some(Ok(Message::Ping(_) | Message::Pong(_)))) => continue,
            _ => return None,
        }
    }
}

/// The quotes carried by a tick or ticks frame.
pub fn frame_quotes(frame: &Value) -> Vec<Value> {
    match frame["type"].as_str() {
        Some("tick") => vec![frame.clone()],
        Some("ticks") => frame["ticks"].as_array().cloned().unwrap_or_default(),
        _ => Vec::new(),
    }
}

/// Sum of `v` over a candles answer.
pub fn candle_volume(body: &Value) -> f64 {
    body["candles"]
        .as_array()
        .map(|c| c.iter().filter_map(|c| c["v"].as_f64()).sum())
        .unwrap_or(0.0)
}

/// A metric's value from the app's `/metrics`: the sum over the series of `name` whose labels
/// contain every one of `labels` (e.g. `source="gold"`).
pub async fn metric(app: &TestApp, name: &str, labels: &[&str]) -> f64 {
    let text = reqwest::get(format!("{}/metrics", app.base))
        .await
        .expect("metrics")
        .text()
        .await
        .expect("metrics body");
    text.lines()
        .filter(|l| l.starts_with(&format!("{name}{{")))
        .filter(|l| labels.iter().all(|p| l.contains(p)))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

/// Wait (bounded) until `/api/v1/sources` shows `source` in `state` with `detail_has` in its
/// detail, and return that entry.
pub async fn source_status(app: &TestApp, source: &str, state: &str, detail_has: &str) -> Value {
    wait_for(
        &format!("{source} {state} ({detail_has})"),
        Duration::from_secs(20),
        || async {
            let (_, body) = app.get("/api/v1/sources").await;
            body["sources"]
                .as_array()?
                .iter()
                .find(|s| {
                    s["source"] == source
                        && s["state"] == state
                        && s["detail"].as_str().is_some_and(|d| d.contains(detail_has))
                })
                .cloned()
        },
    )
    .await
}

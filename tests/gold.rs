//! The gold source end to end: a spawned sise (`SISE_SOURCES=gold`, its own namespace on the
//! real NATS, Redis and PostgreSQL) pointed at fake GoldAPI.io and gold-api.com servers
//! (`tests/fake_http`). GoldAPI ticks reach `/api/v1/quotes` with GoldAPI's own previous close
//! and change; 403, 429, 5xx, a malformed body and a late answer switch to the fallback, whose
//! ticks name it, and `/api/v1/sources` says the fallback is in use; the key never shows.

mod common;
mod fake_http;

use std::time::Duration;

use common::*;
use fake_http::{FakeGold, FallbackMode, GoldApiMode};
use secrecy::SecretString;
use serde_json::Value;
use sise::Stages;

const T: Duration = Duration::from_secs(30);
const KEY: &str = "goldapi-test-key-5f1c9a";
const XAU: &str = "metal.spot.XAU";
const XAG: &str = "metal.spot.XAG";

async fn start(fake: &FakeGold, key: Option<&str>) -> TestApp {
    let mut config = test_config(&["gold"]);
    config.goldapi_url = fake.goldapi_url.clone();
    config.gold_fallback_url = fake.fallback_url.clone();
    config.goldapi_key = key.map(|k| SecretString::from(k.to_owned()));
    spawn_app(config, Stages::ALL).await
}

async fn quote_from(app: &TestApp, id: &str, source: &str) -> Value {
    wait_for(&format!("a {id} quote from {source}"), T, || async {
        let (s, body) = app.get(&format!("/api/v1/quotes?ids={id}")).await;
        let q = body["quotes"].as_array()?.first()?.clone();
        (s == 200 && q["source"] == source).then_some(q)
    })
    .await
}

fn assert_no_key(v: &Value) {
    let text = v.to_string();
    assert!(!text.contains(KEY), "the key leaked: {text}");
}

/// GoldAPI.io answers: both metals reach the quotes with GoldAPI's exchange time, previous
/// close, change and change rate (a fraction), the tick naming `goldapi`; the source is up.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn goldapi_ticks_reach_quotes() {
    let fake = FakeGold::start(KEY, GoldApiMode::Normal).await;
    let app = start(&fake, Some(KEY)).await;
    let xau = quote_from(&app, XAU, "goldapi").await;
    assert_eq!(xau["price"].as_f64(), Some(4012.35));
    assert_eq!(xau["prev_close"].as_f64(), Some(3985.1));
    assert_eq!(xau["change"].as_f64(), Some(27.25));
    assert_eq!(xau["change_rate"].as_f64(), Some(0.0068));
    assert_eq!(xau["ts"].as_i64(), Some(1_773_293_402_000));
    let xag = quote_from(&app, XAG, "goldapi").await;
    assert_eq!(xag["price"].as_f64(), Some(49.12));
    let st = source_status(&app, "gold", "up", "GoldAPI.io every 18.6 h").await;
    assert_no_key(&st);
    // One round: one request per metal, no fallback needed yet.
    assert_eq!(fake.goldapi_calls(), 2);
    assert_eq!(fake.fallback_calls(), 0);
    assert!(metric(&app, "sise_ticks_ingested_total", &["source=\"gold\""]).await >= 2.0);
}

/// Quota exceeded (429): the fallback serves (its float noise rounded away), the status says
/// the fallback is in use and why, and GoldAPI is not asked again in this round.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quota_429_switches_to_the_fallback() {
    let fake = FakeGold::start(KEY, GoldApiMode::QuotaExceeded(429)).await;
    let app = start(&fake, Some(KEY)).await;
    let xau = quote_from(&app, XAU, "goldapicom").await;
    assert_eq!(xau["price"].as_f64(), Some(4012.35));
    let xag = quote_from(&app, XAG, "goldapicom").await;
    assert_eq!(xag["price"].as_f64(), Some(49.121));
    let st = source_status(&app, "gold", "degraded", "fallback in use").await;
    let detail = st["detail"].as_str().unwrap_or_default();
    assert!(
        detail.contains("quota exceeded") && detail.contains("HTTP 429"),
        "{detail}"
    );
    assert_eq!(fake.goldapi_calls(), 1, "no more quota spent after a 429");
    assert!(
        metric(
            &app,
            "sise_source_errors_total",
            &["source=\"gold\"", "kind=\"http_429\""]
        )
        .await
            >= 1.0
    );
}

/// A wrong key (403 `Invalid API Key`): fallback, a status with the reason, and neither the
/// key sent nor the real key in any status text.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_key_403_switches_to_the_fallback_without_leaking_the_key() {
    let fake = FakeGold::start(KEY, GoldApiMode::Normal).await;
    let wrong = "goldapi-WRONG-key-77";
    let app = start(&fake, Some(wrong)).await;
    quote_from(&app, XAU, "goldapicom").await;
    let st = source_status(&app, "gold", "degraded", "fallback in use").await;
    let detail = st["detail"].as_str().unwrap_or_default();
    assert!(
        detail.contains("HTTP 403") && detail.contains("Invalid API Key"),
        "{detail}"
    );
    let (_, all) = app.get("/api/v1/sources").await;
    assert!(!all.to_string().contains(wrong), "{all}");
}

/// No key at all: only gold-api.com is asked; the status says the fallback is in use.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_key_uses_the_fallback() {
    let fake = FakeGold::start(KEY, GoldApiMode::Normal).await;
    let app = start(&fake, None).await;
    let xau = quote_from(&app, XAU, "goldapicom").await;
    // gold-api.com has no previous close; none is invented.
    assert!(xau["prev_close"].is_null(), "{xau}");
    source_status(
        &app,
        "gold",
        "up",
        "fallback in use: gold-api.com (no GOLDAPI_KEY set)",
    )
    .await;
    assert_eq!(fake.goldapi_calls(), 0);
}

/// GoldAPI slower than the request timeout (late): the fallback serves.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn late_goldapi_switches_to_the_fallback() {
    let fake = FakeGold::start(KEY, GoldApiMode::Slow(Duration::from_secs(60))).await;
    let app = start(&fake, Some(KEY)).await;
    quote_from(&app, XAU, "goldapicom").await;
    source_status(&app, "gold", "degraded", "GoldAPI.io is late").await;
    assert!(
        metric(
            &app,
            "sise_source_errors_total",
            &["source=\"gold\"", "kind=\"timeout\""]
        )
        .await
            >= 1.0
    );
}

/// An outage page (502) and a truncated body: each switches to the fallback; the bad body is
/// skipped and counted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_error_and_malformed_body_switch_and_are_counted() {
    let fake = FakeGold::start(KEY, GoldApiMode::ServerError).await;
    let app = start(&fake, Some(KEY)).await;
    quote_from(&app, XAU, "goldapicom").await;
    source_status(&app, "gold", "degraded", "HTTP 502").await;
    drop(app);

    let fake = FakeGold::start(KEY, GoldApiMode::Malformed).await;
    let app = start(&fake, Some(KEY)).await;
    quote_from(&app, XAU, "goldapicom").await;
    source_status(&app, "gold", "degraded", "unexpected answer").await;
    assert!(metric(&app, "sise_source_parse_errors_total", &["source=\"gold\""]).await >= 1.0);
}

/// Over the quota answered with 403 (which status GoldAPI uses is unconfirmed): the same
/// switch, with the server's reason.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quota_403_switches_to_the_fallback() {
    let fake = FakeGold::start(KEY, GoldApiMode::QuotaExceeded(403)).await;
    let app = start(&fake, Some(KEY)).await;
    quote_from(&app, XAU, "goldapicom").await;
    let st = source_status(&app, "gold", "degraded", "fallback in use").await;
    let detail = st["detail"].as_str().unwrap_or_default();
    assert!(
        detail.contains("HTTP 403") && detail.contains("exceeded your monthly request quota"),
        "{detail}"
    );
    assert_no_key(&st);
}

/// Both providers failing: the source is down and says why; no quote is invented.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn both_providers_failing_is_down() {
    let fake = FakeGold::start(KEY, GoldApiMode::ServerError).await;
    fake.set_fallback(FallbackMode::ServerError);
    let app = start(&fake, Some(KEY)).await;
    let st = source_status(&app, "gold", "down", "gold-api.com failed: HTTP 503").await;
    let detail = st["detail"].as_str().unwrap_or_default();
    assert!(detail.contains("HTTP 502"), "{detail}");
    let (_, body) = app.get(&format!("/api/v1/quotes?ids={XAU},{XAG}")).await;
    assert_eq!(body["quotes"].as_array().map(Vec::len), Some(0), "{body}");
}

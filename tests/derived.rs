//! Derived instruments end to end: `gold` and `exim` against their fakes (`tests/fake_http`);
//! gold and silver in KRW per gram and per 돈 reach `/api/v1/quotes`, computed from the metal
//! price and USD/KRW, and follow a change of either input.

mod common;
mod fake_http;

use std::time::Duration;

use chrono::{Days, Utc};
use common::*;
use fake_http::{FakeExim, FakeGold, GoldApiMode};
use secrecy::SecretString;
use serde_json::Value;
use sise::Stages;
use sise_bus::{SourceName, Tick, SCHEMA_VERSION};
use sise_pipelines::derived::{GRAMS_PER_DON, GRAMS_PER_TROY_OUNCE};
use sise_pipelines::exim::kst_today;

const T: Duration = Duration::from_secs(30);
const KEY: &str = "derived-test-key";

async fn quote(app: &TestApp, id: &str, pred: impl Fn(&Value) -> bool) -> Value {
    wait_for(&format!("a {id} quote"), T, || async {
        let (s, body) = app.get(&format!("/api/v1/quotes?ids={id}")).await;
        let q = body["quotes"].as_array()?.first()?.clone();
        (s == 200 && pred(&q)).then_some(q)
    })
    .await
}

fn near(a: Option<f64>, b: f64) -> bool {
    a.is_some_and(|a| (a - b).abs() < 0.011)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gold_and_silver_in_krw_per_gram_and_per_don() {
    let gold = FakeGold::start(KEY, GoldApiMode::Normal).await;
    let exim = FakeExim::start(KEY, 1000).await;
    let today = kst_today(Utc::now());
    exim.ok_on(&today.format("%Y%m%d").to_string());
    let yesterday = today.checked_sub_days(Days::new(1)).expect("date");
    exim.ok_on(&yesterday.format("%Y%m%d").to_string());
    let mut config = test_config(&["gold", "exim"]);
    config.goldapi_url = gold.goldapi_url.clone();
    config.gold_fallback_url = gold.fallback_url.clone();
    config.goldapi_key = Some(SecretString::from(KEY.to_owned()));
    config.exim_url = exim.url.clone();
    config.exim_auth_key = Some(SecretString::from(KEY.to_owned()));
    let app = spawn_app(config, Stages::ALL).await;

    let per_g = |usd: f64, krw: f64| ((usd * krw / GRAMS_PER_TROY_OUNCE) * 100.0).round() / 100.0;
    let want = per_g(4012.35, 1452.3);
    let g = quote(&app, "derived.metal.XAUKRW-G", |q| {
        near(q["price"].as_f64(), want)
    })
    .await;
    assert_eq!(g["source"], "derived");
    let want_don =
        ((4012.35 * 1452.3 / GRAMS_PER_TROY_OUNCE * GRAMS_PER_DON) * 100.0).round() / 100.0;
    quote(&app, "derived.metal.XAUKRW-DON", |q| {
        near(q["price"].as_f64(), want_don)
    })
    .await;
    let silver = per_g(49.12, 1452.3);
    quote(&app, "derived.metal.XAGKRW-G", |q| {
        near(q["price"].as_f64(), silver)
    })
    .await;
    // The previous close from both inputs' previous closes.
    quote(&app, "derived.metal.XAUKRW-G", |q| {
        near(q["prev_close"].as_f64(), per_g(3985.1, 1452.3))
    })
    .await;

    // A new USD/KRW tick recomputes the derived prices.
    let mut fx = Tick {
        v: SCHEMA_VERSION,
        instrument: id("fx.spot.USDKRW"),
        price: 1500.0,
        prev_close: Some(1452.3),
        change: Some(47.7),
        change_rate: Some(47.7 / 1452.3),
        volume: 0.0,
        day_volume: None,
        ts: sise_bus::now_ms(),
        ingest_ts: sise_bus::now_ms(),
        source: SourceName::parse("testsrc").expect("source"),
        seq: 1,
        backfill: false,
        inputs: Vec::new(),
    };
    fx.ingest_ts = fx.ts;
    app.bus.publish_tick(&fx).await.expect("publish");
    let want = per_g(4012.35, 1500.0);
    quote(&app, "derived.metal.XAUKRW-G", |q| {
        near(q["price"].as_f64(), want)
    })
    .await;
}

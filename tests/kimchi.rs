//! The kimchi premium end to end: Upbit (`upbit`), the USD reference (`coinbase`) and USD/KRW
//! (`exim`) against their fakes; `derived.kimchi.BTC` and `…ETH` reach `/api/v1/quotes` and
//! WebSocket subscribers as a percentage with their inputs (ids and exchange times), follow a
//! change of any input, and may go negative.

mod common;
mod fake_http;

use std::time::Duration;

use chrono::{Days, Utc};
use common::*;
use fake_http::FakeExim;
use secrecy::SecretString;
use serde_json::{json, Value};
use sise::Stages;
use sise_pipelines::coinbase::fake::{FakeCoinbase, Forced};
use sise_pipelines::exim::kst_today;
use sise_pipelines::upbit::fake::{FakeOptions, FakeUpbit};

const T: Duration = Duration::from_secs(30);
const KEY: &str = "kimchi-test-key";
const KIMCHI_BTC: &str = "derived.kimchi.BTC";
const KIMCHI_ETH: &str = "derived.kimchi.ETH";

async fn quote(app: &TestApp, id: &str, pred: impl Fn(&Value) -> bool) -> Value {
    wait_for(&format!("a {id} quote"), T, || async {
        let (s, body) = app.get(&format!("/api/v1/quotes?ids={id}")).await;
        let q = body["quotes"].as_array()?.first()?.clone();
        (s == 200 && pred(&q)).then_some(q)
    })
    .await
}

fn premium(krw: f64, usd: f64, fx: f64) -> f64 {
    ((krw / (usd * fx) - 1.0) * 100.0 * 100.0).round() / 100.0
}

/// Each input's id and the exchange time its own quote shows.
async fn input_times(app: &TestApp, ids: &[&str]) -> Value {
    let mut out = Vec::new();
    for id in ids {
        let (_, body) = app.get(&format!("/api/v1/quotes?ids={id}")).await;
        out.push(json!({"id": id, "ts": body["quotes"][0]["ts"]}));
    }
    Value::Array(out)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn premium_of_upbit_over_the_usd_reference_with_its_inputs() {
    let upbit = FakeUpbit::start(FakeOptions::default())
        .await
        .expect("fake upbit");
    let coinbase = FakeCoinbase::start().await.expect("fake coinbase");
    let exim = FakeExim::start(KEY, 1000).await;
    let today = kst_today(Utc::now());
    exim.ok_on(&today.format("%Y%m%d").to_string());
    let yesterday = today.checked_sub_days(Days::new(1)).expect("date");
    exim.ok_on(&yesterday.format("%Y%m%d").to_string());

    let mut config = test_config(&["upbit", "coinbase", "exim"]);
    config.upbit_rest_url = upbit.rest_url.clone();
    config.upbit_ws_url = upbit.ws_url.clone();
    config.coinbase_url = coinbase.url.clone();
    config.exim_url = exim.url.clone();
    config.exim_auth_key = Some(SecretString::from(KEY.to_owned()));
    let app = spawn_app(config, Stages::ALL).await;

    // The fixtures: KRW-BTC 130,250,000, BTC-USD 88,350.12, USD/KRW 1,452.30 → +1.51 %.
    let btc = quote(&app, KIMCHI_BTC, |q| {
        q["price"].as_f64() == Some(premium(130_250_000.0, 88_350.12, 1452.3))
    })
    .await;
    assert_eq!(btc["price"].as_f64(), Some(1.51));
    assert_eq!(btc["source"], "derived");
    assert_eq!(btc["market"], "open");
    assert!(
        btc["prev_close"].is_null(),
        "a premium has no previous close"
    );
    let want = input_times(
        &app,
        &[
            "crypto.upbit.KRW-BTC",
            "crypto.coinbase.BTC-USD",
            "fx.spot.USDKRW",
        ],
    )
    .await;
    assert_eq!(btc["inputs"], want, "{btc}");
    assert_eq!(
        btc["inputs"][1]["ts"], 1_773_293_414_123_i64,
        "Coinbase's trade time"
    );
    let eth = quote(&app, KIMCHI_ETH, |q| q["price"].as_f64().is_some()).await;
    assert_eq!(eth["price"].as_f64(), Some(1.54));
    // A market's own quote carries no inputs.
    let (_, usd) = app.get("/api/v1/quotes?ids=crypto.coinbase.BTC-USD").await;
    assert_eq!(usd["quotes"][0]["price"].as_f64(), Some(88_350.12));
    assert!(usd["quotes"][0].get("inputs").is_none(), "{usd}");

    // A subscriber sees the premium move when the USD reference moves, below zero too.
    let mut ws = ws_connect(&app).await;
    ws_send(&mut ws, json!({"op": "subscribe", "ids": [KIMCHI_BTC]})).await;
    let snap = ws_next(&mut ws, T).await.expect("snapshot");
    assert_eq!(snap["type"], "snapshot");
    assert_eq!(
        snap["quotes"][0]["inputs"].as_array().map(Vec::len),
        Some(3)
    );
    coinbase.trade("BTC-USD", "90000.00");
    let want = premium(130_250_000.0, 90_000.0, 1452.3);
    assert!(want < 0.0);
    let tick = loop {
        let f = ws_next(&mut ws, T).await.expect("a tick frame");
        if let Some(q) = frame_quotes(&f)
            .into_iter()
            .find(|q| q["price"].as_f64() == Some(want))
        {
            break q;
        }
    };
    assert_eq!(tick["id"], KIMCHI_BTC);
    assert_eq!(tick["inputs"][1]["id"], "crypto.coinbase.BTC-USD");
    let new_ts = tick["inputs"][1]["ts"].as_i64().unwrap_or_default();
    assert!(new_ts > 1_773_293_414_123, "the new trade's time: {tick}");
    quote(&app, KIMCHI_BTC, |q| q["price"].as_f64() == Some(want)).await;

    // An Upbit trade recomputes it as well.
    upbit.trade("KRW-BTC", 131_000_000.0, 0.01);
    let want = premium(131_000_000.0, 90_000.0, 1452.3);
    quote(&app, KIMCHI_BTC, |q| q["price"].as_f64() == Some(want)).await;

    // The reference failing (429, then garbage): counted, the status says so, the last
    // premium stays.
    coinbase.force(&[Forced::RateLimited]);
    source_status(&app, "coinbase", "degraded", "rate limited").await;
    coinbase.force(&[Forced::Truncated]);
    wait_for("a counted parse error", T, || async {
        (metric(
            &app,
            "sise_source_parse_errors_total",
            &["source=\"coinbase\""],
        )
        .await
            >= 1.0)
            .then_some(())
    })
    .await;
    source_status(&app, "coinbase", "up", "Coinbase Exchange every 2 s").await;
    let (_, body) = app.get(&format!("/api/v1/quotes?ids={KIMCHI_BTC}")).await;
    assert_eq!(body["quotes"][0]["price"].as_f64(), Some(want));
}

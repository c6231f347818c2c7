//! The Eximbank source end to end: a spawned sise (`SISE_SOURCES=exim`, its own namespace on
//! the real NATS, Redis and PostgreSQL) pointed at a fake AP01 endpoint (`tests/fake_http`).
//! The day's USD/KRW reaches `/api/v1/quotes`; empty days keep the last business day's rate,
//! marked as of that day; result codes 2/3/4 show as `down` with the reason; a truncated body
//! is skipped and counted; the key never shows in a status or an error.

mod common;
mod fake_http;

use std::time::Duration;

use chrono::{Days, NaiveDate, Utc};
use common::*;
use fake_http::FakeExim;
use secrecy::SecretString;
use serde_json::Value;
use sise::Stages;
use sise_pipelines::exim::{as_of_ms, kst_today};

const T: Duration = Duration::from_secs(30);
const KEY: &str = "exim-test-key-9c2e71";
const USDKRW: &str = "fx.spot.USDKRW";

fn day(back: u64) -> NaiveDate {
    kst_today(Utc::now())
        .checked_sub_days(Days::new(back))
        .expect("date")
}

fn ymd(d: NaiveDate) -> String {
    d.format("%Y%m%d").to_string()
}

async fn start(url: &str, key: &str) -> TestApp {
    let mut config = test_config(&["exim"]);
    config.exim_url = url.to_owned();
    config.exim_auth_key = Some(SecretString::from(key.to_owned()));
    spawn_app(config, Stages::ALL).await
}

async fn usdkrw(app: &TestApp) -> Value {
    wait_for("a USD/KRW quote", T, || async {
        let (s, body) = app.get(&format!("/api/v1/quotes?ids={USDKRW}")).await;
        let q = body["quotes"].as_array()?.first()?.clone();
        (s == 200).then_some(q)
    })
    .await
}

/// Today's rates: USD/KRW 1,452.3 (a comma string) as a JSON number, as of 11:00 KST today,
/// with the previous business day's rate as the previous close; few calls.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn todays_usdkrw_reaches_quotes() {
    let fake = FakeExim::start(KEY, 1000).await;
    fake.ok_on(&ymd(day(0)));
    fake.ok_on(&ymd(day(1)));
    let app = start(&fake.url, KEY).await;
    let q = usdkrw(&app).await;
    assert_eq!(q["price"].as_f64(), Some(1452.3));
    assert_eq!(q["source"], "exim");
    // As of 11:00 KST today, or of when they were seen if that is earlier.
    let ts = q["ts"].as_i64().unwrap_or_default();
    let as_of = as_of_ms(day(0));
    assert!(ts <= as_of && ts > as_of - 11 * 3_600_000, "{q}");
    source_status(&app, "exim", "up", &format!("rates of {}", day(0))).await;
    // The previous close comes from the previous business day (the same fixture here).
    let q = wait_for("the previous close", T, || async {
        let (_, body) = app.get(&format!("/api/v1/quotes?ids={USDKRW}")).await;
        let q = body["quotes"].as_array()?.first()?.clone();
        q["prev_close"].as_f64().is_some().then_some(q)
    })
    .await;
    assert_eq!(q["prev_close"].as_f64(), Some(1452.3));
    assert_eq!(q["change"].as_f64(), Some(0.0));
    // Start-up: today, then yesterday for the previous close (a scheduled poll may add one or
    // two if the test runs across 11:05, 11:30, 12:00 or 15:00 KST).
    let asked = fake.asked();
    assert_eq!(&asked[..2], &[ymd(day(0)), ymd(day(1))]);
    assert!(asked.len() <= 4, "{asked:?}");
}

/// Weekend, holiday or before publication: `[]` for today and the two days before; the rate of
/// three days ago is kept and marked as of that day — never zero.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn empty_days_keep_the_last_business_days_rate() {
    let fake = FakeExim::start(KEY, 1000).await;
    let last = day(3);
    fake.ok_on(&ymd(last));
    let app = start(&fake.url, KEY).await;
    let q = usdkrw(&app).await;
    assert_eq!(q["price"].as_f64(), Some(1452.3));
    assert_eq!(q["ts"].as_i64(), Some(as_of_ms(last)));
    let st = source_status(&app, "exim", "up", "last business day").await;
    assert!(
        st["detail"]
            .as_str()
            .unwrap_or_default()
            .contains(&last.to_string()),
        "{st}"
    );
    let asked = fake.asked();
    assert_eq!(
        &asked[..4],
        &[ymd(day(0)), ymd(day(1)), ymd(day(2)), ymd(last)]
    );
}

/// Result codes: 2 (DATA code, forced), 3 (a wrong key), 4 (over the daily limit) → `down`
/// with a clear reason; no quote is invented.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn result_codes_2_3_4_show_as_down_with_the_reason() {
    let fake = FakeExim::start(KEY, 1000).await;
    fake.ok_on(&ymd(day(0)));
    fake.force_code(Some(2));
    let app = start(&fake.url, KEY).await;
    source_status(&app, "exim", "down", "result 2: DATA code error").await;
    let (_, body) = app.get(&format!("/api/v1/quotes?ids={USDKRW}")).await;
    assert_eq!(body["quotes"].as_array().map(Vec::len), Some(0), "{body}");
    drop(app);

    let fake = FakeExim::start(KEY, 1000).await;
    let app = start(&fake.url, "exim-WRONG-key").await;
    let st = source_status(&app, "exim", "down", "result 3: authentication key error").await;
    assert!(!st.to_string().contains("exim-WRONG-key"));
    drop(app);

    let fake = FakeExim::start(KEY, 0).await;
    fake.ok_on(&ymd(day(0)));
    let app = start(&fake.url, KEY).await;
    source_status(&app, "exim", "down", "result 4: daily call limit reached").await;
    assert!(
        metric(
            &app,
            "sise_source_errors_total",
            &["source=\"exim\"", "kind=\"result_4\""]
        )
        .await
            >= 1.0
    );
}

/// A truncated body for today: skipped and counted; yesterday's rate is kept and the status
/// says the answer failed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_body_is_skipped_and_counted() {
    let fake = FakeExim::start(KEY, 1000).await;
    fake.malformed_on(&ymd(day(0)));
    fake.ok_on(&ymd(day(1)));
    let app = start(&fake.url, KEY).await;
    let q = usdkrw(&app).await;
    assert_eq!(q["ts"].as_i64(), Some(as_of_ms(day(1))));
    source_status(&app, "exim", "degraded", "unexpected answer").await;
    assert!(metric(&app, "sise_source_parse_errors_total", &["source=\"exim\""]).await >= 1.0);
}

/// Unreachable Eximbank: the error in the status names the failure, never the URL (whose
/// query string carries the key) nor the key.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_key_never_appears_in_errors() {
    // A port nothing listens on.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = closed.local_addr().expect("addr").port();
    drop(closed);
    let app = start(
        &format!("http://127.0.0.1:{port}/site/program/financial/exchangeJSON"),
        KEY,
    )
    .await;
    let st = source_status(&app, "exim", "down", "network error").await;
    let text = st.to_string();
    assert!(!text.contains(KEY), "{text}");
    assert!(!text.contains("authkey"), "{text}");
    assert!(!text.contains("127.0.0.1"), "{text}");
}

/// Every currency of the day, not only USD/KRW: the others are listed (named by the bank, so a
/// user finds 유로 or 엔) and quoted per one unit (JPY(100) and IDR(100) scaled).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_currency_of_the_day_is_listed_and_quoted() {
    let fake = FakeExim::start(KEY, 1000).await;
    fake.ok_on(&ymd(day(0)));
    fake.ok_on(&ymd(day(1)));
    let app = start(&fake.url, KEY).await;
    let eur = wait_for("EUR/KRW listed", T, || async {
        let (_, body) = app.get("/api/v1/instruments").await;
        body["instruments"]
            .as_array()?
            .iter()
            .find(|i| i["id"] == "fx.spot.EURKRW")
            .cloned()
    })
    .await;
    assert_eq!(eur["name_ko"], "유로 (EUR)");
    assert_eq!(eur["name_en"], "EUR/KRW");
    assert_eq!(eur["market"], "fx");
    let (_, body) = app.get("/api/v1/instruments").await;
    let ids: Vec<&str> = body["instruments"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|i| i["id"].as_str())
        .collect();
    assert!(
        !ids.contains(&"fx.spot.KRWKRW"),
        "the KRW row is not a rate"
    );
    assert_eq!(
        ids.iter().filter(|i| **i == USDKRW).count(),
        1,
        "USD/KRW stays the registry's"
    );
    let quotes = wait_for("EUR, JPY and IDR quotes", T, || async {
        let (s, body) = app
            .get("/api/v1/quotes?ids=fx.spot.EURKRW,fx.spot.JPYKRW,fx.spot.IDRKRW")
            .await;
        let q = body["quotes"].as_array()?.clone();
        (s == 200 && q.len() == 3).then_some(q)
    })
    .await;
    let price = |id: &str| {
        quotes
            .iter()
            .find(|q| q["id"] == id)
            .and_then(|q| q["price"].as_f64())
    };
    assert_eq!(price("fx.spot.EURKRW"), Some(1581.61));
    assert!((price("fx.spot.JPYKRW").unwrap() - 9.884).abs() < 1e-9);
    assert!((price("fx.spot.IDRKRW").unwrap() - 0.0877).abs() < 1e-9);
}

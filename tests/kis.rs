//! The KIS source end to end: a spawned sise (`SISE_SOURCES=kis`, its own namespace on the
//! real NATS, Redis and PostgreSQL) pointed at the fake KIS (`sise_pipelines::kis::fake`)
//! through its config fields. Snapshots of all ten instruments and live WebSocket trades
//! (several records per frame) reach `latest` and `history`; daily and minute bars are
//! backfilled; PINGPONG is answered; one token serves two app instances and a restart; a
//! second instance is refused the WebSocket and polls over REST; a dropped session falls back
//! to REST and comes back; what the socket does not take is polled; the status says so.

mod common;

use std::time::Duration;

use common::*;
use secrecy::SecretString;
use serde_json::Value;
use sise::{Config, Stages};
use sise_pipelines::kis::fake::{FakeKis, FakeOptions};

const T: Duration = Duration::from_secs(30);
const ALL10: [&str; 10] = [
    "stock.krx.058610",
    "stock.krx.086520",
    "stock.krx.068270",
    "index.krx.KOSPI",
    "index.krx.KOSDAQ",
    "stock.us.BMNR",
    "stock.us.GOOG",
    "stock.us.FIG",
    "index.us.DJI",
    "index.us.IXIC",
];
const CELLTRION: &str = "stock.krx.068270";

fn kis_config(fake: &FakeKis) -> Config {
    let mut c = test_config(&["kis"]);
    c.kis_rest_url = fake.rest_url.clone();
    c.kis_ws_url = fake.ws_url.clone();
    c.kis_app_key = Some(SecretString::from(fake.options().app_key.clone()));
    c.kis_app_secret = Some(SecretString::from(fake.options().app_secret.clone()));
    // The test runs whatever the markets' hours are.
    c.kis_market_hours = false;
    c.kis_poll_ms = 300;
    c
}

async fn quote(app: &TestApp, id: &str) -> Option<Value> {
    let (s, body) = app.get(&format!("/api/v1/quotes?ids={id}")).await;
    if s != 200 {
        return None;
    }
    body["quotes"].as_array()?.first().cloned()
}

fn minute_floor(ms: i64) -> i64 {
    ms - ms.rem_euclid(60_000)
}

async fn candles(app: &TestApp, id: &str, interval: &str, from: i64) -> Vec<Value> {
    let (s, body) = app
        .get(&format!(
            "/api/v1/candles/{id}?interval={interval}&from={from}"
        ))
        .await;
    if s != 200 {
        return Vec::new();
    }
    body["candles"].as_array().cloned().unwrap_or_default()
}

async fn kis_status(app: &TestApp) -> Option<Value> {
    let (_, body) = app.get("/api/v1/sources").await;
    body["sources"]
        .as_array()?
        .iter()
        .find(|s| s["source"] == "kis")
        .cloned()
}

/// Read the socket until `pick` finds something in a frame (bounded by `T`).
async fn ws_until<R>(ws: &mut Ws, what: &str, pick: impl Fn(&Value) -> Option<R>) -> R {
    let deadline = tokio::time::Instant::now() + T;
    while tokio::time::Instant::now() < deadline {
        match ws_next(ws, T).await {
            Some(f) => {
                if let Some(r) = pick(&f) {
                    return r;
                }
            }
            None => break,
        }
    }
    panic!("timed out waiting for {what}");
}

async fn start(opts: FakeOptions) -> (FakeKis, TestApp) {
    let fake = FakeKis::start(opts).await.expect("fake kis");
    let app = spawn_app(kis_config(&fake), Stages::ALL).await;
    wait_for("3 KRX stocks subscribed", T, || async {
        let s = fake.sessions();
        (s.len() == 1 && s[0].len() == 3).then_some(())
    })
    .await;
    source_status(&app, "kis", "up", "live: 3 KRX stocks over WebSocket").await;
    (fake, app)
}

/// Start: a snapshot of all ten instruments (KIS's own previous close, change and rate; KRW
/// integers, USD decimals), then realtime trades — three records in one frame — reach `latest`
/// and `history`; daily bars and today's minute bars are backfilled; PINGPONG is echoed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn snapshots_live_trades_and_backfill() {
    let fake = FakeKis::start(FakeOptions {
        pingpong_interval: Duration::from_millis(300),
        pingpong_timeout: Duration::from_secs(2),
        ..FakeOptions::default()
    })
    .await
    .expect("fake kis");
    // Two finished minutes of today, before the source starts: backfilled from the chart.
    let now = sise_bus::now_ms();
    let m2 = minute_floor(now) - 120_000;
    let kst = |ms: i64| {
        chrono::DateTime::from_timestamp_millis(ms)
            .unwrap()
            .with_timezone(&chrono::FixedOffset::east_opt(9 * 3600).unwrap())
            .format("%H%M%S")
            .to_string()
    };
    let (h2, h1) = (kst(m2), kst(m2 + 60_000));
    fake.set_minutes(
        "068270",
        &[
            (&h2, 181_000, 181_200, 180_900, 181_100, 700),
            (&h1, 181_100, 181_400, 181_000, 181_300, 300),
        ],
    );
    let app = spawn_app(kis_config(&fake), Stages::ALL).await;
    wait_for("3 KRX stocks subscribed", T, || async {
        let s = fake.sessions();
        (s.len() == 1 && s[0].len() == 3).then_some(())
    })
    .await;
    source_status(&app, "kis", "up", "live: 3 KRX stocks over WebSocket").await;

    let ids = ALL10.join(",");
    let quotes = wait_for("a quote of every instrument", T, || async {
        let (s, body) = app.get(&format!("/api/v1/quotes?ids={ids}")).await;
        let q = body["quotes"].as_array().cloned().unwrap_or_default();
        (s == 200 && q.len() == 10).then_some(q)
    })
    .await;
    let q = |id: &str| quotes.iter().find(|q| q["id"] == id).cloned().expect(id);
    for x in &quotes {
        assert_eq!(x["source"], "kis", "{x}");
    }
    let spg = q("stock.krx.058610");
    assert_eq!(spg["price"].as_f64(), Some(36_250.0));
    assert_eq!(spg["prev_close"].as_f64(), Some(37_100.0));
    assert_eq!(spg["change"].as_f64(), Some(-850.0), "falling: sign code 5");
    assert!((spg["change_rate"].as_f64().unwrap() + 0.0229).abs() < 1e-9);
    let goog = q("stock.us.GOOG");
    assert_eq!(goog["price"].as_f64(), Some(301.45));
    assert_eq!(goog["prev_close"].as_f64(), Some(298.12));
    assert!((goog["change"].as_f64().unwrap() - 3.33).abs() < 1e-9);
    let bmnr = q("stock.us.BMNR");
    assert!(
        (bmnr["change"].as_f64().unwrap() + 1.87).abs() < 1e-9,
        "unsigned diff, sign 5"
    );
    assert_eq!(q("index.us.DJI")["price"].as_f64(), Some(47_215.36));
    assert_eq!(q("index.us.IXIC")["prev_close"].as_f64(), Some(23_210.40));
    assert_eq!(q("index.krx.KOSDAQ")["change"].as_f64(), Some(-6.47));
    assert_eq!(q("index.krx.KOSPI")["price"].as_f64(), Some(4112.58));

    // Realtime: three records in one frame.
    let from = minute_floor(sise_bus::now_ms());
    fake.trades(&[
        ("068270", 182_000, 10),
        ("068270", 182_100, 5),
        ("086520", 98_500, 7),
    ]);
    let cel = wait_for("the last 셀트리온 trade in latest", T, || async {
        let q = quote(&app, CELLTRION).await?;
        (q["price"].as_f64() == Some(182_100.0)).then_some(q)
    })
    .await;
    assert_eq!(cel["prev_close"].as_f64(), Some(178_900.0));
    assert_eq!(cel["change"].as_f64(), Some(3_200.0));
    assert_eq!(cel["day_volume"].as_f64(), Some(812_360.0));
    assert!(
        sise_bus::now_ms() - cel["ts"].as_i64().unwrap() < 10_000,
        "{cel}"
    );
    wait_for("셀트리온 candle volume 15", T, || async {
        let rows = candles(&app, CELLTRION, "1m", from).await;
        let v: f64 = rows.iter().filter_map(|c| c["v"].as_f64()).sum();
        (v == 15.0).then_some(())
    })
    .await;
    wait_for("에코프로 trade", T, || async {
        (quote(&app, "stock.krx.086520").await?["price"].as_f64() == Some(98_500.0)).then_some(())
    })
    .await;

    // Backfill: the two minutes of today, and daily bars of earlier days.
    let got = wait_for("the backfilled minutes", T, || async {
        let rows = candles(&app, CELLTRION, "1m", m2).await;
        let early: Vec<Value> = rows
            .into_iter()
            .filter(|c| c["t"].as_i64().is_some_and(|t| t < m2 + 120_000))
            .collect();
        (early.len() == 2).then_some(early)
    })
    .await;
    assert_eq!(got[0]["o"].as_f64(), Some(181_000.0));
    assert_eq!(got[0]["h"].as_f64(), Some(181_200.0));
    assert_eq!(got[0]["c"].as_f64(), Some(181_100.0));
    assert_eq!(got[0]["v"].as_f64(), Some(700.0));
    assert_eq!(got[1]["v"].as_f64(), Some(300.0));
    let month_ago = sise_bus::now_ms() - 30 * 86_400_000;
    for id in [
        "stock.krx.068270",
        "index.krx.KOSPI",
        "stock.us.GOOG",
        "index.us.DJI",
    ] {
        wait_for(&format!("daily bars of {id}"), T, || async {
            (candles(&app, id, "1d", month_ago).await.len() >= 15).then_some(())
        })
        .await;
    }

    // PINGPONG answered; the session stays.
    wait_for("PINGPONGs answered", T, || async {
        let st = fake.stats();
        (st.pingpong_answered >= 3).then_some(())
    })
    .await;
    let st = fake.stats();
    assert_eq!(st.pingpong_timeouts, 0, "{st:?}");
    assert_eq!(st.ws_sessions, 1);
    assert_eq!((st.tokens_issued, st.token_rate_rejected), (1, 0));
    assert_eq!(
        st.rate_limited, 0,
        "the limiter keeps under the fake's 20/s"
    );

    // A malformed frame is skipped and counted; the session goes on.
    fake.send_raw("0|H0STCNT0|002|068270^143015^181500");
    fake.trades(&[("068270", 182_200, 1)]);
    wait_for("a trade after the malformed frame", T, || async {
        (quote(&app, CELLTRION).await?["price"].as_f64() == Some(182_200.0)).then_some(())
    })
    .await;
    assert!(metric(&app, "sise_source_parse_errors_total", &["source=\"kis\""]).await >= 1.0);
    assert!(
        metric(
            &app,
            "sise_source_frames_received_total",
            &["source=\"kis\""]
        )
        .await
            >= 4.0
    );
    assert!(metric(&app, "sise_ticks_ingested_total", &["source=\"kis\""]).await >= 10.0);
    assert_eq!(fake.stats().ws_sessions, 1);
}

/// One token for two app instances sharing the namespace (and its Redis), and for a restart;
/// the second instance's WebSocket is refused (`ALREADY IN USE appkey`), it polls the KRX
/// stocks over REST and says so.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn token_shared_by_two_instances_and_a_restart() {
    let (fake, mut app1) = start(FakeOptions::default()).await;
    let mut config2 = app1.config.clone();
    config2.http_addr = "127.0.0.1:0".parse().unwrap();
    let app2 = spawn_app(config2.clone(), Stages::INGEST).await;
    wait_for("the second session refused", T, || async {
        (fake.stats().ws_in_use_rejected >= 1).then_some(())
    })
    .await;
    // The refused instance polls the stocks over REST: a trade the socket never carries
    // reaches latest through it.
    fake.trade_unheard("058610", 36_400, 100);
    wait_for("the REST price of 에스피지", T, || async {
        (quote(&app1, "stock.krx.058610").await?["price"].as_f64() == Some(36_400.0)).then_some(())
    })
    .await;
    let st = fake.stats();
    assert_eq!(st.token_requests, 1, "{st:?}");
    assert_eq!((st.tokens_issued, st.token_rate_rejected), (1, 0));
    assert_eq!(st.approvals_issued, 1);
    assert_eq!(fake.sessions().len(), 1, "one session per app key");

    // Restart the first instance: the token (and approval key) come from Redis.
    app1.stop().await;
    let mut app2 = app2;
    app2.stop().await;
    let app3 = spawn_app(config2, Stages::ALL).await;
    wait_for("the restarted instance subscribed", T, || async {
        let s = fake.sessions();
        (s.len() == 1 && s[0].len() == 3).then_some(())
    })
    .await;
    source_status(&app3, "kis", "up", "live: 3 KRX stocks over WebSocket").await;
    let st = fake.stats();
    assert_eq!(st.token_requests, 1, "no new token after a restart: {st:?}");
    assert_eq!(st.approvals_issued, 1);
}

/// A dropped session (TCP closed, no close frame): KRX stocks fall back to REST polling, the
/// status says so, then the source reconnects and re-subscribes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropped_session_falls_back_to_rest_then_resubscribes() {
    let (fake, app) = start(FakeOptions::default()).await;
    fake.trades(&[("068270", 182_500, 3)]);
    wait_for("a live trade", T, || async {
        (quote(&app, CELLTRION).await?["price"].as_f64() == Some(182_500.0)).then_some(())
    })
    .await;
    fake.refuse_ws(true);
    fake.drop_sessions();
    let st = source_status(&app, "kis", "degraded", "WebSocket down").await;
    assert!(
        st["detail"]
            .as_str()
            .unwrap()
            .contains("3 KRX stocks polled over REST instead"),
        "{st}"
    );
    fake.trade_unheard("068270", 183_000, 40);
    wait_for("the REST price while the socket is down", T, || async {
        (quote(&app, CELLTRION).await?["price"].as_f64() == Some(183_000.0)).then_some(())
    })
    .await;
    // A trade while the socket is down but the REST poll has not seen it: after the
    // reconnect the source takes the current price from REST at once.
    fake.trade_unheard("068270", 183_050, 5);
    fake.refuse_ws(false);
    wait_for("re-subscribed", T, || async {
        let s = fake.sessions();
        (fake.stats().ws_sessions >= 2 && s.len() == 1 && s[0].len() == 3).then_some(())
    })
    .await;
    source_status(&app, "kis", "up", "live: 3 KRX stocks over WebSocket").await;
    wait_for("the price missed by the socket", T, || async {
        (quote(&app, CELLTRION).await?["price"].as_f64() == Some(183_050.0)).then_some(())
    })
    .await;
    assert!(metric(&app, "sise_source_reconnects_total", &["source=\"kis\""]).await >= 1.0);
    fake.trades(&[("068270", 183_100, 2)]);
    wait_for("a live trade after the reconnect", T, || async {
        (quote(&app, CELLTRION).await?["price"].as_f64() == Some(183_100.0)).then_some(())
    })
    .await;
    let status = kis_status(&app).await.expect("kis status");
    assert_eq!(status["state"], "up", "{status}");
}

/// The socket takes only two subscriptions (MAX SUBSCRIBE OVER for the third): that stock is
/// polled over REST and the status names it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn what_the_socket_does_not_take_is_polled() {
    let fake = FakeKis::start(FakeOptions {
        max_subscriptions: 2,
        ..FakeOptions::default()
    })
    .await
    .expect("fake kis");
    let app = spawn_app(kis_config(&fake), Stages::ALL).await;
    let st = source_status(&app, "kis", "up", "1 KRX stocks the WebSocket did not take").await;
    assert!(
        st["detail"]
            .as_str()
            .unwrap()
            .contains("live: 2 KRX stocks over WebSocket"),
        "{st}"
    );
    // Sorted codes: 058610, 068270 on the socket; 086520 over REST.
    fake.trade_unheard("086520", 99_000, 10);
    wait_for("the REST price of the stock over the cap", T, || async {
        (quote(&app, "stock.krx.086520").await?["price"].as_f64() == Some(99_000.0)).then_some(())
    })
    .await;
}

/// Codes users add at run time: a KRX code (삼성전자 005930) and a US ticker (TSLA, on NYSE:
/// found by probing NAS, then NYS) subscribed over the WebSocket are candidates at once (no
/// error, no placeholder quote), checked against KIS, listed with their names, served (the
/// KRX code on the open KIS socket) and backfilled, and their prices reach the client's socket
/// and `/api/v1/quotes`; a KRX code and a ticker KIS does not know are rejected: the socket
/// gets `unknown_instrument`, and so does REST afterwards (404, not 500).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn codes_added_at_run_time_are_checked_listed_and_served() {
    let (fake, app) = start(FakeOptions::default()).await;
    fake.add_named_stock("005930", "삼성전자", 71_000, 72_300);
    fake.add_us_stock("NYS", "TSLA", 410.0, 415.5);
    const SAMSUNG: &str = "stock.krx.005930";
    const TSLA: &str = "stock.us.TSLA";
    const NO_KRX: &str = "stock.krx.999999";
    const NO_US: &str = "stock.us.ZZZQ";

    let mut ws = ws_connect(&app).await;
    ws_send(
        &mut ws,
        serde_json::json!({"op": "subscribe", "ids": [SAMSUNG, TSLA, NO_KRX, NO_US]}),
    )
    .await;
    let first = ws_next(&mut ws, T).await.expect("a first frame");
    assert_eq!(
        first["type"], "snapshot",
        "candidates are accepted: {first}"
    );
    assert!(
        first["quotes"].as_array().is_some_and(|q| q.is_empty()),
        "no price yet, no placeholder: {first}"
    );

    // The socket gets the REST snapshots of both, and the rejections.
    let (mut prices, mut rejected) = (std::collections::HashMap::new(), Vec::new());
    let deadline = tokio::time::Instant::now() + T;
    while (prices.len() < 2 || rejected.len() < 2) && tokio::time::Instant::now() < deadline {
        let Some(f) = ws_next(&mut ws, T).await else {
            break;
        };
        if f["type"] == "error" {
            assert_eq!(f["code"], "unknown_instrument", "{f}");
            rejected.push(f["message"].as_str().unwrap_or_default().to_owned());
        }
        // The first quote of each: the REST snapshot (backfilled bars follow it).
        for q in frame_quotes(&f) {
            prices
                .entry(q["id"].as_str().unwrap_or_default().to_owned())
                .or_insert(q);
        }
    }
    assert_eq!(prices[SAMSUNG]["price"].as_f64(), Some(72_300.0));
    assert_eq!(prices[SAMSUNG]["prev_close"].as_f64(), Some(71_000.0));
    assert_eq!(prices[SAMSUNG]["source"], "kis");
    assert_eq!(prices[TSLA]["price"].as_f64(), Some(415.5));
    assert!((prices[TSLA]["change"].as_f64().unwrap() - 5.5).abs() < 1e-9);
    assert_eq!(rejected.len(), 2, "{rejected:?}");
    assert!(
        rejected.iter().any(|m| m.contains(NO_KRX)) && rejected.iter().any(|m| m.contains(NO_US)),
        "{rejected:?}"
    );

    // Listed with KIS's name (KRX) or the ticker (US).
    let (_, body) = app.get("/api/v1/instruments").await;
    let listed = |id: &str| {
        body["instruments"]
            .as_array()
            .and_then(|a| a.iter().find(|i| i["id"] == id).cloned())
    };
    let sam = listed(SAMSUNG).expect("005930 listed");
    assert_eq!(sam["name_ko"], "삼성전자");
    assert_eq!(
        (sam["currency"].as_str(), sam["market"].as_str()),
        (Some("KRW"), Some("krx"))
    );
    let tsla = listed(TSLA).expect("TSLA listed");
    assert_eq!(
        (tsla["name_en"].as_str(), tsla["currency"].as_str()),
        (Some("TSLA"), Some("USD"))
    );
    assert!(listed(NO_KRX).is_none() && listed(NO_US).is_none());

    // 005930 joins the open KIS session (no reconnect); its live trades reach the client.
    wait_for("005930 on the KIS socket", T, || async {
        let s = fake.sessions();
        (s.len() == 1 && s[0].iter().any(|(_, k)| k == "005930")).then_some(())
    })
    .await;
    source_status(&app, "kis", "up", "live: 4 KRX stocks over WebSocket").await;
    assert_eq!(fake.stats().ws_sessions, 1);
    fake.trades(&[("005930", 72_400, 25)]);
    let live = ws_until(&mut ws, "a live 005930 trade on the client's socket", |f| {
        frame_quotes(f)
            .into_iter()
            .find(|q| q["id"] == SAMSUNG && q["price"].as_f64() == Some(72_400.0))
    })
    .await;
    assert_eq!(live["volume"].as_f64(), Some(25.0));

    // REST: both quoted; history backfilled; the rejected ones are a clear 404.
    let (s, body) = app
        .get(&format!("/api/v1/quotes?ids={SAMSUNG},{TSLA}"))
        .await;
    assert_eq!(s, 200, "{body}");
    assert_eq!(body["quotes"].as_array().map(Vec::len), Some(2), "{body}");
    let month_ago = sise_bus::now_ms() - 30 * 86_400_000;
    for id in [SAMSUNG, TSLA] {
        wait_for(&format!("daily bars of {id}"), T, || async {
            (candles(&app, id, "1d", month_ago).await.len() >= 15).then_some(())
        })
        .await;
    }
    for id in [NO_KRX, NO_US] {
        let (s, body) = app.get(&format!("/api/v1/quotes?ids={id}")).await;
        assert_eq!(s, 404, "{body}");
        assert_eq!(body["error"]["code"], "unknown_instrument", "{body}");
        assert!(
            body["error"]["message"]
                .as_str()
                .unwrap()
                .contains("KIS has no"),
            "{body}"
        );
        let (s, _) = app.get(&format!("/api/v1/candles/{id}?interval=1m")).await;
        assert_eq!(s, 404);
    }
    ws_send(
        &mut ws,
        serde_json::json!({"op": "subscribe", "ids": [NO_KRX]}),
    )
    .await;
    let err = ws_until(&mut ws, "a rejected id refused on subscribe", |f| {
        (f["type"] == "error").then(|| f.clone())
    })
    .await;
    assert_eq!(err["code"], "unknown_instrument", "{err}");

    // A well-formed code not checked yet is a candidate over REST too: 200, no quote yet.
    let (s, body) = app.get("/api/v1/quotes?ids=stock.krx.123456").await;
    assert_eq!(
        (s, body["quotes"].as_array().map(Vec::len)),
        (200, Some(0)),
        "{body}"
    );
    wait_for("123456 rejected after its check", T, || async {
        (app.get("/api/v1/quotes?ids=stock.krx.123456").await.0 == 404).then_some(())
    })
    .await;
}

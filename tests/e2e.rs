//! End to end, in process: sise on port 0 against the real NATS, Redis and PostgreSQL.

mod common;

use std::time::Duration;

use common::*;
use serde_json::json;
use sise::Stages;

const T: Duration = Duration::from_secs(20);

/// The sim source feeds a real WebSocket: a snapshot first, then live ticks, only of the
/// subscribed ids; REST quotes are fresh and candles include the open minute.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sim_to_websocket_and_rest() {
    let app = spawn_app(test_config(&["sim"]), Stages::ALL).await;
    let btc = "crypto.upbit.KRW-BTC";
    let cel = "stock.krx.068270";

    // Both quotes reach the latest model.
    let quotes = wait_for("both quotes", T, || async {
        let (s, body) = app.get(&format!("/api/v1/quotes?ids={btc},{cel}")).await;
        let q = body["quotes"].as_array().cloned().unwrap_or_default();
        (s == 200 && q.len() == 2).then_some(q)
    })
    .await;
    let now = sise_bus::now_ms();
    for q in &quotes {
        assert!(
            now - q["ts"].as_i64().unwrap() < 5_000,
            "quote not fresh: {q}"
        );
        assert_eq!(q["source"], "sim");
        assert_eq!(q["market"], "sim");
        assert_eq!(q["stale"], false);
        assert!(q["price"].as_f64().unwrap() > 0.0);
    }
    let btc_price = quotes.iter().find(|q| q["id"] == btc).unwrap()["price"]
        .as_f64()
        .unwrap();
    assert!(
        (100_000_000.0..170_000_000.0).contains(&btc_price),
        "BTC at {btc_price}"
    );

    // WebSocket: snapshot, then ticks of the subscribed ids only.
    let mut ws = ws_connect(&app).await;
    ws_send(&mut ws, json!({"op": "subscribe", "ids": [btc, cel]})).await;
    let snap = ws_next(&mut ws, T).await.expect("snapshot frame");
    assert_eq!(snap["type"], "snapshot", "{snap}");
    let snap_ids: Vec<&str> = snap["quotes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|q| q["id"].as_str().unwrap())
        .collect();
    assert!(snap_ids.contains(&btc) && snap_ids.contains(&cel), "{snap}");
    let mut seen_btc = 0;
    let mut seen_cel = 0;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while tokio::time::Instant::now() < deadline && (seen_btc < 3 || seen_cel < 1) {
        let Some(frame) = ws_next(&mut ws, T).await else {
            break;
        };
        for q in frame_quotes(&frame) {
            match q["id"].as_str() {
                Some(x) if x == btc => seen_btc += 1,
                Some(x) if x == cel => seen_cel += 1,
                other => panic!("tick of an unsubscribed id: {other:?}"),
            }
            assert_eq!(q["source"], "sim");
        }
    }
    assert!(
        seen_btc >= 3,
        "BTC ticks several times a second (saw {seen_btc})"
    );
    assert!(
        seen_cel >= 1,
        "Celltrion ticks about once a second (saw {seen_cel})"
    );

    // Candles: the current, still-open minute is there.
    let (s, body) = app
        .get(&format!("/api/v1/candles/{btc}?interval=1m&limit=10"))
        .await;
    assert_eq!(s, 200);
    let candles = body["candles"].as_array().unwrap();
    assert!(!candles.is_empty());
    let last_t = candles.last().unwrap()["t"].as_i64().unwrap();
    assert_eq!(
        last_t,
        sise_bus::now_ms() / 60_000 * 60_000,
        "the open minute is included"
    );

    // Sources: sim is up.
    let (_, body) = app.get("/api/v1/sources").await;
    let sim = body["sources"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["source"] == "sim")
        .cloned();
    let sim = sim.expect("sim in sources");
    assert_eq!(sim["state"], "up");
    assert!(sim["last_event_ts"].as_i64().unwrap() > now - 10_000);

    // News: the sim's first headlines reach the news model, filterable by instrument.
    let news = wait_for("sim news", T, || async {
        let (_, b) = app.get("/api/v1/news?limit=10").await;
        let n = b["news"].as_array().cloned().unwrap_or_default();
        (n.len() >= 3).then_some(n)
    })
    .await;
    let first = &news[0];
    assert!(
        first["title"].as_str().unwrap().starts_with('['),
        "marked simulated: {first}"
    );
    assert_eq!(first["source"], "sim");
    let tagged = first["instruments"][0].as_str().unwrap();
    let (_, b) = app.get(&format!("/api/v1/news?instrument={tagged}")).await;
    let filtered = b["news"].as_array().unwrap();
    assert!(!filtered.is_empty());
    assert!(filtered.iter().all(|n| n["instruments"]
        .as_array()
        .unwrap()
        .iter()
        .any(|i| i == tagged)));
    let published: Vec<i64> = news
        .iter()
        .map(|n| n["published"].as_i64().unwrap())
        .collect();
    assert!(published.windows(2).all(|w| w[0] >= w[1]), "newest first");

    // Metrics and readiness.
    let text = reqwest::get(format!("{}/metrics", app.base))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for m in [
        "sise_ticks_ingested_total",
        "sise_ticks_projected_total",
        "sise_ws_clients",
        "sise_http_request_duration_seconds",
    ] {
        assert!(text.contains(m), "metric {m} missing");
    }
    let (s, body) = app.get("/readyz").await;
    assert_eq!((s, body["status"].as_str()), (200, Some("ready")));
}

/// Known published ticks: what the WebSocket, the quotes and the candles show is exactly what
/// was published (values, OHLC, summed volume, the newest price).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn published_ticks_match_ws_quotes_and_candles() {
    let app = spawn_app(test_config(&[]), Stages::ALL).await;
    let eth = "crypto.upbit.KRW-ETH";
    let mut ws = ws_connect(&app).await;
    ws_send(&mut ws, json!({"op": "subscribe", "ids": [eth]})).await;
    let snap = ws_next(&mut ws, T).await.unwrap();
    assert_eq!(
        snap,
        json!({"type": "snapshot", "quotes": []}),
        "nothing published yet"
    );

    // Two minutes of ticks, starting at a minute boundary a few minutes ago.
    let m0 = (sise_bus::now_ms() / 60_000 - 3) * 60_000;
    let prices = [100.0, 103.0, 99.0, 101.0, 105.0, 104.0];
    let vols = [1.5, 2.0, 0.25, 3.0, 1.0, 0.5];
    let ticks: Vec<_> = (0..6)
        .map(|i| {
            tick(
                eth,
                m0 + (i as i64 / 3) * 60_000 + (i as i64 % 3) * 1_000,
                prices[i],
                vols[i],
                i as u64 + 1,
            )
        })
        .collect();
    for t in &ticks {
        app.bus.publish_tick(t).await.unwrap();
    }
    // The WebSocket delivers them (conflation may merge, but the last one always arrives).
    let mut last_seen = None;
    while let Some(frame) = ws_next(&mut ws, Duration::from_secs(5)).await {
        for q in frame_quotes(&frame) {
            assert_eq!(q["id"], eth);
            last_seen = Some(q);
        }
        if last_seen.as_ref().is_some_and(|q| q["price"] == 104.0) {
            break;
        }
    }
    let q = last_seen.expect("ticks over the socket");
    assert_eq!(
        (q["price"].as_f64(), q["ts"].as_i64()),
        (Some(104.0), Some(ticks[5].ts))
    );
    assert_eq!(q["source"], "testsrc");

    let want = json!([
        {"t": m0, "o": 100.0, "h": 103.0, "l": 99.0, "c": 99.0, "v": 3.75},
        {"t": m0 + 60_000, "o": 101.0, "h": 105.0, "l": 101.0, "c": 104.0, "v": 4.5},
    ]);
    let body = wait_for("candles", T, || async {
        let (_, b) = app.get(&format!("/api/v1/candles/{eth}?interval=1m")).await;
        (b["candles"] == want).then_some(b)
    })
    .await;
    assert_eq!(body["candles"], want);
    // 5m from the same rows (both minutes may share one 5-minute bucket or straddle two).
    let (_, b) = app.get(&format!("/api/v1/candles/{eth}?interval=5m")).await;
    let total_v = candle_volume(&b);
    assert!((total_v - 8.25).abs() < 1e-9);

    let quote = wait_for("quote", T, || async {
        let (_, b) = app.get(&format!("/api/v1/quotes?ids={eth}")).await;
        b["quotes"].get(0).filter(|q| q["price"] == 104.0).cloned()
    })
    .await;
    assert_eq!(quote["ts"].as_i64(), Some(ticks[5].ts));
    assert_eq!(quote["ingest_ts"].as_i64(), Some(ticks[5].ingest_ts));
    assert_eq!(quote["volume"].as_f64(), Some(0.5));
    assert_eq!(quote["day_volume"].as_f64(), ticks[5].day_volume);

    // An older tick arriving late never moves the latest price back.
    let late = tick(eth, m0 + 500, 50.0, 1.0, 99);
    app.bus.publish_tick(&late).await.unwrap();
    let body = wait_for("late tick applied", T, || async {
        let (_, b) = app.get(&format!("/api/v1/candles/{eth}?interval=1m")).await;
        (b["candles"][0]["v"] == 4.75).then_some(b)
    })
    .await;
    assert_eq!(body["candles"][0]["l"], 50.0);
    assert_eq!(
        body["candles"][0]["o"], 100.0,
        "open stays the earliest tick"
    );
    let (_, b) = app.get(&format!("/api/v1/quotes?ids={eth}")).await;
    assert_eq!(b["quotes"][0]["price"], 104.0);
}

//! The Upbit source end to end: a spawned sise (`SISE_SOURCES=upbit`, its own namespace on the
//! real NATS, Redis and PostgreSQL) pointed at the fake Upbit (`sise_pipelines::upbit::fake`)
//! through its config fields. Live trades reach `latest` and `history`; a mid-stream disconnect
//! re-subscribes and backfills the gap from REST; re-sent frames are not counted twice; bad
//! frames are skipped and counted; the delay from a fake frame to an edge WebSocket client.

mod common;

use std::time::{Duration, Instant};

use common::*;
use serde_json::{json, Value};
use sise::Stages;
use sise_pipelines::upbit::fake::{FakeOptions, FakeUpbit};

const T: Duration = Duration::from_secs(30);
const BTC: &str = "crypto.upbit.KRW-BTC";
const ALL7: [&str; 7] = [
    "crypto.upbit.KRW-BTC",
    "crypto.upbit.KRW-ETH",
    "crypto.upbit.KRW-SOL",
    "crypto.upbit.KRW-XRP",
    "crypto.upbit.KRW-LINK",
    "crypto.upbit.KRW-SUI",
    "crypto.upbit.KRW-ONDO",
];

async fn start() -> (FakeUpbit, TestApp) {
    let fake = FakeUpbit::start(FakeOptions::default())
        .await
        .expect("fake upbit");
    let mut config = test_config(&["upbit"]);
    config.upbit_rest_url = fake.rest_url.clone();
    config.upbit_ws_url = fake.ws_url.clone();
    let app = spawn_app(config, Stages::ALL).await;
    wait_for("the subscription of all 7 markets", T, || async {
        let subs = fake.subscribed();
        (subs.len() == 1 && subs[0].0.len() == 7 && subs[0].1.len() == 7).then_some(())
    })
    .await;
    // Up = subscribed and the start backfill done: from here on trades come over the socket.
    wait_for("the source up", T, || async {
        let (_, sources) = app.get("/api/v1/sources").await;
        sources["sources"]
            .as_array()?
            .iter()
            .any(|s| s["source"] == "upbit" && s["state"] == "up")
            .then_some(())
    })
    .await;
    (fake, app)
}

/// Sum of candle volume and the last close of an instrument's 1-minute candles since `from`.
async fn candles_since(app: &TestApp, id: &str, from: i64) -> (f64, Option<f64>, usize) {
    let (s, body) = app
        .get(&format!("/api/v1/candles/{id}?interval=1m&from={from}"))
        .await;
    if s != 200 {
        return (0.0, None, 0);
    }
    let rows = body["candles"].as_array().cloned().unwrap_or_default();
    let v = rows.iter().filter_map(|c| c["v"].as_f64()).sum();
    let close = rows.last().and_then(|c| c["c"].as_f64());
    (v, close, rows.len())
}

async fn quote(app: &TestApp, id: &str) -> Option<Value> {
    let (s, body) = app.get(&format!("/api/v1/quotes?ids={id}")).await;
    if s != 200 {
        return None;
    }
    body["quotes"].as_array()?.first().cloned()
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() < 1e-9
}

fn minute_floor(ms: i64) -> i64 {
    ms - ms.rem_euclid(60_000)
}

/// Start: a REST snapshot of all 7 markets, then live trades over the WebSocket reach the
/// `latest` (quote, day volume, Upbit's own change) and `history` (candle volume) projections;
/// the source reports itself up.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn live_trades_reach_latest_and_history() {
    let (fake, app) = start().await;
    let ids = ALL7.join(",");
    let quotes = wait_for("a quote of every market", T, || async {
        let (s, body) = app.get(&format!("/api/v1/quotes?ids={ids}")).await;
        let q = body["quotes"].as_array().cloned().unwrap_or_default();
        (s == 200 && q.len() == 7).then_some(q)
    })
    .await;
    for q in &quotes {
        assert_eq!(q["source"], "upbit", "{q}");
        assert!(q["price"].as_f64().unwrap_or(0.0) > 0.0);
    }
    let link = quotes
        .iter()
        .find(|q| q["id"] == "crypto.upbit.KRW-LINK")
        .expect("LINK");
    assert_eq!(link["change"].as_f64(), Some(0.0), "EVEN with integer 0");

    let from = minute_floor(sise_bus::now_ms());
    fake.trade("KRW-BTC", 130_270_000.0, 0.5).expect("trade");
    fake.trade("KRW-BTC", 130_280_000.0, 5.0e-5).expect("trade");
    fake.trade("KRW-ETH", 4_830_000.0, 0.2154).expect("trade");

    // The trade tick carries the day volume of the last ticker; the ticker of the same trade
    // follows it with the volume including it.
    let want_day = 1850.21457731 + 0.5 + 5.0e-5;
    let q = wait_for("the last BTC trade and its ticker in latest", T, || async {
        let q = quote(&app, BTC).await?;
        let day = q["day_volume"].as_f64()?;
        (q["price"].as_f64() == Some(130_280_000.0) && (day - want_day).abs() < 1e-6).then_some(q)
    })
    .await;
    assert_eq!(q["prev_close"].as_f64(), Some(128_900_000.0));
    assert_eq!(q["change"].as_f64(), Some(1_380_000.0));
    let rate = q["change_rate"].as_f64().expect("rate");
    assert!((rate - 1_380_000.0 / 128_900_000.0).abs() < 1e-9, "{rate}");
    assert_eq!(q["market"], "open");
    assert!(
        sise_bus::now_ms() - q["ts"].as_i64().expect("ts") < 10_000,
        "exchange time of the trade: {q}"
    );

    let (v, c, _) = wait_for("BTC candle volume", T, || async {
        let got = candles_since(&app, BTC, from).await;
        close(got.0, 0.5 + 5.0e-5).then_some(got)
    })
    .await;
    assert!(close(v, 0.50005));
    assert_eq!(c, Some(130_280_000.0));
    wait_for("ETH candle", T, || async {
        let got = candles_since(&app, "crypto.upbit.KRW-ETH", from).await;
        close(got.0, 0.2154).then_some(())
    })
    .await;

    let (_, sources) = app.get("/api/v1/sources").await;
    let upbit = sources["sources"]
        .as_array()
        .and_then(|l| l.iter().find(|s| s["source"] == "upbit").cloned())
        .expect("upbit status");
    assert_eq!(upbit["state"], "up", "{upbit}");
    assert!(
        metric(
            &app,
            "sise_source_frames_received_total",
            &["source=\"upbit\""]
        )
        .await
            >= 3.0
    );
    assert!(metric(&app, "sise_source_lag_seconds_count", &["source=\"upbit\""]).await >= 3.0);
    assert_eq!(fake.stats().origin_headers, 0);
}

/// A frame Upbit sends twice (and a trade both streamed and returned by REST) counts once:
/// candle volume is the sum of the distinct trades.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn duplicate_frames_are_not_double_counted() {
    let (fake, app) = start().await;
    let from = minute_floor(sise_bus::now_ms());
    let t1 = fake.trade("KRW-BTC", 130_270_000.0, 0.25).expect("trade");
    let again = fake.frame_of(&t1);
    fake.send_raw(&again);
    fake.send_raw(&again);
    fake.trade("KRW-BTC", 130_290_000.0, 0.125).expect("trade");
    let (v, c, _) = wait_for("both trades in the candles", T, || async {
        let got = candles_since(&app, BTC, from).await;
        (got.1 == Some(130_290_000.0) && got.0 >= 0.375 - 1e-9).then_some(got)
    })
    .await;
    assert!(close(v, 0.375), "volume {v}: a duplicate was counted");
    assert_eq!(c, Some(130_290_000.0));
}

/// A mid-stream disconnect (TCP closed, no close frame): the source reconnects, sends the whole
/// subscription again and backfills the trades it missed from REST; none is lost, none counted
/// twice.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reconnect_resubscribes_and_backfills_the_gap() {
    let (fake, app) = start().await;
    let from = minute_floor(sise_bus::now_ms());
    fake.trade("KRW-BTC", 130_270_000.0, 0.1).expect("trade");
    wait_for("the first trade in history", T, || async {
        close(candles_since(&app, BTC, from).await.0, 0.1).then_some(())
    })
    .await;

    // Trades that happen while the link is down.
    fake.trade_unheard("KRW-BTC", 130_260_000.0, 0.02)
        .expect("trade");
    fake.trade_unheard("KRW-BTC", 130_250_000.0, 0.003)
        .expect("trade");
    fake.drop_connections();
    wait_for(
        "a second connection with the full subscription",
        T,
        || async {
            let st = fake.stats();
            let subs = fake.subscribed();
            (st.connections >= 2
                && st.subscriptions.len() >= 2
                && subs.len() == 1
                && subs[0].0.len() == 7
                && subs[0].1.len() == 7)
                .then_some(())
        },
    )
    .await;
    fake.trade("KRW-BTC", 130_240_000.0, 0.0004).expect("trade");
    let (v, c, _) = wait_for("the gap backfilled and the next live trade", T, || async {
        let got = candles_since(&app, BTC, from).await;
        (got.1 == Some(130_240_000.0) && got.0 >= 0.1234 - 1e-9).then_some(got)
    })
    .await;
    assert!(close(v, 0.1 + 0.02 + 0.003 + 0.0004), "volume {v}");
    assert_eq!(c, Some(130_240_000.0));
    assert!(metric(&app, "sise_source_reconnects_total", &["source=\"upbit\""]).await >= 1.0);
    assert!(
        fake.stats()
            .rest_requests
            .iter()
            .any(|r| r.starts_with("/v1/trades/ticks?market=KRW-BTC")),
        "backfilled from /trades/ticks"
    );
}

/// Candles of `[from, to)` as (t, o, h, l, c, v).
async fn candles_between(app: &TestApp, id: &str, from: i64, to: i64) -> Vec<(i64, [f64; 5])> {
    let (_, body) = app
        .get(&format!(
            "/api/v1/candles/{id}?interval=1m&from={from}&to={to}"
        ))
        .await;
    body["candles"]
        .as_array()
        .map(|rows| {
            rows.iter()
                .filter_map(|c| {
                    let f = |k: &str| c[k].as_f64();
                    Some((
                        c["t"].as_i64()?,
                        [f("o")?, f("h")?, f("l")?, f("c")?, f("v")?],
                    ))
                })
                .collect()
        })
        .unwrap_or_default()
}

/// First start (nothing in the log): the recent trades and, before them, the 1-minute candles
/// come from REST, so the chart has history at once (the fake's KRW-BTC: recorded candles at
/// 05:27 and 05:29, trades at 05:30 on 2026-03-12; 05:28 had no trade, so no candle).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn first_start_backfills_candles_and_trades() {
    let (_fake, app) = start().await;
    let (from, to) = (1_773_293_220_000, 1_773_293_460_000); // 05:27 – 05:31 UTC
    let rows = wait_for("three backfilled minutes", T, || async {
        let rows = candles_between(&app, BTC, from, to).await;
        (rows.len() == 3 && close(rows[2].1[4], 0.10236542)).then_some(rows)
    })
    .await;
    assert_eq!(rows[0].0, 1_773_293_220_000);
    assert_eq!(
        rows[0].1,
        [
            130_120_000.0,
            130_190_000.0,
            130_100_000.0,
            130_180_000.0,
            2.0e-5
        ]
    );
    assert_eq!(rows[1].0, 1_773_293_340_000);
    assert!(close(rows[1].1[4], 3.08877102));
    assert_eq!(rows[1].1[3], 130_210_000.0);
    // 05:30 from the three recorded trades (0.00231542 + 5.0E-5 + 0.1).
    assert_eq!(rows[2].0, 1_773_293_400_000);
    assert_eq!(rows[2].1[3], 130_250_000.0);
}

/// A gap longer than the trade backfill reaches (more than 5 × 200 trades): the whole minutes
/// between the last trade seen and the oldest trade fetched come from 1-minute candles; the
/// minute already in the log is not fetched again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_long_gap_is_filled_from_minute_candles() {
    let (fake, app) = start().await;
    let xrp = "crypto.upbit.KRW-XRP";
    let now = sise_bus::now_ms();
    let m = now - now.rem_euclid(60_000);
    let seen = fake
        .trade_at("KRW-XRP", m - 300_000 + 1_000, 3_120.0, 10.0, true)
        .expect("trade");
    wait_for("the heard trade in history", T, || async {
        let rows = candles_between(&app, xrp, m - 300_000, m - 240_000).await;
        (rows.len() == 1 && close(rows[0].1[4], 10.0)).then_some(())
    })
    .await;
    // The gap: three trades three minutes ago, then 1,001 trades a minute ago.
    for (k, (p, v)) in [(3_130.0, 1.5), (3_150.0, 2.25), (3_110.0, 0.125)]
        .into_iter()
        .enumerate()
    {
        fake.trade_at("KRW-XRP", m - 180_000 + 1_000 + k as i64, p, v, false)
            .expect("trade");
    }
    for k in 0..1_001 {
        fake.trade_at("KRW-XRP", m - 60_000 + 1_000 + k, 3_125.0, 1.0, false)
            .expect("trade");
    }
    fake.drop_connections();
    let rows = wait_for("the gap minute from a candle", T, || async {
        let rows = candles_between(&app, xrp, m - 300_000, m).await;
        let gap = rows.iter().find(|r| r.0 == m - 180_000)?;
        let last = rows.iter().find(|r| r.0 == m - 60_000)?;
        (close(gap.1[4], 3.875) && last.1[4] >= 1_000.0 - 1e-9).then_some(rows)
    })
    .await;
    let gap = rows.iter().find(|r| r.0 == m - 180_000).expect("gap");
    assert_eq!(gap.1, [3_130.0, 3_150.0, 3_110.0, 3_110.0, 3.875]);
    let first = rows.iter().find(|r| r.0 == m - 300_000).expect("seen");
    assert!(
        close(first.1[4], seen.volume),
        "the seen minute is not counted twice"
    );
    // The newest 1,000 trades of the last minute came as trades (the oldest one of that
    // minute is beyond the backfill's reach).
    let last = rows.iter().find(|r| r.0 == m - 60_000).expect("last");
    assert!(close(last.1[4], 1_000.0), "{last:?}");
    assert_eq!(rows.len(), 3, "{rows:?}");
}

/// A malformed frame, an error frame, an orderbook frame and a ticker of a market not
/// subscribed are logged, counted and skipped; the connection and the other markets go on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_frames_are_skipped_and_counted() {
    let (fake, app) = start().await;
    let fx = |name: &str| {
        std::fs::read(format!(
            "{}/pipelines/src/upbit/fixtures/{name}",
            env!("CARGO_MANIFEST_DIR")
        ))
        .expect("fixture")
    };
    fake.send_raw(&fx("ws_malformed_frame.bin.txt"));
    fake.send_raw(&fx("ws_error_wrong_format.json"));
    fake.send_raw(&fx("ws_orderbook_krw_xrp.json"));
    let unknown = String::from_utf8(fx("ws_ticker_realtime_krw_btc.json"))
        .expect("utf8")
        .replace("KRW-BTC", "KRW-NOPE");
    fake.send_raw(unknown.as_bytes());
    fake.trade("KRW-SOL", 212_400.0, 3.1).expect("trade");
    wait_for("the SOL trade after the bad frames", T, || async {
        let q = quote(&app, "crypto.upbit.KRW-SOL").await?;
        (q["price"].as_f64() == Some(212_400.0)).then_some(())
    })
    .await;
    let src = "source=\"upbit\"";
    assert_eq!(
        metric(&app, "sise_source_parse_errors_total", &[src]).await,
        1.0
    );
    assert_eq!(
        metric(
            &app,
            "sise_source_errors_total",
            &[src, "kind=\"error_frame\""]
        )
        .await,
        1.0
    );
    assert!(
        metric(
            &app,
            "sise_source_errors_total",
            &[src, "kind=\"unknown_market\""]
        )
        .await
            >= 1.0
    );
    assert!(metric(&app, "sise_source_frames_received_total", &[src]).await >= 6.0);
    assert_eq!(fake.stats().connections, 1, "the connection survived");
    assert!(quote(&app, "crypto.upbit.KRW-NOPE").await.is_none());
}

/// The delay from a frame the fake sends to the tick frame an edge WebSocket client receives
/// (fake → source → NATS → hub → client). Printed; bounded generously.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fake_frame_to_edge_websocket_delay() {
    let (fake, app) = start().await;
    let mut ws = ws_connect(&app).await;
    ws_send(&mut ws, json!({"op": "subscribe", "ids": [BTC]})).await;
    let snap = ws_next(&mut ws, T).await.expect("snapshot");
    assert_eq!(snap["type"], "snapshot", "{snap}");
    let mut delays = Vec::new();
    for k in 0..40 {
        let price = 131_000_000.0 + f64::from(k) * 1_000.0;
        let sent = Instant::now();
        fake.trade("KRW-BTC", price, 0.001).expect("trade");
        let deadline = Instant::now() + T;
        'wait: loop {
            assert!(Instant::now() < deadline, "tick {k} never arrived");
            let frame = ws_next(&mut ws, T).await.expect("frame");
            for q in frame_quotes(&frame) {
                if q["price"].as_f64() == Some(price) {
                    delays.push(sent.elapsed());
                    break 'wait;
                }
            }
        }
    }
    delays.sort();
    let pct = |p: f64| delays[((delays.len() - 1) as f64 * p) as usize];
    println!(
        "fake Upbit frame → edge WebSocket client: n={} p50={:?} p90={:?} max={:?}",
        delays.len(),
        pct(0.5),
        pct(0.9),
        pct(1.0)
    );
    assert!(pct(1.0) < Duration::from_secs(5));
}

/// A KRW market outside the registry that Upbit lists: searchable with Upbit's Korean and
/// English names, and once a user subscribes to it, the source adds it to the live
/// subscription (without dropping the others) and its trades reach the client and the quotes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_market_the_user_adds_goes_live_without_a_restart() {
    let fake = FakeUpbit::start(FakeOptions::default())
        .await
        .expect("fake upbit");
    fake.add_market("KRW-DOGE", "도지코인", "Dogecoin", 412.0);
    let mut config = test_config(&["upbit"]);
    config.upbit_rest_url = fake.rest_url.clone();
    config.upbit_ws_url = fake.ws_url.clone();
    let app = spawn_app(config, Stages::ALL).await;
    const DOGE: &str = "crypto.upbit.KRW-DOGE";

    // Listed: the edge learns it from the source's market list (through the log's KV bucket).
    let listed = wait_for("KRW-DOGE in the instrument list", T, || async {
        let (_, body) = app.get("/api/v1/instruments").await;
        body["instruments"]
            .as_array()?
            .iter()
            .find(|i| i["id"] == DOGE)
            .cloned()
    })
    .await;
    assert_eq!(listed["name_ko"], "도지코인");
    assert_eq!(listed["name_en"], "Dogecoin");
    assert_eq!(listed["class"], "crypto");
    assert_eq!(listed["currency"], "KRW");
    assert_eq!(listed["market"], "crypto");
    // Not a market pair in KRW, never listed.
    let (_, body) = app.get("/api/v1/instruments").await;
    assert!(!body["instruments"]
        .as_array()
        .unwrap()
        .iter()
        .any(|i| i["id"] == "crypto.upbit.BTC-ETH"));
    // Listed but not subscribed yet: the 7 defaults only.
    wait_for("the 7 default markets subscribed", T, || async {
        let subs = fake.subscribed();
        (subs.last()?.0.len() == 7).then_some(())
    })
    .await;

    let mut ws = ws_connect(&app).await;
    ws_send(&mut ws, json!({"op": "subscribe", "ids": [DOGE, BTC]})).await;
    let snap = ws_next(&mut ws, T).await.expect("snapshot");
    assert_eq!(
        snap["type"], "snapshot",
        "an added listed id is accepted: {snap}"
    );

    // The source re-subscribes with 8 markets on the same connection.
    wait_for("KRW-DOGE subscribed beside the others", T, || async {
        let subs = fake.subscribed();
        let (ticker, trade) = subs.last()?;
        (ticker.len() == 8
            && trade.len() == 8
            && ticker.iter().any(|c| c == "KRW-DOGE")
            && ticker.iter().any(|c| c == "KRW-BTC"))
        .then_some(())
    })
    .await;
    assert_eq!(
        fake.open_connections(),
        1,
        "the other markets were not dropped"
    );

    // Its trades now flow to the client and the quotes.
    let deadline = Instant::now() + T;
    let mut seen = false;
    while !seen && Instant::now() < deadline {
        fake.trade("KRW-DOGE", 415.0, 1_000.0).expect("trade");
        if let Some(frame) = ws_next(&mut ws, Duration::from_secs(2)).await {
            seen = frame_quotes(&frame)
                .iter()
                .any(|q| q["id"] == DOGE && q["price"].as_f64() == Some(415.0));
        }
    }
    assert!(seen, "a KRW-DOGE trade reached the WebSocket client");
    let q = wait_for("a KRW-DOGE quote", T, || quote(&app, DOGE)).await;
    assert_eq!(q["source"], "upbit");
    assert_eq!(q["market"], "open");
}

/// A market seen for the first time gets its past Upbit days from `/candles/days` (the days
/// before the backfilled minutes), so its daily chart has history: each day's OHLCV exactly.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn first_sight_backfills_day_candles() {
    let (_fake, app) = start().await;
    // The fixture's three KRW-BTC days, 2026-03-10..12 (each from 00:00 UTC = 09:00 KST).
    let want = [
        (
            1_773_100_800_000i64,
            129_800_000.0,
            130_100_000.0,
            126_900_000.0,
            127_600_000.0,
            3140.88810231,
        ),
        (
            1_773_187_200_000,
            127_600_000.0,
            129_400_000.0,
            127_100_000.0,
            128_900_000.0,
            2731.50018822,
        ),
        (
            1_773_273_600_000,
            128_900_000.0,
            131_000_000.0,
            128_500_000.0,
            130_250_000.0,
            1850.21457731,
        ),
    ];
    let rows = wait_for("three backfilled days", T, || async {
        let (s, body) = app
            .get(&format!(
                "/api/v1/candles/{BTC}?interval=1d&from=1773014400000&to=1773360000000"
            ))
            .await;
        let rows = body["candles"].as_array()?.clone();
        (s == 200 && rows.len() == 3).then_some(rows)
    })
    .await;
    // The fake's tape is on 2026-03-12, so that day already has backfilled minutes: its day
    // candle is left out (no volume twice) and only the two earlier days come from it.
    for (row, (t, o, h, l, c, v)) in rows.iter().zip(&want[..2]) {
        assert_eq!(row["t"].as_i64(), Some(*t), "{row}");
        assert!(close(row["o"].as_f64().unwrap(), *o), "{row}");
        assert!(close(row["h"].as_f64().unwrap(), *h), "{row}");
        assert!(close(row["l"].as_f64().unwrap(), *l), "{row}");
        assert!(close(row["c"].as_f64().unwrap(), *c), "{row}");
        assert!((row["v"].as_f64().unwrap() - v).abs() < 1e-6, "{row}");
    }
    let today = &rows[2];
    assert_eq!(today["t"].as_i64(), Some(want[2].0));
    assert!(
        today["v"].as_f64().unwrap() < want[2].5,
        "the day with minutes is not also counted from its day candle: {today}"
    );
}

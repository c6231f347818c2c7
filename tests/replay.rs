//! Replay straight from JetStream: REST NDJSON returns exactly the published events of a range in
//! log order; bad parameters are clear 4xx; the WebSocket replay is paced at `speed` × real time
//! while live ticks keep flowing, and ends with `replay_end`; a backfilled tick and the live tick
//! of the same observation are one event on the bus.

mod common;

use std::time::{Duration, Instant};

use common::*;
use futures::StreamExt;
use serde_json::{json, Value};
use sise::Stages;
use sise_bus::replay::{replay_ticks, ReplaySpec};
use sise_bus::{StreamKind, Tick};

const A: &str = "crypto.upbit.KRW-BTC";
const B: &str = "crypto.upbit.KRW-ETH";

async fn ndjson(app: &TestApp, query: &str) -> (u16, String, Vec<Value>) {
    let resp = reqwest::get(format!("{}/api/v1/replay?{query}", app.base))
        .await
        .expect("http");
    let status = resp.status().as_u16();
    let ctype = resp
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    let text = resp.text().await.expect("body");
    let lines = text
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).expect("each line is JSON"))
        .collect();
    (status, ctype, lines)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rest_replay_returns_exactly_the_range_in_log_order() {
    let app = spawn_app(test_config(&[]), Stages::EDGE).await;
    let t0 = sise_bus::now_ms() - 120_000;
    let mut ticks: Vec<Tick> = Vec::new();
    for i in 0..400i64 {
        ticks.push(tick(
            A,
            t0 + i * 100,
            100.0 + (i % 7) as f64,
            0.5,
            i as u64 + 1,
        ));
        ticks.push(tick(
            B,
            t0 + i * 100 + 50,
            200.0 + (i % 5) as f64,
            1.0,
            i as u64 + 1,
        ));
    }
    // A late tick (published last, exchange time inside the range) and a backfilled one.
    ticks.push(tick(A, t0 + 10_050, 150.0, 2.0, 10_000));
    let mut bf = tick(A, t0 + 10_075, 151.0, 3.0, 10_001);
    bf.backfill = true;
    ticks.push(bf);
    let stored = app.bus.publish_ticks(&ticks).await.expect("publish");
    assert!(stored.iter().all(|s| !s.duplicate));

    let (from, to) = (t0 + 5_000, t0 + 20_000);
    let expected = |ids: &[&str]| -> Vec<(u64, &Tick)> {
        ticks
            .iter()
            .zip(&stored)
            .filter(|(t, _)| ids.contains(&t.instrument.as_str()) && t.ts >= from && t.ts < to)
            .map(|(t, s)| (s.seq, t))
            .collect()
    };

    let (status, ctype, lines) = ndjson(&app, &format!("instrument={A}&from={from}&to={to}")).await;
    assert_eq!(status, 200);
    assert!(ctype.starts_with("application/x-ndjson"), "{ctype}");
    let want = expected(&[A]);
    assert_eq!(want.len(), 150 + 2);
    assert_eq!(lines.len(), want.len());
    for (line, (seq, t)) in lines.iter().zip(&want) {
        assert_eq!(line["type"], "tick");
        assert_eq!(line["seq"].as_u64(), Some(*seq));
        let q = &line["tick"];
        assert_eq!(q["id"], t.instrument.as_str());
        assert_eq!(q["price"].as_f64(), Some(t.price));
        assert_eq!(q["ts"].as_i64(), Some(t.ts));
        assert_eq!(q["ingest_ts"].as_i64(), Some(t.ingest_ts));
        assert_eq!(q["volume"].as_f64(), Some(t.volume));
        assert_eq!(q["day_volume"].as_f64(), t.day_volume);
        assert_eq!(q["prev_close"].as_f64(), t.prev_close);
        assert_eq!(q["change"].as_f64(), t.change);
        assert_eq!(q["change_rate"].as_f64(), t.change_rate);
        assert_eq!(q["source"], "testsrc");
        assert_eq!(q["backfill"].as_bool().unwrap_or(false), t.backfill);
    }
    // Ascending by stream sequence: the late tick comes last, where the log has it.
    let seqs: Vec<u64> = lines.iter().filter_map(|l| l["seq"].as_u64()).collect();
    assert!(seqs.windows(2).all(|w| w[0] < w[1]));
    assert_eq!(
        lines[lines.len() - 2]["tick"]["price"].as_f64(),
        Some(150.0)
    );
    assert_eq!(lines[lines.len() - 1]["tick"]["backfill"], true);

    // Two instruments: merged in log order.
    let (status, _, lines) = ndjson(&app, &format!("instrument={A},{B}&from={from}&to={to}")).await;
    assert_eq!(status, 200);
    let want = expected(&[A, B]);
    let got: Vec<u64> = lines.iter().filter_map(|l| l["seq"].as_u64()).collect();
    assert_eq!(got, want.iter().map(|w| w.0).collect::<Vec<_>>());

    // An empty range, and a range with nothing in it.
    let (status, _, lines) = ndjson(&app, &format!("instrument={A}&from={from}&to={from}")).await;
    assert_eq!((status, lines.len()), (200, 0));
    let (status, _, lines) = ndjson(
        &app,
        &format!("instrument={A}&from={}&to={}", t0 - 90_000, t0 - 60_000),
    )
    .await;
    assert_eq!((status, lines.len()), (200, 0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rest_replay_bad_parameters_are_clear_4xx() {
    let app = spawn_app(test_config(&[]), Stages::EDGE).await;
    let cases = [
        ("from=1&to=2", 400, "missing_parameter"),
        (
            &format!("instrument={A}&to=2") as &str,
            400,
            "missing_parameter",
        ),
        (&format!("instrument={A}&from=1"), 400, "missing_parameter"),
        ("instrument=not-an-id&from=1&to=2", 400, "bad_instrument_id"),
        (
            "instrument=crypto.upbit.KRW-NOPE&from=1&to=2",
            404,
            "unknown_instrument",
        ),
        (&format!("instrument={A}&from=5&to=2"), 400, "bad_range"),
        (
            &format!("instrument={A}&from=yesterday&to=2"),
            400,
            "bad_parameter",
        ),
        (
            &format!("instrument={A}&from=-1&to=2"),
            400,
            "bad_parameter",
        ),
    ];
    for (query, status, code) in cases {
        let (got, body) = app.get(&format!("/api/v1/replay?{query}")).await;
        assert_eq!(got, status, "{query}: {body}");
        assert_eq!(body["error"]["code"], code, "{query}: {body}");
        assert!(body["error"]["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty()));
    }
}

/// Frames until `replay_end`, with the time each arrived.
async fn collect_replay(ws: &mut Ws, limit: Duration) -> (Vec<(Duration, Value)>, Value) {
    let start = Instant::now();
    let mut frames = Vec::new();
    loop {
        let left = limit.saturating_sub(start.elapsed());
        let f = ws_next(ws, left).await.expect("a frame before replay_end");
        if f["type"] == "replay_end" {
            return (frames, f);
        }
        frames.push((start.elapsed(), f));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ws_replay_is_paced_marked_and_live_keeps_flowing() {
    let app = spawn_app(test_config(&[]), Stages::EDGE).await;
    let t0 = sise_bus::now_ms() - 60_000;
    // 101 ticks 200 ms apart: 20 s of market, 2 s at speed 10.
    let ticks: Vec<Tick> = (0..101i64)
        .map(|i| tick(A, t0 + i * 200, 100.0 + i as f64, 1.0, i as u64 + 1))
        .collect();
    app.bus.publish_ticks(&ticks).await.expect("publish");

    let mut ws = ws_connect(&app).await;
    ws_send(&mut ws, json!({"op": "subscribe", "ids": [B]})).await;
    let snap = ws_next(&mut ws, Duration::from_secs(5))
        .await
        .expect("snapshot");
    assert_eq!(snap["type"], "snapshot");

    ws_send(
        &mut ws,
        json!({"op": "replay", "ids": [A], "from": t0, "to": t0 + 20_001, "speed": 10}),
    )
    .await;
    // Live ticks of B while the replay runs.
    let bus = app.bus.clone();
    let live = tokio::spawn(async move {
        for i in 0..5i64 {
            tokio::time::sleep(Duration::from_millis(250)).await;
            let t = tick(
                B,
                sise_bus::now_ms(),
                300.0 + i as f64,
                1.0,
                1_000 + i as u64,
            );
            bus.publish_tick(&t).await.expect("live publish");
        }
    });
    let (frames, end) = collect_replay(&mut ws, Duration::from_secs(15)).await;
    live.await.expect("live publisher");
    assert_eq!(end["count"].as_u64(), Some(101), "{end}");
    assert_eq!(end["ids"], json!([A]));

    let mut replayed: Vec<(Duration, Value)> = Vec::new();
    let mut live_seen = 0;
    for (at, f) in &frames {
        for q in frame_quotes(f) {
            if q["replay"] == true {
                assert_eq!(q["id"], A);
                replayed.push((*at, q));
            } else {
                assert_eq!(q["id"], B, "only subscribed live ids");
                live_seen += 1;
            }
        }
    }
    assert!(live_seen >= 1, "live ticks kept flowing during the replay");
    assert_eq!(replayed.len(), 101);
    let prices: Vec<f64> = replayed
        .iter()
        .filter_map(|(_, q)| q["price"].as_f64())
        .collect();
    assert_eq!(prices, ticks.iter().map(|t| t.price).collect::<Vec<_>>());
    // Paced: each tick arrives (ts - first ts) / 10 after the first, within tolerance.
    let first_at = replayed[0].0;
    let mut worst = 0f64;
    for (at, q) in &replayed {
        let want = (q["ts"].as_i64().unwrap() - t0) as f64 / 10.0;
        let got = (*at - first_at).as_secs_f64() * 1000.0;
        worst = worst.max((got - want).abs());
    }
    assert!(
        worst < 300.0,
        "pacing off by up to {worst:.0} ms at speed 10"
    );
    let span = (replayed[100].0 - first_at).as_secs_f64();
    assert!(
        (1.8..2.6).contains(&span),
        "20 s of market at speed 10 took {span:.2} s"
    );

    // speed 0: as fast as possible, the same ticks.
    ws_send(
        &mut ws,
        json!({"op": "replay", "ids": [A], "from": t0, "to": t0 + 20_001, "speed": 0}),
    )
    .await;
    let started = Instant::now();
    let (frames, end) = collect_replay(&mut ws, Duration::from_secs(10)).await;
    assert_eq!(end["count"].as_u64(), Some(101));
    let n: usize = frames
        .iter()
        .map(|(_, f)| {
            frame_quotes(f)
                .iter()
                .filter(|q| q["replay"] == true)
                .count()
        })
        .sum();
    assert_eq!(n, 101);
    assert!(started.elapsed() < Duration::from_secs(2));

    // A new replay op ends the running one: its replay_end says cancelled, then the new one runs.
    ws_send(
        &mut ws,
        json!({"op": "replay", "ids": [A], "from": t0, "to": t0 + 20_001, "speed": 1}),
    )
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    ws_send(
        &mut ws,
        json!({"op": "replay", "ids": [A], "from": t0, "to": t0 + 1_000, "speed": 0}),
    )
    .await;
    let (_, end) = collect_replay(&mut ws, Duration::from_secs(10)).await;
    assert_eq!(end["cancelled"], true, "{end}");
    let sent = end["count"].as_u64().unwrap();
    assert!((1..101).contains(&sent), "{end}");
    let (frames, end) = collect_replay(&mut ws, Duration::from_secs(10)).await;
    assert_eq!(end["count"].as_u64(), Some(5), "{end}");
    assert!(end.get("cancelled").is_none());
    let n: usize = frames
        .iter()
        .map(|(_, f)| {
            frame_quotes(f)
                .iter()
                .filter(|q| q["replay"] == true)
                .count()
        })
        .sum();
    assert_eq!(n, 5);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ws_replay_bad_ops_get_error_frames() {
    let app = spawn_app(test_config(&[]), Stages::EDGE).await;
    let mut ws = ws_connect(&app).await;
    let cases = [
        (
            json!({"op": "replay", "ids": [A], "from": 5, "to": 2, "speed": 1}),
            "bad_range",
        ),
        (
            json!({"op": "replay", "ids": [A], "from": 5}),
            "missing_parameter",
        ),
        (
            json!({"op": "replay", "ids": [A], "from": 1, "to": 2, "speed": -3}),
            "bad_parameter",
        ),
        (
            json!({"op": "replay", "ids": [], "from": 1, "to": 2}),
            "missing_parameter",
        ),
        (
            json!({"op": "replay", "ids": ["crypto.upbit.KRW-NOPE"], "from": 1, "to": 2}),
            "unknown_instrument",
        ),
    ];
    for (op, code) in cases {
        ws_send(&mut ws, op.clone()).await;
        let f = ws_next(&mut ws, Duration::from_secs(5))
            .await
            .expect("error frame");
        assert_eq!(f["type"], "error", "{op}: {f}");
        assert_eq!(f["code"], code, "{op}: {f}");
        if code == "unknown_instrument" {
            // ...and then the "no known id" error.
            let f = ws_next(&mut ws, Duration::from_secs(5))
                .await
                .expect("error frame");
            assert_eq!(f["code"], "missing_parameter");
        }
    }
    // The socket is still usable.
    ws_send(
        &mut ws,
        json!({"op": "replay", "ids": [A], "from": 1, "to": 2, "speed": 0}),
    )
    .await;
    let f = ws_next(&mut ws, Duration::from_secs(5))
        .await
        .expect("replay_end");
    assert_eq!(f["type"], "replay_end");
    assert_eq!(f["count"], 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backfill_and_live_tick_of_one_observation_are_one_event() {
    let app = spawn_app(test_config(&[]), Stages::INGEST).await;
    let ts = sise_bus::now_ms() - 30_000;
    // Live first, then the backfill of the same trade (same source, instrument, time, sequence).
    let live = tick(A, ts, 101.0, 0.25, 77);
    let mut backfill = live.clone();
    backfill.backfill = true;
    backfill.ingest_ts += 60_000;
    assert_eq!(live.msg_id(), backfill.msg_id());
    let first = app.bus.publish_tick(&live).await.expect("live");
    let again = app.bus.publish_tick(&backfill).await.expect("backfill");
    assert!(!first.duplicate);
    assert!(again.duplicate, "the stream drops the backfilled copy");
    assert_eq!(again.seq, first.seq);
    // Backfill first, then live: the backfill stays, the live copy is dropped.
    let mut bf2 = tick(A, ts + 1_000, 102.0, 0.5, 78);
    bf2.backfill = true;
    let mut live2 = bf2.clone();
    live2.backfill = false;
    assert!(!app.bus.publish_tick(&bf2).await.unwrap().duplicate);
    assert!(app.bus.publish_tick(&live2).await.unwrap().duplicate);
    assert_eq!(app.bus.stream_messages(StreamKind::Ticks).await.unwrap(), 2);

    let spec = ReplaySpec {
        ids: vec![id(A)],
        from: ts,
        to: ts + 2_000,
        slack: Duration::from_secs(300),
    };
    let got: Vec<_> =
        futures::StreamExt::collect::<Vec<_>>(replay_ticks(&app.bus, &spec).await.unwrap()).await;
    let got: Vec<_> = got.into_iter().map(|r| r.unwrap()).collect();
    assert_eq!(got.len(), 2);
    assert!(!got[0].tick.backfill);
    assert_eq!(got[0].tick.ingest_ts, live.ingest_ts);
    assert!(got[1].tick.backfill);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backfill_stored_long_after_its_time_needs_a_wider_slack() {
    let app = spawn_app(test_config(&[]), Stages::INGEST).await;
    // Exchange time two hours ago, stored now (a backfill of an old gap).
    let ts = sise_bus::now_ms() - 2 * 3_600_000;
    let mut t = tick(A, ts, 99.0, 1.0, 5);
    t.backfill = true;
    app.bus.publish_tick(&t).await.unwrap();
    let read = |slack: u64| {
        let spec = ReplaySpec {
            ids: vec![id(A)],
            from: ts - 1_000,
            to: ts + 1_000,
            slack: Duration::from_secs(slack),
        };
        let bus = app.bus.clone();
        async move {
            let s = replay_ticks(&bus, &spec).await.unwrap();
            futures::StreamExt::collect::<Vec<_>>(s).await.len()
        }
    };
    assert_eq!(read(300).await, 0, "outside the default 5-minute window");
    assert_eq!(read(3 * 3_600).await, 1, "found with a 3-hour slack");
}

/// A WebSocket replay at speed 0 of a range far larger than one pull batch, one frame batch and
/// the client queue (tens of thousands of ticks) ends with `replay_end`, every tick once, in order.
/// (It once stalled after the first few thousand ticks.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ws_replay_of_a_large_range_sends_every_tick_in_order() {
    let n: u64 = std::env::var("SISE_TEST_REPLAY_TICKS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(30_000);
    let app = spawn_app(test_config(&[]), Stages::EDGE).await;
    let t0 = sise_bus::now_ms() - 120_000;
    let mut published = 0u64;
    while published < n {
        let ticks: Vec<Tick> = (published..(published + 5_000).min(n))
            .map(|k| tick(A, t0 + k as i64 / 1_000, 100.0 + k as f64, 1.0, k + 1))
            .collect();
        published += ticks.len() as u64;
        app.bus.publish_ticks(&ticks).await.expect("publish");
    }
    let mut ws = ws_connect(&app).await;
    ws_send(
        &mut ws,
        json!({"op": "replay", "ids": [A], "from": t0, "to": t0 + 120_000, "speed": 0}),
    )
    .await;
    let started = Instant::now();
    let mut next = 0u64;
    // Read raw text frames, as a streaming client does: every server frame leads with its
    // `{"type":…` (the bench waited forever on a replay_end whose keys came out sorted).
    let end = loop {
        let msg = tokio::time::timeout(Duration::from_secs(20), ws.next())
            .await
            .unwrap_or_else(|_| panic!("stalled after {next} of {n} replayed ticks"));
        let Some(Ok(tokio_tungstenite::tungstenite::Message::Text(text))) = msg else {
            continue;
        };
        let text = text.as_str();
        if text.starts_with(r#"{"type":"replay_end""#) {
            break serde_json::from_str::<Value>(text).expect("replay_end is JSON");
        }
        assert!(
            text.starts_with(r#"{"type":"tick"#),
            "{}",
            &text[..80.min(text.len())]
        );
        let f: Value = serde_json::from_str(text).expect("frame is JSON");
        for q in frame_quotes(&f) {
            assert_eq!(q["replay"], true);
            assert_eq!(
                q["price"].as_f64(),
                Some(100.0 + next as f64),
                "tick {next} in order"
            );
            next += 1;
        }
    };
    assert_eq!(next, n, "every tick once");
    assert_eq!(end["count"].as_u64(), Some(n), "{end}");
    assert!(
        end.get("cancelled").is_none() && end.get("error").is_none(),
        "{end}"
    );
    eprintln!("WS replay of {n} ticks in {:.2?}", started.elapsed());
}

/// Cleans a namespace when dropped (also when the test fails).
struct Cleanup(sise::Config);

impl Drop for Cleanup {
    fn drop(&mut self) {
        cleanup(&self.0);
    }
}

/// `sise replay --republish NS` (the library function the CLI calls) copies exactly the range's
/// ticks into namespace NS's TICKS stream with their original dedup ids; running it twice
/// stores nothing twice.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn republish_copies_a_range_into_another_namespace_once() {
    let app = spawn_app(test_config(&[]), Stages::INGEST).await;
    let target = test_config(&[]);
    let _clean = Cleanup(target.clone());
    let t0 = sise_bus::now_ms() - 60_000;
    let ticks: Vec<Tick> = (0..300i64)
        .map(|i| {
            tick(
                if i % 2 == 0 { A } else { B },
                t0 + i * 10,
                100.0 + i as f64,
                1.0,
                i as u64 + 1,
            )
        })
        .collect();
    app.bus.publish_ticks(&ticks).await.expect("publish");
    let (from, to) = (t0 + 500, t0 + 2_500);
    let want: Vec<&Tick> = ticks.iter().filter(|t| t.ts >= from && t.ts < to).collect();
    assert_eq!(want.len(), 200);

    let args = sise::replay::ReplayArgs {
        instrument: vec![A.into(), B.into()],
        from,
        to,
        republish: Some(target.namespace.to_string()),
        format: sise::replay::Format::Ndjson,
    };
    let sent = sise::replay::run(&app.config, &args)
        .await
        .expect("republish");
    assert_eq!(sent, 200);
    let other = sise_bus::Bus::from_client(app.bus.client.clone(), target.namespace.clone());
    assert_eq!(other.stream_messages(StreamKind::Ticks).await.unwrap(), 200);
    // Twice: every tick is a duplicate of itself, nothing new is stored.
    assert_eq!(
        sise::replay::run(&app.config, &args).await.expect("again"),
        200
    );
    assert_eq!(other.stream_messages(StreamKind::Ticks).await.unwrap(), 200);

    // Exactly the range's ticks, in log order.
    let spec = ReplaySpec {
        ids: vec![id(A), id(B)],
        from: t0 - 60_000,
        to: t0 + 60_000,
        slack: Duration::from_secs(300),
    };
    let got: Vec<_> =
        futures::StreamExt::collect::<Vec<_>>(replay_ticks(&other, &spec).await.unwrap()).await;
    let got: Vec<Tick> = got.into_iter().map(|r| r.unwrap().tick).collect();
    assert_eq!(got.len(), want.len());
    for (g, w) in got.iter().zip(&want) {
        assert_eq!(
            (&g.instrument, g.ts, g.price, g.seq),
            (&w.instrument, w.ts, w.price, w.seq)
        );
        assert_eq!(g.msg_id(), w.msg_id());
    }
    // The original dedup ids: publishing an original tick into the target is a duplicate.
    let again = other.publish_tick(want[0]).await.expect("publish original");
    assert!(
        again.duplicate,
        "the republished copy carries the original Nats-Msg-Id"
    );
}

fn article(n: u64, published: i64, tags: &[&str]) -> sise_bus::News {
    sise_bus::News {
        v: sise_bus::SCHEMA_VERSION,
        id: format!("{n:064x}"),
        source: sise_bus::SourceName::parse("testnews").unwrap(),
        title: format!("기사 {n}"),
        summary: Some("요약".into()),
        url: format!("https://example.com/{n}"),
        image: None,
        published,
        language: Some("ko".into()),
        instruments: tags.iter().map(|t| id(t)).collect(),
    }
}

/// News lines: a replay of an instrument also carries the articles tagged with it that the log
/// stored in the range (`{"type":"news","seq":…,"news":{…}}`, the fields of `GET /api/v1/news`),
/// merged with the ticks in log order; an article of another instrument or stored after the
/// range is not in it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rest_replay_carries_the_news_of_the_range_in_log_order() {
    let app = spawn_app(test_config(&[]), Stages::EDGE).await;
    let from = sise_bus::now_ms();
    let phase = |base: u64| -> Vec<Tick> {
        (0..20)
            .map(|i| tick(A, sise_bus::now_ms(), 100.0 + i as f64, 0.1, base + i))
            .collect()
    };
    // Store times are milliseconds: keep the phases a few apart so their order is certain.
    let gap = || tokio::time::sleep(Duration::from_millis(3));
    let first = phase(1);
    app.bus.publish_ticks(&first).await.expect("publish");
    gap().await;
    // Published a day before it reached the log (NewsAPI's free plan): found by its store time.
    let a1 = article(1, from - 86_400_000, &[A]);
    let other = article(2, from, &[B]);
    let a3 = article(3, from, &[B, A]);
    let s1 = app.bus.publish_news(&a1).await.expect("news");
    app.bus.publish_news(&other).await.expect("news");
    let s3 = app.bus.publish_news(&a3).await.expect("news");
    gap().await;
    let second = phase(100);
    app.bus.publish_ticks(&second).await.expect("publish");
    gap().await;
    let to = sise_bus::now_ms();
    gap().await;
    app.bus
        .publish_news(&article(4, to, &[A]))
        .await
        .expect("news");
    app.bus.publish_ticks(&phase(200)).await.expect("publish");

    let (status, _, lines) = ndjson(&app, &format!("instrument={A}&from={from}&to={to}")).await;
    assert_eq!(status, 200);
    let kinds: Vec<&str> = lines.iter().map(|l| l["type"].as_str().unwrap()).collect();
    let mut want = vec!["tick"; 20];
    want.extend(["news", "news"]);
    want.extend(vec!["tick"; 20]);
    assert_eq!(kinds, want, "{lines:?}");
    let prices: Vec<f64> = lines
        .iter()
        .filter(|l| l["type"] == "tick")
        .map(|l| l["tick"]["price"].as_f64().unwrap())
        .collect();
    let sent: Vec<f64> = first.iter().chain(&second).map(|t| t.price).collect();
    assert_eq!(prices, sent);
    let n1 = &lines[20];
    assert_eq!(n1["seq"], s1.seq, "{n1}");
    assert_eq!(
        n1["news"],
        json!({
            "id": a1.id, "source": "testnews", "title": "기사 1", "summary": "요약",
            "url": "https://example.com/1", "image": null, "published": a1.published,
            "language": "ko", "instruments": [A],
        })
    );
    assert_eq!(lines[21]["seq"], s3.seq);
    assert_eq!(lines[21]["news"]["instruments"], json!([B, A]));

    // Only B: the two articles tagged with it, no ticks.
    let (_, _, lines) = ndjson(&app, &format!("instrument={B}&from={from}&to={to}")).await;
    let titles: Vec<&str> = lines
        .iter()
        .map(|l| l["news"]["title"].as_str().unwrap())
        .collect();
    assert_eq!(titles, ["기사 2", "기사 3"], "{lines:?}");
}

//! Resume and exactly-once: a projection killed mid-stream and started again applies every tick
//! exactly once (no duplicate rows, candle volume = sum of tick volumes), and a garbage message
//! on the bus is counted and skipped without stopping anything.

mod common;

use std::time::Duration;

use async_nats::header::{HeaderMap, NATS_MESSAGE_ID};
use common::*;
use sise::Stages;
use sise_bus::StreamKind;
use sise_projections::history::HistoryReader;

const N_PER_INSTRUMENT: usize = 6_000;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_projection_resumes_exactly_once() {
    let config = test_config(&[]);
    // Publisher only (ingest stage with no sources): streams exist, nothing projects yet.
    let publisher = spawn_app(config.clone(), Stages::INGEST).await;
    let ids = ["crypto.upbit.KRW-SOL", "stock.krx.058610", "metal.spot.XAU"];
    let t0 = (sise_bus::now_ms() / 60_000 - 30) * 60_000;
    let mut ticks = Vec::new();
    for (k, inst) in ids.iter().enumerate() {
        for i in 0..N_PER_INSTRUMENT {
            let vol = ((i * 7 + k) % 13) as f64 * 0.125;
            ticks.push(tick(
                inst,
                t0 + (i as i64) * 250,
                100.0 + (i % 17) as f64,
                vol,
                i as u64 + 1,
            ));
        }
    }
    for chunk in ticks.chunks(2_000) {
        publisher.bus.publish_ticks(chunk).await.unwrap();
    }
    // A retried publish of the same ticks is dropped by the stream (Nats-Msg-Id).
    let again = publisher.bus.publish_ticks(&ticks[..500]).await.unwrap();
    assert!(again.iter().all(|s| s.duplicate));
    let total = ticks.len() as u64;
    assert_eq!(
        publisher
            .bus
            .stream_messages(StreamKind::Ticks)
            .await
            .unwrap(),
        total
    );

    // First projection run: killed (no graceful shutdown) as soon as it has applied something.
    let mut first = spawn_app(config.clone(), Stages::PROJECT).await;
    let m = first.metrics.clone();
    wait_for("some progress", Duration::from_secs(30), || async {
        (m.applied("history") > 0).then_some(())
    })
    .await;
    first.kill();
    let applied_before_kill = m.applied("history");

    // Second run: picks up where the committed sequence says.
    let second = spawn_app(config.clone(), Stages::PROJECT).await;
    let pool = sise_projections::db::connect(config.database_url(), &config.namespace, 2)
        .await
        .unwrap();
    let reader = HistoryReader::new(pool);
    wait_for("every tick projected", Duration::from_secs(60), || async {
        (reader.last_seq().await.ok()? == total).then_some(())
    })
    .await;
    eprintln!("applied before the kill: {applied_before_kill} of {total}");

    for (k, inst) in ids.iter().enumerate() {
        let id = id(inst);
        let (rows, tick_volume) = reader.tick_totals(&id).await.unwrap();
        assert_eq!(rows, N_PER_INSTRUMENT as i64, "{inst}: one row per tick");
        let want_volume: f64 = (0..N_PER_INSTRUMENT)
            .map(|i| ((i * 7 + k) % 13) as f64 * 0.125)
            .sum();
        assert_eq!(tick_volume, want_volume, "{inst}: tick volume");
        let (candles, candle_volume, candle_ticks) = reader.candle_totals(&id).await.unwrap();
        assert_eq!(
            candle_ticks, N_PER_INSTRUMENT as i64,
            "{inst}: every tick counted once in candles"
        );
        assert!(
            (candle_volume - want_volume).abs() < 1e-6,
            "{inst}: candle volume {candle_volume} vs {want_volume}"
        );
        assert_eq!(
            candles,
            (N_PER_INSTRUMENT as i64 * 250 + 59_999) / 60_000,
            "{inst}: candle rows"
        );
    }
    // The latest model resumed as well and holds the newest tick of each instrument.
    let latest = second.app_state.is_none();
    assert!(latest, "project stage has no edge");
    let redis = sise::app::connect_redis(&config.redis_url).await.unwrap();
    let lr = sise_projections::latest::LatestReader::new(redis, config.namespace.clone());
    wait_for("latest caught up", Duration::from_secs(30), || async {
        (lr.last_seq().await.ok()? == total).then_some(())
    })
    .await;
    let got = lr
        .get_many(&ids.iter().map(|s| id(s)).collect::<Vec<_>>())
        .await
        .unwrap();
    for (q, inst) in got.iter().zip(ids) {
        let q = q.as_ref().expect("quote");
        let last = ticks
            .iter()
            .rfind(|t| t.instrument.as_str() == inst)
            .unwrap();
        assert_eq!(
            (q.quote.price, q.quote.ts, q.quote.volume),
            (last.price, last.ts, last.volume),
            "{inst}"
        );
    }
    drop(publisher);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_on_the_bus_is_counted_and_skipped() {
    let app = spawn_app(test_config(&[]), Stages::ALL).await;
    let xrp = "crypto.upbit.KRW-XRP";
    let subject = app.ns().tick_subject(&id(xrp));
    let mut ws = ws_connect(&app).await;
    ws_send(
        &mut ws,
        serde_json::json!({"op": "subscribe", "ids": [xrp]}),
    )
    .await;
    assert_eq!(
        ws_next(&mut ws, Duration::from_secs(10)).await.unwrap()["type"],
        "snapshot"
    );

    let now = sise_bus::now_ms();
    app.bus
        .publish_tick(&tick(xrp, now - 2_000, 3_100.0, 10.0, 1))
        .await
        .unwrap();
    for (i, junk) in [&b"\xc1not msgpack"[..], b"", b"{\"json\":true}"]
        .iter()
        .enumerate()
    {
        let mut h = HeaderMap::new();
        h.insert(NATS_MESSAGE_ID, format!("junk-{i}").as_str());
        app.bus
            .js
            .publish_with_headers(subject.clone(), h, bytes::Bytes::copy_from_slice(junk))
            .await
            .unwrap()
            .await
            .unwrap();
    }
    app.bus
        .publish_tick(&tick(xrp, now - 1_000, 3_125.0, 5.0, 2))
        .await
        .unwrap();

    // Both projections and the hub skip the junk and keep going.
    let m = app.metrics.clone();
    wait_for("junk counted", Duration::from_secs(20), || async {
        (m.decode_errors("history") == 3 && m.decode_errors("latest") == 3).then_some(())
    })
    .await;
    let body = wait_for("good ticks projected", Duration::from_secs(20), || async {
        let (_, b) = app.get(&format!("/api/v1/quotes?ids={xrp}")).await;
        (b["quotes"][0]["price"] == 3_125.0).then_some(b)
    })
    .await;
    assert_eq!(body["quotes"][0]["volume"], 5.0);
    // History is its own consumer: wait for it too (the junk between the ticks changed nothing).
    let v = wait_for("history caught up", Duration::from_secs(20), || async {
        let (_, c) = app.get(&format!("/api/v1/candles/{xrp}?interval=1m")).await;
        let v = candle_volume(&c);
        (v >= 15.0).then_some(v)
    })
    .await;
    assert_eq!(v, 15.0);
    let mut last = None;
    while let Some(frame) = ws_next(&mut ws, Duration::from_secs(3)).await {
        for q in frame_quotes(&frame) {
            last = Some(q["price"].as_f64().unwrap());
        }
        if last == Some(3_125.0) {
            break;
        }
    }
    assert_eq!(
        last,
        Some(3_125.0),
        "the socket keeps delivering after the junk"
    );
    let text = reqwest::get(format!("{}/metrics", app.base))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        text.contains("sise_hub_decode_errors_total 3"),
        "hub counted the junk"
    );
}

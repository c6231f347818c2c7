//! `sise project rebuild`: a read model rebuilt from the log while ticks keep flowing equals the
//! one built live (and an independent computation from the published ticks); retention is the
//! configured age on the TICKS stream; a minute without ticks stays a gap in the candles.

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use common::*;
use sise::rebuild::{rebuild, Model};
use sise::Stages;
use sise_bus::{News, SourceName, StreamKind, Tick, SCHEMA_VERSION};
use sise_projections::latest::LatestReader;

const IDS: [&str; 3] = [
    "crypto.upbit.KRW-BTC",
    "crypto.upbit.KRW-SOL",
    "stock.krx.068270",
];

/// One candle row: (o, h, l, c, v, n, o_ts, o_seq, c_ts, c_seq).
type Row = (f64, f64, f64, f64, f64, i32, i64, i64, i64, i64);

#[derive(sqlx::FromRow)]
struct CandleRow {
    instrument: String,
    t: i64,
    o: f64,
    h: f64,
    l: f64,
    c: f64,
    v: f64,
    n: i32,
    o_ts: i64,
    o_seq: i64,
    c_ts: i64,
    c_seq: i64,
}

async fn candles(pool: &sqlx::PgPool) -> BTreeMap<(String, i64), Row> {
    let rows: Vec<CandleRow> = sqlx::query_as(
        "SELECT instrument, t, o, h, l, c, v, n, o_ts, o_seq, c_ts, c_seq FROM candles_1m",
    )
    .fetch_all(pool)
    .await
    .expect("candles");
    rows.into_iter()
        .map(|r| {
            (
                (r.instrument, r.t),
                (
                    r.o, r.h, r.l, r.c, r.v, r.n, r.o_ts, r.o_seq, r.c_ts, r.c_seq,
                ),
            )
        })
        .collect()
}

/// Candles computed in Rust from the published ticks and their stream sequences.
fn oracle(ticks: &[(u64, Tick)]) -> BTreeMap<(String, i64), Row> {
    let mut out: BTreeMap<(String, i64), Row> = BTreeMap::new();
    for (seq, t) in ticks {
        let key = (t.instrument.to_string(), t.ts - t.ts.rem_euclid(60_000));
        let s = *seq as i64;
        let e = out
            .entry(key)
            .or_insert((t.price, t.price, t.price, t.price, 0.0, 0, t.ts, s, t.ts, s));
        if (t.ts, s) < (e.6, e.7) {
            e.0 = t.price;
            e.6 = t.ts;
            e.7 = s;
        }
        if (t.ts, s) > (e.8, e.9) {
            e.3 = t.price;
            e.8 = t.ts;
            e.9 = s;
        }
        e.1 = e.1.max(t.price);
        e.2 = e.2.min(t.price);
        e.4 += t.volume;
        e.5 += 1;
    }
    out
}

fn assert_same(got: &BTreeMap<(String, i64), Row>, want: &BTreeMap<(String, i64), Row>) {
    assert_eq!(
        got.keys().collect::<Vec<_>>(),
        want.keys().collect::<Vec<_>>()
    );
    for (k, w) in want {
        let g = &got[k];
        assert!((g.4 - w.4).abs() < 1e-9, "{k:?}: volume {} vs {}", g.4, w.4);
        let (mut g, mut w) = (*g, *w);
        g.4 = 0.0;
        w.4 = 0.0;
        assert_eq!(g, w, "{k:?}");
    }
}

fn batch(t0: i64, minutes: i64, per_minute: i64, salt: u64) -> Vec<Tick> {
    let mut out = Vec::new();
    for m in 0..minutes {
        for i in 0..per_minute {
            for (k, inst) in IDS.iter().enumerate() {
                // Out of order within a minute, fractional volumes.
                let j = (i * 7 + k as i64) % per_minute;
                let ts = t0 + m * 60_000 + j * (60_000 / per_minute);
                let price = 100.0 + ((salt as i64 + m * 13 + i * 5 + k as i64) % 29) as f64;
                let vol = ((i as u64 * 3 + salt + k as u64) % 11) as f64 * 0.125;
                let seq = salt * 1_000_000 + (m * per_minute + i) as u64;
                out.push(tick(inst, ts, price, vol, seq));
            }
        }
    }
    out
}

async fn caught_up(app: &TestApp, pool: &sqlx::PgPool, latest: &LatestReader) {
    let bus = app.bus.clone();
    wait_for("projections caught up", Duration::from_secs(60), || {
        let bus = bus.clone();
        async move {
            let (_, last) = sise_bus::replay::last_sequence(&bus, StreamKind::Ticks)
                .await
                .ok()?;
            let h = sise_projections::db::last_seq(pool, "history").await.ok()?;
            let l = latest.last_seq().await.ok()?;
            (h == last && l == last).then_some(())
        }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rebuild_while_ticks_flow_equals_the_live_model() {
    let config = test_config(&[]);
    let app = spawn_app(config.clone(), Stages::ALL).await;
    let pool = sise_projections::db::connect(config.database_url(), app.ns(), 2)
        .await
        .expect("pg");
    let redis = sise::app::connect_redis(&config.redis_url)
        .await
        .expect("redis");
    let latest = LatestReader::new(redis.clone(), app.ns().clone());
    let t0 = (sise_bus::now_ms() / 60_000 - 50) * 60_000;

    // Built live.
    let a = batch(t0, 20, 40, 1);
    let stored = app.bus.publish_ticks(&a).await.expect("publish");
    let mut published: Vec<(u64, Tick)> = stored.iter().map(|s| s.seq).zip(a).collect();
    caught_up(&app, &pool, &latest).await;
    let live_a = candles(&pool).await;
    assert_same(&live_a, &oracle(&published));

    // Rebuild history and latest while more ticks (later minutes) keep arriving.
    let bus = app.bus.clone();
    let flow = tokio::spawn(async move {
        let b = batch(t0 + 20 * 60_000, 20, 40, 2);
        let mut out = Vec::new();
        for chunk in b.chunks(60) {
            let stored = bus.publish_ticks(chunk).await.expect("publish");
            out.extend(stored.iter().map(|s| s.seq).zip(chunk.iter().cloned()));
            tokio::time::sleep(Duration::from_millis(15)).await;
        }
        out
    });
    let h = rebuild(&config, Model::History, |_| {})
        .await
        .expect("rebuild history");
    assert!(h.events >= published.len() as u64, "{h:?}");
    let l = rebuild(&config, Model::Latest, |_| {})
        .await
        .expect("rebuild latest");
    assert!(l.events >= published.len() as u64, "{l:?}");
    published.extend(flow.await.expect("publisher"));
    caught_up(&app, &pool, &latest).await;

    // Equal to the model built live before the rebuild (the minutes it had) ...
    let after = candles(&pool).await;
    for (k, row) in &live_a {
        assert_eq!(after.get(k), Some(row), "{k:?} changed by the rebuild");
    }
    // ... and to the candles computed from every published tick.
    assert_same(&after, &oracle(&published));
    let (n,): (i64,) = sqlx::query_as("SELECT count(*) FROM ticks")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(n as usize, published.len());

    // latest: per instrument the tick newest by (exchange time, stream sequence).
    let ids: Vec<_> = IDS.iter().map(|s| id(s)).collect();
    let quotes = latest.get_many(&ids).await.unwrap();
    for (inst, q) in IDS.iter().zip(quotes) {
        let q = q.expect("a quote");
        let (seq, t) = published
            .iter()
            .filter(|(_, t)| t.instrument.as_str() == *inst)
            .max_by_key(|(s, t)| (t.ts, *s))
            .unwrap();
        assert_eq!((q.seq, q.quote.ts, q.quote.price), (*seq, t.ts, t.price));
    }

    // Nothing left aside.
    let (aside,): (i64,) = sqlx::query_as(
        "SELECT count(*) FROM information_schema.schemata WHERE schema_name LIKE $1",
    )
    .bind(format!("{}\\_%", app.ns()))
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(aside, 0);
    let mut r = redis.clone();
    let left: i64 = redis::cmd("EXISTS")
        .arg(app.ns().redis_aside(&app.ns().redis_latest()))
        .query_async(&mut r)
        .await
        .unwrap();
    assert_eq!(left, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rebuild_news_keeps_every_article_once() {
    let config = test_config(&[]);
    let app = spawn_app(config.clone(), Stages::ALL).await;
    let now = sise_bus::now_ms();
    for i in 0..5 {
        let n = News {
            v: SCHEMA_VERSION,
            id: format!("{i:064x}"),
            source: SourceName::parse("testnews").unwrap(),
            title: format!("기사 {i}"),
            summary: Some("요약".into()),
            url: format!("https://example.com/{i}"),
            image: None,
            published: now - i * 60_000,
            language: Some("ko".into()),
            instruments: vec![id(IDS[0])],
        };
        app.bus.publish_news(&n).await.unwrap();
        // A republished article is one row.
        app.bus.publish_news(&n).await.unwrap();
    }
    let (_, before) = wait_for("news projected", Duration::from_secs(20), || async {
        let (s, b) = app.get("/api/v1/news?limit=50").await;
        (b["news"].as_array().map(|a| a.len()) == Some(5)).then_some((s, b))
    })
    .await;
    let r = rebuild(&config, Model::News, |_| {})
        .await
        .expect("rebuild");
    assert_eq!(r.events, 5);
    let (_, after) = app.get("/api/v1/news?limit=50").await;
    assert_eq!(after, before);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ticks_retention_is_the_configured_age_and_follows_changes() {
    let mut config = test_config(&[]);
    config.ticks_max_age_days = 7;
    let app = spawn_app(config.clone(), Stages::INGEST).await;
    let max_age = |bus: sise_bus::Bus| async move {
        let mut s = bus
            .js
            .get_stream(bus.ns.stream(StreamKind::Ticks))
            .await
            .unwrap();
        let info = s.info().await.unwrap();
        (info.config.max_age, info.config.storage)
    };
    let (age, storage) = max_age(app.bus.clone()).await;
    assert_eq!(age, Duration::from_secs(7 * 86_400));
    assert_eq!(storage, async_nats::jetstream::stream::StorageType::File);
    // A restart with another age updates the existing stream.
    config.ticks_max_age_days = 45;
    let again = sise::App::build(config.clone(), Stages::INGEST)
        .await
        .unwrap();
    let (age, _) = max_age(again.bus().clone()).await;
    assert_eq!(age, Duration::from_secs(45 * 86_400));
    // The default is 30 days.
    assert_eq!(sise::Config::defaults().ticks_max_age_days, 30);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_minute_without_ticks_is_a_gap_not_an_invented_candle() {
    let config = test_config(&[]);
    let app = spawn_app(config.clone(), Stages::ALL).await;
    let m0 = (sise_bus::now_ms() / 60_000 - 10) * 60_000;
    let inst = IDS[0];
    let ticks = vec![
        tick(inst, m0 + 1_000, 100.0, 1.0, 1),
        tick(inst, m0 + 50_000, 101.0, 1.0, 2),
        tick(inst, m0 + 3 * 60_000 + 5_000, 99.0, 2.0, 3),
    ];
    app.bus.publish_ticks(&ticks).await.unwrap();
    let path = format!(
        "/api/v1/candles/{inst}?interval=1m&from={m0}&to={}",
        m0 + 5 * 60_000
    );
    let body = wait_for("candles", Duration::from_secs(20), || async {
        let (_, b) = app.get(&path).await;
        (b["candles"].as_array().map(|a| a.len()) == Some(2)).then_some(b)
    })
    .await;
    let ts: Vec<i64> = body["candles"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|c| c["t"].as_i64())
        .collect();
    assert_eq!(ts, vec![m0, m0 + 3 * 60_000], "minutes 1 and 2 stay gaps");
    // A rebuild from the log invents nothing either.
    rebuild(&config, Model::History, |_| {}).await.unwrap();
    let (_, again) = app.get(&path).await;
    assert_eq!(again, body);
}

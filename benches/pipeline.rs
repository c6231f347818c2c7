//! `cargo bench --bench pipeline`: measures, on this machine, against the real NATS, Redis and
//! PostgreSQL (in a throwaway namespace that is deleted afterwards):
//!
//! 1. publish throughput (pipelined JetStream publishes with dedup ids);
//! 2. projection throughput: ticks/s through `latest` (Redis) and `history` (PostgreSQL) together,
//!    from a stream holding N ticks to both read models caught up;
//! 3. publish → browser-WebSocket latency (median, p90, p99, max) with C clients each subscribed
//!    to 20 instruments while ticks are published at a steady rate.
//!
//! Knobs (environment): BENCH_TICKS (default 200000), BENCH_CLIENTS (100), BENCH_RATE (2000
//! ticks/s), BENCH_SECONDS (10), BENCH_BATCH (projection batch, 1000), BENCH_WS (1: run the
//! WebSocket part).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::{SinkExt, StreamExt};
use sise::{App, Config, Stages};
use sise_bus::{now_ms, InstrumentId, Namespace, SourceName, Tick, SCHEMA_VERSION};
use tokio_tungstenite::tungstenite::Message;
use tokio_util::sync::CancellationToken;

fn env(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn config() -> Config {
    let mut c = Config::defaults();
    let ns = format!("bench_{}", uuid::Uuid::new_v4().simple());
    c.namespace = Namespace::parse(&ns[..24]).expect("namespace");
    c.http_addr = "127.0.0.1:0".parse().expect("addr");
    c.sources = Vec::new();
    c.rate_limit = 0;
    c.projection_batch = env("BENCH_BATCH", 1_000) as u32;
    c
}

fn make_tick(id: &InstrumentId, ts: i64, seq: u64, volume: f64) -> Tick {
    Tick {
        v: SCHEMA_VERSION,
        instrument: id.clone(),
        price: 100.0 + (seq % 50) as f64,
        prev_close: Some(100.0),
        change: Some((seq % 50) as f64),
        change_rate: Some((seq % 50) as f64 / 100.0),
        volume,
        day_volume: Some(seq as f64),
        ts,
        ingest_ts: ts,
        source: SourceName::parse("bench").expect("source"),
        seq,
        backfill: false,
        inputs: Vec::new(),
    }
}

async fn cleanup(c: &Config) {
    if let Ok(bus) = sise_bus::Bus::connect(&c.nats_url, c.namespace.clone()).await {
        let _ = sise_bus::stream::delete_streams(&bus.js, &c.namespace).await;
    }
    if let Ok(mut r) = sise::app::connect_redis(&c.redis_url).await {
        let _ = sise_projections::latest::delete_namespace(&mut r, &c.namespace).await;
    }
    let _ = sise_projections::db::drop_schema(c.database_url(), &c.namespace).await;
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i]
}

async fn throughput(n: u64) -> anyhow::Result<()> {
    let c = config();
    let publisher = App::build(c.clone(), Stages::INGEST).await?;
    let bus = publisher.bus().clone();
    let registry = sise_pipelines::Registry::builtin()?;
    let ids: Vec<InstrumentId> = registry
        .instruments()
        .iter()
        .map(|i| i.id.clone())
        .collect();
    let t0 = now_ms() - 3_600_000;
    let ticks: Vec<Tick> = (0..n)
        .map(|k| {
            make_tick(
                &ids[(k % ids.len() as u64) as usize],
                t0 + (k / 20) as i64,
                k + 1,
                0.5,
            )
        })
        .collect();
    let start = Instant::now();
    for chunk in ticks.chunks(5_000) {
        bus.publish_ticks(chunk).await?;
    }
    let publish = start.elapsed();
    println!(
        "publish:     {n} ticks in {:.2} s = {:.0} ticks/s (JetStream acked, dedup ids)",
        publish.as_secs_f64(),
        n as f64 / publish.as_secs_f64()
    );

    let project = App::build(c.clone(), Stages::PROJECT).await?;
    let redis = sise::app::connect_redis(&c.redis_url).await?;
    let latest = sise_projections::latest::LatestReader::new(redis, c.namespace.clone());
    let pool = sise_projections::db::connect(c.database_url(), &c.namespace, 2).await?;
    let history = sise_projections::history::HistoryReader::new(pool);
    let cancel = CancellationToken::new();
    let cc = cancel.clone();
    let start = Instant::now();
    let handle = tokio::spawn(project.run_until(async move { cc.cancelled().await }));
    let (mut lat_done, mut hist_done) = (None, None);
    while lat_done.is_none() || hist_done.is_none() {
        tokio::time::sleep(Duration::from_millis(20)).await;
        if lat_done.is_none() && latest.last_seq().await? >= n {
            lat_done = Some(start.elapsed());
        }
        if hist_done.is_none() && history.last_seq().await? >= n {
            hist_done = Some(start.elapsed());
        }
        anyhow::ensure!(
            start.elapsed() < Duration::from_secs(600),
            "projections did not catch up"
        );
    }
    let both = lat_done.max(hist_done).unwrap_or_default();
    println!(
        "project:     latest (Redis) {:.0} ticks/s, history (PostgreSQL ticks + 1m candles) {:.0} ticks/s, both caught up in {:.2} s = {:.0} ticks/s",
        n as f64 / lat_done.unwrap_or_default().as_secs_f64(),
        n as f64 / hist_done.unwrap_or_default().as_secs_f64(),
        both.as_secs_f64(),
        n as f64 / both.as_secs_f64()
    );
    cancel.cancel();
    let _ = handle.await;
    cleanup(&c).await;
    Ok(())
}

async fn ws_latency(clients: u64, rate: u64, seconds: u64) -> anyhow::Result<()> {
    let c = config();
    let app = App::build(c.clone(), Stages::ALL).await?;
    let port = app.port();
    let bus = app.bus().clone();
    let cancel = CancellationToken::new();
    let cc = cancel.clone();
    let handle = tokio::spawn(app.run_until(async move { cc.cancelled().await }));
    let registry = sise_pipelines::Registry::builtin()?;
    let ids: Vec<InstrumentId> = registry
        .instruments()
        .iter()
        .map(|i| i.id.clone())
        .take(20)
        .collect();

    // Send time of each tick, keyed by its unique volume.
    let sent: Arc<Mutex<HashMap<u64, Instant>>> = Arc::default();
    let samples: Arc<Mutex<Vec<f64>>> = Arc::default();
    let mut readers = Vec::new();
    for _ in 0..clients {
        let (mut ws, _) =
            tokio_tungstenite::connect_async(format!("ws://127.0.0.1:{port}/ws")).await?;
        let sub = serde_json::json!({"op": "subscribe", "ids": ids}).to_string();
        ws.send(Message::Text(sub.into())).await?;
        let (sent, samples) = (sent.clone(), samples.clone());
        readers.push(tokio::spawn(async move {
            while let Some(Ok(msg)) = ws.next().await {
                let Message::Text(text) = msg else { continue };
                let now = Instant::now();
                let Ok(v) = serde_json::from_str::<serde_json::Value>(text.as_str()) else {
                    continue;
                };
                let quotes = match v["type"].as_str() {
                    Some("tick") => vec![v.clone()],
                    Some("ticks") => v["ticks"].as_array().cloned().unwrap_or_default(),
                    _ => continue,
                };
                let sent = sent.lock().map(|s| {
                    quotes
                        .iter()
                        .filter_map(|q| {
                            s.get(&(q["volume"].as_f64().unwrap_or(0.0) as u64))
                                .copied()
                        })
                        .collect::<Vec<_>>()
                });
                if let (Ok(times), Ok(mut out)) = (sent, samples.lock()) {
                    out.extend(
                        times
                            .iter()
                            .map(|t| now.duration_since(*t).as_secs_f64() * 1e3),
                    );
                }
            }
        }));
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let total = rate * seconds;
    let period = Duration::from_secs_f64(1.0 / rate as f64);
    let mut next = tokio::time::Instant::now();
    let start = Instant::now();
    for k in 1..=total {
        let id = &ids[(k % ids.len() as u64) as usize];
        let t = make_tick(id, now_ms(), k, k as f64);
        if let Ok(mut s) = sent.lock() {
            s.insert(k, Instant::now());
        }
        bus.publish_tick(&t).await?;
        next += period;
        tokio::time::sleep_until(next).await;
    }
    let took = start.elapsed();
    tokio::time::sleep(Duration::from_secs(1)).await;
    let mut lat = samples.lock().map(|s| s.clone()).unwrap_or_default();
    lat.sort_by(|a, b| a.total_cmp(b));
    let expected = total * clients;
    println!(
        "ws latency:  {clients} clients × {} instruments, {total} ticks at {:.0}/s: {} deliveries ({:.1} % of {expected}; the rest conflated), publish→client ms: median {:.2}, p90 {:.2}, p99 {:.2}, max {:.2}",
        ids.len(),
        total as f64 / took.as_secs_f64(),
        lat.len(),
        100.0 * lat.len() as f64 / expected as f64,
        percentile(&lat, 0.5),
        percentile(&lat, 0.9),
        percentile(&lat, 0.99),
        lat.last().copied().unwrap_or(f64::NAN),
    );
    for r in readers {
        r.abort();
    }
    cancel.cancel();
    let _ = handle.await;
    cleanup(&c).await;
    Ok(())
}

fn main() -> anyhow::Result<()> {
    // `cargo bench` passes --bench; `cargo test --benches` would pass nothing useful either.
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    rt.block_on(async {
        println!(
            "sise pipeline bench ({} cores)",
            std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(1)
        );
        throughput(env("BENCH_TICKS", 200_000)).await?;
        if env("BENCH_WS", 1) == 0 {
            return Ok(());
        }
        ws_latency(
            env("BENCH_CLIENTS", 100),
            env("BENCH_RATE", 2_000),
            env("BENCH_SECONDS", 10),
        )
        .await
    })
}

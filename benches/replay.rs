//! `cargo bench --bench replay`: replay and rebuild on this machine, against the real NATS,
//! Redis and PostgreSQL (a throwaway namespace, deleted afterwards):
//!
//! 1. publish N ticks of one instrument (BENCH_TICKS, default 1,000,000);
//! 2. REST: `GET /api/v1/replay` of the whole range, read as a stream: events/s, and the
//!    process's resident memory sampled during the replay (peak minus the level before), for a
//!    tenth of the range and for all of it: flat memory means the two peaks are alike;
//! 3. WebSocket: the replay op at speed 0 over the whole range: events/s;
//! 4. rebuild: `sise project rebuild history` and `latest` of the N ticks: seconds and events/s.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::{SinkExt, StreamExt};
use sise::rebuild::{rebuild, Model};
use sise::{App, Config, Stages};
use sise_bus::{now_ms, InstrumentId, Namespace, SourceName, Tick, SCHEMA_VERSION};
use tokio_tungstenite::tungstenite::Message;
use tokio_util::sync::CancellationToken;

const ID: &str = "crypto.upbit.KRW-BTC";

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
    c.replay_slack_secs = 3 * 3_600;
    c.projection_batch = env("BENCH_BATCH", 5_000) as u32;
    c
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

/// Resident memory of this process (kB), from /proc/self/status.
fn rss_kb() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or(0)
}

/// Sample RSS every 20 ms until stopped; returns the peak.
fn sample_rss() -> (Arc<AtomicBool>, tokio::task::JoinHandle<u64>) {
    let stop = Arc::new(AtomicBool::new(false));
    let s = stop.clone();
    let h = tokio::spawn(async move {
        let mut peak = rss_kb();
        while !s.load(Ordering::Relaxed) {
            peak = peak.max(rss_kb());
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        peak.max(rss_kb())
    });
    (stop, h)
}

async fn rest_replay(base: &str, from: i64, to: i64) -> anyhow::Result<(u64, f64, i64)> {
    let before = rss_kb();
    let (stop, sampler) = sample_rss();
    let started = Instant::now();
    let resp = reqwest::get(format!(
        "{base}/api/v1/replay?instrument={ID}&from={from}&to={to}"
    ))
    .await?;
    anyhow::ensure!(resp.status().is_success(), "status {}", resp.status());
    let mut resp = resp;
    let mut lines = 0u64;
    while let Some(chunk) = resp.chunk().await? {
        lines += chunk.iter().filter(|b| **b == b'\n').count() as u64;
    }
    let secs = started.elapsed().as_secs_f64();
    stop.store(true, Ordering::Relaxed);
    let peak = sampler.await?;
    Ok((lines, secs, peak as i64 - before as i64))
}

async fn ws_replay(ws_url: &str, from: i64, to: i64) -> anyhow::Result<(u64, f64)> {
    let (mut ws, _) = tokio_tungstenite::connect_async(ws_url).await?;
    let op = serde_json::json!({"op": "replay", "ids": [ID], "from": from, "to": to, "speed": 0});
    let started = Instant::now();
    ws.send(Message::Text(op.to_string().into())).await?;
    let mut n = 0u64;
    loop {
        // Bounded: a stalled replay fails the bench (and its namespace is still cleaned up).
        let Ok(next) = tokio::time::timeout(Duration::from_secs(30), ws.next()).await else {
            anyhow::bail!("no frame for 30 s after {n} replayed ticks")
        };
        let Some(msg) = next else {
            anyhow::bail!("socket closed before replay_end")
        };
        if let Message::Text(t) = msg? {
            let s = t.as_str();
            // Count the replayed quotes of tick frames without parsing them; anything else is
            // parsed and recognised by its type, never by the order of its keys.
            if s.starts_with(r#"{"type":"tick"#) {
                n += s.matches(r#""replay":true"#).count() as u64;
                continue;
            }
            let v: serde_json::Value = serde_json::from_str(s)?;
            match v["type"].as_str() {
                Some("replay_end") => {
                    anyhow::ensure!(
                        v["count"].as_u64() == Some(n),
                        "count {} vs {n}",
                        v["count"]
                    );
                    break;
                }
                Some("error") => anyhow::bail!("error frame: {s}"),
                _ => {}
            }
        }
    }
    Ok((n, started.elapsed().as_secs_f64()))
}

async fn run(c: &Config) -> anyhow::Result<()> {
    let n = env("BENCH_TICKS", 1_000_000);
    let c = c.clone();
    let app = App::build(c.clone(), Stages::EDGE).await?;
    let port = app.port();
    let bus = app.bus().clone();
    let cancel = CancellationToken::new();
    let cc = cancel.clone();
    let server = tokio::spawn(app.run_until(async move { cc.cancelled().await }));

    // 1. Publish.
    let id = InstrumentId::parse(ID)?;
    let source = SourceName::parse("bench")?;
    let t0 = now_ms() - 2 * 3_600_000;
    let started = Instant::now();
    let chunk = 5_000u64;
    let mut i = 0u64;
    while i < n {
        let ticks: Vec<Tick> = (i..(i + chunk).min(n))
            .map(|k| Tick {
                v: SCHEMA_VERSION,
                instrument: id.clone(),
                price: 90_000_000.0 + (k % 1_000) as f64 * 1_000.0,
                prev_close: Some(90_000_000.0),
                change: Some((k % 1_000) as f64 * 1_000.0),
                change_rate: Some((k % 1_000) as f64 / 90_000.0),
                volume: 0.001 * (k % 7) as f64,
                day_volume: Some(k as f64),
                ts: t0 + k as i64,
                ingest_ts: t0 + k as i64 + 5,
                source: source.clone(),
                seq: k + 1,
                backfill: false,
                inputs: Vec::new(),
            })
            .collect();
        bus.publish_ticks(&ticks).await?;
        i += chunk;
    }
    let secs = started.elapsed().as_secs_f64();
    println!(
        "published {n} ticks in {secs:.1} s ({:.0} ticks/s)",
        n as f64 / secs
    );
    let (from, to) = (t0, t0 + n as i64);
    let base = format!("http://127.0.0.1:{port}");

    // 2. REST, a tenth then the whole range.
    let (small, s_secs, s_peak) = rest_replay(&base, from, from + (n / 10) as i64).await?;
    let (all, a_secs, a_peak) = rest_replay(&base, from, to).await?;
    anyhow::ensure!(all == n, "REST replayed {all} of {n}");
    println!(
        "REST replay: {small} events in {s_secs:.2} s ({:.0} events/s), RSS peak +{:.1} MB",
        small as f64 / s_secs,
        s_peak as f64 / 1024.0
    );
    println!(
        "REST replay: {all} events in {a_secs:.2} s ({:.0} events/s), RSS peak +{:.1} MB (memory flat: a 10x longer range, same peak)",
        all as f64 / a_secs,
        a_peak as f64 / 1024.0
    );

    // 3. WebSocket.
    let (before, ws_url) = (rss_kb(), format!("ws://127.0.0.1:{port}/ws"));
    let (stop, sampler) = sample_rss();
    let (got, w_secs) = ws_replay(&ws_url, from, to).await?;
    stop.store(true, Ordering::Relaxed);
    let w_peak = sampler.await? as i64 - before as i64;
    anyhow::ensure!(got == n, "WS replayed {got} of {n}");
    println!(
        "WS replay (speed 0): {got} events in {w_secs:.2} s ({:.0} events/s), RSS peak +{:.1} MB",
        got as f64 / w_secs,
        w_peak as f64 / 1024.0
    );

    // 4. Rebuild.
    for model in [Model::History, Model::Latest] {
        let done = Arc::new(AtomicU64::new(0));
        let d = done.clone();
        let r = rebuild(&c, model, move |p| d.store(p.done, Ordering::Relaxed)).await?;
        println!(
            "rebuild {}: {} events in {:.1} s ({:.0} events/s)",
            model.name(),
            r.events,
            r.elapsed.as_secs_f64(),
            r.events as f64 / r.elapsed.as_secs_f64()
        );
    }
    println!(
        "peak RSS of the bench process (VmHWM, includes publishing): {} kB",
        {
            std::fs::read_to_string("/proc/self/status")
                .ok()
                .and_then(|s| {
                    s.lines()
                        .find(|l| l.starts_with("VmHWM:"))
                        .and_then(|l| l.split_whitespace().nth(1).map(str::to_owned))
                })
                .unwrap_or_default()
        }
    );

    cancel.cancel();
    let _ = tokio::time::timeout(Duration::from_secs(10), server).await;
    Ok(())
}

fn main() -> anyhow::Result<()> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    rt.block_on(async {
        let c = config();
        let result = run(&c).await;
        cleanup(&c).await;
        result
    })
}

//! The Upbit source against the fake Upbit and the real NATS (each test in its own namespace,
//! deleted afterwards): keep-alive, run-time market changes, REST limits.

use std::collections::BTreeSet;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use sise_bus::{Bus, InstrumentId, Namespace};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use super::fake::{FakeOptions, FakeUpbit};
use super::rest::{Rest, RestError};
use super::{Upbit, UpbitSettings};
use crate::source::{IngestMetrics, Source, SourceContext};
use crate::Registry;

const WAIT: Duration = Duration::from_secs(20);

/// A namespace on the real NATS, deleted on drop (also after a failed assertion).
struct TestBus {
    bus: Bus,
    url: String,
    ns: Namespace,
}

impl Drop for TestBus {
    fn drop(&mut self) {
        let (url, ns) = (self.url.clone(), self.ns.clone());
        let _ = std::thread::spawn(move || {
            let Ok(rt) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            else {
                return;
            };
            rt.block_on(async move {
                if let Ok(bus) = Bus::connect(&url, ns.clone()).await {
                    let _ = sise_bus::stream::delete_streams(&bus.js, &ns).await;
                }
            });
        })
        .join();
    }
}

async fn test_bus() -> TestBus {
    let url = std::env::var("SISE_NATS_URL").unwrap_or_else(|_| "nats://127.0.0.1:4222".into());
    let ns = format!(
        "test_{:016x}{:08x}",
        rand::random::<u64>(),
        rand::random::<u32>()
    );
    let ns = Namespace::parse(&ns).expect("namespace");
    let bus = Bus::connect(&url, ns.clone()).await.expect("NATS");
    bus.ensure_streams(Duration::from_secs(3600))
        .await
        .expect("streams");
    TestBus { bus, url, ns }
}

fn context(bus: &Bus) -> (SourceContext, prometheus::Registry) {
    let prom = prometheus::Registry::new();
    let ctx = SourceContext {
        bus: bus.clone(),
        registry: Arc::new(Registry::builtin().expect("registry")),
        metrics: IngestMetrics::new(&prom).expect("metrics"),
        cancel: CancellationToken::new(),
    };
    (ctx, prom)
}

fn settings(fake: &FakeUpbit) -> UpbitSettings {
    let mut s = UpbitSettings::new(&fake.rest_url, &fake.ws_url);
    s.backoff_min = Duration::from_millis(200);
    s.backoff_max = Duration::from_secs(1);
    s
}

async fn wait_for<T, F, Fut>(what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        if let Some(v) = check().await {
            return v;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn id(s: &str) -> InstrumentId {
    InstrumentId::parse(s).expect("id")
}

/// With a ping every 300 ms the connection outlives the fake's 1 s idle timeout several times
/// over; without pings the fake closes it, and the source reconnects and re-subscribes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ping_keeps_the_connection_alive_past_the_idle_timeout() {
    let tb = test_bus().await;
    let opts = FakeOptions {
        idle_timeout: Duration::from_secs(1),
        ..FakeOptions::default()
    };

    let fake = FakeUpbit::start(opts.clone()).await.expect("fake");
    let (ctx, _prom) = context(&tb.bus);
    let mut s = settings(&fake);
    s.ping_interval = Duration::from_millis(300);
    let cancel = ctx.cancel.clone();
    let task = tokio::spawn(Box::new(Upbit::new(s)).run(ctx));
    let stats = wait_for("10 pings (3 s, three idle timeouts)", || async {
        let st = fake.stats();
        (st.pings >= 10).then_some(st)
    })
    .await;
    assert_eq!(stats.connections, 1, "one connection throughout");
    assert_eq!(stats.idle_closes, 0);
    assert_eq!(
        stats.origin_headers, 0,
        "no Origin header from a server client"
    );
    assert_eq!(stats.subscriptions.len(), 1);
    cancel.cancel();
    task.await.expect("join").expect("source ends cleanly");

    // Control: no ping before the idle timeout → closed for idleness, then reconnected.
    let quiet = FakeUpbit::start(opts).await.expect("fake");
    let (ctx, _prom) = context(&tb.bus);
    let metrics = ctx.metrics.clone();
    let mut s = settings(&quiet);
    s.ping_interval = Duration::from_secs(60);
    let cancel = ctx.cancel.clone();
    let task = tokio::spawn(Box::new(Upbit::new(s)).run(ctx));
    let stats = wait_for("an idle close and a new subscription", || async {
        let st = quiet.stats();
        (st.idle_closes >= 1 && st.subscriptions.len() >= 2 && quiet.open_connections() == 1)
            .then_some(st)
    })
    .await;
    assert!(stats.connections >= 2);
    assert!(metrics.reconnects.with_label_values(&["upbit"]).get() >= 1);
    cancel.cancel();
    task.await.expect("join").expect("source ends cleanly");
}

/// A market added at run time: the whole list is sent again on the same connection, the new
/// market gets its REST snapshot and its live trades, the others keep going.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_market_added_at_run_time_joins_without_dropping_the_others() {
    let tb = test_bus().await;
    let fake = FakeUpbit::start(FakeOptions::default())
        .await
        .expect("fake");
    let (ctx, _prom) = context(&tb.bus);
    let (tx, rx) = watch::channel(BTreeSet::new());
    let mut s = settings(&fake);
    s.markets = Some(rx);
    let cancel = ctx.cancel.clone();
    let task = tokio::spawn(Box::new(Upbit::new(s)).run(ctx));
    wait_for("the first subscription", || async {
        let subs = fake.subscribed();
        (subs.len() == 1 && subs[0].0.len() == 7 && subs[0].1.len() == 7).then_some(())
    })
    .await;

    fake.add_market("KRW-DOGE", "도지코인", "Dogecoin", 512.0);
    tx.send(BTreeSet::from(["KRW-DOGE".to_owned()]))
        .expect("send");
    wait_for("a subscription of all 8 markets", || async {
        let subs = fake.subscribed();
        (subs.len() == 1 && subs[0].0.len() == 8 && subs[0].0.contains(&"KRW-DOGE".to_owned()))
            .then_some(())
    })
    .await;
    let stats = fake.stats();
    assert_eq!(stats.connections, 1, "re-subscribed on the same connection");
    assert_eq!(stats.subscriptions.len(), 2);

    let doge = id("crypto.upbit.KRW-DOGE");
    let btc = id("crypto.upbit.KRW-BTC");
    // The REST snapshot of the new market.
    wait_for("DOGE snapshot", || async {
        tb.bus.last_tick(&doge).await.ok().flatten()
    })
    .await;
    fake.trade("KRW-DOGE", 515.0, 1200.0).expect("trade");
    fake.trade("KRW-BTC", 130_300_000.0, 0.01).expect("trade");
    wait_for("live DOGE and BTC trades", || async {
        let d = tb.bus.last_tick(&doge).await.ok().flatten()?;
        let b = tb.bus.last_tick(&btc).await.ok().flatten()?;
        (d.price == 515.0 && b.price == 130_300_000.0).then_some(())
    })
    .await;
    cancel.cancel();
    task.await.expect("join").expect("source ends cleanly");
}

/// REST within Upbit's limits: requests paced under 10/s per group never see a 429; a 429 is
/// reported as such; a 418 blocks every further call for the time Upbit names.
#[tokio::test]
async fn rest_respects_the_limits_and_stops_on_418() {
    let fake = FakeUpbit::start(FakeOptions::default())
        .await
        .expect("fake");
    let rest = Rest::new(&fake.rest_url).expect("client");
    let btc = vec!["KRW-BTC".to_owned()];
    for _ in 0..12 {
        let t = rest.tickers(&btc).await.expect("ticker");
        assert_eq!(t.len(), 1);
    }
    assert_eq!(fake.stats().rest_429, 0, "pacing keeps under 10/s");

    let unknown = rest.tickers(&["KRW-NOPE".to_owned()]).await;
    assert!(
        matches!(unknown, Err(RestError::Status { status: 404, .. })),
        "{unknown:?}"
    );

    fake.force_rest(&[429]);
    let limited = rest.tickers(&btc).await;
    assert!(
        matches!(limited, Err(RestError::RateLimited { .. })),
        "{limited:?}"
    );
    assert!(rest.tickers(&btc).await.is_ok(), "429 is not a block");

    fake.force_rest(&[418]);
    let blocked = rest.trades("KRW-BTC", 10, None).await;
    match blocked {
        Err(RestError::Blocked(d)) => assert_eq!(d, Duration::from_secs(60)),
        other => panic!("{other:?}"),
    }
    let before = fake.stats().rest_requests.len();
    assert!(matches!(rest.markets().await, Err(RestError::Blocked(_))));
    assert_eq!(
        fake.stats().rest_requests.len(),
        before,
        "no request while blocked"
    );
}

/// The trades endpoint pages back with `cursor` and keeps ids above 2^53 exact.
#[tokio::test]
async fn rest_trades_page_with_cursor() {
    let fake = FakeUpbit::start(FakeOptions::default())
        .await
        .expect("fake");
    let rest = Rest::new(&fake.rest_url).expect("client");
    for k in 0..5 {
        fake.trade_unheard("KRW-ETH", 4_820_000.0 + k as f64, 0.1)
            .expect("trade");
    }
    let first = rest.trades("KRW-ETH", 3, None).await.expect("page 1");
    assert_eq!(first.len(), 3);
    assert!(
        first[0].sequential_id > first[2].sequential_id,
        "newest first"
    );
    let second = rest
        .trades("KRW-ETH", 3, first.last().map(|t| t.sequential_id))
        .await
        .expect("page 2");
    assert_eq!(second.len(), 2);
    assert!(second[0].sequential_id < first[2].sequential_id);
    let fixture = rest.trades("KRW-BTC", 3, None).await.expect("btc");
    assert_eq!(fixture[0].sequential_id, 17_732_934_140_000_003);
}

/// The last `SourceStatus` of the Upbit source on the log.
async fn last_status(bus: &Bus) -> Option<sise_bus::SourceStatus> {
    let stream = bus
        .js
        .get_stream_no_info(bus.ns.stream(sise_bus::StreamKind::Status))
        .await
        .ok()?;
    let msg = stream
        .get_last_raw_message_by_subject(&bus.ns.status_subject(&super::source_name()))
        .await
        .ok()?;
    sise_bus::decode::<sise_bus::SourceStatus>(&msg.payload).ok()
}

/// An unreachable WebSocket: degraded (reconnecting, with the reason) at first, down after
/// repeated failures; the REST snapshot was published all the same.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreachable_websocket_is_degraded_then_down_with_the_reason() {
    let tb = test_bus().await;
    let fake = FakeUpbit::start(FakeOptions::default())
        .await
        .expect("fake");
    // A port nobody listens on.
    let free = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = free.local_addr().expect("addr").port();
    drop(free);
    let (ctx, _prom) = context(&tb.bus);
    let mut s = UpbitSettings::new(
        &fake.rest_url,
        &format!("ws://127.0.0.1:{port}/websocket/v1"),
    );
    s.backoff_min = Duration::from_millis(200);
    s.backoff_max = Duration::from_millis(400);
    let cancel = ctx.cancel.clone();
    let task = tokio::spawn(Box::new(Upbit::new(s)).run(ctx));
    let degraded = wait_for("a degraded status", || async {
        last_status(&tb.bus)
            .await
            .filter(|s| s.state == sise_bus::SourceState::Degraded)
    })
    .await;
    assert!(
        degraded.detail.starts_with("reconnecting"),
        "{}",
        degraded.detail
    );
    let down = wait_for("a down status", || async {
        last_status(&tb.bus)
            .await
            .filter(|s| s.state == sise_bus::SourceState::Down)
    })
    .await;
    assert!(down.detail.contains("cannot reach"), "{}", down.detail);
    assert!(tb
        .bus
        .last_tick(&id("crypto.upbit.KRW-BTC"))
        .await
        .expect("nats")
        .is_some_and(|t| t.price == 130_250_000.0));
    cancel.cancel();
    task.await.expect("join").expect("source ends cleanly");
    assert_eq!(
        last_status(&tb.bus).await.map(|s| s.detail),
        Some("stopped".to_owned())
    );
}

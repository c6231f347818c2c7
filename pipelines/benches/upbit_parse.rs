//! `cargo bench -p sise-pipelines --bench upbit_parse`: how many Upbit WebSocket frames per
//! second the parser turns into ticks on this machine (one core), over the recorded frames of
//! `src/upbit/fixtures` (ticker DEFAULT and SIMPLE, trade with and without best bid/ask).
//!
//! Knob: BENCH_FRAMES (default 2,000,000).

use std::hint::black_box;
use std::time::Instant;

use sise_bus::{InstrumentId, SourceName};
use sise_pipelines::upbit::parse::{parse_frame, Parsed};

const FRAMES: [&[u8]; 6] = [
    include_bytes!("../src/upbit/fixtures/ws_ticker_realtime_krw_btc.json"),
    include_bytes!("../src/upbit/fixtures/ws_trade_realtime_krw_btc.json"),
    include_bytes!("../src/upbit/fixtures/ws_ticker_simple_krw_eth.json"),
    include_bytes!("../src/upbit/fixtures/ws_trade_no_best_krw_eth.json"),
    include_bytes!("../src/upbit/fixtures/ws_ticker_even_krw_link.json"),
    include_bytes!("../src/upbit/fixtures/ws_trade_duplicate_krw_btc.json"),
];

fn main() {
    let n: usize = std::env::var("BENCH_FRAMES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2_000_000);
    let source = SourceName::parse("upbit").expect("source");
    let ids: Vec<(String, InstrumentId)> = ["KRW-BTC", "KRW-ETH", "KRW-LINK"]
        .iter()
        .map(|m| {
            (
                (*m).to_owned(),
                InstrumentId::parse(&format!("crypto.upbit.{m}")).expect("id"),
            )
        })
        .collect();
    let bytes: usize = FRAMES.iter().map(|f| f.len()).sum::<usize>() / FRAMES.len();

    // Warm up, then measure parse + conversion to a Tick (what the source does per frame).
    let mut ticks = 0usize;
    let start = Instant::now();
    for i in 0..n {
        let frame = FRAMES[i % FRAMES.len()];
        for p in parse_frame(black_box(frame)) {
            if let Ok(Parsed::Obs(o)) = p {
                if let Some((_, id)) = ids.iter().find(|(m, _)| *m == o.market) {
                    let t = o.to_tick(id.clone(), source.clone(), 1);
                    ticks += usize::from(t.price > 0.0);
                    black_box(t);
                }
            }
        }
    }
    let secs = start.elapsed().as_secs_f64();
    assert_eq!(ticks, n, "every frame is a tick");
    println!(
        "upbit_parse: {n} frames ({bytes} B average) in {secs:.3} s = {:.0} frames/s ({:.1} MB/s), one core",
        n as f64 / secs,
        (n * bytes) as f64 / secs / 1e6
    );
}

//! `cargo bench -p sise-pipelines --bench kis_parse`: how many KIS WebSocket text frames per
//! second the caret parser turns into observations on this machine (one core), over the
//! recorded frames of `src/kis/fixtures` (H0STCNT0 with 1 and 3 records, an empty field,
//! HDFSCNT0) plus PINGPONG; records per second are printed too.
//!
//! Knob: BENCH_FRAMES (default 2,000,000).

use std::hint::black_box;
use std::time::Instant;

use sise_pipelines::kis::parse::{parse_frame, Frame};

const FRAMES: [&str; 5] = [
    include_str!("../src/kis/fixtures/ws_h0stcnt0_068270_single.txt"),
    include_str!("../src/kis/fixtures/ws_h0stcnt0_multi_3records.txt"),
    include_str!("../src/kis/fixtures/ws_h0stcnt0_068270_empty_field.txt"),
    include_str!("../src/kis/fixtures/ws_hdfscnt0_dnasgoog.txt"),
    include_str!("../src/kis/fixtures/ws_pingpong.json"),
];

fn main() {
    let n: usize = std::env::var("BENCH_FRAMES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2_000_000);
    // Warm up, and check every frame parses.
    for f in FRAMES {
        assert!(parse_frame(f).is_ok(), "fixture frame must parse");
    }
    let data_frames: Vec<&str> = FRAMES[..4].to_vec();
    let mut records = 0usize;
    let t0 = Instant::now();
    for i in 0..n {
        let f = data_frames[i % data_frames.len()];
        if let Ok(Frame::Data { obs, .. }) = parse_frame(black_box(f)) {
            records += obs.len();
            black_box(&obs);
        }
    }
    let secs = t0.elapsed().as_secs_f64();
    println!(
        "kis caret parser: {n} data frames ({records} records) in {secs:.3} s = {:.0} frames/s, {:.0} records/s",
        n as f64 / secs,
        records as f64 / secs
    );
    let t0 = Instant::now();
    let mut ping = 0usize;
    for _ in 0..n / 4 {
        if matches!(parse_frame(black_box(FRAMES[4])), Ok(Frame::PingPong)) {
            ping += 1;
        }
    }
    let secs = t0.elapsed().as_secs_f64();
    println!(
        "kis PINGPONG recognition: {ping} frames in {secs:.3} s = {:.0} frames/s",
        ping as f64 / secs
    );
}

//! Derived instruments (DESIGN.md, "Derived instruments"): gold and silver in KRW per gram and
//! per 돈 (3.75 g), computed from `metal.spot.XAU`/`XAG` (USD per troy ounce) and
//! `fx.spot.USDKRW`, recomputed whenever either input ticks, and published as ticks of their own
//! (`derived.metal.XAUKRW-G`, `…XAUKRW-DON`, `…XAGKRW-G`, `…XAGKRW-DON`; class `derived` in the
//! registry; only the ids the registry lists are published).
//!
//! It runs beside the projections (`sise up`, `sise project`): it starts from the last tick of
//! each input in the log, then follows the inputs' tick subjects. A derived tick's exchange
//! time is the newer of its inputs' times; its sequence is a hash of both inputs' (time,
//! sequence, price), so two processes computing the same value publish one tick (the stream drops the
//! repeat). Its source is `derived`, or `sim` when an input is simulated (so the edge labels
//! it 모의, never a market price). The previous close is the metal's previous close times the
//! rate's previous close, when both are known.

use std::collections::HashMap;
use std::time::Duration;

use futures::future::BoxFuture;
use futures::StreamExt;
use sise_bus::{now_ms, InstrumentId, SourceName, Tick, SCHEMA_VERSION};

use crate::poll::Backoff;
use crate::source::{Source, SourceContext};
use crate::PipelineError;

/// Grams in a troy ounce.
pub const GRAMS_PER_TROY_OUNCE: f64 = 31.103_476_8;
/// Grams in one 돈.
pub const GRAMS_PER_DON: f64 = 3.75;

const USDKRW: &str = "fx.spot.USDKRW";

/// (output id, metal input id, grams per unit of the output).
pub const OUTPUTS: [(&str, &str, f64); 4] = [
    ("derived.metal.XAUKRW-G", "metal.spot.XAU", 1.0),
    ("derived.metal.XAUKRW-DON", "metal.spot.XAU", GRAMS_PER_DON),
    ("derived.metal.XAGKRW-G", "metal.spot.XAG", 1.0),
    ("derived.metal.XAGKRW-DON", "metal.spot.XAG", GRAMS_PER_DON),
];

fn id(s: &str) -> Option<InstrumentId> {
    InstrumentId::parse(s).ok()
}

pub fn source_name() -> SourceName {
    SourceName::parse("derived")
        .unwrap_or_else(|_| unreachable!("\"derived\" is a valid source name"))
}

fn sim_name() -> SourceName {
    SourceName::parse("sim").unwrap_or_else(|_| unreachable!("\"sim\" is a valid source name"))
}

fn round2(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

fn fnv(parts: &[i64]) -> u64 {
    parts.iter().fold(0xcbf2_9ce4_8422_2325, |h, p| {
        p.to_le_bytes()
            .iter()
            .fold(h, |h, b| (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3))
    })
}

/// The derived tick of `out` (grams per unit `grams`) from a metal tick and a USD/KRW tick.
pub fn derive(out: &InstrumentId, grams: f64, metal: &Tick, fx: &Tick) -> Option<Tick> {
    let factor = grams / GRAMS_PER_TROY_OUNCE;
    let price = round2(metal.price * fx.price * factor);
    if !(price.is_finite() && price > 0.0) {
        return None;
    }
    let prev_close = match (metal.prev_close, fx.prev_close) {
        (Some(m), Some(f)) if m > 0.0 && f > 0.0 => Some(round2(m * f * factor)),
        _ => None,
    };
    let change = prev_close.map(|p| round2(price - p));
    let simulated = metal.source.as_str() == "sim" || fx.source.as_str() == "sim";
    let tick = Tick {
        v: SCHEMA_VERSION,
        instrument: out.clone(),
        price,
        prev_close,
        change,
        change_rate: match (change, prev_close) {
            (Some(c), Some(p)) => Some(c / p),
            _ => None,
        },
        volume: 0.0,
        day_volume: None,
        ts: metal.ts.max(fx.ts),
        ingest_ts: now_ms(),
        source: if simulated { sim_name() } else { source_name() },
        // 53 bits: exact through JSON.
        seq: fnv(&[
            metal.ts,
            metal.seq as i64,
            fx.ts,
            fx.seq as i64,
            metal.price.to_bits() as i64,
            fx.price.to_bits() as i64,
            (grams * 1000.0) as i64,
        ]) >> 11,
        backfill: false,
        inputs: Vec::new(),
    };
    tick.validate().ok().map(|_| tick)
}

/// The derived-instrument computation, run as a task beside the projections.
pub struct MetalKrw;

impl Source for MetalKrw {
    fn name(&self) -> SourceName {
        source_name()
    }

    fn run(self: Box<Self>, ctx: SourceContext) -> BoxFuture<'static, Result<(), PipelineError>> {
        Box::pin(run(ctx))
    }
}

struct Outputs {
    /// (output, metal input, grams) for the outputs the registry lists.
    list: Vec<(InstrumentId, InstrumentId, f64)>,
    last: HashMap<InstrumentId, Tick>,
}

impl Outputs {
    /// The derived ticks that depend on `changed`.
    fn recompute(&self, changed: &InstrumentId) -> Vec<Tick> {
        let Some(fx) = id(USDKRW).and_then(|f| self.last.get(&f)) else {
            return Vec::new();
        };
        self.list
            .iter()
            .filter(|(_, metal, _)| changed.as_str() == USDKRW || metal == changed)
            .filter_map(|(out, metal, grams)| derive(out, *grams, self.last.get(metal)?, fx))
            .collect()
    }
}

async fn run(ctx: SourceContext) -> Result<(), PipelineError> {
    let list: Vec<(InstrumentId, InstrumentId, f64)> = OUTPUTS
        .iter()
        .filter_map(|(out, metal, grams)| Some((id(out)?, id(metal)?, *grams)))
        .filter(|(out, _, _)| ctx.registry.get(out).is_some())
        .collect();
    if list.is_empty() {
        // Nothing to compute with this registry.
        ctx.cancel.cancelled().await;
        return Ok(());
    }
    let mut inputs: Vec<InstrumentId> = list.iter().map(|(_, m, _)| m.clone()).collect();
    inputs.extend(id(USDKRW));
    inputs.sort();
    inputs.dedup();
    let mut outs = Outputs {
        list,
        last: HashMap::new(),
    };
    let mut backoff = Backoff::new(Duration::from_millis(500), Duration::from_secs(30));
    loop {
        // Subscribe first, then read the log's last ticks, so nothing between is missed.
        let mut subs = Vec::new();
        for input in &inputs {
            match ctx
                .bus
                .client
                .subscribe(ctx.bus.ns.tick_subject(input))
                .await
            {
                Ok(s) => subs.push(s),
                Err(e) => tracing::warn!(source = "derived", error = %e, "subscribe failed"),
            }
        }
        if subs.len() == inputs.len() {
            for input in &inputs {
                if let Ok(Some(t)) = ctx.bus.last_tick(input).await {
                    let newer = outs.last.get(input).is_none_or(|cur| t.ts >= cur.ts);
                    if newer {
                        outs.last.insert(input.clone(), t);
                    }
                }
            }
            let start: Vec<Tick> = inputs.iter().flat_map(|i| outs.recompute(i)).collect();
            ctx.publish_ticks("derived", &start).await;
            // No SourceStatus: this is a projection of the log, not an outside source (its
            // inputs' sources carry the status the UI shows).
            tracing::info!(
                source = "derived",
                inputs = inputs.len(),
                "derived instruments following their inputs"
            );
            backoff.reset();
            let mut merged = futures::stream::select_all(subs);
            loop {
                let msg = tokio::select! {
                    _ = ctx.cancel.cancelled() => return Ok(()),
                    m = merged.next() => m,
                };
                let Some(msg) = msg else { break };
                let tick = match sise_bus::decode::<Tick>(&msg.payload) {
                    Ok(t) => t,
                    Err(e) => {
                        ctx.metrics
                            .parse_errors
                            .with_label_values(&["derived"])
                            .inc();
                        tracing::warn!(source = "derived", error = %e, "undecodable input tick skipped");
                        continue;
                    }
                };
                // Never let an older tick replace a newer input.
                if outs
                    .last
                    .get(&tick.instrument)
                    .is_some_and(|cur| tick.ts < cur.ts)
                {
                    continue;
                }
                let changed = tick.instrument.clone();
                outs.last.insert(changed.clone(), tick);
                let ticks = outs.recompute(&changed);
                ctx.publish_ticks("derived", &ticks).await;
            }
        }
        ctx.metrics.reconnects.with_label_values(&["derived"]).inc();
        let delay = backoff.next_delay();
        tokio::select! {
            _ = ctx.cancel.cancelled() => return Ok(()),
            _ = tokio::time::sleep(delay) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(inst: &str, price: f64, prev: f64, ts: i64, source: &str) -> Tick {
        Tick {
            v: SCHEMA_VERSION,
            instrument: id(inst).unwrap(),
            price,
            prev_close: Some(prev),
            change: Some(price - prev),
            change_rate: Some((price - prev) / prev),
            volume: 0.0,
            day_volume: None,
            ts,
            ingest_ts: ts,
            source: SourceName::parse(source).unwrap(),
            seq: 1,
            backfill: false,
            inputs: Vec::new(),
        }
    }

    #[test]
    fn gold_in_krw_per_gram_and_per_don() {
        let xau = t("metal.spot.XAU", 4012.35, 3985.1, 1_000, "goldapi");
        let fx = t("fx.spot.USDKRW", 1452.3, 1452.3, 2_000, "exim");
        let g = derive(&id("derived.metal.XAUKRW-G").unwrap(), 1.0, &xau, &fx).unwrap();
        // 4012.35 × 1452.3 / 31.1034768 = 187,348.6…
        assert!((g.price - 4012.35 * 1452.3 / 31.103_476_8).abs() < 0.01);
        assert_eq!(g.ts, 2_000);
        assert_eq!(g.source.as_str(), "derived");
        let don = derive(&id("derived.metal.XAUKRW-DON").unwrap(), 3.75, &xau, &fx).unwrap();
        assert!((don.price / g.price - 3.75).abs() < 1e-6);
        assert!(g.change.unwrap() > 0.0 && g.change_rate.unwrap() > 0.0);
        // A simulated input makes a simulated output.
        let sim = t("metal.spot.XAU", 4012.35, 3985.1, 1_000, "sim");
        let s = derive(&id("derived.metal.XAUKRW-G").unwrap(), 1.0, &sim, &fx).unwrap();
        assert_eq!(s.source.as_str(), "sim");
        // Another input, another sequence (not dropped as a repeat).
        let fx2 = t("fx.spot.USDKRW", 1460.0, 1452.3, 2_000, "exim");
        let g2 = derive(&id("derived.metal.XAUKRW-G").unwrap(), 1.0, &xau, &fx2).unwrap();
        assert_eq!(g2.ts, g.ts);
        assert_ne!(g2.seq, g.seq);
        assert!(g2.seq < (1 << 53));
    }

    #[test]
    fn the_registry_lists_every_output() {
        let r = crate::Registry::builtin().unwrap();
        for (out, metal, _) in OUTPUTS {
            let inst = r.get(&id(out).unwrap()).expect(out);
            assert_eq!(inst.currency, "KRW");
            assert!(r.get(&id(metal).unwrap()).is_some());
        }
    }
}

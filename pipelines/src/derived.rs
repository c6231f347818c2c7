//! Derived instruments (DESIGN.md, "Derived instruments"), computed from other ticks and
//! published as ticks of their own (class `derived` in the registry; only the ids the registry
//! lists are published):
//! - gold and silver in KRW per gram and per 돈 (3.75 g), from `metal.spot.XAU`/`XAG` (USD per
//!   troy ounce) and `fx.spot.USDKRW` (`derived.metal.XAUKRW-G`, `…XAUKRW-DON`, `…XAGKRW-G`,
//!   `…XAGKRW-DON`);
//! - the kimchi premium of BTC and ETH (`derived.kimchi.BTC`, `derived.kimchi.ETH`): the Upbit
//!   KRW price over the USD reference price (Coinbase, `crypto.coinbase.BTC-USD`) × USD/KRW,
//!   minus one, **in percent** (2.13 means Upbit is 2.13 % dearer; it can be negative, which
//!   `Tick::validate` allows for `derived.kimchi.*` only). It has no previous close.
//!
//! Every derived tick carries its inputs (`Tick::inputs`: each input's id and the exchange
//! time of the value used), so the quote shows how old each input is.
//!
//! It runs beside the projections (`sise up`, `sise project`): it starts from the last tick of
//! each input in the log, then follows the inputs' tick subjects and recomputes every output
//! that depends on an input that changed. A derived tick's exchange time is the newest of its
//! inputs' times; its sequence is a hash of the inputs' (time, sequence, price), so two
//! processes computing the same value publish one tick (the stream drops the repeat). Its
//! source is `derived`, or `sim` when an input is simulated (so the edge labels it 모의, never a
//! market price). A metal's previous close is the metal's previous close times the rate's
//! previous close, when both are known.

use std::collections::HashMap;
use std::time::Duration;

use futures::future::BoxFuture;
use futures::StreamExt;
use sise_bus::{now_ms, InstrumentId, SourceName, Tick, TickInput, SCHEMA_VERSION};

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

/// (output id, Upbit KRW input, USD reference input) of the kimchi premiums.
pub const KIMCHI: [(&str, &str, &str); 2] = [
    (
        "derived.kimchi.BTC",
        "crypto.upbit.KRW-BTC",
        "crypto.coinbase.BTC-USD",
    ),
    (
        "derived.kimchi.ETH",
        "crypto.upbit.KRW-ETH",
        "crypto.coinbase.ETH-USD",
    ),
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

/// The fields every derived tick shares: time, inputs, source and sequence from its inputs.
fn tick_of(out: &InstrumentId, price: f64, salt: i64, inputs: &[&Tick]) -> Tick {
    let simulated = inputs.iter().any(|t| t.source.as_str() == "sim");
    let mut parts = vec![salt];
    for t in inputs {
        parts.extend([t.ts, t.seq as i64, t.price.to_bits() as i64]);
    }
    Tick {
        v: SCHEMA_VERSION,
        instrument: out.clone(),
        price,
        prev_close: None,
        change: None,
        change_rate: None,
        volume: 0.0,
        day_volume: None,
        ts: inputs.iter().map(|t| t.ts).max().unwrap_or(0),
        ingest_ts: now_ms(),
        source: if simulated { sim_name() } else { source_name() },
        // 53 bits: exact through JSON.
        seq: fnv(&parts) >> 11,
        backfill: false,
        inputs: inputs
            .iter()
            .map(|t| TickInput {
                instrument: t.instrument.clone(),
                ts: t.ts,
            })
            .collect(),
    }
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
    let mut tick = tick_of(out, price, (grams * 1000.0) as i64, &[metal, fx]);
    tick.prev_close = prev_close;
    tick.change = change;
    tick.change_rate = match (change, prev_close) {
        (Some(c), Some(p)) => Some(c / p),
        _ => None,
    };
    tick.validate().ok().map(|_| tick)
}

/// The kimchi premium in percent (2 decimals): `krw / (usd × usdkrw) − 1`, × 100.
pub fn premium_percent(krw: f64, usd: f64, usdkrw: f64) -> Option<f64> {
    let reference = usd * usdkrw;
    let p = round2((krw / reference - 1.0) * 100.0);
    (krw > 0.0 && reference > 0.0 && p.is_finite()).then_some(p)
}

/// The kimchi premium tick of `out` from the Upbit KRW tick, the USD reference tick and USD/KRW.
pub fn kimchi(out: &InstrumentId, krw: &Tick, usd: &Tick, fx: &Tick) -> Option<Tick> {
    let price = premium_percent(krw.price, usd.price, fx.price)?;
    let tick = tick_of(out, price, 7, &[krw, usd, fx]);
    tick.validate().ok().map(|_| tick)
}

/// The derived-instrument computation, run as a task beside the projections (metals in KRW
/// and the kimchi premiums; the name is historical).
pub struct MetalKrw;

impl Source for MetalKrw {
    fn name(&self) -> SourceName {
        source_name()
    }

    fn run(self: Box<Self>, ctx: SourceContext) -> BoxFuture<'static, Result<(), PipelineError>> {
        Box::pin(run(ctx))
    }
}

/// How one output is computed.
#[derive(Debug, Clone, Copy)]
enum Formula {
    /// Inputs: metal, USD/KRW.
    Metal { grams: f64 },
    /// Inputs: Upbit KRW price, USD reference, USD/KRW.
    Kimchi,
}

struct Output {
    id: InstrumentId,
    inputs: Vec<InstrumentId>,
    formula: Formula,
}

/// Every output the registry lists, with its inputs.
fn outputs(registry: &crate::Registry) -> Vec<Output> {
    let metals = OUTPUTS.iter().filter_map(|(out, metal, grams)| {
        Some(Output {
            id: id(out)?,
            inputs: vec![id(metal)?, id(USDKRW)?],
            formula: Formula::Metal { grams: *grams },
        })
    });
    let kimchis = KIMCHI.iter().filter_map(|(out, krw, usd)| {
        Some(Output {
            id: id(out)?,
            inputs: vec![id(krw)?, id(usd)?, id(USDKRW)?],
            formula: Formula::Kimchi,
        })
    });
    metals
        .chain(kimchis)
        .filter(|o| registry.get(&o.id).is_some())
        .collect()
}

struct Outputs {
    list: Vec<Output>,
    last: HashMap<InstrumentId, Tick>,
}

impl Outputs {
    /// The derived ticks that depend on `changed`.
    fn recompute(&self, changed: &InstrumentId) -> Vec<Tick> {
        self.list
            .iter()
            .filter(|o| o.inputs.contains(changed))
            .filter_map(|o| {
                let ins: Vec<&Tick> = o
                    .inputs
                    .iter()
                    .map(|i| self.last.get(i))
                    .collect::<Option<_>>()?;
                match (o.formula, ins.as_slice()) {
                    (Formula::Metal { grams }, [metal, fx]) => derive(&o.id, grams, metal, fx),
                    (Formula::Kimchi, [krw, usd, fx]) => kimchi(&o.id, krw, usd, fx),
                    _ => None,
                }
            })
            .collect()
    }
}

async fn run(ctx: SourceContext) -> Result<(), PipelineError> {
    let list = outputs(&ctx.registry);
    if list.is_empty() {
        // Nothing to compute with this registry.
        ctx.cancel.cancelled().await;
        return Ok(());
    }
    let mut inputs: Vec<InstrumentId> = list.iter().flat_map(|o| o.inputs.clone()).collect();
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
            let mut start: Vec<Tick> = inputs.iter().flat_map(|i| outs.recompute(i)).collect();
            start.sort_by(|a, b| (&a.instrument, a.seq).cmp(&(&b.instrument, b.seq)));
            start.dedup_by(|a, b| a.instrument == b.instrument && a.seq == b.seq);
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
    fn kimchi_premium_in_percent_with_its_inputs() {
        let krw = t(
            "crypto.upbit.KRW-BTC",
            130_250_000.0,
            128_900_000.0,
            3_000,
            "upbit",
        );
        let mut usd = t(
            "crypto.coinbase.BTC-USD",
            88_350.12,
            88_000.0,
            2_500,
            "coinbase",
        );
        usd.prev_close = None;
        let fx = t("fx.spot.USDKRW", 1452.3, 1448.9, 1_000, "exim");
        let out = id("derived.kimchi.BTC").unwrap();
        let k = kimchi(&out, &krw, &usd, &fx).unwrap();
        // 130,250,000 / (88,350.12 × 1,452.3) − 1 = +1.511 %.
        assert_eq!(k.price, 1.51);
        assert_eq!(k.ts, 3_000, "the newest input's time");
        assert_eq!(k.prev_close, None);
        assert_eq!(k.source.as_str(), "derived");
        let ins: Vec<(&str, i64)> = k
            .inputs
            .iter()
            .map(|i| (i.instrument.as_str(), i.ts))
            .collect();
        assert_eq!(
            ins,
            [
                ("crypto.upbit.KRW-BTC", 3_000),
                ("crypto.coinbase.BTC-USD", 2_500),
                ("fx.spot.USDKRW", 1_000)
            ]
        );
        // Upbit cheaper than the world: a negative premium is a valid derived tick.
        let cheap = t(
            "crypto.upbit.KRW-BTC",
            125_000_000.0,
            128_900_000.0,
            3_000,
            "upbit",
        );
        let neg = kimchi(&out, &cheap, &usd, &fx).unwrap();
        assert!(neg.price < 0.0 && neg.validate().is_ok(), "{}", neg.price);
        // Only a premium may be negative: the same price on any other instrument is garbage.
        for other in ["crypto.upbit.KRW-BTC", "derived.metal.XAUKRW-G"] {
            let mut bad = neg.clone();
            bad.instrument = id(other).unwrap();
            assert!(bad.validate().is_err(), "{other}");
        }
        let mut nan = neg.clone();
        nan.price = f64::NAN;
        assert!(nan.validate().is_err());
        assert_eq!(premium_percent(100.0, 0.0, 1450.0), None);
        assert_eq!(premium_percent(1450.0, 1.0, 1450.0), Some(0.0));
        // A simulated input makes a simulated output.
        let sim = t("crypto.upbit.KRW-BTC", 130_250_000.0, 1.0, 3_000, "sim");
        assert_eq!(
            kimchi(&out, &sim, &usd, &fx).unwrap().source.as_str(),
            "sim"
        );
        // Metal outputs carry their two inputs too.
        let xau = t("metal.spot.XAU", 4012.35, 3985.1, 1_000, "goldapi");
        let g = derive(&id("derived.metal.XAUKRW-G").unwrap(), 1.0, &xau, &fx).unwrap();
        assert_eq!(g.inputs.len(), 2);
        assert_eq!(g.inputs[0].instrument.as_str(), "metal.spot.XAU");
    }

    #[test]
    fn recompute_follows_any_input() {
        let r = crate::Registry::builtin().unwrap();
        let mut outs = Outputs {
            list: outputs(&r),
            last: HashMap::new(),
        };
        let btc = id("crypto.upbit.KRW-BTC").unwrap();
        outs.last.insert(
            btc.clone(),
            t("crypto.upbit.KRW-BTC", 130_250_000.0, 1.0, 3, "upbit"),
        );
        assert!(outs.recompute(&btc).is_empty(), "inputs missing");
        let usd = id("crypto.coinbase.BTC-USD").unwrap();
        outs.last.insert(
            usd.clone(),
            t("crypto.coinbase.BTC-USD", 88_350.12, 1.0, 2, "coinbase"),
        );
        let fx = id("fx.spot.USDKRW").unwrap();
        outs.last
            .insert(fx.clone(), t("fx.spot.USDKRW", 1452.3, 1.0, 1, "exim"));
        let ids = |v: Vec<Tick>| {
            v.into_iter()
                .map(|t| t.instrument.to_string())
                .collect::<Vec<_>>()
        };
        assert_eq!(ids(outs.recompute(&usd)), ["derived.kimchi.BTC"]);
        // USD/KRW feeds the premiums (and the metals, once they have prices).
        assert_eq!(ids(outs.recompute(&fx)), ["derived.kimchi.BTC"]);
    }

    #[test]
    fn the_registry_lists_every_output() {
        let r = crate::Registry::builtin().unwrap();
        for (out, metal, _) in OUTPUTS {
            let inst = r.get(&id(out).unwrap()).expect(out);
            assert_eq!(inst.currency, "KRW");
            assert!(r.get(&id(metal).unwrap()).is_some());
        }
        for (out, krw, usd) in KIMCHI {
            assert!(r.get(&id(out).unwrap()).is_some(), "{out}");
            assert!(r.get(&id(krw).unwrap()).is_some(), "{krw}");
            assert!(r.get(&id(usd).unwrap()).is_some(), "{usd}");
        }
    }
}

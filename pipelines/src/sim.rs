//! The simulated market (`SISE_SOURCES=sim`, the default): a seeded random walk per default
//! instrument, so the dashboard is alive with no keys and no network.
//!
//! - Deterministic: each instrument draws from its own ChaCha8 stream seeded from
//!   `SISE_SIM_SEED` and its id, so the same seed gives the same sequence of prices.
//! - Realistic: starts at the registry's levels, moves in the market's tick sizes (KRX and
//!   Upbit tables), mean-reverts slowly so it never wanders off, trades realistic sizes, keeps
//!   the day's volume and rolls the previous close over at the market's own day boundary.
//! - Continuous: on start it resumes from the last tick of each instrument in the log.
//! - Honest: every tick carries `source = "sim"`; the edge labels it 모의, never a market price.
//!
//! It ticks every instrument around the clock: crypto several times a second, the rest about
//! once a second (the registry's `interval_ms`, with jitter). Every 30–90 s it also publishes a
//! plausible headline about one instrument (marked `[모의]`/`[SIM]`, on a `.invalid` URL), so the
//! news widget and the chart's news markers are alive in the demo.

use std::sync::Arc;
use std::time::Duration;

use chrono::{TimeZone, Utc};
use futures::future::BoxFuture;
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;
use sha2::Digest;
use sise_bus::{now_ms, Class, News, SourceName, SourceState, Tick, SCHEMA_VERSION};
use tokio::time::Instant;

use crate::registry::{Instrument, SimParams};
use crate::source::{Source, SourceContext};
use crate::PipelineError;

const SECONDS_PER_YEAR: f64 = 365.25 * 24.0 * 3600.0;
/// Mean-reversion time constant toward the registry's level.
const REVERSION_SECS: f64 = 2.0 * 3600.0;

/// The simulated market.
pub struct Sim {
    seed: u64,
    speed: f64,
}

impl Sim {
    pub fn new(seed: u64, speed: f64) -> Self {
        Sim {
            seed,
            speed: if speed.is_finite() && speed > 0.0 {
                speed
            } else {
                1.0
            },
        }
    }
}

impl Source for Sim {
    fn name(&self) -> SourceName {
        sim_name()
    }

    fn run(self: Box<Self>, ctx: SourceContext) -> BoxFuture<'static, Result<(), PipelineError>> {
        Box::pin(run(*self, ctx))
    }
}

fn sim_name() -> SourceName {
    SourceName::parse("sim").unwrap_or_else(|_| unreachable!("\"sim\" is a valid source name"))
}

/// One instrument's walk.
pub struct Walk {
    pub inst: Arc<Instrument>,
    params: SimParams,
    tz: chrono_tz::Tz,
    rng: ChaCha8Rng,
    pub price: f64,
    prev_close: f64,
    day_volume: f64,
    day: i64,
    seq: u64,
    last_ts: i64,
    sigma: f64,
}

impl Walk {
    /// A walk at the registry's starting point. `None` for instruments without sim parameters.
    pub fn new(inst: Arc<Instrument>, tz: chrono_tz::Tz, seed: u64, now: i64) -> Option<Self> {
        let params = inst.sim?;
        let rng = ChaCha8Rng::seed_from_u64(seed ^ fnv1a(inst.id.as_str()));
        // At least about one tick size per second of noise, so coarse-tick stocks still move.
        let tick = tick_size(&inst, params.price);
        let sigma = (params.volatility / SECONDS_PER_YEAR.sqrt()).max(0.8 * tick / params.price);
        Some(Walk {
            day: day_number(tz, now),
            price: params.price,
            prev_close: params.prev_close,
            day_volume: params.day_volume,
            inst,
            params,
            tz,
            rng,
            seq: 0,
            last_ts: now,
            sigma,
        })
    }

    /// Continue from the last tick the log holds for this instrument.
    pub fn resume_from(&mut self, last: &Tick) {
        if last.price > 0.0 {
            self.price = last.price;
        }
        if let Some(pc) = last.prev_close.filter(|p| *p > 0.0) {
            self.prev_close = pc;
        }
        if let Some(dv) = last.day_volume {
            self.day_volume = dv;
        }
        self.seq = last.seq;
        self.day = day_number(self.tz, last.ts);
        self.last_ts = last.ts;
    }

    /// Mean time between ticks.
    pub fn interval(&self) -> Duration {
        Duration::from_millis(self.params.interval_ms)
    }

    fn normal(&mut self) -> f64 {
        // Box-Muller.
        let u1: f64 = self.rng.random::<f64>().max(f64::MIN_POSITIVE);
        let u2: f64 = self.rng.random::<f64>();
        (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
    }

    /// Advance the walk to `now` and return the tick.
    pub fn step(&mut self, now: i64) -> Tick {
        let ts = now.max(self.last_ts + 1);
        let dt = ((ts - self.last_ts) as f64 / 1000.0).clamp(0.001, 60.0);
        self.last_ts = ts;
        let day = day_number(self.tz, ts);
        if day != self.day {
            self.day = day;
            self.prev_close = self.price;
            self.day_volume = 0.0;
        }
        let pull = -(self.price / self.params.price).ln() * dt / REVERSION_SECS;
        let ret = self.sigma * dt.sqrt() * self.normal() + pull;
        let raw = self.price * ret.exp();
        let tick = tick_size(&self.inst, raw);
        self.price = round_to(raw, tick).max(tick);
        let volume = if self.params.trade_size > 0.0 {
            // Log-normal trade sizes around the mean, in the market's lot (crypto: 1e-8).
            let size = self.params.trade_size * (0.9 * self.normal() - 0.405).exp();
            if self.inst.class == Class::Crypto {
                (size * 1e8).round() / 1e8
            } else {
                size.round().max(1.0)
            }
        } else {
            0.0
        };
        self.day_volume += volume;
        if self.inst.class == Class::Crypto {
            self.day_volume = (self.day_volume * 1e8).round() / 1e8;
        }
        self.seq += 1;
        let scale = 10f64.powi(i32::from(self.inst.decimals).max(0));
        let change = ((self.price - self.prev_close) * scale).round() / scale;
        let has_volume = self.params.trade_size > 0.0;
        Tick {
            v: SCHEMA_VERSION,
            instrument: self.inst.id.clone(),
            price: self.price,
            prev_close: Some(self.prev_close),
            change: Some(change),
            change_rate: Some(change / self.prev_close),
            volume,
            day_volume: has_volume.then_some(self.day_volume),
            ts,
            ingest_ts: now_ms(),
            source: sim_name(),
            seq: self.seq,
            backfill: false,
            inputs: Vec::new(),
        }
    }
}

impl Walk {
    /// Move the walk to `price` (a simulated price that follows other walks, see [`Anchor`])
    /// and make `tick`, this walk's latest tick, say so.
    pub fn pin(&mut self, tick: &mut Tick, price: f64) {
        if !(price.is_finite() && price > 0.0) {
            return;
        }
        self.price = price;
        let scale = 10f64.powi(i32::from(self.inst.decimals).max(0));
        let change = ((price - self.prev_close) * scale).round() / scale;
        tick.price = price;
        tick.change = Some(change);
        tick.change_rate = Some(change / self.prev_close);
    }
}

/// A simulated USD reference price (`crypto.coinbase.BTC-USD`) kept consistent with the
/// simulated Upbit KRW price and USD/KRW: USD = KRW ÷ (USD/KRW × (1 + premium)), with a premium
/// that wanders slowly within +0.3–2.8 %, so the demo kimchi premium is plausible.
pub struct Anchor {
    usd: usize,
    krw: usize,
    fx: usize,
    /// Percent.
    pub premium: f64,
}

impl Anchor {
    /// The anchors among `walks`: each `crypto.coinbase.<BASE>-USD` with a
    /// `crypto.upbit.KRW-<BASE>` and `fx.spot.USDKRW` walk.
    pub fn find(walks: &[Walk]) -> Vec<Anchor> {
        let at = |id: &str| walks.iter().position(|w| w.inst.id.as_str() == id);
        walks
            .iter()
            .enumerate()
            .filter(|(_, w)| w.inst.venue == "coinbase")
            .filter_map(|(usd, w)| {
                let base = w.inst.id.symbol().strip_suffix("-USD")?;
                Some(Anchor {
                    usd,
                    krw: at(&format!("crypto.upbit.KRW-{base}"))?,
                    fx: at("fx.spot.USDKRW")?,
                    premium: 1.2 + (fnv1a(base) % 60) as f64 / 100.0,
                })
            })
            .collect()
    }

    /// After a round: re-price the anchored USD ticks of `batch` from the other walks.
    pub fn apply(
        anchors: &mut [Anchor],
        walks: &mut [Walk],
        batch: &mut [Tick],
        rng: &mut ChaCha8Rng,
    ) {
        for a in anchors {
            let usd_id = walks[a.usd].inst.id.clone();
            let Some(tick) = batch.iter_mut().find(|t| t.instrument == usd_id) else {
                continue;
            };
            // A slow bounded walk of the premium (reflected at the bounds).
            a.premium += rng.random_range(-0.02..0.02);
            if !(0.3..=2.8).contains(&a.premium) {
                a.premium = a.premium.clamp(0.3, 2.8);
            }
            let krw = walks[a.krw].price;
            let fx = walks[a.fx].price;
            let price = (krw / (fx * (1.0 + a.premium / 100.0)) * 100.0).round() / 100.0;
            walks[a.usd].pin(tick, price);
        }
    }
}

/// A plausible simulated headline about `walk`'s instrument, in Korean or English.
pub fn headline(walk: &Walk, now: i64, korean: bool, pick: u32) -> News {
    let inst = &walk.inst;
    let rate = (walk.price / walk.prev_close - 1.0) * 100.0;
    let up = rate >= 0.0;
    let r = format!("{:.2}", rate.abs());
    let (title, summary) = match (korean, up, pick % 3) {
        (true, true, 0) => (
            format!("{} {r}% 상승… 거래량 늘며 강세", inst.name_ko),
            format!(
                "{}이(가) 전일 대비 {r}% 오르며 강세를 이어가고 있다.",
                inst.name_ko
            ),
        ),
        (true, true, 1) => (
            format!("{}, 외국인 순매수에 {r}% 올라", inst.name_ko),
            format!(
                "외국인 매수세가 유입되며 {} 가격이 {r}% 상승했다.",
                inst.name_ko
            ),
        ),
        (true, true, _) => (
            format!("{} 반등… 시장 기대감 커져", inst.name_ko),
            format!("{}이(가) {r}% 반등하며 투자 심리가 개선됐다.", inst.name_ko),
        ),
        (true, false, 0) => (
            format!("{} {r}% 하락, 차익 실현 매물 출회", inst.name_ko),
            format!(
                "차익 실현 매물이 나오며 {}이(가) {r}% 내렸다.",
                inst.name_ko
            ),
        ),
        (true, false, 1) => (
            format!("{}, 경계 심리에 {r}% 약세", inst.name_ko),
            format!("관망세 속에 {} 가격이 {r}% 떨어졌다.", inst.name_ko),
        ),
        (true, false, _) => (
            format!("{} 조정… 단기 변동성 확대", inst.name_ko),
            format!("{}이(가) {r}% 조정을 받으며 변동성이 커졌다.", inst.name_ko),
        ),
        (false, true, 0) => (
            format!("{} climbs {r}% on heavy volume", inst.name_en),
            format!("{} is up {r}% from the previous close.", inst.name_en),
        ),
        (false, true, _) => (
            format!("{} extends gains, up {r}%", inst.name_en),
            format!("Buyers pushed {} {r}% higher.", inst.name_en),
        ),
        (false, false, 0) => (
            format!("{} slips {r}% as traders take profits", inst.name_en),
            format!("{} is down {r}% from the previous close.", inst.name_en),
        ),
        (false, false, _) => (
            format!("{} falls {r}% amid caution", inst.name_en),
            format!("Sellers pushed {} {r}% lower.", inst.name_en),
        ),
    };
    let url = format!("https://sise.invalid/sim/news/{}/{now}", inst.id);
    let id = hex::encode(&sha2::Sha256::digest(url.as_bytes())[..16]);
    News {
        v: SCHEMA_VERSION,
        id,
        source: sim_name(),
        title: format!("{} {title}", if korean { "[모의]" } else { "[SIM]" }),
        summary: Some(summary),
        url,
        image: None,
        published: now,
        language: Some(if korean { "ko" } else { "en" }.to_owned()),
        instruments: vec![inst.id.clone()],
    }
}

/// The market's price increment at a price level.
pub fn tick_size(inst: &Instrument, price: f64) -> f64 {
    match (inst.class, inst.venue.as_str()) {
        // KRX stock tick sizes (since 2023).
        (Class::Stock, "krx") => match price {
            p if p < 2_000.0 => 1.0,
            p if p < 5_000.0 => 5.0,
            p if p < 20_000.0 => 10.0,
            p if p < 50_000.0 => 50.0,
            p if p < 200_000.0 => 100.0,
            p if p < 500_000.0 => 500.0,
            _ => 1_000.0,
        },
        // Upbit KRW market tick sizes.
        (Class::Crypto, "upbit") => match price {
            p if p >= 1_000_000.0 => 1_000.0,
            p if p >= 500_000.0 => 100.0,
            p if p >= 100_000.0 => 50.0,
            p if p >= 10_000.0 => 10.0,
            p if p >= 1_000.0 => 1.0,
            p if p >= 100.0 => 0.1,
            p if p >= 10.0 => 0.01,
            _ => 0.001,
        },
        _ => 10f64.powi(-i32::from(inst.decimals)),
    }
}

fn round_to(x: f64, step: f64) -> f64 {
    let r = (x / step).round() * step;
    // Trim binary noise so 4112.580000000001 is stored as 4112.58.
    let decimals = (-step.log10()).ceil().max(0.0) as i32;
    let scale = 10f64.powi(decimals);
    (r * scale).round() / scale
}

/// Days since the epoch in a time zone (the market's trading day).
fn day_number(tz: chrono_tz::Tz, ts_ms: i64) -> i64 {
    match Utc.timestamp_millis_opt(ts_ms) {
        chrono::LocalResult::Single(t) => {
            let local = t.with_timezone(&tz).date_naive();
            i64::from(chrono::Datelike::num_days_from_ce(&local))
        }
        _ => ts_ms.div_euclid(86_400_000),
    }
}

fn fnv1a(s: &str) -> u64 {
    s.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

async fn run(sim: Sim, ctx: SourceContext) -> Result<(), PipelineError> {
    let name = sim_name();
    let now = now_ms();
    let mut walks = Vec::new();
    for inst in ctx.registry.instruments() {
        let tz = ctx.registry.timezone_of(inst);
        if let Some(mut walk) = Walk::new(inst.clone(), tz, sim.seed, now) {
            match ctx.bus.last_tick(&inst.id).await {
                Ok(Some(last)) if last.source == name => walk.resume_from(&last),
                Ok(_) => {}
                Err(e) => {
                    tracing::warn!(instrument = %inst.id, error = %e, "could not read the last tick; starting fresh")
                }
            }
            walks.push(walk);
        }
    }
    tracing::info!(
        instruments = walks.len(),
        seed = sim.seed,
        "simulated market (모의) starting"
    );
    ctx.status(
        &name,
        SourceState::Up,
        "simulated market (모의): random walk, not a live price",
    )
    .await;

    // Jitter of the schedule comes from its own seeded stream.
    let mut jitter = ChaCha8Rng::seed_from_u64(sim.seed.rotate_left(17));
    let start = Instant::now();
    // The start snapshot: one tick of every instrument right away.
    let mut due: Vec<Instant> = vec![start; walks.len()];
    let mut timer = tokio::time::interval(Duration::from_millis(25));
    timer.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let mut batch = Vec::with_capacity(walks.len());
    let mut failing = false;
    // Three headlines right away, then one every 30–90 s.
    let mut news_left_at_start = 3u32;
    let mut anchors = Anchor::find(&walks);
    let mut next_news = start;
    loop {
        tokio::select! {
            _ = ctx.cancel.cancelled() => break,
            _ = timer.tick() => {}
        }
        let now = Instant::now();
        let now_ms = now_ms();
        batch.clear();
        for (walk, due) in walks.iter_mut().zip(due.iter_mut()) {
            if *due <= now {
                batch.push(walk.step(now_ms));
                let factor = jitter.random_range(0.7..1.3) / sim.speed;
                *due = now + walk.interval().mul_f64(factor);
            }
        }
        if now >= next_news && !walks.is_empty() {
            let k = jitter.random_range(0..walks.len());
            let news = headline(
                &walks[k],
                now_ms,
                jitter.random_bool(0.6),
                jitter.random_range(0..3),
            );
            if let Err(e) = ctx.bus.publish_news(&news).await {
                ctx.metrics
                    .errors
                    .with_label_values(&["sim", "publish"])
                    .inc();
                tracing::warn!(error = %e, "sim news publish failed");
            }
            next_news = if news_left_at_start > 1 {
                news_left_at_start -= 1;
                now
            } else {
                news_left_at_start = 0;
                now + Duration::from_secs(jitter.random_range(30..=90))
            };
        }
        if batch.is_empty() {
            continue;
        }
        Anchor::apply(&mut anchors, &mut walks, &mut batch, &mut jitter);
        match ctx.bus.publish_ticks(&batch).await {
            Ok(stored) => {
                let fresh = stored.iter().filter(|s| !s.duplicate).count();
                ctx.metrics
                    .ticks
                    .with_label_values(&["sim"])
                    .inc_by(fresh as u64);
                if failing {
                    failing = false;
                    ctx.status(
                        &name,
                        SourceState::Up,
                        "simulated market (모의): publishing again",
                    )
                    .await;
                }
            }
            Err(e) => {
                ctx.metrics
                    .errors
                    .with_label_values(&["sim", "publish"])
                    .inc();
                tracing::warn!(error = %e, "sim publish failed; ticks of this round dropped, the walk goes on");
                if !failing {
                    failing = true;
                    ctx.status(&name, SourceState::Degraded, "cannot publish to the log")
                        .await;
                }
            }
        }
    }
    ctx.status(&name, SourceState::Down, "stopped").await;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Registry;

    fn walks(seed: u64, now: i64) -> Vec<Walk> {
        let reg = Registry::builtin().unwrap();
        reg.instruments()
            .iter()
            .filter_map(|i| Walk::new(i.clone(), reg.timezone_of(i), seed, now))
            .collect()
    }

    #[test]
    fn usd_references_keep_a_plausible_kimchi_premium() {
        let t0 = 1_773_293_415_000;
        let mut ws = walks(7, t0);
        let mut anchors = Anchor::find(&ws);
        assert_eq!(anchors.len(), 2, "BTC-USD and ETH-USD");
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        let id = |s: &str| sise_bus::InstrumentId::parse(s).unwrap();
        let price_of = |ws: &[Walk], s: &str| {
            ws.iter()
                .find(|w| w.inst.id == id(s))
                .map(|w| w.price)
                .unwrap()
        };
        for i in 1..2_000 {
            let now = t0 + i * 500;
            let mut batch: Vec<Tick> = ws.iter_mut().map(|w| w.step(now)).collect();
            Anchor::apply(&mut anchors, &mut ws, &mut batch, &mut rng);
            for (krw, usd) in [
                ("crypto.upbit.KRW-BTC", "crypto.coinbase.BTC-USD"),
                ("crypto.upbit.KRW-ETH", "crypto.coinbase.ETH-USD"),
            ] {
                let fx = price_of(&ws, "fx.spot.USDKRW");
                let p = crate::derived::premium_percent(price_of(&ws, krw), price_of(&ws, usd), fx)
                    .unwrap();
                assert!((0.2..=2.9).contains(&p), "premium {p} at step {i}");
                let tick = batch.iter().find(|t| t.instrument == id(usd)).unwrap();
                assert_eq!(tick.price, price_of(&ws, usd));
                assert!(tick.validate().is_ok());
            }
        }
    }

    #[test]
    fn same_seed_same_walk() {
        let t0 = 1_773_293_415_000;
        let mut a = walks(7, t0);
        let mut b = walks(7, t0);
        let mut c = walks(8, t0);
        let mut differs = false;
        for k in 1..200 {
            for ((x, y), z) in a.iter_mut().zip(b.iter_mut()).zip(c.iter_mut()) {
                let (tx, ty, tz) = (
                    x.step(t0 + k * 250),
                    y.step(t0 + k * 250),
                    z.step(t0 + k * 250),
                );
                assert_eq!((tx.price, tx.volume), (ty.price, ty.volume));
                differs |= tx.price != tz.price;
            }
        }
        assert!(differs, "another seed must give another walk");
    }

    #[test]
    fn realistic_levels_ticks_and_fields() {
        let t0 = 1_773_293_415_000;
        for mut w in walks(1, t0) {
            let start = w.price;
            let mut moved = 0;
            let mut last = w.price;
            for k in 1..=3600 {
                let t = w.step(t0 + k * 1000);
                let tick = tick_size(&w.inst, t.price);
                let units = t.price / tick;
                assert!(
                    (units - units.round()).abs() < 1e-6,
                    "{} off tick: {}",
                    w.inst.id,
                    t.price
                );
                assert!(t.price > 0.0);
                assert_eq!(
                    t.change.unwrap(),
                    ((t.price - t.prev_close.unwrap()) * 1e4).round() / 1e4
                );
                assert!(t.seq == k as u64);
                if t.price != last {
                    moved += 1;
                }
                last = t.price;
            }
            // Lively (the price changes most seconds) yet bounded (within ±25 % over an hour).
            assert!(moved > 1800, "{} moved only {moved} times", w.inst.id);
            assert!(
                (w.price / start - 1.0).abs() < 0.25,
                "{} wandered to {}",
                w.inst.id,
                w.price
            );
        }
    }

    #[test]
    fn starting_prices_match_the_reference() {
        let w = walks(1, 1_773_293_415_000);
        let price = |id: &str| w.iter().find(|w| w.inst.id.as_str() == id).unwrap().price;
        assert_eq!(price("crypto.upbit.KRW-BTC"), 130_250_000.0);
        assert_eq!(price("stock.krx.068270"), 181_500.0);
        assert_eq!(price("stock.us.GOOG"), 301.45);
        assert_eq!(price("metal.spot.XAU"), 4_012.35);
        assert_eq!(price("fx.spot.USDKRW"), 1_452.30);
    }

    #[test]
    fn day_rollover_moves_prev_close_and_resets_volume() {
        // 2026-03-12 23:59:59 KST, then 00:00:01 KST of the next day.
        let before = 1_773_327_599_000;
        let mut w = walks(3, before)
            .into_iter()
            .find(|w| w.inst.id.as_str() == "stock.krx.068270")
            .unwrap();
        let t1 = w.step(before + 500);
        let t2 = w.step(before + 2_000);
        assert_eq!(t2.prev_close, Some(t1.price));
        assert_eq!(t2.day_volume, Some(t2.volume));
    }

    #[test]
    fn headlines_are_tagged_and_marked_simulated() {
        let t0 = 1_773_293_415_000;
        let w = walks(1, t0).remove(2);
        let ko = headline(&w, t0, true, 0);
        assert!(
            ko.title.starts_with("[모의] ") && ko.title.contains(&w.inst.name_ko),
            "{}",
            ko.title
        );
        assert_eq!(ko.instruments, vec![w.inst.id.clone()]);
        assert_eq!(ko.language.as_deref(), Some("ko"));
        assert_eq!(ko.id.len(), 32);
        let en = headline(&w, t0 + 1, false, 1);
        assert!(en.title.starts_with("[SIM] ") && en.title.contains(&w.inst.name_en));
        assert_ne!(ko.id, en.id);
        assert!(en.url.contains(".invalid/"));
    }

    #[test]
    fn resume_continues_the_sequence_and_price() {
        let t0 = 1_773_293_415_000;
        let mut w = walks(1, t0).remove(0);
        let last = w.step(t0 + 1000);
        let mut again = walks(1, t0 + 5000).remove(0);
        again.resume_from(&last);
        let next = again.step(t0 + 6000);
        assert_eq!(next.seq, last.seq + 1);
        assert_eq!(next.prev_close, last.prev_close);
    }
}

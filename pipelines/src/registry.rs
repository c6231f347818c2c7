//! The instrument registry: `pipelines/instruments.toml`, embedded at build time and
//! overridable at run time (`SISE_INSTRUMENTS=path`). Loaded once, checked, then shared.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use serde::{Deserialize, Serialize};
use sise_bus::{Class, InstrumentId};

use crate::PipelineError;

/// The registry shipped with sise.
pub const DEFAULT_TOML: &str = include_str!("../instruments.toml");

/// A market: whose clock and calendar an instrument follows.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Market {
    pub name_ko: String,
    pub name_en: String,
    /// IANA time zone of the market's day (for daily candles and day rollover).
    pub timezone: String,
}

/// Where the simulated market starts for an instrument.
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
pub struct SimParams {
    pub price: f64,
    pub prev_close: f64,
    pub volatility: f64,
    pub trade_size: f64,
    pub day_volume: f64,
    pub interval_ms: u64,
}

/// One instrument as the API lists it (`GET /api/v1/instruments`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Instrument {
    pub id: InstrumentId,
    pub name_ko: String,
    pub name_en: String,
    pub class: Class,
    pub venue: String,
    pub currency: String,
    pub decimals: u8,
    pub market: String,
    #[serde(default, skip_serializing)]
    pub sim: Option<SimParams>,
}

#[derive(Deserialize)]
struct File {
    markets: HashMap<String, Market>,
    instruments: Vec<Instrument>,
}

/// The loaded, checked registry.
#[derive(Debug)]
pub struct Registry {
    instruments: Vec<Arc<Instrument>>,
    by_id: HashMap<InstrumentId, Arc<Instrument>>,
    markets: HashMap<String, Market>,
    /// Instruments a source lists beyond the file (Upbit's other KRW markets), learned at run
    /// time from the `listed` bucket ([`crate::catalog`]); never shadows a registry entry.
    listed: RwLock<HashMap<InstrumentId, Arc<Instrument>>>,
    /// Ids a user added that the source checking them did not find, with the reason (from the
    /// `watched` bucket, [`crate::catalog`]).
    rejected: RwLock<HashMap<InstrumentId, String>>,
}

/// What an id is to the edge ([`Registry::resolve`]).
#[derive(Debug, Clone)]
pub enum Resolved {
    /// In the registry, or listed by a source.
    Known(Arc<Instrument>),
    /// Not known yet, but of a shape a source checks on demand (a KRX code, a US ticker): a
    /// provisional instrument named by its code, until the source lists or rejects it.
    Candidate(Arc<Instrument>),
    /// Checked and not found: why.
    Rejected(String),
    Unknown,
}

impl Registry {
    /// The registry shipped with sise.
    pub fn builtin() -> Result<Self, PipelineError> {
        Self::from_toml(DEFAULT_TOML)
    }

    /// Parse and check a registry: ids unique, class and venue matching the id, markets known,
    /// time zones valid, simulation parameters sane.
    pub fn from_toml(text: &str) -> Result<Self, PipelineError> {
        let file: File =
            toml::from_str(text).map_err(|e| PipelineError::Registry(e.to_string()))?;
        for (key, market) in &file.markets {
            market
                .timezone
                .parse::<chrono_tz::Tz>()
                .map_err(|e| PipelineError::Registry(format!("market {key}: time zone: {e}")))?;
        }
        let mut by_id = HashMap::new();
        let mut instruments = Vec::new();
        for inst in file.instruments {
            let id_text = inst.id.to_string();
            let err = |m: &str| PipelineError::Registry(format!("{id_text}: {m}"));
            if inst.class != inst.id.class() || inst.venue != inst.id.venue() {
                return Err(err("class/venue do not match the id"));
            }
            if !file.markets.contains_key(&inst.market) {
                return Err(err("unknown market"));
            }
            if inst.name_ko.is_empty() || inst.name_en.is_empty() {
                return Err(err("names must not be empty"));
            }
            if inst.decimals > 8 {
                return Err(err("decimals over 8"));
            }
            if let Some(sim) = inst.sim {
                let ok = sim.price > 0.0
                    && sim.prev_close > 0.0
                    && sim.volatility > 0.0
                    && sim.trade_size >= 0.0
                    && sim.day_volume >= 0.0
                    && (50..=60_000).contains(&sim.interval_ms);
                if !ok {
                    return Err(err("bad sim parameters"));
                }
            }
            let inst = Arc::new(inst);
            if by_id.insert(inst.id.clone(), inst.clone()).is_some() {
                return Err(err("duplicate id"));
            }
            instruments.push(inst);
        }
        Ok(Registry {
            instruments,
            by_id,
            markets: file.markets,
            listed: RwLock::new(HashMap::new()),
            rejected: RwLock::new(HashMap::new()),
        })
    }

    /// Every instrument, in registry order.
    pub fn instruments(&self) -> &[Arc<Instrument>] {
        &self.instruments
    }

    pub fn get(&self, id: &InstrumentId) -> Option<&Arc<Instrument>> {
        self.by_id.get(id)
    }

    /// An instrument of the registry or, failing that, one a source lists ([`Self::add_listed`]).
    pub fn lookup(&self, id: &InstrumentId) -> Option<Arc<Instrument>> {
        if let Some(i) = self.by_id.get(id) {
            return Some(i.clone());
        }
        self.listed
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(id)
            .cloned()
    }

    /// Learn an instrument a source lists. It is checked like a registry entry; an id of the
    /// registry itself is left alone. Returns whether it was new or changed.
    pub fn add_listed(&self, inst: Instrument) -> Result<bool, PipelineError> {
        let err = |m: &str| PipelineError::Registry(format!("listed {}: {m}", inst.id));
        if inst.class != inst.id.class() || inst.venue != inst.id.venue() {
            return Err(err("class/venue do not match the id"));
        }
        if !self.markets.contains_key(&inst.market) {
            return Err(err("unknown market"));
        }
        if inst.name_ko.is_empty() || inst.name_en.is_empty() || inst.decimals > 8 {
            return Err(err("names empty or decimals over 8"));
        }
        if self.by_id.contains_key(&inst.id) {
            return Ok(false);
        }
        let mut listed = self.listed.write().unwrap_or_else(|e| e.into_inner());
        let changed = listed.get(&inst.id).is_none_or(|old| {
            old.name_ko != inst.name_ko
                || old.name_en != inst.name_en
                || old.decimals != inst.decimals
                || old.currency != inst.currency
                || old.market != inst.market
        });
        if changed {
            listed.insert(inst.id.clone(), Arc::new(inst));
        }
        Ok(changed)
    }

    /// Forget a listed instrument (a source delisted it).
    pub fn remove_listed(&self, id: &InstrumentId) {
        self.listed
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .remove(id);
    }

    /// Known, candidate, rejected or unknown: how the edge treats an id a user asks for. A
    /// listed instrument wins over a rejection (a later check found it).
    pub fn resolve(&self, id: &InstrumentId) -> Resolved {
        if let Some(i) = self.lookup(id) {
            return Resolved::Known(i);
        }
        if let Some(why) = self.rejected(id) {
            return Resolved::Rejected(why);
        }
        match crate::catalog::candidate(id) {
            Some(inst) if self.markets.contains_key(&inst.market) => {
                Resolved::Candidate(Arc::new(inst))
            }
            _ => Resolved::Unknown,
        }
    }

    /// Why a user-added id was rejected, if it was.
    pub fn rejected(&self, id: &InstrumentId) -> Option<String> {
        self.rejected
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(id)
            .cloned()
    }

    /// Record (`Some`) or clear (`None`) the rejection of a user-added id.
    pub fn set_rejected(&self, id: &InstrumentId, reason: Option<String>) {
        let mut r = self.rejected.write().unwrap_or_else(|e| e.into_inner());
        match reason {
            Some(why) => r.insert(id.clone(), why),
            None => r.remove(id),
        };
    }

    /// The listed instruments, by id.
    pub fn listed(&self) -> Vec<Arc<Instrument>> {
        let mut out: Vec<Arc<Instrument>> = self
            .listed
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .values()
            .cloned()
            .collect();
        out.sort_by(|a, b| a.id.as_str().cmp(b.id.as_str()));
        out
    }

    pub fn market(&self, key: &str) -> Option<&Market> {
        self.markets.get(key)
    }

    /// The IANA time zone an instrument's market day follows.
    pub fn timezone_of(&self, inst: &Instrument) -> chrono_tz::Tz {
        self.markets
            .get(&inst.market)
            .and_then(|m| m.timezone.parse().ok())
            .unwrap_or(chrono_tz::UTC)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtin_has_every_default_instrument() {
        let r = Registry::builtin().unwrap();
        let ids: Vec<&str> = r.instruments().iter().map(|i| i.id.as_str()).collect();
        for want in [
            "stock.krx.058610",
            "stock.krx.086520",
            "stock.krx.068270",
            "index.krx.KOSPI",
            "index.krx.KOSDAQ",
            "stock.us.BMNR",
            "stock.us.GOOG",
            "stock.us.FIG",
            "index.us.DJI",
            "index.us.IXIC",
            "crypto.upbit.KRW-BTC",
            "crypto.upbit.KRW-ETH",
            "crypto.upbit.KRW-SOL",
            "crypto.upbit.KRW-XRP",
            "crypto.upbit.KRW-LINK",
            "crypto.upbit.KRW-SUI",
            "crypto.upbit.KRW-ONDO",
            "metal.spot.XAU",
            "metal.spot.XAG",
            "fx.spot.USDKRW",
        ] {
            assert!(ids.contains(&want), "{want} missing");
        }
        // 20 market instruments, 2 USD references (Coinbase) and 6 derived ones (gold and silver
        // in KRW per g and per 돈, the BTC and ETH kimchi premiums).
        assert_eq!(ids.len(), 28);
        let celltrion = r
            .get(&InstrumentId::parse("stock.krx.068270").unwrap())
            .unwrap();
        assert_eq!(celltrion.name_ko, "셀트리온");
        assert_eq!(celltrion.currency, "KRW");
        assert_eq!(celltrion.decimals, 0);
        assert_eq!(r.timezone_of(celltrion), chrono_tz::Asia::Seoul);
        for i in r.instruments() {
            // Derived instruments are computed from their (simulated or live) inputs.
            let derived = i.class == sise_bus::Class::Derived;
            assert_eq!(i.sim.is_some(), !derived, "{}: sim parameters", i.id);
        }
    }

    #[test]
    fn every_default_id_builds_its_subject() {
        let r = Registry::builtin().unwrap();
        let ns = sise_bus::Namespace::parse("sise").unwrap();
        for i in r.instruments() {
            let subject = ns.tick_subject(&i.id);
            assert_eq!(subject, format!("sise.tick.{}", i.id));
            assert_eq!(ns.instrument_of_subject(&subject).as_ref(), Some(&i.id));
            assert!(!subject.contains(' ') && !subject.contains('*') && !subject.contains('>'));
            assert_eq!(subject.split('.').count(), 5, "{subject}");
        }
    }

    #[test]
    fn resolves_known_candidate_rejected_and_unknown() {
        let r = Registry::builtin().unwrap();
        let id = |s: &str| InstrumentId::parse(s).unwrap();
        assert!(matches!(
            r.resolve(&id("stock.krx.068270")),
            Resolved::Known(_)
        ));
        let Resolved::Candidate(sam) = r.resolve(&id("stock.krx.005930")) else {
            panic!("a 6-digit KRX code is a candidate")
        };
        assert_eq!(
            (sam.name_ko.as_str(), sam.currency.as_str(), sam.decimals),
            ("005930", "KRW", 0)
        );
        assert_eq!(sam.market, "krx");
        let Resolved::Candidate(tsla) = r.resolve(&id("stock.us.TSLA")) else {
            panic!("an uppercase ticker is a candidate")
        };
        assert_eq!(
            (tsla.currency.as_str(), tsla.market.as_str()),
            ("USD", "us")
        );
        for not in [
            "stock.krx.00593",
            "stock.krx.0059300",
            "stock.krx.00593A",
            "stock.us.tsla",
            "stock.us.TOOLONG",
            "stock.us.BRK-B",
            "stock.nyse.TSLA",
            "index.krx.KOSPI200",
            "crypto.upbit.KRW-DOGE",
        ] {
            assert!(matches!(r.resolve(&id(not)), Resolved::Unknown), "{not}");
        }
        r.set_rejected(&id("stock.krx.999999"), Some("KIS has no 999999".into()));
        assert!(
            matches!(r.resolve(&id("stock.krx.999999")), Resolved::Rejected(ref w) if w == "KIS has no 999999")
        );
        // Listed later (a check found it after all): known.
        let mut listed = (**r.get(&id("stock.krx.068270")).unwrap()).clone();
        listed.id = id("stock.krx.999999");
        r.add_listed(listed).unwrap();
        assert!(matches!(
            r.resolve(&id("stock.krx.999999")),
            Resolved::Known(_)
        ));
        r.set_rejected(&id("stock.krx.999999"), None);
        assert_eq!(r.rejected(&id("stock.krx.999999")), None);
    }

    #[test]
    fn rejects_inconsistent_entries() {
        let bad = r#"
            [markets.krx]
            name_ko = "x"
            name_en = "x"
            timezone = "Asia/Seoul"
            [[instruments]]
            id = "stock.krx.005930"
            name_ko = "삼성전자"
            name_en = "Samsung"
            class = "index"
            venue = "krx"
            currency = "KRW"
            decimals = 0
            market = "krx"
        "#;
        assert!(Registry::from_toml(bad).is_err());
        let bad_tz = r#"
            [markets.krx]
            name_ko = "x"
            name_en = "x"
            timezone = "Mars/Olympus"
            instruments = []
        "#;
        assert!(Registry::from_toml(bad_tz).is_err());
    }
}

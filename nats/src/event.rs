//! The immutable events of the log. Each carries `v`, its schema version.
//!
//! Fields are encoded by name (MessagePack maps), so a later version can add optional fields
//! without breaking older readers; a reader refuses a version newer than it knows.

use serde::{Deserialize, Serialize};

use crate::{BusError, InstrumentId, SourceName};

/// The schema version this build writes and the newest it reads.
pub const SCHEMA_VERSION: u16 = 1;

fn v1() -> u16 {
    SCHEMA_VERSION
}

/// One observation of an instrument's price.
///
/// Times are Unix epoch milliseconds. `volume` is the size traded in this tick (0 for a quote
/// update without a trade); `day_volume` is the market day's cumulative volume as the source
/// reports it. `change_rate` is a fraction (0.0123 = +1.23 %).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Tick {
    #[serde(default = "v1")]
    pub v: u16,
    pub instrument: InstrumentId,
    pub price: f64,
    pub prev_close: Option<f64>,
    pub change: Option<f64>,
    pub change_rate: Option<f64>,
    pub volume: f64,
    pub day_volume: Option<f64>,
    /// Exchange time (the source's own timestamp).
    pub ts: i64,
    /// When sise received it.
    pub ingest_ts: i64,
    pub source: SourceName,
    /// The source's own sequence (can exceed 2^53; never through f64).
    pub seq: u64,
    /// Fetched after the fact (REST history) rather than observed live. A backfilled tick of the
    /// same observation as a live one has the same `msg_id`, so the stream keeps only one.
    #[serde(default, skip_serializing_if = "is_false")]
    pub backfill: bool,
    /// For a derived instrument: the input ticks it was computed from (their ids and exchange
    /// times), so readers can show the inputs' ages. Empty for a market's own tick.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub inputs: Vec<TickInput>,
}

/// One input of a derived tick: which instrument, and the exchange time of the value used.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TickInput {
    pub instrument: InstrumentId,
    pub ts: i64,
}

fn is_false(b: &bool) -> bool {
    !*b
}

impl Tick {
    /// The `Nats-Msg-Id`: source + instrument + exchange time + sequence, so a retried publish
    /// of the same observation is dropped by the stream's duplicate window.
    pub fn msg_id(&self) -> String {
        format!(
            "{}:{}:{}:{}",
            self.source, self.instrument, self.ts, self.seq
        )
    }

    /// Reject values no market produces (a garbage event must not reach a read model).
    pub fn validate(&self) -> Result<(), BusError> {
        let finite = |x: f64| x.is_finite();
        let opt = |x: Option<f64>| x.is_none_or(finite);
        // A premium (`derived.kimchi.*`, in percent) is the one price that may be negative.
        let signed =
            self.instrument.class() == crate::Class::Derived && self.instrument.venue() == "kimchi";
        if !finite(self.price) || (self.price < 0.0 && !signed) {
            return Err(BusError::Decode(format!(
                "tick price {} is not a price",
                self.price
            )));
        }
        if !finite(self.volume) || self.volume < 0.0 {
            return Err(BusError::Decode(format!(
                "tick volume {} is not a volume",
                self.volume
            )));
        }
        if !(opt(self.prev_close)
            && opt(self.change)
            && opt(self.change_rate)
            && opt(self.day_volume))
        {
            return Err(BusError::Decode("tick has a non-finite field".into()));
        }
        if self.ts <= 0 || self.ingest_ts <= 0 {
            return Err(BusError::Decode(
                "tick time must be positive epoch ms".into(),
            ));
        }
        Ok(())
    }
}

/// A news article, tagged with the instruments it mentions.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct News {
    #[serde(default = "v1")]
    pub v: u16,
    /// Hash of the canonical URL (hex).
    pub id: String,
    pub source: SourceName,
    pub title: String,
    pub summary: Option<String>,
    pub url: String,
    pub image: Option<String>,
    /// Publication time, epoch ms.
    pub published: i64,
    pub language: Option<String>,
    pub instruments: Vec<InstrumentId>,
}

impl News {
    pub fn msg_id(&self) -> String {
        format!("{}:{}", self.source, self.id)
    }
}

/// The state of a source, as the UI shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SourceState {
    Up,
    Degraded,
    Down,
}

impl SourceState {
    pub fn as_str(self) -> &'static str {
        match self {
            SourceState::Up => "up",
            SourceState::Degraded => "degraded",
            SourceState::Down => "down",
        }
    }
}

/// A change of a source's state (published on every change, and at start).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SourceStatus {
    #[serde(default = "v1")]
    pub v: u16,
    pub source: SourceName,
    pub state: SourceState,
    pub detail: String,
    /// When the state was observed, epoch ms.
    pub ts: i64,
}

impl SourceStatus {
    pub fn msg_id(&self) -> String {
        format!("{}:{}:{}", self.source, self.state.as_str(), self.ts)
    }
}

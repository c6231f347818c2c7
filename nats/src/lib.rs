//! `sise-bus`: the contract of the sise log.
//!
//! Everything that crosses NATS JetStream is defined here, so ingestors (`sise-pipelines`),
//! read models (`sise-projections`) and the edge (`sise`) agree on it byte for byte:
//!
//! - [`id`]: [`InstrumentId`] (`<class>.<venue>.<symbol>`) and [`SourceName`], parsed, never raw strings;
//! - [`names`]: [`Namespace`] and every name derived from it: subjects, streams, consumers,
//!   Redis keys and the PostgreSQL schema (no subject or key is `format!`ed outside this crate);
//! - [`event`]: the immutable events [`Tick`], [`News`] and [`SourceStatus`], each with a schema version;
//! - [`codec`]: MessagePack (rmp-serde, named fields) encode/decode with validation;
//! - [`stream`]: the stream definitions (`nats/streams/*.json`), ensured at start;
//! - [`publish`]: the one publish path, which sets `Nats-Msg-Id` and awaits the stream's ack;
//! - [`consume`]: the durable pull-consumer loop that acks only after the handler committed;
//! - [`replay`]: reading the past: a time range of ticks (replay) or a run of sequences (rebuild).

pub mod catalog;
pub mod codec;
pub mod consume;
pub mod error;
pub mod event;
pub mod id;
pub mod names;
pub mod publish;
pub mod replay;
pub mod stream;

pub use codec::{decode, encode};
pub use consume::{run_consumer, ConsumerMetrics, ConsumerSpec, Delivered, Handler};
pub use error::BusError;
pub use event::{News, SourceState, SourceStatus, Tick, TickInput, SCHEMA_VERSION};
pub use id::{Class, InstrumentId, SourceName};
pub use names::{Namespace, StreamKind};
pub use publish::Bus;

/// Current time as Unix epoch milliseconds (the unit of every time on the log and the API).
pub fn now_ms() -> i64 {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    i64::try_from(now.as_millis()).unwrap_or(i64::MAX)
}

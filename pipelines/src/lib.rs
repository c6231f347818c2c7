//! `sise-pipelines`: the ingestors. Each outside source is one module behind the [`Source`]
//! trait; a source turns what it observes into immutable events and publishes them through
//! [`sise_bus::Bus`]. The [`registry`] (`pipelines/instruments.toml`) lists the default
//! instruments, their markets and the simulated market's starting points.
//!
//! Sources today: [`sim`] (the default: a seeded random walk per instrument, no keys, no
//! network), [`upbit`] (live KRW crypto over Upbit's WebSocket, REST snapshot and trade
//! backfill), [`gold`] (GoldAPI.io with the keyless gold-api.com fallback) and [`exim`] (Korea
//! Eximbank FX), polled on [`schedule`]s with the helpers of [`poll`]; [`derived`] computes gold
//! and silver in KRW per g and per 돈 from their ticks. KIS and NewsAPI plug in here.

pub mod calendar;
pub mod catalog;
pub mod coinbase;
pub mod derived;
pub mod error;
pub mod exim;
#[cfg(any(test, feature = "fake"))]
pub mod fake_http;
pub mod gold;
pub mod kis;
pub mod news;
pub mod poll;
pub mod registry;
pub mod schedule;
pub mod sim;
pub mod source;
pub mod upbit;

pub use error::PipelineError;
pub use registry::{Instrument, Market, Registry, Resolved, SimParams};
pub use source::{build_sources, IngestMetrics, Source, SourceContext, SourceSettings};

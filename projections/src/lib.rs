//! `sise-projections`: the read models. Each owns its writer (a [`sise_bus::Handler`] run by the
//! durable-consumer loop) and its reader (the queries the edge calls), with its SQL or Redis
//! commands beside them.
//!
//! - [`latest`] → Redis: the last tick per instrument, with exchange and ingest time.
//! - [`history`] → PostgreSQL: every tick, and 1-minute OHLCV candles upserted per batch;
//!   5m/15m/1h/1d/1w are derived from the 1-minute rows at read time.
//! - [`status`] → Redis: each source's last state, and the time of its newest tick.
//! - [`news`] → PostgreSQL: articles with their instrument tags.
//!
//! Every writer stores the last stream sequence it applied beside its data, atomically, so a
//! restart resumes exactly and a redelivered message never counts twice.

pub mod db;
pub mod error;
pub mod history;
pub mod latest;
pub mod news;
pub mod status;

pub use error::ProjectionError;

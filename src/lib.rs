//! sise (시세): a self-hosted, real-time investment dashboard for Korean investors.
//!
//! This crate is the `sise` binary's library: [`config`] (one struct from the environment),
//! [`telemetry`] (logging), [`app`] (build and run the stages), and [`edge`] (the Axum edge:
//! REST, WebSocket hub, static dashboard, metrics). The pipeline itself lives in the workspace
//! crates: `sise-bus` (the log's contract), `sise-pipelines` (sources), `sise-projections`
//! (read models).

pub mod app;
pub mod config;
pub mod edge;
pub mod rebuild;
pub mod replay;
pub mod telemetry;

pub use app::{App, Stages};
pub use config::Config;

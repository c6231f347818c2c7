//! `sise`: parse the command line, load the configuration, start logging, run the stages.

use clap::{Parser, Subcommand};
use sise::{App, Config, Stages};

/// 시세 sise: a real-time market dashboard for Korean investors (KRX, US, Upbit crypto, gold, FX, news).
///
/// Every stage reads the same configuration from the environment (a .env file is read if
/// present) or the matching flags; see README.md for the full list.
#[derive(Parser)]
#[command(name = "sise", version, propagate_version = true)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    config: Config,
}

#[derive(Subcommand)]
enum Command {
    /// Run every stage in one process: ingest, project and the edge (the default).
    Up,
    /// Run the ingestors only: the enabled sources publish ticks, news and status to JetStream.
    Ingest,
    /// Run the projection workers only: JetStream → Redis (latest, status) and PostgreSQL
    /// (history, news). Run one per namespace.
    Project,
    /// Run the edge only: REST, WebSocket, the dashboard and metrics, reading the projections.
    Edge,
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
    tracing::info!("shutdown requested");
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let _ = dotenvy::dotenv();
    let cli = Cli::parse();
    sise::telemetry::init();
    let stages = match cli.command.unwrap_or(Command::Up) {
        Command::Up => Stages::ALL,
        Command::Ingest => Stages::INGEST,
        Command::Project => Stages::PROJECT,
        Command::Edge => Stages::EDGE,
    };
    tracing::debug!(config = ?cli.config, "configuration");
    let result = async {
        let app = App::build(cli.config, stages).await?;
        app.run_until(shutdown_signal()).await
    }
    .await;
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("sise: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

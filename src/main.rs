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
    Project {
        #[command(subcommand)]
        action: Option<ProjectAction>,
    },
    /// Run the edge only: REST, WebSocket, the dashboard and metrics, reading the projections.
    Edge,
    /// Print a past range of the log (NDJSON or a table), or re-publish it under another prefix.
    Replay(sise::replay::ReplayArgs),
}

#[derive(Subcommand)]
enum ProjectAction {
    /// Rebuild a read model from the log while everything keeps running (built aside, then
    /// swapped in atomically).
    Rebuild {
        /// The read model: latest, history or news.
        #[arg(value_enum)]
        model: sise::rebuild::Model,
    },
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
        Command::Project { action: None } => Stages::PROJECT,
        Command::Edge => Stages::EDGE,
        Command::Project {
            action: Some(ProjectAction::Rebuild { model }),
        } => {
            let progress = sise::rebuild::stderr_progress(model);
            return match sise::rebuild::rebuild(&cli.config, model, progress).await {
                Ok(r) => {
                    println!(
                        "rebuilt {}: {} events from the log{}, up to stream sequence {}, in {:.2} s{}",
                        model.name(),
                        sise::rebuild::thousands(r.events),
                        if r.preserved > 0 {
                            format!(
                                " + {} kept from before the log's retention",
                                sise::rebuild::thousands(r.preserved)
                            )
                        } else {
                            String::new()
                        },
                        r.last_seq,
                        r.elapsed.as_secs_f64(),
                        if r.skipped > 0 {
                            format!(" ({} undecodable messages skipped)", r.skipped)
                        } else {
                            String::new()
                        }
                    );
                    std::process::ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("sise: rebuild {}: {e:#}", model.name());
                    std::process::ExitCode::FAILURE
                }
            };
        }
        Command::Replay(args) => {
            return match sise::replay::run(&cli.config, &args).await {
                Ok(_) => std::process::ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("sise: replay: {e:#}");
                    std::process::ExitCode::FAILURE
                }
            };
        }
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

//! The [`Source`] trait every ingestor implements, the context it runs in, and the metrics and
//! status events every source shares (same names for every source).

use std::sync::Arc;

use futures::future::BoxFuture;
use prometheus::{HistogramOpts, HistogramVec, IntCounterVec, IntGaugeVec, Opts, Registry as Prom};
use sise_bus::{now_ms, Bus, SourceName, SourceState, SourceStatus, SCHEMA_VERSION};
use tokio_util::sync::CancellationToken;

use crate::{PipelineError, Registry};

/// An outside source (or the simulated market) that publishes events until cancelled.
pub trait Source: Send + 'static {
    fn name(&self) -> SourceName;
    /// Run until `ctx.cancel` fires. Returns an error only for what retrying cannot fix.
    fn run(self: Box<Self>, ctx: SourceContext) -> BoxFuture<'static, Result<(), PipelineError>>;
}

/// Everything a running source needs, passed in (no globals).
#[derive(Clone)]
pub struct SourceContext {
    pub bus: Bus,
    pub registry: Arc<Registry>,
    pub metrics: IngestMetrics,
    pub cancel: CancellationToken,
}

impl SourceContext {
    /// Publish a `SourceStatus` (and mirror it in the `sise_source_state` gauge).
    pub async fn status(&self, source: &SourceName, state: SourceState, detail: impl Into<String>) {
        let detail = detail.into();
        self.metrics
            .state
            .with_label_values(&[source.as_str()])
            .set(match state {
                SourceState::Up => 2,
                SourceState::Degraded => 1,
                SourceState::Down => 0,
            });
        let status = SourceStatus {
            v: SCHEMA_VERSION,
            source: source.clone(),
            state,
            detail,
            ts: now_ms(),
        };
        if let Err(e) = self.bus.publish_status(&status).await {
            tracing::warn!(source = %source, error = %e, "could not publish source status");
        }
    }
}

/// A source's status as last published: [`StatusBoard::set`] publishes a `SourceStatus` (and
/// logs it) only when the state or the detail changes, so a source can say where it stands after
/// every round without flooding the STATUS stream.
pub struct StatusBoard {
    name: SourceName,
    last: Option<(SourceState, String)>,
}

impl StatusBoard {
    pub fn new(name: SourceName) -> Self {
        StatusBoard { name, last: None }
    }

    /// Whether nothing was published yet.
    pub fn is_unset(&self) -> bool {
        self.last.is_none()
    }

    /// Publish `state` and `detail` unless they are what was published last.
    pub async fn set(&mut self, ctx: &SourceContext, state: SourceState, detail: impl AsRef<str>) {
        let detail = detail.as_ref();
        if self
            .last
            .as_ref()
            .is_some_and(|(s, d)| *s == state && d == detail)
        {
            return;
        }
        tracing::info!(
            source = self.name.as_str(),
            state = state.as_str(),
            detail,
            "source status"
        );
        self.last = Some((state, detail.to_owned()));
        ctx.status(&self.name, state, detail).await;
    }

    /// Stop a polling source: its schedule ends and its status says `down`, "stopped".
    pub async fn stopped(
        &mut self,
        ctx: &SourceContext,
        schedule: crate::schedule::Schedule,
    ) -> Result<(), PipelineError> {
        schedule.stop().await;
        self.set(ctx, SourceState::Down, "stopped").await;
        Ok(())
    }
}

impl SourceContext {
    /// Publish ticks for `source` (the metric label): counts what the stream stored as new and
    /// the lag from exchange time to publication; a failure is counted and logged, never fatal
    /// (the source keeps going). Returns whether the ticks were stored.
    pub async fn publish_ticks(&self, source: &str, ticks: &[sise_bus::Tick]) -> bool {
        if ticks.is_empty() {
            return true;
        }
        match self.bus.publish_ticks(ticks).await {
            Ok(stored) => {
                let fresh = stored.iter().filter(|s| !s.duplicate).count();
                self.metrics
                    .ticks
                    .with_label_values(&[source])
                    .inc_by(fresh as u64);
                let now = now_ms();
                let lag = self.metrics.lag.with_label_values(&[source]);
                for t in ticks {
                    lag.observe((now - t.ts).max(0) as f64 / 1000.0);
                }
                true
            }
            Err(e) => {
                self.metrics
                    .errors
                    .with_label_values(&[source, "publish"])
                    .inc();
                let served_by = ticks[0].source.as_str();
                tracing::warn!(source, served_by, error = %e, "publishing ticks failed");
                false
            }
        }
    }
}

/// Metrics of every source, labelled by source name.
#[derive(Clone)]
pub struct IngestMetrics {
    pub ticks: IntCounterVec,
    pub errors: IntCounterVec,
    pub state: IntGaugeVec,
    /// Frames (messages) received from a streaming source, whatever they turn out to be.
    pub frames: IntCounterVec,
    /// Frames or answers that could not be parsed (skipped).
    pub parse_errors: IntCounterVec,
    /// Reconnections of a streaming source.
    pub reconnects: IntCounterVec,
    /// Exchange time → published to the log, seconds.
    pub lag: HistogramVec,
    /// News articles published to the log (new ones, not repeats).
    pub news: IntCounterVec,
}

impl IngestMetrics {
    pub fn new(registry: &Prom) -> Result<Self, prometheus::Error> {
        let ticks = IntCounterVec::new(
            Opts::new(
                "sise_ticks_ingested_total",
                "Ticks published to the log by a source",
            ),
            &["source"],
        )?;
        let errors = IntCounterVec::new(
            Opts::new("sise_source_errors_total", "Errors of a source, by kind"),
            &["source", "kind"],
        )?;
        let state = IntGaugeVec::new(
            Opts::new(
                "sise_source_state",
                "Source state: 2 up, 1 degraded, 0 down",
            ),
            &["source"],
        )?;
        let frames = IntCounterVec::new(
            Opts::new(
                "sise_source_frames_received_total",
                "Frames received from a streaming source",
            ),
            &["source"],
        )?;
        let parse_errors = IntCounterVec::new(
            Opts::new(
                "sise_source_parse_errors_total",
                "Frames or answers of a source that could not be parsed and were skipped",
            ),
            &["source"],
        )?;
        let reconnects = IntCounterVec::new(
            Opts::new(
                "sise_source_reconnects_total",
                "Reconnections of a streaming source",
            ),
            &["source"],
        )?;
        let lag = HistogramVec::new(
            HistogramOpts::new(
                "sise_source_lag_seconds",
                "Exchange time of a tick to its publication on the log",
            )
            .buckets(vec![
                0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
            ]),
            &["source"],
        )?;
        let news = IntCounterVec::new(
            Opts::new(
                "sise_news_ingested_total",
                "News articles published to the log by a source",
            ),
            &["source"],
        )?;
        registry.register(Box::new(news.clone()))?;
        registry.register(Box::new(ticks.clone()))?;
        registry.register(Box::new(errors.clone()))?;
        registry.register(Box::new(state.clone()))?;
        registry.register(Box::new(frames.clone()))?;
        registry.register(Box::new(parse_errors.clone()))?;
        registry.register(Box::new(reconnects.clone()))?;
        registry.register(Box::new(lag.clone()))?;
        Ok(IngestMetrics {
            ticks,
            errors,
            state,
            frames,
            parse_errors,
            reconnects,
            lag,
            news,
        })
    }
}

/// What sources need from the configuration.
#[derive(Debug, Clone)]
pub struct SourceSettings {
    /// Seed of the simulated market (same seed, same walk).
    pub sim_seed: u64,
    /// Multiplies the simulated tick rate (1.0 = the registry's intervals).
    pub sim_speed: f64,
    /// Upbit REST base (`SISE_UPBIT_REST_URL`).
    pub upbit_rest_url: String,
    /// Upbit WebSocket (`SISE_UPBIT_WS_URL`).
    pub upbit_ws_url: String,
    /// GoldAPI.io base (`SISE_GOLDAPI_URL`) and key (`GOLDAPI_KEY`, optional).
    pub goldapi_url: String,
    pub goldapi_key: Option<secrecy::SecretString>,
    /// gold-api.com base (`SISE_GOLD_FALLBACK_URL`).
    pub gold_fallback_url: String,
    /// Korea Eximbank AP01 endpoint (`SISE_EXIM_URL`) and key (`EXIM_AUTH_KEY`).
    pub exim_url: String,
    pub exim_auth_key: Option<secrecy::SecretString>,
    /// NewsAPI base (`SISE_NEWSAPI_URL`), key (`NEWSAPI_KEY`) and the plan's requests per day
    /// (`SISE_NEWSAPI_DAILY_LIMIT`).
    pub newsapi_url: String,
    pub newsapi_key: Option<secrecy::SecretString>,
    pub newsapi_daily_limit: u32,
    /// Coinbase Exchange public REST base (`SISE_COINBASE_URL`): the kimchi premium's USD prices.
    pub coinbase_url: String,
    /// KIS: REST base, WebSocket, app key pair, Redis for the shared token, and the limits
    /// (`SISE_KIS_*`); see [`crate::kis::KisSettings`].
    pub kis: crate::kis::KisSettings,
}

impl Default for SourceSettings {
    fn default() -> Self {
        SourceSettings {
            sim_seed: 20_260_312,
            sim_speed: 1.0,
            upbit_rest_url: crate::upbit::DEFAULT_REST_URL.to_owned(),
            upbit_ws_url: crate::upbit::DEFAULT_WS_URL.to_owned(),
            goldapi_url: crate::gold::DEFAULT_GOLDAPI_URL.to_owned(),
            goldapi_key: None,
            gold_fallback_url: crate::gold::DEFAULT_FALLBACK_URL.to_owned(),
            exim_url: crate::exim::DEFAULT_URL.to_owned(),
            exim_auth_key: None,
            newsapi_url: crate::news::DEFAULT_URL.to_owned(),
            newsapi_key: None,
            newsapi_daily_limit: crate::news::FREE_REQUESTS_PER_DAY,
            coinbase_url: crate::coinbase::DEFAULT_URL.to_owned(),
            kis: crate::kis::KisSettings::new(
                crate::kis::DEFAULT_REST_URL,
                crate::kis::DEFAULT_WS_URL,
            ),
        }
    }
}

/// Build the enabled sources. An unknown or not-yet-available source is an error at start.
pub fn build_sources(
    names: &[SourceName],
    settings: &SourceSettings,
) -> Result<Vec<Box<dyn Source>>, PipelineError> {
    let mut out: Vec<Box<dyn Source>> = Vec::new();
    for name in names {
        match name.as_str() {
            "sim" => out.push(Box::new(crate::sim::Sim::new(
                settings.sim_seed,
                settings.sim_speed,
            ))),
            "upbit" => out.push(Box::new(crate::upbit::Upbit::new(
                crate::upbit::UpbitSettings::new(&settings.upbit_rest_url, &settings.upbit_ws_url),
            ))),
            "gold" => out.push(Box::new(crate::gold::Gold::new(
                crate::gold::GoldSettings::new(
                    &settings.goldapi_url,
                    &settings.gold_fallback_url,
                    settings.goldapi_key.clone(),
                ),
            ))),
            "exim" => out.push(Box::new(crate::exim::Exim::new(
                crate::exim::EximSettings::new(&settings.exim_url, settings.exim_auth_key.clone()),
            ))),
            "kis" => {
                if settings.kis.credentials.is_none() {
                    return Err(PipelineError::Config {
                        source_name: "kis".into(),
                        message: "KIS_APP_KEY and KIS_APP_SECRET are required".into(),
                    });
                }
                out.push(Box::new(crate::kis::Kis::new(settings.kis.clone())))
            }
            "news" => out.push(Box::new(crate::news::NewsSource::new(
                crate::news::NewsSettings::new(
                    &settings.newsapi_url,
                    settings.newsapi_key.clone(),
                    settings.newsapi_daily_limit,
                ),
            ))),
            "coinbase" => out.push(Box::new(crate::coinbase::Coinbase::new(
                crate::coinbase::CoinbaseSettings::new(&settings.coinbase_url),
            ))),
            "kiwoom" => {
                return Err(PipelineError::Config {
                    source_name: name.to_string(),
                    message: "this connector is not in this build yet; use SISE_SOURCES=sim".into(),
                })
            }
            other => return Err(PipelineError::Config {
                source_name: other.to_string(),
                message:
                    "unknown source (known: sim, upbit, kis, kiwoom, gold, exim, news, coinbase)"
                        .into(),
            }),
        }
    }
    Ok(out)
}

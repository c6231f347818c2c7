//! Building and running sise: [`App::build`] connects to NATS, Redis and PostgreSQL (as the
//! chosen stages need), ensures the streams, applies the migrations and binds the HTTP listener;
//! [`App::run_until`] runs every stage until the given future resolves, then stops them in order
//! (one cancellation token; in-flight batches finish first).

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use sise_bus::{run_consumer, Bus, ConsumerMetrics, ConsumerSpec, StreamKind};
use sise_pipelines::{build_sources, IngestMetrics, Registry, SourceContext, SourceSettings};
use sise_projections::{history, latest, news, status};
use sqlx::PgPool;
use tokio::net::TcpListener;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::config::Config;
use crate::edge::{self, hub::Hub, ops::Deps, Edge};

/// Which stages a process runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stages {
    pub ingest: bool,
    pub project: bool,
    pub edge: bool,
}

impl Stages {
    pub const ALL: Stages = Stages {
        ingest: true,
        project: true,
        edge: true,
    };
    pub const INGEST: Stages = Stages {
        ingest: true,
        project: false,
        edge: false,
    };
    pub const PROJECT: Stages = Stages {
        ingest: false,
        project: true,
        edge: false,
    };
    pub const EDGE: Stages = Stages {
        ingest: false,
        project: false,
        edge: true,
    };
}

/// A built, not yet running, sise process.
pub struct App {
    config: Config,
    stages: Stages,
    listener: TcpListener,
    registry: Arc<Registry>,
    bus: Bus,
    redis: Option<ConnectionManager>,
    pg: Option<PgPool>,
    prom: prometheus::Registry,
    edge: Option<edge::AppState>,
    consumer_metrics: ConsumerMetrics,
    ingest_metrics: IngestMetrics,
}

/// Connect to Redis with bounded timeouts and automatic reconnection.
pub async fn connect_redis(url: &str) -> anyhow::Result<ConnectionManager> {
    let client = redis::Client::open(url).context("SISE_REDIS_URL")?;
    let cfg = ConnectionManagerConfig::new()
        .set_connection_timeout(Some(Duration::from_secs(5)))
        .set_response_timeout(Some(Duration::from_secs(5)))
        .set_max_delay(Duration::from_secs(2));
    let conn = tokio::time::timeout(
        Duration::from_secs(10),
        client.get_connection_manager_with_config(cfg),
    )
    .await
    .context("connecting to Redis timed out")?
    .context("connecting to Redis")?;
    Ok(conn)
}

/// Load the instrument registry: `SISE_INSTRUMENTS` or the built-in one.
pub fn load_registry(config: &Config) -> anyhow::Result<Registry> {
    match &config.instruments {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("reading {}", path.display()))?;
            Ok(Registry::from_toml(&text)?)
        }
        None => Ok(Registry::builtin()?),
    }
}

/// What the sources need from the configuration.
fn source_settings(config: &Config) -> SourceSettings {
    let mut kis = sise_pipelines::kis::KisSettings::new(&config.kis_rest_url, &config.kis_ws_url);
    if let (Some(key), Some(secret)) = (&config.kis_app_key, &config.kis_app_secret) {
        kis = kis.with_credentials(key.clone(), secret.clone());
    }
    kis.redis_url = Some(config.redis_url.clone());
    kis.rps = config.kis_rps;
    kis.ws_max_subscriptions = config.kis_ws_max_subscriptions as usize;
    kis.ws_enabled = config.kis_ws_max_subscriptions > 0;
    kis.poll_interval = Duration::from_millis(config.kis_poll_ms);
    kis.market_hours = config.kis_market_hours;
    kis.extra_symbols = config.kis_symbols.clone();
    SourceSettings {
        sim_seed: config.sim_seed,
        upbit_rest_url: config.upbit_rest_url.clone(),
        upbit_ws_url: config.upbit_ws_url.clone(),
        goldapi_url: config.goldapi_url.clone(),
        goldapi_key: config.goldapi_key.clone(),
        gold_fallback_url: config.gold_fallback_url.clone(),
        exim_url: config.exim_url.clone(),
        exim_auth_key: config.exim_auth_key.clone(),
        newsapi_url: config.newsapi_url.clone(),
        newsapi_key: config.newsapi_key.clone(),
        newsapi_daily_limit: config.newsapi_daily_limit,
        coinbase_url: config.coinbase_url.clone(),
        kis,
        ..SourceSettings::default()
    }
}

impl App {
    /// Connect, migrate and bind. Errors here are configuration or reachability problems.
    pub async fn build(config: Config, stages: Stages) -> anyhow::Result<App> {
        let registry = Arc::new(load_registry(&config)?);
        // Fail fast on sources that cannot run, before connecting anywhere.
        if stages.ingest {
            build_sources(&config.sources, &source_settings(&config))?;
        }
        let bus = Bus::connect(&config.nats_url, config.namespace.clone())
            .await
            .context("connecting to NATS (SISE_NATS_URL)")?;
        let max_age = Duration::from_secs(u64::from(config.ticks_max_age_days) * 86_400);
        bus.ensure_streams(max_age)
            .await
            .context("ensuring JetStream streams")?;

        let needs_stores = stages.project || stages.edge;
        let redis = if needs_stores {
            Some(connect_redis(&config.redis_url).await?)
        } else {
            None
        };
        let pg = if needs_stores {
            let pool = sise_projections::db::connect(config.database_url(), &config.namespace, 16)
                .await
                .context("connecting to PostgreSQL (SISE_DATABASE_URL) and applying migrations")?;
            Some(pool)
        } else {
            None
        };

        let prom = prometheus::Registry::new();
        let consumer_metrics = ConsumerMetrics::new(&prom)?;
        let ingest_metrics = IngestMetrics::new(&prom)?;
        let listener = TcpListener::bind(config.http_addr)
            .await
            .with_context(|| format!("binding SISE_HTTP_ADDR {}", config.http_addr))?;

        let edge = match (stages.edge, &redis, &pg) {
            (true, Some(redis), Some(pg)) => {
                let hub = Arc::new(Hub::new(
                    registry.clone(),
                    edge::hub::HubMetrics::new(&prom)?,
                ));
                // Seed source states so the first quotes already know a source that is down.
                if let Ok(list) = status::sources(redis, &config.namespace).await {
                    for s in list {
                        if let Ok(state) =
                            serde_json::from_value(serde_json::Value::String(s.state.clone()))
                        {
                            hub.set_source_state(&s.source, state);
                        }
                    }
                }
                Some(Arc::new(Edge {
                    ns: config.namespace.clone(),
                    registry: registry.clone(),
                    bus: bus.clone(),
                    redis: redis.clone(),
                    pg: pg.clone(),
                    latest: latest::LatestReader::new(redis.clone(), config.namespace.clone()),
                    history: history::HistoryReader::new(pg.clone()),
                    hub,
                    http: edge::HttpMetrics::new(&prom)?,
                    prom: prom.clone(),
                    limiter: edge::limiter(config.rate_limit),
                    ws_max_clients: config.ws_max_clients,
                    watched: Default::default(),
                    replay_slack: Duration::from_secs(config.replay_slack_secs),
                }))
            }
            _ => None,
        };

        Ok(App {
            config,
            stages,
            listener,
            registry,
            bus,
            redis,
            pg,
            prom,
            edge,
            consumer_metrics,
            ingest_metrics,
        })
    }

    /// The bound address (port 0 in tests resolves here).
    pub fn local_addr(&self) -> SocketAddr {
        self.listener.local_addr().unwrap_or(self.config.http_addr)
    }

    pub fn port(&self) -> u16 {
        self.local_addr().port()
    }

    /// The edge's shared state (tests and benches).
    pub fn edge(&self) -> Option<edge::AppState> {
        self.edge.clone()
    }

    pub fn bus(&self) -> &Bus {
        &self.bus
    }

    pub fn consumer_metrics(&self) -> &ConsumerMetrics {
        &self.consumer_metrics
    }

    /// Run every chosen stage until `shutdown` resolves (or a stage fails for good).
    pub async fn run_until(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        let cancel = CancellationToken::new();
        let mut tasks: JoinSet<anyhow::Result<()>> = JoinSet::new();
        let ns = self.config.namespace.clone();

        if self.stages.ingest {
            let settings = source_settings(&self.config);
            for source in build_sources(&self.config.sources, &settings)? {
                let ctx = SourceContext {
                    bus: self.bus.clone(),
                    registry: self.registry.clone(),
                    metrics: self.ingest_metrics.clone(),
                    cancel: cancel.clone(),
                };
                let name = source.name();
                tasks.spawn(async move {
                    source
                        .run(ctx)
                        .await
                        .with_context(|| format!("source {name}"))
                });
            }
        }

        if self.stages.edge {
            // Instruments sources list beyond the registry (searchable, subscribable), and the
            // user-added ids a source checked and did not find (their subscribers are told).
            let hub = self.edge.as_ref().map(|e| e.hub.clone());
            tokio::spawn(sise_pipelines::catalog::follow_listed(
                self.bus.clone(),
                self.registry.clone(),
                cancel.clone(),
                move |id, why| {
                    if let Some(hub) = &hub {
                        hub.reject(id, why);
                    }
                },
            ));
        }

        if self.stages.project {
            // Derived instruments (gold and silver in KRW per g and per 돈, the kimchi premiums):
            // computed from the input ticks and published as ticks of their own, beside the
            // projections.
            let ctx = SourceContext {
                bus: self.bus.clone(),
                registry: self.registry.clone(),
                metrics: self.ingest_metrics.clone(),
                cancel: cancel.clone(),
            };
            tasks.spawn(async move {
                use sise_pipelines::Source;
                Box::new(sise_pipelines::derived::MetalKrw)
                    .run(ctx)
                    .await
                    .context("derived instruments")
            });
        }

        if self.stages.project {
            let (Some(redis), Some(pg)) = (self.redis.clone(), self.pg.clone()) else {
                anyhow::bail!("projections need Redis and PostgreSQL");
            };
            let m = self.consumer_metrics.clone();
            let batch = self.config.projection_batch as usize;
            let spec = move |projection, stream| ConsumerSpec {
                projection,
                stream,
                batch,
            };
            let (b, c) = (self.bus.clone(), cancel.clone());
            let w = latest::LatestWriter::new(redis.clone(), ns.clone());
            let mm = m.clone();
            tasks.spawn(async move {
                Ok(run_consumer(b, spec(latest::NAME, StreamKind::Ticks), w, mm, c).await?)
            });
            let (b, c) = (self.bus.clone(), cancel.clone());
            let w = history::HistoryWriter::new(pg.clone());
            let mm = m.clone();
            tasks.spawn(async move {
                Ok(run_consumer(b, spec(history::NAME, StreamKind::Ticks), w, mm, c).await?)
            });
            let (b, c) = (self.bus.clone(), cancel.clone());
            let w = status::StatusWriter::new(redis.clone(), ns.clone());
            let mm = m.clone();
            tasks.spawn(async move {
                Ok(run_consumer(b, spec(status::NAME, StreamKind::Status), w, mm, c).await?)
            });
            let (b, c) = (self.bus.clone(), cancel.clone());
            let w = news::NewsWriter::new(pg.clone());
            tasks.spawn(async move {
                Ok(run_consumer(b, spec(news::NAME, StreamKind::News), w, m, c).await?)
            });
        }

        let router = match &self.edge {
            Some(state) => {
                let hub = state.hub.clone();
                let (b, c) = (self.bus.clone(), cancel.clone());
                tasks.spawn(async move { Ok(hub.run(b, c).await?) });
                if let Some(limiter) = state.limiter.clone() {
                    let c = cancel.clone();
                    tasks.spawn(async move {
                        let mut every = tokio::time::interval(Duration::from_secs(60));
                        loop {
                            tokio::select! {
                                _ = c.cancelled() => return Ok(()),
                                _ = every.tick() => limiter.retain_recent(),
                            }
                        }
                    });
                }
                edge::router(state.clone(), &self.config.web_dir)
            }
            None => edge::ops::router(Deps {
                bus: self.bus.clone(),
                redis: self.redis.clone(),
                pg: self.pg.clone(),
                prom: self.prom.clone(),
            }),
        };
        let c = cancel.clone();
        let listener = self.listener;
        tasks.spawn(async move {
            axum::serve(
                listener,
                router.into_make_service_with_connect_info::<SocketAddr>(),
            )
            .with_graceful_shutdown(async move { c.cancelled().await })
            .await
            .context("HTTP server")
        });
        tracing::info!(
            addr = %self.config.http_addr,
            namespace = %ns,
            stages = ?self.stages,
            sources = ?self.config.sources,
            "sise running"
        );

        let c = cancel.clone();
        tokio::spawn(async move {
            shutdown.await;
            c.cancel();
        });

        let mut failure = None;
        while let Some(done) = tasks.join_next().await {
            let result = match done {
                Ok(r) => r,
                Err(e) if e.is_cancelled() => Ok(()),
                Err(e) => Err(anyhow::anyhow!("task panicked: {e}")),
            };
            if let Err(e) = result {
                if !cancel.is_cancelled() {
                    tracing::error!(error = %format!("{e:#}"), "a stage failed; stopping");
                    failure.get_or_insert(e);
                    cancel.cancel();
                }
            }
            if cancel.is_cancelled() && failure.is_none() {
                // Give the rest a bounded time to finish their batches.
                let drain = async { while tasks.join_next().await.is_some() {} };
                if tokio::time::timeout(Duration::from_secs(10), drain)
                    .await
                    .is_err()
                {
                    tracing::warn!("some tasks did not stop within 10 s");
                }
                break;
            }
        }
        match failure {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }
}

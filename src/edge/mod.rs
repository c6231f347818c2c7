//! The Axum edge: REST reads of the projections, the WebSocket hub, the dashboard's static
//! files, and the operations endpoints, all on one origin.

pub mod error;
pub mod hub;
pub mod layouts;
pub mod market;
pub mod ops;
pub mod params;
pub mod quote;
pub mod replay;
pub mod rest;
pub mod ws;

use std::net::{IpAddr, SocketAddr};
use std::num::NonZeroU32;
use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use axum::extract::{ConnectInfo, MatchedPath, Request, State};
use axum::http::{HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use prometheus::{HistogramOpts, HistogramVec, IntCounterVec, Opts};
use redis::aio::ConnectionManager;
use sise_bus::{Bus, InstrumentId, Namespace};
use sise_pipelines::Registry;
use sise_projections::history::HistoryReader;
use sise_projections::latest::{LatestQuote, LatestReader};
use sqlx::PgPool;
use tower_http::services::{ServeDir, ServeFile};

use self::error::ApiError;
use self::hub::Hub;
use self::quote::QuoteView;

/// Most user-added ids one edge lets wait for a source's check at once (see
/// [`Edge::watch_candidate`]).
pub const MAX_PENDING_CANDIDATES: usize = 32;

/// Everything a request handler may use.
pub struct Edge {
    pub ns: Namespace,
    pub registry: Arc<Registry>,
    pub bus: Bus,
    pub redis: ConnectionManager,
    pub pg: PgPool,
    pub latest: LatestReader,
    pub history: HistoryReader,
    pub hub: Arc<Hub>,
    pub http: HttpMetrics,
    pub prom: prometheus::Registry,
    pub limiter: Option<Arc<DefaultKeyedRateLimiter<IpAddr>>>,
    pub ws_max_clients: usize,
    /// Ids this edge has recorded as watched (see [`Edge::watch_added`]).
    pub watched: Arc<std::sync::Mutex<std::collections::HashSet<InstrumentId>>>,
    /// Replay window slack (see `sise_bus::replay`).
    pub replay_slack: std::time::Duration,
}

pub type AppState = Arc<Edge>;

impl Edge {
    /// Record that a user subscribed to `id`, an instrument a source lists but the registry
    /// does not hold, so every ingest process starts publishing it ([`sise_bus::catalog`]).
    /// Once per id per edge process; a failure is logged and retried on a later subscription.
    pub fn watch_added(&self, id: &InstrumentId) {
        let first = self
            .watched
            .lock()
            .map(|mut w| w.insert(id.clone()))
            .unwrap_or(false);
        if !first {
            return;
        }
        let (bus, id, edge_watched) = (self.bus.clone(), id.clone(), self.watched.clone());
        tokio::spawn(async move {
            if let Err(e) = bus.watch_instrument(&id).await {
                tracing::warn!(%id, error = %e, "could not record a watched instrument");
                if let Ok(mut w) = edge_watched.lock() {
                    w.remove(&id);
                }
            } else {
                tracing::info!(%id, "user-added instrument watched");
            }
        });
    }

    /// Record a candidate (a KRX code or US ticker no source has checked yet) as watched, unless
    /// this edge already has [`MAX_PENDING_CANDIDATES`] candidates waiting for their check: each
    /// costs the checking source one to three requests of its rate-limited budget, so one client
    /// cannot queue thousands of made-up codes. False when over that bound (nothing recorded).
    pub fn watch_candidate(&self, id: &InstrumentId) -> bool {
        let pending = match self.watched.lock() {
            Ok(w) if w.contains(id) => return true,
            Ok(w) => w
                .iter()
                .filter(|i| {
                    matches!(
                        self.registry.resolve(i),
                        sise_pipelines::Resolved::Candidate(_)
                    )
                })
                .count(),
            Err(_) => 0,
        };
        if pending >= MAX_PENDING_CANDIDATES {
            return false;
        }
        self.watch_added(id);
        true
    }

    /// A stored quote as the API shows it, with its staleness and market state at `now_ms`.
    pub fn quote_view<'a>(&self, q: &'a LatestQuote, now_ms: i64) -> QuoteView<'a> {
        let quote = &q.quote;
        let inst = self.registry.lookup(&quote.id);
        let inst = inst.as_deref();
        let (stale, market) = market::freshness(
            inst,
            &quote.source,
            quote.ts,
            now_ms,
            self.hub.source_state(&quote.source),
        );
        QuoteView::from_latest(q, stale, market)
    }
}

/// HTTP metrics, labelled by the matched route (a bounded set), never the raw path.
#[derive(Clone)]
pub struct HttpMetrics {
    requests: IntCounterVec,
    duration: HistogramVec,
}

impl HttpMetrics {
    pub fn new(prom: &prometheus::Registry) -> Result<Self, prometheus::Error> {
        let requests = IntCounterVec::new(
            Opts::new("sise_http_requests_total", "HTTP requests answered"),
            &["method", "route", "status"],
        )?;
        let duration = HistogramVec::new(
            HistogramOpts::new("sise_http_request_duration_seconds", "HTTP request latency")
                .buckets(vec![
                    0.0001, 0.00025, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25,
                    0.5, 1.0, 2.5,
                ]),
            &["method", "route"],
        )?;
        prom.register(Box::new(requests.clone()))?;
        prom.register(Box::new(duration.clone()))?;
        Ok(HttpMetrics { requests, duration })
    }
}

/// A per-IP limiter of `rate` requests per second (burst twice that); `None` when 0.
pub fn limiter(rate: u32) -> Option<Arc<DefaultKeyedRateLimiter<IpAddr>>> {
    let rate = NonZeroU32::new(rate)?;
    let burst = NonZeroU32::new(rate.get().saturating_mul(2)).unwrap_or(rate);
    Some(Arc::new(RateLimiter::keyed(
        Quota::per_second(rate).allow_burst(burst),
    )))
}

async fn track(State(m): State<HttpMetrics>, req: Request, next: Next) -> Response {
    let start = Instant::now();
    let method = req.method().as_str().to_owned();
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_else(|| "static".to_owned());
    let resp = next.run(req).await;
    m.duration
        .with_label_values(&[&method, &route])
        .observe(start.elapsed().as_secs_f64());
    m.requests
        .with_label_values(&[&method, &route, resp.status().as_str()])
        .inc();
    resp
}

async fn rate_limit(State(app): State<AppState>, req: Request, next: Next) -> Response {
    if let Some(limiter) = &app.limiter {
        let ip = req
            .extensions()
            .get::<ConnectInfo<SocketAddr>>()
            .map(|c| c.0.ip())
            .unwrap_or(IpAddr::from([127, 0, 0, 1]));
        if let Err(not_until) = limiter.check_key(&ip) {
            let wait = not_until.wait_time_from(governor::clock::Clock::now(
                &governor::clock::DefaultClock::default(),
            ));
            let secs = wait.as_secs().max(1);
            let mut resp = ApiError::new(
                StatusCode::TOO_MANY_REQUESTS,
                "rate_limited",
                format!("too many requests; retry in {secs} s"),
            )
            .into_response();
            if let Ok(v) = HeaderValue::from_str(&secs.to_string()) {
                resp.headers_mut()
                    .insert(axum::http::header::RETRY_AFTER, v);
            }
            return resp;
        }
    }
    next.run(req).await
}

async fn api_not_found() -> ApiError {
    ApiError::not_found("not_found", "no such API route")
}

async fn method_not_allowed() -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        "method not allowed on this route",
    )
}

/// The whole edge: `/api/v1/…`, `/ws`, operations, and the dashboard from `web_dir`.
pub fn router(app: AppState, web_dir: &Path) -> Router {
    let api = Router::new()
        .route("/instruments", get(rest::instruments))
        .route("/quotes", get(rest::quotes))
        .route("/candles/{id}", get(rest::candles))
        .route("/sources", get(rest::sources))
        .route("/news", get(rest::news))
        .route("/replay", get(replay::rest))
        .route("/layouts", axum::routing::post(layouts::create))
        .route("/layouts/{id}", get(layouts::get).put(layouts::put))
        .route("/openapi.json", get(ops::openapi))
        .fallback(api_not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(middleware::from_fn_with_state(app.clone(), rate_limit));
    let static_files = ServeDir::new(web_dir)
        .append_index_html_on_directories(true)
        .not_found_service(ServeFile::new(web_dir.join("404.html")));
    Router::new()
        .nest("/api/v1", api)
        .route("/ws", get(ws::handler))
        .route("/healthz", get(ops::healthz))
        .route("/readyz", get(ops::readyz_edge))
        .route("/metrics", get(ops::metrics_edge))
        .fallback_service(static_files)
        .layer(middleware::from_fn_with_state(app.http.clone(), track))
        .with_state(app)
}

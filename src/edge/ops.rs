//! Operations endpoints: `/healthz` (the process answers), `/readyz` (NATS, Redis and
//! PostgreSQL reachable; never an outside source), `/metrics` (Prometheus text), and the
//! OpenAPI document.

use std::time::Duration;

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use redis::aio::ConnectionManager;
use serde_json::json;
use sise_bus::Bus;
use sqlx::PgPool;

use super::AppState;

const OPENAPI: &str = include_str!("openapi.json");

/// What a process depends on, for `/readyz`.
#[derive(Clone)]
pub struct Deps {
    pub bus: Bus,
    pub redis: Option<ConnectionManager>,
    pub pg: Option<PgPool>,
    pub prom: prometheus::Registry,
}

pub async fn healthz() -> impl IntoResponse {
    Json(json!({"status": "ok"}))
}

pub async fn openapi() -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "application/json")], OPENAPI)
}

async fn check(deps: &Deps) -> Response {
    const T: Duration = Duration::from_secs(2);
    let nats = deps.bus.is_connected();
    let redis = match &deps.redis {
        None => None,
        Some(r) => {
            let mut r = r.clone();
            let cmd = redis::cmd("PING");
            let ping = cmd.query_async::<String>(&mut r);
            Some(matches!(tokio::time::timeout(T, ping).await, Ok(Ok(_))))
        }
    };
    let pg = match &deps.pg {
        None => None,
        Some(p) => {
            let q = sqlx::query_scalar::<_, i32>("SELECT 1").fetch_one(p);
            Some(matches!(tokio::time::timeout(T, q).await, Ok(Ok(1))))
        }
    };
    let ok = nats && redis.unwrap_or(true) && pg.unwrap_or(true);
    let status = if ok {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    let body = json!({
        "status": if ok { "ready" } else { "not ready" },
        "nats": nats,
        "redis": redis,
        "postgres": pg,
    });
    (status, Json(body)).into_response()
}

fn render(prom: &prometheus::Registry) -> Response {
    let mut buf = String::new();
    let families = prom.gather();
    match prometheus::TextEncoder::new().encode_utf8(&families, &mut buf) {
        Ok(()) => ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], buf).into_response(),
        Err(e) => super::error::ApiError::internal(e).into_response(),
    }
}

pub async fn readyz_edge(State(app): State<AppState>) -> Response {
    check(&Deps {
        bus: app.bus.clone(),
        redis: Some(app.redis.clone()),
        pg: Some(app.pg.clone()),
        prom: app.prom.clone(),
    })
    .await
}

pub async fn metrics_edge(State(app): State<AppState>) -> Response {
    render(&app.prom)
}

async fn readyz(State(deps): State<Deps>) -> Response {
    check(&deps).await
}

async fn metrics(State(deps): State<Deps>) -> Response {
    render(&deps.prom)
}

/// The router of a stage-only process (`sise ingest`, `sise project`).
pub fn router(deps: Deps) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .with_state(deps)
}

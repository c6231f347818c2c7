//! The REST reads of the projections: instruments, quotes, candles, sources, news.

use axum::extract::{Path, RawQuery, State};
use axum::Json;
use serde_json::{json, Value};
use sise_bus::InstrumentId;
use sise_pipelines::{Instrument, Resolved};
use sise_projections::history::{CandleQuery, Interval};

use super::error::ApiError;
use super::params::Params;
use super::quote::QuoteView;
use super::AppState;

/// Most ids one quotes request may ask for.
pub const MAX_QUOTE_IDS: usize = 200;
pub const DEFAULT_CANDLES: u32 = 500;
pub const MAX_CANDLES: u32 = 5_000;
pub const DEFAULT_NEWS: u32 = 50;
pub const MAX_NEWS: u32 = 200;

/// Parse an id and find it in the registry or among the instruments a source lists:
/// malformed → 400, unknown → 404. A candidate (a KRX code or US ticker no source has checked
/// yet) is recorded as watched, so the source checks and starts it, and answered as its
/// provisional instrument (no quote, no candles yet); one the source did not find → 404 with
/// the reason.
pub fn known(app: &AppState, raw: &str) -> Result<std::sync::Arc<Instrument>, ApiError> {
    let id = InstrumentId::parse(raw)
        .map_err(|e| ApiError::bad_request("bad_instrument_id", e.to_string()))?;
    match app.registry.resolve(&id) {
        Resolved::Known(inst) => Ok(inst),
        Resolved::Candidate(inst) if app.watch_candidate(&id) => Ok(inst),
        Resolved::Candidate(_) => Err(too_many_candidates(&id)),
        Resolved::Rejected(why) => Err(ApiError::not_found(
            "unknown_instrument",
            format!("no instrument {id}: {why}"),
        )),
        Resolved::Unknown => Err(ApiError::not_found(
            "unknown_instrument",
            format!("no instrument {id}"),
        )),
    }
}

/// The answer to a candidate over [`super::MAX_PENDING_CANDIDATES`].
pub fn too_many_candidates(id: &InstrumentId) -> ApiError {
    ApiError::bad_request(
        "too_many_candidates",
        format!(
            "{id} is not checked yet and {} added codes are already waiting for their check; try again in a minute",
            super::MAX_PENDING_CANDIDATES
        ),
    )
}

/// The registry's instruments, then the ones sources list (Upbit's other KRW markets), which a
/// user can search and add.
pub async fn instruments(State(app): State<AppState>) -> Json<Value> {
    let mut all: Vec<std::sync::Arc<Instrument>> = app.registry.instruments().to_vec();
    all.extend(app.registry.listed());
    Json(json!({ "instruments": all }))
}

pub async fn quotes(
    State(app): State<AppState>,
    RawQuery(q): RawQuery,
) -> Result<Json<Value>, ApiError> {
    let params = Params::parse(q.as_deref());
    let raw = params
        .get("ids")
        .ok_or_else(|| ApiError::bad_request("missing_parameter", "ids is required: ?ids=a,b"))?;
    let parts: Vec<&str> = raw
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .collect();
    if parts.is_empty() {
        return Err(ApiError::bad_request("missing_parameter", "ids is empty"));
    }
    if parts.len() > MAX_QUOTE_IDS {
        return Err(ApiError::bad_request(
            "too_many_ids",
            format!(
                "at most {MAX_QUOTE_IDS} ids per request, got {}",
                parts.len()
            ),
        ));
    }
    let mut ids: Vec<InstrumentId> = Vec::with_capacity(parts.len());
    for p in parts {
        let inst = known(&app, p)?;
        if !ids.contains(&inst.id) {
            ids.push(inst.id.clone());
        }
    }
    let stored = app.latest.get_many(&ids).await?;
    let now = sise_bus::now_ms();
    let views: Vec<QuoteView<'_>> = stored
        .iter()
        .flatten()
        .map(|q| app.quote_view(q, now))
        .collect();
    Ok(Json(json!({ "quotes": views })))
}

pub async fn candles(
    State(app): State<AppState>,
    Path(id): Path<String>,
    RawQuery(q): RawQuery,
) -> Result<Json<Value>, ApiError> {
    let inst = known(&app, &id)?;
    let params = Params::parse(q.as_deref());
    let interval = match params.get("interval") {
        None => Interval::M1,
        Some(v) => v.parse::<Interval>().map_err(|_| {
            ApiError::bad_request(
                "bad_interval",
                format!("interval must be one of 1m, 5m, 15m, 1h, 1d, 1w; got {v:?}"),
            )
        })?,
    };
    let from = params.time("from")?;
    let to = params.time("to")?;
    if let (Some(f), Some(t)) = (from, to) {
        if f > t {
            return Err(ApiError::bad_request(
                "bad_range",
                format!("from ({f}) is after to ({t})"),
            ));
        }
    }
    let limit = params.limit(DEFAULT_CANDLES, MAX_CANDLES)?;
    let tz = app.registry.timezone_of(&inst);
    let rows = app
        .history
        .candles(&CandleQuery {
            instrument: &inst.id,
            interval,
            timezone: tz.name(),
            from,
            to,
            limit,
        })
        .await?;
    Ok(Json(json!({ "candles": rows })))
}

pub async fn sources(State(app): State<AppState>) -> Result<Json<Value>, ApiError> {
    let list = sise_projections::status::sources(&app.redis, &app.ns).await?;
    Ok(Json(json!({ "sources": list })))
}

pub async fn news(
    State(app): State<AppState>,
    RawQuery(q): RawQuery,
) -> Result<Json<Value>, ApiError> {
    let params = Params::parse(q.as_deref());
    let instrument = params
        .get("instrument")
        .map(|raw| known(&app, raw))
        .transpose()?;
    let before = params.time("before")?;
    let limit = params.limit(DEFAULT_NEWS, MAX_NEWS)?;
    let items =
        sise_projections::news::list(&app.pg, instrument.as_ref().map(|i| &i.id), before, limit)
            .await?;
    Ok(Json(json!({ "news": items })))
}

//! Replay of a past range, straight from JetStream (never from a read model):
//!
//! - `GET /api/v1/replay?instrument=&from=&to=` streams NDJSON, one event a line
//!   (`{"type":"tick","seq":…,"tick":{…quote fields…}}`, and `{"type":"news","seq":…,"news":{…}}`
//!   for the articles tagged with one of the instruments that the log stored in the range, merged
//!   in log order: see `sise_bus::replay::replay_events`), as the ordered consumers deliver it:
//!   the body is produced only as fast as the client reads it, so a huge range holds memory flat.
//! - the WebSocket op `{"op":"replay","ids":[…],"from":…,"to":…,"speed":…}` sends the same
//!   ticks as tick frames marked `"replay":true`, paced at `speed` × real time (`0`: as fast as
//!   the client reads), then `{"type":"replay_end","ids":[…],"count":n}`. Replay frames wait for
//!   room in the client's queue (backpressure) instead of being conflated or dropped, and live
//!   ticks keep flowing beside them.
//!
//! Ranges select by exchange time `ts`, half-open `[from, to)`; see `sise_bus::replay` for how
//! that maps onto the stream's own time.

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::ws::Utf8Bytes;
use axum::extract::{RawQuery, State};
use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use futures::{stream, StreamExt};
use serde::Serialize;
use sise_bus::replay::{
    replay_events, replay_ticks, ReplaySpec, Replayed, ReplayedNews, ReplayedTick,
};
use sise_bus::InstrumentId;
use sise_projections::latest::Quote;
use tokio_util::sync::CancellationToken;

use super::error::ApiError;
use super::hub::ClientQueue;
use super::params::Params;
use super::quote::QuoteView;
use super::AppState;

/// Most instruments one replay may read at once (each is one ordered consumer).
pub const MAX_REPLAY_IDS: usize = 20;
/// Events gathered into one HTTP chunk / one WebSocket frame at most.
const CHUNK_EVENTS: usize = 256;
/// Replay frames waiting in a client's queue at most (the rest waits in JetStream).
const WS_HIGH_WATER: usize = 4;
/// Fastest pace a WebSocket replay accepts (× real time); 0 means unpaced.
pub const MAX_SPEED: f64 = 100_000.0;

/// A tick as a replay line shows it: the quote fields, plus `backfill` when set.
#[derive(Serialize)]
struct ReplayQuote {
    #[serde(flatten)]
    quote: Quote,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    backfill: bool,
}

#[derive(Serialize)]
struct Line {
    #[serde(rename = "type")]
    kind: &'static str,
    seq: u64,
    tick: ReplayQuote,
}

/// Append one NDJSON line (`{"type":"tick","seq":…,"tick":{…}}\n`) for a replayed tick.
pub fn write_line(buf: &mut Vec<u8>, r: &ReplayedTick) {
    let line = Line {
        kind: "tick",
        seq: r.seq,
        tick: ReplayQuote {
            quote: Quote::from_tick(&r.tick),
            backfill: r.tick.backfill,
        },
    };
    if serde_json::to_writer(&mut *buf, &line).is_ok() {
        buf.push(b'\n');
    }
}

/// An article as a replay line shows it: the fields of `GET /api/v1/news`.
#[derive(Serialize)]
struct NewsView<'a> {
    id: &'a str,
    source: &'a str,
    title: &'a str,
    summary: Option<&'a str>,
    url: &'a str,
    image: Option<&'a str>,
    published: i64,
    language: Option<&'a str>,
    instruments: Vec<&'a str>,
}

#[derive(Serialize)]
struct NewsLine<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    seq: u64,
    news: NewsView<'a>,
}

/// Append one NDJSON line (`{"type":"news","seq":…,"news":{…}}\n`) for a replayed article.
pub fn write_news_line(buf: &mut Vec<u8>, r: &ReplayedNews) {
    let n = &r.news;
    let line = NewsLine {
        kind: "news",
        seq: r.seq,
        news: NewsView {
            id: &n.id,
            source: n.source.as_str(),
            title: &n.title,
            summary: n.summary.as_deref(),
            url: &n.url,
            image: n.image.as_deref(),
            published: n.published,
            language: n.language.as_deref(),
            instruments: n.instruments.iter().map(InstrumentId::as_str).collect(),
        },
    };
    if serde_json::to_writer(&mut *buf, &line).is_ok() {
        buf.push(b'\n');
    }
}

/// Parse a comma list of instrument ids: each must be well formed and in the registry.
fn parse_ids(app: &AppState, raw: &str) -> Result<Vec<InstrumentId>, ApiError> {
    let mut ids = Vec::new();
    for part in raw.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        let inst = super::rest::known(app, part)?;
        if !ids.contains(&inst.id) {
            ids.push(inst.id.clone());
        }
    }
    if ids.is_empty() {
        return Err(ApiError::bad_request(
            "missing_parameter",
            "instrument is required: ?instrument=ID&from=MS&to=MS",
        ));
    }
    if ids.len() > MAX_REPLAY_IDS {
        return Err(ApiError::bad_request(
            "too_many_ids",
            format!("at most {MAX_REPLAY_IDS} instruments per replay"),
        ));
    }
    Ok(ids)
}

/// Check a replay range: both ends given, `from <= to`.
pub fn check_range(from: Option<i64>, to: Option<i64>) -> Result<(i64, i64), ApiError> {
    let (Some(from), Some(to)) = (from, to) else {
        return Err(ApiError::bad_request(
            "missing_parameter",
            "from and to are required (Unix epoch milliseconds, half-open [from, to))",
        ));
    };
    if from > to {
        return Err(ApiError::bad_request(
            "bad_range",
            format!("from ({from}) is after to ({to})"),
        ));
    }
    Ok((from, to))
}

/// `GET /api/v1/replay?instrument=&from=&to=`: NDJSON straight from JetStream.
pub async fn rest(
    State(app): State<AppState>,
    RawQuery(q): RawQuery,
) -> Result<Response, ApiError> {
    let params = Params::parse(q.as_deref());
    let raw = params.get("instrument").ok_or_else(|| {
        ApiError::bad_request(
            "missing_parameter",
            "instrument is required: ?instrument=ID&from=MS&to=MS",
        )
    })?;
    let ids = parse_ids(&app, raw)?;
    let (from, to) = check_range(params.time("from")?, params.time("to")?)?;
    let spec = ReplaySpec {
        ids,
        from,
        to,
        slack: app.replay_slack,
    };
    let ticks = replay_events(&app.bus, &spec)
        .await
        .map_err(ApiError::unavailable)?;
    let started = Instant::now();
    // Each chunk is what the consumer had ready (at most CHUNK_EVENTS lines); a failure mid-way
    // ends the body with an error line, so a client never mistakes a cut replay for a whole one.
    let chunks = ticks.ready_chunks(CHUNK_EVENTS);
    let body = stream::unfold((Some(chunks), 0u64), move |(state, count)| async move {
        let mut chunks = state?;
        let Some(chunk) = chunks.next().await else {
            tracing::debug!(count, elapsed = ?started.elapsed(), "replay served");
            return None;
        };
        let mut buf = Vec::with_capacity(chunk.len() * 260);
        let mut n = count;
        for item in chunk {
            match item {
                Ok(Replayed::Tick(r)) => {
                    write_line(&mut buf, &r);
                    n += 1;
                }
                Ok(Replayed::News(r)) => {
                    write_news_line(&mut buf, &r);
                    n += 1;
                }
                Err(e) => {
                    tracing::warn!(error = %e, "replay interrupted");
                    let line = serde_json::json!({"type": "error", "code": "replay_interrupted",
                            "message": "the log could not be read to the end of the range; retry"});
                    buf.extend_from_slice(line.to_string().as_bytes());
                    buf.push(b'\n');
                    return Some((Ok::<Bytes, std::io::Error>(Bytes::from(buf)), (None, n)));
                }
            }
        }
        Some((Ok(Bytes::from(buf)), (Some(chunks), n)))
    });
    let mut resp = Body::from_stream(body).into_response();
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/x-ndjson"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(resp)
}

/// A WebSocket replay running for one socket.
pub struct WsReplay {
    cancel: CancellationToken,
    handle: tokio::task::JoinHandle<()>,
}

impl WsReplay {
    /// Stop it (it sends its `replay_end` with `"cancelled":true`) and wait for it, bounded.
    pub async fn stop(self) {
        self.cancel.cancel();
        let mut handle = self.handle;
        if tokio::time::timeout(Duration::from_secs(2), &mut handle)
            .await
            .is_err()
        {
            handle.abort();
        }
    }

    /// Stop it at once (the socket is gone).
    pub fn abort(self) {
        self.cancel.cancel();
        self.handle.abort();
    }
}

/// Check a WebSocket replay op; `Err((code, message))` for an error frame.
pub fn check_ws(
    ids: &[InstrumentId],
    from: Option<i64>,
    to: Option<i64>,
    speed: Option<f64>,
) -> Result<(i64, i64, f64), (&'static str, String)> {
    if ids.is_empty() {
        return Err((
            "missing_parameter",
            "replay needs at least one known id".into(),
        ));
    }
    if ids.len() > MAX_REPLAY_IDS {
        return Err((
            "too_many_ids",
            format!("at most {MAX_REPLAY_IDS} instruments per replay"),
        ));
    }
    let (from, to) = check_range(from, to).map_err(|e| (e.code, e.message))?;
    let speed = speed.unwrap_or(1.0);
    if !speed.is_finite() || !(0.0..=MAX_SPEED).contains(&speed) {
        return Err((
            "bad_parameter",
            format!("speed must be from 0 (as fast as possible) to {MAX_SPEED}, got {speed}"),
        ));
    }
    Ok((from, to, speed))
}

/// Start replaying `ids` over `[from, to)` into a client's queue at `speed` × real time.
pub fn start_ws(
    app: &AppState,
    queue: &Arc<ClientQueue>,
    ids: Vec<InstrumentId>,
    from: i64,
    to: i64,
    speed: f64,
) -> WsReplay {
    let cancel = CancellationToken::new();
    let (app, queue, c) = (app.clone(), queue.clone(), cancel.clone());
    let handle = tokio::spawn(async move {
        let sent = std::sync::atomic::AtomicU64::new(0);
        let outcome = tokio::select! {
            r = run_ws(&app, &queue, &ids, from, to, speed, &sent) => r,
            _ = c.cancelled() => Outcome::Cancelled,
        };
        let count = sent.load(std::sync::atomic::Ordering::Relaxed);
        let (cancelled, error) = match outcome {
            Outcome::Done => (false, None),
            Outcome::Cancelled => (true, None),
            Outcome::Failed => (false, Some("the log could not be read to the end")),
            Outcome::Gone => return,
        };
        queue.push_frame(replay_end(&ids, count, cancelled, error));
    });
    WsReplay { cancel, handle }
}

enum Outcome {
    Done,
    Cancelled,
    Failed,
    Gone,
}

/// The `replay_end` frame. A typed struct, not `json!`: serde_json's map sorts keys, which would
/// put `"type"` last, and clients (the replay bench among them) recognise a frame by its leading
/// `{"type":…` like every other server frame.
fn replay_end(ids: &[InstrumentId], count: u64, cancelled: bool, error: Option<&str>) -> Utf8Bytes {
    #[derive(Serialize)]
    struct End<'a> {
        #[serde(rename = "type")]
        kind: &'static str,
        ids: &'a [InstrumentId],
        count: u64,
        #[serde(skip_serializing_if = "std::ops::Not::not")]
        cancelled: bool,
        #[serde(skip_serializing_if = "Option::is_none")]
        error: Option<&'a str>,
    }
    let end = End {
        kind: "replay_end",
        ids,
        count,
        cancelled,
        error,
    };
    serde_json::to_string(&end)
        .unwrap_or_else(|_| r#"{"type":"replay_end"}"#.into())
        .into()
}

/// One replay frame: a `tick` frame, or a `ticks` frame of several, each marked `replay`.
fn replay_frame(quotes: &[String]) -> Utf8Bytes {
    if let [one] = quotes {
        let mut s = String::with_capacity(one.len() + 16);
        s.push_str(r#"{"type":"tick","#);
        s.push_str(&one[1..]);
        return s.into();
    }
    let mut s = String::with_capacity(24 + quotes.iter().map(|q| q.len() + 1).sum::<usize>());
    s.push_str(r#"{"type":"ticks","ticks":["#);
    for (i, q) in quotes.iter().enumerate() {
        if i > 0 {
            s.push(',');
        }
        s.push_str(q);
    }
    s.push_str("]}");
    s.into()
}

fn render(app: &AppState, r: &ReplayedTick) -> String {
    let t = &r.tick;
    let inst = app.registry.get(&t.instrument).map(|i| i.as_ref());
    // The market as it was at the tick's own time; a replayed price is never "stale".
    let (_, market) = super::market::freshness(inst, t.source.as_str(), t.ts, t.ts, None);
    let mut view = QuoteView::from_tick(t, false, market);
    view.replay = true;
    serde_json::to_string(&view).unwrap_or_else(|_| "{}".into())
}

async fn run_ws(
    app: &AppState,
    queue: &ClientQueue,
    ids: &[InstrumentId],
    from: i64,
    to: i64,
    speed: f64,
    sent: &std::sync::atomic::AtomicU64,
) -> Outcome {
    let spec = ReplaySpec {
        ids: ids.to_vec(),
        from,
        to,
        slack: app.replay_slack,
    };
    let ticks = match replay_ticks(&app.bus, &spec).await {
        Ok(t) => t,
        Err(e) => {
            tracing::warn!(error = %e, "replay could not start");
            return Outcome::Failed;
        }
    };
    let mut chunks = ticks.ready_chunks(CHUNK_EVENTS);
    let started = tokio::time::Instant::now();
    let mut first_ts: Option<i64> = None;
    let mut pending: Vec<String> = Vec::with_capacity(CHUNK_EVENTS);
    while let Some(chunk) = chunks.next().await {
        for item in chunk {
            let r = match item {
                Ok(r) => r,
                Err(e) => {
                    tracing::warn!(error = %e, "replay interrupted");
                    if !pending.is_empty()
                        && queue
                            .push_frame_paced(replay_frame(&pending), WS_HIGH_WATER)
                            .await
                    {
                        sent.fetch_add(pending.len() as u64, std::sync::atomic::Ordering::Relaxed);
                    }
                    return Outcome::Failed;
                }
            };
            if speed > 0.0 {
                let first = *first_ts.get_or_insert(r.tick.ts);
                let offset_ms = (r.tick.ts - first).max(0) as f64 / speed;
                let due = started + Duration::from_secs_f64(offset_ms / 1000.0);
                if due > tokio::time::Instant::now() {
                    if !flush(queue, &mut pending, sent).await {
                        return Outcome::Gone;
                    }
                    tokio::time::sleep_until(due).await;
                }
            }
            pending.push(render(app, &r));
            if pending.len() >= CHUNK_EVENTS && !flush(queue, &mut pending, sent).await {
                return Outcome::Gone;
            }
        }
        if !flush(queue, &mut pending, sent).await {
            return Outcome::Gone;
        }
    }
    Outcome::Done
}

/// Send the pending quotes as one frame (waiting for room); false when the client is gone.
async fn flush(
    queue: &ClientQueue,
    pending: &mut Vec<String>,
    sent: &std::sync::atomic::AtomicU64,
) -> bool {
    if pending.is_empty() {
        return true;
    }
    let n = pending.len() as u64;
    let frame = replay_frame(pending);
    pending.clear();
    if queue.push_frame_paced(frame, WS_HIGH_WATER).await {
        sent.fetch_add(n, std::sync::atomic::Ordering::Relaxed);
        true
    } else {
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames() {
        let one = replay_frame(&[r#"{"id":"a","replay":true}"#.to_string()]);
        assert_eq!(one.as_str(), r#"{"type":"tick","id":"a","replay":true}"#);
        let two = replay_frame(&[r#"{"id":"a"}"#.to_string(), r#"{"id":"b"}"#.to_string()]);
        assert_eq!(
            two.as_str(),
            r#"{"type":"ticks","ticks":[{"id":"a"},{"id":"b"}]}"#
        );
    }

    #[test]
    fn replay_end_leads_with_its_type() {
        let id = InstrumentId::parse("crypto.upbit.KRW-BTC").unwrap();
        let end = replay_end(std::slice::from_ref(&id), 7, false, None);
        assert_eq!(
            end.as_str(),
            r#"{"type":"replay_end","ids":["crypto.upbit.KRW-BTC"],"count":7}"#
        );
        let end = replay_end(&[id], 3, true, None);
        assert!(end.as_str().starts_with(r#"{"type":"replay_end","#));
        assert!(end.as_str().ends_with(r#""count":3,"cancelled":true}"#));
    }

    #[test]
    fn ws_checks() {
        let id = InstrumentId::parse("crypto.upbit.KRW-BTC").unwrap();
        assert!(check_ws(&[], Some(1), Some(2), None).is_err());
        assert_eq!(
            check_ws(std::slice::from_ref(&id), Some(1), None, None)
                .unwrap_err()
                .0,
            "missing_parameter"
        );
        assert_eq!(
            check_ws(std::slice::from_ref(&id), Some(3), Some(2), None)
                .unwrap_err()
                .0,
            "bad_range"
        );
        assert_eq!(
            check_ws(std::slice::from_ref(&id), Some(1), Some(2), Some(-1.0))
                .unwrap_err()
                .0,
            "bad_parameter"
        );
        assert_eq!(
            check_ws(std::slice::from_ref(&id), Some(1), Some(2), Some(f64::NAN))
                .unwrap_err()
                .0,
            "bad_parameter"
        );
        assert_eq!(
            check_ws(&[id], Some(1), Some(2), None).unwrap(),
            (1, 2, 1.0)
        );
    }
}

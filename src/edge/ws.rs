//! `GET /ws`: the browser socket. Two tasks per socket: the reader parses client ops
//! (`subscribe`, `unsubscribe`, `replay`), the writer drains the client's [`ClientQueue`]; when
//! either ends the other is stopped and the client leaves the hub.
//!
//! Hostile input is answered, not obeyed: a frame over 16 KiB is refused by the protocol layer,
//! a malformed op gets an `error` frame, more than 200 ids per socket are refused, and a client
//! that floods ops is closed (policy violation).

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocket, WebSocketUpgrade};
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use futures::{SinkExt, StreamExt};
use serde::Deserialize;
use sise_bus::InstrumentId;
use sise_pipelines::Resolved;

use super::hub::{ClientQueue, SharedTick};
use super::quote::QuoteView;
use super::replay::WsReplay;
use super::AppState;

/// Most instruments one socket may subscribe to.
pub const MAX_IDS_PER_SOCKET: usize = 200;
/// Largest client message accepted.
const MAX_MESSAGE_BYTES: usize = 16 * 1024;
/// Read buffer per socket (grows only while a larger message is being read).
const READ_BUFFER_BYTES: usize = 1024;
/// A frame that cannot be written in this long means the client is not reading.
const SEND_TIMEOUT: Duration = Duration::from_secs(10);
const PING_EVERY: Duration = Duration::from_secs(30);
/// Ops per second a client may send (burst twice that).
const OPS_PER_SECOND: f64 = 20.0;

pub async fn handler(ws: WebSocketUpgrade, State(app): State<AppState>) -> Response {
    if app.hub.client_count() >= app.ws_max_clients {
        return super::error::ApiError::new(
            axum::http::StatusCode::SERVICE_UNAVAILABLE,
            "too_many_clients",
            "the server holds its maximum of WebSocket clients; try again later",
        )
        .into_response();
    }
    // Small buffers: the default 128 KiB read buffer per socket would cost ~135 KB for every
    // idle client (measured); client messages are at most 16 KiB and rare.
    ws.max_message_size(MAX_MESSAGE_BYTES)
        .max_frame_size(MAX_MESSAGE_BYTES)
        .read_buffer_size(READ_BUFFER_BYTES)
        .write_buffer_size(0)
        .on_upgrade(move |socket| client(socket, app))
}

#[derive(Deserialize)]
#[serde(tag = "op", rename_all = "lowercase", deny_unknown_fields)]
enum ClientOp {
    Subscribe {
        ids: Vec<String>,
    },
    Unsubscribe {
        ids: Vec<String>,
    },
    Replay {
        ids: Vec<String>,
        from: Option<i64>,
        to: Option<i64>,
        speed: Option<f64>,
    },
}

pub(super) fn error_frame(code: &str, message: impl Into<String>) -> Utf8Bytes {
    serde_json::json!({"type": "error", "code": code, "message": message.into()})
        .to_string()
        .into()
}

async fn client(socket: WebSocket, app: AppState) {
    let (client_id, queue) = app.hub.register();
    let (mut sink, mut stream) = socket.split();

    let writer_queue = queue.clone();
    let metrics = app.hub.metrics.clone();
    let mut writer = tokio::spawn(async move {
        let mut ping = tokio::time::interval(PING_EVERY);
        ping.tick().await;
        loop {
            tokio::select! {
                _ = writer_queue.notify.notified() => {}
                _ = ping.tick() => {
                    if send(&mut sink, Message::Ping(Default::default())).await.is_err() {
                        return Some("client gone");
                    }
                    continue;
                }
            }
            let taken = writer_queue.take();
            for frame in taken.frames {
                if send(&mut sink, Message::Text(frame)).await.is_err() {
                    metrics.disconnects.with_label_values(&["too_slow"]).inc();
                    return Some("too slow");
                }
                metrics.frames.inc();
            }
            if !taken.ticks.is_empty() {
                if send(&mut sink, Message::Text(tick_frame(&taken.ticks)))
                    .await
                    .is_err()
                {
                    metrics.disconnects.with_label_values(&["too_slow"]).inc();
                    return Some("too slow");
                }
                metrics.frames.inc();
            }
            if let Some(reason) = taken.closed {
                metrics
                    .disconnects
                    .with_label_values(&[reason_label(reason)])
                    .inc();
                let close = CloseFrame {
                    code: axum::extract::ws::close_code::POLICY,
                    reason: reason.into(),
                };
                let _ = send(&mut sink, Message::Close(Some(close))).await;
                return Some(reason);
            }
        }
    });

    let mut subscribed: HashSet<InstrumentId> = HashSet::new();
    // At most one replay per socket; a new replay op replaces the running one.
    let mut replay: Option<WsReplay> = None;
    let mut bucket = OPS_PER_SECOND * 2.0;
    let mut refilled = tokio::time::Instant::now();
    loop {
        let msg = tokio::select! {
            _ = &mut writer => break,
            msg = stream.next() => msg,
        };
        let text = match msg {
            Some(Ok(Message::Text(t))) => t,
            Some(Ok(Message::Binary(_))) => {
                queue.push_frame(error_frame("bad_message", "send JSON text frames"));
                continue;
            }
            Some(Ok(Message::Ping(_) | Message::Pong(_))) => continue,
            Some(Ok(Message::Close(_))) | None => break,
            Some(Err(e)) => {
                tracing::debug!(error = %e, "websocket read error");
                queue.push_frame(error_frame(
                    "bad_message",
                    "message refused (over 16 KiB or malformed)",
                ));
                break;
            }
        };
        // Token bucket against op floods.
        let now = tokio::time::Instant::now();
        bucket = (bucket + now.duration_since(refilled).as_secs_f64() * OPS_PER_SECOND)
            .min(OPS_PER_SECOND * 2.0);
        refilled = now;
        if bucket < 1.0 {
            queue.push_frame(error_frame("rate_limited", "too many messages; slow down"));
            queue.close("too many messages");
            continue;
        }
        bucket -= 1.0;
        handle_op(
            &app,
            client_id,
            &queue,
            &mut subscribed,
            &mut replay,
            text.as_str(),
        )
        .await;
    }
    if let Some(r) = replay.take() {
        r.abort();
    }
    writer.abort();
    let ids: Vec<InstrumentId> = subscribed.into_iter().collect();
    app.hub.unregister(client_id, &ids);
}

fn reason_label(reason: &str) -> &'static str {
    if reason.starts_with("slow") {
        "slow_consumer"
    } else if reason.starts_with("too many") {
        "flood"
    } else {
        "shutdown"
    }
}

async fn send<S>(sink: &mut S, msg: Message) -> Result<(), ()>
where
    S: futures::Sink<Message> + Unpin,
{
    match tokio::time::timeout(SEND_TIMEOUT, sink.send(msg)).await {
        Ok(Ok(())) => Ok(()),
        _ => Err(()),
    }
}

/// One tick as its shared `tick` frame, several as one `ticks` frame.
fn tick_frame(ticks: &[Arc<SharedTick>]) -> Utf8Bytes {
    if let [one] = ticks {
        return one.frame.clone();
    }
    let mut s = String::with_capacity(24 + ticks.iter().map(|t| t.quote.len() + 1).sum::<usize>());
    s.push_str(r#"{"type":"ticks","ticks":["#);
    for (i, t) in ticks.iter().enumerate() {
        if i > 0 {
            s.push(',');
        }
        s.push_str(t.quote.as_str());
    }
    s.push_str("]}");
    s.into()
}

/// Parse ids: malformed ones and ones not in the registry are reported, the rest returned.
fn check_ids(app: &AppState, ids: &[String], queue: &ClientQueue) -> Vec<InstrumentId> {
    let mut good = Vec::new();
    let mut malformed = Vec::new();
    let mut unknown = Vec::new();
    let mut waiting = Vec::new();
    for raw in ids {
        let id = match InstrumentId::parse(raw) {
            Ok(id) => id,
            Err(_) => {
                malformed.push(raw.chars().take(64).collect::<String>());
                continue;
            }
        };
        if app.registry.get(&id).is_some() {
            good.push(id);
            continue;
        }
        match app.registry.resolve(&id) {
            // Listed by a source but not in the registry, or a candidate a source checks (a
            // KRX code, a US ticker): a user added it, so the sources start publishing it
            // (recorded once per edge process). A candidate's snapshot has no quote until its
            // first price arrives; if the check finds nothing the socket gets an error.
            Resolved::Known(_) => {
                app.watch_added(&id);
                good.push(id);
            }
            Resolved::Candidate(_) if app.watch_candidate(&id) => good.push(id),
            Resolved::Candidate(_) => waiting.push(id.to_string()),
            Resolved::Rejected(why) => unknown.push(format!("{id} ({why})")),
            Resolved::Unknown => unknown.push(id.to_string()),
        }
    }
    if !malformed.is_empty() {
        queue.push_frame(error_frame(
            "bad_instrument_id",
            format!("malformed instrument ids: {}", malformed.join(", ")),
        ));
    }
    if !unknown.is_empty() {
        queue.push_frame(error_frame(
            "unknown_instrument",
            format!("unknown instruments: {}", unknown.join(", ")),
        ));
    }
    if !waiting.is_empty() {
        queue.push_frame(error_frame(
            "too_many_candidates",
            format!(
                "not subscribed: {} ({} added codes are already waiting for their check; try again in a minute)",
                waiting.join(", "),
                super::MAX_PENDING_CANDIDATES
            ),
        ));
    }
    good
}

async fn handle_op(
    app: &AppState,
    client_id: u64,
    queue: &Arc<ClientQueue>,
    subscribed: &mut HashSet<InstrumentId>,
    replay: &mut Option<WsReplay>,
    text: &str,
) {
    let op = match serde_json::from_str::<ClientOp>(text) {
        Ok(op) => op,
        Err(e) => {
            queue.push_frame(error_frame(
                "bad_message",
                format!(
                    "expected {{\"op\":\"subscribe\"|\"unsubscribe\"|\"replay\",\"ids\":[…]}}: {e}"
                ),
            ));
            return;
        }
    };
    match op {
        ClientOp::Subscribe { ids } => {
            if ids.len() > MAX_IDS_PER_SOCKET {
                queue.push_frame(error_frame(
                    "too_many_ids",
                    format!("at most {MAX_IDS_PER_SOCKET} ids per socket"),
                ));
                return;
            }
            let mut fresh: Vec<InstrumentId> = check_ids(app, &ids, queue)
                .into_iter()
                .filter(|id| !subscribed.contains(id))
                .collect();
            fresh.sort();
            fresh.dedup();
            if subscribed.len() + fresh.len() > MAX_IDS_PER_SOCKET {
                queue.push_frame(error_frame(
                    "too_many_ids",
                    format!("at most {MAX_IDS_PER_SOCKET} ids per socket"),
                ));
                return;
            }
            // Hold delivery, register, read the snapshot, then release: the snapshot always
            // comes before the first live tick of a newly subscribed id.
            queue.hold();
            app.hub.subscribe(client_id, queue, &fresh);
            subscribed.extend(fresh.iter().cloned());
            let (frame, ts) = snapshot(app, &fresh).await;
            queue.release_with_snapshot(frame, &ts);
        }
        ClientOp::Unsubscribe { ids } => {
            let ids: Vec<InstrumentId> = ids
                .iter()
                .filter_map(|s| InstrumentId::parse(s).ok())
                .collect();
            app.hub.unsubscribe(client_id, &ids);
            queue.forget(&ids);
            for id in &ids {
                subscribed.remove(id);
            }
        }
        ClientOp::Replay {
            ids,
            from,
            to,
            speed,
        } => {
            if ids.len() > MAX_IDS_PER_SOCKET {
                queue.push_frame(error_frame(
                    "too_many_ids",
                    format!("at most {MAX_IDS_PER_SOCKET} ids per socket"),
                ));
                return;
            }
            let mut ids = check_ids(app, &ids, queue);
            ids.dedup();
            match super::replay::check_ws(&ids, from, to, speed) {
                Ok((from, to, speed)) => {
                    if let Some(running) = replay.take() {
                        running.stop().await;
                    }
                    *replay = Some(super::replay::start_ws(app, queue, ids, from, to, speed));
                }
                Err((code, message)) => {
                    queue.push_frame(error_frame(code, message));
                }
            }
        }
    }
}

/// The `snapshot` frame of some ids (from the `latest` read model), and each quote's time.
async fn snapshot(app: &AppState, ids: &[InstrumentId]) -> (Utf8Bytes, HashMap<InstrumentId, i64>) {
    let quotes = match app.latest.get_many(ids).await {
        Ok(q) => q,
        Err(e) => {
            tracing::warn!(error = %e, "snapshot read failed; sending an empty snapshot");
            Vec::new()
        }
    };
    let now = sise_bus::now_ms();
    let mut ts = HashMap::new();
    let views: Vec<QuoteView<'_>> = quotes
        .iter()
        .flatten()
        .map(|q| {
            ts.insert(q.quote.id.clone(), q.quote.ts);
            app.quote_view(q, now)
        })
        .collect();
    let frame = serde_json::json!({"type": "snapshot", "quotes": views}).to_string();
    (frame.into(), ts)
}

//! The KIS WebSocket (`SISE_KIS_WS_URL`, plain `ws://`): realtime KRX trades (H0STCNT0).
//!
//! - One session per app key: the approval key comes from the shared cache
//!   ([`super::token`]); `ALREADY IN USE appkey` means another process holds the session, so
//!   this one stays on REST and tries again only after `in_use_retry`.
//! - One subscribe message per code, spaced `subscribe_spacing`, at most
//!   `ws_max_subscriptions` (41); codes past the cap, refused (`MAX SUBSCRIBE OVER`) or
//!   failing to subscribe stay on REST polling, and the status says how many.
//! - A code moves from REST to the socket only when its subscription is acknowledged; when the
//!   session drops every code goes back to REST at once, and after the next subscription the
//!   minutes missed since each code's last trade are backfilled from the minute chart.
//! - A KRX code added at run time (a user's, [`super::users`]) is subscribed on the open
//!   session if it fits under the cap, else polled.
//! - PINGPONG is echoed as the same text; the library's own pings are off. The session is
//!   declared dead after no frame of any kind for `ws_idle_timeout`.
//! - Malformed frames and records are counted and skipped; the session stays.

use std::time::Duration;

use futures::{SinkExt, StreamExt};
use secrecy::ExposeSecret;
use sise_bus::now_ms;
use std::sync::Arc;
use tokio::net::TcpStream;
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use super::parse::{self, Ack, Frame};
use super::token::Kind;
use super::{lock, Shared, WsState};
use crate::poll::Backoff;

/// The realtime TR sise subscribes (KRX trades).
pub const TR_TRADE: &str = "H0STCNT0";

type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// How a session ended.
enum End {
    Cancelled,
    /// Lost; wait this long (at least) before the next attempt.
    Lost(String, Option<Duration>),
}

/// Connect, subscribe, stream; reconnect on loss until cancelled.
pub(crate) async fn run(sh: Arc<Shared>) {
    let cancel = sh.ctx.cancel.clone();
    let mut backoff = Backoff::new(
        sh.s.backoff_min.max(Duration::from_millis(100)),
        sh.s.backoff_max,
    );
    let mut attempts = 0u64;
    loop {
        if cancel.is_cancelled() {
            return;
        }
        if attempts > 0 {
            sh.ctx
                .metrics
                .reconnects
                .with_label_values(&[sh.name.as_str()])
                .inc();
        }
        attempts += 1;
        let end = tokio::select! {
            _ = cancel.cancelled() => End::Cancelled,
            e = session(&sh, &mut backoff) => e,
        };
        lock(&sh.ws_live).clear();
        let (reason, floor) = match end {
            End::Cancelled => return,
            End::Lost(r, f) => (r, f),
        };
        tracing::warn!(source = "kis", reason = %reason, "KIS WebSocket lost; KRX stocks polled over REST");
        *lock(&sh.ws_state) = WsState::Down(reason);
        sh.report().await;
        let delay = backoff.next_delay().max(floor.unwrap_or_default());
        tokio::select! {
            _ = cancel.cancelled() => return,
            _ = tokio::time::sleep(delay) => {}
        }
    }
}

async fn connect(url: &str) -> Result<Ws, String> {
    let connect = tokio_tungstenite::connect_async(url);
    match tokio::time::timeout(Duration::from_secs(10), connect).await {
        Ok(Ok((ws, _))) => Ok(ws),
        Ok(Err(e)) => Err(format!("connect: {e}")),
        Err(_) => Err("connect timed out after 10 s".into()),
    }
}

async fn session(sh: &Arc<Shared>, backoff: &mut Backoff) -> End {
    let approval = match sh.rest.tokens().get(Kind::Approval).await {
        Ok(k) => k,
        Err(e) => {
            sh.count_error(e.kind());
            return End::Lost(format!("approval key: {e}"), None);
        }
    };
    let mut ws = match connect(&sh.s.ws_url).await {
        Ok(ws) => ws,
        Err(e) => {
            sh.count_error("ws_connect");
            return End::Lost(e, None);
        }
    };
    // Codes to subscribe: the first `ws_max_subscriptions`; the rest stay on REST.
    let cap = sh.s.ws_max_subscriptions;
    let mut codes: Vec<String> = sh.codes();
    // Every code this session has taken care of (subscribed, or left to REST over the cap).
    let mut seen: std::collections::HashSet<String> = codes.iter().cloned().collect();
    let over: Vec<String> = codes.split_off(codes.len().min(cap));
    {
        let mut refused = lock(&sh.ws_refused);
        refused.clear();
        refused.extend(over.iter().cloned());
    }
    if !over.is_empty() {
        tracing::warn!(
            source = "kis",
            over = over.len(),
            cap,
            "more KRX stocks than WebSocket subscriptions; the rest are polled over REST"
        );
    }
    let mut pending: std::collections::VecDeque<String> = codes.into_iter().collect();
    let mut sub_timer = tokio::time::interval(sh.s.subscribe_spacing.max(Duration::from_millis(1)));
    sub_timer.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let idle = sh.s.ws_idle_timeout.max(Duration::from_millis(100));
    let mut last_rx = Instant::now();
    let mut acked = 0usize;
    // Minutes to backfill once the socket carries a code again: from its last live trade.
    let gap_from: std::collections::HashMap<String, i64> = lock(&sh.last_trade).clone();
    let cancel = sh.ctx.cancel.clone();
    let mut good = 0u64;
    loop {
        tokio::select! {
            _ = cancel.cancelled() => {
                let _ = ws.close(None).await;
                return End::Cancelled;
            }
            _ = sh.ws_added.notified() => {
                // Codes added since: subscribe what fits, poll the rest.
                for code in sh.codes() {
                    if !seen.insert(code.clone()) {
                        continue;
                    }
                    let taken = seen.len() - lock(&sh.ws_refused).len();
                    if taken <= cap {
                        pending.push_back(code);
                    } else {
                        tracing::warn!(source = "kis", code = %code, cap, "no WebSocket subscription left; polled over REST");
                        lock(&sh.ws_refused).insert(code);
                    }
                }
                sh.report().await;
            }
            _ = sub_timer.tick(), if !pending.is_empty() => {
                let Some(code) = pending.pop_front() else { continue };
                let msg = parse::subscribe_message(approval.expose_secret(), TR_TRADE, &code, true);
                if let Err(e) = ws.send(Message::Text(msg.into())).await {
                    return End::Lost(format!("subscribe: {e}"), None);
                }
            }
            _ = tokio::time::sleep_until(last_rx + idle) => {
                return End::Lost(format!("no frame for {} s", idle.as_secs()), None);
            }
            msg = ws.next() => {
                last_rx = Instant::now();
                let text = match msg {
                    None => return End::Lost("connection ended".into(), None),
                    Some(Err(e)) => return End::Lost(format!("read: {e}"), None),
                    Some(Ok(Message::Text(t))) => t,
                    Some(Ok(Message::Close(frame))) => {
                        let why = frame.map(|f| format!("{} {}", u16::from(f.code), f.reason)).unwrap_or_default();
                        return End::Lost(format!("closed by KIS {why}").trim().to_owned(), None);
                    }
                    Some(Ok(Message::Binary(_))) => {
                        sh.count_parse_errors(1);
                        continue;
                    }
                    Some(Ok(_)) => continue, // ping/pong: alive (tungstenite answers pings)
                };
                sh.ctx.metrics.frames.with_label_values(&[sh.name.as_str()]).inc();
                match parse::parse_frame(&text) {
                    Ok(Frame::PingPong) => {
                        if let Err(e) = ws.send(Message::Text(text.clone())).await {
                            return End::Lost(format!("PINGPONG answer: {e}"), None);
                        }
                    }
                    Ok(Frame::Control(c)) => match c.ack() {
                        Ack::Subscribed | Ack::Already => {
                            if sh.id_of_code(&c.tr_key).is_some() {
                                lock(&sh.ws_live).insert(c.tr_key.clone());
                                lock(&sh.ws_refused).remove(&c.tr_key);
                                acked += 1;
                                if acked == 1 {
                                    *lock(&sh.ws_state) = WsState::Live;
                                }
                                sh.report().await;
                                if let Some(from) = gap_from.get(&c.tr_key).copied() {
                                    let sh2 = sh.clone();
                                    let code = c.tr_key.clone();
                                    tokio::spawn(async move { gap_backfill(sh2, code, from).await });
                                }
                            }
                        }
                        Ack::Unsubscribed => {}
                        Ack::CapReached | Ack::Failed => {
                            sh.count_error(if c.ack() == Ack::CapReached { "ws_cap" } else { "ws_subscribe" });
                            tracing::warn!(source = "kis", code = %c.tr_key.chars().take(12).collect::<String>(), msg_cd = %c.msg_cd, msg = %c.msg1.chars().take(80).collect::<String>(), "subscription refused; polled over REST");
                            if sh.id_of_code(&c.tr_key).is_some() {
                                lock(&sh.ws_refused).insert(c.tr_key.clone());
                                lock(&sh.ws_live).remove(&c.tr_key);
                            }
                            sh.report().await;
                        }
                        Ack::InUse => {
                            sh.count_error("ws_in_use");
                            let _ = ws.close(None).await;
                            return End::Lost(
                                "ALREADY IN USE appkey: another process holds the session".into(),
                                Some(sh.s.in_use_retry),
                            );
                        }
                    },
                    Ok(Frame::Data { tr_id, obs, bad }) => {
                        sh.count_parse_errors(bad);
                        if bad > 0 {
                            tracing::warn!(source = "kis", tr_id, bad, "bad records skipped");
                        }
                        let mut items = Vec::with_capacity(obs.len());
                        for o in obs {
                            let Some(id) = sh.id_of_code(&o.key) else {
                                sh.count_error("unknown_code");
                                continue;
                            };
                            {
                                let mut lt = lock(&sh.last_trade);
                                let e = lt.entry(o.key.clone()).or_insert(o.ts);
                                *e = (*e).max(o.ts);
                            }
                            items.push((id, o));
                        }
                        if !items.is_empty() {
                            good += 1;
                            if good == 1 {
                                backoff.reset();
                            }
                        }
                        sh.publish(items, false).await;
                    }
                    Ok(Frame::Encrypted(_)) => {}
                    Err(e) => {
                        sh.count_parse_errors(1);
                        tracing::warn!(source = "kis", error = %e, bytes = text.len(), "malformed KIS frame skipped");
                    }
                }
                if acked > 0 && good == 0 && pending.is_empty() {
                    backoff.reset();
                }
            }
        }
    }
}

/// After a drop: the minutes of `code` from the one after its last live trade up to the
/// current minute (exclusive), from the minute chart.
async fn gap_backfill(sh: Arc<Shared>, code: String, last: i64) {
    let Some(inst) = sh
        .insts()
        .into_iter()
        .find(|i| matches!(&i.target, super::Target::KrxStock(c) if *c == code))
    else {
        return;
    };
    // What the socket missed: the current price from REST at once, then the whole minutes.
    sh.poll(&[&inst]).await;
    let now = now_ms();
    let lower = last - last.rem_euclid(60_000) + 60_000;
    let upper = now - now.rem_euclid(60_000);
    sh.backfill_minutes(&inst, &code, lower, upper).await;
}

//! Reading the past of the log: the replay of a time range (REST, WebSocket, `sise replay`; its
//! ticks, and for REST the news stored in it, [`replay_events`]) and
//! the sequential read of a whole stream (`sise project rebuild`).
//!
//! Both use JetStream *ordered* consumers (ephemeral, no acks, flow controlled by pull batches of
//! a few hundred messages), so a huge range is streamed, never loaded: memory is bounded by one
//! pull batch per instrument, whatever the range.
//!
//! Time ranges select by the tick's exchange time `ts`, half-open `[from, to)`, while JetStream
//! can only start by *stream* time (when a message was stored). A replay therefore starts at
//! `from - slack` (start-time delivery), keeps the ticks whose `ts` is in range, and stops at the
//! first message stored after `to + slack`, or at the last message that existed when the replay
//! started (so it always terminates, even while ticks keep arriving). A tick stored more than
//! `slack` after its exchange time (a backfill of an old gap) is outside that window: raise the
//! slack (`SISE_REPLAY_SLACK_SECS`) to find such ticks, at the cost of a longer scan.
//!
//! Several instruments are read with one ordered consumer each (the server this targets, 2.9,
//! has single-subject filters only) and merged by stream sequence, so the output is in log order.

use std::time::Duration;

use async_nats::jetstream::consumer::{pull::OrderedConfig, DeliverPolicy};
use bytes::Bytes;
use futures::stream::{self, BoxStream};
use futures::{Stream, StreamExt};

use crate::codec::Event;
use crate::{Bus, BusError, Delivered, InstrumentId, Namespace, News, StreamKind, Tick};

/// A message read from a stream, not yet decoded.
#[derive(Debug, Clone)]
pub struct RawEvent {
    /// Stream sequence.
    pub seq: u64,
    /// When the stream stored it (epoch ms).
    pub stored_ms: i64,
    pub subject: String,
    pub payload: Bytes,
}

/// A replayed tick: the decoded event, its stream sequence and its encoded bytes (for
/// re-publishing without re-encoding).
#[derive(Debug, Clone)]
pub struct ReplayedTick {
    pub seq: u64,
    pub stored_ms: i64,
    pub tick: Tick,
    pub payload: Bytes,
}

/// A replayed article: the decoded event, its NEWS stream sequence and when the log stored it.
#[derive(Debug, Clone)]
pub struct ReplayedNews {
    pub seq: u64,
    pub stored_ms: i64,
    pub news: News,
}

/// One event of a replay of ticks and news ([`replay_events`]).
#[derive(Debug, Clone)]
pub enum Replayed {
    Tick(ReplayedTick),
    News(ReplayedNews),
}

impl Replayed {
    /// When the log stored it (epoch ms): the order of a merged replay.
    pub fn stored_ms(&self) -> i64 {
        match self {
            Replayed::Tick(t) => t.stored_ms,
            Replayed::News(n) => n.stored_ms,
        }
    }
}

/// What to replay: ticks of `ids` with exchange time in `[from, to)`.
#[derive(Debug, Clone)]
pub struct ReplaySpec {
    pub ids: Vec<InstrumentId>,
    /// Inclusive start, epoch ms (exchange time).
    pub from: i64,
    /// Exclusive end, epoch ms (exchange time).
    pub to: i64,
    /// How far stream time may lie from exchange time (see the module docs).
    pub slack: Duration,
}

/// Most undecodable messages reported one by one in the log per read (the rest are counted).
const SKIP_LOG_LIMIT: u64 = 10;

fn ms_to_datetime(ms: i64) -> time::OffsetDateTime {
    time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms.max(0)) * 1_000_000)
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH)
}

fn datetime_to_ms(t: time::OffsetDateTime) -> i64 {
    i64::try_from(t.unix_timestamp_nanos() / 1_000_000).unwrap_or(i64::MAX)
}

/// Where an ordered read starts and where it must stop.
struct OrderedRead {
    stream: StreamKind,
    filter: Option<String>,
    deliver: DeliverPolicy,
    /// Stop after this stream sequence (inclusive).
    last_seq: u64,
    /// Stop at the first message stored after this time (epoch ms).
    stored_until: Option<i64>,
}

/// The last sequence of a stream right now (0 when empty).
pub async fn last_sequence(bus: &Bus, kind: StreamKind) -> Result<(u64, u64), BusError> {
    let mut stream = bus
        .js
        .get_stream(bus.ns.stream(kind))
        .await
        .map_err(BusError::nats)?;
    let info = stream.info().await.map_err(BusError::nats)?;
    Ok((info.state.first_sequence, info.state.last_sequence))
}

/// An ordered consumer read as a stream of raw events, ending at `last_seq`, at the end of what
/// was pending, or at the first message stored after `stored_until`.
async fn ordered(
    bus: &Bus,
    read: OrderedRead,
) -> Result<BoxStream<'static, Result<RawEvent, BusError>>, BusError> {
    if read.last_seq == 0 {
        return Ok(stream::empty().boxed());
    }
    let js_stream = bus
        .js
        .get_stream_no_info(bus.ns.stream(read.stream))
        .await
        .map_err(BusError::nats)?;
    let consumer = js_stream
        .create_consumer(OrderedConfig {
            filter_subject: read.filter.clone().unwrap_or_default(),
            deliver_policy: read.deliver,
            description: Some("sise replay".into()),
            ..Default::default()
        })
        .await
        .map_err(BusError::nats)?;
    if consumer.cached_info().num_pending == 0 {
        return Ok(stream::empty().boxed());
    }
    let messages = consumer.messages().await.map_err(BusError::nats)?;
    let last_seq = read.last_seq;
    let until = read.stored_until;
    // State: the message stream, or None once finished.
    let out = stream::unfold(Some(messages), move |state| async move {
        let mut messages = state?;
        match messages.next().await {
            None => None,
            Some(Err(e)) => Some((Err(BusError::nats(e)), None)),
            Some(Ok(msg)) => {
                let (seq, pending, stored_ms) = match msg.info() {
                    Ok(info) => (
                        info.stream_sequence,
                        info.pending,
                        datetime_to_ms(info.published),
                    ),
                    Err(e) => return Some((Err(BusError::nats(e)), None)),
                };
                if seq > last_seq || until.is_some_and(|u| stored_ms > u) {
                    return None;
                }
                let done = pending == 0 || seq >= last_seq;
                let ev = RawEvent {
                    seq,
                    stored_ms,
                    subject: msg.subject.to_string(),
                    payload: msg.message.payload.clone(),
                };
                Some((Ok(ev), (!done).then_some(messages)))
            }
        }
    });
    Ok(out.boxed())
}

/// Merge streams that are each ascending by `key` into one ascending stream (on a tie, the
/// earlier part's item first). An error ends the merged stream after it.
fn merge_by<T, K>(
    parts: Vec<BoxStream<'static, Result<T, BusError>>>,
    key: fn(&T) -> K,
) -> BoxStream<'static, Result<T, BusError>>
where
    T: Send + 'static,
    K: Ord + 'static,
{
    if parts.len() == 1 {
        return parts
            .into_iter()
            .next()
            .unwrap_or_else(|| stream::empty().boxed());
    }
    struct Merge<T> {
        parts: Vec<BoxStream<'static, Result<T, BusError>>>,
        heads: Vec<Option<T>>,
        live: Vec<bool>,
    }
    let n = parts.len();
    let state = Merge {
        parts,
        heads: (0..n).map(|_| None).collect(),
        live: vec![true; n],
    };
    stream::unfold(Some(state), move |state| async move {
        let mut st = state?;
        for i in 0..st.parts.len() {
            if st.live[i] && st.heads[i].is_none() {
                match st.parts[i].next().await {
                    Some(Ok(ev)) => st.heads[i] = Some(ev),
                    Some(Err(e)) => return Some((Err(e), None)),
                    None => st.live[i] = false,
                }
            }
        }
        let pick = st
            .heads
            .iter()
            .enumerate()
            .filter_map(|(i, h)| h.as_ref().map(|h| (key(h), i)))
            .min()?
            .1;
        let ev = st.heads[pick].take()?;
        Some((Ok(ev), Some(st)))
    })
    .boxed()
}

/// Replay the ticks of a range, in log order. Undecodable messages are logged and skipped.
pub async fn replay_ticks(
    bus: &Bus,
    spec: &ReplaySpec,
) -> Result<BoxStream<'static, Result<ReplayedTick, BusError>>, BusError> {
    let (_, last_seq) = last_sequence(bus, StreamKind::Ticks).await?;
    let slack_ms = i64::try_from(spec.slack.as_millis()).unwrap_or(i64::MAX / 4);
    let start = spec.from.saturating_sub(slack_ms);
    let until = spec.to.saturating_add(slack_ms);
    let mut parts = Vec::with_capacity(spec.ids.len());
    let mut ids = spec.ids.clone();
    ids.sort();
    ids.dedup();
    for id in &ids {
        parts.push(
            ordered(
                bus,
                OrderedRead {
                    stream: StreamKind::Ticks,
                    filter: Some(bus.ns.tick_subject(id)),
                    deliver: DeliverPolicy::ByStartTime {
                        start_time: ms_to_datetime(start),
                    },
                    last_seq,
                    stored_until: Some(until),
                },
            )
            .await?,
        );
    }
    let (from, to) = (spec.from, spec.to);
    let ns = bus.ns.clone();
    let mut skipped = 0u64;
    let out = merge_by(parts, |e: &RawEvent| e.seq).filter_map(move |item| {
        let out = match item {
            Err(e) => Some(Err(e)),
            Ok(raw) => match crate::decode::<Tick>(&raw.payload) {
                Ok(tick) if tick.ts >= from && tick.ts < to => Some(Ok(ReplayedTick {
                    seq: raw.seq,
                    stored_ms: raw.stored_ms,
                    tick,
                    payload: raw.payload,
                })),
                Ok(_) => None,
                Err(e) => {
                    skipped += 1;
                    if skipped <= SKIP_LOG_LIMIT {
                        tracing::warn!(namespace = %ns, seq = raw.seq, subject = %raw.subject, error = %e, "undecodable tick skipped in replay");
                    }
                    None
                }
            },
        };
        futures::future::ready(out)
    });
    Ok(out.boxed())
}

/// Replay the articles of a range: the News events the log *stored* in `[from, to)` (when the
/// dashboard heard of them: an article's `published` time may lie a day before, as NewsAPI's
/// free plan delivers them) that are tagged with at least one of `spec.ids`, in log order.
/// Undecodable messages are logged and skipped.
pub async fn replay_news(
    bus: &Bus,
    spec: &ReplaySpec,
) -> Result<BoxStream<'static, Result<ReplayedNews, BusError>>, BusError> {
    let (_, last_seq) = last_sequence(bus, StreamKind::News).await?;
    if spec.to <= spec.from {
        return Ok(stream::empty().boxed());
    }
    let raw = ordered(
        bus,
        OrderedRead {
            stream: StreamKind::News,
            filter: None,
            deliver: DeliverPolicy::ByStartTime {
                start_time: ms_to_datetime(spec.from),
            },
            last_seq,
            // Half-open: the first message stored at or after `to` ends it.
            stored_until: Some(spec.to - 1),
        },
    )
    .await?;
    let (from, ids) = (spec.from, spec.ids.clone());
    let ns = bus.ns.clone();
    let mut skipped = 0u64;
    let out = raw.filter_map(move |item| {
        let out = match item {
            Err(e) => Some(Err(e)),
            Ok(raw) if raw.stored_ms < from => None,
            Ok(raw) => match crate::decode::<News>(&raw.payload) {
                Ok(news) if news.instruments.iter().any(|i| ids.contains(i)) => {
                    Some(Ok(ReplayedNews {
                        seq: raw.seq,
                        stored_ms: raw.stored_ms,
                        news,
                    }))
                }
                Ok(_) => None,
                Err(e) => {
                    skipped += 1;
                    if skipped <= SKIP_LOG_LIMIT {
                        tracing::warn!(namespace = %ns, seq = raw.seq, subject = %raw.subject, error = %e, "undecodable news skipped in replay");
                    }
                    None
                }
            },
        };
        futures::future::ready(out)
    });
    Ok(out.boxed())
}

/// Replay ticks ([`replay_ticks`]) and news ([`replay_news`]) of a range as one stream in log
/// order: the two streams merged by the time the log stored each event (a tick first on a tie).
pub async fn replay_events(
    bus: &Bus,
    spec: &ReplaySpec,
) -> Result<BoxStream<'static, Result<Replayed, BusError>>, BusError> {
    let ticks = replay_ticks(bus, spec)
        .await?
        .map(|r| r.map(Replayed::Tick));
    let news = replay_news(bus, spec).await?.map(|r| r.map(Replayed::News));
    Ok(merge_by(
        vec![ticks.boxed(), news.boxed()],
        Replayed::stored_ms,
    ))
}

/// Every event of a stream from `start_seq` through `end_seq` (inclusive), decoded, in order;
/// what does not decode is counted in `skipped`, logged and left out. This is how a read model
/// is rebuilt from the log.
pub async fn read_sequences<E: Event>(
    bus: &Bus,
    kind: StreamKind,
    start_seq: u64,
    end_seq: u64,
    skipped: std::sync::Arc<std::sync::atomic::AtomicU64>,
) -> Result<impl Stream<Item = Result<Delivered<E>, BusError>> + Send + 'static, BusError> {
    let raw = if end_seq < start_seq.max(1) {
        stream::empty().boxed()
    } else {
        ordered(
            bus,
            OrderedRead {
                stream: kind,
                filter: None,
                deliver: DeliverPolicy::ByStartSequence {
                    start_sequence: start_seq.max(1),
                },
                last_seq: end_seq,
                stored_until: None,
            },
        )
        .await?
    };
    let ns = bus.ns.clone();
    Ok(raw.filter_map(move |item| {
        let out = match item {
            Err(e) => Some(Err(e)),
            Ok(raw) => match crate::decode::<E>(&raw.payload) {
                Ok(event) => Some(Ok(Delivered {
                    seq: raw.seq,
                    subject: raw.subject,
                    event,
                })),
                Err(e) => {
                    let n = skipped.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
                    if n <= SKIP_LOG_LIMIT {
                        tracing::warn!(namespace = %ns, seq = raw.seq, error = %e, "undecodable event skipped");
                    }
                    None
                }
            },
        };
        futures::future::ready(out)
    }))
}

/// The subject a replayed tick is re-published to under another prefix (`prefix.tick.<id>`),
/// for backfilling another namespace. The prefix must be subject-safe: dot-separated tokens of
/// `[A-Za-z0-9_-]`.
pub fn republish_subject(prefix: &str, id: &InstrumentId) -> Result<String, BusError> {
    let ok = !prefix.is_empty()
        && prefix.len() <= 200
        && prefix.split('.').all(|t| {
            !t.is_empty()
                && t.bytes()
                    .all(|c| c.is_ascii_alphanumeric() || c == b'_' || c == b'-')
        });
    if !ok {
        return Err(BusError::InvalidName {
            what: "subject prefix",
            value: prefix.chars().take(40).collect(),
            reason: "must be dot-separated tokens of [A-Za-z0-9_-]",
        });
    }
    Ok(format!("{prefix}.tick.{id}"))
}

/// The namespace a republish prefix names, if it is one (its `ns_TICKS` stream then exists or
/// can be ensured).
pub fn prefix_namespace(prefix: &str) -> Option<Namespace> {
    Namespace::parse(prefix).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn republish_subjects() {
        let id = InstrumentId::parse("crypto.upbit.KRW-BTC").unwrap();
        assert_eq!(
            republish_subject("other", &id).unwrap(),
            "other.tick.crypto.upbit.KRW-BTC"
        );
        assert_eq!(
            republish_subject("a.b-c", &id).unwrap(),
            "a.b-c.tick.crypto.upbit.KRW-BTC"
        );
        for bad in ["", "a..b", "a.*", "a.>", "a b", ".a"] {
            assert!(republish_subject(bad, &id).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn times_round_trip() {
        let ms = 1_790_000_000_123;
        assert_eq!(datetime_to_ms(ms_to_datetime(ms)), ms);
        assert_eq!(datetime_to_ms(ms_to_datetime(-5)), 0);
    }
}

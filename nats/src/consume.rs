//! The durable pull-consumer loop every projection runs.
//!
//! Contract with a [`Handler`]:
//! 1. [`Handler::last_applied`] says the highest stream sequence already committed in the read
//!    model. The loop (re)creates the durable consumer to deliver from the next one, so the read
//!    model, not the consumer's ack state, is the truth: a restart resumes exactly, and a wiped
//!    read model is rebuilt from the log.
//! 2. [`Handler::apply`] writes a batch and its last sequence in one transaction and must be
//!    idempotent per message (a redelivered message changes nothing).
//! 3. Messages are acked only after `apply` returned `Ok`; while it fails the same batch is
//!    retried with capped backoff, and nothing newer is applied ahead of it.
//! 4. Bytes that do not decode are counted, logged and `Term`ed: never a crash, never a retry loop.
//!
//! One writer per read model and namespace: two processes projecting the same model would keep
//! recreating each other's consumer.

use std::future::Future;
use std::time::Duration;

use async_nats::jetstream::{
    consumer::{pull, AckPolicy, DeliverPolicy},
    AckKind,
};
use futures::StreamExt;
use prometheus::{IntCounterVec, IntGaugeVec, Opts, Registry};
use tokio_util::sync::CancellationToken;

use crate::codec::Event;
use crate::{Bus, BusError, StreamKind};

/// Any error a handler can return.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// A decoded event with where it sits in its stream.
#[derive(Debug, Clone)]
pub struct Delivered<E> {
    /// Stream sequence.
    pub seq: u64,
    pub subject: String,
    pub event: E,
}

/// A read model's writer.
pub trait Handler: Send + 'static {
    type Event: Event;
    /// Highest stream sequence already committed (0 when empty).
    fn last_applied(&mut self) -> impl Future<Output = Result<u64, BoxError>> + Send;
    /// Apply a batch, committing data and the last sequence together; idempotent per message.
    fn apply(
        &mut self,
        batch: &[Delivered<Self::Event>],
    ) -> impl Future<Output = Result<(), BoxError>> + Send;
}

/// Which stream a projection reads and under what durable name.
#[derive(Debug, Clone)]
pub struct ConsumerSpec {
    /// The projection's name (`latest`, `history`, `status`...): durable `ns_<name>`.
    pub projection: &'static str,
    pub stream: StreamKind,
    /// Most messages applied in one batch.
    pub batch: usize,
}

/// Metrics shared by every consumer of a process (register once, clone freely).
#[derive(Clone)]
pub struct ConsumerMetrics {
    events: IntCounterVec,
    ticks: IntCounterVec,
    decode_errors: IntCounterVec,
    apply_errors: IntCounterVec,
    last_seq: IntGaugeVec,
}

impl ConsumerMetrics {
    pub fn new(registry: &Registry) -> Result<Self, prometheus::Error> {
        let events = IntCounterVec::new(
            Opts::new(
                "sise_projected_events_total",
                "Events applied by a projection",
            ),
            &["projection"],
        )?;
        let ticks = IntCounterVec::new(
            Opts::new(
                "sise_ticks_projected_total",
                "Ticks applied by a projection",
            ),
            &["projection"],
        )?;
        let decode_errors = IntCounterVec::new(
            Opts::new(
                "sise_bus_decode_errors_total",
                "Messages on the bus that did not decode and were skipped (terminated)",
            ),
            &["projection"],
        )?;
        let apply_errors = IntCounterVec::new(
            Opts::new(
                "sise_projection_apply_errors_total",
                "Failed batch applications (retried, nothing lost)",
            ),
            &["projection"],
        )?;
        let last_seq = IntGaugeVec::new(
            Opts::new(
                "sise_projection_last_seq",
                "Last stream sequence a projection committed",
            ),
            &["projection"],
        )?;
        registry.register(Box::new(events.clone()))?;
        registry.register(Box::new(ticks.clone()))?;
        registry.register(Box::new(decode_errors.clone()))?;
        registry.register(Box::new(apply_errors.clone()))?;
        registry.register(Box::new(last_seq.clone()))?;
        Ok(ConsumerMetrics {
            events,
            ticks,
            decode_errors,
            apply_errors,
            last_seq,
        })
    }

    /// Messages skipped as undecodable by a projection so far.
    pub fn decode_errors(&self, projection: &str) -> u64 {
        self.decode_errors.with_label_values(&[projection]).get()
    }

    /// Events a projection applied so far.
    pub fn applied(&self, projection: &str) -> u64 {
        self.events.with_label_values(&[projection]).get()
    }
}

const BACKOFF_MIN: Duration = Duration::from_millis(100);
const BACKOFF_MAX: Duration = Duration::from_secs(5);

/// Run a projection until `cancel` fires. In-flight batches finish (or stay unacked) first.
pub async fn run_consumer<H: Handler>(
    bus: Bus,
    spec: ConsumerSpec,
    mut handler: H,
    metrics: ConsumerMetrics,
    cancel: CancellationToken,
) -> Result<(), BusError> {
    let name = spec.projection;
    let mut backoff = BACKOFF_MIN;
    loop {
        if cancel.is_cancelled() {
            return Ok(());
        }
        match consume_once(&bus, &spec, &mut handler, &metrics, &cancel).await {
            Ok(()) => return Ok(()),
            Err(e) => {
                tracing::warn!(projection = name, error = %e, ?backoff, "consumer interrupted; restarting");
                tokio::select! {
                    _ = cancel.cancelled() => return Ok(()),
                    _ = tokio::time::sleep(backoff) => {}
                }
                backoff = (backoff * 2).min(BACKOFF_MAX);
            }
        }
    }
}

async fn consume_once<H: Handler>(
    bus: &Bus,
    spec: &ConsumerSpec,
    handler: &mut H,
    metrics: &ConsumerMetrics,
    cancel: &CancellationToken,
) -> Result<(), BusError> {
    let name = spec.projection;
    let last = handler
        .last_applied()
        .await
        .map_err(|e| BusError::Nats(format!("reading last applied sequence: {e}")))?;
    metrics.last_seq.with_label_values(&[name]).set(last as i64);
    let consumer = recreate_consumer(bus, spec, last).await?;
    tracing::info!(projection = name, resume_after = last, "consumer started");
    let messages = consumer
        .stream()
        .max_messages_per_batch(spec.batch)
        .heartbeat(Duration::from_secs(5))
        .messages()
        .await
        .map_err(BusError::nats)?;
    let mut chunks = messages.ready_chunks(spec.batch);
    loop {
        let chunk = tokio::select! {
            _ = cancel.cancelled() => return Ok(()),
            next = chunks.next() => match next {
                Some(chunk) => chunk,
                None => return Err(BusError::Nats("message stream ended".into())),
            },
        };
        let mut batch = Vec::with_capacity(chunk.len());
        let mut raw = Vec::with_capacity(chunk.len());
        for item in chunk {
            let msg = match item {
                Ok(msg) => msg,
                Err(e) => {
                    // Apply what we have first, then restart the subscription.
                    if !batch.is_empty() {
                        apply_and_ack(handler, name, spec, &batch, &raw, metrics, cancel).await?;
                    }
                    return Err(BusError::nats(e));
                }
            };
            let seq = match msg.info() {
                Ok(info) => info.stream_sequence,
                Err(e) => {
                    tracing::warn!(projection = name, error = %e, "message without JetStream info; skipped");
                    continue;
                }
            };
            match crate::decode::<H::Event>(&msg.payload) {
                Ok(event) => {
                    batch.push(Delivered {
                        seq,
                        subject: msg.subject.to_string(),
                        event,
                    });
                    raw.push(msg);
                }
                Err(e) => {
                    metrics.decode_errors.with_label_values(&[name]).inc();
                    tracing::warn!(projection = name, seq, subject = %msg.subject, error = %e, "undecodable message skipped");
                    if let Err(e) = msg.ack_with(AckKind::Term).await {
                        tracing::warn!(projection = name, seq, error = %e, "term failed");
                    }
                }
            }
        }
        if !batch.is_empty() {
            apply_and_ack(handler, name, spec, &batch, &raw, metrics, cancel).await?;
        }
    }
}

async fn apply_and_ack<H: Handler>(
    handler: &mut H,
    name: &'static str,
    spec: &ConsumerSpec,
    batch: &[Delivered<H::Event>],
    raw: &[async_nats::jetstream::Message],
    metrics: &ConsumerMetrics,
    cancel: &CancellationToken,
) -> Result<(), BusError> {
    let mut backoff = BACKOFF_MIN;
    loop {
        match handler.apply(batch).await {
            Ok(()) => break,
            Err(e) => {
                metrics.apply_errors.with_label_values(&[name]).inc();
                tracing::warn!(projection = name, error = %e, ?backoff, "apply failed; retrying the same batch");
                tokio::select! {
                    // Not acked: the batch is delivered again after a restart.
                    _ = cancel.cancelled() => return Ok(()),
                    _ = tokio::time::sleep(backoff) => {}
                }
                backoff = (backoff * 2).min(BACKOFF_MAX);
            }
        }
    }
    let n = batch.len() as u64;
    metrics.events.with_label_values(&[name]).inc_by(n);
    if spec.stream == StreamKind::Ticks {
        metrics.ticks.with_label_values(&[name]).inc_by(n);
    }
    if let Some(last) = batch.iter().map(|d| d.seq).max() {
        metrics.last_seq.with_label_values(&[name]).set(last as i64);
    }
    for msg in raw {
        if let Err(e) = msg.ack().await {
            // Committed already: a redelivery is harmless (idempotent apply).
            tracing::debug!(projection = name, error = %e, "ack failed");
        }
    }
    Ok(())
}

/// Delete the durable consumer (if any) and create it to deliver from `last + 1`.
async fn recreate_consumer(
    bus: &Bus,
    spec: &ConsumerSpec,
    last: u64,
) -> Result<async_nats::jetstream::consumer::Consumer<pull::Config>, BusError> {
    let stream_name = bus.ns.stream(spec.stream);
    let stream = bus
        .js
        .get_stream_no_info(&stream_name)
        .await
        .map_err(BusError::nats)?;
    let durable = bus.ns.consumer(spec.projection);
    let _ = stream.delete_consumer(&durable).await;
    let deliver_policy = if last == 0 {
        DeliverPolicy::All
    } else {
        DeliverPolicy::ByStartSequence {
            start_sequence: last + 1,
        }
    };
    let config = pull::Config {
        durable_name: Some(durable),
        description: Some(format!("sise projection {}", spec.projection)),
        ack_policy: AckPolicy::Explicit,
        ack_wait: Duration::from_secs(30),
        max_ack_pending: (spec.batch as i64) * 4,
        deliver_policy,
        ..Default::default()
    };
    stream.create_consumer(config).await.map_err(BusError::nats)
}

//! The one publish path: every event goes out through [`Bus`], with its `Nats-Msg-Id`, and the
//! stream's ack is awaited, so "published" always means "stored".

use std::time::Duration;

use async_nats::header::{HeaderMap, NATS_MESSAGE_ID};
use async_nats::jetstream::{self, context::PublishAckFuture};
use bytes::Bytes;

use crate::codec::{encode, Event};
use crate::{stream, BusError, Namespace, News, SourceStatus, StreamKind, Tick};

/// A connection to the log of one namespace.
#[derive(Clone)]
pub struct Bus {
    pub client: async_nats::Client,
    pub js: jetstream::Context,
    pub ns: Namespace,
}

/// The stream's answer to a publish.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stored {
    pub seq: u64,
    /// True when the stream had this `Nats-Msg-Id` already (a retried publish).
    pub duplicate: bool,
}

impl Bus {
    /// Connect to NATS for namespace `ns`.
    pub async fn connect(url: &str, ns: Namespace) -> Result<Self, BusError> {
        let client = async_nats::ConnectOptions::new()
            .name(format!("sise-{ns}"))
            .connection_timeout(Duration::from_secs(5))
            .retry_on_initial_connect()
            .connect(url)
            .await
            .map_err(BusError::nats)?;
        // Wait (bounded) until the first connection is up, so a bad URL fails at start.
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        while client.connection_state() != async_nats::connection::State::Connected {
            if tokio::time::Instant::now() > deadline {
                return Err(BusError::Nats(format!("cannot reach NATS at {url}")));
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        Ok(Self::from_client(client, ns))
    }

    pub fn from_client(client: async_nats::Client, ns: Namespace) -> Self {
        let mut js = jetstream::new(client.clone());
        js.set_timeout(Duration::from_secs(10));
        Bus { client, js, ns }
    }

    /// Create or update this namespace's streams.
    pub async fn ensure_streams(&self, ticks_max_age: Duration) -> Result<(), BusError> {
        stream::ensure_streams(&self.js, &self.ns, ticks_max_age).await
    }

    /// Is the NATS connection up right now?
    pub fn is_connected(&self) -> bool {
        self.client.connection_state() == async_nats::connection::State::Connected
    }

    /// Send an encoded event with its dedup id; returns the future of the stream's ack.
    pub async fn send(
        &self,
        subject: String,
        msg_id: &str,
        payload: Bytes,
    ) -> Result<PublishAckFuture, BusError> {
        let mut headers = HeaderMap::new();
        headers.insert(NATS_MESSAGE_ID, msg_id);
        self.js
            .publish_with_headers(subject, headers, payload)
            .await
            .map_err(BusError::nats)
    }

    async fn publish_event<E: Event>(
        &self,
        subject: String,
        msg_id: &str,
        event: &E,
    ) -> Result<Stored, BusError> {
        let payload = Bytes::from(encode(event)?);
        let ack = self.send(subject, msg_id, payload).await?;
        let ack = ack.await.map_err(BusError::nats)?;
        Ok(Stored {
            seq: ack.sequence,
            duplicate: ack.duplicate,
        })
    }

    /// Publish one tick and wait until the stream stored it.
    pub async fn publish_tick(&self, tick: &Tick) -> Result<Stored, BusError> {
        self.publish_event(self.ns.tick_subject(&tick.instrument), &tick.msg_id(), tick)
            .await
    }

    /// Publish many ticks, pipelined: all are sent before the acks are awaited.
    pub async fn publish_ticks(&self, ticks: &[Tick]) -> Result<Vec<Stored>, BusError> {
        let mut acks = Vec::with_capacity(ticks.len());
        for tick in ticks {
            let payload = Bytes::from(encode(tick)?);
            acks.push(
                self.send(
                    self.ns.tick_subject(&tick.instrument),
                    &tick.msg_id(),
                    payload,
                )
                .await?,
            );
        }
        let mut stored = Vec::with_capacity(acks.len());
        for ack in acks {
            let ack = ack.await.map_err(BusError::nats)?;
            stored.push(Stored {
                seq: ack.sequence,
                duplicate: ack.duplicate,
            });
        }
        Ok(stored)
    }

    pub async fn publish_news(&self, news: &News) -> Result<Stored, BusError> {
        self.publish_event(self.ns.news_subject(&news.source), &news.msg_id(), news)
            .await
    }

    pub async fn publish_status(&self, status: &SourceStatus) -> Result<Stored, BusError> {
        self.publish_event(
            self.ns.status_subject(&status.source),
            &status.msg_id(),
            status,
        )
        .await
    }

    /// The newest tick stored for an instrument, if any (direct get by subject).
    pub async fn last_tick(&self, id: &crate::InstrumentId) -> Result<Option<Tick>, BusError> {
        let stream = self
            .js
            .get_stream_no_info(self.ns.stream(StreamKind::Ticks))
            .await
            .map_err(BusError::nats)?;
        match stream
            .get_last_raw_message_by_subject(&self.ns.tick_subject(id))
            .await
        {
            Ok(msg) => Ok(crate::decode::<Tick>(&msg.payload).ok()),
            Err(e) if e.kind() == jetstream::stream::LastRawMessageErrorKind::NoMessageFound => {
                Ok(None)
            }
            Err(e) => Err(BusError::nats(e)),
        }
    }

    /// Messages stored in a stream right now (the stream's own count).
    pub async fn stream_messages(&self, kind: StreamKind) -> Result<u64, BusError> {
        let mut stream = self
            .js
            .get_stream(self.ns.stream(kind))
            .await
            .map_err(BusError::nats)?;
        Ok(stream.info().await.map_err(BusError::nats)?.state.messages)
    }
}

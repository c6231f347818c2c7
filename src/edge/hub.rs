//! The WebSocket hub: one NATS subscription per edge feeds every browser socket.
//!
//! Each tick is decoded and rendered to JSON once (a ready `{"type":"tick",…}` frame and the bare
//! quote object for batches), shared by every client as reference-counted bytes. Each client has
//! a [`ClientQueue`]: the latest pending tick per instrument (conflation: a slow client gets the
//! newest price, never an ever-growing backlog) plus a short bounded queue of other frames
//! (snapshots, status, news, errors). A client whose frame queue still overflows is closed with
//! a reason. Memory per client is bounded by the instruments it subscribed to.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};

use axum::extract::ws::Utf8Bytes;
use futures::StreamExt;
use indexmap::IndexMap;
use prometheus::{IntCounter, IntCounterVec, IntGauge, Opts, Registry as Prom};
use serde::Serialize;
use sise_bus::{Bus, InstrumentId, News, SourceState, SourceStatus, StreamKind, Tick};
use sise_pipelines::Registry;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use super::market;
use super::quote::QuoteView;

/// Most non-tick frames waiting for one client before it is closed as too slow.
const MAX_PENDING_FRAMES: usize = 256;

/// A tick rendered once, shared by every client.
#[derive(Debug)]
pub struct SharedTick {
    pub id: InstrumentId,
    pub ts: i64,
    /// `{"type":"tick", …quote fields}`
    pub frame: Utf8Bytes,
    /// `{…quote fields}` for batched `ticks` frames.
    pub quote: Utf8Bytes,
}

impl SharedTick {
    pub fn render(view: &QuoteView<'_>, id: InstrumentId) -> Self {
        #[derive(Serialize)]
        struct Frame<'a> {
            #[serde(rename = "type")]
            kind: &'static str,
            #[serde(flatten)]
            quote: &'a QuoteView<'a>,
        }
        let quote = serde_json::to_string(view).unwrap_or_else(|_| "{}".into());
        let frame = serde_json::to_string(&Frame {
            kind: "tick",
            quote: view,
        })
        .unwrap_or_else(|_| "{}".into());
        SharedTick {
            id,
            ts: view.quote.ts,
            frame: frame.into(),
            quote: quote.into(),
        }
    }
}

#[derive(Default)]
struct Pending {
    /// While set, nothing is handed to the writer (a subscribe is reading its snapshot).
    hold: bool,
    frames: VecDeque<Utf8Bytes>,
    ticks: IndexMap<InstrumentId, Arc<SharedTick>>,
    closed: Option<&'static str>,
}

/// What the writer takes from a queue in one go.
#[derive(Default)]
pub struct Taken {
    pub frames: Vec<Utf8Bytes>,
    pub ticks: Vec<Arc<SharedTick>>,
    pub closed: Option<&'static str>,
}

/// One client's outgoing queue.
#[derive(Default)]
pub struct ClientQueue {
    inner: Mutex<Pending>,
    pub notify: Notify,
    /// Signalled each time the writer takes what is queued (replay paces itself on it).
    drained: Notify,
}

impl ClientQueue {
    fn lock(&self) -> std::sync::MutexGuard<'_, Pending> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Queue a tick; returns true when it replaced an unsent one (conflated).
    pub fn push_tick(&self, tick: &Arc<SharedTick>) -> bool {
        let replaced = {
            let mut p = self.lock();
            if p.closed.is_some() {
                return false;
            }
            p.ticks.insert(tick.id.clone(), tick.clone()).is_some()
        };
        self.notify.notify_one();
        replaced
    }

    /// Queue a frame; a client that lets too many pile up is closed.
    pub fn push_frame(&self, frame: Utf8Bytes) -> bool {
        let ok = {
            let mut p = self.lock();
            if p.closed.is_some() {
                return false;
            }
            if p.frames.len() >= MAX_PENDING_FRAMES {
                p.closed = Some("slow consumer: too many frames pending");
                false
            } else {
                p.frames.push_back(frame);
                true
            }
        };
        self.notify.notify_one();
        ok
    }

    pub fn hold(&self) {
        self.lock().hold = true;
    }

    /// Queue a subscribe's snapshot and release the hold. Pending ticks older than the
    /// snapshot's quote for the same instrument are dropped, so a client never goes back in time.
    pub fn release_with_snapshot(
        &self,
        frame: Utf8Bytes,
        snapshot_ts: &HashMap<InstrumentId, i64>,
    ) {
        {
            let mut p = self.lock();
            p.ticks
                .retain(|id, t| snapshot_ts.get(id).is_none_or(|snap| t.ts >= *snap));
            if p.frames.len() >= MAX_PENDING_FRAMES {
                p.closed = Some("slow consumer: too many frames pending");
            } else {
                p.frames.push_back(frame);
            }
            p.hold = false;
        }
        self.notify.notify_one();
    }

    pub fn forget(&self, ids: &[InstrumentId]) {
        let mut p = self.lock();
        for id in ids {
            p.ticks.shift_remove(id);
        }
    }

    pub fn close(&self, reason: &'static str) {
        self.lock().closed.get_or_insert(reason);
        self.notify.notify_one();
    }

    pub fn take(&self) -> Taken {
        let taken = {
            let mut p = self.lock();
            if p.hold && p.closed.is_none() {
                return Taken::default();
            }
            // A closing client still gets what was queued before the close (the reason frame).
            Taken {
                frames: p.frames.drain(..).collect(),
                ticks: p.ticks.drain(..).map(|(_, t)| t).collect(),
                closed: p.closed,
            }
        };
        self.drained.notify_waiters();
        taken
    }

    /// Queue a frame once fewer than `high_water` frames are waiting (backpressure for replay,
    /// whose frames are never conflated or dropped): waits for the writer to drain the queue.
    /// Returns false when the client is closed.
    pub async fn push_frame_paced(&self, frame: Utf8Bytes, high_water: usize) -> bool {
        loop {
            let drained = self.drained.notified();
            tokio::pin!(drained);
            drained.as_mut().enable();
            {
                let mut p = self.lock();
                if p.closed.is_some() {
                    return false;
                }
                if p.frames.len() < high_water.clamp(1, MAX_PENDING_FRAMES) {
                    p.frames.push_back(frame);
                    drop(p);
                    self.notify.notify_one();
                    return true;
                }
            }
            drained.await;
        }
    }
}

/// Hub metrics (WS clients and what they were sent).
#[derive(Clone)]
pub struct HubMetrics {
    pub clients: IntGauge,
    pub frames: IntCounter,
    pub conflated: IntCounter,
    pub disconnects: IntCounterVec,
    pub decode_errors: IntCounter,
}

impl HubMetrics {
    pub fn new(prom: &Prom) -> Result<Self, prometheus::Error> {
        let clients = IntGauge::new("sise_ws_clients", "WebSocket clients connected")?;
        let frames = IntCounter::new("sise_ws_frames_sent_total", "WebSocket frames sent")?;
        let conflated = IntCounter::new(
            "sise_ws_ticks_conflated_total",
            "Ticks replaced by a newer one before a slow client got them",
        )?;
        let disconnects = IntCounterVec::new(
            Opts::new(
                "sise_ws_disconnects_total",
                "WebSocket clients closed by the server, by reason",
            ),
            &["reason"],
        )?;
        let decode_errors = IntCounter::new(
            "sise_hub_decode_errors_total",
            "Live messages the hub could not decode (skipped)",
        )?;
        prom.register(Box::new(clients.clone()))?;
        prom.register(Box::new(frames.clone()))?;
        prom.register(Box::new(conflated.clone()))?;
        prom.register(Box::new(disconnects.clone()))?;
        prom.register(Box::new(decode_errors.clone()))?;
        Ok(HubMetrics {
            clients,
            frames,
            conflated,
            disconnects,
            decode_errors,
        })
    }
}

/// The hub shared by every socket of an edge.
pub struct Hub {
    subs: RwLock<HashMap<InstrumentId, HashMap<u64, Arc<ClientQueue>>>>,
    clients: RwLock<HashMap<u64, Arc<ClientQueue>>>,
    next_id: AtomicU64,
    sources: RwLock<HashMap<String, SourceState>>,
    registry: Arc<Registry>,
    pub metrics: HubMetrics,
}

impl Hub {
    pub fn new(registry: Arc<Registry>, metrics: HubMetrics) -> Self {
        Hub {
            subs: RwLock::default(),
            clients: RwLock::default(),
            next_id: AtomicU64::new(1),
            sources: RwLock::default(),
            registry,
            metrics,
        }
    }

    pub fn client_count(&self) -> usize {
        self.clients.read().map(|c| c.len()).unwrap_or(0)
    }

    pub fn register(&self) -> (u64, Arc<ClientQueue>) {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let queue = Arc::new(ClientQueue::default());
        if let Ok(mut c) = self.clients.write() {
            c.insert(id, queue.clone());
        }
        self.metrics.clients.inc();
        (id, queue)
    }

    pub fn unregister(&self, client: u64, ids: &[InstrumentId]) {
        self.unsubscribe(client, ids);
        if let Ok(mut c) = self.clients.write() {
            if c.remove(&client).is_some() {
                self.metrics.clients.dec();
            }
        }
    }

    pub fn subscribe(&self, client: u64, queue: &Arc<ClientQueue>, ids: &[InstrumentId]) {
        if let Ok(mut subs) = self.subs.write() {
            for id in ids {
                subs.entry(id.clone())
                    .or_default()
                    .insert(client, queue.clone());
            }
        }
    }

    /// A user-added id was checked and not found: its subscribers get an `unknown_instrument`
    /// error frame, and it is dropped from their subscriptions.
    pub fn reject(&self, id: &InstrumentId, reason: &str) {
        let gone = match self.subs.write() {
            Ok(mut subs) => subs.remove(id),
            Err(_) => None,
        };
        let Some(clients) = gone else { return };
        let frame = super::ws::error_frame(
            "unknown_instrument",
            format!("unknown instruments: {id} ({reason})"),
        );
        for q in clients.values() {
            q.push_frame(frame.clone());
        }
    }

    pub fn unsubscribe(&self, client: u64, ids: &[InstrumentId]) {
        if let Ok(mut subs) = self.subs.write() {
            for id in ids {
                if let Some(m) = subs.get_mut(id) {
                    m.remove(&client);
                    if m.is_empty() {
                        subs.remove(id);
                    }
                }
            }
        }
    }

    /// The last known state of a source (from status events).
    pub fn source_state(&self, source: &str) -> Option<SourceState> {
        self.sources.read().ok()?.get(source).copied()
    }

    pub fn set_source_state(&self, source: &str, state: SourceState) {
        if let Ok(mut s) = self.sources.write() {
            s.insert(source.to_owned(), state);
        }
    }

    /// Render a live tick and hand it to every subscriber of its instrument.
    pub fn publish_tick(&self, tick: &Tick) {
        let targets: Vec<Arc<ClientQueue>> = match self.subs.read() {
            Ok(subs) => match subs.get(&tick.instrument) {
                Some(m) => m.values().cloned().collect(),
                None => return,
            },
            Err(_) => return,
        };
        let inst = self.registry.lookup(&tick.instrument);
        let inst = inst.as_deref();
        let (stale, market) = market::freshness(
            inst,
            tick.source.as_str(),
            tick.ts,
            sise_bus::now_ms(),
            self.source_state(tick.source.as_str()),
        );
        let shared = Arc::new(SharedTick::render(
            &QuoteView::from_tick(tick, stale, market),
            tick.instrument.clone(),
        ));
        for q in targets {
            if q.push_tick(&shared) {
                self.metrics.conflated.inc();
            }
        }
    }

    /// A status frame goes to every client.
    pub fn publish_status(&self, status: &SourceStatus) {
        self.set_source_state(status.source.as_str(), status.state);
        let frame = serde_json::json!({
            "type": "status",
            "source": status.source.as_str(),
            "state": status.state.as_str(),
            "detail": status.detail,
            "ts": status.ts,
        })
        .to_string();
        let frame = Utf8Bytes::from(frame);
        let clients: Vec<Arc<ClientQueue>> = match self.clients.read() {
            Ok(c) => c.values().cloned().collect(),
            Err(_) => return,
        };
        for q in clients {
            q.push_frame(frame.clone());
        }
    }

    /// A news frame goes to each client subscribed to any instrument it is tagged with.
    pub fn publish_news(&self, news: &News) {
        let mut targets: HashMap<u64, Arc<ClientQueue>> = HashMap::new();
        if let Ok(subs) = self.subs.read() {
            for id in &news.instruments {
                if let Some(m) = subs.get(id) {
                    targets.extend(m.iter().map(|(k, v)| (*k, v.clone())));
                }
            }
        }
        if targets.is_empty() {
            return;
        }
        let frame = serde_json::json!({
            "type": "news",
            "id": news.id,
            "source": news.source.as_str(),
            "title": news.title,
            "summary": news.summary,
            "url": news.url,
            "image": news.image,
            "published": news.published,
            "language": news.language,
            "instruments": news.instruments,
        })
        .to_string();
        let frame = Utf8Bytes::from(frame);
        for q in targets.into_values() {
            q.push_frame(frame.clone());
        }
    }

    /// Feed the hub from NATS (core subscriptions: the live edge of the log) until cancelled.
    pub async fn run(
        self: Arc<Self>,
        bus: Bus,
        cancel: CancellationToken,
    ) -> Result<(), sise_bus::BusError> {
        let ns = &bus.ns;
        let nats = |e: async_nats::SubscribeError| sise_bus::BusError::Nats(e.to_string());
        let mut ticks = bus
            .client
            .subscribe(ns.all_subjects(StreamKind::Ticks))
            .await
            .map_err(nats)?;
        let mut status = bus
            .client
            .subscribe(ns.all_subjects(StreamKind::Status))
            .await
            .map_err(nats)?;
        let mut news = bus
            .client
            .subscribe(ns.all_subjects(StreamKind::News))
            .await
            .map_err(nats)?;
        loop {
            tokio::select! {
                _ = cancel.cancelled() => break,
                Some(msg) = ticks.next() => match sise_bus::decode::<Tick>(&msg.payload) {
                    Ok(t) => self.publish_tick(&t),
                    Err(e) => self.skip(&msg.subject, e),
                },
                Some(msg) = status.next() => match sise_bus::decode::<SourceStatus>(&msg.payload) {
                    Ok(s) => self.publish_status(&s),
                    Err(e) => self.skip(&msg.subject, e),
                },
                Some(msg) = news.next() => match sise_bus::decode::<News>(&msg.payload) {
                    Ok(n) => self.publish_news(&n),
                    Err(e) => self.skip(&msg.subject, e),
                },
                else => break,
            }
        }
        // Tell every socket to finish.
        if let Ok(c) = self.clients.read() {
            for q in c.values() {
                q.close("server shutting down");
            }
        }
        Ok(())
    }

    fn skip(&self, subject: &str, e: sise_bus::BusError) {
        self.metrics.decode_errors.inc();
        tracing::warn!(subject, error = %e, "undecodable live message skipped");
    }
}

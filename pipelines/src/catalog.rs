//! Instruments beyond `instruments.toml`: sources publish what they list (Upbit's KRW markets,
//! with Korean and English names) and the edge records what users subscribe to, both in the
//! key-value buckets of [`sise_bus::catalog`]. Every process follows them here:
//!
//! - [`follow_listed`] keeps a [`Registry`]'s listed instruments current, so the edge can
//!   search, validate and label them (`GET /api/v1/instruments`, WebSocket subscribe);
//! - [`follow_watched`] gives a source the set of user-added ids as a `watch` channel, so it
//!   subscribes to a new market without a restart and without dropping the others.
//!
//! A follower whose watch ends (NATS reconnecting) opens it again; a bad entry is logged and
//! skipped.

use std::collections::BTreeSet;
use std::sync::Arc;

use bytes::Bytes;
use futures::StreamExt;
use sise_bus::catalog::{Bucket, Change, REFOLLOW_DELAY};
use sise_bus::{Bus, InstrumentId};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use crate::{Instrument, Registry};

/// The JSON a source writes for a listed instrument (the shape `/api/v1/instruments` shows).
pub fn listing_json(inst: &Instrument) -> Bytes {
    Bytes::from(serde_json::to_vec(inst).unwrap_or_default())
}

/// Keep `registry`'s listed instruments in step with the `listed` bucket until `cancel`.
pub async fn follow_listed(bus: Bus, registry: Arc<Registry>, cancel: CancellationToken) {
    loop {
        match bus.follow(Bucket::Listed).await {
            Ok(changes) => {
                let mut changes = std::pin::pin!(changes);
                loop {
                    let change = tokio::select! {
                        _ = cancel.cancelled() => return,
                        c = changes.next() => c,
                    };
                    match change {
                        Some(Change::Put(id, json)) => apply_listing(&registry, &id, &json),
                        Some(Change::Removed(id)) => registry.remove_listed(&id),
                        None => break,
                    }
                }
            }
            Err(e) => tracing::warn!(error = %e, "cannot follow the listed instruments"),
        }
        tokio::select! {
            _ = cancel.cancelled() => return,
            _ = tokio::time::sleep(REFOLLOW_DELAY) => {}
        }
    }
}

fn apply_listing(registry: &Registry, id: &InstrumentId, json: &[u8]) {
    match serde_json::from_slice::<Instrument>(json) {
        Ok(inst) if &inst.id == id => {
            if let Err(e) = registry.add_listed(inst) {
                tracing::warn!(%id, error = %e, "listed instrument rejected");
            }
        }
        Ok(inst) => {
            tracing::warn!(%id, body_id = %inst.id, "listed instrument under another key; skipped")
        }
        Err(e) => tracing::warn!(%id, error = %e, "listed instrument is not valid JSON; skipped"),
    }
}

/// The ids users added (the `watched` bucket), as a channel that changes whenever one is
/// added or removed. The follower runs until `cancel`.
pub fn follow_watched(
    bus: Bus,
    cancel: CancellationToken,
) -> watch::Receiver<BTreeSet<InstrumentId>> {
    let (tx, rx) = watch::channel(BTreeSet::new());
    tokio::spawn(async move {
        loop {
            match bus.follow(Bucket::Watched).await {
                Ok(changes) => {
                    let mut changes = std::pin::pin!(changes);
                    loop {
                        let change = tokio::select! {
                            _ = cancel.cancelled() => return,
                            c = changes.next() => c,
                        };
                        match change {
                            Some(Change::Put(id, _)) => {
                                tx.send_if_modified(|set| set.insert(id));
                            }
                            Some(Change::Removed(id)) => {
                                tx.send_if_modified(|set| set.remove(&id));
                            }
                            None => break,
                        }
                    }
                }
                Err(e) => tracing::warn!(error = %e, "cannot follow the watched instruments"),
            }
            tokio::select! {
                _ = cancel.cancelled() => return,
                _ = tokio::time::sleep(REFOLLOW_DELAY) => {}
            }
        }
    });
    rx
}

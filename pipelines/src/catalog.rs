//! Instruments beyond `instruments.toml`: sources publish what they list (Upbit's KRW markets,
//! with Korean and English names; KRX codes and US tickers KIS found on demand) and the edge
//! records what users subscribe to, both in the key-value buckets of [`sise_bus::catalog`].
//! Every process follows them here:
//!
//! - [`follow_listed`] keeps a [`Registry`]'s listed instruments current, and its rejected ids
//!   (a watched id the checking source did not find), so the edge can search, validate and
//!   label them (`GET /api/v1/instruments`, WebSocket subscribe) and refuse a rejected one;
//! - [`follow_watched`] gives a source the set of user-added ids (minus rejected ones) as a
//!   `watch` channel, so it subscribes to a new market without a restart and without dropping
//!   the others.
//!
//! An id nobody lists yet but of a shape a source checks on demand ([`candidate`]: a KRX
//! code, a US ticker) goes candidate → watched → checked by that source → listed (it starts
//! publishing) or rejected (every edge answers `unknown_instrument`).
//!
//! A follower whose watch ends (NATS reconnecting) opens it again; a bad entry is logged and
//! skipped.

use std::collections::BTreeSet;
use std::sync::Arc;

use bytes::Bytes;
use futures::StreamExt;
use sise_bus::catalog::{Bucket, Change, WatchEntry, REFOLLOW_DELAY};
use sise_bus::{Bus, InstrumentId};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use crate::{Instrument, Registry};

/// The JSON a source writes for a listed instrument (the shape `/api/v1/instruments` shows).
pub fn listing_json(inst: &Instrument) -> Bytes {
    Bytes::from(serde_json::to_vec(inst).unwrap_or_default())
}

/// An id no one lists yet that a source checks on demand, as its provisional instrument
/// (named by its code): a 6-digit KRX code or a US ticker, which KIS serves
/// ([`crate::kis::candidate`]).
pub fn candidate(id: &InstrumentId) -> Option<Instrument> {
    crate::kis::candidate(id)
}

/// Apply every change of `bucket` to `apply` until `cancel`, re-following after an end.
async fn follow_each(
    bus: Bus,
    bucket: Bucket,
    cancel: CancellationToken,
    mut apply: impl FnMut(Change),
) {
    loop {
        match bus.follow(bucket).await {
            Ok(changes) => {
                let mut changes = std::pin::pin!(changes);
                loop {
                    let change = tokio::select! {
                        _ = cancel.cancelled() => return,
                        c = changes.next() => c,
                    };
                    match change {
                        Some(c) => apply(c),
                        None => break,
                    }
                }
            }
            Err(e) => {
                tracing::warn!(bucket = ?bucket, error = %e, "cannot follow a catalog bucket")
            }
        }
        tokio::select! {
            _ = cancel.cancelled() => return,
            _ = tokio::time::sleep(REFOLLOW_DELAY) => {}
        }
    }
}

/// Keep `registry`'s listed and rejected instruments in step with the buckets until `cancel`.
/// `on_rejected` runs once for each newly rejected id (the edge tells its subscribers).
pub async fn follow_listed(
    bus: Bus,
    registry: Arc<Registry>,
    cancel: CancellationToken,
    on_rejected: impl Fn(&InstrumentId, &str) + Send + 'static,
) {
    let listed = {
        let registry = registry.clone();
        follow_each(
            bus.clone(),
            Bucket::Listed,
            cancel.clone(),
            move |c| match c {
                Change::Put(id, json) => apply_listing(&registry, &id, &json),
                Change::Removed(id) => registry.remove_listed(&id),
            },
        )
    };
    // Ids already told (the source may have recorded the rejection in a shared registry).
    let mut told: std::collections::HashSet<InstrumentId> = std::collections::HashSet::new();
    let rejected = follow_each(bus, Bucket::Watched, cancel, move |c| match c {
        Change::Put(id, value) => {
            let why = WatchEntry::parse(&value).rejected;
            registry.set_rejected(&id, why.clone());
            match why {
                Some(why) if told.insert(id.clone()) => on_rejected(&id, &why),
                Some(_) => {}
                None => {
                    told.remove(&id);
                }
            }
        }
        Change::Removed(id) => {
            told.remove(&id);
            registry.set_rejected(&id, None);
        }
    });
    tokio::join!(listed, rejected);
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

/// The ids users added (the `watched` bucket, without the rejected ones), as a channel that
/// changes whenever one is added, rejected or removed. The follower runs until `cancel`.
pub fn follow_watched(
    bus: Bus,
    cancel: CancellationToken,
) -> watch::Receiver<BTreeSet<InstrumentId>> {
    let (tx, rx) = watch::channel(BTreeSet::new());
    tokio::spawn(follow_each(
        bus,
        Bucket::Watched,
        cancel,
        move |c| match c {
            Change::Put(id, value) if WatchEntry::parse(&value).rejected.is_none() => {
                tx.send_if_modified(|set| set.insert(id));
            }
            Change::Put(id, _) | Change::Removed(id) => {
                tx.send_if_modified(|set| set.remove(&id));
            }
        },
    ));
    rx
}

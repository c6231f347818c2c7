//! Instruments beyond the registry, kept in two JetStream key-value buckets per namespace, so
//! every `sise` process (edge, ingest, project) learns them without talking to the others:
//!
//! - **listed** (`ns_LISTED`): what a source lists and a user could add, keyed by instrument id,
//!   the value the instrument's JSON as `GET /api/v1/instruments` shows it (Upbit's KRW markets
//!   from `/market/all`, with their Korean and English names). Written by the source on each
//!   market-list refresh; read by the edge (search, validation) through [`Bus::follow_listed`].
//! - **watched** (`ns_WATCH`): ids outside the registry that a user subscribed to. Written by
//!   the edge on the first subscription of such an id; followed by the sources, which start
//!   publishing it without a restart and without dropping the others. The value is a
//!   [`WatchEntry`]: when it was added and, for an id a source checked on demand and did not
//!   find (a KRX code or US ticker KIS does not know), why it was rejected.
//!
//! Both buckets keep one value per key (history 1) on file storage; a followed bucket first
//! yields every current key, then each change as it happens.

use std::time::Duration;

use async_nats::jetstream::kv;
use bytes::Bytes;
use futures::{Stream, StreamExt};

use crate::{Bus, BusError, InstrumentId};

/// Which bucket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Bucket {
    Listed,
    Watched,
}

impl Bucket {
    fn suffix(self) -> &'static str {
        match self {
            Bucket::Listed => "LISTED",
            Bucket::Watched => "WATCH",
        }
    }
}

/// The value of a watched id (JSON). A value that is not this shape (older sise wrote the bare
/// time) reads as a plain, unrejected watch.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct WatchEntry {
    /// When a user first added it (Unix ms).
    #[serde(default)]
    pub added_ms: i64,
    /// Set when the source that checks such ids found none: the reason, shown to the user.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rejected: Option<String>,
}

impl WatchEntry {
    /// Read a watched value, tolerating any older or foreign shape.
    pub fn parse(value: &[u8]) -> WatchEntry {
        serde_json::from_slice(value).unwrap_or_default()
    }

    fn to_bytes(&self) -> Bytes {
        Bytes::from(serde_json::to_vec(self).unwrap_or_default())
    }
}

/// One change of a followed bucket.
#[derive(Debug, Clone, PartialEq)]
pub enum Change {
    Put(InstrumentId, Bytes),
    Removed(InstrumentId),
}

impl Bus {
    /// The bucket's name in this namespace (`ns_LISTED`, `ns_WATCH`).
    pub fn bucket_name(&self, bucket: Bucket) -> String {
        format!("{}_{}", self.ns.as_str(), bucket.suffix())
    }

    /// Open the bucket, creating it when missing. The bucket's stream (`KV_<bucket>`) is
    /// created here with the stream API, as the key-value convention lays it out (one value per
    /// key, rollups allowed, deletes denied, direct gets), so it works on NATS 2.9 too, whose
    /// answer to the client's own create call this client version cannot parse.
    pub async fn bucket(&self, bucket: Bucket) -> Result<kv::Store, BusError> {
        use async_nats::jetstream::stream;
        let name = self.bucket_name(bucket);
        self.js
            .get_or_create_stream(stream::Config {
                name: format!("KV_{name}"),
                subjects: vec![format!("$KV.{name}.>")],
                max_messages_per_subject: 1,
                storage: stream::StorageType::File,
                allow_rollup: true,
                deny_delete: true,
                allow_direct: true,
                discard: stream::DiscardPolicy::New,
                duplicate_window: Duration::from_secs(120),
                ..Default::default()
            })
            .await
            .map_err(BusError::nats)?;
        self.js.get_key_value(&name).await.map_err(BusError::nats)
    }

    /// Write (or overwrite) a listed instrument's JSON.
    pub async fn put_listed(&self, id: &InstrumentId, json: Bytes) -> Result<(), BusError> {
        let store = self.bucket(Bucket::Listed).await?;
        store.put(id.as_str(), json).await.map_err(BusError::nats)?;
        Ok(())
    }

    /// Write many listed instruments, skipping the ones whose JSON is unchanged.
    pub async fn put_listed_all(&self, items: &[(InstrumentId, Bytes)]) -> Result<usize, BusError> {
        let store = self.bucket(Bucket::Listed).await?;
        let mut written = 0;
        for (id, json) in items {
            let same = matches!(store.get(id.as_str()).await, Ok(Some(old)) if old == *json);
            if !same {
                store
                    .put(id.as_str(), json.clone())
                    .await
                    .map_err(BusError::nats)?;
                written += 1;
            }
        }
        Ok(written)
    }

    /// Mark an id as watched (idempotent: an id already watched is left as is).
    pub async fn watch_instrument(&self, id: &InstrumentId) -> Result<(), BusError> {
        let store = self.bucket(Bucket::Watched).await?;
        if matches!(store.get(id.as_str()).await, Ok(Some(_))) {
            return Ok(());
        }
        let entry = WatchEntry {
            added_ms: crate::now_ms(),
            rejected: None,
        };
        store
            .put(id.as_str(), entry.to_bytes())
            .await
            .map_err(BusError::nats)?;
        Ok(())
    }

    /// Record that the source checking a watched id found no such instrument: every edge then
    /// answers `unknown_instrument` for it, with `reason`. It stays rejected (a later
    /// [`Bus::watch_instrument`] leaves it as is).
    pub async fn reject_watched(&self, id: &InstrumentId, reason: &str) -> Result<(), BusError> {
        let store = self.bucket(Bucket::Watched).await?;
        let added_ms = match store.get(id.as_str()).await {
            Ok(Some(old)) => WatchEntry::parse(&old).added_ms,
            _ => crate::now_ms(),
        };
        let entry = WatchEntry {
            added_ms,
            rejected: Some(reason.chars().take(200).collect()),
        };
        store
            .put(id.as_str(), entry.to_bytes())
            .await
            .map_err(BusError::nats)?;
        Ok(())
    }

    /// Every current key of the bucket, then each change as it happens. Keys that are not
    /// instrument ids are skipped (logged). Ends when the connection does.
    pub async fn follow(
        &self,
        bucket: Bucket,
    ) -> Result<impl Stream<Item = Change> + Send + 'static, BusError> {
        let store = self.bucket(bucket).await?;
        let watch = store
            .watch_with_history(">")
            .await
            .map_err(BusError::nats)?;
        Ok(watch.filter_map(|entry| async move {
            let entry = match entry {
                Ok(e) => e,
                Err(e) => {
                    tracing::warn!(error = %e, "key-value watch error; entry skipped");
                    return None;
                }
            };
            let Ok(id) = InstrumentId::parse(&entry.key) else {
                tracing::warn!(key = %entry.key, "key-value key is not an instrument id; skipped");
                return None;
            };
            Some(match entry.operation {
                kv::Operation::Put => Change::Put(id, entry.value),
                kv::Operation::Delete | kv::Operation::Purge => Change::Removed(id),
            })
        }))
    }
}

/// How long a follower waits before re-opening a watch that ended (NATS reconnecting).
pub const REFOLLOW_DELAY: Duration = Duration::from_secs(1);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Namespace;

    fn first_value(c: &Change) -> Bytes {
        match c {
            Change::Put(_, v) => v.clone(),
            Change::Removed(_) => Bytes::new(),
        }
    }

    /// Against the NATS on localhost (`SISE_NATS_URL` or 127.0.0.1:4222), in its own namespace.
    #[tokio::test]
    async fn listed_and_watched_round_trip_and_follow() {
        let url = std::env::var("SISE_NATS_URL").unwrap_or_else(|_| "nats://127.0.0.1:4222".into());
        let ns = Namespace::parse(&format!(
            "t_{}",
            &uuid::Uuid::new_v4().simple().to_string()[..12]
        ))
        .unwrap();
        let bus = Bus::connect(&url, ns.clone()).await.expect("NATS");
        let btc = InstrumentId::parse("crypto.upbit.KRW-BTC").unwrap();
        let doge = InstrumentId::parse("crypto.upbit.KRW-DOGE").unwrap();
        let items = vec![
            (btc.clone(), Bytes::from_static(b"{\"a\":1}")),
            (doge.clone(), Bytes::from_static(b"{\"b\":2}")),
        ];
        assert_eq!(bus.put_listed_all(&items).await.expect("put"), 2);
        assert_eq!(
            bus.put_listed_all(&items).await.expect("put again"),
            0,
            "unchanged values are not rewritten"
        );

        let follow = bus.follow(Bucket::Listed).await.expect("follow");
        let mut follow = std::pin::pin!(follow);
        let mut got = Vec::new();
        for _ in 0..2 {
            got.push(
                tokio::time::timeout(Duration::from_secs(5), follow.next())
                    .await
                    .expect("entry")
                    .expect("open"),
            );
        }
        assert!(got.contains(&Change::Put(btc.clone(), Bytes::from_static(b"{\"a\":1}"))));
        assert!(got.contains(&Change::Put(doge.clone(), Bytes::from_static(b"{\"b\":2}"))));
        // A change after the history arrives live.
        bus.put_listed(&doge, Bytes::from_static(b"{\"b\":3}"))
            .await
            .expect("put");
        let next = tokio::time::timeout(Duration::from_secs(5), follow.next())
            .await
            .expect("live")
            .expect("open");
        assert_eq!(
            next,
            Change::Put(doge.clone(), Bytes::from_static(b"{\"b\":3}"))
        );

        bus.watch_instrument(&doge).await.expect("watch");
        bus.watch_instrument(&doge)
            .await
            .expect("watch twice is fine");
        let watched = bus.follow(Bucket::Watched).await.expect("follow watched");
        let mut watched = std::pin::pin!(watched);
        let first = tokio::time::timeout(Duration::from_secs(5), watched.next())
            .await
            .expect("entry")
            .expect("open");
        let Change::Put(ref id, ref value) = first else {
            panic!("{first:?}")
        };
        assert_eq!(id, &doge);
        assert_eq!(WatchEntry::parse(value).rejected, None);
        assert!(WatchEntry::parse(value).added_ms > 0);
        // A rejection keeps the time it was added and says why.
        bus.reject_watched(&doge, "no such market")
            .await
            .expect("reject");
        let next = tokio::time::timeout(Duration::from_secs(5), watched.next())
            .await
            .expect("the rejection")
            .expect("open");
        let Change::Put(_, value) = next else {
            panic!("{next:?}")
        };
        let entry = WatchEntry::parse(&value);
        assert_eq!(entry.rejected.as_deref(), Some("no such market"));
        assert_eq!(
            entry.added_ms,
            WatchEntry::parse(&first_value(&first)).added_ms
        );
        assert_eq!(WatchEntry::parse(b"1700000000000"), WatchEntry::default());

        crate::stream::delete_streams(&bus.js, &ns).await.unwrap();
        assert!(
            bus.js
                .get_key_value(bus.bucket_name(Bucket::Listed))
                .await
                .is_err(),
            "cleanup removes the buckets"
        );
    }
}

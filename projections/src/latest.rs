//! The `latest` read model (Redis): the last tick per instrument, with its exchange time and
//! ingest time, so staleness is computed, not guessed.
//!
//! Writer: one Lua script per batch (atomic): a quote replaces the stored one only when it is
//! newer by (exchange time, stream sequence), so redelivered or out-of-order ticks never move a
//! price backwards; the newest tick time per source and the last applied stream sequence are
//! updated in the same script.
//! Reader: `HMGET` of any set of ids in one round trip.

use redis::aio::ConnectionManager;
use serde::{Deserialize, Serialize};
use sise_bus::{Delivered, Handler, InstrumentId, Namespace, Tick};

use crate::ProjectionError;

/// Projection name (durable `ns_latest`, offset key `ns:offset:latest`).
pub const NAME: &str = "latest";

/// A quote's fields as the API shows them (`stale` and `market` are computed when it is read).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Quote {
    pub id: InstrumentId,
    pub price: f64,
    pub prev_close: Option<f64>,
    pub change: Option<f64>,
    pub change_rate: Option<f64>,
    pub volume: f64,
    pub day_volume: Option<f64>,
    pub ts: i64,
    pub ingest_ts: i64,
    pub source: String,
    /// A derived instrument's inputs (id and the exchange time of the value used), so readers
    /// can show their ages; omitted for a market's own quote.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub inputs: Vec<QuoteInput>,
}

/// One input of a derived quote.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct QuoteInput {
    pub id: InstrumentId,
    /// Exchange time of the input's value, epoch ms.
    pub ts: i64,
}

impl Quote {
    pub fn from_tick(tick: &Tick) -> Self {
        Quote {
            id: tick.instrument.clone(),
            price: tick.price,
            prev_close: tick.prev_close,
            change: tick.change,
            change_rate: tick.change_rate,
            volume: tick.volume,
            day_volume: tick.day_volume,
            ts: tick.ts,
            ingest_ts: tick.ingest_ts,
            source: tick.source.to_string(),
            inputs: tick
                .inputs
                .iter()
                .map(|i| QuoteInput {
                    id: i.instrument.clone(),
                    ts: i.ts,
                })
                .collect(),
        }
    }
}

/// A quote as stored: its fields plus the tick's stream sequence.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LatestQuote {
    #[serde(flatten)]
    pub quote: Quote,
    /// Stream sequence of the tick in `ns_TICKS`.
    pub seq: u64,
}

impl LatestQuote {
    pub fn from_tick(tick: &Tick, seq: u64) -> Self {
        LatestQuote {
            quote: Quote::from_tick(tick),
            seq,
        }
    }
}

/// The last stream sequence a Redis projection applied (0 when none).
pub(crate) async fn stored_offset(
    redis: &mut ConnectionManager,
    ns: &Namespace,
    projection: &str,
) -> Result<u64, redis::RedisError> {
    let v: Option<u64> = redis::cmd("GET")
        .arg(ns.redis_offset(projection))
        .query_async(redis)
        .await?;
    Ok(v.unwrap_or(0))
}

/// Ordering key: zero-padded exchange time then stream sequence, compared as strings.
fn order_key(ts: i64, seq: u64) -> String {
    format!("{:015}:{:020}", ts.max(0), seq)
}

const APPLY_LUA: &str = r#"
-- KEYS: 1 latest hash, 2 order hash, 3 offset key, 4 source-last-event hash
-- ARGV: 1 last seq, then per quote: id, order key, json, source, exchange ts
local applied = 0
for i = 2, #ARGV, 5 do
  local id, ord = ARGV[i], ARGV[i + 1]
  local cur = redis.call('HGET', KEYS[2], id)
  if (not cur) or cur < ord then
    redis.call('HSET', KEYS[1], id, ARGV[i + 2])
    redis.call('HSET', KEYS[2], id, ord)
    applied = applied + 1
  end
  local src, ts = ARGV[i + 3], tonumber(ARGV[i + 4])
  local seen = tonumber(redis.call('HGET', KEYS[4], src) or '0')
  if ts > seen then redis.call('HSET', KEYS[4], src, ARGV[i + 4]) end
end
local off = tonumber(redis.call('GET', KEYS[3]) or '0')
if tonumber(ARGV[1]) > off then redis.call('SET', KEYS[3], ARGV[1]) end
return applied
"#;

/// The writer: a [`Handler`] of ticks.
pub struct LatestWriter {
    redis: ConnectionManager,
    keys: LatestKeys,
    script: redis::Script,
}

/// The Redis keys the `latest` model writes: the live ones, or an aside copy for a rebuild.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LatestKeys {
    pub latest: String,
    pub order: String,
    pub offset: String,
    pub sources_last: String,
}

impl LatestKeys {
    pub fn live(ns: &Namespace) -> Self {
        LatestKeys {
            latest: ns.redis_latest(),
            order: ns.redis_latest_order(),
            offset: ns.redis_offset(NAME),
            sources_last: ns.redis_sources_last_event(),
        }
    }

    /// Where `sise project rebuild latest` builds the model before swapping it in.
    pub fn aside(ns: &Namespace) -> Self {
        let live = Self::live(ns);
        LatestKeys {
            latest: ns.redis_aside(&live.latest),
            order: ns.redis_aside(&live.order),
            offset: ns.redis_aside(&live.offset),
            sources_last: ns.redis_aside(&live.sources_last),
        }
    }

    /// The four keys in script order (latest, order, offset, sources_last).
    pub fn all(&self) -> [&str; 4] {
        [&self.latest, &self.order, &self.offset, &self.sources_last]
    }
}

impl LatestWriter {
    pub fn new(redis: ConnectionManager, ns: Namespace) -> Self {
        Self::with_keys(redis, LatestKeys::live(&ns))
    }

    /// A writer of other keys (a rebuild's aside copy).
    pub fn with_keys(redis: ConnectionManager, keys: LatestKeys) -> Self {
        LatestWriter {
            redis,
            keys,
            script: redis::Script::new(APPLY_LUA),
        }
    }

    /// The keys this writer writes.
    pub fn keys(&self) -> &LatestKeys {
        &self.keys
    }

    /// Apply a batch atomically; returns how many stored quotes changed.
    pub async fn apply_batch(&mut self, batch: &[Delivered<Tick>]) -> Result<u64, ProjectionError> {
        let Some(last) = batch.iter().map(|d| d.seq).max() else {
            return Ok(0);
        };
        let mut inv = self.script.prepare_invoke();
        inv.key(&self.keys.latest)
            .key(&self.keys.order)
            .key(&self.keys.offset)
            .key(&self.keys.sources_last)
            .arg(last);
        for d in batch {
            let t = &d.event;
            let json = serde_json::to_string(&LatestQuote::from_tick(t, d.seq))?;
            inv.arg(t.instrument.as_str())
                .arg(order_key(t.ts, d.seq))
                .arg(json)
                .arg(t.source.as_str())
                .arg(t.ts);
        }
        let applied: u64 = inv.invoke_async(&mut self.redis).await?;
        Ok(applied)
    }
}

impl Handler for LatestWriter {
    type Event = Tick;

    async fn last_applied(&mut self) -> Result<u64, sise_bus::consume::BoxError> {
        let v: Option<u64> = redis::cmd("GET")
            .arg(&self.keys.offset)
            .query_async(&mut self.redis)
            .await?;
        Ok(v.unwrap_or(0))
    }

    async fn apply(
        &mut self,
        batch: &[Delivered<Tick>],
    ) -> Result<(), sise_bus::consume::BoxError> {
        self.apply_batch(batch).await?;
        Ok(())
    }
}

/// The reader of the latest model.
#[derive(Clone)]
pub struct LatestReader {
    redis: ConnectionManager,
    ns: Namespace,
}

impl LatestReader {
    pub fn new(redis: ConnectionManager, ns: Namespace) -> Self {
        LatestReader { redis, ns }
    }

    /// The stored quotes of `ids`, in order; `None` where an id has no price yet. A stored value
    /// that does not parse is logged and treated as absent (never a placeholder).
    pub async fn get_many(
        &self,
        ids: &[InstrumentId],
    ) -> Result<Vec<Option<LatestQuote>>, ProjectionError> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let mut cmd = redis::cmd("HMGET");
        cmd.arg(self.ns.redis_latest());
        for id in ids {
            cmd.arg(id.as_str());
        }
        let raw: Vec<Option<String>> = cmd.query_async(&mut self.redis.clone()).await?;
        Ok(raw
            .into_iter()
            .zip(ids)
            .map(|(v, id)| {
                v.and_then(|s| match serde_json::from_str::<LatestQuote>(&s) {
                    Ok(q) => Some(q),
                    Err(e) => {
                        tracing::warn!(instrument = %id, error = %e, "unreadable latest quote");
                        None
                    }
                })
            })
            .collect())
    }

    /// The last stream sequence this model applied.
    pub async fn last_seq(&self) -> Result<u64, ProjectionError> {
        Ok(stored_offset(&mut self.redis.clone(), &self.ns, NAME).await?)
    }
}

/// Delete every Redis key of a namespace (tests and rebuilds).
pub async fn delete_namespace(
    redis: &mut ConnectionManager,
    ns: &Namespace,
) -> Result<(), ProjectionError> {
    let mut cursor: u64 = 0;
    loop {
        let (next, keys): (u64, Vec<String>) = redis::cmd("SCAN")
            .arg(cursor)
            .arg("MATCH")
            .arg(ns.redis_pattern())
            .arg("COUNT")
            .arg(500)
            .query_async(redis)
            .await?;
        if !keys.is_empty() {
            let _: () = redis::cmd("DEL").arg(&keys).query_async(redis).await?;
        }
        if next == 0 {
            return Ok(());
        }
        cursor = next;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn order_keys_sort_by_time_then_sequence() {
        assert!(order_key(1_000, 5) < order_key(1_001, 1));
        assert!(order_key(1_000, 5) < order_key(1_000, 6));
        assert!(order_key(999, 10_000_000) < order_key(1_000, 1));
    }
}

//! The `status` read model (Redis): each source's last reported state, with its last error, and
//! (written by [`crate::latest`]) the exchange time of its newest tick.

use redis::aio::ConnectionManager;
use serde::{Deserialize, Serialize};
use sise_bus::{Delivered, Handler, Namespace, SourceStatus};

use crate::ProjectionError;

/// Projection name (durable `ns_status`).
pub const NAME: &str = "status";

/// One source as `GET /api/v1/sources` returns it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SourceView {
    pub source: String,
    pub state: String,
    pub detail: Option<String>,
    /// Exchange time of the source's newest tick, epoch ms.
    pub last_event_ts: Option<i64>,
    /// The detail of the last degraded or down state, if any.
    pub last_error: Option<String>,
    /// When the state was reported, epoch ms.
    pub ts: i64,
}

const APPLY_LUA: &str = r#"
-- KEYS: 1 sources hash, 2 offset key. ARGV: 1 last seq, then per status: source, json
for i = 2, #ARGV, 2 do
  local src = ARGV[i]
  local new = cjson.decode(ARGV[i + 1])
  local raw = redis.call('HGET', KEYS[1], src)
  local cur = raw and cjson.decode(raw) or nil
  if (not cur) or tonumber(cur.ts) <= tonumber(new.ts) then
    if new.state ~= 'up' then
      new.last_error = new.detail
    elseif cur and cur.last_error then
      new.last_error = cur.last_error
    end
    redis.call('HSET', KEYS[1], src, cjson.encode(new))
  end
end
local off = tonumber(redis.call('GET', KEYS[2]) or '0')
if tonumber(ARGV[1]) > off then redis.call('SET', KEYS[2], ARGV[1]) end
return 1
"#;

#[derive(Serialize)]
struct Stored<'a> {
    state: &'a str,
    detail: &'a str,
    ts: i64,
}

/// The writer: a [`Handler`] of source statuses.
pub struct StatusWriter {
    redis: ConnectionManager,
    ns: Namespace,
    script: redis::Script,
}

impl StatusWriter {
    pub fn new(redis: ConnectionManager, ns: Namespace) -> Self {
        StatusWriter {
            redis,
            ns,
            script: redis::Script::new(APPLY_LUA),
        }
    }
}

impl Handler for StatusWriter {
    type Event = SourceStatus;

    async fn last_applied(&mut self) -> Result<u64, sise_bus::consume::BoxError> {
        Ok(crate::latest::stored_offset(&mut self.redis, &self.ns, NAME).await?)
    }

    async fn apply(
        &mut self,
        batch: &[Delivered<SourceStatus>],
    ) -> Result<(), sise_bus::consume::BoxError> {
        let Some(last) = batch.iter().map(|d| d.seq).max() else {
            return Ok(());
        };
        let mut inv = self.script.prepare_invoke();
        inv.key(self.ns.redis_sources())
            .key(self.ns.redis_offset(NAME))
            .arg(last);
        for d in batch {
            let s = &d.event;
            let json = serde_json::to_string(&Stored {
                state: s.state.as_str(),
                detail: &s.detail,
                ts: s.ts,
            })?;
            inv.arg(s.source.as_str()).arg(json);
        }
        let _: i64 = inv.invoke_async(&mut self.redis).await?;
        Ok(())
    }
}

#[derive(Deserialize)]
struct StoredOwned {
    state: String,
    detail: Option<String>,
    ts: i64,
    last_error: Option<String>,
}

/// Every known source: its last state and the time of its newest tick, sorted by name.
pub async fn sources(
    redis: &ConnectionManager,
    ns: &Namespace,
) -> Result<Vec<SourceView>, ProjectionError> {
    let mut conn = redis.clone();
    type Pairs<V> = Vec<(String, V)>;
    let (states, last): (Pairs<String>, Pairs<i64>) = redis::pipe()
        .cmd("HGETALL")
        .arg(ns.redis_sources())
        .cmd("HGETALL")
        .arg(ns.redis_sources_last_event())
        .query_async(&mut conn)
        .await?;
    let last: std::collections::HashMap<String, i64> = last.into_iter().collect();
    let mut out: Vec<SourceView> = states
        .into_iter()
        .filter_map(
            |(source, raw)| match serde_json::from_str::<StoredOwned>(&raw) {
                Ok(s) => Some(SourceView {
                    last_event_ts: last.get(&source).copied(),
                    source,
                    state: s.state,
                    detail: s.detail.filter(|d| !d.is_empty()),
                    last_error: s.last_error.filter(|d| !d.is_empty()),
                    ts: s.ts,
                }),
                Err(e) => {
                    tracing::warn!(source, error = %e, "unreadable source status");
                    None
                }
            },
        )
        .collect();
    out.sort_by(|a, b| a.source.cmp(&b.source));
    Ok(out)
}

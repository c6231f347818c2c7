//! `sise project rebuild latest|history|news`: drop a read model and rebuild it from the log
//! while the system keeps running.
//!
//! Build aside, then swap:
//! 1. Aside: a PostgreSQL schema `<ns>_rebuild_<model>` (history, news) or Redis keys
//!    `<ns>:rebuild:…` (latest), written by the model's own writer, so the rebuilt model is
//!    computed by exactly the code that builds it live.
//! 2. Preserve what the log no longer holds: when the stream's first sequence is above 1 (the
//!    TICKS age limit dropped old ticks), the rows the live model keeps from before it (ticks and
//!    their candles, news, the last quote of an instrument that has not ticked since) are carried
//!    into the aside model first; everything after comes from the log.
//! 3. Catch up from the log to the stream's end, in batches, with a progress line on stderr.
//! 4. Swap atomically.
//!    - PostgreSQL: one transaction locks the live tables (the live worker's next write waits),
//!      reads how far the live model got, applies that last small gap to the aside tables (it
//!      was caught up just before, so this is at most a batch or two), then moves the live
//!      tables out and the aside tables in (`ALTER TABLE … SET SCHEMA`) and commits. Layouts and
//!      the other model's tables share the schema, so tables move, not the whole schema. The live
//!      worker's blocked statement then runs against the new tables (PostgreSQL resolves the
//!      name again after the lock), and its writes are idempotent (ticks keyed by stream
//!      sequence, candles from inserted rows only), so nothing is lost or counted twice.
//!    - Redis: a Lua script (atomic) renames the aside keys over the live ones only when the
//!      live model is not ahead of the aside one; otherwise the aside catches up again and the
//!      swap is retried. Quotes are newer-wins by (exchange time, sequence), so the live worker
//!      writing on after the swap is harmless.
//!
//! The old model is dropped after the swap. A rebuild never stops the live projection; run one
//! rebuild per model at a time.

use std::sync::atomic::AtomicU64;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use futures::StreamExt;
use redis::aio::ConnectionManager;
use sise_bus::replay::{last_sequence, read_sequences};
use sise_bus::{Bus, Delivered, Handler, Namespace, News, SourceName, StreamKind, Tick};
use sise_projections::latest::{LatestKeys, LatestQuote, LatestWriter};
use sise_projections::{db, history, latest, news};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{ConnectOptions, Connection, PgPool};

use crate::config::Config;

/// A read model that can be rebuilt.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Model {
    Latest,
    History,
    News,
}

impl Model {
    pub fn name(self) -> &'static str {
        match self {
            Model::Latest => latest::NAME,
            Model::History => history::NAME,
            Model::News => news::NAME,
        }
    }

    fn stream(self) -> StreamKind {
        match self {
            Model::News => StreamKind::News,
            _ => StreamKind::Ticks,
        }
    }

    /// The PostgreSQL tables a model owns.
    fn tables(self) -> &'static [&'static str] {
        match self {
            Model::History => &["ticks", "candles_1m"],
            Model::News => &["news"],
            Model::Latest => &[],
        }
    }
}

/// How far a rebuild got (for the progress line).
#[derive(Debug, Clone, Copy)]
pub struct Progress {
    pub done: u64,
    pub total: u64,
    pub elapsed: Duration,
}

/// What a finished rebuild did.
#[derive(Debug, Clone)]
pub struct Report {
    pub model: Model,
    /// Events applied from the log.
    pub events: u64,
    /// Rows or quotes carried over from before the log's first sequence.
    pub preserved: u64,
    /// Messages in the log that did not decode (skipped).
    pub skipped: u64,
    /// The stream sequence the rebuilt model stood at when it was swapped in.
    pub last_seq: u64,
    pub elapsed: Duration,
}

/// A progress line on stderr: `rebuild history: 512,000 / 1,000,000 events (51.2 %), 85,311/s`.
pub fn stderr_progress(model: Model) -> impl FnMut(Progress) + Send {
    let mut last = Instant::now() - Duration::from_secs(1);
    move |p: Progress| {
        let finished = p.done >= p.total;
        if !finished && last.elapsed() < Duration::from_millis(200) {
            return;
        }
        last = Instant::now();
        let pct = if p.total == 0 {
            100.0
        } else {
            p.done as f64 * 100.0 / p.total as f64
        };
        let rate = p.done as f64 / p.elapsed.as_secs_f64().max(1e-3);
        eprint!(
            "\rrebuild {}: {} / {} events ({pct:.1} %), {}/s   ",
            model.name(),
            thousands(p.done),
            thousands(p.total),
            thousands(rate as u64)
        );
        if finished {
            eprintln!();
        }
    }
}

/// `1234567` → `1,234,567`.
pub fn thousands(n: u64) -> String {
    let s = n.to_string();
    let mut out = String::with_capacity(s.len() + s.len() / 3);
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// Rebuild `model` of `config`'s namespace from the log, then swap it in.
pub async fn rebuild(
    config: &Config,
    model: Model,
    mut progress: impl FnMut(Progress) + Send,
) -> anyhow::Result<Report> {
    let bus = Bus::connect(&config.nats_url, config.namespace.clone())
        .await
        .context("connecting to NATS (SISE_NATS_URL)")?;
    let batch = config.projection_batch.max(1) as usize;
    let started = Instant::now();
    let mut r = Rebuild {
        bus,
        model,
        batch,
        started,
        applied: 0,
        skipped: Arc::new(AtomicU64::new(0)),
    };
    let (events, preserved, last_seq) = match model {
        Model::Latest => {
            let redis = crate::app::connect_redis(&config.redis_url).await?;
            r.latest(redis, &mut progress).await?
        }
        Model::History | Model::News => {
            let live = db::connect(config.database_url(), &config.namespace, 4)
                .await
                .context("connecting to PostgreSQL (SISE_DATABASE_URL)")?;
            r.postgres(
                config.database_url(),
                &config.namespace,
                live,
                &mut progress,
            )
            .await?
        }
    };
    Ok(Report {
        model,
        events,
        preserved,
        skipped: r.skipped.load(std::sync::atomic::Ordering::Relaxed),
        last_seq,
        elapsed: started.elapsed(),
    })
}

struct Rebuild {
    bus: Bus,
    model: Model,
    batch: usize,
    started: Instant,
    applied: u64,
    skipped: Arc<AtomicU64>,
}

/// The schema a model is built in before the swap (and where the old one goes after it).
fn aside_schema(ns: &Namespace, model: Model) -> String {
    format!("{}_rebuild_{}", ns.pg_schema(), model.name())
}

fn old_schema(ns: &Namespace, model: Model) -> String {
    format!("{}_old_{}", ns.pg_schema(), model.name())
}

async fn exec(conn: &mut sqlx::PgConnection, sql: String) -> Result<(), sqlx::Error> {
    sqlx::query(sqlx::AssertSqlSafe(sql))
        .execute(conn)
        .await
        .map(|_| ())
}

/// A pool whose connections write in `schema`, with the migrations applied there.
async fn aside_pool(url: &str, schema: &str) -> anyhow::Result<PgPool> {
    let base: PgConnectOptions = url.parse()?;
    let base = base.log_statements(tracing::log::LevelFilter::Debug);
    let mut conn = sqlx::PgConnection::connect_with(&base).await?;
    // Names built from the namespace grammar ([a-z][a-z0-9_]*) and fixed words: safe identifiers.
    exec(&mut conn, format!("DROP SCHEMA IF EXISTS {schema} CASCADE")).await?;
    exec(&mut conn, format!("CREATE SCHEMA {schema}")).await?;
    conn.close().await?;
    let pool = PgPoolOptions::new()
        .max_connections(2)
        .acquire_timeout(Duration::from_secs(10))
        .connect_with(base.options([("search_path", schema)]))
        .await?;
    db::MIGRATOR.run(&pool).await?;
    Ok(pool)
}

impl Rebuild {
    fn report(&self, progress: &mut (impl FnMut(Progress) + Send), total: u64) {
        progress(Progress {
            done: self.applied.min(total),
            total,
            elapsed: self.started.elapsed(),
        });
    }

    /// Apply the log's events `from..=to` with `apply`, in batches.
    async fn catch_up<E, F>(
        &mut self,
        from: u64,
        to: u64,
        total: u64,
        progress: &mut (impl FnMut(Progress) + Send),
        mut apply: F,
    ) -> anyhow::Result<()>
    where
        E: sise_bus::codec::Event,
        F: AsyncFnMut(&[Delivered<E>]) -> anyhow::Result<()>,
    {
        if to < from {
            return Ok(());
        }
        let events = read_sequences::<E>(
            &self.bus,
            self.model.stream(),
            from,
            to,
            self.skipped.clone(),
        )
        .await?;
        let mut chunks = events.ready_chunks(self.batch);
        let mut buf: Vec<Delivered<E>> = Vec::with_capacity(self.batch);
        while let Some(chunk) = chunks.next().await {
            for item in chunk {
                buf.push(item.context("reading the log")?);
            }
            if buf.len() >= self.batch / 2 || buf.last().is_some_and(|d| d.seq >= to) {
                apply(&buf).await?;
                self.applied += buf.len() as u64;
                buf.clear();
                self.report(progress, total);
            }
        }
        if !buf.is_empty() {
            apply(&buf).await?;
            self.applied += buf.len() as u64;
            self.report(progress, total);
        }
        Ok(())
    }

    /// history / news: build in an aside schema, swap the tables in one transaction.
    async fn postgres(
        &mut self,
        url: &str,
        ns: &Namespace,
        live: PgPool,
        progress: &mut (impl FnMut(Progress) + Send),
    ) -> anyhow::Result<(u64, u64, u64)> {
        let model = self.model;
        let aside_name = aside_schema(ns, model);
        let old_name = old_schema(ns, model);
        let live_schema = ns.pg_schema().to_owned();
        let aside = aside_pool(url, &aside_name).await?;
        let (first, last) = last_sequence(&self.bus, model.stream()).await?;

        // 2. What the log no longer holds, from the live model.
        let preserved = if first > 1 {
            self.preserve_pg(&live, &aside, &live_schema, first).await?
        } else {
            0
        };

        // 3. From the log up to its end as of now, then again until close to the live model.
        let base = first.max(1);
        let mut at = base - 1;
        let mut target = last;
        for _ in 0..50 {
            self.apply_pg(
                &aside,
                at + 1,
                target,
                (target + 1).saturating_sub(base),
                progress,
            )
            .await?;
            at = at.max(target);
            // Where the live model is now: get within a batch of it before taking the lock.
            let live_at = db::last_seq(&live, model.name()).await?;
            if live_at <= at + self.batch as u64 {
                break;
            }
            target = live_at;
        }

        // 4. Swap under the live tables' lock.
        let mut tx = aside.begin().await?;
        let tables: Vec<String> = model
            .tables()
            .iter()
            .map(|t| format!("{live_schema}.{t}"))
            .collect();
        exec(
            &mut tx,
            format!(
                "LOCK TABLE {}, {live_schema}.projection_offsets IN EXCLUSIVE MODE",
                tables.join(", ")
            ),
        )
        .await?;
        let live_at: Option<(i64,)> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT last_seq FROM {live_schema}.projection_offsets WHERE name = $1"
        )))
        .bind(model.name())
        .fetch_optional(&mut *tx)
        .await?;
        let live_at = live_at.map(|r| r.0.max(0) as u64).unwrap_or(0);
        if live_at > at {
            // The last gap, applied inside the swap transaction (search_path = the aside schema).
            let from = at + 1;
            match model {
                Model::History => {
                    let events = read_sequences::<Tick>(
                        &self.bus,
                        StreamKind::Ticks,
                        from,
                        live_at,
                        self.skipped.clone(),
                    )
                    .await?;
                    let mut chunks = events.ready_chunks(self.batch);
                    while let Some(chunk) = chunks.next().await {
                        let batch: Vec<Delivered<Tick>> =
                            chunk.into_iter().collect::<Result<_, _>>()?;
                        history::HistoryWriter::apply_tx(&mut tx, &batch).await?;
                        self.applied += batch.len() as u64;
                    }
                }
                Model::News => {
                    let events = read_sequences::<News>(
                        &self.bus,
                        StreamKind::News,
                        from,
                        live_at,
                        self.skipped.clone(),
                    )
                    .await?;
                    let mut chunks = events.ready_chunks(self.batch);
                    while let Some(chunk) = chunks.next().await {
                        let batch: Vec<Delivered<News>> =
                            chunk.into_iter().collect::<Result<_, _>>()?;
                        news::NewsWriter::apply_tx(&mut tx, &batch).await?;
                        self.applied += batch.len() as u64;
                    }
                }
                Model::Latest => bail!("latest is not a PostgreSQL model"),
            }
            at = live_at;
        }
        exec(&mut tx, format!("DROP SCHEMA IF EXISTS {old_name} CASCADE")).await?;
        exec(&mut tx, format!("CREATE SCHEMA {old_name}")).await?;
        for t in model.tables() {
            exec(
                &mut tx,
                format!("ALTER TABLE {live_schema}.{t} SET SCHEMA {old_name}"),
            )
            .await?;
            exec(
                &mut tx,
                format!("ALTER TABLE {aside_name}.{t} SET SCHEMA {live_schema}"),
            )
            .await?;
        }
        // The model's offset: where the swapped-in tables stand (never backwards).
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "INSERT INTO {live_schema}.projection_offsets (name, last_seq) VALUES ($1, $2)
             ON CONFLICT (name) DO UPDATE SET last_seq = GREATEST({live_schema}.projection_offsets.last_seq, EXCLUDED.last_seq), updated_at = now()"
        )))
        .bind(model.name())
        .bind(at as i64)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        aside.close().await;
        // The old tables and the emptied aside schema go after the commit.
        let base: PgConnectOptions = url.parse()?;
        let mut c = sqlx::PgConnection::connect_with(&base).await?;
        exec(&mut c, format!("DROP SCHEMA IF EXISTS {old_name} CASCADE")).await?;
        exec(
            &mut c,
            format!("DROP SCHEMA IF EXISTS {aside_name} CASCADE"),
        )
        .await?;
        c.close().await?;
        self.report(progress, self.applied);
        Ok((self.applied, preserved, at))
    }

    async fn apply_pg(
        &mut self,
        aside: &PgPool,
        from: u64,
        to: u64,
        total: u64,
        progress: &mut (impl FnMut(Progress) + Send),
    ) -> anyhow::Result<()> {
        match self.model {
            Model::History => {
                let w = history::HistoryWriter::new(aside.clone());
                self.catch_up::<Tick, _>(from, to, total, progress, async |b| {
                    Ok(w.apply_batch(b).await?)
                })
                .await
            }
            Model::News => {
                let mut w = news::NewsWriter::new(aside.clone());
                self.catch_up::<News, _>(from, to, total, progress, async |b| {
                    w.apply(b).await.map_err(|e| anyhow::anyhow!(e))
                })
                .await
            }
            Model::Latest => bail!("latest is not a PostgreSQL model"),
        }
    }

    /// Carry the live rows from before the log's first sequence into the aside schema.
    async fn preserve_pg(
        &mut self,
        live: &PgPool,
        aside: &PgPool,
        live_schema: &str,
        first: u64,
    ) -> anyhow::Result<u64> {
        match self.model {
            Model::News => {
                let r = sqlx::query(sqlx::AssertSqlSafe(format!(
                    "INSERT INTO news SELECT * FROM {live_schema}.news WHERE seq < $1"
                )))
                .bind(first as i64)
                .execute(aside)
                .await?;
                Ok(r.rows_affected())
            }
            Model::History => {
                // Re-apply the kept tick rows through the writer, so their candles are computed
                // exactly as live.
                let w = history::HistoryWriter::new(aside.clone());
                let mut after = 0i64;
                let mut n = 0u64;
                loop {
                    type Row = (
                        i64,
                        String,
                        i64,
                        f64,
                        f64,
                        Option<f64>,
                        Option<f64>,
                        String,
                        String,
                        i64,
                    );
                    let rows: Vec<Row> = sqlx::query_as(
                        "SELECT seq, instrument, ts, price, volume, day_volume, prev_close, source,
                                source_seq::text, ingest_ts
                         FROM ticks WHERE seq > $1 AND seq < $2 ORDER BY seq LIMIT $3",
                    )
                    .bind(after)
                    .bind(first as i64)
                    .bind(self.batch as i64)
                    .fetch_all(live)
                    .await?;
                    let Some(last) = rows.last().map(|r| r.0) else {
                        break;
                    };
                    let mut batch = Vec::with_capacity(rows.len());
                    for r in rows {
                        let (Ok(instrument), Ok(source)) =
                            (sise_bus::InstrumentId::parse(&r.1), SourceName::parse(&r.7))
                        else {
                            continue;
                        };
                        batch.push(Delivered {
                            seq: r.0 as u64,
                            subject: String::new(),
                            event: Tick {
                                v: sise_bus::SCHEMA_VERSION,
                                instrument,
                                price: r.3,
                                prev_close: r.6,
                                change: None,
                                change_rate: None,
                                volume: r.4,
                                day_volume: r.5,
                                ts: r.2,
                                ingest_ts: r.9,
                                source,
                                seq: r.8.parse().unwrap_or(0),
                                backfill: false,
                                inputs: Vec::new(),
                            },
                        });
                    }
                    n += batch.len() as u64;
                    w.apply_batch(&batch).await?;
                    after = last;
                }
                Ok(n)
            }
            Model::Latest => Ok(0),
        }
    }

    /// latest: build under aside Redis keys, swap with a Lua script.
    async fn latest(
        &mut self,
        mut redis: ConnectionManager,
        progress: &mut (impl FnMut(Progress) + Send),
    ) -> anyhow::Result<(u64, u64, u64)> {
        let ns = self.bus.ns.clone();
        let live = LatestKeys::live(&ns);
        let aside = LatestKeys::aside(&ns);
        let _: () = redis::cmd("DEL")
            .arg(&aside.all()[..])
            .query_async(&mut redis)
            .await?;
        let (first, last) = last_sequence(&self.bus, StreamKind::Ticks).await?;
        let base = first.max(1);
        let preserved = if first > 1 {
            preserve_latest(&mut redis, &live, &aside, first).await?
        } else {
            0
        };
        let mut writer = LatestWriter::with_keys(redis.clone(), aside.clone());
        let mut at = base - 1;
        let mut target = last;
        let swap = redis::Script::new(SWAP_LUA);
        for attempt in 0..200 {
            if target > at {
                let total = (target + 1).saturating_sub(base);
                self.catch_up::<Tick, _>(at + 1, target, total, progress, async |b| {
                    writer.apply_batch(b).await?;
                    Ok(())
                })
                .await?;
                at = target;
            }
            let _: () = redis::cmd("SET")
                .arg(&aside.offset)
                .arg(at)
                .query_async(&mut redis)
                .await?;
            let mut inv = swap.prepare_invoke();
            for k in live.all().iter().chain(aside.all().iter()) {
                inv.key(*k);
            }
            inv.arg(at);
            let answer: i64 = inv.invoke_async(&mut redis).await?;
            if answer < 0 {
                self.report(progress, self.applied);
                return Ok((self.applied, preserved, at));
            }
            // The live model moved past the aside one: catch up to it and try again.
            tracing::debug!(attempt, live = answer, aside = at, "latest swap retried");
            target = answer as u64;
        }
        bail!("the live latest model kept moving ahead of the rebuild; try again when it is calmer")
    }
}

/// Swap the aside `latest` keys in when the live model is not ahead of them.
/// KEYS 1-4 live (latest, order, offset, sources_last), 5-8 aside; ARGV 1 the aside offset.
const SWAP_LUA: &str = r#"
local live = tonumber(redis.call('GET', KEYS[3]) or '0')
if live > tonumber(ARGV[1]) then return live end
for i = 1, 4 do
  if redis.call('EXISTS', KEYS[i + 4]) == 1 then
    redis.call('RENAME', KEYS[i + 4], KEYS[i])
  else
    redis.call('DEL', KEYS[i])
  end
end
return -1
"#;

/// Copy the live quotes whose tick is older than the log's first sequence (instruments that have
/// not ticked within the retention) and the sources' newest tick times into the aside keys.
async fn preserve_latest(
    redis: &mut ConnectionManager,
    live: &LatestKeys,
    aside: &LatestKeys,
    first: u64,
) -> anyhow::Result<u64> {
    let quotes: Vec<(String, String)> = redis::cmd("HGETALL")
        .arg(&live.latest)
        .query_async(redis)
        .await?;
    let mut n = 0;
    for (id, json) in quotes {
        let Ok(q) = serde_json::from_str::<LatestQuote>(&json) else {
            continue;
        };
        if q.seq >= first {
            continue;
        }
        let ord: Option<String> = redis::cmd("HGET")
            .arg(&live.order)
            .arg(&id)
            .query_async(redis)
            .await?;
        let mut pipe = redis::pipe();
        pipe.atomic().hset(&aside.latest, &id, &json);
        if let Some(ord) = ord {
            pipe.hset(&aside.order, &id, ord);
        }
        let _: () = pipe.query_async(redis).await?;
        n += 1;
    }
    let sources: Vec<(String, String)> = redis::cmd("HGETALL")
        .arg(&live.sources_last)
        .query_async(redis)
        .await?;
    for (src, ts) in sources {
        let _: () = redis::cmd("HSET")
            .arg(&aside.sources_last)
            .arg(src)
            .arg(ts)
            .query_async(redis)
            .await?;
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thousands_separators() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1_000), "1,000");
        assert_eq!(thousands(1_234_567), "1,234,567");
    }

    #[test]
    fn aside_names() {
        let ns = Namespace::parse("test_abc").unwrap();
        assert_eq!(
            aside_schema(&ns, Model::History),
            "test_abc_rebuild_history"
        );
        assert_eq!(old_schema(&ns, Model::News), "test_abc_old_news");
    }
}

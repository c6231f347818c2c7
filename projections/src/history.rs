//! The `history` read model (PostgreSQL): every tick, and 1-minute OHLCV candles.
//!
//! Writer: one statement per batch inserts the ticks (`UNNEST`, keyed by stream sequence, so a
//! redelivered tick is skipped) and upserts the candles from exactly the rows it inserted; the
//! batch's last sequence is stored in the same transaction.
//! Reader: candles of any interval, derived from the 1-minute rows; daily and weekly buckets
//! follow the instrument's market time zone (KRX days start at 00:00 KST, Upbit's at 09:00 KST).

use std::fmt;
use std::str::FromStr;

use serde::Serialize;
use sise_bus::{Delivered, Handler, InstrumentId, Tick};
use sqlx::PgPool;

use crate::{db, ProjectionError};

/// Projection name (durable `ns_history`, offset row `history`).
pub const NAME: &str = "history";

/// The writer: a [`Handler`] of ticks.
pub struct HistoryWriter {
    pool: PgPool,
}

impl HistoryWriter {
    pub fn new(pool: PgPool) -> Self {
        HistoryWriter { pool }
    }
}

const APPLY_SQL: &str = r#"
WITH input AS (
    SELECT * FROM UNNEST($1::bigint[], $2::text[], $3::bigint[], $4::float8[], $5::float8[],
                         $6::float8[], $7::float8[], $8::text[], $9::text[], $10::bigint[])
        AS u(seq, instrument, ts, price, volume, day_volume, prev_close, source, source_seq, ingest_ts)
), ins AS (
    INSERT INTO ticks (seq, instrument, ts, price, volume, day_volume, prev_close, source, source_seq, ingest_ts)
    SELECT seq, instrument, ts, price, volume, day_volume, prev_close, source, source_seq::numeric, ingest_ts
    FROM input
    ON CONFLICT (seq) DO NOTHING
    RETURNING seq, instrument, ts, price, volume
), agg AS (
    SELECT instrument,
           ts - (ts % 60000) AS t,
           (array_agg(price ORDER BY ts, seq))[1]           AS o,
           max(price)                                       AS h,
           min(price)                                       AS l,
           (array_agg(price ORDER BY ts DESC, seq DESC))[1] AS c,
           sum(volume)                                      AS v,
           count(*)::int                                    AS n,
           min(ts)                                          AS o_ts,
           (array_agg(seq ORDER BY ts, seq))[1]             AS o_seq,
           max(ts)                                          AS c_ts,
           (array_agg(seq ORDER BY ts DESC, seq DESC))[1]   AS c_seq
    FROM ins
    GROUP BY 1, 2
)
INSERT INTO candles_1m AS k (instrument, t, o, h, l, c, v, n, o_ts, o_seq, c_ts, c_seq)
SELECT instrument, t, o, h, l, c, v, n, o_ts, o_seq, c_ts, c_seq FROM agg
ON CONFLICT (instrument, t) DO UPDATE SET
    o     = CASE WHEN (EXCLUDED.o_ts, EXCLUDED.o_seq) < (k.o_ts, k.o_seq) THEN EXCLUDED.o ELSE k.o END,
    o_ts  = LEAST(k.o_ts, EXCLUDED.o_ts),
    o_seq = CASE WHEN (EXCLUDED.o_ts, EXCLUDED.o_seq) < (k.o_ts, k.o_seq) THEN EXCLUDED.o_seq ELSE k.o_seq END,
    h     = GREATEST(k.h, EXCLUDED.h),
    l     = LEAST(k.l, EXCLUDED.l),
    c     = CASE WHEN (EXCLUDED.c_ts, EXCLUDED.c_seq) > (k.c_ts, k.c_seq) THEN EXCLUDED.c ELSE k.c END,
    c_ts  = GREATEST(k.c_ts, EXCLUDED.c_ts),
    c_seq = CASE WHEN (EXCLUDED.c_ts, EXCLUDED.c_seq) > (k.c_ts, k.c_seq) THEN EXCLUDED.c_seq ELSE k.c_seq END,
    v     = k.v + EXCLUDED.v,
    n     = k.n + EXCLUDED.n
"#;

impl HistoryWriter {
    /// Apply a batch in one transaction (rows, candles and the last sequence together).
    pub async fn apply_batch(&self, batch: &[Delivered<Tick>]) -> Result<(), ProjectionError> {
        if batch.is_empty() {
            return Ok(());
        }
        let mut tx = self.pool.begin().await?;
        Self::apply_tx(&mut tx, batch).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Apply a batch inside a caller's transaction (rows, candles and the last sequence), in
    /// whatever schema the transaction's `search_path` names: `sise project rebuild` builds
    /// aside and applies its final catch-up inside the swap transaction.
    pub async fn apply_tx(
        tx: &mut sqlx::Transaction<'_, sqlx::Postgres>,
        batch: &[Delivered<Tick>],
    ) -> Result<(), ProjectionError> {
        let Some(last) = batch.iter().map(|d| d.seq).max() else {
            return Ok(());
        };
        let n = batch.len();
        let mut seq = Vec::with_capacity(n);
        let mut instrument = Vec::with_capacity(n);
        let mut ts = Vec::with_capacity(n);
        let mut price = Vec::with_capacity(n);
        let mut volume = Vec::with_capacity(n);
        let mut day_volume: Vec<Option<f64>> = Vec::with_capacity(n);
        let mut prev_close: Vec<Option<f64>> = Vec::with_capacity(n);
        let mut source = Vec::with_capacity(n);
        let mut source_seq = Vec::with_capacity(n);
        let mut ingest_ts = Vec::with_capacity(n);
        for d in batch {
            let t = &d.event;
            seq.push(d.seq as i64);
            instrument.push(t.instrument.as_str().to_owned());
            ts.push(t.ts);
            price.push(t.price);
            volume.push(t.volume);
            day_volume.push(t.day_volume);
            prev_close.push(t.prev_close);
            source.push(t.source.as_str().to_owned());
            source_seq.push(t.seq.to_string());
            ingest_ts.push(t.ingest_ts);
        }
        sqlx::query(APPLY_SQL)
            .bind(&seq)
            .bind(&instrument)
            .bind(&ts)
            .bind(&price)
            .bind(&volume)
            .bind(&day_volume)
            .bind(&prev_close)
            .bind(&source)
            .bind(&source_seq)
            .bind(&ingest_ts)
            .execute(&mut **tx)
            .await?;
        db::store_seq(tx, NAME, last).await?;
        Ok(())
    }
}

impl Handler for HistoryWriter {
    type Event = Tick;

    async fn last_applied(&mut self) -> Result<u64, sise_bus::consume::BoxError> {
        Ok(db::last_seq(&self.pool, NAME).await?)
    }

    async fn apply(
        &mut self,
        batch: &[Delivered<Tick>],
    ) -> Result<(), sise_bus::consume::BoxError> {
        Ok(self.apply_batch(batch).await?)
    }
}

/// A candle interval of the API.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Interval {
    M1,
    M5,
    M15,
    H1,
    D1,
    W1,
}

impl Interval {
    pub const ALL: [Interval; 6] = [
        Interval::M1,
        Interval::M5,
        Interval::M15,
        Interval::H1,
        Interval::D1,
        Interval::W1,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Interval::M1 => "1m",
            Interval::M5 => "5m",
            Interval::M15 => "15m",
            Interval::H1 => "1h",
            Interval::D1 => "1d",
            Interval::W1 => "1w",
        }
    }

    /// Nominal length in ms (a market day or week can differ by a DST hour).
    pub fn millis(self) -> i64 {
        match self {
            Interval::M1 => 60_000,
            Interval::M5 => 300_000,
            Interval::M15 => 900_000,
            Interval::H1 => 3_600_000,
            Interval::D1 => 86_400_000,
            Interval::W1 => 7 * 86_400_000,
        }
    }
}

impl FromStr for Interval {
    type Err = ();
    fn from_str(s: &str) -> Result<Self, ()> {
        Interval::ALL
            .into_iter()
            .find(|i| i.as_str() == s)
            .ok_or(())
    }
}

impl fmt::Display for Interval {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One candle as the API returns it.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, sqlx::FromRow)]
pub struct Candle {
    pub t: i64,
    pub o: f64,
    pub h: f64,
    pub l: f64,
    pub c: f64,
    pub v: f64,
}

/// What a candle query asks for.
#[derive(Debug, Clone)]
pub struct CandleQuery<'a> {
    pub instrument: &'a InstrumentId,
    pub interval: Interval,
    /// IANA time zone of the instrument's market (daily and weekly buckets).
    pub timezone: &'a str,
    /// Inclusive start, epoch ms.
    pub from: Option<i64>,
    /// Exclusive end, epoch ms.
    pub to: Option<i64>,
    pub limit: u32,
}

/// The reader of the history model.
#[derive(Clone)]
pub struct HistoryReader {
    pool: PgPool,
}

impl HistoryReader {
    pub fn new(pool: PgPool) -> Self {
        HistoryReader { pool }
    }

    /// The newest `limit` candles in `[from, to)`, ascending by `t`; the open one included.
    pub async fn candles(&self, q: &CandleQuery<'_>) -> Result<Vec<Candle>, ProjectionError> {
        let to = q.to.unwrap_or(i64::MAX / 2);
        // Without `from`, look back just far enough for `limit` buckets (plus one for DST).
        let from = q.from.unwrap_or_else(|| {
            let now = sise_bus::now_ms().min(to);
            now.saturating_sub(q.interval.millis().saturating_mul(i64::from(q.limit) + 1))
        });
        let limit = i64::from(q.limit);
        let mut rows: Vec<Candle> = if q.interval == Interval::M1 {
            sqlx::query_as(
                "SELECT t, o, h, l, c, round(v::numeric, 8)::float8 AS v FROM candles_1m
                 WHERE instrument = $1 AND t >= $2 AND t < $3
                 ORDER BY t DESC LIMIT $4",
            )
            .bind(q.instrument.as_str())
            .bind(from - from.rem_euclid(60_000))
            .bind(to)
            .bind(limit)
            .fetch_all(&self.pool)
            .await?
        } else {
            let bucket = |x: &str| match q.interval {
                Interval::D1 | Interval::W1 => {
                    let unit = if q.interval == Interval::D1 {
                        "day"
                    } else {
                        "week"
                    };
                    format!(
                        "(extract(epoch FROM date_trunc('{unit}', to_timestamp({x} / 1000.0) AT TIME ZONE $5) AT TIME ZONE $5) * 1000)::bigint"
                    )
                }
                other => format!("({x} - ({x} % {}))", other.millis()),
            };
            let sql = format!(
                "SELECT b AS t,
                        (array_agg(o ORDER BY t))[1]      AS o,
                        max(h)                            AS h,
                        min(l)                            AS l,
                        (array_agg(c ORDER BY t DESC))[1] AS c,
                        round(sum(v)::numeric, 8)::float8 AS v
                 FROM (SELECT {b} AS b, t, o, h, l, c, v FROM candles_1m
                       WHERE instrument = $1 AND t >= {from_b} AND t < $3) s
                 GROUP BY b ORDER BY b DESC LIMIT $4",
                b = bucket("t"),
                from_b = bucket("$2::bigint"),
            );
            // Only enum-chosen fragments are interpolated; every value is a bind parameter.
            let query = sqlx::query_as(sqlx::AssertSqlSafe(sql))
                .bind(q.instrument.as_str())
                .bind(from)
                .bind(to)
                .bind(limit);
            // $5 (the time zone) appears only in the daily and weekly bucket expressions.
            let query = match q.interval {
                Interval::D1 | Interval::W1 => query.bind(q.timezone),
                _ => query,
            };
            query.fetch_all(&self.pool).await?
        };
        rows.reverse();
        Ok(rows)
    }

    /// Ticks stored for an instrument (diagnostics and tests).
    pub async fn tick_count(&self, instrument: &InstrumentId) -> Result<i64, ProjectionError> {
        let (n,): (i64,) = sqlx::query_as("SELECT count(*) FROM ticks WHERE instrument = $1")
            .bind(instrument.as_str())
            .fetch_one(&self.pool)
            .await?;
        Ok(n)
    }

    /// (rows, sum of tick volume) of an instrument's ticks (diagnostics and tests).
    pub async fn tick_totals(
        &self,
        instrument: &InstrumentId,
    ) -> Result<(i64, f64), ProjectionError> {
        let (n, v): (i64, Option<f64>) =
            sqlx::query_as("SELECT count(*), sum(volume) FROM ticks WHERE instrument = $1")
                .bind(instrument.as_str())
                .fetch_one(&self.pool)
                .await?;
        Ok((n, v.unwrap_or(0.0)))
    }

    /// (candle rows, sum of candle volume, sum of candle tick counts) of an instrument.
    pub async fn candle_totals(
        &self,
        instrument: &InstrumentId,
    ) -> Result<(i64, f64, i64), ProjectionError> {
        let (rows, v, n): (i64, Option<f64>, Option<i64>) = sqlx::query_as(
            "SELECT count(*), sum(v), sum(n)::bigint FROM candles_1m WHERE instrument = $1",
        )
        .bind(instrument.as_str())
        .fetch_one(&self.pool)
        .await?;
        Ok((rows, v.unwrap_or(0.0), n.unwrap_or(0)))
    }

    /// The last sequence this model committed.
    pub async fn last_seq(&self) -> Result<u64, ProjectionError> {
        db::last_seq(&self.pool, NAME).await
    }
}

//! The `news` read model (PostgreSQL): articles with their instrument tags, deduplicated by id
//! (the hash of the canonical URL), newest first.

use serde::Serialize;
use sise_bus::{Delivered, Handler, InstrumentId, News};
use sqlx::PgPool;

use crate::{db, ProjectionError};

/// Projection name (durable `ns_news`).
pub const NAME: &str = "news";

/// The writer: a [`Handler`] of news.
pub struct NewsWriter {
    pool: PgPool,
}

impl NewsWriter {
    pub fn new(pool: PgPool) -> Self {
        NewsWriter { pool }
    }
}

impl Handler for NewsWriter {
    type Event = News;

    async fn last_applied(&mut self) -> Result<u64, sise_bus::consume::BoxError> {
        Ok(db::last_seq(&self.pool, NAME).await?)
    }

    async fn apply(
        &mut self,
        batch: &[Delivered<News>],
    ) -> Result<(), sise_bus::consume::BoxError> {
        if batch.is_empty() {
            return Ok(());
        }
        let mut tx = self.pool.begin().await?;
        Self::apply_tx(&mut tx, batch).await?;
        tx.commit().await?;
        Ok(())
    }
}

impl NewsWriter {
    /// Apply a batch inside a caller's transaction, in whatever schema its `search_path` names
    /// (`sise project rebuild` builds aside and catches up inside the swap transaction).
    pub async fn apply_tx(
        tx: &mut sqlx::Transaction<'_, sqlx::Postgres>,
        batch: &[Delivered<News>],
    ) -> Result<(), ProjectionError> {
        let Some(last) = batch.iter().map(|d| d.seq).max() else {
            return Ok(());
        };
        for d in batch {
            let n = &d.event;
            let tags: Vec<String> = n.instruments.iter().map(|i| i.to_string()).collect();
            sqlx::query(
                "INSERT INTO news (id, seq, source, title, summary, url, image, published, language, instruments)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
                 ON CONFLICT (id) DO NOTHING",
            )
            .bind(&n.id)
            .bind(d.seq as i64)
            .bind(n.source.as_str())
            .bind(&n.title)
            .bind(&n.summary)
            .bind(&n.url)
            .bind(&n.image)
            .bind(n.published)
            .bind(&n.language)
            .bind(&tags)
            .execute(&mut **tx)
            .await?;
        }
        db::store_seq(tx, NAME, last).await?;
        Ok(())
    }
}

/// One article as `GET /api/v1/news` returns it.
#[derive(Debug, Clone, PartialEq, Serialize, sqlx::FromRow)]
pub struct NewsItem {
    pub id: String,
    pub source: String,
    pub title: String,
    pub summary: Option<String>,
    pub url: String,
    pub image: Option<String>,
    pub published: i64,
    pub language: Option<String>,
    pub instruments: Vec<String>,
}

/// Newest first; only articles tagged with `instrument` when given; strictly before `before`.
pub async fn list(
    pool: &PgPool,
    instrument: Option<&InstrumentId>,
    before: Option<i64>,
    limit: u32,
) -> Result<Vec<NewsItem>, ProjectionError> {
    let rows = sqlx::query_as(
        "SELECT id, source, title, summary, url, image, published, language, instruments FROM news
         WHERE ($1::text IS NULL OR instruments @> ARRAY[$1::text])
           AND ($2::bigint IS NULL OR published < $2)
         ORDER BY published DESC, id LIMIT $3",
    )
    .bind(instrument.map(|i| i.as_str()))
    .bind(before)
    .bind(i64::from(limit))
    .fetch_all(pool)
    .await?;
    Ok(rows)
}

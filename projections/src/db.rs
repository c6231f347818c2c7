//! PostgreSQL connection for a namespace: its schema is created if missing, every connection's
//! `search_path` points at it, and the migrations (`migrations/`) are applied.

use std::time::Duration;

use sise_bus::Namespace;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{ConnectOptions, Connection, PgPool};

use crate::ProjectionError;

/// The migrations of every read model, embedded at build time.
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("../migrations");

/// Connect to PostgreSQL for namespace `ns`, create its schema and apply the migrations.
pub async fn connect(
    url: &str,
    ns: &Namespace,
    max_connections: u32,
) -> Result<PgPool, ProjectionError> {
    let base: PgConnectOptions = url.parse()?;
    let base = base.log_statements(tracing::log::LevelFilter::Debug);
    {
        let mut conn = sqlx::PgConnection::connect_with(&base).await?;
        // The namespace grammar ([a-z][a-z0-9_]*) makes it a safe identifier.
        let sql = format!("CREATE SCHEMA IF NOT EXISTS {}", ns.pg_schema());
        if let Err(e) = sqlx::query(sqlx::AssertSqlSafe(sql))
            .execute(&mut conn)
            .await
        {
            // Two processes creating the schema at once: one wins, the other sees a duplicate.
            let duplicate = e
                .as_database_error()
                .and_then(|d| d.code())
                .is_some_and(|c| c == "23505" || c == "42P06");
            if !duplicate {
                return Err(e.into());
            }
        }
        conn.close().await?;
    }
    let opts = base.options([("search_path", ns.pg_schema())]);
    let pool = PgPoolOptions::new()
        .max_connections(max_connections)
        .acquire_timeout(Duration::from_secs(5))
        .connect_with(opts)
        .await?;
    MIGRATOR.run(&pool).await?;
    Ok(pool)
}

/// Drop a namespace's schema and everything in it (tests and rebuilds).
pub async fn drop_schema(url: &str, ns: &Namespace) -> Result<(), ProjectionError> {
    let base: PgConnectOptions = url.parse()?;
    let mut conn = sqlx::PgConnection::connect_with(&base).await?;
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "DROP SCHEMA IF EXISTS {} CASCADE",
        ns.pg_schema()
    )))
    .execute(&mut conn)
    .await?;
    conn.close().await?;
    Ok(())
}

/// The last sequence a PostgreSQL projection committed.
pub async fn last_seq(pool: &PgPool, projection: &str) -> Result<u64, ProjectionError> {
    let row: Option<(i64,)> =
        sqlx::query_as("SELECT last_seq FROM projection_offsets WHERE name = $1")
            .bind(projection)
            .fetch_optional(pool)
            .await?;
    Ok(row.map(|r| r.0.max(0) as u64).unwrap_or(0))
}

/// Record a batch's last sequence inside the batch's transaction (never moves backwards).
pub async fn store_seq(
    tx: &mut sqlx::Transaction<'_, sqlx::Postgres>,
    projection: &str,
    seq: u64,
) -> Result<(), ProjectionError> {
    sqlx::query(
        "INSERT INTO projection_offsets (name, last_seq) VALUES ($1, $2)
         ON CONFLICT (name) DO UPDATE
         SET last_seq = GREATEST(projection_offsets.last_seq, EXCLUDED.last_seq), updated_at = now()",
    )
    .bind(projection)
    .bind(seq as i64)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

//! The one error type of `sise-projections`.

#[derive(Debug, thiserror::Error)]
pub enum ProjectionError {
    #[error("postgres: {0}")]
    Db(#[from] sqlx::Error),
    #[error("migrations: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("redis: {0}")]
    Redis(#[from] redis::RedisError),
    #[error("stored value: {0}")]
    Stored(#[from] serde_json::Error),
    #[error(transparent)]
    Bus(#[from] sise_bus::BusError),
}

//! The one error type of `sise-pipelines`.

#[derive(Debug, thiserror::Error)]
pub enum PipelineError {
    #[error("instrument registry: {0}")]
    Registry(String),
    #[error("source {source_name}: {message}")]
    Config {
        source_name: String,
        message: String,
    },
    #[error(transparent)]
    Bus(#[from] sise_bus::BusError),
}

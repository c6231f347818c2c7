//! The one error type of `sise-bus`.

/// Everything that can go wrong talking to the log.
#[derive(Debug, thiserror::Error)]
pub enum BusError {
    /// A name (instrument id, source, namespace) that breaks its grammar.
    #[error("invalid {what} {value:?}: {reason}")]
    InvalidName {
        what: &'static str,
        value: String,
        reason: &'static str,
    },
    /// An event that could not be encoded.
    #[error("encode: {0}")]
    Encode(String),
    /// Bytes on the bus that are not a valid event of the expected kind.
    #[error("decode: {0}")]
    Decode(String),
    /// An event written by a newer schema than this build understands.
    #[error("unsupported schema version {found} (this build reads up to {supported})")]
    UnsupportedVersion { found: u16, supported: u16 },
    /// NATS or JetStream failed.
    #[error("nats: {0}")]
    Nats(String),
}

impl BusError {
    pub(crate) fn nats(e: impl std::fmt::Display) -> Self {
        BusError::Nats(e.to_string())
    }
}

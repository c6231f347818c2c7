//! Every name derived from a namespace: subjects, streams, consumers, Redis keys, PG schema.
//!
//! Namespace `ns` (`SISE_NAMESPACE`, `[a-z][a-z0-9_]{0,30}`) gives subjects `ns.tick.<id>`,
//! `ns.news.<source>`, `ns.status.<source>`; streams `ns_TICKS`, `ns_NEWS`, `ns_STATUS`;
//! Redis keys `ns:…`; PostgreSQL schema `ns`. Tests and deployments sharing one server stay apart.

use std::fmt;
use std::str::FromStr;

use crate::{BusError, InstrumentId, SourceName};

/// A validated namespace.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Namespace(String);

/// The three streams of the log.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum StreamKind {
    Ticks,
    News,
    Status,
}

impl StreamKind {
    pub const ALL: [StreamKind; 3] = [StreamKind::Ticks, StreamKind::News, StreamKind::Status];

    /// The stream name without namespace (`TICKS`).
    pub fn suffix(self) -> &'static str {
        match self {
            StreamKind::Ticks => "TICKS",
            StreamKind::News => "NEWS",
            StreamKind::Status => "STATUS",
        }
    }

    /// The subject token right after the namespace (`tick`).
    pub fn token(self) -> &'static str {
        match self {
            StreamKind::Ticks => "tick",
            StreamKind::News => "news",
            StreamKind::Status => "status",
        }
    }
}

impl Namespace {
    pub fn parse(s: &str) -> Result<Self, BusError> {
        let b = s.as_bytes();
        let ok = !b.is_empty()
            && b.len() <= 31
            && b[0].is_ascii_lowercase()
            && b.iter()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'_');
        if ok {
            Ok(Namespace(s.to_owned()))
        } else {
            Err(BusError::InvalidName {
                what: "namespace",
                value: s.chars().take(40).collect(),
                reason: "must match [a-z][a-z0-9_]{0,30}",
            })
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    // ---- subjects -------------------------------------------------------------------------

    /// `ns.tick.<class>.<venue>.<symbol>`
    pub fn tick_subject(&self, id: &InstrumentId) -> String {
        format!("{}.tick.{}", self.0, id)
    }

    /// `ns.news.<source>`
    pub fn news_subject(&self, source: &SourceName) -> String {
        format!("{}.news.{}", self.0, source)
    }

    /// `ns.status.<source>`
    pub fn status_subject(&self, source: &SourceName) -> String {
        format!("{}.status.{}", self.0, source)
    }

    /// The wildcard that covers one stream: `ns.tick.>`.
    pub fn all_subjects(&self, kind: StreamKind) -> String {
        format!("{}.{}.>", self.0, kind.token())
    }

    /// The instrument id at the tail of a tick subject, if the subject is one of ours.
    pub fn instrument_of_subject(&self, subject: &str) -> Option<InstrumentId> {
        let rest = subject
            .strip_prefix(self.0.as_str())?
            .strip_prefix(".tick.")?;
        InstrumentId::parse(rest).ok()
    }

    // ---- JetStream ------------------------------------------------------------------------

    /// `ns_TICKS`, `ns_NEWS`, `ns_STATUS`
    pub fn stream(&self, kind: StreamKind) -> String {
        format!("{}_{}", self.0, kind.suffix())
    }

    /// The durable consumer of a projection: `ns_<projection>`.
    pub fn consumer(&self, projection: &str) -> String {
        format!("{}_{}", self.0, projection)
    }

    // ---- Redis ----------------------------------------------------------------------------

    /// Hash: instrument id → the latest quote (JSON).
    pub fn redis_latest(&self) -> String {
        format!("{}:latest", self.0)
    }
    /// Hash: instrument id → ordering key of the stored quote (exchange time, then sequence).
    pub fn redis_latest_order(&self) -> String {
        format!("{}:latest:ord", self.0)
    }
    /// String: the last stream sequence a Redis projection applied.
    pub fn redis_offset(&self, projection: &str) -> String {
        format!("{}:offset:{}", self.0, projection)
    }
    /// Hash: source → its last status (JSON).
    pub fn redis_sources(&self) -> String {
        format!("{}:sources", self.0)
    }
    /// Hash: source → exchange time of its newest tick.
    pub fn redis_sources_last_event(&self) -> String {
        format!("{}:sources:last", self.0)
    }
    /// The aside copy of one of this namespace's Redis keys, where `sise project rebuild` builds
    /// a read model before swapping it in: `ns:rebuild:<key without ns:>`.
    pub fn redis_aside(&self, live_key: &str) -> String {
        let tail = live_key
            .strip_prefix(self.0.as_str())
            .and_then(|t| t.strip_prefix(':'))
            .unwrap_or(live_key);
        format!("{}:rebuild:{}", self.0, tail)
    }
    /// String: state a source shares between its processes (e.g. the KIS access token):
    /// `ns:source:<source>:<what>`.
    pub fn redis_source_key(&self, source: &str, what: &str) -> String {
        format!("{}:source:{}:{}", self.0, source, what)
    }
    /// Every Redis key of this namespace matches this pattern (for cleanup).
    pub fn redis_pattern(&self) -> String {
        format!("{}:*", self.0)
    }

    // ---- PostgreSQL -----------------------------------------------------------------------

    /// The schema that holds this namespace's tables (the namespace itself).
    pub fn pg_schema(&self) -> &str {
        &self.0
    }
}

impl FromStr for Namespace {
    type Err = BusError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Namespace::parse(s)
    }
}

impl fmt::Display for Namespace {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for Namespace {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Namespace({})", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        let ns = Namespace::parse("sise").unwrap();
        let id = InstrumentId::parse("stock.krx.068270").unwrap();
        assert_eq!(ns.tick_subject(&id), "sise.tick.stock.krx.068270");
        assert_eq!(
            ns.instrument_of_subject("sise.tick.stock.krx.068270"),
            Some(id)
        );
        assert_eq!(
            ns.instrument_of_subject("other.tick.stock.krx.068270"),
            None
        );
        assert_eq!(ns.instrument_of_subject("sise.news.stock.krx.068270"), None);
        assert_eq!(ns.stream(StreamKind::Ticks), "sise_TICKS");
        assert_eq!(ns.all_subjects(StreamKind::Status), "sise.status.>");
        let src = SourceName::parse("upbit").unwrap();
        assert_eq!(ns.status_subject(&src), "sise.status.upbit");
        assert_eq!(ns.news_subject(&src), "sise.news.upbit");
        assert_eq!(ns.redis_latest(), "sise:latest");
        assert_eq!(ns.consumer("history"), "sise_history");
    }

    #[test]
    fn namespace_grammar() {
        assert!(Namespace::parse("test_0a1b").is_ok());
        for bad in ["", "1abc", "Sise", "a-b", "a.b", &"a".repeat(32)] {
            assert!(Namespace::parse(bad).is_err(), "{bad:?}");
        }
    }
}

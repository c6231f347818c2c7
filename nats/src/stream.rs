//! Stream definitions (`nats/streams/*.json`, in the NATS API's own JSON) and `ensure_streams`.
//!
//! The files are the documentation and the code at once: `{ns}` is replaced by the namespace,
//! and the TICKS age limit comes from configuration (`SISE_TICKS_MAX_AGE_DAYS`, default 30).

use std::time::Duration;

use async_nats::jetstream::{self, stream};

use crate::{BusError, Namespace, StreamKind};

const TICKS: &str = include_str!("../streams/ticks.json");
const NEWS: &str = include_str!("../streams/news.json");
const STATUS: &str = include_str!("../streams/status.json");

/// The stream configuration of one kind for a namespace.
pub fn definition(
    ns: &Namespace,
    kind: StreamKind,
    ticks_max_age: Duration,
) -> Result<stream::Config, BusError> {
    let template = match kind {
        StreamKind::Ticks => TICKS,
        StreamKind::News => NEWS,
        StreamKind::Status => STATUS,
    };
    let json = template.replace("{ns}", ns.as_str());
    let mut config: stream::Config = serde_json::from_str(&json)
        .map_err(|e| BusError::Nats(format!("stream definition: {e}")))?;
    if kind == StreamKind::Ticks {
        config.max_age = ticks_max_age;
    }
    Ok(config)
}

/// Create the namespace's streams, or bring an existing one's limits up to date.
pub async fn ensure_streams(
    js: &jetstream::Context,
    ns: &Namespace,
    ticks_max_age: Duration,
) -> Result<(), BusError> {
    for kind in StreamKind::ALL {
        let want = definition(ns, kind, ticks_max_age)?;
        match js.get_stream(&want.name).await {
            Ok(mut existing) => {
                let have = existing
                    .info()
                    .await
                    .map_err(BusError::nats)?
                    .config
                    .clone();
                if have.max_age != want.max_age
                    || have.subjects != want.subjects
                    || have.duplicate_window != want.duplicate_window
                {
                    tracing::info!(stream = %want.name, "updating stream limits");
                    js.update_stream(&want).await.map_err(BusError::nats)?;
                }
            }
            Err(_) => {
                tracing::info!(stream = %want.name, "creating stream");
                js.create_stream(want.clone())
                    .await
                    .map_err(BusError::nats)?;
            }
        }
    }
    Ok(())
}

/// Delete the namespace's streams (tests and `sise` maintenance only).
pub async fn delete_streams(js: &jetstream::Context, ns: &Namespace) -> Result<(), BusError> {
    for kind in StreamKind::ALL {
        let _ = js.delete_stream(ns.stream(kind)).await;
    }
    // The key-value buckets of `catalog` (instruments listed by sources, and watched).
    for bucket in ["LISTED", "WATCH"] {
        let _ = js.delete_key_value(format!("{ns}_{bucket}")).await;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn definitions_parse_and_are_namespaced() {
        let ns = Namespace::parse("t_abc").unwrap();
        let d = definition(&ns, StreamKind::Ticks, Duration::from_secs(86400)).unwrap();
        assert_eq!(d.name, "t_abc_TICKS");
        assert_eq!(d.subjects, vec!["t_abc.tick.>".to_string()]);
        assert_eq!(d.max_age, Duration::from_secs(86400));
        assert_eq!(d.storage, stream::StorageType::File);
        assert_eq!(d.duplicate_window, Duration::from_secs(120));
        let d = definition(&ns, StreamKind::Status, Duration::ZERO).unwrap();
        assert_eq!(d.subjects, vec!["t_abc.status.>".to_string()]);
        let d = definition(&ns, StreamKind::News, Duration::ZERO).unwrap();
        assert_eq!(d.name, "t_abc_NEWS");
    }
}

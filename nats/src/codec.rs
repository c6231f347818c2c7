//! MessagePack codec for events (rmp-serde, fields by name).

use serde::{de::DeserializeOwned, Serialize};

use crate::{BusError, News, SourceStatus, Tick, SCHEMA_VERSION};

/// An event type that can travel on the log.
pub trait Event: Serialize + DeserializeOwned + Send + Sync + 'static {
    /// Schema version carried by this value.
    fn version(&self) -> u16;
    /// Semantic checks beyond the shape (finite prices, positive times...).
    fn validate(&self) -> Result<(), BusError> {
        Ok(())
    }
}

impl Event for Tick {
    fn version(&self) -> u16 {
        self.v
    }
    fn validate(&self) -> Result<(), BusError> {
        Tick::validate(self)
    }
}
impl Event for News {
    fn version(&self) -> u16 {
        self.v
    }
}
impl Event for SourceStatus {
    fn version(&self) -> u16 {
        self.v
    }
}

/// Encode an event as a MessagePack map.
pub fn encode<E: Event>(event: &E) -> Result<Vec<u8>, BusError> {
    rmp_serde::to_vec_named(event).map_err(|e| BusError::Encode(e.to_string()))
}

/// Decode and validate an event; garbage and newer schema versions are errors, never panics.
pub fn decode<E: Event>(bytes: &[u8]) -> Result<E, BusError> {
    let event: E = rmp_serde::from_slice(bytes).map_err(|e| BusError::Decode(e.to_string()))?;
    if event.version() > SCHEMA_VERSION || event.version() == 0 {
        return Err(BusError::UnsupportedVersion {
            found: event.version(),
            supported: SCHEMA_VERSION,
        });
    }
    event.validate()?;
    Ok(event)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{InstrumentId, SourceName, SourceState};

    fn tick() -> Tick {
        Tick {
            v: SCHEMA_VERSION,
            instrument: InstrumentId::parse("crypto.upbit.KRW-BTC").unwrap(),
            price: 130_250_000.0,
            prev_close: Some(128_900_000.0),
            change: Some(1_350_000.0),
            change_rate: Some(0.010473),
            volume: 0.0123,
            day_volume: Some(1834.25),
            ts: 1_773_293_415_000,
            ingest_ts: 1_773_293_415_012,
            source: SourceName::parse("sim").unwrap(),
            seq: u64::MAX - 7, // beyond 2^53: must survive exactly
            backfill: false,
            inputs: Vec::new(),
        }
    }

    #[test]
    fn tick_round_trip() {
        let t = tick();
        let back: Tick = decode(&encode(&t).unwrap()).unwrap();
        assert_eq!(back, t);
        assert_eq!(back.seq, u64::MAX - 7);
        assert_eq!(
            t.msg_id(),
            "sim:crypto.upbit.KRW-BTC:1773293415000:18446744073709551608"
        );
    }

    #[test]
    fn news_round_trip() {
        let n = News {
            v: SCHEMA_VERSION,
            id: "ab12".into(),
            source: SourceName::parse("newsapi").unwrap(),
            title: "셀트리온, 신약 승인".into(),
            summary: None,
            url: "https://example.com/a".into(),
            image: Some("https://example.com/a.png".into()),
            published: 1_773_293_415_000,
            language: Some("ko".into()),
            instruments: vec![InstrumentId::parse("stock.krx.068270").unwrap()],
        };
        assert_eq!(decode::<News>(&encode(&n).unwrap()).unwrap(), n);
    }

    #[test]
    fn status_round_trip() {
        let s = SourceStatus {
            v: SCHEMA_VERSION,
            source: SourceName::parse("upbit").unwrap(),
            state: SourceState::Degraded,
            detail: "reconnecting".into(),
            ts: 1_773_293_415_000,
        };
        assert_eq!(decode::<SourceStatus>(&encode(&s).unwrap()).unwrap(), s);
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        for bytes in [
            &b""[..],
            b"\xff\xff",
            b"hello",
            &[0x81, 0xa1, b'v', 0x01][..],
        ] {
            assert!(decode::<Tick>(bytes).is_err());
        }
        // A status is not a tick.
        let s = SourceStatus {
            v: 1,
            source: SourceName::parse("sim").unwrap(),
            state: SourceState::Up,
            detail: String::new(),
            ts: 1,
        };
        assert!(decode::<Tick>(&encode(&s).unwrap()).is_err());
    }

    #[test]
    fn newer_schema_and_bad_values_are_refused() {
        let mut t = tick();
        t.v = SCHEMA_VERSION + 1;
        assert!(matches!(
            decode::<Tick>(&encode(&t).unwrap()),
            Err(BusError::UnsupportedVersion { .. })
        ));
        let mut t = tick();
        t.price = f64::NAN;
        assert!(decode::<Tick>(&encode(&t).unwrap()).is_err());
        let mut t = tick();
        t.volume = -1.0;
        assert!(decode::<Tick>(&encode(&t).unwrap()).is_err());
    }

    #[test]
    fn bad_instrument_id_inside_event_is_refused() {
        let t = tick();
        let bytes = encode(&t).unwrap();
        // Corrupt the id into something subject-unsafe of the same length.
        let pos = bytes.windows(7).position(|w| w == b"KRW-BTC").unwrap();
        let mut bad = bytes.clone();
        bad[pos..pos + 7].copy_from_slice(b"KRW BT>");
        assert!(decode::<Tick>(&bad).is_err());
    }
}

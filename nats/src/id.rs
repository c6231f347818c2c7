//! Instrument ids and source names: parsed once, subject-safe by construction.
//!
//! An instrument id is `<class>.<venue>.<symbol>` and doubles as the tail of its tick subject
//! (`<ns>.tick.<class>.<venue>.<symbol>`), so the grammar forbids everything NATS treats
//! specially (`.` inside a part, `*`, `>`, whitespace) and keeps ids short.

use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::BusError;

/// The kind of an instrument; the first part of its id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Class {
    Stock,
    Index,
    Crypto,
    Metal,
    Fx,
    /// Computed by sise from other instruments (metal in KRW, kimchi premium).
    Derived,
}

impl Class {
    pub const ALL: [Class; 6] = [
        Class::Stock,
        Class::Index,
        Class::Crypto,
        Class::Metal,
        Class::Fx,
        Class::Derived,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Class::Stock => "stock",
            Class::Index => "index",
            Class::Crypto => "crypto",
            Class::Metal => "metal",
            Class::Fx => "fx",
            Class::Derived => "derived",
        }
    }
}

impl FromStr for Class {
    type Err = BusError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Class::ALL
            .into_iter()
            .find(|c| c.as_str() == s)
            .ok_or_else(|| {
                invalid(
                    "instrument class",
                    s,
                    "expected stock, index, crypto, metal, fx or derived",
                )
            })
    }
}

fn invalid(what: &'static str, value: &str, reason: &'static str) -> BusError {
    BusError::InvalidName {
        what,
        value: value.chars().take(80).collect(),
        reason,
    }
}

/// Longest accepted instrument id, in bytes.
pub const MAX_ID_LEN: usize = 64;

/// A parsed instrument id such as `crypto.upbit.KRW-BTC`. Cheap to clone (shared string).
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct InstrumentId {
    raw: Arc<str>,
    class: Class,
    /// Byte offset where the venue starts and where the symbol starts.
    venue_at: u8,
    symbol_at: u8,
}

impl InstrumentId {
    /// Parse and validate `<class>.<venue>.<symbol>`.
    ///
    /// venue: `[a-z0-9]{1,16}`; symbol: `[A-Za-z0-9_-]{1,32}`.
    pub fn parse(s: &str) -> Result<Self, BusError> {
        if s.len() > MAX_ID_LEN {
            return Err(invalid("instrument id", s, "longer than 64 bytes"));
        }
        let mut parts = s.split('.');
        let (Some(class), Some(venue), Some(symbol), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(invalid(
                "instrument id",
                s,
                "expected <class>.<venue>.<symbol>",
            ));
        };
        let class: Class = class.parse().map_err(|_| {
            invalid(
                "instrument id",
                s,
                "unknown class (stock, index, crypto, metal, fx, derived)",
            )
        })?;
        let venue_ok = !venue.is_empty()
            && venue.len() <= 16
            && venue
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit());
        if !venue_ok {
            return Err(invalid(
                "instrument id",
                s,
                "venue must be 1-16 of [a-z0-9]",
            ));
        }
        let symbol_ok = !symbol.is_empty()
            && symbol.len() <= 32
            && symbol
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        if !symbol_ok {
            return Err(invalid(
                "instrument id",
                s,
                "symbol must be 1-32 of [A-Za-z0-9_-]",
            ));
        }
        let venue_at = (class.as_str().len() + 1) as u8;
        let symbol_at = venue_at + venue.len() as u8 + 1;
        Ok(InstrumentId {
            raw: Arc::from(s),
            class,
            venue_at,
            symbol_at,
        })
    }

    pub fn as_str(&self) -> &str {
        &self.raw
    }
    pub fn class(&self) -> Class {
        self.class
    }
    pub fn venue(&self) -> &str {
        &self.raw[self.venue_at as usize..self.symbol_at as usize - 1]
    }
    pub fn symbol(&self) -> &str {
        &self.raw[self.symbol_at as usize..]
    }
}

impl FromStr for InstrumentId {
    type Err = BusError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        InstrumentId::parse(s)
    }
}

impl fmt::Display for InstrumentId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.raw)
    }
}

impl fmt::Debug for InstrumentId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "InstrumentId({})", self.raw)
    }
}

impl Serialize for InstrumentId {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.raw)
    }
}

impl<'de> Deserialize<'de> for InstrumentId {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        InstrumentId::parse(&s).map_err(serde::de::Error::custom)
    }
}

/// The name of a source (`sim`, `upbit`, `kis`, ...): `[a-z][a-z0-9_]{0,15}`, subject-safe.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SourceName(Arc<str>);

impl SourceName {
    pub fn parse(s: &str) -> Result<Self, BusError> {
        let ok = !s.is_empty()
            && s.len() <= 16
            && s.as_bytes()[0].is_ascii_lowercase()
            && s.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
        if ok {
            Ok(SourceName(Arc::from(s)))
        } else {
            Err(invalid("source name", s, "must match [a-z][a-z0-9_]{0,15}"))
        }
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromStr for SourceName {
    type Err = BusError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        SourceName::parse(s)
    }
}

impl fmt::Display for SourceName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for SourceName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SourceName({})", self.0)
    }
}

impl Serialize for SourceName {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for SourceName {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        SourceName::parse(&s).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_parts() {
        let id = InstrumentId::parse("crypto.upbit.KRW-BTC").unwrap();
        assert_eq!(id.class(), Class::Crypto);
        assert_eq!(id.venue(), "upbit");
        assert_eq!(id.symbol(), "KRW-BTC");
        assert_eq!(id.to_string(), "crypto.upbit.KRW-BTC");
        let id = InstrumentId::parse("stock.krx.068270").unwrap();
        assert_eq!((id.venue(), id.symbol()), ("krx", "068270"));
    }

    #[test]
    fn rejects_subject_unsafe_or_malformed() {
        for bad in [
            "",
            "crypto",
            "crypto.upbit",
            "crypto.upbit.KRW-BTC.x",
            "crypto.upbit.KRW BTC",
            "crypto.upbit.*",
            "crypto.upbit.>",
            "crypto.Upbit.KRW-BTC",
            "bond.krx.1",
            "stock..005930",
            "stock.krx.",
            "stock.krx.가나다",
        ] {
            assert!(
                InstrumentId::parse(bad).is_err(),
                "{bad:?} must be rejected"
            );
        }
        let long = format!("stock.krx.{}", "A".repeat(40));
        assert!(InstrumentId::parse(&long).is_err());
    }

    #[test]
    fn source_names() {
        assert!(SourceName::parse("upbit").is_ok());
        assert!(SourceName::parse("gold_fallback").is_ok());
        for bad in ["", "Upbit", "1x", "a.b", "a*", "averyveryverylongname"] {
            assert!(SourceName::parse(bad).is_err(), "{bad:?}");
        }
    }
}

//! An instant in UTC, serialised as RFC 3339. The core never reads a clock: instants are arguments.

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// An instant, compared as an instant (two RFC 3339 strings with different offsets for the
/// same moment are equal), printed in UTC.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp(OffsetDateTime);

/// The text was not an RFC 3339 timestamp with an offset.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not an RFC 3339 timestamp with an offset")]
pub struct BadTimestamp;

impl Timestamp {
    /// Parses RFC 3339 (an offset is required, as in `2026-03-02T10:00:00Z`).
    pub fn parse(text: &str) -> Result<Self, BadTimestamp> {
        OffsetDateTime::parse(text, &Rfc3339)
            .map(|t| Timestamp(t.to_offset(time::UtcOffset::UTC)))
            .map_err(|_| BadTimestamp)
    }

    /// From an instant the caller obtained (the shell reads the clock, never the core).
    pub fn from_datetime(t: OffsetDateTime) -> Self {
        Timestamp(t.to_offset(time::UtcOffset::UTC))
    }

    /// Seconds since the Unix epoch.
    pub fn from_unix_seconds(s: i64) -> Option<Self> {
        OffsetDateTime::from_unix_timestamp(s).ok().map(Timestamp)
    }

    pub fn datetime(self) -> OffsetDateTime {
        self.0
    }

    pub fn unix_seconds(self) -> i64 {
        self.0.unix_timestamp()
    }

    /// The Unix epoch, a neutral starting watermark.
    pub const EPOCH: Timestamp = Timestamp(OffsetDateTime::UNIX_EPOCH);

    pub fn to_rfc3339(self) -> String {
        // Formatting a UTC OffsetDateTime as RFC 3339 cannot fail for years 0..=9999.
        self.0
            .format(&Rfc3339)
            .unwrap_or_else(|_| String::from("invalid-timestamp"))
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_rfc3339())
    }
}

impl fmt::Debug for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Timestamp({})", self.to_rfc3339())
    }
}

impl Serialize for Timestamp {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_rfc3339())
    }
}

impl<'de> Deserialize<'de> for Timestamp {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        Timestamp::parse(&text).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offsets_compare_as_instants() {
        let a = Timestamp::parse("2026-03-02T10:00:00Z").unwrap();
        let b = Timestamp::parse("2026-03-02T11:00:00+01:00").unwrap();
        assert_eq!(a, b);
        assert_eq!(b.to_rfc3339(), "2026-03-02T10:00:00Z");
        assert!(Timestamp::parse("2026-03-02 10:00:00").is_err());
        assert!(Timestamp::parse("2026-03-02T10:00:00").is_err());
    }
}

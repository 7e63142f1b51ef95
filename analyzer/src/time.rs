//! Wall-clock instants of an analysis: nanoseconds since the Unix epoch in UTC, the
//! clock pcap stamps packets with. They serialize as RFC 3339 strings with nanoseconds
//! so that every renderer (JSON, text, later HTML) shows the same instant the same way.

use chrono::{DateTime, SecondsFormat};
use serde::{Serialize, Serializer};

/// An instant, ns since the Unix epoch (UTC).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp(pub i64);

impl Timestamp {
    /// `2024-05-01T12:14:52.669998123Z`.
    pub fn rfc3339(self) -> String {
        DateTime::from_timestamp_nanos(self.0).to_rfc3339_opts(SecondsFormat::Nanos, true)
    }

    /// `12:14:52.669998123`, for text where the date is already said.
    pub fn time_of_day(self) -> String {
        DateTime::from_timestamp_nanos(self.0)
            .format("%H:%M:%S%.9f")
            .to_string()
    }

    /// `2024-05-01 12:14:52.669998123`.
    pub fn date_time(self) -> String {
        DateTime::from_timestamp_nanos(self.0)
            .format("%Y-%m-%d %H:%M:%S%.9f")
            .to_string()
    }
}

impl std::fmt::Display for Timestamp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.rfc3339())
    }
}

impl Serialize for Timestamp {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(&self.rfc3339())
    }
}

/// Milliseconds with microsecond precision, the unit of every duration in reports.
pub fn ms(ns: i128) -> f64 {
    (ns as f64 / 1_000.0).round() / 1_000.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_keep_nanoseconds() {
        let t = Timestamp(1_714_565_692_669_998_123);
        assert_eq!(t.rfc3339(), "2024-05-01T12:14:52.669998123Z");
        assert_eq!(t.time_of_day(), "12:14:52.669998123");
        assert_eq!(
            serde_json::to_string(&t).unwrap(),
            "\"2024-05-01T12:14:52.669998123Z\""
        );
        assert_eq!(ms(4_435_148_123), 4435.148);
    }
}

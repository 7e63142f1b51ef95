//! The machine-readable report: the [`Analysis`] as JSON, versioned by its
//! `format_version` and documented in `docs/analysis-json.md`. Instants are RFC 3339
//! strings with nanoseconds (see [`Timestamp`](crate::Timestamp)), durations are
//! milliseconds with microsecond precision.

use std::io::Write;

use crate::Analysis;

/// Writes the analysis as pretty-printed JSON with a trailing newline.
pub fn write(analysis: &Analysis, mut out: impl Write) -> std::io::Result<()> {
    serde_json::to_writer_pretty(&mut out, analysis)?;
    out.write_all(b"\n")
}

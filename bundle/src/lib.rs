//! The vmlat trace bundle: the contract between recording and analysis.
//!
//! A bundle is one directory per recorded machine (see `docs/bundle-format.md`):
//!
//! - `manifest.json`: who, what and how was recorded, and every loss counter
//!   ([`Manifest`]); rewritten atomically at start, periodically and at stop.
//! - `events.vmlat`: every non-packet record ([`Record`]) in CRC-framed chunks,
//!   in CLOCK_MONOTONIC order, written as a stream ([`EventWriter`]) and read as a
//!   stream ([`EventReader`]) that stops cleanly at a torn tail.
//! - `pcap/*.pcap`: one standard nanosecond pcap per capture point.
//! - `keepalived-journal.json`: keepalived's lines from the systemd journal over the
//!   recording, where the machine has one.
//!
//! This crate needs no privileges and no C libraries, so that a bundle recorded on a
//! production box can be analyzed on a laptop.

mod comm;
mod error;
mod inventory;
mod manifest;
mod reader;
mod record;
mod writer;

pub use error::BundleError;
pub use inventory::{inventory, CaptureInventory, Counts, Inventory};
pub use manifest::{
    comm_matches, CaptureInfo, JournalCopy, Losses, Manifest, RecordedSet, Role, Status,
    VcpuTscOffset, VmInfo, VmTap, FORMAT_VERSION, MANIFEST_FILE,
};
pub use reader::{read_bundle_events, EventReader, ReadSummary};
pub use record::{
    CgroupHierarchy, ClockAnchor, Comm, CpuSample, DiskSample, FreezerSample, FreezerState, Record,
    RecordKind, TaskKind, TaskSample,
};
pub use writer::{EventWriter, EVENTS_VERSION, EVENTS_VERSION_MIN};

/// File name of the event stream inside a bundle directory.
pub const EVENTS_FILE: &str = "events.vmlat";
/// Directory holding one pcap per capture point inside a bundle directory.
pub const PCAP_DIR: &str = "pcap";
/// keepalived's lines from the systemd journal, one `journalctl -o json` object a line.
pub const KEEPALIVED_JOURNAL_FILE: &str = "keepalived-journal.json";

/// The UDP port of the clock probes a host recorder sends into its guests' taps
/// (`vmlat record --clock-probes`): both machines capture them, so that their clocks
/// can be lined up from packets that cross in both directions (`docs/bundle-format.md`).
pub const CLOCK_PROBE_PORT: u16 = 47474;

/// A bundle holds packet payloads: its directories are 0750 and its files 0640 (less
/// where the umask says so), never readable by every user.
pub const BUNDLE_DIR_MODE: u32 = 0o750;
/// See [`BUNDLE_DIR_MODE`].
pub const BUNDLE_FILE_MODE: u32 = 0o640;

/// Creates a new file of a bundle (it must not exist), with [`BUNDLE_FILE_MODE`].
pub fn create_bundle_file(path: &std::path::Path) -> std::io::Result<std::fs::File> {
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::File::options()
        .write(true)
        .create_new(true)
        .mode(BUNDLE_FILE_MODE)
        .open(path)
}

//! What the bundle's integration tests share: a bundle directory holding a manifest
//! and an event stream of given records.

use std::path::Path;

use vmlat_bundle::{
    EventWriter, Losses, Manifest, Record, RecordedSet, Role, Status, EVENTS_FILE, FORMAT_VERSION,
};

/// Writes `records` into the event stream at `path`.
pub fn write(path: &Path, records: &[Record]) {
    let mut writer = EventWriter::create(path).unwrap();
    for record in records {
        writer.append(record).unwrap();
    }
    writer.flush().unwrap();
}

/// Stores a complete guest bundle in `dir` that recorded `tracepoints`, with `records`
/// as its event stream.
pub fn store_bundle(dir: &Path, tracepoints: &[&str], records: &[Record]) {
    let manifest = Manifest {
        format_version: FORMAT_VERSION,
        vmlat_version: "test".into(),
        hostname: "vr1".into(),
        role: Role::Guest,
        kernel: "6.18.0".into(),
        arch: "x86_64".into(),
        cpus: 2,
        boot_id: "b".into(),
        command_line: vec![],
        started_realtime_ns: 0,
        started_monotonic_ns: 900,
        stopped_realtime_ns: None,
        stopped_monotonic_ns: None,
        status: Status::Complete,
        recorded: RecordedSet {
            tracepoints: tracepoints.iter().map(|t| t.to_string()).collect(),
            ..RecordedSet::default()
        },
        losses: Losses::default(),
    };
    manifest.store(dir).unwrap();
    write(&dir.join(EVENTS_FILE), records);
}

//! Writes the watch window as a normal bundle (`docs/bundle-format.md`), readable by
//! `vmlat analyze` like any other: the same manifest, event stream and pcaps that
//! `vmlat record` writes, with the bundle crate's writer and the recorder's pcap file.

use std::path::{Path, PathBuf};

use vmlat_bundle::{
    BundleError, CaptureInfo, EventWriter, Manifest, Record, Status, BUNDLE_DIR_MODE, EVENTS_FILE,
    PCAP_DIR,
};
use vmlat_tracer::capture::{CaptureError, PacketSink, PcapFile};
use vmlat_tracer::clock::anchor;
use vmlat_tracer::journal;

use crate::window::Window;

/// Why an incident's bundle could not be written.
#[derive(Debug, thiserror::Error)]
pub enum SpillError {
    #[error(
        "cannot create the incident directory {path}: {source} (check -o and its permissions)"
    )]
    CreateDir {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Bundle(#[from] BundleError),
    #[error(transparent)]
    Capture(#[from] CaptureError),
}

/// Writes everything in `window` into a new bundle directory `dir`: `manifest` (the
/// watch's, with the captures' descriptions in `captures`, in the window's order) gets
/// the window's first clock anchor as its start, now as its stop, and the packet counts
/// written. Returns the manifest written.
pub fn write_bundle(
    dir: &Path,
    window: &Window,
    mut manifest: Manifest,
) -> Result<Manifest, SpillError> {
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(BUNDLE_DIR_MODE)
        .create(dir.join(PCAP_DIR))
        .map_err(|source| SpillError::CreateDir {
            path: dir.to_path_buf(),
            source,
        })?;
    let mut events = EventWriter::create(&dir.join(EVENTS_FILE))?;
    let mut first_anchor = None;
    let mut last_t = 0;
    for record in window.records() {
        if let (None, Record::Clock(a)) = (&first_anchor, record) {
            first_anchor = Some(*a);
        }
        last_t = last_t.max(record.time());
        events.append(record)?;
    }
    events.append(&Record::Losses {
        t: last_t,
        losses: manifest.losses.clone(),
    })?;
    events.sync()?;
    let captures: &mut Vec<CaptureInfo> = &mut manifest.recorded.captures;
    for (i, capture) in captures.iter_mut().enumerate() {
        let mut pcap = PcapFile::create(&dir.join(&capture.file), capture.linktype)?;
        capture.packets = 0;
        for packet in window.packets(i) {
            pcap.packet(packet.timestamp, packet.wire_len, &packet.data)?;
            capture.packets += 1;
        }
        pcap.flush()?;
    }
    let end = anchor();
    let start = first_anchor.unwrap_or(end);
    manifest.started_realtime_ns = start.realtime_ns;
    manifest.started_monotonic_ns = start.monotonic_ns;
    manifest.stopped_realtime_ns = Some(end.realtime_ns);
    manifest.stopped_monotonic_ns = Some(end.monotonic_ns);
    manifest.recorded.keepalived_journal =
        journal::copy_keepalived_journal(dir, start.realtime_ns, end.realtime_ns);
    manifest.status = Status::Complete;
    manifest.store(dir)?;
    Ok(manifest)
}

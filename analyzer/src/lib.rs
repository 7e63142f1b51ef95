//! vmlat's analyzer: reads bundles and capture files, finds heartbeat gaps and
//! failovers, and names the hop where the time was lost.
//!
//! This crate holds the packet half: [`analyze_captures`] decodes every heartbeat in
//! the inputs ([`decode`]), follows each stream ([`streams`]) and returns one typed
//! [`Analysis`] that the renderers in [`report`] turn into text or JSON. Every gap's
//! verdict is [`Verdict::Inconclusive`] ("no scheduler data") until the attribution pass
//! replaces it with what the bundle's events show.
//!
//! Reading is streaming: capture files are read one at a time, packet by packet, and
//! what is kept grows with the number of streams, not of packets.

pub mod decode;
mod error;
pub mod input;
pub mod model;
pub mod pcapfile;
pub mod reorder;
pub mod report;
pub mod streams;
pub mod time;

use std::collections::HashMap;
use std::path::PathBuf;
use std::str::FromStr;

pub use decode::{Heartbeat, LinkType, Malformed, Protocol};
pub use error::AnalyzeError;
pub use model::*;
pub use time::Timestamp;

use decode::udp::{PORT_BFD, PORT_COROSYNC};
use input::Source;
use pcapfile::Record;
use reorder::Reorder;
use streams::{CaptureId, Tracker};

/// How to analyze.
#[derive(Debug, Clone, PartialEq)]
pub struct AnalyzeOptions {
    /// A gap is an inter-arrival time above `gap_factor` × the advertised interval.
    pub gap_factor: f64,
    /// UDP destination ports that carry heartbeats, besides the defaults (corosync 5405,
    /// BFD 3784), from `--heartbeat udp:PORT`.
    pub heartbeats: Vec<HeartbeatPort>,
    /// How far out of time order packets of one file may be (see [`reorder`]).
    pub reorder_window_ns: i64,
}

impl Default for AnalyzeOptions {
    fn default() -> Self {
        AnalyzeOptions {
            gap_factor: 1.5,
            heartbeats: Vec::new(),
            reorder_window_ns: 100_000_000,
        }
    }
}

impl AnalyzeOptions {
    /// Every watched UDP port: the defaults and the configured ones, sorted.
    pub fn udp_ports(&self) -> Vec<u16> {
        let mut ports = vec![PORT_COROSYNC, PORT_BFD];
        ports.extend(self.heartbeats.iter().map(|h| h.0));
        ports.sort_unstable();
        ports.dedup();
        ports
    }
}

/// A `--heartbeat` value: `udp:PORT`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HeartbeatPort(pub u16);

impl FromStr for HeartbeatPort {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let port = s
            .strip_prefix("udp:")
            .ok_or_else(|| format!("'{s}': a heartbeat is udp:PORT, e.g. udp:5405"))?;
        match port.parse::<u16>() {
            Ok(p) if p > 0 => Ok(HeartbeatPort(p)),
            _ => Err(format!("'{s}': the port must be a number from 1 to 65535")),
        }
    }
}

/// Analyzes capture files and bundle directories.
///
/// Every input is resolved first, so that a wrong path is an error before any reading;
/// then each capture file is read once, in order. Packets of different files never
/// share a capture point unless they share a capture name.
pub fn analyze_captures(
    inputs: &[PathBuf],
    opts: &AnalyzeOptions,
) -> Result<Analysis, AnalyzeError> {
    let sources = input::resolve(inputs)?;
    let ports = opts.udp_ports();
    let mut tracker = Tracker::new(opts.gap_factor);
    let mut summaries = Vec::with_capacity(sources.len());
    for source in &sources {
        summaries.push(read_source(source, &ports, opts, &mut tracker)?);
    }
    let found = tracker.finish();
    Ok(Analysis {
        format_version: FORMAT_VERSION,
        gap_factor: opts.gap_factor,
        heartbeat_ports: ports,
        malformed_packets: summaries.iter().map(|s| s.malformed).sum(),
        inputs: summaries,
        streams: found.streams,
        failovers: found.failovers,
        split_brains: found.split_brains,
        gaps: found.gaps,
        disks: Vec::new(),
    })
}

/// Reads one capture file into the tracker, through a reorder buffer.
fn read_source(
    source: &Source,
    ports: &[u16],
    opts: &AnalyzeOptions,
    tracker: &mut Tracker,
) -> Result<InputSummary, AnalyzeError> {
    let mut summary = InputSummary {
        input: source.input.display().to_string(),
        file: source.file.display().to_string(),
        ..InputSummary::default()
    };
    let mut reorder: Reorder<(CaptureId, Heartbeat)> = Reorder::new(opts.reorder_window_ns);
    // (interface, SLL2 ifindex) → capture point, so that names are built once each.
    let mut captures: HashMap<(usize, Option<u32>), CaptureId> = HashMap::new();
    let malformed = |summary: &mut InputSummary, m: Malformed| {
        summary.malformed += 1;
        *summary
            .malformed_reasons
            .entry(m.0.to_string())
            .or_default() += 1;
    };
    let end = pcapfile::read_capture(&source.file, &source.capture, |record| match record {
        Record::Packet {
            interface,
            t_ns,
            data,
        } => {
            summary.packets += 1;
            match decode::decode(interface.link_type, t_ns, data, ports) {
                Ok(Some(hb)) => {
                    summary.heartbeats += 1;
                    let key = (interface.index, hb.ifindex);
                    let capture = *captures.entry(key).or_insert_with(|| {
                        let name = match hb.ifindex {
                            Some(ifindex) => format!("{}:if{ifindex}", interface.name),
                            None => interface.name.clone(),
                        };
                        if !summary.captures.contains(&name) {
                            summary.captures.push(name.clone());
                        }
                        tracker.capture_id(&name)
                    });
                    reorder.push(hb.t_ns, (capture, hb), |(c, h)| tracker.observe(c, &h));
                }
                Ok(None) => summary.ignored += 1,
                Err(m) => malformed(&mut summary, m),
            }
        }
        Record::Malformed(m) => malformed(&mut summary, m),
    })?;
    reorder.drain(|(c, h)| tracker.observe(c, &h));
    summary.late = reorder.late();
    summary.format = end.format.name().to_string();
    summary.torn_tail = end.stopped.is_some();
    summary.stop_reason = end.stopped;
    summary.captures.sort();
    Ok(summary)
}

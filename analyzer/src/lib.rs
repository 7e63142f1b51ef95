//! vmlat's analyzer: reads bundles and capture files, finds every heartbeat silence,
//! takeover and split-brain, and names the hop where the time was lost.
//!
//! [`analyze`] runs two passes. The packet pass decodes every heartbeat in the inputs
//! ([`decode`]), follows each stream to its gaps and failovers (`streams`), and groups
//! what every capture point saw of one event into one [`Incident`] (`incidents`). The
//! attribution pass reads the captures and the bundles' event streams once more and
//! gives every incident its hop table, verdict and evidence (`docs/verdicts.md`), with
//! the material of its charts ([`GapContext`]); a bundle's packets and events are put
//! on one time line by its clock (`align`). Given bundles of several machines, a
//! pre-pass first reads their captures for the packets two machines both saw, and puts
//! every machine's time line on one reference machine's (`clock_sync`), so that both
//! passes see one time line. The one typed [`Analysis`] is rendered by
//! [`report`] as text or JSON, and by the plots crate as charts, HTML and a trace
//! ([`trace`] walks a bundle's events for it on the same clock).
//!
//! Reading is streaming: capture files and event streams are read one at a time,
//! record by record. What is kept grows with the number of streams and with what falls
//! into the incidents' evidence windows, not with the length of the recording (unless
//! [`AnalyzeOptions::keep_adverts`] asks for every advert's time, for the charts).

mod align;
mod attribute;
mod clock_sync;
pub mod decode;
mod error;
mod incidents;
mod input;
mod keepalived_log;
mod model;
mod pcapfile;
mod pipeline;
mod reorder;
pub mod report;
mod streams;
pub mod syscall;
mod time;
pub mod trace;

use std::collections::HashMap;
use std::net::IpAddr;
use std::path::PathBuf;
use std::str::FromStr;
use std::sync::Arc;

use rustc_hash::FxHashMap;

/// What the fuzz targets (`fuzz/`, `docs/fuzzing.md`) reach that no renderer needs.
#[cfg(feature = "fuzzing")]
pub mod fuzzing {
    pub use crate::keepalived_log::DateContext;

    /// Reads a keepalived log from bytes, as `--keepalived-log` does a file.
    pub fn read_keepalived_log(bytes: &[u8], ctx: &DateContext) -> std::io::Result<u64> {
        crate::keepalived_log::read_filtered(bytes, ctx, |_| true).map(|s| s.read)
    }
}

pub use align::{Alignment, Bound, ClockJump, ClockPiece, CrossMachine, Direction, PacketSync};
pub use decode::{Heartbeat, LinkType, Malformed, Protocol};
pub use error::AnalyzeError;
pub use model::*;
pub use time::Timestamp;

use decode::udp::{PORT_BFD, PORT_COROSYNC};
use input::Source;
use pcapfile::Record;
use reorder::Reorder;
pub use streams::{CaptureId, SenderState, StreamEvent, Tracker};

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
    /// How far before a gap the evidence window starts (`--window`): the recording
    /// from the gap's start minus this to its end plus one interval is examined, so that
    /// what led into the silence (the last send, a signal, a blocking syscall) is seen.
    pub window_ns: i64,
    /// Keep every advert's time and priority in [`Analysis::adverts`], for charts that
    /// draw packets one by one. Memory grows with the number of adverts (16 bytes
    /// each), never with other packets.
    pub keep_adverts: bool,
    /// keepalived's own logs (`--keepalived-log`): their lines in each incident's window
    /// go into [`Incident::keepalived_log`] (formats: the `keepalived_log` module). When
    /// none is given, the bundles' copies of keepalived's journal lines are read.
    pub keepalived_logs: Vec<PathBuf>,
    /// The offset from UTC, in seconds east, of the keepalived log lines that do not carry
    /// their own (`--log-utc-offset`; console log, classic syslog).
    pub log_utc_offset_secs: i32,
}

impl Default for AnalyzeOptions {
    fn default() -> Self {
        AnalyzeOptions {
            gap_factor: 1.5,
            heartbeats: Vec::new(),
            reorder_window_ns: 100_000_000,
            window_ns: 1_000_000_000,
            keep_adverts: false,
            keepalived_logs: Vec::new(),
            log_utc_offset_secs: 0,
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

/// Analyzes capture files and bundle directories: the packet pass, then the
/// attribution pass over the bundles' events ([`attribute`]).
///
/// Every input (and keepalived log) is resolved first, so that a wrong path is an error
/// before any reading. keepalived's logs are read last, once, for the incidents' windows:
/// those given, or else the journal lines the bundles carry.
pub fn analyze(inputs: &[PathBuf], opts: &AnalyzeOptions) -> Result<Analysis, AnalyzeError> {
    let mut sources = input::resolve(inputs)?;
    let logs = if opts.keepalived_logs.is_empty() {
        keepalived_log::open(&input::bundle_journals(inputs))?
    } else {
        keepalived_log::open(&opts.keepalived_logs)?
    };
    clock_sync::align(&mut sources, opts)?;
    let mut analysis = packet_pass(&sources, opts)?;
    attribute::attribute(&mut analysis, inputs, &sources, opts)?;
    keepalived_log::add(
        &mut analysis,
        logs,
        opts.log_utc_offset_secs,
        opts.window_ns,
    )?;
    Ok(analysis)
}

/// The packet half alone: streams, failovers, split-brains, gaps and the incidents
/// they make, without hop tables, every incident `inconclusive` ("no scheduler data").
pub fn analyze_captures(
    inputs: &[PathBuf],
    opts: &AnalyzeOptions,
) -> Result<Analysis, AnalyzeError> {
    let mut sources = input::resolve(inputs)?;
    clock_sync::align(&mut sources, opts)?;
    packet_pass(&sources, opts)
}

/// Reads each capture file once, in order. Packets of different files never share a
/// capture point unless they share a capture name.
fn packet_pass(sources: &[Source], opts: &AnalyzeOptions) -> Result<Analysis, AnalyzeError> {
    let ports = opts.udp_ports();
    let mut tracker = Tracker::new(opts.gap_factor, opts.keep_adverts);
    let summaries = pipeline::read_into(sources, &ports, opts, &mut tracker)?;
    let mut found = tracker.finish();
    let incidents = incidents::group(&mut found.gaps, &found.failovers, &found.split_brains);
    Ok(Analysis {
        format_version: FORMAT_VERSION,
        gap_factor: opts.gap_factor,
        window_ms: time::ms(i128::from(opts.window_ns)),
        heartbeat_ports: ports,
        malformed_packets: summaries.iter().map(|s| s.malformed).sum(),
        inputs: summaries,
        bundles: Vec::new(),
        alignments: Vec::new(),
        keepalived_logs: Vec::new(),
        streams: found.streams,
        failovers: found.failovers,
        split_brains: found.split_brains,
        gaps: found.gaps,
        incidents,
        disks: Vec::new(),
        adverts: found.adverts,
    })
}

/// Where the heartbeats of a capture file go: the stream tracker in the packet pass,
/// the gap windows' packet lanes in the attribution pass.
pub(crate) trait HeartbeatSink {
    /// Identifies a capture point, called once per capture point and file.
    type Capture: Copy;
    fn capture(&mut self, name: &str) -> Self::Capture;
    /// Takes one heartbeat; each capture point's come in time order.
    fn observe(&mut self, capture: Self::Capture, hb: &Heartbeat);
    /// The end of a capture point's recording, after its last heartbeat.
    fn end(&mut self, _capture: Self::Capture, _t_ns: i64) {}
}

impl HeartbeatSink for Tracker {
    type Capture = CaptureId;
    fn capture(&mut self, name: &str) -> CaptureId {
        self.capture_id(name)
    }
    fn observe(&mut self, capture: CaptureId, hb: &Heartbeat) {
        self.observe_quietly(capture, hb);
    }
    fn end(&mut self, capture: CaptureId, t_ns: i64) {
        self.end_capture(capture, t_ns)
    }
}

/// What tells the heartbeat streams of one capture file apart: interface, SLL2
/// ifindex, protocol, group, VLAN, source, destination.
type StreamTagKey = (
    usize,
    Option<u32>,
    Protocol,
    u16,
    Option<u16>,
    IpAddr,
    IpAddr,
);

/// What tells the capture points of one capture file apart: interface, SLL2 ifindex.
type CaptureKey = (usize, Option<u32>);

/// Reads one capture file into `sink`, through a reorder buffer. The packets of a
/// bundle's capture get their times on the bundle's time line first
/// ([`align::PacketClock`]: realtime stamps → monotonic → UTC, as its events); a capture
/// file given alone keeps its stamps.
pub(crate) fn read_source<S: HeartbeatSink>(
    source: &Source,
    ports: &[u16],
    opts: &AnalyzeOptions,
    sink: &mut S,
) -> Result<InputSummary, AnalyzeError> {
    let mut summary = InputSummary {
        input: source.input.display().to_string(),
        file: source.file.display().to_string(),
        ..InputSummary::default()
    };
    let mut reorder: Reorder<(S::Capture, Heartbeat)> = Reorder::new(opts.reorder_window_ns);
    // (interface, SLL2 ifindex) → capture point, so that names are built once each.
    let mut captures: HashMap<CaptureKey, S::Capture> = HashMap::new();
    // The last one looked up: runs of packets share it, and hashing the key for every
    // packet was a twelfth of the analysis of a capture.
    let mut last_capture: Option<(CaptureKey, S::Capture)> = None;
    let mut clock = source
        .clock
        .as_ref()
        .map(|c| align::PacketClock::new(Arc::clone(c), opts.reorder_window_ns));
    // Stream ids for the clock, which places a wall-clock step by the streams'
    // regularity. Looked up for every packet: SipHash of this key was a quarter of the
    // analysis of a bundle's capture, Fx a tenth of that.
    let mut stream_ids: FxHashMap<StreamTagKey, u64> = FxHashMap::default();
    let malformed = |summary: &mut InputSummary, m: Malformed| {
        summary.malformed += 1;
        *summary
            .malformed_reasons
            .entry(m.0.to_string())
            .or_default() += 1;
    };
    let mut last_ns = i64::MIN;
    // Every packet goes through the clock (its stamp tells where a step went), each
    // heartbeat on to the reorder buffer with its converted time.
    let mut deliver = |t_ns: i64, item: Option<(S::Capture, Heartbeat)>, sink: &mut S| {
        last_ns = last_ns.max(t_ns);
        if let Some(mut item) = item {
            item.1.t_ns = t_ns;
            reorder.push(t_ns, item, |(c, h)| sink.observe(*c, h));
        }
    };
    let end = pcapfile::read_capture(&source.file, &source.capture, |record| match record {
        Record::Packet {
            interface,
            t_ns,
            data,
        } => {
            summary.packets += 1;
            let item = match decode::decode(interface.link_type, t_ns, data, ports) {
                Ok(Some(hb)) => {
                    summary.heartbeats += 1;
                    let key = (interface.index, hb.ifindex);
                    let capture = match last_capture {
                        Some((last, capture)) if last == key => capture,
                        _ => {
                            let capture = *captures.entry(key).or_insert_with(|| {
                                let name = match hb.ifindex {
                                    Some(ifindex) => format!("{}:if{ifindex}", interface.name),
                                    None => interface.name.clone(),
                                };
                                if !summary.captures.contains(&name) {
                                    summary.captures.push(name.clone());
                                }
                                sink.capture(&name)
                            });
                            last_capture = Some((key, capture));
                            capture
                        }
                    };
                    Some((capture, hb))
                }
                Ok(None) => {
                    summary.ignored += 1;
                    None
                }
                Err(m) => {
                    malformed(&mut summary, m);
                    None
                }
            };
            match clock.as_mut() {
                Some(clock) => {
                    let tag = item.as_ref().map(|(_, hb)| {
                        let key = (
                            interface.index,
                            hb.ifindex,
                            hb.protocol,
                            hb.group,
                            hb.vlan,
                            hb.src,
                            hb.dst,
                        );
                        let next = stream_ids.len() as u64;
                        align::StreamTag {
                            id: *stream_ids.entry(key).or_insert(next),
                            interval_ns: hb.interval_ns,
                        }
                    });
                    clock.push(t_ns, tag, item, &mut |t, item| deliver(t, item, sink));
                }
                None => deliver(t_ns, item, sink),
            }
        }
        Record::Malformed(m) => malformed(&mut summary, m),
    })?;
    if let Some(clock) = clock.as_mut() {
        clock.finish(&mut |t, item| deliver(t, item, sink));
    }
    reorder.drain(|(c, h)| sink.observe(*c, h));
    let end_ns = last_ns.max(source.stopped_ns().unwrap_or(i64::MIN));
    if end_ns > i64::MIN {
        for &capture in captures.values() {
            sink.end(capture, end_ns);
        }
    }
    summary.late = reorder.late();
    summary.format = end.format.name().to_string();
    summary.torn_tail = end.stopped.is_some();
    summary.stop_reason = end.stopped;
    summary.captures.sort();
    Ok(summary)
}

//! The analysis result: one typed value that every renderer (text, JSON, charts) reads.
//! Its JSON form is documented in `docs/analysis-json.md`; bump [`FORMAT_VERSION`] on any
//! change a reader must know about.

use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;

use serde::Serialize;

use crate::decode::Protocol;
use crate::time::Timestamp;

/// Version of the analysis JSON.
pub const FORMAT_VERSION: u32 = 3;

/// Everything found in the inputs.
#[derive(Debug, Clone, Serialize)]
pub struct Analysis {
    pub format_version: u32,
    pub gap_factor: f64,
    /// How far before each incident its evidence window starts (`--window`).
    pub window_ms: f64,
    pub heartbeat_ports: Vec<u16>,
    /// One entry per capture file read.
    pub inputs: Vec<InputSummary>,
    /// One entry per bundle directory: its machine, events read, clock alignment.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub bundles: Vec<BundleSummary>,
    /// One entry per machine put on another's clock, or left on its wall clock beside
    /// others: the pairs of machines and how they were lined up (the detail is in each
    /// bundle's `alignment`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub alignments: Vec<MachineAlignment>,
    /// One entry per keepalived log given (`--keepalived-log`): what was read and dated.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub keepalived_logs: Vec<LogFileSummary>,
    /// Sum of every input's malformed packets.
    pub malformed_packets: u64,
    pub streams: Vec<Stream>,
    pub failovers: Vec<Failover>,
    pub split_brains: Vec<SplitBrain>,
    /// Every gap at every capture point: the observations incidents are made of.
    pub gaps: Vec<Gap>,
    /// One per event (a silence, a takeover, a split-brain), however many capture
    /// points and machines saw it, each with one verdict: what a person reads.
    pub incidents: Vec<Incident>,
    /// iostat-style figures of every device that did I/O, over the whole recording
    /// (bundles only), for the disk latency chart.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub disks: Vec<DiskLane>,
    /// Every advert of every stream, in time order (duplicates left out), when
    /// [`crate::AnalyzeOptions::keep_adverts`] asked for them: the packets behind the
    /// streams, for the charts that show them one by one. Not part of the JSON.
    #[serde(skip)]
    pub adverts: HashMap<StreamKey, Vec<Advert>>,
}

/// How one machine's clock was lined up with another's.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MachineAlignment {
    /// The machine whose times were moved.
    pub from: String,
    /// The machine it was put on; `None` when it stayed on its own wall clock.
    pub to: Option<String>,
    /// `packets` (the packets both captured) or `wall-clock`.
    pub method: &'static str,
    /// The first piece's offset and drift (`pieces` after each clock jump follow in
    /// the bundle's `alignment`).
    pub offset_ns: Option<i64>,
    pub drift_ppm: Option<f64>,
    /// The bound it reached; `None` when not bounded (wall clock, or one-sided).
    pub error_bound_ns: Option<u64>,
    pub matched_packets: u64,
    pub clock_jumps: usize,
    /// For `wall-clock`: why no packets lined it up.
    pub why: Option<String>,
}

impl MachineAlignment {
    /// The line-up of machine `host`, unless it is the reference others were put on.
    pub fn of(host: &str, cross: &crate::CrossMachine) -> Option<Self> {
        let none = MachineAlignment {
            from: host.to_string(),
            to: None,
            method: "wall-clock",
            offset_ns: None,
            drift_ppm: None,
            error_bound_ns: None,
            matched_packets: 0,
            clock_jumps: 0,
            why: None,
        };
        match cross {
            crate::CrossMachine::Reference { .. } => None,
            crate::CrossMachine::WallClock { why } => Some(MachineAlignment {
                why: Some(why.clone()),
                ..none
            }),
            crate::CrossMachine::Packets(p) => Some(MachineAlignment {
                to: Some(p.reference.clone()),
                method: "packets",
                offset_ns: p.pieces.first().map(|x| x.offset_ns),
                drift_ppm: p.pieces.first().map(|x| x.drift_ppm),
                error_bound_ns: p.error_bound_ns,
                matched_packets: p.matched,
                clock_jumps: p.jumps.len(),
                ..none
            }),
        }
    }
}

impl Analysis {
    /// The kept adverts of one stream, in time order; empty when they were not kept.
    pub fn adverts_of(&self, key: &StreamKey) -> &[Advert] {
        self.adverts.get(key).map_or(&[], Vec::as_slice)
    }
}

/// One advert of a stream as captured.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Advert {
    pub t: Timestamp,
    pub priority: Option<u8>,
}

/// What reading one capture file found.
#[derive(Debug, Clone, Default, Serialize)]
pub struct InputSummary {
    /// The path given: a capture file or a bundle directory.
    pub input: String,
    /// The capture file read.
    pub file: String,
    /// `pcap`, `pcapng`, or `empty` for a zero-length file.
    pub format: String,
    /// The capture points heartbeats were found at (see `docs/analysis-json.md` for the
    /// naming).
    pub captures: Vec<String>,
    pub packets: u64,
    pub heartbeats: u64,
    /// Well-formed packets that are not heartbeats (ARP, other protocols and ports).
    pub ignored: u64,
    pub malformed: u64,
    /// Malformed packets by reason.
    pub malformed_reasons: BTreeMap<String, u64>,
    /// Heartbeats further out of time order than the reorder window, skipped.
    pub late: u64,
    /// Reading stopped early: the last record was cut short (a capture killed while
    /// writing) or a record was corrupt. What came before it is analyzed.
    pub torn_tail: bool,
    pub stop_reason: Option<String>,
}

/// What reading one keepalived log (`--keepalived-log`) found.
#[derive(Debug, Clone, Default, Serialize)]
pub struct LogFileSummary {
    /// The path given.
    pub path: String,
    /// Non-blank lines read.
    pub lines: u64,
    /// keepalived's lines among them (dated).
    pub keepalived: u64,
    /// Lines no known format could date, skipped.
    pub undated: u64,
    /// Dated lines of other programs, skipped.
    pub foreign: u64,
    /// Lines longer than 64 KiB, read from their first 64 KiB.
    pub truncated: u64,
    /// keepalived's lines put next to at least one incident.
    pub attached: u64,
    /// The earliest and the latest of keepalived's lines; `None` without any.
    pub first: Option<Timestamp>,
    pub last: Option<Timestamp>,
}

/// What the attribution pass read from one bundle.
#[derive(Debug, Clone, Serialize)]
pub struct BundleSummary {
    /// The bundle directory given.
    pub input: String,
    pub host: String,
    pub role: vmlat_bundle::Role,
    /// Records read from `events.vmlat`.
    pub events: u64,
    /// Of those, the records kept as evidence: those in the incidents' windows (a
    /// silence longer than two minutes is kept at its two ends only).
    pub kept: u64,
    /// The most of those held at once: the incidents are judged one at a time, and
    /// the records no later incident reads are dropped after each.
    pub kept_peak: u64,
    /// The event stream ends torn (a recorder killed mid-write); what came before was
    /// read.
    pub torn_tail: bool,
    /// How its events were put on UTC.
    pub alignment: crate::align::Alignment,
    /// The loss counters at the end of the recording (manifest or last `Losses`
    /// record, whichever counted more).
    pub losses: vmlat_bundle::Losses,
    /// What the recorder could not record on its machine, with the reason.
    pub not_recorded: Vec<String>,
    /// What went wrong while recording without stopping it.
    pub warnings: Vec<String>,
    /// When the recording started (the manifest's first clock anchor).
    pub started: Timestamp,
    /// When it stopped: the manifest's last clock anchor, or the last record of a
    /// recorder that was killed.
    pub stopped: Timestamp,
}

/// Where a group of routers was heard: a capture point, and the protocol, VRID (or
/// UDP port) and VLAN they share. Flattened into streams, failovers and gaps.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct GroupKey {
    pub capture: String,
    pub protocol: Protocol,
    /// VRRP VRID, CARP VHID, or UDP destination port.
    pub vrid: u16,
    pub vlan: Option<u16>,
}

/// A stream: one sender of one group at one capture point.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct StreamKey {
    #[serde(flatten)]
    pub group: GroupKey,
    pub src: IpAddr,
    /// The unicast peer a unicast sender's adverts go to: each peer is its own stream,
    /// so that a loss toward one of them shows. `None` for multicast.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub peer: Option<IpAddr>,
}

/// Inter-arrival times of a stream, from an HdrHistogram (3 significant digits), max exact.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct IntervalStats {
    pub p50: f64,
    pub p99: f64,
    pub max: f64,
}

/// One stream's summary.
#[derive(Debug, Clone, Serialize)]
pub struct Stream {
    #[serde(flatten)]
    pub key: StreamKey,
    /// Last destination seen (a multicast group, or the unicast peer).
    pub dst: IpAddr,
    pub version: Option<u8>,
    /// Highest priority advertised (CARP: advskew); `priority_min` differs when it changed.
    pub priority: Option<u8>,
    pub priority_min: Option<u8>,
    pub adverts: u64,
    /// Copies of the previous packet seen again within 1 ms (a packet crossing the same
    /// capture point twice), not counted in `adverts`.
    pub duplicates: u64,
    /// The interval the sender advertises, last value seen.
    pub advert_interval_ms: Option<f64>,
    /// `None` with fewer than two adverts.
    pub interval_ms: Option<IntervalStats>,
    /// The silence after which a peer acts on this sender's absence, as its gaps'
    /// `critical_after_ms` is computed, from the group at the end of the inputs; `None`
    /// where that is (plain UDP, corosync, missing priority or detect mult).
    pub master_down_ms: Option<f64>,
    pub first: Timestamp,
    pub last: Timestamp,
}

/// How the advertising master of a group changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum FailoverKind {
    /// The old master went silent and a backup took over.
    MasterDown,
    /// A router with a higher priority took over while the master still advertised.
    Preempted,
    /// The master sent priority 0.
    Resigned,
}

impl FailoverKind {
    pub fn name(self) -> &'static str {
        match self {
            FailoverKind::MasterDown => "master-down",
            FailoverKind::Preempted => "preempted",
            FailoverKind::Resigned => "resigned",
        }
    }
}

/// A change of the advertising master of a group at a capture point.
#[derive(Debug, Clone, Serialize)]
pub struct Failover {
    #[serde(flatten)]
    pub group: GroupKey,
    /// The new master's first advertisement as master.
    pub at: Timestamp,
    pub from: IpAddr,
    pub to: IpAddr,
    pub kind: FailoverKind,
    /// The old master's last advertisement before `at`.
    pub from_last_seen: Timestamp,
    pub from_priority: Option<u8>,
    pub to_priority: Option<u8>,
}

/// Two or more routers advertising as master at once for longer than one interval.
#[derive(Debug, Clone, Serialize)]
pub struct SplitBrain {
    #[serde(flatten)]
    pub group: GroupKey,
    pub start: Timestamp,
    pub end: Timestamp,
    pub duration_ms: f64,
    pub routers: Vec<IpAddr>,
    /// The group's master when the split began: the others are the routers that took
    /// over without it falling silent.
    pub master: Option<IpAddr>,
}

/// Where a heartbeat's time was lost (`docs/verdicts.md`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Verdict {
    GuestKernel,
    GuestCpu,
    GuestIo,
    AppBlocked,
    AppStopped,
    VcpuPreempted,
    VmPaused,
    HostIo,
    Vnic,
    Network,
    Receiver,
    Inconclusive,
}

impl Verdict {
    pub fn name(self) -> &'static str {
        match self {
            Verdict::GuestKernel => "guest-kernel",
            Verdict::GuestCpu => "guest-cpu",
            Verdict::GuestIo => "guest-io",
            Verdict::AppBlocked => "app-blocked",
            Verdict::AppStopped => "app-stopped",
            Verdict::VcpuPreempted => "vcpu-preempted",
            Verdict::VmPaused => "vm-paused",
            Verdict::HostIo => "host-io",
            Verdict::Vnic => "vnic",
            Verdict::Network => "network",
            Verdict::Receiver => "receiver",
            Verdict::Inconclusive => "inconclusive",
        }
    }
}

/// The packet on either side of a gap, with what matches it across machines.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct PacketRef {
    pub t: Timestamp,
    pub ip_id: Option<u16>,
    pub ip_checksum: Option<u16>,
    pub checksum: u16,
    pub ifindex: Option<u32>,
    pub priority: Option<u8>,
}

/// What the gap threshold's interval came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum IntervalBasis {
    /// The interval the sender advertised in its packets.
    Advertised,
    /// The median inter-arrival so far (UDP heartbeats that do not say their interval).
    ObservedMedian,
}

/// A failover that happened during a gap.
#[derive(Debug, Clone, Serialize)]
pub struct Takeover {
    pub at: Timestamp,
    pub to: IpAddr,
    pub kind: FailoverKind,
}

/// An inter-arrival time longer than gap-factor × the interval.
#[derive(Debug, Clone, Serialize)]
pub struct Gap {
    #[serde(flatten)]
    pub stream: StreamKey,
    pub start: Timestamp,
    pub end: Timestamp,
    pub duration_ms: f64,
    pub interval_ms: f64,
    pub interval_basis: IntervalBasis,
    /// gap-factor × interval.
    pub threshold_ms: f64,
    /// The silence after which the peers act: VRRP's master-down interval, CARP's
    /// 3 × the backup's interval, BFD's detection time. `None` for plain UDP.
    pub critical_after_ms: Option<f64>,
    /// How `critical_after_ms` was computed, in words.
    pub critical_basis: Option<String>,
    /// The gap reached `critical_after_ms`: it could cause, or did cause, a takeover.
    pub critical: bool,
    /// Failovers of the group during the gap, in time order.
    pub takeovers: Vec<Takeover>,
    /// The sender had not come back when this capture point's recording ended: `end`
    /// is that end.
    pub open: bool,
    pub prev: PacketRef,
    /// The first packet after the gap; `None` for an open gap.
    pub next: Option<PacketRef>,
    /// The incident this gap is part of (its `id`).
    pub incident: usize,
}

/// What kind of event an incident is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum IncidentKind {
    /// The sender went quiet and came back.
    Silence,
    /// The sender went quiet and had not come back when the recording ended.
    Open,
    /// The master changed while its adverts kept flowing at its own capture points.
    Takeover,
    /// Two or more masters at once.
    SplitBrain,
}

impl IncidentKind {
    pub fn name(self) -> &'static str {
        match self {
            IncidentKind::Silence => "silence",
            IncidentKind::Open => "open",
            IncidentKind::Takeover => "takeover",
            IncidentKind::SplitBrain => "split-brain",
        }
    }
}

/// One event, seen at every capture point of every input, with one verdict.
#[derive(Debug, Clone, Serialize)]
pub struct Incident {
    /// 1-based, in time order, as every report numbers them.
    pub id: usize,
    pub kind: IncidentKind,
    pub protocol: Protocol,
    /// VRRP VRID, CARP VHID, or UDP destination port.
    pub vrid: u16,
    pub vlan: Option<u16>,
    /// The sender that went silent; for a takeover or split-brain, the master that
    /// kept advertising.
    pub src: IpAddr,
    /// The unicast peer the stream was sent to; `None` for multicast.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dst: Option<IpAddr>,
    /// Silence: the earliest last advert before it, over every capture point that went
    /// silent. Takeover and split-brain: when the other router began to advertise as
    /// master.
    pub start: Timestamp,
    /// Silence: the latest first advert after it, over every silent capture point;
    /// open: the end of the recording; takeover and split-brain: when one master was
    /// left.
    pub end: Timestamp,
    pub duration_ms: f64,
    /// The interval the sender advertised.
    pub interval_ms: f64,
    /// gap-factor × interval: a capture point whose adverts were further apart than
    /// this was silent.
    pub threshold_ms: f64,
    /// The silence after which a backup takes over (master-down interval).
    pub critical_after_ms: Option<f64>,
    pub critical_basis: Option<String>,
    /// The silence passed the master-down interval.
    pub critical: bool,
    /// The changes of master it caused or was, earliest sighting first.
    pub failovers: Vec<IncidentFailover>,
    /// The routers that advertised as master at once (split-brain).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub routers: Vec<IpAddr>,
    pub verdict: Verdict,
    /// The verdict in one sentence.
    pub summary: String,
    pub evidence: Vec<String>,
    /// The capture points along the stream's path, in path order (the sender's own
    /// interface first).
    pub path: Vec<PathRow>,
    /// The first capture point on the path that went silent.
    pub first_silent: Option<String>,
    /// What else happened on the machines in the incident's window.
    pub suspects: Vec<Suspect>,
    /// keepalived's own log lines from the window (`--keepalived-log`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub keepalived_log: Vec<LogEntry>,
    /// What the inputs show around the incident, lane by lane: the material of the
    /// verdict and of the close-up chart. `None` when only packets were given.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub context: Option<GapContext>,
}

/// A change of master, first seen at `capture`.
#[derive(Debug, Clone, Serialize)]
pub struct IncidentFailover {
    pub at: Timestamp,
    pub capture: String,
    pub from: IpAddr,
    pub to: IpAddr,
    pub kind: FailoverKind,
}

/// One capture point's view of an incident: a row of the hop table.
#[derive(Debug, Clone, Serialize)]
pub struct PathRow {
    pub capture: String,
    /// The host name of the bundle it belongs to; `None` for a capture file.
    pub host: Option<String>,
    /// The stream's last packet here at or before the silence began.
    pub last_before: Option<Timestamp>,
    /// Its first packet here at or after the silence ended.
    pub first_after: Option<Timestamp>,
    /// Adverts from the stream seen here during the silence.
    pub during: u64,
    /// This point's adverts were further apart than the gap threshold.
    pub silent: bool,
    /// How far behind the sender's send syscall (or, without syscalls, behind the
    /// earliest capture of the same packet) its packets were seen here: the median over
    /// the window's packets matched by IPv4 id and checksums (IPv6: by time order).
    pub delay_ms: Option<f64>,
    /// What `delay_ms` is measured from: `send` or `first-capture`.
    pub delay_from: Option<String>,
    /// How far `delay_ms` may be off because this point's clock is another machine's
    /// than the one it is measured from: 0 on the same machine, the two machines'
    /// alignment bounds added otherwise; `None` without a delay, or when a clock is not
    /// bounded (lined up by wall clock, or from packets one way only).
    pub clock_error_ms: Option<f64>,
}

impl PathRow {
    /// `0.424 ms`, with its clock error when it crosses machines: `0.424 ±0.050 ms`,
    /// `0.424 ±? ms` when not bounded; `None` without a delay.
    pub fn delay_text(&self) -> Option<String> {
        let d = self.delay_ms?;
        let clock = match self.clock_error_ms {
            Some(e) if e > 0.0 => format!(" ±{e:.3}"),
            None if self.host.is_some() => " ±?".to_string(),
            _ => String::new(),
        };
        Some(format!("{d:.3}{clock} ms"))
    }
}

/// What a suspect is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum SuspectKind {
    Exec,
    Fork,
    Exit,
    Signal,
    /// A top user of the sender's CPU during the silence.
    Cpu,
}

/// Something else that happened on a machine in an incident's window: who started
/// what, who killed what, who held the CPU.
#[derive(Debug, Clone, Serialize)]
pub struct Suspect {
    pub kind: SuspectKind,
    pub host: String,
    /// When it happened; `None` for a CPU share over the silence.
    pub at: Option<Timestamp>,
    pub tid: i32,
    /// The fact, in words, with the parent chain.
    pub text: String,
}

/// One of keepalived's own log lines.
#[derive(Debug, Clone, Serialize)]
pub struct LogEntry {
    pub t: Timestamp,
    /// How precise `t` is: 1 s for the console log and classic syslog, 1 µs for the
    /// precise journal and RFC 3339 formats.
    pub resolution_ns: i64,
    /// The VRRP instance it names.
    pub instance: Option<String>,
    /// `timer-late`, `receive-timeout`, `state`, `lower-priority`, `higher-priority` or
    /// `other`.
    pub event: String,
    pub text: String,
}

impl LogEntry {
    /// Its time of day, as precise as the log was: `21:19:22` or `21:19:22.123456`.
    pub fn time_of_day(&self) -> String {
        let full = self.t.time_of_day();
        let digits = match self.resolution_ns {
            r if r >= 1_000_000_000 => 0,
            r if r >= 1_000_000 => 3,
            r if r >= 1_000 => 6,
            _ => 9,
        };
        match full.split_once('.') {
            Some((secs, _)) if digits == 0 => secs.to_string(),
            Some((secs, frac)) => format!("{secs}.{}", frac.get(..digits).unwrap_or(frac)),
            None => full,
        }
    }
}

/// The recording around one incident, from `window_start` (its start minus
/// `--window`) to `window_end` (its end plus one interval). Every lane is present only
/// when its data was recorded.
#[derive(Debug, Clone, Serialize)]
pub struct GapContext {
    pub window_start: Timestamp,
    pub window_end: Timestamp,
    /// This group's packets at every capture point of every input, sender by sender.
    pub packets: Vec<CaptureLane>,
    /// The sending process (keepalived's VRRP child), state by state.
    pub sender: Option<TaskLane>,
    /// When its send syscalls of this group's adverts began (syscalls recorded only).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub sends: Vec<Timestamp>,
    /// What ran on the CPUs the sender used.
    pub cpus: Vec<CpuLane>,
    /// iostat-style figures of the devices that moved in the window.
    pub disks: Vec<DiskLane>,
    /// Steal time of the CPU the sender used most, percent of CPU time per sample
    /// interval.
    pub steal: Vec<SeriesPoint>,
    /// On a host bundle, the VM's vCPU threads, state by state.
    pub vcpus: Vec<TaskLane>,
}

/// One capture point's packets of one sender.
#[derive(Debug, Clone, Serialize)]
pub struct CaptureLane {
    pub capture: String,
    pub src: IpAddr,
    pub packets: Vec<Timestamp>,
}

/// What a task was doing, as told by sched_switch/sched_wakeup, signals and syscalls.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum TaskState {
    Running,
    /// Woken (or preempted) but waiting for a CPU.
    Runnable,
    /// Asleep in its usual wait (keepalived's poll/epoll/select).
    Sleeping,
    /// Off CPU inside another syscall, or in state D (`detail` names the syscall).
    Blocked,
    /// State T: SIGSTOP or a tracer.
    Stopped,
    /// Held by the cgroup freezer, as its recorded freezer state says (v1 shows D in
    /// sched_switch, v2 S).
    Frozen,
    /// Not known from the recording (before its first event).
    Unknown,
}

impl TaskState {
    /// The state as the JSON names it: `running`, `runnable`, ...
    pub fn name(self) -> &'static str {
        match self {
            TaskState::Running => "running",
            TaskState::Runnable => "runnable",
            TaskState::Sleeping => "sleeping",
            TaskState::Blocked => "blocked",
            TaskState::Stopped => "stopped",
            TaskState::Frozen => "frozen",
            TaskState::Unknown => "unknown",
        }
    }
}

/// A span of one state.
#[derive(Debug, Clone, Serialize)]
pub struct StateSpan {
    pub start: Timestamp,
    pub end: Timestamp,
    pub state: TaskState,
    /// The syscall it was in, the signal that stopped it, the CPU it waited for...
    pub detail: Option<String>,
}

/// One task's states over the window.
#[derive(Debug, Clone, Serialize)]
pub struct TaskLane {
    /// The host name of the bundle it came from.
    pub host: String,
    pub tgid: i32,
    pub tid: i32,
    pub comm: String,
    pub spans: Vec<StateSpan>,
}

/// Who held one CPU, span by span (idle spans have `tid` 0).
#[derive(Debug, Clone, Serialize)]
pub struct CpuLane {
    pub host: String,
    pub cpu: u32,
    pub spans: Vec<CpuSpan>,
}

#[derive(Debug, Clone, Serialize)]
pub struct CpuSpan {
    pub start: Timestamp,
    pub end: Timestamp,
    pub tid: i32,
    pub comm: String,
}

/// One device's iostat figures, one point per sample interval, computed exactly as
/// iostat -x does from consecutive /proc/diskstats samples.
#[derive(Debug, Clone, Serialize)]
pub struct DiskLane {
    pub host: String,
    pub device: String,
    pub points: Vec<DiskPoint>,
}

#[derive(Debug, Clone, Copy, Serialize)]
pub struct DiskPoint {
    /// End of the sample interval.
    pub t: Timestamp,
    pub r_await_ms: f64,
    pub w_await_ms: f64,
    /// Average queue size (iostat's aqu-sz).
    pub aqu_sz: f64,
    pub util_pct: f64,
    /// Requests in flight at `t`: the only sign of an I/O that has not completed yet.
    pub in_flight: u64,
}

/// A value over time.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct SeriesPoint {
    pub t: Timestamp,
    pub value: f64,
}

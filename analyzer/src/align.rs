//! Clock alignment: puts a bundle's events and packets on one UTC time line per
//! machine.
//!
//! A bundle's events carry the recording machine's CLOCK_MONOTONIC; its pcaps carry
//! CLOCK_REALTIME. The recorder pairs the two in `Clock` anchors (at start, every second
//! and at stop). Linux changes realtime − monotonic ("the offset") only when the wall
//! clock is stepped (NTP or chrony stepping it, `date -s`, a leap second): slewing and
//! frequency corrections move both clocks alike.
//!
//! **The time line.** A machine's UTC is its monotonic clock plus the offset of its first
//! anchor (the manifest's start pair): [`MachineClock::to_utc`]. A wall-clock step
//! during the recording moves nothing on it: an interval between two times of one
//! machine is what its monotonic clock measured, whether they are events or packets.
//! Its UTC is the wall clock as it read when the recording started; after a step the
//! machine's own wall clock is off it by the steps so far.
//!
//! **Events** are converted while the event stream is read ([`MachineClock`]): records
//! arrive in monotonic order and nothing needs to be kept. The anchors are fed to it in
//! the same order: they give the [`Alignment`] figures and the offset in force
//! ([`MachineClock::offset_ns`]), in which a step shows.
//!
//! **Packets** of a bundle are converted realtime → monotonic by [`PacketClock`], then to
//! UTC by the same [`MachineClock`]. The bundle's anchors are read once
//! ([`BundleClock::read`]) and grouped into epochs: runs of consecutive anchors with the
//! same offset (to within their read uncertainties). Between two steps the offset is
//! constant, so a packet stamped where only one epoch can explain its stamp converts
//! exactly (to within the anchors' read uncertainty, tens of ns). A step happened
//! somewhere between the last anchor of one epoch and the first of the next, one anchor
//! period P (1 s) apart; a packet stamped around it may carry either offset, and its two
//! readings differ by exactly the step:
//! - a step forward by Δ leaves a hole in realtime: a stamp is ambiguous only if Δ < P,
//!   within a realtime window of P − Δ;
//! - a step back by Δ replays Δ of realtime: a stamp within P + Δ around the step may be
//!   from before or after it. Packets are captured in time order, so a stamp that goes
//!   back by more than the reorder window marks the first packet after the step. No
//!   stamp goes back only when nothing was captured for at least Δ across the step.
//!
//! Ambiguous packets are held (at most [`MAX_PENDING`]; beyond, the oldest are taken as
//! before the step) until a packet that only one side explains arrives. The packets held
//! are in capture order, so the answer is one split point: those before it took the old
//! offset, those after it the new one. Of the split points consistent with capture order,
//! the one that leaves every heartbeat stream most regular is taken: the least total
//! departure of each stream's intervals from its advertised interval (a concave cost, so
//! that one silence is preferred to two); ties go to the split nearest the middle of the
//! step's anchor interval.
//!
//! The bound: a packet time is exact or off by exactly one step, and only for packets
//! stamped in a step's window; the error is at most [`Alignment::max_step_ns`] (plus the
//! anchor uncertainty, [`Alignment::error_bound_ns`]), below P for a step forward. A
//! step back inside a silence of the sender keeps the silence's length exact whenever
//! the stream's intervals tell where the step went; when they cannot (a regular stream
//! whose silence is exactly one step longer than its interval), every split gives the
//! same silence length and it is placed across the step's anchor interval: its length
//! is exact and its position uncertain by up to about half the step.
//!
//! **Across machines** (a guest bundle and its host's, a peer's) each machine's time line
//! is put on one reference machine's (that of the first bundle with captures and role
//! `host`, else of the first bundle with captures) by a [`CrossClock`]: a piecewise
//! linear map (an offset and a drift per piece) that [`MachineClock`] applies after its
//! own conversion, so that packets ([`PacketClock`]) and events (the attribution pass)
//! take the one conversion path.
//! `crate::clock_sync` estimates it from the packets both machines captured and says
//! how well in [`CrossMachine::Packets`]: a packet seen on machine A at `a` and on B at
//! `b` (both on their own time lines) bounds the offset θ that puts B's times on A's
//! (`A = B + θ`): θ ≥ a − b when it went from A to B, θ ≤ a − b when it went from B to
//! A. Packets both ways bound θ from both sides (error bound: half the width left);
//! one way only bounds it from one side, by the one-way delay, which nothing measures:
//! the estimate is then one-sided and says on which side. A guest paused (QMP `stop`,
//! `cont`), suspended or migrated has its clocks stopped meanwhile: its time line falls
//! behind the host's by the pause, which shows as a jump of the matched packets'
//! offset; each piece between two jumps is aligned separately, and the jumps are
//! reported ([`ClockJump`]). Where a piece ends between its last matched packet and the
//! next piece's first is not known: the map changes half way, and a time of that stretch
//! may be off by the jump. Machines that shared no packet stay on their wall clocks
//! ([`CrossMachine::WallClock`], with why). Other ways of relating clocks (KVM's TSC
//! offsets) would be more [`CrossMachine`] variants feeding the same [`CrossClock`].

use std::collections::{HashMap, VecDeque};
use std::path::Path;
use std::sync::Arc;

use rustc_hash::FxHashMap;
use serde::Serialize;

use crate::time::Timestamp;
use vmlat_bundle::{
    read_bundle_events, BundleError, ClockAnchor, Manifest, Record, Role, EVENTS_FILE,
};

/// How one machine's UTC is related to the reference machine's (see the module
/// documentation); `docs/analysis-json.md` documents its JSON form.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "kebab-case", tag = "method")]
pub enum CrossMachine {
    /// Each machine's own wall clock is trusted as is: the error between machines is
    /// whatever their NTP leaves, not measured. `why`: what left it so.
    WallClock { why: String },
    /// This machine's time line is the one the `aligned` machines were put on.
    Reference { aligned: Vec<String> },
    /// Put on the reference machine's time line by the packets both captured.
    Packets(PacketSync),
}

impl CrossMachine {
    pub fn describe(&self) -> String {
        match self {
            CrossMachine::WallClock { why } => format!(
                "by wall clock only (each machine's own CLOCK_REALTIME; the error between machines is unknown: {why})"
            ),
            CrossMachine::Reference { aligned } => format!(
                "as the reference clock, which {} {} put on by packets both captured",
                aligned.join(", "),
                if aligned.len() == 1 { "was" } else { "were" }
            ),
            CrossMachine::Packets(p) => p.describe(),
        }
    }
}

/// How a machine was put on the reference machine's time line by matched packets.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PacketSync {
    /// The reference machine's host name.
    pub reference: String,
    /// Packets captured by both machines, matched by IPv4 identification and checksums.
    pub matched: u64,
    /// Of those, the ones that went to the reference machine, and from it.
    pub to_reference: u64,
    pub from_reference: u64,
    /// How the packets' directions were told: `both-ways`, `delays` or `assumed` (see
    /// `docs/analysis-json.md`).
    pub direction: Direction,
    /// The stretches between clock jumps, each aligned on its own.
    pub pieces: Vec<ClockPiece>,
    /// Where this machine's clock jumped against the reference's.
    pub jumps: Vec<ClockJump>,
    /// The largest error bound of a piece; `None` when a piece is one-sided.
    pub error_bound_ns: Option<u64>,
    /// Some piece saw packets one way only: its offset is bounded on one side only.
    pub one_sided: bool,
    /// Where the reference first saw the packets this machine sent, most first (none
    /// when their direction was only assumed): a guest's own tap, on its host.
    pub sent_first_seen_at: Vec<FirstSeen>,
}

/// A capture point of the reference machine, and how many of the packets another
/// machine sent it saw before any other capture point.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FirstSeen {
    pub capture: String,
    pub packets: u64,
}

impl PacketSync {
    fn describe(&self) -> String {
        let bound = match self.error_bound_ns {
            Some(b) => format!("± {} ms", crate::time::ms(i128::from(b))),
            None => {
                "one-sided: off by up to the one-way delay, which packets one way cannot measure"
                    .to_string()
            }
        };
        let jumps = match self.jumps.len() {
            0 => String::new(),
            1 => ", its clock jumped once".to_string(),
            n => format!(", its clock jumped {n} times"),
        };
        format!(
            "by {} packets both captured, onto {}'s clock ({bound}{jumps})",
            self.matched, self.reference
        )
    }
}

/// How the directions of the matched packets were told.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Direction {
    /// Sources going both ways: those whose offsets lie lower went from the reference.
    BothWays,
    /// From the delays: most packets cross with about the least delay, so the offsets
    /// cluster at the edge the direction puts them.
    Delays,
    /// Nothing told: taken to go from this machine to the reference (a guest's own
    /// adverts to its host's tap).
    Assumed,
}

/// Which side a piece's offset is bounded on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Bound {
    /// Packets both ways: the offset is within `error_bound_ns`.
    TwoSided,
    /// Packets to the reference only: the machine's times, put on the reference's,
    /// are no earlier than the truth, and late by up to the least one-way delay.
    NoEarlier,
    /// Packets from the reference only: no later, and early by up to that delay.
    NoLater,
}

/// One stretch of a machine's time line between clock jumps.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ClockPiece {
    /// Its first and last matched packet, on the reference time line.
    pub first: Timestamp,
    pub last: Timestamp,
    pub matched: u64,
    /// Added to the machine's time line at `first` to put it on the reference's.
    pub offset_ns: i64,
    /// How much faster the reference's clock ran, in parts per million (0 for a piece
    /// too short to tell).
    pub drift_ppm: f64,
    pub bound: Bound,
    /// Two-sided: half the width of the offsets the packets allow.
    pub error_bound_ns: Option<u64>,
}

/// A jump of a machine's clock against the reference's, between two matched packets.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ClockJump {
    /// The last matched packet before it and the first after, on the reference time
    /// line: the jump happened in between.
    pub last_before: Timestamp,
    pub first_after: Timestamp,
    /// How far the machine's clock fell behind the reference's (negative: it leapt
    /// ahead). A paused guest's falls behind by the pause.
    pub behind_ns: i64,
}

/// The map from one machine's time line to the reference machine's: a piece per
/// stretch between clock jumps (see the module documentation), and the report of how
/// it was found, which is all it is made from. Without pieces it changes nothing (the
/// reference, or a machine left on its wall clock).
#[derive(Debug, Clone, PartialEq)]
pub struct CrossClock {
    segments: Vec<Segment>,
    report: CrossMachine,
}

/// One piece of a [`CrossClock`]: `t ↦ t + offset + drift·(t − at)` for machine times
/// before `until`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Segment {
    pub until: i64,
    pub at: i64,
    pub offset_ns: i64,
    pub drift: f64,
}

impl Segment {
    pub fn apply(&self, t: i64) -> i64 {
        let drift = (t.saturating_sub(self.at) as f64 * self.drift) as i64;
        t.saturating_add(self.offset_ns).saturating_add(drift)
    }
}

/// The segments of pieces: each from its first matched packet's machine time, to half
/// way to the next piece's (where between them the clock jumped is not known).
pub fn segments(pieces: &[ClockPiece]) -> Vec<Segment> {
    // A piece's first and last matched packet on the machine's own time line.
    let own = |p: &ClockPiece| {
        let drift = p.drift_ppm / 1e6;
        let at = p.first.0.saturating_sub(p.offset_ns);
        let last =
            (p.last.0.saturating_sub(p.offset_ns) as f64 + drift * at as f64) / (1.0 + drift);
        (at, last as i64, drift)
    };
    pieces
        .iter()
        .enumerate()
        .map(|(i, p)| {
            let (at, last, drift) = own(p);
            let until = pieces.get(i + 1).map_or(i64::MAX, |next| {
                let (next_at, _, _) = own(next);
                last.saturating_add(next_at.saturating_sub(last) / 2)
            });
            Segment {
                until,
                at,
                offset_ns: p.offset_ns,
                drift,
            }
        })
        .collect()
}

impl CrossClock {
    /// The map a report describes: its pieces' segments ([`segments`]).
    pub fn from_report(report: CrossMachine) -> Self {
        let segments = match &report {
            CrossMachine::Packets(p) => segments(&p.pieces),
            CrossMachine::WallClock { .. } | CrossMachine::Reference { .. } => Vec::new(),
        };
        CrossClock { segments, report }
    }

    pub fn report(&self) -> &CrossMachine {
        &self.report
    }

    /// A time of the machine's time line on the reference's.
    pub fn apply(&self, t: i64) -> i64 {
        let i = self.segments.partition_point(|s| s.until <= t);
        match self.segments.get(i).or(self.segments.last()) {
            Some(s) => s.apply(t),
            None => t,
        }
    }
}

/// The monotonic → UTC conversion of one machine, and the streaming view of its
/// anchors.
///
/// Invariant: `reference_ns` is the offset (realtime − monotonic) of the manifest's
/// start pair and never changes, so that every time of the machine is on one time line;
/// `offset_ns` is the offset of the latest anchor fed to [`MachineClock::anchor`] (the
/// start pair's before any).
#[derive(Debug, Clone, PartialEq)]
pub struct MachineClock {
    reference_ns: i64,
    offset_ns: i64,
    uncertainty_ns: u64,
    stats: Alignment,
    /// Onto the reference machine's time line, once `crate::clock_sync` has found how.
    cross: Option<Arc<CrossClock>>,
}

/// What the conversion of one machine's times achieved, for the report.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Alignment {
    /// Clock anchors read.
    pub anchors: u64,
    /// The largest read uncertainty of an anchor (half the distance of the two
    /// monotonic reads around the realtime one).
    pub max_anchor_uncertainty_ns: u64,
    /// The largest change of realtime − monotonic between consecutive anchors: a step
    /// of the wall clock. Events do not move with it (they are on the monotonic clock);
    /// a packet stamped around a step is off by at most this.
    pub max_step_ns: u64,
    /// Bound of the error of any packet time on the machine's time line: the two above
    /// added.
    pub error_bound_ns: u64,
    /// How this machine's UTC relates to the other machines' (the reference's).
    pub cross_machine: CrossMachine,
}

impl MachineClock {
    /// Starts from the manifest's first pair, which the recorder also writes as the
    /// stream's first anchor, and which sets the machine's time line.
    pub fn new(manifest: &Manifest) -> Self {
        let start = manifest
            .started_realtime_ns
            .wrapping_sub(manifest.started_monotonic_ns as i64);
        MachineClock {
            reference_ns: start,
            offset_ns: start,
            uncertainty_ns: 0,
            stats: Alignment {
                anchors: 0,
                max_anchor_uncertainty_ns: 0,
                max_step_ns: 0,
                error_bound_ns: 0,
                cross_machine: CrossMachine::WallClock {
                    why: "it captured no packet to match with another machine's".to_string(),
                },
            },
            cross: None,
        }
    }

    /// The same conversion, then onto the reference machine's time line.
    pub fn onto(mut self, cross: Option<Arc<CrossClock>>) -> Self {
        if let Some(c) = &cross {
            self.stats.cross_machine = c.report().clone();
        }
        self.cross = cross;
        self
    }

    /// Takes the next anchor in monotonic order.
    pub fn anchor(&mut self, a: &ClockAnchor) {
        let offset = a.realtime_ns.wrapping_sub(a.monotonic_ns as i64);
        if self.stats.anchors > 0 {
            let step = offset.abs_diff(self.offset_ns);
            self.stats.max_step_ns = self.stats.max_step_ns.max(step);
        }
        self.offset_ns = offset;
        self.uncertainty_ns = a.uncertainty_ns;
        self.stats.anchors += 1;
        self.stats.max_anchor_uncertainty_ns =
            self.stats.max_anchor_uncertainty_ns.max(a.uncertainty_ns);
        self.stats.error_bound_ns = self
            .stats
            .max_anchor_uncertainty_ns
            .saturating_add(self.stats.max_step_ns);
    }

    /// UTC ns of a monotonic instant, on the machine's time line.
    pub fn to_utc(&self, monotonic_ns: u64) -> i64 {
        self.utc(monotonic_ns as i64)
    }

    /// The one conversion of a machine's times, packets and events alike.
    fn utc(&self, monotonic_ns: i64) -> i64 {
        let own = monotonic_ns.wrapping_add(self.reference_ns);
        match &self.cross {
            Some(c) => c.apply(own),
            None => own,
        }
    }

    /// The offset in force: realtime − monotonic of the latest anchor.
    pub fn offset_ns(&self) -> i64 {
        self.offset_ns
    }

    /// The offset that puts the monotonic clock on UTC: the start pair's.
    #[cfg(test)]
    pub fn reference_ns(&self) -> i64 {
        self.reference_ns
    }

    pub fn alignment(&self) -> Alignment {
        self.stats.clone()
    }
}

/// Consecutive anchors whose offsets differ by less than this (plus their read
/// uncertainties) are in one epoch: no step between them.
const SAME_OFFSET_NS: u64 = 1_000;

/// A run of consecutive anchors with one offset: the time between two steps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Epoch {
    /// realtime − monotonic of its first anchor.
    offset: i64,
    /// Monotonic ns of its first and last anchor.
    first: i64,
    last: i64,
}

/// One bundle's clock for its packets: the machine's [`MachineClock`] and its anchors'
/// epochs. Built once per bundle and shared by its capture files (a few bytes per
/// wall-clock step are kept, nothing else).
#[derive(Debug, Clone, PartialEq)]
pub struct BundleClock {
    clock: MachineClock,
    /// The recording machine (the manifest's host name and role): whose time line.
    host: String,
    role: Role,
    /// The manifest's stop pair.
    stopped: (Option<i64>, Option<u64>),
    epochs: Vec<Epoch>,
    /// The smallest offset of `epochs[e..]`, to stop looking for an epoch early.
    min_offset_from: Vec<i64>,
}

impl BundleClock {
    /// Reads the anchors of the bundle in `dir` (streaming: the other records are
    /// dropped as they are read). A bundle without an event stream has the manifest's
    /// start and stop pairs alone.
    ///
    /// When the manifest's start and stop pairs have the same offset, the wall clock
    /// was neither stepped nor slewed over the recording, and the stream is not read:
    /// that read costs a second decoding of every record. (A step and a step back of
    /// exactly the same size in between would go unseen; both would be NTP's doing
    /// within one recording.)
    pub fn read(dir: &Path, manifest: &Manifest) -> Result<Self, BundleError> {
        let offset = |realtime: i64, monotonic: u64| realtime.wrapping_sub(monotonic as i64);
        let start = offset(manifest.started_realtime_ns, manifest.started_monotonic_ns);
        let steady = manifest
            .stopped_realtime_ns
            .zip(manifest.stopped_monotonic_ns)
            .is_some_and(|(r, m)| offset(r, m).abs_diff(start) <= SAME_OFFSET_NS);
        let mut anchors = Vec::new();
        if !steady && dir.join(EVENTS_FILE).exists() {
            for record in read_bundle_events(dir)? {
                if let Record::Clock(a) = record? {
                    anchors.push(a);
                }
            }
        }
        Ok(Self::new(manifest, anchors))
    }

    /// From the manifest and the anchors of its event stream, in any order.
    pub fn new(manifest: &Manifest, anchors: impl IntoIterator<Item = ClockAnchor>) -> Self {
        let mut all: Vec<ClockAnchor> = anchors.into_iter().collect();
        // The manifest repeats the stream's first and last pairs; they are the only
        // ones when the stream is missing. Sorting is stable: a stream's anchor is kept
        // over the manifest's copy of it.
        all.push(ClockAnchor {
            realtime_ns: manifest.started_realtime_ns,
            monotonic_ns: manifest.started_monotonic_ns,
            uncertainty_ns: 0,
        });
        if let (Some(realtime_ns), Some(monotonic_ns)) =
            (manifest.stopped_realtime_ns, manifest.stopped_monotonic_ns)
        {
            all.push(ClockAnchor {
                realtime_ns,
                monotonic_ns,
                uncertainty_ns: 0,
            });
        }
        all.sort_by_key(|a| a.monotonic_ns);
        all.dedup_by_key(|a| a.monotonic_ns);
        let mut clock = MachineClock::new(manifest);
        let mut epochs: Vec<Epoch> = Vec::new();
        let mut previous: Option<(i64, u64)> = None;
        for a in &all {
            clock.anchor(a);
            let offset = a.realtime_ns.wrapping_sub(a.monotonic_ns as i64);
            let m = a.monotonic_ns as i64;
            let same = previous
                .is_some_and(|(o, u)| offset.abs_diff(o) <= u + a.uncertainty_ns + SAME_OFFSET_NS);
            match epochs.last_mut() {
                Some(e) if same => e.last = m,
                _ => epochs.push(Epoch {
                    offset,
                    first: m,
                    last: m,
                }),
            }
            previous = Some((offset, a.uncertainty_ns));
        }
        let mut min_offset_from = vec![i64::MAX; epochs.len()];
        let mut min = i64::MAX;
        for (e, slot) in epochs.iter().zip(min_offset_from.iter_mut()).rev() {
            min = min.min(e.offset);
            *slot = min;
        }
        BundleClock {
            clock,
            host: manifest.hostname.clone(),
            role: manifest.role,
            stopped: (manifest.stopped_realtime_ns, manifest.stopped_monotonic_ns),
            epochs,
            min_offset_from,
        }
    }

    /// The same clock, then onto the reference machine's time line.
    pub fn onto(&self, cross: Arc<CrossClock>) -> Self {
        BundleClock {
            clock: self.clock.clone().onto(Some(cross)),
            ..self.clone()
        }
    }

    /// The map onto the reference machine's time line, once found.
    pub fn cross(&self) -> Option<Arc<CrossClock>> {
        self.clock.cross.clone()
    }

    pub fn host(&self) -> &str {
        &self.host
    }

    pub fn role(&self) -> Role {
        self.role
    }

    /// When the recording stopped, on the time line: the manifest's stop pair's
    /// monotonic time, or its realtime for a manifest without one.
    pub fn stopped_ns(&self) -> Option<i64> {
        match self.stopped {
            (_, Some(m)) => Some(self.to_utc(m)),
            (realtime, None) => realtime,
        }
    }

    /// The machine's monotonic → UTC conversion.
    #[cfg(test)]
    pub fn machine(&self) -> &MachineClock {
        &self.clock
    }

    /// UTC ns of a monotonic instant of this machine.
    pub fn to_utc(&self, monotonic_ns: u64) -> i64 {
        self.clock.to_utc(monotonic_ns)
    }

    /// How many times the wall clock was stepped during the recording.
    #[cfg(test)]
    pub fn steps(&self) -> usize {
        self.epochs.len().saturating_sub(1)
    }

    fn offset(&self, e: usize) -> Option<i64> {
        self.epochs.get(e).map(|x| x.offset)
    }

    /// The monotonic reading of a stamp with epoch `e`'s offset, if it falls where that
    /// offset was in force: after the previous epoch's last anchor, before the next
    /// one's first.
    fn reading(&self, e: usize, realtime_ns: i64) -> Option<i64> {
        let epoch = self.epochs.get(e)?;
        let m = realtime_ns.wrapping_sub(epoch.offset);
        let lo = match e.checked_sub(1) {
            Some(p) => self.epochs.get(p).map_or(i64::MIN, |x| x.last),
            None => i64::MIN,
        };
        let hi = self.epochs.get(e + 1).map_or(i64::MAX, |x| x.first);
        (m > lo && m < hi).then_some(m)
    }

    /// The middle of the anchor interval in which the step after epoch `e` happened.
    fn step_middle(&self, e: usize) -> Option<i64> {
        let (a, b) = (self.epochs.get(e)?.last, self.epochs.get(e + 1)?.first);
        Some(a + (b - a) / 2)
    }
}

/// At most this many ambiguous packets are held around a step; beyond, the oldest are
/// taken as stamped before it.
pub const MAX_PENDING: usize = 1 << 16;

/// Which heartbeat stream a packet belongs to, for choosing where a step went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StreamTag {
    /// Any number that tells the streams of one capture file apart.
    pub id: u64,
    /// The interval the sender advertises, if the packet says.
    pub interval_ns: Option<u64>,
}

/// The last placed packet of a stream.
#[derive(Debug, Clone, Copy)]
struct StreamState {
    last: i64,
    interval: Option<i64>,
}

#[derive(Debug)]
struct Pending<T> {
    realtime: i64,
    tag: Option<StreamTag>,
    item: T,
}

/// Converts the packet stamps of one capture file of a bundle, in file order, to the
/// machine's UTC time line (see the module documentation). Items come out in file
/// order, each with its UTC time, some held back while a step is being settled.
#[derive(Debug)]
pub struct PacketClock<T> {
    bundle: Arc<BundleClock>,
    /// How far out of capture order packets may be.
    tolerance_ns: i64,
    /// The epoch of the last placed packet.
    epoch: usize,
    /// The latest monotonic time placed.
    last: Option<i64>,
    /// Looked up for every packet: FxHash, as the stream tracker's groups.
    streams: FxHashMap<u64, StreamState>,
    /// Packets that either side of the step after `epoch` explains, in file order.
    pending: VecDeque<Pending<T>>,
}

impl<T> PacketClock<T> {
    /// `tolerance_ns`: how far out of time order packets of the file may be (the
    /// reorder window).
    pub fn new(bundle: Arc<BundleClock>, tolerance_ns: i64) -> Self {
        PacketClock {
            bundle,
            tolerance_ns: tolerance_ns.max(0),
            epoch: 0,
            last: None,
            streams: FxHashMap::default(),
            pending: VecDeque::new(),
        }
    }

    /// Takes the next packet of the file, stamped `realtime_ns`; `emit` gets it (and
    /// any held before it) with its UTC time.
    pub fn push(
        &mut self,
        realtime_ns: i64,
        tag: Option<StreamTag>,
        item: T,
        emit: &mut impl FnMut(i64, T),
    ) {
        let c = self.epoch;
        let before = self.fits(c, realtime_ns);
        let after = self.fits(c + 1, realtime_ns);
        if self.pending.is_empty() {
            match (before, after) {
                (Some(_), Some(_)) => self.pending.push_back(Pending {
                    realtime: realtime_ns,
                    tag,
                    item,
                }),
                (Some(m), None) => self.place(m, tag, item, emit),
                (None, _) => match self.find(c + 1, realtime_ns) {
                    Some(e) => {
                        self.epoch = e;
                        self.push(realtime_ns, tag, item, emit);
                    }
                    // Explained by no epoch (a stamp in a step's hole, out of order by
                    // more than the tolerance): the offset in force.
                    None => {
                        let offset = self.bundle.offset(c).unwrap_or(0);
                        self.place(realtime_ns.wrapping_sub(offset), tag, item, emit);
                    }
                },
            }
            return;
        }
        // A stamp going back from the previous one: the step is between them.
        let went_back = self
            .pending
            .back()
            .is_some_and(|p| realtime_ns < p.realtime.saturating_sub(self.tolerance_ns));
        match (before, after) {
            (Some(_), Some(_)) if !went_back => {
                self.pending.push_back(Pending {
                    realtime: realtime_ns,
                    tag,
                    item,
                });
                if self.pending.len() > MAX_PENDING {
                    if let Some(p) = self.pending.pop_front() {
                        let offset = self.bundle.offset(c).unwrap_or(0);
                        self.place(p.realtime.wrapping_sub(offset), p.tag, p.item, emit);
                    }
                }
            }
            (Some(m), None) if !went_back => {
                // Before the step: so is everything held.
                let n = self.pending.len();
                self.settle_at(n, emit);
                self.place(m, tag, item, emit);
            }
            _ => {
                // After the step.
                let next = after.map(|_| (realtime_ns, tag));
                let split = if went_back {
                    self.pending.len()
                } else {
                    self.split(next)
                };
                self.settle_at(split, emit);
                self.epoch = self.epoch.max(c + 1);
                self.push(realtime_ns, tag, item, emit);
            }
        }
    }

    /// Settles what is still held, at the end of the file.
    pub fn finish(&mut self, emit: &mut impl FnMut(i64, T)) {
        if !self.pending.is_empty() {
            let split = self.split(None);
            self.settle_at(split, emit);
        }
    }

    /// Epoch `e`'s reading of a stamp, if it is there and not before what was placed.
    fn fits(&self, e: usize, realtime_ns: i64) -> Option<i64> {
        let m = self.bundle.reading(e, realtime_ns)?;
        let in_order = self
            .last
            .is_none_or(|l| m >= l.saturating_sub(self.tolerance_ns));
        in_order.then_some(m)
    }

    /// The first epoch from `from` on that explains a stamp.
    fn find(&self, from: usize, realtime_ns: i64) -> Option<usize> {
        let b = &self.bundle;
        (from..b.epochs.len())
            .take_while(|&e| {
                // No later epoch can read the stamp after the previous epoch's end.
                let lo = e
                    .checked_sub(1)
                    .and_then(|p| b.epochs.get(p))
                    .map_or(i64::MIN, |x| x.last);
                let highest = b
                    .min_offset_from
                    .get(e)
                    .map_or(i64::MIN, |o| realtime_ns.wrapping_sub(*o));
                highest > lo
            })
            .find(|&e| self.fits(e, realtime_ns).is_some())
    }

    /// Places the first `split` held packets with the current epoch's offset and the
    /// others with the next one's.
    fn settle_at(&mut self, split: usize, emit: &mut impl FnMut(i64, T)) {
        let c = self.epoch;
        let before = self.bundle.offset(c).unwrap_or(0);
        let after = self.bundle.offset(c + 1).unwrap_or(before);
        let held: Vec<Pending<T>> = self.pending.drain(..).collect();
        let n = held.len();
        for (i, p) in held.into_iter().enumerate() {
            let offset = if i < split { before } else { after };
            self.place(p.realtime.wrapping_sub(offset), p.tag, p.item, emit);
        }
        if split < n {
            self.epoch = c + 1;
        }
    }

    /// Where the step went among the held packets: how many of them were stamped
    /// before it. `next` is the packet that showed the step was behind, if it is read
    /// with the next epoch's offset.
    fn split(&self, next: Option<(i64, Option<StreamTag>)>) -> usize {
        let c = self.epoch;
        let n = self.pending.len();
        let (Some(before), Some(after)) = (self.bundle.offset(c), self.bundle.offset(c + 1)) else {
            return n;
        };
        let middle = self.bundle.step_middle(c).unwrap_or(0);
        let count = n + usize::from(next.is_some());
        let stamp = |i: usize| -> (i64, Option<StreamTag>) {
            match self.pending.get(i) {
                Some(p) => (p.realtime, p.tag),
                None => next.unwrap_or((0, None)),
            }
        };
        // Packet i's reading when the first j are before the step.
        let reading = |i: usize, j: usize| -> i64 {
            let offset = if i < j { before } else { after };
            stamp(i).0.wrapping_sub(offset)
        };
        // Each packet's previous and next packet of its stream among these.
        let mut prev = vec![None; count];
        let mut following = vec![None; count];
        let mut seen: HashMap<u64, usize> = HashMap::new();
        for (i, slot) in prev.iter_mut().enumerate() {
            if let Some(t) = stamp(i).1 {
                if let Some(p) = seen.insert(t.id, i) {
                    *slot = Some(p);
                    if let Some(f) = following.get_mut(p) {
                        *f = Some(i);
                    }
                }
            }
        }
        // The irregularity of the interval that ends at packet i.
        let pair = |i: usize, j: usize| -> u64 {
            let Some(tag) = stamp(i).1 else { return 0 };
            let state = self.streams.get(&tag.id);
            let from = match prev.get(i).copied().flatten() {
                Some(p) => reading(p, j),
                None => match state {
                    Some(s) => s.last,
                    None => return 0,
                },
            };
            let interval = tag
                .interval_ns
                .and_then(|d| i64::try_from(d).ok())
                .or(state.and_then(|s| s.interval))
                .filter(|d| *d > 0);
            interval.map_or(0, |d| irregularity(reading(i, j) - from, d))
        };
        let valid_and_place = |j: usize| -> Option<u64> {
            let last_before = match j.checked_sub(1) {
                Some(p) => Some(reading(p, j)),
                None => self.last,
            };
            let first_after = (j < count).then(|| reading(j, j));
            let at = match (last_before, first_after) {
                (Some(a), Some(b)) => {
                    if b < a.saturating_sub(self.tolerance_ns) {
                        return None;
                    }
                    a + (b - a) / 2
                }
                (Some(a), None) => a,
                (None, Some(b)) => b,
                (None, None) => middle,
            };
            Some(at.abs_diff(middle))
        };
        let mut cost: u64 = (0..count).map(|i| pair(i, 0)).sum();
        let mut best: Option<(u64, u64, usize)> = valid_and_place(0).map(|d| (cost, d, 0));
        for j in 1..=n {
            // Packet j - 1 moves before the step: the intervals that end at it and at
            // the next packet of its stream change.
            let i = j - 1;
            cost = cost - pair(i, j - 1) + pair(i, j);
            if let Some(f) = following.get(i).copied().flatten() {
                cost = cost - pair(f, j - 1) + pair(f, j);
            }
            if let Some(d) = valid_and_place(j) {
                let candidate = (cost, d, j);
                if best.is_none_or(|b| candidate < b) {
                    best = Some(candidate);
                }
            }
        }
        best.map_or(n, |(_, _, j)| j)
    }

    fn place(&mut self, m: i64, tag: Option<StreamTag>, item: T, emit: &mut impl FnMut(i64, T)) {
        self.last = Some(self.last.map_or(m, |l| l.max(m)));
        if let Some(tag) = tag {
            match self.streams.get_mut(&tag.id) {
                Some(s) => {
                    if m > s.last {
                        s.interval = Some(m - s.last);
                        s.last = m;
                    }
                }
                None => {
                    self.streams.insert(
                        tag.id,
                        StreamState {
                            last: m,
                            interval: None,
                        },
                    );
                }
            }
        }
        emit(self.bundle.clock.utc(m), item);
    }
}

/// How far an interval is from the advertised one, on a concave scale (one large
/// departure costs less than two that add up to it); within an eighth of the interval
/// (timer jitter) it costs nothing.
fn irregularity(interval: i64, advertised: i64) -> u64 {
    interval
        .abs_diff(advertised)
        .saturating_sub(advertised.unsigned_abs() / 8)
        .isqrt()
}
#[cfg(test)]
mod tests {
    use super::*;
    use vmlat_bundle::{Losses, RecordedSet, Role, Status};

    fn manifest() -> Manifest {
        Manifest {
            format_version: 1,
            vmlat_version: String::new(),
            hostname: "h".into(),
            role: Role::Guest,
            kernel: String::new(),
            arch: String::new(),
            cpus: 1,
            boot_id: String::new(),
            command_line: Vec::new(),
            started_realtime_ns: 1_000_000_000_000,
            started_monotonic_ns: 5_000,
            stopped_realtime_ns: None,
            stopped_monotonic_ns: None,
            status: Status::Complete,
            recorded: RecordedSet::default(),
            losses: Losses::default(),
        }
    }

    #[test]
    fn a_step_of_the_wall_clock_moves_no_event_and_bounds_the_error() {
        let mut clock = MachineClock::new(&manifest());
        assert_eq!(clock.to_utc(6_000), 1_000_000_001_000);
        clock.anchor(&ClockAnchor {
            realtime_ns: 1_000_000_000_000,
            monotonic_ns: 5_000,
            uncertainty_ns: 40,
        });
        // NTP stepped realtime forward by 2 ms.
        clock.anchor(&ClockAnchor {
            realtime_ns: 1_001_002_000_000,
            monotonic_ns: 1_000_005_000,
            uncertainty_ns: 70,
        });
        // One time line: a second of monotonic time is a second of UTC.
        assert_eq!(clock.to_utc(1_000_006_000), 1_001_000_001_000);
        assert_eq!(clock.offset_ns() - clock.reference_ns(), 2_000_000);
        let a = clock.alignment();
        assert_eq!(
            (a.anchors, a.max_step_ns, a.error_bound_ns),
            (2, 2_000_000, 2_000_070)
        );
    }

    const S: i64 = 1_000_000_000;
    /// Realtime − monotonic before any step.
    const OFFSET: i64 = 1_700_000_000 * S;

    /// A recording from monotonic 0 to `end` s with an anchor every second, whose wall
    /// clock was stepped by `step` ns at monotonic `at` ns.
    struct Stepped {
        at: i64,
        step: i64,
        end: i64,
    }

    impl Stepped {
        fn realtime(&self, m: i64) -> i64 {
            m + OFFSET + if m >= self.at { self.step } else { 0 }
        }

        fn clock(&self) -> Arc<BundleClock> {
            let mut m = manifest();
            m.started_monotonic_ns = 0;
            m.started_realtime_ns = OFFSET;
            let anchors = (0..=self.end).map(|k| ClockAnchor {
                realtime_ns: self.realtime(k * S),
                monotonic_ns: (k * S) as u64,
                uncertainty_ns: 50,
            });
            Arc::new(BundleClock::new(&m, anchors))
        }

        /// Converts packets sent at these monotonic times (one stream, advertising
        /// every second) and returns their times on the time line, as monotonic.
        fn convert(&self, sent: &[i64]) -> Vec<i64> {
            let mut clock = PacketClock::new(self.clock(), 100_000_000);
            let mut out = Vec::new();
            let tag = Some(StreamTag {
                id: 7,
                interval_ns: Some(S as u64),
            });
            let mut emit = |t: i64, i: usize| out.push((i, t - OFFSET));
            for (i, &m) in sent.iter().enumerate() {
                clock.push(self.realtime(m), tag, i, &mut emit);
            }
            clock.finish(&mut emit);
            let order: Vec<usize> = out.iter().map(|(i, _)| *i).collect();
            assert_eq!(order, (0..sent.len()).collect::<Vec<_>>(), "file order");
            out.into_iter().map(|(_, t)| t).collect()
        }
    }

    fn secs(v: &[f64]) -> Vec<i64> {
        v.iter().map(|x| (x * S as f64).round() as i64).collect()
    }

    fn every_second(from: i64, to: i64) -> Vec<f64> {
        (from..=to).map(|k| k as f64).collect()
    }

    #[test]
    fn without_a_step_a_packet_keeps_its_stamp() {
        let r = Stepped {
            at: i64::MAX,
            step: 0,
            end: 20,
        };
        assert_eq!(r.clock().steps(), 0);
        let sent = secs(&[0.25, 1.0, 1.0, 7.5, 19.999, 25.0]);
        assert_eq!(r.convert(&sent), sent);
    }

    #[test]
    fn a_step_forward_longer_than_the_anchor_period_is_undone_exactly() {
        let r = Stepped {
            at: 10 * S,
            step: 3 * S,
            end: 20,
        };
        let clock = r.clock();
        assert_eq!(clock.steps(), 1);
        assert_eq!(clock.machine().alignment().max_step_ns, 3 * S as u64);
        let sent = secs(&every_second(0, 20));
        assert_eq!(r.convert(&sent), sent);
    }

    #[test]
    fn a_short_step_forward_between_anchors_is_undone() {
        let r = Stepped {
            at: 10 * S + 500_000_000,
            step: 400_000_000,
            end: 20,
        };
        let sent = secs(&[9.0, 9.9, 10.2, 10.45, 10.55, 10.7, 11.0, 12.0]);
        assert_eq!(r.convert(&sent), sent);
    }

    #[test]
    fn a_step_back_while_advertising_is_undone_by_the_stamps_going_back() {
        let r = Stepped {
            at: 11 * S + 500_000_000,
            step: -3 * S,
            end: 20,
        };
        let sent = secs(&every_second(0, 20));
        assert_eq!(r.convert(&sent), sent);
    }

    #[test]
    fn a_step_back_shorter_than_the_interval_is_placed_where_the_stream_stays_regular() {
        // The stamps never go back (0.6 s < 1 s): 10.0, 10.4, 11.4, ...
        let r = Stepped {
            at: 10 * S + 500_000_000,
            step: -600_000_000,
            end: 20,
        };
        let sent = secs(&every_second(0, 20));
        assert_eq!(r.convert(&sent), sent);
    }

    #[test]
    fn a_step_back_inside_a_silence_keeps_the_silence_exact_when_the_stream_tells() {
        // Silent from 9 to 14 s; the step takes 3 s back at 11.5 s: the stamps read
        // 9, 11, 12, ...: a 2 s interval that must be the 5 s silence.
        let r = Stepped {
            at: 11 * S + 500_000_000,
            step: -3 * S,
            end: 20,
        };
        let mut sent = every_second(0, 9);
        sent.extend(every_second(14, 20));
        let sent = secs(&sent);
        assert_eq!(r.convert(&sent), sent);
    }

    #[test]
    fn a_step_back_inside_a_silence_one_step_longer_than_the_interval_keeps_its_length() {
        // Silent from 9 to 13 s, the step takes 3 s back at 11.5 s: the stamps read
        // one per second (9, 10, 11, 12): nothing tells where the 4 s silence was, only
        // that it spans the step.
        let r = Stepped {
            at: 11 * S + 500_000_000,
            step: -3 * S,
            end: 20,
        };
        let mut sent = every_second(0, 9);
        sent.extend(every_second(13, 20));
        let got = r.convert(&secs(&sent));
        let intervals: Vec<i64> = got.windows(2).map(|w| w[1] - w[0]).collect();
        let long: Vec<usize> = (0..intervals.len())
            .filter(|&i| intervals[i] != S)
            .collect();
        assert_eq!(long.len(), 1, "{intervals:?}");
        let i = long[0];
        assert_eq!(intervals[i], 4 * S);
        // It spans the step's anchor interval (11 s, 12 s), off by at most half the
        // step.
        assert!(got[i] <= 11 * S && got[i + 1] >= 12 * S, "{got:?}");
        assert!((got[i] - 9 * S).abs() <= 3 * S / 2, "{got:?}");
        assert_eq!(got[0], 0);
        assert_eq!(*got.last().unwrap(), 20 * S);
    }

    #[test]
    fn the_start_pair_alone_converts_a_bundle_without_anchors() {
        let m = manifest();
        let clock = Arc::new(BundleClock::new(&m, []));
        let mut packets = PacketClock::new(clock, 0);
        let mut out = Vec::new();
        packets.push(1_000_000_500_000, None, (), &mut |t, _| out.push(t));
        packets.finish(&mut |t, _| out.push(t));
        assert_eq!(out, vec![1_000_000_500_000]);
    }
}

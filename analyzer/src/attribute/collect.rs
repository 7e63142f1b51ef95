//! The attribution pass over one bundle's event stream: one streaming read, advanced
//! one incident at a time in lockstep with the other bundles, that keeps what falls
//! into the incidents' evidence windows until they are judged, and the little state
//! that explains it.
//!
//! Kept, in UTC (see [`crate::align`]), until no incident left to judge can read them
//! ([`BundleData::release_before`]):
//! - scheduler, signal, syscall, block and process records inside a window;
//! - for the traced tasks (those with syscalls, or of a traced comm), their last
//!   switch, wakeup and syscall before each window opens ("carried in"), so that a task
//!   asleep in a syscall since before the window is known to be there;
//! - counter samples (disks, CPUs, threads) inside the windows widened by
//!   [`SAMPLE_MARGIN_NS`], so that every window has a sample before it to take deltas
//!   from;
//! - the clock anchors inside the windows.
//!
//! Kept for the whole read:
//! - every loss counter record (one a second) and every freezer state record (one per
//!   traced thread, and one per change): few, and needed around any window;
//! - names and parents of every task ([`Tasks`]) and the whole recording's disk lanes.
//!
//! Memory is bounded by the records of a window and the [`LOOKBACK_NS`] before it, the
//! number of tasks, and the disk lanes.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use vmlat_bundle::{
    comm_matches, read_bundle_events, CgroupHierarchy, EventReader, FreezerSample, FreezerState,
    Losses, Manifest, Record,
};

use super::iostat::DiskSeries;
use super::tasks::{self, Tasks};
use super::windows::WindowSet;
use crate::align::{Alignment, MachineClock};
use crate::input::Source;
use crate::model::{CpuSpan, DiskLane};
use crate::time::Timestamp;
use crate::AnalyzeError;

/// Counter samples this far around a window are kept: enough for one sample before
/// the window at any sampling period up to a second.
pub const SAMPLE_MARGIN_NS: i64 = 2_000_000_000;

/// A record and its UTC time.
#[derive(Debug, Clone)]
pub struct Timed {
    pub t: i64,
    pub record: Record,
}

/// The loss counters around one window.
#[derive(Debug, Clone, Default)]
pub struct WindowLosses {
    /// The last counters at or before the window's start (all zero before the first).
    pub before: Losses,
    /// The first counters at or after its end (the final ones if the recording ended).
    pub after: Losses,
}

/// A span in which a thread's cgroup was frozen (or being frozen), from the recorded
/// freezer state.
#[derive(Debug, Clone, PartialEq)]
pub struct FrozenSpan {
    pub start: i64,
    pub end: i64,
    /// `cgroup v1 freezer /vmlat-x FROZEN from 12:00:01.1 (thawed at 12:00:05.1)`.
    pub what: String,
}

/// What a bundle says about the gaps' windows.
#[derive(Debug)]
pub struct BundleData {
    pub input: PathBuf,
    pub manifest: Manifest,
    /// Window records (and carried-in ones), in time order.
    pub events: Vec<Timed>,
    /// Disk, CPU and thread samples in the widened windows, in time order.
    pub samples: Vec<Timed>,
    pub tasks: Tasks,
    /// Every `Losses` record: (UTC, counters), in time order.
    pub loss_records: Vec<(i64, Losses)>,
    /// Every freezer state record, in time order.
    pub freezer: Vec<(i64, FreezerSample)>,
    /// (UTC, realtime − monotonic) of every anchor in a widened window.
    pub anchors: Vec<(i64, i64)>,
    pub disks: Vec<DiskLane>,
    pub alignment: Alignment,
    /// Records read from the event stream (all of them once it is [`Self::finished`]).
    pub records: u64,
    /// Records kept for the incidents' evidence (window records, carried-in records
    /// and samples).
    pub kept: u64,
    /// The most of those held at once: about one window and what rules read before it.
    pub kept_peak: u64,
    /// The spans whose records were kept: the incidents' windows.
    pub kept_windows: WindowSet,
    pub torn_tail: bool,
    /// The final loss counters (the manifest's until the stream is read to its end).
    pub final_losses: Losses,
    /// UTC of the latest record read so far.
    pub read_to: i64,
    /// The event stream was read to its end: `records`, `torn_tail`, `final_losses`,
    /// `started`, `stopped`, `alignment` and `disks` are final.
    pub finished: bool,
    /// When the recording started and stopped, UTC: the manifest's first and last
    /// clock anchors, or the last record for a recorder that was killed.
    pub started: Timestamp,
    pub stopped: Timestamp,
}

impl BundleData {
    pub fn host(&self) -> &str {
        &self.manifest.hostname
    }

    /// The architecture its syscall numbers belong to (see [`crate::syscall`]).
    pub fn arch(&self) -> &str {
        &self.manifest.arch
    }

    /// Whether the syscalls of tasks named `comm` were recorded (`--comm`).
    pub fn traces_comm(&self, comm: &str) -> bool {
        self.manifest
            .recorded
            .comms
            .iter()
            .any(|c| comm_matches(c, comm))
    }

    /// Whether a tracepoint (`sched:sched_switch`) was recorded.
    pub fn recorded(&self, tracepoint: &str) -> bool {
        self.manifest
            .recorded
            .tracepoints
            .iter()
            .any(|t| t == tracepoint)
    }

    /// Drops the records before `cut`, where no incident left to judge reads: each
    /// traced task's last switch, wakeup and syscall before it stay, as they were
    /// carried into a window, to tell the task's state at `cut`.
    pub fn release_before(&mut self, cut: i64) {
        let comms = &self.manifest.recorded.comms;
        let traced = |comm: &str| comms.iter().any(|c| comm_matches(c, comm));
        let before = self.events.partition_point(|r| r.t < cut);
        let mut carry = HashMap::new();
        for r in self.events.drain(..before) {
            remember(&mut carry, r.t, &r.record, &traced);
        }
        let mut carried = Vec::new();
        carry_in(&mut carried, &mut carry, cut);
        self.events.splice(..0, carried);
        let samples = self.samples.partition_point(|r| r.t < cut);
        self.samples.drain(..samples);
        let anchors = self.anchors.partition_point(|(t, _)| *t < cut);
        self.anchors.drain(..anchors);
    }

    fn keep_sample(&mut self, sample: Timed) {
        self.kept += 1;
        self.samples.push(sample);
    }

    fn held(&self) -> u64 {
        (self.events.len() + self.samples.len()) as u64
    }

    /// Window records from `from` to `to`.
    pub fn events_in(&self, from: i64, to: i64) -> &[Timed] {
        slice(&self.events, from, to)
    }

    /// Counter samples from `from` to `to`.
    pub fn samples_in(&self, from: i64, to: i64) -> &[Timed] {
        slice(&self.samples, from, to)
    }

    /// The loss counters around `[from, to]`: the last record at or before `from`
    /// (zero before the first) and the first at or after `to` (else the final ones).
    pub fn losses_around(&self, from: i64, to: i64) -> WindowLosses {
        let i = self.loss_records.partition_point(|(t, _)| *t <= from);
        let before = i
            .checked_sub(1)
            .and_then(|i| self.loss_records.get(i))
            .map(|(_, l)| l.clone())
            .unwrap_or_default();
        let j = self.loss_records.partition_point(|(t, _)| *t < to);
        let after = self
            .loss_records
            .get(j)
            .map_or_else(|| self.final_losses.clone(), |(_, l)| l.clone());
        WindowLosses { before, after }
    }

    /// The parts of `[from, to]` whose records were not kept (the middle of a long
    /// silence), in time order.
    pub fn not_kept(&self, from: i64, to: i64) -> Vec<(i64, i64)> {
        let mut out = Vec::new();
        let mut at = from;
        for w in self.kept_windows.windows() {
            if w.end < at {
                continue;
            }
            if w.start > to {
                break;
            }
            if w.start > at {
                out.push((at, w.start));
            }
            at = at.max(w.end);
        }
        if at < to {
            out.push((at, to));
        }
        out
    }

    /// `spans` cut to the kept parts: no span may claim time whose records are gone
    /// (the CPU's occupant across an unkept stretch is unknown).
    pub fn clip_to_kept(&self, spans: Vec<CpuSpan>) -> Vec<CpuSpan> {
        let mut out = Vec::with_capacity(spans.len());
        for s in spans {
            for w in self.kept_windows.windows() {
                let (a, b) = (s.start.0.max(w.start), s.end.0.min(w.end));
                if a < b {
                    out.push(CpuSpan {
                        start: Timestamp(a),
                        end: Timestamp(b),
                        ..s.clone()
                    });
                }
            }
        }
        out
    }

    /// Whether syscalls of thread `tid` were recorded from `from` to `to` (it was traced
    /// with `--comm` or `--pid`).
    pub fn syscalls_recorded(&self, tid: i32, from: i64, to: i64) -> bool {
        self.events_in(from, to).iter().any(|e| {
            matches!(&e.record, Record::SyscallEnter { tid: t, .. } | Record::SyscallExit { tid: t, .. } if *t == tid)
        })
    }

    /// Whether the freezer state of thread `tid` was recorded (bundles from before
    /// events version 2 never have it).
    pub fn freezer_recorded(&self, tid: i32) -> bool {
        self.freezer.iter().any(|(_, f)| f.tid == tid)
    }

    /// When thread `tid`'s cgroups (v1 freezer or v2) were frozen or freezing, over
    /// `[from, to]`. A change is known to have happened between the record that still
    /// showed the old state and the one that showed the new; the spans start and end at
    /// the records that showed the new state, the later bound.
    pub fn frozen_spans(&self, tid: i32, from: i64, to: i64) -> Vec<FrozenSpan> {
        let mut out = Vec::new();
        for hierarchy in [CgroupHierarchy::V1Freezer, CgroupHierarchy::V2] {
            let mut open: Option<(i64, &FreezerSample)> = None;
            let records = self
                .freezer
                .iter()
                .filter(|(_, f)| f.tid == tid && f.hierarchy == hierarchy);
            for (t, f) in records {
                let frozen = f.state != FreezerState::Thawed;
                match (open, frozen) {
                    (None, true) => open = Some((*t, f)),
                    (Some((start, g)), false) => {
                        let thawed = format!(", thawed by {}", super::at(*t));
                        push_frozen(&mut out, start, *t, g, &thawed, from, to);
                        open = None;
                    }
                    _ => {}
                }
            }
            if let Some((start, g)) = open {
                // Judged as its window closed: a thaw may come later in the stream.
                let still = if self.finished {
                    " (still frozen at the end of the recording)".to_string()
                } else {
                    format!(
                        " (still frozen at {}, as far as read)",
                        super::at(self.read_to)
                    )
                };
                push_frozen(&mut out, start, i64::MAX, g, &still, from, to);
            }
        }
        out
    }
}

fn push_frozen(
    out: &mut Vec<FrozenSpan>,
    start: i64,
    end: i64,
    f: &FreezerSample,
    thawed: &str,
    from: i64,
    to: i64,
) {
    let (a, b) = (start.max(from), end.min(to));
    if a >= b {
        return;
    }
    let which = match f.hierarchy {
        CgroupHierarchy::V1Freezer => "cgroup v1 freezer",
        CgroupHierarchy::V2 => "cgroup v2",
    };
    let state = match f.state {
        FreezerState::Frozen => "FROZEN",
        FreezerState::Freezing => "FREEZING",
        FreezerState::Thawed => "THAWED",
    };
    out.push(FrozenSpan {
        start: a,
        end: b,
        what: format!(
            "{which} {} {state} by {}{thawed}",
            f.cgroup,
            super::at(start)
        ),
    });
}

fn slice(records: &[Timed], from: i64, to: i64) -> &[Timed] {
    let a = records.partition_point(|r| r.t < from);
    let b = records.partition_point(|r| r.t <= to);
    records.get(a..b.max(a)).unwrap_or_default()
}

/// The last records of a traced task, carried into the next window.
#[derive(Debug, Default)]
struct Carry {
    switch: Option<Timed>,
    wakeup: Option<Timed>,
    enter: Option<Timed>,
    exit: Option<Timed>,
}

/// How far past a window the reader goes before its incident is judged: a record
/// written late, or the next loss counters (one a second), are still read.
pub const READ_PAST_NS: i64 = 3_000_000_000;

/// The furthest before an incident's window that a rule reads records: a signal or a
/// block request pending since then, a counter sample to take deltas from.
pub const LOOKBACK_NS: i64 = 10_000_000_000;
const _: () = assert!(
    super::block::PENDING_HORIZON_NS <= LOOKBACK_NS
        && super::sender_side::PENDING_HORIZON_NS <= LOOKBACK_NS
        && super::host::GUEST_MODE_LOOKBACK_NS <= LOOKBACK_NS
        && SAMPLE_MARGIN_NS <= LOOKBACK_NS
);

/// Reads one bundle's event stream window by window, in lockstep with the other
/// bundles: [`Collector::advance`] reads on to a time, the caller judges what ended by
/// then and [`BundleData::release_before`] drops what it no longer needs. State that outlives a window (the clock,
/// the tasks, the carried records, the loss and freezer records, the disk lanes) stays
/// in the collector and its [`BundleData`].
pub struct Collector {
    reader: EventReader,
    clock: MachineClock,
    windows: WindowSet,
    sample_windows: WindowSet,
    opened: Vec<bool>,
    carry: HashMap<i32, Carry>,
    disks: DiskSeries,
    /// The first record past the last `advance`, not yet taken in.
    pending: Option<Timed>,
    last_t: i64,
}

impl Collector {
    /// Opens the bundle in `dir`: its manifest, and its event stream at the start. Its
    /// events go onto the reference machine's time line as its packets in `sources` do.
    pub fn open(
        dir: &Path,
        windows: &WindowSet,
        sources: &[Source],
    ) -> Result<(Collector, BundleData), AnalyzeError> {
        let manifest = Manifest::load(dir)?;
        let reader = read_bundle_events(dir)?;
        let cross = sources
            .iter()
            .find_map(|s| s.clock.as_ref().filter(|_| s.input == dir)?.cross());
        let clock = MachineClock::new(&manifest).onto(cross);
        let collector = Collector {
            reader,
            sample_windows: WindowSet::new(windows.windows().iter().copied(), SAMPLE_MARGIN_NS),
            opened: vec![false; windows.windows().len()],
            windows: windows.clone(),
            carry: HashMap::new(),
            disks: DiskSeries::default(),
            pending: None,
            last_t: manifest.started_realtime_ns,
            clock,
        };
        let data = BundleData {
            input: dir.to_path_buf(),
            started: Timestamp(collector.clock.to_utc(manifest.started_monotonic_ns)),
            stopped: Timestamp(manifest.started_realtime_ns),
            final_losses: manifest.losses.clone(),
            manifest,
            events: Vec::new(),
            samples: Vec::new(),
            tasks: Tasks::default(),
            loss_records: Vec::new(),
            freezer: Vec::new(),
            anchors: Vec::new(),
            disks: Vec::new(),
            alignment: collector.clock.alignment(),
            records: 0,
            kept: 0,
            kept_peak: 0,
            kept_windows: windows.clone(),
            torn_tail: false,
            read_to: i64::MIN,
            finished: false,
        };
        Ok((collector, data))
    }

    /// Reads records up to UTC `until` (the first one past it waits for the next call).
    /// At the end of the stream, settles what only the whole recording tells.
    pub fn advance(&mut self, data: &mut BundleData, until: i64) -> Result<(), AnalyzeError> {
        if let Some(p) = self.pending.take() {
            if p.t > until {
                self.pending = Some(p);
                return self.settle(data);
            }
            self.take(data, p);
        }
        while let Some(record) = self.reader.next() {
            let record = record?;
            if let Record::Clock(a) = &record {
                self.clock.anchor(a);
            }
            let timed = Timed {
                t: self.clock.to_utc(record.time()),
                record,
            };
            if timed.t > until {
                self.pending = Some(timed);
                return self.settle(data);
            }
            self.take(data, timed);
        }
        if !data.finished {
            self.finish(data);
        }
        self.settle(data)
    }

    fn take(&mut self, data: &mut BundleData, timed: Timed) {
        let Timed { t, record } = timed;
        self.last_t = self.last_t.max(t);
        data.tasks.observe(&record);
        let in_samples = || self.sample_windows.find(t).is_some();
        match &record {
            Record::Clock(_) => {
                if in_samples() {
                    data.anchors.push((t, self.clock.offset_ns()));
                }
            }
            Record::Losses { losses: l, .. } => data.loss_records.push((t, l.clone())),
            Record::Freezer(f) => data.freezer.push((t, f.clone())),
            Record::Disk(d) => {
                self.disks.push(d, Timestamp(t));
                if in_samples() {
                    data.keep_sample(Timed { t, record });
                }
            }
            Record::Cpu(_) | Record::Task(_) => {
                if in_samples() {
                    data.keep_sample(Timed { t, record });
                }
            }
            Record::TaskInfo { .. } => {}
            _ => {
                if let Some(i) = self.windows.find(t) {
                    if let Some(o) = self.opened.get_mut(i).filter(|o| !**o) {
                        *o = true;
                        data.kept += carry_in(&mut data.events, &mut self.carry, t);
                    }
                    data.kept += 1;
                    data.events.push(Timed { t, record });
                } else {
                    let comms = &data.manifest.recorded.comms;
                    let traced = |comm: &str| comms.iter().any(|c| comm_matches(c, comm));
                    remember(&mut self.carry, t, &record, &traced);
                }
            }
        }
    }

    /// Puts what was read in time order for lookups, and counts what is held.
    fn settle(&mut self, data: &mut BundleData) -> Result<(), AnalyzeError> {
        // Records are written in monotonic order, but a late record, or a wall-clock
        // step, can leave them slightly out of UTC order.
        data.events.sort_by_key(|r| r.t);
        data.samples.sort_by_key(|r| r.t);
        data.loss_records.sort_by_key(|(t, _)| *t);
        data.freezer.sort_by_key(|(t, _)| *t);
        data.kept_peak = data.kept_peak.max(data.held());
        data.read_to = self.last_t;
        Ok(())
    }

    /// The stream is read to its end: what the whole recording tells.
    fn finish(&mut self, data: &mut BundleData) {
        let summary = self.reader.summary();
        data.records = summary.records;
        data.torn_tail = summary.torn_tail;
        // A recorder that died keeps its last counters only in the stream.
        if let Some((_, l)) = data.loss_records.iter().max_by_key(|(t, _)| *t) {
            if l.total() > data.final_losses.total() {
                data.final_losses = l.clone();
            }
        }
        // On the machine's one time line, which a wall-clock step does not move.
        data.started = Timestamp(self.clock.to_utc(data.manifest.started_monotonic_ns));
        data.stopped = Timestamp(
            data.manifest
                .stopped_monotonic_ns
                .map_or(self.last_t, |t| self.clock.to_utc(t)),
        );
        data.alignment = self.clock.alignment();
        data.disks = std::mem::take(&mut self.disks).finish(&data.manifest.hostname);
        data.finished = true;
    }
}

/// Keeps the latest records of traced tasks outside the windows.
fn remember(
    carry: &mut HashMap<i32, Carry>,
    t: i64,
    record: &Record,
    traced: &dyn Fn(&str) -> bool,
) {
    let timed = || Timed {
        t,
        record: record.clone(),
    };
    match record {
        Record::SyscallEnter { tid, .. } => carry.entry(*tid).or_default().enter = Some(timed()),
        Record::SyscallExit { tid, .. } => carry.entry(*tid).or_default().exit = Some(timed()),
        Record::SchedSwitch { .. } | Record::SchedWakeup { .. } => {
            let wakeup = matches!(record, Record::SchedWakeup { .. });
            for (tid, comm) in tasks::scheduled(record) {
                if traced(comm) || carry.contains_key(&tid) {
                    let c = carry.entry(tid).or_default();
                    let slot = if wakeup { &mut c.wakeup } else { &mut c.switch };
                    *slot = Some(timed());
                }
            }
        }
        Record::ProcessExit { tid, .. } => {
            carry.remove(tid);
        }
        _ => {}
    }
}

/// Puts the carried records (all before `t`) into the window's events; returns how many.
fn carry_in(events: &mut Vec<Timed>, carry: &mut HashMap<i32, Carry>, t: i64) -> u64 {
    let mut carried: Vec<Timed> = carry
        .values_mut()
        .flat_map(|c| {
            [
                c.switch.take(),
                c.wakeup.take(),
                c.enter.take(),
                c.exit.take(),
            ]
        })
        .flatten()
        .filter(|r| r.t < t)
        .collect();
    // A switch between two traced tasks was remembered for both.
    carried.sort_by_key(|r| r.t);
    carried.dedup_by(|a, b| a.t == b.t && a.record == b.record);
    let n = carried.len() as u64;
    events.extend(carried);
    n
}

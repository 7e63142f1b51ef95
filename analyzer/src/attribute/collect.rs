//! The attribution pass over one bundle's event stream: one streaming read that keeps
//! what falls into the gaps' evidence windows, and the little state that explains it.
//!
//! Kept, in UTC (see [`crate::align`]):
//! - scheduler, signal, syscall, block and process records inside a window;
//! - for the traced tasks (those with syscalls, or of a traced comm), their last
//!   switch, wakeup and syscall before each window opens ("carried in"), so that a task
//!   asleep in a syscall since before the window is known to be there;
//! - counter samples (disks, CPUs, threads) inside the windows widened by
//!   [`SAMPLE_MARGIN_NS`], so that every window has a sample before it to take deltas
//!   from;
//! - every loss counter record (one a second) and every freezer state record (one per
//!   traced thread, and one per change): few, and needed around any window;
//! - the clock anchors inside the windows;
//! - names and parents of every task ([`Tasks`]) and the whole recording's disk lanes.
//!
//! Memory is bounded by the windows' content, the number of tasks, and the disk lanes.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use vmlat_bundle::{
    comm_matches, read_bundle_events, CgroupHierarchy, FreezerSample, FreezerState, Losses,
    Manifest, Record,
};

use super::iostat::DiskSeries;
use super::tasks::{self, Tasks};
use super::windows::WindowSet;
use crate::align::{Alignment, MachineClock};
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
    pub records: u64,
    /// Records kept for the incidents' evidence (window records and samples).
    pub kept: u64,
    /// The spans whose records were kept: the incidents' windows.
    pub kept_windows: WindowSet,
    pub torn_tail: bool,
    /// The final loss counters.
    pub final_losses: Losses,
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
                        push_frozen(&mut out, start, *t, g, Some(*t), from, to);
                        open = None;
                    }
                    _ => {}
                }
            }
            if let Some((start, g)) = open {
                push_frozen(&mut out, start, i64::MAX, g, None, from, to);
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
    thawed: Option<i64>,
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
    let thawed = thawed.map_or_else(
        || " (still frozen at the end of the recording)".to_string(),
        |t| format!(", thawed by {}", super::at(t)),
    );
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

/// Reads the bundle in `dir` once.
pub fn read(dir: &Path, windows: &WindowSet) -> Result<BundleData, AnalyzeError> {
    let manifest = Manifest::load(dir)?;
    let sample_windows = WindowSet::new(windows.windows().iter().copied(), SAMPLE_MARGIN_NS);
    let mut clock = MachineClock::new(&manifest);
    let mut tasks = Tasks::default();
    let mut disks = DiskSeries::default();
    let mut events = Vec::new();
    let mut samples = Vec::new();
    let mut anchors = Vec::new();
    let mut loss_records: Vec<(i64, Losses)> = Vec::new();
    let mut freezer: Vec<(i64, FreezerSample)> = Vec::new();
    let mut opened = vec![false; windows.windows().len()];
    let mut carry: HashMap<i32, Carry> = HashMap::new();
    let mut last_t = manifest.started_realtime_ns;
    let traced_comm = |comm: &str| {
        manifest
            .recorded
            .comms
            .iter()
            .any(|c| comm_matches(c, comm))
    };

    let mut reader = read_bundle_events(dir)?;
    for record in reader.by_ref() {
        let record = record?;
        if let Record::Clock(a) = &record {
            clock.anchor(a);
        }
        let t = clock.to_utc(record.time());
        last_t = last_t.max(t);
        tasks.observe(&record);
        match &record {
            Record::Clock(_) => {
                if sample_windows.find(t).is_some() {
                    anchors.push((t, clock.offset_ns()));
                }
            }
            Record::Losses { losses: l, .. } => loss_records.push((t, l.clone())),
            Record::Freezer(f) => freezer.push((t, f.clone())),
            Record::Disk(d) => {
                disks.push(d, Timestamp(t));
                if sample_windows.find(t).is_some() {
                    samples.push(Timed { t, record });
                }
            }
            Record::Cpu(_) | Record::Task(_) => {
                if sample_windows.find(t).is_some() {
                    samples.push(Timed { t, record });
                }
            }
            Record::TaskInfo { .. } => {}
            _ => {
                if let Some(i) = windows.find(t) {
                    if let Some(o) = opened.get_mut(i).filter(|o| !**o) {
                        *o = true;
                        carry_in(&mut events, &mut carry, t);
                    }
                    events.push(Timed { t, record });
                } else {
                    remember(&mut carry, t, &record, &traced_comm);
                }
            }
        }
    }
    let summary = reader.summary().clone();
    // A recorder that died keeps its last counters only in the stream.
    let final_losses = match loss_records.last() {
        Some((_, l)) if l.total() > manifest.losses.total() => l.clone(),
        _ => manifest.losses.clone(),
    };
    loss_records.sort_by_key(|(t, _)| *t);
    freezer.sort_by_key(|(t, _)| *t);
    // Records are written in monotonic order, but a late record, or a wall-clock step,
    // can leave them slightly out of UTC order: lookups need them sorted.
    events.sort_by_key(|r| r.t);
    samples.sort_by_key(|r| r.t);
    let kept = (events.len() + samples.len()) as u64;
    Ok(BundleData {
        input: dir.to_path_buf(),
        // On the machine's one time line, which a wall-clock step does not move.
        started: Timestamp(clock.to_utc(manifest.started_monotonic_ns)),
        stopped: Timestamp(
            manifest
                .stopped_monotonic_ns
                .map_or(last_t, |t| clock.to_utc(t)),
        ),
        disks: disks.finish(&manifest.hostname),
        manifest,
        events,
        samples,
        tasks,
        loss_records,
        freezer,
        anchors,
        alignment: clock.alignment(),
        records: summary.records,
        kept,
        kept_windows: windows.clone(),
        torn_tail: summary.torn_tail,
        final_losses,
    })
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

/// Puts the carried records (all before `t`) into the window's events.
fn carry_in(events: &mut Vec<Timed>, carry: &mut HashMap<i32, Carry>, t: i64) {
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
    events.extend(carried);
}

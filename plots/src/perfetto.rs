//! Export to the Chrome trace-event JSON format, which Perfetto UI and chrome://tracing
//! open: one process per recorded host with a track per CPU (what ran, slice by
//! slice) and a track per traced thread (running, runnable, sleeping, blocked, stopped),
//! and a "heartbeats" process with a track per capture point (every advert as an
//! instant, failovers too) and a track per stream and incident kind holding its
//! incidents as slices named by verdict, with the evidence in their arguments.
//!
//! Streams, adverts, failovers, incidents and their verdicts come from the
//! [`Analysis`], and so does the list of bundles. Scheduling comes from the bundles'
//! event streams, converted record by record (a format conversion, not an analysis) as
//! the analyzer reads them ([`Trace`]: put on UTC by its clock conversion, each
//! switch-out decoded into its [`TaskState`]). Each bundle is streamed once and the JSON
//! is written as it goes: memory does not grow with the recording.
//!
//! Time: `ts` is microseconds since `time_base_utc` (in `otherData`), the whole UTC
//! second at or before the first instant of the recording, so that the fraction of a
//! second of any `ts` is the fraction of the UTC second.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::Serialize;
use serde_json::{json, Value};
use vmlat_analyzer::trace::{Trace, TraceRecord};
use vmlat_analyzer::{syscall, Analysis, TaskState, Timestamp};
use vmlat_bundle::Record;

use crate::style::group_label;
use crate::PlotError;

/// Process ids are per host: real pids (below 2^22) plus the host's index << 23, so that
/// a guest's and a host's pid 8557 stay two processes.
const HOST_SHIFT: u32 = 23;
/// Hosts beyond this many would overflow a 32-bit pid; their scheduling is skipped.
const MAX_HOSTS: usize = 200;
/// The per-host process holding the CPU tracks: above any real pid.
const CPUS_PID: i64 = (1 << 22) + 1;
/// The process of the capture point and incident tracks.
const HEARTBEATS_PID: i64 = 2_000_000_000;
/// Incident tracks start here in the heartbeats process (capture points use 1, 2, ...).
const INCIDENT_TRACK: i64 = 100_000;

/// What an export wrote.
#[derive(Debug, Default, Clone, Copy)]
pub struct ExportSummary {
    pub events: u64,
    pub cpu_slices: u64,
    pub thread_slices: u64,
    pub packets: u64,
    pub incidents: u64,
}

/// Writes the trace of `analysis`, made from `inputs`, to `out`.
///
/// The bundles are those the analysis read ([`Analysis::bundles`]), opened by their
/// path among `inputs`.
pub fn export(
    analysis: &Analysis,
    inputs: &[PathBuf],
    out: impl Write,
) -> Result<ExportSummary, PlotError> {
    let first = analysis
        .bundles
        .iter()
        .map(|b| b.started.0)
        .chain(analysis.streams.iter().map(|s| s.first.0))
        .min()
        .unwrap_or(0);
    let base = first.div_euclid(1_000_000_000) * 1_000_000_000;
    let mut w = Writer {
        out,
        base,
        first: true,
        summary: ExportSummary::default(),
    };
    w.raw(&format!(
        "{{\"displayTimeUnit\":\"ms\",\"otherData\":{{\"generator\":\"vmlat {}\",\"time_base_utc\":{},\"ts\":\"microseconds since time_base_utc\"}},\"traceEvents\":[\n",
        env!("CARGO_PKG_VERSION"),
        json!(Timestamp(base).rfc3339())
    ))?;
    for (h, bundle) in analysis.bundles.iter().take(MAX_HOSTS).enumerate() {
        // The path as given (the analysis keeps it as text).
        let dir = inputs
            .iter()
            .find(|i| i.display().to_string() == bundle.input)
            .cloned()
            .unwrap_or_else(|| PathBuf::from(&bundle.input));
        let trace = Trace::open(&dir)?.onto(&bundle.alignment.cross_machine);
        scheduling(&mut w, h, &bundle.host, trace)?;
    }
    heartbeats(&mut w, analysis)?;
    w.raw("\n]}\n")?;
    w.out
        .flush()
        .map_err(|e| PlotError::io(Path::new("trace"), e))?;
    Ok(w.summary)
}

/// One trace event, as the format names its fields.
#[derive(Serialize)]
struct Event<'a> {
    name: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    cat: Option<&'static str>,
    ph: &'static str,
    pid: i64,
    tid: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    ts: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    dur: Option<f64>,
    /// Instant scope: `t`, the thread (track).
    #[serde(skip_serializing_if = "Option::is_none")]
    s: Option<&'static str>,
    #[serde(skip_serializing_if = "Value::is_null")]
    args: Value,
}

struct Writer<W: Write> {
    out: W,
    base: i64,
    first: bool,
    summary: ExportSummary,
}

impl<W: Write> Writer<W> {
    fn raw(&mut self, s: &str) -> Result<(), PlotError> {
        self.out
            .write_all(s.as_bytes())
            .map_err(|e| PlotError::io(Path::new("trace"), e))
    }

    fn event(&mut self, e: &Event<'_>) -> Result<(), PlotError> {
        if !self.first {
            self.raw(",\n")?;
        }
        self.first = false;
        self.summary.events += 1;
        serde_json::to_writer(&mut self.out, e)
            .map_err(|e| PlotError::io(Path::new("trace"), e.into()))
    }

    fn ts(&self, utc_ns: i64) -> f64 {
        utc_ns.saturating_sub(self.base) as f64 / 1_000.0
    }

    /// A process or thread name (`M` event).
    fn name(
        &mut self,
        what: &'static str,
        pid: i64,
        tid: i64,
        name: &str,
    ) -> Result<(), PlotError> {
        self.event(&Event {
            name: what,
            cat: None,
            ph: "M",
            pid,
            tid,
            ts: None,
            dur: None,
            s: None,
            args: json!({ "name": name }),
        })
    }

    /// A complete slice (`X`) from `start` to `end`, UTC ns.
    fn slice(
        &mut self,
        track: (i64, i64),
        name: &str,
        (start, end): (i64, i64),
        args: Value,
    ) -> Result<(), PlotError> {
        self.event(&Event {
            name,
            cat: None,
            ph: "X",
            pid: track.0,
            tid: track.1,
            ts: Some(self.ts(start)),
            dur: Some(end.saturating_sub(start).max(0) as f64 / 1_000.0),
            s: None,
            args,
        })
    }

    fn instant(
        &mut self,
        track: (i64, i64),
        cat: &'static str,
        name: &str,
        at: i64,
    ) -> Result<(), PlotError> {
        self.event(&Event {
            name,
            cat: Some(cat),
            ph: "i",
            pid: track.0,
            tid: track.1,
            ts: Some(self.ts(at)),
            dur: None,
            s: Some("t"),
            args: Value::Null,
        })
    }
}

/// A thread state as the trace names it: [`TaskState`] as the analyzer decodes it, with
/// the syscall the thread sleeps or blocks in. `None` for [`TaskState::Unknown`] (before
/// a thread's first record, after it exited), which is left empty.
fn state_name(state: TaskState, syscall: Option<&str>) -> Option<String> {
    let base = match state {
        TaskState::Running => "Running",
        TaskState::Runnable => "Runnable",
        TaskState::Sleeping => "Sleeping",
        TaskState::Blocked => "Blocked (D)",
        TaskState::Stopped => "Stopped (T)",
        TaskState::Frozen => "Frozen",
        TaskState::Unknown => return None,
    };
    Some(match (state, syscall) {
        (TaskState::Sleeping | TaskState::Blocked, Some(s)) => format!("{base} in {s}"),
        _ => base.to_string(),
    })
}

/// A task of a bundle: what it is doing since when, and its track once it is known to
/// be traced.
struct Task {
    comm: String,
    state: TaskState,
    since: i64,
    /// The syscall in progress (`nr`).
    syscall: Option<i64>,
    /// (pid, tid) of its track; `None` while it is not known to be traced.
    track: Option<(i64, i64)>,
}

impl Task {
    fn new(comm: &str) -> Self {
        Task {
            comm: comm.to_string(),
            state: TaskState::Unknown,
            since: 0,
            syscall: None,
            track: None,
        }
    }
}

/// The thread tracks of one bundle, in one pass over its events.
///
/// Every task's state is followed, traced or not, so that a thread found to be traced
/// only at a later record (its first syscall, its first sample) has its track from the
/// state it was in then. An untraced task is forgotten when it exits: memory grows with
/// the live tasks, not with the recording.
struct Threads<'a> {
    offset: i64,
    hostname: &'a str,
    arch: String,
    /// `recorded.comms` and `recorded.pids` of the manifest.
    comms: Vec<String>,
    pids: Vec<i32>,
    tasks: HashMap<i32, Task>,
    named_processes: HashSet<i32>,
}

impl Threads<'_> {
    /// The task `tid`, first seen with name `comm` (the idle task 0 is none).
    fn task(&mut self, tid: i32, comm: &str) -> Option<&mut Task> {
        if tid == 0 {
            return None;
        }
        Some(self.tasks.entry(tid).or_insert_with(|| Task::new(comm)))
    }

    /// Ends task `tid`'s current state at `t` (written as a slice if it is traced and
    /// the state is known) and starts `to`.
    fn change<W: Write>(
        &mut self,
        w: &mut Writer<W>,
        tid: i32,
        comm: &str,
        to: TaskState,
        t: i64,
    ) -> Result<(), PlotError> {
        if tid == 0 {
            return Ok(());
        }
        let arch = self.arch.as_str();
        let th = self.tasks.entry(tid).or_insert_with(|| Task::new(comm));
        if th.comm.is_empty() && !comm.is_empty() {
            th.comm = comm.to_string();
            if let Some(track) = th.track {
                w.name("thread_name", track.0, track.1, &format!("{comm} {tid}"))?;
            }
        }
        if let Some(track) = th.track {
            if t > th.since {
                let syscall = th
                    .syscall
                    .filter(|_| matches!(th.state, TaskState::Sleeping | TaskState::Blocked))
                    .map(|nr| syscall::name(nr, arch));
                if let Some(name) = state_name(th.state, syscall.as_deref()) {
                    w.slice(track, &name, (th.since, t), Value::Null)?;
                    w.summary.thread_slices += 1;
                }
            }
        } else if to == TaskState::Unknown {
            // An untraced task that exited.
            self.tasks.remove(&tid);
            return Ok(());
        }
        th.state = to;
        th.since = t;
        Ok(())
    }

    /// Marks task `tid` of process `tgid` traced: names its track (and its process's).
    fn traced<W: Write>(
        &mut self,
        w: &mut Writer<W>,
        tid: i32,
        tgid: i32,
    ) -> Result<(), PlotError> {
        match self.task(tid, "") {
            Some(th) if th.track.is_none() => {}
            _ => return Ok(()),
        }
        let (pid, track_tid) = (self.offset + i64::from(tgid), self.offset + i64::from(tid));
        let comm = self
            .tasks
            .get(&tid)
            .map(|th| th.comm.clone())
            .unwrap_or_default();
        if self.named_processes.insert(tgid) {
            let process = self
                .tasks
                .get(&tgid)
                .map_or(comm.as_str(), |p| p.comm.as_str());
            w.name(
                "process_name",
                pid,
                0,
                &format!("{process} {tgid} ({})", self.hostname),
            )?;
        }
        w.name("thread_name", pid, track_tid, &format!("{comm} {tid}"))?;
        if let Some(th) = self.tasks.get_mut(&tid) {
            th.track = Some((pid, track_tid));
        }
        Ok(())
    }

    /// A name from `/proc` or an exec: the authoritative one.
    fn rename<W: Write>(
        &mut self,
        w: &mut Writer<W>,
        tid: i32,
        comm: &str,
    ) -> Result<(), PlotError> {
        let Some(th) = self.task(tid, comm) else {
            return Ok(());
        };
        if th.comm != comm {
            th.comm = comm.to_string();
            if let Some(track) = th.track {
                w.name("thread_name", track.0, track.1, &format!("{comm} {tid}"))?;
            }
        }
        Ok(())
    }

    /// Whether a process of this name or pid had its syscalls recorded.
    fn is_traced(&self, tgid: i32, comm: &str) -> bool {
        self.comms.iter().any(|c| c == comm) || self.pids.contains(&tgid)
    }
}

/// The CPU and thread tracks of one bundle, from its events as the analyzer reads them
/// ([`Trace`]: on UTC, switch-outs decoded), in one pass.
fn scheduling<W: Write>(
    w: &mut Writer<W>,
    host: usize,
    hostname: &str,
    trace: Trace,
) -> Result<(), PlotError> {
    let offset = (host as i64) << HOST_SHIFT;
    let manifest = trace.manifest();
    let mut threads = Threads {
        offset,
        hostname,
        arch: manifest.arch.clone(),
        comms: manifest.recorded.comms.clone(),
        pids: manifest.recorded.pids.clone(),
        tasks: HashMap::new(),
        named_processes: HashSet::new(),
    };
    let cpus_pid = offset + CPUS_PID;
    w.name("process_name", cpus_pid, 0, &format!("CPUs of {hostname}"))?;
    let mut running: BTreeMap<u32, (i64, i32, String)> = BTreeMap::new();
    let mut named_cpus: HashSet<u32> = HashSet::new();
    let mut last = i64::MIN;
    for record in trace {
        let TraceRecord {
            t,
            record,
            switched_out,
        } = record?;
        if let Record::Clock(_) = record {
            continue;
        }
        let t = t.0;
        last = last.max(t);
        match record {
            Record::SchedSwitch {
                cpu,
                prev_tid,
                prev_comm,
                next_tid,
                next_comm,
                ..
            } => {
                if named_cpus.insert(cpu) {
                    w.name(
                        "thread_name",
                        cpus_pid,
                        i64::from(cpu) + 1,
                        &format!("CPU {cpu}"),
                    )?;
                }
                if let Some((start, tid, comm)) = running.remove(&cpu) {
                    w.slice(
                        (cpus_pid, i64::from(cpu) + 1),
                        &comm,
                        (start, t),
                        json!({ "tid": tid }),
                    )?;
                    w.summary.cpu_slices += 1;
                }
                let out = switched_out.unwrap_or(TaskState::Unknown);
                threads.change(w, prev_tid, &prev_comm, out, t)?;
                threads.change(w, next_tid, &next_comm, TaskState::Running, t)?;
                if next_tid != 0 {
                    running.insert(cpu, (t, next_tid, next_comm.to_string()));
                }
            }
            Record::SchedWakeup { tid, comm, .. } => {
                let state = threads.task(tid, &comm).map(|th| th.state);
                if state.is_some_and(|s| !matches!(s, TaskState::Running | TaskState::Runnable)) {
                    threads.change(w, tid, &comm, TaskState::Runnable, t)?;
                }
            }
            Record::SyscallEnter { tid, tgid, nr, .. } => {
                threads.traced(w, tid, tgid)?;
                if let Some(th) = threads.task(tid, "") {
                    th.syscall = Some(nr);
                }
            }
            Record::SyscallExit { tid, tgid, .. } => {
                threads.traced(w, tid, tgid)?;
                if let Some(th) = threads.task(tid, "") {
                    th.syscall = None;
                }
            }
            Record::Task(s) => {
                threads.rename(w, s.tid, &s.comm)?;
                threads.traced(w, s.tid, s.tgid)?;
            }
            Record::TaskInfo {
                tid, tgid, comm, ..
            }
            | Record::ProcessExec {
                tid, tgid, comm, ..
            } => {
                threads.rename(w, tid, &comm)?;
                if threads.is_traced(tgid, &comm) {
                    threads.traced(w, tid, tgid)?;
                }
            }
            // An untraced task is forgotten when it exits.
            Record::ProcessExit { tid, .. }
                if threads.tasks.get(&tid).is_some_and(|th| th.track.is_none()) =>
            {
                threads.tasks.remove(&tid);
            }
            _ => {}
        }
    }
    for (cpu, (start, tid, comm)) in running {
        w.slice(
            (cpus_pid, i64::from(cpu) + 1),
            &comm,
            (start, last),
            json!({ "tid": tid }),
        )?;
        w.summary.cpu_slices += 1;
    }
    let mut traced: Vec<(i32, TaskState)> = threads
        .tasks
        .iter()
        .filter(|(_, th)| th.track.is_some())
        .map(|(&tid, th)| (tid, th.state))
        .collect();
    traced.sort_unstable_by_key(|&(tid, _)| tid);
    for (tid, state) in traced {
        threads.change(w, tid, "", state, last)?;
    }
    Ok(())
}

/// Capture point tracks with every advert and failover; an incident track per stream and kind.
fn heartbeats<W: Write>(w: &mut Writer<W>, a: &Analysis) -> Result<(), PlotError> {
    w.name("process_name", HEARTBEATS_PID, 0, "heartbeats")?;
    let mut captures: BTreeMap<&str, Vec<(Timestamp, String, &'static str)>> = BTreeMap::new();
    for s in &a.streams {
        let list = captures.entry(s.key.group.capture.as_str()).or_default();
        for ad in a.adverts_of(&s.key) {
            let prio = ad
                .priority
                .map(|p| format!(" prio {p}"))
                .unwrap_or_default();
            list.push((
                ad.t,
                format!(
                    "{} {} from {}{prio}",
                    s.key.group.protocol.name(),
                    s.key.group.vrid,
                    s.key.src
                ),
                "packet",
            ));
        }
    }
    for f in &a.failovers {
        captures.entry(f.group.capture.as_str()).or_default().push((
            f.at,
            format!(
                "failover {}: {} → {} ({})",
                f.kind.name(),
                f.from,
                f.to,
                group_label(&f.group)
            ),
            "failover",
        ));
    }
    for (i, (capture, mut events)) in captures.into_iter().enumerate() {
        let track = (HEARTBEATS_PID, i as i64 + 1);
        w.name(
            "thread_name",
            track.0,
            track.1,
            &format!("capture {capture}"),
        )?;
        events.sort_by_key(|e| e.0);
        for (t, name, cat) in events {
            w.instant(track, cat, &name, t.0)?;
            if cat == "packet" {
                w.summary.packets += 1;
            }
        }
    }
    // One track per stream and kind: incidents of one stream never overlap each other.
    let mut tracks: BTreeMap<(String, &'static str), i64> = BTreeMap::new();
    for inc in &a.incidents {
        let label = format!("{} {} · {}", inc.protocol.name(), inc.vrid, inc.src);
        let next = INCIDENT_TRACK + tracks.len() as i64;
        let tid = *tracks
            .entry((label.clone(), inc.kind.name()))
            .or_insert(next);
        if tid == next {
            w.name(
                "thread_name",
                HEARTBEATS_PID,
                tid,
                &format!("{} incidents of {label}", inc.kind.name()),
            )?;
        }
        let name = format!(
            "incident {}: {} ({:.3} s)",
            inc.id,
            inc.verdict.name(),
            inc.duration_ms / 1e3
        );
        let args = json!({
            "kind": inc.kind.name(),
            "verdict": inc.verdict.name(),
            "summary": inc.summary,
            "critical": inc.critical,
            "duration_ms": inc.duration_ms,
            "first_silent": inc.first_silent,
            "evidence": inc.evidence,
        });
        w.slice((HEARTBEATS_PID, tid), &name, (inc.start.0, inc.end.0), args)?;
        w.summary.incidents += 1;
    }
    Ok(())
}

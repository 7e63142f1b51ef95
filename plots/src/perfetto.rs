//! Export to the Chrome trace-event JSON format, which Perfetto UI and chrome://tracing
//! open: one process per recorded host with a track per CPU (what ran, slice by
//! slice) and a track per traced thread (running, runnable, sleeping, blocked, stopped),
//! and a "heartbeats" process with a track per capture point (every advert as an
//! instant, failovers too) and a track per stream holding its gaps as slices named by
//! verdict, with the evidence in their arguments.
//!
//! Gaps, verdicts and failovers come from the [`Analysis`]; scheduling comes from the
//! bundles' event streams, converted record by record (a format conversion, not an
//! analysis), with the analyzer's own clock conversion ([`MachineClock`]). Bundles are
//! streamed twice (first to learn which threads are traced, then to convert) and the
//! JSON is written as it goes: memory does not grow with the recording.
//!
//! Time: `ts` is microseconds since `time_base_utc` (in `otherData`), the whole UTC
//! second at or before the first instant of the recording, so that the fraction of a
//! second of any `ts` is the fraction of the UTC second.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::Serialize;
use serde_json::{json, Value};
use vmlat_analyzer::align::MachineClock;
use vmlat_analyzer::{syscall, Analysis, Timestamp};
use vmlat_bundle::{read_bundle_events, Manifest, Record, MANIFEST_FILE};

use crate::style::group_label;
use crate::PlotError;

/// Process ids are per host: real pids (below 2^22) plus the host's index << 23, so that
/// a guest's and a host's pid 8557 stay two processes.
const HOST_SHIFT: u32 = 23;
/// Hosts beyond this many would overflow a 32-bit pid; their scheduling is skipped.
const MAX_HOSTS: usize = 200;
/// The per-host process holding the CPU tracks: above any real pid.
const CPUS_PID: i64 = (1 << 22) + 1;
/// The process of the capture point and gap tracks.
const HEARTBEATS_PID: i64 = 2_000_000_000;
/// Gap tracks start here in the heartbeats process (capture points use 1, 2, ...).
const GAP_TRACK: i64 = 100_000;

/// What an export wrote.
#[derive(Debug, Default, Clone, Copy)]
pub struct ExportSummary {
    pub events: u64,
    pub cpu_slices: u64,
    pub thread_slices: u64,
    pub packets: u64,
    pub gaps: u64,
}

/// Writes the trace of `analysis` (made from `inputs`) to `out`.
pub fn export(
    analysis: &Analysis,
    inputs: &[PathBuf],
    out: impl Write,
) -> Result<ExportSummary, PlotError> {
    let bundles: Vec<(PathBuf, Manifest)> = inputs
        .iter()
        .filter(|p| p.join(MANIFEST_FILE).exists())
        .take(MAX_HOSTS)
        .map(|p| Manifest::load(p).map(|m| (p.clone(), m)))
        .collect::<Result<_, _>>()?;
    let first = bundles
        .iter()
        .map(|(_, m)| m.started_realtime_ns)
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
    for (h, (dir, manifest)) in bundles.iter().enumerate() {
        scheduling(&mut w, h, dir, manifest)?;
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

/// A traced thread's state as the trace names it.
#[derive(Clone, Copy, PartialEq, Eq)]
enum State {
    Running,
    Runnable,
    Sleeping,
    Blocked,
    Stopped,
}

impl State {
    /// From `sched_switch`'s `prev_state` (see `docs/bundle-format.md`).
    fn switched_out(prev_state: u64) -> Self {
        match prev_state & 0xff {
            0 => State::Runnable,
            s if s & 0x0c != 0 => State::Stopped,
            s if s & 0x02 != 0 => State::Blocked,
            _ => State::Sleeping,
        }
    }

    fn name(self, syscall: Option<&str>) -> String {
        let base = match self {
            State::Running => "Running",
            State::Runnable => "Runnable",
            State::Sleeping => "Sleeping",
            State::Blocked => "Blocked (D)",
            State::Stopped => "Stopped (T)",
        };
        match (self, syscall) {
            (State::Sleeping | State::Blocked, Some(s)) => format!("{base} in {s}"),
            _ => base.to_string(),
        }
    }
}

/// What a traced thread is doing since when.
struct Thread {
    track: (i64, i64),
    state: State,
    since: i64,
    syscall: Option<String>,
}

/// The CPU and thread tracks of one bundle.
fn scheduling<W: Write>(
    w: &mut Writer<W>,
    host: usize,
    dir: &Path,
    manifest: &Manifest,
) -> Result<(), PlotError> {
    let offset = (host as i64) << HOST_SHIFT;
    let hostname = manifest.hostname.as_str();
    // Pass 1: which threads are traced (their syscalls were recorded, or they were
    // sampled), and every thread's name.
    let mut traced: BTreeSet<i32> = BTreeSet::new();
    let mut names: HashMap<i32, (i32, String)> = HashMap::new();
    for record in read_bundle_events(dir)? {
        match record? {
            Record::SyscallEnter { tid, tgid, .. } | Record::SyscallExit { tid, tgid, .. } => {
                traced.insert(tid);
                names.entry(tid).or_insert((tgid, String::new())).0 = tgid;
            }
            Record::Task(t) => {
                traced.insert(t.tid);
                names.insert(t.tid, (t.tgid, t.comm));
            }
            Record::TaskInfo {
                tid, tgid, comm, ..
            }
            | Record::ProcessExec {
                tid, tgid, comm, ..
            } => {
                if manifest.recorded.comms.contains(&comm) || manifest.recorded.pids.contains(&tgid)
                {
                    traced.insert(tid);
                }
                names.insert(tid, (tgid, comm));
            }
            _ => {}
        }
    }
    let cpus_pid = offset + CPUS_PID;
    w.name("process_name", cpus_pid, 0, &format!("CPUs of {hostname}"))?;
    let mut named_processes: HashSet<i32> = HashSet::new();
    let mut threads: BTreeMap<i32, Thread> = BTreeMap::new();
    for &tid in &traced {
        let (tgid, comm) = names.get(&tid).cloned().unwrap_or((tid, String::new()));
        if named_processes.insert(tgid) {
            let process = names.get(&tgid).map_or(comm.as_str(), |(_, c)| c.as_str());
            w.name(
                "process_name",
                offset + i64::from(tgid),
                0,
                &format!("{process} {tgid} ({hostname})"),
            )?;
        }
        w.name(
            "thread_name",
            offset + i64::from(tgid),
            offset + i64::from(tid),
            &format!("{comm} {tid}"),
        )?;
        threads.insert(
            tid,
            Thread {
                track: (offset + i64::from(tgid), offset + i64::from(tid)),
                state: State::Sleeping,
                since: i64::MIN,
                syscall: None,
            },
        );
    }
    // Pass 2: convert.
    let mut clock = MachineClock::new(manifest);
    let mut running: BTreeMap<u32, (i64, i32, String)> = BTreeMap::new();
    let mut named_cpus: HashSet<u32> = HashSet::new();
    let mut last = i64::MIN;
    for record in read_bundle_events(dir)? {
        let record = record?;
        if let Record::Clock(a) = &record {
            clock.anchor(a);
            continue;
        }
        let t = clock.to_utc(record.time());
        last = last.max(t);
        match record {
            Record::SchedSwitch {
                cpu,
                prev_tid,
                prev_state,
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
                if next_tid != 0 {
                    running.insert(cpu, (t, next_tid, next_comm));
                }
                if let Some(th) = threads.get_mut(&prev_tid) {
                    change(w, th, State::switched_out(prev_state), t)?;
                }
                if let Some(th) = threads.get_mut(&next_tid) {
                    change(w, th, State::Running, t)?;
                }
            }
            Record::SchedWakeup { tid, .. } => {
                if let Some(th) = threads.get_mut(&tid) {
                    if matches!(th.state, State::Sleeping | State::Blocked | State::Stopped) {
                        change(w, th, State::Runnable, t)?;
                    }
                }
            }
            Record::SyscallEnter { tid, nr, .. } => {
                if let Some(th) = threads.get_mut(&tid) {
                    th.syscall = Some(syscall::name(nr, &manifest.arch));
                }
            }
            Record::SyscallExit { tid, .. } => {
                if let Some(th) = threads.get_mut(&tid) {
                    th.syscall = None;
                }
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
    for th in threads.values_mut() {
        let state = th.state;
        change(w, th, state, last)?;
    }
    Ok(())
}

/// Ends a thread's current state at `t` (written as a slice once its start is known)
/// and starts `to`.
fn change<W: Write>(
    w: &mut Writer<W>,
    th: &mut Thread,
    to: State,
    t: i64,
) -> Result<(), PlotError> {
    if th.since != i64::MIN && t > th.since {
        let name = th.state.name(th.syscall.as_deref());
        w.slice(th.track, &name, (th.since, t), Value::Null)?;
        w.summary.thread_slices += 1;
    }
    th.state = to;
    th.since = t;
    Ok(())
}

/// Capture point tracks with every advert and failover; a gap track per stream.
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
        let next = GAP_TRACK + tracks.len() as i64;
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
        w.summary.gaps += 1;
    }
    Ok(())
}

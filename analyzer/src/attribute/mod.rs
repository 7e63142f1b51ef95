//! The attribution pass: for every incident, what the inputs recorded around it, and
//! the hop where the time was lost (`docs/verdicts.md`).
//!
//! After the packet pass has grouped the gaps, failovers and split-brains into
//! incidents, this pass
//! 1. merges the incidents' evidence windows ([`windows`]): from an incident's start
//!    (for a takeover, the master-down interval before it) minus `--window` to its end
//!    plus one interval;
//! 2. reads the capture files again for the packets inside the windows ([`packets`]);
//! 3. reads the bundles' event streams once, in lockstep, keeping what falls into the
//!    windows and putting it on each machine's time line ([`collect`], [`crate::align`]);
//! 4. for each incident in the order of its window, as soon as all bundles are read
//!    past it, builds its hop table ([`path`]), finds the sending (or, for a takeover,
//!    the receiving) task ([`sender`]), rebuilds its states and its CPUs' occupants
//!    ([`timeline`]), the disks' iostat figures ([`iostat`]), gives the verdict with its
//!    evidence ([`verdict`] and the family modules it names), and lists what else
//!    happened ([`suspects`]); then drops the records that no later incident reads.
//!
//! Nothing here loads a whole recording: see each module for what it keeps.

mod block;
mod collect;
mod host;
mod iostat;
mod packets;
mod path;
mod receiver;
mod sender;
mod sender_side;
mod suspects;
mod tasks;
mod timeline;
mod verdict;
mod windows;

use std::path::PathBuf;

use vmlat_bundle::{Record, Role, TaskKind};

use crate::input::Source;
use crate::model::{
    Analysis, BundleSummary, DiskLane, Gap, GapContext, GroupKey, Incident, IncidentKind,
    MachineAlignment, SeriesPoint, StateSpan, Stream, StreamKey, TaskLane, TaskState,
};
use crate::time::Timestamp;
use crate::{AnalyzeError, AnalyzeOptions};
use collect::{BundleData, Collector};
use packets::PacketLanes;
use windows::{Window, WindowSet};

/// Gives every incident of `analysis` its hop table, verdict, evidence, suspects and
/// context, and fills the whole-recording disk lanes and the bundle summaries.
pub fn attribute(
    analysis: &mut Analysis,
    inputs: &[PathBuf],
    sources: &[Source],
    opts: &AnalyzeOptions,
) -> Result<(), AnalyzeError> {
    let Analysis {
        incidents,
        gaps,
        streams,
        ..
    } = analysis;
    for inc in incidents.iter_mut() {
        settle_interval(inc, streams, opts);
    }
    let windows = WindowSet::new(incidents.iter().flat_map(|i| kept(i, opts)), 0);
    let input_index = |path: &PathBuf| inputs.iter().position(|i| i == path);
    // bundle_of[input] = index into `bundles` and `collectors`.
    let mut bundles = Vec::new();
    let mut collectors = Vec::new();
    let mut bundle_of = vec![None; inputs.len()];
    for (i, input) in inputs.iter().enumerate() {
        if input.is_dir() {
            bundle_of[i] = Some(bundles.len());
            let (collector, data) = Collector::open(input, &windows, sources)?;
            collectors.push(collector);
            bundles.push(data);
        }
    }
    // The second read of the captures serves the verdicts (a bundle) and the hop
    // tables' delays, which need a stream seen at two capture points or more; a
    // stream's only capture point has its row from its gap alone. It keeps the
    // heartbeats in all windows at once: a few per second and capture point.
    let multi_point = incidents.iter().any(|inc| {
        let key = stream_key(inc);
        streams
            .iter()
            .filter(|s| PacketLanes::same_stream(&s.key, &key))
            .nth(1)
            .is_some()
    });
    let lanes = if windows.is_empty() || (bundles.is_empty() && !multi_point) {
        PacketLanes::default()
    } else {
        PacketLanes::read(
            sources,
            |s| input_index(&s.input).unwrap_or(usize::MAX),
            opts,
            &windows,
        )?
    };
    let host_of = |bundles: &[BundleData], capture: &str| {
        let input = lanes.owner(capture)?;
        let b = bundle_of.get(input).copied().flatten()?;
        Some(bundles.get(b)?.host().to_string())
    };
    // The bundles are read in lockstep, one incident at a time in the order of their
    // windows: each is judged as soon as every bundle has been read past its window,
    // then the records before the next window (less what a rule reads before it) are
    // dropped, so that a flap storm holds a few windows' records at a time, whether
    // its windows overlap or not.
    let mut order: Vec<(i64, usize)> = incidents
        .iter()
        .enumerate()
        .map(|(i, inc)| (window(inc, opts).start, i))
        .collect();
    order.sort_unstable();
    for (k, &(_, i)) in order.iter().enumerate() {
        let Some(inc) = incidents.get_mut(i) else {
            continue;
        };
        let read_to = window(inc, opts)
            .end
            .saturating_add(collect::SAMPLE_MARGIN_NS + collect::READ_PAST_NS);
        for (c, data) in collectors.iter_mut().zip(bundles.iter_mut()) {
            c.advance(data, read_to)?;
        }
        let judge = verdict::Judge {
            bundles: &bundles,
            packets: &lanes,
            bundle_of: &bundle_of,
        };
        let members: Vec<&Gap> = gaps.iter().filter(|g| g.incident == inc.id).collect();
        explain(
            inc,
            &members,
            streams,
            &judge,
            |c| host_of(&bundles, c),
            opts,
        );
        let next_start = order.get(k + 1).map_or(i64::MAX, |&(start, _)| start);
        for data in &mut bundles {
            data.release_before(next_start.saturating_sub(collect::LOOKBACK_NS));
        }
    }
    // Read to the end: the whole recording's disk lanes, counts and losses.
    for (c, data) in collectors.iter_mut().zip(bundles.iter_mut()) {
        c.advance(data, i64::MAX)?;
    }
    for b in &mut bundles {
        analysis.disks.append(&mut b.disks);
    }
    analysis.bundles = bundles
        .iter()
        .map(|b| BundleSummary {
            input: b.input.display().to_string(),
            host: b.host().to_string(),
            role: b.manifest.role,
            events: b.records,
            kept: b.kept,
            kept_peak: b.kept_peak,
            torn_tail: b.torn_tail,
            alignment: b.alignment.clone(),
            losses: b.final_losses.clone(),
            not_recorded: b.manifest.recorded.unsupported.clone(),
            warnings: b.manifest.recorded.warnings.clone(),
            started: b.started,
            stopped: b.stopped,
        })
        .collect();
    // One per machine (bundles of one host name share its clock), when there are several.
    let mut hosts: Vec<&str> = bundles.iter().map(BundleData::host).collect();
    hosts.sort_unstable();
    hosts.dedup();
    if hosts.len() > 1 {
        for b in &bundles {
            if analysis.alignments.iter().any(|a| a.from == b.host()) {
                continue;
            }
            analysis
                .alignments
                .extend(MachineAlignment::of(b.host(), &b.alignment.cross_machine));
        }
    }
    Ok(())
}

/// One incident's hop table, verdict, evidence, suspects and context.
fn explain(
    inc: &mut Incident,
    members: &[&Gap],
    streams: &[Stream],
    judge: &verdict::Judge,
    host_of: impl Fn(&str) -> Option<String> + Copy,
    opts: &AnalyzeOptions,
) {
    let w = window(inc, opts);
    let key = stream_key(inc);
    let mut captures: Vec<String> = streams
        .iter()
        .filter(|s| PacketLanes::same_stream(&s.key, &key))
        .map(|s| s.key.group.capture.clone())
        .collect();
    captures.dedup();
    let span = silence_span(inc);
    let lanes = judge.packets;
    inc.path = path::hop_table(inc, span, &key, members, &captures, lanes, host_of, w, &[]);
    path::taps_first(&mut inc.path, |c| judge.is_vm_tap(c));
    inc.first_silent = inc
        .path
        .iter()
        .find(|r| r.silent)
        .map(|r| r.capture.clone());
    let judgement = match inc.kind {
        IncidentKind::Silence | IncidentKind::Open => {
            let at_first = members
                .iter()
                .find(|g| Some(&g.stream.group.capture) == inc.first_silent.as_ref())
                .or(members.first());
            match at_first {
                Some(gap) => judge.judge(gap, w),
                None => return,
            }
        }
        IncidentKind::Takeover | IncidentKind::SplitBrain => judge.takeover(inc, w),
    };
    let Some(j) = judgement else {
        path::clock_errors(&mut inc.path, None, judge.bundles);
        return;
    };
    if !j.context.sends.is_empty() {
        // With the sender's sends known, each point's delay is measured from them.
        let sends: Vec<i64> = j.context.sends.iter().map(|t| t.0).collect();
        inc.path = path::hop_table(
            inc, span, &key, members, &captures, lanes, host_of, w, &sends,
        );
        path::taps_first(&mut inc.path, |c| judge.is_vm_tap(c));
    }
    let sender_host = j.context.sender.as_ref().map(|l| l.host.as_str());
    path::clock_errors(&mut inc.path, sender_host, judge.bundles);
    inc.verdict = j.verdict;
    inc.summary = j.summary;
    inc.evidence = j.evidence;
    inc.context = Some(j.context);
    inc.suspects = j.suspects;
}

/// A takeover's or split-brain's interval is its master's, from the streams.
fn settle_interval(inc: &mut Incident, streams: &[Stream], opts: &AnalyzeOptions) {
    if matches!(inc.kind, IncidentKind::Silence | IncidentKind::Open) {
        return;
    }
    let key = stream_key(inc);
    let of_master = streams
        .iter()
        .filter(|s| PacketLanes::same_stream(&s.key, &key));
    if let Some(s) = of_master.clone().find(|s| s.advert_interval_ms.is_some()) {
        inc.interval_ms = s.advert_interval_ms.unwrap_or(inc.interval_ms);
        inc.critical_after_ms = s.master_down_ms;
    }
    inc.threshold_ms = inc.interval_ms * opts.gap_factor;
}

/// When the stream should have been heard: a silence's own span; before a takeover
/// or split-brain, the master-down interval in which the backup should have heard the
/// master (see [`receiver`]).
fn silence_span(inc: &Incident) -> (i64, i64) {
    match inc.kind {
        IncidentKind::Silence | IncidentKind::Open => (inc.start.0, inc.end.0),
        IncidentKind::Takeover | IncidentKind::SplitBrain => {
            (inc.start.0 - receiver::master_down_ns(inc), inc.start.0)
        }
    }
}

/// The incident's stream, its capture point aside.
fn stream_key(inc: &Incident) -> StreamKey {
    StreamKey {
        peer: inc.dst,
        ..router_stream(inc, inc.src)
    }
}

/// The multicast stream of router `src` in the incident's group, capture point aside.
fn router_stream(inc: &Incident, src: std::net::IpAddr) -> StreamKey {
    StreamKey {
        group: GroupKey {
            capture: String::new(),
            protocol: inc.protocol,
            vrid: inc.vrid,
            vlan: inc.vlan,
        },
        src,
        peer: None,
    }
}

/// A silence longer than this is examined at its two ends only.
const LONG_SILENCE_NS: i64 = 120_000_000_000;
/// How much of each end of a long silence is kept.
const EDGE_NS: i64 = 30_000_000_000;

/// What of an incident's window is kept: all of it, or for a long silence its first and
/// last [`EDGE_NS`]: how it began and how it ended. Records in between are not kept, so
/// that a silence of hours (an open incident on a long recording) holds no more than a
/// minute of records; the evidence says what was left out.
fn kept(inc: &Incident, opts: &AnalyzeOptions) -> Vec<Window> {
    let w = window(inc, opts);
    if inc.end.0 - inc.start.0 <= LONG_SILENCE_NS {
        return vec![w];
    }
    vec![
        Window {
            start: w.start,
            end: inc.start.0 + EDGE_NS,
        },
        Window {
            start: inc.end.0 - EDGE_NS,
            end: w.end,
        },
    ]
}

/// An incident's evidence window: `--window` before it (before the span in which a
/// backup that took over should have heard the master), one interval after it.
fn window(inc: &Incident, opts: &AnalyzeOptions) -> Window {
    let from = silence_span(inc).0.min(inc.start.0);
    Window {
        start: from.saturating_sub(opts.window_ns.max(0)),
        end: inc.end.0.saturating_add((inc.interval_ms * 1e6) as i64),
    }
}

/// `12:14:52.670012345`.
fn at(t: i64) -> String {
    Timestamp(t).time_of_day()
}

/// `4.435 s`, `12.3 ms`, `85 µs`.
fn dur(ns: i64) -> String {
    let ns = ns.max(0) as f64;
    if ns >= 1e9 {
        format!("{:.3} s", ns / 1e9)
    } else if ns >= 1e6 {
        format!("{:.1} ms", ns / 1e6)
    } else {
        format!("{:.0} µs", ns / 1e3)
    }
}

/// `SIGSTOP`, or `signal 64` for a number without a name.
fn signal_name(sig: i32) -> String {
    const NAMES: [&str; 31] = [
        "SIGHUP",
        "SIGINT",
        "SIGQUIT",
        "SIGILL",
        "SIGTRAP",
        "SIGABRT",
        "SIGBUS",
        "SIGFPE",
        "SIGKILL",
        "SIGUSR1",
        "SIGSEGV",
        "SIGUSR2",
        "SIGPIPE",
        "SIGALRM",
        "SIGTERM",
        "SIGSTKFLT",
        "SIGCHLD",
        "SIGCONT",
        "SIGSTOP",
        "SIGTSTP",
        "SIGTTIN",
        "SIGTTOU",
        "SIGURG",
        "SIGXCPU",
        "SIGXFSZ",
        "SIGVTALRM",
        "SIGPROF",
        "SIGWINCH",
        "SIGIO",
        "SIGPWR",
        "SIGSYS",
    ];
    usize::try_from(sig)
        .ok()
        .and_then(|s| s.checked_sub(1))
        .and_then(|i| NAMES.get(i))
        .map_or_else(|| format!("signal {sig}"), |n| (*n).to_string())
}

/// Percent of `part` in `whole`.
fn pct(part: i64, whole: i64) -> f64 {
    if whole <= 0 {
        0.0
    } else {
        part as f64 * 100.0 / whole as f64
    }
}

/// The sender's lane for the context.
fn task_lane(host: &str, tgid: i32, tid: i32, comm: &str, spans: &[timeline::Span]) -> TaskLane {
    TaskLane {
        host: host.to_string(),
        tgid,
        tid,
        comm: comm.to_string(),
        spans: spans.iter().map(timeline::Span::to_model).collect(),
    }
}

/// iostat lanes of the devices that did or had I/O in `[from, to]`.
fn disk_lanes(data: &BundleData, from: i64, to: i64) -> Vec<DiskLane> {
    let mut prev: std::collections::BTreeMap<&str, &vmlat_bundle::DiskSample> =
        std::collections::BTreeMap::new();
    let mut lanes: Vec<(DiskLane, bool)> = Vec::new();
    for s in data.samples_in(from - collect::SAMPLE_MARGIN_NS, to) {
        let Record::Disk(d) = &s.record else { continue };
        if let Some(p) = prev.insert(d.device.as_str(), d) {
            if s.t < from {
                continue;
            }
            let Some(point) = iostat::point(p, d, Timestamp(s.t)) else {
                continue;
            };
            let busy = iostat::busy(p, d);
            match lanes.iter_mut().find(|(l, _)| l.device == d.device) {
                Some((lane, b)) => {
                    lane.points.push(point);
                    *b |= busy;
                }
                None => lanes.push((
                    DiskLane {
                        host: data.host().to_string(),
                        device: d.device.clone(),
                        points: vec![point],
                    },
                    busy,
                )),
            }
        }
    }
    lanes
        .into_iter()
        .filter(|(_, busy)| *busy)
        .map(|(l, _)| l)
        .collect()
}

/// `vdb: in-flight up to 1, w_await up to 850.0 ms, %util up to 100` for each busy
/// device, or `disks quiet`.
pub(super) fn disk_figures(lanes: &[crate::model::DiskLane], from: i64, to: i64) -> String {
    let mut parts = Vec::new();
    for l in lanes {
        let pts: Vec<_> = l
            .points
            .iter()
            .filter(|p| p.t.0 >= from && p.t.0 <= to + collect::SAMPLE_MARGIN_NS)
            .collect();
        if pts.is_empty() {
            continue;
        }
        let max =
            |f: fn(&crate::model::DiskPoint) -> f64| pts.iter().map(|p| f(p)).fold(0.0, f64::max);
        parts.push(format!(
            "{}: in-flight up to {}, r_await up to {:.1} ms, w_await up to {:.1} ms, %util up to {:.0}",
            l.device,
            pts.iter().map(|p| p.in_flight).max().unwrap_or(0),
            max(|p| p.r_await_ms),
            max(|p| p.w_await_ms),
            max(|p| p.util_pct)
        ));
    }
    if parts.is_empty() {
        "disks quiet".to_string()
    } else {
        format!("disks {}", parts.join("; "))
    }
}

/// Steal time of one CPU (`None`: the whole machine, the aggregate `cpu` line), percent
/// of CPU time per sample interval, in `[from, to]`.
fn steal_series(data: &BundleData, cpu: Option<u32>, from: i64, to: i64) -> Vec<SeriesPoint> {
    let mut out = Vec::new();
    let mut prev: Option<&vmlat_bundle::CpuSample> = None;
    for s in data.samples_in(from - collect::SAMPLE_MARGIN_NS, to) {
        let Record::Cpu(c) = &s.record else { continue };
        if c.cpu != cpu {
            continue;
        }
        if let (Some(p), true) = (prev, s.t >= from) {
            if let Some(v) = steal_pct(p, c) {
                out.push(SeriesPoint {
                    t: Timestamp(s.t),
                    value: v,
                });
            }
        }
        prev = Some(c);
    }
    out
}

/// Steal as mpstat computes it: Δsteal over Δ(all ticks; guest time is already in
/// user and nice).
fn steal_pct(p: &vmlat_bundle::CpuSample, c: &vmlat_bundle::CpuSample) -> Option<f64> {
    let total = |s: &vmlat_bundle::CpuSample| {
        s.user + s.nice + s.system + s.idle + s.iowait + s.irq + s.softirq + s.steal
    };
    let dt = total(c).checked_sub(total(p))?;
    let ds = c.steal.checked_sub(p.steal)?;
    (dt > 0).then(|| ds as f64 * 100.0 / dt as f64)
}

/// On a host bundle, each QEMU vCPU thread's states from its schedstat samples: a
/// sample interval whose run delay grew by more than half of it is runnable, else the
/// /proc state letter says.
fn vcpu_lanes(data: &BundleData, from: i64, to: i64) -> Vec<TaskLane> {
    let mut lanes: Vec<TaskLane> = Vec::new();
    let mut prev: std::collections::BTreeMap<i32, (i64, u64)> = std::collections::BTreeMap::new();
    for s in data.samples_in(from - collect::SAMPLE_MARGIN_NS, to) {
        let Record::Task(task) = &s.record else {
            continue;
        };
        if task.kind != TaskKind::QemuVcpu {
            continue;
        }
        let Some((t0, wait0)) = prev.insert(task.tid, (s.t, task.wait_ns)) else {
            continue;
        };
        if s.t < from {
            continue;
        }
        let grew = task.wait_ns.saturating_sub(wait0) as i64;
        let state = if grew * 2 > s.t - t0 {
            TaskState::Runnable
        } else {
            letter_state(task.state)
        };
        let span = StateSpan {
            start: Timestamp(t0.max(from)),
            end: Timestamp(s.t),
            state,
            detail: Some(format!(
                "run delay +{}, /proc state {}",
                dur(grew),
                task.state
            )),
        };
        match lanes.iter_mut().find(|l| l.tid == task.tid) {
            Some(l) => l.spans.push(span),
            None => lanes.push(TaskLane {
                host: data.host().to_string(),
                tgid: task.tgid,
                tid: task.tid,
                comm: task.comm.to_string(),
                spans: vec![span],
            }),
        }
    }
    lanes
}

/// A /proc state letter as a task state (R is running or runnable: taken as running).
fn letter_state(c: char) -> TaskState {
    match c {
        'R' => TaskState::Running,
        'S' | 'I' => TaskState::Sleeping,
        'D' => TaskState::Blocked,
        'T' | 't' => TaskState::Stopped,
        _ => TaskState::Unknown,
    }
}

/// The context skeleton of a gap: packet lanes, and for the host bundles the vCPUs of
/// the VMs tied to a guest bundle ([`host::own_vm`]).
fn base_context(judge: &verdict::Judge, key: &StreamKey, w: Window) -> GapContext {
    let mut vcpus = Vec::new();
    for host in judge
        .bundles
        .iter()
        .filter(|b| b.manifest.role == Role::Host)
    {
        let vms: Vec<i32> = judge
            .bundles
            .iter()
            .filter(|g| g.manifest.role != Role::Host)
            .filter_map(|g| host::own_vm(g, &host.manifest).ok())
            .map(|vm| vm.pid)
            .collect();
        vcpus.extend(
            vcpu_lanes(host, w.start, w.end)
                .into_iter()
                .filter(|l| vms.contains(&l.tgid)),
        );
    }
    GapContext {
        window_start: Timestamp(w.start),
        window_end: Timestamp(w.end),
        packets: judge.packets.lanes(key, w),
        sender: None,
        sends: Vec::new(),
        cpus: Vec::new(),
        disks: Vec::new(),
        steal: Vec::new(),
        vcpus,
    }
}

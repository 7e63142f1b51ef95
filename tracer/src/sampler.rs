//! Counter sampler: iostat's, mpstat's and schedstat's raw material, every interval.
//!
//! Each tick reads `/proc/diskstats` (every device), `/proc/stat` (every CPU: user,
//! system, iowait, irq, softirq, steal, idle) and `/proc/PID/task/TID/schedstat` of the
//! watched threads: those of the traced processes and, on a host, of every QEMU process
//! and `vhost-*` kernel thread. Counters are cumulative; rates are the analyzer's job.
//! The set of watched threads is refreshed once a second, not every tick, because a
//! /proc walk costs far more than reading a few schedstat files.
//!
//! The sampler also emits a clock anchor every second, and at start a `TaskInfo` for
//! every task alive, so that names and parents of pids seen later can be told.
//!
//! Every tick it also reads the cgroup freezer state of each traced thread (not of
//! QEMU or vhost threads): its cgroup in the v1 `freezer` hierarchy and in the v2
//! hierarchy (`/proc/PID/task/TID/cgroup`), and that cgroup's `freezer.state`, or
//! `cgroup.events` and `cgroup.freeze`, under the mount points that
//! `/proc/self/mountinfo` names. It writes a `Freezer` record when it first sees a
//! thread (a baseline, thawed or not) and then only when the thread's cgroup or that
//! cgroup's state changes: a frozen task is positive evidence, never a guess from
//! its scheduler state (a task frozen by the v2 freezer shows `S`, not `D`).

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use procfs::process::{all_processes, Process};
use procfs::{Current, CurrentSI, DiskStats, KernelStats};
use vmlat_bundle::{
    comm_matches, CgroupHierarchy, CpuSample, DiskSample, FreezerSample, FreezerState, Record,
    TaskKind, TaskSample,
};

use crate::cgroup::{v2_frozen, CgroupMount, CgroupMounts};
use crate::clock::{anchor, monotonic_ns};
use crate::pipeline::{LossCounters, Sink};

/// What to sample and how often.
#[derive(Debug, Clone)]
pub struct SamplerConfig {
    pub interval: Duration,
    /// Process names whose threads' schedstat is sampled.
    pub comms: Vec<String>,
    /// Process ids whose threads' schedstat is sampled.
    pub pids: Vec<i32>,
    /// Also watch QEMU and vhost threads (recording on a hypervisor).
    pub host: bool,
}

/// A thread whose schedstat is sampled.
#[derive(Debug, Clone)]
struct Watched {
    tgid: i32,
    tid: i32,
    comm: String,
    kind: TaskKind,
}

const ANCHOR_EVERY: Duration = Duration::from_secs(1);
const RESCAN_EVERY: Duration = Duration::from_secs(1);

/// Samples until `stop` is set; the caller runs this on its own thread.
pub fn run(config: &SamplerConfig, stop: &AtomicBool, sink: &Sink) {
    let ticks_per_second = procfs::ticks_per_second();
    let interval_ns = config.interval.as_nanos().max(1) as u64;
    let mut watched = Vec::new();
    let mut freezer = FreezerTracker::new(CgroupMounts::of_this_process());
    let mut last_rescan = 0u64;
    let mut last_anchor = 0u64;
    let mut next_tick = monotonic_ns();

    let start = monotonic_ns();
    let mut first = task_snapshot(start);
    first.push(Record::Clock(anchor()));
    if !sink.send(first, start) {
        return;
    }

    while !stop.load(Ordering::Relaxed) {
        let now = monotonic_ns();
        if now < next_tick {
            std::thread::sleep(Duration::from_nanos((next_tick - now).min(50_000_000)));
            continue;
        }
        // A tick that comes more than one interval late means ticks were skipped.
        let missed = (now - next_tick) / interval_ns;
        if missed > 0 {
            LossCounters::add(&sink.losses().sampler_overruns, missed);
        }
        next_tick += (missed + 1) * interval_ns;

        let mut records = Vec::with_capacity(64);
        if now - last_rescan >= RESCAN_EVERY.as_nanos() as u64 {
            watched = find_watched(config);
            freezer.retain(&watched);
            last_rescan = now;
        }
        if now - last_anchor >= ANCHOR_EVERY.as_nanos() as u64 {
            records.push(Record::Clock(anchor()));
            last_anchor = now;
        }
        sample_disks(&mut records);
        sample_cpus(ticks_per_second, &mut records);
        sample_tasks(&watched, &mut records);
        freezer.sample(&watched, &mut records);
        if !sink.send(records, monotonic_ns()) {
            return;
        }
    }
    sink.send(vec![Record::Clock(anchor())], u64::MAX);
}

fn sample_disks(out: &mut Vec<Record>) {
    let t = monotonic_ns();
    let Ok(DiskStats(disks)) = DiskStats::current() else {
        return;
    };
    out.extend(disks.into_iter().map(|d| {
        Record::Disk(Box::new(DiskSample {
            t,
            device: d.name,
            major: d.major as u32,
            minor: d.minor as u32,
            reads: d.reads,
            reads_merged: d.merged,
            sectors_read: d.sectors_read,
            read_ms: d.time_reading,
            writes: d.writes,
            writes_merged: d.writes_merged,
            sectors_written: d.sectors_written,
            write_ms: d.time_writing,
            in_flight: d.in_progress,
            io_ticks_ms: d.time_in_progress,
            time_in_queue_ms: d.weighted_time_in_progress,
            discards: d.discards.unwrap_or(0),
            discard_ms: d.time_discarding.unwrap_or(0),
            flushes: d.flushes.unwrap_or(0),
            flush_ms: d.time_flushing.unwrap_or(0),
        }))
    }));
}

fn sample_cpus(ticks_per_second: u64, out: &mut Vec<Record>) {
    let t = monotonic_ns();
    let Ok(stats) = KernelStats::current() else {
        return;
    };
    let cpu = |cpu: Option<u32>, c: &procfs::CpuTime| {
        Record::Cpu(Box::new(CpuSample {
            t,
            cpu,
            user: c.user,
            nice: c.nice,
            system: c.system,
            idle: c.idle,
            iowait: c.iowait.unwrap_or(0),
            irq: c.irq.unwrap_or(0),
            softirq: c.softirq.unwrap_or(0),
            steal: c.steal.unwrap_or(0),
            guest: c.guest.unwrap_or(0),
            guest_nice: c.guest_nice.unwrap_or(0),
            ticks_per_second,
        }))
    };
    out.push(cpu(None, &stats.total));
    // /proc/stat lists online CPUs in order; on a machine without hot-unplugged CPUs
    // the position is the CPU number.
    out.extend(
        stats
            .cpu_time
            .iter()
            .enumerate()
            .map(|(i, c)| cpu(Some(i as u32), c)),
    );
}

fn sample_tasks(watched: &[Watched], out: &mut Vec<Record>) {
    for w in watched {
        let t = monotonic_ns();
        // A thread that exited since the last rescan is simply not sampled.
        let Ok(task) = Process::new(w.tgid).and_then(|p| p.task_from_tid(w.tid)) else {
            continue;
        };
        let (Ok(sched), Ok(stat)) = (task.schedstat(), task.stat()) else {
            continue;
        };
        out.push(Record::Task(TaskSample {
            t,
            tgid: w.tgid,
            tid: w.tid,
            comm: w.comm.as_str().into(),
            kind: w.kind,
            run_ns: sched.sum_exec_runtime,
            wait_ns: sched.run_delay,
            timeslices: sched.pcount,
            state: stat.state,
        }));
    }
}

/// Classifies a process: a QEMU process (on a host, even when also traced: its threads'
/// kinds are what the host's verdicts read), traced, a vhost worker, or none.
fn process_kind(config: &SamplerConfig, pid: i32, comm: &str) -> Option<TaskKind> {
    if config.host && crate::qemu::is_qemu(comm, None) {
        Some(TaskKind::QemuOther)
    } else if config.pids.contains(&pid) || config.comms.iter().any(|c| comm_matches(c, comm)) {
        Some(TaskKind::Traced)
    } else if config.host && comm.starts_with("vhost-") {
        Some(TaskKind::Vhost)
    } else {
        None
    }
}

/// QEMU names its threads: `CPU 0/KVM` (or `/TCG`) for vCPUs, `IO iothread0` and
/// `worker` for I/O; everything else (main loop, call_rcu) is "other".
fn qemu_thread_kind(thread_comm: &str) -> TaskKind {
    if thread_comm.starts_with("CPU ") {
        TaskKind::QemuVcpu
    } else if thread_comm.starts_with("IO ") || thread_comm.starts_with("worker") {
        TaskKind::QemuIo
    } else {
        TaskKind::QemuOther
    }
}

fn find_watched(config: &SamplerConfig) -> Vec<Watched> {
    let mut watched = Vec::new();
    let Ok(processes) = all_processes() else {
        return watched;
    };
    for process in processes.flatten() {
        let Ok(stat) = process.stat() else { continue };
        let Some(kind) = process_kind(config, process.pid, &stat.comm) else {
            continue;
        };
        let Ok(tasks) = process.tasks() else { continue };
        for task in tasks.flatten() {
            let Ok(task_stat) = task.stat() else { continue };
            let kind = match kind {
                TaskKind::QemuOther => qemu_thread_kind(&task_stat.comm),
                other => other,
            };
            watched.push(Watched {
                tgid: process.pid,
                tid: task.tid,
                comm: task_stat.comm,
                kind,
            });
        }
    }
    watched
}

/// Every task alive now, for names and parents of pids that events mention.
fn task_snapshot(t: u64) -> Vec<Record> {
    let mut records = Vec::new();
    let Ok(processes) = all_processes() else {
        return records;
    };
    for process in processes.flatten() {
        let Ok(stat) = process.stat() else { continue };
        let Ok(tasks) = process.tasks() else { continue };
        for task in tasks.flatten() {
            let comm = task
                .stat()
                .map(|s| s.comm)
                .unwrap_or_else(|_| stat.comm.clone());
            records.push(Record::TaskInfo {
                t,
                tid: task.tid,
                tgid: process.pid,
                ppid: stat.ppid,
                comm: comm.into(),
            });
        }
    }
    records
}

/// A thread's cgroups in the two hierarchies, from `/proc/PID/task/TID/cgroup`:
/// the v1 line whose controllers include `freezer`, and the v2 line `0::PATH`.
fn parse_task_cgroups(text: &str) -> (Option<&str>, Option<&str>) {
    let (mut v1, mut v2) = (None, None);
    for line in text.lines() {
        let mut parts = line.splitn(3, ':');
        let (Some(id), Some(controllers), Some(path)) = (parts.next(), parts.next(), parts.next())
        else {
            continue;
        };
        if id == "0" && controllers.is_empty() {
            v2 = Some(path);
        } else if controllers.split(',').any(|c| c == "freezer") {
            v1 = Some(path);
        }
    }
    (v1, v2)
}

/// A v1 `freezer.state`.
fn parse_v1_state(text: &str) -> Option<FreezerState> {
    match text.trim() {
        "THAWED" => Some(FreezerState::Thawed),
        "FREEZING" => Some(FreezerState::Freezing),
        "FROZEN" => Some(FreezerState::Frozen),
        _ => None,
    }
}

/// The freezer state of the cgroup `cgroup` in `hierarchy`; `None` if it cannot be
/// read (the thread moved, the cgroup is gone, or the kernel has no such file).
fn read_freezer_state(
    mount: &CgroupMount,
    hierarchy: CgroupHierarchy,
    cgroup: &str,
) -> Option<FreezerState> {
    // Neither hierarchy can freeze its root, which has no state files.
    if cgroup == "/" {
        return Some(FreezerState::Thawed);
    }
    let dir = mount.dir_of(cgroup)?;
    match hierarchy {
        CgroupHierarchy::V1Freezer => {
            // The effective state: FREEZING or FROZEN when an ancestor is, too.
            parse_v1_state(&std::fs::read_to_string(dir.join("freezer.state")).ok()?)
        }
        CgroupHierarchy::V2 => {
            // `frozen 1` once every task is frozen, also when an ancestor was frozen;
            // before that, `cgroup.freeze` 1 on the cgroup or an ancestor means freezing.
            let events = std::fs::read_to_string(dir.join("cgroup.events")).ok()?;
            if v2_frozen(&events)? {
                return Some(FreezerState::Frozen);
            }
            let mut level: Option<&Path> = Some(&dir);
            while let Some(d) = level.filter(|d| d.starts_with(&mount.dir) && *d != mount.dir) {
                if std::fs::read_to_string(d.join("cgroup.freeze")).is_ok_and(|f| f.trim() == "1") {
                    return Some(FreezerState::Freezing);
                }
                level = d.parent();
            }
            Some(FreezerState::Thawed)
        }
    }
}

/// The last freezer reading of one thread in one hierarchy.
#[derive(Debug, Clone)]
struct FreezerSeen {
    cgroup: String,
    state: FreezerState,
    t: u64,
}

/// Follows the freezer state of the traced threads, writing only what changes.
struct FreezerTracker {
    mounts: CgroupMounts,
    /// By (tgid, tid, hierarchy).
    seen: HashMap<(i32, i32, CgroupHierarchy), FreezerSeen>,
}

impl FreezerTracker {
    fn new(mounts: CgroupMounts) -> Self {
        FreezerTracker {
            mounts,
            seen: HashMap::new(),
        }
    }

    /// Forgets threads no longer watched (exited).
    fn retain(&mut self, watched: &[Watched]) {
        let alive: HashSet<(i32, i32)> = watched.iter().map(|w| (w.tgid, w.tid)).collect();
        self.seen
            .retain(|(tgid, tid, _), _| alive.contains(&(*tgid, *tid)));
    }

    /// Reads the state of every traced thread's cgroups, each cgroup once, and records
    /// first sightings and changes.
    fn sample(&mut self, watched: &[Watched], out: &mut Vec<Record>) {
        self.sample_with(watched, out, |w| {
            std::fs::read_to_string(format!("/proc/{}/task/{}/cgroup", w.tgid, w.tid)).ok()
        });
    }

    /// [`FreezerTracker::sample`] with the threads' cgroup files read by `task_cgroups`.
    fn sample_with(
        &mut self,
        watched: &[Watched],
        out: &mut Vec<Record>,
        task_cgroups: impl Fn(&Watched) -> Option<String>,
    ) {
        if self.mounts.v1_freezer.is_none() && self.mounts.v2.is_none() {
            return;
        }
        let mut states: HashMap<(CgroupHierarchy, String), Option<(u64, FreezerState)>> =
            HashMap::new();
        for w in watched.iter().filter(|w| w.kind == TaskKind::Traced) {
            // A thread that exited since the last rescan is not sampled, and not a loss.
            let Some(text) = task_cgroups(w) else {
                continue;
            };
            let (v1, v2) = parse_task_cgroups(&text);
            for (hierarchy, mount, cgroup) in [
                (CgroupHierarchy::V1Freezer, &self.mounts.v1_freezer, v1),
                (CgroupHierarchy::V2, &self.mounts.v2, v2),
            ] {
                let (Some(mount), Some(cgroup)) = (mount, cgroup) else {
                    continue;
                };
                let reading = *states
                    .entry((hierarchy, cgroup.to_string()))
                    .or_insert_with(|| {
                        let t = monotonic_ns();
                        read_freezer_state(mount, hierarchy, cgroup).map(|s| (t, s))
                    });
                let Some((t, state)) = reading else { continue };
                let key = (w.tgid, w.tid, hierarchy);
                let previous_t = match self.seen.get_mut(&key) {
                    Some(seen) if seen.state == state && seen.cgroup == cgroup => {
                        seen.t = t;
                        continue;
                    }
                    seen => seen.map(|s| s.t),
                };
                out.push(Record::Freezer(FreezerSample {
                    t,
                    tgid: w.tgid,
                    tid: w.tid,
                    hierarchy,
                    cgroup: cgroup.to_string(),
                    state,
                    previous_t,
                }));
                self.seen.insert(
                    key,
                    FreezerSeen {
                        cgroup: cgroup.to_string(),
                        state,
                        t,
                    },
                );
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn qemu_threads_are_classified_by_their_names() {
        assert_eq!(qemu_thread_kind("CPU 0/KVM"), TaskKind::QemuVcpu);
        assert_eq!(qemu_thread_kind("CPU 3/TCG"), TaskKind::QemuVcpu);
        assert_eq!(qemu_thread_kind("IO iothread0"), TaskKind::QemuIo);
        assert_eq!(qemu_thread_kind("worker"), TaskKind::QemuIo);
        assert_eq!(qemu_thread_kind("qemu-system-x86"), TaskKind::QemuOther);
    }

    #[test]
    fn only_hosts_watch_qemu_and_vhost() {
        let mut config = SamplerConfig {
            interval: Duration::from_millis(100),
            comms: vec!["keepalived".into()],
            pids: vec![42],
            host: false,
        };
        assert_eq!(
            process_kind(&config, 7, "keepalived"),
            Some(TaskKind::Traced)
        );
        assert_eq!(process_kind(&config, 42, "bash"), Some(TaskKind::Traced));
        assert_eq!(process_kind(&config, 8, "qemu-system-x86"), None);
        config.host = true;
        assert_eq!(
            process_kind(&config, 8, "qemu-system-x86"),
            Some(TaskKind::QemuOther)
        );
        assert_eq!(
            process_kind(&config, 9, "vhost-1234"),
            Some(TaskKind::Vhost)
        );
        // A QEMU traced by its pid (the lab does so) is still a QEMU on a host.
        config.pids.push(8);
        assert_eq!(
            process_kind(&config, 8, "qemu-system-x86"),
            Some(TaskKind::QemuOther)
        );
    }

    #[test]
    fn parses_task_cgroups_and_state_files() {
        let text = "9:name=systemd:/\n6:cpu,freezer:/vmlat-test-7:x\n4:memory:/m\n0::/lab/vr1\n";
        assert_eq!(
            parse_task_cgroups(text),
            (Some("/vmlat-test-7:x"), Some("/lab/vr1"))
        );
        assert_eq!(parse_task_cgroups("0::/\n"), (None, Some("/")));
        assert_eq!(parse_task_cgroups(""), (None, None));
        assert_eq!(parse_v1_state("FROZEN\n"), Some(FreezerState::Frozen));
        assert_eq!(parse_v1_state("FREEZING\n"), Some(FreezerState::Freezing));
        assert_eq!(parse_v1_state("THAWED\n"), Some(FreezerState::Thawed));
        assert_eq!(parse_v1_state(""), None);
        assert_eq!(v2_frozen("populated 1\nfrozen 1\n"), Some(true));
        assert_eq!(v2_frozen("populated 1\nfrozen 0\n"), Some(false));
        assert_eq!(v2_frozen("populated 1\n"), None);
    }

    /// A fake cgroup tree: `v1/` and `v2/` stand for the two mounts.
    struct FakeTree {
        dir: tempfile::TempDir,
    }

    impl FakeTree {
        fn new() -> Self {
            FakeTree {
                dir: tempfile::tempdir().unwrap(),
            }
        }

        fn mounts(&self) -> CgroupMounts {
            let mount = |name: &str| CgroupMount {
                dir: self.dir.path().join(name),
                root: "/".into(),
            };
            CgroupMounts {
                v1_freezer: Some(mount("v1")),
                v2: Some(mount("v2")),
            }
        }

        fn write(&self, file: &str, content: &str) {
            let path = self.dir.path().join(file);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, content).unwrap();
        }
    }

    fn traced(tid: i32) -> Watched {
        Watched {
            tgid: 10,
            tid,
            comm: "keepalived".into(),
            kind: TaskKind::Traced,
        }
    }

    fn freezer_records(
        records: &[Record],
    ) -> Vec<(i32, CgroupHierarchy, &str, FreezerState, bool)> {
        records
            .iter()
            .map(|r| match r {
                Record::Freezer(s) => (
                    s.tid,
                    s.hierarchy,
                    s.cgroup.as_str(),
                    s.state,
                    s.previous_t.is_some(),
                ),
                other => panic!("not a freezer record: {other:?}"),
            })
            .collect()
    }

    #[test]
    fn freezer_records_are_a_baseline_then_changes_only() {
        use CgroupHierarchy::{V1Freezer, V2};
        use FreezerState::{Freezing, Frozen, Thawed};
        let tree = FakeTree::new();
        tree.write("v1/lab/freezer.state", "THAWED\n");
        tree.write("v2/lab/cgroup.events", "populated 1\nfrozen 0\n");
        tree.write("v2/lab/cgroup.freeze", "0\n");
        tree.write("v2/lab/vr1/cgroup.events", "populated 1\nfrozen 0\n");
        tree.write("v2/lab/vr1/cgroup.freeze", "0\n");
        let mut tracker = FreezerTracker::new(tree.mounts());
        let cgroups = std::cell::RefCell::new(HashMap::from([
            (11, "6:freezer:/lab\n0::/lab/vr1\n".to_string()),
            (12, "6:freezer:/\n0::/\n".to_string()),
        ]));
        let mut tick = |watched: &[Watched]| {
            let mut out = Vec::new();
            tracker.sample_with(watched, &mut out, |w| cgroups.borrow().get(&w.tid).cloned());
            out
        };
        let mut qemu = traced(13);
        qemu.kind = TaskKind::QemuVcpu;
        let watched = [traced(11), traced(12), traced(14), qemu];

        // A baseline for every thread seen, thawed or not; the root is thawed; a thread
        // whose cgroup file is gone (14) and untraced threads (13) have none.
        let first = tick(&watched);
        assert_eq!(
            freezer_records(&first),
            [
                (11, V1Freezer, "/lab", Thawed, false),
                (11, V2, "/lab/vr1", Thawed, false),
                (12, V1Freezer, "/", Thawed, false),
                (12, V2, "/", Thawed, false),
            ]
        );
        assert!(tick(&watched).is_empty(), "nothing changed");

        tree.write("v1/lab/freezer.state", "FROZEN\n");
        // v2: the parent asked to freeze, the child not frozen yet.
        tree.write("v2/lab/cgroup.freeze", "1\n");
        let changes = tick(&watched);
        assert_eq!(
            freezer_records(&changes),
            [
                (11, V1Freezer, "/lab", Frozen, true),
                (11, V2, "/lab/vr1", Freezing, true),
            ]
        );
        let Record::Freezer(frozen) = &changes[0] else {
            unreachable!()
        };
        assert!(frozen.previous_t.unwrap() <= frozen.t);

        tree.write("v2/lab/vr1/cgroup.events", "populated 1\nfrozen 1\n");
        assert_eq!(
            freezer_records(&tick(&watched)),
            [(11, V2, "/lab/vr1", Frozen, true)]
        );

        // Moved to another cgroup in the same state: recorded, with its path.
        tree.write("v1/other/freezer.state", "FROZEN\n");
        cgroups
            .borrow_mut()
            .insert(11, "6:freezer:/other\n0::/lab/vr1\n".into());
        assert_eq!(
            freezer_records(&tick(&watched)),
            [(11, V1Freezer, "/other", Frozen, true)]
        );

        // An unreadable state file is skipped, not recorded as a change.
        std::fs::remove_file(tree.dir.path().join("v1/other/freezer.state")).unwrap();
        assert!(tick(&watched).is_empty());

        // A thread no longer watched is forgotten: seen again, it gets a baseline.
        tracker.retain(&[traced(12)]);
        assert_eq!(tracker.seen.len(), 2);
        tree.write("v1/other/freezer.state", "THAWED\n");
        let mut out = Vec::new();
        tracker.sample_with(&[traced(11)], &mut out, |w| {
            cgroups.borrow().get(&w.tid).cloned()
        });
        assert_eq!(
            freezer_records(&out),
            [
                (11, V1Freezer, "/other", Thawed, false),
                (11, V2, "/lab/vr1", Frozen, false),
            ]
        );
    }

    #[test]
    fn without_cgroup_mounts_nothing_is_read() {
        let mut tracker = FreezerTracker::new(CgroupMounts::default());
        let mut out = Vec::new();
        tracker.sample_with(&[traced(11)], &mut out, |_| panic!("read a cgroup file"));
        assert!(out.is_empty());
    }
}

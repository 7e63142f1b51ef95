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

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use procfs::process::{all_processes, Process};
use procfs::{Current, CurrentSI, DiskStats, KernelStats};
use vmlat_bundle::{CpuSample, DiskSample, Record, TaskKind, TaskSample};

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
            last_rescan = now;
        }
        if now - last_anchor >= ANCHOR_EVERY.as_nanos() as u64 {
            records.push(Record::Clock(anchor()));
            last_anchor = now;
        }
        sample_disks(&mut records);
        sample_cpus(ticks_per_second, &mut records);
        sample_tasks(&watched, &mut records);
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
        Record::Disk(DiskSample {
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
        })
    }));
}

fn sample_cpus(ticks_per_second: u64, out: &mut Vec<Record>) {
    let t = monotonic_ns();
    let Ok(stats) = KernelStats::current() else {
        return;
    };
    let cpu = |cpu: Option<u32>, c: &procfs::CpuTime| {
        Record::Cpu(CpuSample {
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
        })
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
            comm: w.comm.clone(),
            kind: w.kind,
            run_ns: sched.sum_exec_runtime,
            wait_ns: sched.run_delay,
            timeslices: sched.pcount,
            state: stat.state,
        }));
    }
}

/// Classifies a process: traced, a QEMU process (on a host), a vhost worker, or none.
fn process_kind(config: &SamplerConfig, pid: i32, comm: &str) -> Option<TaskKind> {
    if config.pids.contains(&pid) || config.comms.iter().any(|c| c == comm) {
        Some(TaskKind::Traced)
    } else if config.host && comm.starts_with("qemu-system") {
        Some(TaskKind::QemuOther)
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
                comm,
            });
        }
    }
    records
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
    }
}

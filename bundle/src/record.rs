//! The records of `events.vmlat`.
//!
//! Every record carries `t`, nanoseconds of the recording machine's CLOCK_MONOTONIC
//! (the only clock perf tracepoints accept besides MONOTONIC_RAW). Wall-clock time is
//! recovered from [`ClockAnchor`] pairs. Thread ids are kernel task ids (`tid`); the
//! thread-group id (`tgid`) is the process id a user sees in `ps`.
//!
//! Records are serialized with postcard (a documented, stable, compact serde format).
//! New variants are only ever appended, so that older bundles stay readable.

use serde::{Deserialize, Serialize};

pub use crate::comm::Comm;

/// One record of the event stream.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Record {
    /// `sched:sched_switch`: `prev` left the CPU in state `prev_state`, `next` took it.
    SchedSwitch {
        t: u64,
        cpu: u32,
        prev_tid: i32,
        prev_comm: Comm,
        prev_prio: i32,
        /// The kernel's task state bits (`TASK_INTERRUPTIBLE` = 0x1 → `S`,
        /// `TASK_UNINTERRUPTIBLE` = 0x2 → `D`, `__TASK_STOPPED` = 0x4 → `T`,
        /// `__TASK_TRACED` = 0x8 → `t`, ...); 0 means runnable (`R`), and the bit above the
        /// highest state (`TASK_REPORT_MAX`, 0x100 on 6.x) means preempted (`R+`).
        prev_state: u64,
        next_tid: i32,
        next_comm: Comm,
        next_prio: i32,
    },
    /// `sched:sched_wakeup` / `sched:sched_wakeup_new`: `tid` became runnable on
    /// `target_cpu`, woken by `waker_tid` running on `cpu`.
    SchedWakeup {
        t: u64,
        cpu: u32,
        waker_tid: i32,
        tid: i32,
        comm: Comm,
        prio: i32,
        target_cpu: i32,
        new_task: bool,
    },
    /// `sched:sched_process_fork`.
    ProcessFork {
        t: u64,
        cpu: u32,
        parent_tid: i32,
        parent_tgid: i32,
        parent_comm: Comm,
        child_tid: i32,
        child_comm: Comm,
    },
    /// `sched:sched_process_exec`: `tid` (thread group `tgid`) now runs `filename`.
    ProcessExec {
        t: u64,
        cpu: u32,
        tid: i32,
        tgid: i32,
        old_tid: i32,
        filename: String,
        comm: Comm,
    },
    /// `sched:sched_process_exit`.
    ProcessExit {
        t: u64,
        cpu: u32,
        tid: i32,
        tgid: i32,
        comm: Comm,
        prio: i32,
    },
    /// `signal:signal_generate`: `sender_tid` generated signal `sig` for `target_tid`.
    Signal {
        t: u64,
        cpu: u32,
        sender_tid: i32,
        sender_tgid: i32,
        sig: i32,
        code: i32,
        target_tid: i32,
        target_comm: Comm,
        group: bool,
        /// 0 delivered, 1 ignored, 2 already pending, 3 overflow, 4 lost info.
        result: i32,
    },
    /// `raw_syscalls:sys_enter` of a traced task.
    SyscallEnter {
        t: u64,
        cpu: u32,
        tid: i32,
        tgid: i32,
        nr: i64,
        args: [u64; 6],
    },
    /// `raw_syscalls:sys_exit` of a traced task.
    SyscallExit {
        t: u64,
        cpu: u32,
        tid: i32,
        tgid: i32,
        nr: i64,
        ret: i64,
    },
    /// `block:block_rq_issue`: a request went to the device driver.
    BlockIssue {
        t: u64,
        cpu: u32,
        /// Kernel `dev_t` (major << 20 | minor).
        dev: u32,
        sector: u64,
        nr_sector: u32,
        bytes: u32,
        rwbs: String,
        /// The task running when the request was issued (often not the submitter).
        tid: i32,
        comm: Comm,
    },
    /// `block:block_rq_complete`.
    BlockComplete {
        t: u64,
        cpu: u32,
        dev: u32,
        sector: u64,
        nr_sector: u32,
        error: i32,
        rwbs: String,
    },
    /// One `/proc/diskstats` line. Boxed, as the other rare large samples: every
    /// record is as large as the largest variant, and the recorder moves millions of
    /// scheduler and syscall records a second (serialized the same as unboxed).
    Disk(Box<DiskSample>),
    /// One `/proc/stat` CPU line.
    Cpu(Box<CpuSample>),
    /// One `/proc/PID/task/TID/schedstat` reading.
    Task(TaskSample),
    /// A CLOCK_REALTIME / CLOCK_MONOTONIC pair.
    Clock(ClockAnchor),
    /// A task alive when recording started (or first seen later), for names and parents.
    TaskInfo {
        t: u64,
        tid: i32,
        tgid: i32,
        ppid: i32,
        comm: Comm,
    },
    /// Cumulative loss counters so far; the last one in the stream is authoritative
    /// when a recorder died before rewriting its manifest.
    Losses { t: u64, losses: crate::Losses },
    /// The cgroup freezer state of a traced task's cgroup (events stream version 2):
    /// a baseline when the task is first seen, then one record whenever its cgroup or
    /// that cgroup's state changes.
    Freezer(FreezerSample),
    /// `syscalls:sys_enter_exit_group`: thread `tid` of process `tgid` called
    /// `exit_group(code)`, ending its process (every process, unfiltered). `code` is the
    /// argument as the kernel reads it, an `int`: the low 32 bits of the register,
    /// sign-extended. The parent's `wait` sees `code & 0xff` (`exit(-1)` is 255).
    /// Appended without a new stream version: older streams simply have none.
    ExitGroup {
        t: u64,
        cpu: u32,
        tid: i32,
        tgid: i32,
        code: i64,
    },
    /// `kvm:kvm_exit` (`--role host`, where the kernel runs KVM guests): the vCPU thread
    /// `tid` left guest mode of its vCPU `vcpu` for `reason`, a VMX basic exit reason
    /// when `isa` is 1 (Intel) or an SVM exit code when it is 2 (AMD). Appended without
    /// a new stream version: older streams simply have none.
    KvmExit {
        t: u64,
        cpu: u32,
        tid: i32,
        vcpu: u32,
        reason: u32,
        isa: u32,
    },
    /// `kvm:kvm_entry`: the vCPU thread `tid` entered guest mode of its vCPU `vcpu`.
    KvmEntry {
        t: u64,
        cpu: u32,
        tid: i32,
        vcpu: u32,
    },
}

/// iostat's raw material: one device's cumulative counters at `t`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DiskSample {
    pub t: u64,
    pub device: String,
    pub major: u32,
    pub minor: u32,
    pub reads: u64,
    pub reads_merged: u64,
    pub sectors_read: u64,
    pub read_ms: u64,
    pub writes: u64,
    pub writes_merged: u64,
    pub sectors_written: u64,
    pub write_ms: u64,
    /// Requests in flight now (not cumulative): the only sign of an I/O that is stuck.
    pub in_flight: u64,
    pub io_ticks_ms: u64,
    pub time_in_queue_ms: u64,
    pub discards: u64,
    pub discard_ms: u64,
    pub flushes: u64,
    pub flush_ms: u64,
}

/// One `/proc/stat` CPU line, cumulative, in USER_HZ ticks (`ticks_per_second`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CpuSample {
    pub t: u64,
    /// `None` for the aggregate `cpu` line.
    pub cpu: Option<u32>,
    pub user: u64,
    pub nice: u64,
    pub system: u64,
    pub idle: u64,
    pub iowait: u64,
    pub irq: u64,
    pub softirq: u64,
    pub steal: u64,
    pub guest: u64,
    pub guest_nice: u64,
    pub ticks_per_second: u64,
}

/// Why a thread's schedstat is sampled.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum TaskKind {
    /// A thread of a process named by `--comm`/`--pid`.
    Traced,
    /// A QEMU vCPU thread (`CPU n/KVM`, `CPU n/TCG`).
    QemuVcpu,
    /// A QEMU I/O thread (`IO iothread*`, `worker`, ...).
    QemuIo,
    /// Any other thread of a QEMU process (its main loop among them).
    QemuOther,
    /// A `vhost-PID` kernel thread.
    Vhost,
}

/// `/proc/PID/task/TID/schedstat` at `t`: cumulative time on CPU, time runnable but
/// waiting (run delay), and number of timeslices.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaskSample {
    pub t: u64,
    pub tgid: i32,
    pub tid: i32,
    pub comm: Comm,
    pub kind: TaskKind,
    pub run_ns: u64,
    pub wait_ns: u64,
    pub timeslices: u64,
    /// The state letter of `/proc/PID/task/TID/stat` (R, S, D, T, ...).
    pub state: char,
}

/// The cgroup hierarchy a [`FreezerSample`] was read from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum CgroupHierarchy {
    /// A cgroup v1 hierarchy with the `freezer` controller: `freezer.state`.
    V1Freezer,
    /// The cgroup v2 (unified) hierarchy: `cgroup.freeze` and `cgroup.events`.
    V2,
}

/// The freezer state of a cgroup, as seen by the tasks in it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum FreezerState {
    /// Not frozen, not being frozen (v1 `THAWED`; v2 `cgroup.events` `frozen 0` and
    /// no `cgroup.freeze` 1 on the cgroup or an ancestor). The root cgroup of either
    /// hierarchy cannot be frozen and is always thawed.
    Thawed,
    /// Asked to freeze, not every task frozen yet (v1 `FREEZING`; v2 `cgroup.freeze` 1
    /// on the cgroup or an ancestor while `cgroup.events` still says `frozen 0`).
    Freezing,
    /// Every task of the cgroup is frozen (v1 `FROZEN`; v2 `cgroup.events` `frozen 1`,
    /// which a frozen ancestor also sets).
    Frozen,
}

/// The freezer state of the cgroup a traced thread is in, in one hierarchy, at `t`.
///
/// The state is read every sampling interval; a record is written when a thread is
/// first seen and whenever its cgroup (`cgroup`) or that cgroup's state changes. The
/// change happened after `previous_t` (the last reading that still showed the
/// earlier cgroup and state) and at or before `t`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FreezerSample {
    /// CLOCK_MONOTONIC ns when the state was read.
    pub t: u64,
    pub tgid: i32,
    pub tid: i32,
    pub hierarchy: CgroupHierarchy,
    /// The cgroup's path in its hierarchy, as `/proc/PID/task/TID/cgroup` gives it
    /// (`/` for the root).
    pub cgroup: String,
    pub state: FreezerState,
    /// The previous reading of this thread in this hierarchy, which still showed the
    /// earlier state; `None` on the thread's first record (a baseline).
    pub previous_t: Option<u64>,
}

/// A paired reading of CLOCK_REALTIME and CLOCK_MONOTONIC, taken back to back.
/// `monotonic_ns` is the midpoint of two monotonic reads around the realtime one, and
/// `uncertainty_ns` half their distance.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClockAnchor {
    pub realtime_ns: i64,
    pub monotonic_ns: u64,
    pub uncertainty_ns: u64,
}

/// The kind of a record, for counting and filtering without matching every field.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum RecordKind {
    SchedSwitch,
    SchedWakeup,
    ProcessFork,
    ProcessExec,
    ProcessExit,
    Signal,
    SyscallEnter,
    SyscallExit,
    BlockIssue,
    BlockComplete,
    Disk,
    Cpu,
    Task,
    Clock,
    TaskInfo,
    Losses,
    Freezer,
    ExitGroup,
    KvmExit,
    KvmEntry,
}

impl Record {
    /// CLOCK_MONOTONIC nanoseconds of the record.
    pub fn time(&self) -> u64 {
        match self {
            Record::SchedSwitch { t, .. }
            | Record::SchedWakeup { t, .. }
            | Record::ProcessFork { t, .. }
            | Record::ProcessExec { t, .. }
            | Record::ProcessExit { t, .. }
            | Record::Signal { t, .. }
            | Record::SyscallEnter { t, .. }
            | Record::SyscallExit { t, .. }
            | Record::BlockIssue { t, .. }
            | Record::BlockComplete { t, .. }
            | Record::TaskInfo { t, .. }
            | Record::Losses { t, .. }
            | Record::ExitGroup { t, .. }
            | Record::KvmExit { t, .. }
            | Record::KvmEntry { t, .. } => *t,
            Record::Disk(s) => s.t,
            Record::Cpu(s) => s.t,
            Record::Task(s) => s.t,
            Record::Clock(a) => a.monotonic_ns,
            Record::Freezer(s) => s.t,
        }
    }

    pub fn kind(&self) -> RecordKind {
        match self {
            Record::SchedSwitch { .. } => RecordKind::SchedSwitch,
            Record::SchedWakeup { .. } => RecordKind::SchedWakeup,
            Record::ProcessFork { .. } => RecordKind::ProcessFork,
            Record::ProcessExec { .. } => RecordKind::ProcessExec,
            Record::ProcessExit { .. } => RecordKind::ProcessExit,
            Record::Signal { .. } => RecordKind::Signal,
            Record::SyscallEnter { .. } => RecordKind::SyscallEnter,
            Record::SyscallExit { .. } => RecordKind::SyscallExit,
            Record::BlockIssue { .. } => RecordKind::BlockIssue,
            Record::BlockComplete { .. } => RecordKind::BlockComplete,
            Record::Disk(_) => RecordKind::Disk,
            Record::Cpu(_) => RecordKind::Cpu,
            Record::Task(_) => RecordKind::Task,
            Record::Clock(_) => RecordKind::Clock,
            Record::TaskInfo { .. } => RecordKind::TaskInfo,
            Record::Losses { .. } => RecordKind::Losses,
            Record::Freezer(_) => RecordKind::Freezer,
            Record::ExitGroup { .. } => RecordKind::ExitGroup,
            Record::KvmExit { .. } => RecordKind::KvmExit,
            Record::KvmEntry { .. } => RecordKind::KvmEntry,
        }
    }
}

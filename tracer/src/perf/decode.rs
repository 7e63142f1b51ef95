//! Tracepoint payloads → [`Record`]s.
//!
//! Each tracepoint vmlat records has a layout: the accessors of the fields it needs,
//! resolved from the tracepoint's `format` file when it is opened ([`EventDecoder::new`]).
//! A sample is dispatched on its payload's `common_type` (the tracepoint id) and decoded
//! through that layout; nothing here knows an offset.
//!
//! Who is "current" (the waker, the signal sender, the forking parent) comes from the
//! payload's `common_pid`, which like every pid field of a payload is in the initial pid
//! namespace. Thread group ids come from the perf sample header (`PERF_SAMPLE_TID`),
//! which is in the recorder's pid namespace: the two agree when vmlat runs in the
//! initial namespace, as a system-wide tracer does.

use vmlat_bundle::{Comm, Record};

use crate::tracefs::EventFormat;

use super::field::{Int, IntArray, LayoutError, PayloadError, Str};
use super::sample::Sample;

/// The tracepoints vmlat records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Tracepoint {
    SchedSwitch,
    SchedWakeup,
    SchedWakeupNew,
    SchedProcessExec,
    SchedProcessExit,
    SchedProcessFork,
    SignalGenerate,
    SysEnter,
    SysExit,
    BlockRqIssue,
    BlockRqComplete,
    /// `syscalls:sys_enter_exit_group`: the exit code of every process that calls
    /// `exit_group`, unfiltered (once per process exit: cheap). Needs
    /// CONFIG_FTRACE_SYSCALLS; without it, unsupported.
    SysEnterExitGroup,
    /// `kvm:kvm_exit` and `kvm:kvm_entry`: a vCPU thread leaving and entering guest
    /// mode. Recorded with `--role host` only; absent where KVM is not loaded.
    KvmExit,
    KvmEntry,
}

impl Tracepoint {
    /// Every tracepoint, `sched_switch` first: it is required and owns the rings.
    pub const ALL: [Tracepoint; 14] = [
        Tracepoint::SchedSwitch,
        Tracepoint::SchedWakeup,
        Tracepoint::SchedWakeupNew,
        Tracepoint::SchedProcessExec,
        Tracepoint::SchedProcessExit,
        Tracepoint::SchedProcessFork,
        Tracepoint::SignalGenerate,
        Tracepoint::SysEnter,
        Tracepoint::SysExit,
        Tracepoint::BlockRqIssue,
        Tracepoint::BlockRqComplete,
        Tracepoint::SysEnterExitGroup,
        Tracepoint::KvmExit,
        Tracepoint::KvmEntry,
    ];

    pub fn group(self) -> &'static str {
        match self {
            Tracepoint::SchedSwitch
            | Tracepoint::SchedWakeup
            | Tracepoint::SchedWakeupNew
            | Tracepoint::SchedProcessExec
            | Tracepoint::SchedProcessExit
            | Tracepoint::SchedProcessFork => "sched",
            Tracepoint::SignalGenerate => "signal",
            Tracepoint::SysEnter | Tracepoint::SysExit => "raw_syscalls",
            Tracepoint::BlockRqIssue | Tracepoint::BlockRqComplete => "block",
            Tracepoint::SysEnterExitGroup => "syscalls",
            Tracepoint::KvmExit | Tracepoint::KvmEntry => "kvm",
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Tracepoint::SchedSwitch => "sched_switch",
            Tracepoint::SchedWakeup => "sched_wakeup",
            Tracepoint::SchedWakeupNew => "sched_wakeup_new",
            Tracepoint::SchedProcessExec => "sched_process_exec",
            Tracepoint::SchedProcessExit => "sched_process_exit",
            Tracepoint::SchedProcessFork => "sched_process_fork",
            Tracepoint::SignalGenerate => "signal_generate",
            Tracepoint::SysEnter => "sys_enter",
            Tracepoint::SysExit => "sys_exit",
            Tracepoint::BlockRqIssue => "block_rq_issue",
            Tracepoint::BlockRqComplete => "block_rq_complete",
            Tracepoint::SysEnterExitGroup => "sys_enter_exit_group",
            Tracepoint::KvmExit => "kvm_exit",
            Tracepoint::KvmEntry => "kvm_entry",
        }
    }

    /// The syscall tracepoints recorded only for the traced processes (`raw_syscalls`,
    /// filtered in the kernel). `sys_enter_exit_group` is recorded for every process.
    pub fn is_syscall(self) -> bool {
        matches!(self, Tracepoint::SysEnter | Tracepoint::SysExit)
    }

    /// The tracepoints of the hypervisor's side, recorded with `--role host` only: a
    /// guest has no KVM guests of its own to watch.
    pub fn is_host_only(self) -> bool {
        matches!(self, Tracepoint::KvmExit | Tracepoint::KvmEntry)
    }
}

impl std::fmt::Display for Tracepoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.group(), self.name())
    }
}

/// The fields each tracepoint's record is built from.
#[derive(Debug, Clone)]
enum Layout {
    Switch {
        prev_comm: Str,
        prev_pid: Int,
        prev_prio: Int,
        prev_state: Int,
        next_comm: Str,
        next_pid: Int,
        next_prio: Int,
    },
    Wakeup {
        comm: Str,
        pid: Int,
        prio: Int,
        target_cpu: Int,
        new_task: bool,
    },
    Fork {
        parent_comm: Str,
        parent_pid: Int,
        child_comm: Str,
        child_pid: Int,
    },
    Exec {
        filename: Str,
        pid: Int,
        old_pid: Int,
    },
    Exit {
        comm: Str,
        pid: Int,
        prio: Int,
    },
    Signal {
        sig: Int,
        code: Int,
        comm: Str,
        pid: Int,
        group: Int,
        result: Int,
    },
    SysEnter {
        id: Int,
        args: IntArray<6>,
    },
    SysExit {
        id: Int,
        ret: Int,
    },
    BlockIssue {
        dev: Int,
        sector: Int,
        nr_sector: Int,
        bytes: Int,
        rwbs: Str,
        comm: Str,
    },
    BlockComplete {
        dev: Int,
        sector: Int,
        nr_sector: Int,
        error: Int,
        rwbs: Str,
    },
    ExitGroup {
        error_code: Int,
    },
    KvmExit {
        vcpu_id: Int,
        exit_reason: Int,
        isa: Int,
    },
    KvmEntry {
        vcpu_id: Int,
    },
}

impl Layout {
    fn resolve(tp: Tracepoint, f: &EventFormat) -> Result<Self, LayoutError> {
        Ok(match tp {
            Tracepoint::SchedSwitch => Layout::Switch {
                prev_comm: Str::resolve(f, "prev_comm")?,
                prev_pid: Int::resolve(f, "prev_pid")?,
                prev_prio: Int::resolve(f, "prev_prio")?,
                prev_state: Int::resolve(f, "prev_state")?,
                next_comm: Str::resolve(f, "next_comm")?,
                next_pid: Int::resolve(f, "next_pid")?,
                next_prio: Int::resolve(f, "next_prio")?,
            },
            Tracepoint::SchedWakeup | Tracepoint::SchedWakeupNew => Layout::Wakeup {
                comm: Str::resolve(f, "comm")?,
                pid: Int::resolve(f, "pid")?,
                prio: Int::resolve(f, "prio")?,
                target_cpu: Int::resolve(f, "target_cpu")?,
                new_task: tp == Tracepoint::SchedWakeupNew,
            },
            Tracepoint::SchedProcessFork => Layout::Fork {
                parent_comm: Str::resolve(f, "parent_comm")?,
                parent_pid: Int::resolve(f, "parent_pid")?,
                child_comm: Str::resolve(f, "child_comm")?,
                child_pid: Int::resolve(f, "child_pid")?,
            },
            Tracepoint::SchedProcessExec => Layout::Exec {
                filename: Str::resolve(f, "filename")?,
                pid: Int::resolve(f, "pid")?,
                old_pid: Int::resolve(f, "old_pid")?,
            },
            Tracepoint::SchedProcessExit => Layout::Exit {
                comm: Str::resolve(f, "comm")?,
                pid: Int::resolve(f, "pid")?,
                prio: Int::resolve(f, "prio")?,
            },
            Tracepoint::SignalGenerate => Layout::Signal {
                sig: Int::resolve(f, "sig")?,
                code: Int::resolve(f, "code")?,
                comm: Str::resolve(f, "comm")?,
                pid: Int::resolve(f, "pid")?,
                group: Int::resolve(f, "group")?,
                result: Int::resolve(f, "result")?,
            },
            Tracepoint::SysEnter => Layout::SysEnter {
                id: Int::resolve(f, "id")?,
                args: IntArray::resolve(f, "args")?,
            },
            Tracepoint::SysExit => Layout::SysExit {
                id: Int::resolve(f, "id")?,
                ret: Int::resolve(f, "ret")?,
            },
            Tracepoint::BlockRqIssue => Layout::BlockIssue {
                dev: Int::resolve(f, "dev")?,
                sector: Int::resolve(f, "sector")?,
                nr_sector: Int::resolve(f, "nr_sector")?,
                bytes: Int::resolve(f, "bytes")?,
                rwbs: Str::resolve(f, "rwbs")?,
                comm: Str::resolve(f, "comm")?,
            },
            Tracepoint::BlockRqComplete => Layout::BlockComplete {
                dev: Int::resolve(f, "dev")?,
                sector: Int::resolve(f, "sector")?,
                nr_sector: Int::resolve(f, "nr_sector")?,
                error: Int::resolve(f, "error")?,
                rwbs: Str::resolve(f, "rwbs")?,
            },
            Tracepoint::SysEnterExitGroup => Layout::ExitGroup {
                error_code: Int::resolve(f, "error_code")?,
            },
            Tracepoint::KvmExit => Layout::KvmExit {
                vcpu_id: Int::resolve(f, "vcpu_id")?,
                exit_reason: Int::resolve(f, "exit_reason")?,
                isa: Int::resolve(f, "isa")?,
            },
            Tracepoint::KvmEntry => Layout::KvmEntry {
                vcpu_id: Int::resolve(f, "vcpu_id")?,
            },
        })
    }
}

/// Decodes the payloads of one tracepoint.
#[derive(Debug, Clone)]
pub struct EventDecoder {
    id: u64,
    common_type: Int,
    common_pid: Int,
    layout: Layout,
}

impl EventDecoder {
    /// Resolves the fields `tp`'s record needs from its format; an error names the
    /// field the format lacks or has in an unexpected shape.
    pub fn new(tp: Tracepoint, format: &EventFormat) -> Result<Self, LayoutError> {
        Ok(EventDecoder {
            id: format.id,
            common_type: Int::resolve(format, "common_type")?,
            common_pid: Int::resolve(format, "common_pid")?,
            layout: Layout::resolve(tp, format)?,
        })
    }

    fn decode(&self, s: &Sample) -> Result<Record, PayloadError> {
        let p = s.raw;
        let (t, cpu) = (s.time, s.cpu);
        let tgid = || {
            i32::try_from(s.pid).map_err(|_| PayloadError::OutOfRange {
                field: "sample pid",
                value: s.pid.into(),
            })
        };
        let current = || self.common_pid.get::<i32>(p);
        Ok(match &self.layout {
            Layout::Switch {
                prev_comm,
                prev_pid,
                prev_prio,
                prev_state,
                next_comm,
                next_pid,
                next_prio,
            } => Record::SchedSwitch {
                t,
                cpu,
                prev_tid: prev_pid.get(p)?,
                prev_comm: prev_comm.comm(p)?,
                prev_prio: prev_prio.get(p)?,
                prev_state: prev_state.bits(p)?,
                next_tid: next_pid.get(p)?,
                next_comm: next_comm.comm(p)?,
                next_prio: next_prio.get(p)?,
            },
            Layout::Wakeup {
                comm,
                pid,
                prio,
                target_cpu,
                new_task,
            } => Record::SchedWakeup {
                t,
                cpu,
                waker_tid: current()?,
                tid: pid.get(p)?,
                comm: comm.comm(p)?,
                prio: prio.get(p)?,
                target_cpu: target_cpu.get(p)?,
                new_task: *new_task,
            },
            Layout::Fork {
                parent_comm,
                parent_pid,
                child_comm,
                child_pid,
            } => Record::ProcessFork {
                t,
                cpu,
                parent_tid: parent_pid.get(p)?,
                parent_tgid: tgid()?,
                parent_comm: parent_comm.comm(p)?,
                child_tid: child_pid.get(p)?,
                child_comm: child_comm.comm(p)?,
            },
            Layout::Exec {
                filename,
                pid,
                old_pid,
            } => {
                let filename = filename.get(p)?;
                Record::ProcessExec {
                    t,
                    cpu,
                    tid: pid.get(p)?,
                    tgid: tgid()?,
                    old_tid: old_pid.get(p)?,
                    comm: exec_comm(&filename),
                    filename,
                }
            }
            Layout::Exit { comm, pid, prio } => Record::ProcessExit {
                t,
                cpu,
                tid: pid.get(p)?,
                tgid: tgid()?,
                comm: comm.comm(p)?,
                prio: prio.get(p)?,
            },
            Layout::Signal {
                sig,
                code,
                comm,
                pid,
                group,
                result,
            } => Record::Signal {
                t,
                cpu,
                sender_tid: current()?,
                sender_tgid: tgid()?,
                sig: sig.get(p)?,
                code: code.get(p)?,
                target_tid: pid.get(p)?,
                target_comm: comm.comm(p)?,
                group: group.get::<i64>(p)? != 0,
                result: result.get(p)?,
            },
            Layout::SysEnter { id, args } => Record::SyscallEnter {
                t,
                cpu,
                tid: current()?,
                tgid: tgid()?,
                nr: id.get(p)?,
                args: args.get(p)?,
            },
            Layout::SysExit { id, ret } => Record::SyscallExit {
                t,
                cpu,
                tid: current()?,
                tgid: tgid()?,
                nr: id.get(p)?,
                ret: ret.get(p)?,
            },
            Layout::BlockIssue {
                dev,
                sector,
                nr_sector,
                bytes,
                rwbs,
                comm,
            } => Record::BlockIssue {
                t,
                cpu,
                dev: dev.get(p)?,
                sector: sector.get(p)?,
                nr_sector: nr_sector.get(p)?,
                bytes: bytes.get(p)?,
                rwbs: rwbs.get(p)?,
                tid: current()?,
                comm: comm.comm(p)?,
            },
            Layout::BlockComplete {
                dev,
                sector,
                nr_sector,
                error,
                rwbs,
            } => Record::BlockComplete {
                t,
                cpu,
                dev: dev.get(p)?,
                sector: sector.get(p)?,
                nr_sector: nr_sector.get(p)?,
                error: error.get(p)?,
                rwbs: rwbs.get(p)?,
            },
            Layout::ExitGroup { error_code } => Record::ExitGroup {
                t,
                cpu,
                tid: current()?,
                tgid: tgid()?,
                code: exit_code(error_code.bits(p)?),
            },
            Layout::KvmExit {
                vcpu_id,
                exit_reason,
                isa,
            } => Record::KvmExit {
                t,
                cpu,
                tid: current()?,
                vcpu: vcpu_id.get(p)?,
                reason: exit_reason.get(p)?,
                isa: isa.get(p)?,
            },
            Layout::KvmEntry { vcpu_id } => Record::KvmEntry {
                t,
                cpu,
                tid: current()?,
                vcpu: vcpu_id.get(p)?,
            },
        })
    }
}

/// The comm a task has after exec'ing `filename`. `sched_process_exec` does not carry
/// it, so it is derived the way the kernel sets it (`begin_new_exec`:
/// `__set_task_comm(kbasename(filename))`, truncated to TASK_COMM_LEN − 1 = 15 bytes).
/// The one known exception: `execveat(fd, "", AT_EMPTY_PATH)` on Linux ≥ 6.14 names the
/// task after the file's dentry while `filename` reads `/dev/fd/N`; the task's next
/// `sched_switch` carries the true comm.
fn exec_comm(filename: &str) -> Comm {
    let base = filename.rsplit('/').next().unwrap_or_default().as_bytes();
    Comm::from_bytes(base.get(..15).unwrap_or(base))
}

/// The argument of `exit_group(int error_code)` as the kernel reads it. The format
/// declares `int error_code` but stores the whole register (`size:8; signed:0` on
/// x86_64, which the syscall tracepoints copy as `unsigned long`), whose upper half
/// the caller may leave as anything: the kernel takes the low 32 bits as an `int`.
fn exit_code(register: u64) -> i64 {
    i64::from(register as u32 as i32)
}

/// Every opened tracepoint's decoder, found by the payload's `common_type`.
#[derive(Debug, Clone)]
pub struct Decoders {
    /// Where `common_type` lies: the same in every format of a kernel (checked in
    /// [`Decoders::add`]), so it can be read before the tracepoint is known.
    common_type: Int,
    decoders: Vec<EventDecoder>,
}

impl Decoders {
    pub fn new(first: EventDecoder) -> Self {
        Decoders {
            common_type: first.common_type,
            decoders: vec![first],
        }
    }

    /// Adds a decoder; fails if its format puts `common_type` elsewhere than the
    /// first one did (never seen on a real kernel, but then dispatch would misread).
    pub fn add(&mut self, decoder: EventDecoder) -> Result<(), &'static str> {
        if decoder.common_type != self.common_type {
            return Err("its common_type field differs from the other tracepoints'");
        }
        self.decoders.push(decoder);
        Ok(())
    }

    pub fn decode(&self, sample: &Sample) -> Result<Record, PayloadError> {
        let id = self.common_type.get::<u64>(sample.raw)?;
        // A linear scan: there are at most a dozen decoders, fewer than a hash costs.
        self.decoders
            .iter()
            .find(|d| d.id == id)
            .ok_or(PayloadError::UnknownEvent(id))?
            .decode(sample)
    }
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use crate::perf::sample::{self, RingRecord};

    pub(in crate::perf) fn format(file: &str) -> EventFormat {
        let path = format!(
            "{}/tests/data/formats/{file}.format",
            env!("CARGO_MANIFEST_DIR")
        );
        EventFormat::parse(&std::fs::read_to_string(&path).unwrap()).unwrap()
    }

    /// Builds a payload the way the kernel lays it out for `format`.
    pub(in crate::perf) struct Payload<'f> {
        format: &'f EventFormat,
        pub(in crate::perf) bytes: Vec<u8>,
    }

    impl<'f> Payload<'f> {
        pub(in crate::perf) fn new(format: &'f EventFormat, common_pid: i32) -> Self {
            let fixed = format
                .fields
                .iter()
                .map(|f| f.offset + f.size)
                .max()
                .unwrap();
            let mut p = Payload {
                format,
                bytes: vec![0; fixed],
            };
            p.put("common_type", &(format.id as u16).to_ne_bytes());
            p.put("common_pid", &common_pid.to_ne_bytes());
            p
        }

        pub(in crate::perf) fn put(&mut self, name: &str, value: &[u8]) -> &mut Self {
            let f = self
                .format
                .field(name)
                .unwrap_or_else(|| panic!("no field {name}"));
            assert!(
                value.len() <= f.size,
                "{name}: {} > {}",
                value.len(),
                f.size
            );
            self.bytes[f.offset..f.offset + value.len()].copy_from_slice(value);
            self
        }

        pub(in crate::perf) fn int(&mut self, name: &str, value: i64) -> &mut Self {
            let size = self.format.field(name).unwrap().size;
            let bytes = value.to_ne_bytes();
            // Little- or big-endian, the low `size` bytes of the value.
            let low = if cfg!(target_endian = "little") {
                &bytes[..size]
            } else {
                &bytes[8 - size..]
            };
            self.put(name, low)
        }

        /// Appends a `__data_loc` string after the fixed part.
        pub(in crate::perf) fn data_loc(&mut self, name: &str, text: &str) -> &mut Self {
            let start = self.bytes.len() as u32;
            self.bytes.extend_from_slice(text.as_bytes());
            self.bytes.push(0);
            let loc = start | ((text.len() as u32 + 1) << 16);
            self.put(name, &loc.to_ne_bytes())
        }
    }

    fn decode_one(formats: &[(Tracepoint, &EventFormat)], payload: &[u8]) -> Record {
        let mut all = formats
            .iter()
            .map(|(tp, f)| EventDecoder::new(*tp, f).unwrap());
        let mut decoders = Decoders::new(all.next().unwrap());
        all.for_each(|d| decoders.add(d).unwrap());
        let bytes = sample::build::sample(700, 701, 5_000, 1, payload);
        let RingRecord::Sample(s) = sample::parse(&bytes).unwrap() else {
            unreachable!()
        };
        decoders.decode(&s).unwrap()
    }

    fn switch_payload(f: &EventFormat) -> Vec<u8> {
        Payload::new(f, 701)
            .put("prev_comm", b"keepalived\0")
            .int("prev_pid", 701)
            .int("prev_prio", 120)
            .int("prev_state", 4)
            .put("next_comm", b"swapper/1\0")
            .int("next_pid", 0)
            .int("next_prio", 120)
            .bytes
            .clone()
    }

    #[test]
    fn sched_switch_current_and_2_6_layouts_decode_alike() {
        let expected = Record::SchedSwitch {
            t: 5_000,
            cpu: 1,
            prev_tid: 701,
            prev_comm: "keepalived".into(),
            prev_prio: 120,
            prev_state: 4,
            next_tid: 0,
            next_comm: "swapper/1".into(),
            next_prio: 120,
        };
        for file in ["sched_switch", "sched_switch-2.6.3x"] {
            let f = format(file);
            let payload = switch_payload(&f);
            assert_eq!(
                decode_one(&[(Tracepoint::SchedSwitch, &f)], &payload),
                expected,
                "{file}"
            );
        }
        // The layouts really differ: the old payload read with the new format is wrong.
        let new = format("sched_switch");
        let mut old = format("sched_switch-2.6.3x");
        old.id = new.id;
        let old_payload = switch_payload(&old);
        let misread = decode_one(&[(Tracepoint::SchedSwitch, &new)], &old_payload);
        assert_ne!(misread, expected);
    }

    #[test]
    fn wakeups_mark_new_tasks() {
        for (tp, file, new_task) in [
            (Tracepoint::SchedWakeup, "sched_wakeup", false),
            (Tracepoint::SchedWakeupNew, "sched_wakeup_new", true),
        ] {
            let f = format(file);
            let p = Payload::new(&f, 42)
                .put("comm", b"keepalived\0")
                .int("pid", 701)
                .int("prio", 120)
                .int("target_cpu", 1)
                .bytes
                .clone();
            let expected = Record::SchedWakeup {
                t: 5_000,
                cpu: 1,
                waker_tid: 42,
                tid: 701,
                comm: "keepalived".into(),
                prio: 120,
                target_cpu: 1,
                new_task,
            };
            assert_eq!(decode_one(&[(tp, &f)], &p), expected);
        }
    }

    #[test]
    fn fork_with_data_loc_comms() {
        let f = format("sched_process_fork");
        let p = Payload::new(&f, 701)
            .data_loc("parent_comm", "keepalived")
            .int("parent_pid", 701)
            .data_loc("child_comm", "keepalived")
            .int("child_pid", 900)
            .bytes
            .clone();
        let expected = Record::ProcessFork {
            t: 5_000,
            cpu: 1,
            parent_tid: 701,
            parent_tgid: 700,
            parent_comm: "keepalived".into(),
            child_tid: 900,
            child_comm: "keepalived".into(),
        };
        assert_eq!(
            decode_one(&[(Tracepoint::SchedProcessFork, &f)], &p),
            expected
        );
    }

    /// kvm_exit and kvm_entry never fire on the lab machine (no KVM): the payloads are
    /// built from its real format files.
    #[test]
    fn kvm_exit_and_entry_decode_vcpu_reason_and_isa_on_generated_payloads() {
        let (fx, fe) = (format("kvm_exit"), format("kvm_entry"));
        let exit = Payload::new(&fx, 4321)
            .int("vcpu_id", 1)
            .int("exit_reason", 30)
            .int("isa", 1)
            .bytes
            .clone();
        let entry = Payload::new(&fe, 4321).int("vcpu_id", 1).bytes.clone();
        let tps = [(Tracepoint::KvmExit, &fx), (Tracepoint::KvmEntry, &fe)];
        assert_eq!(
            decode_one(&tps, &exit),
            Record::KvmExit {
                t: 5_000,
                cpu: 1,
                tid: 4321,
                vcpu: 1,
                reason: 30,
                isa: 1,
            }
        );
        assert_eq!(
            decode_one(&tps, &entry),
            Record::KvmEntry {
                t: 5_000,
                cpu: 1,
                tid: 4321,
                vcpu: 1,
            }
        );
    }

    #[test]
    fn exec_reads_the_filename_and_derives_the_comm() {
        let f = format("sched_process_exec");
        let p = Payload::new(&f, 900)
            .data_loc("filename", "/usr/sbin/a-very-long-daemon-name")
            .int("pid", 900)
            .int("old_pid", 901)
            .bytes
            .clone();
        let expected = Record::ProcessExec {
            t: 5_000,
            cpu: 1,
            tid: 900,
            tgid: 700,
            old_tid: 901,
            filename: "/usr/sbin/a-very-long-daemon-name".into(),
            comm: "a-very-long-dae".into(),
        };
        assert_eq!(
            decode_one(&[(Tracepoint::SchedProcessExec, &f)], &p),
            expected
        );
        assert_eq!(exec_comm("keepalived"), "keepalived");
        assert_eq!(exec_comm("/bin/"), "");
    }

    #[test]
    fn exit_signal_and_syscalls() {
        let exit = format("sched_process_exit");
        let signal = format("signal_generate");
        let enter = format("sys_enter");
        let sys_exit = format("sys_exit");
        let all = [
            (Tracepoint::SchedProcessExit, &exit),
            (Tracepoint::SignalGenerate, &signal),
            (Tracepoint::SysEnter, &enter),
            (Tracepoint::SysExit, &sys_exit),
        ];

        let p = Payload::new(&exit, 701)
            .put("comm", b"keepalived\0")
            .int("pid", 701)
            .int("prio", 120)
            .bytes
            .clone();
        assert_eq!(
            decode_one(&all, &p),
            Record::ProcessExit {
                t: 5_000,
                cpu: 1,
                tid: 701,
                tgid: 700,
                comm: "keepalived".into(),
                prio: 120
            }
        );

        let p = Payload::new(&signal, 9001)
            .int("sig", 19)
            .int("code", 0)
            .put("comm", b"keepalived\0")
            .int("pid", 701)
            .int("group", 1)
            .int("result", 0)
            .bytes
            .clone();
        assert_eq!(
            decode_one(&all, &p),
            Record::Signal {
                t: 5_000,
                cpu: 1,
                sender_tid: 9001,
                sender_tgid: 700,
                sig: 19,
                code: 0,
                target_tid: 701,
                target_comm: "keepalived".into(),
                group: true,
                result: 0,
            }
        );

        let mut p = Payload::new(&enter, 701);
        p.int("id", 44);
        let args: Vec<u8> = [3u64, 0x7fff_0000, 40, 0, u64::MAX, 16]
            .iter()
            .flat_map(|a| a.to_ne_bytes())
            .collect();
        p.put("args", &args);
        assert_eq!(
            decode_one(&all, &p.bytes),
            Record::SyscallEnter {
                t: 5_000,
                cpu: 1,
                tid: 701,
                tgid: 700,
                nr: 44,
                args: [3, 0x7fff_0000, 40, 0, u64::MAX, 16]
            }
        );

        let p = Payload::new(&sys_exit, 701)
            .int("id", 44)
            .int("ret", -11)
            .bytes
            .clone();
        assert_eq!(
            decode_one(&all, &p),
            Record::SyscallExit {
                t: 5_000,
                cpu: 1,
                tid: 701,
                tgid: 700,
                nr: 44,
                ret: -11
            }
        );
    }

    #[test]
    fn exit_group_reads_the_int_the_kernel_reads() {
        let f = format("sys_enter_exit_group");
        // Declared `int`, stored as the whole 8-byte register, unsigned.
        let field = f.field("error_code").unwrap();
        assert_eq!((field.size, field.signed), (8, false));
        let all = [(Tracepoint::SysEnterExitGroup, &f)];
        for (register, code) in [
            (7u64, 7i64),
            (0, 0),
            // exit(-1) with the upper half zeroed (a 32-bit move) or sign-extended.
            (0xffff_ffff, -1),
            (u64::MAX, -1),
            // Garbage above the low 32 bits is not part of the code.
            (0xdead_beef_0000_0103, 259),
        ] {
            let p = Payload::new(&f, 701)
                .int("__syscall_nr", 231)
                .put("error_code", &register.to_ne_bytes())
                .bytes
                .clone();
            assert_eq!(
                decode_one(&all, &p),
                Record::ExitGroup {
                    t: 5_000,
                    cpu: 1,
                    tid: 701,
                    tgid: 700,
                    code,
                },
                "{register:#x}"
            );
        }
    }

    #[test]
    fn block_requests() {
        let issue = format("block_rq_issue");
        let complete = format("block_rq_complete");
        let all = [
            (Tracepoint::BlockRqIssue, &issue),
            (Tracepoint::BlockRqComplete, &complete),
        ];
        let dev = (254 << 20) | 16;
        let p = Payload::new(&issue, 33)
            .int("dev", dev)
            .int("sector", 123_456_789_012)
            .int("nr_sector", 8)
            .int("bytes", 4096)
            .put("rwbs", b"WS\0")
            .put("comm", b"kworker/1:1H\0")
            .data_loc("cmd", "")
            .bytes
            .clone();
        assert_eq!(
            decode_one(&all, &p),
            Record::BlockIssue {
                t: 5_000,
                cpu: 1,
                dev: dev as u32,
                sector: 123_456_789_012,
                nr_sector: 8,
                bytes: 4096,
                rwbs: "WS".into(),
                tid: 33,
                comm: "kworker/1:1H".into(),
            }
        );
        let p = Payload::new(&complete, 0)
            .int("dev", dev)
            .int("sector", 1)
            .int("nr_sector", 8)
            .int("error", -5)
            .put("rwbs", b"W\0")
            .data_loc("cmd", "")
            .bytes
            .clone();
        assert_eq!(
            decode_one(&all, &p),
            Record::BlockComplete {
                t: 5_000,
                cpu: 1,
                dev: dev as u32,
                sector: 1,
                nr_sector: 8,
                error: -5,
                rwbs: "W".into()
            }
        );
    }

    #[test]
    fn bad_payloads_are_errors_never_panics() {
        let files = [
            (Tracepoint::SchedSwitch, "sched_switch"),
            (Tracepoint::SchedProcessFork, "sched_process_fork"),
            (Tracepoint::SchedProcessExec, "sched_process_exec"),
            (Tracepoint::SysEnter, "sys_enter"),
        ];
        let formats: Vec<_> = files.iter().map(|(tp, f)| (*tp, format(f))).collect();
        let mut all = formats
            .iter()
            .map(|(tp, f)| EventDecoder::new(*tp, f).unwrap());
        let mut decoders = Decoders::new(all.next().unwrap());
        all.for_each(|d| decoders.add(d).unwrap());
        let exec = &formats[2].1;
        let payload = Payload::new(exec, 1)
            .data_loc("filename", "/bin/true")
            .bytes
            .clone();
        // Every truncation of a valid payload, and a data_loc pointing past the end.
        for len in 0..payload.len() {
            let s = Sample {
                pid: 1,
                tid: 1,
                time: 0,
                cpu: 0,
                raw: &payload[..len],
            };
            assert!(decoders.decode(&s).is_err(), "len {len}");
        }
        let mut wild = payload.clone();
        wild[8..12].copy_from_slice(&u32::MAX.to_ne_bytes());
        let s = Sample {
            pid: 1,
            tid: 1,
            time: 0,
            cpu: 0,
            raw: &wild,
        };
        assert!(decoders.decode(&s).is_err());
        // An id nobody opened.
        let mut unknown = payload;
        unknown[0..2].copy_from_slice(&9999u16.to_ne_bytes());
        let s = Sample {
            pid: 1,
            tid: 1,
            time: 0,
            cpu: 0,
            raw: &unknown,
        };
        assert_eq!(decoders.decode(&s), Err(PayloadError::UnknownEvent(9999)));
        // A sample pid beyond i32 (impossible from a kernel, possible from a bug).
        let ok = Payload::new(exec, 1)
            .data_loc("filename", "/bin/true")
            .bytes
            .clone();
        let s = Sample {
            pid: u32::MAX,
            tid: 1,
            time: 0,
            cpu: 0,
            raw: &ok,
        };
        assert!(matches!(
            decoders.decode(&s),
            Err(PayloadError::OutOfRange { .. })
        ));
    }

    #[test]
    fn layouts_name_missing_fields() {
        let f = format("sched_wakeup");
        let err = EventDecoder::new(Tracepoint::SchedSwitch, &f).unwrap_err();
        assert_eq!(err.field, "prev_comm");
        assert!(err.to_string().contains("sched_wakeup"), "{err}");
    }
}

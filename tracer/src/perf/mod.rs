//! The perf tracepoint collector: scheduler, process, signal, block and (filtered)
//! syscall events, and every process's `exit_group` code, system-wide, on every online
//! CPU.
//!
//! One counter is opened per (tracepoint, CPU), each sampling every hit with
//! `TID | TIME | CPU | RAW` on CLOCK_MONOTONIC (see `sample.rs`). All counters of a CPU
//! write into one ring, owned by that CPU's `sched_switch` counter
//! (PERF_EVENT_IOC_SET_OUTPUT, as `perf record` does): a ring per CPU, not per event,
//! so that one CPU's events are in one stream and memory is `CPUs × ring size`.
//!
//! Use from the recorder, on the collector's own thread (perf samplers are not `Send`):
//!
//! ```no_run
//! # use std::sync::{Arc, atomic::AtomicBool};
//! # use vmlat_tracer::perf::{PerfCollector, PerfConfig};
//! # use vmlat_tracer::pipeline::{LossCounters, Sink};
//! # let (tx, _rx) = crossbeam_channel::bounded(64);
//! # let sink = Sink::new(0, tx, Arc::new(LossCounters::default()));
//! # let stop = AtomicBool::new(false);
//! let config = PerfConfig { comms: vec!["keepalived".into()], ..PerfConfig::default() };
//! let collector = PerfCollector::open(&config)?; // recording starts here
//! let report = collector.report().clone(); // what was opened, for the manifest
//! let summary = collector.run(&stop, sink)?; // returns once `stop` is set
//! # Ok::<(), vmlat_tracer::perf::PerfError>(())
//! ```
//!
//! **Watermarks.** Every poll round (≤ 50 ms) drains each ring and sends what it holds
//! as one unsorted [`Batch`](crate::pipeline::Batch), with watermark = CLOCK_MONOTONIC
//! read just before draining − [`SLACK_NS`]. That promise holds because (1) a ring is
//! drained until empty, so whatever a later drain finds was committed after this
//! drain began, and (2) the kernel timestamps a sample at most a few microseconds
//! before committing it (tracepoints run with preemption off; only a nested interrupt
//! can come between), far less than the slack. A ring drained only partly (it held
//! more than one lap's worth, see `Ring::drain`) bounds the watermark by the last
//! time it yielded, minus the slack, relying on each ring being in time order up to
//! such nesting.

#[cfg(test)]
mod bench;
mod cursor;
mod decode;
mod field;
mod filter;
mod sample;

use std::ffi::{CStr, CString};
use std::fs;
use std::io;
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicBool, Ordering};

use perf_event_open::config::{Cpu, Proc};
use perf_event_open::count::Counter;
use perf_event_open::event::tp::Tracepoint as PerfTracepoint;
use perf_event_open::sample::Sampler;
use vmlat_bundle::Record;

pub use decode::Tracepoint;
pub use filter::BadComm;

use crate::clock::monotonic_ns;
use crate::pipeline::{LossCounters, Sink};
use crate::tracefs::{Tracefs, TracefsError};
use decode::{Decoders, EventDecoder};
use filter::SyscallTargets;
use sample::RingRecord;

/// How far behind the drain time the watermark is kept (see the module doc).
pub const SLACK_NS: u64 = 10_000_000;
/// How long a poll waits for a ring to fill before draining anyway.
const POLL_TIMEOUT_MS: i32 = 50;
/// The largest ring accepted: 2^16 pages (256 MiB with 4 KiB pages) per CPU.
const MAX_RING_PAGES_EXP: u8 = 16;

/// What to record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PerfConfig {
    /// Process names whose syscalls are recorded (`--comm`).
    pub comms: Vec<String>,
    /// Process ids whose threads' syscalls are recorded (`--pid`).
    pub pids: Vec<i32>,
    /// Each CPU's ring holds 2^`ring_pages_exp` pages (mlocked: for a non-root user
    /// it counts against `kernel.perf_event_mlock_kb`).
    pub ring_pages_exp: u8,
    /// Record the hypervisor's tracepoints too (`kvm:kvm_exit`, `kvm:kvm_entry`), as
    /// `--role host` does.
    pub host: bool,
}

impl Default for PerfConfig {
    /// No syscall targets; 2^10 pages (4 MiB) per CPU. On the 2-CPU lab machine,
    /// `stress-ng --switch 2` (≈ 700 k records/s) lost nothing with it in six runs,
    /// while 2^9 lost samples in two of six: a CPU fills 2 MiB in about 60 ms when the
    /// collector thread competes with the load for a CPU.
    fn default() -> Self {
        PerfConfig {
            comms: Vec::new(),
            pids: Vec::new(),
            ring_pages_exp: 10,
            host: false,
        }
    }
}

/// Why the collector could not start.
#[derive(Debug, thiserror::Error)]
pub enum PerfError {
    #[error(transparent)]
    Tracefs(#[from] TracefsError),
    #[error(
        "perf_event_open of {tracepoint} denied ({source}): run as root or grant \
         CAP_PERFMON (kernel.perf_event_paranoid = {paranoid})"
    )]
    Denied {
        tracepoint: Tracepoint,
        paranoid: String,
        source: io::Error,
    },
    #[error("{tracepoint} is required but cannot be recorded: {reason}")]
    Required {
        tracepoint: Tracepoint,
        reason: String,
    },
    #[error(
        "cannot map a {bytes}-byte perf ring for CPU {cpu} ({source}): use a smaller ring \
         (ring_pages_exp is {exp}), raise kernel.perf_event_mlock_kb, or run as root"
    )]
    Ring {
        cpu: u32,
        bytes: usize,
        exp: u8,
        source: io::Error,
    },
    #[error("ring_pages_exp {0} is too large: at most {MAX_RING_PAGES_EXP} (2^{MAX_RING_PAGES_EXP} pages per CPU)")]
    RingSize(u8),
    #[error(
        "the kernel rejected the syscall filter `{filter}` on {tracepoint} ({source}): {hint}"
    )]
    Filter {
        tracepoint: Tracepoint,
        filter: String,
        source: io::Error,
        hint: &'static str,
    },
    #[error(transparent)]
    BadComm(#[from] BadComm),
    #[error("--pid {pid}: no such process ({source})")]
    NoSuchPid { pid: i32, source: io::Error },
    #[error("cannot tell which CPUs are online from /sys/devices/system/cpu/online: {0}")]
    Cpus(String),
    #[error("polling the perf rings failed: {0}")]
    Poll(io::Error),
}

/// What became of one tracepoint at open time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TracepointState {
    Opened,
    /// Missing on this kernel, or laid out in a way vmlat cannot read: not recorded.
    Unsupported(String),
    /// Not asked for (syscalls without `--comm`/`--pid`).
    NotRequested,
}

/// What [`PerfCollector::open`] opened: the manifest's `recorded` section.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpenReport {
    pub tracepoints: Vec<(Tracepoint, TracepointState)>,
    pub cpus: Vec<u32>,
    pub ring_bytes_per_cpu: usize,
    /// The filter set on `raw_syscalls` at start (threads may be added later).
    pub syscall_filter: Option<String>,
}

impl OpenReport {
    /// `group:name` of every tracepoint recorded.
    pub fn opened(&self) -> Vec<String> {
        self.tracepoints
            .iter()
            .filter(|(_, s)| *s == TracepointState::Opened)
            .map(|(tp, _)| tp.to_string())
            .collect()
    }

    /// `group:name: reason` of every tracepoint that could not be recorded.
    pub fn unsupported(&self) -> Vec<String> {
        self.tracepoints
            .iter()
            .filter_map(|(tp, s)| match s {
                TracepointState::Unsupported(reason) => Some(format!("{tp}: {reason}")),
                _ => None,
            })
            .collect()
    }
}

/// What happened while recording, beyond the shared loss counters.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PerfSummary {
    pub samples: u64,
    /// Samples the kernel dropped (also added to `LossCounters::perf_lost`).
    pub lost: u64,
    /// Samples that did not decode (also added to `LossCounters::decode_errors`).
    pub decode_errors: u64,
    pub first_decode_error: Option<String>,
    /// Times the syscall filter was set again to follow the threads of `--pid`s.
    pub filter_updates: u64,
    /// Things that went wrong without stopping the recording.
    pub warnings: Vec<String>,
}

/// One CPU's ring and the counters writing into it.
struct Ring {
    cpu: u32,
    bytes: usize,
    sampler: Sampler,
    /// This CPU's `sched_switch` counter, which owns the ring.
    owner: Counter,
    /// The other tracepoints' counters of this CPU.
    counters: Vec<Counter>,
    /// `sys_enter`/`sys_exit` of this CPU, replaced when the traced threads change.
    syscall_counters: Vec<Counter>,
}

/// The open perf counters and rings; create and run it on the same thread.
pub struct PerfCollector {
    rings: Vec<Ring>,
    decoders: Decoders,
    targets: Option<SyscallTargets>,
    /// The syscall tracepoints opened, with their ids, to open them again.
    syscall_ids: Vec<(Tracepoint, u64)>,
    report: OpenReport,
}

impl PerfCollector {
    /// Opens every tracepoint on every online CPU and starts recording. Only
    /// `sched_switch` is required; any other tracepoint the kernel lacks is reported
    /// as unsupported in [`Self::report`].
    pub fn open(config: &PerfConfig) -> Result<Self, PerfError> {
        if config.ring_pages_exp > MAX_RING_PAGES_EXP {
            return Err(PerfError::RingSize(config.ring_pages_exp));
        }
        let tracefs = Tracefs::locate()?;
        let cpus = online_cpus()?;
        let targets = syscall_targets(config)?;
        let filter = targets.as_ref().map(SyscallTargets::filter);
        if let Some(filter) = filter.as_ref().filter(|f| !SyscallTargets::fits(f)) {
            return Err(PerfError::Filter {
                tracepoint: Tracepoint::SysEnter,
                filter: filter.clone(),
                source: io::Error::from(io::ErrorKind::InvalidInput),
                hint: "it is longer than the one page the kernel takes: name fewer processes",
            });
        }

        let (mut rings, decoder) = open_owners(&tracefs, &cpus, config.ring_pages_exp)?;
        let mut decoders = Decoders::new(decoder);
        let mut states = vec![(Tracepoint::SchedSwitch, TracepointState::Opened)];
        let mut syscall_ids = Vec::new();
        let filter_c = filter
            .as_deref()
            .map(CString::new)
            .transpose()
            .map_err(|e| PerfError::Filter {
                tracepoint: Tracepoint::SysEnter,
                filter: filter.clone().unwrap_or_default(),
                source: io::Error::other(e),
                hint: "it holds a NUL byte",
            })?;
        for tp in Tracepoint::ALL.into_iter().skip(1) {
            if tp.is_host_only() && !config.host {
                states.push((tp, TracepointState::NotRequested));
                continue;
            }
            let tp_filter = match (tp.is_syscall(), &filter_c) {
                (false, _) => None,
                (true, Some(f)) => Some(f.as_c_str()),
                (true, None) => {
                    states.push((tp, TracepointState::NotRequested));
                    continue;
                }
            };
            let state = match open_on_rings(&tracefs, tp, tp_filter, &mut rings) {
                Ok((id, decoder)) => match decoders.add(decoder) {
                    Ok(()) => {
                        if tp.is_syscall() {
                            syscall_ids.push((tp, id));
                        }
                        TracepointState::Opened
                    }
                    Err(reason) => {
                        for ring in &mut rings {
                            ring.detach_last(tp);
                        }
                        TracepointState::Unsupported(reason.into())
                    }
                },
                Err(Unsupported::Fatal(e)) => return Err(e),
                Err(Unsupported::Reason(reason)) => TracepointState::Unsupported(reason),
            };
            states.push((tp, state));
        }

        for counter in rings.iter().flat_map(Ring::all) {
            counter.enable().map_err(|e| PerfError::Required {
                tracepoint: Tracepoint::SchedSwitch,
                reason: format!("enabling a counter failed: {e}"),
            })?;
        }
        let report = OpenReport {
            tracepoints: states,
            ring_bytes_per_cpu: rings.first().map_or(0, |r| r.bytes),
            cpus,
            syscall_filter: filter,
        };
        Ok(PerfCollector {
            rings,
            decoders,
            targets,
            syscall_ids,
            report,
        })
    }

    pub fn report(&self) -> &OpenReport {
        &self.report
    }

    /// Drains the rings into `sink` every poll round until `stop` is set (or the
    /// writer goes away), then disables the counters and drains one last time.
    pub fn run(mut self, stop: &AtomicBool, sink: Sink) -> Result<PerfSummary, PerfError> {
        let mut summary = PerfSummary::default();
        let mut fds: Vec<libc::pollfd> = self
            .rings
            .iter()
            .map(|r| libc::pollfd {
                fd: r.owner.file().as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            })
            .collect();
        let mut watermark = 0;
        // Each round's batch is sized like the last one: growing it by doubling moved
        // every record again at each step.
        let mut capacity = 0;
        loop {
            let stopping = stop.load(Ordering::Relaxed);
            if stopping {
                self.disable(&mut summary);
            } else {
                poll(&mut fds)?;
            }
            let drain_start = monotonic_ns();
            let mut bound = drain_start.saturating_sub(SLACK_NS);
            let mut records = Vec::with_capacity(capacity);
            for ring in &self.rings {
                if let Some(partial) =
                    ring.drain(&self.decoders, &mut records, &mut summary, sink.losses())
                {
                    bound = bound.min(partial.saturating_sub(SLACK_NS));
                }
            }
            self.follow_threads(&records, &mut summary);
            capacity = records.len();
            watermark = watermark.max(bound);
            if !sink.send(records, watermark) || stopping {
                break;
            }
        }
        Ok(summary)
    }

    fn disable(&self, summary: &mut PerfSummary) {
        for counter in self.rings.iter().flat_map(Ring::all) {
            if let Err(e) = counter.disable() {
                summary
                    .warnings
                    .push(format!("disabling a counter failed: {e}"));
            }
        }
    }

    /// Filters the syscalls anew when a traced process gained or lost a thread. The
    /// kernel sets a perf event's filter only once (a second PERF_EVENT_IOC_SET_FILTER
    /// fails with EEXIST), so new `sys_enter`/`sys_exit` counters are opened with the
    /// new filter and enabled before the old ones are closed: a syscall made in the
    /// microseconds of the swap may be recorded twice, but none is missed.
    fn follow_threads(&mut self, records: &[Record], summary: &mut PerfSummary) {
        let Some(targets) = self.targets.as_mut().filter(|t| t.follows_threads()) else {
            return;
        };
        let mut changed = false;
        for record in records {
            changed |= targets.observe(record);
        }
        if !changed {
            return;
        }
        let filter = targets.filter();
        match self.refilter(&filter) {
            Ok(()) => summary.filter_updates += 1,
            Err(e) => summary.warnings.push(format!(
                "could not filter syscalls by `{filter}` ({e}): syscalls of threads created \
                 since are not recorded"
            )),
        }
    }

    fn refilter(&mut self, filter: &str) -> Result<(), String> {
        if !SyscallTargets::fits(filter) {
            return Err("longer than the one page the kernel takes".into());
        }
        let filter = CString::new(filter).map_err(|e| e.to_string())?;
        let mut fresh = Vec::with_capacity(self.rings.len());
        for ring in &self.rings {
            let counters = self
                .syscall_ids
                .iter()
                .map(|&(tp, id)| ring.attach(tp, id, Some(&filter)))
                .collect::<Result<Vec<_>, _>>()
                .map_err(Unsupported::into_message)?;
            fresh.push(counters);
        }
        for (ring, counters) in self.rings.iter_mut().zip(fresh) {
            for counter in &counters {
                counter.enable().map_err(|e| e.to_string())?;
            }
            for old in &ring.syscall_counters {
                // Closing (below) stops it too; disabling first just makes it prompt.
                let _ = old.disable();
            }
            ring.syscall_counters = counters;
        }
        Ok(())
    }
}

/// Why a tracepoint other than `sched_switch` was not opened.
enum Unsupported {
    Reason(String),
    Fatal(PerfError),
}

impl Unsupported {
    fn into_message(self) -> String {
        match self {
            Unsupported::Reason(reason) => reason,
            Unsupported::Fatal(e) => e.to_string(),
        }
    }
}

impl Ring {
    /// Every counter writing into this ring.
    fn all(&self) -> impl Iterator<Item = &Counter> {
        std::iter::once(&self.owner)
            .chain(&self.counters)
            .chain(&self.syscall_counters)
    }

    /// A new, disabled counter of `tp` (tracepoint `id`) on this ring's CPU, filtered
    /// by `filter`, writing into this ring.
    fn attach(
        &self,
        tp: Tracepoint,
        id: u64,
        filter: Option<&CStr>,
    ) -> Result<Counter, Unsupported> {
        let counter = open_counter(tp, id, self.cpu, self.bytes)?;
        if let Some(filter) = filter {
            counter.with_ftrace_filter(filter).map_err(|source| {
                Unsupported::Fatal(PerfError::Filter {
                    tracepoint: tp,
                    filter: filter.to_string_lossy().into_owned(),
                    source,
                    hint: "this kernel's ftrace filter may lack the `comm` field: use --pid",
                })
            })?;
        }
        redirect(&counter, &self.owner).map_err(|e| {
            Unsupported::Reason(format!("cannot share CPU {}'s ring: {e}", self.cpu))
        })?;
        Ok(counter)
    }

    fn attach_last(&mut self, tp: Tracepoint, counter: Counter) {
        if tp.is_syscall() {
            self.syscall_counters.push(counter);
        } else {
            self.counters.push(counter);
        }
    }

    /// Closes the counter of `tp` that [`Ring::attach_last`] added last.
    fn detach_last(&mut self, tp: Tracepoint) {
        if tp.is_syscall() {
            self.syscall_counters.pop();
        } else {
            self.counters.pop();
        }
    }

    /// Decodes this ring's records into `out`, at most one ring's worth of bytes so
    /// that a flooding CPU cannot starve the others or delay the batch. Returns the
    /// time of the last sample read when records were left behind (`Some(0)` if
    /// none was read), `None` when the ring was emptied.
    fn drain(
        &self,
        decoders: &Decoders,
        out: &mut Vec<Record>,
        summary: &mut PerfSummary,
        losses: &LossCounters,
    ) -> Option<u64> {
        // `iter()` is `None` only while another iterator of this sampler is alive,
        // which cannot be: each drain drops its own.
        let mut records = self.sampler.iter()?.into_cow();
        let mut budget = self.bytes;
        let mut last = 0;
        while let Some(raw) = records.lending_next() {
            let bytes = raw.as_raw().as_bytes();
            budget = budget.saturating_sub(bytes.len().max(1));
            if let Some(time) = take(bytes, self.cpu, decoders, out, summary, losses) {
                last = time;
            }
            if budget == 0 {
                return Some(last);
            }
        }
        None
    }
}

/// Decodes one record of CPU `cpu`'s ring into `out`, counting what the kernel lost
/// and what did not decode. Returns the time of a sample.
fn take(
    bytes: &[u8],
    cpu: u32,
    decoders: &Decoders,
    out: &mut Vec<Record>,
    summary: &mut PerfSummary,
    losses: &LossCounters,
) -> Option<u64> {
    let mut time = None;
    let decoded = sample::parse(bytes)
        .map_err(|e| field::PayloadError::Sample(bytes.len(), e))
        .and_then(|record| match record {
            RingRecord::Sample(s) => {
                time = Some(s.time);
                summary.samples += 1;
                decoders.decode(&s).map(Some)
            }
            RingRecord::Lost { lost } => {
                summary.lost += lost;
                LossCounters::add(&losses.perf_lost, lost);
                Ok(None)
            }
            RingRecord::Other { .. } => Ok(None),
        });
    match decoded {
        Ok(record) => out.extend(record),
        Err(e) => {
            summary.decode_errors += 1;
            LossCounters::add(&losses.decode_errors, 1);
            summary
                .first_decode_error
                .get_or_insert_with(|| format!("CPU {cpu}: {e}"));
        }
    }
    time
}

/// Opens `sched_switch` on every CPU and maps each CPU's ring on it.
fn open_owners(
    tracefs: &Tracefs,
    cpus: &[u32],
    exp: u8,
) -> Result<(Vec<Ring>, EventDecoder), PerfError> {
    let tp = Tracepoint::SchedSwitch;
    let required = |reason: String| PerfError::Required {
        tracepoint: tp,
        reason,
    };
    let format = tracefs
        .event_format(tp.group(), tp.name())
        .map_err(|e| required(e.to_string()))?;
    let decoder = EventDecoder::new(tp, &format).map_err(|e| required(e.to_string()))?;
    let pages = 1usize << exp;
    let bytes = pages * page_size();
    let mut rings = Vec::with_capacity(cpus.len());
    for &cpu in cpus {
        let counter = open_counter(tp, format.id, cpu, bytes).map_err(|e| match e {
            Unsupported::Fatal(e) => e,
            Unsupported::Reason(reason) => required(reason),
        })?;
        let sampler = counter.sampler(exp).map_err(|source| PerfError::Ring {
            cpu,
            bytes,
            exp,
            source,
        })?;
        rings.push(Ring {
            cpu,
            bytes,
            sampler,
            owner: counter,
            counters: Vec::new(),
            syscall_counters: Vec::new(),
        });
    }
    Ok((rings, decoder))
}

/// Opens `tp` on every ring's CPU, filtered by `filter`, writing into that ring, and
/// returns its id and decoder. On any failure nothing of `tp` stays open.
fn open_on_rings(
    tracefs: &Tracefs,
    tp: Tracepoint,
    filter: Option<&CStr>,
    rings: &mut [Ring],
) -> Result<(u64, EventDecoder), Unsupported> {
    let format = tracefs
        .event_format(tp.group(), tp.name())
        .map_err(|e| Unsupported::Reason(e.to_string()))?;
    let decoder = EventDecoder::new(tp, &format).map_err(|e| Unsupported::Reason(e.to_string()))?;
    let opened = rings
        .iter()
        .map(|ring| ring.attach(tp, format.id, filter))
        .collect::<Result<Vec<_>, _>>()?;
    for (ring, counter) in rings.iter_mut().zip(opened) {
        ring.attach_last(tp, counter);
    }
    Ok((format.id, decoder))
}

/// One disabled, sampling counter of tracepoint `id` on `cpu`, for every task, writing
/// into a ring of `ring_bytes`.
fn open_counter(
    tp: Tracepoint,
    id: u64,
    cpu: u32,
    ring_bytes: usize,
) -> Result<Counter, Unsupported> {
    Counter::new(
        PerfTracepoint { id },
        (Proc::ALL, Cpu(cpu)),
        sample::sample_opts(ring_bytes),
    )
    .map_err(|source| match source.raw_os_error() {
        Some(libc::EACCES) | Some(libc::EPERM) => Unsupported::Fatal(PerfError::Denied {
            tracepoint: tp,
            paranoid: fs::read_to_string("/proc/sys/kernel/perf_event_paranoid")
                .map_or_else(|e| format!("unreadable: {e}"), |s| s.trim().to_owned()),
            source,
        }),
        _ => Unsupported::Reason(format!("perf_event_open on CPU {cpu} failed: {source}")),
    })
}

/// Makes `counter` write its samples into `owner`'s ring (PERF_EVENT_IOC_SET_OUTPUT).
fn redirect(counter: &Counter, owner: &Counter) -> io::Result<()> {
    use rustix::ioctl::{ioctl, opcode, IntegerSetter, Opcode};
    const PERF_EVENT_IOC_SET_OUTPUT: Opcode = opcode::none(b'$', 5);
    let fd = usize::try_from(owner.file().as_raw_fd()).map_err(io::Error::other)?;
    // SAFETY: PERF_EVENT_IOC_SET_OUTPUT takes the target perf fd as its integer
    // argument; `owner` is open (borrowed) for the call, and the kernel takes its own
    // reference on the ring, so `owner` may be closed first later.
    unsafe {
        let request = IntegerSetter::<PERF_EVENT_IOC_SET_OUTPUT>::new_usize(fd);
        ioctl(counter.file(), request)?;
    }
    Ok(())
}

fn syscall_targets(config: &PerfConfig) -> Result<Option<SyscallTargets>, PerfError> {
    if config.comms.is_empty() && config.pids.is_empty() {
        return Ok(None);
    }
    let mut tids = Vec::new();
    for &pid in &config.pids {
        tids.extend(
            filter::threads_of(pid).map_err(|source| PerfError::NoSuchPid { pid, source })?,
        );
    }
    Ok(Some(SyscallTargets::new(
        &config.comms,
        &config.pids,
        tids,
    )?))
}

/// Waits until a ring passes its wakeup mark (see `sample::sample_opts`) or the timeout
/// expires.
fn poll(fds: &mut [libc::pollfd]) -> Result<(), PerfError> {
    // SAFETY: `fds` is a valid, exclusively borrowed array of `fds.len()` pollfds.
    let rc = unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, POLL_TIMEOUT_MS) };
    if rc < 0 {
        let e = io::Error::last_os_error();
        if e.kind() != io::ErrorKind::Interrupted {
            return Err(PerfError::Poll(e));
        }
    }
    Ok(())
}

fn page_size() -> usize {
    procfs::page_size() as usize
}

fn online_cpus() -> Result<Vec<u32>, PerfError> {
    let text = fs::read_to_string("/sys/devices/system/cpu/online")
        .map_err(|e| PerfError::Cpus(e.to_string()))?;
    parse_cpu_list(&text).ok_or_else(|| PerfError::Cpus(format!("unexpected contents {text:?}")))
}

/// Parses a kernel CPU list (`0-3,5,7-8`).
fn parse_cpu_list(text: &str) -> Option<Vec<u32>> {
    let mut cpus = Vec::new();
    for part in text.trim().split(',') {
        let (first, last): (u32, u32) = match part.split_once('-') {
            Some((a, b)) => (a.parse().ok()?, b.parse().ok()?),
            None => {
                let cpu = part.parse().ok()?;
                (cpu, cpu)
            }
        };
        if first > last {
            return None;
        }
        cpus.extend(first..=last);
    }
    Some(cpus)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_lists() {
        assert_eq!(parse_cpu_list("0-1\n"), Some(vec![0, 1]));
        assert_eq!(parse_cpu_list("0,2-3,7"), Some(vec![0, 2, 3, 7]));
        assert_eq!(parse_cpu_list("3-1"), None);
        assert_eq!(parse_cpu_list(""), None);
        assert_eq!(parse_cpu_list("a"), None);
    }

    #[test]
    fn a_kernel_without_syscall_tracepoints_has_exit_group_unsupported_not_fatal() {
        // No CONFIG_FTRACE_SYSCALLS: tracefs has no `events/syscalls` at all.
        let dir = tempfile::tempdir().unwrap();
        fs::create_dir_all(dir.path().join("events/sched/sched_switch")).unwrap();
        let tracefs = Tracefs::at(dir.path());
        let opened = open_on_rings(&tracefs, Tracepoint::SysEnterExitGroup, None, &mut []);
        let Err(Unsupported::Reason(reason)) = opened else {
            panic!("a missing sys_enter_exit_group must be a reason, not a failure");
        };
        assert!(
            reason.contains("syscalls:sys_enter_exit_group does not exist on this kernel"),
            "{reason}"
        );
        assert!(
            !Tracepoint::SysEnterExitGroup.is_syscall(),
            "never filtered"
        );
    }

    #[test]
    fn report_lists_opened_and_unsupported() {
        let report = OpenReport {
            tracepoints: vec![
                (Tracepoint::SchedSwitch, TracepointState::Opened),
                (Tracepoint::SysEnter, TracepointState::NotRequested),
                (
                    Tracepoint::BlockRqIssue,
                    TracepointState::Unsupported("missing".into()),
                ),
            ],
            cpus: vec![0],
            ring_bytes_per_cpu: 4096,
            syscall_filter: None,
        };
        assert_eq!(report.opened(), ["sched:sched_switch"]);
        assert_eq!(report.unsupported(), ["block:block_rq_issue: missing"]);
    }
}

//! `vmlat record`: starts every collector, streams their records into a bundle, and
//! stops cleanly on `--duration`, SIGINT/SIGTERM, or the first fatal error.
//!
//! The collectors themselves start and stop as one [`Collectors`], which `vmlat watch`
//! (the watch crate) starts too, with its own packet sink and its own consumer of the
//! queue: the same collectors, another destination.
//!
//! Threads: one per capture point, one for perf, one sampler, one writer. Collectors
//! hand batches to the writer over one bounded channel ([`crate::pipeline`]); the
//! writer merges them in time order ([`crate::sorter`]) and flushes the bundle at least
//! once a second, with the loss counters, so that a recorder killed with SIGKILL leaves
//! a bundle readable up to its last second.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::{bounded, Receiver, RecvTimeoutError};
use vmlat_bundle::{
    BundleError, CaptureInfo, EventWriter, Manifest, Record, RecordedSet, Role, Status,
    EVENTS_FILE, FORMAT_VERSION, MANIFEST_FILE, PCAP_DIR,
};

use crate::capture::{self, CaptureError, CapturePoint, PacketSink, PcapFile};
use crate::clock::anchor;
use crate::journal;
use crate::perf::{PerfCollector, PerfConfig, PerfError};
use crate::pipeline::{Batch, LossCounters, Sink};
use crate::privileges::{DropTo, PrivilegeError};
use crate::qemu;
use crate::sampler::{self, SamplerConfig};
use crate::sorter::Sorter;
use crate::sysinfo;
use crate::tracefs::Tracefs;

/// Everything `vmlat record` was asked to do.
#[derive(Debug, Clone)]
pub struct RecordConfig {
    pub output: PathBuf,
    pub force: bool,
    /// What is recorded: the collectors' part, which `vmlat watch` shares.
    pub collect: CollectorConfig,
    pub duration: Option<Duration>,
    pub command_line: Vec<String>,
    /// `--user`: who to become once every descriptor is open. The whole process
    /// becomes that user: only for a process that records and nothing else.
    pub user: Option<String>,
}

/// Why a recording could not start, or stopped early.
#[derive(Debug, thiserror::Error)]
pub enum RecordError {
    #[error("{path} already exists: choose another -o, or pass --force to replace it")]
    OutputExists { path: PathBuf },
    #[error("{path} exists and is not a vmlat bundle; refusing to replace it even with --force")]
    OutputNotABundle { path: PathBuf },
    #[error("cannot write the bundle to {path}: {source} (check the path and its permissions, or choose another -o)")]
    OutputUnwritable {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("recording needs root, or the capabilities {missing} (e.g. `setcap cap_perfmon,cap_net_raw,cap_sys_admin+ep $(command -v vmlat)`)")]
    NotPrivileged { missing: String },
    #[error(transparent)]
    Privileges(#[from] PrivilegeError),
    #[error(transparent)]
    Perf(#[from] PerfError),
    #[error(transparent)]
    Capture(#[from] CaptureError),
    #[error(transparent)]
    Bundle(#[from] BundleError),
    #[error(
        "a collector thread died unexpectedly ({0}); the bundle is readable up to its last flush"
    )]
    CollectorDied(String),
}

/// What a finished recording wrote.
#[derive(Debug, Clone)]
pub struct RecordSummary {
    pub manifest: Manifest,
    pub records: u64,
    pub bytes: u64,
}

/// Progress of a recording, reported about once a second.
#[derive(Debug, Clone, Default)]
pub struct Progress {
    pub elapsed: Duration,
    pub records: u64,
    pub bytes: u64,
    pub losses: u64,
}

/// A collector thread and what it leaves when it ends.
type CollectorThread = (String, JoinHandle<Result<Finished, RecordError>>);

/// What a collector leaves when it ends, for the manifest.
enum Finished {
    /// A capture's final description (its packet count).
    Capture(CaptureInfo),
    /// What went wrong without stopping it (may be none).
    Warnings(Vec<String>),
}

/// How often the writer flushes and records the loss counters.
const FLUSH_EVERY: Duration = Duration::from_secs(1);
/// Batches in flight between collectors and the writer; what bounds the queue's memory
/// is the records they hold (`CollectorConfig::queue_records`).
const QUEUE_BATCHES: usize = 4096;
/// Records held for reordering before the oldest are released regardless: about a
/// second of the heaviest load measured (BENCHMARKS.md), where normally only the
/// ~60 ms behind the slowest collector wait.
pub const MAX_PENDING: usize = 500_000;

/// What the collectors record, wherever it goes: the part of `vmlat record`'s
/// configuration that `vmlat watch` shares.
#[derive(Debug, Clone)]
pub struct CollectorConfig {
    pub captures: Vec<CapturePoint>,
    pub comms: Vec<String>,
    pub pids: Vec<i32>,
    pub role: Role,
    pub heartbeat_ports: Vec<u16>,
    pub disk_interval: Duration,
    /// Send clock probes into the captures of guests' taps (`--clock-probes`).
    pub clock_probes: bool,
    /// Each CPU's perf ring: 2^`perf_ring_pages_exp` pages (`--perf-ring-kib`).
    pub perf_ring_pages_exp: u8,
    /// Records the queue to the consumer holds at most (`--queue-records`): while the
    /// disk is slow, what does not fit is dropped and counted (queue_dropped).
    pub queue_records: usize,
}

/// The running collectors (perf, one capture per point, the sampler), each on its own
/// thread: their records come over [`Collectors::queue`] as batches, their packets go
/// into the packet sinks they were started with.
pub struct Collectors {
    threads: Vec<CollectorThread>,
    stop: Arc<AtomicBool>,
    /// The batches of perf and the sampler, for a [`Sorter`] of [`Collectors::sources`].
    pub queue: Receiver<Batch>,
    pub sources: usize,
    pub losses: Arc<LossCounters>,
    /// What is recorded, for the manifest: the captures, tracepoints, what is
    /// unsupported, the VMs found.
    pub recorded: RecordedSet,
}

impl Collectors {
    /// Opens every collector and starts it on its own thread, each capture feeding the
    /// sink `packets` makes for it (on the capture's thread, once it is open). Returns
    /// once all are open, or with the first that could not open (the others stopped).
    pub fn start<S: PacketSink>(
        config: &CollectorConfig,
        packets: impl Fn(&CaptureInfo) -> Result<S, CaptureError> + Send + Sync + 'static,
    ) -> Result<Collectors, RecordError> {
        let vms = if config.role == Role::Host || config.captures.iter().any(|c| c.guest.is_some())
        {
            qemu::find_vms()
        } else {
            Vec::new()
        };
        let mut captures = config.captures.clone();
        for point in &mut captures {
            point.resolve_tap(&vms)?;
        }
        let filter = capture::heartbeat_filter(&config.heartbeat_ports);
        let mut recorded = RecordedSet {
            comms: config.comms.clone(),
            pids: config.pids.clone(),
            heartbeat_ports: config.heartbeat_ports.clone(),
            disk_interval_ms: config.disk_interval.as_millis() as u64,
            vms: vms.clone(),
            ..RecordedSet::default()
        };
        let losses = Arc::new(LossCounters::default());
        let (tx, rx) = bounded::<Batch>(QUEUE_BATCHES);
        let mut collectors = Collectors {
            threads: Vec::new(),
            stop: Arc::new(AtomicBool::new(false)),
            queue: rx,
            sources: 0,
            losses: Arc::clone(&losses),
            recorded: RecordedSet::default(),
        };
        let queued = Arc::new(AtomicUsize::new(0));
        let next_sink = |sources: &mut usize| {
            *sources += 1;
            Sink::new(
                *sources - 1,
                tx.clone(),
                Arc::clone(&losses),
                Arc::clone(&queued),
                config.queue_records,
            )
        };

        // Collectors open on their own threads (perf rings are tied to their thread, and
        // a capture enters its namespace), and report back before the recording counts
        // as started, so that a bad interface fails the command instead of a thread.
        let perf_config = PerfConfig {
            comms: config.comms.clone(),
            pids: config.pids.clone(),
            ring_pages_exp: config.perf_ring_pages_exp,
            host: config.role == Role::Host,
        };
        let perf_sink = next_sink(&mut collectors.sources);
        let perf_stop = Arc::clone(&collectors.stop);
        let (thread, ready) = start_collector(
            "vmlat-perf",
            move || {
                let collector = PerfCollector::open(&perf_config)?;
                Ok((collector.report().clone(), collector))
            },
            move |collector| {
                let summary = collector.run(&perf_stop, perf_sink)?;
                let mut warnings = summary.warnings;
                if let Some(first) = summary.first_decode_error {
                    warnings.push(format!(
                        "{} perf records did not decode (counted in decode_errors), the first: {first}",
                        summary.decode_errors
                    ));
                }
                Ok(Finished::Warnings(warnings))
            },
        );
        collectors.threads.push(thread);
        let perf_report = match ready {
            Ok(report) => report,
            Err(e) => return Err(collectors.abandon(e)),
        };
        recorded.tracepoints = perf_report.opened();
        recorded.unsupported = perf_report.unsupported();
        if config.role == Role::Host && !Path::new(qemu::KVM_DEBUGFS).is_dir() {
            recorded.unsupported.push(format!(
                "KVM TSC offsets: no {} (no KVM on this host, or debugfs not mounted: mount -t debugfs none /sys/kernel/debug)",
                qemu::KVM_DEBUGFS
            ));
        }
        recorded.syscall_filter = perf_report.syscall_filter.clone();

        let packets = Arc::new(packets);
        for point in &captures {
            let stop = Arc::clone(&collectors.stop);
            let losses = Arc::clone(&losses);
            let (point, filter, packets) = (point.clone(), filter.clone(), Arc::clone(&packets));
            // Probes go into guests' taps only: `tap:GUEST`, or an interface a VM holds.
            let probes = config.clock_probes
                && (point.guest.is_some()
                    || vms
                        .iter()
                        .any(|v| v.taps.iter().any(|t| t.ifname == point.interface)));
            let (thread, ready) = start_collector(
                "vmlat-pcap",
                move || {
                    let open = capture::open(&point, &filter, probes)?;
                    let sink = packets(open.info())?;
                    Ok((open.info().clone(), (open, sink)))
                },
                move |(open, mut sink)| Ok(Finished::Capture(open.run(&mut sink, &stop, &losses)?)),
            );
            collectors.threads.push(thread);
            match ready {
                Ok(info) => recorded.captures.push(info),
                Err(e) => return Err(collectors.abandon(e)),
            }
        }

        let sampler_config = SamplerConfig {
            interval: config.disk_interval,
            comms: config.comms.clone(),
            pids: config.pids.clone(),
            host: config.role == Role::Host,
        };
        let sampler_sink = next_sink(&mut collectors.sources);
        let sampler_stop = Arc::clone(&collectors.stop);
        collectors.threads.push((
            "vmlat-sampler".into(),
            spawn("vmlat-sampler", move || {
                sampler::run(&sampler_config, &sampler_stop, &sampler_sink);
                Ok(Finished::Warnings(Vec::new()))
            }),
        ));
        collectors.recorded = recorded;
        Ok(collectors)
    }

    /// Whether a collector thread ended (on an error: they run until stopped).
    pub fn any_finished(&self) -> bool {
        self.threads.iter().any(|(_, t)| t.is_finished())
    }

    /// Stops every collector and waits for them; their sinks are gone once this
    /// returns, so that the queue's consumer drains and ends. The captures' final
    /// descriptions and the collectors' warnings go into [`Collectors::recorded`];
    /// returns the first error.
    pub fn stop(&mut self) -> Option<RecordError> {
        self.stop.store(true, Ordering::Relaxed);
        let mut first_error = None;
        for (name, thread) in self.threads.drain(..) {
            match thread.join() {
                Ok(Ok(Finished::Capture(info))) => {
                    if let Some(c) = self
                        .recorded
                        .captures
                        .iter_mut()
                        .find(|c| c.name == info.name)
                    {
                        *c = info;
                    }
                }
                Ok(Ok(Finished::Warnings(w))) => self.recorded.warnings.extend(w),
                Ok(Err(e)) => {
                    first_error.get_or_insert(e);
                }
                Err(_) => {
                    first_error.get_or_insert(RecordError::CollectorDied(name));
                }
            }
        }
        first_error
    }

    /// Stops the collectors already started after a failed start.
    fn abandon(mut self, error: RecordError) -> RecordError {
        self.stop();
        error
    }
}

/// Records until the duration ends, `stop` is set (by a signal handler), or a collector
/// fails. A failure after start still leaves a readable bundle and is returned as the
/// error, after the manifest says so.
pub fn record(
    config: &RecordConfig,
    stop: Arc<AtomicBool>,
    mut progress: impl FnMut(&Progress),
) -> Result<RecordSummary, RecordError> {
    check_privileges(&config.collect.captures)?;
    let drop_to = config.user.as_deref().map(DropTo::resolve).transpose()?;
    // Before anything is created: a missing tracefs is mounted or explained here.
    Tracefs::locate().map_err(PerfError::from)?;
    prepare_output(&config.output, config.force)?;

    let start_anchor = anchor();
    let mut manifest = Manifest {
        format_version: FORMAT_VERSION,
        vmlat_version: env!("CARGO_PKG_VERSION").to_string(),
        hostname: sysinfo::hostname(),
        role: config.collect.role,
        kernel: sysinfo::kernel_release(),
        arch: std::env::consts::ARCH.to_string(),
        cpus: sysinfo::online_cpus(),
        boot_id: sysinfo::boot_id(),
        command_line: config.command_line.clone(),
        started_realtime_ns: start_anchor.realtime_ns,
        started_monotonic_ns: start_anchor.monotonic_ns,
        stopped_realtime_ns: None,
        stopped_monotonic_ns: None,
        status: Status::Recording,
        recorded: RecordedSet::default(),
        losses: Default::default(),
    };
    manifest.store(&config.output)?;

    let dir = config.output.clone();
    let mut collectors = match Collectors::start(&config.collect, move |info| {
        PcapFile::create(&dir.join(&info.file), info.linktype)
    }) {
        Ok(c) => c,
        Err(e) => return Err(abandon(config, e)),
    };
    manifest.recorded = RecordedSet {
        user: drop_to
            .as_ref()
            .map(|d| format!("{} (uid {}, gid {})", d.name, d.uid, d.gid)),
        ..collectors.recorded.clone()
    };
    manifest.store(&config.output)?;

    let losses = Arc::clone(&collectors.losses);
    let writer = Writer::create(
        &config.output,
        collectors.sources,
        Arc::clone(&losses),
        manifest.clone(),
    )?;
    let writer_stop = Arc::clone(&stop);
    let (progress_tx, progress_rx) = bounded::<Progress>(4);
    let queue = collectors.queue.clone();
    let writer_thread = spawn("vmlat-writer", move || {
        writer.run(queue, &writer_stop, progress_tx)
    });

    // Every descriptor is open: root is no longer needed.
    let mut first_error = match &drop_to {
        Some(d) => d
            .drop_privileges(&config.output)
            .err()
            .map(RecordError::from),
        None => None,
    };

    // The main thread waits for the end and relays progress.
    let started = Instant::now();
    while first_error.is_none() {
        if stop.load(Ordering::Relaxed) || config.duration.is_some_and(|d| started.elapsed() >= d) {
            break;
        }
        if collectors.any_finished() || writer_thread.is_finished() {
            break;
        }
        match progress_rx.recv_timeout(Duration::from_millis(50)) {
            Ok(mut p) => {
                p.elapsed = started.elapsed();
                progress(&p);
            }
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => break,
        }
    }

    if let Some(e) = collectors.stop() {
        first_error.get_or_insert(e);
    }
    manifest.recorded.captures = collectors.recorded.captures.clone();
    manifest.recorded.warnings = collectors.recorded.warnings.clone();
    drop(collectors);
    // Every sink is gone now: the writer drains, flushes and returns.
    let written = writer_thread
        .join()
        .unwrap_or_else(|_| Err(RecordError::CollectorDied("writer".into())));
    let (records, bytes) = match written {
        Ok(counts) => counts,
        Err(e) => {
            first_error.get_or_insert(e);
            (0, 0)
        }
    };

    let end = anchor();
    manifest.stopped_realtime_ns = Some(end.realtime_ns);
    manifest.stopped_monotonic_ns = Some(end.monotonic_ns);
    manifest.losses = losses.snapshot();
    if config.collect.role == Role::Host {
        // VMs started during the recording are listed as found at stop (after --user,
        // without the taps that only root can read).
        for vm in qemu::find_vms() {
            if !manifest.recorded.vms.iter().any(|v| v.pid == vm.pid) {
                manifest.recorded.vms.push(vm);
            }
        }
    }
    manifest.recorded.keepalived_journal = journal::copy_keepalived_journal(
        &config.output,
        manifest.started_realtime_ns,
        end.realtime_ns,
    );
    manifest.status = match &first_error {
        None => Status::Complete,
        Some(e) => Status::Failed {
            error: e.to_string(),
        },
    };
    let stored = manifest.store(&config.output);
    if let Some(e) = first_error {
        return Err(e);
    }
    stored?;
    Ok(RecordSummary {
        manifest,
        records,
        bytes,
    })
}

/// Starts a collector on its own thread: `open` runs there (perf rings belong to their
/// thread, a capture enters its namespace), and its description comes back before this
/// returns, so that a collector that cannot open fails the command, not a thread.
/// Then `run` goes on with what `open` made.
fn start_collector<D: Send + 'static, C>(
    name: &str,
    open: impl FnOnce() -> Result<(D, C), RecordError> + Send + 'static,
    run: impl FnOnce(C) -> Result<Finished, RecordError> + Send + 'static,
) -> (CollectorThread, Result<D, RecordError>) {
    let (ready_tx, ready_rx) = bounded(1);
    let handle = spawn(name, move || match open() {
        Ok((description, collector)) => {
            let _ = ready_tx.send(Ok(description));
            run(collector)
        }
        Err(e) => {
            let _ = ready_tx.send(Err(e));
            Ok(Finished::Warnings(Vec::new()))
        }
    });
    let ready = ready_rx
        .recv()
        .unwrap_or_else(|_| Err(RecordError::CollectorDied(name.into())));
    ((name.to_string(), handle), ready)
}

fn spawn<T: Send + 'static>(name: &str, f: impl FnOnce() -> T + Send + 'static) -> JoinHandle<T> {
    std::thread::Builder::new()
        .name(name.into())
        .spawn(f)
        .expect("spawning a thread")
}

/// Removes the bundle directory this run created after a failed start: nothing was
/// recorded, and a half-made bundle would only make the next attempt need --force.
fn abandon(config: &RecordConfig, error: RecordError) -> RecordError {
    let _ = std::fs::remove_dir_all(&config.output);
    error
}

/// Creates the output directory, replacing an earlier bundle only with `--force`.
fn prepare_output(dir: &Path, force: bool) -> Result<(), RecordError> {
    if dir.exists() {
        if !force {
            return Err(RecordError::OutputExists {
                path: dir.to_path_buf(),
            });
        }
        let is_bundle = dir.join(MANIFEST_FILE).exists()
            || dir
                .read_dir()
                .map(|mut d| d.next().is_none())
                .unwrap_or(false);
        if !is_bundle {
            return Err(RecordError::OutputNotABundle {
                path: dir.to_path_buf(),
            });
        }
        std::fs::remove_dir_all(dir).map_err(|source| RecordError::OutputUnwritable {
            path: dir.to_path_buf(),
            source,
        })?;
    }
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(vmlat_bundle::BUNDLE_DIR_MODE)
        .create(dir.join(PCAP_DIR))
        .map_err(|source| RecordError::OutputUnwritable {
            path: dir.to_path_buf(),
            source,
        })
}

/// Root, or the capabilities recording (and watching) needs: perf system-wide (CAP_PERFMON or
/// CAP_SYS_ADMIN), raw sockets for libpcap when it captures, and CAP_SYS_ADMIN to enter
/// the network namespace of an `IFACE@NETNS` capture.
pub fn check_privileges(captures: &[CapturePoint]) -> Result<(), RecordError> {
    const CAP_NET_RAW: u32 = 13;
    const CAP_SYS_ADMIN: u32 = 21;
    const CAP_PERFMON: u32 = 38;
    let effective = sysinfo::effective_capabilities();
    let has = |cap: u32| effective & (1u64 << cap) != 0;
    let mut missing = Vec::new();
    if !has(CAP_PERFMON) && !has(CAP_SYS_ADMIN) {
        missing.push("CAP_PERFMON");
    }
    if !captures.is_empty() && !has(CAP_NET_RAW) {
        missing.push("CAP_NET_RAW");
    }
    if captures.iter().any(|c| c.netns.is_some()) && !has(CAP_SYS_ADMIN) {
        missing.push("CAP_SYS_ADMIN (for IFACE@NETNS)");
    }
    if missing.is_empty() {
        Ok(())
    } else {
        Err(RecordError::NotPrivileged {
            missing: missing.join(" and "),
        })
    }
}

/// The single consumer of the collectors' queue.
struct Writer {
    events: EventWriter,
    sorter: Sorter<Record>,
    losses: Arc<LossCounters>,
    manifest: Manifest,
    dir: PathBuf,
}

impl Writer {
    fn create(
        dir: &Path,
        sources: usize,
        losses: Arc<LossCounters>,
        manifest: Manifest,
    ) -> Result<Self, RecordError> {
        Ok(Writer {
            events: EventWriter::create(&dir.join(EVENTS_FILE))?,
            sorter: Sorter::new(sources, MAX_PENDING),
            losses,
            manifest,
            dir: dir.to_path_buf(),
        })
    }

    /// Runs until every sink is dropped; on a write error (a full disk) sets `stop`
    /// so that the whole recording ends, and returns the error.
    fn run(
        mut self,
        rx: Receiver<Batch>,
        stop: &AtomicBool,
        progress: crossbeam_channel::Sender<Progress>,
    ) -> Result<(u64, u64), RecordError> {
        let result = self.consume(&rx, &progress);
        if result.is_err() {
            stop.store(true, Ordering::Relaxed);
            // Keep draining so that collectors never see a full queue and all stop.
            while rx.recv().is_ok() {}
        }
        result?;
        Ok((self.events.records_written(), self.events.bytes_written()))
    }

    fn consume(
        &mut self,
        rx: &Receiver<Batch>,
        progress: &crossbeam_channel::Sender<Progress>,
    ) -> Result<(), RecordError> {
        let mut last_flush = Instant::now();
        loop {
            match rx.recv_timeout(Duration::from_millis(100)) {
                Ok(batch) => self
                    .sorter
                    .push(batch.source, batch.records, batch.watermark),
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => break,
            }
            // Release as soon as the watermarks allow, so that only the few tens of
            // milliseconds behind the slowest collector wait in memory.
            write_released(&mut self.events, |emit| self.sorter.release(emit))?;
            if last_flush.elapsed() >= FLUSH_EVERY {
                last_flush = Instant::now();
                self.flush()?;
                let _ = progress.try_send(Progress {
                    elapsed: Duration::ZERO,
                    records: self.events.records_written(),
                    bytes: self.events.bytes_written(),
                    losses: self.losses.snapshot().total(),
                });
            }
        }
        write_released(&mut self.events, |emit| self.sorter.drain(emit))?;
        self.write_losses(self.sorter.released_up_to())?;
        self.events.sync()?;
        Ok(())
    }

    /// Writes the loss counters and everything released so far, and the manifest.
    fn flush(&mut self) -> Result<(), RecordError> {
        self.write_losses(self.sorter.released_up_to())?;
        self.events.flush()?;
        // The manifest carries the counters too, for readers that look only there.
        self.manifest.losses = self.losses.snapshot();
        self.manifest.store(&self.dir)?;
        Ok(())
    }

    /// Appends the loss counters, stamped `t`: the time up to which the stream is
    /// complete, so that the record keeps the stream in order.
    fn write_losses(&mut self, t: u64) -> Result<(), RecordError> {
        self.losses
            .late_records
            .store(self.sorter.late(), Ordering::Relaxed);
        self.events.append(&Record::Losses {
            t,
            losses: self.losses.snapshot(),
        })?;
        Ok(())
    }
}

/// Appends every record `release` hands out, in order, keeping the first write error.
pub(crate) fn write_released(
    events: &mut EventWriter,
    release: impl FnOnce(&mut dyn FnMut(Record)),
) -> Result<(), BundleError> {
    let mut written = Ok(());
    release(&mut |record| {
        if written.is_ok() {
            written = events.append(&record);
        }
    });
    written
}

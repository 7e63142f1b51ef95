//! `vmlat watch`: an always-on flight recorder that writes a bundle only when a flap
//! happens, and explains it on the spot.
//!
//! The recorder's own collectors ([`Collectors`]: libpcap, perf, the /proc sampler)
//! feed a bounded in-memory [`window`] of the last `--before` seconds instead of a
//! bundle. Every captured heartbeat also goes to the analyzer's stream tracker (the one
//! `vmlat analyze` uses), ticked ten times a second, whose live events open incidents
//! ([`detect`]). An incident over, the window is written as a normal bundle into
//! `DIR/<UTC time>-vrid<N>/` ([`spill`]); a reporter thread analyzes it, writes the
//! analysis and HTML report next to it, prints one line on stderr and runs the
//! `--on-incident` command ([`report`]), then keeps DIR within `--max-disk` ([`disk`]).
//! With `--metrics`, the streams, incidents, losses and the process's own cost are
//! served to Prometheus ([`metrics`]).
//!
//! Data flows one way: collectors → window → bundle → analyzer → reports.

pub mod detect;
pub mod disk;
pub mod metrics;
pub mod report;
pub mod spill;
pub mod window;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crossbeam_channel::{bounded, select, Sender, TrySendError};
use vmlat_analyzer::decode::{self, LinkType};
use vmlat_analyzer::{
    AnalyzeOptions, CaptureId, GroupKey, Heartbeat, StreamEvent, Timestamp, Tracker,
};
use vmlat_bundle::{Manifest, RecordedSet, Status, BUNDLE_DIR_MODE, FORMAT_VERSION};
use vmlat_tracer::capture::{CaptureError, PacketSink};
use vmlat_tracer::clock::anchor;
use vmlat_tracer::perf::PerfError;
use vmlat_tracer::pipeline::LossCounters;
use vmlat_tracer::recorder::{
    check_privileges, CollectorConfig, Collectors, RecordError, MAX_PENDING,
};
use vmlat_tracer::sorter::Sorter;
use vmlat_tracer::sysinfo;
use vmlat_tracer::tracefs::Tracefs;

use detect::{Detector, Incident};
use metrics::{Metrics, MetricsServer, StreamLabels};
use window::{Hold, Packet, Window};

/// Everything `vmlat watch` was asked to do.
#[derive(Debug, Clone)]
pub struct WatchConfig {
    /// DIR: where incidents are written.
    pub output: PathBuf,
    pub collectors: CollectorConfig,
    /// How much is kept before an incident (`--before`).
    pub before: Duration,
    /// How long recording goes on after an incident's last event (`--after`).
    pub after: Duration,
    /// The window's byte budget (`--max-memory`).
    pub max_memory_bytes: usize,
    /// `--max-disk`: the incident directories' total size.
    pub max_disk_bytes: Option<u64>,
    /// `--on-incident`: a command run with `sh -c`.
    pub on_incident: Option<String>,
    /// `--metrics`: where `/metrics` is served.
    pub metrics: Option<SocketAddr>,
    /// The gap factor and heartbeat ports, as `vmlat analyze` takes them.
    pub analyze: AnalyzeOptions,
    pub command_line: Vec<String>,
}

/// The signals a watch obeys, as flags set by their handlers.
#[derive(Debug, Clone, Default)]
pub struct Signals {
    /// SIGTERM/SIGINT: write an open incident, stop.
    pub stop: Arc<AtomicBool>,
    /// SIGHUP: DIR is looked up again (created anew if it was moved away).
    pub reopen: Arc<AtomicBool>,
}

/// Why a watch could not start, or stopped.
#[derive(Debug, thiserror::Error)]
pub enum WatchError {
    #[error(transparent)]
    Record(#[from] RecordError),
    #[error("cannot create {path}: {source} (check -o and its permissions)")]
    Output {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("capture point {0} has a link type vmlat cannot decode (DLT {1})")]
    LinkType(String, i32),
    #[error(
        "cannot serve --metrics on {addr}: {source} (is the port in use? choose another ADDR:PORT)"
    )]
    Metrics {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
}

/// What a watch did, at its end.
#[derive(Debug, Clone, Default)]
pub struct WatchSummary {
    pub incidents: u64,
    pub losses: vmlat_bundle::Losses,
}

/// How often the tracker is told the time, the window moves and incidents are checked.
const TICK: Duration = Duration::from_millis(100);
/// Incidents written and waiting for their analysis.
const REPORT_QUEUE: usize = 16;
/// Packets in flight from the capture threads to the watch.
const PACKET_QUEUE: usize = 65_536;

/// A capture's packets, sent to the watch's window and tracker.
struct ToWindow {
    capture: usize,
    tx: Sender<(usize, Packet)>,
    dropped: Arc<AtomicU64>,
}

impl PacketSink for ToWindow {
    fn packet(
        &mut self,
        timestamp: Duration,
        wire_len: u32,
        data: &[u8],
    ) -> Result<(), CaptureError> {
        let packet = Packet {
            timestamp,
            wire_len,
            data: data.to_vec(),
        };
        match self.tx.try_send((self.capture, packet)) {
            Ok(()) | Err(TrySendError::Disconnected(_)) => {}
            Err(TrySendError::Full(_)) => {
                self.dropped.fetch_add(1, Ordering::Relaxed);
            }
        }
        Ok(())
    }

    fn flush(&mut self) -> Result<(), CaptureError> {
        Ok(())
    }
}

/// Watches until `signals.stop`, or a collector fails.
pub fn watch(config: &WatchConfig, signals: &Signals) -> Result<WatchSummary, WatchError> {
    check_privileges(&config.collectors.captures)?;
    Tracefs::locate().map_err(|e| RecordError::Perf(PerfError::from(e)))?;
    create_output(&config.output)?;
    let metrics = Metrics::new();
    let server = config
        .metrics
        .map(|addr| {
            MetricsServer::start(addr, metrics.clone())
                .map_err(|source| WatchError::Metrics { addr, source })
        })
        .transpose()?;

    let names: Vec<String> = config
        .collectors
        .captures
        .iter()
        .map(|c| c.name())
        .collect();
    let (packet_tx, packet_rx) = bounded::<(usize, Packet)>(PACKET_QUEUE);
    let packets_dropped = Arc::new(AtomicU64::new(0));
    let sink_names = names.clone();
    let sink_dropped = Arc::clone(&packets_dropped);
    let mut collectors = Collectors::start(&config.collectors, move |info| {
        Ok(ToWindow {
            capture: sink_names.iter().position(|n| *n == info.name).unwrap_or(0),
            tx: packet_tx.clone(),
            dropped: Arc::clone(&sink_dropped),
        })
    })?;
    let losses = Arc::clone(&collectors.losses);
    let manifest = manifest(config, collectors.recorded.clone());
    let mut link_types = Vec::new();
    for info in &collectors.recorded.captures {
        match LinkType::from_dlt(info.linktype as u32) {
            Some(link) => link_types.push(link),
            None => {
                let error = WatchError::LinkType(info.name.clone(), info.linktype);
                collectors.stop();
                return Err(error);
            }
        }
    }

    let (reports_tx, reports_rx) = bounded::<(PathBuf, Incident)>(REPORT_QUEUE);
    let reporter = {
        let config = config.clone();
        let metrics = metrics.clone();
        std::thread::Builder::new()
            .name("vmlat-report".into())
            .spawn(move || {
                for (dir, incident) in reports_rx {
                    report_incident(&config, &metrics, &dir, &incident);
                }
            })
            .expect("spawning a thread")
    };

    let mut engine = Engine {
        config,
        tracker: Tracker::new(config.analyze.gap_factor, false),
        captures: Vec::new(),
        link_types,
        ports: config.analyze.udp_ports(),
        detector: Detector::new(config.after.as_nanos() as i64),
        window: Window::new(config.before, config.max_memory_bytes, names.len()),
        sorter: Sorter::new(collectors.sources, MAX_PENDING),
        manifest,
        losses: Arc::clone(&losses),
        packets_dropped,
        reports: reports_tx,
        incidents: 0,
        names: names.clone(),
        metrics,
        last_refresh: Instant::now(),
    };
    engine.captures = names.iter().map(|n| engine.tracker.capture_id(n)).collect();
    eprintln!(
        "vmlat: watching {} (keeping {:.0} s in at most {} MiB); incidents go into {}",
        names.join(", "),
        config.before.as_secs_f64(),
        config.max_memory_bytes >> 20,
        config.output.display()
    );

    let mut failed = None;
    let mut last_tick = Instant::now();
    while !signals.stop.load(Ordering::Relaxed) {
        select! {
            recv(collectors.queue) -> batch => {
                if let Ok(batch) = batch {
                    engine.sorter.push(batch.source, batch.records, batch.watermark);
                    let window = &mut engine.window;
                    engine.sorter.release(|r| window.push_record(r));
                }
            }
            recv(packet_rx) -> packet => {
                if let Ok((capture, packet)) = packet {
                    engine.packet(capture, packet);
                }
            }
            default(TICK) => {}
        }
        if last_tick.elapsed() >= TICK {
            last_tick = Instant::now();
            // Silence is judged by the clock: every packet captured so far is seen first
            // (after a slow write, some wait in the queue).
            for (capture, packet) in packet_rx.try_iter() {
                engine.packet(capture, packet);
            }
            if let Err(e) = engine.tick(false) {
                failed = Some(e);
                break;
            }
            if signals.reopen.swap(false, Ordering::Relaxed) {
                match create_output(&config.output) {
                    Ok(()) => eprintln!("vmlat: SIGHUP: {} reopened", config.output.display()),
                    Err(e) => eprintln!("vmlat: SIGHUP: {e}"),
                }
            }
            if collectors.any_finished() {
                break;
            }
        }
    }
    // What is open is written with what there is.
    let written = engine.tick(true);
    let stopped = collectors.stop();
    for warning in &collectors.recorded.warnings {
        eprintln!("vmlat: warning: {warning}");
    }
    let summary = WatchSummary {
        incidents: engine.incidents,
        losses: engine.all_losses(),
    };
    drop(engine.reports);
    let _ = reporter.join();
    drop(server);
    if let Some(e) = failed.or(written.err()).or(stopped.map(WatchError::from)) {
        return Err(e);
    }
    Ok(summary)
}

/// The live state of a watch.
struct Engine<'a> {
    config: &'a WatchConfig,
    tracker: Tracker,
    /// The tracker's id of each capture point, by index.
    captures: Vec<CaptureId>,
    link_types: Vec<LinkType>,
    ports: Vec<u16>,
    detector: Detector,
    window: Window,
    sorter: Sorter<vmlat_bundle::Record>,
    manifest: Manifest,
    losses: Arc<LossCounters>,
    packets_dropped: Arc<AtomicU64>,
    reports: Sender<(PathBuf, Incident)>,
    incidents: u64,
    /// Each capture point's name, by index.
    names: Vec<String>,
    metrics: Metrics,
    last_refresh: Instant,
}

impl Engine<'_> {
    /// A captured packet: into the window, and to the tracker if it is a heartbeat.
    fn packet(&mut self, capture: usize, packet: Packet) {
        let t_ns = packet.timestamp.as_nanos() as i64;
        let (Some(&link), Some(&id)) = (self.link_types.get(capture), self.captures.get(capture))
        else {
            return;
        };
        if let Ok(Some(hb)) = decode::decode(link, t_ns, &packet.data, &self.ports) {
            let events: Vec<StreamEvent> = self.tracker.observe(id, &hb).collect();
            self.count_advert(capture, id, &hb);
            self.handle(&events, t_ns);
        }
        self.window.push_packet(capture, packet);
    }

    /// The advert in the metrics, unless the tracker took it for a duplicate.
    fn count_advert(&self, capture: usize, id: CaptureId, hb: &Heartbeat) {
        let Some(state) = self.tracker.sender(id, hb) else {
            return;
        };
        if state.last.0 != hb.t_ns {
            return;
        }
        let group = GroupKey {
            capture: self.names.get(capture).cloned().unwrap_or_default(),
            protocol: hb.protocol,
            vrid: hb.group,
            vlan: hb.vlan,
        };
        self.metrics
            .advert(&StreamLabels::new(&group, hb.src), state.last_interval_ns);
    }

    fn handle(&mut self, events: &[StreamEvent], now_ns: i64) {
        if events.is_empty() {
            return;
        }

        let was_open = self.detector.open().is_some();
        for back in self.detector.handle(events, now_ns) {
            eprintln!(
                "vmlat: {} VRID {} at {} advertises again after {:.3} s",
                back.stream.src,
                back.stream.group.vrid,
                back.stream.group.capture,
                back.silent_ms / 1000.0
            );
        }
        if let Some(incident) = self.detector.open() {
            if !was_open {
                let first = incident.first();
                eprintln!(
                    "vmlat: incident begins: {} {} VRID {} {} at {} (since {} UTC); recording until it is over",
                    first.kind.name(),
                    first.group.protocol.name(),
                    first.group.vrid,
                    first.router,
                    first.group.capture,
                    Timestamp(incident.start_ns).date_time()
                );
            }
            let now = anchor();
            let before = self.config.before.as_nanos() as i64;
            let since_start = (now.realtime_ns - incident.start_ns).max(0);
            self.window.hold_from(Hold {
                realtime_ns: incident.start_ns - before,
                monotonic_ns: now
                    .monotonic_ns
                    .saturating_sub((since_start + before) as u64),
            });
        }
    }

    /// Tells the tracker the time, moves the window, and writes an incident that is
    /// over (any open one when `stopping`).
    fn tick(&mut self, stopping: bool) -> Result<(), WatchError> {
        let now = anchor();

        let events: Vec<StreamEvent> = self.tracker.tick(now.realtime_ns).collect();
        self.handle(&events, now.realtime_ns);
        if stopping {
            let window = &mut self.window;
            self.sorter.drain(|r| window.push_record(r));
        }
        self.losses
            .late_records
            .store(self.sorter.late(), Ordering::Relaxed);
        self.metrics
            .masters(&self.tracker.masters(), now.realtime_ns);
        if self.last_refresh.elapsed() >= Duration::from_secs(1) {
            self.last_refresh = Instant::now();
            self.metrics.refresh(
                &self.all_losses(),
                self.window.overflowed(),
                self.window.bytes(),
            );
        }
        if let Some(incident) = self.detector.take_due(now.realtime_ns, stopping) {
            self.spill(incident)?;
        }
        self.window.advance(Hold {
            monotonic_ns: now.monotonic_ns,
            realtime_ns: now.realtime_ns,
        });
        Ok(())
    }

    /// The collectors' loss counters, with the packets the watch's queue dropped.
    fn all_losses(&self) -> vmlat_bundle::Losses {
        let mut losses = self.losses.snapshot();
        losses.queue_dropped += self.packets_dropped.load(Ordering::Relaxed);
        losses
    }

    /// Writes the window as the incident's bundle and hands it to the reporter.
    fn spill(&mut self, incident: Incident) -> Result<(), WatchError> {
        let dir = incident_dir(&self.config.output, &incident);
        let mut manifest = self.manifest.clone();
        manifest.losses = self.all_losses();
        let overflowed = self.window.overflowed();
        match spill::write_bundle(&dir, &self.window, manifest) {
            Ok(_) => {
                self.incidents += 1;
                if overflowed > 0 {
                    eprintln!(
                        "vmlat: {} records and packets of incidents so far lost to --max-memory",
                        overflowed
                    );
                }
                // Never wait for the reporter: records would pile up behind the writing.
                if let Err(TrySendError::Full((dir, _))) = self.reports.try_send((dir, incident)) {
                    eprintln!(
                        "vmlat: {} written but not analyzed: {REPORT_QUEUE} incidents wait for analysis (vmlat analyze reads it)",
                        dir.display()
                    );
                }
            }
            // A full disk loses this incident, not the watch.
            Err(e) => eprintln!(
                "vmlat: incident at {} not written: {e}",
                Timestamp(incident.start_ns)
            ),
        }
        self.window.release();
        Ok(())
    }
}

/// The manifest every incident's bundle starts from.
fn manifest(config: &WatchConfig, recorded: RecordedSet) -> Manifest {
    let now = anchor();
    Manifest {
        format_version: FORMAT_VERSION,
        vmlat_version: env!("CARGO_PKG_VERSION").to_string(),
        hostname: sysinfo::hostname(),
        role: config.collectors.role,
        kernel: sysinfo::kernel_release(),
        arch: std::env::consts::ARCH.to_string(),
        cpus: sysinfo::online_cpus(),
        boot_id: sysinfo::boot_id(),
        command_line: config.command_line.clone(),
        started_realtime_ns: now.realtime_ns,
        started_monotonic_ns: now.monotonic_ns,
        stopped_realtime_ns: None,
        stopped_monotonic_ns: None,
        status: Status::Recording,
        recorded,
        losses: Default::default(),
    }
}

/// `DIR/<UTC time>-vrid<N>`, with `-2`, `-3`... if two incidents share the second.
fn incident_dir(output: &Path, incident: &Incident) -> PathBuf {
    let time = chrono::DateTime::from_timestamp_nanos(incident.start_ns).format("%Y%m%dT%H%M%SZ");
    let base = format!("{time}-vrid{}", incident.first().group.vrid);
    let mut dir = output.join(&base);
    let mut n = 2;
    while dir.exists() {
        dir = output.join(format!("{base}-{n}"));
        n += 1;
    }
    dir
}

fn create_output(dir: &Path) -> Result<(), WatchError> {
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(BUNDLE_DIR_MODE)
        .create(dir)
        .map_err(|source| WatchError::Output {
            path: dir.to_path_buf(),
            source,
        })
}

/// The reporter's work for one incident: analysis, report, the stderr line, the hook,
/// then `--max-disk`.
fn report_incident(config: &WatchConfig, metrics: &Metrics, dir: &Path, incident: &Incident) {
    let outcome = match report::analyze(dir, incident, &config.analyze) {
        Ok(outcome) => outcome,
        Err(e) => {
            eprintln!("vmlat: analyzing {}: {e}", dir.display());
            None
        }
    };
    match &outcome {
        Some(o) => metrics.incident(&o.kind, &o.verdict),
        None => metrics.incident(incident.first().kind.name(), "unknown"),
    }
    eprintln!("{}", report::summary_line(dir, incident, outcome.as_ref()));
    if let Some(command) = &config.on_incident {
        report::run_hook(command, dir, incident, outcome.as_ref());
    }
    if let Some(max) = config.max_disk_bytes {
        match disk::enforce(&config.output, max, dir) {
            Ok(deleted) => {
                for d in deleted {
                    eprintln!(
                        "vmlat: --max-disk: deleted {} ({:.1} MiB), the oldest incident",
                        d.path.display(),
                        d.bytes as f64 / (1 << 20) as f64
                    );
                }
            }
            Err(e) => eprintln!("vmlat: --max-disk: {e}"),
        }
    }
}

//! Running a scenario: build the lab, wait for the master, record, inject the fault,
//! analyze the bundle, and check what the analysis found against what the scenario expects.
//!
//! The timeline, from the moment the recorder runs (`t0`, its first progress report):
//!
//! ```text
//! build lab → wait for master → record ─┬─ t0+start: inject ── t0+start+length: clear ─┬─ t0+duration: stop
//!                                       └──────────── all captures and perf events ─────┘
//! → stop recorder → tear down lab → remove the fault's disk → analyze → check → write results
//! ```
//!
//! The recorder is stopped before the lab is torn down: a capture socket opened inside a
//! namespace keeps the namespace alive after `ip netns del`. Every early return (an error,
//! or the caller's `interrupted` flag, polled every 50 ms) unwinds in the reverse order:
//! fault cleared, recorder stopped, lab torn down, fault disk removed.
//!
//! Output, in the scenario's directory: `bundle/` (the recording), `analysis.txt` and
//! `analysis.json` (the analyzer's reports), `charts/*.png` (every chart of `vmlat plot`),
//! `result.json` (the [`Outcome`]).
//!
//! A lab with VMs (a QEMU guest, `backend = "qemu"`; the Vagrantfile's VMs, `backend =
//! "vagrant"`) is recorded from both sides: `bundle/` is the host's (`--role host`: the
//! VMs' taps, the other routers, the bridge, the VMs' QEMU threads), `bundle-ROUTER/` each
//! VM's own ([`Recorder::Own`]: `--role guest` on its interface, recorded from the lab's
//! start), fetched by its machine ([`crate::machine::Machine::finish`]) after the host's
//! recorder stopped; all are analyzed together, guests first, as `vmlat analyze GUEST
//! HOST` would.

use std::fs;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde::Serialize;
use vmlat_analyzer::{
    report, Analysis, AnalyzeError, AnalyzeOptions, Failover, Gap, Incident, IncidentKind,
    Timestamp,
};
use vmlat_bundle::Role;
use vmlat_plots::{canvas, Figure, Format, PlotError};
use vmlat_tracer::capture::CapturePoint;
use vmlat_tracer::perf::PerfConfig;
use vmlat_tracer::pipeline::QUEUE_RECORDS;
use vmlat_tracer::recorder::{self, CollectorConfig, RecordConfig, RecordError, RecordSummary};

use crate::fault::Prepared;
use crate::machine::{saved_log_path, Recorder};
use crate::scenario::{secs, CaptureSite, Expect, IncidentExpect, Scenario};
use crate::{Lab, LabError};

/// How long the expected master gets to win the election (about 3.4 s at advert_int 1).
const MASTER_TIMEOUT: Duration = Duration::from_secs(20);
/// How long the recorder gets to open its captures and perf rings.
const RECORDER_START_TIMEOUT: Duration = Duration::from_secs(60);
/// How often waits look at the interrupt flag and the recorder.
const POLL: Duration = Duration::from_millis(50);
/// A gap counts as the fault's if it overlaps the fault window extended by this much after
/// the fault: the gap's closing advert comes up to one interval (plus skew) later.
const GAP_SLACK: Duration = Duration::from_secs(3);
/// The bundle's directory inside a scenario's output directory.
pub const BUNDLE_DIR: &str = "bundle";
/// A guest's bundle inside a scenario's output directory: `bundle-vr1`.
pub use crate::machine::own_bundle_dir as guest_bundle_dir;
/// The charts' directory inside a scenario's output directory.
pub const CHARTS_DIR: &str = "charts";
/// The result file inside a scenario's output directory.
pub const RESULT_FILE: &str = "result.json";

/// Why a scenario could not be run to a verdict (as opposed to running and failing).
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// Building, using or tearing down the lab, or injecting the fault.
    #[error(transparent)]
    Lab(#[from] LabError),
    /// The recorder failed to start or died.
    #[error("recording failed: {0}")]
    Record(#[from] RecordError),
    /// The recorder's thread could not be started.
    #[error("cannot start the recorder thread: {0}")]
    Thread(std::io::Error),
    /// The recorder stopped on its own before the scenario's end.
    #[error("the recorder stopped before the scenario ended, without an error; see the bundle's manifest")]
    RecorderEnded,
    /// The recorder did not start within [`RECORDER_START_TIMEOUT`].
    #[error("the recorder did not start within {0:?}: is the machine overloaded?")]
    RecorderStuck(Duration),
    /// The analyzer could not read the bundle.
    #[error("analysis failed: {0}")]
    Analyze(#[from] AnalyzeError),
    /// Drawing the charts failed.
    #[error("drawing the charts: {0}")]
    Plot(#[from] PlotError),
    /// Writing the output directory failed.
    #[error("{path}: {source} (choose another output directory with -o)")]
    Output {
        /// The file or directory.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The output directory holds something that is not an earlier result of this scenario.
    #[error("{0} exists and is not a scenario result (no {RESULT_FILE}): refusing to overwrite it; choose another output directory with -o")]
    OutputNotOurs(PathBuf),
    /// The caller's interrupt flag was set; everything was cleaned up.
    #[error("interrupted: the fault was cleared, the recording stopped and the lab torn down")]
    Interrupted,
    /// Cleanup after an error left things behind, or failed itself; the first error is `error`.
    #[error("{error}\nand cleaning up afterwards: {cleanup}")]
    Cleanup {
        /// What went wrong first.
        error: Box<RunError>,
        /// What cleaning up reported.
        cleanup: Box<RunError>,
    },
}

/// How to run a scenario.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// This scenario's output directory (`lab-results/master-sigstop`); replaced if it
    /// holds an earlier result.
    pub out_dir: PathBuf,
    /// Keep the bundle when the scenario passes (it is always kept when it fails).
    pub keep_bundle: bool,
    /// Set by the caller's signal handler: the run clears the fault, stops recording,
    /// tears the lab down and returns [`RunError::Interrupted`].
    pub interrupted: Arc<AtomicBool>,
    /// The command line, written into the bundle's manifest.
    pub command_line: Vec<String>,
}

/// What a run found and whether that is what the scenario expects.
#[derive(Debug, Clone, Serialize)]
pub struct Outcome {
    /// The scenario's name.
    pub scenario: String,
    /// Its file.
    pub file: PathBuf,
    /// `true` when every expectation held.
    pub passed: bool,
    /// One plain sentence per expectation that did not hold.
    pub failures: Vec<String>,
    /// What the analysis found that the expectations looked at.
    pub findings: Vec<String>,
    /// When the fault was injected and cleared (RFC 3339), when there was one.
    pub fault_injected: Option<Timestamp>,
    /// See `fault_injected`.
    pub fault_cleared: Option<Timestamp>,
    /// How long the election took before recording began.
    pub master_after_s: f64,
    /// Wall time of the whole run, teardown included.
    pub wall_s: f64,
    /// The output directory.
    pub out_dir: PathBuf,
    /// The bundle, unless it was removed after a pass.
    pub bundle: Option<PathBuf>,
    /// The QEMU guests' own bundles, unless removed after a pass.
    pub guest_bundles: Vec<PathBuf>,
}

/// Runs one scenario. `log` receives one line per step (`lab vmlat-42-0 up`, `fault
/// injected`...), for the user to follow along.
pub fn run(
    scenario: &Scenario,
    opts: &RunOptions,
    log: &mut dyn FnMut(&str),
) -> Result<Outcome, RunError> {
    let started = Instant::now();
    if !rustix::process::geteuid().is_root() {
        return Err(LabError::NotRoot.into());
    }
    prepare_out_dir(&opts.out_dir)?;
    let bundle = opts.out_dir.join(BUNDLE_DIR);

    let mut spec = scenario.lab.clone();
    let prepared = match &scenario.fault {
        Some(f) => Some(Prepared::new(f, &mut spec)?),
        None => None,
    };
    let recorded = record_in_lab(scenario, &spec, prepared.as_ref(), &bundle, opts, log);
    // After the lab: the fault's disk is keepalived's /tmp until keepalived exits.
    let finished = prepared.map_or(Ok(()), Prepared::finish);
    let run = match (recorded, finished) {
        (Ok(run), Ok(())) => run,
        (Err(error), Ok(())) => return Err(error),
        (Ok(_), Err(cleanup)) => return Err(cleanup.into()),
        (Err(error), Err(cleanup)) => {
            return Err(RunError::Cleanup {
                error: Box::new(error),
                cleanup: Box::new(cleanup.into()),
            })
        }
    };
    if run.summary.manifest.losses.total() > 0 {
        log(&format!(
            "the recording lost {} records (see {}/manifest.json)",
            run.summary.manifest.losses.total(),
            bundle.display()
        ));
    }

    log("analyzing");
    // The routers' own logs, saved before teardown: their lines go next to the evidence.
    let keepalived_logs = spec
        .routers
        .iter()
        .map(|r| saved_log_path(&opts.out_dir, &r.name))
        .filter(|p| p.is_file())
        .collect();
    let analyze = AnalyzeOptions {
        keep_adverts: true,
        keepalived_logs,
        ..AnalyzeOptions::default()
    };
    let mut bundles = run.guest_bundles.clone();
    bundles.push(bundle.clone());
    let analysis = vmlat_analyzer::analyze(&bundles, &analyze)?;
    write_reports(&opts.out_dir, &analysis)?;
    write_charts(&opts.out_dir, &analysis)?;
    let mut checked = check(&scenario.expect, &run.net, &analysis, run.window.as_ref());
    checked.findings.extend(run.guest_clocks);

    let keep = !checked.failures.is_empty() || opts.keep_bundle;
    if !keep {
        for b in &bundles {
            fs::remove_dir_all(b).map_err(output(b))?;
        }
    }
    let outcome = Outcome {
        scenario: scenario.name.clone(),
        file: scenario.path.clone(),
        passed: checked.failures.is_empty(),
        failures: checked.failures,
        findings: checked.findings,
        fault_injected: run.window.as_ref().map(|w| w.injected),
        fault_cleared: run.window.as_ref().map(|w| w.cleared),
        master_after_s: run.master_after.as_secs_f64(),
        wall_s: started.elapsed().as_secs_f64(),
        out_dir: opts.out_dir.clone(),
        bundle: keep.then_some(bundle),
        guest_bundles: if keep { run.guest_bundles } else { Vec::new() },
    };
    let result = opts.out_dir.join(RESULT_FILE);
    let json = serde_json::to_vec_pretty(&outcome).unwrap_or_default();
    fs::write(&result, json).map_err(output(&result))?;
    Ok(outcome)
}

fn output(path: &Path) -> impl FnOnce(std::io::Error) -> RunError {
    let path = path.to_path_buf();
    move |source| RunError::Output { path, source }
}

/// Creates the scenario's output dir, replacing an earlier result of it (and nothing else).
fn prepare_out_dir(dir: &Path) -> Result<(), RunError> {
    if dir.exists() {
        let empty = fs::read_dir(dir).map_err(output(dir))?.next().is_none();
        if !empty && !dir.join(RESULT_FILE).exists() && !dir.join(BUNDLE_DIR).exists() {
            return Err(RunError::OutputNotOurs(dir.to_path_buf()));
        }
        fs::remove_dir_all(dir).map_err(output(dir))?;
    }
    fs::create_dir_all(dir).map_err(output(dir))
}

fn write_reports(dir: &Path, analysis: &Analysis) -> Result<(), RunError> {
    let txt = dir.join("analysis.txt");
    fs::write(&txt, report::text::render(analysis)).map_err(output(&txt))?;
    let json = dir.join("analysis.json");
    fs::File::create(&json)
        .and_then(|f| report::json::write(analysis, std::io::BufWriter::new(f)))
        .map_err(output(&json))
}

/// Draws every chart of the analysis (timeline, intervals, disks, each gap close up) as
/// PNG into `charts/`.
fn write_charts(dir: &Path, analysis: &Analysis) -> Result<(), RunError> {
    let charts_dir = dir.join(CHARTS_DIR);
    fs::create_dir_all(&charts_dir).map_err(output(&charts_dir))?;
    for chart in vmlat_plots::charts(analysis, None)? {
        let path = charts_dir.join(format!("{}.{}", chart.name(), Format::Png.extension()));
        canvas::write(&chart, Format::Png, &path)?;
    }
    Ok(())
}

/// The fault window on the capture clock (CLOCK_REALTIME, like pcap).
#[derive(Debug, Clone, Copy)]
struct Window {
    injected: Timestamp,
    cleared: Timestamp,
}

/// The lab's names and addresses, kept for the check after the lab is gone.
#[derive(Debug, Clone)]
struct Net {
    vrid: u8,
    master: String,
    bridge: String,
    routers: Vec<NetRouter>,
}

#[derive(Debug, Clone)]
struct NetRouter {
    name: String,
    addr: IpAddr,
    interface: String,
    port: String,
}

impl Net {
    fn of(lab: &Lab, master: &str) -> Net {
        Net {
            vrid: lab.spec().vrid,
            master: master.to_owned(),
            bridge: lab.bridge_capture_point(),
            routers: lab
                .routers()
                .iter()
                .map(|r| NetRouter {
                    name: r.name().to_owned(),
                    addr: r.addr(),
                    interface: r.capture_point(),
                    port: r.bridge_port_capture_point(),
                })
                .collect(),
        }
    }

    fn router(&self, name: &str) -> Option<&NetRouter> {
        self.routers.iter().find(|r| r.name == name)
    }

    /// A router's name for an address, or the address itself.
    fn name_of(&self, addr: IpAddr) -> String {
        self.routers
            .iter()
            .find(|r| r.addr == addr)
            .map_or_else(|| addr.to_string(), |r| r.name.clone())
    }
}

/// What the lab part of a run produced.
struct Recorded {
    summary: RecordSummary,
    /// The guests' bundles, fetched from them.
    guest_bundles: Vec<PathBuf>,
    /// One line per guest: how its clock compared with the host's after boot.
    guest_clocks: Vec<String>,
    net: Net,
    window: Option<Window>,
    master_after: Duration,
}

fn now() -> Timestamp {
    let ns = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX));
    Timestamp(ns)
}

/// Builds the lab, records through the fault, and tears the lab down again.
fn record_in_lab(
    scenario: &Scenario,
    spec: &crate::LabSpec,
    prepared: Option<&Prepared>,
    bundle: &Path,
    opts: &RunOptions,
    log: &mut dyn FnMut(&str),
) -> Result<Recorded, RunError> {
    let lab = match Lab::build_until(spec, &opts.interrupted) {
        Err(LabError::Interrupted) if opts.interrupted.load(Ordering::Relaxed) => {
            return Err(RunError::Interrupted)
        }
        built => built?,
    };
    let master = spec
        .expected_master()
        .map(|r| r.name.clone())
        .unwrap_or_default();
    log(&format!(
        "lab {} up, waiting for {master} to be master",
        lab.run_id()
    ));
    let master_after = lab.wait_for_master(&master, MASTER_TIMEOUT)?;
    let net = Net::of(&lab, &master);

    let mut captures = Vec::new();
    let mut vm_pids = Vec::new();
    let mut vms = false;
    for (r, router) in net.routers.iter().zip(lab.routers()) {
        let machine = router.machine();
        // A guest's interface is recorded by the guest; the host sees its tap.
        if machine.recorder() == Recorder::Host {
            captures.push(r.interface.clone());
        }
        if let Some(vm) = machine.vm() {
            vms = true;
            match vm.host_pid() {
                Ok(pid) => vm_pids.extend(i32::try_from(pid).ok()),
                // The host's recorder still finds every QEMU process by itself.
                Err(e) => log(&format!("{e}; recording every QEMU process of this host")),
            }
        }
        captures.push(r.port.clone());
    }
    captures.push(net.bridge.clone());
    let config = RecordConfig {
        output: bundle.to_path_buf(),
        force: false,
        collect: CollectorConfig {
            captures: captures
                .iter()
                .map(|c| c.parse::<CapturePoint>())
                .collect::<Result<_, _>>()
                .map_err(|e| LabError::InvalidSpec(format!("capture point: {e}")))?,
            // keepalived and its children, whatever `process_names` calls them.
            comms: vec!["keepalived*".into()],
            pids: vm_pids,
            role: if vms { Role::Host } else { Role::Guest },
            heartbeat_ports: Vec::new(),
            disk_interval: Duration::from_millis(100),
            // Into a guest's tap: packets from the host, so that the guest's clock is
            // bounded from both sides (the master's adverts only leave it).
            clock_probes: vms,
            perf_ring_pages_exp: PerfConfig::default().ring_pages_exp,
            queue_records: QUEUE_RECORDS,
        },
        duration: None,
        command_line: opts.command_line.clone(),
        // The lab keeps root to tear down what it built: no privilege drop in-process.
        user: None,
    };
    let mut rec = Recording::start(config, &opts.interrupted)?;
    log(&format!(
        "{master} master after {:.1} s; recording {} s on {}",
        master_after.as_secs_f64(),
        secs(scenario.duration),
        captures.join(" ")
    ));
    let t0 = Instant::now();

    let mut window = None;
    if let (Some(fault), Some(prepared)) = (&scenario.fault, prepared) {
        rec.wait_until(t0 + fault.start, &opts.interrupted)?;
        let injected = now();
        let guard = prepared.inject(&lab)?;
        log(&format!(
            "fault injected: {} on {} for {} s",
            fault.kind.name(),
            fault.target,
            secs(fault.length)
        ));
        // On an early return the guard's Drop clears the fault first.
        rec.wait_until(t0 + fault.start + fault.length, &opts.interrupted)?;
        guard.clear()?;
        let cleared = now();
        log("fault cleared");
        window = Some(Window { injected, cleared });
    }
    rec.wait_until(t0 + scenario.duration, &opts.interrupted)?;
    let summary = rec.stop()?;
    let mut guest_bundles = Vec::new();
    let mut guest_clocks = Vec::new();
    for router in lab.routers() {
        let finished = router.machine().finish(&opts.out_dir)?;
        for note in &finished.notes {
            log(note);
        }
        guest_bundles.extend(finished.bundle);
        guest_clocks.extend(finished.findings);
    }
    lab.teardown()?;
    Ok(Recorded {
        summary,
        guest_bundles,
        guest_clocks,
        net,
        window,
        master_after,
    })
}

/// The recorder on its own thread. Dropping it stops it and waits for its last flush.
struct Recording {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<Result<RecordSummary, RecordError>>>,
}

impl Recording {
    /// Starts recording; returns once the recorder reports progress (its captures and perf
    /// rings are open and the writer runs).
    fn start(config: RecordConfig, interrupted: &AtomicBool) -> Result<Recording, RunError> {
        let stop = Arc::new(AtomicBool::new(false));
        let (tx, rx) = mpsc::channel::<()>();
        let thread_stop = Arc::clone(&stop);
        let thread = std::thread::Builder::new()
            .name("vmlat-lab-record".into())
            .spawn(move || {
                recorder::record(&config, thread_stop, |_| {
                    // Only the first report matters; later sends fail once it is read.
                    let _ = tx.send(());
                })
            })
            .map_err(RunError::Thread)?;
        let mut rec = Recording {
            stop,
            thread: Some(thread),
        };
        let deadline = Instant::now() + RECORDER_START_TIMEOUT;
        loop {
            match rx.recv_timeout(POLL) {
                Ok(()) => return Ok(rec),
                Err(mpsc::RecvTimeoutError::Disconnected) => return Err(rec.ended()),
                Err(mpsc::RecvTimeoutError::Timeout) => {}
            }
            if interrupted.load(Ordering::Relaxed) {
                return Err(RunError::Interrupted);
            }
            if Instant::now() >= deadline {
                return Err(RunError::RecorderStuck(RECORDER_START_TIMEOUT));
            }
        }
    }

    /// Sleeps until `deadline`, unless interrupted or the recorder stops on its own.
    fn wait_until(&mut self, deadline: Instant, interrupted: &AtomicBool) -> Result<(), RunError> {
        loop {
            if interrupted.load(Ordering::Relaxed) {
                return Err(RunError::Interrupted);
            }
            if self.thread.as_ref().is_none_or(JoinHandle::is_finished) {
                return Err(self.ended());
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Ok(());
            }
            std::thread::sleep(left.min(POLL));
        }
    }

    /// The error of a recorder thread that ended before it was told to.
    fn ended(&mut self) -> RunError {
        match self.thread.take().map(JoinHandle::join) {
            Some(Ok(Err(e))) => e.into(),
            Some(Err(_)) => RecordError::CollectorDied("recorder thread panicked".into()).into(),
            Some(Ok(Ok(_))) | None => RunError::RecorderEnded,
        }
    }

    /// Stops recording and returns what was written.
    fn stop(mut self) -> Result<RecordSummary, RunError> {
        self.stop.store(true, Ordering::Relaxed);
        match self.thread.take().map(JoinHandle::join) {
            Some(Ok(result)) => Ok(result?),
            Some(Err(_)) => {
                Err(RecordError::CollectorDied("recorder thread panicked".into()).into())
            }
            None => Err(RunError::RecorderEnded),
        }
    }
}

impl Drop for Recording {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            if let Ok(Err(e)) = thread.join() {
                eprintln!("vmlat-lab: the recorder stopped with: {e}");
            }
        }
    }
}

/// The expectations that held and did not.
#[derive(Debug, Default)]
struct Checked {
    failures: Vec<String>,
    findings: Vec<String>,
}

fn describe_gap(net: &Net, g: &Gap) -> String {
    format!(
        "{:.2} s gap in {}'s adverts at {} from {} (incident {})",
        g.duration_ms / 1000.0,
        net.name_of(g.stream.src),
        g.stream.group.capture,
        g.start.time_of_day(),
        g.incident
    )
}

fn describe_incident(net: &Net, i: &Incident) -> String {
    let what = match i.kind {
        IncidentKind::Silence | IncidentKind::Open => {
            format!("{} of {}", i.kind.name(), net.name_of(i.src))
        }
        IncidentKind::Takeover | IncidentKind::SplitBrain => {
            let others: Vec<String> = i
                .routers
                .iter()
                .chain(i.failovers.iter().map(|f| &f.to))
                .filter(|r| **r != i.src)
                .map(|r| net.name_of(*r))
                .collect();
            format!(
                "{}: {} as master beside {}",
                i.kind.name(),
                others.first().cloned().unwrap_or_else(|| "?".into()),
                net.name_of(i.src)
            )
        }
    };
    format!(
        "incident {}: {what}, from {} for {:.2} s, verdict {}: {}",
        i.id,
        i.start.time_of_day(),
        i.duration_ms / 1000.0,
        i.verdict.name(),
        i.summary
    )
}

fn describe_failover(net: &Net, f: &Failover) -> String {
    format!(
        "{} → {} ({}) at {}",
        net.name_of(f.from),
        net.name_of(f.to),
        f.kind.name(),
        f.at.time_of_day()
    )
}

/// The one incident of the fault: its kind, whose it is, its verdict and evidence, its
/// length and where on the path it began.
fn check_incident(
    out: &mut Checked,
    want: &IncidentExpect,
    r: &NetRouter,
    net: &Net,
    analysis: &Analysis,
    in_fault: impl Fn(Timestamp, Timestamp) -> bool,
) {
    let about = |i: &Incident| match i.kind {
        IncidentKind::Silence | IncidentKind::Open => i.src == r.addr,
        IncidentKind::Takeover | IncidentKind::SplitBrain => {
            i.src != r.addr
                && (i.routers.contains(&r.addr) || i.failovers.iter().any(|f| f.to == r.addr))
        }
    };
    let wanted = format!("{} {} of {}", want.verdict.name(), want.kind.name(), r.name);
    let found = analysis
        .incidents
        .iter()
        .find(|i| i.kind == want.kind && about(i) && in_fault(i.start, i.end));
    let Some(inc) = found else {
        out.failures.push(format!(
            "expected one {wanted} during the fault, found none"
        ));
        return;
    };
    if inc.verdict != want.verdict {
        let why = inc
            .evidence
            .first()
            .map_or(String::new(), |e| format!(" ({e})"));
        out.failures.push(format!(
            "expected verdict {}, got {}: {}{why}",
            want.verdict.name(),
            inc.verdict.name(),
            inc.summary
        ));
    }
    if let Some(length) = want.length {
        let got = inc.duration_ms / 1000.0;
        if (got - length.as_secs_f64()).abs() > want.tolerance.as_secs_f64() {
            out.failures.push(format!(
                "expected the {} to last {}±{} s, got {got:.1} s",
                want.kind.name(),
                secs(length),
                secs(want.tolerance)
            ));
        }
    }
    if let Some(site) = want.first_silent {
        let capture = match site {
            CaptureSite::Interface => &r.interface,
            CaptureSite::Port => &r.port,
            CaptureSite::Bridge => &net.bridge,
        };
        if inc.first_silent.as_ref() != Some(capture) {
            out.failures.push(format!(
                "expected the silence to begin at {capture} ({}'s {}), it began at {}",
                r.name,
                site.name(),
                inc.first_silent.as_deref().unwrap_or("no capture point")
            ));
        }
    }
    for needle in &want.evidence {
        let said = std::iter::once(&inc.summary).chain(&inc.evidence);
        if !said.clone().any(|line| line.contains(needle.as_str())) {
            out.failures.push(format!(
                "expected the evidence to mention {needle:?}; it says: {}",
                if inc.evidence.is_empty() {
                    "nothing".to_owned()
                } else {
                    inc.evidence.join(" / ")
                }
            ));
        }
    }
}

/// Compares the analysis with the expectations; every failure is one plain sentence.
fn check(expect: &Expect, net: &Net, analysis: &Analysis, window: Option<&Window>) -> Checked {
    let mut out = Checked::default();

    let fault_window = |start: Timestamp, end: Timestamp| match window {
        Some(w) => {
            let slack = i64::try_from(GAP_SLACK.as_nanos()).unwrap_or(i64::MAX);
            start.0 < w.cleared.0.saturating_add(slack) && end > w.injected
        }
        None => true,
    };
    if let Some(want) = &expect.incident {
        match net.router(&want.router) {
            None => out
                .failures
                .push(format!("router {} is not in the lab", want.router)),
            Some(r) => check_incident(&mut out, want, r, net, analysis, fault_window),
        }
    }

    for name in &expect.quiet {
        let Some(r) = net.router(name) else {
            out.failures
                .push(format!("router {name} is not in the lab"));
            continue;
        };
        let gaps: Vec<String> = analysis
            .gaps
            .iter()
            .filter(|g| g.stream.src == r.addr)
            .map(|g| describe_gap(net, g))
            .collect();
        if !gaps.is_empty() {
            out.failures.push(format!(
                "expected no gap in {name}'s adverts, got {}: {}",
                gaps.len(),
                gaps.join("; ")
            ));
        }
    }

    let failovers: Vec<&Failover> = analysis
        .failovers
        .iter()
        .filter(|f| f.group.capture == net.bridge && f.group.vrid == u16::from(net.vrid))
        .collect();
    let listed: Vec<String> = failovers
        .iter()
        .map(|f| describe_failover(net, f))
        .collect();
    if !listed.is_empty() {
        out.findings.push(format!(
            "failovers at {}: {}",
            net.bridge,
            listed.join("; ")
        ));
    }
    let master = net.router(&net.master).map(|r| r.addr);
    if expect.failover {
        if failovers.is_empty() {
            out.failures.push(format!(
                "expected a failover (a backup taking over from {}, then {} taking back), got none at {}",
                net.master, net.master, net.bridge
            ));
        } else if !failovers.iter().any(|f| Some(f.from) == master) {
            out.failures.push(format!(
                "expected {} to lose the VIP, got only: {}",
                net.master,
                listed.join("; ")
            ));
        } else if failovers.last().map(|f| f.to) != master {
            out.failures.push(format!(
                "expected {} to take the VIP back before the end, got: {}",
                net.master,
                listed.join("; ")
            ));
        }
    } else if !failovers.is_empty() {
        out.failures.push(format!(
            "expected no failover, got {}: {}",
            failovers.len(),
            listed.join("; ")
        ));
    }

    // One event, one incident: a fault makes exactly one, and no fault none.
    let wanted = usize::from(expect.incident.is_some());
    if analysis.incidents.len() != wanted {
        let all: Vec<String> = analysis
            .incidents
            .iter()
            .map(|i| describe_incident(net, i))
            .collect();
        out.failures.push(format!(
            "expected {wanted} incident, got {}: {}",
            analysis.incidents.len(),
            all.join("; ")
        ));
    }
    for i in &analysis.incidents {
        out.findings.push(describe_incident(net, i));
    }
    out
}

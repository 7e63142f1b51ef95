//! `vmlat record`: flags → [`vmlat_tracer::recorder::record`], with signals and progress.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use clap::{Args, ValueEnum};
use vmlat_bundle::Role;
use vmlat_tracer::capture::CapturePoint;
use vmlat_tracer::pipeline::QUEUE_RECORDS;
use vmlat_tracer::recorder::{self, CollectorConfig, Progress, RecordConfig};

/// Record packets, scheduler, syscalls, block I/O and counters into a trace bundle.
///
/// Records until --duration ends or SIGINT/SIGTERM arrives, then writes everything and
/// exits 0. Needs root (or CAP_PERFMON, CAP_NET_RAW and CAP_SYS_ADMIN).
///
/// Example: vmlat record -o flap.vmlat -i eth0 --comm keepalived --duration 60
#[derive(Args)]
pub struct RecordArgs {
    /// Bundle directory to create.
    #[arg(short, long, value_name = "DIR")]
    output: PathBuf,

    #[command(flatten)]
    collect: CollectorArgs,

    /// Which side of the VM boundary this machine is; `host` also samples the run
    /// delay of QEMU and vhost threads, and lists every QEMU process with its guest's
    /// name, taps and MACs in the manifest, which ties a guest bundle to its own VM.
    #[arg(long, value_enum, default_value_t = RoleArg::Guest)]
    role: RoleArg,

    /// Stop after this many seconds (default: until Ctrl-C or SIGTERM).
    #[arg(long, value_name = "SECS")]
    duration: Option<f64>,

    /// On a host, send one small broadcast probe a second into each capture of a guest's
    /// tap (tap:GUEST, or an interface a QEMU process holds; UDP port 47474, dropped by
    /// the guest), so that a guest recorded at the same time
    /// sees packets from the host too and the analyzer can bound the clock offset from
    /// both sides: a VRRP master's adverts only go out of the guest.
    #[arg(long)]
    clock_probes: bool,

    /// Replace an existing bundle at --output.
    #[arg(long)]
    force: bool,

    /// Once every capture and tracepoint is open, drop root and record on as USER (a
    /// name or a uid), as `tcpdump -Z` does; the bundle is handed to USER. What needs
    /// root after that is said in the bundle: the taps of VMs started during the
    /// recording, and keepalived's journal lines unless USER is in systemd-journal.
    #[arg(long, value_name = "USER")]
    user: Option<String>,
}

/// What the collectors record: the flags `record` and `watch` share.
#[derive(Args)]
pub struct CollectorArgs {
    /// Capture heartbeats on this interface; IFACE@NETNS captures inside the named
    /// network namespace (/run/netns/NETNS); on a host, tap:GUEST captures the tap of the
    /// QEMU guest started with `-name GUEST` (the capture point is then named tap:GUEST).
    /// Repeat for every capture point.
    #[arg(short, long = "interface", value_name = "IFACE[@NETNS]|tap:GUEST", value_parser = parse_capture_point)]
    pub interfaces: Vec<CapturePoint>,

    /// Trace the syscalls of processes with this name (also those started later).
    #[arg(long = "comm", value_name = "NAME")]
    pub comms: Vec<String>,

    /// Trace the syscalls of this process (all its threads).
    #[arg(long = "pid", value_name = "PID")]
    pub pids: Vec<i32>,

    /// Also capture and follow this UDP heartbeat (e.g. udp:5405 for corosync); VRRP and
    /// CARP are always captured.
    #[arg(long = "heartbeat", value_name = "udp:PORT", value_parser = super::parse_heartbeat)]
    pub heartbeats: Vec<u16>,

    /// Sample /proc/diskstats, /proc/stat and thread schedstat every MS milliseconds.
    #[arg(long, value_name = "MS", default_value_t = 100, value_parser = clap::value_parser!(u64).range(10..=60_000))]
    pub disk_interval: u64,

    /// Each CPU's perf ring, in KiB (a power of two, at least one page). The default
    /// holds a context-switch storm on a busy machine; a smaller ring loses records
    /// under load, and every loss is counted in the bundle (perf_lost).
    #[arg(long, value_name = "KIB", default_value_t = 4096, value_parser = parse_ring_kib)]
    pub perf_ring_kib: u32,

    /// Records held between the collectors and the disk (or watch's window) at most:
    /// while the disk is slow they wait here, some 100-200 bytes each. Past it the
    /// collectors drop what does not fit, counted in the bundle (queue_dropped).
    #[arg(long, value_name = "N", default_value_t = QUEUE_RECORDS, value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1000..=1 << 26))]
    pub queue_records: usize,
}

impl CollectorArgs {
    pub fn config(&self, role: Role, clock_probes: bool) -> CollectorConfig {
        CollectorConfig {
            captures: self.interfaces.clone(),
            comms: self.comms.clone(),
            pids: self.pids.clone(),
            role,
            heartbeat_ports: self.heartbeats.clone(),
            disk_interval: Duration::from_millis(self.disk_interval),
            clock_probes,
            perf_ring_pages_exp: ring_pages_exp(self.perf_ring_kib),
            queue_records: self.queue_records,
        }
    }
}

#[derive(Clone, Copy, ValueEnum)]
enum RoleArg {
    Guest,
    Host,
    Peer,
}

fn parse_capture_point(s: &str) -> Result<CapturePoint, String> {
    s.parse()
}

pub fn run(args: RecordArgs) -> anyhow::Result<ExitCode> {
    let duration = match args.duration {
        Some(secs) if !(secs > 0.0 && secs.is_finite()) => {
            anyhow::bail!("--duration must be a positive number of seconds, not {secs}")
        }
        Some(secs) => Some(Duration::from_secs_f64(secs)),
        None => None,
    };
    let role = match args.role {
        RoleArg::Guest => Role::Guest,
        RoleArg::Host => Role::Host,
        RoleArg::Peer => Role::Peer,
    };
    let config = RecordConfig {
        output: args.output.clone(),
        force: args.force,
        collect: args.collect.config(role, args.clock_probes),
        duration,
        command_line: std::env::args().collect(),
        user: args.user,
    };

    let stop = Arc::new(AtomicBool::new(false));
    for signal in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        // A second Ctrl-C while stopping exits at once; the bundle stays readable up
        // to its last flush.
        signal_hook::flag::register_conditional_shutdown(signal, 130, Arc::clone(&stop))
            .context("installing signal handlers")?;
        signal_hook::flag::register(signal, Arc::clone(&stop))
            .context("installing signal handlers")?;
    }

    let interactive = std::io::stderr().is_terminal();
    let show = |p: &Progress| {
        if interactive {
            eprint!(
                "\rrecording {:>5.0} s  {:>10} records  {:>8.1} MiB  losses {}   ",
                p.elapsed.as_secs_f64(),
                p.records,
                p.bytes as f64 / (1 << 20) as f64,
                p.losses
            );
        }
    };
    eprintln!(
        "vmlat: recording into {} (Ctrl-C to stop)",
        args.output.display()
    );
    let summary = recorder::record(&config, stop, show);
    if interactive {
        eprintln!();
    }
    let summary = summary?;
    let m = &summary.manifest;
    let packets: u64 = m.recorded.captures.iter().map(|c| c.packets).sum();
    eprintln!(
        "vmlat: wrote {}: {} records, {} packets on {} capture point(s), {}",
        args.output.display(),
        summary.records,
        packets,
        m.recorded.captures.len(),
        m.losses.summary()
    );
    if !m.recorded.unsupported.is_empty() {
        eprintln!(
            "vmlat: not recorded (unsupported here): {}",
            m.recorded.unsupported.join("; ")
        );
    }
    for warning in &m.recorded.warnings {
        eprintln!("vmlat: warning: {warning}");
    }
    Ok(ExitCode::SUCCESS)
}

/// A ring size: a power of two of KiB, from one 4 KiB page to 256 MiB.
fn parse_ring_kib(s: &str) -> Result<u32, String> {
    match s.parse::<u32>() {
        Ok(k) if k.is_power_of_two() && (4..=262_144).contains(&k) => Ok(k),
        _ => Err(format!(
            "'{s}': the ring is a power of two of KiB, from 4 (one page) to 262144 (256 MiB)"
        )),
    }
}

/// 2^exp pages of 4 KiB make `kib`.
fn ring_pages_exp(kib: u32) -> u8 {
    (kib / 4).max(1).trailing_zeros() as u8
}

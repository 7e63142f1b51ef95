//! `vmlat watch`: flags → [`vmlat_watch::watch`], with its signals.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use clap::{Args, ValueEnum};
use vmlat_analyzer::{AnalyzeOptions, HeartbeatPort};
use vmlat_bundle::Role;
use vmlat_watch::{Signals, WatchConfig};

use super::record::CollectorArgs;

/// Record continuously into memory, and write a bundle, its analysis and report only
/// when a flap happens.
///
/// The collectors of `vmlat record` (heartbeats, scheduler, syscalls of --comm/--pid,
/// disk and CPU counters, QEMU threads with --role host) feed a window of the last
/// --before seconds, in memory; nothing is written while nothing happens. Every
/// heartbeat stream is followed live: a master whose next advert is overdue by the gap
/// threshold (as it happens, not when it comes back), a takeover, or a second master
/// opens an incident. Recording goes on for --after seconds after its last event and
/// until the group has a master again (at most 60 s); then the window becomes a
/// normal bundle in DIR/<UTC time>-vrid<N>/ (`vmlat analyze` reads it), analyzed at
/// once into analysis.txt, analysis.json and report.html next to it, and one line goes
/// to stderr: time, stream, duration, verdict. Overlapping incidents share one bundle.
///
/// Memory: the window holds at most --max-memory MiB (256) of records and packets; past
/// it the oldest go (counted as lost while an incident holds the window). vmlat's
/// resident memory stays below --max-memory + each CPU's perf ring (--perf-ring-kib,
/// 4 MiB) + 300 MiB for what `vmlat record` holds too (the collectors' queue and
/// sorter, which grow under a context-switch storm) and the analysis of an incident.
/// Measured peaks: 72-114 MiB at --max-memory 16 in a flap storm (tests/watch_live.rs
/// checks the bound), 479 MiB at the default 256 under a context-switch storm
/// (BENCHMARKS.md).
///
/// SIGTERM or SIGINT writes an open incident and exits 0; SIGHUP looks DIR up again
/// (creates it anew after it was moved away). Needs root, as `vmlat record`.
///
/// Example: vmlat watch -o /var/lib/vmlat -i eth0 --comm keepalived --on-incident 'logger -t vmlat "$VMLAT_VERDICT $VMLAT_INCIDENT_DIR"'
#[derive(Args)]
pub struct WatchArgs {
    /// Directory of the incidents (created if missing).
    #[arg(short, long, value_name = "DIR")]
    output: PathBuf,

    #[command(flatten)]
    collect: CollectorArgs,

    /// Which side of the VM boundary this machine is; `host` also samples QEMU and vhost
    /// threads and lists the VMs in each bundle.
    #[arg(long, value_enum, default_value_t = RoleArg::Guest)]
    role: RoleArg,

    /// Seconds kept before an incident.
    #[arg(long, value_name = "SECS", default_value_t = 30.0, value_parser = parse_secs)]
    before: f64,

    /// Seconds recorded after an incident's last event.
    #[arg(long, value_name = "SECS", default_value_t = 10.0, value_parser = parse_secs)]
    after: f64,

    /// Run this command (with `sh -c`) after each incident is analyzed, with
    /// VMLAT_INCIDENT_DIR, VMLAT_VERDICT, VMLAT_KIND, VMLAT_VRID, VMLAT_ROUTER,
    /// VMLAT_START and VMLAT_DURATION_S in its environment.
    #[arg(long, value_name = "CMD")]
    on_incident: Option<String>,

    /// Serve Prometheus metrics at http://ADDR:PORT/metrics: per stream the adverts
    /// received, the inter-advert interval histogram, the current master and the
    /// seconds since its last advert; incidents by kind and verdict
    /// (vmlat_incidents_total); every loss counter; vmlat's own CPU time and memory.
    #[arg(long, value_name = "ADDR:PORT")]
    metrics: Option<std::net::SocketAddr>,

    /// Keep the incident directories in DIR within MB megabytes (MiB), deleting the
    /// oldest first (each deletion is said on stderr); the newest is always kept.
    #[arg(long, value_name = "MB", value_parser = clap::value_parser!(u64).range(1..))]
    max_disk: Option<u64>,

    /// The window's memory budget, in MiB.
    #[arg(long, value_name = "MB", default_value_t = 256, value_parser = clap::value_parser!(u64).range(1..=16_384))]
    max_memory: u64,

    /// A gap is an inter-arrival time above F × the advertised interval (F > 1).
    #[arg(long, value_name = "F", default_value_t = 1.5, value_parser = super::parse_factor)]
    gap_factor: f64,
}

#[derive(Clone, Copy, ValueEnum)]
enum RoleArg {
    Guest,
    Host,
}

fn parse_secs(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(v) if (0.0..=3600.0).contains(&v) => Ok(v),
        _ => Err(format!("'{s}': a number of seconds from 0 to 3600")),
    }
}

pub fn run(args: WatchArgs) -> anyhow::Result<ExitCode> {
    if args.collect.interfaces.is_empty() {
        anyhow::bail!(
            "vmlat watch follows heartbeats: give at least one -i IFACE[@NETNS] (e.g. -i eth0)"
        );
    }
    let heartbeats = args.collect.heartbeats.clone();
    let config = WatchConfig {
        output: args.output,
        collectors: args.collect.config(
            match args.role {
                RoleArg::Guest => Role::Guest,
                RoleArg::Host => Role::Host,
            },
            false,
        ),
        before: Duration::from_secs_f64(args.before),
        after: Duration::from_secs_f64(args.after),
        max_memory_bytes: (args.max_memory as usize) << 20,
        max_disk_bytes: args.max_disk.map(|mb| mb << 20),
        on_incident: args.on_incident,
        metrics: args.metrics,
        analyze: AnalyzeOptions {
            gap_factor: args.gap_factor,
            heartbeats: heartbeats.into_iter().map(HeartbeatPort).collect(),
            ..AnalyzeOptions::default()
        },
        command_line: std::env::args().collect(),
    };
    let signals = Signals::default();
    for signal in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register_conditional_shutdown(signal, 130, Arc::clone(&signals.stop))
            .context("installing signal handlers")?;
        signal_hook::flag::register(signal, Arc::clone(&signals.stop))
            .context("installing signal handlers")?;
    }
    signal_hook::flag::register(signal_hook::consts::SIGHUP, Arc::clone(&signals.reopen))
        .context("installing signal handlers")?;
    let summary = vmlat_watch::watch(&config, &signals)?;
    eprintln!(
        "vmlat: watch stopped: {} incident(s) written, {} lost",
        summary.incidents,
        summary.losses.total()
    );
    Ok(ExitCode::SUCCESS)
}

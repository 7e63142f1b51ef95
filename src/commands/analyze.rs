//! `vmlat analyze`: flags → [`vmlat_analyzer::analyze`] → the text or JSON report.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;
use vmlat_analyzer::{analyze, report, AnalyzeOptions, HeartbeatPort};

/// Find every heartbeat gap and failover in bundles and captures, and name the hop
/// where each gap's time was lost.
///
/// Each gap gets one verdict (guest-kernel, guest-cpu, guest-io, app-blocked,
/// app-stopped, vcpu-preempted, vm-paused, host-io, vnic, network, receiver or
/// inconclusive) and the facts behind it, from everything the inputs recorded around
/// it. With packets alone a gap is inconclusive ("no scheduler data"). Times are UTC
/// with nanoseconds. Exit code 2 when an input cannot be read.
///
/// Example: vmlat analyze flap.vmlat host.vmlat --json > flap.json
#[derive(Args)]
pub struct AnalyzeArgs {
    /// Bundle directories written by `vmlat record`, and pcap/pcapng files (tcpdump,
    /// dumpcap).
    #[arg(value_name = "INPUT", required = true)]
    inputs: Vec<PathBuf>,

    /// Print the analysis as JSON (documented in docs/analysis-json.md).
    #[arg(long)]
    json: bool,

    /// A gap is an inter-arrival time above F × the advertised interval (F > 1).
    #[arg(long, value_name = "F", default_value_t = 1.5, value_parser = parse_gap_factor)]
    gap_factor: f64,

    /// Also follow this UDP heartbeat (e.g. udp:5405); VRRP, CARP, corosync (5405) and
    /// BFD (3784) are always followed.
    #[arg(long = "heartbeat", value_name = "udp:PORT", value_parser = super::parse_heartbeat)]
    heartbeats: Vec<u16>,

    /// Evidence window: examine the recording from SECS before each gap (to one
    /// interval after it), to see what led into the silence.
    #[arg(long, value_name = "SECS", default_value_t = 1.0, value_parser = parse_window)]
    window: f64,
}

fn parse_gap_factor(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(f) if f > 1.0 && f.is_finite() => Ok(f),
        _ => Err(format!(
            "'{s}': the gap factor is a number above 1, e.g. 1.5"
        )),
    }
}

fn parse_window(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(w) if (0.0..=3600.0).contains(&w) => Ok(w),
        _ => Err(format!(
            "'{s}': the window is a number of seconds from 0 to 3600"
        )),
    }
}

pub fn run(args: AnalyzeArgs) -> anyhow::Result<ExitCode> {
    let opts = AnalyzeOptions {
        gap_factor: args.gap_factor,
        heartbeats: args.heartbeats.into_iter().map(HeartbeatPort).collect(),
        window_ns: (args.window * 1e9) as i64,
        ..AnalyzeOptions::default()
    };
    let analysis = analyze(&args.inputs, &opts)?;
    let mut out = std::io::stdout().lock();
    if args.json {
        report::json::write(&analysis, &mut out)?;
    } else {
        report::text::write(&analysis, &mut out)?;
    }
    out.flush()?;
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gap_factor_and_window_are_checked() {
        assert_eq!(parse_gap_factor("2"), Ok(2.0));
        assert!(parse_gap_factor("1").is_err());
        assert!(parse_gap_factor("NaN").is_err());
        assert_eq!(parse_window("0.5"), Ok(0.5));
        assert!(parse_window("-1").is_err());
    }
}

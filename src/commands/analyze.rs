//! `vmlat analyze`: flags → [`vmlat_analyzer::analyze`] → the text or JSON report.

use std::io::Write;
use std::process::ExitCode;

use clap::Args;
use vmlat_analyzer::report;

use super::AnalysisInput;

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
    /// Print the analysis as JSON (documented in docs/analysis-json.md).
    #[arg(long)]
    json: bool,

    #[command(flatten)]
    input: AnalysisInput,
}

pub fn run(args: AnalyzeArgs) -> anyhow::Result<ExitCode> {
    let analysis = args.input.analyze()?;
    let mut out = std::io::stdout().lock();
    if args.json {
        report::json::write(&analysis, &mut out)?;
    } else {
        report::text::write(&analysis, &mut out)?;
    }
    out.flush()?;
    Ok(ExitCode::SUCCESS)
}

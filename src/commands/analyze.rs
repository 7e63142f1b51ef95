//! `vmlat analyze`: flags → [`vmlat_analyzer::analyze`] → the text or JSON report.

use std::io::Write;
use std::process::ExitCode;

use clap::Args;
use vmlat_analyzer::report;

use super::AnalysisInput;

/// Find every heartbeat silence, takeover and split-brain in bundles and captures, and
/// name the hop where the time was lost.
///
/// What every capture point and machine saw of one event is one incident, with a hop
/// table (the capture points in path order, and the first that went silent), one
/// verdict (guest-kernel, guest-cpu, guest-io, app-blocked, app-stopped,
/// vcpu-preempted, vm-paused, host-io, vnic, network, receiver or inconclusive), the
/// facts behind it, and what else happened (suspects). A verdict needs positive
/// evidence: with packets alone, or without the records it needs, an incident is
/// inconclusive and says what was missing (docs/verdicts.md). Times are UTC with
/// nanoseconds. Exit code 2 when an input cannot be read.
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
    // Stdout is line-buffered: a report of 26 k lines was 26 k write calls, a quarter
    // of the analysis' wall time on a 1 M-advert capture (BENCHMARKS.md).
    let mut out = std::io::BufWriter::with_capacity(1 << 16, std::io::stdout().lock());
    if args.json {
        report::json::write(&analysis, &mut out)?;
    } else {
        report::text::write(&analysis, &mut out)?;
    }
    out.flush()?;
    Ok(ExitCode::SUCCESS)
}

//! `vmlat report`: the analysis → one self-contained HTML page.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use anyhow::Context;
use clap::Args;
use vmlat_plots::html;

use super::AnalysisInput;

/// Write the incident report: one HTML file that opens offline (charts inline as SVG,
/// nothing fetched) with the summary, streams, and every incident with its verdict,
/// evidence, hop table, suspects, keepalived's own lines and close-up chart.
///
/// Example: vmlat report flap.vmlat -o flap.html
#[derive(Args)]
pub struct ReportArgs {
    #[command(flatten)]
    input: AnalysisInput,

    /// The HTML file to write.
    #[arg(short, long, value_name = "FILE")]
    output: PathBuf,
}

pub fn run(args: ReportArgs) -> anyhow::Result<ExitCode> {
    let started = Instant::now();
    let analysis = args.input.analyze_with_adverts()?;
    let page = html::render(&analysis)?;
    std::fs::write(&args.output, page)
        .with_context(|| format!("writing {}", args.output.display()))?;
    eprintln!(
        "vmlat: wrote {} ({} incidents) in {:.2} s",
        args.output.display(),
        analysis.incidents.len(),
        started.elapsed().as_secs_f64()
    );
    Ok(ExitCode::SUCCESS)
}

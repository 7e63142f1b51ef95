//! `vmlat export --perfetto`: the analysis and the bundles' scheduling → Chrome
//! trace-event JSON.

use std::fs::File;
use std::io::BufWriter;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use anyhow::Context;
use clap::Args;
use vmlat_plots::perfetto;

use super::AnalysisInput;

/// Export a trace for Perfetto UI (ui.perfetto.dev, offline too) and chrome://tracing:
/// a track per CPU with what ran, the states of the traced threads, every advert as an
/// instant on a track per capture point, and every incident as a slice named by its
/// verdict.
///
/// Times are microseconds since the whole UTC second before the recording (written in
/// the file's otherData.time_base_utc).
///
/// Example: vmlat export --perfetto flap.json flap.vmlat
#[derive(Args)]
pub struct ExportArgs {
    /// The trace-event JSON file to write.
    #[arg(long, value_name = "OUT.json", required = true)]
    perfetto: PathBuf,

    #[command(flatten)]
    input: AnalysisInput,
}

pub fn run(args: ExportArgs) -> anyhow::Result<ExitCode> {
    let started = Instant::now();
    let analysis = args.input.analyze_with_adverts()?;
    let file = File::create(&args.perfetto)
        .with_context(|| format!("creating {}", args.perfetto.display()))?;
    let summary = perfetto::export(
        &analysis,
        &args.input.inputs,
        BufWriter::with_capacity(1 << 20, file),
    )
    .with_context(|| format!("writing {}", args.perfetto.display()))?;
    eprintln!(
        "vmlat: wrote {}: {} events ({} CPU slices, {} thread states, {} packets, {} incidents) in {:.2} s",
        args.perfetto.display(),
        summary.events,
        summary.cpu_slices,
        summary.thread_slices,
        summary.packets,
        summary.incidents,
        started.elapsed().as_secs_f64()
    );
    Ok(ExitCode::SUCCESS)
}

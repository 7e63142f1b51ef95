//! `vmlat plot`: the analysis → PNG or SVG charts in a directory.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use anyhow::Context;
use clap::{Args, ValueEnum};
use vmlat_plots::{canvas, charts, Figure, Format};

use super::AnalysisInput;

/// Draw the charts of an analysis: the timeline of every stream, each incident close up
/// with the lanes that explain its verdict, the inter-advert interval distributions,
/// and disk latency (bundles that recorded disks).
///
/// Writes DIR/timeline.EXT, DIR/intervals.EXT, DIR/disks.EXT and DIR/incident-N.EXT (N as
/// in `vmlat analyze`). Times are UTC.
///
/// Example: vmlat plot flap.vmlat -o charts --incident 1
#[derive(Args)]
pub struct PlotArgs {
    #[command(flatten)]
    input: AnalysisInput,

    /// Directory to write the charts into (created if missing).
    #[arg(short, long, value_name = "DIR")]
    output: PathBuf,

    /// Image format.
    #[arg(long, value_enum, default_value_t = FormatArg::Png)]
    format: FormatArg,

    /// Draw the close-up of incident N only (numbered from 1, as `vmlat analyze` does).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    incident: Option<u64>,
}

#[derive(Clone, Copy, ValueEnum)]
enum FormatArg {
    Png,
    Svg,
}

pub fn run(args: PlotArgs) -> anyhow::Result<ExitCode> {
    let format = match args.format {
        FormatArg::Png => Format::Png,
        FormatArg::Svg => Format::Svg,
    };
    let started = Instant::now();
    let analysis = args.input.analyze_with_adverts()?;
    let charts = charts(&analysis, args.incident.map(|n| n as usize))?;
    std::fs::create_dir_all(&args.output)
        .with_context(|| format!("creating {}", args.output.display()))?;
    for chart in &charts {
        let path = args
            .output
            .join(format!("{}.{}", chart.name(), format.extension()));
        canvas::write(chart, format, &path)?;
        println!("{}", path.display());
    }
    eprintln!(
        "vmlat: {} chart(s) in {:.2} s",
        charts.len(),
        started.elapsed().as_secs_f64()
    );
    Ok(ExitCode::SUCCESS)
}

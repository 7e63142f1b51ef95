//! The `vmlat` command: a thin clap front end that wires flags to the tracer, analyzer
//! and plots libraries. Every failure is one message on stderr and exit code 2.

mod commands;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// vmlat: find where a keepalived VIP flap lost its seconds, from the guest's
/// keepalived down to the hypervisor's disk.
#[derive(Parser)]
#[command(version, about, long_about = None, propagate_version = true)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    Record(commands::record::RecordArgs),
    Inspect(commands::inspect::InspectArgs),
    Lab(commands::lab::LabArgs),
    Analyze(commands::analyze::AnalyzeArgs),
    Plot(commands::plot::PlotArgs),
    Report(commands::report::ReportArgs),
    Export(commands::export::ExportArgs),
    Watch(commands::watch::WatchArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Record(args) => commands::record::run(args),
        Command::Inspect(args) => commands::inspect::run(args),
        Command::Analyze(args) => commands::analyze::run(args),
        Command::Lab(args) => commands::lab::run(args),
        Command::Plot(args) => commands::plot::run(args),
        Command::Report(args) => commands::report::run(args),
        Command::Export(args) => commands::export::run(args),
        Command::Watch(args) => commands::watch::run(args),
    };
    match result {
        Ok(code) => code,
        Err(error) => {
            eprintln!("vmlat: error: {error:#}");
            ExitCode::from(2)
        }
    }
}

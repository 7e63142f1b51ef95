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
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Record(args) => commands::record::run(args),
        Command::Inspect(args) => commands::inspect::run(args),
    };
    match result {
        Ok(code) => code,
        Err(error) => {
            eprintln!("vmlat: error: {error:#}");
            ExitCode::from(2)
        }
    }
}

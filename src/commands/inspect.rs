//! `vmlat inspect`: what a bundle holds, for people or (`--json`) for machines.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;
use vmlat_bundle::{inventory, Inventory, Status};

/// Print what a trace bundle holds: host, duration, record counts, losses.
#[derive(Args)]
pub struct InspectArgs {
    /// Bundle directory written by `vmlat record`.
    #[arg(value_name = "DIR")]
    bundle: PathBuf,

    /// Print JSON instead of text.
    #[arg(long)]
    json: bool,
}

pub fn run(args: InspectArgs) -> anyhow::Result<ExitCode> {
    let inv = inventory(&args.bundle)?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&inv)?);
    } else {
        print!("{}", text(&args.bundle, &inv));
    }
    Ok(ExitCode::SUCCESS)
}

fn text(dir: &std::path::Path, inv: &Inventory) -> String {
    use std::fmt::Write;
    let mut out = String::new();
    let status = match &inv.status {
        Status::Recording => "not stopped cleanly (recorder killed?)".to_string(),
        Status::Complete => "complete".to_string(),
        Status::Failed { error } => format!("stopped early: {error}"),
    };
    let c = &inv.counts;
    let l = &inv.losses;
    let _ = writeln!(
        out,
        "bundle    {} (format {})",
        dir.display(),
        inv.format_version
    );
    let _ = writeln!(
        out,
        "host      {} ({}), kernel {}, {} CPUs",
        inv.hostname, inv.role, inv.kernel, inv.cpus
    );
    let _ = writeln!(out, "recording {:.1} s, {status}", inv.duration_s);
    let _ = writeln!(out, "packets   {}", c.packets);
    for cap in &inv.captures {
        let _ = writeln!(
            out,
            "          {:<24} {:>8} packets  {}",
            cap.name, cap.packets, cap.file
        );
    }
    let _ = writeln!(
        out,
        "sched     {} switches, {} wakeups",
        c.sched_switch, c.sched_wakeup
    );
    let _ = writeln!(
        out,
        "process   {} forks, {} execs, {} exits, {} exit_group calls, {} signals",
        c.process_fork, c.process_exec, c.process_exit, c.exit_group, c.signal
    );
    let _ = writeln!(
        out,
        "syscalls  {} enters, {} exits",
        c.syscall_enter, c.syscall_exit
    );
    if let Some(filter) = &inv.syscall_filter {
        let _ = writeln!(out, "          filter: {filter}");
    }
    let _ = writeln!(
        out,
        "block     {} issued, {} completed",
        c.block_issue, c.block_complete
    );
    let _ = writeln!(
        out,
        "samples   {} disk, {} cpu, {} task, {} clock anchors",
        c.disk_samples, c.cpu_samples, c.task_samples, c.clock_anchors
    );
    let counters: Vec<String> = l
        .counters()
        .iter()
        .map(|(name, n, _)| format!("{name} {n}"))
        .collect();
    let _ = writeln!(out, "losses    {}", counters.join(", "));
    if !inv.unsupported.is_empty() {
        let _ = writeln!(out, "missing   {}", inv.unsupported.join("; "));
    }
    for warning in &inv.warnings {
        let _ = writeln!(out, "warning   {warning}");
    }
    if inv.torn_tail {
        let _ = writeln!(
            out,
            "torn      {} end(s) inside a record: read up to the last whole one",
            inv.torn_files.join(", ")
        );
    }
    out
}

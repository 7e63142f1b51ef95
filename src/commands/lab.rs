//! `vmlat lab`: list scenario files, and run them (build the lab, inject the fault,
//! record, analyze, check) with [`vmlat_lab::runner`].
//!
//! Ctrl-C is handled here rather than with `vmlat_lab::cleanup_on_signal`, which would end
//! the process before the recorder's last flush: a signal only sets a flag, and the runner
//! clears the fault, stops the recorder and tears the lab down on its own way out.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use anyhow::Context;
use clap::{Args, Subcommand};
use vmlat_lab::runner::{self, Outcome, RunError, RunOptions};
use vmlat_lab::scenario::Scenario;
use vmlat_lab::{sweep_stale, teardown_all, LAB_PREFIX};

/// Exit code of a run in which an expectation failed (errors exit 2).
const EXIT_FAILED: u8 = 1;
/// Exit code after Ctrl-C (128 + SIGINT), as a shell reports it.
const EXIT_INTERRUPTED: u8 = 130;

/// Reproduce flaps in a lab: network namespaces running real keepalived, a real fault,
/// and a check that the analysis names it.
///
/// Example: sudo vmlat lab run scenarios/master-sigstop.toml
#[derive(Args)]
pub struct LabArgs {
    #[command(subcommand)]
    command: LabCommand,
}

#[derive(Subcommand)]
enum LabCommand {
    /// List the scenario files of a directory, one line each with what it expects.
    List {
        /// Directory of scenario files.
        #[arg(value_name = "DIR", default_value = "scenarios")]
        dir: PathBuf,
    },
    /// Run scenarios and check their results. Exits 0 if all pass, 1 if an expectation
    /// failed, 2 on an error. Needs root.
    Run(RunArgs),
}

#[derive(Args)]
struct RunArgs {
    /// Scenario files (see docs/scenarios.md).
    #[arg(value_name = "SCENARIO.toml", required = true)]
    scenarios: Vec<PathBuf>,

    /// Where results go: one directory per scenario with the bundle, analysis.txt,
    /// analysis.json and result.json. An earlier result of the same scenario is replaced.
    #[arg(short, long, value_name = "DIR", default_value = "lab-results")]
    output: PathBuf,

    /// Keep the bundle of passing scenarios too (a failing scenario's is always kept).
    #[arg(long)]
    keep: bool,
}

pub fn run(args: LabArgs) -> anyhow::Result<ExitCode> {
    match args.command {
        LabCommand::List { dir } => list(&dir),
        LabCommand::Run(args) => run_scenarios(args),
    }
}

/// Loads every `*.toml` of `dir`, sorted by name.
fn list(dir: &Path) -> anyhow::Result<ExitCode> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .with_context(|| format!("reading scenario directory {}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        .collect();
    files.sort();
    if files.is_empty() {
        anyhow::bail!("no *.toml scenario files in {}", dir.display());
    }
    let scenarios = files
        .iter()
        .map(|f| Scenario::load(f))
        .collect::<Result<Vec<_>, _>>()?;
    let width = scenarios.iter().map(|s| s.name.len()).max().unwrap_or(0);
    for s in &scenarios {
        println!("{:width$}  {}", s.name, s.summary());
    }
    Ok(ExitCode::SUCCESS)
}

fn run_scenarios(args: RunArgs) -> anyhow::Result<ExitCode> {
    // Every file is checked before anything is built: a typo in the third file must not
    // cost the first two runs.
    let scenarios = args
        .scenarios
        .iter()
        .map(|f| Scenario::load(f))
        .collect::<Result<Vec<_>, _>>()?;
    for (i, s) in scenarios.iter().enumerate() {
        if let Some(other) = scenarios[..i].iter().find(|o| o.name == s.name) {
            anyhow::bail!(
                "{} and {} are both named {}: their results would share {}; rename one",
                other.path.display(),
                s.path.display(),
                s.name,
                args.output.join(&s.name).display()
            );
        }
    }
    // Before anything else that needs root, so that its clear NotRoot message is what a
    // user without it sees.
    let mut leftovers = sweep_stale(LAB_PREFIX)?;
    leftovers.extend(vmlat_lab::fault::sweep_stale()?);
    for leftover in leftovers {
        eprintln!("vmlat: removed a leftover of a dead run: {leftover}");
    }

    let interrupted = Arc::new(AtomicBool::new(false));
    for signal in [
        signal_hook::consts::SIGINT,
        signal_hook::consts::SIGTERM,
        signal_hook::consts::SIGHUP,
    ] {
        signal_hook::flag::register(signal, Arc::clone(&interrupted))
            .context("installing signal handlers")?;
    }
    let (mut passed, mut failed, mut errors) = (0usize, 0usize, 0usize);
    for scenario in &scenarios {
        eprintln!("vmlat: {}: {}", scenario.name, scenario.description);
        let opts = RunOptions {
            out_dir: args.output.join(&scenario.name),
            keep_bundle: args.keep,
            interrupted: Arc::clone(&interrupted),
            command_line: std::env::args().collect(),
        };
        let name = scenario.name.clone();
        let mut log = |line: &str| eprintln!("vmlat: {name}: {line}");
        match runner::run(scenario, &opts, &mut log) {
            Ok(outcome) => {
                print_outcome(&outcome);
                if outcome.passed {
                    passed += 1;
                } else {
                    failed += 1;
                }
            }
            Err(RunError::Interrupted) => {
                // The runner cleaned up its own; this catches anything a racing build left.
                for e in teardown_all() {
                    eprintln!("vmlat: {e}");
                }
                eprintln!(
                    "vmlat: {}: interrupted; the fault was cleared and the lab torn down",
                    scenario.name
                );
                return Ok(ExitCode::from(EXIT_INTERRUPTED));
            }
            Err(e) => {
                errors += 1;
                println!("ERROR {}: {e}", scenario.name);
            }
        }
    }
    println!("results in {}", args.output.display());
    // The plain closing line test harnesses read: a scenario that could not run
    // (ERROR above) did not pass either.
    println!("lab: {passed} passed, {} failed", failed + errors);
    Ok(if errors > 0 {
        ExitCode::from(2)
    } else if failed > 0 {
        ExitCode::from(EXIT_FAILED)
    } else {
        ExitCode::SUCCESS
    })
}

fn print_outcome(o: &Outcome) {
    let word = if o.passed { "PASS" } else { "FAIL" };
    println!("{word} {} ({:.1} s)", o.scenario, o.wall_s);
    for f in &o.failures {
        println!("  ✗ {f}");
    }
    for f in &o.findings {
        println!("  · {f}");
    }
    println!("  → {}", o.out_dir.join("analysis.txt").display());
}

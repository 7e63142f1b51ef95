//! What is done with an incident's bundle once written: the analysis and report next to
//! it (the analyzer and the HTML report that `vmlat analyze` and `vmlat report` use),
//! the one-line summary on stderr, and the user's `--on-incident` command.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use vmlat_analyzer::{report, Analysis, AnalyzeOptions, Timestamp};

use crate::detect::Incident;

/// The files written next to an incident's bundle.
pub const ANALYSIS_TEXT: &str = "analysis.txt";
pub const ANALYSIS_JSON: &str = "analysis.json";
pub const REPORT_HTML: &str = "report.html";

/// Why an incident could not be analyzed or reported.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    #[error(transparent)]
    Analyze(#[from] vmlat_analyzer::AnalyzeError),
    #[error(transparent)]
    Plot(#[from] vmlat_plots::PlotError),
    #[error("writing {path}: {source}")]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// The verdict of an incident as the analyzer gave it, for the summary and the hook.
#[derive(Debug, Clone, PartialEq)]
pub struct Outcome {
    pub verdict: String,
    /// `silence`, `open`, `takeover` or `split-brain`.
    pub kind: String,
    pub duration_ms: f64,
}

/// Analyzes the bundle in `dir` and writes analysis.txt, analysis.json and report.html
/// there. The outcome is that of the analyzed incident of the watch's first trigger
/// (same VRID and router), else the first incident; `None` when the analysis found
/// none.
pub fn analyze(
    dir: &Path,
    incident: &Incident,
    options: &AnalyzeOptions,
) -> Result<Option<Outcome>, ReportError> {
    let options = AnalyzeOptions {
        keep_adverts: true,
        ..options.clone()
    };
    let analysis = vmlat_analyzer::analyze(&[dir.to_path_buf()], &options)?;
    write_file(&dir.join(ANALYSIS_TEXT), |out| {
        report::text::write(&analysis, out)
    })?;
    write_file(&dir.join(ANALYSIS_JSON), |out| {
        report::json::write(&analysis, out)
    })?;
    let page = vmlat_plots::html::render(&analysis)?;
    write_file(&dir.join(REPORT_HTML), |out| out.write_all(page.as_bytes()))?;
    Ok(outcome(&analysis, incident))
}

fn outcome(analysis: &Analysis, incident: &Incident) -> Option<Outcome> {
    let first = incident.first();
    let found = analysis
        .incidents
        .iter()
        .find(|i| i.vrid == first.group.vrid && i.src == first.router)
        .or_else(|| analysis.incidents.first())?;
    Some(Outcome {
        verdict: found.verdict.name().to_string(),
        kind: found.kind.name().to_string(),
        duration_ms: found.duration_ms,
    })
}

fn write_file(
    path: &Path,
    write: impl FnOnce(&mut std::io::BufWriter<std::fs::File>) -> std::io::Result<()>,
) -> Result<(), ReportError> {
    let failed = |source| ReportError::Write {
        path: path.to_path_buf(),
        source,
    };
    let file = vmlat_bundle::create_bundle_file(path).map_err(failed)?;
    let mut out = std::io::BufWriter::new(file);
    write(&mut out).map_err(failed)?;
    out.flush().map_err(failed)
}

/// The one line an incident prints on stderr (the journal's line under systemd):
/// time, stream, duration, verdict, directory.
pub fn summary_line(dir: &Path, incident: &Incident, outcome: Option<&Outcome>) -> String {
    let first = incident.first();
    let stream = format!(
        "{} VRID {} {} at {}",
        first.group.protocol.name(),
        first.group.vrid,
        first.router,
        first.group.capture
    );
    let what = match outcome {
        Some(o) => format!(
            "{} {:.3} s, verdict {}",
            o.kind,
            o.duration_ms / 1000.0,
            o.verdict
        ),
        None => format!("{}, the analysis found no incident", first.kind.name()),
    };
    let silent = if incident.still_silent().is_empty() {
        String::new()
    } else {
        let mut routers: Vec<String> = incident
            .still_silent()
            .iter()
            .map(|s| s.src.to_string())
            .collect();
        routers.dedup();
        format!(" (still silent: {})", routers.join(", "))
    };
    format!(
        "vmlat: incident {} UTC  {stream}  {what}{silent}  → {}",
        Timestamp(incident.start_ns).date_time(),
        dir.display()
    )
}

/// Runs the user's `--on-incident` command with `sh -c`, its environment saying which
/// incident: VMLAT_INCIDENT_DIR, VMLAT_VERDICT, VMLAT_KIND, VMLAT_VRID, VMLAT_ROUTER,
/// VMLAT_START (RFC 3339) and VMLAT_DURATION_S. It runs on its own; a failure to start
/// it, or its non-zero exit, is said on stderr.
pub fn run_hook(command: &str, dir: &Path, incident: &Incident, outcome: Option<&Outcome>) {
    let first = incident.first();
    let child = Command::new("/bin/sh")
        .arg("-c")
        .arg(command)
        .env("VMLAT_INCIDENT_DIR", dir)
        .env(
            "VMLAT_VERDICT",
            outcome.map_or("unknown", |o| o.verdict.as_str()),
        )
        .env(
            "VMLAT_KIND",
            outcome.map_or(first.kind.name(), |o| o.kind.as_str()),
        )
        .env("VMLAT_VRID", first.group.vrid.to_string())
        .env("VMLAT_ROUTER", first.router.to_string())
        .env("VMLAT_START", Timestamp(incident.start_ns).rfc3339())
        .env(
            "VMLAT_DURATION_S",
            outcome.map_or(String::new(), |o| format!("{:.3}", o.duration_ms / 1000.0)),
        )
        .stdin(Stdio::null())
        .spawn();
    let command = command.to_string();
    match child {
        Ok(mut child) => {
            // Reaped on its own thread: a slow pager must not hold the watch.
            let _ =
                std::thread::Builder::new()
                    .name("vmlat-hook".into())
                    .spawn(move || match child.wait() {
                        Ok(status) if status.success() => {}
                        Ok(status) => eprintln!("vmlat: --on-incident '{command}' {status}"),
                        Err(e) => eprintln!("vmlat: --on-incident '{command}': {e}"),
                    });
        }
        Err(e) => eprintln!("vmlat: cannot run --on-incident '{command}': {e}"),
    }
}

//! Removing what dead runs left behind: a process killed with SIGKILL (or a crashed test)
//! never runs its teardown, and its keepalived keeps advertising in an orphaned namespace.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::cmd;
use crate::lab::LAB_ROOT;
use crate::LabError;

/// In each lab dir: "PID STARTTIME" of the process that built it.
pub(crate) const OWNER_FILE: &str = "owner";

/// How long a stale keepalived gets after SIGTERM before SIGKILL.
const STALE_GRACE: Duration = Duration::from_secs(2);

/// What one dead run left: namespaces and maybe its dir.
#[derive(Default)]
struct Leftovers {
    pid: u32,
    namespaces: Vec<String>,
    dir: Option<PathBuf>,
}

/// Removes the namespaces (killing what runs in them) and lab dirs of earlier runs with this
/// name prefix (normally [`LAB_PREFIX`](crate::LAB_PREFIX)) whose owning process is gone.
/// Labs of live processes, this one included, are left alone. Returns the namespaces and
/// dirs removed.
pub fn sweep_stale(prefix: &str) -> Result<Vec<String>, LabError> {
    if !rustix::process::geteuid().is_root() {
        return Err(LabError::NotRoot);
    }
    let mut runs: BTreeMap<String, Leftovers> = BTreeMap::new();
    for name in dir_names(Path::new(cmd::NETNS_DIR))? {
        if let Some((run_id, pid)) = parse_run(prefix, &name, true) {
            let run = runs.entry(run_id).or_default();
            run.pid = pid;
            run.namespaces.push(name);
        }
    }
    for name in dir_names(Path::new(LAB_ROOT))? {
        if let Some((run_id, pid)) = parse_run(prefix, &name, false) {
            let run = runs.entry(run_id).or_default();
            run.pid = pid;
            run.dir = Some(Path::new(LAB_ROOT).join(name));
        }
    }

    let mut removed = Vec::new();
    let mut problems = Vec::new();
    for (run_id, run) in runs {
        if owner_alive(run.pid, run.dir.as_deref()) {
            continue;
        }
        for ns in &run.namespaces {
            let result =
                cmd::kill_netns_processes(ns, STALE_GRACE).and_then(|()| cmd::delete_netns(ns));
            match result {
                Ok(()) => removed.push(ns.clone()),
                Err(e) => problems.push(format!("{run_id}: {e} (retry: ip netns del {ns})")),
            }
        }
        if let Some(dir) = run.dir {
            match std::fs::remove_dir_all(&dir) {
                Ok(()) => removed.push(dir.display().to_string()),
                Err(e) => problems.push(format!("{}: {e}", dir.display())),
            }
        }
    }
    if problems.is_empty() {
        Ok(removed)
    } else {
        Err(LabError::Teardown {
            run_id: format!("{prefix}* (stale)"),
            problems,
        })
    }
}

/// Entry names of a directory; a missing directory has none.
fn dir_names(dir: &Path) -> Result<Vec<String>, LabError> {
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(source) => {
            return Err(LabError::Io {
                path: dir.to_path_buf(),
                source,
            })
        }
    };
    Ok(entries
        .filter_map(|e| e.ok())
        .filter_map(|e| e.file_name().into_string().ok())
        .collect())
}

/// Splits `PREFIX PID-SEQ[-REST]` into the run id `PREFIX PID-SEQ` and the pid. Namespaces
/// have a `-ROUTER` rest; lab dirs have none.
fn parse_run(prefix: &str, name: &str, with_rest: bool) -> Option<(String, u32)> {
    let tail = name.strip_prefix(prefix)?;
    let mut parts = tail.splitn(3, '-');
    let pid_s = parts.next()?;
    let seq_s = parts.next()?;
    let rest = parts.next();
    if rest.is_some() != with_rest || rest == Some("") {
        return None;
    }
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    if !digits(pid_s) || !digits(seq_s) {
        return None;
    }
    Some((format!("{prefix}{pid_s}-{seq_s}"), pid_s.parse().ok()?))
}

/// Whether the process that built a lab still runs: its pid is alive and, when the lab
/// dir recorded its start time, that matches too (so a reused pid does not count).
fn owner_alive(pid: u32, dir: Option<&Path>) -> bool {
    if pid == std::process::id() {
        return true;
    }
    if !i32::try_from(pid).is_ok_and(cmd::pid_alive) {
        return false;
    }
    let recorded = dir
        .and_then(|d| std::fs::read_to_string(d.join(OWNER_FILE)).ok())
        .and_then(|s| s.split_whitespace().nth(1)?.parse::<u64>().ok());
    match recorded {
        Some(start) => cmd::start_time(pid) == Some(start),
        None => true,
    }
}

#[cfg(test)]
mod tests {
    use super::parse_run;

    #[test]
    fn parses_run_names() {
        assert_eq!(
            parse_run("vmlat-", "vmlat-42-3-vr1", true),
            Some(("vmlat-42-3".into(), 42))
        );
        assert_eq!(
            parse_run("vmlat-", "vmlat-42-3-sw", true),
            Some(("vmlat-42-3".into(), 42))
        );
        assert_eq!(
            parse_run("vmlat-", "vmlat-42-3", false),
            Some(("vmlat-42-3".into(), 42))
        );
        assert_eq!(parse_run("vmlat-", "vmlat-42-3", true), None);
        assert_eq!(parse_run("vmlat-", "vmlat-bundle-x", false), None);
        assert_eq!(parse_run("vmlat-", "other-42-3-vr1", true), None);
        assert_eq!(parse_run("vmlat-", "vmlat-42-3-vr1", false), None);
    }
}

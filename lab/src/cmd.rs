//! Running the system tools the lab is made of (`ip`, `sysctl`, ...) and the namespace
//! chores shared by teardown and the stale-lab sweeper.
//!
//! We shell out instead of speaking netlink: `ip` is what a person would type to reproduce
//! or inspect a lab, and every failing command lands verbatim in the error.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::thread;
use std::time::{Duration, Instant};

use rustix::process::{kill_process, Pid, Signal};

use crate::LabError;

/// Where `ip netns add` puts its namespaces.
pub(crate) const NETNS_DIR: &str = "/run/netns";

/// The tools every lab needs, with the package to install when one is missing.
const TOOLS: &[(&str, &str)] = &[
    ("ip", "iproute2"),
    ("bridge", "iproute2"),
    ("keepalived", "keepalived"),
    ("sysctl", "procps"),
    ("mount", "mount"),
    ("sh", "dash"),
];

/// Fails with the package to install if a required tool (or `taskset`, when CPUs are pinned) is missing.
pub(crate) fn check_tools(need_taskset: bool) -> Result<(), LabError> {
    let extra: &[(&'static str, &'static str)] = if need_taskset {
        &[("taskset", "util-linux")]
    } else {
        &[]
    };
    require(TOOLS)?;
    require(extra)
}

/// Fails naming the package to install for the first of `tools` (tool, Debian package)
/// that is not on PATH.
pub(crate) fn require(tools: &[(&'static str, &'static str)]) -> Result<(), LabError> {
    match tools.iter().find(|(tool, _)| !on_path(tool)) {
        Some(&(tool, package)) => Err(LabError::ToolMissing { tool, package }),
        None => Ok(()),
    }
}

/// Whether `tool` is on PATH.
pub(crate) fn on_path(tool: &str) -> bool {
    find_on_path(tool).is_some()
}

/// The first executable called `tool` on PATH: what Command would run.
pub(crate) fn find_on_path(tool: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(tool))
        .find(|p| p.is_file())
}

/// A command line as a person would paste it into a shell.
pub(crate) fn describe(cmd: &Command) -> String {
    let mut s = cmd.get_program().to_string_lossy().into_owned();
    for a in cmd.get_args() {
        s.push(' ');
        s.push_str(&a.to_string_lossy());
    }
    s
}

/// Runs `program args...`, returning stdout; a non-zero exit becomes an error carrying stderr.
pub(crate) fn run(program: &str, args: &[&str]) -> Result<String, LabError> {
    let mut cmd = Command::new(program);
    cmd.args(args);
    run_cmd(&mut cmd)
}

/// Runs a prepared command, returning stdout.
pub(crate) fn run_cmd(cmd: &mut Command) -> Result<String, LabError> {
    let out = cmd.output().map_err(|source| LabError::Spawn {
        command: describe(cmd),
        source,
    })?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(LabError::Command {
            command: describe(cmd),
            status: out.status.to_string(),
            stderr: String::from_utf8_lossy(&out.stderr).trim().to_owned(),
        })
    }
}

/// Sets sysctls inside a namespace; /proc/sys/net shows the netns of the reader, so this has
/// to run in the namespace rather than write /proc from here.
pub(crate) fn ns_sysctl(ns: &str, settings: &[&str]) -> Result<(), LabError> {
    let mut args = vec!["netns", "exec", ns, "sysctl", "-q", "-w"];
    args.extend_from_slice(settings);
    run("ip", &args).map(drop)
}

/// Turns IPv6 off in namespace `ns`, for its devices and those created later.
pub(crate) fn ns_disable_ipv6(ns: &str) -> Result<(), LabError> {
    ns_sysctl(
        ns,
        &[
            "net.ipv6.conf.all.disable_ipv6=1",
            "net.ipv6.conf.default.disable_ipv6=1",
        ],
    )
}

/// Creates the named network namespace `ns`, its loopback up.
pub(crate) fn add_netns(ns: &str) -> Result<(), LabError> {
    run("ip", &["netns", "add", ns])?;
    run("ip", &["-n", ns, "link", "set", "lo", "up"]).map(drop)
}

/// Sets a bridge port forwarding (`true`) or disabled (`false`) in the switch namespace
/// `ns`. A disabled port drops everything it receives while its carrier stays up.
pub(crate) fn set_port_state(ns: &str, port: &str, forwarding: bool) -> Result<(), LabError> {
    // Bridge port states: 0 disabled, 3 forwarding.
    let state = if forwarding { "3" } else { "0" };
    run(
        "bridge",
        &["-n", ns, "link", "set", "dev", port, "state", state],
    )
    .map(drop)
}

/// Whether a named namespace exists.
pub(crate) fn netns_exists(ns: &str) -> bool {
    Path::new(NETNS_DIR).join(ns).exists()
}

/// Pids of the processes whose network namespace is `ns` (never our own).
fn netns_pids(ns: &str) -> Result<Vec<i32>, LabError> {
    let out = run("ip", &["netns", "pids", ns])?;
    let me = i32::try_from(std::process::id()).unwrap_or(-1);
    Ok(out
        .split_whitespace()
        .filter_map(|p| p.parse().ok())
        .filter(|&p| p != me)
        .collect())
}

/// Whether a pid still names a process that has not exited (zombies count as gone).
pub(crate) fn pid_alive(pid: i32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        // The state is the first field after the parenthesised comm, which may itself hold spaces.
        Ok(stat) => stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().next())
            .is_some_and(|state| state != "Z" && state != "X"),
        Err(_) => false,
    }
}

/// Sends a signal, ignoring processes that are already gone.
pub(crate) fn signal(pid: i32, sig: Signal) {
    if let Some(pid) = Pid::from_raw(pid) {
        // ESRCH (already gone) is the only expected failure, and then there is nothing to do.
        let _ = kill_process(pid, sig);
    }
}

/// Sends a signal to a whole process group, ignoring a group that is already gone.
pub(crate) fn signal_group(pgid: u32, sig: Signal) {
    if let Some(pgid) = i32::try_from(pgid).ok().and_then(Pid::from_raw) {
        // ESRCH (already gone) is the only expected failure, and then there is nothing to do.
        let _ = rustix::process::kill_process_group(pgid, sig);
    }
}

/// Ends every process in `ns`: SIGTERM, up to `grace` to exit, then SIGKILL.
/// A stopped process (SIGSTOP, freezer) cannot act on SIGTERM, so it gets SIGCONT too.
pub(crate) fn kill_netns_processes(ns: &str, grace: Duration) -> Result<(), LabError> {
    if !netns_exists(ns) {
        return Ok(());
    }
    let pids = netns_pids(ns)?;
    for &p in &pids {
        signal(p, Signal::TERM);
        signal(p, Signal::CONT);
    }
    wait_until(grace, || pids.iter().all(|&p| !pid_alive(p)));
    for p in netns_pids(ns)? {
        signal(p, Signal::KILL);
    }
    Ok(())
}

/// Deletes a named namespace if it exists. Its interfaces go with it once no process (or
/// open socket, e.g. a capture) holds it any more.
pub(crate) fn delete_netns(ns: &str) -> Result<(), LabError> {
    if netns_exists(ns) {
        run("ip", &["netns", "del", ns])?;
    }
    Ok(())
}

/// Polls `done` every 20 ms until it holds or `timeout` passes; returns whether it held.
pub(crate) fn wait_until(timeout: Duration, mut done: impl FnMut() -> bool) -> bool {
    let start = Instant::now();
    loop {
        if done() {
            return true;
        }
        if start.elapsed() >= timeout {
            return false;
        }
        thread::sleep(Duration::from_millis(20));
    }
}

/// The last `n` lines of a log file, for error messages.
pub(crate) fn tail(path: &Path, n: usize) -> String {
    match std::fs::read_to_string(path) {
        Ok(text) => {
            let lines: Vec<&str> = text.lines().collect();
            let from = lines.len().saturating_sub(n);
            lines.get(from..).unwrap_or_default().join("\n")
        }
        Err(e) => format!("(cannot read {}: {e})", path.display()),
    }
}

/// A process's start time (clock ticks since boot, field 22 of /proc/PID/stat): with the
/// pid, it names a process uniquely even after the pid is reused.
pub(crate) fn start_time(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the comm start at field 3 (state); starttime is field 22.
    let (_, rest) = stat.rsplit_once(')')?;
    rest.split_whitespace().nth(22 - 3)?.parse().ok()
}

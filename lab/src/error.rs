//! The lab's error type: every variant names the problem and, where there is one, the fix.

use std::path::PathBuf;
use std::time::Duration;

/// Everything that can go wrong while building, using or tearing down a lab.
#[derive(Debug, thiserror::Error)]
pub enum LabError {
    /// Network namespaces, veth pairs and bind mounts all need CAP_SYS_ADMIN/CAP_NET_ADMIN.
    #[error(
        "not root: the lab needs root to create network namespaces (run as root, e.g. with sudo)"
    )]
    NotRoot,

    /// A program the lab runs is not on PATH.
    #[error("{tool} not found on PATH: apt-get install {package}")]
    ToolMissing {
        /// The missing program.
        tool: &'static str,
        /// The Debian package that ships it.
        package: &'static str,
    },

    /// The kernel has no IPv6 (booted with ipv6.disable=1) but the spec asked for it.
    #[error("IPv6 is not available in this kernel (/proc/sys/net/ipv6 is missing): use an IPv4 lab or boot without ipv6.disable=1")]
    NoIpv6,

    /// The spec cannot be turned into a working keepalived setup.
    #[error("invalid lab spec: {0}")]
    InvalidSpec(String),

    /// A command ran and failed.
    #[error("`{command}` failed ({status}): {stderr}")]
    Command {
        /// The command line, for copy-pasting.
        command: String,
        /// Its exit status.
        status: String,
        /// What it printed on stderr.
        stderr: String,
    },

    /// A command could not even be started.
    #[error("cannot run `{command}`: {source}")]
    Spawn {
        /// The command line.
        command: String,
        /// Why exec failed.
        source: std::io::Error,
    },

    /// A file or directory of the lab could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },

    /// Every candidate name for this run already exists (leftovers of dead runs whose pids were reused).
    #[error("no unused lab name for pid {pid}: remove leftovers with vmlat_lab::sweep_stale(\"{prefix}\") or `ip netns del`")]
    NamesExhausted {
        /// This process's pid, which names its labs.
        pid: u32,
        /// The lab name prefix.
        prefix: &'static str,
    },

    /// The caller asked about a router that is not in the spec.
    #[error("no router named {0:?} in this lab")]
    UnknownRouter(String),

    /// keepalived exited on its own; its log usually says why (config error, missing interface...).
    #[error("keepalived on {router} exited ({status}); last lines of {log}:\n{log_tail}")]
    KeepalivedExited {
        /// The router whose keepalived died.
        router: String,
        /// Its exit status.
        status: String,
        /// The log file.
        log: PathBuf,
        /// The last lines of that log.
        log_tail: String,
    },

    /// keepalived runs but its VRRP child never wrote the -r pid file.
    #[error("keepalived on {router} did not write its VRRP pid file {pid_file} within {timeout:?}; last lines of {log}:\n{log_tail}")]
    NoVrrpChild {
        /// The router.
        router: String,
        /// The -r pid file that stayed empty.
        pid_file: PathBuf,
        /// How long we waited.
        timeout: Duration,
        /// The log file.
        log: PathBuf,
        /// The last lines of that log.
        log_tail: String,
    },

    /// The expected master never took the VIP, or never alone.
    #[error("{router} did not become master within {timeout:?}: {state}; last lines of {log}:\n{log_tail}")]
    NoMaster {
        /// The router that should have become master.
        router: String,
        /// How long we waited.
        timeout: Duration,
        /// What was wrong at the deadline ("it never held 10.10.0.100", "vr2 also held ...").
        state: String,
        /// The log file.
        log: PathBuf,
        /// The last lines of that log.
        log_tail: String,
    },

    /// The process is exiting on a signal and the lab registry has been torn down: no new labs
    /// (or the caller's stop flag ended a guest's boot, see `Lab::build_until`).
    #[error("lab build interrupted: this process is shutting down on a signal and has torn its labs down")]
    Interrupted,

    /// The SIGINT/SIGTERM cleanup handler could not be installed.
    #[error("cannot install the signal cleanup handler: {0}")]
    Signal(std::io::Error),

    /// Teardown did what it could but something was left behind; each entry says what and how to remove it.
    #[error("teardown of lab {run_id} left things behind:\n  {}", problems.join("\n  "))]
    Teardown {
        /// The lab's run id (the prefix of its namespace names).
        run_id: String,
        /// One line per leftover.
        problems: Vec<String>,
    },

    /// A fault could not be set up or injected; the message says what the machine lacks.
    #[error("{fault} fault: {problem}")]
    Fault {
        /// The fault kind (`freezer`, `io-stall`...).
        fault: &'static str,
        /// What went wrong, and the fix where there is one.
        problem: String,
    },

    /// Undoing a fault, or removing what it built, failed; the message says how to finish by hand.
    #[error("cleaning up {what}: {problem}")]
    Cleanup {
        /// What was being undone ("the freezer cgroup /sys/fs/cgroup/freezer/...").
        what: String,
        /// What failed.
        problem: String,
    },

    /// A Vagrant machine of the lab is not running, or `vagrant`/`virsh` failed about it.
    #[error("Vagrant machine {machine}: {problem}")]
    Vagrant {
        /// The machine (`lb1`).
        machine: String,
        /// What went wrong, and the fix.
        problem: String,
    },

    /// A QEMU guest of the lab failed to boot, answer or do what it was asked.
    #[error("guest {router}: {problem}")]
    Guest {
        /// The guest's router name, or `(image)` for the guest image.
        router: String,
        /// What went wrong, and the fix where there is one.
        problem: String,
    },
}

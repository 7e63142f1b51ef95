//! Helpers shared by the live (root) tests of the `vmlat` binary.

// Each test binary uses a different part of it.
#![allow(dead_code)]

use std::path::Path;
use std::process::{Command, Output};

/// True when the test can run: root. Off CI a non-root run skips with a printed
/// reason; on CI (where root is given) a missing privilege fails the test loudly.
pub fn have_root(test: &str) -> bool {
    if rustix::process::geteuid().is_root() {
        return true;
    }
    if std::env::var_os("CI").is_some() {
        panic!("{test} needs root, and CI runs as root: something is wrong with this runner");
    }
    eprintln!("SKIPPED {test}: needs root (network namespaces, perf tracepoints, libpcap)");
    false
}

pub fn vmlat() -> Command {
    Command::new(env!("CARGO_BIN_EXE_vmlat"))
}

/// Runs vmlat with `args`, returning its output.
pub fn run_vmlat(args: &[&str]) -> Output {
    vmlat().args(args).output().expect("vmlat runs")
}

pub fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// `vmlat inspect DIR --json`, parsed.
pub fn inspect(dir: &Path) -> serde_json::Value {
    let out = run_vmlat(&["inspect", dir.to_str().unwrap(), "--json"]);
    assert!(out.status.success(), "inspect failed: {}", stderr(&out));
    serde_json::from_slice(&out.stdout).expect("inspect prints JSON")
}

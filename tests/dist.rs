//! What ships beside the binary: the systemd unit and the Prometheus alert rules, checked
//! by the tools their users run (`systemd-analyze verify`, `promtool`). Needs no root.

use std::path::Path;
use std::process::Command;

/// `tool` is installed, or (printed) it is not; in CI, where scripts/setup.sh installs
/// it, its absence fails the test.
fn have(tool: &str, package: &str) -> bool {
    if Command::new(tool).arg("--version").output().is_ok() {
        return true;
    }
    if std::env::var_os("CI").is_some() {
        panic!("{tool} missing in CI: scripts/setup.sh installs {package}");
    }
    eprintln!("SKIPPED: no {tool} (apt-get install {package})");
    false
}

fn check(command: &mut Command) {
    let out = command.output().expect("runs");
    assert!(
        out.status.success(),
        "{command:?}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn the_systemd_unit_passes_systemd_analyze_verify() {
    if !have("systemd-analyze", "systemd") {
        return;
    }
    // Verbatim but for the binary, which the package installs as /usr/bin/vmlat and
    // verify wants to find.
    let unit = std::fs::read_to_string("dist/vmlat-watch.service").unwrap();
    assert!(unit.contains("ExecStart=/usr/bin/vmlat watch -o /var/lib/vmlat "));
    let dir = tempfile::tempdir().unwrap();
    let copy = dir.path().join("vmlat-watch.service");
    std::fs::write(
        &copy,
        unit.replace("/usr/bin/vmlat", env!("CARGO_BIN_EXE_vmlat")),
    )
    .unwrap();
    check(Command::new("systemd-analyze").arg("verify").arg(&copy));
}

#[test]
fn the_units_default_flags_are_watchs_own() {
    // The flags the unit passes by default, as systemd splits them, are all known to
    // `vmlat watch` (clap rejects an unknown one before anything starts).
    let unit = std::fs::read_to_string("dist/vmlat-watch.service").unwrap();
    let help = Command::new(env!("CARGO_BIN_EXE_vmlat"))
        .args(["watch", "--help"])
        .output()
        .unwrap();
    let help = String::from_utf8_lossy(&help.stdout);
    let defaults: Vec<&str> = unit
        .lines()
        .filter_map(|l| l.strip_prefix("Environment=VMLAT_"))
        .flat_map(|l| l.split_once('=').map(|(_, v)| v.trim_matches('"')))
        .flat_map(str::split_whitespace)
        .filter(|w| w.starts_with('-'))
        .collect();
    assert!(defaults.len() >= 4, "{defaults:?}");
    for flag in defaults {
        assert!(help.contains(flag), "`vmlat watch` has no {flag}");
    }
}

#[test]
fn the_alert_rules_pass_promtool_and_their_own_tests() {
    if !have("promtool", "prometheus") {
        return;
    }
    let rules = Path::new("dist/prometheus");
    check(
        Command::new("promtool")
            .args(["check", "rules", "vmlat-alerts.yml"])
            .current_dir(rules),
    );
    check(
        Command::new("promtool")
            .args(["test", "rules", "vmlat-alerts.test.yml"])
            .current_dir(rules),
    );
}

//! `vmlat analyze` errors that need no privileges: each is one message naming the file and
//! the fix, with exit code 2.

mod common;

use std::path::PathBuf;

use common::{run_vmlat, stderr};

fn fixture(name: &str) -> String {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("analyzer/tests/fixtures")
        .join(name)
        .display()
        .to_string()
}

#[test]
fn a_missing_keepalived_log_is_exit_2_naming_it_and_the_fix() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("keepalived.log");
    let missing = missing.to_str().unwrap();
    let pcap = fixture("sigstop.pcap");
    let out = dir.path().join("out");
    let out = out.to_str().unwrap();
    for (command, output) in [
        ("analyze", None),
        ("plot", Some("-o")),
        ("report", Some("-o")),
        ("export", Some("--perfetto")),
    ] {
        let mut args = vec![command, &pcap, "--keepalived-log", missing];
        if let Some(flag) = output {
            args.extend([flag, out]);
        }
        let o = run_vmlat(&args);
        let err = stderr(&o);
        assert_eq!(o.status.code(), Some(2), "{command}: {err}");
        assert!(
            err.contains(&format!("{missing}: cannot read this keepalived log")),
            "{command}: {err}"
        );
        assert!(err.contains("--keepalived-log takes"), "{command}: {err}");
        assert_eq!(err.lines().count(), 1, "{command}: one message: {err}");
        assert!(!err.contains("panicked"), "{command}: {err}");
        assert!(o.stdout.is_empty(), "{command}: nothing analyzed");
        assert!(
            !dir.path().join("out").exists(),
            "{command}: nothing written"
        );
    }
}

#[test]
fn a_keepalived_log_is_read_and_a_bad_offset_refused() {
    let log = fixture("keepalived-logs/console-vr1.log");
    let pcap = fixture("sigstop.pcap");
    let o = run_vmlat(&["analyze", &pcap, "--keepalived-log", &log, "--json"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let a: serde_json::Value = serde_json::from_slice(&o.stdout).expect("JSON");
    assert_eq!(a["keepalived_logs"][0]["keepalived"], 73, "{a:#}");
    // Another day than the capture: nothing in its incident's window.
    assert_eq!(a["keepalived_logs"][0]["attached"], 0, "{a:#}");

    let o = run_vmlat(&[
        "analyze",
        &pcap,
        "--keepalived-log",
        &log,
        "--log-utc-offset",
        "-05:00",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(text.contains("(2026-12-01 01:53:27"), "{text}");

    let o = run_vmlat(&["analyze", &pcap, "--log-utc-offset", "CET"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("+HH:MM"), "{}", stderr(&o));
}

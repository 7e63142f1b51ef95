//! `vmlat analyze` on a real recording: a namespace lab running keepalived, its VRRP
//! child stopped with SIGSTOP for 4 s while `vmlat record` runs. The analysis must
//! find exactly one critical incident, silent first at vr1's own interface, call it
//! app-stopped, name the SIGSTOP and the process that sent it (this test), and see the
//! backup take over and be preempted. Needs root (see `common::have_root`).

mod common;

use common::{have_root, record_sigstop_lab, run_vmlat, stderr};

#[test]
fn sigstop_of_the_vrrp_child_is_app_stopped() {
    if !have_root("sigstop_of_the_vrrp_child_is_app_stopped") {
        return;
    }
    let out_dir = tempfile::tempdir().unwrap();
    let bundle = out_dir.path().join("B");
    let (lab, vrrp) = record_sigstop_lab(&bundle);
    let vr1 = lab.router("vr1").unwrap();

    let out = run_vmlat(&["analyze", bundle.to_str().unwrap(), "--json"]);
    assert!(out.status.success(), "analyze failed: {}", stderr(&out));
    let a: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    let own = vr1.capture_point();
    let src = vr1.addr().to_string();
    // One stop, one incident, however many capture points saw the silence.
    let incidents = a["incidents"].as_array().unwrap();
    assert_eq!(incidents.len(), 1, "{:#}", a["incidents"]);
    let inc = &incidents[0];
    let text = serde_json::to_string_pretty(inc).unwrap();
    assert_eq!(inc["kind"], "silence", "{text}");
    assert_eq!(inc["src"], src.as_str(), "{text}");
    assert_eq!(
        inc["first_silent"],
        own.as_str(),
        "silent first at vr1's own NIC: {text}"
    );
    let duration = inc["duration_ms"].as_f64().unwrap();
    assert!(
        (4000.0..=5200.0).contains(&duration),
        "silence of {duration} ms: {text}"
    );
    assert_eq!(inc["critical"], true, "{text}");
    assert_eq!(inc["verdict"], "app-stopped", "{text}");
    let evidence: Vec<&str> = inc["evidence"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e.as_str())
        .collect();
    let has = |needle: &str| evidence.iter().any(|e| e.contains(needle));
    let me = std::process::id();
    assert!(
        has(&format!("SIGSTOP to {vrrp} from pid {me} ")),
        "the SIGSTOP and its sender (this test, pid {me}): {text}"
    );
    assert!(has(&format!("sender: keepalived pid {vrrp}")), "{text}");
    assert!(has("switched out in state T"), "{text}");
    let kinds: Vec<&str> = inc["failovers"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|t| t["kind"].as_str())
        .collect();
    assert_eq!(kinds, ["master-down", "preempted"], "{text}");
    // The hop table: vr1's own interface first, every point silent.
    let path = inc["path"].as_array().unwrap();
    assert_eq!(path[0]["capture"], own.as_str(), "{text}");
    assert!(path.iter().all(|r| r["silent"] == true), "{text}");
    let suspects = serde_json::to_string(&inc["suspects"]).unwrap();
    assert!(
        suspects.contains(&format!("SIGSTOP to keepalived {vrrp} from pid {me} ")),
        "the signal is a suspect too: {suspects}"
    );
    let context = &inc["context"];
    assert_eq!(
        context["sender"]["tid"],
        vrrp.as_raw_nonzero().get(),
        "{text}"
    );
    lab.teardown().expect("lab teardown");
}

//! `vmlat analyze` on bad input, without privileges: every unreadable input (and a
//! missing keepalived log) is one message naming the file and the fix, with exit code 2;
//! a capture cut short is analyzed up to the cut, which is reported; malformed packets
//! inside a good capture are counted by reason and skipped.

mod common;

use std::path::PathBuf;

use common::{run_vmlat, stderr, vmlat};

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

#[test]
fn every_unreadable_input_is_one_clear_error_and_exit_2_never_a_panic() {
    let dir = tempfile::tempdir().unwrap();
    let path = |name: &str| dir.path().join(name);
    let clean = std::fs::read(fixture("clean.pcap")).unwrap();
    let with_header = |offset: usize, value: u32| {
        let mut bytes = clean.clone();
        bytes[offset..offset + 4].copy_from_slice(&value.to_le_bytes());
        bytes
    };
    std::fs::write(path("empty.pcap"), b"").unwrap();
    std::fs::write(
        path("random.bin"),
        (0..4096u32)
            .map(|i| (i * 7919 % 251) as u8)
            .collect::<Vec<u8>>(),
    )
    .unwrap();
    std::fs::write(path("snaplen.pcap"), with_header(16, u32::MAX)).unwrap();
    std::fs::write(path("linktype.pcap"), with_header(20, 0xdead)).unwrap();
    std::fs::create_dir(path("notes")).unwrap();
    std::fs::write(path("notes/todo.txt"), "not a bundle").unwrap();
    std::fs::create_dir(path("future.vmlat")).unwrap();
    std::fs::write(
        path("future.vmlat/manifest.json"),
        r#"{"format_version": 99}"#,
    )
    .unwrap();
    std::fs::create_dir(path("ancient.vmlat")).unwrap();
    std::fs::write(
        path("ancient.vmlat/manifest.json"),
        r#"{"format_version": 0}"#,
    )
    .unwrap();
    for (input, says) in [
        ("empty.pcap", "is empty (0 bytes)"),
        ("random.bin", "is not a pcap or pcapng file"),
        (
            "snaplen.pcap",
            "claims a snapshot length of 4294967295 bytes",
        ),
        ("linktype.pcap", "link type 57005 is not supported"),
        ("notes", "not a vmlat bundle"),
        ("missing.pcap", "no such file or directory"),
        ("future.vmlat", "upgrade"),
        ("ancient.vmlat", "older than any vmlat wrote"),
    ] {
        let out = vmlat()
            .args(["analyze", path(input).to_str().unwrap()])
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{input}: {err}");
        assert!(out.stdout.is_empty(), "{input}: analyzed anyway");
        assert_eq!(err.lines().count(), 1, "{input}: one line, no panic: {err}");
        assert!(err.contains(says), "{input}: '{says}' missing in {err}");
    }
}

#[test]
fn a_capture_cut_short_is_analyzed_up_to_the_cut_and_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let clean = std::fs::read(fixture("sigstop.pcap")).unwrap();
    let cut = dir.path().join("cut.pcap");
    std::fs::write(&cut, &clean[..clean.len() - 7]).unwrap();
    let out = vmlat()
        .args(["analyze", cut.to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("torn tail: the last record is cut short"),
        "{text}"
    );
    assert!(
        text.contains("INCIDENT"),
        "the incident before the cut is found: {text}"
    );
}

/// The records of a classic pcap: (record header, frame).
fn pcap_records(file: &[u8]) -> Vec<([u8; 16], Vec<u8>)> {
    let mut out = Vec::new();
    let mut at = 24;
    while at + 16 <= file.len() {
        let header: [u8; 16] = file[at..at + 16].try_into().unwrap();
        let len = u32::from_le_bytes(header[8..12].try_into().unwrap()) as usize;
        out.push((header, file[at + 16..at + 16 + len].to_vec()));
        at += 16 + len;
    }
    out
}

#[test]
fn malformed_packets_inside_a_good_capture_are_counted_by_reason_reported_and_skipped() {
    let dir = tempfile::tempdir().unwrap();
    let clean = std::fs::read(fixture("sigstop.pcap")).unwrap();
    let mut records = pcap_records(&clean);
    // Three adverts broken three ways, the VRRP checksum (IP offset 14 + 20 + 6), the
    // VRRP version (a nibble no VRRP has), and a frame the snap length cut inside the
    // VRRP header (its record keeps the original length).
    let adverts: Vec<usize> = (0..records.len())
        .filter(|&i| records[i].1.get(14 + 9) == Some(&112))
        .collect();
    // The first two and the last: the silence in the middle stays what it was.
    assert!(adverts.len() > 5, "the fixture's adverts: {adverts:?}");
    let (sum, version, cut) = (adverts[0], adverts[1], adverts[adverts.len() - 1]);
    records[sum].1[14 + 20 + 6] ^= 0xff;
    records[version].1[14 + 20] = 0x71;
    records[cut].1.truncate(14 + 20 + 4);
    let cut_len = records[cut].1.len() as u32;
    records[cut].0[8..12].copy_from_slice(&cut_len.to_le_bytes());
    let mut broken = clean[..24].to_vec();
    for (header, frame) in &records {
        broken.extend_from_slice(header);
        broken.extend_from_slice(frame);
    }
    let path = dir.path().join("broken.pcap");
    std::fs::write(&path, &broken).unwrap();

    let analyze = |p: &std::path::Path| {
        let out = vmlat()
            .args(["analyze", p.to_str().unwrap()])
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let text = analyze(&path);
    let heartbeats = adverts.len() - 3;
    let ignored = records.len() - adverts.len();
    assert!(
        text.contains(&format!(
            "{} packets, {heartbeats} heartbeats, {ignored} ignored, 3 malformed",
            records.len()
        )),
        "{text}"
    );
    for reason in [
        "1 × bad VRRPv2 checksum",
        "1 × VRRP/CARP packet of an unknown version",
        "1 × VRRP/CARP packet cut short by the snap length",
    ] {
        assert!(text.contains(reason), "{reason}: {text}");
    }
    assert!(text.contains("3 malformed packets"), "{text}");
    // Skipped, not fatal: the incident of the clean capture is still found.
    let incident = |t: &str| {
        t.lines()
            .find(|l| l.starts_with("INCIDENT 1"))
            .map(str::to_owned)
    };
    let clean_text = analyze(std::path::Path::new(&fixture("sigstop.pcap")));
    assert!(incident(&text).is_some(), "{text}");
    assert_eq!(incident(&text), incident(&clean_text), "{text}");
}

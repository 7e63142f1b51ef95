//! keepalived's own log next to the evidence (`--keepalived-log`): the real logs of the
//! fixture run (`fixtures/keepalived-logs/`, keepalived 2.2.7, two routers) against a
//! capture generated to match that run's seconds: vr1's VRRP child stopped from 20:53:33.66
//! to 20:53:37.67 (vr2 master from 20:53:36), then vr1's link down from 20:53:42.67 (vr1
//! master again at 20:53:51). Each of the two incidents must get the lines of its own
//! window, from both routers' logs, and none of the other's.

mod support;

use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};

use support::{ethernet_ipv4, vrrp_message, write_pcap, NS, VRRP_GROUP};
use vmlat_analyzer::{analyze, report, Analysis, AnalyzeError, AnalyzeOptions, Incident};

const VR1: Ipv4Addr = Ipv4Addr::new(10, 77, 0, 1);
const VR2: Ipv4Addr = Ipv4Addr::new(10, 77, 0, 2);
/// 2026-11-30T20:53:00Z.
const MINUTE: i64 = 1_796_071_980 * NS;

/// 2026-11-30T20:53:`s`Z.
fn at(s: f64) -> i64 {
    MINUTE + (s * NS as f64).round() as i64
}

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/keepalived-logs")
        .join(name)
}

/// VRID 77 as the fixture run sent it: vr1 (150) every second but from 33.40 to 37.67
/// (stopped) and from 41.67 to 51.40 (link down), vr2 (100) master at 36.50 and 37.50.
fn capture(dir: &Path) -> PathBuf {
    let mut adverts: Vec<(f64, Ipv4Addr, u8)> = Vec::new();
    for s in [28.4, 29.4, 30.4, 31.4, 32.4, 33.4] {
        adverts.push((s, VR1, 150));
    }
    adverts.push((36.5, VR2, 100));
    adverts.push((37.5, VR2, 100));
    for s in [37.67, 38.67, 39.67, 40.67, 41.67, 51.4, 52.4, 53.4] {
        adverts.push((s, VR1, 150));
    }
    adverts.sort_by(|a, b| a.0.total_cmp(&b.0));
    let frames = adverts.iter().enumerate().map(|(n, &(s, src, priority))| {
        let message = vrrp_message(2, 77, priority, 1, src);
        (
            at(s),
            ethernet_ipv4(src, VRRP_GROUP, n as u16, 112, &message),
        )
    });
    let path = dir.join("vr77.pcap");
    write_pcap(&path, frames);
    path
}

fn run(dir: &Path, logs: Vec<PathBuf>) -> Analysis {
    let opts = AnalyzeOptions {
        keepalived_logs: logs,
        ..AnalyzeOptions::default()
    };
    match analyze(&[capture(dir)], &opts) {
        Ok(a) => a,
        Err(e) => panic!("{e}"),
    }
}

/// The lines of a console log fixture whose second is in `seconds` (read here without the
/// parser: `Mon Nov 30 20:53:SS 2026: message`).
fn console_lines(name: &str, seconds: std::ops::RangeInclusive<u32>) -> Vec<String> {
    let text = std::fs::read_to_string(fixture(name)).unwrap();
    text.lines()
        .filter(|l| {
            let second: u32 = l[17..19].parse().unwrap();
            l[11..17] == *"20:53:" && seconds.contains(&second)
        })
        .map(|l| format!("{name}: {}", &l[26..]))
        .collect()
}

fn texts(inc: &Incident) -> Vec<&str> {
    inc.keepalived_log.iter().map(|l| l.text.as_str()).collect()
}

#[test]
fn each_incident_gets_the_lines_of_its_window_from_both_routers() {
    let dir = tempfile::tempdir().unwrap();
    let a = run(
        dir.path(),
        vec![fixture("console-vr1.log"), fixture("console-vr2.log")],
    );
    assert_eq!(a.incidents.len(), 2, "{}", report::text::render(&a));
    let (stop, link) = (&a.incidents[0], &a.incidents[1]);

    // The stop: 33.40 → 37.67, window 32.40 → 38.67, so the whole seconds 32 to 38.
    assert_eq!((stop.start.0, stop.end.0), (at(33.4), at(37.67)));
    let mut want = console_lines("console-vr1.log", 32..=38);
    want.extend(console_lines("console-vr2.log", 32..=38));
    let mut got: Vec<String> = texts(stop).iter().map(|t| t.to_string()).collect();
    want.sort();
    got.sort();
    assert_eq!(got, want);
    let late = stop
        .keepalived_log
        .iter()
        .find(|l| l.event == "timer-late")
        .expect("vr1's late timer");
    assert_eq!(late.t.0, at(37.0));
    assert_eq!(
        late.text,
        "console-vr1.log: A thread timer expired 3.574975 seconds ago"
    );
    let master = stop
        .keepalived_log
        .iter()
        .find(|l| l.text == "console-vr2.log: (VI_77) Entering MASTER STATE")
        .expect("vr2 taking over");
    assert_eq!(
        (
            master.t.0,
            master.event.as_str(),
            master.instance.as_deref()
        ),
        (at(36.0), "state", Some("VI_77"))
    );
    assert!(stop.keepalived_log.windows(2).all(|w| w[0].t <= w[1].t));

    // The link: 41.67 → 51.40, window 40.67 → 52.40: seconds 40 to 52, not 37 nor 53.
    assert_eq!((link.start.0, link.end.0), (at(41.67), at(51.4)));
    let mut want = console_lines("console-vr1.log", 40..=52);
    want.extend(console_lines("console-vr2.log", 40..=52));
    let mut got: Vec<String> = texts(link).iter().map(|t| t.to_string()).collect();
    want.sort();
    got.sort();
    assert_eq!(got, want);
    assert!(texts(link).contains(&"console-vr1.log: (VI_77) Entering FAULT STATE"));
    assert!(texts(link).contains(&"console-vr2.log: (VI_77) Entering FAULT STATE"));
    assert!(!link.keepalived_log.iter().any(|l| l.event == "timer-late"));

    // What each log held.
    assert_eq!(a.keepalived_logs.len(), 2);
    let vr1 = &a.keepalived_logs[0];
    assert!(vr1.path.ends_with("console-vr1.log"));
    assert_eq!(
        (
            vr1.lines,
            vr1.keepalived,
            vr1.undated,
            vr1.foreign,
            vr1.truncated
        ),
        (73, 73, 0, 0, 0)
    );
    let attached = console_lines("console-vr1.log", 32..=38).len()
        + console_lines("console-vr1.log", 40..=52).len();
    assert_eq!(vr1.attached, attached as u64);
    assert_eq!(vr1.first.map(|t| t.0), Some(at(27.0)));
    assert_eq!(vr1.last.map(|t| t.0), Some(at(54.0)));

    let text = report::text::render(&a);
    assert!(text.contains("console-vr1.log  keepalived log: 73 lines, 73 of keepalived"));
    assert!(text
        .contains("  keepalived 20:53:36  console-vr2.log: (VI_77) Receive advertisement timeout"));
    let json = serde_json::to_value(&a).unwrap();
    assert_eq!(json["keepalived_logs"][1]["keepalived"], 56);
    assert_eq!(
        json["incidents"][0]["keepalived_log"][0]["t"],
        "2026-11-30T20:53:36.000000000Z"
    );
}

/// A whole-second line is in the window when any part of its second is; a precise line
/// only when its instant is.
#[test]
fn a_line_counts_by_its_resolution() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("mixed.log");
    std::fs::write(
        &log,
        "Mon Nov 30 20:53:31 2026: second 31, before the window\n\
         Mon Nov 30 20:53:32 2026: second 32, the window starts at 32.400\n\
         2026-11-30T20:53:32.399999+0000 vm Keepalived_vrrp[7]: 32.399999, just before\n\
         2026-11-30T20:53:32.400001+0000 vm Keepalived_vrrp[7]: 32.400001, just in\n\
         Nov 30 20:53:38 vm Keepalived_vrrp[7]: second 38, the window ends at 38.670\n\
         Mon Nov 30 20:53:39 2026: second 39, after\n\
         Nov 30 20:53:38 vm sshd[9]: another program\n\
         not a log line\n",
    )
    .unwrap();
    let a = run(dir.path(), vec![log]);
    assert_eq!(
        texts(&a.incidents[0]),
        [
            "mixed.log: second 32, the window starts at 32.400",
            "vm Keepalived_vrrp[7]: 32.400001, just in",
            "vm Keepalived_vrrp[7]: second 38, the window ends at 38.670",
        ]
    );
    assert!(a.incidents[1].keepalived_log.is_empty());
    let s = &a.keepalived_logs[0];
    assert_eq!(
        (s.lines, s.keepalived, s.attached, s.undated, s.foreign),
        (8, 6, 3, 1, 1)
    );
}

#[test]
fn a_missing_log_is_an_error_before_any_reading() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("no-such.log");
    let opts = AnalyzeOptions {
        keepalived_logs: vec![fixture("console-vr1.log"), missing.clone()],
        ..AnalyzeOptions::default()
    };
    let e = analyze(&[capture(dir.path())], &opts).unwrap_err();
    assert!(
        matches!(&e, AnalyzeError::KeepalivedLog { path, .. } if *path == missing),
        "{e}"
    );
    assert!(e.to_string().contains("--keepalived-log takes"), "{e}");
    let opts = AnalyzeOptions {
        keepalived_logs: vec![dir.path().to_path_buf()],
        ..AnalyzeOptions::default()
    };
    let e = analyze(&[capture(dir.path())], &opts).unwrap_err();
    assert!(e.to_string().contains("it is a directory"), "{e}");
}

#[test]
fn without_logs_nothing_changes() {
    let dir = tempfile::tempdir().unwrap();
    let a = run(dir.path(), Vec::new());
    assert!(a.keepalived_logs.is_empty());
    assert!(a.incidents.iter().all(|i| i.keepalived_log.is_empty()));
    let json = serde_json::to_value(&a).unwrap();
    assert!(json.get("keepalived_logs").is_none());
    assert!(json["incidents"][0].get("keepalived_log").is_none());
}

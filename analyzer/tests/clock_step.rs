//! A wall-clock step during a recording makes no fake silence and hides no real one:
//! the packets of a bundle are put on its monotonic time line with its clock anchors,
//! as its events are (`vmlat_analyzer::align`).
//!
//! The bundles are generated (`support::bundle`): NTP steps cannot be made on this
//! machine without disturbing its system clock, so the step is written into the
//! bundle as a recorder would have seen it. Its anchors pair monotonic with the stepped
//! realtime from the step on (realtime − monotonic jumps by the step), and its pcap
//! stamps jump with them. keepalived's VRRP child on `vr1` advertises VRID 51 every
//! second; its send cycles are in the event stream at the true times.

mod support;

use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};

use support::bundle::*;
use support::NS;
use vmlat_analyzer::{analyze, analyze_captures, Analysis, AnalyzeOptions, Gap};
use vmlat_bundle::Role;

const VRRP: i32 = 8557;
const MASTER: Ipv4Addr = Ipv4Addr::new(10, 10, 0, 1);
const CAPTURE: &str = "eth0@vr1";

fn s(x: f64) -> i64 {
    T0 + (x * NS as f64).round() as i64
}

/// `vr1` sending at `sends` (seconds), its wall clock stepped by `step` ns at `at` s,
/// written to `dir/vr1`.
fn recording(dir: &Path, sends: &[f64], at: f64, step: i64) -> PathBuf {
    let mut b = BundleBuilder::new("vr1", Role::Guest);
    b.push(task_info(8550, 1, "keepalived"));
    b.push(task_info(VRRP, 8550, "keepalived"));
    for &x in sends {
        for r in send_cycle(VRRP, s(x)) {
            b.push(r);
        }
    }
    let adverts: Vec<_> = sends.iter().map(|&x| (s(x), MASTER, 150)).collect();
    b.capture(CAPTURE, "eth0", &adverts);
    b.step_realtime(s(at), step);
    let path = dir.join("vr1");
    b.write(&path);
    path
}

fn analysis(inputs: &[PathBuf]) -> Analysis {
    let opts = AnalyzeOptions {
        keep_adverts: true,
        ..AnalyzeOptions::default()
    };
    analyze(inputs, &opts).unwrap()
}

/// The master's advert times at `vr1`, in seconds from T0.
fn advert_times(a: &Analysis) -> Vec<f64> {
    let stream = a
        .streams
        .iter()
        .find(|st| st.key.src == MASTER && st.key.group.capture == CAPTURE)
        .expect("the master's stream");
    a.adverts_of(&stream.key)
        .iter()
        .map(|ad| (ad.t.0 - T0) as f64 / NS as f64)
        .collect()
}

fn seconds(from: u32, to: u32) -> Vec<f64> {
    (from..=to).map(f64::from).collect()
}

fn gaps_of_master(a: &Analysis) -> Vec<&Gap> {
    a.gaps.iter().filter(|g| g.stream.src == MASTER).collect()
}

/// +3 s at t = 10 s while the master advertises every second for 20 s: no gap, and
/// every advert lands on its send (the events' time line).
#[test]
fn a_step_forward_makes_no_gap_on_generated_bundle() {
    let dir = tempfile::tempdir().unwrap();
    let sends = seconds(0, 19);
    let bundle = recording(dir.path(), &sends, 10.0, 3 * NS);
    let a = analysis(std::slice::from_ref(&bundle));
    assert!(a.gaps.is_empty(), "{:#?}", a.gaps);
    assert!(a.incidents.is_empty(), "{:#?}", a.incidents);
    assert!(a.failovers.is_empty(), "{:#?}", a.failovers);
    assert_eq!(advert_times(&a), sends);
    let b = &a.bundles[0];
    assert_eq!(b.alignment.max_step_ns, 3 * NS as u64);
    assert_eq!(b.started.0, s(-10.0));

    // The same pcap given alone keeps its stamps: the step shows as a 4 s silence.
    let pcap = bundle.join(format!("pcap/{CAPTURE}.pcap"));
    let alone = analyze_captures(&[pcap], &AnalyzeOptions::default()).unwrap();
    let gaps = gaps_of_master(&alone);
    assert_eq!(gaps.len(), 1, "{gaps:#?}");
    assert_eq!(gaps[0].duration_ms, 4000.0);
}

/// −3 s at t = 11 s, in the middle of a real 4 s silence (9 s → 13 s): the stamps read
/// one per second throughout, yet the silence is found, with its true length. Nothing
/// in the stamps tells where in the step's window it was (see `align`): it spans the
/// step, off by at most half the step.
#[test]
fn a_step_back_inside_a_silence_keeps_its_length_on_generated_bundle() {
    let dir = tempfile::tempdir().unwrap();
    let mut sends = seconds(0, 9);
    sends.extend(seconds(13, 19));
    let bundle = recording(dir.path(), &sends, 11.0, -3 * NS);
    let a = analysis(std::slice::from_ref(&bundle));
    let gaps = gaps_of_master(&a);
    assert_eq!(gaps.len(), 1, "{:#?}", a.gaps);
    let g = gaps[0];
    assert_eq!(g.duration_ms, 4000.0);
    assert!(g.start.0 <= s(10.0) && g.end.0 >= s(11.0), "{g:#?}");
    assert!((g.start.0 - s(9.0)).abs() <= 3 * NS / 2, "{g:#?}");
    assert_eq!(a.incidents.len(), 1, "{:#?}", a.incidents);
    assert_eq!(a.incidents[0].duration_ms, 4000.0);
    let times = advert_times(&a);
    assert_eq!(times.len(), sends.len());
    assert_eq!((times[0], times[times.len() - 1]), (0.0, 19.0));

    // Read as they are, the stamps hide it.
    let pcap = bundle.join(format!("pcap/{CAPTURE}.pcap"));
    let alone = analyze_captures(&[pcap], &AnalyzeOptions::default()).unwrap();
    assert!(gaps_of_master(&alone).is_empty(), "{:#?}", alone.gaps);
}

/// −3 s at t = 11.5 s inside a 5 s silence (9 s → 14 s): the stamps show a 2 s
/// interval, which only the silence explains; it is found exactly, every advert on
/// its send.
#[test]
fn a_step_back_inside_a_longer_silence_is_exact_on_generated_bundle() {
    let dir = tempfile::tempdir().unwrap();
    let mut sends = seconds(0, 9);
    sends.extend(seconds(14, 19));
    let bundle = recording(dir.path(), &sends, 11.5, -3 * NS);
    let a = analysis(std::slice::from_ref(&bundle));
    let gaps = gaps_of_master(&a);
    assert_eq!(gaps.len(), 1, "{:#?}", a.gaps);
    assert_eq!((gaps[0].start.0, gaps[0].end.0), (s(9.0), s(14.0)));
    assert_eq!(advert_times(&a), sends);
}

/// −3 s at t = 10.5 s while the master advertises every second: the stamps go back
/// between two adverts, which places the step; no gap, no advert moved.
#[test]
fn a_step_back_while_advertising_makes_no_gap_on_generated_bundle() {
    let dir = tempfile::tempdir().unwrap();
    let sends = seconds(0, 19);
    let bundle = recording(dir.path(), &sends, 10.5, -3 * NS);
    let a = analysis(std::slice::from_ref(&bundle));
    assert!(a.gaps.is_empty(), "{:#?}", a.gaps);
    assert!(a.incidents.is_empty(), "{:#?}", a.incidents);
    assert_eq!(advert_times(&a), sends);
}

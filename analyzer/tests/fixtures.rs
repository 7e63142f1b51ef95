//! The analyzer against captures of real keepalived 2.2.7 in network namespaces (made
//! by `fixtures/make-fixtures.sh`). Expected values were checked against tcpdump's own
//! decoding of the same files (`tcpdump -r FILE -nn -v --nano`).

use std::collections::BTreeSet;
use std::net::IpAddr;
use std::path::PathBuf;

use vmlat_analyzer::{
    analyze_captures, report, Analysis, AnalyzeOptions, FailoverKind, IncidentKind, Protocol,
    Stream, Verdict,
};

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

fn analyze(names: &[&str]) -> Analysis {
    let inputs: Vec<PathBuf> = names.iter().map(|n| fixture(n)).collect();
    analyze_captures(&inputs, &AnalyzeOptions::default()).unwrap()
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

/// What must be the same whichever way a capture point saw the sigstop run:
/// streams (VRID, source, version, priority, adverts), gaps (source, start, end,
/// critical) and failovers (from, to, kind).
type Shape = (
    BTreeSet<(u16, IpAddr, Option<u8>, Option<u8>, u64)>,
    Vec<(IpAddr, i64, i64, bool)>,
    Vec<(IpAddr, IpAddr, FailoverKind)>,
);

/// What a test pins of a stream: VRID, source, version, priority and advert count.
fn stream_summary(s: &Stream) -> (u16, IpAddr, Option<u8>, Option<u8>, u64) {
    (
        s.key.group.vrid,
        s.key.src,
        s.version,
        s.priority,
        s.adverts,
    )
}

fn shape(a: &Analysis, capture: &str) -> Shape {
    let streams = a
        .streams
        .iter()
        .filter(|s| s.key.group.capture == capture)
        .map(stream_summary)
        .collect();
    let gaps = a
        .gaps
        .iter()
        .filter(|g| g.stream.group.capture == capture)
        .map(|g| (g.stream.src, g.start.0, g.end.0, g.critical))
        .collect();
    let failovers = a
        .failovers
        .iter()
        .filter(|f| f.group.capture == capture)
        .map(|f| (f.from, f.to, f.kind))
        .collect();
    (streams, gaps, failovers)
}

#[test]
fn sigstop_one_critical_gap_master_down_then_preempted_back() {
    let a = analyze(&["sigstop.pcap"]);
    let input = &a.inputs[0];
    assert_eq!(
        (
            input.format.as_str(),
            input.packets,
            input.heartbeats,
            input.ignored,
            input.malformed
        ),
        ("pcap", 23, 8, 15, 0)
    );
    assert_eq!(input.captures, vec!["sigstop.pcap"]);
    assert!(!input.torn_tail);

    assert_eq!(a.streams.len(), 2);
    let master = &a.streams[0];
    assert_eq!(
        (
            master.key.group.vrid,
            master.key.src,
            master.key.group.protocol
        ),
        (51, ip("10.10.0.1"), Protocol::Vrrp)
    );
    assert_eq!(
        (
            master.version,
            master.priority,
            master.adverts,
            master.advert_interval_ms
        ),
        (Some(2), Some(150), 7, Some(1000.0))
    );
    let stats = master.interval_ms.unwrap();
    assert!((1000.0..1001.0).contains(&stats.p50), "{stats:?}");
    assert_eq!(stats.max, 4530.294);
    let backup = &a.streams[1];
    assert_eq!(
        (backup.key.src, backup.priority, backup.adverts),
        (ip("10.10.0.2"), Some(100), 1)
    );

    assert_eq!(a.gaps.len(), 1);
    let gap = &a.gaps[0];
    assert_eq!(gap.stream.src, ip("10.10.0.1"));
    assert_eq!(gap.start.rfc3339(), "2026-11-22T12:49:33.557595873Z");
    assert_eq!(gap.end.rfc3339(), "2026-11-22T12:49:38.087889538Z");
    assert_eq!(gap.duration_ms, 4530.294);
    assert!(gap.critical);
    // 3 × 1 s + (256 − 100)/256 s, from the backup seen.
    assert_eq!(gap.critical_after_ms, Some(3609.375));
    assert!(gap
        .critical_basis
        .as_deref()
        .unwrap()
        .contains("backup 10.10.0.2 (priority 100)"));
    assert_eq!(
        (gap.prev.ip_id, gap.next.map(|n| n.ip_id)),
        (Some(6), Some(Some(7)))
    );
    // One silence, one incident, which owns the gap and both failovers.
    assert_eq!(a.incidents.len(), 1);
    let inc = &a.incidents[0];
    assert_eq!((inc.kind, gap.incident), (IncidentKind::Silence, inc.id));
    assert_eq!(inc.verdict, Verdict::Inconclusive);
    assert_eq!(inc.failovers.len(), 2);
    let kinds: Vec<_> = gap.takeovers.iter().map(|t| (t.to, t.kind)).collect();
    assert_eq!(
        kinds,
        vec![
            (ip("10.10.0.2"), FailoverKind::MasterDown),
            (ip("10.10.0.1"), FailoverKind::Preempted)
        ]
    );

    let failovers: Vec<_> = a
        .failovers
        .iter()
        .map(|f| (f.at.rfc3339(), f.from, f.to, f.kind))
        .collect();
    assert_eq!(
        failovers,
        vec![
            (
                "2026-11-22T12:49:37.167727022Z".to_string(),
                ip("10.10.0.1"),
                ip("10.10.0.2"),
                FailoverKind::MasterDown
            ),
            (
                "2026-11-22T12:49:38.087889538Z".to_string(),
                ip("10.10.0.2"),
                ip("10.10.0.1"),
                FailoverKind::Preempted
            ),
        ]
    );
    assert!(a.split_brains.is_empty());
}

#[test]
fn clean_run_has_no_gaps_and_decodes_vrrp3_over_ipv4() {
    let a = analyze(&["clean.pcap"]);
    assert!(a.gaps.is_empty() && a.failovers.is_empty() && a.split_brains.is_empty());
    let streams: Vec<_> = a.streams.iter().map(stream_summary).collect();
    assert_eq!(
        streams,
        vec![
            (51, ip("10.10.0.1"), Some(2), Some(150), 8),
            (52, ip("10.10.0.1"), Some(3), Some(150), 8)
        ]
    );
    for s in &a.streams {
        assert_eq!(s.advert_interval_ms, Some(1000.0));
        assert!(s.interval_ms.unwrap().max < 1001.0);
    }
    assert_eq!(a.malformed_packets, 0);
}

#[test]
fn resignation_is_a_resigned_failover_and_no_gap() {
    let a = analyze(&["resign.pcap"]);
    assert!(a.gaps.is_empty());
    assert_eq!(a.failovers.len(), 1);
    let f = &a.failovers[0];
    assert_eq!(
        (f.from, f.to, f.kind),
        (ip("10.10.0.1"), ip("10.10.0.2"), FailoverKind::Resigned)
    );
    assert_eq!((f.from_priority, f.to_priority), (Some(0), Some(100)));
    assert_eq!(f.from_last_seen.rfc3339(), "2026-11-22T12:50:09.695805520Z");
    assert_eq!(f.at.rfc3339(), "2026-11-22T12:50:10.307459344Z");
    let old = &a.streams[0];
    assert_eq!(
        (old.key.src, old.priority, old.priority_min, old.adverts),
        (ip("10.10.0.1"), Some(150), Some(0), 4)
    );
}

#[test]
fn any_sll2_each_interface_is_a_capture_point_with_the_ethernet_shape() {
    let a = analyze(&["sigstop.pcap", "any-sll2.pcap"]);
    let sll2 = a
        .inputs
        .iter()
        .find(|i| i.file.ends_with("any-sll2.pcap"))
        .unwrap();
    assert_eq!(
        sll2.captures,
        vec![
            "any-sll2.pcap:if2",
            "any-sll2.pcap:if5",
            "any-sll2.pcap:if7"
        ]
    );
    let (ether_streams, ether_gaps, ether_failovers) = shape(&a, "sigstop.pcap");
    for capture in &sll2.captures {
        let (streams, gaps, failovers) = shape(&a, capture);
        assert_eq!(streams, ether_streams, "{capture}");
        assert_eq!(failovers, ether_failovers, "{capture}");
        assert_eq!(gaps.len(), 1, "{capture}");
        // The same packets, seen on another interface a few µs apart.
        let (src, start, end, critical) = gaps[0];
        let (esrc, estart, eend, ecritical) = ether_gaps[0];
        assert_eq!((src, critical), (esrc, ecritical));
        assert!(
            (start - estart).abs() < 100_000 && (end - eend).abs() < 100_000,
            "{capture}"
        );
    }
}

#[test]
fn vlan_and_qinq_copies_decode_the_same_streams_on_their_vlan() {
    let a = analyze(&["sigstop.pcap", "sigstop-vlan.pcap", "sigstop-qinq.pcap"]);
    let ether = shape(&a, "sigstop.pcap");
    for capture in ["sigstop-vlan.pcap", "sigstop-qinq.pcap"] {
        assert_eq!(shape(&a, capture), ether, "{capture}");
        assert!(a
            .streams
            .iter()
            .filter(|s| s.key.group.capture == capture)
            .all(|s| s.key.group.vlan == Some(100)));
    }
}

#[test]
fn ipv6_vrrp3_has_the_ethernet_shape() {
    let a = analyze(&["sigstop.pcap", "v3-ipv6.pcap"]);
    let (streams, gaps, failovers) = shape(&a, "v3-ipv6.pcap");
    let r1 = ip("fe80::ff:fe00:1");
    let r2 = ip("fe80::ff:fe00:2");
    assert_eq!(
        streams,
        BTreeSet::from([
            (51, r1, Some(3), Some(150), 7),
            (51, r2, Some(3), Some(100), 1)
        ])
    );
    assert_eq!(
        failovers,
        vec![
            (r1, r2, FailoverKind::MasterDown),
            (r2, r1, FailoverKind::Preempted)
        ]
    );
    assert_eq!(gaps.len(), 1);
    assert!(gaps[0].3);
    let v6 = a.streams.iter().find(|s| s.key.src == r1).unwrap();
    assert_eq!(
        (v6.dst, v6.advert_interval_ms),
        (ip("ff02::12"), Some(1000.0))
    );
}

#[test]
fn torn_tail_stops_and_is_counted() {
    let dir = tempfile::tempdir().unwrap();
    let bytes = std::fs::read(fixture("sigstop.pcap")).unwrap();
    let torn = dir.path().join("torn.pcap");
    std::fs::write(&torn, &bytes[..bytes.len() - 10]).unwrap();
    let a = analyze_captures(&[torn], &AnalyzeOptions::default()).unwrap();
    let input = &a.inputs[0];
    assert!(input.torn_tail);
    assert_eq!(input.packets, 22);
    assert!(input.stop_reason.as_deref().unwrap().contains("torn tail"));
}

#[test]
fn reports_render() {
    let a = analyze(&["sigstop.pcap"]);
    let text = report::text::render(&a);
    assert!(text.contains("INCIDENT 1   silence"), "{text}");
    assert!(
        text.contains(
            "2026-11-22 12:49:33.557595873 → 12:49:38.087889538 UTC   4.530 s   CRITICAL"
        ),
        "{text}"
    );
    assert!(
        text.contains("10.10.0.2 took over at +3.610 s (sigstop.pcap); preempted back at +4.530 s"),
        "{text}"
    );
    assert!(text.contains("verdict  inconclusive"));
    let mut json = Vec::new();
    report::json::write(&a, &mut json).unwrap();
    let v: serde_json::Value = serde_json::from_slice(&json).unwrap();
    assert_eq!(v["format_version"], 3);
    assert_eq!(v["streams"][0]["capture"], "sigstop.pcap");
    assert_eq!(v["streams"][0]["vrid"], 51);
    assert_eq!(v["streams"][0]["protocol"], "vrrp");
    assert_eq!(v["streams"][0]["interval_ms"]["max"], 4530.294);
    assert_eq!(v["gaps"][0]["start"], "2026-11-22T12:49:33.557595873Z");
    assert_eq!(v["gaps"][0]["incident"], 1);
    assert_eq!(v["incidents"][0]["kind"], "silence");
    assert_eq!(v["incidents"][0]["verdict"], "inconclusive");
    assert_eq!(v["incidents"][0]["critical"], true);
    assert_eq!(v["failovers"][0]["kind"], "master-down");
    assert_eq!(v["failovers"][1]["kind"], "preempted");
}

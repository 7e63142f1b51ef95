//! Property tests on generated VRRP streams: the analyzer finds exactly the gaps and
//! failovers a scenario injected, whatever the versions, intervals, priorities, faults
//! and how several VRIDs interleave in one capture. And no input, however broken,
//! makes it panic.

mod support;

use std::io::Write;

use proptest::prelude::*;
use support::{ExpectedFailover, ExpectedGap, Fault, Pair, Scenario, NS};
use vmlat_analyzer::decode::{decode, LinkType};
use vmlat_analyzer::{analyze_captures, AnalyzeOptions};

fn fault() -> impl Strategy<Value = Fault> {
    prop_oneof![
        (0.0..1.0f64).prop_map(Fault::ShortStall),
        (0.0..1.0f64).prop_map(Fault::LongStall),
        (0.0..1.0f64).prop_map(Fault::Resign),
    ]
}

fn pair(vrid: u8) -> impl Strategy<Value = Pair> {
    (
        prop::bool::ANY,
        1u16..=3,
        50u16..=300,
        101u8..=254,
        1u8..=100,
    )
        .prop_map(
            move |(v3, secs, centis, master_priority, backup_priority)| Pair {
                vrid,
                version: if v3 { 3 } else { 2 },
                interval: if v3 { centis } else { secs },
                master_priority,
                backup_priority,
                start: 1_700_000_000 * NS + i64::from(vrid) * 1_234_567,
            },
        )
}

fn scenarios() -> impl Strategy<Value = Vec<Scenario>> {
    prop::collection::vec(
        (
            pair(0),
            prop::collection::vec(fault(), 0..5),
            3u32..8,
            any::<u64>(),
        ),
        1..4,
    )
    .prop_map(|specs| {
        specs
            .into_iter()
            .enumerate()
            .map(|(n, (pair, faults, stable, seed))| {
                let pair = Pair {
                    vrid: 10 + n as u8,
                    ..pair
                };
                support::scenario(pair, &faults, stable, seed)
            })
            .collect()
    })
}

#[test]
fn a_fixed_scenario_has_what_it_injected() {
    let pair = Pair {
        vrid: 7,
        version: 2,
        interval: 1,
        master_priority: 150,
        backup_priority: 100,
        start: 1_700_000_000 * NS,
    };
    let s = support::scenario(
        pair,
        &[
            Fault::ShortStall(0.5),
            Fault::LongStall(0.5),
            Fault::Resign(0.5),
        ],
        5,
        42,
    );
    assert_eq!(
        s.gaps.iter().map(|g| g.4).collect::<Vec<_>>(),
        vec![false, true]
    );
    assert_eq!(
        s.failovers.iter().map(|f| f.4).collect::<Vec<_>>(),
        vec!["master-down", "preempted", "resigned", "preempted"]
    );
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("fixed.pcap");
    support::write_pcap(&path, support::frames(std::slice::from_ref(&s), 0));
    let a = analyze_captures(&[path], &AnalyzeOptions::default()).unwrap();
    assert_eq!((a.gaps.len(), a.failovers.len()), (2, 4));
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn finds_exactly_the_injected_gaps_and_failovers(scenarios in scenarios()) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("generated.pcap");
        support::write_pcap(&path, support::frames(&scenarios, 3));
        let a = analyze_captures(&[path], &AnalyzeOptions::default()).unwrap();

        let mut expected_gaps: Vec<ExpectedGap> = scenarios.iter().flat_map(|s| s.gaps.clone()).collect();
        expected_gaps.sort_by_key(|g| (g.2, g.0));
        // A VRID whose scenario ends before the others' is silent until the file ends:
        // an open gap, to the file's last packet, once it passed the master-down interval.
        let file_end = a.streams.iter().map(|s| s.last).max().unwrap();
        for g in a.gaps.iter().filter(|g| g.open) {
            prop_assert!(g.end >= file_end, "{:?} ends before the last advert {:?}", g, file_end);
            prop_assert!(g.duration_ms >= g.critical_after_ms.unwrap_or(g.threshold_ms), "{:?}", g);
        }
        let gaps: Vec<ExpectedGap> = a.gaps.iter().filter(|g| !g.open).map(|g| {
            let src = match g.stream.src { std::net::IpAddr::V4(v4) => v4, other => panic!("{other}") };
            (g.stream.group.vrid, src, g.start.0, g.end.0, g.critical)
        }).collect();
        prop_assert_eq!(gaps, expected_gaps);

        let mut expected_failovers: Vec<ExpectedFailover> = scenarios.iter().flat_map(|s| s.failovers.clone()).collect();
        expected_failovers.sort_by_key(|f| (f.1, f.0));
        let failovers: Vec<ExpectedFailover> = a.failovers.iter().map(|f| {
            let v4 = |ip: std::net::IpAddr| match ip { std::net::IpAddr::V4(v4) => v4, other => panic!("{other}") };
            (f.group.vrid, f.at.0, v4(f.from), v4(f.to), f.kind.name())
        }).collect();
        prop_assert_eq!(failovers, expected_failovers);
        prop_assert!(a.split_brains.is_empty());
        prop_assert_eq!(a.malformed_packets, 0);
    }

    #[test]
    fn arbitrary_frames_never_panic(frame in prop::collection::vec(any::<u8>(), 0..200), dlt in prop::sample::select(vec![0u32, 1, 12, 14, 101, 108, 113, 276])) {
        let link = LinkType::from_dlt(dlt).unwrap();
        let _ = decode(link, 0, &frame, &[5405, 3784, 9999]);
    }

    #[test]
    fn mutated_heartbeats_never_panic(
        flips in prop::collection::vec((0usize..80, any::<u8>()), 1..6),
        cut in 0usize..90,
    ) {
        // Real frames with a few bytes changed reach deeper than random bytes do.
        let message = support::vrrp_message(3, 7, 100, 100, std::net::Ipv4Addr::new(10, 0, 0, 1));
        let mut frame = support::ethernet_ipv4(std::net::Ipv4Addr::new(10, 0, 0, 1), support::VRRP_GROUP, 1, 112, &message);
        for (at, byte) in flips {
            if let Some(b) = frame.get_mut(at) {
                *b = byte;
            }
        }
        frame.truncate(cut);
        let _ = decode(LinkType::Ethernet, 0, &frame, &[]);
    }

    #[test]
    fn arbitrary_files_never_panic(
        magic in prop::sample::select(vec![
            vec![0xd4u8, 0xc3, 0xb2, 0xa1], vec![0x4d, 0x3c, 0xb2, 0xa1], vec![0xa1, 0xb2, 0xc3, 0xd4],
            vec![0x0a, 0x0d, 0x0d, 0x0a], vec![],
        ]),
        body in prop::collection::vec(any::<u8>(), 0..600),
    ) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("random.pcap");
        let mut file = std::fs::File::create(&path).unwrap();
        file.write_all(&magic).unwrap();
        file.write_all(&body).unwrap();
        drop(file);
        let _ = analyze_captures(&[path], &AnalyzeOptions::default());
    }
}

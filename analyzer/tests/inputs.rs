//! Inputs other than a plain pcap: pcapng with several interfaces and timestamp
//! resolutions, bundle directories, and the errors for what cannot be read.

mod support;

use std::borrow::Cow;
use std::path::{Path, PathBuf};
use std::time::Duration;

use pcap_file::pcap::PcapReader;
use pcap_file::pcapng::blocks::enhanced_packet::EnhancedPacketBlock;
use pcap_file::pcapng::blocks::interface_description::{
    InterfaceDescriptionBlock, InterfaceDescriptionOption,
};
use pcap_file::pcapng::PcapNgWriter;
use pcap_file::DataLink;
use vmlat_analyzer::{analyze_captures, AnalyzeError, AnalyzeOptions, FailoverKind};
use vmlat_bundle::{CaptureInfo, Losses, Manifest, RecordedSet, Role, Status, FORMAT_VERSION};

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

/// The packets of a fixture as (ns since the epoch, frame).
fn packets(name: &str) -> Vec<(u64, Vec<u8>)> {
    let mut reader = PcapReader::new(std::fs::File::open(fixture(name)).unwrap()).unwrap();
    let mut out = Vec::new();
    while let Some(p) = reader.next_packet() {
        let p = p.unwrap();
        out.push((p.timestamp.as_nanos() as u64, p.data.into_owned()));
    }
    out
}

fn idb(linktype: DataLink, name: &str, tsresol: u8) -> InterfaceDescriptionBlock<'static> {
    InterfaceDescriptionBlock {
        linktype,
        snaplen: 262144,
        options: vec![
            InterfaceDescriptionOption::IfName(Cow::Owned(name.to_string())),
            InterfaceDescriptionOption::IfTsResol(tsresol),
        ],
    }
}

/// The sigstop packets twice: as Ethernet frames on `eth0` (ns resolution), and as raw
/// IP on `raw0` (µs resolution, pcapng's default unit, given explicitly).
fn write_two_interface_pcapng(path: &Path) {
    let mut writer = PcapNgWriter::new(std::fs::File::create(path).unwrap()).unwrap();
    writer
        .write_pcapng_block(idb(DataLink::ETHERNET, "eth0", 9))
        .unwrap();
    writer
        .write_pcapng_block(idb(DataLink::RAW, "raw0", 6))
        .unwrap();
    for (t, frame) in packets("sigstop.pcap") {
        for (interface_id, ticks, data) in [
            (0, t, &frame[..]),
            (1, t / 1000, frame.get(14..).unwrap_or_default()),
        ] {
            // pcap-file writes the Duration's nanoseconds as the raw tick count.
            let block = EnhancedPacketBlock {
                interface_id,
                timestamp: Duration::from_nanos(ticks),
                original_len: data.len() as u32,
                data: Cow::Borrowed(data),
                options: vec![],
            };
            writer.write_pcapng_block(block).unwrap();
        }
    }
}

#[test]
fn pcapng_interfaces_are_capture_points_with_their_own_resolution() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("two.pcapng");
    write_two_interface_pcapng(&path);
    let a = analyze_captures(std::slice::from_ref(&path), &AnalyzeOptions::default()).unwrap();
    let input = &a.inputs[0];
    assert_eq!(input.format, "pcapng");
    assert_eq!(input.captures, vec!["two.pcapng:eth0", "two.pcapng:raw0"]);
    assert_eq!(
        (input.packets, input.heartbeats, input.malformed),
        (46, 16, 15)
    );
    assert_eq!(
        input
            .malformed_reasons
            .get("raw IP packet is neither IPv4 nor IPv6"),
        Some(&15)
    );
    let gaps: Vec<_> = a
        .gaps
        .iter()
        .map(|g| {
            (
                g.stream.group.capture.as_str(),
                g.start.0 / 1000,
                g.end.0 / 1000,
                g.critical,
            )
        })
        .collect();
    assert_eq!(gaps.len(), 2);
    assert_eq!(
        (gaps[0].1, gaps[0].2, gaps[0].3),
        (gaps[1].1, gaps[1].2, gaps[1].3)
    );
    let eth0 = a
        .gaps
        .iter()
        .find(|g| g.stream.group.capture == "two.pcapng:eth0")
        .unwrap();
    assert_eq!(eth0.start.rfc3339(), "2026-11-22T12:49:33.557595873Z");
    let raw0 = a
        .gaps
        .iter()
        .find(|g| g.stream.group.capture == "two.pcapng:raw0")
        .unwrap();
    assert_eq!(raw0.start.rfc3339(), "2026-11-22T12:49:33.557595000Z");
    assert_eq!(
        a.failovers
            .iter()
            .filter(|f| f.kind == FailoverKind::MasterDown)
            .count(),
        2
    );
}

fn manifest(captures: Vec<CaptureInfo>) -> Manifest {
    Manifest {
        format_version: FORMAT_VERSION,
        vmlat_version: "test".into(),
        hostname: "vr1".into(),
        role: Role::Guest,
        kernel: "6.18".into(),
        arch: "x86_64".into(),
        cpus: 2,
        boot_id: "b".into(),
        command_line: vec![],
        started_realtime_ns: 0,
        started_monotonic_ns: 0,
        stopped_realtime_ns: None,
        stopped_monotonic_ns: None,
        status: Status::Complete,
        recorded: RecordedSet {
            captures,
            ..RecordedSet::default()
        },
        losses: Losses::default(),
    }
}

#[test]
fn bundle_pcaps_take_their_manifest_names_and_unlisted_ones_their_file_names() {
    let dir = tempfile::tempdir().unwrap();
    let bundle = dir.path().join("vr1");
    std::fs::create_dir_all(bundle.join("pcap")).unwrap();
    std::fs::copy(fixture("sigstop.pcap"), bundle.join("pcap/eth0.pcap")).unwrap();
    std::fs::copy(fixture("clean.pcap"), bundle.join("pcap/late.pcap")).unwrap();
    manifest(vec![CaptureInfo {
        name: "eth0@vr1".into(),
        interface: "eth0".into(),
        netns: None,
        filter: "vrrp".into(),
        file: "pcap/eth0.pcap".into(),
        linktype: 1,
        packets: 23,
        mac: None,
        probes_sent: None,
    }])
    .store(&bundle)
    .unwrap();
    let a = analyze_captures(std::slice::from_ref(&bundle), &AnalyzeOptions::default()).unwrap();
    let captures: Vec<_> = a.inputs.iter().map(|i| i.captures.clone()).collect();
    assert_eq!(
        captures,
        vec![vec!["eth0@vr1".to_string()], vec!["late.pcap".to_string()]]
    );
    assert!(a
        .inputs
        .iter()
        .all(|i| i.input == bundle.display().to_string()));
    assert_eq!(a.gaps.len(), 1);
    assert_eq!(a.gaps[0].stream.group.capture, "eth0@vr1");
}

#[test]
fn unreadable_inputs_are_one_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let opts = AnalyzeOptions::default();

    let missing = dir.path().join("missing.pcap");
    let e = analyze_captures(std::slice::from_ref(&missing), &opts).unwrap_err();
    assert!(matches!(e, AnalyzeError::NotFound { .. }), "{e}");
    assert!(e.to_string().contains("missing.pcap"));

    let text = dir.path().join("notes.txt");
    std::fs::write(&text, "hello world").unwrap();
    let e = analyze_captures(std::slice::from_ref(&text), &opts).unwrap_err();
    assert!(matches!(e, AnalyzeError::NotACapture { .. }), "{e}");
    assert!(
        e.to_string()
            .contains("notes.txt is not a pcap or pcapng file"),
        "{e}"
    );

    let e = analyze_captures(&[dir.path().to_path_buf()], &opts).unwrap_err();
    assert!(matches!(e, AnalyzeError::NotABundle { .. }), "{e}");

    let mut radiotap = std::fs::read(fixture("clean.pcap")).unwrap();
    radiotap[20..24].copy_from_slice(&127u32.to_le_bytes());
    let wifi = dir.path().join("wifi.pcap");
    std::fs::write(&wifi, radiotap).unwrap();
    let e = analyze_captures(std::slice::from_ref(&wifi), &opts).unwrap_err();
    assert!(
        matches!(e, AnalyzeError::UnsupportedLinkType { linktype: 127, .. }),
        "{e}"
    );

    // A good file before a bad one: nothing is read before every input resolves.
    let e = analyze_captures(&[fixture("clean.pcap"), missing], &opts).unwrap_err();
    assert!(matches!(e, AnalyzeError::NotFound { .. }));

    // A file that holds nothing is not a quiet network.
    let empty = dir.path().join("empty.pcap");
    std::fs::write(&empty, b"").unwrap();
    let e = analyze_captures(&[empty], &opts).unwrap_err();
    assert!(
        e.to_string()
            .contains("empty.pcap is not a pcap or pcapng file (it is empty (0 bytes))"),
        "{e}"
    );

    let mut huge = std::fs::read(fixture("clean.pcap")).unwrap();
    huge[16..20].copy_from_slice(&u32::MAX.to_le_bytes());
    let absurd = dir.path().join("absurd.pcap");
    std::fs::write(&absurd, huge).unwrap();
    let e = analyze_captures(&[absurd], &opts).unwrap_err();
    assert!(
        e.to_string()
            .contains("claims a snapshot length of 4294967295 bytes"),
        "{e}"
    );
}

#[test]
fn heartbeat_port_syntax() {
    use vmlat_analyzer::HeartbeatPort;
    assert_eq!("udp:694".parse::<HeartbeatPort>(), Ok(HeartbeatPort(694)));
    assert!("tcp:694".parse::<HeartbeatPort>().is_err());
    assert!("udp:0".parse::<HeartbeatPort>().is_err());
    assert!("udp:70000".parse::<HeartbeatPort>().is_err());
    let opts = AnalyzeOptions {
        heartbeats: vec![HeartbeatPort(694), HeartbeatPort(3784)],
        ..AnalyzeOptions::default()
    };
    assert_eq!(opts.udp_ports(), vec![694, 3784, 5405]);
}

#[test]
fn a_unicast_loss_toward_one_peer_is_its_own_incident() {
    // keepalived with two unicast peers sends each advert twice, once to each. The
    // adverts toward 10.10.0.3 stop for 6 s while those toward 10.10.0.2 go on: one
    // stream per peer, so the loss shows (one stream per source would hide it).
    use std::net::Ipv4Addr;
    let (master, p2, p3) = (
        Ipv4Addr::new(10, 10, 0, 1),
        Ipv4Addr::new(10, 10, 0, 2),
        Ipv4Addr::new(10, 10, 0, 3),
    );
    let t0 = 1_700_000_000_000_000_000i64;
    let mut frames = Vec::new();
    for k in 0..12i64 {
        let t = t0 + k * 1_000_000_000;
        let m = support::vrrp_message(2, 51, 150, 1, master);
        frames.push((t, support::ethernet_ipv4(master, p2, 2 * k as u16, 112, &m)));
        if !(4..=8).contains(&k) {
            let frame = support::ethernet_ipv4(master, p3, 2 * k as u16 + 1, 112, &m);
            frames.push((t + 100_000, frame));
        }
    }
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("unicast.pcap");
    support::write_pcap(&path, frames);
    let a = analyze_captures(&[path], &AnalyzeOptions::default()).unwrap();
    let peers: Vec<_> = a.streams.iter().map(|s| s.key.peer).collect();
    assert_eq!(peers, [Some(p2.into()), Some(p3.into())]);
    assert_eq!(a.incidents.len(), 1, "{:#?}", a.incidents);
    let inc = &a.incidents[0];
    assert_eq!((inc.src, inc.dst), (master.into(), Some(p3.into())));
    assert!(
        (inc.duration_ms - 6000.0).abs() < 1.0,
        "{}",
        inc.duration_ms
    );
    assert!(
        a.failovers.is_empty(),
        "one router is no failover: {:?}",
        a.failovers
    );
}

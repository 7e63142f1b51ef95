//! Ethernet, VLAN and IP decoding: vmlat's decoders (`vmlat_analyzer::decode::{link, ip}`)
//! against etherparse's `LaxSlicedPacket`, on the same frames in the same run.
//!
//! ```text
//! cargo build --release -p vmlat-analyzer --example throughput --example decode_compare
//! target/release/examples/throughput generate /tmp/big.pcap 1000000
//! taskset -c 0 target/release/examples/decode_compare /tmp/big.pcap 9
//! ```
//!
//! Both take every frame of a classic Ethernet pcap, already in memory, to what the
//! heartbeat decoders need of it (addresses, protocol after AH, TTL, IPv4 identification
//! and checksum, fragment or not, the payload and whether the snap length cut it, the
//! innermost VLAN), in alternating rounds; it prints each round's nanoseconds per frame,
//! the medians, and how many frames the two read differently (0 is the point: same
//! answer, then compare the time). `docs/decoding.md` says what the figures decided.

use std::hint::black_box;
use std::net::IpAddr;
use std::time::Instant;

use etherparse::{LaxLinkExtSlice, LaxNetSlice, LaxSlicedPacket};
use vmlat_analyzer::decode::ip;
use vmlat_analyzer::decode::link::{self, LinkType, Network};

/// What both decoders must agree on, per frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Fields {
    src: IpAddr,
    dst: IpAddr,
    protocol: u8,
    ttl: u8,
    id: Option<u16>,
    checksum: Option<u16>,
    fragment: bool,
    payload_len: usize,
    truncated: bool,
    vlan: Option<u16>,
}

fn vmlat(frame: &[u8]) -> Option<Fields> {
    let link = link::decode(LinkType::Ethernet, frame).ok()?;
    let p = match link.network {
        Network::Ipv4 => ip::ipv4(link.payload).ok()?,
        Network::Ipv6 => ip::ipv6(link.payload).ok()?,
        Network::Other => return None,
    };
    Some(Fields {
        src: p.src,
        dst: p.dst,
        protocol: p.protocol,
        ttl: p.ttl,
        id: p.id,
        checksum: p.header_checksum,
        fragment: p.fragment,
        payload_len: p.payload.len(),
        truncated: p.truncated,
        vlan: link.vlan,
    })
}

fn etherparse(frame: &[u8]) -> Option<Fields> {
    let packet = LaxSlicedPacket::from_ethernet(frame).ok()?;
    let vlan = packet.link_exts.iter().rev().find_map(|e| match e {
        LaxLinkExtSlice::Vlan(v) => Some(v.vlan_identifier().value()),
        _ => None,
    });
    match packet.net? {
        LaxNetSlice::Ipv4(v4) => {
            let h = v4.header();
            let payload = v4.payload();
            let fragment = payload.fragmented;
            Some(Fields {
                src: IpAddr::V4(h.source_addr()),
                dst: IpAddr::V4(h.destination_addr()),
                protocol: payload.ip_number.0,
                ttl: h.ttl(),
                id: Some(h.identification()),
                checksum: Some(h.header_checksum()),
                fragment,
                payload_len: payload.payload.len(),
                truncated: payload.incomplete,
                vlan,
            })
        }
        LaxNetSlice::Ipv6(v6) => {
            let h = v6.header();
            let payload = v6.payload();
            Some(Fields {
                src: IpAddr::V6(h.source_addr()),
                dst: IpAddr::V6(h.destination_addr()),
                protocol: payload.ip_number.0,
                ttl: h.hop_limit(),
                id: None,
                checksum: None,
                fragment: payload.fragmented,
                payload_len: payload.payload.len(),
                truncated: payload.incomplete,
                vlan,
            })
        }
        LaxNetSlice::Arp(_) => None,
    }
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (Some(path), rounds) = (args.first(), args.get(1).and_then(|r| r.parse().ok())) else {
        eprintln!("usage: decode_compare CAPTURE.pcap [ROUNDS]");
        std::process::exit(2);
    };
    let rounds: usize = rounds.unwrap_or(9);
    let file = std::fs::File::open(path).unwrap_or_else(|e| {
        eprintln!("decode_compare: {path}: {e}");
        std::process::exit(2);
    });
    let mut reader = pcap_file::pcap::PcapReader::new(file).unwrap_or_else(|e| {
        eprintln!("decode_compare: {path}: not a classic pcap: {e}");
        std::process::exit(2);
    });
    let mut frames: Vec<Vec<u8>> = Vec::new();
    while let Some(packet) = reader.next_packet() {
        match packet {
            Ok(p) => frames.push(p.data.into_owned()),
            Err(e) => {
                eprintln!("decode_compare: {path}: {e}");
                std::process::exit(2);
            }
        }
    }
    let differ = frames.iter().filter(|f| vmlat(f) != etherparse(f)).count();
    println!("{} frames, {differ} read differently", frames.len());
    let time = |decode: fn(&[u8]) -> Option<Fields>| {
        let start = Instant::now();
        let mut n = 0usize;
        for f in &frames {
            if black_box(decode(black_box(f))).is_some() {
                n += 1;
            }
        }
        black_box(n);
        start.elapsed().as_nanos() as f64 / frames.len() as f64
    };
    let (mut ours, mut theirs) = (Vec::new(), Vec::new());
    for round in 0..rounds {
        // Alternate which goes first, so that neither always finds the caches warm.
        let (a, b) = if round % 2 == 0 {
            let a = time(vmlat);
            (a, time(etherparse))
        } else {
            let b = time(etherparse);
            (time(vmlat), b)
        };
        println!("round {round}: vmlat {a:.1} ns/frame, etherparse {b:.1} ns/frame");
        ours.push(a);
        theirs.push(b);
    }
    let median = |v: &mut Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    let (a, b) = (median(&mut ours), median(&mut theirs));
    println!(
        "median: vmlat {a:.1} ns/frame, etherparse {b:.1} ns/frame ({:.2}x)",
        b / a
    );
}

//! Test support shared by the integration tests and the throughput example: heartbeat
//! frames built with etherparse (an encoder independent of the decoder under test),
//! pcap files, and generated VRRP scenarios that know which gaps and failovers they
//! contain.

// Each test binary and the example use a different part of it.
#![allow(dead_code)]

use std::net::Ipv4Addr;
use std::path::Path;

use etherparse::{IpHeaders, IpNumber, Ipv4Extensions, Ipv4Header, PacketBuilder};
use pcap_file::pcap::{PcapHeader, PcapPacket, PcapWriter};
use pcap_file::{DataLink, TsResolution};
use vmlat_analyzer::decode::ip::sum_words;

pub const NS: i64 = 1_000_000_000;
pub const VRRP_GROUP: Ipv4Addr = Ipv4Addr::new(224, 0, 0, 18);

/// A VRRP advertisement message (v2: interval in seconds, v3: in centiseconds) with its
/// checksum, over IPv4.
pub fn vrrp_message(version: u8, vrid: u8, priority: u8, interval: u16, src: Ipv4Addr) -> Vec<u8> {
    let mut m = vec![version << 4 | 1, vrid, priority, 1];
    if version == 2 {
        m.extend_from_slice(&[0, interval as u8, 0, 0]);
    } else {
        m.extend_from_slice(&(interval & 0x0fff).to_be_bytes());
        m.extend_from_slice(&[0, 0]);
    }
    m.extend_from_slice(&[10, 10, 0, 100]);
    if version == 2 {
        m.extend_from_slice(&[0; 8]);
    }
    let mut sum = sum_words(&m);
    if version == 3 {
        sum += sum_words(&src.octets()) + sum_words(&VRRP_GROUP.octets()) + 112 + m.len() as u64;
    }
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    m[6..8].copy_from_slice(&(!(sum as u16)).to_be_bytes());
    m
}

/// An Ethernet frame carrying `payload` over IPv4 with TTL 255.
pub fn ethernet_ipv4(
    src: Ipv4Addr,
    dst: Ipv4Addr,
    ip_id: u16,
    protocol: u8,
    payload: &[u8],
) -> Vec<u8> {
    let mut header =
        Ipv4Header::new(0, 255, IpNumber(protocol), src.octets(), dst.octets()).unwrap();
    header.identification = ip_id;
    let builder =
        PacketBuilder::ethernet2([2, 0, 0, 0, 0, src.octets()[3]], [1, 0, 0x5e, 0, 0, 0x12])
            .ip(IpHeaders::Ipv4(header, Ipv4Extensions::default()));
    let mut frame = Vec::with_capacity(builder.size(payload.len()));
    builder
        .write(&mut frame, IpNumber(protocol), payload)
        .unwrap();
    frame
}

/// An ARP request, the kind of noise a capture carries between adverts.
pub fn arp_frame() -> Vec<u8> {
    let mut f = vec![0xff; 6];
    f.extend_from_slice(&[2, 0, 0, 0, 0, 1, 0x08, 0x06, 0, 1, 8, 0, 6, 4, 0, 1]);
    f.extend_from_slice(&[0; 20]);
    f
}

/// Writes a nanosecond Ethernet pcap.
pub fn write_pcap(path: &Path, frames: impl IntoIterator<Item = (i64, Vec<u8>)>) {
    let header = PcapHeader {
        datalink: DataLink::ETHERNET,
        ts_resolution: TsResolution::NanoSecond,
        ..PcapHeader::default()
    };
    let file = std::io::BufWriter::new(std::fs::File::create(path).unwrap());
    let mut writer = PcapWriter::with_header(file, header).unwrap();
    for (t, frame) in frames {
        let ts = std::time::Duration::from_nanos(t as u64);
        writer
            .write_packet(&PcapPacket::new(ts, frame.len() as u32, &frame))
            .unwrap();
    }
}

/// One advert of a scenario.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Advert {
    pub t: i64,
    pub vrid: u8,
    pub src: Ipv4Addr,
    pub priority: u8,
    pub version: u8,
    /// Seconds (v2) or centiseconds (v3).
    pub interval: u16,
}

/// A gap a scenario contains: (VRID, source, start, end, critical).
pub type ExpectedGap = (u16, Ipv4Addr, i64, i64, bool);
/// A failover a scenario contains: (VRID, at, from, to, kind name).
pub type ExpectedFailover = (u16, i64, Ipv4Addr, Ipv4Addr, &'static str);

/// A fault injected into a VRRP pair.
#[derive(Debug, Clone, Copy)]
pub enum Fault {
    /// The master is silent for a fraction of the way between 1.6 intervals and just
    /// under its own master-down interval: a gap nobody acts on.
    ShortStall(f64),
    /// The master is silent for longer than the backup's master-down interval (by 0.2 to
    /// 3 intervals, as the fraction says): the backup takes over, the master preempts
    /// it back when it returns.
    LongStall(f64),
    /// The master sends priority 0, the backup takes over after its skew time, the
    /// master returns (3 to 10 intervals later, as the fraction says) and preempts.
    Resign(f64),
}

/// A generated scenario for one VRID, with what the analyzer must find.
#[derive(Debug, Clone, Default)]
pub struct Scenario {
    pub adverts: Vec<Advert>,
    pub gaps: Vec<ExpectedGap>,
    pub failovers: Vec<ExpectedFailover>,
}

/// Parameters of one VRRP pair.
#[derive(Debug, Clone, Copy)]
pub struct Pair {
    pub vrid: u8,
    pub version: u8,
    /// Seconds (v2) or centiseconds (v3).
    pub interval: u16,
    pub master_priority: u8,
    pub backup_priority: u8,
    pub start: i64,
}

impl Pair {
    pub fn interval_ns(&self) -> i64 {
        if self.version == 2 {
            i64::from(self.interval) * NS
        } else {
            i64::from(self.interval) * NS / 100
        }
    }

    /// RFC 3768/5798 master-down interval for a router of `priority`.
    pub fn master_down_ns(&self, priority: u8) -> i64 {
        let i = self.interval_ns();
        let skew = self.skew_ns(priority);
        3 * i + skew
    }

    pub fn skew_ns(&self, priority: u8) -> i64 {
        let p = 256 - i64::from(priority);
        if self.version == 2 {
            p * NS / 256
        } else {
            p * self.interval_ns() / 256
        }
    }
}

/// Builds a scenario: the master advertises with a jitter of ±2 % of the interval,
/// each fault is followed by `stable` intervals of calm.
pub fn scenario(pair: Pair, faults: &[Fault], stable: u32, seed: u64) -> Scenario {
    let master = Ipv4Addr::new(10, 10, 0, 1);
    let backup = Ipv4Addr::new(10, 10, 0, 2);
    let vrid = u16::from(pair.vrid);
    let i = pair.interval_ns();
    let mut rng = seed | 1;
    let mut jitter = move || {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        (rng % 41) as i64 * i / 1000 - i / 50
    };
    let mut s = Scenario::default();
    let advert = |t, src, priority| Advert {
        t,
        vrid: pair.vrid,
        src,
        priority,
        version: pair.version,
        interval: pair.interval,
    };
    // `t` is when the master's next advert is due, `last` when it sent its latest.
    let mut t = pair.start;
    let mut last = t;
    let calm = |s: &mut Scenario, t: &mut i64, last: &mut i64, jitter: &mut dyn FnMut() -> i64| {
        for _ in 0..stable {
            s.adverts.push(advert(*t, master, pair.master_priority));
            *last = *t;
            *t += i + jitter();
        }
    };
    calm(&mut s, &mut t, &mut last, &mut jitter);
    for fault in faults {
        let back = match *fault {
            Fault::ShortStall(f) => {
                let own = pair.master_down_ns(pair.master_priority);
                let back = last + 16 * i / 10 + ((own - i / 10 - 16 * i / 10) as f64 * f) as i64;
                s.gaps.push((vrid, master, last, back, false));
                back
            }
            Fault::LongStall(f) => {
                let takeover = last + pair.master_down_ns(pair.backup_priority);
                let back = takeover + i / 5 + ((3 * i) as f64 * f) as i64;
                backup_until(
                    &mut s,
                    advert(takeover, backup, pair.backup_priority),
                    back,
                    i,
                );
                s.gaps.push((vrid, master, last, back, true));
                s.failovers
                    .push((vrid, takeover, master, backup, "master-down"));
                s.failovers.push((vrid, back, backup, master, "preempted"));
                back
            }
            Fault::Resign(f) => {
                s.adverts.push(advert(t, master, 0));
                let takeover = t + pair.skew_ns(pair.backup_priority);
                let back = takeover + 3 * i + ((7 * i) as f64 * f) as i64;
                backup_until(
                    &mut s,
                    advert(takeover, backup, pair.backup_priority),
                    back,
                    i,
                );
                s.failovers
                    .push((vrid, takeover, master, backup, "resigned"));
                s.failovers.push((vrid, back, backup, master, "preempted"));
                back
            }
        };
        t = back;
        calm(&mut s, &mut t, &mut last, &mut jitter);
    }
    s
}

/// The backup advertises every interval from `first` until just before `until`.
fn backup_until(s: &mut Scenario, first: Advert, until: i64, interval: i64) {
    let mut b = first;
    while b.t < until {
        s.adverts.push(b);
        b.t += interval;
    }
}

/// The frames of some scenarios merged in time order, with an ARP request after every
/// `noise_every` adverts (0 for none).
pub fn frames(scenarios: &[Scenario], noise_every: usize) -> Vec<(i64, Vec<u8>)> {
    let mut adverts: Vec<Advert> = scenarios
        .iter()
        .flat_map(|s| s.adverts.iter().copied())
        .collect();
    adverts.sort_by_key(|a| (a.t, a.vrid, a.src));
    let mut out = Vec::with_capacity(adverts.len() + adverts.len() / noise_every.max(1));
    for (n, a) in adverts.iter().enumerate() {
        let message = vrrp_message(a.version, a.vrid, a.priority, a.interval, a.src);
        out.push((
            a.t,
            ethernet_ipv4(a.src, VRRP_GROUP, n as u16, 112, &message),
        ));
        if noise_every > 0 && n % noise_every == 0 {
            out.push((a.t + 1_000, arp_frame()));
        }
    }
    out
}

pub mod bundle;

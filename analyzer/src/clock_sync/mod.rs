//! The pre-pass that puts the machines of several bundles on one time line: the
//! reference machine's (the first bundle with captures and role `host`, else the first
//! bundle with captures), from the packets both captured (`crate::align` documents the
//! time lines and the bounds; [`estimate`] how the offsets, drifts and jumps are found).
//!
//! It reads the captures of the bundles once more, through the same conversion as the
//! packet pass, before any correction, and keeps a few numbers per IPv4 heartbeat: its
//! identity (source, identification, IP header checksum, protocol checksum, as the hop
//! table matches packets) and its first and last sighting on each machine; of the other
//! machines, only the packets the reference also saw. Heartbeats only, a few per second
//! and capture point, and at most [`MAX_KEPT`] per machine, and the clock probes of
//! `vmlat record --clock-probes` (UDP port [`CLOCK_PROBE_PORT`]), which a host sends into
//! its guests' taps so that packets cross both ways. IPv6 packets carry no
//! identification and every advert of a steady stream has the same content: an IPv6
//! advert is matched only by a content each machine saw in one packet (a new priority,
//! a resignation). Bundles of one host name are one machine, on one clock. Then every
//! bundle's clock gets the map of its machine onto the reference (see
//! [`crate::align::CrossClock`]), which the packet pass and the attribution pass apply
//! to its packets and events alike.
//!
//! With one machine there is nothing to line up and nothing is read.

mod estimate;

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr};
use std::path::PathBuf;
use std::sync::Arc;

use vmlat_bundle::{Role, CLOCK_PROBE_PORT};

use crate::align::{BundleClock, CrossClock, CrossMachine};
use crate::decode::Heartbeat;
use crate::input::Source;
use crate::{AnalyzeError, AnalyzeOptions, HeartbeatSink};
use estimate::Matched;

/// The identity of an IPv4 heartbeat across machines: its source address and
/// identification, and its IP header checksum folded with its protocol checksum.
type PacketKey = u64;

fn key(hb: &Heartbeat) -> Option<PacketKey> {
    let (IpAddr::V4(src), Some(id), Some(sum)) = (hb.src, hb.ip_id, hb.ip_checksum) else {
        return None;
    };
    Some(u64::from(u32::from(src)) << 32 | u64::from(id) << 16 | u64::from(sum ^ hb.checksum))
}

fn source(key: PacketKey) -> IpAddr {
    IpAddr::V4(Ipv4Addr::from((key >> 32) as u32))
}

/// Sightings of one key further apart than this are two packets (the identification
/// wraps after 65536 packets of a sender).
const SAME_PACKET_NS: i64 = 10_000_000_000;

/// At most this many packets are kept per machine. Beyond, half the identities kept are
/// dropped, by a hash of the identity: the same on every machine, so what is kept still
/// matches, and tens of thousands of packets over the recording are plenty to find the
/// offsets and jumps.
const MAX_KEPT: usize = 1 << 16;

/// A hash of an identity that spreads any bit of it over all (splitmix64's finalizer).
fn mix(key: PacketKey) -> u64 {
    let mut x = key.wrapping_add(0x9e37_79b9_7f4a_7c15);
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

/// An IPv6 heartbeat's content: its source, group and protocol checksum. IPv6 has no
/// identification, and every advert of a steady stream has the same content; an advert
/// whose content changed (a new priority, a resignation) is told apart by it, as long as
/// no other advert had that content.
type Content = (IpAddr, u16, u16);

/// Sightings of one IPv6 content on one machine within this of its first are one packet
/// crossing its capture points; further, another advert with the same content (VRRPv3
/// sends at most one per 10 ms). A packet held longer between two capture points of one
/// machine counts twice, and its content is not matched.
const ONE_PACKET_NS: i64 = 5_000_000;

/// The copies of one IPv6 content on one machine: the first packet's sightings, and how
/// many packets had that content.
#[derive(Debug, Clone, Copy)]
struct Copies {
    seen: Seen,
    packets: u32,
}

/// The first and last sighting of a packet on one machine, and the capture point of
/// the first (an index into [`Sightings::captures`]).
#[derive(Debug, Clone, Copy)]
struct Seen {
    first: i64,
    last: i64,
    at: u32,
}

/// One machine's IPv4 heartbeats, by identity (a few numbers each).
#[derive(Debug)]
struct Sightings<'a> {
    seen: HashMap<PacketKey, Seen>,
    /// Kept are the identities whose hash is a multiple of this power of two.
    stride: u64,
    /// For a machine matched against the reference: only what the reference kept.
    only: Option<&'a Sightings<'a>>,
    /// IPv6 heartbeats by content (at most [`MAX_KEPT`] contents).
    ipv6: HashMap<Content, Copies>,
    /// The machine's capture points by name, in the order first met.
    captures: Vec<String>,
}

impl<'a> Sightings<'a> {
    fn new(only: Option<&'a Sightings<'a>>) -> Self {
        Sightings {
            seen: HashMap::new(),
            stride: only.map_or(1, |r| r.stride),
            only,
            ipv6: HashMap::new(),
            captures: Vec::new(),
        }
    }

    fn kept(&self, key: PacketKey) -> bool {
        mix(key) & (self.stride - 1) == 0
    }
}

impl HeartbeatSink for Sightings<'_> {
    type Capture = u32;

    fn capture(&mut self, name: &str) -> u32 {
        let index = match self.captures.iter().position(|c| c == name) {
            Some(i) => i,
            None => {
                self.captures.push(name.to_string());
                self.captures.len() - 1
            }
        };
        index as u32
    }

    fn observe(&mut self, capture: u32, hb: &Heartbeat) {
        let Some(key) = key(hb) else {
            if hb.src.is_ipv6() {
                self.content(capture, hb);
            }
            return;
        };
        if !self.kept(key) || self.only.is_some_and(|r| !r.seen.contains_key(&key)) {
            return;
        }
        let t = hb.t_ns;
        let fresh = Seen {
            first: t,
            last: t,
            at: capture,
        };
        self.seen
            .entry(key)
            .and_modify(|s| {
                if t < s.first.saturating_sub(SAME_PACKET_NS)
                    || t > s.last.saturating_add(SAME_PACKET_NS)
                {
                    *s = fresh;
                } else {
                    if t < s.first {
                        s.first = t;
                        s.at = capture;
                    }
                    s.last = s.last.max(t);
                }
            })
            .or_insert(fresh);
        if self.seen.len() > MAX_KEPT {
            self.stride = self.stride.saturating_mul(2);
            let stride = self.stride;
            self.seen.retain(|k, _| mix(*k) & (stride - 1) == 0);
        }
    }
}

impl Sightings<'_> {
    fn content(&mut self, capture: u32, hb: &Heartbeat) {
        let content = (hb.src, hb.group, hb.checksum);
        let new = !self.ipv6.contains_key(&content);
        if new
            && (self.ipv6.len() >= MAX_KEPT
                || self.only.is_some_and(|r| !r.ipv6.contains_key(&content)))
        {
            return;
        }
        let t = hb.t_ns;
        let copies = self.ipv6.entry(content).or_insert(Copies {
            seen: Seen {
                first: t,
                last: t,
                at: capture,
            },
            packets: 1,
        });
        let s = &mut copies.seen;
        if t.abs_diff(s.first) > ONE_PACKET_NS.unsigned_abs() {
            copies.packets = copies.packets.saturating_add(1);
        } else {
            if t < s.first {
                s.first = t;
                s.at = capture;
            }
            s.last = s.last.max(t);
        }
    }
}

/// One machine: its host name and role, and its bundles.
#[derive(Debug)]
struct Machine {
    host: String,
    role: Role,
    inputs: Vec<PathBuf>,
}

/// Gives every bundle's clock the map of its machine onto the reference machine's
/// time line, and the report of how it was found.
pub fn align(sources: &mut [Source], opts: &AnalyzeOptions) -> Result<(), AnalyzeError> {
    let mut machines: Vec<Machine> = Vec::new();
    for s in sources.iter() {
        let Some(clock) = &s.clock else { continue };
        match machines.iter_mut().find(|m| m.host == clock.host()) {
            Some(m) if m.inputs.contains(&s.input) => {}
            Some(m) => m.inputs.push(s.input.clone()),
            None => machines.push(Machine {
                host: clock.host().to_string(),
                role: clock.role(),
                inputs: vec![s.input.clone()],
            }),
        }
    }
    let mut maps: HashMap<String, CrossClock> = HashMap::new();
    let reference = machines
        .iter()
        .position(|m| m.role == Role::Host)
        .unwrap_or(0);
    match machines.get(reference) {
        None => return Ok(()),
        Some(r) if machines.len() == 1 => {
            let why =
                "the only machine with captures: no other machine's packets to match".to_string();
            maps.insert(
                r.host.clone(),
                CrossClock::from_report(CrossMachine::WallClock { why }),
            );
        }
        Some(r) => {
            // The clock probes a host recorder sends into its guests' taps cross the other
            // way from a master's adverts: they are matched here, and are no stream.
            let mut ports = opts.udp_ports();
            ports.push(CLOCK_PROBE_PORT);
            let read = |m: &Machine, only| -> Result<Sightings, AnalyzeError> {
                let mut sink = Sightings::new(only);
                for s in sources.iter().filter(|s| m.inputs.contains(&s.input)) {
                    crate::read_source(s, &ports, opts, &mut sink)?;
                }
                Ok(sink)
            };
            let on_reference = read(r, None)?;
            let mut aligned = Vec::new();
            for m in machines.iter().filter(|m| m.host != r.host) {
                let own = read(m, Some(&on_reference))?;
                let matched = matched(&on_reference, &own);
                let map = if matched.is_empty() {
                    Err(nothing_shared(&r.host, &on_reference, &own))
                } else {
                    estimate::cross_clock(&matched, &r.host, &on_reference.captures)
                };
                let map = map
                    .unwrap_or_else(|why| CrossClock::from_report(CrossMachine::WallClock { why }));
                if matches!(map.report(), CrossMachine::Packets(_)) {
                    aligned.push(m.host.clone());
                }
                maps.insert(m.host.clone(), map);
            }
            let report = if aligned.is_empty() {
                CrossMachine::WallClock {
                    why: "no other machine captured a packet it captured".to_string(),
                }
            } else {
                CrossMachine::Reference { aligned }
            };
            maps.insert(r.host.clone(), CrossClock::from_report(report));
        }
    }
    let maps: HashMap<String, Arc<CrossClock>> =
        maps.into_iter().map(|(h, c)| (h, Arc::new(c))).collect();
    // One clock per bundle, shared by its capture files as before.
    let mut clocks: HashMap<PathBuf, Arc<BundleClock>> = HashMap::new();
    for s in sources.iter_mut() {
        let Some(clock) = &s.clock else { continue };
        let Some(map) = maps.get(clock.host()) else {
            continue;
        };
        let onto = clocks
            .entry(s.input.clone())
            .or_insert_with(|| Arc::new(clock.onto(Arc::clone(map))));
        s.clock = Some(Arc::clone(onto));
    }
    Ok(())
}

/// The packets both machines saw, in the other machine's time order: IPv4 by identity,
/// IPv6 by a content each machine saw in one packet only.
fn matched(reference: &Sightings, own: &Sightings) -> Vec<Matched> {
    let ipv4 = own
        .seen
        .iter()
        .filter(|(key, _)| own.kept(**key))
        .filter_map(|(key, b)| {
            let a = reference.seen.get(key)?;
            Some(Matched {
                src: source(*key),
                a: (a.first, a.last),
                b: (b.first, b.last),
                at: a.at,
            })
        });
    let ipv6 = own.ipv6.iter().filter_map(|(content, b)| {
        let a = reference.ipv6.get(content)?;
        (a.packets == 1 && b.packets == 1).then_some(Matched {
            src: content.0,
            a: (a.seen.first, a.seen.last),
            b: (b.seen.first, b.seen.last),
            at: a.seen.at,
        })
    });
    let mut out: Vec<Matched> = ipv4.chain(ipv6).collect();
    out.sort_by_key(|m| (m.b, m.a, m.src));
    out
}

/// Why two machines matched no packet.
fn nothing_shared(reference: &str, on_reference: &Sightings, own: &Sightings) -> String {
    if own.seen.is_empty() && on_reference.seen.is_empty() && !own.ipv6.is_empty() {
        return format!(
            "its heartbeats are IPv6, which has no identification: only an advert whose content no other advert had (a new priority, a resignation) can be matched, and {reference} saw none of its"
        );
    }
    format!("no heartbeat was captured both by it and by the reference machine {reference}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decode::Protocol;

    /// A VRRPv3 advert over IPv6 at `t` with this checksum.
    fn advert6(t: i64, checksum: u16) -> Heartbeat {
        Heartbeat {
            t_ns: t,
            src: "fe80::1".parse().unwrap(),
            dst: "ff02::12".parse().unwrap(),
            protocol: Protocol::Vrrp,
            group: 51,
            version: Some(3),
            priority: Some(150),
            interval_ns: Some(1_000_000_000),
            detect_mult: None,
            ip_id: None,
            ip_checksum: None,
            checksum,
            ttl: 255,
            ifindex: None,
            outgoing: None,
            vlan: None,
        }
    }

    #[test]
    fn ipv6_adverts_match_only_by_a_content_each_machine_saw_once() {
        const S: i64 = 1_000_000_000;
        let mut host = Sightings::new(None);
        // A steady stream (one content, every 10 ms), then a new priority, once.
        for k in 0..500 {
            host.observe(0, &advert6(k * S / 100, 0x1111));
        }
        host.observe(0, &advert6(5 * S, 0x2222));
        let mut guest = Sightings::new(Some(&host));
        for k in 0..500 {
            guest.observe(0, &advert6(k * S / 100 + 300_000_000, 0x1111));
        }
        guest.observe(0, &advert6(5 * S + 300_000_000, 0x2222));
        // Seen at a second capture point of the guest 20 µs later: the same packet.
        guest.observe(0, &advert6(5 * S + 300_020_000, 0x2222));
        let m = matched(&host, &guest);
        assert_eq!(m.len(), 1, "{m:?}");
        assert_eq!(m[0].a, (5 * S, 5 * S));
        assert_eq!(m[0].b, (5 * S + 300_000_000, 5 * S + 300_020_000));
    }
}

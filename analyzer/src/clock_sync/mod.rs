//! The pre-pass that puts the machines of several bundles on one time line: the
//! reference machine's (a bundle with role `host`, else the first bundle's), from the
//! packets both captured (`crate::align` documents the time lines and the bounds;
//! [`estimate`] how the offsets, drifts and jumps are found).
//!
//! It reads the captures of the bundles once more, through the same conversion as the
//! packet pass, before any correction, and keeps a few numbers per IPv4 heartbeat: its
//! identity (source, identification, IP header checksum, protocol checksum, as the hop
//! table matches packets) and its first and last sighting on each machine. Heartbeats
//! only, so a few per second and capture point. IPv6 packets carry no identification,
//! and every advert of a stream has the same checksum: they are not matched. Bundles
//! of one host name are one machine, on one clock. Then every bundle's clock gets the
//! map of its machine onto the reference (see [`crate::align::CrossClock`]), which the
//! packet pass and the attribution pass apply to its packets and events alike.
//!
//! With one machine there is nothing to line up and nothing is read.

mod estimate;

use std::collections::HashMap;
use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::Arc;

use vmlat_bundle::Role;

use crate::align::{BundleClock, CrossClock, CrossMachine};
use crate::decode::Heartbeat;
use crate::input::Source;
use crate::{AnalyzeError, AnalyzeOptions, HeartbeatSink};
use estimate::Matched;

/// The identity of an IPv4 heartbeat across machines.
type PacketKey = (IpAddr, u16, u16, u16);

/// Sightings of one key further apart than this are two packets (the identification
/// wraps after 65536 packets of a sender).
const SAME_PACKET_NS: i64 = 10_000_000_000;

/// The first and last sighting of a packet on one machine.
#[derive(Debug, Clone, Copy)]
struct Seen {
    first: i64,
    last: i64,
}

/// One machine's IPv4 heartbeats, by identity.
#[derive(Debug, Default)]
struct Sightings {
    seen: HashMap<PacketKey, Seen>,
    /// IPv6 heartbeats, which cannot be matched: said when nothing else was.
    ipv6: u64,
}

impl HeartbeatSink for Sightings {
    type Capture = ();

    fn capture(&mut self, _name: &str) {}

    fn observe(&mut self, _capture: (), hb: &Heartbeat) {
        let (Some(id), Some(sum)) = (hb.ip_id, hb.ip_checksum) else {
            self.ipv6 += 1;
            return;
        };
        let t = hb.t_ns;
        let fresh = Seen { first: t, last: t };
        self.seen
            .entry((hb.src, id, sum, hb.checksum))
            .and_modify(|s| {
                if t < s.first.saturating_sub(SAME_PACKET_NS)
                    || t > s.last.saturating_add(SAME_PACKET_NS)
                {
                    *s = fresh;
                } else {
                    s.first = s.first.min(t);
                    s.last = s.last.max(t);
                }
            })
            .or_insert(fresh);
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
                CrossClock::unchanged(CrossMachine::WallClock { why }),
            );
        }
        Some(r) => {
            let ports = opts.udp_ports();
            let read = |m: &Machine| -> Result<Sightings, AnalyzeError> {
                let mut sink = Sightings::default();
                for s in sources.iter().filter(|s| m.inputs.contains(&s.input)) {
                    crate::read_source(s, &ports, opts, &mut sink)?;
                }
                Ok(sink)
            };
            let on_reference = read(r)?;
            let mut aligned = Vec::new();
            for m in machines.iter().filter(|m| m.host != r.host) {
                let own = read(m)?;
                let matched = matched(&on_reference, &own);
                let map = if matched.is_empty() {
                    Err(nothing_shared(&r.host, &on_reference, &own))
                } else {
                    estimate::cross_clock(&matched, &r.host)
                };
                let map = map
                    .unwrap_or_else(|why| CrossClock::unchanged(CrossMachine::WallClock { why }));
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
            maps.insert(r.host.clone(), CrossClock::unchanged(report));
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

/// The packets both machines saw, in the other machine's time order.
fn matched(reference: &Sightings, own: &Sightings) -> Vec<Matched> {
    let mut out: Vec<Matched> = own
        .seen
        .iter()
        .filter_map(|(key, b)| {
            let a = reference.seen.get(key)?;
            Some(Matched {
                src: key.0,
                a: (a.first, a.last),
                b: (b.first, b.last),
            })
        })
        .collect();
    out.sort_by_key(|m| (m.b, m.a, m.src));
    out
}

/// Why two machines matched no packet.
fn nothing_shared(reference: &str, on_reference: &Sightings, own: &Sightings) -> String {
    if own.seen.is_empty() && on_reference.seen.is_empty() && own.ipv6 + on_reference.ipv6 > 0 {
        return format!(
            "its heartbeats and {reference}'s are IPv6, which has no identification to match packets by"
        );
    }
    format!("no IPv4 heartbeat was captured both by it and by the reference machine {reference}")
}

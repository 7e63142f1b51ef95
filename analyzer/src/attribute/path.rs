//! The hop table of an incident: one row per capture point that carried the stream,
//! in the order a packet reaches them, and the first of them that went silent.
//!
//! The order comes from the packets themselves: every advert in the window is matched
//! across capture points (IPv4: identification and checksums, which no bridge or tap
//! changes; IPv6, which has no identification: the nearest earlier copy within half an
//! interval), and each point's delay behind the earliest copy of the same packet is
//! its place on the path. The sender's own interface sees a packet first, then its
//! bridge port, the bridge, the other routers' interfaces. A point that never matched a
//! packet goes last.
//!
//! When the sender sent on time, the verdict is on the path too (hops 6 and 7 of
//! `docs/verdicts.md`): silent at a host tap → `vnic`; at another machine whose kernel
//! itself stalled → `receiver`; anywhere else → `network`; at the sender's own capture
//! point, with its sends returning on time → `inconclusive` (lost between the socket and
//! the capture, where nothing further on tells more).

use std::collections::HashMap;

use vmlat_bundle::Role;

use super::collect::BundleData;
use super::packets::PacketLanes;
use super::sender::{Sender, SAME_MACHINE_TOLERANCE_NS};
use super::verdict::{Finding, Judge};
use super::windows::Window;
use super::{at, host};
use crate::align::CrossMachine;
use crate::model::{Gap, Incident, PathRow, StreamKey, Verdict};
use crate::time::{ms, Timestamp};

/// The identity of one advert across capture points (IPv4 only).
type PacketId = (u16, u16, u16);

/// One capture point's packets of the stream: (time, identity).
type Sightings = Vec<(i64, Option<PacketId>)>;

/// The hop table of `inc` over `w`, for the silence `span`. `captures` are the capture
/// points that carried its stream; `gaps` its gaps (for a silence), whose capture points
/// are the silent ones; without gaps (a takeover or split-brain), a point is silent
/// where its adverts were further apart than the threshold during `span`. `host_of`
/// names the machine of a capture point. `sends` are when the sender's send syscalls
/// began, when known: a packet's delay is then measured from the send that put it out
/// (the latest within 50 ms before its first sighting), else from its first sighting.
#[allow(clippy::too_many_arguments)]
pub fn hop_table(
    inc: &Incident,
    (start, end): (i64, i64),
    key: &StreamKey,
    gaps: &[&Gap],
    captures: &[String],
    lanes: &PacketLanes,
    host_of: impl Fn(&str) -> Option<String>,
    w: Window,
    sends: &[i64],
) -> Vec<PathRow> {
    let interval = (inc.interval_ms * 1e6) as i64;
    let per_capture: Vec<(&String, Sightings)> = captures
        .iter()
        .map(|c| {
            let packets = lanes
                .stream_packets(key, c, w)
                .map(|hb| {
                    let id = hb
                        .ip_id
                        .zip(hb.ip_checksum)
                        .map(|(id, sum)| (id, sum, hb.checksum));
                    (hb.t_ns, id)
                })
                .collect();
            (c, packets)
        })
        .collect();
    // The earliest sighting of each IPv4 packet, and every sighting's time for IPv6.
    let mut first_seen: HashMap<PacketId, i64> = HashMap::new();
    let mut all_times: Vec<i64> = Vec::new();
    for (_, packets) in &per_capture {
        for &(t, id) in packets {
            match id {
                Some(id) => {
                    let e = first_seen.entry(id).or_insert(t);
                    *e = (*e).min(t);
                }
                None => all_times.push(t),
            }
        }
    }
    all_times.sort_unstable();
    let first_sighting = |t: i64, id: Option<PacketId>| -> Option<i64> {
        match id {
            Some(id) => first_seen.get(&id).copied(),
            None => {
                let from = all_times.partition_point(|x| *x < t - interval / 2);
                all_times.get(from).copied().filter(|r| *r <= t)
            }
        }
    };
    // The send that put out a packet first seen at `first`.
    let send_of = |first: i64| -> Option<i64> {
        let i = sends.partition_point(|s| *s <= first);
        i.checked_sub(1)
            .and_then(|i| sends.get(i))
            .copied()
            .filter(|s| first - *s <= SAME_MACHINE_TOLERANCE_NS)
    };
    let median = |mut v: Vec<i64>| {
        v.sort_unstable();
        v.get(v.len() / 2).copied()
    };
    let threshold = (inc.threshold_ms.max(inc.interval_ms * 1.5) * 1e6) as i64;
    // (row, its place on the path: the median delay behind the first capture).
    let mut rows: Vec<(PathRow, Option<i64>)> = per_capture
        .iter()
        .map(|(capture, packets)| {
            let firsts: Vec<(i64, i64)> = packets
                .iter()
                .filter_map(|&(t, id)| Some((t, first_sighting(t, id)?)))
                .collect();
            let place = median(firsts.iter().map(|(t, f)| t - f).collect());
            let behind_sends: Vec<i64> = firsts
                .iter()
                .filter_map(|&(t, f)| Some(t - send_of(f)?))
                .collect();
            // Behind the sends when most of its packets were matched to one.
            let from_send = behind_sends.len() * 2 > firsts.len();
            let delay = if from_send {
                median(behind_sends)
            } else {
                place
            };
            let gap = gaps.iter().find(|g| g.stream.group.capture == **capture);
            let times: Vec<i64> = packets.iter().map(|p| p.0).collect();
            // A silent point's own silence is its gap, which can be shorter than the
            // incident's (the union of every point's).
            let (silent, last_before, first_after, (from, to)) = match gap {
                Some(g) => (
                    true,
                    Some(g.start),
                    g.next.map(|n| n.t),
                    (g.start.0, g.end.0),
                ),
                None => (
                    !covers(&times, start, end, threshold),
                    times
                        .iter()
                        .rev()
                        .find(|t| **t <= start)
                        .map(|t| Timestamp(*t)),
                    times.iter().find(|t| **t >= end).map(|t| Timestamp(*t)),
                    (start, end),
                ),
            };
            let row = PathRow {
                capture: (*capture).clone(),
                host: host_of(capture),
                last_before,
                first_after,
                during: times.iter().filter(|t| **t > from && **t < to).count() as u64,
                silent,
                delay_ms: delay.map(|d| ms(i128::from(d))),
                delay_from: delay
                    .map(|_| if from_send { "send" } else { "first-capture" }.to_string()),
                clock_error_ms: None,
            };
            (row, place)
        })
        .collect();
    rows.sort_by(|(a, pa), (b, pb)| {
        let d = |p: &Option<i64>| p.unwrap_or(i64::MAX);
        d(pa).cmp(&d(pb)).then_with(|| a.capture.cmp(&b.capture))
    });
    rows.into_iter().map(|(row, _)| row).collect()
}

/// Puts a VM's tap first among the rows its packets reach at the same instant: a bridge
/// stamps what it forwards from the tap in the same softirq as the tap's capture, and
/// names alone would put `br0` before `tap-vr1`; the tap is the hop next to the guest.
pub fn taps_first(rows: &mut [PathRow], is_vm_tap: impl Fn(&str) -> bool) {
    let mut start = 0;
    while start < rows.len() {
        let delay = rows.get(start).and_then(|r| r.delay_ms);
        let len = rows.get(start..).map_or(0, |rest| {
            rest.iter().take_while(|r| r.delay_ms == delay).count()
        });
        if delay.is_some() {
            if let Some(run) = rows.get_mut(start..start + len) {
                run.sort_by_key(|r| !is_vm_tap(&r.capture));
            }
        }
        start += len.max(1);
    }
}

/// Gives each row the error its delay carries from clocks of different machines: a
/// delay behind the sender's send is measured from `sender_host`'s clock, one behind the
/// first capture from the clock of the row with the least delay.
pub fn clock_errors(rows: &mut [PathRow], sender_host: Option<&str>, bundles: &[BundleData]) {
    let first_host = rows
        .iter()
        .filter_map(|r| Some((r.delay_ms?, r)))
        .min_by(|(a, _), (b, _)| a.total_cmp(b))
        .and_then(|(_, r)| r.host.clone());
    // Each machine's bound against the reference machine's clock.
    let bound = |host: &str| {
        let b = bundles.iter().find(|b| b.host() == host)?;
        match &b.alignment.cross_machine {
            CrossMachine::Reference { .. } => Some(0),
            CrossMachine::Packets(p) => p.error_bound_ns,
            CrossMachine::WallClock { .. } => None,
        }
    };
    for r in rows {
        let origin = match r.delay_from.as_deref() {
            Some("send") => sender_host,
            Some(_) => first_host.as_deref(),
            None => None,
        };
        r.clock_error_ms = match (r.host.as_deref(), origin) {
            (Some(here), Some(there)) if here == there => Some(0.0),
            (Some(here), Some(there)) => bound(here)
                .zip(bound(there))
                .map(|(a, b)| ms(i128::from(a) + i128::from(b))),
            _ => None,
        };
    }
}

/// Whether `times` has packets through `[start, end]`, never more than `threshold`
/// apart.
pub fn covers(times: &[i64], start: i64, end: i64, threshold: i64) -> bool {
    let before = times.iter().rev().find(|t| **t <= start + threshold);
    let after = times.iter().find(|t| **t >= end - threshold);
    let (Some(&first), Some(&last)) = (before, after) else {
        return false;
    };
    let inside: Vec<i64> = times
        .iter()
        .copied()
        .filter(|t| *t >= first && *t <= last)
        .collect();
    inside.len() >= 2
        && inside.windows(2).all(|p| {
            p.get(1)
                .zip(p.first())
                .is_some_and(|(b, a)| b - a <= threshold)
        })
}

impl Judge<'_> {
    /// A capture point other than the gap's that saw the gap's sender on time through
    /// the gap.
    pub(super) fn on_time_elsewhere(&self, gap: &Gap) -> Option<String> {
        let threshold = (gap.threshold_ms * 1e6) as i64;
        let w = Window {
            start: gap.start.0 - threshold,
            end: gap.end.0 + threshold,
        };
        self.packets
            .captures_of_sender(&gap.stream, w)
            .into_iter()
            .map(|(c, _)| c)
            .filter(|c| *c != gap.stream.group.capture)
            .find(|c| {
                covers(
                    &self.packets.sender_times(&gap.stream, c, w),
                    gap.start.0,
                    gap.end.0,
                    threshold,
                )
            })
    }

    /// Step 3's verdicts: the sender sent, the packets were lost after its socket.
    pub(super) fn after_the_socket(&self, gap: &Gap, sender: &Sender) -> Finding {
        let capture = &gap.stream.group.capture;
        let silent = format!("{} to {}", at(gap.start.0), at(gap.end.0));
        if sender.capture.as_ref() == Some(capture) {
            return Finding::inconclusive(format!(
                "its send syscalls returned on time, but {capture}, the sender's own capture point, saw no advert from {silent}: lost between the socket and the capture, and no capture point further on tells more"
            ));
        }
        let owner = self
            .bundle_of_capture(capture)
            .and_then(|b| Some((b, self.bundles.get(b)?)));
        if let Some((_, host)) = owner.filter(|(_, d)| d.manifest.role == Role::Host) {
            if let Some(f) = self.at_the_host(gap, sender, host) {
                return f;
            }
        }
        if let Some((b, data)) =
            owner.filter(|(b, d)| *b != sender.bundle && d.manifest.role != Role::Host)
        {
            if let Some(stall) = self.machine_stall(b, gap) {
                let mut f = Finding::new(
                    Verdict::Receiver,
                    format!(
                        "sent on time, but the receiving machine {} itself stalled",
                        data.host()
                    ),
                );
                f.evidence.push(stall);
                return f;
            }
        }
        let mut f = Finding::new(
            Verdict::Network,
            format!("sent on time, lost or delayed on the way to {capture}"),
        );
        f.evidence.push(format!("{capture} silent from {silent}"));
        f
    }

    /// Silent at a host's capture point: the guest's own tap held the packets (`vnic`),
    /// unless its VM did not run at all (`vm-paused`: the guest's clock stood still
    /// with it, so its sends only look on time). `None` for a host interface that is
    /// not the guest's tap (the packets were lost on the way to it).
    fn at_the_host(&self, gap: &Gap, sender: &Sender, host: &BundleData) -> Option<Finding> {
        let capture = &gap.stream.group.capture;
        let silent = format!("{} to {}", at(gap.start.0), at(gap.end.0));
        let iface = host
            .manifest
            .recorded
            .captures
            .iter()
            .find(|c| c.name == *capture)
            .map(|c| c.interface.clone())
            .unwrap_or_default();
        let vm = self
            .bundles
            .get(sender.bundle)
            .and_then(|guest| host::own_vm(guest, &host.manifest).ok());
        let own_tap = match &vm {
            Some(vm) => host
                .manifest
                .recorded
                .vms
                .iter()
                .filter(|v| v.pid == vm.pid)
                .any(|v| v.taps.iter().any(|t| t.ifname == iface)),
            // A host bundle that lists no VMs: its taps are known by their names only.
            None => ["tap", "vnet", "vif"].iter().any(|p| iface.starts_with(p)),
        };
        if !own_tap {
            return None;
        }
        // The VM stood still for most of the silence (it ran before the pause and after
        // it, until the next advert was due).
        let (a, b) = (gap.start.0, gap.end.0);
        let idle = vm
            .as_ref()
            .and_then(|vm| match host::vcpus_ran(host, vm, a, b, (b - a) / 2) {
                host::VcpusRan::No(idle) => Some(idle),
                host::VcpusRan::Yes | host::VcpusRan::Unknown => None,
            });
        let mut f = match idle {
            Some(idle) => {
                let mut f = Finding::new(
                    Verdict::VmPaused,
                    format!(
                        "the VM did not run on {} while its tap {capture} was silent: paused (a QMP stop, a snapshot), its clock stopped with it",
                        host.host()
                    ),
                );
                f.evidence.push(idle);
                f.evidence.push(format!(
                    "the guest counted its sends on time: its own clock stood still while the host's ran, so its times hide the pause; {capture} is its tap {iface} on host {}: silent from {silent}",
                    host.host()
                ));
                f
            }
            None => {
                let mut f = Finding::new(
                    Verdict::Vnic,
                    format!("sent on time by the guest but late at the host tap {capture}: the virtual NIC backend (virtio/vhost) held it"),
                );
                f.evidence.push(format!(
                    "{capture} is the VM's tap {iface} on host {}: silent from {silent}",
                    host.host()
                ));
                f
            }
        };
        if let Some(vm) = vm {
            f.evidence.push(vm.how);
        }
        Some(f)
    }

    /// Whether the machine of bundle `b` stopped running during the gap: it recorded
    /// scheduler data but no event at all, or its steal rose.
    pub(super) fn machine_stall(&self, b: usize, gap: &Gap) -> Option<String> {
        let data = self.bundles.get(b)?;
        let margin = (gap.interval_ms * 1e6 / 2.0) as i64;
        let (from, to) = (gap.start.0 + margin, gap.end.0 - margin);
        if data.recorded("sched:sched_switch") && to > from && data.events_in(from, to).is_empty() {
            return Some(format!(
                "{} recorded no event at all from {} to {}: its kernel did not run",
                data.host(),
                at(from),
                at(to)
            ));
        }
        let steal = host::mean_steal(data, None, gap.start.0, gap.end.0)?;
        (steal >= host::STEAL_PCT)
            .then(|| format!("{} had {steal:.1}% steal during the gap", data.host()))
    }
}

#[cfg(test)]
mod tests {
    use super::{covers, taps_first};
    use crate::model::PathRow;

    #[test]
    fn a_vm_tap_goes_before_the_bridge_that_stamps_its_packets_at_the_same_instant() {
        // As recorded in the qemu lab: the bridge and the guest's tap see each advert at
        // the same nanosecond, and `br0` sorts before `tap-vr1` by name.
        let row = |capture: &str, delay: Option<f64>| PathRow {
            capture: capture.into(),
            host: Some("vm".into()),
            last_before: None,
            first_after: None,
            during: 0,
            silent: true,
            delay_ms: delay,
            delay_from: delay.map(|_| "send".into()),
            clock_error_ms: None,
        };
        let mut rows = vec![
            row("eth0", Some(0.19)),
            row("br0@sw", Some(0.21)),
            row("tap-vr1@sw", Some(0.21)),
            row("sw-vr2@sw", Some(0.25)),
            row("x", None),
        ];
        taps_first(&mut rows, |c| c.starts_with("tap-"));
        let order: Vec<&str> = rows.iter().map(|r| r.capture.as_str()).collect();
        assert_eq!(order, ["eth0", "tap-vr1@sw", "br0@sw", "sw-vr2@sw", "x"]);
    }

    #[test]
    fn coverage_needs_packets_on_both_sides_never_too_far_apart() {
        let s = 1_000_000_000;
        let every_second: Vec<i64> = (0..=6).map(|k| k * s).collect();
        assert!(covers(&every_second, s, 5 * s, 3 * s / 2));
        assert!(!covers(&[0, 6 * s], s, 5 * s, 3 * s / 2));
        assert!(!covers(&[0, s], s, 5 * s, 3 * s / 2));
    }
}

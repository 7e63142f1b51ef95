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

use std::collections::HashMap;

use super::packets::PacketLanes;
use super::windows::Window;
use crate::model::{Gap, Incident, PathRow, StreamKey};
use crate::time::{ms, Timestamp};

/// The identity of one advert across capture points (IPv4 only).
type PacketId = (u16, u16, u16);

/// One capture point's packets of the stream: (time, identity).
type Sightings = Vec<(i64, Option<PacketId>)>;

/// The hop table of `inc` over `w`, for the silence `span`. `captures` are the capture
/// points that carried its stream; `gaps` its gaps (for a silence), whose capture points
/// are the silent ones; without gaps (a takeover or split-brain), a point is silent
/// where its adverts were further apart than the threshold during `span`. `host_of`
/// names the machine of a capture point.
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
    let reference = |t: i64, id: Option<PacketId>| -> Option<i64> {
        match id {
            Some(id) => first_seen.get(&id).copied(),
            None => {
                let from = all_times.partition_point(|x| *x < t - interval / 2);
                all_times.get(from).copied().filter(|r| *r <= t)
            }
        }
    };
    let threshold = (inc.threshold_ms.max(inc.interval_ms * 1.5) * 1e6) as i64;
    let mut rows: Vec<PathRow> = per_capture
        .iter()
        .map(|(capture, packets)| {
            let mut delays: Vec<i64> = packets
                .iter()
                .filter_map(|&(t, id)| Some(t - reference(t, id)?))
                .collect();
            delays.sort_unstable();
            let delay = delays.get(delays.len() / 2).copied();
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
            PathRow {
                capture: (*capture).clone(),
                host: host_of(capture),
                last_before,
                first_after,
                during: times.iter().filter(|t| **t > from && **t < to).count() as u64,
                silent,
                delay_ms: delay.map(|d| ms(i128::from(d))),
                delay_from: delay.map(|_| "first-capture".to_string()),
            }
        })
        .collect();
    rows.sort_by(|a, b| {
        let d = |r: &PathRow| r.delay_ms.unwrap_or(f64::INFINITY);
        d(a).total_cmp(&d(b))
            .then_with(|| a.capture.cmp(&b.capture))
    });
    rows
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

#[cfg(test)]
mod tests {
    use super::covers;

    #[test]
    fn coverage_needs_packets_on_both_sides_never_too_far_apart() {
        let s = 1_000_000_000;
        let every_second: Vec<i64> = (0..=6).map(|k| k * s).collect();
        assert!(covers(&every_second, s, 5 * s, 3 * s / 2));
        assert!(!covers(&[0, 6 * s], s, 5 * s, 3 * s / 2));
        assert!(!covers(&[0, s], s, 5 * s, 3 * s / 2));
    }
}

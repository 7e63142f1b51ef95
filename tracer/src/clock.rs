//! Clock readings: CLOCK_MONOTONIC for every record, and realtime↔monotonic anchors
//! that let the analyzer convert pcap (CLOCK_REALTIME) times exactly, even when NTP
//! steps or slews the wall clock during a recording.

use rustix::time::{clock_gettime, ClockId};
use vmlat_bundle::ClockAnchor;

/// CLOCK_MONOTONIC now, in nanoseconds: the time base of perf tracepoints.
pub fn monotonic_ns() -> u64 {
    let ts = clock_gettime(ClockId::Monotonic);
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

fn realtime_ns() -> i64 {
    let ts = clock_gettime(ClockId::Realtime);
    ts.tv_sec * 1_000_000_000 + ts.tv_nsec
}

/// Reads realtime between two monotonic reads and keeps the tightest of a few tries,
/// so that a preemption between the reads does not widen the anchor's error.
pub fn anchor() -> ClockAnchor {
    (0..5)
        .map(|_| {
            let before = monotonic_ns();
            let realtime_ns = realtime_ns();
            let after = monotonic_ns();
            ClockAnchor {
                realtime_ns,
                monotonic_ns: before + (after - before) / 2,
                uncertainty_ns: (after - before).div_ceil(2),
            }
        })
        .min_by_key(|a| a.uncertainty_ns)
        .expect("five tries")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn anchor_pairs_the_clocks_tightly() {
        let a = anchor();
        let b = anchor();
        assert!(b.monotonic_ns >= a.monotonic_ns);
        // Both clocks advance together between anchors (no NTP step in a test run).
        let mono = (b.monotonic_ns - a.monotonic_ns) as i64;
        let real = b.realtime_ns - a.realtime_ns;
        assert!(
            (mono - real).abs() < 1_000_000,
            "clocks drifted {}",
            mono - real
        );
        assert!(a.uncertainty_ns < 1_000_000);
    }
}

//! Clock alignment: puts a bundle's CLOCK_MONOTONIC events on the UTC time line of its
//! packets.
//!
//! A bundle's events carry the recording machine's CLOCK_MONOTONIC; its pcaps carry
//! CLOCK_REALTIME. The recorder pairs the two in `Clock` anchors (at start, every second
//! and at stop). [`MachineClock`] converts while the event stream is read, with the
//! anchor at or before each record: records arrive in monotonic order, so the anchor in
//! force is always the last one seen and nothing needs to be kept. NTP can slew or step
//! the wall clock between two anchors; a record between them is then off by at most the
//! change of offset (realtime − monotonic) between the two, which is tracked, plus the
//! anchor's own read uncertainty. Their sum is the alignment's error bound.
//!
//! Across machines (a guest bundle and its host's) only the wall clocks line up for now:
//! [`CrossMachine::WallClock`], bound unknown. An offset/drift estimate from packets seen
//! on both sides (DESIGN §3) would be another [`CrossMachine`] variant applied on top of
//! each machine's own conversion.

use serde::Serialize;
use vmlat_bundle::{ClockAnchor, Manifest};

/// How one machine's UTC is related to another's.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum CrossMachine {
    /// Each machine's own wall clock is trusted as is: the error between machines is
    /// whatever their NTP leaves, not measured.
    WallClock,
}

impl CrossMachine {
    pub fn describe(self) -> &'static str {
        match self {
            CrossMachine::WallClock => {
                "by wall clock only (each machine's own CLOCK_REALTIME; the error between machines is unknown)"
            }
        }
    }
}

/// The streaming monotonic → UTC conversion of one machine.
///
/// Invariant: `offset_ns` is realtime − monotonic of the latest anchor fed to
/// [`MachineClock::anchor`] (the manifest's start pair before any), so that a record
/// is converted with the anchor in force at its time as long as records and anchors are
/// fed in monotonic order.
#[derive(Debug, Clone)]
pub struct MachineClock {
    offset_ns: i64,
    uncertainty_ns: u64,
    stats: Alignment,
}

/// What the conversion of one machine's events achieved, for the report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Alignment {
    /// Clock anchors read.
    pub anchors: u64,
    /// The largest read uncertainty of an anchor (half the distance of the two
    /// monotonic reads around the realtime one).
    pub max_anchor_uncertainty_ns: u64,
    /// The largest change of realtime − monotonic between consecutive anchors: NTP
    /// slewing or stepping the wall clock. A record between two anchors is off by at
    /// most this.
    pub max_step_ns: u64,
    /// Bound of the error of any event time converted to UTC: the two above added.
    pub error_bound_ns: u64,
    /// How this machine's UTC relates to the other inputs'.
    pub cross_machine: CrossMachine,
}

impl MachineClock {
    /// Starts from the manifest's first pair, which the recorder also writes as the
    /// stream's first anchor.
    pub fn new(manifest: &Manifest) -> Self {
        MachineClock {
            offset_ns: manifest
                .started_realtime_ns
                .wrapping_sub(manifest.started_monotonic_ns as i64),
            uncertainty_ns: 0,
            stats: Alignment {
                anchors: 0,
                max_anchor_uncertainty_ns: 0,
                max_step_ns: 0,
                error_bound_ns: 0,
                cross_machine: CrossMachine::WallClock,
            },
        }
    }

    /// Takes the next anchor in monotonic order.
    pub fn anchor(&mut self, a: &ClockAnchor) {
        let offset = a.realtime_ns.wrapping_sub(a.monotonic_ns as i64);
        if self.stats.anchors > 0 {
            let step = offset.abs_diff(self.offset_ns);
            self.stats.max_step_ns = self.stats.max_step_ns.max(step);
        }
        self.offset_ns = offset;
        self.uncertainty_ns = a.uncertainty_ns;
        self.stats.anchors += 1;
        self.stats.max_anchor_uncertainty_ns =
            self.stats.max_anchor_uncertainty_ns.max(a.uncertainty_ns);
        self.stats.error_bound_ns = self
            .stats
            .max_anchor_uncertainty_ns
            .saturating_add(self.stats.max_step_ns);
    }

    /// UTC ns of a monotonic instant, with the anchor in force.
    pub fn to_utc(&self, monotonic_ns: u64) -> i64 {
        (monotonic_ns as i64).wrapping_add(self.offset_ns)
    }

    /// The current offset, realtime − monotonic.
    pub fn offset_ns(&self) -> i64 {
        self.offset_ns
    }

    pub fn alignment(&self) -> Alignment {
        self.stats.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use vmlat_bundle::{Losses, RecordedSet, Role, Status};

    fn manifest() -> Manifest {
        Manifest {
            format_version: 1,
            vmlat_version: String::new(),
            hostname: "h".into(),
            role: Role::Guest,
            kernel: String::new(),
            arch: String::new(),
            cpus: 1,
            boot_id: String::new(),
            command_line: Vec::new(),
            started_realtime_ns: 1_000_000_000_000,
            started_monotonic_ns: 5_000,
            stopped_realtime_ns: None,
            stopped_monotonic_ns: None,
            status: Status::Complete,
            recorded: RecordedSet::default(),
            losses: Losses::default(),
        }
    }

    #[test]
    fn a_step_of_the_wall_clock_applies_from_the_next_anchor_and_bounds_the_error() {
        let mut clock = MachineClock::new(&manifest());
        assert_eq!(clock.to_utc(6_000), 1_000_000_001_000);
        clock.anchor(&ClockAnchor {
            realtime_ns: 1_000_000_000_000,
            monotonic_ns: 5_000,
            uncertainty_ns: 40,
        });
        // NTP stepped realtime forward by 2 ms.
        clock.anchor(&ClockAnchor {
            realtime_ns: 1_001_002_000_000,
            monotonic_ns: 1_000_005_000,
            uncertainty_ns: 70,
        });
        assert_eq!(clock.to_utc(1_000_006_000), 1_001_002_001_000);
        let a = clock.alignment();
        assert_eq!(
            (a.anchors, a.max_step_ns, a.error_bound_ns),
            (2, 2_000_000, 2_000_070)
        );
    }
}

//! One bundle's event stream, record by record, on UTC: how a renderer that converts a
//! recording's scheduling (the Perfetto export) reads a bundle, so that it puts events
//! on UTC and reads thread states exactly as the analysis does.
//!
//! [`Trace`] reads `events.vmlat` as a stream (one chunk in memory at a time, see
//! `docs/bundle-format.md`) and hands out every record with
//! - its UTC time, converted by the bundle's [`MachineClock`] fed the stream's clock
//!   anchors as they come: the conversion of the attribution pass (see [`crate::align`]),
//!   so that a time read here is the time the analysis gives; with several machines,
//!   [`Trace::onto`] puts it on the reference machine's time line as the analysis did;
//! - for a `SchedSwitch`, the state the previous task was switched out in, decoded from
//!   `prev_state` by [`TaskState::from_prev_state`]: from the bits alone. The
//!   attribution pass refines that decoding with what else it knows of the task (the
//!   syscall in progress, its block I/O, the recorded freezer state), which a record by
//!   itself does not say.
//!
//! Nothing is kept from one record to the next but the clock: memory does not grow with
//! the recording.

use std::path::Path;
use std::sync::Arc;

use vmlat_bundle::{read_bundle_events, BundleError, EventReader, Manifest, ReadSummary, Record};

use crate::align::{Alignment, CrossClock, CrossMachine, MachineClock};
use crate::model::TaskState;
use crate::time::Timestamp;

/// One record of a bundle, on UTC.
#[derive(Debug, Clone, PartialEq)]
pub struct TraceRecord {
    /// When it happened, UTC (`record`'s own time is the machine's CLOCK_MONOTONIC).
    pub t: Timestamp,
    pub record: Record,
    /// For a `SchedSwitch`, the state its previous task (`prev_tid`) was switched out
    /// in; `None` for every other record.
    pub switched_out: Option<TaskState>,
}

/// The event stream of one bundle, read record by record: an iterator of
/// [`TraceRecord`]s in the stream's order (CLOCK_MONOTONIC order, see
/// `docs/bundle-format.md`). `Clock` records are handed out too, after they took effect.
/// A torn tail ends the iteration and shows in [`Trace::summary`].
pub struct Trace {
    manifest: Manifest,
    reader: EventReader,
    clock: MachineClock,
}

impl Trace {
    /// Opens the bundle in `dir`: its manifest (the clock's first anchor) and its event
    /// stream.
    pub fn open(dir: &Path) -> Result<Self, BundleError> {
        let manifest = Manifest::load(dir)?;
        let reader = read_bundle_events(dir)?;
        Ok(Trace {
            clock: MachineClock::new(&manifest),
            manifest,
            reader,
        })
    }

    /// The same records on the reference machine's time line, as the analysis put the
    /// bundle (`cross`: its `alignment.cross_machine`, see [`crate::align`]).
    pub fn onto(mut self, cross: &CrossMachine) -> Self {
        let map = CrossClock::from_report(cross.clone());
        self.clock = self.clock.onto(Some(Arc::new(map)));
        self
    }

    pub fn manifest(&self) -> &Manifest {
        &self.manifest
    }

    /// How the records read so far were put on UTC.
    pub fn alignment(&self) -> Alignment {
        self.clock.alignment()
    }

    /// What has been read so far (records, torn tail); final once the iteration ended.
    pub fn summary(&self) -> &ReadSummary {
        self.reader.summary()
    }
}

impl Iterator for Trace {
    type Item = Result<TraceRecord, BundleError>;

    fn next(&mut self) -> Option<Self::Item> {
        let record = match self.reader.next()? {
            Ok(record) => record,
            Err(e) => return Some(Err(e)),
        };
        if let Record::Clock(anchor) = &record {
            self.clock.anchor(anchor);
        }
        let switched_out = match &record {
            Record::SchedSwitch { prev_state, .. } => Some(TaskState::from_prev_state(*prev_state)),
            _ => None,
        };
        Some(Ok(TraceRecord {
            t: Timestamp(self.clock.to_utc(record.time())),
            record,
            switched_out,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::align::{Bound, ClockPiece, Direction, PacketSync};
    use vmlat_bundle::{ClockAnchor, EventWriter, Losses, RecordedSet, Role, Status, EVENTS_FILE};

    const T0: i64 = 1_763_816_460_000_000_000;
    const MONO0: u64 = 5_000_000_000;

    fn switch(mono: u64, prev_state: u64) -> Record {
        Record::SchedSwitch {
            t: mono,
            cpu: 0,
            prev_tid: 7,
            prev_comm: "keepalived".into(),
            prev_prio: 120,
            prev_state,
            next_tid: 0,
            next_comm: "swapper/0".into(),
            next_prio: 120,
        }
    }

    #[test]
    fn records_come_on_the_machines_utc_and_switches_decoded() {
        let dir = tempfile::tempdir().unwrap();
        Manifest {
            format_version: 1,
            vmlat_version: "test".into(),
            hostname: "vm".into(),
            role: Role::Guest,
            kernel: "6.1".into(),
            arch: "x86_64".into(),
            cpus: 1,
            boot_id: "b".into(),
            command_line: Vec::new(),
            started_realtime_ns: T0,
            started_monotonic_ns: MONO0,
            stopped_realtime_ns: None,
            stopped_monotonic_ns: None,
            status: Status::Complete,
            recorded: RecordedSet::default(),
            losses: Losses::default(),
        }
        .store(dir.path())
        .unwrap();
        let mut w = EventWriter::create(&dir.path().join(EVENTS_FILE)).unwrap();
        let records = [
            // Before any anchor of the stream: on the manifest's start pair.
            switch(MONO0 + 1_000, 0x1),
            Record::Clock(ClockAnchor {
                realtime_ns: T0,
                monotonic_ns: MONO0,
                uncertainty_ns: 10,
            }),
            switch(MONO0 + 2_000, 0x100),
            // NTP stepped the wall clock 2 ms forward.
            Record::Clock(ClockAnchor {
                realtime_ns: T0 + 1_002_000_000,
                monotonic_ns: MONO0 + 1_000_000_000,
                uncertainty_ns: 10,
            }),
            switch(MONO0 + 1_000_000_500, 0x2),
            switch(MONO0 + 1_000_000_600, 0x4),
            switch(MONO0 + 1_000_000_700, 0x20),
            Record::SchedWakeup {
                t: MONO0 + 1_000_000_800,
                cpu: 0,
                waker_tid: 0,
                tid: 7,
                comm: "keepalived".into(),
                prio: 120,
                target_cpu: 0,
                new_task: false,
            },
        ];
        for r in &records {
            w.append(r).unwrap();
        }
        w.flush().unwrap();
        drop(w);

        // The times are the attribution pass's: the bundle's MachineClock, fed the
        // anchors in stream order.
        let manifest = Manifest::load(dir.path()).unwrap();
        let mut clock = MachineClock::new(&manifest);
        let expected_t: Vec<i64> = records
            .iter()
            .map(|r| {
                if let Record::Clock(a) = r {
                    clock.anchor(a);
                }
                clock.to_utc(r.time())
            })
            .collect();
        let mut trace = Trace::open(dir.path()).unwrap();
        let got: Vec<TraceRecord> = trace.by_ref().map(|r| r.unwrap()).collect();
        let times: Vec<i64> = got.iter().map(|r| r.t.0).collect();
        assert_eq!(times, expected_t);
        assert_eq!(times.first(), Some(&(T0 + 1_000)));
        let states: Vec<Option<TaskState>> = got.iter().map(|r| r.switched_out).collect();
        assert_eq!(
            states,
            [
                Some(TaskState::Sleeping),
                None,
                Some(TaskState::Runnable),
                None,
                Some(TaskState::Blocked),
                Some(TaskState::Stopped),
                Some(TaskState::Unknown),
                None,
            ]
        );
        assert!(got.iter().zip(&records).all(|(g, r)| g.record == *r));
        assert_eq!(trace.summary().records, records.len() as u64);
        assert!(!trace.summary().torn_tail);
        assert_eq!(trace.alignment(), clock.alignment());
        let a = trace.alignment();
        assert_eq!((a.anchors, a.max_step_ns), (2, 2_000_000));
        assert_eq!(trace.manifest().hostname, "vm");

        // Put on a reference machine's time line, 300 ms behind, as the analysis did.
        let piece = ClockPiece {
            first: Timestamp(T0 - 300_000_000),
            last: Timestamp(T0 + 700_000_000),
            matched: 2,
            offset_ns: -300_000_000,
            drift_ppm: 0.0,
            bound: Bound::NoEarlier,
            error_bound_ns: None,
        };
        let report = CrossMachine::Packets(PacketSync {
            reference: "hv".into(),
            matched: 2,
            to_reference: 2,
            from_reference: 0,
            direction: Direction::Assumed,
            pieces: vec![piece],
            jumps: Vec::new(),
            error_bound_ns: None,
            one_sided: true,
            sent_first_seen_at: Vec::new(),
        });
        let trace = Trace::open(dir.path()).unwrap().onto(&report);
        assert_eq!(trace.alignment().cross_machine, report);
        let moved: Vec<i64> = trace.map(|r| r.unwrap().t.0).collect();
        let expected: Vec<i64> = expected_t.iter().map(|t| t - 300_000_000).collect();
        assert_eq!(moved, expected);
    }
}

//! The packet pass on two threads: one reads and decodes the captures (and orders each
//! capture's heartbeats), the other tracks the streams; the heartbeats go from one to
//! the other in batches, in order, so the result is the one thread's exactly.
//!
//! Reading and decoding cost a little more per packet than tracking (the reading
//! thread has ~60 % of the samples), and the serial start and report remain, so on two
//! cores the analysis takes a sixth less time, not half (`BENCHMARKS.md`, "Two
//! threads"). Batches of
//! [`BATCH`] go over a channel of [`IN_FLIGHT`] and come back empty to be refilled:
//! nothing is allocated per packet.

use crossbeam_channel::{bounded, Receiver, Sender};

use crate::decode::Heartbeat;
use crate::input::Source;
use crate::model::InputSummary;
use crate::streams::{CaptureId, Tracker};
use crate::{read_source, AnalyzeError, AnalyzeOptions, HeartbeatSink};

/// Heartbeats per batch (~400 KiB): at 1024 the reader spent a tenth of its time
/// waking the tracker, which had emptied its batches and gone to sleep.
const BATCH: usize = 4096;
/// Batches on their way at once: the reader may run this far ahead of the tracker.
const IN_FLIGHT: usize = 4;

/// What the reader hands the tracker, in order.
enum Event {
    /// A new capture point: its number is the count of those before it.
    Capture(Box<str>),
    Beat(u32, Heartbeat),
    End(u32, i64),
}

/// The reader's side: a [`HeartbeatSink`] that batches what it is given for the tracker.
struct Forward {
    batch: Vec<Event>,
    captures: u32,
    full: Sender<Vec<Event>>,
    empty: Receiver<Vec<Event>>,
}

impl Forward {
    fn push(&mut self, event: Event) {
        self.batch.push(event);
        if self.batch.len() >= BATCH {
            self.flush();
        }
    }

    fn flush(&mut self) {
        if self.batch.is_empty() {
            return;
        }
        let next = self
            .empty
            .try_recv()
            .unwrap_or_else(|_| Vec::with_capacity(BATCH));
        let batch = std::mem::replace(&mut self.batch, next);
        // The tracker only stops early by panicking, which the join reports.
        let _ = self.full.send(batch);
    }
}

impl HeartbeatSink for Forward {
    type Capture = u32;

    fn capture(&mut self, name: &str) -> u32 {
        let id = self.captures;
        self.captures += 1;
        self.push(Event::Capture(name.into()));
        id
    }

    fn observe(&mut self, capture: u32, hb: &Heartbeat) {
        self.push(Event::Beat(capture, *hb));
    }

    fn end(&mut self, capture: u32, t_ns: i64) {
        self.push(Event::End(capture, t_ns));
    }
}

/// The tracker's side: every batch into `tracker`, then back to be refilled.
fn track(full: Receiver<Vec<Event>>, empty: Sender<Vec<Event>>, tracker: &mut Tracker) {
    let mut ids: Vec<CaptureId> = Vec::new();
    for mut batch in full {
        for event in batch.drain(..) {
            match event {
                Event::Capture(name) => ids.push(tracker.capture(&name)),
                Event::Beat(c, hb) => {
                    if let Some(&id) = ids.get(c as usize) {
                        tracker.observe(id, &hb);
                    }
                }
                Event::End(c, t_ns) => {
                    if let Some(&id) = ids.get(c as usize) {
                        tracker.end(id, t_ns);
                    }
                }
            }
        }
        let _ = empty.send(batch);
    }
}

/// Reads every source in order into `tracker`, on two threads.
pub(crate) fn read_into(
    sources: &[Source],
    ports: &[u16],
    opts: &AnalyzeOptions,
    tracker: &mut Tracker,
) -> Result<Vec<InputSummary>, AnalyzeError> {
    let (full_tx, full_rx) = bounded(IN_FLIGHT);
    let (empty_tx, empty_rx) = bounded(IN_FLIGHT + 1);
    std::thread::scope(|scope| {
        let tracking = scope.spawn(move || track(full_rx, empty_tx, tracker));
        let mut forward = Forward {
            batch: Vec::with_capacity(BATCH),
            captures: 0,
            full: full_tx,
            empty: empty_rx,
        };
        let summaries: Result<Vec<InputSummary>, AnalyzeError> = sources
            .iter()
            .map(|source| read_source(source, ports, opts, &mut forward))
            .collect();
        forward.flush();
        // Closing the channel ends the tracker's loop.
        drop(forward);
        if let Err(panic) = tracking.join() {
            std::panic::resume_unwind(panic);
        }
        summaries
    })
}

//! The hand-over between collectors and the bundle writer.
//!
//! Every collector owns a [`Sink`]. It sends [`Batch`]es of records together with a
//! watermark: a promise that it will never again send a record earlier than that time.
//! The queue is bounded; a collector never blocks on a slow disk: a batch that does not
//! fit is dropped and counted in [`LossCounters::queue_dropped`].

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use crossbeam_channel::{Sender, TrySendError};
use vmlat_bundle::{Losses, Record};

/// Index of a collector, assigned by the recorder.
pub type SourceId = usize;

/// Records from one collector, each no earlier than the previous batch's watermark.
#[derive(Debug)]
pub struct Batch {
    pub source: SourceId,
    pub records: Vec<Record>,
    /// CLOCK_MONOTONIC ns: this source will send nothing earlier than this again.
    /// A collector's last batch says `u64::MAX`.
    pub watermark: u64,
}

/// Loss counters shared by every collector and the writer.
#[derive(Debug, Default)]
pub struct LossCounters {
    pub pcap_dropped: AtomicU64,
    pub pcap_if_dropped: AtomicU64,
    pub perf_lost: AtomicU64,
    pub queue_dropped: AtomicU64,
    pub sampler_overruns: AtomicU64,
    pub decode_errors: AtomicU64,
    pub late_records: AtomicU64,
}

impl LossCounters {
    pub fn snapshot(&self) -> Losses {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        Losses {
            pcap_dropped: get(&self.pcap_dropped),
            pcap_if_dropped: get(&self.pcap_if_dropped),
            perf_lost: get(&self.perf_lost),
            queue_dropped: get(&self.queue_dropped),
            sampler_overruns: get(&self.sampler_overruns),
            decode_errors: get(&self.decode_errors),
            late_records: get(&self.late_records),
        }
    }

    pub fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }
}

/// A collector's end of the queue to the writer.
#[derive(Clone)]
pub struct Sink {
    source: SourceId,
    tx: Sender<Batch>,
    losses: Arc<LossCounters>,
}

impl Sink {
    pub fn new(source: SourceId, tx: Sender<Batch>, losses: Arc<LossCounters>) -> Self {
        Sink { source, tx, losses }
    }

    /// Hands records to the writer without blocking. Returns false once the writer has
    /// gone away (the recording is over), so that the collector can stop.
    pub fn send(&self, records: Vec<Record>, watermark: u64) -> bool {
        let batch = Batch {
            source: self.source,
            records,
            watermark,
        };
        match self.tx.try_send(batch) {
            Ok(()) => true,
            Err(TrySendError::Full(batch)) => {
                LossCounters::add(&self.losses.queue_dropped, batch.records.len() as u64);
                true
            }
            Err(TrySendError::Disconnected(_)) => false,
        }
    }

    pub fn losses(&self) -> &LossCounters {
        &self.losses
    }
}

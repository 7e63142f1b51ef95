//! The hand-over between collectors and the bundle writer.
//!
//! Every collector owns a [`Sink`]. It sends [`Batch`]es of records together with a
//! watermark: a promise that it will never again send a record earlier than that time.
//! The queue is bounded by the records it holds (`--queue-records`, [`QUEUE_RECORDS`]), so that its memory
//! is; a collector never blocks on a slow disk: a batch that does not fit is dropped and
//! counted in [`LossCounters::queue_dropped`]. A batch's records count as queued until
//! the consumer takes the batch apart ([`Held`]).

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
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
    /// Its records' place in the queue's bound, given back when the batch is dropped.
    pub held: Held,
}

/// The default of `--queue-records`, the records the queue may hold at once: some
/// 100-200 MiB of decoded records, a few seconds of the heaviest storm measured
/// (BENCHMARKS.md). Past it, a stalled writer makes the collectors drop batches,
/// counted, rather than memory grow without bound.
pub const QUEUE_RECORDS: usize = 1 << 20;

/// `n` records counted in the queue's total until dropped.
#[derive(Debug)]
pub struct Held {
    n: usize,
    queued: Arc<AtomicUsize>,
}

impl Drop for Held {
    fn drop(&mut self) {
        self.queued.fetch_sub(self.n, Ordering::Relaxed);
    }
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
    /// Records in the queue now, from every sink; at most `limit`.
    queued: Arc<AtomicUsize>,
    limit: usize,
}

impl Sink {
    /// A sink of collector `source` into `tx`, whose sinks share `queued` and hold at most
    /// `limit` records in the queue together.
    pub fn new(
        source: SourceId,
        tx: Sender<Batch>,
        losses: Arc<LossCounters>,
        queued: Arc<AtomicUsize>,
        limit: usize,
    ) -> Self {
        Sink {
            source,
            tx,
            losses,
            queued,
            limit,
        }
    }

    /// Hands records to the writer without blocking. Returns false once the writer has
    /// gone away (the recording is over), so that the collector can stop.
    pub fn send(&self, records: Vec<Record>, watermark: u64) -> bool {
        let n = records.len();
        let held = Held {
            n,
            queued: Arc::clone(&self.queued),
        };
        // A collector's last batch (watermark u64::MAX) always goes: the writer waits
        // for it to know the collector is done.
        let before = self.queued.fetch_add(n, Ordering::Relaxed);
        if before + n > self.limit && n > 0 && watermark != u64::MAX {
            LossCounters::add(&self.losses.queue_dropped, n as u64);
            return true;
        }
        let batch = Batch {
            source: self.source,
            records,
            watermark,
            held,
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

#[cfg(test)]
mod tests {
    use super::*;

    fn records(n: usize) -> Vec<Record> {
        (0..n as u64)
            .map(|t| Record::Losses {
                t,
                losses: Losses::default(),
            })
            .collect()
    }

    #[test]
    fn the_queue_holds_at_most_its_limit_of_records_and_counts_the_rest() {
        let (tx, rx) = crossbeam_channel::unbounded();
        let losses = Arc::new(LossCounters::default());
        let sink = Sink::new(0, tx, Arc::clone(&losses), Arc::default(), 10);
        assert!(sink.send(records(8), 1));
        assert!(sink.send(records(5), 2), "dropped, not the end");
        assert_eq!(losses.snapshot().queue_dropped, 5);
        // Taken apart by the consumer, the first batch leaves room again.
        drop(rx.try_recv().unwrap());
        assert!(sink.send(records(5), 3));
        assert_eq!(rx.try_recv().unwrap().records.len(), 5);
        // A collector's last batch goes whatever the queue holds.
        assert!(sink.send(records(8), 4));
        assert!(sink.send(records(20), u64::MAX));
        assert_eq!(rx.len(), 2);
        assert_eq!(losses.snapshot().queue_dropped, 5);
        drop(rx);
        assert!(!sink.send(records(1), 5), "the writer is gone");
    }
}

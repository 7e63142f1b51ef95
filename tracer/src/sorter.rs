//! Merges the records of several collectors into one time-ordered stream.
//!
//! Each source promises, with every batch, a watermark: it will never again send a
//! record earlier than that. The invariant that makes the merge correct: **a record is
//! released once every source's watermark has passed it**, because nothing earlier can
//! arrive after that. Records arriving behind what was already released (a source that
//! broke its promise, e.g. a perf ring drained late) are released at once and counted
//! as late, never dropped.
//!
//! Memory is bounded by `max_pending`: past it, the earliest records are released
//! before the watermarks allow, and any record that later arrives behind them is
//! counted as late. A source that has finished raises its watermark to `u64::MAX`, so
//! that it does not hold the others back.

use std::collections::VecDeque;

/// Something with a time to sort by.
pub trait Timed {
    fn time(&self) -> u64;
}

impl Timed for vmlat_bundle::Record {
    fn time(&self) -> u64 {
        vmlat_bundle::Record::time(self)
    }
}

/// A k-way merge by watermark over a fixed set of sources.
///
/// Each source keeps its own time-sorted queue. A batch is sorted on arrival (its
/// per-CPU runs are already in order, which the adaptive sort exploits) and merged
/// into its queue's tail, which it overlaps only by the few milliseconds between two
/// drains. Release then merges the queue fronts. Nothing is ever moved twice, unlike
/// a heap of every pending record, which cost a tenth of the recorder's CPU.
pub struct Sorter<T> {
    queues: Vec<VecDeque<T>>,
    watermarks: Vec<u64>,
    pending: usize,
    released_up_to: u64,
    max_pending: usize,
    late: u64,
}

impl<T: Timed> Sorter<T> {
    pub fn new(sources: usize, max_pending: usize) -> Self {
        Sorter {
            queues: (0..sources).map(|_| VecDeque::new()).collect(),
            watermarks: vec![0; sources],
            pending: 0,
            released_up_to: 0,
            max_pending,
            late: 0,
        }
    }

    /// Adds a batch from `source` and raises its watermark.
    pub fn push(&mut self, source: usize, items: impl IntoIterator<Item = T>, watermark: u64) {
        let Some(queue) = self.queues.get_mut(source) else {
            return;
        };
        let mut batch: Vec<T> = items.into_iter().collect();
        batch.sort_by_key(Timed::time);
        self.late += batch
            .iter()
            .take_while(|item| item.time() < self.released_up_to)
            .count() as u64;
        self.pending += batch.len();
        merge_into(queue, batch);
        let mark = &mut self.watermarks[source];
        *mark = (*mark).max(watermark);
    }

    /// Releases, in time order, everything no source can precede any more, plus the
    /// earliest records beyond `max_pending`.
    pub fn release(&mut self, mut emit: impl FnMut(T)) {
        let safe = self.watermarks.iter().copied().min().unwrap_or(u64::MAX);
        while let Some(source) = self.earliest() {
            let time = self.queues[source].front().map_or(u64::MAX, Timed::time);
            if time > safe && self.pending <= self.max_pending {
                break;
            }
            self.emit_front(source, &mut emit);
        }
    }

    /// Releases everything, in time order (at the end of a recording).
    pub fn drain(&mut self, mut emit: impl FnMut(T)) {
        while let Some(source) = self.earliest() {
            self.emit_front(source, &mut emit);
        }
    }

    fn emit_front(&mut self, source: usize, emit: &mut impl FnMut(T)) {
        if let Some(item) = self.queues[source].pop_front() {
            self.pending -= 1;
            self.released_up_to = self.released_up_to.max(item.time());
            emit(item);
        }
    }

    /// The source whose queue holds the earliest record.
    fn earliest(&self) -> Option<usize> {
        self.queues
            .iter()
            .enumerate()
            .filter_map(|(i, q)| q.front().map(|item| (item.time(), i)))
            .min()
            .map(|(_, i)| i)
    }

    /// The time of the latest record released: the stream is complete up to here.
    pub fn released_up_to(&self) -> u64 {
        self.released_up_to
    }

    /// Records that arrived after later ones had been released.
    pub fn late(&self) -> u64 {
        self.late
    }

    pub fn pending(&self) -> usize {
        self.pending
    }
}

/// Merges a sorted batch into a sorted queue. Only the queue's tail that the batch
/// overlaps is moved, and the rest of the batch is appended in bulk: records are large
/// and moving them one by one was the recorder's main cost. Equal times keep arrival
/// order.
fn merge_into<T: Timed>(queue: &mut VecDeque<T>, batch: Vec<T>) {
    let Some(first) = batch.first().map(Timed::time) else {
        return;
    };
    let split = queue.partition_point(|item| item.time() <= first);
    let tail: Vec<T> = queue.drain(split..).collect();
    let mut batch = batch.into_iter();
    for item in tail {
        while batch
            .as_slice()
            .first()
            .is_some_and(|b| b.time() < item.time())
        {
            queue.extend(batch.next());
        }
        queue.push_back(item);
    }
    queue.extend(batch);
}

#[cfg(test)]
mod tests {
    use super::*;

    impl Timed for u64 {
        fn time(&self) -> u64 {
            *self
        }
    }

    fn released(sorter: &mut Sorter<u64>) -> Vec<u64> {
        let mut out = Vec::new();
        sorter.release(|t| out.push(t));
        out
    }

    #[test]
    fn holds_records_until_every_source_has_passed_them() {
        let mut sorter = Sorter::new(2, 1000);
        sorter.push(0, [10, 20, 30], 30);
        assert_eq!(
            released(&mut sorter),
            Vec::<u64>::new(),
            "source 1 may still send 5"
        );
        sorter.push(1, [5, 25], 25);
        assert_eq!(released(&mut sorter), vec![5, 10, 20, 25]);
        sorter.push(1, [], u64::MAX);
        assert_eq!(released(&mut sorter), vec![30]);
    }

    #[test]
    fn counts_records_behind_the_release_point_and_keeps_them() {
        let mut sorter = Sorter::new(1, 1000);
        sorter.push(0, [10, 20], 20);
        assert_eq!(released(&mut sorter), vec![10, 20]);
        sorter.push(0, [15], 30);
        assert_eq!(released(&mut sorter), vec![15]);
        assert_eq!(sorter.late(), 1);
    }

    #[test]
    fn merges_overlapping_batches_of_one_source() {
        let mut sorter = Sorter::new(1, 1000);
        sorter.push(0, [30, 10, 20], 15);
        sorter.push(0, [25, 12, 40], 35);
        assert_eq!(released(&mut sorter), vec![10, 12, 20, 25, 30]);
        assert_eq!(sorter.pending(), 1);
    }

    #[test]
    fn bounds_memory_by_releasing_early() {
        let mut sorter = Sorter::new(2, 3);
        sorter.push(0, [1, 2, 3, 4, 5], 5);
        assert_eq!(released(&mut sorter), vec![1, 2]);
        assert_eq!(sorter.pending(), 3);
        let mut rest = Vec::new();
        sorter.drain(|t| rest.push(t));
        assert_eq!(rest, vec![3, 4, 5]);
    }
}

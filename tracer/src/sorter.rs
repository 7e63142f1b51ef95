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

use std::cmp::Reverse;
use std::collections::BinaryHeap;

/// Something with a time to sort by.
pub trait Timed {
    fn time(&self) -> u64;
}

impl Timed for vmlat_bundle::Record {
    fn time(&self) -> u64 {
        vmlat_bundle::Record::time(self)
    }
}

struct Pending<T> {
    time: u64,
    seq: u64,
    item: T,
}

impl<T> PartialEq for Pending<T> {
    fn eq(&self, other: &Self) -> bool {
        (self.time, self.seq) == (other.time, other.seq)
    }
}
impl<T> Eq for Pending<T> {}
impl<T> PartialOrd for Pending<T> {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl<T> Ord for Pending<T> {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        (self.time, self.seq).cmp(&(other.time, other.seq))
    }
}

/// A k-way merge by watermark over a fixed set of sources.
pub struct Sorter<T> {
    heap: BinaryHeap<Reverse<Pending<T>>>,
    watermarks: Vec<u64>,
    released_up_to: u64,
    seq: u64,
    max_pending: usize,
    late: u64,
}

impl<T: Timed> Sorter<T> {
    pub fn new(sources: usize, max_pending: usize) -> Self {
        Sorter {
            heap: BinaryHeap::new(),
            watermarks: vec![0; sources],
            released_up_to: 0,
            seq: 0,
            max_pending,
            late: 0,
        }
    }

    /// Adds a batch from `source` and raises its watermark.
    pub fn push(&mut self, source: usize, items: impl IntoIterator<Item = T>, watermark: u64) {
        for item in items {
            let time = item.time();
            if time < self.released_up_to {
                self.late += 1;
            }
            self.seq += 1;
            self.heap.push(Reverse(Pending {
                time,
                seq: self.seq,
                item,
            }));
        }
        if let Some(mark) = self.watermarks.get_mut(source) {
            *mark = (*mark).max(watermark);
        }
    }

    /// Releases, in time order, everything no source can precede any more, plus the
    /// earliest records beyond `max_pending`.
    pub fn release(&mut self, mut emit: impl FnMut(T)) {
        let safe = self.watermarks.iter().copied().min().unwrap_or(u64::MAX);
        while let Some(Reverse(head)) = self.heap.peek() {
            if head.time > safe && self.heap.len() <= self.max_pending {
                break;
            }
            let Reverse(head) = self.heap.pop().expect("peeked");
            self.released_up_to = self.released_up_to.max(head.time);
            emit(head.item);
        }
    }

    /// Releases everything, in time order (at the end of a recording).
    pub fn drain(&mut self, mut emit: impl FnMut(T)) {
        while let Some(Reverse(head)) = self.heap.pop() {
            emit(head.item);
        }
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
        self.heap.len()
    }
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

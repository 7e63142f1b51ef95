//! A bounded reorder buffer that puts a nearly-sorted stream back in time order.
//!
//! Captures are in time order per interface, but not quite across interfaces (a
//! `tcpdump -i any` file interleaves per-CPU rings). The buffer holds items until one at
//! least `window` ns newer has arrived.
//!
//! Invariant: once an item `window` newer than another has been seen, nothing earlier
//! than the older one can still arrive (that is what `window` promises), so it is
//! released. Items released are therefore in non-decreasing time order. An item that
//! breaks the promise (older than one already released) is counted in [`Reorder::late`]
//! and dropped, never released out of order. Memory is bounded by the number of items
//! within one window, not by the length of the input.

use std::cmp::Ordering;
use std::collections::BinaryHeap;

/// See the module documentation.
#[derive(Debug)]
pub struct Reorder<T> {
    heap: BinaryHeap<Entry<T>>,
    window: i64,
    newest: i64,
    released: i64,
    seq: u64,
    late: u64,
}

#[derive(Debug)]
struct Entry<T> {
    t: i64,
    /// Arrival order, so that items with equal times keep it.
    seq: u64,
    item: T,
}

impl<T> PartialEq for Entry<T> {
    fn eq(&self, other: &Self) -> bool {
        (self.t, self.seq) == (other.t, other.seq)
    }
}

impl<T> Eq for Entry<T> {}

impl<T> PartialOrd for Entry<T> {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl<T> Ord for Entry<T> {
    /// Reversed, so that the max-heap pops the earliest item first.
    fn cmp(&self, other: &Self) -> Ordering {
        (other.t, other.seq).cmp(&(self.t, self.seq))
    }
}

impl<T> Reorder<T> {
    pub fn new(window_ns: i64) -> Self {
        Reorder {
            heap: BinaryHeap::new(),
            window: window_ns.max(0),
            newest: i64::MIN,
            released: i64::MIN,
            seq: 0,
            late: 0,
        }
    }

    /// Adds an item at time `t`, releasing every item that can no longer be preceded.
    pub fn push(&mut self, t: i64, item: T, mut release: impl FnMut(T)) {
        if t < self.released {
            self.late += 1;
            return;
        }
        self.heap.push(Entry {
            t,
            seq: self.seq,
            item,
        });
        self.seq += 1;
        self.newest = self.newest.max(t);
        while let Some(top) = self.heap.peek() {
            if top.t > self.newest.saturating_sub(self.window) {
                break;
            }
            if let Some(entry) = self.heap.pop() {
                self.released = entry.t;
                release(entry.item);
            }
        }
    }

    /// Releases everything still held, in order (at the end of the input).
    pub fn drain(&mut self, mut release: impl FnMut(T)) {
        while let Some(entry) = self.heap.pop() {
            self.released = entry.t;
            release(entry.item);
        }
    }

    /// Items dropped for arriving after their time had been released.
    pub fn late(&self) -> u64 {
        self.late
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    proptest! {
        #[test]
        fn releases_in_order_when_disorder_is_within_the_window(
            times in prop::collection::vec(0i64..1_000_000, 0..200),
            jitter in prop::collection::vec(0i64..50, 200),
        ) {
            let mut sorted = times.clone();
            sorted.sort();
            // Disorder each time by at most the window.
            let input: Vec<i64> = sorted.iter().zip(&jitter).map(|(t, j)| t + j).collect();
            let mut r = Reorder::new(100);
            let mut out = Vec::new();
            for &t in &input {
                r.push(t, t, |x| out.push(x));
            }
            r.drain(|x| out.push(x));
            let mut expected = input.clone();
            expected.sort();
            prop_assert_eq!(out, expected);
            prop_assert_eq!(r.late(), 0);
        }
    }

    #[test]
    fn late_items_are_counted_not_released() {
        let mut r = Reorder::new(10);
        let mut out = Vec::new();
        for t in [100, 200, 50, 201] {
            r.push(t, t, |x| out.push(x));
        }
        r.drain(|x| out.push(x));
        assert_eq!(out, vec![100, 200, 201]);
        assert_eq!(r.late(), 1);
    }
}

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

use std::collections::VecDeque;

/// See the module documentation.
///
/// Held items are kept sorted in a queue. Captures are nearly sorted, so almost every
/// item goes at the back, and the few out of order go just before it: a binary heap
/// moved every item log(n) times instead, which was a tenth of the analysis.
#[derive(Debug)]
pub struct Reorder<T> {
    held: VecDeque<(i64, T)>,
    window: i64,
    newest: i64,
    released: i64,
    late: u64,
}

impl<T> Reorder<T> {
    pub fn new(window_ns: i64) -> Self {
        Reorder {
            held: VecDeque::new(),
            window: window_ns.max(0),
            newest: i64::MIN,
            released: i64::MIN,
            late: 0,
        }
    }

    /// Adds an item at time `t`, releasing every item that can no longer be preceded.
    /// Items are released by reference from their place in the buffer, not moved out
    /// (a heartbeat is ~100 bytes, and every one goes through here). Inlined, so that an
    /// item is copied from where it was decoded straight into the queue.
    #[inline]
    pub fn push(&mut self, t: i64, item: T, mut release: impl FnMut(&T)) {
        if t < self.released {
            self.late += 1;
            return;
        }
        if self.held.back().is_none_or(|&(last, _)| last <= t) {
            self.held.push_back((t, item));
        } else {
            // After every item of the same time: equal times keep their arrival order.
            let at = self.held.partition_point(|&(held, _)| held <= t);
            self.held.insert(at, (t, item));
        }
        self.newest = self.newest.max(t);
        let releasable = self.newest.saturating_sub(self.window);
        while let Some((held, item)) = self.held.front() {
            if *held > releasable {
                break;
            }
            self.released = *held;
            release(item);
            self.held.pop_front();
        }
    }

    /// Releases everything still held, in order (at the end of the input).
    pub fn drain(&mut self, mut release: impl FnMut(&T)) {
        while let Some((held, item)) = self.held.pop_front() {
            self.released = held;
            release(&item);
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
                r.push(t, t, |&x| out.push(x));
            }
            r.drain(|&x| out.push(x));
            let mut expected = input.clone();
            expected.sort();
            prop_assert_eq!(out, expected);
            prop_assert_eq!(r.late(), 0);
        }
    }

    #[test]
    fn equal_times_keep_their_arrival_order_also_when_inserted_out_of_order() {
        let mut r = Reorder::new(100);
        let mut out = Vec::new();
        for (t, name) in [(10, "a"), (30, "b"), (10, "c"), (20, "d"), (10, "e")] {
            r.push(t, name, |&x| out.push(x));
        }
        r.drain(|&x| out.push(x));
        assert_eq!(out, ["a", "c", "e", "d", "b"]);
    }

    #[test]
    fn late_items_are_counted_not_released() {
        let mut r = Reorder::new(10);
        let mut out = Vec::new();
        for t in [100, 200, 50, 201] {
            r.push(t, t, |&x| out.push(x));
        }
        r.drain(|&x| out.push(x));
        assert_eq!(out, vec![100, 200, 201]);
        assert_eq!(r.late(), 1);
    }
}

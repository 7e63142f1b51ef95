//! The evidence windows of all gaps, merged: what the attribution pass keeps.
//!
//! Every gap asks for the recording from its start minus `--window` to its end plus one
//! interval. Overlapping windows are merged so that a record is kept once, and memory is
//! bounded by what falls into windows, not by the length of the recording.

/// A closed UTC interval in ns, `start <= end`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    pub start: i64,
    pub end: i64,
}

impl Window {
    pub fn contains(&self, t: i64) -> bool {
        self.start <= t && t <= self.end
    }
}

/// Sorted, disjoint windows.
///
/// Invariant: `windows[i].end < windows[i + 1].start`.
#[derive(Debug, Clone, Default)]
pub struct WindowSet {
    windows: Vec<Window>,
}

impl WindowSet {
    /// Merges any windows, each widened by `margin` ns on both sides.
    pub fn new(windows: impl IntoIterator<Item = Window>, margin: i64) -> Self {
        let mut all: Vec<Window> = windows
            .into_iter()
            .map(|w| Window {
                start: w.start.saturating_sub(margin),
                end: w.end.saturating_add(margin),
            })
            .collect();
        all.sort_by_key(|w| w.start);
        let mut merged: Vec<Window> = Vec::with_capacity(all.len());
        for w in all {
            match merged.last_mut() {
                Some(last) if w.start <= last.end => last.end = last.end.max(w.end),
                _ => merged.push(w),
            }
        }
        WindowSet { windows: merged }
    }

    /// The index of the window holding `t`.
    pub fn find(&self, t: i64) -> Option<usize> {
        let i = self.windows.partition_point(|w| w.end < t);
        self.windows.get(i).filter(|w| w.contains(t)).map(|_| i)
    }

    pub fn windows(&self) -> &[Window] {
        &self.windows
    }

    pub fn is_empty(&self) -> bool {
        self.windows.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overlapping_windows_merge_and_lookups_find_them() {
        let w = |start, end| Window { start, end };
        let set = WindowSet::new([w(50, 60), w(0, 10), w(5, 20), w(21, 30)], 0);
        assert_eq!(set.windows(), &[w(0, 20), w(21, 30), w(50, 60)]);
        assert_eq!(set.find(20), Some(0));
        assert_eq!(set.find(21), Some(1));
        assert_eq!(set.find(40), None);
        assert_eq!(set.find(61), None);
        let wide = WindowSet::new([w(0, 10), w(30, 40)], 10);
        assert_eq!(wide.windows(), &[w(-10, 50)]);
    }
}

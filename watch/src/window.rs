//! The watch window: the last `--before` seconds of records and packets, in memory.
//!
//! Records (CLOCK_MONOTONIC, in the order the recorder's sorter releases them) and each
//! capture point's packets (CLOCK_REALTIME, in capture order) are kept in time-ordered
//! queues. Whatever is older than the window's length is dropped from the front, as a
//! ring does: that is the window moving, not a loss. While an incident is open the
//! window is held from the incident's own start on ([`Window::hold_from`]), so that the
//! bundle gets the seconds before it; past the byte budget the oldest go anyway, and
//! those are counted as lost ([`Window::overflowed`]).

use std::collections::VecDeque;
use std::time::Duration;

use vmlat_bundle::Record;

/// One captured packet.
#[derive(Debug, Clone)]
pub struct Packet {
    /// CLOCK_REALTIME stamp.
    pub timestamp: Duration,
    pub wire_len: u32,
    pub data: Vec<u8>,
}

/// Bytes a packet takes in the window: its data and its queue slot.
fn packet_bytes(p: &Packet) -> usize {
    std::mem::size_of::<Packet>() + p.data.capacity()
}

/// Bytes a record takes in the window: its slot and the strings it owns.
fn record_bytes(r: &Record) -> usize {
    let owned = match r {
        Record::ProcessExec { filename, .. } => filename.capacity(),
        Record::Disk(d) => d.device.capacity(),
        _ => 0,
    };
    std::mem::size_of::<Record>() + owned
}

/// Where the window is held from: the same instant on both clocks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Hold {
    pub monotonic_ns: u64,
    pub realtime_ns: i64,
}

/// The bounded, time-ordered window.
pub struct Window {
    length_ns: u64,
    max_bytes: usize,
    bytes: usize,
    records: VecDeque<Record>,
    packets: Vec<VecDeque<Packet>>,
    hold: Option<Hold>,
    overflowed: u64,
}

impl Window {
    /// A window of `length` for `captures` capture points, in at most `max_bytes`.
    pub fn new(length: Duration, max_bytes: usize, captures: usize) -> Self {
        Window {
            length_ns: length.as_nanos() as u64,
            max_bytes,
            bytes: 0,
            // Never reallocated: the budget is reached before the capacity, so that the
            // deque's doubling never puts twice the budget in memory. Pages are only
            // resident once used.
            records: VecDeque::with_capacity(max_bytes / std::mem::size_of::<Record>() + 1),
            packets: (0..captures).map(|_| VecDeque::new()).collect(),
            hold: None,
            overflowed: 0,
        }
    }

    pub fn push_record(&mut self, record: Record) {
        let bytes = record_bytes(&record);
        self.make_room(bytes);
        self.bytes += bytes;
        self.records.push_back(record);
    }

    pub fn push_packet(&mut self, capture: usize, packet: Packet) {
        if capture >= self.packets.len() {
            return;
        }
        let bytes = packet_bytes(&packet);
        self.make_room(bytes);
        self.bytes += bytes;
        self.packets[capture].push_back(packet);
    }

    /// Keeps everything from `hold` on, until [`Window::release`]: an incident's
    /// seconds before. A later hold never moves an earlier one.
    pub fn hold_from(&mut self, hold: Hold) {
        self.hold.get_or_insert(hold);
    }

    pub fn release(&mut self) {
        self.hold = None;
    }

    /// Drops what is older than the window's length at `now`, or than the hold.
    pub fn advance(&mut self, now: Hold) {
        let mut keep_from = Hold {
            monotonic_ns: now.monotonic_ns.saturating_sub(self.length_ns),
            realtime_ns: now.realtime_ns - self.length_ns as i64,
        };
        if let Some(hold) = self.hold {
            keep_from.monotonic_ns = keep_from.monotonic_ns.min(hold.monotonic_ns);
            keep_from.realtime_ns = keep_from.realtime_ns.min(hold.realtime_ns);
        }
        while self
            .records
            .front()
            .is_some_and(|r| r.time() < keep_from.monotonic_ns)
        {
            self.pop_record();
        }
        for capture in 0..self.packets.len() {
            while self.packets[capture]
                .front()
                .is_some_and(|p| (p.timestamp.as_nanos() as i64) < keep_from.realtime_ns)
            {
                self.pop_packet(capture);
            }
        }
    }

    /// Makes room for `bytes` within the budget: the front of the longest queue (the
    /// records, or one capture point's packets) goes; while held, that is a loss.
    fn make_room(&mut self, bytes: usize) {
        while self.bytes + bytes > self.max_bytes {
            let oldest_packets = (0..self.packets.len())
                .filter(|&c| !self.packets[c].is_empty())
                .max_by_key(|&c| self.packets[c].len());
            let dropped =
                if self.records.len() >= oldest_packets.map_or(0, |c| self.packets[c].len()) {
                    self.pop_record()
                } else {
                    oldest_packets.is_some_and(|c| self.pop_packet(c))
                };
            if !dropped {
                break;
            }
            if self.hold.is_some() {
                self.overflowed += 1;
            }
        }
    }

    fn pop_record(&mut self) -> bool {
        match self.records.pop_front() {
            Some(r) => {
                self.bytes -= record_bytes(&r);
                true
            }
            None => false,
        }
    }

    fn pop_packet(&mut self, capture: usize) -> bool {
        match self.packets.get_mut(capture).and_then(VecDeque::pop_front) {
            Some(p) => {
                self.bytes -= packet_bytes(&p);
                true
            }
            None => false,
        }
    }

    pub fn records(&self) -> impl Iterator<Item = &Record> {
        self.records.iter()
    }

    pub fn packets(&self, capture: usize) -> impl Iterator<Item = &Packet> {
        self.packets.get(capture).into_iter().flatten()
    }

    /// Bytes held now.
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// Records and packets dropped past the byte budget while an incident held the
    /// window: lost from an incident's bundle.
    pub fn overflowed(&self) -> u64 {
        self.overflowed
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use vmlat_bundle::ClockAnchor;

    const S: u64 = 1_000_000_000;

    fn clock(t: u64) -> Record {
        Record::Clock(ClockAnchor {
            monotonic_ns: t,
            realtime_ns: t as i64,
            uncertainty_ns: 0,
        })
    }

    fn packet(t: u64) -> Packet {
        Packet {
            timestamp: Duration::from_nanos(t),
            wire_len: 60,
            data: vec![0; 60],
        }
    }

    fn at(t: u64) -> Hold {
        Hold {
            monotonic_ns: t,
            realtime_ns: t as i64,
        }
    }

    fn times(w: &Window) -> (Vec<u64>, Vec<u64>) {
        (
            w.records().map(Record::time).collect(),
            w.packets(0)
                .map(|p| p.timestamp.as_nanos() as u64)
                .collect(),
        )
    }

    #[test]
    fn keeps_the_last_seconds_and_drops_older_without_loss() {
        let mut w = Window::new(Duration::from_secs(3), 1 << 20, 1);
        for k in 0..10 {
            w.push_record(clock(k * S));
            w.push_packet(0, packet(k * S));
            w.advance(at(k * S));
        }
        assert_eq!(
            times(&w),
            (
                vec![6 * S, 7 * S, 8 * S, 9 * S],
                vec![6 * S, 7 * S, 8 * S, 9 * S]
            )
        );
        assert_eq!(w.overflowed(), 0);
    }

    #[test]
    fn a_hold_keeps_the_seconds_before_an_incident_until_released() {
        let mut w = Window::new(Duration::from_secs(3), 1 << 20, 1);
        for k in 0..10 {
            if k == 5 {
                w.hold_from(at(2 * S));
            }
            w.push_record(clock(k * S));
            w.advance(at(k * S));
        }
        assert_eq!(times(&w).0.first(), Some(&(2 * S)));
        w.release();
        w.advance(at(9 * S));
        assert_eq!(times(&w).0.first(), Some(&(6 * S)));
    }

    #[test]
    fn the_byte_budget_bounds_memory_and_counts_what_a_hold_loses() {
        let one = record_bytes(&clock(0));
        let mut w = Window::new(Duration::from_secs(60), 4 * one, 1);
        for k in 0..6 {
            w.push_record(clock(k * S));
        }
        assert_eq!(times(&w).0, vec![2 * S, 3 * S, 4 * S, 5 * S]);
        assert!(w.bytes() <= 4 * one);
        assert_eq!(w.overflowed(), 0, "not held: the ring moving on");
        w.hold_from(at(0));
        w.push_record(clock(6 * S));
        assert_eq!(w.overflowed(), 1);
    }
}

//! Block requests around a blocked span, from `block:block_rq_issue` and
//! `block:block_rq_complete`: which completed and how slowly, which were still pending,
//! which the blocked task's own threads issued, and which journal write ended its wait.
//! The sender's `guest-io` and the host's `host-io` both read them here.

use std::collections::BTreeMap;

use vmlat_bundle::Record;

use super::collect::BundleData;

/// A block request slower than this is slow.
pub(super) const SLOW_BLOCK_NS: i64 = 100_000_000;
/// Block requests issued this long before a blocked span are still looked at.
pub(super) const PENDING_HORIZON_NS: i64 = 10_000_000_000;
/// A request issued this long before a task blocked can be what it waits for.
pub(super) const OWN_IO_LEAD_NS: i64 = 1_000_000_000;
/// How soon after a journal write completes the task that waited for it runs again.
const WOKEN_BY_COMPLETION_NS: i64 = 50_000_000;
/// Thread names of filesystem journals: ext3/ext4's jbd2 names its thread `jbd2/DEV-INO`.
const JOURNAL_THREAD: &str = "jbd2/";

/// Block requests completed between `from` and `to`.
pub(super) struct BlockIo {
    pub completed: usize,
    pub pending: usize,
    /// Slowest completion: (latency, device).
    pub slowest: Option<(i64, String)>,
    /// Requests the task's own threads issued, shortly before or while it was blocked,
    /// by device.
    pub own: BTreeMap<String, usize>,
    /// Of those, the one longest in flight during the span (counted up to `to` when
    /// still pending then): (time in flight, device, issuing thread, issued at).
    pub own_longest: Option<(i64, String, i32, i64)>,
    /// A request of a filesystem journal thread (`jbd2/vdb-8`) that completed just
    /// before `to`, when the blocked task ran again: what its syscall waited for (a sync
    /// mount, an fsync, a rename: ext4 commits the journal and waits for it).
    /// (latency, device, thread).
    pub journal: Option<(i64, String, String)>,
}

/// A request in flight: issued at, by which of the task's own threads, and by which
/// journal thread (by name).
type Issued = (i64, Option<i32>, Option<String>);

/// The block requests of `data` from `from` to `to`; `own` tells the blocked task's
/// threads.
pub(super) fn block_io(
    data: &BundleData,
    own: impl Fn(i32) -> bool,
    from: i64,
    to: i64,
) -> BlockIo {
    let mut issued: BTreeMap<(u32, u64), Issued> = BTreeMap::new();
    let mut io = BlockIo {
        completed: 0,
        pending: 0,
        slowest: None,
        own: BTreeMap::new(),
        own_longest: None,
        journal: None,
    };
    let own_in_flight = |io: &mut BlockIo, t0: i64, until: i64, dev: u32, tid: i32| {
        let ns = until - t0;
        if until >= from && io.own_longest.as_ref().is_none_or(|(s, ..)| ns > *s) {
            io.own_longest = Some((ns, device_name(data, dev), tid, t0));
        }
    };
    for e in data.events_in(from - PENDING_HORIZON_NS, to) {
        match &e.record {
            Record::BlockIssue {
                dev,
                sector,
                tid,
                comm,
                ..
            } => {
                let journal = comm.starts_with(JOURNAL_THREAD).then(|| comm.to_string());
                let ours = (own(*tid) && e.t >= from - OWN_IO_LEAD_NS).then_some(*tid);
                if ours.is_some() {
                    *io.own.entry(device_name(data, *dev)).or_default() += 1;
                }
                issued.insert((*dev, *sector), (e.t, ours, journal));
            }
            Record::BlockComplete { dev, sector, .. } => {
                if let Some((t0, ours, journal)) = issued.remove(&(*dev, *sector)) {
                    if let Some(tid) = ours {
                        own_in_flight(&mut io, t0, e.t, *dev, tid);
                    }
                    if e.t >= from {
                        io.completed += 1;
                        let ns = e.t - t0;
                        if io.slowest.as_ref().is_none_or(|(s, _)| ns > *s) {
                            io.slowest = Some((ns, device_name(data, *dev)));
                        }
                        let woke = (0..=WOKEN_BY_COMPLETION_NS).contains(&(to - e.t));
                        if let (Some(thread), true) = (journal, woke) {
                            if io.journal.as_ref().is_none_or(|(s, ..)| ns > *s) {
                                io.journal = Some((ns, device_name(data, *dev), thread));
                            }
                        }
                    }
                }
            }
            _ => {}
        }
    }
    io.pending = issued.len();
    for ((dev, _), (t0, ours, _)) in issued {
        if let Some(tid) = ours {
            own_in_flight(&mut io, t0, to, dev, tid);
        }
    }
    io
}

/// A dev_t's name from the disk samples (major << 20 | minor).
fn device_name(data: &BundleData, dev: u32) -> String {
    let (major, minor) = (dev >> 20, dev & 0xfffff);
    data.samples
        .iter()
        .find_map(|s| match &s.record {
            Record::Disk(d) if d.major == major && d.minor == minor => Some(d.device.clone()),
            _ => None,
        })
        .unwrap_or_else(|| format!("{major}:{minor}"))
}

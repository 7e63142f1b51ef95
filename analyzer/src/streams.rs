//! Heartbeat streams, gaps, failovers and split-brain, computed in one streaming pass.
//!
//! The one stream tracker of vmlat: `vmlat analyze` feeds it the packets of its inputs
//! and reads the result at [`Tracker::finish`]; `vmlat watch` feeds it packets as they
//! are captured and acts on the [`StreamEvent`]s each observation returns as it
//! happens, with [`Tracker::tick`] telling it the time while no packet arrives (a
//! silence is only seen by the clock).
//!
//! A stream is (capture point, protocol + VRID or UDP port + VLAN, source); the streams
//! of one (capture point, protocol, VRID, VLAN, address family) form a group whose
//! master is tracked. [`Tracker::observe`] must see each capture point's heartbeats in
//! time order (the caller's reorder buffer guarantees it); capture points are
//! independent of each other. State is one entry per stream and group, never per
//! packet: failovers, gaps and split-brains are the only things that grow, and they are
//! the result (and, when asked for, every advert's time: see [`Tracker::new`]).
//!
//! Rules (`docs/verdicts.md`, "Incidents"):
//! - The first sender heard in a group is its master. Another sender becomes master
//!   when the master resigned (its last advert had priority 0: `resigned`), or has been
//!   silent for more than gap-factor × its interval (`master-down`), or is still
//!   advertising but is outranked: higher priority, or equal priority and a higher
//!   address, as RFC 5798 §6.4.3 breaks ties (`preempted`).
//! - A gap is an inter-arrival time above gap-factor × the interval the sender
//!   advertised in its previous packet. For VRRP/CARP, only a sender that was master
//!   when it fell silent, and was neither preempted nor resigned since, can have one: a
//!   silent backup is not a gap.
//! - A gap is critical when it reached the silence after which a backup takes over:
//!   VRRP's Master_Down_Interval, 3 × interval + skew, with the skew of the
//!   highest-priority backup seen in the group (the one that takes over first), or the
//!   sender's own priority when no backup was seen. The skew is (256 − priority)/256 ×
//!   interval for VRRPv3 (RFC 5798 §6.1) and (256 − priority)/256 s for VRRPv2 (RFC 3768
//!   §6.1), the same for the usual 1 s interval. CARP: 3 × the backup's own interval.
//!   BFD: Detect Mult × interval.
//! - Two senders whose runs of adverts (consecutive adverts without a gap) overlap for
//!   longer than one interval are in split-brain. So is, from its first advert, a
//!   lower-ranked router that begins to advertise while the master is active and has
//!   been master for more than an interval: a backup that hears the master never
//!   advertises (a firewall dropping VRRP on the backup shows exactly this).

use std::collections::HashMap;
use std::net::IpAddr;

use hdrhistogram::Histogram;
use rustc_hash::FxHashMap;

use crate::decode::{Heartbeat, Protocol};
use crate::model::{
    Advert, Failover, FailoverKind, Gap, GroupKey, IntervalBasis, IntervalStats, PacketRef,
    SplitBrain, Stream, StreamKey, Takeover,
};
use crate::time::{ms, Timestamp};

/// Something a stream did, reported as it happens (by [`Tracker::observe`] and
/// [`Tracker::tick`]); the same facts [`Tracker::finish`] returns in bulk.
#[derive(Debug, Clone)]
pub enum StreamEvent {
    /// A sender that could have a gap (a master, or any UDP heartbeat sender) has been
    /// silent for longer than its gap threshold at `at`: its next advert is overdue.
    /// Reported once per silence, by [`Tracker::tick`].
    Overdue {
        stream: StreamKey,
        /// Its last advert.
        last: Timestamp,
        at: Timestamp,
        threshold_ms: f64,
        /// The silence after which a peer acts on it (the master-down interval).
        critical_after_ms: Option<f64>,
    },
    /// A sender came back after a gap: the gap, closed.
    Resumed(Gap),
    /// Another router became master.
    Takeover(Failover),
    /// A second router began to advertise beside the active master: a split-brain
    /// began (its end and full extent are in [`Found::split_brains`]).
    SecondMaster {
        group: GroupKey,
        at: Timestamp,
        routers: Vec<IpAddr>,
    },
}

/// A second copy of a packet within this time is the same packet seen twice (a `-i any`
/// SLL capture, or a unicast peer that is also the sender), not a new advert.
const DUPLICATE_WINDOW_NS: i64 = 1_000_000;
/// UDP heartbeats that do not say their interval get one from their median inter-arrival
/// time once they have this many.
const MIN_SAMPLES_FOR_MEDIAN: u64 = 4;
const NS_PER_S: u64 = 1_000_000_000;

/// Identifies a capture point; see [`Tracker::capture_id`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct CaptureId(u32);

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
struct GroupId {
    capture: CaptureId,
    protocol: Protocol,
    id: u16,
    vlan: Option<u16>,
    /// VRIDs are per address family (RFC 5798 §5.2.3): VRID 51 over IPv4 and over IPv6
    /// are two virtual routers.
    ipv6: bool,
}

/// One sender's state in a group.
#[derive(Debug)]
struct Sender {
    src: IpAddr,
    /// The unicast peer of this stream; `None` for multicast.
    peer: Option<IpAddr>,
    dst: IpAddr,
    first_ns: i64,
    last: PacketRef,
    version: Option<u8>,
    interval_ns: Option<u64>,
    detect_mult: Option<u8>,
    priority_max: Option<u8>,
    priority_min: Option<u8>,
    adverts: u64,
    duplicates: u64,
    /// Inter-arrival times in µs. Counts of 32 bits (hdrhistogram saturates a bucket
    /// at 4 G adverts): half the size halved the page faults of an analysis.
    histogram: Histogram<u32>,
    max_dt_ns: i64,
    /// Median inter-arrival, refreshed as the count doubles, for UDP without an interval.
    median_ns: Option<u64>,
    median_at: u64,
    /// Start of the current run of adverts without a gap, for split-brain.
    run_first_ns: i64,
    /// Master when it last advertised, and not preempted or resigned since: its next
    /// silence would be a gap.
    may_gap: bool,
    /// Every advert, when the tracker keeps them.
    adverts_kept: Vec<Advert>,
    /// Its current silence was reported as [`StreamEvent::Overdue`].
    overdue_reported: bool,
    last_interval_ns: Option<i64>,
}

#[derive(Debug, Default)]
struct Group {
    senders: Vec<Sender>,
    master: Option<usize>,
    /// When the current master became master (its first advert as master).
    master_since_ns: i64,
    split: Option<OpenSplit>,
    /// Indices into the tracker's failovers, in time order.
    failovers: Vec<usize>,
}

#[derive(Debug)]
struct OpenSplit {
    start_ns: i64,
    end_ns: i64,
    routers: Vec<IpAddr>,
    /// The group's master when the split began.
    master: Option<IpAddr>,
}

/// The streaming state of an analysis.
#[derive(Debug)]
pub struct Tracker {
    gap_factor: f64,
    keep_adverts: bool,
    captures: Vec<String>,
    capture_ids: HashMap<String, CaptureId>,
    /// Every group, in the order first heard.
    groups: Vec<(GroupId, Group)>,
    /// Where each group is in `groups`: looked up once per heartbeat, hashed with
    /// FxHash, whose keys need no protection from chosen collisions here (SipHash was a
    /// third of `analyze`'s instructions on a 1 M-advert capture, and two more lookups
    /// of the group a tenth: BENCHMARKS.md).
    group_index: FxHashMap<GroupId, usize>,
    failovers: Vec<Failover>,
    split_brains: Vec<SplitBrain>,
    gaps: Vec<Gap>,
    capture_ends: HashMap<CaptureId, i64>,
    /// What the current observation or tick found; handed out and emptied by each.
    events: Vec<StreamEvent>,
}

/// One sender as the tracker has it ([`Tracker::sender`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SenderState {
    /// Adverts counted (not the duplicates).
    pub adverts: u64,
    /// The last advert counted.
    pub last: Timestamp,
    /// The time from the advert before it, once there were two.
    pub last_interval_ns: Option<i64>,
}

/// What the tracker found.
#[derive(Debug)]
pub struct Found {
    pub streams: Vec<Stream>,
    pub failovers: Vec<Failover>,
    pub split_brains: Vec<SplitBrain>,
    pub gaps: Vec<Gap>,
    /// Every advert by stream, in time order; empty unless the tracker kept them.
    pub adverts: HashMap<StreamKey, Vec<Advert>>,
}

impl Tracker {
    /// A tracker measuring gaps against `gap_factor` × the interval, which also keeps
    /// every advert (not the duplicates) when `keep_adverts` is set.
    pub fn new(gap_factor: f64, keep_adverts: bool) -> Self {
        Tracker {
            gap_factor,
            keep_adverts,
            captures: Vec::new(),
            capture_ids: HashMap::new(),
            groups: Vec::new(),
            group_index: FxHashMap::default(),
            failovers: Vec::new(),
            split_brains: Vec::new(),
            gaps: Vec::new(),
            capture_ends: HashMap::new(),
            events: Vec::new(),
        }
    }

    /// The id of a capture point by name; the same name is the same capture point.
    pub fn capture_id(&mut self, name: &str) -> CaptureId {
        if let Some(&id) = self.capture_ids.get(name) {
            return id;
        }
        let id = CaptureId(self.captures.len() as u32);
        self.captures.push(name.to_string());
        self.capture_ids.insert(name.to_string(), id);
        id
    }

    /// Takes one heartbeat (each capture point's must come in time order) and returns
    /// what it made happen: a takeover, a second master, a sender back from a gap.
    pub fn observe(
        &mut self,
        capture: CaptureId,
        hb: &Heartbeat,
    ) -> std::vec::Drain<'_, StreamEvent> {
        self.events.clear();
        self.track(capture, hb);
        self.events.drain(..)
    }

    /// [`Tracker::observe`] for a whole analysis, which reads the same facts at the end,
    /// from [`Tracker::finish`]: the events of the moment are dropped unread.
    pub(crate) fn observe_quietly(&mut self, capture: CaptureId, hb: &Heartbeat) {
        self.events.clear();
        self.track(capture, hb);
    }

    /// The time is now `now_ns` (on the packets' clock) on every capture point: every
    /// sender that could have a gap and has been silent for longer than its gap
    /// threshold is reported overdue, once per silence.
    pub fn tick(&mut self, now_ns: i64) -> std::vec::Drain<'_, StreamEvent> {
        self.events.clear();
        for (gid, group) in &mut self.groups {
            let gid = &*gid;
            let mut overdue = Vec::new();
            for (i, s) in group.senders.iter().enumerate() {
                let may_gap = s.may_gap || !gid.protocol.elects_master();
                if !may_gap || s.overdue_reported || s.adverts == 0 {
                    continue;
                }
                let Some((interval, _)) = s.interval() else {
                    continue;
                };
                let threshold = (interval as f64 * self.gap_factor) as i64;
                if now_ns - s.last.t.0 > threshold {
                    overdue.push((i, interval, threshold));
                }
            }
            for (i, interval, threshold) in overdue {
                let critical_after = critical_after(gid.protocol, group, i, interval);
                let Some(s) = group.senders.get_mut(i) else {
                    continue;
                };
                s.overdue_reported = true;
                self.events.push(StreamEvent::Overdue {
                    stream: StreamKey {
                        group: group_key(&self.captures, *gid),
                        src: s.src,
                        peer: s.peer,
                    },
                    last: s.last.t,
                    at: Timestamp(now_ns),
                    threshold_ms: ms(i128::from(threshold)),
                    critical_after_ms: critical_after.map(|(after, _)| ms(i128::from(after))),
                });
            }
        }
        self.events.drain(..)
    }

    /// The sender of `hb` as it stands after [`Tracker::observe`] took `hb`: `None`
    /// if the tracker never saw it.
    pub fn sender(&self, capture: CaptureId, hb: &Heartbeat) -> Option<SenderState> {
        let g = self.group_index.get(&GroupId {
            capture,
            protocol: hb.protocol,
            id: hb.group,
            vlan: hb.vlan,
            ipv6: hb.src.is_ipv6(),
        })?;
        let (_, group) = self.groups.get(*g)?;
        let peer = unicast_peer(hb);
        let s = group
            .senders
            .iter()
            .find(|s| s.src == hb.src && s.peer == peer)?;
        Some(SenderState {
            adverts: s.adverts,
            last: s.last.t,
            last_interval_ns: s.last_interval_ns,
        })
    }

    /// Each group's master now, with its last advert.
    pub fn masters(&self) -> Vec<(GroupKey, IpAddr, Timestamp)> {
        self.groups
            .iter()
            .filter_map(|(gid, group)| {
                let master = group.senders.get(group.master?)?;
                Some((group_key(&self.captures, *gid), master.src, master.last.t))
            })
            .collect()
    }

    fn track(&mut self, capture: CaptureId, hb: &Heartbeat) {
        let gid = GroupId {
            capture,
            protocol: hb.protocol,
            id: hb.group,
            vlan: hb.vlan,
            ipv6: hb.src.is_ipv6(),
        };
        let gap_factor = self.gap_factor;
        // `get` before `entry`: nearly every heartbeat finds its group, and the entry
        // API's reservation made the lookup a tenth of the tracker's time.
        let g = match self.group_index.get(&gid) {
            Some(&g) => g,
            None => {
                self.groups.push((gid, Group::default()));
                self.group_index.insert(gid, self.groups.len() - 1);
                self.groups.len() - 1
            }
        };
        let Some((_, group)) = self.groups.get_mut(g) else {
            return;
        };
        let peer = unicast_peer(hb);
        let i = match group
            .senders
            .iter()
            .position(|s| s.src == hb.src && s.peer == peer)
        {
            Some(i) => i,
            None => {
                group.senders.push(Sender::new(hb));
                group.senders.len() - 1
            }
        };
        let Some(sender) = group.senders.get(i) else {
            return;
        };
        let prev = (sender.adverts > 0).then_some(sender.last);
        if let Some(p) = prev {
            if hb.t_ns - p.t.0 < DUPLICATE_WINDOW_NS && same_packet(&p, hb) {
                if let Some(s) = group.senders.get_mut(i) {
                    s.duplicates += 1;
                }
                return;
            }
        }
        let silence = prev.and_then(|p| {
            let (interval, basis) = sender.interval()?;
            let threshold = (interval as f64 * gap_factor) as i64;
            let dt = hb.t_ns - p.t.0;
            (dt > threshold).then_some((p, interval, basis, threshold))
        });
        let may_gap = sender.may_gap || !hb.protocol.elects_master();

        if hb.protocol.elects_master() {
            self.elect(g, i, hb);
        }
        if let (Some((p, interval, basis, threshold)), true) = (silence, may_gap) {
            let end = (hb.t_ns, Some(packet_ref(hb)));
            self.record_gap(g, i, p, end, interval, basis, threshold);
        }
        let Some((_, group)) = self.groups.get_mut(g) else {
            return;
        };
        let master_src = group
            .master
            .and_then(|m| group.senders.get(m))
            .map(|s| s.src);
        let is_master = master_src == Some(hb.src);
        if let Some(s) = group.senders.get_mut(i) {
            s.update(hb, prev, silence.is_some(), is_master);
            if self.keep_adverts {
                s.adverts_kept.push(Advert {
                    t: Timestamp(hb.t_ns),
                    priority: hb.priority,
                });
            }
        }
        if hb.protocol.elects_master() && hb.priority != Some(0) {
            let was_split = group.split.is_some();
            if let Some(done) = check_split(group, i, hb, gap_factor) {
                self.split_brains
                    .push(split_brain(&self.captures, gid, done));
            }
            if let (false, Some(split)) = (was_split, &group.split) {
                let mut routers = split.routers.clone();
                routers.sort();
                self.events.push(StreamEvent::SecondMaster {
                    group: group_key(&self.captures, gid),
                    at: Timestamp(hb.t_ns),
                    routers,
                });
            }
        }
    }

    /// Applies the master election rules of the module documentation to an advert from
    /// sender `i` of group `g` (its index in `groups`).
    fn elect(&mut self, g: usize, i: usize, hb: &Heartbeat) {
        let gap_factor = self.gap_factor;
        let Some(&mut (gid, ref mut group)) = self.groups.get_mut(g) else {
            return;
        };
        if hb.protocol == Protocol::Vrrp && hb.priority == Some(0) {
            // A resigning router is nobody's new master; the next advert from another
            // router is the takeover.
            return;
        }
        let Some(m) = group.master else {
            group.master = Some(i);
            group.master_since_ns = hb.t_ns;
            return;
        };
        let Some(master) = group.senders.get(m) else {
            return;
        };
        if master.src == hb.src {
            // The same router (another of its unicast streams) is still the master.
            return;
        }
        let last = master.last;
        let silent_for = hb.t_ns - last.t.0;
        let master_interval = master.interval_ns.unwrap_or(NS_PER_S);
        let kind = if hb.protocol == Protocol::Vrrp && last.priority == Some(0) {
            FailoverKind::Resigned
        } else if silent_for as f64 > gap_factor * master_interval as f64 {
            FailoverKind::MasterDown
        } else if outranks(
            hb.protocol,
            (hb.priority, hb.src),
            (last.priority, master.src),
        ) {
            FailoverKind::Preempted
        } else {
            return;
        };
        let failover = Failover {
            group: group_key(&self.captures, gid),
            at: Timestamp(hb.t_ns),
            from: master.src,
            to: hb.src,
            kind,
            from_last_seen: last.t,
            from_priority: last.priority,
            to_priority: hb.priority,
        };
        if kind != FailoverKind::MasterDown {
            if let Some(old) = group.senders.get_mut(m) {
                old.may_gap = false;
            }
        }
        group.master = Some(i);
        group.master_since_ns = hb.t_ns;
        group.failovers.push(self.failovers.len());
        self.events.push(StreamEvent::Takeover(failover.clone()));
        self.failovers.push(failover);
    }

    #[allow(clippy::too_many_arguments)]
    fn record_gap(
        &mut self,
        g: usize,
        i: usize,
        prev: PacketRef,
        (end_ns, next): (i64, Option<PacketRef>),
        interval_ns: u64,
        interval_basis: IntervalBasis,
        threshold_ns: i64,
    ) {
        let Some(&(gid, ref group)) = self.groups.get(g) else {
            return;
        };
        let Some(sender) = group.senders.get(i) else {
            return;
        };
        let critical_after = critical_after(gid.protocol, group, i, interval_ns);
        let duration_ns = end_ns - prev.t.0;
        let mut takeovers: Vec<Takeover> = group
            .failovers
            .iter()
            .rev()
            .filter_map(|&f| self.failovers.get(f))
            .take_while(|f| f.at > prev.t)
            .filter(|f| f.at.0 <= end_ns)
            .map(|f| Takeover {
                at: f.at,
                to: f.to,
                kind: f.kind,
            })
            .collect();
        takeovers.reverse();
        let gap = Gap {
            stream: StreamKey {
                group: group_key(&self.captures, gid),
                src: sender.src,
                peer: sender.peer,
            },
            start: prev.t,
            end: Timestamp(end_ns),
            duration_ms: ms(i128::from(duration_ns)),
            interval_ms: ms(i128::from(interval_ns)),
            interval_basis,
            threshold_ms: ms(i128::from(threshold_ns)),
            critical: critical_after
                .as_ref()
                .is_some_and(|(after, _)| duration_ns as u64 >= *after),
            critical_after_ms: critical_after
                .as_ref()
                .map(|(after, _)| ms(i128::from(*after))),
            critical_basis: critical_after.map(|(_, basis)| basis),
            takeovers,
            open: next.is_none(),
            prev,
            next,
            incident: 0,
        };
        if !gap.open {
            self.events.push(StreamEvent::Resumed(gap.clone()));
        }
        self.gaps.push(gap);
    }

    /// The end of capture point `capture`'s recording (its last packet of any kind, or
    /// the recorder's stop): a master silent since before it, by more than its gap
    /// threshold, has an open gap.
    pub fn end_capture(&mut self, capture: CaptureId, t_ns: i64) {
        let end = self.capture_ends.entry(capture).or_insert(t_ns);
        *end = (*end).max(t_ns);
    }

    /// The gaps of masters that had not come back when their capture point's
    /// recording ended. Such a silence counts once it reached the master-down interval
    /// (the threshold where there is none): a shorter one at the very end is a
    /// recording that stopped between two adverts, not yet an event.
    fn close_open_gaps(&mut self) {
        let mut open = Vec::new();
        for (g, (gid, group)) in self.groups.iter().enumerate() {
            let Some(&end) = self.capture_ends.get(&gid.capture) else {
                continue;
            };
            for (i, s) in group.senders.iter().enumerate() {
                let may_gap = s.may_gap || !gid.protocol.elects_master();
                let Some((interval, basis)) = s.interval() else {
                    continue;
                };
                let threshold = (interval as f64 * self.gap_factor) as i64;
                let matters = critical_after(gid.protocol, group, i, interval)
                    .map_or(threshold, |(after, _)| after as i64);
                if may_gap && s.adverts > 0 && end - s.last.t.0 > threshold.max(matters) {
                    open.push((g, i, s.last, interval, basis, threshold, end));
                }
            }
        }
        for (g, i, last, interval, basis, threshold, end) in open {
            self.record_gap(g, i, last, (end, None), interval, basis, threshold);
        }
    }

    /// Closes what is still open and returns everything found, sorted by time.
    pub fn finish(mut self) -> Found {
        self.close_open_gaps();
        let mut streams = Vec::new();
        let mut adverts = HashMap::new();
        let mut open = Vec::new();
        for (gid, group) in self.groups.drain(..) {
            let master_down: Vec<Option<f64>> = (0..group.senders.len())
                .map(|i| master_down_ms(gid.protocol, &group, i))
                .collect();
            if let Some(split) = group.split {
                open.push((gid, split));
            }
            for (mut s, master_down_ms) in group.senders.into_iter().zip(master_down) {
                if s.adverts > 0 {
                    let key = StreamKey {
                        group: group_key(&self.captures, gid),
                        src: s.src,
                        peer: s.peer,
                    };
                    streams.push(s.summary(key.clone(), master_down_ms));
                    if self.keep_adverts {
                        adverts.insert(key, std::mem::take(&mut s.adverts_kept));
                    }
                }
            }
        }
        for (gid, split) in open {
            self.split_brains
                .push(split_brain(&self.captures, gid, split));
        }
        streams.sort_by(|a, b| a.key.cmp(&b.key));
        self.failovers
            .sort_by(|a, b| (a.at, &a.group).cmp(&(b.at, &b.group)));
        self.gaps
            .sort_by(|a, b| (a.start, &a.stream).cmp(&(b.start, &b.stream)));
        self.split_brains
            .sort_by(|a, b| (a.start, &a.group).cmp(&(b.start, &b.group)));
        Found {
            streams,
            failovers: self.failovers,
            split_brains: self.split_brains,
            gaps: self.gaps,
            adverts,
        }
    }
}

impl Sender {
    fn new(hb: &Heartbeat) -> Self {
        Sender {
            src: hb.src,
            peer: unicast_peer(hb),
            dst: hb.dst,
            first_ns: hb.t_ns,
            last: packet_ref(hb),
            version: hb.version,
            interval_ns: hb.interval_ns,
            detect_mult: hb.detect_mult,
            priority_max: None,
            priority_min: None,
            adverts: 0,
            duplicates: 0,
            // Three significant digits: 1 ms resolution at 1 s. Auto-resizing, so that it
            // only grows as far as the longest interval seen.
            histogram: Histogram::new(3).expect("3 significant digits are valid"),
            max_dt_ns: 0,
            median_ns: None,
            median_at: 0,
            run_first_ns: hb.t_ns,
            may_gap: false,
            adverts_kept: Vec::new(),
            overdue_reported: false,
            last_interval_ns: None,
        }
    }

    /// The interval a gap is measured against, and where it came from.
    fn interval(&self) -> Option<(u64, IntervalBasis)> {
        match (self.interval_ns, self.median_ns) {
            (Some(i), _) => Some((i, IntervalBasis::Advertised)),
            (None, Some(m)) if m > 0 => Some((m, IntervalBasis::ObservedMedian)),
            _ => None,
        }
    }

    fn update(
        &mut self,
        hb: &Heartbeat,
        prev: Option<PacketRef>,
        after_gap: bool,
        is_master: bool,
    ) {
        if let Some(p) = prev {
            let dt = (hb.t_ns - p.t.0).max(0);
            let us = (dt / 1_000) as u64;
            // Recording only fails when it cannot grow, past any real interval.
            if self.histogram.record(us).is_err() {
                self.histogram.saturating_record(us);
            }
            self.max_dt_ns = self.max_dt_ns.max(dt);
            self.last_interval_ns = Some(dt);
        }
        let restarts_run = prev.is_none_or(|p| after_gap || p.priority == Some(0));
        if restarts_run {
            self.run_first_ns = hb.t_ns;
        }
        self.adverts += 1;
        self.overdue_reported = false;
        self.last = packet_ref(hb);
        self.dst = hb.dst;
        self.version = hb.version.or(self.version);
        self.interval_ns = hb.interval_ns.or(self.interval_ns);
        self.detect_mult = hb.detect_mult.or(self.detect_mult);
        if let Some(p) = hb.priority {
            self.priority_max = Some(self.priority_max.map_or(p, |m| m.max(p)));
            self.priority_min = Some(self.priority_min.map_or(p, |m| m.min(p)));
        }
        self.may_gap = is_master && hb.priority != Some(0);
        let samples = self.histogram.len();
        if self.interval_ns.is_none()
            && samples >= MIN_SAMPLES_FOR_MEDIAN
            && samples >= 2 * self.median_at
        {
            // Refreshed as the count doubles: reading a quantile walks the histogram.
            self.median_ns = Some(self.histogram.value_at_quantile(0.5) * 1_000);
            self.median_at = samples;
        }
    }

    fn summary(&self, key: StreamKey, master_down_ms: Option<f64>) -> Stream {
        // A quantile is the top of its histogram bucket, which can be above the exact max.
        let max = ms(i128::from(self.max_dt_ns));
        let quantile = |us: Option<u64>| ms(i128::from(us.unwrap_or_default()) * 1_000).min(max);
        Stream {
            key,
            dst: self.dst,
            version: self.version,
            priority: self.priority_max,
            priority_min: self.priority_min,
            adverts: self.adverts,
            duplicates: self.duplicates,
            advert_interval_ms: self.interval_ns.map(|i| ms(i128::from(i))),
            interval_ms: (!self.histogram.is_empty()).then(|| {
                // Both in one walk of the buckets (one value per quantile asked): each
                // walk is most of the way up to the interval, and two of them were a
                // tenth of a 1 M-advert analysis (BENCHMARKS.md).
                let mut quantiles = self.histogram.value_at_quantiles([0.5, 0.99]);
                IntervalStats {
                    p50: quantile(quantiles.next()),
                    p99: quantile(quantiles.next()),
                    max,
                }
            }),
            master_down_ms,
            first: Timestamp(self.first_ns),
            last: self.last.t,
        }
    }
}

/// The destination of a unicast advert, which makes its own stream.
fn unicast_peer(hb: &Heartbeat) -> Option<IpAddr> {
    (!hb.dst.is_multicast()).then_some(hb.dst)
}

fn packet_ref(hb: &Heartbeat) -> PacketRef {
    PacketRef {
        t: Timestamp(hb.t_ns),
        ip_id: hb.ip_id,
        ip_checksum: hb.ip_checksum,
        checksum: hb.checksum,
        ifindex: hb.ifindex,
        priority: hb.priority,
    }
}

/// Same IPv4 identification and checksums: the same packet, seen again. IPv6 has no
/// identification, and a sender's adverts are identical, so there time alone decides.
fn same_packet(p: &PacketRef, hb: &Heartbeat) -> bool {
    p.ip_id == hb.ip_id && p.ip_checksum == hb.ip_checksum && p.checksum == hb.checksum
}

/// How much a router wants to be master: VRRP priority, or for CARP the inverse of
/// advskew (a lower skew advertises sooner and wins).
fn preference(protocol: Protocol, priority: Option<u8>) -> u8 {
    let p = priority.unwrap_or(0);
    if protocol == Protocol::Carp {
        255 - p
    } else {
        p
    }
}

/// Whether `a` outranks `b` (priority, then address, RFC 5798 §6.4.3).
fn outranks(protocol: Protocol, a: (Option<u8>, IpAddr), b: (Option<u8>, IpAddr)) -> bool {
    (preference(protocol, a.0), a.1) > (preference(protocol, b.0), b.1)
}

/// [`critical_after`] of sender `i` at its last interval, in ms: its stream's
/// `master_down_ms`.
fn master_down_ms(protocol: Protocol, group: &Group, i: usize) -> Option<f64> {
    let (interval_ns, _) = group.senders.get(i)?.interval()?;
    critical_after(protocol, group, i, interval_ns).map(|(after, _)| ms(i128::from(after)))
}

/// The silence after which a peer acts on sender `i`'s absence, with how it was found.
fn critical_after(
    protocol: Protocol,
    group: &Group,
    i: usize,
    interval_ns: u64,
) -> Option<(u64, String)> {
    let sender = group.senders.get(i)?;
    let backup = group
        .senders
        .iter()
        .enumerate()
        .filter(|&(j, s)| {
            j != i
                && s.src != sender.src
                && s.priority_max
                    .is_some_and(|p| preference(protocol, Some(p)) > 0)
        })
        .max_by_key(|(_, s)| (preference(protocol, s.priority_max), s.src))
        .map(|(_, s)| s);
    let interval_s = interval_ns as f64 / 1e9;
    match protocol {
        Protocol::Vrrp => {
            let (priority, whose) = match backup {
                Some(b) => (
                    b.priority_max?,
                    format!(
                        "the skew of backup {} (priority {})",
                        b.src, b.priority_max?
                    ),
                ),
                None => (
                    sender.priority_max?,
                    format!(
                        "the sender's own priority {}: no backup seen",
                        sender.priority_max?
                    ),
                ),
            };
            let skew_ns = match sender.version {
                Some(2) => (256 - u64::from(priority)) * NS_PER_S / 256,
                _ => (256 - u64::from(priority)) * interval_ns / 256,
            };
            let after = 3 * interval_ns + skew_ns;
            Some((
                after,
                format!(
                    "master-down interval {:.3} s: 3 × {interval_s:.3} s + {whose}",
                    after as f64 / 1e9
                ),
            ))
        }
        Protocol::Carp => {
            let (interval, whose) = match backup.and_then(|b| Some((b.interval_ns?, b))) {
                Some((bi, b)) => (
                    bi,
                    format!("backup {}'s interval {:.3} s", b.src, bi as f64 / 1e9),
                ),
                None => (
                    interval_ns,
                    format!("the sender's own interval {interval_s:.3} s: no backup seen"),
                ),
            };
            Some((
                3 * interval,
                format!(
                    "CARP master-down {:.3} s: 3 × {whose}",
                    3.0 * interval as f64 / 1e9
                ),
            ))
        }
        Protocol::Bfd => {
            let mult = sender.detect_mult?;
            let after = u64::from(mult) * interval_ns;
            Some((
                after,
                format!(
                    "BFD detection time {:.3} s: {mult} × {interval_s:.3} s",
                    after as f64 / 1e9
                ),
            ))
        }
        Protocol::Corosync | Protocol::Udp => None,
    }
}

/// Updates the group's split-brain episode after an advert from sender `i` at `t`, and
/// returns the episode if it just ended.
fn check_split(group: &mut Group, i: usize, hb: &Heartbeat, gap_factor: f64) -> Option<OpenSplit> {
    let t = hb.t_ns;
    let me = group.senders.get(i)?;
    let mut overlapping = Vec::new();
    for (j, other) in group.senders.iter().enumerate() {
        if j == i || other.src == me.src || other.last.priority == Some(0) {
            continue;
        }
        let other_interval = other.interval_ns.unwrap_or(NS_PER_S);
        let active = (t - other.last.t.0) as f64 <= gap_factor * other_interval as f64;
        let start = me.run_first_ns.max(other.run_first_ns);
        let end = other.last.t.0.min(t);
        let interval = me.interval_ns.unwrap_or(NS_PER_S).max(other_interval);
        // A lower-ranked router that began to advertise while the master was active
        // (and had been master for an interval: not the last advert of a router just
        // preempted) is a second master however briefly: a backup never advertises.
        let outranked_newcomer = group.master == Some(j)
            && !outranks(
                hb.protocol,
                (hb.priority, hb.src),
                (other.last.priority, other.src),
            )
            && me.run_first_ns - group.master_since_ns > other_interval as i64;
        if active && outranked_newcomer {
            overlapping.push((other.src, me.run_first_ns, t));
        } else if active && end - start > interval as i64 {
            overlapping.push((other.src, start, end));
        }
    }
    if overlapping.is_empty() {
        return group.split.take();
    }
    let master = group
        .master
        .and_then(|m| group.senders.get(m))
        .map(|s| s.src);
    let split = group.split.get_or_insert_with(|| OpenSplit {
        start_ns: t,
        end_ns: i64::MIN,
        routers: Vec::new(),
        master,
    });
    let me_src = me.src;
    for (src, start, end) in overlapping {
        split.start_ns = split.start_ns.min(start);
        split.end_ns = split.end_ns.max(end);
        if !split.routers.contains(&src) {
            split.routers.push(src);
        }
    }
    if !split.routers.contains(&me_src) {
        split.routers.push(me_src);
    }
    None
}

fn group_key(captures: &[String], gid: GroupId) -> GroupKey {
    GroupKey {
        capture: captures
            .get(gid.capture.0 as usize)
            .cloned()
            .unwrap_or_default(),
        protocol: gid.protocol,
        vrid: gid.id,
        vlan: gid.vlan,
    }
}

fn split_brain(captures: &[String], gid: GroupId, split: OpenSplit) -> SplitBrain {
    let mut routers = split.routers;
    routers.sort();
    SplitBrain {
        group: group_key(captures, gid),
        start: Timestamp(split.start_ns),
        end: Timestamp(split.end_ns),
        duration_ms: ms(i128::from(split.end_ns - split.start_ns)),
        routers,
        master: split.master,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: i64 = 1_000_000;

    fn vrrp(t_ms: i64, src: &str, priority: u8) -> Heartbeat {
        Heartbeat {
            t_ns: t_ms * MS,
            src: src.parse().unwrap(),
            dst: "224.0.0.18".parse().unwrap(),
            protocol: Protocol::Vrrp,
            group: 51,
            version: Some(3),
            priority: Some(priority),
            interval_ns: Some(1_000 * MS as u64),
            detect_mult: None,
            ip_id: Some(t_ms as u16),
            ip_checksum: Some(0),
            checksum: 0,
            ttl: 255,
            ifindex: None,
            outgoing: None,
            vlan: None,
        }
    }

    fn udp(
        t_ms: i64,
        protocol: Protocol,
        interval_ns: Option<u64>,
        detect_mult: Option<u8>,
    ) -> Heartbeat {
        Heartbeat {
            protocol,
            group: 3784,
            version: None,
            priority: None,
            interval_ns,
            detect_mult,
            ..vrrp(t_ms, "10.0.0.9", 0)
        }
    }

    fn run(beats: &[Heartbeat]) -> Found {
        let mut tracker = Tracker::new(1.5, true);
        let capture = tracker.capture_id("test");
        for hb in beats {
            tracker.observe(capture, hb);
        }
        tracker.finish()
    }

    /// Feeds `beats` one by one, ticking every 100 ms of packet time in between as
    /// `vmlat watch` does, and returns each event with the time it was reported at.
    fn live(beats: &[Heartbeat], until_ms: i64) -> (Vec<(i64, StreamEvent)>, Found) {
        let mut tracker = Tracker::new(1.5, false);
        let capture = tracker.capture_id("test");
        let mut events = Vec::new();
        let mut beats = beats.iter().peekable();
        for now in (0..=until_ms).step_by(100) {
            while let Some(hb) = beats.next_if(|hb| hb.t_ns <= now * MS) {
                events.extend(tracker.observe(capture, hb).map(|e| (hb.t_ns / MS, e)));
            }
            events.extend(tracker.tick(now * MS).map(|e| (now, e)));
        }
        (events, tracker.finish())
    }

    #[test]
    fn a_silent_master_is_overdue_as_it_happens_then_taken_over_and_back() {
        // vr1 (150) silent from 2 s to 6.5 s; vr2 (100) takes over at its master-down
        // interval and is preempted when vr1 comes back.
        let mut beats: Vec<_> = [0, 1000, 2000, 6500, 7500]
            .iter()
            .map(|&t| vrrp(t, "10.0.0.1", 150))
            .collect();
        beats.extend((0..4).map(|k| vrrp(5700 + k * 1000, "10.0.0.2", 100)));
        beats.sort_by_key(|b| b.t_ns);
        let (events, found) = live(&beats, 9000);
        let kinds: Vec<(i64, &str)> = events
            .iter()
            .map(|(t, e)| {
                let kind = match e {
                    StreamEvent::Overdue { .. } => "overdue",
                    StreamEvent::Resumed(_) => "resumed",
                    StreamEvent::Takeover(_) => "takeover",
                    StreamEvent::SecondMaster { .. } => "second-master",
                };
                (*t, kind)
            })
            .collect();
        // Overdue at the first tick past 1.5 × 1 s of silence, while vr1 is still silent.
        assert_eq!(
            kinds,
            vec![
                (3600, "overdue"),
                (5700, "takeover"),
                (6500, "takeover"),
                (6500, "resumed")
            ]
        );
        let StreamEvent::Overdue { stream, last, .. } = &events[0].1 else {
            unreachable!()
        };
        assert_eq!(
            (stream.src, last.0),
            ("10.0.0.1".parse().unwrap(), 2000 * MS)
        );
        // The live events are the facts the whole analysis finds.
        let StreamEvent::Resumed(gap) = &events[3].1 else {
            unreachable!()
        };
        assert_eq!(found.gaps.len(), 1);
        assert_eq!(
            (gap.start, gap.end),
            (found.gaps[0].start, found.gaps[0].end)
        );
        let facts = |f: &Failover| (f.at, f.from, f.to, f.kind);
        let takeovers: Vec<_> = events
            .iter()
            .filter_map(|(_, e)| match e {
                StreamEvent::Takeover(f) => Some(facts(f)),
                _ => None,
            })
            .collect();
        assert_eq!(
            takeovers,
            found.failovers.iter().map(facts).collect::<Vec<_>>()
        );
        assert_eq!(takeovers[0].3, FailoverKind::MasterDown);
    }

    #[test]
    fn an_overdue_sender_is_reported_once_per_silence() {
        let beats: Vec<_> = [0, 1000, 4000, 5000]
            .iter()
            .map(|&t| vrrp(t, "10.0.0.1", 150))
            .collect();
        let (events, _) = live(&beats, 9000);
        let overdue: Vec<i64> = events
            .iter()
            .filter(|(_, e)| matches!(e, StreamEvent::Overdue { .. }))
            .map(|(t, _)| *t)
            .collect();
        // Once in the 1 → 4 s silence, once after the last advert at 5 s.
        assert_eq!(overdue, vec![2600, 6600]);
    }

    #[test]
    fn a_backup_advertising_beside_the_master_is_a_second_master_at_once() {
        let mut beats: Vec<_> = (0..6).map(|k| vrrp(k * 1000, "10.0.0.1", 150)).collect();
        beats.push(vrrp(3600, "10.0.0.2", 100));
        beats.sort_by_key(|b| b.t_ns);
        let (events, _) = live(&beats, 6000);
        let second: Vec<_> = events
            .iter()
            .filter_map(|(t, e)| match e {
                StreamEvent::SecondMaster { routers, .. } => Some((*t, routers.len())),
                _ => None,
            })
            .collect();
        assert_eq!(second, vec![(3600, 2)]);
    }

    #[test]
    fn the_sender_and_master_now_are_what_was_counted() {
        let mut tracker = Tracker::new(1.5, false);
        let capture = tracker.capture_id("test");
        let first = vrrp(0, "10.0.0.1", 150);
        let copy = Heartbeat {
            t_ns: 20_000,
            ..first
        };
        for hb in [
            first,
            copy,
            vrrp(1000, "10.0.0.1", 150),
            vrrp(1200, "10.0.0.2", 100),
        ] {
            tracker.observe(capture, &hb).for_each(drop);
        }
        let state = tracker.sender(capture, &first).unwrap();
        assert_eq!(
            (state.adverts, state.last.0, state.last_interval_ns),
            (2, 1000 * MS, Some(1000 * MS))
        );
        let masters = tracker.masters();
        assert_eq!(masters.len(), 1);
        assert_eq!(
            (masters[0].1, masters[0].2 .0),
            ("10.0.0.1".parse().unwrap(), 1000 * MS)
        );
    }

    #[test]
    fn a_silent_backup_is_never_overdue() {
        let mut beats: Vec<_> = (0..8).map(|k| vrrp(k * 1000, "10.0.0.1", 150)).collect();
        beats.push(vrrp(500, "10.0.0.2", 100));
        beats.sort_by_key(|b| b.t_ns);
        let (events, _) = live(&beats, 7000);
        assert!(events.is_empty(), "{events:?}");
    }

    #[test]
    fn two_masters_at_once_is_split_brain() {
        let mut beats = Vec::new();
        for k in 0..6 {
            beats.push(vrrp(k * 1000, "10.0.0.1", 150));
            beats.push(vrrp(k * 1000 + 400, "10.0.0.2", 100));
        }
        beats.push(vrrp(6000, "10.0.0.1", 150));
        beats.push(vrrp(7000, "10.0.0.1", 150));
        let found = run(&beats);
        assert_eq!(found.split_brains.len(), 1);
        let split = &found.split_brains[0];
        assert_eq!(
            split.routers,
            vec![
                "10.0.0.1".parse::<IpAddr>().unwrap(),
                "10.0.0.2".parse().unwrap()
            ]
        );
        assert_eq!((split.start.0, split.end.0), (400 * MS, 5400 * MS));
        assert!(found.gaps.is_empty() && found.failovers.is_empty());
    }

    #[test]
    fn a_brief_overlap_while_preempting_is_not_split_brain() {
        let beats = [
            vrrp(0, "10.0.0.2", 100),
            vrrp(1000, "10.0.0.2", 100),
            vrrp(1500, "10.0.0.1", 150),
            vrrp(2500, "10.0.0.1", 150),
            vrrp(3500, "10.0.0.1", 150),
        ];
        let found = run(&beats);
        assert!(found.split_brains.is_empty());
        assert_eq!(found.failovers.len(), 1);
        assert_eq!(found.failovers[0].kind, FailoverKind::Preempted);
    }

    #[test]
    fn a_lower_router_advertising_beside_an_active_master_is_split_brain_at_once() {
        // vr2 stopped hearing vr1 (a firewall) and advertises once as master.
        let mut beats: Vec<_> = (0..6).map(|k| vrrp(k * 1000, "10.0.0.1", 150)).collect();
        beats.push(vrrp(3600, "10.0.0.2", 100));
        beats.sort_by_key(|b| b.t_ns);
        let found = run(&beats);
        assert_eq!(found.split_brains.len(), 1, "{:?}", found.split_brains);
        let split = &found.split_brains[0];
        assert_eq!(split.master, Some("10.0.0.1".parse().unwrap()));
        assert_eq!((split.start.0, split.end.0), (3600 * MS, 3600 * MS));
        assert!(found.failovers.is_empty());
    }

    #[test]
    fn equal_priority_ties_go_to_the_higher_address() {
        let found = run(&[
            vrrp(0, "10.0.0.1", 100),
            vrrp(500, "10.0.0.2", 100),
            vrrp(1000, "10.0.0.1", 100),
        ]);
        let kinds: Vec<_> = found.failovers.iter().map(|f| (f.to, f.kind)).collect();
        assert_eq!(
            kinds,
            vec![("10.0.0.2".parse().unwrap(), FailoverKind::Preempted)]
        );
    }

    #[test]
    fn ipv4_and_ipv6_vrid_are_separate_routers() {
        let found = run(&[
            vrrp(0, "10.0.0.1", 100),
            vrrp(100, "fe80::2", 200),
            vrrp(1000, "10.0.0.1", 100),
        ]);
        assert!(found.failovers.is_empty());
        assert_eq!(found.streams.len(), 2);
    }

    #[test]
    fn duplicates_within_a_millisecond_are_not_adverts() {
        let first = vrrp(0, "10.0.0.1", 100);
        let copy = Heartbeat {
            t_ns: first.t_ns + 20_000,
            ..first
        };
        let found = run(&[first, copy, vrrp(1000, "10.0.0.1", 100)]);
        assert_eq!(
            (found.streams[0].adverts, found.streams[0].duplicates),
            (2, 1)
        );
    }

    #[test]
    fn kept_adverts_leave_duplicates_out_and_streams_carry_master_down() {
        let first = vrrp(0, "10.0.0.1", 200);
        let copy = Heartbeat {
            t_ns: first.t_ns + 20_000,
            ..first
        };
        let found = run(&[first, copy, vrrp(3500, "10.0.0.1", 200)]);
        let stream = &found.streams[0];
        let times: Vec<i64> = found.adverts[&stream.key].iter().map(|a| a.t.0).collect();
        assert_eq!(times, vec![0, 3500 * MS]);
        assert_eq!(stream.master_down_ms, found.gaps[0].critical_after_ms);
        assert_eq!(stream.master_down_ms, Some(3218.75));
    }

    #[test]
    fn no_backup_seen_uses_the_senders_own_priority() {
        let found = run(&[vrrp(0, "10.0.0.1", 200), vrrp(3500, "10.0.0.1", 200)]);
        let gap = &found.gaps[0];
        // 3 × 1 s + (256 − 200)/256 × 1 s.
        assert_eq!(gap.critical_after_ms, Some(3218.75));
        assert!(gap.critical);
        assert!(gap
            .critical_basis
            .as_deref()
            .unwrap()
            .contains("no backup seen"));
    }

    #[test]
    fn udp_without_an_interval_uses_the_median_and_is_never_critical() {
        let mut beats: Vec<_> = (0..10)
            .map(|k| udp(k * 100, Protocol::Corosync, None, None))
            .collect();
        beats.push(udp(2000, Protocol::Corosync, None, None));
        let found = run(&beats);
        assert_eq!(found.gaps.len(), 1);
        let gap = &found.gaps[0];
        assert_eq!(gap.interval_basis, IntervalBasis::ObservedMedian);
        assert_eq!(
            (gap.duration_ms, gap.critical, gap.critical_after_ms),
            (1100.0, false, None)
        );
    }

    #[test]
    fn bfd_gap_is_critical_at_its_detection_time() {
        let interval = Some(300 * MS as u64);
        let beats = [
            udp(0, Protocol::Bfd, interval, Some(3)),
            udp(300, Protocol::Bfd, interval, Some(3)),
            udp(900, Protocol::Bfd, interval, Some(3)),
            udp(1900, Protocol::Bfd, interval, Some(3)),
        ];
        let found = run(&beats);
        let gaps: Vec<_> = found
            .gaps
            .iter()
            .map(|g| (g.duration_ms, g.critical))
            .collect();
        assert_eq!(gaps, vec![(600.0, false), (1000.0, true)]);
        assert_eq!(found.gaps[0].critical_after_ms, Some(900.0));
    }

    #[test]
    fn carp_lower_advskew_preempts() {
        let carp = |t_ms, src: &str, advskew| Heartbeat {
            protocol: Protocol::Carp,
            version: Some(2),
            ..vrrp(t_ms, src, advskew)
        };
        let found = run(&[
            carp(0, "10.0.0.1", 100),
            carp(500, "10.0.0.2", 0),
            carp(1000, "10.0.0.1", 100),
        ]);
        assert_eq!(found.failovers.len(), 1);
        assert_eq!(found.failovers[0].to, "10.0.0.2".parse::<IpAddr>().unwrap());
    }
}

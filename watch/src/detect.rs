//! From the stream tracker's live events to incidents: when one opens, what it holds,
//! and when it is over and can be written.
//!
//! - An incident opens on a stream overdue by its gap threshold (as it happens, while
//!   the sender is still silent), a takeover, or a second master. It begins at the
//!   silent sender's last advert (or the takeover, or the second master's first
//!   advert).
//! - It is over `after` past its last event, once every silence in it has ended: the
//!   silent sender is back, or another router took over its group (the VIP has a
//!   master again). A silence that lasts longer than [`MAX_HOLD`] is written open.
//! - Events while an incident is open join it: overlapping incidents share a bundle.
//! - A sender written while still silent is awaited: its return, and the preemption
//!   that comes with it, close that incident's story instead of opening a new one.

use std::net::IpAddr;

use vmlat_analyzer::{GroupKey, StreamEvent, StreamKey};

/// The longest an incident is held open waiting for a silence to end, past its first
/// event: memory holds everything from its start until it is written.
pub const MAX_HOLD_NS: i64 = 60_000_000_000;

/// What opened or joined an incident.
#[derive(Debug, Clone, PartialEq)]
pub struct Trigger {
    pub kind: TriggerKind,
    pub group: GroupKey,
    /// The silent sender, the new master, or the second master.
    pub router: IpAddr,
    /// CLOCK_REALTIME ns when it began (the last advert before a silence).
    pub start_ns: i64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TriggerKind {
    Overdue,
    Takeover,
    SecondMaster,
}

impl TriggerKind {
    pub fn name(self) -> &'static str {
        match self {
            TriggerKind::Overdue => "overdue",
            TriggerKind::Takeover => "takeover",
            TriggerKind::SecondMaster => "second-master",
        }
    }
}

/// An incident being recorded.
#[derive(Debug, Clone)]
pub struct Incident {
    pub triggers: Vec<Trigger>,
    /// CLOCK_REALTIME ns: the earliest start of its triggers.
    pub start_ns: i64,
    /// When it was first seen.
    pub opened_ns: i64,
    /// Not over before this.
    deadline_ns: i64,
    /// Silent senders whose group has no master since: the incident waits for them.
    silent: Vec<StreamKey>,
    /// Senders overdue and not back yet (their group may have a new master).
    unresumed: Vec<StreamKey>,
}

impl Incident {
    /// The first trigger: what the incident is named after.
    pub fn first(&self) -> &Trigger {
        &self.triggers[0]
    }

    /// Senders still silent when it was written.
    pub fn still_silent(&self) -> &[StreamKey] {
        &self.unresumed
    }
}

/// What happened to a sender written while still silent.
#[derive(Debug, Clone, PartialEq)]
pub struct Return {
    pub stream: StreamKey,
    /// The silence, in ms.
    pub silent_ms: f64,
}

/// The detector: at most one incident open at a time.
#[derive(Debug)]
pub struct Detector {
    after_ns: i64,
    open: Option<Incident>,
    awaited: Vec<StreamKey>,
}

impl Detector {
    pub fn new(after_ns: i64) -> Self {
        Detector {
            after_ns,
            open: None,
            awaited: Vec::new(),
        }
    }

    /// Takes the events of one observation or tick at `now_ns` (CLOCK_REALTIME).
    /// Returns the senders written while silent that came back.
    pub fn handle(&mut self, events: &[StreamEvent], now_ns: i64) -> Vec<Return> {
        let mut returns = Vec::new();
        for event in events {
            if let StreamEvent::Resumed(gap) = event {
                if let Some(i) = self.awaited.iter().position(|s| *s == gap.stream) {
                    self.awaited.swap_remove(i);
                    returns.push(Return {
                        stream: gap.stream.clone(),
                        silent_ms: gap.duration_ms,
                    });
                }
            }
        }
        let returning = |group: &GroupKey, router: IpAddr| {
            returns
                .iter()
                .any(|r| r.stream.group == *group && r.stream.src == router)
        };
        for event in events {
            match event {
                StreamEvent::Overdue { stream, last, .. } => {
                    let trigger = Trigger {
                        kind: TriggerKind::Overdue,
                        group: stream.group.clone(),
                        router: stream.src,
                        start_ns: last.0,
                    };
                    let incident = self.join(trigger, now_ns);
                    for list in [&mut incident.silent, &mut incident.unresumed] {
                        if !list.contains(stream) {
                            list.push(stream.clone());
                        }
                    }
                }
                StreamEvent::Resumed(gap) => {
                    if let Some(incident) = &mut self.open {
                        incident.silent.retain(|s| *s != gap.stream);
                        incident.unresumed.retain(|s| *s != gap.stream);
                    }
                }
                StreamEvent::Takeover(f) if returning(&f.group, f.to) => {}
                StreamEvent::Takeover(f) => {
                    let trigger = Trigger {
                        kind: TriggerKind::Takeover,
                        group: f.group.clone(),
                        router: f.to,
                        start_ns: f.at.0,
                    };
                    // The group has a master again: its silence is over.
                    self.join(trigger, now_ns)
                        .silent
                        .retain(|s| s.group != f.group);
                }
                StreamEvent::SecondMaster { group, at, routers } => {
                    let trigger = Trigger {
                        kind: TriggerKind::SecondMaster,
                        group: group.clone(),
                        router: routers
                            .last()
                            .copied()
                            .unwrap_or(IpAddr::from([0, 0, 0, 0])),
                        start_ns: at.0,
                    };
                    self.join(trigger, now_ns);
                }
            }
        }
        returns
    }

    /// Opens an incident, or adds to the open one, and moves its end out.
    fn join(&mut self, trigger: Trigger, now_ns: i64) -> &mut Incident {
        let after_ns = self.after_ns;
        let incident = self.open.get_or_insert_with(|| Incident {
            triggers: Vec::new(),
            start_ns: trigger.start_ns,
            opened_ns: now_ns,
            deadline_ns: now_ns,
            silent: Vec::new(),
            unresumed: Vec::new(),
        });
        incident.start_ns = incident.start_ns.min(trigger.start_ns);
        incident.deadline_ns = incident.deadline_ns.max(now_ns + after_ns);
        incident.triggers.push(trigger);
        incident
    }

    /// The open incident, if any.
    pub fn open(&self) -> Option<&Incident> {
        self.open.as_ref()
    }

    /// The open incident, if it is over at `now_ns` (or `force`d: the watch is
    /// stopping); its still silent senders are then awaited.
    pub fn take_due(&mut self, now_ns: i64, force: bool) -> Option<Incident> {
        let incident = self.open.as_ref()?;
        let over = now_ns >= incident.deadline_ns && incident.silent.is_empty();
        let held_too_long = now_ns - incident.opened_ns >= MAX_HOLD_NS.max(self.after_ns);
        if !(over || held_too_long || force) {
            return None;
        }
        let incident = self.open.take()?;
        self.awaited.extend(incident.unresumed.iter().cloned());
        Some(incident)
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use vmlat_analyzer::{
        Failover, FailoverKind, Gap, IntervalBasis, PacketRef, Protocol, Timestamp,
    };

    const S: i64 = 1_000_000_000;

    /// VRID 51 at vr2's interface, the group of the watch's unit tests.
    pub(crate) fn group() -> GroupKey {
        GroupKey {
            capture: "eth0@vr2".into(),
            protocol: Protocol::Vrrp,
            vrid: 51,
            vlan: None,
        }
    }

    fn stream(src: &str) -> StreamKey {
        StreamKey {
            group: group(),
            src: src.parse().unwrap(),
            peer: None,
        }
    }

    fn overdue(src: &str, last: i64, at: i64) -> StreamEvent {
        StreamEvent::Overdue {
            stream: stream(src),
            last: Timestamp(last),
            at: Timestamp(at),
            threshold_ms: 1500.0,
            critical_after_ms: Some(3609.0),
        }
    }

    fn takeover(from: &str, to: &str, at: i64, kind: FailoverKind) -> StreamEvent {
        StreamEvent::Takeover(Failover {
            group: group(),
            at: Timestamp(at),
            from: from.parse().unwrap(),
            to: to.parse().unwrap(),
            kind,
            from_last_seen: Timestamp(0),
            from_priority: Some(150),
            to_priority: Some(100),
        })
    }

    fn resumed(src: &str, start: i64, end: i64) -> StreamEvent {
        let packet = |t| PacketRef {
            t: Timestamp(t),
            ip_id: None,
            ip_checksum: None,
            checksum: 0,
            ifindex: None,
            priority: Some(150),
        };
        StreamEvent::Resumed(Gap {
            stream: stream(src),
            start: Timestamp(start),
            end: Timestamp(end),
            duration_ms: ((end - start) / 1_000_000) as f64,
            interval_ms: 1000.0,
            interval_basis: IntervalBasis::Advertised,
            threshold_ms: 1500.0,
            critical: true,
            critical_after_ms: Some(3609.0),
            critical_basis: None,
            takeovers: Vec::new(),
            open: false,
            prev: packet(start),
            next: Some(packet(end)),
            incident: 0,
        })
    }

    #[test]
    fn a_stopped_master_is_written_after_the_takeover_and_its_return_opens_nothing() {
        let mut d = Detector::new(10 * S);
        // vr1 silent since 100 s: overdue at 101.6, taken over at 103.6.
        d.handle(
            &[overdue("10.0.0.1", 100 * S, 101 * S + 600_000_000)],
            101 * S + 600_000_000,
        );
        assert_eq!(d.open().unwrap().start_ns, 100 * S);
        assert!(
            d.take_due(120 * S, false).is_none(),
            "still silent, no master"
        );
        let t = 103 * S + 600_000_000;
        d.handle(
            &[takeover(
                "10.0.0.1",
                "10.0.0.2",
                t,
                FailoverKind::MasterDown,
            )],
            t,
        );
        assert!(d.take_due(t + 9 * S, false).is_none(), "before --after");
        let written = d
            .take_due(t + 10 * S, false)
            .expect("the group has a master");
        assert_eq!(written.triggers.len(), 2);
        // Written while vr1 is still stopped: its return is awaited.
        assert_eq!(written.still_silent(), &[stream("10.0.0.1")]);
        let back = 200 * S;
        let returns = d.handle(
            &[
                takeover("10.0.0.2", "10.0.0.1", back, FailoverKind::Preempted),
                resumed("10.0.0.1", 100 * S, back),
            ],
            back,
        );
        assert_eq!(returns.len(), 1);
        assert!(d.open().is_none(), "its return is not a new incident");
    }

    #[test]
    fn a_silence_without_a_new_master_is_written_open_after_the_longest_hold() {
        let mut d = Detector::new(S);
        d.handle(&[overdue("10.0.0.1", 100 * S, 102 * S)], 102 * S);
        assert!(d.take_due(102 * S + MAX_HOLD_NS - 1, false).is_none());
        let written = d
            .take_due(102 * S + MAX_HOLD_NS, false)
            .expect("held too long");
        assert_eq!(written.still_silent(), &[stream("10.0.0.1")]);
    }

    #[test]
    fn overlapping_events_share_one_incident() {
        let mut d = Detector::new(10 * S);
        d.handle(&[overdue("10.0.0.1", 100 * S, 102 * S)], 102 * S);
        d.handle(&[resumed("10.0.0.1", 100 * S, 104 * S)], 104 * S);
        d.handle(&[overdue("10.0.0.1", 108 * S, 110 * S)], 110 * S);
        assert!(
            d.take_due(114 * S, false).is_none(),
            "the second moved the end out"
        );
        d.handle(&[resumed("10.0.0.1", 108 * S, 111 * S)], 111 * S);
        let written = d.take_due(120 * S, false).unwrap();
        assert_eq!((written.start_ns, written.triggers.len()), (100 * S, 2));
        assert!(d.take_due(200 * S, false).is_none());
    }

    #[test]
    fn a_preemption_without_a_silence_is_an_incident() {
        let mut d = Detector::new(S);
        d.handle(
            &[takeover(
                "10.0.0.2",
                "10.0.0.1",
                50 * S,
                FailoverKind::Preempted,
            )],
            50 * S,
        );
        let written = d.take_due(51 * S, false).unwrap();
        assert_eq!(written.first().kind, TriggerKind::Takeover);
    }
}

//! Incidents: every observation of one event, at every capture point of every input,
//! grouped into the one thing a person reads.
//!
//! The packet pass sees each event once per capture point: a 4 s silence of a master
//! heard at its own interface, a bridge port, the bridge and the backup is four gaps,
//! and the backup's takeover is a failover at each of them. Grouping rules:
//! - **silence / open**: gaps of the same stream (protocol, VRID or port, VLAN,
//!   address family, source and unicast peer) at any capture point that overlap in time
//!   (within one interval, for clocks of different machines) are one incident. It is
//!   `open` when the sender came back at none of them before the recording ended.
//! - Failovers and split-brains of the same group within the silence (and one
//!   interval after it, when the old master preempts back) belong to it.
//! - **split-brain**: the remaining split-brains of a group that overlap are one
//!   incident, with the failovers around them.
//! - **takeover**: the remaining `master-down` and `preempted` failovers of a group,
//!   the same change seen at several capture points, are one incident each. A master
//!   that resigned (priority 0) handed over cleanly, and a higher-priority router that
//!   preempts takes what the protocol gives it (a backup never advertises, so its first
//!   advert is its preemption): neither is an incident. (Whether such a router had been
//!   away or was a backup that stopped hearing the master, packets cannot tell.)
//!
//! Verdicts, the hop table and the evidence are the attribution pass's work
//! ([`crate::attribute`]); here every incident starts `inconclusive`.

use std::net::IpAddr;

use crate::decode::Protocol;
use crate::model::{
    Failover, FailoverKind, Gap, GroupKey, Incident, IncidentFailover, IncidentKind, SplitBrain,
    Verdict,
};
use crate::time::{ms, Timestamp};

/// The interval assumed where a group's is unknown (VRRP's default).
const DEFAULT_INTERVAL_NS: i64 = 1_000_000_000;

/// A group across capture points: what makes two observations the same router group.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct Group {
    protocol: Protocol,
    vrid: u16,
    vlan: Option<u16>,
    ipv6: bool,
}

impl Group {
    fn of(key: &GroupKey, addr: IpAddr) -> Self {
        Group {
            protocol: key.protocol,
            vrid: key.vrid,
            vlan: key.vlan,
            ipv6: addr.is_ipv6(),
        }
    }
}

/// Groups the packet pass's findings into incidents, numbered in time order, and sets
/// every gap's `incident`.
pub fn group(gaps: &mut [Gap], failovers: &[Failover], splits: &[SplitBrain]) -> Vec<Incident> {
    let mut incidents = silences(gaps);
    let mut claimed = vec![false; failovers.len()];
    let mut split_claimed = vec![false; splits.len()];
    for inc in &mut incidents {
        let g = incident_group(inc);
        let interval = (inc.interval_ms * 1e6) as i64;
        let (from, to) = (inc.start.0, inc.end.0.saturating_add(interval));
        for (i, f) in failovers.iter().enumerate() {
            let involved = f.from == inc.src || f.to == inc.src;
            if involved && Group::of(&f.group, f.from) == g && (from..=to).contains(&f.at.0) {
                claimed[i] = true;
                add_failover(inc, f);
            }
        }
        for (i, s) in splits.iter().enumerate() {
            let overlaps = s.start.0 <= to && s.end.0 >= from;
            let group_of = s.routers.first().map(|r| Group::of(&s.group, *r));
            if overlaps && group_of == Some(g) && s.routers.contains(&inc.src) {
                split_claimed[i] = true;
                for r in &s.routers {
                    if !inc.routers.contains(r) {
                        inc.routers.push(*r);
                    }
                }
            }
        }
    }
    incidents.extend(split_brains(
        splits,
        &split_claimed,
        failovers,
        &mut claimed,
    ));
    incidents.extend(takeovers(failovers, &claimed));
    incidents.sort_by_key(|i| (i.start, i.src));
    // Silences carry their provisional number (their gaps point to it); the others 0.
    let mut renumber = vec![0; gaps.len() + incidents.len() + 1];
    for (n, inc) in incidents.iter_mut().enumerate() {
        if let Some(slot) = renumber.get_mut(inc.id) {
            *slot = n + 1;
        }
        inc.id = n + 1;
        inc.failovers.sort_by_key(|f| f.at);
        inc.routers.sort();
    }
    for g in gaps.iter_mut() {
        g.incident = renumber.get(g.incident).copied().unwrap_or(0);
    }
    incidents
}

/// Silence and open incidents; each gap's `incident` is set to its incident's provisional
/// id (renumbered by [`group`]).
fn silences(gaps: &mut [Gap]) -> Vec<Incident> {
    let key = |g: &Gap| {
        (
            Group::of(&g.stream.group, g.stream.src),
            g.stream.src,
            g.stream.peer,
        )
    };
    let mut order: Vec<usize> = (0..gaps.len()).collect();
    order.sort_by_key(|&i| gaps.get(i).map(|g| (key(g), g.start)));
    let mut incidents: Vec<Incident> = Vec::new();
    let mut current: Option<(usize, i64)> = None; // (incident index, its end + slack)
    for i in order {
        let Some(g) = gaps.get_mut(i) else { continue };
        let slack = (g.interval_ms * 1e6) as i64;
        let joins = current.and_then(|(n, until)| {
            let inc = incidents.get(n)?;
            let same = (Group::of(&inc_key(inc), inc.src), inc.src, inc.dst) == key(g);
            (same && g.start.0 <= until).then_some(n)
        });
        let n = match joins {
            Some(n) => n,
            None => {
                let mut inc = silence_of(g);
                inc.id = incidents.len() + 1;
                incidents.push(inc);
                incidents.len() - 1
            }
        };
        let Some(inc) = incidents.get_mut(n) else {
            continue;
        };
        g.incident = n + 1;
        widen(inc, g);
        current = Some((n, inc.end.0.saturating_add(slack)));
    }
    incidents
}

fn inc_key(inc: &Incident) -> GroupKey {
    GroupKey {
        capture: String::new(),
        protocol: inc.protocol,
        vrid: inc.vrid,
        vlan: inc.vlan,
    }
}

fn incident_group(inc: &Incident) -> Group {
    Group::of(&inc_key(inc), inc.src)
}

fn silence_of(g: &Gap) -> Incident {
    let kind = if g.open {
        IncidentKind::Open
    } else {
        IncidentKind::Silence
    };
    let mut inc = event_incident(kind, &g.stream.group, g.stream.src, g.start, g.end);
    inc.dst = g.stream.peer;
    inc.interval_ms = g.interval_ms;
    inc.threshold_ms = g.threshold_ms;
    inc.critical_after_ms = g.critical_after_ms;
    inc.critical_basis = g.critical_basis.clone();
    inc.critical = g.critical;
    inc
}

/// Takes gap `g` into `inc`: the span of every capture point's silence.
fn widen(inc: &mut Incident, g: &Gap) {
    inc.start = inc.start.min(g.start);
    inc.end = inc.end.max(g.end);
    inc.duration_ms = ms(i128::from(inc.end.0 - inc.start.0));
    inc.critical |= g.critical;
    if !g.open {
        inc.kind = IncidentKind::Silence;
    }
    if g.duration_ms > inc.interval_ms && inc.critical_after_ms.is_none() {
        inc.critical_after_ms = g.critical_after_ms;
        inc.critical_basis = g.critical_basis.clone();
    }
}

/// Adds failover `f` unless the same change was already seen at another capture point
/// (then the earlier sighting stays).
fn add_failover(inc: &mut Incident, f: &Failover) {
    let same = |x: &IncidentFailover| x.from == f.from && x.to == f.to && x.kind == f.kind;
    match inc.failovers.iter_mut().find(|x| same(x)) {
        Some(x) if f.at < x.at => {
            x.at = f.at;
            x.capture = f.group.capture.clone();
        }
        Some(_) => {}
        None => inc.failovers.push(IncidentFailover {
            at: f.at,
            capture: f.group.capture.clone(),
            from: f.from,
            to: f.to,
            kind: f.kind,
        }),
    }
}

/// Split-brains not part of a silence, overlapping ones of a group merged.
fn split_brains(
    splits: &[SplitBrain],
    split_claimed: &[bool],
    failovers: &[Failover],
    claimed: &mut [bool],
) -> Vec<Incident> {
    let mut order: Vec<&SplitBrain> = splits
        .iter()
        .zip(split_claimed)
        .filter(|(_, c)| !**c)
        .map(|(s, _)| s)
        .filter(|s| !s.routers.is_empty())
        .collect();
    let group_of = |s: &SplitBrain| s.routers.first().map(|r| Group::of(&s.group, *r));
    order.sort_by_key(|s| (group_of(s), s.start));
    let mut out: Vec<Incident> = Vec::new();
    for s in order {
        let g = group_of(s);
        let joins = out.last_mut().filter(|inc| {
            Some(incident_group(inc)) == g && s.start.0 <= inc.end.0 + DEFAULT_INTERVAL_NS
        });
        match joins {
            Some(inc) => {
                inc.start = inc.start.min(s.start);
                inc.end = inc.end.max(s.end);
                for r in &s.routers {
                    if !inc.routers.contains(r) {
                        inc.routers.push(*r);
                    }
                }
                if inc.src == IpAddr::from([0, 0, 0, 0]) {
                    if let Some(m) = s.master {
                        inc.src = m;
                    }
                }
            }
            None => {
                let src = s
                    .master
                    .or_else(|| s.routers.first().copied())
                    .unwrap_or(IpAddr::from([0, 0, 0, 0]));
                out.push(event_incident(
                    IncidentKind::SplitBrain,
                    &s.group,
                    src,
                    s.start,
                    s.end,
                ));
                if let Some(inc) = out.last_mut() {
                    inc.routers = s.routers.clone();
                }
            }
        }
    }
    for inc in &mut out {
        inc.duration_ms = ms(i128::from(inc.end.0 - inc.start.0));
        inc.routers.sort();
        let g = incident_group(inc);
        let (from, to) = (
            inc.start.0 - DEFAULT_INTERVAL_NS,
            inc.end.0 + DEFAULT_INTERVAL_NS,
        );
        for (i, f) in failovers.iter().enumerate() {
            let Some(c) = claimed.get_mut(i) else {
                continue;
            };
            if !*c && Group::of(&f.group, f.from) == g && (from..=to).contains(&f.at.0) {
                *c = true;
                add_failover(inc, f);
            }
        }
    }
    out
}

/// The failovers no silence or split-brain explains: one incident per change of
/// master, however many capture points saw it.
fn takeovers(failovers: &[Failover], claimed: &[bool]) -> Vec<Incident> {
    let mut out: Vec<Incident> = Vec::new();
    let mut order: Vec<&Failover> = failovers
        .iter()
        .zip(claimed)
        .filter(|(f, c)| !**c && !protocol_handover(f))
        .map(|(f, _)| f)
        .collect();
    order.sort_by_key(|f| (Group::of(&f.group, f.from), f.from, f.to, f.at));
    for f in order {
        let g = Group::of(&f.group, f.from);
        let same = out.last_mut().filter(|inc| {
            incident_group(inc) == g
                && inc
                    .failovers
                    .first()
                    .is_some_and(|x| x.from == f.from && x.to == f.to)
                && f.at.0 <= inc.start.0 + DEFAULT_INTERVAL_NS
        });
        match same {
            Some(inc) => add_failover(inc, f),
            None => {
                let mut inc = event_incident(IncidentKind::Takeover, &f.group, f.from, f.at, f.at);
                add_failover(&mut inc, f);
                out.push(inc);
            }
        }
    }
    for inc in &mut out {
        if let Some(first) = inc.failovers.iter().map(|f| f.at).min() {
            inc.start = first;
            inc.end = first;
        }
    }
    out
}

/// A change of master that VRRP's own rules explain: a resignation (priority 0), or a
/// higher-priority router preempting.
fn protocol_handover(f: &Failover) -> bool {
    matches!(f.kind, FailoverKind::Resigned | FailoverKind::Preempted)
}

/// An incident before attribution, with the default interval until the streams say.
fn event_incident(
    kind: IncidentKind,
    group: &GroupKey,
    src: IpAddr,
    start: Timestamp,
    end: Timestamp,
) -> Incident {
    Incident {
        id: 0,
        kind,
        protocol: group.protocol,
        vrid: group.vrid,
        vlan: group.vlan,
        src,
        dst: None,
        start,
        end,
        duration_ms: ms(i128::from(end.0 - start.0)),
        interval_ms: ms(i128::from(DEFAULT_INTERVAL_NS)),
        threshold_ms: 0.0,
        critical_after_ms: None,
        critical_basis: None,
        critical: false,
        failovers: Vec::new(),
        routers: Vec::new(),
        verdict: Verdict::Inconclusive,
        summary: "no scheduler data".to_string(),
        evidence: vec!["no scheduler data: only packets were given".to_string()],
        path: Vec::new(),
        first_silent: None,
        suspects: Vec::new(),
        keepalived_log: Vec::new(),
        context: None,
    }
}

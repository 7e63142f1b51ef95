//! The rules: from what an incident's window holds to one verdict (`docs/verdicts.md`),
//! with the facts behind it and the facts that rule its neighbours out. Each family of
//! hops is its own module: the sender's machine ([`super::sender_side`]), the path
//! after the socket ([`super::path`]), the host ([`super::host`]), and the receiving
//! side ([`super::receiver`]); this one holds what they share.
//!
//! A silence is judged at its gap at the first silent capture point, in order (each
//! step only when the previous did not decide):
//! 1. No bundle with scheduler data → `inconclusive` ("no scheduler data").
//! 2. The sender task is identified ([`super::sender`]); if not → `inconclusive`
//!    saying why.
//! 3. Did it send on time? Its send syscalls on the advert socket, those whose packets
//!    were this group's (several VRIDs share a socket), kept within the gap threshold
//!    (or, without syscalls, another capture point saw the adverts on time) → the time
//!    was lost after the socket ([`super::path`]).
//! 4. Otherwise the sender's silence is explained by the state it spent most of it in
//!    ([`super::sender_side`]), the host checked first where a host bundle is given
//!    ([`super::host`]).
//! 5. Losses that can hide records (pcap drops, perf lost records, writer queue drops,
//!    undecodable samples) counted during the incident's own window turn any verdict
//!    into `inconclusive`, naming them and what the recorded events alone would say.
//!    Sampler overruns and late records hide nothing (counter deltas stay exact; late
//!    records are written) and are only noted.

use std::collections::BTreeMap;

use vmlat_bundle::Role;

use super::collect::BundleData;
use super::packets::PacketLanes;
use super::path::covers;
use super::sender::{self, Adverts, Send, Sender, SAME_MACHINE_TOLERANCE_NS};
use super::timeline::{self, Span};
use super::windows::Window;
use super::{at, dur};
use crate::model::{GapContext, StreamKey, Suspect, Verdict};
use crate::syscall;
use crate::time::Timestamp;
use crate::Gap;

/// Adverts seen at a capture point of another machine are matched to sends within
/// this, on wall clocks lined up by NTP only.
const CROSS_MACHINE_TOLERANCE_NS: i64 = 250_000_000;

/// What the rules found for an incident.
#[derive(Debug)]
pub struct Judgement {
    pub verdict: Verdict,
    pub summary: String,
    pub evidence: Vec<String>,
    pub context: GapContext,
    pub suspects: Vec<Suspect>,
}

/// The task behind a stream, found by [`Judge::find_task`].
pub(super) struct Found<'a> {
    pub sender: Sender,
    pub data: &'a BundleData,
    pub spans: Vec<Span>,
    /// Its adverts at its own capture point.
    pub own: Option<Adverts>,
}

/// A verdict and its facts, before losses and packet facts are added.
#[derive(Debug)]
pub(super) struct Finding {
    pub verdict: Verdict,
    pub summary: String,
    pub evidence: Vec<String>,
}

impl Finding {
    pub(super) fn new(verdict: Verdict, summary: String) -> Self {
        Finding {
            verdict,
            summary,
            evidence: Vec::new(),
        }
    }

    pub(super) fn inconclusive(why: impl Into<String>) -> Self {
        let why = why.into();
        Finding {
            verdict: Verdict::Inconclusive,
            summary: why.clone(),
            evidence: vec![why],
        }
    }
}

/// Everything the rules read.
pub struct Judge<'a> {
    pub bundles: &'a [BundleData],
    pub packets: &'a PacketLanes,
    /// Bundle index of each input, `None` for a capture file.
    pub bundle_of: &'a [Option<usize>],
}

/// The sender's silence to explain.
enum Silence {
    /// It kept sending: the loss is after the socket.
    OnTime(String),
    /// It did not send from `a` to `b`.
    Silent { a: i64, b: i64, line: String },
}

impl Judge<'_> {
    /// The verdict of a silence, judged at its gap at the first silent capture point;
    /// `None` with packets only (what the packet pass said stands).
    pub fn judge(&self, gap: &Gap, w: Window) -> Option<Judgement> {
        if self.bundles.is_empty() {
            return None;
        }
        let mut context = super::base_context(self, &gap.stream, w);
        let mut finding = self.attribute(gap, w, &mut context);
        finding.evidence.push(self.packet_facts(gap));
        finding.evidence.extend(self.not_kept(w));
        Some(self.conclude(finding, context, w, (gap.start.0, gap.end.0)))
    }

    /// The stretches of `w` whose records were not kept, as evidence lines.
    fn not_kept(&self, w: Window) -> Vec<String> {
        let mut out = Vec::new();
        for data in self.bundles {
            for (a, b) in data.not_kept(w.start, w.end) {
                out.push(format!(
                    "{}'s records from {} to {} ({}) were not examined: a silence this long is examined in its first and last 30 s; states and CPU shares are of those",
                    data.host(),
                    at(a),
                    at(b),
                    dur(b - a)
                ));
            }
        }
        out
    }

    /// Losses turn a finding inconclusive; the suspects are added.
    pub(super) fn conclude(
        &self,
        mut finding: Finding,
        context: GapContext,
        w: Window,
        silence: (i64, i64),
    ) -> Judgement {
        let (hiding, noted) = self.losses(w);
        finding.evidence.extend(noted);
        if !hiding.is_empty() {
            let mut evidence = hiding;
            if finding.verdict != Verdict::Inconclusive {
                evidence.push(format!(
                    "without those losses the recorded events would say {}: {}",
                    finding.verdict.name(),
                    finding.summary
                ));
            }
            evidence.extend(finding.evidence);
            finding = Finding {
                verdict: Verdict::Inconclusive,
                summary: "counted losses overlap the incident".to_string(),
                evidence,
            };
        }
        let suspects = super::suspects::find(self.bundles, &context, w, silence);
        Judgement {
            verdict: finding.verdict,
            summary: finding.summary,
            evidence: finding.evidence,
            context,
            suspects,
        }
    }

    pub(super) fn bundle_of_capture(&self, capture: &str) -> Option<usize> {
        let input = self.packets.owner(capture)?;
        self.bundle_of.get(input).copied().flatten()
    }

    /// Whether `capture` is a host's capture of a VM's tap (`recorded.vms`): the first
    /// hop after a guest's NIC.
    pub(super) fn is_vm_tap(&self, capture: &str) -> bool {
        let Some(data) = self
            .bundle_of_capture(capture)
            .and_then(|b| self.bundles.get(b))
        else {
            return false;
        };
        let recorded = &data.manifest.recorded;
        recorded
            .captures
            .iter()
            .filter(|c| c.name == capture)
            .any(|c| {
                recorded
                    .vms
                    .iter()
                    .any(|v| v.taps.iter().any(|t| t.ifname == c.interface))
            })
    }

    /// Steps 1–4 of the module documentation.
    fn attribute(&self, gap: &Gap, w: Window, context: &mut GapContext) -> Finding {
        let guests: Vec<&BundleData> = self
            .bundles
            .iter()
            .filter(|b| b.manifest.role != Role::Host)
            .collect();
        if !guests.iter().any(|b| b.recorded("sched:sched_switch")) {
            let mut f = Finding::inconclusive("no scheduler data");
            f.evidence.extend(guests.iter().map(|b| {
                format!(
                    "{} ({}) recorded no sched:sched_switch",
                    b.host(),
                    b.input.display()
                )
            }));
            if guests.is_empty() {
                f.evidence
                    .push("only host bundles were given: the guest's scheduler is unknown".into());
            }
            return f;
        }
        let interval = (gap.interval_ms * 1e6) as i64;
        let found = self.find_task(&gap.stream, &gap.stream.group.capture, w, interval, context);
        let Found {
            sender,
            data,
            spans,
            own,
        } = match found {
            Ok(f) => f,
            Err(f) => return f,
        };
        let silence = self.silence(gap, w, &sender, data, own.as_ref(), context);
        let mut finding = match silence {
            Silence::OnTime(line) => {
                let mut f = self.after_the_socket(gap, &sender);
                f.evidence.insert(0, line);
                f
            }
            Silence::Silent { a, b, line } => {
                let mut f = self.sender_side(gap, data, &sender, &spans, context, a, b);
                f.evidence.insert(0, line);
                f
            }
        };
        finding.evidence.insert(0, sender.reason.clone());
        finding
    }

    /// The task that sent `key`'s adverts, its states over `w` and its own adverts;
    /// fills the context's sender, CPU, disk and steal lanes. `Err` is the finding
    /// that says why it was not found.
    pub(super) fn find_task(
        &self,
        key: &StreamKey,
        fallback_capture: &str,
        w: Window,
        interval: i64,
        context: &mut GapContext,
    ) -> Result<Found<'_>, Finding> {
        let chosen = self.adverts_capture(key, fallback_capture, w);
        let sender = sender::identify(self.bundles, |b| chosen.get(&b).cloned(), w, interval)
            .map_err(Finding::inconclusive)?;
        let data = self
            .bundles
            .get(sender.bundle)
            .ok_or_else(|| Finding::inconclusive("sender process not identified"))?;
        let spans = timeline::overlay_frozen(
            timeline::task_spans(&data.events, sender.tid, w.start, w.end, data.arch()),
            &data
                .frozen_spans(sender.tid, w.start, w.end)
                .into_iter()
                .map(|f| (f.start, f.end, f.what))
                .collect::<Vec<_>>(),
        );
        context.sender = Some(super::task_lane(
            data.host(),
            sender.tgid,
            sender.tid,
            &sender.comm,
            &spans,
        ));
        let mut cpus: Vec<u32> = spans.iter().filter_map(|s| s.cpu).collect();
        cpus.sort_unstable();
        cpus.dedup();
        context.cpus = cpus
            .iter()
            .map(|&c| {
                let mut lane = timeline::cpu_lane(&data.events, c, w.start, w.end, data.host());
                lane.spans = data.clip_to_kept(lane.spans);
                lane
            })
            .collect();
        context.disks = super::disk_lanes(data, w.start, w.end);
        // The steal of the CPU it used most, as the verdict reads it.
        let cpu = timeline::main_cpu(&spans, w.start, w.end);
        context.steal = super::steal_series(data, cpu, w.start, w.end);
        let own = chosen.get(&sender.bundle).and_then(|(all, _)| {
            all.iter()
                .find(|a| Some(&a.capture) == sender.capture.as_ref())
                .cloned()
        });
        Ok(Found {
            sender,
            data,
            spans,
            own,
        })
    }

    /// For each bundle that could hold the sender, the adverts to match its tasks
    /// against: at each of its own capture points of the sender, else at
    /// `fallback_capture` on another machine, with a wider tolerance.
    fn adverts_capture(
        &self,
        key: &StreamKey,
        fallback_capture: &str,
        w: Window,
    ) -> BTreeMap<usize, (Vec<Adverts>, i64)> {
        let seen = self.packets.captures_of_sender(key, w);
        let mut out = BTreeMap::new();
        for b in 0..self.bundles.len() {
            let own: Vec<Adverts> = seen
                .iter()
                .filter(|(_, input)| self.bundle_of.get(*input).copied().flatten() == Some(b))
                .map(|(c, _)| Adverts {
                    capture: c.clone(),
                    times: self.packets.sender_times(key, c, w),
                })
                .collect();
            let entry = if own.is_empty() {
                let times = self.packets.sender_times(key, fallback_capture, w);
                (
                    vec![Adverts {
                        capture: fallback_capture.to_string(),
                        times,
                    }],
                    CROSS_MACHINE_TOLERANCE_NS,
                )
            } else {
                (own, SAME_MACHINE_TOLERANCE_NS)
            };
            out.insert(b, entry);
        }
        out
    }

    /// Step 3: did the sender keep sending through the gap?
    fn silence(
        &self,
        gap: &Gap,
        w: Window,
        sender: &Sender,
        data: &BundleData,
        own: Option<&Adverts>,
        context: &mut GapContext,
    ) -> Silence {
        let threshold = (gap.threshold_ms * 1e6) as i64;
        let events = data.events_in(w.start, w.end);
        let all = sender::sends(events, Some(sender.tid), data.arch());
        if !data.syscalls_recorded(sender.tid, w.start, w.end) {
            // No syscalls: only packets elsewhere can say it sent.
            return match self.on_time_elsewhere(gap) {
                Some(capture) => Silence::OnTime(format!(
                    "no syscalls recorded for {} (record with --comm 'keepalived*'); {capture} saw its adverts on time through the gap",
                    sender.tid
                )),
                None => Silence::Silent {
                    a: gap.start.0,
                    b: gap.end.0,
                    line: format!(
                        "no advert from {} to {} at any capture point (no syscalls recorded for {}: record with --comm 'keepalived*')",
                        at(gap.start.0),
                        at(gap.end.0),
                        sender.tid
                    ),
                },
            };
        }
        let own_times = own.map(|a| a.times.as_slice()).unwrap_or_default();
        let others = own.map_or_else(Vec::new, |a| {
            self.packets.other_groups_times(&gap.stream, &a.capture, w)
        });
        let sends = sends_of_group(advert_sends(&all, own_times), own_times, &others);
        context.sends = sends.iter().map(|s| Timestamp(s.start())).collect();
        let name = |s: &Send| syscall::name(s.nr, data.arch());
        let relevant: Vec<&Send> = sends
            .iter()
            .filter(|s| {
                s.exit >= gap.start.0 - threshold && s.exit <= gap.end.0 + SAME_MACHINE_TOLERANCE_NS
            })
            .collect();
        let widest = relevant
            .windows(2)
            .filter_map(|p| Some((*p.first()?, *p.get(1)?)))
            .max_by_key(|(x, y)| y.start() - x.exit);
        match widest {
            Some((x, y)) if y.start() - x.exit <= threshold => {
                Silence::OnTime(format!(
                    "{} sent on time through the gap: {} {} calls from {} to {}, never more than {} apart",
                    sender.tid,
                    relevant.len(),
                    name(x),
                    at(relevant.first().map_or(x.exit, |s| s.exit)),
                    at(relevant.last().map_or(y.exit, |s| s.exit)),
                    dur(y.start() - x.exit)
                ))
            }
            Some((x, y)) => {
                let next = y.start();
                Silence::Silent {
                    a: x.exit,
                    b: next,
                    line: format!(
                        "last {} returned at {}; the next began at {} ({} later)",
                        name(x),
                        at(x.exit),
                        at(next),
                        dur(next - x.exit)
                    ),
                }
            }
            None => match relevant.last().copied().or(sends.last()) {
                Some(x) if x.exit < gap.end.0 => Silence::Silent {
                    a: x.exit,
                    b: gap.end.0,
                    line: format!(
                        "last {} returned at {}; no other send by {} until the gap ended at {}",
                        name(x),
                        at(x.exit),
                        sender.tid,
                        at(gap.end.0)
                    ),
                },
                _ => Silence::Silent {
                    a: gap.start.0,
                    b: gap.end.0,
                    line: format!(
                        "no send syscall by {} from {} to {}",
                        sender.tid,
                        at(gap.start.0),
                        at(gap.end.0)
                    ),
                },
            },
        }
    }
}

impl Judge<'_> {
    /// `packets: eth0@vr1 and br0@sw both silent (not a network loss)`, or which
    /// capture points saw the sender's adverts during the gap.
    fn packet_facts(&self, gap: &Gap) -> String {
        let threshold = (gap.threshold_ms * 1e6) as i64;
        let w = Window {
            start: gap.start.0 - threshold,
            end: gap.end.0 + threshold,
        };
        let mut silent = Vec::new();
        let mut on_time = Vec::new();
        for (c, _) in self.packets.captures_of_sender(&gap.stream, w) {
            let times = self.packets.sender_times(&gap.stream, &c, w);
            if covers(&times, gap.start.0, gap.end.0, threshold) {
                on_time.push(c);
            } else {
                silent.push(c);
            }
        }
        match (silent.len(), on_time.is_empty()) {
            (0, _) => format!("packets: on time at {}", on_time.join(", ")),
            (1, true) => format!(
                "packets: {} silent (the only capture point of {})",
                silent.join(""),
                gap.stream.src
            ),
            (_, true) => format!(
                "packets: {} all silent (not a network loss)",
                silent.join(" and ")
            ),
            _ => format!(
                "packets: on time at {}; silent at {}",
                on_time.join(", "),
                silent.join(", ")
            ),
        }
    }

    /// Losses counted during the window, in every bundle: (hiding, noted).
    fn losses(&self, w: Window) -> (Vec<String>, Vec<String>) {
        let mut hiding = Vec::new();
        let mut noted = Vec::new();
        for data in self.bundles {
            let wl = data.losses_around(w.start, w.end);
            let host = data.host();
            let span = format!("between {} and {}", at(w.start), at(w.end));
            let before = wl.before.counters();
            for ((name, after, hides), (_, before, _)) in
                wl.after.counters().into_iter().zip(before)
            {
                let n = after.saturating_sub(before);
                if n == 0 {
                    continue;
                }
                if hides {
                    hiding.push(format!(
                        "{name} +{n} on {host} {span}: records of this incident may be missing"
                    ));
                } else {
                    noted.push(format!("{name} +{n} on {host} {span} (nothing missing)"));
                }
            }
        }
        (hiding, noted)
    }
}

/// The sends that were this group's: each packet the sender put out at its own capture
/// point (this group's and its other VRIDs', in time order) is matched to the latest
/// unmatched send that began shortly before it; sends matched to another VRID's
/// packets go. Several VRIDs share one socket, so the fd alone cannot tell them apart.
fn sends_of_group(sends: Vec<Send>, own: &[i64], others: &[i64]) -> Vec<Send> {
    if others.is_empty() {
        return sends;
    }
    let mut packets: Vec<(i64, bool)> = own
        .iter()
        .map(|t| (*t, true))
        .chain(others.iter().map(|t| (*t, false)))
        .collect();
    packets.sort_unstable();
    let mut taken = vec![None; sends.len()];
    for (p, mine) in packets {
        let candidate = sends
            .iter()
            .enumerate()
            .rev()
            .filter(|(i, s)| {
                taken.get(*i).is_some_and(Option::is_none)
                    && s.start() <= p
                    && p - s.start() <= SAME_MACHINE_TOLERANCE_NS
            })
            .map(|(i, _)| i)
            .next();
        if let Some(slot) = candidate.and_then(|i| taken.get_mut(i)) {
            *slot = Some(mine);
        }
    }
    sends
        .into_iter()
        .zip(taken)
        .filter(|(_, t)| *t != Some(false))
        .map(|(s, _)| s)
        .collect()
}

/// Sends on the socket the adverts came from: the file descriptor whose sends preceded
/// the most adverts (keepalived also sends gratuitous ARPs and logs on others).
fn advert_sends(all: &[Send], adverts: &[i64]) -> Vec<Send> {
    let mut by_fd: BTreeMap<u64, usize> = BTreeMap::new();
    for &p in adverts {
        let i = all.partition_point(|s| s.start() <= p);
        if let Some(s) = i.checked_sub(1).and_then(|i| all.get(i)) {
            if p - s.start() <= SAME_MACHINE_TOLERANCE_NS && p <= s.exit + SAME_MACHINE_TOLERANCE_NS
            {
                *by_fd.entry(s.fd).or_default() += 1;
            }
        }
    }
    match by_fd.iter().max_by_key(|(_, n)| **n) {
        Some((fd, _)) => all.iter().filter(|s| s.fd == *fd).copied().collect(),
        None => all.to_vec(),
    }
}

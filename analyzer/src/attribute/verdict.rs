//! The rules: from what a gap's window holds to one verdict of DESIGN §2, with the
//! facts behind it and the facts that rule its neighbours out.
//!
//! Order (each step only when the previous did not decide):
//! 1. No bundle with scheduler data → `inconclusive` ("no scheduler data").
//! 2. The sender task is identified ([`super::sender`]); if not → `inconclusive`
//!    saying why.
//! 3. Did it send on time? Its send syscalls on the advert socket kept within the gap
//!    threshold (or, without syscalls, another capture point saw the adverts on time)
//!    → the time was lost after the socket: the gap's capture point decides between
//!    `vnic` (a host tap), `receiver` (another machine's capture, whose kernel itself
//!    stalled) and `network`.
//! 4. Otherwise the sender's silence (last send → next send, or the packet gap) is
//!    explained by the state it spent most of it in: T → `app-stopped` (with the
//!    signal, its sender and the SIGCONT); D in its wait, no block I/O → `app-stopped`
//!    (cgroup freezer); D in write/fsync/... with block requests or in-flight I/O →
//!    `guest-io`; off CPU in another syscall → `app-blocked`; runnable → `guest-cpu`
//!    (who held the CPU); asleep in its wait and never woken → the host is checked
//!    first (QEMU stopped → `vm-paused`; QEMU threads in D with host disk I/O in
//!    flight → `host-io`; vCPU run delay or guest steal → `vcpu-preempted`; no guest
//!    event at all and a guest clock jump → `vm-paused`), then `guest-kernel`.
//!    Running, or woken and back asleep without sending, is `inconclusive`: the
//!    recording does not say why keepalived did not send.
//! 5. Losses that can hide records (pcap drops, perf lost records, writer queue drops,
//!    undecodable samples) counted during the window turn any verdict into
//!    `inconclusive`, naming them and what the recorded events alone would say.
//!    Sampler overruns and late records hide nothing (counter deltas stay exact; late
//!    records are written) and are only noted.

use std::collections::BTreeMap;

use vmlat_bundle::{Losses, Record, Role, TaskKind};

use super::collect::BundleData;
use super::packets::PacketLanes;
use super::path::covers;
use super::sender::{self, Adverts, Send, Sender, SAME_MACHINE_TOLERANCE_NS};
use super::timeline::{self, Span};
use super::windows::Window;
use super::{at, dur, pct, signal_name};
use crate::model::{GapContext, StreamKey, Suspect, TaskState, Verdict};
use crate::syscall;
use crate::Gap;

/// Adverts seen at a capture point of another machine are matched to sends within
/// this, on wall clocks lined up by NTP only.
const CROSS_MACHINE_TOLERANCE_NS: i64 = 250_000_000;
/// A block request slower than this is slow.
const SLOW_BLOCK_NS: i64 = 100_000_000;
/// Steal above this share of CPU time during the silence means the vCPU did not run.
const STEAL_PCT: f64 = 10.0;
/// A vCPU whose run delay grew by more than this share of the silence was preempted.
const RUN_DELAY_SHARE: f64 = 0.5;
/// A change of realtime − monotonic larger than this is a guest clock jump.
const CLOCK_JUMP_NS: u64 = 100_000_000;

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
        Some(self.conclude(finding, context, w, (gap.start.0, gap.end.0)))
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
                summary: "counted losses overlap the gap".to_string(),
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

    fn bundle_of_capture(&self, capture: &str) -> Option<usize> {
        let input = self.packets.owner(capture)?;
        self.bundle_of.get(input).copied().flatten()
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
        let silence = self.silence(gap, w, &sender, data, own.as_ref());
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
        let spans = timeline::task_spans(&data.events, sender.tid, w.start, w.end, data.arch());
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
            .map(|&c| timeline::cpu_lane(&data.events, c, w.start, w.end, data.host()))
            .collect();
        context.disks = super::disk_lanes(data, w.start, w.end);
        context.steal = super::steal_series(data, w.start, w.end);
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
    ) -> Silence {
        let threshold = (gap.threshold_ms * 1e6) as i64;
        let events = data.events_in(w.start, w.end);
        let all = sender::sends(events, Some(sender.tid), data.arch());
        let traced = events.iter().any(|e| {
            matches!(&e.record, Record::SyscallEnter { tid, .. } | Record::SyscallExit { tid, .. } if *tid == sender.tid)
        });
        if !traced {
            // No syscalls: only packets elsewhere can say it sent.
            return match self.on_time_elsewhere(gap) {
                Some(capture) => Silence::OnTime(format!(
                    "no syscalls recorded for {} (record with --comm keepalived); {capture} saw its adverts on time through the gap",
                    sender.tid
                )),
                None => Silence::Silent {
                    a: gap.start.0,
                    b: gap.end.0,
                    line: format!(
                        "no advert from {} to {} at any capture point (no syscalls recorded for {}: record with --comm keepalived)",
                        at(gap.start.0),
                        at(gap.end.0),
                        sender.tid
                    ),
                },
            };
        }
        let sends = advert_sends(&all, own.map(|a| a.times.as_slice()).unwrap_or_default());
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

    /// A capture point other than the gap's that saw the gap's sender on time through
    /// the gap.
    fn on_time_elsewhere(&self, gap: &Gap) -> Option<String> {
        let threshold = (gap.threshold_ms * 1e6) as i64;
        let w = Window {
            start: gap.start.0 - threshold,
            end: gap.end.0 + threshold,
        };
        self.packets
            .captures_of_sender(&gap.stream, w)
            .into_iter()
            .map(|(c, _)| c)
            .filter(|c| *c != gap.stream.group.capture)
            .find(|c| {
                covers(
                    &self.packets.sender_times(&gap.stream, c, w),
                    gap.start.0,
                    gap.end.0,
                    threshold,
                )
            })
    }

    /// Step 3's verdicts: the sender sent, the packets were lost after its socket.
    fn after_the_socket(&self, gap: &Gap, sender: &Sender) -> Finding {
        let capture = &gap.stream.group.capture;
        let silent = format!("{} to {}", at(gap.start.0), at(gap.end.0));
        if sender.capture.as_ref() == Some(capture) {
            return Finding::inconclusive(format!(
                "its send syscalls returned on time, but {capture}, the sender's own capture point, saw no advert from {silent}: lost between the socket and the capture, and no capture point further on tells more"
            ));
        }
        let owner = self
            .bundle_of_capture(capture)
            .and_then(|b| Some((b, self.bundles.get(b)?)));
        if let Some((_, data)) = owner.filter(|(_, d)| d.manifest.role == Role::Host) {
            let iface = data
                .manifest
                .recorded
                .captures
                .iter()
                .find(|c| c.name == *capture)
                .map(|c| c.interface.clone())
                .unwrap_or_default();
            if ["tap", "vnet", "vif"].iter().any(|p| iface.starts_with(p)) {
                let mut f = Finding::new(
                    Verdict::Vnic,
                    format!("sent on time by the guest but late at the host tap {capture}: the virtual NIC backend (virtio/vhost) held it"),
                );
                f.evidence.push(format!(
                    "{capture} is the VM's tap {iface} on host {}: silent from {silent}",
                    data.host()
                ));
                return f;
            }
        }
        if let Some((b, data)) =
            owner.filter(|(b, d)| *b != sender.bundle && d.manifest.role != Role::Host)
        {
            if let Some(stall) = self.machine_stall(b, gap) {
                let mut f = Finding::new(
                    Verdict::Receiver,
                    format!(
                        "sent on time, but the receiving machine {} itself stalled",
                        data.host()
                    ),
                );
                f.evidence.push(stall);
                return f;
            }
        }
        let mut f = Finding::new(
            Verdict::Network,
            format!("sent on time, lost or delayed on the way to {capture}"),
        );
        f.evidence.push(format!("{capture} silent from {silent}"));
        f
    }

    /// Whether the machine of bundle `b` stopped running during the gap: it recorded
    /// scheduler data but no event at all, or its steal rose.
    fn machine_stall(&self, b: usize, gap: &Gap) -> Option<String> {
        let data = self.bundles.get(b)?;
        let margin = (gap.interval_ms * 1e6 / 2.0) as i64;
        let (from, to) = (gap.start.0 + margin, gap.end.0 - margin);
        if data.recorded("sched:sched_switch") && to > from && data.events_in(from, to).is_empty() {
            return Some(format!(
                "{} recorded no event at all from {} to {}: its kernel did not run",
                data.host(),
                at(from),
                at(to)
            ));
        }
        let steal = mean_steal(data, gap.start.0, gap.end.0)?;
        (steal >= STEAL_PCT)
            .then(|| format!("{} had {steal:.1}% steal during the gap", data.host()))
    }

    /// Step 4: the sender did not send from `a` to `b`; why.
    #[allow(clippy::too_many_arguments)]
    fn sender_side(
        &self,
        gap: &Gap,
        data: &BundleData,
        sender: &Sender,
        spans: &[Span],
        context: &GapContext,
        a: i64,
        b: i64,
    ) -> Finding {
        let mut time: BTreeMap<u8, i64> = BTreeMap::new();
        for s in spans {
            *time.entry(state_rank(s.state)).or_default() += (s.end.min(b) - s.start.max(a)).max(0);
        }
        let (dominant, _) = time
            .iter()
            .max_by_key(|(rank, ns)| (**ns, std::cmp::Reverse(**rank)))
            .map(|(r, ns)| (rank_state(*r), *ns))
            .unwrap_or((TaskState::Unknown, 0));
        let who = format!("{} {}", sender.comm, sender.tid);
        let states: Vec<String> = time
            .iter()
            .filter(|(_, ns)| **ns > 0)
            .map(|(r, ns)| format!("{} {}", rank_state(*r).name(), dur(*ns)))
            .collect();
        let in_state = |st: TaskState| -> Vec<&Span> {
            spans
                .iter()
                .filter(|s| s.state == st && s.end > a && s.start < b)
                .collect()
        };
        let mut f = match dominant {
            TaskState::Stopped => self.stopped(data, sender, &in_state(TaskState::Stopped), &who),
            TaskState::Frozen => frozen(data, sender, &in_state(TaskState::Frozen), &who),
            TaskState::Blocked => blocked(data, &in_state(TaskState::Blocked), &who),
            TaskState::Runnable => runnable(
                data,
                sender,
                &in_state(TaskState::Runnable),
                context,
                &who,
                a,
                b,
            ),
            TaskState::Sleeping => {
                // Whole runs inside the silence: woken, ran, and back asleep without
                // sending (the run that sent at `b` ends after it).
                let woken = in_state(TaskState::Running)
                    .iter()
                    .filter(|s| s.start > a && s.end < b)
                    .count();
                if woken > 0 {
                    Finding::inconclusive(format!(
                        "{who} was woken {woken} times during the silence and went back to sleep without sending: keepalived's own logic, which the recording does not show"
                    ))
                } else {
                    self.never_woken(gap, data, sender, spans, &who, a, b)
                }
            }
            TaskState::Running => Finding::inconclusive(format!(
                "{who} was on CPU for most of the silence without sending (busy in user space?)"
            )),
            _ => Finding::inconclusive(format!(
                "no scheduler event of {who} tells its state from {} to {}",
                at(a),
                at(b)
            )),
        };
        f.evidence.push(format!(
            "{who} from {} to {}: {}",
            at(a),
            at(b),
            if states.is_empty() {
                "no state known".to_string()
            } else {
                states.join(", ")
            }
        ));
        f.evidence
            .extend(rule_out_facts(data, sender, context, a, b));
        f
    }

    /// State T: stopped by a signal or a tracer.
    pub(super) fn stopped(
        &self,
        data: &BundleData,
        sender: &Sender,
        spans: &[&Span],
        who: &str,
    ) -> Finding {
        let Some(first) = spans.first() else {
            return Finding::inconclusive("no stop recorded");
        };
        let traced = first
            .detail
            .as_deref()
            .is_some_and(|d| d.contains("traced"));
        let mut f = Finding::new(
            Verdict::AppStopped,
            if traced {
                format!(
                    "{} process {} was stopped by a tracer, not sleeping",
                    sender.comm, sender.tgid
                )
            } else {
                format!(
                    "{} VRRP process {} was stopped, not sleeping",
                    sender.comm, sender.tgid
                )
            },
        );
        let signals = signals_to(
            data,
            sender,
            first.start - 1_000_000_000,
            spans.last().map_or(first.end, |s| s.end) + 1_000_000_000,
        );
        let stop = signals
            .iter()
            .rfind(|(t, sig, _)| is_stop_signal(*sig) && *t <= first.start);
        match stop {
            Some((t, sig, from)) => f.evidence.push(format!(
                "{} to {} from {} at {}",
                signal_name(*sig),
                sender.tgid,
                data.tasks.describe(*from),
                at(*t)
            )),
            None => f.evidence.push(if data.recorded("signal:signal_generate") {
                "no stop signal recorded before it: a tracer (ptrace) or a signal sent before the window".to_string()
            } else {
                "signals were not recorded (signal:signal_generate)".to_string()
            }),
        }
        let end = spans.last().map_or(first.end, |s| s.end);
        let cont = signals
            .iter()
            .find(|(t, sig, _)| *sig == SIGCONT && *t >= first.start);
        let cont = match cont {
            Some((t, _, from)) => format!(
                "; SIGCONT from {} at {}",
                data.tasks.describe(*from),
                at(*t)
            ),
            None => String::new(),
        };
        f.evidence.push(format!(
            "{who} switched out in state T at {}, stopped {}{cont}",
            at(first.start),
            dur(end - first.start)
        ));
        f
    }

    /// Asleep in its wait and never woken: the host first, then the guest kernel.
    #[allow(clippy::too_many_arguments)]
    fn never_woken(
        &self,
        gap: &Gap,
        data: &BundleData,
        sender: &Sender,
        spans: &[Span],
        who: &str,
        a: i64,
        b: i64,
    ) -> Finding {
        let silence = b - a;
        let mut host_facts = Vec::new();
        let hosts: Vec<&BundleData> = self
            .bundles
            .iter()
            .filter(|d| d.manifest.role == Role::Host)
            .collect();
        for host in &hosts {
            if let Some(f) = host_verdict(host, a, b, &mut host_facts) {
                let mut f = f;
                f.evidence.push(format!(
                    "{who} asleep in its wait from {} to {}, never woken",
                    at(a),
                    at(b)
                ));
                f.evidence.push(format!(
                    "guest {} and host {} are lined up {}",
                    data.host(),
                    host.host(),
                    host.alignment.cross_machine.describe()
                ));
                return f;
            }
        }
        if let Some(steal) = mean_steal(data, a, b).filter(|s| *s >= STEAL_PCT) {
            let mut f = Finding::new(
                Verdict::VcpuPreempted,
                format!(
                    "the guest {} did not get its vCPUs: {steal:.1}% steal",
                    data.host()
                ),
            );
            f.evidence.push(format!(
                "steal {steal:.1}% on {} from {} to {}",
                data.host(),
                at(a),
                at(b)
            ));
            return f;
        }
        let margin = (gap.interval_ms * 1e6 / 10.0) as i64;
        let quiet = data.events_in(a + margin, b - margin).is_empty();
        if quiet {
            if let Some(jump) = clock_jump(data, a, b) {
                let mut f = Finding::new(
                    Verdict::VmPaused,
                    format!(
                        "the whole guest {} stopped: no event at all, and its clock jumped",
                        data.host()
                    ),
                );
                f.evidence.push(format!(
                    "{} recorded no event at all from {} to {}",
                    data.host(),
                    at(a + margin),
                    at(b - margin)
                ));
                f.evidence.push(jump);
                return f;
            }
        }
        let wait = spans
            .iter()
            .filter(|s| s.state == TaskState::Sleeping && s.end > a && s.start < b)
            .find_map(|s| s.syscall)
            .map(|s| syscall::name(s.nr, data.arch()))
            .unwrap_or_else(|| "its wait".to_string());
        let mut f = Finding::new(
            Verdict::GuestKernel,
            format!(
                "{} {} slept in {wait} for {} and was never woken: the guest kernel's timer/wakeup came late",
                sender.comm,
                sender.tid,
                dur(silence)
            ),
        );
        f.evidence.push(format!(
            "no sched_wakeup of {} from {} to {}",
            sender.tid,
            at(a),
            at(b)
        ));
        if quiet {
            f.evidence.push(format!(
                "{} recorded no event at all from {} to {}, but its clock did not jump",
                data.host(),
                at(a + margin),
                at(b - margin)
            ));
        }
        if hosts.is_empty() {
            f.evidence.push(
                "no host bundle given: vCPU preemption and host I/O are not ruled out (KVM steal does not count a halted vCPU's wait)".to_string(),
            );
        }
        f.evidence.extend(host_facts);
        f
    }
}

/// Host-side verdicts (hops 4, 4b, 5) from one host bundle; facts that rule them out go
/// to `facts`.
fn host_verdict(host: &BundleData, a: i64, b: i64, facts: &mut Vec<String>) -> Option<Finding> {
    let samples = host.samples_in(
        a - super::collect::SAMPLE_MARGIN_NS,
        b + super::collect::SAMPLE_MARGIN_NS,
    );
    let qemu = |k: TaskKind| {
        matches!(
            k,
            TaskKind::QemuVcpu | TaskKind::QemuIo | TaskKind::QemuOther
        )
    };
    // vm-paused: a QEMU thread stopped.
    let stopped = samples.iter().find_map(|s| match &s.record {
        Record::Task(t) if qemu(t.kind) && matches!(t.state, 'T' | 't') && s.t >= a && s.t <= b => {
            Some((s.t, t))
        }
        _ => None,
    });
    if let Some((t, task)) = stopped {
        let mut f = Finding::new(
            Verdict::VmPaused,
            format!(
                "the VM was paused: QEMU pid {} on {} was stopped",
                task.tgid,
                host.host()
            ),
        );
        f.evidence.push(format!(
            "QEMU thread {} ({}) of pid {} in state {} at {} on {}",
            task.comm,
            task.tid,
            task.tgid,
            task.state,
            at(t),
            host.host()
        ));
        return Some(f);
    }
    // host-io: QEMU threads in D while a host disk has I/O in flight.
    let in_d = samples.iter().find_map(|s| match &s.record {
        Record::Task(t) if qemu(t.kind) && t.state == 'D' && s.t >= a && s.t <= b => Some((s.t, t)),
        _ => None,
    });
    let lanes = super::disk_lanes(host, a, b);
    let busiest = lanes
        .iter()
        .flat_map(|l| l.points.iter().map(move |p| (l, p)))
        .filter(|(_, p)| p.t.0 >= a && p.t.0 <= b + super::collect::SAMPLE_MARGIN_NS)
        .max_by_key(|(_, p)| p.in_flight);
    if let (Some((t, task)), Some((lane, point))) = (in_d, busiest) {
        if point.in_flight > 0 {
            let mut f = Finding::new(
                Verdict::HostIo,
                format!(
                    "QEMU on {} was blocked on the host disk {}",
                    host.host(),
                    lane.device
                ),
            );
            f.evidence.push(format!(
                "QEMU thread {} ({}) of pid {} in state D at {} on {}",
                task.comm,
                task.tid,
                task.tgid,
                at(t),
                host.host()
            ));
            f.evidence.push(disk_figures(&lanes, a, b));
            return Some(f);
        }
    }
    // vcpu-preempted: a vCPU thread's run delay grew through the silence.
    let mut growth: BTreeMap<i32, (i64, i64, u64, u64, &vmlat_bundle::TaskSample)> =
        BTreeMap::new();
    for s in samples {
        let Record::Task(t) = &s.record else { continue };
        if t.kind != TaskKind::QemuVcpu {
            continue;
        }
        let e = growth
            .entry(t.tid)
            .or_insert((s.t, s.t, t.wait_ns, t.wait_ns, t));
        if s.t <= a {
            *e = (s.t, s.t, t.wait_ns, t.wait_ns, t);
        } else if e.1 < b {
            e.1 = s.t;
            e.3 = t.wait_ns;
            e.4 = t;
        }
    }
    let worst = growth
        .values()
        .map(|(t0, t1, w0, w1, t)| (w1.saturating_sub(*w0) as i64, t1 - t0, *t))
        .max_by_key(|(grew, _, _)| *grew);
    if let Some((grew, span, task)) = worst {
        let silence = (b - a).max(1);
        if grew as f64 >= RUN_DELAY_SHARE * silence as f64 {
            let mut f = Finding::new(
                Verdict::VcpuPreempted,
                format!(
                    "the guest's vCPU thread {} on {} was runnable but not running for {}",
                    task.comm,
                    host.host(),
                    dur(grew)
                ),
            );
            f.evidence.push(format!(
                "vCPU thread {} ({}) of QEMU pid {}: run delay +{} over {} of schedstat samples ({:.0}% of the {} silence)",
                task.comm,
                task.tid,
                task.tgid,
                dur(grew),
                dur(span),
                pct(grew, silence),
                dur(silence)
            ));
            return Some(f);
        }
        facts.push(format!(
            "host {}: vCPU run delay +{} during the silence, no QEMU thread stopped or in D",
            host.host(),
            dur(grew)
        ));
    } else {
        facts.push(format!("host {}: no vCPU thread samples", host.host()));
    }
    None
}

/// State D in its wait with no block I/O: the cgroup freezer.
pub(super) fn frozen(data: &BundleData, sender: &Sender, spans: &[&Span], who: &str) -> Finding {
    let mut f = Finding::new(
        Verdict::AppStopped,
        format!(
            "{} process {} was frozen by the cgroup freezer, not sleeping",
            sender.comm, sender.tgid
        ),
    );
    let total: i64 = spans.iter().map(|s| s.end - s.start).sum();
    let first = spans.first();
    f.evidence.push(format!(
        "frozen ({}): {who} from {} for {}",
        first.and_then(|s| s.detail.clone()).unwrap_or_default(),
        at(first.map_or(0, |s| s.start)),
        dur(total)
    ));
    if let Some(waker) = first.and_then(|s| waker_before(data, sender.tid, s.start)) {
        f.evidence.push(format!(
            "woken to be frozen by {} at {}",
            data.tasks.describe(waker.1),
            at(waker.0)
        ));
    }
    f.evidence.push(if data.recorded("signal:signal_generate") {
        "no SIGSTOP/SIGTSTP to it: not a stop signal".to_string()
    } else {
        "signals were not recorded".to_string()
    });
    f
}

/// The last wakeup of `tid` before `t`: (time, waker).
fn waker_before(data: &BundleData, tid: i32, t: i64) -> Option<(i64, i32)> {
    data.events
        .iter()
        .take_while(|e| e.t <= t)
        .filter_map(|e| match &e.record {
            Record::SchedWakeup {
                tid: w, waker_tid, ..
            } if *w == tid => Some((e.t, *waker_tid)),
            _ => None,
        })
        .last()
}

/// Off CPU in a syscall other than its wait: disk I/O or another block.
fn blocked(data: &BundleData, spans: &[&Span], who: &str) -> Finding {
    let Some(longest) = spans.iter().max_by_key(|s| s.end - s.start) else {
        return Finding::inconclusive("no blocked span");
    };
    let (from, to) = (longest.start, longest.end);
    let call = longest
        .syscall
        .map(|s| timeline::describe_call(s.nr, &s.args, data.arch()))
        .unwrap_or_else(|| "the kernel".to_string());
    let letter = if longest.uninterruptible { "D" } else { "S" };
    let io = block_io(data, from, to);
    let lanes = super::disk_lanes(data, from, to);
    let in_flight = lanes
        .iter()
        .flat_map(|l| l.points.iter())
        .filter(|p| p.t.0 >= from && p.t.0 <= to + super::collect::SAMPLE_MARGIN_NS)
        .map(|p| p.in_flight)
        .max()
        .unwrap_or(0);
    let slow = io
        .slowest
        .as_ref()
        .is_some_and(|(ns, _)| *ns >= SLOW_BLOCK_NS);
    let mut f = if longest.uninterruptible && (in_flight > 0 || slow) {
        let device = io
            .slowest
            .as_ref()
            .map(|(_, d)| d.clone())
            .or_else(|| busiest_device(&lanes))
            .unwrap_or_else(|| "?".into());
        Finding::new(
            Verdict::GuestIo,
            format!(
                "{who} was blocked {} in {call} waiting for disk {device}",
                dur(to - from)
            ),
        )
    } else {
        let mut f = Finding::new(
            Verdict::AppBlocked,
            format!(
                "{who} was blocked {} in {call} (state {letter}), not in its wait",
                dur(to - from)
            ),
        );
        f.evidence.push(format!(
            "no slow block request and no I/O in flight from {} to {}: not waiting for a disk",
            at(from),
            at(to)
        ));
        f
    };
    f.evidence.push(format!(
        "{who} off CPU in {call}, state {letter}, from {} to {} ({})",
        at(from),
        at(to),
        dur(to - from)
    ));
    if let Some((ns, dev)) = &io.slowest {
        f.evidence.push(format!(
            "{} block requests completed from {} to {}, the slowest on {dev} after {}",
            io.completed,
            at(from),
            at(to),
            dur(*ns)
        ));
    }
    if io.pending > 0 {
        f.evidence.push(format!(
            "{} block requests still pending at {}",
            io.pending,
            at(to)
        ));
    }
    if !lanes.is_empty() {
        f.evidence.push(disk_figures(&lanes, from, to));
    }
    f
}

/// Woken but waiting for a CPU: who held it.
pub(super) fn runnable(
    data: &BundleData,
    sender: &Sender,
    spans: &[&Span],
    context: &GapContext,
    who: &str,
    a: i64,
    b: i64,
) -> Finding {
    let total: i64 = spans.iter().map(|s| s.end.min(b) - s.start.max(a)).sum();
    let cpu = spans
        .iter()
        .max_by_key(|s| s.end - s.start)
        .and_then(|s| s.cpu);
    let mut hogs: Vec<(i32, String, i64)> = Vec::new();
    if let Some(lane) = context.cpus.iter().find(|l| Some(l.cpu) == cpu) {
        for s in spans {
            for (tid, comm, ns) in timeline::shares(&lane.spans, s.start.max(a), s.end.min(b)) {
                if tid == sender.tid {
                    continue;
                }
                match hogs.iter_mut().find(|h| h.0 == tid) {
                    Some(h) => h.2 += ns,
                    None => hogs.push((tid, comm, ns)),
                }
            }
        }
    }
    hogs.sort_by_key(|h| std::cmp::Reverse(h.2));
    let named: Vec<String> = hogs
        .iter()
        .take(3)
        .map(|(tid, comm, ns)| format!("{comm} {tid} {:.0}%", pct(*ns, total)))
        .collect();
    let cpu_name = cpu.map_or_else(|| "its CPU".to_string(), |c| format!("CPU {c}"));
    let mut f = Finding::new(
        Verdict::GuestCpu,
        format!(
            "{who} was runnable for {} but {cpu_name} was held by {}",
            dur(total),
            named
                .first()
                .cloned()
                .unwrap_or_else(|| "other tasks".into())
        ),
    );
    if let Some(first) = spans.first() {
        let waker = first
            .waker
            .map(|w| format!(" by {}", data.tasks.describe(w)))
            .unwrap_or_default();
        f.evidence.push(format!(
            "{who} runnable from {}{waker}, waited {} for {cpu_name}",
            at(first.start),
            dur(total)
        ));
    }
    if !named.is_empty() {
        f.evidence
            .push(format!("{cpu_name} held meanwhile by {}", named.join(", ")));
    }
    f
}

/// Block requests completed between `from` and `to`.
struct BlockIo {
    completed: usize,
    pending: usize,
    /// Slowest completion: (latency, device).
    slowest: Option<(i64, String)>,
}

fn block_io(data: &BundleData, from: i64, to: i64) -> BlockIo {
    let mut issued: BTreeMap<(u32, u64), i64> = BTreeMap::new();
    let mut io = BlockIo {
        completed: 0,
        pending: 0,
        slowest: None,
    };
    for e in data.events.iter().take_while(|e| e.t <= to) {
        match &e.record {
            Record::BlockIssue { dev, sector, .. } => {
                issued.insert((*dev, *sector), e.t);
            }
            Record::BlockComplete { dev, sector, .. } => {
                if let Some(t0) = issued.remove(&(*dev, *sector)) {
                    if e.t >= from {
                        io.completed += 1;
                        let ns = e.t - t0;
                        if io.slowest.as_ref().is_none_or(|(s, _)| ns > *s) {
                            io.slowest = Some((ns, device_name(data, *dev)));
                        }
                    }
                }
            }
            _ => {}
        }
    }
    io.pending = issued
        .values()
        .filter(|t| **t >= from - 10_000_000_000)
        .count();
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

fn busiest_device(lanes: &[crate::model::DiskLane]) -> Option<String> {
    lanes
        .iter()
        .max_by_key(|l| l.points.iter().map(|p| p.in_flight).max().unwrap_or(0))
        .map(|l| l.device.clone())
}

/// `vdb: in-flight up to 1, w_await up to 850.0 ms, %util up to 100` for each busy
/// device, or `disks quiet`.
fn disk_figures(lanes: &[crate::model::DiskLane], from: i64, to: i64) -> String {
    let mut parts = Vec::new();
    for l in lanes {
        let pts: Vec<_> = l
            .points
            .iter()
            .filter(|p| p.t.0 >= from && p.t.0 <= to + super::collect::SAMPLE_MARGIN_NS)
            .collect();
        if pts.is_empty() {
            continue;
        }
        let max =
            |f: fn(&crate::model::DiskPoint) -> f64| pts.iter().map(|p| f(p)).fold(0.0, f64::max);
        parts.push(format!(
            "{}: in-flight up to {}, r_await up to {:.1} ms, w_await up to {:.1} ms, %util up to {:.0}",
            l.device,
            pts.iter().map(|p| p.in_flight).max().unwrap_or(0),
            max(|p| p.r_await_ms),
            max(|p| p.w_await_ms),
            max(|p| p.util_pct)
        ));
    }
    if parts.is_empty() {
        "disks quiet".to_string()
    } else {
        format!("disks {}", parts.join("; "))
    }
}

/// The hops ruled out on the sender's machine: its CPUs, its block I/O, the disks, the
/// steal.
fn rule_out_facts(
    data: &BundleData,
    sender: &Sender,
    context: &GapContext,
    a: i64,
    b: i64,
) -> Vec<String> {
    let mut out = Vec::new();
    for lane in &context.cpus {
        let shares = timeline::shares(&lane.spans, a, b);
        let total: i64 = shares.iter().map(|s| s.2).sum();
        if total == 0 {
            continue;
        }
        let idle: i64 = shares.iter().filter(|s| s.0 == 0).map(|s| s.2).sum();
        let kernel: i64 = shares
            .iter()
            .filter(|s| s.0 != 0 && data.tasks.is_kernel_thread(s.0, &s.1))
            .map(|s| s.2)
            .sum();
        let others: Vec<String> = shares
            .iter()
            .filter(|s| s.0 != 0 && s.0 != sender.tid && !data.tasks.is_kernel_thread(s.0, &s.1))
            .take(3)
            .map(|(tid, comm, ns)| format!("{comm} {tid} {:.1}%", pct(*ns, total)))
            .collect();
        let mut line = format!(
            "CPU {} idle {:.1}% during the silence, kernel threads {:.1}%",
            lane.cpu,
            pct(idle, total),
            pct(kernel, total)
        );
        if !others.is_empty() {
            line.push_str(&format!(", tasks: {}", others.join(", ")));
        }
        out.push(line);
    }
    let by_sender = data
        .events_in(a, b)
        .iter()
        .filter(|e| matches!(&e.record, Record::BlockIssue { tid, .. } if *tid == sender.tid))
        .count();
    out.push(if by_sender == 0 {
        format!("no block I/O by {}", sender.tid)
    } else {
        format!("{} block requests issued by {}", by_sender, sender.tid)
    });
    out.push(disk_figures(&context.disks, a, b));
    if let Some(steal) = mean_steal(data, a, b) {
        out.push(format!("steal {steal:.1}% on {}", data.host()));
    }
    out
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
            let Some(wl) = data.losses_at(w.start) else {
                continue;
            };
            let Some(after) = &wl.after else { continue };
            let d = |f: fn(&Losses) -> u64| f(after).saturating_sub(f(&wl.before));
            let host = data.host();
            let span = format!("between {} and {}", at(w.start), at(w.end));
            for (name, n, hides) in [
                ("pcap_dropped", d(|l| l.pcap_dropped), true),
                ("pcap_if_dropped", d(|l| l.pcap_if_dropped), true),
                ("perf_lost", d(|l| l.perf_lost), true),
                ("queue_dropped", d(|l| l.queue_dropped), true),
                ("decode_errors", d(|l| l.decode_errors), true),
                ("sampler_overruns", d(|l| l.sampler_overruns), false),
                ("late_records", d(|l| l.late_records), false),
            ] {
                if n == 0 {
                    continue;
                }
                if hides {
                    hiding.push(format!(
                        "{name} +{n} on {host} {span}: records of the gap may be missing"
                    ));
                } else {
                    noted.push(format!("{name} +{n} on {host} {span} (nothing missing)"));
                }
            }
        }
        (hiding, noted)
    }
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

/// Steal % of the machine from `a` to `b`: between its last aggregate CPU sample at
/// or before `a` and its first at or after `b`.
fn mean_steal(data: &BundleData, a: i64, b: i64) -> Option<f64> {
    let margin = super::collect::SAMPLE_MARGIN_NS;
    let lines: Vec<(i64, &vmlat_bundle::CpuSample)> = data
        .samples_in(a - margin, b + margin)
        .iter()
        .filter_map(|s| match &s.record {
            Record::Cpu(c) if c.cpu.is_none() => Some((s.t, c)),
            _ => None,
        })
        .collect();
    let from = lines
        .iter()
        .rev()
        .find(|(t, _)| *t <= a)
        .or(lines.first())?;
    let to = lines.iter().find(|(t, _)| *t >= b).or(lines.last())?;
    super::steal_pct(from.1, to.1)
}

/// A jump of the guest's realtime − monotonic between two anchors around the silence.
fn clock_jump(data: &BundleData, a: i64, b: i64) -> Option<String> {
    let around: Vec<&(i64, i64)> = data
        .anchors
        .iter()
        .filter(|(t, _)| *t >= a - 2_000_000_000 && *t <= b + 2_000_000_000)
        .collect();
    around.windows(2).find_map(|p| {
        let (x, y) = (p.first()?, p.get(1)?);
        let step = x.1.abs_diff(y.1);
        (step > CLOCK_JUMP_NS).then(|| {
            format!(
                "the guest clock jumped by {} between the anchors at {} and {}",
                dur(step as i64),
                at(x.0),
                at(y.0)
            )
        })
    })
}

const SIGCONT: i32 = 18;

fn is_stop_signal(sig: i32) -> bool {
    matches!(sig, 19..=22)
}

/// Signals to the sender's task or process from `from` to `to`: (time, sig, sender tid).
fn signals_to(data: &BundleData, sender: &Sender, from: i64, to: i64) -> Vec<(i64, i32, i32)> {
    data.events_in(from, to)
        .iter()
        .filter_map(|e| match &e.record {
            Record::Signal {
                sig,
                sender_tid,
                target_tid,
                ..
            } if *target_tid == sender.tid || *target_tid == sender.tgid => {
                Some((e.t, *sig, *sender_tid))
            }
            _ => None,
        })
        .collect()
}

/// States in a fixed order, for tallies and tie-breaks (the more specific first).
fn state_rank(s: TaskState) -> u8 {
    match s {
        TaskState::Stopped => 0,
        TaskState::Frozen => 1,
        TaskState::Blocked => 2,
        TaskState::Runnable => 3,
        TaskState::Sleeping => 4,
        TaskState::Running => 5,
        TaskState::Unknown => 6,
    }
}

fn rank_state(r: u8) -> TaskState {
    match r {
        0 => TaskState::Stopped,
        1 => TaskState::Frozen,
        2 => TaskState::Blocked,
        3 => TaskState::Runnable,
        4 => TaskState::Sleeping,
        5 => TaskState::Running,
        _ => TaskState::Unknown,
    }
}

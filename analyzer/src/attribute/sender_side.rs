//! The sender's machine: why keepalived did not send (hops 1 to 3b of
//! `docs/verdicts.md`), from the state it spent most of its silence in:
//! - T → `app-stopped`, with the signal, who sent it (and its parents) and the SIGCONT;
//! - frozen, by the recorded freezer state of its cgroups (v1 `FROZEN` shows as D, v2
//!   as S outside any syscall) → `app-stopped`; a D in its wait with no freezer record
//!   is `inconclusive`: a page fault or a lock looks the same;
//! - D in write/fsync/... with block requests of its own and a slow or busy disk →
//!   `guest-io`; I/O of others only → `inconclusive`; off CPU in another syscall →
//!   `app-blocked`;
//! - runnable → `guest-cpu`, naming who held the CPU;
//! - asleep in its wait and never woken → the host first ([`super::host`]), steal of
//!   its own CPU → `vcpu-preempted`, no event at all and a clock jump → `vm-paused`;
//!   `guest-kernel` only with its CPU idle or running kernel threads (a late timer),
//!   saying what a host bundle would add;
//! - woken and back asleep without sending, running, or not traced → `inconclusive`.

use std::collections::BTreeMap;

use vmlat_bundle::{Record, Role};

use super::collect::BundleData;
use super::host::{
    clock_jump, fell_behind, guest_not_run, host_io, host_verdict, mean_steal, own_vm, vcpus_ran,
    VcpusRan, VmTie, STEAL_PCT,
};
use super::sender::Sender;
use super::timeline::{self, Span};
use super::verdict::{Finding, Judge};
use super::{at, disk_figures, dur, pct, signal_name};
use crate::model::{GapContext, TaskState, Verdict};
use crate::syscall;
use crate::Gap;

use super::block::{block_io, OWN_IO_LEAD_NS, SLOW_BLOCK_NS};

/// Signals sent this long before a stop are still looked at.
pub(super) const PENDING_HORIZON_NS: i64 = 10_000_000_000;

impl Judge<'_> {
    /// Step 4: the sender did not send from `a` to `b`; why.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn sender_side(
        &self,
        gap: &Gap,
        data: &BundleData,
        sender: &Sender,
        spans: &[Span],
        context: &GapContext,
        a: i64,
        b: i64,
    ) -> Finding {
        if data.syscalls_recorded(sender.tid, a, b) && !syscall::knows_arch(data.arch()) {
            // Which syscall is its wait, which a write, is unknown: every state would
            // be read wrong.
            return Finding::inconclusive(format!(
                "the syscall numbers of {} (recorded on {}) are unknown to this vmlat: it cannot tell {}'s wait from its other syscalls",
                data.host(),
                data.arch(),
                sender.tid
            ));
        }
        let who = format!("{} {}", sender.comm, sender.tid);
        // A guest whose clock stood still across the silence recorded nothing of it: its
        // states around the pause are stretched over it on the host's time line (a
        // thread running when the VM stopped seems to hold the CPU for the whole pause).
        let (hosts, _) = self.tied_hosts(data);
        if let Some((jump, behind)) = fell_behind(data, a, b) {
            return self.paused(data, &hosts, jump, behind, &who, (a, b));
        }
        for (host, vm) in &hosts {
            if let Some(mut f) = guest_not_run(host, vm, a, b) {
                f.evidence.push(format!(
                    "{who} silent from {} to {}: the guest did not run, so its own view of those seconds says nothing",
                    at(a),
                    at(b)
                ));
                tie_evidence(&mut f, data, host, vm);
                return f;
            }
        }
        // A guest that recorded nothing at all for most of the silence did not run then:
        // what its threads seem to do around that blackout (a late wakeup once it runs
        // again) says nothing of why, and the host's records are asked first.
        if let Some((from, to)) = blackout(data, a, b).filter(|(f, t)| (t - f) * 2 >= b - a) {
            let line = format!(
                "{} recorded no event at all from {} to {} ({}): the guest did not run",
                data.host(),
                at(from),
                at(to),
                dur(to - from)
            );
            // The sender was as good as never woken: it cannot be woken while its
            // kernel does not run (and the host's rules come first there).
            let mut f = self.never_woken(gap, data, sender, spans, context, &who, (a, b));
            f.evidence.push(line);
            return f;
        }
        let mut time: BTreeMap<u8, i64> = BTreeMap::new();
        for s in spans {
            *time.entry(state_rank(s.state)).or_default() += (s.end.min(b) - s.start.max(a)).max(0);
        }
        let (dominant, _) = time
            .iter()
            .max_by_key(|(rank, ns)| (**ns, std::cmp::Reverse(**rank)))
            .map(|(r, ns)| (rank_state(*r), *ns))
            .unwrap_or((TaskState::Unknown, 0));
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
            TaskState::Blocked => {
                let f = blocked(data, sender, &in_state(TaskState::Blocked), &who);
                if f.verdict == Verdict::GuestIo {
                    self.behind_host_disk(data, f, a, b)
                } else {
                    f
                }
            }
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
                    self.never_woken(gap, data, sender, spans, context, &who, (a, b))
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
            .extend(rule_out_facts(data, sender, spans, context, (a, b)));
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

    /// The host bundles whose VMs include `guest`'s own, and why the others were not
    /// tied (`host::own_vm`).
    fn tied_hosts(&self, guest: &BundleData) -> (Vec<(&BundleData, VmTie)>, Vec<String>) {
        let mut tied = Vec::new();
        let mut untied = Vec::new();
        for host in self
            .bundles
            .iter()
            .filter(|d| d.manifest.role == Role::Host)
        {
            match own_vm(guest, &host.manifest) {
                Ok(vm) => tied.push((host, vm)),
                Err(why) => untied.push(why),
            }
        }
        (tied, untied)
    }

    /// The guest waited for its own disk; was its disk, on the host, waiting for a host
    /// disk? Then the time was lost on the host (`host-io`), the guest's view kept in
    /// the evidence.
    fn behind_host_disk(&self, data: &BundleData, guest_io: Finding, a: i64, b: i64) -> Finding {
        let (hosts, untied) = self.tied_hosts(data);
        for (host, vm) in &hosts {
            if let Some(mut f) = host_io(host, vm, a, b) {
                f.evidence
                    .push(format!("in the guest: {}", guest_io.summary));
                f.evidence.extend(guest_io.evidence.iter().cloned());
                tie_evidence(&mut f, data, host, vm);
                return f;
            }
        }
        let mut f = guest_io;
        f.evidence.extend(hosts.iter().map(|(host, vm)| {
            format!(
                "host {}: no thread of QEMU pid {} in D with a host disk busy: the guest's disk itself was slow ({})",
                host.host(),
                vm.pid,
                vm.how
            )
        }));
        f.evidence.extend(untied);
        f
    }

    /// The guest's clock fell behind the host's across the silence: the VM did not run
    /// (`vm-paused`), if the host, where it can tell, agrees that none of its vCPUs ran.
    fn paused(
        &self,
        data: &BundleData,
        hosts: &[(&BundleData, VmTie)],
        jump: String,
        behind_ns: i64,
        who: &str,
        (a, b): (i64, i64),
    ) -> Finding {
        let mut idle = Vec::new();
        for (host, vm) in hosts {
            match vcpus_ran(host, vm, a, b, behind_ns / 2) {
                VcpusRan::No(line) => idle.push(line),
                VcpusRan::Unknown => {}
                VcpusRan::Yes => {
                    let mut f = Finding::inconclusive(format!(
                        "{}'s clock fell behind {}'s, yet its VM's vCPUs ran on the host: not a pause, and what else stops a guest's clock is not recorded",
                        data.host(),
                        host.host()
                    ));
                    f.evidence.push(jump);
                    f.evidence.push(vm.how.clone());
                    return f;
                }
            }
        }
        let mut f = Finding::new(
            Verdict::VmPaused,
            format!(
                "the VM {} was paused: its clock stood still while the host's ran",
                data.host()
            ),
        );
        f.evidence.push(jump);
        if idle.is_empty() {
            f.evidence.push(
                "no host recording of its QEMU's scheduling tells whether its vCPUs ran (vmlat record --role host on the hypervisor)"
                    .into(),
            );
        }
        f.evidence.extend(idle);
        f.evidence
            .extend(hosts.iter().map(|(_, vm)| vm.how.clone()));
        f.evidence.push(format!(
            "{who} silent from {} to {}: the whole guest stood still",
            at(a),
            at(b)
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
        context: &GapContext,
        who: &str,
        (a, b): (i64, i64),
    ) -> Finding {
        let silence = b - a;
        let (hosts, mut host_facts) = self.tied_hosts(data);
        for (host, vm) in &hosts {
            if let Some(mut f) = host_verdict(host, vm, a, b, &mut host_facts) {
                f.evidence.push(format!(
                    "{who} asleep in its wait from {} to {}, never woken",
                    at(a),
                    at(b)
                ));
                tie_evidence(&mut f, data, host, vm);
                return f;
            }
        }
        let cpu = timeline::main_cpu(spans, a, b);
        let steal = cpu.and_then(|c| mean_steal(data, Some(c), a, b));
        if let (Some(steal), Some(cpu)) = (steal.filter(|s| *s >= STEAL_PCT), cpu) {
            let mut f = Finding::new(
                Verdict::VcpuPreempted,
                format!(
                    "the guest {} did not get its vCPU {cpu}: {steal:.1}% steal",
                    data.host()
                ),
            );
            f.evidence.push(format!(
                "steal {steal:.1}% of CPU {cpu}, where {who} slept, on {} from {} to {}",
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
        // guest-kernel is a finding, not what is left: it needs the sender asleep in its
        // own wait (so its timer was what should have woken it) and its CPU idle or
        // running only kernel threads, as in a late timer interrupt.
        let in_wait = spans
            .iter()
            .filter(|s| s.state == TaskState::Sleeping && s.end > a && s.start < b)
            .find_map(|s| s.syscall.filter(|c| syscall::is_wait(c.nr, data.arch())));
        let Some(wait) = in_wait.map(|s| syscall::name(s.nr, data.arch())) else {
            return Finding::inconclusive(if data.syscalls_recorded(sender.tid, a - silence, b) {
                format!(
                    "{who} slept {} outside its wait and was never woken: what it waited for is not recorded",
                    dur(silence)
                )
            } else {
                format!(
                    "{who} slept {} and was never woken, but its syscalls were not recorded: whether it slept in its wait with its timer due is unknown (record with --comm 'keepalived*')",
                    dur(silence)
                )
            });
        };
        let lane = cpu.and_then(|c| context.cpus.iter().find(|l| l.cpu == c));
        let busy_user = lane.map(|l| {
            let shares = timeline::shares(&l.spans, a, b);
            let total: i64 = shares.iter().map(|s| s.2).sum();
            let user: i64 = shares
                .iter()
                .filter(|s| {
                    s.0 != 0 && s.0 != sender.tid && !data.tasks.is_kernel_thread(s.0, &s.1)
                })
                .map(|s| s.2)
                .sum();
            pct(user, total)
        });
        match busy_user {
            None => {
                return Finding::inconclusive(format!(
                    "{who} slept in {wait} for {} and was never woken, but what ran on its CPU was not recorded",
                    dur(silence)
                ))
            }
            Some(p) if p >= 50.0 => {
                return Finding::inconclusive(format!(
                    "{who} slept in {wait} for {} and was never woken while other tasks held its CPU {:.0}% of the time: not the idle, late-timer pattern of a guest kernel stall",
                    dur(silence),
                    p
                ))
            }
            Some(_) => {}
        }
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

/// The longest stretch of `[a, b]` in which `data`'s machine recorded no event at all
/// (a live kernel records its own tasks' switches every few milliseconds). Stretches
/// that reach into records not kept (the middle of a long silence) are unknown, not
/// empty.
fn blackout(data: &BundleData, a: i64, b: i64) -> Option<(i64, i64)> {
    let unknown = data.not_kept(a, b);
    let times = data.events_in(a, b).iter().map(|e| e.t);
    let mut last = a;
    let mut longest = None;
    for t in times.chain([b]) {
        let examined = !unknown.iter().any(|(from, to)| *from < t && *to > last);
        if examined && longest.is_none_or(|(f, l)| t - last > l - f) {
            longest = Some((last, t));
        }
        last = t;
    }
    longest
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
    if let Some((t, waker)) = first.and_then(|s| waker_before(data, sender.tid, s.start)) {
        let by = if waker == 0 {
            "an interrupt (no task)".to_string()
        } else {
            data.tasks.describe(waker)
        };
        f.evidence
            .push(format!("woken to be frozen by {by} at {}", at(t)));
    }
    let (from, to) = (
        first.map_or(0, |s| s.start),
        spans.last().map_or(0, |s| s.end),
    );
    let stops: Vec<String> = signals_to(data, sender, from - PENDING_HORIZON_NS, to)
        .into_iter()
        .filter(|(_, sig, _)| is_stop_signal(*sig))
        .map(|(t, sig, by)| {
            format!(
                "{} from {} at {}",
                signal_name(sig),
                data.tasks.describe(by),
                at(t)
            )
        })
        .collect();
    f.evidence.push(
        match (data.recorded("signal:signal_generate"), stops.is_empty()) {
            (false, _) => "signals were not recorded".to_string(),
            (true, true) => "no SIGSTOP/SIGTSTP to it: not a stop signal".to_string(),
            (true, false) => format!("also stop signals to it: {}", stops.join("; ")),
        },
    );
    f
}

/// Who woke `tid` for the run that ended in its last switch-out before `t`: (time,
/// waker). `None` when that wakeup was not recorded (an earlier wakeup, of an earlier
/// run, is not it).
fn waker_before(data: &BundleData, tid: i32, t: i64) -> Option<(i64, i32)> {
    let mut switched_out = false;
    for e in data.events_in(t - PENDING_HORIZON_NS, t).iter().rev() {
        match &e.record {
            Record::SchedSwitch { prev_tid, .. } if *prev_tid == tid => {
                if switched_out {
                    return None;
                }
                switched_out = true;
            }
            Record::SchedWakeup {
                tid: w, waker_tid, ..
            } if *w == tid && switched_out => {
                return Some((e.t, *waker_tid));
            }
            _ => {}
        }
    }
    None
}

/// How a host's finding is tied to the guest: its VM, and the clocks' alignment.
fn tie_evidence(f: &mut Finding, guest: &BundleData, host: &BundleData, vm: &VmTie) {
    f.evidence.push(vm.how.clone());
    f.evidence.push(format!(
        "guest {} and host {} are lined up {}",
        guest.host(),
        host.host(),
        host.alignment.cross_machine.describe()
    ));
}

/// Off CPU in a syscall other than its wait: disk I/O or another block.
fn blocked(data: &BundleData, sender: &Sender, spans: &[&Span], who: &str) -> Finding {
    let Some(longest) = spans.iter().max_by_key(|s| s.end - s.start) else {
        return Finding::inconclusive("no blocked span");
    };
    let (from, to) = (longest.start, longest.end);
    let call = longest
        .syscall
        .map(|s| timeline::describe_call(s.nr, &s.args, data.arch()))
        .unwrap_or_else(|| "the kernel".to_string());
    let letter = if longest.uninterruptible { "D" } else { "S" };
    let in_its_wait = longest
        .syscall
        .is_none_or(|s| syscall::is_wait(s.nr, data.arch()));
    let io = block_io(
        data,
        |tid| tid == sender.tid || data.tasks.tgid(tid) == Some(sender.tgid),
        from,
        to,
    );
    if longest.uninterruptible && in_its_wait && io.own.is_empty() {
        // D with no syscall and no I/O of its own to explain it: the cgroup v1 freezer
        // holds a task so, but so do a page fault and a lock; the freezer records were
        // read before this (see `overlay_frozen`) and did not show a freeze.
        let why = if data.freezer_recorded(sender.tid) {
            "its cgroups were not frozen (freezer state recorded): a page fault or a lock, which the recording does not show"
        } else if data.freezer.is_empty() {
            "the cgroup freezer, a page fault or a lock; this bundle has no freezer state (recorded by a vmlat before events version 2, or without --comm/--pid): record again with --comm 'keepalived*' to tell them apart"
        } else {
            "the cgroup freezer, a page fault or a lock; no freezer state was sampled for it (its cgroup could not be read)"
        };
        let mut f = Finding::inconclusive(format!(
            "{who} was off CPU {} in state D {}, with no block I/O of its own: {why}",
            dur(to - from),
            longest.detail.as_deref().unwrap_or("")
        ));
        f.evidence.push(format!(
            "{who} off CPU in state D from {} to {}",
            at(from),
            at(to)
        ));
        return f;
    }
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
    let own_device = io
        .own
        .iter()
        .max_by_key(|(_, n)| **n)
        .map(|(d, n)| (d.clone(), *n));
    // The disk it waited for, and what shows it: its own requests, or the journal
    // write that ended its wait.
    let waited_for = own_device
        .map(|(device, n)| {
            let why = format!(
                "{who} issued {n} block requests to {device} from {} on",
                at(from - OWN_IO_LEAD_NS)
            );
            (device, why)
        })
        .or_else(|| {
            let (ns, device, thread) = io.journal.clone().filter(|(ns, ..)| *ns >= SLOW_BLOCK_NS)?;
            let why = format!(
                "it waited for the filesystem journal: {thread}'s write to {device} took {} and completed just before {who} ran again (a sync mount or an fsync waits for the journal commit)",
                dur(ns)
            );
            Some((device, why))
        });
    let mut f = if longest.uninterruptible && (in_flight > 0 || slow) {
        match waited_for {
            Some((device, why)) => {
                let mut f = Finding::new(
                    Verdict::GuestIo,
                    format!(
                        "{who} was blocked {} in {call} waiting for disk {device}",
                        dur(to - from)
                    ),
                );
                f.evidence.push(why);
                f
            }
            None => {
                let busy = busiest_device(&lanes).unwrap_or_else(|| "a disk".into());
                Finding::inconclusive(format!(
                    "{who} was blocked {} in {call} (state D) while {busy} had I/O in flight, but it issued no block request of its own: whose I/O it waited for is not recorded",
                    dur(to - from)
                ))
            }
        }
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

fn busiest_device(lanes: &[crate::model::DiskLane]) -> Option<String> {
    lanes
        .iter()
        .max_by_key(|l| l.points.iter().map(|p| p.in_flight).max().unwrap_or(0))
        .map(|l| l.device.clone())
}

/// The hops ruled out on the sender's machine: its CPUs, its block I/O, the disks, the
/// steal.
fn rule_out_facts(
    data: &BundleData,
    sender: &Sender,
    spans: &[Span],
    context: &GapContext,
    (a, b): (i64, i64),
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
        .filter(|e| match &e.record {
            Record::BlockIssue { tid, .. } => {
                *tid == sender.tid || data.tasks.tgid(*tid) == Some(sender.tgid)
            }
            _ => false,
        })
        .count();
    out.push(if by_sender == 0 {
        format!("no block I/O by {}", sender.tid)
    } else {
        format!("{} block requests issued by {}", by_sender, sender.tid)
    });
    out.push(disk_figures(&context.disks, a, b));
    if let Some(cpu) = timeline::main_cpu(spans, a, b) {
        if let Some(steal) = mean_steal(data, Some(cpu), a, b) {
            out.push(format!("steal {steal:.1}% of CPU {cpu} on {}", data.host()));
        }
    }
    out
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

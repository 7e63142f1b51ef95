//! The host: hops 4 to 5 of `docs/verdicts.md`, from a host bundle and the guest's own
//! counters. Only the guest's own QEMU process is examined ([`own_vm`]): a stopped
//! thread of it → `vm-paused`; its threads in D while a host disk has I/O in flight →
//! `host-io`; one of its vCPU threads' run delay growing through the silence →
//! `vcpu-preempted`. The guest's steal of one CPU and the jumps of its clock are read
//! here too.

use std::collections::BTreeMap;

use vmlat_bundle::{Manifest, Record, TaskKind, TaskSample, VmInfo, VmTap};

use super::block::{block_io, SLOW_BLOCK_NS};
use super::collect::BundleData;
use super::verdict::Finding;
use super::{at, disk_figures, dur, pct};
use crate::align::{CrossMachine, FirstSeen};
use crate::model::Verdict;

/// Steal above this share of CPU time during the silence means the vCPU did not run.
pub(super) const STEAL_PCT: f64 = 10.0;
/// A vCPU whose run delay grew by more than this share of the silence was preempted.
const RUN_DELAY_SHARE: f64 = 0.5;
/// A change of realtime − monotonic larger than this is a guest clock jump.
const CLOCK_JUMP_NS: u64 = 100_000_000;

/// A guest's own QEMU process on a host, and what tied them.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct VmTie {
    pub pid: i32,
    /// `the MAC 52:54:00:aa:00:01 of eth0@vr1 is the guest's on tap vnet3 of QEMU pid 4242`.
    pub how: String,
}

impl VmTie {
    /// Whether a host thread sample is of this VM: its QEMU threads and its
    /// `vhost-PID` kernel threads.
    fn owns(&self, t: &TaskSample) -> bool {
        match t.kind {
            TaskKind::QemuVcpu | TaskKind::QemuIo | TaskKind::QemuOther => t.tgid == self.pid,
            TaskKind::Vhost => t.comm.strip_prefix("vhost-") == Some(&self.pid.to_string()),
            TaskKind::Traced => false,
        }
    }
}

/// Finds `guest`'s QEMU process on `host` ([`tie`]), with the packets the guest sent
/// as the clock alignment matched them on that host.
pub(super) fn own_vm(guest: &BundleData, host: &Manifest) -> Result<VmTie, String> {
    let sent = match &guest.alignment.cross_machine {
        CrossMachine::Packets(p) if p.reference == host.hostname => &p.sent_first_seen_at[..],
        _ => &[],
    };
    tie(&guest.manifest, sent, host)
}

/// A guest's packets, matched on the host, tie it to a tap only when at least this
/// many were first seen there...
const TIED_BY_PACKETS: u64 = 3;
/// ...and any other VM's tap saw first at most this share of what that tap did.
const OTHER_TAP_SHARE: u64 = 10;

/// Finds `guest`'s QEMU process among those the host recorded (`recorded.vms`): the
/// one with a guest MAC equal to the hardware address of one of the guest's capture
/// interfaces, else the one whose `-name` is the guest's hostname, else the one whose
/// tap the host captured and saw the guest's own packets at first (`sent`: where the
/// host first saw the packets the guest sent, from the clock alignment). Several VMs
/// may carry one MAC or one name (clones on separate networks, two labs on one host):
/// then only those whose tap the host itself captured, in the namespace the VM runs in,
/// are kept, then those of the guest's name; if that still leaves more than one, none is
/// chosen. Anything weaker (the only VM on the host, say) is no proof: the guest may
/// run elsewhere, and another VM's stalls must not be blamed. `Err` says why no VM was
/// tied.
fn tie(guest: &Manifest, sent: &[FirstSeen], host: &Manifest) -> Result<VmTie, String> {
    let vms = &host.recorded.vms;
    if vms.is_empty() {
        return Err(format!(
            "host {}: no QEMU process listed (recorded without --role host, by an older vmlat, or no VM running): its threads are not tied to guest {}",
            host.hostname, guest.hostname
        ));
    }
    let captured = |vm: &VmInfo, tap: &VmTap| {
        host.recorded
            .captures
            .iter()
            .any(|c| c.interface == tap.ifname && c.netns == vm.netns)
    };
    let named = |vm: &VmInfo| vm.name.as_deref() == Some(guest.hostname.as_str());
    for capture in &guest.recorded.captures {
        let Some(mac) = &capture.mac else { continue };
        let by_mac: Vec<(&VmInfo, &VmTap)> = vms
            .iter()
            .filter_map(|vm| Some((vm, vm.taps.iter().find(|t| t.mac.as_ref() == Some(mac))?)))
            .collect();
        let narrowed = narrow(&by_mac, |(vm, tap)| captured(vm, tap));
        let narrowed = narrow(&narrowed, |(vm, _)| named(vm));
        match narrowed.as_slice() {
            [] => {}
            [(vm, tap)] => {
                return Ok(VmTie {
                    pid: vm.pid,
                    how: format!(
                        "the MAC {mac} of {} is the guest's on tap {} of QEMU pid {} on {}",
                        capture.name, tap.ifname, vm.pid, host.hostname
                    ),
                })
            }
            several => {
                return Err(ambiguous(
                    host,
                    guest,
                    &format!("the MAC {mac}"),
                    several.iter().map(|(vm, _)| vm.pid),
                ))
            }
        }
    }
    let by_name: Vec<&VmInfo> = vms.iter().filter(|vm| named(vm)).collect();
    match by_name.as_slice() {
        [] => by_packets(guest, sent, host).ok_or_else(|| {
            format!(
                "host {}: none of its {} QEMU processes has the MAC of a capture interface of guest {} or its name, nor a captured tap where the host saw the guest's packets first: their threads are not examined",
                host.hostname,
                vms.len(),
                guest.hostname
            )
        }),
        [vm] => Ok(VmTie {
            pid: vm.pid,
            how: format!(
                "QEMU pid {} on {} runs the guest named {} (-name), the guest's hostname",
                vm.pid, host.hostname, guest.hostname
            ),
        }),
        several => Err(ambiguous(host, guest, "its name", several.iter().map(|vm| vm.pid))),
    }
}

/// The VM whose tap, captured by the host, saw first most of the packets the guest
/// sent: at least [`TIED_BY_PACKETS`], and more than [`OTHER_TAP_SHARE`] times any
/// other VM's tap (a multicast advert crosses every tap of the bridge, but reaches the
/// host at the sender's own first).
fn by_packets(guest: &Manifest, sent: &[FirstSeen], host: &Manifest) -> Option<VmTie> {
    let tap_of = |capture: &str| {
        let c = host.recorded.captures.iter().find(|c| c.name == capture)?;
        host.recorded.vms.iter().find_map(|vm| {
            let tap = vm
                .taps
                .iter()
                .find(|t| t.ifname == c.interface && c.netns == vm.netns)?;
            Some((vm, tap))
        })
    };
    let mut taps = sent
        .iter()
        .filter_map(|f| Some((tap_of(&f.capture)?, f.packets)));
    let ((vm, tap), packets) = taps.next()?;
    let others = taps.map(|(_, n)| n).max().unwrap_or(0);
    (packets >= TIED_BY_PACKETS && others.saturating_mul(OTHER_TAP_SHARE) < packets).then(|| {
        VmTie {
            pid: vm.pid,
            how: format!(
                "{packets} packets guest {} sent were seen first on tap {} of QEMU pid {} on {} (packets both captured)",
                guest.hostname, tap.ifname, vm.pid, host.hostname
            ),
        }
    })
}

/// The candidates that pass `keep`, or all of them when none does.
fn narrow<T: Copy>(candidates: &[T], keep: impl Fn(&T) -> bool) -> Vec<T> {
    let kept: Vec<T> = candidates.iter().filter(|c| keep(c)).copied().collect();
    if kept.is_empty() {
        candidates.to_vec()
    } else {
        kept
    }
}

fn ambiguous(
    host: &Manifest,
    guest: &Manifest,
    by: &str,
    pids: impl Iterator<Item = i32>,
) -> String {
    let pids: Vec<String> = pids.map(|p| p.to_string()).collect();
    format!(
        "host {}: QEMU pids {} all match {by} of guest {}, and none is told apart by a tap the host captured: which one runs it is not known, so none of their threads is examined",
        host.hostname,
        pids.join(", "),
        guest.hostname
    )
}

/// Host-side verdicts (hops 4, 4b, 5) from one host bundle, about the guest's own VM
/// `vm`, in order: stopped, blocked on a host disk, vCPU delayed. Facts that rule them
/// out go to `facts`.
pub(super) fn host_verdict(
    host: &BundleData,
    vm: &VmTie,
    a: i64,
    b: i64,
    facts: &mut Vec<String>,
) -> Option<Finding> {
    let found = vm_stopped(host, vm, a, b)
        .or_else(|| host_io(host, vm, a, b))
        .or_else(|| vcpu_delayed(host, vm, a, b, facts));
    with_guest_mode(found, host, vm, a, b, facts)
}

/// Adds what the VM's vCPUs did in and out of guest mode ([`guest_mode`]) to a host
/// finding's evidence, or to the facts when there is none.
fn with_guest_mode(
    found: Option<Finding>,
    host: &BundleData,
    vm: &VmTie,
    a: i64,
    b: i64,
    facts: &mut Vec<String>,
) -> Option<Finding> {
    let line = guest_mode(host, vm, a, b);
    match found {
        Some(mut f) => {
            f.evidence.extend(line);
            Some(f)
        }
        None => {
            facts.extend(line);
            None
        }
    }
}

/// The VM's threads sampled from `a` to `b` (with the margin that gives each window a
/// sample before it).
fn vm_samples<'a>(
    host: &'a BundleData,
    vm: &'a VmTie,
    a: i64,
    b: i64,
) -> impl Iterator<Item = (i64, &'a TaskSample)> {
    host.samples_in(
        a - super::collect::SAMPLE_MARGIN_NS,
        b + super::collect::SAMPLE_MARGIN_NS,
    )
    .iter()
    .filter_map(move |s| match &s.record {
        Record::Task(t) if vm.owns(t) => Some((s.t, t)),
        _ => None,
    })
}

/// The host rules that say the guest did not run at all (its QEMU stopped, or its vCPU
/// kept off the host's CPUs): whatever the guest recorded of those seconds says nothing
/// of them, so they are asked before the guest's own states.
pub(super) fn guest_not_run(host: &BundleData, vm: &VmTie, a: i64, b: i64) -> Option<Finding> {
    let found =
        vm_stopped(host, vm, a, b).or_else(|| vcpu_delayed(host, vm, a, b, &mut Vec::new()));
    with_guest_mode(found, host, vm, a, b, &mut Vec::new())
}

/// How long before the window the host's KVM records are read, to find the entry that
/// preceded it.
pub(super) const GUEST_MODE_LOOKBACK_NS: i64 = 1_000_000_000;

/// What the VM's vCPUs did in KVM's guest mode from `a` to `b`, from `kvm:kvm_exit` and
/// `kvm:kvm_entry` of its vCPU threads (a KVM host only: under TCG, or without the
/// records, `None`): the longest stretch in which none of them entered the guest, and
/// the exit that began it. An exit for HLT is a guest with nothing to run; an exit for
/// I/O or MMIO that the guest does not return from is a guest waiting for QEMU's
/// device emulation, the seed's case of a VM stuck behind its host's I/O.
pub(super) fn guest_mode(host: &BundleData, vm: &VmTie, a: i64, b: i64) -> Option<String> {
    let vcpus: Vec<i32> = vm_samples(host, vm, a, b)
        .filter(|(_, t)| t.kind == TaskKind::QemuVcpu)
        .map(|(_, t)| t.tid)
        .collect();
    let mut seen = false;
    let (mut last_entry, mut last_exit) = (a, None);
    let (mut longest, mut exit_of_longest) = ((a, a), None);
    for e in host.events_in(a - GUEST_MODE_LOOKBACK_NS, b) {
        match &e.record {
            Record::KvmEntry { tid, .. } if vcpus.contains(tid) => {
                seen = true;
                let from = out_since(last_entry, last_exit).max(a);
                if e.t > a && e.t - from > longest.1 - longest.0 {
                    longest = (from, e.t);
                    exit_of_longest = last_exit;
                }
                last_entry = e.t;
                last_exit = None;
            }
            Record::KvmExit {
                tid,
                vcpu,
                reason,
                isa,
                ..
            } if vcpus.contains(tid) => {
                seen = true;
                last_exit = Some((e.t, *tid, *vcpu, *reason, *isa));
            }
            _ => {}
        }
    }
    if !seen {
        return None;
    }
    let from = out_since(last_entry, last_exit).max(a);
    if b - from > longest.1 - longest.0 {
        longest = (from, b);
        exit_of_longest = last_exit;
    }
    let left = exit_of_longest.map_or(String::new(), |(t, tid, vcpu, reason, isa)| {
        format!(
            ": vCPU {vcpu} (thread {tid}) had left it at {} for {}",
            at(t),
            exit_reason(reason, isa)
        )
    });
    Some(format!(
        "no vCPU of QEMU pid {} on {} entered guest mode for {}, from {} to {}{left}",
        vm.pid,
        host.host(),
        dur(longest.1 - longest.0),
        at(longest.0),
        at(longest.1)
    ))
}

/// Since when the vCPUs were out of guest mode: the exit after the last entry, or the
/// entry itself when its exit was not recorded.
fn out_since(last_entry: i64, last_exit: Option<(i64, i32, u32, u32, u32)>) -> i64 {
    last_exit.map_or(last_entry, |(t, ..)| t)
}

/// A KVM exit reason by name, with what it means for a silent guest: VMX basic exit
/// reasons (`isa` 1, Intel) and SVM exit codes (`isa` 2, AMD), as the kernel's
/// `kvm_exit` tracepoint prints them; others by number.
fn exit_reason(reason: u32, isa: u32) -> String {
    let name = match (isa, reason & 0xffff) {
        (1, 1) | (2, 0x60) => "an external interrupt",
        (1, 12) | (2, 0x78) => "HLT (the guest idle)",
        (1, 30) | (2, 0x7b) => "port I/O (emulated by QEMU)",
        (1, 48) | (2, 0x400) => "an EPT/NPT fault (guest memory not mapped)",
        (1, 49) => "MMIO (emulated by QEMU)",
        (1, 31) | (1, 32) | (2, 0x7c) => "an MSR access",
        (1, 40) | (2, 0x77) => "PAUSE (a spinning guest)",
        (1, 52) => "the preemption timer",
        _ => return format!("exit reason {reason:#x} (isa {isa})"),
    };
    name.to_owned()
}

/// vm-paused: a QEMU thread of the VM stopped (SIGSTOP of QEMU).
fn vm_stopped(host: &BundleData, vm: &VmTie, a: i64, b: i64) -> Option<Finding> {
    let (t, task) = vm_samples(host, vm, a, b).find(|(t, task)| {
        task.kind != TaskKind::Vhost && matches!(task.state, 'T' | 't') && *t >= a && *t <= b
    })?;
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
    Some(f)
}

/// host-io: a QEMU thread of the VM in D while a host disk has I/O in flight.
pub(super) fn host_io(host: &BundleData, vm: &VmTie, a: i64, b: i64) -> Option<Finding> {
    let (t, task) = vm_samples(host, vm, a, b).find(|(t, task)| {
        task.kind != TaskKind::Vhost && task.state == 'D' && *t >= a && *t <= b
    })?;
    let lanes = super::disk_lanes(host, a, b);
    let (lane, _) = lanes
        .iter()
        .flat_map(|l| l.points.iter().map(move |p| (l, p)))
        .filter(|(_, p)| p.t.0 >= a && p.t.0 <= b + super::collect::SAMPLE_MARGIN_NS)
        .max_by_key(|(_, p)| p.in_flight)
        .filter(|(_, p)| p.in_flight > 0)?;
    // The disk QEMU's own request waited on, when the host recorded it; the busiest
    // disk is only the fallback (another program's I/O can keep it busier).
    let threads: BTreeMap<i32, &str> = vm_samples(host, vm, a, b)
        .map(|(_, t)| (t.tid, t.comm.as_str()))
        .collect();
    let ours = |tid| threads.contains_key(&tid) || host.tasks.tgid(tid) == Some(vm.pid);
    let io = block_io(host, ours, a, b);
    let own = io.own_longest.filter(|(ns, ..)| *ns >= SLOW_BLOCK_NS);
    let device = own
        .as_ref()
        .map_or(lane.device.as_str(), |(_, d, ..)| d.as_str());
    let mut f = Finding::new(
        Verdict::HostIo,
        format!(
            "QEMU on {} was blocked on the host disk {device}",
            host.host()
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
    match own {
        Some((ns, device, tid, issued)) => f.evidence.push(format!(
            "QEMU thread {} ({tid}) issued a request to {device} at {} that was in flight {}",
            threads
                .get(&tid)
                .copied()
                .or_else(|| host.tasks.comm(tid))
                .unwrap_or("?"),
            at(issued),
            dur(ns)
        )),
        None => f.evidence.push(format!(
            "no request of QEMU's own recorded in flight: {} is the host disk busiest then",
            lane.device
        )),
    }
    f.evidence.push(disk_figures(&lanes, a, b));
    Some(f)
}

/// Whether the VM's vCPU threads kept running from `a` to `b`, from the host's
/// scheduler records: `No` with the evidence line when none of them switched in for at
/// least `stood_ns` in a row while its QEMU lived (its threads sampled alive before and
/// after). A paused VM (QMP `stop`, a snapshot) leaves its vCPU threads asleep in S, not
/// T; a running guest with a timer due (keepalived's next advert) wakes a vCPU at least
/// that often, so a stretch that long without one is the VM not run.
pub(super) enum VcpusRan {
    /// The host recorded nothing that tells (no scheduler records, no vCPU samples).
    Unknown,
    Yes,
    No(String),
}

pub(super) fn vcpus_ran(host: &BundleData, vm: &VmTie, a: i64, b: i64, stood_ns: i64) -> VcpusRan {
    if !host.recorded("sched:sched_switch") {
        return VcpusRan::Unknown;
    }
    let mut vcpus: Vec<(i32, &str)> = Vec::new();
    let (mut before, mut after) = (false, false);
    for (t, task) in vm_samples(host, vm, a, b) {
        before |= t <= a;
        after |= t >= b;
        if task.kind == TaskKind::QemuVcpu && !vcpus.iter().any(|(tid, _)| *tid == task.tid) {
            vcpus.push((task.tid, task.comm.as_str()));
        }
    }
    if vcpus.is_empty() || !before || !after {
        return VcpusRan::Unknown;
    }
    // The longest stretch of [a, b] without a switch to any of its vCPUs.
    let (mut longest, mut last) = ((a, a), a);
    let switch_ins = host.events_in(a, b).iter().filter(|e| {
        matches!(&e.record, Record::SchedSwitch { next_tid, .. } if vcpus.iter().any(|(tid, _)| tid == next_tid))
    });
    for t in switch_ins.map(|e| e.t).chain([b]) {
        if t - last > longest.1 - longest.0 {
            longest = (last, t);
        }
        last = t;
    }
    if longest.1 - longest.0 < stood_ns {
        return VcpusRan::Yes;
    }
    let names: Vec<String> = vcpus
        .iter()
        .map(|(tid, comm)| format!("{comm} ({tid})"))
        .collect();
    VcpusRan::No(format!(
        "no vCPU thread of QEMU pid {} ran on {} for {}, from {} to {}: {} never switched in, while QEMU's threads were sampled alive before and after",
        vm.pid,
        host.host(),
        dur(longest.1 - longest.0),
        at(longest.0),
        at(longest.1),
        names.join(", ")
    ))
}

/// A jump of the guest's clock behind the reference machine's, across the silence
/// `[a, b]`, by at least half of it, from the packets both captured
/// ([`crate::align::ClockJump`]): the guest's time stood still while the host's ran,
/// which is how a paused VM shows. The evidence line and how far it fell, or `None`.
pub(super) fn fell_behind(guest: &BundleData, a: i64, b: i64) -> Option<(String, i64)> {
    let CrossMachine::Packets(sync) = &guest.alignment.cross_machine else {
        return None;
    };
    sync.jumps
        .iter()
        .find(|j| j.behind_ns * 2 >= b - a && j.last_before.0 < b && j.first_after.0 > a)
        .map(|j| {
            let line = format!(
                "{}'s clock fell {} behind {}'s between the packets both captured at {} and {}: the guest's time stood still while the host's ran",
                guest.host(),
                dur(j.behind_ns),
                sync.reference,
                at(j.last_before.0),
                at(j.first_after.0)
            );
            (line, j.behind_ns)
        })
}

/// vcpu-preempted: a vCPU thread of the VM whose run delay grew through the silence.
fn vcpu_delayed(
    host: &BundleData,
    vm: &VmTie,
    a: i64,
    b: i64,
    facts: &mut Vec<String>,
) -> Option<Finding> {
    let mut growth: BTreeMap<i32, (i64, i64, u64, u64, &TaskSample)> = BTreeMap::new();
    for (st, t) in vm_samples(host, vm, a, b) {
        if t.kind != TaskKind::QemuVcpu {
            continue;
        }
        let e = growth
            .entry(t.tid)
            .or_insert((st, st, t.wait_ns, t.wait_ns, t));
        if st <= a {
            *e = (st, st, t.wait_ns, t.wait_ns, t);
        } else if e.1 < b + super::collect::SAMPLE_MARGIN_NS {
            // A thread's run delay is credited when it next gets a CPU: the wait of a
            // vCPU starved through the silence shows in the first sample after it runs
            // again, which is after the silence.
            e.1 = st;
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
            "host {}: vCPU run delay of QEMU pid {} +{} during the silence, none of its threads stopped or in D ({})",
            host.host(),
            vm.pid,
            dur(grew),
            vm.how
        ));
    } else {
        facts.push(format!(
            "host {}: no vCPU thread samples of QEMU pid {}",
            host.host(),
            vm.pid
        ));
    }
    None
}

/// Steal % of one CPU (`None`: the whole machine, the aggregate `cpu` line) from `a`
/// to `b`: between its last sample at or before `a` and its first at or after `b`.
pub(super) fn mean_steal(data: &BundleData, cpu: Option<u32>, a: i64, b: i64) -> Option<f64> {
    let margin = super::collect::SAMPLE_MARGIN_NS;
    let lines: Vec<(i64, &vmlat_bundle::CpuSample)> = data
        .samples_in(a - margin, b + margin)
        .iter()
        .filter_map(|s| match &s.record {
            Record::Cpu(c) if c.cpu == cpu => Some((s.t, &**c)),
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
pub(super) fn clock_jump(data: &BundleData, a: i64, b: i64) -> Option<String> {
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

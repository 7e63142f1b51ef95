//! Attribution rules on constructed recordings: one case per verdict, each next to the
//! neighbours it must not be confused with (`docs/verdicts.md`).
//!
//! Every case writes real bundles (manifest, `events.vmlat` through `EventWriter`,
//! pcaps) with the helpers of `support::bundle`, runs [`vmlat_analyzer::analyze`] on
//! them, and checks the verdict and the key evidence of the one gap at stake. The
//! stage: keepalived's VRRP child 8557 (parent 8550) on CPU 0 of guest `vm1` advertises
//! VRID 51 every second from t = 0 s to 3 s, is silent, and advertises again from
//! 7.5 s; the backup 10.10.0.2 takes over at 6.62 s and is preempted at 7.5 s.
//! Host-side verdicts use generated host bundles: this machine has no KVM, so real
//! vCPU preemption, VM pauses and steal cannot be recorded here.

mod support;

use std::net::Ipv4Addr;

use support::bundle::*;
use support::NS;
use syscalls::x86_64::Sysno;
use vmlat_analyzer::{analyze, Analysis, AnalyzeOptions, Gap, Incident, Verdict};
use vmlat_bundle::{CgroupHierarchy, FreezerState, Losses, Record, Role, TaskKind, VmInfo, VmTap};

const VRRP: i32 = 8557;
const KA: (i32, &str) = (8557, "keepalived");
const IDLE0: (i32, &str) = (0, "swapper/0");
const MASTER: Ipv4Addr = Ipv4Addr::new(10, 10, 0, 1);
const BACKUP: Ipv4Addr = Ipv4Addr::new(10, 10, 0, 2);
const STATE_S: u64 = 1;
const STATE_D: u64 = 2;

fn s(x: f64) -> i64 {
    T0 + (x * NS as f64) as i64
}

fn nr(s: Sysno) -> i64 {
    i64::from(s.id())
}

/// When the master advertises: 0..=3 s and 7.5, 8.5, 9.5 s (a 4.5 s gap).
fn stalled_adverts() -> Vec<i64> {
    [0.0, 1.0, 2.0, 3.0, 7.5, 8.5, 9.5]
        .iter()
        .map(|&x| s(x))
        .collect()
}

/// Every second from 0 to 9 s: the master never stopped sending.
fn steady_adverts() -> Vec<i64> {
    (0..=9).map(|k| s(k as f64)).collect()
}

/// The capture of the master's adverts at `times`, plus the backup's takeover.
fn on_wire(times: &[i64]) -> Vec<(i64, Ipv4Addr, u8)> {
    let mut a: Vec<_> = times.iter().map(|&t| (t, MASTER, 150)).collect();
    a.push((s(6.62), BACKUP, 100));
    a.sort();
    a
}

/// The guest: names, the VRRP child's send cycle at `sends` on CPU 0, a kworker
/// blip of 500 µs every 500 ms on CPU 0, and the master's adverts at `eth0@vr1`.
fn guest(sends: &[i64]) -> BundleBuilder {
    guest_with_kworker_on(sends, 0)
}

fn guest_with_kworker_on(sends: &[i64], kworker_cpu: u32) -> BundleBuilder {
    let mut b = BundleBuilder::new("vm1", Role::Guest);
    for (tid, ppid, comm) in [
        (1, 0, "systemd"),
        (2, 0, "kthreadd"),
        (40, 2, "kworker/0:1"),
        (8550, 1, "keepalived"),
        (VRRP, 8550, "keepalived"),
        (8990, 1, "sshd"),
        (9001, 8990, "bash"),
        (9100, 8990, "bash"),
        (4242, 9001, "stress-ng"),
    ] {
        b.push(task_info(tid, ppid, comm));
    }
    for &p in sends {
        send_cycle(&mut b, p);
    }
    let mut t = s(-1.0) + 250 * MS;
    while t < s(11.0) {
        let idle = (
            0,
            if kworker_cpu == 0 {
                "swapper/0"
            } else {
                "swapper/1"
            },
        );
        b.push(switch(t, kworker_cpu, idle, 0, (40, "kworker/0:1")));
        b.push(switch(
            t + 500 * US,
            kworker_cpu,
            (40, "kworker/0:1"),
            0x80,
            idle,
        ));
        t += 500 * MS;
    }
    b.capture("eth0@vr1", "eth0", &on_wire(sends));
    b
}

fn send_cycle(b: &mut BundleBuilder, p: i64) {
    for r in support::bundle::send_cycle(VRRP, p) {
        b.push(r);
    }
}

/// Runs on the bundles and returns the analysis and the incident of the master's gap
/// at `capture`, the only incident.
fn run(bundles: Vec<BundleBuilder>, capture: &str) -> (Analysis, Incident) {
    let analysis = analyze_bundles(bundles);
    let gaps: Vec<&Gap> = analysis
        .gaps
        .iter()
        .filter(|g| g.stream.group.capture == capture && g.stream.src == MASTER)
        .collect();
    assert_eq!(gaps.len(), 1, "gaps at {capture}: {:#?}", analysis.gaps);
    assert_eq!(
        analysis.incidents.len(),
        1,
        "one event, one incident: {:#?}",
        analysis.incidents
    );
    let inc = analysis.incidents[0].clone();
    assert_eq!(gaps[0].incident, inc.id);
    (analysis, inc)
}

fn evidence(inc: &Incident) -> String {
    inc.evidence.join("\n")
}

#[track_caller]
fn assert_verdict(inc: &Incident, verdict: Verdict, facts: &[&str]) {
    let text = format!("{:?}: {:?}\n{}", inc.verdict, inc.summary, evidence(inc));
    assert_eq!(inc.verdict, verdict, "{text}");
    for fact in facts {
        assert!(text.contains(fact), "missing '{fact}' in\n{text}");
    }
}

/// The SIGSTOP case: stopped at 3.2 s by bash 9001, continued at 7.3 s.
fn sigstopped() -> BundleBuilder {
    let mut b = guest(&stalled_adverts());
    for r in sigstop(VRRP, 9001, s(3.2), s(7.3)) {
        b.push(r);
    }
    b
}

#[test]
fn sigstop_is_app_stopped_with_the_signal_its_sender_and_the_sigcont() {
    let (_, inc) = run(vec![sigstopped()], "eth0@vr1");
    assert_verdict(
        &inc,
        Verdict::AppStopped,
        &[
            "was stopped, not sleeping",
            "sender: keepalived pid 8557 on vm1 (keepalived child of keepalived 8550)",
            "before 3 of 4 adverts at eth0@vr1",
            "last sendmsg returned at",
            "SIGSTOP to 8557 from pid 9001 (bash, parent sshd 8990, parent systemd 1)",
            "switched out in state T",
            "SIGCONT from pid 9001",
            "no block I/O by 8557",
            "CPU 0 idle",
            "packets: eth0@vr1 silent",
        ],
    );
    let context = inc.context.as_ref().unwrap();
    let sender = context.sender.as_ref().unwrap();
    assert!(sender
        .spans
        .iter()
        .any(|s| s.state == vmlat_analyzer::TaskState::Stopped));
    assert_eq!(context.cpus.len(), 1);
    assert_eq!(context.packets.len(), 2, "master and backup lanes");
}

#[test]
fn runnable_behind_a_hog_is_guest_cpu_not_stopped() {
    let mut b = guest_with_kworker_on(&stalled_adverts(), 1);
    // stress-ng holds CPU 0 from 3.5 s; keepalived's timer wakes it at 4 s; it only
    // gets the CPU at 7.5 s.
    b.push(switch(s(3.5), 0, IDLE0, 0, (4242, "stress-ng")));
    b.push(wakeup(s(4.0), 0, VRRP, "keepalived", 0));
    b.push(switch(s(7.49), 0, (4242, "stress-ng"), STATE_S, IDLE0));
    let (_, inc) = run(vec![b], "eth0@vr1");
    assert_verdict(
        &inc,
        Verdict::GuestCpu,
        &[
            "was runnable for",
            "CPU 0 was held by stress-ng 4242",
            "runnable from",
        ],
    );
}

/// keepalived as the cgroup v1 freezer leaves it (measured on 6.18): writing FROZEN
/// wakes it (bash 9100), its wait returns -EINTR, and it leaves the CPU in state D
/// with no syscall in progress and no block I/O, until thawed at 7.3 s.
fn d_in_its_wait() -> BundleBuilder {
    let mut b = guest(&stalled_adverts());
    b.push(wakeup(s(3.2), 9100, VRRP, "keepalived", 0));
    b.push(switch(s(3.2) + 100 * US, 0, IDLE0, 0, KA));
    b.push(exit(s(3.2) + 150 * US, VRRP, nr(Sysno::epoll_wait), -4));
    b.push(switch(s(3.2) + 200 * US, 0, KA, STATE_D, IDLE0));
    b.push(wakeup(s(7.3), 9100, VRRP, "keepalived", 0));
    quiet_disk(&mut b);
    b
}

#[test]
fn frozen_by_the_cgroup_v1_freezer_is_app_stopped_not_io() {
    let mut b = d_in_its_wait();
    let v1 = CgroupHierarchy::V1Freezer;
    b.push(freezer(s(-1.0), VRRP, v1, FreezerState::Thawed));
    b.push(freezer(s(3.25), VRRP, v1, FreezerState::Frozen));
    b.push(freezer(s(7.35), VRRP, v1, FreezerState::Thawed));
    let (_, inc) = run(vec![b], "eth0@vr1");
    assert_verdict(
        &inc,
        Verdict::AppStopped,
        &[
            "frozen by the cgroup freezer",
            "cgroup v1 freezer /vmlat-test FROZEN by",
            "woken to be frozen by pid 9100 (bash",
            "no SIGSTOP/SIGTSTP",
            "no block I/O by 8557",
        ],
    );
}

#[test]
fn d_in_its_wait_without_freezer_records_is_inconclusive_not_frozen() {
    // The same D, from a bundle with no freezer state: the freezer, a page fault or a
    // lock look alike. Guessing "freezer" here is what this test forbids.
    let (_, inc) = run(vec![d_in_its_wait()], "eth0@vr1");
    assert_verdict(
        &inc,
        Verdict::Inconclusive,
        &["in state D", "no freezer state", "record again"],
    );
}

#[test]
fn d_in_its_wait_with_a_thawed_cgroup_is_inconclusive_not_frozen() {
    let mut b = d_in_its_wait();
    b.push(freezer(
        s(-1.0),
        VRRP,
        CgroupHierarchy::V1Freezer,
        FreezerState::Thawed,
    ));
    let (_, inc) = run(vec![b], "eth0@vr1");
    assert_verdict(
        &inc,
        Verdict::Inconclusive,
        &["its cgroups were not frozen", "a page fault or a lock"],
    );
}

#[test]
fn frozen_by_cgroup_v2_is_app_stopped_though_it_sleeps_in_state_s() {
    // cgroup v2 (`cgroup.freeze`, as docker pause and systemctl freeze do) on 6.18:
    // the wait returns -EINTR and the task leaves the CPU in state S outside any
    // syscall. Without the freezer record this reads as a sleep.
    let mut b = guest(&stalled_adverts());
    b.push(wakeup(s(3.2), 9100, VRRP, "keepalived", 0));
    b.push(switch(s(3.2) + 100 * US, 0, IDLE0, 0, KA));
    b.push(exit(s(3.2) + 150 * US, VRRP, nr(Sysno::epoll_wait), -4));
    b.push(switch(s(3.2) + 200 * US, 0, KA, STATE_S, IDLE0));
    b.push(wakeup(s(7.3), 9100, VRRP, "keepalived", 0));
    quiet_disk(&mut b);
    let v2 = CgroupHierarchy::V2;
    b.push(freezer(s(-1.0), VRRP, v2, FreezerState::Thawed));
    b.push(freezer(s(3.25), VRRP, v2, FreezerState::Frozen));
    b.push(freezer(s(7.35), VRRP, v2, FreezerState::Thawed));
    let (_, inc) = run(vec![b], "eth0@vr1");
    assert_verdict(
        &inc,
        Verdict::AppStopped,
        &[
            "frozen by the cgroup freezer",
            "cgroup v2 /vmlat-test FROZEN",
        ],
    );
}

/// vdb (254:16) sampled every 100 ms with no I/O.
fn quiet_disk(b: &mut BundleBuilder) {
    for k in 0..120 {
        b.push(disk(s(-1.0) + k * 100 * MS, "vdb", 16, 10, 40, 0, 50));
    }
}

/// keepalived blocked 4.1 s in write(fd 15) on its own request to vdb, in flight all
/// along: the guest-io case.
fn blocked_on_its_disk() -> BundleBuilder {
    blocked_on_disk(Sysno::write, (VRRP, "keepalived"), s(7.3))
}

/// ext4's journal thread, which writes the commit a sync mount or an fsync waits for.
const JBD2: i32 = 777;

/// keepalived blocked 4.1 s in `call` (fd 15) while `issuer`'s write to vdb is in
/// flight from 3.2 s to `completed`; keepalived runs again at 7.3 s.
fn blocked_on_disk(call: Sysno, issuer: (i32, &str), completed: i64) -> BundleBuilder {
    let mut b = guest(&stalled_adverts());
    b.push(wakeup(s(3.2), 0, VRRP, "keepalived", 0));
    b.push(switch(s(3.2) + 100 * US, 0, IDLE0, 0, KA));
    b.push(exit(s(3.2) + 150 * US, VRRP, nr(Sysno::epoll_wait), 1));
    b.push(enter(s(3.2) + 200 * US, VRRP, nr(call), 15));
    b.push(block_issue(s(3.2) + 250 * US, 16, 100, issuer.0, issuer.1));
    b.push(switch(s(3.2) + 300 * US, 0, KA, STATE_D, IDLE0));
    b.push(block_complete(completed, 16, 100));
    b.push(wakeup(s(7.3) + 10 * US, 0, VRRP, "keepalived", 0));
    b.push(switch(s(7.3) + 50 * US, 0, IDLE0, 0, KA));
    b.push(exit(s(7.3) + 60 * US, VRRP, nr(call), 72));
    b.push(enter(s(7.3) + 70 * US, VRRP, nr(Sysno::epoll_wait), 4));
    b.push(switch(s(7.3) + 80 * US, 0, KA, STATE_S, IDLE0));
    // vdb: one write in flight from 3.2 s to 7.3 s, the disk busy all along.
    for k in 0..120i64 {
        let t = s(-1.0) + k * 100 * MS;
        let (writes, wms, flight) = if t < s(3.2) {
            (10, 40, 0)
        } else if t < s(7.3) {
            (10, 40, 1)
        } else {
            (11, 4140, 0)
        };
        let ticks = 50 + (t.clamp(s(3.2), s(7.3)) - s(3.2)) as u64 / 1_000_000;
        b.push(disk(t, "vdb", 16, writes, wms, flight, ticks));
    }
    b
}

#[test]
fn d_in_write_with_a_slow_block_request_is_guest_io_not_frozen() {
    let (analysis, inc) = run(vec![blocked_on_its_disk()], "eth0@vr1");
    assert_verdict(
        &inc,
        Verdict::GuestIo,
        &[
            "blocked 4.100 s in write(fd 15) waiting for disk vdb",
            "off CPU in write(fd 15), state D",
            "the slowest on vdb after 4.100 s",
            "vdb: in-flight up to 1",
            "w_await up to 4100.0 ms",
        ],
    );
    let lanes = &inc.context.as_ref().unwrap().disks;
    assert_eq!(lanes.len(), 1);
    assert!(lanes[0]
        .points
        .iter()
        .any(|p| p.util_pct == 100.0 && p.in_flight == 1));
    assert_eq!(analysis.disks.len(), 1, "the whole recording's vdb lane");
}

/// Found in the qemu-host-io lab: on a sync-mounted ext4, keepalived's openat of its
/// stats file waits for the journal commit, which jbd2 issues, not keepalived.
#[test]
fn d_in_openat_while_the_journal_write_is_slow_is_guest_io() {
    let b = blocked_on_disk(Sysno::openat, (JBD2, "jbd2/vdb-8"), s(7.3));
    let (_, inc) = run(vec![b], "eth0@vr1");
    assert_verdict(
        &inc,
        Verdict::GuestIo,
        &[
            "blocked 4.100 s in openat",
            "waiting for disk vdb",
            "jbd2/vdb-8's write to vdb took 4.100 s and completed just before",
        ],
    );
}

/// A slow journal write that completed a second before keepalived ran again is not what
/// it waited for: whose I/O held it stays unknown.
#[test]
fn d_in_openat_after_an_earlier_slow_journal_write_is_inconclusive() {
    let b = blocked_on_disk(Sysno::openat, (JBD2, "jbd2/vdb-8"), s(6.3));
    let (_, inc) = run(vec![b], "eth0@vr1");
    assert_verdict(
        &inc,
        Verdict::Inconclusive,
        &["issued no block request of its own: whose I/O it waited for is not recorded"],
    );
}

#[test]
fn d_in_fsync_without_disk_activity_is_app_blocked_not_io() {
    let mut b = guest(&stalled_adverts());
    b.push(wakeup(s(3.2), 0, VRRP, "keepalived", 0));
    b.push(switch(s(3.2) + 100 * US, 0, IDLE0, 0, KA));
    b.push(enter(s(3.2) + 200 * US, VRRP, nr(Sysno::fsync), 15));
    b.push(switch(s(3.2) + 300 * US, 0, KA, STATE_D, IDLE0));
    b.push(wakeup(s(7.3), 0, VRRP, "keepalived", 0));
    quiet_disk(&mut b);
    let (_, inc) = run(vec![b], "eth0@vr1");
    assert_verdict(
        &inc,
        Verdict::AppBlocked,
        &[
            "in fsync(fd 15) (state D), not in its wait",
            "not waiting for a disk",
        ],
    );
}

#[test]
fn asleep_in_another_syscall_is_app_blocked() {
    let mut b = guest(&stalled_adverts());
    b.push(wakeup(s(3.2), 0, VRRP, "keepalived", 0));
    b.push(switch(s(3.2) + 100 * US, 0, IDLE0, 0, KA));
    b.push(enter(s(3.2) + 200 * US, VRRP, nr(Sysno::flock), 3));
    b.push(switch(s(3.2) + 300 * US, 0, KA, STATE_S, IDLE0));
    b.push(wakeup(s(7.3), 0, VRRP, "keepalived", 0));
    let (_, inc) = run(vec![b], "eth0@vr1");
    assert_verdict(&inc, Verdict::AppBlocked, &["flock(fd 3) (state S)"]);
}

/// Asleep in epoll_wait from 3 s, never woken until 7.5 s.
fn never_woken() -> BundleBuilder {
    guest(&stalled_adverts())
}

#[test]
fn never_woken_on_an_idle_cpu_is_guest_kernel() {
    let (_, inc) = run(vec![never_woken()], "eth0@vr1");
    assert_verdict(
        &inc,
        Verdict::GuestKernel,
        &[
            "slept in epoll_wait for 4.500 s and was never woken",
            "no sched_wakeup of 8557",
            "CPU 0 idle 99.9% during the silence, kernel threads 0.1%",
            "no host bundle given",
        ],
    );
}

#[test]
fn another_vrids_sends_on_the_same_socket_are_not_this_vrids() {
    // One keepalived, two VRIDs sent on one socket (fd 14): VRID 52 every second
    // throughout, VRID 51 1 ms later except from 3 s to 7.5 s. The sends that went on
    // were VRID 52's: VRID 51 was not "sent on time and lost on the way".
    let mut b = guest(&[]);
    let mut wire = Vec::new();
    for k in 0..=9 {
        let t52 = s(f64::from(k));
        for r in support::bundle::send_cycle(VRRP, t52) {
            b.push(r);
        }
        wire.push((t52, MASTER, 150, 52));
        let t51 = t52 + 5 * MS;
        if stalled_adverts().contains(&(t51 - 5 * MS)) || k == 7 {
            let t51 = if k == 7 { s(7.5) } else { t51 };
            for r in support::bundle::send_cycle(VRRP, t51) {
                b.push(r);
            }
            wire.push((t51, MASTER, 150, 51));
        }
    }
    wire.push((s(6.62), BACKUP, 100, 51));
    wire.sort_by_key(|w| w.0);
    b.capture_vrids("eth0@vr1", "eth0", &wire);
    let (analysis, inc) = run(vec![b], "eth0@vr1");
    assert_eq!(inc.vrid, 51);
    assert_ne!(inc.verdict, Verdict::Network, "{inc:#?}");
    assert!(
        evidence(&inc).contains("last sendmsg returned at"),
        "VRID 51's silence is the sender's: {}",
        evidence(&inc)
    );
    assert!(
        analysis.incidents.iter().all(|i| i.vrid == 51),
        "VRID 52 never stopped"
    );
}

#[test]
fn sent_on_time_but_missing_at_the_bridge_is_network_not_a_sender_stall() {
    let mut b = guest(&steady_adverts());
    let bridge: Vec<i64> = [0, 1, 2, 3, 8, 9].iter().map(|&k| s(k as f64)).collect();
    b.capture("br0@sw", "br0", &on_wire(&bridge));
    let (analysis, inc) = run(vec![b], "br0@sw");
    assert_verdict(
        &inc,
        Verdict::Network,
        &[
            "8557 sent on time through the gap",
            "br0@sw silent from",
            "packets: on time at eth0@vr1; silent at br0@sw",
        ],
    );
    assert!(analysis
        .gaps
        .iter()
        .all(|g| g.stream.group.capture == "br0@sw"));
}

#[test]
fn silent_at_every_capture_point_is_the_sender_not_the_network() {
    let mut b = sigstopped();
    b.capture("br0@sw", "br0", &on_wire(&stalled_adverts()));
    let (_, inc) = run(vec![b], "br0@sw");
    assert_verdict(
        &inc,
        Verdict::AppStopped,
        &["packets: br0@sw and eth0@vr1 all silent (not a network loss)"],
    );
}

/// A host bundle, `hv1`, with QEMU pid 7000 (the guest `vm1`, listed as the recorder
/// lists it) whose threads are sampled every 100 ms from -1 s to 11 s: `state(t)` and
/// the run delay growth of each sample.
fn host(
    threads: &[(i32, &str, TaskKind)],
    sample: impl Fn(i64, i32) -> (u64, char),
) -> BundleBuilder {
    let mut h = BundleBuilder::new("hv1", Role::Host);
    h.vms.push(vm(7000, "vm1", "52:54:00:00:00:01"));
    h.push(task_info(7000, 1, "qemu-system-x86"));
    for k in 0..120i64 {
        let t = s(-1.0) + k * 100 * MS;
        for &(tid, comm, kind) in threads {
            let (wait, state) = sample(t, tid);
            h.push(task_sample(t, tid, comm, kind, wait, state));
        }
        h.push(switch(t, 1, (0, "swapper/1"), 0, (0, "swapper/1")));
    }
    h
}

/// A QEMU process as `recorded.vms` lists it, with one tap.
fn vm(pid: i32, name: &str, mac: &str) -> VmInfo {
    VmInfo {
        pid,
        name: Some(name.into()),
        exe: Some("/usr/bin/qemu-system-x86_64".into()),
        taps: vec![VmTap {
            ifname: format!("vnet{pid}"),
            netdev: Some("hostnet0".into()),
            mac: Some(mac.into()),
        }],
        netns: None,
        tsc_offsets: Vec::new(),
    }
}

const VCPU: (i32, &str, TaskKind) = (7001, "CPU 0/KVM", TaskKind::QemuVcpu);
const IOTHREAD: (i32, &str, TaskKind) = (7002, "IO iothread0", TaskKind::QemuIo);

/// The host's capture of the guest's tap vnet7000 (VM 7000's, as `recorded.vms` lists
/// it): the adverts at 0-3 s and 8-9 s, the guest's sends of 4-7 s missing there.
fn late_at_the_tap(h: &mut BundleBuilder) {
    let tap: Vec<i64> = [0, 1, 2, 3, 8, 9]
        .iter()
        .map(|&k| s(k as f64) + 200 * US)
        .collect();
    h.capture("tap:vm1", "vnet7000", &on_wire(&tap));
}

/// The guest's vCPU thread 7001 runs 1 ms every 100 ms on host CPU 0, whenever
/// `runs(t)`.
fn vcpu_runs(h: &mut BundleBuilder, runs: impl Fn(i64) -> bool) {
    for k in 0..120i64 {
        let t = s(-1.0) + k * 100 * MS + 50 * MS;
        if runs(t) {
            h.push(switch(t, 0, (0, "swapper/0"), 0, (7001, "CPU 0/KVM")));
            h.push(switch(t + MS, 0, (7001, "CPU 0/KVM"), 1, (0, "swapper/0")));
        }
    }
}

#[test]
fn sent_on_time_but_late_at_the_host_tap_is_vnic_on_generated_host_fixture() {
    // Generated: the host's tap capture of a real VM needs KVM, which this machine
    // does not have.
    let g = guest(&steady_adverts());
    let mut h = host(&[VCPU], |_, _| (0, 'S'));
    late_at_the_tap(&mut h);
    vcpu_runs(&mut h, |_| true);
    let (_, inc) = run(vec![g, h], "tap:vm1");
    assert_verdict(
        &inc,
        Verdict::Vnic,
        &[
            "late at the host tap tap:vm1",
            "tap:vm1 is the VM's tap vnet7000 on host hv1",
            "QEMU pid 7000 on hv1 runs the guest named vm1",
        ],
    );
}

#[test]
fn on_time_by_a_guest_whose_vcpus_never_ran_is_vm_paused_on_generated_host_fixture() {
    // Generated, from what a QMP stop does to a QEMU guest (the qemu lab records it for
    // real): the guest's clock stops with it, so in its own recording keepalived sent
    // every second; the host saw its tap silent and none of its vCPU threads run, all
    // of them asleep in S (not stopped: a paused VM's threads are not in T) from 3.6 s
    // to 7.6 s; before and after, it ran as a guest's vCPU does.
    let g = guest(&steady_adverts());
    let mut h = host(&[VCPU], |_, _| (0, 'S'));
    late_at_the_tap(&mut h);
    vcpu_runs(&mut h, |t| t < s(3.6) || t > s(7.6));
    let (_, inc) = run(vec![g, h], "tap:vm1");
    assert_verdict(
        &inc,
        Verdict::VmPaused,
        &[
            "the VM did not run on hv1 while its tap tap:vm1 was silent",
            "no vCPU thread of QEMU pid 7000 ran on hv1 for 4.100 s",
            "CPU 0/KVM (7001) never switched in",
            "the guest counted its sends on time",
        ],
    );
}

#[test]
fn a_tap_of_another_vm_is_not_the_guests_vnic_on_generated_host_fixture() {
    // Generated. The silent host interface is vm2's tap: the guest's adverts reach it
    // only across the bridge, so a loss there is on the way, not in the guest's NIC.
    let g = guest(&steady_adverts());
    let mut h = host(&[VCPU], |_, _| (0, 'S'));
    h.vms.push(vm(7100, "vm2", "52:54:00:00:00:02"));
    let tap: Vec<i64> = [0, 1, 2, 3, 8, 9]
        .iter()
        .map(|&k| s(k as f64) + 200 * US)
        .collect();
    h.capture("tap:vm2", "vnet7100", &on_wire(&tap));
    let (_, inc) = run(vec![g, h], "tap:vm2");
    assert_verdict(
        &inc,
        Verdict::Network,
        &["lost or delayed on the way to tap:vm2"],
    );
}

/// The backup's bundle, `vr2`, capturing at `eth0@vr2` the master's adverts at `seen`;
/// its CPU switches every 100 ms except from `stall.0` to `stall.1`.
fn peer(seen: &[i64], stall: (f64, f64)) -> BundleBuilder {
    let mut p = BundleBuilder::new("vr2", Role::Peer);
    for k in 0..120i64 {
        let t = s(-1.0) + k * 100 * MS;
        if t < s(stall.0) || t > s(stall.1) {
            p.push(switch(t, 0, (0, "swapper/0"), 0, (0, "swapper/0")));
        }
    }
    p.capture("eth0@vr2", "eth0", &on_wire(seen));
    p
}

#[test]
fn on_time_from_the_sender_but_late_at_a_stalled_receiver_is_receiver() {
    let seen: Vec<i64> = [0, 1, 2, 3, 8, 9]
        .iter()
        .map(|&k| s(k as f64) + 300 * US)
        .collect();
    let (_, inc) = run(
        vec![guest(&steady_adverts()), peer(&seen, (3.3, 7.9))],
        "eth0@vr2",
    );
    assert_verdict(
        &inc,
        Verdict::Receiver,
        &[
            "the receiving machine vr2 itself stalled",
            "vr2 recorded no event at all",
        ],
    );
}

#[test]
fn on_time_from_the_sender_and_late_at_a_running_receiver_is_network() {
    let seen: Vec<i64> = [0, 1, 2, 3, 8, 9]
        .iter()
        .map(|&k| s(k as f64) + 300 * US)
        .collect();
    let (_, inc) = run(
        vec![guest(&steady_adverts()), peer(&seen, (20.0, 21.0))],
        "eth0@vr2",
    );
    assert_verdict(&inc, Verdict::Network, &["eth0@vr2 silent from"]);
}

#[test]
fn vcpu_run_delay_through_the_silence_is_vcpu_preempted_on_generated_host_fixture() {
    // Generated: real vCPU preemption needs KVM; the host's schedstat samples of the
    // vCPU thread are written as the sampler would record them.
    let h = host(&[VCPU], |t, _| {
        let delayed = (t.clamp(s(3.0), s(7.5)) - s(3.0)) as u64;
        (delayed, 'R')
    });
    let (_, inc) = run(vec![never_woken(), h], "eth0@vr1");
    assert_verdict(
        &inc,
        Verdict::VcpuPreempted,
        &[
            "vCPU thread CPU 0/KVM on hv1 was runnable but not running",
            "vCPU thread CPU 0/KVM (7001) of QEMU pid 7000: run delay +",
            "lined up by wall clock only",
        ],
    );
    assert_eq!(inc.context.as_ref().unwrap().vcpus.len(), 1);
}

#[test]
fn a_stopped_qemu_is_vm_paused_on_generated_host_fixture() {
    // Generated: pausing a KVM guest needs KVM.
    let h = host(&[VCPU, IOTHREAD], |t, _| {
        (0, if t > s(3.1) && t < s(7.4) { 'T' } else { 'S' })
    });
    let (_, inc) = run(vec![never_woken(), h], "eth0@vr1");
    assert_verdict(
        &inc,
        Verdict::VmPaused,
        &[
            "the VM was paused: QEMU pid 7000 on hv1 was stopped",
            "in state T",
        ],
    );
}

#[test]
fn qemu_in_d_with_host_disk_in_flight_is_host_io_on_generated_host_fixture() {
    // Generated: a guest whose disk is a file on a slow host disk needs a KVM guest.
    let h = qemu_io_blocked_on_busy_sda();
    let (_, inc) = run(vec![never_woken(), h], "eth0@vr1");
    assert_verdict(
        &inc,
        Verdict::HostIo,
        &[
            "QEMU on hv1 was blocked on the host disk sda",
            "IO iothread0 (7002)",
            "in-flight up to 2",
            "no request of QEMU's own recorded in flight: sda is the host disk busiest then",
        ],
    );
}

/// The seed's case: the guest's vCPU left guest mode for an MMIO access (a virtio
/// notify) at 3.1 s and QEMU, blocked on the host disk, did not let it back in until
/// 7.4 s. Generated: `kvm_exit`/`kvm_entry` fire only on a KVM host; before 3.1 s the
/// vCPU enters the guest every 10 ms and leaves it for HLT, an idle guest.
#[test]
fn a_vcpu_kept_out_of_guest_mode_behind_qemu_io_is_named_on_generated_kvm_fixture() {
    let mut h = qemu_io_blocked_on_busy_sda();
    let kvm_exit = |t: i64, reason: u32| Record::KvmExit {
        t: mono(t),
        cpu: 0,
        tid: VCPU.0,
        vcpu: 0,
        reason,
        isa: 1,
    };
    for k in 0..310i64 {
        let t = s(0.0) + k * 10 * MS;
        h.push(Record::KvmEntry {
            t: mono(t),
            cpu: 0,
            tid: VCPU.0,
            vcpu: 0,
        });
        h.push(kvm_exit(t + MS, 12));
    }
    h.push(Record::KvmEntry {
        t: mono(s(3.1) - MS),
        cpu: 0,
        tid: VCPU.0,
        vcpu: 0,
    });
    h.push(kvm_exit(s(3.1), 49));
    h.push(Record::KvmEntry {
        t: mono(s(7.4)),
        cpu: 0,
        tid: VCPU.0,
        vcpu: 0,
    });
    let (_, inc) = run(vec![never_woken(), h], "eth0@vr1");
    assert_verdict(
        &inc,
        Verdict::HostIo,
        &[
            "QEMU on hv1 was blocked on the host disk sda",
            "no vCPU of QEMU pid 7000 on hv1 entered guest mode for 4.300 s",
            "vCPU 0 (thread 7001) had left it at",
            "for MMIO (emulated by QEMU)",
        ],
    );
}

/// What `qemu-vm-drain` recorded for real, generated: QEMU's I/O worker waits on its
/// own write to loop0 while the machine's other disk, sda, has more requests in flight
/// (other programs' I/O). The disk QEMU waited on is named, not the busiest one.
#[test]
fn host_io_names_the_disk_of_qemus_own_request_not_the_busiest_on_generated_host_fixture() {
    let mut h = qemu_io_blocked_on_busy_sda();
    for k in 0..120i64 {
        let t = s(-1.0) + k * 100 * MS;
        let flight = u64::from(t > s(3.1) && t < s(7.4));
        h.push(disk(t, "loop0", 7, 10, 40, flight, 1000 + k as u64 * 100));
    }
    h.push(block_issue(s(3.1), 7, 4242, IOTHREAD.0, "worker"));
    h.push(block_complete(s(7.4), 7, 4242));
    let (_, inc) = run(vec![never_woken(), h], "eth0@vr1");
    assert_verdict(
        &inc,
        Verdict::HostIo,
        &[
            "QEMU on hv1 was blocked on the host disk loop0",
            "QEMU thread IO iothread0 (7002) issued a request to loop0",
            "that was in flight 4.300 s",
        ],
    );
}

/// The guest of `qemu-vm-drain`: nothing recorded at all from 3.3 s to 7.2 s, then
/// keepalived woken once, late, and asleep again before its next advert at 7.5 s.
fn blacked_out_guest() -> BundleBuilder {
    let mut g = never_woken();
    g.records
        .retain(|r| !(mono(s(3.3))..mono(s(7.2))).contains(&r.time()));
    g.push(wakeup(s(7.25), 0, VRRP, "keepalived", 0));
    g.push(switch(s(7.25) + 50 * US, 0, IDLE0, 0, KA));
    g.push(switch(s(7.25) + 90 * US, 0, KA, STATE_S, IDLE0));
    g
}

/// A host whose QEMU I/O thread (7002) is in D from 3.1 s to 7.4 s while sda has two
/// requests in flight.
fn qemu_io_blocked_on_busy_sda() -> BundleBuilder {
    let mut h = host(&[VCPU, IOTHREAD], |t, tid| {
        let blocked = tid == 7002 && t > s(3.1) && t < s(7.4);
        (0, if blocked { 'D' } else { 'S' })
    });
    busy_host_disk(&mut h);
    h
}

/// What `qemu-vm-drain` recorded for real, generated: the guest records nothing at all
/// from 3.3 s to 7.2 s (QEMU's main loop held, the VM not run), then keepalived wakes
/// once, late, and sleeps again before its next advert. That wakeup after the blackout
/// says nothing of the silence: the host, where QEMU waited on its disk, is asked.
#[test]
fn a_guest_that_recorded_nothing_behind_qemu_io_is_host_io_on_generated_host_fixture() {
    let g = blacked_out_guest();
    let h = qemu_io_blocked_on_busy_sda();
    let (_, inc) = run(vec![g, h], "eth0@vr1");
    assert_verdict(
        &inc,
        Verdict::HostIo,
        &[
            "QEMU on hv1 was blocked on the host disk sda",
            "vm1 recorded no event at all from",
            "the guest did not run",
        ],
    );
}

/// The same guest alone: its one late wakeup after the blackout is not "keepalived's
/// own logic": it could not be woken while its kernel did not run.
#[test]
fn a_guest_that_recorded_nothing_alone_is_never_woken_not_its_own_logic() {
    let g = blacked_out_guest();
    let (_, inc) = run(vec![g], "eth0@vr1");
    assert_verdict(
        &inc,
        Verdict::GuestKernel,
        &[
            "was never woken",
            "vm1 recorded no event at all from",
            "no host bundle given",
        ],
    );
}

/// Host disk sda with two requests in flight from 3.1 s to 7.4 s.
fn busy_host_disk(h: &mut BundleBuilder) {
    for k in 0..120i64 {
        let t = s(-1.0) + k * 100 * MS;
        let flight = u64::from(t > s(3.1) && t < s(7.4)) * 2;
        h.push(disk(t, "sda", 0, 100, 400, flight, 1000 + k as u64 * 100));
    }
}

#[test]
fn guest_io_behind_a_qemu_thread_blocked_on_the_host_disk_is_host_io_on_generated_host_fixture() {
    // Generated (no KVM here). In the guest, keepalived waited for its own disk vdb;
    // on the host, the guest's QEMU I/O thread waited for sda: the time was lost on the
    // host, and the guest's view stays in the evidence.
    let h = qemu_io_blocked_on_busy_sda();
    let (_, inc) = run(vec![blocked_on_its_disk(), h], "eth0@vr1");
    assert_verdict(
        &inc,
        Verdict::HostIo,
        &[
            "QEMU on hv1 was blocked on the host disk sda",
            "IO iothread0 (7002) of pid 7000 in state D",
            "in the guest: keepalived 8557 was blocked 4.100 s in write(fd 15) waiting for disk vdb",
            "QEMU pid 7000 on hv1 runs the guest named vm1",
        ],
    );
}

#[test]
fn guest_io_with_a_quiet_host_stays_guest_io_on_generated_host_fixture() {
    // Generated. The host's disks were idle and no thread of the guest's QEMU waited:
    // the guest's own disk was slow.
    let h = host(&[VCPU, IOTHREAD], |_, _| (0, 'S'));
    let (_, inc) = run(vec![blocked_on_its_disk(), h], "eth0@vr1");
    assert_verdict(
        &inc,
        Verdict::GuestIo,
        &["host hv1: no thread of QEMU pid 7000 in D with a host disk busy"],
    );
}

#[test]
fn a_quiet_host_rules_itself_out_and_leaves_guest_kernel_on_generated_host_fixture() {
    let h = host(&[VCPU], |_, _| (0, 'S'));
    let (_, inc) = run(vec![never_woken(), h], "eth0@vr1");
    assert_verdict(
        &inc,
        Verdict::GuestKernel,
        &["host hv1: vCPU run delay of QEMU pid 7000 +0 µs during the silence, none of its threads stopped or in D (QEMU pid 7000 on hv1 runs the guest named vm1"],
    );
}

/// A second VM, `vm2` (QEMU pid 7100), on the host: stopped through the guest's
/// silence, its vCPU delayed all along.
fn another_stopped_vm(h: &mut BundleBuilder) {
    h.vms.push(vm(7100, "vm2", "52:54:00:00:00:02"));
    for k in 0..120i64 {
        let t = s(-1.0) + k * 100 * MS;
        let stopped = t > s(3.1) && t < s(7.4);
        let delay = (t.clamp(s(3.0), s(7.5)) - s(3.0)) as u64;
        let state = if stopped { 'T' } else { 'R' };
        h.push(task_sample(
            t,
            7101,
            "CPU 0/KVM",
            TaskKind::QemuVcpu,
            delay,
            state,
        ));
    }
}

#[test]
fn another_vms_stall_is_not_blamed_for_this_guests_silence_on_generated_host_fixture() {
    // Generated (no KVM here). The guest's own VM (vm1, tied by its name) was quiet;
    // vm2 on the same host was stopped and its vCPU delayed: not this guest's hop.
    let mut h = host(&[VCPU], |_, _| (0, 'S'));
    another_stopped_vm(&mut h);
    let (_, inc) = run(vec![never_woken(), h], "eth0@vr1");
    assert_verdict(
        &inc,
        Verdict::GuestKernel,
        &["vCPU run delay of QEMU pid 7000 +0 µs"],
    );
    let vcpus = &inc.context.as_ref().unwrap().vcpus;
    assert!(vcpus.iter().all(|l| l.tgid == 7000), "{vcpus:#?}");
}

#[test]
fn a_host_without_the_guests_vm_is_not_examined_on_generated_host_fixture() {
    // Generated. Neither VM has the guest's MAC or its name: whatever they did, their
    // threads say nothing about this guest.
    let mut h = BundleBuilder::new("hv1", Role::Host);
    another_stopped_vm(&mut h);
    let (_, inc) = run(vec![never_woken(), h], "eth0@vr1");
    assert_ne!(inc.verdict, Verdict::VmPaused, "{inc:#?}");
    assert!(
        evidence(&inc).contains(
            "host hv1: none of its 1 QEMU processes has the MAC of a capture interface of guest vm1 or its name"
        ),
        "{}",
        evidence(&inc)
    );
}

#[test]
fn the_guest_is_tied_to_its_vm_by_the_mac_of_its_nic_on_generated_host_fixture() {
    // Generated. The VM's -name is not the guest's hostname, but the guest's eth0 has
    // the MAC that QEMU gives it on its tap: that VM, stopped, is the guest's.
    let mut g = never_woken();
    g.capture_macs
        .push(("eth0@vr1".into(), "52:54:00:00:00:02".into()));
    let mut h = BundleBuilder::new("hv1", Role::Host);
    another_stopped_vm(&mut h);
    let (_, inc) = run(vec![g, h], "eth0@vr1");
    assert_verdict(
        &inc,
        Verdict::VmPaused,
        &[
            "QEMU pid 7100 on hv1 was stopped",
            "the MAC 52:54:00:00:00:02 of eth0@vr1 is the guest's on tap vnet7100 of QEMU pid 7100 on hv1",
        ],
    );
}

/// Two VMs on the host with the guest's MAC, as when two labs (or two clones on
/// separate networks) run on one host: vm 7100 stopped in namespace `other`, vm 7200
/// quiet in the initial one. With `tap` the host captured vm 7200's tap.
fn twin_vms(tap: bool) -> (BundleBuilder, BundleBuilder) {
    let mut g = never_woken();
    g.capture_macs
        .push(("eth0@vr1".into(), "52:54:00:00:00:02".into()));
    let mut h = BundleBuilder::new("hv1", Role::Host);
    another_stopped_vm(&mut h);
    if let Some(stopped) = h.vms.last_mut() {
        stopped.netns = Some("other".into());
    }
    h.vms.push(vm(7200, "vm2", "52:54:00:00:00:02"));
    if tap {
        h.capture("vnet7200", "vnet7200", &on_wire(&stalled_adverts()));
    }
    (g, h)
}

#[test]
fn of_two_vms_with_the_guests_mac_the_one_whose_tap_was_captured_is_its_on_generated_host_fixture()
{
    let (g, h) = twin_vms(true);
    let (_, inc) = run(vec![g, h], "eth0@vr1");
    let all = format!("{}\n{}", inc.summary, inc.evidence.join("\n"));
    assert_ne!(inc.verdict, Verdict::VmPaused, "{all}");
    // The quiet VM's threads were the ones examined.
    assert!(
        all.contains("host hv1: no vCPU thread samples of QEMU pid 7200"),
        "{all}"
    );
    assert!(!all.contains("7100 on hv1 was stopped"), "{all}");
}

#[test]
fn two_vms_with_the_guests_mac_and_no_captured_tap_tie_none_on_generated_host_fixture() {
    let (g, h) = twin_vms(false);
    let (_, inc) = run(vec![g, h], "eth0@vr1");
    let all = format!("{}\n{}", inc.summary, inc.evidence.join("\n"));
    assert_ne!(inc.verdict, Verdict::VmPaused, "{all}");
    assert!(
        all.contains("QEMU pids 7100, 7200 all match the MAC 52:54:00:00:00:02 of guest vm1"),
        "{all}"
    );
    assert!(all.contains("which one runs it is not known"), "{all}");
}

/// Steal ticks of one CPU (or the machine) every 100 ms: all its time from 3 s to 7.5 s.
fn steal_lines(g: &mut BundleBuilder, cpu: Option<u32>) {
    for k in 0..120i64 {
        let t = s(-1.0) + k * 100 * MS;
        let stolen = ((t.clamp(s(3.0), s(7.5)) - s(3.0)) / (NS / 100)) as u64;
        g.push(cpu_line(t, cpu, 10, stolen));
    }
}

#[test]
fn steal_of_the_senders_cpu_is_vcpu_preempted_on_generated_fixture() {
    // Generated: steal needs a hypervisor that reports it.
    let mut g = never_woken();
    steal_lines(&mut g, Some(0));
    let (_, inc) = run(vec![g], "eth0@vr1");
    assert_verdict(
        &inc,
        Verdict::VcpuPreempted,
        &["did not get its vCPU 0", "steal 100.0% of CPU 0, where"],
    );
}

#[test]
fn steal_of_another_cpu_is_not_the_senders_on_generated_fixture() {
    // Generated. The machine-wide line shows 50% steal, all of it CPU 1's; keepalived
    // slept on CPU 0, which lost nothing: no vcpu-preempted.
    let mut g = never_woken();
    steal_lines(&mut g, Some(1));
    steal_lines(&mut g, None);
    let (_, inc) = run(vec![g], "eth0@vr1");
    assert_ne!(inc.verdict, Verdict::VcpuPreempted, "{inc:#?}");
}

#[test]
fn losses_during_the_window_make_it_inconclusive_and_say_what_events_say() {
    let mut b = sigstopped();
    let lost = Losses {
        perf_lost: 12,
        ..Losses::default()
    };
    b.push(losses(s(2.0), Losses::default()));
    b.push(losses(s(5.0), lost.clone()));
    b.losses = lost;
    let (_, inc) = run(vec![b], "eth0@vr1");
    assert_verdict(
        &inc,
        Verdict::Inconclusive,
        &[
            "perf_lost +12 on vm1",
            "without those losses the recorded events would say app-stopped",
        ],
    );
}

#[test]
fn a_bundles_losses_missing_tracepoints_and_recorder_warnings_are_in_the_report() {
    // What the recorder counted, could not record, or got wrong is printed with its
    // bundle, whether an incident's window met it or not.
    let mut b = sigstopped();
    b.losses = Losses {
        pcap_dropped: 7,
        ..Losses::default()
    };
    b.unsupported = vec!["block:block_rq_issue: missing".into()];
    b.warnings = vec!["could not filter syscalls by `tid == 1` (EINVAL)".into()];
    let a = analyze_bundles(vec![b]);
    let text = vmlat_analyzer::report::text::render(&a);
    for line in [
        "lost: pcap_dropped 7",
        "not recorded: block:block_rq_issue: missing",
        "recorder warning: could not filter syscalls by `tid == 1` (EINVAL)",
    ] {
        assert!(text.contains(line), "no {line:?} in:\n{text}");
    }
    let json = serde_json::to_value(&a.bundles[0]).unwrap();
    assert_eq!(json["not_recorded"][0], "block:block_rq_issue: missing");
    assert_eq!(
        json["warnings"][0],
        "could not filter syscalls by `tid == 1` (EINVAL)"
    );
}

#[test]
fn losses_before_the_window_do_not_matter() {
    let mut b = sigstopped();
    let lost = Losses {
        perf_lost: 12,
        sampler_overruns: 3,
        ..Losses::default()
    };
    b.push(losses(s(0.5), lost.clone()));
    b.push(losses(
        s(5.0),
        Losses {
            sampler_overruns: 5,
            ..lost.clone()
        },
    ));
    b.losses = lost;
    let (_, inc) = run(vec![b], "eth0@vr1");
    assert_verdict(
        &inc,
        Verdict::AppStopped,
        &["sampler_overruns +2 on vm1", "(nothing missing)"],
    );
}

#[test]
fn packets_alone_are_inconclusive_with_no_scheduler_data() {
    let dir = tempfile::tempdir().unwrap();
    let b = guest(&stalled_adverts());
    b.write(&dir.path().join("b"));
    let pcap = dir.path().join("b/pcap/eth0@vr1.pcap");
    let a = analyze(&[pcap], &AnalyzeOptions::default()).unwrap();
    let inc = &a.incidents[0];
    assert_eq!(inc.verdict, Verdict::Inconclusive);
    assert_eq!(
        inc.evidence,
        vec!["no scheduler data: only packets were given".to_string()]
    );
    assert!(inc.context.is_none());
}

#[test]
fn a_bundle_without_the_scheduler_is_inconclusive_with_no_scheduler_data() {
    let mut b = sigstopped();
    b.tracepoints = vec!["raw_syscalls:sys_enter".into()];
    let (_, inc) = run(vec![b], "eth0@vr1");
    assert_verdict(
        &inc,
        Verdict::Inconclusive,
        &[
            "no scheduler data",
            "vm1 (",
            "recorded no sched:sched_switch",
        ],
    );
}

#[test]
fn no_keepalived_in_the_recording_is_inconclusive_sender_not_identified() {
    let mut b = BundleBuilder::new("vm1", Role::Guest);
    for k in 0..100i64 {
        b.push(switch(
            s(-1.0) + k * 100 * MS,
            0,
            IDLE0,
            0,
            (40, "kworker/0:1"),
        ));
    }
    b.capture("eth0@vr1", "eth0", &on_wire(&stalled_adverts()));
    let (_, inc) = run(vec![b], "eth0@vr1");
    assert_verdict(
        &inc,
        Verdict::Inconclusive,
        &["sender process not identified"],
    );
}

#[test]
fn never_woken_without_syscalls_is_inconclusive_not_guest_kernel() {
    // Recorded without --comm: asleep, but in its wait with its timer due? Unknown.
    let (_, inc) = run(vec![never_woken().without_syscalls()], "eth0@vr1");
    assert_verdict(
        &inc,
        Verdict::Inconclusive,
        &[
            "syscalls were not recorded",
            "record with --comm 'keepalived*'",
        ],
    );
}

#[test]
fn d_without_syscalls_is_inconclusive_not_frozen() {
    let (_, inc) = run(vec![d_in_its_wait().without_syscalls()], "eth0@vr1");
    assert_verdict(
        &inc,
        Verdict::Inconclusive,
        &["in state D", "no freezer state"],
    );
}

#[test]
fn never_woken_while_a_user_task_held_its_cpu_is_not_guest_kernel() {
    // keepalived sleeps, not runnable, while stress-ng runs on its CPU: not the idle,
    // late-timer picture of a guest kernel stall, and nothing says why it was not
    // woken. (The kworker blips go to CPU 1, out of stress-ng's way.)
    let mut b = guest_with_kworker_on(&stalled_adverts(), 1);
    b.push(switch(s(3.3), 0, IDLE0, 0, (4242, "stress-ng")));
    b.push(switch(s(7.3), 0, (4242, "stress-ng"), STATE_S, IDLE0));
    let (_, inc) = run(vec![b], "eth0@vr1");
    assert_verdict(
        &inc,
        Verdict::Inconclusive,
        &[
            "never woken while other tasks held its CPU",
            "not the idle, late-timer pattern",
        ],
    );
}

#[test]
fn an_aarch64_bundle_is_read_with_aarch64_syscall_numbers() {
    // aarch64's sendmsg is 211 (x86_64's get_thread_area) and it waits in epoll_pwait
    // (22): read with x86_64's table, no send would be found.
    let (_, inc) = run(vec![sigstopped().recorded_on_aarch64()], "eth0@vr1");
    assert_verdict(
        &inc,
        Verdict::AppStopped,
        &[
            "its sendmsg/sendto began",
            "last sendmsg returned at",
            "SIGSTOP to 8557",
        ],
    );
}

#[test]
fn losses_make_only_the_incident_they_overlap_inconclusive() {
    // Two SIGSTOPs, 3.2-7.3 s and 12.2-16.3 s, windows a second apart; perf lost
    // records between 14 and 15 s, in the second one's window only.
    let sends: Vec<i64> = [
        0.0, 1.0, 2.0, 3.0, 7.5, 8.5, 9.5, 10.5, 11.5, 16.5, 17.5, 18.5,
    ]
    .iter()
    .map(|&x| s(x))
    .collect();
    let mut b = guest(&sends);
    for r in sigstop(VRRP, 9001, s(3.2), s(7.3)) {
        b.push(r);
    }
    for r in sigstop(VRRP, 9001, s(12.2), s(16.3)) {
        b.push(r);
    }
    let lost = Losses {
        perf_lost: 7,
        ..Losses::default()
    };
    for k in 0..20 {
        let l = if k >= 15 {
            lost.clone()
        } else {
            Losses::default()
        };
        b.push(losses(s(f64::from(k)), l));
    }
    b.losses = lost;
    let a = analyze_bundles(vec![b]);
    let verdicts: Vec<Verdict> = a.incidents.iter().map(|i| i.verdict).collect();
    assert_eq!(
        verdicts,
        [Verdict::AppStopped, Verdict::Inconclusive],
        "{:#?}",
        a.incidents
    );
    assert!(evidence(&a.incidents[1]).contains("perf_lost +7 on vm1"));
}

#[test]
fn syscalls_of_an_unknown_architecture_make_no_verdict() {
    // Generated: a bundle from an architecture whose syscall numbers vmlat has no
    // table for. Its wait cannot be told from a write, so no state can be trusted.
    let mut b = never_woken();
    b.arch = "riscv64".into();
    let (_, inc) = run(vec![b], "eth0@vr1");
    assert_verdict(
        &inc,
        Verdict::Inconclusive,
        &["recorded on riscv64", "unknown to this vmlat"],
    );
}

#[test]
fn a_silence_of_minutes_is_judged_from_its_two_ends_without_keeping_the_middle() {
    // Generated: keepalived stopped for 300 s, while a kworker runs every 100 ms on its
    // CPU. The middle of the silence is not kept (a silence of hours must not hold
    // hours of records); the verdict comes from its two ends and says so.
    let sends: Vec<i64> = [0.0, 1.0, 2.0, 3.0, 303.5, 304.5, 305.5]
        .iter()
        .map(|&x| s(x))
        .collect();
    let mut b = guest(&sends);
    for r in sigstop(VRRP, 9001, s(3.2), s(303.3)) {
        b.push(r);
    }
    // The backup took over at 6.62 s and advertised every second until preempted.
    let mut wire: Vec<(i64, Ipv4Addr, u8)> = sends.iter().map(|&t| (t, MASTER, 150)).collect();
    let mut t = s(6.62);
    while t < s(303.5) {
        wire.push((t, BACKUP, 100));
        t += NS;
    }
    wire.sort();
    b.capture("eth0@vr1", "eth0", &wire);
    let mut t = s(11.0);
    while t < s(306.0) {
        b.push(switch(t, 0, IDLE0, 0, (40, "kworker/0:1")));
        b.push(switch(t + 500 * US, 0, (40, "kworker/0:1"), 0x80, IDLE0));
        t += 100 * MS;
    }
    let a = analyze_bundles(vec![b]);
    assert_eq!(a.incidents.len(), 1, "{:#?}", a.incidents);
    let inc = &a.incidents[0];
    assert_verdict(
        inc,
        Verdict::AppStopped,
        &[
            "SIGSTOP to 8557 from pid 9001",
            "were not examined: a silence this long is examined in its first and last 30 s",
        ],
    );
    let bundle = &a.bundles[0];
    assert!(
        bundle.kept * 3 < bundle.events,
        "kept {} of {} records",
        bundle.kept,
        bundle.events
    );
}

/// Generated: keepalived stopped for 4.1 s every `period` s, `storm` times, while a
/// kworker runs every 10 ms on its CPU; every incident must be app-stopped.
fn flap_storm(storm: usize, period: f64) -> vmlat_analyzer::BundleSummary {
    let mut sends = Vec::new();
    let mut stops = Vec::new();
    for k in 0..storm {
        let base = period * k as f64;
        sends.extend((0..4).map(|x| s(base + f64::from(x))));
        let mut at = base + 7.5;
        while at < base + period {
            sends.push(s(at));
            at += 1.0;
        }
        stops.push((s(base + 3.2), s(base + 7.3)));
    }
    let mut b = guest(&sends);
    for (from, to) in stops {
        for r in sigstop(VRRP, 9001, from, to) {
            b.push(r);
        }
    }
    let wire: Vec<(i64, Ipv4Addr, u8)> = sends.iter().map(|&t| (t, MASTER, 150)).collect();
    b.capture("eth0@vr1", "eth0", &wire);
    let mut t = s(11.0);
    while t < s(period * storm as f64) {
        b.push(switch(t, 0, IDLE0, 0, (40, "kworker/0:1")));
        b.push(switch(t + 500 * US, 0, (40, "kworker/0:1"), 0x80, IDLE0));
        t += 10 * MS;
    }
    let a = analyze_bundles(vec![b]);
    assert_eq!(a.incidents.len(), storm, "{:#?}", a.incidents);
    for inc in &a.incidents {
        assert_verdict(inc, Verdict::AppStopped, &["SIGSTOP to 8557 from pid 9001"]);
    }
    let bundle = a.bundles.into_iter().next().expect("one bundle");
    assert!(bundle.kept <= bundle.events, "{bundle:#?}");
    bundle
}

#[test]
fn a_flap_storm_is_judged_one_incident_at_a_time_on_generated_bundle() {
    // Each incident is judged as soon as its window is read, and its records are
    // dropped before the next window is read: one window is 7 s of the 360 s
    // recording; all of them together, a quarter.
    const STORM: usize = 12;
    let bundle = flap_storm(STORM, 30.0);
    assert!(
        bundle.kept_peak * STORM as u64 <= bundle.events,
        "held {} records at once of {} read ({} kept): more than one window",
        bundle.kept_peak,
        bundle.events,
        bundle.kept
    );
}

#[test]
fn flaps_whose_windows_chain_hold_a_few_windows_at_a_time_on_generated_bundle() {
    // A stop every 8 s: each window (a second before the 4.1 s silence to an interval
    // after) is a second or two from the next, so that they chain over the whole
    // recording. The records a later incident cannot read (before its window and the
    // 10 s its rules look back) are dropped all the same: what is held at once stays
    // a fraction of what was kept, however long the storm.
    const STORM: usize = 24;
    let bundle = flap_storm(STORM, 8.0);
    assert!(
        bundle.kept_peak * 4 <= bundle.kept,
        "held {} records at once of {} kept ({} read): the chained windows were held whole",
        bundle.kept_peak,
        bundle.kept,
        bundle.events
    );
}

#[test]
fn the_keepalived_journal_a_bundle_carries_is_read_when_no_log_is_given_on_generated_bundle() {
    // Generated: the journal copy `vmlat record` writes where the machine has a systemd
    // journal (tests/record_live.rs records a real one), next to the SIGSTOP case.
    let dir = tempfile::tempdir().unwrap();
    let bundle = dir.path().join("b");
    sigstopped().write(&bundle);
    let line = |t: i64, msg: &str| {
        format!(
            r#"{{"__REALTIME_TIMESTAMP":"{}","_PID":"8557","SYSLOG_IDENTIFIER":"Keepalived_vrrp","MESSAGE":"{msg}"}}"#,
            t / 1_000
        )
    };
    let journal = [
        line(
            s(7.3) + 2 * MS,
            "A thread timer expired 4.100000 seconds ago",
        ),
        line(s(900.0), "(VI_1) Entering BACKUP STATE"),
    ];
    std::fs::write(
        bundle.join(vmlat_bundle::KEEPALIVED_JOURNAL_FILE),
        journal.join("\n") + "\n",
    )
    .unwrap();
    let a = analyze(std::slice::from_ref(&bundle), &AnalyzeOptions::default()).unwrap();
    assert_eq!(a.keepalived_logs.len(), 1, "{:#?}", a.keepalived_logs);
    assert_eq!(a.keepalived_logs[0].keepalived, 2);
    assert_eq!(a.keepalived_logs[0].attached, 1);
    let texts: Vec<&str> = a.incidents[0]
        .keepalived_log
        .iter()
        .map(|l| l.text.as_str())
        .collect();
    assert_eq!(texts.len(), 1, "{texts:?}");
    assert!(texts[0].contains("A thread timer expired 4.100000 seconds ago"));
    // A log given on the command line replaces the bundle's copy.
    let given = dir.path().join("given.log");
    std::fs::write(&given, "").unwrap();
    let opts = AnalyzeOptions {
        keepalived_logs: vec![given],
        ..AnalyzeOptions::default()
    };
    let a = analyze(&[bundle], &opts).unwrap();
    assert!(a.incidents[0].keepalived_log.is_empty());
    assert!(a.keepalived_logs[0].path.ends_with("given.log"));
}

/// Four processes of bash 9100 exit during the silence (5 s): `backup-job` calls
/// `exit_group(3)` from a second thread, `cleanup` `exit_group(-1)`, `hung-probe` is
/// killed by SIGKILL from bash 9001, and `crasher` dies without a recorded signal or
/// `exit_group`. An earlier process 7001 exited at 2.5 s (in the window) with another
/// code: not the later one's.
fn exits_during_the_silence() -> BundleBuilder {
    let mut b = sigstopped();
    for (tid, comm) in [
        (7001, "backup-job"),
        (7002, "cleanup"),
        (7003, "hung-probe"),
        (7004, "crasher"),
    ] {
        b.push(task_info(tid, 9100, comm));
    }
    b.push(exit_group(s(2.5), 7001, 7001, 9));
    b.push(process_exit(s(2.5) + 100 * US, 7001, 7001, "backup-job"));
    b.push(exit_group(s(5.0), 7010, 7001, 3));
    b.push(process_exit(s(5.0) + 200 * US, 7010, 7001, "backup-job"));
    b.push(process_exit(s(5.0) + 300 * US, 7001, 7001, "backup-job"));
    b.push(exit_group(s(5.1), 7002, 7002, -1));
    b.push(process_exit(s(5.1) + 100 * US, 7002, 7002, "cleanup"));
    b.push(Record::Signal {
        t: mono(s(5.2)),
        cpu: 0,
        sender_tid: 9001,
        sender_tgid: 9001,
        sig: 9,
        code: 0,
        target_tid: 7003,
        target_comm: "hung-probe".into(),
        group: true,
        result: 0,
    });
    b.push(process_exit(s(5.2) + 100 * US, 7003, 7003, "hung-probe"));
    b.push(process_exit(s(5.3), 7004, 7004, "crasher"));
    b
}

fn exit_suspects(inc: &Incident) -> Vec<String> {
    inc.suspects
        .iter()
        .filter(|x| x.kind == vmlat_analyzer::SuspectKind::Exit)
        .map(|x| x.text.clone())
        .collect()
}

#[test]
fn an_exit_shows_its_exit_group_code_on_generated_bundle() {
    let (_, inc) = run(vec![exits_during_the_silence()], "eth0@vr1");
    let exits = exit_suspects(&inc);
    let find = |who: &str| {
        exits
            .iter()
            .find(|t| t.starts_with(who))
            .unwrap_or_else(|| panic!("no exit of {who} in {exits:#?}"))
            .clone()
    };
    assert_eq!(exits.len(), 5, "{exits:#?}");
    assert!(
        find("backup-job 7001 exited with code 9 at").contains(".500100000"),
        "{exits:#?}"
    );
    let job = find("backup-job 7001 exited with code 3 at");
    assert!(job.contains(".000300000"), "{job}");
    let cleanup = find("cleanup 7002 exited with code 255 (exit_group(-1)) at");
    assert!(!cleanup.contains("after"), "{cleanup}");
    let probe = find("hung-probe 7003 exited at");
    assert!(
        probe.contains(", after SIGKILL from pid 9001 (bash, parent sshd 8990"),
        "{probe}"
    );
    assert!(!probe.contains("code"), "{probe}");
    assert!(
        find("crasher 7004 exited at").ends_with(", exit code not recorded"),
        "{exits:#?}"
    );
}

#[test]
fn an_exit_in_a_bundle_without_exit_codes_just_exited_on_generated_bundle() {
    let (_, inc) = run(
        vec![exits_during_the_silence().without_exit_codes()],
        "eth0@vr1",
    );
    let exits = exit_suspects(&inc);
    assert_eq!(exits.len(), 5, "{exits:#?}");
    for text in &exits {
        assert!(!text.contains("code"), "{text}");
    }
    assert!(
        exits
            .iter()
            .any(|t| t.starts_with("crasher 7004 exited at")),
        "{exits:#?}"
    );
}

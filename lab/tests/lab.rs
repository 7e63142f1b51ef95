//! Root-only tests of real labs: real namespaces, a real bridge, real keepalived.
//!
//! Without root each test says why and passes, so `cargo test` works for everyone; with the
//! CI variable set, not being root is a failure, so CI cannot silently skip them.

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader};
use std::os::unix::fs::MetadataExt;
use std::os::unix::io::AsRawFd;
use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use vmlat_lab::fault::Prepared;
use vmlat_lab::scenario::{FaultKind, FaultSpec};
use vmlat_lab::{Lab, LabError, LabSpec, RouterSpec, VrrpVersion, LAB_ROOT};

const ELECTION: Duration = Duration::from_secs(15);

/// Whether to run a root-only test: `true` as root; otherwise explains and returns `false`,
/// or fails if CI is set.
fn root_or_skip(test: &str) -> bool {
    let euid = std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("Uid:"))
                .and_then(|ids| ids.split_whitespace().nth(1).map(str::to_owned))
        });
    if euid.as_deref() == Some("0") {
        return true;
    }
    assert!(
        std::env::var_os("CI").is_none(),
        "{test}: CI is set but we are not root: the lab tests need root (network namespaces)"
    );
    eprintln!("{test}: skipped: not root (the lab needs root to create network namespaces)");
    false
}

/// Everything that must be gone after teardown, captured while the lab is up.
struct Footprint {
    run_id: String,
    netns_inodes: Vec<u64>,
    pids: Vec<u32>,
}

fn footprint(lab: &Lab) -> Footprint {
    let mut netns = vec![lab.switch_netns().to_owned()];
    netns.extend(lab.routers().iter().map(|r| r.netns().to_owned()));
    let netns_inodes = netns
        .iter()
        .map(|ns| {
            std::fs::metadata(Path::new("/run/netns").join(ns))
                .map(|m| m.ino())
                .unwrap_or_else(|e| panic!("{ns} should exist while the lab runs: {e}"))
        })
        .collect();
    let mut pids = Vec::new();
    for r in lab.routers() {
        pids.push(r.main_pid());
        pids.push(lab.vrrp_pid(r.name()).expect("vrrp pid"));
    }
    Footprint {
        run_id: lab.run_id().to_owned(),
        netns_inodes,
        pids,
    }
}

fn alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| {
        s.rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().next())
            .is_some_and(|st| st != "Z" && st != "X")
    })
}

/// Inodes of every network namespace some process is in.
fn netns_in_use() -> BTreeSet<u64> {
    let mut inodes = BTreeSet::new();
    for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        if let Ok(m) = std::fs::metadata(entry.path().join("ns/net")) {
            inodes.insert(m.ino());
        }
    }
    inodes
}

/// Asserts that no namespace name, namespace, process or file of the lab remains. A network
/// namespace with no name and no process is freed by the kernel with all its interfaces.
fn assert_gone(fp: &Footprint) {
    let deadline = Instant::now() + Duration::from_secs(5);
    while fp.pids.iter().any(|&p| alive(p)) && Instant::now() < deadline {
        thread::sleep(Duration::from_millis(50));
    }
    for &p in &fp.pids {
        assert!(!alive(p), "process {p} of {} survived teardown", fp.run_id);
    }
    let names: Vec<String> = std::fs::read_dir("/run/netns")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| e.file_name().into_string().ok())
        .filter(|n| n.starts_with(&format!("{}-", fp.run_id)))
        .collect();
    assert!(names.is_empty(), "namespaces left: {names:?}");
    let in_use = netns_in_use();
    for ino in &fp.netns_inodes {
        assert!(
            !in_use.contains(ino),
            "a process is still in a namespace of {}",
            fp.run_id
        );
    }
    let dir = Path::new(LAB_ROOT).join(&fp.run_id);
    assert!(!dir.exists(), "{} left behind", dir.display());
    let links = Command::new("ip")
        .args(["-o", "link"])
        .output()
        .expect("ip link");
    assert!(
        !String::from_utf8_lossy(&links.stdout).contains(&fp.run_id),
        "an interface of {} is in the root namespace",
        fp.run_id
    );
}

/// Captures `count` VRRP packets on `iface` in `netns`; returns tcpdump's lines.
fn capture_vrrp(netns: &str, iface: &str, count: usize) -> Vec<String> {
    capture(netns, iface, count, "ip proto 112 or ip6 proto 112")
}

/// Captures `count` packets matching `filter` on `iface` in `netns` (15 s at most).
fn capture(netns: &str, iface: &str, count: usize, filter: &str) -> Vec<String> {
    let out = Command::new("timeout")
        .args(["15", "ip", "netns", "exec", netns, "tcpdump", "-n", "-l"])
        .args(["-c", &count.to_string(), "-i", iface, filter])
        .stderr(Stdio::null())
        .output()
        .expect("run tcpdump (apt-get install tcpdump)");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_owned)
        .collect()
}

#[test]
fn pair_elects_master_sends_adverts_and_leaves_nothing() {
    if !root_or_skip("pair_elects_master_sends_adverts_and_leaves_nothing") {
        return;
    }
    let t0 = Instant::now();
    let lab = Lab::build(&LabSpec::pair()).expect("build the pair");
    let built = t0.elapsed();
    let waited = lab
        .wait_for_master("vr1", ELECTION)
        .expect("vr1 becomes master");
    assert!(
        !lab.holds_vip("vr2").expect("ip addr"),
        "vr2 holds the VIP too"
    );

    let vrrp = lab.vrrp_pid("vr1").expect("vrrp pid");
    assert_ne!(
        vrrp,
        lab.main_pid("vr1").expect("main pid"),
        "-r names the child"
    );
    let comm = std::fs::read_to_string(format!("/proc/{vrrp}/comm")).expect("comm");
    assert_eq!(comm.trim(), "keepalived");
    assert!(alive(vrrp));
    let main = lab.main_pid("vr1").expect("main pid");
    let main_comm = std::fs::read_to_string(format!("/proc/{main}/comm")).expect("comm");
    assert_eq!(
        main_comm.trim(),
        "keepalived",
        "the spawned pid is keepalived itself"
    );

    // The master's adverts cross the bridge and reach the backup's port.
    let vr2 = lab.router("vr2").expect("vr2");
    let lines = capture_vrrp(lab.switch_netns(), vr2.bridge_port(), 3);
    let adverts = lines
        .iter()
        .filter(|l| l.contains("10.10.0.1 > 224.0.0.18: VRRPv2, Advertisement, vrid 51, prio 150"))
        .count();
    assert_eq!(adverts, 3, "expected 3 adverts from vr1, got {lines:#?}");
    // ...and are seen where the recorder would capture them, inside the backup.
    assert_eq!(capture_vrrp(vr2.netns(), vr2.iface(), 1).len(), 1);
    assert_eq!(
        lab.router("vr1").expect("vr1").capture_point(),
        format!("eth0@{}-vr1", lab.run_id())
    );

    let fp = footprint(&lab);
    let t1 = Instant::now();
    lab.teardown().expect("clean teardown");
    let torn = t1.elapsed();
    assert_gone(&fp);
    eprintln!("timings: build {built:?}, master after {waited:?}, teardown {torn:?}");
}

#[test]
fn two_labs_at_once_do_not_clash() {
    if !root_or_skip("two_labs_at_once_do_not_clash") {
        return;
    }
    let builders: Vec<_> = (0..2)
        .map(|_| thread::spawn(|| Lab::build(&LabSpec::pair())))
        .collect();
    let labs: Vec<Lab> = builders
        .into_iter()
        .map(|h| h.join().expect("builder thread").expect("build"))
        .collect();
    let mut names = BTreeSet::new();
    for lab in &labs {
        assert!(names.insert(lab.switch_netns().to_owned()));
        for r in lab.routers() {
            assert!(names.insert(r.netns().to_owned()), "{} twice", r.netns());
        }
    }
    for lab in &labs {
        lab.wait_for_master("vr1", ELECTION)
            .expect("each lab elects vr1");
        assert!(!lab.holds_vip("vr2").expect("ip addr"));
    }
    let fps: Vec<Footprint> = labs.iter().map(footprint).collect();
    assert_ne!(fps[0].run_id, fps[1].run_id);
    drop(labs);
    for fp in &fps {
        assert_gone(fp);
    }
}

#[test]
fn disabled_bridge_port_fails_over_v3_ipv6_unicast() {
    if !root_or_skip("disabled_bridge_port_fails_over_v3_ipv6_unicast") {
        return;
    }
    let spec = LabSpec {
        advert_int: Duration::from_millis(200),
        version: VrrpVersion::V3,
        unicast: true,
        ipv6: true,
        ..LabSpec::pair()
    };
    let lab = Lab::build(&spec).expect("build");
    lab.wait_for_master("vr1", ELECTION).expect("vr1 master");
    assert_eq!(lab.vip().to_string(), "fd00:10:10::100");
    let vr2 = lab.router("vr2").expect("vr2");
    let lines = capture_vrrp(vr2.netns(), vr2.iface(), 2);
    assert!(
        lines.len() == 2
            && lines
                .iter()
                .all(|l| l.contains("fd00:10:10::1 > fd00:10:10::2") && l.contains("VRRPv3")),
        "expected unicast v3 adverts vr1 -> vr2: {lines:#?}"
    );

    // The fault `vmlat lab run` will inject: vr1's port stops forwarding, vr2 takes over.
    lab.set_port_forwarding("vr1", false).expect("disable port");
    let took = lab
        .wait_for_vip("vr2", Duration::from_secs(5))
        .expect("vr2 takes over");
    // Master-down interval: 3 × 0.2 s + skew (100/256 × 0.2 s) ≈ 0.68 s.
    assert!(took < Duration::from_secs(2), "took over after {took:?}");
    eprintln!("failover after the port was disabled: {took:?}");
    assert!(
        lab.holds_vip("vr1").expect("ip addr"),
        "vr1 is cut off, still master"
    );
    // Back on: vr1's higher priority preempts and vr2 steps down.
    lab.set_port_forwarding("vr1", true).expect("enable port");
    let deadline = Instant::now() + Duration::from_secs(5);
    while lab.holds_vip("vr2").expect("ip addr") {
        assert!(Instant::now() < deadline, "vr2 never stepped down");
        thread::sleep(Duration::from_millis(50));
    }
    let fp = footprint(&lab);
    drop(lab);
    assert_gone(&fp);
}

#[test]
fn keepalived_that_dies_fails_the_build_and_leaves_nothing() {
    if !root_or_skip("keepalived_that_dies_fails_the_build_and_leaves_nothing") {
        return;
    }
    let mut spec = LabSpec::pair();
    spec.routers[1] = RouterSpec {
        cpu: Some(4095), // no such CPU: taskset fails before keepalived starts
        ..RouterSpec::new("vr2", 100)
    };
    match Lab::build(&spec) {
        Err(LabError::KeepalivedExited {
            router,
            log,
            log_tail,
            ..
        }) => {
            assert_eq!(router, "vr2");
            assert!(log_tail.contains("taskset"), "log tail: {log_tail}");
            // The log was LAB_ROOT/RUN_ID/vr2.log: that names the failed lab.
            let dir = log.parent().expect("lab dir");
            let run_id = dir.file_name().expect("run id").to_string_lossy();
            assert!(!dir.exists(), "{} left behind", dir.display());
            let leaked: Vec<String> = std::fs::read_dir("/run/netns")
                .into_iter()
                .flatten()
                .flatten()
                .filter_map(|e| e.file_name().into_string().ok())
                .filter(|n| n.starts_with(&format!("{run_id}-")))
                .collect();
            assert!(leaked.is_empty(), "failed build leaked {leaked:?}");
        }
        other => panic!("expected KeepalivedExited, got {other:?}"),
    }
}

#[test]
fn sweep_removes_dead_runs_only() {
    if !root_or_skip("sweep_removes_dead_runs_only") {
        return;
    }
    // A private prefix keeps this test away from the other tests' labs.
    let prefix = "vmlatsweeptest-";
    let mut done = Command::new("true").spawn().expect("spawn true");
    let dead = done.id();
    done.wait().expect("reap true");

    let stale_ns = format!("{prefix}{dead}-0-sw");
    let live_ns = format!("{prefix}{}-0-sw", std::process::id());
    for ns in [&stale_ns, &live_ns] {
        let ok = Command::new("ip").args(["netns", "add", ns]).status();
        assert!(ok.is_ok_and(|s| s.success()), "ip netns add {ns}");
    }
    // A process left running in the stale namespace, like an orphaned keepalived.
    let mut orphan = Command::new("ip")
        .args(["netns", "exec", &stale_ns, "sleep", "60"])
        .spawn()
        .expect("spawn sleep");
    let stale_dir = Path::new(LAB_ROOT).join(format!("{prefix}{dead}-0"));
    std::fs::create_dir_all(&stale_dir).expect("stale dir");
    thread::sleep(Duration::from_millis(200));

    let removed = vmlat_lab::sweep_stale(prefix).expect("sweep");
    assert!(removed.contains(&stale_ns), "removed: {removed:?}");
    assert!(removed.contains(&stale_dir.display().to_string()));
    assert!(!stale_dir.exists());
    assert!(!Path::new("/run/netns").join(&stale_ns).exists());
    let status = orphan.wait().expect("reap sleep");
    assert!(status.signal().is_some(), "sleep was killed, not finished");
    // Our own (live) run is left alone.
    assert!(Path::new("/run/netns").join(&live_ns).exists());
    let _ = Command::new("ip").args(["netns", "del", &live_ns]).status();
}

/// Set in the child process of `sigint_tears_down_every_lab`.
const CHILD_ENV: &str = "VMLAT_LAB_SIGINT_CHILD";

/// The child half of `sigint_tears_down_every_lab` (a no-op in a normal run): installs the
/// signal cleanup, builds a lab, reports it, and waits to be interrupted.
#[test]
fn sigint_child() {
    if std::env::var_os(CHILD_ENV).is_none() {
        return;
    }
    vmlat_lab::cleanup_on_signal().expect("install cleanup");
    let lab = Lab::build(&LabSpec::pair()).expect("build");
    lab.wait_for_master("vr1", ELECTION).expect("master");
    let mut pids = Vec::new();
    for r in lab.routers() {
        pids.push(r.main_pid().to_string());
        pids.push(lab.vrrp_pid(r.name()).expect("vrrp pid").to_string());
    }
    println!("READY {} {}", lab.run_id(), pids.join(","));
    // Only the signal path may clean up: SIGINT ends the process during this sleep.
    thread::sleep(Duration::from_secs(60));
    drop(lab);
    panic!("no SIGINT within 60 s");
}

/// Runs the child test `name` of this binary with `env` set; returns it and what it printed
/// after `READY `.
fn spawn_child(name: &str, env: &str) -> (Child, String) {
    let exe = std::env::current_exe().expect("test binary path");
    let mut child = Command::new(exe)
        .args(["--exact", name, "--nocapture", "--test-threads=1"])
        .env(env, "1")
        .stdout(Stdio::piped())
        .spawn()
        .expect("spawn child");
    let stdout = child.stdout.take().expect("child stdout");
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            // libtest prints "test NAME ... " with no newline before the test's output.
            if let Some((_, ready)) = line.split_once("READY ") {
                let _ = tx.send(ready.to_owned());
            }
        }
    });
    match rx.recv_timeout(Duration::from_secs(30)) {
        Ok(r) => (child, r),
        Err(e) => {
            let _ = child.kill();
            panic!("child {name} never reported its lab: {e}");
        }
    }
}

/// Sends SIGINT to `child` and waits (20 s at most) for it to die of it.
fn interrupt(child: &mut Child) {
    let pid = rustix::process::Pid::from_raw(i32::try_from(child.id()).expect("pid"))
        .expect("nonzero pid");
    rustix::process::kill_process(pid, rustix::process::Signal::INT).expect("SIGINT");
    let deadline = Instant::now() + Duration::from_secs(20);
    let status = loop {
        if let Some(s) = child.try_wait().expect("wait child") {
            break s;
        }
        assert!(Instant::now() < deadline, "child ignored SIGINT");
        thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(
        status.signal(),
        Some(2),
        "child should die of SIGINT: {status:?}"
    );
}

#[test]
fn sigint_tears_down_every_lab() {
    if !root_or_skip("sigint_tears_down_every_lab") {
        return;
    }
    let (mut child, ready) = spawn_child("sigint_child", CHILD_ENV);
    let mut fields = ready.split_whitespace();
    let run_id = fields.next().expect("run id").to_owned();
    let pids: Vec<u32> = fields
        .next()
        .expect("pids")
        .split(',')
        .map(|p| p.parse().expect("pid"))
        .collect();
    let netns_inodes = std::fs::read_dir("/run/netns")
        .expect("/run/netns")
        .flatten()
        .filter(|e| {
            e.file_name()
                .to_string_lossy()
                .starts_with(&format!("{run_id}-"))
        })
        .map(|e| e.metadata().expect("netns metadata").ino())
        .collect::<Vec<_>>();
    assert_eq!(netns_inodes.len(), 3, "switch + 2 routers");

    interrupt(&mut child);
    assert_gone(&Footprint {
        run_id,
        netns_inodes,
        pids,
    });
}

/// The INPUT rules of `ip netns exec NETNS iptables -S` that the vrrp-firewall fault adds
/// (`-A INPUT -p vrrp -m comment --comment vmlat-fault-PID-SEQ -j DROP`). `netns` is a
/// name, or with `nsenter` a path to a namespace file.
fn vrrp_drop_rules(netns: &str) -> Vec<String> {
    let out = if netns.starts_with('/') {
        Command::new("nsenter")
            .arg(format!("--net={netns}"))
            .args(["iptables", "-w", "-S", "INPUT"])
            .output()
    } else {
        Command::new("ip")
            .args(["netns", "exec", netns, "iptables", "-w", "-S", "INPUT"])
            .output()
    }
    .expect("run iptables (apt-get install iptables)");
    assert!(out.status.success(), "iptables -S in {netns}: {out:?}");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| l.contains("vmlat-fault-"))
        .map(str::to_owned)
        .collect()
}

/// Packets the vrrp-firewall rule in `netns` has dropped, from `iptables -vnxL INPUT`.
fn vrrp_dropped(netns: &str) -> u64 {
    let out = Command::new("ip")
        .args(["netns", "exec", netns, "iptables", "-w", "-vnxL", "INPUT"])
        .output()
        .expect("run iptables");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| l.contains("vmlat-fault-"))
        .filter_map(|l| l.split_whitespace().next()?.parse::<u64>().ok())
        .sum()
}

/// A fault of `vmlat lab run` on `target` of a pair, 4 s long 4 s in.
fn fault_on(kind: FaultKind, target: &str, spec: &mut LabSpec) -> Prepared {
    let fault = FaultSpec {
        kind,
        target: target.into(),
        start: Duration::from_secs(4),
        length: Duration::from_secs(4),
    };
    Prepared::new(&fault, spec).unwrap_or_else(|e| panic!("prepare the {} fault: {e}", kind.name()))
}

#[test]
fn vrrp_firewall_cuts_the_backup_off_and_leaves_no_rule() {
    if !root_or_skip("vrrp_firewall_cuts_the_backup_off_and_leaves_no_rule") {
        return;
    }
    let mut spec = LabSpec::pair();
    let prepared = fault_on(FaultKind::VrrpFirewall, "vr2", &mut spec);
    let lab = Lab::build(&spec).expect("build");
    lab.wait_for_master("vr1", ELECTION).expect("vr1 master");
    let vr2 = lab.router("vr2").expect("vr2");
    let ns = vr2.netns().to_owned();
    assert!(vrrp_drop_rules(&ns).is_empty(), "a rule before the fault");

    let guard = prepared.inject(&lab).expect("inject");
    let injected = Instant::now();
    let rules = vrrp_drop_rules(&ns);
    assert!(
        rules.len() == 1
            && rules[0].starts_with("-A INPUT -p vrrp ")
            && rules[0].ends_with("-j DROP"),
        "expected one VRRP DROP rule in {ns}: {rules:?}"
    );
    // vr1's adverts still reach vr2's interface: a packet socket taps before netfilter...
    let seen = capture(&ns, vr2.iface(), 1, "ip proto 112 and src 10.10.0.1");
    assert_eq!(
        seen.len(),
        1,
        "vr1's adverts no longer reach vr2's eth0: {seen:?}"
    );
    // ...but not keepalived: after its master-down interval (3 × 1 s + 156/256 s) it takes
    // over, while vr1, which hears nothing wrong, keeps the VIP: split brain.
    lab.wait_for_vip("vr2", Duration::from_secs(8))
        .expect("vr2 takes over once it stops hearing vr1");
    let took = injected.elapsed();
    assert!(
        took > Duration::from_millis(2500),
        "vr2 took over {took:?} after the rule: too soon for a master-down"
    );
    assert!(lab.holds_vip("vr1").expect("ip addr"), "vr1 kept the VIP");
    let adverts = capture(
        lab.switch_netns(),
        vr2.bridge_port(),
        1,
        "ip proto 112 and src 10.10.0.2",
    );
    assert!(
        adverts.len() == 1 && adverts[0].contains("prio 100"),
        "vr2 advertises as master: {adverts:?}"
    );
    let log = std::fs::read_to_string(vr2.log_path()).expect("vr2's log");
    assert!(log.contains("Entering MASTER STATE"), "vr2's log:\n{log}");
    let dropped = vrrp_dropped(&ns);
    assert!(dropped >= 3, "the rule dropped {dropped} packets");

    guard.clear().expect("clear the fault");
    let rules = vrrp_drop_rules(&ns);
    assert!(rules.is_empty(), "rules left after the fault: {rules:?}");
    // vr2 hears vr1's priority 150 again and steps back.
    let deadline = Instant::now() + Duration::from_secs(5);
    while lab.holds_vip("vr2").expect("ip addr") {
        assert!(Instant::now() < deadline, "vr2 never stepped back");
        thread::sleep(Duration::from_millis(50));
    }
    eprintln!("vr2 took over {took:?} after the rule went in; it dropped {dropped} packets");
    let fp = footprint(&lab);
    lab.teardown().expect("teardown");
    prepared.finish().expect("finish");
    assert_gone(&fp);
}

/// Set in the child process of `sigint_during_vrrp_firewall_removes_the_rule`.
const FIREWALL_CHILD_ENV: &str = "VMLAT_LAB_FIREWALL_SIGINT_CHILD";

/// The child half of `sigint_during_vrrp_firewall_removes_the_rule` (a no-op in a normal
/// run): installs the signal cleanup, builds a pair, drops VRRP on vr2, reports, and waits
/// to be interrupted.
#[test]
fn vrrp_firewall_sigint_child() {
    if std::env::var_os(FIREWALL_CHILD_ENV).is_none() {
        return;
    }
    hold_a_fault(FaultKind::VrrpFirewall, "vr2", |lab| {
        lab.router("vr2").expect("vr2").netns().to_owned()
    });
}

/// In a child test: builds a pair, injects `kind` on `target`, prints `READY RUN_ID
/// DETAIL PIDS` (DETAIL from `detail`, PIDS every keepalived process) and waits for the
/// parent's SIGINT, which alone may clean up.
fn hold_a_fault(kind: FaultKind, target: &str, detail: impl Fn(&Lab) -> String) {
    vmlat_lab::cleanup_on_signal().expect("install cleanup");
    let mut spec = LabSpec::pair();
    let prepared = fault_on(kind, target, &mut spec);
    let lab = Lab::build(&spec).expect("build");
    lab.wait_for_master("vr1", ELECTION).expect("master");
    let guard = prepared.inject(&lab).expect("inject");
    let mut pids = Vec::new();
    for r in lab.routers() {
        pids.push(r.main_pid().to_string());
        pids.push(lab.vrrp_pid(r.name()).expect("vrrp pid").to_string());
    }
    println!("READY {} {} {}", lab.run_id(), detail(&lab), pids.join(","));
    thread::sleep(Duration::from_secs(60));
    drop(guard);
    drop(lab);
    panic!("no SIGINT within 60 s");
}

/// The child's `READY` line: its run id, its detail and the keepalived pids.
fn ready_fields(ready: &str) -> (String, String, Vec<u32>) {
    let mut fields = ready.split_whitespace();
    let run_id = fields.next().expect("run id").to_owned();
    let detail = fields.next().expect("detail").to_owned();
    let pids = fields
        .next()
        .expect("pids")
        .split(',')
        .map(|p| p.parse().expect("pid"))
        .collect();
    (run_id, detail, pids)
}

#[test]
fn sigint_during_vrrp_firewall_removes_the_rule() {
    if !root_or_skip("sigint_during_vrrp_firewall_removes_the_rule") {
        return;
    }
    let (mut child, ready) = spawn_child("vrrp_firewall_sigint_child", FIREWALL_CHILD_ENV);
    let (run_id, ns, pids) = ready_fields(&ready);
    assert_eq!(vrrp_drop_rules(&ns).len(), 1, "the fault is on");
    // Hold vr2's namespace open: teardown deletes its name, not the namespace, so what is
    // left in it can still be read. Without this the rule would vanish with the namespace
    // whether or not the fault's undo ran.
    let held = std::fs::File::open(Path::new("/run/netns").join(&ns)).expect("open the netns");
    let netns_inodes = std::fs::read_dir("/run/netns")
        .expect("/run/netns")
        .flatten()
        .filter(|e| {
            e.file_name()
                .to_string_lossy()
                .starts_with(&format!("{run_id}-"))
        })
        .map(|e| e.metadata().expect("netns metadata").ino())
        .collect::<Vec<_>>();

    interrupt(&mut child);
    let path = format!("/proc/{}/fd/{}", std::process::id(), held.as_raw_fd());
    let rules = vrrp_drop_rules(&path);
    assert!(rules.is_empty(), "SIGINT left the rule in {ns}: {rules:?}");
    drop(held);
    assert_gone(&Footprint {
        run_id,
        netns_inodes,
        pids,
    });
}

/// The cgroup v2 mount point (`/sys/fs/cgroup/unified` on a hybrid machine,
/// `/sys/fs/cgroup` on a pure v2 one), from /proc/self/mountinfo.
fn cgroup2_mount() -> std::path::PathBuf {
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").expect("mountinfo");
    mountinfo
        .lines()
        .find_map(|line| {
            let (before, after) = line.split_once(" - ")?;
            let fields: Vec<&str> = before.split(' ').collect();
            (after.starts_with("cgroup2 ") && fields.get(3) == Some(&"/"))
                .then(|| std::path::PathBuf::from(fields[4]))
        })
        .expect("a cgroup2 mount (mount -t cgroup2 none /sys/fs/cgroup/unified)")
}

/// A process's cgroup v2 path, the `0::` line of /proc/PID/cgroup.
fn cgroup2_of(pid: u32) -> String {
    std::fs::read_to_string(format!("/proc/{pid}/cgroup"))
        .unwrap_or_else(|e| panic!("/proc/{pid}/cgroup: {e}"))
        .lines()
        .find_map(|l| l.strip_prefix("0::"))
        .unwrap_or_else(|| panic!("no 0:: line for {pid}"))
        .to_owned()
}

/// The directory of v2 cgroup `cgroup` under the v2 mount.
fn cgroup2_dir(cgroup: &str) -> std::path::PathBuf {
    cgroup2_mount().join(cgroup.trim_start_matches('/'))
}

/// The fault cgroups of process `owner` left at the top of the v2 hierarchy.
fn fault_cgroups2(owner: u32) -> Vec<String> {
    let prefix = format!("vmlat-fault-{owner}-");
    std::fs::read_dir(cgroup2_mount())
        .expect("read the v2 mount")
        .flatten()
        .filter_map(|e| e.file_name().into_string().ok())
        .filter(|n| n.starts_with(&prefix))
        .collect()
}

/// A process's state letter, from /proc/PID/stat.
fn proc_state(pid: u32) -> char {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| s.rsplit_once(") ")?.1.chars().next())
        .unwrap_or('?')
}

/// The adverts `src` sent that `iface` in `netns` saw within `secs` seconds.
fn adverts_within(netns: &str, iface: &str, src: &str, secs: f64) -> Vec<String> {
    let out = Command::new("timeout")
        .args([
            &format!("{secs}"),
            "ip",
            "netns",
            "exec",
            netns,
            "tcpdump",
            "-n",
            "-l",
        ])
        .args(["-i", iface, &format!("ip proto 112 and src {src}")])
        .stderr(Stdio::null())
        .output()
        .expect("run tcpdump (apt-get install tcpdump)");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| l.contains("VRRP"))
        .map(str::to_owned)
        .collect()
}

#[test]
fn freezer_v2_freezes_keepalived_and_puts_it_back() {
    if !root_or_skip("freezer_v2_freezes_keepalived_and_puts_it_back") {
        return;
    }
    let mut spec = LabSpec::pair();
    let prepared = fault_on(FaultKind::FreezerV2, "vr1", &mut spec);
    let lab = Lab::build(&spec).expect("build");
    lab.wait_for_master("vr1", ELECTION).expect("vr1 master");
    let vr1 = lab.router("vr1").expect("vr1");
    let (ns, iface) = (vr1.netns().to_owned(), vr1.iface().to_owned());
    let pids = [
        lab.main_pid("vr1").expect("main pid"),
        lab.vrrp_pid("vr1").expect("vrrp pid"),
    ];
    let homes = pids.map(cgroup2_of);
    assert!(
        !adverts_within(&ns, &iface, "10.10.0.1", 1.5).is_empty(),
        "vr1 does not advertise before the fault"
    );

    let guard = prepared.inject(&lab).expect("inject");
    let injected = Instant::now();
    // Both processes in one new cgroup of this process, named like the v1 fault's.
    let cgroups = pids.map(cgroup2_of);
    let prefix = format!("/vmlat-fault-{}-", std::process::id());
    assert!(
        cgroups[0] == cgroups[1] && cgroups[0].starts_with(&prefix),
        "keepalived's processes are in {cgroups:?}, not one {prefix}* cgroup"
    );
    let dir = cgroup2_dir(&cgroups[0]);
    let events = std::fs::read_to_string(dir.join("cgroup.events")).expect("cgroup.events");
    assert!(events.contains("frozen 1"), "{}: {events}", dir.display());
    // The trap: a v2-frozen task sleeps in S, not D as under v1, nor T as when stopped.
    let state = proc_state(pids[1]);
    assert_eq!(state, 'S', "keepalived's VRRP process while v2-frozen");
    // Its adverts stop at its own interface: the sender itself went silent...
    let sent = adverts_within(&ns, &iface, "10.10.0.1", 2.0);
    assert!(sent.is_empty(), "vr1 advertised while frozen: {sent:?}");
    // ...long enough for the backup's master-down interval (3 × 1 s + 156/256 s).
    lab.wait_for_vip("vr2", Duration::from_secs(6))
        .expect("vr2 takes over from the frozen vr1");
    let took = injected.elapsed();

    guard.clear().expect("clear the fault");
    assert!(!dir.exists(), "{} left after the fault", dir.display());
    assert_eq!(pids.map(cgroup2_of), homes, "processes not moved back");
    assert!(pids.iter().all(|&p| alive(p)), "keepalived died thawing");
    // Thawed, vr1 advertises again and preempts back.
    let deadline = Instant::now() + Duration::from_secs(5);
    while lab.holds_vip("vr2").expect("ip addr") {
        assert!(Instant::now() < deadline, "vr1 never took the VIP back");
        thread::sleep(Duration::from_millis(50));
    }
    assert!(lab.holds_vip("vr1").expect("ip addr"));
    eprintln!("vr2 took over {took:?} after the freeze; VRRP process state while frozen: {state}");
    let fp = footprint(&lab);
    lab.teardown().expect("teardown");
    prepared.finish().expect("finish");
    assert_gone(&fp);
    let left = fault_cgroups2(std::process::id());
    assert!(left.is_empty(), "v2 cgroups left: {left:?}");
}

/// Set in the child process of `sigint_during_freezer_v2_thaws_and_removes_the_cgroup`.
const FREEZER_V2_CHILD_ENV: &str = "VMLAT_LAB_FREEZER_V2_SIGINT_CHILD";

/// The child half of `sigint_during_freezer_v2_thaws_and_removes_the_cgroup` (a no-op in
/// a normal run): installs the signal cleanup, builds a pair, freezes vr1's keepalived
/// with the v2 freezer, reports, and waits to be interrupted.
#[test]
fn freezer_v2_sigint_child() {
    if std::env::var_os(FREEZER_V2_CHILD_ENV).is_none() {
        return;
    }
    hold_a_fault(FaultKind::FreezerV2, "vr1", |lab| {
        cgroup2_of(lab.vrrp_pid("vr1").expect("vrrp pid"))
    });
}

#[test]
fn sigint_during_freezer_v2_thaws_and_removes_the_cgroup() {
    if !root_or_skip("sigint_during_freezer_v2_thaws_and_removes_the_cgroup") {
        return;
    }
    let (mut child, ready) = spawn_child("freezer_v2_sigint_child", FREEZER_V2_CHILD_ENV);
    let (run_id, cgroup, pids) = ready_fields(&ready);
    assert!(
        cgroup.starts_with(&format!("/vmlat-fault-{}-", child.id())),
        "vr1's VRRP process is in {cgroup}"
    );
    let dir = cgroup2_dir(&cgroup);
    let events = std::fs::read_to_string(dir.join("cgroup.events")).expect("cgroup.events");
    assert!(events.contains("frozen 1"), "the fault is on: {events}");
    let procs = std::fs::read_to_string(dir.join("cgroup.procs")).expect("cgroup.procs");
    // vr1's main and VRRP processes (the first two pids) are the ones frozen.
    let frozen: BTreeSet<u32> = procs
        .split_whitespace()
        .map(|p| p.parse().expect("pid"))
        .collect();
    assert_eq!(
        frozen,
        pids[..2].iter().copied().collect(),
        "{}",
        dir.display()
    );
    let netns_inodes = std::fs::read_dir("/run/netns")
        .expect("/run/netns")
        .flatten()
        .filter(|e| {
            e.file_name()
                .to_string_lossy()
                .starts_with(&format!("{run_id}-"))
        })
        .map(|e| e.metadata().expect("netns metadata").ino())
        .collect::<Vec<_>>();

    let owner = child.id();
    interrupt(&mut child);
    // Only the fault's undo removes the cgroup, and rmdir needs it empty: it thawed it and
    // moved keepalived back before the lab's teardown stopped keepalived.
    assert!(!dir.exists(), "SIGINT left {}", dir.display());
    let left = fault_cgroups2(owner);
    assert!(left.is_empty(), "v2 cgroups left: {left:?}");
    assert_gone(&Footprint {
        run_id,
        netns_inodes,
        pids,
    });
}

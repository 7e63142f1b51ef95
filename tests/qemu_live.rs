//! A real QEMU (TCG) guest in a lab: it boots the cached guest image, its keepalived
//! becomes master and its adverts cross its tap; a QMP `stop` silences them and `cont`
//! brings them back; the guest's own recording comes back out as a readable bundle. The
//! image is found in the cache the second time, and teardown leaves no QEMU and no tap.
//! Needs root and QEMU: without QEMU it says why and passes, unless CI=true
//! (`scripts/setup.sh` installs it).

mod common;

use std::io::{BufRead, BufReader};
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use common::{have_root, inspect};
use vmlat_lab::fault::Prepared;
use vmlat_lab::scenario::{FaultKind, FaultSpec};
use vmlat_lab::{Backend, Lab, LabSpec};

/// Whether QEMU is installed; fails under CI, which must have it.
fn have_qemu(test: &str) -> bool {
    let found = Command::new("qemu-system-x86_64")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !found {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "{test}: CI=true but qemu-system-x86_64 is missing: run scripts/setup.sh"
        );
        eprintln!("SKIPPED {test}: qemu-system-x86_64 not installed (scripts/setup.sh)");
    }
    found
}

/// VRRP adverts from `src` seen at `iface` in namespace `netns` during `secs` seconds.
fn adverts(netns: &str, iface: &str, src: &str, secs: u32) -> usize {
    let out = Command::new("timeout")
        .args([&secs.to_string(), "ip", "netns", "exec", netns, "tcpdump"])
        .args(["-n", "-l", "-i", iface, "ip proto 112 and src host", src])
        .output()
        .expect("tcpdump runs (apt-get install tcpdump)");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| l.contains("VRRP") && l.contains("Advertisement"))
        .count()
}

#[test]
fn a_qemu_guest_advertises_pauses_and_hands_back_its_bundle() {
    let test = "a_qemu_guest_advertises_pauses_and_hands_back_its_bundle";
    if !have_root(test) || !have_qemu(test) {
        return;
    }
    // The lab puts VMLAT_GUEST_BINARY into the guest; by default this build's vmlat.
    let vmlat = std::env::var_os("VMLAT_GUEST_BINARY")
        .map_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_vmlat")), PathBuf::from);
    std::env::set_var("VMLAT_GUEST_BINARY", &vmlat);
    let mut spec = LabSpec::pair();
    spec.routers[0].backend = Backend::Qemu;
    let lab = Lab::build(&spec).expect("the guest boots");
    lab.wait_for_master("vr1", Duration::from_secs(60))
        .expect("the guest's keepalived becomes master");
    let image = vmlat_lab::qemu::image::ensure(&vmlat).expect("the image");
    assert!(!image.built, "the image the lab just used was built again");
    let guest = lab.guest("vr1").expect("vr1 is a guest");
    let clock = guest.clock();
    eprintln!("guest clock: {clock:?}");
    assert!(
        clock.offset_ns.abs() < 50_000_000,
        "guest clock off by {} ms",
        clock.offset_ns / 1_000_000
    );
    let sw = lab.switch_netns().to_owned();
    let tap = lab.router("vr1").expect("vr1").bridge_port().to_owned();
    assert!(
        adverts(&sw, &tap, "10.10.0.1", 3) >= 2,
        "no adverts at {tap}"
    );

    guest.pause().expect("QMP stop");
    assert_eq!(guest.status().expect("query-status"), "paused");
    // Shorter than vr2's master-down interval (~3.6 s): vr2 stays quiet too.
    assert_eq!(
        adverts(&sw, &tap, "10.10.0.1", 2),
        0,
        "a paused VM sent adverts"
    );
    guest.resume().expect("QMP cont");
    assert_eq!(guest.status().expect("query-status"), "running");
    assert!(
        adverts(&sw, &tap, "10.10.0.1", 3) >= 2,
        "no adverts after cont"
    );

    let out = tempfile::tempdir().expect("tempdir");
    let bundle = out.path().join("guest");
    let log = out.path().join("keepalived-vr1.log");
    let kernel = out.path().join("kernel-vr1.log");
    guest
        .finish(&bundle, &log, &kernel)
        .expect("the guest's bundle");
    let dmesg = std::fs::read_to_string(&kernel).expect("the guest kernel's log");
    assert!(dmesg.contains("clocksource"), "{dmesg}");
    let manifest = inspect(&bundle);
    assert_eq!(manifest["role"], "guest", "{manifest}");
    let pcap = bundle.join("pcap/eth0.pcap");
    assert!(
        pcap.metadata().is_ok_and(|m| m.len() > 24),
        "no packets in {}",
        pcap.display()
    );
    let ka = std::fs::read_to_string(&log).expect("keepalived's log");
    assert!(ka.contains("Entering MASTER STATE"), "{ka}");

    let qemu = lab.router("vr1").expect("vr1").main_pid();
    lab.teardown().expect("teardown");
    assert_gone(qemu, &sw, &tap, "teardown");
}

/// Set in the child of the SIGINT test: only then does `vm_pause_sigint_child` run.
const SIGINT_CHILD_ENV: &str = "VMLAT_QEMU_SIGINT_CHILD";

/// In the child: a guest lab with its VM paused, `READY QEMU_PID SWITCH_NETNS TAP` on
/// stdout, then the wait for the parent's SIGINT, which alone may clean up.
#[test]
fn vm_pause_sigint_child() {
    if std::env::var_os(SIGINT_CHILD_ENV).is_none() {
        return;
    }
    vmlat_lab::cleanup_on_signal().expect("install cleanup");
    let mut spec = LabSpec::pair();
    spec.routers[0].backend = Backend::Qemu;
    let fault = FaultSpec {
        kind: FaultKind::VmPause,
        target: "vr1".into(),
        start: Duration::from_secs(3),
        length: Duration::from_secs(60),
    };
    let prepared = Prepared::new(&fault, &mut spec).expect("prepare");
    let lab = Lab::build(&spec).expect("build");
    lab.wait_for_master("vr1", Duration::from_secs(60))
        .expect("master");
    let _guard = prepared.inject(&lab).expect("inject");
    let vr1 = lab.router("vr1").expect("vr1");
    println!(
        "READY {} {} {}",
        vr1.main_pid(),
        lab.switch_netns(),
        vr1.bridge_port()
    );
    std::thread::sleep(Duration::from_secs(120));
    panic!("no SIGINT within 120 s");
}

#[test]
fn sigint_during_a_vm_pause_kills_qemu_and_removes_the_tap() {
    let test = "sigint_during_a_vm_pause_kills_qemu_and_removes_the_tap";
    if !have_root(test) || !have_qemu(test) {
        return;
    }
    let vmlat = std::env::var_os("VMLAT_GUEST_BINARY")
        .map_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_vmlat")), PathBuf::from);
    let mut child = Command::new(std::env::current_exe().expect("test binary"))
        .args(["--exact", "vm_pause_sigint_child", "--nocapture"])
        .env(SIGINT_CHILD_ENV, "1")
        .env("VMLAT_GUEST_BINARY", &vmlat)
        .stdout(Stdio::piped())
        .spawn()
        .expect("spawn the child test");
    let stdout = child.stdout.take().expect("piped");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if let Some(ready) = line.strip_prefix("READY ") {
                let _ = tx.send(ready.to_owned());
            }
        }
    });
    let ready = rx
        .recv_timeout(Duration::from_secs(150))
        .expect("the child's guest booted and paused");
    let mut fields = ready.split_whitespace().map(str::to_owned);
    let (qemu, sw, tap) = (
        fields.next().expect("qemu pid"),
        fields.next().expect("switch netns"),
        fields.next().expect("tap"),
    );
    assert!(Path::new(&format!("/proc/{qemu}")).exists(), "QEMU runs");

    let pid = rustix::process::Pid::from_child(&child);
    rustix::process::kill_process(pid, rustix::process::Signal::INT).expect("SIGINT");
    let status = child.wait().expect("the child exits");
    assert_eq!(
        status.signal(),
        Some(2),
        "the child died of SIGINT: {status}"
    );
    assert_gone(qemu, &sw, &tap, "SIGINT");
}

/// Nothing of a guest's lab is left after `what`: its QEMU, its switch namespace, its tap.
fn assert_gone(qemu: impl std::fmt::Display, sw: &str, tap: &str, what: &str) {
    assert!(
        !Path::new(&format!("/proc/{qemu}")).exists(),
        "QEMU {qemu} survived {what}"
    );
    assert!(
        !Path::new(&format!("/run/netns/{sw}")).exists(),
        "{sw} survived {what}"
    );
    let links = Command::new("ip")
        .args(["-o", "link"])
        .output()
        .expect("ip");
    assert!(
        !String::from_utf8_lossy(&links.stdout).contains(tap),
        "{tap} leaked into the root namespace after {what}"
    );
}

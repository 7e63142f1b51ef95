//! A real QEMU (TCG) guest in a lab: it boots the cached guest image, its keepalived
//! becomes master and its adverts cross its tap; a QMP `stop` silences them and `cont`
//! brings them back; the guest's own recording comes back out as a readable bundle.
//! Teardown leaves no QEMU and no tap. Needs root and QEMU: without QEMU it says why and
//! passes, unless CI is set (`scripts/setup.sh` installs it).

mod common;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use common::{have_root, inspect};
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
    if std::env::var_os("VMLAT_GUEST_BINARY").is_none() {
        std::env::set_var("VMLAT_GUEST_BINARY", env!("CARGO_BIN_EXE_vmlat"));
    }
    let mut spec = LabSpec::pair();
    spec.routers[0].backend = Backend::Qemu;
    let lab = Lab::build(&spec).expect("the guest boots");
    lab.wait_for_master("vr1", Duration::from_secs(60))
        .expect("the guest's keepalived becomes master");
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
    guest.finish(&bundle, &log).expect("the guest's bundle");
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
    assert!(
        !Path::new(&format!("/proc/{qemu}")).exists(),
        "QEMU {qemu} survived teardown"
    );
    assert!(
        !Path::new(&format!("/run/netns/{sw}")).exists(),
        "{sw} survived"
    );
    let links = Command::new("ip")
        .args(["-o", "link"])
        .output()
        .expect("ip");
    assert!(
        !String::from_utf8_lossy(&links.stdout).contains(&tap),
        "{tap} leaked into the root namespace"
    );
}

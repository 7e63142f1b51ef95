//! Helpers shared by the live (root) tests of the `vmlat` binary.

// Each test binary uses a different part of it.
#![allow(dead_code)]

use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use rustix::process::{kill_process, Pid, Signal};
use vmlat_lab::{Lab, LabSpec};

/// True when the test can run: root. Off CI a non-root run skips with a printed
/// reason; on CI (where root is given) a missing privilege fails the test loudly.
pub fn have_root(test: &str) -> bool {
    if rustix::process::geteuid().is_root() {
        return true;
    }
    if std::env::var_os("CI").is_some() {
        panic!("{test} needs root, and CI runs as root: something is wrong with this runner");
    }
    eprintln!("SKIPPED {test}: needs root (network namespaces, perf tracepoints, libpcap)");
    false
}

/// QEMU's x86 system emulator, or `None` (printed) where it is not installed; in CI,
/// where scripts/setup.sh installs it, its absence fails the test.
pub fn qemu_system() -> Option<&'static str> {
    const QEMU: &str = "/usr/bin/qemu-system-x86_64";
    if std::path::Path::new(QEMU).exists() {
        return Some(QEMU);
    }
    if std::env::var_os("CI").is_some() {
        panic!("{QEMU} missing in CI: scripts/setup.sh installs qemu-system-x86");
    }
    eprintln!("SKIPPED: no {QEMU} (apt-get install qemu-system-x86)");
    None
}

pub fn vmlat() -> Command {
    Command::new(env!("CARGO_BIN_EXE_vmlat"))
}

/// Runs vmlat with `args`, returning its output.
pub fn run_vmlat(args: &[&str]) -> Output {
    vmlat().args(args).output().expect("vmlat runs")
}

pub fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// `vmlat inspect DIR --json`, parsed.
pub fn inspect(dir: &Path) -> serde_json::Value {
    let out = run_vmlat(&["inspect", dir.to_str().unwrap(), "--json"]);
    assert!(out.status.success(), "inspect failed: {}", stderr(&out));
    serde_json::from_slice(&out.stdout).expect("inspect prints JSON")
}

/// Packet times of a nanosecond pcap, in ns since the epoch.
pub fn packet_times(path: &Path) -> Vec<i64> {
    let file = std::fs::File::open(path).unwrap();
    let mut reader = pcap_file::pcap::PcapReader::new(file).expect("a pcap");
    let mut times = Vec::new();
    while let Some(packet) = reader.next_packet() {
        times.push(packet.expect("whole packet").timestamp.as_nanos() as i64);
    }
    times
}

/// The usual pair (vr1 with the higher priority, vr2), once vr1 is master.
///
/// `pin_cpu0` pins both keepalived instances to CPU 0. On this project's reference
/// machine (a Firecracker guest, kernel 6.18) perf never receives tracepoints that fire
/// in a hardirq while CPU 1 idles, so a timer wakeup of a task sleeping on CPU 1 has no
/// sched_wakeup record (ftrace sees it; so does perf on CPU 0). The analyzer infers such
/// wakeups from the switch-in; a test that wants the records themselves pins.
pub fn lab_with_master(pin_cpu0: bool) -> Lab {
    let mut spec = LabSpec::pair();
    if pin_cpu0 {
        for router in &mut spec.routers {
            router.cpu = Some(0);
        }
    }
    let lab = Lab::build(&spec).expect("lab builds");
    lab.wait_for_master("vr1", Duration::from_secs(20))
        .expect("vr1 becomes master");
    lab
}

/// Records the usual pair into `bundle` for 12 s (vr1's interface and the bridge,
/// keepalived's syscalls) with vr1's VRRP child stopped by SIGSTOP from +3 s to +7 s:
/// a real gap, a backup taking over and vr1 preempting back. Returns the lab, still up,
/// and the pid that was stopped.
pub fn record_sigstop_lab(bundle: &Path) -> (Lab, Pid) {
    let lab = lab_with_master(false);
    let vr1 = lab.router("vr1").unwrap();
    let vrrp = Pid::from_raw(lab.vrrp_pid("vr1").unwrap() as i32).expect("a pid");
    let recorder = vmlat()
        .args([
            "record",
            "-o",
            bundle.to_str().unwrap(),
            "-i",
            &vr1.capture_point(),
            "-i",
            &lab.bridge_capture_point(),
            "--comm",
            "keepalived",
            "--duration",
            "12",
            "--force",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("vmlat record starts");
    std::thread::sleep(Duration::from_secs(3));
    kill_process(vrrp, Signal::STOP).expect("SIGSTOP the VRRP child");
    std::thread::sleep(Duration::from_secs(4));
    kill_process(vrrp, Signal::CONT).expect("SIGCONT the VRRP child");
    let out = recorder.wait_with_output().expect("vmlat record ends");
    assert!(out.status.success(), "record failed: {}", stderr(&out));
    (lab, vrrp)
}

/// A bundle holds packet payloads: nothing in it may be readable by every user (its
/// directories 0750, its files 0640, less under a stricter umask).
pub fn assert_private(bundle: &Path) {
    use std::os::unix::fs::PermissionsExt;
    let mut seen = 0;
    let mut stack = vec![bundle.to_path_buf()];
    while let Some(path) = stack.pop() {
        let meta = std::fs::metadata(&path).unwrap();
        let mode = meta.permissions().mode() & 0o777;
        let most = if meta.is_dir() { 0o750 } else { 0o640 };
        assert_eq!(mode & !most, 0, "{} is {mode:o}", path.display());
        seen += 1;
        if meta.is_dir() {
            stack.extend(std::fs::read_dir(&path).unwrap().map(|e| e.unwrap().path()));
        }
    }
    assert!(
        seen >= 5,
        "bundle dir, pcap dir, manifest, events, pcaps: {seen}"
    );
}

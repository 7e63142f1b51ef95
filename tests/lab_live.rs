//! Live tests of `vmlat lab`: real labs, real faults, real keepalived (root only, except
//! the scenario-file check). They hold a lock file so that only one lab scenario runs at a
//! time: scenarios measure gaps to the second, and a second lab (or a CPU hog) on a
//! 2-core machine would disturb them.

mod common;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Output, Stdio};
use std::time::{Duration, Instant};

use common::{have_root, run_vmlat, stderr, vmlat};

/// Serializes the lab scenarios of concurrently running test processes.
const LOCK: &str = "/run/vmlat-lab-live.lock";

fn lock() -> std::fs::File {
    let file = std::fs::File::create(LOCK).expect("lock file");
    rustix::fs::flock(&file, rustix::fs::FlockOperation::LockExclusive).expect("flock");
    file
}

fn scenario(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("scenarios")
        .join(format!("{name}.toml"))
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn run_scenario(file: &Path, out: &Path) -> Output {
    run_vmlat(&[
        "lab",
        "run",
        file.to_str().unwrap(),
        "-o",
        out.to_str().unwrap(),
    ])
}

#[test]
fn baseline_passes() {
    if !have_root("baseline_passes") {
        return;
    }
    let _lock = lock();
    let out = tempfile::tempdir().unwrap();
    let o = run_scenario(&scenario("baseline"), out.path());
    assert_eq!(
        o.status.code(),
        Some(0),
        "stdout:\n{}\nstderr:\n{}",
        stdout(&o),
        stderr(&o)
    );
    assert!(stdout(&o).contains("PASS baseline"), "{}", stdout(&o));
    let dir = out.path().join("baseline");
    for file in [
        "analysis.txt",
        "analysis.json",
        "result.json",
        "keepalived-vr1.log",
        "keepalived-vr2.log",
    ] {
        assert!(dir.join(file).is_file(), "{file} written");
    }
    assert!(
        !dir.join("bundle").exists(),
        "a passing run's bundle goes without --keep"
    );
}

#[test]
fn a_changed_fault_length_fails_plainly() {
    if !have_root("a_changed_fault_length_fails_plainly") {
        return;
    }
    let _lock = lock();
    let original = std::fs::read_to_string(scenario("master-sigstop")).unwrap();
    // The fault lasts 8 s, the expectation still says 4 s.
    let changed = original
        .replace("length = 4\n", "length = 8\n")
        .replace("duration = 15\n", "duration = 20\n");
    assert_ne!(changed, original);
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("longer-sigstop.toml");
    std::fs::write(&file, changed).unwrap();
    let o = run_scenario(&file, &dir.path().join("out"));
    let text = stdout(&o);
    assert_eq!(o.status.code(), Some(1), "{text}\n{}", stderr(&o));
    assert!(text.contains("FAIL longer-sigstop"), "{text}");
    assert!(
        text.contains("expected the silence to last 4±1 s, got 8."),
        "{text}"
    );
    assert!(
        dir.path().join("out/longer-sigstop/bundle").is_dir(),
        "a failing run keeps its bundle"
    );
}

#[test]
fn unknown_key_names_the_line() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("typo.toml");
    let text = std::fs::read_to_string(scenario("master-sigstop"))
        .unwrap()
        .replace("target = ", "taget = ");
    let line = text.lines().position(|l| l.starts_with("taget")).unwrap() + 1;
    std::fs::write(&file, text).unwrap();
    let o = run_vmlat(&["lab", "run", file.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2));
    let err = stderr(&o);
    assert!(
        err.contains(&format!("typo.toml:{line}: unknown key `taget`")),
        "{err}"
    );
    assert!(err.contains("`target`"), "names the expected keys: {err}");
}

/// The lines a child prints on stdout and stderr (where `lab run` prints a scenario's
/// error), as they come, each stream read on a thread of its own.
struct OutputLines {
    lines: std::sync::mpsc::Receiver<String>,
    seen: String,
}

impl OutputLines {
    fn of(child: &mut Child) -> OutputLines {
        let (tx, lines) = std::sync::mpsc::channel();
        let out: Box<dyn std::io::Read + Send> =
            Box::new(child.stdout.take().expect("piped stdout"));
        let err: Box<dyn std::io::Read + Send> =
            Box::new(child.stderr.take().expect("piped stderr"));
        for stream in [out, err] {
            let tx = tx.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(stream).lines().map_while(Result::ok) {
                    if tx.send(line).is_err() {
                        break;
                    }
                }
            });
        }
        OutputLines {
            lines,
            seen: String::new(),
        }
    }

    /// Reads until a line contains `needle` (true), the child closes its output or
    /// `timeout` passes (false).
    fn wait_for(&mut self, needle: &str, timeout: Duration) -> bool {
        self.read_until(Some(needle), timeout)
    }

    /// Reads what the child prints until it closes its output, for up to `timeout`.
    fn read_to_end(&mut self, timeout: Duration) {
        self.read_until(None, timeout);
    }

    fn read_until(&mut self, needle: Option<&str>, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        while let Ok(line) = self
            .lines
            .recv_timeout(deadline.saturating_duration_since(Instant::now()))
        {
            self.seen.push_str(&line);
            self.seen.push('\n');
            if needle.is_some_and(|n| line.contains(n)) {
                return true;
            }
        }
        false
    }
}

/// Everything of run `pid` still on the machine, one line each.
fn leftovers(pid: u32, rt_runtime_before: &str) -> Vec<String> {
    let mut found = Vec::new();
    let run = format!("vmlat-{pid}-");
    let fault = format!("vmlat-fault-{pid}-");
    let names = |dir: &str| -> Vec<String> {
        std::fs::read_dir(dir)
            .map(|d| {
                d.filter_map(|e| e.ok()?.file_name().into_string().ok())
                    .collect()
            })
            .unwrap_or_default()
    };
    for ns in names("/run/netns") {
        if ns.starts_with(&run) {
            found.push(format!("namespace {ns}"));
        }
    }
    for dir in names("/run/vmlat") {
        if dir.starts_with(&run) {
            found.push(format!("lab dir /run/vmlat/{dir}"));
        }
    }
    // v1 hierarchies, and v2's where it is mounted alone or beside them.
    for hierarchy in ["freezer", "blkio", "", "unified"] {
        for cg in names(&format!("/sys/fs/cgroup/{hierarchy}")) {
            if cg.starts_with(&fault) {
                found.push(format!("cgroup {hierarchy}/{cg}"));
            }
        }
    }
    for entry in names("/var/tmp/vmlat") {
        if entry.starts_with(&fault) {
            found.push(format!("fault file /var/tmp/vmlat/{entry}"));
        }
    }
    let loops = std::process::Command::new("losetup")
        .arg("-a")
        .output()
        .expect("losetup runs");
    for line in String::from_utf8_lossy(&loops.stdout).lines() {
        if line.contains(&fault) {
            found.push(format!("loop device {line}"));
        }
    }
    let ps = std::process::Command::new("ps")
        .args(["-eo", "pid,args"])
        .output()
        .expect("ps runs");
    for line in String::from_utf8_lossy(&ps.stdout).lines() {
        // The hog by its exact arguments: other tests may run stress-ng of their own.
        let hog = line.contains("stress-ng --cpu 1 --cpu-method loop --quiet");
        if line.contains(&run) || line.contains(&fault) || hog {
            found.push(format!("process {line}"));
        }
    }
    let rt = std::fs::read_to_string("/proc/sys/kernel/sched_rt_runtime_us").unwrap();
    if rt.trim() != rt_runtime_before.trim() {
        found.push(format!(
            "sched_rt_runtime_us is {} (was {})",
            rt.trim(),
            rt_runtime_before.trim()
        ));
    }
    found
}

/// How long `vmlat lab run` may take to inject its fault: past the lab's own bounds on a
/// QEMU guest's boot (60 s) and the master's election.
const FAULT_INJECTED_WITHIN: Duration = Duration::from_secs(150);

/// SIGINT to `vmlat lab run SCENARIO` while its fault is on: it exits 130 and leaves nothing.
fn interrupt_during_fault(name: &str) {
    signal_during_fault(name, rustix::process::Signal::INT);
}

/// Runs scenario `name`, sends `signal` once its fault is in, and checks that `lab run`
/// exits 130 and leaves nothing behind.
fn signal_during_fault(name: &str, signal: rustix::process::Signal) {
    let _lock = lock();
    let rt_before = std::fs::read_to_string("/proc/sys/kernel/sched_rt_runtime_us").unwrap();
    let out = tempfile::tempdir().unwrap();
    let mut child = vmlat()
        .args(["lab", "run", scenario(name).to_str().unwrap(), "-o"])
        .arg(out.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("vmlat starts");
    let pid = child.id();
    let pid_i = rustix::process::Pid::from_raw(pid as i32).unwrap();
    let mut output = OutputLines::of(&mut child);
    // The lab bounds every step of its own (a guest's boot, the master's election, each
    // fault step) and says which one failed: wait longer than those, so that a slow
    // machine is not a failure and a stuck step shows in what the lab printed.
    let started = Instant::now();
    if !output.wait_for("fault injected", FAULT_INJECTED_WITHIN) {
        // Interrupt it anyway: its teardown's messages tell where it stood.
        let _ = rustix::process::kill_process(pid_i, rustix::process::Signal::INT);
        output.read_to_end(Duration::from_secs(60));
        let _ = child.kill();
        panic!(
            "{name}: no \"fault injected\" after {:.0?} (exit {:?}); it printed:\n{}",
            started.elapsed(),
            child.wait().ok().and_then(|s| s.code()),
            output.seen
        );
    }
    std::thread::sleep(Duration::from_millis(500));
    rustix::process::kill_process(pid_i, signal).unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        assert!(
            Instant::now() < deadline,
            "vmlat did not exit after {signal:?}"
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    output.read_to_end(Duration::from_secs(5));
    assert_eq!(status.code(), Some(130), "it printed:\n{}", output.seen);
    let left = leftovers(pid, &rt_before);
    assert!(left.is_empty(), "left behind:\n{}", left.join("\n"));
}

#[test]
fn sigint_during_freezer_leaves_nothing() {
    if have_root("sigint_during_freezer_leaves_nothing") {
        interrupt_during_fault("master-freezer");
    }
}

#[test]
fn sigint_during_io_stall_leaves_nothing() {
    if have_root("sigint_during_io_stall_leaves_nothing") {
        interrupt_during_fault("master-io-stall");
    }
}

#[test]
fn sigint_during_cpu_hog_leaves_nothing() {
    if have_root("sigint_during_cpu_hog_leaves_nothing") {
        interrupt_during_fault("master-cpu-starved");
    }
}

#[test]
fn sigterm_during_a_sigstop_inside_a_guest_leaves_nothing() {
    // SIGTERM, as systemd or a CI runner's timeout sends it, takes the same path as
    // Ctrl-C; the SIGSTOP inside a guest is undone over its control channel, not by a
    // signal of this host.
    if !have_root("sigterm_during_a_sigstop_inside_a_guest_leaves_nothing") {
        return;
    }
    if common::qemu_system().is_some() {
        signal_during_fault("qemu-guest-sigstop", rustix::process::Signal::TERM);
    }
}

#[test]
fn sigint_during_every_other_fault_leaves_nothing() {
    // Every fault kind, in a netns lab and in the QEMU lab: SIGSTOP, the v2 freezer, a
    // disabled bridge port, a firewall, a paused VM, a held NIC, a hog on a guest's vCPU,
    // a guest's disk stalled on the host, a VM held by a drain behind it.
    if !have_root("sigint_during_every_other_fault_leaves_nothing") {
        return;
    }
    for scenario in [
        "master-sigstop",
        "master-freezer-v2",
        "network-drop",
        "backup-firewall",
    ] {
        interrupt_during_fault(scenario);
    }
    if common::qemu_system().is_some() {
        for scenario in [
            "qemu-vm-pause",
            "qemu-vnic-delay",
            "qemu-vcpu-preempted",
            "qemu-host-io",
            "qemu-vm-drain",
        ] {
            interrupt_during_fault(scenario);
        }
    }
}

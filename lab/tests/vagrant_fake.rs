//! The `vagrant` backend's commands, tested with a fake `vagrant` and a fake `virsh`:
//! no box can be downloaded here, so no Vagrant VM runs. The fakes are shell scripts put
//! first on PATH that log their argv and answer `vagrant status`, `vagrant ssh -c` and
//! `virsh` with canned output; the tests assert the exact commands a scenario's lab, fault
//! and finish issue, and that vagrant's failures (a machine not running, ssh failing) come
//! out as errors naming the fix. What the VMs and libvirt really do is not tested here
//! (docs/vagrant.md says how to run the scenarios on real VMs).
//!
//! Root only, like every lab (`Lab::build` needs root); without root each test says why
//! and passes, unless CI is set.

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

use vmlat_lab::fault::Prepared;
use vmlat_lab::scenario::Scenario;
use vmlat_lab::{Lab, LabError};

/// PATH is the process's: one fake at a time.
static PATH_LOCK: Mutex<()> = Mutex::new(());

fn root_or_skip(test: &str) -> bool {
    if rustix::process::geteuid().is_root() {
        return true;
    }
    assert!(
        std::env::var_os("CI").is_none(),
        "{test}: CI is set but we are not root: the lab needs root"
    );
    eprintln!("{test}: skipped: not root (Lab::build needs root)");
    false
}

/// The fake `vagrant`: logs `vagrant ARGS` (tabs between arguments) to `$DIR/log`;
/// `status` answers from `$DIR/status`; `ssh MACHINE -c SCRIPT` fails like ssh when
/// `$DIR/ssh-fails` exists, and otherwise answers by what the script does.
const FAKE_VAGRANT: &str = r#"#!/bin/sh
dir=$(dirname "$0")
{ printf 'vagrant'; for a in "$@"; do printf '\t%s' "$a"; done; echo; } >>"$dir/log"
case "$1" in
status) cat "$dir/status" ;;
ssh)
    machine=$2; script=$4
    if [ -e "$dir/ssh-fails" ]; then
        echo "ssh: connect to host 192.168.121.9 port 22: Connection refused" >&2; exit 255
    fi
    case "$script" in
    *"nohup vmlat record"*)
        if [ "$machine" = lb1 ]; then echo 52:54:00:aa:00:01; else echo 52:54:00:aa:00:02; fi
        ip=192.168.56.11; [ "$machine" = lb2 ] && ip=192.168.56.12
        echo "3: eth1    inet $ip/24 brd 192.168.56.255 scope global eth1" ;;
    "ip -o -4 addr show dev eth1")
        ip=192.168.56.11; [ "$machine" = lb2 ] && ip=192.168.56.12
        echo "3: eth1    inet $ip/24 brd 192.168.56.255 scope global eth1"
        if [ "$machine" = lb1 ]; then echo "3: eth1    inet 192.168.56.100/24 scope global secondary eth1"; fi ;;
    *"tar -C"*) tar -C "$dir/guest-$machine" -cf - bundle ;;
    *) ;;
    esac ;;
*) echo "fake vagrant: unexpected $*" >&2; exit 1 ;;
esac
"#;

/// The fake `virsh`: logs like the fake vagrant; `domstate` answers from `$DIR/domstate`,
/// which `suspend` and `resume` change.
const FAKE_VIRSH: &str = r#"#!/bin/sh
dir=$(dirname "$0")
{ printf 'virsh'; for a in "$@"; do printf '\t%s' "$a"; done; echo; } >>"$dir/log"
case "$1" in
domiflist)
    n=1; [ "$2" = vmlat_lb2 ] && n=2
    echo " Interface   Type      Source            Model    MAC"
    echo "-------------------------------------------------------------------"
    echo " vnet$((n * 2 - 2))       network   vagrant-libvirt   virtio   52:54:00:11:00:0$n"
    echo " vnet$((n * 2 - 1))       network   vmlat-private     virtio   52:54:00:AA:00:0$n" ;;
net-info) printf 'Name:           %s\nBridge:         virbr9\n' "$2" ;;
suspend) echo paused >"$dir/domstate"; echo "Domain '$2' suspended" ;;
resume) echo running >"$dir/domstate"; echo "Domain '$2' resumed" ;;
domstate) cat "$dir/domstate" ;;
*) echo "fake virsh: unexpected $*" >&2; exit 1 ;;
esac
"#;

const RUNNING: &str = "1700000000,lb1,metadata,provider,libvirt\n\
    1700000000,lb1,provider-name,libvirt\n1700000000,lb1,state,running\n\
    1700000000,lb2,provider-name,libvirt\n1700000000,lb2,state,running\n";

/// A fake's directory: the two scripts, their canned state, the guests' bundles to fetch.
struct Fake {
    dir: PathBuf,
    old_path: std::ffi::OsString,
    _lock: std::sync::MutexGuard<'static, ()>,
}

impl Fake {
    fn new(test: &str) -> Fake {
        use std::os::unix::fs::PermissionsExt;
        let lock = PATH_LOCK.lock().unwrap_or_else(|e| e.into_inner());
        let dir = std::env::temp_dir().join(format!("vmlat-{test}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        for (name, text) in [("vagrant", FAKE_VAGRANT), ("virsh", FAKE_VIRSH)] {
            let path = dir.join(name);
            std::fs::write(&path, text).unwrap();
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
        }
        std::fs::write(dir.join("status"), RUNNING).unwrap();
        std::fs::write(dir.join("domstate"), "running\n").unwrap();
        for m in ["lb1", "lb2"] {
            let bundle = dir.join(format!("guest-{m}/bundle"));
            std::fs::create_dir_all(&bundle).unwrap();
            std::fs::write(
                bundle.join("manifest.json"),
                format!("{{\"host\":\"{m}\"}}"),
            )
            .unwrap();
        }
        let old_path = std::env::var_os("PATH").unwrap_or_default();
        let mut paths = vec![dir.clone()];
        paths.extend(std::env::split_paths(&old_path));
        std::env::set_var("PATH", std::env::join_paths(paths).unwrap());
        Fake {
            dir,
            old_path,
            _lock: lock,
        }
    }

    /// The commands the fakes ran, one per line, arguments separated by tabs.
    fn log(&self) -> Vec<String> {
        std::fs::read_to_string(self.dir.join("log"))
            .unwrap_or_default()
            .lines()
            .map(str::to_owned)
            .collect()
    }
}

impl Drop for Fake {
    fn drop(&mut self) {
        std::env::set_var("PATH", &self.old_path);
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn scenario(name: &str) -> Scenario {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../scenarios/vagrant")
        .join(format!("{name}.toml"));
    Scenario::load(&path).unwrap_or_else(|e| panic!("{e}"))
}

/// Runs a scenario's lab part as the runner does: build, wait for the master, inject,
/// clear, finish every machine, tear down. Returns the fakes' log.
fn run_lab(fake: &Fake, name: &str) -> Vec<String> {
    let scenario = scenario(name);
    let mut spec = scenario.lab.clone();
    let fault = scenario.fault.as_ref().expect("a fault");
    let prepared = Prepared::new(fault, &mut spec).expect("prepare");
    let lab = Lab::build(&spec).expect("build");
    let run_id = lab.run_id().to_owned();
    assert_eq!(lab.bridge_capture_point(), "virbr9");
    let lb1 = lab.router("lb1").unwrap();
    assert_eq!(lb1.capture_point(), "eth1");
    assert_eq!(lb1.bridge_port_capture_point(), "vnet1");
    assert_eq!(lb1.addr().to_string(), "192.168.56.11");
    let lb2 = lab.router("lb2").unwrap();
    assert_eq!(lb2.bridge_port_capture_point(), "vnet3");
    assert_eq!(lab.vip().to_string(), "192.168.56.100");
    lab.wait_for_master("lb1", Duration::from_secs(5))
        .expect("lb1 holds the VIP, lb2 not");
    let guard = prepared.inject(&lab).expect("inject");
    guard.clear().expect("clear");
    let out = fake.dir.join("out");
    std::fs::create_dir_all(&out).unwrap();
    for r in lab.routers() {
        let finished = r.machine().finish(&out).expect("finish");
        let bundle = finished.bundle.expect("a VM records itself");
        assert_eq!(bundle, out.join(format!("bundle-{}", r.name())));
        let manifest = std::fs::read_to_string(bundle.join("manifest.json")).unwrap();
        assert!(manifest.contains(r.name()), "{manifest}");
    }
    lab.teardown().expect("teardown");
    prepared.finish().expect("nothing around the lab");
    fake.log()
        .into_iter()
        .map(|l| l.replace(&run_id, "RUN_ID"))
        .collect()
}

/// A command of the log with its `vagrant ssh -c` script cut to its start, which names
/// what it does.
fn short(line: &str) -> String {
    match line.split_once("\t-c\t") {
        Some((head, script)) => {
            let cut: String = script.chars().take(48).collect();
            format!("{head}\t-c\t{cut}")
        }
        None => line.to_owned(),
    }
}

const START: &str = "sudo sh -c 'set -e; d=/var/tmp/RUN_ID; rm -rf $d;";
const IP: &str = "ip -o -4 addr show dev eth1";
const FINISH: &str = "sudo sh -c 'd=/var/tmp/RUN_ID; p=$(cat $d/record.p";
const CLEANUP: &str = "sudo sh -c 'p=$(cat /var/tmp/RUN_ID/record.pid 2>/";

fn ssh(machine: &str, script: &str) -> String {
    short(&format!("vagrant\tssh\t{machine}\t-c\t{script}"))
}

/// Build and finish of both machines, around `fault`'s commands.
fn expected(fault: &[String]) -> Vec<String> {
    let mut want = vec!["vagrant\tstatus\t--machine-readable".to_owned()];
    for (m, net) in [("lb1", "vmlat-private"), ("lb2", "vmlat-private")] {
        want.push(ssh(m, START));
        want.push(format!("virsh\tdomiflist\tvmlat_{m}"));
        want.push(format!("virsh\tnet-info\t{net}"));
    }
    want.push(ssh("lb1", IP));
    want.push(ssh("lb2", IP));
    want.extend_from_slice(fault);
    want.push(ssh("lb1", FINISH));
    want.push(ssh("lb2", FINISH));
    want.push(ssh("lb1", CLEANUP));
    want.push(ssh("lb2", CLEANUP));
    want
}

#[test]
fn with_a_fake_vagrant_a_sigstop_scenario_issues_these_commands() {
    let test = "with_a_fake_vagrant_a_sigstop_scenario_issues_these_commands";
    if !root_or_skip(test) {
        return;
    }
    let fake = Fake::new(test);
    let log = run_lab(&fake, "lb1-sigstop");
    let got: Vec<String> = log.iter().map(|l| short(l)).collect();
    let want = expected(&[
        ssh(
            "lb1",
            "sudo sh -c 'p=$(pgrep -P $(pgrep -o -x keepalived) -x keepalived",
        ),
        ssh("lb1", "sudo sh -c 'pkill -CONT -x keepalived'"),
    ]);
    assert_eq!(got, want, "\nfull log:\n{}", log.join("\n"));
    // The recorder the lab starts in each VM: on eth1, keepalived's processes, in the
    // run's own dir, in the background so that `vagrant ssh` returns.
    let start = log.iter().find(|l| l.contains("nohup")).unwrap();
    assert!(
        start.contains(
            "nohup vmlat record -o $d/bundle -i eth1 --comm \"keepalived*\" >$d/record.log 2>&1 </dev/null &"
        ),
        "{start}"
    );
}

#[test]
fn with_a_fake_vagrant_a_vm_pause_scenario_suspends_and_resumes_with_virsh() {
    let test = "with_a_fake_vagrant_a_vm_pause_scenario_suspends_and_resumes_with_virsh";
    if !root_or_skip(test) {
        return;
    }
    let fake = Fake::new(test);
    let log = run_lab(&fake, "lb1-vm-pause");
    let got: Vec<String> = log.iter().map(|l| short(l)).collect();
    let want = expected(&[
        "virsh\tsuspend\tvmlat_lb1".to_owned(),
        "virsh\tdomstate\tvmlat_lb1".to_owned(),
        "virsh\tresume\tvmlat_lb1".to_owned(),
    ]);
    assert_eq!(got, want, "\nfull log:\n{}", log.join("\n"));
    assert_eq!(
        std::fs::read_to_string(fake.dir.join("domstate"))
            .unwrap()
            .trim(),
        "running",
        "the guard resumed the VM"
    );
}

#[test]
fn with_a_fake_vagrant_a_stopped_machine_or_failing_ssh_is_a_clear_error() {
    let test = "with_a_fake_vagrant_a_stopped_machine_or_failing_ssh_is_a_clear_error";
    if !root_or_skip(test) {
        return;
    }
    let fake = Fake::new(test);
    let spec = scenario("lb1-sigstop").lab;

    std::fs::write(
        fake.dir.join("status"),
        // As vagrant-libvirt says it, with a human-readable state after it.
        RUNNING.replace(
            "lb2,state,running",
            "lb2,state,not_created\n1700000000,lb2,state-human-short,not created",
        ),
    )
    .unwrap();
    let e = Lab::build(&spec).expect_err("lb2 is not created");
    assert!(matches!(e, LabError::Vagrant { .. }), "{e:?}");
    assert_eq!(
        e.to_string(),
        "Vagrant machine lb2: is not created, not running: start it with `vagrant up lb2` (docs/vagrant.md)"
    );

    std::fs::write(
        fake.dir.join("status"),
        RUNNING.replace("lb1,provider-name,libvirt", "lb1,provider-name,virtualbox"),
    )
    .unwrap();
    let e = Lab::build(&spec).expect_err("VirtualBox");
    assert!(
        e.to_string()
            .contains("runs under virtualbox: the vagrant backend needs the libvirt provider"),
        "{e}"
    );

    // cpu-hog moves the VM's vCPU threads: it needs its QEMU process, from libvirt.
    std::fs::write(fake.dir.join("status"), RUNNING).unwrap();
    let hog = scenario("lb1-vcpu-preempted");
    let mut hog_spec = hog.lab.clone();
    let prepared = Prepared::new(hog.fault.as_ref().unwrap(), &mut hog_spec).expect("prepare");
    let lab = Lab::build(&hog_spec).expect("build");
    let e = prepared
        .inject(&lab)
        .expect_err("no libvirt pid file for a fake VM");
    assert_eq!(
        e.to_string(),
        "Vagrant machine lb1: its QEMU process is not known: /run/libvirt/qemu/vmlat_lb1.pid \
         could not be read (is the VM run by this host's libvirt, qemu:///system?)"
    );
    lab.teardown().expect("teardown");

    std::fs::write(fake.dir.join("ssh-fails"), "").unwrap();
    let e = Lab::build(&spec).expect_err("ssh fails");
    let text = e.to_string();
    assert!(
        text.starts_with("Vagrant machine lb1: ssh failed"),
        "{text}"
    );
    assert!(text.contains("Connection refused"), "{text}");
    assert!(
        text.ends_with("check that `vagrant ssh lb1` works"),
        "{text}"
    );
    let log = fake.log();
    assert_eq!(
        log.iter()
            .filter(|l| l.starts_with("vagrant\tstatus"))
            .count(),
        4,
        "{log:?}"
    );
}

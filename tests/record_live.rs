//! `vmlat record` for real: a namespace lab running real keepalived, recorded with
//! libpcap and perf; a recorder killed with SIGKILL; a full disk; a missing tracefs;
//! and the errors a user meets first. Needs root (see `common::have_root`).

mod common;

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use common::{
    assert_private, have_root, inspect, lab_with_master, packet_times, run_vmlat, stderr, vmlat,
};
use vmlat_bundle::{read_bundle_events, ClockAnchor, Record, TaskKind};

const SYS_SENDTO: i64 = 44;
const SYS_SENDMSG: i64 = 46;

/// A temporary directory of root's with `mode`.
fn tempdir_with_mode(mode: u32) -> tempfile::TempDir {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(mode)).unwrap();
    dir
}

/// Converts CLOCK_REALTIME to CLOCK_MONOTONIC with the anchor nearest in time.
fn to_monotonic(anchors: &[ClockAnchor], realtime_ns: i64) -> u64 {
    let a = anchors
        .iter()
        .min_by_key(|a| (a.realtime_ns - realtime_ns).abs())
        .expect("anchors");
    (a.monotonic_ns as i64 + (realtime_ns - a.realtime_ns)) as u64
}

#[test]
fn records_keepalived_adverts_scheduling_syscalls_and_disks_in_a_namespace_lab() {
    if !have_root("records_keepalived_in_a_namespace_lab") {
        return;
    }
    // Pinned to CPU 0: this test counts sched_wakeup records (see `lab_with_master`).
    let lab = lab_with_master(true);
    let vr1 = lab.router("vr1").unwrap();
    let vrrp_pid = lab.vrrp_pid("vr1").unwrap() as i32;
    let out_dir = tempfile::tempdir().unwrap();
    let bundle = out_dir.path().join("B");

    let out = run_vmlat(&[
        "record",
        "-o",
        bundle.to_str().unwrap(),
        "-i",
        &vr1.capture_point(),
        "-i",
        &vr1.bridge_port_capture_point(),
        "--comm",
        "keepalived",
        "--duration",
        "6",
    ]);
    assert!(out.status.success(), "record failed: {}", stderr(&out));
    assert_private(&bundle);

    // At least 5 adverts, in a pcap tcpdump reads; the bridge port (an interface that
    // exists only inside the switch namespace) saw the same adverts.
    let inv = inspect(&bundle);
    assert_eq!(inv["captures"][1]["name"], vr1.bridge_port_capture_point());
    let on_bridge = inv["captures"][1]["packets"].as_u64().unwrap();
    assert!(
        on_bridge >= 5,
        "only {on_bridge} adverts on the bridge port"
    );
    let pcap = bundle.join(inv["captures"][0]["file"].as_str().unwrap());
    let adverts = packet_times(&pcap);
    assert!(adverts.len() >= 5, "only {} adverts in 6 s", adverts.len());
    let tcpdump = Command::new("tcpdump")
        .args(["-nn", "-r", pcap.to_str().unwrap()])
        .output()
        .expect("tcpdump runs");
    assert!(
        tcpdump.status.success(),
        "tcpdump -r failed: {}",
        stderr(&tcpdump)
    );
    let lines = String::from_utf8_lossy(&tcpdump.stdout);
    assert_eq!(
        lines.lines().filter(|l| l.contains("VRRP")).count(),
        adverts.len()
    );

    // Nothing lost and nothing out of order. A counter sample skipped because the
    // sampler thread ran late (sampler_overruns) hides no record, and says how loaded
    // the machine was, not how vmlat records: it is only printed.
    for (name, value) in inv["losses"].as_object().unwrap() {
        if name == "sampler_overruns" {
            eprintln!("sampler_overruns: {value}");
        } else {
            assert_eq!(value, 0, "loss counter {name} is not zero");
        }
    }
    assert_eq!(inv["torn_tail"], false);

    let mut anchors = Vec::new();
    let mut switches_out = 0;
    let mut wakeups = 0;
    let mut sends: Vec<(u64, Option<u64>)> = Vec::new();
    let mut disk_times: BTreeMap<String, Vec<u64>> = BTreeMap::new();
    let mut previous_t = 0;
    for record in read_bundle_events(&bundle).unwrap() {
        let record = record.unwrap();
        assert!(
            record.time() >= previous_t,
            "events out of order: {record:?}"
        );
        previous_t = record.time();
        match record {
            Record::Clock(a) => anchors.push(a),
            Record::SchedSwitch { prev_tid, .. } if prev_tid == vrrp_pid => switches_out += 1,
            Record::SchedWakeup { tid, .. } if tid == vrrp_pid => wakeups += 1,
            Record::SyscallEnter { tid, nr, t, .. }
                if tid == vrrp_pid && (nr == SYS_SENDTO || nr == SYS_SENDMSG) =>
            {
                sends.push((t, None))
            }
            Record::SyscallExit {
                tid, nr, t, ret, ..
            } if tid == vrrp_pid && (nr == SYS_SENDTO || nr == SYS_SENDMSG) => {
                let open = sends.last_mut().expect("an exit follows its enter");
                assert!(open.1.is_none(), "two exits for one send");
                assert!(ret > 0, "sendmsg failed: {ret}");
                open.1 = Some(t);
            }
            Record::Disk(d) => disk_times.entry(d.device).or_default().push(d.t),
            _ => {}
        }
    }
    assert!(
        switches_out >= 5,
        "VRRP process {vrrp_pid} switched out only {switches_out} times"
    );
    assert!(
        wakeups >= 5,
        "VRRP process {vrrp_pid} woken only {wakeups} times"
    );

    // Each advert on the wire is preceded by the VRRP process's send syscall, which
    // also returned.
    for &advert in &adverts {
        let seen = to_monotonic(&anchors, advert);
        let send = sends.iter().rev().find(|(enter, _)| *enter <= seen);
        let (enter, exit) = send.unwrap_or_else(|| panic!("no send before the advert at {seen}"));
        assert!(
            seen - enter < 50_000_000,
            "advert {} ms after its send",
            (seen - enter) / 1_000_000
        );
        assert!(exit.is_some(), "the send at {enter} never returned");
    }

    // Disk samples every 100 ms for every device.
    assert!(!disk_times.is_empty(), "no disk samples");
    for (device, times) in &disk_times {
        assert!(
            times.len() >= 50,
            "{device}: only {} samples in 6 s",
            times.len()
        );
        let mut steps: Vec<u64> = times.windows(2).map(|w| w[1] - w[0]).collect();
        steps.sort_unstable();
        let median = steps[steps.len() / 2];
        assert!(
            (90_000_000..=110_000_000).contains(&median),
            "{device}: median sampling step {median} ns"
        );
    }
    lab.teardown().expect("lab tears down");
}

#[test]
fn a_recorder_killed_with_sigkill_leaves_a_bundle_that_reads_back() {
    if !have_root("a_recorder_killed_with_sigkill_leaves_a_bundle_that_reads_back") {
        return;
    }
    let lab = lab_with_master(true);
    let vr1 = lab.router("vr1").unwrap();
    let out_dir = tempfile::tempdir().unwrap();
    let bundle = out_dir.path().join("killed");
    let mut child = vmlat()
        .args([
            "record",
            "-o",
            bundle.to_str().unwrap(),
            "-i",
            &vr1.capture_point(),
        ])
        .args(["--comm", "keepalived"])
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(3500));
    let killed_at = monotonic_ns();
    child.kill().unwrap();
    child.wait().unwrap();

    let inv = inspect(&bundle);
    assert_eq!(
        inv["status"]["state"], "recording",
        "a killed recorder never said stop"
    );
    let counts = &inv["counts"];
    assert!(counts["packets"].as_u64().unwrap() >= 2, "{counts}");
    assert!(counts["sched_switch"].as_u64().unwrap() > 0, "{counts}");
    assert!(counts["disk_samples"].as_u64().unwrap() >= 10, "{counts}");
    // Every record up to the last flush decodes, and the last flush was at most a
    // second (FLUSH_EVERY) before the kill, plus the sorter's wait for the slowest
    // collector.
    let last = read_bundle_events(&bundle)
        .unwrap()
        .map(|r| r.expect("every record before the kill decodes").time())
        .max()
        .unwrap();
    let lost_ms = killed_at.saturating_sub(last) / 1_000_000;
    assert!(
        lost_ms <= 1_500,
        "the bundle ends {lost_ms} ms before the kill: more than the last second was lost"
    );
    // It analyzes as it is (exit 0), and a copy torn inside a chunk, as a copy taken
    // while the recorder wrote, is read up to the tear and says so.
    let analyzed = run_vmlat(&["analyze", bundle.to_str().unwrap()]);
    assert_eq!(analyzed.status.code(), Some(0), "{}", stderr(&analyzed));
    let torn = out_dir.path().join("torn");
    copy_dir(&bundle, &torn);
    let events = torn.join(vmlat_bundle::EVENTS_FILE);
    let len = std::fs::metadata(&events).unwrap().len();
    std::fs::OpenOptions::new()
        .write(true)
        .open(&events)
        .unwrap()
        .set_len(len - 5)
        .unwrap();
    let analyzed = run_vmlat(&["analyze", torn.to_str().unwrap()]);
    assert_eq!(analyzed.status.code(), Some(0), "{}", stderr(&analyzed));
    let text = String::from_utf8_lossy(&analyzed.stdout);
    assert!(
        text.contains("its event stream ends torn (the recorder was killed): read up to"),
        "{text}"
    );
    lab.teardown().expect("lab tears down");
}

/// Copies a bundle: its files and its `pcap/` directory.
fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &to.join(entry.file_name()));
        } else {
            std::fs::copy(entry.path(), to.join(entry.file_name())).unwrap();
        }
    }
}

/// CLOCK_MONOTONIC, the clock of a bundle's records.
fn monotonic_ns() -> u64 {
    let now = rustix::time::clock_gettime(rustix::time::ClockId::Monotonic);
    now.tv_sec as u64 * 1_000_000_000 + now.tv_nsec as u64
}

#[test]
fn a_full_disk_stops_the_recording_with_a_clear_error_and_keeps_what_was_written() {
    if !have_root("a_full_disk_stops_the_recording") {
        return;
    }
    // A 1.5 MiB tmpfs in a private mount namespace: room for the first chunk (at most
    // 1 MiB), filled within seconds by every context switch on the machine and disk
    // samples every 10 ms.
    let vmlat = env!("CARGO_BIN_EXE_vmlat");
    let script = format!(
        "set -e; d=$(mktemp -d); mount -t tmpfs -o size=1536k vmlat-full $d; \
         {vmlat} record -o $d/b --duration 60 --disk-interval 10 >/dev/null 2>$d/../full.err && echo rc=0 || echo rc=$?; \
         cat $d/../full.err; {vmlat} inspect $d/b --json; umount $d; rmdir $d"
    );
    let out = Command::new("unshare")
        .args(["--mount", "--propagation", "private", "sh", "-c", &script])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.starts_with("rc=2"),
        "record did not exit 2: {text}{}",
        stderr(&out)
    );
    assert!(text.contains("disk full"), "no disk-full message: {text}");
    let json_start = text.find('{').expect("inspect printed JSON");
    let inv: serde_json::Value = serde_json::from_str(&text[json_start..]).expect("JSON");
    assert!(
        inv["counts"]["sched_switch"].as_u64().unwrap() > 0,
        "nothing kept: {inv}"
    );
}

#[test]
fn copies_keepalived_journal_lines_where_the_machine_has_a_journal() {
    if !have_root("copies_keepalived_journal_lines") {
        return;
    }
    // A real systemd-journald, in a private mount namespace with its own /run, so the
    // machine's journal (if any) is neither seen nor touched. keepalived's line goes in
    // through systemd-cat under its syslog identifier, as its syslog lines would.
    let journald = Path::new("/lib/systemd/systemd-journald");
    if !journald.exists() {
        assert!(
            std::env::var_os("CI").is_none(),
            "systemd-journald missing in CI: scripts/setup.sh installs systemd"
        );
        eprintln!(
            "skipped: no {} (apt-get install systemd)",
            journald.display()
        );
        return;
    }
    let vmlat = env!("CARGO_BIN_EXE_vmlat");
    let script = format!(
        "set -e; mount -t tmpfs vmlat-run /run; mkdir -p /run/systemd/journal; d=$(mktemp -d); \
         {journald} & j=$!; \
         for i in $(seq 50); do test -S /run/systemd/journal/stdout && break; sleep 0.1; done; \
         {vmlat} record -o $d/with --duration 2 >/dev/null & r=$!; sleep 0.7; \
         echo '(VI_1) Entering MASTER STATE' | systemd-cat -t Keepalived_vrrp; \
         echo 'not keepalived' | systemd-cat -t cron; \
         wait $r; kill $j; wait $j || true; rm -rf /run/systemd/journal /run/log; \
         {vmlat} record -o $d/without --duration 1 >/dev/null; \
         echo ==journal; cat $d/with/keepalived-journal.json; \
         echo ==with; cat $d/with/manifest.json; echo; echo ==without; cat $d/without/manifest.json; \
         rm -rf $d",
        journald = journald.display()
    );
    let out = Command::new("unshare")
        .args(["--mount", "--propagation", "private", "sh", "-c", &script])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let text = String::from_utf8_lossy(&out.stdout);
    let part = |name: &str| {
        let from = text.find(&format!("=={name}\n")).expect(name) + name.len() + 3;
        let rest = &text[from..];
        rest[..rest.find("\n==").unwrap_or(rest.len())].to_string()
    };
    let journal = part("journal");
    assert_eq!(journal.lines().count(), 1, "{journal}");
    assert!(journal.contains("Entering MASTER STATE"), "{journal}");
    let copy = |name: &str| {
        let m: serde_json::Value = serde_json::from_str(part(name).trim()).expect(name);
        m["recorded"]["keepalived_journal"].clone()
    };
    assert_eq!(
        copy("with"),
        serde_json::json!({"status": "copied", "entries": 1, "truncated": false})
    );
    let without = copy("without");
    assert_eq!(without["status"], "no-journal", "{without}");
    assert!(without["reason"].as_str().unwrap().contains("no journald"));
}

#[test]
fn drops_to_the_user_after_opening_and_records_on_as_that_user() {
    if !have_root("drops_to_the_user_after_opening") {
        return;
    }
    let lab = lab_with_master(false);
    let vr1 = lab.router("vr1").unwrap();
    // A directory `nobody` can reach: every directory above a bundle must be searchable
    // by the user it is handed to.
    let dir = tempfile::Builder::new()
        .prefix("vmlat-user")
        .tempdir()
        .unwrap();
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    let bundle = dir.path().join("b");
    let child = vmlat()
        .args([
            "record",
            "-o",
            bundle.to_str().unwrap(),
            "-i",
            &vr1.capture_point(),
        ])
        .args([
            "--comm",
            "keepalived",
            "--duration",
            "4",
            "--user",
            "nobody",
        ])
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(2500));
    let status = std::fs::read_to_string(format!("/proc/{}/status", child.id())).unwrap();
    let out = child.wait_with_output().unwrap();
    lab.teardown().expect("lab tears down");
    assert!(out.status.success(), "{}", stderr(&out));
    let uid = status
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))
        .expect("a Uid line");
    assert!(
        uid.split_whitespace().all(|u| u == "65534"),
        "the recorder still ran as uid {uid} mid-recording"
    );
    {
        use std::os::unix::fs::MetadataExt;
        assert_eq!(std::fs::metadata(&bundle).unwrap().uid(), 65534);
        assert_eq!(
            std::fs::metadata(bundle.join("manifest.json"))
                .unwrap()
                .uid(),
            65534
        );
    }
    let inv = inspect(&bundle);
    assert!(
        inv["captures"][0]["packets"].as_u64().unwrap() >= 2,
        "{inv}"
    );
    assert!(inv["counts"]["sched_switch"].as_u64().unwrap() > 0, "{inv}");
    let manifest = vmlat_bundle::Manifest::load(&bundle).unwrap();
    assert_eq!(
        manifest.recorded.user.as_deref(),
        Some("nobody (uid 65534, gid 65534)")
    );
    assert!(
        matches!(manifest.status, vmlat_bundle::Status::Complete),
        "{:?}",
        manifest.status
    );
}

#[test]
fn a_user_that_cannot_reach_the_bundle_is_a_clear_error_and_an_unknown_one_too() {
    if !have_root("a_user_that_cannot_reach_the_bundle") {
        return;
    }
    // A directory of root's, 0700: nobody cannot get to a bundle inside it.
    let dir = tempdir_with_mode(0o700);
    let bundle = dir.path().join("b");
    let b = bundle.to_str().unwrap();
    let out = run_vmlat(&["record", "-o", b, "--duration", "2", "--user", "nobody"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(err.contains("nobody cannot write the bundle"), "{err}");
    assert!(err.contains("must be searchable by nobody"), "{err}");
    let out = run_vmlat(&["record", "-o", b, "--force", "--user", "no-such-user-vmlat"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("--user no-such-user-vmlat: no such user"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn a_storm_through_a_tiny_perf_ring_is_counted_never_hidden() {
    if !have_root("a_storm_through_a_tiny_perf_ring") {
        return;
    }
    // One page per CPU under a context-switch storm: the kernel overwrites what the
    // collector has not read, and says how much (PERF_RECORD_LOST).
    let mut storm = Command::new("stress-ng")
        .args(["--switch", "2", "--timeout", "6", "--quiet"])
        .spawn()
        .expect("stress-ng runs (scripts/setup.sh installs it)");
    std::thread::sleep(Duration::from_millis(500));
    let dir = tempfile::tempdir().unwrap();
    let bundle = dir.path().join("b");
    let out = run_vmlat(&[
        "record",
        "-o",
        bundle.to_str().unwrap(),
        "--perf-ring-kib",
        "4",
        "--duration",
        "3",
    ]);
    let _ = storm.kill();
    let _ = storm.wait();
    assert!(out.status.success(), "{}", stderr(&out));
    let manifest = vmlat_bundle::Manifest::load(&bundle).unwrap();
    let lost = manifest.losses.perf_lost;
    assert!(
        lost > 0,
        "nothing lost through a 4 KiB ring: {:?}",
        manifest.losses
    );
    let said = stderr(&out);
    assert!(
        said.contains(&format!("perf_lost {lost}")),
        "the summary hides the loss: {said}"
    );
    let analysis = run_vmlat(&["analyze", "--json", bundle.to_str().unwrap()]);
    let json: serde_json::Value = serde_json::from_slice(&analysis.stdout).unwrap();
    assert_eq!(json["bundles"][0]["losses"]["perf_lost"], lost, "{json}");
    let bad = run_vmlat(&[
        "record",
        "-o",
        bundle.to_str().unwrap(),
        "--perf-ring-kib",
        "6",
    ]);
    assert_eq!(bad.status.code(), Some(2));
    assert!(
        stderr(&bad).contains("a power of two of KiB"),
        "{}",
        stderr(&bad)
    );
}

#[test]
fn mounts_tracefs_itself_when_it_is_not_mounted() {
    if !have_root("mounts_tracefs_itself_when_it_is_not_mounted") {
        return;
    }
    let vmlat = env!("CARGO_BIN_EXE_vmlat");
    let script = format!(
        "umount /sys/kernel/tracing 2>/dev/null; umount /sys/kernel/debug/tracing 2>/dev/null; \
         test ! -e /sys/kernel/tracing/events || exit 99; \
         d=$(mktemp -d); {vmlat} record -o $d/b --duration 1 && test -e /sys/kernel/tracing/events; \
         rc=$?; rm -rf $d; exit $rc"
    );
    let out = Command::new("unshare")
        .args(["--mount", "--propagation", "private", "sh", "-c", &script])
        .output()
        .unwrap();
    assert_ne!(
        out.status.code(),
        Some(99),
        "could not unmount tracefs for the test"
    );
    assert!(
        out.status.success(),
        "record without tracefs failed: {}",
        stderr(&out)
    );
}

#[test]
fn start_errors_name_the_problem_and_the_fix_and_exit_2() {
    if !have_root("start_errors_name_the_problem_and_the_fix_and_exit_2") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let existing = dir.path().to_str().unwrap();
    let fresh = dir.path().join("b");
    let fresh = fresh.to_str().unwrap();
    let cases: [(&[&str], &str); 4] = [
        (&["record", "-o", existing, "--duration", "1"], "--force"),
        (
            &["record", "-o", fresh, "-i", "nosuchif0", "--duration", "1"],
            "unknown interface 'nosuchif0'",
        ),
        (
            &[
                "record",
                "-o",
                fresh,
                "-i",
                "eth0@nosuchns",
                "--duration",
                "1",
            ],
            "ip netns list",
        ),
        (
            &["record", "-o", fresh, "--heartbeat", "tcp:80"],
            "udp:PORT",
        ),
    ];
    for (args, expected) in cases {
        let _ = std::fs::remove_dir_all(fresh);
        let out = run_vmlat(args);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", stderr(&out));
        assert!(
            stderr(&out).contains(expected),
            "{args:?}: {}",
            stderr(&out)
        );
        assert!(!stderr(&out).contains("panicked"), "{args:?}");
    }

    // Without privileges: as nobody.
    let _ = std::fs::remove_dir_all(fresh);
    let out = Command::new("setpriv")
        .args([
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            "--inh-caps=-all",
        ])
        .arg(env!("CARGO_BIN_EXE_vmlat"))
        .args([
            "record",
            "-o",
            "/tmp/vmlat-nobody-test",
            "-i",
            "lo",
            "--duration",
            "1",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("needs root"), "{}", stderr(&out));
    assert!(stderr(&out).contains("CAP_PERFMON"), "{}", stderr(&out));

    // Root's uid with some of the capabilities only: the missing one is named, and the
    // ones it has are not.
    for (bounding, capture, named, not_named) in [
        ("-all,+perfmon", "lo", "CAP_NET_RAW", "CAP_PERFMON"),
        (
            "-all,+perfmon,+net_raw",
            "lo@vmlat-no-such-netns",
            "CAP_SYS_ADMIN (for IFACE@NETNS)",
            "CAP_NET_RAW",
        ),
    ] {
        let _ = std::fs::remove_dir_all(fresh);
        let out = Command::new("setpriv")
            .arg(format!("--bounding-set={bounding}"))
            .arg(env!("CARGO_BIN_EXE_vmlat"))
            .args(["record", "-o", fresh, "-i", capture, "--duration", "1"])
            .output()
            .unwrap();
        let said = stderr(&out);
        assert_eq!(out.status.code(), Some(2), "{bounding}: {said}");
        assert!(said.contains(named), "{bounding}: {said}");
        assert!(
            !said.contains(&format!("capabilities {not_named}")),
            "{bounding}: {said}"
        );
    }
}

#[test]
fn role_host_finds_a_real_qemu_its_guest_name_tap_mac_and_vcpu_threads() {
    if !have_root("role_host_finds_a_real_qemu") {
        return;
    }
    let Some(qemu_bin) = common::qemu_system() else {
        return;
    };
    // A real QEMU (TCG), its vCPU created but held before the first instruction (-S):
    // no guest needs to boot for the host to find it, name it and sample its threads.
    let tap = format!("vmlat-t{}", std::process::id() % 100_000);
    let mut qemu = Command::new(qemu_bin)
        .args([
            "-name",
            "guest=vmlat-probe,debug-threads=on",
            "-accel",
            "tcg",
            "-m",
            "64",
        ])
        .args(["-display", "none", "-nodefaults", "-S", "-netdev"])
        .arg(format!("tap,id=n0,ifname={tap},script=no,downscript=no"))
        .args(["-device", "virtio-net-pci,netdev=n0,mac=52:54:00:76:6D:01"])
        .spawn()
        .unwrap();
    let up = (0..50).any(|_| {
        std::thread::sleep(Duration::from_millis(100));
        Command::new("ip")
            .args(["link", "set", &tap, "up"])
            .status()
            .is_ok_and(|s| s.success())
    });
    let dir = tempfile::tempdir().unwrap();
    let bundle = dir.path().join("host");
    let out = up.then(|| {
        run_vmlat(&[
            "record",
            "-o",
            bundle.to_str().unwrap(),
            "--role",
            "host",
            "-i",
            "tap:vmlat-probe",
            "--clock-probes",
            "--duration",
            "2",
        ])
    });
    qemu.kill().unwrap();
    qemu.wait().unwrap();
    assert!(up, "QEMU did not create its tap {tap}");
    let out = out.unwrap();
    assert!(out.status.success(), "{}", stderr(&out));

    let manifest = vmlat_bundle::Manifest::load(&bundle).unwrap();
    let vm = manifest
        .recorded
        .vms
        .iter()
        .find(|v| v.pid == qemu.id() as i32)
        .unwrap_or_else(|| panic!("QEMU not in {:#?}", manifest.recorded.vms));
    assert_eq!(vm.name.as_deref(), Some("vmlat-probe"));
    assert_eq!(vm.taps.len(), 1, "{vm:#?}");
    assert_eq!(vm.taps[0].ifname, tap);
    assert_eq!(vm.taps[0].netdev.as_deref(), Some("n0"));
    assert_eq!(vm.taps[0].mac.as_deref(), Some("52:54:00:76:6d:01"));
    // TCG has no KVM TSC offsets; that is said, not left out silently.
    assert!(vm.tsc_offsets.is_empty());
    if !Path::new("/sys/kernel/debug/kvm").is_dir() {
        assert!(
            manifest
                .recorded
                .unsupported
                .iter()
                .any(|u| u.starts_with("KVM TSC offsets: no /sys/kernel/debug/kvm")),
            "{:?}",
            manifest.recorded.unsupported
        );
    }
    // The hypervisor's tracepoints are recorded where the kernel has them, and said
    // missing where it does not: never left out silently.
    for tp in ["kvm:kvm_exit", "kvm:kvm_entry"] {
        let opened = manifest.recorded.tracepoints.iter().any(|t| t == tp);
        let missing = manifest
            .recorded
            .unsupported
            .iter()
            .any(|u| u.starts_with(&format!("{tp}: ")));
        assert_eq!(
            opened,
            Path::new("/sys/kernel/tracing/events/kvm").is_dir(),
            "{tp}: {:?}",
            manifest.recorded
        );
        assert!(opened != missing, "{tp}: {:?}", manifest.recorded);
    }
    let capture = &manifest.recorded.captures[0];
    assert_eq!(
        (capture.name.as_str(), capture.interface.as_str()),
        ("tap:vmlat-probe", tap.as_str())
    );
    assert!(capture.mac.is_some(), "{capture:#?}");
    // One clock probe a second went out of the tap, and the capture saw them go (all
    // but one sent as the recording stopped, perhaps); nothing else crossed the tap.
    let sent = capture.probes_sent.expect("probes sent");
    assert!((2..=3).contains(&sent), "{capture:#?}");
    let seen = packet_times(&bundle.join(&capture.file)).len() as u64;
    assert!(
        seen <= sent && seen + 1 >= sent,
        "{seen} of {sent} probes captured"
    );

    let samples: Vec<_> = read_bundle_events(&bundle)
        .unwrap()
        .filter_map(|r| match r.unwrap() {
            Record::Task(t) if t.tgid == qemu.id() as i32 => Some(t),
            _ => None,
        })
        .collect();
    let vcpus: Vec<_> = samples
        .iter()
        .filter(|t| t.kind == TaskKind::QemuVcpu)
        .collect();
    assert!(vcpus.len() >= 10, "only {} vCPU samples", vcpus.len());
    assert!(vcpus.iter().all(|t| t.comm == "CPU 0/TCG"), "{vcpus:#?}");
    assert!(samples
        .iter()
        .any(|t| t.kind == TaskKind::QemuOther && t.comm == "qemu-system-x86"));
    assert_eq!(inspect(&bundle)["role"], "host");
}

#[test]
fn a_tap_of_an_unknown_guest_is_refused_naming_the_guests_running() {
    if !have_root("a_tap_of_an_unknown_guest_is_refused") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let bundle = dir.path().join("b");
    let out = run_vmlat(&[
        "record",
        "-o",
        bundle.to_str().unwrap(),
        "-i",
        "tap:no-such-guest",
        "--duration",
        "1",
    ]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains("no QEMU process with -name 'no-such-guest'"),
        "{err}"
    );
    assert!(
        err.contains("give the tap's interface with -i instead"),
        "{err}"
    );
}

#[test]
fn sigint_and_sigterm_stop_the_recording_cleanly_and_exit_0() {
    if !have_root("sigint_and_sigterm_stop_the_recording_cleanly_and_exit_0") {
        return;
    }
    for signal in [rustix::process::Signal::INT, rustix::process::Signal::TERM] {
        let dir = tempfile::tempdir().unwrap();
        let bundle = dir.path().join("stopped");
        let child = vmlat()
            .args(["record", "-o", bundle.to_str().unwrap(), "-i", "lo"])
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(2500));
        let pid = rustix::process::Pid::from_raw(child.id() as i32).unwrap();
        rustix::process::kill_process(pid, signal).unwrap();
        let out = child.wait_with_output().unwrap();
        assert!(out.status.success(), "{signal:?}: {}", stderr(&out));

        let inv = inspect(&bundle);
        assert_eq!(inv["status"]["state"], "complete", "{signal:?}: {inv}");
        assert_eq!(inv["torn_tail"], false, "{signal:?}: {inv}");
        assert!(
            inv["duration_s"].as_f64().unwrap() >= 2.0,
            "{signal:?}: {inv}"
        );
        assert!(inv["counts"]["sched_switch"].as_u64().unwrap() > 0);
    }
}

/// A sync-mounted ext4 on a direct-I/O loop device under /var/tmp, whose writes a blkio
/// cgroup can hold on the real disk beneath: the slow disk of a busy machine. Removed
/// on drop, throttle first.
struct StallableDisk {
    dir: tempfile::TempDir,
    loop_dev: String,
    /// `MAJ:MIN` of the whole disk under the image.
    disk: String,
    cgroup: std::path::PathBuf,
}

impl StallableDisk {
    fn new() -> StallableDisk {
        let sh = |script: &str| {
            let out = Command::new("sh").args(["-c", script]).output().unwrap();
            assert!(out.status.success(), "{script}: {}", stderr(&out));
            String::from_utf8_lossy(&out.stdout).trim().to_owned()
        };
        std::fs::create_dir_all("/var/tmp").unwrap();
        let dir = tempfile::Builder::new()
            .prefix("vmlat-stall-")
            .tempdir_in("/var/tmp")
            .unwrap();
        let img = dir.path().join("disk.img");
        let mnt = dir.path().join("mnt");
        std::fs::create_dir(&mnt).unwrap();
        let loop_dev = sh(&format!(
            "truncate -s 256M {img} && losetup --direct-io=on -f --show {img}",
            img = img.display()
        ));
        sh(&format!(
            "mkfs.ext4 -q -F {loop_dev} && mount -o sync {loop_dev} {}",
            mnt.display()
        ));
        let dev = std::os::unix::fs::MetadataExt::dev(&std::fs::metadata(&img).unwrap());
        let sys = format!(
            "/sys/dev/block/{}:{}",
            rustix::fs::major(dev),
            rustix::fs::minor(dev)
        );
        let whole = if Path::new(&sys).join("partition").exists() {
            format!("{sys}/../dev")
        } else {
            format!("{sys}/dev")
        };
        let disk = std::fs::read_to_string(whole).unwrap().trim().to_owned();
        let cgroup = Path::new("/sys/fs/cgroup/blkio")
            .join(format!("vmlat-test-stall-{}", std::process::id()));
        StallableDisk {
            dir,
            loop_dev,
            disk,
            cgroup,
        }
    }

    fn mount(&self) -> std::path::PathBuf {
        self.dir.path().join("mnt")
    }

    /// Holds every write of process `pid` (and its threads) to the disk at 1 byte/s.
    fn stall(&self, pid: u32) {
        std::fs::create_dir(&self.cgroup).expect("cgroup v1 blkio (see docs/scenarios.md)");
        std::fs::write(self.cgroup.join("cgroup.procs"), pid.to_string()).unwrap();
        std::fs::write(
            self.cgroup.join("blkio.throttle.write_bps_device"),
            format!("{} 1", self.disk),
        )
        .unwrap();
    }

    /// Lifts the throttle (the held writes go at once) and moves everything back.
    fn release(&self) {
        if !self.cgroup.exists() {
            return;
        }
        let _ = std::fs::write(
            self.cgroup.join("blkio.throttle.write_bps_device"),
            format!("{} 0", self.disk),
        );
        let procs = std::fs::read_to_string(self.cgroup.join("cgroup.procs")).unwrap_or_default();
        for pid in procs.split_whitespace() {
            let _ = std::fs::write("/sys/fs/cgroup/blkio/cgroup.procs", pid);
        }
        for _ in 0..50 {
            if std::fs::remove_dir(&self.cgroup).is_ok() {
                break;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for StallableDisk {
    fn drop(&mut self) {
        self.release();
        let mnt = self.mount();
        let _ = Command::new("umount").arg(&mnt).status();
        let _ = Command::new("losetup")
            .args(["-d", &self.loop_dev])
            .status();
    }
}

#[test]
fn a_disk_that_stalls_under_a_storm_counts_pcap_and_queue_drops_and_keeps_the_rest() {
    if !have_root("a_disk_that_stalls_under_a_storm") {
        return;
    }
    // The bundle's disk stalls for 4 s while a UDP storm on lo (a followed heartbeat
    // port) and a context-switch storm run: the capture thread blocks writing its pcap
    // and the kernel's ring overflows (pcap drops); the writer blocks, the queue reaches
    // its bound of records and the collectors drop what does not fit (queue drops). Both
    // must be counted and reported, and what was written must read back.
    let disk = StallableDisk::new();
    let bundle = disk.mount().join("b");
    let rec = vmlat()
        .args(["record", "-o", bundle.to_str().unwrap()])
        .args(["-i", "lo", "--heartbeat", "udp:7000", "--duration", "10"])
        // A small queue, which a stalled writer fills within the stall even on a
        // loaded machine (the default holds a few seconds of the heaviest storm).
        .args(["--queue-records", "20000"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut storms: Vec<std::process::Child> = [
        vec!["--udp", "1", "--udp-port", "7000", "--udp-domain", "ipv4"],
        vec!["--switch", "1"],
    ]
    .iter()
    .map(|args| {
        Command::new("stress-ng")
            .args(args)
            .args(["--timeout", "7", "--quiet"])
            .spawn()
            .expect("stress-ng runs (scripts/setup.sh installs it)")
    })
    .collect();
    std::thread::sleep(Duration::from_secs(2));
    disk.stall(rec.id());
    std::thread::sleep(Duration::from_secs(4));
    disk.release();
    for s in &mut storms {
        let _ = s.wait();
    }
    let out = rec.wait_with_output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let losses = vmlat_bundle::Manifest::load(&bundle).unwrap().losses;
    assert!(losses.pcap_dropped > 0, "no pcap drops counted: {losses:?}");
    assert!(
        losses.queue_dropped > 0,
        "no queue drops counted: {losses:?}"
    );
    let said = stderr(&out);
    assert!(
        said.contains(&format!("pcap_dropped {}", losses.pcap_dropped)),
        "the summary does not say what was dropped: {said}"
    );
    let analysis = run_vmlat(&["analyze", "--json", bundle.to_str().unwrap()]);
    assert!(analysis.status.success(), "{}", stderr(&analysis));
    let json: serde_json::Value = serde_json::from_slice(&analysis.stdout).unwrap();
    let reported = &json["bundles"][0]["losses"];
    assert_eq!(reported["pcap_dropped"], losses.pcap_dropped, "{reported}");
    assert_eq!(
        reported["queue_dropped"], losses.queue_dropped,
        "{reported}"
    );
    // Everything written reads back: no torn record.
    assert!(read_bundle_events(&bundle).unwrap().all(|r| r.is_ok()));
}

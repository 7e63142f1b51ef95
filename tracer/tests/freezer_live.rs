//! The cgroup freezer as a recording sees it: a `sleep` traced with `--pid` is frozen
//! and thawed with the cgroup v1 freezer, then with cgroup v2's `cgroup.freeze`, while
//! the recorder runs; the bundle must hold `Freezer` records saying frozen, then
//! thawed, within 200 ms of each write.
//!
//! Needs root (cgroups, perf tracepoints). Without root it says why and passes, unless
//! `CI=true`: there, missing privileges are a failure, not a skip. The cgroups it makes
//! (`vmlat-test-PID` under each hierarchy's mount) are thawed, emptied and removed even
//! when the test fails.

use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use vmlat_bundle::{
    read_bundle_events, CgroupHierarchy, FreezerSample, FreezerState, Record, Role, EVENTS_FILE,
};
use vmlat_tracer::clock::monotonic_ns;
use vmlat_tracer::recorder::{record, RecordConfig};

/// How late a record may be after the write that changed the state: two sampling
/// intervals of 100 ms.
const TOLERANCE_NS: u64 = 200_000_000;
const INTERVAL: Duration = Duration::from_millis(100);

fn have_root(test: &str) -> bool {
    if rustix::process::geteuid().is_root() {
        return true;
    }
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("{test} needs root (cgroups, perf tracepoints) and CI=true: run the tests as root");
    }
    eprintln!("skipping {test}: needs root for cgroups and perf tracepoints (CI=true makes this a failure)");
    false
}

/// The mount point of the cgroup v2 hierarchy, or of the v1 hierarchy with the
/// freezer controller, from /proc/self/mountinfo.
fn cgroup_mount(hierarchy: CgroupHierarchy) -> Option<PathBuf> {
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").ok()?;
    mountinfo.lines().find_map(|line| {
        let (before, after) = line.split_once(" - ")?;
        let fields: Vec<&str> = before.split(' ').collect();
        let after: Vec<&str> = after.split(' ').collect();
        let wanted = match hierarchy {
            CgroupHierarchy::V2 => after.first() == Some(&"cgroup2"),
            CgroupHierarchy::V1Freezer => {
                after.first() == Some(&"cgroup")
                    && after
                        .get(2)
                        .is_some_and(|o| o.split(',').any(|o| o == "freezer"))
            }
        };
        (wanted && fields.get(3) == Some(&"/")).then(|| PathBuf::from(fields[4]))
    })
}

/// A child killed and reaped when the test ends, however it ends.
struct Reaped(Child);

impl Drop for Reaped {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Sets the recorder's stop flag when the test ends, however it ends.
struct StopOnDrop(Arc<AtomicBool>);

impl Drop for StopOnDrop {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Relaxed);
    }
}

/// `vmlat-test-PID` under a hierarchy's mount, holding `pid`. Dropping it thaws it,
/// moves `pid` back to the root cgroup and removes it.
struct TestCgroup {
    mount: PathBuf,
    dir: PathBuf,
    pid: u32,
    thaw: (&'static str, &'static str),
}

impl TestCgroup {
    fn enter(mount: &Path, pid: u32, thaw: (&'static str, &'static str)) -> TestCgroup {
        let dir = mount.join(format!("vmlat-test-{pid}"));
        if let Err(e) = std::fs::create_dir(&dir) {
            assert_eq!(
                e.kind(),
                std::io::ErrorKind::AlreadyExists,
                "mkdir {dir:?}: {e}"
            );
        }
        // Cleans up from here on, even if the move fails.
        let cgroup = TestCgroup {
            mount: mount.to_path_buf(),
            dir,
            pid,
            thaw,
        };
        cgroup.write("cgroup.procs", &pid.to_string());
        cgroup
    }

    /// The cgroup's path as /proc/PID/cgroup names it.
    fn path(&self) -> String {
        format!("/vmlat-test-{}", self.pid)
    }

    /// Writes `value` into `file`; returns CLOCK_MONOTONIC just before and after.
    fn write(&self, file: &str, value: &str) -> (u64, u64) {
        let before = monotonic_ns();
        std::fs::write(self.dir.join(file), value)
            .unwrap_or_else(|e| panic!("echo {value} > {:?}: {e}", self.dir.join(file)));
        (before, monotonic_ns())
    }

    fn read(&self, file: &str) -> String {
        std::fs::read_to_string(self.dir.join(file)).unwrap_or_default()
    }
}

impl Drop for TestCgroup {
    fn drop(&mut self) {
        let _ = std::fs::write(self.dir.join(self.thaw.0), self.thaw.1);
        let _ = std::fs::write(self.mount.join("cgroup.procs"), self.pid.to_string());
        for _ in 0..20 {
            match std::fs::remove_dir(&self.dir) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                    thread::sleep(Duration::from_millis(50));
                }
                _ => return,
            }
        }
        eprintln!("could not remove {:?}: remove it by hand", self.dir);
    }
}

fn wait_until(limit: Duration, mut ready: impl FnMut() -> bool) -> bool {
    let started = Instant::now();
    while started.elapsed() < limit {
        if ready() {
            return true;
        }
        thread::sleep(Duration::from_millis(5));
    }
    ready()
}

/// The state letter of /proc/PID/stat.
fn proc_state(pid: u32) -> char {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    stat.rsplit_once(") ")
        .and_then(|(_, rest)| rest.chars().next())
        .unwrap_or('?')
}

/// One freeze and thaw in one hierarchy, as the test did it.
#[derive(Debug)]
struct Episode {
    hierarchy: CgroupHierarchy,
    cgroup: String,
    /// Monotonic ns just before the child entered the cgroup.
    entered: u64,
    /// Around the write that froze it.
    freeze: (u64, u64),
    /// When the state file first said frozen.
    frozen: u64,
    /// Around the write that thawed it.
    thaw: (u64, u64),
    /// /proc/PID/stat's letter while frozen.
    proc_state: char,
}

/// Freezes the child in `hierarchy` for about a second, then thaws it.
fn freeze_and_thaw(hierarchy: CgroupHierarchy, mount: &Path, pid: u32) -> Episode {
    let (state_file, freeze, thaw) = match hierarchy {
        CgroupHierarchy::V1Freezer => ("freezer.state", "FROZEN", "THAWED"),
        CgroupHierarchy::V2 => ("cgroup.freeze", "1", "0"),
    };
    let entered = monotonic_ns();
    let cgroup = TestCgroup::enter(mount, pid, (state_file, thaw));
    thread::sleep(Duration::from_millis(300));
    let froze = cgroup.write(state_file, freeze);
    let is_frozen = || match hierarchy {
        CgroupHierarchy::V1Freezer => cgroup.read("freezer.state").trim() == "FROZEN",
        CgroupHierarchy::V2 => cgroup.read("cgroup.events").contains("frozen 1"),
    };
    assert!(
        wait_until(Duration::from_secs(2), is_frozen),
        "{hierarchy:?}: {:?} never said frozen",
        cgroup.dir
    );
    let frozen = monotonic_ns();
    let proc_state = proc_state(pid);
    thread::sleep(Duration::from_millis(1000));
    let thawed = cgroup.write(state_file, thaw);
    thread::sleep(Duration::from_millis(300));
    Episode {
        hierarchy,
        cgroup: cgroup.path(),
        entered,
        freeze: froze,
        frozen,
        thaw: thawed,
        proc_state,
    }
}

fn describe(records: &[&FreezerSample]) -> String {
    records
        .iter()
        .map(|s| {
            format!(
                "\n  t={} prev={:?} {:?} {} {:?}",
                s.t, s.previous_t, s.hierarchy, s.cgroup, s.state
            )
        })
        .collect()
}

/// Checks the records of one hierarchy against what the test did.
fn check(episode: &Episode, all: &[&FreezerSample]) {
    let records: Vec<&FreezerSample> = all
        .iter()
        .copied()
        .filter(|s| s.hierarchy == episode.hierarchy)
        .collect();
    let listing = describe(&records);
    let what = format!("{:?} records of the child:{listing}", episode.hierarchy);

    // A baseline from before the child entered the test cgroup.
    let first = records.first().unwrap_or_else(|| panic!("no {what}"));
    assert_eq!(first.previous_t, None, "{what}");
    assert!(
        first.t < episode.entered,
        "no baseline before the move: {what}"
    );
    assert_eq!(first.state, FreezerState::Thawed, "{what}");

    // Frozen: the first record that is not thawed comes right after the write, from a
    // reading before it; the frozen one right after the state file said so.
    let (freeze_before, freeze_after) = episode.freeze;
    let first_cold = records
        .iter()
        .find(|s| s.state != FreezerState::Thawed)
        .unwrap_or_else(|| panic!("never frozen: {what}"));
    assert_eq!(first_cold.cgroup, episode.cgroup, "{what}");
    assert!(
        first_cold.t >= freeze_before && first_cold.t <= freeze_after + TOLERANCE_NS,
        "freezing written at {freeze_before}..{freeze_after}: {what}"
    );
    assert!(
        first_cold.previous_t.is_some_and(|p| p <= freeze_after),
        "{what}"
    );
    let frozen = records
        .iter()
        .find(|s| s.state == FreezerState::Frozen)
        .unwrap_or_else(|| panic!("never frozen: {what}"));
    assert!(
        frozen.t <= episode.frozen + TOLERANCE_NS,
        "frozen at {} (state file), recorded at {}: {what}",
        episode.frozen,
        frozen.t
    );

    // Thawed: right after the write, and the only cold stretch.
    let (thaw_before, thaw_after) = episode.thaw;
    let thawed = records
        .iter()
        .find(|s| s.t > frozen.t && s.state == FreezerState::Thawed)
        .unwrap_or_else(|| panic!("never thawed: {what}"));
    assert_eq!(thawed.cgroup, episode.cgroup, "{what}");
    assert!(
        thawed.t >= thaw_before && thawed.t <= thaw_after + TOLERANCE_NS,
        "thaw written at {thaw_before}..{thaw_after}: {what}"
    );
    assert!(thawed.previous_t.is_some_and(|p| p <= thaw_after), "{what}");
    for s in &records {
        if s.state != FreezerState::Thawed {
            assert!(
                s.t >= freeze_before && s.t < thawed.t,
                "cold outside the episode: {what}"
            );
        }
    }
    // And back in the root cgroup, thawed, once the test cgroup was removed.
    assert!(
        records
            .iter()
            .any(|s| s.t > thawed.t && s.cgroup == "/" && s.state == FreezerState::Thawed),
        "no record of the move back to the root: {what}"
    );
}

#[test]
fn records_cgroup_v1_and_v2_freezer_states_of_a_traced_pid() {
    let test = "records_cgroup_v1_and_v2_freezer_states_of_a_traced_pid";
    if !have_root(test) {
        return;
    }
    let mut hierarchies = Vec::new();
    for hierarchy in [CgroupHierarchy::V1Freezer, CgroupHierarchy::V2] {
        match cgroup_mount(hierarchy) {
            Some(mount) => hierarchies.push((hierarchy, mount)),
            None => eprintln!("{test}: no {hierarchy:?} hierarchy mounted here, not tested"),
        }
    }
    if hierarchies.is_empty() {
        eprintln!("skipping {test}: no cgroup freezer mounted");
        return;
    }

    let child = Reaped(Command::new("sleep").arg("60").spawn().expect("sleep runs"));
    let pid = child.0.id();
    let out = tempfile::tempdir().unwrap();
    let bundle = out.path().join("B");
    let config = RecordConfig {
        output: bundle.clone(),
        force: false,
        collect: vmlat_tracer::recorder::CollectorConfig {
            captures: vec![],
            comms: vec![],
            pids: vec![pid as i32],
            role: Role::Guest,
            heartbeat_ports: vec![],
            disk_interval: INTERVAL,
            clock_probes: false,
            perf_ring_pages_exp: vmlat_tracer::perf::PerfConfig::default().ring_pages_exp,
            queue_records: vmlat_tracer::pipeline::QUEUE_RECORDS,
        },
        // A backstop: the test stops the recording itself.
        duration: Some(Duration::from_secs(30)),
        command_line: vec![
            "vmlat".into(),
            "record".into(),
            "--pid".into(),
            pid.to_string(),
        ],
        user: None,
    };
    let stop = Arc::new(AtomicBool::new(false));
    let _stop = StopOnDrop(Arc::clone(&stop));
    let recorder = thread::spawn({
        let stop = Arc::clone(&stop);
        move || record(&config, stop, |_| {})
    });
    // The writer creates the event stream once every collector runs.
    let started = wait_until(Duration::from_secs(15), || {
        bundle.join(EVENTS_FILE).exists() || recorder.is_finished()
    });
    if recorder.is_finished() {
        panic!(
            "the recording ended early: {:?}",
            recorder.join().unwrap().err()
        );
    }
    assert!(started, "the recording did not start in 15 s");
    // The sampler's first tick takes the baseline.
    thread::sleep(Duration::from_millis(300));

    let episodes: Vec<Episode> = hierarchies
        .iter()
        .map(|(hierarchy, mount)| freeze_and_thaw(*hierarchy, mount, pid))
        .collect();
    thread::sleep(Duration::from_millis(300));
    stop.store(true, Ordering::Relaxed);
    let summary = recorder
        .join()
        .expect("the recorder thread")
        .expect("the recording");
    assert_eq!(summary.manifest.status, vmlat_bundle::Status::Complete);

    let mut reader = read_bundle_events(&bundle).unwrap();
    assert_eq!(reader.version(), Some(2));
    let records: Vec<Record> = reader.by_ref().map(Result::unwrap).collect();
    let freezer: Vec<&FreezerSample> = records
        .iter()
        .filter_map(|r| match r {
            Record::Freezer(s) if s.tid == pid as i32 => Some(s),
            _ => None,
        })
        .collect();
    for s in &freezer {
        assert_eq!(s.tgid, pid as i32);
    }

    // What the scheduler shows of a frozen task, for the analyzer's sake.
    for episode in &episodes {
        let (from, to) = (episode.frozen, episode.thaw.0);
        let sampled: String = records
            .iter()
            .filter_map(|r| match r {
                Record::Task(s) if s.tid == pid as i32 && s.t > from && s.t < to => Some(s.state),
                _ => None,
            })
            .collect();
        let switched: Vec<u64> = records
            .iter()
            .filter_map(|r| match r {
                Record::SchedSwitch {
                    t,
                    prev_tid,
                    prev_state,
                    ..
                } if *prev_tid == pid as i32 && *t >= episode.freeze.0 && *t < to => {
                    Some(*prev_state)
                }
                _ => None,
            })
            .collect();
        eprintln!(
            "{:?} frozen: /proc/{pid}/stat state {}, schedstat samples {sampled:?}, switched out with prev_state {switched:x?}",
            episode.hierarchy, episode.proc_state
        );
    }

    for episode in &episodes {
        check(episode, &freezer);
    }
}

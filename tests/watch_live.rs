//! `vmlat watch` for real: a namespace lab running real keepalived, watched for over a
//! minute with the master's VRRP process stopped (SIGSTOP) in the middle. Needs root
//! (see `common::have_root`).

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{assert_private, have_root, lab_with_master, packet_times, run_vmlat, stderr, vmlat};
use rustix::process::{kill_process, Pid, Signal};

/// A running `vmlat watch` whose stderr lines are kept with the instant each came.
struct Watch {
    child: Child,
    lines: Arc<Mutex<Vec<(Instant, String)>>>,
}

impl Watch {
    fn start(args: &[&str]) -> Watch {
        let mut child = vmlat()
            .arg("watch")
            .args(args)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("vmlat watch starts");
        let lines = Arc::new(Mutex::new(Vec::new()));
        let out = BufReader::new(child.stderr.take().unwrap());
        let kept = Arc::clone(&lines);
        std::thread::spawn(move || {
            for line in out.lines().map_while(Result::ok) {
                kept.lock().unwrap().push((Instant::now(), line));
            }
        });
        Watch { child, lines }
    }

    /// The first line containing `text`, with when it came; waits up to `timeout`.
    fn wait_for(&self, text: &str, timeout: Duration) -> Option<(Instant, String)> {
        let until = Instant::now() + timeout;
        while Instant::now() < until {
            if let Some(found) = self.lines().into_iter().find(|(_, l)| l.contains(text)) {
                return Some(found);
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        None
    }

    fn lines(&self) -> Vec<(Instant, String)> {
        self.lines.lock().unwrap().clone()
    }

    fn text(&self) -> String {
        self.lines()
            .into_iter()
            .map(|(_, l)| l)
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// SIGTERM, then the exit status.
    fn stop(mut self) -> (std::process::ExitStatus, String) {
        let pid = Pid::from_raw(self.child.id() as i32).unwrap();
        kill_process(pid, Signal::TERM).unwrap();
        let status = self.child.wait().unwrap();
        std::thread::sleep(Duration::from_millis(200));
        (status, self.text())
    }
}

/// The usual pair once vr1 is master, watched at the named routers' interfaces with
/// `--comm keepalived` and `args`, into `incidents` of a temporary directory.
struct Watched {
    lab: vmlat_lab::Lab,
    /// vr1's VRRP child: the master's process to stop.
    vrrp: Pid,
    out: tempfile::TempDir,
    incidents: PathBuf,
    watch: Watch,
}

fn watch_pair(routers: &[&str], args: &[&str]) -> Watched {
    let lab = lab_with_master(false);
    let vrrp = Pid::from_raw(lab.vrrp_pid("vr1").unwrap() as i32).expect("a pid");
    let out = tempfile::tempdir().unwrap();
    let incidents = out.path().join("incidents");
    let mut all: Vec<String> = vec!["-o".into(), incidents.display().to_string()];
    for router in routers {
        all.push("-i".into());
        all.push(lab.router(router).unwrap().capture_point());
    }
    all.extend(["--comm", "keepalived"].map(String::from));
    all.extend(args.iter().map(|a| a.to_string()));
    let watch = Watch::start(&all.iter().map(String::as_str).collect::<Vec<_>>());
    assert!(
        watch
            .wait_for("vmlat: watching", Duration::from_secs(20))
            .is_some(),
        "watch did not start: {}",
        watch.text()
    );
    Watched {
        lab,
        vrrp,
        out,
        incidents,
        watch,
    }
}

fn incident_dirs(dir: &Path) -> Vec<PathBuf> {
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_dir())
        .collect();
    dirs.sort();
    dirs
}

/// A port free on 127.0.0.1 now.
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The body of `GET path` on 127.0.0.1:port, or None if nothing answers.
fn http_get(port: u16, path: &str) -> Option<String> {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(
        stream,
        "GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut response = String::new();
    stream.read_to_string(&mut response).ok()?;
    let (head, body) = response.split_once("\r\n\r\n")?;
    head.starts_with("HTTP/1.1 200")
        .then(|| body.to_string())
        .or_else(|| head.starts_with("HTTP/1.0 200").then(|| body.to_string()))
}

/// A real Prometheus server scraping `target` every second, until dropped.
struct Prometheus {
    child: Child,
    port: u16,
    _dir: tempfile::TempDir,
}

impl Prometheus {
    fn start(target: u16) -> Prometheus {
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("prometheus.yml");
        std::fs::write(
            &config,
            format!(
                "global:\n  scrape_interval: 1s\nscrape_configs:\n  - job_name: vmlat\n    static_configs:\n      - targets: ['127.0.0.1:{target}']\n"
            ),
        )
        .unwrap();
        let port = free_port();
        let child = std::process::Command::new("prometheus")
            .arg(format!("--config.file={}", config.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.path().join("data").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("prometheus runs (scripts/setup.sh installs it)");
        Prometheus {
            child,
            port,
            _dir: dir,
        }
    }

    /// The value of the first series `query` returns, waiting up to `timeout` for one.
    fn query(&self, query: &str, timeout: Duration) -> Option<(serde_json::Value, String)> {
        let until = Instant::now() + timeout;
        while Instant::now() < until {
            if let Some(body) = http_get(self.port, &format!("/api/v1/query?query={query}")) {
                let answer: serde_json::Value = serde_json::from_str(&body).unwrap();
                if let Some(series) = answer["data"]["result"].as_array().and_then(|r| r.first()) {
                    let value = series["value"][1].as_str().unwrap_or_default().to_string();
                    return Some((series["metric"].clone(), value));
                }
            }
            std::thread::sleep(Duration::from_millis(500));
        }
        None
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let pid = Pid::from_raw(self.child.id() as i32).unwrap();
        let _ = kill_process(pid, Signal::TERM);
        let _ = self.child.wait();
    }
}

fn realtime_ns() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as i64
}

#[test]
fn a_stopped_master_is_one_incident_written_and_explained_while_it_is_still_stopped() {
    if !have_root("watch_catches_a_stopped_master") {
        return;
    }
    let metrics_port = free_port();
    let metrics_addr = format!("127.0.0.1:{metrics_port}");
    let hook_dir = tempfile::tempdir().unwrap();
    let hook_log = hook_dir.path().join("hook.log");
    let hook = format!(
        "echo \"$VMLAT_VERDICT $VMLAT_INCIDENT_DIR\" >> {}",
        hook_log.display()
    );
    let started = Instant::now();
    let Watched {
        lab,
        vrrp,
        out: _out,
        incidents,
        watch,
    } = watch_pair(
        &["vr1", "vr2"],
        &[
            "--metrics",
            &metrics_addr,
            "--before",
            "12",
            "--after",
            "5",
            "--on-incident",
            &hook,
        ],
    );
    let vr1 = lab.router("vr1").unwrap();
    let vr2 = lab.router("vr2").unwrap();
    let prometheus = Prometheus::start(metrics_port);

    // 25 s of a quiet lab: nothing written.
    std::thread::sleep(Duration::from_secs(25));
    assert!(
        incident_dirs(&incidents).is_empty(),
        "an incident without a fault: {}",
        watch.text()
    );
    let stopped_at_ns = realtime_ns();
    let stopped = Instant::now();
    kill_process(vrrp, Signal::STOP).expect("SIGSTOP the VRRP child");
    let line = watch.wait_for("vmlat: incident 2", Duration::from_secs(22));
    let continued = Instant::now();
    kill_process(vrrp, Signal::CONT).expect("SIGCONT the VRRP child");
    for (at, l) in watch.lines() {
        eprintln!(
            "{:+8.3} s  {l}",
            at.duration_since(stopped.min(at)).as_secs_f64()
        );
    }
    let (line_at, line) = line.unwrap_or_else(|| {
        panic!(
            "no incident line within 22 s of the SIGSTOP: {}\nincidents: {:?}",
            watch.text(),
            incident_dirs(&incidents)
        )
    });
    // The line came while vr1 was still stopped (it is continued only now).
    assert!(line_at < continued);
    assert!(line.contains("VRID 51"), "{line}");
    assert!(line.contains("verdict app-stopped"), "{line}");

    // vr1 comes back and preempts: said, not a second incident.
    assert!(
        watch
            .wait_for("advertises again", Duration::from_secs(10))
            .is_some(),
        "{}",
        watch.text()
    );
    // /metrics: the incident and the interval histogram, which promtool accepts and a
    // real Prometheus scraping it answers.
    let text = http_get(metrics_port, "/metrics").expect("/metrics answers");
    let incident = r#"vmlat_incidents_total{kind="open",verdict="app-stopped"} 1"#;
    assert!(text.lines().any(|l| l == incident), "{text}");
    // vr1's stream at vr2's interface: adverts a second apart, and the silence.
    let vr1_at_vr2 = format!(
        r#"capture="{}",protocol="vrrp",router="10.10.0.1",vrid="51""#,
        vr2.capture_point()
    );
    let bucket = |le: &str| {
        let prefix = format!("vmlat_advert_interval_seconds_bucket{{{vr1_at_vr2},le=\"{le}\"}} ");
        text.lines()
            .find_map(|l| l.strip_prefix(prefix.as_str()))
            .unwrap_or_else(|| panic!("no {prefix} in {text}"))
            .parse::<u64>()
            .unwrap()
    };
    assert!(
        bucket("1.1") >= 20,
        "adverts a second apart: {}",
        bucket("1.1")
    );
    assert!(
        bucket("+Inf") > bucket("5"),
        "the silence of over 5 s is in the histogram"
    );
    let mut promtool = std::process::Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("promtool runs (scripts/setup.sh installs it)");
    promtool
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let checked = promtool.wait_with_output().unwrap();
    assert!(
        checked.status.success(),
        "promtool check metrics: {}{}",
        String::from_utf8_lossy(&checked.stdout),
        String::from_utf8_lossy(&checked.stderr)
    );
    let (series, value) = prometheus
        .query("vmlat_incidents_total", Duration::from_secs(30))
        .expect("Prometheus answers vmlat_incidents_total");
    assert_eq!(
        (series["verdict"].as_str(), value.as_str()),
        (Some("app-stopped"), "1")
    );
    drop(prometheus);

    let remaining = Duration::from_secs(62).saturating_sub(started.elapsed());
    std::thread::sleep(remaining);
    let (status, text) = watch.stop();
    assert!(status.success(), "watch exited {status}: {text}");
    assert!(
        started.elapsed() >= Duration::from_secs(60),
        "watched only {:?}",
        started.elapsed()
    );

    let dirs = incident_dirs(&incidents);
    assert_eq!(dirs.len(), 1, "{dirs:?}\n{text}");
    let dir = &dirs[0];
    let name = dir.file_name().unwrap().to_string_lossy().into_owned();
    assert!(name.ends_with("-vrid51"), "{name}");
    for file in [
        "manifest.json",
        "events.vmlat",
        "analysis.txt",
        "analysis.json",
        "report.html",
    ] {
        assert!(dir.join(file).is_file(), "{file} missing in {name}");
    }
    // It holds packet payloads, as a recorded bundle does: its analysis and report too
    // are for the operator's group only.
    assert_private(dir);

    // The analysis written next to the bundle says app-stopped, and so does
    // `vmlat analyze` reading the bundle like any other.
    let written: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("analysis.json")).unwrap()).unwrap();
    let verdicts: Vec<&str> = written["incidents"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["verdict"].as_str().unwrap())
        .collect();
    assert!(verdicts.contains(&"app-stopped"), "{verdicts:?}");
    let analyzed = run_vmlat(&["analyze", dir.to_str().unwrap(), "--json"]);
    assert!(analyzed.status.success(), "{}", stderr(&analyzed));
    let again: serde_json::Value = serde_json::from_slice(&analyzed.stdout).unwrap();
    assert_eq!(again["incidents"], written["incidents"]);

    // The seconds before the fault: vr1's adverts from more than 10 s before the stop.
    let pcap = dir.join(format!("pcap/{}.pcap", vr1.capture_point()));
    let adverts = packet_times(&pcap);
    let first = *adverts.first().expect("adverts in the bundle");
    assert!(
        stopped_at_ns - first > 10_000_000_000,
        "the bundle begins only {} ms before the SIGSTOP",
        (stopped_at_ns - first) / 1_000_000
    );

    // The hook ran with the verdict and the directory.
    let hooked = std::fs::read_to_string(&hook_log).expect("the hook ran");
    assert_eq!(
        hooked.trim(),
        format!("app-stopped {}", dir.display()),
        "{hooked}"
    );
    drop(lab);
}

/// The peak resident memory of process `pid` (VmHWM), in bytes.
fn peak_rss(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let kib: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmHWM in /proc/PID/status");
    kib * 1024
}

fn dir_size(path: &Path) -> u64 {
    let meta = std::fs::symlink_metadata(path).unwrap();
    if !meta.is_dir() {
        return meta.len();
    }
    std::fs::read_dir(path)
        .unwrap()
        .map(|e| dir_size(&e.unwrap().path()))
        .sum()
}

#[test]
fn a_flap_storm_stays_within_max_disk_and_the_memory_bound() {
    if !have_root("watch_flap_storm") {
        return;
    }
    // Each incident's bundle holds every CPU's scheduler records of its window: 0.6 MiB on a
    // quiet machine, more on a busy one. 2 MiB is reached by the fourth incident at most.
    const MAX_DISK_MIB: u64 = 2;
    const MAX_MEMORY_MIB: u64 = 16;
    let Watched {
        lab,
        vrrp,
        out: _out,
        incidents,
        watch,
    } = watch_pair(
        &["vr2"],
        &[
            "--before",
            "5",
            "--after",
            "2",
            "--max-disk",
            &MAX_DISK_MIB.to_string(),
            "--max-memory",
            &MAX_MEMORY_MIB.to_string(),
        ],
    );
    std::thread::sleep(Duration::from_secs(6));
    // Ten 2.5 s stops of the master, each an overdue sender back before a takeover.
    const FAULTS: usize = 10;
    for _ in 0..FAULTS {
        kill_process(vrrp, Signal::STOP).expect("SIGSTOP the VRRP child");
        std::thread::sleep(Duration::from_millis(2500));
        kill_process(vrrp, Signal::CONT).expect("SIGCONT the VRRP child");
        std::thread::sleep(Duration::from_secs(6));
    }
    std::thread::sleep(Duration::from_secs(4));
    let peak = peak_rss(watch.child.id());
    let (status, text) = watch.stop();
    assert!(status.success(), "watch exited {status}: {text}");

    let written = text
        .lines()
        .filter(|l| l.starts_with("vmlat: incident 2"))
        .count();
    let deleted = text
        .lines()
        .filter(|l| l.contains("--max-disk: deleted"))
        .count();
    let kept = incident_dirs(&incidents);
    let used: u64 = kept.iter().map(|d| dir_size(d)).sum();
    eprintln!(
        "{written} incidents written, {deleted} deleted, {} kept in {:.1} MiB; peak RSS {:.1} MiB",
        kept.len(),
        used as f64 / (1 << 20) as f64,
        peak as f64 / (1 << 20) as f64
    );
    assert!(written >= FAULTS / 2, "only {written} incidents: {text}");
    assert_eq!(written, deleted + kept.len(), "{text}");
    assert!(deleted > 0, "the storm never reached --max-disk: {text}");
    assert!(
        used <= MAX_DISK_MIB << 20 || kept.len() == 1,
        "{used} bytes kept in {} incidents",
        kept.len()
    );
    // The bound --help states: the window, the perf rings, and 300 MiB for the rest
    // (queues, sorter, the analyzer on an incident).
    let cpus = std::thread::available_parallelism().unwrap().get() as u64;
    let bound = (MAX_MEMORY_MIB + 4 * cpus + 300) << 20;
    assert!(
        peak <= bound,
        "peak RSS {} MiB above the stated bound {} MiB",
        peak >> 20,
        bound >> 20
    );
    drop(lab);
}

#[test]
fn sighup_reopens_dir_and_sigterm_during_an_incident_writes_it_and_exits_0() {
    if !have_root("watch_sigterm_flushes") {
        return;
    }
    let Watched {
        lab,
        vrrp,
        out,
        incidents,
        watch,
    } = watch_pair(&["vr2"], &["--before", "5"]);
    // DIR moved away (a cleanup job): SIGHUP makes it anew.
    std::fs::rename(&incidents, out.path().join("moved")).unwrap();
    let pid = Pid::from_raw(watch.child.id() as i32).unwrap();
    kill_process(pid, Signal::HUP).unwrap();
    assert!(
        watch.wait_for("reopened", Duration::from_secs(5)).is_some(),
        "{}",
        watch.text()
    );
    assert!(incidents.is_dir());
    std::thread::sleep(Duration::from_secs(5));
    kill_process(vrrp, Signal::STOP).expect("SIGSTOP the VRRP child");
    // Said as it happens, while vr1 is silent.
    let begun = watch.wait_for("vmlat: incident begins: overdue", Duration::from_secs(10));
    // Past the master-down interval (3.6 s), well before --after (10 s) ends.
    std::thread::sleep(Duration::from_secs(4));
    let (status, text) = watch.stop();
    kill_process(vrrp, Signal::CONT).expect("SIGCONT the VRRP child");
    let (_, begun) = begun.unwrap_or_else(|| panic!("no incident began: {text}"));
    assert!(begun.contains("VRID 51 10.10.0.1"), "{begun}");
    assert!(status.success(), "watch exited {status}: {text}");
    // Stopped before --after ended: written with what there was, vr1 still stopped.
    let dirs = incident_dirs(&incidents);
    assert_eq!(dirs.len(), 1, "{text}");
    assert!(
        text.lines().any(|l| l.contains("vmlat: incident 2")
            && l.contains("open ")
            && l.contains("verdict app-stopped")),
        "{text}"
    );
    for file in [
        "manifest.json",
        "events.vmlat",
        "analysis.json",
        "report.html",
    ] {
        assert!(dirs[0].join(file).is_file(), "{file} missing: {text}");
    }
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dirs[0].join("manifest.json")).unwrap()).unwrap();
    assert_eq!(manifest["status"]["state"], "complete");
    drop(lab);
}

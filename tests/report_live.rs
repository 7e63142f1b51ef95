//! `vmlat plot`, `vmlat report` and `vmlat export --perfetto` on a real recording: a
//! namespace lab whose master's keepalived VRRP process is stopped for 4 s, so that the
//! backup takes over and the master preempts back (a real gap, a real failover). The
//! charts must render, the HTML report must load in headless Chromium without console
//! errors and show every incident, and the Perfetto JSON must follow the trace-event format.
//!
//! Needs root (see `common::have_root`). Set `VMLAT_LIVE_OUT=DIR` to keep the bundle,
//! charts, report and trace in DIR: that is how the charts under `docs/` are made.

mod common;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use common::{have_root, inspect, record_sigstop_lab, run_vmlat, stderr};

/// Where Debian's chromium package puts the browser.
const CHROMIUM: &str = "/usr/bin/chromium";

/// An output directory: `VMLAT_LIVE_OUT` if set (kept), else a temporary one.
fn out_dir() -> (PathBuf, Option<tempfile::TempDir>) {
    match std::env::var_os("VMLAT_LIVE_OUT") {
        Some(dir) => {
            let dir = PathBuf::from(dir);
            std::fs::create_dir_all(&dir).unwrap();
            (dir, None)
        }
        None => {
            let tmp = tempfile::tempdir().unwrap();
            (tmp.path().to_path_buf(), Some(tmp))
        }
    }
}

#[test]
fn charts_report_and_perfetto_trace_of_a_stopped_keepalived() {
    if !have_root("charts_report_and_perfetto_trace_of_a_stopped_keepalived") {
        return;
    }
    let (dir, _keep) = out_dir();
    let bundle = dir.join("sigstop.vmlat");
    let (lab, _) = record_sigstop_lab(&bundle);
    lab.teardown().expect("lab tears down");
    assert_eq!(
        inspect(&bundle)["torn_tail"],
        false,
        "the recording ended cleanly"
    );
    let bundle = bundle.to_str().unwrap();

    // The analysis, for what the renderings must show.
    let out = run_vmlat(&["analyze", "--json", bundle]);
    assert!(out.status.success(), "analyze failed: {}", stderr(&out));
    let analysis: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let incidents = analysis["incidents"].as_array().unwrap();
    assert_eq!(
        incidents.len(),
        1,
        "a 4 s SIGSTOP is one incident: {analysis}"
    );

    // Charts: one of each, PNG and SVG.
    let charts = dir.join("charts");
    for format in ["png", "svg"] {
        let started = Instant::now();
        let out = run_vmlat(&[
            "plot",
            bundle,
            "-o",
            charts.to_str().unwrap(),
            "--format",
            format,
        ]);
        assert!(out.status.success(), "plot failed: {}", stderr(&out));
        eprintln!("plot --format {format}: {:?}", started.elapsed());
        let mut expected = vec!["timeline".to_string(), "intervals".to_string()];
        expected.extend((1..=incidents.len()).map(|n| format!("incident-{n}")));
        for name in expected {
            let path = charts.join(format!("{name}.{format}"));
            let len = std::fs::metadata(&path)
                .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
                .len();
            assert!(len > 2_000, "{} is only {len} bytes", path.display());
        }
    }
    let svg = std::fs::read_to_string(charts.join("incident-1.svg")).unwrap();
    assert!(svg.contains("<text"), "the SVG close-up has no text");

    // The report, in a real browser.
    let html = dir.join("report.html");
    let out = run_vmlat(&["report", bundle, "-o", html.to_str().unwrap()]);
    assert!(out.status.success(), "report failed: {}", stderr(&out));
    let page = std::fs::read_to_string(&html).unwrap();
    // Offline: nothing to fetch (the SVG namespace URI is a name, not a fetch).
    for forbidden in ["src=", "href=", "url(", "@import", "<link", "<script"] {
        assert!(
            !page.contains(forbidden),
            "the report fetches something ({forbidden})"
        );
    }
    if let Some(dom) = chromium_dom("report_live", &html) {
        for n in 1..=incidents.len() {
            assert!(
                dom.contains(&format!("id=\"incident-{n}\"")),
                "incident {n} is not in the page Chromium rendered"
            );
        }
        for inc in incidents {
            let verdict = inc["verdict"].as_str().unwrap();
            assert!(dom.contains(verdict), "verdict {verdict} not shown");
            let first = inc["path"][0]["capture"].as_str().unwrap();
            assert!(dom.contains(first), "the hop table is not shown");
        }
    }

    // The Perfetto trace.
    let trace = dir.join("trace.json");
    let out = run_vmlat(&["export", "--perfetto", trace.to_str().unwrap(), bundle]);
    assert!(out.status.success(), "export failed: {}", stderr(&out));
    let json: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&trace).unwrap()).expect("valid JSON");
    let summary = check_trace_events(&json);
    assert!(summary.cpu_slices > 0, "no CPU track: {summary:?}");
    assert!(summary.thread_states > 0, "no thread states: {summary:?}");
    assert!(summary.packets > 5, "too few packet instants: {summary:?}");
    assert_eq!(
        summary.incidents,
        incidents.len(),
        "incident slices: {summary:?}"
    );
}

/// Loads `html` in headless Chromium and returns the DOM it built, after checking that
/// the page logged no console error. `None` (with a printed reason) when Chromium is not
/// installed off CI; on CI its absence fails the test.
fn chromium_dom(test: &str, html: &Path) -> Option<String> {
    if !Path::new(CHROMIUM).exists() {
        if std::env::var_os("CI").is_some() {
            panic!("{test}: {CHROMIUM} is missing; .ci/run installs Debian's chromium package");
        }
        eprintln!("SKIPPED the browser check of {test}: {CHROMIUM} is not installed (apt-get install chromium)");
        return None;
    }
    let profile = tempfile::tempdir().unwrap();
    let url = format!("file://{}", html.canonicalize().unwrap().display());
    let out = Command::new(CHROMIUM)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--enable-logging=stderr",
            "--v=0",
            "--virtual-time-budget=5000",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .arg("--dump-dom")
        .arg(&url)
        .output()
        .expect("chromium runs");
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "chromium failed: {log}");
    // Console messages reach stderr as `INFO:CONSOLE:LINE] "message", source: URL`. The
    // report has no script, so any console message (an error, or an uncaught exception
    // of something injected) is a failure.
    let console_errors: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("CONSOLE") || l.contains("Uncaught"))
        .collect();
    assert!(
        console_errors.is_empty(),
        "the report logged console errors:\n{}",
        console_errors.join("\n")
    );
    let dom = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(dom.contains("</html>"), "chromium dumped no page: {log}");
    Some(dom)
}

/// What a trace held.
#[derive(Debug, Default)]
struct TraceSummary {
    cpu_slices: usize,
    thread_states: usize,
    packets: usize,
    incidents: usize,
}

/// Checks a Chrome trace-event document: every event has the fields its phase needs,
/// and the complete (`X`) slices of each track (pid, tid) are well nested: sorted by
/// start, each either ends before the next begins or contains it.
fn check_trace_events(json: &serde_json::Value) -> TraceSummary {
    let events = json["traceEvents"].as_array().expect("a traceEvents array");
    let mut tracks: HashMap<(i64, i64), Vec<(f64, f64)>> = HashMap::new();
    let mut names: HashMap<(i64, i64), String> = HashMap::new();
    let mut summary = TraceSummary::default();
    for e in events {
        let ph = e["ph"].as_str().unwrap_or_else(|| panic!("no ph: {e}"));
        let pid = e["pid"].as_i64().unwrap_or_else(|| panic!("no pid: {e}"));
        let tid = e["tid"].as_i64().unwrap_or_else(|| panic!("no tid: {e}"));
        assert!(e["name"].is_string(), "no name: {e}");
        match ph {
            "M" => {
                assert!(
                    e["args"]["name"].is_string(),
                    "metadata without a name: {e}"
                );
                if e["name"] == "thread_name" {
                    names.insert((pid, tid), e["args"]["name"].as_str().unwrap().into());
                }
            }
            "X" => {
                let ts = e["ts"].as_f64().unwrap_or_else(|| panic!("no ts: {e}"));
                let dur = e["dur"].as_f64().unwrap_or_else(|| panic!("no dur: {e}"));
                assert!(dur >= 0.0 && ts.is_finite(), "bad slice: {e}");
                tracks.entry((pid, tid)).or_default().push((ts, ts + dur));
            }
            "i" => {
                assert!(e["ts"].as_f64().is_some(), "no ts: {e}");
                assert!(
                    matches!(e["s"].as_str(), Some("t" | "p" | "g")),
                    "instant without a scope: {e}"
                );
            }
            other => panic!("unexpected phase {other}: {e}"),
        }
    }
    for (track, slices) in &tracks {
        // Events of a track are written in time order, as the trace viewers expect.
        for w in slices.windows(2) {
            assert!(w[0].0 <= w[1].0, "track {track:?} goes back in time: {w:?}");
        }
        // Nesting: a stack of open slices. Times are µs as floats: 1 ns of tolerance
        // for a slice that begins exactly where the previous one ended.
        let mut open: Vec<f64> = Vec::new();
        for &(start, end) in slices {
            while open.last().is_some_and(|&e| e <= start + 1e-3) {
                open.pop();
            }
            if let Some(&parent_end) = open.last() {
                assert!(
                    end <= parent_end + 1e-3,
                    "track {track:?}: slice {start}..{end} overlaps its parent ending {parent_end}"
                );
            }
            open.push(end);
        }
        let name = names.get(track).map(String::as_str).unwrap_or("");
        let n = slices.len();
        if name.starts_with("CPU ") {
            summary.cpu_slices += n;
        } else if name.contains(" incidents of ") {
            summary.incidents += n;
        } else {
            summary.thread_states += n;
        }
    }
    summary.packets = events
        .iter()
        .filter(|e| e["ph"] == "i" && e["cat"] == "packet")
        .count();
    summary
}

/// The timing behind "rendering a 1-hour recording takes seconds": a generated bundle
/// of one hour (3 VRRP groups advertising every second at 2 capture points, a 4.5 s
/// stop of the master with a takeover and a 2 s stall, 1 000 context switches and 300
/// wakeups a second on 2 CPUs, keepalived's syscalls, disk, CPU and task samples 10
/// times a second), then `vmlat plot` and `vmlat report` on it. Needs no root; run it
/// in release mode:
///
/// `cargo test --release --test report_live -- --ignored --nocapture one_hour`
#[test]
#[ignore = "a benchmark: run explicitly, in release mode"]
fn one_hour_recording_renders_in_seconds() {
    let dir = tempfile::tempdir().unwrap();
    let bundle = dir.path().join("hour.vmlat");
    let started = Instant::now();
    let records = synthetic::hour_bundle(&bundle);
    eprintln!("generated {records} records in {:?}", started.elapsed());
    let bundle = bundle.to_str().unwrap();
    let charts = dir.path().join("charts");
    for (what, args) in [
        ("analyze", vec!["analyze", "--json", bundle]),
        ("plot", vec!["plot", bundle, "-o", charts.to_str().unwrap()]),
        (
            "report",
            vec![
                "report",
                bundle,
                "-o",
                dir.path().join("r.html").to_str().unwrap(),
            ],
        ),
        (
            "export",
            vec![
                "export",
                "--perfetto",
                dir.path().join("t.json").to_str().unwrap(),
                bundle,
            ],
        ),
    ] {
        let started = Instant::now();
        let out = run_vmlat(&args);
        assert!(out.status.success(), "{what} failed: {}", stderr(&out));
        eprintln!("vmlat {what}: {:.2} s", started.elapsed().as_secs_f64());
        if what == "analyze" {
            let analysis: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
            let gaps = analysis["gaps"].as_array().unwrap();
            // VRID 51 stopped and VRID 52 stalled, each at two capture points: four
            // gaps, two incidents.
            assert_eq!(gaps.len(), 4, "{:#}", analysis["gaps"]);
            let incidents = analysis["incidents"].as_array().unwrap();
            assert_eq!(incidents.len(), 2, "{:#}", analysis["incidents"]);
        }
    }
}

/// A generated recording for the benchmark.
mod synthetic {
    use std::net::Ipv4Addr;
    use std::path::Path;

    use pcap_file::pcap::{PcapHeader, PcapPacket, PcapWriter};
    use pcap_file::{DataLink, TsResolution};
    use vmlat_analyzer::decode::ip::sum_words;
    use vmlat_bundle::{
        CaptureInfo, ClockAnchor, CpuSample, DiskSample, EventWriter, Manifest, Record,
        RecordedSet, Role, Status, TaskKind, TaskSample, EVENTS_FILE,
    };

    const S: i64 = 1_000_000_000;
    const HOUR: i64 = 3600;
    const T0: i64 = 1_763_816_400 * S;
    const MONO0: u64 = 1_000 * S as u64;
    const KEEPALIVED: i32 = 8238;
    /// The master of VRID 51 is stopped from here for 4.5 s.
    const STOP_AT: i64 = 1800 * S + 300_000_000;
    const STOP_NS: i64 = 4_500_000_000;

    fn checksum(data: &[u8]) -> u16 {
        let mut sum = sum_words(data);
        while sum > 0xffff {
            sum = (sum & 0xffff) + (sum >> 16);
        }
        !(sum as u16)
    }

    /// An Ethernet frame with a VRRPv2 advert.
    fn advert(vrid: u8, src: Ipv4Addr, priority: u8, ip_id: u16) -> Vec<u8> {
        let mut vrrp = vec![0x21, vrid, priority, 1, 0, 1, 0, 0, 10, 10, 0, 100];
        vrrp.extend_from_slice(&[0; 8]);
        let c = checksum(&vrrp).to_be_bytes();
        vrrp[6..8].copy_from_slice(&c);
        let mut ip = vec![0x45, 0xc0, 0, 40];
        ip.extend_from_slice(&ip_id.to_be_bytes());
        ip.extend_from_slice(&[0, 0, 255, 112, 0, 0]);
        ip.extend_from_slice(&src.octets());
        ip.extend_from_slice(&[224, 0, 0, 18]);
        let c = checksum(&ip).to_be_bytes();
        ip[10..12].copy_from_slice(&c);
        let mut frame = vec![1, 0, 0x5e, 0, 0, 0x12, 0, 0, 0x5e, 0, 1, vrid, 8, 0];
        frame.extend(ip);
        frame.extend(vrrp);
        frame
    }

    /// Writes the bundle; returns the number of event records.
    pub fn hour_bundle(dir: &Path) -> u64 {
        std::fs::create_dir_all(dir.join("pcap")).unwrap();
        let master = Ipv4Addr::new(10, 10, 0, 1);
        let backup = Ipv4Addr::new(10, 10, 0, 2);
        // (time, vrid, src, priority) of every advert.
        let mut adverts: Vec<(i64, u8, Ipv4Addr, u8)> = Vec::new();
        for vrid in [51u8, 52, 53] {
            let phase = i64::from(vrid - 51) * 250_000_000;
            for s in 0..HOUR {
                let t = s * S + phase;
                let stopped = vrid == 51 && (STOP_AT..STOP_AT + STOP_NS).contains(&t);
                let stalled = vrid == 52 && (600 * S..602 * S).contains(&t);
                if !stopped && !stalled {
                    adverts.push((t, vrid, master, 150));
                }
            }
        }
        // The backup of VRID 51 takes over 3.61 s into the stop until the master returns.
        let mut t = STOP_AT + 3_610_000_000 - 700_000_000;
        while t < STOP_AT + STOP_NS - 300_000_000 {
            adverts.push((t, 51, backup, 100));
            t += S;
        }
        adverts.sort_by_key(|a| a.0);
        let mut captures = Vec::new();
        for (name, offset) in [("eth0@vr1", 20_000), ("br0@sw", 45_000)] {
            let file = format!("pcap/{name}.pcap");
            let header = PcapHeader {
                datalink: DataLink::ETHERNET,
                ts_resolution: TsResolution::NanoSecond,
                ..PcapHeader::default()
            };
            let out = std::io::BufWriter::new(std::fs::File::create(dir.join(&file)).unwrap());
            let mut w = PcapWriter::with_header(out, header).unwrap();
            for (i, (t, vrid, src, prio)) in adverts.iter().enumerate() {
                let frame = advert(*vrid, *src, *prio, i as u16);
                let ts = std::time::Duration::from_nanos((T0 + t + offset) as u64);
                w.write_packet(&PcapPacket::new(ts, frame.len() as u32, &frame))
                    .unwrap();
            }
            captures.push(CaptureInfo {
                name: name.into(),
                interface: name.split('@').next().unwrap().into(),
                netns: None,
                filter: "ip proto 112".into(),
                file,
                linktype: 1,
                packets: adverts.len() as u64,
                mac: None,
                probes_sent: None,
            });
        }
        let manifest = Manifest {
            format_version: 1,
            vmlat_version: "synthetic".into(),
            hostname: "vm".into(),
            role: Role::Guest,
            kernel: "6.1".into(),
            arch: "x86_64".into(),
            cpus: 2,
            boot_id: "synthetic".into(),
            command_line: Vec::new(),
            started_realtime_ns: T0,
            started_monotonic_ns: MONO0,
            stopped_realtime_ns: Some(T0 + HOUR * S),
            stopped_monotonic_ns: Some(MONO0 + (HOUR * S) as u64),
            status: Status::Complete,
            recorded: RecordedSet {
                captures,
                comms: vec!["keepalived".into()],
                disk_interval_ms: 100,
                keepalived_journal: Default::default(),
                user: None,
                ..RecordedSet::default()
            },
            losses: Default::default(),
        };
        manifest.store(dir).unwrap();
        events(dir)
    }

    fn events(dir: &Path) -> u64 {
        let mut w = EventWriter::create(&dir.join(EVENTS_FILE)).unwrap();
        let mono = |ns: i64| MONO0 + ns as u64;
        let switch =
            |t: i64, cpu: u32, prev: (i32, &str, u64), next: (i32, &str)| Record::SchedSwitch {
                t: mono(t),
                cpu,
                prev_tid: prev.0,
                prev_comm: prev.1.into(),
                prev_prio: 120,
                prev_state: prev.2,
                next_tid: next.0,
                next_comm: next.1.into(),
                next_prio: 120,
            };
        w.append(&Record::TaskInfo {
            t: mono(0),
            tid: KEEPALIVED,
            tgid: KEEPALIVED,
            ppid: 8230,
            comm: "keepalived".into(),
        })
        .unwrap();
        let mut disk = 0u64;
        // One millisecond at a time: 1 switch per ms (alternating CPUs), a wakeup every
        // 3.3 ms, the samplers every 100 ms, a clock anchor every second, keepalived's
        // send at each second.
        for ms in 0..HOUR * 1000 {
            let t = ms * 1_000_000;
            let cpu = (ms % 2) as u32;
            let stopped = (STOP_AT..STOP_AT + STOP_NS).contains(&t);
            if ms % 1000 == 0 {
                w.append(&Record::Clock(ClockAnchor {
                    realtime_ns: T0 + t,
                    monotonic_ns: mono(t),
                    uncertainty_ns: 50,
                }))
                .unwrap();
            }
            if ms % 1000 == 0 && !stopped {
                let at = t + 100_000;
                w.append(&switch(
                    at,
                    1,
                    (0, "swapper", 0),
                    (KEEPALIVED, "keepalived"),
                ))
                .unwrap();
                // epoll_wait returns, sendmsg, epoll_wait again.
                for (dt, nr, enter) in [
                    (1_000, 232i64, false),
                    (10_000, 46, true),
                    (16_000, 46, false),
                    (30_000, 232, true),
                ] {
                    let (t, cpu, tid, tgid) = (mono(at + dt), 1, KEEPALIVED, KEEPALIVED);
                    w.append(&if enter {
                        Record::SyscallEnter {
                            t,
                            cpu,
                            tid,
                            tgid,
                            nr,
                            args: [0; 6],
                        }
                    } else {
                        Record::SyscallExit {
                            t,
                            cpu,
                            tid,
                            tgid,
                            nr,
                            ret: 1,
                        }
                    })
                    .unwrap();
                }
                // Stopped by SIGSTOP right after this send: switched out in state T.
                let state = if (STOP_AT - S..STOP_AT).contains(&t) {
                    4
                } else {
                    1
                };
                w.append(&switch(
                    at + 40_000,
                    1,
                    (KEEPALIVED, "keepalived", state),
                    (0, "swapper"),
                ))
                .unwrap();
            } else {
                let worker = 1000 + (ms % 7) as i32;
                w.append(&switch(
                    t + 500_000,
                    cpu,
                    (0, "swapper", 0),
                    (worker, "worker"),
                ))
                .unwrap();
                w.append(&switch(
                    t + 900_000,
                    cpu,
                    (worker, "worker", 1),
                    (0, "swapper"),
                ))
                .unwrap();
            }
            if ms % 3 == 0 {
                w.append(&Record::SchedWakeup {
                    t: mono(t + 950_000),
                    cpu,
                    waker_tid: 0,
                    tid: 1000 + (ms % 7) as i32,
                    comm: "worker".into(),
                    prio: 120,
                    target_cpu: cpu as i32,
                    new_task: false,
                })
                .unwrap();
            }
            if ms % 100 == 0 {
                let s = ms as u64 / 100;
                disk += 3;
                w.append(&Record::Disk(Box::new(DiskSample {
                    t: mono(t),
                    device: "vda".into(),
                    major: 254,
                    minor: 0,
                    reads: s,
                    reads_merged: 0,
                    sectors_read: s * 8,
                    read_ms: s,
                    writes: disk,
                    writes_merged: 0,
                    sectors_written: disk * 8,
                    write_ms: disk * 2,
                    in_flight: s % 3,
                    io_ticks_ms: s * 5,
                    time_in_queue_ms: s * 6,
                    discards: 0,
                    discard_ms: 0,
                    flushes: 0,
                    flush_ms: 0,
                })))
                .unwrap();
                for c in [None, Some(0), Some(1)] {
                    w.append(&Record::Cpu(Box::new(CpuSample {
                        t: mono(t),
                        cpu: c,
                        user: s * 3,
                        nice: 0,
                        system: s,
                        idle: s * 5,
                        iowait: 0,
                        irq: 0,
                        softirq: 0,
                        steal: s / 10,
                        guest: 0,
                        guest_nice: 0,
                        ticks_per_second: 100,
                    })))
                    .unwrap();
                }
                w.append(&Record::Task(TaskSample {
                    t: mono(t),
                    tgid: KEEPALIVED,
                    tid: KEEPALIVED,
                    comm: "keepalived".into(),
                    kind: TaskKind::Traced,
                    run_ns: s * 1000,
                    wait_ns: s * 10,
                    timeslices: s,
                    state: if stopped { 'T' } else { 'S' },
                }))
                .unwrap();
            }
        }
        w.flush().unwrap();
        w.records_written()
    }
}

//! Renderer tests on hand-built analyses: a gap with every close-up lane, an empty
//! analysis, a gap at the very edge of its recording with an inverted window, and a
//! Perfetto export of a small bundle written here.

use std::net::IpAddr;
use std::path::Path;

use vmlat_analyzer::{
    Advert, Analysis, BundleSummary, CaptureLane, CpuLane, CpuSpan, DiskLane, DiskPoint, Failover,
    FailoverKind, Gap, GapContext, GroupKey, Incident, IncidentFailover, IncidentKind,
    IntervalBasis, IntervalStats, PacketRef, PathRow, Protocol, SeriesPoint, StateSpan, Stream,
    StreamKey, Suspect, SuspectKind, Takeover, TaskLane, TaskState, Timestamp, Verdict,
};
use vmlat_analyzer::{Alignment, CrossMachine};

use vmlat_bundle::{Losses, Role};

use crate::canvas::{svg, write, Figure, Format};
use crate::{charts, html, perfetto};

const T0: i64 = 1_763_816_460_000_000_000; // 2025-11-22T13:01:00Z
const S: i64 = 1_000_000_000;

fn t(secs: f64) -> Timestamp {
    Timestamp(T0 + (secs * S as f64) as i64)
}

fn key(capture: &str, src: &str) -> StreamKey {
    StreamKey {
        group: GroupKey {
            capture: capture.into(),
            protocol: Protocol::Vrrp,
            vrid: 51,
            vlan: None,
        },
        src: src.parse::<IpAddr>().unwrap(),
        peer: None,
    }
}

fn stream(k: StreamKey, first: f64, last: f64, adverts: u64) -> Stream {
    Stream {
        key: k,
        dst: "224.0.0.18".parse().unwrap(),
        version: Some(2),
        priority: Some(150),
        priority_min: Some(150),
        adverts,
        duplicates: 0,
        advert_interval_ms: Some(1000.0),
        interval_ms: Some(IntervalStats {
            p50: 1000.0,
            p99: 4032.0,
            max: 4032.0,
        }),
        master_down_ms: Some(3609.375),
        first: t(first),
        last: t(last),
    }
}

fn packet(at: Timestamp) -> PacketRef {
    PacketRef {
        t: at,
        ip_id: Some(1),
        ip_checksum: Some(2),
        checksum: 3,
        ifindex: None,
        priority: Some(150),
    }
}

fn span(a: f64, b: f64, state: TaskState, detail: Option<&str>) -> StateSpan {
    StateSpan {
        start: t(a),
        end: t(b),
        state,
        detail: detail.map(String::from),
    }
}

/// Every lane a context can hold, around a gap from 3 s to 7 s.
fn context() -> GapContext {
    let cpu_spans = (0..400)
        .map(|i| {
            let a = 2.0 + f64::from(i) * 0.015;
            CpuSpan {
                start: t(a),
                end: t(a + 0.01),
                tid: if i % 3 == 0 { 0 } else { 100 + i % 5 },
                comm: if i % 3 == 0 {
                    "swapper/0".into()
                } else {
                    format!("worker{}", i % 5)
                },
            }
        })
        .collect();
    let task = |comm: &str, tid: i32, spans: Vec<StateSpan>| TaskLane {
        host: "vm".into(),
        tgid: tid,
        tid,
        comm: comm.into(),
        spans,
    };
    GapContext {
        window_start: t(2.0),
        window_end: t(8.0),
        packets: vec![
            CaptureLane {
                capture: "eth0@vr1".into(),
                src: "10.10.0.1".parse().unwrap(),
                packets: vec![t(2.0), t(3.0), t(7.0), t(8.0)],
            },
            CaptureLane {
                capture: "eth0@vr1".into(),
                src: "10.10.0.2".parse().unwrap(),
                packets: vec![t(6.6)],
            },
        ],
        sends: vec![t(2.999), t(7.0)],
        sender: Some(task(
            "keepalived",
            8238,
            vec![
                span(2.0, 2.999, TaskState::Sleeping, Some("epoll_wait()")),
                span(2.999, 3.0, TaskState::Running, None),
                span(3.0, 3.02, TaskState::Runnable, None),
                span(3.02, 3.5, TaskState::Blocked, Some("write(fd 15)")),
                span(
                    3.5,
                    6.99,
                    TaskState::Stopped,
                    Some("SIGSTOP from bash 9001"),
                ),
                span(6.99, 7.0, TaskState::Frozen, None),
                span(7.0, 8.0, TaskState::Unknown, None),
            ],
        )),
        cpus: vec![CpuLane {
            host: "vm".into(),
            cpu: 1,
            spans: cpu_spans,
        }],
        disks: vec![DiskLane {
            host: "vm".into(),
            device: "vda".into(),
            points: (0..60)
                .map(|i| DiskPoint {
                    t: t(2.0 + f64::from(i) * 0.1),
                    r_await_ms: f64::from(i % 7),
                    w_await_ms: if i == 30 { f64::INFINITY } else { f64::from(i) },
                    aqu_sz: 0.5,
                    util_pct: f64::from(i) * 3.0,
                    in_flight: u64::from(i as u32 % 4),
                })
                .collect(),
        }],
        steal: (0..6)
            .map(|i| SeriesPoint {
                t: t(2.0 + f64::from(i)),
                value: f64::from(i) * 2.5,
            })
            .collect(),
        vcpus: vec![task(
            "CPU 0/KVM",
            4242,
            vec![
                span(2.0, 5.0, TaskState::Running, None),
                span(
                    5.0,
                    8.0,
                    TaskState::Runnable,
                    Some("CPU 3 held by stress-ng"),
                ),
            ],
        )],
    }
}

fn gap(k: StreamKey, start: f64, end: f64, incident: usize) -> Gap {
    Gap {
        stream: k,
        start: t(start),
        end: t(end),
        duration_ms: (end - start) * 1e3,
        interval_ms: 1000.0,
        interval_basis: IntervalBasis::Advertised,
        threshold_ms: 1500.0,
        critical_after_ms: Some(3609.375),
        critical_basis: Some("master-down interval 3.609 s".into()),
        critical: true,
        takeovers: vec![Takeover {
            at: t(start + 3.61),
            to: "10.10.0.2".parse().unwrap(),
            kind: FailoverKind::MasterDown,
        }],
        open: false,
        prev: packet(t(start)),
        next: Some(packet(t(end))),
        incident,
    }
}

/// The silence incident of `k`'s gap from `start` to `end`.
fn incident(id: usize, k: &StreamKey, start: f64, end: f64, ctx: Option<GapContext>) -> Incident {
    Incident {
        id,
        kind: IncidentKind::Silence,
        protocol: k.group.protocol,
        vrid: k.group.vrid,
        vlan: None,
        src: k.src,
        dst: None,
        start: t(start),
        end: t(end),
        duration_ms: (end - start) * 1e3,
        interval_ms: 1000.0,
        threshold_ms: 1500.0,
        critical_after_ms: Some(3609.375),
        critical_basis: Some("master-down interval 3.609 s".into()),
        critical: true,
        failovers: vec![IncidentFailover {
            at: t(start + 3.61),
            capture: k.group.capture.clone(),
            from: k.src,
            to: "10.10.0.2".parse().unwrap(),
            kind: FailoverKind::MasterDown,
        }],
        routers: Vec::new(),
        verdict: Verdict::AppStopped,
        summary: "keepalived VRRP process 8238 was stopped, not sleeping".into(),
        evidence: (0..14)
            .map(|i| {
                format!(
                    "evidence line {i} with <markup> & a long tail {}",
                    "x".repeat(i * 12)
                )
            })
            .collect(),
        path: vec![PathRow {
            capture: k.group.capture.clone(),
            host: Some("vm1".into()),
            last_before: Some(t(start)),
            first_after: Some(t(end)),
            during: 0,
            silent: true,
            delay_ms: Some(0.0),
            delay_from: Some("first-capture".into()),
            clock_error_ms: Some(0.0),
        }],
        first_silent: Some(k.group.capture.clone()),
        suspects: vec![Suspect {
            kind: SuspectKind::Signal,
            host: "vm1".into(),
            at: Some(t(start + 0.2)),
            tid: 8238,
            text: "SIGSTOP to keepalived 8238 from pid 9001 (bash)".into(),
        }],
        keepalived_log: Vec::new(),
        context: ctx,
    }
}

fn analysis() -> Analysis {
    let master = key("eth0@vr1", "10.10.0.1");
    let backup = key("eth0@vr1", "10.10.0.2");
    Analysis {
        format_version: 1,
        gap_factor: 1.5,
        window_ms: 1000.0,
        heartbeat_ports: vec![3784, 5405],
        inputs: Vec::new(),
        bundles: Vec::new(),
        alignments: Vec::new(),
        keepalived_logs: Vec::new(),
        malformed_packets: 0,
        streams: vec![
            stream(master.clone(), 0.0, 12.0, 9),
            stream(backup.clone(), 6.6, 6.6, 1),
        ],
        failovers: vec![Failover {
            group: master.group.clone(),
            at: t(6.61),
            from: master.src,
            to: backup.src,
            kind: FailoverKind::MasterDown,
            from_last_seen: t(3.0),
            from_priority: Some(150),
            to_priority: Some(100),
        }],
        split_brains: Vec::new(),
        gaps: vec![
            gap(master.clone(), 3.0, 7.0, 1),
            gap(master.clone(), 0.0, 0.0, 2),
        ],
        incidents: vec![
            incident(1, &master, 3.0, 7.0, Some(context())),
            // At the very start of the recording, its window inverted: still drawn.
            incident(2, &master, 0.0, 0.0, None),
        ],
        disks: context().disks,
        adverts: [
            (
                master,
                [0.0, 1.0, 2.0, 3.0, 7.0, 8.0, 9.0, 10.0, 11.0, 12.0]
                    .iter()
                    .map(|s| Advert {
                        t: t(*s),
                        priority: Some(150),
                    })
                    .collect(),
            ),
            (
                backup,
                vec![Advert {
                    t: t(6.6),
                    priority: Some(100),
                }],
            ),
        ]
        .into(),
    }
}

fn render_all(a: &Analysis, dir: &Path) -> Vec<String> {
    let mut names = Vec::new();
    for chart in charts(a, None).unwrap() {
        for format in [Format::Png, Format::Svg] {
            let path = dir.join(format!("{}.{}", chart.name(), format.extension()));
            write(&chart, format, &path).unwrap();
            assert!(
                std::fs::metadata(&path).unwrap().len() > 1000,
                "{}",
                path.display()
            );
        }
        names.push(chart.name());
    }
    names
}

#[test]
fn every_chart_renders_with_every_lane_in_png_and_svg() {
    let a = analysis();
    let dir = tempfile::tempdir().unwrap();
    let names = render_all(&a, dir.path());
    assert_eq!(
        names,
        ["timeline", "intervals", "disks", "incident-1", "incident-2"]
    );
    let closeup = charts(&a, Some(1)).unwrap().pop().unwrap();
    let svg = svg(&closeup).unwrap();
    for lane in [
        "Adverts of vrrp 51",
        "Sending process",
        "What ran on its CPUs",
        "Disk vda (vm): await",
        "Disk vda (vm): requests in flight",
        "Steal time",
        "vCPU threads",
        "stopped: SIGSTOP from bash 9001",
        "master-down (3.609 s)",
        "10.10.0.2 took over (master-down)",
        "verdict app-stopped",
    ] {
        assert!(svg.contains(lane), "the close-up lacks {lane:?}");
    }
    assert!(!svg.contains("<markup>"), "text is escaped in SVG");
}

#[test]
fn the_timeline_spans_the_whole_recording() {
    let mut a = analysis();
    // Streams from 0 s to 12 s, the recording from -5 s to 20 s.
    a.bundles.push(BundleSummary {
        input: "vm.vmlat".into(),
        host: "vm".into(),
        role: Role::Guest,
        events: 0,
        kept: 0,
        kept_peak: 0,
        not_recorded: Vec::new(),
        warnings: Vec::new(),
        torn_tail: false,
        alignment: Alignment {
            anchors: 0,
            max_anchor_uncertainty_ns: 0,
            max_step_ns: 0,
            error_bound_ns: 0,
            cross_machine: CrossMachine::WallClock {
                why: "one machine".into(),
            },
        },
        losses: Losses::default(),
        started: t(-5.0),
        stopped: t(20.0),
    });
    let timeline = charts(&a, None).unwrap().remove(0);
    let svg = svg(&timeline).unwrap();
    assert!(svg.contains("13:00:55"), "starts at the recording's start");
    assert!(svg.contains("(25.000 s)"), "spans the recording");
}

#[test]
fn an_empty_analysis_renders_without_panicking() {
    let mut a = analysis();
    a.streams.clear();
    a.failovers.clear();
    a.gaps.clear();
    a.incidents.clear();
    a.disks.clear();
    a.adverts.clear();
    let dir = tempfile::tempdir().unwrap();
    assert_eq!(render_all(&a, dir.path()), ["timeline", "intervals"]);
    let page = html::render(&a).unwrap();
    assert!(page.contains("No incidents"));
    assert!(charts(&a, Some(1)).is_err(), "incident 1 does not exist");
}

#[test]
fn the_report_holds_every_incident_and_fetches_nothing() {
    let a = analysis();
    let page = html::render(&a).unwrap();
    for n in 1..=a.incidents.len() {
        assert!(page.contains(&format!("<article id=\"incident-{n}\">")));
    }
    assert!(page.contains("app-stopped"));
    assert!(page.contains("&lt;markup&gt;"));
    for forbidden in ["src=", "href=", "url(", "<script", "<link"] {
        assert!(!page.contains(forbidden), "{forbidden}");
    }
}

#[test]
fn perfetto_export_of_a_small_bundle_follows_the_trace_event_format() {
    use vmlat_bundle::{
        ClockAnchor, EventWriter, Manifest, Record, RecordedSet, Status, EVENTS_FILE,
    };
    let dir = tempfile::tempdir().unwrap();
    let start_mono = 1_000 * S as u64;
    let manifest = Manifest {
        format_version: 1,
        vmlat_version: "test".into(),
        hostname: "vm".into(),
        role: Role::Guest,
        kernel: "6.1".into(),
        arch: "x86_64".into(),
        cpus: 2,
        boot_id: "b".into(),
        command_line: Vec::new(),
        started_realtime_ns: T0,
        started_monotonic_ns: start_mono,
        stopped_realtime_ns: Some(T0 + 12 * S),
        stopped_monotonic_ns: Some(start_mono + 12 * S as u64),
        status: Status::Complete,
        recorded: RecordedSet {
            comms: vec!["keepalived".into()],
            ..RecordedSet::default()
        },
        losses: Default::default(),
    };
    manifest.store(dir.path()).unwrap();
    let mono = |s: f64| start_mono + (s * S as f64) as u64;
    let switch = |at: f64, cpu: u32, prev: i32, state: u64, next: i32| Record::SchedSwitch {
        t: mono(at),
        cpu,
        prev_tid: prev,
        prev_comm: if prev == 0 {
            "swapper".into()
        } else {
            "keepalived".into()
        },
        prev_prio: 120,
        prev_state: state,
        next_tid: next,
        next_comm: if next == 0 {
            "swapper".into()
        } else {
            "keepalived".into()
        },
        next_prio: 120,
    };
    let mut w = EventWriter::create(&dir.path().join(EVENTS_FILE)).unwrap();
    for r in [
        Record::Clock(ClockAnchor {
            realtime_ns: T0,
            monotonic_ns: mono(0.0),
            uncertainty_ns: 10,
        }),
        Record::TaskInfo {
            t: mono(0.0),
            tid: 8238,
            tgid: 8238,
            ppid: 1,
            comm: "keepalived".into(),
        },
        switch(1.0, 0, 0, 0, 8238),
        Record::SyscallEnter {
            t: mono(1.001),
            cpu: 0,
            tid: 8238,
            tgid: 8238,
            nr: 232,
            args: [0; 6],
        },
        switch(1.002, 0, 8238, 1, 0),
        Record::SchedWakeup {
            t: mono(2.0),
            cpu: 1,
            waker_tid: 0,
            tid: 8238,
            comm: "keepalived".into(),
            prio: 120,
            target_cpu: 1,
            new_task: false,
        },
        switch(2.001, 1, 0, 0, 8238),
        switch(3.0, 1, 8238, 4, 0),
        // A thread known to be traced only from its first syscall: its track starts
        // with the state it was in then.
        switch(4.0, 0, 0, 0, 8300),
        Record::SyscallEnter {
            t: mono(4.5),
            cpu: 0,
            tid: 8300,
            tgid: 8238,
            nr: 1,
            args: [0; 6],
        },
        switch(5.0, 0, 8300, 2, 0),
        Record::SchedWakeup {
            t: mono(6.0),
            cpu: 0,
            waker_tid: 0,
            tid: 8300,
            comm: "keepalived".into(),
            prio: 120,
            target_cpu: 0,
            new_task: false,
        },
        // Switched out exiting (Z): nothing after.
        switch(6.5, 0, 0, 0, 8300),
        switch(7.0, 0, 8300, 0x20, 0),
        switch(8.0, 1, 0, 0, 0),
    ] {
        w.append(&r).unwrap();
    }
    w.flush().unwrap();
    drop(w);

    // The bundles exported are those of the analysis.
    let mut a = analysis();
    let mut out = Vec::new();
    let summary = perfetto::export(&a, &[dir.path().to_path_buf()], &mut out).unwrap();
    assert_eq!((summary.cpu_slices, summary.thread_slices), (0, 0));
    a.bundles.push(BundleSummary {
        input: dir.path().display().to_string(),
        host: "vm".into(),
        role: Role::Guest,
        events: 0,
        kept: 0,
        kept_peak: 0,
        not_recorded: Vec::new(),
        warnings: Vec::new(),
        torn_tail: false,
        alignment: Alignment {
            anchors: 0,
            max_anchor_uncertainty_ns: 0,
            max_step_ns: 0,
            error_bound_ns: 0,
            cross_machine: CrossMachine::WallClock {
                why: "one machine".into(),
            },
        },
        losses: Losses::default(),
        started: t(0.0),
        stopped: t(12.0),
    });
    let mut out = Vec::new();
    let summary = perfetto::export(&a, &[dir.path().to_path_buf()], &mut out).unwrap();
    assert_eq!(summary.incidents, 2);
    assert_eq!(summary.packets, 11);
    assert_eq!(summary.cpu_slices, 4);
    let json: serde_json::Value = serde_json::from_slice(&out).expect("valid JSON");
    let events = json["traceEvents"].as_array().unwrap();
    let mut names = Vec::new();
    // (tid, name, ts, dur) of the thread-state slices of process 8238.
    let mut states = Vec::new();
    for e in events {
        assert!(
            e["name"].is_string() && e["pid"].is_i64() && e["tid"].is_i64(),
            "{e}"
        );
        match e["ph"].as_str().unwrap() {
            "M" => assert!(e["args"]["name"].is_string()),
            "X" => {
                let (ts, dur) = (e["ts"].as_f64().unwrap(), e["dur"].as_f64().unwrap());
                assert!(ts >= 0.0 && dur >= 0.0);
                let name = e["name"].as_str().unwrap().to_string();
                if e["pid"] == 8238 {
                    states.push((e["tid"].as_i64().unwrap(), name.clone(), ts, dur));
                }
                names.push(name);
            }
            "i" => assert_eq!(e["s"], "t"),
            other => panic!("phase {other}"),
        }
    }
    assert!(
        names
            .iter()
            .any(|n| n == "incident 1: app-stopped (4.000 s)"),
        "no incident slice in {names:?}"
    );
    let ms = |us: f64| us.round() / 1e3;
    let states: Vec<(i64, &str, f64, f64)> = states
        .iter()
        .map(|(tid, name, ts, dur)| (*tid, name.as_str(), ms(*ts), ms(*dur)))
        .collect();
    assert_eq!(
        states,
        [
            (8238, "Running", 1000.0, 2.0),
            (8238, "Sleeping in epoll_wait", 1002.0, 998.0),
            (8238, "Runnable", 2000.0, 1.0),
            (8238, "Running", 2001.0, 999.0),
            (8300, "Running", 4000.0, 1000.0),
            (8300, "Blocked (D) in write", 5000.0, 1000.0),
            (8300, "Runnable", 6000.0, 500.0),
            (8300, "Running", 6500.0, 500.0),
            // Until the last record.
            (8238, "Stopped (T)", 3000.0, 5000.0),
        ]
    );
    let thread_names: Vec<&str> = events
        .iter()
        .filter(|e| e["name"] == "thread_name" && e["pid"] == 8238)
        .map(|e| e["args"]["name"].as_str().unwrap())
        .collect();
    assert_eq!(thread_names, ["keepalived 8238", "keepalived 8300"]);
    assert_eq!(
        json["otherData"]["time_base_utc"],
        "2025-11-22T13:01:00.000000000Z"
    );
}

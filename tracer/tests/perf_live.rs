//! The perf collector against the running kernel: needs root (perf_event_open on
//! tracepoints system-wide, tracefs). Without root each test says why and passes,
//! unless `CI` is set: there, missing privileges are a failure, not a skip.
//!
//! The traced child is perl (perl-base is essential on Debian) exec'd through a
//! symlink named `vmlat-child`, so that the kernel names the task after the link and
//! the syscall filter can select it by comm.

use std::os::unix::process::CommandExt;
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use crossbeam_channel::Receiver;
use vmlat_bundle::Record;
use vmlat_tracer::perf::{
    OpenReport, PerfCollector, PerfConfig, PerfSummary, Tracepoint, TracepointState,
};
use vmlat_tracer::pipeline::{Batch, LossCounters, Sink, QUEUE_RECORDS};

/// The collectors of these tests would see each other's load; run one at a time.
static SERIAL: Mutex<()> = Mutex::new(());

const CHILD_COMM: &str = "vmlat-child";
/// What the child does: sendto()s 5 bytes, 40 times, 25 ms apart, then sleep(1)
/// (clock_nanosleep), then exits.
const CHILD_SCRIPT: &str = r#"
use Socket;
socket(my $s, PF_INET, SOCK_DGRAM, 0) or die "socket: $!";
my $to = sockaddr_in(9, inet_aton("127.0.0.1"));
for my $i (1..40) { send($s, "vmlat", 0, $to); select(undef, undef, undef, 0.025); }
sleep 1;
"#;

fn have_root(test: &str) -> bool {
    if rustix::process::geteuid().is_root() {
        return true;
    }
    if std::env::var_os("CI").is_some() {
        panic!(
            "{test} needs root (perf tracepoints system-wide) and CI is set: run the tests as root"
        );
    }
    eprintln!("skipping {test}: needs root for perf tracepoints (set CI to make this a failure)");
    false
}

struct Recording {
    stop: Arc<AtomicBool>,
    thread: thread::JoinHandle<Result<PerfSummary, String>>,
    batches: Receiver<Batch>,
    losses: Arc<LossCounters>,
    report: OpenReport,
}

/// Opens a collector on its own thread and returns once it records.
fn start(config: PerfConfig) -> Recording {
    let (tx, batches) = crossbeam_channel::bounded(100_000);
    let losses = Arc::new(LossCounters::default());
    let sink = Sink::new(0, tx, losses.clone(), Arc::default(), QUEUE_RECORDS);
    let stop = Arc::new(AtomicBool::new(false));
    let (ready_tx, ready) = crossbeam_channel::bounded(1);
    let thread = thread::spawn({
        let stop = stop.clone();
        move || {
            let collector = PerfCollector::open(&config).map_err(|e| e.to_string());
            let collector = match collector {
                Ok(c) => c,
                Err(e) => {
                    let _ = ready_tx.send(Err(e.clone()));
                    return Err(e);
                }
            };
            let _ = ready_tx.send(Ok(collector.report().clone()));
            collector.run(&stop, sink).map_err(|e| e.to_string())
        }
    });
    let report = ready
        .recv()
        .unwrap()
        .unwrap_or_else(|e| panic!("open failed: {e}"));
    Recording {
        stop,
        thread,
        batches,
        losses,
        report,
    }
}

/// Stops the collector and returns every record, checking the watermark promise:
/// no batch holds a record earlier than the previous batch's watermark.
fn finish(rec: Recording) -> (Vec<Record>, PerfSummary) {
    rec.stop.store(true, Ordering::Relaxed);
    let summary = rec.thread.join().unwrap().unwrap();
    let mut records = Vec::new();
    let mut watermark = 0;
    for batch in rec.batches.try_iter() {
        for r in &batch.records {
            assert!(
                r.time() >= watermark,
                "{r:?} is earlier than watermark {watermark}"
            );
        }
        assert!(batch.watermark >= watermark, "watermarks go forward");
        watermark = batch.watermark;
        records.extend(batch.records);
    }
    let losses = rec.losses.snapshot();
    assert_eq!(losses.perf_lost, summary.lost);
    assert_eq!(
        losses.decode_errors, summary.decode_errors,
        "{:?}",
        summary.first_decode_error
    );
    assert_eq!(losses.queue_dropped, 0);
    (records, summary)
}

fn state(report: &OpenReport, tp: Tracepoint) -> &TracepointState {
    &report.tracepoints.iter().find(|(t, _)| *t == tp).unwrap().1
}

#[test]
fn records_a_traced_child_end_to_end() {
    if !have_root("records_a_traced_child_end_to_end") {
        return;
    }
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let dir = tempfile::tempdir().unwrap();
    let child_path = dir.path().join(CHILD_COMM);
    std::os::unix::fs::symlink("/usr/bin/perl", &child_path).unwrap();

    let rec = start(PerfConfig {
        comms: vec![CHILD_COMM.into()],
        ..PerfConfig::default()
    });
    for tp in Tracepoint::ALL {
        // The hypervisor's tracepoints are the host role's only.
        let expected = if tp.is_host_only() {
            TracepointState::NotRequested
        } else {
            TracepointState::Opened
        };
        assert_eq!(state(&rec.report, tp), &expected, "{tp}");
    }
    assert_eq!(
        rec.report.syscall_filter.as_deref(),
        Some(r#"comm == "vmlat-child""#)
    );

    let me = std::process::id() as i32;
    let my_tid = rustix::thread::gettid().as_raw_nonzero().get();
    let started = Instant::now();
    let mut child = Command::new(&child_path)
        .arg0(CHILD_COMM)
        .args(["-e", CHILD_SCRIPT])
        .spawn()
        .unwrap();
    let pid = child.id() as i32;
    thread::sleep(Duration::from_millis(300));
    let stop_at = Instant::now();
    rustix::process::kill_process(
        rustix::process::Pid::from_raw(pid).unwrap(),
        rustix::process::Signal::STOP,
    )
    .unwrap();
    thread::sleep(Duration::from_millis(300));
    rustix::process::kill_process(
        rustix::process::Pid::from_raw(pid).unwrap(),
        rustix::process::Signal::CONT,
    )
    .unwrap();
    assert!(child.wait().unwrap().success());
    assert!(
        stop_at.duration_since(started) < Duration::from_millis(900),
        "SIGSTOP came after the child's sends"
    );
    thread::sleep(Duration::from_millis(200));
    let (records, summary) = finish(rec);

    assert_eq!(summary.lost, 0);
    assert_eq!(summary.decode_errors, 0, "{:?}", summary.first_decode_error);
    let any = |what: &str, f: &dyn Fn(&Record) -> bool| {
        assert!(
            records.iter().any(f),
            "no {what} among {} records",
            records.len()
        );
    };
    any(
        "fork of the child",
        &|r| matches!(r, Record::ProcessFork { child_tid, parent_tgid, .. } if *child_tid == pid && *parent_tgid == me),
    );
    any(
        "wakeup_new of the child",
        &|r| matches!(r, Record::SchedWakeup { tid, new_task: true, .. } if *tid == pid),
    );
    any("exec of the child", &|r| {
        matches!(r, Record::ProcessExec { tid, tgid, filename, comm, .. }
            if *tid == pid && *tgid == pid && filename.ends_with("/vmlat-child") && comm == CHILD_COMM)
    });
    any(
        "wakeup of the child",
        &|r| matches!(r, Record::SchedWakeup { tid, new_task: false, comm, .. } if *tid == pid && comm == CHILD_COMM),
    );
    any("switch out in state T", &|r| {
        matches!(r, Record::SchedSwitch { prev_tid, prev_state, prev_comm, .. }
            if *prev_tid == pid && prev_state & 0x4 != 0 && prev_comm == CHILD_COMM)
    });
    any(
        "switch in of the child",
        &|r| matches!(r, Record::SchedSwitch { next_tid, .. } if *next_tid == pid),
    );
    for sig in [libc::SIGSTOP, libc::SIGCONT] {
        any(&format!("signal {sig} from us to the child"), &|r| {
            matches!(r, Record::Signal { sig: s, sender_tgid, target_tid, target_comm, .. }
                if *s == sig && *sender_tgid == me && *target_tid == pid && target_comm == CHILD_COMM)
        });
    }
    // SIGCHLD goes to the thread that forked: this test's.
    any(
        "SIGCHLD to us",
        &|r| matches!(r, Record::Signal { sig, target_tid, .. } if *sig == libc::SIGCHLD && *target_tid == my_tid),
    );
    any(
        "exit of the child",
        &|r| matches!(r, Record::ProcessExit { tid, tgid, comm, .. } if *tid == pid && *tgid == pid && comm == CHILD_COMM),
    );

    let sendto = libc::SYS_sendto;
    let sends = records
        .iter()
        .filter(
            |r| matches!(r, Record::SyscallEnter { nr, args, .. } if *nr == sendto && args[2] == 5),
        )
        .count();
    assert_eq!(sends, 40, "every sendto(…, 5 bytes, …) entered");
    let returns = records
        .iter()
        .filter(|r| matches!(r, Record::SyscallExit { nr, ret: 5, .. } if *nr == sendto))
        .count();
    assert_eq!(returns, 40, "every sendto returned 5");
    any(
        "the child's sleep",
        &|r| matches!(r, Record::SyscallEnter { nr, .. } if *nr == libc::SYS_clock_nanosleep || *nr == libc::SYS_nanosleep),
    );
    for r in &records {
        if let Record::SyscallEnter { tid, tgid, .. } | Record::SyscallExit { tid, tgid, .. } = r {
            assert_eq!(
                (*tid, *tgid),
                (pid, pid),
                "a syscall of another process: {r:?}"
            );
        }
    }
}

#[test]
fn records_the_exit_group_code_of_an_untraced_child() {
    // exit_group is recorded for every process, without --comm or --pid.
    if !have_root("records_the_exit_group_code_of_an_untraced_child") {
        return;
    }
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let rec = start(PerfConfig::default());
    assert_eq!(
        state(&rec.report, Tracepoint::SysEnterExitGroup),
        &TracepointState::Opened
    );
    assert!(rec
        .report
        .opened()
        .contains(&"syscalls:sys_enter_exit_group".to_string()));
    let mut child = Command::new("sh").args(["-c", "exit 7"]).spawn().unwrap();
    let pid = child.id() as i32;
    assert_eq!(child.wait().unwrap().code(), Some(7));
    thread::sleep(Duration::from_millis(200));
    let (records, summary) = finish(rec);

    assert_eq!(summary.decode_errors, 0, "{:?}", summary.first_decode_error);
    let calls: Vec<(u64, i32, i64)> = records
        .iter()
        .filter_map(|r| match r {
            Record::ExitGroup {
                t, tid, tgid, code, ..
            } if *tgid == pid => Some((*t, *tid, *code)),
            _ => None,
        })
        .collect();
    assert_eq!(calls.len(), 1, "one exit_group of {pid}: {calls:?}");
    let (called, tid, code) = calls[0];
    assert_eq!((tid, code), (pid, 7));
    let exited = records
        .iter()
        .find_map(|r| match r {
            Record::ProcessExit { t, tid, .. } if *tid == pid => Some(*t),
            _ => None,
        })
        .expect("the child's sched_process_exit");
    assert!(called <= exited, "exit_group at {called}, exit at {exited}");
}

#[test]
fn a_comm_prefix_catches_a_renamed_child() {
    // keepalived's `process_names` renames its VRRP child `keepalived_vrrp`: a
    // `--comm keepalived*` must still record it, and an exact name must not.
    if !have_root("a_comm_prefix_catches_a_renamed_child") {
        return;
    }
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let dir = tempfile::tempdir().unwrap();
    let renamed = "vmlat-child_vrrp";
    let child_path = dir.path().join(renamed);
    std::os::unix::fs::symlink("/usr/bin/perl", &child_path).unwrap();
    let rec = start(PerfConfig {
        comms: vec![format!("{CHILD_COMM}*"), "vmlat-chil".into()],
        ..PerfConfig::default()
    });
    assert_eq!(
        rec.report.syscall_filter.as_deref(),
        Some(r#"comm ~ "vmlat-child*" || comm == "vmlat-chil""#)
    );
    let mut child = Command::new(&child_path)
        .args(["-e", "select(undef, undef, undef, 0.2) for 1..3"])
        .spawn()
        .unwrap();
    let pid = child.id() as i32;
    assert!(child.wait().unwrap().success());
    thread::sleep(Duration::from_millis(200));
    let (records, summary) = finish(rec);
    assert_eq!(summary.lost, 0);
    let syscalls = records
        .iter()
        .filter(|r| matches!(r, Record::SyscallEnter { tgid, .. } if *tgid == pid))
        .count();
    assert!(syscalls > 3, "{renamed}'s syscalls: {syscalls}");
}

#[test]
fn pid_filter_follows_threads_created_later() {
    if !have_root("pid_filter_follows_threads_created_later") {
        return;
    }
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let me = std::process::id() as i32;
    let rec = start(PerfConfig {
        pids: vec![me],
        ..PerfConfig::default()
    });
    assert!(rec
        .report
        .syscall_filter
        .as_deref()
        .unwrap()
        .contains(&format!("common_pid == {me}")));

    // A thread born after the filter was set: its syscalls show once the collector
    // has seen its fork (one drain round, ≤ 50 ms) and set the filter again.
    let worker = thread::spawn(|| {
        thread::sleep(Duration::from_millis(300));
        for _ in 0..3 {
            let _ = rustix::process::getppid();
        }
        rustix::thread::gettid().as_raw_nonzero().get()
    });
    let tid = worker.join().unwrap();
    thread::sleep(Duration::from_millis(200));
    let (records, summary) = finish(rec);

    assert!(summary.filter_updates >= 1, "{summary:?}");
    assert!(summary.warnings.is_empty(), "{:?}", summary.warnings);
    let getppids = records
        .iter()
        .filter(|r| matches!(r, Record::SyscallEnter { tid: t, nr, .. } if *t == tid && *nr == libc::SYS_getppid))
        .count();
    assert_eq!(getppids, 3, "the new thread's getppid()s");
    for r in &records {
        if let Record::SyscallEnter { tgid, .. } | Record::SyscallExit { tgid, .. } = r {
            assert_eq!(*tgid, me, "a syscall of another process: {r:?}");
        }
    }
}

/// Throughput under a context-switch storm; run by hand, in release:
/// `cargo test --release -p vmlat-tracer --test perf_live -- --ignored --nocapture`.
/// The load is `VMLAT_LOAD` (default `stress-ng --switch 1 -t 10s`), the traced names
/// `VMLAT_COMMS` (comma-separated, default `keepalived`; empty for no syscalls), the ring
/// size `VMLAT_RING_EXP`.
#[test]
#[ignore = "a measurement, not a check: run by hand"]
fn measure_throughput_under_load() {
    if !have_root("measure_throughput_under_load") {
        return;
    }
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let load = std::env::var("VMLAT_LOAD").unwrap_or_else(|_| "stress-ng --switch 1 -t 10s".into());
    let exp = std::env::var("VMLAT_RING_EXP")
        .map_or(PerfConfig::default().ring_pages_exp, |e| e.parse().unwrap());
    let comms = std::env::var("VMLAT_COMMS").unwrap_or_else(|_| "keepalived".into());
    let comms: Vec<String> = comms
        .split(',')
        .filter(|c| !c.is_empty())
        .map(String::from)
        .collect();
    let (tx, batches) = crossbeam_channel::bounded(1024);
    let losses = Arc::new(LossCounters::default());
    let sink = Sink::new(0, tx, losses.clone(), Arc::default(), QUEUE_RECORDS);
    let stop = Arc::new(AtomicBool::new(false));
    let collector = thread::spawn({
        let stop = stop.clone();
        move || {
            let config = PerfConfig {
                comms,
                ring_pages_exp: exp,
                ..PerfConfig::default()
            };
            let summary = PerfCollector::open(&config)
                .unwrap()
                .run(&stop, sink)
                .unwrap();
            let cpu = rustix::time::clock_gettime(rustix::time::ClockId::ThreadCPUTime);
            (
                summary,
                Duration::new(cpu.tv_sec as u64, cpu.tv_nsec as u32),
            )
        }
    });
    // Count on another thread, as the writer would, so the queue never fills.
    let counter =
        thread::spawn(move || batches.iter().map(|b| b.records.len() as u64).sum::<u64>());
    thread::sleep(Duration::from_millis(200));
    let started = Instant::now();
    let status = Command::new("sh").args(["-c", &load]).status().unwrap();
    let elapsed = started.elapsed();
    stop.store(true, Ordering::Relaxed);
    let (summary, cpu) = collector.join().unwrap();
    let records = counter.join().unwrap();
    let l = losses.snapshot();
    println!(
        "load `{load}` ({status}), ring 2^{exp} pages/CPU: {records} records in {:.2} s = {:.0}/s; \
         collector thread CPU {:.2} s ({:.1}% of one CPU); perf_lost {}, decode_errors {}, queue_dropped {}",
        elapsed.as_secs_f64(),
        records as f64 / elapsed.as_secs_f64(),
        cpu.as_secs_f64(),
        100.0 * cpu.as_secs_f64() / elapsed.as_secs_f64(),
        l.perf_lost,
        l.decode_errors,
        l.queue_dropped,
    );
    assert_eq!(summary.decode_errors, 0, "{:?}", summary.first_decode_error);
}

//! A benchmark of the recorder's own work per record, without a kernel.
//!
//! It replays the stream of the busy load balancer measured in BENCHMARKS.md (haproxy's
//! `raw_syscalls` 85 %, `sched_switch` 9 %, `sched_wakeup` 5 %, two CPUs, one drain per
//! 256 KiB of ring) through the path every record of a real recording takes on vmlat's
//! threads: the ring record parsed and decoded (`take`, as `Ring::drain` does), the
//! batch merged by the [`Sorter`], released and appended to an [`EventWriter`]. What it
//! leaves out is the kernel's side and the ring walk of perf-event-open.
//!
//! `scripts/bench-record-path.sh` runs it under callgrind and counts the instructions
//! of [`decode_order_write`] per record: a count that a shared, loaded machine does not blur.

use std::path::Path;

use vmlat_bundle::{EventReader, EventWriter, Record};

use super::decode::tests::{format, Payload};
use super::decode::{Decoders, EventDecoder, Tracepoint};
use super::{sample, take, PerfSummary, SLACK_NS};
use crate::pipeline::LossCounters;
use crate::recorder::{write_released, MAX_PENDING};
use crate::sorter::Sorter;

const CPUS: u32 = 2;
/// The records of the replayed stream; `VMLAT_BENCH_RECORDS` overrides it.
const RECORDS: usize = 200_000;
/// Ring records of one CPU per drain: 256 KiB (the collector's wakeup mark) of samples
/// of ~100 bytes.
const PER_DRAIN: usize = 2_500;
/// Nanoseconds between two samples of one CPU: ~330 k records/s on two CPUs, the rate
/// of the load balancer at saturation.
const SPACING_NS: u64 = 6_000;

/// Each drain's ring records, CPU by CPU, as the collector reads them.
type Drains = Vec<Vec<Vec<Vec<u8>>>>;

/// The decoders, the drains, and how many of their samples are switches.
fn load_balancer_stream(records: usize) -> (Decoders, Drains, u64) {
    let formats = [
        (Tracepoint::SchedSwitch, format("sched_switch")),
        (Tracepoint::SchedWakeup, format("sched_wakeup")),
        (Tracepoint::SysEnter, format("sys_enter")),
        (Tracepoint::SysExit, format("sys_exit")),
    ];
    let mut all = formats
        .iter()
        .map(|(tp, f)| EventDecoder::new(*tp, f).unwrap());
    let mut decoders = Decoders::new(all.next().unwrap());
    all.for_each(|d| decoders.add(d).unwrap());
    let [switch, wakeup, enter, exit] = formats.map(|(_, f)| f);
    let others: [&[u8]; 4] = [b"nginx\0", b"swapper/1\0", b"wrk\0", b"kworker/u4:2-ev"];

    let per_cpu = records / CPUS as usize;
    let mut drains = Vec::new();
    let mut switches = 0;
    for first in (0..per_cpu).step_by(PER_DRAIN) {
        let mut drain = Vec::new();
        for cpu in 0..CPUS {
            let mut ring = Vec::new();
            for i in first..(first + PER_DRAIN).min(per_cpu) {
                let pid = 4000 + (i % 3) as i32;
                let other = others[i % others.len()];
                let payload = match i % 100 {
                    0..=8 => {
                        switches += 1;
                        Payload::new(&switch, pid)
                            .put("prev_comm", b"haproxy\0")
                            .int("prev_pid", pid.into())
                            .int("prev_prio", 120)
                            .int("prev_state", 1)
                            .put("next_comm", other)
                            .int("next_pid", 7000 + i as i64 % 50)
                            .int("next_prio", 120)
                            .bytes
                            .clone()
                    }
                    9..=13 => Payload::new(&wakeup, pid)
                        .put("comm", other)
                        .int("pid", 7000 + i as i64 % 50)
                        .int("prio", 120)
                        .int("target_cpu", i64::from(cpu))
                        .bytes
                        .clone(),
                    n if n % 2 == 0 => {
                        let mut p = Payload::new(&enter, pid);
                        p.int("id", 232);
                        let args: Vec<u8> = [5u64, 0x7ffd_1234_5678, 200, 1000, 0, 0]
                            .iter()
                            .flat_map(|a| a.to_ne_bytes())
                            .collect();
                        p.put("args", &args).bytes.clone()
                    }
                    _ => Payload::new(&exit, pid)
                        .int("id", 232)
                        .int("ret", (i % 7) as i64)
                        .bytes
                        .clone(),
                };
                let time = 1_000_000_000 + i as u64 * SPACING_NS + u64::from(cpu) * 1_000;
                ring.push(sample::build::sample(4000, pid as u32, time, cpu, &payload));
            }
            drain.push(ring);
        }
        drains.push(drain);
    }
    (decoders, drains, switches)
}

/// Decodes, orders and writes every drain into `path`, as the collector and the writer
/// threads do; returns the records written.
#[inline(never)]
fn decode_order_write(decoders: &Decoders, drains: &Drains, path: &Path) -> u64 {
    let losses = LossCounters::default();
    let mut summary = PerfSummary::default();
    let mut events = EventWriter::create(path).unwrap();
    // Source 0 is perf; source 1, the sampler, has nothing to say.
    let mut sorter = Sorter::new(2, MAX_PENDING);
    sorter.push(1, [], u64::MAX);
    let mut capacity = 0;
    for drain in drains {
        let mut records = Vec::with_capacity(capacity);
        let mut last = u64::MAX;
        for (cpu, ring) in (0..).zip(drain) {
            let mut cpu_last = 0;
            for bytes in ring {
                cpu_last = take(bytes, cpu, decoders, &mut records, &mut summary, &losses)
                    .unwrap_or(cpu_last);
            }
            last = last.min(cpu_last);
        }
        capacity = records.len();
        sorter.push(0, records, last.saturating_sub(SLACK_NS));
        write_released(&mut events, |emit| sorter.release(emit)).unwrap();
    }
    sorter.push(0, [], u64::MAX);
    write_released(&mut events, |emit| sorter.drain(emit)).unwrap();
    events.flush().unwrap();
    assert_eq!(summary.decode_errors, 0, "{:?}", summary.first_decode_error);
    events.records_written()
}

#[test]
#[ignore = "a benchmark: scripts/bench-record-path.sh runs it under callgrind"]
fn record_path_of_a_load_balancer_stream() {
    let records = std::env::var("VMLAT_BENCH_RECORDS").map_or(RECORDS, |n| {
        n.parse().expect("VMLAT_BENCH_RECORDS: a number")
    });
    let (decoders, drains, generated_switches) = load_balancer_stream(records);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("events.vmlat");
    let written = decode_order_write(&decoders, &drains, &path);
    let generated: usize = drains.iter().flatten().map(Vec::len).sum();
    assert_eq!(written, generated as u64);

    // What was written is the whole stream, in time order, decoded right.
    let mut last = 0;
    let mut switches = 0;
    for record in EventReader::open(&path).unwrap() {
        let record = record.unwrap();
        assert!(record.time() >= last, "out of order at {}", record.time());
        last = record.time();
        if let Record::SchedSwitch { prev_comm, .. } = &record {
            assert_eq!(prev_comm.as_str(), "haproxy");
            switches += 1;
        }
    }
    assert_eq!(switches, generated_switches);
    println!("{written} records");
}

//! Measures the analyzer's packet throughput on a large generated capture.
//!
//! ```text
//! cargo build --release -p vmlat-analyzer --example throughput
//! target/release/examples/throughput generate /tmp/big.pcap 5000000 [FAULTS]
//! target/release/examples/throughput generate-bundle /tmp/big.vmlat SECONDS SWITCHES [EVERY [STOP]]
//! /usr/bin/time -v target/release/examples/throughput analyze /tmp/big.pcap /tmp/big.vmlat
//! ```
//!
//! `generate` writes about PACKETS heartbeats (VRRPv2 and v3 pairs on 100 VRIDs, each
//! with FAULTS faults, default 3: a short stall, a takeover and a resignation, cycling)
//! plus one ARP request per ten adverts. `generate-bundle` writes a guest bundle of
//! SECONDS seconds: SWITCHES context switches (each with its wakeup) per second on each
//! of 2 CPUs, disk and CPU samples every 100 ms, and keepalived advertising every
//! second, stopped with SIGSTOP for STOP seconds (default 4) in the middle of every
//! EVERY seconds (default 600; `2 1` is a flap storm, a gap every 2 s; `7200 3600` in a
//! 7200 s bundle one silence of an hour). `analyze` reads them back
//! (packet pass and attribution pass) and prints packets and events per second and
//! what was found; `--text` or `--json` also prints that report.

#[path = "../tests/support/mod.rs"]
mod support;

use std::path::PathBuf;
use std::time::Instant;

use support::bundle::{self as b, BundleBuilder, MS, T0, US};
use support::{Fault, Pair, NS};
use vmlat_analyzer::{report, AnalyzeOptions};
use vmlat_bundle::{EventWriter, Role};

const VRIDS: u8 = 100;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args
        .iter()
        .map(String::as_str)
        .collect::<Vec<_>>()
        .as_slice()
    {
        ["generate", path, packets] => generate(path, number(packets), 3),
        ["generate", path, packets, faults] => generate(path, number(packets), number(faults)),
        ["generate-bundle", dir, seconds, switches] => {
            generate_bundle(dir, number(seconds), number(switches), 600, 4)
        }
        ["generate-bundle", dir, seconds, switches, every] => {
            generate_bundle(dir, number(seconds), number(switches), number(every), 4)
        }
        ["generate-bundle", dir, seconds, switches, every, stop] => generate_bundle(
            dir,
            number(seconds),
            number(switches),
            number(every),
            number(stop),
        ),
        ["analyze", rest @ ..] => analyze(rest),
        _ => {
            eprintln!(
                "usage: throughput generate PATH PACKETS [FAULTS] | throughput generate-bundle DIR SECONDS SWITCHES [EVERY [STOP]] | throughput analyze [--text|--json] INPUT..."
            );
            std::process::exit(2);
        }
    }
}

fn number(s: &str) -> usize {
    s.parse().unwrap_or_else(|_| {
        eprintln!("throughput: '{s}' is not a number");
        std::process::exit(2);
    })
}

fn generate(path: &str, packets: usize, faults: usize) {
    let kinds = [
        Fault::ShortStall(0.5),
        Fault::LongStall(0.5),
        Fault::Resign(0.5),
    ];
    let plan: Vec<Fault> = kinds.iter().copied().cycle().take(faults).collect();
    let stable = (packets / usize::from(VRIDS) / (faults + 1)).max(1) as u32;
    let scenarios: Vec<_> = (1..=VRIDS)
        .map(|vrid| {
            let pair = Pair {
                vrid,
                version: if vrid % 2 == 0 { 3 } else { 2 },
                interval: if vrid % 2 == 0 { 100 } else { 1 },
                master_priority: 150,
                backup_priority: 100,
                start: 1_700_000_000 * NS + i64::from(vrid) * 7_000_000,
            };
            support::scenario(pair, &plan, stable, u64::from(vrid))
        })
        .collect();
    let mut frames = support::frames(&scenarios, 10);
    frames.truncate(packets + packets / 10);
    let n = frames.len();
    support::write_pcap(path.as_ref(), frames);
    println!("wrote {n} packets to {path}");
}

fn analyze(args: &[&str]) {
    let text = args.contains(&"--text");
    let json = args.contains(&"--json");
    let inputs: Vec<PathBuf> = args
        .iter()
        .filter(|a| !a.starts_with("--"))
        .map(PathBuf::from)
        .collect();
    let start = Instant::now();
    let analysis = match vmlat_analyzer::analyze(&inputs, &AnalyzeOptions::default()) {
        Ok(a) => a,
        Err(e) => {
            eprintln!("throughput: {e}");
            std::process::exit(2);
        }
    };
    let elapsed = start.elapsed().as_secs_f64();
    let packets: u64 = analysis.inputs.iter().map(|i| i.packets).sum();
    let events: u64 = analysis.bundles.iter().map(|b| b.events).sum();
    if text {
        print!("{}", report::text::render(&analysis));
    }
    if json {
        report::json::write(&analysis, std::io::stdout().lock()).expect("stdout is writable");
    }
    let verdicts: Vec<&str> = analysis
        .incidents
        .iter()
        .map(|i| i.verdict.name())
        .collect();
    println!(
        "{packets} packets and {events} events in {elapsed:.3} s: {:.0} packets/s, {:.0} events/s (both passes, read together); verdicts {verdicts:?}",
        packets as f64 / elapsed,
        events as f64 / elapsed,
    );
    println!(
        "{} streams, {} gaps, {} failovers, {} malformed",
        analysis.streams.len(),
        analysis.gaps.len(),
        analysis.failovers.len(),
        analysis.malformed_packets,
    );
}

/// Streams a large guest bundle to `dir`, one second of records at a time.
fn generate_bundle(dir: &str, seconds: usize, switches: usize, every: usize, stop: usize) {
    if stop == 0 || stop >= every {
        eprintln!(
            "throughput: STOP ({stop} s) must be at least 1 and shorter than EVERY ({every} s)"
        );
        std::process::exit(2);
    }
    const VRRP: i32 = 8557;
    let dir = std::path::Path::new(dir);
    std::fs::create_dir_all(dir).expect("the bundle directory can be created");
    let mut w = EventWriter::create(&dir.join("events.vmlat")).expect("a new bundle");
    let mut slice = vec![
        b::task_info(8550, 1, "keepalived"),
        b::task_info(VRRP, 8550, "keepalived"),
        b::task_info(9001, 1, "bash"),
    ];
    let mut adverts = Vec::new();
    let mut events = 0u64;
    let step = NS / switches.max(1) as i64;
    for sec in 0..seconds as i64 {
        let base = T0 + sec * NS;
        slice.push(b::anchor(b::mono(base)));
        for cpu in 0..2u32 {
            // A worker and the idle task take turns, woken each time.
            let worker = (5000 + cpu as i32, "worker");
            let idle = (0, if cpu == 0 { "swapper/0" } else { "swapper/1" });
            for k in 0..switches as i64 {
                let t = base + k * step + i64::from(cpu) * 1_000;
                let (prev, next) = if k % 2 == 0 {
                    (idle, worker)
                } else {
                    (worker, idle)
                };
                slice.push(b::wakeup(t, 0, worker.0, worker.1, cpu as i32));
                slice.push(b::switch(t + US, cpu, prev, 1, next));
            }
        }
        for k in 0..10 {
            let t = base + k * 100 * MS;
            let ticks = (sec * 10 + k) as u64;
            slice.push(b::disk(t, "vda", 0, ticks, ticks, 0, ticks));
            slice.push(b::cpu_line(t, None, ticks, 0));
        }
        // keepalived: stopped for `stop` s in the middle of every `every` seconds, else
        // one advert a second.
        let (every, stop) = (every as i64, stop as i64);
        let stopped_at = (every - stop) / 2;
        match sec % every {
            s if s == stopped_at => {
                slice.extend(b::sigstop(VRRP, 9001, base + 700 * MS, base + stop * NS))
            }
            s if s > stopped_at && s < stopped_at + stop => {}
            _ => {
                let p = base + 500 * MS;
                slice.extend(b::send_cycle(VRRP, p));
                adverts.push((p, std::net::Ipv4Addr::new(10, 10, 0, 1), 150));
            }
        }
        slice.sort_by_key(|r| r.time());
        events += slice.len() as u64;
        for r in slice.drain(..) {
            w.append(&r).expect("writing the bundle");
        }
    }
    w.flush().expect("writing the bundle");
    let mut builder = BundleBuilder::new("bench", Role::Guest);
    builder.capture("eth0@vr1", "eth0", &adverts);
    builder.finish(dir);
    println!(
        "wrote {events} events and {} adverts to {}",
        adverts.len(),
        dir.display()
    );
}

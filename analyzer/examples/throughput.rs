//! Measures the analyzer's packet throughput on a large generated capture.
//!
//! ```text
//! cargo build --release -p vmlat-analyzer --example throughput
//! target/release/examples/throughput generate /tmp/big.pcap 5000000 [FAULTS]
//! /usr/bin/time -v target/release/examples/throughput analyze /tmp/big.pcap
//! ```
//!
//! `generate` writes about PACKETS heartbeats (VRRPv2 and v3 pairs on 100 VRIDs, each
//! with FAULTS faults, default 3: a short stall, a takeover and a resignation, cycling)
//! plus one ARP request per ten adverts; `analyze` reads it back and prints packets per
//! second and what was found; `--text` or `--json` also prints that report.

#[path = "../tests/support/mod.rs"]
mod support;

use std::path::PathBuf;
use std::time::Instant;

use support::{Fault, Pair, NS};
use vmlat_analyzer::{analyze_captures, report, AnalyzeOptions};

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
        ["analyze", rest @ ..] => analyze(rest),
        _ => {
            eprintln!(
                "usage: throughput generate PATH PACKETS [FAULTS] | throughput analyze [--text] PATH..."
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
    let analysis = match analyze_captures(&inputs, &AnalyzeOptions::default()) {
        Ok(a) => a,
        Err(e) => {
            eprintln!("throughput: {e}");
            std::process::exit(2);
        }
    };
    let elapsed = start.elapsed().as_secs_f64();
    let packets: u64 = analysis.inputs.iter().map(|i| i.packets).sum();
    if text {
        print!("{}", report::text::render(&analysis));
    }
    if json {
        report::json::write(&analysis, std::io::stdout().lock()).expect("stdout is writable");
    }
    println!(
        "{packets} packets in {elapsed:.3} s: {:.0} packets/s; {} streams, {} gaps, {} failovers, {} malformed",
        packets as f64 / elapsed,
        analysis.streams.len(),
        analysis.gaps.len(),
        analysis.failovers.len(),
        analysis.malformed_packets,
    );
}

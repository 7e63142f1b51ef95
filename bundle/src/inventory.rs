//! What a bundle holds: record counts by kind, packets per capture point, losses, and
//! whether any file ends torn. This is `vmlat inspect`, and a cheap health check for
//! every other reader.

use std::fs::File;
use std::io::BufReader;
use std::path::Path;

use pcap_file::pcap::PcapReader;
use pcap_file::PcapError;
use serde::Serialize;

use crate::{read_bundle_events, BundleError, Losses, Manifest, Record, RecordKind};

/// Record counts by kind, named as `vmlat inspect --json` prints them.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Counts {
    pub packets: u64,
    pub sched_switch: u64,
    pub sched_wakeup: u64,
    pub process_fork: u64,
    pub process_exec: u64,
    pub process_exit: u64,
    pub signal: u64,
    pub syscall_enter: u64,
    pub syscall_exit: u64,
    pub block_issue: u64,
    pub block_complete: u64,
    pub disk_samples: u64,
    pub cpu_samples: u64,
    pub task_samples: u64,
    pub clock_anchors: u64,
    pub task_infos: u64,
    /// Freezer state records (events stream version 2; 0 in older bundles).
    pub freezer_samples: u64,
    /// `exit_group` calls (0 in bundles recorded before they were).
    pub exit_group: u64,
    /// `kvm_exit` and `kvm_entry` records (host bundles of KVM hosts only).
    pub kvm_exit: u64,
    pub kvm_entry: u64,
}

impl Counts {
    fn count(&mut self, kind: RecordKind) {
        let counter = match kind {
            RecordKind::SchedSwitch => &mut self.sched_switch,
            RecordKind::SchedWakeup => &mut self.sched_wakeup,
            RecordKind::ProcessFork => &mut self.process_fork,
            RecordKind::ProcessExec => &mut self.process_exec,
            RecordKind::ProcessExit => &mut self.process_exit,
            RecordKind::Signal => &mut self.signal,
            RecordKind::SyscallEnter => &mut self.syscall_enter,
            RecordKind::SyscallExit => &mut self.syscall_exit,
            RecordKind::BlockIssue => &mut self.block_issue,
            RecordKind::BlockComplete => &mut self.block_complete,
            RecordKind::Disk => &mut self.disk_samples,
            RecordKind::Cpu => &mut self.cpu_samples,
            RecordKind::Task => &mut self.task_samples,
            RecordKind::Clock => &mut self.clock_anchors,
            RecordKind::TaskInfo => &mut self.task_infos,
            RecordKind::Freezer => &mut self.freezer_samples,
            RecordKind::ExitGroup => &mut self.exit_group,
            RecordKind::KvmExit => &mut self.kvm_exit,
            RecordKind::KvmEntry => &mut self.kvm_entry,
            RecordKind::Losses => return,
        };
        *counter += 1;
    }
}

/// One capture point's pcap as found on disk.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CaptureInventory {
    pub name: String,
    pub file: String,
    pub packets: u64,
    pub torn_tail: bool,
}

/// Everything `vmlat inspect` reports.
#[derive(Debug, Clone, Serialize)]
pub struct Inventory {
    pub format_version: u32,
    pub role: crate::Role,
    pub hostname: String,
    pub kernel: String,
    pub cpus: u32,
    pub boot_id: String,
    pub status: crate::Status,
    /// From the first to the last record or packet-free anchor, in seconds.
    pub duration_s: f64,
    pub counts: Counts,
    pub captures: Vec<CaptureInventory>,
    pub losses: Losses,
    /// The event stream or a pcap ends inside a record (a recorder killed mid-write).
    pub torn_tail: bool,
    pub torn_files: Vec<String>,
    pub tracepoints: Vec<String>,
    pub unsupported: Vec<String>,
    /// What went wrong while recording without stopping it.
    pub warnings: Vec<String>,
    pub syscall_filter: Option<String>,
    #[serde(skip)]
    pub manifest: Manifest,
}

/// Reads the whole bundle once, streaming, and counts what it holds.
pub fn inventory(dir: &Path) -> Result<Inventory, BundleError> {
    let manifest = Manifest::load(dir)?;
    let mut counts = Counts::default();
    let mut first = None;
    let mut last = None;
    let mut streamed_losses = None;
    let mut events = read_bundle_events(dir)?;
    for record in events.by_ref() {
        let record = record?;
        let t = record.time();
        first = Some(first.map_or(t, |f: u64| f.min(t)));
        last = Some(last.map_or(t, |l: u64| l.max(t)));
        counts.count(record.kind());
        if let Record::Losses { losses, .. } = record {
            streamed_losses = Some(losses);
        }
    }
    let mut torn_files = Vec::new();
    if events.summary().torn_tail {
        torn_files.push(crate::EVENTS_FILE.to_string());
    }

    let mut captures = Vec::new();
    for capture in &manifest.recorded.captures {
        let (packets, torn) = count_packets(&dir.join(&capture.file))?;
        counts.packets += packets;
        if torn {
            torn_files.push(capture.file.clone());
        }
        captures.push(CaptureInventory {
            name: capture.name.clone(),
            file: capture.file.clone(),
            packets,
            torn_tail: torn,
        });
    }

    // A recorder that died keeps its last counters only in the stream; take whichever
    // saw more.
    let losses = match streamed_losses {
        Some(s) if s.total() > manifest.losses.total() => s,
        _ => manifest.losses.clone(),
    };
    let duration_s = match (manifest.stopped_monotonic_ns, first, last) {
        (Some(stop), _, _) => stop.saturating_sub(manifest.started_monotonic_ns) as f64 / 1e9,
        (None, _, Some(last)) => last.saturating_sub(manifest.started_monotonic_ns) as f64 / 1e9,
        _ => 0.0,
    };
    Ok(Inventory {
        format_version: manifest.format_version,
        role: manifest.role,
        hostname: manifest.hostname.clone(),
        kernel: manifest.kernel.clone(),
        cpus: manifest.cpus,
        boot_id: manifest.boot_id.clone(),
        status: manifest.status.clone(),
        duration_s,
        counts,
        captures,
        losses,
        torn_tail: !torn_files.is_empty(),
        torn_files,
        tracepoints: manifest.recorded.tracepoints.clone(),
        unsupported: manifest.recorded.unsupported.clone(),
        warnings: manifest.recorded.warnings.clone(),
        syscall_filter: manifest.recorded.syscall_filter.clone(),
        manifest,
    })
}

/// Counts the packets of a pcap; `true` if it ends inside a packet.
fn count_packets(path: &Path) -> Result<(u64, bool), BundleError> {
    let file = File::open(path).map_err(|e| BundleError::io(path, e))?;
    let mut reader = match PcapReader::new(BufReader::new(file)) {
        Ok(reader) => reader,
        // Killed before the 24-byte header was out.
        Err(PcapError::IncompleteBuffer) => return Ok((0, true)),
        Err(e) => {
            return Err(BundleError::NotABundle {
                path: path.to_path_buf(),
                reason: format!("not a readable pcap ({e})"),
            })
        }
    };
    let mut packets = 0;
    while let Some(packet) = reader.next_packet() {
        match packet {
            Ok(_) => packets += 1,
            Err(PcapError::IncompleteBuffer) => return Ok((packets, true)),
            Err(e) => {
                return Err(BundleError::NotABundle {
                    path: path.to_path_buf(),
                    reason: format!("pcap record {} is corrupt ({e})", packets + 1),
                })
            }
        }
    }
    Ok((packets, false))
}

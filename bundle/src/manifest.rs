//! `manifest.json`: the bundle's identity card and loss ledger.

use std::fs;
use std::io::Write;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::BundleError;

/// Version of the bundle layout; bumped on any change a reader must know about.
pub const FORMAT_VERSION: u32 = 1;
/// The first manifest format version vmlat wrote: anything lower was never a bundle.
const FIRST_FORMAT_VERSION: u32 = 1;
/// File name of the manifest inside a bundle directory.
pub const MANIFEST_FILE: &str = "manifest.json";

/// Which side of the virtualization boundary a bundle was recorded on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Guest,
    Host,
    Peer,
}

impl std::fmt::Display for Role {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Role::Guest => "guest",
            Role::Host => "host",
            Role::Peer => "peer",
        })
    }
}

/// How the recording ended, as far as the manifest knows.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "kebab-case")]
pub enum Status {
    /// Still recording, or killed before it could say otherwise.
    Recording,
    /// Stopped by `--duration` or a signal, everything written.
    Complete,
    /// Stopped early by an error (a full disk, a lost device); what was written is
    /// readable.
    Failed { error: String },
}

/// Every loss counter of a recording. All are cumulative counts of things that did not
/// make it into the bundle; the analyzer treats a gap that overlaps any loss as
/// inconclusive.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Losses {
    /// Packets dropped by the kernel because the capture buffer was full (`ps_drop`).
    pub pcap_dropped: u64,
    /// Packets dropped by the interface or driver (`ps_ifdrop`).
    pub pcap_if_dropped: u64,
    /// perf records lost because a ring buffer was full (PERF_RECORD_LOST).
    pub perf_lost: u64,
    /// Records dropped because the writer's queue was full (a slow disk).
    pub queue_dropped: u64,
    /// Counter samples skipped because the previous one was still running.
    pub sampler_overruns: u64,
    /// perf samples that could not be decoded (short or unknown payload).
    pub decode_errors: u64,
    /// Records that arrived after their time had been flushed (written out of order).
    pub late_records: u64,
}

impl Losses {
    /// Every counter by its field name, and whether what it counts can hide records
    /// (dropped packets or events: `true`) or only says something arrived late or a
    /// sample was skipped (`false`). One list, so that every report names the same
    /// counters the same way.
    pub fn counters(&self) -> [(&'static str, u64, bool); 7] {
        [
            ("pcap_dropped", self.pcap_dropped, true),
            ("pcap_if_dropped", self.pcap_if_dropped, true),
            ("perf_lost", self.perf_lost, true),
            ("queue_dropped", self.queue_dropped, true),
            ("decode_errors", self.decode_errors, true),
            ("sampler_overruns", self.sampler_overruns, false),
            ("late_records", self.late_records, false),
        ]
    }

    /// The counters that are not zero, `pcap_dropped 3828268, perf_lost 12`, or
    /// `nothing lost`.
    pub fn summary(&self) -> String {
        let counted: Vec<String> = self
            .counters()
            .iter()
            .filter(|(_, n, _)| *n > 0)
            .map(|(name, n, _)| format!("{name} {n}"))
            .collect();
        if counted.is_empty() {
            "nothing lost".to_owned()
        } else {
            format!("lost: {}", counted.join(", "))
        }
    }

    pub fn total(&self) -> u64 {
        self.pcap_dropped
            + self.pcap_if_dropped
            + self.perf_lost
            + self.queue_dropped
            + self.sampler_overruns
            + self.decode_errors
            + self.late_records
    }
}

/// One capture point: an interface, optionally inside a network namespace.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CaptureInfo {
    /// Capture point name as the analyzer prints it (`eth0@vr1`).
    pub name: String,
    pub interface: String,
    pub netns: Option<String>,
    /// The BPF filter given to libpcap.
    pub filter: String,
    /// Path of the pcap relative to the bundle directory.
    pub file: String,
    /// libpcap DLT of the capture.
    pub linktype: i32,
    pub packets: u64,
    /// The interface's hardware address (lower case), which ties a guest's NIC to its
    /// VM's tap on the host ([`VmTap::mac`]); absent for interfaces without one.
    #[serde(default)]
    pub mac: Option<String>,
    /// The clock probes sent into this guest's tap (`--clock-probes`); `None` when none
    /// were.
    #[serde(default)]
    pub probes_sent: Option<u64>,
}

/// What was recorded and how.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecordedSet {
    pub captures: Vec<CaptureInfo>,
    /// `group:name` of every tracepoint recorded system-wide.
    pub tracepoints: Vec<String>,
    /// Tracepoints that could not be opened, with the reason (recorded as unsupported).
    pub unsupported: Vec<String>,
    /// Process names whose syscalls are traced; one ending in `*` is a prefix (see
    /// [`comm_matches`]).
    pub comms: Vec<String>,
    /// Process ids whose syscalls are traced.
    pub pids: Vec<i32>,
    /// The in-kernel filter applied to raw_syscalls, if any.
    pub syscall_filter: Option<String>,
    /// UDP heartbeat ports captured besides VRRP/CARP.
    pub heartbeat_ports: Vec<u16>,
    pub disk_interval_ms: u64,
    /// keepalived's lines from the systemd journal over the recording, copied at stop
    /// into [`crate::KEEPALIVED_JOURNAL_FILE`].
    #[serde(default)]
    pub keepalived_journal: JournalCopy,
    /// `--user`: the user the recorder became once its descriptors were open
    /// (`nobody (uid 65534, gid 65534)`).
    #[serde(default)]
    pub user: Option<String>,
    /// On a host (`--role host`): the QEMU processes running at start or at stop.
    #[serde(default)]
    pub vms: Vec<VmInfo>,
    /// What went wrong while recording without stopping it: syscalls of new threads no
    /// longer filtered, records that did not decode, a counter that would not disable.
    #[serde(default)]
    pub warnings: Vec<String>,
}

/// A QEMU process on a host, and what ties it to its guest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VmInfo {
    pub pid: i32,
    /// `-name` (`guest=NAME` or the plain form).
    pub name: Option<String>,
    /// `/proc/PID/exe`, when readable.
    pub exe: Option<String>,
    pub taps: Vec<VmTap>,
    /// The named network namespace (under /run/netns) QEMU runs in, where its taps are;
    /// `None` in the initial namespace or an unnamed one. Tap names are per namespace:
    /// two VMs in two namespaces may both have a `tap-vr1`.
    #[serde(default)]
    pub netns: Option<String>,
    /// KVM's TSC offset of each vCPU (guest TSC = host TSC + offset), from debugfs
    /// `kvm/PID-FD/vcpuN/tsc-offset`: empty without KVM or debugfs.
    #[serde(default)]
    pub tsc_offsets: Vec<VcpuTscOffset>,
}

/// One vCPU's TSC offset as KVM reported it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VcpuTscOffset {
    pub vcpu: u32,
    pub offset: i64,
}

/// One tap of a VM: the host's interface and the guest's MAC behind it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VmTap {
    /// The host interface (`vnet3`, `tap-vr1`).
    pub ifname: String,
    /// The `-netdev` id it belongs to, when the command line tells.
    pub netdev: Option<String>,
    /// The guest's MAC on it (lower case), when the command line gives it.
    pub mac: Option<String>,
}

/// Whether keepalived's journal lines were copied into the bundle, and if not, why.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "kebab-case")]
pub enum JournalCopy {
    /// A bundle from before the copy existed, or a recording still running.
    #[default]
    NotAttempted,
    /// The machine has no systemd journal (or no `journalctl`).
    NoJournal { reason: String },
    /// `entries` lines copied, in `journalctl -o json` form; `truncated` when there were
    /// more than the recorder copies.
    Copied { entries: u64, truncated: bool },
    /// `journalctl` failed.
    Failed { error: String },
}

/// The whole manifest.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    pub format_version: u32,
    pub vmlat_version: String,
    pub hostname: String,
    pub role: Role,
    pub kernel: String,
    /// The CPU architecture recorded on (`x86_64`, `aarch64`: Rust's
    /// `std::env::consts::ARCH`), which syscall numbers belong to. Empty in bundles
    /// written before it was recorded (all of them x86_64).
    #[serde(default)]
    pub arch: String,
    pub cpus: u32,
    pub boot_id: String,
    pub command_line: Vec<String>,
    /// CLOCK_REALTIME at start, ns since the Unix epoch.
    pub started_realtime_ns: i64,
    pub started_monotonic_ns: u64,
    pub stopped_realtime_ns: Option<i64>,
    pub stopped_monotonic_ns: Option<u64>,
    pub status: Status,
    pub recorded: RecordedSet,
    pub losses: Losses,
}

impl Manifest {
    /// Writes the manifest atomically (temporary file, fsync, rename), so that a reader
    /// never sees half of one.
    pub fn store(&self, dir: &Path) -> Result<(), BundleError> {
        let path = dir.join(MANIFEST_FILE);
        let tmp = dir.join(".manifest.json.tmp");
        let json = serde_json::to_vec_pretty(self).expect("manifest serializes");
        let write = || -> std::io::Result<()> {
            // A temporary file left by a recorder killed mid-write is replaced.
            match fs::remove_file(&tmp) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e),
                _ => {}
            }
            let mut file = crate::create_bundle_file(&tmp)?;
            file.write_all(&json)?;
            file.write_all(b"\n")?;
            file.sync_data()?;
            fs::rename(&tmp, &path)
        };
        write().map_err(|e| BundleError::io(&path, e))
    }

    /// Reads and checks a bundle's manifest.
    pub fn load(dir: &Path) -> Result<Self, BundleError> {
        let path = dir.join(MANIFEST_FILE);
        let bytes = fs::read(&path).map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => BundleError::NotABundle {
                path: dir.to_path_buf(),
                reason: format!("no {MANIFEST_FILE} in it"),
            },
            _ => BundleError::io(&path, e),
        })?;
        let version: serde_json::Value =
            serde_json::from_slice(&bytes).map_err(|source| BundleError::BadManifest {
                path: path.clone(),
                source,
            })?;
        let found = version
            .get("format_version")
            .and_then(|v| v.as_u64())
            .ok_or_else(|| BundleError::NotABundle {
                path: dir.to_path_buf(),
                reason: "manifest has no format_version".into(),
            })? as u32;
        if found < FIRST_FORMAT_VERSION {
            return Err(BundleError::AncientVersion {
                path,
                found,
                first: FIRST_FORMAT_VERSION,
            });
        }
        if found > FORMAT_VERSION {
            return Err(BundleError::UnsupportedVersion {
                path,
                found,
                supported: FORMAT_VERSION,
            });
        }
        serde_json::from_value(version).map_err(|source| BundleError::BadManifest { path, source })
    }
}

/// Whether a task named `comm` is selected by a `--comm` value: the same name, or, for
/// a value ending in `*`, a name starting with what comes before it (keepalived's
/// `process_names` renames its children `keepalived_vrrp`, ...). Names are compared as
/// the kernel keeps them, cut to 15 bytes.
pub fn comm_matches(pattern: &str, comm: &str) -> bool {
    const COMM_LEN: usize = 15;
    // Called for every scheduler record: bytes, no allocation.
    fn cut(s: &str) -> &[u8] {
        let b = s.as_bytes();
        b.get(..COMM_LEN).unwrap_or(b)
    }
    match pattern.strip_suffix('*') {
        Some(prefix) => comm.as_bytes().starts_with(cut(prefix)),
        None => cut(pattern) == cut(comm),
    }
}

//! Packet capture with libpcap: one thread and one nanosecond pcap per capture point.
//!
//! A capture point is an interface, optionally inside a named network namespace
//! (`eth0@vr1` opens `/run/netns/vr1`). The capture thread moves itself into that
//! namespace with `setns(2)` before opening the interface; the rest of the recorder
//! stays in the root namespace. Packets go to a [`PacketSink`]: a bundle's pcap file
//! ([`PcapFile`]) for `vmlat record`, the watch window for `vmlat watch`. Packets are
//! written with our own pcap writer, not `pcap_dump`, because `pcap_dump` hides write
//! errors and a full disk must stop the recording loudly.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use byteorder_slice::LittleEndian;
use pcap::{Active, Capture, Precision};
use pcap_file::pcap::{PcapHeader, PcapPacket};
use pcap_file::{DataLink, Endianness, TsResolution};
use vmlat_bundle::{
    create_bundle_file, BundleError, CaptureInfo, VmInfo, CLOCK_PROBE_PORT, PCAP_DIR,
};

use crate::pipeline::LossCounters;
use crate::probe::Prober;

/// Largest packet kept whole; heartbeats are small, but keep whole frames for Wireshark.
const SNAPLEN: i32 = 65535;
/// How often the thread wakes to check for stop and flush. libpcap's own read timeout
/// cannot do this: with immediate mode on Linux (TPACKET_V3) `pcap_next_ex` keeps
/// polling internally and never returns on a quiet interface, so the capture is
/// non-blocking and we poll its descriptor ourselves.
const WAKE_EVERY_MS: u16 = 100;
/// Kernel buffer per capture: room for seconds of a busy heartbeat link.
const BUFFER_BYTES: i32 = 4 << 20;
const FLUSH_EVERY: Duration = Duration::from_secs(1);

/// Where to capture: `IFACE` or `IFACE@NETNS`, or `tap:GUEST` (the tap of the QEMU
/// process whose `-name` is GUEST, found at start: [`CapturePoint::resolve_tap`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CapturePoint {
    /// The interface; for `tap:GUEST`, empty until resolved.
    pub interface: String,
    pub netns: Option<String>,
    /// For `tap:GUEST`, the guest.
    pub guest: Option<String>,
}

impl FromStr for CapturePoint {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (interface, netns) = match s.split_once('@') {
            Some((i, n)) => (i, Some(n)),
            None => (s, None),
        };
        let (interface, guest) = match interface.strip_prefix("tap:") {
            Some(guest) => ("", Some(guest)),
            None => (interface, None),
        };
        let valid = |name: &str| {
            !name.is_empty()
                && name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-_.:".contains(c))
        };
        let interface_ok = match guest {
            Some(g) => valid(g),
            None => valid(interface),
        };
        if !interface_ok || netns.is_some_and(|n| !valid(n)) {
            return Err(format!(
                "'{s}' is not a capture point: give IFACE, IFACE@NETNS (e.g. eth0@vr1) or tap:GUEST (a QEMU guest's tap)"
            ));
        }
        Ok(CapturePoint {
            interface: interface.to_string(),
            netns: netns.map(str::to_string),
            guest: guest.map(str::to_string),
        })
    }
}

impl CapturePoint {
    /// The name the analyzer prints: `eth0@vr1`, `eth0`, or `tap:vm1`.
    pub fn name(&self) -> String {
        let interface = match &self.guest {
            Some(g) => format!("tap:{g}"),
            None => self.interface.clone(),
        };
        match &self.netns {
            Some(ns) => format!("{interface}@{ns}"),
            None => interface,
        }
    }

    /// For `tap:GUEST`, finds the guest's tap among the host's QEMU processes.
    pub fn resolve_tap(&mut self, vms: &[VmInfo]) -> Result<(), CaptureError> {
        let Some(guest) = &self.guest else {
            return Ok(());
        };
        let unknown = || CaptureError::NoSuchGuest {
            guest: guest.clone(),
            running: if vms.is_empty() {
                "none".into()
            } else {
                vms.iter()
                    .map(|v| format!("{} (pid {})", v.name.as_deref().unwrap_or("unnamed"), v.pid))
                    .collect::<Vec<_>>()
                    .join(", ")
            },
        };
        let vm = vms
            .iter()
            .find(|v| v.name.as_deref() == Some(guest))
            .ok_or_else(unknown)?;
        match vm.taps.as_slice() {
            [tap] => {
                self.interface = tap.ifname.clone();
                Ok(())
            }
            taps => Err(CaptureError::AmbiguousGuestTap {
                guest: guest.clone(),
                taps: if taps.is_empty() {
                    "no tap".into()
                } else {
                    taps.iter()
                        .map(|t| t.ifname.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                },
            }),
        }
    }

    /// The pcap's path relative to the bundle directory.
    pub fn file(&self) -> String {
        format!("{PCAP_DIR}/{}.pcap", self.name())
    }
}

/// The default capture filter: VRRP and CARP (IP protocol 112) over IPv4 and IPv6,
/// plus the given UDP heartbeat ports and the clock probes' port ([`crate::probe`]),
/// untagged or VLAN-tagged. The `vlan` primitive shifts the offsets of what follows it,
/// hence the repetition after it.
pub fn heartbeat_filter(udp_ports: &[u16]) -> String {
    let mut wanted = vec!["ip proto 112".to_string(), "ip6 proto 112".to_string()];
    wanted.extend(udp_ports.iter().map(|p| format!("udp port {p}")));
    wanted.push(format!("udp port {CLOCK_PROBE_PORT}"));
    let wanted = wanted.join(" or ");
    format!("({wanted}) or (vlan and ({wanted})) or (vlan and vlan and ({wanted}))")
}

/// Why a capture could not start or went on.
#[derive(Debug, thiserror::Error)]
pub enum CaptureError {
    #[error("network namespace '{netns}' not found (no /run/netns/{netns}): `ip netns list` shows the named namespaces")]
    NoSuchNetns { netns: String },
    #[error("cannot enter network namespace '{netns}': {source} (run as root)")]
    EnterNetns {
        netns: String,
        #[source]
        source: std::io::Error,
    },
    #[error("no QEMU process with -name '{guest}' for tap:{guest} (running: {running}); give the tap's interface with -i instead")]
    NoSuchGuest { guest: String, running: String },
    #[error("guest '{guest}' has {taps}: give the tap's interface with -i instead of tap:{guest}")]
    AmbiguousGuestTap { guest: String, taps: String },
    #[error("unknown interface '{interface}'{where_}: `ip {ip_args}link` lists the interfaces")]
    NoSuchInterface {
        interface: String,
        where_: String,
        ip_args: String,
    },
    #[error("capturing on {point} is not permitted: run as root or grant CAP_NET_RAW ({message})")]
    NotPermitted { point: String, message: String },
    #[error("capture on {point} failed: {message}")]
    Pcap { point: String, message: String },
    #[error(transparent)]
    Bundle(#[from] BundleError),
}

/// Where a capture's packets go.
pub trait PacketSink {
    /// One packet: its CLOCK_REALTIME stamp, length on the wire, and captured bytes.
    fn packet(
        &mut self,
        timestamp: Duration,
        wire_len: u32,
        data: &[u8],
    ) -> Result<(), CaptureError>;
    /// Called at least once a second and at the end.
    fn flush(&mut self) -> Result<(), CaptureError>;
}

/// A nanosecond pcap file of a bundle, written as packets come.
pub struct PcapFile {
    out: BufWriter<File>,
    path: PathBuf,
}

impl PcapFile {
    /// Creates `path` (it must not exist) with its header for link type `linktype`.
    pub fn create(path: &Path, linktype: i32) -> Result<Self, CaptureError> {
        let file = create_bundle_file(path).map_err(|e| BundleError::io(path, e))?;
        let header = PcapHeader {
            version_major: 2,
            version_minor: 4,
            ts_correction: 0,
            ts_accuracy: 0,
            snaplen: SNAPLEN as u32,
            datalink: DataLink::from(linktype as u32),
            ts_resolution: TsResolution::NanoSecond,
            endianness: Endianness::Little,
        };
        let mut out = BufWriter::with_capacity(1 << 16, file);
        header
            .write_to(&mut out)
            .map_err(|e| pcap_file_error(path, e))?;
        Ok(PcapFile {
            out,
            path: path.to_path_buf(),
        })
    }
}

impl PacketSink for PcapFile {
    fn packet(
        &mut self,
        timestamp: Duration,
        wire_len: u32,
        data: &[u8],
    ) -> Result<(), CaptureError> {
        PcapPacket::new(timestamp, wire_len, data)
            .write_to::<_, LittleEndian>(&mut self.out, TsResolution::NanoSecond, SNAPLEN as u32)
            .map_err(|e| pcap_file_error(&self.path, e).into())
            .map(drop)
    }

    fn flush(&mut self) -> Result<(), CaptureError> {
        self.out
            .flush()
            .map_err(|e| BundleError::io(&self.path, e).into())
    }
}

/// An open capture, ready to run on the thread that opened it.
pub struct OpenCapture {
    point: CapturePoint,
    capture: Capture<Active>,
    info: CaptureInfo,
    prober: Option<Prober>,
}

/// Opens `point` with `filter`; with `probes` (a guest's tap), it also sends the clock
/// probes. Call it on the capture thread: entering the namespace changes the calling
/// thread's namespace.
pub fn open(point: &CapturePoint, filter: &str, probes: bool) -> Result<OpenCapture, CaptureError> {
    if let Some(netns) = &point.netns {
        enter_netns(netns)?;
    }
    let name = point.name();
    if !interface_exists(&point.interface) {
        return Err(CaptureError::NoSuchInterface {
            interface: point.interface.clone(),
            where_: point
                .netns
                .as_ref()
                .map(|n| format!(" in network namespace '{n}'"))
                .unwrap_or_default(),
            ip_args: point
                .netns
                .as_ref()
                .map(|n| format!("-n {n} "))
                .unwrap_or_default(),
        });
    }
    let pcap_error = |e: pcap::Error| {
        let message = e.to_string();
        if message.contains("ermission") || message.contains("EPERM") {
            CaptureError::NotPermitted {
                point: name.clone(),
                message,
            }
        } else {
            CaptureError::Pcap {
                point: name.clone(),
                message,
            }
        }
    };
    let mut capture = Capture::from_device(point.interface.as_str())
        .map_err(pcap_error)?
        .immediate_mode(true)
        .precision(Precision::Nano)
        .snaplen(SNAPLEN)
        .buffer_size(BUFFER_BYTES)
        .open()
        .and_then(Capture::setnonblock)
        .map_err(pcap_error)?;
    capture.filter(filter, true).map_err(pcap_error)?;
    let linktype = capture.get_datalink().0;
    let prober = match probes {
        true => Some(Prober::open(&point.interface).map_err(pcap_error)?),
        false => None,
    };
    let info = CaptureInfo {
        name,
        interface: point.interface.clone(),
        netns: point.netns.clone(),
        filter: filter.to_string(),
        file: point.file(),
        linktype,
        packets: 0,
        mac: hardware_address(&point.interface),
        probes_sent: None,
    };
    Ok(OpenCapture {
        point: point.clone(),
        capture,
        info,
        prober,
    })
}

/// The interface's hardware address (`52:54:00:12:34:56`), asked of the kernel in this
/// thread's network namespace; `None` for one without (a tun, lo's zeros).
fn hardware_address(name: &str) -> Option<String> {
    use std::os::fd::AsRawFd;
    let bytes = name.as_bytes();
    // SAFETY: ifreq is plain old data; all zeros is a valid value.
    let mut req: libc::ifreq = unsafe { std::mem::zeroed() };
    if bytes.len() >= req.ifr_name.len() {
        return None;
    }
    for (dst, src) in req.ifr_name.iter_mut().zip(bytes) {
        *dst = *src as libc::c_char;
    }
    let socket = rustix::net::socket(
        rustix::net::AddressFamily::INET,
        rustix::net::SocketType::DGRAM,
        None,
    )
    .ok()?;
    // SAFETY: SIOCGIFHWADDR reads ifr_name and writes ifr_hwaddr of the ifreq it is
    // given, which lives across the call.
    let rc = unsafe { libc::ioctl(socket.as_raw_fd(), libc::SIOCGIFHWADDR, &mut req) };
    if rc != 0 {
        return None;
    }
    // SAFETY: the ioctl succeeded, so the union holds ifr_hwaddr.
    let data = unsafe { req.ifr_ifru.ifru_hwaddr.sa_data };
    let mac: Vec<u8> = data.iter().take(6).map(|b| *b as u8).collect();
    (mac.iter().any(|b| *b != 0)).then(|| {
        mac.iter()
            .map(|b| format!("{b:02x}"))
            .collect::<Vec<_>>()
            .join(":")
    })
}

/// Asks the kernel in this thread's network namespace. (/sys/class/net would answer for
/// the namespace /sys was mounted in, not the one the thread entered.)
fn interface_exists(name: &str) -> bool {
    std::ffi::CString::new(name)
        // SAFETY: a valid NUL-terminated string that outlives the call.
        .is_ok_and(|name| unsafe { libc::if_nametoindex(name.as_ptr()) } != 0)
}

fn enter_netns(netns: &str) -> Result<(), CaptureError> {
    let path = Path::new("/run/netns").join(netns);
    let file = File::open(&path).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => CaptureError::NoSuchNetns {
            netns: netns.to_string(),
        },
        _ => CaptureError::EnterNetns {
            netns: netns.to_string(),
            source: e,
        },
    })?;
    use std::os::fd::AsFd;
    rustix::thread::move_into_link_name_space(
        file.as_fd(),
        Some(rustix::thread::LinkNameSpaceType::Network),
    )
    .map_err(|e| CaptureError::EnterNetns {
        netns: netns.to_string(),
        source: e.into(),
    })
}

fn pcap_file_error(path: &Path, e: pcap_file::PcapError) -> BundleError {
    match e {
        pcap_file::PcapError::IoError(io) => BundleError::io(path, io),
        other => BundleError::io(path, std::io::Error::other(other.to_string())),
    }
}

impl OpenCapture {
    pub fn info(&self) -> &CaptureInfo {
        &self.info
    }

    /// Captures into `sink` until `stop` is set, flushing it at least once a second.
    /// Returns the final capture description, or the error that ended it (a full disk
    /// among them).
    pub fn run(
        mut self,
        sink: &mut impl PacketSink,
        stop: &AtomicBool,
        losses: &LossCounters,
    ) -> Result<CaptureInfo, CaptureError> {
        let mut last_flush = Instant::now();
        let mut reported = pcap::Stat {
            received: 0,
            dropped: 0,
            if_dropped: 0,
        };
        let result = loop {
            if stop.load(Ordering::Relaxed) {
                break Ok(());
            }
            match self.capture.next_packet() {
                Ok(packet) => {
                    let ts = packet.header.ts;
                    // In nanosecond mode libpcap puts nanoseconds in tv_usec.
                    let timestamp = Duration::new(ts.tv_sec as u64, ts.tv_usec as u32);
                    if let Err(e) = sink.packet(timestamp, packet.header.len, packet.data) {
                        break Err(e);
                    }
                    self.info.packets += 1;
                }
                Err(pcap::Error::TimeoutExpired) => self.wait_for_packets(),
                Err(e) => {
                    break Err(CaptureError::Pcap {
                        point: self.point.name(),
                        message: e.to_string(),
                    })
                }
            }
            if let Some(prober) = &mut self.prober {
                match prober.tick() {
                    Ok(sent) => self.info.probes_sent = Some(sent),
                    Err(e) => {
                        break Err(CaptureError::Pcap {
                            point: self.point.name(),
                            message: format!("sending a clock probe: {e}"),
                        })
                    }
                }
            }
            if last_flush.elapsed() >= FLUSH_EVERY {
                last_flush = Instant::now();
                if let Err(e) = self.flush(sink, &mut reported, losses) {
                    break Err(e);
                }
            }
        };
        // Flush what was captured even when the loop ended on an error: a full disk
        // may still take the tail, and a pcap error leaves the file intact.
        let flushed = self.flush(sink, &mut reported, losses);
        result.and(flushed)?;
        Ok(self.info)
    }

    /// Sleeps until a packet may be ready, or [`WAKE_EVERY_MS`] passed.
    fn wait_for_packets(&self) {
        let mut fds = [rustix::event::PollFd::new(
            &self.capture,
            rustix::event::PollFlags::IN,
        )];
        let timeout = rustix::event::Timespec {
            tv_sec: 0,
            tv_nsec: i64::from(WAKE_EVERY_MS) * 1_000_000,
        };
        // EINTR or an error: the loop checks stop and tries again.
        let _ = rustix::event::poll(&mut fds, Some(&timeout));
    }

    /// Flushes the sink and adds the kernel's new drops to the counters.
    fn flush(
        &mut self,
        sink: &mut impl PacketSink,
        reported: &mut pcap::Stat,
        losses: &LossCounters,
    ) -> Result<(), CaptureError> {
        if let Ok(stat) = self.capture.stats() {
            LossCounters::add(
                &losses.pcap_dropped,
                u64::from(stat.dropped.saturating_sub(reported.dropped)),
            );
            LossCounters::add(
                &losses.pcap_if_dropped,
                u64::from(stat.if_dropped.saturating_sub(reported.if_dropped)),
            );
            *reported = stat;
        }
        sink.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_capture_points() {
        let p: CapturePoint = "eth0@vr1".parse().unwrap();
        assert_eq!(p.interface, "eth0");
        assert_eq!(p.netns.as_deref(), Some("vr1"));
        assert_eq!(p.file(), "pcap/eth0@vr1.pcap");
        let p: CapturePoint = "br0".parse().unwrap();
        assert_eq!(p.netns, None);
        assert_eq!(p.name(), "br0");
        for bad in ["", "@ns", "eth0@", "eth0/../x", "a@b@c"] {
            assert!(bad.parse::<CapturePoint>().is_err(), "{bad} accepted");
        }
    }

    #[test]
    fn filter_takes_vrrp_carp_and_heartbeat_ports_tagged_or_not() {
        let f = heartbeat_filter(&[5405]);
        let wanted = "ip proto 112 or ip6 proto 112 or udp port 5405 or udp port 47474";
        assert!(f.starts_with(&format!("({wanted})")));
        assert!(f.contains(&format!("(vlan and ({wanted}))")));
        // libpcap must accept it for a real link type.
        let dead = Capture::dead_with_precision(pcap::Linktype::ETHERNET, Precision::Nano).unwrap();
        dead.compile(&f, true).expect("filter compiles");
    }
}

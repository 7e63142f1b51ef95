//! The VMs of a host: every QEMU process, its guest's name, and its taps with the
//! guest's MAC on each (`docs/bundle-format.md`, `recorded.vms`), so that the analyzer
//! can tie a guest bundle to its own QEMU process and ignore the other VMs' threads.
//!
//! A QEMU process is known by its command name or executable (`qemu-system-*`, RHEL's
//! `qemu-kvm`). Its taps are the `/dev/net/tun` descriptors it holds: the kernel names
//! each one's interface in `/proc/PID/fdinfo/FD` (`iff:`), whether QEMU opened it by
//! name (`ifname=`) or libvirt handed it over (`fd=`). The guest's MAC comes from the
//! command line: the network device (`-device DRIVER,netdev=ID,mac=MAC`, or libvirt's
//! JSON form) bound to that tap's `-netdev` (`ifname=` or `fd=`), or `-nic`. A tap whose
//! netdev cannot be told keeps its interface and no MAC.
//!
//! Under KVM, debugfs also gives each vCPU's TSC offset (`kvm/PID-FD/vcpuN/tsc-offset`):
//! guest TSC = host TSC + offset, the exact clock relation trace-cmd aligns with.

use std::collections::HashMap;
use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use procfs::process::{all_processes, Process};
use vmlat_bundle::{VcpuTscOffset, VmInfo, VmTap};

/// Where KVM lists its VMs in debugfs.
pub const KVM_DEBUGFS: &str = "/sys/kernel/debug/kvm";

/// Whether a process is QEMU, by its command name (15 bytes at most) or executable.
pub fn is_qemu(comm: &str, exe: Option<&str>) -> bool {
    let qemu = |name: &str| name.starts_with("qemu-system") || name == "qemu-kvm";
    qemu(comm) || exe.and_then(|e| e.rsplit('/').next()).is_some_and(qemu)
}

/// Every QEMU process running now.
pub fn find_vms() -> Vec<VmInfo> {
    let Ok(processes) = all_processes() else {
        return Vec::new();
    };
    let namespaces = named_netns();
    processes
        .flatten()
        .filter_map(|p| {
            let comm = p.stat().ok()?.comm;
            let exe = p.exe().ok().map(|e| e.display().to_string());
            is_qemu(&comm, exe.as_deref()).then(|| describe(&p, exe, &namespaces))
        })
        .collect()
}

/// Where `ip netns` keeps its named network namespaces (bind mounts of nsfs files).
const NETNS_DIR: &str = "/run/netns";

/// The named network namespaces by their nsfs (device, inode).
fn named_netns() -> Vec<((u64, u64), String)> {
    let Ok(entries) = fs::read_dir(NETNS_DIR) else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter_map(|e| {
            let meta = fs::metadata(e.path()).ok()?;
            Some((
                (meta.dev(), meta.ino()),
                e.file_name().to_string_lossy().into_owned(),
            ))
        })
        .collect()
}

fn describe(p: &Process, exe: Option<String>, namespaces: &[((u64, u64), String)]) -> VmInfo {
    let args = p.cmdline().unwrap_or_default();
    let line = CommandLine::parse(&args);
    let taps = tun_fds(p)
        .into_iter()
        .map(|(fd, ifname)| {
            let netdev = line.netdev_of(&ifname, fd);
            VmTap {
                mac: netdev.and_then(|n| line.mac_of(n)).map(str::to_string),
                netdev: netdev.map(str::to_string),
                ifname,
            }
        })
        .collect();
    VmInfo {
        pid: p.pid,
        name: line.name,
        exe,
        taps,
        netns: fs::metadata(format!("/proc/{}/ns/net", p.pid))
            .ok()
            .and_then(|m| {
                namespaces
                    .iter()
                    .find(|(id, _)| *id == (m.dev(), m.ino()))
                    .map(|(_, name)| name.clone())
            }),
        tsc_offsets: tsc_offsets(Path::new(KVM_DEBUGFS), p.pid),
    }
}

/// The TSC offset of each vCPU of the KVM VM of process `pid`, from `kvm_debugfs`
/// (`PID-FD/vcpuN/tsc-offset`), in vCPU order; empty where there is none.
pub fn tsc_offsets(kvm_debugfs: &Path, pid: i32) -> Vec<VcpuTscOffset> {
    let prefix = format!("{pid}-");
    let Ok(vms) = fs::read_dir(kvm_debugfs) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for vm in vms.flatten() {
        if !vm.file_name().to_string_lossy().starts_with(&prefix) {
            continue;
        }
        let Ok(vcpus) = fs::read_dir(vm.path()) else {
            continue;
        };
        for vcpu in vcpus.flatten() {
            let name = vcpu.file_name();
            let Some(n) = name
                .to_str()
                .and_then(|n| n.strip_prefix("vcpu")?.parse().ok())
            else {
                continue;
            };
            let offset = fs::read_to_string(vcpu.path().join("tsc-offset"))
                .ok()
                .and_then(|s| s.trim().parse().ok());
            if let Some(offset) = offset {
                out.push(VcpuTscOffset { vcpu: n, offset });
            }
        }
    }
    out.sort_by_key(|o| o.vcpu);
    out
}

/// `(fd, interface)` of every tun/tap descriptor of `p`.
fn tun_fds(p: &Process) -> Vec<(i32, String)> {
    let Ok(fds) = p.fd() else { return Vec::new() };
    let mut out: Vec<(i32, String)> = fds
        .flatten()
        .filter(|fd| {
            matches!(&fd.target, procfs::process::FDTarget::Path(path) if path.as_os_str() == "/dev/net/tun")
        })
        .filter_map(|fd| {
            let info = fs::read_to_string(format!("/proc/{}/fdinfo/{}", p.pid, fd.fd)).ok()?;
            Some((fd.fd, tun_interface(&info)?.to_string()))
        })
        .collect();
    out.sort();
    out
}

/// The interface of a tun descriptor from its fdinfo (`iff:\ttap0`).
fn tun_interface(fdinfo: &str) -> Option<&str> {
    fdinfo
        .lines()
        .find_map(|l| l.strip_prefix("iff:"))
        .map(str::trim)
        .filter(|i| !i.is_empty())
}

/// What a QEMU command line says about the guest's name and network.
#[derive(Debug, Default, PartialEq)]
struct CommandLine {
    name: Option<String>,
    /// Tap netdevs: (id, ifname, fd).
    netdevs: Vec<(String, Option<String>, Option<i32>)>,
    /// netdev id → guest MAC.
    macs: HashMap<String, String>,
}

impl CommandLine {
    fn parse(args: &[String]) -> Self {
        let mut line = CommandLine::default();
        let mut nic = 0;
        for pair in args.windows(2) {
            let (Some(flag), Some(value)) = (pair.first(), pair.get(1)) else {
                continue;
            };
            let opts = Options::parse(value);
            match flag.trim_start_matches('-') {
                "name" => {
                    line.name = opts.get("guest").or(opts.first_bare()).map(str::to_string);
                }
                "netdev" if opts.kind() == Some("tap") => {
                    if let Some(id) = opts.get("id") {
                        line.netdevs.push((
                            id.to_string(),
                            opts.get("ifname").map(str::to_string),
                            opts.get("fd").and_then(|f| f.parse().ok()),
                        ));
                    }
                }
                "device" => {
                    if let (Some(id), Some(mac)) = (opts.get("netdev"), opts.get("mac")) {
                        line.macs.insert(id.to_string(), mac.to_ascii_lowercase());
                    }
                }
                "nic" if opts.kind() == Some("tap") => {
                    // `-nic` is a netdev and its device in one; it has no id of its own.
                    let id = opts
                        .get("id")
                        .map_or_else(|| format!("nic{nic}"), str::to_string);
                    nic += 1;
                    if let Some(mac) = opts.get("mac") {
                        line.macs.insert(id.clone(), mac.to_ascii_lowercase());
                    }
                    line.netdevs.push((
                        id,
                        opts.get("ifname").map(str::to_string),
                        opts.get("fd").and_then(|f| f.parse().ok()),
                    ));
                }
                _ => {}
            }
        }
        line
    }

    /// The netdev of the tap `ifname` held on descriptor `fd`.
    fn netdev_of(&self, ifname: &str, fd: i32) -> Option<&str> {
        self.netdevs
            .iter()
            .find(|(_, name, f)| name.as_deref() == Some(ifname) || *f == Some(fd))
            .map(|(id, _, _)| id.as_str())
    }

    fn mac_of(&self, netdev: &str) -> Option<&str> {
        self.macs.get(netdev).map(String::as_str)
    }
}

/// One option argument: QEMU's `kind,key=value,...` (`,,` escapes a comma) or the JSON
/// object libvirt passes (`{"driver":"virtio-net-pci","netdev":"hostnet0",...}`).
#[derive(Debug, Default)]
struct Options {
    /// The leading value without a key (`tap` of `tap,id=n0`).
    bare: Option<String>,
    pairs: Vec<(String, String)>,
}

impl Options {
    fn parse(value: &str) -> Self {
        if value.trim_start().starts_with('{') {
            return Self::json(value);
        }
        let mut opts = Options::default();
        for (i, part) in split_commas(value).into_iter().enumerate() {
            match part.split_once('=') {
                Some((k, v)) => opts.pairs.push((k.to_string(), v.to_string())),
                None if i == 0 => opts.bare = Some(part),
                None => {}
            }
        }
        opts
    }

    fn json(value: &str) -> Self {
        let mut opts = Options::default();
        let Ok(serde_json::Value::Object(map)) = serde_json::from_str(value) else {
            return opts;
        };
        for (k, v) in map {
            let v = match v {
                serde_json::Value::String(s) => s,
                serde_json::Value::Number(n) => n.to_string(),
                _ => continue,
            };
            opts.pairs.push((k, v));
        }
        opts
    }

    fn get(&self, key: &str) -> Option<&str> {
        self.pairs
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    fn first_bare(&self) -> Option<&str> {
        self.bare.as_deref()
    }

    /// The backend type: the bare leading value, or JSON's `type`.
    fn kind(&self) -> Option<&str> {
        self.bare.as_deref().or_else(|| self.get("type"))
    }
}

/// Splits at single commas; `,,` is a literal comma.
fn split_commas(value: &str) -> Vec<String> {
    let mut parts = vec![String::new()];
    let mut chars = value.chars().peekable();
    while let Some(c) = chars.next() {
        if c == ',' {
            if chars.peek() != Some(&',') {
                parts.push(String::new());
                continue;
            }
            chars.next();
        }
        if let Some(p) = parts.last_mut() {
            p.push(c);
        }
    }
    parts
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(line: &str) -> Vec<String> {
        line.split(' ').map(str::to_string).collect()
    }

    #[test]
    fn a_hand_written_command_line_names_the_guest_and_its_tap_mac() {
        let line = CommandLine::parse(&args(
            "qemu-system-x86_64 -name guest=vm1,debug-threads=on -m 256 \
             -netdev tap,id=n0,ifname=tap-vr1,script=no,downscript=no \
             -device virtio-net-pci,netdev=n0,mac=52:54:00:AA:00:01 -nographic",
        ));
        assert_eq!(line.name.as_deref(), Some("vm1"));
        assert_eq!(line.netdev_of("tap-vr1", 99), Some("n0"));
        assert_eq!(line.mac_of("n0"), Some("52:54:00:aa:00:01"));
    }

    #[test]
    fn libvirt_json_devices_and_fd_taps_are_read() {
        // As libvirt 9 starts a guest: the tap handed over as fd 34, the device in JSON.
        let line = CommandLine::parse(&args(
            r#"/usr/bin/qemu-system-x86_64 -name guest=web-01,debug-threads=on -netdev {"type":"tap","fd":"34","vhost":true,"vhostfd":"36","id":"hostnet0"} -device {"driver":"virtio-net-pci","netdev":"hostnet0","id":"net0","mac":"52:54:00:1e:5f:0b","bus":"pci.1","addr":"0x0"}"#,
        ));
        assert_eq!(line.name.as_deref(), Some("web-01"));
        assert_eq!(line.netdev_of("vnet3", 34), Some("hostnet0"));
        assert_eq!(line.mac_of("hostnet0"), Some("52:54:00:1e:5f:0b"));
        assert_eq!(line.netdev_of("vnet3", 35), None);
    }

    #[test]
    fn plain_names_nics_and_escaped_commas() {
        let line = CommandLine::parse(&args(
            "qemu-kvm -name db,,primary -nic tap,ifname=tap7,mac=52:54:00:00:00:07,model=virtio",
        ));
        assert_eq!(line.name.as_deref(), Some("db,primary"));
        assert_eq!(line.netdev_of("tap7", 3), Some("nic0"));
        assert_eq!(line.mac_of("nic0"), Some("52:54:00:00:00:07"));
    }

    #[test]
    fn qemu_is_known_by_name_or_executable() {
        assert!(is_qemu("qemu-system-x86", None));
        assert!(is_qemu("qemu-kvm", None));
        assert!(is_qemu("CPU 0/KVM", Some("/usr/libexec/qemu-kvm")));
        assert!(!is_qemu("sleep", Some("/usr/bin/sleep")));
    }

    #[test]
    fn tsc_offsets_are_read_from_a_kvm_debugfs_fixture() {
        // A fixture laid out as KVM's debugfs is: this machine has no KVM.
        let dir = tempfile::tempdir().unwrap();
        for (vm, vcpu, offset) in [
            ("4242-11", "vcpu1", "-1234567890123\n"),
            ("4242-11", "vcpu0", "-1234567890000\n"),
            ("5151-12", "vcpu0", "42\n"),
        ] {
            let d = dir.path().join(vm).join(vcpu);
            fs::create_dir_all(&d).unwrap();
            fs::write(d.join("tsc-offset"), offset).unwrap();
        }
        fs::create_dir_all(dir.path().join("4242-11/vcpu2")).unwrap();
        let offsets = tsc_offsets(dir.path(), 4242);
        assert_eq!(
            offsets,
            vec![
                VcpuTscOffset {
                    vcpu: 0,
                    offset: -1_234_567_890_000
                },
                VcpuTscOffset {
                    vcpu: 1,
                    offset: -1_234_567_890_123
                },
            ]
        );
        assert!(tsc_offsets(dir.path(), 4243).is_empty());
        assert!(tsc_offsets(&dir.path().join("none"), 4242).is_empty());
    }

    #[test]
    fn the_tap_interface_comes_from_fdinfo() {
        let info = "pos:\t0\nflags:\t0104002\nmnt_id:\t25\nino:\t1033\niff:\ttap-vr1\n";
        assert_eq!(tun_interface(info), Some("tap-vr1"));
        assert_eq!(tun_interface("pos:\t0\niff:\t\n"), None);
    }
}

//! What lab to build: the routers and the VRRP settings they share, with the checks that
//! turn a bad spec into a clear error before anything is created.

use std::collections::BTreeSet;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::PathBuf;
use std::time::Duration;

use crate::LabError;

/// Longest router name: the bridge port is `sw-NAME` and interface names have 15 usable bytes.
pub const MAX_ROUTER_NAME: usize = 12;

/// Most routers in one lab: router addresses are .1 to .N and must stay below the VIP (.100).
pub const MAX_ROUTERS: usize = 16;

/// The lab's private IPv4 subnet: router *i* (0-based) is 10.10.0.(i+1)/24.
pub const SUBNET_V4: Ipv4Addr = Ipv4Addr::new(10, 10, 0, 0);
/// The IPv4 virtual address.
pub const VIP_V4: Ipv4Addr = Ipv4Addr::new(10, 10, 0, 100);
/// The lab's private IPv6 subnet (ULA): router *i* is fd00:10:10::(i+1)/64.
pub const SUBNET_V6: Ipv6Addr = Ipv6Addr::new(0xfd00, 0x10, 0x10, 0, 0, 0, 0, 0);
/// The IPv6 virtual address.
pub const VIP_V6: Ipv6Addr = Ipv6Addr::new(0xfd00, 0x10, 0x10, 0, 0, 0, 0, 0x100);

/// The VRRP protocol version keepalived speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VrrpVersion {
    /// RFC 3768: IPv4 only, interval in whole seconds.
    V2,
    /// RFC 5798: IPv4 or IPv6, interval in centiseconds.
    V3,
}

/// What a router runs in.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Backend {
    /// A network namespace on the host, with a veth port on the bridge.
    #[default]
    Netns,
    /// A QEMU (TCG) guest with a tap on the bridge, recording itself ([`crate::qemu`]).
    Qemu,
    /// One of the Vagrantfile's VMs, reached over `vagrant ssh` and `virsh`, recording
    /// itself (`docs/vagrant.md`).
    Vagrant,
}

impl Backend {
    /// The name used in scenario files.
    pub fn name(self) -> &'static str {
        match self {
            Backend::Netns => "netns",
            Backend::Qemu => "qemu",
            Backend::Vagrant => "vagrant",
        }
    }

    /// The fault kinds (by their names in scenario files) a router on this backend takes.
    pub fn faults(self) -> &'static [&'static str] {
        match self {
            Backend::Netns => crate::netns::FAULTS,
            Backend::Qemu => crate::qemu::router::FAULTS,
            Backend::Vagrant => crate::vagrant::FAULTS,
        }
    }

    /// Whether keepalived runs as processes of this host, which the lab starts itself
    /// (and can pin to a CPU or give a /tmp of its choosing), rather than inside a VM.
    pub fn runs_keepalived_here(self) -> bool {
        self == Backend::Netns
    }

    /// Why a router on this backend does not take a fault outside [`Backend::faults`].
    pub fn refusal(self) -> &'static str {
        match self {
            Backend::Netns => crate::netns::REFUSAL,
            Backend::Qemu => crate::qemu::router::REFUSAL,
            Backend::Vagrant => crate::vagrant::REFUSAL,
        }
    }
}

/// One router: a namespace (or a QEMU guest) running one keepalived.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouterSpec {
    /// Short name (1–12 of `a-z0-9-`, not `sw`), used in namespace, port and keepalived names.
    pub name: String,
    /// VRRP priority, 1–254 (255 means "address owner" and needs the VIP as a real address).
    pub priority: u8,
    /// Pin keepalived (and so its VRRP child) to this CPU with taskset, for CPU-hog faults.
    pub cpu: Option<u32>,
    /// Directory bind-mounted over keepalived's /tmp (where SIGUSR2 writes keepalived.stats).
    /// `None`: a fresh directory in the lab dir. Point it at a throttled, sync-mounted
    /// filesystem to make the stats write block, as in the disk fault scenarios.
    pub tmp: Option<PathBuf>,
    /// A QEMU router's /tmp disk: a host block device holding ext4, which QEMU gives the
    /// guest as its second virtio disk with `cache=none` (so every guest write becomes a
    /// direct write on the host) and the guest mounts `sync` on /tmp. Point it at a
    /// throttled device to make the guest's stats write wait on the host's disk.
    pub tmp_disk: Option<PathBuf>,
    /// Where it runs.
    pub backend: Backend,
}

impl RouterSpec {
    /// A namespace router with no CPU pinning and a private /tmp in the lab dir.
    pub fn new(name: impl Into<String>, priority: u8) -> Self {
        Self {
            name: name.into(),
            priority,
            cpu: None,
            tmp: None,
            tmp_disk: None,
            backend: Backend::Netns,
        }
    }
}

/// A whole lab: routers on one bridge sharing one VRRP instance.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LabSpec {
    /// The routers; the highest priority is the expected master.
    pub routers: Vec<RouterSpec>,
    /// The virtual router id, 1–255.
    pub vrid: u8,
    /// Advertisement interval: whole seconds (1–255 s) for v2; a multiple of 10 ms
    /// (10 ms–40.95 s) for v3.
    pub advert_int: Duration,
    /// VRRP version.
    pub version: VrrpVersion,
    /// Unicast adverts to the other routers' addresses instead of multicast to 224.0.0.18 / ff02::12.
    pub unicast: bool,
    /// Run VRRP over IPv6 (needs v3); routers keep their IPv4 addresses as well.
    pub ipv6: bool,
}

impl LabSpec {
    /// The usual pair: `vr1` (priority 150, the master) and `vr2` (100), VRID 51,
    /// one advert a second, VRRPv2 multicast over IPv4.
    pub fn pair() -> Self {
        Self {
            routers: vec![RouterSpec::new("vr1", 150), RouterSpec::new("vr2", 100)],
            vrid: 51,
            advert_int: Duration::from_secs(1),
            version: VrrpVersion::V2,
            unicast: false,
            ipv6: false,
        }
    }

    /// The router expected to win the election: the highest priority (first one on a tie,
    /// though keepalived then breaks the tie by the higher address).
    pub fn expected_master(&self) -> Option<&RouterSpec> {
        self.routers.iter().rev().max_by_key(|r| r.priority)
    }

    /// Whether the lab is the Vagrantfile's VMs ([`Backend::Vagrant`], which no other
    /// backend joins: they are on libvirt's network, not the lab's bridge).
    pub fn is_vagrant(&self) -> bool {
        self.routers.iter().any(|r| r.backend == Backend::Vagrant)
    }

    /// The virtual IP keepalived moves: 10.10.0.100, or fd00:10:10::100 for IPv6 labs;
    /// the Vagrantfile's 192.168.56.100 in a vagrant lab.
    pub fn vip(&self) -> IpAddr {
        if self.is_vagrant() {
            crate::vagrant::VIP
        } else if self.ipv6 {
            IpAddr::V6(VIP_V6)
        } else {
            IpAddr::V4(VIP_V4)
        }
    }

    /// The address VRRP runs from on the router at `index`, in the VRRP address family.
    pub fn router_addr(&self, index: usize) -> IpAddr {
        if self.ipv6 {
            IpAddr::V6(router_v6(index))
        } else {
            IpAddr::V4(router_v4(index))
        }
    }

    /// Checks everything that can be checked without touching the system.
    pub fn validate(&self) -> Result<(), LabError> {
        let bad = |msg: String| Err(LabError::InvalidSpec(msg));
        if self.routers.is_empty() {
            return bad("no routers: a lab needs at least one".into());
        }
        if self.is_vagrant() {
            // Nothing is built: the spec must describe the Vagrantfile's VMs as they are.
            return crate::vagrant::validate(self);
        }
        if self.routers.len() > MAX_ROUTERS {
            return bad(format!(
                "{} routers: at most {MAX_ROUTERS} fit below the VIP",
                self.routers.len()
            ));
        }
        let mut names = BTreeSet::new();
        for r in &self.routers {
            validate_name(&r.name)?;
            if !names.insert(r.name.as_str()) {
                return bad(format!("router name {:?} is used twice", r.name));
            }
            if !(1..=254).contains(&r.priority) {
                return bad(format!(
                    "router {} has priority {}: use 1-254 (255 is the address owner, 0 means resign)",
                    r.name, r.priority
                ));
            }
            if r.backend == Backend::Qemu {
                // The tap is `tap-NAME`, and interface names have 15 usable bytes.
                if r.name.len() + crate::qemu::TAP_PREFIX.len() > 15 {
                    return bad(format!(
                        "router {}: a QEMU router's name has at most {} characters (its tap is {}NAME)",
                        r.name,
                        15 - crate::qemu::TAP_PREFIX.len(),
                        crate::qemu::TAP_PREFIX
                    ));
                }
                if self.ipv6 || r.cpu.is_some() || r.tmp.is_some() {
                    return bad(format!(
                        "router {}: a QEMU router runs IPv4 only, unpinned, with its own /tmp",
                        r.name
                    ));
                }
            }
            if let Some(disk) = &r.tmp_disk {
                use std::os::unix::fs::FileTypeExt;
                if r.backend != Backend::Qemu {
                    return bad(format!(
                        "router {}: tmp_disk is for a QEMU router; a namespace router takes tmp",
                        r.name
                    ));
                }
                if !std::fs::metadata(disk).is_ok_and(|m| m.file_type().is_block_device()) {
                    return bad(format!(
                        "router {}: tmp_disk {} is not a block device",
                        r.name,
                        disk.display()
                    ));
                }
            }
            if let Some(tmp) = &r.tmp {
                if !tmp.is_dir() {
                    return bad(format!(
                        "router {}: tmp {} is not a directory",
                        r.name,
                        tmp.display()
                    ));
                }
            }
        }
        if self.vrid == 0 {
            return bad("vrid 0: use 1-255".into());
        }
        match self.version {
            VrrpVersion::V2 => {
                if self.ipv6 {
                    return bad("VRRPv2 is IPv4 only: set version V3 for an IPv6 lab".into());
                }
                let whole = self.advert_int.subsec_nanos() == 0;
                if !whole || !(1..=255).contains(&self.advert_int.as_secs()) {
                    return bad(format!(
                        "advert_int {:?}: VRRPv2 needs whole seconds, 1-255",
                        self.advert_int
                    ));
                }
            }
            VrrpVersion::V3 => {
                let ms = self.advert_int.as_millis();
                let whole_cs = u64::try_from(ms / 10 * 10)
                    .is_ok_and(|m| Duration::from_millis(m) == self.advert_int);
                if !whole_cs || !(10..=40_950).contains(&ms) {
                    return bad(format!(
                        "advert_int {:?}: VRRPv3 needs a multiple of 10 ms, 10 ms-40.95 s",
                        self.advert_int
                    ));
                }
            }
        }
        Ok(())
    }
}

/// Router names end up in namespace names, interface names and keepalived's config.
fn validate_name(name: &str) -> Result<(), LabError> {
    let ok_chars = name
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
    if name.is_empty() || name.len() > MAX_ROUTER_NAME || !ok_chars || name.starts_with('-') {
        return Err(LabError::InvalidSpec(format!(
            "router name {name:?}: use 1-{MAX_ROUTER_NAME} of a-z, 0-9 and '-', not starting with '-'"
        )));
    }
    if name == crate::lab::SWITCH_SUFFIX {
        return Err(LabError::InvalidSpec(format!(
            "router name {name:?} is reserved for the switch namespace"
        )));
    }
    Ok(())
}

/// Router `index`'s IPv4 address; `index` < MAX_ROUTERS, checked by `validate`.
pub(crate) fn router_v4(index: usize) -> Ipv4Addr {
    let [a, b, c, _] = SUBNET_V4.octets();
    Ipv4Addr::new(a, b, c, u8::try_from(index + 1).unwrap_or(u8::MAX))
}

/// Router `index`'s IPv6 address.
pub(crate) fn router_v6(index: usize) -> Ipv6Addr {
    let mut seg = SUBNET_V6.segments();
    seg[7] = u16::try_from(index + 1).unwrap_or(u16::MAX);
    Ipv6Addr::from(seg)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pair_is_valid_and_vr1_is_master() {
        let spec = LabSpec::pair();
        assert!(spec.validate().is_ok());
        assert_eq!(spec.expected_master().map(|r| r.name.as_str()), Some("vr1"));
        assert_eq!(spec.vip().to_string(), "10.10.0.100");
        assert_eq!(spec.router_addr(1).to_string(), "10.10.0.2");
    }

    #[test]
    fn rejects_bad_specs() {
        let mut s = LabSpec::pair();
        s.ipv6 = true;
        assert!(s.validate().is_err(), "v2 over IPv6");
        s.version = VrrpVersion::V3;
        assert!(s.validate().is_ok());
        assert_eq!(s.router_addr(0).to_string(), "fd00:10:10::1");
        s.advert_int = Duration::from_millis(15);
        assert!(s.validate().is_err(), "not a multiple of 10 ms");
        let mut s = LabSpec::pair();
        s.advert_int = Duration::from_millis(1500);
        assert!(s.validate().is_err(), "fractional v2 interval");
        let mut s = LabSpec::pair();
        s.routers[1].name = "vr1".into();
        assert!(s.validate().is_err(), "duplicate names");
        s.routers[1].name = "this-name-is-too-long".into();
        assert!(s.validate().is_err());
        s.routers[1].name = "sw".into();
        assert!(s.validate().is_err());
        s.routers[1].name = "Vr2".into();
        assert!(s.validate().is_err());
        let mut s = LabSpec::pair();
        s.routers[0].backend = Backend::Qemu;
        assert!(s.validate().is_ok());
        s.routers[0].name = "router-name1".into();
        assert!(s.validate().is_err(), "tap-router-name1 is 16 bytes");
        let mut s = LabSpec::pair();
        s.routers[0].priority = 255;
        assert!(s.validate().is_err());
        s.routers.clear();
        assert!(s.validate().is_err());
    }
}

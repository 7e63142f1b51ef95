//! Packet decoding: from a captured frame to a typed [`Heartbeat`], or to nothing.
//!
//! Every decoder reads through a bounds-checked [`cursor::Cursor`], so that any input,
//! however short or broken, yields a [`Malformed`] reason instead of a panic. A packet
//! that is well formed but not a heartbeat (ARP, TCP, a UDP port nobody asked for, an IP
//! fragment) is `Ok(None)`, not malformed.

pub mod cursor;
pub mod ip;
pub mod link;
pub mod udp;
pub mod vrrp;

use std::net::IpAddr;

use serde::Serialize;

pub use link::LinkType;

/// Why a packet could not be decoded; the text is what the report counts it under.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Malformed(pub &'static str);

/// The heartbeat protocols vmlat follows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Protocol {
    Vrrp,
    Carp,
    Bfd,
    Corosync,
    /// Any other UDP port given with `--heartbeat udp:PORT`.
    Udp,
}

impl Protocol {
    /// True for the protocols that elect a master (VRRP, CARP): their streams have
    /// failovers, and their silent backups are not gaps.
    pub fn elects_master(self) -> bool {
        matches!(self, Protocol::Vrrp | Protocol::Carp)
    }

    pub fn name(self) -> &'static str {
        match self {
            Protocol::Vrrp => "vrrp",
            Protocol::Carp => "carp",
            Protocol::Bfd => "bfd",
            Protocol::Corosync => "corosync",
            Protocol::Udp => "udp",
        }
    }
}

/// One heartbeat packet as seen at one capture point.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Heartbeat {
    /// Capture time, nanoseconds since the Unix epoch (UTC).
    pub t_ns: i64,
    pub src: IpAddr,
    pub dst: IpAddr,
    pub protocol: Protocol,
    /// VRRP VRID, CARP VHID, or the UDP destination port.
    pub group: u16,
    /// VRRP version (2, 3), CARP's 2, BFD's 1; none for other UDP.
    pub version: Option<u8>,
    /// VRRP priority (0 = resigning), CARP advskew (lower wins); none for UDP.
    pub priority: Option<u8>,
    /// The interval the sender promises: VRRPv2 seconds, VRRPv3 centiseconds, CARP
    /// advbase + advskew/256, BFD desired min TX; none when the packet does not say.
    pub interval_ns: Option<u64>,
    /// BFD's detection multiplier.
    pub detect_mult: Option<u8>,
    /// IPv4 identification and header checksum, for matching the same packet seen on
    /// another machine (IPv6 has neither).
    pub ip_id: Option<u16>,
    pub ip_checksum: Option<u16>,
    /// The VRRP/CARP/UDP checksum field.
    pub checksum: u16,
    pub ttl: u8,
    /// The interface it crossed (SLL2 only).
    pub ifindex: Option<u32>,
    /// Sent by the capturing host (SLL/SLL2 only).
    pub outgoing: Option<bool>,
    /// Innermost 802.1Q VLAN ID.
    pub vlan: Option<u16>,
}

/// Decodes one captured frame; `ports` are the UDP destination ports that carry
/// heartbeats.
// Inlined into the packet loop, so that what it returns is built in place rather than
// copied out of its frame (a tenth of decoding was such copies).
#[inline]
pub fn decode(
    link_type: LinkType,
    t_ns: i64,
    frame: &[u8],
    ports: &[u16],
) -> Result<Option<Heartbeat>, Malformed> {
    let link = link::decode(link_type, frame)?;
    let packet = match link.network {
        link::Network::Ipv4 => ip::ipv4(link.payload)?,
        link::Network::Ipv6 => ip::ipv6(link.payload)?,
        link::Network::Other => return Ok(None),
    };
    if packet.fragment {
        return Ok(None);
    }
    let beat = |protocol, group, version, priority, interval_ns, detect_mult, checksum| Heartbeat {
        t_ns,
        src: packet.src,
        dst: packet.dst,
        protocol,
        group,
        version,
        priority,
        interval_ns,
        detect_mult,
        ip_id: packet.id,
        ip_checksum: packet.header_checksum,
        checksum,
        ttl: packet.ttl,
        ifindex: link.ifindex,
        outgoing: link.outgoing,
        vlan: link.vlan,
    };
    Ok(match packet.protocol {
        ip::PROTO_VRRP => {
            let a = vrrp::decode(&packet)?;
            Some(beat(
                a.protocol,
                u16::from(a.vrid),
                Some(a.version),
                Some(a.priority),
                Some(a.interval_ns),
                None,
                a.checksum,
            ))
        }
        ip::PROTO_UDP => udp::decode(&packet, ports)?.map(|u| {
            beat(
                u.protocol,
                u.port,
                u.version,
                None,
                u.interval_ns,
                u.detect_mult,
                u.checksum,
            )
        }),
        _ => None,
    })
}

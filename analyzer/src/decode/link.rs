//! Link layers: strips whatever precedes the IP header and keeps what the link layer
//! knows that IP does not (SLL2's interface index, the direction, the VLAN).

use super::cursor::Cursor;
use super::Malformed;

/// The link types vmlat decodes, by libpcap DLT/LINKTYPE number.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkType {
    /// DLT_EN10MB (1), with any stack of 802.1Q / 802.1ad / 0x9100 tags.
    Ethernet,
    /// DLT_LINUX_SLL (113): `tcpdump -i any` before libpcap 1.10; no interface index.
    LinuxSll,
    /// DLT_LINUX_SLL2 (276): `tcpdump -i any` since libpcap 1.10; has the interface index.
    LinuxSll2,
    /// LINKTYPE_RAW (101), and the platform DLT_RAW values 12 and 14.
    Raw,
    /// DLT_NULL (0): BSD loopback, address family in the writer's byte order.
    Null,
    /// DLT_LOOP (108): OpenBSD loopback, address family in network byte order.
    Loop,
}

impl LinkType {
    pub fn from_dlt(dlt: u32) -> Option<Self> {
        Some(match dlt {
            1 => LinkType::Ethernet,
            113 => LinkType::LinuxSll,
            276 => LinkType::LinuxSll2,
            101 | 12 | 14 => LinkType::Raw,
            0 => LinkType::Null,
            108 => LinkType::Loop,
            _ => return None,
        })
    }
}

/// The network layer a frame carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Network {
    Ipv4,
    Ipv6,
    /// ARP, LLC, anything that is not IP: not a heartbeat.
    Other,
}

/// A frame with its link header taken off.
#[derive(Debug, Clone, Copy)]
pub struct Link<'a> {
    pub network: Network,
    pub payload: &'a [u8],
    /// The interface the packet crossed, from SLL2.
    pub ifindex: Option<u32>,
    /// From the SLL/SLL2 packet type: sent by this host (true) or received (false).
    pub outgoing: Option<bool>,
    /// The innermost VLAN ID: the LAN the routers are on; outer tags only carry it.
    pub vlan: Option<u16>,
}

const ETHERTYPE_IPV4: u16 = 0x0800;
const ETHERTYPE_IPV6: u16 = 0x86dd;
const ETHERTYPE_8021Q: u16 = 0x8100;
const ETHERTYPE_8021AD: u16 = 0x88a8;
/// Pre-standard QinQ outer tag still used by some switches.
const ETHERTYPE_QINQ_OLD: u16 = 0x9100;
/// Linux `PACKET_OUTGOING` in the SLL packet type field.
const PACKET_OUTGOING: u16 = 4;

// Inlined into the packet loop, so that what it returns is built in place rather than
// copied out of its frame (a tenth of decoding was such copies).
#[inline]
pub fn decode(link_type: LinkType, frame: &[u8]) -> Result<Link<'_>, Malformed> {
    match link_type {
        LinkType::Ethernet => {
            let mut c = Cursor::new(frame, "truncated Ethernet header");
            c.skip(12)?;
            let ethertype = c.be_u16()?;
            after_ethertype(c, ethertype, None, None)
        }
        LinkType::LinuxSll => {
            let mut c = Cursor::new(frame, "truncated Linux cooked (SLL) header");
            let packet_type = c.be_u16()?;
            c.skip(2 + 2 + 8)?;
            let protocol = c.be_u16()?;
            after_ethertype(c, protocol, None, Some(packet_type == PACKET_OUTGOING))
        }
        LinkType::LinuxSll2 => {
            let mut c = Cursor::new(frame, "truncated Linux cooked (SLL2) header");
            let protocol = c.be_u16()?;
            c.skip(2)?;
            let ifindex = c.be_u32()?;
            c.skip(2)?;
            let packet_type = c.u8()?;
            c.skip(1 + 8)?;
            after_ethertype(
                c,
                protocol,
                Some(ifindex),
                Some(u16::from(packet_type) == PACKET_OUTGOING),
            )
        }
        LinkType::Raw => {
            let version = Cursor::new(frame, "empty raw IP packet").u8()? >> 4;
            let network = match version {
                4 => Network::Ipv4,
                6 => Network::Ipv6,
                _ => return Err(Malformed("raw IP packet is neither IPv4 nor IPv6")),
            };
            Ok(Link {
                network,
                payload: frame,
                ifindex: None,
                outgoing: None,
                vlan: None,
            })
        }
        LinkType::Null | LinkType::Loop => {
            let mut c = Cursor::new(frame, "truncated loopback header");
            let family = if link_type == LinkType::Loop {
                c.be_u32()?
            } else {
                // The writer's byte order is unknown; no family value is above 0xffff, so
                // a value that is must be the other order (as tcpdump and Wireshark do).
                let le = c.le_u32()?;
                if le > 0xffff {
                    le.swap_bytes()
                } else {
                    le
                }
            };
            let network = match family {
                2 => Network::Ipv4,
                // AF_INET6 is 10 on Linux, 24 on NetBSD/OpenBSD, 28 on FreeBSD, 30 on macOS.
                10 | 24 | 28 | 30 => Network::Ipv6,
                _ => Network::Other,
            };
            Ok(Link {
                network,
                payload: c.rest(),
                ifindex: None,
                outgoing: None,
                vlan: None,
            })
        }
    }
}

/// Walks any VLAN tags after an EtherType and classifies what follows. libpcap puts the
/// tag the kernel stripped back after an SLL/SLL2 header too, so the walk is shared.
fn after_ethertype(
    mut c: Cursor<'_>,
    mut ethertype: u16,
    ifindex: Option<u32>,
    outgoing: Option<bool>,
) -> Result<Link<'_>, Malformed> {
    let mut vlan = None;
    while matches!(
        ethertype,
        ETHERTYPE_8021Q | ETHERTYPE_8021AD | ETHERTYPE_QINQ_OLD
    ) {
        let tci = c.be_u16()?;
        vlan = Some(tci & 0x0fff);
        ethertype = c.be_u16()?;
    }
    let network = match ethertype {
        ETHERTYPE_IPV4 => Network::Ipv4,
        ETHERTYPE_IPV6 => Network::Ipv6,
        _ => Network::Other,
    };
    Ok(Link {
        network,
        payload: c.rest(),
        ifindex,
        outgoing,
        vlan,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ethernet_qinq_keeps_the_inner_vlan() {
        let mut frame = vec![0u8; 12];
        frame.extend_from_slice(&[
            0x88, 0xa8, 0x00, 200, 0x81, 0x00, 0x20, 100, 0x08, 0x00, 0x45,
        ]);
        let link = decode(LinkType::Ethernet, &frame).unwrap();
        assert_eq!(link.network, Network::Ipv4);
        assert_eq!(link.vlan, Some(100));
        assert_eq!(link.payload, &[0x45]);
    }

    #[test]
    fn truncated_vlan_tag_is_malformed() {
        let mut frame = vec![0u8; 12];
        frame.extend_from_slice(&[0x81, 0x00, 0x00]);
        assert!(decode(LinkType::Ethernet, &frame).is_err());
    }

    #[test]
    fn sll2_carries_ifindex_and_direction() {
        let mut frame = vec![0x86, 0xdd, 0, 0, 0, 0, 0, 7, 0, 1, 4, 6];
        frame.extend_from_slice(&[0; 8]);
        frame.push(0x60);
        let link = decode(LinkType::LinuxSll2, &frame).unwrap();
        assert_eq!(
            (link.network, link.ifindex, link.outgoing),
            (Network::Ipv6, Some(7), Some(true))
        );
        assert_eq!(link.payload, &[0x60]);
    }

    #[test]
    fn sll_has_no_ifindex() {
        let mut frame = vec![0, 0, 0, 1, 0, 6];
        frame.extend_from_slice(&[0; 8]);
        frame.extend_from_slice(&[0x08, 0x00, 0x45]);
        let link = decode(LinkType::LinuxSll, &frame).unwrap();
        assert_eq!(
            (link.network, link.ifindex, link.outgoing),
            (Network::Ipv4, None, Some(false))
        );
    }

    #[test]
    fn null_in_either_byte_order_and_loop() {
        for header in [[2, 0, 0, 0], [0, 0, 0, 2]] {
            let mut frame = header.to_vec();
            frame.push(0x45);
            assert_eq!(
                decode(LinkType::Null, &frame).unwrap().network,
                Network::Ipv4
            );
        }
        assert_eq!(
            decode(LinkType::Loop, &[0, 0, 0, 24, 0x60])
                .unwrap()
                .network,
            Network::Ipv6
        );
        assert_eq!(
            decode(LinkType::Loop, &[0, 0, 0, 7]).unwrap().network,
            Network::Other
        );
    }

    #[test]
    fn raw_by_version_nibble() {
        assert_eq!(
            decode(LinkType::Raw, &[0x60]).unwrap().network,
            Network::Ipv6
        );
        assert!(decode(LinkType::Raw, &[0x50]).is_err());
        assert!(decode(LinkType::Raw, &[]).is_err());
    }
}

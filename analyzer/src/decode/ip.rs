//! IPv4 and IPv6 headers, and the Internet checksum.
//!
//! Written by hand on the same cursor as the other decoders: etherparse reads the same
//! fields the same way, 15% slower (`docs/decoding.md` has the measurement and the
//! command, `examples/decode_compare.rs`).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use super::cursor::Cursor;
use super::Malformed;

/// IP protocol numbers vmlat looks at.
pub const PROTO_UDP: u8 = 17;
pub const PROTO_AH: u8 = 51;
/// VRRP and CARP share it.
pub const PROTO_VRRP: u8 = 112;

/// An IP packet's addresses and upper-layer payload.
#[derive(Debug, Clone, Copy)]
pub struct IpPacket<'a> {
    pub src: IpAddr,
    pub dst: IpAddr,
    /// The upper-layer protocol after any IPv6 extension headers and AH.
    pub protocol: u8,
    /// TTL or hop limit: VRRP requires 255, so anything else was routed.
    pub ttl: u8,
    /// IPv4 identification, for matching the same packet across machines.
    pub id: Option<u16>,
    pub header_checksum: Option<u16>,
    /// Not the first fragment, or not the last: the upper layer cannot be read whole.
    pub fragment: bool,
    /// The upper-layer bytes that were captured, at most the IP length (Ethernet
    /// padding is cut off).
    pub payload: &'a [u8],
    /// The capture's snap length cut the packet short of its IP length.
    pub truncated: bool,
}

// Inlined into the packet loop, so that what it returns is built in place rather than
// copied out of its frame (a tenth of decoding was such copies).
#[inline]
pub fn ipv4(data: &[u8]) -> Result<IpPacket<'_>, Malformed> {
    let mut c = Cursor::new(data, "truncated IPv4 header");
    let version_ihl = c.u8()?;
    if version_ihl >> 4 != 4 {
        return Err(Malformed("IPv4 header with another version"));
    }
    let header_len = usize::from(version_ihl & 0x0f) * 4;
    if header_len < 20 {
        return Err(Malformed("IPv4 header length below 20 bytes"));
    }
    c.skip(1)?;
    let total_len = usize::from(c.be_u16()?);
    if total_len < header_len {
        return Err(Malformed("IPv4 total length shorter than its header"));
    }
    let id = c.be_u16()?;
    let flags_offset = c.be_u16()?;
    let ttl = c.u8()?;
    let protocol = c.u8()?;
    let header_checksum = c.be_u16()?;
    let src = Ipv4Addr::from(c.array::<4>()?);
    let dst = Ipv4Addr::from(c.array::<4>()?);
    c.skip(header_len - 20)?;
    let wanted = total_len - header_len;
    let truncated = c.remaining() < wanted;
    let payload = c.bytes(wanted.min(c.remaining()))?;
    let mut packet = IpPacket {
        src: src.into(),
        dst: dst.into(),
        protocol,
        ttl,
        id: Some(id),
        header_checksum: Some(header_checksum),
        fragment: flags_offset & 0x3fff != 0,
        payload,
        truncated,
    };
    if packet.protocol == PROTO_AH && !packet.fragment {
        skip_ah(&mut packet)?;
    }
    Ok(packet)
}

pub fn ipv6(data: &[u8]) -> Result<IpPacket<'_>, Malformed> {
    let mut c = Cursor::new(data, "truncated IPv6 header");
    if c.be_u32()? >> 28 != 6 {
        return Err(Malformed("IPv6 header with another version"));
    }
    let payload_len = usize::from(c.be_u16()?);
    let mut next = c.u8()?;
    let ttl = c.u8()?;
    let src = Ipv6Addr::from(c.array::<16>()?);
    let dst = Ipv6Addr::from(c.array::<16>()?);
    // A zero payload length means a jumbogram: the length is in a hop-by-hop option
    // that heartbeats never need, so take what was captured.
    let wanted = if payload_len == 0 {
        c.remaining()
    } else {
        payload_len
    };
    let truncated = c.remaining() < wanted;
    let mut ext = Cursor::new(
        c.bytes(wanted.min(c.remaining()))?,
        "truncated IPv6 extension header",
    );
    let mut fragment = false;
    // Eight headers is more than any real packet has; the bound keeps the walk finite.
    for _ in 0..8 {
        match next {
            // Hop-by-hop, routing, destination options: length in 8-octet units after the first 8.
            0 | 43 | 60 => {
                next = ext.u8()?;
                let len = usize::from(ext.u8()?);
                ext.skip(6 + len * 8)?;
            }
            44 => {
                next = ext.u8()?;
                ext.skip(1)?;
                let offset_flags = ext.be_u16()?;
                ext.skip(4)?;
                fragment = offset_flags & 0xfff9 != 0;
            }
            _ => break,
        }
    }
    let mut packet = IpPacket {
        src: src.into(),
        dst: dst.into(),
        protocol: next,
        ttl,
        id: None,
        header_checksum: None,
        fragment,
        payload: ext.rest(),
        truncated,
    };
    if packet.protocol == PROTO_AH && !packet.fragment {
        skip_ah(&mut packet)?;
    }
    Ok(packet)
}

/// VRRPv2 with `auth_type AH` is carried inside an Authentication Header (RFC 2402);
/// its length is in 4-octet units, minus 2.
fn skip_ah(packet: &mut IpPacket<'_>) -> Result<(), Malformed> {
    let mut c = Cursor::new(packet.payload, "truncated IP Authentication Header");
    packet.protocol = c.u8()?;
    let len = (usize::from(c.u8()?) + 2) * 4;
    c.skip(len.saturating_sub(2))?;
    packet.payload = c.rest();
    Ok(())
}

/// Sum of big-endian 16-bit words, the core of the Internet checksum (RFC 1071), unfolded:
/// only its value folded to 16 bits ([`checksum_ok`]) is defined. An odd last byte is
/// padded with zero, so only the last part of a checksummed message may have an odd
/// length.
///
/// Two words are added at a time as one 32-bit number, which leaves the folded sum as
/// it is (RFC 1071 §2(C): 2^16 ≡ 1 in one's complement) in half the steps: it runs
/// over every advert.
pub fn sum_words(data: &[u8]) -> u64 {
    let mut pairs = data.chunks_exact(4);
    let mut sum: u64 = pairs
        .by_ref()
        .map(|q| match q {
            [a, b, c, d] => u64::from(u32::from_be_bytes([*a, *b, *c, *d])),
            _ => 0,
        })
        .sum();
    match pairs.remainder() {
        [hi, lo, last] => {
            sum += u64::from(u16::from_be_bytes([*hi, *lo])) + (u64::from(*last) << 8)
        }
        [hi, lo] => sum += u64::from(u16::from_be_bytes([*hi, *lo])),
        [last] => sum += u64::from(*last) << 8,
        _ => {}
    }
    sum
}

/// True when words summed with [`sum_words`], checksum field included, verify: the
/// one's-complement sum folds to 0xffff.
pub fn checksum_ok(mut sum: u64) -> bool {
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    sum == 0xffff
}

/// The pseudo-header sum of RFC 768 (IPv4) or RFC 8200 §8.1 (IPv6) for an upper-layer
/// message of `len` bytes.
pub fn pseudo_header_sum(src: IpAddr, dst: IpAddr, protocol: u8, len: usize) -> u64 {
    let addresses = match (src, dst) {
        (IpAddr::V4(s), IpAddr::V4(d)) => sum_words(&s.octets()) + sum_words(&d.octets()),
        (IpAddr::V6(s), IpAddr::V6(d)) => sum_words(&s.octets()) + sum_words(&d.octets()),
        // A packet has both addresses from one header, so mixed families cannot occur.
        _ => 0,
    };
    addresses + u64::from(protocol) + (len as u64 & 0xffff) + (len as u64 >> 16)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ipv4_header(total_len: u16, protocol: u8, flags_offset: u16) -> Vec<u8> {
        let mut h = vec![0x45, 0xc0];
        h.extend_from_slice(&total_len.to_be_bytes());
        h.extend_from_slice(&[0, 9]);
        h.extend_from_slice(&flags_offset.to_be_bytes());
        h.extend_from_slice(&[255, protocol, 0, 0, 10, 10, 0, 1, 224, 0, 0, 18]);
        h
    }

    #[test]
    fn ipv4_cuts_ethernet_padding_and_flags_snaplen() {
        let mut p = ipv4_header(22, 112, 0);
        p.extend_from_slice(&[1, 2, 0, 0, 0, 0]);
        let ip = ipv4(&p).unwrap();
        assert_eq!(
            (ip.payload, ip.truncated, ip.id, ip.fragment),
            (&[1u8, 2][..], false, Some(9), false)
        );
        let short = ipv4_header(40, 112, 0);
        assert!(ipv4(&short).unwrap().truncated);
        assert!(ipv4(&ipv4_header(40, 112, 0x2000)).unwrap().fragment);
        assert!(ipv4(&ipv4_header(10, 112, 0)).is_err());
    }

    #[test]
    fn ipv6_walks_extension_headers() {
        let mut p = vec![0x60, 0, 0, 0, 0, 12, 0, 255];
        p.extend_from_slice(&[0; 32]);
        // Hop-by-hop (8 bytes) then VRRP payload of 4 bytes.
        p.extend_from_slice(&[112, 0, 0, 0, 0, 0, 0, 0, 0xaa, 0xbb, 0xcc, 0xdd]);
        let ip = ipv6(&p).unwrap();
        assert_eq!(
            (ip.protocol, ip.payload),
            (112, &[0xaa, 0xbb, 0xcc, 0xdd][..])
        );
    }

    #[test]
    fn checksum_of_rfc1071_example() {
        let data = [0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7];
        let sum = sum_words(&data);
        let mut folded = sum;
        while folded > 0xffff {
            folded = (folded & 0xffff) + (folded >> 16);
        }
        assert_eq!(folded, 0xddf2);
        assert!(checksum_ok(sum + u64::from(!0xddf2u16)));
    }
}

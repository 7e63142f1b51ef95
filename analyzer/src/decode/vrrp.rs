//! IP protocol 112: VRRPv2 (RFC 3768), VRRPv3 (RFC 5798) and CARP (OpenBSD/FreeBSD).
//!
//! CARP reuses VRRP's protocol number and even its version/type byte (version 2, type 1),
//! so the version cannot tell them apart. The length and the fourth byte can: a CARP
//! advertisement is always 36 bytes, with `authlen` = 7 where VRRP keeps its address
//! count. A VRRPv2 advertisement of that shape would carry 7 addresses and no
//! authentication data (8 + 7·4 = 36), but VRRPv2 senders always include the 8 bytes of
//! authentication data (RFC 3768 §5.1; keepalived does), which would make it 44. So 36
//! bytes with 7 in byte 3 is CARP; the checksum, over the message alone in both, then
//! confirms it.

use super::cursor::Cursor;
use super::ip::{checksum_ok, pseudo_header_sum, sum_words, IpPacket, PROTO_VRRP};
use super::{Malformed, Protocol};

/// What a protocol-112 advertisement says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Advert {
    pub protocol: Protocol,
    pub version: u8,
    /// VRID, or CARP's VHID.
    pub vrid: u8,
    /// VRRP priority (0 = the master resigns); for CARP its advskew (lower wins).
    pub priority: u8,
    /// The advertisement interval in nanoseconds.
    pub interval_ns: u64,
    pub checksum: u16,
}

const TYPE_ADVERTISEMENT: u8 = 1;
const CARP_LEN: usize = 36;
const CARP_AUTHLEN: u8 = 7;

// Inlined into the packet loop, so that what it returns is built in place rather than
// copied out of its frame (a tenth of decoding was such copies).
#[inline]
pub fn decode(ip: &IpPacket<'_>) -> Result<Advert, Malformed> {
    if ip.truncated {
        return Err(Malformed("VRRP/CARP packet cut short by the snap length"));
    }
    let message = ip.payload;
    let mut c = Cursor::new(message, "truncated VRRP header");
    let version_type = c.u8()?;
    let (version, kind) = (version_type >> 4, version_type & 0x0f);
    if kind != TYPE_ADVERTISEMENT {
        return Err(Malformed("VRRP/CARP packet of an unknown type"));
    }
    let vrid = c.u8()?;
    let priority = c.u8()?;
    let count = c.u8()?;
    let (interval_ns, checksum) = match version {
        2 if message.len() == CARP_LEN && count == CARP_AUTHLEN => {
            return carp(c, vrid, priority, message)
        }
        2 if ip.src.is_ipv6() => return Err(Malformed("VRRPv2 over IPv6 (VRRPv2 is IPv4 only)")),
        2 => {
            let auth_type = c.u8()?;
            let seconds = c.u8()?;
            let checksum = c.be_u16()?;
            c.skip(usize::from(count) * 4)?;
            // RFC 3768 kept the 8 authentication bytes for type 1 (simple password) and
            // 2; with type 0 they are zero and some senders leave them out.
            if auth_type != 0 {
                c.skip(8)
                    .map_err(|_| Malformed("truncated VRRPv2 authentication data"))?;
            }
            if seconds == 0 {
                return Err(Malformed("VRRPv2 advertisement interval of 0 s"));
            }
            if !checksum_ok(sum_words(message)) {
                return Err(Malformed("bad VRRPv2 checksum"));
            }
            (u64::from(seconds) * 1_000_000_000, checksum)
        }
        3 => {
            let centiseconds = c.be_u16()? & 0x0fff;
            let checksum = c.be_u16()?;
            let address_len = if ip.src.is_ipv6() { 16 } else { 4 };
            c.skip(usize::from(count) * address_len)?;
            if centiseconds == 0 {
                return Err(Malformed("VRRPv3 advertisement interval of 0 cs"));
            }
            let message_sum = sum_words(message);
            let pseudo = pseudo_header_sum(ip.src, ip.dst, PROTO_VRRP, message.len());
            // RFC 5798 includes the pseudo-header, but some VRRPv3-over-IPv4 senders
            // (older keepalived, and keepalived's `v3_checksum_as_v2`) leave it out; a
            // receiver configured to match accepts those, so they are real adverts.
            let ok =
                checksum_ok(message_sum + pseudo) || (ip.src.is_ipv4() && checksum_ok(message_sum));
            if !ok {
                return Err(Malformed("bad VRRPv3 checksum"));
            }
            (u64::from(centiseconds) * 10_000_000, checksum)
        }
        _ => return Err(Malformed("VRRP/CARP packet of an unknown version")),
    };
    Ok(Advert {
        protocol: Protocol::Vrrp,
        version,
        vrid,
        priority,
        interval_ns,
        checksum,
    })
}

/// The rest of a CARP header after version/type, VHID, advskew and authlen:
/// demote, advbase (seconds), checksum, 8 bytes of counter, 20 of SHA-1 HMAC.
fn carp(mut c: Cursor<'_>, vhid: u8, advskew: u8, message: &[u8]) -> Result<Advert, Malformed> {
    c.skip(1)?;
    let advbase = c.u8()?;
    let checksum = c.be_u16()?;
    c.skip(8 + 20)?;
    if !checksum_ok(sum_words(message)) {
        return Err(Malformed("bad CARP checksum"));
    }
    // CARP advertises every advbase + advskew/256 seconds.
    let interval_ns = u64::from(advbase) * 1_000_000_000 + u64::from(advskew) * 1_000_000_000 / 256;
    if interval_ns == 0 {
        return Err(Malformed("CARP advertisement interval of 0"));
    }
    Ok(Advert {
        protocol: Protocol::Carp,
        version: 2,
        vrid: vhid,
        priority: advskew,
        interval_ns,
        checksum,
    })
}

#[cfg(test)]
pub(crate) mod tests {
    use std::net::IpAddr;

    use super::*;

    /// Fills in the checksum of a protocol-112 message (at bytes 6..8) the way its
    /// sender would; the pseudo-header is added when `pseudo` is given.
    pub(crate) fn with_checksum(mut message: Vec<u8>, pseudo: Option<(IpAddr, IpAddr)>) -> Vec<u8> {
        let mut sum = sum_words(&message);
        if let Some((src, dst)) = pseudo {
            sum += pseudo_header_sum(src, dst, PROTO_VRRP, message.len());
        }
        while sum > 0xffff {
            sum = (sum & 0xffff) + (sum >> 16);
        }
        let checksum = !(sum as u16);
        if let Some(field) = message.get_mut(6..8) {
            field.copy_from_slice(&checksum.to_be_bytes());
        }
        message
    }

    fn packet<'a>(payload: &'a [u8], src: &str, dst: &str) -> IpPacket<'a> {
        IpPacket {
            src: src.parse().unwrap(),
            dst: dst.parse().unwrap(),
            protocol: PROTO_VRRP,
            ttl: 255,
            id: None,
            header_checksum: None,
            fragment: false,
            payload,
            truncated: false,
        }
    }

    #[test]
    fn vrrp2_with_password_auth() {
        let mut m = vec![0x21, 51, 150, 1, 1, 1, 0, 0, 10, 10, 0, 100];
        m.extend_from_slice(b"secret\0\0");
        let m = with_checksum(m, None);
        let a = decode(&packet(&m, "10.10.0.1", "224.0.0.18")).unwrap();
        assert_eq!(
            (a.protocol, a.version, a.vrid, a.priority, a.interval_ns),
            (Protocol::Vrrp, 2, 51, 150, 1_000_000_000)
        );
        // Password auth without its 8 bytes is cut short.
        let short = with_checksum(m[..12].to_vec(), None);
        assert!(decode(&packet(&short, "10.10.0.1", "224.0.0.18")).is_err());
    }

    #[test]
    fn vrrp3_interval_is_12_bit_centiseconds_and_checksum_has_pseudo_header() {
        let (src, dst) = ("fe80::1", "ff02::12");
        let mut m = vec![0x31, 7, 100, 1, 0xf0 | 0x0f, 0xff, 0, 0];
        m.extend_from_slice(&[0; 16]);
        let with = with_checksum(
            m.clone(),
            Some((src.parse().unwrap(), dst.parse().unwrap())),
        );
        let a = decode(&packet(&with, src, dst)).unwrap();
        assert_eq!(
            (a.version, a.vrid, a.interval_ns),
            (3, 7, 4095 * 10_000_000)
        );
        // Over IPv6 the pseudo-header is mandatory.
        let without = with_checksum(m, None);
        assert_eq!(
            decode(&packet(&without, src, dst)),
            Err(Malformed("bad VRRPv3 checksum"))
        );
    }

    #[test]
    fn vrrp3_over_ipv4_accepts_either_checksum() {
        let (src, dst) = ("10.0.0.1", "224.0.0.18");
        let m = vec![0x31, 7, 100, 1, 0, 100, 0, 0, 10, 0, 0, 9];
        for pseudo in [None, Some((src.parse().unwrap(), dst.parse().unwrap()))] {
            let m = with_checksum(m.clone(), pseudo);
            assert_eq!(
                decode(&packet(&m, src, dst)).unwrap().interval_ns,
                1_000_000_000
            );
        }
    }

    #[test]
    fn carp_is_told_apart_by_length_and_authlen() {
        let mut m = vec![0x21, 3, 100, 7, 0, 1, 0, 0];
        m.extend_from_slice(&[0; 28]);
        let m = with_checksum(m, None);
        let a = decode(&packet(&m, "10.0.0.1", "224.0.0.18")).unwrap();
        assert_eq!((a.protocol, a.vrid, a.priority), (Protocol::Carp, 3, 100));
        assert_eq!(a.interval_ns, 1_000_000_000 + 100 * 1_000_000_000 / 256);
        // Over IPv6 too (VRRPv2 never is).
        assert_eq!(
            decode(&packet(&m, "fe80::1", "ff02::12")).unwrap().protocol,
            Protocol::Carp
        );
    }

    #[test]
    fn bad_checksum_and_unknown_type_are_malformed() {
        let m = vec![0x21, 51, 150, 1, 0, 1, 0, 0, 10, 10, 0, 100];
        assert_eq!(
            decode(&packet(&m, "10.0.0.1", "224.0.0.18")),
            Err(Malformed("bad VRRPv2 checksum"))
        );
        let m = with_checksum(vec![0x22, 51, 150, 0, 0, 1, 0, 0], None);
        assert!(decode(&packet(&m, "10.0.0.1", "224.0.0.18")).is_err());
    }
}

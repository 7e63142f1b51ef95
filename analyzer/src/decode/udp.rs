//! UDP heartbeats: any configured destination port is a stream; BFD control packets
//! (RFC 5880, port 3784) also say their interval and detection multiplier.

use super::cursor::Cursor;
use super::ip::IpPacket;
use super::{Malformed, Protocol};

/// The well-known heartbeat ports, always watched.
pub const PORT_COROSYNC: u16 = 5405;
pub const PORT_BFD: u16 = 3784;

/// What a UDP heartbeat says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UdpBeat {
    pub protocol: Protocol,
    pub port: u16,
    /// BFD only: the version field (1).
    pub version: Option<u8>,
    /// BFD only: Desired Min TX Interval.
    pub interval_ns: Option<u64>,
    /// BFD only: Detect Mult, the number of missed packets that take the session down.
    pub detect_mult: Option<u8>,
    pub checksum: u16,
}

/// Decodes a UDP datagram whose destination port is in `ports`; `None` for any other.
pub fn decode(ip: &IpPacket<'_>, ports: &[u16]) -> Result<Option<UdpBeat>, Malformed> {
    let mut c = Cursor::new(ip.payload, "truncated UDP header");
    c.skip(2)?;
    let port = c.be_u16()?;
    if !ports.contains(&port) {
        return Ok(None);
    }
    c.skip(2)?;
    let checksum = c.be_u16()?;
    let beat = UdpBeat {
        protocol: Protocol::Udp,
        port,
        version: None,
        interval_ns: None,
        detect_mult: None,
        checksum,
    };
    Ok(Some(match port {
        PORT_BFD => bfd(c.rest(), beat)?,
        PORT_COROSYNC => UdpBeat {
            protocol: Protocol::Corosync,
            ..beat
        },
        _ => beat,
    }))
}

/// A BFD control packet: version/diag, state/flags, detect mult, length, my and your
/// discriminators, then the desired min TX interval in microseconds.
fn bfd(packet: &[u8], beat: UdpBeat) -> Result<UdpBeat, Malformed> {
    let mut c = Cursor::new(packet, "truncated BFD control packet");
    let version = c.u8()? >> 5;
    if version != 1 {
        return Err(Malformed("BFD control packet of an unknown version"));
    }
    c.skip(1)?;
    let detect_mult = c.u8()?;
    c.skip(1 + 4 + 4)?;
    let desired_min_tx_us = c.be_u32()?;
    Ok(UdpBeat {
        protocol: Protocol::Bfd,
        version: Some(version),
        // Zero is legal (a passive session) and promises no schedule.
        interval_ns: (desired_min_tx_us > 0).then(|| u64::from(desired_min_tx_us) * 1000),
        detect_mult: (detect_mult > 0).then_some(detect_mult),
        ..beat
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn packet(payload: &[u8]) -> IpPacket<'_> {
        IpPacket {
            src: "10.0.0.1".parse().unwrap(),
            dst: "10.0.0.2".parse().unwrap(),
            protocol: super::super::ip::PROTO_UDP,
            ttl: 255,
            id: Some(1),
            header_checksum: Some(0),
            fragment: false,
            payload,
            truncated: false,
        }
    }

    fn udp(dport: u16, body: &[u8]) -> Vec<u8> {
        let mut p = vec![0xc0, 0x00];
        p.extend_from_slice(&dport.to_be_bytes());
        p.extend_from_slice(&((8 + body.len()) as u16).to_be_bytes());
        p.extend_from_slice(&[0x12, 0x34]);
        p.extend_from_slice(body);
        p
    }

    #[test]
    fn bfd_interval_and_detect_mult() {
        let mut body = vec![0x20, 0xc0, 3, 24, 0, 0, 0, 1, 0, 0, 0, 2];
        body.extend_from_slice(&300_000u32.to_be_bytes());
        body.extend_from_slice(&[0; 8]);
        let p = udp(PORT_BFD, &body);
        let beat = decode(&packet(&p), &[PORT_BFD]).unwrap().unwrap();
        assert_eq!(beat.protocol, Protocol::Bfd);
        assert_eq!(
            (beat.interval_ns, beat.detect_mult, beat.checksum),
            (Some(300_000_000), Some(3), 0x1234)
        );
        let bad = udp(PORT_BFD, &[0x40, 0, 3]);
        assert!(decode(&packet(&bad), &[PORT_BFD]).is_err());
    }

    #[test]
    fn only_configured_ports() {
        let p = udp(9999, b"x");
        assert_eq!(decode(&packet(&p), &[PORT_COROSYNC]), Ok(None));
        let beat = decode(&packet(&p), &[9999]).unwrap().unwrap();
        assert_eq!(
            (beat.protocol, beat.port, beat.interval_ns),
            (Protocol::Udp, 9999, None)
        );
        let p = udp(PORT_COROSYNC, b"");
        assert_eq!(
            decode(&packet(&p), &[PORT_COROSYNC])
                .unwrap()
                .unwrap()
                .protocol,
            Protocol::Corosync
        );
    }
}

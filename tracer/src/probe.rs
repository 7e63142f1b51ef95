//! Clock probes: a host recorder's own packets into a guest's tap (`--clock-probes`),
//! so that guest and host capture packets crossing in both directions. A VRRP master's
//! adverts only go out of it: from them alone the analyzer can bound the guest's clock
//! offset on one side only (`docs/analysis-json.md`, `cross_machine`).
//!
//! One probe a second: a broadcast UDP datagram from 0.0.0.0 to 255.255.255.255, port
//! [`CLOCK_PROBE_PORT`] both ways, TTL 1, its IPv4 identification the low 16 bits of a
//! sequence number also in its payload (`vmlat clock probe`, the sequence as u64 big
//! endian). It reaches the guest's stack, which drops it (no socket on that port, no
//! reply to a broadcast). It is sent on a pcap handle of its own, so that the capture
//! handle sees it go out, stamped by the kernel like every other packet.

use std::time::{Duration, Instant};

use etherparse::{IpHeaders, Ipv4Header, PacketBuilder};
use pcap::{Active, Capture};
use vmlat_bundle::CLOCK_PROBE_PORT;

/// How often a probe goes out.
const EVERY: Duration = Duration::from_secs(1);
/// What a probe's payload starts with.
pub const PROBE_MAGIC: &[u8] = b"vmlat clock probe";

/// Sends the probes of one tap.
pub struct Prober {
    handle: Capture<Active>,
    next: Instant,
    seq: u64,
}

impl Prober {
    /// Opens a sending handle on `interface` (in the calling thread's namespace).
    pub fn open(interface: &str) -> Result<Self, pcap::Error> {
        let handle = Capture::from_device(interface)?.open()?;
        Ok(Prober {
            handle,
            next: Instant::now(),
            seq: 0,
        })
    }

    /// Sends the next probe when one is due; the number sent so far.
    pub fn tick(&mut self) -> Result<u64, pcap::Error> {
        let now = Instant::now();
        if now >= self.next {
            self.handle.sendpacket(frame(self.seq))?;
            self.seq += 1;
            self.next = now + EVERY;
        }
        Ok(self.seq)
    }
}

/// Probe number `seq`, as an Ethernet frame.
pub fn frame(seq: u64) -> Vec<u8> {
    let mut ip = Ipv4Header::new(0, 1, etherparse::ip_number::UDP, [0; 4], [255; 4])
        .expect("an empty payload length is valid");
    ip.identification = seq as u16;
    let mut payload = PROBE_MAGIC.to_vec();
    payload.extend_from_slice(&seq.to_be_bytes());
    let builder = PacketBuilder::ethernet2([0x02, 0, 0, 0x76, 0x6d, 0x6c], [0xff; 6])
        .ip(IpHeaders::Ipv4(ip, Default::default()))
        .udp(CLOCK_PROBE_PORT, CLOCK_PROBE_PORT);
    let mut out = Vec::with_capacity(builder.size(payload.len()));
    builder
        .write(&mut out, &payload)
        .expect("writing to a Vec cannot fail");
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use etherparse::{NetSlice, SlicedPacket, TransportSlice};

    #[test]
    fn a_probe_is_a_valid_broadcast_with_its_sequence_in_id_and_payload() {
        let bytes = frame(0x1_0002);
        let packet = SlicedPacket::from_ethernet(&bytes).unwrap();
        let Some(NetSlice::Ipv4(ip)) = &packet.net else {
            panic!("not IPv4")
        };
        let header = ip.header();
        assert_eq!(header.identification(), 2);
        assert_eq!(header.destination(), [255; 4]);
        assert_eq!(header.ttl(), 1);
        let recomputed = header.to_header().calc_header_checksum();
        assert_eq!(header.header_checksum(), recomputed);
        let Some(TransportSlice::Udp(udp)) = &packet.transport else {
            panic!("not UDP")
        };
        assert_eq!(udp.destination_port(), CLOCK_PROBE_PORT);
        assert_ne!(udp.checksum(), 0);
        assert!(udp.payload().starts_with(PROBE_MAGIC));
        assert_eq!(
            udp.payload()[PROBE_MAGIC.len()..],
            0x1_0002u64.to_be_bytes()
        );
        assert_ne!(frame(1), frame(2));
    }
}

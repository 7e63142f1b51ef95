//! The heartbeat decoders (VRRP v2/v3, CARP, UDP heartbeats, BFD) under every link
//! layer the analyzer reads (Ethernet with VLAN stacks, SLL, SLL2, raw IP, NULL, LOOP):
//! the first byte picks the link layer, the rest is the frame.
#![no_main]

use libfuzzer_sys::fuzz_target;
use vmlat_analyzer::{decode, LinkType};

const LINKS: [LinkType; 6] = [
    LinkType::Ethernet,
    LinkType::LinuxSll,
    LinkType::LinuxSll2,
    LinkType::Raw,
    LinkType::Null,
    LinkType::Loop,
];

fuzz_target!(|data: &[u8]| {
    let Some((&pick, frame)) = data.split_first() else {
        return;
    };
    let link = LINKS[usize::from(pick) % LINKS.len()];
    let _ = decode::decode(link, 0, frame, &[5405, 3784, 694]);
});

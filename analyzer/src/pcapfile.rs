//! Streaming reader of pcap and pcapng files, built on `pcap-file` 2.
//!
//! Memory stays constant: a classic pcap is read in blocks of 1 MiB, a pcapng through
//! `pcap-file`'s one fixed buffer, and every packet is handed to a callback and
//! forgotten.
//!
//! - pcap: microsecond and nanosecond files, either byte order.
//! - pcapng: any number of sections and interfaces, each interface with its own link
//!   type, `if_tsresol` (powers of 10 and of 2) and `if_tsoffset`. Enhanced and
//!   obsolete packet blocks are read; simple packet blocks carry no timestamp and are
//!   counted as malformed.
//! - A record cut short at the end of the file (a capture killed while writing) is a torn
//!   tail: reading stops there and says so. A corrupt block header stops reading the
//!   same way, because nothing after it can be framed.
//!
//! Capture points are named from `base` (the file's name, or the bundle's capture name):
//! a pcap, or a pcapng with a single interface, is `base`; a pcapng whose section
//! describes several interfaces before its first packet names each `base:IFNAME` (its
//! `if_name` option) or `base:idbN` (its index). SLL2 packets then add `:ifINDEX`
//! (done by the caller, which sees the decoded interface index).

use std::fs::File;
use std::io::{ErrorKind, Read, Seek, SeekFrom};
use std::path::Path;

use pcap_file::pcap::PcapParser;
use pcap_file::pcapng::blocks::interface_description::{
    InterfaceDescriptionBlock, InterfaceDescriptionOption,
};
use pcap_file::pcapng::PcapNgReader;
use pcap_file::{Endianness, PcapError, TsResolution};

use crate::decode::cursor::Cursor;
use crate::decode::{LinkType, Malformed};
use crate::AnalyzeError;

/// The container format of a capture file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Pcap,
    Pcapng,
    /// A zero-length file: a capture that never wrote its header.
    Empty,
}

impl Format {
    pub fn name(self) -> &'static str {
        match self {
            Format::Pcap => "pcap",
            Format::Pcapng => "pcapng",
            Format::Empty => "empty",
        }
    }
}

/// One interface of a capture file.
#[derive(Debug, Clone)]
pub struct Interface {
    /// Index in the file (always 0 for pcap), unique within the current section.
    pub index: usize,
    pub link_type: LinkType,
    /// Capture point name.
    pub name: String,
}

/// What the reader hands over, in file order.
#[derive(Debug)]
pub enum Record<'a> {
    Packet {
        interface: &'a Interface,
        t_ns: i64,
        data: &'a [u8],
    },
    /// A record that could not be read as a packet; reading goes on.
    Malformed(Malformed),
}

/// How reading a file ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReadEnd {
    pub format: Format,
    /// Why reading stopped before the end of the file, if it did.
    pub stopped: Option<String>,
}

/// Reads `path`, calling `on_record` for every record.
pub fn read_capture(
    path: &Path,
    base: &str,
    mut on_record: impl FnMut(Record<'_>),
) -> Result<ReadEnd, AnalyzeError> {
    let mut file = File::open(path).map_err(|e| AnalyzeError::io(path, e))?;
    let mut magic = [0u8; 4];
    let got = read_up_to(&mut file, &mut magic).map_err(|e| AnalyzeError::io(path, e))?;
    if got == 0 {
        // Only a bundle's capture gets here (input::resolve refuses an empty file
        // given alone): its recorder stopped before it flushed the header.
        return Ok(ReadEnd {
            format: Format::Empty,
            stopped: Some("the file is empty: its recorder stopped before the first flush".into()),
        });
    }
    file.seek(SeekFrom::Start(0))
        .map_err(|e| AnalyzeError::io(path, e))?;
    match magic {
        [0xa1, 0xb2, 0xc3, 0xd4]
        | [0xd4, 0xc3, 0xb2, 0xa1]
        | [0xa1, 0xb2, 0x3c, 0x4d]
        | [0x4d, 0x3c, 0xb2, 0xa1] => read_pcap(path, base, file, &mut on_record),
        [0x0a, 0x0d, 0x0d, 0x0a] => read_pcapng(path, base, file, &mut on_record),
        _ => Err(AnalyzeError::NotACapture {
            path: path.to_path_buf(),
            reason: format!("it starts with {magic:02x?}"),
        }),
    }
}

fn read_up_to(file: &mut File, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut got = 0;
    while got < buf.len() {
        match file.read(buf.get_mut(got..).unwrap_or_default()) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(got)
}

/// Maps a `pcap-file` error met while reading records: a short read is a torn tail,
/// an I/O error is fatal, anything else is corruption that stops the reading.
fn stop_reason(path: &Path, error: PcapError) -> Result<String, AnalyzeError> {
    match error {
        PcapError::IoError(e) if e.kind() == ErrorKind::UnexpectedEof => {
            Ok("torn tail: the last record is cut short".to_string())
        }
        PcapError::IoError(e) => Err(AnalyzeError::io(path, e)),
        other => Ok(format!("corrupt record: {other}")),
    }
}

/// Maps a `pcap-file` error met while reading the file header.
fn header_error(path: &Path, error: PcapError) -> AnalyzeError {
    match error {
        PcapError::IoError(e) if e.kind() == ErrorKind::UnexpectedEof => {
            AnalyzeError::NotACapture {
                path: path.to_path_buf(),
                reason: "its header is cut short".to_string(),
            }
        }
        PcapError::IoError(e) => AnalyzeError::io(path, e),
        other => AnalyzeError::NotACapture {
            path: path.to_path_buf(),
            reason: other.to_string(),
        },
    }
}

fn link_type(path: &Path, dlt: u32) -> Result<LinkType, AnalyzeError> {
    LinkType::from_dlt(dlt).ok_or_else(|| AnalyzeError::UnsupportedLinkType {
        path: path.to_path_buf(),
        linktype: dlt,
    })
}

/// libpcap's largest snapshot length (`MAXIMUM_SNAPLEN`); a classic pcap header that
/// claims more is corrupt.
const MAX_SNAPLEN: u32 = 262_144;

/// How much of a classic pcap file is read at a time. A record must fit in it whole;
/// libpcap writes records of at most [`MAX_SNAPLEN`] bytes, so a larger one is corrupt.
const PCAP_BLOCK: usize = 1 << 20;

/// Reads a classic pcap file one large block at a time and parses its records in place
/// with `pcap-file`'s slice parser: each packet is handed over as a borrowed slice of
/// the block, never copied. (`pcap-file`'s `PcapReader` refills and rechecks its buffer
/// for every record, which cost four times the parsing itself: BENCHMARKS.md.)
fn read_pcap(
    path: &Path,
    base: &str,
    mut file: File,
    on_record: &mut impl FnMut(Record<'_>),
) -> Result<ReadEnd, AnalyzeError> {
    let mut block = vec![0u8; PCAP_BLOCK];
    let mut len = read_up_to(&mut file, &mut block).map_err(|e| AnalyzeError::io(path, e))?;
    let (parser, mut pos) = match PcapParser::new(block.get(..len).unwrap_or_default()) {
        Ok((rest, parser)) => (parser, len - rest.len()),
        Err(PcapError::IncompleteBuffer) => {
            return Err(AnalyzeError::NotACapture {
                path: path.to_path_buf(),
                reason: "its header is cut short".to_string(),
            })
        }
        Err(e) => return Err(header_error(path, e)),
    };
    let header = parser.header();
    if header.snaplen > MAX_SNAPLEN {
        return Err(AnalyzeError::NotACapture {
            path: path.to_path_buf(),
            reason: format!(
                "its header claims a snapshot length of {} bytes, where libpcap writes at most {MAX_SNAPLEN}: a corrupt header",
                header.snaplen
            ),
        });
    }
    let interface = Interface {
        index: 0,
        link_type: link_type(path, u32::from(header.datalink))?,
        name: base.to_string(),
    };
    let frac_ns: i64 = if header.ts_resolution == TsResolution::NanoSecond {
        1
    } else {
        1_000
    };
    let stopped = loop {
        // Raw packets: `pcap-file`'s checked ones refuse a record whose lengths disagree
        // with the snap length, which tcpdump itself writes and reads.
        match parser.next_raw_packet(block.get(pos..len).unwrap_or_default()) {
            Ok((rest, packet)) => {
                pos = len - rest.len();
                let frac = i64::from(packet.ts_frac) * frac_ns;
                if frac >= 1_000_000_000 {
                    on_record(Record::Malformed(Malformed(
                        "pcap timestamp fraction of 1 s or more",
                    )));
                    continue;
                }
                let t_ns = i64::from(packet.ts_sec) * 1_000_000_000 + frac;
                on_record(Record::Packet {
                    interface: &interface,
                    t_ns,
                    data: &packet.data,
                });
            }
            Err(PcapError::IncompleteBuffer) => {
                // The block ends inside a record: move its start to the front, read on.
                if pos == 0 && len == block.len() {
                    break Some(format!(
                        "corrupt record: longer than {PCAP_BLOCK} bytes, where libpcap writes at most {MAX_SNAPLEN}"
                    ));
                }
                block.copy_within(pos..len, 0);
                len -= pos;
                pos = 0;
                let read = read_up_to(&mut file, block.get_mut(len..).unwrap_or_default())
                    .map_err(|e| AnalyzeError::io(path, e))?;
                if read == 0 {
                    break (len > 0).then(|| "torn tail: the last record is cut short".to_string());
                }
                len += read;
            }
            Err(e) => break Some(format!("corrupt record: {e}")),
        }
    };
    Ok(ReadEnd {
        format: Format::Pcap,
        stopped,
    })
}

/// A pcapng interface as this reader needs it.
struct NgInterface {
    interface: Interface,
    /// `if_tsresol`: bit 7 clear = 10^-n s units, set = 2^-n s units.
    tsresol: u8,
    tsoffset_s: i64,
    if_name: Option<String>,
    /// Whether `interface.name` has been settled (at the interface's first packet).
    named: bool,
}

const BLOCK_SECTION_HEADER: u32 = 0x0a0d_0d0a;
const BLOCK_INTERFACE_DESCRIPTION: u32 = 1;
const BLOCK_PACKET: u32 = 2;
const BLOCK_SIMPLE_PACKET: u32 = 3;
const BLOCK_ENHANCED_PACKET: u32 = 6;

fn read_pcapng(
    path: &Path,
    base: &str,
    file: File,
    on_record: &mut impl FnMut(Record<'_>),
) -> Result<ReadEnd, AnalyzeError> {
    let mut reader = PcapNgReader::new(file).map_err(|e| header_error(path, e))?;
    let mut interfaces: Vec<NgInterface> = Vec::new();
    // Raw blocks: a packet block that fails `pcap-file`'s checks would otherwise stop
    // the reader for good; parsed here, it is counted and skipped.
    loop {
        // Read before the block: a block is in the byte order of the section it is in.
        let big_endian = reader.section().endianness == Endianness::Big;
        let Some(next) = reader.next_raw_block() else {
            break;
        };
        let block = match next {
            Ok(block) => block,
            Err(e) => {
                return Ok(ReadEnd {
                    format: Format::Pcapng,
                    stopped: Some(stop_reason(path, e)?),
                });
            }
        };
        match block.type_ {
            BLOCK_SECTION_HEADER => interfaces.clear(),
            BLOCK_INTERFACE_DESCRIPTION => {
                // The parser has just read it into its own list.
                if let Some(idb) = reader.interfaces().last() {
                    interfaces.push(ng_interface(path, interfaces.len(), idb)?);
                }
            }
            BLOCK_ENHANCED_PACKET | BLOCK_PACKET => {
                match packet_block(
                    &block.body,
                    block.type_ == BLOCK_ENHANCED_PACKET,
                    big_endian,
                ) {
                    Ok((index, ticks, data)) => {
                        let count = interfaces.len();
                        let Some(ng) = interfaces.get_mut(index) else {
                            on_record(Record::Malformed(Malformed(
                                "pcapng packet of an undescribed interface",
                            )));
                            continue;
                        };
                        if !ng.named {
                            ng.named = true;
                            if count > 1 {
                                let suffix =
                                    ng.if_name.clone().unwrap_or_else(|| format!("idb{index}"));
                                ng.interface.name = format!("{base}:{suffix}");
                            }
                        }
                        match ng_time(ticks, ng.tsresol, ng.tsoffset_s) {
                            Some(t_ns) => on_record(Record::Packet {
                                interface: &ng.interface,
                                t_ns,
                                data,
                            }),
                            None => on_record(Record::Malformed(Malformed(
                                "pcapng timestamp out of range",
                            ))),
                        }
                    }
                    Err(m) => on_record(Record::Malformed(m)),
                }
            }
            BLOCK_SIMPLE_PACKET => {
                on_record(Record::Malformed(Malformed(
                    "pcapng simple packet block (no timestamp)",
                )));
            }
            _ => {}
        }
    }
    Ok(ReadEnd {
        format: Format::Pcapng,
        stopped: None,
    })
}

fn ng_interface(
    path: &Path,
    index: usize,
    idb: &InterfaceDescriptionBlock<'_>,
) -> Result<NgInterface, AnalyzeError> {
    let mut ng = NgInterface {
        interface: Interface {
            index,
            link_type: link_type(path, u32::from(idb.linktype))?,
            name: String::new(),
        },
        tsresol: 6,
        tsoffset_s: 0,
        if_name: None,
        named: false,
    };
    for option in &idb.options {
        match option {
            InterfaceDescriptionOption::IfTsResol(r) => ng.tsresol = *r,
            // The pcapng spec makes it a signed 64-bit count of seconds.
            InterfaceDescriptionOption::IfTsOffset(o) => ng.tsoffset_s = *o as i64,
            InterfaceDescriptionOption::IfName(n) => ng.if_name = Some(n.to_string()),
            _ => {}
        }
    }
    Ok(ng)
}

/// An enhanced (type 6) or obsolete (type 2) packet block body: the interface index,
/// the raw timestamp and the captured bytes.
fn packet_block(body: &[u8], enhanced: bool, big: bool) -> Result<(usize, u64, &[u8]), Malformed> {
    let mut c = Cursor::new(body, "truncated pcapng packet block");
    let index = if enhanced {
        c.u32_in(big)? as usize
    } else {
        let index = c.u16_in(big)?;
        c.skip(2)?;
        usize::from(index)
    };
    let high = u64::from(c.u32_in(big)?);
    let low = u64::from(c.u32_in(big)?);
    let captured = c.u32_in(big)? as usize;
    c.skip(4)?;
    let data = c.bytes(captured)?;
    Ok((index, high << 32 | low, data))
}

/// Converts a pcapng timestamp in the interface's units to ns since the epoch.
fn ng_time(ticks: u64, tsresol: u8, tsoffset_s: i64) -> Option<i64> {
    let ticks = u128::from(ticks);
    let exponent = u32::from(tsresol & 0x7f);
    let ns = if tsresol & 0x80 == 0 {
        if exponent <= 9 {
            ticks * 10u128.pow(9 - exponent)
        } else {
            ticks / 10u128.checked_pow(exponent - 9)?
        }
    } else {
        (ticks * 1_000_000_000).checked_shr(exponent)?
    };
    i64::try_from(ns)
        .ok()?
        .checked_add(tsoffset_s.checked_mul(1_000_000_000)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A little-endian microsecond pcap of Ethernet frames of the given lengths, the
    /// n-th stamped n µs after 1 s, with `tail` appended.
    fn classic_pcap(lengths: &[usize], tail: &[u8]) -> Vec<u8> {
        let mut bytes = vec![0xd4, 0xc3, 0xb2, 0xa1, 2, 0, 4, 0];
        for field in [0u32, 0, 65_535, 1] {
            bytes.extend_from_slice(&field.to_le_bytes());
        }
        for (n, &len) in lengths.iter().enumerate() {
            for field in [1u32, n as u32, len as u32, len as u32] {
                bytes.extend_from_slice(&field.to_le_bytes());
            }
            bytes.extend((0..len).map(|i| (n + i) as u8));
        }
        bytes.extend_from_slice(tail);
        bytes
    }

    /// Every packet's (time, length, first byte), and how reading ended.
    fn read_all(bytes: &[u8]) -> (Vec<(i64, usize, u8)>, ReadEnd) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.pcap");
        std::fs::write(&path, bytes).unwrap();
        let mut packets = Vec::new();
        let end = read_capture(&path, "t", |record| {
            if let Record::Packet { t_ns, data, .. } = record {
                packets.push((t_ns, data.len(), data.first().copied().unwrap_or(0)));
            }
        })
        .unwrap();
        (packets, end)
    }

    #[test]
    fn classic_pcap_records_across_read_blocks_come_whole_and_in_order() {
        // ~3 MiB of records of uneven lengths: block ends fall inside records and
        // inside their headers.
        let lengths: Vec<usize> = (0..3_000).map(|n| 60 + n * 7 % 1_400).collect();
        let (packets, end) = read_all(&classic_pcap(&lengths, &[]));
        assert_eq!(end.stopped, None);
        assert_eq!(packets.len(), lengths.len());
        for (n, ((t_ns, len, first), want)) in packets.iter().zip(&lengths).enumerate() {
            assert_eq!(
                (*t_ns, *len, *first),
                (1_000_000_000 + n as i64 * 1_000, *want, n as u8)
            );
        }
    }

    #[test]
    fn classic_pcap_torn_tail_and_oversized_record_stop_reading_and_say_why() {
        let lengths = [100; 20_000];
        let whole = classic_pcap(&lengths, &[]);
        let (packets, end) = read_all(whole.get(..whole.len() - 10).unwrap());
        assert_eq!(packets.len(), lengths.len() - 1);
        assert_eq!(
            end.stopped.as_deref(),
            Some("torn tail: the last record is cut short")
        );
        // A record header that claims 16 MiB, followed by more than a block of bytes.
        let mut huge = Vec::new();
        for field in [1u32, 0, 16 << 20, 16 << 20] {
            huge.extend_from_slice(&field.to_le_bytes());
        }
        huge.resize(huge.len() + (2 << 20), 0);
        let (packets, end) = read_all(&classic_pcap(&[100, 100], &huge));
        assert_eq!(packets.len(), 2);
        assert!(end
            .stopped
            .unwrap()
            .starts_with("corrupt record: longer than"));
    }

    #[test]
    fn pcapng_time_units() {
        assert_eq!(ng_time(1_500_000, 6, 0), Some(1_500_000_000));
        assert_eq!(ng_time(7, 9, 1), Some(1_000_000_007));
        assert_eq!(ng_time(1 << 30, 0x80 | 30, 0), Some(1_000_000_000));
        assert_eq!(ng_time(123_456, 12, 0), Some(123));
        assert_eq!(ng_time(1, 127, 0), None);
        assert_eq!(ng_time(u64::MAX, 0, 0), None);
    }
}

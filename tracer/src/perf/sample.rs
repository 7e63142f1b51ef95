//! The records of a perf ring, decoded from their bytes.
//!
//! Every counter vmlat opens has `sample_type = TID | TIME | CPU | RAW` and no
//! `sample_id_all`. The kernel writes the fields of a sample in the fixed order of
//! `perf_event.h` (IDENTIFIER, IP, TID, TIME, ADDR, ID, STREAM_ID, CPU, PERIOD, READ,
//! CALLCHAIN, RAW, ...), skipping those not asked for, so a sample is exactly:
//!
//! ```text
//! struct perf_event_header { u32 type; u16 misc; u16 size; }
//! u32 pid, tid;      // PERF_SAMPLE_TID  (pid = thread group id)
//! u64 time;          // PERF_SAMPLE_TIME (CLOCK_MONOTONIC, see `use_clockid`)
//! u32 cpu, res;      // PERF_SAMPLE_CPU
//! u32 size;          // PERF_SAMPLE_RAW
//! u8  data[size];    //   the tracepoint payload, zero-padded to 8-byte alignment
//! ```
//!
//! and a PERF_RECORD_LOST is `header; u64 id; u64 lost;`. [`sample_opts`] is the one
//! place that asks for this layout; [`parse`] is the one place that reads it.

use perf_event_open::config::{
    Clock, Opts, RecordIdFormat, SampleFormat, SampleOn, WakeUp, WakeUpOn,
};

use super::cursor::{Cursor, Truncated};

const PERF_RECORD_LOST: u32 = 2;
const PERF_RECORD_SAMPLE: u32 = 9;
const HEADER_LEN: usize = 8;

/// How much of a ring fills before its reader is woken: a sixteenth.
///
/// The kernel's default, half the ring, woke the collector for 2 MiB per CPU at once:
/// ~30 k records whose decoding, and then sorting and writing on the writer thread,
/// held a CPU for milliseconds at a time, longer than a scheduler slice, so the load
/// balancer under it waited (BENCHMARKS.md). A sixteenth keeps each drain short and
/// in cache, and leaves fifteen sixteenths of the ring free for a collector that is
/// late to run. Per-sample wakeups (`wakeup_events`) stay off: that is a wakeup per
/// event.
const WAKEUP_FRACTION: usize = 16;
/// ... but no less than this, on rings of more than twice that (on smaller ones, half
/// the ring): a small `--perf-ring-kib` should not mean a wakeup every few records.
const MIN_WAKEUP_BYTES: usize = 64 << 10;

/// Counter options matching the layout [`parse`] reads: every hit of the tracepoint is
/// a sample, timed on CLOCK_MONOTONIC, created disabled; the reader of a ring of
/// `ring_bytes` is woken once it holds [`wakeup_bytes`] of it.
pub fn sample_opts(ring_bytes: usize) -> Opts {
    Opts {
        wake_up: WakeUp {
            on: WakeUpOn::Bytes(u32::try_from(wakeup_bytes(ring_bytes)).unwrap_or(u32::MAX)),
            ..WakeUp::default()
        },
        sample_on: SampleOn::Count(1),
        timer: Some(Clock::Monotonic),
        record_id_format: RecordIdFormat {
            task: true,
            time: true,
            cpu: true,
            ..RecordIdFormat::default()
        },
        sample_format: SampleFormat {
            raw: true,
            ..SampleFormat::default()
        },
        ..Opts::default()
    }
}

/// How full a ring of `ring_bytes` gets before its reader is woken.
fn wakeup_bytes(ring_bytes: usize) -> usize {
    (ring_bytes / WAKEUP_FRACTION).max(MIN_WAKEUP_BYTES.min(ring_bytes / 2))
}

/// One tracepoint hit: who was running where and when, and the raw payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sample<'a> {
    /// Thread group id of the task running when the tracepoint fired, in the pid
    /// namespace of the recorder.
    pub pid: u32,
    pub tid: u32,
    pub time: u64,
    pub cpu: u32,
    /// The tracepoint's payload, laid out as its `format` file says.
    pub raw: &'a [u8],
}

/// A record of the ring, as far as vmlat cares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RingRecord<'a> {
    Sample(Sample<'a>),
    /// The kernel dropped `lost` samples because the ring was full.
    Lost {
        lost: u64,
    },
    /// Another record type (none is asked for; the kernel may add some): skipped.
    Other {
        kind: u32,
    },
}

/// Decodes one record as handed out by the ring (`header.size` bytes).
pub fn parse(record: &[u8]) -> Result<RingRecord<'_>, Truncated> {
    let mut c = Cursor::new(record);
    let kind = c.u32()?;
    let _misc = c.u16()?;
    let size = usize::from(c.u16()?);
    // Read within the record's own length only, never into padding or the next record.
    let body = record
        .get(..size)
        .filter(|_| size >= HEADER_LEN)
        .ok_or(Truncated {
            at: 0,
            need: size.max(HEADER_LEN),
            len: record.len(),
        })?;
    let mut c = Cursor::at(body, HEADER_LEN);
    match kind {
        PERF_RECORD_SAMPLE => {
            let pid = c.u32()?;
            let tid = c.u32()?;
            let time = c.u64()?;
            let cpu = c.u32()?;
            let _res = c.u32()?;
            let raw_len = c.u32()?;
            let raw = c.bytes(raw_len as usize)?;
            Ok(RingRecord::Sample(Sample {
                pid,
                tid,
                time,
                cpu,
                raw,
            }))
        }
        PERF_RECORD_LOST => {
            let _id = c.u64()?;
            Ok(RingRecord::Lost { lost: c.u64()? })
        }
        kind => Ok(RingRecord::Other { kind }),
    }
}

/// Builders of ring records for tests of this module and of the decoders.
#[cfg(test)]
pub(crate) mod build {
    /// A PERF_RECORD_SAMPLE with the layout of [`super::parse`].
    pub fn sample(pid: u32, tid: u32, time: u64, cpu: u32, raw: &[u8]) -> Vec<u8> {
        let mut raw = raw.to_vec();
        // The kernel pads u32 size + data to a multiple of 8.
        while raw.len() % 8 != 4 {
            raw.push(0);
        }
        let mut out = Vec::new();
        out.extend_from_slice(&super::PERF_RECORD_SAMPLE.to_ne_bytes());
        out.extend_from_slice(&0u16.to_ne_bytes());
        let size = 8 + 8 + 8 + 8 + 4 + raw.len();
        out.extend_from_slice(&(size as u16).to_ne_bytes());
        for v in [pid, tid] {
            out.extend_from_slice(&v.to_ne_bytes());
        }
        out.extend_from_slice(&time.to_ne_bytes());
        out.extend_from_slice(&cpu.to_ne_bytes());
        out.extend_from_slice(&0u32.to_ne_bytes());
        out.extend_from_slice(&(raw.len() as u32).to_ne_bytes());
        out.extend_from_slice(&raw);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wakes_at_a_sixteenth_of_large_rings_and_half_of_small_ones() {
        assert_eq!(wakeup_bytes(4 << 20), 256 << 10, "the default 4 MiB ring");
        assert_eq!(wakeup_bytes(512 << 10), 64 << 10);
        assert_eq!(wakeup_bytes(64 << 10), 32 << 10);
        assert_eq!(wakeup_bytes(4096), 2048, "one page: the kernel's own half");
    }

    #[test]
    fn parses_a_sample() {
        let bytes = build::sample(10, 11, 12_345, 1, &[1, 2, 3, 4, 5]);
        assert_eq!(bytes.len() % 8, 0);
        let RingRecord::Sample(s) = parse(&bytes).unwrap() else {
            panic!("not a sample")
        };
        assert_eq!((s.pid, s.tid, s.time, s.cpu), (10, 11, 12_345, 1));
        // u32 size + 5 bytes, padded to 16: 12 bytes of payload.
        assert_eq!(
            s.raw,
            &[1, 2, 3, 4, 5, 0, 0, 0, 0, 0, 0, 0],
            "payload with the kernel's padding"
        );
    }

    #[test]
    fn parses_lost_and_skips_others() {
        let mut lost = Vec::new();
        lost.extend_from_slice(&PERF_RECORD_LOST.to_ne_bytes());
        lost.extend_from_slice(&0u16.to_ne_bytes());
        lost.extend_from_slice(&24u16.to_ne_bytes());
        lost.extend_from_slice(&99u64.to_ne_bytes());
        lost.extend_from_slice(&1234u64.to_ne_bytes());
        assert_eq!(parse(&lost), Ok(RingRecord::Lost { lost: 1234 }));
        let mut other = lost.clone();
        other[..4].copy_from_slice(&5u32.to_ne_bytes());
        assert_eq!(parse(&other), Ok(RingRecord::Other { kind: 5 }));
    }

    #[test]
    fn every_truncation_is_an_error_not_a_panic() {
        let bytes = build::sample(1, 2, 3, 0, &[9; 20]);
        for len in 0..bytes.len() {
            assert!(parse(&bytes[..len]).is_err(), "len {len}");
        }
        // A header that claims less than the raw size field says.
        let mut short = bytes.clone();
        short[6..8].copy_from_slice(&40u16.to_ne_bytes());
        assert!(parse(&short).is_err());
        // A raw size beyond the record.
        let mut long = bytes.clone();
        long[32..36].copy_from_slice(&u32::MAX.to_ne_bytes());
        assert!(parse(&long).is_err());
        // A size below the header's own.
        let mut tiny = bytes;
        tiny[6..8].copy_from_slice(&4u16.to_ne_bytes());
        assert!(parse(&tiny).is_err());
    }
}

//! The event stream round-trips, and a stream cut anywhere reads back up to its last
//! whole chunk, reporting the torn tail.

use std::fs;

use vmlat_bundle::{
    BundleError, ClockAnchor, DiskSample, EventReader, EventWriter, Losses, Record,
};

fn sample_records(n: u64) -> Vec<Record> {
    (0..n)
        .map(|i| match i % 5 {
            0 => Record::SchedSwitch {
                t: 1_000 + i,
                cpu: (i % 2) as u32,
                prev_tid: 100,
                prev_comm: "keepalived".into(),
                prev_prio: 120,
                prev_state: 4,
                next_tid: 0,
                next_comm: "swapper/1".into(),
                next_prio: 120,
            },
            1 => Record::SyscallEnter {
                t: 1_000 + i,
                cpu: 0,
                tid: 100,
                tgid: 100,
                nr: 46,
                args: [13, 0x7fff_0000, 0, 0, 0, u64::MAX],
            },
            2 => Record::Disk(Box::new(DiskSample {
                t: 1_000 + i,
                device: "vda".into(),
                major: 254,
                minor: 0,
                reads: i,
                reads_merged: 0,
                sectors_read: 8 * i,
                read_ms: 3,
                writes: 2,
                writes_merged: 0,
                sectors_written: 16,
                write_ms: 9,
                in_flight: 1,
                io_ticks_ms: 12,
                time_in_queue_ms: 12,
                discards: 0,
                discard_ms: 0,
                flushes: 0,
                flush_ms: 0,
            })),
            3 => Record::Clock(ClockAnchor {
                realtime_ns: 1_700_000_000_000_000_000 + i as i64,
                monotonic_ns: 1_000 + i,
                uncertainty_ns: 40,
            }),
            _ => Record::Losses {
                t: 1_000 + i,
                losses: Losses {
                    perf_lost: i,
                    ..Losses::default()
                },
            },
        })
        .collect()
}

/// Writes one chunk per slice; returns the file length after the header and after
/// each chunk: the only places a cut leaves no torn tail.
fn write_chunks(path: &std::path::Path, chunks: &[Vec<Record>]) -> Vec<usize> {
    let mut writer = EventWriter::create(path).unwrap();
    let mut boundaries = vec![fs::metadata(path).unwrap().len() as usize];
    for chunk in chunks {
        for record in chunk {
            writer.append(record).unwrap();
        }
        writer.flush().unwrap();
        boundaries.push(fs::metadata(path).unwrap().len() as usize);
    }
    boundaries
}

#[test]
fn records_round_trip_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("events.vmlat");
    let records = sample_records(1000);
    write_chunks(&path, &[records[..400].to_vec(), records[400..].to_vec()]);

    let mut reader = EventReader::open(&path).unwrap();
    let read: Vec<Record> = reader.by_ref().map(Result::unwrap).collect();
    assert_eq!(read, records);
    assert_eq!(reader.summary().chunks, 2);
    assert!(!reader.summary().torn_tail);
}

#[test]
fn a_stream_cut_at_any_byte_reads_up_to_its_last_whole_chunk() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("events.vmlat");
    let records = sample_records(30);
    let boundaries = write_chunks(
        &path,
        &[
            records[..10].to_vec(),
            records[10..20].to_vec(),
            records[20..].to_vec(),
        ],
    );
    let whole = fs::read(&path).unwrap();

    // Every cut yields the records of the whole chunks before it.
    let cut_path = dir.path().join("cut.vmlat");
    for cut in 0..whole.len() {
        fs::write(&cut_path, &whole[..cut]).unwrap();
        let mut reader = EventReader::open(&cut_path).unwrap();
        let read: Vec<Record> = reader.by_ref().map(Result::unwrap).collect();
        let whole_chunks = boundaries[1..].iter().filter(|&&end| end <= cut).count();
        assert_eq!(read, records[..whole_chunks * 10], "cut at {cut}");
        assert_eq!(
            reader.summary().torn_tail,
            !boundaries.contains(&cut),
            "cut at {cut}"
        );
    }
}

#[test]
fn a_corrupt_last_chunk_is_a_torn_tail_not_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("events.vmlat");
    let records = sample_records(20);
    write_chunks(&path, &[records[..10].to_vec(), records[10..].to_vec()]);
    let mut bytes = fs::read(&path).unwrap();
    let last = bytes.len() - 3;
    bytes[last] ^= 0xff;
    fs::write(&path, &bytes).unwrap();

    let mut reader = EventReader::open(&path).unwrap();
    let read: Vec<Record> = reader.by_ref().map(Result::unwrap).collect();
    assert_eq!(read, records[..10]);
    assert!(reader.summary().torn_tail);
    assert_eq!(
        reader.summary().torn_reason.as_deref(),
        Some("the last chunk fails its CRC")
    );
}

#[test]
fn a_chunk_claiming_more_than_the_file_holds_is_a_torn_tail() {
    // Found by fuzzing (docs/fuzzing.md): a header announcing 64 MiB over a few bytes
    // made the reader allocate the 64 MiB first. What it holds is read, then the tear.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("events.vmlat");
    let records = sample_records(5);
    write_chunks(&path, std::slice::from_ref(&records));
    let mut bytes = fs::read(&path).unwrap();
    bytes.extend_from_slice(b"CHNK");
    bytes.extend_from_slice(&(64u32 << 20).to_le_bytes());
    bytes.extend_from_slice(&3u32.to_le_bytes());
    bytes.extend_from_slice(&0u32.to_le_bytes());
    bytes.extend_from_slice(&[1; 12]);
    fs::write(&path, &bytes).unwrap();

    let mut reader = EventReader::open(&path).unwrap();
    let read: Vec<Record> = reader.by_ref().map(Result::unwrap).collect();
    assert_eq!(read, records);
    assert_eq!(
        reader.summary().torn_reason.as_deref(),
        Some("the file ends inside a chunk")
    );
}

#[test]
fn a_foreign_file_is_named_as_not_a_bundle() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("events.vmlat");
    fs::write(&path, b"this is not an event stream at all").unwrap();
    match EventReader::open(&path) {
        Err(BundleError::NotABundle { reason, .. }) => assert!(reason.contains("VMLATEV")),
        Err(other) => panic!("wrong error: {other}"),
        Ok(_) => panic!("a foreign file was accepted"),
    }
}

#[test]
fn a_newer_stream_version_asks_for_an_upgrade() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("events.vmlat");
    let mut bytes = b"VMLATEV\0".to_vec();
    bytes.extend_from_slice(&99u32.to_le_bytes());
    fs::write(&path, &bytes).unwrap();
    let err = EventReader::open(&path).err().expect("version 99 rejected");
    assert!(err.to_string().contains("upgrade vmlat"), "{err}");
}

#[test]
fn comm_values_match_names_exactly_or_by_prefix() {
    use vmlat_bundle::comm_matches;
    assert!(comm_matches("keepalived", "keepalived"));
    assert!(!comm_matches("keepalived", "keepalived_vrrp"));
    assert!(comm_matches("keepalived*", "keepalived_vrrp"));
    assert!(comm_matches("keepalived*", "keepalived"));
    assert!(!comm_matches("keepalived*", "kworker/0:1"));
    // The kernel keeps 15 bytes of a name.
    assert!(comm_matches("a-name-longer-than-15", "a-name-longer-t"));
}

//! `Record::Freezer` (event stream version 2): round-trips, keeps its postcard
//! encoding, and version-1 streams, which have no such records, still read.

mod common;

use std::fs;
use std::path::Path;

use vmlat_bundle::{
    inventory, BundleError, CgroupHierarchy, EventReader, FreezerSample, FreezerState, Losses,
    RecordKind, EVENTS_VERSION, EVENTS_VERSION_MIN,
};
use vmlat_bundle::{Record, TaskKind, TaskSample};

fn freezer(
    t: u64,
    hierarchy: CgroupHierarchy,
    state: FreezerState,
    previous_t: Option<u64>,
) -> Record {
    Record::Freezer(FreezerSample {
        t,
        tgid: 8238,
        tid: 8239,
        hierarchy,
        cgroup: "/system.slice/keepalived.service".into(),
        state,
        previous_t,
    })
}

/// Every hierarchy and state, a baseline and changes, between records of version 1.
fn mixed_records() -> Vec<Record> {
    use CgroupHierarchy::{V1Freezer, V2};
    use FreezerState::{Freezing, Frozen, Thawed};
    vec![
        freezer(1_000, V1Freezer, Thawed, None),
        freezer(1_000, V2, Thawed, None),
        Record::Task(TaskSample {
            t: 1_050,
            tgid: 8238,
            tid: 8239,
            comm: "keepalived".into(),
            kind: TaskKind::Traced,
            run_ns: 5,
            wait_ns: 6,
            timeslices: 7,
            state: 'S',
        }),
        freezer(1_100, V1Freezer, Freezing, Some(1_000)),
        freezer(1_200, V1Freezer, Frozen, Some(1_100)),
        freezer(1_200, V2, Frozen, Some(1_100)),
        Record::Losses {
            t: 1_250,
            losses: Losses::default(),
        },
        freezer(u64::MAX, V2, Thawed, Some(u64::MAX - 1)),
    ]
}

fn read_all(path: &Path) -> (Vec<Record>, Option<u32>) {
    let mut reader = EventReader::open(path).unwrap();
    let records = reader.by_ref().map(Result::unwrap).collect();
    assert!(!reader.summary().torn_tail);
    (records, reader.version())
}

/// Rewrites the header's version field (the header is not CRC-protected).
fn set_version(path: &Path, version: u32) {
    let mut bytes = fs::read(path).unwrap();
    bytes[8..12].copy_from_slice(&version.to_le_bytes());
    fs::write(path, bytes).unwrap();
}

#[test]
fn freezer_records_round_trip_in_a_version_2_stream() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("events.vmlat");
    let records = mixed_records();
    common::write(&path, &records);

    assert_eq!(EVENTS_VERSION, 2);
    assert_eq!(&fs::read(&path).unwrap()[8..12], &2u32.to_le_bytes());
    let (read, version) = read_all(&path);
    assert_eq!(read, records);
    assert_eq!(version, Some(2));
    assert_eq!(read[3].kind(), RecordKind::Freezer);
    assert_eq!(read[4].time(), 1_200);
}

#[test]
fn the_freezer_record_is_variant_16_and_keeps_its_encoding() {
    let record = Record::Freezer(FreezerSample {
        t: 300,
        tgid: 1,
        tid: -1,
        hierarchy: CgroupHierarchy::V2,
        cgroup: "/a".into(),
        state: FreezerState::Frozen,
        previous_t: Some(2),
    });
    let bytes = postcard::to_allocvec(&record).unwrap();
    assert_eq!(
        bytes,
        [
            16, // variant: appended after Losses (15)
            0xac, 0x02, // t = 300, varint
            2,    // tgid = 1, zigzag
            1,    // tid = -1, zigzag
            1,    // hierarchy V2
            2, b'/', b'a', // cgroup
            2,    // state Frozen
            1, 2, // previous_t = Some(2)
        ]
    );
    assert_eq!(postcard::from_bytes::<Record>(&bytes).unwrap(), record);
}

#[test]
fn a_version_1_stream_still_reads() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("events.vmlat");
    // What vmlat wrote before version 2: the same records minus Freezer.
    let records: Vec<Record> = mixed_records()
        .into_iter()
        .filter(|r| r.kind() != RecordKind::Freezer)
        .collect();
    common::write(&path, &records);
    set_version(&path, 1);

    assert_eq!(EVENTS_VERSION_MIN, 1);
    let (read, version) = read_all(&path);
    assert_eq!(read, records);
    assert_eq!(version, Some(1));
}

#[test]
fn versions_outside_1_to_2_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("events.vmlat");
    common::write(&path, &mixed_records());

    set_version(&path, 3);
    match EventReader::open(&path) {
        Err(BundleError::UnsupportedVersion {
            found, supported, ..
        }) => assert_eq!((found, supported), (3, 2)),
        Err(other) => panic!("wrong error: {other}"),
        Ok(_) => panic!("version 3 accepted"),
    }

    set_version(&path, 0);
    match EventReader::open(&path) {
        Err(BundleError::AncientVersion { found, first, .. }) => assert_eq!((found, first), (0, 1)),
        Err(other) => panic!("wrong error: {other}"),
        Ok(_) => panic!("version 0 accepted"),
    }
}

#[test]
fn a_stream_torn_inside_its_header_has_no_version() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("events.vmlat");
    fs::write(&path, b"VMLATEV\0\x02").unwrap();
    let reader = EventReader::open(&path).unwrap();
    assert_eq!(reader.version(), None);
    assert!(reader.summary().torn_tail);
}

#[test]
fn inventory_counts_freezer_records() {
    let dir = tempfile::tempdir().unwrap();
    common::store_bundle(dir.path(), &[], &mixed_records());

    let inv = inventory(dir.path()).unwrap();
    assert_eq!(inv.counts.freezer_samples, 6);
    assert_eq!(inv.counts.task_samples, 1);
    let json = serde_json::to_value(&inv).unwrap();
    assert_eq!(json["counts"]["freezer_samples"], 6);
}

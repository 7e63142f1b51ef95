//! `Record::ExitGroup`: appended as variant 17 without a new stream version (an
//! older stream simply has none), round-trips, keeps its encoding, and is counted.

mod common;

use vmlat_bundle::{inventory, EventReader, EventWriter, Record, RecordKind, EVENTS_VERSION};

fn exit_group(t: u64, tid: i32, tgid: i32, code: i64) -> Record {
    Record::ExitGroup {
        t,
        cpu: 1,
        tid,
        tgid,
        code,
    }
}

fn records() -> Vec<Record> {
    vec![
        Record::ProcessExit {
            t: 900,
            cpu: 0,
            tid: 4101,
            tgid: 4100,
            comm: "sh".into(),
            prio: 120,
        },
        exit_group(1_000, 4100, 4100, 7),
        exit_group(1_001, 4102, 4100, -1),
        Record::ProcessExit {
            t: 1_010,
            cpu: 1,
            tid: 4100,
            tgid: 4100,
            comm: "sh".into(),
            prio: 120,
        },
        exit_group(u64::MAX, i32::MAX, i32::MIN, i64::MIN),
    ]
}

#[test]
fn exit_group_records_round_trip_in_a_version_2_stream() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("events.vmlat");
    let mut writer = EventWriter::create(&path).unwrap();
    for record in records() {
        writer.append(&record).unwrap();
    }
    writer.flush().unwrap();

    assert_eq!(EVENTS_VERSION, 2, "additive: no new stream version");
    let mut reader = EventReader::open(&path).unwrap();
    let read: Vec<Record> = reader.by_ref().map(Result::unwrap).collect();
    assert!(!reader.summary().torn_tail);
    assert_eq!(reader.version(), Some(2));
    assert_eq!(read, records());
    assert_eq!(read[1].kind(), RecordKind::ExitGroup);
    assert_eq!(read[2].time(), 1_001);
    assert_eq!(read[4].time(), u64::MAX);
}

#[test]
fn the_exit_group_record_is_variant_17_and_keeps_its_encoding() {
    let record = exit_group(300, 4100, -1, -1);
    let bytes = postcard::to_allocvec(&record).unwrap();
    assert_eq!(
        bytes,
        [
            17, // variant: appended after Freezer (16)
            0xac, 0x02, // t = 300, varint
            1,    // cpu = 1
            0x88, 0x40, // tid = 4100, zigzag 8200
            1,    // tgid = -1, zigzag
            1,    // code = -1, zigzag
        ]
    );
    assert_eq!(postcard::from_bytes::<Record>(&bytes).unwrap(), record);
}

#[test]
fn inventory_counts_exit_group_records() {
    let dir = tempfile::tempdir().unwrap();
    common::store_bundle(dir.path(), &["syscalls:sys_enter_exit_group"], &records());

    let inv = inventory(dir.path()).unwrap();
    assert_eq!(inv.counts.exit_group, 3);
    assert_eq!(inv.counts.process_exit, 2);
    let json = serde_json::to_value(&inv).unwrap();
    assert_eq!(json["counts"]["exit_group"], 3);
}

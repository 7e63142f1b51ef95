//! A bundle's event stream (`events.vmlat`): header, CRC-framed chunks, postcard
//! records; read to its end or its torn tail.
#![no_main]

use libfuzzer_sys::fuzz_target;
use vmlat_bundle::EventReader;

fuzz_target!(|data: &[u8]| {
    let Ok(dir) = tempfile::tempdir() else { return };
    let path = dir.path().join("events.vmlat");
    if std::fs::write(&path, data).is_err() {
        return;
    }
    if let Ok(reader) = EventReader::open(&path) {
        for record in reader {
            if record.is_err() {
                break;
            }
        }
    }
});

//! A capture file from anywhere: the pcap and pcapng readers, then everything the
//! packet pass does with what they yield (decoders, stream tracker, incidents).
#![no_main]

use libfuzzer_sys::fuzz_target;
use vmlat_analyzer::{analyze_captures, AnalyzeOptions};

fuzz_target!(|data: &[u8]| {
    let Ok(dir) = tempfile::tempdir() else { return };
    let path = dir.path().join("fuzz.pcap");
    if std::fs::write(&path, data).is_err() {
        return;
    }
    let _ = analyze_captures(&[path], &AnalyzeOptions::default());
});

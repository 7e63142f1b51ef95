//! A bundle's `manifest.json`, as `Manifest::load` checks and reads it.
#![no_main]

use libfuzzer_sys::fuzz_target;
use vmlat_bundle::{Manifest, MANIFEST_FILE};

fuzz_target!(|data: &[u8]| {
    let Ok(dir) = tempfile::tempdir() else { return };
    if std::fs::write(dir.path().join(MANIFEST_FILE), data).is_err() {
        return;
    }
    let _ = Manifest::load(dir.path());
});

//! A lab scenario file (`docs/scenarios.md`): TOML, then every check the lab makes
//! before it builds anything.
#![no_main]

use libfuzzer_sys::fuzz_target;
use vmlat_lab::scenario::Scenario;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = Scenario::parse(std::path::Path::new("fuzz.toml"), text);
    }
});

//! keepalived's logs as `--keepalived-log` reads them: console, syslog (classic and
//! RFC 3339) and journalctl (short formats and JSON), any mix, any bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;
use vmlat_analyzer::fuzzing::{read_keepalived_log, DateContext};

fuzz_target!(|data: &[u8]| {
    let _ = read_keepalived_log(data, &DateContext::utc(1_796_071_980_000_000_000));
});

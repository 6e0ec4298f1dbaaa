//! Any text as an SLO spec file: the readers report problems, never panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = slo_agent::spec::load_str("fuzz.yaml", text);
    }
});

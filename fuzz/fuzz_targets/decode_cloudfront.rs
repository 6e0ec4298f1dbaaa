//! Any bytes, split into lines, through the cloudfront decoder: never a panic.
//! Lines go through one decoder, so header-driven state (column maps) set by
//! one line is exercised by the next.
#![no_main]

use libfuzzer_sys::fuzz_target;
use slo_agent::decode::Format;
use slo_agent::event::RequestEvent;

fuzz_target!(|data: &[u8]| {
    let mut d = Format::CloudFront.decoder("fuzz").expect("concrete format");
    let mut sink = |e: &RequestEvent<'_>| {
        // Touch what the engine reads, so borrowed fields are really read.
        std::hint::black_box((e.ts_ms, e.status, e.path.len(), e.host.len(), e.latency_ms));
    };
    for line in data.split(|&b| b == b'\n') {
        let _ = d.decode_line(line, &mut sink);
    }
});

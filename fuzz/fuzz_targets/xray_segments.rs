//! Any bytes as the segment documents of one X-Ray trace (split at NUL
//! bytes into documents): never a panic, whatever the documents hold.
#![no_main]

use libfuzzer_sys::fuzz_target;
use slo_agent::hops::xray::{decompose, root_trace_id};

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let docs: Vec<&str> = text.split('\0').collect();
    if let Ok(t) = decompose("1-00000000-000000000000000000000000", &docs) {
        std::hint::black_box((t.gateway_ms, t.lambda_overhead_ms, t.init_ms, t.path.len()));
    }
    std::hint::black_box(root_trace_id(&text));
});

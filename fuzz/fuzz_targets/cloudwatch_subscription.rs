//! Any bytes as a CloudWatch Logs subscription payload (base64, gzip or
//! JSON): never a panic, and memory stays bounded by the decompression limit.
#![no_main]

use libfuzzer_sys::fuzz_target;
use slo_agent::decode::Rejects;
use slo_agent::decode::cloudwatch_logs::SubscriptionDecoder;
use slo_agent::event::RequestEvent;

fuzz_target!(|data: &[u8]| {
    let mut d = SubscriptionDecoder::new("fuzz", SubscriptionDecoder::default_routes()).with_limit(1 << 20);
    let mut rejects = Rejects::default();
    let mut sink = |e: &RequestEvent<'_>| {
        std::hint::black_box((e.ts_ms, e.status, e.latency_ms));
    };
    let _ = d.decode_payload(data, &mut sink, &mut rejects, "fuzz");
});

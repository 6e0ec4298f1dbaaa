//! Any bytes as a Firehose delivery request body, then every record as a
//! CloudWatch Logs subscription payload: never a panic, never unbounded
//! memory (the limits are the ones the agent uses).
#![no_main]

use libfuzzer_sys::fuzz_target;
use slo_agent::decode::Rejects;
use slo_agent::decode::cloudwatch_logs::SubscriptionDecoder;
use slo_agent::event::RequestEvent;
use slo_agent::source::push::firehose::parse_request;

fuzz_target!(|data: &[u8]| {
    let Ok(req) = parse_request(data, 1 << 20) else { return };
    let mut sub = SubscriptionDecoder::new("fuzz", SubscriptionDecoder::default_routes()).with_limit(1 << 20);
    let mut rejects = Rejects::default();
    let mut sink = |e: &RequestEvent<'_>| {
        std::hint::black_box((e.ts_ms, e.status, e.latency_ms));
    };
    for rec in &req.records {
        let _ = sub.decode_payload(rec, &mut sink, &mut rejects, "fuzz");
    }
});

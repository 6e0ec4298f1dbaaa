//! Any bytes as an OTLP traces request, protobuf and JSON, and split into
//! lines through the `otlp-json` line decoder: never a panic, and an `Ok`
//! request's stats agree with the events the sink saw.
#![no_main]

use libfuzzer_sys::fuzz_target;
use slo_agent::decode::Format;
use slo_agent::decode::otlp::{decode_traces_json, decode_traces_protobuf};
use slo_agent::event::RequestEvent;

fuzz_target!(|data: &[u8]| {
    for decode in [decode_traces_protobuf, decode_traces_json] {
        let mut events = 0u64;
        let mut sink = |e: &RequestEvent<'_>| {
            events += 1;
            // Touch what the engine reads, so borrowed fields are really read.
            std::hint::black_box((e.ts_ms, e.status, e.path.len(), e.host.len(), e.latency_ms, e.trace_id.len()));
        };
        if let Ok(stats) = decode(data, "fuzz", &mut sink) {
            assert_eq!(stats.events, events, "stats count the events handed on");
            assert_eq!(stats.events + stats.rejected_spans(), stats.server_spans, "every server span counted once");
        }
    }
    let mut d = Format::OtlpJson.decoder("fuzz").expect("concrete format");
    for line in data.split(|&b| b == b'\n') {
        let _ = d.decode_line(line, &mut |e: &RequestEvent<'_>| {
            std::hint::black_box((e.ts_ms, e.status));
        });
    }
});

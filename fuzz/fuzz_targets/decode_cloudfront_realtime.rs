//! Any bytes through the CloudFront real-time log decoder: never a panic.
//! The first 9 bytes pick the configured field list (a bitmask over the
//! documented fields, so lists of every size and shape are tried); the rest
//! is split into lines, decoded with that list.
#![no_main]

use libfuzzer_sys::fuzz_target;
use slo_agent::decode::cloudfront_realtime::{CloudFrontRealtimeDecoder, REALTIME_FIELDS};
use slo_agent::decode::Decoder;
use slo_agent::event::RequestEvent;

fuzz_target!(|data: &[u8]| {
    if data.len() < 9 {
        return;
    }
    let (mask, rest) = data.split_at(9);
    let mut bits = u128::from(mask[8]) << 64;
    bits |= u128::from(u64::from_le_bytes(mask[..8].try_into().expect("8 bytes")));
    let fields: Vec<&str> =
        REALTIME_FIELDS.iter().enumerate().filter(|(i, _)| bits >> i & 1 == 1).map(|(_, f)| *f).collect();
    let Ok(mut d) = CloudFrontRealtimeDecoder::new("fuzz", &fields) else { return };
    let mut sink = |e: &RequestEvent<'_>| {
        std::hint::black_box((e.ts_ms, e.status, e.path.len(), e.host.len(), e.latency_ms));
    };
    for line in rest.split(|&b| b == b'\n') {
        let _ = d.decode_line(line, &mut sink);
    }
});

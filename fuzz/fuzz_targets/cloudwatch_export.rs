//! Any bytes as a CloudWatch Logs export (CSV rows, or the JSON of the CLI
//! and Logs Insights), through the router to the decoders: never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use slo_agent::decode::cloudwatch_export::{self, CsvColumns, CsvScratch, LogEventRouter};
use slo_agent::decode::{Format, Rejects};
use slo_agent::event::RequestEvent;

fuzz_target!(|data: &[u8]| {
    let _ = cloudwatch_export::detect(data);
    let mut router = LogEventRouter::new("fuzz", Vec::new(), Format::Auto);
    let mut rejects = Rejects::default();
    let mut sink = |e: &RequestEvent<'_>| {
        std::hint::black_box((e.ts_ms, e.status, e.latency_ms));
    };
    let mut lines = data.split(|&b| b == b'\n');
    if let Some(columns) = lines.next().and_then(CsvColumns::from_header) {
        let mut scratch = CsvScratch::default();
        for row in lines {
            if let Ok(ev) = columns.row(row, &mut scratch) {
                router.log_event(ev, || "fuzz".into(), &mut sink, &mut rejects);
            }
        }
    }
    let _ = cloudwatch_export::json_events_in(data, |ev| {
        if let Ok(e) = ev.as_event() {
            router.log_event(e, || "fuzz".into(), &mut sink, &mut rejects);
        }
    });
    std::hint::black_box(router.finish());
});

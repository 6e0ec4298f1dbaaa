//! The live signals' cost per minute (`signals::Signals`): 1,720 live
//! series — 40 services, each with its request signals over `all`, three
//! edge locations, their regions and a client class — closing one minute:
//! every series scored by its detector, the hourly history kept, and the
//! view the API reads rebuilt. The events of the minute are fed first
//! (40 × 30 requests), and counted in the time.
//!
//! `cargo bench --bench signals -- --warm-up-time 1 --measurement-time 5`
//!
//! Divide the time of one iteration by 60 s for the share of one core that
//! these 1,720 series updated every minute cost.
//!
//! `outage_verdicts_of_40_services`: the outage verdicts of the same 40
//! services over the view, which the state thread makes at every evaluation.

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use slo_agent::event::{ClientClass, Origin, RequestEvent};
use slo_agent::signals::Signals;
use slo_agent::signals::config::SignalsConfig;

const T0: i64 = 1_767_571_200_000;
const MIN: i64 = 60_000;
const EDGES: [&str; 3] = ["FRA56-P2", "IAD89-C1", "NRT57-P3"];

fn minute(s: &mut Signals, services: &[String], m: i64) {
    for (k, svc) in services.iter().enumerate() {
        for i in 0..30i64 {
            let e = RequestEvent {
                ts_ms: T0 + m * MIN + i * 1_900,
                origin: Some(Origin::CloudFront),
                service: svc,
                path: "/products",
                method: "GET",
                status: if (i + m + k as i64) % 17 == 0 { 503 } else { 200 },
                latency_ms: Some(20.0 + ((i * 7 + m) % 13) as f64),
                edge_location: EDGES[(i % 3) as usize],
                client: ClientClass::Browser,
                client_addr: "198.51.100.7",
                ..Default::default()
            };
            s.observe(&e, 1);
        }
    }
    // Lateness 1 minute: the minute before the last closes.
    black_box(s.advance(T0 + (m + 1) * MIN));
}

fn bench(c: &mut Criterion) {
    let services: Vec<String> = (0..40).map(|i| format!("service-{i:02}")).collect();
    let cfg = SignalsConfig { lateness_ms: MIN, min_events: 5, ..Default::default() };
    let mut s = Signals::new(cfg);
    // Two days of minutes: detectors warm, seasonal forecasters running.
    let mut m = 0;
    while m < 2 * 1440 {
        minute(&mut s, &services, m);
        m += 1;
    }
    eprintln!("series: {}, memory bound {} bytes", s.len(), s.memory_bytes());
    let mut g = c.benchmark_group("signals");
    g.bench_function("minute_of_1720_series", |b| {
        b.iter(|| {
            minute(&mut s, &services, m);
            black_box(s.view());
            m += 1;
        })
    });
    // The outage verdict of every service, as the state thread judges it at
    // each evaluation (`Snapshot::outage`): no hop data or journeys here, so
    // the slices are the signals' edge locations, regions and client classes.
    let view = s.view();
    let hops = slo_agent::hops::HopsView::default();
    let outage = slo_agent::outage::OutageConfig::default();
    let now = T0 + (m + 1) * MIN;
    g.bench_function("outage_verdicts_of_40_services", |b| {
        b.iter(|| {
            for svc in &services {
                black_box(slo_agent::outage::assess(&outage, svc, now, &view, &hops, &[], &[]));
            }
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);

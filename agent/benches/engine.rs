//! The SLI engine's hot paths, in isolation from decoding:
//!
//! - `engine/observe_10_slos`: events routed to and counted by the 10 SLOs of
//!   `tests/bench/specs-10.yaml` (events per second).
//! - `engine/evaluate_N_slos`: one evaluation tick (every window, budget, burn
//!   rate and alert condition) of N SLOs that hold a day of data.
//!
//! - `hops/observe_mixed`: the hop decomposition (`slo_agent::hops`) fed
//!   with CloudFront (60 % cache hits, which it skips), API Gateway and Lambda
//!   events of one service, joined by request id (events per second).
//!
//! `cargo bench --bench engine -- --warm-up-time 1 --measurement-time 3`

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use slo_agent::event::{Origin, RequestEvent};
use slo_agent::sli::Engine;
use slo_agent::spec::{load_paths, load_str};

const PATHS: [&str; 8] =
    ["/", "/products/123", "/api/cart/77", "/checkout", "/checkout/pay", "/static/app.js", "/img/p/9.webp", "/search"];

#[derive(Clone, Copy)]
struct Owned {
    ts_ms: i64,
    path: &'static str,
    method: &'static str,
    status: u16,
    latency_ms: f64,
}

fn events(n: usize, start_ms: i64) -> Vec<Owned> {
    let mut x = 0x2545_F491_4F6C_DD1Du64;
    (0..n)
        .map(|i| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            Owned {
                ts_ms: start_ms + i as i64 * 86_400_000 / n as i64,
                path: PATHS[(x % 8) as usize],
                method: if x.is_multiple_of(5) { "POST" } else { "GET" },
                status: if x.is_multiple_of(200) { 503 } else { 200 },
                latency_ms: (x % 1500) as f64,
            }
        })
        .collect()
}

fn observe_all(engine: &mut Engine, evs: &[Owned]) {
    for e in evs {
        engine.observe(&RequestEvent {
            ts_ms: e.ts_ms,
            origin: Some(Origin::CloudFront),
            host: "shop.example.com",
            path: e.path,
            method: e.method,
            status: e.status,
            latency_ms: Some(e.latency_ms),
            ..Default::default()
        });
    }
}

fn bench(c: &mut Criterion) {
    let start = 1_795_132_800_000; // 2026-11-20T00:00:00Z
    let specs = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/bench/specs-10.yaml");
    let set = load_paths(&[specs]).expect("bench specs load");
    let evs = events(100_000, start);
    let mut g = c.benchmark_group("engine");
    g.throughput(Throughput::Elements(evs.len() as u64));
    g.bench_function("observe_10_slos", |b| {
        b.iter(|| {
            let mut engine = Engine::new(&set, false);
            observe_all(&mut engine, black_box(&evs));
            engine.stats.events
        })
    });
    g.finish();

    for n in [100usize, 1000] {
        let mut text = String::new();
        for i in 0..n {
            text.push_str(&format!(
                "---\napiVersion: slo-agent/v1\nkind: SLO\nmetadata: {{name: slo-{i}}}\nspec:\n  service: s\n  objective: 99.9\n  window: 28d\n  indicator:\n    source: cloudfront\n    filter: {{path: \"{}\"}}\n    good: {{status: \"< 500\", latency: \"<= 800ms\"}}\n",
                PATHS[i % 8]
            ));
        }
        let set = load_str("many.yaml", &text).expect("generated specs load");
        let mut engine = Engine::new(&set, false);
        observe_all(&mut engine, &events(20_000, start));
        let at = start + 86_400_000 - 1;
        let mut g = c.benchmark_group("engine");
        g.bench_function(format!("evaluate_{n}_slos"), |b| b.iter(|| engine.evaluate(black_box(at)).len()));
        // A whole tick: every window and condition, then the alert lifecycle.
        let mut alerts = slo_agent::alert::Alerts::new(slo_agent::alert::AlertPolicy::default());
        g.bench_function(format!("tick_{n}_slos_with_alerts"), |b| {
            b.iter(|| {
                let statuses = engine.evaluate(black_box(at));
                alerts.observe(&statuses, at).len()
            })
        });
        // The same, when every SLO counted new (good) events since the last
        // tick: the live case, whose windows take the new minute in.
        let good: Vec<Owned> = PATHS
            .iter()
            .map(|p| Owned { ts_ms: at - 1000, path: p, method: "GET", status: 200, latency_ms: 10.0 })
            .collect();
        g.bench_function(format!("tick_{n}_slos_new_events"), |b| {
            b.iter(|| {
                observe_all(&mut engine, &good);
                let statuses = engine.evaluate(black_box(at));
                alerts.observe(&statuses, at).len()
            })
        });
        // Good events, ticks 10 s apart: the baseline for the next one.
        let mut tick_at = at;
        g.bench_function(format!("tick_{n}_slos_new_events_advancing"), |b| {
            b.iter(|| {
                tick_at += 10_000;
                let fresh: Vec<Owned> = PATHS
                    .iter()
                    .map(|p| Owned { ts_ms: tick_at - 1000, path: p, method: "GET", status: 200, latency_ms: 10.0 })
                    .collect();
                observe_all(&mut engine, &fresh);
                let statuses = engine.evaluate(black_box(tick_at));
                alerts.observe(&statuses, tick_at).len()
            })
        });
        // And when every SLO saw a new failure since the last tick (an
        // incident everywhere), ticks 10 s apart: each tick works out every
        // SLO's failure breakdown again.
        let mut tick_at = at;
        g.bench_function(format!("tick_{n}_slos_all_failing_afresh"), |b| {
            b.iter(|| {
                tick_at += 10_000;
                let fresh: Vec<Owned> = PATHS
                    .iter()
                    .map(|p| Owned { ts_ms: tick_at - 1000, path: p, method: "GET", status: 503, latency_ms: 10.0 })
                    .collect();
                observe_all(&mut engine, &fresh);
                let statuses = engine.evaluate(black_box(tick_at));
                alerts.observe(&statuses, tick_at).len()
            })
        });
        g.finish();
    }
}

/// A tick of 1,000 SLOs holding 28 days of data (every daily latency
/// histogram in the window), ticks 10 s apart with new events: the steady
/// state of a long-running agent.
fn bench_28_days(c: &mut Criterion) {
    let start = 1_795_132_800_000 - 27 * 86_400_000;
    let mut text = String::new();
    for i in 0..1000 {
        text.push_str(&format!(
            "---\napiVersion: slo-agent/v1\nkind: SLO\nmetadata: {{name: slo-{i}}}\nspec:\n  service: s\n  objective: 99.9\n  window: 28d\n  indicator:\n    source: cloudfront\n    filter: {{path: \"{}\"}}\n    good: {{status: \"< 500\", latency: \"<= 800ms\"}}\n",
            PATHS[i % 8]
        ));
    }
    let set = load_str("many.yaml", &text).expect("generated specs load");
    let mut engine = Engine::new(&set, false);
    // 28 days, about 5,000 events a day.
    let evs = events(140_000, start);
    for day in 0..28 {
        let shifted: Vec<Owned> = evs
            .iter()
            .skip(day * 5000)
            .take(5000)
            .map(|e| Owned { ts_ms: start + day as i64 * 86_400_000 + (e.ts_ms - start) % 86_400_000, ..*e })
            .collect();
        observe_all(&mut engine, &shifted);
    }
    let mut at = start + 28 * 86_400_000 - 3_600_000;
    let mut alerts = slo_agent::alert::Alerts::new(slo_agent::alert::AlertPolicy::default());
    engine.evaluate(at);
    let mut g = c.benchmark_group("engine");
    g.sample_size(30);
    g.bench_function("tick_1000_slos_28_days_new_events_advancing", |b| {
        b.iter(|| {
            at += 10_000;
            let fresh: Vec<Owned> = PATHS
                .iter()
                .map(|p| Owned { ts_ms: at - 1000, path: p, method: "GET", status: 200, latency_ms: 10.0 })
                .collect();
            observe_all(&mut engine, &fresh);
            let statuses = engine.evaluate(black_box(at));
            alerts.observe(&statuses, at).len()
        })
    });
    g.finish();
}

/// The hop decomposition's per-event cost, on the mix of a CloudFront →
/// API Gateway → Lambda site: per request one CloudFront record (a cache
/// miss two times in five), and for a miss one API Gateway record and one
/// Lambda `REPORT` that join by request id.
fn bench_hops(c: &mut Criterion) {
    use slo_agent::hops::Hops;
    let start = 1_795_132_800_000;
    let evs = events(100_000, start);
    let ids: Vec<String> = (0..evs.len()).map(|i| format!("6f1d2c3b-0000-4000-8000-{i:012}")).collect();
    let mut g = c.benchmark_group("hops");
    let records = evs.iter().enumerate().map(|(i, _)| if i % 5 < 2 { 3 } else { 1 }).sum::<u64>();
    g.throughput(Throughput::Elements(records));
    g.bench_function("observe_mixed", |b| {
        b.iter(|| {
            let mut hops = Hops::default();
            for (i, e) in black_box(&evs).iter().enumerate() {
                let miss = i % 5 < 2;
                let base = RequestEvent { ts_ms: e.ts_ms, service: "shop", status: e.status, ..Default::default() };
                hops.observe(
                    &RequestEvent {
                        origin: Some(Origin::CloudFront),
                        path: e.path,
                        latency_ms: Some(e.latency_ms + 20.0),
                        upstream_latency_ms: miss.then_some(e.latency_ms),
                        ..base
                    },
                    1,
                );
                if miss {
                    hops.observe(
                        &RequestEvent {
                            origin: Some(Origin::ApiGateway),
                            route: "/cart/{id}",
                            latency_ms: Some(e.latency_ms),
                            upstream_latency_ms: Some(e.latency_ms * 0.8),
                            upstream_request_id: &ids[i],
                            ..base
                        },
                        1,
                    );
                    hops.observe(
                        &RequestEvent {
                            origin: Some(Origin::Lambda),
                            latency_ms: Some(e.latency_ms * 0.7),
                            request_id: &ids[i],
                            ..base
                        },
                        1,
                    );
                }
            }
            hops.stats.joined
        })
    });
    g.finish();
}

criterion_group!(benches, bench, bench_28_days, bench_hops);
criterion_main!(benches);

//! The anomaly detector's cost per row (`forecast::anomaly::Detector`):
//!
//! - `anomaly/score_5min_seasonal`: rows of a 5-minute daily-seasonal series
//!   with noise, one detector (rows per second; every forecaster active).
//! - `anomaly/1000_series_one_row_each`: one row for each of 1,000 live
//!   detectors, as the agent updates them every minute.
//!
//! `cargo bench --bench anomaly -- --warm-up-time 1 --measurement-time 3`

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use slo_agent::forecast::anomaly::Detector;

const T0: i64 = 1_767_571_200_000;
const STEP: i64 = 300_000;

fn value(i: i64) -> f64 {
    let phase = (i % 288) as f64 / 288.0 * std::f64::consts::TAU;
    // Cheap deterministic noise.
    let noise = ((i.wrapping_mul(2_654_435_761) >> 7) % 1000) as f64 / 500.0 - 1.0;
    100.0 + 30.0 * phase.sin() + 2.0 * noise
}

fn bench(c: &mut Criterion) {
    let mut g = c.benchmark_group("anomaly");
    // A detector past its warm-up with both seasonal forecasters running.
    let mut warm = Detector::new();
    for i in 0..10 * 288 {
        warm.score(T0 + i * STEP, value(i));
    }
    g.throughput(Throughput::Elements(10_000));
    g.bench_function("score_5min_seasonal", |b| {
        let mut d = warm.clone();
        let mut i = 10 * 288;
        b.iter(|| {
            for _ in 0..10_000 {
                black_box(d.score(T0 + i * STEP, value(i)));
                i += 1;
            }
        })
    });
    let mut fleet: Vec<Detector> = (0..1000).map(|_| warm.clone()).collect();
    g.throughput(Throughput::Elements(1000));
    g.bench_function("1000_series_one_row_each", |b| {
        let mut i = 10 * 288;
        b.iter(|| {
            for d in &mut fleet {
                black_box(d.score(T0 + i * STEP, value(i)));
            }
            i += 1;
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);

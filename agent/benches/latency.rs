//! The latency histograms (`slo_agent::sli::hdr`) against the `hdrhistogram`
//! crate, the reference implementation of the same layout (2 significant
//! digits: 256 sub-buckets, every value within 1/128), on days of
//! CloudFront-like latencies: 200,000 values a day, whole milliseconds, a
//! mix of cache hits (log-normal around 15 ms) and misses (log-normal around
//! 180 ms, a long tail).
//!
//! - `latency/record_day/ours`: a day recorded the way the engine does it:
//!   the slot worked out once (`hdr::slot_of_ms`), then `record_at`.
//! - `latency/record_day/hdrhistogram`: the same values through `record`.
//! - `latency/p50_p90_p99_28_days/{ours,hdrhistogram}`: p50, p90 and p99
//!   of 27 past days and today, merged from scratch (what an evaluation does
//!   when the cached merge of past days is stale): ours from compact past
//!   days, theirs from their in-memory histograms.
//! - `latency/p50_p90_p99_cached/ours`: the same with the past days' merge
//!   cached (the steady state: `LatencyDays::percentiles`).
//!
//! Printed before the timings: the memory of one past day in each form,
//! and the sizes of the store's encoding and of their V2 serialization.
//!
//! `cargo bench --bench latency -- --warm-up-time 1 --measurement-time 3`

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use hdrhistogram::serialization::{Serializer, V2Serializer};
use slo_agent::sli::hdr;

const VALUES_PER_DAY: usize = 200_000;

/// One day of latencies (ms, whole milliseconds as CloudFront logs them).
fn day_of_latencies(seed: u64) -> Vec<f64> {
    let mut x = seed | 1;
    let mut uniform = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        (x >> 11) as f64 / (1u64 << 53) as f64
    };
    (0..VALUES_PER_DAY)
        .map(|_| {
            // Box–Muller: a standard normal.
            let z = (-2.0 * uniform().max(1e-300).ln()).sqrt() * (2.0 * std::f64::consts::PI * uniform()).cos();
            let ms = if uniform() < 0.6 { (15f64.ln() + 0.6 * z).exp() } else { (180f64.ln() + 0.9 * z).exp() };
            ms.round().clamp(1.0, 60_000.0)
        })
        .collect()
}

fn ours(values: &[f64]) -> hdr::Histogram {
    let mut h = hdr::Histogram::default();
    for &ms in values {
        let (i, us) = hdr::slot_of_ms(ms);
        h.record_at(i, us);
    }
    h
}

fn theirs(values: &[f64]) -> hdrhistogram::Histogram<u64> {
    let mut h = hdrhistogram::Histogram::<u64>::new_with_bounds(1, hdr::HIGHEST_US, 2).expect("valid bounds");
    for &ms in values {
        h.saturating_record((ms * 1000.0) as u64);
    }
    h
}

fn their_bytes(h: &hdrhistogram::Histogram<u64>) -> usize {
    std::mem::size_of::<hdrhistogram::Histogram<u64>>() + h.distinct_values() * std::mem::size_of::<u64>()
}

fn bench(c: &mut Criterion) {
    let days: Vec<Vec<f64>> = (0..28).map(|d| day_of_latencies(0x9E37_79B9 + d)).collect();
    let today = &days[27];

    // Memory of one past day.
    let mut dense = ours(today);
    let dense_bytes = dense.memory_bytes();
    dense.compact();
    let mut store = Vec::new();
    dense.encode(&mut store);
    let t = theirs(today);
    let mut v2 = Vec::new();
    V2Serializer::new().serialize(&t, &mut v2).expect("serializes");
    let qs = [0.5, 0.9, 0.99];
    eprintln!(
        "one day of {VALUES_PER_DAY} values: ours dense {dense_bytes} B, ours compact {} B (store encoding {} B); \
         hdrhistogram in memory {} B ({} counts of 8 B), V2 serialized {} B",
        dense.memory_bytes(),
        store.len(),
        their_bytes(&t),
        t.distinct_values(),
        v2.len()
    );
    eprintln!(
        "p50/p90/p99 (µs): ours {:?}, hdrhistogram {:?}",
        dense.quantiles_with(None, qs).expect("values"),
        qs.map(|q| t.value_at_quantile(q))
    );

    let mut g = c.benchmark_group("latency/record_day");
    g.throughput(Throughput::Elements(VALUES_PER_DAY as u64));
    g.bench_function("ours", |b| b.iter(|| ours(black_box(today)).len()));
    g.bench_function("hdrhistogram", |b| b.iter(|| theirs(black_box(today)).len()));
    g.finish();

    // 27 past days and today.
    let past_ours: Vec<hdr::Histogram> = days[..27]
        .iter()
        .map(|d| {
            let mut h = ours(d);
            h.compact();
            h
        })
        .collect();
    let today_ours = ours(today);
    let past_theirs: Vec<hdrhistogram::Histogram<u64>> = days[..27].iter().map(|d| theirs(d)).collect();
    let today_theirs = theirs(today);
    let past_bytes: usize = past_ours.iter().map(|h| h.memory_bytes()).sum();
    let past_their_bytes: usize = past_theirs.iter().map(their_bytes).sum();
    eprintln!("27 past days: ours compact {past_bytes} B, hdrhistogram {past_their_bytes} B");

    let mut g = c.benchmark_group("latency/p50_p90_p99_28_days");
    g.bench_function("ours", |b| {
        b.iter(|| {
            let mut merged = hdr::Histogram::default();
            for h in black_box(&past_ours) {
                merged.add(h);
            }
            merged.compact();
            merged.quantiles_with(Some(&today_ours), qs)
        })
    });
    g.bench_function("hdrhistogram", |b| {
        b.iter(|| {
            let mut merged = today_theirs.clone();
            for h in black_box(&past_theirs) {
                merged.add(h).expect("same bounds");
            }
            qs.map(|q| merged.value_at_quantile(q))
        })
    });
    g.finish();

    let mut merged = hdr::Histogram::default();
    for h in &past_ours {
        merged.add(h);
    }
    merged.compact();
    let mut g = c.benchmark_group("latency/p50_p90_p99_cached");
    g.bench_function("ours", |b| b.iter(|| black_box(&merged).quantiles_with(Some(&today_ours), qs)));
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);

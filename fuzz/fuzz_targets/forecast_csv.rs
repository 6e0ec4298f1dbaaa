//! Any bytes as a `timestamp,value` CSV, forecast a few steps ahead (with
//! and without given seasons): never a panic, and every forecast and bound
//! is finite with lo <= forecast <= hi.
#![no_main]

use libfuzzer_sys::fuzz_target;
use slo_agent::forecast::{csv, model};

fuzz_target!(|data: &[u8]| {
    let Ok(rows) = csv::read_all(data) else { return };
    let rows: Vec<(i64, f64)> = rows.iter().map(|r| (r.ts_ms, r.value)).collect();
    let horizon = 1 + data.len() % 50;
    for seasons in [vec![], vec![2, 3]] {
        let opts = model::Options { horizon, seasons, level: 0.9 };
        if let Ok(f) = model::forecast(&rows, &opts) {
            assert_eq!(f.points.len(), horizon);
            for p in &f.points {
                assert!(p.forecast.is_finite() && p.lo.is_finite() && p.hi.is_finite(), "{p:?}");
                assert!(p.lo <= p.forecast && p.forecast <= p.hi, "{p:?}");
            }
        }
    }
});

//! Seasonal periods of a regular series: found from the timestamps (the
//! steps in a day and in a week) and confirmed by autocorrelation, and the
//! robust seasonal profiles of a multi-seasonal decomposition.
//!
//! Own code rather than `augurs-seasons` / `augurs-mstl`: the candidates
//! here are only the calendar periods web and cloud metrics have (a day, a
//! week), which the timestamps name exactly, so a periodogram search adds
//! nothing; and a profile made of per-phase medians of the last few cycles is
//! what keeps an outlier or an old level from leaking into the forecast.

/// Milliseconds in a day and in a week.
pub const DAY_MS: i64 = 86_400_000;
pub const WEEK_MS: i64 = 7 * DAY_MS;

/// A period is kept when the autocorrelation at its lag (of the series less
/// its moving average over the period) is at least this.
const MIN_ACF: f64 = 0.25;

/// A profile is the median of at most this many of the latest cycles.
const PROFILE_CYCLES: usize = 6;

/// The calendar periods (in steps) that the timestamps allow and the data
/// confirm, shortest first. A period needs at least two whole cycles.
pub fn detect(y: &[f64], step_ms: i64) -> Vec<usize> {
    let mut found = Vec::new();
    for period_ms in [DAY_MS, WEEK_MS] {
        let Some(p) = steps_in(period_ms, step_ms) else { continue };
        if p < 2 || y.len() < 2 * p + 1 {
            continue;
        }
        // The weekly profile is judged on what the daily one leaves.
        let rest = if found.is_empty() { y.to_vec() } else { adjusted(y, &found) };
        if acf_detrended(&rest, p) >= MIN_ACF {
            found.push(p);
        }
    }
    found
}

/// How many steps make a calendar period, when the step fits it within 1 %.
fn steps_in(period_ms: i64, step_ms: i64) -> Option<usize> {
    if step_ms <= 0 || step_ms > period_ms / 2 {
        return None;
    }
    let p = ((period_ms as f64) / (step_ms as f64)).round();
    let err = (p * step_ms as f64 - period_ms as f64).abs();
    (err <= period_ms as f64 * 0.01).then_some(p as usize)
}

/// Centered moving average over `w` points (shifted inward at the ends, so
/// every point has a full window).
pub fn moving_average(y: &[f64], w: usize) -> Vec<f64> {
    let n = y.len();
    if n == 0 || w <= 1 {
        return y.to_vec();
    }
    let w = w.min(n);
    let mut prefix = Vec::with_capacity(n + 1);
    prefix.push(0.0);
    let mut s = 0.0;
    for v in y {
        s += v;
        prefix.push(s);
    }
    (0..n)
        .map(|i| {
            let start = i.saturating_sub(w / 2).min(n - w);
            (prefix[start + w] - prefix[start]) / w as f64
        })
        .collect()
}

/// Autocorrelation at `lag` of `y` less its moving average over `lag`
/// (which removes the trend but not a cycle of that length).
pub fn acf_detrended(y: &[f64], lag: usize) -> f64 {
    if lag == 0 || y.len() <= lag {
        return 0.0;
    }
    let ma = moving_average(y, lag);
    let d: Vec<f64> = y.iter().zip(&ma).map(|(v, m)| v - m).collect();
    let mean = d.iter().sum::<f64>() / d.len() as f64;
    let den: f64 = d.iter().map(|v| (v - mean) * (v - mean)).sum();
    if den <= 0.0 || !den.is_finite() {
        return 0.0;
    }
    let num: f64 = (lag..d.len()).map(|i| (d[i] - mean) * (d[i - lag] - mean)).sum();
    num / den
}

/// Seasonal profiles, one per period: `profiles[k][i % periods[k]]` is the
/// seasonal part at index `i` (past or future). Each is the per-phase median
/// over the latest cycles of what the series less its moving average and
/// the other profiles leaves, centred on zero.
pub fn profiles(y: &[f64], periods: &[usize]) -> Vec<Vec<f64>> {
    let n = y.len();
    let mut profs: Vec<Vec<f64>> = periods.iter().map(|&p| vec![0.0; p]).collect();
    for _pass in 0..2 {
        for k in 0..periods.len() {
            let p = periods[k];
            if p < 2 || n < 2 * p {
                continue;
            }
            let other: Vec<f64> = (0..n)
                .map(|i| {
                    let s: f64 =
                        profs.iter().enumerate().filter(|(j, _)| *j != k).map(|(_, pr)| pr[i % pr.len()]).sum();
                    y[i] - s
                })
                .collect();
            // Fenced first, so an outlier does not lift a whole cycle's trend.
            let trend = moving_average(&fenced(&other), p);
            let cycles = (n / p).min(PROFILE_CYCLES);
            let start = n - cycles * p;
            let mut prof = vec![0.0; p];
            let mut vals = Vec::with_capacity(cycles);
            for (ph, slot) in prof.iter_mut().enumerate() {
                vals.clear();
                // Index i has phase i % p; walk the latest cycles.
                let first = start + (ph + p - start % p) % p;
                let mut i = first;
                while i < n {
                    vals.push(other[i] - trend[i]);
                    i += p;
                }
                *slot = median(&mut vals);
            }
            let mean = prof.iter().sum::<f64>() / p as f64;
            prof.iter_mut().for_each(|v| *v -= mean);
            profs[k] = prof;
        }
    }
    profs
}

/// `y` with values beyond 3 interquartile ranges of the quartiles pulled
/// back to that fence.
fn fenced(y: &[f64]) -> Vec<f64> {
    let mut s = y.to_vec();
    s.sort_by(f64::total_cmp);
    let q = |f: f64| s[((s.len() - 1) as f64 * f) as usize];
    let (q1, q3) = (q(0.25), q(0.75));
    let (lo, hi) = (q1 - 3.0 * (q3 - q1), q3 + 3.0 * (q3 - q1));
    y.iter().map(|v| v.clamp(lo, hi)).collect()
}

/// `y` less its seasonal profiles.
pub fn adjusted(y: &[f64], periods: &[usize]) -> Vec<f64> {
    let profs = profiles(y, periods);
    remove(y, &profs)
}

/// `y` less the given profiles.
pub fn remove(y: &[f64], profs: &[Vec<f64>]) -> Vec<f64> {
    y.iter()
        .enumerate()
        .map(|(i, v)| v - profs.iter().filter(|p| !p.is_empty()).map(|p| p[i % p.len()]).sum::<f64>())
        .collect()
}

/// The median (0 for none); reorders `v`.
pub fn median(v: &mut [f64]) -> f64 {
    if v.is_empty() {
        return 0.0;
    }
    v.sort_by(f64::total_cmp);
    let m = v.len() / 2;
    if v.len() % 2 == 1 { v[m] } else { (v[m - 1] + v[m]) / 2.0 }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn daily(n: usize, p: usize, weekly: bool) -> Vec<f64> {
        (0..n)
            .map(|i| {
                let d = (i as f64 / p as f64 * std::f64::consts::TAU).sin() * 10.0;
                let w = if weekly && (i / p) % 7 >= 5 { -8.0 } else { 0.0 };
                // A deterministic wiggle as noise.
                let noise = ((i * 7919) % 13) as f64 / 13.0 - 0.5;
                100.0 + 0.01 * i as f64 + d + w + noise
            })
            .collect()
    }

    #[test]
    fn calendar_periods_are_found_when_the_data_has_them() {
        // Hourly samples: 24 a day, 168 a week.
        let hour = 3_600_000;
        assert_eq!(detect(&daily(24 * 21, 24, true), hour), vec![24, 168]);
        assert_eq!(detect(&daily(24 * 21, 24, false), hour), vec![24]);
        // Too short for two weeks: only the day.
        assert_eq!(detect(&daily(24 * 10, 24, true), hour), vec![24]);
        // No cycle at all: nothing.
        let flat: Vec<f64> = (0..500).map(|i| ((i * 7919) % 13) as f64).collect();
        assert_eq!(detect(&flat, hour), Vec::<usize>::new());
        // A step that does not fit a day.
        assert_eq!(steps_in(DAY_MS, 7 * 3_600_000), None);
        assert_eq!(steps_in(DAY_MS, 300_000), Some(288));
    }

    #[test]
    fn a_profile_recovers_the_cycle_and_ignores_an_outlier() {
        let p = 24;
        let mut y = daily(p * 8, p, false);
        y[p * 7 + 6] += 1000.0;
        let prof = &profiles(&y, &[p])[0];
        for (ph, v) in prof.iter().enumerate() {
            let want = (ph as f64 / p as f64 * std::f64::consts::TAU).sin() * 10.0;
            assert!((v - want).abs() < 1.0, "phase {ph}: {v} vs {want}");
        }
    }
}

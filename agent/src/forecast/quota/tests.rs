use super::*;
use proptest::prelude::*;

/// 2026-11-30T00:00:00Z, a UTC midnight.
const T0: i64 = 1_764_460_800_000;
const MIN: i64 = 60_000;

/// A tiny deterministic generator (splitmix64): uniform in [-0.5, 0.5).
struct Noise(u64);

impl Noise {
    fn next(&mut self) -> f64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^= z >> 31;
        (z >> 11) as f64 / (1u64 << 53) as f64 - 0.5
    }
}

/// `days` of minute rows from T0 of `f(t in days)` plus uniform noise of `amp` (peak to peak).
fn minutes(days: i64, amp: f64, seed: u64, f: impl Fn(f64) -> f64) -> Vec<(i64, f64)> {
    let mut noise = Noise(seed);
    (0..days * 1440).map(|m| (T0 + m * MIN, f(m as f64 / 1440.0) + amp * noise.next())).collect()
}

/// Daily sine peaking at 06:00 UTC, in [-1, 1].
fn daily(t: f64) -> f64 {
    (t * std::f64::consts::TAU).sin()
}

/// Linear growth of 5 %/day with a multiplicative daily swing of ±30 %.
fn growing(t: f64) -> f64 {
    100.0 * (1.0 + 0.05 * t) * (1.0 + 0.3 * daily(t))
}

/// The first time (ms) at or after `from` days where `f` reaches `limit`, minute by minute.
fn true_crossing(f: impl Fn(f64) -> f64, limit: f64, from: f64, to: f64) -> Option<i64> {
    let (a, b) = ((from * 1440.0) as i64, (to * 1440.0) as i64);
    (a..=b).find(|&m| f(m as f64 / 1440.0) >= limit).map(|m| T0 + m * MIN)
}

const WEEK: i64 = 7 * DAY_MS;

#[test]
fn steady_growth_is_projected_to_cross_at_the_right_time() {
    let rows = minutes(14, 4.0, 1, growing);
    let at = T0 + 14 * DAY_MS;
    // The noiseless daily peak reaches the limit 4.25 days out (06:00 on day 18).
    let limit = 130.0 * (1.0 + 0.05 * 18.25);
    let truth = true_crossing(growing, limit, 14.0, 21.0).unwrap();
    let o = outlook(&rows, limit, at, WEEK);
    let reach = o.reach_at_ms.expect("reaches within the week");
    let err_h = (reach - truth) as f64 / HOUR_MS as f64;
    assert!(err_h.abs() <= 12.0, "reach off by {err_h:.1} h: {o:?}");
    let early = o.reach_early_at_ms.unwrap();
    assert!(early <= reach && early >= at, "{o:?}");
    // 5 %/day of a 130 peak.
    assert!((o.growth_per_day - 6.5).abs() < 0.5, "{o:?}");
    assert!((o.current - 130.0 * (1.0 + 0.05 * 13.25)).abs() < 5.0, "{o:?}");
    assert!((o.utilisation - o.current / limit).abs() < 1e-12);
    assert!(o.peak >= limit && o.peak < limit * 1.2, "{o:?}");
    assert_eq!(o.horizon_end_ms, at + WEEK);
    assert_eq!(o.basis, "hourly peaks, daily season, trend of daily peaks");
}

#[test]
fn growth_with_a_weekly_pattern_crosses_on_a_weekday_peak() {
    // Weekends (days 5 and 6 of each week from T0) at 70 %.
    let f = |t: f64| growing(t) * if (t as i64).rem_euclid(7) >= 5 { 0.7 } else { 1.0 };
    let rows = minutes(21, 4.0, 2, f);
    let at = T0 + 21 * DAY_MS;
    // Days 21..=25 are weekdays: the line through weekday peaks is what crosses.
    let limit = 130.0 * (1.0 + 0.05 * 24.25);
    let truth = true_crossing(f, limit, 21.0, 28.0).unwrap();
    let o = outlook(&rows, limit, at, WEEK);
    let err_h = (o.reach_at_ms.unwrap() - truth) as f64 / HOUR_MS as f64;
    assert!(err_h.abs() <= 12.0, "reach off by {err_h:.1} h: {o:?}");
    assert_eq!(o.basis, "hourly peaks, daily and weekly season, trend of daily peaks");
}

#[test]
fn a_flat_series_never_reaches() {
    let rows = minutes(14, 4.0, 3, |t| 100.0 + 30.0 * daily(t));
    let o = outlook(&rows, 200.0, T0 + 14 * DAY_MS, WEEK);
    assert_eq!(o.reach_at_ms, None, "{o:?}");
    assert_eq!(o.reach_early_at_ms, None, "{o:?}");
    assert!(o.growth_per_day.abs() < 0.5, "{o:?}");
    assert!((o.peak - 132.0).abs() < 4.0, "{o:?}");
}

#[test]
fn a_series_already_at_the_limit_reaches_now() {
    let rows = minutes(14, 4.0, 4, |t| 100.0 + 30.0 * daily(t));
    let at = T0 + 14 * DAY_MS;
    let o = outlook(&rows, 120.0, at, WEEK);
    assert_eq!(o.reach_at_ms, Some(at));
    assert_eq!(o.reach_early_at_ms, Some(at));
    assert!(o.utilisation > 1.0);
}

#[test]
fn decreasing_use_never_reaches() {
    let rows = minutes(14, 4.0, 5, |t| (200.0 - 7.0 * t) + 30.0 * daily(t));
    let o = outlook(&rows, 250.0, T0 + 14 * DAY_MS, WEEK);
    assert_eq!(o.reach_at_ms, None, "{o:?}");
    assert_eq!(o.reach_early_at_ms, None, "{o:?}");
    assert!(o.growth_per_day < -5.0, "{o:?}");
}

#[test]
fn an_old_spike_does_not_make_a_flat_series_reach() {
    let mut rows = minutes(14, 4.0, 6, |t| 100.0 + 30.0 * daily(t));
    // A load test: ten times the level for an hour, five days ago.
    for r in &mut rows[9 * 1440 + 600..9 * 1440 + 660] {
        r.1 *= 10.0;
    }
    let o = outlook(&rows, 300.0, T0 + 14 * DAY_MS, WEEK);
    assert_eq!(o.reach_at_ms, None, "{o:?}");
    assert!(o.peak < 140.0, "{o:?}");
}

#[test]
fn little_history_is_flat_at_the_recent_peak() {
    let rows = minutes(2, 0.0, 7, |t| 10.0 * t);
    let at = T0 + 2 * DAY_MS;
    let o = outlook(&rows, 100.0, at, WEEK);
    assert!(o.basis.starts_with("too little history for a trend"), "{o:?}");
    assert_eq!((o.reach_at_ms, o.growth_per_day), (None, 0.0));
    assert!((o.current - 20.0).abs() < 0.1 && o.peak == o.current, "{o:?}");
    let o = outlook(&rows, 15.0, at, WEEK);
    assert_eq!(o.reach_at_ms, Some(at));
}

#[test]
fn order_does_not_matter_and_the_future_is_ignored() {
    let rows = minutes(14, 4.0, 8, growing);
    let at = T0 + 14 * DAY_MS;
    let want = outlook(&rows, 250.0, at, WEEK);
    let mut shuffled: Vec<(i64, f64)> = rows.iter().rev().copied().collect();
    shuffled.push((at + HOUR_MS, 1e9));
    assert_eq!(outlook(&shuffled, 250.0, at, WEEK), want);
}

#[test]
fn garbage_gives_a_sane_answer() {
    let at = T0;
    let empty = outlook(&[], 10.0, at, WEEK);
    assert_eq!(empty.basis, "too little history");
    assert_eq!((empty.current, empty.reach_at_ms, empty.reach_early_at_ms), (0.0, None, None));
    let one = outlook(&[(at - MIN, 5.0)], 10.0, at, WEEK);
    assert_eq!((one.current, one.reach_at_ms), (5.0, None));
    let nan = outlook(&[(at - MIN, f64::NAN), (at - 2 * MIN, f64::INFINITY)], 10.0, at, WEEK);
    assert_eq!(nan.current, 0.0);
    let rows = minutes(14, 4.0, 9, growing);
    for limit in [0.0, -5.0, f64::NAN, f64::NEG_INFINITY] {
        let o = outlook(&rows, limit, T0 + 14 * DAY_MS, WEEK);
        assert_eq!((o.reach_at_ms, o.reach_early_at_ms, o.utilisation), (None, None, 0.0), "{limit}");
    }
    for (at, h) in [(i64::MIN, i64::MAX), (i64::MAX, i64::MAX), (0, -1), (T0, i64::MIN)] {
        let o = outlook(&rows, 100.0, at, h);
        assert!(o.horizon_end_ms >= at);
    }
}

proptest! {
    #[test]
    fn any_input_gives_a_finite_answer(
        rows in proptest::collection::vec((any::<i64>(), any::<f64>()), 0..200),
        near in proptest::collection::vec((0i64..40 * DAY_MS, -1e300f64..1e300), 0..400),
        limit in any::<f64>(),
        horizon in any::<i64>(),
    ) {
        let at = T0 + 30 * DAY_MS;
        let mut all = rows;
        all.extend(near.iter().map(|&(dt, v)| (at - dt, v)));
        let o = outlook(&all, limit, at, horizon);
        prop_assert!(o.current.is_finite() && o.peak.is_finite() && o.utilisation.is_finite());
        prop_assert!(o.growth_per_day.is_finite());
        for r in [o.reach_at_ms, o.reach_early_at_ms].into_iter().flatten() {
            prop_assert!(r >= at && r <= o.horizon_end_ms);
        }
    }
}

#[test]
fn littles_law() {
    assert_eq!(little_concurrency(100.0, 250.0), 25.0);
    assert_eq!(little_concurrency(-1.0, 250.0), 0.0);
    assert_eq!(little_concurrency(f64::NAN, 250.0), 0.0);
    assert_eq!(little_concurrency(f64::MAX, f64::MAX), 0.0);
}

#[test]
fn peak_second_counts_requests_and_spreads_busy_time() {
    let m = T0 + 5 * MIN;
    let mut p = PeakSecond::new(m + 12_345);
    assert_eq!(p.minute_start_ms(), m);
    // Three requests in second 10, one in second 20.
    for _ in 0..3 {
        assert!(p.observe(m + 10_100, 100.0));
    }
    assert!(p.observe(m + 20_000, 0.0));
    assert_eq!(p.peak_requests_per_s(), 3);
    assert!((p.peak_concurrency() - 0.3).abs() < 1e-9);
    // A 2.5 s request from 30.5 s: busy 500 ms in second 30, all of 31 and 32.
    p.observe(m + 30_500, 2_500.0);
    assert!((p.peak_concurrency() - 1.0).abs() < 1e-9);
    // Four long requests in flight through second 31: concurrency 5 there.
    for _ in 0..4 {
        p.observe(m + 31_000, 1_000.0);
    }
    assert!((p.peak_concurrency() - 5.0).abs() < 1e-9);
    // Started last minute and still busy 1.5 s into this one: busy time only.
    assert!(!p.observe(m - 500, 2_000.0));
    assert_eq!(p.peak_requests_per_s(), 4);
    assert!((p.busy_ms[0] - 1_000.0).abs() < 1e-9 && (p.busy_ms[1] - 500.0).abs() < 1e-9);
    // Garbage durations and far-off times change nothing.
    let before = p.clone();
    p.observe(m + 1_000, f64::NAN);
    p.observe(m + 1_000, -5.0);
    p.observe(i64::MIN, f64::INFINITY);
    p.observe(i64::MAX, 1e300);
    assert_eq!(p.busy_ms, before.busy_ms);
    p.reset(m + MIN);
    assert_eq!((p.peak_requests_per_s(), p.peak_concurrency(), p.minute_start_ms()), (0, 0.0, m + MIN));
}

/// The measurement behind the module doc: the crossing found by this
/// module and by `model::forecast` on the same hourly peaks, in hours from
/// the true crossing, per scenario. Run with `--ignored --nocapture`.
#[test]
#[ignore]
fn measure() {
    use crate::forecast::model;
    type Scenario = (&'static str, fn(f64) -> f64);
    let scenarios: [Scenario; 5] = [
        ("additive daily, +5/day", |t| 100.0 + 5.0 * t + 30.0 * daily(t)),
        ("multiplicative daily, +5 %/day", growing),
        ("weekly (weekends 70 %), +5 %/day", |t| growing(t) * if (t as i64).rem_euclid(7) >= 5 { 0.7 } else { 1.0 }),
        ("+2 %/day, noisy", |t| 100.0 * (1.0 + 0.02 * t) * (1.0 + 0.3 * daily(t))),
        ("flat (limit 10 % above the peak)", |t| 100.0 + 30.0 * daily(t)),
    ];
    println!("scenario | noise (uniform) | 5 seeds: this module (h) | early (h) | model::forecast on hourly peaks (h)");
    println!("--- | --- | --- | --- | ---");
    for (name, f) in scenarios {
        for amp in [4.0, 20.0] {
            let mut errs = (Vec::new(), Vec::new(), Vec::new());
            for seed in 0..5u64 {
                let days = 14;
                let rows = minutes(days, amp, 100 + seed, f);
                let at = T0 + days * DAY_MS;
                let flat = name.starts_with("flat");
                // Minute maxima reach the top of the noise: the peak to cross is f + amp/2.
                let g = |t: f64| f(t) + amp / 2.0;
                let day_peak = |d: f64| (0..1440).map(|m| g(d + m as f64 / 1440.0)).fold(f64::MIN, f64::max);
                // The limit: between the peaks of days 17 and 18 (10 % above the peak when flat),
                // so the crossing is day 18's peak hour.
                let limit = if flat { 1.1 * day_peak(13.0) } else { (day_peak(17.0) + day_peak(18.0)) / 2.0 };
                let truth = true_crossing(g, limit, 14.0, 21.0);
                let hours = |r: Option<i64>| match (r, truth) {
                    (Some(r), Some(t)) => format!("{:+.1}", (r - t) as f64 / HOUR_MS as f64),
                    (None, None) => "none ✓".into(),
                    (Some(r), None) => format!("false at +{:.0}", (r - at) as f64 / HOUR_MS as f64),
                    (None, Some(_)) => "missed".into(),
                };
                let o = outlook(&rows, limit, at, WEEK);
                errs.0.push(hours(o.reach_at_ms));
                errs.1.push(hours(o.reach_early_at_ms));
                let peaks = HourlyPeaks::new(&rows, at);
                let hourly: Vec<(i64, f64)> = peaks
                    .slots
                    .iter()
                    .enumerate()
                    .filter(|(_, v)| !v.is_nan())
                    .map(|(i, &v)| ((peaks.base + i as i64) * HOUR_MS, v))
                    .collect();
                let fc = model::forecast(&hourly, &model::Options { horizon: 24 * 7, ..Default::default() }).unwrap();
                errs.2.push(hours(fc.points.iter().find(|p| p.forecast >= limit).map(|p| p.ts_ms)));
            }
            println!("{name} | ±{} | {} | {} | {}", amp / 2.0, errs.0.join(" "), errs.1.join(" "), errs.2.join(" "));
        }
    }
}

//! Streaming, causal anomaly scores of one time series: `slo-agent
//! anomalies` (and, once they land, the agent's live detectors) feed rows to a [`Detector`] one
//! at a time and get a score in [0, 1] back for each. The score of a row
//! depends only on that row and the rows before it: no look-ahead, no second
//! pass, no knowledge of the series length.
//!
//! How (details in `docs/forecasts.md`, "Anomaly scores"):
//!
//! - The sampling step is the median of the first [`STEP_SAMPLES`] positive
//!   time gaps; gaps and irregular spacing are measured in steps from then on.
//! - Three forecasters run side by side on every row — Holt (level and
//!   trend), Holt plus a daily profile, Holt plus a weekly profile (the
//!   profiles are buckets on the UTC clock, so missing rows do not shift
//!   them) — each in error-correction form with the error clipped at
//!   [`CLIP`] scales, so a spike does not drag the model. The one with the
//!   lowest recent absolute error predicts (with hysteresis).
//! - Three detectors read its residual: the residual over its robust scale
//!   (spikes, dips, pattern breaks), a two-sided CUSUM of the standardised
//!   residuals (small level shifts), and the ratio of the short-term to the
//!   long-term residual energy (variance changes). The strongest, as a
//!   z-like number, becomes the score through `1 - 1/(1 + ((z - 3)/4)²)`.
//! - A level shift that persists re-levels the forecasters once it is sure
//!   ([`SHIFT_RUN`] rows beyond 3 scales on one side), so it scores high at
//!   its start and low once it is the new normal.
//! - The first [`WARMUP`] rows ramp the score up from 0 (scales are not known
//!   yet), so only glaring anomalies show during warm-up.
//!
//! Memory per series is fixed: [`Detector::BYTES`] at most (the two seasonal
//! profiles are capped at [`MAX_BUCKETS`] `f32`s each). Work per row is O(1).

/// Positive time gaps whose median is the step.
pub const STEP_SAMPLES: usize = 15;
/// Rows over which the score ramps up from 0.
pub const WARMUP: u64 = 60;
/// Residuals are clipped at this many scales before they update a model.
pub const CLIP: f64 = 4.0;
/// Rows in a row beyond 3 scales on one side that re-level the models.
pub const SHIFT_RUN: u32 = 5;
/// The most buckets a seasonal profile has (coarser buckets beyond).
pub const MAX_BUCKETS: usize = 336;

const DAY_MS: i64 = 86_400_000;
const WEEK_MS: i64 = 7 * DAY_MS;
/// Level smoothing.
const ALPHA: f64 = 0.12;
/// Trend smoothing (of the level's error).
const BETA: f64 = 0.01;
/// Trend damping per row.
const TREND_DAMPING: f64 = 0.99;
/// The CUSUM level (in scales) at which a drift is accepted as a shift.
const CUSUM_H: f64 = 10.0;
/// Seasonal profile smoothing (each bucket is seen once a period).
const GAMMA: f64 = 0.25;
/// Smoothing of the long-term absolute residual (the scale).
const SCALE_ALPHA: f64 = 0.02;
/// How much of the recent surprise is discounted.
const HABITUATION: f64 = 1.0;
/// Smoothing of the recent surprise.
const RECENT_ALPHA: f64 = 0.1;
/// Smoothing of the slow scale.
const SLOW_SCALE_ALPHA: f64 = 0.002;
/// The fraction of the slow scale below which the scale does not fall.
const SLOW_SCALE_FLOOR: f64 = 0.4;
/// Smoothing of the short-term squared standardised residual.
const SHORT_ALPHA: f64 = 0.1;
/// Smoothing of the forecasters' errors compared to choose one.
const ERR_ALPHA: f64 = 0.01;
/// The CUSUM's allowance (in scales).
const CUSUM_K: f64 = 0.5;
/// Mean absolute deviation → standard deviation for normal noise.
const MAD_TO_SD: f64 = 1.2533;

/// One forecaster: Holt's level and trend, optionally with a seasonal
/// profile of `buckets` buckets of `bucket_ms` each over the UTC clock.
#[derive(Debug, Clone)]
struct Model {
    bucket_ms: i64,
    /// Seasonal offsets; NaN until a bucket is first seen. Empty: no season.
    season: Vec<f32>,
    level: f64,
    trend: f64,
    /// A slow level the seasonal profile is measured from.
    baseline: f64,
    baseline_alpha: f64,
    /// Smoothed absolute (clipped) error, to choose a forecaster.
    err: f64,
    /// Rows this forecaster has seen.
    rows: u64,
    /// Rows before it may be chosen (a season must be seen once first).
    ready_after: u64,
}

impl Model {
    fn new(period_ms: i64, step_ms: i64, ready_after: u64) -> Model {
        let season = if period_ms == 0 {
            Vec::new()
        } else {
            let buckets = ((period_ms / step_ms.max(1)) as usize).clamp(1, MAX_BUCKETS);
            vec![f32::NAN; buckets]
        };
        let bucket_ms = if season.is_empty() { 0 } else { (period_ms / season.len() as i64).max(1) };
        let rows_per_period = (period_ms / step_ms.max(1)).max(1) as f64;
        let baseline_alpha = (2.0 / rows_per_period).clamp(0.002, 0.05);
        Model {
            bucket_ms,
            season,
            level: f64::NAN,
            trend: 0.0,
            baseline: f64::NAN,
            baseline_alpha,
            err: 0.0,
            rows: 0,
            ready_after,
        }
    }

    fn bucket(&self, ts_ms: i64) -> Option<usize> {
        if self.season.is_empty() {
            return None;
        }
        let period = self.bucket_ms * self.season.len() as i64;
        Some(((ts_ms.rem_euclid(period) / self.bucket_ms) as usize).min(self.season.len() - 1))
    }

    fn seasonal(&self, ts_ms: i64) -> f64 {
        match self.bucket(ts_ms) {
            Some(b) if self.season[b].is_finite() => f64::from(self.season[b]),
            _ => 0.0,
        }
    }

    fn predict(&self, ts_ms: i64, steps: f64) -> f64 {
        self.level + self.trend * steps + self.seasonal(ts_ms)
    }

    /// Takes the row; `limit` is the clip of the error (in value units).
    fn update(&mut self, ts_ms: i64, x: f64, steps: f64, limit: f64) {
        self.rows += 1;
        if !self.level.is_finite() {
            self.level = x;
            self.baseline = x;
            return;
        }
        let pred = self.predict(ts_ms, steps);
        let e = x - pred;
        let ec = clip(e, 0.0, limit);
        self.err += (1.0 / self.rows as f64).max(ERR_ALPHA) * (ec.abs() - self.err);
        self.level += self.trend * steps + ALPHA * ec;
        self.trend = (self.trend + ALPHA * BETA * ec) * TREND_DAMPING;
        if let Some(b) = self.bucket(ts_ms) {
            // The profile is learnt against a slow baseline, not the fast
            // level (which would otherwise follow the season and leave the
            // profile flat).
            let s = f64::from(self.season[b]);
            // The first periods are averaged, later ones smoothed.
            let periods = self.rows as f64 / self.season.len() as f64;
            let gamma = (1.0 / (periods + 1.0)).max(GAMMA);
            let s = if s.is_finite() { s + gamma * (clip(x - self.baseline, s, limit) - s) } else { x - self.baseline };
            self.season[b] = s as f32;
            let deseasoned = clip(x - s, self.baseline, limit);
            self.baseline += self.baseline_alpha * (deseasoned - self.baseline);
        }
    }

    /// Moves the level by `by` (a level shift accepted as the new normal).
    fn relevel(&mut self, by: f64) {
        self.level += by;
        self.baseline += by;
        self.trend = 0.0;
    }

    fn ready(&self) -> bool {
        self.rows >= self.ready_after && self.level.is_finite()
    }
}

/// The streaming anomaly detector of one series.
#[derive(Debug, Clone)]
pub struct Detector {
    rows: u64,
    last_ts: Option<i64>,
    gaps: [i64; STEP_SAMPLES],
    ngaps: usize,
    step_ms: i64,
    models: Vec<Model>,
    chosen: usize,
    /// Robust scale: smoothed absolute residual of the chosen forecaster.
    scale: f64,
    /// The same, smoothed slowly: a floor, so a quiet hour does not make
    /// ordinary noise look anomalous afterwards.
    slow_scale: f64,
    /// The smallest non-zero change seen (the data's quantum).
    quantum: f64,
    /// Smoothed absolute value (a floor for the scale of flat series).
    magnitude: f64,
    last_value: f64,
    short_energy: f64,
    cusum_hi: f64,
    cusum_lo: f64,
    run: u32,
    run_sum: f64,
    /// Smoothed recent surprise.
    recent_z: f64,
    /// Short-term mean residual (what a CUSUM alarm re-levels by).
    drift: f64,
}

impl Default for Detector {
    fn default() -> Detector {
        Detector::new()
    }
}

impl Detector {
    /// An upper bound of the memory one detector holds (struct and heap).
    pub const BYTES: usize = std::mem::size_of::<Detector>() + 3 * std::mem::size_of::<Model>() + 2 * MAX_BUCKETS * 4;

    pub fn new() -> Detector {
        Detector {
            rows: 0,
            last_ts: None,
            gaps: [0; STEP_SAMPLES],
            ngaps: 0,
            step_ms: 0,
            models: vec![Model::new(0, 1, 0)],
            chosen: 0,
            scale: 0.0,
            slow_scale: 0.0,
            quantum: f64::INFINITY,
            magnitude: 0.0,
            last_value: f64::NAN,
            short_energy: 1.0,
            cusum_hi: 0.0,
            cusum_lo: 0.0,
            run: 0,
            run_sum: 0.0,
            drift: 0.0,
            recent_z: 0.0,
        }
    }

    /// The step found (milliseconds), once [`STEP_SAMPLES`] gaps were seen.
    pub fn step_ms(&self) -> Option<i64> {
        (self.step_ms > 0).then_some(self.step_ms)
    }

    /// What the detector expects at `ts_ms` (the next row's time) before it
    /// sees the row: the chosen forecaster's prediction and the standard
    /// deviation the residual will be measured in. `None` before the first
    /// row. Reading it changes nothing (the score stays causal).
    pub fn expected(&self, ts_ms: i64) -> Option<(f64, f64)> {
        let last = self.last_ts?;
        let m = &self.models[self.chosen];
        if !m.level.is_finite() {
            return None;
        }
        let steps = if self.step_ms > 0 {
            (ts_ms.saturating_sub(last).max(0) as f64 / self.step_ms as f64).min(32.0)
        } else {
            1.0
        };
        let pred = m.predict(ts_ms, steps);
        pred.is_finite().then(|| (pred, self.sd()))
    }

    /// Which forecaster predicts: 0 level and trend, 1 daily, 2 weekly.
    pub fn chosen(&self) -> usize {
        self.chosen
    }

    /// Scores the next row (timestamps in milliseconds, not decreasing) and
    /// learns from it. Always a finite number in [0, 1]; a non-finite value
    /// scores 0 and is not learnt.
    pub fn score(&mut self, ts_ms: i64, value: f64) -> f64 {
        if !value.is_finite() {
            return 0.0;
        }
        // Work on a bounded copy: values near f64::MAX would overflow sums.
        let x = value.clamp(-1e300, 1e300);
        let steps = self.steps_since(ts_ms);
        self.rows += 1;
        let raw = if self.rows == 1 { 0.0 } else { self.surprise(ts_ms, x, steps) };
        // What has been surprising for a while is less so: the score is the
        // surprise beyond the recent surprises, so an anomaly scores high at
        // its start and a long one does not keep alarming.
        let z = (raw - HABITUATION * self.recent_z).max(0.0);
        self.recent_z += RECENT_ALPHA * (raw.min(20.0) - self.recent_z);
        self.learn(ts_ms, x, steps);
        let ramp = (self.rows as f64 / WARMUP as f64).min(1.0);
        let s = to_score(z) * ramp * ramp;
        if s.is_finite() { s.clamp(0.0, 1.0) } else { 0.0 }
    }

    /// Steps since the previous row (1 until the step is known), and the step's learning.
    fn steps_since(&mut self, ts_ms: i64) -> f64 {
        let Some(last) = self.last_ts.replace(ts_ms) else { return 1.0 };
        let gap = ts_ms.saturating_sub(last);
        if self.step_ms == 0 {
            if gap > 0 {
                self.gaps[self.ngaps] = gap;
                self.ngaps += 1;
                if self.ngaps == STEP_SAMPLES {
                    let mut g = self.gaps;
                    g.sort_unstable();
                    self.step_ms = g[STEP_SAMPLES / 2];
                    self.add_seasonal_models();
                }
            }
            return 1.0;
        }
        (gap.max(0) as f64 / self.step_ms as f64).min(1e6)
    }

    fn add_seasonal_models(&mut self) {
        for period in [DAY_MS, WEEK_MS] {
            // A season needs at least 8 rows a period to be seen.
            if period / self.step_ms >= 8 {
                let rows_per_period = (period / self.step_ms) as u64;
                let mut m = Model::new(period, self.step_ms, rows_per_period + rows_per_period / 2);
                // Start from the level model's state.
                m.level = self.models[0].level;
                m.baseline = self.models[0].level;
                self.models.push(m);
            }
        }
    }

    /// The residual's surprise as a z-like number (0 when it is ordinary).
    fn surprise(&mut self, ts_ms: i64, x: f64, steps: f64) -> f64 {
        let m = &self.models[self.chosen];
        // Trends are not projected across long gaps.
        let pred = m.predict(ts_ms, steps.min(32.0));
        let r = x - pred;
        let sd = self.sd();
        let u = r / sd;
        let point = u.abs();
        self.short_energy += SHORT_ALPHA * (clip(u, 0.0, 10.0).powi(2) - self.short_energy);
        let variance = 3.0 * (self.short_energy.sqrt() - 1.5).max(0.0);
        let uc = clip(u, 0.0, CLIP);
        self.cusum_hi = (self.cusum_hi + uc - CUSUM_K).max(0.0);
        self.cusum_lo = (self.cusum_lo - uc - CUSUM_K).max(0.0);
        let cusum = 0.6 * self.cusum_hi.max(self.cusum_lo);
        self.drift += SHORT_ALPHA * (clip(r, 0.0, CLIP * sd) - self.drift);
        if self.cusum_hi.max(self.cusum_lo) >= CUSUM_H {
            // A drift this long is the new normal: move there, start again.
            for m in &mut self.models {
                m.relevel(self.drift);
            }
            self.cusum_hi = 0.0;
            self.cusum_lo = 0.0;
            self.drift = 0.0;
        }
        // A run beyond 3 sd on one side is a level shift: accept it.
        if point > 3.0 && (self.run == 0 || self.run_sum.signum() == r.signum()) {
            self.run += 1;
            self.run_sum += r;
        } else {
            self.run = 0;
            self.run_sum = 0.0;
        }
        if self.run >= SHIFT_RUN {
            let by = self.run_sum / f64::from(self.run);
            for m in &mut self.models {
                m.relevel(by);
            }
            self.run = 0;
            self.run_sum = 0.0;
            self.cusum_hi = 0.0;
            self.cusum_lo = 0.0;
        }
        if self.rows > 2 && x != self.last_value {
            self.quantum = self.quantum.min((x - self.last_value).abs());
        }
        point.max(cusum).max(variance)
    }

    /// The standard deviation the residual is measured in, with floors for
    /// flat and quantised series.
    fn sd(&self) -> f64 {
        let q = if self.quantum.is_finite() { self.quantum } else { 0.0 };
        let floor = (0.5 * q).max(1e-3 * self.magnitude).max(1e-9);
        (MAD_TO_SD * self.scale.max(SLOW_SCALE_FLOOR * self.slow_scale)).max(floor)
    }

    fn learn(&mut self, ts_ms: i64, x: f64, steps: f64) {
        let limit = CLIP * self.sd();
        // The scale follows the chosen forecaster's clipped error; faster at first.
        // A repeated value (a stuck or idle metric) says nothing about the
        // noise: learning from it would shrink the scale until the metric's
        // return looked like an anomaly.
        if self.rows > 1 && x != self.last_value {
            let r = (x - self.models[self.chosen].predict(ts_ms, steps.min(32.0))).abs();
            let a = (1.0 / self.rows as f64).max(SCALE_ALPHA);
            let r = if self.rows > 10 { r.min(limit) } else { r };
            self.scale += a * (r - self.scale);
            let a = (1.0 / self.rows as f64).max(SLOW_SCALE_ALPHA);
            self.slow_scale += a * (r - self.slow_scale);
        }
        let a = (1.0 / self.rows as f64).max(SCALE_ALPHA);
        self.magnitude += a * (x.abs() - self.magnitude);
        let limit = if self.rows > 10 { limit } else { f64::MAX };
        for m in &mut self.models {
            m.update(ts_ms, x, steps.min(32.0), limit);
        }
        // Choose the forecaster with the lowest error; switch only for a clear gain.
        let current = self.models[self.chosen].err;
        let mut best = self.chosen;
        for (i, m) in self.models.iter().enumerate() {
            if m.ready() && m.err < 0.85 * current && m.err < self.models[best].err {
                best = i;
            }
        }
        if best != self.chosen {
            // The scale measured the old forecaster's errors.
            self.scale = self.models[best].err;
            self.slow_scale = self.slow_scale.min(self.scale);
            self.chosen = best;
        }
        self.last_value = x;
    }
}

/// `v` kept within `around ± limit` (never panics, unlike `f64::clamp`, on NaN bounds).
fn clip(v: f64, around: f64, limit: f64) -> f64 {
    v.min(around + limit).max(around - limit)
}

/// A z-like surprise → a score in [0, 1): 0 up to 3, 0.5 at 7, 0.8 at 11.
pub fn to_score(z: f64) -> f64 {
    let e = ((z - 3.0) / 4.0).max(0.0);
    let s = 1.0 - 1.0 / (1.0 + e * e);
    if s.is_finite() { s } else { 1.0 }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const T0: i64 = 1_767_571_200_000; // 2026-01-05T00:00:00Z, a Monday
    const FIVE_MIN: i64 = 300_000;

    /// Deterministic noise, roughly normal with standard deviation 1.
    struct Noise(u64);
    impl Noise {
        fn next(&mut self) -> f64 {
            let mut sum = 0.0;
            for _ in 0..4 {
                self.0 ^= self.0 << 13;
                self.0 ^= self.0 >> 7;
                self.0 ^= self.0 << 17;
                sum += (self.0 >> 11) as f64 / (1u64 << 53) as f64;
            }
            (sum - 2.0) * 3f64.sqrt()
        }
    }

    /// Six days of a 5-minute daily-seasonal series with noise.
    fn seasonal(seed: u64) -> Vec<(i64, f64)> {
        let mut noise = Noise(seed);
        (0..6 * 288)
            .map(|i| {
                let phase = (i % 288) as f64 / 288.0 * std::f64::consts::TAU;
                (T0 + i as i64 * FIVE_MIN, 100.0 + 30.0 * phase.sin() + 2.0 * noise.next())
            })
            .collect()
    }

    fn scores(rows: &[(i64, f64)]) -> Vec<f64> {
        let mut d = Detector::new();
        rows.iter().map(|&(t, v)| d.score(t, v)).collect()
    }

    #[test]
    fn the_expected_band_follows_the_season_and_holds_the_next_row() {
        let rows = seasonal(7);
        let mut d = Detector::new();
        assert_eq!(d.expected(T0), None);
        let mut inside = 0;
        let mut checked = 0;
        for (i, &(t, v)) in rows.iter().enumerate() {
            if i >= 3 * 288 {
                let (pred, sd) = d.expected(t).expect("a band after the first row");
                let before = d.clone();
                checked += 1;
                if (v - pred).abs() <= 3.0 * sd {
                    inside += 1;
                }
                // Reading the band learns nothing.
                assert_eq!(format!("{before:?}"), format!("{d:?}"));
            }
            d.score(t, v);
        }
        assert!(inside as f64 >= 0.97 * checked as f64, "{inside} of {checked} rows within 3 sd");
    }

    /// Scores above `level` after warm-up, except within `near` rows after `at`.
    fn high_elsewhere(s: &[f64], level: f64, at: &[usize], near: usize) -> usize {
        s.iter()
            .enumerate()
            .filter(|&(i, &x)| i >= 2 * 288 && x > level && !at.iter().any(|&a| i >= a && i <= a + near))
            .count()
    }

    #[test]
    fn the_step_and_the_daily_season_are_found() {
        let rows = seasonal(7);
        let mut d = Detector::new();
        for &(t, v) in &rows {
            d.score(t, v);
        }
        assert_eq!(d.step_ms(), Some(FIVE_MIN));
        assert_eq!(d.chosen(), 1, "the daily forecaster should predict a daily series");
    }

    #[test]
    fn a_spike_a_dip_and_a_level_shift_score_high_where_they_happen_and_nowhere_else() {
        let mut rows = seasonal(11);
        rows[1000].1 += 25.0; // a spike of 12 sd
        rows[1200].1 -= 25.0; // a dip
        for r in &mut rows[1500..] {
            r.1 += 20.0; // a level shift
        }
        let s = scores(&rows);
        let mut elsewhere = s.clone();
        for at in [1000, 1200, 1500] {
            elsewhere[at..at + 10].fill(0.0);
        }
        let elsewhere = elsewhere[2 * 288..].iter().copied().fold(0.0, f64::max);
        for at in [1000, 1200, 1500] {
            assert!(s[at] > 0.35 && s[at] > elsewhere, "row {at} scores {}, elsewhere up to {elsewhere}", s[at]);
        }
        let others = high_elsewhere(&s, 0.25, &[1000, 1200, 1500], 10);
        assert!(others <= 2, "{others} rows above 0.25 away from the anomalies");
        // The shift becomes the new normal.
        assert!(s[1560..].iter().all(|&x| x < 0.3), "{:?}", &s[1560..1600]);
    }

    #[test]
    fn a_clean_seasonal_series_and_a_flat_one_score_low() {
        for seed in [1, 2, 3] {
            let s = scores(&seasonal(seed));
            let high = high_elsewhere(&s, 0.3, &[], 0);
            assert!(high <= 3, "seed {seed}: {high} rows above 0.3");
        }
        let flat: Vec<(i64, f64)> = (0..2000).map(|i| (T0 + i * 60_000, 42.0)).collect();
        assert!(scores(&flat).iter().all(|&x| x == 0.0));
        // A quantised, mostly idle metric: a single one-unit blip is ordinary.
        let idle: Vec<(i64, f64)> = (0..2000).map(|i| (T0 + i * 60_000, if i % 97 == 0 { 1.0 } else { 0.0 })).collect();
        assert!(high_elsewhere(&scores(&idle), 0.3, &[], 0) == 0);
    }

    #[test]
    fn a_metric_that_stalls_and_resumes_does_not_alarm_on_its_noise() {
        let mut rows = seasonal(5);
        let stuck = rows[900].1;
        for r in &mut rows[900..1100] {
            r.1 = stuck;
        }
        let s = scores(&rows);
        // Its return is a change (a few rows), not a day of alarms.
        assert!(high_elsewhere(&s, 0.3, &[900, 1100], 20) <= 2, "{:?}", &s[1100..1200]);
    }

    #[test]
    fn gaps_and_irregular_spacing_keep_the_season() {
        let rows: Vec<(i64, f64)> = seasonal(9)
            .into_iter()
            .enumerate()
            .filter(|(i, _)| i % 7 != 3 && !(800..900).contains(i))
            .map(|(_, r)| r)
            .collect();
        let s = scores(&rows);
        assert!(high_elsewhere(&s, 0.3, &[], 0) <= 3);
    }

    #[test]
    fn hostile_values_and_timestamps_give_scores_in_range() {
        let mut d = Detector::new();
        let values = [0.0, f64::MAX, -f64::MAX, 1e-300, f64::NAN, f64::INFINITY, 5.0, -1e308, 3.0];
        let times = [0, 0, i64::MAX, i64::MIN, 5, 5, -1, i64::MAX, 0];
        for round in 0..50 {
            for (i, (&v, &t)) in values.iter().zip(&times).enumerate() {
                let s = d.score(t.wrapping_add(round * i as i64), v);
                assert!((0.0..=1.0).contains(&s), "{s}");
            }
        }
    }

    #[test]
    fn the_memory_bound_holds() {
        const { assert!(Detector::BYTES < 4096) };
        // The profiles are the bulk, and they are capped.
        let mut d = Detector::new();
        for i in 0..5000 {
            d.score(i * 1000, i as f64);
        }
        let heap: usize = d.models.iter().map(|m| m.season.capacity() * 4).sum();
        assert!(heap <= 2 * MAX_BUCKETS * 4, "{heap}");
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        /// No look-ahead: the scores of a prefix are the first scores of the
        /// whole series, and two runs agree (determinism).
        #[test]
        fn a_rows_score_does_not_depend_on_later_rows(
            values in proptest::collection::vec(-1e6f64..1e6, 1..600),
            gaps in proptest::collection::vec(0i64..900_000, 600),
            cut in 0usize..600,
        ) {
            let mut t = T0;
            let rows: Vec<(i64, f64)> = values.iter().zip(&gaps).map(|(&v, &g)| { t += g; (t, v) }).collect();
            let whole = scores(&rows);
            let cut = cut.min(rows.len());
            let prefix = scores(&rows[..cut]);
            prop_assert_eq!(&whole[..cut], &prefix[..]);
            prop_assert_eq!(whole.clone(), scores(&rows));
            prop_assert!(whole.iter().all(|s| (0.0..=1.0).contains(s)));
        }
    }

    proptest! {
        /// Any numbers at all (NaN, infinities, extreme and backward times): a score in [0, 1].
        #[test]
        fn any_numbers_give_scores_in_range(rows in proptest::collection::vec((any::<i64>(), any::<f64>()), 0..300)) {
            let mut d = Detector::new();
            for (t, v) in rows {
                let s = d.score(t, v);
                prop_assert!((0.0..=1.0).contains(&s), "{}", s);
            }
        }
    }
}

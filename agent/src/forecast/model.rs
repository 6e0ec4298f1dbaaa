//! The forecaster: a series of `(timestamp, value)` in, the next H steps
//! with a prediction interval out. The same code serves `slo-agent
//! forecast` and, once they land, the agent's live forecasts.
//!
//! How (see docs/forecasts.md, "Forecasts"):
//! 1. The rows go on a regular grid at the series' step ([`step_of`]);
//!    rows sharing a slot are averaged, missing slots interpolated.
//! 2. Seasonal periods (given, or [`season::detect`]ed) are removed as
//!    robust per-phase medians of the latest cycles.
//! 3. On what is left, outliers (far from a running median) are replaced,
//!    then SES, Theta (SES plus half the recent drift), a damped-trend
//!    Holt, a least-squares line and the median of the first three
//!    forecast it, weighted by how well each forecast the series' own tail
//!    (`model_weights`); the seasonal profiles are added back.
//!    For a positive seasonal series, steps 2–3 are also tried on the
//!    logarithms (seasons that multiply the level), and kept when they
//!    forecast the held-out tail better (`multiplicative`).
//! 4. The interval is the empirical quantile of the errors, at lags 1, 2, 4,
//!    … H, of the SES level against the raw (uncleaned) adjusted series.
//!
//! Work is bounded: at most [`MAX_GRID`] grid points (the latest) and
//! [`MAX_HORIZON`] steps; memory is a handful of `f64` vectors of the grid.
//! Deterministic: no randomness, fixed parameter grids.

use super::season;

/// The longest horizon (steps).
pub const MAX_HORIZON: usize = 100_000;
/// The most grid points used (the latest ones): 1.7 weeks of seconds, a
/// year of minutes.
pub const MAX_GRID: usize = 600_000;
/// The longest seasonal period (steps).
pub const MAX_PERIOD: usize = 100_000;
/// Errors at each lag over at most this many latest steps set the interval.
const ERROR_WINDOW: usize = 20_000;

#[derive(Debug, Clone, PartialEq)]
pub struct Options {
    pub horizon: usize,
    /// Seasonal periods in steps; empty: detect them.
    pub seasons: Vec<usize>,
    /// The interval's coverage, in (0, 1): 0.95 by default.
    pub level: f64,
}

impl Default for Options {
    fn default() -> Options {
        Options { horizon: 1, seasons: Vec::new(), level: 0.95 }
    }
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Point {
    pub ts_ms: i64,
    pub forecast: f64,
    pub lo: f64,
    pub hi: f64,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Forecast {
    /// The series' step (ms).
    pub step_ms: i64,
    /// The seasonal periods used (steps).
    pub seasons: Vec<usize>,
    pub points: Vec<Point>,
    /// What was simplified or dropped, for the user (e.g. a season too long for the data).
    pub notes: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ForecastError {
    #[error("no rows to forecast from")]
    NoRows,
    #[error("cannot tell the series' step: it needs two rows with different timestamps")]
    NoStep,
    #[error("the horizon {0} is out of range: 1..={MAX_HORIZON} steps")]
    Horizon(usize),
    #[error("the season {0} is out of range: 2..={MAX_PERIOD} steps")]
    Season(usize),
    #[error("the interval level {0} is out of range: between 0 and 1 (exclusive)")]
    Level(String),
    #[error("the forecast's timestamps would run past the year 9999")]
    PastRange,
}

/// The latest time a forecast may name (9999-12-31T23:59:59Z).
const LAST_MS: i64 = 253_402_300_799_000;

/// Forecasts `opts.horizon` steps after the last row. Rows must be in time order.
pub fn forecast(rows: &[(i64, f64)], opts: &Options) -> Result<Forecast, ForecastError> {
    if opts.horizon == 0 || opts.horizon > MAX_HORIZON {
        return Err(ForecastError::Horizon(opts.horizon));
    }
    if let Some(&s) = opts.seasons.iter().find(|&&s| !(2..=MAX_PERIOD).contains(&s)) {
        return Err(ForecastError::Season(s));
    }
    if !(opts.level > 0.0 && opts.level < 1.0) {
        return Err(ForecastError::Level(opts.level.to_string()));
    }
    let (Some(first), Some(last)) = (rows.first(), rows.last()) else { return Err(ForecastError::NoRows) };
    let step = step_of(rows).ok_or(ForecastError::NoStep)?;
    let end = (last.0 as i128) + (opts.horizon as i128) * (step as i128);
    if end > LAST_MS as i128 {
        return Err(ForecastError::PastRange);
    }
    let mut notes = Vec::new();

    // Seasons are chosen on the values as they are (and the notes said) once.
    let (center, half_scale) = scaling(rows);
    let (grid, dropped) = regular_grid(rows, step, first.0, last.0, center, half_scale);
    if dropped > 0 {
        notes.push(format!("used the latest {} steps only ({dropped} earlier rows left out)", grid.len()));
    }
    let n = grid.len();
    let seasons = if opts.seasons.is_empty() {
        season::detect(&clean_outliers(&grid), step)
    } else {
        let mut kept = Vec::new();
        for &p in &opts.seasons {
            if n >= 2 * p && !kept.contains(&p) {
                kept.push(p);
            } else if !kept.contains(&p) {
                notes.push(format!(
                    "season {p} left out: it needs at least {} rows on the step grid, the series has {n}",
                    2 * p
                ));
            }
        }
        kept.sort_unstable();
        kept
    };
    drop(grid);

    let logs = multiplicative(rows, step, &seasons, opts.horizon, opts.level);
    let level = match &logs {
        Some(log_rows) => fit(log_rows, step, &seasons, opts.horizon, opts.level)
            .into_iter()
            .map(|(f, lo, hi)| (f.exp(), lo.exp(), hi.exp()))
            .collect(),
        None => fit(rows, step, &seasons, opts.horizon, opts.level),
    };

    let mut points = Vec::with_capacity(opts.horizon);
    for (h, (mut f, mut lo, mut hi)) in (1..=opts.horizon).zip(level) {
        if !f.is_finite() {
            f = last.1;
        }
        if !(lo.is_finite() && lo <= f) {
            lo = f;
        }
        if !(hi.is_finite() && hi >= f) {
            hi = f;
        }
        points.push(Point { ts_ms: last.0 + h as i64 * step, forecast: f, lo, hi });
    }
    Ok(Forecast { step_ms: step, seasons, points, notes })
}

/// The forecast and interval per step, in the rows' units: the rows on the
/// grid, less their seasonal profiles, cleaned, forecast by the level
/// models, the profiles added back.
fn fit(rows: &[(i64, f64)], step: i64, seasons: &[usize], horizon: usize, level: f64) -> Vec<(f64, f64, f64)> {
    // Work in scaled units (values centred and divided by their spread) so no
    // sum overflows, whatever the magnitudes.
    let (center, half_scale) = scaling(rows);
    let (first, last) = (rows[0].0, rows[rows.len() - 1].0);
    let (grid, _) = regular_grid(rows, step, first, last, center, half_scale);
    let n = grid.len();
    let seasons: Vec<usize> = seasons.iter().copied().filter(|&p| n >= 2 * p).collect();
    let profs = season::profiles(&grid, &seasons);
    let raw = season::remove(&grid, &profs);
    let clean = clean_outliers(&raw);
    let lev = level_forecast(&clean, &raw, horizon, level, seasons.iter().max().copied());
    (1..=horizon)
        .zip(lev)
        .map(|(h, (f, lo, hi))| {
            let idx = n - 1 + h;
            let s: f64 = profs.iter().filter(|p| !p.is_empty()).map(|p| p[idx % p.len()]).sum();
            let back = |z: f64| unscale(z + s, center, half_scale);
            (back(f), back(lo), back(hi))
        })
        .collect()
}

/// The rows' logarithms when the series is positive and its seasons are
/// better modelled as multiplying the level than as adding to it (a cycle
/// that grows with the level): on the series' own tail — fit on all but the
/// last k steps (k the horizon, at most a quarter of the series), both ways,
/// and the log way's mean absolute error over those k is the smaller.
fn multiplicative(
    rows: &[(i64, f64)],
    step: i64,
    seasons: &[usize],
    horizon: usize,
    level: f64,
) -> Option<Vec<(i64, f64)>> {
    if seasons.is_empty() || rows.iter().any(|r| !(r.1 > 0.0 && r.1.is_finite())) {
        return None;
    }
    let last = rows[rows.len() - 1].0;
    let span = (last as i128 - rows[0].0 as i128) / step as i128;
    if span < 0 {
        return None;
    }
    let n = (span.min(MAX_GRID as i128 - 1) + 1) as usize;
    let k = horizon.min(n / 4);
    if k == 0 || n < 60 {
        return None;
    }
    let cut = last as i128 - k as i128 * step as i128;
    let split = rows.partition_point(|r| (r.0 as i128) <= cut);
    if split < 3 || split >= rows.len() {
        return None;
    }
    let (train, test) = rows.split_at(split);
    let logs: Vec<(i64, f64)> = rows.iter().map(|r| (r.0, r.1.ln())).collect();
    let train_end = train[train.len() - 1].0;
    let score = |fc: &[(f64, f64, f64)]| -> f64 {
        // Each held-out row against the forecast for its grid step.
        let mut sum = 0.0;
        for &(ts, v) in test {
            let h = ((ts as i128 - train_end as i128 + step as i128 / 2) / step as i128).max(1) as usize;
            let f = fc.get(h - 1).or(fc.last()).map_or(f64::NAN, |p| p.0);
            sum += (f - v).abs();
        }
        sum / test.len() as f64
    };
    let add = score(&fit(train, step, seasons, k, level));
    let log_fc: Vec<(f64, f64, f64)> = fit(&logs[..split], step, seasons, k, level)
        .into_iter()
        .map(|(f, lo, hi)| (f.exp(), lo.exp(), hi.exp()))
        .collect();
    let mul = score(&log_fc);
    (mul < add).then_some(logs)
}

/// The series' step: the median of the single-step spacings (those at most
/// 1.5 × the lower quartile of all positive spacings: a missing row makes a
/// longer one), snapped to a round step (1 s … 1 day) within 3 %, else to
/// the millisecond.
pub fn step_of(rows: &[(i64, f64)]) -> Option<i64> {
    let mut d: Vec<i64> = rows.windows(2).map(|w| w[1].0.saturating_sub(w[0].0)).filter(|&d| d > 0).collect();
    if d.is_empty() {
        return None;
    }
    let q = d.len() / 4;
    let q1 = *d.select_nth_unstable(q).1;
    let mut single: Vec<i64> = d.into_iter().filter(|&x| x as f64 <= q1 as f64 * 1.5).collect();
    let m = single.len() / 2;
    let step = *single.select_nth_unstable(m).1;
    const S: i64 = 1000;
    const ROUND: [i64; 19] = [
        S,
        2 * S,
        5 * S,
        10 * S,
        15 * S,
        30 * S,
        60 * S,
        120 * S,
        300 * S,
        600 * S,
        900 * S,
        1800 * S,
        3600 * S,
        7200 * S,
        3 * 3600 * S,
        6 * 3600 * S,
        12 * 3600 * S,
        86_400 * S,
        7 * 86_400 * S,
    ];
    let snapped = ROUND.iter().copied().find(|&r| ((step - r).abs() as f64) <= r as f64 * 0.03);
    Some(snapped.unwrap_or(step).max(1))
}

/// The values' median and half their largest distance from it (never 0).
fn scaling(rows: &[(i64, f64)]) -> (f64, f64) {
    let mut v: Vec<f64> = rows.iter().map(|r| r.1).collect();
    let center = season::median(&mut v);
    let half = rows.iter().map(|r| (r.1 * 0.5 - center * 0.5).abs()).fold(0.0, f64::max);
    let half = if half > 0.0 && half.is_finite() { half } else { 1.0 };
    (center, half)
}

fn unscale(z: f64, center: f64, half_scale: f64) -> f64 {
    let v = center + half_scale * z * 2.0;
    if v.is_finite() { v } else { v.clamp(f64::MIN, f64::MAX) }
}

/// The series on a grid of `step` ending at the last row: slot values are
/// the mean of the rows rounded to them, empty slots are interpolated. At
/// most [`MAX_GRID`] slots; returns how many rows fell before them.
fn regular_grid(rows: &[(i64, f64)], step: i64, first: i64, last: i64, center: f64, half: f64) -> (Vec<f64>, usize) {
    let span = ((last as i128 - first as i128) / step as i128) as u128;
    let n = (span.min(MAX_GRID as u128 - 1) + 1) as usize;
    let t0 = last as i128 - (n as i128 - 1) * step as i128;
    let mut sum = vec![0.0; n];
    let mut count = vec![0u32; n];
    let mut dropped = 0;
    for &(ts, v) in rows {
        let off = ts as i128 - t0;
        let idx = (off + step as i128 / 2).div_euclid(step as i128);
        if idx < 0 {
            dropped += 1;
            continue;
        }
        let idx = (idx as usize).min(n - 1);
        sum[idx] += (v * 0.5 - center * 0.5) / half;
        count[idx] = count[idx].saturating_add(1);
    }
    let mut y: Vec<f64> = vec![f64::NAN; n];
    for i in 0..n {
        if count[i] > 0 {
            y[i] = sum[i] / count[i] as f64;
        }
    }
    // Interpolate the gaps; before the first known slot, repeat it.
    let mut prev: Option<usize> = None;
    for i in 0..n {
        if y[i].is_nan() {
            continue;
        }
        match prev {
            None => {
                let first = y[i];
                y[..i].iter_mut().for_each(|v| *v = first);
            }
            Some(p) if i > p + 1 => {
                let (a, b) = (y[p], y[i]);
                for (k, slot) in (p + 1..i).enumerate() {
                    y[slot] = a + (b - a) * (k + 1) as f64 / (i - p) as f64;
                }
            }
            _ => {}
        }
        prev = Some(i);
    }
    (y, dropped)
}

/// Points further than 5 robust deviations from a running median of 9 are
/// replaced by that median (a level shift lasts longer than 4 points and
/// stays).
fn clean_outliers(y: &[f64]) -> Vec<f64> {
    let n = y.len();
    if n < 9 {
        return y.to_vec();
    }
    let mut window = Vec::with_capacity(9);
    // Windows shrink at the ends (a window shifted inward would lag a trend).
    let med: Vec<f64> = (0..n)
        .map(|i| {
            window.clear();
            window.extend_from_slice(&y[i.saturating_sub(4)..(i + 5).min(n)]);
            season::median(&mut window)
        })
        .collect();
    let mut dev: Vec<f64> = y.iter().zip(&med).map(|(v, m)| (v - m).abs()).collect();
    let mad = season::median(&mut dev.clone());
    dev.clear();
    // A series flat but for spikes has no spread at all: its spikes go too.
    let limit = (5.0 * 1.4826 * mad).max(1e-9);
    // The last points have one-sided windows: only a gross spike goes there.
    (0..n)
        .map(|i| {
            let lim = if i + 4 >= n { 3.0 * limit } else { limit };
            if (y[i] - med[i]).abs() > lim { med[i] } else { y[i] }
        })
        .collect()
}

/// Simple exponential smoothing: the smoothing weight (from a fixed grid)
/// with the least squared one-step error, and the final level.
fn ses(y: &[f64]) -> (f64, f64) {
    let mut best = (f64::INFINITY, 1.0, y[y.len() - 1]);
    for alpha in [0.02, 0.05, 0.1, 0.2, 0.3, 0.5, 0.7, 0.9, 1.0] {
        let mut l = y[0];
        let mut sse = 0.0;
        for &v in &y[1..] {
            let e = v - l;
            sse += e * e;
            l += alpha * e;
        }
        if sse < best.0 {
            best = (sse, alpha, l);
        }
    }
    (best.1, best.2)
}

/// Holt's trend model: level, trend and damping from a fixed grid (damping
/// 1 is the undamped linear trend).
fn holt(y: &[f64], horizon: usize, phis: &[f64]) -> Vec<f64> {
    let mut best: (f64, f64, f64, f64) = (f64::INFINITY, y[y.len() - 1], 0.0, 0.9);
    for alpha in [0.1, 0.3, 0.5, 0.8, 1.0] {
        for beta in [0.01, 0.05, 0.15] {
            for &phi in phis {
                let mut l = y[0];
                let mut b = if y.len() > 1 { y[1] - y[0] } else { 0.0 };
                let mut sse = 0.0;
                for &v in &y[1..] {
                    let f = l + phi * b;
                    let e = v - f;
                    sse += e * e;
                    let nl = f + alpha * e;
                    b = phi * b + beta * alpha * e;
                    l = nl;
                }
                if sse < best.0 {
                    best = (sse, l, b, phi);
                }
            }
        }
    }
    let (_, l, b, phi) = best;
    let mut out = Vec::with_capacity(horizon);
    let mut damp = 0.0;
    let mut pw = 1.0;
    for _ in 0..horizon {
        pw *= phi;
        damp += pw;
        out.push(l + damp * b);
    }
    out
}

/// The least-squares line through the latest `w` points, extended `horizon` steps.
fn line(y: &[f64], w: usize, horizon: usize) -> Vec<f64> {
    let w = w.min(y.len());
    let b = slope(y, w);
    let ys = &y[y.len() - w..];
    let ym = ys.iter().sum::<f64>() / w as f64;
    // The line passes through the mean at the window's middle.
    let end = ym + b * (w as f64 - 1.0) / 2.0;
    (1..=horizon).map(|h| end + b * h as f64).collect()
}

/// The least-squares slope of the latest `w` points.
fn slope(y: &[f64], w: usize) -> f64 {
    let w = w.min(y.len());
    if w < 3 {
        return 0.0;
    }
    let ys = &y[y.len() - w..];
    let xm = (w as f64 - 1.0) / 2.0;
    let ym = ys.iter().sum::<f64>() / w as f64;
    let (mut num, mut den) = (0.0, 0.0);
    for (i, v) in ys.iter().enumerate() {
        let dx = i as f64 - xm;
        num += dx * (v - ym);
        den += dx * dx;
    }
    if den > 0.0 { num / den } else { 0.0 }
}

/// A model's weight goes as (the best error / its error) to this power: a
/// model twice as far off as the best gets 1/256 of its weight.
const POWER: i32 = 8;

/// How many point models [`point_models`] gives.
const MODELS: usize = 5;

/// The point forecasts of each model, and SES's weight: SES; Theta (SES
/// plus half the drift of the latest half of the series, at least four of
/// its longest periods); damped Holt; Holt's linear trend; and the median
/// of the first three.
fn point_models(y: &[f64], horizon: usize, period: Option<usize>) -> (f64, [Vec<f64>; MODELS]) {
    let n = y.len();
    let (alpha, l) = ses(y);
    let w = period.map_or(n, |p| (4 * p).max(n / 2)).max(48).min(n);
    let b = slope(y, w);
    let decay = (1.0 - alpha).powi(n.min(10_000) as i32);
    let ses_f = vec![l; horizon];
    let theta: Vec<f64> = (1..=horizon).map(|h| l + b / 2.0 * (h as f64 - 1.0 + (1.0 - decay) / alpha)).collect();
    let damped = holt(y, horizon, &[0.9, 0.98]);
    let linear = line(y, w, horizon);
    let median: Vec<f64> = (0..horizon).map(|i| season::median(&mut [ses_f[i], theta[i], damped[i]])).collect();
    (alpha, [ses_f, theta, damped, linear, median])
}

/// The forecast at step index `i`: the models weighted.
fn combine(models: &[Vec<f64>; MODELS], weights: &[f64; MODELS], i: usize) -> f64 {
    models.iter().zip(weights).map(|(m, w)| m[i] * w).sum()
}

/// Each model's weight from how well it forecast the series' own tail: fit
/// on all but the last k, 2k and 3k points (k the horizon, at most a
/// quarter of the series), scored by the mean absolute error over the next
/// k. Too short a series for that: the median of three only.
fn model_weights(y: &[f64], horizon: usize, period: Option<usize>) -> [f64; MODELS] {
    let n = y.len();
    let mut only_median = [0.0; MODELS];
    only_median[MODELS - 1] = 1.0;
    let k = horizon.min(n / 4);
    if k < 1 || n < 60 {
        return only_median;
    }
    let mut err = [0.0; MODELS];
    let mut origins = 0;
    for j in 1..=3 {
        let o = n - j * k;
        if o < n / 2 || o < 30 {
            break;
        }
        let (_, fc) = point_models(&y[..o], k, period);
        for (e, f) in err.iter_mut().zip(&fc) {
            *e += f.iter().zip(&y[o..o + k]).map(|(a, b)| (a - b).abs()).sum::<f64>() / k as f64;
        }
        origins += 1;
    }
    if origins == 0 || err.iter().any(|e| !e.is_finite()) {
        return only_median;
    }
    let best = err.iter().copied().fold(f64::INFINITY, f64::min);
    let mut w = [0.0; MODELS];
    if best <= 0.0 {
        let i = err.iter().position(|&e| e == best).unwrap_or(MODELS - 1);
        w[i] = 1.0;
        return w;
    }
    for (wi, e) in w.iter_mut().zip(&err) {
        *wi = (best / e).powi(POWER);
    }
    let total: f64 = w.iter().sum();
    w.iter_mut().for_each(|v| *v /= total);
    w
}

/// The adjusted series' forecast and interval per step: the point models
/// weighted by their error on the series' tail.
fn level_forecast(
    clean: &[f64],
    raw: &[f64],
    horizon: usize,
    level: f64,
    period: Option<usize>,
) -> Vec<(f64, f64, f64)> {
    let n = clean.len();
    if n < 3 {
        let last = clean[n - 1];
        let spread = raw.iter().map(|v| (v - last).abs()).fold(0.0, f64::max);
        return (0..horizon).map(|_| (last, last - spread, last + spread)).collect();
    }
    let (alpha, models) = point_models(clean, horizon, period);
    let weights = model_weights(clean, horizon, period);
    // The interval: at lags 1, 2, 4, … up to the horizon, the `level`
    // quantile of how far the raw (uncleaned: outliers widen it) adjusted
    // series strayed from the SES level that many steps earlier, over the
    // latest steps; between lags interpolated, past the longest lag the
    // data allows grown as SES's error variance grows.
    let mut levels = Vec::with_capacity(n);
    let mut lev = clean[0];
    for &v in clean {
        lev += alpha * (v - lev);
        levels.push(lev);
    }
    let mut widths: Vec<(usize, f64)> = Vec::new();
    let mut lag = 1;
    while lag <= horizon {
        if n < lag + 30 {
            break;
        }
        let from = (n - lag).saturating_sub(ERROR_WINDOW);
        let mut errs: Vec<f64> = (from..n - lag).map(|t| (raw[t + lag] - levels[t]).abs()).collect();
        errs.sort_by(f64::total_cmp);
        let q = errs[((errs.len() as f64 - 1.0) * level).round() as usize];
        // Never narrower than at a shorter lag.
        let q = widths.last().map_or(q, |&(_, w)| q.max(w));
        widths.push((lag, q));
        lag *= 2;
    }
    if widths.is_empty() {
        let spread = raw.iter().map(|v| (v - levels[n - 1]).abs()).fold(0.0, f64::max);
        widths.push((1, spread));
    }
    let width_at = |h: usize| -> f64 {
        let k = widths.partition_point(|&(l, _)| l <= h);
        if k == widths.len() {
            let (l, w) = widths[k - 1];
            w * ((1.0 + (h - 1) as f64 * alpha * alpha) / (1.0 + (l - 1) as f64 * alpha * alpha)).sqrt()
        } else if k == 0 {
            widths[0].1
        } else {
            let ((l0, w0), (l1, w1)) = (widths[k - 1], widths[k]);
            w0 + (w1 - w0) * (h - l0) as f64 / (l1 - l0) as f64
        }
    };
    (1..=horizon)
        .map(|h| {
            let f = combine(&models, &weights, h - 1);
            let width = width_at(h);
            (f, f - width, f + width)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const T0: i64 = 1_790_000_000_000;
    const HOUR: i64 = 3_600_000;

    /// A deterministic pseudo-random number in [-0.5, 0.5).
    fn noise(i: usize) -> f64 {
        let mut x = (i as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ 0xD1B5_4A32_D192_ED03;
        x ^= x >> 29;
        x = x.wrapping_mul(0xBF58_476D_1CE4_E5B9);
        x ^= x >> 32;
        (x % 10_000) as f64 / 10_000.0 - 0.5
    }

    fn series(n: usize, f: impl Fn(usize) -> f64) -> Vec<(i64, f64)> {
        (0..n).map(|i| (T0 + i as i64 * HOUR, f(i))).collect()
    }

    fn daily(i: usize) -> f64 {
        (i as f64 / 24.0 * std::f64::consts::TAU).sin() * 20.0
    }

    fn opts(h: usize) -> Options {
        Options { horizon: h, ..Options::default() }
    }

    #[test]
    fn a_seasonal_series_is_recovered() {
        let rows = series(24 * 14, |i| 100.0 + daily(i) + noise(i));
        let f = forecast(&rows, &opts(48)).unwrap();
        assert_eq!(f.seasons, vec![24]);
        assert_eq!(f.step_ms, HOUR);
        for (h, p) in f.points.iter().enumerate() {
            let want = 100.0 + daily(24 * 14 + h);
            assert!((p.forecast - want).abs() < 2.0, "step {h}: {} vs {want}", p.forecast);
            assert_eq!(p.ts_ms, T0 + (24 * 14 - 1 + h as i64 + 1) * HOUR);
        }
    }

    #[test]
    fn a_trend_is_extrapolated() {
        let rows = series(500, |i| 10.0 + 0.5 * i as f64 + noise(i));
        let f = forecast(&rows, &opts(20)).unwrap();
        // A clean trend forecast its own tail best with the line and the
        // trend models: the forecast follows (nearly) the whole slope.
        let last = 10.0 + 0.5 * 499.0;
        for (h, p) in f.points.iter().enumerate() {
            let rise = p.forecast - last;
            let full = 0.5 * (h + 1) as f64;
            assert!(rise >= full * 0.8 - 1.0 && rise <= full * 1.2 + 1.0, "step {h}: rose {rise}, the trend {full}");
        }
        assert!(f.points[19].forecast > f.points[0].forecast + 7.0);
    }

    #[test]
    fn a_noisy_flat_series_is_not_given_a_trend() {
        // Noise with a chance upward drift in its last stretch: the level
        // models, not the line, forecast its tail best.
        let rows = series(600, |i| 100.0 + 20.0 * noise(i) + 10.0 * noise(i * 7 + 3));
        let f = forecast(&rows, &opts(48)).unwrap();
        for p in &f.points {
            assert!((p.forecast - 100.0).abs() < 5.0, "{}", p.forecast);
        }
    }

    #[test]
    fn a_cycle_growing_with_the_level_is_forecast_as_a_multiple() {
        // The daily swing is ±40 % of a level that doubles over four weeks:
        // additive profiles (medians of the latest days) would lag it.
        let n = 24 * 28;
        let truth = |i: usize| 100.0 * (1.0 + i as f64 / n as f64) * (1.0 + 0.02 * daily(i)) * (1.0 + 0.02 * noise(i));
        let rows = series(n, truth);
        let f = forecast(&rows, &opts(24)).unwrap();
        assert_eq!(f.seasons[0], 24);
        for (h, p) in f.points.iter().enumerate() {
            let want = 100.0 * (1.0 + (n + h) as f64 / n as f64) * (1.0 + 0.02 * daily(n + h));
            assert!((p.forecast / want - 1.0).abs() < 0.03, "step {h}: {} vs {want}", p.forecast);
            assert!(p.lo <= p.forecast && p.forecast <= p.hi);
        }
    }

    #[test]
    fn intervals_cover_most_held_out_points_of_a_noisy_series() {
        let n = 24 * 28;
        let all = series(n + 48, |i| 50.0 + daily(i) + 10.0 * noise(i));
        let f = forecast(&all[..n], &opts(48)).unwrap();
        let inside = f.points.iter().zip(&all[n..]).filter(|(p, a)| p.lo <= a.1 && a.1 <= p.hi).count();
        assert!(inside >= 43, "{inside} of 48 inside the 95 % interval");
        assert!(f.points.iter().all(|p| p.lo <= p.forecast && p.forecast <= p.hi));
        // And the interval is not absurdly wide.
        assert!(f.points.iter().all(|p| p.hi - p.lo < 40.0), "{:?}", f.points[47]);
    }

    #[test]
    fn outliers_and_a_level_shift_do_not_wreck_the_forecast() {
        let mut rows = series(24 * 14, |i| if i < 24 * 12 { 100.0 } else { 200.0 } + daily(i) + noise(i));
        rows[24 * 13 + 5].1 = 5_000.0;
        rows[24 * 10].1 = -3_000.0;
        let f = forecast(&rows, &opts(24)).unwrap();
        for (h, p) in f.points.iter().enumerate() {
            let want = 200.0 + daily(24 * 14 + h);
            assert!((p.forecast - want).abs() < 10.0, "step {h}: {} vs {want}", p.forecast);
        }
    }

    #[test]
    fn forecasts_are_deterministic_and_bounded_on_odd_input() {
        let rows = series(300, |i| daily(i) * noise(i) * 1e300);
        let a = forecast(&rows, &opts(100)).unwrap();
        assert_eq!(a, forecast(&rows, &opts(100)).unwrap());
        assert!(
            a.points.iter().all(|p| p.lo.is_finite() && p.hi.is_finite() && p.lo <= p.forecast && p.forecast <= p.hi)
        );
        // One row: no step.
        assert_eq!(forecast(&rows[..1], &opts(1)), Err(ForecastError::NoStep));
        assert_eq!(forecast(&[], &opts(1)), Err(ForecastError::NoRows));
        assert_eq!(forecast(&rows, &opts(0)), Err(ForecastError::Horizon(0)));
        // Positive and huge, with a daily cycle: the logarithms are tried.
        let huge = series(24 * 10, |i| 1e300 * (1.5 + daily(i) / 40.0 + noise(i) / 10.0));
        let f = forecast(&huge, &opts(48)).unwrap();
        assert!(
            f.points.iter().all(|p| p.lo.is_finite() && p.hi.is_finite() && p.lo <= p.forecast && p.forecast <= p.hi)
        );
        // Two rows: a flat forecast.
        let two = forecast(&rows[..2], &opts(3)).unwrap();
        assert_eq!(two.points.len(), 3);
    }

    #[test]
    fn a_season_too_long_for_the_data_is_dropped_with_a_note() {
        let rows = series(100, |i| daily(i) + noise(i));
        let f = forecast(&rows, &Options { horizon: 5, seasons: vec![24, 168], level: 0.95 }).unwrap();
        assert_eq!(f.seasons, vec![24]);
        assert!(f.notes[0].contains("season 168 left out"), "{:?}", f.notes);
    }

    #[test]
    fn irregular_and_missing_rows_land_on_the_step_grid() {
        // Every third hour missing, some rows jittered by a few minutes.
        let rows: Vec<(i64, f64)> = (0..24 * 10)
            .filter(|i| i % 3 != 0)
            .map(|i| (T0 + i as i64 * HOUR + if i % 5 == 0 { 120_000 } else { 0 }, 100.0 + daily(i)))
            .collect();
        let f = forecast(&rows, &opts(24)).unwrap();
        assert_eq!(f.step_ms, HOUR);
        assert_eq!(f.seasons, vec![24]);
        let last = rows.last().unwrap().0;
        assert_eq!(f.points[0].ts_ms, last + HOUR);
        for (h, p) in f.points.iter().enumerate() {
            let want = 100.0 + daily(24 * 10 - 1 + h + 1);
            assert!((p.forecast - want).abs() < 5.0, "step {h}: {} vs {want}", p.forecast);
        }
    }
}

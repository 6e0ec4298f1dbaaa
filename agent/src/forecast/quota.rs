//! "Will we hit a quota?": the outlook of a saturating quantity (Lambda
//! concurrency, requests per second, bytes per second) against its limit,
//! and the two small measures that feed it ([`little_concurrency`],
//! [`PeakSecond`]).
//!
//! [`outlook`] takes a per-minute series (up to [`LOOKBACK_MS`], 28 days,
//! before `at_ms`; any order, gaps allowed) and:
//!
//! 1. keeps the **peak of every UTC hour** (a quota is hit by peaks, not by
//!    averages) — one pass, memory fixed at 673 slots whatever the input;
//! 2. takes the **peak of every UTC day** with at least 18 hours of data and
//!    fits a **Theil–Sen line** through them (the median of the pairwise
//!    slopes: a load test or an outage day moves it little), with an
//!    optional **weekly** offset per weekday (kept when it shrinks the
//!    daily peaks' mean absolute deviation around the line by 30 %; needs
//!    14 days);
//! 3. places each future hour on that line plus the **hour-of-day profile**
//!    (the per-hour median of the hourly peaks less the line, shifted so
//!    its highest hour is 0: the forecast of a day's peak hour *is* the
//!    line);
//! 4. walks the hours from `at_ms` to the horizon: `reach_at_ms` is the
//!    first hour whose forecast peak reaches the limit. The upper bound
//!    (`reach_early_at_ms`) uses the upper end of Sen's 90 % confidence
//!    interval of the slope (pivoting on the median day) plus the 95th
//!    percentile of the daily peaks' residuals.
//!
//! Why not `model::forecast` on the hourly peaks: a forecast of values is
//! not a forecast of the day a line is crossed. Before its models were
//! weighted by their error on the series' tail it under-projected every
//! trend and found none of the 40 growing crossings measured here within the 7
//! days. Measured now with `cargo test -p slo-agent --lib
//! forecast::quota::tests::measure -- --ignored --nocapture` (14 days of
//! minutes, 5 seeds, horizon 7 days, the limit between the peaks of the 4th
//! and 5th day out; table in docs/forecasts.md, "Quota outlook"): of 40
//! growing runs this module finds the crossing within an hour in 35, a day
//! late in 1, and misses 4 (weekly pattern, heavy noise: the weekday peak
//! forecast 1–2 % low, the next weekday past the horizon; the early bound
//! still fires a day early); no false crossing in 10 flat runs.
//! `model::forecast` on the same hourly peaks finds 24 within 1.1 hours, is
//! a day early on 6 and misses all 10 weekly-pattern runs.
//!
//! Fewer than 3 full days: no trend, the forecast is flat at the recent
//! peak (`basis` says so). Never panics: non-finite values are skipped,
//! out-of-order rows land in their hour, a limit that is not a positive
//! number means nothing can be reached.

use super::season::median;

const HOUR_MS: i64 = 3_600_000;
const DAY_MS: i64 = 86_400_000;
/// History older than this before `at_ms` is not read.
pub const LOOKBACK_MS: i64 = 28 * DAY_MS;
/// The longest horizon walked (longer ones are cut to it).
pub const MAX_HORIZON_MS: i64 = 366 * DAY_MS;
/// Hour slots: the 28 days before the current hour, and the current one.
const SLOTS: usize = 28 * 24 + 1;
/// A day with fewer hours of data does not give a daily peak.
const MIN_DAY_HOURS: usize = 18;
/// Daily peaks needed for a trend.
const MIN_TREND_DAYS: usize = 3;
/// Daily peaks needed before a weekly offset is tried.
const MIN_WEEKLY_DAYS: usize = 14;
/// One-sided 95 % normal quantile: Sen's slope interval.
const Z_UPPER: f64 = 1.645;

/// The outlook of one quantity against its quota.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct QuotaOutlook {
    /// The recent peak level: the highest value in the 24 hours before
    /// `at_ms` (or the latest hour with data before that).
    pub current: f64,
    /// The highest forecast hourly peak within the horizon.
    pub peak: f64,
    pub limit: f64,
    /// `current / limit` (0 when the limit is not a positive number).
    pub utilisation: f64,
    /// The trend of the daily peaks, in the value's units per day.
    pub growth_per_day: f64,
    /// The first time the forecast reaches the limit within the horizon
    /// (`at_ms` when `current` already does).
    pub reach_at_ms: Option<i64>,
    /// The same for the upper prediction bound: the earliest plausible time.
    pub reach_early_at_ms: Option<i64>,
    pub horizon_end_ms: i64,
    /// What the forecast was made from.
    pub basis: &'static str,
}

/// The quota outlook at `at_ms` over `horizon_ms` (cut to
/// [`MAX_HORIZON_MS`]) of a per-minute `history` of a saturating quantity.
/// Rows after `at_ms` or older than [`LOOKBACK_MS`] are ignored.
pub fn outlook(history: &[(i64, f64)], limit: f64, at_ms: i64, horizon_ms: i64) -> QuotaOutlook {
    let horizon_ms = horizon_ms.clamp(0, MAX_HORIZON_MS);
    let horizon_end_ms = at_ms.saturating_add(horizon_ms);
    let peaks = HourlyPeaks::new(history, at_ms);
    let limit_ok = limit.is_finite() && limit > 0.0;
    let mut out = QuotaOutlook {
        current: 0.0,
        peak: 0.0,
        limit,
        utilisation: 0.0,
        growth_per_day: 0.0,
        reach_at_ms: None,
        reach_early_at_ms: None,
        horizon_end_ms,
        basis: "too little history",
    };
    let Some(current) = peaks.recent_peak() else { return out };
    out.current = current;
    out.peak = current;
    if limit_ok {
        out.utilisation = clamp_finite(current / limit);
    }
    let fit = Fit::new(&peaks);
    out.basis =
        fit.as_ref().map_or("too little history for a trend (under 3 full days): flat at the recent peak", |f| {
            if f.weekly.is_some() {
                "hourly peaks, daily and weekly season, trend of daily peaks"
            } else {
                "hourly peaks, daily season, trend of daily peaks"
            }
        });
    out.growth_per_day = fit.as_ref().map_or(0.0, |f| clamp_finite(f.slope));
    let already = limit_ok && current >= limit;
    if already {
        out.reach_at_ms = Some(at_ms);
        out.reach_early_at_ms = Some(at_ms);
    }
    // Walk the hours from the current one to the horizon's.
    let first = at_ms.div_euclid(HOUR_MS);
    let last = horizon_end_ms.div_euclid(HOUR_MS);
    let mut peak = f64::NEG_INFINITY;
    for k in first..=last {
        let (f, hi) = match &fit {
            Some(fit) => fit.at_hour(k, peaks.day0),
            None => (current, current),
        };
        if f.is_finite() {
            peak = peak.max(f);
        }
        if !limit_ok || already {
            continue;
        }
        let when = k.saturating_mul(HOUR_MS).max(at_ms);
        if out.reach_at_ms.is_none() && f >= limit {
            out.reach_at_ms = Some(when);
        }
        if out.reach_early_at_ms.is_none() && hi >= limit {
            out.reach_early_at_ms = Some(when);
        }
    }
    if peak.is_finite() {
        out.peak = clamp_finite(peak);
    }
    out
}

fn clamp_finite(v: f64) -> f64 {
    if v.is_nan() { 0.0 } else { v.clamp(f64::MIN, f64::MAX) }
}

/// The peak of every UTC hour of the lookback: slot `i` is hour index
/// `base + i` (hours since the epoch); NaN when it had no data.
struct HourlyPeaks {
    base: i64,
    slots: Vec<f64>,
    /// The UTC day (days since the epoch) of slot 0.
    day0: i64,
}

impl HourlyPeaks {
    fn new(history: &[(i64, f64)], at_ms: i64) -> HourlyPeaks {
        let at_hour = at_ms.div_euclid(HOUR_MS);
        let base = at_hour - (SLOTS as i64 - 1);
        let mut slots = vec![f64::NAN; SLOTS];
        for &(ts, v) in history {
            if !v.is_finite() || ts > at_ms {
                continue;
            }
            let i = ts.div_euclid(HOUR_MS) - base;
            if !(0..SLOTS as i64).contains(&i) {
                continue;
            }
            let slot = &mut slots[i as usize];
            if slot.is_nan() || v > *slot {
                *slot = v;
            }
        }
        HourlyPeaks { base, slots, day0: base.div_euclid(24) }
    }

    /// The highest value of the latest 24 hours, else the latest hour with data.
    fn recent_peak(&self) -> Option<f64> {
        let recent = self.slots[SLOTS - 24..].iter().copied().filter(|v| !v.is_nan()).fold(f64::NAN, f64::max);
        if !recent.is_nan() {
            return Some(recent);
        }
        self.slots.iter().rev().copied().find(|v| !v.is_nan())
    }

    /// `(day index since day0, peak)` of the days with enough hours.
    fn daily_peaks(&self) -> Vec<(i64, f64)> {
        let days = (self.base + SLOTS as i64 - 1).div_euclid(24) - self.day0 + 1;
        let mut count = vec![0usize; days as usize];
        let mut peak = vec![f64::NEG_INFINITY; days as usize];
        for (i, &v) in self.slots.iter().enumerate() {
            if v.is_nan() {
                continue;
            }
            let d = ((self.base + i as i64).div_euclid(24) - self.day0) as usize;
            count[d] += 1;
            peak[d] = peak[d].max(v);
        }
        (0..days as usize).filter(|&d| count[d] >= MIN_DAY_HOURS).map(|d| (d as i64, peak[d])).collect()
    }
}

/// The fitted daily-peak line, weekly offsets and hour-of-day profile.
/// Times are in days since `day0`'s start.
struct Fit {
    intercept: f64,
    slope: f64,
    slope_hi: f64,
    /// The median day: the upper line pivots there.
    pivot: f64,
    /// The 95th percentile of the daily peaks' residuals (≥ 0).
    spread: f64,
    /// Offsets per weekday (day index since the epoch mod 7).
    weekly: Option<[f64; 7]>,
    /// Offset per hour of the day; the highest is 0.
    hourly: [f64; 24],
}

impl Fit {
    fn new(peaks: &HourlyPeaks) -> Option<Fit> {
        let days = peaks.daily_peaks();
        if days.len() < MIN_TREND_DAYS {
            return None;
        }
        let x: Vec<f64> = days.iter().map(|&(d, _)| d as f64 + 0.5).collect();
        let y: Vec<f64> = days.iter().map(|&(_, p)| p).collect();
        let dow = |d: i64| (peaks.day0 + d).rem_euclid(7) as usize;
        let (mut sen, mut weekly) = (theil_sen(&x, &y)?, None);
        if days.len() >= MIN_WEEKLY_DAYS {
            let resid: Vec<f64> = x.iter().zip(&y).map(|(x, y)| y - sen.line(*x)).collect();
            let w = weekday_offsets(&days, &resid, dow);
            let after: Vec<f64> = resid.iter().zip(&days).map(|(r, &(d, _))| r - w[dow(d)]).collect();
            if spread_of(&after) <= 0.7 * spread_of(&resid) {
                // Refit the line on the peaks less their weekday, then the offsets on that line.
                let adj: Vec<f64> = y.iter().zip(&days).map(|(v, &(d, _))| v - w[dow(d)]).collect();
                sen = theil_sen(&x, &adj)?;
                let resid: Vec<f64> = x.iter().zip(&y).map(|(x, y)| y - sen.line(*x)).collect();
                weekly = Some(weekday_offsets(&days, &resid, dow));
            }
        }
        let week = |d: i64| weekly.map_or(0.0, |w| w[dow(d)]);
        let mut resid: Vec<f64> =
            x.iter().zip(&y).zip(&days).map(|((x, y), &(d, _))| y - sen.line(*x) - week(d)).collect();
        resid.sort_by(f64::total_cmp);
        let spread = resid[((resid.len() - 1) as f64 * 0.95).round() as usize].max(0.0);

        // The hour-of-day profile: per-hour medians of the hourly peaks less the line.
        let mut by_hour: Vec<Vec<f64>> = vec![Vec::new(); 24];
        for (i, &v) in peaks.slots.iter().enumerate() {
            if v.is_nan() {
                continue;
            }
            let k = peaks.base + i as i64;
            let d = k.div_euclid(24) - peaks.day0;
            let t = (k - peaks.day0 * 24) as f64 / 24.0 + 1.0 / 48.0;
            by_hour[k.rem_euclid(24) as usize].push(v - sen.line(t) - week(d));
        }
        let mut hourly = [f64::NAN; 24];
        for (h, vals) in by_hour.iter_mut().enumerate() {
            if !vals.is_empty() {
                hourly[h] = median(vals);
            }
        }
        let mut present: Vec<f64> = hourly.iter().copied().filter(|v| !v.is_nan()).collect();
        let fill = median(&mut present);
        let top = hourly.iter().copied().filter(|v| !v.is_nan()).fold(f64::NEG_INFINITY, f64::max);
        for v in &mut hourly {
            *v = if v.is_nan() { fill - top } else { *v - top };
            if !v.is_finite() {
                *v = 0.0;
            }
        }
        let mut xs = x.clone();
        let pivot = median(&mut xs);
        let fit =
            Fit { intercept: sen.intercept, slope: sen.slope, slope_hi: sen.slope_hi, pivot, spread, weekly, hourly };
        (fit.intercept.is_finite() && fit.slope.is_finite()).then_some(fit)
    }

    /// The forecast peak of hour `k` (hours since the epoch) and its upper bound.
    fn at_hour(&self, k: i64, day0: i64) -> (f64, f64) {
        let t = (k as f64 - day0 as f64 * 24.0) / 24.0 + 1.0 / 48.0;
        let season = self.weekly.map_or(0.0, |w| w[k.div_euclid(24).rem_euclid(7) as usize])
            + self.hourly[k.rem_euclid(24) as usize];
        let f = self.intercept + self.slope * t + season;
        let line_at_pivot = self.intercept + self.slope * self.pivot;
        let hi = line_at_pivot + self.slope_hi * (t - self.pivot) + season + self.spread;
        (f, if hi >= f { hi } else { f })
    }
}

/// Weekday offsets: the per-weekday median of `resid`, centred on zero.
fn weekday_offsets(days: &[(i64, f64)], resid: &[f64], dow: impl Fn(i64) -> usize) -> [f64; 7] {
    let mut by: Vec<Vec<f64>> = vec![Vec::new(); 7];
    for (&(d, _), &r) in days.iter().zip(resid) {
        by[dow(d)].push(r);
    }
    let mut w = [0.0; 7];
    for (slot, vals) in w.iter_mut().zip(&mut by) {
        *slot = median(vals);
    }
    let mean = w.iter().sum::<f64>() / 7.0;
    w.iter_mut().for_each(|v| *v -= mean);
    w
}

/// The mean absolute deviation from the median: unlike the median absolute
/// deviation it sees a minority of low days (a weekend is 2 of 7).
fn spread_of(v: &[f64]) -> f64 {
    let mut a = v.to_vec();
    let m = median(&mut a);
    v.iter().map(|x| (x - m).abs()).sum::<f64>() / v.len().max(1) as f64
}

/// A Theil–Sen line and the upper end of Sen's confidence interval of its slope.
#[derive(Debug, Clone, Copy)]
struct Sen {
    slope: f64,
    slope_hi: f64,
    intercept: f64,
}

impl Sen {
    fn line(&self, x: f64) -> f64 {
        self.intercept + self.slope * x
    }
}

/// The median of the pairwise slopes, the intercept as the median of
/// `y − slope·x`, and Sen's one-sided 95 % upper slope (the rank
/// `(N + z·sqrt(n(n−1)(2n+5)/18)) / 2` of the N sorted slopes). `x` distinct.
fn theil_sen(x: &[f64], y: &[f64]) -> Option<Sen> {
    let n = x.len();
    let mut slopes = Vec::with_capacity(n * n.saturating_sub(1) / 2);
    for i in 0..n {
        for j in i + 1..n {
            let dx = x[j] - x[i];
            let s = (y[j] - y[i]) / dx;
            if dx != 0.0 && s.is_finite() {
                slopes.push(s);
            }
        }
    }
    if slopes.is_empty() {
        return None;
    }
    slopes.sort_by(f64::total_cmp);
    let m = slopes.len();
    let slope = if m % 2 == 1 { slopes[m / 2] } else { (slopes[m / 2 - 1] + slopes[m / 2]) / 2.0 };
    let nf = n as f64;
    let c = Z_UPPER * (nf * (nf - 1.0) * (2.0 * nf + 5.0) / 18.0).sqrt();
    let upper = (((m as f64 + c) / 2.0).ceil() as usize).clamp(1, m) - 1;
    let slope_hi = slopes[upper].max(slope);
    let mut a: Vec<f64> = x.iter().zip(y).map(|(x, y)| y - slope * x).collect();
    let intercept = median(&mut a);
    Some(Sen { slope, slope_hi, intercept })
}

/// Little's law: the mean number of requests in flight, L = λ·W, from the
/// arrival rate (per second) and the mean duration (milliseconds). 0 for
/// a negative or non-finite input.
pub fn little_concurrency(invocations_per_s: f64, mean_duration_ms: f64) -> f64 {
    let l = invocations_per_s * mean_duration_ms / 1000.0;
    if l.is_finite() && l > 0.0 { l } else { 0.0 }
}

/// One minute's busiest second, for per-minute series of a peak: 60
/// per-second slots of (a) requests started in that second and (b)
/// milliseconds spent busy in it, summed over the requests in flight.
/// `busy_ms / 1000` of a second is the mean concurrency over that second,
/// exactly (not an estimate); its peak over the minute is what a
/// concurrency quota sees at a one-second grain.
///
/// Bounded: 60 slots, fixed size; [`PeakSecond::observe`] touches at most
/// the 60 slots of the minute (a long request is spread over the seconds it
/// covers), so O(1) per observation. A request overlapping two minutes
/// counts its busy time in each minute it is observed in, and as a request
/// only in the minute it started in: feed it to both accumulators.
#[derive(Debug, Clone, PartialEq)]
pub struct PeakSecond {
    minute_start_ms: i64,
    requests: [u32; 60],
    busy_ms: [f64; 60],
}

impl PeakSecond {
    /// An empty accumulator of the minute holding `ts_ms`.
    pub fn new(ts_ms: i64) -> PeakSecond {
        PeakSecond { minute_start_ms: ts_ms.div_euclid(60_000) * 60_000, requests: [0; 60], busy_ms: [0.0; 60] }
    }

    /// The start of the minute this accumulates.
    pub fn minute_start_ms(&self) -> i64 {
        self.minute_start_ms
    }

    /// Starts over for the minute holding `ts_ms`.
    pub fn reset(&mut self, ts_ms: i64) {
        *self = PeakSecond::new(ts_ms);
    }

    /// A request that started at `start_ms` and was busy `duration_ms`
    /// (negative or non-finite: 0). Returns whether it started in this
    /// minute (was counted as a request); its busy time within the minute
    /// is added either way.
    pub fn observe(&mut self, start_ms: i64, duration_ms: f64) -> bool {
        let dur = if duration_ms.is_finite() && duration_ms > 0.0 { duration_ms.min(1e15) } else { 0.0 };
        let off = start_ms as i128 - self.minute_start_ms as i128;
        let started_here = (0..60_000).contains(&off);
        if started_here {
            let s = (off / 1000) as usize;
            self.requests[s] = self.requests[s].saturating_add(1);
        }
        // Busy time: the overlap of [off, off + dur) with each second of the minute.
        let from = off as f64;
        let to = from + dur;
        if dur > 0.0 && to > 0.0 && from < 60_000.0 {
            let first = (from.max(0.0) / 1000.0) as usize;
            let last = ((to.min(60_000.0) / 1000.0).ceil() as usize).min(60);
            for s in first..last {
                let (a, b) = (s as f64 * 1000.0, (s + 1) as f64 * 1000.0);
                let overlap = to.min(b) - from.max(a);
                if overlap > 0.0 {
                    self.busy_ms[s] += overlap;
                }
            }
        }
        started_here
    }

    /// The most requests started in one second of the minute.
    pub fn peak_requests_per_s(&self) -> u32 {
        self.requests.iter().copied().max().unwrap_or(0)
    }

    /// The highest mean concurrency of one second of the minute
    /// (busy milliseconds in it / 1000).
    pub fn peak_concurrency(&self) -> f64 {
        self.busy_ms.iter().copied().fold(0.0, f64::max) / 1000.0
    }
}

#[cfg(test)]
mod tests;

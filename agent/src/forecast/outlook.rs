//! The error-budget outlook of one SLO: how much budget is left now, when it
//! runs out at the forecast burn, and what is left at the window's end.
//!
//! [`budget`] takes the window's hourly history (`(hour_start_ms, total,
//! bad)`; gaps are hours without traffic), the objective and the window, and:
//!
//! 1. sums the hours in the window now: remaining = 1 − bad / (allowed ×
//!    total), with allowed = 1 − objective (1 when there is no traffic; it
//!    can go negative);
//! 2. forecasts the **hourly totals** with [`model::forecast`] (daily and
//!    weekly seasons when the history shows them; gaps filled with 0) — a
//!    flat mean of the latest day when it cannot;
//! 3. forecasts the **bad ratio** as the median of the pooled ratios of the
//!    latest `RATIO_BLOCKS` blocks, each at least `RATIO_BLOCK_HOURS`
//!    hours long and holding traffic enough for `MIN_BLOCK_BAD` bad
//!    requests at 1× burn (6 hours at 1,000 requests an hour and 99.9 %,
//!    50 hours at 100): a short incident that is over (one block) is not
//!    projected forward, a burn that has lasted two blocks or more is, and
//!    sparse bad counts do not make most blocks 0. With too little traffic
//!    for four blocks, the ratio pooled over the history;
//! 4. walks forward hour by hour, adding the forecast hours and, for a
//!    rolling window, removing the hours that leave it (from the history);
//!    exhaustion is the first time the remaining budget reaches 0
//!    (interpolated within the hour; `at_ms` when it already has).
//!
//! The walk ends at `end_ms`: a calendar window's end, or for a rolling one
//! `at_ms` + its length, "the budget expected one window from now" — then
//! every hour in the window is a forecast one, so `expected_remaining_at_end`
//! is 1 − `forecast_burn_rate` when traffic is forecast.
//!
//! Bounds: one pass over the history; memory and the walk are at most
//! [`MAX_WINDOW_HOURS`] hours (longer windows are cut to it); hours before
//! that are not read. The current hour, when `at_ms` is inside it, counts
//! as it is (the rest of it is not forecast). Never panics; rows with a
//! negative or non-finite count are skipped, `bad` is capped at `total`.

use super::model;
use super::season::median;

const HOUR_MS: i64 = 3_600_000;
/// The longest window walked (a leap year of hours); longer ones are cut.
pub const MAX_WINDOW_HOURS: i64 = 366 * 24;
/// Hours of history read for the totals' forecast at least (whatever the window).
const MODEL_HOURS: i64 = 28 * 24;
/// The bad ratio is the median of the ratios of this many latest blocks …
const RATIO_BLOCKS: usize = 4;
/// … of at least this many hours each …
const RATIO_BLOCK_HOURS: usize = 6;
/// … and traffic enough for this many bad requests at 1× burn (so sparse
/// bad counts do not make most blocks 0).
const MIN_BLOCK_BAD: f64 = 5.0;

/// The window an SLO is measured over.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Window {
    /// The latest `len_ms` (whole hours; rounded up).
    Rolling { len_ms: i64 },
    /// A fixed span, e.g. a calendar month: `[start_ms, end_ms)`.
    Calendar { start_ms: i64, end_ms: i64 },
}

/// The error-budget outlook of one SLO at one time.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BudgetOutlook {
    /// The budget left now: 1 − bad / (allowed × total) over the window (can be negative).
    pub remaining_now: f64,
    /// The forecast bad ratio over the allowed one (1 = spending exactly the budget).
    pub forecast_burn_rate: f64,
    /// When the remaining budget is forecast to reach 0 before `end_ms`
    /// (`at_ms` when it already has).
    pub exhaustion_at_ms: Option<i64>,
    /// The calendar window's end, or `at_ms` + the length of a rolling one.
    pub end_ms: i64,
    /// The forecast remaining budget at `end_ms`.
    pub expected_remaining_at_end: f64,
    /// What the forecast was made from.
    pub basis: &'static str,
}

/// The budget outlook at `at_ms` of an SLO with `objective` (e.g. 0.999)
/// over `window`, from its hourly `history` (any order).
pub fn budget(history: &[(i64, f64, f64)], objective: f64, window: Window, at_ms: i64) -> BudgetOutlook {
    let now_idx = at_ms.div_euclid(HOUR_MS);
    let aligned = at_ms.rem_euclid(HOUR_MS) == 0;
    // Hours before this one are known; the forecast starts with it.
    let first_future = if aligned { now_idx } else { now_idx + 1 };
    let mut out = BudgetOutlook {
        remaining_now: 1.0,
        forecast_burn_rate: 0.0,
        exhaustion_at_ms: None,
        end_ms: at_ms,
        expected_remaining_at_end: 1.0,
        basis: "no traffic in the history",
    };
    // The window's hours: now [win_lo, win_hi), and the hours walked.
    let (win_lo, win_hi, walk_end, rolling_len) = match window {
        Window::Rolling { len_ms } if len_ms > 0 => {
            let len = len_ms.div_euclid(HOUR_MS) + i64::from(len_ms.rem_euclid(HOUR_MS) != 0);
            let len = len.min(MAX_WINDOW_HOURS);
            out.end_ms = at_ms.saturating_add(len_ms.min(MAX_WINDOW_HOURS * HOUR_MS));
            (first_future - len, first_future, first_future + len, Some(len))
        }
        Window::Calendar { start_ms, end_ms } if end_ms > start_ms => {
            let start = start_ms.div_euclid(HOUR_MS);
            let end = end_ms.div_euclid(HOUR_MS) + i64::from(end_ms.rem_euclid(HOUR_MS) != 0);
            let end = end.min(start.saturating_add(MAX_WINDOW_HOURS));
            out.end_ms = end_ms;
            (start, first_future.clamp(start, end), end, None)
        }
        _ => {
            out.basis = "window out of range";
            return out;
        }
    };
    if !(objective.is_finite() && objective > 0.0 && objective < 1.0) {
        out.basis = "objective out of range: between 0 and 1 (exclusive)";
        return out;
    }
    let allowed = 1.0 - objective;
    let remaining = |total: f64, bad: f64| if total > 0.0 { 1.0 - bad / (allowed * total) } else { 1.0 };

    let known = Known::new(history, first_future, (first_future - win_lo).clamp(MODEL_HOURS, MAX_WINDOW_HOURS));
    let Some(first_present) = known.first_present() else { return out };
    let (mut total, mut bad) = known.sum(win_lo, win_hi);
    out.remaining_now = clamp_finite(remaining(total, bad));
    out.expected_remaining_at_end = out.remaining_now;
    if out.remaining_now <= 0.0 {
        out.exhaustion_at_ms = Some(at_ms);
    }

    let (ratio, blocks) = known.recent_ratio(allowed);
    out.forecast_burn_rate = clamp_finite(ratio / allowed);
    let walk_from = first_future.max(win_lo);
    let (totals, seasonal) = known.forecast_totals(first_present, now_idx, walk_end);
    out.basis = match (seasonal, blocks) {
        (true, true) => "hourly totals forecast from the history, bad ratio the median of the latest four blocks",
        (false, true) => "hourly totals flat at the latest day's mean, bad ratio the median of the latest four blocks",
        (true, false) => "hourly totals forecast from the history, bad ratio pooled over the history (little traffic)",
        (false, false) => {
            "hourly totals flat at the latest day's mean, bad ratio pooled over the history (little traffic)"
        }
    };

    let mut prev = out.remaining_now;
    for k in walk_from..walk_end {
        let t = totals.at(k);
        total += t;
        bad += ratio * t;
        if let Some(len) = rolling_len {
            // The hour leaving the window: from the history (a window ago is never a forecast hour).
            let (t, b) = known.at(k - len);
            total = (total - t).max(0.0);
            bad = (bad - b).max(0.0);
        }
        let rem = clamp_finite(remaining(total, bad));
        if out.exhaustion_at_ms.is_none() && rem <= 0.0 {
            let frac = if prev > rem { (prev / (prev - rem)).clamp(0.0, 1.0) } else { 1.0 };
            let when = k.saturating_mul(HOUR_MS).saturating_add((frac * HOUR_MS as f64) as i64);
            out.exhaustion_at_ms = Some(when.max(at_ms));
        }
        prev = rem;
        out.expected_remaining_at_end = rem;
    }
    out
}

fn clamp_finite(v: f64) -> f64 {
    if v.is_nan() { 0.0 } else { v.clamp(f64::MIN, f64::MAX) }
}

/// The known hours `[lo, first_future)`: total and bad per hour.
struct Known {
    lo: i64,
    hours: Vec<(f64, f64)>,
}

impl Known {
    fn new(history: &[(i64, f64, f64)], first_future: i64, len: i64) -> Known {
        let lo = first_future - len;
        let mut hours = vec![(0.0, 0.0); len as usize];
        for &(ts, total, bad) in history {
            if !(total.is_finite() && bad.is_finite() && total >= 0.0 && bad >= 0.0) {
                continue;
            }
            let i = ts.div_euclid(HOUR_MS) - lo;
            if !(0..len).contains(&i) {
                continue;
            }
            let h = &mut hours[i as usize];
            // Counts past f64::MAX are garbage; keep the sums finite.
            h.0 = (h.0 + total).min(f64::MAX);
            h.1 = (h.1 + bad.min(total)).min(h.0);
        }
        Known { lo, hours }
    }

    fn first_present(&self) -> Option<i64> {
        let i = self.hours.iter().position(|h| h.0 > 0.0)?;
        Some(self.lo + i as i64)
    }

    fn at(&self, k: i64) -> (f64, f64) {
        let i = k - self.lo;
        if (0..self.hours.len() as i64).contains(&i) { self.hours[i as usize] } else { (0.0, 0.0) }
    }

    fn sum(&self, from: i64, to: i64) -> (f64, f64) {
        let a = (from - self.lo).clamp(0, self.hours.len() as i64) as usize;
        let b = (to - self.lo).clamp(0, self.hours.len() as i64) as usize;
        self.hours[a..b.max(a)].iter().fold((0.0, 0.0), |(t, b), h| ((t + h.0).min(f64::MAX), (b + h.1).min(f64::MAX)))
    }

    /// The median of the pooled bad ratios of the latest `RATIO_BLOCKS`
    /// blocks (walking back from now, a block closes once it has
    /// `RATIO_BLOCK_HOURS` hours and traffic enough for
    /// `MIN_BLOCK_BAD` bad requests at 1× burn); the ratio pooled over all
    /// the history when it has fewer blocks. Whether blocks were used.
    fn recent_ratio(&self, allowed: f64) -> (f64, bool) {
        let mut ratios = Vec::with_capacity(RATIO_BLOCKS);
        let (mut t, mut b, mut n) = (0.0, 0.0, 0);
        for h in self.hours.iter().rev() {
            t += h.0;
            b += h.1;
            n += 1;
            if n >= RATIO_BLOCK_HOURS && t * allowed >= MIN_BLOCK_BAD {
                ratios.push(b / t);
                (t, b, n) = (0.0, 0.0, 0);
                if ratios.len() == RATIO_BLOCKS {
                    return (clamp_finite(median(&mut ratios)).clamp(0.0, 1.0), true);
                }
            }
        }
        let (t, b) = self.sum(self.lo, self.lo + self.hours.len() as i64);
        (if t > 0.0 { clamp_finite(b / t).clamp(0.0, 1.0) } else { 0.0 }, false)
    }

    /// Hourly totals for hours `now_idx..walk_end` from the complete hours
    /// `first_present..now_idx`; whether the model made them.
    fn forecast_totals(&self, first_present: i64, now_idx: i64, walk_end: i64) -> (Totals, bool) {
        let complete: Vec<(i64, f64)> = (first_present..now_idx.min(self.lo + self.hours.len() as i64))
            .map(|k| (k.saturating_mul(HOUR_MS), self.at(k).0))
            .collect();
        let recent = &complete[complete.len().saturating_sub(24)..];
        let flat = if recent.is_empty() {
            // Only the current, partial hour: its count is a floor of an hour's.
            self.at(now_idx).0
        } else {
            recent.iter().map(|r| r.1).sum::<f64>() / recent.len() as f64
        };
        let horizon = (walk_end - now_idx).max(0) as usize;
        let flat_totals = Totals { from: now_idx, values: Vec::new(), flat };
        if horizon == 0 || complete.len() < 2 {
            return (flat_totals, false);
        }
        let opts = model::Options { horizon: horizon.min(model::MAX_HORIZON), ..model::Options::default() };
        match model::forecast(&complete, &opts) {
            Ok(f) if f.step_ms == HOUR_MS => {
                let values =
                    f.points.iter().map(|p| if p.forecast.is_finite() { p.forecast.max(0.0) } else { flat }).collect();
                (Totals { from: now_idx, values, flat }, true)
            }
            _ => (flat_totals, false),
        }
    }
}

/// Forecast hourly totals from hour `from`; `flat` past the forecast.
struct Totals {
    from: i64,
    values: Vec<f64>,
    flat: f64,
}

impl Totals {
    fn at(&self, k: i64) -> f64 {
        let i = k - self.from;
        if (0..self.values.len() as i64).contains(&i) { self.values[i as usize] } else { self.flat }
    }
}

#[cfg(test)]
mod tests;

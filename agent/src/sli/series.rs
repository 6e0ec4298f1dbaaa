//! The time series of one SLO: the buckets its events are counted in, and the
//! window sums read from them.
//!
//! Occurrence SLOs keep two rings: 1-minute buckets for the last
//! [`FINE_SPAN`] minutes (every alert window is exact to the minute) and
//! 15-minute buckets covering the SLO window (memory stays bounded however long
//! the window). Timeslice SLOs keep one ring of slices covering the window.
//!
//! Window semantics (documented in docs/spec.md): a window of length W at time
//! T counts the W whole minutes ending with the minute that contains T. When a
//! window reaches further back than the 1-minute ring (only SLO windows longer
//! than 3 days do), its old edge is moved forward to the next 15-minute
//! boundary, so it may be up to 14 minutes shorter than W. Calendar windows
//! start on a 15-minute boundary in every time zone in use, so they are exact.

use std::ops::Range;

use crate::sli::ring::{BucketStore, BucketValue, CountCells, Counts, Ring};
use crate::spec::model::{Budgeting, SloWindow};

/// Minutes kept at 1-minute resolution: the longest alert window (3d) plus an
/// hour for late data.
pub const FINE_SPAN: u32 = 3 * 1440 + 60;
/// Width of the coarse buckets, minutes. Every current UTC offset is a
/// multiple of 15 minutes, so calendar windows align with these buckets.
pub const COARSE_WIDTH: u32 = 15;
/// Extra coverage beyond the longest SLO window, minutes, for late data.
const SLACK: u32 = 1440;

/// Which ring a persisted bucket belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum RingId {
    Fine = 0,
    Coarse = 1,
    Slices = 2,
}

impl RingId {
    pub fn from_u8(v: u8) -> Option<RingId> {
        match v {
            0 => Some(RingId::Fine),
            1 => Some(RingId::Coarse),
            2 => Some(RingId::Slices),
            _ => None,
        }
    }
}

/// A slice's counts, summarized under a slice policy.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct SliceValue {
    pub counts: Counts,
    /// `good_ratio_at_least` for Timeslices, NaN for RatioTimeslices.
    target: f64,
}

#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct SliceSummary {
    pub counts: Counts,
    /// Slices with at least one event.
    pub slices: u64,
    /// Timeslices: slices meeting the target. RatioTimeslices: sum of ratios.
    pub good_slices: f64,
}

impl std::ops::Add for SliceSummary {
    type Output = SliceSummary;
    fn add(self, o: Self) -> Self {
        SliceSummary {
            counts: self.counts + o.counts,
            slices: self.slices.wrapping_add(o.slices),
            good_slices: self.good_slices + o.good_slices,
        }
    }
}

impl std::ops::Sub for SliceSummary {
    type Output = SliceSummary;
    fn sub(self, o: Self) -> Self {
        SliceSummary {
            counts: self.counts - o.counts,
            slices: self.slices.wrapping_sub(o.slices),
            good_slices: self.good_slices - o.good_slices,
        }
    }
}

impl BucketValue for SliceValue {
    type Summary = SliceSummary;
    type Store = SliceCells;
    fn summarize(&self) -> SliceSummary {
        let c = self.counts;
        if c.total == 0 {
            return SliceSummary::default();
        }
        let ratio = c.good as f64 / c.total as f64;
        let good_slices = if self.target.is_nan() {
            ratio
        } else if ratio >= self.target {
            1.0
        } else {
            0.0
        };
        SliceSummary { counts: c, slices: 1, good_slices }
    }
    fn merge(&mut self, other: &SliceValue) {
        self.counts = self.counts + other.counts;
        if !other.is_empty() {
            self.target = other.target;
        }
    }
    fn is_empty(&self) -> bool {
        self.counts.is_empty()
    }
}

/// A slice ring's values: the counts of each slice, and the one target
/// every slice of a series is judged by (kept once, not per slice).
#[derive(Debug, Clone)]
pub struct SliceCells {
    counts: CountCells,
    target: f64,
}

impl BucketStore<SliceValue> for SliceCells {
    fn new(len: usize) -> SliceCells {
        SliceCells { counts: CountCells::new(len), target: 0.0 }
    }

    fn get(&self, slot: usize) -> SliceValue {
        SliceValue { counts: self.counts.get(slot), target: self.target }
    }

    fn set(&mut self, slot: usize, value: SliceValue) {
        if !value.is_empty() {
            self.target = value.target;
        }
        self.counts.set(slot, value.counts);
    }

    fn summarize(&self, slots: Range<usize>) -> SliceSummary {
        slots.map(|s| self.get(s).summarize()).fold(SliceSummary::default(), |a, b| a + b)
    }

    fn bytes(&self) -> usize {
        BucketStore::<Counts>::bytes(&self.counts)
    }
}

/// What a window holds.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct WindowStats {
    pub events: Counts,
    /// What the SLI is a ratio of: events for occurrences, slices otherwise.
    pub units_good: f64,
    pub units_total: f64,
}

impl WindowStats {
    /// good / total of the units, `None` when the window is empty.
    pub fn sli(&self) -> Option<f64> {
        (self.units_total > 0.0).then(|| self.units_good / self.units_total)
    }

    /// The bad fraction divided by the allowed bad fraction.
    pub fn burn_rate(&self, error_budget_ratio: f64) -> Option<f64> {
        self.sli().map(|sli| clean((1.0 - sli) / error_budget_ratio))
    }
}

/// Suppress floating-point dust (1e-16 burn when nothing failed).
pub fn clean(v: f64) -> f64 {
    if v.abs() < 1e-12 { 0.0 } else { v }
}

#[derive(Debug, Clone)]
pub enum Series {
    Occurrences { fine: Ring<Counts>, coarse: Option<Ring<Counts>> },
    Slices { ring: Ring<SliceValue>, target: f64 },
}

impl Series {
    pub fn new(window: &SloWindow, budgeting: &Budgeting) -> Series {
        let longest = window.longest().0 + SLACK;
        match *budgeting {
            Budgeting::Occurrences => {
                let fine = Ring::new(1, FINE_SPAN as usize);
                let coarse = (window.longest().0 > FINE_SPAN - 60)
                    .then(|| Ring::new(COARSE_WIDTH, longest.div_ceil(COARSE_WIDTH) as usize));
                Series::Occurrences { fine, coarse }
            }
            Budgeting::Timeslices { slice, good_ratio_at_least } => Series::Slices {
                ring: Ring::new(slice.0, longest.div_ceil(slice.0) as usize),
                target: good_ratio_at_least,
            },
            Budgeting::RatioTimeslices { slice } => {
                Series::Slices { ring: Ring::new(slice.0, longest.div_ceil(slice.0) as usize), target: f64::NAN }
            }
        }
    }

    /// Count one event in the minute it happened. Returns false when the
    /// minute is older than anything this series keeps.
    #[inline]
    pub fn record(&mut self, minute: i64, good: bool, dirty: Option<&mut DirtyBuckets>) -> bool {
        self.record_counts(minute, Counts { good: good as u64, total: 1 }, dirty)
    }

    /// Count several events of one minute at once.
    #[inline]
    pub fn record_counts(&mut self, minute: i64, add: Counts, dirty: Option<&mut DirtyBuckets>) -> bool {
        let (g, n) = (add.good, add.total);
        match self {
            Series::Occurrences { fine, coarse } => {
                let in_fine = fine.add_with(minute, |c| {
                    c.total += n;
                    c.good += g;
                });
                let mut in_coarse = false;
                let cb = minute.div_euclid(COARSE_WIDTH as i64);
                if let Some(coarse) = coarse {
                    in_coarse = coarse.add_with(cb, |c| {
                        c.total += n;
                        c.good += g;
                    });
                }
                if let Some(d) = dirty {
                    if in_fine {
                        d.push(RingId::Fine, minute);
                    }
                    if in_coarse {
                        d.push(RingId::Coarse, cb);
                    }
                }
                in_fine || in_coarse
            }
            Series::Slices { ring, target } => {
                let b = ring.bucket_of_minute(minute);
                let t = *target;
                let ok = ring.add_with(b, |v| {
                    v.target = t;
                    v.counts.total += n;
                    v.counts.good += g;
                });
                if ok && let Some(d) = dirty {
                    d.push(RingId::Slices, b);
                }
                ok
            }
        }
    }

    /// Events (and units) in the minutes `[first, last]`, with the window
    /// semantics described in the module docs.
    pub fn window(&mut self, first: i64, last: i64) -> WindowStats {
        match self {
            Series::Occurrences { fine, coarse } => {
                let events = if fine.covers(first) || coarse.is_none() {
                    fine.sum(first, last)
                } else {
                    let coarse = coarse.as_mut().expect("checked above");
                    let w = COARSE_WIDTH as i64;
                    // Whole quarter hours from the first boundary at or after
                    // `first` up to the quarter hour that contains `last`.
                    let first_q = first.div_euclid(w) + i64::from(first.rem_euclid(w) != 0);
                    let last_q = last.div_euclid(w);
                    coarse.sum(first_q, last_q - 1) + fine.sum(last_q * w, last)
                };
                WindowStats { events, units_good: events.good as f64, units_total: events.total as f64 }
            }
            Series::Slices { ring, .. } => {
                let s = ring.sum(ring.bucket_of_minute(first), ring.bucket_of_minute(last));
                WindowStats { events: s.counts, units_good: s.good_slices, units_total: s.slices as f64 }
            }
        }
    }

    /// The persisted value of a bucket.
    pub fn bucket(&self, ring: RingId, bucket: i64) -> Option<Counts> {
        match (self, ring) {
            (Series::Occurrences { fine, .. }, RingId::Fine) => fine.get(bucket),
            (Series::Occurrences { coarse: Some(c), .. }, RingId::Coarse) => c.get(bucket),
            (Series::Slices { ring, .. }, RingId::Slices) => ring.get(bucket).map(|v| v.counts),
            _ => None,
        }
    }

    /// Restore a persisted bucket. Buckets this series does not keep (another
    /// budgeting method, or too old) are ignored and reported as false.
    pub fn restore(&mut self, ring: RingId, bucket: i64, counts: Counts) -> bool {
        match (self, ring) {
            (Series::Occurrences { fine, .. }, RingId::Fine) => fine.set(bucket, counts),
            (Series::Occurrences { coarse: Some(c), .. }, RingId::Coarse) => c.set(bucket, counts),
            (Series::Slices { ring, target }, RingId::Slices) => {
                ring.set(bucket, SliceValue { counts, target: *target })
            }
            _ => false,
        }
    }

    /// The oldest bucket of each ring still retained, for pruning the store.
    pub fn retained_from(&self) -> Vec<(RingId, i64)> {
        match self {
            Series::Occurrences { fine, coarse } => {
                let mut v = Vec::new();
                if let Some(o) = fine.oldest() {
                    v.push((RingId::Fine, o));
                }
                if let Some(o) = coarse.as_ref().and_then(|c| c.oldest()) {
                    v.push((RingId::Coarse, o));
                }
                v
            }
            Series::Slices { ring, .. } => ring.oldest().map(|o| vec![(RingId::Slices, o)]).unwrap_or_default(),
        }
    }

    /// Bytes this series holds: its rings, their buckets and block sums.
    pub fn memory_bytes(&self) -> usize {
        std::mem::size_of::<Series>()
            + match self {
                Series::Occurrences { fine, coarse } => {
                    fine.memory_bytes() + coarse.as_ref().map_or(0, |c| c.memory_bytes())
                }
                Series::Slices { ring, .. } => ring.memory_bytes(),
            }
    }

    /// Add every bucket `other` retains into this series, with retention
    /// counted back from the newer of the two heads of each ring: the same
    /// window sums and buckets as if every event of both had been recorded
    /// into one series, in any order (provided none was older than what was
    /// retained when it came). For parallel replay: each part counted into
    /// its own series, then merged. Returns false, changing nothing, when the
    /// two series are not of the same shape (budgeting, slice, window).
    pub fn merge_from(&mut self, other: &Series) -> bool {
        match (self, other) {
            (Series::Occurrences { fine, coarse }, Series::Occurrences { fine: of, coarse: oc }) => {
                let same = (fine.width(), fine.len()) == (of.width(), of.len())
                    && match (&*coarse, oc) {
                        (Some(c), Some(o)) => (c.width(), c.len()) == (o.width(), o.len()),
                        (None, None) => true,
                        _ => false,
                    };
                if !same {
                    return false;
                }
                fine.merge_from(of);
                if let (Some(c), Some(o)) = (coarse, oc) {
                    c.merge_from(o);
                }
                true
            }
            (Series::Slices { ring, target }, Series::Slices { ring: or, target: ot })
                if target.to_bits() == ot.to_bits() =>
            {
                ring.merge_from(or)
            }
            _ => false,
        }
    }
}

/// Buckets changed since the last drain, so only those are written to the store.
#[derive(Debug, Default, Clone)]
pub struct DirtyBuckets {
    list: Vec<(RingId, i64)>,
}

impl DirtyBuckets {
    #[inline]
    pub fn push(&mut self, ring: RingId, bucket: i64) {
        // In-order streams touch the same bucket again and again: skip the
        // obvious repeats here and the rest at drain time.
        if self.list.iter().rev().take(4).any(|&(r, b)| r == ring && b == bucket) {
            return;
        }
        self.list.push((ring, bucket));
    }

    pub fn drain(&mut self) -> Vec<(RingId, i64)> {
        let mut v = std::mem::take(&mut self.list);
        v.sort_unstable();
        v.dedup();
        v
    }

    pub fn is_empty(&self) -> bool {
        self.list.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::model::Minutes;

    #[test]
    fn long_window_uses_coarse_buckets_with_quarter_hour_edge() {
        let mut s = Series::new(&SloWindow::Rolling(Minutes(28 * 1440)), &Budgeting::Occurrences);
        // One event per hour over 30 days.
        let start = 1_000_000i64 * 15; // a quarter-hour boundary
        for h in 0..(30 * 24) {
            assert!(s.record(start + h * 60 + 7, h % 10 != 0, None));
        }
        let last = start + 30 * 24 * 60 - 1;
        let w = s.window(last - 28 * 1440 + 1, last);
        assert_eq!(w.events.total, 28 * 24);
        // The 1h alert window is exact.
        let w = s.window(last - 59, last);
        assert_eq!(w.events.total, 1);
    }

    /// Two series fed halves of an event stream, merged, answer every
    /// window like one series fed all of it (out of order, with events too
    /// old for the end's retention on either side).
    #[test]
    fn merged_series_equal_one_series_fed_everything() {
        let budgetings = [
            Budgeting::Occurrences,
            Budgeting::Timeslices { slice: Minutes(5), good_ratio_at_least: 0.9 },
            Budgeting::RatioTimeslices { slice: Minutes(1) },
        ];
        for b in budgetings {
            let window = SloWindow::Rolling(Minutes(7 * 1440));
            let (mut all, mut a, mut b2) =
                (Series::new(&window, &b), Series::new(&window, &b), Series::new(&window, &b));
            let mut x = 11u64;
            for i in 0..20_000i64 {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                // Mostly forward over 12 days, with late events up to a day back.
                let minute = i * 12 * 1440 / 20_000 - (x % 1440) as i64 * i64::from(x.is_multiple_of(7));
                let good = !x.is_multiple_of(13);
                all.record(minute, good, None);
                if x.is_multiple_of(3) {
                    a.record(minute, good, None)
                } else {
                    b2.record(minute, good, None)
                };
            }
            assert!(a.merge_from(&b2));
            let last = 12 * 1440;
            for (first, last) in
                [(last - 7 * 1440 + 1, last), (last - 59, last), (last - 3 * 1440, last - 1440), (0, 5)]
            {
                let (m, one) = (a.window(first, last), all.window(first, last));
                if matches!(b, Budgeting::RatioTimeslices { .. }) {
                    // Sums of ratios: the prefix sums start from what each
                    // ring evicted, so the last bits may differ.
                    assert_eq!((m.events, m.units_total), (one.events, one.units_total), "{b:?} {first}..{last}");
                    assert!((m.units_good - one.units_good).abs() <= 1e-9 * one.units_good, "{b:?} {first}..{last}");
                } else {
                    assert_eq!(m, one, "{b:?} {first}..{last}");
                }
            }
            assert_eq!(a.retained_from(), all.retained_from());
        }
    }

    #[test]
    fn timeslices_count_slices_meeting_the_target() {
        let b = Budgeting::Timeslices { slice: Minutes(1), good_ratio_at_least: 0.9 };
        let mut s = Series::new(&SloWindow::Rolling(Minutes(60)), &b);
        for m in 0..10 {
            for i in 0..10 {
                // Minute 3 has 2 bad of 10 → bad slice; others 1 bad of 10 → good.
                let bad = i == 0 || (m == 3 && i == 1);
                s.record(m, !bad, None);
            }
        }
        let w = s.window(0, 59);
        assert_eq!(w.units_total, 10.0);
        assert_eq!(w.units_good, 9.0);
        assert_eq!(w.events.total, 100);
        assert_eq!(w.events.good, 89);
    }

    fn xorshift(x: &mut u64) -> u64 {
        *x ^= *x << 13;
        *x ^= *x >> 7;
        *x ^= *x << 17;
        *x
    }

    /// Every retained bucket of every ring, for comparing series.
    fn buckets(s: &Series) -> Vec<(RingId, i64, Counts)> {
        let mut out = Vec::new();
        for (ring, from) in s.retained_from() {
            let mut b = from;
            while let Some(c) = s.bucket(ring, b) {
                out.push((ring, b, c));
                b += 1;
            }
        }
        out
    }

    /// A random event stream split in two, recorded into two series and
    /// merged (either way round), gives the window sums and buckets of the
    /// whole stream recorded into one series.
    #[test]
    fn merging_two_parts_equals_recording_the_whole() {
        let mut x = 0x5151u64;
        let kinds = [
            (SloWindow::Rolling(Minutes(28 * 1440)), Budgeting::Occurrences),
            (SloWindow::Rolling(Minutes(1440)), Budgeting::Occurrences),
            (
                SloWindow::Rolling(Minutes(3 * 1440)),
                Budgeting::Timeslices { slice: Minutes(5), good_ratio_at_least: 0.8 },
            ),
            (SloWindow::Rolling(Minutes(1440)), Budgeting::RatioTimeslices { slice: Minutes(1) }),
        ];
        for round in 0..40 {
            let (window, budgeting) = &kinds[round % kinds.len()];
            let longest = window.longest().0 as u64;
            let mut whole = Series::new(window, budgeting);
            let (mut a, mut b) = (whole.clone(), whole.clone());
            let mut head = 10_000_000i64 + (xorshift(&mut x) % 1000) as i64;
            for _ in 0..2000 {
                head += (xorshift(&mut x) % (longest / 300 + 2)) as i64;
                // Late by up to a little more than the 1-minute ring holds, or the window.
                let late = (xorshift(&mut x) % (longest.min(FINE_SPAN as u64 + 600))) as i64;
                let minute = head - late * i64::from(xorshift(&mut x).is_multiple_of(4));
                let good = !xorshift(&mut x).is_multiple_of(7);
                assert!(whole.record(minute, good, None), "round {round}: minute {minute} head {head}");
                let part = if xorshift(&mut x).is_multiple_of(2) { &mut a } else { &mut b };
                assert!(part.record(minute, good, None));
            }
            let (mut ab, mut ba) = (a.clone(), b.clone());
            assert!(ab.merge_from(&b));
            assert!(ba.merge_from(&a));
            for m in [&mut ab, &mut ba] {
                assert_eq!(m.retained_from(), whole.retained_from(), "round {round}");
                assert_eq!(buckets(m), buckets(&whole), "round {round}");
                for _ in 0..50 {
                    let last = head - (xorshift(&mut x) % 100) as i64;
                    let len = 1 + (xorshift(&mut x) % longest) as i64;
                    assert_eq!(m.window(last - len + 1, last), whole.window(last - len + 1, last), "round {round}");
                }
            }
        }
        // Series of other shapes are not merged.
        let mut occ = Series::new(&SloWindow::Rolling(Minutes(28 * 1440)), &Budgeting::Occurrences);
        assert!(!occ.merge_from(&Series::new(&SloWindow::Rolling(Minutes(1440)), &Budgeting::Occurrences)));
        let b = Budgeting::Timeslices { slice: Minutes(1), good_ratio_at_least: 0.9 };
        assert!(!occ.merge_from(&Series::new(&SloWindow::Rolling(Minutes(1440)), &b)));
        let mut sl = Series::new(&SloWindow::Rolling(Minutes(1440)), &b);
        let other = Budgeting::Timeslices { slice: Minutes(1), good_ratio_at_least: 0.5 };
        assert!(!sl.merge_from(&Series::new(&SloWindow::Rolling(Minutes(1440)), &other)));
    }

    /// Memory of an occurrence SLO with a 28-day window is bounded by its
    /// rings' lengths: about 36 KB while no minute holds 65,536 events,
    /// about 64 KB once counts need 32 bits (docs/operations.md).
    #[test]
    fn memory_of_a_28_day_occurrence_series() {
        let mut s = Series::new(&SloWindow::Rolling(Minutes(28 * 1440)), &Budgeting::Occurrences);
        let quiet = s.memory_bytes();
        for m in 0..(30 * 1440) {
            s.record_counts(m, Counts { good: 900, total: 1000 }, None);
        }
        assert_eq!(s.memory_bytes(), quiet, "15-minute buckets of 15,000 events fit in 16 bits");
        s.record_counts(30 * 1440, Counts { good: 70_000, total: 70_000 }, None);
        let busy = s.memory_bytes();
        eprintln!("28-day occurrence series: {quiet} bytes, {busy} bytes with 32-bit counts");
        assert!(quiet < 40_000, "{quiet}");
        assert!(busy < 70_000, "{busy}");
    }
}

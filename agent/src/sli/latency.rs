//! Latency percentiles: one mergeable HDR histogram per UTC day, kept for the
//! days an SLO window can reach. A window's percentiles merge the days it
//! touches, so they are exact to the day at the window's old edge.

use std::collections::VecDeque;

use crate::sli::hdr;

pub const DAY_MS: i64 = 86_400_000;

pub type LatencyHistogram = hdr::Histogram;

pub fn new_histogram() -> LatencyHistogram {
    hdr::Histogram::default()
}

/// p50, p90, p99 in milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct Percentiles {
    pub p50: f64,
    pub p90: f64,
    pub p99: f64,
}

#[derive(Debug, Clone)]
pub struct LatencyDays {
    /// `(utc day number, histogram)`, oldest first; only days with data.
    days: VecDeque<(i64, Box<LatencyHistogram>)>,
    /// How many days back from the newest are kept.
    keep_days: i64,
    /// Days changed since the last drain, for persistence.
    dirty: Vec<i64>,
    /// The newest day held (`i64::MIN` when none): nearly every event is on it.
    newest_day: i64,
    /// Bumped whenever a day other than the newest changes (a late event,
    /// a restore, a day added or dropped): the past days' merge is stale.
    past_version: u64,
    /// The merge of the window's days before the newest one, as of
    /// (first day, newest day, `past_version`): a window of 28 days is then
    /// this and today's histogram, not 28 merges per evaluation.
    past: Option<(i64, i64, u64, Box<LatencyHistogram>)>,
}

impl LatencyDays {
    pub fn new(keep_days: u32) -> LatencyDays {
        LatencyDays {
            days: VecDeque::new(),
            keep_days: keep_days.max(1) as i64,
            dirty: Vec::new(),
            newest_day: i64::MIN,
            past_version: 0,
            past: None,
        }
    }

    /// Record a latency at an event time. Returns false when the day is older
    /// than what is kept.
    pub fn record(&mut self, ts_ms: i64, latency_ms: f64, track_dirty: bool) -> bool {
        self.record_slot(ts_ms.div_euclid(DAY_MS), hdr::slot_of_ms(latency_ms), track_dirty)
    }

    /// Record a latency already turned into its histogram slot and
    /// microseconds ([`hdr::slot_of_ms`]), on a UTC day.
    #[inline]
    pub fn record_slot(&mut self, day: i64, slot: (u16, u64), track_dirty: bool) -> bool {
        self.record_slot_n(day, slot, 1, track_dirty)
    }

    /// [`Self::record_slot`] for `n` requests of the same latency.
    #[inline]
    pub fn record_slot_n(&mut self, day: i64, (index, us): (u16, u64), n: u64, track_dirty: bool) -> bool {
        if day == self.newest_day
            && let Some((_, h)) = self.days.back_mut()
        {
            h.record_at_n(index, us, n);
        } else {
            let Some(h) = self.day_mut(day) else { return false };
            h.record_at_n(index, us, n);
        }
        if track_dirty && self.dirty.last() != Some(&day) {
            self.dirty.push(day);
        }
        true
    }

    #[inline(never)]
    fn day_mut(&mut self, day: i64) -> Option<&mut LatencyHistogram> {
        self.past_version += 1;
        // Fast path: the newest day.
        if let Some((d, _)) = self.days.back()
            && *d == day
        {
            return self.days.back_mut().map(|(_, h)| h.as_mut());
        }
        let newest = self.days.back().map(|(d, _)| *d);
        if let Some(n) = newest
            && day <= n - self.keep_days
        {
            return None;
        }
        let pos = self.days.partition_point(|(d, _)| *d < day);
        if pos == self.days.len() || self.days[pos].0 != day {
            self.days.insert(pos, (day, Box::new(new_histogram())));
        }
        // Evict days that fell out.
        let newest = self.days.back().map(|(d, _)| *d).unwrap_or(day);
        while self.days.front().is_some_and(|(d, _)| *d <= newest - self.keep_days) {
            self.days.pop_front();
        }
        self.newest_day = newest;
        let pos = self.days.partition_point(|(d, _)| *d < day);
        self.days.get_mut(pos).filter(|(d, _)| *d == day).map(|(_, h)| h.as_mut())
    }

    /// Percentiles over the days that overlap `[first_ms, last_ms]`.
    pub fn percentiles(&mut self, first_ms: i64, last_ms: i64) -> Option<Percentiles> {
        let (fd, ld) = (first_ms.div_euclid(DAY_MS), last_ms.div_euclid(DAY_MS));
        let newest = self.days.back().map(|(d, _)| *d)?;
        let qs = [0.5, 0.9, 0.99];
        let v = if newest == ld {
            // The window ends in the newest day: past days' merge (cached) + today.
            let fresh = matches!(&self.past, Some((f, l, v, _)) if *f == fd && *l == ld && *v == self.past_version);
            if !fresh {
                let mut merged = new_histogram();
                for (_, h) in self.days.iter().filter(|(d, _)| *d >= fd && *d < ld) {
                    merged.add(h);
                }
                self.past = Some((fd, ld, self.past_version, Box::new(merged)));
            }
            let past = &self.past.as_ref().expect("just built").3;
            let today = self.days.back().map(|(_, h)| h.as_ref());
            past.quantiles_with(today, qs)?
        } else {
            let mut merged = new_histogram();
            for (_, h) in self.days.iter().filter(|(d, _)| *d >= fd && *d <= ld) {
                merged.add(h);
            }
            merged.quantiles_with(None, qs)?
        };
        let ms = |us: u64| us as f64 / 1000.0;
        Some(Percentiles { p50: ms(v[0]), p90: ms(v[1]), p99: ms(v[2]) })
    }

    pub fn day(&self, day: i64) -> Option<&LatencyHistogram> {
        self.days.iter().find(|(d, _)| *d == day).map(|(_, h)| h.as_ref())
    }

    /// Replace a day's histogram (loading persisted state).
    pub fn restore(&mut self, day: i64, h: LatencyHistogram) {
        self.past_version += 1;
        if let Some(slot) = self.day_mut(day) {
            *slot = h;
        }
    }

    pub fn drain_dirty(&mut self) -> Vec<i64> {
        let mut v = std::mem::take(&mut self.dirty);
        v.sort_unstable();
        v.dedup();
        v
    }

    /// Add `other`'s days into these (the same SLO counted elsewhere): each
    /// day's histograms are added, and the days kept are those within
    /// `keep_days` of the newer of the two newest days.
    pub fn merge_from(&mut self, other: &LatencyDays) {
        // Newest first, so the days kept are counted from the merged newest.
        for (day, h) in other.days.iter().rev() {
            if let Some(mine) = self.day_mut(*day) {
                mine.add(h);
            }
        }
    }

    pub fn set_keep_days(&mut self, keep_days: u32) {
        self.keep_days = keep_days.max(1) as i64;
    }

    pub fn oldest_day(&self) -> Option<i64> {
        self.days.front().map(|(d, _)| *d)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The cached merge of past days plus today gives what merging every
    /// day gives, also after a late event lands in a past day.
    #[test]
    fn the_cached_past_days_agree_with_a_full_merge() {
        let mut l = LatencyDays::new(30);
        let mut x = 7u64;
        let mut rnd = || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        for day in 0..28i64 {
            for _ in 0..200 {
                let v = (rnd() % 5000) as f64 + day as f64;
                l.record(day * DAY_MS + 1, v, false);
            }
        }
        let full = |l: &LatencyDays, fd: i64, ld: i64| {
            let mut m = new_histogram();
            for (_, h) in l.days.iter().filter(|(d, _)| *d >= fd && *d <= ld) {
                m.add(h);
            }
            let q = |p: f64| m.value_at_quantile(p).unwrap() as f64 / 1000.0;
            Percentiles { p50: q(0.5), p90: q(0.9), p99: q(0.99) }
        };
        let (first, last) = (3 * DAY_MS, 28 * DAY_MS - 1);
        assert_eq!(l.percentiles(first, last), Some(full(&l, 3, 27)));
        // Today grows: the cache holds, the answer follows.
        for _ in 0..500 {
            l.record(27 * DAY_MS + 5, 4999.0, false);
        }
        assert_eq!(l.percentiles(first, last), Some(full(&l, 3, 27)));
        // A late event in a past day: the cache is rebuilt.
        for _ in 0..5000 {
            l.record(10 * DAY_MS + 5, 1.0, false);
        }
        assert_eq!(l.percentiles(first, last), Some(full(&l, 3, 27)));
        // A window that does not reach today is merged directly.
        assert_eq!(l.percentiles(DAY_MS, 5 * DAY_MS), Some(full(&l, 1, 5)));
    }

    #[test]
    fn merged_days_equal_one_set_of_days_fed_everything() {
        let (mut all, mut a, mut b) = (LatencyDays::new(3), LatencyDays::new(3), LatencyDays::new(3));
        // `a` sees days 0..=4, `b` days 5 and 6 and then a late event of day
        // 4: after the merge days 4..=6 are kept, day 4 with both sides' values.
        for day in 0..7i64 {
            for i in 0..50 {
                let v = (day * 100 + i) as f64;
                all.record(day * DAY_MS + i, v, false);
                if day <= 4 {
                    a.record(day * DAY_MS + i, v, false)
                } else {
                    b.record(day * DAY_MS + i, v, false)
                };
            }
        }
        all.record(4 * DAY_MS, 1.0, false);
        b.record(4 * DAY_MS, 1.0, false);
        a.merge_from(&b);
        assert_eq!(a.oldest_day(), all.oldest_day());
        for (first, last) in [(0, 7 * DAY_MS - 1), (4 * DAY_MS, 5 * DAY_MS - 1), (6 * DAY_MS, 7 * DAY_MS - 1)] {
            assert_eq!(a.percentiles(first, last), all.percentiles(first, last));
        }
        for day in 4..7 {
            assert_eq!(a.day(day), all.day(day));
        }
    }

    #[test]
    fn percentiles_merge_days_and_drop_old_ones() {
        let mut l = LatencyDays::new(2);
        for i in 1..=100 {
            l.record(5, i as f64, false);
        }
        for _ in 0..100 {
            l.record(DAY_MS + 5, 1000.0, false);
        }
        let p = l.percentiles(0, DAY_MS).unwrap();
        assert!((p.p50 - 100.0).abs() <= 1.0, "{p:?}");
        assert!((p.p99 - 1000.0).abs() <= 10.0, "{p:?}");
        let p = l.percentiles(0, 10).unwrap();
        assert!((p.p50 - 50.0).abs() <= 0.5, "{p:?}");
        // Day 3 evicts day 0 (keep 2 days: 2 and 3).
        l.record(3 * DAY_MS, 1.0, false);
        assert!(l.percentiles(0, 10).is_none());
        assert!(!l.record(0, 1.0, false));
    }
}

//! Latency percentiles: one mergeable HDR histogram per UTC day, kept for the
//! days an SLO window can reach. A window's percentiles merge the days it
//! touches, so they are exact to the day at the window's old edge.
//!
//! The newest day, which nearly every event lands on, is kept dense (fast to
//! record into); every older day, and the cached merge of the past days, in
//! the compact form of [`hdr`] (only the non-empty slots). A late event still
//! lands in its day's compact histogram. The forms change memory, never an
//! answer: precision stays 1/128 of the value (`hdr`'s layout).

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
            let mut h = Box::new(new_histogram());
            if pos == self.days.len() {
                // A new newest day: the one before it is past now.
                if let Some((_, prev)) = self.days.back_mut() {
                    prev.compact();
                }
            } else {
                h.compact();
            }
            self.days.insert(pos, (day, h));
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
                merged.compact();
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
    pub fn restore(&mut self, day: i64, mut h: LatencyHistogram) {
        self.past_version += 1;
        let newest = self.newest_day.max(day);
        if let Some(slot) = self.day_mut(day) {
            if day == newest {
                h.thaw();
            } else {
                h.compact();
            }
            *slot = h;
        }
    }

    /// Add every day `other` holds into this one, keeping the days this one
    /// keeps counted back from the newer of the two newest days: the same
    /// days as if every event of both had been recorded here, in any order
    /// (provided none was older than what was kept when it came). Days
    /// `other` had not drained yet are dirty here too (a day no longer kept
    /// drains as nothing, as it does when recorded here).
    pub fn merge_from(&mut self, other: &LatencyDays) {
        let Some(&(other_newest, _)) = other.days.back() else { return };
        self.past_version += 1;
        // The merged newest day first, so retention counts back from it.
        if self.day_mut(other_newest).is_none() {
            return;
        }
        let keep_from = self.newest_day - self.keep_days;
        for (day, h) in other.days.iter().filter(|(d, _)| *d > keep_from) {
            if let Some(mine) = self.day_mut(*day) {
                mine.add(h);
            }
        }
        for &day in &other.dirty {
            if self.dirty.last() != Some(&day) {
                self.dirty.push(day);
            }
        }
    }

    /// Bytes held: the days' histograms, the cached merge of past days and
    /// the bookkeeping around them.
    pub fn memory_bytes(&self) -> usize {
        std::mem::size_of::<LatencyDays>()
            + self.days.capacity() * std::mem::size_of::<(i64, Box<LatencyHistogram>)>()
            + self.days.iter().map(|(_, h)| h.memory_bytes()).sum::<usize>()
            + self.past.as_ref().map_or(0, |p| p.3.memory_bytes())
            + self.dirty.capacity() * std::mem::size_of::<i64>()
    }

    pub fn drain_dirty(&mut self) -> Vec<i64> {
        let mut v = std::mem::take(&mut self.dirty);
        v.sort_unstable();
        v.dedup();
        v
    }

    /// Mark every day held as changed (to be written again).
    pub fn mark_all_dirty(&mut self) {
        self.dirty.extend(self.days.iter().map(|(d, _)| *d));
    }

    pub fn keep_days(&self) -> u32 {
        self.keep_days as u32
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

    fn xorshift(x: &mut u64) -> u64 {
        *x ^= *x << 13;
        *x ^= *x >> 7;
        *x ^= *x << 17;
        *x
    }

    /// Past days are compact, today dense; percentiles over any window equal
    /// those of a merge of plain dense histograms fed the same events, also
    /// after late events, restores and evictions.
    #[test]
    fn compact_past_days_answer_as_dense_ones() {
        let mut l = LatencyDays::new(29);
        let mut reference: std::collections::BTreeMap<i64, LatencyHistogram> = Default::default();
        let mut x = 42u64;
        fn record(
            l: &mut LatencyDays,
            reference: &mut std::collections::BTreeMap<i64, LatencyHistogram>,
            day: i64,
            ms: f64,
        ) {
            if l.record(day * DAY_MS + 1000, ms, true) {
                let (i, us) = hdr::slot_of_ms(ms);
                reference.entry(day).or_default().record_at(i, us);
            }
        }
        for day in 0..40i64 {
            for _ in 0..300 {
                let ms = (xorshift(&mut x) % 3000) as f64 + (xorshift(&mut x) % 1000) as f64 / 1000.0;
                record(&mut l, &mut reference, day, ms);
            }
            // Late events into a few past days.
            for back in [1, 5, 27] {
                record(&mut l, &mut reference, day - back, (xorshift(&mut x) % 60_000) as f64);
            }
            let newest = day;
            reference.retain(|d, _| *d > newest - 29);
            for (d, h) in &l.days {
                assert_eq!(h.is_compact(), *d != newest, "day {d} when {newest} is the newest");
                assert_eq!(Some(h.as_ref()), reference.get(d), "day {d}");
            }
            for fd in [day - 27, day - 3, day] {
                for ld in [day, day - 1].into_iter().filter(|ld| *ld >= fd) {
                    let mut m = new_histogram();
                    for h in reference.range(fd..=ld).map(|(_, h)| h) {
                        m.add(h);
                    }
                    let want = m.value_at_quantile(0.5).map(|p50| {
                        let q = |p: f64| m.value_at_quantile(p).unwrap() as f64 / 1000.0;
                        Percentiles { p50: p50 as f64 / 1000.0, p90: q(0.9), p99: q(0.99) }
                    });
                    assert_eq!(l.percentiles(fd * DAY_MS, ld * DAY_MS + DAY_MS - 1), want, "days {fd}..={ld} at {day}");
                }
            }
        }
        let dense: usize = reference.values().map(|h| h.memory_bytes()).sum();
        assert!(l.memory_bytes() < dense, "{} vs {dense}", l.memory_bytes());
        // Restoring a past day keeps it compact, the newest dense.
        let mut r = LatencyDays::new(29);
        for (d, h) in &reference {
            r.restore(*d, h.clone());
        }
        for (d, h) in &r.days {
            assert_eq!(h.is_compact(), *d != 39, "day {d}");
            assert_eq!(Some(h.as_ref()), reference.get(d));
        }
        assert_eq!(r.percentiles(12 * DAY_MS, 40 * DAY_MS - 1), l.percentiles(12 * DAY_MS, 40 * DAY_MS - 1));
    }

    /// A random stream split in two, recorded into two `LatencyDays` and
    /// merged (either way round), equals the stream recorded into one.
    #[test]
    fn merging_two_parts_equals_recording_the_whole() {
        let mut x = 7u64;
        for round in 0..30 {
            let keep = 1 + (xorshift(&mut x) % 30) as u32;
            let mut stream = Vec::new();
            let mut head = 0i64;
            for _ in 0..(50 + round * 40) {
                head += i64::from(xorshift(&mut x).is_multiple_of(8));
                let day = head - (xorshift(&mut x) % keep as u64) as i64;
                stream.push((day, (xorshift(&mut x) % 20_000) as f64 / 7.0));
            }
            let mut whole = LatencyDays::new(keep);
            let (mut a, mut b) = (LatencyDays::new(keep), LatencyDays::new(keep));
            for &(day, ms) in &stream {
                assert!(whole.record(day * DAY_MS + 5, ms, true));
                let part = if xorshift(&mut x).is_multiple_of(3) { &mut a } else { &mut b };
                assert!(part.record(day * DAY_MS + 5, ms, true));
            }
            let (mut ab, mut ba) = (a.clone(), b.clone());
            ab.merge_from(&b);
            ba.merge_from(&a);
            for m in [&mut ab, &mut ba] {
                assert_eq!(m.oldest_day(), whole.oldest_day(), "round {round}");
                let days: Vec<i64> = m.days.iter().map(|(d, _)| *d).collect();
                assert_eq!(days, whole.days.iter().map(|(d, _)| *d).collect::<Vec<_>>(), "round {round}");
                for &d in &days {
                    assert_eq!(m.day(d), whole.day(d), "round {round} day {d}");
                    assert_eq!(m.day(d).unwrap().is_compact(), Some(&d) != days.last());
                }
                for fd in [head - keep as i64, head - 2, head] {
                    for ld in [head, head - 1] {
                        let (f, l) = (fd * DAY_MS, ld * DAY_MS + DAY_MS - 1);
                        assert_eq!(m.percentiles(f, l), whole.percentiles(f, l), "round {round}: {fd}..={ld}");
                    }
                }
                assert_eq!(m.drain_dirty(), whole.clone().drain_dirty(), "round {round}");
            }
        }
        // Merging nothing, or into nothing.
        let mut empty = LatencyDays::new(3);
        let mut one = LatencyDays::new(3);
        one.record(5, 10.0, false);
        empty.merge_from(&LatencyDays::new(3));
        assert_eq!(empty.oldest_day(), None);
        empty.merge_from(&one);
        assert_eq!(empty.day(0), one.day(0));
    }
}

//! A small latency sketch for one hop of one route in one minute: the
//! engine's HDR slot layout ([`crate::sli::hdr`]) coarsened to 16 slots per
//! power of two (values within about 3 %), held sparse, and never more than
//! [`MAX_SLOTS`] slots: when a minute's values spread wider, neighbouring
//! slots are merged (16 → 8 → 4 … per power of two), so a sketch's size is
//! bounded whatever the traffic. Mergeable by adding counts.

use crate::sli::hdr;

/// Non-empty slots kept per sketch.
pub const MAX_SLOTS: usize = 32;
/// HDR slots per coarse slot at full resolution: 2^3 of the 128 per power of two.
const BASE_SHIFT: u32 = 3;

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Sketch {
    /// Extra halvings of resolution beyond [`BASE_SHIFT`].
    shift: u8,
    /// `(coarse slot, count)`, ascending by slot.
    slots: Vec<(u16, u32)>,
    total: u64,
}

impl Sketch {
    /// Record `n` values of `ms` milliseconds (negative, NaN and zero count as
    /// the smallest value; more than an hour as an hour).
    pub fn record_n(&mut self, ms: f64, n: u64) {
        if n == 0 {
            return;
        }
        let (index, _) = hdr::slot_of_ms(ms);
        let slot = index >> (BASE_SHIFT + self.shift as u32);
        let n32 = u32::try_from(n).unwrap_or(u32::MAX);
        match self.slots.binary_search_by_key(&slot, |(s, _)| *s) {
            Ok(i) => self.slots[i].1 = self.slots[i].1.saturating_add(n32),
            Err(i) => self.slots.insert(i, (slot, n32)),
        }
        self.total = self.total.saturating_add(n);
        self.compact();
    }

    pub fn record(&mut self, ms: f64) {
        self.record_n(ms, 1);
    }

    /// Values recorded.
    pub fn len(&self) -> u64 {
        self.total
    }

    pub fn is_empty(&self) -> bool {
        self.total == 0
    }

    /// Add `other`'s counts (at the coarser of the two resolutions).
    pub fn merge(&mut self, other: &Sketch) {
        if other.is_empty() {
            return;
        }
        if other.shift > self.shift {
            self.coarsen_to(other.shift);
        }
        let down = self.shift - other.shift;
        let mut merged = Vec::with_capacity(self.slots.len() + other.slots.len());
        let (mut a, mut b) =
            (self.slots.iter().peekable(), other.slots.iter().map(|&(s, c)| (s >> down, c)).peekable());
        loop {
            let next = match (a.peek(), b.peek()) {
                (Some(&&x), Some(&y)) if x.0 <= y.0 => {
                    a.next();
                    x
                }
                (_, Some(&y)) => {
                    b.next();
                    y
                }
                (Some(&&x), None) => {
                    a.next();
                    x
                }
                (None, None) => break,
            };
            match merged.last_mut() {
                Some((s, c)) if *s == next.0 => *c = u32::saturating_add(*c, next.1),
                _ => merged.push(next),
            }
        }
        self.slots = merged;
        self.total = self.total.saturating_add(other.total);
        self.compact();
    }

    /// Milliseconds at quantile `q` in [0, 1] (the middle of its slot).
    pub fn quantile(&self, q: f64) -> Option<f64> {
        if self.total == 0 {
            return None;
        }
        let want = ((q.clamp(0.0, 1.0) * self.total as f64).ceil() as u64).max(1);
        let mut seen = 0u64;
        for &(slot, count) in &self.slots {
            seen += count as u64;
            if seen >= want {
                return Some(self.middle_us(slot) as f64 / 1000.0);
            }
        }
        self.slots.last().map(|&(slot, _)| self.middle_us(slot) as f64 / 1000.0)
    }

    /// Heap bytes held.
    pub fn heap_bytes(&self) -> usize {
        self.slots.capacity() * std::mem::size_of::<(u16, u32)>()
    }

    fn middle_us(&self, slot: u16) -> u64 {
        let bits = BASE_SHIFT + self.shift as u32;
        let first = ((slot as usize) << bits).min(hdr::SLOTS - 1);
        let last = ((((slot as usize) + 1) << bits) - 1).min(hdr::SLOTS - 1);
        let (low, _) = hdr::slot_range(first);
        let (last_low, width) = hdr::slot_range(last);
        (low + last_low + width) / 2
    }

    fn compact(&mut self) {
        while self.slots.len() > MAX_SLOTS {
            self.coarsen_to(self.shift + 1);
        }
    }

    fn coarsen_to(&mut self, shift: u8) {
        let down = shift.saturating_sub(self.shift);
        if down == 0 {
            return;
        }
        let mut out: Vec<(u16, u32)> = Vec::with_capacity(self.slots.len());
        for &(s, c) in &self.slots {
            let s = s >> down;
            match out.last_mut() {
                Some((last, n)) if *last == s => *n = n.saturating_add(c),
                _ => out.push((s, c)),
            }
        }
        self.slots = out;
        self.shift = shift;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_are_within_a_few_percent() {
        let mut s = Sketch::default();
        for ms in 1..=1000 {
            s.record(ms as f64);
        }
        for (q, want) in [(0.5, 500.0), (0.9, 900.0), (0.99, 990.0)] {
            let got = s.quantile(q).unwrap();
            // 1..1000 ms spans 10 powers of two: 32 slots hold 4 per power of two.
            assert!((got - want).abs() / want < 0.13, "q{q}: {got} vs {want}");
        }
        assert!(s.slots.len() <= MAX_SLOTS);
        let mut narrow = Sketch::default();
        for _ in 0..10 {
            narrow.record(42.0);
        }
        narrow.record(50.0);
        assert!((narrow.quantile(0.5).unwrap() - 42.0).abs() < 42.0 * 0.035);
        assert!((narrow.quantile(1.0).unwrap() - 50.0).abs() < 50.0 * 0.035);
    }

    #[test]
    fn merging_equals_recording_into_one() {
        let (mut a, mut b, mut both) = (Sketch::default(), Sketch::default(), Sketch::default());
        for ms in [3.0, 5.0, 8.0, 13.0] {
            a.record(ms);
            both.record(ms);
        }
        for ms in 1..2000 {
            b.record(ms as f64 / 3.0);
            both.record(ms as f64 / 3.0);
        }
        a.merge(&b);
        assert_eq!(a, both);
        assert_eq!(a.len(), 4 + 1999);
    }

    #[test]
    fn odd_values_never_panic() {
        let mut s = Sketch::default();
        for ms in [f64::NAN, -5.0, 0.0, f64::INFINITY, 1e12, f64::MIN_POSITIVE] {
            s.record(ms);
        }
        s.record_n(1.0, u64::MAX);
        assert!(s.quantile(0.5).is_some());
        assert_eq!(Sketch::default().quantile(0.5), None);
    }
}

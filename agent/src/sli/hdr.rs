//! A high-dynamic-range histogram (Gil Tene's HdrHistogram layout) for
//! latencies in microseconds: log-linear buckets, every value within 1/128
//! (< 1 %) of what was recorded, from 1 µs to one hour, mergeable by adding
//! counts.
//!
//! The engine computes a latency's bucket index once per event and then
//! increments that slot in the histogram of every SLO that counts the event,
//! which is why this is not the `hdrhistogram` crate: there, each record
//! recomputes the index and updates min, max and totals.

/// Sub-buckets per bucket: 2^8 = 256, the first half of which overlaps the
/// previous bucket, so each power of two is cut into 128 steps.
const SUB_BITS: u32 = 8;
const HALF: usize = 1 << (SUB_BITS - 1);
/// Highest value tracked: one hour in microseconds. Larger values are
/// counted as this value, never dropped.
pub const HIGHEST_US: u64 = 3_600_000_000;
/// Slots needed to reach `HIGHEST_US` (< 2^32).
pub const SLOTS: usize = (32 - SUB_BITS as usize + 1) * HALF + HALF;

/// The slot of a value (µs). Values below 1 count as 1, above
/// [`HIGHEST_US`] as `HIGHEST_US`.
#[inline]
pub fn index_of(value_us: u64) -> u16 {
    let v = value_us.clamp(1, HIGHEST_US);
    // Bucket 0 holds 0..256 exactly; bucket b ≥ 1 holds [128·2^b, 256·2^b) in steps of 2^b.
    let msb = 63 - (v | ((1 << SUB_BITS) - 1)).leading_zeros();
    let bucket = msb - (SUB_BITS - 1);
    let sub = (v >> bucket) as usize;
    (bucket as usize * HALF + sub) as u16
}

/// The lowest value of a slot and the width of the values it holds.
#[inline]
pub fn slot_range(index: usize) -> (u64, u64) {
    let bucket = if index < 2 * HALF { 0 } else { index / HALF - 1 };
    let sub = (index - bucket * HALF) as u64;
    (sub << bucket, 1 << bucket)
}

/// The middle of a slot: the value reported for anything recorded in it.
pub fn value_of(index: usize) -> u64 {
    let (low, width) = slot_range(index);
    low + width / 2
}

/// Milliseconds (as decoded) to microseconds within the tracked range, and
/// their slot.
#[inline]
pub fn slot_of_ms(latency_ms: f64) -> (u16, u64) {
    let us = if latency_ms.is_finite() && latency_ms > 0.0 { (latency_ms * 1000.0) as u64 } else { 0 };
    let us = us.clamp(1, HIGHEST_US);
    (index_of(us), us)
}

#[derive(Clone, PartialEq, Eq)]
pub struct Histogram {
    counts: Box<[u64]>,
    total: u64,
    /// Exact extremes (µs), so quantiles never report a value outside what
    /// was recorded (a slot's middle can be).
    min: u64,
    max: u64,
}

impl std::fmt::Debug for Histogram {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Histogram({} values)", self.total)
    }
}

impl Default for Histogram {
    fn default() -> Self {
        Histogram { counts: vec![0; SLOTS].into_boxed_slice(), total: 0, min: u64::MAX, max: 0 }
    }
}

impl Histogram {
    /// Record a value whose slot the caller computed with [`index_of`].
    #[inline]
    pub fn record_at(&mut self, index: u16, value_us: u64) {
        self.record_at_n(index, value_us, 1);
    }

    /// Record `n` requests that all took the same time.
    #[inline]
    pub fn record_at_n(&mut self, index: u16, value_us: u64, n: u64) {
        // `index_of` never returns an index at or beyond `SLOTS`.
        self.counts[index as usize] += n;
        self.total += n;
        self.min = self.min.min(value_us);
        self.max = self.max.max(value_us);
    }

    pub fn record_us(&mut self, value_us: u64) {
        let v = value_us.clamp(1, HIGHEST_US);
        self.record_at(index_of(v), v);
    }

    pub fn len(&self) -> u64 {
        self.total
    }

    pub fn is_empty(&self) -> bool {
        self.total == 0
    }

    pub fn add(&mut self, other: &Histogram) {
        for (a, b) in self.counts.iter_mut().zip(other.counts.iter()) {
            *a += b;
        }
        self.total += other.total;
        self.min = self.min.min(other.min);
        self.max = self.max.max(other.max);
    }

    /// The value (µs, middle of its slot) at quantile `q` in [0, 1]: the
    /// smallest recorded value with at least `q` of all values at or below it.
    pub fn value_at_quantile(&self, q: f64) -> Option<u64> {
        self.quantiles_with(None, [q]).map(|[v]| v)
    }

    /// The values (µs) at several quantiles of this histogram and `other`
    /// together, in one pass and without merging them: what a window made
    /// of a cached merge of past days and today's histogram needs. `qs`
    /// must be ascending.
    pub fn quantiles_with<const N: usize>(&self, other: Option<&Histogram>, qs: [f64; N]) -> Option<[u64; N]> {
        let total = self.total + other.map_or(0, |o| o.total);
        if total == 0 {
            return None;
        }
        let (mut min, mut max) = (self.min, self.max);
        if let Some(o) = other.filter(|o| o.total > 0) {
            min = min.min(o.min);
            max = max.max(o.max);
        }
        let wants = qs.map(|q| ((q.clamp(0.0, 1.0) * total as f64).ceil() as u64).max(1));
        let mut out = [0u64; N];
        let mut next = 0;
        let mut seen = 0u64;
        // Whole chunks that cannot reach the next quantile are summed and
        // skipped (the compiler vectorises the sums); only the chunk where a
        // quantile lies is walked slot by slot.
        const CHUNK: usize = 32;
        let b: &[u64] = other.map_or(&[], |o| &o.counts[..]);
        let a = &self.counts[..];
        let mut start = 0;
        while start < a.len() {
            let end = (start + CHUNK).min(a.len());
            let sum: u64 = if b.is_empty() {
                a[start..end].iter().sum()
            } else {
                a[start..end].iter().zip(&b[start..end]).map(|(x, y)| x + y).sum()
            };
            if seen + sum < wants[next] {
                seen += sum;
                start = end;
                continue;
            }
            for (i, &x) in a.iter().enumerate().take(end).skip(start) {
                seen += x + b.get(i).copied().unwrap_or(0);
                while next < N && seen >= wants[next] {
                    out[next] = value_of(i).clamp(min, max);
                    next += 1;
                }
                if next == N {
                    return Some(out);
                }
            }
            start = end;
        }
        None
    }

    /// Sparse encoding for the store: version byte, min and max (u64), then
    /// (slot u16, count u64) pairs for the non-empty slots, all little-endian.
    pub fn encode(&self, out: &mut Vec<u8>) {
        out.push(1);
        out.extend_from_slice(&self.min.to_le_bytes());
        out.extend_from_slice(&self.max.to_le_bytes());
        for (i, &c) in self.counts.iter().enumerate().filter(|(_, c)| **c > 0) {
            out.extend_from_slice(&(i as u16).to_le_bytes());
            out.extend_from_slice(&c.to_le_bytes());
        }
    }

    pub fn decode(bytes: &[u8]) -> Result<Histogram, String> {
        let Some((&1, rest)) = bytes.split_first() else {
            return Err("unknown histogram encoding".into());
        };
        if rest.len() < 16 {
            return Err("histogram encoding is cut short".into());
        }
        let (extremes, rest) = rest.split_at(16);
        if rest.len() % 10 != 0 {
            return Err(format!("histogram encoding has a torn entry ({} bytes)", rest.len()));
        }
        let mut h = Histogram {
            min: u64::from_le_bytes(extremes[..8].try_into().expect("8 bytes")),
            max: u64::from_le_bytes(extremes[8..].try_into().expect("8 bytes")),
            ..Histogram::default()
        };
        for e in rest.chunks_exact(10) {
            let i = u16::from_le_bytes([e[0], e[1]]) as usize;
            let c = u64::from_le_bytes(e[2..10].try_into().expect("8 bytes"));
            let slot = h.counts.get_mut(i).ok_or_else(|| format!("histogram slot {i} out of range"))?;
            *slot += c;
            h.total += c;
        }
        Ok(h)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_of_two_histograms_equal_those_of_their_merge() {
        let mut x = 99u64;
        for round in 0..50 {
            let (mut a, mut b) = (Histogram::default(), Histogram::default());
            for i in 0..(round * 37 + 1) {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                let v = x % (1 + 10u64.pow((round % 9) as u32));
                if i % 3 == 0 { b.record_us(v) } else { a.record_us(v) }
            }
            let mut m = a.clone();
            m.add(&b);
            let qs = [0.0, 0.5, 0.9, 0.99, 1.0];
            let want = qs.map(|q| m.value_at_quantile(q).unwrap());
            assert_eq!(a.quantiles_with(Some(&b), qs), Some(want), "round {round}");
            assert_eq!(m.quantiles_with(None, qs), Some(want), "round {round}");
        }
        assert_eq!(Histogram::default().quantiles_with(None, [0.5]), None);
    }

    #[test]
    fn every_value_lands_in_a_slot_that_holds_it_within_one_percent() {
        let mut v = 1u64;
        while v <= HIGHEST_US {
            for x in [v, v + 1, v * 3 / 2] {
                let x = x.min(HIGHEST_US);
                let i = index_of(x) as usize;
                assert!(i < SLOTS, "{x} → {i}");
                let (low, width) = slot_range(i);
                assert!(low <= x && x < low + width, "{x} not in slot {i} [{low}, {})", low + width);
                let mid = value_of(i);
                assert!((mid as f64 - x as f64).abs() <= x as f64 / 128.0 + 1.0, "{x} vs {mid}");
            }
            v = v * 2 + 1;
        }
        assert_eq!(index_of(0), index_of(1));
        assert_eq!(index_of(u64::MAX), index_of(HIGHEST_US));
        // Slots are in value order.
        let mut last = 0;
        for i in 1..SLOTS {
            let (low, _) = slot_range(i);
            assert!(low > last || i < 2, "slot {i}");
            last = low;
        }
    }

    #[test]
    fn quantiles_merge_and_round_trip() {
        let mut a = Histogram::default();
        let mut b = Histogram::default();
        for ms in 1..=100u64 {
            a.record_us(ms * 1000);
        }
        for _ in 0..100 {
            b.record_us(1_000_000);
        }
        let p50 = a.value_at_quantile(0.5).unwrap() as f64;
        assert!((p50 - 50_000.0).abs() <= 50_000.0 / 128.0, "{p50}");
        let p99 = a.value_at_quantile(0.99).unwrap() as f64;
        assert!((p99 - 99_000.0).abs() <= 99_000.0 / 128.0, "{p99}");
        a.add(&b);
        assert_eq!(a.len(), 200);
        let p90 = a.value_at_quantile(0.9).unwrap() as f64;
        assert!((p90 - 1_000_000.0).abs() <= 1_000_000.0 / 128.0, "{p90}");
        let mut buf = Vec::new();
        a.encode(&mut buf);
        assert_eq!(Histogram::decode(&buf).unwrap(), a);
        assert!(Histogram::decode(&buf[..buf.len() - 1]).is_err());
        assert!(Histogram::decode(&[9]).is_err());
        let mut bad = vec![1u8];
        bad.extend_from_slice(&[0; 16]);
        bad.extend_from_slice(&[0xff, 0xff, 1, 0, 0, 0, 0, 0, 0, 0]);
        assert!(Histogram::decode(&bad).is_err());
        assert!(Histogram::decode(&[1, 0, 0]).is_err());
        // Quantiles stay within what was recorded.
        let mut one = Histogram::default();
        one.record_us(5_000);
        assert_eq!(one.value_at_quantile(0.5), Some(5_000));
        assert_eq!(Histogram::default().value_at_quantile(0.5), None);
    }
}

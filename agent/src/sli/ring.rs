//! A ring of fixed-width time buckets with lazily maintained prefix sums.
//!
//! Adding to a bucket is O(1). A window sum is a subtraction of two prefix
//! sums: O(1) once the prefix is current. The prefix is rebuilt lazily, from
//! the oldest bucket written since the last rebuild, so an in-order stream
//! costs O(1) per query and late data costs O(distance) once per query, never
//! per event.
//!
//! Bucket indexes are absolute (`floor(minute / width)`), so the ring needs no
//! notion of wall-clock time: `head` is simply the highest index written or
//! advanced to, and the ring retains buckets `(head - len, head]`.

/// What a bucket holds; `Summary` is what prefix sums are kept of.
pub trait BucketValue: Copy + Default {
    type Summary: Copy + Default + std::ops::Add<Output = Self::Summary> + std::ops::Sub<Output = Self::Summary>;
    fn summarize(&self) -> Self::Summary;
}

/// Good and total events.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    pub good: u64,
    pub total: u64,
}

impl Counts {
    pub fn bad(&self) -> u64 {
        self.total - self.good
    }
}

impl std::ops::Add for Counts {
    type Output = Counts;
    fn add(self, o: Counts) -> Counts {
        Counts { good: self.good.wrapping_add(o.good), total: self.total.wrapping_add(o.total) }
    }
}

impl std::ops::Sub for Counts {
    type Output = Counts;
    fn sub(self, o: Counts) -> Counts {
        Counts { good: self.good.wrapping_sub(o.good), total: self.total.wrapping_sub(o.total) }
    }
}

impl BucketValue for Counts {
    type Summary = Counts;
    fn summarize(&self) -> Counts {
        *self
    }
}

#[derive(Debug, Clone)]
pub struct Ring<V: BucketValue> {
    /// Bucket width in minutes.
    width: u32,
    values: Vec<V>,
    /// `prefix[slot(b)]` = sum of summaries of every bucket ≤ b ever written,
    /// including buckets already evicted (their part is `evicted`).
    prefix: Vec<V::Summary>,
    /// Highest bucket index the ring covers; `None` until the first write.
    head: Option<i64>,
    head_slot: usize,
    /// Summary of everything evicted: the prefix just below the oldest slot.
    evicted: V::Summary,
    /// Oldest bucket whose prefix is stale; `None` when all are current.
    dirty_from: Option<i64>,
}

impl<V: BucketValue> Ring<V> {
    /// A ring of `len` buckets of `width` minutes each.
    pub fn new(width: u32, len: usize) -> Ring<V> {
        assert!(width > 0 && len > 0, "ring needs a positive width and length");
        Ring {
            width,
            values: vec![V::default(); len],
            prefix: vec![V::Summary::default(); len],
            head: None,
            head_slot: 0,
            evicted: V::Summary::default(),
            dirty_from: None,
        }
    }

    pub fn width(&self) -> u32 {
        self.width
    }

    pub fn len(&self) -> usize {
        self.values.len()
    }

    pub fn is_empty(&self) -> bool {
        self.head.is_none()
    }

    pub fn head(&self) -> Option<i64> {
        self.head
    }

    /// The oldest bucket index still retained, if any data was written.
    pub fn oldest(&self) -> Option<i64> {
        self.head.map(|h| h - self.values.len() as i64 + 1)
    }

    /// The bucket a minute falls in.
    #[inline]
    pub fn bucket_of_minute(&self, minute: i64) -> i64 {
        minute.div_euclid(self.width as i64)
    }

    /// The slot of a retained bucket, or `None` when it is not retained.
    #[inline]
    fn slot(&self, bucket: i64) -> Option<usize> {
        let head = self.head?;
        let back = head - bucket;
        let len = self.values.len() as i64;
        if back < 0 || back >= len {
            return None;
        }
        let s = self.head_slot as i64 - back;
        Some(if s < 0 { (s + len) as usize } else { s as usize })
    }

    /// Move the head forward to `bucket`, evicting what falls out.
    fn advance(&mut self, bucket: i64) {
        let len = self.values.len() as i64;
        match self.head {
            None => {
                self.head = Some(bucket);
                self.head_slot = 0;
                self.dirty_from = Some(bucket);
            }
            Some(head) if bucket > head => {
                // Bring the prefix current first so `evicted` can be read off it.
                self.rebuild();
                let steps = bucket - head;
                if steps >= len {
                    // Everything retained is evicted.
                    self.evicted = self.prefix[self.head_slot];
                    for v in self.values.iter_mut() {
                        *v = V::default();
                    }
                    self.head = Some(bucket);
                    self.head_slot = 0;
                    self.dirty_from = Some(bucket - len + 1);
                } else {
                    let head_prefix = self.prefix[self.head_slot];
                    for i in 1..=steps {
                        let s = (self.head_slot + i as usize) % len as usize;
                        // Slot `s` held bucket `head + i - len`, now evicted.
                        self.evicted = self.prefix[s];
                        self.values[s] = V::default();
                        self.prefix[s] = head_prefix;
                    }
                    self.head = Some(bucket);
                    self.head_slot = (self.head_slot + steps as usize) % len as usize;
                }
            }
            Some(_) => {}
        }
    }

    /// Add to a bucket. Returns false (and changes nothing) when the bucket is
    /// older than what the ring retains.
    #[inline]
    pub fn add_with(&mut self, bucket: i64, f: impl FnOnce(&mut V)) -> bool {
        if self.head.is_none_or(|h| bucket > h) {
            self.advance(bucket);
        }
        let Some(s) = self.slot(bucket) else { return false };
        f(&mut self.values[s]);
        if self.dirty_from.is_none_or(|d| bucket < d) {
            self.dirty_from = Some(bucket);
        }
        true
    }

    /// Overwrite a bucket (used when loading persisted state).
    pub fn set(&mut self, bucket: i64, value: V) -> bool {
        self.add_with(bucket, |v| *v = value)
    }

    /// The value of a retained bucket.
    pub fn get(&self, bucket: i64) -> Option<V> {
        self.slot(bucket).map(|s| self.values[s])
    }

    fn rebuild(&mut self) {
        let (Some(head), Some(from)) = (self.head, self.dirty_from) else { return };
        let len = self.values.len() as i64;
        let oldest = head - len + 1;
        let from = from.max(oldest);
        let mut acc = if from == oldest {
            self.evicted
        } else {
            self.prefix[self.slot(from - 1).expect("bucket below a retained dirty bucket is retained")]
        };
        let mut s = self.slot(from).expect("dirty bucket is retained");
        for _ in from..=head {
            acc = acc + self.values[s].summarize();
            self.prefix[s] = acc;
            s += 1;
            if s == self.values.len() {
                s = 0;
            }
        }
        self.dirty_from = None;
    }

    /// The prefix sum of every bucket ≤ `bucket`. Buckets above the head are
    /// empty; buckets below the oldest retained one must not be asked for.
    fn prefix_at(&self, bucket: i64) -> V::Summary {
        let Some(head) = self.head else { return V::Summary::default() };
        let oldest = head - self.values.len() as i64 + 1;
        if bucket >= head {
            self.prefix[self.head_slot]
        } else if bucket < oldest {
            self.evicted
        } else {
            self.prefix[self.slot(bucket).expect("retained bucket has a slot")]
        }
    }

    /// Sum of buckets in `[first, last]` (inclusive). Parts of the range older
    /// than the ring retains count as empty, so callers that need exactness
    /// must check [`Ring::covers`] first.
    pub fn sum(&mut self, first: i64, last: i64) -> V::Summary {
        if last < first || self.head.is_none() {
            return V::Summary::default();
        }
        self.rebuild();
        let oldest = self.oldest().unwrap_or(first);
        let first = first.max(oldest);
        if last < first {
            return V::Summary::default();
        }
        self.prefix_at(last) - self.prefix_at(first - 1)
    }

    /// True when every bucket from `first` on is still retained.
    pub fn covers(&self, first: i64) -> bool {
        match self.oldest() {
            Some(o) => first >= o,
            None => true,
        }
    }

    /// Add every bucket `other` retains into this ring, as if its events had
    /// been added here: the head becomes the newer of the two, and what falls
    /// out of the retention relative to it is dropped. `merge` adds one
    /// bucket's value into another.
    pub fn merge_from(&mut self, other: &Ring<V>, merge: impl Fn(&mut V, &V)) {
        let Some(head) = other.head else { return };
        // The head first, so retention is relative to the merged head whatever
        // the buckets hold.
        self.add_with(head, |_| {});
        for (b, v) in other.iter_buckets() {
            self.add_with(b, |mine| merge(mine, &v));
        }
    }

    /// Every retained, non-empty bucket, oldest first.
    pub fn iter_buckets(&self) -> impl Iterator<Item = (i64, V)> + '_ {
        let oldest = self.oldest().unwrap_or(0);
        let n = if self.head.is_some() { self.values.len() as i64 } else { 0 };
        (oldest..oldest + n).filter_map(move |b| self.get(b).map(|v| (b, v)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn add(r: &mut Ring<Counts>, b: i64, good: bool) -> bool {
        r.add_with(b, |c| {
            c.total += 1;
            c.good += good as u64
        })
    }

    #[test]
    fn sums_in_and_out_of_order() {
        let mut r = Ring::<Counts>::new(1, 10);
        for b in [5, 6, 6, 9, 7, 3] {
            assert!(add(&mut r, b, b % 2 == 0));
        }
        assert_eq!(r.sum(0, 100).total, 6);
        assert_eq!(r.sum(6, 7), Counts { good: 2, total: 3 });
        assert_eq!(r.sum(8, 8).total, 0);
        // Advance far enough to evict 3 and 5 (retained: 6..=15).
        assert!(add(&mut r, 15, true));
        assert_eq!(r.oldest(), Some(6));
        assert_eq!(r.sum(6, 15).total, 5);
        assert!(!add(&mut r, 5, true), "evicted bucket refuses writes");
        // Jump past the whole ring.
        assert!(add(&mut r, 100, false));
        assert_eq!(r.sum(91, 100), Counts { good: 0, total: 1 });
        assert_eq!(r.sum(0, 90).total, 0);
    }
}

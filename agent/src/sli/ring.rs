//! A ring of fixed-width time buckets with lazily maintained block sums.
//!
//! Adding to a bucket is O(1). Buckets are grouped in blocks of [`BLOCK`]
//! consecutive bucket indexes; each block keeps the sum of its buckets and a
//! prefix sum over the blocks. A window sum is the difference of two block
//! prefixes plus the buckets at both ends that only partly fill a block (at
//! most `2 × BLOCK` bucket reads). Block sums and prefixes are rebuilt
//! lazily, at the next read, from the oldest block written since the last
//! one, so an in-order stream costs a few block additions per query and late
//! data costs O(distance) once per query, never per event.
//!
//! Bucket indexes are absolute (`floor(minute / width)`), so the ring needs no
//! notion of wall-clock time: `head` is simply the highest index written or
//! advanced to, and the ring retains buckets `(head - len, head]`.
//!
//! Memory: bucket values are stored as narrow as they fit ([`CountCells`]:
//! 2 + 2 bytes per bucket until a bucket holds 65,535 events, then 4 + 4,
//! then 8 + 8; every bucket of a ring widens at once and nothing is ever
//! wrapped or dropped), plus two summaries per block of 32 buckets.

use std::ops::Range;

/// Buckets per block of the prefix sums.
pub const BLOCK: i64 = 32;

/// What a bucket holds; `Summary` is what block sums are kept of.
pub trait BucketValue: Copy + Default {
    type Summary: Copy + Default + std::ops::Add<Output = Self::Summary> + std::ops::Sub<Output = Self::Summary>;
    /// How a ring keeps these values.
    type Store: BucketStore<Self>;
    fn summarize(&self) -> Self::Summary;
    /// Add `other` (the same bucket, counted elsewhere) into this one.
    fn merge(&mut self, other: &Self);
    /// Whether nothing was counted in it.
    fn is_empty(&self) -> bool;
}

/// The values of a ring's slots.
pub trait BucketStore<V: BucketValue>: Clone + std::fmt::Debug {
    /// `len` empty slots.
    fn new(len: usize) -> Self;
    fn get(&self, slot: usize) -> V;
    fn set(&mut self, slot: usize, value: V);
    /// The summaries of the slots in `slots`, added up.
    fn summarize(&self, slots: Range<usize>) -> V::Summary;
    /// Bytes on the heap.
    fn bytes(&self) -> usize;
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
    type Store = CountCells;
    fn summarize(&self) -> Counts {
        *self
    }
    fn merge(&mut self, other: &Counts) {
        *self = *self + *other;
    }
    fn is_empty(&self) -> bool {
        self.total == 0 && self.good == 0
    }
}

/// Bucket counts, `[good, total]` per slot, all as wide as the largest
/// needs. A ring starts with 16-bit counts and widens every slot at once
/// (to 32, then 64 bits) the first time a bucket would not fit, so a count
/// is never wrapped or lost.
#[derive(Debug, Clone)]
pub enum CountCells {
    U16(Box<[[u16; 2]]>),
    U32(Box<[[u32; 2]]>),
    U64(Box<[Counts]>),
}

impl CountCells {
    fn widen_for(&mut self, c: Counts) {
        let need = c.good.max(c.total);
        let len = match self {
            CountCells::U16(v) => v.len(),
            CountCells::U32(v) => v.len(),
            CountCells::U64(v) => v.len(),
        };
        let all = (0..len).map(|i| BucketStore::<Counts>::get(self, i));
        *self = if need <= u32::MAX as u64 && !matches!(self, CountCells::U64(_)) {
            // Every value held fits in 16 bits, hence in 32.
            CountCells::U32(all.map(|c| [c.good as u32, c.total as u32]).collect())
        } else {
            CountCells::U64(all.collect())
        };
    }
}

impl BucketStore<Counts> for CountCells {
    fn new(len: usize) -> CountCells {
        CountCells::U16(vec![[0, 0]; len].into_boxed_slice())
    }

    #[inline]
    fn get(&self, slot: usize) -> Counts {
        match self {
            CountCells::U16(v) => Counts { good: v[slot][0].into(), total: v[slot][1].into() },
            CountCells::U32(v) => Counts { good: v[slot][0].into(), total: v[slot][1].into() },
            CountCells::U64(v) => v[slot],
        }
    }

    #[inline]
    fn set(&mut self, slot: usize, c: Counts) {
        match self {
            CountCells::U16(v) => {
                if let (Ok(g), Ok(t)) = (u16::try_from(c.good), u16::try_from(c.total)) {
                    v[slot] = [g, t];
                    return;
                }
            }
            CountCells::U32(v) => {
                if let (Ok(g), Ok(t)) = (u32::try_from(c.good), u32::try_from(c.total)) {
                    v[slot] = [g, t];
                    return;
                }
            }
            CountCells::U64(v) => {
                v[slot] = c;
                return;
            }
        }
        self.widen_for(c);
        self.set(slot, c);
    }

    fn summarize(&self, slots: Range<usize>) -> Counts {
        fn pairs<T: Copy + Into<u64>>(v: &[[T; 2]]) -> Counts {
            let (mut good, mut total) = (0u64, 0u64);
            for &[g, t] in v {
                good = good.wrapping_add(g.into());
                total = total.wrapping_add(t.into());
            }
            Counts { good, total }
        }
        match self {
            CountCells::U16(v) => pairs(&v[slots]),
            CountCells::U32(v) => pairs(&v[slots]),
            CountCells::U64(v) => v[slots].iter().fold(Counts::default(), |a, &c| a + c),
        }
    }

    fn bytes(&self) -> usize {
        match self {
            CountCells::U16(v) => std::mem::size_of_val(&**v),
            CountCells::U32(v) => std::mem::size_of_val(&**v),
            CountCells::U64(v) => std::mem::size_of_val(&**v),
        }
    }
}

#[derive(Debug, Clone)]
pub struct Ring<V: BucketValue> {
    /// Bucket width in minutes.
    width: u32,
    /// Buckets retained.
    len: usize,
    /// Bucket `b` is in slot `b mod len`.
    values: V::Store,
    /// Per block `k` (buckets `[k·BLOCK, (k + 1)·BLOCK)`), in slot
    /// `k mod blocks.len()`: the sum of its retained buckets…
    block_sums: Box<[V::Summary]>,
    /// …and the sum of the retained buckets of every block from the oldest
    /// retained one to `k`.
    block_prefix: Box<[V::Summary]>,
    /// Block slots whose sum is stale, one bit each.
    stale: Box<[u64]>,
    /// Highest bucket index the ring covers; `None` until the first write.
    head: Option<i64>,
    /// Oldest block whose prefix is stale; `None` when all are current.
    dirty_from: Option<i64>,
}

impl<V: BucketValue> Ring<V> {
    /// A ring of `len` buckets of `width` minutes each.
    pub fn new(width: u32, len: usize) -> Ring<V> {
        assert!(width > 0 && len > 0, "ring needs a positive width and length");
        // The retained buckets touch at most this many blocks.
        let blocks = len.div_ceil(BLOCK as usize) + 1;
        Ring {
            width,
            len,
            values: V::Store::new(len),
            block_sums: vec![V::Summary::default(); blocks].into_boxed_slice(),
            block_prefix: vec![V::Summary::default(); blocks].into_boxed_slice(),
            stale: vec![0; blocks.div_ceil(64)].into_boxed_slice(),
            head: None,
            dirty_from: None,
        }
    }

    pub fn width(&self) -> u32 {
        self.width
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.head.is_none()
    }

    pub fn head(&self) -> Option<i64> {
        self.head
    }

    /// The oldest bucket index still retained, if any data was written.
    pub fn oldest(&self) -> Option<i64> {
        self.head.map(|h| h - self.len as i64 + 1)
    }

    /// The bucket a minute falls in.
    #[inline]
    pub fn bucket_of_minute(&self, minute: i64) -> i64 {
        minute.div_euclid(self.width as i64)
    }

    /// The slot of a retained bucket, or `None` when it is not retained.
    #[inline]
    fn slot(&self, bucket: i64) -> Option<usize> {
        let back = self.head? - bucket;
        (back >= 0 && back < self.len as i64).then(|| bucket.rem_euclid(self.len as i64) as usize)
    }

    #[inline]
    fn block_slot(&self, block: i64) -> usize {
        block.rem_euclid(self.block_sums.len() as i64) as usize
    }

    #[inline]
    fn mark_stale(&mut self, block: i64) {
        let s = self.block_slot(block);
        self.stale[s / 64] |= 1 << (s % 64);
        if self.dirty_from.is_none_or(|d| block < d) {
            self.dirty_from = Some(block);
        }
    }

    /// Move the head forward to `bucket`, evicting what falls out.
    fn advance(&mut self, bucket: i64) {
        let len = self.len as i64;
        let old_head = match self.head {
            Some(head) if bucket > head => head,
            Some(_) => return,
            None => {
                self.head = Some(bucket);
                return;
            }
        };
        let (old_head_block, new_head_block) = (old_head.div_euclid(BLOCK), bucket.div_euclid(BLOCK));
        if bucket - old_head >= len {
            // Everything retained is evicted: every value and sum is empty.
            self.values = V::Store::new(self.len);
            self.block_sums.fill(V::Summary::default());
            self.block_prefix.fill(V::Summary::default());
            self.stale.fill(0);
            self.dirty_from = None;
            self.head = Some(bucket);
            return;
        }
        // The slots of the new buckets held the evicted ones.
        for b in old_head + 1..=bucket {
            let s = b.rem_euclid(len) as usize;
            self.values.set(s, V::default());
        }
        // Blocks new to the ring hold nothing yet (their slots held evicted blocks).
        for k in (old_head_block + 1).max(new_head_block - self.block_sums.len() as i64 + 1)..=new_head_block {
            let s = self.block_slot(k);
            self.block_sums[s] = V::Summary::default();
            self.stale[s / 64] &= !(1 << (s % 64));
        }
        self.head = Some(bucket);
        // The oldest block lost buckets, and the prefixes start from it.
        let oldest_block = (bucket - len + 1).div_euclid(BLOCK);
        self.mark_stale(oldest_block);
    }

    /// Add to a bucket. Returns false (and changes nothing) when the bucket is
    /// older than what the ring retains.
    #[inline]
    pub fn add_with(&mut self, bucket: i64, f: impl FnOnce(&mut V)) -> bool {
        if self.head.is_none_or(|h| bucket > h) {
            self.advance(bucket);
        }
        let Some(s) = self.slot(bucket) else { return false };
        let mut v = self.values.get(s);
        f(&mut v);
        self.values.set(s, v);
        self.mark_stale(bucket.div_euclid(BLOCK));
        true
    }

    /// Overwrite a bucket (used when loading persisted state).
    pub fn set(&mut self, bucket: i64, value: V) -> bool {
        self.add_with(bucket, |v| *v = value)
    }

    /// The value of a retained bucket.
    pub fn get(&self, bucket: i64) -> Option<V> {
        self.slot(bucket).map(|s| self.values.get(s))
    }

    /// The summaries of the retained buckets `[first, last]` (which must
    /// be retained), added up.
    fn range_sum(&self, first: i64, last: i64) -> V::Summary {
        let (a, b) = (first.rem_euclid(self.len as i64) as usize, last.rem_euclid(self.len as i64) as usize);
        if a <= b {
            self.values.summarize(a..b + 1)
        } else {
            self.values.summarize(a..self.len) + self.values.summarize(0..b + 1)
        }
    }

    /// Bring stale block sums and prefixes current.
    fn rebuild(&mut self) {
        let (Some(head), Some(from)) = (self.head, self.dirty_from) else { return };
        let oldest = head - self.len as i64 + 1;
        let (oldest_block, head_block) = (oldest.div_euclid(BLOCK), head.div_euclid(BLOCK));
        let from = from.max(oldest_block);
        let mut acc =
            if from == oldest_block { V::Summary::default() } else { self.block_prefix[self.block_slot(from - 1)] };
        for k in from..=head_block {
            let s = self.block_slot(k);
            if self.stale[s / 64] >> (s % 64) & 1 == 1 {
                let first = (k * BLOCK).max(oldest);
                let last = (k * BLOCK + BLOCK - 1).min(head);
                self.block_sums[s] = self.range_sum(first, last);
            }
            acc = acc + self.block_sums[s];
            self.block_prefix[s] = acc;
        }
        self.stale.fill(0);
        self.dirty_from = None;
    }

    /// Sum of buckets in `[first, last]` (inclusive). Parts of the range older
    /// than the ring retains count as empty, so callers that need exactness
    /// must check [`Ring::covers`] first.
    pub fn sum(&mut self, first: i64, last: i64) -> V::Summary {
        let Some(head) = self.head else { return V::Summary::default() };
        if last < first {
            return V::Summary::default();
        }
        self.rebuild();
        let first = first.max(head - self.len as i64 + 1);
        let last = last.min(head);
        if last < first {
            return V::Summary::default();
        }
        let (fb, lb) = (first.div_euclid(BLOCK), last.div_euclid(BLOCK));
        if fb == lb {
            return self.range_sum(first, last);
        }
        let whole = self.block_prefix[self.block_slot(lb - 1)] - self.block_prefix[self.block_slot(fb)];
        self.tail_sum(fb, first) + whole + self.head_sum(lb, last)
    }

    /// The retained buckets of block `k` from `first` on, read from
    /// whichever side of `first` has fewer buckets (the block's sum is
    /// current).
    fn tail_sum(&self, k: i64, first: i64) -> V::Summary {
        let (start, end) = (k * BLOCK, k * BLOCK + BLOCK - 1);
        let oldest = self.oldest().unwrap_or(start).max(start);
        if first - oldest < end - first {
            let all = self.block_sums[self.block_slot(k)];
            if first > oldest { all - self.range_sum(oldest, first - 1) } else { all }
        } else {
            self.range_sum(first, end)
        }
    }

    /// The retained buckets of block `k` up to `last`, read from whichever
    /// side has fewer buckets.
    fn head_sum(&self, k: i64, last: i64) -> V::Summary {
        let start = k * BLOCK;
        let end = (start + BLOCK - 1).min(self.head.unwrap_or(last));
        if end - last < last - start {
            let all = self.block_sums[self.block_slot(k)];
            if last < end { all - self.range_sum(last + 1, end) } else { all }
        } else {
            self.range_sum(start, last)
        }
    }

    /// True when every bucket from `first` on is still retained.
    pub fn covers(&self, first: i64) -> bool {
        match self.oldest() {
            Some(o) => first >= o,
            None => true,
        }
    }

    /// Every retained bucket (empty ones too), oldest first.
    pub fn iter_buckets(&self) -> impl Iterator<Item = (i64, V)> + '_ {
        let oldest = self.oldest().unwrap_or(0);
        let n = if self.head.is_some() { self.len as i64 } else { 0 };
        (oldest..oldest + n).filter_map(move |b| self.get(b).map(|v| (b, v)))
    }

    /// Add every bucket `other` retains into this ring, with retention
    /// counted back from the newer of the two heads: the same buckets as if
    /// every event of both had been counted here, in any order (provided
    /// none was older than what was retained when it came). Returns false,
    /// changing nothing, when the rings' widths or lengths differ.
    pub fn merge_from(&mut self, other: &Ring<V>) -> bool {
        if (self.width, self.len) != (other.width, other.len) {
            return false;
        }
        let Some(other_head) = other.head else { return true };
        if self.head.is_none_or(|h| other_head > h) {
            self.advance(other_head);
        }
        for (b, v) in other.iter_buckets().filter(|(_, v)| !v.is_empty()) {
            self.add_with(b, |mine| mine.merge(&v));
        }
        true
    }

    /// Bytes this ring holds, itself and its buckets.
    pub fn memory_bytes(&self) -> usize {
        std::mem::size_of::<Self>()
            + self.values.bytes()
            + 2 * self.block_sums.len() * std::mem::size_of::<V::Summary>()
            + self.stale.len() * 8
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

    /// A small xorshift generator: tests stay deterministic without a crate.
    struct Rng(u64);
    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }
        fn below(&mut self, n: u64) -> u64 {
            self.next() % n
        }
    }

    /// The ring's semantics the slow way: every bucket ever written, and what
    /// is retained of them.
    #[derive(Default)]
    struct Naive {
        buckets: std::collections::BTreeMap<i64, Counts>,
        head: Option<i64>,
    }

    impl Naive {
        fn add(&mut self, len: i64, b: i64, c: Counts) -> bool {
            let head = self.head.map_or(b, |h| h.max(b));
            self.head = Some(head);
            if b <= head - len {
                return false;
            }
            let e = self.buckets.entry(b).or_default();
            *e = *e + c;
            true
        }
        fn sum(&self, len: i64, first: i64, last: i64) -> Counts {
            let Some(head) = self.head else { return Counts::default() };
            let (lo, hi) = (first.max(head - len + 1), last);
            if hi < lo {
                return Counts::default();
            }
            self.buckets.range(lo..=hi).fold(Counts::default(), |a, (_, &c)| a + c)
        }
    }

    #[test]
    fn window_sums_equal_a_naive_sum_over_random_data() {
        let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
        for round in 0..200 {
            let len = 1 + rng.below(if round % 4 == 0 { 8 } else { 300 }) as i64;
            let mut r = Ring::<Counts>::new(1, len as usize);
            let mut naive = Naive::default();
            let mut head = rng.below(1000) as i64 - 500;
            for step in 0..400 {
                // Mostly near the head, sometimes late, sometimes a jump.
                let b = match rng.below(10) {
                    0 => head - rng.below(2 * len as u64 + 2) as i64,
                    1 => {
                        head += rng.below(3 * len as u64 + 1) as i64;
                        head
                    }
                    _ => {
                        head += rng.below(2) as i64;
                        head - rng.below(3) as i64
                    }
                };
                let n = match rng.below(20) {
                    0 => 70_000 + rng.below(1 << 33),
                    _ => 1 + rng.below(50),
                };
                let c = Counts { good: rng.below(n + 1), total: n };
                let want = naive.add(len, b, c);
                assert_eq!(
                    r.add_with(b, |v| {
                        v.good += c.good;
                        v.total += c.total
                    }),
                    want,
                    "round {round} step {step}: bucket {b}"
                );
                if step % 7 == 0 {
                    for _ in 0..4 {
                        let h = naive.head.unwrap_or(0);
                        let last = h - rng.below(len as u64 + 40) as i64 + 20;
                        let first = last - rng.below(len as u64 + 40) as i64 + 1;
                        assert_eq!(r.sum(first, last), naive.sum(len, first, last), "round {round}: [{first}, {last}]");
                    }
                }
            }
            for (b, v) in r.iter_buckets() {
                assert_eq!(v, naive.buckets.get(&b).copied().unwrap_or_default(), "round {round}: bucket {b}");
            }
        }
    }

    #[test]
    fn buckets_widen_rather_than_wrap() {
        let mut r = Ring::<Counts>::new(15, 100);
        let small = r.memory_bytes();
        assert!(r.set(10, Counts { good: 65_535, total: 65_535 }));
        assert!(add(&mut r, 10, true));
        assert_eq!(r.get(10), Some(Counts { good: 65_536, total: 65_536 }));
        assert!(r.memory_bytes() > small, "16-bit counts widened");
        let wider = r.memory_bytes();
        assert!(r.set(11, Counts { good: 1, total: u32::MAX as u64 }));
        assert!(add(&mut r, 11, false));
        assert_eq!(r.get(11), Some(Counts { good: 1, total: u32::MAX as u64 + 1 }));
        assert!(r.memory_bytes() > wider, "32-bit counts widened");
        let big = Counts { good: u64::MAX / 4, total: u64::MAX / 2 };
        assert!(r.set(12, big));
        assert_eq!(r.get(12), Some(big));
        assert_eq!(r.get(10), Some(Counts { good: 65_536, total: 65_536 }), "older buckets survive widening");
        assert_eq!(r.sum(0, 20), Counts { good: 65_537 + big.good, total: 65_536 + u32::MAX as u64 + 1 + big.total });
        // A ring whose buckets are all evicted starts narrow again.
        assert!(add(&mut r, 1_000, true));
        assert_eq!(r.memory_bytes(), small);
        assert_eq!(r.sum(0, 2_000), Counts { good: 1, total: 1 });
    }

    #[test]
    fn merging_two_rings_equals_counting_into_one() {
        let mut rng = Rng(12345);
        for round in 0..100 {
            let len = 1 + rng.below(200) as i64;
            // A stream in rising order with some lateness, none of it older
            // than what is retained when it comes.
            let mut stream = Vec::new();
            let mut head = 0i64;
            for _ in 0..300 {
                head += rng.below(4) as i64;
                let b = head - rng.below(len as u64) as i64;
                stream.push((b, Counts { good: rng.below(3), total: 2 + rng.below(3) }));
            }
            let mut whole = Ring::<Counts>::new(1, len as usize);
            let (mut a, mut b) = (whole.clone(), whole.clone());
            for &(k, c) in &stream {
                assert!(whole.add_with(k, |v| v.merge(&c)));
                let part = if rng.below(2) == 0 { &mut a } else { &mut b };
                assert!(part.add_with(k, |v| v.merge(&c)));
            }
            let (mut ab, mut ba) = (a.clone(), b.clone());
            assert!(ab.merge_from(&b));
            assert!(ba.merge_from(&a));
            for m in [&mut ab, &mut ba] {
                assert_eq!(m.head(), whole.head(), "round {round}");
                assert_eq!(m.iter_buckets().collect::<Vec<_>>(), whole.iter_buckets().collect::<Vec<_>>());
                for _ in 0..20 {
                    let last = head - rng.below(len as u64 + 10) as i64 + 5;
                    let first = last - rng.below(len as u64 + 10) as i64;
                    assert_eq!(m.sum(first, last), whole.sum(first, last), "round {round}: [{first}, {last}]");
                }
            }
        }
        // Rings of other shapes are not merged.
        let mut x = Ring::<Counts>::new(1, 10);
        assert!(!x.merge_from(&Ring::new(1, 11)));
        assert!(!x.merge_from(&Ring::new(5, 10)));
    }
}

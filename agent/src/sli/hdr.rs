//! A high-dynamic-range histogram (Gil Tene's HdrHistogram layout) for
//! latencies in microseconds: log-linear buckets, every value within 1/128
//! (< 1 %) of what was recorded, from 1 µs to one hour, mergeable by adding
//! counts.
//!
//! The engine computes a latency's bucket index once per event and then
//! increments that slot in the histogram of every SLO that counts the event,
//! which is why this is not the `hdrhistogram` crate: there, each record
//! recomputes the index and updates min, max and totals. `benches/latency.rs`
//! compares the two (figures in docs/benchmarks.md).
//!
//! A histogram holds its counts in one of two forms, with the same answers:
//!
//! - **dense**: one cell per slot ([`SLOTS`]), so recording is an index and an
//!   add. Cells start one byte wide and widen (2, 4, then 8 bytes) the first
//!   time a count would not fit: 3.3 KB for a quiet day, 6.6 KB up to 65,535
//!   values in one slot, 13 KB up to 2^32.
//! - **compact** ([`Histogram::compact`]): only the non-empty slots. A 64-bit
//!   word says which of the 52 blocks of 64 slots hold anything, one 64-bit
//!   mask per such block says which of its slots do, and the counts of those
//!   slots follow in slot order, all as wide as the largest needs (1, 2, 4 or
//!   8 bytes). A day of CloudFront latencies (values in whole milliseconds)
//!   fills about a thousand slots: about 2 KB. Recording into a compact
//!   histogram still works (a late event): a count that exists is
//!   incremented in place, a new slot is inserted.
//!
//! The precision (1/128 of the value) and every answer are the same in both
//! forms; only memory and the cost of recording differ.

use std::ops::Range;

/// Sub-buckets per bucket: 2^8 = 256, the first half of which overlaps the
/// previous bucket, so each power of two is cut into 128 steps.
const SUB_BITS: u32 = 8;
const HALF: usize = 1 << (SUB_BITS - 1);
/// Highest value tracked: one hour in microseconds. Larger values are
/// counted as this value, never dropped.
pub const HIGHEST_US: u64 = 3_600_000_000;
/// Slots needed to reach `HIGHEST_US` (< 2^32).
pub const SLOTS: usize = (32 - SUB_BITS as usize + 1) * HALF + HALF;
/// Slots per block of the compact form (one bit each in a `u64` mask).
const BLOCK: usize = 64;
/// Blocks of slots: one bit each in the compact form's block word.
const BLOCKS: usize = SLOTS / BLOCK;
const _: () = assert!(SLOTS.is_multiple_of(BLOCK) && BLOCKS <= 64, "the compact form's block word covers every slot");

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

/// Counts, each as wide as the largest of them needs: a cell widens (all of
/// them at once) the first time a count would not fit, so nothing is ever
/// lost or wrapped.
#[derive(Clone)]
enum Cells {
    U8(Box<[u8]>),
    U16(Box<[u16]>),
    U32(Box<[u32]>),
    U64(Box<[u64]>),
}

/// `$body` once per width, with `$c` the cells' slice.
macro_rules! each_width {
    ($cells:expr, $c:ident => $body:expr) => {
        match $cells {
            Cells::U8($c) => $body,
            Cells::U16($c) => $body,
            Cells::U32($c) => $body,
            Cells::U64($c) => $body,
        }
    };
}

/// A cell's count as a `u64` (whatever its width).
#[inline]
fn wide<T: Into<u64>>(x: T) -> u64 {
    x.into()
}

/// Bytes a cell needs to hold `v`.
fn width_for(v: u64) -> usize {
    if v <= u8::MAX as u64 {
        1
    } else if v <= u16::MAX as u64 {
        2
    } else if v <= u32::MAX as u64 {
        4
    } else {
        8
    }
}

/// Add `n` to a cell; false (and unchanged) when the sum does not fit.
#[inline]
fn bump<T: Copy + Into<u64> + TryFrom<u64>>(cell: &mut T, n: u64) -> bool {
    match T::try_from((*cell).into().saturating_add(n)) {
        Ok(v) => {
            *cell = v;
            true
        }
        Err(_) => false,
    }
}

impl Cells {
    fn zeroed(len: usize) -> Cells {
        Cells::U8(vec![0; len].into_boxed_slice())
    }

    /// The narrowest cells that hold `values`.
    fn from_values(values: &[u64]) -> Cells {
        let max = values.iter().copied().max().unwrap_or(0);
        Cells::U64(values.into()).to_width(width_for(max))
    }

    fn width(&self) -> usize {
        match self {
            Cells::U8(_) => 1,
            Cells::U16(_) => 2,
            Cells::U32(_) => 4,
            Cells::U64(_) => 8,
        }
    }

    /// The same counts in cells `w` bytes wide; `w` must hold the largest.
    fn to_width(&self, w: usize) -> Cells {
        let values = (0..self.len()).map(|i| self.get(i));
        // The casts keep every value: the caller picked a width that holds them all.
        match w {
            1 => Cells::U8(values.map(|v| v as u8).collect()),
            2 => Cells::U16(values.map(|v| v as u16).collect()),
            4 => Cells::U32(values.map(|v| v as u32).collect()),
            _ => Cells::U64(values.collect()),
        }
    }

    fn len(&self) -> usize {
        each_width!(self, c => c.len())
    }

    fn bytes(&self) -> usize {
        self.len() * self.width()
    }

    #[inline]
    fn get(&self, i: usize) -> u64 {
        each_width!(self, c => wide(c[i]))
    }

    #[inline]
    fn sum(&self, r: Range<usize>) -> u64 {
        each_width!(self, c => c[r].iter().map(|&x| wide(x)).sum())
    }

    /// Add `n` to cell `i`, widening every cell when the sum needs it.
    #[inline]
    fn add(&mut self, i: usize, n: u64) {
        let fits = match self {
            Cells::U8(c) => bump(&mut c[i], n),
            Cells::U16(c) => bump(&mut c[i], n),
            Cells::U32(c) => bump(&mut c[i], n),
            Cells::U64(c) => {
                c[i] = c[i].saturating_add(n);
                true
            }
        };
        if !fits {
            self.widen_and_add(i, n);
        }
    }

    #[inline(never)]
    fn widen_and_add(&mut self, i: usize, n: u64) {
        let v = self.get(i).saturating_add(n);
        *self = self.to_width(width_for(v));
        // The cells now hold `v`.
        each_width!(self, c => c[i] = v as _);
    }

    /// Insert a cell holding `n` before cell `i`.
    fn insert(&mut self, i: usize, n: u64) {
        let w = self.width().max(width_for(n));
        if w != self.width() {
            *self = self.to_width(w);
        }
        each_width!(self, c => {
            let mut v = std::mem::take(c).into_vec();
            v.insert(i, n as _);
            *c = v.into_boxed_slice();
        });
    }
}

#[derive(Clone)]
pub struct Histogram {
    slots: Slots,
    total: u64,
    /// Exact extremes (µs), so quantiles never report a value outside what
    /// was recorded (a slot's middle can be).
    min: u64,
    max: u64,
}

#[derive(Clone)]
enum Slots {
    /// One cell per slot.
    Dense(Cells),
    /// Only the non-empty slots: bit `k` of `blocks` says block `k` (slots
    /// `64k..64k + 64`) has some; `masks` has one word per such block, bit
    /// `j` for slot `64k + j`; `cells` one count per set bit, in slot order.
    Compact { blocks: u64, masks: Box<[u64]>, cells: Cells },
}

/// Where a slot is, or would go, in the compact form.
struct Place {
    /// Index in `masks` of the slot's block (where it would be inserted).
    mask: usize,
    block_present: bool,
    /// Index in `cells` of the slot (where it would be inserted).
    cell: usize,
    present: bool,
}

fn locate(blocks: u64, masks: &[u64], slot: usize) -> Place {
    let (k, j) = (slot / BLOCK, slot % BLOCK);
    let mask = (blocks & ((1u64 << k) - 1)).count_ones() as usize;
    let before: usize = masks[..mask].iter().map(|m| m.count_ones() as usize).sum();
    if blocks >> k & 1 == 0 {
        return Place { mask, block_present: false, cell: before, present: false };
    }
    let m = masks[mask];
    let cell = before + (m & ((1u64 << j) - 1)).count_ones() as usize;
    Place { mask, block_present: true, cell, present: m >> j & 1 == 1 }
}

/// Reads a histogram block by block, in slot order (for quantiles).
struct Walk<'a> {
    slots: &'a Slots,
    /// Compact form: the next block's mask and first cell.
    mask: usize,
    cell: usize,
}

impl<'a> Walk<'a> {
    fn new(h: &'a Histogram) -> Walk<'a> {
        Walk { slots: &h.slots, mask: 0, cell: 0 }
    }

    /// The sum of block `k`'s counts. Blocks are read in ascending order.
    #[inline]
    fn sum(&self, k: usize) -> u64 {
        match self.slots {
            Slots::Dense(c) => c.sum(k * BLOCK..(k + 1) * BLOCK),
            Slots::Compact { blocks, masks, cells } => {
                if blocks >> k & 1 == 0 {
                    return 0;
                }
                cells.sum(self.cell..self.cell + masks[self.mask].count_ones() as usize)
            }
        }
    }

    /// Add block `k`'s counts, slot by slot, to `out`.
    fn add_to(&self, k: usize, out: &mut [u64; BLOCK]) {
        match self.slots {
            Slots::Dense(c) => {
                for (j, o) in out.iter_mut().enumerate() {
                    *o += c.get(k * BLOCK + j);
                }
            }
            Slots::Compact { blocks, masks, cells } => {
                if blocks >> k & 1 == 0 {
                    return;
                }
                let mut m = masks[self.mask];
                let mut i = self.cell;
                while m != 0 {
                    out[m.trailing_zeros() as usize] += cells.get(i);
                    m &= m - 1;
                    i += 1;
                }
            }
        }
    }

    /// Move past block `k`.
    #[inline]
    fn pass(&mut self, k: usize) {
        if let Slots::Compact { blocks, masks, .. } = self.slots
            && blocks >> k & 1 == 1
        {
            self.cell += masks[self.mask].count_ones() as usize;
            self.mask += 1;
        }
    }
}

impl std::fmt::Debug for Histogram {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Histogram({} values)", self.total)
    }
}

impl Default for Histogram {
    fn default() -> Self {
        Histogram { slots: Slots::Dense(Cells::zeroed(SLOTS)), total: 0, min: u64::MAX, max: 0 }
    }
}

/// Equal when they hold the same counts, whatever their forms.
impl PartialEq for Histogram {
    fn eq(&self, o: &Histogram) -> bool {
        if (self.total, self.min, self.max) != (o.total, o.min, o.max) {
            return false;
        }
        let mut a = Vec::new();
        self.for_each_slot(|i, c| a.push((i, c)));
        let mut b = Vec::with_capacity(a.len());
        o.for_each_slot(|i, c| b.push((i, c)));
        a == b
    }
}

impl Eq for Histogram {}

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
        match &mut self.slots {
            Slots::Dense(c) => c.add(index as usize, n),
            Slots::Compact { .. } => self.add_compact(index as usize, n),
        }
        self.total = self.total.saturating_add(n);
        self.min = self.min.min(value_us);
        self.max = self.max.max(value_us);
    }

    #[inline(never)]
    fn add_compact(&mut self, slot: usize, n: u64) {
        let Slots::Compact { blocks, masks, cells } = &mut self.slots else { return };
        let p = locate(*blocks, masks, slot);
        if p.present {
            cells.add(p.cell, n);
            return;
        }
        if !p.block_present {
            let mut m = std::mem::take(masks).into_vec();
            m.insert(p.mask, 0);
            *masks = m.into_boxed_slice();
            *blocks |= 1 << (slot / BLOCK);
        }
        masks[p.mask] |= 1 << (slot % BLOCK);
        cells.insert(p.cell, n);
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

    /// Whether the counts are in the compact form.
    pub fn is_compact(&self) -> bool {
        matches!(self.slots, Slots::Compact { .. })
    }

    /// Keep only the non-empty slots (see the module docs). Answers do not
    /// change; recording gets slower.
    pub fn compact(&mut self) {
        let Slots::Dense(dense) = &self.slots else { return };
        let (mut blocks, mut masks, mut values) = (0u64, Vec::new(), Vec::new());
        for k in 0..BLOCKS {
            let mut mask = 0u64;
            for j in 0..BLOCK {
                let c = dense.get(k * BLOCK + j);
                if c > 0 {
                    mask |= 1 << j;
                    values.push(c);
                }
            }
            if mask != 0 {
                blocks |= 1 << k;
                masks.push(mask);
            }
        }
        self.slots = Slots::Compact { blocks, masks: masks.into_boxed_slice(), cells: Cells::from_values(&values) };
    }

    /// Back to one cell per slot, for fast recording.
    pub fn thaw(&mut self) {
        if !self.is_compact() {
            return;
        }
        let mut values = vec![0u64; SLOTS];
        self.for_each_slot(|i, c| values[i] = c);
        self.slots = Slots::Dense(Cells::from_values(&values));
    }

    /// Bytes this histogram holds, itself and its counts.
    pub fn memory_bytes(&self) -> usize {
        std::mem::size_of::<Histogram>()
            + match &self.slots {
                Slots::Dense(c) => c.bytes(),
                Slots::Compact { masks, cells, .. } => masks.len() * 8 + cells.bytes(),
            }
    }

    /// Every non-empty slot and its count, in slot order.
    fn for_each_slot(&self, mut f: impl FnMut(usize, u64)) {
        match &self.slots {
            Slots::Dense(cells) => each_width!(cells, c => {
                for (i, &x) in c.iter().enumerate() {
                    if x != 0 {
                        f(i, wide(x));
                    }
                }
            }),
            Slots::Compact { blocks, masks, cells } => {
                let (mut b, mut i) = (*blocks, 0);
                for &mask in masks.iter() {
                    let k = b.trailing_zeros() as usize;
                    b &= b - 1;
                    let mut m = mask;
                    while m != 0 {
                        f(k * BLOCK + m.trailing_zeros() as usize, cells.get(i));
                        m &= m - 1;
                        i += 1;
                    }
                }
            }
        }
    }

    pub fn add(&mut self, other: &Histogram) {
        let compact = self.is_compact();
        self.thaw();
        if let Slots::Dense(cells) = &mut self.slots {
            other.for_each_slot(|i, c| cells.add(i, c));
        }
        if compact {
            self.compact();
        }
        self.total = self.total.saturating_add(other.total);
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
    /// must be ascending. Either may be in either form.
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
        // Whole blocks that cannot reach the next quantile are summed and
        // skipped (the compiler vectorises the dense sums); only the block
        // where a quantile lies is walked slot by slot.
        let mut a = Walk::new(self);
        let mut b = other.map(Walk::new);
        for k in 0..BLOCKS {
            let sum = a.sum(k) + b.as_ref().map_or(0, |b| b.sum(k));
            if seen + sum >= wants[next] {
                let mut block = [0u64; BLOCK];
                a.add_to(k, &mut block);
                if let Some(b) = &b {
                    b.add_to(k, &mut block);
                }
                for (j, &x) in block.iter().enumerate() {
                    seen += x;
                    while next < N && seen >= wants[next] {
                        out[next] = value_of(k * BLOCK + j).clamp(min, max);
                        next += 1;
                    }
                    if next == N {
                        return Some(out);
                    }
                }
            } else {
                seen += sum;
            }
            a.pass(k);
            if let Some(b) = &mut b {
                b.pass(k);
            }
        }
        None
    }

    /// Sparse encoding for the store: version byte, min and max (u64), then
    /// (slot u16, count u64) pairs for the non-empty slots, all little-endian.
    /// The same bytes whatever the form.
    pub fn encode(&self, out: &mut Vec<u8>) {
        out.push(1);
        out.extend_from_slice(&self.min.to_le_bytes());
        out.extend_from_slice(&self.max.to_le_bytes());
        self.for_each_slot(|i, c| {
            out.extend_from_slice(&(i as u16).to_le_bytes());
            out.extend_from_slice(&c.to_le_bytes());
        });
    }

    /// Read [`Histogram::encode`]'s bytes into a dense histogram.
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
        let (mut cells, mut total) = (Cells::zeroed(SLOTS), 0u64);
        for e in rest.chunks_exact(10) {
            let i = u16::from_le_bytes([e[0], e[1]]) as usize;
            let c = u64::from_le_bytes(e[2..10].try_into().expect("8 bytes"));
            if i >= SLOTS {
                return Err(format!("histogram slot {i} out of range"));
            }
            cells.add(i, c);
            total = total.saturating_add(c);
        }
        let h = Histogram {
            slots: Slots::Dense(cells),
            total,
            min: u64::from_le_bytes(extremes[..8].try_into().expect("8 bytes")),
            max: u64::from_le_bytes(extremes[8..].try_into().expect("8 bytes")),
        };
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

    fn xorshift(x: &mut u64) -> u64 {
        *x ^= *x << 13;
        *x ^= *x >> 7;
        *x ^= *x << 17;
        *x
    }

    /// Both forms answer the same, encode the same, and keep agreeing as
    /// values are recorded into them (new slots, counts that widen).
    #[test]
    fn compact_and_dense_forms_agree() {
        let mut x = 0xDEAD_BEEFu64;
        let qs = [0.0, 0.001, 0.25, 0.5, 0.9, 0.99, 0.999, 1.0];
        for round in 0..60 {
            let mut dense = Histogram::default();
            for _ in 0..(round * 50) {
                let v = xorshift(&mut x) % (1 + 10u64.pow(1 + (round % 10) as u32));
                // Whole milliseconds, as CloudFront logs them, half the time.
                let v = if round % 2 == 0 { v / 1000 * 1000 } else { v };
                let n = match xorshift(&mut x) % 50 {
                    0 => 1 << (xorshift(&mut x) % 40),
                    _ => 1,
                };
                dense.record_at_n(index_of(v.clamp(1, HIGHEST_US)), v.clamp(1, HIGHEST_US), n);
            }
            let mut compact = dense.clone();
            compact.compact();
            assert!(compact.is_compact() && !dense.is_compact());
            assert_eq!(compact, dense, "round {round}");
            assert_eq!(compact.quantiles_with(None, qs), dense.quantiles_with(None, qs), "round {round}");
            let (mut a, mut b) = (Vec::new(), Vec::new());
            compact.encode(&mut a);
            dense.encode(&mut b);
            assert_eq!(a, b, "round {round}");
            assert!(compact.memory_bytes() < dense.memory_bytes() || dense.len() > 100_000, "round {round}");
            // Late values into both; the compact one inserts slots and widens counts.
            for i in 0..200 {
                let v = (xorshift(&mut x) % 100_000_000).max(1);
                let n = if i % 40 == 0 { u32::MAX as u64 } else { 1 + i % 300 };
                dense.record_at_n(index_of(v), v, n);
                compact.record_at_n(index_of(v), v, n);
            }
            assert!(compact.is_compact());
            assert_eq!(compact, dense, "round {round} after late values");
            let other = {
                let mut o = Histogram::default();
                for _ in 0..round {
                    o.record_us(xorshift(&mut x) % 5_000_000);
                }
                o
            };
            let mut merged = dense.clone();
            merged.add(&other);
            let want = merged.quantiles_with(None, qs);
            assert_eq!(compact.quantiles_with(Some(&other), qs), want, "round {round}");
            assert_eq!(other.quantiles_with(Some(&compact), qs), want, "round {round}");
            let mut other_compact = other.clone();
            other_compact.compact();
            assert_eq!(compact.quantiles_with(Some(&other_compact), qs), want, "round {round}");
            let mut merged_compact = compact.clone();
            merged_compact.add(&other_compact);
            assert!(merged_compact.is_compact());
            assert_eq!(merged_compact, merged);
            let mut thawed = compact.clone();
            thawed.thaw();
            assert!(!thawed.is_compact());
            assert_eq!(thawed, dense);
            assert_eq!(Histogram::decode(&a).unwrap(), Histogram::decode(&b).unwrap());
        }
    }

    #[test]
    fn counts_widen_rather_than_wrap() {
        let mut h = Histogram::default();
        let one_byte = h.memory_bytes();
        let i = index_of(1000);
        h.record_at_n(i, 1000, 255);
        assert_eq!(h.memory_bytes(), one_byte);
        h.record_at(i, 1000);
        assert_eq!(h.memory_bytes(), one_byte + SLOTS, "cells went from 1 to 2 bytes");
        h.record_at_n(i, 1000, u32::MAX as u64);
        h.record_at_n(index_of(5), 5, 1 << 40);
        let mut c = h.clone();
        c.compact();
        c.record_at_n(index_of(7), 7, 1 << 50);
        h.record_at_n(index_of(7), 7, 1 << 50);
        assert_eq!(c, h);
        let mut bytes = Vec::new();
        c.encode(&mut bytes);
        let back = Histogram::decode(&bytes).unwrap();
        assert_eq!(back, h);
        assert_eq!(back.len(), 256 + u32::MAX as u64 + (1 << 40) + (1 << 50));
        // A count that would pass u64 saturates instead of wrapping.
        c.record_at_n(index_of(7), 7, u64::MAX);
        assert_eq!(c.len(), u64::MAX);
    }
}

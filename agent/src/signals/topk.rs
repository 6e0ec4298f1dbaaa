//! Heavy hitters of one minute: which client addresses, user agents, paths
//! and ASNs sent the most requests, in bounded memory.
//!
//! Misra–Gries with [`CAPACITY`] counters: a key seen more than `n /
//! (CAPACITY + 1)` times in `n` requests is always held, and a held count
//! is at most that much below the true count. When the table is full and a
//! new key arrives, every counter drops by the smallest count and the zeros
//! go: the decrements never exceed the increments, so the work is O(1) per
//! request amortised, whatever the traffic (a flood from a million
//! addresses included). Written here rather than taken from a crate: the
//! sketch crates on crates.io (count–min, HyperLogLog, space-saving with
//! linked lists) either keep no keys or allocate per update; this is
//! 40 lines over a `HashMap`.

use super::HashMap;

/// Counters per table.
pub const CAPACITY: usize = 128;
/// The longest key kept (bytes); longer keys are cut at a character boundary.
pub const MAX_KEY: usize = 200;

#[derive(Debug, Clone, Default)]
pub struct TopK {
    counts: HashMap<Box<str>, u64>,
    /// Requests seen (every key, held or not).
    seen: u64,
}

impl TopK {
    pub fn add(&mut self, key: &str, n: u64) {
        if key.is_empty() || n == 0 {
            return;
        }
        self.seen += n;
        if let Some(c) = self.counts.get_mut(key) {
            *c += n;
            return;
        }
        if self.counts.len() >= CAPACITY {
            let min = self.counts.values().copied().min().unwrap_or(0).min(n);
            self.counts.retain(|_, c| {
                *c -= min;
                *c > 0
            });
            if n <= min {
                return;
            }
            self.counts.insert(cut(key).into(), n - min);
            return;
        }
        self.counts.insert(cut(key).into(), n);
    }

    pub fn seen(&self) -> u64 {
        self.seen
    }

    /// Adds another table's counts (bounded the same way).
    pub fn merge(&mut self, other: &TopK) {
        let seen = self.seen + other.seen;
        for (k, &c) in &other.counts {
            self.add(k, c);
        }
        self.seen = seen;
    }

    /// The `k` largest, largest first (ties by key, so the order is stable).
    pub fn top(&self, k: usize) -> Vec<(String, u64)> {
        let mut v: Vec<(&str, u64)> = self.counts.iter().map(|(s, &c)| (&**s, c)).collect();
        v.sort_unstable_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(b.0)));
        v.into_iter().take(k).map(|(s, c)| (s.to_string(), c)).collect()
    }

    /// Keeps only the `k` largest (a closed minute's table, kept for the answer).
    pub fn truncate(&mut self, k: usize) {
        if self.counts.len() <= k {
            return;
        }
        let keep: HashMap<Box<str>, u64> = self.top(k).into_iter().map(|(s, c)| (s.into_boxed_str(), c)).collect();
        self.counts = keep;
    }

    /// Bytes held, for memory accounting (keys at most [`MAX_KEY`]).
    pub fn heap_bytes(&self) -> usize {
        self.counts.capacity() * (std::mem::size_of::<(Box<str>, u64)>() + 8)
            + self.counts.keys().map(|k| k.len()).sum::<usize>()
    }
}

fn cut(s: &str) -> &str {
    if s.len() <= MAX_KEY {
        return s;
    }
    let mut end = MAX_KEY;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_heavy_key_is_held_among_a_flood_of_light_ones() {
        let mut t = TopK::default();
        for i in 0..100_000u32 {
            t.add(&format!("10.0.{}.{}", i / 256 % 256, i % 256), 1);
            if i % 10 == 0 {
                t.add("203.0.113.9", 1);
            }
        }
        let top = t.top(3);
        assert_eq!(top[0].0, "203.0.113.9");
        // At most seen / (CAPACITY + 1) below the truth.
        assert!(top[0].1 >= 10_000 - t.seen() / (CAPACITY as u64 + 1), "{top:?}");
        assert!(t.counts.len() <= CAPACITY);
        assert_eq!(t.seen(), 110_000);
    }

    #[test]
    fn exact_while_there_is_room_and_keys_are_cut() {
        let mut t = TopK::default();
        t.add("a", 3);
        t.add("b", 5);
        t.add("a", 4);
        t.add("", 9);
        assert_eq!(t.top(5), vec![("a".to_string(), 7), ("b".to_string(), 5)]);
        let long = "é".repeat(300);
        t.add(&long, 1);
        assert!(t.top(5).iter().any(|(k, _)| k.len() <= MAX_KEY && k.starts_with('é')));
        let mut u = TopK::default();
        u.add("b", 1);
        u.merge(&t);
        assert_eq!(u.top(1), vec![("a".to_string(), 7)]);
        assert_eq!(u.seen(), 1 + t.seen());
    }
}

//! Positioned YAML: a node tree that remembers where every node came from
//! ([`tree`]), typed access that records every problem and carries on
//! ([`fields`]), and the values config readers share ([`values`]: durations,
//! secrets from files or the environment, paths).
//!
//! Spec readers, `agent.yaml` and every component's config section use it,
//! so a mistake anywhere is reported as `file:line:col: message`, all at once.
//!
//! **Architecture invariant:** a leaf: this module imports nothing of the crate
//! but other leaves (`secret`).

pub mod fields;
mod tree;
pub mod values;

use std::fmt;

pub use tree::*;

/// One problem in a spec file, at a 1-based line and column (in characters).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    pub file: String,
    pub line: usize,
    pub col: usize,
    pub message: String,
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}: {}", self.file, self.line, self.col, self.message)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValueError {
    pub offset: usize,
    pub message: String,
}

/// The candidate closest to `word` by edit distance, if it is close enough
/// to be a plausible typo.
pub fn closest<'a>(word: &str, candidates: &[&'a str]) -> Option<&'a str> {
    let w = word.to_ascii_lowercase();
    candidates
        .iter()
        .map(|c| (edit_distance(&w, &c.to_ascii_lowercase()), *c))
        .filter(|(d, c)| *d <= (c.len().max(w.len()) / 3).max(1))
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

/// Edit distance counting a swap of two neighbours as one edit (`GTE` → `GET`).
fn edit_distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    let w = b.len() + 1;
    let mut d = vec![0usize; (a.len() + 1) * w];
    for i in 0..=a.len() {
        for j in 0..=b.len() {
            d[i * w + j] = if i == 0 {
                j
            } else if j == 0 {
                i
            } else {
                let sub = d[(i - 1) * w + j - 1] + usize::from(a[i - 1] != b[j - 1]);
                let mut v = sub.min(d[(i - 1) * w + j] + 1).min(d[i * w + j - 1] + 1);
                if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                    v = v.min(d[(i - 2) * w + j - 2] + 1);
                }
                v
            };
        }
    }
    d[a.len() * w + b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suggestions() {
        assert_eq!(closest("objectiv", &["objective", "window"]), Some("objective"));
        assert_eq!(closest("budget", &["budgeting", "window"]), Some("budgeting"));
        assert_eq!(closest("GTE", &["GET", "HEAD", "POST"]), Some("GET"));
        assert_eq!(closest("zzz", &["objective", "window"]), None);
    }
}

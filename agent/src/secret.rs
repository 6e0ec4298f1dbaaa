//! Secrets (access keys, bearer tokens, webhook keys): never printed, and
//! compared in constant time.
//!
//! **Architecture invariant:** a leaf: this module imports nothing of the crate.

use std::fmt;

/// Lower-case hex of `bytes` (digests, signatures).
pub fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(DIGITS[usize::from(b >> 4)] as char);
        out.push(DIGITS[usize::from(b & 0xf)] as char);
    }
    out
}

/// A secret (an access key or bearer token). Never printed: `Debug` shows
/// only that it is set.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: String) -> Secret {
        Secret(value)
    }

    /// The value, to put in an outgoing request (a notifier's key or URL).
    /// Never log it.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// Compare with what a client sent, in time that depends only on the
    /// lengths (never on where the first difference is).
    pub fn matches(&self, candidate: &[u8]) -> bool {
        constant_time_eq(self.0.as_bytes(), candidate)
    }
}

/// 128 random bits from the operating system, as 32 hex digits: ids are not
/// guessable, so knowing one says that it was shown to you.
pub fn random_id() -> String {
    use rand::TryRngCore;
    let mut bytes = [0u8; 16];
    // The OS random source failing is an environment beyond repair
    // (getrandom on Linux blocks until seeded rather than fail).
    rand::rngs::OsRng.try_fill_bytes(&mut bytes).expect("the operating system's random source works");
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

/// Equality whose running time does not depend on the bytes compared: every
/// byte of the candidate is looked at, differences are OR-ed together, and
/// the optimizer is kept from short-circuiting.
pub fn constant_time_eq(expected: &[u8], candidate: &[u8]) -> bool {
    let mut diff = (expected.len() ^ candidate.len()) as u64;
    for (i, &c) in candidate.iter().enumerate() {
        // Compare against a byte of `expected` even past its end, so the
        // work done depends on the candidate's length only.
        let e = if expected.is_empty() { 0 } else { expected[i % expected.len()] };
        diff |= u64::from(std::hint::black_box(c ^ e));
    }
    std::hint::black_box(diff) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn constant_time_eq_is_equality() {
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"ab"));
        assert!(!constant_time_eq(b"abc", b"abcd"));
        assert!(!constant_time_eq(b"", b"a"));
        assert!(!constant_time_eq(b"a", b""));
        assert!(constant_time_eq(b"", b""));
    }

    #[test]
    fn secrets_do_not_print() {
        let s = Secret::new("hunter2".into());
        assert_eq!(format!("{s:?}"), "Secret(***)");
        assert!(s.matches(b"hunter2"));
    }
}

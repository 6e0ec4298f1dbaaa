//! Globs for hosts, paths and edge locations: `*` matches any run of bytes
//! (including `/`), `?` matches one byte, everything else is literal.
//! Patterns are compiled once; the common shapes (exact, prefix, suffix,
//! contains) match without backtracking.

use std::fmt;

#[derive(Clone, PartialEq, Eq)]
pub struct Glob {
    source: String,
    /// Literal text the subject must start with (the whole subject when `exact`).
    prefix: Box<[u8]>,
    /// Literal text the subject must end with.
    suffix: Box<[u8]>,
    /// Literal text somewhere between prefix and suffix (`*x*`), when not empty.
    middle: Box<[u8]>,
    exact: bool,
    /// The first (up to 8) bytes of `prefix` and a mask over them: one
    /// masked compare rejects most subjects before any byte loop.
    head_mask: u64,
    head_value: u64,
    /// Patterns of any other shape (`?`, several inner `*`): matched by the
    /// two-pointer algorithm on `source`, linear in practice, never recursive.
    general: bool,
}

/// Why a glob was refused; `offset` is the byte offset in the pattern.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct GlobError {
    pub offset: usize,
    pub message: String,
}

/// The offset of the first `[`, `]`, `{` or `}` that is not part of a route
/// placeholder. `{id}`, `{proxy+}` (letters, digits, `_`, `-`, `+` between
/// braces) match themselves, since API Gateway routes and route templates
/// contain them; `{a,b}` alternatives and character classes are not globs here.
fn unsupported_bracket(pattern: &str) -> Option<usize> {
    let b = pattern.as_bytes();
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'[' | b']' | b'}' => return Some(i),
            b'{' => {
                let Some(len) = b[i + 1..].iter().position(|&c| c == b'}') else { return Some(i) };
                let inner = &b[i + 1..i + 1 + len];
                if inner.is_empty()
                    || !inner.iter().all(|&c| c.is_ascii_alphanumeric() || matches!(c, b'_' | b'-' | b'+'))
                {
                    return Some(i);
                }
                i += len + 2;
                continue;
            }
            _ => {}
        }
        i += 1;
    }
    None
}

impl Glob {
    pub fn new(pattern: &str) -> Result<Glob, GlobError> {
        if pattern.is_empty() {
            return Err(GlobError { offset: 0, message: "empty glob".into() });
        }
        if let Some(i) = pattern.bytes().position(|b| b.is_ascii_control()) {
            return Err(GlobError { offset: i, message: "control character in glob".into() });
        }
        if let Some(i) = unsupported_bracket(pattern) {
            return Err(GlobError {
                offset: i,
                message: format!(
                    "`{}` is not supported in globs (only `*`, `?` and route placeholders such as `{{id}}`); use a list of patterns instead",
                    &pattern[i..i + 1]
                ),
            });
        }
        let bytes = pattern.as_bytes();
        let stars = bytes.iter().filter(|&&b| b == b'*').count();
        let has_q = bytes.contains(&b'?');
        let lit = |b: &[u8]| b.to_vec().into_boxed_slice();
        let empty = || lit(b"");
        let (prefix, suffix, middle, exact, general) = if bytes.iter().all(|&b| b == b'*') {
            (empty(), empty(), empty(), false, false)
        } else if has_q {
            (empty(), empty(), empty(), false, true)
        } else if stars == 0 {
            (lit(bytes), empty(), empty(), true, false)
        } else if stars == 1 {
            // `a*b`, `a*`, `*b`.
            let i = bytes.iter().position(|&b| b == b'*').expect("one star");
            (lit(&bytes[..i]), lit(&bytes[i + 1..]), empty(), false, false)
        } else if stars == 2 && bytes[0] == b'*' && bytes[bytes.len() - 1] == b'*' {
            (empty(), empty(), lit(&bytes[1..bytes.len() - 1]), false, false)
        } else {
            (empty(), empty(), empty(), false, true)
        };
        let n = prefix.len().min(8);
        let head_mask = if n == 8 { u64::MAX } else { (1u64 << (8 * n)) - 1 };
        let head_value = head8(&prefix) & head_mask;
        Ok(Glob { source: pattern.to_string(), prefix, suffix, middle, exact, general, head_mask, head_value })
    }

    pub fn as_str(&self) -> &str {
        &self.source
    }

    /// Every shape but the general one is checked with the same few
    /// comparisons, so routing loops have no per-pattern dispatch to mispredict.
    #[inline]
    pub fn matches(&self, text: &str) -> bool {
        self.matches_with_head(text, head8(text.as_bytes()))
    }

    /// [`Glob::matches`] with the subject's [`head8`] computed once by the
    /// caller, for loops that try many globs on one subject.
    #[inline]
    pub fn matches_with_head(&self, text: &str, head: u64) -> bool {
        // General globs have an empty prefix, so they pass this check.
        head & self.head_mask == self.head_value && self.matches_after_head(text)
    }

    /// A first test on the subject's [`head8`], for loops that try many
    /// globs on one subject from a dense array: a subject whose head masked
    /// with `mask` is not `value` cannot match, and for short prefixes and
    /// short exact names the head (and length) decide the match outright.
    pub fn head_filter(&self) -> HeadFilter {
        let plain = !self.general && self.suffix.is_empty() && self.middle.is_empty();
        if plain && self.exact && self.prefix.len() <= 8 {
            // Zero padding is part of the value: `/search` does not pass for `/search/x`.
            return HeadFilter { mask: u64::MAX, value: head8(&self.prefix), then: Then::Length(self.prefix.len()) };
        }
        let then = if plain && !self.exact && self.prefix.len() <= 8 { Then::Match } else { Then::Check };
        HeadFilter { mask: self.head_mask, value: self.head_value, then }
    }

    /// The rest of the match, once the head filter passed.
    #[inline]
    pub fn matches_after_head(&self, text: &str) -> bool {
        let t = text.as_bytes();
        if self.exact {
            return bytes_eq(t, &self.prefix);
        }
        if self.general {
            return general_match(self.source.as_bytes(), t);
        }
        let (p, s) = (self.prefix.len(), self.suffix.len());
        t.len() >= p + s
            && bytes_eq(&t[..p], &self.prefix)
            && bytes_eq(&t[t.len() - s..], &self.suffix)
            && (self.middle.is_empty() || memchr::memmem::find(&t[p..t.len() - s], &self.middle).is_some())
    }
}

impl fmt::Debug for Glob {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Glob({:?})", self.source)
    }
}

impl fmt::Display for Glob {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.source)
    }
}

/// See [`Glob::head_filter`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HeadFilter {
    pub mask: u64,
    pub value: u64,
    pub then: Then,
}

/// What decides a match once the head passed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Then {
    /// The head alone: a prefix of at most 8 bytes (patterns hold no NUL, so
    /// a shorter subject's zero padding cannot pass).
    Match,
    /// The subject's length: an exact name of at most 8 bytes.
    Length(usize),
    /// [`Glob::matches_after_head`].
    Check,
}

/// The first 8 bytes of `b` as a little-endian word, zero-padded.
#[inline]
pub fn head8(b: &[u8]) -> u64 {
    if b.len() >= 8 {
        u64::from_le_bytes(b[..8].try_into().expect("8 bytes"))
    } else {
        let mut w = [0u8; 8];
        w[..b.len()].copy_from_slice(b);
        u64::from_le_bytes(w)
    }
}

/// Equality of byte strings, without a libc call: routing compares short
/// strings (hosts, path prefixes) for every event, where the call dominates.
#[inline]
pub fn bytes_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let mut i = 0;
    while i + 8 <= a.len() {
        let x = u64::from_ne_bytes(a[i..i + 8].try_into().expect("8 bytes"));
        let y = u64::from_ne_bytes(b[i..i + 8].try_into().expect("8 bytes"));
        if x != y {
            return false;
        }
        i += 8;
    }
    while i < a.len() {
        if a[i] != b[i] {
            return false;
        }
        i += 1;
    }
    true
}

/// Wildcard matching with `*` and `?`: O(|p|·|t|) worst case, no recursion.
fn general_match(p: &[u8], t: &[u8]) -> bool {
    let (mut pi, mut ti) = (0usize, 0usize);
    let mut star: Option<usize> = None;
    let mut mark = 0usize;
    while ti < t.len() {
        if pi < p.len() && (p[pi] == b'?' || p[pi] == t[ti]) {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == b'*' {
            star = Some(pi);
            mark = ti;
            pi += 1;
        } else if let Some(s) = star {
            pi = s + 1;
            mark += 1;
            ti = mark;
        } else {
            return false;
        }
    }
    while pi < p.len() && p[pi] == b'*' {
        pi += 1;
    }
    pi == p.len()
}

/// True when any glob of the list matches.
#[inline]
pub fn any_matches(globs: &[Glob], text: &str) -> bool {
    globs.iter().any(|g| g.matches(text))
}

#[cfg(test)]
mod tests {

    #[test]
    fn route_placeholders_are_literals_and_alternatives_are_refused() {
        let g = Glob::new("/cart/{id}").unwrap();
        assert!(g.matches("/cart/{id}"));
        assert!(!g.matches("/cart/12"));
        assert!(Glob::new("GET /{proxy+}").unwrap().matches("GET /{proxy+}"));
        assert!(Glob::new("/a/{id}/*").unwrap().matches("/a/{id}/b"));
        for (bad, at) in [("/a/{b,c}", 3), ("/a/{", 3), ("/a/}", 3), ("/a/{}", 3), ("/[ab]", 1)] {
            assert_eq!(Glob::new(bad).unwrap_err().offset, at, "{bad}");
        }
    }

    use super::*;

    fn m(p: &str, t: &str) -> bool {
        Glob::new(p).unwrap().matches(t)
    }

    #[test]
    fn shapes() {
        assert!(m("/checkout*", "/checkout"));
        assert!(m("/checkout*", "/checkout/pay"));
        assert!(!m("/checkout*", "/cart"));
        assert!(m("*.png", "/a/b.png"));
        assert!(!m("*.png", "/a/b.png.txt"));
        assert!(m("*cart*", "/api/cart/1"));
        assert!(m("/api/cart/*", "/api/cart/42"));
        assert!(!m("/api/cart/*", "/api/carts"));
        assert!(m("*", ""));
        assert!(m("shop.example.com", "shop.example.com"));
        assert!(m("/img/*.png", "/img/a.png"));
        assert!(!m("/img/*.png", "/img.png"));
        assert!(!m("ab*ba", "aba") && m("ab*ba", "abba"));
        assert!(!m("shop.example.com", "shop.example.co"));
    }

    #[test]
    fn general() {
        assert!(m("/api/*/items/*", "/api/v1/items/9"));
        assert!(!m("/api/*/items/*", "/api/v1/item/9"));
        assert!(m("/p?ge", "/page"));
        assert!(!m("/p?ge", "/pge"));
        assert!(m("a*b*c", "aXbYc"));
        assert!(m("a*b*c", "abcbc"));
        assert!(!m("a*b*c", "acb"));
        assert!(m("*a*a*a*a*a*b", &format!("{}b", "a".repeat(40))));
    }

    #[test]
    fn head_filters_agree_with_full_matching() {
        let pats = [
            "/",
            "/search",
            "/api/*",
            "/checkout*",
            "/products/*",
            "*.png",
            "/a?c",
            "*x*",
            "/img/*.webp",
            "abcdefgh",
            "abcdefgh*",
        ];
        let texts = [
            "",
            "/",
            "/search",
            "/search/x",
            "/searc",
            "/api",
            "/api/",
            "/api/cart",
            "/checkout",
            "/checkout/pay",
            "/products/1",
            "/a.png",
            "/abc",
            "/xx",
            "/img/1.webp",
            "abcdefgh",
            "abcdefghi",
            "/search\0x",
        ];
        for p in pats {
            let g = Glob::new(p).unwrap();
            let f = g.head_filter();
            for t in texts {
                let passes = head8(t.as_bytes()) & f.mask == f.value;
                let decided = passes
                    && match f.then {
                        Then::Match => true,
                        Then::Length(n) => t.len() == n,
                        Then::Check => g.matches_after_head(t),
                    };
                assert_eq!(decided, g.matches(t), "{p:?} on {t:?}");
            }
        }
    }

    #[test]
    fn refuses_classes_with_offset() {
        let e = Glob::new("/a/[bc]").unwrap_err();
        assert_eq!(e.offset, 3);
        assert!(Glob::new("").is_err());
    }
}

//! Globs for hosts, paths and edge locations: `*` matches any run of bytes
//! (including `/`), `?` matches one byte, everything else is literal.
//! Patterns are compiled once; the common shapes (exact, prefix, suffix,
//! contains) match without backtracking.

use std::fmt;

#[derive(Clone, PartialEq, Eq)]
pub struct Glob {
    source: String,
    kind: Kind,
}

#[derive(Clone, PartialEq, Eq)]
enum Kind {
    Any,
    Exact(Vec<u8>),
    Prefix(Vec<u8>),
    Suffix(Vec<u8>),
    Contains(Vec<u8>),
    /// Anything else: matched by the classic two-pointer algorithm, which is
    /// linear in practice and never recursive.
    General(Vec<u8>),
}

/// Why a glob was refused; `offset` is the byte offset in the pattern.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct GlobError {
    pub offset: usize,
    pub message: String,
}

impl Glob {
    pub fn new(pattern: &str) -> Result<Glob, GlobError> {
        if pattern.is_empty() {
            return Err(GlobError { offset: 0, message: "empty glob".into() });
        }
        if let Some(i) = pattern.bytes().position(|b| b.is_ascii_control()) {
            return Err(GlobError { offset: i, message: "control character in glob".into() });
        }
        if let Some(i) = pattern.find(['[', ']', '{', '}']) {
            return Err(GlobError {
                offset: i,
                message: format!(
                    "`{}` is not supported in globs (only `*` and `?`); use a list of patterns instead",
                    &pattern[i..i + 1]
                ),
            });
        }
        let bytes = pattern.as_bytes();
        let stars = bytes.iter().filter(|&&b| b == b'*').count();
        let has_q = bytes.contains(&b'?');
        let kind = if bytes.iter().all(|&b| b == b'*') {
            Kind::Any
        } else if has_q {
            Kind::General(bytes.to_vec())
        } else if stars == 0 {
            Kind::Exact(bytes.to_vec())
        } else if stars == 1 && bytes[bytes.len() - 1] == b'*' {
            Kind::Prefix(bytes[..bytes.len() - 1].to_vec())
        } else if stars == 1 && bytes[0] == b'*' {
            Kind::Suffix(bytes[1..].to_vec())
        } else if stars == 2 && bytes[0] == b'*' && bytes[bytes.len() - 1] == b'*' {
            Kind::Contains(bytes[1..bytes.len() - 1].to_vec())
        } else {
            Kind::General(bytes.to_vec())
        };
        Ok(Glob { source: pattern.to_string(), kind })
    }

    pub fn as_str(&self) -> &str {
        &self.source
    }

    #[inline]
    pub fn matches(&self, text: &str) -> bool {
        let t = text.as_bytes();
        match &self.kind {
            Kind::Any => true,
            Kind::Exact(p) => bytes_eq(t, p),
            Kind::Prefix(p) => t.len() >= p.len() && bytes_eq(&t[..p.len()], p),
            Kind::Suffix(p) => t.len() >= p.len() && bytes_eq(&t[t.len() - p.len()..], p),
            Kind::Contains(p) => memchr::memmem::find(t, p).is_some(),
            Kind::General(p) => general_match(p, t),
        }
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
    a[i..] == b[i..]
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
    fn refuses_classes_with_offset() {
        let e = Glob::new("/a/[bc]").unwrap_err();
        assert_eq!(e.offset, 3);
        assert!(Glob::new("").is_err());
    }
}

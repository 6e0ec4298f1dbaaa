//! Status expressions: `"< 500"`, `">= 200"`, `"2xx"`, `"[2xx, 3xx]"`,
//! `"[200, 204]"`, `"404"`, also `"!= 429"` and ranges `"200-299"`.
//! Compiled to a bitset over 0..=999 so matching is one shift and mask.

use std::fmt;

#[derive(Clone, PartialEq, Eq)]
pub struct StatusSet {
    bits: [u64; 16],
    source: String,
}

/// Why an expression was refused; `offset` is the byte offset in the text.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct StatusError {
    pub offset: usize,
    pub message: String,
}

impl StatusSet {
    pub fn parse(text: &str) -> Result<StatusSet, StatusError> {
        let mut set = StatusSet { bits: [0; 16], source: text.to_string() };
        let trimmed_start = text.len() - text.trim_start().len();
        let t = text.trim();
        if t.is_empty() {
            return Err(StatusError { offset: 0, message: "empty status expression".into() });
        }
        if let Some(inner) = t.strip_prefix('[') {
            let Some(inner) = inner.strip_suffix(']') else {
                return Err(StatusError {
                    offset: trimmed_start + t.len(),
                    message: "list not closed: expected `]`".into(),
                });
            };
            let mut off = trimmed_start + 1;
            for part in inner.split(',') {
                let lead = part.len() - part.trim_start().len();
                set.add_term(part.trim(), off + lead)?;
                off += part.len() + 1;
            }
        } else {
            set.add_term(t, trimmed_start)?;
        }
        Ok(set)
    }

    fn add_term(&mut self, term: &str, offset: usize) -> Result<(), StatusError> {
        let err = |at: usize, msg: String| StatusError { offset: offset + at, message: msg };
        if term.is_empty() {
            return Err(err(0, "empty element in status list".into()));
        }
        let ops = ["<=", ">=", "!=", "<", ">", "=="];
        for op in ops {
            if let Some(rest) = term.strip_prefix(op) {
                let lead = rest.len() - rest.trim_start().len();
                let n = parse_code(rest.trim()).map_err(|m| err(op.len() + lead, m))?;
                let n = n as i32;
                for code in 0..1000i32 {
                    let ok = match op {
                        "<=" => code <= n,
                        ">=" => code >= n,
                        "!=" => code != n,
                        "<" => code < n,
                        ">" => code > n,
                        _ => code == n,
                    };
                    if ok {
                        self.set(code as u16);
                    }
                }
                return Ok(());
            }
        }
        let lower = term.to_ascii_lowercase();
        if lower.len() == 3 && lower.ends_with("xx") {
            let c = lower.as_bytes()[0];
            if !(b'1'..=b'5').contains(&c) {
                return Err(err(0, format!("`{term}`: status classes are 1xx to 5xx")));
            }
            let base = (c - b'0') as u16 * 100;
            for code in base..base + 100 {
                self.set(code);
            }
            return Ok(());
        }
        if let Some((a, b)) = term.split_once('-') {
            let lo = parse_code(a.trim()).map_err(|m| err(0, m))?;
            let hi = parse_code(b.trim()).map_err(|m| err(a.len() + 1, m))?;
            if lo > hi {
                return Err(err(0, format!("range `{term}` is empty: {lo} > {hi}")));
            }
            for code in lo..=hi {
                self.set(code);
            }
            return Ok(());
        }
        let n = parse_code(term).map_err(|m| err(0, m))?;
        self.set(n);
        Ok(())
    }

    fn set(&mut self, code: u16) {
        self.bits[(code / 64) as usize] |= 1u64 << (code % 64);
    }

    #[inline]
    pub fn contains(&self, code: u16) -> bool {
        let code = code as usize;
        code < 1000 && self.bits[code / 64] & (1u64 << (code % 64)) != 0
    }

    pub fn as_str(&self) -> &str {
        &self.source
    }
}

fn parse_code(s: &str) -> Result<u16, String> {
    if s.is_empty() {
        return Err("expected a status code".into());
    }
    if !s.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!("`{s}` is not a status code; expected e.g. `< 500`, `2xx`, `[2xx, 3xx]`, `[200, 204]`"));
    }
    match s.parse::<u16>() {
        Ok(n) if n <= 999 => Ok(n),
        _ => Err(format!("status `{s}` is out of range 0..=999")),
    }
}

impl fmt::Debug for StatusSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "StatusSet({:?})", self.source)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(t: &str) -> StatusSet {
        StatusSet::parse(t).unwrap()
    }

    #[test]
    fn forms() {
        assert!(s("< 500").contains(499) && !s("< 500").contains(500));
        assert!(s("< 500").contains(0));
        assert!(s(">= 200").contains(200) && !s(">= 200").contains(199));
        assert!(s("2xx").contains(204) && !s("2xx").contains(300));
        let l = s("[2xx, 3xx]");
        assert!(l.contains(200) && l.contains(399) && !l.contains(404));
        let l = s("[200, 204]");
        assert!(l.contains(200) && l.contains(204) && !l.contains(201));
        assert!(s("200-299").contains(250));
        assert!(s("!= 429").contains(200) && !s("!= 429").contains(429));
        assert!(s("404").contains(404) && !s("404").contains(405));
        assert!(!s("< 500").contains(1000));
    }

    #[test]
    fn errors_point_at_the_problem() {
        let e = StatusSet::parse("< 5oo").unwrap_err();
        assert_eq!(e.offset, 2);
        let e = StatusSet::parse("[200, abc]").unwrap_err();
        assert_eq!(e.offset, 6);
        let e = StatusSet::parse("[200, 204").unwrap_err();
        assert_eq!(e.offset, 9);
        assert!(StatusSet::parse("7xx").is_err());
        assert!(StatusSet::parse("").is_err());
        assert!(StatusSet::parse("300-200").is_err());
    }
}

//! Which bytes of a file identify it, and their hash (see the module above
//! for why these bytes).
//!
//! The fingerprinted region is the file's leading header lines (lines that
//! start with `#`, and blank lines) followed by its first data line, cut to
//! `k` bytes. Its end is decided by the bytes inside it only, so a region
//! found once stays the same region however much the file grows.

use std::io::{self, Read};

/// Most bytes of leading header lines looked at: a line that starts after
/// this counts as data whatever it holds.
pub const HEADER_SCAN: usize = 64 * 1024;

/// Bytes read at a time while looking for the end of the region; one read
/// is enough for every log format we know.
const HEAD_STEP: usize = 4 * 1024;

/// Where the fingerprinted region of content starting with `head` ends:
/// `Some(end)` when `head[..end]` is the region, `None` when `head` does not
/// hold a complete first data line (nor `k` bytes of one) yet.
pub fn region_end(head: &[u8], k: usize) -> Option<usize> {
    let cap = HEADER_SCAN + k;
    let head = &head[..head.len().min(cap)];
    let mut pos = 0;
    loop {
        let rest = &head[pos..];
        let nl = memchr::memchr(b'\n', rest);
        let line = &rest[..nl.unwrap_or(rest.len())];
        let header = pos < HEADER_SCAN && (line.first() == Some(&b'#') || line.iter().all(u8::is_ascii_whitespace));
        if !header {
            break;
        }
        match nl {
            Some(i) => pos += i + 1,
            // A header line (or the end of the bytes so far) that goes on
            // past the cap is cut there; short of the cap, wait for more.
            None => return (head.len() == cap).then_some(cap),
        }
    }
    let data_cap = (pos + k).min(cap);
    match memchr::memchr(b'\n', &head[pos..head.len().min(data_cap)]) {
        Some(i) => Some(pos + i + 1),
        None if head.len() >= data_cap => Some(data_cap),
        None => None,
    }
}

/// The fingerprint of content starting with `head`, when it has one yet.
pub fn fingerprint(head: &[u8], k: usize) -> Option<u64> {
    region_end(head, k).map(|end| fnv(&head[..end]))
}

/// Read the start of a content stream until its region is known or the
/// stream ends. Returns the bytes read (at least the region) and the
/// region's end. With `tolerant`, a read error counts as the end of the
/// stream: a gzip file still being written ends in a truncated member, and
/// the bytes before it are already its final content.
pub fn read_head(r: &mut dyn Read, k: usize, tolerant: bool) -> io::Result<(Vec<u8>, Option<usize>)> {
    let cap = HEADER_SCAN + k;
    let mut buf = Vec::new();
    loop {
        if let Some(end) = region_end(&buf, k) {
            return Ok((buf, Some(end)));
        }
        if buf.len() >= cap {
            return Ok((buf, None));
        }
        let want = ((buf.len() + HEAD_STEP).min(cap) - buf.len()) as u64;
        // `read_to_end` keeps what it read before an error.
        let ended = match (&mut *r).take(want).read_to_end(&mut buf) {
            Ok(n) => (n as u64) < want,
            Err(_) if tolerant => true,
            Err(e) => return Err(e),
        };
        if ended {
            let end = region_end(&buf, k);
            return Ok((buf, end));
        }
    }
}

/// FNV-1a, 64 bits: stable across versions and platforms (it names
/// checkpoint entries), not meant to resist a deliberate collision.
pub fn fnv(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in bytes {
        h ^= b as u64;
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

#[cfg(test)]
mod tests {
    use super::*;

    const CF_HEADER: &[u8] = b"#Version: 1.0\n#Fields: date time x-edge-request-id\n";

    fn end(s: &[u8]) -> Option<usize> {
        region_end(s, 1024)
    }

    #[test]
    fn the_region_is_the_header_and_the_first_data_line() {
        let mut f = CF_HEADER.to_vec();
        assert_eq!(end(&f), None, "a header alone identifies nothing");
        f.extend_from_slice(b"2024-05-01\t12:00:00\tabc");
        assert_eq!(end(&f), None, "the first data line is not complete");
        f.extend_from_slice(b"\n");
        let whole = f.len();
        assert_eq!(end(&f), Some(whole));
        f.extend_from_slice(b"2024-05-01\t12:00:01\tdef\n");
        assert_eq!(end(&f), Some(whole), "the region does not move as the file grows");
    }

    #[test]
    fn files_that_share_only_a_header_differ() {
        let a = [CF_HEADER, b"2024-05-01\t12:00:00\tabc\n"].concat();
        let b = [CF_HEADER, b"2024-05-01\t12:00:00\tabd\n"].concat();
        assert_ne!(fingerprint(&a, 1024), fingerprint(&b, 1024));
        assert!(fingerprint(&a, 1024).is_some());
    }

    #[test]
    fn blank_lines_before_the_data_are_header() {
        assert_eq!(end(b"\n\r\n  \n"), None);
        assert_eq!(end(b"\n\r\n  \n{}\n"), Some(9));
        assert_eq!(end(b"{\"a\":1}\n"), Some(8), "no header at all");
    }

    #[test]
    fn a_long_first_line_is_cut_at_k_bytes() {
        let line = vec![b'x'; 5000];
        let f = [CF_HEADER, &line].concat();
        assert_eq!(region_end(&f, 100), Some(CF_HEADER.len() + 100));
        assert_eq!(region_end(&f[..CF_HEADER.len() + 99], 100), None);
        // The cut region is stable too.
        let more = [&f[..], b"\nnext\n"].concat();
        assert_eq!(region_end(&more, 100), Some(CF_HEADER.len() + 100));
    }

    #[test]
    fn an_endless_header_is_cut_at_the_scan_limit() {
        let mut f = Vec::new();
        while f.len() < HEADER_SCAN + 2048 {
            f.extend_from_slice(b"# comment line\n");
        }
        let e = region_end(&f, 64).unwrap();
        assert!(e > HEADER_SCAN && e <= HEADER_SCAN + 64, "{e}");
        assert_eq!(region_end(&f[..e + 10], 64), Some(e));
    }

    #[test]
    fn reading_the_head_stops_at_the_region_or_the_end() {
        let f = [CF_HEADER, b"a\n", &vec![b'y'; 100_000][..]].concat();
        let (head, e) = read_head(&mut io::Cursor::new(&f), 1024, false).unwrap();
        assert_eq!(e, Some(CF_HEADER.len() + 2));
        assert!(head.len() <= HEAD_STEP);
        let (head, e) = read_head(&mut io::Cursor::new(CF_HEADER), 1024, false).unwrap();
        assert_eq!((head.as_slice(), e), (CF_HEADER, None));
    }
}

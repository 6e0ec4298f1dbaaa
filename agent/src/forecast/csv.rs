//! `timestamp,value` series from CSV, read one row at a time (the
//! `anomalies` command scores each row before it reads the next).
//!
//! Accepted: an optional header line (a first line whose value field is not
//! a number), timestamps in RFC 3339 (`2026-11-20T12:00:00Z`, with offset or
//! fraction) or `YYYY-MM-DD HH:MM:SS` (UTC; also `YYYY-MM-DDTHH:MM:SS`, and
//! with a fraction), values as decimal numbers (`nan`, empty and `inf` are
//! refused: a missing value is a missing row). Blank lines are skipped;
//! quoted fields (`"2026-11-20 12:00:00","3.5"`) are unquoted; `\r\n` line
//! ends are fine. Timestamps must not go backwards (equal ones are kept: a
//! series may repeat a timestamp). Anything else is an error naming the line.
//!
//! Hand-written rather than the `csv` crate: two fields, no embedded
//! separators, and the errors must name the line and say what was expected.

use std::io::BufRead;

/// The longest line read (a row is two short fields).
const MAX_LINE: usize = 4096;

/// One row of a series.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Row {
    /// Milliseconds since the epoch (UTC).
    pub ts_ms: i64,
    pub value: f64,
    /// The 1-based line it was read from.
    pub line: u64,
}

/// A row that cannot be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: {message}")]
pub struct RowError {
    pub line: u64,
    pub message: String,
}

/// Reads rows from CSV text, streaming.
pub struct Reader<R> {
    input: R,
    line: u64,
    buf: Vec<u8>,
    last_ts: Option<i64>,
    seen_data: bool,
    /// The header line as read (without its line end), once seen.
    pub header: Option<String>,
    /// The last row's timestamp field as written (unquoted, trimmed).
    ts_text: String,
}

impl<R: BufRead> Reader<R> {
    pub fn new(input: R) -> Reader<R> {
        Reader {
            input,
            line: 0,
            buf: Vec::new(),
            last_ts: None,
            seen_data: false,
            header: None,
            ts_text: String::new(),
        }
    }

    /// The timestamp field of the row last returned, as the input wrote it.
    pub fn timestamp_text(&self) -> &str {
        &self.ts_text
    }

    fn err(&self, message: impl Into<String>) -> RowError {
        RowError { line: self.line, message: message.into() }
    }

    /// The next row; `None` at the end.
    pub fn next_row(&mut self) -> Option<Result<Row, RowError>> {
        loop {
            self.buf.clear();
            self.line += 1;
            let n = match std::io::Read::take(&mut self.input, MAX_LINE as u64 + 1).read_until(b'\n', &mut self.buf) {
                Ok(n) => n,
                Err(e) => return Some(Err(self.err(format!("cannot read: {e}")))),
            };
            if n == 0 {
                return None;
            }
            if self.buf.len() > MAX_LINE && self.buf.last() != Some(&b'\n') {
                // Skip the rest of the line so a caller that goes on stays in step.
                let mut rest = Vec::new();
                let _ = self.input.read_until(b'\n', &mut rest);
                return Some(Err(self.err(format!("longer than {MAX_LINE} bytes: not a `timestamp,value` row"))));
            }
            let Ok(text) = std::str::from_utf8(&self.buf) else {
                return Some(Err(self.err("not UTF-8 text")));
            };
            let text = text.trim_end_matches(['\n', '\r']).trim_start_matches('\u{feff}');
            if text.trim().is_empty() {
                continue;
            }
            let fields: Vec<&str> = text.split(',').map(|f| unquote(f.trim())).collect();
            if fields.len() != 2 {
                return Some(Err(self.err(format!(
                    "expected 2 fields `timestamp,value`, found {}: {}",
                    fields.len(),
                    crate::untrusted::Escaped(cut(text))
                ))));
            }
            let value = fields[1].parse::<f64>();
            if !self.seen_data && self.header.is_none() && value.is_err() && parse_time(fields[0]).is_err() {
                self.header = Some(text.to_string());
                continue;
            }
            self.seen_data = true;
            let ts_ms = match parse_time(fields[0]) {
                Ok(t) => t,
                Err(e) => return Some(Err(self.err(e))),
            };
            let value = match value {
                Ok(v) if v.is_finite() => v,
                _ => {
                    return Some(Err(self.err(format!(
                        "the value {} is not a finite number",
                        crate::untrusted::Escaped(cut(fields[1]))
                    ))));
                }
            };
            if let Some(last) = self.last_ts
                && ts_ms < last
            {
                return Some(Err(self.err(format!(
                    "{} is before the previous row's {}: rows must be in time order",
                    crate::timefmt::rfc3339(ts_ms),
                    crate::timefmt::rfc3339(last)
                ))));
            }
            self.last_ts = Some(ts_ms);
            self.ts_text.clear();
            self.ts_text.push_str(fields[0]);
            return Some(Ok(Row { ts_ms, value, line: self.line }));
        }
    }
}

fn cut(s: &str) -> &str {
    match s.char_indices().nth(80) {
        Some((i, _)) => &s[..i],
        None => s,
    }
}

fn unquote(s: &str) -> &str {
    s.strip_prefix('"').and_then(|s| s.strip_suffix('"')).unwrap_or(s)
}

/// A timestamp: RFC 3339, or `YYYY-MM-DD HH:MM:SS[.fff]` in UTC (also with `T`).
pub fn parse_time(s: &str) -> Result<i64, String> {
    if let Ok(t) = s.parse::<jiff::Timestamp>() {
        return Ok(t.as_millisecond());
    }
    if let Ok(dt) = s.parse::<jiff::civil::DateTime>()
        && s.len() >= 19
        && let Ok(z) = dt.to_zoned(jiff::tz::TimeZone::UTC)
    {
        return Ok(z.timestamp().as_millisecond());
    }
    Err(format!(
        "the timestamp {} is neither RFC 3339 (2026-11-20T12:00:00Z) nor YYYY-MM-DD HH:MM:SS",
        crate::untrusted::Escaped(cut(s))
    ))
}

/// Every row of a whole input, or the first error.
pub fn read_all(input: impl BufRead) -> Result<Vec<Row>, RowError> {
    let mut r = Reader::new(input);
    let mut out = Vec::new();
    while let Some(row) = r.next_row() {
        out.push(row?);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rows(text: &str) -> Result<Vec<Row>, RowError> {
        read_all(text.as_bytes())
    }

    #[test]
    fn both_time_formats_a_header_quotes_and_crlf_are_read() {
        let got = rows("timestamp,value\r\n2026-11-20 12:00:00,1.5\r\n\"2026-11-20T12:01:00Z\",\"2\"\n\n2026-11-20T13:02:00+01:00,-3e2\n2026-11-20 12:03:00.250,0\n").unwrap();
        let base = parse_time("2026-11-20T12:00:00Z").unwrap();
        let ts: Vec<i64> = got.iter().map(|r| r.ts_ms - base).collect();
        assert_eq!(ts, vec![0, 60_000, 120_000, 180_250]);
        let v: Vec<f64> = got.iter().map(|r| r.value).collect();
        assert_eq!(v, vec![1.5, 2.0, -300.0, 0.0]);
        assert_eq!(got.iter().map(|r| r.line).collect::<Vec<_>>(), vec![2, 3, 5, 6]);
        // No header at all.
        assert_eq!(rows("2026-11-20 12:00:00,1\n").unwrap().len(), 1);
    }

    #[test]
    fn bad_rows_name_their_line_and_what_is_wrong() {
        let cases = [
            ("timestamp,value\n2026-11-20 12:00:00,1\n2026-11-20 12:01:00\n", 3, "expected 2 fields"),
            ("2026-11-20 12:00:00,1\nyesterday,2\n", 2, "neither RFC 3339"),
            ("2026-11-20 12:00:00,1\n2026-11-20 12:01:00,abc\n", 2, "not a finite number"),
            ("2026-11-20 12:00:00,nan\n", 1, "not a finite number"),
            ("2026-11-20 12:00:00,\n", 1, "not a finite number"),
            ("2026-11-20 12:01:00,1\n2026-11-20 12:00:00,1\n", 2, "rows must be in time order"),
            ("a,b\nc,d\n", 2, "neither RFC 3339"),
            ("2026-11-20,1\n", 1, "neither RFC 3339"),
        ];
        for (text, line, says) in cases {
            let e = rows(text).unwrap_err();
            assert_eq!(e.line, line, "{text:?}: {e}");
            assert!(e.message.contains(says), "{text:?}: {e}");
        }
        let long = format!("2026-11-20 12:00:00,{}\n", "1".repeat(5000));
        assert!(rows(&long).unwrap_err().message.contains("longer than"));
        let e = read_all(&b"2026-11-20 12:00:00,1\n\xff\xfe,1\n"[..]).unwrap_err();
        assert_eq!((e.line, e.message.as_str()), (2, "not UTF-8 text"));
        // A header alone is an empty series.
        assert!(rows("x,y\n").unwrap().is_empty());
    }

    #[test]
    fn equal_timestamps_are_kept() {
        assert_eq!(rows("2026-11-20 12:00:00,1\n2026-11-20 12:00:00,2\n").unwrap().len(), 2);
    }
}

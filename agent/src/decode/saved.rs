//! The prefixes that command-line tools put before each CloudWatch Logs
//! message when people save a log group to a file, so the decoders can read
//! the message behind them (Lambda and API Gateway here; the JSON-per-line
//! decoders through `decode::json_object_line`):
//!
//! | tool | line |
//! | --- | --- |
//! | `aws logs tail` (`--format detailed`, the default) | `2023-04-05T02:44:42.023000+00:00 <stream> <message>` |
//! | `aws logs tail --format short` | `2023-04-05T02:44:42 <message>` (UTC, without an offset) |
//! | `awslogs get` | `<group> <stream> <message>`; `--no-group` and `--no-stream` leave those out, `--timestamp` and `--ingestion-time` add times after them |
//!
//! The parts may be separated by any run of spaces and tabs (copies and
//! editors turn one into the other). Nothing here allocates.

/// A space or a tab.
pub(crate) fn is_blank(b: u8) -> bool {
    b == b' ' || b == b'\t'
}

pub(crate) fn skip_blanks(s: &[u8]) -> &[u8] {
    let n = s.iter().take_while(|&&b| is_blank(b)).count();
    &s[n..]
}

/// The first word and what follows it (blanks not skipped).
pub(crate) fn split_word(s: &[u8]) -> (&[u8], &[u8]) {
    s.split_at(memchr::memchr2(b' ', b'\t', s).unwrap_or(s.len()))
}

/// What a word says about time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Time {
    /// Not a timestamp.
    Absent,
    /// Looks like one (`YYYY-MM-DDT…`) but is not a valid time.
    Bad,
    /// Epoch milliseconds.
    At(i64),
}

/// Whether `word` is an RFC 3339 timestamp (`aws logs tail`'s
/// `2023-04-05T02:44:42.023000+00:00`, `awslogs`' `…T02:44:42.023Z`), or the
/// offset-less `2023-04-05T02:44:42` of `aws logs tail --format short`,
/// which is UTC.
pub(crate) fn time_word(word: &[u8]) -> Time {
    let looks = word.len() > 11
        && word[..4].iter().all(u8::is_ascii_digit)
        && word[4] == b'-'
        && word[7] == b'-'
        && matches!(word[10], b'T' | b't');
    if !looks {
        return Time::Absent;
    }
    if let Some(ms) = crate::decode::ndjson::rfc3339_ms(word) {
        return Time::At(ms);
    }
    let Ok(text) = std::str::from_utf8(word) else {
        return Time::Bad;
    };
    if let Ok(ts) = text.parse::<jiff::Timestamp>() {
        return Time::At(ts.as_millisecond());
    }
    // `--format short`: seconds, no offset, UTC.
    if word.len() == 19
        && let Ok(civil) = text.parse::<jiff::civil::DateTime>()
        && let Ok(ts) = civil.to_zoned(jiff::tz::TimeZone::UTC)
    {
        return Time::At(ts.timestamp().as_millisecond());
    }
    Time::Bad
}

/// Whether `word` can be a log group or log stream name as the tools print
/// them: CloudWatch Logs forbids `:` and `*` in stream names and allows
/// neither in group names either; a word that opens a message body (`{`,
/// `"`) or holds a CSV field separator is not one.
pub(crate) fn is_name(word: &[u8]) -> bool {
    !word.is_empty() && word.len() <= 512 && !word.iter().any(|b| matches!(b, b':' | b'*' | b'{' | b'"' | b',' | b'\\'))
}

/// A Lambda function's log stream: `2023/04/05/[$LATEST]c23dcbedb2244aea…`
/// (date, the version in brackets, an instance id).
pub(crate) fn is_lambda_stream(word: &[u8]) -> bool {
    let digits = |r: std::ops::Range<usize>| word.get(r).is_some_and(|d| d.iter().all(u8::is_ascii_digit));
    word.len() > 13
        && digits(0..4)
        && word[4] == b'/'
        && digits(5..7)
        && word[7] == b'/'
        && digits(8..10)
        && word[10] == b'/'
        && word[11] == b'['
        && memchr::memchr(b']', &word[12..]).is_some()
        && is_name(word)
}

/// Whether a saved line's prefix names a Lambda function's log group
/// (`/aws/lambda/…`) or log stream.
pub(crate) fn names_lambda(prefix: &[u8]) -> bool {
    prefix.split(|&b| is_blank(b)).any(|word| word.starts_with(b"/aws/lambda/") || is_lambda_stream(word))
}

/// The message behind a prefix of at most `max_words` timestamps and
/// names, and the first of those timestamps: the fewest words after which
/// `body_at` says a message starts. `None` when no such prefix is found (the
/// line has none, or a word of it is neither a time nor a name).
pub(crate) fn strip_prefix(line: &[u8], max_words: usize, body_at: impl Fn(&[u8]) -> bool) -> Option<(Time, &[u8])> {
    let mut time = Time::Absent;
    let mut rest = skip_blanks(line);
    for _ in 0..max_words {
        let (word, after) = split_word(rest);
        match time_word(word) {
            Time::Absent if is_name(word) => {}
            Time::Absent => return None,
            t => {
                if time == Time::Absent {
                    time = t;
                }
            }
        }
        rest = skip_blanks(after);
        if rest.is_empty() {
            return None;
        }
        if body_at(rest) {
            return Some((time, rest));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_of_the_tools() {
        assert_eq!(time_word(b"2023-04-05T02:44:42.023000+00:00"), Time::At(1_680_662_682_023));
        assert_eq!(time_word(b"2023-04-05T02:44:42+00:00"), Time::At(1_680_662_682_000));
        assert_eq!(time_word(b"2023-04-05T02:44:42.023Z"), Time::At(1_680_662_682_023));
        assert_eq!(time_word(b"2023-04-05T02:44:42"), Time::At(1_680_662_682_000));
        assert_eq!(time_word(b"2023-04-05T99:44:42Z"), Time::Bad);
        assert_eq!(time_word(b"2023-04-05Tnoon"), Time::Bad);
        assert_eq!(time_word(b"2023/04/05/[$LATEST]abc"), Time::Absent);
        assert_eq!(time_word(b"REPORT"), Time::Absent);
        assert_eq!(time_word("2023-04-05T02:44:4\u{e9}".as_bytes()), Time::Bad);
    }

    #[test]
    fn lambda_streams() {
        assert!(is_lambda_stream(b"2023/04/05/[$LATEST]c23dcbedb2244aea9a3189ab2bf5c790"));
        assert!(is_lambda_stream(b"2026/11/20/[12]0a1b2c"));
        assert!(!is_lambda_stream(b"2023/04/05/c23dcbedb2244aea"));
        assert!(!is_lambda_stream(b"2023-04-05T02:44:42Z"));
        assert!(!is_lambda_stream(b"/aws/lambda/checkout"));
        assert!(!is_lambda_stream(b"2023/04/05/[$LATEST"));
    }

    #[test]
    fn prefixes_end_where_the_body_starts() {
        let json = |s: &[u8]| s.first() == Some(&b'{');
        let (t, body) = strip_prefix(b"2023-04-05T02:44:42Z\tabc123 \t{\"a\":1}", 4, json).expect("prefix");
        assert_eq!((t, body), (Time::At(1_680_662_682_000), &b"{\"a\":1}"[..]));
        let (t, body) = strip_prefix(b"/aws/apigw/shop abc123 {}", 4, json).expect("prefix");
        assert_eq!((t, body), (Time::Absent, &b"{}"[..]));
        assert_eq!(strip_prefix(b"a b c d e {}", 4, json), None);
        assert_eq!(strip_prefix(b"a:b {}", 4, json), None);
        assert_eq!(strip_prefix(b"{}", 4, json), None);
        assert_eq!(strip_prefix(b"abc ", 4, json), None);
        assert_eq!(strip_prefix(b"", 4, json), None);
    }
}
